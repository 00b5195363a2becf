package interop

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/xconnect"
)

// TestServerWithXConnect checks that a server that offers HTTP/2 with extended CONNECT
// on (RFC 8441) still serves the ws client, which speaks HTTP/1.1 over TLS, through the
// same handler.
func TestServerWithXConnect(t *testing.T) {
	needNode(t)
	if xconnect.InChild(t) {
		return
	}
	// ws is to trust the test server's certificate.
	t.Setenv("NODE_TLS_REJECT_UNAUTHORIZED", "0")
	specs := exchange()
	msgs := buildAll(specs)
	type served struct {
		proto    string
		received int
		err      error
	}
	results := make(chan served, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := served{proto: r.Proto}
		defer func() { results <- res }()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: websocket.CompressionContextTakeover})
		if err != nil {
			res.err = err
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(readLimit)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				res.err = err
				return
			}
			if res.received < len(msgs) && sameBytes(msgs[res.received], msg) != "" {
				res.err = assert.AnError
			}
			res.received++
			if err := c.Write(r.Context(), typ, msg); err != nil {
				res.err = err
				return
			}
		}
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	require.Equal(t, []string{"h2", "http/1.1"}, srv.TLS.NextProtos)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	rep := runClient(ctx, t, "wss"+strings.TrimPrefix(srv.URL, "https")+"/", wsConfig{"default", &deflateOptions{}}, specs, "client")
	var res served
	select {
	case res = <-results:
	case <-ctx.Done():
		require.FailNow(t, "our server did not finish")
	}
	assert.Equal(t, "HTTP/1.1", res.proto)
	assert.Empty(t, rep.Errors, "ws client errors")
	assert.Empty(t, rep.Mismatches, "echoes checked by the ws client")
	assert.Equal(t, len(specs), rep.Echoed)
	assert.Equal(t, len(specs), res.received)
	assert.Equal(t, 1000, rep.CloseCode)
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(res.err), "%v", res.err)
	assert.Contains(t, rep.Header, "permessage-deflate")
}
