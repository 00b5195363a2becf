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

func (e *CloseError) Error() string { return errPrefix + e.text() }

func (e *CloseError) text() string {
	if e.Reason == "" {
		return fmt.Sprintf("peer closed with status %d (%v)", int(e.Code), e.Code)
	}
	return fmt.Sprintf("peer closed with status %d (%v): %q", int(e.Code), e.Code, e.Reason)
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

func (e *ProtocolError) Error() string { return errPrefix + e.text() }

func (e *ProtocolError) text() string {
	hint := ""
	if e.err == ErrMessageTooBig {
		hint = "; Conn.SetReadLimit raises the limit"
	}
	return fmt.Sprintf("%s%s (closed with status %d)", e.Reason, hint, int(e.Code))
}

func (e *ProtocolError) Unwrap() error { return e.err }

// HandshakeError is a refused opening handshake. On the server, Accept has already written
// Status and Reason as the HTTP response; on the client, Dial returns it along with the
// server's response.
type HandshakeError struct {
	Status int    // HTTP status code
	Reason string // why the handshake failed
}

func (e *HandshakeError) Error() string { return errPrefix + e.text() }

func (e *HandshakeError) text() string {
	return "handshake failed: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// closedError is what every call returns once the Conn is closed: it satisfies
// errors.Is(err, net.ErrClosed) and carries the cause (a *CloseError, a *ProtocolError,
// the I/O error …) for errors.As.
type closedError struct {
	cause error
	op    string // what the call returning it could not finish, if it says so
}

func (e *closedError) Error() string { return errPrefix + e.text() }

func (e *closedError) text() string {
	s := "connection closed"
	switch {
	case e.cause == nil && e.op == "":
		s = "use of closed connection"
	case e.cause != nil:
		s += ": " + errorText(e.cause)
	}
	if e.op != "" {
		s = e.op + ": " + s
	}
	return s
}

func (e *closedError) Unwrap() []error {
	if e.cause == nil {
		return []error{net.ErrClosed}
	}
	return []error{net.ErrClosed, e.cause}
}

// errPrefix begins the message of every error that leaves the package, once. The errors
// the package makes for its own use carry none; an exported error type adds it in Error
// and gives the text after it to the errors that wrap it, through errorText.
const errPrefix = "websocket: "

// errorText returns what err says, without errPrefix when it is one of the package's own
// error types.
func errorText(err error) string {
	if t, ok := err.(interface{ text() string }); ok {
		return t.text()
	}
	return err.Error()
}

// causeError is an error of the package's own that says what failed, then why: the error
// it wraps, whose text follows without errPrefix.
type causeError struct {
	what, why error
}

func (e *causeError) Error() string   { return e.what.Error() + ": " + errorText(e.why) }
func (e *causeError) Unwrap() []error { return []error{e.what, e.why} }
