package load

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// This file is the client side of RFC 6455 that the load generator speaks on raw TCP. It
// is written here, not taken from a library under test, so that no server is measured
// against its own client.

// The handshake uses the key of RFC 6455 §1.3, whose accept value is known.
const (
	handshakeKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	handshakeAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// offsets is how many different payloads a connection cycles through. Consecutive
// messages differ, so an echo of the wrong message fails validation.
const offsets = 64

// errValidation marks an echo that differs from what was sent.
var errValidation = errors.New("echo differs from what was sent")

// options say what a connection sends and how.
type options struct {
	raw     bool   // no handshake, no framing: bytes are echoed as they are
	text    bool   // text messages instead of binary ones
	deflate bool   // negotiate permessage-deflate and compress every message sent
	size    int    // payload bytes per message
	seed    uint64 // picks the payloads and the masking key
}

// client is one connection of the load generator.
type client struct {
	nc   net.Conn
	br   *bufio.Reader
	raw  bool // no handshake, no framing: bytes are echoed as they are
	op   byte // opcode of the messages sent
	size int

	// Without compression, pattern holds printable ASCII (valid as text), masked the same
	// bytes XORed with the masking key. Message k carries pattern[off:off+size] with
	// off = 4*(k%offsets): a multiple of 4, so masked[off:] is that payload masked from
	// the key's first byte, and sending costs no masking. With compression, pattern holds
	// JSON records and message k is pattern[i*size:(i+1)*size], i = k mod len(pmd.frames).
	pattern, masked []byte
	key             [4]byte
	scratch         []byte // the frames of one write call, or a large message's header
	bufs            net.Buffers
	ctrl            [125]byte

	pmd        *deflater // permessage-deflate, when it was asked for
	extensions string    // the Sec-WebSocket-Extensions of the server's response

	// Bytes of data frames, headers included, sent and received.
	sentBytes, receivedBytes int64
}

// dial connects to addr and, unless raw, completes the opening handshake.
func dial(addr string, o options) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := newClient(nc, o)
	if !o.raw {
		if err := c.handshake(addr); err != nil {
			c.abort()
			return nil, err
		}
	}
	return c, nil
}

func newClient(nc net.Conn, o options) *client {
	c := &client{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), raw: o.raw, op: opBinary, size: o.size}
	if o.text {
		c.op = opText
	}
	rng := rand.New(rand.NewPCG(o.seed, 0x6bed))
	binary.LittleEndian.PutUint32(c.key[:], rng.Uint32()|1)
	if o.deflate && !o.raw {
		n := deflateMessages(o.size)
		c.pmd = newDeflater(n)
		c.pattern = appendRecords(make([]byte, 0, n*o.size), rng, n*o.size)
		return c
	}
	n := o.size + 4*offsets
	c.pattern = make([]byte, n)
	c.masked = make([]byte, n)
	for i := range c.pattern {
		c.pattern[i] = byte(' ' + rng.IntN('~'-' '+1))
		c.masked[i] = c.pattern[i] ^ c.key[i%4]
	}
	c.scratch = make([]byte, 0, 14+min(o.size, largeMessage))
	return c
}

// handshake sends the opening request and checks the 101 response (RFC 6455 §4.1).
func (c *client) handshake(host string) error {
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + handshakeKey + "\r\nSec-WebSocket-Version: 13\r\n"
	if c.pmd != nil {
		req += "Sec-WebSocket-Extensions: " + deflateOffer + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading the handshake response: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101 ")) {
		return fmt.Errorf("handshake refused: %q", bytes.TrimSpace(line))
	}
	accepted := false
	var extensions []string
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading the handshake response: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(name), "Sec-WebSocket-Accept") {
			if string(bytes.TrimSpace(value)) != handshakeAccept {
				return fmt.Errorf("handshake answered with Sec-WebSocket-Accept %q", bytes.TrimSpace(value))
			}
			accepted = true
		}
		if ok && strings.EqualFold(string(name), "Sec-WebSocket-Extensions") {
			extensions = append(extensions, string(bytes.TrimSpace(value)))
		}
	}
	if !accepted {
		return errors.New("handshake response has no Sec-WebSocket-Accept")
	}
	c.extensions = strings.Join(extensions, ", ")
	if c.pmd == nil {
		if len(extensions) > 0 {
			return fmt.Errorf("server answered with extensions %q, none offered", c.extensions)
		}
		return nil
	}
	p, ok, err := parseDeflateResponse(extensions)
	if err != nil {
		return err
	}
	if !ok {
		return errDeclined
	}
	c.pmd.params = p
	return nil
}

// payload returns message k as sent (masked unless raw; nil when compressed, see
// deflater.frame) and as it must come back.
func (c *client) payload(k int) (send, want []byte) {
	if c.pmd != nil {
		i := k % len(c.pmd.frames)
		return nil, c.pattern[i*c.size : (i+1)*c.size]
	}
	off := 4 * (k % offsets)
	want = c.pattern[off : off+c.size]
	if c.raw {
		return want, want
	}
	return c.masked[off : off+c.size], want
}

// send writes message k: one masked frame, compressed if permessage-deflate was asked
// for, or the bare bytes when raw.
func (c *client) send(k int) error { return c.sendBatch(k, 1) }

// largeMessage is the size above which a message is written straight from the pattern,
// on its own, rather than copied into scratch.
const largeMessage = 64 << 10

// sendBatch writes messages k to k+n-1. Unless they are large, they go out in one write
// call, as a client that has several messages ready would send them.
func (c *client) sendBatch(k, n int) error {
	if c.pmd == nil && c.size > largeMessage {
		for i := range n {
			if err := c.sendLarge(k + i); err != nil {
				return err
			}
		}
		return nil
	}
	b := c.scratch[:0]
	for i := range n {
		var err error
		if b, err = c.appendMessage(b, k+i); err != nil {
			return err
		}
	}
	c.scratch = b[:0] // keeps what it grew to
	_, err := c.nc.Write(b)
	return err
}

// appendMessage appends message k, as it goes on the wire, to b.
func (c *client) appendMessage(b []byte, k int) ([]byte, error) {
	p, want := c.payload(k)
	if c.pmd != nil {
		f, err := c.pmd.frame(k%len(c.pmd.frames), c.op, want, c.key)
		if err != nil {
			return b, err
		}
		c.sentBytes += int64(len(f))
		return append(b, f...), nil
	}
	n := len(b)
	if !c.raw {
		b = appendFrameHeader(b, c.op, len(p), c.key)
	}
	b = append(b, p...)
	c.sentBytes += int64(len(b) - n)
	return b, nil
}

// sendLarge writes large message k without copying its payload.
func (c *client) sendLarge(k int) error {
	p, _ := c.payload(k)
	if c.raw {
		c.sentBytes += int64(len(p))
		_, err := c.nc.Write(p)
		return err
	}
	h := appendFrameHeader(c.scratch[:0], c.op, len(p), c.key)
	c.sentBytes += int64(len(h) + len(p))
	c.bufs = append(c.bufs[:0], h, p)
	_, err := c.bufs.WriteTo(c.nc)
	return err
}

// concurrentAbove is the message size above which roundTrip reads the echo while it
// sends. A server that streams starts echoing before the message is all in; were the
// client not reading by then, the two would wait on each other's socket buffers.
const concurrentAbove = 64 << 10

// roundTrip sends message k and receives its echo.
func (c *client) roundTrip(k int) error {
	if c.size <= concurrentAbove {
		if err := c.send(k); err != nil {
			return err
		}
		return c.receive(k)
	}
	sent := make(chan error, 1)
	go func() { sent <- c.send(k) }()
	err := c.receive(k)
	if err != nil {
		c.nc.Close() // ends the send
	}
	if serr := <-sent; err == nil {
		err = serr
	}
	return err
}

// appendFrameHeader appends the header of a final, masked frame (RFC 6455 §5.2).
func appendFrameHeader(b []byte, op byte, n int, key [4]byte) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, key[:]...)
}

// frameHeader is a decoded server frame header.
type frameHeader struct {
	fin    bool
	rsv1   bool // the message is compressed (RFC 7692 §6)
	op     byte
	size   int // of the header
	length int64
}

// readFrameHeader reads the next frame header, which a server must send unmasked and
// without reserved bits, but for RSV1 on data frames when permessage-deflate was asked
// for.
func (c *client) readFrameHeader() (frameHeader, error) {
	b, err := c.br.Peek(2)
	if err != nil {
		return frameHeader{}, err
	}
	rsv := b[0] & 0x70
	if c.pmd != nil && b[0]&0x0F < opClose {
		rsv &^= 0x40 // RFC 7692 §6.1: never on control frames
	}
	if rsv != 0 {
		return frameHeader{}, fmt.Errorf("server frame has reserved bits %#x set", rsv)
	}
	if b[1]&0x80 != 0 {
		return frameHeader{}, errors.New("server frame is masked")
	}
	h := frameHeader{fin: b[0]&0x80 != 0, rsv1: b[0]&0x40 != 0, op: b[0] & 0x0F, length: int64(b[1] & 0x7F)}
	n := 2
	switch h.length {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b, err = c.br.Peek(n); err != nil {
		return frameHeader{}, err
	}
	switch n {
	case 4:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
	case 10:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return frameHeader{}, errors.New("server frame length has its top bit set")
		}
		h.length = int64(u)
	}
	c.br.Discard(n)
	h.size = n
	if h.op >= opClose && (!h.fin || h.length > 125) {
		return frameHeader{}, fmt.Errorf("server sent a control frame of %d bytes, fin %v", h.length, h.fin)
	}
	return h, nil
}

// receive reads the echo of message k, which may come in any number of frames with
// control frames between them, compressed or not, and compares every byte with what was
// sent.
func (c *client) receive(k int) error {
	_, want := c.payload(k)
	if c.raw {
		c.receivedBytes += int64(len(want))
		return c.compare(want)
	}
	got := 0
	first, compressed := true, false
	for {
		h, err := c.readFrameHeader()
		if err != nil {
			return err
		}
		if h.op >= opClose {
			if err := c.control(h); err != nil {
				return err
			}
			continue
		}
		switch {
		case first && h.op != c.op:
			return fmt.Errorf("%w: echo starts with opcode %#x, sent %#x", errValidation, h.op, c.op)
		case !first && h.op != opContinuation:
			return fmt.Errorf("%w: opcode %#x inside a fragmented message", errValidation, h.op)
		case !first && h.rsv1:
			return errors.New("server set RSV1 on a continuation frame") // RFC 7692 §6.1
		}
		if first {
			compressed = h.rsv1
		}
		first = false
		c.receivedBytes += int64(h.size) + h.length
		if compressed {
			if err := c.pmd.readCompressed(c.br, h.length, len(want)); err != nil {
				return err
			}
			if h.fin {
				return c.pmd.inflate(want)
			}
			continue
		}
		if h.length > int64(len(want)-got) {
			return fmt.Errorf("%w: echo is longer than the %d bytes sent", errValidation, len(want))
		}
		if err := c.compare(want[got : got+int(h.length)]); err != nil {
			return err
		}
		got += int(h.length)
		if h.fin {
			break
		}
	}
	if got != len(want) {
		return fmt.Errorf("%w: echo has %d bytes, sent %d", errValidation, got, len(want))
	}
	return nil
}

// compare reads len(want) bytes and checks they are want, without copying them.
func (c *client) compare(want []byte) error {
	for len(want) > 0 {
		n := c.br.Buffered()
		if n == 0 {
			n = 1
		}
		b, err := c.br.Peek(min(n, len(want)))
		if len(b) > 0 {
			if !bytes.Equal(b, want[:len(b)]) {
				return fmt.Errorf("%w: payload bytes differ", errValidation)
			}
			c.br.Discard(len(b))
			want = want[len(b):]
		}
		if err != nil && len(want) > 0 {
			return err
		}
	}
	return nil
}

// control handles a control frame from the server: pings get their pong, a close ends
// the run.
func (c *client) control(h frameHeader) error {
	p := c.ctrl[:h.length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	switch h.op {
	case opPing:
		return c.writeControl(opPong, p)
	case opPong:
		return nil
	case opClose:
		code := 1005
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		return fmt.Errorf("server closed the connection: %d %q", code, p[min(2, len(p)):])
	}
	return fmt.Errorf("server sent reserved opcode %#x", h.op)
}

func (c *client) writeControl(op byte, payload []byte) error {
	b := appendFrameHeader(make([]byte, 0, 14+len(payload)), op, len(payload), c.key)
	for i, x := range payload {
		b = append(b, x^c.key[i%4])
	}
	_, err := c.nc.Write(b)
	return err
}

// close runs the closing handshake (RFC 6455 §7), waiting at most a second for the
// server's close frame, then closes the TCP connection.
func (c *client) close() {
	if !c.raw {
		c.nc.SetDeadline(time.Now().Add(time.Second))
		if c.writeControl(opClose, []byte{0x03, 0xE8}) == nil { // 1000: normal closure
			for {
				h, err := c.readFrameHeader()
				if err != nil {
					break
				}
				if h.op == opClose {
					break
				}
				if _, err := c.br.Discard(int(h.length)); err != nil {
					break
				}
			}
		}
	}
	c.nc.Close()
}

// abort drops the connection with a reset, so that it leaves no socket in TIME_WAIT:
// the idle and upgrade scenarios open thousands and would run out of local ports.
func (c *client) abort() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.nc.Close()
}
