package websocket

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests calls a caller should not make: a bad message type, and readers and
// writers used after their message ended.

func TestMisuse(t *testing.T) {
	server, client := pipePair(t)
	assert.Error(t, client.Write(context.Background(), MessageType(0), nil))
	assert.Error(t, client.Write(context.Background(), MessageType(9), nil))
	_, err := client.Writer(context.Background(), MessageType(8))
	assert.Error(t, err)

	errc := make(chan error, 1)
	go func() { _, _, err := server.Read(context.Background()); errc <- err }()
	w, err := client.Writer(context.Background(), MessageText)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, <-errc)
	assert.ErrorIs(t, w.Close(), net.ErrClosed)
	_, err = w.Write([]byte("late"))
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestOldReaderAtItsEnd(t *testing.T) {
	server, client := pipePair(t)
	go func() {
		client.Write(context.Background(), MessageText, []byte("first"))
		client.Write(context.Background(), MessageText, []byte("second"))
	}()
	_, r, err := server.Reader(context.Background())
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "first", string(got))
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "second", string(msg))
	n, err := r.Read(make([]byte, 8))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF, "a reader that had read its message whole still says EOF")
}

// TestOldReaderWhileNextMessageStarts reads from a message reader in one goroutine while
// another starts the next message: the old reader ends, and -race sees no race.
func TestOldReaderWhileNextMessageStarts(t *testing.T) {
	server, client := pipePair(t)
	go func() {
		client.Write(context.Background(), MessageText, payloadOf(10000))
		client.Write(context.Background(), MessageBinary, []byte("second"))
	}()
	_, r, err := server.Reader(context.Background())
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, r) // ends with the first message, wherever the other got to
	}()
	typ, r2, err := server.Reader(context.Background())
	require.NoError(t, err)
	<-done
	assert.Equal(t, MessageBinary, typ)
	got, err := io.ReadAll(r2)
	require.NoError(t, err)
	assert.Equal(t, "second", string(got))
}

// TestOldWriterWhileNextStreams checks that a closed writer stays refused while the next
// message is written, and that the next message arrives as written.
func TestOldWriterWhileNextStreams(t *testing.T) {
	server, client := pipePair(t)
	reads := make(chan readOut, 2)
	go func() {
		for range 2 {
			typ, msg, err := server.Read(context.Background())
			reads <- readOut{typ, msg, err}
		}
	}()
	ctx := context.Background()
	old, err := client.Writer(ctx, MessageText)
	require.NoError(t, err)
	_, err = old.Write([]byte("first"))
	require.NoError(t, err)
	require.NoError(t, old.Close())

	w, err := client.Writer(ctx, MessageBinary)
	require.NoError(t, err)
	_, err = w.Write([]byte("sec"))
	require.NoError(t, err)
	_, err = old.Write([]byte("stray"))
	assert.ErrorIs(t, err, errWriterClosed)
	assert.ErrorIs(t, old.Close(), errWriterClosed)
	_, err = w.Write([]byte("ond"))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	for _, want := range []readOut{{MessageText, []byte("first"), nil}, {MessageBinary, []byte("second"), nil}} {
		got := <-reads
		require.NoError(t, got.err)
		assert.Equal(t, want.typ, got.typ)
		assert.Equal(t, string(want.msg), string(got.msg))
	}
}
