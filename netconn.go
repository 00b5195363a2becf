package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// NetConn returns a net.Conn that carries a byte stream over c, for protocols that expect
// one (SSH, a database's wire protocol, gRPC over a custom dialer). Each Write sends its
// bytes as one message of type typ. Reads return the payloads of the messages received
// one after another, as one stream: a Read may return part of a message, and the next
// Read goes on with the rest; messages are streamed as they arrive, never held whole. A
// message of the other type fails the connection with status 1003 (unsupported data).
// With MessageText, each Write must be valid UTF-8 on its own, since every message must.
//
// Deadlines are honoured as net.Conn asks: a call whose deadline passes returns an error
// that satisfies errors.Is(err, os.ErrDeadlineExceeded) and whose Timeout method reports
// true. A deadline that passes before any byte of a frame was read or written costs
// nothing more: clear or extend it, and the stream goes on, even in the middle of a
// message. One that passes in the middle of a frame leaves the stream unusable, so c is
// closed (without a close frame), and later calls return an error satisfying
// errors.Is(err, net.ErrClosed); no byte is ever skipped or read twice.
//
// Close runs the closing handshake with status 1000 (see Conn.Close), which a blocked
// Read sees as net.ErrClosed. When the peer closes with 1000, or with no status code, as
// browsers do by default, reads return io.EOF once the messages before it are read; any
// other close, such as 1001 from a server shutting down, is an error in which
// CloseStatus finds the peer's code, since the stream may have been cut short.
//
// The read limit set on c still bounds each message; since the stream does not hold a
// message whole, c.SetReadLimit(0) removes it at no memory cost. Reads may be called
// from several goroutines, which take turns; so may writes, each a message of its own.
// Nothing but the returned net.Conn should read from c, and nothing else should write
// to it mid-stream. The adapter adds about 1.4 KiB to c once it has read and written
// (a context per direction, which the Conn watches), and no goroutine; a deadline in the
// future holds a timer until it passes or is changed.
func NetConn(c *Conn, typ MessageType) net.Conn {
	return &netConn{c: c, typ: typ}
}

var (
	errReadDeadline  = &deadlineError{op: "read"}
	errWriteDeadline = &deadlineError{op: "write"}
	errTextNotUTF8   = errors.New("websocket: write to a text stream is not valid UTF-8")
)

// deadlineError is what a read or write returns once its deadline has passed.
type deadlineError struct{ op string }

func (e *deadlineError) Error() string   { return "websocket: " + e.op + " deadline exceeded" }
func (e *deadlineError) Timeout() bool   { return true }
func (e *deadlineError) Temporary() bool { return true }
func (e *deadlineError) Unwrap() error   { return os.ErrDeadlineExceeded }

type netConn struct {
	c   *Conn
	typ MessageType

	readMu sync.Mutex     // one Read at a time: the message being read is shared
	msg    *messageReader // the message being read; nil between messages
	read   deadline
	write  deadline
	closed atomic.Bool // Close was called
}

func (nc *netConn) Read(p []byte) (int, error) {
	nc.readMu.Lock()
	defer nc.readMu.Unlock()
	if nc.closed.Load() {
		return 0, &closedError{}
	}
	if nc.typ != MessageText && nc.typ != MessageBinary {
		return 0, errBadMessageType
	}
	ctx := nc.read.context()
	if ctx.Err() != nil {
		return 0, errReadDeadline
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if nc.msg == nil {
			typ, r, err := nc.c.Reader(ctx)
			if err != nil {
				return 0, nc.readErr(ctx, err)
			}
			if typ != nc.typ {
				return 0, nc.wrongType(typ)
			}
			nc.msg = r.(*messageReader)
		}
		// The message reader goes on under the deadline's context of this call: a
		// deadline that passed between two frames, then was cleared or moved ahead, has
		// a new context, and the message goes on.
		nc.msg.ctx = ctx
		n, err := nc.msg.Read(p)
		if err == io.EOF {
			nc.msg = nil // an empty message gives nothing to return: read on
			err = nil
		}
		if err != nil {
			return n, nc.readErr(ctx, err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// readErr turns what the Conn returned into what a net.Conn reader expects.
func (nc *netConn) readErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		// Only the deadline cancels ctx.
		return errReadDeadline
	case nc.closed.Load():
		return &closedError{}
	}
	switch CloseStatus(err) {
	case StatusNormalClosure, StatusNoStatusReceived:
		return io.EOF
	}
	return err
}

// wrongType fails the Conn over a message of the type the stream does not carry.
func (nc *netConn) wrongType(typ MessageType) error {
	pe := protocolError(StatusUnsupportedData, typ.String()+" message on a stream of "+nc.typ.String()+" messages")
	nc.c.Close(pe.Code, pe.Reason)
	return pe
}

func (nc *netConn) Write(p []byte) (int, error) {
	if nc.closed.Load() {
		return 0, &closedError{}
	}
	ctx := nc.write.context()
	if ctx.Err() != nil {
		return 0, errWriteDeadline
	}
	if len(p) == 0 {
		return 0, nil
	}
	if nc.typ == MessageText && !utf8.Valid(p) {
		return 0, errTextNotUTF8
	}
	if err := nc.c.Write(ctx, nc.typ, p); err != nil {
		switch {
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			return 0, errWriteDeadline
		case nc.closed.Load():
			return 0, &closedError{}
		}
		return 0, err
	}
	return len(p), nil
}

// Close runs the closing handshake with status 1000. It returns nil also when the peer
// closed first, and an error satisfying errors.Is(err, net.ErrClosed) when called again.
func (nc *netConn) Close() error {
	if nc.closed.Swap(true) {
		return &closedError{}
	}
	nc.read.stop()
	nc.write.stop()
	err := nc.c.Close(StatusNormalClosure, "")
	var ce *CloseError
	if errors.As(err, &ce) {
		return nil // the handshake took place, begun by the peer
	}
	return err
}

func (nc *netConn) LocalAddr() net.Addr  { return nc.c.LocalAddr() }
func (nc *netConn) RemoteAddr() net.Addr { return nc.c.RemoteAddr() }

func (nc *netConn) SetDeadline(t time.Time) error {
	if nc.closed.Load() {
		return &closedError{}
	}
	nc.read.set(t)
	nc.write.set(t)
	return nil
}

func (nc *netConn) SetReadDeadline(t time.Time) error {
	if nc.closed.Load() {
		return &closedError{}
	}
	nc.read.set(t)
	return nil
}

func (nc *netConn) SetWriteDeadline(t time.Time) error {
	if nc.closed.Load() {
		return &closedError{}
	}
	nc.write.set(t)
	return nil
}

// deadline is one direction's deadline, as a context that the direction's calls run
// under and that is cancelled when the deadline passes. The context is made once and
// kept from call to call, so that the Conn watches it once rather than per call; once
// cancelled, it is replaced by the next call made after the deadline was cleared or
// moved ahead.
type deadline struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	when   time.Time   // zero for none
	timer  *time.Timer // made the first time a deadline is set in the future
}

// context returns the context of a call starting now.
func (d *deadline) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	passed := d.passed()
	if d.ctx == nil || (d.ctx.Err() != nil && !passed) {
		d.ctx, d.cancel = context.WithCancel(context.Background())
	}
	if passed {
		d.cancel()
	}
	return d.ctx
}

func (d *deadline) passed() bool { return !d.when.IsZero() && !time.Now().Before(d.when) }

// set moves the deadline to t; the zero time removes it. A call blocked under the
// current context returns if t has passed, and waits on until t otherwise.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	if d.timer != nil {
		d.timer.Stop()
	}
	switch wait := time.Until(t); {
	case t.IsZero():
	case wait <= 0:
		if d.cancel != nil {
			d.cancel()
		}
	case d.timer == nil:
		d.timer = time.AfterFunc(wait, d.expire)
	default:
		d.timer.Reset(wait)
	}
}

// expire cancels the current context if the deadline has passed. A timer that fires
// after set moved the deadline further finds it has not.
func (d *deadline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.passed() && d.cancel != nil {
		d.cancel()
	}
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}
