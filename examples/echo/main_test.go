package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/chromium"
	"github.com/hybi/websocket/internal/leak"
	"github.com/hybi/websocket/internal/xconnect"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// ending is how an echo connection ended: the HTTP major version of the
// request that opened it, and the error that ended it.
type ending struct {
	protoMajor int
	err        error
}

// serve runs the example's handler on a test server bound to 127.0.0.1.
// The returned channel receives how the echo connection ended.
func serve(t *testing.T) (*httptest.Server, <-chan ending) {
	srv, ended := newTestServer(t)
	srv.Start()
	return srv, ended
}

// newTestServer returns an unstarted test server running the example's handler.
func newTestServer(t *testing.T) (*httptest.Server, <-chan ending) {
	ended := make(chan ending, 1)
	srv := httptest.NewUnstartedServer(newHandler(func(r *http.Request, err error) {
		select {
		case ended <- ending{r.ProtoMajor, err}:
		default:
			t.Errorf("a second echo connection ended: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, ended
}

// requireClosedBy checks that the server's echo loop ended because the peer
// closed with status 1000 and the given reason, on a connection opened over
// HTTP/1.1.
func requireClosedBy(ctx context.Context, t *testing.T, ended <-chan ending, reason string) {
	t.Helper()
	requireClosedOver(ctx, t, ended, reason, 1)
}

// requireClosedOver is requireClosedBy for a connection opened over HTTP/major.
func requireClosedOver(ctx context.Context, t *testing.T, ended <-chan ending, reason string, major int) {
	t.Helper()
	select {
	case e := <-ended:
		assert.Equal(t, major, e.protoMajor, "the WebSocket came over HTTP/%d", e.protoMajor)
		err := e.err
		assert.ErrorIs(t, err, net.ErrClosed)
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
		assert.Equal(t, reason, ce.Reason)
		assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err))
	case <-ctx.Done():
		t.Fatalf("the echo connection did not end: %v", ctx.Err())
	}
}

func TestPage(t *testing.T) {
	srv, _ := serve(t)

	resp, err := srv.Client().Get(srv.URL + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	for _, id := range []string{"msg", "send", "close", "connect", "log"} {
		assert.Contains(t, string(body), fmt.Sprintf(`id=%q`, id))
	}
}

// TestServerLimits checks the limits newServer puts on the request head, which a plain
// http.Server leaves at none in time and 1 MiB in size.
func TestServerLimits(t *testing.T) {
	h := newHandler(nil)
	srv := httptest.NewUnstartedServer(h)
	srv.Config = newServer(h)
	srv.Start()
	t.Cleanup(srv.Close)

	assert.Positive(t, srv.Config.ReadHeaderTimeout, "a slow handshake may hold a goroutine forever")
	tests := []struct {
		name   string
		cookie int
		want   int
	}{
		{"cookies of 8 KiB", 8 << 10, http.StatusOK},
		{"cookies of 64 KiB", 64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/", nil)
			require.NoError(t, err)
			req.Header.Set("Cookie", "c="+strings.Repeat("x", tt.cookie))
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
		})
	}
}

func TestEcho(t *testing.T) {
	srv, ended := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	require.NoError(t, err)
	defer c.CloseNow()

	tests := []struct {
		name string
		typ  websocket.MessageType
		p    []byte
	}{
		{"text", websocket.MessageText, []byte("hello")},
		{"empty text", websocket.MessageText, []byte{}},
		// Longer than 125 bytes: the frame header carries a 16-bit length.
		{"long text", websocket.MessageText, []byte(strings.Repeat("héllo ", 30))},
		{"binary", websocket.MessageBinary, []byte{0x00, 0x01, 0xfe, 0xff}},
		{"empty binary", websocket.MessageBinary, []byte{}},
		// Longer than 65535 bytes: the frame header carries a 64-bit length.
		{"large binary", websocket.MessageBinary, bytes.Repeat([]byte{0xab}, 70000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Write(ctx, tt.typ, tt.p))
			typ, p, err := c.Read(ctx)
			require.NoError(t, err)
			assert.Equal(t, tt.typ, typ)
			assert.Equal(t, len(tt.p), len(p))
			assert.True(t, bytes.Equal(tt.p, p), "echoed payload differs")
		})
	}

	require.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
	requireClosedBy(ctx, t, ended, "done")
}

// TestBrowser drives the page in headless Chromium: the browser's WebSocket
// client talks to our server, and our client talks to the browser's DevTools
// server.
func TestBrowser(t *testing.T) {
	srv, ended := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	browser := chromium.Start(ctx, t)
	page, err := browser.Open(ctx, srv.URL+"/")
	require.NoError(t, err)

	lines, err := page.WaitForLines(ctx, "log", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"open"}, lines)
	assert.Equal(t, openButtons, buttons(ctx, t, page))

	require.NoError(t, page.Type(ctx, "msg", "hello", "send"))
	lines, err = page.WaitForLines(ctx, "log", 3)
	require.NoError(t, err)
	require.Equal(t, []string{"open", "sent: hello", "received: hello"}, lines)

	require.NoError(t, page.Click(ctx, "close"))
	lines, err = page.WaitForLines(ctx, "log", 4)
	require.NoError(t, err)
	// The reason the page shows is the one in the server's reply, which
	// echoes the code only.
	assert.Equal(t, []string{"open", "sent: hello", "received: hello", "closed: 1000"}, lines)
	assert.Equal(t, closedButtons, buttons(ctx, t, page))
	requireClosedBy(ctx, t, ended, "bye")

	// Send does nothing once the socket is closed: a click is handled at once, so a
	// line it logged would be there when Type returns.
	require.NoError(t, page.Type(ctx, "msg", " after close", "send"))
	lines, err = page.WaitForLines(ctx, "log", 4)
	require.NoError(t, err)
	assert.Equal(t, []string{"open", "sent: hello", "received: hello", "closed: 1000"}, lines)

	// Reconnect opens a new connection, which echoes as the first did.
	require.NoError(t, page.Click(ctx, "connect"))
	lines, err = page.WaitForLines(ctx, "log", 5)
	require.NoError(t, err)
	require.Equal(t, "open", lines[4])
	assert.Equal(t, openButtons, buttons(ctx, t, page))
	require.NoError(t, page.Click(ctx, "send"))
	lines, err = page.WaitForLines(ctx, "log", 7)
	require.NoError(t, err)
	require.Equal(t, []string{"sent: hello after close", "received: hello after close"}, lines[5:])
	require.NoError(t, page.Click(ctx, "close"))
	lines, err = page.WaitForLines(ctx, "log", 8)
	require.NoError(t, err)
	assert.Equal(t, "closed: 1000", lines[7])
	assert.Equal(t, closedButtons, buttons(ctx, t, page))
	requireClosedBy(ctx, t, ended, "bye")

	// Chromium offers permessage-deflate and compresses each message against the ones
	// before it: the server takes the offer up and must follow.
	var got struct {
		Extensions string
		Echoed     int
		Same       bool
		Error      string
	}
	require.NoError(t, page.Eval(ctx, compressedEcho, &got))
	assert.Empty(t, got.Error)
	assert.Contains(t, got.Extensions, "permessage-deflate")
	assert.Equal(t, 40, got.Echoed)
	assert.True(t, got.Same, "an echo differs from what the page sent")
	requireClosedBy(ctx, t, ended, "compressed")
}

// TestBrowserH2 serves the page over HTTPS and HTTP/2 with the example's throwaway
// certificate and extended CONNECT on, and checks on the server's side that Chromium
// opened its WebSockets as streams of the page's HTTP/2 connection (RFC 8441). Chromium
// does so when the page's origin speaks HTTP/2 and the server announces
// SETTINGS_ENABLE_CONNECT_PROTOCOL, which net/http does with GODEBUG=http2xconnect=1:
// the test runs in a child process with it (internal/xconnect).
func TestBrowserH2(t *testing.T) {
	if xconnect.InChild(t) {
		return
	}
	srv, ended := newTestServer(t)
	cfg, err := selfSigned()
	require.NoError(t, err)
	srv.TLS = cfg
	srv.EnableHTTP2 = true
	srv.StartTLS()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	browser := chromium.Start(ctx, t, "--ignore-certificate-errors")
	page, err := browser.Open(ctx, srv.URL+"/")
	require.NoError(t, err)
	var proto string
	require.NoError(t, page.Eval(ctx, `performance.getEntriesByType("navigation")[0].nextHopProtocol`, &proto))
	assert.Equal(t, "h2", proto, "the page came over HTTP/2")

	lines, err := page.WaitForLines(ctx, "log", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"open"}, lines)
	require.NoError(t, page.Type(ctx, "msg", "hello", "send"))
	lines, err = page.WaitForLines(ctx, "log", 3)
	require.NoError(t, err)
	require.Equal(t, []string{"open", "sent: hello", "received: hello"}, lines)
	require.NoError(t, page.Click(ctx, "close"))
	lines, err = page.WaitForLines(ctx, "log", 4)
	require.NoError(t, err)
	assert.Equal(t, "closed: 1000", lines[3])
	requireClosedOver(ctx, t, ended, "bye", 2)

	var got struct {
		Length int
		Same   bool
		Code   int
		Error  string
	}
	require.NoError(t, page.Eval(ctx, bigEcho, &got))
	assert.Empty(t, got.Error)
	assert.Equal(t, 1<<20, got.Length)
	assert.True(t, got.Same, "the echo of 1 MiB differs from what the page sent")
	assert.Equal(t, 1000, got.Code)
	requireClosedOver(ctx, t, ended, "big", 2)
}

// bigEcho opens a connection from the page, sends a binary message of 1 MiB (the
// server's read limit), checks its echo and closes with 1000.
const bigEcho = `new Promise((resolve) => {
  const big = new Uint8Array(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
  const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws");
  ws.binaryType = "arraybuffer";
  let length = 0, same = false;
  ws.onopen = () => ws.send(big);
  ws.onmessage = (e) => {
    const got = new Uint8Array(e.data);
    length = got.length;
    same = length === big.length && got.every((b, i) => b === big[i]);
    ws.close(1000, "big");
  };
  ws.onclose = (e) => resolve({Length: length, Same: same, Code: e.code});
  ws.onerror = () => resolve({Error: "error event", Length: length});
})`

// buttonStates says which of the page's buttons are enabled.
type buttonStates struct{ Send, Close, Connect bool }

var (
	openButtons   = buttonStates{Send: true, Close: true}
	closedButtons = buttonStates{Connect: true}
)

// buttons returns which of the page's buttons are enabled.
func buttons(ctx context.Context, t *testing.T, page *chromium.Page) buttonStates {
	t.Helper()
	var got buttonStates
	const enabled = `((id) => !document.getElementById(id).disabled)`
	require.NoError(t, page.Eval(ctx, `({Send: `+enabled+`("send"), Close: `+enabled+`("close"), Connect: `+enabled+`("connect")})`, &got))
	return got
}

// compressedEcho opens a second connection from the page, sends 40 similar text
// messages of 100 bytes to 40 KiB, checks every echo and closes.
const compressedEcho = `new Promise((resolve) => {
  const msgs = [];
  for (let i = 0; i < 40; i++) {
    const line = "message " + (i % 7) + ": the quick brown fox jumps over the lazy dog, ünïcödé; ";
    msgs.push(line.repeat(1 + (i * 131) % 512).slice(0, 100 + i * 1000));
  }
  const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws");
  let echoed = 0, same = true;
  ws.onopen = () => msgs.forEach((m) => ws.send(m));
  ws.onmessage = (e) => {
    same = same && e.data === msgs[echoed];
    echoed++;
    if (echoed === msgs.length) ws.close(1000, "compressed");
  };
  ws.onclose = () => resolve({Extensions: ws.extensions, Echoed: echoed, Same: same});
  ws.onerror = () => resolve({Error: "error event", Echoed: echoed});
})`
