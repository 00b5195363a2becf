package websocket

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sample handshake of RFC 6455 §1.3.
const (
	sampleKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// accepted is what Accept returned in a test server's handler, with the request it saw.
type accepted struct {
	conn *Conn
	err  error
	req  *http.Request
}

// acceptHandler returns a handler that calls Accept with opts, on the ResponseWriter as
// wrap returns it when wrap is not nil, and hands the result to the test through the
// channel. It expects a single request; the test owns the Conn.
func acceptHandler(t *testing.T, opts *AcceptOptions, wrap func(http.ResponseWriter) http.ResponseWriter) (http.Handler, <-chan accepted) {
	results := make(chan accepted, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wrap != nil {
			w = wrap(w)
		}
		c, err := Accept(w, r, opts)
		select {
		case results <- accepted{conn: c, err: err, req: r}:
		default:
			if c != nil {
				c.CloseNow()
			}
			t.Errorf("unexpected second request %s %s", r.Method, r.RequestURI)
		}
	})
	return h, results
}

// newAcceptServer starts a test server running acceptHandler, closed at the end of the test.
func newAcceptServer(t *testing.T, opts *AcceptOptions) (*httptest.Server, <-chan accepted) {
	h, results := acceptHandler(t, opts, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, results
}

// receiveAccepted waits for the handler's result and closes its Conn at the end of the test.
func receiveAccepted(t *testing.T, results <-chan accepted) accepted {
	t.Helper()
	a := <-results
	if a.conn != nil {
		t.Cleanup(func() { a.conn.CloseNow() })
	}
	return a
}

// wsURL returns srv's URL with the ws or wss scheme.
func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// upgradeHeader returns the headers of a valid handshake request carrying the RFC's
// sample key.
func upgradeHeader() http.Header {
	return http.Header{
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-Websocket-Key":     {sampleKey},
		"Sec-Websocket-Version": {"13"},
	}
}

// handshakeRequest renders a request head for /chat the way a client writes it.
func handshakeRequest(method, proto, host string, h http.Header) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s /chat %s\r\nHost: %s\r\n", method, proto, host)
	h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// sendRaw writes p in one write on a new TCP connection to srv and reads the response
// head. br holds what follows it; the connection is closed at the end of the test.
func sendRaw(t *testing.T, srv *httptest.Server, p []byte) (resp *http.Response, br *bufio.Reader, nc net.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second))) // a bound, as waitContext's
	_, err = nc.Write(p)
	require.NoError(t, err)
	br = bufio.NewReader(nc)
	resp, err = http.ReadResponse(br, nil)
	require.NoError(t, err)
	return resp, br, nc
}

// waitContext bounds a wait for the peer in a test: generously, so that a message that
// never comes fails the test instead of hanging it. It times nothing.
func waitContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// exchangeMessages sends a text message from a to b and a binary one back, and checks
// that both arrive intact.
func exchangeMessages(t *testing.T, a, b *Conn) {
	t.Helper()
	ctx := waitContext(t)
	for _, m := range []struct {
		from, to *Conn
		typ      MessageType
		payload  string
	}{
		{a, b, MessageText, "ping"},
		{b, a, MessageBinary, "pong"},
	} {
		require.NoError(t, m.from.Write(ctx, m.typ, []byte(m.payload)))
		typ, p, err := m.to.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, m.typ, typ)
		assert.Equal(t, m.payload, string(p))
	}
}

// requireRefused checks that Accept returned a *HandshakeError with status and no Conn.
func requireRefused(t *testing.T, a accepted, status int) {
	t.Helper()
	var he *HandshakeError
	require.ErrorAs(t, a.err, &he)
	assert.Equal(t, status, he.Status)
	assert.Nil(t, a.conn)
}

func TestAcceptKey(t *testing.T) {
	assert.Equal(t, sampleAccept, acceptKey(sampleKey))
}

func TestAcceptRoundTrip(t *testing.T) {
	srv, results := newAcceptServer(t, nil)
	c, resp, err := Dial(waitContext(t), wsURL(srv)+"/chat", nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

	a := receiveAccepted(t, results)
	require.NoError(t, a.err)
	require.NotNil(t, a.conn)
	exchangeMessages(t, c, a.conn)
}

func TestAcceptRequestChecks(t *testing.T) {
	tests := []struct {
		name   string
		method string // GET if empty
		proto  string // HTTP/1.1 if empty
		edit   func(h http.Header)

		wantStatus int
		wantHeader http.Header // the response carries these values, among others
	}{
		{
			name:       "valid",
			wantStatus: http.StatusSwitchingProtocols,
			wantHeader: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Accept": {sampleAccept}},
		},
		{
			name:       "Upgrade in another case",
			edit:       func(h http.Header) { h.Set("Upgrade", "WebSocket") },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "Connection with keep-alive first, as Firefox sends it",
			edit:       func(h http.Header) { h.Set("Connection", "keep-alive, Upgrade") },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "Upgrade folding a non-ASCII letter (KELVIN SIGN for k)",
			edit:       func(h http.Header) { h.Set("Upgrade", "websoc\u212aet") },
			wantStatus: http.StatusUpgradeRequired,
		},
		{
			name:       "Connection token padded with non-ASCII space",
			edit:       func(h http.Header) { h.Set("Connection", "keep-alive,\u2003Upgrade") },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "Connection token padded with a tab",
			edit:       func(h http.Header) { h.Set("Connection", "keep-alive,\tUpgrade") },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "Connection token in lower case",
			edit:       func(h http.Header) { h.Set("Connection", "upgrade") },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "POST",
			method:     http.MethodPost,
			wantStatus: http.StatusMethodNotAllowed,
			wantHeader: http.Header{"Allow": {"GET"}},
		},
		{
			name:       "HTTP/1.0",
			proto:      "HTTP/1.0",
			wantStatus: http.StatusHTTPVersionNotSupported,
		},
		{
			name:       "no Upgrade",
			edit:       func(h http.Header) { h.Del("Upgrade") },
			wantStatus: http.StatusUpgradeRequired,
			wantHeader: http.Header{"Upgrade": {"websocket"}},
		},
		{
			name:       "Upgrade to another protocol",
			edit:       func(h http.Header) { h.Set("Upgrade", "h2c") },
			wantStatus: http.StatusUpgradeRequired,
			wantHeader: http.Header{"Upgrade": {"websocket"}},
		},
		{
			name:       "no Connection",
			edit:       func(h http.Header) { h.Del("Connection") },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "Connection without the upgrade token",
			edit:       func(h http.Header) { h.Set("Connection", "keep-alive") },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "version 8",
			edit:       func(h http.Header) { h.Set("Sec-WebSocket-Version", "8") },
			wantStatus: http.StatusUpgradeRequired,
			wantHeader: http.Header{"Sec-Websocket-Version": {"13"}},
		},
		{
			name:       "no version",
			edit:       func(h http.Header) { h.Del("Sec-WebSocket-Version") },
			wantStatus: http.StatusUpgradeRequired,
			wantHeader: http.Header{"Sec-Websocket-Version": {"13"}},
		},
		{
			name:       "no key",
			edit:       func(h http.Header) { h.Del("Sec-WebSocket-Key") },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "key not base64",
			edit:       func(h http.Header) { h.Set("Sec-WebSocket-Key", "not base64 at all!") },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "key of 15 bytes",
			edit:       func(h http.Header) { h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 15))) },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "key of 17 bytes",
			edit:       func(h http.Header) { h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 17))) },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "two keys",
			edit:       func(h http.Header) { h.Add("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==") },
			wantStatus: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, results := newAcceptServer(t, nil)
			method, proto := cmp.Or(tt.method, http.MethodGet), cmp.Or(tt.proto, "HTTP/1.1")
			h := upgradeHeader()
			if tt.edit != nil {
				tt.edit(h)
			}
			resp, _, _ := sendRaw(t, srv, handshakeRequest(method, proto, srv.Listener.Addr().String(), h))
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, resp.Header.Values(k), "response header %s", k)
			}

			a := receiveAccepted(t, results)
			if tt.wantStatus == http.StatusSwitchingProtocols {
				require.NoError(t, a.err)
				assert.NotNil(t, a.conn)
				return
			}
			requireRefused(t, a, tt.wantStatus)
		})
	}
}

func TestAcceptOrigin(t *testing.T) {
	tests := []struct {
		name       string
		host       string // the request's Host
		origin     string // no Origin header if empty
		opts       *AcceptOptions
		wantStatus int
	}{
		{name: "no Origin", host: "example.com", wantStatus: http.StatusSwitchingProtocols},
		{name: "same host", host: "example.com", origin: "https://example.com", wantStatus: http.StatusSwitchingProtocols},
		{name: "same host and port", host: "example.com:8080", origin: "http://example.com:8080", wantStatus: http.StatusSwitchingProtocols},
		{name: "same host in another case", host: "example.com", origin: "https://EXAMPLE.com", wantStatus: http.StatusSwitchingProtocols},
		{name: "other host", host: "example.com", origin: "https://evil.example", wantStatus: http.StatusForbidden},
		{name: "same host on another port", host: "example.com", origin: "https://example.com:8443", wantStatus: http.StatusForbidden},
		{name: "Host with the default https port", host: "example.com:443", origin: "https://example.com", wantStatus: http.StatusSwitchingProtocols},
		{name: "Host with the default http port", host: "example.com:80", origin: "http://example.com", wantStatus: http.StatusSwitchingProtocols},
		{name: "Host with the other scheme's default port", host: "example.com:80", origin: "https://example.com", wantStatus: http.StatusForbidden},
		{name: "host as a suffix", host: "example.com", origin: "https://evilexample.com", wantStatus: http.StatusForbidden},
		{name: "null", host: "example.com", origin: "null", wantStatus: http.StatusForbidden},
		{
			name: "exact pattern", host: "api.example.com", origin: "https://app.example.org",
			opts:       &AcceptOptions{OriginPatterns: []string{"app.example.org"}},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "wildcard pattern", host: "api.example.com", origin: "https://www.example.com",
			opts:       &AcceptOptions{OriginPatterns: []string{"*.example.com"}},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "wildcard pattern does not match the bare domain", host: "api.example.com", origin: "https://example.com",
			opts:       &AcceptOptions{OriginPatterns: []string{"*.example.com"}},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "wildcard pattern does not match a longer domain", host: "api.example.com", origin: "https://www.example.com.evil.example",
			opts:       &AcceptOptions{OriginPatterns: []string{"*.example.com"}},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "pattern ignores case", host: "api.example.com", origin: "https://WWW.example.com",
			opts:       &AcceptOptions{OriginPatterns: []string{"*.Example.COM"}},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "pattern with a port", host: "api.example.com", origin: "http://localhost:3000",
			opts:       &AcceptOptions{OriginPatterns: []string{"localhost:*"}},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "no pattern matches", host: "api.example.com", origin: "https://evil.example",
			opts:       &AcceptOptions{OriginPatterns: []string{"app.example.org", "*.example.com"}},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "malformed pattern", host: "api.example.com", origin: "https://evil.example",
			opts:       &AcceptOptions{OriginPatterns: []string{"[a-"}},
			wantStatus: http.StatusInternalServerError,
		},
		{
			name: "InsecureSkipOriginCheck", host: "example.com", origin: "https://evil.example",
			opts:       &AcceptOptions{InsecureSkipOriginCheck: true},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "InsecureSkipOriginCheck with null", host: "example.com", origin: "null",
			opts:       &AcceptOptions{InsecureSkipOriginCheck: true},
			wantStatus: http.StatusSwitchingProtocols,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, results := newAcceptServer(t, tt.opts)
			h := upgradeHeader()
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			resp, _, _ := sendRaw(t, srv, handshakeRequest(http.MethodGet, "HTTP/1.1", tt.host, h))
			assert.Equal(t, tt.wantStatus, resp.StatusCode)

			a := receiveAccepted(t, results)
			if tt.wantStatus == http.StatusSwitchingProtocols {
				require.NoError(t, a.err)
				assert.NotNil(t, a.conn)
				return
			}
			requireRefused(t, a, tt.wantStatus)
		})
	}
}

func TestAcceptSubprotocol(t *testing.T) {
	tests := []struct {
		name   string
		server []string
		client []string
		want   string
	}{
		{name: "server preference wins", server: []string{"chat.v2", "chat.v1"}, client: []string{"chat.v1", "chat.v2"}, want: "chat.v2"},
		{name: "the one in common", server: []string{"chat.v1", "chat.v2"}, client: []string{"mqtt", "chat.v2"}, want: "chat.v2"},
		{name: "none in common", server: []string{"chat.v1"}, client: []string{"mqtt"}},
		{name: "case matters", server: []string{"chat"}, client: []string{"Chat"}},
		{name: "client offers none", server: []string{"chat.v1"}},
		{name: "server speaks none", client: []string{"chat.v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, results := newAcceptServer(t, &AcceptOptions{Subprotocols: tt.server})
			c, resp, err := Dial(waitContext(t), wsURL(srv), &DialOptions{Subprotocols: tt.client})
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			a := receiveAccepted(t, results)
			require.NoError(t, a.err)

			assert.Equal(t, tt.want, c.Subprotocol(), "client")
			assert.Equal(t, tt.want, a.conn.Subprotocol(), "server")
			if tt.want == "" {
				assert.NotContains(t, resp.Header, "Sec-Websocket-Protocol")
			} else {
				assert.Equal(t, []string{tt.want}, resp.Header.Values("Sec-WebSocket-Protocol"))
			}
		})
	}
}

func TestSelectSubprotocol(t *testing.T) {
	tests := []struct {
		name    string
		offered []string // values of Sec-WebSocket-Protocol
		ours    []string
		want    string
	}{
		{name: "one value", offered: []string{"a, b"}, ours: []string{"b"}, want: "b"},
		{name: "several values", offered: []string{"a", "b,c"}, ours: []string{"c", "a"}, want: "c"},
		{name: "spaces around tokens", offered: []string{" a ,  b "}, ours: []string{"b"}, want: "b"},
		{name: "empty elements", offered: []string{",, a,"}, ours: []string{"", "a"}, want: "a"},
		{name: "none offered", ours: []string{"a"}},
		{name: "none in common", offered: []string{"a"}, ours: []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Sec-Websocket-Protocol": tt.offered}
			assert.Equal(t, tt.want, selectSubprotocol(h, tt.ours))
		})
	}
}

func TestAcceptResponseHeader(t *testing.T) {
	canonical := http.Header{}
	canonical.Add("Set-Cookie", "session=1")
	canonical.Add("Set-Cookie", "theme=dark")
	canonical.Set("Upgrade", "h2c")
	canonical.Set("Connection", "close")
	canonical.Set("Sec-WebSocket-Accept", "forged")
	canonical.Set("Sec-WebSocket-Protocol", "other")
	canonical.Set("Sec-WebSocket-Extensions", "permessage-deflate")

	tests := []struct {
		name   string
		header http.Header
	}{
		{name: "keys set with Set", header: canonical},
		{
			name: "keys not in canonical form",
			header: http.Header{
				"Set-Cookie":               {"session=1", "theme=dark"},
				"upgrade":                  {"h2c"},
				"connection":               {"close"},
				"Sec-WebSocket-Accept":     {"forged"},
				"Sec-WebSocket-Protocol":   {"other"},
				"sec-websocket-extensions": {"permessage-deflate"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.header.Clone()
			srv, results := newAcceptServer(t, &AcceptOptions{Subprotocols: []string{"chat"}, ResponseHeader: tt.header})
			h := upgradeHeader()
			h.Set("Sec-WebSocket-Protocol", "chat")
			resp, _, _ := sendRaw(t, srv, handshakeRequest(http.MethodGet, "HTTP/1.1", "example.com", h))
			require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)

			assert.Equal(t, []string{"session=1", "theme=dark"}, resp.Header.Values("Set-Cookie"))
			assert.Equal(t, []string{"websocket"}, resp.Header.Values("Upgrade"))
			assert.Equal(t, []string{"Upgrade"}, resp.Header.Values("Connection"))
			assert.Equal(t, []string{sampleAccept}, resp.Header.Values("Sec-WebSocket-Accept"))
			assert.Equal(t, []string{"chat"}, resp.Header.Values("Sec-WebSocket-Protocol"))
			assert.Empty(t, resp.Header.Values("Sec-WebSocket-Extensions"), "an extension the Conn does not implement was announced")
			assert.Equal(t, before, tt.header, "Accept modified ResponseHeader")

			a := receiveAccepted(t, results)
			require.NoError(t, a.err)
			assert.Equal(t, "chat", a.conn.Subprotocol())
		})
	}
}

// unwrappingWriter is middleware's wrapper around a ResponseWriter: it hides the
// Hijacker, and leads to it through Unwrap as http.ResponseController expects.
type unwrappingWriter struct{ http.ResponseWriter }

func (w unwrappingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hidingWriter hides the Hijacker with no way back to it.
type hidingWriter struct{ http.ResponseWriter }

func TestAcceptBehindMiddleware(t *testing.T) {
	tests := []struct {
		name       string
		wrap       func(http.ResponseWriter) http.ResponseWriter
		wantStatus int
	}{
		{
			name:       "Unwrap leads to the Hijacker",
			wrap:       func(w http.ResponseWriter) http.ResponseWriter { return unwrappingWriter{w} },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "no way to the Hijacker",
			wrap:       func(w http.ResponseWriter) http.ResponseWriter { return hidingWriter{w} },
			wantStatus: http.StatusInternalServerError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, isHijacker := tt.wrap(httptest.NewRecorder()).(http.Hijacker)
			require.False(t, isHijacker, "the wrapper must not be a Hijacker itself")

			h, results := acceptHandler(t, nil, tt.wrap)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			c, resp, err := Dial(waitContext(t), wsURL(srv), nil)
			require.NotNil(t, resp, "Dial: %v", err)
			a := receiveAccepted(t, results)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			if tt.wantStatus != http.StatusSwitchingProtocols {
				requireRefused(t, a, tt.wantStatus)
				var he *HandshakeError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, tt.wantStatus, he.Status)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			require.NoError(t, a.err)
			exchangeMessages(t, c, a.conn)
		})
	}
}

func TestAcceptKeepsEarlyData(t *testing.T) {
	// RFC 6455 §5.7: a single-frame masked text message "Hello", and the same unmasked.
	maskedHello := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	unmaskedHello := []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}

	srv, results := newAcceptServer(t, nil)
	req := handshakeRequest(http.MethodGet, "HTTP/1.1", srv.Listener.Addr().String(), upgradeHeader())
	resp, br, _ := sendRaw(t, srv, append(req, maskedHello...))
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	a := receiveAccepted(t, results)
	require.NoError(t, a.err)

	typ, p, err := a.conn.Read(waitContext(t))
	require.NoError(t, err)
	assert.Equal(t, MessageText, typ)
	assert.Equal(t, "Hello", string(p))

	// And the server's frames follow its 101 on the wire.
	require.NoError(t, a.conn.Write(t.Context(), MessageText, []byte("Hello")))
	got := make([]byte, len(unmaskedHello))
	_, err = io.ReadFull(br, got)
	require.NoError(t, err)
	assert.Equal(t, unmaskedHello, got)
}

// staleDeadlineWriter's Hijack leaves a deadline in the past on the connection, as a
// Hijacker that keeps the HTTP server's read and write timeouts would.
type staleDeadlineWriter struct{ http.ResponseWriter }

func (w staleDeadlineWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		nc.SetDeadline(time.Unix(1, 0))
	}
	return nc, brw, err
}

func TestAcceptClearsServerTimeouts(t *testing.T) {
	tests := []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
	}{
		{name: "net/http Hijacker"},
		{
			name: "Hijacker that keeps the deadlines",
			wrap: func(w http.ResponseWriter) http.ResponseWriter { return staleDeadlineWriter{w} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, results := acceptHandler(t, nil, tt.wrap)
			srv := httptest.NewUnstartedServer(h)
			// The request head is read under ReadHeaderTimeout; the whole-request read
			// deadline and the write deadline are already past when the handler runs. No
			// waiting is needed: any read or write on a connection whose deadlines were
			// not cleared fails at once. net/http's Hijack clears them itself; behind the
			// second Hijacker, only Accept does.
			srv.Config.ReadHeaderTimeout = time.Minute
			srv.Config.ReadTimeout = time.Nanosecond
			srv.Config.WriteTimeout = time.Nanosecond
			srv.Start()
			t.Cleanup(srv.Close)

			c, _, err := Dial(waitContext(t), wsURL(srv), nil)
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			a := receiveAccepted(t, results)
			require.NoError(t, a.err)
			exchangeMessages(t, c, a.conn)
		})
	}
}

// recordingWriter's Hijack hands Accept the net/http connection's buffers and keeps them
// for the test to look at.
type recordingWriter struct {
	http.ResponseWriter
	brw **bufio.ReadWriter
}

func (w recordingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	*w.brw = brw
	return nc, brw, err
}

// acceptThrough dials a test server whose handler calls Accept on the ResponseWriter as
// wrap returns it, and returns both ends.
func acceptThrough(t *testing.T, wrap func(http.ResponseWriter) http.ResponseWriter) (client *Conn, a accepted) {
	t.Helper()
	h, results := acceptHandler(t, nil, wrap)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client, _, err := Dial(waitContext(t), wsURL(srv), nil)
	require.NoError(t, err)
	t.Cleanup(func() { client.CloseNow() })
	a = receiveAccepted(t, results)
	require.NoError(t, a.err)
	return client, a
}

// readAheadWriter's Hijack returns a reader larger than net/http's, which has already read
// ahead the given bytes.
type readAheadWriter struct {
	http.ResponseWriter
	ahead []byte
}

func (w readAheadWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(w.ahead), brw.Reader), 4*readBufferSize)
	if _, err := br.Peek(len(w.ahead)); err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReadWriter(br, brw.Writer), nil
}

func TestAcceptKeepsReadAheadLargerThanItsBuffer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), readBufferSize/5) // two read buffers' worth
	var ahead []byte
	ahead = append(ahead, encodeFrame(frame{fin: true, op: opBinary, payload: big}, true, int64(len(big)))...)
	ahead = append(ahead, encodeFrame(frame{fin: true, op: opText, payload: []byte("Hello")}, true, 5)...)
	require.Greater(t, len(ahead), readBufferSize)

	c, a := acceptThrough(t, func(w http.ResponseWriter) http.ResponseWriter {
		return readAheadWriter{w, ahead}
	})

	ctx := waitContext(t)
	typ, p, err := a.conn.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, MessageBinary, typ)
	assert.Equal(t, big, p)
	typ, p, err = a.conn.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, MessageText, typ)
	assert.Equal(t, "Hello", string(p))
	// And then what the client sends on the connection.
	exchangeMessages(t, c, a.conn)
}

// TestIsKey holds isKey to what base64.StdEncoding.DecodeString makes of a key: 16 bytes
// or not.
func TestIsKey(t *testing.T) {
	keys := []string{
		sampleKey, "AAAAAAAAAAAAAAAAAAAAAA==", "/////////////////////w==", "++++++++++++++++++++++==",
		// Trailing bits the encoder would leave zero: StdEncoding is not strict.
		"AAAAAAAAAAAAAAAAAAAAAB==",
		"", "=", "AAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAA===", "AAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA===", "AAAAAAAAAAAAAAAAAAAAA=A=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAA-==", "AAAAAAAAAAAAAAAAAAAAA_==", "AAAAAAAAAA AAAAAAAAAAA==",
		"AAAAAAAAAAAAAAAAAAAAA\x80==", "AAAAAAAAAAA=AAAAAAAAAA==",
	}
	for i := range 256 {
		// Every byte value at the first and the last position of the payload.
		b := []byte(sampleKey)
		b[0], b[21] = byte(i), byte(255-i)
		keys = append(keys, string(b))
	}
	for _, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		assert.Equal(t, err == nil && len(raw) == 16, isKey(k), "%q", k)
	}
}

// TestHijackedBuffers checks that the reader and writer releaseBuffers leaves in
// net/http's buffers fail every call with http.ErrHijacked and never store anything in
// the buffers all their copies share.
func TestHijackedBuffers(t *testing.T) {
	w := *hijackedWriter
	_, err := w.Write([]byte("x"))
	assert.ErrorIs(t, err, http.ErrHijacked)
	assert.ErrorIs(t, w.WriteByte('x'), http.ErrHijacked)
	_, err = w.WriteRune('x')
	assert.ErrorIs(t, err, http.ErrHijacked)
	_, err = w.WriteString("x")
	assert.ErrorIs(t, err, http.ErrHijacked)
	_, err = w.ReadFrom(strings.NewReader("x"))
	assert.ErrorIs(t, err, http.ErrHijacked)
	assert.ErrorIs(t, w.Flush(), http.ErrHijacked)
	assert.Equal(t, []byte{0}, hijackedWriter.AvailableBuffer()[:1], "the shared buffer was written to")

	r := *hijackedReader
	_, err = r.Read(make([]byte, 1))
	assert.ErrorIs(t, err, http.ErrHijacked)
	_, err = r.Read(make([]byte, 64))
	assert.ErrorIs(t, err, http.ErrHijacked)
	_, err = r.ReadByte()
	assert.ErrorIs(t, err, http.ErrHijacked)
	_, err = r.Peek(1)
	assert.ErrorIs(t, err, http.ErrHijacked)
}

// BenchmarkCheckOrigin checks the Origin of a browser's request for its own host, which
// every browser sends and Accept checks unless told not to.
func BenchmarkCheckOrigin(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/chat", nil)
	r.Header.Set("Origin", "https://example.com")
	opts := &AcceptOptions{}
	b.ReportAllocs()
	for b.Loop() {
		if err := checkOrigin(r, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOriginHost holds originHost to what url.Parse finds in an Origin value, for the
// forms it takes apart itself and for those it leaves to url.Parse.
func TestOriginHost(t *testing.T) {
	for _, origin := range []string{
		"https://example.com", "http://example.com:8080", "HTTPS://Example.COM", "https://EXAMPLE.com:443",
		"http://127.0.0.1:3000", "http://localhost", "chrome-extension://abcdefghijklmnop",
		"moz-extension://1234-abcd", "a+b.c-d://host", "http://a-b.c", "http://x", "http://1",
		"null", "", "://example.com", "1http://example.com", "http//example.com", "http:/example.com",
		"http://", "http://:80", "http://example.com:", "http://example.com:80x", "http://example.com:-1",
		"http://[::1]:3000", "http://[::1]", "http://user@example.com", "http://user:pass@example.com",
		"http://example.com/", "http://example.com/path", "http://example.com?q", "http://example.com#f",
		"http://exa%41mple.com", "http://exa mple.com", "http://example.com:8080:90", "http://ex_ample.com",
		"http://example.com\\", "ht tp://example.com", "http://\u00e9xample.com", "http://xn--xample-9ua.com",
	} {
		scheme, host, ok := originHost(origin)
		u, err := url.Parse(origin)
		want := err == nil && u.Host != ""
		if assert.Equal(t, want, ok, "%q", origin) && want {
			assert.Equal(t, u.Scheme, scheme, "scheme of %q", origin)
			assert.Equal(t, u.Host, host, "host of %q", origin)
		}
	}
}
