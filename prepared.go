package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"sync"
)

// PreparedMessage is a message made ready once to be sent on many Conns, as a server
// broadcasting to its clients does: WritePrepared and Send send it without framing it
// again and, on Conns that compress, without compressing it again. It is safe for
// concurrent use by any number of Conns, server and client side, compressed or not.
//
// A server sends the frame built by NewPreparedMessage as it is, with one write. A client
// masks every frame with a fresh key (RFC 6455 §5.3), into its own buffer. A Conn that
// compresses sends a compressed form, made the first time a Conn with its parameters
// sends the message and kept for the next: one per window size the peers asked for, 8 at
// most, each as large as the compressed message.
type PreparedMessage struct {
	op    opcode
	frame []byte // the frame a server sends uncompressed: header, then the payload
	hdr   int    // length of frame's header

	// The compressed forms, by window size: deflated[bits-minWindowBits]. Each message is
	// compressed on its own (our side never takes context over), so one form fits every
	// Conn whose peer allows the same window.
	deflated [maxWindowBits - minWindowBits + 1]deflatedForm
}

// minWindowBits is the smallest window RFC 7692 §7.1.2 lets a peer ask for.
const minWindowBits = 8

// deflatedForm is a prepared message compressed for one window size.
type deflatedForm struct {
	once  sync.Once
	frame []byte // the frame a server sends: header with RSV1, then the compressed payload
	hdr   int
}

var errNilPrepared = errors.New("websocket: nil *PreparedMessage")

// NewPreparedMessage prepares p to be sent as one message of type typ on any number of
// Conns. It copies p, which the caller may reuse at once; the message holds that copy
// with a frame header in front, and later a compressed copy for each window size that
// Conns sending it compress with. It returns an error only for a type other than
// MessageText and MessageBinary.
func NewPreparedMessage(typ MessageType, p []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, errBadMessageType
	}
	m := &PreparedMessage{op: opcode(typ)}
	m.frame, m.hdr = buildFrame(header{fin: true, op: m.op, length: int64(len(p))}, p)
	return m, nil
}

// buildFrame returns a server's frame of h and p, in one new slice, and the length of
// its header.
func buildFrame(h header, p []byte) ([]byte, int) {
	n := encodedHeaderSize(h.length, false)
	frame := appendHeader(make([]byte, 0, n+len(p)), h)
	return append(frame, p...), n
}

// payload returns the message's payload. Nobody may modify it.
func (m *PreparedMessage) payload() []byte { return m.frame[m.hdr:] }

// form returns the frame a server Conn like c sends, the length of its header and the
// reserved bits its header carries. On a Conn that compresses, it compresses the message
// the first time a Conn with c's window asks, as Write would: messages under
// compressThreshold go uncompressed.
func (m *PreparedMessage) form(c *Conn) (frame []byte, hdr int, rsv byte) {
	if !c.deflate || len(m.frame)-m.hdr < compressThreshold {
		return m.frame, m.hdr, 0 // inlined, for the common case
	}
	return m.deflatedForm(c)
}

// deflatedForm is form for a Conn that compresses the message.
func (m *PreparedMessage) deflatedForm(c *Conn) (frame []byte, hdr int, rsv byte) {
	bits := min(max(int(c.windowBits), minWindowBits), maxWindowBits)
	f := &m.deflated[bits-minWindowBits]
	f.once.Do(func() { f.frame, f.hdr = m.deflate(bits) })
	return f.frame, f.hdr, rsv1
}

// deflate compresses the payload as a Conn whose peer allows a window of 1<<bits bytes
// does (see messageWriter.deflate), and returns the server's frame of it.
func (m *PreparedMessage) deflate(bits int) ([]byte, int) {
	level, pool, chunk := flate.BestSpeed, &preparedDeflaters, 0
	switch {
	case bits <= minWindowBits:
		level, pool = flate.HuffmanOnly, &preparedHuffmanDeflaters
	case bits < maxWindowBits:
		chunk = 1 << bits
	}
	var out bytes.Buffer
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(&out, level)
	} else {
		fw.Reset(&out)
	}
	// Writing to a bytes.Buffer, the compressor cannot fail.
	p := m.payload()
	for len(p) > 0 {
		q := p
		if chunk > 0 && len(q) > chunk {
			q = q[:chunk]
		}
		fw.Write(q)
		p = p[len(q):]
		if len(p) > 0 && chunk > 0 {
			// A fresh compressor for each window's worth: no back-reference reaches
			// further than the window, and the pieces, each flushed to a byte boundary,
			// form one DEFLATE stream.
			fw.Flush()
			fw.Reset(&out)
		}
	}
	fw.Flush()
	fw.Reset(io.Discard) // keep nothing of the message
	pool.Put(fw)
	// RFC 7692 §7.2.1: the 00 00 ff ff that ends the flush is not sent.
	z := out.Bytes()[:out.Len()-4]
	// RFC 7692 §6: RSV1 marks a compressed message.
	return buildFrame(header{fin: true, rsv: rsv1, op: m.op, length: int64(len(z))}, z)
}

// preparedDeflaters hold the compressors of prepared messages, apart from the Conns'
// (deflaters), whose compressors write into a Conn's frames.
var preparedDeflaters, preparedHuffmanDeflaters sync.Pool

// WritePrepared sends m as one message, like Write, and follows Write's rules: it blocks
// until the message is written, ctx is done or the Conn closes, waits for the messages
// other goroutines are sending, or Send queued, to be complete first, and a context that
// ends the call before any byte of the message went out costs only ctx.Err(). It is safe
// for concurrent use. A server sends the prepared frame with one write, allocating
// nothing; a client masks it into its own pooled buffer. Neither modifies m.
func (c *Conn) WritePrepared(ctx context.Context, m *PreparedMessage) error {
	if m == nil {
		return errNilPrepared
	}
	if err := c.lockMessage(ctx); err != nil {
		return err
	}
	var err error
	if !c.client {
		frame := m.frame
		if c.deflate && len(m.frame)-m.hdr >= compressThreshold {
			frame, _, _ = m.deflatedForm(c)
		}
		err = c.sendWhole(ctx, frame)
	} else {
		err = c.writePrepared(ctx, m)
		c.releaseBuffer()
	}
	c.msgLock.unlock()
	return err
}

// writePrepared sends m. The caller holds msgLock, and gives back the buffer after.
func (c *Conn) writePrepared(ctx context.Context, m *PreparedMessage) error {
	frame, hdr, rsv := m.form(c)
	if !c.client {
		return c.sendFrame(ctx, frame)
	}
	// RFC 6455 §5.3: a client masks each frame with a new key, never in m's bytes.
	return c.writeFrame(ctx, true, m.op, rsv, frame[hdr:])
}
