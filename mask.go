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

// maskCopy copies src into dst masked with key, as mask would mask it in place, and
// returns the key rotated as mask does. dst is at least as long as src and does not
// overlap it. The read path unmasks with it while copying out of the read buffer: one
// pass over the payload instead of a copy and a second pass to unmask.
func maskCopy(dst, src []byte, key uint32) uint32 {
	dst = dst[:len(src)]
	// Indexed rather than resliced: on the short payloads of most messages, slicing twice
	// per step costs as much as the masking.
	i := 0
	if len(src) >= 8 {
		k := uint64(key) | uint64(key)<<32
		if i = len(src) &^ (maskBlock - 1); i > 0 {
			maskCopyBlocks(dst[:i], src[:i], k)
		}
		for ; i+8 <= len(src); i += 8 {
			binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k)
		}
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ byte(key)
		key = bits.RotateLeft32(key, -8)
	}
	return key
}

// xorWord XORs the first 8 bytes of b with k.
func xorWord(b []byte, k uint64) {
	binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
}
