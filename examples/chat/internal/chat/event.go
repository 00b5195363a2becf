package chat

import (
	"strconv"
	"unicode/utf8"

	"github.com/hybi/websocket"
)

// Event is what the server sends, as a JSON text message. A connection's first event
// is a welcome; then come the messages it missed, then live events.
type Event struct {
	Type    string   `json:"type"`              // welcome, gap, message, join, leave or notice
	ID      int64    `json:"id,omitempty"`      // message: its number in the room, increasing
	Name    string   `json:"name,omitempty"`    // message, join, leave: who
	Text    string   `json:"text,omitempty"`    // message; notice: what the server has to say
	Epoch   string   `json:"epoch,omitempty"`   // welcome: names this life of the room, in which IDs are unique
	Members []string `json:"members,omitempty"` // welcome: who is in the room, the newcomer too
}

// Encode encodes ev, and frames it, once for every member it goes to. The JSON is
// that of encoding/json, written without reflection: a node encodes each line of the
// room once, and encoding/json took as long as the rest of it.
func Encode(ev Event) *websocket.PreparedMessage {
	n := 64 + len(ev.Type) + len(ev.Name) + len(ev.Text) + len(ev.Epoch)
	for _, m := range ev.Members {
		n += len(m) + 3
	}
	m, err := websocket.NewPreparedMessage(websocket.MessageText, ev.appendJSON(make([]byte, 0, n)))
	if err != nil {
		panic(err) // the type is one of the two
	}
	return m
}

// appendJSON appends ev as encoding/json would encode it.
func (ev *Event) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, ev.Type)
	if ev.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, ev.ID, 10)
	}
	if ev.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, ev.Name)
	}
	if ev.Text != "" {
		b = append(b, `,"text":`...)
		b = appendString(b, ev.Text)
	}
	if ev.Epoch != "" {
		b = append(b, `,"epoch":`...)
		b = appendString(b, ev.Epoch)
	}
	if len(ev.Members) > 0 {
		b = append(b, `,"members":[`...)
		for i, m := range ev.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json escapes it: quotes,
// backslashes and control characters, and <, >, &, U+2028 and U+2029 for pages that
// put it in HTML or JavaScript; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
