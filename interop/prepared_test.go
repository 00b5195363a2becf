package interop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hybi/websocket"
	"github.com/stretchr/testify/assert"
)

// TestPreparedWithWSClient has our server echo to the ws client through prepared
// messages, each made for the one connection, sent by Send and WritePrepared in turn,
// under every permessage-deflate configuration ws offers (windows of 8 to 15 bits,
// context takeover or not): the client checks every echo byte for byte.
func TestPreparedWithWSClient(t *testing.T) {
	needNode(t)
	specs := exchange()
	for _, cfg := range wsClientConfigs {
		for _, mode := range modes {
			t.Run(cfg.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
				defer cancel()
				ended := make(chan error, 1)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: mode, MaxBuffered: 64 << 20})
					if err != nil {
						ended <- err
						return
					}
					defer c.CloseNow()
					c.SetReadLimit(readLimit)
					for i := 0; ; i++ {
						typ, msg, err := c.Read(ctx)
						if err != nil {
							ended <- err
							return
						}
						m, err := websocket.NewPreparedMessage(typ, msg)
						if err == nil && i%2 == 0 {
							err = c.Send(m)
						} else if err == nil {
							err = c.WritePrepared(ctx, m)
						}
						if err != nil {
							ended <- err
							return
						}
					}
				}))
				defer srv.Close()

				rep := runClient(ctx, t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", cfg, specs, "client")
				assert.Empty(t, rep.Errors, "ws client errors")
				assert.Empty(t, rep.Mismatches, "echoes checked by the ws client")
				assert.Equal(t, len(specs), rep.Echoed, "echoes the ws client got")
				assert.Equal(t, ourServerAnswer(cfg, mode), canonicalExtensions(rep.Header))
				select {
				case err := <-ended:
					assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "%v", err)
				case <-ctx.Done():
					t.Fatal("our server did not end")
				}
			})
		}
	}
}
