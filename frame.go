package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file is the wire codec for frame headers (RFC 6455 §5.2). It works on byte
// slices only: it knows nothing of Conn, roles, extensions or locks.

// opcode is the 4-bit frame type of RFC 6455 §5.2.
type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

func (op opcode) isControl() bool { return op&0x8 != 0 }

// isReserved reports whether op is one of the opcodes RFC 6455 §5.2 leaves undefined
// (3–7 and 11–15).
func (op opcode) isReserved() bool {
	return (op >= 0x3 && op <= 0x7) || op >= 0xB
}

func (op opcode) String() string {
	switch op {
	case opContinuation:
		return "continuation"
	case opText:
		return "text"
	case opBinary:
		return "binary"
	case opClose:
		return "close"
	case opPing:
		return "ping"
	case opPong:
		return "pong"
	}
	return fmt.Sprintf("reserved opcode %#x", byte(op))
}

// The three reserved bits of the first header byte.
const (
	rsv1 byte = 0x40
	rsv2 byte = 0x20
	rsv3 byte = 0x10
)

const (
	// maxHeaderSize is the longest header: 2 bytes, a 64-bit length and a masking key.
	maxHeaderSize = 2 + 8 + 4
	// maxControlPayload is the largest payload a control frame may carry (§5.5).
	maxControlPayload = 125
	// maxControlFrame is the longest control frame: its length fits the header's first
	// two bytes, which a masking key may follow.
	maxControlFrame = 2 + 4 + maxControlPayload
)

// header is one decoded frame header.
type header struct {
	fin    bool
	rsv    byte // rsv1|rsv2|rsv3 bits as they sit in the first byte
	op     opcode
	masked bool
	key    uint32 // masking key, little-endian as it appears on the wire
	length int64  // payload length
}

// errShortHeader reports that the buffer holds only part of a header; headerSize tells how
// much is needed.
var errShortHeader = errors.New("short frame header")

// headerSize returns the size of the header whose second byte is b1.
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// parseHeader decodes the header at the start of b and returns it with its size. It
// returns errShortHeader when b is too short, and a *ProtocolError for a header no
// WebSocket endpoint may send, whatever its role and extensions.
func parseHeader(b []byte) (header, int, error) {
	if len(b) < 2 {
		return header{}, 0, errShortHeader
	}
	n := headerSize(b[1])
	if len(b) < n {
		return header{}, 0, errShortHeader
	}
	h := header{
		fin:    b[0]&0x80 != 0,
		rsv:    b[0] & (rsv1 | rsv2 | rsv3),
		op:     opcode(b[0] & 0x0F),
		masked: b[1]&0x80 != 0,
	}
	p := 2
	switch l := b[1] & 0x7F; l {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		p += 2
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		// RFC 6455 §5.2: the most significant bit of the 64-bit length MUST be 0.
		if u > math.MaxInt64 {
			return header{}, 0, protocolError(StatusProtocolError, "64-bit payload length has its top bit set")
		}
		h.length = int64(u)
		p += 8
	default:
		h.length = int64(l)
	}
	if h.masked {
		h.key = binary.LittleEndian.Uint32(b[p:])
	}
	if h.op.isReserved() {
		// RFC 6455 §5.2: an unknown opcode MUST fail the connection.
		return header{}, 0, protocolError(StatusProtocolError, fmt.Sprintf("frame uses %v", h.op))
	}
	if h.op.isControl() {
		// RFC 6455 §5.5: control frames MUST NOT be fragmented and carry at most 125 bytes.
		if !h.fin {
			return header{}, 0, protocolError(StatusProtocolError, fmt.Sprintf("fragmented %v frame", h.op))
		}
		if h.length > maxControlPayload {
			return header{}, 0, protocolError(StatusProtocolError, fmt.Sprintf("%v frame of %d bytes exceeds 125", h.op, h.length))
		}
	}
	return h, n, nil
}

// appendHeader appends the wire form of h to b, choosing the shortest length form
// (RFC 6455 §5.2: the minimal number of bytes MUST be used).
func appendHeader(b []byte, h header) []byte {
	b0 := h.rsv | byte(h.op)
	if h.fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.masked {
		b1 = 0x80
	}
	switch {
	case h.length <= 125:
		b = append(b, b0, b1|byte(h.length))
	case h.length <= math.MaxUint16:
		b = append(b, b0, b1|126)
		b = binary.BigEndian.AppendUint16(b, uint16(h.length))
	default:
		b = append(b, b0, b1|127)
		b = binary.BigEndian.AppendUint64(b, uint64(h.length))
	}
	if h.masked {
		b = binary.LittleEndian.AppendUint32(b, h.key)
	}
	return b
}

// encodedHeaderSize is len(appendHeader(nil, h)) without encoding it.
func encodedHeaderSize(length int64, masked bool) int {
	n := 2
	switch {
	case length > math.MaxUint16:
		n += 8
	case length > 125:
		n += 2
	}
	if masked {
		n += 4
	}
	return n
}
