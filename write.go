package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// writeBufferSize is the payload room of the buffer data frames are built in. A Writer
// sends a frame each time it fills; Write sends a larger payload without copying it (on a
// server) or masks it through the buffer in pieces (on a client).
const writeBufferSize = 4096

// Masking keys come from math/rand/v2's top-level functions: a ChaCha8 generator per
// thread, seeded from the operating system's randomness, which is fast enough for one key
// a frame and unpredictable, as RFC 6455 §5.3 asks.

var (
	errCloseSent      = &closedError{cause: errors.New("close frame already sent")}
	errWriterClosed   = fmt.Errorf("websocket: message writer already closed: %w", net.ErrClosed)
	errMessageCut     = errors.New("message cut short after its first frame")
	errBadMessageType = errors.New("websocket: message type must be MessageText or MessageBinary")
)

// Write sends p as one message. It blocks until the message is written, ctx is done or
// the Conn closes, and waits for any message other goroutines are sending, or Send
// queued, to be complete first. It never modifies p. It is safe for concurrent use.
//
// If ctx is done on entry, or ends the call before any byte of the message went out,
// Write returns ctx.Err() and the Conn stays usable; once part of the message is on the
// wire, the message is finished or the Conn is closed (see the package documentation,
// Concurrency).
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	if typ != MessageText && typ != MessageBinary {
		return errBadMessageType
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	if len(p) > writeBufferSize || c.deflate && len(p) >= compressThreshold {
		return c.writeLarge(ctx, typ, p)
	}
	// A small message, the common case, is one buffered frame. No defers and no calls
	// between here and the socket but sendBuffered's: a Conn served from a goroutine of
	// its own echoes with this path under its read loop, within a 2 KiB stack.
	copy(c.buffer()[maxHeaderSize:], p)
	err := c.sendBuffered(ctx, true, opcode(typ), 0, len(p))
	c.releaseBuffer()
	c.msgLock.unlock()
	return err
}

// writeLarge is Write for a message larger than the buffer, or one compressed. The
// caller holds msgLock, which it releases.
//
//go:noinline
func (c *Conn) writeLarge(ctx context.Context, typ MessageType, p []byte) error {
	defer c.msgLock.unlock()
	defer c.releaseBuffer()
	if c.deflate && len(p) >= compressThreshold {
		// Compressed output larger than the buffer goes out as several frames: the same
		// writer as Writer's, kept in the Conn since Write never hands it out.
		if c.wmsg == nil {
			c.wmsg = new(messageWriter)
		}
		w := c.wmsg
		*w = messageWriter{c: c, ctx: ctx, op: opcode(typ)}
		w.startDeflate()
		if _, err := w.deflate(p); err != nil {
			w.releaseDeflate()
			return err
		}
		return w.endDeflate()
	}
	return c.writeFrame(ctx, true, opcode(typ), 0, p)
}

// Writer starts a message and returns a writer for its payload; the message ends when
// the writer is closed. Until then, other goroutines' messages wait, while control frames
// (pongs, a close) may still go out between its frames. Each time the writer's 4 KiB
// buffer fills, it is sent as a frame. Writes honour ctx as Write does: once a frame of
// the message has gone out, a write that fails closes the Conn, since no other message
// may be sent before this one ends (RFC 6455 §5.4). The writer is not safe for
// concurrent use; the Conn is. Once closed, or once a write failed, its writes return an
// error and send nothing; Close must still be called to let the next message go.
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, errBadMessageType
	}
	if err := c.lockMessage(ctx); err != nil {
		return nil, err
	}
	// A writer of its own for each message: one kept past Close can then never write into
	// a later message.
	w := take(&writerSlab)
	*w = messageWriter{c: c, ctx: ctx, op: opcode(typ)}
	if c.deflate {
		w.startDeflate()
	}
	return w, nil
}

// messageWriter streams one message. It holds c.msgLock from Writer to Close.
type messageWriter struct {
	c      *Conn
	ctx    context.Context
	op     opcode // opcode of the next frame: the message type, then continuation
	rsv    byte   // reserved bits of the next frame
	n      int    // payload bytes waiting in c.wbuf
	closed bool
	err    error     // the first write that failed; nothing is sent after it
	dz     *deflater // compresses the message, if it is compressed
}

func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errWriterClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.dz != nil {
		return w.deflate(p)
	}
	c := w.c
	written := 0
	for len(p) > 0 {
		if w.n == writeBufferSize {
			if err := w.flush(false); err != nil {
				return written, err
			}
		}
		if w.n == 0 && len(p) > writeBufferSize {
			// Nothing buffered and more than a buffer's worth to send: frame p as it is,
			// with no copy on a server. A buffer's worth is copied instead, so that a
			// message of that size still goes out as one frame at Close.
			if err := c.writeFrame(w.ctx, false, w.op, 0, p); err != nil {
				return written, w.failed(err)
			}
			w.op = opContinuation
			return written + len(p), nil
		}
		m := copy(c.buffer()[maxHeaderSize+w.n:], p)
		w.n += m
		written += m
		p = p[m:]
	}
	return written, nil
}

// ReadFrom reads r to its end into the message: io.Copy to a message writer calls it.
// Until the buffer is full, r reads straight into it, so that a message that fits is
// copied once, from r to the frame, rather than through io.Copy's buffer as well; the
// rest, and any compressed message, goes through Write in pieces of copyBufferSize,
// which it sends as large frames without copying them.
func (w *messageWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.closed {
		return 0, errWriterClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	var total int64
	if w.dz == nil {
		buf := w.c.buffer()[maxHeaderSize:]
		mr, _ := r.(*messageReader)
		for w.n < writeBufferSize {
			var n int
			var err error
			end := false
			if mr != nil {
				n, end, err = mr.read(buf[w.n:])
			} else if n, err = r.Read(buf[w.n:]); err == io.EOF {
				end, err = true, nil
			}
			w.n += n
			total += int64(n)
			if end || err != nil {
				return total, err
			}
		}
	}
	bp := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(bp)
	for {
		n, err := r.Read(bp[:])
		if n > 0 {
			m, werr := w.Write(bp[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
	}
}

// copyBufferSize is the size of the pieces ReadFrom reads a large message in: io.Copy's.
const copyBufferSize = 32 << 10

// copyBuffers lend ReadFrom its buffer while it copies a large message.
var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// Close sends what is buffered as the message's final frame and lets the next message go.
// After a failed write it sends nothing and returns that write's error.
func (w *messageWriter) Close() error {
	if w.closed {
		return errWriterClosed
	}
	w.closed = true
	if w.dz != nil || w.err != nil {
		return w.closeSlow()
	}
	// The final frame straight from here, without flush and send, and without defers:
	// this is the bottom of a streaming echo, which a Conn served from a goroutine of its
	// own runs under its read loop, within a 2 KiB stack.
	c := w.c
	err := c.sendBuffered(w.ctx, true, w.op, w.rsv, w.n)
	if err != nil {
		err = w.failed(err)
	}
	c.releaseBuffer()
	c.msgLock.unlock()
	return err
}

// closeSlow is Close for a compressed message or after a failed write.
//
//go:noinline
func (w *messageWriter) closeSlow() error {
	defer w.c.msgLock.unlock()
	defer w.c.releaseBuffer()
	if w.dz != nil {
		if w.err != nil {
			w.releaseDeflate()
			return w.err
		}
		return w.endDeflate()
	}
	return w.err
}

// flush sends what is buffered as a frame.
func (w *messageWriter) flush(fin bool) error { return w.send(fin, w.n) }

// send sends the first n buffered payload bytes as a frame and keeps the rest buffered.
// What failed to go out stays buffered, though the writer sends nothing more.
func (w *messageWriter) send(fin bool, n int) error {
	if w.err != nil {
		return w.err
	}
	if err := w.c.sendBuffered(w.ctx, fin, w.op, w.rsv, n); err != nil {
		return w.failed(err)
	}
	w.op = opContinuation
	w.rsv = 0
	if n < w.n {
		buf := w.c.buffer()[maxHeaderSize:]
		w.n = copy(buf, buf[n:w.n])
	} else {
		w.n = 0
	}
	return nil
}

// failed records err as the writer's last word. If a frame of the message went out
// already, the Conn is closed: RFC 6455 §5.4 lets no other message begin before this one
// ends, and it cannot end now.
func (w *messageWriter) failed(err error) error {
	if w.op == opContinuation && !w.c.isClosed() {
		w.c.teardown(&causeError{errMessageCut, err})
		err = w.c.closedErr()
	}
	w.err = err
	return err
}

// writeBuffers holds the buffers data frames are built in while no message is being
// sent, so that idle connections hold none.
var writeBuffers = sync.Pool{New: func() any { return new([maxHeaderSize + writeBufferSize]byte) }}

// buffer returns the data frame buffer: header room, then writeBufferSize of payload. The
// msgLock holder takes it from the pool on first use and gives it back with
// releaseBuffer when its message is sent.
func (c *Conn) buffer() []byte {
	if c.wbuf == nil {
		c.takeBuffer()
	}
	return c.wbuf[:]
}

// takeBuffer takes the data frame buffer from the pool. It is a call of its own so that
// the pool's call and its type check leave the frames of buffer's callers, which are on
// the write path's deepest chain, smaller.
//
//go:noinline
func (c *Conn) takeBuffer() {
	c.wbuf = writeBuffers.Get().(*[maxHeaderSize + writeBufferSize]byte)
}

func (c *Conn) releaseBuffer() {
	if c.wbuf != nil {
		writeBuffers.Put(c.wbuf)
		c.wbuf = nil
	}
}

// writeFrame sends p as one data frame with the reserved bits rsv. The caller holds
// msgLock.
func (c *Conn) writeFrame(ctx context.Context, fin bool, op opcode, rsv byte, p []byte) error {
	if len(p) > writeBufferSize {
		return c.writeLargeFrame(ctx, fin, op, rsv, p)
	}
	copy(c.buffer()[maxHeaderSize:], p)
	return c.sendBuffered(ctx, fin, op, rsv, len(p))
}

// writeLargeFrame is writeFrame for a payload larger than the buffer: written from where
// it lies on a server, masked through the buffer in pieces on a client.
//
//go:noinline
func (c *Conn) writeLargeFrame(ctx context.Context, fin bool, op opcode, rsv byte, p []byte) error {
	if err := c.lockFrame(ctx); err != nil {
		return err
	}
	defer c.unlockFrame(ctx)
	c.wwatch.start(ctx)
	h := header{fin: fin, rsv: rsv, op: op, length: int64(len(p)), masked: c.client}
	var wrote int64
	var err error
	if !c.client {
		// One writev of the header and the caller's bytes: no copy. The header goes in
		// hbuf, which the frame lock makes ours.
		wrote, err = c.writeOutVec(appendHeader(c.hbuf[:0], h), p)
	} else {
		// Mask into our own buffer, never into p, a piece at a time.
		h.key = rand.Uint32()
		buf := c.buffer()
		off := len(appendHeader(buf[:0], h))
		key := h.key
		for len(p) > 0 && err == nil {
			m := copy(buf[off:], p)
			key = mask(key, buf[off:off+m])
			var n int64
			if off > 0 {
				n, err = c.writeOut(buf[:off+m])
			} else {
				n, err = c.writeSocket(buf[:m])
			}
			wrote += n
			p = p[m:]
			off = 0
		}
	}
	return c.writeResult(ctx, wrote, err)
}

// sendBuffered sends the n payload bytes waiting in the buffer as one frame, with its
// header in the room before them: one write system call. The caller holds msgLock.
//
// It is the bottom of Write and of a Writer's Close on their way to the socket, which a
// Conn served from a goroutine of its own must reach within a 2 KiB stack, under its
// read loop and the application's frames: it is sendFrame, sendLocked and, when there is
// nothing to hold or held, sendCoalesced in one frame, and leaves the rest (holding
// frames back, writing the held ones with this one) to sendCoalesced.
func (c *Conn) sendBuffered(ctx context.Context, fin bool, op opcode, rsv byte, n int) error {
	frame := c.bufferedFrame(fin, op, rsv, n)
	if err := c.lockFrame(ctx); err != nil {
		return err
	}
	c.wwatch.follow(ctx)
	if co := c.co; co != nil && (co.mayHold() || co.holding()) {
		return c.sendCoalesced(ctx, frame)
	}
	wrote, err := c.writeSocket(frame)
	err = c.writeResult(ctx, wrote, err)
	// unlockFrame, by hand: a call less.
	c.frameLock.unlock()
	if c.co != nil && c.co.wakeSet.Load() {
		c.co.signal()
	}
	if c.pongWaiting.Load() {
		c.sendWaitingPong(ctx)
	}
	return err
}

// bufferedFrame puts the header of a frame of the n payload bytes waiting in the buffer
// in the room before them, masks them on a client, and returns the frame. It is a call
// of its own, which returns before the frame is written, so that its locals are not on
// the stack under the write (see sendBuffered).
//
//go:noinline
func (c *Conn) bufferedFrame(fin bool, op opcode, rsv byte, n int) []byte {
	buf := c.buffer()
	h := header{fin: fin, rsv: rsv, op: op, length: int64(n), masked: c.client}
	if c.client {
		h.key = rand.Uint32()
		mask(h.key, buf[maxHeaderSize:maxHeaderSize+n])
	}
	start := maxHeaderSize - encodedHeaderSize(h.length, h.masked)
	appendHeader(buf[start:start], h)
	return buf[start : maxHeaderSize+n]
}

// sendFrame sends frame, a whole frame, with one write (or holds it back, when writes
// are coalesced). The caller holds msgLock.
func (c *Conn) sendFrame(ctx context.Context, frame []byte) error {
	if err := c.lockFrame(ctx); err != nil {
		return err
	}
	return c.sendLocked(ctx, frame)
}

// sendWhole is sendFrame for a caller that has just taken msgLock, which checked the
// Conn and ctx: a free frame lock is taken without checking them again.
func (c *Conn) sendWhole(ctx context.Context, frame []byte) error {
	if !c.frameLock.tryLock() {
		return c.sendFrame(ctx, frame)
	}
	if c.closeSent {
		c.frameLock.unlock()
		return c.sendFrame(ctx, frame) // which tells why nothing may be sent
	}
	return c.sendLocked(ctx, frame)
}

// sendLocked is sendFrame once the frame lock is taken; it releases it.
func (c *Conn) sendLocked(ctx context.Context, frame []byte) error {
	c.wwatch.follow(ctx)
	if c.co != nil {
		return c.sendCoalesced(ctx, frame)
	}
	// Without coalescing, the path of every broadcast frame: unlockFrame by hand, a call
	// less.
	wrote, err := c.writeSocket(frame)
	err = c.writeResult(ctx, wrote, err)
	c.frameLock.unlock()
	if c.pongWaiting.Load() {
		c.sendWaitingPong(ctx)
	}
	return err
}

// writeOut writes b to the socket, in one system call with the frames write coalescing
// holds in front of it, if any: they were sent before it. The caller holds frameLock.
func (c *Conn) writeOut(b []byte) (int64, error) {
	if c.co != nil && c.co.holding() {
		return c.writeHeld(b, nil)
	}
	return c.writeSocket(b)
}

// writeOutVec is writeOut for a header and a payload apart.
func (c *Conn) writeOutVec(h, p []byte) (int64, error) {
	if c.co != nil && c.co.holding() {
		return c.writeHeld(h, p)
	}
	return c.writev(h, p, nil)
}

// writeControl sends a control frame. It may run while another goroutine is in the middle
// of a message: it only needs the frame lock.
func (c *Conn) writeControl(ctx context.Context, op opcode, payload []byte) error {
	if err := c.lockFrame(ctx); err != nil {
		return err
	}
	defer c.unlockFrame(ctx)
	c.wwatch.start(ctx)
	wrote, err := c.writeControlFrame(op, payload)
	return c.writeResult(ctx, wrote, err)
}

// writeControlFrame builds a control frame and writes it with writeOut. The frame is
// built in a pooled buffer rather than one in the Conn, whose idle size counts at
// scale: control frames are rare next to data. The caller holds frameLock.
func (c *Conn) writeControlFrame(op opcode, payload []byte) (int64, error) {
	buf := controlBuffers.Get().(*[maxControlFrame]byte)
	wrote, err := c.writeOut(c.appendControlFrame(buf[:0], op, payload))
	controlBuffers.Put(buf)
	return wrote, err
}

// appendControlFrame appends a control frame of payload to b, masked on a client.
//
//go:noinline
func (c *Conn) appendControlFrame(b []byte, op opcode, payload []byte) []byte {
	h := header{fin: true, op: op, length: int64(len(payload)), masked: c.client}
	if c.client {
		h.key = rand.Uint32()
	}
	b = appendHeader(b, h)
	n := len(b)
	b = append(b, payload...)
	if c.client {
		mask(h.key, b[n:])
	}
	return b
}

var controlBuffers = sync.Pool{New: func() any { return new([maxControlFrame]byte) }}

// lockFrame takes the frame lock for one frame, unless our close frame has gone out:
// nothing may follow it (RFC 6455 §5.5.1).
func (c *Conn) lockFrame(ctx context.Context) error {
	if err := c.lock(ctx, &c.frameLock); err != nil {
		return err
	}
	if c.closeSent {
		c.unlockFrame(ctx)
		if c.isClosed() {
			return c.closedErr()
		}
		return errCloseSent
	}
	return nil
}

// sendClosePayload sends a close frame with payload, built by appendClosePayload, once: it
// returns errCloseSent if one went out already. It waits at most the close timeout, for
// the frame lock and for the write, so a stuck peer cannot hold up closing.
func (c *Conn) sendClosePayload(payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	if !c.frameLock.lock(ctx, c.closed) {
		if c.isClosed() {
			return c.closedErr()
		}
		return fmt.Errorf("no close frame sent: a write held the connection for %v", c.closeTimeout)
	}
	defer c.unlockFrame(context.Background())
	if c.closeSent {
		return errCloseSent
	}
	c.closeSent = true
	c.wwatch.deadline(time.Now().Add(c.closeTimeout))
	_, err := c.writeControlFrame(opClose, payload)
	c.wwatch.deadline(time.Time{})
	return err
}

// unlockFrame releases the frame lock, then sends the pong that the reader left waiting
// while the lock was held, if any, answering to ctx: the context of the call that held the
// lock. A pong that ctx cuts short before any byte left waits for the next holder.
func (c *Conn) unlockFrame(ctx context.Context) {
	c.frameLock.unlock()
	if c.co != nil && c.co.wakeSet.Load() {
		c.co.signal()
	}
	if c.pongWaiting.Load() {
		c.sendWaitingPong(ctx)
	}
}

// answerPing answers a ping the reader received (RFC 6455 §5.5.2). The reader never waits
// for the frame lock: a writer may hold it for as long as the peer does not read, and the
// peer may be waiting for us to read, as when both ends write large messages at once. So
// the pong waits for the lock instead, and the goroutine that releases it sends it. A
// pong still waiting when the next ping arrives answers that one only, as §5.5.3 allows.
//
// When the lock is free, the reader sends the pong itself, answering to the read's
// context, so that a peer that pings without reading cannot hold a read past it. If the
// context ends before any byte of the pong left, the pong waits as above and answerPing
// returns the context's error; once part of it left, the Conn is closed. Between
// messages, the reader does the same in awaitData, with keepPing and sendWaitingPong.
func (c *Conn) answerPing(payload []byte) error {
	c.keepPong(payload)
	return c.sendWaitingPong(c.rwatch.current())
}

// keepPong makes payload, the newest ping's, the pong that waits for the frame lock,
// replacing any pong waiting already: it answers an earlier ping (RFC 6455 §5.5.3).
func (c *Conn) keepPong(payload []byte) {
	c.pongMu.Lock()
	if c.pong == nil {
		c.pong = new([maxControlPayload]byte) // only for a Conn that is ever pinged
	}
	c.pongLen = uint8(copy(c.pong[:], payload)) // at most 125 bytes (RFC 6455 §5.5)
	c.pongWaiting.Store(true)
	c.pongMu.Unlock()
}

// sendWaitingPong sends the waiting pong, answering to ctx as writes do, if the frame
// lock is free. If it is not, its holder sees pongWaiting after releasing it: the store
// of pongWaiting comes before the attempt to lock, and the release after the attempt
// failed. If the write fails, the pong waits again, unless a newer one does.
//
// It is one frame, with the pong built in pongFrame and a failure handled in
// pongFailed, which return before the write or come after it: the reader calls it as it
// waits between messages, for the pings an idle Conn gets, and a Conn served from a
// goroutine of its own must reach the socket from there within its 2 KiB stack
// (TestStackPerConnAfterEcho).
func (c *Conn) sendWaitingPong(ctx context.Context) error {
	for c.pongWaiting.Load() {
		if !c.frameLock.tryLock() {
			return nil
		}
		// Nothing may follow our close frame (RFC 6455 §5.5.1): the pong is dropped.
		if c.pongWaiting.Swap(false) && !c.closeSent {
			c.wwatch.start(ctx)
			buf, n := c.pongFrame()
			var wrote int64
			var err error
			if c.co != nil && c.co.holding() { // writeOut, inlined: a frame less
				wrote, err = c.writeHeld(buf[:n], nil)
			} else {
				wrote, err = c.writeSocket(buf[:n])
			}
			if err != nil {
				return c.pongFailed(ctx, buf, wrote, err)
			}
			controlBuffers.Put(buf)
		}
		c.frameLock.unlock()
	}
	return nil
}

// pongFrame builds the waiting pong's frame, n bytes, in a buffer from controlBuffers.
// It is built from c.pong under pongMu straight into the buffer, not copied out first
// into an array of sendWaitingPong's stack.
//
//go:noinline
func (c *Conn) pongFrame() (buf *[maxControlFrame]byte, n int) {
	buf = controlBuffers.Get().(*[maxControlFrame]byte)
	c.pongMu.Lock()
	n = len(c.appendControlFrame(buf[:0], opPong, c.pong[:c.pongLen]))
	c.pongMu.Unlock()
	return buf, n
}

// pongFailed is writeResult for a pong that sendWaitingPong failed to send, which waits
// again unless a newer one does; it gives buf back and releases the frame lock. c.pong
// still holds the pong's payload if no newer one waits: a newer ping's would have set
// pongWaiting, which only the frame lock's holder, the caller, clears.
//
//go:noinline
func (c *Conn) pongFailed(ctx context.Context, buf *[maxControlFrame]byte, wrote int64, err error) error {
	controlBuffers.Put(buf)
	err = c.writeFailed(ctx, wrote, err)
	c.pongMu.Lock()
	if !c.isClosed() {
		c.pongWaiting.Store(true)
	}
	c.pongMu.Unlock()
	c.frameLock.unlock()
	return err
}
