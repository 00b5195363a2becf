package websocket

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file holds what the Autobahn testsuite (see examples/autobahn) requires of a
// WebSocket implementation, checked without Docker and in both roles. A raw peer plays
// the suite: it sends each case's bytes to a Conn whose only job is to echo, as the
// suite's testees do, and checks what comes back as the suite's strict verdict does:
// echoes byte for byte, the close code, and that the TCP connection is closed promptly
// and by the right side. Tests and cases are grouped and named after the suite's
// categories; numbers refer to its cases.

// confCase is one case: what the peer sends, and what the Conn must answer.
type confCase struct {
	name string
	send [][]byte // the peer's writes, in order
	want []frame  // what comes back first: messages (reassembled) and control frames

	// fail is the close code the Conn must fail the connection with after want. after is
	// sent only once that close frame has arrived: a Conn that waited for it to fail
	// would time out.
	fail  StatusCode
	after [][]byte

	// closed is the code the Conn echoes when the peer's close frame is in send
	// (StatusNoStatusReceived for an empty close); when it and fail are zero, the peer
	// closes with 1000 after want.
	closed StatusCode

	// make, when set, builds send and want in the subtest, so that large payloads are
	// not all held at once.
	make func() (send [][]byte, want []frame)

	stream     bool // echo through Reader and Writer instead of Read and Write
	fragmented bool // each echoed message must come in more than one frame
}

// confRoles are the two roles of the Conn under test.
var confRoles = []struct {
	name         string
	connIsClient bool
}{{"server", false}, {"client", true}}

// runConformance runs the cases that build returns for each role of the Conn. build is
// told whether the peer masks what it sends, that is, whether the Conn is a server.
func runConformance(t *testing.T, build func(w confWire) []confCase) {
	for _, role := range confRoles {
		t.Run(role.name, func(t *testing.T) {
			// A case spends much of its time handing bytes from goroutine to goroutine:
			// side by side, the two roles take little longer than one.
			t.Parallel()
			for _, c := range build(confWire{masked: !role.connIsClient}) {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, func(t *testing.T, stream bool) *confPeer { return newConfPeer(t, role.connIsClient, stream) })
				})
			}
		})
	}
}

// run runs the case against a peer that newPeer makes, its Conn echoing through Reader
// and Writer when stream is set.
func (c confCase) run(t *testing.T, newPeer func(t *testing.T, stream bool) *confPeer) {
	if c.make != nil {
		c.send, c.want = c.make()
	}
	p := newPeer(t, c.stream)
	p.sendAll(c.send)
	for i, w := range c.want {
		got, frames := p.nextMessage()
		require.Equal(t, w.op, got.op, "answer %d: got %v %q", i, got.op, clipped(got.payload))
		requireSameBytes(t, w.payload, got.payload, "answer %d (%v)", i, w.op)
		if c.fragmented && !w.op.isControl() {
			assert.Greater(t, frames, 1, "answer %d (%v) came in one frame", i, w.op)
		}
	}
	if c.fail != 0 {
		f := p.nextFrame()
		require.Equal(t, opClose, f.op, "expected a close frame with %d, got %v %q", c.fail, f.op, clipped(f.payload))
		require.Equal(t, c.fail, f.closeCode(), "close reason %q", f.payload)
		p.sendAll(c.after)
		p.expectEnd()
		err := p.echoErr()
		assert.Equal(t, c.fail, protocolCode(err), "the echo loop ended with %v", err)
		assert.ErrorIs(t, err, net.ErrClosed)
		return
	}
	code := c.closed
	if code == 0 {
		code = StatusNormalClosure
		p.sendAll(p.encodeAll(confClose(1000, "")))
	}
	p.finishClose(code)
}

// confPeer is a raw peer in front of a Conn that echoes every message it reads.
type confPeer struct {
	*rawPeer
	connIsClient bool
	echoDone     chan struct{}
	echoEnd      error         // what ended the echo loop, set before echoDone closes
	sent         chan struct{} // closed once the writes queued so far are handed on
}

func newConfPeer(t *testing.T, connIsClient, stream bool) *confPeer {
	return confPeerOn(t, newRawPeer(t, connIsClient), connIsClient, stream)
}

// confPeerOn starts the echo loop on rp's Conn.
func confPeerOn(t *testing.T, rp *rawPeer, connIsClient, stream bool) *confPeer {
	p := &confPeer{
		rawPeer:      rp,
		connIsClient: connIsClient,
		echoDone:     make(chan struct{}),
		sent:         make(chan struct{}),
	}
	close(p.sent)
	// A wait of the closing handshake that only a timer ends must fail the bounded waits
	// below rather than pass late: the suite times closes too.
	p.conn.closeTimeout = time.Minute
	p.conn.SetReadLimit(16 << 20) // as the examples/autobahn testees, for the 9.x cases
	echo := confEcho
	if stream {
		echo = confEchoStream
	}
	go func() {
		defer close(p.echoDone)
		p.echoEnd = echo(p.conn)
	}()
	// Runs before the raw peer's cleanup, which needs the sending goroutines gone.
	t.Cleanup(func() {
		p.conn.CloseNow()
		<-p.echoDone
		<-p.sent
	})
	return p
}

// confEcho is the suite's echo testee: every message is read whole and written back.
func confEcho(c *Conn) error {
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return err
		}
	}
}

// confEchoStream echoes each message as it streams in, through Reader and Writer: the
// Writer's buffer splits the echo into frames.
func confEchoStream(c *Conn) error {
	ctx := context.Background()
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return err
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
}

// sendAll has writes written in order, after those of earlier calls, by a goroutine: the
// test reads the answers meanwhile, so a Conn blocked on sending one never holds up the
// peer's writes.
func (p *confPeer) sendAll(writes [][]byte) {
	prev, done := p.sent, make(chan struct{})
	p.sent = done
	go func() {
		defer close(done)
		<-prev
		for _, b := range writes {
			p.write(b)
		}
	}()
}

// encodeAll returns the frames as this peer writes them, in one write.
func (p *confPeer) encodeAll(fs ...frame) [][]byte {
	return confWire{masked: p.masks}.oneWrite(fs...)
}

// confWait bounds the wait for an answer. It is long because a loaded machine running
// the race detector can take seconds to move a 16 MiB message through both ends.
const confWait = 30 * time.Second

// nextFrame returns the next frame the Conn sent, failing the test if the connection
// ended or nothing came within confWait.
func (p *confPeer) nextFrame() frame {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			require.FailNow(p.t, fmt.Sprintf("connection ended while a frame was expected: %v", <-p.ended))
		}
		require.Zero(p.t, f.rsv, "%v frame with reserved bits set", f.op)
		return f
	case <-time.After(confWait):
		require.FailNow(p.t, fmt.Sprintf("no frame within %v", confWait))
	}
	return frame{}
}

// nextMessage returns the next control frame the Conn sent, or the next data message
// reassembled from its frames, with the number of frames it took.
func (p *confPeer) nextMessage() (frame, int) {
	p.t.Helper()
	f := p.nextFrame()
	if f.op.isControl() || f.fin {
		return f, 1
	}
	msg := frame{fin: true, op: f.op, payload: f.payload}
	for n := 2; ; n++ {
		g := p.nextFrame()
		require.Equal(p.t, opContinuation, g.op, "frame %d of a fragmented %v message", n, f.op)
		msg.payload = append(msg.payload, g.payload...)
		if g.fin {
			return msg, n
		}
	}
}

// echoErr returns the error that ended the echo loop.
func (p *confPeer) echoErr() error {
	p.t.Helper()
	select {
	case <-p.echoDone:
		return p.echoEnd
	case <-time.After(5 * time.Second):
		require.FailNow(p.t, "the echo loop is still running after 5s")
	}
	return nil
}

// finishClose checks the Conn's answer to the peer's close frame, already sent, and the
// end of the TCP connection. RFC 6455 §7.1.1: the server closes TCP as soon as it has
// sent its close frame; the client waits for the server to do it.
func (p *confPeer) finishClose(code StatusCode) {
	p.t.Helper()
	f := p.nextFrame()
	require.Equal(p.t, opClose, f.op, "expected the close frame echoed, got %v %q", f.op, clipped(f.payload))
	if code == StatusNoStatusReceived {
		// An empty close may be answered by an empty one or by 1000.
		if len(f.payload) > 0 {
			assert.Equal(p.t, StatusNormalClosure, f.closeCode(), "answer to an empty close frame")
		}
	} else {
		assert.Equal(p.t, code, f.closeCode(), "the close code is echoed")
	}
	if p.connIsClient {
		// The client must still be reading: it has left closing TCP to the server. What
		// it reads now it discards, so this ping is not answered.
		p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := p.nc.Write(p.encode(frame{fin: true, op: opPing, payload: []byte("still open?")}))
		require.NoError(p.t, err, "the client stopped reading before the server closed TCP")
		select {
		case <-p.echoDone:
			p.t.Fatalf("the client returned before the server closed TCP: %v", p.echoEnd)
		default:
		}
		p.nc.Close()
		select {
		case f, ok := <-p.frames:
			require.False(p.t, ok, "unexpected frame %v %q after the close frame", f.op, clipped(f.payload))
		case <-time.After(5 * time.Second):
			require.FailNow(p.t, "the peer's read did not end")
		}
	} else {
		p.expectEnd()
	}
	err := p.echoErr()
	assert.Equal(p.t, code, CloseStatus(err), "the echo loop ended with %v", err)
	assert.ErrorIs(p.t, err, net.ErrClosed)
}

// requireSameBytes compares payloads that may be megabytes long without printing them.
func requireSameBytes(t *testing.T, want, got []byte, msgAndArgs ...any) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	require.Fail(t, fmt.Sprintf("payloads differ: want %d bytes, got %d; first difference at byte %d: want %q, got %q",
		len(want), len(got), i, clipped(want[i:]), clipped(got[i:])), msgAndArgs...)
}

// clipped returns the start of b, for messages.
func clipped(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// confWire turns frames into the peer's writes.
type confWire struct {
	masked bool // the peer is a client
}

func (w confWire) encode(fs ...frame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, encodeFrame(f, w.masked, int64(len(f.payload)))...)
	}
	return b
}

func (w confWire) oneWrite(fs ...frame) [][]byte { return [][]byte{w.encode(fs...)} }

func (w confWire) perFrame(fs ...frame) [][]byte {
	writes := make([][]byte, len(fs))
	for i, f := range fs {
		writes[i] = w.encode(f)
	}
	return writes
}

// chopped returns the frames' bytes in writes of n bytes, the suite's "chops".
func (w confWire) chopped(n int, fs ...frame) [][]byte { return confChop(w.encode(fs...), n) }

func confChop(b []byte, n int) [][]byte {
	var writes [][]byte
	for len(b) > 0 {
		m := min(n, len(b))
		writes = append(writes, b[:m])
		b = b[m:]
	}
	return writes
}

// confDeliveries are the ways the suite delivers the same frames.
var confDeliveries = []struct {
	name  string
	split func(w confWire, fs ...frame) [][]byte
}{
	{"in one write", confWire.oneWrite},
	{"frame by frame", confWire.perFrame},
	{"in 1-byte writes", func(w confWire, fs ...frame) [][]byte { return w.chopped(1, fs...) }},
}

func confText(s string) frame   { return frame{fin: true, op: opText, payload: []byte(s)} }
func confBinary(b []byte) frame { return frame{fin: true, op: opBinary, payload: b} }
func confPing(s string) frame   { return frame{fin: true, op: opPing, payload: []byte(s)} }
func confPong(s string) frame   { return frame{fin: true, op: opPong, payload: []byte(s)} }

func confClose(code int, reason string) frame {
	return frame{fin: true, op: opClose, payload: append([]byte{byte(code >> 8), byte(code)}, reason...)}
}

// confMessage returns a message of n bytes of the type: ASCII text, or binary that takes
// every byte value. The payload repeats its first 6656 bytes, a whole number of
// alphabets: copying them is much faster under the race detector than a loop over each
// byte.
func confMessage(op opcode, n int) frame {
	const period = 26 * 256
	b := make([]byte, n)
	for i := range b[:min(n, period)] {
		if op == opText {
			b[i] = 'a' + byte(i%26)
		} else {
			b[i] = byte(i*31 + i/256)
		}
	}
	for done := period; done < n; done *= 2 {
		copy(b[done:], b[:done])
	}
	return frame{fin: true, op: op, payload: b}
}

// confFragments splits a message into frames of at most size bytes.
func confFragments(m frame, size int) []frame {
	var fs []frame
	op := m.op
	for p := m.payload; ; {
		n := min(size, len(p))
		fs = append(fs, frame{fin: n == len(p), op: op, payload: p[:n]})
		p = p[n:]
		op = opContinuation
		if len(p) == 0 {
			return fs
		}
	}
}

// 1.x: text and binary messages of every length form, delivered whole and chopped.
func TestConformanceFraming(t *testing.T) { runConformance(t, confFramingCases) }

func confFramingCases(w confWire) []confCase {
	var cases []confCase
	for _, op := range []opcode{opText, opBinary} {
		for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
			m := confMessage(op, n)
			cases = append(cases, confCase{name: fmt.Sprintf("%v of %d bytes", op, n), send: w.oneWrite(m), want: []frame{m}})
		}
		for _, tc := range []struct{ n, chop int }{{65536, 997}, {128, 1}, {65536, 1}} {
			m := confMessage(op, tc.n)
			cases = append(cases, confCase{
				name: fmt.Sprintf("%v of %d bytes in %d-byte writes", op, tc.n, tc.chop),
				send: w.chopped(tc.chop, m), want: []frame{m},
			})
		}
		two := []frame{confMessage(op, 300), confMessage(op, 70000)}
		cases = append(cases, confCase{name: fmt.Sprintf("two %v messages in one write", op), send: w.oneWrite(two...), want: two})
	}
	return cases
}

// 2.x: pings are answered with the same payload, pongs nobody asked for are ignored.
func TestConformancePingPong(t *testing.T) { runConformance(t, confPingPongCases) }

func confPingPongCases(w confWire) []confCase {
	binPayload := string([]byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff})
	ping125 := string(payloadOf(125))
	var tenPings, tenPongs []frame
	for i := range 10 {
		tenPings = append(tenPings, confPing(fmt.Sprintf("ping %d", i)))
		tenPongs = append(tenPongs, confPong(fmt.Sprintf("ping %d", i)))
	}
	return []confCase{
		{name: "2.1 ping without payload", send: w.oneWrite(confPing("")), want: []frame{confPong("")}},
		{name: "2.2 ping with text payload", send: w.oneWrite(confPing("Hello, world!")), want: []frame{confPong("Hello, world!")}},
		{name: "2.3 ping with binary payload", send: w.oneWrite(confPing(binPayload)), want: []frame{confPong(binPayload)}},
		{name: "2.4 ping of 125 bytes", send: w.oneWrite(confPing(ping125)), want: []frame{confPong(ping125)}},
		{name: "2.5 ping of 126 bytes", send: w.oneWrite(confPing(string(payloadOf(126)))), fail: StatusProtocolError},
		{name: "2.6 ping of 125 bytes in 1-byte writes", send: w.chopped(1, confPing(ping125)), want: []frame{confPong(ping125)}},
		{name: "2.7 unsolicited pong without payload", send: w.perFrame(confPong(""), confText("after")), want: []frame{confText("after")}},
		{name: "2.8 unsolicited pong with payload", send: w.perFrame(confPong("unsolicited"), confText("after")), want: []frame{confText("after")}},
		{name: "2.9 unsolicited pong, then ping", send: w.perFrame(confPong("unsolicited"), confPing("solicited")), want: []frame{confPong("solicited")}},
		{name: "2.10 ten pings", send: w.perFrame(tenPings...), want: tenPongs},
		{name: "2.11 ten pings in 1-byte writes", send: w.chopped(1, tenPings...), want: tenPongs},
		{name: "ping between messages", send: w.perFrame(confText("a"), confPing("p"), confBinary([]byte("b"))),
			want: []frame{confText("a"), confPong("p"), confBinary([]byte("b"))}},
		{name: "ping, then close", send: w.perFrame(confPing("last"), confClose(1000, "")),
			want: []frame{confPong("last")}, closed: StatusNormalClosure},
	}
}

// 3.x: reserved bits fail the connection; what came before is echoed, what comes after
// is not answered.
func TestConformanceReservedBits(t *testing.T) { runConformance(t, confReservedBitsCases) }

func confReservedBitsCases(w confWire) []confCase {
	var cases []confCase
	bad := []frame{
		{fin: true, op: opText, payload: []byte("reserved")},
		{fin: true, op: opBinary, payload: []byte{0xff, 0x00}},
		{fin: true, op: opPing, payload: []byte("reserved")},
		confClose(1000, ""),
	}
	for rsv := byte(1); rsv <= 7; rsv++ {
		for i, f := range bad {
			f.rsv = rsv << 4 // RSV1 is the value 4, RSV3 the value 1
			d := confDeliveries[(int(rsv)+i)%len(confDeliveries)]
			cases = append(cases, confCase{
				name: fmt.Sprintf("RSV %d on %v %s", rsv, f.op, d.name),
				send: d.split(w, confText("Hello"), f, confPing("after")),
				want: []frame{confText("Hello")},
				fail: StatusProtocolError,
			})
		}
	}
	return cases
}

// 4.x: reserved opcodes fail the connection.
func TestConformanceOpcodes(t *testing.T) { runConformance(t, confOpcodesCases) }

func confOpcodesCases(w confWire) []confCase {
	var cases []confCase
	for _, op := range []opcode{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		for i, payload := range [][]byte{nil, []byte("reserved opcode")} {
			d := confDeliveries[(int(op)+i)%len(confDeliveries)]
			cases = append(cases, confCase{
				name: fmt.Sprintf("opcode %d with %d bytes %s", op, len(payload), d.name),
				send: d.split(w, confText("Hello"), frame{fin: true, op: op, payload: payload}, confPing("after")),
				want: []frame{confText("Hello")},
				fail: StatusProtocolError,
			})
		}
	}
	return cases
}

// 5.x: fragmented messages are echoed whole, with the control frames between their
// fragments answered; fragments out of place fail the connection.
func TestConformanceFragmentation(t *testing.T) { runConformance(t, confFragmentationCases) }

func confFragmentationCases(w confWire) []confCase {
	frag := func(op opcode, fin bool, s string) frame { return frame{fin: fin, op: op, payload: []byte(s)} }
	var cases []confCase
	for _, d := range confDeliveries {
		cases = append(cases,
			confCase{name: "5.3 text in two fragments " + d.name,
				send: d.split(w, frag(opText, false, "fragment1"), frag(opContinuation, true, "fragment2")),
				want: []frame{confText("fragment1fragment2")}},
			confCase{name: "binary in two fragments " + d.name,
				send: d.split(w, frag(opBinary, false, "\x00\xff"), frag(opContinuation, true, "\xfe")),
				want: []frame{confBinary([]byte("\x00\xff\xfe"))}},
			confCase{name: "5.6 ping between fragments " + d.name,
				send: d.split(w, frag(opText, false, "fragment1"), confPing("between"), frag(opContinuation, true, "fragment2")),
				want: []frame{confPong("between"), confText("fragment1fragment2")}},
			confCase{name: "pong between fragments " + d.name,
				send: d.split(w, frag(opBinary, false, "fragment1"), confPong("unsolicited"), frag(opContinuation, true, "fragment2")),
				want: []frame{confBinary([]byte("fragment1fragment2"))}},
			confCase{name: "5.9 continuation with FIN and nothing to continue " + d.name,
				send: d.split(w, frag(opContinuation, true, "fragment1"), confText("fragment2")),
				fail: StatusProtocolError},
			confCase{name: "5.12 continuation without FIN and nothing to continue " + d.name,
				send: d.split(w, frag(opContinuation, false, "fragment1"), confText("fragment2")),
				fail: StatusProtocolError},
		)
	}
	for _, op := range []opcode{opText, opBinary} {
		m := confMessage(op, 1000)
		for _, n := range []int{1, 2, 3, 16, 1000} {
			cases = append(cases, confCase{
				name: fmt.Sprintf("%v in %d fragments", op, n),
				send: w.perFrame(confFragments(m, (1000+n-1)/n)...),
				want: []frame{m},
			})
		}
		cases = append(cases,
			confCase{name: fmt.Sprintf("%v with empty fragments", op),
				send: w.perFrame(frag(op, false, ""), frag(opContinuation, false, "Hello"), frag(opContinuation, false, ""),
					frag(opContinuation, false, ", world"), frag(opContinuation, true, "")),
				want: []frame{{fin: true, op: op, payload: []byte("Hello, world")}}},
			confCase{name: fmt.Sprintf("%v of empty fragments only", op),
				send: w.perFrame(frag(op, false, ""), frag(opContinuation, false, ""), frag(opContinuation, true, "")),
				want: []frame{{fin: true, op: op, payload: []byte{}}}},
		)
	}
	fiveWithPings := []frame{
		frag(opText, false, "fragment1"), frag(opContinuation, false, "fragment2"), confPing("ping 1"),
		frag(opContinuation, false, "fragment3"), frag(opContinuation, false, "fragment4"), confPing("ping 2"),
		frag(opContinuation, true, "fragment5"),
	}
	fiveWant := []frame{confPong("ping 1"), confPong("ping 2"), confText("fragment1fragment2fragment3fragment4fragment5")}
	cases = append(cases,
		confCase{name: "5.19 five fragments with two pings", send: w.perFrame(fiveWithPings...), want: fiveWant},
		confCase{name: "5.20 five fragments with two pings in 1-byte writes", send: w.chopped(1, fiveWithPings...), want: fiveWant},
		confCase{name: "5.1 fragmented ping",
			send: w.perFrame(frag(opPing, false, "fragment1"), frag(opContinuation, true, "fragment2")),
			fail: StatusProtocolError},
		confCase{name: "5.2 fragmented pong",
			send: w.perFrame(frag(opPong, false, "fragment1"), frag(opContinuation, true, "fragment2")),
			fail: StatusProtocolError},
		confCase{name: "fragmented close",
			send: w.perFrame(frame{op: opClose, payload: []byte{0x03, 0xe8}}, frag(opContinuation, true, "")),
			fail: StatusProtocolError},
		confCase{name: "5.15 continuation after a complete fragmented message",
			send: w.perFrame(frag(opText, false, "fragment1"), frag(opContinuation, true, "fragment2"),
				frag(opContinuation, false, "fragment3"), frag(opText, true, "fragment4")),
			want: []frame{confText("fragment1fragment2")},
			fail: StatusProtocolError},
		confCase{name: "5.16 continuations and text out of order",
			send: w.perFrame(frag(opContinuation, false, "fragment1"), frag(opText, false, "fragment2"), frag(opContinuation, true, "fragment3")),
			fail: StatusProtocolError},
		confCase{name: "5.17 continuations with FIN and text out of order",
			send: w.perFrame(frag(opContinuation, true, "fragment1"), frag(opText, false, "fragment2"), frag(opContinuation, true, "fragment3")),
			fail: StatusProtocolError},
		confCase{name: "5.18 text inside a fragmented text",
			send: w.perFrame(frag(opText, false, "fragment1"), frag(opText, true, "fragment2")),
			fail: StatusProtocolError},
		confCase{name: "binary inside a fragmented text",
			send: w.perFrame(frag(opText, false, "fragment1"), frag(opBinary, true, "fragment2")),
			fail: StatusProtocolError},
		confCase{name: "text starting inside a fragmented binary",
			send: w.perFrame(frag(opBinary, false, "fragment1"), frag(opText, false, "fragment2"), frag(opContinuation, true, "fragment3")),
			fail: StatusProtocolError},
		confCase{name: "fragmented ping inside a fragmented text",
			send: w.perFrame(frag(opText, false, "fragment1"), frag(opPing, false, "ping"), frag(opContinuation, true, "fragment2")),
			fail: StatusProtocolError},
	)
	return cases
}

// confUTF8Extra completes utf8Tests (utf8_test.go) with the categories of Markus Kuhn's
// UTF-8 decoder stress test that the suite's 6.x cases are made of.
var confUTF8Extra = []struct{ name, in string }{
	{"Hello-µ@ßöäüàá-UTF-8!!", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"},
	{"U+FEFF", "\xef\xbb\xbf"},
	{"U+FFFD", "\xef\xbf\xbd"},
	{"noncharacter U+FDD0", "\xef\xb7\x90"},
	{"noncharacter U+FDEF", "\xef\xb7\xaf"},
	{"noncharacter U+1FFFE", "\xf0\x9f\xbf\xbe"},
	{"noncharacter U+10FFFE", "\xf4\x8f\xbf\xbe"},
	{"4-byte form of U+1FFFFF", "\xf7\xbf\xbf\xbf"},
	{"last 5-byte form", "\xfb\xbf\xbf\xbf\xbf"},
	{"last 6-byte form", "\xfd\xbf\xbf\xbf\xbf\xbf"},
	{"continuations 80 BF", "\x80\xbf"},
	{"continuations 80 BF 80", "\x80\xbf\x80"},
	{"continuations 80 BF 80 BF 80 BF 80", "\x80\xbf\x80\xbf\x80\xbf\x80"},
	{"all 64 continuation bytes", confRange(0x80, 0xbf, "")},
	{"2-byte lead bytes each then a space", confRange(0xc0, 0xdf, " ")},
	{"3-byte lead bytes each then a space", confRange(0xe0, 0xef, " ")},
	{"4-byte lead bytes each then a space", confRange(0xf0, 0xf7, " ")},
	{"lone C2 then a space", "\xc2 "},
	{"lone E1 then a space", "\xe1 "},
	{"lone F1 then a space", "\xf1 "},
	{"F8 then a space", "\xf8 "},
	{"FC then a space", "\xfc "},
	{"C0 alone", "\xc0"},
	{"E0 80 truncated overlong", "\xe0\x80"},
	{"F0 80 80 truncated overlong", "\xf0\x80\x80"},
	{"DF truncated", "\xdf"},
	{"EF BF truncated", "\xef\xbf"},
	{"F7 BF BF truncated", "\xf7\xbf\xbf"},
	{"truncated sequences concatenated", "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf"},
	{"overlong slash E0 80 AF", "\xe0\x80\xaf"},
	{"overlong slash F0 80 80 AF", "\xf0\x80\x80\xaf"},
	{"overlong slash F8", "\xf8\x80\x80\x80\xaf"},
	{"overlong slash FC", "\xfc\x80\x80\x80\x80\xaf"},
	{"largest overlong F8 87 BF BF BF", "\xf8\x87\xbf\xbf\xbf"},
	{"largest overlong FC 83 BF BF BF BF", "\xfc\x83\xbf\xbf\xbf\xbf"},
	{"overlong NUL F8", "\xf8\x80\x80\x80\x80"},
	{"overlong NUL FC", "\xfc\x80\x80\x80\x80\x80"},
	{"surrogate ED AD BF", "\xed\xad\xbf"},
	{"surrogate ED AE 80", "\xed\xae\x80"},
	{"surrogate ED AF BF", "\xed\xaf\xbf"},
	{"surrogate ED B0 80", "\xed\xb0\x80"},
	{"surrogate ED BE 80", "\xed\xbe\x80"},
	{"surrogate pair ED AD BF ED BF BF", "\xed\xad\xbf\xed\xbf\xbf"},
	{"surrogate pair ED AF BF ED B0 80", "\xed\xaf\xbf\xed\xb0\x80"},
	{"text then surrogate", "Hello, \xed\xa0\x80 world"},
}

// confRange returns the bytes lo to hi, each followed by sep.
func confRange(lo, hi byte, sep string) string {
	var b strings.Builder
	for c := int(lo); c <= int(hi); c++ {
		b.WriteByte(byte(c))
		b.WriteString(sep)
	}
	return b.String()
}

// 6.x: text must be UTF-8, however it is split into frames and writes. A bad message
// fails with 1007 as soon as no continuation could make it valid: the rest of it is only
// sent once the close frame has arrived.
func TestConformanceUTF8(t *testing.T) {
	for _, tc := range utf8Tests {
		for _, extra := range confUTF8Extra {
			require.NotEqual(t, tc.in, extra.in, "%s is in utf8Tests already as %s", extra.name, tc.name)
		}
	}
	runConformance(t, confUTF8Cases)
}

func confUTF8Cases(w confWire) []confCase {
	var samples []struct{ name, in string }
	for _, tc := range utf8Tests {
		samples = append(samples, struct{ name, in string }{tc.name, tc.in})
	}
	samples = append(samples, confUTF8Extra...)
	const rest = "-the rest of the message"
	var cases []confCase
	for _, s := range samples {
		in := []byte(s.in)
		msg := frame{fin: true, op: opText, payload: in}
		perByte := []frame{msg}
		if len(in) > 1 {
			perByte = nil
			for i := range in {
				op := opContinuation
				if i == 0 {
					op = opText
				}
				perByte = append(perByte, frame{fin: i == len(in)-1, op: op, payload: in[i : i+1]})
			}
		}
		deliveries := []struct {
			name   string
			writes [][]byte
		}{
			{"whole", w.oneWrite(msg)},
			{"one fragment per byte", w.perFrame(perByte...)},
			{"in 1-byte writes", w.chopped(1, msg)},
		}
		for _, d := range deliveries {
			c := confCase{name: s.name + "/" + d.name, send: d.writes}
			if utf8.Valid(in) {
				c.want = []frame{msg}
			} else {
				c.fail = StatusInvalidFramePayloadData
			}
			cases = append(cases, c)
		}
		bad := firstBadByte(in)
		if bad < 0 {
			continue
		}
		// Fail fast: the peer sends up to the bad byte, and the rest only after the
		// close frame came, in one frame and in fragments.
		full := append(in[:len(in):len(in)], rest...)
		wire := w.encode(frame{fin: true, op: opText, payload: full})
		cut := len(wire) - len(full) + bad + 1
		head := w.encode(frame{op: opText, payload: full[:bad+1]})
		tail := w.encode(frame{fin: true, op: opContinuation, payload: full[bad+1:]})
		cases = append(cases,
			confCase{name: s.name + "/fails fast in one frame", send: [][]byte{wire[:cut]}, after: [][]byte{wire[cut:]},
				fail: StatusInvalidFramePayloadData},
			confCase{name: s.name + "/fails fast in fragments", send: [][]byte{head}, after: [][]byte{tail},
				fail: StatusInvalidFramePayloadData},
		)
	}
	// 6.x cases send one message per connection; a valid one before a bad one must be
	// echoed, and a bad one split over a valid first fragment must not be.
	cases = append(cases,
		confCase{name: "valid message, then a bad one",
			send: w.perFrame(confText(kosme), confText("\xce\xba\xff")),
			want: []frame{confText(kosme)}, fail: StatusInvalidFramePayloadData},
		confCase{name: "bad code point across fragments",
			send: w.perFrame(frame{op: opText, payload: []byte(kosme + "\xed")}, frame{fin: true, op: opContinuation, payload: []byte("\xa0\x80")}),
			fail: StatusInvalidFramePayloadData},
	)
	return cases
}

// 7.x: the closing handshake. Valid close frames are echoed with their code and end the
// connection; what follows them is ignored; bad ones fail it.
func TestConformanceClose(t *testing.T) { runConformance(t, confCloseCases) }

func confCloseCases(w confWire) []confCase {
	var cases []confCase
	reason123 := strings.Repeat("r", 123)
	cases = append(cases,
		confCase{name: "7.1.1 text, then close", send: w.perFrame(confText("Hello"), confClose(1000, "")),
			want: []frame{confText("Hello")}, closed: StatusNormalClosure},
		confCase{name: "7.1.2 close twice", send: w.perFrame(confClose(1000, ""), confClose(1000, "")),
			closed: StatusNormalClosure},
		confCase{name: "7.1.3 ping after close", send: w.perFrame(confClose(1000, ""), confPing("after close")),
			closed: StatusNormalClosure},
		confCase{name: "7.1.4 text after close", send: w.perFrame(confClose(1000, ""), confText("after close")),
			closed: StatusNormalClosure},
		confCase{name: "7.1.5 close between fragments",
			send: w.perFrame(frame{op: opText, payload: []byte("fragment1")}, confClose(1000, ""),
				frame{fin: true, op: opContinuation, payload: []byte("fragment2")}),
			closed: StatusNormalClosure},
		confCase{name: "7.1.6 large text, close, ping",
			make: func() ([][]byte, []frame) {
				m := confMessage(opText, 256<<10)
				return w.perFrame(m, confClose(1000, ""), confPing("after close")), []frame{m}
			},
			closed: StatusNormalClosure},
		confCase{name: "7.3.1 empty close", send: w.oneWrite(frame{fin: true, op: opClose}), closed: StatusNoStatusReceived},
		confCase{name: "7.3.2 close with 1-byte payload", send: w.oneWrite(frame{fin: true, op: opClose, payload: []byte{0x03}}),
			fail: StatusProtocolError},
		confCase{name: "7.3.3 close without reason", send: w.oneWrite(confClose(1000, "")), closed: StatusNormalClosure},
		confCase{name: "7.3.4 close with reason", send: w.oneWrite(confClose(1000, "Hello World!")), closed: StatusNormalClosure},
		confCase{name: "7.3.5 close with 123-byte reason", send: w.oneWrite(confClose(1000, reason123)), closed: StatusNormalClosure},
		confCase{name: "7.3.6 close with 124-byte reason", send: w.oneWrite(confClose(1000, reason123+"r")),
			fail: StatusProtocolError},
		confCase{name: "7.5.1 reason not UTF-8", send: w.oneWrite(confClose(1000, kosme+"\xed\xa0\x80edited")),
			fail: StatusInvalidFramePayloadData},
		confCase{name: "reason ends inside a code point", send: w.oneWrite(confClose(1000, "ok\xce")),
			fail: StatusInvalidFramePayloadData},
		confCase{name: "close in 1-byte writes", send: w.chopped(1, confClose(1001, "going")), closed: StatusGoingAway},
	)
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, confCase{name: fmt.Sprintf("7.7 close with code %d", code),
			send: w.oneWrite(confClose(code, "")), closed: StatusCode(code)})
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, confCase{name: fmt.Sprintf("7.9 close with code %d", code),
			send: w.oneWrite(confClose(code, "")), fail: StatusProtocolError})
	}
	return cases
}

// 7.x, the other way: the Conn closes first. The peer's answer ends the handshake; the
// server then closes TCP, while the client waits for the server to (RFC 6455 §7.1.1).
func TestConformanceCloseByConn(t *testing.T) {
	for _, role := range confRoles {
		t.Run(role.name, func(t *testing.T) {
			p := newConfPeer(t, role.connIsClient, false)
			closed := make(chan error, 1)
			go func() { closed <- p.conn.Close(StatusGoingAway, "bye") }()
			f := p.next()
			require.Equal(t, opClose, f.op)
			assert.Equal(t, StatusGoingAway, f.closeCode())
			assert.Equal(t, "bye", string(f.payload[2:]))

			// Written here rather than queued: a write on net.Pipe returns once the Conn
			// has read it all.
			p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err := p.nc.Write(p.encode(confClose(1000, "")))
			require.NoError(t, err)
			if role.connIsClient {
				_, err := p.nc.Write(p.encode(confPing("still open?")))
				require.NoError(t, err, "the client stopped reading before the server closed TCP")
				select {
				case err := <-closed:
					t.Fatalf("Close returned before the server closed TCP: %v", err)
				default:
				}
				p.nc.Close()
				for f := range p.frames {
					t.Errorf("unexpected frame %v %q after the close frame", f.op, clipped(f.payload))
				}
			} else {
				p.expectEnd()
			}
			select {
			case err := <-closed:
				assert.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return")
			}
			err = p.echoErr()
			assert.Equal(t, StatusNormalClosure, CloseStatus(err), "the echo loop ended with %v", err)
		})
	}
}

// 9.x: large messages, whole, in fragments and in small writes, and many small messages.
func TestConformanceLimits(t *testing.T) { runConformance(t, confLimitsCases(testing.Short())) }

// confLimitsCases returns the 9.x cases, with a single size of 256 KiB when short.
func confLimitsCases(short bool) func(w confWire) []confCase {
	sizes := []int{256 << 10, 1 << 20, 16 << 20}
	fragmented := 1 << 20
	count := 1000
	if short {
		sizes, fragmented, count = []int{256 << 10}, 256<<10, 100
	}
	return func(w confWire) []confCase {
		var cases []confCase
		for _, op := range []opcode{opText, opBinary} {
			for _, n := range sizes {
				cases = append(cases, confCase{name: fmt.Sprintf("%v of %d KiB", op, n>>10),
					make: func() ([][]byte, []frame) {
						m := confMessage(op, n)
						return w.oneWrite(m), []frame{m}
					}})
			}
			for _, size := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10} {
				cases = append(cases, confCase{name: fmt.Sprintf("%v of %d KiB in fragments of %d bytes", op, fragmented>>10, size),
					make: func() ([][]byte, []frame) {
						m := confMessage(op, fragmented)
						return w.oneWrite(confFragments(m, size)...), []frame{m}
					}})
			}
			for _, chop := range []int{64, 128, 256, 512, 1024, 2048} {
				cases = append(cases, confCase{name: fmt.Sprintf("%v of %d KiB in %d-byte writes", op, fragmented>>10, chop),
					make: func() ([][]byte, []frame) {
						m := confMessage(op, fragmented)
						return w.chopped(chop, m), []frame{m}
					}})
			}
			for _, n := range []int{0, 16, 64, 256, 1 << 10, 4 << 10} {
				cases = append(cases, confCase{name: fmt.Sprintf("%d %v messages of %d bytes", count, op, n),
					make: func() ([][]byte, []frame) {
						msgs := make([]frame, count)
						for i := range msgs {
							msgs[i] = confMessage(op, n)
						}
						return w.oneWrite(msgs...), msgs
					}})
			}
		}
		return cases
	}
}

// 10.x: messages fragmented by the sender, and echoes the Conn fragments itself: the
// Writer sends a frame whenever its buffer fills, and the peer reassembles them.
func TestConformanceAutoFragmentation(t *testing.T) { runConformance(t, confAutoFragmentationCases) }

func confAutoFragmentationCases(w confWire) []confCase {
	var cases []confCase
	for _, op := range []opcode{opText, opBinary} {
		m := confMessage(op, 64<<10)
		big := confMessage(op, 1<<20)
		cases = append(cases,
			confCase{name: fmt.Sprintf("10.1.1 %v of 64 KiB in fragments of 1300 bytes", op),
				send: w.perFrame(confFragments(m, 1300)...), want: []frame{m}},
			confCase{name: fmt.Sprintf("%v of 64 KiB echoed through Writer", op),
				send: w.oneWrite(m), want: []frame{m}, stream: true, fragmented: true},
			confCase{name: fmt.Sprintf("%v of 64 KiB in fragments of 1300 bytes echoed through Writer", op),
				send: w.perFrame(confFragments(m, 1300)...), want: []frame{m}, stream: true, fragmented: true},
			confCase{name: fmt.Sprintf("%v of 1 MiB echoed through Writer", op),
				send: w.oneWrite(big), want: []frame{big}, stream: true, fragmented: true},
			confCase{name: fmt.Sprintf("small %v echoed through Writer", op),
				send: w.oneWrite(confMessage(op, 10)), want: []frame{confMessage(op, 10)}, stream: true},
		)
	}
	return cases
}
