package websocket

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// readBufferSize is the size of the buffer a Conn reads through. Control frames (at most
// 139 bytes with their header) and frame headers are always read whole into it. It is
// twice the 4 KiB a sender commonly frames at, so that such a frame arrives with its
// header in one read instead of two.
const readBufferSize = 8192

// readBuffers holds the read buffers of connections that have nothing buffered. It has no
// New: a buffer is made by take, never by readFD, whose stack is deep enough already
// that an allocation there would outgrow a goroutine's first 2 KiB.
var readBuffers sync.Pool

// take gives b a buffer if it has none, from the pool or new.
func (b *readBuffer) take() {
	if b.buf == nil {
		if p, ok := readBuffers.Get().(*[readBufferSize]byte); ok {
			b.buf = p
		} else {
			b.buf = new([readBufferSize]byte)
		}
	}
}

// readBuffer is a Conn's buffered reader. Unlike a bufio.Reader, it gives its memory back
// whenever it is empty. On a connection that exposes its socket (TCP, Unix), it also waits
// for the peer's next bytes without holding any: the buffer is taken from the pool only
// once bytes are there to read, so an idle connection costs no buffer at all. Other
// connections (TLS, net.Pipe) hold the buffer while a read blocks.
type readBuffer struct {
	nc   net.Conn
	raw  syscall.RawConn // nil when nc does not expose its socket
	buf  *[readBufferSize]byte
	r, w int // buf[r:w] is buffered

	// fillRaw's read of the socket, and its result (readbuf_unix.go).
	readSocket func(fd uintptr) bool
	rawN       int
	rawErr     error

	// With write coalescing: what writers see of the buffer, and what runs before a read
	// may wait for the network.
	co         *coalescer
	beforeWait func()

	ka *keepalive // told of every read of the socket that returns bytes, when keepalive is on
}

// wait runs before a read that may wait for the network.
func (b *readBuffer) wait() {
	if b.co != nil {
		b.beforeWait()
	}
}

// waited runs after it, when the buffer's content may have changed.
func (b *readBuffer) waited() {
	if b.co != nil {
		b.co.more.Store(b.r < b.w)
		b.co.waiting.Store(false)
	}
}

func newReadBuffer(nc net.Conn, prefix []byte) readBuffer {
	b := readBuffer{nc: nc, raw: rawConn(nc)}
	if len(prefix) > 0 {
		b.take()
		b.w = copy(b.buf[:], prefix)
	}
	return b
}

// errPeerGone is what reads return when the connection ends: between or inside frames,
// the peer left without a close frame. It is io.ErrUnexpectedEOF rather than io.EOF,
// which the read path uses for the end of a message.
var errPeerGone = io.ErrUnexpectedEOF

func (b *readBuffer) buffered() int { return b.w - b.r }

// peek returns the next n bytes without consuming them; n is at most readBufferSize. The
// bytes stay valid until the next call, and may be modified in place. When it fails, it
// has consumed nothing.
func (b *readBuffer) peek(n int) ([]byte, error) {
	for b.w-b.r < n {
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
	return b.buf[b.r : b.r+n], nil
}

// wholeHeader returns what is buffered if it begins with a whole frame header, as it
// mostly does, and nil if not: then peek reads the rest. parseHeader looks no further
// than the header.
func (b *readBuffer) wholeHeader() []byte {
	if have := b.w - b.r; have >= 2 && have >= headerSize(b.buf[b.r+1]) {
		return b.buf[b.r:b.w]
	}
	return nil
}

// controlNext reports whether the next buffered byte begins a control frame (RFC 6455
// §5.5: opcodes with the high bit set).
func (b *readBuffer) controlNext() bool {
	return b.r < b.w && opcode(b.buf[b.r]&0x0F).isControl()
}

// discard consumes n buffered bytes.
func (b *readBuffer) discard(n int) {
	b.r += n
	if b.r == b.w {
		b.drained()
	}
}

// drained runs when the buffer has been read to its end.
func (b *readBuffer) drained() {
	if b.raw != nil {
		// Kept until a read finds the socket empty (readFD), which is when the
		// connection goes idle: a busy one takes no trip to the pool per message.
		b.r, b.w = 0, 0
	} else {
		b.release()
	}
	if b.co != nil {
		b.co.more.Store(false)
	}
}

// read reads into p what is buffered or, if nothing is, what the connection has. A read
// larger than the buffer goes straight into p. For payload masked with key (RFC 6455
// §5.3), masked is set: read then unmasks what it reads, while copying it out of the
// buffer, and returns key rotated past it.
func (b *readBuffer) read(p []byte, masked bool, key uint32) (int, uint32, error) {
	if len(p) == 0 {
		return 0, key, nil
	}
	if b.r == b.w {
		if len(p) >= readBufferSize {
			n, err := b.readDirect(p)
			if masked {
				key = mask(key, p[:n])
			}
			return n, key, err
		}
		if err := b.fill(); err != nil {
			return 0, key, err
		}
	}
	n, key := b.copyOut(p, masked, key)
	return n, key, nil
}

// copyOut is read when bytes are buffered: it copies as many as p takes.
func (b *readBuffer) copyOut(p []byte, masked bool, key uint32) (int, uint32) {
	n := min(len(p), b.w-b.r)
	if masked {
		key = maskCopy(p, b.buf[b.r:b.r+n], key)
	} else {
		copy(p, b.buf[b.r:b.r+n])
	}
	b.discard(n)
	return n, key
}

// readDirect reads from the connection straight into p, bypassing the empty buffer.
func (b *readBuffer) readDirect(p []byte) (int, error) {
	b.wait()
	n, err := b.nc.Read(p)
	b.waited()
	if n > 0 {
		if b.ka != nil {
			b.ka.arrived()
		}
		return n, nil
	}
	return 0, connErr(err)
}

// fill reads at least one more byte into the buffer. It first moves what is buffered to
// the front: fill is only called when that is less than a frame header or control frame
// needs, so the copy is short.
func (b *readBuffer) fill() error {
	if b.r > 0 {
		b.w = copy(b.buf[:], b.buf[b.r:b.w])
		b.r = 0
	}
	// No defer and nothing inlined beyond the two reads: this frame is on the stack of
	// every goroutine waiting for its peer, whose stack stays at its first 2 KiB only while
	// the path to the wait is short.
	b.wait()
	var err error
	if b.raw != nil {
		err = b.fillRaw()
	} else {
		err = b.fillConn()
	}
	b.waited()
	if b.ka != nil && err == nil {
		b.ka.arrived()
	}
	return err
}

// fillConn reads through the net.Conn, holding the buffer while it waits.
func (b *readBuffer) fillConn() error {
	b.take()
	n, err := b.nc.Read(b.buf[b.w:])
	b.w += n
	if n > 0 {
		return nil
	}
	b.releaseIfEmpty()
	return connErr(err)
}

// connErr is the error of a read from the connection that returned no bytes.
func connErr(err error) error {
	switch err {
	case nil:
		return io.ErrNoProgress
	case io.EOF:
		return errPeerGone
	}
	return err
}

// release gives the buffer back to the pool; nothing may be buffered.
func (b *readBuffer) release() {
	b.r, b.w = 0, 0
	if b.buf != nil {
		readBuffers.Put(b.buf)
		b.buf = nil
	}
}

func (b *readBuffer) releaseIfEmpty() {
	if b.r == b.w {
		b.release()
	}
}
