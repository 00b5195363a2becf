package websocket

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file negotiates the permessage-deflate extension (RFC 7692 §5, §7.1) in the
// Sec-WebSocket-Extensions headers of the opening handshake. It is pure: header values
// in, parameters and header values out.

// deflateParams is the outcome of a permessage-deflate negotiation, seen from one side
// of the connection.
type deflateParams struct {
	peerNoContext  bool // the peer compresses every message on its own: no window to keep
	peerWindowBits int  // 8–15: the LZ77 window the peer compresses with
	windowBits     int  // 8–15: the largest window our own compressor may use
}

// acceptDeflate is the server's side: it picks, from the Sec-WebSocket-Extensions values
// of a request, the first permessage-deflate offer it can accept under mode, and returns
// the parameters in force and the value of the response's Sec-WebSocket-Extensions.
// ok is false when compression is disabled or no offer is acceptable.
func acceptDeflate(values []string, mode CompressionMode) (p deflateParams, response string, ok bool) {
	// A mode outside the defined ones counts as disabled, as in deflateOffer.
	if mode != CompressionNoContextTakeover && mode != CompressionContextTakeover {
		return deflateParams{}, "", false
	}
	exts, err := parseExtensions(values)
	if err != nil {
		// RFC 6455 §9.1: past a break in the grammar, no offer can be read with certainty.
		return deflateParams{}, "", false
	}
	for _, e := range exts {
		if !asciiEqualFold(e.name, deflateName) {
			continue
		}
		c, err := parseDeflateConfig(e.params, true)
		if err != nil {
			// RFC 7692 §5: the server declines this offer; a later one may still do.
			continue
		}
		// The client's client_no_context_takeover in an offer is only a hint (RFC 7692
		// §7.1.1.2), and some clients read it as "I can be asked to": only the response
		// binds the client. A client that offers it gives up nothing when the response
		// confirms it, and the server then keeps no window.
		noContext := mode == CompressionNoContextTakeover || c.clientNoContext
		p = deflateParams{
			peerNoContext:  noContext,
			peerWindowBits: 15,
			windowBits:     15,
		}
		// Our compressor never refers back to earlier messages: saying so lets the client
		// drop its window (RFC 7692 §7.1.1.1). Both responses are constants, which cost
		// no allocation.
		response = deflateName + "; server_no_context_takeover"
		if noContext {
			response = deflateName + "; server_no_context_takeover; client_no_context_takeover"
		}
		if c.serverMaxBits != 0 {
			// RFC 7692 §7.1.2.1: accepting the offer means keeping within its window.
			p.windowBits = c.serverMaxBits
			response += "; server_max_window_bits=" + strconv.Itoa(c.serverMaxBits)
		}
		return p, response, true
	}
	return deflateParams{}, "", false
}

// deflateOffer is the client's side: the Sec-WebSocket-Extensions value it sends under
// mode, or "" when compression is disabled.
func deflateOffer(mode CompressionMode) string {
	// Our own messages are always compressed each on its own, which
	// client_no_context_takeover tells the server (RFC 7692 §7.1.1.2);
	// client_max_window_bits lets it ask for a window smaller than 32 KiB (§7.1.2.2).
	switch mode {
	case CompressionContextTakeover:
		return deflateName + "; client_no_context_takeover; client_max_window_bits"
	case CompressionNoContextTakeover:
		return deflateName + "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
	}
	return ""
}

// deflateResponse checks the Sec-WebSocket-Extensions values of the server's response
// against the offer deflateOffer(mode) made. ok is false when the server accepted no
// extension; err says why a response cannot be accepted (RFC 6455 §4.1, RFC 7692 §5).
func deflateResponse(values []string, mode CompressionMode) (p deflateParams, ok bool, err error) {
	exts, err := parseExtensions(values)
	if err != nil {
		return deflateParams{}, false, err
	}
	if len(exts) == 0 {
		return deflateParams{}, false, nil
	}
	offered := deflateOffer(mode) != ""
	for _, e := range exts {
		// RFC 6455 §4.1: the server may only pick from the extensions the client offered.
		if !offered || !asciiEqualFold(e.name, deflateName) {
			return deflateParams{}, false, fmt.Errorf("server accepted extension %q, which was not offered", e.name)
		}
	}
	if len(exts) > 1 {
		// One offer was made; accepting it twice would stack two compressions.
		return deflateParams{}, false, fmt.Errorf("server accepted %s %d times, but it was offered once", deflateName, len(exts))
	}
	c, err := parseDeflateConfig(exts[0].params, false)
	if err != nil {
		// RFC 7692 §5: the client must fail the connection.
		return deflateParams{}, false, err
	}
	p = deflateParams{peerNoContext: c.serverNoContext, peerWindowBits: 15, windowBits: 15}
	if c.serverMaxBits != 0 {
		p.peerWindowBits = c.serverMaxBits
	}
	if c.clientMaxBits != 0 {
		p.windowBits = c.clientMaxBits
	}
	return p, true, nil
}

const deflateName = "permessage-deflate"

// deflateConfig holds the parameters of one permessage-deflate offer or response (RFC
// 7692 §7.1). A window of 0 means the parameter is absent, or in an offer, that
// client_max_window_bits came without a value.
type deflateConfig struct {
	serverNoContext bool
	clientNoContext bool
	serverMaxBits   int
	clientMaxBits   int
}

// deflateParamNames are the parameters RFC 7692 §7.1 defines, in their canonical case.
var deflateParamNames = [...]string{
	"server_no_context_takeover",
	"client_no_context_takeover",
	"server_max_window_bits",
	"client_max_window_bits",
}

// parseDeflateConfig checks the parameters of a permessage-deflate element, of an offer
// when inOffer is set, of a response otherwise. The error says which rule of RFC 7692
// §5 and §7.1 they break.
func parseDeflateConfig(params []extensionParam, inOffer bool) (deflateConfig, error) {
	var c deflateConfig
	var seen [len(deflateParamNames)]bool
	for _, p := range params {
		i := 0
		for i < len(deflateParamNames) && !asciiEqualFold(p.name, deflateParamNames[i]) {
			i++
		}
		if i == len(deflateParamNames) {
			return c, fmt.Errorf("unknown %s parameter %q", deflateName, p.name)
		}
		name := deflateParamNames[i]
		if seen[i] {
			// RFC 7692 §5: no parameter may appear twice.
			return c, fmt.Errorf("%s parameter %s appears twice", deflateName, name)
		}
		seen[i] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.hasValue {
				// RFC 7692 §7.1.1.1, §7.1.1.2: these parameters have no value.
				return c, fmt.Errorf("%s parameter %s takes no value, got %q", deflateName, name, p.value)
			}
			if name == "server_no_context_takeover" {
				c.serverNoContext = true
			} else {
				c.clientNoContext = true
			}
		case "server_max_window_bits", "client_max_window_bits":
			// RFC 7692 §7.1.2.2: only an offer may leave client_max_window_bits without a
			// value, to say the client can take a window from the server.
			if !p.hasValue && name == "client_max_window_bits" && inOffer {
				continue
			}
			if !p.hasValue {
				return c, fmt.Errorf("%s parameter %s needs a value", deflateName, name)
			}
			bits, ok := parseWindowBits(p.value)
			if !ok {
				return c, fmt.Errorf("%s parameter %s is %q, not a window from 8 to 15", deflateName, name, p.value)
			}
			if name == "server_max_window_bits" {
				c.serverMaxBits = bits
			} else {
				c.clientMaxBits = bits
			}
		}
	}
	return c, nil
}

// parseWindowBits parses the value of a window-bits parameter: a decimal integer from
// 8 to 15 without leading zeros (RFC 7692 §7.1.2.1, §7.1.2.2).
func parseWindowBits(v string) (int, bool) {
	switch {
	case len(v) == 1 && '8' <= v[0] && v[0] <= '9':
		return int(v[0] - '0'), true
	case len(v) == 2 && v[0] == '1' && '0' <= v[1] && v[1] <= '5':
		return 10 + int(v[1]-'0'), true
	}
	return 0, false
}

// extension is one element of a Sec-WebSocket-Extensions list.
type extension struct {
	name   string
	params []extensionParam
}

// extensionParam is a parameter of an extension; a quoted value is kept unquoted.
type extensionParam struct {
	name     string
	value    string
	hasValue bool
}

// errMalformedExtensions reports a Sec-WebSocket-Extensions value outside the grammar of
// RFC 6455 §9.1.
var errMalformedExtensions = errors.New("malformed Sec-WebSocket-Extensions")

// parseExtensions parses the values of Sec-WebSocket-Extensions headers, which together
// form one list (RFC 7230 §3.2.2), in order. It fails if any value breaks the grammar of
// RFC 6455 §9.1:
//
//	extension-list = 1#extension
//	extension      = token *( ";" extension-param )
//	extension-param = token [ "=" ( token / quoted-string ) ]
func parseExtensions(values []string) ([]extension, error) {
	var exts []extension
	for _, v := range values {
		s := extensionScanner{s: v}
		for !s.atEnd() {
			// RFC 7230 §7: a recipient ignores empty list elements.
			if s.consume(',') {
				continue
			}
			e, ok := s.extension()
			if !ok || !s.atEnd() && !s.consume(',') {
				return nil, fmt.Errorf("%w: %q", errMalformedExtensions, v)
			}
			exts = append(exts, e)
		}
	}
	return exts, nil
}

// extensionScanner reads a Sec-WebSocket-Extensions value from s, starting at i. Every
// read skips the optional white space (SP and HTAB, RFC 7230 §3.2.3) before it.
type extensionScanner struct {
	s string
	i int
}

func (s *extensionScanner) skipSpace() {
	for s.i < len(s.s) && (s.s[s.i] == ' ' || s.s[s.i] == '\t') {
		s.i++
	}
}

// atEnd reports whether only white space is left.
func (s *extensionScanner) atEnd() bool {
	s.skipSpace()
	return s.i == len(s.s)
}

// consume reads c if it comes next, and reports whether it did.
func (s *extensionScanner) consume(c byte) bool {
	s.skipSpace()
	if s.i < len(s.s) && s.s[s.i] == c {
		s.i++
		return true
	}
	return false
}

// token reads a token, or returns "" if none comes next.
func (s *extensionScanner) token() string {
	s.skipSpace()
	start := s.i
	for s.i < len(s.s) && isTokenChar(s.s[s.i]) {
		s.i++
	}
	return s.s[start:s.i]
}

// value reads a parameter value, a token or a quoted-string, and returns it unquoted.
func (s *extensionScanner) value() (string, bool) {
	if !s.consume('"') {
		v := s.token()
		return v, v != ""
	}
	// RFC 6455 §9.1: unquoted, the value must be a token. A quoted-string that holds
	// anything else (white space, DEL, obs-text) can never be valid, so the scan stops
	// at it.
	var b strings.Builder
	for ; s.i < len(s.s); s.i++ {
		c := s.s[s.i]
		if c == '"' {
			s.i++
			return b.String(), b.Len() > 0
		}
		if c == '\\' && s.i+1 < len(s.s) {
			s.i++
			c = s.s[s.i]
		}
		if !isTokenChar(c) {
			return "", false
		}
		b.WriteByte(c)
	}
	return "", false
}

// extension reads one extension with its parameters.
func (s *extensionScanner) extension() (extension, bool) {
	e := extension{name: s.token()}
	if e.name == "" {
		return e, false
	}
	for s.consume(';') {
		p := extensionParam{name: s.token()}
		if p.name == "" {
			return e, false
		}
		if s.consume('=') {
			if p.value, p.hasValue = s.value(); !p.hasValue {
				return e, false
			}
		}
		e.params = append(e.params, p)
	}
	return e, true
}

// isTokenChar reports whether c is a tchar (RFC 7230 §3.2.6).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
