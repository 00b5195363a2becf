package websocket

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handOffsOf returns how many goroutines of its own c's queue has had.
func handOffsOf(c *Conn) int {
	q := c.sq.q.Load()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.handOffs
}

// waitWritersIdle waits until no writer runs, yielding between looks; the test's deadline
// bounds the wait.
func waitWritersIdle() {
	for {
		writers.mu.Lock()
		running := writers.running
		writers.mu.Unlock()
		if running == 0 {
			return
		}
		runtime.Gosched()
	}
}

// TestSendWriters broadcasts with Send to server Conns over TCP whose peers read: every
// peer gets every message, in order; the writers write them all, so that no Conn gets a
// goroutine of its own; and the writers end once nothing is queued.
func TestSendWriters(t *testing.T) {
	if !rawWrites {
		t.Skip("the writers write sockets on Linux only")
	}
	const n, messages = 64, 16
	servers := make([]*Conn, n)
	clients := make([]*Conn, n)
	for i := range n {
		a, b := tcpPair(t)
		servers[i], clients[i] = conns(t, a, b, nil)
	}
	ctx := waitContext(t)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for i := range messages {
				_, msg, err := c.Read(ctx)
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, uint32(i), binary.BigEndian.Uint32(msg))
			}
		})
	}
	for i := range messages {
		m := numbered(t, i, 128)
		for _, c := range servers {
			require.NoError(t, c.Send(m))
		}
	}
	wg.Wait()
	for i, c := range servers {
		assert.Zero(t, handOffsOf(c), "Conn %d had a goroutine of its own", i)
	}
	waitWritersIdle()
}

// TestSendWritersSlowPeer has one writer (GOMAXPROCS=1 when it starts) meet a Conn whose
// socket takes only part of a message: the writer hands the Conn to a goroutine of its
// own, which finishes the frame, and goes on to write the next Conn's message.
func TestSendWritersSlowPeer(t *testing.T) {
	if !rawWrites {
		t.Skip("the writers write sockets on Linux only")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b := tcpPair(t)
	slow, slowPeer := conns(t, a, b, nil)
	smallBuffers(slow, slowPeer)
	a, b = tcpPair(t)
	fast, fastPeer := conns(t, a, b, nil)
	ctx := waitContext(t)

	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	slow.sq.max = 4 << 20
	require.NoError(t, slow.Send(mustPrepare(t, MessageBinary, big)))
	require.NoError(t, fast.Send(numbered(t, 1, 64)))
	_, msg, err := fastPeer.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), binary.BigEndian.Uint32(msg))

	_, msg, err = slowPeer.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, big, msg)
	assert.Equal(t, 1, handOffsOf(slow), "the slow Conn's goroutines")
	assert.Zero(t, handOffsOf(fast), "the fast Conn's goroutines")
	waitWritersIdle()
}
