//go:build !purego

package websocket

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMaskVectorLoops compares each of maskBlocks' loops with the reference, whichever
// one this processor makes mask use, for every whole number of blocks up to 20 and at
// each alignment of the slice.
func TestMaskVectorLoops(t *testing.T) {
	loops := map[string]func([]byte, uint64){"SSE2": maskSSE2}
	if useAVX2 {
		loops["AVX2"] = maskAVX2
	} else {
		t.Log("no AVX2 on this processor: its loop is not tested")
	}
	key := maskKeyAt(maskTestKey, 0)
	k := uint64(key) | uint64(key)<<32
	r := rand.New(rand.NewPCG(7, 8))
	for name, loop := range loops {
		for blocks := 0; blocks <= 20; blocks++ {
			n := blocks * maskBlock
			for _, off := range []int{0, 1, 8, 31} {
				buf := randomMaskInput(r, off+n+maskBlock)
				want := bytes.Clone(buf)
				maskReference(maskTestKey, 0, want[off:off+n])
				loop(buf[off:off+n], k)
				if !assert.Equal(t, want, buf, "%s: %d blocks at offset %d: masked bytes, or bytes outside the slice", name, blocks, off) {
					return
				}
			}
		}
	}
}

// TestMaskCopyVectorLoops compares each of maskCopyBlocks' loops with the reference for
// every whole number of blocks up to 20 and at each alignment of source and destination.
func TestMaskCopyVectorLoops(t *testing.T) {
	loops := map[string]func(dst, src []byte, k uint64){"SSE2": maskCopySSE2}
	if useAVX2 {
		loops["AVX2"] = maskCopyAVX2
	} else {
		t.Log("no AVX2 on this processor: its loop is not tested")
	}
	key := maskKeyAt(maskTestKey, 0)
	k := uint64(key) | uint64(key)<<32
	r := rand.New(rand.NewPCG(11, 12))
	for name, loop := range loops {
		for blocks := 0; blocks <= 20; blocks++ {
			n := blocks * maskBlock
			for _, off := range []int{0, 1, 8, 31} {
				src := randomMaskInput(r, off+n+maskBlock)
				srcBefore := bytes.Clone(src)
				dst := randomMaskInput(r, off+n+maskBlock)
				want := bytes.Clone(dst)
				copy(want[off:off+n], src[off:off+n])
				maskReference(maskTestKey, 0, want[off:off+n])
				loop(dst[off:off+n], src[off:off+n], k)
				if !assert.Equal(t, want, dst, "%s: %d blocks at offset %d: masked bytes, or bytes outside the slice", name, blocks, off) {
					return
				}
				assert.Equal(t, srcBefore, src, "%s: %d blocks: source modified", name, blocks)
			}
		}
	}
}

// BenchmarkMaskLoops measures each of maskBlocks' loops alone.
func BenchmarkMaskLoops(b *testing.B) {
	loops := []struct {
		name string
		loop func([]byte, uint64)
	}{{"SSE2", maskSSE2}}
	if useAVX2 {
		loops = append(loops, struct {
			name string
			loop func([]byte, uint64)
		}{"AVX2", maskAVX2})
	}
	for _, l := range loops {
		for _, n := range []int{4096, 1 << 20} {
			b.Run(l.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				buf := make([]byte, n)
				b.SetBytes(int64(n))
				for b.Loop() {
					l.loop(buf, 0x3d21fa373d21fa37)
				}
			})
		}
	}
}
