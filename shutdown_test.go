package websocket

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// groupServer starts a server whose handler accepts into g, sends "ready" once the Conn
// is in g, and reads until the Conn fails, reporting the error.
func groupServer(t *testing.T, g *Group) (*httptest.Server, <-chan error) {
	ended := make(chan error, 128)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{Group: g})
		if err != nil {
			ended <- err
			return
		}
		defer c.CloseNow()
		c.Write(context.Background(), MessageText, []byte("ready"))
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				ended <- err
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, ended
}

// dialReady connects to a groupServer and waits until its Conn is in the group.
func dialReady(t *testing.T, srv *httptest.Server) *Conn {
	t.Helper()
	c, _, err := Dial(waitContext(t), wsURL(srv), nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	_, msg, err := c.Read(waitContext(t))
	require.NoError(t, err)
	require.Equal(t, "ready", string(msg))
	return c
}

func (g *Group) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// TestShutdown closes 100 connections with 1001 and returns once they are all closed.
func TestShutdown(t *testing.T) {
	var g Group
	srv, ended := groupServer(t, &g)
	const n = 100
	clientErrs := make(chan error, n)
	for range n {
		c := dialReady(t, srv)
		go func() {
			_, _, err := c.Read(context.Background())
			clientErrs <- err
		}()
	}
	require.Equal(t, n, g.size())

	require.NoError(t, g.Shutdown(waitContext(t)))
	assert.Zero(t, g.size(), "every Conn has left the group")
	for range n {
		assert.Equal(t, StatusGoingAway, CloseStatus(<-clientErrs), "each client is told the server is going away")
		assert.Equal(t, StatusGoingAway, CloseStatus(<-ended), "each handler's read sees the client's answer")
	}
	require.NoError(t, g.Shutdown(waitContext(t)), "a second Shutdown has nothing to do")
}

// TestShutdownUnansweredClose cuts a connection whose peer never answers the close frame
// at the context's end, while one that answers closes with the handshake, and one closed
// before Shutdown is not touched.
func TestShutdownUnansweredClose(t *testing.T) {
	var g Group
	srv, ended := groupServer(t, &g)

	early := dialReady(t, srv)
	require.NoError(t, early.Close(StatusNormalClosure, ""))
	assert.Equal(t, StatusNormalClosure, CloseStatus(<-ended))
	assert.Zero(t, g.size(), "a closed Conn leaves the group")

	answering := dialReady(t, srv)
	answered := make(chan error, 1)
	go func() {
		_, _, err := answering.Read(context.Background())
		answered <- err
	}()

	// A raw client that reads what the server sends and never answers.
	_, br, _ := sendRaw(t, srv, handshakeRequest("GET", "HTTP/1.1", srv.Listener.Addr().String(), upgradeHeader()))
	f, err := readRawFrame(br)
	require.NoError(t, err)
	require.Equal(t, "ready", string(f.payload))
	require.Equal(t, 2, g.size())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- g.Shutdown(ctx) }()

	f, err = readRawFrame(br)
	require.NoError(t, err)
	require.Equal(t, opClose, f.op)
	require.Equal(t, StatusGoingAway, f.closeCode())
	assert.Equal(t, StatusGoingAway, CloseStatus(<-answered))
	cancel() // the context ends before the raw client answers: it is cut off
	require.ErrorIs(t, <-shut, context.Canceled)
	assert.Zero(t, g.size())
	_, err = readRawFrame(br)
	assert.Error(t, err, "the connection is closed without another frame")
	for range 2 {
		<-ended
	}
}

// TestShutdownLate checks a Group shut down while empty, and a Conn accepted after it.
func TestShutdownLate(t *testing.T) {
	var g Group
	require.NoError(t, g.Shutdown(waitContext(t)))
	srv, ended := groupServer(t, &g)
	c, _, err := Dial(waitContext(t), wsURL(srv), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	for {
		_, _, err = c.Read(waitContext(t))
		if err != nil {
			break
		}
	}
	assert.Equal(t, StatusGoingAway, CloseStatus(err))
	<-ended
}
