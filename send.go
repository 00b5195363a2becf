package websocket

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMaxBuffered is the bound on what Send holds for a Conn unless the options set
// another.
const defaultMaxBuffered = 1 << 20

// errTooSlow is why a Conn whose queue passed its bound was closed.
var errTooSlow = errors.New("peer too slow: the messages waiting for it passed MaxBuffered")

// tooSlowReason is the reason of the close frame sent to such a peer.
const tooSlowReason = "too slow to keep up"

// errClosing is what Send returns once the closing handshake has begun.
var errClosing = &closedError{cause: errors.New("closing: no message is sent after the close frame")}

// sendState is a Conn's bound on what Send queues, and the queue, made by the first Send:
// a Conn that never calls it spends 24 bytes on it.
type sendState struct {
	max     int // MaxBuffered of the options; 0 or less for defaultMaxBuffered
	q       atomic.Pointer[sendQueue]
	closing atomic.Bool // our close frame is on its way: Send takes nothing more
}

// sendQueue holds the messages Send queued for a Conn. While it is not empty, one of the
// writers (sendwriters.go) or a goroutine of the queue's own writes them, in order, under
// msgLock, as Write would, and lets the queue go when it is empty. A goroutine that
// takes msgLock to write a message of its own first writes what is queued
// (lockMessage), so that messages queued before it keep their place.
type sendQueue struct {
	bytes  atomic.Int64 // payload bytes of the queued messages: what Buffered reports
	count  atomic.Int64 // queued messages, empty ones included
	failed atomic.Bool  // err is set

	mu      sync.Mutex
	msgs    []*PreparedMessage // msgs[head:] wait, oldest first; the first may be being written
	head    int
	gen     uint64             // counts the clears: what was taken before one is no longer in msgs
	running bool               // a writer or the queue's goroutine writes it, or is on its way to: set while msgs is not empty
	drained chan struct{}      // made by Close while messages wait, closed once none does
	err     error              // the error of every Send once the bound was passed
	max     int                // the bound: MaxBuffered, or defaultMaxBuffered
	ctx     context.Context    // made by the first handOff
	cancel  context.CancelFunc // ends the writing goroutine's wait or write, once the bound was passed

	batch *batch // while msgLock's holder writes batches; owned by it

	// The end of a frame a writer began, which the goroutine it handed the queue to
	// finishes before anything else; owned by the holder of msgLock and frameLock.
	rest    []byte
	restGen uint64 // the queue's generation when the frame began

	handOffs int // goroutines handOff started, guarded by mu: what the tests count
}

// Send queues m to be sent on c and returns at once: it never waits for the network or
// for other writers. The messages queued are written in order, between the messages of
// Write, Writer and WritePrepared (which send what was queued before theirs first), and
// control frames still go out between them. On a server, messages waiting together go
// out several at a time, in one writev of their prepared frames (not over TLS or with
// CoalesceWrites; a client masks each frame, so it writes them one by one). It is safe
// for concurrent use; Buffered reports the bytes waiting.
//
// Who writes them: on a server over TCP or a Unix socket on Linux (not TLS, without
// CoalesceWrites), a few goroutines shared by all Conns, at most GOMAXPROCS, which run
// while some Conn has messages waiting and write each queue with system calls that do
// not wait for room in the socket; a Conn whose socket is full, or whose messages wait
// behind another writer's, is handed to a goroutine of its own, which waits for it. On
// other Conns, that goroutine writes the queue from the start. Either way no goroutine
// runs for a Conn once its queue is empty.
//
// The bytes waiting are bounded: MaxBuffered in AcceptOptions or DialOptions, 1 MiB by
// default, counting each message's payload before compression. A message alone in the
// queue is taken whatever its size. When a message would take the bytes waiting past the
// bound, the peer is taken to be too slow: Send drops what waits, returns an error
// satisfying errors.Is(err, net.ErrClosed), as every Send after it does, and the Conn is
// closed in the background with status 1008 (policy violation), as Close does: the
// write in progress is stopped, and if part of its frame had gone out (or over TLS,
// whatever it had written), the connection is closed without a close frame.
//
// Send returns an error satisfying errors.Is(err, net.ErrClosed) once the Conn is closed
// or closing: from the moment Close begins, or our close frame is on its way for another
// reason (an answer to the peer's close, a protocol error). Close first sends what was
// queued, in order, for up to its close timeout, then its close frame; what is still
// queued then, or when the Conn closes otherwise (CloseNow, the peer's close, an error),
// is dropped.
func (c *Conn) Send(m *PreparedMessage) error {
	if m == nil {
		return errNilPrepared
	}
	q := c.queue()
	n := int64(len(m.payload()))
	q.mu.Lock()
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		return err
	}
	if c.isClosed() {
		q.mu.Unlock()
		return c.closedErr()
	}
	if c.sq.closing.Load() {
		// Loaded under q.mu, after the queue was made: a Close that set it before sees
		// the queue, and this message in it, or this Send refuses the message.
		q.mu.Unlock()
		return errClosing
	}
	if b := q.bytes.Load(); q.count.Load() > 0 && b+n > int64(q.limit()) {
		q.err = &closedError{cause: errTooSlow}
		q.failed.Store(true)
		err := q.err
		q.clear()
		if q.cancel != nil {
			q.cancel() // the goroutine writing the queue closes the Conn
		}
		q.mu.Unlock()
		return err
	}
	if q.head > 0 && len(q.msgs) == cap(q.msgs) {
		q.msgs = q.msgs[:copy(q.msgs, q.msgs[q.head:])]
		clear(q.msgs[len(q.msgs):cap(q.msgs)])
		q.head = 0
	}
	q.msgs = append(q.msgs, m)
	q.bytes.Add(n)
	q.count.Add(1)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		if c.writesReady() {
			c.writeSoon()
		} else {
			c.handOff(q)
		}
	}
	return nil
}

// Buffered returns the bytes of the messages Send queued that are not written yet,
// counting payloads before compression, as a browser's WebSocket.bufferedAmount does. It
// is safe to call at any time.
func (c *Conn) Buffered() int {
	if q := c.sq.q.Load(); q != nil {
		return int(q.bytes.Load())
	}
	return 0
}

// queue returns the Conn's queue, making it on first use.
func (c *Conn) queue() *sendQueue {
	if q := c.sq.q.Load(); q != nil {
		return q
	}
	q := &sendQueue{max: c.sq.max}
	if q.max <= 0 {
		q.max = defaultMaxBuffered
	}
	if !c.sq.q.CompareAndSwap(nil, q) {
		return c.sq.q.Load()
	}
	return q
}

// limit returns the bound on the bytes waiting.
func (q *sendQueue) limit() int { return q.max }

// clear drops every queued message. The caller holds q.mu.
func (q *sendQueue) clear() {
	clear(q.msgs)
	q.msgs, q.head = nil, 0
	q.gen++
	q.bytes.Store(0)
	q.count.Store(0)
	q.emptied()
}

// emptied wakes the Close waiting for the queue to empty, if any. The caller holds q.mu.
func (q *sendQueue) emptied() {
	if q.drained != nil {
		close(q.drained)
		q.drained = nil
	}
}

// refuseSends makes every Send from now on fail: our close frame is on its way, and
// nothing may follow it (RFC 6455 §5.5.1).
func (c *Conn) refuseSends() { c.sq.closing.Store(true) }

// sendQueued is Close's first step: it refuses any further Send, then waits until what
// Send queued has been written, the close timeout has passed, or the Conn is closed, so
// that the close frame follows the messages queued before it, as a browser's close()
// does. A peer that stopped reading holds it up for the close timeout at most; the close
// frame then waits for the write in progress, bounded as ever.
func (c *Conn) sendQueued() {
	c.refuseSends()
	q := c.sq.q.Load()
	if q == nil {
		return
	}
	q.mu.Lock() // not q.count: a Send that found closing unset may not have counted yet
	if q.head == len(q.msgs) || q.err != nil {
		q.mu.Unlock()
		return
	}
	if q.drained == nil {
		q.drained = make(chan struct{})
	}
	drained := q.drained
	q.mu.Unlock()
	t := time.NewTimer(c.closeTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
	case <-c.closed:
	}
}

// handOff starts a goroutine of the queue's own to write it (writeQueue): Send does when
// the writers do not write c, and a writer does when c's socket is full or something
// else keeps it.
func (c *Conn) handOff(q *sendQueue) {
	q.mu.Lock()
	q.handOffs++
	q.makeContext()
	q.mu.Unlock()
	go c.writeQueue()
}

// writeContext returns the context the queue's writes answer to, making it on first use.
func (q *sendQueue) writeContext() context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.makeContext()
	return q.ctx
}

// makeContext makes the context the queue's writes answer to, unless it is made: a
// queue that the writers alone write never needs one. The caller holds q.mu.
func (q *sendQueue) makeContext() {
	if q.ctx == nil {
		q.ctx, q.cancel = context.WithCancel(context.Background())
		if q.err != nil {
			q.cancel() // the bound was passed before: its writes are over
		}
	}
}

// writeQueue is the queue's own goroutine (handOff): it writes the queue until it is
// empty, and closes the Conn with 1008 if the bound was passed meanwhile. It first ends
// the frame a writer began, if any, with the locks the writer handed it.
func (c *Conn) writeQueue() {
	q := c.sq.q.Load()
	ctx := q.ctx // set before the goroutine started, and never after
	var err error
	if q.rest != nil {
		err = c.finishFrame(ctx, q)
	} else {
		err = c.lock(ctx, &c.msgLock)
	}
	if err == nil {
		if c.frameLock.tryLock() {
			// The write watch follows the queue's context from here on: its first
			// registration allocates, which deeper down, in the first write, could take
			// this goroutine past the 2 KiB stack it starts with (TestSendStack).
			c.wwatch.start(ctx)
			c.unlockFrame(ctx)
		}
		if c.batches() && q.count.Load() > 1 {
			// Taken here, where the stack is shallowest: the pool may have to allocate
			// it, and an allocation deeper down could take this goroutine past the 2 KiB
			// stack it starts with (TestSendStack).
			q.takeBatch()
		}
		err = c.flushQueue(ctx, true)
		q.releaseBatch()
		c.releaseBuffer()
		c.msgLock.unlock()
	}
	if err == nil {
		return // flushQueue found the queue empty, and said so
	}
	q.mu.Lock()
	q.running = false
	q.clear()
	tooSlow := q.err != nil
	q.mu.Unlock()
	if tooSlow {
		c.Close(StatusPolicyViolation, tooSlowReason)
	}
}

// finishFrame writes q.rest, the end of the frame a writer began, answering to ctx, and
// takes its message out of the queue. It is called by writeQueue, which the writer
// handed msgLock and frameLock to; it lets go of frameLock, and of msgLock too if the
// write fails. It is not inlined, so that its frame is gone before the writes after it.
//
//go:noinline
func (c *Conn) finishFrame(ctx context.Context, q *sendQueue) error {
	rest, gen := q.rest, q.restGen
	q.rest = nil
	c.wwatch.start(ctx)
	n, err := c.nc.Write(rest)
	if err != nil {
		// Part of the frame went out before: whatever this write did, the stream is cut.
		err = c.writeResult(ctx, int64(n)+1, err)
	}
	c.unlockFrame(ctx)
	if err != nil {
		c.msgLock.unlock()
		return err
	}
	q.sent(1, gen)
	return nil
}

// flushQueue writes the queued messages until none is left, answering to ctx. The
// queue's goroutine (writer) marks the queue as no longer written once it is empty. A
// message that fails to go out stays first in the queue. The caller holds msgLock, and
// gives back the batch it may have taken (releaseBatch) after.
//
// Its frames, and those below it down to the write, are kept small: the writing
// goroutine must not grow past the 2 KiB stack it starts with (TestSendStack).
func (c *Conn) flushQueue(ctx context.Context, writer bool) error {
	q := c.sq.q.Load()
	for {
		m, gen, several, err := q.first(writer, c.batches())
		if err != nil || m == nil {
			return err
		}
		done := 0
		if several {
			done, err = c.writeBatch(ctx, q)
		} else if err = c.writePrepared(ctx, m); err == nil {
			done = 1
		}
		q.sent(done, gen)
		if err != nil {
			return err
		}
	}
}

// first returns the first queued message, the queue's generation, and whether others
// wait behind it that may go with it in a batch; nil once the queue is empty, which the
// queue's goroutine (writer) then no longer writes; or the error of every Send once
// the bound was passed.
func (q *sendQueue) first(writer, batches bool) (*PreparedMessage, uint64, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return nil, 0, false, q.err
	}
	if q.head == len(q.msgs) {
		if writer {
			q.running = false
		}
		q.emptied()
		return nil, 0, false, nil
	}
	return q.msgs[q.head], q.gen, batches && len(q.msgs)-q.head > 1, nil
}

// sent takes the first n messages out of the queue once they are written, unless the
// queue was cleared since first returned gen: the writing goroutine clears it when it
// gives up, which may happen while a writer of its own (lockMessage) is in a write.
func (q *sendQueue) sent(n int, gen uint64) {
	if n == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil || q.gen != gen {
		return // clear has dropped them with the rest
	}
	var bytes int64
	for _, m := range q.msgs[q.head : q.head+n] {
		bytes += int64(len(m.payload()))
	}
	clear(q.msgs[q.head : q.head+n])
	q.head += n
	q.bytes.Add(-bytes)
	q.count.Add(-int64(n))
	if q.head == len(q.msgs) {
		q.msgs, q.head = q.msgs[:0], 0
		if cap(q.msgs) > 256 {
			q.msgs = nil // a burst is over: keep no large queue
		}
	}
}

// A server Conn writes several queued messages with one system call: their prepared
// frames, as they are, in one writev. A batch holds the frame lock for one write, so a
// pong or a close frame waits for maxBatchBytes at most (or for one larger message, as
// it would for any write of it). A client masks each frame into its own buffer, so it
// writes them one by one; so does a Conn with write coalescing, whose held frames must
// go first, and one over TLS or HTTP/2, where one writev would still be a write a frame.
const (
	maxBatch      = 32
	maxBatchBytes = 64 << 10
)

// batch is the room a batch is written from, pooled: a Conn holds one only while it writes.
type batch struct {
	msgs   [maxBatch]*PreparedMessage
	frames [maxBatch][]byte // the frames of msgs, as this Conn sends them
	vec    [maxBatch][]byte // what bufs consumes
	bufs   net.Buffers
	raw    rawVec // a writer's writev straight to the socket
}

var batches = sync.Pool{New: func() any { return new(batch) }}

// clear makes b hold no message.
func (b *batch) clear() {
	clear(b.msgs[:])
	clear(b.frames[:])
	b.bufs = nil
}

// takeBatch gives q a batch from the pool, unless it has one. The caller holds msgLock.
func (q *sendQueue) takeBatch() {
	if q.batch == nil {
		q.batch = batches.Get().(*batch)
	}
}

// releaseBatch gives q's batch back to the pool, if it has one. The caller holds
// msgLock.
func (q *sendQueue) releaseBatch() {
	if q.batch != nil {
		batches.Put(q.batch)
		q.batch = nil
	}
}

// batches reports whether c writes queued messages in batches.
func (c *Conn) batches() bool { return !c.client && c.co == nil && !c.tlsWrites }

// collectBatch fills b with the first queued messages, as many as fit in maxBatch and
// maxBatchBytes (one at least), and their frames, and returns how many it holds. It is
// not inlined, so that its frame is gone before the write.
//
//go:noinline
func (c *Conn) collectBatch(q *sendQueue, b *batch) int {
	q.mu.Lock()
	n := copy(b.msgs[:], q.msgs[q.head:])
	q.mu.Unlock()
	return b.frame(c, n)
}

// frame puts the frames c sends of the first n messages of b in b.frames, as many as fit
// in maxBatchBytes (one at least), and returns how many.
func (b *batch) frame(c *Conn, n int) int {
	size, k := 0, 0
	for ; k < n; k++ {
		f, _, _ := b.msgs[k].form(c)
		if k > 0 && size+len(f) > maxBatchBytes {
			break
		}
		b.frames[k] = f
		size += len(f)
	}
	return k
}

// writeBatch writes the first queued messages, as many as fit in maxBatch and
// maxBatchBytes (one at least), with one writev, answering to ctx as a write of one
// message does, and returns how many went out whole. A write that ctx cut between two
// frames leaves the Conn usable, as it leaves it between two messages; one cut inside a
// frame closes it. The caller holds msgLock.
//
// It is one function with the write, and no deeper than writePrepared's path, so that
// the writing goroutine stays within 2 KiB on its first write, whose context watch
// allocates (TestSendStack).
func (c *Conn) writeBatch(ctx context.Context, q *sendQueue) (int, error) {
	q.takeBatch()
	b := q.batch
	k := c.collectBatch(q, b)
	if err := c.lockFrame(ctx); err != nil {
		b.clear()
		return 0, err
	}
	c.wwatch.start(ctx)
	b.bufs = append(b.vec[:0], b.frames[:k]...)
	wrote, err := b.bufs.WriteTo(c.nc)
	done := k
	if err != nil {
		done = 0
		for rest := wrote; done < k && int64(len(b.frames[done])) <= rest; done++ {
			rest -= int64(len(b.frames[done]))
		}
		if wrote > 0 && wrote == frameBytes(b.frames[:done]) && cut(ctx) && !c.tlsWrites && !c.isClosed() {
			err = ctx.Err()
		} else {
			err = c.writeResult(ctx, wrote, err)
		}
	}
	b.clear()
	c.unlockFrame(ctx)
	return done, err
}

// frameBytes returns the length of frames, together.
func frameBytes(frames [][]byte) int64 {
	var n int64
	for _, f := range frames {
		n += int64(len(f))
	}
	return n
}

// lockMessage takes msgLock for a message of the caller's, like lock, and first writes
// what Send queued, answering to ctx: the queue's messages came first.
func (c *Conn) lockMessage(ctx context.Context) error {
	if err := c.lock(ctx, &c.msgLock); err != nil {
		return err
	}
	if q := c.sq.q.Load(); q != nil && (q.count.Load() > 0 || q.failed.Load()) {
		err := c.flushQueue(ctx, false)
		q.releaseBatch()
		if err != nil {
			c.releaseBuffer()
			c.msgLock.unlock()
			return err
		}
	}
	return nil
}
