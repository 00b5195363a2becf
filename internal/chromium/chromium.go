// Package chromium drives headless Chromium from tests through the Chrome DevTools
// Protocol, over this module's own WebSocket client. It is for this module's tests only.
package chromium

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hybi/websocket"
)

// Start starts headless Chromium with a fresh profile and connects to its DevTools
// server. Without Chromium installed it skips the test, or fails it when CI=true. When
// the test ends, the DevTools connection is closed and the browser killed and waited for.
// Flags, such as "--ignore-certificate-errors", are added to the command line.
func Start(ctx context.Context, t testing.TB, flags ...string) *Browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		const msg = "chromium not found: install the Debian package chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
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
	cmd.Args = append(cmd.Args, flags...)
	stderr := &stderr{devtools: make(chan string, 1)}
	cmd.Stderr = stderr
	// Chromium's helper processes share its stderr and exit soon after it. Wait waits
	// for them, so that the profile directory can be removed, but only for so long.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

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
	if err != nil {
		t.Fatalf("connecting to chromium's DevTools: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Errorf("closing the DevTools connection: %v", err)
		}
	})
	return &Browser{conn: conn}
}

// stderr keeps what Chromium writes to stderr, and sends the address of its DevTools
// server on devtools once it prints it.
type stderr struct {
	devtools chan string

	mu    sync.Mutex
	buf   bytes.Buffer
	found bool
}

func (s *stderr) Write(p []byte) (int, error) {
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

func (s *stderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Browser is a minimal client of the Chrome DevTools Protocol. It sends one command at
// a time and reads until that command's response, dropping the events that arrive
// meanwhile; it is not safe for concurrent use, and neither are its pages.
type Browser struct {
	conn   *websocket.Conn
	lastID int
}

// Error is the error member of a DevTools response.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("devtools error %d: %s", e.Code, e.Message) }

// call runs method with params in the browser or, when session is not empty, in the
// target attached as session, and decodes the result into result unless it is nil.
func (b *Browser) call(ctx context.Context, session, method string, params, result any) error {
	b.lastID++
	id := b.lastID
	req, err := json.Marshal(struct {
		ID        int    `json:"id"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
		SessionID string `json:"sessionId,omitempty"`
	}{id, method, params, session})
	if err != nil {
		return err
	}
	if err := b.conn.Write(ctx, websocket.MessageText, req); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	for {
		typ, p, err := b.conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if typ != websocket.MessageText {
			return fmt.Errorf("%s: got a %v message, want text", method, typ)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *Error          `json:"error"`
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

// Page is a browser tab attached to a DevTools session.
type Page struct {
	browser *Browser
	session string
}

// Open opens url in a new tab.
func (b *Browser) Open(ctx context.Context, url string) (*Page, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	if err != nil {
		return nil, err
	}
	p := &Page{browser: b, session: attached.SessionID}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.Call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return nil, err
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("Page.navigate %s: %s", url, nav.ErrorText)
	}
	return p, nil
}

// Call runs the DevTools method with params in the page, and decodes its result into
// result unless it is nil.
func (p *Page) Call(ctx context.Context, method string, params, result any) error {
	return p.browser.call(ctx, p.session, method, params, result)
}

// Eval evaluates a JavaScript expression in the page, waits for the promise it returns
// if it returns one, and decodes its value into result unless result is nil.
func (p *Page) Eval(ctx context.Context, expression string, result any) error {
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
	if err := p.Call(ctx, "Runtime.evaluate", params, &resp); err != nil {
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

// Type puts the text into the element with the given id and clicks the button with
// the id button, as a person typing and pressing it would.
func (p *Page) Type(ctx context.Context, id, text, button string) error {
	if err := p.Eval(ctx, fmt.Sprintf("document.getElementById(%q).focus()", id), nil); err != nil {
		return err
	}
	if err := p.Call(ctx, "Input.insertText", map[string]any{"text": text}, nil); err != nil {
		return err
	}
	return p.Click(ctx, button)
}

// Click clicks the element with the given id.
func (p *Page) Click(ctx context.Context, id string) error {
	return p.Eval(ctx, fmt.Sprintf("document.getElementById(%q).click()", id), nil)
}

// WaitUntil waits until the JavaScript expression cond is true in the page. The page
// does the waiting: it checks cond again whenever the document changes.
func (p *Page) WaitUntil(ctx context.Context, cond string) error {
	const expression = `new Promise((resolve) => {
		const check = () => {
			if (%s) {
				observer.disconnect();
				resolve(true);
			}
		};
		const observer = new MutationObserver(check);
		observer.observe(document, {childList: true, characterData: true, attributes: true, subtree: true});
		check();
	})`
	return p.Eval(ctx, fmt.Sprintf(expression, cond), nil)
}

// WaitForLines waits until the text of the element with the given id has at least n
// non-empty lines, and returns them.
func (p *Page) WaitForLines(ctx context.Context, id string, n int) ([]string, error) {
	lines := fmt.Sprintf(`((el) => el ? el.innerText.split("\n").filter((line) => line !== "") : [])(document.getElementById(%q))`, id)
	if err := p.WaitUntil(ctx, fmt.Sprintf("%s.length >= %d", lines, n)); err != nil {
		return nil, err
	}
	var got []string
	err := p.Eval(ctx, lines, &got)
	return got, err
}
