package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests messages going through a Conn: round trips whole and streamed, frames as
// the Writer cuts them, readers and writers taking turns, and what streaming allocates.

var roundTripSizes = []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}

// payloadOf returns n bytes of recognisable text.
func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	for _, size := range roundTripSizes {
		for _, typ := range []MessageType{MessageText, MessageBinary} {
			t.Run(fmt.Sprintf("%v/%d", typ, size), func(t *testing.T) {
				server, client := pipePair(t)
				want := payloadOf(size)
				for _, dir := range []struct {
					name     string
					from, to *Conn
				}{{"client to server", client, server}, {"server to client", server, client}} {
					errc := make(chan error, 1)
					go func() { errc <- dir.from.Write(context.Background(), typ, want) }()
					gotTyp, got, err := dir.to.Read(context.Background())
					require.NoError(t, err, dir.name)
					require.NoError(t, <-errc, dir.name)
					assert.Equal(t, typ, gotTyp, dir.name)
					assert.Equal(t, want, got, dir.name)
				}
			})
		}
	}
}

func TestStreamRoundTrip(t *testing.T) {
	for _, size := range roundTripSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			server, client := pipePair(t)
			want := payloadOf(size)
			errc := make(chan error, 1)
			go func() {
				w, err := client.Writer(context.Background(), MessageText)
				if err != nil {
					errc <- err
					return
				}
				// Uneven pieces, so frames and writes do not line up.
				for p := want; len(p) > 0; {
					n := min(len(p), 1000)
					if _, err := w.Write(p[:n]); err != nil {
						errc <- err
						return
					}
					p = p[n:]
				}
				errc <- w.Close()
			}()
			typ, r, err := server.Reader(context.Background())
			require.NoError(t, err)
			assert.Equal(t, MessageText, typ)
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			require.NoError(t, <-errc)
			assert.Equal(t, want, got)
		})
	}
}

// wireOf returns the bytes a Conn in the given role sends for the messages.
func wireOf(t *testing.T, client bool, msgs ...[]byte) []byte {
	t.Helper()
	wc := &memConn{r: strings.NewReader("")}
	c := newConn(wc, bufio.NewReader(wc.r), client, "")
	for _, m := range msgs {
		require.NoError(t, c.Write(context.Background(), MessageBinary, m))
	}
	return wc.out.Bytes()
}

// TestReadChopped reads what the peer sent through readers that return one byte, or half
// of what was asked, at a time: frames must be reassembled whatever the chopping.
func TestReadChopped(t *testing.T) {
	chops := map[string]func(io.Reader) io.Reader{
		"OneByteReader": iotest.OneByteReader,
		"HalfReader":    iotest.HalfReader,
	}
	for _, size := range roundTripSizes {
		if size > 65536 && testing.Short() {
			continue
		}
		for name, chop := range chops {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				want := payloadOf(size)
				wire := wireOf(t, true, want, []byte("next"))
				wc := &memConn{r: chop(bytes.NewReader(wire))}
				server := newConn(wc, bufio.NewReader(wc.r), false, "")
				_, got, err := server.Read(context.Background())
				require.NoError(t, err)
				assert.Equal(t, want, got)
				_, got, err = server.Read(context.Background())
				require.NoError(t, err)
				assert.Equal(t, "next", string(got))
			})
		}
	}
}

// TestWriteNeverModifiesCallerSlice checks the client masks into its own buffer.
func TestWriteNeverModifiesCallerSlice(t *testing.T) {
	for _, size := range []int{10, writeBufferSize, 3*writeBufferSize + 7} {
		p := payloadOf(size)
		orig := bytes.Clone(p)
		wire := wireOf(t, true, p)
		assert.Equal(t, orig, p)
		assert.NotContains(t, string(wire), string(orig[:8]), "payload went out unmasked")
	}
}

func TestConcurrentWriters(t *testing.T) {
	server, client := pipePair(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := bytes.Repeat([]byte(fmt.Sprintf("w%d-m%d;", w, i)), 700) // over one buffer
				if w%2 == 0 {
					assert.NoError(t, client.Write(context.Background(), MessageText, msg))
					continue
				}
				wr, err := client.Writer(context.Background(), MessageText)
				if !assert.NoError(t, err) {
					return
				}
				for half := range 2 {
					_, err := wr.Write(msg[half*len(msg)/2 : (half+1)*len(msg)/2])
					assert.NoError(t, err)
				}
				assert.NoError(t, wr.Close())
			}
		}()
	}
	seen := map[string]bool{}
	for range writers * each {
		_, msg, err := server.Read(context.Background())
		require.NoError(t, err)
		unit := string(msg[:bytes.IndexByte(msg, ';')+1])
		require.Equal(t, strings.Repeat(unit, 700), string(msg), "message interleaved with another")
		seen[unit] = true
	}
	wg.Wait()
	assert.Len(t, seen, writers*each)
}

// writerFrames streams one message of the given type through a server's Writer, one
// Write of payloadOf(n) for each n in writes, and returns the frames the peer receives.
func writerFrames(t *testing.T, typ MessageType, writes ...int) []frame {
	t.Helper()
	p := newRawPeer(t, false)
	errc := make(chan error, 1)
	go func() {
		w, err := p.conn.Writer(context.Background(), typ)
		for _, n := range writes {
			if err == nil {
				_, err = w.Write(payloadOf(n))
			}
		}
		if err == nil {
			err = w.Close()
		}
		errc <- err
	}()
	var frames []frame
	for {
		f := p.next()
		frames = append(frames, f)
		if f.fin {
			break
		}
	}
	require.NoError(t, <-errc)
	return frames
}

func TestWriterFragments(t *testing.T) {
	frames := writerFrames(t, MessageText, 2*writeBufferSize+100)
	assert.Greater(t, len(frames), 1)
	assert.Equal(t, opText, frames[0].op)
	var got []byte
	for i, f := range frames {
		if i > 0 {
			assert.Equal(t, opContinuation, f.op, "frame %d", i)
		}
		assert.Equal(t, i == len(frames)-1, f.fin, "frame %d", i)
		got = append(got, f.payload...)
	}
	assert.Equal(t, payloadOf(2*writeBufferSize+100), got)
}

// TestWriterFrameSizes checks how a Writer cuts a message into frames: what fits its
// buffer goes out as one frame at Close, and once a small write has filled the buffer,
// large writes still go out whole as frames, not in buffer-sized pieces.
func TestWriterFrameSizes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []int
		frames []int
	}{
		{"a buffer's worth", []int{writeBufferSize}, []int{writeBufferSize}},
		{"a buffer's worth in pieces", []int{writeBufferSize - 8, 8}, []int{writeBufferSize}},
		{"more than a buffer's worth", []int{writeBufferSize + 1}, []int{writeBufferSize + 1, 0}},
		{"large writes after a small one", []int{100, 32 << 10, 32 << 10},
			[]int{writeBufferSize, 100 + 32<<10 - writeBufferSize, 32 << 10, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes []int
			for _, f := range writerFrames(t, MessageBinary, tc.writes...) {
				sizes = append(sizes, len(f.payload))
			}
			assert.Equal(t, tc.frames, sizes)
		})
	}
}

func TestZeroLength(t *testing.T) {
	server, client := pipePair(t)
	errc := make(chan error, 1)
	go func() {
		w, err := client.Writer(context.Background(), MessageBinary)
		if err == nil {
			err = w.Close()
		}
		if err == nil {
			err = client.Write(context.Background(), MessageText, nil)
		}
		errc <- err
	}()
	for _, want := range []MessageType{MessageBinary, MessageText} {
		typ, msg, err := server.Read(context.Background())
		require.NoError(t, err)
		assert.Equal(t, want, typ)
		assert.Empty(t, msg)
	}
	require.NoError(t, <-errc)
}

func TestFragmentedMessageWithControlFrames(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		t.Run(fmt.Sprintf("client=%v", connIsClient), func(t *testing.T) {
			p := newRawPeer(t, connIsClient)
			p.readLoop()
			p.send(
				frame{op: opText, payload: []byte("Hel")},
				frame{fin: true, op: opPing, payload: []byte("ping!")},
				frame{fin: true, op: opPong, payload: []byte("unsolicited")},
				frame{op: opContinuation, payload: []byte("lo, ")},
				frame{fin: true, op: opContinuation, payload: []byte("world")},
			)
			pong := p.next()
			assert.Equal(t, opPong, pong.op)
			assert.Equal(t, "ping!", string(pong.payload))
			r := p.nextRead()
			require.NoError(t, r.err)
			assert.Equal(t, MessageText, r.typ)
			assert.Equal(t, "Hello, world", string(r.msg))
		})
	}
}

func TestSecondReaderWaits(t *testing.T) {
	server, client := pipePair(t)
	require.True(t, server.readLock.tryLock()) // as if another goroutine were reading
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	_, _, err = server.Reader(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	server.readLock.unlock()

	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("turn")) }()
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "turn", string(msg))
	require.NoError(t, <-errc)
}

// TestWriteWaitsForOpenWriter checks that a Write waits while another goroutine's
// message is open, and that a waiting Write gives up when its context ends or the Conn
// closes.
func TestWriteWaitsForOpenWriter(t *testing.T) {
	server, client := pipePair(t)
	w, err := client.Writer(context.Background(), MessageText)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, client.Write(ctx, MessageText, []byte("never")), context.Canceled)

	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("second")) }()
	waitWaiters(t, &client.msgLock, 1)
	go func() {
		_, err := w.Write([]byte("first"))
		errc <- errors.Join(err, w.Close())
	}()
	for _, want := range []string{"first", "second"} {
		_, msg, err := server.Read(context.Background())
		require.NoError(t, err)
		assert.Equal(t, want, string(msg))
	}
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)

	_, err = client.Writer(context.Background(), MessageText)
	require.NoError(t, err)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("closed")) }()
	waitWaiters(t, &client.msgLock, 1)
	require.NoError(t, client.CloseNow())
	assert.ErrorIs(t, <-errc, net.ErrClosed)
}

// TestReaderDiscardsUnreadRest leaves a message half read and reads the next one, whole
// or streamed: the rest of the first is discarded, and its reader refused from then on,
// while the next message is still being streamed too.
func TestReaderDiscardsUnreadRest(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("next message streamed: %v", streamed), func(t *testing.T) {
			server, client := pipePair(t)
			errc := make(chan error, 1)
			go func() {
				errc <- errors.Join(
					client.Write(context.Background(), MessageText, payloadOf(10000)),
					client.Write(context.Background(), MessageBinary, []byte("second")))
			}()
			_, old, err := server.Reader(context.Background())
			require.NoError(t, err)
			buf := make([]byte, 10)
			_, err = io.ReadFull(old, buf)
			require.NoError(t, err)

			var typ MessageType
			var msg []byte
			if streamed {
				var r io.Reader
				typ, r, err = server.Reader(context.Background())
				require.NoError(t, err)
				n, err := old.Read(buf)
				assert.Zero(t, n)
				assert.ErrorIs(t, err, errReaderDiscarded, "while the next message is open")
				msg, err = io.ReadAll(r)
				require.NoError(t, err)
			} else {
				typ, msg, err = server.Read(context.Background())
				require.NoError(t, err)
			}
			assert.Equal(t, MessageBinary, typ)
			assert.Equal(t, "second", string(msg))
			require.NoError(t, <-errc)
			n, err := old.Read(buf) // the old reader is done, and says its message was cut
			assert.Zero(t, n)
			assert.ErrorIs(t, err, errReaderDiscarded)
		})
	}
}

// TestStreamingAllocations echoes messages over TCP through Reader and Writer with a
// buffer of the caller's, and counts the allocations of both ends.
func TestStreamingAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	client, a := acceptThrough(t, nil)
	server := a.conn

	for _, ctx := range []context.Context{context.Background(), waitContext(t)} {
		for _, size := range []int{16, 4096, 64 << 10} {
			payload := payloadOf(size)
			sbuf, cbuf := make([]byte, 8192), make([]byte, size)
			// The server's end echoes from a goroutine of its own, started once.
			next, echoed := make(chan bool), make(chan error)
			go func() {
				src := new(onlyReader)
				for <-next {
					typ, r, err := server.Reader(ctx)
					if err == nil {
						var w io.WriteCloser
						if w, err = server.Writer(ctx, typ); err == nil {
							src.Reader = r
							_, err = io.CopyBuffer(w, src, sbuf)
							err = errors.Join(err, w.Close())
						}
					}
					echoed <- err
				}
			}()
			roundTrip := func() {
				next <- true
				w, err := client.Writer(ctx, MessageBinary)
				require.NoError(t, err)
				_, err = w.Write(payload)
				require.NoError(t, err)
				require.NoError(t, w.Close())
				_, r, err := client.Reader(ctx)
				require.NoError(t, err)
				_, err = io.ReadFull(r, cbuf)
				require.NoError(t, err)
				require.NoError(t, <-echoed)
			}
			roundTrip() // the first message takes the pooled buffers and the watches
			allocs := testing.AllocsPerRun(50, roundTrip)
			next <- false
			assert.Equal(t, payload, cbuf)
			// A reader and a writer of its own for each message at each end, so that one
			// kept past its message cannot touch a later one; they come 64 to an
			// allocation (slab.go), which AllocsPerRun's average rounds to nothing.
			assert.Zero(t, allocs, "%d B, context %v", size, ctx)
		}
	}
}

// onlyReader hides the reader's other methods from io.CopyBuffer.
type onlyReader struct{ io.Reader }

// TestReadAllocatesOnlyItsMessage echoes messages over TCP through Read and Write, and
// counts the allocations of both ends: the two slices Read returns, nothing else.
func TestReadAllocatesOnlyItsMessage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	client, a := acceptThrough(t, nil)
	server := a.conn

	ctx := waitContext(t)
	for _, size := range []int{16, 4096, 64 << 10} {
		payload := payloadOf(size)
		next, echoed := make(chan bool), make(chan error)
		go func() {
			for <-next {
				typ, msg, err := server.Read(ctx)
				if err == nil {
					err = server.Write(ctx, typ, msg)
				}
				echoed <- err
			}
		}()
		var got []byte
		roundTrip := func() {
			next <- true
			require.NoError(t, client.Write(ctx, MessageBinary, payload))
			var err error
			_, got, err = client.Read(ctx)
			require.NoError(t, err)
			require.NoError(t, <-echoed)
		}
		roundTrip()
		allocs := testing.AllocsPerRun(50, roundTrip)
		next <- false
		assert.Equal(t, payload, got)
		// The two messages Read returns; a message larger than what one read of the
		// socket brings grows its slice with the bytes that arrive (read.go, room).
		want := 2.0
		if size > readBufferSize {
			want = 4
		}
		assert.Equal(t, want, allocs, "%d B", size)
	}
}
