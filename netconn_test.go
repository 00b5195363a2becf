package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests check the net.Conn adapter the way golang.org/x/net/nettest's TestConn
// checks a net.Conn, written for this module, which requires testify alone.

// netConnPairs make two Conns joined by one transport: net.Pipe, which has no buffer,
// and loopback TCP, which has the kernel's.
var netConnPairs = []struct {
	name string
	pair func(t *testing.T) (server, client *Conn)
}{
	{"pipe", pipePair},
	{"tcp", func(t *testing.T) (*Conn, *Conn) {
		a, b := tcpPair(t)
		server, client := newConn(a, bufio.NewReader(a), false, ""), newConn(b, bufio.NewReader(b), true, "")
		t.Cleanup(func() {
			server.CloseNow()
			client.CloseNow()
		})
		return server, client
	}},
}

// requireTimeout checks that a call returned as a net.Conn call past its deadline does.
func requireTimeout(t *testing.T, n int, err error) {
	t.Helper()
	require.Error(t, err)
	assert.Zero(t, n)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	ne, ok := err.(net.Error)
	require.True(t, ok, "%T is not a net.Error", err)
	assert.True(t, ne.Timeout())
}

// TestNetConnBasicIO copies a megabyte through a pair of adapters and back, with io.Copy
// on both sides, and ends with the closing handshake seen as io.EOF.
func TestNetConnBasicIO(t *testing.T) {
	for _, tr := range netConnPairs {
		t.Run(tr.name, func(t *testing.T) {
			server, client := tr.pair(t)
			s, c := NetConn(server, MessageBinary), NetConn(client, MessageBinary)
			data := make([]byte, 1<<20)
			for i := range data {
				data[i] = byte(rand.Uint32())
			}

			echoed := make(chan error, 1)
			go func() {
				_, err := io.Copy(s, s) // until the client's close, read as io.EOF
				echoed <- err
			}()
			sent := make(chan error, 1)
			go func() {
				// An odd buffer size, so that writes and reads do not line up.
				_, err := io.CopyBuffer(c, struct{ io.Reader }{bytes.NewReader(data)}, make([]byte, 7001))
				sent <- err
			}()
			got := make([]byte, len(data))
			_, err := io.ReadFull(c, got)
			require.NoError(t, err)
			require.NoError(t, <-sent)
			require.True(t, bytes.Equal(data, got), "the bytes came back changed")

			require.NoError(t, c.Close())
			require.NoError(t, <-echoed, "the echo should end at io.EOF")
			assert.NoError(t, s.Close(), "the peer closed first: the handshake took place")
			_, err = s.Write([]byte("x"))
			assert.ErrorIs(t, err, net.ErrClosed)
			assert.ErrorIs(t, c.Close(), net.ErrClosed)
		})
	}
}

// TestNetConnPartialReads reads a message larger than the read buffer in small pieces, and
// checks that the adapter streams it rather than holding it whole.
func TestNetConnPartialReads(t *testing.T) {
	server, client := pipePair(t)
	server.SetReadLimit(0)
	s := NetConn(server, MessageBinary)
	const size = 16 << 20
	data := pattern(size)
	sent := make(chan error, 1)
	go func() {
		sent <- client.Write(context.Background(), MessageBinary, data)
		client.Write(context.Background(), MessageBinary, []byte("next"))
	}()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	buf := make([]byte, 1000)
	read := 0
	for read < size {
		n, err := s.Read(buf[:min(len(buf), size-read)])
		require.NoError(t, err)
		require.Positive(t, n)
		require.True(t, bytes.Equal(data[read:read+n], buf[:n]), "at byte %d", read)
		read += n
	}
	runtime.ReadMemStats(&after)
	require.NoError(t, <-sent)
	if !raceEnabled { // under -race, sync.Pool drops buffers at random
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(size/4), "reading a 16 MiB message allocated as much as the message")
	}

	n, err := s.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "next", string(buf[:n]), "the next message continues the stream")
}

// TestNetConnDeadlines sets deadlines in the past, in the future and cleared, on reads
// and writes, before a call and while it blocks.
func TestNetConnDeadlines(t *testing.T) {
	for _, tr := range netConnPairs {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, s net.Conn)
			}{
				{"read past", func(t *testing.T, s net.Conn) {
					require.NoError(t, s.SetReadDeadline(aLongTimeAgo))
					n, err := s.Read(make([]byte, 10))
					requireTimeout(t, n, err)
				}},
				{"write past", func(t *testing.T, s net.Conn) {
					require.NoError(t, s.SetWriteDeadline(aLongTimeAgo))
					n, err := s.Write([]byte("never"))
					requireTimeout(t, n, err)
				}},
				{"both past", func(t *testing.T, s net.Conn) {
					require.NoError(t, s.SetDeadline(aLongTimeAgo))
					n, err := s.Write([]byte("never"))
					requireTimeout(t, n, err)
					n, err = s.Read(make([]byte, 10))
					requireTimeout(t, n, err)
				}},
				{"read future", func(t *testing.T, s net.Conn) {
					// Nothing is sent: the read blocks until the deadline passes.
					require.NoError(t, s.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
					n, err := s.Read(make([]byte, 10))
					requireTimeout(t, n, err)
				}},
				{"read set while blocked", func(t *testing.T, s net.Conn) {
					done := make(chan error, 1)
					go func() {
						_, err := s.Read(make([]byte, 10))
						done <- err
					}()
					// Whether the read has blocked yet or not, it must end.
					require.NoError(t, s.SetReadDeadline(aLongTimeAgo))
					requireTimeout(t, 0, <-done)
				}},
				{"write future", func(t *testing.T, s net.Conn) {
					// The peer does not read: the write blocks once the transport's
					// buffers are full, and the deadline passes.
					require.NoError(t, s.SetWriteDeadline(time.Now().Add(20*time.Millisecond)))
					var err error
					for err == nil {
						_, err = s.Write(make([]byte, 64<<10))
					}
					requireTimeout(t, 0, err)
				}},
				{"write set while blocked", func(t *testing.T, s net.Conn) {
					done := make(chan error, 1)
					go func() {
						var err error
						for err == nil {
							_, err = s.Write(make([]byte, 64<<10))
						}
						done <- err
					}()
					require.NoError(t, s.SetWriteDeadline(aLongTimeAgo))
					requireTimeout(t, 0, <-done)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					server, client := tr.pair(t)
					s, c := NetConn(server, MessageBinary), NetConn(client, MessageBinary)
					tc.run(t, s)

					// Cleared, the deadline no longer fails calls; a round trip works if
					// the deadline cut no frame in half, and the Conn is closed if it did.
					require.NoError(t, s.SetDeadline(time.Time{}))
					go io.Copy(io.Discard, c)
					_, err := s.Write([]byte("after"))
					if err != nil {
						require.ErrorIs(t, err, net.ErrClosed)
						return
					}
					go c.Write([]byte("back")) // net.Pipe has no buffer
					buf := make([]byte, 10)
					n, err := s.Read(buf)
					require.NoError(t, err)
					assert.Equal(t, "back", string(buf[:n]))
					s.Close()
				})
			}
		})
	}
}

// TestNetConnDeadlineBetweenFrames lets a read deadline pass between two frames of a
// message: once it is cleared, the message goes on where it stopped.
func TestNetConnDeadlineBetweenFrames(t *testing.T) {
	p := newRawPeer(t, false)
	s := NetConn(p.conn, MessageBinary)
	p.send(frame{op: opBinary, payload: []byte("hello ")})
	buf := make([]byte, 100)
	n, err := s.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "hello ", string(buf[:n]))

	require.NoError(t, s.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	n, err = s.Read(buf)
	requireTimeout(t, n, err)

	require.NoError(t, s.SetReadDeadline(time.Time{}))
	p.send(frame{fin: true, op: opContinuation, payload: []byte("world")})
	n, err = s.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "world", string(buf[:n]))
}

// TestNetConnDeadlineMidFrame lets a read deadline pass in the middle of a frame. The
// stream must not lose its place: the next read returns the rest of the frame, or, if
// the Conn could not resume, an error; never bytes out of order.
func TestNetConnDeadlineMidFrame(t *testing.T) {
	p := newRawPeer(t, false)
	s := NetConn(p.conn, MessageBinary)
	whole := p.encode(frame{fin: true, op: opBinary, payload: []byte("abcdefghij")})
	cut := len(whole) - 6
	p.write(whole[:cut])
	buf := make([]byte, 100)
	n, err := s.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "abcd", string(buf[:n]))

	require.NoError(t, s.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	n, err = s.Read(buf)
	requireTimeout(t, n, err)

	require.NoError(t, s.SetReadDeadline(time.Time{}))
	p.write(whole[cut:])
	n, err = s.Read(buf)
	if err != nil {
		require.ErrorIs(t, err, net.ErrClosed)
		return
	}
	assert.Equal(t, "efghij", string(buf[:n]))
}

// TestNetConnPeerClose checks what reads return after each kind of close from the peer:
// io.EOF for a normal end of the stream, an error with the peer's code otherwise.
func TestNetConnPeerClose(t *testing.T) {
	for _, tc := range []struct {
		code StatusCode
		eof  bool
	}{
		{StatusNormalClosure, true},
		{StatusNoStatusReceived, true}, // a close frame without a code
		{StatusGoingAway, false},
		{StatusInternalError, false},
		{4000, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			server, client := pipePair(t)
			s := NetConn(server, MessageBinary)
			closed := make(chan error, 1)
			go func() {
				client.Write(context.Background(), MessageBinary, []byte("last"))
				closed <- client.Close(tc.code, "")
			}()
			buf := make([]byte, 10)
			n, err := s.Read(buf)
			require.NoError(t, err)
			require.Equal(t, "last", string(buf[:n]), "the messages before the close are read first")
			for range 2 { // and the end stays
				_, err = s.Read(buf)
				if tc.eof {
					require.Equal(t, io.EOF, err)
				} else {
					require.Error(t, err)
					require.NotErrorIs(t, err, io.EOF)
					require.Equal(t, tc.code, CloseStatus(err))
				}
			}
			require.NoError(t, <-closed)
			_, err = s.Write([]byte("x"))
			assert.ErrorIs(t, err, net.ErrClosed)
		})
	}
}

// TestNetConnWrongType fails the connection with 1003 when a message of the other type
// arrives.
func TestNetConnWrongType(t *testing.T) {
	server, client := pipePair(t)
	s := NetConn(server, MessageBinary)
	peerRead := make(chan error, 1)
	go func() {
		client.Write(context.Background(), MessageText, []byte("text"))
		_, _, err := client.Read(context.Background())
		peerRead <- err
	}()
	_, err := s.Read(make([]byte, 10))
	require.Error(t, err)
	assert.Equal(t, StatusUnsupportedData, protocolCode(err))
	assert.Equal(t, StatusUnsupportedData, CloseStatus(<-peerRead), "the peer is told why")
	_, err = s.Read(make([]byte, 10))
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestNetConnText carries text messages, and refuses to send bytes that are not UTF-8.
func TestNetConnText(t *testing.T) {
	server, client := pipePair(t)
	s, c := NetConn(server, MessageText), NetConn(client, MessageText)
	_, err := c.Write([]byte{'a', 0xff})
	require.ErrorIs(t, err, errTextNotUTF8)
	go c.Write([]byte("héllo"))
	buf := make([]byte, 10)
	n, err := s.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "héllo", string(buf[:n]))

	n, err = NetConn(server, 0).Read(buf)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, errBadMessageType)
}

// TestNetConnConcurrentClose closes an adapter from several goroutines while others read
// and write: every call returns, one Close does the handshake, the rest say it is closed.
func TestNetConnConcurrentClose(t *testing.T) {
	for _, tr := range netConnPairs {
		t.Run(tr.name, func(t *testing.T) {
			server, client := tr.pair(t)
			s, c := NetConn(server, MessageBinary), NetConn(client, MessageBinary)
			peer := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, c)
				peer <- err
			}()

			var wg sync.WaitGroup
			var readErr, writeErr error
			wg.Go(func() {
				_, readErr = s.Read(make([]byte, 10))
			})
			wg.Go(func() {
				for writeErr == nil {
					_, writeErr = s.Write(make([]byte, 1000))
				}
			})
			closeErrs := make(chan error, 4)
			for range cap(closeErrs) {
				wg.Go(func() { closeErrs <- s.Close() })
			}
			wg.Wait()
			close(closeErrs)
			nils := 0
			for err := range closeErrs {
				if err == nil {
					nils++
				} else {
					assert.ErrorIs(t, err, net.ErrClosed)
				}
			}
			assert.Equal(t, 1, nils, "one Close does the handshake")
			assert.ErrorIs(t, readErr, net.ErrClosed)
			assert.ErrorIs(t, writeErr, net.ErrClosed)
			assert.NoError(t, <-peer, "the peer reads the close as io.EOF")
		})
	}
}

// TestNetConnConcurrentIO reads and writes from several goroutines at once: every byte
// arrives once.
func TestNetConnConcurrentIO(t *testing.T) {
	server, client := netConnPairs[1].pair(t)
	s, c := NetConn(server, MessageBinary), NetConn(client, MessageBinary)
	const writers, writes, size = 4, 50, 1000
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range writes {
				_, err := c.Write(bytes.Repeat([]byte{1}, size))
				assert.NoError(t, err)
			}
		})
	}
	var mu sync.Mutex
	total := 0
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			buf := make([]byte, 1+rand.IntN(3000))
			for {
				n, err := s.Read(buf)
				mu.Lock()
				total += n
				mu.Unlock()
				if err != nil {
					assert.Equal(t, io.EOF, err)
					return
				}
				assert.Equal(t, bytes.Repeat([]byte{1}, n), buf[:n])
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Close())
	readers.Wait()
	assert.Equal(t, writers*writes*size, total)
}

// TestNetConnAddrs checks the addresses of a Conn and its adapter over TCP, before and
// after closing.
func TestNetConnAddrs(t *testing.T) {
	accepted := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if assert.NoError(t, err) {
			accepted <- c
		}
	}))
	defer srv.Close()
	client, _, err := Dial(waitContext(t), wsURL(srv), nil)
	require.NoError(t, err)
	defer client.CloseNow()
	server := <-accepted
	defer server.CloseNow()

	assert.Equal(t, srv.Listener.Addr().String(), server.LocalAddr().String())
	assert.Equal(t, srv.Listener.Addr().String(), client.RemoteAddr().String())
	assert.Equal(t, client.LocalAddr().String(), server.RemoteAddr().String())
	nc := NetConn(server, MessageBinary)
	assert.Equal(t, server.LocalAddr(), nc.LocalAddr())
	assert.Equal(t, server.RemoteAddr(), nc.RemoteAddr())

	server.CloseNow()
	assert.Equal(t, client.LocalAddr().String(), server.RemoteAddr().String(), "still known once closed")
	assert.Equal(t, "tcp", nc.LocalAddr().Network())
	assert.ErrorIs(t, nc.SetDeadline(time.Time{}), nil)
	require.ErrorIs(t, nc.Close(), net.ErrClosed, "closed under it, without a handshake")
	assert.True(t, errors.Is(nc.SetDeadline(time.Time{}), net.ErrClosed))
}
