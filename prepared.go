package websocket

import (
	"compress/flate"
	"context"
	"errors"
	"sync"
	"sync/atomic"
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
	done  atomic.Bool // frame and hdr are set; read before them, without once's call
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
	if !m.compressedOn(c) {
		return m.frame, m.hdr, 0 // inlined, for the common case
	}
	f := m.deflatedForm(c)
	return f.frame, f.hdr, rsv1
}

// compressedOn reports whether c sends m compressed.
func (m *PreparedMessage) compressedOn(c *Conn) bool {
	return c.deflate && len(m.frame)-m.hdr >= compressThreshold
}

// deflatedForm returns m compressed for c's window, compressing it if no Conn with that
// window did before. Once it is made, it costs a Conn an atomic load.
func (m *PreparedMessage) deflatedForm(c *Conn) *deflatedForm {
	// The handshake agreed on 8 to 15 bits (RFC 7692 §7.1.2.1): forms 0 to 7. The mask
	// keeps the index in the array without a check.
	i := int(c.windowBits-minWindowBits) & (len(m.deflated) - 1)
	f := &m.deflated[i]
	if !f.done.Load() {
		m.makeForm(f, i+minWindowBits)
	}
	return f
}

// makeForm compresses m into f for a window of 1<<bits bytes, once, however many Conns
// ask at the same time.
func (m *PreparedMessage) makeForm(f *deflatedForm, bits int) {
	f.once.Do(func() {
		f.frame, f.hdr = m.deflate(bits)
		f.done.Store(true)
	})
}

// preparedDeflater is a compressor of prepared messages and the buffer it writes into,
// which keeps its size from one message to the next, up to maxKeptDeflated.
type preparedDeflater struct {
	fw  *flate.Writer // writes to the preparedDeflater itself
	out []byte
}

// maxKeptDeflated is the largest output buffer a pooled preparedDeflater keeps: the
// compressed size of a message of some 200 KiB of text. A larger message's buffer is
// dropped with it, rather than held for every message after.
const maxKeptDeflated = 64 << 10

func (d *preparedDeflater) Write(p []byte) (int, error) {
	d.out = append(d.out, p...)
	return len(p), nil
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
	d, _ := pool.Get().(*preparedDeflater)
	if d == nil {
		d = &preparedDeflater{}
		d.fw, _ = flate.NewWriter(d, level)
	} else {
		d.fw.Reset(d) // nothing of the message before it
	}
	// Writing to memory, the compressor cannot fail.
	p := m.payload()
	for len(p) > 0 {
		q := p
		if chunk > 0 && len(q) > chunk {
			q = q[:chunk]
		}
		d.fw.Write(q)
		p = p[len(q):]
		if len(p) > 0 && chunk > 0 {
			// A fresh compressor for each window's worth: no back-reference reaches
			// further than the window, and the pieces, each flushed to a byte boundary,
			// form one DEFLATE stream.
			d.fw.Flush()
			d.fw.Reset(d)
		}
	}
	d.fw.Flush()
	// RFC 7692 §7.2.1: the 00 00 ff ff that ends the flush is not sent.
	z := d.out[:len(d.out)-4]
	// RFC 7692 §6: RSV1 marks a compressed message.
	frame, hdr := buildFrame(header{fin: true, rsv: rsv1, op: m.op, length: int64(len(z))}, z)
	d.put(pool)
	return frame, hdr
}

// put gives d back to pool with its buffer emptied, or dropped if a large message grew
// it past maxKeptDeflated.
func (d *preparedDeflater) put(pool *sync.Pool) {
	d.out = d.out[:0]
	if cap(d.out) > maxKeptDeflated {
		d.out = nil
	}
	pool.Put(d)
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
		if m.compressedOn(c) {
			frame = m.deflatedForm(c).frame
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
