package websocket

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validatePieces feeds pieces to a new validator and reports its verdict on their
// concatenation: valid if every write succeeds and the last code point is complete.
func validatePieces(pieces ...[]byte) bool {
	var v utf8Validator
	for _, p := range pieces {
		if !v.write(p) {
			return false
		}
	}
	return v.complete()
}

// failIndex feeds b one byte at a time and returns the index of the byte whose write
// failed, or -1, with the validator's complete() at the end.
func failIndex(b []byte) (int, bool) {
	var v utf8Validator
	for i := range b {
		if !v.write(b[i : i+1]) {
			return i, false
		}
	}
	return -1, v.complete()
}

// canComplete reports whether some bytes appended to p make it valid UTF-8. Only the
// first continuation byte of a code point has a range narrower than 80–BF (RFC 3629 §4),
// and no code point needs more than three, so trying every first byte followed by 80s
// covers every way p could be completed.
func canComplete(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for c := 0x80; c <= 0xBF; c++ {
		s := append([]byte(nil), p...)
		s = append(s, byte(c))
		for range 3 {
			if utf8.Valid(s) {
				return true
			}
			s = append(s, 0x80)
		}
	}
	return false
}

// firstBadByte returns the index of the first byte of b after which no continuation
// could make b valid, or -1 if there is none.
func firstBadByte(b []byte) int {
	for i := range b {
		if !canComplete(b[:i+1]) {
			return i
		}
	}
	return -1
}

// kosme is the Greek word κόσμε used by the Autobahn test suite (cases 6.x).
const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

var utf8Tests = []struct {
	name string
	in   string
	bad  int // index of the first byte after which the input cannot become valid; -1 if none
}{
	{"empty", "", -1},
	{"ASCII", "Hello, world", -1},
	{"NUL", "\x00", -1},
	{"U+007F", "\x7f", -1},
	{"U+0080", "\xc2\x80", -1},
	{"U+07FF", "\xdf\xbf", -1},
	{"U+0800", "\xe0\xa0\x80", -1},
	{"U+D7FF before the surrogates", "\xed\x9f\xbf", -1},
	{"U+E000 after the surrogates", "\xee\x80\x80", -1},
	{"U+FFFE noncharacter", "\xef\xbf\xbe", -1},
	{"U+FFFF", "\xef\xbf\xbf", -1},
	{"U+10000", "\xf0\x90\x80\x80", -1},
	{"U+10FFFF", "\xf4\x8f\xbf\xbf", -1},
	{"2-byte", "caf\xc3\xa9", -1},
	{"3-byte", "\xe2\x82\xac 5", -1},
	{"4-byte", "\xf0\x9d\x84\x9e", -1},
	{"kosme", kosme, -1},
	{"kosme repeated", strings.Repeat(kosme+"-\xf0\x9f\x98\x80-", 40), -1},

	{"overlong C0 80", "\xc0\x80", 0},
	{"overlong C1 BF", "\xc1\xbf", 0},
	{"overlong E0 80 80", "\xe0\x80\x80", 1},
	{"overlong E0 9F BF", "\xe0\x9f\xbf", 1},
	{"overlong F0 80 80 80", "\xf0\x80\x80\x80", 1},
	{"overlong F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1},
	{"surrogate ED A0 80", "\xed\xa0\x80", 1},
	{"surrogate ED BF BF", "\xed\xbf\xbf", 1},
	{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80", 1},
	{"above U+10FFFF", "\xf4\x90\x80\x80", 1},
	{"F5", "\xf5\x80\x80\x80", 0},
	{"F8 five-byte form", "\xf8\x88\x80\x80\x80", 0},
	{"FC six-byte form", "\xfc\x84\x80\x80\x80\x80", 0},
	{"FE", "\xfe", 0},
	{"FF", "\xff", 0},
	{"FE FE FF FF", "\xfe\xfe\xff\xff", 0},
	{"lone continuation 80", "\x80", 0},
	{"lone continuation BF", "\xbf", 0},
	{"continuation after ASCII", "a\x80", 1},
	{"extra continuation", "\xc3\xa9\xa9", 2},
	{"2-byte cut by ASCII", "\xc3a", 1},
	{"3-byte cut by ASCII", "\xe2\x82a", 2},
	{"4-byte cut by ASCII", "\xf0\x9d\x84a", 3},
	{"3-byte cut by a lead byte", "\xe2\xe2\x82\xac", 1},
	{"truncated 2-byte at end", "ab\xc3", -1},
	{"truncated 3-byte at end", "ab\xe2\x82", -1},
	{"truncated 4-byte at end", "ab\xf0\x9d\x84", -1},
	{"truncated E0 at end", "\xe0\xa0", -1},
	{"truncated F4 at end", "\xf4\x8f\xbf", -1},

	{"kosme then surrogate", kosme + "\xed\xa0\x80edited", 12},
	{"kosme truncated", kosme[:len(kosme)-1], -1},
	{"kosme without its first byte", kosme[1:], 0},
	{"kosme with ASCII for a continuation", "\xce\xba\xe1A\xb9\xcf\x83\xce\xbc\xce\xb5", 3},
	{"kosme with FF inserted", "\xce\xba\xff" + kosme[2:], 2},
	{"kosme with an overlong slash", kosme + "\xc0\xaf", 11},
	{"kosme then above U+10FFFF", kosme + "\xf4\x90\x80\x80", 12},
	{"long valid then FF", strings.Repeat(kosme, 50) + "\xff", 550},
	{"long valid then truncated", strings.Repeat(kosme, 50) + "\xf0\x9f\x98", -1},
}

// TestUTF8Validator checks the validator against utf8.Valid fed whole, byte by byte and
// in pieces split everywhere, and checks that fed byte by byte it fails at the first byte
// no continuation can recover from.
func TestUTF8Validator(t *testing.T) {
	for _, tt := range utf8Tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			want := utf8.Valid(in)
			require.Equal(t, tt.bad, firstBadByte(in), "table entry disagrees with firstBadByte")
			if want {
				require.Equal(t, -1, tt.bad, "valid input with a bad byte")
			}

			assert.Equal(t, want, validatePieces(in), "whole")

			at, complete := failIndex(in)
			assert.Equal(t, tt.bad, at, "byte by byte: index of the failing write")
			assert.Equal(t, want, at < 0 && complete, "byte by byte")

			for i := 0; i <= len(in); i++ {
				assert.Equal(t, want, validatePieces(in[:i], in[i:]), "split at %d", i)
			}
			if len(in) <= 64 {
				for i := 0; i <= len(in); i++ {
					for j := i; j <= len(in); j++ {
						assert.Equal(t, want, validatePieces(in[:i], in[i:j], in[j:]), "split at %d and %d", i, j)
					}
				}
			}
		})
	}
}

// TestUTF8ValidatorShort checks every input of one byte, and of two bytes starting with a
// lead byte.
func TestUTF8ValidatorShort(t *testing.T) {
	check := func(in []byte) {
		t.Helper()
		at, complete := failIndex(in)
		assert.Equal(t, firstBadByte(in), at, "% x: index of the failing write", in)
		assert.Equal(t, utf8.Valid(in), at < 0 && complete, "% x: byte by byte", in)
		assert.Equal(t, utf8.Valid(in), validatePieces(in), "% x: whole", in)
	}
	for a := range 256 {
		check([]byte{byte(a)})
	}
	for a := 0xC2; a <= 0xF4; a++ {
		for b := range 256 {
			check([]byte{byte(a), byte(b)})
		}
	}
}

// TestUTF8ValidatorRandom feeds random mixes of valid code points and stray bytes in
// random pieces.
func TestUTF8ValidatorRandom(t *testing.T) {
	runes := []rune{'a', 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF, 'κ', '€', '😀'}
	stray := []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF}
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 2000 {
		var in []byte
		for range r.IntN(12) {
			if r.IntN(20) == 0 {
				in = append(in, stray[r.IntN(len(stray))])
			} else {
				in = utf8.AppendRune(in, runes[r.IntN(len(runes))])
			}
		}
		if r.IntN(4) == 0 && len(in) > 0 {
			in = in[:r.IntN(len(in))] // may cut a code point
		}
		name := fmt.Sprintf("case %d: % x", i, in)

		var pieces [][]byte
		for rest := in; len(rest) > 0; {
			m := r.IntN(min(len(rest), 6) + 1)
			pieces = append(pieces, rest[:m])
			rest = rest[m:]
		}
		want := utf8.Valid(in)
		if !assert.Equal(t, want, validatePieces(pieces...), "%s in pieces %q", name, pieces) {
			return
		}
		at, complete := failIndex(in)
		if !assert.Equal(t, firstBadByte(in), at, "%s: index of the failing write", name) {
			return
		}
		assert.Equal(t, want, at < 0 && complete, "%s: byte by byte", name)
	}
}

// TestUTF8ValidatorComplete checks complete() as a code point arrives in pieces.
func TestUTF8ValidatorComplete(t *testing.T) {
	var v utf8Validator
	assert.True(t, v.complete(), "zero value")

	steps := []struct {
		in       string
		complete bool
	}{
		{"ab", true},
		{"\xe2\x82", false},
		{"", false},
		{"\xac", true},
		{"\xf0", false},
		{"\x9f\x98", false},
		{"\x80x\xc3", false},
		{"\xa9", true},
	}
	for _, s := range steps {
		require.True(t, v.write([]byte(s.in)), "write %q", s.in)
		assert.Equal(t, s.complete, v.complete(), "after %q", s.in)
	}
}

// TestUTF8ValidatorTruncatedThenBad checks that a code point left open by one write fails
// on the first wrong byte of the next.
func TestUTF8ValidatorTruncatedThenBad(t *testing.T) {
	tests := []struct {
		name  string
		first string
		next  string
	}{
		{"ASCII after a lead byte", "ok\xe2", "a"},
		{"lead byte after a lead byte", "ok\xc3", "\xc3\xa9"},
		{"surrogate split after ED", "\xed", "\xa0\x80"},
		{"overlong split after E0", "\xe0", "\x9f\xbf"},
		{"above U+10FFFF split after F4", "\xf4", "\x90\x80\x80"},
		{"bad third byte", "\xf0\x9f", "\x98a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v utf8Validator
			require.True(t, v.write([]byte(tt.first)))
			assert.False(t, v.complete())
			assert.False(t, v.write([]byte(tt.next)))
		})
	}
}
