package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// fakeServer serves the i-th connection to /ws with steps[i], and refuses any more.
func fakeServer(t *testing.T, steps ...http.HandlerFunc) (srv *httptest.Server, conns *atomic.Int32) {
	conns = new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(conns.Add(1)) - 1
		if i >= len(steps) {
			http.Error(w, "no more steps", http.StatusServiceUnavailable)
			return
		}
		steps[i](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, conns
}

// accept upgrades the request, and checks its query: the room, the name, and the epoch
// and last ID that a reconnection sends.
func accept(t *testing.T, w http.ResponseWriter, r *http.Request, epoch, after string) *websocket.Conn {
	q := r.URL.Query()
	assert.Equal(t, url.Values{"room": {"go"}, "name": {"ann"}}, url.Values{"room": q["room"], "name": q["name"]})
	assert.Equal(t, epoch, q.Get("epoch"))
	assert.Equal(t, after, q.Get("after"))
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		t.Errorf("accept: %v", err)
		panic(http.ErrAbortHandler) // ends the handler quietly
	}
	return c
}

func send(t *testing.T, c *websocket.Conn, evs ...event) {
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		assert.NoError(t, err)
		assert.NoError(t, c.Write(context.Background(), websocket.MessageText, b))
	}
}

func message(id int64, name, text string) event {
	return event{Type: "message", ID: id, Name: name, Text: text}
}

// lineWriter passes each line written to it on lines.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line != "" {
			w.lines <- strings.TrimSuffix(line, "\n")
		}
	}
	return len(p), nil
}

// expect checks the next lines the session prints. A want ending in "…" matches a line
// that starts with the rest.
func expect(ctx context.Context, t *testing.T, lines <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-lines:
			if prefix, ok := strings.CutSuffix(w, "…"); ok {
				assert.True(t, strings.HasPrefix(got, prefix), "got %q, want %q", got, w)
			} else {
				assert.Equal(t, w, got)
			}
		case <-ctx.Done():
			t.Fatalf("no line %q: %v", w, ctx.Err())
		}
	}
}

// startSession runs a session as ann in room go against srv, with no wait between
// attempts. It returns what the session prints, a line at a time, and its result once
// it returns.
func startSession(t *testing.T, srv *httptest.Server, input <-chan string) (<-chan string, <-chan error) {
	out := make(chan string, 100)
	s := &session{
		url:     "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		room:    "go",
		name:    "ann",
		out:     lineWriter{out},
		backoff: func(int) time.Duration { return 0 },
	}
	result := make(chan error, 1)
	go func() { result <- s.run(context.Background(), input) }()
	return out, result
}

// TestReconnect has the server drop the session twice: it comes back each time with
// the room's epoch and the last message it printed, prints nothing twice, and starts
// over when the room has started a new life.
func TestReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	srv, conns := fakeServer(t,
		func(w http.ResponseWriter, r *http.Request) {
			c := accept(t, w, r, "", "")
			send(t, c, event{Type: "welcome", Epoch: "E", Members: []string{"bob", "ann"}},
				message(1, "bob", "one"), message(2, "bob", "two"))
			c.CloseNow() // as a network that fails does
		},
		func(w http.ResponseWriter, r *http.Request) {
			c := accept(t, w, r, "E", "2")
			defer c.CloseNow()
			send(t, c, event{Type: "welcome", Epoch: "E", Members: []string{"bob", "ann"}},
				message(2, "bob", "two"), message(3, "bob", "three"))
			_, p, err := c.Read(ctx)
			assert.NoError(t, err)
			assert.Equal(t, "typed", string(p))
			send(t, c, message(4, "ann", "typed"))
			c.Close(websocket.StatusGoingAway, "restarting")
		},
		func(w http.ResponseWriter, r *http.Request) {
			c := accept(t, w, r, "E", "4")
			defer c.CloseNow()
			send(t, c, event{Type: "welcome", Epoch: "F", Members: []string{"ann"}}, event{Type: "gap"},
				message(1, "bob", "a new life"))
			_, _, err := c.Read(ctx)
			closed <- err
		},
	)
	input := make(chan string)
	out, result := startSession(t, srv, input)

	expect(ctx, t, out, "* in go with bob, ann", "bob: one", "bob: two", "* disconnected (…")
	expect(ctx, t, out, "* in go with bob, ann", "bob: three")
	input <- "typed"
	input <- "   " // blank: not sent
	expect(ctx, t, out, "ann: typed", "* disconnected (…")
	expect(ctx, t, out, "* in go with ann", "* some messages were missed", "bob: a new life")

	close(input)
	select {
	case err := <-closed:
		assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "%v", err)
	case <-ctx.Done():
		t.Fatal("the session did not close")
	}
	select {
	case err := <-result:
		assert.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("the session did not end")
	}
	assert.Equal(t, int32(3), conns.Load())
}

// TestRefused checks that a session the server refuses with 400 ends with the reason,
// without trying again.
func TestRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv, conns := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "name is blank", http.StatusBadRequest)
	})
	_, result := startSession(t, srv, make(chan string))
	select {
	case err := <-result:
		assert.ErrorIs(t, err, errRefused)
	case <-ctx.Done():
		t.Fatal("the session did not end")
	}
	assert.Equal(t, int32(1), conns.Load())
}

func TestBackoff(t *testing.T) {
	for attempt, ceiling := range []time.Duration{
		500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		10 * time.Second, 10 * time.Second, 10 * time.Second,
	} {
		for range 100 {
			d := backoff(attempt)
			assert.GreaterOrEqual(t, d, ceiling/2, "attempt %d", attempt)
			assert.Less(t, d, ceiling, "attempt %d", attempt)
		}
	}
}
