package websocket

import "strconv"

// CompressionMode says whether a Conn compresses its messages with the permessage-deflate
// extension (RFC 7692), and how much memory it spends on it.
type CompressionMode int

const (
	// CompressionDisabled neither offers nor accepts compression. It is the default.
	CompressionDisabled CompressionMode = iota

	// CompressionNoContextTakeover compresses each message on its own, in both
	// directions: the two sides agree that neither refers back to earlier messages.
	// A Conn then keeps no compression state between messages.
	CompressionNoContextTakeover

	// CompressionContextTakeover lets the peer compress each message against the ones it
	// sent before, which shrinks small, similar messages much more; the Conn keeps the
	// last 32 KiB the peer sent (less if the peer announced a smaller window). The Conn's
	// own messages are still compressed each on its own.
	CompressionContextTakeover
)

func (m CompressionMode) String() string {
	switch m {
	case CompressionDisabled:
		return "disabled"
	case CompressionNoContextTakeover:
		return "no context takeover"
	case CompressionContextTakeover:
		return "context takeover"
	}
	return "CompressionMode(" + strconv.Itoa(int(m)) + ")"
}
