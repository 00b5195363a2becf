package interop

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hybi/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCloseFromEachSide closes with 1000 after a compressed exchange, from each of the
// four ends, and checks that the other end sees 1000 and the reason.
func TestCloseFromEachSide(t *testing.T) {
	needNode(t)
	specs := []msgSpec{{Kind: "text", Size: 65536, Seed: 11}, {Kind: "binary", Size: 1000, Seed: 12}}
	for i := range 20 {
		specs = append(specs, msgSpec{Kind: "json", Seed: uint32(4000 + i)})
	}
	msgs := buildAll(specs)
	cfg := wsConfig{"default", &deflateOptions{}}
	const mode = websocket.CompressionContextTakeover

	t.Run("our server closes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		url, results := startEcho(t, mode, specs, msgs, true)
		rep := runClient(ctx, t, url, cfg, specs, "server")
		res := receive(ctx, t, results)

		checkServerExchange(t, rep, res, len(specs))
		assert.NoError(t, res.closeErr, "our server's Close")
		assert.Equal(t, "done", rep.CloseReason)
	})

	t.Run("ws client closes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		url, results := startEcho(t, mode, specs, msgs, false)
		rep := runClient(ctx, t, url, cfg, specs, "client")
		res := receive(ctx, t, results)

		checkServerExchange(t, rep, res, len(specs))
		var ce *websocket.CloseError
		require.True(t, errors.As(res.err, &ce), "our server's last read: %v", res.err)
		assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
		assert.Equal(t, "done", ce.Reason)
	})

	srv := startServer(t, cfg)

	t.Run("our client closes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		url := fmt.Sprintf("ws://127.0.0.1:%d/?id=ours", srv.port)
		c, _ := dialExchange(ctx, t, url, mode, specs, msgs)
		require.NotNil(t, c)
		assert.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
		_, closed, errs := srv.connection(ctx, t, "ours")

		assert.Empty(t, errs)
		assert.Equal(t, 1000, closed.Code)
		assert.Equal(t, "done", closed.Reason)
	})

	t.Run("ws server closes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		url := fmt.Sprintf("ws://127.0.0.1:%d/?id=theirs&closeAfter=%d", srv.port, len(specs))
		c, _ := dialExchange(ctx, t, url, mode, specs, msgs)
		require.NotNil(t, c)
		defer c.CloseNow()
		_, _, err := c.Read(ctx)
		var ce *websocket.CloseError
		require.True(t, errors.As(err, &ce), "our client's read after the exchange: %v", err)
		assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
		assert.Equal(t, "done", ce.Reason)
		_, closed, errs := srv.connection(ctx, t, "theirs")

		assert.Empty(t, errs)
		assert.Equal(t, 1000, closed.Code, "code ws got back")
	})
}
