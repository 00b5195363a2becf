package chat

import (
	"context"
	"encoding/json"
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
	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// testConfig keeps a short history and queue (8 KiB), and pings too seldom to matter.
var testConfig = Config{History: 3, Queue: 8 << 10, PingEvery: time.Hour, PongWithin: time.Hour}

// serve runs a hub with cfg behind a test server bound to 127.0.0.1. When the test
// ends, the hub is shut down, which waits for every connection to be done.
func serve(t *testing.T, cfg Config) (*Hub, *httptest.Server) {
	h, srv := newServer(t, cfg)
	srv.Start()
	return h, srv
}

// newServer is serve with the server not started, so that a test can put a handler in
// front of the hub's or wrap the listener.
func newServer(t *testing.T, cfg Config) (*Hub, *httptest.Server) {
	h := NewHub(cfg, NewMemory(cfg))
	srv := httptest.NewUnstartedServer(h.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
		srv.Close()
	})
	return h, srv
}

func wsURL(srv *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?" + query
}

// peer is a chat client. A goroutine reads its events, as the page does, so that it
// answers the server's pings.
type peer struct {
	conn   *websocket.Conn
	events chan Event
	done   chan struct{} // closed when the reader has ended, with err
	err    error
}

// join connects to the chat with the given query and returns the peer once it has its
// welcome.
func join(ctx context.Context, t *testing.T, srv *httptest.Server, query string) (*peer, Event) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, wsURL(srv, query), nil)
	require.NoError(t, err)
	p := &peer{conn: c, events: make(chan Event, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				p.err = err
				return
			}
			var ev Event
			if err := json.Unmarshal(b, &ev); typ != websocket.MessageText || err != nil {
				p.err = fmt.Errorf("not a JSON text message: %v %q", typ, b)
				c.CloseNow()
				return
			}
			p.events <- ev
		}
	}()
	t.Cleanup(func() {
		c.CloseNow()
		<-p.done
	})
	welcome := p.next(ctx, t)
	require.Equal(t, "welcome", welcome.Type)
	require.NotEmpty(t, welcome.Epoch)
	return p, welcome
}

// next returns the peer's next event.
func (p *peer) next(ctx context.Context, t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-p.events:
		return ev
	case <-ctx.Done():
		t.Fatalf("no event: %v", ctx.Err())
	}
	return Event{}
}

// nextN returns the peer's next n events.
func (p *peer) nextN(ctx context.Context, t *testing.T, n int) []Event {
	t.Helper()
	var evs []Event
	for range n {
		evs = append(evs, p.next(ctx, t))
	}
	return evs
}

// ended waits for the peer's connection to end and returns the error that ended it.
func (p *peer) ended(ctx context.Context, t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		t.Fatalf("the connection did not end: %v", ctx.Err())
		return nil
	}
}

func (p *peer) send(ctx context.Context, t *testing.T, text string) {
	t.Helper()
	require.NoError(t, p.conn.Write(ctx, websocket.MessageText, []byte(text)))
}

// pair puts Ann and then Bob in room go, and returns them once Ann has seen Bob join,
// with the room's epoch.
func pair(ctx context.Context, t *testing.T, srv *httptest.Server) (ann, bob *peer, epoch string) {
	t.Helper()
	ann, welcome := join(ctx, t, srv, "room=go&name=ann")
	bob, _ = join(ctx, t, srv, "room=go&name=bob")
	require.Equal(t, Event{Type: "join", Name: "bob"}, ann.next(ctx, t))
	return ann, bob, welcome.Epoch
}

func message(id int64, name, text string) Event {
	return Event{Type: "message", ID: id, Name: name, Text: text}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBroadcast(t *testing.T) {
	ctx := testContext(t)
	_, srv := serve(t, testConfig)

	ann, welcome := join(ctx, t, srv, "room=go&name=ann")
	assert.Equal(t, []string{"ann"}, welcome.Members)
	bob, welcome := join(ctx, t, srv, "room=go&name=bob")
	assert.ElementsMatch(t, []string{"ann", "bob"}, welcome.Members)
	assert.Equal(t, Event{Type: "join", Name: "bob"}, ann.next(ctx, t))
	cat, welcome := join(ctx, t, srv, "room=rust&name=cat")
	assert.Equal(t, []string{"cat"}, welcome.Members)

	ann.send(ctx, t, "hello")
	assert.Equal(t, message(1, "ann", "hello"), ann.next(ctx, t))
	assert.Equal(t, message(1, "ann", "hello"), bob.next(ctx, t))
	bob.send(ctx, t, "hi, ann ✓")
	assert.Equal(t, message(2, "bob", "hi, ann ✓"), ann.next(ctx, t))
	assert.Equal(t, message(2, "bob", "hi, ann ✓"), bob.next(ctx, t))

	// Another room numbers its own messages, and sees none of the first room's: cat's
	// first event after its welcome is its own message.
	cat.send(ctx, t, "meow")
	assert.Equal(t, message(1, "cat", "meow"), cat.next(ctx, t))

	require.NoError(t, bob.conn.Close(websocket.StatusNormalClosure, "bye"))
	assert.Equal(t, Event{Type: "leave", Name: "bob"}, ann.next(ctx, t))
}

// TestHistory checks what a client gets after its welcome: a newcomer gets the history,
// and a client that comes back with the epoch and the last ID it saw gets the messages
// after that one, or learns that some were lost.
func TestHistory(t *testing.T) {
	tests := []struct {
		name  string
		query string // added to room=go&name=bob; EPOCH is replaced with the room's
		want  []Event
	}{
		{"newcomer", "", []Event{message(3, "ann", "m3"), message(4, "ann", "m4"), message(5, "ann", "m5")}},
		{"back after 4", "epoch=EPOCH&after=4", []Event{message(5, "ann", "m5")}},
		{"back after 2: nothing lost", "epoch=EPOCH&after=2", []Event{message(3, "ann", "m3"), message(4, "ann", "m4"), message(5, "ann", "m5")}},
		{"back after 1: m2 is lost", "epoch=EPOCH&after=1", []Event{{Type: "gap"}, message(3, "ann", "m3"), message(4, "ann", "m4"), message(5, "ann", "m5")}},
		{"back after the last", "epoch=EPOCH&after=5", nil},
		{"back from another life of the room", "epoch=old&after=9", []Event{{Type: "gap"}, message(3, "ann", "m3"), message(4, "ann", "m4"), message(5, "ann", "m5")}},
		{"back from another life, having seen nothing", "epoch=old&after=0", []Event{message(3, "ann", "m3"), message(4, "ann", "m4"), message(5, "ann", "m5")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			_, srv := serve(t, testConfig) // history of 3
			ann, welcome := join(ctx, t, srv, "room=go&name=ann")
			for i := 1; i <= 5; i++ {
				ann.send(ctx, t, fmt.Sprintf("m%d", i))
				require.Equal(t, message(int64(i), "ann", fmt.Sprintf("m%d", i)), ann.next(ctx, t))
			}

			query := "room=go&name=bob&" + strings.ReplaceAll(tt.query, "EPOCH", welcome.Epoch)
			bob, _ := join(ctx, t, srv, query)
			// A live message after the replay marks its end.
			ann.send(ctx, t, "live")
			want := append(tt.want, message(6, "ann", "live"))
			assert.Equal(t, want, bob.nextN(ctx, t, len(want)))
		})
	}
}

// TestReconnect has a client leave and come back: it gets what was said meanwhile, once.
func TestReconnect(t *testing.T) {
	ctx := testContext(t)
	_, srv := serve(t, Config{History: 100, Queue: 8 << 10, PingEvery: time.Hour, PongWithin: time.Hour})

	ann, bob, epoch := pair(ctx, t, srv)
	ann.send(ctx, t, "one")
	require.Equal(t, message(1, "ann", "one"), bob.next(ctx, t))
	bob.conn.CloseNow() // as a network that fails does
	require.Equal(t, message(1, "ann", "one"), ann.next(ctx, t))
	require.Equal(t, Event{Type: "leave", Name: "bob"}, ann.next(ctx, t))

	ann.send(ctx, t, "two")
	ann.send(ctx, t, "three")
	require.Equal(t, []Event{message(2, "ann", "two"), message(3, "ann", "three")}, ann.nextN(ctx, t, 2))
	bob, _ = join(ctx, t, srv, "room=go&name=bob&after=1&epoch="+epoch)
	bob.send(ctx, t, "back")
	assert.Equal(t, []Event{message(2, "ann", "two"), message(3, "ann", "three"), message(4, "bob", "back")}, bob.nextN(ctx, t, 3))
	assert.Equal(t, []Event{{Type: "join", Name: "bob"}, message(4, "bob", "back")}, ann.nextN(ctx, t, 2))
}

// TestSlowClientIsDropped has a client that never reads: once the server cannot send it
// more, the client is dropped, and the room goes on without losing a message for the
// others.
func TestSlowClientIsDropped(t *testing.T) {
	ctx := testContext(t)
	_, srv := serve(t, Config{History: 0, Queue: 4 << 10, PingEvery: time.Hour, PongWithin: time.Hour})

	ann, bob, _ := pair(ctx, t, srv)
	// The slow client's receive buffer is small, so that what the kernel holds for it
	// does not depend on the machine's settings: the server's send buffer, up to 4 MB by
	// default, is the rest.
	var slowTCP *net.TCPConn
	smallBuffer := &websocket.DialOptions{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		slowTCP = c.(*net.TCPConn)
		return c, slowTCP.SetReadBuffer(4096)
	}}
	slow, _, err := websocket.Dial(ctx, wsURL(srv, "room=go&name=slow"), smallBuffer)
	require.NoError(t, err)
	defer slow.CloseNow()
	require.Equal(t, Event{Type: "join", Name: "slow"}, ann.next(ctx, t))
	require.Equal(t, Event{Type: "join", Name: "slow"}, bob.next(ctx, t))

	// Ann sends until the server gives up on the slow client, and waits for each message
	// to reach her and Bob before the next: they keep up. 20 MB is far past what the
	// kernel buffers.
	line := strings.Repeat("x", MaxText)
	left := map[*peer]bool{}
	for id := int64(1); len(left) == 0; id++ {
		require.Less(t, id, int64(20_000), "the slow client was never dropped")
		ann.send(ctx, t, line)
		for _, p := range []*peer{ann, bob} {
			ev := p.next(ctx, t)
			if ev.Type == "leave" {
				require.Equal(t, "slow", ev.Name)
				left[p] = true
				ev = p.next(ctx, t)
			}
			require.Equal(t, message(id, "ann", line), ev)
		}
	}
	// Every member's events come in the room's one order: both saw the slow client
	// leave before the same message.
	assert.Len(t, left, 2)

	// The slow client, reading at last, finds its connection closed after what was sent
	// before: with 1008 if the close frame got through, without a close frame if the
	// server had to give up in the middle of a frame. A larger buffer lets the backlog
	// drain fast.
	require.NoError(t, slowTCP.SetReadBuffer(1<<20))
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			require.NoError(t, ctx.Err())
			assert.Contains(t, []websocket.StatusCode{websocket.StatusPolicyViolation, -1}, websocket.CloseStatus(err), "%v", err)
			break
		}
	}
}

// TestKeepAlive has a client that never reads, so it never answers a ping: the server
// disconnects it, and keeps the client that answers.
func TestKeepAlive(t *testing.T) {
	ctx := testContext(t)
	_, srv := serve(t, Config{History: 3, Queue: 8 << 10, PingEvery: 10 * time.Millisecond, PongWithin: time.Second})

	ann, _ := join(ctx, t, srv, "room=go&name=ann")
	mute, _, err := websocket.Dial(ctx, wsURL(srv, "room=go&name=mute"), nil)
	require.NoError(t, err)
	defer mute.CloseNow()
	require.Equal(t, Event{Type: "join", Name: "mute"}, ann.next(ctx, t))
	require.Equal(t, Event{Type: "leave", Name: "mute"}, ann.next(ctx, t))

	// Ann has answered every ping meanwhile, and is still there.
	ann.send(ctx, t, "still here")
	assert.Equal(t, message(1, "ann", "still here"), ann.next(ctx, t))

	// The mute client's connection was dropped without a close frame: its peer was not
	// answering.
	for {
		_, _, err := mute.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusCode(-1), websocket.CloseStatus(err), "%v", err)
			break
		}
	}
}

// TestTooManyLines has a client send more lines at once than the limit allows: the
// lines within the limit reach the room, and the client is disconnected with 1008.
func TestTooManyLines(t *testing.T) {
	ctx := testContext(t)
	// Three lines at once, and next to nothing after that.
	_, srv := serve(t, Config{History: 3, Queue: 8 << 10, PingEvery: time.Hour, PongWithin: time.Hour, Rate: 1e-9, Burst: 3})
	ann, bob, _ := pair(ctx, t, srv)
	for i := 1; i <= 4; i++ {
		bob.send(ctx, t, fmt.Sprintf("line %d", i))
	}
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(bob.ended(ctx, t)))
	assert.Equal(t, []Event{message(1, "bob", "line 1"), message(2, "bob", "line 2"), message(3, "bob", "line 3"), {Type: "leave", Name: "bob"}},
		ann.nextN(ctx, t, 4))
}

// TestBadMessages checks how the server ends a connection that sends what the chat does
// not take.
func TestBadMessages(t *testing.T) {
	tests := []struct {
		name string
		typ  websocket.MessageType
		p    []byte
		want websocket.StatusCode
	}{
		{"binary", websocket.MessageBinary, []byte("hello"), websocket.StatusUnsupportedData},
		{"too long", websocket.MessageText, []byte(strings.Repeat("x", MaxText+1)), websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			_, srv := serve(t, testConfig)
			ann, bob, _ := pair(ctx, t, srv)

			require.NoError(t, bob.conn.Write(ctx, tt.typ, tt.p))
			assert.Equal(t, tt.want, websocket.CloseStatus(bob.ended(ctx, t)))
			assert.Equal(t, Event{Type: "leave", Name: "bob"}, ann.next(ctx, t))
		})
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name  string
		query string
	}{
		{"no name", "room=go"},
		{"empty name", "room=go&name="},
		{"blank name", "room=go&name=%20%20"},
		{"name too long", "room=go&name=" + strings.Repeat("a", maxName+1)},
		{"name with a control character", "room=go&name=a%0Ab"},
		{"name not UTF-8", "room=go&name=%FF"},
		{"room too long", "room=" + strings.Repeat("r", maxName+1) + "&name=ann"},
		{"after not a number", "room=go&name=ann&epoch=e&after=x"},
		{"after negative", "room=go&name=ann&epoch=e&after=-1"},
	}
	_, srv := serve(t, testConfig)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := websocket.Dial(testContext(t), wsURL(srv, tt.query), nil)
			require.Error(t, err)
			assert.Nil(t, c)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		})
	}
}

// TestShutdown checks that shutting down closes every connection with 1001, waits for
// them, and refuses new ones.
func TestShutdown(t *testing.T) {
	ctx := testContext(t)
	h, srv := serve(t, testConfig)
	ann, _ := join(ctx, t, srv, "room=go&name=ann")
	cat, _ := join(ctx, t, srv, "room=rust&name=cat")

	require.NoError(t, h.Shutdown(ctx))
	for _, p := range []*peer{ann, cat} {
		assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(p.ended(ctx, t)))
	}
	b := h.broker.(*memory)
	b.mu.Lock()
	assert.Empty(t, b.rooms)
	b.mu.Unlock()

	_, resp, err := websocket.Dial(ctx, wsURL(srv, "room=go&name=ann"), nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestPage(t *testing.T) {
	_, srv := serve(t, testConfig)
	resp, err := srv.Client().Get(srv.URL + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	for _, id := range []string{"name", "room", "join", "status", "members", "log", "text", "send", "leave"} {
		assert.Contains(t, string(body), fmt.Sprintf(`id=%q`, id))
	}
}
