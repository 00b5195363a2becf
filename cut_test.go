package websocket

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file checks the rule the package documents for contexts (doc.go, Concurrency):
// a call whose context ends before any byte of its message moved returns ctx.Err() and
// leaves the Conn usable; a write cut once part of its message is on the wire closes the
// Conn; a read cut short keeps what it had for the next read. Every test runs over each
// transport.

// readAll reads messages from c until an error, and sends each result on the channel.
func readAll(c *Conn) <-chan readOut {
	out := make(chan readOut, 16)
	go func() {
		defer close(out)
		for {
			typ, msg, err := c.Read(context.Background())
			out <- readOut{typ, msg, err}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// nextOut returns the next result of readAll, bounded so that a bug fails the test.
func nextOut(t *testing.T, reads <-chan readOut) readOut {
	t.Helper()
	select {
	case r, ok := <-reads:
		require.True(t, ok, "the read loop ended")
		return r
	case <-waitContext(t).Done():
		require.FailNow(t, "no read result in time")
	}
	return readOut{}
}

// TestWriterCutAfterItsFirstFrameClosesConn cuts a Writer's context once its first frame
// is out: the message cannot be finished, and no other message may start inside it, so
// the Conn must close rather than let the next Write interleave.
func TestWriterCutAfterItsFirstFrameClosesConn(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		reads := readAll(server)
		ctx, cancel := context.WithCancel(context.Background())
		w, err := client.Writer(ctx, MessageBinary)
		require.NoError(t, err)
		_, err = w.Write(payloadOf(5000)) // larger than the buffer: a frame of its own
		require.NoError(t, err)
		cancel()
		_, err = w.Write([]byte("more"))
		require.NoError(t, err) // buffered
		err = w.Close()
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, net.ErrClosed)
		_, err = w.Write([]byte("late"))
		assert.Error(t, err)

		assert.ErrorIs(t, client.Write(context.Background(), MessageText, []byte("next")), net.ErrClosed)
		r := nextOut(t, reads)
		require.Error(t, r.err, "the server read a message: %q", r.msg)
		assert.Zero(t, protocolCode(r.err), "the peer saw a protocol violation: %v", r.err)
	})
}

// TestCompressedWriteCutBetweenFramesClosesConn does the same to a compressed Write
// whose output takes several frames: its context ends once the first frame is written.
func TestCompressedWriteCutBetweenFramesClosesConn(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		ctx, cancel := context.WithCancel(context.Background())
		var writes atomic.Int32
		server, client := tr.pair(t, func(nc net.Conn) net.Conn {
			return &hookConn{Conn: nc, afterWrite: func(n int) {
				if n > 0 && writes.Add(1) == 1 {
					cancel()
				}
			}}
		})
		params := deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}
		server.useDeflate(params)
		client.useDeflate(params)
		reads := readAll(server)

		payload := make([]byte, 20000) // random bytes: compressed, still several frames
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		err := client.Write(ctx, MessageBinary, payload)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorIs(t, client.Write(context.Background(), MessageText, []byte("next")), net.ErrClosed)
		r := nextOut(t, reads)
		require.Error(t, r.err, "the server read a message of %d bytes", len(r.msg))
		assert.Zero(t, protocolCode(r.err), "the peer saw a protocol violation: %v", r.err)
	})
}

// cutAfterFirstRead returns a pair whose client's reads answer to the context returned,
// which ends as soon as the client's connection has returned bytes.
func cutAfterFirstRead(t *testing.T, tr transport) (ctx context.Context, server, client *Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	server, client = tr.pair(t, func(nc net.Conn) net.Conn {
		return &hookConn{Conn: nc, afterRead: func(n int) {
			if n > 0 {
				cancel()
			}
		}}
	})
	return ctx, server, client
}

// TestReadCutBetweenFragmentsKeepsMessage cuts a Read once the first fragment of a
// message has been consumed: the next Read, or Reader, must return the whole message, and
// then the next one.
func TestReadCutBetweenFragmentsKeepsMessage(t *testing.T) {
	for _, next := range []string{"Read", "Reader"} {
		t.Run(next, func(t *testing.T) {
			eachTransport(t, func(t *testing.T, tr transport) {
				ctx, server, client := cutAfterFirstRead(t, tr)
				// The server's frames are written by hand, as a peer that fragments.
				send := func(f frame) {
					go server.nc.Write(encodeFrame(f, false, int64(len(f.payload))))
				}
				send(frame{fin: false, op: opText, payload: []byte("hello ")})
				_, _, err := client.Read(ctx)
				require.ErrorIs(t, err, context.Canceled)

				send(frame{fin: true, op: opContinuation, payload: []byte("world")})
				var msg []byte
				if next == "Read" {
					_, msg, err = client.Read(waitContext(t))
				} else {
					var r io.Reader
					_, r, err = client.Reader(waitContext(t))
					require.NoError(t, err)
					msg, err = io.ReadAll(r)
				}
				require.NoError(t, err)
				assert.Equal(t, "hello world", string(msg))

				send(frame{fin: true, op: opText, payload: []byte("second")})
				_, msg, err = client.Read(waitContext(t))
				require.NoError(t, err)
				assert.Equal(t, "second", string(msg))
			})
		})
	}
}

// TestReadCutMidFrameKeepsMessage cuts a Read in the middle of a frame's payload.
func TestReadCutMidFrameKeepsMessage(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		ctx, server, client := cutAfterFirstRead(t, tr)
		payload := payloadOf(100)
		wire := encodeFrame(frame{fin: true, op: opBinary, payload: payload}, false, 100)
		go server.nc.Write(wire[:50])
		_, _, err := client.Read(ctx)
		require.ErrorIs(t, err, context.Canceled)
		go server.nc.Write(wire[50:])
		_, msg, err := client.Read(waitContext(t))
		require.NoError(t, err)
		assert.Equal(t, payload, msg)
	})
}

// TestStaleWriterAndReaderTouchNothing keeps a writer and a reader past their messages,
// until two messages later: their use must fail, or end, without touching the message
// in progress.
func TestStaleWriterAndReaderTouchNothing(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		reads := readAll(server)
		var first io.WriteCloser
		for i, msg := range []string{"a", "b"} {
			w, err := client.Writer(context.Background(), MessageText)
			require.NoError(t, err)
			if i == 0 {
				first = w
			}
			_, err = w.Write([]byte(msg))
			require.NoError(t, err)
			require.NoError(t, w.Close())
		}
		w, err := client.Writer(context.Background(), MessageText)
		require.NoError(t, err)
		_, err = first.Write([]byte("+STALE"))
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorIs(t, first.Close(), net.ErrClosed)
		_, err = w.Write([]byte("c"))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		for _, want := range []string{"a", "b", "c"} {
			r := nextOut(t, reads)
			require.NoError(t, r.err)
			assert.Equal(t, want, string(r.msg))
		}
	})
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		go func() {
			for _, msg := range []string{"one", "two", "three"} {
				client.Write(context.Background(), MessageText, []byte(msg))
			}
		}()
		var first io.Reader
		var got []string
		for i := range 3 {
			_, r, err := server.Reader(waitContext(t))
			require.NoError(t, err)
			if i == 0 {
				first = r
			}
			if i < 2 {
				msg, err := io.ReadAll(r)
				require.NoError(t, err)
				got = append(got, string(msg))
				continue
			}
			n, err := first.Read(make([]byte, 10))
			assert.Zero(t, n)
			assert.ErrorIs(t, err, io.EOF)
			msg, err := io.ReadAll(r)
			require.NoError(t, err)
			got = append(got, string(msg))
		}
		assert.Equal(t, []string{"one", "two", "three"}, got)
	})
}

// TestContextDoneOnEntry calls everything with a context already done: each call fails
// with its error, even where the lock is free and the I/O would not block, and the Conn
// stays usable.
func TestContextDoneOnEntry(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		// A message waits for the server, so its read would not block.
		sent := make(chan error, 1)
		go func() { sent <- client.Write(context.Background(), MessageText, []byte("waiting")) }()
		_, _, err := server.Read(done)
		assert.ErrorIs(t, err, context.Canceled)
		_, _, err = server.Reader(done)
		assert.ErrorIs(t, err, context.Canceled)
		_, msg, err := server.Read(waitContext(t))
		require.NoError(t, err)
		assert.Equal(t, "waiting", string(msg))
		require.NoError(t, <-sent)

		assert.ErrorIs(t, client.Write(done, MessageText, []byte("x")), context.Canceled)
		_, err = client.Writer(done, MessageText)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, client.Ping(done), context.Canceled)

		reads := readAll(server)
		require.NoError(t, client.Write(waitContext(t), MessageText, []byte("after")))
		r := nextOut(t, reads)
		require.NoError(t, r.err)
		assert.Equal(t, "after", string(r.msg))
	})
}
