package websocket

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawClosePayload builds a close frame payload by hand.
func rawClosePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// wireCodeTests are the boundaries of the status code ranges of RFC 6455 §7.4, and
// whether a close frame may carry each.
var wireCodeTests = []struct {
	code  uint16
	valid bool
}{
	{0, false},
	{999, false},
	{1000, true},
	{1001, true},
	{1002, true},
	{1003, true},
	{1004, false}, // reserved
	{1005, false}, // no status received: never sent
	{1006, false}, // abnormal closure: never sent
	{1007, true},
	{1008, true},
	{1009, true},
	{1010, true},
	{1011, true},
	{1012, true},
	{1013, true},
	{1014, true},
	{1015, false}, // TLS handshake: never sent
	{1016, false},
	{2999, false},
	{3000, true},
	{3999, true},
	{4000, true},
	{4999, true},
	{5000, false},
	{65535, false},
}

func TestParseClosePayloadCodes(t *testing.T) {
	for _, tt := range wireCodeTests {
		for _, reason := range []string{"", "bye"} {
			t.Run(fmt.Sprintf("%d/%q", tt.code, reason), func(t *testing.T) {
				ce, err := parseClosePayload(rawClosePayload(tt.code, reason))
				if tt.valid {
					require.NoError(t, err)
					assert.Equal(t, &CloseError{Code: StatusCode(tt.code), Reason: reason}, ce)
					return
				}
				assert.Nil(t, ce)
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, StatusProtocolError, pe.Code)
			})
		}
	}
}

func TestParseClosePayload(t *testing.T) {
	long := strings.Repeat("é", 61) + "x" // 123 bytes
	require.Len(t, long, maxCloseReason)

	valid := []struct {
		name string
		p    []byte
		want CloseError
	}{
		{"empty", nil, CloseError{Code: StatusNoStatusReceived}},
		{"code only", []byte{0x03, 0xE8}, CloseError{Code: StatusNormalClosure}},
		{"reason", rawClosePayload(1001, "going"), CloseError{Code: StatusGoingAway, Reason: "going"}},
		{"UTF-8 reason", rawClosePayload(4000, "κόσμε"), CloseError{Code: 4000, Reason: "κόσμε"}},
		{"123-byte reason", rawClosePayload(1000, long), CloseError{Code: StatusNormalClosure, Reason: long}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			ce, err := parseClosePayload(tt.p)
			require.NoError(t, err)
			require.NotNil(t, ce)
			assert.Equal(t, tt.want, *ce)
		})
	}

	refused := []struct {
		name string
		p    []byte
		code StatusCode
	}{
		{"one byte", []byte{0x03}, StatusProtocolError},
		{"one byte zero", []byte{0x00}, StatusProtocolError},
		{"reason FF", rawClosePayload(1000, "\xff"), StatusInvalidFramePayloadData},
		{"reason truncated", rawClosePayload(1000, "ok\xe2\x82"), StatusInvalidFramePayloadData},
		{"reason surrogate", rawClosePayload(1000, "\xed\xa0\x80"), StatusInvalidFramePayloadData},
		{"reason overlong", rawClosePayload(1000, "\xc0\xaf"), StatusInvalidFramePayloadData},
		{"bad code and bad reason", rawClosePayload(1005, "\xff"), StatusProtocolError},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			ce, err := parseClosePayload(tt.p)
			assert.Nil(t, ce)
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.code, pe.Code)
		})
	}
}

func TestAppendClosePayloadCodes(t *testing.T) {
	prefix := []byte("hdr")
	for _, tt := range wireCodeTests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			b, err := appendClosePayload(prefix[:len(prefix):len(prefix)], StatusCode(tt.code), "bye")
			if tt.valid {
				require.NoError(t, err)
				assert.Equal(t, append([]byte("hdr"), rawClosePayload(tt.code, "bye")...), b)
				return
			}
			assert.Error(t, err)
			assert.Equal(t, prefix, b, "nothing appended")
		})
	}
}

func TestAppendClosePayload(t *testing.T) {
	long := strings.Repeat("é", 61) + "x"
	require.Len(t, long, maxCloseReason)

	t.Run("1005 without reason is empty", func(t *testing.T) {
		b, err := appendClosePayload([]byte("hdr"), StatusNoStatusReceived, "")
		require.NoError(t, err)
		assert.Equal(t, []byte("hdr"), b)
	})
	t.Run("123-byte reason", func(t *testing.T) {
		b, err := appendClosePayload(nil, StatusNormalClosure, long)
		require.NoError(t, err)
		assert.Equal(t, rawClosePayload(1000, long), b)
		assert.Len(t, b, maxControlPayload)
	})

	refused := []struct {
		name   string
		code   StatusCode
		reason string
		is     error // the sentinel errors.Is finds, if any
	}{
		{"124-byte reason", StatusNormalClosure, long + "x", errReasonTooLong},
		{"long UTF-8 reason", StatusNormalClosure, strings.Repeat("κ", 62), errReasonTooLong},
		{"reason FF", StatusNormalClosure, "\xff", errReasonUTF8},
		{"reason truncated", StatusGoingAway, "ok\xe2\x82", errReasonUTF8},
		{"reason surrogate", 4000, "\xed\xa0\x80", errReasonUTF8},
		{"1005 with a reason", StatusNoStatusReceived, "bye", nil},
		{"1006", StatusAbnormalClosure, "", nil},
		{"1015", StatusTLSHandshake, "", nil},
		{"999", 999, "", nil},
		{"5000", 5000, "", nil},
		{"0", 0, "", nil},
		{"negative", -1, "", nil},
		{"beyond 16 bits", 65536 + 1000, "", nil},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			b, err := appendClosePayload([]byte("hdr"), tt.code, tt.reason)
			require.Error(t, err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.Equal(t, []byte("hdr"), b, "nothing appended")
		})
	}
}

// TestClosePayloadRoundTrip checks that what appendClosePayload writes, parseClosePayload
// reads back.
func TestClosePayloadRoundTrip(t *testing.T) {
	long := strings.Repeat("é", 61) + "x"
	reasons := []string{"", "bye", "κόσμε", "\x00", long}
	for _, tt := range wireCodeTests {
		if !tt.valid {
			continue
		}
		for _, reason := range reasons {
			t.Run(fmt.Sprintf("%d/%q", tt.code, reason), func(t *testing.T) {
				p, err := appendClosePayload(nil, StatusCode(tt.code), reason)
				require.NoError(t, err)
				assert.LessOrEqual(t, len(p), maxControlPayload)
				ce, err := parseClosePayload(p)
				require.NoError(t, err)
				assert.Equal(t, &CloseError{Code: StatusCode(tt.code), Reason: reason}, ce)
			})
		}
	}
	t.Run("1005", func(t *testing.T) {
		p, err := appendClosePayload(nil, StatusNoStatusReceived, "")
		require.NoError(t, err)
		ce, err := parseClosePayload(p)
		require.NoError(t, err)
		assert.Equal(t, &CloseError{Code: StatusNoStatusReceived}, ce)
	})
}

func TestStatusCodeString(t *testing.T) {
	exact := []struct {
		code StatusCode
		want string
	}{
		{StatusNormalClosure, "normal closure"},
		{StatusProtocolError, "protocol error"},
		{StatusInvalidFramePayloadData, "invalid frame payload data"},
		{StatusNoStatusReceived, "no status received"},
		{3000, "registered status 3000"},
		{4999, "private status 4999"},
		{1004, "status 1004"},
		{5000, "status 5000"},
	}
	for _, tt := range exact {
		assert.Equal(t, tt.want, tt.code.String(), "%d", int(tt.code))
	}

	seen := map[string]StatusCode{}
	for _, c := range []StatusCode{0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008,
		1009, 1010, 1011, 1012, 1013, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 65535, -1} {
		s := c.String()
		assert.NotEmpty(t, s, "%d", int(c))
		if prev, ok := seen[s]; ok {
			assert.Failf(t, "duplicate name", "%d and %d are both %q", int(prev), int(c), s)
		}
		seen[s] = c
	}
}

func TestMessageTypeString(t *testing.T) {
	tests := []struct {
		typ  MessageType
		want string
	}{
		{MessageText, "text"},
		{MessageBinary, "binary"},
		{0, "MessageType(0)"},
		{9, "MessageType(9)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.typ.String())
	}
}
