package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rfcKey is the masking key 37 fa 21 3d of the RFC 6455 §5.7 examples, in wire order.
const rfcKey uint32 = 0x3d21fa37

// TestHeaderWireBytes encodes and decodes whole frames against their exact wire bytes,
// starting with the examples of RFC 6455 §5.7.
func TestHeaderWireBytes(t *testing.T) {
	hello := []byte("Hello")
	maskedHello := []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}
	bin256 := bytes.Repeat([]byte{0xA5}, 256)
	bin64K := bytes.Repeat([]byte{0x5A}, 64<<10)

	tests := []struct {
		name    string
		h       header
		payload []byte // before masking
		frame   []byte // header and payload as sent
	}{
		{
			name:    "unmasked text",
			h:       header{fin: true, op: opText, length: 5},
			payload: hello,
			frame:   []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
		},
		{
			name:    "masked text",
			h:       header{fin: true, op: opText, masked: true, key: rfcKey, length: 5},
			payload: hello,
			frame:   []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		},
		{
			name:    "first fragment",
			h:       header{op: opText, length: 3},
			payload: []byte("Hel"),
			frame:   []byte{0x01, 0x03, 0x48, 0x65, 0x6c},
		},
		{
			name:    "last fragment",
			h:       header{fin: true, op: opContinuation, length: 2},
			payload: []byte("lo"),
			frame:   []byte{0x80, 0x02, 0x6c, 0x6f},
		},
		{
			name:    "unmasked ping",
			h:       header{fin: true, op: opPing, length: 5},
			payload: hello,
			frame:   []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
		},
		{
			name:    "masked pong",
			h:       header{fin: true, op: opPong, masked: true, key: rfcKey, length: 5},
			payload: hello,
			frame:   append([]byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d}, maskedHello...),
		},
		{
			name:    "256 bytes binary",
			h:       header{fin: true, op: opBinary, length: 256},
			payload: bin256,
			frame:   append([]byte{0x82, 0x7E, 0x01, 0x00}, bin256...),
		},
		{
			name:    "64 KiB binary",
			h:       header{fin: true, op: opBinary, length: 64 << 10},
			payload: bin64K,
			frame:   append([]byte{0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}, bin64K...),
		},
		{
			name:    "empty close",
			h:       header{fin: true, op: opClose},
			payload: []byte{},
			frame:   []byte{0x88, 0x00},
		},
		{
			name:    "masked close with a status code",
			h:       header{fin: true, op: opClose, masked: true, key: 0x04030201, length: 2},
			payload: []byte{0x03, 0xE8},
			frame:   []byte{0x88, 0x82, 0x01, 0x02, 0x03, 0x04, 0x02, 0xEA},
		},
		{
			name:    "compressed text",
			h:       header{fin: true, rsv: rsv1, op: opText, length: 1},
			payload: []byte{0x00},
			frame:   []byte{0xC1, 0x01, 0x00},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := len(tt.frame) - len(tt.payload)

			wire := bytes.Clone(tt.payload)
			if tt.h.masked {
				mask(tt.h.key, wire)
			}
			assert.Equal(t, tt.frame, append(appendHeader(nil, tt.h), wire...), "encoded frame")
			assert.Equal(t, size, encodedHeaderSize(tt.h.length, tt.h.masked), "encodedHeaderSize")
			assert.Equal(t, size, headerSize(tt.frame[1]), "headerSize")

			h, n, err := parseHeader(tt.frame)
			require.NoError(t, err)
			assert.Equal(t, tt.h, h, "decoded header")
			require.Equal(t, size, n, "decoded header size")
			got := bytes.Clone(tt.frame[n:])
			if h.masked {
				mask(h.key, got)
			}
			assert.Equal(t, tt.payload, got, "unmasked payload")
		})
	}
}

// TestHeaderLengthRoundTrip checks that each payload length is encoded in the shortest of
// the three forms of RFC 6455 §5.2 and decodes to the same header.
func TestHeaderLengthRoundTrip(t *testing.T) {
	tests := []struct {
		length int64
		len7   byte // the 7-bit length field
		size   int  // header size without a masking key
	}{
		{0, 0, 2},
		{1, 1, 2},
		{125, 125, 2},
		{126, 126, 4},
		{127, 126, 4},
		{65535, 126, 4},
		{65536, 127, 10},
		{1 << 32, 127, 10},
		{math.MaxInt64, 127, 10},
	}
	for _, tt := range tests {
		for _, masked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/masked=%v", tt.length, masked), func(t *testing.T) {
				h := header{fin: true, op: opBinary, masked: masked, length: tt.length}
				size := tt.size
				if masked {
					h.key = 0xdeadbeef
					size += 4
				}

				b := appendHeader(nil, h)
				require.Len(t, b, size)
				assert.Equal(t, tt.len7, b[1]&0x7F, "length form")
				assert.Equal(t, masked, b[1]&0x80 != 0, "mask bit")
				assert.Equal(t, size, encodedHeaderSize(tt.length, masked), "encodedHeaderSize")
				assert.Equal(t, size, headerSize(b[1]), "headerSize")

				got, n, err := parseHeader(b)
				require.NoError(t, err)
				assert.Equal(t, h, got)
				assert.Equal(t, size, n)
			})
		}
	}
}

// TestHeaderFlagsRoundTrip checks every combination of FIN and the RSV bits with every
// defined opcode. The RSV bits are the extensions' business: the codec carries them.
func TestHeaderFlagsRoundTrip(t *testing.T) {
	ops := []opcode{opContinuation, opText, opBinary, opClose, opPing, opPong}
	for _, op := range ops {
		for rsv := byte(0); rsv <= rsv1|rsv2|rsv3; rsv += rsv3 {
			for _, fin := range []bool{false, true} {
				if op.isControl() && !fin {
					continue // refused; see TestParseHeaderRefused
				}
				t.Run(fmt.Sprintf("%v/rsv=%#x/fin=%v", op, rsv, fin), func(t *testing.T) {
					h := header{fin: fin, rsv: rsv, op: op, masked: true, key: 0x01020304, length: 7}
					b := appendHeader(nil, h)
					want := rsv | byte(op)
					if fin {
						want |= 0x80
					}
					assert.Equal(t, want, b[0], "first byte")

					got, n, err := parseHeader(b)
					require.NoError(t, err)
					assert.Equal(t, h, got)
					assert.Equal(t, len(b), n)
				})
			}
		}
	}
}

// TestParseHeaderShort feeds every proper prefix of headers of each size.
func TestParseHeaderShort(t *testing.T) {
	headers := []header{
		{fin: true, op: opText, length: 5},
		{fin: true, op: opText, masked: true, key: rfcKey, length: 5},
		{fin: true, op: opBinary, length: 256},
		{fin: true, op: opBinary, masked: true, key: rfcKey, length: 256},
		{fin: true, op: opBinary, length: 1 << 20},
		{fin: true, op: opBinary, masked: true, key: rfcKey, length: 1 << 20},
		{fin: true, op: opPing, length: 125},
	}
	for _, h := range headers {
		b := appendHeader(nil, h)
		for i := range len(b) {
			t.Run(fmt.Sprintf("% x", b[:i]), func(t *testing.T) {
				_, _, err := parseHeader(b[:i])
				assert.ErrorIs(t, err, errShortHeader)
				var pe *ProtocolError
				assert.False(t, errors.As(err, &pe), "a short header is not a protocol error")
			})
		}
		_, n, err := parseHeader(b)
		require.NoError(t, err)
		assert.Equal(t, len(b), n)
	}
}

// TestParseHeaderRefused checks the headers no endpoint may send: each is a protocol
// error, status 1002.
func TestParseHeaderRefused(t *testing.T) {
	type test struct {
		name string
		b    []byte
	}
	var tests []test
	for op := byte(0x3); op <= 0xF; op++ {
		if op >= 0x8 && op <= 0xA {
			continue
		}
		tests = append(tests,
			test{fmt.Sprintf("reserved opcode %#x", op), []byte{0x80 | op, 0x00}},
			test{fmt.Sprintf("reserved opcode %#x unfinished", op), []byte{op, 0x00}},
			test{fmt.Sprintf("reserved opcode %#x masked", op), []byte{0x80 | op, 0x80, 1, 2, 3, 4}},
		)
	}
	for _, op := range []byte{0x8, 0x9, 0xA} {
		tests = append(tests,
			test{fmt.Sprintf("fragmented control %#x", op), []byte{op, 0x00}},
			test{fmt.Sprintf("fragmented control %#x with RSV bits", op), []byte{0x70 | op, 0x00}},
			test{fmt.Sprintf("control %#x of 126 bytes", op), []byte{0x80 | op, 0x7E, 0x00, 0x7E}},
			test{fmt.Sprintf("control %#x of 65535 bytes", op), []byte{0x80 | op, 0x7E, 0xFF, 0xFF}},
			test{fmt.Sprintf("control %#x of 126 bytes in 64 bits", op), []byte{0x80 | op, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x7E}},
			test{fmt.Sprintf("masked control %#x of 200 bytes", op), []byte{0x80 | op, 0xFE, 0x00, 0xC8, 1, 2, 3, 4}},
		)
	}
	tests = append(tests,
		test{"64-bit length top bit", []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		test{"64-bit length all ones", []byte{0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
		test{"64-bit length top bit masked", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}},
		test{"64-bit length top bit continuation", []byte{0x00, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseHeader(tt.b)
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, StatusProtocolError, pe.Code)
			assert.NotErrorIs(t, err, errShortHeader)
		})
	}
}

// TestParseHeaderLimits checks the largest values that are still allowed.
func TestParseHeaderLimits(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want header
	}{
		{"ping of 125 bytes", []byte{0x89, 0x7D}, header{fin: true, op: opPing, length: 125}},
		{"close of 125 bytes", []byte{0x88, 0x7D}, header{fin: true, op: opClose, length: 125}},
		{"largest 64-bit length", []byte{0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, header{fin: true, op: opBinary, length: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := parseHeader(tt.b)
			require.NoError(t, err)
			assert.Equal(t, tt.want, h)
			assert.Equal(t, len(tt.b), n)
		})
	}
}

// TestParseHeaderKeyWireOrder checks that the key's first wire octet is its low byte, the
// one mask applies to the first payload byte.
func TestParseHeaderKeyWireOrder(t *testing.T) {
	h, _, err := parseHeader([]byte{0x82, 0x81, 0x11, 0x22, 0x33, 0x44})
	require.NoError(t, err)
	assert.Equal(t, uint32(0x44332211), h.key)
	b := []byte{0x00, 0x00, 0x00, 0x00, 0x00}
	mask(h.key, b)
	assert.Equal(t, []byte{0x11, 0x22, 0x33, 0x44, 0x11}, b)
}
