package websocket

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCloseReadWriteOnly checks that a Conn that only writes, with CloseRead, answers
// pings, sees the pongs of its own pings and the peer's close, over every transport.
func TestCloseReadWriteOnly(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		ctx := waitContext(t)
		done := server.CloseRead(ctx)

		clientRead := make(chan error, 1)
		go func() {
			for {
				if _, _, err := client.Read(ctx); err != nil {
					clientRead <- err
					return
				}
			}
		}()
		require.NoError(t, client.Ping(ctx), "the server did not answer the ping")
		require.NoError(t, server.Ping(ctx), "the server did not see the pong")
		require.NoError(t, server.Write(ctx, MessageText, []byte("news")))
		assert.False(t, contextDone(done))

		require.NoError(t, client.Close(StatusNormalClosure, "bye"), "the server did not answer the close frame")
		waitDone(t, done)
		cause := context.Cause(done)
		require.ErrorIs(t, cause, net.ErrClosed)
		assert.Equal(t, StatusNormalClosure, CloseStatus(cause))
		require.ErrorIs(t, server.Write(ctx, MessageText, []byte("late")), net.ErrClosed)
		require.ErrorIs(t, <-clientRead, net.ErrClosed)
	})
}

// TestCloseReadDataMessage checks that a data message after CloseRead closes the Conn
// with 1008, and that the Conn answers control frames until then.
func TestCloseReadDataMessage(t *testing.T) {
	for _, typ := range []opcode{opText, opBinary} {
		t.Run(typ.String(), func(t *testing.T) {
			p := newRawPeer(t, false)
			done := p.conn.CloseRead(context.Background())
			p.send(frame{fin: true, op: opPing, payload: []byte("hi")})
			f := p.next()
			require.Equal(t, opPong, f.op)
			assert.Equal(t, "hi", string(f.payload))

			p.send(frame{fin: false, op: typ, payload: []byte("unexpected")})
			p.expectClose(StatusPolicyViolation)
			waitDone(t, done)
			cause := context.Cause(done)
			require.ErrorIs(t, cause, net.ErrClosed)
			assert.Equal(t, StatusPolicyViolation, protocolCode(cause))
		})
	}
}

// TestCloseReadContext checks that ending CloseRead's context stops the reading and
// leaves the Conn open for a reader of its own.
func TestCloseReadContext(t *testing.T) {
	p := newRawPeer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := p.conn.CloseRead(ctx)
	cancel()
	waitDone(t, done)
	require.ErrorIs(t, context.Cause(done), context.Canceled)
	require.False(t, p.conn.isClosed())

	p.send(frame{fin: true, op: opText, payload: []byte("read after")})
	typ, msg, err := p.conn.Read(waitContext(t))
	require.NoError(t, err)
	assert.Equal(t, MessageText, typ)
	assert.Equal(t, "read after", string(msg))
}

// TestCloseReadClosed checks that CloseRead on a closed Conn gives a context that is
// done.
func TestCloseReadClosed(t *testing.T) {
	p := newRawPeer(t, false)
	require.NoError(t, p.conn.CloseNow())
	done := p.conn.CloseRead(context.Background())
	waitDone(t, done)
	require.ErrorIs(t, context.Cause(done), net.ErrClosed)
}

// waitDone waits for ctx to be done, failing the test if it is not within 5 seconds.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		require.FailNow(t, "context not done within 5s")
	}
}

// TestCloseReadThenClose checks that Close on a Conn whose reading CloseRead holds
// completes the closing handshake: CloseRead's goroutine receives the peer's answer.
func TestCloseReadThenClose(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		server, client := tr.pair(t, nil)
		done := server.CloseRead(context.Background())
		clientRead := make(chan error, 1)
		go func() {
			_, _, err := client.Read(context.Background())
			clientRead <- err
		}()
		require.NoError(t, server.Close(StatusGoingAway, "restart"))
		waitDone(t, done)
		assert.Equal(t, StatusGoingAway, CloseStatus(context.Cause(done)))
		assert.Equal(t, StatusGoingAway, CloseStatus(<-clientRead))
	})
}
