package websocket

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file runs Conn tests over every transport a Conn sits on: net.Pipe (synchronous,
// no buffer), loopback TCP (kernel buffers, the raw socket read path) and TLS over TCP
// (crypto/tls, whose failed writes cannot resume). net/http's clientserver tests are the
// model: one test body, run once per transport.

// transport makes a connected pair of Conns. wrap, when not nil, stands between the
// client Conn and its connection, for tests that watch or cut its I/O.
type transport struct {
	name string
	pair func(t *testing.T, wrap func(net.Conn) net.Conn) (server, client *Conn)
}

var transports = []transport{
	{"pipe", func(t *testing.T, wrap func(net.Conn) net.Conn) (*Conn, *Conn) {
		a, b := net.Pipe()
		return conns(t, a, b, wrap)
	}},
	{"tcp", func(t *testing.T, wrap func(net.Conn) net.Conn) (*Conn, *Conn) {
		a, b := tcpPair(t)
		return conns(t, a, b, wrap)
	}},
	{"tls", func(t *testing.T, wrap func(net.Conn) net.Conn) (*Conn, *Conn) {
		a, b := tcpPair(t)
		cert, roots := testCertificate(t)
		sa := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
		cb := tls.Client(b, &tls.Config{RootCAs: roots, ServerName: "example.com"})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sa.HandshakeContext(waitContext(t))
		}()
		require.NoError(t, cb.HandshakeContext(waitContext(t)))
		wg.Wait()
		return conns(t, sa, cb, wrap)
	}},
}

// eachTransport runs test once over every transport, as a subtest named after it.
func eachTransport(t *testing.T, test func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { test(t, tr) })
	}
}

// conns makes a server Conn of a and a client Conn of b, closed when the test ends.
func conns(t *testing.T, a, b net.Conn, wrap func(net.Conn) net.Conn) (server, client *Conn) {
	t.Helper()
	if wrap != nil {
		b = wrap(b)
	}
	server = newConn(a, bufio.NewReader(a), false, "")
	client = newConn(b, bufio.NewReader(b), true, "")
	t.Cleanup(func() {
		server.CloseNow()
		client.CloseNow()
	})
	return server, client
}

var testCert struct {
	once  sync.Once
	cert  tls.Certificate
	roots *x509.CertPool
}

// testCertificate returns net/http/httptest's certificate for example.com and a pool
// that trusts it.
func testCertificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	testCert.once.Do(func() {
		srv := httptest.NewUnstartedServer(nil)
		srv.StartTLS()
		testCert.cert = srv.TLS.Certificates[0]
		testCert.roots = x509.NewCertPool()
		testCert.roots.AddCert(srv.Certificate())
		srv.Close()
	})
	return testCert.cert, testCert.roots
}

// hookConn calls its hooks after each read and write of the connection it wraps.
type hookConn struct {
	net.Conn
	afterRead  func(n int)
	afterWrite func(n int)
}

func (c *hookConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.afterRead != nil {
		c.afterRead(n)
	}
	return n, err
}

func (c *hookConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.afterWrite != nil {
		c.afterWrite(n)
	}
	return n, err
}
