package load

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverFrame encodes an unmasked frame as a server sends it.
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// clientWithServer returns a client whose connection's other end gets wire written
// into it, and whose own writes are collected into the returned channel's value.
func clientWithServer(t *testing.T, o options, wire func(c *client) []byte) (*client, <-chan []byte) {
	t.Helper()
	cn, sn := net.Pipe()
	t.Cleanup(func() { cn.Close(); sn.Close() })
	c := newClient(cn, o)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(sn)
		got <- b
	}()
	w := wire(c)
	go func() {
		sn.Write(w)
	}()
	return c, got
}

// TestReceive checks that echoes are reassembled from any framing the servers may use.
func TestReceive(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		wire func(want []byte) []byte
	}{
		{"7-bit length", 125, func(p []byte) []byte { return serverFrame(true, opBinary, p) }},
		{"16-bit length", 126, func(p []byte) []byte { return serverFrame(true, opBinary, p) }},
		{"64-bit length", 70000, func(p []byte) []byte { return serverFrame(true, opBinary, p) }},
		{"empty", 0, func(p []byte) []byte { return serverFrame(true, opBinary, p) }},
		{"fragmented with a pong between", 300, func(p []byte) []byte {
			b := serverFrame(false, opBinary, p[:100])
			b = append(b, serverFrame(true, opPong, []byte("x"))...)
			b = append(b, serverFrame(false, opContinuation, nil)...)
			return append(b, serverFrame(true, opContinuation, p[100:])...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := clientWithServer(t, options{size: tc.size, seed: 1}, func(c *client) []byte {
				_, want := c.payload(3)
				return tc.wire(want)
			})
			assert.NoError(t, c.receive(3))
		})
	}
}

// TestReceiveAnswersPing checks that a ping between fragments gets its pong, masked.
func TestReceiveAnswersPing(t *testing.T) {
	c, sent := clientWithServer(t, options{size: 10, seed: 1}, func(c *client) []byte {
		_, want := c.payload(0)
		b := serverFrame(false, opText, want[:4])
		b = append(b, serverFrame(true, opPing, []byte("hi"))...)
		return append(b, serverFrame(true, opContinuation, want[4:])...)
	})
	c.op = opText
	require.NoError(t, c.receive(0))
	c.nc.Close()
	pong := <-sent
	require.Len(t, pong, 2+4+2)
	assert.Equal(t, []byte{0x80 | opPong, 0x80 | 2}, pong[:2])
	assert.Equal(t, []byte("hi"), []byte{pong[6] ^ pong[2], pong[7] ^ pong[3]})
}

// TestReceiveRejects checks that every way an echo can be wrong fails the run.
func TestReceiveRejects(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wire       func(want []byte) []byte
		validation bool // the error is a validation failure, not a protocol one
	}{
		{"a byte differs", func(p []byte) []byte {
			p[7] ^= 1
			return serverFrame(true, opBinary, p)
		}, true},
		{"bytes shifted", func(p []byte) []byte {
			return serverFrame(true, opBinary, append(p[4:], p[:4]...))
		}, true},
		{"too short", func(p []byte) []byte { return serverFrame(true, opBinary, p[:19]) }, true},
		{"too long", func(p []byte) []byte { return serverFrame(true, opBinary, append(p, 'x')) }, true},
		{"wrong type", func(p []byte) []byte { return serverFrame(true, opText, p) }, true},
		{"new message inside a fragmented one", func(p []byte) []byte {
			return append(serverFrame(false, opBinary, p[:5]), serverFrame(true, opBinary, p[5:])...)
		}, true},
		{"masked", func(p []byte) []byte {
			b := serverFrame(true, opBinary, p)
			b[1] |= 0x80
			return b
		}, false},
		{"reserved bit", func(p []byte) []byte {
			b := serverFrame(true, opBinary, p)
			b[0] |= 0x40
			return b
		}, false},
		{"close", func([]byte) []byte { return serverFrame(true, opClose, []byte{0x03, 0xF3}) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := clientWithServer(t, options{size: 20, seed: 1}, func(c *client) []byte {
				_, want := c.payload(3)
				return tc.wire(append([]byte(nil), want...))
			})
			err := c.receive(3)
			require.Error(t, err)
			assert.Equal(t, tc.validation, errors.Is(err, errValidation), "%v", err)
		})
	}
}

// TestSendMasks checks the frames sent: masked with the connection's key, length in
// its shortest form.
func TestSendMasks(t *testing.T) {
	for _, size := range []int{0, 125, 126, 65535, 65536} {
		c, sent := clientWithServer(t, options{size: size, seed: 1}, func(*client) []byte { return nil })
		require.NoError(t, c.send(5))
		c.nc.Close()
		b := <-sent
		_, want := c.payload(5)
		hdr := len(appendFrameHeader(nil, opBinary, size, c.key))
		require.Len(t, b, hdr+size, "size %d", size)
		assert.Equal(t, byte(0x80|opBinary), b[0])
		assert.Equal(t, c.key[:], b[hdr-4:hdr], "size %d", size)
		got := b[hdr:]
		for i := range got {
			got[i] ^= c.key[i%4]
		}
		assert.Equal(t, want, got, "size %d", size)
	}
}

// TestRunFailsOnCorruptEcho checks that a server that echoes a wrong byte fails the run.
func TestRunFailsOnCorruptEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		buf := make([]byte, 64)
		for {
			n, err := io.ReadFull(nc, buf)
			if err != nil {
				return
			}
			buf[n-1]++
			nc.Write(buf[:n])
		}
	}()
	_, err = Run(Config{Addr: ln.Addr().String(), Scenario: "echo", Conns: 1, Size: 64, Messages: 3, Raw: true})
	assert.ErrorIs(t, err, errValidation)
}

// writeCounter counts the write calls made on a connection.
type writeCounter struct {
	net.Conn
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.Conn.Write(p)
}

// TestSendBatch checks that a batch of small messages goes out in one write call, each
// in a frame of its own, and that large messages still go out whole and in order.
func TestSendBatch(t *testing.T) {
	for _, tc := range []struct {
		size, writes int
		raw          bool
	}{
		{size: 128, writes: 1},
		{size: 128, writes: 1, raw: true},
		{size: largeMessage + 1, writes: 3, raw: true},
		{size: largeMessage + 1, writes: 6}, // header and payload apart: writeCounter has no writev
	} {
		cn, sn := net.Pipe()
		wc := &writeCounter{Conn: cn}
		c := newClient(wc, options{size: tc.size, seed: 1, raw: tc.raw})
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(sn)
			got <- b
		}()
		require.NoError(t, c.sendBatch(5, 3))
		cn.Close()
		b := <-got
		sn.Close()
		assert.Equal(t, tc.writes, wc.writes, "size %d raw %v", tc.size, tc.raw)
		for k := 5; k < 8; k++ {
			_, want := c.payload(k)
			if !tc.raw {
				hdr := len(appendFrameHeader(nil, opBinary, tc.size, c.key))
				require.GreaterOrEqual(t, len(b), hdr+tc.size)
				p := b[hdr : hdr+tc.size]
				for i := range p {
					p[i] ^= c.key[i%4]
				}
				b = b[hdr:]
			}
			require.GreaterOrEqual(t, len(b), tc.size)
			assert.Equal(t, want, b[:tc.size], "message %d, size %d raw %v", k, tc.size, tc.raw)
			b = b[tc.size:]
		}
		assert.Empty(t, b)
	}
}
