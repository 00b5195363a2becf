package websocket

import (
	"context"
	"net"
)

// The socket writer: where the write side meets the connection, as readbuf.go is where
// the read side does. write.go builds frames and keeps them whole (msgLock, frameLock);
// with write coalescing, coalesce.go may hold small frames back and send them ahead of
// the next write (writeOut, writeOutVec); this file writes to the connection and says
// what a write that failed part way means for the stream. A Conn without coalescing goes
// from write.go to here directly, and so do its pongs and control frames.
//
// Everything here belongs to the frameLock holder, which has pointed the write deadline
// at the context the write answers to (c.wwatch) before it writes. CloseNow's write, which
// may not wait for room in the socket, is writeNoWait (sockwrite_unix.go).

// writeSocket writes b with one write, a system call on TCP unless the socket's buffer
// fills. The caller holds frameLock.
func (c *Conn) writeSocket(b []byte) (int64, error) {
	n, err := c.nc.Write(b)
	return int64(n), err
}

// writev writes the non-empty ones of a, b and d, in one system call where the
// connection allows it (writev on TCP and Unix sockets). The caller holds frameLock. The
// slices live in a writeVector the Conn keeps, so that only its first writev allocates.
func (c *Conn) writev(a, b, d []byte) (int64, error) {
	v := c.vec
	if v == nil {
		v = new(writeVector)
		c.vec = v
	}
	v.bufs = v.vec[:0]
	for _, x := range [...][]byte{a, b, d} {
		if len(x) > 0 {
			v.bufs = append(v.bufs, x)
		}
	}
	n, err := v.bufs.WriteTo(c.nc)
	v.vec = [3][]byte{} // keep no caller's slice
	return n, err
}

// writeVector holds writev's slices: net.Buffers.WriteTo would move a local one to the
// heap on every call.
type writeVector struct {
	vec  [3][]byte
	bufs net.Buffers // the part of vec in use
}

// writeResult turns what a frame write produced into what the caller sees. A write that
// ctx stopped before any byte left costs only ctx.Err(); a frame cut in half leaves the
// stream unusable, so the Conn is closed.
func (c *Conn) writeResult(ctx context.Context, wrote int64, err error) error {
	if err == nil {
		return nil // inlined, for the common case
	}
	return c.writeFailed(ctx, wrote, err)
}

// writeFailed is writeResult for a write that failed.
func (c *Conn) writeFailed(ctx context.Context, wrote int64, err error) error {
	if c.isClosed() {
		return c.closedErr()
	}
	if cut(ctx) {
		if wrote == 0 && !c.tlsWrites {
			return ctx.Err()
		}
		// crypto/tls fails every write after one that timed out, even with nothing
		// written, so over TLS a write cut short ends the Conn like a frame cut in half.
		err = ctx.Err()
	}
	c.teardown(err)
	return c.closedErr()
}
