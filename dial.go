package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DialOptions configures Dial. The zero value, like a nil pointer, is the default.
type DialOptions struct {
	// Header holds extra request headers, such as Origin, Cookie or Authorization. A Host
	// header replaces the URL's host in the request. Headers the handshake sets itself
	// take precedence. Default: none.
	Header http.Header

	// Subprotocols lists the subprotocols offered to the server, most preferred first.
	// Default: none.
	Subprotocols []string

	// TLSConfig is used for the TLS connection to the server of a wss:// or https:// URL,
	// never for a proxy (see ProxyTLSConfig). Default: the zero tls.Config, with
	// ServerName taken from the URL when the config does not set it.
	TLSConfig *tls.Config

	// ProxyTLSConfig is used for the TLS connection to an https:// proxy. It is apart from
	// TLSConfig so that a client certificate meant for the server is not shown to the
	// proxy. Default: the zero tls.Config (the system's roots, no client certificate), with
	// ServerName the proxy's host when the config does not set it.
	ProxyTLSConfig *tls.Config

	// HandshakeTimeout bounds the whole of Dial, as a deadline on ctx would: connecting,
	// the proxy's tunnel, TLS and the opening handshake. When it passes, Dial returns an
	// error matching context.DeadlineExceeded. A negative value leaves ctx alone to bound
	// Dial. Default: 30 seconds when ctx has no deadline, none when it has one. A server
	// that accepts the connection and then says nothing holds a goroutine, a socket and
	// buffers for that long; 30 seconds is net/http's DefaultTransport dial timeout, ample
	// for a slow network, TLS and a proxy. The bound costs a timer and a context, about
	// 10 small allocations per Dial.
	HandshakeTimeout time.Duration

	// NetDialContext opens the TCP connection, to the server or to the proxy. Default: a
	// net.Dialer's DialContext.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the proxy for a request, as http.Transport's Proxy does: an http:// or
	// https:// proxy, through which Dial opens a tunnel with CONNECT (with basic
	// authentication when the proxy URL carries a user), or nil for a direct connection.
	// Dial asks it with the URL's scheme given as http or https. Default:
	// http.ProxyFromEnvironment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY); a func returning nil
	// turns proxies off.
	Proxy func(*http.Request) (*url.URL, error)

	// Compression says whether to offer permessage-deflate to the server, and how; see
	// CompressionMode for what each mode costs. Default: CompressionDisabled.
	Compression CompressionMode
	// CoalesceWrites holds back small messages written while the server's next input is
	// buffered, as AcceptOptions.CoalesceWrites does on a server. Default: false.
	CoalesceWrites bool

	// MaxBuffered bounds the bytes of the messages that Send holds for the Conn, as
	// AcceptOptions.MaxBuffered does on a server. Default (0 or less): 1 MiB.
	MaxBuffered int

	// PingInterval and PingTimeout turn keepalive on, as AcceptOptions.PingInterval and
	// AcceptOptions.PingTimeout do on a server. Default: 0, no keepalive.
	PingInterval time.Duration
	PingTimeout  time.Duration
}

// Bounds on what a server can make Dial read and wait for.
const (
	// maxResponseHead bounds the status line and headers of a response, to the server or
	// to a proxy's CONNECT: net/http's server takes 1 MiB for a request's head
	// (DefaultMaxHeaderBytes). A 101 answer is a few hundred bytes, and cookies, the
	// largest legitimate headers, stay far below; 1 MiB keeps a hostile server from
	// costing more than a few MiB of heap per Dial. (net/http's Transport allows 10 MiB
	// for any response; a handshake needs much less.)
	maxResponseHead = 1 << 20

	// maxErrorBody bounds how much of a refusing response's body Dial keeps, and
	// errorBodyTimeout how long it waits for it.
	maxErrorBody     = 1024
	errorBodyTimeout = time.Second

	defaultHandshakeTimeout = 30 * time.Second
)

// errResponseHead is the error of a response head larger than maxResponseHead.
var errResponseHead = errors.New("the response's status line and headers exceed 1 MiB")

// Dial opens a WebSocket connection to url and runs the client side of the opening
// handshake (RFC 6455 §4.1). The URL is a ws:// or wss:// one; http:// and https:// are
// taken as ws:// and wss://, so that an httptest.Server's URL can be dialed as it is.
//
// Dial blocks until the handshake is done or fails. ctx bounds the whole of it: connecting,
// TLS and the handshake; it does not outlive Dial. So does DialOptions.HandshakeTimeout,
// which is 30 seconds when ctx has no deadline. The server's status line and headers may
// take up to 1 MiB (as net/http's server allows a request); a larger answer fails Dial.
//
// It returns the server's response as well. When the server refuses, the error is a
// *HandshakeError whose message quotes the server's status line and the first kilobyte
// of its body, and the response, if one was read, carries the status, the headers and
// that first kilobyte. Redirects are reported, not followed. Dial is safe for concurrent
// use, and opts is not modified.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, nil, fmt.Errorf("websocket: URL scheme %q is not ws, wss, http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("websocket: URL %q has no host", rawURL)
	}

	timeout := handshakeTimeout(ctx, opts)
	dctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var (
		c    *Conn
		resp *http.Response
	)
	nc, err := dialTCP(dctx, u, hostPort(u), opts)
	if err == nil {
		c, resp, err = handshake(dctx, nc, u, opts)
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("websocket: %w", ctx.Err())
		case dctx.Err() != nil:
			err = fmt.Errorf("websocket: handshake not done within %v: %w", timeout, dctx.Err())
		}
		return nil, resp, err
	}
	return c, resp, nil
}

// handshakeTimeout returns the bound Dial puts on itself besides ctx, or 0 for none.
func handshakeTimeout(ctx context.Context, opts *DialOptions) time.Duration {
	if opts.HandshakeTimeout < 0 {
		return 0
	}
	if opts.HandshakeTimeout > 0 {
		return opts.HandshakeTimeout
	}
	if _, ok := ctx.Deadline(); ok {
		return 0
	}
	return defaultHandshakeTimeout
}

// hostPort returns the address to connect to for u, a ws, wss, http or https URL: its host
// and port, the scheme's default port if it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "wss" || u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// tlsClient runs the client side of a TLS handshake on nc with a copy of cfg, which may
// be nil, naming host as the server unless cfg names one.
func tlsClient(ctx context.Context, nc net.Conn, cfg *tls.Config, host string) (net.Conn, error) {
	cfg = cfg.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	// What follows is HTTP/1.1: a server must not pick h2 from the caller's ALPN list.
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// headReader lets a response head be read from r through a bufio.Reader without reading
// more than n bytes of r.
type headReader struct {
	r io.Reader
	n int
}

func (h *headReader) Read(p []byte) (int, error) {
	if h.n <= 0 {
		return 0, errResponseHead
	}
	n, err := h.r.Read(p[:min(len(p), h.n)])
	h.n -= n
	return n, err
}

// readResponse reads the response to req from nc, its head within maxResponseHead bytes.
// The bytes buffered past the head belong to what follows it; the body, if the caller
// reads it, is read without the bound.
func readResponse(nc net.Conn, req *http.Request) (*http.Response, *bufio.Reader, error) {
	// One allocation holds both, as bufio.NewReader's would hold the bufio.Reader alone.
	b := &struct {
		hr headReader
		br bufio.Reader
	}{hr: headReader{r: nc, n: maxResponseHead}}
	b.br.Reset(&b.hr) // a 4 KiB buffer
	resp, err := http.ReadResponse(&b.br, req)
	if err != nil {
		if b.hr.n <= 0 {
			// The bound may have cut a line short, and textproto reports that instead.
			err = errResponseHead
		}
		return nil, nil, err
	}
	b.hr.n = math.MaxInt
	return resp, &b.br, nil
}

// refusal returns the reason to report for a refusing response: answer, which says what
// the response is (with its status line), then where it redirects to and the start of its
// body. It replaces resp.Body with what it read of it.
func refusal(resp *http.Response, tcp net.Conn, answer string) string {
	// A body without a length that the server never ends must not hold Dial up. The
	// original body is not closed: that would read it to its end, and the connection is
	// closed anyway.
	tcp.SetReadDeadline(time.Now().Add(errorBodyTimeout))
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	cut := len(body) > maxErrorBody
	body = body[:min(len(body), maxErrorBody)]
	resp.Body = io.NopCloser(bytes.NewReader(body))

	reason := answer
	if loc := resp.Header.Get("Location"); loc != "" {
		reason += fmt.Sprintf("; it redirects to %q", loc)
	}
	if len(body) > 0 {
		// Quoted: the body is the server's, and may hold anything.
		reason += fmt.Sprintf("; body: %q", body)
		if cut {
			reason += fmt.Sprintf(" (its first %d bytes)", maxErrorBody)
		}
	}
	return reason
}

// handshake runs TLS, if asked for, and the opening handshake on nc.
func handshake(ctx context.Context, nc net.Conn, u *url.URL, opts *DialOptions) (*Conn, *http.Response, error) {
	// ctx's end, its deadline included, interrupts the I/O below through AfterFunc. A
	// deadline set on nc instead can expire before ctx reports it, and the error would not
	// match ctx.Err(). The func keeps the TCP conn: nc becomes the TLS conn below.
	tcp := nc
	stop := context.AfterFunc(ctx, func() { tcp.SetDeadline(aLongTimeAgo) })
	defer stop()

	if u.Scheme == "wss" {
		tc, err := tlsClient(ctx, nc, opts.TLSConfig, u.Hostname())
		if err != nil {
			return nil, nil, fmt.Errorf("websocket: %w", err)
		}
		nc = tc
	}

	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     opts.Header.Clone(),
		Host:       u.Host,
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
		req.Header.Del("Host")
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		req.Header["Sec-WebSocket-Protocol"] = []string{strings.Join(opts.Subprotocols, ", ")}
	}
	if offer := deflateOffer(opts.Compression); offer != "" {
		req.Header["Sec-WebSocket-Extensions"] = []string{offer}
	} else {
		req.Header.Del("Sec-WebSocket-Extensions")
	}
	bw := bufio.NewWriterSize(nc, 1024)
	if err := req.Write(bw); err != nil {
		return nil, nil, fmt.Errorf("websocket: writing the handshake request: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, fmt.Errorf("websocket: writing the handshake request: %w", err)
	}

	resp, br, err := readResponse(nc, req)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		answer := fmt.Sprintf("server answered %q, not 101 Switching Protocols", resp.Proto+" "+resp.Status)
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Reason: refusal(resp, tcp, answer)}
	}
	deflate, compress, err := checkResponse(resp, key, opts)
	if err != nil {
		return nil, resp, err
	}
	if !stop() {
		return nil, resp, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	c := newConn(nc, br, true, resp.Header.Get("Sec-WebSocket-Protocol"))
	if compress {
		c.useDeflate(deflate)
	}
	if opts.CoalesceWrites {
		c.coalesceWrites()
	}
	c.sq.max = opts.MaxBuffered
	c.startKeepalive(opts.PingInterval, opts.PingTimeout, realClock{})
	return c, resp, nil
}

// checkResponse checks the server's 101 answer against RFC 6455 §4.1 and returns the
// compression it agreed to, if any.
func checkResponse(resp *http.Response, key string, opts *DialOptions) (p deflateParams, compress bool, err error) {
	refused := func(reason string) error {
		return &HandshakeError{Status: resp.StatusCode, Reason: reason}
	}
	if !hasToken(resp.Header, "Upgrade", "websocket") {
		return p, false, refused(`response lacks "Upgrade: websocket"`)
	}
	if !hasToken(resp.Header, "Connection", "upgrade") {
		return p, false, refused(`response lacks "Connection: Upgrade"`)
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return p, false, refused("Sec-WebSocket-Accept does not match the key sent")
	}
	if sp := resp.Header.Values("Sec-WebSocket-Protocol"); len(sp) > 1 || len(sp) == 1 && !slices.Contains(opts.Subprotocols, sp[0]) {
		return p, false, refused(fmt.Sprintf("server chose subprotocol %q, which was not offered", sp))
	}
	p, compress, err = deflateResponse(resp.Header.Values("Sec-WebSocket-Extensions"), opts.Compression)
	if err != nil {
		return p, false, refused(err.Error())
	}
	return p, compress, nil
}
