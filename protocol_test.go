package websocket

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests what a Conn does with frames that break RFC 6455: the close code it
// sends and the error it returns.

// violation is a peer sending something RFC 6455 forbids, and the close code that must
// answer it.
type violation struct {
	name   string
	frames []frame
	wire   []byte // raw bytes sent after frames
	code   StatusCode
}

func violations(peerMasks bool) []violation {
	text := func(s string) frame { return frame{fin: true, op: opText, payload: []byte(s)} }
	closeWith := func(code int, reason string) frame {
		return frame{fin: true, op: opClose, payload: append([]byte{byte(code >> 8), byte(code)}, reason...)}
	}
	vs := []violation{
		{name: "RSV1 without extension", frames: []frame{{fin: true, rsv: rsv1, op: opText, payload: []byte("x")}}, code: StatusProtocolError},
		{name: "RSV2", frames: []frame{{fin: true, rsv: rsv2, op: opBinary}}, code: StatusProtocolError},
		{name: "RSV3 on ping", frames: []frame{{fin: true, rsv: rsv3, op: opPing}}, code: StatusProtocolError},
		{name: "opcode 3", frames: []frame{{fin: true, op: 3}}, code: StatusProtocolError},
		{name: "opcode 7", frames: []frame{{fin: true, op: 7}}, code: StatusProtocolError},
		{name: "opcode 11", frames: []frame{{fin: true, op: 11}}, code: StatusProtocolError},
		{name: "opcode 15", frames: []frame{{fin: true, op: 15}}, code: StatusProtocolError},
		{name: "ping of 126 bytes", wire: encodeFrame(frame{fin: true, op: opPing, payload: payloadOf(126)}, peerMasks, 126), code: StatusProtocolError},
		{name: "fragmented ping", frames: []frame{{op: opPing, payload: []byte("x")}}, code: StatusProtocolError},
		{name: "continuation with nothing open", frames: []frame{{fin: true, op: opContinuation, payload: []byte("x")}}, code: StatusProtocolError},
		{name: "text inside fragmented message", frames: []frame{{op: opText, payload: []byte("a")}, text("b")}, code: StatusProtocolError},
		{name: "binary inside fragmented message", frames: []frame{{op: opBinary, payload: []byte("a")}, {fin: true, op: opBinary}}, code: StatusProtocolError},
		{name: "64-bit length with top bit", wire: []byte{0x82, 0x7F | maskBit(peerMasks), 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, code: StatusProtocolError},
		{name: "invalid UTF-8", frames: []frame{text("ab\xffcd")}, code: StatusInvalidFramePayloadData},
		{name: "UTF-8 split across frames, bad continuation", frames: []frame{{op: opText, payload: []byte("\xce")}, {fin: true, op: opContinuation, payload: []byte("A")}}, code: StatusInvalidFramePayloadData},
		{name: "text ending in a truncated code point", frames: []frame{text("ok\xe2\x82")}, code: StatusInvalidFramePayloadData},
		{name: "surrogate", frames: []frame{text("\xed\xa0\x80")}, code: StatusInvalidFramePayloadData},
		{name: "close with 1-byte payload", frames: []frame{{fin: true, op: opClose, payload: []byte{3}}}, code: StatusProtocolError},
		{name: "close reason not UTF-8", frames: []frame{closeWith(1000, "\xff")}, code: StatusInvalidFramePayloadData},
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		vs = append(vs, violation{name: fmt.Sprintf("close code %d", code), frames: []frame{closeWith(code, "")}, code: StatusProtocolError})
	}
	return vs
}

func TestProtocolViolations(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		role := map[bool]string{false: "server", true: "client"}[connIsClient]
		for _, v := range violations(!connIsClient) {
			t.Run(role+"/"+v.name, func(t *testing.T) {
				p := newRawPeer(t, connIsClient)
				p.readLoop()
				p.send(v.frames...)
				if v.wire != nil {
					p.write(v.wire)
				}
				r := p.nextRead()
				require.Error(t, r.err)
				assert.Equal(t, v.code, protocolCode(r.err), "error: %v", r.err)
				assert.ErrorIs(t, r.err, net.ErrClosed)
				p.expectClose(v.code)
			})
		}
	}
}

func TestMaskingRules(t *testing.T) {
	t.Run("server gets unmasked frame", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.readLoop()
		p.write(encodeFrame(frame{fin: true, op: opText, payload: []byte("hi")}, false, 2))
		r := p.nextRead()
		assert.Equal(t, StatusProtocolError, protocolCode(r.err))
		p.expectClose(StatusProtocolError)
	})
	t.Run("client gets masked frame", func(t *testing.T) {
		p := newRawPeer(t, true)
		p.readLoop()
		p.write(encodeFrame(frame{fin: true, op: opText, payload: []byte("hi")}, true, 2))
		r := p.nextRead()
		assert.Equal(t, StatusProtocolError, protocolCode(r.err))
		p.expectClose(StatusProtocolError)
	})
}

// TestUTF8FailsFast checks the Conn closes with 1007 as soon as the text cannot be UTF-8,
// without waiting for the rest of the frame, which the peer never sends.
func TestUTF8FailsFast(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		t.Run(fmt.Sprintf("client=%v", connIsClient), func(t *testing.T) {
			p := newRawPeer(t, connIsClient)
			p.readLoop()
			// The header announces 100 bytes; only the first 10 come, bad at byte 5.
			wire := encodeFrame(frame{fin: true, op: opText, payload: []byte("hello\xc0world-----")}, !connIsClient, 100)
			p.write(wire[:len(wire)-5])
			r := p.nextRead()
			assert.Equal(t, StatusInvalidFramePayloadData, protocolCode(r.err))
			p.expectClose(StatusInvalidFramePayloadData)
		})
	}
}

func TestReadLimit(t *testing.T) {
	t.Run("default is 1 MiB", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.readLoop()
		p.send(frame{fin: true, op: opBinary, payload: payloadOf(1 << 20)})
		r := p.nextRead()
		require.NoError(t, r.err)
		assert.Len(t, r.msg, 1<<20)
		p.send(frame{fin: true, op: opBinary, payload: payloadOf(1<<20 + 1)})
		r = p.nextRead()
		assert.ErrorIs(t, r.err, ErrMessageTooBig)
		p.expectClose(StatusMessageTooBig)
	})
	t.Run("checked across fragments", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.conn.SetReadLimit(10)
		p.readLoop()
		p.send(frame{op: opText, payload: []byte("12345")}, frame{fin: true, op: opContinuation, payload: []byte("678901")})
		r := p.nextRead()
		assert.ErrorIs(t, r.err, ErrMessageTooBig)
		assert.Equal(t, StatusMessageTooBig, protocolCode(r.err))
		p.expectClose(StatusMessageTooBig)
	})
	t.Run("checked on the header, before the payload", func(t *testing.T) {
		p := newRawPeer(t, true)
		p.readLoop()
		// Only the header of a 1 TiB frame is sent.
		p.write(encodeFrame(frame{fin: true, op: opBinary}, false, 1<<40))
		r := p.nextRead()
		assert.ErrorIs(t, r.err, ErrMessageTooBig)
		p.expectClose(StatusMessageTooBig)
	})
	t.Run("a huge continuation cannot wrap the count around", func(t *testing.T) {
		wc := &memConn{r: bytes.NewReader([]byte{0x02, 0x01, 'A', 0x80, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})}
		c := newConn(wc, nil, true, "")
		_, _, err := c.Read(context.Background())
		assert.ErrorIs(t, err, ErrMessageTooBig)
	})
	t.Run("raised", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.conn.SetReadLimit(2 << 20)
		p.readLoop()
		p.send(frame{fin: true, op: opBinary, payload: payloadOf(2 << 20)})
		r := p.nextRead()
		require.NoError(t, r.err)
		assert.Len(t, r.msg, 2<<20)
	})
	t.Run("removed: growth follows the data, not the length field", func(t *testing.T) {
		p := newRawPeer(t, true)
		p.conn.SetReadLimit(0)
		p.readLoop()
		// Announce 1 TiB, send 3 bytes, then vanish: Read must not have allocated 1 TiB.
		p.write(encodeFrame(frame{fin: true, op: opBinary, payload: []byte("abc")}, false, 1<<40)[:13])
		p.nc.Close()
		r := p.nextRead()
		assert.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
	})
}
