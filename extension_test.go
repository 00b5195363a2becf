package websocket

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The offers of the Autobahn test suite's client (cases 12 and 13): its default offer,
// and the same with server_no_context_takeover and server_max_window_bits requested.
const (
	autobahnOffer       = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
	autobahnOfferNoCtx  = autobahnOffer + "; server_no_context_takeover"
	autobahnOffer8      = autobahnOffer + "; server_max_window_bits=8"
	autobahnOffer15     = autobahnOffer + "; server_max_window_bits=15"
	autobahnOfferNoCtx8 = autobahnOfferNoCtx + "; server_max_window_bits=8"
)

// The responses of acceptDeflate, by mode, without server_max_window_bits.
const (
	respContext   = "permessage-deflate; server_no_context_takeover"
	respNoContext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
)

// Parameters acceptDeflate settles on without server_max_window_bits, by mode.
var (
	serverContext   = deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 15}
	serverNoContext = deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}
)

var acceptDeflateTests = []struct {
	name     string
	values   []string
	mode     CompressionMode
	want     deflateParams
	response string // "" when no offer is accepted
}{
	// Modes.
	{"disabled", []string{"permessage-deflate"}, CompressionDisabled, deflateParams{}, ""},
	{"undefined mode", []string{"permessage-deflate"}, CompressionMode(7), deflateParams{}, ""},
	{"bare offer, context takeover", []string{"permessage-deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"bare offer, no context takeover", []string{"permessage-deflate"}, CompressionNoContextTakeover, serverNoContext, respNoContext},

	// No offer.
	{"no header", nil, CompressionContextTakeover, deflateParams{}, ""},
	{"empty value", []string{""}, CompressionContextTakeover, deflateParams{}, ""},
	{"white space only", []string{" \t "}, CompressionContextTakeover, deflateParams{}, ""},
	{"commas only", []string{" , ,,"}, CompressionContextTakeover, deflateParams{}, ""},
	{"other extension only", []string{"x-webkit-deflate-frame"}, CompressionContextTakeover, deflateParams{}, ""},

	// The Autobahn client. Its client_no_context_takeover means it accepts being told not
	// to keep context: the response tells it, in either mode, and the server keeps none.
	{"Autobahn default, context takeover", []string{autobahnOffer}, CompressionContextTakeover, serverNoContext, respNoContext},
	{"Autobahn default, no context takeover", []string{autobahnOffer}, CompressionNoContextTakeover, serverNoContext, respNoContext},
	{"Autobahn server_no_context_takeover", []string{autobahnOfferNoCtx}, CompressionContextTakeover, serverNoContext, respNoContext},
	{"Autobahn server_no_context_takeover, no context takeover", []string{autobahnOfferNoCtx}, CompressionNoContextTakeover, serverNoContext, respNoContext},
	{"Autobahn server_max_window_bits=8", []string{autobahnOffer8}, CompressionContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 8}, respNoContext + "; server_max_window_bits=8"},
	{"Autobahn server_max_window_bits=15", []string{autobahnOffer15}, CompressionContextTakeover,
		serverNoContext, respNoContext + "; server_max_window_bits=15"},
	{"Autobahn server_max_window_bits=8, no context takeover", []string{autobahnOffer8}, CompressionNoContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 8}, respNoContext + "; server_max_window_bits=8"},
	{"Autobahn case 13.7", []string{autobahnOfferNoCtx8 + ", " + autobahnOfferNoCtx + ", " + autobahnOffer}, CompressionContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 8}, respNoContext + "; server_max_window_bits=8"},
	{"Autobahn case 13.7, no context takeover", []string{autobahnOfferNoCtx8 + ", " + autobahnOfferNoCtx + ", " + autobahnOffer}, CompressionNoContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 8}, respNoContext + "; server_max_window_bits=8"},

	// Other clients.
	{"browser", []string{"permessage-deflate; client_max_window_bits"}, CompressionContextTakeover, serverContext, respContext},
	{"client_max_window_bits with a value", []string{"permessage-deflate; client_max_window_bits=10"}, CompressionContextTakeover, serverContext, respContext},
	{"client_no_context_takeover alone", []string{"permessage-deflate; client_no_context_takeover"}, CompressionContextTakeover, serverNoContext, respNoContext},
	{"every parameter", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9"},
		CompressionContextTakeover, deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 12}, respNoContext + "; server_max_window_bits=12"},
	{"our own offer, context takeover", []string{deflateOffer(CompressionContextTakeover)}, CompressionContextTakeover, serverNoContext, respNoContext},
	{"our own offer, no context takeover", []string{deflateOffer(CompressionNoContextTakeover)}, CompressionNoContextTakeover, serverNoContext, respNoContext},

	// Window bits, RFC 7692 §7.1.2.1.
	{"server_max_window_bits=9", []string{"permessage-deflate; server_max_window_bits=9"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 9}, respContext + "; server_max_window_bits=9"},
	{"server_max_window_bits=10", []string{"permessage-deflate; server_max_window_bits=10"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 10}, respContext + "; server_max_window_bits=10"},
	{"server_max_window_bits=7", []string{"permessage-deflate; server_max_window_bits=7"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_max_window_bits=16", []string{"permessage-deflate; server_max_window_bits=16"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_max_window_bits=08", []string{"permessage-deflate; server_max_window_bits=08"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_max_window_bits=+8", []string{"permessage-deflate; server_max_window_bits=+8"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_max_window_bits=a", []string{"permessage-deflate; server_max_window_bits=a"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_max_window_bits=150", []string{"permessage-deflate; server_max_window_bits=150"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_max_window_bits without a value", []string{"permessage-deflate; server_max_window_bits"}, CompressionContextTakeover, deflateParams{}, ""},
	{"client_max_window_bits=7", []string{"permessage-deflate; client_max_window_bits=7"}, CompressionContextTakeover, deflateParams{}, ""},
	{"client_max_window_bits=16", []string{"permessage-deflate; client_max_window_bits=16"}, CompressionContextTakeover, deflateParams{}, ""},
	{"client_max_window_bits=010", []string{"permessage-deflate; client_max_window_bits=010"}, CompressionContextTakeover, deflateParams{}, ""},

	// Declined offers, RFC 7692 §5.
	{"unknown parameter", []string{"permessage-deflate; mem_level=8"}, CompressionContextTakeover, deflateParams{}, ""},
	{"parameter twice", []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, CompressionContextTakeover, deflateParams{}, ""},
	{"parameter twice, in other cases", []string{"permessage-deflate; server_max_window_bits=10; SERVER_MAX_WINDOW_BITS=10"}, CompressionContextTakeover, deflateParams{}, ""},
	{"server_no_context_takeover with a value", []string{"permessage-deflate; server_no_context_takeover=true"}, CompressionContextTakeover, deflateParams{}, ""},
	{"client_no_context_takeover with a value", []string{`permessage-deflate; client_no_context_takeover="1"`}, CompressionContextTakeover, deflateParams{}, ""},

	// The first acceptable offer wins; declined ones and other extensions are skipped.
	{"declined, then accepted", []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=11"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 11}, respContext + "; server_max_window_bits=11"},
	{"first of two acceptable", []string{"permessage-deflate; server_max_window_bits=11, permessage-deflate"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 11}, respContext + "; server_max_window_bits=11"},
	{"other extension first", []string{"x-foo; bar=1, permessage-deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"other extension with a parameter of ours", []string{"x-foo; server_max_window_bits=99, permessage-deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"every offer declined", []string{"permessage-deflate; a, permessage-deflate; b"}, CompressionContextTakeover, deflateParams{}, ""},

	// Several header values form one list.
	{"two values", []string{"x-foo", "permessage-deflate; server_max_window_bits=13"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 13}, respContext + "; server_max_window_bits=13"},
	{"declined in the first value", []string{"permessage-deflate; x", "permessage-deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"empty first value", []string{"", "permessage-deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"empty list elements", []string{",permessage-deflate,,"}, CompressionContextTakeover, serverContext, respContext},

	// Case, white space, quoting.
	{"name in capitals", []string{"PerMessage-Deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"parameters in capitals", []string{"permessage-deflate; Client_No_Context_Takeover; SERVER_MAX_WINDOW_BITS=10"}, CompressionContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 10}, respNoContext + "; server_max_window_bits=10"},
	{"no white space", []string{"permessage-deflate;server_max_window_bits=10,x"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 10}, respContext + "; server_max_window_bits=10"},
	{"white space everywhere", []string{" \tpermessage-deflate \t; \tserver_max_window_bits \t= \t10 \t, x \t"}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 10}, respContext + "; server_max_window_bits=10"},
	{"quoted window", []string{`permessage-deflate; server_max_window_bits="10"`}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 10}, respContext + "; server_max_window_bits=10"},
	{"quoted window with escapes", []string{`permessage-deflate; server_max_window_bits="\1\2"`}, CompressionContextTakeover,
		deflateParams{peerWindowBits: 15, windowBits: 12}, respContext + "; server_max_window_bits=12"},
	{"quoted client window", []string{`permessage-deflate; client_max_window_bits="9"`}, CompressionContextTakeover, serverContext, respContext},
	{"quoted invalid window", []string{`permessage-deflate; server_max_window_bits="16"`}, CompressionContextTakeover, deflateParams{}, ""},
	{"quoted value of another extension", []string{`x-foo; bar="b\"az"`, "permessage-deflate"}, CompressionContextTakeover, deflateParams{}, ""},
	{"quoted token of another extension", []string{`x-foo; bar="b\az"`, "permessage-deflate"}, CompressionContextTakeover, serverContext, respContext},
	{"Kelvin sign is not k", []string{"permessage-deflate; client_no_context_ta\u212Aeover"}, CompressionContextTakeover, deflateParams{}, ""},
}

func TestAcceptDeflate(t *testing.T) {
	for _, tt := range acceptDeflateTests {
		t.Run(tt.name, func(t *testing.T) {
			p, response, ok := acceptDeflate(tt.values, tt.mode)
			assert.Equal(t, tt.response != "", ok, "ok")
			assert.Equal(t, tt.response, response)
			assert.Equal(t, tt.want, p)
		})
	}
}

// malformedExtensions break the grammar of RFC 6455 §9.1. Each is appended to, or put
// before, an acceptable offer in the tests: a break anywhere makes the whole header
// unusable.
var malformedExtensions = []struct {
	name  string
	value string
}{
	{"empty parameter", "permessage-deflate;; client_no_context_takeover"},
	{"blank parameter", "permessage-deflate; ; client_no_context_takeover"},
	{"trailing semicolon", "permessage-deflate;"},
	{"trailing semicolon and space", "permessage-deflate; "},
	{"parameters without a name", "; server_no_context_takeover"},
	{"equals without a value", "permessage-deflate; server_max_window_bits="},
	{"equals without a value, then more", "permessage-deflate; server_max_window_bits= ; client_no_context_takeover"},
	{"value without a name", "permessage-deflate; =10"},
	{"two equals", "permessage-deflate; server_max_window_bits==10"},
	{"two values", "permessage-deflate; server_max_window_bits=10=11"},
	{"space in a value", "permessage-deflate; server_max_window_bits=1 0"},
	{"space in a name", "permessage deflate"},
	{"unbalanced quote", `permessage-deflate; server_max_window_bits="10`},
	{"unbalanced quote, escaped", `permessage-deflate; server_max_window_bits="10\"`},
	{"backslash at the end", `permessage-deflate; server_max_window_bits="10\`},
	{"quote in a token", `permessage-deflate; server_max_window_bits=1"0"`},
	{"text after a quoted value", `permessage-deflate; server_max_window_bits="10"x`},
	{"empty quoted value", `permessage-deflate; server_max_window_bits=""`},
	{"quoted value not a token", `permessage-deflate; server_max_window_bits="1 0"`},
	{"quoted name", `"permessage-deflate"`},
	{"quoted parameter name", `permessage-deflate; "server_no_context_takeover"`},
	{"separator in a name", "permessage-deflate/1"},
	{"NUL", "permessage-deflate\x00"},
	{"CR LF", "permessage-deflate\r\n"},
	{"DEL", "permessage-deflate; x\x7f"},
	{"control character in a quoted value", "permessage-deflate; x=\"a\x01\""},
	{"non-ASCII name", "permessage\u2010deflate"},
	{"non-ASCII quoted value", "permessage-deflate; x=\"\u00e9\""},
	{"invalid UTF-8", "permessage-deflate; \xff\xfe"},
}

func TestAcceptDeflateMalformed(t *testing.T) {
	for _, tt := range malformedExtensions {
		t.Run(tt.name, func(t *testing.T) {
			for _, values := range [][]string{
				{tt.value},
				{tt.value + ", permessage-deflate"},
				{"permessage-deflate, " + tt.value},
				{tt.value, "permessage-deflate"},
				{"permessage-deflate", tt.value},
			} {
				for _, mode := range []CompressionMode{CompressionContextTakeover, CompressionNoContextTakeover} {
					p, response, ok := acceptDeflate(values, mode)
					assert.False(t, ok, "%q under %v", values, mode)
					assert.Empty(t, response, "%q under %v", values, mode)
					assert.Zero(t, p, "%q under %v", values, mode)
				}
			}
		})
	}
}

// TestExtensionOddBytes puts every byte that is neither a token character nor a
// separator of the grammar into an acceptable offer, where no byte is allowed, and
// checks that both sides refuse it.
func TestExtensionOddBytes(t *testing.T) {
	const offer = "permessage-deflate; server_max_window_bits=10"
	for c := 0; c < 256; c++ {
		b := byte(c)
		if isTokenChar(b) || strings.IndexByte(" \t,;=", b) >= 0 {
			continue
		}
		for i := 0; i <= len(offer); i++ {
			v := offer[:i] + string([]byte{b}) + offer[i:]
			_, _, ok := acceptDeflate([]string{v}, CompressionContextTakeover)
			assert.False(t, ok, "%q", v)
			_, ok, err := deflateResponse([]string{v}, CompressionContextTakeover)
			assert.False(t, ok, "%q", v)
			assert.Error(t, err, "%q", v)
		}
	}
}

// TestExtensionTruncated feeds every prefix of the tests' values to both sides: there
// must be no panic, and a response must be either accepted or refused with a reason.
func TestExtensionTruncated(t *testing.T) {
	var values []string
	for _, tt := range acceptDeflateTests {
		values = append(values, tt.values...)
	}
	for _, tt := range malformedExtensions {
		values = append(values, tt.value)
	}
	for _, tt := range deflateResponseTests {
		values = append(values, tt.values...)
	}
	for _, v := range values {
		for i := 0; i <= len(v); i++ {
			for _, mode := range []CompressionMode{CompressionDisabled, CompressionNoContextTakeover, CompressionContextTakeover} {
				require.NotPanics(t, func() {
					acceptDeflate([]string{v[:i]}, mode)
					p, ok, err := deflateResponse([]string{v[:i]}, mode)
					if ok {
						assert.NoError(t, err, "%q", v[:i])
						assert.True(t, 8 <= p.windowBits && p.windowBits <= 15, "%q: %+v", v[:i], p)
						assert.True(t, 8 <= p.peerWindowBits && p.peerWindowBits <= 15, "%q: %+v", v[:i], p)
					}
				}, "%q", v[:i])
			}
		}
	}
}

func TestDeflateOffer(t *testing.T) {
	tests := []struct {
		mode CompressionMode
		want string
	}{
		{CompressionDisabled, ""},
		{CompressionMode(7), ""},
		{CompressionContextTakeover, "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
		{CompressionNoContextTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, deflateOffer(tt.mode))
		})
	}
}

var deflateResponseTests = []struct {
	name    string
	values  []string
	mode    CompressionMode
	want    deflateParams
	ok      bool
	wantErr bool
}{
	// No extension.
	{"no header", nil, CompressionContextTakeover, deflateParams{}, false, false},
	{"empty value", []string{""}, CompressionContextTakeover, deflateParams{}, false, false},
	{"empty values", []string{"", " "}, CompressionNoContextTakeover, deflateParams{}, false, false},
	{"commas only", []string{", ,"}, CompressionContextTakeover, deflateParams{}, false, false},
	{"no header, disabled", nil, CompressionDisabled, deflateParams{}, false, false},
	{"empty value, disabled", []string{""}, CompressionDisabled, deflateParams{}, false, false},

	// Accepted, as the Autobahn fuzzingserver answers.
	{"bare", []string{"permessage-deflate"}, CompressionContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 15}, true, false},
	{"Autobahn client_max_window_bits=8", []string{"permessage-deflate; client_max_window_bits=8"}, CompressionContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 8}, true, false},
	{"Autobahn client_no_context_takeover", []string{"permessage-deflate; client_no_context_takeover"}, CompressionContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 15}, true, false},
	{"Autobahn both no_context_takeover", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, CompressionNoContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}, true, false},
	{"Autobahn every parameter", []string{"permessage-deflate; client_no_context_takeover; client_max_window_bits=8; server_no_context_takeover; server_max_window_bits=8"}, CompressionContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 8, windowBits: 8}, true, false},
	{"server_max_window_bits=9", []string{"permessage-deflate; server_max_window_bits=9"}, CompressionContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 9, windowBits: 15}, true, false},
	{"our server, context takeover", []string{respContext}, CompressionContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}, true, false},
	{"our server, no context takeover", []string{respNoContext + "; server_max_window_bits=10"}, CompressionNoContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 10, windowBits: 15}, true, false},
	{"server_no_context_takeover asked for and left out", []string{"permessage-deflate"}, CompressionNoContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 15}, true, false},
	{"capitals, white space and quotes", []string{` PerMessage-Deflate ;SERVER_NO_CONTEXT_TAKEOVER ; Client_Max_Window_Bits = "1\1" `}, CompressionContextTakeover,
		deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 11}, true, false},
	{"empty values around", []string{"", "permessage-deflate; client_max_window_bits=12", ""}, CompressionContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 12}, true, false},
	{"empty list elements", []string{", permessage-deflate ,"}, CompressionContextTakeover,
		deflateParams{peerNoContext: false, peerWindowBits: 15, windowBits: 15}, true, false},

	// Not offered, RFC 6455 §4.1.
	{"disabled", []string{"permessage-deflate"}, CompressionDisabled, deflateParams{}, false, true},
	{"undefined mode", []string{"permessage-deflate"}, CompressionMode(7), deflateParams{}, false, true},
	{"other extension", []string{"x-webkit-deflate-frame"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"other extension, disabled", []string{"x-foo"}, CompressionDisabled, deflateParams{}, false, true},
	{"other extension too", []string{"permessage-deflate, x-foo"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"twice", []string{"permessage-deflate, permessage-deflate"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"twice, in two values", []string{"permessage-deflate", "permessage-deflate"}, CompressionContextTakeover, deflateParams{}, false, true},

	// Invalid parameters, RFC 7692 §5.
	{"unknown parameter", []string{"permessage-deflate; mem_level=8"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"parameter twice", []string{"permessage-deflate; server_no_context_takeover; Server_No_Context_Takeover"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"window twice", []string{"permessage-deflate; client_max_window_bits=8; client_max_window_bits=8"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"server_no_context_takeover with a value", []string{"permessage-deflate; server_no_context_takeover=1"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"client_no_context_takeover with a value", []string{`permessage-deflate; client_no_context_takeover=""`}, CompressionContextTakeover, deflateParams{}, false, true},
	{"client_max_window_bits without a value", []string{"permessage-deflate; client_max_window_bits"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"server_max_window_bits without a value", []string{"permessage-deflate; server_max_window_bits"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"client_max_window_bits=7", []string{"permessage-deflate; client_max_window_bits=7"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"server_max_window_bits=16", []string{"permessage-deflate; server_max_window_bits=16"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"server_max_window_bits=09", []string{"permessage-deflate; server_max_window_bits=09"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"server_max_window_bits=0", []string{"permessage-deflate; server_max_window_bits=0"}, CompressionContextTakeover, deflateParams{}, false, true},

	// Malformed, RFC 6455 §9.1.
	{"trailing semicolon", []string{"permessage-deflate;"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"equals without a value", []string{"permessage-deflate; client_max_window_bits="}, CompressionContextTakeover, deflateParams{}, false, true},
	{"unbalanced quote", []string{`permessage-deflate; client_max_window_bits="8`}, CompressionContextTakeover, deflateParams{}, false, true},
	{"malformed second value", []string{"permessage-deflate", "; x"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"malformed, disabled", []string{"permessage-deflate;;"}, CompressionDisabled, deflateParams{}, false, true},
	{"control character", []string{"permessage-deflate\x01"}, CompressionContextTakeover, deflateParams{}, false, true},
	{"non-ASCII", []string{"permessage-deflate; client_max_window_bits=\u0668"}, CompressionContextTakeover, deflateParams{}, false, true},
}

func TestDeflateResponse(t *testing.T) {
	for _, tt := range deflateResponseTests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok, err := deflateResponse(tt.values, tt.mode)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.ok, ok, "ok")
			assert.Equal(t, tt.want, p)
		})
	}
}

func TestDeflateResponseMalformed(t *testing.T) {
	for _, tt := range malformedExtensions {
		t.Run(tt.name, func(t *testing.T) {
			p, ok, err := deflateResponse([]string{tt.value}, CompressionContextTakeover)
			assert.Error(t, err)
			assert.False(t, ok)
			assert.Zero(t, p)
		})
	}
}

// TestDeflateNegotiation runs our client's offer through our server and back, for every
// pair of modes, and checks that each side's idea of the other matches the other's.
func TestDeflateNegotiation(t *testing.T) {
	modes := []CompressionMode{CompressionDisabled, CompressionNoContextTakeover, CompressionContextTakeover}
	for _, client := range modes {
		for _, server := range modes {
			t.Run(fmt.Sprintf("client %v, server %v", client, server), func(t *testing.T) {
				var offer []string
				if o := deflateOffer(client); o != "" {
					offer = []string{o}
				}
				sp, response, ok := acceptDeflate(offer, server)
				require.Equal(t, client != CompressionDisabled && server != CompressionDisabled, ok)

				var answer []string
				if ok {
					answer = []string{response}
				}
				cp, ok, err := deflateResponse(answer, client)
				require.NoError(t, err)
				require.Equal(t, answer != nil, ok)
				if !ok {
					return
				}
				// Neither side keeps context, and each says so: our server in its response,
				// our client with client_no_context_takeover, which our server confirms.
				assert.True(t, cp.peerNoContext, "client drops the server's window")
				assert.True(t, sp.peerNoContext, "server drops the client's window")
				assert.Contains(t, response, "client_no_context_takeover")
				assert.Equal(t, sp.windowBits, cp.peerWindowBits)
				assert.Equal(t, cp.windowBits, sp.peerWindowBits)
			})
		}
	}
}
