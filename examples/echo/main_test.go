package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// serve runs the example's handler on a test server bound to 127.0.0.1.
// The returned channel receives the error that ended the echo connection.
func serve(t *testing.T) (*httptest.Server, <-chan error) {
	ended := make(chan error, 1)
	srv := httptest.NewServer(newHandler(func(err error) {
		select {
		case ended <- err:
		default:
			t.Errorf("a second echo connection ended: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, ended
}

// requireClosedBy checks that the server's echo loop ended because the peer
// closed with status 1000 and the given reason.
func requireClosedBy(ctx context.Context, t *testing.T, ended <-chan error, reason string) {
	t.Helper()
	select {
	case err := <-ended:
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
	for _, id := range []string{"msg", "send", "close", "log"} {
		assert.Contains(t, string(body), fmt.Sprintf(`id=%q`, id))
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
	bin, err := exec.LookPath("chromium")
	if err != nil {
		const msg = "chromium not found: install the Debian package chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	srv, ended := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	browser := startChromium(ctx, t, bin)
	page, err := browser.open(ctx, srv.URL+"/")
	require.NoError(t, err)

	lines, err := page.waitForLog(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"open"}, lines)

	require.NoError(t, page.eval(ctx, `document.getElementById("msg").focus()`, nil))
	require.NoError(t, page.call(ctx, "Input.insertText", map[string]any{"text": "hello"}, nil))
	require.NoError(t, page.eval(ctx, `document.getElementById("send").click()`, nil))
	lines, err = page.waitForLog(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"open", "sent: hello", "received: hello"}, lines)

	require.NoError(t, page.eval(ctx, `document.getElementById("close").click()`, nil))
	lines, err = page.waitForLog(ctx, 4)
	require.NoError(t, err)
	// The reason the page shows is the one in the server's reply, which
	// echoes the code only.
	assert.Equal(t, []string{"open", "sent: hello", "received: hello", "closed: 1000"}, lines)

	requireClosedBy(ctx, t, ended, "bye")

	// Chromium offers permessage-deflate and compresses each message against the ones
	// before it: the server takes the offer up and must follow.
	var got struct {
		Extensions string
		Echoed     int
		Same       bool
		Error      string
	}
	require.NoError(t, page.eval(ctx, compressedEcho, &got))
	assert.Empty(t, got.Error)
	assert.Contains(t, got.Extensions, "permessage-deflate")
	assert.Equal(t, 40, got.Echoed)
	assert.True(t, got.Same, "an echo differs from what the page sent")
	requireClosedBy(ctx, t, ended, "compressed")
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

// startChromium starts headless Chromium and connects to its DevTools server.
// When the test ends, the connection is closed and the browser killed and
// waited for.
func startChromium(ctx context.Context, t *testing.T, bin string) *cdp {
	t.Helper()
	cmd := exec.Command(bin,
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--no-first-run",
		"--disable-quic",
		"--remote-debugging-port=0",
		"--user-data-dir="+t.TempDir(),
	)
	stderr := &chromiumStderr{devtools: make(chan string, 1)}
	cmd.Stderr = stderr
	// Chromium's helper processes share its stderr and exit soon after it.
	// Wait waits for them, so that the profile directory can be removed, but
	// only for so long.
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Start())

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("chromium's stderr:\n%s", stderr)
		}
	})

	var url string
	select {
	case url = <-stderr.devtools:
	case <-exited:
		t.Fatalf("chromium exited before it listened for DevTools: %v", waitErr)
	case <-ctx.Done():
		t.Fatalf("chromium did not listen for DevTools: %v", ctx.Err())
	}

	conn, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
	})
	return &cdp{conn: conn}
}

// chromiumStderr keeps what Chromium writes to stderr, and sends the address
// of its DevTools server on devtools once it prints it.
type chromiumStderr struct {
	devtools chan string

	mu    sync.Mutex
	buf   bytes.Buffer
	found bool
}

func (s *chromiumStderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.found {
		_, rest, ok := bytes.Cut(s.buf.Bytes(), []byte("DevTools listening on "))
		if url, _, ok2 := bytes.Cut(rest, []byte("\n")); ok && ok2 {
			s.found = true
			s.devtools <- string(bytes.TrimSpace(url))
		}
	}
	return len(p), nil
}

func (s *chromiumStderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// cdp is a minimal client of the Chrome DevTools Protocol: it sends one
// command at a time and reads until that command's response, dropping the
// events that arrive meanwhile.
type cdp struct {
	conn   *websocket.Conn
	lastID int
}

// cdpError is the error member of a DevTools response.
type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *cdpError) Error() string { return fmt.Sprintf("devtools error %d: %s", e.Code, e.Message) }

// call runs method with params in the browser or, when session is not empty,
// in the target attached as session, and decodes the result into result
// unless it is nil.
func (c *cdp) call(ctx context.Context, session, method string, params, result any) error {
	c.lastID++
	id := c.lastID
	req, err := json.Marshal(struct {
		ID        int    `json:"id"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
		SessionID string `json:"sessionId,omitempty"`
	}{id, method, params, session})
	if err != nil {
		return err
	}
	if err := c.conn.Write(ctx, websocket.MessageText, req); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	for {
		typ, p, err := c.conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if typ != websocket.MessageText {
			return fmt.Errorf("%s: got a %v message, want text", method, typ)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *cdpError       `json:"error"`
		}
		if err := json.Unmarshal(p, &resp); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if resp.ID != id {
			continue // an event, which has no id
		}
		if resp.Error != nil {
			return fmt.Errorf("%s: %w", method, resp.Error)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(resp.Result, result)
	}
}

// page is a browser tab attached to a DevTools session.
type page struct {
	browser *cdp
	session string
}

// call runs method with params in the page.
func (p *page) call(ctx context.Context, method string, params, result any) error {
	return p.browser.call(ctx, p.session, method, params, result)
}

// open opens url in a new tab.
func (c *cdp) open(ctx context.Context, url string) (*page, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	if err != nil {
		return nil, err
	}
	p := &page{browser: c, session: attached.SessionID}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return nil, err
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("Page.navigate %s: %s", url, nav.ErrorText)
	}
	return p, nil
}

// eval evaluates a JavaScript expression in the page, waits for the promise
// it returns if it returns one, and decodes its value into result unless
// result is nil.
func (p *page) eval(ctx context.Context, expression string, result any) error {
	var resp struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	params := map[string]any{"expression": expression, "awaitPromise": true, "returnByValue": true}
	if err := p.call(ctx, "Runtime.evaluate", params, &resp); err != nil {
		return err
	}
	if e := resp.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expression, e.Text, e.Exception.Description)
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(resp.Result.Value, result)
}

// waitForLog waits until the page's log has at least n lines and returns them.
// The page does the waiting: it resolves a promise when the log changes.
func (p *page) waitForLog(ctx context.Context, n int) ([]string, error) {
	const expression = `new Promise((resolve) => {
		const lines = () => {
			const log = document.getElementById("log");
			return log ? log.textContent.split("\n").filter((line) => line !== "") : [];
		};
		const check = () => {
			if (lines().length >= %d) {
				observer.disconnect();
				resolve(lines());
			}
		};
		const observer = new MutationObserver(check);
		observer.observe(document, {childList: true, characterData: true, subtree: true});
		check();
	})`
	var lines []string
	err := p.eval(ctx, fmt.Sprintf(expression, n), &lines)
	return lines, err
}
