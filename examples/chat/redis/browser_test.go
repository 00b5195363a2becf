package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket/internal/chromium"
)

// TestBrowserFailover has two pages chat in headless Chromium through different nodes:
// Ann's on node A, Bob's through a front that passes it to node B. Node B stops; Ann
// speaks meanwhile; the front passes Bob to node C, and his page, reconnecting by itself,
// shows what Ann said, once.
func TestBrowserFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	r := startRedis(t)
	a, b, c := startNode(t, r.addr()), startNode(t, r.addr()), startNode(t, r.addr())

	// The front, as a load balancer would be: it passes each request to the node it
	// points at, or refuses it while it points at none.
	var backend atomic.Pointer[url.URL]
	// It keeps the Host the page asked for, which the node checks the page's Origin
	// against.
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(backend.Load())
		pr.Out.Host = pr.In.Host
	}}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if backend.Load() == nil {
			http.Error(w, "no node", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	backend.Store(b.httpURL(t))

	browser := chromium.Start(ctx, t)
	ann, err := browser.Open(ctx, a.httpURL(t).String()+"/?room=go&name=ann")
	require.NoError(t, err)
	require.NoError(t, ann.WaitUntil(ctx, connected))
	bob, err := browser.Open(ctx, front.URL+"/?room=go&name=bob")
	require.NoError(t, err)
	require.NoError(t, bob.WaitUntil(ctx, connected))
	requireLines(ctx, t, ann, "* bob joined")

	require.NoError(t, ann.Type(ctx, "text", "hello", "send"))
	requireLines(ctx, t, bob, "ann: hello")

	backend.Store(nil)
	b.stop(t)
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left")
	require.NoError(t, ann.Type(ctx, "text", "are you there?", "send"))
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?")

	backend.Store(c.httpURL(t))
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?", "* bob joined")
	require.NoError(t, bob.WaitUntil(ctx, connected))
	require.NoError(t, bob.Type(ctx, "text", "back", "send"))
	requireLines(ctx, t, bob, "ann: hello", "ann: are you there?", "bob: back")
	requireLines(ctx, t, ann, "* bob joined", "ann: hello", "* bob left", "ann: are you there?", "* bob joined", "bob: back")
}

// httpURL is the node's address as an http URL.
func (n *node) httpURL(t *testing.T) *url.URL {
	u, err := url.Parse("http" + strings.TrimSuffix(strings.TrimPrefix(n.url, "ws"), "/ws?"))
	require.NoError(t, err)
	return u
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
