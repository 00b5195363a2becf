package websocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSendOrder mixes Send with Write and WritePrepared from one goroutine: the peer gets
// the messages in the order they were given, and a Write returns once what was queued
// before it has gone out too.
func TestSendOrder(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		t.Run(fmt.Sprintf("client=%v", connIsClient), func(t *testing.T) {
			p := newRawPeer(t, connIsClient)
			c := p.conn
			ctx := context.Background()
			prep := func(s string) *PreparedMessage { return mustPrepare(t, MessageText, []byte(s)) }

			require.NoError(t, c.Send(prep("")))
			require.NoError(t, c.Write(ctx, MessageText, []byte("0")))
			assert.Equal(t, "", string(p.next().payload), "an empty message queued came after the next")
			assert.Equal(t, "0", string(p.next().payload))

			require.NoError(t, c.Send(prep("a")))
			require.NoError(t, c.Send(prep("b")))
			require.NoError(t, c.Write(ctx, MessageText, []byte("c")))
			assert.Zero(t, c.Buffered(), "Write returned before what was queued went out")
			require.NoError(t, c.Send(prep("d")))
			require.NoError(t, c.WritePrepared(ctx, prep("e")))
			assert.Zero(t, c.Buffered())
			require.NoError(t, c.Send(prep("f")))
			w, err := c.Writer(ctx, MessageText)
			require.NoError(t, err)
			assert.Zero(t, c.Buffered(), "Writer began before what was queued went out")
			_, err = w.Write([]byte("g"))
			require.NoError(t, err)
			require.NoError(t, w.Close())
			require.NoError(t, c.Send(prep("h")))

			var got []string
			for range 8 {
				got = append(got, string(p.next().payload))
			}
			assert.Equal(t, strings.Split("a b c d e f g h", " "), got)
		})
	}
}

// blockedPeer returns a server Conn whose peer reads nothing until the test reads from
// the returned reader: writes to it block.
func blockedPeer(t *testing.T, maxBuffered int) (*Conn, net.Conn, *bufio.Reader) {
	conn, raw := serverOverPipe(t)
	conn.sq.max = maxBuffered
	return conn, raw, bufio.NewReader(raw)
}

// TestSendBound fills the queue of a Conn whose peer does not read up to MaxBuffered,
// then one byte past it: that Send fails, the queue is dropped, and the Conn is closed
// with 1008 once the peer reads again, after the message whose write was in progress.
func TestSendBound(t *testing.T) {
	const bound = 1000
	conn, raw, br := blockedPeer(t, bound)
	first := mustPrepare(t, MessageBinary, make([]byte, 600))
	require.NoError(t, conn.Send(first)) // its write waits for the peer
	require.NoError(t, conn.Send(mustPrepare(t, MessageBinary, make([]byte, 300))))
	require.NoError(t, conn.Send(mustPrepare(t, MessageBinary, make([]byte, 100))))
	assert.Equal(t, bound, conn.Buffered(), "at the bound")

	err := conn.Send(mustPrepare(t, MessageBinary, make([]byte, 1)))
	require.Error(t, err, "one byte past the bound")
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, err, errTooSlow)
	assert.Zero(t, conn.Buffered(), "the queue was not dropped")
	assert.ErrorIs(t, conn.Send(mustPrepare(t, MessageBinary, nil)), errTooSlow, "a later Send")
	assert.ErrorIs(t, conn.Write(context.Background(), MessageText, nil), errTooSlow, "a later Write")

	// The write in progress was stopped before any byte left, or, if the peer read first,
	// ended: then comes the close frame, 1008, and nothing of the messages dropped.
	f := closeAfter(t, br, first)
	assert.Equal(t, StatusPolicyViolation, f.closeCode())
	assert.Equal(t, tooSlowReason, string(f.payload[2:]))
	_, err = raw.Write(encodeFrame(frame{fin: true, op: opClose, payload: f.payload[:2]}, true, 2))
	require.NoError(t, err)
	<-conn.closed
}

// TestSendAloneOverBound checks that a message larger than the bound is taken when the
// queue is empty, and that nothing more is.
func TestSendAloneOverBound(t *testing.T) {
	conn, raw, br := blockedPeer(t, 100)
	big := mustPrepare(t, MessageBinary, make([]byte, 500))
	require.NoError(t, conn.Send(big))
	assert.Equal(t, 500, conn.Buffered())
	assert.ErrorIs(t, conn.Send(mustPrepare(t, MessageBinary, nil)), errTooSlow, "an empty message past the bound")
	_ = raw
	assert.Equal(t, StatusPolicyViolation, closeAfter(t, br, big).closeCode())
}

// closeAfter reads the close frame the Conn sends once its queue passed the bound, after
// the message whose write was in progress, if the peer read it first.
func closeAfter(t *testing.T, br *bufio.Reader, inProgress *PreparedMessage) frame {
	t.Helper()
	f, err := readRawFrame(br)
	require.NoError(t, err)
	if f.op != opClose {
		require.Equal(t, inProgress.payload(), f.payload, "a message dropped was sent")
		f, err = readRawFrame(br)
		require.NoError(t, err)
	}
	require.Equal(t, opClose, f.op)
	return f
}

// TestSendDrains checks that the goroutine writing the queue ends once it is empty, and
// that Buffered counts down to zero.
func TestSendDrains(t *testing.T) {
	conn, _, br := blockedPeer(t, 0)
	for i := range 3 {
		require.NoError(t, conn.Send(mustPrepare(t, MessageText, []byte(fmt.Sprint(i)))))
	}
	assert.Equal(t, 3, conn.Buffered())
	for i := range 3 {
		f, err := readRawFrame(br)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), string(f.payload))
	}
	// The frame was read whole before the writer counted it: a Write waits for it.
	require.NoError(t, conn.Send(mustPrepare(t, MessageText, []byte("3"))))
	go func() { readRawFrame(br); readRawFrame(br) }()
	require.NoError(t, conn.Write(context.Background(), MessageText, []byte("4")))
	assert.Zero(t, conn.Buffered())
}

// TestSendEndsWithConn closes a Conn while Send's queue waits for a peer that does not
// read: the queue is dropped and its goroutine ends (TestMain checks).
func TestSendEndsWithConn(t *testing.T) {
	conn, _, _ := blockedPeer(t, 0)
	for range 3 {
		require.NoError(t, conn.Send(mustPrepare(t, MessageText, []byte("x"))))
	}
	require.NoError(t, conn.CloseNow())
	assert.ErrorIs(t, conn.Send(mustPrepare(t, MessageText, nil)), net.ErrClosed)
}

// TestSlowConsumer broadcasts with Send to fast peers and to one that stops reading: the
// slow one is closed with 1008 (or, if its frame was cut, without a close frame) once
// its queue passes the bound, with Buffered never past the bound, while the fast ones
// get every message, in order.
func TestSlowConsumer(t *testing.T) {
	const fast, size, bound = 4, 4096, 64 << 10
	type peer struct {
		server *Conn
		client *Conn
		got    chan []byte
	}
	var peers []*peer
	for range fast + 1 {
		a, b := tcpPair(t)
		a.(*net.TCPConn).SetWriteBuffer(16 << 10)
		b.(*net.TCPConn).SetReadBuffer(16 << 10)
		server, client := conns(t, a, b, nil)
		server.sq.max = bound
		peers = append(peers, &peer{server: server, client: client, got: make(chan []byte, 1)})
	}
	slow := peers[fast]
	// The close frame cannot reach a peer that reads nothing: the Conn gives up on it
	// after the close timeout.
	slow.server.closeTimeout = 100 * time.Millisecond
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { // first, so that the readers end
		for _, p := range peers[:fast] {
			p.client.CloseNow()
		}
	}()
	for _, p := range peers[:fast] {
		wg.Go(func() {
			defer close(p.got)
			for {
				_, msg, err := p.client.Read(context.Background())
				if err != nil {
					return
				}
				p.got <- msg
			}
		})
	}

	ctx := waitContext(t)
	dropped := -1
	const after = 20 // messages sent once the slow peer was dropped
	for i := 0; dropped < 0 || i < dropped+after; i++ {
		require.Less(t, i, 100_000, "the slow peer was never dropped")
		msg := make([]byte, size)
		copy(msg, fmt.Sprint(i))
		m := mustPrepare(t, MessageBinary, msg)
		for _, p := range peers[:fast] {
			require.NoError(t, p.server.Send(m))
		}
		if dropped < 0 {
			if err := slow.server.Send(m); err != nil {
				assert.ErrorIs(t, err, errTooSlow)
				dropped = i
			}
			assert.LessOrEqual(t, slow.server.Buffered(), bound)
		}
		for _, p := range peers[:fast] {
			select {
			case got := <-p.got:
				require.Equal(t, msg, got)
			case <-ctx.Done():
				t.Fatal("a fast peer did not get its message")
			}
		}
	}
	assert.Greater(t, dropped, bound/size, "dropped before its queue was full")
	select {
	case <-slow.server.closed: // without waiting for the slow peer to read
	case <-ctx.Done():
		t.Fatal("the slow peer's Conn was not closed")
	}

	// The slow peer, reading at last, gets what was written before the drop, then the
	// close: 1008, or none if its frame was cut.
	for i := 0; ; i++ {
		_, msg, err := slow.client.Read(ctx)
		if err != nil {
			require.NoError(t, ctx.Err())
			assert.Contains(t, []StatusCode{StatusPolicyViolation, -1}, CloseStatus(err), "%v", err)
			break
		}
		require.Less(t, i, dropped)
		assert.Equal(t, fmt.Sprint(i), strings.TrimRight(string(msg), "\x00"))
	}
}

// numbered returns a prepared message of size bytes that begins with i.
func numbered(t *testing.T, i, size int) *PreparedMessage {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, uint32(i))
	return mustPrepare(t, MessageBinary, p)
}

// smallBuffers shrinks the kernel's buffers between a server and a client Conn over TCP,
// so that a few large messages fill them and the server's writes wait for the client.
func smallBuffers(server, client *Conn) {
	tcp := func(nc net.Conn) *net.TCPConn {
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		c, _ := nc.(*net.TCPConn)
		return c
	}
	if c := tcp(server.nc); c != nil {
		c.SetWriteBuffer(16 << 10)
	}
	if c := tcp(client.nc); c != nil {
		c.SetReadBuffer(16 << 10)
	}
}

// TestCloseSendsQueued calls Close while Send's queue waits for a client that does not
// read yet, and goes on calling Send until it fails: the client then gets every message
// Send took, in order, before the close frame, and Send fails with net.ErrClosed from the
// moment Close began.
func TestCloseSendsQueued(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		smallBuffers(server, client)
		server.sq.max = 64 << 20
		const big, n = 64 << 10, 8 // more than the buffers between them hold
		for i := range n {
			require.NoError(t, server.Send(numbered(t, i, big)))
		}
		closed := make(chan error, 1)
		go func() { closed <- server.Close(StatusNormalClosure, "bye") }()
		sent := n
		for ; ; sent++ {
			require.Less(t, sent, 100_000, "Send still takes messages")
			err := server.Send(numbered(t, sent, 16))
			if err != nil {
				assert.ErrorIs(t, err, net.ErrClosed)
				break
			}
			runtime.Gosched() // let Close begin
		}

		ctx := waitContext(t)
		for i := range sent {
			_, msg, err := client.Read(ctx)
			require.NoError(t, err, "message %d of %d", i, sent)
			require.Equal(t, uint32(i), binary.BigEndian.Uint32(msg))
		}
		_, _, err := client.Read(ctx)
		assert.Equal(t, StatusNormalClosure, CloseStatus(err), "%v", err)
		assert.NoError(t, <-closed)
		assert.ErrorIs(t, server.Send(numbered(t, 0, 16)), net.ErrClosed)
	})
}

// TestSendAfterCloseFrame calls Send once our close frame has reached the peer but the
// connection is still open (the peer has not answered, or a client waits for the server
// to close TCP): it fails with net.ErrClosed, since nothing may follow the close frame.
func TestSendAfterCloseFrame(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		for _, tc := range []struct {
			name string
			// begin makes conn send its close frame, which the raw peer then reads.
			begin func(conn *Conn, raw net.Conn) <-chan error
		}{
			{"Close", func(conn *Conn, _ net.Conn) <-chan error {
				done := make(chan error, 1)
				go func() { done <- conn.Close(StatusGoingAway, "") }()
				return done
			}},
			{"answering the peer's close", func(conn *Conn, raw net.Conn) <-chan error {
				done := make(chan error, 1)
				go func() {
					_, _, err := conn.Read(context.Background())
					done <- err
				}()
				_, err := raw.Write(encodeFrame(frame{fin: true, op: opClose, payload: []byte{0x03, 0xe9}}, !conn.client, 2))
				require.NoError(t, err)
				return done
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				server, client := tr.pair(t, nil)
				// The Conn under test is the client, whose raw peer is the server's
				// connection: after answering a close, a client waits for the server to
				// close TCP.
				conn, raw := client, server.nc
				if tc.name == "Close" {
					conn, raw = server, client.nc
				}
				require.NoError(t, conn.Send(mustPrepare(t, MessageText, []byte("before"))))
				br := bufio.NewReader(raw)
				f, err := readRawFrame(br)
				require.NoError(t, err)
				require.Equal(t, "before", string(f.payload))

				done := tc.begin(conn, raw)
				f, err = readRawFrame(br)
				require.NoError(t, err)
				require.Equal(t, opClose, f.op)
				assert.ErrorIs(t, conn.Send(mustPrepare(t, MessageText, []byte("after"))), net.ErrClosed)

				if tc.name == "Close" {
					_, err = raw.Write(encodeFrame(frame{fin: true, op: opClose, payload: f.payload}, true, int64(len(f.payload))))
					require.NoError(t, err)
					assert.NoError(t, <-done)
				} else {
					raw.Close()
					assert.Equal(t, StatusGoingAway, CloseStatus(<-done))
				}
			})
		}
	})
}

// TestCloseQueueBounded calls Close while Send's queue waits for a peer that never
// reads: Close gives up on the queue after the close timeout, and closes the Conn.
func TestCloseQueueBounded(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		smallBuffers(server, client)
		server.sq.max = 64 << 20
		server.closeTimeout = 50 * time.Millisecond
		for i := range 8 {
			require.NoError(t, server.Send(numbered(t, i, 64<<10)))
		}
		closed := make(chan error, 1)
		go func() { closed <- server.Close(StatusNormalClosure, "") }()
		select {
		case err := <-closed:
			assert.ErrorIs(t, err, net.ErrClosed)
		case <-waitContext(t).Done():
			t.Fatal("Close waits for a peer that does not read")
		}
		<-server.closed
	})
}

// TestCloseNowDropsQueued calls CloseNow while Send's queue waits for a client that does
// not read: it returns without waiting for the queue, nothing more is sent, and the
// client's reads end without a close frame.
func TestCloseNowDropsQueued(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		smallBuffers(server, client)
		server.sq.max = 64 << 20
		server.closeTimeout = time.Hour
		const n = 8
		for i := range n {
			require.NoError(t, server.Send(numbered(t, i, 64<<10)))
		}
		ctx := waitContext(t)
		closed := make(chan error, 1)
		go func() { closed <- server.CloseNow() }()
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("CloseNow waits for the queue")
		}
		assert.ErrorIs(t, server.Send(numbered(t, n, 16)), net.ErrClosed)
		for i := 0; ; i++ {
			_, msg, err := client.Read(ctx)
			if err != nil {
				assert.Equal(t, StatusCode(-1), CloseStatus(err), "%v", err)
				break
			}
			require.Less(t, i, n-1, "every queued message went out")
			assert.Equal(t, uint32(i), binary.BigEndian.Uint32(msg))
		}
	})
}

// TestSendQueueSentAfterClear checks that messages written before the queue was cleared
// are not taken out of what was queued after: the writing goroutine clears the queue when
// it gives up, which may happen while Write's own flush of the queue is in a write (seen
// once in the full suite: a slice bounds panic in sent).
func TestSendQueueSentAfterClear(t *testing.T) {
	old, err := NewPreparedMessage(MessageText, []byte("written before the clear"))
	require.NoError(t, err)
	queued, err := NewPreparedMessage(MessageText, []byte("queued after it"))
	require.NoError(t, err)
	q := &sendQueue{max: defaultMaxBuffered}
	q.msgs = []*PreparedMessage{old, old}
	q.count.Store(2)
	m, gen, _, err := q.first(false, false)
	require.NoError(t, err)
	require.Same(t, old, m)

	q.mu.Lock()
	q.clear()
	q.msgs = append(q.msgs, queued)
	q.count.Store(1)
	q.bytes.Store(int64(len(queued.payload())))
	q.mu.Unlock()

	require.NotPanics(t, func() { q.sent(2, gen) })
	assert.Equal(t, []*PreparedMessage{queued}, q.msgs[q.head:])
	assert.Equal(t, int64(1), q.count.Load())
}
