package websocket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/internal/chromium"
)

// TestBrowserPrepared sends the same prepared messages, each made once, to sockets of
// two Chromium pages at once, with WritePrepared and with Send, on Conns that compress
// with and without the peer's context takeover. Each page hashes every message it
// decodes; the test checks the hashes, and reads the frames off the wire to check that
// the messages over the compression threshold went compressed and the one under it did
// not.
func TestBrowserPrepared(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	payloads := preparedPayloads()
	var prepared []*websocket.PreparedMessage
	for _, p := range payloads {
		m, err := websocket.NewPreparedMessage(p.typ, p.data)
		require.NoError(t, err)
		prepared = append(prepared, m)
	}

	modes := map[string]websocket.CompressionMode{
		"context":   websocket.CompressionContextTakeover,
		"nocontext": websocket.CompressionNoContextTakeover,
	}
	const pages, perPage = 2, 4 // each page opens two sockets in each mode
	ended := make(chan error, pages*perPage)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>prepared</title>")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		mode, ok := modes[r.URL.Query().Get("compression")]
		if !ok {
			http.Error(w, "unknown compression", http.StatusBadRequest)
			return
		}
		// Send holds every message at once: allow them all.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: mode, MaxBuffered: 4 << 20})
		if err != nil {
			ended <- err
			return
		}
		defer c.CloseNow()
		ended <- func() error {
			for _, m := range prepared {
				if err := c.WritePrepared(ctx, m); err != nil {
					return err
				}
			}
			for _, m := range prepared {
				if err := c.Send(m); err != nil {
					return err
				}
			}
			// The page closes once it has every message.
			_, _, err := c.Read(ctx)
			return err
		}()
	})
	srv := httptest.NewUnstartedServer(mux)
	wire := &recordingListener{Listener: srv.Listener}
	srv.Listener = wire
	srv.Start()
	t.Cleanup(srv.Close)

	browser := chromium.Start(ctx, t)
	var all []*chromium.Page
	for range pages {
		page, err := browser.Open(ctx, srv.URL+"/")
		require.NoError(t, err)
		var secure bool
		require.NoError(t, page.Eval(ctx, "isSecureContext", &secure))
		require.True(t, secure, "the page needs crypto.subtle to hash")
		// Start the page's sockets without waiting for them, so that both pages receive
		// at once.
		require.NoError(t, page.Eval(ctx, fmt.Sprintf(hashEverything, 2*len(prepared)), nil))
		all = append(all, page)
	}

	var want []hashed
	for range 2 { // once with WritePrepared, once with Send
		for _, p := range payloads {
			sum := sha256.Sum256(p.data)
			want = append(want, hashed{Text: p.typ == websocket.MessageText, Length: len(p.data), SHA256: hex.EncodeToString(sum[:])})
		}
	}
	for i, page := range all {
		var got []struct {
			Mode       string
			Extensions string
			Code       int
			Got        []hashed
		}
		require.NoError(t, page.Eval(ctx, "window.result", &got))
		require.Len(t, got, perPage)
		for j, s := range got {
			assert.Contains(t, s.Extensions, "permessage-deflate", "page %d socket %d (%s)", i, j, s.Mode)
			assert.Equal(t, 1000, s.Code, "page %d socket %d (%s)", i, j, s.Mode)
			assert.Equal(t, want, s.Got, "page %d socket %d (%s)", i, j, s.Mode)
		}
	}
	for range pages * perPage {
		select {
		case err := <-ended:
			assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "%v", err)
		case <-ctx.Done():
			t.Fatalf("a connection did not end: %v", ctx.Err())
		}
	}

	// What the server wrote on each WebSocket: the handshake's response, then a frame for
	// each message (a server's frames are not masked), then the close frame.
	var wantFrames []wireMessage
	for range 2 {
		for _, p := range payloads {
			wantFrames = append(wantFrames, wireMessage{op: byte(p.typ), compressed: p.compressed})
		}
	}
	byMode := map[string]int{}
	for _, out := range wire.written() {
		head, frames, ok := bytes.Cut(out, []byte("\r\n\r\n"))
		if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
			continue // the page's own request
		}
		ext := headerValue(string(head), "Sec-WebSocket-Extensions")
		require.True(t, strings.HasPrefix(ext, "permessage-deflate"), "the server did not accept compression: %q", ext)
		if strings.Contains(ext, "client_no_context_takeover") {
			byMode["nocontext"]++
		} else {
			byMode["context"]++
		}
		msgs, err := parseServerFrames(frames)
		require.NoError(t, err)
		require.Len(t, msgs, len(wantFrames))
		for i, m := range msgs {
			p := payloads[i%len(payloads)]
			assert.Equal(t, wantFrames[i].op, m.op, "message %d (%s)", i, p.name)
			assert.Equal(t, wantFrames[i].compressed, m.compressed, "message %d (%s)", i, p.name)
			if p.compressed {
				assert.Less(t, m.length, len(p.data), "message %d (%s) grew", i, p.name)
			} else {
				assert.Equal(t, len(p.data), m.length, "message %d (%s)", i, p.name)
			}
		}
	}
	assert.Equal(t, map[string]int{"context": pages * 2, "nocontext": pages * 2}, byMode)
}

// preparedPayload is a message TestBrowserPrepared sends, and whether it goes compressed.
type preparedPayload struct {
	name       string
	typ        websocket.MessageType
	data       []byte
	compressed bool
}

// preparedPayloads returns text that compresses well, 1 MiB of binary with stretches
// that compress and stretches that do not (which deflate stores as they are), a message
// under the compression threshold and an empty one.
func preparedPayloads() []preparedPayload {
	var text strings.Builder
	for i := 0; text.Len() < 100<<10; i++ {
		fmt.Fprintf(&text, "line %d: the quick brown fox jumps over the lazy dog, ünïcödé ✓ %x\n", i, i*i)
	}
	big := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		if i>>16%2 == 0 {
			big[i] = byte(i*7 + i>>10)
		} else {
			big[i] = byte(rng.Uint32())
		}
	}
	return []preparedPayload{
		{"text", websocket.MessageText, []byte(text.String()), true},
		{"binary", websocket.MessageBinary, big, true},
		{"short text", websocket.MessageText, []byte("under the threshold ✓"), false},
		{"empty binary", websocket.MessageBinary, []byte{}, false},
	}
}

// hashed is what the page reports of a message it received.
type hashed struct {
	Text   bool
	Length int
	SHA256 string
}

// hashEverything starts, in the page, two sockets in each compression mode. Each hashes
// every message it receives in order and closes with 1000 after the number given.
// window.result is then a promise of what each socket received.
const hashEverything = `(() => {
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  const open = (mode) => new Promise((resolve) => {
    const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws?compression=" + mode);
    ws.binaryType = "arraybuffer";
    const got = [];
    ws.onmessage = (e) => {
      const text = typeof e.data === "string";
      const bytes = text ? new TextEncoder().encode(e.data) : new Uint8Array(e.data);
      got.push(crypto.subtle.digest("SHA-256", bytes).then((sum) => ({Text: text, Length: bytes.length, SHA256: hex(sum)})));
      if (got.length === %d) ws.close(1000, "done");
    };
    // An error is followed by a close event, whose code tells it.
    ws.onclose = async (e) => resolve({Mode: mode, Extensions: ws.extensions, Code: e.code, Got: await Promise.all(got)});
  });
  window.result = Promise.all(["context", "context", "nocontext", "nocontext"].map(open));
  return true;
})()`

// headerValue returns the value of the named header in an HTTP response head.
func headerValue(head, name string) string {
	for line := range strings.SplitSeq(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// wireMessage is a data message as a server's frames carried it.
type wireMessage struct {
	op         byte
	compressed bool // RSV1 on its first frame (RFC 7692 §6)
	length     int  // of the payload on the wire
}

// parseServerFrames reads unmasked frames up to the close frame, and returns the data
// messages among them.
func parseServerFrames(p []byte) ([]wireMessage, error) {
	var msgs []wireMessage
	open := false
	for len(p) >= 2 {
		fin, rsv1, op := p[0]&0x80 != 0, p[0]&0x40 != 0, p[0]&0x0f
		if p[1]&0x80 != 0 {
			return nil, fmt.Errorf("a server frame is masked")
		}
		n, h := uint64(p[1]&0x7f), 2
		switch n {
		case 126:
			if len(p) < 4 {
				return nil, fmt.Errorf("frame header cut short")
			}
			n, h = uint64(binary.BigEndian.Uint16(p[2:])), 4
		case 127:
			if len(p) < 10 {
				return nil, fmt.Errorf("frame header cut short")
			}
			n, h = binary.BigEndian.Uint64(p[2:]), 10
		}
		if uint64(len(p)-h) < n {
			return nil, fmt.Errorf("frame payload cut short")
		}
		p = p[h+int(n):]
		switch {
		case op == 0x8:
			return msgs, nil
		case op >= 0x8: // ping, pong
		case op == 0:
			if !open {
				return nil, fmt.Errorf("continuation frame outside a message")
			}
			msgs[len(msgs)-1].length += int(n)
		default:
			if open {
				return nil, fmt.Errorf("a message began inside another")
			}
			msgs = append(msgs, wireMessage{op: op, compressed: rsv1, length: int(n)})
		}
		if op < 0x8 {
			open = !fin
		}
	}
	return nil, fmt.Errorf("no close frame")
}

// recordingListener keeps a copy of everything written on the connections it accepts.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*recordingConn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: nc}
	l.mu.Lock()
	l.conns = append(l.conns, rc)
	l.mu.Unlock()
	return rc, nil
}

// written returns what was written on each connection accepted.
func (l *recordingListener) written() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, c := range l.conns {
		c.mu.Lock()
		out = append(out, bytes.Clone(c.out.Bytes()))
		c.mu.Unlock()
	}
	return out
}

type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out.Write(p[:n])
	c.mu.Unlock()
	return n, err
}
