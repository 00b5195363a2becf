package websocket

import (
	"context"
	"sync"
	"sync/atomic"
)

// A Conn with write coalescing (AcceptOptions.CoalesceWrites, DialOptions.CoalesceWrites)
// holds back the small frames written while the peer's next input is already in its read
// buffer: a reader that keeps reading answers that input first, and the held frames leave
// with the next write, or at the latest when the reader has consumed what was buffered
// and is about to wait for the network. A pipelining peer then gets many answers per
// system call instead of one.
//
// No frame is left behind while the reader waits: a writer holds a frame only after
// seeing the reader not waiting, and checks again once the frame is held; the reader
// announces that it waits, then sends whatever it finds held. Go's atomics are
// sequentially consistent, so one of the two sees the other.
//
// Coalescing is a layer in front of the socket writer (sockwrite.go): write.go asks
// whether a Conn coalesces (c.co != nil), and one that does not never enters this file.

// maxHeld is how many bytes of frames a Conn holds back at most.
const maxHeld = writeBufferSize

var heldBuffers = sync.Pool{New: func() any { return new([maxHeld]byte) }}

// coalescer is the state of write coalescing.
type coalescer struct {
	more    atomic.Bool  // the read buffer holds bytes not consumed yet
	waiting atomic.Bool  // the reader waits for the network: nothing may stay held
	n       atomic.Int32 // bytes held in buf
	buf     *[maxHeld]byte

	// The reader waiting in sendHeld for the frame lock's holder.
	wakeMu  sync.Mutex
	wake    chan struct{} // guarded by wakeMu
	wakeSet atomic.Bool   // wake is not nil
}

// sendCoalesced is sendLocked with write coalescing on: it holds frame back if it may,
// and otherwise writes it with whatever is held, in one system call. The caller holds
// frameLock, which it releases. sendBuffered calls it only when a frame may be held or
// frames are held, and writes the frame itself otherwise.
func (c *Conn) sendCoalesced(ctx context.Context, frame []byte) error {
	co := c.co
	if co.mayHold() && co.hold(frame) {
		if co.stillHeld() {
			c.unlockFrame(ctx)
			return nil
		}
		// The reader started waiting meanwhile: nothing may stay held.
		frame = nil
	}
	var wrote int64
	var err error
	if co.holding() {
		wrote, err = c.writeHeld(frame, nil)
	} else {
		wrote, err = c.writeSocket(frame)
	}
	err = c.writeResult(ctx, wrote, err)
	c.unlockFrame(ctx)
	return err
}

// holding reports whether frames are held.
func (co *coalescer) holding() bool { return co.n.Load() > 0 }

// mayHold reports whether a frame may be held back: the reader has input to go on with,
// and it does not wait for the network.
func (co *coalescer) mayHold() bool { return co.more.Load() && !co.waiting.Load() }

// hold keeps frame back instead of sending it, if it fits. The caller holds frameLock,
// has seen mayHold, and must send what is held before releasing the lock if stillHeld
// turns out false.
func (co *coalescer) hold(frame []byte) bool {
	n := int(co.n.Load())
	if n+len(frame) > maxHeld {
		return false
	}
	if co.buf == nil {
		co.buf = heldBuffers.Get().(*[maxHeld]byte)
	}
	co.n.Store(int32(n + copy(co.buf[n:], frame)))
	return true
}

// stillHeld reports whether held frames may stay held: the reader has not started waiting.
func (co *coalescer) stillHeld() bool { return !co.waiting.Load() }

// writeHeld writes the held frames followed by a and b, and gives the buffer back. If
// nothing left, as when a context cuts the write short, the frames stay held: the calls
// that wrote them have returned, and they must go out with a later write.
func (c *Conn) writeHeld(a, b []byte) (int64, error) {
	co := c.co
	held := co.buf
	n := co.n.Load()
	co.n.Store(0)
	co.buf = nil
	co.signal()
	wrote, err := c.writev(held[:n], a, b)
	if wrote == 0 && err != nil {
		co.buf = held
		co.n.Store(n)
		return wrote, err
	}
	heldBuffers.Put(held)
	return wrote, err
}

// beforeWait is called by the reader before it waits for the network: it announces the
// wait, then sends what writers hold, answering to the read's context. If that context
// ends before any of it left, it stays held, and the wait that follows fails at once.
// The caller holds readLock.
func (c *Conn) beforeWait() {
	c.co.waiting.Store(true)
	if c.co.holding() {
		c.sendHeld(c.rwatch.current())
	}
}

// sendHeld sends the held frames, answering to ctx. While another goroutine has the frame
// lock, it waits until that one takes the held frames to send with its own, or lets go
// of the lock: since writers hold frames only while the reader is not waiting, the wait
// is short.
func (c *Conn) sendHeld(ctx context.Context) {
	co := c.co
	for co.n.Load() > 0 && !c.isClosed() {
		if c.frameLock.tryLock() {
			c.writeHeldLocked(ctx)
			return
		}
		wake := co.waiter()
		// Look again, now that a holder letting go will wake us: it may have done so
		// before we asked.
		if co.n.Load() == 0 {
			return
		}
		if c.frameLock.tryLock() {
			c.writeHeldLocked(ctx)
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-c.closed:
			return
		}
	}
}

// writeHeldLocked sends the held frames, if any are left. The caller holds frameLock,
// which it releases.
func (c *Conn) writeHeldLocked(ctx context.Context) {
	if c.co.n.Load() > 0 && !c.closeSent {
		c.wwatch.start(ctx)
		wrote, err := c.writeHeld(nil, nil)
		if c.writeResult(ctx, wrote, err) != nil {
			c.frameLock.unlock() // not unlockFrame: a waiting pong would block again
			return
		}
	}
	c.unlockFrame(ctx)
}

// waiter returns a channel closed once the held frames are taken or the frame lock is
// let go.
func (co *coalescer) waiter() <-chan struct{} {
	co.wakeMu.Lock()
	defer co.wakeMu.Unlock()
	if co.wake == nil {
		co.wake = make(chan struct{})
		co.wakeSet.Store(true)
	}
	return co.wake
}

// signal wakes the reader waiting in sendHeld, if any.
func (co *coalescer) signal() {
	if !co.wakeSet.Load() {
		return
	}
	co.wakeMu.Lock()
	if co.wake != nil {
		close(co.wake)
		co.wake = nil
		co.wakeSet.Store(false)
	}
	co.wakeMu.Unlock()
}

// sendHeldNow sends the held frames for CloseNow, which must not wait: only if the frame
// lock is free, and with one write that does not wait for the socket (TCP and Unix
// sockets); elsewhere they are dropped.
func (c *Conn) sendHeldNow() {
	co := c.co
	if co.n.Load() == 0 || !c.frameLock.tryLock() {
		return
	}
	if n := co.n.Load(); n > 0 && !c.closeSent {
		writeNoWait(c.rb.raw, co.buf[:n])
	}
	c.frameLock.unlock()
}

// coalesceWrites turns write coalescing on.
func (c *Conn) coalesceWrites() {
	c.co = &coalescer{}
	c.rb.co = c.co
	c.rb.beforeWait = c.beforeWait
}
