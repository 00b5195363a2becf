package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hybi/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests our client against the ws server (wsserver.js).

// wsServerConfigs mirror what the Autobahn testsuite's fuzzingserver accepts in its
// compression cases, answered by the ws server.
var wsServerConfigs = []wsConfig{
	{"default", &deflateOptions{}},
	// ws asks for 8 as given and inflates with a window of 256 bytes, which Node's zlib
	// enforces: our client must then refer no further back than that.
	{"client_max_window_bits=8", &deflateOptions{ClientMaxWindowBits: 8}},
	{"client_max_window_bits=9", &deflateOptions{ClientMaxWindowBits: 9}},
	{"client_max_window_bits=15", &deflateOptions{ClientMaxWindowBits: 15}},
	{"client_no_context_takeover", &deflateOptions{ClientNoContextTakeover: true}},
	{"server_no_context_takeover", &deflateOptions{ServerNoContextTakeover: true}},
	{"client_no_context_takeover,client_max_window_bits=9", &deflateOptions{ClientNoContextTakeover: true, ClientMaxWindowBits: 9}},
	{"off", nil},
}

// wsServerAnswer is the Sec-WebSocket-Extensions value the ws server answers our offer
// in mode with. ws accepts our offer with the parameters it carries
// (client_no_context_takeover always, server_no_context_takeover in
// CompressionNoContextTakeover; the bare client_max_window_bits it drops) and adds
// those its options ask for.
func wsServerAnswer(cfg wsConfig, mode websocket.CompressionMode) string {
	if cfg.deflate == nil || mode == websocket.CompressionDisabled {
		return ""
	}
	params := []string{"client_no_context_takeover"}
	if mode == websocket.CompressionNoContextTakeover || cfg.deflate.ServerNoContextTakeover {
		params = append(params, "server_no_context_takeover")
	}
	if b := cfg.deflate.ClientMaxWindowBits; b != 0 {
		params = append(params, fmt.Sprintf("client_max_window_bits=%d", b))
	}
	return deflateExtension(params...)
}

// connID names a connection to wsserver.js.
func connID(mode websocket.CompressionMode) string {
	return strings.ReplaceAll(mode.String(), " ", "-")
}

// dialExchange dials url in mode, sends msgs from one goroutine while it reads and
// checks their echoes in another, and returns the Conn, open, with the response's
// Sec-WebSocket-Extensions. It returns a nil Conn once a check has failed.
func dialExchange(ctx context.Context, t *testing.T, url string, mode websocket.CompressionMode, specs []msgSpec, msgs [][]byte) (*websocket.Conn, string) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Compression: mode})
	require.NoError(t, err)
	header := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
	c.SetReadLimit(readLimit)

	written := make(chan error, 1)
	go func() {
		for i, m := range msgs {
			if err := c.Write(ctx, specs[i].messageType(), m); err != nil {
				written <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
		written <- nil
	}()
	ok := true
	for i := range msgs {
		typ, got, err := c.Read(ctx)
		if !assert.NoError(t, err, "reading the echo of message %d", i) {
			ok = false
			break
		}
		ok = assert.Equal(t, specs[i].messageType(), typ, "message %d", i) && ok
		ok = assert.Empty(t, sameBytes(msgs[i], got), "message %d (%+v)", i, specs[i]) && ok
	}
	if !ok {
		c.CloseNow() // ends the writer too
		<-written
		return nil, header
	}
	assert.NoError(t, <-written)
	return c, header
}

func TestClientWithWSServer(t *testing.T) {
	needNode(t)
	specs := exchange()
	msgs := buildAll(specs)
	for _, cfg := range wsServerConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, cfg)
			for _, mode := range modes {
				t.Run(mode.String(), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
					defer cancel()
					id := connID(mode)
					url := fmt.Sprintf("ws://127.0.0.1:%d/?id=%s", srv.port, id)

					c, header := dialExchange(ctx, t, url, mode, specs, msgs)
					if c != nil {
						assert.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
					}
					open, closed, errs := srv.connection(ctx, t, id)

					want := wsServerAnswer(cfg, mode)
					assert.Equal(t, want, canonicalExtensions(header), "Sec-WebSocket-Extensions our client got")
					assert.Equal(t, header, open.Response, "what ws says it answered")
					assert.Equal(t, extensionNames(want), open.Extensions, "ws.extensions")
					assert.Empty(t, errs, "ws server errors")
					assert.Equal(t, len(specs), closed.Received, "messages the ws server got")
					assert.Equal(t, 1000, closed.Code, "close code the ws server got")
					assert.Equal(t, "done", closed.Reason)
					if want != "" {
						bits := cfg.deflate.ClientMaxWindowBits
						checkCompressed(t, closed.WireRead, msgs, specs, bits == 0 || bits == 15)
					}
				})
			}
		})
	}
}

func TestClientFragmentedFromWS(t *testing.T) {
	needNode(t)
	var specs []msgSpec
	for i, n := range []int{0, 1, 2, 125, 1000, 65536, 131072} {
		specs = append(specs,
			msgSpec{Kind: "text", Size: n, Seed: uint32(100 + 2*i)},
			msgSpec{Kind: "binary", Size: n, Seed: uint32(101 + 2*i)})
	}
	for i := range 20 {
		specs = append(specs, msgSpec{Kind: "json", Seed: uint32(3000 + i)})
	}
	msgs := buildAll(specs)
	cfg := wsConfig{"default", &deflateOptions{}}
	srv := startServer(t, cfg)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			id := connID(mode)
			// The server echoes each message in 3 frames, some of them empty.
			url := fmt.Sprintf("ws://127.0.0.1:%d/?id=%s&fragments=3", srv.port, id)

			c, header := dialExchange(ctx, t, url, mode, specs, msgs)
			if c != nil {
				assert.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
			}
			_, closed, errs := srv.connection(ctx, t, id)

			assert.Equal(t, wsServerAnswer(cfg, mode), canonicalExtensions(header))
			assert.Empty(t, errs, "ws server errors")
			assert.Equal(t, len(specs), closed.Received)
			assert.Equal(t, 1000, closed.Code)
		})
	}
}
