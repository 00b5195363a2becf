package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/examples/chat/internal/chat"
	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running. With nodeEnv set, the test
// binary is a chat node for TestLoad instead.
func TestMain(m *testing.M) {
	if addr := os.Getenv(nodeEnv); addr != "" {
		runNode(addr)
		return
	}
	leak.Main(m)
}

// testConfig has no rate limit and pings too seldom to matter.
var testConfig = chat.Config{History: 100, Queue: 1 << 20, PingEvery: time.Hour, PongWithin: time.Hour}

// redisServer is Debian's redis-server on a loopback port, keeping nothing on disk.
type redisServer struct {
	port string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended
}

// startRedis starts a redis-server on a free loopback port, stopped when the test ends.
// Without redis-server the test is skipped, except under CI=true.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is missing: apt-get install redis-server")
		}
		t.Skip("redis-server is missing: apt-get install redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	require.NoError(t, l.Close())
	s := &redisServer{port: port}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + s.port }

// start runs the server and returns once it answers.
func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", s.port, "--save", "", "--appendonly", "no")
	// A test binary killed on a timeout takes the server with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, s.cmd.Start())
	s.done = make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	rdb := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer rdb.Close()
	// Waiting for another process to be ready: there is nothing to wait on but asking.
	for deadline := time.Now().Add(10 * time.Second); rdb.Ping(context.Background()).Err() != nil; {
		require.True(t, time.Now().Before(deadline), "redis-server did not answer")
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server and waits for it to end.
func (s *redisServer) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// node is a chat process with its rooms in Redis, on a loopback port.
type node struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

// startNode starts a node on the Redis at addr, stopped when the test ends.
func startNode(t *testing.T, addr string) *node {
	t.Helper()
	return startNodeWith(t, addr, testConfig, timing{})
}

// startNodeWith starts a node like startNode, with cfg and tm.
func startNodeWith(t *testing.T, addr string, cfg chat.Config, tm timing) *node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{url: "ws://" + l.Addr().String() + "/ws?", cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- serve(ctx, l, &redis.Options{Addr: addr}, cfg, tm) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop shuts the node down, closing its connections with 1001, and waits for it. It may
// be called more than once.
func (n *node) stop(t *testing.T) {
	if n.done == nil {
		return
	}
	n.cancel()
	assert.NoError(t, <-n.done)
	n.done = nil
}

// peer is a chat client. A goroutine reads its events.
type peer struct {
	conn   *websocket.Conn
	events chan chat.Event
	done   chan struct{} // closed when the reader has ended, with err
	err    error
}

// join connects to n with the query and returns the peer once it has its welcome.
func join(ctx context.Context, t *testing.T, n *node, query string) (*peer, chat.Event) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, n.url+query, nil)
	require.NoError(t, err)
	p := &peer{conn: c, events: make(chan chat.Event, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				p.err = err
				return
			}
			var ev chat.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				p.err = err
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

func (p *peer) next(ctx context.Context, t *testing.T) chat.Event {
	t.Helper()
	select {
	case ev := <-p.events:
		return ev
	case <-ctx.Done():
		t.Fatalf("no event: %v", ctx.Err())
	}
	return chat.Event{}
}

// messages returns the peer's next n chat lines, skipping joins and leaves.
func (p *peer) messages(ctx context.Context, t *testing.T, n int) []chat.Event {
	t.Helper()
	var evs []chat.Event
	for len(evs) < n {
		if ev := p.next(ctx, t); ev.Type != "join" && ev.Type != "leave" {
			evs = append(evs, ev)
		}
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

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func resume(name, epoch string, after int64) string {
	return url.Values{"room": {"go"}, "name": {name}, "epoch": {epoch}, "after": {strconv.FormatInt(after, 10)}}.Encode()
}

// TestOrderAcrossNodes has members of two rooms on three nodes all send at once: every
// member gets every line of its room and none of the other's, in one order the same on
// every node, each sender's lines in the order sent.
func TestOrderAcrossNodes(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	nodes := []*node{startNode(t, r.addr()), startNode(t, r.addr()), startNode(t, r.addr())}

	rooms := map[string][]*peer{}
	names := map[*peer]string{}
	for i, who := range []struct{ room, name string }{{"go", "ann"}, {"rust", "dan"}, {"go", "bob"}, {"rust", "eve"}, {"go", "cat"}} {
		p, _ := join(ctx, t, nodes[i%3], "room="+who.room+"&name="+who.name)
		rooms[who.room] = append(rooms[who.room], p)
		names[p] = who.name
	}

	const lines = 50
	errs := make(chan error, len(names))
	for p, name := range names {
		go func() {
			for i := range lines {
				if err := p.conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "%s %d", name, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range names {
		require.NoError(t, <-errs)
	}

	for room, members := range rooms {
		var first []chat.Event
		for _, p := range members {
			got := p.messages(ctx, t, lines*len(members))
			if first == nil {
				first = got
			}
			assert.Equal(t, first, got, "%s in %s", names[p], room)
		}
		// Every line once, each sender's in order, and IDs increasing.
		sent := map[string]int{}
		for i, ev := range first {
			assert.Equal(t, fmt.Sprintf("%s %d", ev.Name, sent[ev.Name]), ev.Text)
			sent[ev.Name]++
			if i > 0 {
				assert.Greater(t, ev.ID, first[i-1].ID)
			}
		}
		for _, p := range members {
			assert.Equal(t, lines, sent[names[p]], "%s in %s", names[p], room)
		}
	}
}

// TestPresence checks who a newcomer is told is in the room, and who joins and leaves,
// with the members on different nodes.
func TestPresence(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	a, b, c := startNode(t, r.addr()), startNode(t, r.addr()), startNode(t, r.addr())

	ann, welcome := join(ctx, t, a, "room=go&name=ann")
	assert.Equal(t, []string{"ann"}, welcome.Members)
	bob, welcome := join(ctx, t, b, "room=go&name=bob")
	assert.ElementsMatch(t, []string{"ann", "bob"}, welcome.Members)
	assert.Equal(t, chat.Event{Type: "join", Name: "bob"}, ann.next(ctx, t))
	_, welcome = join(ctx, t, c, "room=rust&name=cat")
	assert.Equal(t, []string{"cat"}, welcome.Members)

	require.NoError(t, bob.conn.Close(websocket.StatusNormalClosure, "bye"))
	assert.Equal(t, chat.Event{Type: "leave", Name: "bob"}, ann.next(ctx, t))
	_, welcome = join(ctx, t, c, "room=go&name=dan")
	assert.ElementsMatch(t, []string{"ann", "dan"}, welcome.Members)
	assert.Equal(t, chat.Event{Type: "join", Name: "dan"}, ann.next(ctx, t))
}

// TestFailover has Bob's node stop: he reconnects through another node, one that is
// serving the room already, with his resume point, and gets what Ann said meanwhile,
// once, with no gap.
func TestFailover(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	a, b, c := startNode(t, r.addr()), startNode(t, r.addr()), startNode(t, r.addr())

	ann, welcome := join(ctx, t, a, "room=go&name=ann")
	epoch := welcome.Epoch
	bob, _ := join(ctx, t, b, "room=go&name=bob")
	join(ctx, t, c, "room=go&name=cat")
	ann.send(ctx, t, "one")
	seen := bob.messages(ctx, t, 1)[0]
	require.Equal(t, "one", seen.Text)

	b.stop(t)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(bob.ended(ctx, t)))
	ann.send(ctx, t, "two")
	ann.send(ctx, t, "three")
	require.Equal(t, []string{"one", "two", "three"}, texts(ann.messages(ctx, t, 3)))

	bob, _ = join(ctx, t, c, resume("bob", epoch, seen.ID))
	ann.send(ctx, t, "live")
	got := bob.messages(ctx, t, 3)
	assert.Equal(t, []string{"two", "three", "live"}, texts(got))
	// Nothing more: Bob's own line comes next, and nothing before it.
	bob.send(ctx, t, "back")
	assert.Equal(t, []string{"back"}, texts(bob.messages(ctx, t, 1)))
}

// TestGap has a client come back after more than the stream keeps, or from another life
// of the room: it is told it missed messages for good.
func TestGap(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	cfg := testConfig
	cfg.History = 1
	a := startNodeWith(t, r.addr(), cfg, timing{})
	ann, welcome := join(ctx, t, a, "room=go&name=ann")
	var said []chat.Event
	for _, s := range []string{"one", "two", "three"} {
		ann.send(ctx, t, s)
		said = append(said, ann.messages(ctx, t, 1)[0])
	}
	// The room keeps one line, and trims back to it when it has three: it has the third.
	second, third := said[1], said[2]

	tests := []struct {
		name  string
		query string
		want  []chat.Event
	}{
		{"resumes after the second, which is trimmed: nothing lost", resume("bob", welcome.Epoch, second.ID), []chat.Event{third}},
		{"resumes before the second: lost", resume("bob", welcome.Epoch, second.ID-1), []chat.Event{{Type: "gap"}, third}},
		{"another life", resume("bob", "old", second.ID), []chat.Event{{Type: "gap"}, third}},
		{"newcomer", "room=go&name=bob", []chat.Event{third}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bob, _ := join(ctx, t, a, tt.query)
			assert.Equal(t, tt.want, bob.messages(ctx, t, len(tt.want)))
		})
	}
}

func texts(evs []chat.Event) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Text)
	}
	return s
}

// TestJoinWhileBehind has clients join a node whose reader has not yet delivered what
// the others have: a client resuming from a point the node has not reached, as one
// coming from a faster node does, and a newcomer. Once the reader catches up, each gets
// every line it did not have, once.
func TestJoinWhileBehind(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	a := startNode(t, r.addr())

	// A node whose reader the test runs.
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	b := newBroker(rdb, testConfig.History, timing{})
	h := chat.NewHub(testConfig, b)
	srv := httptest.NewServer(h.Handler())
	runCtx, stopRunning := context.WithCancel(context.Background())
	running := make(chan struct{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
		srv.Close()
		stopRunning()
		b.wake(context.Background())
		<-running
		rdb.Close()
	})
	p := &node{url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?"}

	ann, welcome := join(ctx, t, p, "room=go&name=ann")
	dan, _ := join(ctx, t, a, "room=go&name=dan")
	for _, s := range []string{"m1", "m2", "m3"} {
		dan.send(ctx, t, s)
	}
	said := dan.messages(ctx, t, 3)
	bob, _ := join(ctx, t, p, resume("bob", welcome.Epoch, said[1].ID))
	cat, _ := join(ctx, t, p, "room=go&name=cat")

	go func() {
		defer close(running)
		b.run(runCtx)
	}()
	bob.send(ctx, t, "end")
	assert.Equal(t, []string{"m3", "end"}, texts(bob.messages(ctx, t, 2)))
	assert.Equal(t, []string{"m1", "m2", "m3", "end"}, texts(cat.messages(ctx, t, 4)))
	assert.Equal(t, []string{"m1", "m2", "m3", "end"}, texts(ann.messages(ctx, t, 4)))
}

// TestRedisRestart has Redis stop while members are on two nodes: the nodes keep their
// connections and say so, refuse lines meanwhile, and once Redis is back without the
// room's history, send the members to start again; those that do are told of the gap,
// and the room works again across the nodes.
func TestRedisRestart(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	a, b := startNode(t, r.addr()), startNode(t, r.addr())

	ann, welcome := join(ctx, t, a, "room=go&name=ann")
	bob, _ := join(ctx, t, b, "room=go&name=bob")
	ann.send(ctx, t, "one")
	one := ann.messages(ctx, t, 1)[0]
	require.Equal(t, "one", bob.messages(ctx, t, 1)[0].Text)

	r.stop()
	for _, p := range []*peer{ann, bob} {
		ev := p.next(ctx, t)
		assert.Equal(t, "notice", ev.Type)
		assert.Contains(t, ev.Text, "out of reach")
	}
	ann.send(ctx, t, "lost")
	ev := ann.next(ctx, t)
	assert.Equal(t, "notice", ev.Type)
	assert.Contains(t, ev.Text, "not sent")

	r.start(t)
	for _, p := range []*peer{ann, bob} {
		assert.Equal(t, websocket.StatusServiceRestart, websocket.CloseStatus(p.ended(ctx, t)))
	}
	ann, again := join(ctx, t, a, resume("ann", welcome.Epoch, one.ID))
	assert.NotEqual(t, welcome.Epoch, again.Epoch)
	assert.Equal(t, chat.Event{Type: "gap"}, ann.next(ctx, t))
	bob, _ = join(ctx, t, b, resume("bob", welcome.Epoch, one.ID))
	assert.Equal(t, chat.Event{Type: "gap"}, bob.next(ctx, t))
	ann.send(ctx, t, "again")
	assert.Equal(t, []string{"again"}, texts(bob.messages(ctx, t, 1)))
	assert.Equal(t, []string{"again"}, texts(ann.messages(ctx, t, 1)))
}

// TestNodeDies has a node process killed, as a crash would: the nodes left find it dead
// within a few beats, and its members leave their rooms, each leave told once to each
// member however many nodes look, and gone from presence.
func TestNodeDies(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	// The node that dies is found dead 60 ms after; the others look every 250 ms, and
	// would be taken for dead only if they stalled for 750 ms.
	fast := timing{Beat: 250 * time.Millisecond}
	a, c := startNodeWith(t, r.addr(), testConfig, fast), startNodeWith(t, r.addr(), testConfig, fast)
	b := startNodeProcess(t, r.addr(), beatEnv+"=20ms")
	onB := &node{url: b.url}

	ann, _ := join(ctx, t, a, "room=go&name=ann")
	dan, _ := join(ctx, t, c, "room=go&name=dan")
	fay, _ := join(ctx, t, c, "room=rust&name=fay")
	join(ctx, t, onB, "room=go&name=bob")
	join(ctx, t, onB, "room=go&name=cat")
	join(ctx, t, onB, "room=rust&name=eve")
	for _, who := range []string{"dan", "bob", "cat"} {
		require.Equal(t, chat.Event{Type: "join", Name: who}, ann.next(ctx, t))
	}
	for _, who := range []string{"bob", "cat"} {
		require.Equal(t, chat.Event{Type: "join", Name: who}, dan.next(ctx, t))
	}
	require.Equal(t, chat.Event{Type: "join", Name: "eve"}, fay.next(ctx, t))

	b.kill(t)
	left := []chat.Event{{Type: "leave", Name: "bob"}, {Type: "leave", Name: "cat"}}
	assert.ElementsMatch(t, left, []chat.Event{ann.next(ctx, t), ann.next(ctx, t)})
	assert.ElementsMatch(t, left, []chat.Event{dan.next(ctx, t), dan.next(ctx, t)})
	assert.Equal(t, chat.Event{Type: "leave", Name: "eve"}, fay.next(ctx, t))

	// However often the nodes look again, nobody leaves twice.
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	for range 2 {
		dead, err := reapNodes.Run(ctx, rdb, []string{nodesKey}, testConfig.History).Int()
		require.NoError(t, err)
		assert.Zero(t, dead)
	}
	_, welcome := join(ctx, t, c, "room=go&name=gus")
	assert.ElementsMatch(t, []string{"ann", "dan", "gus"}, welcome.Members)
	assert.Equal(t, chat.Event{Type: "join", Name: "gus"}, ann.next(ctx, t))
	assert.Equal(t, chat.Event{Type: "join", Name: "gus"}, dan.next(ctx, t))
	fay.send(ctx, t, "still here")
	assert.Equal(t, "still here", fay.next(ctx, t).Text)
}

// TestNodeFoundDead has a node taken for dead while it lives, as one cut off from Redis
// for a few beats is: its members are seen to leave, once, and once the node says it is
// alive again, to join again, and they miss nothing meanwhile.
func TestNodeFoundDead(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	// The nodes beat often, and would be taken for dead only if they stalled for 750 ms.
	fast := timing{Beat: 250 * time.Millisecond}
	a, c := startNodeWith(t, r.addr(), testConfig, fast), startNodeWith(t, r.addr(), testConfig, fast)
	ann, _ := join(ctx, t, a, "room=go&name=ann")
	bob, _ := join(ctx, t, c, "room=go&name=bob")
	require.Equal(t, chat.Event{Type: "join", Name: "bob"}, ann.next(ctx, t))

	// Node A's key expires, and a node looks before A renews it.
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	here, err := rdb.ZRange(ctx, hereKey+"go", 0, -1).Result()
	require.NoError(t, err)
	var nodeA string
	for _, e := range here {
		if strings.HasSuffix(e, "/ann") {
			nodeA, _, _ = strings.Cut(e, "/")
		}
	}
	require.NotEmpty(t, nodeA)
	var dead *redis.Cmd
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, nodeKey+nodeA)
		dead = reapNodes.Eval(ctx, p, []string{nodesKey}, testConfig.History)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(1), dead.Val())
	assert.Equal(t, chat.Event{Type: "leave", Name: "ann"}, bob.next(ctx, t))
	assert.Equal(t, chat.Event{Type: "join", Name: "ann"}, bob.next(ctx, t))
	_, welcome := join(ctx, t, c, "room=go&name=cat")
	assert.ElementsMatch(t, []string{"ann", "bob", "cat"}, welcome.Members)

	// Ann was told of no leave or join of her own, and missed nothing.
	bob.send(ctx, t, "hello")
	assert.Equal(t, chat.Event{Type: "join", Name: "cat"}, ann.next(ctx, t))
	assert.Equal(t, []string{"hello"}, texts(ann.messages(ctx, t, 1)))
}

// quiet is a member that takes every event and reads none.
type quiet struct{ name string }

func (q *quiet) Name() string                            { return q.name }
func (q *quiet) Deliver(*websocket.PreparedMessage) bool { return true }
func (q *quiet) End(websocket.StatusCode, string)        {}

// TestHistoryKeepsLines has many members join and leave between two lines, more than the
// room's history: the history is of lines, so a client resuming after the first misses
// nothing and is told of no gap, and a newcomer gets both.
func TestHistoryKeepsLines(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	cfg := testConfig
	cfg.History = 5
	a := startNodeWith(t, r.addr(), cfg, timing{})
	ann, welcome := join(ctx, t, a, "room=go&name=ann")
	ann.send(ctx, t, "one")
	one := ann.messages(ctx, t, 1)[0]

	// Another node, without a reader, for members that come and go.
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	b := newBroker(rdb, cfg.History, timing{})
	for i := range 60 {
		m := &quiet{name: fmt.Sprint("guest", i)}
		require.NoError(t, b.Join(ctx, chat.JoinRequest{Room: "go", Name: m.name}, m))
		b.Leave("go", m)
	}
	ann.send(ctx, t, "two")
	two := ann.messages(ctx, t, 1)[0]

	bob, _ := join(ctx, t, a, resume("bob", welcome.Epoch, one.ID))
	assert.Equal(t, []chat.Event{two}, bob.messages(ctx, t, 1))
	cat, _ := join(ctx, t, a, "room=go&name=cat")
	assert.Equal(t, []chat.Event{one, two}, cat.messages(ctx, t, 2))
}

// counter is a member that counts the events it is handed.
type counter struct{ n atomic.Int64 }

func (c *counter) Name() string                            { return "counter" }
func (c *counter) Deliver(*websocket.PreparedMessage) bool { c.n.Add(1); return true }
func (c *counter) End(websocket.StatusCode, string)        {}

// runPaced runs b's reader at a pace the test sets: its first read is at once, and it
// reads again only when step is called, which returns once that read is over. A step is
// the tick, when the reader appends the lines waiting, then the lag before its read:
// tick alone returns once the reader has appended them and waits for the lag.
func runPaced(ctx context.Context, t *testing.T, b *broker) (step, tick func()) {
	t.Helper()
	runCtx, stop := context.WithCancel(context.Background())
	waiting, ticks := make(chan struct{}), make(chan time.Time)
	b.pace = time.Hour
	b.after = func(time.Duration) <-chan time.Time {
		select {
		case waiting <- struct{}{}:
		case <-runCtx.Done():
		}
		return ticks
	}
	running := make(chan struct{})
	go func() {
		defer close(running)
		b.run(runCtx)
	}()
	t.Cleanup(func() {
		stop()
		b.wake(context.Background())
		<-running
	})
	wait := func() {
		t.Helper()
		select {
		case <-waiting:
		case <-ctx.Done():
			t.Fatal("the reader did not wait for the pace")
		}
	}
	wait()
	tick = func() {
		t.Helper()
		select {
		case ticks <- time.Now():
		case <-ctx.Done():
			t.Fatal("the reader is not waiting")
		}
		wait()
	}
	return func() { tick(); tick() }, tick
}

// TestPace has a node read the rooms at most once a pace: the lines said while its
// reader waits for the pace are delivered after one read, together.
func TestPace(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	a := startNode(t, r.addr())

	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	b := newBroker(rdb, testConfig.History, timing{})
	rec := &counter{}
	require.NoError(t, b.Join(ctx, chat.JoinRequest{Room: "go", Name: rec.Name()}, rec))
	defer b.Leave("go", rec)
	require.Equal(t, int64(1), rec.n.Load()) // the welcome
	dan, _ := join(ctx, t, a, "room=go&name=dan")

	// The first read is at once, and has Dan's join.
	step, _ := runPaced(ctx, t, b)
	assert.Equal(t, int64(2), rec.n.Load())
	for _, s := range []string{"m1", "m2", "m3"} {
		dan.send(ctx, t, s)
	}
	require.Len(t, dan.messages(ctx, t, 3), 3)
	assert.Equal(t, int64(2), rec.n.Load())
	step()
	assert.Equal(t, int64(5), rec.n.Load())
}

// queuedBroker starts Redis and a broker on it whose queued channel tells when a line
// waits for the reader.
func queuedBroker(t *testing.T) (context.Context, *redis.Client, *broker, chan struct{}) {
	ctx := testContext(t)
	r := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	t.Cleanup(func() { rdb.Close() })
	b := newBroker(rdb, testConfig.History, timing{})
	queued := make(chan struct{})
	b.queued = queued
	return ctx, rdb, b, queued
}

// TestPaceAppends has the lines a node's clients say while its reader waits for the pace
// wait with it: at the tick it appends them with one script, and its read after the lag
// delivers them to the node's members.
func TestPaceAppends(t *testing.T) {
	ctx, rdb, b, queued := queuedBroker(t)
	members := []*counter{{}, {}, {}}
	for _, m := range members {
		require.NoError(t, b.Join(ctx, chat.JoinRequest{Room: "go", Name: m.Name()}, m))
		defer b.Leave("go", m)
	}
	_, tick := runPaced(ctx, t, b) // the first read, of the joins

	require.NoError(t, appendLines.Load(ctx, rdb).Err()) // as after the first lines
	require.NoError(t, rdb.ConfigResetStat(ctx).Err())
	before := members[0].n.Load()
	published := make(chan error, len(members))
	for i, m := range members {
		go func() { published <- b.Publish(ctx, "go", m, fmt.Sprint("line ", i)) }()
	}
	for range members {
		select {
		case <-queued:
		case <-ctx.Done():
			t.Fatal("a line did not wait for the reader")
		}
	}
	assert.Equal(t, int64(3), rdb.XLen(ctx, logKey+"go").Val(), "the joins alone")

	// At the tick, the lines are appended, for every node's read after the lag.
	tick()
	for range members {
		require.NoError(t, <-published)
	}
	assert.Equal(t, int64(6), rdb.XLen(ctx, logKey+"go").Val())
	for _, m := range members {
		assert.Equal(t, before, m.n.Load())
	}
	tick()
	for _, m := range members {
		assert.Equal(t, before+3, m.n.Load())
	}
	// A line's entry holds what every node reads, and no more.
	entries := rdb.XRevRangeN(ctx, logKey+"go", "+", "-", 1).Val()
	require.Len(t, entries, 1)
	assert.ElementsMatch(t, []string{"t", "n", "x"}, slices.Collect(maps.Keys(entries[0].Values)))
	stats := rdb.Info(ctx, "commandstats").Val()
	assert.Contains(t, stats, "cmdstat_evalsha:calls=1,")
	assert.Contains(t, stats, "cmdstat_xadd:calls=3,")
}

// TestPaceAfterTick has a line said between a tick and the read after it wait for the
// next tick: appended at the read, it would reach the nodes that read earlier in the
// tick a pace after the others.
func TestPaceAfterTick(t *testing.T) {
	ctx, rdb, b, queued := queuedBroker(t)
	m := &counter{}
	require.NoError(t, b.Join(ctx, chat.JoinRequest{Room: "go", Name: m.Name()}, m))
	defer b.Leave("go", m)
	step, tick := runPaced(ctx, t, b)

	tick() // the reader waits for the lag
	published := make(chan error, 1)
	go func() { published <- b.Publish(ctx, "go", m, "late") }()
	select {
	case <-queued:
	case <-ctx.Done():
		t.Fatal("the line did not wait for the reader")
	}
	tick() // the read
	assert.Equal(t, int64(1), rdb.XLen(ctx, logKey+"go").Val(), "the join alone")
	step()
	require.NoError(t, <-published)
	assert.Equal(t, int64(2), rdb.XLen(ctx, logKey+"go").Val())
}

// TestPaceGiveUp has a client's line given up on while it waits for the reader: it is
// not appended by the reader's next read, since the client is told it was not sent.
func TestPaceGiveUp(t *testing.T) {
	ctx, rdb, b, queued := queuedBroker(t)
	m := &counter{}
	require.NoError(t, b.Join(ctx, chat.JoinRequest{Room: "go", Name: m.Name()}, m))
	defer b.Leave("go", m)
	step, _ := runPaced(ctx, t, b)

	lineCtx, giveUp := context.WithCancel(ctx)
	published := make(chan error, 1)
	go func() { published <- b.Publish(lineCtx, "go", m, "late") }()
	select {
	case <-queued:
	case <-ctx.Done():
		t.Fatal("the line did not wait for the reader")
	}
	giveUp()
	require.ErrorIs(t, <-published, context.Canceled)
	step()
	assert.Equal(t, int64(1), rdb.XLen(ctx, logKey+"go").Val(), "the join alone")
}

// TestLag has each node read a lag after the tick: 10 ms for every node to have
// appended its lines (a quarter of the pace, if that is less), and a share of the pace
// of its own, so that the nodes do not all read, and write, at once.
func TestLag(t *testing.T) {
	for _, tc := range []struct {
		pace, least, most time.Duration
	}{
		{0, 0, 0},
		{20 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Millisecond, 35 * time.Millisecond},
	} {
		lags := map[time.Duration]bool{}
		for range 3 {
			d := lag(tc.pace)
			assert.GreaterOrEqual(t, d, tc.least, "pace %v", tc.pace)
			assert.LessOrEqual(t, d, tc.most, "pace %v", tc.pace)
			lags[d] = true
		}
		if tc.pace > 0 {
			assert.Len(t, lags, 3, "pace %v: three nodes, three lags", tc.pace)
		}
	}
}

// TestClockSetBack has the reader wait for a tick a pace and the lag at most, whatever
// the wall clock says: set back an hour, it would not read for an hour.
func TestClockSetBack(t *testing.T) {
	b := newBroker(nil, 1, timing{})
	var waited time.Duration
	b.after = func(d time.Duration) <-chan time.Time {
		waited = d
		c := make(chan time.Time, 1)
		c <- time.Now()
		return c
	}
	require.True(t, b.sleepUntil(t.Context(), time.Now().Add(time.Hour)))
	assert.Equal(t, b.pace+b.lag, waited)
}

// TestReaderBehind has a node's reader fall behind by more lines than the room keeps:
// its members are told of the gap before the next line.
func TestReaderBehind(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	cfg := testConfig
	cfg.History = 1 // trimmed back to one line when there are three
	a := startNodeWith(t, r.addr(), cfg, timing{})

	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	b := newBroker(rdb, cfg.History, timing{})
	h := chat.NewHub(cfg, b)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, h.Shutdown(ctx))
		srv.Close()
	})
	ann, _ := join(ctx, t, &node{url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?"}, "room=go&name=ann")
	dan, _ := join(ctx, t, a, "room=go&name=dan")
	step, _ := runPaced(ctx, t, b)
	assert.Equal(t, chat.Event{Type: "join", Name: "dan"}, ann.next(ctx, t))

	// Each line reaches Dan before the next is sent: his node is never behind.
	var said []chat.Event
	for _, s := range []string{"m1", "m2", "m3"} {
		dan.send(ctx, t, s)
		said = append(said, dan.messages(ctx, t, 1)...)
	}
	step()
	assert.Equal(t, chat.Event{Type: "gap"}, ann.next(ctx, t))
	assert.Equal(t, said[2], ann.next(ctx, t))
}

// TestTrimLongHistory has a room with a history of 8,000 lines reach twice that: it
// trims back to 8,000 at once, more entries than one Lua unpack takes.
func TestTrimLongHistory(t *testing.T) {
	ctx := testContext(t)
	r := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	const history = 8000
	require.NoError(t, rdb.Set(ctx, epochKey+"go", "e", 0).Err())
	require.NoError(t, appendEvent.Load(ctx, rdb).Err())
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range 2*history + 1 {
			appendEvent.EvalSha(ctx, p, roomKeys("go"), "go", "e", history, "message", "ann", "hi", "n/1")
		}
		return nil
	})
	require.NoError(t, err)
	last := cmds[len(cmds)-1].(*redis.Cmd).Val()
	assert.Equal(t, fmt.Sprint("0-", 2*history+1), last)
	assert.Equal(t, int64(history), rdb.XLen(ctx, logKey+"go").Val())
	assert.Equal(t, fmt.Sprint("0-", history+1), rdb.Get(ctx, droppedKey+"go").Val())
}
