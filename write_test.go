package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests the write side's own paths: a message writer filled by io.Copy.

// TestWriterReadFrom copies messages of every size that matters into a Writer with
// io.Copy, from readers that return what they have in one piece, a byte at a time, half
// of what was asked, and from another Conn's message reader (whose payload arrives
// masked), on a server and on a client: the peer gets the payload whole, and a message
// that fits the buffer goes out as one frame.
func TestWriterReadFrom(t *testing.T) {
	sources := map[string]func(t *testing.T, p []byte) io.Reader{
		"whole":     func(_ *testing.T, p []byte) io.Reader { return onlyReader{bytes.NewReader(p)} },
		"byte-wise": func(_ *testing.T, p []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(p)) },
		"halves":    func(_ *testing.T, p []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(p)) },
		"message reader": func(t *testing.T, p []byte) io.Reader {
			server, client := pipePair(t)
			errc := make(chan error, 1)
			go func() { errc <- client.Write(context.Background(), MessageBinary, p) }()
			_, r, err := server.Reader(context.Background())
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, <-errc) })
			return r
		},
	}
	for _, client := range []bool{false, true} {
		for name, source := range sources {
			for _, size := range []int{0, 1, 125, writeBufferSize - 1, writeBufferSize, writeBufferSize + 1, 65536} {
				t.Run(fmt.Sprintf("client=%v/%s/%d", client, name, size), func(t *testing.T) {
					p := newRawPeer(t, client)
					want := payloadOf(size)
					src := source(t, want)
					type result struct {
						n   int64
						err error
					}
					done := make(chan result, 1)
					go func() {
						w, err := p.conn.Writer(context.Background(), MessageBinary)
						if err != nil {
							done <- result{err: err}
							return
						}
						n, err := io.Copy(w, src)
						done <- result{n, errors.Join(err, w.Close())}
					}()
					got := []byte{}
					frames := 0
					for {
						f := p.next()
						frames++
						got = append(got, f.payload...)
						if f.fin {
							break
						}
					}
					res := <-done
					require.NoError(t, res.err)
					assert.Equal(t, int64(size), res.n, "bytes copied")
					assert.Equal(t, want, got, "payload")
					if size <= writeBufferSize {
						assert.Equal(t, 1, frames, "frames of a message that fits the buffer")
					}
				})
			}
		}
	}
}

// TestWriterReadFromError checks that a read error ends the copy with that error and the
// bytes read before it, and leaves the message open: Close still ends it, with them.
func TestWriterReadFromError(t *testing.T) {
	errBoom := errors.New("boom")
	p := newRawPeer(t, false)
	w, err := p.conn.Writer(context.Background(), MessageText)
	require.NoError(t, err)
	n, err := io.Copy(w, iotest.DataErrReader(io.MultiReader(bytes.NewReader([]byte("hello")), iotest.ErrReader(errBoom))))
	assert.ErrorIs(t, err, errBoom)
	assert.Equal(t, int64(5), n)
	require.NoError(t, w.Close())
	f := p.next()
	assert.True(t, f.fin)
	assert.Equal(t, "hello", string(f.payload))
	_, err = io.Copy(w, bytes.NewReader([]byte("more")))
	assert.ErrorIs(t, err, errWriterClosed, "a copy into a closed writer")
}

// TestWriterReadFromAllocates counts what io.Copy into a Writer allocates: nothing, where
// io.Copy through a Writer's Write alone would allocate its 32 KiB buffer each call.
func TestWriterReadFromAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	for _, size := range []int{100, 64 << 10} {
		wc := &memConn{r: bytes.NewReader(nil)}
		c := newConn(wc, nil, false, "")
		payload := payloadOf(size)
		br := bytes.NewReader(nil)
		src := &onlyReader{br}
		copyOne := func() {
			wc.out.Reset()
			w, err := c.Writer(context.Background(), MessageBinary)
			require.NoError(t, err)
			br.Reset(payload)
			_, err = io.Copy(w, src)
			require.NoError(t, err)
			require.NoError(t, w.Close())
		}
		copyOne()
		assert.Zero(t, testing.AllocsPerRun(20, copyOne), "%d B", size)
	}
}
