//go:build !amd64 || purego

package websocket

import "encoding/binary"

// maskBlock is the length maskBlocks works in: eight 8-byte words.
const maskBlock = 64

// maskBlocks XORs b with k repeated; len(b) is a multiple of maskBlock. Eight independent
// words a round let their loads and stores overlap, and the loop's bookkeeping is paid once
// per 64 bytes.
func maskBlocks(b []byte, k uint64) {
	for len(b) >= maskBlock {
		xorWord(b[0:], k)
		xorWord(b[8:], k)
		xorWord(b[16:], k)
		xorWord(b[24:], k)
		xorWord(b[32:], k)
		xorWord(b[40:], k)
		xorWord(b[48:], k)
		xorWord(b[56:], k)
		b = b[maskBlock:]
	}
}

// maskCopyBlocks copies src into dst XORed with k repeated; both have the same length, a
// multiple of maskBlock.
func maskCopyBlocks(dst, src []byte, k uint64) {
	for len(src) >= maskBlock && len(dst) >= maskBlock {
		for i := 0; i < maskBlock; i += 8 {
			binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k)
		}
		dst, src = dst[maskBlock:], src[maskBlock:]
	}
}
