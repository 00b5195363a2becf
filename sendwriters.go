package websocket

import (
	"runtime"
	"sync"
)

// The writers: a few goroutines shared by every Conn of the process, at most one per
// processor (GOMAXPROCS when the first of them started), that write the messages Send
// queued on server Conns over TCP or Unix sockets (not TLS, without CoalesceWrites). A
// Conn whose queue starts to fill waits in a list; a writer takes it, writes its queue a
// batch at a time with system calls that never wait for room in the socket, and moves
// on. A Conn whose socket is full, whose messages wait behind another goroutine's, or
// that is closing, is handed to a goroutine of its own (writeQueue), which waits as
// Send's goroutine always did: a slow peer never holds a shared writer. A broadcast to
// peers that keep up so starts a few goroutines for all its Conns, where it started one
// a Conn, while its writes still run beside the broadcasting goroutine, on the other
// processors.
//
// The writers exist only while Conns wait: the last one ends when the list is empty, so
// that nothing runs when nothing is queued.
var writers writerSet

// writerSet is the list of Conns waiting for a writer, and the writers.
type writerSet struct {
	mu      sync.Mutex
	ready   []*Conn // ready[head:] wait for a writer, oldest first; a Conn is in it once at most
	head    int
	running int // writers started and not ended
	max     int // the most writers: GOMAXPROCS when the first of those running started
}

// turnBatches is how many batches a writer writes on one Conn before it puts it back at
// the end of the list, when more wait: a Conn that Send keeps feeding does not keep a
// writer from the others for long. Long turns are cheaper than short ones: a socket
// written in one go wakes its peer less often, and the kernel's share of each delivery
// is smaller (natively, 1,000 receivers, 60 messages of 16 KiB back to back: 3,167 ns
// of server CPU per delivery with 64 batches a turn, 3,667 with 8, about 4,400 with 1).
const turnBatches = 64

// writeSoon has a writer write c's queue, which has just started to fill (q.running was
// set). The caller has checked that c writes ready batches (writesReady).
func (c *Conn) writeSoon() {
	w := &writers
	w.mu.Lock()
	if w.head > 0 && len(w.ready) == cap(w.ready) {
		w.ready = w.ready[:copy(w.ready, w.ready[w.head:])]
		clear(w.ready[len(w.ready):cap(w.ready)])
		w.head = 0
	}
	w.ready = append(w.ready, c)
	start := false
	switch {
	case w.running == 0:
		w.max = runtime.GOMAXPROCS(0)
		start = true
	case w.running < w.max && len(w.ready)-w.head > w.running:
		start = true // more Conns wait than writers run
	}
	if start {
		w.running++
	}
	w.mu.Unlock()
	if start {
		go writeReady()
	}
}

// writeReady is a writer: it writes the queues of the Conns in the list until the list
// is empty, then ends.
func writeReady() {
	b := batches.Get().(*batch)
	w := &writers
	for {
		w.mu.Lock()
		if w.head == len(w.ready) {
			w.ready, w.head = w.ready[:0], 0
			if cap(w.ready) > 4096 {
				w.ready = nil // a burst is over: keep no large list
			}
			w.running--
			w.mu.Unlock()
			break
		}
		c := w.ready[w.head]
		w.ready[w.head] = nil
		w.head++
		w.mu.Unlock()
		c.writeTurn(b)
	}
	batches.Put(b)
}

// writesReady reports whether c's queue is written by the writers: a server Conn, which
// writes its messages' prepared frames as they are, straight to a socket.
func (c *Conn) writesReady() bool { return rawWrites && c.rb.raw != nil && c.batches() }

// What a writer's turn on a Conn came to.
const (
	turnEmpty   = iota // the queue is empty
	turnMore           // the writer wrote turnBatches batches, and more wait
	turnWait           // the socket is full, or the Conn failed: its goroutine takes over
	turnPartway        // the socket took part of a frame: its goroutine finishes it, with the locks
)

// writeTurn writes c's queue, for a writer, as long as the socket takes it without
// waiting, and then lets c go: empty, back to the list, or to a goroutine of its own
// (handOff) that waits for what keeps it.
func (c *Conn) writeTurn(b *batch) {
	q := c.sq.q.Load()
	for {
		if !c.msgLock.tryLock() {
			// Another goroutine writes a message (and wrote what was queued before it):
			// what came after waits for it.
			c.handOff(q)
			return
		}
		if !c.frameLock.tryLock() {
			c.msgLock.unlock()
			c.handOff(q) // a control frame, which may wait for the peer
			return
		}
		switch c.writeBatches(q, b) {
		case turnPartway:
			c.handOff(q) // it holds the locks now
			return
		case turnWait:
			c.unlockReady()
			c.handOff(q)
			return
		case turnMore:
			c.unlockReady()
			writers.requeue(c)
			return
		}
		c.unlockReady()
		// Once the locks are free, a Send that finds running set counts on this writer:
		// the queue is let go only if it is still empty.
		q.mu.Lock()
		if q.head == len(q.msgs) && q.err == nil {
			q.running = false
			q.emptied()
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
	}
}

// requeue puts c back at the end of the list, its queue still running.
func (w *writerSet) requeue(c *Conn) {
	w.mu.Lock()
	w.ready = append(w.ready, c)
	w.mu.Unlock()
}

// unlockReady lets go of the locks a writer took. A pong that waited for the frame lock
// meanwhile is sent by a goroutine of its own: a writer must not wait for the peer.
func (c *Conn) unlockReady() {
	c.frameLock.unlock()
	if c.pongWaiting.Load() {
		go c.sendWaitingPong(c.sq.q.Load().writeContext())
	}
	c.msgLock.unlock()
}

// writeBatches writes c's queue in batches, each with one system call that does not wait
// for room in the socket, until the queue is empty, the socket takes less than a batch,
// or turnBatches batches went out. The caller holds msgLock and frameLock; it keeps them
// if a frame went out in part.
func (c *Conn) writeBatches(q *sendQueue, b *batch) int {
	for range turnBatches {
		if c.closeSent || c.isClosed() {
			return turnWait
		}
		q.mu.Lock()
		if q.err != nil {
			q.mu.Unlock()
			return turnWait
		}
		if q.head == len(q.msgs) {
			q.mu.Unlock()
			return turnEmpty
		}
		gen := q.gen
		n := copy(b.msgs[:], q.msgs[q.head:])
		q.mu.Unlock()
		k := b.frame(c, n)
		wrote := b.raw.writev(c.rb.raw, b.frames[:k])
		done, rest := 0, wrote
		for done < k && len(b.frames[done]) <= rest {
			rest -= len(b.frames[done])
			done++
		}
		if done < k && rest > 0 {
			// The rest of the frame must follow before anything else (RFC 6455 §5.4).
			q.rest, q.restGen = b.frames[done][rest:], gen
		}
		b.clear()
		q.sent(done, gen)
		if done < k {
			if q.rest != nil {
				return turnPartway
			}
			return turnWait
		}
	}
	q.mu.Lock()
	more := q.head < len(q.msgs)
	q.mu.Unlock()
	if more {
		return turnMore
	}
	return turnEmpty
}
