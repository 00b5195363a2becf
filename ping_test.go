package websocket

import (
	"bufio"
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests pings and pongs: a Ping waits for its own pong, control frames go out
// between the frames of a message, and pongs answer to the context of the call that sends
// them.

func TestPing(t *testing.T) {
	server, client := pipePair(t)
	// The server must be reading to see the ping, and the client to see the pong.
	done := make(chan error, 2)
	go func() { _, _, err := server.Read(context.Background()); done <- err }()
	go func() { _, _, err := client.Read(context.Background()); done <- err }()
	for range 3 {
		require.NoError(t, client.Ping(context.Background()))
		require.NoError(t, server.Ping(context.Background()))
	}
	require.NoError(t, client.Close(StatusNormalClosure, ""))
	for range 2 {
		err := <-done
		assert.ErrorIs(t, err, net.ErrClosed)
	}
}

func TestPingWaitsForItsOwnPong(t *testing.T) {
	p := newRawPeer(t, true)
	p.readLoop()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Ping(ctx) }()
	ping := p.next()
	require.Equal(t, opPing, ping.op)
	p.send(frame{fin: true, op: opPong, payload: []byte("another payload")})
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled, "a pong with another payload must not end Ping")

	go func() { errc <- p.conn.Ping(context.Background()) }()
	ping = p.next()
	p.send(frame{fin: true, op: opPong, payload: ping.payload})
	assert.NoError(t, <-errc)
}

func TestPongBetweenFragmentsOfAStreamedMessage(t *testing.T) {
	p := newRawPeer(t, false)
	p.readLoop()
	w, err := p.conn.Writer(context.Background(), MessageBinary)
	require.NoError(t, err)
	_, err = w.Write(payloadOf(writeBufferSize + 1)) // fills the buffer: one frame goes out
	require.NoError(t, err)
	first := p.next()
	assert.False(t, first.fin)
	p.send(frame{fin: true, op: opPing, payload: []byte("between")})
	pong := p.next()
	assert.Equal(t, opPong, pong.op)
	assert.Equal(t, "between", string(pong.payload))
	errc := make(chan error, 1)
	go func() { errc <- w.Close() }()
	last := p.next()
	require.NoError(t, <-errc)
	assert.True(t, last.fin)
	assert.Equal(t, opContinuation, last.op)
}

// TestPingGoesOutBetweenFramesOfAStream checks that a control frame waiting for the
// frame lock goes out before the next frame of a message being streamed: the writer that
// releases the lock must not take it back ahead of the waiter.
func TestPingGoesOutBetweenFramesOfAStream(t *testing.T) {
	conn, b := serverOverPipe(t)
	chunk := payloadOf(2 * writeBufferSize) // larger than the buffer: a frame of its own
	streamed := make(chan error, 1)
	go func() {
		w, err := conn.Writer(context.Background(), MessageBinary)
		for range 3 {
			if err == nil {
				_, err = w.Write(chunk)
			}
		}
		if err == nil {
			err = w.Close()
		}
		streamed <- err
	}()
	// The first frame has begun: net.Pipe makes the writer wait until it is read.
	br := bufio.NewReader(b)
	_, err := br.Peek(1)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	pinged := make(chan error, 1)
	go func() { pinged <- conn.Ping(ctx) }()
	waitWaiters(t, &conn.frameLock, 1)

	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opBinary, f.op)
	f, err = readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opPing, f.op, "the next data frame went out ahead of the waiting ping")

	cancel()
	assert.ErrorIs(t, <-pinged, context.Canceled)
	for {
		f, err := readRawFrame(br)
		require.NoError(t, err)
		if f.fin {
			break
		}
	}
	require.NoError(t, <-streamed)
}

// TestPingWhileWriteBlocks checks that a write blocked because the peer does not read
// stops neither the reader nor the pong: the reader goes on delivering messages, and the
// pong follows the frame being written.
func TestPingWhileWriteBlocks(t *testing.T) {
	conn, b := serverOverPipe(t)
	big := payloadOf(64 << 10)
	wrote := make(chan error, 1)
	go func() { wrote <- conn.Write(context.Background(), MessageBinary, big) }()
	// The peer sees the frame begin, then stops reading: the write blocks, holding the
	// connection's frames.
	br := bufio.NewReader(b)
	_, err := br.Peek(1)
	require.NoError(t, err)

	reads := make(chan readOut, 1)
	ctx := waitContext(t)
	go func() {
		typ, msg, err := conn.Read(ctx)
		reads <- readOut{typ, msg, err}
	}()
	go func() {
		b.Write(encodeFrame(frame{fin: true, op: opPing, payload: []byte("still there?")}, true, 12))
		b.Write(encodeFrame(frame{fin: true, op: opText, payload: []byte("after the ping")}, true, 14))
	}()
	got := <-reads
	require.NoError(t, got.err, "the reader waited for the blocked write")
	assert.Equal(t, "after the ping", string(got.msg))

	// Now the peer reads: the whole message, then the pong.
	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opBinary, f.op)
	assert.Equal(t, big, f.payload)
	f, err = readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opPong, f.op)
	assert.Equal(t, "still there?", string(f.payload))
	require.NoError(t, <-wrote)
}

// writeStarts is a net.Conn that tells when a write begins with a given first byte: that
// of a pong frame, say.
type writeStarts struct {
	net.Conn
	lead    byte
	started chan struct{}
}

func newWriteStarts(nc net.Conn, lead byte) *writeStarts {
	return &writeStarts{Conn: nc, lead: lead, started: make(chan struct{}, 1)}
}

func (c *writeStarts) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == c.lead {
		select {
		case c.started <- struct{}{}:
		default:
		}
	}
	return c.Conn.Write(p)
}

// begun waits for the next such write to begin.
func (c *writeStarts) begun(t *testing.T, wait context.Context) {
	t.Helper()
	select {
	case <-c.started:
	case <-wait.Done():
		t.Fatalf("no write began with %#x", c.lead)
	}
}

// pongPipe returns a server Conn on one end of a net.Pipe that tells when it begins to
// write a pong, and the other end.
func pongPipe(t *testing.T) (*Conn, *writeStarts, net.Conn) {
	a, b := net.Pipe()
	nc := newWriteStarts(a, 0x80|byte(opPong))
	conn := newConn(nc, nil, false, "")
	t.Cleanup(func() {
		conn.CloseNow()
		b.Close()
	})
	return conn, nc, b
}

// expectPongAfterNextWrite writes a message on conn and expects the peer, reading from
// br, to receive it and then the pong left waiting, with payload.
func expectPongAfterNextWrite(t *testing.T, conn *Conn, br *bufio.Reader, payload string) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { sent <- conn.Write(context.Background(), MessageText, []byte("here")) }()
	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opText, f.op)
	assert.Equal(t, "here", string(f.payload))
	f, err = readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opPong, f.op)
	assert.Equal(t, payload, string(f.payload))
	require.NoError(t, <-sent)
}

// cutWhileWriting runs call with a context that it cancels once nc sees the write it
// watches for begin, which nobody reads, and returns call's error. The test fails if
// call outlives its context.
func cutWhileWriting(t *testing.T, wait context.Context, nc *writeStarts, call func(context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	nc.begun(t, wait)
	cancel()
	select {
	case err := <-done:
		return err
	case <-wait.Done():
		t.Fatal("the call outlived its context, blocked on a write")
		return nil
	}
}

// TestPongAnswersToReadContext checks that a peer that pings and does not read cannot hold
// a read past its context: the pong the reader writes answers to that context. Cut short
// before any byte left, the pong waits, and goes out after the next frame written.
func TestPongAnswersToReadContext(t *testing.T) {
	conn, nc, b := pongPipe(t)
	go b.Write(encodeFrame(frame{fin: true, op: opPing, payload: []byte("there?")}, true, 6))
	err := cutWhileWriting(t, waitContext(t), nc, func(ctx context.Context) error {
		_, _, err := conn.Read(ctx)
		return err
	})
	require.ErrorIs(t, err, context.Canceled)

	// The Conn is still usable: the ping was consumed, and the pong follows its next frame.
	go b.Write(encodeFrame(frame{fin: true, op: opText, payload: []byte("next")}, true, 4))
	_, msg, err := conn.Read(waitContext(t))
	require.NoError(t, err)
	assert.Equal(t, "next", string(msg))
	expectPongAfterNextWrite(t, conn, bufio.NewReader(b), "there?")
}

// TestWaitingPongAnswersToWriteContext checks that a pong left waiting for a blocked write
// answers to that write's context when the write sends it: the write cannot be held past
// its context by the pong. The pong then goes out after the next frame.
func TestWaitingPongAnswersToWriteContext(t *testing.T) {
	conn, nc, b := pongPipe(t)
	wait := waitContext(t)
	big := payloadOf(64 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	wrote := make(chan error, 1)
	go func() { wrote <- conn.Write(ctx, MessageBinary, big) }()
	br := bufio.NewReader(b)
	_, err := br.Peek(1) // the write has begun; the peer stops reading
	require.NoError(t, err)

	// A ping while the write holds the connection: its pong waits for the write.
	go b.Write(append(encodeFrame(frame{fin: true, op: opPing, payload: []byte("there?")}, true, 6),
		encodeFrame(frame{fin: true, op: opText, payload: []byte("after")}, true, 5)...))
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "after", string(msg))

	// The peer reads the message, not the pong the write then sends.
	f, err := readRawFrame(br)
	require.NoError(t, err)
	require.Equal(t, big, f.payload)
	nc.begun(t, wait)
	cancel()
	select {
	case err := <-wrote:
		require.NoError(t, err, "the message went out whole")
	case <-wait.Done():
		t.Fatal("the write outlived its context, blocked on the pong")
	}

	expectPongAfterNextWrite(t, conn, br, "there?")
}

// heldPipe returns a server Conn with write coalescing on one end of a net.Pipe that
// tells when a write of a text frame begins, and the other end. The peer has sent "one"
// and "two" at once; the Conn has read "one" and answered "answer one", which it holds
// back since "two" is buffered.
func heldPipe(t *testing.T, wait context.Context) (*Conn, *writeStarts, net.Conn) {
	a, b := net.Pipe()
	nc := newWriteStarts(a, 0x80|byte(opText))
	conn := newConn(nc, nil, false, "")
	conn.coalesceWrites()
	t.Cleanup(func() {
		conn.CloseNow()
		b.Close()
	})
	go b.Write(append(encodeFrame(frame{fin: true, op: opText, payload: []byte("one")}, true, 3),
		encodeFrame(frame{fin: true, op: opText, payload: []byte("two")}, true, 3)...))
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "one", string(msg))
	require.NoError(t, conn.Write(wait, MessageText, []byte("answer one")))
	return conn, nc, b
}

// expectAnswers writes "answer two" on conn and expects the peer, reading from b, to
// receive the held "answer one" and then it.
func expectAnswers(t *testing.T, wait context.Context, conn *Conn, b net.Conn) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { sent <- conn.Write(wait, MessageText, []byte("answer two")) }()
	br := bufio.NewReader(b)
	for _, want := range []string{"answer one", "answer two"} {
		f, err := readRawFrame(br)
		require.NoError(t, err)
		require.Equal(t, want, string(f.payload))
	}
	require.NoError(t, <-sent)
}

// TestHeldFramesSurviveACutWrite checks that with write coalescing, a write that its
// context cuts short before any byte left does not take with it the frames held back
// from earlier writes, which returned nil: they go out with the next write.
func TestHeldFramesSurviveACutWrite(t *testing.T) {
	wait := waitContext(t)
	conn, nc, b := heldPipe(t, wait)
	// The next write is too large to be held; it finds the peer not reading, and its
	// context ends.
	err := cutWhileWriting(t, wait, nc, func(ctx context.Context) error {
		return conn.Write(ctx, MessageBinary, payloadOf(maxHeld+1))
	})
	require.ErrorIs(t, err, context.Canceled)
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "two", string(msg))
	expectAnswers(t, wait, conn, b)
}

// TestHeldFramesAnswerToReadContext checks that the held frames a reader sends before it
// waits for the network answer to the read's context: a peer that does not read cannot
// hold the read past it. Cut short, they stay held for the next write.
func TestHeldFramesAnswerToReadContext(t *testing.T) {
	wait := waitContext(t)
	conn, nc, b := heldPipe(t, wait)
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "two", string(msg))
	// Nothing is buffered now: the next read sends "answer one" before it waits.
	err = cutWhileWriting(t, wait, nc, func(ctx context.Context) error {
		_, _, err := conn.Read(ctx)
		return err
	})
	require.ErrorIs(t, err, context.Canceled)
	expectAnswers(t, wait, conn, b)
}

// TestPingsBetweenMessages checks that pings that arrive together while the Conn waits
// for a message are each answered, in order, and before the close frame after them is
// answered: the reader handles them one at a time, sending each pong before it takes the
// next frame (RFC 6455 §5.5.2).
func TestPingsBetweenMessages(t *testing.T) {
	conn, b := serverOverPipe(t)
	var frames []byte
	for _, p := range []string{"one", "two", "three"} {
		frames = append(frames, encodeFrame(frame{fin: true, op: opPing, payload: []byte(p)}, true, int64(len(p)))...)
	}
	frames = append(frames, encodeFrame(frame{fin: true, op: opClose, payload: []byte{0x03, 0xe8}}, true, 2)...)
	go b.Write(frames) // all at once, for one read
	read := make(chan error, 1)
	go func() { _, _, err := conn.Read(context.Background()); read <- err }()

	br := bufio.NewReader(b)
	for _, want := range []string{"one", "two", "three"} {
		f, err := readRawFrame(br)
		require.NoError(t, err)
		assert.Equal(t, opPong, f.op)
		assert.Equal(t, want, string(f.payload))
	}
	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opClose, f.op)
	assert.Equal(t, StatusNormalClosure, f.closeCode())
	var ce *CloseError
	assert.ErrorAs(t, <-read, &ce)
}
