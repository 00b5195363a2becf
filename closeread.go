package websocket

import "context"

// CloseRead is for a program that only writes: it starts a goroutine that reads the Conn
// so that control frames are still handled. Pings are answered, Ping and keepalive see
// their pongs, and the peer's close frame is answered and closes the Conn, which makes
// writes fail. A data message from the peer is not what such a program expects: the Conn
// is closed with status 1008 (policy violation) without reading it.
//
// The returned context ends when the goroutine stops: when the Conn closes, however it
// closes, or when ctx ends, which stops the reading but leaves the Conn open (its pings
// then go unanswered). context.Cause of the returned context tells which: an error
// matching net.ErrClosed that carries the Conn's cause (the peer's *CloseError, the
// *ProtocolError for a data message …), or ctx's cause.
//
// Until then, the goroutine holds the Conn's reading: Read and Reader wait for it as for
// any other reader. CloseRead does not block; call it once. The goroutine costs a few
// KiB of stack while the connection is open.
func (c *Conn) CloseRead(ctx context.Context) context.Context {
	rctx, cancel := context.WithCancelCause(ctx)
	go func() { cancel(c.readControl(ctx)) }()
	return rctx
}

// readControl reads control frames until the Conn closes, ctx ends or a data message
// begins, which fails the Conn with 1008.
func (c *Conn) readControl(ctx context.Context) error {
	if err := c.lock(ctx, &c.readLock); err != nil {
		return err
	}
	defer c.readLock.unlock()
	c.rwatch.start(ctx)
	// beginMessage handles every control frame before the next data frame.
	if _, err := c.beginMessage(); err != nil {
		return c.readResult(ctx, err)
	}
	// RFC 6455 §7.4.1: 1008 for a message that violates the endpoint's policy.
	return c.fail(protocolError(StatusPolicyViolation, "data message received after CloseRead"), StatusPolicyViolation)
}
