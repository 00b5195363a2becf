package websocket

import (
	"context"
	"sync/atomic"
)

// mutex is a lock whose waiters can give up: a call waiting to read or write stops when
// its context ends or the Conn closes, which sync.Mutex cannot do. Taking a free mutex is
// one compare-and-swap and allocates nothing; the channel that waiters sleep on is made
// the first time one has to.
type mutex struct {
	state atomic.Int32
	// wake holds at most one wake-up, posted by unlock when goroutines may be waiting.
	// A waiter that gives up may leave it unused; the next waiter then wakes once for
	// nothing and looks again.
	wake atomic.Pointer[chan struct{}]
}

// The states of a mutex.
const (
	unlocked  int32 = iota
	locked          // and no goroutine waits
	contended       // locked, and goroutines may be waiting
)

func (m *mutex) tryLock() bool { return m.state.CompareAndSwap(unlocked, locked) }

// lock takes m, or gives up and reports false once ctx is done or closed is closed.
func (m *mutex) lock(ctx context.Context, closed <-chan struct{}) bool {
	if m.tryLock() {
		return true
	}
	wake := m.wakeChan()
	for {
		// Mark m contended, so that its unlock posts a wake-up; if it was unlocked
		// meanwhile, it is ours (and its unlock posts a wake-up that may be for nobody).
		if m.state.Swap(contended) == unlocked {
			return true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		case <-closed:
			return false
		}
	}
}

func (m *mutex) unlock() {
	if m.state.Swap(unlocked) == contended {
		// A waiter made the channel before it marked m contended.
		select {
		case *m.wake.Load() <- struct{}{}:
		default: // a wake-up is waiting to be taken already
		}
	}
}

// wakeChan returns the channel waiters sleep on, making it if no goroutine has waited yet.
func (m *mutex) wakeChan() chan struct{} {
	if p := m.wake.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{}, 1)
	if m.wake.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *m.wake.Load()
}
