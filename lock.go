package websocket

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// mutex is a lock whose waiters can give up: a call waiting to read or write stops when
// its context ends or the Conn closes, which sync.Mutex cannot do. Taking a free mutex is
// one compare-and-swap and allocates nothing.
//
// Waiters are served in turn, and unlock hands the mutex straight to the first of them:
// a writer that releases the frame lock between two frames of a long message cannot take
// it back ahead of a control frame waiting for it.
//
// It earns its place against the obvious alternative, a channel of capacity 1 taken with
// a select on the context and the Conn's close (which hands over as well): with that
// channel instead, a 64-byte echo costs 7,238 instructions per round trip instead of
// 5,876 (+23 %), and 5,931 instead of 4,915 with Read and Write (+21 %), in
// bench/callgrind.sh at 05cc39f (three locks a round trip, each a select on the fast
// path against one compare-and-swap here).
type mutex struct {
	state atomic.Int32
	waits atomic.Pointer[waitQueue] // made the first time a goroutine has to wait
}

// The states of a mutex. Only a goroutine holding the queue's lock moves it out of
// contended.
const (
	unlocked  int32 = iota
	locked          // and no goroutine waits
	contended       // locked, and goroutines wait in the queue
)

// waitQueue holds the goroutines waiting for a mutex, first come first.
type waitQueue struct {
	mu    sync.Mutex
	turns []chan struct{} // closed to hand the mutex over
}

func (m *mutex) tryLock() bool { return m.state.CompareAndSwap(unlocked, locked) }

// lock takes m, or gives up and reports false once ctx is done or closed is closed.
func (m *mutex) lock(ctx context.Context, closed <-chan struct{}) bool {
	if m.tryLock() {
		return true
	}
	q := m.queue()
	q.mu.Lock()
	for !m.state.CompareAndSwap(locked, contended) && m.state.Load() != contended {
		if m.tryLock() { // unlocked meanwhile
			q.mu.Unlock()
			return true
		}
	}
	turn := make(chan struct{})
	q.turns = append(q.turns, turn)
	q.mu.Unlock()

	select {
	case <-turn:
		return true
	case <-ctx.Done():
	case <-closed:
	}
	q.mu.Lock()
	select {
	case <-turn:
		// Handed over while giving up: pass it on.
		q.mu.Unlock()
		m.unlock()
		return false
	default:
	}
	q.turns = slices.DeleteFunc(q.turns, func(c chan struct{}) bool { return c == turn })
	if len(q.turns) == 0 {
		m.state.Store(locked) // still held, by whoever has it, and no one waits now
	}
	q.mu.Unlock()
	return false
}

func (m *mutex) unlock() {
	if !m.state.CompareAndSwap(locked, unlocked) {
		m.unlockSlow()
	}
}

// unlockSlow is unlock of a mutex that is not simply locked: waiters, or a bug.
func (m *mutex) unlockSlow() {
	if m.state.Load() == unlocked {
		// Only the holder moves the mutex out of locked or contended: this is a bug of
		// ours, which must not pass silently as it would corrupt the state.
		panic("websocket: internal error: unlock of an unlocked mutex")
	}
	// Contended: a waiter made the queue before it said so.
	q := m.waits.Load()
	q.mu.Lock()
	if len(q.turns) == 0 {
		// Every waiter gave up since this unlock found the mutex contended.
		m.state.Store(unlocked)
	} else {
		turn := q.turns[0]
		q.turns = slices.Delete(q.turns, 0, 1)
		if len(q.turns) == 0 {
			m.state.Store(locked)
		}
		close(turn) // the mutex stays locked: it is the first waiter's now
	}
	q.mu.Unlock()
}

// queue returns m's wait queue, making it if no goroutine has waited yet.
func (m *mutex) queue() *waitQueue {
	if q := m.waits.Load(); q != nil {
		return q
	}
	m.waits.CompareAndSwap(nil, new(waitQueue))
	return m.waits.Load()
}
