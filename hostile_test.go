package websocket

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deflated compresses p as one message of permessage-deflate: a DEFLATE stream flushed
// and stripped of its last 4 bytes (RFC 7692 §7.2.1).
func deflated(t testing.TB, p []byte, level int) []byte {
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, level)
	require.NoError(t, err)
	fw.Write(p)
	require.NoError(t, fw.Flush())
	return b.Bytes()[:b.Len()-4]
}

// heapInUse returns the bytes of live heap objects, after two collections: the first
// moves pooled objects to sync.Pool's victim cache, the second frees them.
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// parkedConn closes parked when a Read begins after want bytes were read: its reader
// has consumed them all and waits for more. Only the reading goroutine touches it.
type parkedConn struct {
	net.Conn
	want, got int
	parked    chan struct{}
}

func (c *parkedConn) Read(p []byte) (int, error) {
	if c.got == c.want && c.parked != nil {
		close(c.parked)
		c.parked = nil
	}
	n, err := c.Conn.Read(p)
	c.got += n
	return n, err
}

// messageCost measures the heap each of conns server Conns holds while a goroutine
// waits in Reader or in the Read of a message reader. The peer sends a 64 KiB message,
// which is read, and then, if open is set, announces a 1 MiB frame and sends its first
// 512 bytes. It returns the heap per Conn, everything included: the Conn, its net.Pipe,
// what its reading goroutine holds.
func messageCost(t *testing.T, conns int, mode CompressionMode, open bool) int64 {
	text := wordsOf(64<<10, 1)
	var rsv byte
	first, next := text, wordsOf(512, 2)
	if mode != CompressionDisabled {
		rsv = rsv1
		first = deflated(t, text, flate.BestSpeed)
		next = deflated(t, wordsOf(64<<10, 2), flate.BestSpeed)[:512]
	}
	wire := encodeFrame(frame{fin: true, rsv: rsv, op: opBinary, payload: first}, true, int64(len(first)))
	if open {
		wire = append(wire, encodeFrame(frame{rsv: rsv, op: opBinary, payload: next}, true, defaultReadLimit)...)
	}
	var wg sync.WaitGroup
	var peers []net.Conn
	t.Cleanup(func() {
		for _, p := range peers {
			p.Close()
		}
		wg.Wait()
	})
	before := heapInUse()
	for range conns {
		a, b := net.Pipe()
		peers = append(peers, b)
		pc := &parkedConn{Conn: a, want: len(wire), parked: make(chan struct{})}
		parked := pc.parked
		c := newConn(pc, nil, false, "")
		switch mode {
		case CompressionNoContextTakeover:
			c.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15})
		case CompressionContextTakeover:
			c.useDeflate(deflateParams{peerWindowBits: 15, windowBits: 15})
		}
		wg.Go(func() {
			defer c.CloseNow()
			ctx := context.Background()
			if _, msg, err := c.Read(ctx); err != nil || !bytes.Equal(msg, text) {
				t.Errorf("first message: %v", err)
				return
			}
			_, r, err := c.Reader(ctx)
			var buf [64]byte
			for err == nil {
				_, err = r.Read(buf[:])
			}
		})
		_, err := b.Write(wire)
		require.NoError(t, err)
		<-parked
	}
	after := heapInUse()
	return (after - before) / int64(conns)
}

// TestHostileOpenCompressedMessages measures what an open compressed message holds, on
// top of an open plain one: the decompressor, and with context takeover the window of the
// peer's earlier messages as well. The figures are those doc.go's Compression gives.
func TestHostileOpenCompressedMessages(t *testing.T) {
	conns := 200
	if testing.Short() {
		conns = 50
	}
	idle := messageCost(t, conns, CompressionDisabled, false)
	idleTakeover := messageCost(t, conns, CompressionContextTakeover, false) - idle
	plain := messageCost(t, conns, CompressionDisabled, true)
	noContext := messageCost(t, conns, CompressionNoContextTakeover, true) - plain
	takeover := messageCost(t, conns, CompressionContextTakeover, true) - plain
	t.Logf("per connection: idle %d bytes, open plain message %d bytes", idle, plain)
	t.Logf("more with compression: idle with context takeover %d bytes; open message %d bytes without context takeover, %d with", idleTakeover, noContext, takeover)
	// The bounds allow for the noise of a whole -race run, about 2 KB a connection; a
	// 16 KiB input buffer in the decompressor, for one, would exceed them.
	assert.Less(t, idleTakeover, int64(37<<10), "doc.go, Compression: 32 KiB")
	assert.Less(t, noContext, int64(50<<10), "doc.go, Compression: 45 KiB")
	assert.Less(t, takeover, int64(83<<10), "doc.go, Compression: 77 KiB")
}

// The catalogue of hostile peers. Each entry runs against a server, a Conn from Accept
// behind an httptest.Server, and a client, a Conn from Dial in front of a TCP server the
// test scripts, each over loopback TCP. It asserts what the Conn answers (the close code
// or HTTP status), that the application's call returns, and that goroutines and heap
// return to where they were once the connections are gone. Under -short every entry
// takes a fraction of a second; without it, bombs are bigger and attacks run on several
// connections at once. Many entries repeat tests kept elsewhere next to the code they
// test: here they are in one place, each with what it costs.

// resources is a count of goroutines and the live heap.
type resources struct {
	goroutines int
	heap       int64
}

func takeResources() resources { return resources{runtime.NumGoroutine(), heapInUse()} }

// hangGuard bounds the waits of an attack, the application's included, so that a Conn
// that never answers fails the test instead of hanging it; generous, since it times
// nothing and a shared machine under -race can be slow.
const hangGuard = 30 * time.Second

// heapSlack is how far above its baseline the heap may stay after an attack: a generous
// bound, for what the runtime and the pools keep, that a Conn leaking its read limit's
// worth on each attack would still exceed under the heavy variants.
const heapSlack = 4 << 20

// expectReturned checks that goroutines return to base and the heap to within heapSlack
// of it, waiting a bounded time for both: a connection's goroutines may end after other
// goroutines of the test binary do, so their count alone does not say it is over.
func expectReturned(t *testing.T, base resources) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	heap := heapInUse()
	for (runtime.NumGoroutine() > base.goroutines || heap-base.heap >= heapSlack) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // a bounded wait for goroutines to end, not a synchronisation
		heap = heapInUse()
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), base.goroutines, "goroutines left running")
	assert.Less(t, heap-base.heap, int64(heapSlack), "heap grew by %d bytes", heap-base.heap)
}

// attackScale is how many connections each attack runs on at once, and how big its
// bombs are.
func attackScale() (conns int, bomb int) {
	switch {
	case testing.Short():
		return 1, 8 << 20
	case raceEnabled:
		return 4, 16 << 20 // the race detector slows compress/flate tenfold
	}
	return 8, 64 << 20
}

// guardContext is the context of an application under attack, which hangGuard bounds.
func guardContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// readUntilError is the application of most entries: it reads until the Conn fails.
func readUntilError(ctx context.Context, c *Conn) error {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
}

// hostilePeer is one connection of an attack: the raw peer and the result of the
// application running on the Conn under test.
type hostilePeer struct {
	*rawPeer
	appErr chan error
	sent   chan struct{} // closed once the attack has been sent
}

// hostileApp is the application on the Conn under attack; sent is closed once the
// attack has been sent.
type hostileApp func(ctx context.Context, c *Conn, sent <-chan struct{}) error

// deflateAnswer is the Sec-WebSocket-Extensions value the scripted server answers a
// Dial with compression mode.
func deflateAnswer(mode CompressionMode) string {
	switch mode {
	case CompressionNoContextTakeover:
		return "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	case CompressionContextTakeover:
		return "permessage-deflate; client_no_context_takeover"
	}
	return ""
}

// acceptHostile starts a server Conn under Accept with compression mode and puts a raw
// client in front of it, over loopback TCP; app runs in the handler.
func acceptHostile(t *testing.T, mode CompressionMode, app hostileApp) *hostilePeer {
	t.Helper()
	conns := make(chan *Conn, 1)
	appErr := make(chan error, 1)
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{Compression: mode})
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		c.closeTimeout = 250 * time.Millisecond
		conns <- c
		appErr <- app(guardContext(t), c, sent)
	}))
	t.Cleanup(srv.Close)
	h := upgradeHeader()
	if mode != CompressionDisabled {
		h.Set("Sec-WebSocket-Extensions", "permessage-deflate")
	}
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	_, err = nc.Write(handshakeRequest(http.MethodGet, "HTTP/1.1", srv.Listener.Addr().String(), h))
	require.NoError(t, err)
	// One byte at a time, so that nothing after the response head is taken from the
	// connection before the raw peer reads it.
	resp, err := http.ReadResponse(bufio.NewReaderSize(iotest.OneByteReader(nc), 16), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, mode != CompressionDisabled, resp.Header.Get("Sec-WebSocket-Extensions") != "")
	return &hostilePeer{startRawPeer(t, nc, <-conns), appErr, sent}
}

// dialHostile dials a scripted server with compression mode and makes the server's end
// of the connection a raw peer; app runs on the Conn in a goroutine of its own.
func dialHostile(t *testing.T, mode CompressionMode, app hostileApp) *hostilePeer {
	t.Helper()
	ncs := make(chan net.Conn, 1)
	srv := startRawHTTPServer(t, func(nc net.Conn, req *http.Request) {
		ext := ""
		if a := deflateAnswer(mode); a != "" {
			ext = "Sec-WebSocket-Extensions: " + a + "\r\n"
		}
		_, err := io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+acceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n"+ext+"\r\n")
		if err != nil {
			return
		}
		ncs <- nc
		<-t.Context().Done() // the raw peer has the connection until the test ends
	})
	c, _, err := Dial(waitContext(t), "ws://"+srv.addr, &DialOptions{Compression: mode})
	require.NoError(t, err)
	c.closeTimeout = 250 * time.Millisecond
	p := &hostilePeer{startRawPeer(t, <-ncs, c), make(chan error, 1), make(chan struct{})}
	ctx := guardContext(t)
	go func() { p.appErr <- app(ctx, c, p.sent) }()
	return p
}

// answer is what the Conn under attack sent until its close frame.
type answer struct {
	close  *frame // the close frame, nil if the connection ended without one
	pongs  int    // pongs before it
	others []frame
}

// watch reads the frames the Conn sends as they come, so that a Conn answering pings is
// never held up by a test busy with another connection, until the close frame or the
// end of the connection, and reports them.
func (p *hostilePeer) watch() <-chan answer {
	done := make(chan answer, 1)
	go func() {
		var a answer
		defer func() { done <- a }()
		for f := range p.frames {
			switch f.op {
			case opPong:
				a.pongs++
			case opClose:
				a.close = &f
				return
			default:
				a.others = append(a.others, f)
			}
		}
	}()
	return done
}

// appResult returns what the application's call returned, failing the test if it never
// returns.
func (p *hostilePeer) appResult() error {
	p.t.Helper()
	select {
	case err := <-p.appErr:
		return err
	case <-time.After(hangGuard):
		require.FailNow(p.t, "the application's call did not return")
	}
	return nil
}

// attack is an entry of the catalogue: what a hostile peer does to a Conn.
type attack struct {
	name string
	mode CompressionMode
	// send has the raw peer send its attack; bomb is the decompressed size of a
	// decompression bomb.
	send func(p *hostilePeer, bomb int)
	// code is the close code the Conn must send; 0 when it sends none.
	code StatusCode
	// app is the application on the Conn; readUntilError when nil.
	app hostileApp
	// check makes further checks on the application's error and the pongs received
	// before the close frame; when nil, the error must be a *ProtocolError with code.
	check func(t *testing.T, p *hostilePeer, err error, pongs int)
}

// frames returns a send function for fixed frames.
func frames(fs ...frame) func(*hostilePeer, int) {
	return func(p *hostilePeer, _ int) { p.send(fs...) }
}

// zeroBombs holds the bombs made, by size: the heavy variants would spend seconds
// compressing each again.
var zeroBombs sync.Map

// zeroBomb is a compressed message of n zero bytes, at the best ratio compress/flate has.
func zeroBomb(t testing.TB, n int) []byte {
	if b, ok := zeroBombs.Load(n); ok {
		return b.([]byte)
	}
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for ; n > 0; n -= len(zeros) {
		fw.Write(zeros[:min(n, len(zeros))])
	}
	require.NoError(t, fw.Flush())
	bomb := b.Bytes()[:b.Len()-4]
	zeroBombs.Store(n, bomb)
	return bomb
}

func closeWith(code int, reason string) frame {
	return frame{fin: true, op: opClose, payload: append([]byte{byte(code >> 8), byte(code)}, reason...)}
}

var attacks = []attack{
	{name: "RSV1 without an extension", send: frames(frame{fin: true, rsv: rsv1, op: opText, payload: []byte("x")}), code: StatusProtocolError},
	{name: "RSV2", send: frames(frame{fin: true, rsv: rsv2, op: opBinary}), code: StatusProtocolError},
	{name: "RSV3 on a ping", send: frames(frame{fin: true, rsv: rsv3, op: opPing}), code: StatusProtocolError},
	{name: "RSV2 with compression", mode: CompressionNoContextTakeover, send: frames(frame{fin: true, rsv: rsv1 | rsv2, op: opBinary}), code: StatusProtocolError},
	{name: "reserved data opcode 3", send: frames(frame{fin: true, op: 3}), code: StatusProtocolError},
	{name: "reserved control opcode 11", send: frames(frame{fin: true, op: 11}), code: StatusProtocolError},
	{name: "ping of 126 bytes", send: func(p *hostilePeer, _ int) {
		p.write(encodeFrame(frame{fin: true, op: opPing, payload: payloadOf(126)}, p.masks, 126))
	}, code: StatusProtocolError},
	{name: "close of 126 bytes", send: func(p *hostilePeer, _ int) {
		p.write(encodeFrame(closeWith(1000, string(payloadOf(124))), p.masks, 126))
	}, code: StatusProtocolError},
	{name: "fragmented ping", send: frames(frame{op: opPing, payload: []byte("x")}, frame{fin: true, op: opContinuation}), code: StatusProtocolError},
	{name: "fragmented close", send: frames(frame{op: opClose, payload: []byte{3, 232}}), code: StatusProtocolError},
	{name: "wrong masking", send: func(p *hostilePeer, _ int) {
		p.write(encodeFrame(frame{fin: true, op: opText, payload: []byte("x")}, !p.masks, 1))
	}, code: StatusProtocolError},
	{name: "close code 1005 on the wire", send: frames(closeWith(1005, "")), code: StatusProtocolError},
	{name: "close code 999", send: frames(closeWith(999, "")), code: StatusProtocolError},
	{name: "close code 5000", send: frames(closeWith(5000, "")), code: StatusProtocolError},
	{name: "close with 1 byte", send: frames(frame{fin: true, op: opClose, payload: []byte{3}}), code: StatusProtocolError},
	{name: "close reason not UTF-8", send: frames(closeWith(1000, "bye \xff")), code: StatusInvalidFramePayloadData},
	{name: "text not UTF-8", send: frames(frame{fin: true, op: opText, payload: []byte("ok \xed\xa0\x80")}), code: StatusInvalidFramePayloadData},
	{name: "header announcing a frame over the limit", send: func(p *hostilePeer, _ int) {
		p.write(encodeFrame(frame{fin: true, op: opBinary}, p.masks, defaultReadLimit+1))
	}, code: StatusMessageTooBig},
	{name: "header announcing 2^63-1 bytes", send: func(p *hostilePeer, _ int) {
		p.write(encodeFrame(frame{fin: true, op: opBinary}, p.masks, math.MaxInt64))
	}, code: StatusMessageTooBig},
	{name: "fragments adding up past the limit", send: func(p *hostilePeer, _ int) {
		chunk := payloadOf(64 << 10)
		p.send(frame{op: opBinary, payload: chunk})
		for range defaultReadLimit / len(chunk) {
			p.send(frame{op: opContinuation, payload: chunk})
		}
	}, code: StatusMessageTooBig},
	{name: "endless empty continuation frames", send: func(p *hostilePeer, _ int) {
		var wire []byte
		wire = append(wire, p.encode(frame{op: opText})...)
		for range 4 * maxEmptyFrames {
			wire = append(wire, p.encode(frame{op: opContinuation})...)
		}
		p.write(wire)
	}, code: StatusPolicyViolation},
	{name: "decompression bomb, no context takeover", mode: CompressionNoContextTakeover, send: func(p *hostilePeer, bomb int) {
		p.send(frame{fin: true, rsv: rsv1, op: opBinary, payload: zeroBomb(p.t, bomb)})
	}, code: StatusMessageTooBig},
	{name: "decompression bomb, context takeover", mode: CompressionContextTakeover, send: func(p *hostilePeer, bomb int) {
		// A message that fills the window first, so that the bomb can refer to it.
		p.send(frame{fin: true, rsv: rsv1, op: opBinary, payload: zeroBomb(p.t, 32<<10)})
		p.send(frame{fin: true, rsv: rsv1, op: opBinary, payload: zeroBomb(p.t, bomb)})
	}, code: StatusMessageTooBig},
	{name: "decompression bomb in 1-byte frames", mode: CompressionNoContextTakeover, send: func(p *hostilePeer, _ int) {
		b := zeroBomb(p.t, 4<<20) // 4 KiB in as many frames
		var wire []byte
		wire = append(wire, p.encode(frame{rsv: rsv1, op: opBinary, payload: b[:1]})...)
		for i := 1; i < len(b); i++ {
			wire = append(wire, p.encode(frame{fin: i == len(b)-1, op: opContinuation, payload: b[i : i+1]})...)
		}
		p.write(wire)
	}, code: StatusMessageTooBig},
	{name: "compressed data that is not DEFLATE", mode: CompressionContextTakeover, send: frames(frame{fin: true, rsv: rsv1, op: opBinary, payload: []byte{0x07, 0x00}}), code: StatusInvalidFramePayloadData},
	{
		name: "pings while the application does not read",
		send: func(p *hostilePeer, bomb int) {
			// The first 64 pings are in the socket before the application reads; the rest,
			// 32,768 in the heavy variant, arrive as it reads.
			ping := p.encode(frame{fin: true, op: opPing, payload: payloadOf(125)})
			_, err := p.nc.Write(bytes.Repeat(ping, 64))
			require.NoError(p.t, err)
			p.write(append(bytes.Repeat(ping, bomb>>12), p.encode(closeWith(1000, "done"))...))
		},
		app: func(ctx context.Context, c *Conn, sent <-chan struct{}) error {
			<-sent
			return readUntilError(ctx, c)
		},
		code: StatusNormalClosure,
		check: func(t *testing.T, p *hostilePeer, err error, pongs int) {
			assert.Equal(t, StatusNormalClosure, CloseStatus(err), "%v", err)
			assert.Positive(t, pongs, "the pings were not answered")
		},
	},
	{
		name: "peer that never answers the close frame",
		send: func(p *hostilePeer, _ int) {},
		app: func(ctx context.Context, c *Conn, _ <-chan struct{}) error {
			return c.Close(StatusNormalClosure, "bye")
		},
		code: StatusNormalClosure,
		check: func(t *testing.T, p *hostilePeer, err error, _ int) {
			assert.ErrorIs(t, err, net.ErrClosed)
			assert.Equal(t, StatusCode(-1), CloseStatus(err))
		},
	},
	{
		name: "reset in the middle of a frame",
		send: func(p *hostilePeer, _ int) {
			wire := encodeFrame(frame{fin: true, op: opBinary, payload: payloadOf(1000)}, p.masks, 1000)
			_, err := p.nc.Write(wire[:500])
			require.NoError(p.t, err)
			require.NoError(p.t, p.nc.(*net.TCPConn).SetLinger(0)) // Close sends a reset
			p.nc.Close()
		},
		check: func(t *testing.T, p *hostilePeer, err error, _ int) {
			assert.ErrorIs(t, err, net.ErrClosed)
			assert.Equal(t, StatusCode(-1), CloseStatus(err))
			assert.Zero(t, protocolCode(err))
		},
	},
}

func TestHostilePeers(t *testing.T) {
	conns, bomb := attackScale()
	for _, n := range []int{bomb, 32 << 10, 4 << 20} {
		zeroBomb(t, n) // made now: compressing a bomb takes seconds, longer than a read waits
	}
	for _, role := range []struct {
		name  string
		start func(*testing.T, CompressionMode, hostileApp) *hostilePeer
	}{
		{"server", acceptHostile},
		{"client", dialHostile},
	} {
		t.Run(role.name, func(t *testing.T) {
			// Every attack must return to the same baseline: one taken before each would
			// count what the previous one had not yet let go of.
			base := takeResources()
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) {
					// The attack runs in a test of its own, whose cleanups, which hold its
					// connections, are gone once it returns.
					t.Run(fmt.Sprintf("%d connections", conns), func(t *testing.T) {
						runAttack(t, a, role.start, conns, bomb)
					})
					// Running an attack's test adds one goroutine to the base: its own.
					expectReturned(t, resources{base.goroutines + 1, base.heap})
				})
			}
		})
	}
}

// runAttack runs a on conns connections at once and checks what the Conns did.
func runAttack(t *testing.T, a attack, start func(*testing.T, CompressionMode, hostileApp) *hostilePeer, conns, bomb int) {
	app := a.app
	if app == nil {
		app = func(ctx context.Context, c *Conn, _ <-chan struct{}) error { return readUntilError(ctx, c) }
	}
	peers := make([]*hostilePeer, conns)
	answers := make([]<-chan answer, conns)
	for i := range peers {
		peers[i] = start(t, a.mode, app)
		answers[i] = peers[i].watch()
	}
	for _, p := range peers {
		a.send(p, bomb)
		close(p.sent)
	}
	for i, p := range peers {
		var ans answer
		select {
		case ans = <-answers[i]:
		case <-time.After(hangGuard):
			require.FailNow(t, "the Conn neither sent a close frame nor closed the connection")
		}
		assert.Empty(t, ans.others, "frames other than pongs before the close frame")
		if a.code != 0 && assert.NotNil(t, ans.close, "no close frame") {
			assert.Equal(t, a.code, ans.close.closeCode(), "close reason %q", ans.close.payload)
		}
		err := p.appResult()
		require.Error(t, err)
		if a.check != nil {
			a.check(t, p, err, ans.pongs)
			continue
		}
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.Equal(t, a.code, protocolCode(err), "%v", err)
	}
}

// TestHostileHandshakes sends Accept requests that a hostile or broken client sends: each
// is refused with its HTTP status, or accepted without the extension it cannot have.
func TestHostileHandshakes(t *testing.T) {
	offers := 1000
	if !testing.Short() {
		offers = 10000
	}
	repeat := func(offer string, n int, last string) string {
		return strings.Repeat(offer+", ", n-1) + last
	}
	tests := []struct {
		name      string
		method    string // GET if empty
		edit      func(h http.Header)
		opts      *AcceptOptions
		status    int
		extension string // the Sec-WebSocket-Extensions the 101 response carries
	}{
		{name: "POST", method: http.MethodPost, status: http.StatusMethodNotAllowed},
		{name: "CONNECT", method: http.MethodConnect, status: http.StatusMethodNotAllowed},
		{name: "no key", edit: func(h http.Header) { h.Del("Sec-WebSocket-Key") }, status: http.StatusBadRequest},
		{name: "key not base64", edit: func(h http.Header) { h.Set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==") }, status: http.StatusBadRequest},
		{name: "key of 64 KiB", edit: func(h http.Header) { h.Set("Sec-WebSocket-Key", strings.Repeat("A", 64<<10)) }, status: http.StatusBadRequest},
		{name: "version 12", edit: func(h http.Header) { h.Set("Sec-WebSocket-Version", "12") }, status: http.StatusUpgradeRequired},
		{name: "version 13 twice", edit: func(h http.Header) { h.Add("Sec-WebSocket-Version", "13") }, status: http.StatusUpgradeRequired},
		{name: "foreign origin", edit: func(h http.Header) { h.Set("Origin", "https://evil.example") }, status: http.StatusForbidden},
		{name: "origin not a URL", edit: func(h http.Header) { h.Set("Origin", "http://[::1") }, status: http.StatusForbidden},
		{
			name: fmt.Sprintf("%d extension offers, none acceptable", offers),
			edit: func(h http.Header) {
				h.Set("Sec-WebSocket-Extensions", repeat("permessage-deflate; server_max_window_bits=7", offers, "x-unknown"))
			},
			opts:   &AcceptOptions{Compression: CompressionContextTakeover},
			status: http.StatusSwitchingProtocols,
		},
		{
			name: fmt.Sprintf("%d extension offers, the last acceptable", offers),
			edit: func(h http.Header) {
				h.Set("Sec-WebSocket-Extensions", repeat("x-unknown; a=1", offers, "permessage-deflate"))
			},
			opts:      &AcceptOptions{Compression: CompressionContextTakeover},
			status:    http.StatusSwitchingProtocols,
			extension: "permessage-deflate",
		},
		{
			name: "malformed extension parameters",
			edit: func(h http.Header) {
				h.Set("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits==10, permessage-deflate")
			},
			opts:   &AcceptOptions{Compression: CompressionContextTakeover},
			status: http.StatusSwitchingProtocols,
		},
		{
			name: "extension parameter of 64 KiB",
			edit: func(h http.Header) {
				h.Set("Sec-WebSocket-Extensions", "permessage-deflate; x="+strings.Repeat("a", 64<<10))
			},
			opts:   &AcceptOptions{Compression: CompressionContextTakeover},
			status: http.StatusSwitchingProtocols,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := takeResources()
			t.Run("request", func(t *testing.T) {
				srv, results := newAcceptServer(t, tt.opts)
				h := upgradeHeader()
				if tt.edit != nil {
					tt.edit(h)
				}
				resp, _, _ := sendRaw(t, srv, handshakeRequest(cmp.Or(tt.method, http.MethodGet), "HTTP/1.1", srv.Listener.Addr().String(), h))
				assert.Equal(t, tt.status, resp.StatusCode)
				a := receiveAccepted(t, results)
				if tt.status != http.StatusSwitchingProtocols {
					requireRefused(t, a, tt.status)
					return
				}
				require.NoError(t, a.err)
				assert.Equal(t, tt.extension, strings.SplitN(resp.Header.Get("Sec-WebSocket-Extensions"), ";", 2)[0])
			})
			expectReturned(t, base)
		})
	}
}

// TestHostileHandshakeResponses answers Dial as a hostile or broken server does: Dial
// must fail with a clear error, within its bounds, and leave nothing running.
func TestHostileHandshakeResponses(t *testing.T) {
	accept := func(req *http.Request) string { return acceptKey(req.Header.Get("Sec-WebSocket-Key")) }
	tests := []struct {
		name    string
		opts    *DialOptions
		respond func(nc net.Conn, req *http.Request)
		check   func(t *testing.T, err error)
	}{
		{
			name: "refusal with a body",
			respond: func(nc net.Conn, _ *http.Request) {
				io.WriteString(nc, "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nno thanks")
			},
			check: func(t *testing.T, err error) {
				var he *HandshakeError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, http.StatusForbidden, he.Status)
				assert.Contains(t, he.Reason, "no thanks")
			},
		},
		{
			name: "wrong Sec-WebSocket-Accept",
			respond: func(nc net.Conn, _ *http.Request) {
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+sampleAccept+"\r\n\r\n")
			},
			check: func(t *testing.T, err error) {
				var he *HandshakeError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, http.StatusSwitchingProtocols, he.Status)
			},
		},
		{
			name: "extension not offered",
			respond: func(nc net.Conn, req *http.Request) {
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+accept(req)+"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
			},
			check: func(t *testing.T, err error) { require.Error(t, err) },
		},
		{
			name: "not HTTP",
			respond: func(nc net.Conn, _ *http.Request) {
				io.WriteString(nc, "SSH-2.0-OpenSSH_9.6\r\n")
			},
			check: func(t *testing.T, err error) { require.Error(t, err) },
		},
		{
			name: "endless response head",
			respond: func(nc net.Conn, req *http.Request) {
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\n")
				line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
				for {
					if _, err := nc.Write(line); err != nil {
						return // Dial gave up and closed the connection
					}
				}
			},
			check: func(t *testing.T, err error) { assert.ErrorIs(t, err, errResponseHead) },
		},
		{
			name: "response head never finished",
			opts: &DialOptions{HandshakeTimeout: 100 * time.Millisecond},
			respond: func(nc net.Conn, _ *http.Request) {
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs")
			},
			check: func(t *testing.T, err error) { assert.ErrorIs(t, err, context.DeadlineExceeded) },
		},
		{
			name: "close in the middle of the response head",
			respond: func(nc net.Conn, _ *http.Request) {
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs")
				nc.Close()
			},
			check: func(t *testing.T, err error) { require.Error(t, err) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := takeResources()
			t.Run("dial", func(t *testing.T) {
				srv := startRawHTTPServer(t, tt.respond)
				c, _, err := Dial(waitContext(t), "ws://"+srv.addr, tt.opts)
				assert.Nil(t, c)
				tt.check(t, err)
			})
			expectReturned(t, base)
		})
	}
}
