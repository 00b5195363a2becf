package load

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	coder "github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ours "github.com/hybi/websocket"
)

func TestParseDeflateResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   deflateParams
		ok     bool
		err    bool
	}{
		{name: "none", values: nil, want: deflateParams{clientBits: 15}},
		{name: "bare", values: []string{"permessage-deflate"}, want: deflateParams{clientBits: 15}, ok: true},
		{name: "server no context", values: []string{"permessage-deflate; server_no_context_takeover"},
			want: deflateParams{serverNoContext: true, clientBits: 15}, ok: true},
		{name: "both no context, no spaces", values: []string{"permessage-deflate;server_no_context_takeover;client_no_context_takeover"},
			want: deflateParams{serverNoContext: true, clientBits: 15}, ok: true},
		{name: "windows", values: []string{"permessage-deflate; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12"},
			want: deflateParams{clientBits: 12}, ok: true},
		{name: "quoted window, case", values: []string{`Permessage-Deflate; Client_Max_Window_Bits="9"`},
			want: deflateParams{clientBits: 9}, ok: true},
		{name: "other extension", values: []string{"x-webkit-deflate-frame"}, err: true},
		{name: "twice", values: []string{"permessage-deflate", "permessage-deflate"}, err: true},
		{name: "unknown parameter", values: []string{"permessage-deflate; level=9"}, err: true},
		{name: "repeated parameter", values: []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, err: true},
		{name: "empty parameter", values: []string{"permessage-deflate;"}, err: true},
		{name: "takeover with a value", values: []string{"permessage-deflate; client_no_context_takeover=1"}, err: true},
		{name: "window without a value", values: []string{"permessage-deflate; client_max_window_bits"}, err: true},
		{name: "window too large", values: []string{"permessage-deflate; server_max_window_bits=16"}, err: true},
		{name: "window too small", values: []string{"permessage-deflate; client_max_window_bits=7"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok, err := parseDeflateResponse(tc.values)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, p)
		})
	}
}

func TestRecords(t *testing.T) {
	records := func(seed uint64) []byte { return appendRecords(nil, rand.New(rand.NewPCG(seed, 0)), 10_000) }
	a := records(1)
	require.Len(t, a, 10_000)
	assert.Equal(t, a, records(1), "the same seed gives the same records")
	assert.NotEqual(t, a, records(2))
	assert.True(t, utf8.Valid(a))
	assert.True(t, bytes.HasPrefix(a, []byte(`{"id":`)), "%.40q", a)
	// Compressible, but not trivially.
	z := compressed(t, a, nil, flate.BestSpeed, false)
	assert.Less(t, len(z), len(a)/2)
	assert.Greater(t, len(z), len(a)/10)
}

// compressed is p compressed the way a server does it, against dict, without the tail;
// final ends the stream with a final block instead of a sync flush.
func compressed(t *testing.T, p, dict []byte, level int, final bool) []byte {
	t.Helper()
	var z bytes.Buffer
	fw, err := flate.NewWriterDict(&z, level, dict)
	require.NoError(t, err)
	_, err = fw.Write(p)
	require.NoError(t, err)
	if final {
		require.NoError(t, fw.Close())
	} else {
		require.NoError(t, fw.Flush())
	}
	b, ok := bytes.CutSuffix(z.Bytes(), deflateTail)
	require.True(t, ok)
	return b
}

func compressedFrame(fin bool, op byte, payload []byte) []byte {
	b := serverFrame(fin, op, payload)
	b[0] |= 0x40
	return b
}

// deflateOptions are those of a compressing client with messages of size bytes.
func deflateOptions(size int) options { return options{deflate: true, size: size, seed: 1} }

// TestReceiveDeflate checks that compressed echoes are reassembled and inflated from any
// framing the servers may use.
func TestReceiveDeflate(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		wire func(t *testing.T, want []byte) []byte
	}{
		{"one frame", 4096, func(t *testing.T, p []byte) []byte {
			return compressedFrame(true, opBinary, compressed(t, p, nil, flate.BestSpeed, false))
		}},
		{"final block", 4096, func(t *testing.T, p []byte) []byte {
			return compressedFrame(true, opBinary, compressed(t, p, nil, flate.BestSpeed, true))
		}},
		{"fragmented, a pong between", 70_000, func(t *testing.T, p []byte) []byte {
			z := compressed(t, p, nil, flate.BestSpeed, false)
			b := compressedFrame(false, opBinary, z[:100])
			b = append(b, serverFrame(true, opPong, []byte("x"))...)
			b = append(b, serverFrame(false, opContinuation, z[100:200])...)
			b = append(b, serverFrame(false, opContinuation, z[200:])...)
			return append(b, serverFrame(true, opContinuation, nil)...)
		}},
		{"not compressed", 4096, func(t *testing.T, p []byte) []byte {
			return serverFrame(true, opBinary, p)
		}},
		{"empty", 0, func(t *testing.T, p []byte) []byte {
			return compressedFrame(true, opBinary, compressed(t, p, nil, flate.BestSpeed, false))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := clientWithServer(t, deflateOptions(tc.size), func(c *client) []byte {
				_, want := c.payload(3)
				return tc.wire(t, want)
			})
			assert.NoError(t, c.receive(3))
		})
	}
}

// TestReceiveDeflateContext checks that the client inflates against the server's
// earlier compressed messages, and only those, unless the server took no context.
func TestReceiveDeflateContext(t *testing.T) {
	wire := func(t *testing.T, c *client) []byte {
		_, m0 := c.payload(0)
		_, m1 := c.payload(1)
		_, m2 := c.payload(2)
		b := compressedFrame(true, opBinary, compressed(t, m0, nil, flate.DefaultCompression, false))
		// An uncompressed message leaves the window as it was: the server's compressor
		// never saw it.
		b = append(b, serverFrame(true, opBinary, m1)...)
		return append(b, compressedFrame(true, opBinary, compressed(t, m2, m0, flate.DefaultCompression, false))...)
	}

	c, _ := clientWithServer(t, deflateOptions(4096), func(c *client) []byte { return wire(t, c) })
	for k := range 3 {
		require.NoError(t, c.receive(k), "message %d", k)
	}

	// The same messages fail when the server said it took no context: the last one
	// refers back to the first.
	c, _ = clientWithServer(t, deflateOptions(4096), func(c *client) []byte { return wire(t, c) })
	c.pmd.params.serverNoContext = true
	require.NoError(t, c.receive(0))
	require.NoError(t, c.receive(1))
	assert.ErrorIs(t, c.receive(2), errValidation)
}

// TestReceiveDeflateRejects checks that every way a compressed echo can be wrong fails
// the run.
func TestReceiveDeflateRejects(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wire       func(t *testing.T, c *client, want []byte) []byte
		validation bool // the error is a validation failure, not a protocol one
	}{
		{"a byte differs", func(t *testing.T, _ *client, p []byte) []byte {
			p[700] ^= 1
			return compressedFrame(true, opBinary, compressed(t, p, nil, flate.BestSpeed, false))
		}, true},
		{"another message", func(t *testing.T, c *client, _ []byte) []byte {
			_, other := c.payload(4)
			return compressedFrame(true, opBinary, compressed(t, other, nil, flate.BestSpeed, false))
		}, true},
		{"too long", func(t *testing.T, _ *client, p []byte) []byte {
			return compressedFrame(true, opBinary, compressed(t, append(p, 'x'), nil, flate.BestSpeed, false))
		}, true},
		{"truncated", func(t *testing.T, _ *client, p []byte) []byte {
			z := compressed(t, p, nil, flate.BestSpeed, false)
			return compressedFrame(true, opBinary, z[:len(z)/2])
		}, true},
		{"not DEFLATE", func(t *testing.T, _ *client, p []byte) []byte {
			return compressedFrame(true, opBinary, []byte{0xff, 0xff, 0xff}) // BTYPE 11 is reserved
		}, true},
		{"a continuation frame marked compressed", func(t *testing.T, _ *client, p []byte) []byte {
			z := compressed(t, p, nil, flate.BestSpeed, false)
			return append(compressedFrame(false, opBinary, z[:10]), compressedFrame(true, opContinuation, z[10:])...)
		}, false},
		{"a control frame marked compressed", func(t *testing.T, _ *client, p []byte) []byte {
			return compressedFrame(true, opPing, nil)
		}, false},
		{"RSV2", func(t *testing.T, _ *client, p []byte) []byte {
			b := compressedFrame(true, opBinary, compressed(t, p, nil, flate.BestSpeed, false))
			b[0] |= 0x20
			return b
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := clientWithServer(t, deflateOptions(4096), func(c *client) []byte {
				_, want := c.payload(3)
				return tc.wire(t, c, bytes.Clone(want))
			})
			err := c.receive(3)
			require.Error(t, err)
			assert.Equal(t, tc.validation, errors.Is(err, errValidation), "%v", err)
		})
	}
}

// TestSendDeflate checks the frames sent: the compression bit on a final frame, masked,
// a payload that inflates to the message, in the window the server asked for.
func TestSendDeflate(t *testing.T) {
	for _, size := range []int{0, 1, 4096, 70_000} {
		for _, bits := range []int{15, 9} {
			c, sent := clientWithServer(t, deflateOptions(size), func(*client) []byte { return nil })
			c.op = opText
			c.pmd.params.clientBits = bits
			require.NoError(t, c.send(5))
			c.nc.Close()
			b := <-sent
			_, want := c.payload(5)

			require.GreaterOrEqual(t, len(b), 6)
			assert.Equal(t, byte(0x80|0x40|opText), b[0], "size %d", size)
			require.NotZero(t, b[1]&0x80, "masked")
			n, hdr := int(b[1]&0x7F), 2
			switch n {
			case 126:
				n, hdr = int(b[2])<<8|int(b[3]), 4
			case 127:
				t.Fatalf("size %d: 64-bit length for a compressed message", size)
			}
			hdr += 4
			require.Len(t, b, hdr+n, "size %d", size)
			key := b[hdr-4 : hdr]
			z := b[hdr:]
			for i := range z {
				z[i] ^= key[i%4]
			}
			got, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader(deflateTail))))
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the stream goes on after a sync flush")
			assert.Equal(t, want, got, "size %d, window bits %d", size, bits)
			if size >= 4096 {
				assert.Less(t, len(z), size/2, "size %d: compressed", size)
			}
		}
	}
}

// oursEchoServer serves an echo with this module's Accept, on an httptest server.
// If corrupt is not negative, the message of that index comes back with a byte changed.
func oursEchoServer(t *testing.T, mode ours.CompressionMode, corrupt int) string {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ours.Accept(w, r, &ours.AcceptOptions{InsecureSkipOriginCheck: true, Compression: mode})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if int(n.Add(1)-1) == corrupt && len(msg) > 0 {
				msg[len(msg)/2] ^= 1
			}
			if c.Write(r.Context(), typ, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// coderEchoServer is oursEchoServer with github.com/coder/websocket, which compresses
// against its earlier messages.
func coderEchoServer(t *testing.T, corrupt int) string {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, &coder.AcceptOptions{InsecureSkipVerify: true, CompressionMode: coder.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if int(n.Add(1)-1) == corrupt && len(msg) > 0 {
				msg[len(msg)/2] ^= 1
			}
			if c.Write(ctx, typ, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestRunDeflate runs the compressed echo against this module and a peer, at sizes
// that the peer sends uncompressed (under its 128-byte threshold), that fill the
// server's window after a few messages, and that go past 64 KiB.
func TestRunDeflate(t *testing.T) {
	servers := map[string]func(t *testing.T) string{
		"ours context takeover":    func(t *testing.T) string { return oursEchoServer(t, ours.CompressionContextTakeover, -1) },
		"ours no context takeover": func(t *testing.T) string { return oursEchoServer(t, ours.CompressionNoContextTakeover, -1) },
		"coder context takeover":   func(t *testing.T) string { return coderEchoServer(t, -1) },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			for _, tc := range []struct {
				size, messages int
				text           bool
			}{{100, 3, false}, {4096, 12, true}, {70_000, 2, false}} {
				res, err := Run(Config{Addr: addr, Scenario: "echo-deflate", Conns: 2, Size: tc.size, Text: tc.text, Messages: tc.messages})
				require.NoError(t, err, "size %d", tc.size)
				assert.EqualValues(t, 2*tc.messages, res.Ops, "size %d", tc.size)
				assert.Contains(t, res.Extensions, "permessage-deflate")
				if tc.size >= 4096 {
					assert.Less(t, res.SentBytesPerOp, float64(tc.size)/2, "size %d", tc.size)
					assert.Less(t, res.EchoBytesPerOp, float64(tc.size)/2, "size %d", tc.size)
				}
			}
		})
	}
}

// TestRunDeflateFailsOnCorruptEcho checks that a server that compresses a wrong byte
// into its echo fails the run.
func TestRunDeflateFailsOnCorruptEcho(t *testing.T) {
	for name, addr := range map[string]string{
		"ours":  oursEchoServer(t, ours.CompressionContextTakeover, 5),
		"coder": coderEchoServer(t, 5),
	} {
		_, err := Run(Config{Addr: addr, Scenario: "echo-deflate", Conns: 1, Size: 4096, Messages: 10})
		assert.ErrorIs(t, err, errValidation, name)
	}
}

// TestRunDeflateDeclined checks that a server without compression fails the run rather
// than measuring uncompressed echoes.
func TestRunDeflateDeclined(t *testing.T) {
	addr := oursEchoServer(t, ours.CompressionDisabled, -1)
	_, err := Run(Config{Addr: addr, Scenario: "echo-deflate", Conns: 1, Size: 4096, Messages: 1})
	assert.ErrorIs(t, err, errDeclined)
	assert.NotErrorIs(t, err, errValidation)
}
