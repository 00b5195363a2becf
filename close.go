package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// StatusCode is the status code of a close frame (RFC 6455 §7.4).
type StatusCode int

// Status codes defined by RFC 6455 §7.4.1 and the IANA registry. 1005, 1006 and 1015 are
// never sent on the wire: they only name what happened.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusReceived        StatusCode = 1005
	StatusAbnormalClosure         StatusCode = 1006
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusReceived:        "no status received",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid frame payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake",
}

func (c StatusCode) String() string {
	if s, ok := statusNames[c]; ok {
		return s
	}
	switch {
	case c >= 3000 && c <= 3999:
		return "registered status " + strconv.Itoa(int(c))
	case c >= 4000 && c <= 4999:
		return "private status " + strconv.Itoa(int(c))
	}
	return "status " + strconv.Itoa(int(c))
}

// validOnWire reports whether a close frame may carry code (RFC 6455 §7.4.1–§7.4.2):
// the defined codes other than those reserved for reporting, and 3000–4999.
func (c StatusCode) validOnWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// maxCloseReason is the longest reason a close frame can carry beside its 2-byte code.
const maxCloseReason = maxControlPayload - 2

// defaultCloseTimeout bounds each wait of the closing handshake: for the peer's close
// frame after ours, and on a client for the server to close TCP (RFC 6455 §7.1.1).
const defaultCloseTimeout = 5 * time.Second

var (
	errReasonTooLong = errors.New("close reason longer than 123 bytes")
	errReasonUTF8    = errors.New("close reason is not valid UTF-8")
)

// parseClosePayload decodes a received close frame payload. An empty payload means the
// peer gave no code: it is reported as 1005. It returns a *ProtocolError for a payload the
// peer must not send.
func parseClosePayload(p []byte) (*CloseError, error) {
	switch {
	case len(p) == 0:
		return &CloseError{Code: StatusNoStatusReceived}, nil
	case len(p) == 1:
		// RFC 6455 §5.5.1: a body starts with a 2-byte code.
		return nil, protocolError(StatusProtocolError, "close frame with a 1-byte payload")
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !code.validOnWire() {
		// RFC 6455 §7.4: reserved and unassigned codes are a protocol error.
		return nil, protocolError(StatusProtocolError, fmt.Sprintf("close frame with invalid status code %d", int(code)))
	}
	reason := p[2:]
	if !utf8.Valid(reason) {
		// RFC 6455 §5.5.1, §8.1: the reason is UTF-8.
		return nil, protocolError(StatusInvalidFramePayloadData, "close reason is not valid UTF-8")
	}
	return &CloseError{Code: code, Reason: string(reason)}, nil
}

// appendClosePayload appends the payload of a close frame with code and reason. A code of
// 1005 with no reason gives an empty payload. It checks what Close's caller controls.
func appendClosePayload(b []byte, code StatusCode, reason string) ([]byte, error) {
	if code == StatusNoStatusReceived && reason == "" {
		return b, nil
	}
	if !code.validOnWire() {
		return b, fmt.Errorf("status code %d cannot be sent in a close frame", int(code))
	}
	if len(reason) > maxCloseReason {
		return b, errReasonTooLong
	}
	if !utf8.ValidString(reason) {
		return b, errReasonUTF8
	}
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...), nil
}

var errCloseTimeout = errors.New("peer did not answer the close frame in time")

// Close runs the closing handshake (RFC 6455 §7.1.2): it sends what Send queued, in
// order, then a close frame with code and reason, waits for the peer's close frame while
// discarding any data still arriving, and closes the TCP connection. Each wait is bounded
// by the close timeout, 5 seconds, the wait for the queued messages to leave included:
// what has not left by then is dropped. Send refuses messages from the moment Close
// begins. It is safe to call from any goroutine, also while another one is reading: that
// reader then receives the peer's close frame and returns its *CloseError.
//
// The reason must be valid UTF-8 of at most 123 bytes, and code one that may be sent
// (1000–1003, 1007–1014, 3000–4999), or StatusNoStatusReceived (1005) with no reason,
// which sends a close frame without a body (RFC 6455 §5.5.1 allows one); otherwise Close
// returns an error and sends nothing.
// Close returns nil once the peer's close frame has arrived, and an error satisfying
// errors.Is(err, net.ErrClosed) if the Conn was closed already.
func (c *Conn) Close(code StatusCode, reason string) error {
	var pb [maxControlPayload]byte
	payload, err := appendClosePayload(pb[:0], code, reason)
	if err != nil {
		return fmt.Errorf("%s%w", errPrefix, err)
	}
	c.sendQueued()
	if err := c.sendClosePayload(payload); err != nil {
		if err == errCloseSent {
			// Another Close, or the reader answering the peer's close, runs the closing
			// handshake, and ends it within its timeouts: the Conn is closed once it has.
			t := time.NewTimer(3 * c.closeTimeout)
			select {
			case <-c.closed:
			case <-t.C:
			}
			t.Stop()
			return c.closedErr()
		}
		if c.isClosed() {
			return c.closedErr()
		}
		c.teardown(err)
		return c.closedErr()
	}

	// Wait for the peer's close frame: read it ourselves unless some other goroutine is
	// reading already, in which case it tears the connection down when the frame comes.
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	switch {
	case c.readLock.lock(ctx, c.closed):
		c.rwatch.deadline(time.Now().Add(c.closeTimeout))
		var err error
		for err == nil {
			_, err = c.beginMessage()
		}
		c.readResult(context.Background(), err)
		c.readLock.unlock()
	case !c.isClosed():
		c.teardown(errCloseTimeout)
	}
	c.errMu.Lock()
	defer c.errMu.Unlock()
	var ce *CloseError
	if errors.As(c.err, &ce) {
		return nil
	}
	return &closedError{cause: c.err, op: "close handshake did not complete"}
}

// CloseNow closes the TCP connection at once, without a closing handshake; it never
// waits. Blocked reads and writes return, and what Send queued is dropped. It returns an
// error satisfying errors.Is(err, net.ErrClosed) if the Conn was closed already.
func (c *Conn) CloseNow() error {
	if c.co != nil {
		// Messages that write coalescing holds leave if they can without waiting.
		c.sendHeldNow()
	}
	if !c.teardown(nil) {
		return c.closedErr()
	}
	return nil
}

// sendClose sends a close frame with code and reason, as sendClosePayload does, for the
// package's own closes, whose code and reason are valid.
func (c *Conn) sendClose(code StatusCode, reason string) error {
	var pb [maxControlPayload]byte
	payload, err := appendClosePayload(pb[:0], code, reason)
	if err != nil {
		return err
	}
	c.refuseSends()
	return c.sendClosePayload(payload)
}

// receivedClose handles the peer's close frame: it answers it, unless our own close frame
// went out first, and tears the connection down. It returns the *CloseError for the
// reader.
func (c *Conn) receivedClose(payload []byte) error {
	ce, err := parseClosePayload(payload)
	if err != nil {
		return err
	}
	// RFC 6455 §5.5.1: reply with a close frame, echoing the code we received.
	if err := c.sendClose(ce.Code, ""); err != nil && err != errCloseSent {
		c.teardown(ce)
		return ce
	}
	if c.client {
		// RFC 6455 §7.1.1: the server closes TCP first. Give it the close timeout to do so.
		c.rwatch.deadline(time.Now().Add(c.closeTimeout))
		c.drain()
	}
	c.teardown(ce)
	return ce
}
