package websocket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrKeepaliveTimeout is matched by errors.Is, alongside net.ErrClosed, when the Conn was
// closed by keepalive (AcceptOptions.PingInterval, DialOptions.PingInterval): nothing
// arrived from the peer within the ping timeout after a keepalive ping. The Conn was
// closed without a close frame, which a peer that does not answer would not read.
var ErrKeepaliveTimeout = errors.New("websocket: keepalive timed out")

// keepalivePayload is the payload of keepalive pings. It is not 8 bytes long, as the
// payloads of Ping are, so that their pongs are never taken for one another.
const keepalivePayload = "keepalive"

// keepaliveError is why keepalive closed a Conn; it matches ErrKeepaliveTimeout.
type keepaliveError struct{ why string }

func (e *keepaliveError) Error() string        { return errPrefix + e.text() }
func (e *keepaliveError) text() string         { return "keepalive timed out: " + e.why }
func (e *keepaliveError) Is(target error) bool { return target == ErrKeepaliveTimeout }

// clock is the time keepalive runs on: the real one, or a test's.
type clock interface {
	now() int64 // nanoseconds since some fixed instant
	afterFunc(d time.Duration, f func()) timer
}

// timer is what clock.afterFunc returns: a *time.Timer, or a test's.
type timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// clockStart is the instant realClock counts from: its readings are then monotonic and
// cost one read of the runtime's clock.
var clockStart = time.Now()

type realClock struct{}

func (realClock) now() int64 { return int64(time.Since(clockStart)) }

func (realClock) afterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }

// keepalive pings a Conn once nothing has arrived from the peer for an interval, and
// closes it when nothing arrives within the timeout after a ping. It runs on one timer,
// whose function (fire) runs on a goroutine of its own only while it works; fire never
// runs twice at once, since only fire itself sets the timer again.
type keepalive struct {
	c        *Conn
	interval time.Duration
	timeout  time.Duration
	clock    clock

	last   atomic.Int64 // clock time of the last read of the socket that returned bytes
	pingAt atomic.Int64 // clock time of the keepalive ping waiting for an answer, or 0
	sent   atomic.Int64 // clock time of the keepalive ping whose pong is not in yet, or 0
	rtt    atomic.Int64 // the last round-trip time measured, in nanoseconds

	mu      sync.Mutex // guards t and stopped, so that no fire sets the timer after stop
	t       timer
	stopped bool
}

// startKeepalive turns keepalive on, unless interval is not positive. A timeout that is
// not positive is the interval. It is called before the Conn is handed out.
func (c *Conn) startKeepalive(interval, timeout time.Duration, clk clock) {
	if interval <= 0 {
		return
	}
	if timeout <= 0 {
		timeout = interval
	}
	k := &keepalive{c: c, interval: interval, timeout: timeout, clock: clk}
	k.last.Store(clk.now()) // the handshake has just arrived
	c.rb.ka = k
	k.mu.Lock()
	k.t = clk.afterFunc(interval, k.fire)
	k.mu.Unlock()
}

// arrived records that a read of the socket returned bytes. The reader calls it, once per
// read of the socket rather than per frame: a clock reading and an atomic store.
func (k *keepalive) arrived() { k.last.Store(k.clock.now()) }

// pong takes note of a pong from the peer: the answer to a keepalive ping gives the
// round-trip time. The reader calls it.
func (k *keepalive) pong(payload []byte) {
	if k == nil || string(payload) != keepalivePayload {
		return
	}
	if sent := k.sent.Swap(0); sent != 0 {
		k.rtt.Store(max(k.clock.now()-sent, 1)) // zero means "not measured"
	}
}

// arm sets the timer to fire in d, unless keepalive was stopped.
func (k *keepalive) arm(d time.Duration) {
	k.mu.Lock()
	if !k.stopped {
		k.t.Reset(max(d, 0))
	}
	k.mu.Unlock()
}

// stop ends keepalive for good; the Conn calls it as it closes. k may be nil.
func (k *keepalive) stop() {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.stopped = true
	if k.t != nil {
		k.t.Stop()
	}
	k.mu.Unlock()
}

// fire runs when the timer goes off: it closes the Conn if a ping went unanswered for the
// timeout, pings if the connection has been quiet for the interval, and otherwise sets
// the timer for when one of these may next be due.
func (k *keepalive) fire() {
	c := k.c
	if c.isClosed() {
		return
	}
	now := k.clock.now()
	last := k.last.Load()
	if pingAt := k.pingAt.Load(); pingAt != 0 {
		if last < pingAt {
			if left := pingAt + int64(k.timeout) - now; left > 0 {
				k.armWaiting(time.Duration(left))
				return
			}
			c.teardown(&keepaliveError{fmt.Sprintf("nothing received within %v of a ping", k.timeout)})
			return
		}
		k.pingAt.Store(0) // answered, or the peer sent something else: it is alive
	}
	if quiet := now - last; quiet < int64(k.interval) {
		k.arm(k.interval - time.Duration(quiet))
		return
	}
	k.ping(now)
}

// ping sends a keepalive ping and sets the timer for the end of the timeout. The ping
// never waits for the frame lock: while a frame is being written, data is leaving, and
// the ping is tried again an interval later. Its write is bounded by the timeout, so
// that a peer that does not read holds the timer's goroutine no longer than that.
func (k *keepalive) ping(now int64) {
	c := k.c
	if !c.frameLock.tryLock() {
		k.arm(k.interval)
		return
	}
	if c.closeSent || c.isClosed() {
		// RFC 6455 §5.5.1: nothing may follow our close frame, which ends the Conn soon.
		c.frameLock.unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	k.sent.Store(now) // before the write: the pong may be read before it returns
	c.wwatch.start(ctx)
	wrote, err := c.writeControlFrame(opPing, []byte(keepalivePayload))
	if err != nil {
		k.sent.Store(0)
		// Not unlockFrame: a waiting pong would meet the same full socket.
		c.frameLock.unlock()
		switch {
		case c.isClosed():
		case !cut(ctx):
			c.teardown(err)
		case wrote == 0 && !c.tlsWrites && k.last.Load() >= now:
			// The peer does not read, but it sends: it is alive. The stream is intact,
			// since nothing of the ping left.
			k.arm(k.interval)
		default:
			c.teardown(&keepaliveError{fmt.Sprintf("a ping could not be sent within %v", k.timeout)})
		}
		return
	}
	c.unlockFrame(ctx)
	k.pingAt.Store(now)
	k.armWaiting(time.Duration(now + int64(k.timeout) - k.clock.now()))
}

// armWaiting sets the timer while a ping waits for an answer, for the end of the
// timeout, left from now, but no later than an interval from now: when the timeout is
// longer than the interval, an answer that comes early is followed by the next ping an
// interval after it, not at the end of the timeout.
func (k *keepalive) armWaiting(left time.Duration) {
	k.arm(min(left, k.interval))
}

// RTT returns the round-trip time that keepalive measured last: from a keepalive ping
// to the reading of its pong. It is zero until a keepalive ping has been answered, and
// always without keepalive. It is safe to call at any time.
func (c *Conn) RTT() time.Duration {
	if c.rb.ka == nil {
		return 0
	}
	return time.Duration(c.rb.ka.rtt.Load())
}
