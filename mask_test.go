package websocket

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maskReference is RFC 6455 §5.3 read literally: payload octet i is XORed with key octet
// i mod 4. pos is the payload offset of b[0].
func maskReference(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

var maskTestKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// maskKeyAt returns the key mask expects for a piece starting at payload offset pos.
func maskKeyAt(key [4]byte, pos int) uint32 {
	return bits.RotateLeft32(binary.LittleEndian.Uint32(key[:]), -8*(pos%4))
}

func randomMaskInput(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestMaskMatchesReference compares mask with the reference for every length up to 300,
// starting at each of the four key positions and at each alignment of the slice.
func TestMaskMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for pos := range 4 {
		for n := 0; n <= 300; n++ {
			for _, off := range []int{0, 1, 3, 7} {
				buf := randomMaskInput(r, off+n+8)
				want := bytes.Clone(buf)
				maskReference(maskTestKey, pos, want[off:off+n])

				next := mask(maskKeyAt(maskTestKey, pos), buf[off:off+n])
				if !assert.Equal(t, want, buf, "pos %d, length %d, offset %d: masked bytes, or bytes outside the slice", pos, n, off) {
					return
				}
				assert.Equal(t, maskKeyAt(maskTestKey, pos+n), next, "pos %d, length %d: returned key", pos, n)
			}
		}
	}
}

// TestMaskCopyMatchesReference compares maskCopy with the reference for every length up to
// 300, at each key position and at each alignment of source and destination: dst gets the
// masked bytes and nothing past them, src is left as it was, and the key comes back
// rotated as mask's does.
func TestMaskCopyMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for pos := range 4 {
		for n := 0; n <= 300; n++ {
			for _, off := range []int{0, 1, 3, 7} {
				src := randomMaskInput(r, off+n+8)
				srcBefore := bytes.Clone(src)
				dst := randomMaskInput(r, off+n+8)
				want := bytes.Clone(dst)
				copy(want[off:off+n], src[off:off+n])
				maskReference(maskTestKey, pos, want[off:off+n])

				next := maskCopy(dst[off:], src[off:off+n], maskKeyAt(maskTestKey, pos))
				if !assert.Equal(t, want, dst, "pos %d, length %d, offset %d: masked bytes, or bytes outside the slice", pos, n, off) {
					return
				}
				assert.Equal(t, srcBefore, src, "pos %d, length %d: source modified", pos, n)
				assert.Equal(t, maskKeyAt(maskTestKey, pos+n), next, "pos %d, length %d: returned key", pos, n)
			}
		}
	}
}

// TestMaskPieces checks that masking a payload in pieces, each continuing with the key the
// previous one returned, gives the same bytes as masking it whole.
func TestMaskPieces(t *testing.T) {
	key := maskKeyAt(maskTestKey, 0)
	r := rand.New(rand.NewPCG(3, 4))

	t.Run("every split", func(t *testing.T) {
		for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257} {
			data := randomMaskInput(r, n)
			whole := bytes.Clone(data)
			mask(key, whole)
			for i := 0; i <= n; i++ {
				got := bytes.Clone(data)
				k := mask(key, got[:i])
				mask(k, got[i:])
				assert.Equal(t, whole, got, "length %d split at %d", n, i)
			}
		}
	})

	t.Run("random splits", func(t *testing.T) {
		for range 1000 {
			data := randomMaskInput(r, r.IntN(2000))
			whole := bytes.Clone(data)
			wantKey := mask(key, whole)

			got := bytes.Clone(data)
			k := key
			var cuts []int
			for rest := got; len(rest) > 0; {
				m := r.IntN(min(len(rest), 80) + 1)
				cuts = append(cuts, m)
				k = mask(k, rest[:m])
				rest = rest[m:]
			}
			if !assert.Equal(t, whole, got, "length %d cut into %v", len(data), cuts) {
				return
			}
			assert.Equal(t, wantKey, k, "returned key after %v", cuts)
		}
	})
}

// TestMaskTwice checks that masking is its own inverse.
func TestMaskTwice(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 300; n++ {
		data := randomMaskInput(r, n)
		key := r.Uint32() | 0x01010101 // no zero octet, so every byte changes
		b := bytes.Clone(data)
		mask(key, b)
		if n > 0 {
			require.NotEqual(t, data, b, "length %d: masking changed nothing", n)
		}
		mask(key, b)
		assert.Equal(t, data, b, "length %d, key %#x", n, key)
	}
}

var maskBenchSizes = []int{16, 4096, 1 << 20}

func BenchmarkMask(b *testing.B) {
	for _, n := range maskBenchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, n)
			key := maskKeyAt(maskTestKey, 0)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				key = mask(key, buf)
			}
		})
	}
}

func BenchmarkMaskReference(b *testing.B) {
	for _, n := range maskBenchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				maskReference(maskTestKey, 0, buf)
			}
		})
	}
}
