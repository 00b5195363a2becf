package websocket

import (
	"context"
	"errors"
	"sync"
)

// parking is the state of a Conn handed back with Park. It is made on the first Park, so
// that a Conn never parked pays one pointer for it; teardown reads it from any goroutine.
type parking struct {
	mu     sync.Mutex
	fn     func(*Conn) // called when the Conn wakes; nil while not parked
	fd     int         // the socket, while registered with the poller
	polled bool        // fd is registered with the poller (Linux)

	onGoroutine bool // wait on a goroutine even where the poller would serve: for tests
}

var errParkBusy = errors.New("websocket: Park called while a read or another Park is in progress")

// Park hands the Conn back without holding a goroutine for it: Park returns at once, and
// fn is called, on a goroutine of its own, when the peer's next data message begins to
// arrive, or when the connection ends (the peer's close frame, a reset, or a protocol
// error): fn then reads with the ordinary API, whose Read returns the message or the
// error, and may call Park again when it is done. Control frames that arrive while the
// Conn is parked are handled without calling fn: pings are answered, pongs wake Ping,
// and the peer's close frame completes the closing handshake before fn is called.
//
// fn is called once for each Park, also when the Conn is closed from this side while
// parked (its Read then returns the error). While the Conn is parked, other goroutines
// may write to it, Ping it and Close it; they must not read it. Park returns an error if
// the Conn is closed, or if a read or another Park is in progress.
//
// On Linux, a parked Conn over TCP or a Unix socket costs no goroutine and no buffer: the
// socket waits in an epoll set that one goroutine of the package serves for all parked
// Conns. On other systems, and on connections that do not expose their socket (TLS,
// whose record layer may hold bytes the socket no longer shows; HTTP/2 streams;
// net.Pipe), each parked Conn waits on a goroutine of its own, as a Read would.
func (c *Conn) Park(fn func(*Conn)) error {
	if c.isClosed() {
		return c.closedErr()
	}
	if !c.readLock.tryLock() {
		return errParkBusy
	}
	p := c.parking.Load()
	if p == nil {
		c.parking.CompareAndSwap(nil, new(parking))
		p = c.parking.Load()
	}
	p.mu.Lock()
	if p.fn != nil {
		p.mu.Unlock()
		c.readLock.unlock()
		return errParkBusy
	}
	p.fn = fn
	p.mu.Unlock()
	ready := c.rd.open || c.rb.buffered() > 0 || c.rd.resume
	if !ready {
		// A parked Conn holds no read buffer: the wake takes one when bytes arrive.
		c.rb.release()
	}
	c.readLock.unlock()
	if ready {
		// What was read ahead, or a message begun, is there already.
		startWake(c)
		return nil
	}
	c.waitParked()
	return nil
}

// waitParked waits, without a goroutine where it can, for the socket of the parked Conn
// to become readable, then calls wake.
func (c *Conn) waitParked() {
	if c.rb.raw == nil || c.parking.Load().onGoroutine {
		go c.waitOnGoroutine()
		return
	}
	if err := pollerAdd(c); err != nil {
		go c.waitOnGoroutine()
	}
}

// waitOnGoroutine is the portable wait: the runtime's poller tells when the socket is
// readable, and the goroutine holds no buffer meanwhile. A connection without a socket
// of its own goes straight to fn, whose Read waits as usual.
func (c *Conn) waitOnGoroutine() {
	if c.rb.raw != nil {
		waitReadable(c.rb.raw)
	}
	c.wake()
}

// wake runs when a parked Conn's socket has something: it handles the control frames
// that arrived, and calls fn if there is more (data, or the end of the connection);
// otherwise it parks the Conn again.
func (c *Conn) wake() {
	if !c.isClosed() && !c.pollControl() {
		c.waitParked()
		return
	}
	p := c.parking.Load()
	p.mu.Lock()
	fn := p.fn
	p.fn = nil
	p.mu.Unlock()
	if fn != nil {
		fn(c)
	}
}

// pollControl reads what the socket has, without waiting, and acts on the whole control
// frames at the head of the stream. It reports whether the application has something to
// read: a data frame has begun, or the connection failed or ended.
func (c *Conn) pollControl() bool {
	if !c.readLock.tryLock() {
		return true // a Close reads meanwhile; fn's read reports what it finds
	}
	defer c.readLock.unlock()
	if c.rd.open || c.rd.resume || c.rb.raw == nil {
		return true
	}
	// A pong answers to no context here, not to whatever context the last read had: like
	// a Read waiting without one, a peer that pings without reading can hold this
	// goroutine, and no other.
	ctx := context.Background()
	c.rwatch.start(ctx)
	for {
		got, err := c.rb.fillNoWait()
		if err != nil {
			return true
		}
		for {
			h, n, complete, err := c.bufferedHeader()
			if err != nil {
				c.readResult(ctx, err)
				return true
			}
			if !complete {
				break
			}
			if !h.op.isControl() {
				return true
			}
			if err := c.consumeControl(h, n); err != nil {
				c.readResult(ctx, err)
				return true
			}
		}
		if !got {
			return false // nothing more for now: a part of a control frame waits for the rest
		}
	}
}

// bufferedHeader decodes the frame header at the head of the read buffer if it is
// buffered whole, and for a control frame only if its payload is too: complete reports
// whether it was. It never reads from the connection.
func (c *Conn) bufferedHeader() (h header, n int, complete bool, err error) {
	have := c.rb.buffered()
	if have < 2 {
		return header{}, 0, false, nil
	}
	b, _ := c.rb.peek(2) // buffered: no read
	if have < headerSize(b[1]) {
		return header{}, 0, false, nil
	}
	h, n, err = c.peekHeader()
	if err != nil {
		return header{}, 0, false, err
	}
	if h.op.isControl() && int64(have) < int64(n)+h.length {
		return header{}, 0, false, nil
	}
	return h, n, true, nil
}

// unpark takes a Conn being closed out of the poller, and wakes it so that fn learns of
// the end. A Conn waiting on a goroutine wakes by itself when its socket closes.
func (c *Conn) unpark() {
	if p := c.parking.Load(); p != nil && pollerRemove(c) {
		startWake(c)
	}
}

// Wakes run on goroutines kept between wakes, so that each does not start a goroutine and
// grow its stack again: a woken Conn goes to an idle waker if there is one, or to a new
// one. At most maxIdleWakers wait for work, and only while the poller serves: they end
// when it stops, once no Conn is parked in it.
var wakers struct {
	mu   sync.Mutex
	idle []chan *Conn
}

const maxIdleWakers = 64

// startWake runs c.wake on a waker.
func startWake(c *Conn) {
	wakers.mu.Lock()
	if n := len(wakers.idle); n > 0 {
		ch := wakers.idle[n-1]
		wakers.idle = wakers.idle[:n-1]
		wakers.mu.Unlock()
		ch <- c
		return
	}
	wakers.mu.Unlock()
	go waker(c)
}

// waker wakes c, then others handed to it, until it is not needed.
func waker(c *Conn) {
	var ch chan *Conn
	for {
		c.wake()
		wakers.mu.Lock()
		if len(wakers.idle) >= maxIdleWakers || !pollerServing() {
			wakers.mu.Unlock()
			return
		}
		if ch == nil {
			ch = make(chan *Conn)
		}
		wakers.idle = append(wakers.idle, ch)
		wakers.mu.Unlock()
		var ok bool
		if c, ok = <-ch; !ok {
			return
		}
	}
}

// stopWakers ends the idle wakers.
func stopWakers() {
	wakers.mu.Lock()
	for _, ch := range wakers.idle {
		close(ch)
	}
	wakers.idle = nil
	wakers.mu.Unlock()
}
