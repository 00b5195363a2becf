package websocket

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file runs the cases of conformance_test.go over loopback TCP, as the Autobahn
// testsuite does, after a real opening handshake: the Conn comes from Accept behind an
// HTTP server or from Dial, and reads through the socket path of its read buffer, which
// net.Pipe never takes.

// confCategories are the conformance cases, by Autobahn category, that the tests over
// real connections (TCP here, HTTP/2 streams in h2_test.go) run: those that do not need
// a peer given to the Conn directly.
var confCategories = []struct {
	name  string
	build func(w confWire) []confCase
}{
	{"1.x", confFramingCases},
	{"2.x", confPingPongCases},
	{"3.x", confReservedBitsCases},
	{"4.x", confOpcodesCases},
	{"5.x", confFragmentationCases},
	{"6.x", confUTF8Cases},
	{"7.x", confCloseCases},
	{"9.x", confLimitsCases(true)},
	{"10.x", confAutoFragmentationCases},
}

func TestConformanceOverTCP(t *testing.T) {
	for _, role := range confRoles {
		t.Run(role.name, func(t *testing.T) {
			t.Parallel()
			ends := newTCPEnds(t)
			newPeer := func(t *testing.T, stream bool) *confPeer {
				return confPeerOn(t, ends.rawPeer(t, role.connIsClient), role.connIsClient, stream)
			}
			for _, cat := range confCategories {
				for _, c := range cat.build(confWire{masked: !role.connIsClient}) {
					if c, ok := c.forTCP(); ok {
						t.Run(cat.name+"/"+c.name, func(t *testing.T) { c.run(t, newPeer) })
					}
				}
			}
		})
	}
}

// forTCP returns the case as it runs over TCP, and whether it can. Bytes that reach a
// socket closed with data unread make the kernel reset the connection, and a reset can
// destroy the close frame before the peer reads it. So a case whose Conn closes first
// qualifies only if it sends everything in one write, which the Conn reads whole; the rest
// of a bad message, sent once the close frame came over net.Pipe, is not sent at all.
func (c confCase) forTCP() (confCase, bool) {
	switch {
	case c.fail != 0:
		c.after = nil
		return c, len(c.send) == 1
	case c.closed != 0:
		return c, len(c.send) == 1
	}
	return c, true
}

// tcpEnds makes connected pairs of a raw peer and a Conn on loopback TCP: for a server
// Conn, an HTTP server whose handler calls Accept; for a client Conn, a listener that a
// raw server answers Dial on.
type tcpEnds struct {
	srv      *httptest.Server
	accepted chan *Conn
	done     chan struct{} // closed when the test ends
	ln       net.Listener
}

func newTCPEnds(t *testing.T) *tcpEnds {
	e := &tcpEnds{accepted: make(chan *Conn), done: make(chan struct{})}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if !assert.NoError(t, err) {
			return
		}
		select {
		case e.accepted <- c:
		case <-e.done: // the case that dialed has failed already
			c.CloseNow()
		}
	}))
	t.Cleanup(func() {
		close(e.done)
		e.srv.Close()
	})
	var err error
	e.ln, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { e.ln.Close() })
	return e
}

// rawPeer is newRawPeer over loopback TCP: the Conn in the given role has gone through
// the opening handshake with the raw peer, which wrote and read it by hand.
func (e *tcpEnds) rawPeer(t *testing.T, connIsClient bool) *rawPeer {
	t.Helper()
	var nc net.Conn
	var conn *Conn
	if connIsClient {
		nc, conn = e.dialedByRawServer(t)
	} else {
		nc, conn = e.acceptedFromRawClient(t)
	}
	return startRawPeer(t, nc, conn)
}

// acceptedFromRawClient returns a raw client connection and the Conn that Accept made of
// it.
func (e *tcpEnds) acceptedFromRawClient(t *testing.T) (net.Conn, *Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	_, err = fmt.Fprintf(nc, "GET /autobahn HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", e.srv.Listener.Addr(), key)
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, acceptKey(key), resp.Header.Get("Sec-WebSocket-Accept"))
	require.Zero(t, br.Buffered(), "the server sent something after its handshake response")
	nc.SetDeadline(time.Time{})
	select {
	case c := <-e.accepted:
		return nc, c
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Accept did not return")
	}
	return nil, nil
}

// dialedByRawServer returns a raw server connection and the Conn that Dial made of it.
func (e *tcpEnds) dialedByRawServer(t *testing.T) (net.Conn, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type dialed struct {
		c   *Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
		c, _, err := Dial(ctx, "ws://"+e.ln.Addr().String()+"/autobahn", &DialOptions{Proxy: noProxy})
		done <- dialed{c, err}
	}()

	nc, err := e.ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	require.NoError(t, err)
	require.Zero(t, br.Buffered(), "the client sent something after its handshake request")
	_, err = fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n\r\n", acceptKey(req.Header.Get("Sec-WebSocket-Key")))
	require.NoError(t, err)
	nc.SetDeadline(time.Time{})
	d := <-done // bounded by ctx
	require.NoError(t, d.err)
	return nc, d.c
}
