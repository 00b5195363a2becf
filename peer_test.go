package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file holds the test fixtures that put a Conn in front of a peer: a pair of Conns,
// or a raw peer that sends whatever bytes a test wants and records the frames that come
// back.

// pipePair returns a server and a client Conn joined by net.Pipe.
func pipePair(t *testing.T) (server, client *Conn) {
	t.Helper()
	a, b := net.Pipe()
	server = newConn(a, bufio.NewReader(a), false, "")
	client = newConn(b, bufio.NewReader(b), true, "")
	t.Cleanup(func() {
		server.CloseNow()
		client.CloseNow()
	})
	return server, client
}

// serverOverPipe returns a server Conn and the raw end of its net.Pipe, for tests that
// read the Conn's bytes as they come.
func serverOverPipe(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	conn := newConn(a, nil, false, "")
	t.Cleanup(func() {
		conn.CloseNow()
		b.Close()
	})
	return conn, b
}

// frame is a frame as the raw peer saw or sends it, payload unmasked.
type frame struct {
	fin     bool
	rsv     byte
	op      opcode
	payload []byte
}

// closeCode returns the status code of a close frame's payload, 1005 when it has none.
func (f frame) closeCode() StatusCode {
	if len(f.payload) < 2 {
		return StatusNoStatusReceived
	}
	return StatusCode(binary.BigEndian.Uint16(f.payload))
}

// rawPeer is the other end of a Conn, written byte by byte by the test. A goroutine reads
// every frame the Conn sends until the connection ends.
type rawPeer struct {
	t      *testing.T
	nc     net.Conn
	masks  bool         // the peer is a client: it masks what it sends
	frames chan frame   // frames received, closed when the connection ends
	ended  chan error   // why reading ended: io.EOF when the Conn closed TCP
	conn   *Conn        // the Conn under test
	reads  chan readOut // results of readLoop, when started
	out    chan []byte  // bytes for the writing goroutine, in order
}

type readOut struct {
	typ MessageType
	msg []byte
	err error
}

// newRawPeer puts a Conn in the given role in front of a raw peer, over net.Pipe.
func newRawPeer(t *testing.T, connIsClient bool) *rawPeer {
	t.Helper()
	a, b := net.Pipe()
	conn := newConn(a, bufio.NewReader(a), connIsClient, "")
	conn.closeTimeout = time.Second
	return startRawPeer(t, b, conn)
}

// startRawPeer makes nc the raw peer of conn and starts its reading and writing
// goroutines, which end with the test.
func startRawPeer(t *testing.T, nc net.Conn, conn *Conn) *rawPeer {
	p := &rawPeer{
		t:      t,
		nc:     nc,
		masks:  !conn.client,
		frames: make(chan frame, 64),
		ended:  make(chan error, 1),
		conn:   conn,
		out:    make(chan []byte, 64),
	}
	go p.receive()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for b := range p.out {
			// A Conn that has closed the connection makes this fail, which is not the
			// test's concern: what the Conn answered is checked through its frames.
			p.nc.Write(b)
		}
	}()
	t.Cleanup(func() {
		p.conn.CloseNow()
		p.nc.Close()
		close(p.out)
		<-sent
		for range p.frames {
		}
	})
	return p
}

func (p *rawPeer) receive() {
	defer close(p.frames)
	br := bufio.NewReader(p.nc)
	for {
		f, err := readRawFrame(br)
		if err != nil {
			// Like any real peer, close our end once the Conn has closed its own: a
			// Conn that failed waits for that before it closes the socket.
			p.nc.Close()
			p.ended <- err
			return
		}
		p.frames <- f
	}
}

// readRawFrame reads one frame with the codec under test's parser, unmasking it.
func readRawFrame(br *bufio.Reader) (frame, error) {
	var hb [maxHeaderSize]byte
	if _, err := io.ReadFull(br, hb[:2]); err != nil {
		return frame{}, err
	}
	n := headerSize(hb[1])
	if _, err := io.ReadFull(br, hb[2:n]); err != nil {
		return frame{}, err
	}
	h, _, err := parseHeader(hb[:n])
	if err != nil {
		return frame{}, err
	}
	payload := make([]byte, h.length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return frame{}, err
	}
	if h.masked {
		mask(h.key, payload)
	}
	return frame{fin: h.fin, rsv: h.rsv, op: h.op, payload: payload}, nil
}

// encode returns the wire bytes of f as this peer sends it.
func (p *rawPeer) encode(f frame) []byte {
	return encodeFrame(f, p.masks, int64(len(f.payload)))
}

// encodeFrame builds a frame whose header announces length, in the shortest length form,
// masked with the key of the RFC 6455 §5.7 examples when masked is set. It is written from
// RFC 6455 §5.2 without the codec under test, so the fuzz seeds and the peers of these
// tests do not share a bug with it.
func encodeFrame(f frame, masked bool, length int64) []byte {
	b0 := f.rsv | byte(f.op)
	if f.fin {
		b0 |= 0x80
	}
	m := maskBit(masked)
	b := []byte{b0}
	switch {
	case length <= 125:
		b = append(b, m|byte(length))
	case length <= math.MaxUint16:
		b = append(b, m|126, byte(length>>8), byte(length))
	default:
		b = binary.BigEndian.AppendUint64(append(b, m|127), uint64(length))
	}
	return appendMasked(b, masked, f.payload)
}

// appendMasked appends the masking key, when masked is set, and payload to header bytes.
func appendMasked(b []byte, masked bool, payload []byte) []byte {
	if !masked {
		return append(b, payload...)
	}
	b = append(b, rfcMaskKey[:]...)
	for i, c := range payload {
		b = append(b, c^rfcMaskKey[i%4])
	}
	return b
}

// maskBit returns the MASK bit of a frame's second byte.
func maskBit(masked bool) byte {
	if masked {
		return 0x80
	}
	return 0
}

// send writes the frames, each in its own write.
func (p *rawPeer) send(frames ...frame) {
	p.t.Helper()
	for _, f := range frames {
		p.write(p.encode(f))
	}
}

// write queues raw bytes for the writing goroutine: net.Pipe has no buffer, and the test
// must go on while the Conn reads them.
func (p *rawPeer) write(b []byte) {
	p.out <- b
}

// next returns the next frame the Conn sent, failing the test if the connection ended.
func (p *rawPeer) next() frame {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		require.True(p.t, ok, "connection ended while a frame was expected")
		return f
	case <-time.After(5 * time.Second):
		require.FailNow(p.t, "no frame within 5s")
	}
	return frame{}
}

// expectClose asserts that the next frame is a close frame with code and that the Conn
// then closed the TCP connection.
func (p *rawPeer) expectClose(code StatusCode) frame {
	p.t.Helper()
	f := p.next()
	require.Equal(p.t, opClose, f.op, "expected a close frame, got %v %q", f.op, f.payload)
	require.Equal(p.t, code, f.closeCode(), "close reason: %q", f.payload)
	p.expectEnd()
	return f
}

// expectEnd asserts that the connection ends with no further frame.
func (p *rawPeer) expectEnd() {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		require.False(p.t, ok, "unexpected frame %v %q", f.op, f.payload)
	case <-time.After(5 * time.Second):
		require.FailNow(p.t, "connection still open after 5s")
	}
	require.ErrorIs(p.t, <-p.ended, io.EOF)
}

// readLoop reads messages from the Conn in a goroutine until an error, reporting each on
// p.reads.
func (p *rawPeer) readLoop() {
	p.reads = make(chan readOut, 64)
	go func() {
		defer close(p.reads)
		for {
			typ, msg, err := p.conn.Read(context.Background())
			p.reads <- readOut{typ, msg, err}
			if err != nil {
				return
			}
		}
	}()
}

// nextRead returns the next result of readLoop.
func (p *rawPeer) nextRead() readOut {
	p.t.Helper()
	select {
	case r, ok := <-p.reads:
		require.True(p.t, ok, "read loop already ended")
		return r
	case <-time.After(5 * time.Second):
		require.FailNow(p.t, "no read result within 5s")
	}
	return readOut{}
}

// protocolCode returns the close code of the *ProtocolError in err, or 0.
func protocolCode(err error) StatusCode {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

// rfcMaskKey is the masking key 37 fa 21 3d of the RFC 6455 §5.7 examples.
var rfcMaskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// memConn is a net.Conn whose reads come from r and whose writes are kept in out. Once
// closed, it fails reads and writes as a real connection does.
type memConn struct {
	r      io.Reader
	out    bytes.Buffer
	closed bool
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *memConn) Close() error                     { c.closed = true; return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
