package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file checks what compress/flate cannot: how far back the Conn's compressed messages
// refer. Its reader accepts any distance up to 32 KiB, while a peer that granted a window
// of 2^N bytes (RFC 7692 §7.1.2) may keep no more than that, and a peer told that we use
// no context takeover keeps nothing of earlier messages. So the tests decode with a small
// DEFLATE decoder of their own (RFC 1951) that reports the largest distance used.

var (
	errBadDeflate = errors.New("invalid DEFLATE data")
	errTooFarBack = errors.New("DEFLATE distance reaches before the data")
)

// checkedInflate decodes the raw DEFLATE stream in, which may refer back into window, the
// bytes that precede it (RFC 7692 §7.2.3.2: context takeover). It returns the decoded
// bytes and the largest distance a back-reference used. The stream ends with its final
// block, or when in ends between two blocks, as a message with the 00 00 ff ff of RFC 7692
// §7.2.2 put back does.
func checkedInflate(in, window []byte) (out []byte, maxDist int, err error) {
	out, maxDist, _, err = checkedInflatePadded(in, window)
	return out, maxDist, err
}

// checkedInflatePadded is checkedInflate that also reports how many bits of the last byte
// were left unread, when the stream ends between two blocks rather than with its final
// block.
func checkedInflatePadded(in, window []byte) (out []byte, maxDist int, padding uint, err error) {
	d := &checkedInflater{r: bitReader{in: in}, hist: append([]byte{}, window...)}
	final := false
	for !final && len(d.r.in) > 0 {
		// RFC 1951 §3.2.3: each block starts with BFINAL, then the 2 bits of BTYPE. Bits
		// left in the last byte after a block are padding: no block fits in under 8 bits.
		header := d.r.bits(3)
		final = header&1 == 1
		switch header >> 1 {
		case 0:
			err = d.stored()
		case 1:
			err = d.codes(fixedLiterals, fixedDistances)
		case 2:
			var lit, dist *huffman
			if lit, dist, err = d.dynamicCodes(); err == nil {
				err = d.codes(lit, dist)
			}
		default:
			err = fmt.Errorf("%w: reserved block type 3", errBadDeflate)
		}
		if err == nil {
			err = d.r.err
		}
		if err != nil {
			return nil, 0, 0, err
		}
	}
	if !final {
		padding = d.r.nbuf
	}
	return d.hist[len(window):], d.maxDist, padding, nil
}

// checkedInflater is the state of checkedInflate.
type checkedInflater struct {
	r       bitReader
	hist    []byte // the preset window, then the output
	maxDist int
}

// bitReader reads the bits of a DEFLATE stream. RFC 1951 §3.1.1: bytes are consumed from
// their least significant bit, and numbers other than Huffman codes start with theirs.
type bitReader struct {
	in   []byte
	buf  uint // bits taken from in and not yet read, the next one lowest
	nbuf uint
	err  error // io.ErrUnexpectedEOF once a read went past the end; bits then returns 0
}

// bits reads an n-bit number, n <= 16. It leaves fewer than 8 bits in buf, all from the
// last byte taken.
func (r *bitReader) bits(n uint) int {
	for r.nbuf < n {
		if len(r.in) == 0 {
			r.err = io.ErrUnexpectedEOF
			return 0
		}
		r.buf |= uint(r.in[0]) << r.nbuf
		r.in = r.in[1:]
		r.nbuf += 8
	}
	v := int(r.buf & (1<<n - 1))
	r.buf >>= n
	r.nbuf -= n
	return v
}

// stored copies a stored block (RFC 1951 §3.2.4): from the next byte boundary, LEN, its
// ones' complement NLEN, and LEN bytes.
func (d *checkedInflater) stored() error {
	d.r.buf, d.r.nbuf = 0, 0 // the rest of the current byte
	n, nn := d.r.bits(16), d.r.bits(16)
	if d.r.err != nil {
		return d.r.err
	}
	if n != ^nn&0xffff {
		return fmt.Errorf("%w: stored block with LEN %#04x and NLEN %#04x", errBadDeflate, n, nn)
	}
	if len(d.r.in) < n {
		return io.ErrUnexpectedEOF
	}
	d.hist = append(d.hist, d.r.in[:n]...)
	d.r.in = d.r.in[n:]
	return nil
}

// RFC 1951 §3.2.5: base values and extra bits of length codes 257–285 and of distance
// codes 0–29.
var (
	lengthBases  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtras = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBases    = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtras   = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// codes decodes the literals and length/distance pairs of a Huffman block up to its
// end-of-block code, 256 (RFC 1951 §3.2.5).
func (d *checkedInflater) codes(lit, dist *huffman) error {
	for d.r.err == nil {
		sym, err := lit.decode(&d.r)
		switch {
		case err != nil:
			return err
		case sym < 256:
			d.hist = append(d.hist, byte(sym))
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("%w: length code %d", errBadDeflate, sym)
		}
		length := lengthBases[sym-257] + d.r.bits(lengthExtras[sym-257])
		dsym, err := dist.decode(&d.r) // at most 29: no code has more than 30 symbols
		if err != nil {
			return err
		}
		distance := distBases[dsym] + d.r.bits(distExtras[dsym])
		if distance > len(d.hist) {
			return fmt.Errorf("%w: distance %d with %d bytes before it", errTooFarBack, distance, len(d.hist))
		}
		d.maxDist = max(d.maxDist, distance)
		start := len(d.hist) - distance
		if length <= distance {
			d.hist = append(d.hist, d.hist[start:start+length]...)
			continue
		}
		// RFC 1951 §3.2.3: a copy longer than its distance repeats what it just wrote.
		for i := range length {
			d.hist = append(d.hist, d.hist[start+i])
		}
	}
	return d.r.err
}

// codeLengthOrder is the order in which a dynamic block lists the code lengths of the
// code length alphabet (RFC 1951 §3.2.7).
var codeLengthOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamicCodes reads the header of a dynamic Huffman block (RFC 1951 §3.2.7): the code
// lengths of its literal/length and distance codes, themselves Huffman coded.
func (d *checkedInflater) dynamicCodes() (lit, dist *huffman, err error) {
	nlit, ndist, nclen := d.r.bits(5)+257, d.r.bits(5)+1, d.r.bits(4)+4
	if nlit > 286 || ndist > 30 {
		return nil, nil, fmt.Errorf("%w: %d literal/length and %d distance codes", errBadDeflate, nlit, ndist)
	}
	var clLengths [19]int
	for _, sym := range codeLengthOrder[:nclen] {
		clLengths[sym] = d.r.bits(3)
	}
	cl, err := newDynamicHuffman(clLengths[:])
	if err != nil {
		return nil, nil, err
	}
	// One sequence for both codes: a repeat may run from one into the other.
	lengths := make([]int, 0, nlit+ndist)
	for len(lengths) < nlit+ndist && d.r.err == nil {
		sym, err := cl.decode(&d.r)
		if err != nil {
			return nil, nil, err
		}
		n, length := 1, sym // 0–15: a code length
		switch sym {
		case 16: // the previous length, 3–6 times
			if len(lengths) == 0 {
				return nil, nil, fmt.Errorf("%w: repeat with no previous code length", errBadDeflate)
			}
			n, length = 3+d.r.bits(2), lengths[len(lengths)-1]
		case 17: // 3–10 zeros
			n, length = 3+d.r.bits(3), 0
		case 18: // 11–138 zeros
			n, length = 11+d.r.bits(7), 0
		}
		if len(lengths)+n > nlit+ndist {
			return nil, nil, fmt.Errorf("%w: code lengths overflow", errBadDeflate)
		}
		for range n {
			lengths = append(lengths, length)
		}
	}
	if d.r.err != nil {
		return nil, nil, d.r.err
	}
	if lit, err = newDynamicHuffman(lengths[:nlit]); err != nil {
		return nil, nil, err
	}
	dist, err = newDynamicHuffman(lengths[nlit:])
	return lit, dist, err
}

// newDynamicHuffman is newHuffman for a code a block defines. It must fill its code
// space, except in the two cases RFC 1951 §3.2.7 describes for distance codes: a single
// code of one bit, or none at all. compress/flate and zlib refuse other incomplete codes.
func newDynamicHuffman(lengths []int) (*huffman, error) {
	h, err := newHuffman(lengths)
	if err != nil {
		return nil, err
	}
	space, codes := 0, 0 // code space used, in units of 2^-15; number of codes
	for l := 1; l < 16; l++ {
		space += h.count[l] << (15 - l)
		codes += h.count[l]
	}
	if space != 1<<15 && codes != 0 && !(codes == 1 && h.count[1] == 1) {
		return nil, fmt.Errorf("%w: incomplete Huffman code", errBadDeflate)
	}
	return h, nil
}

// huffman is a canonical Huffman code (RFC 1951 §3.2.2): the codes of one length are
// consecutive numbers given in the order of their symbols, and the first code of a length
// follows the last code one bit shorter, shifted left.
type huffman struct {
	count   [16]int // how many codes have each length
	first   [16]int // the first code of each length
	index   [16]int // where the symbols of each length start in symbols
	symbols []int   // the symbols in the order of their codes
}

// newHuffman builds the code in which symbol i has a code of lengths[i] bits, none if 0.
// The code may be incomplete (the fixed distance code is), but not over-subscribed.
func newHuffman(lengths []int) (*huffman, error) {
	h := &huffman{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	for l := 1; l < 16; l++ {
		// RFC 1951 §3.2.2, step 2.
		h.first[l] = (h.first[l-1] + h.count[l-1]) << 1
		h.index[l] = h.index[l-1] + h.count[l-1]
		if h.first[l]+h.count[l] > 1<<l {
			return nil, fmt.Errorf("%w: over-subscribed Huffman code", errBadDeflate)
		}
	}
	h.symbols = make([]int, h.index[15]+h.count[15])
	next := h.index
	for sym, l := range lengths {
		if l > 0 {
			h.symbols[next[l]] = sym
			next[l]++
		}
	}
	return h, nil
}

// decode reads one code, a bit at a time, most significant bit first (RFC 1951 §3.1.1).
func (h *huffman) decode(r *bitReader) (int, error) {
	code := 0
	for l := 1; l < 16 && r.err == nil; l++ {
		code = code<<1 | r.bits(1)
		if i := code - h.first[l]; i >= 0 && i < h.count[l] {
			return h.symbols[h.index[l]+i], nil
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	return 0, fmt.Errorf("%w: unused Huffman code", errBadDeflate)
}

// The fixed Huffman codes (RFC 1951 §3.2.6). Distance codes 30 and 31 never occur: left
// out, they decode as unused codes.
var fixedLiterals, fixedDistances = func() (*huffman, *huffman) {
	var lit [288]int
	for sym := range lit {
		switch {
		case sym < 144:
			lit[sym] = 8
		case sym < 256:
			lit[sym] = 9
		case sym < 280:
			lit[sym] = 7
		default:
			lit[sym] = 8
		}
	}
	var dist [30]int
	for sym := range dist {
		dist[sym] = 5
	}
	l, _ := newHuffman(lit[:])
	d, _ := newHuffman(dist[:])
	return l, d
}()

// repeatsOf returns n bytes of wordsOf text in which blocks of 64 bytes recur exactly
// 300, 600, 5000 and 20000 bytes later, every 32 KiB as far as n allows.
func repeatsOf(n int, seed uint64) []byte {
	b := wordsOf(n, seed)
	for i, d := range []int{300, 600, 5000, 20000} {
		for src := i * 128; src+d+64 <= n; src += 32 << 10 {
			copy(b[src+d:src+d+64], b[src:src+64])
		}
	}
	return b
}

// mixedOf returns n bytes of text with repeats, random bytes and runs of one byte, in turn.
func mixedOf(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		switch i % 3 {
		case 0:
			b = append(b, repeatsOf(40000, uint64(i))...)
		case 1:
			b = append(b, noiseOf(3000, uint64(i))...)
		case 2:
			b = append(b, bytes.Repeat([]byte{byte(i)}, 1000)...)
		}
	}
	return b[:n]
}

// TestInflateMatchesFlate checks the test decoder against compress/flate: whatever it
// compresses, at any level and with flushes between writes, decodes to the input.
func TestInflateMatchesFlate(t *testing.T) {
	inputs := []struct {
		name    string
		data    []byte
		matches bool // compress/flate finds back-references in it
	}{
		{"empty", nil, false},
		{"short", []byte("Hello"), false},
		{"repetitive", append(bytes.Repeat([]byte("websocket "), 10000), make([]byte, 10000)...), true},
		{"text with repeats", repeatsOf(100<<10, 1), true},
		{"random", noiseOf(64<<10, 1), false},
		{"1 MiB mixed", mixedOf(1 << 20), true},
	}
	levels := []struct {
		name    string
		level   int
		matches bool // the level looks for back-references
	}{
		{"HuffmanOnly", flate.HuffmanOnly, false},
		{"BestSpeed", flate.BestSpeed, true},
		{"Default", flate.DefaultCompression, true},
		{"BestCompression", flate.BestCompression, true},
		{"NoCompression", flate.NoCompression, false},
	}
	pieces := []int{1, 1000, 70000, 13, 5000}
	for _, in := range inputs {
		for _, lv := range levels {
			t.Run(in.name+"/"+lv.name, func(t *testing.T) {
				var buf bytes.Buffer
				fw, err := flate.NewWriter(&buf, lv.level)
				require.NoError(t, err)
				p := in.data
				for i := 0; len(p) > 0; i++ {
					n := min(len(p), pieces[i%len(pieces)])
					_, err := fw.Write(p[:n])
					require.NoError(t, err)
					if i%2 == 0 {
						require.NoError(t, fw.Flush())
					}
					p = p[n:]
				}
				require.NoError(t, fw.Close())

				out, maxDist, err := checkedInflate(buf.Bytes(), nil)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(in.data, out), "decoded %d bytes, want %d", len(out), len(in.data))
				assert.LessOrEqual(t, maxDist, 1<<maxWindowBits)
				if in.matches && lv.matches {
					assert.Positive(t, maxDist, "no back-reference seen")
				} else if !lv.matches {
					assert.Zero(t, maxDist)
				}
			})
		}
	}
}

// TestInflateRejects checks that the test decoder fails on streams that are not valid.
func TestInflateRejects(t *testing.T) {
	// RFC 7692 §7.2.3.2: "H", then 4 bytes copied from 5 bytes back, 00 00 ff ff put back.
	again := []byte{0xf2, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff}
	cases := []struct {
		name   string
		stream []byte
		window []byte
		want   error
	}{
		{"reserved block type 3", []byte{0x07, 0x00}, nil, errBadDeflate},
		{"stored block with LEN != ^NLEN", []byte{0x01, 0x05, 0x00, 0x00, 0x00, 'H', 'e', 'l', 'l', 'o'}, nil, errBadDeflate},
		{"stored block cut short", []byte{0x01, 0x05, 0x00, 0xfa, 0xff, 'H', 'e'}, nil, io.ErrUnexpectedEOF},
		{"distance with no window", again, nil, errTooFarBack},
		{"distance beyond the window", again, []byte("llo"), errTooFarBack},
		{"Huffman block cut short", []byte{0xf2, 0x48, 0xcd}, nil, io.ErrUnexpectedEOF},
		{"dynamic block with 287 literal/length codes", []byte{0xf5, 0x00, 0x00}, nil, errBadDeflate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := checkedInflate(tc.stream, tc.window)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

// TestInflatePresetWindow decodes RFC 7692 §7.2.3.2's example of context takeover: the
// second message is "Hello" only with the first as its window.
func TestInflatePresetWindow(t *testing.T) {
	tail := []byte{0x00, 0x00, 0xff, 0xff} // RFC 7692 §7.2.2
	first := append([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, tail...)
	second := append([]byte{0xf2, 0x00, 0x11, 0x00, 0x00}, tail...)

	out, maxDist, err := checkedInflate(first, nil)
	require.NoError(t, err)
	assert.Equal(t, "Hello", string(out))
	assert.Zero(t, maxDist, "literals only")

	out, maxDist, err = checkedInflate(second, out)
	require.NoError(t, err)
	assert.Equal(t, "Hello", string(out))
	assert.Equal(t, 5, maxDist)
}

// TestDeflateWindowLimit checks that every message a Conn compresses stays within the
// window the peer granted (RFC 7692 §7.1.2: a back-reference reaches at most 2^N bytes
// back) and refers to nothing before it, since the Conn promises no context takeover:
// each message, decoded with no preset window, must come out whole.
func TestDeflateWindowLimit(t *testing.T) {
	// At a small window compress/flate builds a Huffman code for every 2^N bytes, which
	// makes long messages slow under -race; those past 100 KiB would test nothing new but
	// a long stream, so only text goes that far, and only through Writer.
	sizes := []int{100, 200, 5 << 10, 100 << 10, 1 << 20}
	if testing.Short() {
		sizes = sizes[:len(sizes)-1]
	}
	kinds := []struct {
		name  string
		data  func(int, uint64) []byte
		sizes []int
	}{{"text", repeatsOf, sizes}, {"noise", noiseOf, sizes[:4]}}
	pieces := []int{1, 100, 1000, 5000}

	// Unless compressed in pieces, the text reaches past every window below 32 KiB.
	var plain bytes.Buffer
	fw, err := flate.NewWriter(&plain, flate.BestSpeed)
	require.NoError(t, err)
	_, err = fw.Write(repeatsOf(100<<10, 0))
	require.NoError(t, err)
	require.NoError(t, fw.Close())
	_, far, err := checkedInflate(plain.Bytes(), nil)
	require.NoError(t, err)
	require.Greater(t, far, 1<<(maxWindowBits-1))

	for bits := 8; bits <= maxWindowBits; bits++ {
		for _, connIsClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("window %d/client=%v", bits, connIsClient), func(t *testing.T) {
				t.Parallel()
				p := newRawPeer(t, connIsClient)
				p.conn.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: bits})
				ctx := context.Background()
				// Several messages in a row on one Conn, each decoded on its own.
				for _, kind := range kinds {
					for i, size := range kind.sizes {
						msg := kind.data(size, uint64(i))
						for _, streamed := range []bool{false, true} {
							if size > 100<<10 && !streamed {
								continue
							}
							name := fmt.Sprintf("%s of %d bytes, streamed=%v", kind.name, size, streamed)
							errc := make(chan error, 1)
							go func() {
								if !streamed {
									errc <- p.conn.Write(ctx, MessageBinary, msg)
									return
								}
								w, err := p.conn.Writer(ctx, MessageBinary)
								if err != nil {
									errc <- err
									return
								}
								for j, q := 0, msg; len(q) > 0; j++ {
									n := min(len(q), pieces[j%len(pieces)])
									if _, err := w.Write(q[:n]); err != nil {
										errc <- err
										return
									}
									q = q[n:]
								}
								errc <- w.Close()
							}()
							frames := []frame{p.next()}
							for !frames[len(frames)-1].fin {
								frames = append(frames, p.next())
							}
							require.NoError(t, <-errc, name)
							require.Equal(t, opBinary, frames[0].op, name)

							if !streamed && size < compressThreshold {
								assert.Zero(t, frames[0].rsv, "%s: compressed below the threshold", name)
								assert.Equal(t, msg, frames[0].payload, name)
								continue
							}
							require.Equal(t, rsv1, frames[0].rsv, "%s: not compressed", name)
							var data []byte
							for _, f := range frames {
								data = append(data, f.payload...)
							}
							data = append(data, 0x00, 0x00, 0xff, 0xff) // RFC 7692 §7.2.2
							out, maxDist, err := checkedInflate(data, nil)
							require.NoError(t, err, name)
							assert.True(t, bytes.Equal(msg, out), "%s: decoded %d bytes, want %d", name, len(out), len(msg))
							assert.LessOrEqual(t, maxDist, 1<<bits, "%s: back-reference past the window", name)
						}
					}
				}
			})
		}
	}
}
