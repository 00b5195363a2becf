package chat

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncode holds Encode's JSON to encoding/json's, byte for byte.
func TestEncode(t *testing.T) {
	odd := "\"quoted\" \\ back\b\f\n\r\t\x00\x1f\x7f <b>&amp; \u2028\u2029 é 日本 🙂 \xff\xfe bad \xe2\x82"
	for _, ev := range []Event{
		{Type: "gap"},
		{Type: "message", ID: 1, Name: "ann", Text: "hello"},
		{Type: "message", ID: -7, Name: odd, Text: odd},
		{Type: "message", ID: 1 << 62, Name: "ann", Text: ""},
		{Type: "join", Name: "bob"},
		{Type: "notice", Text: odd},
		{Type: "welcome", Epoch: "e1", Members: []string{"ann", odd, ""}},
		{Type: "welcome", Epoch: "e1", Members: []string{}},
		{Type: odd},
	} {
		want, err := json.Marshal(ev)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(ev.appendJSON(nil)), "%+v", ev)
	}
}

// BenchmarkEncode encodes a line of the load test's size.
func BenchmarkEncode(b *testing.B) {
	ev := Event{Type: "message", ID: 12345, Name: "c123", Text: "1733480000000000000 2 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
	b.ReportAllocs()
	for b.Loop() {
		Encode(ev)
	}
}
