package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/leak"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }

// testTimeout bounds one exchange with a Node peer, the time it takes to start included.
const testTimeout = 2 * time.Minute

// readLimit lets the 1 MiB messages of an exchange through with room to spare.
const readLimit = 2 << 20

// modes are our compression modes, crossed with every ws configuration.
var modes = []websocket.CompressionMode{
	websocket.CompressionDisabled,
	websocket.CompressionNoContextTakeover,
	websocket.CompressionContextTakeover,
}

// needNode skips the test when Node.js or the ws package is missing, unless CI=true,
// where it fails.
func needNode(t *testing.T) {
	t.Helper()
	msg := ""
	if _, err := exec.LookPath("node"); err != nil {
		msg = "node not found on PATH: install Node.js, then run npm ci in interop/"
	} else if _, err := os.Stat("node_modules/ws/package.json"); err != nil {
		msg = "node_modules/ws missing: run npm ci in interop/"
	}
	if msg == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// deflateOptions are the perMessageDeflate options of a ws peer. Fields at their zero
// value are left to ws's defaults.
type deflateOptions struct {
	ServerNoContextTakeover bool `json:"serverNoContextTakeover,omitempty"`
	ClientNoContextTakeover bool `json:"clientNoContextTakeover,omitempty"`
	ServerMaxWindowBits     int  `json:"serverMaxWindowBits,omitempty"`
	ClientMaxWindowBits     int  `json:"clientMaxWindowBits,omitempty"`
	// Threshold is always 0: ws then compresses every message, however small, where by
	// default it sends messages under 1 KiB uncompressed when it has no context to keep.
	Threshold int `json:"threshold"`
}

// wsConfig is a named ws configuration; a nil Deflate is perMessageDeflate: false.
type wsConfig struct {
	name    string
	deflate *deflateOptions
}

// perMessageDeflate is the value of ws's perMessageDeflate option.
func (c wsConfig) perMessageDeflate() any {
	if c.deflate == nil {
		return false
	}
	return c.deflate
}

// clientReport is what wsclient.js prints.
type clientReport struct {
	Header      string   `json:"header"`
	Extensions  string   `json:"extensions"`
	Echoed      int      `json:"echoed"`
	Mismatches  []string `json:"mismatches"`
	Errors      []string `json:"errors"`
	CloseCode   int      `json:"closeCode"`
	CloseReason string   `json:"closeReason"`
	WireRead    int      `json:"wireRead"`
	WireWritten int      `json:"wireWritten"`
}

// runClient runs wsclient.js against url until the connection closes and returns its
// report.
func runClient(ctx context.Context, t *testing.T, url string, cfg wsConfig, specs []msgSpec, closeBy string) clientReport {
	t.Helper()
	arg, err := json.Marshal(map[string]any{
		"url":               url,
		"perMessageDeflate": cfg.perMessageDeflate(),
		"messages":          specs,
		"closeBy":           closeBy,
	})
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, "node", "wsclient.js", string(arg))
	out, err := cmd.Output()
	var rep clientReport
	require.NoError(t, json.Unmarshal(out, &rep), "wsclient.js printed %q; %v: %s", out, err, stderrOf(err))
	if err != nil {
		// The report says why; a failure the report does not show must not pass.
		assert.True(t, len(rep.Errors) > 0 || len(rep.Mismatches) > 0 || rep.Echoed != len(specs),
			"wsclient.js: %v: %s", err, stderrOf(err))
	}
	return rep
}

// stderrOf returns what a command run with Output wrote on stderr before failing.
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// serverEvent is one line that wsserver.js prints about a connection.
type serverEvent struct {
	Port        int    `json:"port"` // the first line only
	Event       string `json:"event"`
	ID          string `json:"id"`
	Offer       string `json:"offer"`
	Response    string `json:"response"`
	Extensions  string `json:"extensions"`
	Message     string `json:"message"`
	Code        int    `json:"code"`
	Reason      string `json:"reason"`
	Received    int    `json:"received"`
	WireRead    int    `json:"wireRead"`
	WireWritten int    `json:"wireWritten"`
}

// wsServer is a running wsserver.js.
type wsServer struct {
	port   int
	events chan serverEvent // closed when the process ends
}

// startServer starts wsserver.js with cfg's options and stops it when the test ends.
func startServer(t *testing.T, cfg wsConfig) *wsServer {
	t.Helper()
	arg, err := json.Marshal(cfg.perMessageDeflate())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "wsserver.js", string(arg))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	s := &wsServer{events: make(chan serverEvent, 16)}
	lines := bufio.NewScanner(stdout)
	go func() {
		defer close(s.events)
		for lines.Scan() {
			var ev serverEvent
			if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
				ev = serverEvent{Event: "error", Message: fmt.Sprintf("unreadable line %q", lines.Text())}
			}
			s.events <- ev
		}
	}()
	t.Cleanup(func() {
		// The server exits when its stdin closes; the timer only bounds a hung process.
		stdin.Close()
		timer := time.AfterFunc(10*time.Second, cancel)
		defer timer.Stop()
		for range s.events {
		}
		err := cmd.Wait()
		cancel()
		assert.NoError(t, err, "wsserver.js: %s", stderr.String())
	})

	select {
	case <-time.After(testTimeout):
		require.FailNow(t, "wsserver.js did not start", stderr.String())
	case first, ok := <-s.events:
		require.True(t, ok, "wsserver.js ended before listening: %s", stderr.String())
		require.NotZero(t, first.Port, "wsserver.js printed %+v, not its port: %s", first, stderr.String())
		s.port = first.Port
	}
	return s
}

// connection collects the events of the connection named id, up to its close.
func (s *wsServer) connection(ctx context.Context, t *testing.T, id string) (open, closed serverEvent, errs []string) {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			require.FailNow(t, "no close event from wsserver.js", "connection %s: %v", id, ctx.Err())
		case ev, ok := <-s.events:
			require.True(t, ok, "wsserver.js ended")
			if ev.ID != id {
				// What is left of an earlier connection that failed its test.
				t.Logf("skipping an event of connection %q: %+v", ev.ID, ev)
				continue
			}
			switch ev.Event {
			case "open":
				open = ev
			case "error":
				errs = append(errs, ev.Message)
			case "close":
				return open, ev, errs
			}
		}
	}
}

// lockedBuffer is a bytes.Buffer that a process may write while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// canonicalExtensions rewrites a Sec-WebSocket-Extensions value so that two values
// that mean the same compare equal: parameters sorted, names lower case, values
// unquoted, one space after each separator.
func canonicalExtensions(v string) string {
	var exts []string
	for ext := range strings.SplitSeq(v, ",") {
		parts := strings.Split(ext, ";")
		name := strings.ToLower(strings.TrimSpace(parts[0]))
		if name == "" {
			continue
		}
		var params []string
		for _, p := range parts[1:] {
			k, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
			k = strings.ToLower(strings.TrimSpace(k))
			if hasVal {
				k += "=" + strings.Trim(strings.TrimSpace(val), `"`)
			}
			params = append(params, k)
		}
		slices.Sort(params)
		exts = append(exts, strings.Join(append([]string{name}, params...), "; "))
	}
	return strings.Join(exts, ", ")
}

// deflateExtension returns the canonical permessage-deflate extension with params.
func deflateExtension(params ...string) string {
	return canonicalExtensions(strings.Join(append([]string{"permessage-deflate"}, params...), "; "))
}

// extensionNames is what ws.extensions reports for a negotiated extension value.
func extensionNames(ext string) string {
	if ext == "" {
		return ""
	}
	return "permessage-deflate"
}

// sameBytes returns "" when got equals want, or where they first differ; it keeps
// megabyte messages out of failure output.
func sameBytes(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return fmt.Sprintf("want %d bytes, got %d, first difference at byte %d", len(want), len(got), i)
}

// checkCompressed logs how much the bytes a side of ours wrote on the wire weigh
// against its messages. With full, a window of 15 bits, it asserts that they show the
// messages compressed: the text at least halved, the binary grown by at most 1%. A
// compressor held to a smaller window may do worse, or send its messages as they are.
func checkCompressed(t *testing.T, wire int, msgs [][]byte, specs []msgSpec, full bool) {
	t.Helper()
	text, binary := payloadSizes(msgs, specs)
	t.Logf("on the wire: %d bytes for %d bytes of messages (%.2f)", wire, text+binary, float64(wire)/float64(text+binary))
	if full {
		limit := text/2 + binary + binary/100 + 16*len(msgs) + 1024
		assert.Less(t, wire, limit, "bytes on the wire for %d bytes of text and %d of binary", text, binary)
	}
}
