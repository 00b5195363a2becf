package websocket

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests guard the goroutine stacks of the two ways of serving a Conn against frames
// that grow on the accept and read paths: each time a path got one frame too deep, every
// connection paid for a stack twice as large, and some 30,000 instructions per handshake
// to copy it. A goroutine starts with a 2 KiB stack and doubles it when a call would run
// past its end, so a stack is measured in whole powers of two: what the tests check is
// that the stack stays at the size it had, not some bytes more or less.
//
// They count the growth of runtime.MemStats.StackInuse over stackConns connections that
// are left blocked in Read, with the collector off, so that no stack is shrunk in between
// (the collector halves a stack that uses a quarter of it), and after a collection that
// frees the stacks dead goroutines keep for reuse, so that each new goroutine allocates
// its own. The bounds lie halfway between the size each goroutine should have and twice
// that: freed and cached stacks move the figure by far less.
//
// The race detector's instrumentation makes every frame larger and grows stacks earlier,
// so the sizes mean nothing there: the tests run without -race only.

// stackConns is how many connections a stack test opens.
const stackConns = 200

// appFrames is the stack that the goroutines serving Conns take above the Conn's calls,
// as an application's own functions would: the package's paths must leave it this much
// of the 1,120 bytes a 2 KiB stack has above its guard.
const appFrames = 128

// underAppFrames calls f with appFrames bytes of stack taken above it.
//
//go:noinline
func underAppFrames(f func()) {
	var frames [appFrames]byte
	keepFrames(frames[:])
	f()
	keepFrames(frames[:])
}

//go:noinline
func keepFrames([]byte) {}

// stackPerConn opens stackConns connections to a server whose handler is serve, and
// returns the growth of the stack memory in use, per connection, once a goroutine for
// each is parked in Conn.Read or Conn.Reader. serve calls done when it is done with the
// connection, which happens once the client closes it.
func stackPerConn(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, done func())) float64 {
	return stackPerConnGreeted(t, serve, nil, nil)
}

// stackPerConnGreeted is stackPerConn with greet written by each client once it is
// upgraded; greeted is called with the clients' connections once every connection is
// open, before the goroutines parked are counted, to wait until the server has read the
// greeting.
func stackPerConnGreeted(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, done func()), greet []byte, greeted func([]net.Conn)) float64 {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, wg.Done)
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	// Warm up: one connection opened and dropped, so that what runs once per process
	// (pools, the poller, net/http's first connection) is not counted.
	wg.Add(1)
	nc := dialUpgraded(t, addr)
	if greet != nil {
		_, err := nc.Write(greet)
		require.NoError(t, err)
	}
	nc.Close()
	wg.Wait()

	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer collectAtStartingStack(t, 2048)()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	conns := make([]net.Conn, 0, stackConns)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	}()
	wg.Add(stackConns)
	for range stackConns {
		nc := dialUpgraded(t, addr)
		conns = append(conns, nc)
		if greet != nil {
			_, err := nc.Write(greet)
			require.NoError(t, err)
		}
	}
	if greeted != nil {
		greeted(conns)
	}
	waitInIO(t, stackConns, "Read", "Reader")
	runtime.ReadMemStats(&after)
	return float64(int64(after.StackInuse)-int64(before.StackInuse)) / stackConns
}

// dialUpgraded opens a connection to addr and completes a WebSocket handshake on it,
// without reading anything past the response.
func dialUpgraded(t *testing.T, addr string) net.Conn {
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = nc.Write(handshakeRequest(http.MethodGet, "HTTP/1.1", addr, http.Header{
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-WebSocket-Key":     {sampleKey},
		"Sec-WebSocket-Version": {"13"},
	}))
	require.NoError(t, err)
	// The response is read a byte at a time, so that nothing past it is taken from the
	// socket; the server sends nothing after it anyway.
	resp, err := http.ReadResponse(bufio.NewReaderSize(oneByteConn{nc}, 16), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return nc
}

// oneByteConn reads at most one byte per call.
type oneByteConn struct{ net.Conn }

func (c oneByteConn) Read(p []byte) (int, error) { return c.Conn.Read(p[:min(len(p), 1)]) }

// collectAtStartingStack runs a collection after which new goroutines start with a stack
// of size bytes, and returns a function to call once the measurement is done. The
// runtime sets the starting size at each collection from the average stack use of the
// goroutines it scans (GODEBUG adaptivestackstart): to make it the least, 2 KiB, the
// collection also scans many goroutines parked with next to nothing on their stacks,
// which stay parked until the returned function is called, so that their stacks are
// neither freed nor reused during the measurement. The collection frees the stacks that
// dead goroutines keep for reuse.
func collectAtStartingStack(t *testing.T, size uint64) (done func()) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() { <-release })
	}
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	require.Equal(t, size, s[0].Value.Uint64(), "the stack size goroutines start with")
	return func() {
		close(release)
		wg.Wait()
	}
}

// waitInIO waits until n goroutines wait for the network (IO wait) in one of the Conn
// methods named, where a served Conn spends its life and its stack is deepest. It yields
// between looks; the test's own deadline bounds the wait.
func waitInIO(t *testing.T, n int, methods ...string) {
	buf := make([]byte, 1<<20)
	for {
		m := runtime.Stack(buf, true)
		if m == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		waiting := 0
		for g := range strings.SplitSeq(string(buf[:m]), "\n\n") {
			if !strings.Contains(g, "[IO wait") {
				continue
			}
			for _, method := range methods {
				if strings.Contains(g, "websocket.(*Conn)."+method+"(") {
					waiting++
					break
				}
			}
		}
		if waiting >= n {
			return
		}
		require.NoError(t, context.Cause(t.Context()), "%d of %d goroutines waiting in %v", waiting, n, methods)
		runtime.Gosched()
	}
}

// fromGoroutine is a handler for stackPerConn that accepts and serves each Conn from a
// goroutine of its own, under appFrames, with read, then closes it.
func fromGoroutine(t *testing.T, read func(*Conn)) func(w http.ResponseWriter, r *http.Request, done func()) {
	return func(w http.ResponseWriter, r *http.Request, done func()) {
		c, err := Accept(w, r, nil)
		if err != nil { // not assert, whose t.Helper would grow the stack itself
			t.Error(err)
			done()
			return
		}
		go underAppFrames(func() {
			defer done()
			defer c.CloseNow()
			read(c)
		})
	}
}

// TestStackPerConn serves Conns in the two ways the package documentation shows, and
// checks each connection's stack against the size it has today: a frame that makes a
// goroutine on the path outgrow it doubles the stack, past the bound. A change that makes
// a stack smaller should lower its figure here.
//
// In the handler, net/http's goroutine for the connection has grown to 4 KiB by the time
// it calls the handler: Accept, and the read that parks, must fit in it. From a goroutine
// of its own, a Conn parked in Read or Reader keeps the 2 KiB a goroutine starts with,
// under appFrames of the application's: the path down to the poller must fit, and so
// must whatever runs below the wait (the read buffer taken from the pool and given back).
//
// The handlers report errors with t.Error, not assert: assert's t.Helper walks the stack
// with runtime.Callers, which would grow the handler's goroutine itself.
func TestStackPerConn(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation changes the stack sizes")
	}
	tests := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request, done func())
		want  float64 // bytes of stack per connection
	}{
		{
			name: "in the handler",
			serve: func(w http.ResponseWriter, r *http.Request, done func()) {
				defer done()
				c, err := Accept(w, r, nil)
				if err != nil { // not assert, whose t.Helper would grow the stack itself
					t.Error(err)
					return
				}
				defer c.CloseNow()
				c.Read(context.Background())
			},
			want: 4096,
		},
		{
			name: "in the handler, reading with the request's context",
			serve: func(w http.ResponseWriter, r *http.Request, done func()) {
				defer done()
				c, err := Accept(w, r, nil)
				if err != nil { // not assert, whose t.Helper would grow the stack itself
					t.Error(err)
					return
				}
				defer c.CloseNow()
				c.Read(r.Context())
			},
			want: 4096,
		},
		{
			name:  "from a goroutine",
			serve: fromGoroutine(t, func(c *Conn) { c.Read(context.Background()) }),
			want:  2048,
		},
		{
			name:  "from a goroutine, with Reader",
			serve: fromGoroutine(t, func(c *Conn) { c.Reader(context.Background()) }),
			want:  2048,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perConn := stackPerConn(t, tt.serve)
			t.Logf("stack per connection: %.0f bytes (expected %.0f)", perConn, tt.want)
			// Halfway to twice the size: noise moves the figure by a few per cent.
			assert.Less(t, perConn, 1.5*tt.want, "a goroutine on the path outgrew its stack")
		})
	}
}

// TestStackPerConnAfterMessage is TestStackPerConn from a goroutine, once the Conn has
// read a small message: waking for it, taking the read buffer, reading the frame and
// unmasking its payload must fit in the 2 KiB stack as the wait does.
func TestStackPerConnAfterMessage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation changes the stack sizes")
	}
	greet := encodeFrame(frame{fin: true, op: opBinary, payload: make([]byte, 64)}, true, 64)
	tests := []struct {
		name string
		read func(c *Conn) // reads one message
	}{
		{"Read", func(c *Conn) { c.Read(context.Background()) }},
		{"Reader", func(c *Conn) {
			_, r, err := c.Reader(context.Background())
			if err != nil {
				return
			}
			p := make([]byte, 128)
			for {
				if _, err := r.Read(p); err != nil {
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var read sync.WaitGroup
			read.Add(stackConns + 1) // and the warm-up connection
			perConn := stackPerConnGreeted(t, func(w http.ResponseWriter, r *http.Request, done func()) {
				c, err := Accept(w, r, nil)
				if err != nil { // not assert, whose t.Helper would grow the stack itself
					t.Error(err)
					read.Done()
					done()
					return
				}
				go underAppFrames(func() {
					defer done()
					defer c.CloseNow()
					tt.read(c)
					read.Done()
					tt.read(c)
				})
			}, greet, func([]net.Conn) { read.Wait() })
			t.Logf("stack per connection: %.0f bytes (expected 2048)", perConn)
			assert.Less(t, perConn, 1.5*2048, "a goroutine on the path outgrew its stack")
		})
	}
}

// TestStackPerConnAfterPong is TestStackPerConn from a goroutine, once the Conn has
// handled a pong while waiting for a message, as an idle Conn that keepalive pings does:
// the control frame is handled, and the wait goes on, within the 2 KiB stack too.
func TestStackPerConnAfterPong(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation changes the stack sizes")
	}
	const payload = "stack"
	greet := encodeFrame(frame{fin: true, op: opPong, payload: []byte(payload)}, true, int64(len(payload)))
	tests := []struct {
		name string
		read func(c *Conn)
	}{
		{"Read", func(c *Conn) { c.Read(context.Background()) }},
		{"Reader", func(c *Conn) { c.Reader(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each Conn waits for the pong as if it had sent a ping with its payload.
			pongs := make(chan chan struct{}, stackConns+1) // and the warm-up connection's
			perConn := stackPerConnGreeted(t, func(w http.ResponseWriter, r *http.Request, done func()) {
				c, err := Accept(w, r, nil)
				if err != nil { // not assert, whose t.Helper would grow the stack itself
					t.Error(err)
					done()
					return
				}
				pong := make(chan struct{})
				c.pingMu.Lock()
				c.pings = map[string]chan struct{}{payload: pong}
				c.pingMu.Unlock()
				pongs <- pong
				go underAppFrames(func() {
					defer done()
					defer c.CloseNow()
					tt.read(c)
				})
			}, greet, func([]net.Conn) {
				for range stackConns + 1 {
					<-<-pongs
				}
			})
			t.Logf("stack per connection: %.0f bytes (expected 2048)", perConn)
			assert.Less(t, perConn, 1.5*2048, "a goroutine on the path outgrew its stack")
		})
	}
}

// TestStackPerConnAfterEcho is TestStackPerConn from a goroutine, once the Conn has
// echoed a small message or answered a ping, as the idle connections of a server do
// before they idle: the write path down to the socket, under the application's read loop
// or under the read that waits for a message, must fit in the 2 KiB stack as the wait
// does, with write coalescing or without.
func TestStackPerConnAfterEcho(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation changes the stack sizes")
	}
	message := encodeFrame(frame{fin: true, op: opBinary, payload: make([]byte, 64)}, true, 64)
	ping := encodeFrame(frame{fin: true, op: opPing, payload: []byte("stack")}, true, 5)
	tests := []struct {
		name     string
		greet    []byte
		echo     func(c *Conn) // echoes the greeting; nil for a ping, which Read answers
		coalesce bool
	}{
		{"Write", message, echoWrite, false},
		{"Write, coalescing", message, echoWrite, true},
		{"Writer", message, echoWriter, false},
		{"Writer, coalescing", message, echoWriter, true},
		// The ping is answered inside Read, which then waits for a message.
		{"ping", ping, nil, false},
		{"ping, coalescing", ping, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var echoed sync.WaitGroup
			if tt.echo != nil {
				echoed.Add(stackConns + 1) // and the warm-up connection
			}
			opts := &AcceptOptions{CoalesceWrites: tt.coalesce}
			perConn := stackPerConnGreeted(t, func(w http.ResponseWriter, r *http.Request, done func()) {
				c, err := Accept(w, r, opts)
				if err != nil { // not assert, whose t.Helper would grow the stack itself
					t.Error(err)
					if tt.echo != nil {
						echoed.Done()
					}
					done()
					return
				}
				go underAppFrames(func() {
					defer done()
					defer c.CloseNow()
					if tt.echo != nil {
						tt.echo(c)
						echoed.Done()
					}
					c.Read(context.Background())
				})
			}, tt.greet, func(conns []net.Conn) {
				if tt.echo != nil {
					echoed.Wait()
					return
				}
				// Each Conn has answered its ping once its client reads the pong.
				pong := encodeFrame(frame{fin: true, op: opPong, payload: []byte("stack")}, false, 5)
				for _, nc := range conns {
					got := make([]byte, len(pong))
					_, err := io.ReadFull(nc, got)
					require.NoError(t, err)
					require.Equal(t, pong, got)
				}
			})
			t.Logf("stack per connection: %.0f bytes (expected 2048)", perConn)
			assert.Less(t, perConn, 1.5*2048, "a goroutine on the path outgrew its stack")
		})
	}
}

// echoWrite echoes a message with Read and Write.
func echoWrite(c *Conn) {
	typ, p, err := c.Read(context.Background())
	if err != nil {
		return
	}
	c.Write(context.Background(), typ, p)
}

// echoWriter echoes a message with Reader and Writer, a piece at a time.
func echoWriter(c *Conn) {
	typ, r, err := c.Reader(context.Background())
	if err != nil {
		return
	}
	w, err := c.Writer(context.Background(), typ)
	if err != nil {
		return
	}
	var p [128]byte
	for {
		n, err := r.Read(p[:])
		w.Write(p[:n])
		if err != nil {
			break
		}
	}
	w.Close()
}
