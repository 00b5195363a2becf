package websocket

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock that moves only when the test says so. Timers that come due run
// in the goroutine that moves it, one after another, each at its own time: when advance
// returns, everything they did (a ping written, a Conn closed) is done.
type fakeClock struct {
	mu     sync.Mutex
	t      int64
	timers []*fakeTimer
}

type fakeTimer struct {
	c   *fakeClock
	due int64
	on  bool
	f   func()
}

func (c *fakeClock) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) timer {
	t := &fakeTimer{c: c, f: f}
	t.Reset(d)
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return t
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.on
	t.on, t.due = true, t.c.t+int64(d)
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.on
	t.on = false
	return was
}

// advance moves the clock d forward, running the timers that come due on the way.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	end := c.t + int64(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if t.on && t.due <= end && (next == nil || t.due < next.due) {
				next = t
			}
		}
		if next == nil {
			c.t = end
			c.mu.Unlock()
			return
		}
		c.t = max(c.t, next.due)
		next.on = false
		c.mu.Unlock()
		next.f()
	}
}

const (
	testInterval = 10 * time.Second
	testTimeout  = 5 * time.Second
)

// keepalivePeer puts a server Conn with keepalive on a fake clock in front of a raw peer
// over tr, and starts reading the Conn.
func keepalivePeer(t *testing.T, tr transport) (*rawPeer, *fakeClock) {
	t.Helper()
	var raw net.Conn
	server, _ := tr.pair(t, func(nc net.Conn) net.Conn { raw = nc; return nc })
	server.closeTimeout = time.Second
	clk := &fakeClock{}
	server.startKeepalive(testInterval, testTimeout, clk)
	p := startRawPeer(t, raw, server)
	p.readLoop()
	return p, clk
}

// expectPing returns the next frame, which must be a keepalive ping.
func (p *rawPeer) expectPing() frame {
	p.t.Helper()
	f := p.next()
	require.Equal(p.t, opPing, f.op)
	require.Equal(p.t, keepalivePayload, string(f.payload))
	return f
}

// answer sends a pong for ping, then a text message, and waits until the Conn has read
// the message: the pong has then been handled.
func (p *rawPeer) answer(ping frame) {
	p.t.Helper()
	p.send(frame{fin: true, op: opPong, payload: ping.payload}, frame{fin: true, op: opText, payload: []byte("sync")})
	r := p.nextRead()
	require.NoError(p.t, r.err)
	require.Equal(p.t, "sync", string(r.msg))
}

// TestKeepaliveDeadPeer checks that a peer that stops answering is found after exactly
// the interval and the timeout, and that reads then fail with ErrKeepaliveTimeout and no
// close frame is sent.
func TestKeepaliveDeadPeer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		p, clk := keepalivePeer(t, tr)
		k := p.conn.rb.ka

		clk.advance(testInterval - 1)
		assert.Zero(t, k.pingAt.Load(), "pinged before the interval passed")
		clk.advance(1)
		p.expectPing()
		assert.Equal(t, int64(testInterval), k.pingAt.Load(), "ping sent at the wrong time")

		clk.advance(testTimeout - 1)
		require.False(t, p.conn.isClosed(), "closed before the timeout passed")
		clk.advance(1)
		require.True(t, p.conn.isClosed(), "still open after interval + timeout")

		r := p.nextRead()
		require.ErrorIs(t, r.err, ErrKeepaliveTimeout)
		require.ErrorIs(t, r.err, net.ErrClosed)
		assert.Equal(t, StatusCode(-1), CloseStatus(r.err))
		assert.Contains(t, r.err.Error(), "keepalive timed out")
		assert.Equal(t, 1, strings.Count(r.err.Error(), "websocket: "), r.err.Error())
		p.expectEnd() // no close frame: a dead peer would not read it
		assert.Zero(t, p.conn.RTT())
	})
}

// TestKeepaliveLateAnswer checks that an answer just within the timeout keeps the Conn
// open, and that the next ping comes an interval after it.
func TestKeepaliveLateAnswer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		p, clk := keepalivePeer(t, tr)
		clk.advance(testInterval)
		ping := p.expectPing()
		clk.advance(testTimeout - 1)
		p.answer(ping)
		clk.advance(1)
		require.False(t, p.conn.isClosed(), "closed although the peer answered in time")
		assert.Equal(t, testTimeout-1, p.conn.RTT())

		clk.advance(testInterval - 2)
		assert.Zero(t, p.conn.rb.ka.pingAt.Load(), "pinged less than an interval after the answer")
		clk.advance(1)
		p.expectPing()
		clk.advance(testTimeout)
		require.True(t, p.conn.isClosed(), "the second ping went unanswered")
		require.ErrorIs(t, p.nextRead().err, ErrKeepaliveTimeout)
	})
}

// TestKeepaliveLongTimeout checks that with a timeout longer than the interval, the next
// ping still comes an interval after the answer, and a dead peer is still found at the
// end of the timeout.
func TestKeepaliveLongTimeout(t *testing.T) {
	p := newRawPeer(t, false)
	clk := &fakeClock{}
	p.conn.startKeepalive(testInterval, 3*testInterval, clk)
	p.readLoop()
	clk.advance(testInterval)
	ping := p.expectPing()
	clk.advance(time.Second)
	p.answer(ping)
	clk.advance(testInterval - 1)
	assert.Zero(t, p.conn.rb.ka.pingAt.Load(), "pinged less than an interval after the answer")
	clk.advance(1)
	p.expectPing()
	assert.Equal(t, int64(2*testInterval+time.Second), p.conn.rb.ka.pingAt.Load(), "ping not an interval after the answer")

	clk.advance(3*testInterval - 1)
	require.False(t, p.conn.isClosed(), "closed before the timeout passed")
	clk.advance(1)
	require.True(t, p.conn.isClosed())
	require.ErrorIs(t, p.nextRead().err, ErrKeepaliveTimeout)
}

// TestKeepaliveAnswered checks that a peer that answers keeps the Conn open for many
// intervals, and that RTT reports each answer's round trip.
func TestKeepaliveAnswered(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		p, clk := keepalivePeer(t, tr)
		assert.Zero(t, p.conn.RTT(), "RTT before any ping")
		for i := range 20 {
			clk.advance(testInterval)
			ping := p.expectPing()
			rtt := time.Duration(i+1) * time.Millisecond
			clk.advance(rtt)
			p.answer(ping)
			assert.Equal(t, rtt, p.conn.RTT())
		}
		require.False(t, p.conn.isClosed())
		require.NoError(t, p.conn.Write(waitContext(t), MessageText, []byte("still here")))
		f := p.next()
		assert.Equal(t, "still here", string(f.payload))
	})
}

// TestKeepaliveQuietOnly checks that a peer that keeps sending is never pinged, and that
// a ping waits while a frame is being written rather than wait for the frame lock.
func TestKeepaliveQuietOnly(t *testing.T) {
	p, clk := keepalivePeer(t, transports[0])
	k := p.conn.rb.ka
	for range 20 {
		clk.advance(testInterval - 1)
		p.send(frame{fin: true, op: opText, payload: []byte("data")})
		require.NoError(t, p.nextRead().err)
	}
	assert.Zero(t, k.sent.Load(), "pinged a peer that was sending")

	require.True(t, p.conn.frameLock.tryLock())
	clk.advance(testInterval)
	assert.Zero(t, k.sent.Load(), "pinged while a frame was being written")
	p.conn.frameLock.unlock()
	clk.advance(testInterval)
	p.expectPing()
}

// TestKeepaliveStopsWithConn checks that closing the Conn stops the timer.
func TestKeepaliveStopsWithConn(t *testing.T) {
	p, clk := keepalivePeer(t, transports[0])
	require.NoError(t, p.conn.CloseNow())
	clk.mu.Lock()
	on := clk.timers[0].on
	clk.mu.Unlock()
	assert.False(t, on, "timer still set after the Conn closed")
	clk.advance(10 * testInterval)
}

// TestKeepaliveUnreadPing checks that a ping the peer does not take within the timeout
// (it reads nothing) closes the Conn too. The write's bound is the real timeout.
func TestKeepaliveUnreadPing(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	conn := newConn(a, nil, false, "")
	t.Cleanup(func() { conn.CloseNow() })
	clk := &fakeClock{}
	conn.startKeepalive(testInterval, 20*time.Millisecond, clk)
	clk.advance(testInterval) // returns once the ping's write gave up
	require.True(t, conn.isClosed())
	_, _, err := conn.Read(context.Background())
	require.ErrorIs(t, err, ErrKeepaliveTimeout)
	assert.Contains(t, err.Error(), "could not be sent")
}

// TestKeepaliveRealClock runs keepalive on the real clock: a peer that answers is pinged
// again, RTT reports the answer, and a peer that stops answering is cut off.
func TestKeepaliveRealClock(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.conn.startKeepalive(time.Millisecond, time.Minute, realClock{})
		p.readLoop()
		for range 3 {
			p.answer(p.expectPing())
			assert.Positive(t, p.conn.RTT())
		}
	})
	t.Run("dead", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.conn.startKeepalive(time.Millisecond, time.Millisecond, realClock{})
		p.readLoop()
		p.expectPing()
		require.ErrorIs(t, p.nextRead().err, ErrKeepaliveTimeout)
		p.expectEnd()
	})
}

// TestKeepaliveOptions checks that the options of Accept and Dial turn keepalive on, with
// the timeout defaulting to the interval, and leave it off by default.
func TestKeepaliveOptions(t *testing.T) {
	tests := []struct {
		name              string
		interval, timeout time.Duration
		wantTimeout       time.Duration
	}{
		{"off", 0, time.Second, 0},
		{"negative", -time.Second, time.Second, 0},
		{"default timeout", time.Minute, 0, time.Minute},
		{"both", time.Minute, time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accepted := make(chan *Conn, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := Accept(w, r, &AcceptOptions{PingInterval: tt.interval, PingTimeout: tt.timeout})
				if err != nil {
					accepted <- nil
					return
				}
				accepted <- c
			}))
			defer srv.Close()
			client, _, err := Dial(waitContext(t), "ws"+strings.TrimPrefix(srv.URL, "http"),
				&DialOptions{PingInterval: tt.interval, PingTimeout: tt.timeout})
			require.NoError(t, err)
			defer client.CloseNow()
			server := <-accepted
			require.NotNil(t, server)
			defer server.CloseNow()
			for _, c := range []*Conn{server, client} {
				if tt.wantTimeout == 0 {
					assert.Nil(t, c.rb.ka)
					continue
				}
				require.NotNil(t, c.rb.ka)
				assert.Equal(t, tt.interval, c.rb.ka.interval)
				assert.Equal(t, tt.wantTimeout, c.rb.ka.timeout)
			}
		})
	}
}

// TestKeepaliveConnSize reports the size of a Conn, which must stay in the runtime's
// 1024-byte size class: keepalive adds one pointer to it.
func TestKeepaliveConnSize(t *testing.T) {
	size := unsafe.Sizeof(Conn{})
	t.Logf("Conn: %d bytes; keepalive state: %d bytes", size, unsafe.Sizeof(keepalive{}))
	assert.LessOrEqual(t, size, uintptr(1024), "a Conn no longer fits the 1024-byte size class")
}

// BenchmarkKeepaliveStart measures what keepalive costs a Conn: its state and its timer.
func BenchmarkKeepaliveStart(b *testing.B) {
	b.ReportAllocs()
	c := &Conn{}
	for b.Loop() {
		c.rb.ka = nil
		c.startKeepalive(time.Hour, 0, realClock{})
		c.rb.ka.stop()
	}
}

// contextDone reports whether ctx is done, without waiting.
func contextDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// BenchmarkKeepaliveArrived measures what keepalive adds to each read of the socket that
// returns bytes.
func BenchmarkKeepaliveArrived(b *testing.B) {
	k := &keepalive{clock: realClock{}}
	for b.Loop() {
		k.arrived()
	}
}
