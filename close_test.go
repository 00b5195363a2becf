package websocket

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecondCloseWaitsForTheFirst calls Close while another Close waits for the peer's
// close frame, which never comes: the second returns once the first has given up and
// closed the Conn, not while it is still open.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	p := newRawPeer(t, false)
	first := make(chan error, 1)
	go func() { first <- p.conn.Close(StatusNormalClosure, "") }()
	require.Equal(t, opClose, p.next().op)

	err := p.conn.Close(StatusGoingAway, "")
	assert.True(t, p.conn.isClosed(), "the second Close returned before the Conn was closed")
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Error(t, <-first)
}

func TestCloseHandshake(t *testing.T) {
	for _, initiatorIsClient := range []bool{true, false} {
		t.Run(fmt.Sprintf("client initiates=%v", initiatorIsClient), func(t *testing.T) {
			server, client := pipePair(t)
			closer, other := server, client
			if initiatorIsClient {
				closer, other = client, server
			}
			readErr := make(chan error, 1)
			go func() { _, _, err := other.Read(context.Background()); readErr <- err }()
			require.NoError(t, closer.Close(StatusGoingAway, "bye"))
			err := <-readErr
			assert.Equal(t, StatusGoingAway, CloseStatus(err))
			var ce *CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "bye", ce.Reason)
			assert.ErrorIs(t, err, net.ErrClosed)

			// Every call on either side now says the Conn is closed.
			for _, c := range []*Conn{closer, other} {
				_, _, err := c.Read(context.Background())
				assert.ErrorIs(t, err, net.ErrClosed)
				assert.ErrorIs(t, c.Write(context.Background(), MessageText, []byte("x")), net.ErrClosed)
				_, err = c.Writer(context.Background(), MessageText)
				assert.ErrorIs(t, err, net.ErrClosed)
				_, _, err = c.Reader(context.Background())
				assert.ErrorIs(t, err, net.ErrClosed)
				assert.ErrorIs(t, c.Ping(context.Background()), net.ErrClosed)
				assert.ErrorIs(t, c.Close(StatusNormalClosure, ""), net.ErrClosed)
				assert.ErrorIs(t, c.CloseNow(), net.ErrClosed)
			}
		})
	}
}

func TestCloseWhileAnotherGoroutineReads(t *testing.T) {
	server, client := pipePair(t)
	serverRead := make(chan error, 1)
	go func() { _, _, err := server.Read(context.Background()); serverRead <- err }()
	clientRead := make(chan error, 1)
	go func() { _, _, err := client.Read(context.Background()); clientRead <- err }()
	require.NoError(t, client.Close(StatusNormalClosure, ""))
	assert.Equal(t, StatusNormalClosure, CloseStatus(<-serverRead))
	// The client's reader saw the server's answer to its close.
	assert.Equal(t, StatusNormalClosure, CloseStatus(<-clientRead))
}

func TestCloseDiscardsDataUntilPeerCloses(t *testing.T) {
	p := newRawPeer(t, false)
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close(StatusNormalClosure, "done") }()
	f := p.next()
	require.Equal(t, opClose, f.op)
	assert.Equal(t, StatusNormalClosure, f.closeCode())
	assert.Equal(t, "done", string(f.payload[2:]))
	p.send(frame{fin: true, op: opText, payload: []byte("late data")},
		frame{fin: true, op: opPing, payload: []byte("late ping")},
		frame{fin: true, op: opClose, payload: []byte{0x03, 0xE8}})
	require.NoError(t, <-errc)
	p.expectEnd() // no pong after our close frame, and the server closed TCP
}

func TestCloseTimesOut(t *testing.T) {
	p := newRawPeer(t, false)
	p.conn.closeTimeout = 50 * time.Millisecond
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close(StatusNormalClosure, "") }()
	require.Equal(t, opClose, p.next().op)
	err := <-errc // the peer never answers
	require.Error(t, err)
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Equal(t, StatusCode(-1), CloseStatus(err))
	p.expectEnd()
}

func TestCloseArguments(t *testing.T) {
	server, client := pipePair(t)
	for _, tc := range []struct {
		code   StatusCode
		reason string
	}{
		{StatusNormalClosure, strings.Repeat("x", 124)},
		{StatusNormalClosure, "\xff"},
		{StatusNoStatusReceived, "reason without code"},
		{StatusAbnormalClosure, ""},
		{StatusTLSHandshake, ""},
		{999, ""},
		{5000, ""},
	} {
		err := client.Close(tc.code, tc.reason)
		assert.Error(t, err, "%d %q", tc.code, tc.reason)
		assert.NotErrorIs(t, err, net.ErrClosed)
	}
	// Nothing was sent: the Conn still works.
	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("still open")) }()
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "still open", string(msg))
	require.NoError(t, <-errc)
}

// TestCloseIgnoresEarlierContexts checks that a context used by earlier reads, ending
// while Close waits for the peer, does not cut the closing handshake short.
func TestCloseIgnoresEarlierContexts(t *testing.T) {
	p := newRawPeer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.send(frame{fin: true, op: opText, payload: []byte("first")})
	_, msg, err := p.conn.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, "first", string(msg))

	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close(StatusNormalClosure, "") }()
	require.Equal(t, opClose, p.next().op)
	cancel()
	p.send(frame{fin: true, op: opClose, payload: []byte{0x03, 0xE8}})
	assert.NoError(t, <-errc)
}

func TestCloseNowUnblocksReadAndWrite(t *testing.T) {
	server, _ := pipePair(t)
	readErr := make(chan error, 1)
	go func() { _, _, err := server.Read(context.Background()); readErr <- err }()
	writeErr := make(chan error, 1)
	// net.Pipe has no buffer: with nobody reading the client, this write blocks.
	go func() { writeErr <- server.Write(context.Background(), MessageText, payloadOf(100)) }()
	require.NoError(t, server.CloseNow())
	assert.ErrorIs(t, <-readErr, net.ErrClosed)
	assert.ErrorIs(t, <-writeErr, net.ErrClosed)
	assert.ErrorIs(t, server.CloseNow(), net.ErrClosed)
}

func TestPeerCloses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		code    StatusCode
		reason  string
	}{
		{"normal with reason", append([]byte{0x03, 0xE8}, "bye"...), StatusNormalClosure, "bye"},
		{"empty payload", nil, StatusNoStatusReceived, ""},
		{"private code", []byte{0x0F, 0xA0}, 4000, ""},
		{"registered code", []byte{0x0B, 0xB8}, 3000, ""},
		{"125-byte payload", append([]byte{0x03, 0xE8}, strings.Repeat("r", 123)...), StatusNormalClosure, strings.Repeat("r", 123)},
	} {
		for _, connIsClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/client=%v", tc.name, connIsClient), func(t *testing.T) {
				p := newRawPeer(t, connIsClient)
				p.readLoop()
				p.send(frame{fin: true, op: opClose, payload: tc.payload},
					frame{fin: true, op: opText, payload: []byte("after close")})
				echo := p.next()
				require.Equal(t, opClose, echo.op)
				assert.Equal(t, tc.code, echo.closeCode(), "the code is echoed")
				if tc.code == StatusNoStatusReceived {
					assert.Empty(t, echo.payload)
				}
				if connIsClient {
					// The client waits for the server to close TCP first (§7.1.1).
					select {
					case r := <-p.reads:
						t.Fatalf("client returned before the server closed TCP: %v", r.err)
					default:
					}
					p.nc.Close()
				}
				r := p.nextRead()
				assert.Equal(t, tc.code, CloseStatus(r.err))
				var ce *CloseError
				require.ErrorAs(t, r.err, &ce)
				assert.Equal(t, tc.reason, ce.Reason)
				assert.ErrorIs(t, r.err, net.ErrClosed)
				if !connIsClient {
					p.expectEnd() // the server closes TCP at once, and sends nothing more
				}
			})
		}
	}
}

func TestPeerVanishes(t *testing.T) {
	p := newRawPeer(t, false)
	p.readLoop()
	p.write(encodeFrame(frame{fin: true, op: opBinary, payload: []byte("abc")}, true, 10)[:8])
	p.nc.Close()
	r := p.nextRead()
	assert.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
	assert.ErrorIs(t, r.err, net.ErrClosed)
	assert.Equal(t, StatusCode(-1), CloseStatus(r.err))
}

// TestPeerVanishesMidFrame checks that the end of the stream inside a frame is an error,
// never the end of a shorter message.
func TestPeerVanishesMidFrame(t *testing.T) {
	whole := encodeFrame(frame{fin: true, op: opText, payload: []byte("Hello")}, true, 5)
	for cut := 1; cut < len(whole); cut++ {
		for _, streaming := range []bool{false, true} {
			wc := &memConn{r: bytes.NewReader(whole[:cut])}
			c := newConn(wc, nil, false, "")
			var err error
			if streaming {
				var r io.Reader
				if _, r, err = c.Reader(context.Background()); err == nil {
					_, err = io.ReadAll(r)
				}
			} else {
				var msg []byte
				_, msg, err = c.Read(context.Background())
				assert.Nil(t, msg, "cut at %d", cut)
			}
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d, streaming=%v", cut, streaming)
			assert.ErrorIs(t, err, net.ErrClosed, "cut at %d, streaming=%v", cut, streaming)
		}
	}
}

// TestNothingReadAfterClose checks that messages already buffered are not handed out once
// the Conn is closed.
func TestNothingReadAfterClose(t *testing.T) {
	wire := wireOf(t, true, []byte("one"), []byte("two"))
	for _, how := range []string{"CloseNow", "protocol error"} {
		t.Run(how, func(t *testing.T) {
			in := wire
			if how == "protocol error" {
				in = append(encodeFrame(frame{fin: true, op: 3}, true, 0), wire...)
			}
			c := newConn(&memConn{r: bytes.NewReader(in)}, nil, false, "")
			if how == "CloseNow" {
				_, msg, err := c.Read(context.Background()) // buffers the second message too
				require.NoError(t, err)
				assert.Equal(t, "one", string(msg))
				require.NoError(t, c.CloseNow())
			} else {
				_, _, err := c.Read(context.Background())
				require.Equal(t, StatusProtocolError, protocolCode(err))
			}
			_, _, err := c.Read(context.Background())
			assert.ErrorIs(t, err, net.ErrClosed)
			_, _, err = c.Reader(context.Background())
			assert.ErrorIs(t, err, net.ErrClosed)
		})
	}
}
