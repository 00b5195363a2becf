package websocket

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawHTTPServer is a TCP server written by hand, to give Dial answers that Accept never
// sends, or none at all.
type rawHTTPServer struct {
	addr     string
	requests chan *http.Request // the request heads received, as long as there is room
}

// startRawHTTPServer listens on 127.0.0.1. On each connection it reads the request head,
// passes it on through requests and calls respond, if not nil, to answer it; then it
// waits for the client to close the connection. Everything is closed at the end of the
// test.
func startRawHTTPServer(t *testing.T, respond func(nc net.Conn, req *http.Request)) *rawHTTPServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawHTTPServer{addr: ln.Addr().String(), requests: make(chan *http.Request, 64)}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	serve := func(nc net.Conn) {
		defer nc.Close()
		req, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil {
			return
		}
		select {
		case s.requests <- req:
		default:
		}
		if respond != nil {
			respond(nc, req)
		}
		io.Copy(io.Discard, nc)
	}
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				nc.Close()
				return
			}
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { serve(nc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// respondWith returns a respond function that writes response(key), key being the
// request's Sec-WebSocket-Key, in one write.
func respondWith(response func(key string) string) func(net.Conn, *http.Request) {
	return func(nc net.Conn, req *http.Request) {
		nc.Write([]byte(response(req.Header.Get("Sec-WebSocket-Key"))))
	}
}

// countingDialer returns a NetDialContext that records each call as "network addr"
// before dialing.
func countingDialer(calls *[]string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		*calls = append(*calls, network+" "+addr)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

func TestDial(t *testing.T) {
	tests := []struct {
		name         string
		tls          bool
		accept       *AcceptOptions
		header       http.Header
		subprotocols []string
		countDials   bool

		wantHost        string      // the server's address if empty
		wantHeader      http.Header // the request carries these values, among others
		wantSubprotocol string
	}{
		{name: "defaults"},
		{
			name:            "subprotocols",
			accept:          &AcceptOptions{Subprotocols: []string{"chat.v1", "chat.v2"}},
			subprotocols:    []string{"chat.v2", "chat.v1"},
			wantHeader:      http.Header{"Sec-Websocket-Protocol": {"chat.v2, chat.v1"}},
			wantSubprotocol: "chat.v1",
		},
		{
			name:       "Origin and Authorization",
			accept:     &AcceptOptions{OriginPatterns: []string{"app.example.com"}},
			header:     http.Header{"Origin": {"https://app.example.com"}, "Authorization": {"Bearer t0ken"}},
			wantHeader: http.Header{"Origin": {"https://app.example.com"}, "Authorization": {"Bearer t0ken"}},
		},
		{
			name:     "Host",
			header:   http.Header{"Host": {"chat.example.com"}},
			wantHost: "chat.example.com",
		},
		{
			name:       "handshake headers win over Header",
			header:     http.Header{"Sec-Websocket-Version": {"8"}, "Upgrade": {"h2c"}},
			wantHeader: http.Header{"Sec-Websocket-Version": {"13"}, "Upgrade": {"websocket"}},
		},
		{name: "NetDialContext", countDials: true},
		{name: "wss", tls: true},
		{
			name:            "wss with everything",
			tls:             true,
			accept:          &AcceptOptions{Subprotocols: []string{"chat"}},
			subprotocols:    []string{"chat"},
			header:          http.Header{"Host": {"chat.example.com"}, "Cookie": {"session=1"}},
			countDials:      true,
			wantHost:        "chat.example.com",
			wantHeader:      http.Header{"Cookie": {"session=1"}},
			wantSubprotocol: "chat",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, results := acceptHandler(t, tt.accept, nil)
			srv := httptest.NewUnstartedServer(h)
			opts := &DialOptions{Header: tt.header, Subprotocols: tt.subprotocols}
			if tt.tls {
				srv.StartTLS()
				opts.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			var dials []string
			if tt.countDials {
				opts.NetDialContext = countingDialer(&dials)
			}
			headerBefore := tt.header.Clone()

			c, resp, err := Dial(waitContext(t), wsURL(srv)+"/chat?room=1", opts)
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			a := receiveAccepted(t, results)
			require.NoError(t, a.err)

			assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			addr := srv.Listener.Addr().String()
			assert.Equal(t, cmp.Or(tt.wantHost, addr), a.req.Host)
			assert.Equal(t, "/chat?room=1", a.req.RequestURI)
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, a.req.Header.Values(k), "request header %s", k)
			}
			assert.Equal(t, tt.tls, a.req.TLS != nil, "request over TLS")
			assert.Equal(t, tt.wantSubprotocol, c.Subprotocol(), "client")
			assert.Equal(t, tt.wantSubprotocol, a.conn.Subprotocol(), "server")
			if tt.countDials {
				assert.Equal(t, []string{"tcp " + addr}, dials)
			}
			assert.Equal(t, headerBefore, tt.header, "Dial modified DialOptions.Header")
			exchangeMessages(t, c, a.conn)
		})
	}
}

func TestDialTLSRootCAs(t *testing.T) {
	h, results := acceptHandler(t, nil, nil)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	c, _, err := Dial(waitContext(t), wsURL(srv), &DialOptions{TLSConfig: &tls.Config{RootCAs: roots}})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	a := receiveAccepted(t, results)
	require.NoError(t, a.err)
	exchangeMessages(t, c, a.conn)
}

// TestDialTLSWithHTTP2Server checks Dial keeps to HTTP/1.1 even when its TLS config offers
// h2 and the server speaks it: the opening handshake has no HTTP/2 form here.
func TestDialTLSWithHTTP2Server(t *testing.T) {
	h, results := acceptHandler(t, nil, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	cfg := &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}}
	c, _, err := Dial(waitContext(t), wsURL(srv), &DialOptions{TLSConfig: cfg})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	a := receiveAccepted(t, results)
	require.NoError(t, a.err)
	exchangeMessages(t, c, a.conn)
	assert.Equal(t, []string{"h2", "http/1.1"}, cfg.NextProtos, "Dial modified the caller's TLS config")
}

func TestDialTLSUnknownAuthority(t *testing.T) {
	h, _ := acceptHandler(t, nil, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificate is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	c, resp, err := Dial(waitContext(t), wsURL(srv), nil)
	var verr *tls.CertificateVerificationError
	assert.ErrorAs(t, err, &verr)
	assert.Nil(t, c)
	assert.Nil(t, resp)
}

func TestDialBadURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{name: "ftp scheme", url: "ftp://127.0.0.1:1/chat"},
		{name: "no scheme", url: "127.0.0.1:1/chat"},
		{name: "empty", url: ""},
		{name: "no host", url: "ws:///chat"},
		{name: "only the scheme", url: "wss://"},
		{name: "unparsable", url: "ws://[::1/chat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dials []string
			c, resp, err := Dial(waitContext(t), tt.url, &DialOptions{NetDialContext: countingDialer(&dials)})
			assert.Error(t, err)
			assert.Nil(t, c)
			assert.Nil(t, resp)
			assert.Empty(t, dials, "Dial dialed")
		})
	}
}

func TestDialHandshakeRequest(t *testing.T) {
	tests := []struct {
		path           string // appended to ws://host
		subprotocols   []string
		wantRequestURI string
		wantProtocol   []string // values of Sec-WebSocket-Protocol
	}{
		{path: "/path?query", wantRequestURI: "/path?query"},
		{path: "", wantRequestURI: "/"},
		{path: "?room=1", wantRequestURI: "/?room=1"},
		{path: "/a%2Fb/c", wantRequestURI: "/a%2Fb/c"},
		{path: "/chat", subprotocols: []string{"chat.v2", "chat.v1"}, wantRequestURI: "/chat", wantProtocol: []string{"chat.v2, chat.v1"}},
	}
	srv := startRawHTTPServer(t, respondWith(func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	}))
	keys := make(map[string]bool)
	for _, tt := range tests {
		t.Run(tt.wantRequestURI, func(t *testing.T) {
			// The server chooses no subprotocol, which is always allowed.
			c, _, err := Dial(waitContext(t), "ws://"+srv.addr+tt.path, &DialOptions{Subprotocols: tt.subprotocols})
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			req := <-srv.requests

			assert.Equal(t, http.MethodGet, req.Method)
			assert.Equal(t, tt.wantRequestURI, req.RequestURI)
			assert.Equal(t, "HTTP/1.1", req.Proto)
			assert.Equal(t, srv.addr, req.Host)
			assert.True(t, hasToken(req.Header, "Upgrade", "websocket"), "Upgrade: %q", req.Header.Values("Upgrade"))
			assert.True(t, hasToken(req.Header, "Connection", "Upgrade"), "Connection: %q", req.Header.Values("Connection"))
			assert.Equal(t, []string{"13"}, req.Header.Values("Sec-WebSocket-Version"))
			assert.Equal(t, tt.wantProtocol, req.Header.Values("Sec-WebSocket-Protocol"))
			assert.Empty(t, req.Header.Values("Sec-WebSocket-Extensions"))

			key := req.Header.Values("Sec-WebSocket-Key")
			require.Len(t, key, 1)
			nonce, err := base64.StdEncoding.DecodeString(key[0])
			require.NoError(t, err)
			assert.Len(t, nonce, 16)
			assert.False(t, keys[key[0]], "key %s sent twice", key[0])
			keys[key[0]] = true
		})
	}
}

func TestDialBadResponse(t *testing.T) {
	longBody := strings.Repeat("0123456789abcdef", 128) // 2 KiB
	switching := func(key string, extra ...string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n" + strings.Join(extra, "") + "\r\n"
	}
	tests := []struct {
		name     string
		response func(key string) string

		wantStatus   int         // of the response and the *HandshakeError; 0 if Dial succeeds
		wantHeader   http.Header // the response carries these values, among others
		wantBody     string
		wantProtocol string
	}{
		{
			name:     "valid, as a control",
			response: func(key string) string { return switching(key) },
		},
		{
			name:         "valid with an offered subprotocol, as a control",
			response:     func(key string) string { return switching(key, "Sec-WebSocket-Protocol: chat\r\n") },
			wantProtocol: "chat",
		},
		{
			name: "200 with a long body",
			response: func(string) string {
				return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(longBody), longBody)
			},
			wantStatus: http.StatusOK,
			wantHeader: http.Header{"Content-Type": {"text/plain"}},
			wantBody:   longBody[:maxErrorBody],
		},
		{
			// The body has no length and the server keeps the connection open: Dial
			// keeps what arrived within its bound instead of waiting for the end.
			name: "400 with a body that never ends",
			response: func(string) string {
				return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nno length"
			},
			wantStatus: http.StatusBadRequest,
			wantBody:   "no length",
		},
		{
			name: "302",
			response: func(string) string {
				return "HTTP/1.1 302 Found\r\nLocation: ws://elsewhere.example/chat\r\nContent-Length: 5\r\n\r\nmoved"
			},
			wantStatus: http.StatusFound,
			wantHeader: http.Header{"Location": {"ws://elsewhere.example/chat"}},
			wantBody:   "moved",
		},
		{
			name:       "101 with a wrong Sec-WebSocket-Accept",
			response:   func(string) string { return switching(sampleKey) },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "101 without Sec-WebSocket-Accept",
			response: func(string) string {
				return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
			},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "101 without Upgrade",
			response: func(key string) string {
				return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
			},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "101 without Connection",
			response: func(key string) string {
				return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
			},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "101 choosing a subprotocol not offered",
			response:   func(key string) string { return switching(key, "Sec-WebSocket-Protocol: superchat\r\n") },
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name: "101 choosing two subprotocols",
			response: func(key string) string {
				return switching(key, "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n")
			},
			wantStatus: http.StatusSwitchingProtocols,
		},
		{
			name:       "101 with an extension not asked for",
			response:   func(key string) string { return switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n") },
			wantStatus: http.StatusSwitchingProtocols,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRawHTTPServer(t, respondWith(tt.response))
			var dials []string
			opts := &DialOptions{Subprotocols: []string{"chat"}, NetDialContext: countingDialer(&dials)}
			c, resp, err := Dial(waitContext(t), "ws://"+srv.addr+"/chat", opts)
			assert.Len(t, dials, 1, "redirect followed")
			if tt.wantStatus == 0 {
				require.NoError(t, err)
				t.Cleanup(func() { c.CloseNow() })
				assert.Equal(t, tt.wantProtocol, c.Subprotocol())
				return
			}

			assert.Nil(t, c)
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tt.wantStatus, he.Status)
			require.NotNil(t, resp, "the response comes with the error")
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			for k, v := range tt.wantHeader {
				assert.Equal(t, v, resp.Header.Values(k), "response header %s", k)
			}
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantBody, string(body))
			assert.NoError(t, resp.Body.Close())
		})
	}
}

func TestDialNotHTTP(t *testing.T) {
	srv := startRawHTTPServer(t, func(nc net.Conn, _ *http.Request) {
		nc.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	})
	c, _, err := Dial(waitContext(t), "ws://"+srv.addr, nil)
	assert.Error(t, err)
	var he *HandshakeError
	assert.False(t, errors.As(err, &he), "an answer that is not HTTP is no HandshakeError")
	assert.Nil(t, c)
}

func TestDialContextCanceled(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) (url string, seen <-chan *http.Request, opts *DialOptions)
	}{
		{
			name: "ws: request sent, no answer",
			start: func(t *testing.T) (string, <-chan *http.Request, *DialOptions) {
				srv := startRawHTTPServer(t, nil)
				return "ws://" + srv.addr + "/chat", srv.requests, nil
			},
		},
		{
			name: "wss: request sent, no answer",
			start: func(t *testing.T) (string, <-chan *http.Request, *DialOptions) {
				seen := make(chan *http.Request, 1)
				// The handler answers nothing and returns once the client has gone.
				srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					seen <- r
					<-r.Context().Done()
				}))
				t.Cleanup(srv.Close)
				tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
				return wsURL(srv) + "/chat", seen, &DialOptions{TLSConfig: tlsConfig}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, seen, opts := tt.start(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type result struct {
				c    *Conn
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				c, resp, err := Dial(ctx, url, opts)
				done <- result{c, resp, err}
			}()

			select {
			case <-seen: // Dial is now waiting for the response.
			case r := <-done:
				t.Fatalf("Dial returned before the server saw the request: %v", r.err)
			}
			cancel()
			r := <-done
			assert.ErrorIs(t, r.err, context.Canceled)
			assert.Nil(t, r.c)
			assert.Nil(t, r.resp)
			if r.c != nil {
				r.c.CloseNow()
			}
		})
	}
}

func TestDialContextDeadline(t *testing.T) {
	srv := startRawHTTPServer(t, nil)
	// Connecting ignores ctx, so that the deadline falls in the handshake proper: before
	// the request is written, while it is, or while Dial waits for the response. (How
	// net.Dialer reports a deadline is its own affair.) The error must tell the deadline
	// passed in every case.
	opts := &DialOptions{NetDialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return net.Dial(network, addr)
	}}
	for range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		c, _, err := Dial(ctx, "ws://"+srv.addr+"/chat", opts)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Nil(t, c)
	}
}

func TestDialKeepsEarlyData(t *testing.T) {
	// RFC 6455 §5.7: a single-frame unmasked text message "Hello".
	hello := "\x81\x05Hello"
	srv := startRawHTTPServer(t, respondWith(func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n" + hello
	}))
	c, _, err := Dial(waitContext(t), "ws://"+srv.addr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })

	typ, p, err := c.Read(waitContext(t))
	require.NoError(t, err)
	assert.Equal(t, MessageText, typ)
	assert.Equal(t, "Hello", string(p))
}
