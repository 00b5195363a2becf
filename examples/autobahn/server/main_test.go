package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// startServer runs the echo handler on a test server and dials it. The returned channel
// receives the error that ended each request.
func startServer(ctx context.Context, t *testing.T) (*websocket.Conn, <-chan error) {
	t.Helper()
	ended := make(chan error, 10)
	srv := httptest.NewServer(newHandler(func(_ string, err error) { ended <- err }))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/any/path", nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(readLimit)
	return c, ended
}

// endOf returns the error that ended the handler's echo.
func endOf(ctx context.Context, t *testing.T, ended <-chan error) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-ctx.Done():
		t.Fatal("the echo did not end")
		return nil
	}
}

func TestEcho(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, ended := startServer(ctx, t)

	// 16 MiB exactly: the largest message of the suite's 9.x cases.
	large := make([]byte, readLimit)
	for i := range large {
		large[i] = byte(i * 7)
	}
	for _, tt := range []struct {
		name string
		typ  websocket.MessageType
		p    []byte
	}{
		{"text", websocket.MessageText, []byte("Hello, κόσμε")},
		{"empty text", websocket.MessageText, []byte{}},
		{"binary", websocket.MessageBinary, []byte{0x00, 0xff, 0xfe, 0x80}},
		{"empty binary", websocket.MessageBinary, []byte{}},
		{"16 MiB binary", websocket.MessageBinary, large},
		{"16 MiB text", websocket.MessageText, bytes.Repeat([]byte("*"), readLimit)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errc := make(chan error, 1)
			// The echo may start before the whole message is sent: write while reading.
			go func() { errc <- c.Write(ctx, tt.typ, tt.p) }()
			typ, p, err := c.Read(ctx)
			require.NoError(t, err)
			require.NoError(t, <-errc)
			assert.Equal(t, tt.typ, typ)
			assert.Len(t, p, len(tt.p))
			assert.True(t, bytes.Equal(tt.p, p), "the echo differs from what was sent")
		})
	}

	require.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
	err := endOf(ctx, t, ended)
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err))
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestCompressedEcho checks that the server takes up a permessage-deflate offer, as the
// suite's cases 12.x and 13.x need, and echoes compressed messages.
func TestCompressedEcho(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(newHandler(func(string, error) {}))
	t.Cleanup(srv.Close)
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Compression: websocket.CompressionContextTakeover})
	require.NoError(t, err)
	defer c.CloseNow()
	assert.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")

	text := bytes.Repeat([]byte("a message that compresses well; "), 2000)
	for range 3 {
		errc := make(chan error, 1)
		go func() { errc <- c.Write(ctx, websocket.MessageText, text) }()
		typ, p, err := c.Read(ctx)
		require.NoError(t, err)
		require.NoError(t, <-errc)
		assert.Equal(t, websocket.MessageText, typ)
		assert.True(t, bytes.Equal(text, p), "the echo differs from what was sent")
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}

func TestMessageOverLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, ended := startServer(ctx, t)

	errc := make(chan error, 1)
	go func() { errc <- c.Write(ctx, websocket.MessageBinary, make([]byte, readLimit+1)) }()
	// The server closes with 1009 as soon as it has read the header. Whether the client
	// still reads that close frame depends on TCP: closing a socket with unread data
	// resets the connection, and a reset can discard what was in flight.
	_, _, err := c.Read(ctx)
	assert.ErrorIs(t, err, net.ErrClosed)
	<-errc

	err = endOf(ctx, t, ended)
	assert.ErrorIs(t, err, websocket.ErrMessageTooBig)
	var pe *websocket.ProtocolError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, websocket.StatusMessageTooBig, pe.Code)
}

func TestPeerVanishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, ended := startServer(ctx, t)

	require.NoError(t, c.CloseNow())
	// The echo reads with the request's context: the end of the connection must show as
	// such, not as that context being canceled.
	err := endOf(ctx, t, ended)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.NotErrorIs(t, err, context.Canceled)
	assert.Equal(t, websocket.StatusCode(-1), websocket.CloseStatus(err), "no close frame was sent")
}

func TestRefusedHandshake(t *testing.T) {
	ended := make(chan error, 1)
	srv := httptest.NewServer(newHandler(func(_ string, err error) { ended <- err }))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	var he *websocket.HandshakeError
	assert.ErrorAs(t, <-ended, &he)
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, "127.0.0.1:0") }()
	cancel()
	select {
	case err := <-errc:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return once its context was done")
	}
}
