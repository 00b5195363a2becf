//go:build !purego

package websocket

// maskBlock is the length maskBlocks works in: four 16-byte SSE2 registers.
const maskBlock = 64

// maskBlocks XORs b with k repeated; len(b) is a multiple of maskBlock. It is written in
// assembly (mask_amd64.s) because SSE2, which every amd64 processor has, XORs 16 bytes at
// once: about twice the speed of the 8-byte words of mask_generic.go.
//
//go:noescape
func maskBlocks(b []byte, k uint64)
