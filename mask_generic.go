//go:build !amd64 || purego

package websocket

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
