package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeSyscalls returns the write system calls the process has made, from /proc/self/io.
func writeSyscalls(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	require.NoError(t, err)
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}

// TestSendBatchesWrites queues many messages on a server Conn over TCP while a Writer
// holds it, and counts the write system calls of the process once the Writer closes: the
// queue leaves in a few writev calls, not one write a message.
func TestSendBatchesWrites(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts write system calls in /proc/self/io")
	}
	a, b := tcpPair(t)
	server, client := conns(t, a, b, nil)
	ctx := waitContext(t)
	const n = 64
	w, err := server.Writer(ctx, MessageBinary) // the queue waits behind it
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, server.Send(numbered(t, i, 128)))
	}
	before := writeSyscalls(t)
	require.NoError(t, w.Close())
	_, msg, err := client.Read(ctx)
	require.NoError(t, err)
	require.Empty(t, msg, "the Writer's message")
	for i := range n {
		_, msg, err := client.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, uint32(i), binary.BigEndian.Uint32(msg))
	}
	writes := writeSyscalls(t) - before
	t.Logf("%d write system calls for the Writer's message and %d queued", writes, n)
	assert.Less(t, writes, int64(n/4), "the queued messages were written one by one")
}

// TestSendBatchCut cuts the context of a batch's write once the peer has read part of
// it: between two frames, the messages written are done, the others wait, and the Conn
// stays usable, as between two messages written one by one; inside a frame, the Conn is
// closed.
func TestSendBatchCut(t *testing.T) {
	const size = 100
	frameLen := len(numbered(t, 0, size).frame)
	for _, tc := range []struct {
		name   string
		read   int // bytes of the batch the peer reads before the cut
		usable bool
	}{
		{"between frames", frameLen, true},
		{"inside a frame", frameLen + 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, raw := serverOverPipe(t)
			// Hold msgLock, as lockMessage does: the queue waits for this test's flush.
			require.NoError(t, conn.lock(context.Background(), &conn.msgLock))
			for i := range 4 {
				require.NoError(t, conn.Send(numbered(t, i, size)))
			}
			ctx, cancel := context.WithCancel(context.Background())
			flushed := make(chan error, 1)
			go func() { flushed <- conn.flushQueue(ctx, false) }()
			_, err := io.ReadFull(raw, make([]byte, tc.read))
			require.NoError(t, err)
			cancel()
			err = <-flushed
			conn.releaseBuffer()
			conn.msgLock.unlock()

			if !tc.usable {
				assert.ErrorIs(t, err, net.ErrClosed)
				<-conn.closed
				return
			}
			assert.ErrorIs(t, err, context.Canceled)
			assert.False(t, conn.isClosed(), "closed by a cut between two frames")
			assert.Equal(t, 3*size, conn.Buffered(), "the first message is not counted as sent")
			br := bufio.NewReader(raw)
			for i := 1; i < 4; i++ {
				f, err := readRawFrame(br)
				require.NoError(t, err)
				assert.Equal(t, uint32(i), binary.BigEndian.Uint32(f.payload))
			}
		})
	}
}

// TestSendAllocations checks that Send allocates nothing on average: bursts of messages
// queued and written on a server Conn, batched or one by one.
func TestSendAllocations(t *testing.T) {
	for _, burst := range []int{1, 16} {
		t.Run(fmt.Sprint(burst), func(t *testing.T) {
			c := newConn(&discardConn{}, nil, false, "")
			defer c.CloseNow()
			m := mustPrepare(t, MessageBinary, make([]byte, 128))
			ctx := context.Background()
			run := func() {
				for range burst {
					if err := c.Send(m); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.Write(ctx, MessageBinary, nil); err != nil { // after the queue
					t.Fatal(err)
				}
			}
			run()
			assert.Zero(t, testing.AllocsPerRun(100, run))
		})
	}
}

// BenchmarkSend sends bursts of messages to one server Conn over loopback TCP, whose
// client reads them all, and reports the time and the allocations per message.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{128, 16 << 10} {
		for _, burst := range []int{1, 16} {
			b.Run(fmt.Sprintf("%d/burst=%d", size, burst), func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(b, err)
				defer ln.Close()
				accepted := make(chan net.Conn, 1)
				go func() {
					c, _ := ln.Accept()
					accepted <- c
				}()
				nc, err := net.Dial("tcp", ln.Addr().String())
				require.NoError(b, err)
				sc := <-accepted
				server := newConn(sc, nil, false, "")
				client := newConn(nc, nil, true, "")
				defer client.CloseNow()
				defer server.CloseNow()
				server.sq.max = 1 << 30
				m := mustPrepare(b, MessageBinary, make([]byte, size))
				ctx := context.Background()
				got := make(chan struct{}, 1)
				go func() {
					for i := 1; ; i++ {
						if _, _, err := client.Read(ctx); err != nil {
							return
						}
						if i%burst == 0 {
							got <- struct{}{}
						}
					}
				}()
				b.ReportAllocs()
				for b.Loop() {
					for range burst {
						if err := server.Send(m); err != nil {
							b.Fatal(err)
						}
					}
					<-got
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/message")
			})
		}
	}
}

// TestSendLargeThenSmall sends a message larger than the socket takes at once to a server
// Conn over TCP, then small ones, which wait and go out in a batch: the peer gets them
// whole and in order, and the pong that answers its ping meanwhile.
func TestSendLargeThenSmall(t *testing.T) {
	a, b := tcpPair(t)
	server, client := conns(t, a, b, nil)
	smallBuffers(server, client)
	ctx := waitContext(t)
	big := pattern(1 << 20)
	server.sq.max = 4 << 20
	require.NoError(t, server.Send(mustPrepare(t, MessageBinary, big)))
	for i := range 3 {
		require.NoError(t, server.Send(numbered(t, i, 64)))
	}
	go server.Read(ctx) // answers the ping
	pinged := make(chan error, 1)
	go func() { pinged <- client.Ping(ctx) }()

	_, msg, err := client.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, big, msg)
	for i := range 3 {
		_, msg, err := client.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, uint32(i), binary.BigEndian.Uint32(msg))
	}
	go client.Read(ctx) // sees the pong, if it has not come yet
	require.NoError(t, <-pinged)
}

// TestSendAllocationsTCP checks that Send allocates nothing on average on a server Conn
// over TCP whose peer reads everything: its goroutine and its writes included.
func TestSendAllocationsTCP(t *testing.T) {
	a, b := tcpPair(t)
	server := newConn(a, nil, false, "")
	defer server.CloseNow()
	go io.Copy(io.Discard, b)
	m := mustPrepare(t, MessageBinary, make([]byte, 128))
	require.NoError(t, server.Send(m))
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		if err := server.Send(m); err != nil {
			t.Fatal(err)
		}
	}))
}

// TestSendStack guards the stack of the goroutine that writes Send's queue, on each of
// its paths to a write that waits for the peer: ending a frame that a writer began,
// writing one message, and writing a batch. Each such goroutine must stay within the 2 KiB it starts with: a frame too many
// doubles it, and copying it costs more than the write (it took broadcast's deliveries
// from about 2,000 instructions to 2,800 once). See stack_test.go for how stacks are
// counted.
func TestSendStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation makes every frame larger")
	}
	const conns = 100
	large := mustPrepare(t, MessageBinary, make([]byte, 1<<20))
	small := mustPrepare(t, MessageBinary, make([]byte, 16<<10))
	for _, tc := range []struct {
		name string
		in   string // the function the goroutine waits in
		// send leaves c's writing goroutine waiting for peer in a write
		send func(t *testing.T, c *Conn, peer net.Conn)
	}{
		{"the end of a frame a writer began", "finishFrame", func(t *testing.T, c *Conn, _ net.Conn) {
			require.NoError(t, c.Send(large))
		}},
		{"one message", "flushQueue", func(t *testing.T, c *Conn, peer net.Conn) {
			require.NoError(t, c.Send(large)) // a writer begins it, the goroutine ends it
			require.NoError(t, c.Send(large)) // and then writes this one
			_, err := io.ReadFull(peer, make([]byte, len(large.frame)))
			require.NoError(t, err)
		}},
		{"a batch", "writeBatch", func(t *testing.T, c *Conn, peer net.Conn) {
			require.NoError(t, c.Send(large)) // its write waits for the peer
			for range 16 {
				require.NoError(t, c.Send(small)) // and these for it
			}
			_, err := io.ReadFull(peer, make([]byte, len(large.frame)))
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers := make([]*Conn, conns)
			peers := make([]net.Conn, conns)
			for i := range servers {
				a, b := tcpPair(t)
				a.(*net.TCPConn).SetWriteBuffer(16 << 10)
				b.(*net.TCPConn).SetReadBuffer(16 << 10)
				servers[i], peers[i] = newConn(a, nil, false, ""), b
				servers[i].sq.max = 64 << 20
				t.Cleanup(func() { servers[i].CloseNow() })
			}
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			defer collectAtStartingStack(t, 2048)()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i, c := range servers {
				tc.send(t, c, peers[i])
			}
			waitInIO(t, conns, tc.in)
			runtime.ReadMemStats(&after)
			perConn := float64(after.StackInuse-before.StackInuse) / conns
			t.Logf("%.0f bytes of stack per writing goroutine", perConn)
			assert.Less(t, perConn, 3072.0, "the writing goroutine's stack grew past 2 KiB")
		})
	}
}

// pattern returns n bytes that repeat only every 256, so that a byte out of place shows.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}
