package websocket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteFailed checks what a failed socket write means for the caller and the Conn: a
// write that its context stopped before any byte left costs the caller ctx.Err() and
// leaves the stream whole; any other failure, or one over TLS, closes the Conn.
func TestWriteFailed(t *testing.T) {
	errReset := errors.New("connection reset")
	tests := []struct {
		name     string
		cut      bool // the write's context ended
		tls      bool
		closed   bool // the Conn was closed before the write failed
		wrote    int64
		err      error
		want     error // what the error satisfies
		stayOpen bool
	}{
		{name: "cut before any byte", cut: true, err: errReset, want: context.Canceled, stayOpen: true},
		{name: "cut mid-frame", cut: true, wrote: 3, err: errReset, want: context.Canceled},
		{name: "cut before any byte over TLS", cut: true, tls: true, err: errReset, want: context.Canceled},
		{name: "socket error before any byte", err: errReset, want: errReset},
		{name: "socket error mid-frame", wrote: 3, err: errReset, want: errReset},
		{name: "Conn closed meanwhile", cut: true, closed: true, err: errReset, want: net.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(&memConn{r: bytes.NewReader(nil)}, nil, false, "")
			c.tlsWrites = tt.tls
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cut {
				cancel()
			}
			if tt.closed {
				c.teardown(nil)
			}
			err := c.writeResult(ctx, tt.wrote, tt.err)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
			if tt.stayOpen {
				assert.False(t, c.isClosed(), "the stream is whole: the Conn must stay usable")
				assert.NotErrorIs(t, err, net.ErrClosed)
			} else {
				assert.True(t, c.isClosed(), "the stream is broken: the Conn must close")
				assert.ErrorIs(t, err, net.ErrClosed)
			}
		})
	}
	c := newConn(&memConn{r: bytes.NewReader(nil)}, nil, false, "")
	assert.NoError(t, c.writeResult(context.Background(), 10, nil))
	assert.False(t, c.isClosed())
}

// TestWritev writes a header, an empty slice and a payload over TCP: the peer gets the
// two non-empty ones in order, the Conn keeps none of the caller's slices afterwards,
// even when the write fails, and only the first writev allocates.
func TestWritev(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server := <-accepted
	require.NotNil(t, server)
	defer server.Close()

	c := newConn(server, nil, false, "")
	header, payload := []byte{0x82, 5}, []byte("hello")
	var n int64
	writeOne := func() { n, err = c.writev(header, nil, payload) }
	writeOne()
	require.NoError(t, err)
	require.EqualValues(t, len(header)+len(payload), n)
	got := make([]byte, len(header)+len(payload))
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	assert.Equal(t, append(append([]byte(nil), header...), payload...), got)
	for i, s := range c.vec.vec {
		assert.Nil(t, s, "writev kept slice %d of its caller", i)
	}

	// A write that fails leaves its slices unconsumed: they must not stay either.
	failing := newConn(refusingConn{&memConn{r: bytes.NewReader(nil)}}, nil, false, "")
	_, err = failing.writev(header, nil, payload)
	require.ErrorIs(t, err, io.ErrClosedPipe)
	for i, s := range failing.vec.vec {
		assert.Nil(t, s, "a failed writev kept slice %d of its caller", i)
	}

	if raceEnabled {
		return // the race detector's instrumentation allocates
	}
	const runs = 20
	assert.Zero(t, testing.AllocsPerRun(runs, writeOne), "a writev after the first")
	require.NoError(t, err)
	rest := make([]byte, (runs+1)*len(got)) // AllocsPerRun runs once more to warm up
	_, err = io.ReadFull(client, rest)
	require.NoError(t, err)
}

// refusingConn is a connection whose writes all fail.
type refusingConn struct{ net.Conn }

func (refusingConn) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
