package websocket

import (
	"encoding/binary"
	"fmt"
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

	big := pattern(1 << 20)
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

// TestSendWritersOrder mixes Send with Write and WritePrepared on a server Conn over TCP
// while its peer reads and pings: the messages arrive in the order they were given,
// though the writers write the queue while Write and WritePrepared take it over, and
// every ping is answered.
func TestSendWritersOrder(t *testing.T) {
	const n, pings = 2000, 20
	a, b := tcpPair(t)
	server, client := conns(t, a, b, nil)
	server.sq.max = 64 << 20
	ctx := waitContext(t)
	go server.Read(ctx) // answers the pings
	got := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			_, msg, err := client.Read(ctx) // and, after the messages, sees the pongs
			if i == n || err != nil {
				got <- err
				return
			}
			if v := binary.BigEndian.Uint32(msg); v != uint32(i) {
				got <- fmt.Errorf("message %d arrived as number %d", v, i)
				return
			}
		}
	}()
	pinged := make(chan error, 1)
	go func() {
		for range pings {
			if err := client.Ping(ctx); err != nil {
				pinged <- err
				return
			}
		}
		pinged <- nil
	}()
	for i := range n {
		m := numbered(t, i, 100+i%300)
		switch i % 7 {
		case 3:
			require.NoError(t, server.Write(ctx, MessageBinary, m.payload()))
		case 5:
			require.NoError(t, server.WritePrepared(ctx, m))
		default:
			require.NoError(t, server.Send(m))
		}
	}
	require.NoError(t, <-pinged)
	require.NoError(t, server.Write(ctx, MessageText, nil)) // the client reader's last
	require.NoError(t, <-got)
	waitWritersIdle()
}
