package websocket

import (
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// CompressionMode says whether a Conn compresses its messages with the permessage-deflate
// extension (RFC 7692), and how much memory it spends on it.
type CompressionMode int

const (
	// CompressionDisabled neither offers nor accepts compression. It is the default.
	CompressionDisabled CompressionMode = iota

	// CompressionNoContextTakeover compresses each message on its own, in both
	// directions: the two sides agree that neither refers back to earlier messages.
	// A Conn then keeps no compression state between messages; while a compressed
	// message is open, until it has been read or discarded, it holds a decompressor of
	// about 45 KiB.
	CompressionNoContextTakeover

	// CompressionContextTakeover lets the peer compress each message against the ones it
	// sent before, which shrinks small, similar messages much more; the Conn keeps the
	// last 32 KiB the peer sent (less if the peer announced a smaller window), and while
	// a compressed message is open the decompressor as well: about 77 KiB in all. A
	// client that offers client_no_context_takeover is held to it, and costs no window.
	// The Conn's own messages are still compressed each on its own.
	CompressionContextTakeover
)

func (m CompressionMode) String() string {
	switch m {
	case CompressionDisabled:
		return "disabled"
	case CompressionNoContextTakeover:
		return "no context takeover"
	case CompressionContextTakeover:
		return "context takeover"
	}
	return "CompressionMode(" + strconv.Itoa(int(m)) + ")"
}

// compressThreshold is the size under which Write sends a message uncompressed: deflate
// cannot win much on a few bytes and would still cost its time. RFC 7692 §6 lets any
// message go uncompressed.
const compressThreshold = 128

// maxWindowBits is the window of compress/flate, 32 KiB, the largest RFC 7692 allows.
const maxWindowBits = 15

// deflateTail ends every compressed message given to the decompressor. RFC 7692 §7.2.2:
// the sender removed the 4 bytes 00 00 ff ff, the end of an empty non-final stored block,
// and the receiver puts them back. The empty final stored block after them tells
// compress/flate the stream is over, so that it returns io.EOF instead of waiting for
// more.
const deflateTail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// useDeflate turns permessage-deflate on for the Conn, with the parameters its handshake
// agreed on.
func (c *Conn) useDeflate(p deflateParams) {
	c.deflate = true
	c.windowBits = int8(p.windowBits)
	if !p.peerNoContext {
		c.rd.window = &peerWindow{size: 1 << p.peerWindowBits}
	}
}

// Decompressing.

// inflaters holds decompressors between messages, so that an idle Conn holds none.
var inflaters sync.Pool

// inflater decompresses one message at a time.
type inflater struct {
	fr      io.ReadCloser // a compress/flate reader; also a flate.Resetter
	src     payloadSource
	out     int64     // bytes the message inflated to so far
	discard [512]byte // where discardMessage inflates what nobody reads
}

// payloadSource is what the decompressor reads: the payload of the open message, then
// deflateTail. It is an io.ByteReader, which compress/flate reads a byte at a time
// without a bufio.Reader of its own.
//
// It also sees how the decompressor reads the final block that deflateTail adds, and so
// whether the payload ended between blocks, as RFC 7692 §7.2.1 has senders end it: if
// not, the final block would be taken for the rest of a block the payload cut short,
// and a broken message read as whatever that block decodes to.
type payloadSource struct {
	c       *Conn
	buf     [4096]byte // the payload passes through it a piece at a time
	r, w    int        // buf[r:w] is payload not yet given to the decompressor
	payload bool       // the last frame of the message has been consumed
	tail    int        // bytes of deflateTail given
	taken   int64      // bytes the decompressor has taken, payload and tail
	end     int64      // where the tail begins in that count, once payload is set
}

// errCutBlock is what the decompressor reads when the payload ended inside a block.
var errCutBlock = errors.New("compressed message ends inside a DEFLATE block")

func (s *payloadSource) Read(p []byte) (n int, err error) {
	fromBuf := s.r < s.w
	if fromBuf {
		n = copy(p, s.buf[s.r:s.w])
		s.r += n
	} else {
		n, err = s.next(p) // payload or tail, never both
	}
	if header := s.end + 4; s.payload && s.taken <= header && header < s.taken+int64(n) {
		// The header byte of the final block in deflateTail, which compress/flate reads
		// with ReadByte. Read reaching it is copying a stored block the payload cut short.
		over := int(s.taken + int64(n) - header)
		if fromBuf {
			s.r -= over
		} else {
			s.tail -= over
		}
		if n -= over; n == 0 {
			return 0, errCutBlock
		}
	}
	s.taken += int64(n)
	return n, err
}

func (s *payloadSource) ReadByte() (byte, error) {
	if s.r == s.w {
		n, err := s.next(s.buf[:])
		if n == 0 {
			return 0, err
		}
		s.r, s.w = 0, n
	}
	// After its header byte, the final block of deflateTail is a length and its
	// complement, which compress/flate reads whole with Read, byte-aligned. Read as bits,
	// they are the contents of a block the payload cut short, which the final block would
	// otherwise seem to end.
	if s.payload && s.taken > s.end+4 {
		return 0, errCutBlock
	}
	s.r++
	s.taken++
	return s.buf[s.r-1], nil
}

// next reads what follows into p: payload while there is some, then the tail.
func (s *payloadSource) next(p []byte) (int, error) {
	if !s.payload {
		n, err := s.c.readPayload(p)
		if err != io.EOF {
			return n, err
		}
		s.payload = true
		s.end = s.taken // buf is empty whenever next runs: taken counts all the payload
	}
	if s.ended() {
		return 0, io.EOF
	}
	n := copy(p, deflateTail[s.tail:])
	s.tail += n
	return n, nil
}

// ended reports whether everything, the tail included, has been given.
func (s *payloadSource) ended() bool { return s.tail == len(deflateTail) }

// startInflate sets up the decompression of the message that begins.
func (c *Conn) startInflate() error {
	in, _ := inflaters.Get().(*inflater)
	if in == nil {
		in = &inflater{}
	}
	in.src = payloadSource{c: c}
	// Without context takeover there is no window: every message stands alone.
	var dict []byte
	if c.rd.window != nil {
		dict = c.rd.window.b
	}
	if in.fr == nil {
		in.fr = flate.NewReaderDict(&in.src, dict)
	} else if err := in.fr.(flate.Resetter).Reset(&in.src, dict); err != nil {
		return err
	}
	in.out = 0
	c.rd.inf = in
	return nil
}

// inflate reads decompressed data of the open message into p. It returns io.EOF once
// the message is complete, and enforces the read limit on the decompressed size.
func (c *Conn) inflate(p []byte) (int, error) {
	in := c.rd.inf
	limit := c.readLimit.Load()
	if limit > 0 && int64(len(p)) > limit-in.out {
		// One byte past the limit is enough to know it is exceeded.
		p = p[:limit-in.out+1]
	}
	n, err := in.fr.Read(p)
	in.out += int64(n)
	if limit > 0 && in.out > limit {
		return 0, &ProtocolError{
			Code:   StatusMessageTooBig,
			Reason: fmt.Sprintf("compressed message inflates past the read limit of %d bytes", limit),
			err:    ErrMessageTooBig,
		}
	}
	if c.rd.window != nil {
		c.rd.window.keep(p[:n])
	}
	switch {
	case err == io.EOF:
		// A final block of the peer's own may end the data before the tail: what follows
		// it cannot be decompressed and is dropped (RFC 1951 §3.2.3).
		for !in.src.payload {
			_, err := c.readPayload(in.src.buf[:])
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, err
			}
		}
		c.endInflate()
	case err == io.ErrUnexpectedEOF && in.src.ended(), errors.Is(err, errCutBlock), errors.As(err, new(flate.CorruptInputError)):
		return n, protocolError(StatusInvalidFramePayloadData, "compressed message is not valid DEFLATE data")
	}
	return n, err
}

// endInflate gives the decompressor back once its message is over.
func (c *Conn) endInflate() {
	in := c.rd.inf
	in.src = payloadSource{}
	c.rd.inf = nil
	inflaters.Put(in)
}

// peerWindow is the peer's recent output that its next compressed message may refer to,
// when it takes its context over (RFC 7692 §7.2.3.2): the last size bytes.
type peerWindow struct {
	size int
	b    []byte
}

// keep appends b to the window.
func (pw *peerWindow) keep(b []byte) {
	size := pw.size
	if pw.b == nil {
		pw.b = make([]byte, 0, size)
	}
	w := pw.b
	if len(b) >= size {
		pw.b = append(w[:0], b[len(b)-size:]...)
		return
	}
	if over := len(w) + len(b) - size; over > 0 {
		w = w[:copy(w, w[over:])]
	}
	pw.b = append(w, b...)
}

// Compressing.

// deflaters holds compressors between messages. One takes about 1.2 MB, so a Conn only
// holds one while it sends a compressed message. huffmanDeflaters holds those that code
// without back-references, for the smallest window.
var deflaters, huffmanDeflaters sync.Pool

// deflater is a compressor, pooled with the sink its output goes to: the frames of the
// message it compresses.
type deflater struct {
	fw      *flate.Writer // writes to the deflater itself
	pool    *sync.Pool    // where the deflater goes back
	w       *messageWriter
	chunk   int // bytes fw may take before it restarts; 0 for no limit
	inChunk int // bytes fw took since it started
}

// startDeflate makes w compress the message it writes.
func (w *messageWriter) startDeflate() {
	level, pool, chunk := flate.BestSpeed, &deflaters, 0
	switch {
	case w.c.windowBits <= 8:
		// Restarting every 256 bytes would cost 7 times the time of Huffman coding
		// alone, for no better ratio on text: code without back-references instead.
		level, pool = flate.HuffmanOnly, &huffmanDeflaters
	case w.c.windowBits < maxWindowBits:
		chunk = 1 << w.c.windowBits
	}
	d, _ := pool.Get().(*deflater)
	if d == nil {
		d = &deflater{pool: pool}
		d.fw, _ = flate.NewWriter(d, level)
	}
	d.w, d.chunk, d.inChunk = w, chunk, 0
	w.dz = d
	w.rsv = rsv1 // RFC 7692 §6: RSV1 marks the first frame of a compressed message
}

// deflate compresses p into the message. When the peer limits our window below the 32 KiB
// of compress/flate, the message is compressed in pieces no longer than the window, each
// by a fresh compressor, so that no back-reference reaches further than the window:
// the pieces still form one DEFLATE stream, since each ends with a flush on a byte
// boundary.
func (w *messageWriter) deflate(p []byte) (int, error) {
	d := w.dz
	written := 0
	for len(p) > 0 {
		q := p
		if d.chunk > 0 {
			if d.inChunk == d.chunk {
				if err := d.fw.Flush(); err != nil {
					return written, err
				}
				d.fw.Reset(d)
				d.inChunk = 0
			}
			q = q[:min(len(q), d.chunk-d.inChunk)]
			d.inChunk += len(q)
		}
		n, err := d.fw.Write(q)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// releaseDeflate gives the compressor back, reset for its next message.
func (w *messageWriter) releaseDeflate() {
	d := w.dz
	d.fw.Reset(d)
	d.w = nil
	d.pool.Put(d)
	w.dz = nil
}

// endDeflate flushes the compressor and sends the rest of the message as its final
// frame, without the 00 00 ff ff that ends the flush (RFC 7692 §7.2.1).
func (w *messageWriter) endDeflate() error {
	err := w.dz.fw.Flush()
	w.releaseDeflate()
	if err != nil {
		return err
	}
	w.n -= 4
	return w.flush(true)
}

// Write is where the compressor's output goes: into the message's buffer, sent as a frame
// each time it fills. It always keeps the last 4 bytes back: they may be the 00 00 ff ff
// that endDeflate removes.
func (d *deflater) Write(p []byte) (int, error) {
	w := d.w
	buf := w.c.buffer()[maxHeaderSize:]
	written := 0
	for len(p) > 0 {
		if w.n == writeBufferSize {
			if err := w.send(false, writeBufferSize-4); err != nil {
				return written, err
			}
		}
		m := copy(buf[w.n:], p)
		w.n += m
		written += m
		p = p[m:]
	}
	return written, nil
}
