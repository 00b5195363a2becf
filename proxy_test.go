package websocket

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connectProxy is an HTTP CONNECT proxy written for the tests. It records the CONNECT
// requests it gets and, when auth is set, wants it as basic credentials.
type connectProxy struct {
	auth string // "user:password", or "" for none

	mu       sync.Mutex
	requests []*http.Request
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests = append(p.requests, r)
	p.mu.Unlock()
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if p.auth != "" && r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(p.auth)) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
		http.Error(w, "credentials needed", http.StatusProxyAuthRequired)
		return
	}
	target, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		target.Close()
		return
	}
	client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	// Relay both ways; when one side ends, end the other, and wait for both relays.
	done := make(chan struct{})
	go func() {
		io.Copy(target, client)
		target.Close()
		client.Close()
		close(done)
	}()
	io.Copy(client, target)
	target.Close()
	client.Close()
	<-done
}

func (p *connectProxy) connects() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var hosts []string
	for _, r := range p.requests {
		hosts = append(hosts, r.Method+" "+r.Host)
	}
	return hosts
}

// fixedProxy returns a DialOptions.Proxy that always names u.
func fixedProxy(u string) func(*http.Request) (*url.URL, error) {
	return func(*http.Request) (*url.URL, error) { return url.Parse(u) }
}

func TestDialThroughProxy(t *testing.T) {
	tests := []struct {
		name       string
		proxyTLS   bool
		targetTLS  bool
		auth       string // the proxy wants these credentials
		user       string // the credentials in the proxy URL
		wantStatus int    // 0: the connection works
	}{
		{name: "http proxy, ws"},
		{name: "http proxy, wss", targetTLS: true},
		{name: "https proxy, ws", proxyTLS: true},
		{name: "https proxy, wss", proxyTLS: true, targetTLS: true},
		{name: "basic auth", auth: "alice:s3cret", user: "alice:s3cret"},
		{name: "missing credentials", auth: "alice:s3cret", wantStatus: http.StatusProxyAuthRequired},
		{name: "wrong credentials", auth: "alice:s3cret", user: "alice:guess", wantStatus: http.StatusProxyAuthRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, results := acceptHandler(t, nil, nil)
			target := httptest.NewUnstartedServer(h)
			if tt.targetTLS {
				target.StartTLS()
			} else {
				target.Start()
			}
			t.Cleanup(target.Close)

			proxy := &connectProxy{auth: tt.auth}
			proxySrv := httptest.NewUnstartedServer(proxy)
			if tt.proxyTLS {
				proxySrv.StartTLS()
			} else {
				proxySrv.Start()
			}
			t.Cleanup(proxySrv.Close)

			pu, err := url.Parse(proxySrv.URL)
			require.NoError(t, err)
			if tt.user != "" {
				name, password, _ := strings.Cut(tt.user, ":")
				pu.User = url.UserPassword(name, password)
			}
			opts := &DialOptions{Proxy: fixedProxy(pu.String())}
			if tt.proxyTLS {
				roots := x509.NewCertPool()
				roots.AddCert(proxySrv.Certificate())
				opts.ProxyTLSConfig = &tls.Config{RootCAs: roots}
			}
			if tt.targetTLS {
				roots := x509.NewCertPool()
				roots.AddCert(target.Certificate())
				opts.TLSConfig = &tls.Config{RootCAs: roots}
			}

			c, _, err := Dial(waitContext(t), wsURL(target), opts)
			assert.Equal(t, []string{"CONNECT " + target.Listener.Addr().String()}, proxy.connects())
			if tt.wantStatus != 0 {
				var he *HandshakeError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, tt.wantStatus, he.Status)
				assert.Nil(t, c)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { c.CloseNow() })
			a := receiveAccepted(t, results)
			require.NoError(t, a.err)
			exchangeMessages(t, c, a.conn)
		})
	}
}

func TestDialProxyChoice(t *testing.T) {
	t.Run("nil URL means direct", func(t *testing.T) {
		srv, results := newAcceptServer(t, nil)
		var asked []string
		opts := &DialOptions{Proxy: func(r *http.Request) (*url.URL, error) {
			asked = append(asked, r.URL.String())
			return nil, nil
		}}
		c, _, err := Dial(waitContext(t), wsURL(srv)+"/path?q=1", opts)
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		require.NoError(t, receiveAccepted(t, results).err)
		assert.Equal(t, []string{"http://" + srv.Listener.Addr().String()}, asked, "the proxy func sees the target as http")
	})
	t.Run("wss is asked as https", func(t *testing.T) {
		var asked string
		opts := &DialOptions{Proxy: func(r *http.Request) (*url.URL, error) {
			asked = r.URL.Scheme
			return nil, errors.New("no proxy for you")
		}}
		_, _, err := Dial(waitContext(t), "wss://127.0.0.1:1/", opts)
		assert.Error(t, err)
		assert.Equal(t, "https", asked)
	})
	t.Run("unsupported proxy scheme", func(t *testing.T) {
		dialed := false
		opts := &DialOptions{
			Proxy: fixedProxy("socks5://127.0.0.1:1080"),
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("must not dial")
			},
		}
		_, _, err := Dial(waitContext(t), "ws://127.0.0.1:1/", opts)
		assert.Error(t, err)
		assert.False(t, dialed)
	})
}

// TestDialProxyTLSConfig checks the TLS connection to an https proxy uses ProxyTLSConfig,
// never TLSConfig: the client certificate meant for the wss server is not shown to the
// proxy, and the roots trusted for the server are not trusted for the proxy.
func TestDialProxyTLSConfig(t *testing.T) {
	// Both servers ask for a client certificate, and record the ones they get.
	h, results := acceptHandler(t, nil, nil)
	target := httptest.NewUnstartedServer(h)
	target.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	target.StartTLS()
	t.Cleanup(target.Close)

	var proxyPeerCerts []int
	var mu sync.Mutex
	proxy := &connectProxy{}
	proxySrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proxyPeerCerts = append(proxyPeerCerts, len(r.TLS.PeerCertificates))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	proxySrv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	proxySrv.Config.ErrorLog = log.New(io.Discard, "", 0) // a refused certificate is expected
	proxySrv.StartTLS()
	t.Cleanup(proxySrv.Close)

	// The test servers share one certificate: trusting it for the server trusts the proxy
	// too, unless Dial keeps the two configurations apart.
	serverRoots := x509.NewCertPool()
	serverRoots.AddCert(target.Certificate())
	proxyRoots := x509.NewCertPool()
	proxyRoots.AddCert(proxySrv.Certificate())
	clientCert := target.TLS.Certificates[0] // any certificate will do as the client's
	tlsConfig := &tls.Config{RootCAs: serverRoots, Certificates: []tls.Certificate{clientCert}}

	t.Run("no client certificate for the proxy", func(t *testing.T) {
		opts := &DialOptions{
			Proxy:          fixedProxy(proxySrv.URL),
			TLSConfig:      tlsConfig,
			ProxyTLSConfig: &tls.Config{RootCAs: proxyRoots},
		}
		c, _, err := Dial(waitContext(t), wsURL(target), opts)
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		a := receiveAccepted(t, results)
		require.NoError(t, a.err)
		exchangeMessages(t, c, a.conn)

		mu.Lock()
		assert.Equal(t, []int{0}, proxyPeerCerts, "client certificates the proxy saw")
		mu.Unlock()
		assert.Len(t, a.req.TLS.PeerCertificates, 1, "client certificates the server saw")
	})
	t.Run("the server's roots are not the proxy's", func(t *testing.T) {
		opts := &DialOptions{Proxy: fixedProxy(proxySrv.URL), TLSConfig: tlsConfig}
		c, _, err := Dial(waitContext(t), wsURL(target), opts)
		var verr *tls.CertificateVerificationError
		assert.ErrorAs(t, err, &verr)
		assert.Nil(t, c)
		if c != nil {
			c.CloseNow()
		}
	})
}
