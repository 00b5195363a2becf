package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// readState is where the reader is in the frame stream.
type readState struct {
	frameLeft int64  // payload bytes of the current frame not read yet
	key       uint32 // masking key of the current frame, rotated to the next byte
	masked    bool
	fin       bool   // the current frame is the last of its message
	open      bool   // a message has frames or bytes not consumed yet
	resume    bool   // kept holds a message a Read was cut short in
	msg       uint64 // messages begun so far
	typ       MessageType
	size      int64 // payload bytes of the open message so far
	empty     int   // its frames so far that were empty and not the last
	utf8      utf8Validator

	// A message a Read was cut short in: the bytes it had, for the next Read (resume) or
	// the reader Reader hands out for it.
	kept []byte

	// permessage-deflate
	inf    *inflater   // decompresses the open message, if it is compressed
	window *peerWindow // the peer's recent output, with context takeover; else nil
}

// Read reads the next message whole and returns it in a new slice the caller owns.
// It blocks until the message has arrived, ctx is done or the Conn closes; if another
// goroutine is reading, it waits its turn. Whatever was left unread of a message handed
// out by Reader is discarded.
//
// If ctx is done on entry, or ends the call before the message is complete, Read returns
// ctx.Err() and the Conn stays usable: what arrived of the message is kept, and the next
// Read or Reader resumes it. Only a compressed message cut short closes the Conn, since
// its decompressor cannot resume.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	if err := c.lock(ctx, &c.readLock); err != nil {
		return 0, nil, err
	}
	defer c.readLock.unlock()
	c.rwatch.start(ctx)
	if c.between() {
		if err := c.awaitData(); err != nil {
			return 0, nil, c.readResult(ctx, err)
		}
	}
	typ, b, err := c.readMessage()
	return typ, b, c.readResult(ctx, err)
}

// between reports whether the reader is between messages with nothing buffered: the next
// message can then only begin with bytes yet to arrive.
func (c *Conn) between() bool {
	return c.rb.r == c.rb.w && !c.rd.open && !c.rd.resume
}

// awaitData waits, between messages, for bytes that are not control frames, handling
// the control frames that come first. Read and Reader call it before readMessage and
// beginMessage, rather than leave the wait to peekHeader some 400 bytes of frames deeper:
// a goroutine serving a Conn spends its life in this wait, and keeps the 2 KiB stack it
// started with only if the wait, and the pings and pongs an idle Conn gets, are shallow.
// The data frame's header is left to beginMessage.
func (c *Conn) awaitData() error {
	for c.between() {
		if err := c.rb.fill(); err != nil {
			return err
		}
		for c.rb.controlNext() {
			pinged, err := c.idleControl()
			if err != nil {
				return err
			}
			if !pinged {
				break
			}
			// RFC 6455 §5.5.2: the ping idleControl stopped at is answered here, before
			// the frames after it are handled, and as high on the stack as the wait.
			if err := c.sendWaitingPong(c.rwatch.current()); err != nil {
				return err
			}
		}
	}
	return nil
}

// idleControl handles the whole control frames at the head of the buffer, up to a ping,
// which it only takes, leaving the pong to awaitData: a socket write from under
// idleControl and consumeControl would not fit in a 2 KiB stack. It reports whether it
// stopped at a ping. What follows the frames, a part of a frame included, is left to
// beginMessage.
//
//go:noinline
func (c *Conn) idleControl() (pinged bool, err error) {
	for c.rb.controlNext() {
		h, n, complete, err := c.bufferedHeader()
		if err != nil || !complete {
			return false, err
		}
		if h.op == opPing {
			c.keepPing(h, n)
			return true, nil
		}
		if err := c.consumeControl(h, n); err != nil {
			return false, err
		}
	}
	return false, nil
}

// keepPing consumes the ping at the head of the buffer, whose header h is n bytes and
// whose payload is buffered, and makes its payload the pong that waits for the frame
// lock, unmasked in the read buffer and copied from there: not through consumeControl's
// array, whose 125 bytes would be on the stack under the pong's write.
//
//go:noinline
func (c *Conn) keepPing(h header, n int) {
	end := n + int(h.length)
	payload := c.rb.buf[c.rb.r+n : c.rb.r+end]
	if h.masked {
		mask(h.key, payload)
	}
	c.keepPong(payload)
	c.rb.discard(end) // after the copy: discarding may give the buffer back
}

func (c *Conn) readMessage() (MessageType, []byte, error) {
	b, resumed := c.rd.kept, c.rd.resume
	c.rd.kept, c.rd.resume = nil, false
	if !resumed {
		if _, err := c.beginMessage(); err != nil {
			return 0, nil, err
		}
		b = make([]byte, 0, c.room(0))
	}
	for {
		if len(b) == cap(b) {
			if more := c.room(len(b)); more > 0 {
				b = slices.Grow(b, more)
			}
		}
		n, end, err := c.readData(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if end {
			return c.rd.typ, b, nil
		}
		if err != nil {
			// Kept for the next read, in case the Conn outlives the error: a context that
			// ended is no reason to lose the message.
			c.rd.kept, c.rd.resume = b, true
			return 0, nil, err
		}
	}
}

// room returns how much more to allocate for the open message when have bytes of it are
// held already. It follows the bytes that have arrived, not the length a frame
// announces: a peer that announces a large frame and sends a few bytes gets a small
// buffer. It starts with what is buffered of the current frame, or 512 bytes, and grows
// to 8 times the bytes held, up to the rest of the frame: a peer can make a Conn hold at
// most 8 times what it sent, and a large message costs a few allocations and copies
// (a 64 KiB one, two; 1 MiB, four). A compressed message's size is
// only known once inflated: its buffer grows the same way from twice what is buffered.
func (c *Conn) room(have int) int {
	buffered := int64(c.rb.buffered())
	if c.rd.inf != nil {
		return int(min(max(2*min(buffered, c.rd.frameLeft), 512, 7*int64(have)), 1<<20))
	}
	// Between frames, nothing: the next frame's header says how much more comes.
	return int(min(c.rd.frameLeft, max(buffered, 512, 7*int64(have))))
}

// Reader waits for the next message like Read and returns a reader of its payload, which
// streams it frame by frame without holding it whole. If a Read was cut short by its
// context in the middle of a message, the reader returns that message, from its start.
// The reader is valid until the next call of Reader or Read, which discards what it left
// unread: after that, its reads return io.EOF if it had read the message to the end, and
// an error if not, and touch nothing. Its reads honour ctx as Read does, and leave the
// Conn usable when ctx ends them; they may be made from any one goroutine at a time.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if err := c.lock(ctx, &c.readLock); err != nil {
		return 0, nil, err
	}
	defer c.readLock.unlock()
	if c.rd.resume {
		// The reader hands out what the Read kept; a Read after it does not resume.
		c.rd.resume = false
	} else {
		c.rwatch.start(ctx)
		if c.between() {
			if err := c.awaitData(); err != nil {
				return 0, nil, c.readResult(ctx, err)
			}
		}
		if _, err := c.beginMessage(); err != nil {
			return 0, nil, c.readResult(ctx, err)
		}
	}
	// A reader of its own for each message: one kept past its message can then never
	// read a later one.
	r := take(&readerSlab)
	*r = messageReader{c: c, ctx: ctx, msg: c.rd.msg}
	return c.rd.typ, r, nil
}

var errReaderDiscarded = errors.New("websocket: message reader used after a later Read or Reader discarded the rest of its message")

// messageReader is the io.Reader that Reader hands out for a message: a reader kept past
// its message must not read the next one.
type messageReader struct {
	c   *Conn
	ctx context.Context
	msg uint64 // the message it reads, in readState.msg's count
	eof bool   // it has returned io.EOF
}

func (r *messageReader) Read(p []byte) (int, error) {
	n, end, err := r.read(p)
	if end {
		return n, io.EOF
	}
	return n, err
}

// read is Read, reporting the end of the message as end rather than as io.EOF.
func (r *messageReader) read(p []byte) (n int, end bool, err error) {
	c := r.c
	if err := c.lock(r.ctx, &c.readLock); err != nil {
		return 0, false, err
	}
	defer c.readLock.unlock()
	if r.msg != c.rd.msg || !c.rd.open {
		if r.eof || r.msg == c.rd.msg {
			r.eof = true
			return 0, true, nil
		}
		return 0, false, errReaderDiscarded
	}
	if len(c.rd.kept) > 0 {
		// What a Read cut short kept of this message comes first.
		n := copy(p, c.rd.kept)
		c.rd.kept = c.rd.kept[n:]
		return n, false, nil
	}
	c.rwatch.start(r.ctx)
	n, end, err = c.readData(p)
	if end {
		r.eof = true
		return n, true, nil
	}
	return n, false, c.readResult(r.ctx, err)
}

// readResult turns what a read produced into what the caller sees. When ctx cut the
// read short: between frames that costs the caller nothing but ctx.Err(); in the
// middle of a frame the stream can no longer be trusted to resume where the caller
// expects, so the Conn is closed. Any other error fails the Conn, with a close frame
// when the peer broke the protocol.
func (c *Conn) readResult(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if c.isClosed() {
		return c.closedErr()
	}
	if cut(ctx) {
		// The read state is left where the cut found it, and the next read goes on from
		// there; but a decompressor cut short cannot resume.
		if c.rd.inf == nil {
			return ctx.Err()
		}
		return c.fail(ctx.Err(), 0)
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return c.fail(pe, pe.Code)
	}
	return c.fail(err, 0)
}

// beginMessage discards what is left of the open message and reads up to the first data
// frame of the next one.
func (c *Conn) beginMessage() (MessageType, error) {
	if c.rd.open {
		if err := c.discardMessage(); err != nil {
			return 0, err
		}
	}
	c.rd.kept, c.rd.resume = nil, false
	h, err := c.nextDataFrame()
	if err != nil {
		return 0, err
	}
	if h.op == opContinuation {
		// RFC 6455 §5.4: a continuation frame continues nothing here.
		return 0, protocolError(StatusProtocolError, "continuation frame with no message to continue")
	}
	c.rd.open = true
	c.rd.msg++
	c.rd.typ = MessageType(h.op)
	c.rd.size = 0
	c.rd.empty = 0
	c.rd.utf8 = utf8Validator{}
	if err := c.startFrame(h); err != nil {
		return 0, err
	}
	if h.rsv&rsv1 != 0 {
		if err := c.startInflate(); err != nil {
			return 0, err
		}
	}
	return c.rd.typ, nil
}

// maxEmptyFrames bounds the empty frames other than the last that a message may have.
// Senders have no reason for more than a few (an empty first frame of a streamed
// message, an empty flush); the bound stops a peer that keeps a message open forever
// with them, which the read limit, counting payload bytes, cannot.
const maxEmptyFrames = 1024

// compressedLimit bounds the compressed size of a message whose inflated size the read
// limit bounds, which inflate checks. Deflate can make incompressible data a little
// larger, so the bound is looser; but without one, a peer could send empty blocks
// forever.
func compressedLimit(limit int64) int64 {
	return min(limit, math.MaxInt64/2) + limit/8 + 1024
}

// startFrame makes h the current frame of the open message, after checking the message
// stays under the read limit: before any of its payload is read or allocated.
func (c *Conn) startFrame(h header) error {
	readLimit := c.readLimit.Load()
	limit, compressed := readLimit, h.rsv&rsv1 != 0 || c.rd.inf != nil
	if limit > 0 && compressed {
		limit = compressedLimit(limit)
	}
	// Written so that no sum can overflow: 0 <= size <= limit and 0 <= length.
	if limit > 0 && h.length > limit-c.rd.size {
		// The reason goes in the close frame too: it must fit in 123 bytes.
		reason := fmt.Sprintf("frame of %d bytes after %d exceeds the read limit of %d bytes", h.length, c.rd.size, readLimit)
		if compressed {
			reason = fmt.Sprintf("compressed frame of %d bytes after %d exceeds %d bytes, the bound for the read limit of %d bytes", h.length, c.rd.size, limit, readLimit)
		}
		return &ProtocolError{Code: StatusMessageTooBig, Reason: reason, err: ErrMessageTooBig}
	}
	if h.length == 0 && !h.fin {
		// An empty frame that is not the last moves a message no closer to its end or to
		// the read limit: without a bound, a peer could keep one open forever.
		if c.rd.empty++; c.rd.empty > maxEmptyFrames {
			return protocolError(StatusPolicyViolation, fmt.Sprintf("message has more than %d empty frames", maxEmptyFrames))
		}
	}
	c.rd.size += h.length
	c.rd.frameLeft = h.length
	c.rd.key = h.key
	c.rd.masked = h.masked
	c.rd.fin = h.fin
	return nil
}

// readData reads the open message's data into p: its payload, inflated if it is
// compressed, and checked if it is text. It reports end, with the last bytes or after
// them, once the message is complete. The end is a flag rather than io.EOF, which costs
// a comparison of interfaces each time it is looked for.
func (c *Conn) readData(p []byte) (n int, end bool, err error) {
	switch {
	case c.rd.inf != nil:
		n, err = c.inflate(p)
		end = err == io.EOF
	case c.rd.frameLeft > 0 && c.rb.r < c.rb.w:
		// Payload is buffered, as a small message's whole frame is: taken here rather
		// than through readPayload, two calls fewer per message, and a shallower stack
		// for a goroutine that is to stay within its first 2 KiB.
		q := p
		if int64(len(q)) > c.rd.frameLeft {
			q = q[:c.rd.frameLeft]
		}
		n, c.rd.key = c.rb.copyOut(q, c.rd.masked, c.rd.key)
		c.rd.frameLeft -= int64(n)
		end = c.rd.frameLeft == 0 && c.rd.fin
	default:
		n, err = c.readPayload(p)
		if err == nil {
			end = c.rd.frameLeft == 0 && c.rd.fin
		} else {
			end = err == io.EOF
		}
	}
	// RFC 6455 §8.1: fail as soon as the text cannot be UTF-8 any more.
	if n > 0 && c.rd.typ == MessageText && !c.rd.utf8.write(p[:n]) {
		return 0, false, protocolError(StatusInvalidFramePayloadData, "text message is not valid UTF-8")
	}
	if end {
		if err := c.endMessage(); err != nil {
			return n, false, err
		}
		return n, true, nil
	}
	return n, false, err
}

// readPayload reads payload of the open message into p, as it is on the wire but
// unmasked, moving on to its next frame when the current one is done. It returns io.EOF
// once the last frame has been read.
func (c *Conn) readPayload(p []byte) (int, error) {
	for c.rd.frameLeft == 0 {
		if c.rd.fin {
			return 0, io.EOF
		}
		h, err := c.nextDataFrame()
		if err != nil {
			return 0, err
		}
		if h.op != opContinuation {
			// RFC 6455 §5.4: frames of different messages MUST NOT interleave.
			return 0, protocolError(StatusProtocolError, fmt.Sprintf("%v frame inside a fragmented message", h.op))
		}
		if h.rsv != 0 {
			// RFC 7692 §6.1: only the first frame of a message carries RSV1.
			return 0, protocolError(StatusProtocolError, "continuation frame has reserved bits set")
		}
		if err := c.startFrame(h); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > c.rd.frameLeft {
		p = p[:c.rd.frameLeft]
	}
	n, key, err := c.rb.read(p, c.rd.masked, c.rd.key)
	c.rd.key = key
	c.rd.frameLeft -= int64(n)
	return n, err
}

// consumed unmasks b, payload just taken from the stream.
func (c *Conn) consumed(b []byte) {
	c.rd.frameLeft -= int64(len(b))
	if c.rd.masked {
		c.rd.key = mask(c.rd.key, b)
	}
}

// endMessage closes the message whose last frame has been read. It returns an error if
// the message's text ends in the middle of a code point.
func (c *Conn) endMessage() error {
	if c.rd.typ == MessageText && !c.rd.utf8.complete() {
		return protocolError(StatusInvalidFramePayloadData, "text message ends inside a UTF-8 sequence")
	}
	c.rd.open = false
	return nil
}

// discardMessage skips the rest of the open message. Its payload is unmasked in the read
// buffer and checked as if it were read, so a bad message fails the Conn either way.
func (c *Conn) discardMessage() error {
	if c.rd.inf != nil {
		// Inflated all the same: the next message may refer to this one's data.
		buf := &c.rd.inf.discard
		for {
			if _, end, err := c.readData(buf[:]); end || err != nil {
				return err
			}
		}
	}
	for {
		if c.rd.frameLeft == 0 {
			if _, end, err := c.readData(nil); end || err != nil {
				return err
			}
			continue
		}
		// Take what is buffered, or wait for more.
		n := c.rb.buffered()
		if n == 0 {
			n = 1
		}
		n = int(min(int64(n), c.rd.frameLeft))
		b, err := c.rb.peek(n)
		if len(b) > 0 {
			c.consumed(b)
			if c.rd.typ == MessageText && !c.rd.utf8.write(b) {
				return protocolError(StatusInvalidFramePayloadData, "text message is not valid UTF-8")
			}
			c.rb.discard(len(b))
		}
		if err != nil {
			return err
		}
	}
}

// nextDataFrame reads frames until the header of a data frame, handling the control
// frames it meets on the way. On return, the header has been consumed and the payload
// has not.
func (c *Conn) nextDataFrame() (header, error) {
	for {
		h, n, err := c.peekHeader()
		if err != nil {
			return header{}, err
		}
		if !h.op.isControl() {
			c.rb.discard(n)
			return h, nil
		}
		// Control payloads are at most 125 bytes: take the whole frame at once so that a
		// read cut short leaves nothing half-consumed.
		if _, err := c.rb.peek(n + int(h.length)); err != nil {
			return header{}, err
		}
		if err := c.consumeControl(h, n); err != nil {
			return header{}, err
		}
	}
}

// peekHeader decodes the next frame header without consuming it and checks it against
// this side's role and extensions.
func (c *Conn) peekHeader() (header, int, error) {
	b := c.rb.wholeHeader()
	if b == nil {
		var err error
		if b, err = c.rb.peek(2); err != nil {
			return header{}, 0, err
		}
		if n := headerSize(b[1]); n > 2 {
			if b, err = c.rb.peek(n); err != nil {
				return header{}, 0, err
			}
		}
	}
	h, n, err := parseHeader(b)
	if err != nil {
		return header{}, 0, err
	}
	if h.rsv != 0 {
		// RFC 6455 §5.2: RSV bits MUST be 0 unless an extension defines them. RFC 7692 §6:
		// permessage-deflate defines RSV1, on data frames only (§6.1).
		switch {
		case !c.deflate:
			return header{}, 0, protocolError(StatusProtocolError, "frame has reserved bits set and no extension was negotiated")
		case h.rsv != rsv1:
			return header{}, 0, protocolError(StatusProtocolError, "frame has RSV2 or RSV3 set, which no extension in use defines")
		case h.op.isControl():
			return header{}, 0, protocolError(StatusProtocolError, "control frame has RSV1 set")
		}
	}
	if h.masked == c.client {
		// RFC 6455 §5.1: clients mask every frame, servers none.
		if c.client {
			return header{}, 0, protocolError(StatusProtocolError, "server sent a masked frame")
		}
		return header{}, 0, protocolError(StatusProtocolError, "client sent an unmasked frame")
	}
	return h, n, nil
}

// consumeControl consumes the control frame at the head of the buffer, whose header h is
// n bytes and whose payload the caller has peeked, and acts on it. The frame is consumed
// first, whatever handling it leads to: a pong cut short by the
// read's context must not leave its ping to be read again. Its payload is copied first,
// since consuming may give the buffer back, into an array that lives on the stack only
// while the frame is handled: not while the reader waits for the network.
//
// It is one function, not two, and takes the frame from the buffer itself, since a
// frame less, and fewer arguments, keep an idle Conn's goroutine within its 2 KiB stack
// as it takes a pong. (An idle Conn's pings go to keepPing instead: the pong's write
// would not fit under this frame.)
//
//go:noinline
func (c *Conn) consumeControl(h header, n int) error {
	var buf [maxControlPayload]byte
	end := n + int(h.length)
	payload := buf[:copy(buf[:], c.rb.buf[c.rb.r+n:c.rb.r+end])]
	c.rb.discard(end)
	if h.masked {
		mask(h.key, payload)
	}
	switch h.op {
	case opPing:
		// RFC 6455 §5.5.2: answer with a pong carrying the same payload.
		return c.answerPing(payload)
	case opPong:
		c.rb.ka.pong(payload)
		c.gotPong(payload)
		return nil
	default: // opClose: parseHeader let no other control opcode through.
		return c.receivedClose(payload)
	}
}
