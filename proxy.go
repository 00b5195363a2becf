package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// dialTCP opens the byte stream to addr that the handshake runs on: directly, or through
// a tunnel the proxy chosen by opts opens.
func dialTCP(ctx context.Context, u *url.URL, addr string, opts *DialOptions) (net.Conn, error) {
	dial := opts.NetDialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	pu, err := proxy(&http.Request{URL: &url.URL{Scheme: scheme, Host: u.Host}})
	if err != nil {
		return nil, fmt.Errorf("websocket: choosing a proxy: %w", err)
	}
	if pu == nil {
		nc, err := dial(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("websocket: %w", err)
		}
		return nc, nil
	}
	return dialProxy(ctx, dial, pu, addr, opts.ProxyTLSConfig)
}

// dialProxy asks the proxy at pu for a tunnel to addr with the CONNECT method (RFC 9110
// §9.3.6).
func dialProxy(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), pu *url.URL, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return nil, fmt.Errorf("websocket: proxy scheme %q is not http or https", pu.Scheme)
	}
	nc, err := dial(ctx, "tcp", hostPort(pu))
	if err != nil {
		return nil, fmt.Errorf("websocket: proxy: %w", err)
	}
	tunnel, err := connect(ctx, nc, pu, addr, tlsConfig)
	if err != nil {
		nc.Close()
		var he *HandshakeError
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("websocket: proxy %s: %w", pu.Host, ctx.Err())
		case errors.As(err, &he):
			// It names the proxy, and has the prefix already.
		default:
			err = fmt.Errorf("websocket: proxy %s: %w", pu.Host, err)
		}
		return nil, err
	}
	return tunnel, nil
}

func connect(ctx context.Context, nc net.Conn, pu *url.URL, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	tcp := nc
	stop := context.AfterFunc(ctx, func() { tcp.SetDeadline(aLongTimeAgo) })
	defer stop()

	if pu.Scheme == "https" {
		tc, err := tlsClient(ctx, nc, tlsConfig, pu.Hostname())
		if err != nil {
			return nil, err
		}
		nc = tc
	}

	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Host: addr},
		Host:   addr,
		Header: make(http.Header),
	}
	if pu.User != nil {
		password, _ := pu.User.Password()
		credentials := pu.User.Username() + ":" + password
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(credentials)))
	}
	bw := bufio.NewWriter(nc)
	if err := req.Write(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	resp, br, err := readResponse(nc, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		answer := fmt.Sprintf("proxy %s answered CONNECT with %q", pu.Host, resp.Proto+" "+resp.Status)
		return nil, &HandshakeError{Status: resp.StatusCode, Reason: refusal(resp, tcp, answer)}
	}
	if !stop() {
		return nil, ctx.Err()
	}
	if n := br.Buffered(); n > 0 {
		// The tunnel's first bytes came with the proxy's answer; the server speaks only
		// after our request, but keep them rather than lose them. br reads through the
		// head's bound: the tunnel reads nc itself.
		ahead, _ := br.Peek(n)
		return &prefixConn{Conn: nc, r: io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), nc)}, nil
	}
	return nc, nil
}

// prefixConn is a connection whose first bytes were read ahead into a buffer.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }
