package websocket

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b = <-accepted
	require.NotNil(t, b)
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// TestReadBufferIdleHoldsNothing checks that a read buffer that waits for bytes on a TCP
// connection holds no memory, and takes it only while bytes are buffered.
func TestReadBufferIdleHoldsNothing(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("reads go through the net.Conn on this system")
	}
	a, b := tcpPair(t)
	rb := newReadBuffer(b, nil)
	require.NotNil(t, rb.raw, "a TCP connection exposes its socket")
	assert.Nil(t, rb.buf)

	// A wait cut short by the deadline: the read found nothing and gave the buffer back.
	require.NoError(t, b.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err := rb.peek(1)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Nil(t, rb.buf)
	require.NoError(t, b.SetReadDeadline(time.Time{}))

	_, err = a.Write([]byte("0123456789"))
	require.NoError(t, err)
	p, err := rb.peek(4)
	require.NoError(t, err)
	assert.Equal(t, "0123", string(p))
	assert.NotNil(t, rb.buf)
	// The rest may come in the same read or later: consume all ten bytes.
	got := make([]byte, 0, 10)
	for len(got) < 10 {
		p, err := rb.peek(1)
		require.NoError(t, err)
		got = append(got, p...)
		rb.discard(1)
	}
	assert.Equal(t, "0123456789", string(got))
	assert.NotNil(t, rb.buf, "a buffer just emptied is kept for the next read")
	// The next read finds the socket empty: the connection is idle, the buffer goes back.
	require.NoError(t, b.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err = rb.peek(1)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Nil(t, rb.buf, "an empty buffer goes back to the pool once the reader would wait")
	require.NoError(t, b.SetReadDeadline(time.Time{}))

	require.NoError(t, a.Close())
	_, err = rb.peek(1)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Nil(t, rb.buf)
}

// countingConn embeds a TCP connection and changes what Read does.
type countingConn struct {
	*net.TCPConn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.TCPConn.Read(p)
}

// TestReadBufferWrappedSocket checks that a connection type wrapping a socket is read
// through its own Read, never around it.
func TestReadBufferWrappedSocket(t *testing.T) {
	a, b := tcpPair(t)
	wrapped := &countingConn{TCPConn: b.(*net.TCPConn)}
	rb := newReadBuffer(wrapped, nil)
	assert.Nil(t, rb.raw)
	_, err := a.Write([]byte("x"))
	require.NoError(t, err)
	p, err := rb.peek(1)
	require.NoError(t, err)
	assert.Equal(t, "x", string(p))
	assert.Equal(t, 1, wrapped.reads)
}

func TestReadBufferPrefix(t *testing.T) {
	a, b := tcpPair(t)
	rb := newReadBuffer(b, []byte("ahead"))
	_, err := a.Write([]byte(" and after"))
	require.NoError(t, err)
	got := make([]byte, 0, 15)
	for len(got) < 15 {
		p := make([]byte, 15-len(got))
		n, _, err := rb.read(p, false, 0)
		require.NoError(t, err)
		got = append(got, p[:n]...)
	}
	assert.Equal(t, "ahead and after", string(got))
}

// TestReadBufferLargeReadBypasses checks that a read of more than the buffer holds goes
// straight into the caller's slice once nothing is buffered.
func TestReadBufferLargeReadBypasses(t *testing.T) {
	a, b := tcpPair(t)
	rb := newReadBuffer(b, nil)
	want := payloadOf(3 * readBufferSize)
	go a.Write(want)
	got := make([]byte, 0, len(want))
	for len(got) < len(want) {
		n, _, err := rb.read(got[len(got):cap(got)], false, 0)
		require.NoError(t, err)
		got = got[:len(got)+n]
		assert.Nil(t, rb.buf, "nothing was buffered")
	}
	assert.Equal(t, want, got)
}

// countingReader counts the reads made of it.
type countingReader struct {
	io.Reader
	reads int
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.reads++
	return r.Reader.Read(p)
}

// TestFourKiBFrameInOneRead checks that a frame of the size senders commonly use, 4 KiB
// with its header, is read from the connection in one read.
func TestFourKiBFrameInOneRead(t *testing.T) {
	want := payloadOf(4096)
	wire := &countingReader{Reader: bytes.NewReader(wireOf(t, true, want))}
	c := newConn(&memConn{r: wire}, nil, false, "")
	_, got, err := c.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, 1, wire.reads)
}

// TestFailLetsCloseFrameThrough checks that a Conn failing while its peer is still
// sending lets the peer read the close frame: closing a socket with unread bytes would
// reset the connection and could destroy the frame.
func TestFailLetsCloseFrameThrough(t *testing.T) {
	a, b := tcpPair(t)
	server := newConn(b, nil, false, "")
	client := newConn(a, nil, true, "")
	server.SetReadLimit(1000)
	writeErr := make(chan error, 1)
	clientRead := make(chan error, 1)
	go func() {
		writeErr <- client.Write(context.Background(), MessageBinary, payloadOf(8<<20))
		_, _, err := client.Read(context.Background())
		clientRead <- err
	}()
	_, _, err := server.Read(context.Background())
	require.ErrorIs(t, err, ErrMessageTooBig)
	require.NoError(t, <-writeErr, "the server drained the message instead of resetting the connection")
	assert.Equal(t, StatusMessageTooBig, CloseStatus(<-clientRead))
}
