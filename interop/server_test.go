package interop

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hybi/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests our server against the ws client (wsclient.js).

// wsClientConfigs mirror the offers of the Autobahn testsuite's compression cases
// (12.x, 13.x), made by the ws client.
var wsClientConfigs = []wsConfig{
	{"default", &deflateOptions{}},
	{"server_no_context_takeover", &deflateOptions{ServerNoContextTakeover: true}},
	// ws offers 8 as given and inflates with a window of 256 bytes, which Node's zlib
	// enforces: our server must then refer no further back than that.
	{"server_max_window_bits=8", &deflateOptions{ServerMaxWindowBits: 8}},
	{"server_max_window_bits=15", &deflateOptions{ServerMaxWindowBits: 15}},
	{"server_no_context_takeover,server_max_window_bits=9", &deflateOptions{ServerNoContextTakeover: true, ServerMaxWindowBits: 9}},
	{"client_no_context_takeover", &deflateOptions{ClientNoContextTakeover: true}},
	{"off", nil},
}

// ourServerAnswer is the Sec-WebSocket-Extensions value our server answers cfg's offer
// with in mode: server_no_context_takeover always, client_no_context_takeover in
// CompressionNoContextTakeover or when the client offered it, and server_max_window_bits
// as the client asked.
func ourServerAnswer(cfg wsConfig, mode websocket.CompressionMode) string {
	if cfg.deflate == nil || mode == websocket.CompressionDisabled {
		return ""
	}
	params := []string{"server_no_context_takeover"}
	if mode == websocket.CompressionNoContextTakeover || cfg.deflate.ClientNoContextTakeover {
		params = append(params, "client_no_context_takeover")
	}
	if b := cfg.deflate.ServerMaxWindowBits; b != 0 {
		params = append(params, fmt.Sprintf("server_max_window_bits=%d", b))
	}
	return deflateExtension(params...)
}

// echoResult is what our echo server saw of a connection.
type echoResult struct {
	received   int
	mismatches []string
	err        error // what ended the connection: a read or write error
	closeErr   error // what Close returned, when the server closed first
}

// startEcho starts our echo server: Accept in mode, then echo every message with its
// type, checking each against the next of msgs. With serverCloses, it closes with 1000
// once every message is echoed; otherwise it reads until the client closes. It sends
// what it saw of each connection on the channel.
func startEcho(t *testing.T, mode websocket.CompressionMode, specs []msgSpec, msgs [][]byte, serverCloses bool) (string, <-chan echoResult) {
	t.Helper()
	results := make(chan echoResult, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res echoResult
		defer func() { results <- res }()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: mode})
		if err != nil {
			res.err = err
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(readLimit)
		ctx := r.Context()
		for {
			if serverCloses && res.received == len(msgs) {
				res.closeErr = c.Close(websocket.StatusNormalClosure, "done")
				return
			}
			typ, msg, err := c.Read(ctx)
			if err != nil {
				res.err = err
				return
			}
			i := res.received
			res.received++
			switch {
			case i >= len(msgs):
				res.mismatches = append(res.mismatches, fmt.Sprintf("message %d: not sent", i))
			case typ != specs[i].messageType():
				res.mismatches = append(res.mismatches, fmt.Sprintf("message %d: got %v, want %v", i, typ, specs[i].messageType()))
			default:
				if d := sameBytes(msgs[i], msg); d != "" {
					res.mismatches = append(res.mismatches, fmt.Sprintf("message %d (%+v): %s", i, specs[i], d))
				}
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				res.err = err
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/", results
}

// receive waits for our echo server's result.
func receive(ctx context.Context, t *testing.T, results <-chan echoResult) echoResult {
	t.Helper()
	select {
	case res := <-results:
		return res
	case <-ctx.Done():
		require.FailNow(t, "our server did not finish", "%v", ctx.Err())
		return echoResult{}
	}
}

// checkServerExchange asserts that both sides saw every message intact and the other's
// close code: 1000 and "done".
func checkServerExchange(t *testing.T, rep clientReport, res echoResult, n int) {
	t.Helper()
	assert.Empty(t, rep.Errors, "ws client errors")
	assert.Empty(t, rep.Mismatches, "echoes checked by the ws client")
	assert.Equal(t, n, rep.Echoed, "echoes the ws client got")
	assert.Empty(t, res.mismatches, "messages checked by our server")
	assert.Equal(t, n, res.received, "messages our server got")
	assert.Equal(t, 1000, rep.CloseCode, "close code the ws client got")
}

func TestServerWithWSClient(t *testing.T) {
	needNode(t)
	specs := exchange()
	msgs := buildAll(specs)
	for _, cfg := range wsClientConfigs {
		for _, mode := range modes {
			t.Run(cfg.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
				defer cancel()
				url, results := startEcho(t, mode, specs, msgs, false)

				rep := runClient(ctx, t, url, cfg, specs, "client")
				res := receive(ctx, t, results)

				want := ourServerAnswer(cfg, mode)
				assert.Equal(t, want, canonicalExtensions(rep.Header), "Sec-WebSocket-Extensions the ws client got")
				assert.Equal(t, extensionNames(want), rep.Extensions, "ws.extensions")
				checkServerExchange(t, rep, res, len(specs))
				assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(res.err), "close code our server got: %v", res.err)
				if want != "" {
					bits := cfg.deflate.ServerMaxWindowBits
					checkCompressed(t, rep.WireRead, msgs, specs, bits == 0 || bits == 15)
				}
			})
		}
	}
}

// fragmentedSpecs are messages a ws peer sends in fragments, each compressed on its own
// frame (only the first has RSV1 set), followed by messages sent whole.
func fragmentedSpecs() []msgSpec {
	sevens := make([]int, 285) // 7-byte pieces cut through multi-byte characters
	for i := range sevens {
		sevens[i] = 7
	}
	specs := []msgSpec{
		{Kind: "text", Size: 100000, Seed: 5, Fragments: []int{1, 0, 5000, 33333}},
		{Kind: "binary", Size: 70000, Seed: 6, Fragments: []int{65536, 0}},
		{Kind: "text", Size: 2000, Seed: 7, Fragments: sevens},
		{Kind: "binary", Size: 0, Seed: 8, Fragments: []int{0, 0}},
		{Kind: "json", Seed: 9, Fragments: []int{10}},
	}
	for i := range 20 {
		specs = append(specs, msgSpec{Kind: "json", Seed: uint32(2000 + i)})
	}
	return specs
}

func TestServerFragmentedFromWS(t *testing.T) {
	needNode(t)
	specs := fragmentedSpecs()
	msgs := buildAll(specs)
	cfg := wsConfig{"default", &deflateOptions{}}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			url, results := startEcho(t, mode, specs, msgs, false)

			rep := runClient(ctx, t, url, cfg, specs, "client")
			res := receive(ctx, t, results)

			assert.Equal(t, ourServerAnswer(cfg, mode), canonicalExtensions(rep.Header))
			checkServerExchange(t, rep, res, len(specs))
		})
	}
}
