package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hybi/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file builds the test messages exactly as messages.js does; see there for what
// each kind holds. TestMessagesAgree checks that both sides build the same bytes.

// msgSpec describes a test message. Both the Go tests and the Node scripts build its
// bytes from it.
type msgSpec struct {
	Kind string `json:"kind"` // "text", "binary" or "json"
	Size int    `json:"size,omitempty"`
	Seed uint32 `json:"seed"`
	// Fragments lists the lengths of every fragment but the last, for a message that a
	// ws peer sends in pieces.
	Fragments []int `json:"fragments,omitempty"`
}

var (
	words = []string{
		"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
		"websocket", "frame", "deflate", "window", "context", "takeover", "message", "server",
		"client", "échange", "naïve", "größe", "über", "日本", "→", "λ",
		"ok", "0", "42", "lorem", "ipsum", "dolor", "sit", "amet",
	}
	users   = []string{"alice", "bob", "carol", "dave", "eve", "mallory", "oscar", "trent"}
	actions = []string{"create", "read", "update", "delete", "list", "watch"}
	tags    = []string{"red", "green", "blue", "urgent", "later"}
)

// rng returns a xorshift32 generator.
func rng(seed uint32) func() uint32 {
	x := seed ^ 0x9e3779b9
	if x == 0 {
		x = 1
	}
	return func() uint32 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		return x
	}
}

func (s msgSpec) build() []byte {
	switch s.Kind {
	case "text":
		return genText(s.Size, s.Seed)
	case "binary":
		return genBinary(s.Size, s.Seed)
	case "json":
		return genJSON(s.Seed)
	}
	panic("unknown message kind " + s.Kind)
}

func (s msgSpec) messageType() websocket.MessageType {
	if s.Kind == "binary" {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

func genText(size int, seed uint32) []byte {
	next := rng(seed)
	out := make([]byte, 0, size)
	var lines []string
	for len(out) < size {
		var line string
		if len(lines) > 0 && next()%4 == 0 {
			line = lines[len(lines)-1-int(next()%uint32(min(len(lines), 256)))]
		} else {
			count := 4 + next()%9
			w := make([]string, count)
			for i := range w {
				w[i] = words[next()%uint32(len(words))]
			}
			line = strings.Join(w, " ") + "\n"
			lines = append(lines, line)
		}
		if len(out)+len(line) > size {
			line = strings.Repeat(".", size-len(out))
		}
		out = append(out, line...)
	}
	return out
}

func genBinary(size int, seed uint32) []byte {
	next := rng(seed)
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(next() >> 24)
	}
	return b
}

func genJSON(seed uint32) []byte {
	next := rng(seed)
	pick := func(list []string) string { return list[next()%uint32(len(list))] }
	t := make([]string, 1+next()%3)
	for i := range t {
		t[i] = pick(tags)
	}
	user := pick(users)
	action := pick(actions)
	value := next() % 10000
	return fmt.Appendf(nil, `{"id":%d,"user":"%s","action":"%s","value":%d,"tags":["%s"],"ok":%s}`,
		seed, user, action, value, strings.Join(t, `","`), strconv.FormatBool(value%2 == 0))
}

// exchangeSizes are the sizes of the text and binary messages of an exchange: around
// the frame header's length boundaries, flate's 32 KiB window and 64 KiB block sizes,
// and up to the default read limit.
var exchangeSizes = []int{0, 1, 16, 125, 126, 1000, 4096, 65535, 65536, 131072, 1 << 20}

// exchange returns the messages both sides of a test send: a text and a binary message
// of each size, then 200 small JSON objects alike, which a peer compressing with
// context takeover shrinks to a few bytes each.
func exchange() []msgSpec {
	var specs []msgSpec
	for i, n := range exchangeSizes {
		specs = append(specs,
			msgSpec{Kind: "text", Size: n, Seed: uint32(2*i + 1)},
			msgSpec{Kind: "binary", Size: n, Seed: uint32(2*i + 2)})
	}
	for i := range 200 {
		specs = append(specs, msgSpec{Kind: "json", Seed: uint32(1000 + i)})
	}
	return specs
}

// payloadSizes returns the total length of the text and of the binary messages built
// from specs.
func payloadSizes(msgs [][]byte, specs []msgSpec) (text, binary int) {
	for i, m := range msgs {
		if specs[i].Kind == "binary" {
			binary += len(m)
		} else {
			text += len(m)
		}
	}
	return text, binary
}

func buildAll(specs []msgSpec) [][]byte {
	msgs := make([][]byte, len(specs))
	for i, s := range specs {
		msgs[i] = s.build()
	}
	return msgs
}

func TestMessagesAgree(t *testing.T) {
	needNode(t)
	specs := append(exchange(), msgSpec{Kind: "text", Size: 300000, Seed: 77})
	arg, err := json.Marshal(specs)
	require.NoError(t, err)
	out, err := exec.CommandContext(t.Context(), "node", "messages.js", string(arg)).Output()
	require.NoError(t, err, "node messages.js: %s", stderrOf(err))

	lines := strings.Fields(string(out))
	require.Len(t, lines, len(specs))
	for i, s := range specs {
		sum := sha256.Sum256(s.build())
		assert.Equal(t, hex.EncodeToString(sum[:]), lines[i], "message %d: %+v", i, s)
	}
}

func TestTextRepeatsFarBack(t *testing.T) {
	// The text must hold matches more than 256 bytes back, or a window of 8 bits would
	// lose nothing on it, and tests of window sizes would prove nothing.
	msg := genText(1<<16, 1)
	far := 0
	for i := 0; i+32 <= len(msg); i += 32 {
		if bytes.Contains(msg[max(0, i-32768):max(0, i-256)], msg[i:i+32]) {
			far++
		}
	}
	assert.Greater(t, far, len(msg)/32/20, "32-byte pieces found again more than 256 bytes back")
	assert.True(t, utf8.Valid(msg))
}
