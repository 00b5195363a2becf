package websocket

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ownBuffersWriter is middleware whose Hijack hands out buffers of its own, 512 bytes
// each, over net/http's connection, and keeps them to use after the handler is done.
type ownBuffersWriter struct {
	http.ResponseWriter
	brw **bufio.ReadWriter
}

func (w ownBuffersWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, inner, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	*w.brw = bufio.NewReadWriter(bufio.NewReaderSize(struct{ io.Reader }{inner.Reader}, 512), bufio.NewWriterSize(nc, 512))
	return nc, *w.brw, nil
}

// TestAcceptLeavesAnotherHijackersBuffers checks that Accept takes nothing from a
// Hijacker that is not net/http's: its buffers are its own, and it may keep using them.
func TestAcceptLeavesAnotherHijackersBuffers(t *testing.T) {
	tests := []struct {
		name     string
		wrap     func(http.ResponseWriter, **bufio.ReadWriter) http.ResponseWriter
		wantSize int
	}{
		{
			name: "Hijacker with buffers of its own",
			wrap: func(w http.ResponseWriter, brw **bufio.ReadWriter) http.ResponseWriter {
				return ownBuffersWriter{w, brw}
			},
			wantSize: 512,
		},
		{
			name: "Hijacker passing on net/http's buffers",
			wrap: func(w http.ResponseWriter, brw **bufio.ReadWriter) http.ResponseWriter {
				return recordingWriter{w, brw}
			},
			wantSize: 4096,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var brw *bufio.ReadWriter
			c, a := acceptThrough(t, func(w http.ResponseWriter) http.ResponseWriter { return tt.wrap(w, &brw) })
			exchangeMessages(t, c, a.conn)

			require.NotNil(t, brw)
			assert.Equal(t, tt.wantSize, brw.Reader.Size(), "read buffer taken")
			assert.Equal(t, tt.wantSize, brw.Writer.Size(), "write buffer taken")
			// The middleware writes through its buffers after Accept: here a server frame
			// (RFC 6455 §5.7's unmasked "Hello"), which the client must receive.
			require.NotPanics(t, func() {
				_, err := brw.Writer.Write([]byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'})
				require.NoError(t, err)
				require.NoError(t, brw.Writer.Flush())
			})
			typ, p, err := c.Read(waitContext(t))
			require.NoError(t, err)
			assert.Equal(t, MessageText, typ)
			assert.Equal(t, "Hello", string(p))
		})
	}
}

// bodyRead is what a handler saw when it read the request body after Accept.
type bodyRead struct {
	conn     *Conn
	err      error
	panicked any
}

// TestAcceptThenRequestBody reads the request body after Accept, which the Hijacker
// contract forbids but must not crash the handler.
func TestAcceptThenRequestBody(t *testing.T) {
	wraps := []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
	}{
		{name: "net/http ResponseWriter", wrap: func(w http.ResponseWriter) http.ResponseWriter { return w }},
		{name: "Unwrap leads to net/http's", wrap: func(w http.ResponseWriter) http.ResponseWriter { return unwrappingWriter{w} }},
	}
	bodies := []struct {
		name   string
		header string
	}{
		{name: "Content-Length", header: "Content-Length: 5"},
		{name: "chunked", header: "Transfer-Encoding: chunked"},
	}
	for _, wt := range wraps {
		for _, bt := range bodies {
			t.Run(wt.name+"/"+bt.name, func(t *testing.T) {
				results := make(chan bodyRead, 1)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var res bodyRead
					defer func() {
						res.panicked = recover()
						results <- res
					}()
					res.conn, res.err = Accept(wt.wrap(w), r, nil)
					if res.err == nil {
						_, res.err = io.ReadAll(r.Body)
					}
				}))
				t.Cleanup(srv.Close)

				// The body is announced and never sent.
				req := fmt.Sprintf("GET /chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
					"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n%s\r\n\r\n",
					srv.Listener.Addr(), sampleKey, bt.header)
				resp, _, _ := sendRaw(t, srv, []byte(req))
				require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

				res := <-results
				if res.conn != nil {
					t.Cleanup(func() { res.conn.CloseNow() })
				}
				require.Nil(t, res.panicked, "reading the body after Accept panicked")
				require.NotNil(t, res.conn)
				assert.ErrorIs(t, res.err, http.ErrHijacked)
			})
		}
	}
}

// TestNetHTTPHijacker checks which ResponseWriters Accept recognises as net/http's own,
// the only ones whose buffers it empties.
func TestNetHTTPHijacker(t *testing.T) {
	var brw *bufio.ReadWriter
	tests := []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
		want bool
	}{
		{name: "net/http ResponseWriter", wrap: func(w http.ResponseWriter) http.ResponseWriter { return w }, want: true},
		{name: "Unwrap leads to net/http's", wrap: func(w http.ResponseWriter) http.ResponseWriter { return unwrappingWriter{w} }, want: true},
		{name: "two Unwraps", wrap: func(w http.ResponseWriter) http.ResponseWriter { return unwrappingWriter{unwrappingWriter{w}} }, want: true},
		{name: "Hijacker of its own", wrap: func(w http.ResponseWriter) http.ResponseWriter { return ownBuffersWriter{w, &brw} }, want: false},
		{name: "Hijacker passing on net/http's", wrap: func(w http.ResponseWriter) http.ResponseWriter { return recordingWriter{w, &brw} }, want: false},
		{name: "Unwrap leads to another Hijacker", wrap: func(w http.ResponseWriter) http.ResponseWriter { return unwrappingWriter{recordingWriter{w, &brw}} }, want: false},
		{name: "no Hijacker", wrap: func(w http.ResponseWriter) http.ResponseWriter { return hidingWriter{w} }, want: false},
		{name: "recorder", wrap: func(http.ResponseWriter) http.ResponseWriter { return httptest.NewRecorder() }, want: false},
	}
	got := make(chan []bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res []bool
		for _, tt := range tests {
			res = append(res, netHTTPHijacker(tt.wrap(w)))
		}
		got <- res
	}))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	res := <-got
	for i, tt := range tests {
		assert.Equal(t, tt.want, res[i], tt.name)
	}
}
