package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MessageType is the type of a data message (RFC 6455 §5.6).
type MessageType int

// The two data message types.
const (
	MessageText   MessageType = 1 // UTF-8 text (opcode 0x1)
	MessageBinary MessageType = 2 // arbitrary bytes (opcode 0x2)
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// defaultReadLimit is the largest message a Conn accepts until SetReadLimit says otherwise.
const defaultReadLimit = 1 << 20

// Conn is one WebSocket connection, made by Accept or Dial.
//
// Any number of goroutines may write (Write, Writer, Ping, Close) at once: messages are
// sent whole, one after another, and control frames may go out between the frames of a
// message being streamed. Reading is done by one goroutine at a time; a second one waits.
type Conn struct {
	nc          net.Conn
	rb          readBuffer
	subprotocol string
	client      bool // masks the frames it sends and expects unmasked ones (RFC 6455 §5.1)
	tlsWrites   bool // nc is a *tls.Conn, whose writes cannot resume after a timeout

	// permessage-deflate (RFC 7692), when the handshake negotiated it.
	deflate    bool
	windowBits int8 // the largest window our compressor may use: 8–15

	co *coalescer // write coalescing, when asked for

	readLimit    atomic.Int64
	closeTimeout time.Duration

	// Reading. Everything below readLock is owned by the goroutine holding it.
	readLock mutex
	rwatch   ctxWatch
	rd       readState

	// Writing. msgLock keeps messages whole; frameLock keeps frames whole.
	msgLock   mutex
	wbuf      *[maxHeaderSize + writeBufferSize]byte // data frames are built here; owned by the msgLock holder, pooled
	frameLock mutex
	wwatch    ctxWatch            // owned by the frameLock holder
	hbuf      [maxHeaderSize]byte // the header of a large data frame; owned by the frameLock holder
	closeSent bool                // guarded by frameLock
	vec       *writeVector        // writev's slices, made by the first writev; owned by the frameLock holder
	wmsg      *messageWriter      // Write's writer of a compressed message, made by the first; owned by the msgLock holder
	sq        sendState           // the messages Send queued, and their bound

	// Closing.
	closeOnce sync.Once
	down      atomic.Bool   // set once closing begins, before closed is closed: a cheaper check than a receive
	closed    chan struct{} // closed once the TCP connection is closed
	errMu     sync.Mutex
	err       error // why the Conn closed, set before closed is

	// A pong that waits for the frame lock (answerPing).
	pongMu      sync.Mutex
	pong        *[maxControlPayload]byte // guarded by pongMu
	pongWaiting atomic.Bool
	pongLen     uint8 // guarded by pongMu; beside pongWaiting, where it costs no padding

	pingMu    sync.Mutex
	pings     map[string]chan struct{}
	pingCount atomic.Uint64

	group   *Group                  // the Group Accept added it to, which it leaves when it closes
	parking atomic.Pointer[parking] // Park's state, once the Conn has been parked
}

func newConn(nc net.Conn, br *bufio.Reader, client bool, subprotocol string) *Conn {
	c := &Conn{
		nc:           nc,
		client:       client,
		subprotocol:  subprotocol,
		closeTimeout: defaultCloseTimeout,
		closed:       make(chan struct{}),
	}
	var prefix []byte
	if br != nil {
		// What the handshake read ahead belongs to the WebSocket stream. It is copied, so
		// that br is not needed after newConn returns.
		prefix, _ = br.Peek(br.Buffered())
		if len(prefix) > readBufferSize {
			// Only a Hijacker with a larger buffer than net/http's reads this far ahead.
			nc = &prefixConn{Conn: nc, r: io.MultiReader(bytes.NewReader(bytes.Clone(prefix)), nc)}
			prefix = nil
		}
	}
	_, c.tlsWrites = c.nc.(*tls.Conn)
	c.rb = newReadBuffer(nc, prefix)
	c.rwatch.nc = nc
	c.wwatch.nc, c.wwatch.write = nc, true
	c.readLimit.Store(defaultReadLimit)
	return c
}

// Subprotocol returns the subprotocol agreed on in the opening handshake, or "" if none.
func (c *Conn) Subprotocol() string { return c.subprotocol }

// SetReadLimit sets the largest message, in bytes, that the Conn accepts; a larger one
// closes the connection with status 1009 and its read returns an error matching
// ErrMessageTooBig. The default is 1 MiB. n <= 0 removes the limit. Either way, Read's
// memory grows with the bytes that arrive, not with the length a frame announces. It is
// safe to call at any time.
func (c *Conn) SetReadLimit(n int64) { c.readLimit.Store(n) }

// Ping sends a ping and blocks until the matching pong arrives, ctx is done or the Conn
// closes. The pong is only seen while some goroutine is reading (Read or a message
// reader): Ping does not read by itself. It is safe for concurrent use.
func (c *Conn) Ping(ctx context.Context) error {
	var payload [8]byte
	id := c.pingCount.Add(1)
	for i := range payload {
		payload[i] = byte(id >> (56 - 8*i))
	}
	key := string(payload[:])
	done := make(chan struct{})
	c.pingMu.Lock()
	if c.pings == nil {
		c.pings = make(map[string]chan struct{})
	}
	c.pings[key] = done
	c.pingMu.Unlock()
	defer func() {
		c.pingMu.Lock()
		delete(c.pings, key)
		c.pingMu.Unlock()
	}()

	if err := c.writeControl(ctx, opPing, payload[:]); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return c.closedErr()
	}
}

// gotPong wakes the Ping waiting for payload. Unsolicited pongs are ignored (§5.5.3).
func (c *Conn) gotPong(payload []byte) {
	c.pingMu.Lock()
	if done, ok := c.pings[string(payload)]; ok {
		close(done)
		delete(c.pings, string(payload))
	}
	c.pingMu.Unlock()
}

// lock takes l unless ctx is done or the Conn is closed. Every exported call that takes a
// context comes through here first, so a context done on entry fails the call even when
// the lock is free and the I/O would not block.
func (c *Conn) lock(ctx context.Context, l *mutex) error {
	// The common case first: a free lock, an open Conn, a live context.
	if l.tryLock() {
		if !c.isClosed() && ctx.Err() == nil {
			return nil
		}
		l.unlock()
	}
	if c.isClosed() {
		return c.closedErr()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !l.lock(ctx, c.closed) {
		if c.isClosed() {
			return c.closedErr()
		}
		return ctx.Err()
	}
	// Once closed, nothing more is read or written, not even what is buffered.
	if c.isClosed() {
		l.unlock()
		return c.closedErr()
	}
	return nil
}

// closedErr returns the error every call gives once the Conn is closed.
func (c *Conn) closedErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return &closedError{cause: c.err}
}

// isClosed reports whether the TCP connection has been closed.
func (c *Conn) isClosed() bool { return c.down.Load() }

// teardown closes the TCP connection, once, recording cause as the reason. It reports
// whether this call did it.
func (c *Conn) teardown(cause error) bool {
	done := false
	c.closeOnce.Do(func() {
		done = true
		c.errMu.Lock()
		c.err = cause
		c.errMu.Unlock()
		// down is set first, so that a Park at the same time either sees it and arms
		// nothing, or has armed the socket already, which unpark then disarms before the
		// socket closes and its number can be reused.
		c.down.Store(true)
		c.unpark()
		c.nc.Close()
		close(c.closed)
		c.rwatch.close()
		c.wwatch.close()
		c.rb.ka.stop()
		c.group.remove(c)
	})
	return done
}

// fail ends the connection because of err: when code is not zero it first tries to tell
// the peer with a close frame (RFC 6455 §7.1.7). It returns the error the caller should
// report.
func (c *Conn) fail(err error, code StatusCode) error {
	if c.isClosed() {
		return c.closedErr()
	}
	if code != 0 {
		reason := ""
		var pe *ProtocolError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		if len(reason) > maxCloseReason {
			reason = reason[:maxCloseReason]
			for !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		if c.sendClose(code, reason) == nil {
			c.linger()
		}
	}
	c.teardown(err)
	return c.closedErr()
}

// linger lets the close frame just sent reach a peer that is still sending: closing a TCP
// connection with unread bytes resets it, and a reset can destroy the close frame before
// the peer reads it. So it ends only our direction, then reads and drops what arrives
// until the peer closes too, for at most the close timeout. The caller holds readLock.
func (c *Conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.rwatch.deadline(time.Now().Add(c.closeTimeout))
	c.drain()
}

// drain reads and drops everything until the connection ends or its read deadline
// passes. The caller holds readLock.
func (c *Conn) drain() {
	for c.rb.discard(c.rb.buffered()); c.rb.fill() == nil; {
		c.rb.discard(c.rb.buffered())
	}
}

// LocalAddr returns the local network address of the connection. It is safe to call at
// any time, also after the Conn is closed.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address: the TCP peer, which behind a proxy is
// the proxy, not the client. It is safe to call at any time, also after the Conn is
// closed.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
