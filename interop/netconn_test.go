package interop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hybi/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNetConnWithWSServer streams bytes both ways through NetConn against the ws server,
// which echoes each message, with compression and without, whole and in three frames a
// message: what comes back is the stream sent, and Close ends with a normal closure.
func TestNetConnWithWSServer(t *testing.T) {
	needNode(t)
	for _, cfg := range []wsConfig{{"default", &deflateOptions{}}, {"off", nil}} {
		for _, fragments := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/fragments=%d", cfg.name, fragments), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
				defer cancel()
				srv := startServer(t, cfg)
				url := fmt.Sprintf("ws://127.0.0.1:%d/?id=netconn&fragments=%d", srv.port, fragments)
				c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Compression: websocket.CompressionNoContextTakeover})
				require.NoError(t, err)
				defer c.CloseNow()
				nc := websocket.NetConn(c, websocket.MessageBinary)
				// A bug that loses bytes fails the read at the deadline instead of hanging it.
				require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))

				stream := make([]byte, 1<<20)
				rng := rand.New(rand.NewPCG(1, 2))
				for i := range stream {
					stream[i] = byte(rng.IntN(16)) // compressible, but not trivially
				}
				copied := make(chan error, 1)
				go func() {
					// io.Copy writes 32 KiB at a time: each Write is a message.
					_, err := io.Copy(nc, io.NopCloser(bytes.NewReader(stream)))
					copied <- err
				}()
				got := make([]byte, len(stream))
				_, err = io.ReadFull(nc, got)
				require.NoError(t, err)
				require.NoError(t, <-copied)
				assert.True(t, bytes.Equal(stream, got), "the echoed stream differs")
				assert.NoError(t, nc.Close())
			})
		}
	}
}
