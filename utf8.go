package websocket

import "unicode/utf8"

// utf8Validator checks a text message as it arrives in pieces of any size. It fails at the
// first byte after which no continuation could make the message valid UTF-8 (RFC 3629),
// which lets a Conn close with 1007 before the rest of a bad message arrives
// (RFC 6455 §8.1).
//
// The zero value is ready for a new message.
type utf8Validator struct {
	need   uint8 // continuation bytes still expected by the current code point
	lo, hi byte  // range the next continuation byte must fall in
}

// write feeds p to the validator and reports whether the bytes so far can still begin
// valid UTF-8.
func (v *utf8Validator) write(p []byte) bool {
	// Finish a code point split by the previous piece.
	for v.need > 0 && len(p) > 0 {
		if !v.step(p[0]) {
			return false
		}
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	// The body is checked by the standard library at full speed; only an incomplete code
	// point at the very end is left to the byte-wise state machine.
	cut := len(p)
	i := len(p) - 1
	for i > 0 && len(p)-i < utf8.UTFMax && !utf8.RuneStart(p[i]) {
		i--
	}
	if !utf8.FullRune(p[i:]) {
		cut = i
	}
	if !utf8.Valid(p[:cut]) {
		return false
	}
	for _, b := range p[cut:] {
		if !v.step(b) {
			return false
		}
	}
	return true
}

// complete reports whether the bytes so far end on a code point boundary.
func (v *utf8Validator) complete() bool { return v.need == 0 }

// step advances the state machine by one byte; the ranges are those of RFC 3629 §4.
func (v *utf8Validator) step(b byte) bool {
	if v.need > 0 {
		if b < v.lo || b > v.hi {
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xBF
		return true
	}
	v.lo, v.hi = 0x80, 0xBF
	switch {
	case b < 0x80:
		return true
	case b >= 0xC2 && b <= 0xDF:
		v.need = 1
	case b == 0xE0:
		v.need, v.lo = 2, 0xA0
	case b == 0xED: // no surrogates
		v.need, v.hi = 2, 0x9F
	case b >= 0xE1 && b <= 0xEF:
		v.need = 2
	case b == 0xF0:
		v.need, v.lo = 3, 0x90
	case b >= 0xF1 && b <= 0xF3:
		v.need = 3
	case b == 0xF4: // nothing above U+10FFFF
		v.need, v.hi = 3, 0x8F
	default:
		return false
	}
	return true
}
