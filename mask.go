package websocket

import (
	"encoding/binary"
	"math/bits"
)

// mask XORs b in place with the masking key (RFC 6455 §5.3) and returns the key rotated so
// that a following call continues where this one stopped: masking a payload in pieces gives
// the same bytes as masking it whole.
//
// key holds the four key octets in wire order, little-endian: octet i is byte(key >> 8*i).
// The caller owns b; mask is only ever given buffers of this package or a read
// destination, never a slice passed to a write.
func mask(key uint32, b []byte) uint32 {
	if len(b) >= 8 {
		k := uint64(key) | uint64(key)<<32
		// Eight independent words a round: their loads and stores overlap, and the loop's
		// bookkeeping is paid once per 64 bytes.
		for len(b) >= 64 {
			xorWord(b[0:], k)
			xorWord(b[8:], k)
			xorWord(b[16:], k)
			xorWord(b[24:], k)
			xorWord(b[32:], k)
			xorWord(b[40:], k)
			xorWord(b[48:], k)
			xorWord(b[56:], k)
			b = b[64:]
		}
		for len(b) >= 8 {
			xorWord(b, k)
			b = b[8:]
		}
		// Whole words leave the key where it was: 8 is a multiple of 4.
	}
	for i := range b {
		b[i] ^= byte(key)
		key = bits.RotateLeft32(key, -8)
	}
	return key
}

// xorWord XORs the first 8 bytes of b with k.
func xorWord(b []byte, k uint64) {
	binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
}
