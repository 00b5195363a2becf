package websocket

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ErrMessageTooBig is matched by errors.Is when a message was larger than the read limit.
// The Conn has then been closed with status 1009.
var ErrMessageTooBig = errors.New("websocket: message exceeds the read limit")

// CloseError is the close frame a peer sent: its status code and reason. Once the peer has
// closed, Read, Reader and the message readers return an error that errors.As finds a
// *CloseError in.
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket: peer closed with status %d (%v)", int(e.Code), e.Code)
	}
	return fmt.Sprintf("websocket: peer closed with status %d (%v): %q", int(e.Code), e.Code, e.Reason)
}

// CloseStatus returns the status code of the close frame found in err's chain, or -1 if
// there is none.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// ProtocolError is a message the Conn refused: a violation of RFC 6455 by the peer, or a
// message over the read limit (Code 1009; errors.Is(err, ErrMessageTooBig) tells it
// apart). The Conn tried to send the peer a close frame with Code, giving up after the
// close timeout if a write held the connection, and dropped the connection.
type ProtocolError struct {
	Code   StatusCode // the close code sent to the peer: 1002, 1007, 1009 …
	Reason string     // what the peer did wrong
	err    error      // a sentinel such as ErrMessageTooBig, for errors.Is
}

func protocolError(code StatusCode, reason string) *ProtocolError {
	return &ProtocolError{Code: code, Reason: reason}
}

func (e *ProtocolError) Error() string {
	hint := ""
	if e.err == ErrMessageTooBig {
		hint = "; Conn.SetReadLimit raises the limit"
	}
	return fmt.Sprintf("websocket: %s%s (closed with status %d)", e.Reason, hint, int(e.Code))
}

func (e *ProtocolError) Unwrap() error { return e.err }

// HandshakeError is a refused opening handshake. On the server, Accept has already written
// Status and Reason as the HTTP response; on the client, Dial returns it along with the
// server's response.
type HandshakeError struct {
	Status int    // HTTP status code
	Reason string // why the handshake failed
}

func (e *HandshakeError) Error() string {
	return "websocket: handshake failed: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// closedError is what every call returns once the Conn is closed: it satisfies
// errors.Is(err, net.ErrClosed) and carries the cause (a *CloseError, a *ProtocolError,
// the I/O error …) for errors.As.
type closedError struct {
	cause error
}

func (e *closedError) Error() string {
	if e.cause == nil {
		return "websocket: use of closed connection"
	}
	return "websocket: connection closed: " + trimPrefix(e.cause.Error())
}

func (e *closedError) Unwrap() []error {
	if e.cause == nil {
		return []error{net.ErrClosed}
	}
	return []error{net.ErrClosed, e.cause}
}

// trimPrefix keeps the "websocket: " prefix from appearing twice in a wrapped message.
func trimPrefix(s string) string {
	const p = "websocket: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
