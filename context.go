package websocket

import (
	"context"
	"net"
	"sync"
	"time"
	"unsafe"
)

// aLongTimeAgo is a deadline in the past: setting it wakes blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// ctxWatch makes I/O blocked in one direction of a connection, reading or writing,
// return once a context is done, by moving that direction's deadline into the past. It
// never closes the connection, so I/O cut short between frames can go on later.
//
// Its registration with a context stays from one call to the next while the context is
// the same, so a loop that reads, or writes, with one context pays for it once rather
// than per message. Contexts are told apart by their Done channel, which is what the
// registration waits on. start is called by the holder of the direction's lock.
type ctxWatch struct {
	nc   net.Conn
	ctx  context.Context // the context I/O answers to, nil for none
	done <-chan struct{} // Done of the context watched, nil for none

	// The context's callback runs on a goroutine of its own, and close may be called
	// from any goroutine.
	mu     sync.Mutex // guards the fields below
	stop   func() bool
	gen    uint64 // counts registrations: a callback acts only for its own
	moved  bool   // the current registration's callback moved the deadline
	closed bool

	write bool // watch the write deadline, else the read deadline; set once, by newConn
}

func (w *ctxWatch) setDeadline(t time.Time) {
	if w.write {
		w.nc.SetWriteDeadline(t)
	} else {
		w.nc.SetReadDeadline(t)
	}
}

// start makes I/O from now on answer to ctx. It is not inlined: its callers are on the
// path of every reader waiting for its peer, whose stack must stay small.
func (w *ctxWatch) start(ctx context.Context) {
	if sameContext(ctx, w.ctx) {
		return // as below, without asking ctx for its Done channel: a lock or an atomic load
	}
	done := ctx.Done()
	if done == w.done {
		w.ctx = ctx
		return // watched already; if it fired, the deadline is past and I/O fails at once
	}
	w.reset()
	w.ctx = ctx
	if done == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.done = done
	w.gen++
	gen := w.gen
	w.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gen == gen && !w.closed {
			w.setDeadline(aLongTimeAgo)
			w.moved = true
		}
	})
}

// follow is start with its common case inlined, for callers whose frames are not on the
// path of a reader waiting for its peer.
func (w *ctxWatch) follow(ctx context.Context) {
	if !sameContext(ctx, w.ctx) {
		w.start(ctx)
	}
}

// sameContext reports whether a and b are the same context value: the same dynamic type
// and the same data word. Comparing them with == would compare their values, which
// panics for a context type that is not comparable; a data word both hold is one value.
func sameContext(a, b context.Context) bool {
	type iface struct{ tab, data unsafe.Pointer }
	return *(*iface)(unsafe.Pointer(&a)) == *(*iface)(unsafe.Pointer(&b))
}

// current returns the context I/O in this direction answers to, or Background if none.
func (w *ctxWatch) current() context.Context {
	if w.ctx == nil {
		return context.Background()
	}
	return w.ctx
}

// reset ends the registration, undoing the deadline if the context moved it.
func (w *ctxWatch) reset() {
	w.ctx = nil
	if w.done == nil {
		return
	}
	w.mu.Lock()
	stop := w.stop
	w.stop = nil
	w.gen++ // a callback that has not run yet does nothing
	moved := w.moved
	w.moved = false
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	if moved {
		w.setDeadline(time.Time{})
	}
	w.done = nil
}

// close ends the registration for good, so that a long-lived context does not keep a
// closed connection alive.
func (w *ctxWatch) close() {
	w.mu.Lock()
	w.closed = true
	stop := w.stop
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// deadline sets this direction's deadline for I/O that answers to no context, such as
// the closing handshake's waits: it first ends the registration, so that a context
// ending now cannot move the deadline after it was set.
func (w *ctxWatch) deadline(t time.Time) {
	w.reset()
	w.setDeadline(t)
}

// cut reports whether ctx is done, and so whether it may have cut I/O short.
func cut(ctx context.Context) bool {
	return ctx.Done() != nil && ctx.Err() != nil
}
