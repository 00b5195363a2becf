package chat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket/internal/chromium"
)

// TestBrowser has two pages chat in headless Chromium. Bob's connection is cut while
// the server refuses new connections; Ann speaks meanwhile; once the server lets him
// back, Bob's page reconnects by itself and shows what he missed, once.
func TestBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	h := NewHub(Defaults, NewMemory(Defaults))
	var refusing atomic.Bool
	handler := h.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" && refusing.Load() {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
		srv.Close()
	})

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
	require.True(t, cutConnection(h, "go", "bob"))
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

// connected is true once a page has its welcome.
const connected = `document.getElementById("status")?.textContent === "connected"`

// requireLines waits until the page's log has as many lines as want, and checks them.
func requireLines(ctx context.Context, t *testing.T, p *chromium.Page, want ...string) {
	t.Helper()
	lines, err := p.WaitForLines(ctx, "log", len(want))
	require.NoError(t, err)
	require.Equal(t, want, lines)
}

// cutConnection closes the connection of the named member of a room without a closing
// handshake. It reports whether it found the member.
func cutConnection(h *Hub, room, name string) bool {
	b := h.broker.(*memory)
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[room]
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for m := range r.members {
		if c := m.(*client); c.name == name {
			c.conn.CloseNow()
			return true
		}
	}
	return false
}
