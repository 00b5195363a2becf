package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
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

	// TLSConfig is used for wss:// URLs. Default: the zero tls.Config, with ServerName
	// taken from the URL when the config does not set it.
	TLSConfig *tls.Config

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
}

// maxErrorBody bounds how much of a refusing response's body Dial keeps, and
// errorBodyTimeout how long it waits for it.
const (
	maxErrorBody     = 1024
	errorBodyTimeout = time.Second
)

// Dial opens a WebSocket connection to url, a ws:// or wss:// URL, and runs the client
// side of the opening handshake (RFC 6455 §4.1). ctx bounds the whole of it: connecting,
// TLS and the handshake; it does not outlive Dial.
//
// It returns the server's response as well. When the server refuses, the error is a
// *HandshakeError and the response, if one was read, carries the status, the headers and
// the first kilobyte of the body. Redirects are reported, not followed.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: %w", err)
	}
	port := ""
	switch u.Scheme {
	case "ws":
		port = "80"
	case "wss":
		port = "443"
	default:
		return nil, nil, fmt.Errorf("websocket: URL scheme %q is not ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("websocket: URL %q has no host", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), port)
	}

	nc, err := dialTCP(ctx, u, addr, opts)
	if err != nil {
		return nil, nil, err
	}
	c, resp, err := handshake(ctx, nc, u, opts)
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("websocket: %w", ctx.Err())
		}
		return nil, resp, err
	}
	return c, resp, nil
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
		cfg := opts.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		// The handshake is HTTP/1.1: a server must not pick h2 from our ALPN list.
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
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

	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("websocket: reading the handshake response: %w", err)
	}
	deflate, compress, err := checkResponse(resp, key, opts)
	if err != nil {
		// A body without a length that the server never ends must not hold Dial up.
		tcp.SetReadDeadline(time.Now().Add(errorBodyTimeout))
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
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
	return c, resp, nil
}

// checkResponse checks the server's answer against RFC 6455 §4.1 and returns the
// compression it agreed to, if any.
func checkResponse(resp *http.Response, key string, opts *DialOptions) (p deflateParams, compress bool, err error) {
	refused := func(reason string) error {
		return &HandshakeError{Status: resp.StatusCode, Reason: reason}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		reason := fmt.Sprintf("server answered %q, not 101 Switching Protocols", resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			reason += "; it redirects to " + loc
		}
		return p, false, refused(reason)
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
