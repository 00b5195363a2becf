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
		// Whole blocks and whole words leave the key where it was: both are multiples of 4.
		if n := len(b) &^ (maskBlock - 1); n > 0 {
			maskBlocks(b[:n], k)
			b = b[n:]
		}
		for len(b) >= 8 {
			xorWord(b, k)
			b = b[8:]
		}
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
