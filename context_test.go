package websocket

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests how a call's context ends it: between frames the Conn stays usable,
// mid-frame it fails.

func TestContextBetweenFramesKeepsConn(t *testing.T) {
	server, client := pipePair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Nothing is coming: the read is cut short before any byte of a frame.
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	// Nobody reads the server: the write is cut short before any byte went out.
	assert.ErrorIs(t, client.Write(ctx, MessageText, []byte("x")), context.Canceled)

	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("still works")) }()
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "still works", string(msg))
	require.NoError(t, <-errc)
}

// TestContextKeptAcrossCalls checks a context used for many calls: its cancellation still
// cuts the next call short, and leaves nothing behind for calls with other contexts.
func TestContextKeptAcrossCalls(t *testing.T) {
	server, client := pipePair(t)
	ctx, cancel := context.WithCancel(context.Background())
	send := func(msg string) <-chan error {
		errc := make(chan error, 1)
		go func() { errc <- client.Write(ctx, MessageText, []byte(msg)) }()
		return errc
	}
	for i := range 3 {
		errc := send(fmt.Sprint(i))
		_, msg, err := server.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), string(msg))
		require.NoError(t, <-errc)
	}
	cancel()
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, client.Write(ctx, MessageText, []byte("x")), context.Canceled)

	// Other contexts are not affected by the one that ended.
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	for _, readCtx := range []context.Context{context.Background(), other} {
		errc := make(chan error, 1)
		go func() { errc <- client.Write(readCtx, MessageText, []byte("after")) }()
		_, msg, err := server.Read(readCtx)
		require.NoError(t, err)
		assert.Equal(t, "after", string(msg))
		require.NoError(t, <-errc)
	}
}

func TestContextDeadline(t *testing.T) {
	server, _ := pipePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestContextMidFrame cuts a read and a write in the middle of a frame. The Conn stays
// usable after the read (a reader's context is its own: the next Reader discards the
// rest of the message, and a cut Read resumes, as TestReadCutMidFrameKeepsMessage
// checks); the write, whose frame is half sent, closes the Conn.
func TestContextMidFrame(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		p := newRawPeer(t, false)
		wire := encodeFrame(frame{fin: true, op: opBinary, payload: payloadOf(10)}, true, 10)
		p.write(wire[:len(wire)-5])
		ctx, cancel := context.WithCancel(context.Background())
		_, r, err := p.conn.Reader(ctx)
		require.NoError(t, err)
		buf := make([]byte, 5)
		_, err = io.ReadFull(r, buf)
		require.NoError(t, err)
		cancel()
		_, err = r.Read(buf) // five bytes of the frame are still to come
		assert.ErrorIs(t, err, context.Canceled)
		assert.False(t, p.conn.isClosed())

		p.write(wire[len(wire)-5:])
		p.send(frame{fin: true, op: opText, payload: []byte("after")})
		_, msg, err := p.conn.Read(waitContext(t))
		require.NoError(t, err)
		assert.Equal(t, "after", string(msg))
	})
	t.Run("write", func(t *testing.T) {
		server, client := pipePair(t)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- client.Write(ctx, MessageBinary, payloadOf(100)) }()
		// Take part of the frame off the pipe, then stop reading.
		buf := make([]byte, 3)
		_, err := io.ReadFull(server.nc, buf)
		require.NoError(t, err)
		cancel()
		err = <-errc
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorIs(t, err, context.Canceled)
	})
}
