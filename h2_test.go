package websocket

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket/internal/xconnect"
)

// Go's HTTP/2 server accepts an extended CONNECT only with GODEBUG=http2xconnect=1 in
// the environment when the process starts, so the tests that need it run again in a
// child process with the variable set (internal/xconnect).

// h2Server is a TLS test server speaking HTTP/2 whose handler Accepts and hands the Conn
// to serve; it records the protocol version of the requests it accepted.
func h2Server(t testing.TB, opts *AcceptOptions, serve func(*Conn, *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		// RFC 8441: the stream lives as long as the handler, so serve runs inside it.
		serve(c, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// h2Dialer opens streams on one HTTP/2 connection to srv with Go's own HTTP/2 client.
// http.Transport refuses the :protocol pseudo-header (its header check runs before the
// HTTP/2 code, which would send it), so the test reaches that code through the
// transport's TLSNextProto hook, over a TLS connection of its own.
type h2Dialer struct {
	rt  http.RoundTripper
	url string
}

func newH2Dialer(t testing.TB, srv *httptest.Server) *h2Dialer {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport)
	tr.CloseIdleConnections() // sets the transport's HTTP/2 up, TLSNextProto included
	cfg := tr.TLSClientConfig.Clone()
	cfg.NextProtos = []string{"h2"}
	addr := srv.Listener.Addr().String()
	tc, err := tls.Dial("tcp", addr, cfg)
	require.NoError(t, err)
	require.Equal(t, "h2", tc.ConnectionState().NegotiatedProtocol)
	next := tr.TLSNextProto["h2"]
	require.NotNil(t, next, "the transport has no HTTP/2")
	d := &h2Dialer{rt: next(addr, tc), url: srv.URL}
	t.Cleanup(func() { tc.Close() })
	return d
}

// roundTrip sends an extended CONNECT for a WebSocket with header and returns the
// response, and the writer of the request body.
func (d *h2Dialer) roundTrip(t testing.TB, method, protocol string, header http.Header) (*http.Response, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, d.url+"/", pr)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if protocol != "" {
		req.Header[":protocol"] = []string{protocol}
	}
	resp, err := d.rt.RoundTrip(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close(); pw.Close() })
	return resp, pw
}

// dial opens a WebSocket on a new stream and returns the client Conn, made by hand on
// the stream (Dial speaks HTTP/1.1 only), and the response.
func (d *h2Dialer) dial(t testing.TB, mode CompressionMode, header http.Header) (*Conn, *http.Response, *h2Client) {
	t.Helper()
	h := http.Header{"Sec-Websocket-Version": {"13"}}
	if offer := deflateOffer(mode); offer != "" {
		h.Set("Sec-WebSocket-Extensions", offer)
	}
	for k, v := range header {
		h[k] = v
	}
	resp, pw := d.roundTrip(t, http.MethodConnect, "websocket", h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2, resp.ProtoMajor)
	p, compress, err := deflateResponse(resp.Header.Values("Sec-WebSocket-Extensions"), mode)
	require.NoError(t, err)
	hc := &h2Client{pw: pw, body: resp.Body}
	c := newConn(hc, nil, true, resp.Header.Get("Sec-WebSocket-Protocol"))
	if compress {
		c.useDeflate(p)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp, hc
}

// h2Client is the client's net.Conn on the stream: the request body out, the response
// body in. It is test code: a read deadline that passes ends the stream, which is all the
// client's bounded waits of the closing handshake need.
type h2Client struct {
	pw    *io.PipeWriter
	body  io.ReadCloser
	read  atomic.Int64 // bytes read, to see compression on the wire
	mu    sync.Mutex
	timer *time.Timer
}

func (c *h2Client) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	c.read.Add(int64(n))
	return n, err
}
func (c *h2Client) Write(p []byte) (int, error) { return c.pw.Write(p) }
func (c *h2Client) Close() error {
	c.SetReadDeadline(time.Time{})
	c.pw.Close()
	return c.body.Close()
}
func (c *h2Client) LocalAddr() net.Addr              { return streamAddr("client") }
func (c *h2Client) RemoteAddr() net.Addr             { return streamAddr("server") }
func (c *h2Client) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *h2Client) SetWriteDeadline(time.Time) error { return nil }
func (c *h2Client) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() { c.body.Close() })
	}
	return nil
}

func TestH2Echo(t *testing.T) {
	if xconnect.InChild(t) {
		return
	}
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: the default read limit
	served := make(chan error, 16)
	srv := h2Server(t, &AcceptOptions{
		Subprotocols:   []string{"chat"},
		Compression:    CompressionContextTakeover,
		ResponseHeader: http.Header{"X-Served": {"yes"}, "Sec-WebSocket-Protocol": {"not this"}},
	}, func(c *Conn, r *http.Request) {
		if r.ProtoMajor != 2 || r.Method != http.MethodConnect {
			served <- errors.New("not an HTTP/2 CONNECT: " + r.Proto + " " + r.Method)
			return
		}
		served <- confEchoStream(c)
	})
	d := newH2Dialer(t, srv)

	tests := []struct {
		name string
		mode CompressionMode
		run  func(t *testing.T, c *Conn)
	}{
		{"text", CompressionDisabled, func(t *testing.T, c *Conn) {
			require.NoError(t, c.Write(ctx, MessageText, []byte("hello over h2")))
			typ, p, err := c.Read(ctx)
			require.NoError(t, err)
			assert.Equal(t, MessageText, typ)
			assert.Equal(t, "hello over h2", string(p))
		}},
		{"empty and 1 MiB", CompressionDisabled, func(t *testing.T, c *Conn) {
			for _, msg := range [][]byte{{}, big} {
				require.NoError(t, c.Write(ctx, MessageBinary, msg))
				_, p, err := c.Read(ctx)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(msg, p), "%d bytes echoed as %d", len(msg), len(p))
			}
		}},
		{"fragmented", CompressionDisabled, func(t *testing.T, c *Conn) {
			w, err := c.Writer(ctx, MessageBinary)
			require.NoError(t, err)
			var want []byte
			for i := range 40 {
				part := bytes.Repeat([]byte{byte(i)}, 1300+i)
				want = append(want, part...)
				_, err := w.Write(part)
				require.NoError(t, err)
			}
			require.NoError(t, w.Close())
			_, p, err := c.Read(ctx)
			require.NoError(t, err)
			assert.Equal(t, want, p)
		}},
		{"pings both ways", CompressionDisabled, func(t *testing.T, c *Conn) {
			// Pongs are seen only while someone reads: a goroutine reads the echo.
			got := make(chan string, 1)
			go func() {
				_, p, err := c.Read(ctx)
				if err != nil {
					got <- err.Error()
				}
				got <- string(p)
			}()
			for range 3 {
				require.NoError(t, c.Ping(ctx))
			}
			require.NoError(t, c.Write(ctx, MessageText, []byte("after the pings")))
			assert.Equal(t, "after the pings", <-got)
		}},
		{"compressed", CompressionContextTakeover, func(t *testing.T, c *Conn) {
			msg := bytes.Repeat([]byte("compress me over one HTTP/2 stream "), 3000)
			for range 3 {
				require.NoError(t, c.Write(ctx, MessageText, msg))
				_, p, err := c.Read(ctx)
				require.NoError(t, err)
				assert.Equal(t, msg, p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, hc := d.dial(t, tt.mode, http.Header{"Sec-Websocket-Protocol": {"other, chat"}})
			assert.Equal(t, "chat", c.Subprotocol())
			assert.Equal(t, "yes", resp.Header.Get("X-Served"))
			assert.Equal(t, []string{"chat"}, resp.Header.Values("Sec-WebSocket-Protocol"))
			assert.Empty(t, resp.Header.Get("Sec-WebSocket-Accept"), "RFC 8441 §5: no key, no accept")
			if tt.mode != CompressionDisabled {
				assert.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
			}
			tt.run(t, c)
			if tt.mode != CompressionDisabled {
				assert.Less(t, hc.read.Load(), int64(20000), "the echoes of 3 × 105 kB came compressed")
			}
			require.NoError(t, c.Close(StatusNormalClosure, "done"))
			assert.Equal(t, StatusNormalClosure, CloseStatus(<-served))
			// The server's handler returned, ending the response: the stream ended.
			_, err := resp.Body.Read(make([]byte, 1))
			assert.Error(t, err)
		})
	}

	t.Run("two WebSockets on one connection", func(t *testing.T) {
		a, _, _ := d.dial(t, CompressionDisabled, nil)
		b, _, _ := d.dial(t, CompressionDisabled, nil)
		require.NoError(t, a.Write(ctx, MessageText, []byte("a")))
		require.NoError(t, b.Write(ctx, MessageText, []byte("b")))
		_, pb, err := b.Read(ctx)
		require.NoError(t, err)
		_, pa, err := a.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, "a", string(pa))
		assert.Equal(t, "b", string(pb))
		require.NoError(t, a.Close(StatusNormalClosure, ""))
		require.NoError(t, b.Close(StatusNormalClosure, ""))
		<-served
		<-served
	})
}

// TestH2Conn covers what the server side does on its own over HTTP/2: closing first,
// limits, pings it sends, and contexts that end reads and writes.
func TestH2Conn(t *testing.T) {
	if xconnect.InChild(t) {
		return
	}
	ctx := context.Background()
	type result struct {
		err error
		msg string
	}
	tests := []struct {
		name   string
		opts   *AcceptOptions
		server func(c *Conn, r *http.Request) result
		client func(t *testing.T, c *Conn, hc *h2Client)
		check  func(t *testing.T, res result)
	}{
		{
			name: "server closes first",
			server: func(c *Conn, _ *http.Request) result {
				require.NoError(t, c.Write(ctx, MessageText, []byte("bye soon")))
				return result{err: c.Close(StatusGoingAway, "restarting")}
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				_, p, err := c.Read(ctx)
				require.NoError(t, err)
				assert.Equal(t, "bye soon", string(p))
				_, _, err = c.Read(ctx)
				var ce *CloseError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, StatusGoingAway, ce.Code)
				assert.Equal(t, "restarting", ce.Reason)
			},
			check: func(t *testing.T, res result) {
				assert.NoError(t, res.err, "the client answered the close frame")
			},
		},
		{
			name: "read limit",
			server: func(c *Conn, _ *http.Request) result {
				c.SetReadLimit(1000)
				_, _, err := c.Read(ctx)
				return result{err: err}
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				require.NoError(t, c.Write(ctx, MessageBinary, make([]byte, 1001)))
				_, _, err := c.Read(ctx)
				assert.Equal(t, StatusMessageTooBig, CloseStatus(err))
			},
			check: func(t *testing.T, res result) {
				assert.ErrorIs(t, res.err, ErrMessageTooBig)
			},
		},
		{
			name: "server pings",
			server: func(c *Conn, _ *http.Request) result {
				done := make(chan error, 1)
				go func() { _, _, err := c.Read(ctx); done <- err }()
				err := c.Ping(ctx)
				if err == nil {
					err = c.Write(ctx, MessageText, []byte("pinged"))
				}
				<-done
				return result{err: err}
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				_, p, err := c.Read(ctx)
				require.NoError(t, err)
				assert.Equal(t, "pinged", string(p))
				require.NoError(t, c.Close(StatusNormalClosure, ""))
			},
			check: func(t *testing.T, res result) { assert.NoError(t, res.err) },
		},
		{
			// The answers to pipelined messages leave together, in one flush.
			name: "coalesced writes",
			opts: &AcceptOptions{CoalesceWrites: true},
			server: func(c *Conn, _ *http.Request) result {
				return result{err: confEchoStream(c)}
			},
			client: func(t *testing.T, c *Conn, hc *h2Client) {
				// Three messages in one write of the stream, which the server reads from
				// one buffer, holding its answers until it has.
				_, err := hc.Write(confWire{masked: true}.encode(confText("a"), confText("b"), confText("c")))
				require.NoError(t, err)
				for _, m := range []string{"a", "b", "c"} {
					_, p, err := c.Read(ctx)
					require.NoError(t, err)
					assert.Equal(t, m, string(p))
				}
				require.NoError(t, c.Close(StatusNormalClosure, ""))
			},
			check: func(t *testing.T, res result) {
				assert.Equal(t, StatusNormalClosure, CloseStatus(res.err))
			},
		},
		{
			// A parked Conn on a stream waits on a goroutine, as over TLS.
			name: "parked",
			server: func(c *Conn, _ *http.Request) result {
				ended := make(chan result, 1)
				var park func(*Conn)
				park = func(c *Conn) {
					typ, p, err := c.Read(ctx)
					if err == nil {
						err = c.Write(ctx, typ, p)
					}
					if err == nil {
						err = c.Park(park)
					}
					if err != nil {
						ended <- result{err: err}
					}
				}
				if err := c.Park(park); err != nil {
					return result{err: err}
				}
				return <-ended
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				for _, m := range []string{"first", "second"} {
					require.NoError(t, c.Write(ctx, MessageText, []byte(m)))
					_, p, err := c.Read(ctx)
					require.NoError(t, err)
					assert.Equal(t, m, string(p))
				}
				require.NoError(t, c.Close(StatusNormalClosure, ""))
			},
			check: func(t *testing.T, res result) {
				assert.Equal(t, StatusNormalClosure, CloseStatus(res.err))
			},
		},
		{
			// A context that ends a read waiting for the peer leaves the stream usable:
			// net/http's own read deadline would have closed the request body for good.
			name: "read cut by its context, then resumed",
			server: func(c *Conn, _ *http.Request) result {
				short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
				_, _, err := c.Read(short)
				if !errors.Is(err, context.DeadlineExceeded) {
					return result{err: err}
				}
				if err := c.Write(ctx, MessageText, []byte("now send")); err != nil {
					return result{err: err}
				}
				_, p, err := c.Read(ctx)
				if err != nil {
					return result{err: err}
				}
				return result{msg: string(p), err: c.Close(StatusNormalClosure, "")}
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				_, p, err := c.Read(ctx)
				require.NoError(t, err)
				require.Equal(t, "now send", string(p))
				require.NoError(t, c.Write(ctx, MessageText, []byte("sent")))
				_, _, err = c.Read(ctx)
				assert.Equal(t, StatusNormalClosure, CloseStatus(err))
			},
			check: func(t *testing.T, res result) {
				assert.NoError(t, res.err)
				assert.Equal(t, "sent", res.msg)
			},
		},
		{
			// A context that ends after its write is done must not harm the stream.
			name: "write context ending after the write",
			server: func(c *Conn, _ *http.Request) result {
				for _, m := range []string{"one", "two"} {
					wctx, cancel := context.WithCancel(ctx)
					err := c.Write(wctx, MessageText, []byte(m))
					cancel()
					if err != nil {
						return result{err: err}
					}
				}
				_, _, err := c.Read(ctx)
				return result{err: err}
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				for _, m := range []string{"one", "two"} {
					_, p, err := c.Read(ctx)
					require.NoError(t, err)
					assert.Equal(t, m, string(p))
				}
				require.NoError(t, c.Close(StatusNormalClosure, ""))
			},
			check: func(t *testing.T, res result) {
				assert.Equal(t, StatusNormalClosure, CloseStatus(res.err))
			},
		},
		{
			// A write blocked by flow control (the client reads nothing) returns when its
			// context ends, by resetting the stream.
			name: "write blocked by flow control, cut by its context",
			server: func(c *Conn, _ *http.Request) result {
				short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				err := c.Write(short, MessageBinary, make([]byte, 16<<20))
				return result{err: err}
			},
			client: func(t *testing.T, c *Conn, _ *h2Client) {
				// Read nothing until the server gave up: the result comes first.
			},
			check: func(t *testing.T, res result) {
				assert.ErrorIs(t, res.err, context.DeadlineExceeded)
				assert.ErrorIs(t, res.err, net.ErrClosed, "a frame cut in half ends the Conn")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results := make(chan result, 1)
			srv := h2Server(t, tt.opts, func(c *Conn, r *http.Request) {
				results <- tt.server(c, r)
			})
			c, _, hc := newH2Dialer(t, srv).dial(t, CompressionDisabled, nil)
			done := make(chan struct{})
			go func() {
				defer close(done)
				tt.client(t, c, hc)
			}()
			tt.check(t, <-results)
			<-done
		})
	}
}

// TestH2Refused checks that HTTP/2 requests that are not a WebSocket handshake get the
// same answers, in HTTP/2 terms, as their HTTP/1.1 counterparts.
func TestH2Refused(t *testing.T) {
	if xconnect.InChild(t) {
		return
	}
	srv := h2Server(t, nil, func(*Conn, *http.Request) {})
	d := newH2Dialer(t, srv)
	version := http.Header{"Sec-Websocket-Version": {"13"}}
	tests := []struct {
		name     string
		method   string
		protocol string
		header   http.Header
		status   int
		answer   http.Header
	}{
		{"GET over HTTP/2", http.MethodGet, "", version, http.StatusMethodNotAllowed, http.Header{"Allow": {"CONNECT"}}},
		{"another :protocol", http.MethodConnect, "webtransport", version, http.StatusBadRequest, nil},
		{"no version", http.MethodConnect, "websocket", nil, http.StatusUpgradeRequired, http.Header{"Sec-Websocket-Version": {"13"}}},
		{"version 8", http.MethodConnect, "websocket", http.Header{"Sec-Websocket-Version": {"8"}}, http.StatusUpgradeRequired, nil},
		{"foreign origin", http.MethodConnect, "websocket", http.Header{"Sec-Websocket-Version": {"13"}, "Origin": {"https://evil.example"}}, http.StatusForbidden, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := d.roundTrip(t, tt.method, tt.protocol, tt.header)
			assert.Equal(t, tt.status, resp.StatusCode)
			for k := range tt.answer {
				assert.Equal(t, tt.answer.Get(k), resp.Header.Get(k))
			}
		})
	}
}

// TestH2WithoutSetting checks that a server without the setting refuses extended CONNECT
// at the HTTP/2 level, so that a client falls back to HTTP/1.1, where Accept works as
// before on the same server.
func TestH2WithoutSetting(t *testing.T) {
	if xconnect.On() {
		t.Skip("the process serves extended CONNECT")
	}
	srv := h2Server(t, nil, func(c *Conn, _ *http.Request) { confEchoStream(c) })
	d := newH2Dialer(t, srv)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodConnect, srv.URL+"/", pr)
	require.NoError(t, err)
	req.Header[":protocol"] = []string{"websocket"}
	req.Header.Set("Sec-WebSocket-Version", "13")
	_, err = d.rt.RoundTrip(req)
	require.Error(t, err, "the server did not announce SETTINGS_ENABLE_CONNECT_PROTOCOL")

	// Dial speaks HTTP/1.1 (its TLS offers no ALPN protocol) to the same server.
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c, _, err := Dial(context.Background(), "wss"+strings.TrimPrefix(srv.URL, "https"), &DialOptions{TLSConfig: cfg})
	require.NoError(t, err)
	require.NoError(t, c.Write(context.Background(), MessageText, []byte("h1")))
	_, p, err := c.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "h1", string(p))
	require.NoError(t, c.Close(StatusNormalClosure, ""))
}

// BenchmarkH2 compares a WebSocket on a new stream of an HTTP/2 connection with one on a
// new TLS connection upgraded over HTTP/1.1: opening (and closing without a handshake) a
// WebSocket, and echoing a 64-byte message. Client and server share the process, so the
// CPU time counted is both sides'. It needs GODEBUG=http2xconnect=1.
func BenchmarkH2(b *testing.B) {
	if !xconnect.On() {
		b.Skip("run with GODEBUG=http2xconnect=1")
	}
	ctx := context.Background()
	srv := h2Server(b, nil, func(c *Conn, _ *http.Request) {
		for {
			typ, p, err := c.Read(ctx)
			if err != nil || c.Write(ctx, typ, p) != nil {
				return
			}
		}
	})
	d := newH2Dialer(b, srv)
	wss := "wss" + strings.TrimPrefix(srv.URL, "https")
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	cfg.ClientSessionCache = nil // every connection a full TLS handshake, as a new visitor's
	dialH1 := func(b *testing.B) *Conn {
		c, _, err := Dial(ctx, wss, &DialOptions{TLSConfig: cfg})
		require.NoError(b, err)
		return c
	}
	dialH2 := func(b *testing.B) *Conn {
		c, _, _ := d.dial(b, CompressionDisabled, nil)
		return c
	}
	for _, open := range []struct {
		name string
		dial func(*testing.B) *Conn
	}{{"h2 stream", dialH2}, {"TLS+HTTP/1.1", dialH1}} {
		b.Run("open/"+open.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := open.dial(b)
				require.NoError(b, c.Write(ctx, MessageText, []byte("x")))
				_, _, err := c.Read(ctx)
				require.NoError(b, err)
				c.CloseNow()
			}
		})
		for _, size := range []int{64, 64 << 10} {
			b.Run(fmt.Sprintf("echo %d B/%s", size, open.name), func(b *testing.B) {
				c := open.dial(b)
				defer c.CloseNow()
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					require.NoError(b, c.Write(ctx, MessageBinary, msg))
					_, _, err := c.Read(ctx)
					require.NoError(b, err)
				}
			})
		}
	}
}

// TestConformanceOverHTTP2 runs the cases of conformance_test.go against a server Conn
// on an HTTP/2 stream, each case on a new stream of one connection: the raw peer writes
// its frames into the request body and reads the Conn's from the response.
func TestConformanceOverHTTP2(t *testing.T) {
	if xconnect.InChild(t) {
		return
	}
	accepted := make(chan *Conn)
	done := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if !assert.NoError(t, err) {
			return
		}
		select {
		case accepted <- c:
		case <-done:
			c.CloseNow()
			return
		}
		// The stream ends with the handler: it lasts as long as the Conn.
		select {
		case <-c.closed:
		case <-done:
			c.CloseNow()
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	d := newH2Dialer(t, srv)
	newPeer := func(t *testing.T, stream bool) *confPeer {
		resp, pw := d.roundTrip(t, http.MethodConnect, "websocket", http.Header{"Sec-Websocket-Version": {"13"}})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var c *Conn
		select {
		case c = <-accepted:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "Accept did not return")
		}
		return confPeerOn(t, startRawPeer(t, &h2Client{pw: pw, body: resp.Body}, c), false, stream)
	}
	for _, cat := range confCategories {
		for _, c := range cat.build(confWire{masked: true}) {
			t.Run(cat.name+"/"+c.name, func(t *testing.T) { c.run(t, newPeer) })
		}
	}
}

// TestH2HandlerReturned checks the misuse that RFC 8441 makes possible: a handler that
// returns while its Conn is in use. The stream has ended; the Conn's calls fail with
// net.ErrClosed instead of touching the ResponseWriter, which net/http forbids once the
// handler has returned (its own methods then dereference nil).
func TestH2HandlerReturned(t *testing.T) {
	if xconnect.InChild(t) {
		return
	}
	ctx := context.Background()
	conns := make(chan *Conn, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err == nil {
			conns <- c // and return at once
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client, _, _ := newH2Dialer(t, srv).dial(t, CompressionDisabled, nil)
	server := <-conns
	defer server.CloseNow()

	// The response ended with the handler.
	_, _, err := client.Read(ctx)
	require.Error(t, err)

	err = server.Write(ctx, MessageText, []byte("too late"))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, _, err = server.Read(ctx)
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, server.Close(StatusNormalClosure, ""), net.ErrClosed)
}
