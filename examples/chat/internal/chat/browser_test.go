package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/chromium"
)

// TestBrowser has two pages chat in headless Chromium. Bob's connection is cut while
// the server refuses new connections; Ann speaks meanwhile; once the server lets him
// back, Bob's page reconnects by itself and shows what he missed, once.
func TestBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	h, srv := newServer(t, Defaults)
	var refusing atomic.Bool
	handler := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" && refusing.Load() {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	})
	srv.Start()

	browser := chromium.Start(ctx, t)
	ann, err := browser.Open(ctx, srv.URL+"/?room=go&name=ann")
	require.NoError(t, err)
	require.NoError(t, ann.WaitUntil(ctx, connected))
	bob, err := browser.Open(ctx, srv.URL+"/?room=go&name=bob")
	require.NoError(t, err)
	require.NoError(t, bob.WaitUntil(ctx, connected))
	requireLines(ctx, t, ann, "* bob joined")
	require.NoError(t, ann.WaitUntil(ctx, `document.getElementById("members")?.textContent === "ann, bob"`))

	require.NoError(t, ann.Type(ctx, "text", "hello", "send"))
	requireLines(ctx, t, ann, "* bob joined", "ann: hello")
	requireLines(ctx, t, bob, "ann: hello")

	// Cut Bob's connection, as a network that fails does, and keep him out.
	refusing.Store(true)
	bobConn := memberConn(h, "go", "bob")
	require.NotNil(t, bobConn)
	bobConn.CloseNow() // no closing handshake
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left")
	require.NoError(t, ann.Type(ctx, "text", "are you there?", "send"))
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?")

	refusing.Store(false)
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?", "* bob joined")
	require.NoError(t, bob.WaitUntil(ctx, connected))
	require.NoError(t, bob.Type(ctx, "text", "back", "send"))
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?", "* bob joined", "bob: back")
	requireLines(ctx, t, bob, "ann: hello", "ann: are you there?", "bob: back")

	require.NoError(t, bob.Click(ctx, "leave"))
	require.NoError(t, bob.WaitUntil(ctx, `document.getElementById("status")?.textContent === "left"`))
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?", "* bob joined", "bob: back", "* bob left")

	// A name the server would refuse is caught by the page, which does not connect.
	long, err := browser.Open(ctx, srv.URL+"/?room=go&name="+strings.Repeat("é", 17))
	require.NoError(t, err)
	require.NoError(t, long.WaitUntil(ctx, `document.getElementById("join-error")?.textContent === "the name is longer than 32 bytes"`))
	var hidden bool
	require.NoError(t, long.Eval(ctx, `document.getElementById("chat").hidden`, &hidden))
	assert.True(t, hidden, "the chat is shown")
}

// TestBrowserKeepAlive has the server ping every 50 ms a page that sends nothing: the
// page stays on its first connection through many pings, answered by Chromium, after
// which it still sends and receives, and the server has measured the round-trip time.
func TestBrowserKeepAlive(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// The timeout is not what this test is about: it is long enough that a loaded
	// machine does not cut the page.
	cfg := Config{History: 3, Queue: 8 << 10, PingEvery: 50 * time.Millisecond, PongWithin: time.Second}
	h, srv := newServer(t, cfg)
	var handshakes atomic.Int32
	handler := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			handshakes.Add(1)
		}
		handler.ServeHTTP(w, r)
	})
	wire := &pongListener{Listener: srv.Listener, pongs: make(chan struct{}, 1024)}
	srv.Listener = wire
	srv.Start()

	browser := chromium.Start(ctx, t)
	ann, err := browser.Open(ctx, srv.URL+"/?room=go&name=ann")
	require.NoError(t, err)
	require.NoError(t, ann.WaitUntil(ctx, connected))

	// The page is idle: the server hears from it only the pongs, each one after an
	// interval of silence.
	const intervals = 6
	for i := range intervals {
		select {
		case <-wire.pongs:
		case <-ctx.Done():
			t.Fatalf("the page answered %d pings of %d: %v", i, intervals, ctx.Err())
		}
	}
	assert.Equal(t, int32(1), handshakes.Load(), "the page reconnected")
	conn := memberConn(h, "go", "ann")
	require.NotNil(t, conn, "ann is no longer in the room")
	assert.Positive(t, conn.RTT(), "the server measured no round trip")

	require.NoError(t, ann.WaitUntil(ctx, connected))
	require.NoError(t, ann.Type(ctx, "text", "still here", "send"))
	requireLines(ctx, t, ann, "ann: still here")
	assert.Equal(t, int32(1), handshakes.Load(), "the page reconnected")
}

// connected is true once a page has its welcome.
const connected = `document.getElementById("status")?.textContent === "connected"`

// requireLines waits until the page's log has as many lines as want, and checks them.
func requireLines(ctx context.Context, t *testing.T, p *chromium.Page, want ...string) {
	t.Helper()
	lines, err := p.WaitForLines(ctx, "log", len(want))
	require.NoError(t, err)
	require.Equal(t, want, lines)
}

// memberConn returns the connection of the named member of a room, or nil if there is
// no such member.
func memberConn(h *Hub, room, name string) *websocket.Conn {
	b := h.broker.(*memory)
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[room]
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for m := range r.members {
		if c := m.(*client); c.name == name {
			return c.conn
		}
	}
	return nil
}

// pongListener reports each pong a client sends on the WebSocket connections it accepts.
type pongListener struct {
	net.Listener
	pongs chan struct{} // a value for each pong; never blocks the connection
}

func (l *pongListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &pongConn{Conn: nc, pongs: l.pongs}, nil
}

// pongConn follows the frames a client sends, as the server reads them.
type pongConn struct {
	net.Conn
	pongs chan struct{}

	// Only the server's reader calls Read, one call at a time.
	buf   []byte // bytes read and not parsed yet: a request head or a frame header
	head  bool   // the request head has been read
	skip  int64  // bytes of a frame's payload still to come
	ended bool   // not a WebSocket connection: nothing more to follow
}

func (c *pongConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.follow(p[:n])
	return n, err
}

func (c *pongConn) follow(p []byte) {
	for len(p) > 0 && !c.ended {
		if c.skip > 0 {
			k := min(c.skip, int64(len(p)))
			c.skip -= k
			p = p[k:]
			continue
		}
		c.buf = append(c.buf, p...)
		p = nil
		if !c.head {
			head, rest, ok := bytes.Cut(c.buf, []byte("\r\n\r\n"))
			if !ok {
				return
			}
			c.head = true
			c.ended = !bytes.HasPrefix(head, []byte("GET /ws?"))
			p, c.buf = rest, nil
			continue
		}
		// A client's frame: 2 bytes, the extended length, the masking key, the payload.
		if len(c.buf) < 2 {
			return
		}
		h, n := 2+4, int64(c.buf[1]&0x7f)
		switch n {
		case 126:
			h += 2
		case 127:
			h += 8
		}
		if len(c.buf) < h {
			return
		}
		switch n {
		case 126:
			n = int64(binary.BigEndian.Uint16(c.buf[2:]))
		case 127:
			n = int64(binary.BigEndian.Uint64(c.buf[2:]))
		}
		if c.buf[0]&0x0f == 0xa {
			select {
			case c.pongs <- struct{}{}:
			default:
			}
		}
		p, c.buf, c.skip = c.buf[h:], nil, n
	}
}
