package websocket

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMutexTryLock(t *testing.T) {
	var m mutex
	require.True(t, m.tryLock())
	assert.False(t, m.tryLock(), "held")
	m.unlock()
	assert.True(t, m.tryLock(), "released")
}

// TestMutexHandsOver blocks goroutines in lock and checks that unlock hands the mutex to
// the first of them: the goroutine that released it cannot take it back ahead of them.
func TestMutexHandsOver(t *testing.T) {
	var m mutex
	require.True(t, m.tryLock())
	first := make(chan bool)
	go func() { first <- m.lock(context.Background(), nil) }()
	waitWaiters(t, &m, 1)
	second := make(chan bool)
	go func() { second <- m.lock(context.Background(), nil) }()
	waitWaiters(t, &m, 2)

	m.unlock()
	assert.False(t, m.tryLock(), "taken back ahead of the waiters")
	assert.True(t, <-first)
	m.unlock()
	assert.False(t, m.tryLock(), "taken back ahead of the second waiter")
	assert.True(t, <-second)
	m.unlock()
	assert.True(t, m.tryLock(), "free once no one waits")
}

// TestMutexWaiterGivesUp checks that a waiter stops when its context ends or the Conn's
// closed channel closes, and that a waiter that gave up leaves no one stranded: the
// next one is still woken by unlock.
func TestMutexWaiterGivesUp(t *testing.T) {
	for _, by := range []string{"context", "closed"} {
		t.Run(by, func(t *testing.T) {
			var m mutex
			require.True(t, m.tryLock())
			ctx, cancel := context.WithCancel(context.Background())
			closed := make(chan struct{})
			gaveUp := make(chan bool)
			go func() { gaveUp <- m.lock(ctx, closed) }()
			waitWaiters(t, &m, 1)
			if by == "context" {
				cancel()
			} else {
				close(closed)
			}
			assert.False(t, <-gaveUp)
			cancel()

			got := make(chan bool)
			go func() { got <- m.lock(context.Background(), nil) }()
			waitWaiters(t, &m, 1)
			m.unlock()
			assert.True(t, <-got)
			m.unlock()
			assert.True(t, m.tryLock(), "free once no one waits")
		})
	}
}

// TestMutexExcludes has goroutines take the mutex many times, some of them with contexts
// that end while they wait, and checks that no two ever hold it at once (the race
// detector watches the counter too) and that every lock that succeeded was counted.
func TestMutexExcludes(t *testing.T) {
	var m mutex
	var held, count, succeeded int
	var smu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				ctx, cancel := context.WithCancel(context.Background())
				switch (g + i) % 5 {
				case 0:
					cancel() // may give up, or may find the mutex free
				case 1:
					// Ends while the call waits, or hands the mutex over, or not at all:
					// the give-up paths race with unlock.
					go cancel()
				}
				if m.lock(ctx, nil) {
					held++
					if held != 1 {
						t.Errorf("%d goroutines hold the mutex", held)
					}
					count++
					held--
					m.unlock()
					smu.Lock()
					succeeded++
					smu.Unlock()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, succeeded, count)
	assert.GreaterOrEqual(t, succeeded, 8*2000*3/5, "three calls in five have a context that does not end")
}

// waitWaiters waits until n goroutines wait in m's queue. It fails the test, instead of
// hanging it, if they are not all there by the deadline of waitContext.
func waitWaiters(t *testing.T, m *mutex, n int) {
	t.Helper()
	wait := waitContext(t)
	for {
		k := 0
		if q := m.waits.Load(); q != nil {
			q.mu.Lock()
			k = len(q.turns)
			q.mu.Unlock()
			if k >= n {
				return
			}
		}
		if wait.Err() != nil {
			require.FailNow(t, fmt.Sprintf("%d of %d goroutines wait for the mutex: %v", k, n, wait.Err()))
		}
		runtime.Gosched()
	}
}

// TestUnlockOfUnlockedMutexPanics checks that a bug of ours that unlocks a free mutex is
// caught where it happens instead of corrupting the state, also once a goroutine has
// waited for it and made its queue.
func TestUnlockOfUnlockedMutexPanics(t *testing.T) {
	var m mutex
	assert.Panics(t, m.unlock)
	require.True(t, m.tryLock())
	done, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, m.lock(done, nil)) // waits, and gives up at once
	require.NotNil(t, m.waits.Load())
	m.unlock()
	assert.Panics(t, m.unlock)
}
