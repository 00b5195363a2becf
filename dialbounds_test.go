package websocket

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readCountingConn counts the bytes read from it.
type readCountingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c readCountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// countingReads returns a NetDialContext whose connections add the bytes read from them
// to read.
func countingReads(read *atomic.Int64) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return readCountingConn{Conn: nc, read: read}, nil
	}
}

// writeFilled writes head, then about n bytes of fill, then tail. The fill is one header
// value when line >= n (its name ends head), else header lines of line bytes each. It stops
// at the first failed write: the client has gone.
func writeFilled(w io.Writer, head string, n, line int, tail string) {
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	chunk := []byte(strings.Repeat("a", 64<<10))
	if line < n {
		chunk = []byte(strings.Repeat("X-Fill: "+strings.Repeat("a", line-10)+"\r\n", len(chunk)/line))
		n -= n % line
	}
	for n > 0 {
		k, err := w.Write(chunk[:min(n, len(chunk))])
		if err != nil {
			return
		}
		n -= k
	}
	io.WriteString(w, tail)
}

// TestDialResponseHeadLimit checks a server or a proxy cannot make Dial read more than
// maxResponseHead bytes of status line and headers, whether in one endless line or in
// endless headers, and that a head of maxResponseHead bytes is taken.
func TestDialResponseHeadLimit(t *testing.T) {
	const huge = 16 << 20
	status := "HTTP/1.1 101 Switching Protocols\r\n"
	rest := func(key string) string {
		return "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	}
	// padded writes a valid 101 head of exactly size bytes, one header padding it.
	padded := func(size int) func(net.Conn, *http.Request) {
		return func(nc net.Conn, req *http.Request) {
			key := req.Header.Get("Sec-WebSocket-Key")
			pad := size - len(status) - len(rest(key)) - len("X-Pad: \r\n")
			io.WriteString(nc, status+"X-Pad: "+strings.Repeat("p", pad)+"\r\n"+rest(key))
		}
	}
	tests := []struct {
		name    string
		respond func(nc net.Conn, req *http.Request)
		proxy   bool // respond answers the proxy's CONNECT; the server is never reached
		wantErr bool
	}{
		{name: "head of the limit", respond: padded(maxResponseHead)},
		{name: "head a byte past the limit", respond: padded(maxResponseHead + 1), wantErr: true},
		{
			name: "one header line of 16 MiB",
			respond: func(nc net.Conn, req *http.Request) {
				writeFilled(nc, status+"X-Fill: ", huge, huge, "\r\n"+rest(req.Header.Get("Sec-WebSocket-Key")))
			},
			wantErr: true,
		},
		{
			name: "16 MiB of headers",
			respond: func(nc net.Conn, req *http.Request) {
				writeFilled(nc, status, huge, 100, rest(req.Header.Get("Sec-WebSocket-Key")))
			},
			wantErr: true,
		},
		{
			name:    "a status line of 16 MiB",
			respond: func(nc net.Conn, req *http.Request) { writeFilled(nc, "HTTP/1.1 101 ", huge, huge, "\r\n\r\n") },
			wantErr: true,
		},
		{
			name:    "proxy answering CONNECT with 16 MiB of headers",
			respond: func(nc net.Conn, req *http.Request) { writeFilled(nc, "HTTP/1.1 200 OK\r\n", huge, 100, "\r\n") },
			proxy:   true,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRawHTTPServer(t, tt.respond)
			var read atomic.Int64
			opts := &DialOptions{NetDialContext: countingReads(&read)}
			target := "ws://" + srv.addr
			if tt.proxy {
				opts.Proxy = fixedProxy("http://" + srv.addr)
				target = "ws://203.0.113.1:80" // never dialed: the proxy fails first
			}

			c, _, err := Dial(waitContext(t), target, opts)
			if !tt.wantErr {
				require.NoError(t, err)
				c.CloseNow()
				assert.Equal(t, int64(maxResponseHead), read.Load())
				return
			}
			assert.ErrorIs(t, err, errResponseHead)
			assert.Nil(t, c)
			assert.LessOrEqual(t, read.Load(), int64(maxResponseHead), "bytes Dial read")
		})
	}
}

func TestHandshakeTimeoutDefault(t *testing.T) {
	withDeadline, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		timeout time.Duration
		want    time.Duration
	}{
		{name: "no deadline, default", ctx: t.Context(), want: defaultHandshakeTimeout},
		{name: "deadline, default", ctx: withDeadline, want: 0},
		{name: "no deadline, set", ctx: t.Context(), timeout: time.Second, want: time.Second},
		{name: "deadline, set", ctx: withDeadline, timeout: time.Second, want: time.Second},
		{name: "no deadline, negative", ctx: t.Context(), timeout: -1, want: 0},
		{name: "deadline, negative", ctx: withDeadline, timeout: -1, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, handshakeTimeout(tt.ctx, &DialOptions{HandshakeTimeout: tt.timeout}))
		})
	}
}

// TestDialHandshakeTimeout checks HandshakeTimeout ends a Dial whose ctx has no deadline,
// when a server or a proxy never finishes its answer.
func TestDialHandshakeTimeout(t *testing.T) {
	tests := []struct {
		name    string
		respond func(nc net.Conn, req *http.Request)
		proxy   bool
	}{
		{name: "no answer"},
		{
			name: "head never finished",
			respond: func(nc net.Conn, _ *http.Request) {
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
			},
		},
		{name: "proxy never answers CONNECT", proxy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRawHTTPServer(t, tt.respond)
			opts := &DialOptions{HandshakeTimeout: 50 * time.Millisecond}
			target := "ws://" + srv.addr
			if tt.proxy {
				opts.Proxy = fixedProxy("http://" + srv.addr)
				target = "ws://203.0.113.1:80"
			}
			type result struct {
				c   *Conn
				err error
			}
			done := make(chan result, 1)
			go func() {
				// t.Context has no deadline: the server holds the connection open, and
				// only HandshakeTimeout ends Dial.
				c, _, err := Dial(t.Context(), target, opts)
				done <- result{c, err}
			}()
			select {
			case r := <-done:
				assert.ErrorIs(t, r.err, context.DeadlineExceeded)
				assert.Nil(t, r.c)
			case <-waitContext(t).Done():
				// Closing the server's connections at cleanup lets Dial return.
				t.Fatal("Dial still blocked long after HandshakeTimeout")
			}
		})
	}
}

// TestDialRefusalSaysWhy checks a refused handshake's error quotes the status line and the
// start of the body, from a server or a proxy; the response keeps the body's start too.
func TestDialRefusalSaysWhy(t *testing.T) {
	long := strings.Repeat("a", maxErrorBody) + "TAIL"
	tests := []struct {
		name     string
		response string
		proxy    bool

		wantStatus int
		wantIn     []string // the error's text has these
		wantNotIn  []string
		wantBody   string
	}{
		{
			name:       "403 with a reason",
			response:   "HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\n\r\norigin not allowed\n",
			wantStatus: http.StatusForbidden,
			wantIn:     []string{`"HTTP/1.1 403 Forbidden"`, `"origin not allowed\n"`},
			wantBody:   "origin not allowed\n",
		},
		{
			name:       "503 without a body",
			response:   "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
			wantStatus: http.StatusServiceUnavailable,
			wantIn:     []string{`"HTTP/1.1 503 Service Unavailable"`},
			wantNotIn:  []string{"body"},
		},
		{
			name:       "a long body is cut",
			response:   fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s", len(long), long),
			wantStatus: http.StatusBadRequest,
			wantIn:     []string{`"HTTP/1.1 400 Bad Request"`, fmt.Sprintf("%q", long[:maxErrorBody])},
			wantNotIn:  []string{"TAIL"},
			wantBody:   long[:maxErrorBody],
		},
		{
			name:       "a body with control characters is quoted",
			response:   "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n\x1b[31mno\r\n",
			wantStatus: http.StatusForbidden,
			wantIn:     []string{`"\x1b[31mno\r\n"`},
			wantNotIn:  []string{"\x1b"},
			wantBody:   "\x1b[31mno\r\n",
		},
		{
			name:       "proxy",
			response:   "HTTP/1.1 403 Forbidden\r\nContent-Length: 17\r\n\r\nhost not allowed\n",
			proxy:      true,
			wantStatus: http.StatusForbidden,
			wantIn:     []string{"proxy 127.0.0.1:", "CONNECT", `"HTTP/1.1 403 Forbidden"`, `"host not allowed\n"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRawHTTPServer(t, respondWith(func(string) string { return tt.response }))
			opts := &DialOptions{}
			target := "ws://" + srv.addr
			if tt.proxy {
				opts.Proxy = fixedProxy("http://" + srv.addr)
				target = "ws://203.0.113.1:80"
			}
			c, resp, err := Dial(waitContext(t), target, opts)
			assert.Nil(t, c)
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tt.wantStatus, he.Status)
			// What the message says is the behaviour under test here.
			for _, s := range tt.wantIn {
				assert.Contains(t, err.Error(), s)
			}
			for _, s := range tt.wantNotIn {
				assert.NotContains(t, err.Error(), s)
			}
			assert.Equal(t, 1, strings.Count(err.Error(), "websocket: "), "prefixes in %q", err)
			if tt.proxy {
				return
			}
			require.NotNil(t, resp)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantBody, string(body))
		})
	}

	t.Run("Accept's reason reaches Dial", func(t *testing.T) {
		srv, results := newAcceptServer(t, nil)
		_, _, err := Dial(waitContext(t), wsURL(srv), &DialOptions{Header: http.Header{"Origin": {"https://evil.example"}}})
		var he *HandshakeError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusForbidden, he.Status)
		var serverErr *HandshakeError
		require.ErrorAs(t, receiveAccepted(t, results).err, &serverErr)
		quoted := strconv.Quote(serverErr.Reason)
		assert.Contains(t, err.Error(), quoted[1:len(quoted)-1])
	})
}

// TestDialHTTPURL checks http:// and https:// URLs, such as an httptest.Server's, are
// dialed as ws:// and wss://.
func TestDialHTTPURL(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("TLS ", useTLS), func(t *testing.T) {
			h, results := acceptHandler(t, nil, nil)
			srv := httptest.NewUnstartedServer(h)
			opts := &DialOptions{}
			if useTLS {
				srv.StartTLS()
				opts.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			var asked string
			opts.Proxy = func(r *http.Request) (*url.URL, error) {
				asked = r.URL.Scheme
				return nil, nil
			}

			c, _, err := Dial(waitContext(t), srv.URL+"/chat", opts)
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			a := receiveAccepted(t, results)
			require.NoError(t, a.err)
			assert.Equal(t, useTLS, a.req.TLS != nil, "request over TLS")
			assert.Equal(t, "/chat", a.req.RequestURI)
			assert.Equal(t, strings.SplitN(srv.URL, ":", 2)[0], asked, "the scheme the proxy func sees")
			exchangeMessages(t, c, a.conn)
		})
	}
}
