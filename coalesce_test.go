package websocket

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeCountingConn counts the writes made on a connection.
type writeCountingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// newCoalescingPeer puts a server Conn, with write coalescing if asked, in front of a raw
// peer, counting the Conn's writes.
func newCoalescingPeer(t *testing.T, coalesce bool) (*rawPeer, *writeCountingConn) {
	a, b := net.Pipe()
	cc := &writeCountingConn{Conn: a}
	conn := newConn(cc, bufio.NewReader(cc), false, "")
	conn.closeTimeout = time.Second
	if coalesce {
		conn.coalesceWrites()
	}
	return startRawPeer(t, b, conn), cc
}

// pipelined returns n text messages as a client sends them, in one write.
func pipelined(p *rawPeer, n int) []byte {
	var wire []byte
	for i := range n {
		wire = append(wire, p.encode(confText(fmt.Sprintf("request %d", i)))...)
	}
	return wire
}

// TestCoalescePipelined answers 20 requests that arrived in one read: with coalescing
// the answers leave together, without it one write each; either way all of them arrive,
// in order.
func TestCoalescePipelined(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		t.Run(fmt.Sprintf("coalesce=%v", coalesce), func(t *testing.T) {
			const n = 20
			p, cc := newCoalescingPeer(t, coalesce)
			p.write(pipelined(p, n))
			ctx := context.Background()
			for range n {
				typ, msg, err := p.conn.Read(ctx)
				require.NoError(t, err)
				require.NoError(t, p.conn.Write(ctx, typ, append([]byte("answer to "), msg...)))
			}
			for i := range n {
				f := p.next()
				assert.Equal(t, fmt.Sprintf("answer to request %d", i), string(f.payload))
			}
			if coalesce {
				// The held answers and the last one: one writev, which net.Pipe takes as
				// one write per buffer.
				assert.LessOrEqual(t, cc.writes.Load(), int32(2))
			} else {
				assert.Equal(t, int32(n), cc.writes.Load())
			}
		})
	}
}

// TestCoalesceFlushBeforeWait holds an answer while a second request is buffered: once
// that one is read and the Conn waits for more, the answer must be on its way, though no
// other write follows.
func TestCoalesceFlushBeforeWait(t *testing.T) {
	p, _ := newCoalescingPeer(t, true)
	p.write(pipelined(p, 2))
	ctx := context.Background()
	_, _, err := p.conn.Read(ctx)
	require.NoError(t, err)
	require.NoError(t, p.conn.Write(ctx, MessageText, []byte("first answer")))
	_, _, err = p.conn.Read(ctx)
	require.NoError(t, err)

	p.readLoop() // waits for input that never comes
	assert.Equal(t, "first answer", string(p.next().payload))
}

// TestCoalesceNothingBuffered sends at once what is written while no input is buffered.
func TestCoalesceNothingBuffered(t *testing.T) {
	p, _ := newCoalescingPeer(t, true)
	require.NoError(t, p.conn.Write(context.Background(), MessageText, []byte("unprompted")))
	assert.Equal(t, "unprompted", string(p.next().payload))

	p.write(pipelined(p, 1))
	_, _, err := p.conn.Read(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.conn.Write(context.Background(), MessageText, []byte("answer")))
	assert.Equal(t, "answer", string(p.next().payload))
}

// TestCoalesceClose sends held answers before the close frame, and before CloseNow closes
// the connection: a Write that returned nil is not lost. CloseNow sends them with a write
// that does not wait, which a TCP socket offers.
func TestCoalesceClose(t *testing.T) {
	for _, closeNow := range []bool{false, true} {
		t.Run(fmt.Sprintf("closeNow=%v", closeNow), func(t *testing.T) {
			var p *rawPeer
			if closeNow {
				a, b := tcpPair(t)
				conn := newConn(a, nil, false, "")
				conn.coalesceWrites()
				p = startRawPeer(t, b, conn)
			} else {
				p, _ = newCoalescingPeer(t, true)
			}
			holdAnswer(t, p)

			done := make(chan error, 1)
			if closeNow {
				go func() { done <- p.conn.CloseNow() }()
			} else {
				go func() { done <- p.conn.Close(StatusNormalClosure, "bye") }()
			}
			assert.Equal(t, "held answer", string(p.next().payload))
			if closeNow {
				p.expectEnd()
			} else {
				assert.Equal(t, opClose, p.next().op)
				p.send(confClose(1000, ""))
			}
			require.NoError(t, <-done)
		})
	}
}

// TestCoalescePongAfterHeld has a ping arrive between two pipelined requests while the
// answer to the first is held: the reader's pong takes the answer with it, after it,
// since that answer was written first.
func TestCoalescePongAfterHeld(t *testing.T) {
	p, _ := newCoalescingPeer(t, true)
	var wire []byte
	for _, f := range []frame{confText("request 0"), confPing("are you there"), confText("request 1")} {
		wire = append(wire, p.encode(f)...)
	}
	p.write(wire)
	ctx := context.Background()
	_, _, err := p.conn.Read(ctx)
	require.NoError(t, err)
	require.NoError(t, p.conn.Write(ctx, MessageText, []byte("held answer")))
	require.Positive(t, p.conn.co.n.Load(), "the answer was not held")
	_, msg, err := p.conn.Read(ctx) // answers the ping on its way
	require.NoError(t, err)
	assert.Equal(t, "request 1", string(msg))

	f := p.next()
	assert.Equal(t, opText, f.op)
	assert.Equal(t, "held answer", string(f.payload))
	f = p.next()
	assert.Equal(t, opPong, f.op)
	assert.Equal(t, "are you there", string(f.payload))
}

// holdAnswer has p's coalescing Conn read the first of two pipelined requests and write
// "held answer", which it holds since the second is buffered.
func holdAnswer(t *testing.T, p *rawPeer) {
	t.Helper()
	p.write(pipelined(p, 2))
	_, _, err := p.conn.Read(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.conn.Write(context.Background(), MessageText, []byte("held answer")))
	require.Positive(t, p.conn.co.n.Load(), "the answer was not held")
}

// TestCloseNowNeverWaits calls CloseNow while frames are held and another goroutine has
// the frame lock: it must close the connection at once, not wait for the lock.
func TestCloseNowNeverWaits(t *testing.T) {
	p, _ := newCoalescingPeer(t, true)
	holdAnswer(t, p)
	require.True(t, p.conn.frameLock.tryLock()) // as if a writer were blocked in a write

	done := make(chan error, 1)
	go func() { done <- p.conn.CloseNow() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-waitContext(t).Done():
		require.FailNow(t, "CloseNow waited for the frame lock")
	}
	p.conn.frameLock.unlock()
}

// TestCoalesceConcurrentWriters has other goroutines write while the reader answers
// pipelined requests: every message arrives, whatever was held when.
func TestCoalesceConcurrentWriters(t *testing.T) {
	p, _ := newCoalescingPeer(t, true)
	ctx := context.Background()
	const requests, pushes = 200, 200
	go func() {
		for range requests / 20 {
			p.write(pipelined(p, 20))
		}
	}()
	errc := make(chan error, 2)
	go func() {
		for range requests {
			typ, msg, err := p.conn.Read(ctx)
			if err != nil {
				errc <- err
				return
			}
			if err := p.conn.Write(ctx, typ, msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	go func() {
		for i := range pushes {
			if err := p.conn.Write(ctx, MessageBinary, []byte{byte(i)}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	answers, pushed := 0, 0
	for answers+pushed < requests+pushes {
		f := p.next()
		if f.op == opBinary {
			assert.Equal(t, byte(pushed), f.payload[0], "pushes arrive in order")
			pushed++
		} else {
			assert.Equal(t, fmt.Sprintf("request %d", answers%20), string(f.payload))
			answers++
		}
	}
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)
}
