package echo_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket/bench/internal/echo"
	"github.com/hybi/websocket/bench/internal/load"
)

// serve starts lib's echo server on a free loopback port and stops it with the test.
func serve(t *testing.T, lib string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- echo.Serve(ln, lib) }()
	t.Cleanup(func() {
		ln.Close()
		assert.NoError(t, <-done, "Serve after its listener closed")
	})
	return ln.Addr().String()
}

// TestEchoServers runs every scenario of the load generator, with validation of every
// echoed byte, against every server without compression, at payload lengths that take
// each frame length form (7, 16 and 64 bits) and make the streaming servers fragment.
func TestEchoServers(t *testing.T) {
	for _, lib := range echo.Libs {
		if strings.HasSuffix(lib, "-deflate") {
			continue // TestDeflateEchoServers
		}
		t.Run(lib, func(t *testing.T) {
			addr := serve(t, lib)
			raw := lib == "floor"
			for _, tc := range []struct {
				scenario string
				conns    int
				size     int
				inflight int
				text     bool
			}{
				{scenario: "echo", conns: 2, size: 0},
				{scenario: "echo", conns: 2, size: 1, text: true},
				{scenario: "echo", conns: 2, size: 125},
				{scenario: "echo", conns: 2, size: 126, text: true},
				{scenario: "echo", conns: 2, size: 65535},
				{scenario: "echo", conns: 2, size: 65536, text: true},
				{scenario: "echo", conns: 1, size: 300_000},
				{scenario: "pipeline", conns: 2, size: 128, inflight: 4},
				{scenario: "pipeline-batch", conns: 2, size: 128, inflight: 4},
				{scenario: "idle", conns: 20, size: 64},
				{scenario: "upgrade", conns: 2},
			} {
				if raw && tc.size == 0 && tc.scenario == "echo" {
					continue // plain TCP has no empty message
				}
				if lib == "ours-netconn" && tc.scenario != "idle" && tc.scenario != "upgrade" {
					continue // a byte stream: it keeps no message's bounds or type
				}
				name := fmt.Sprintf("%s/%d/text=%v", tc.scenario, tc.size, tc.text)
				res, err := load.Run(load.Config{
					Label:    lib,
					Addr:     addr,
					PID:      os.Getpid(),
					Scenario: tc.scenario,
					Conns:    tc.conns,
					Size:     tc.size,
					Inflight: tc.inflight,
					Messages: 5,
					Raw:      raw,
					Text:     tc.text,
				})
				require.NoError(t, err, name)
				if tc.scenario == "idle" {
					assert.EqualValues(t, tc.conns, res.Ops, name)
				} else {
					assert.EqualValues(t, tc.conns*5, res.Ops, name)
				}
				assert.Greater(t, res.P50us, 0.0, name)
				assert.GreaterOrEqual(t, res.ServerCPUus, 0.0, name)
			}
		})
	}
}

// TestDeflateEchoServers runs the compressed echo against every server that compresses,
// at sizes some of them send uncompressed, that fill the server's window after a few
// messages, and that take a 64-bit length and make the streaming servers fragment; and
// the plain echo, which they must serve without compression.
func TestDeflateEchoServers(t *testing.T) {
	n := 0
	for _, lib := range echo.Libs {
		if !strings.HasSuffix(lib, "-deflate") {
			continue
		}
		n++
		t.Run(lib, func(t *testing.T) {
			addr := serve(t, lib)
			for _, tc := range []struct {
				scenario string
				size     int
				messages int
				text     bool
			}{
				{scenario: "echo-deflate", size: 0, messages: 3},
				{scenario: "echo-deflate", size: 1, messages: 3, text: true},
				{scenario: "echo-deflate", size: 125, messages: 3},
				{scenario: "echo-deflate", size: 4096, messages: 12, text: true}, // 48 KiB
				{scenario: "echo-deflate", size: 300_000, messages: 2},
				{scenario: "echo", size: 4096, messages: 3},
			} {
				name := fmt.Sprintf("%s/%d/text=%v", tc.scenario, tc.size, tc.text)
				res, err := load.Run(load.Config{
					Label:    lib,
					Addr:     addr,
					PID:      os.Getpid(),
					Scenario: tc.scenario,
					Conns:    2,
					Size:     tc.size,
					Messages: tc.messages,
					Text:     tc.text,
				})
				require.NoError(t, err, name)
				assert.EqualValues(t, 2*tc.messages, res.Ops, name)
				if tc.scenario == "echo-deflate" {
					assert.Contains(t, res.Extensions, "permessage-deflate", name)
				} else {
					assert.Empty(t, res.Extensions, name)
				}
				if tc.scenario == "echo-deflate" && tc.size >= 4096 {
					assert.Less(t, res.EchoBytesPerOp, float64(tc.size)/2, "%s: the echo is compressed", name)
				}
			}
		})
	}
	assert.Equal(t, 5, n, "servers with compression")
}

func TestServeUnknownLibrary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	assert.Error(t, echo.Serve(ln, "nonesuch"))
	assert.False(t, echo.Known("nonesuch"))
}

// TestStyle checks that every server has a style, and that each whole-message server's
// streaming namesake is known.
func TestStyle(t *testing.T) {
	for lib, want := range map[string]string{
		"ours": "stream", "ours-go": "stream", "gorilla": "stream", "coder-bg": "stream", "coder-deflate": "stream",
		"ours-msg": "message", "gorilla-msg": "message", "coder-msg": "message", "gobwas-msg": "message",
		"gws": "message", "gws-deflate": "message", "floor": "bytes",
	} {
		assert.Equal(t, want, echo.Style(lib), lib)
	}
	for _, lib := range echo.Libs {
		if name, ok := strings.CutSuffix(lib, "-msg"); ok {
			assert.True(t, echo.Known(name), "%s has a streaming namesake", lib)
		}
	}
}
