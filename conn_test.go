package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var roundTripSizes = []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}

// payloadOf returns n bytes of recognisable text.
func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	for _, size := range roundTripSizes {
		for _, typ := range []MessageType{MessageText, MessageBinary} {
			t.Run(fmt.Sprintf("%v/%d", typ, size), func(t *testing.T) {
				server, client := pipePair(t)
				want := payloadOf(size)
				for _, dir := range []struct {
					name     string
					from, to *Conn
				}{{"client to server", client, server}, {"server to client", server, client}} {
					errc := make(chan error, 1)
					go func() { errc <- dir.from.Write(context.Background(), typ, want) }()
					gotTyp, got, err := dir.to.Read(context.Background())
					require.NoError(t, err, dir.name)
					require.NoError(t, <-errc, dir.name)
					assert.Equal(t, typ, gotTyp, dir.name)
					assert.Equal(t, want, got, dir.name)
				}
			})
		}
	}
}

func TestStreamRoundTrip(t *testing.T) {
	for _, size := range roundTripSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			server, client := pipePair(t)
			want := payloadOf(size)
			errc := make(chan error, 1)
			go func() {
				w, err := client.Writer(context.Background(), MessageText)
				if err != nil {
					errc <- err
					return
				}
				// Uneven pieces, so frames and writes do not line up.
				for p := want; len(p) > 0; {
					n := min(len(p), 1000)
					if _, err := w.Write(p[:n]); err != nil {
						errc <- err
						return
					}
					p = p[n:]
				}
				errc <- w.Close()
			}()
			typ, r, err := server.Reader(context.Background())
			require.NoError(t, err)
			assert.Equal(t, MessageText, typ)
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			require.NoError(t, <-errc)
			assert.Equal(t, want, got)
		})
	}
}

// wireConn is a net.Conn whose reads come from r and whose writes are kept.
type wireConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *wireConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *wireConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *wireConn) Close() error                     { return nil }
func (c *wireConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *wireConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *wireConn) SetDeadline(time.Time) error      { return nil }
func (c *wireConn) SetReadDeadline(time.Time) error  { return nil }
func (c *wireConn) SetWriteDeadline(time.Time) error { return nil }

// wireOf returns the bytes a Conn in the given role sends for the messages.
func wireOf(t *testing.T, client bool, msgs ...[]byte) []byte {
	t.Helper()
	wc := &wireConn{r: strings.NewReader("")}
	c := newConn(wc, bufio.NewReader(wc.r), client, "")
	for _, m := range msgs {
		require.NoError(t, c.Write(context.Background(), MessageBinary, m))
	}
	return wc.out.Bytes()
}

// TestReadChopped reads what the peer sent through readers that return one byte, or half
// of what was asked, at a time: frames must be reassembled whatever the chopping.
func TestReadChopped(t *testing.T) {
	chops := map[string]func(io.Reader) io.Reader{
		"OneByteReader": iotest.OneByteReader,
		"HalfReader":    iotest.HalfReader,
	}
	for _, size := range roundTripSizes {
		if size > 65536 && testing.Short() {
			continue
		}
		for name, chop := range chops {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				want := payloadOf(size)
				wire := wireOf(t, true, want, []byte("next"))
				wc := &wireConn{r: chop(bytes.NewReader(wire))}
				server := newConn(wc, bufio.NewReader(wc.r), false, "")
				_, got, err := server.Read(context.Background())
				require.NoError(t, err)
				assert.Equal(t, want, got)
				_, got, err = server.Read(context.Background())
				require.NoError(t, err)
				assert.Equal(t, "next", string(got))
			})
		}
	}
}

// TestWriteNeverModifiesCallerSlice checks the client masks into its own buffer.
func TestWriteNeverModifiesCallerSlice(t *testing.T) {
	for _, size := range []int{10, writeBufferSize, 3*writeBufferSize + 7} {
		p := payloadOf(size)
		orig := bytes.Clone(p)
		wire := wireOf(t, true, p)
		assert.Equal(t, orig, p)
		assert.NotContains(t, string(wire), string(orig[:8]), "payload went out unmasked")
	}
}

func TestConcurrentWriters(t *testing.T) {
	server, client := pipePair(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := bytes.Repeat([]byte(fmt.Sprintf("w%d-m%d;", w, i)), 700) // over one buffer
				if w%2 == 0 {
					assert.NoError(t, client.Write(context.Background(), MessageText, msg))
					continue
				}
				wr, err := client.Writer(context.Background(), MessageText)
				if !assert.NoError(t, err) {
					return
				}
				for half := range 2 {
					_, err := wr.Write(msg[half*len(msg)/2 : (half+1)*len(msg)/2])
					assert.NoError(t, err)
				}
				assert.NoError(t, wr.Close())
			}
		}()
	}
	seen := map[string]bool{}
	for range writers * each {
		_, msg, err := server.Read(context.Background())
		require.NoError(t, err)
		unit := string(msg[:bytes.IndexByte(msg, ';')+1])
		require.Equal(t, strings.Repeat(unit, 700), string(msg), "message interleaved with another")
		seen[unit] = true
	}
	wg.Wait()
	assert.Len(t, seen, writers*each)
}

// writerFrames streams one message of the given type through a server's Writer, one
// Write of payloadOf(n) for each n in writes, and returns the frames the peer receives.
func writerFrames(t *testing.T, typ MessageType, writes ...int) []frame {
	t.Helper()
	p := newRawPeer(t, false)
	errc := make(chan error, 1)
	go func() {
		w, err := p.conn.Writer(context.Background(), typ)
		for _, n := range writes {
			if err == nil {
				_, err = w.Write(payloadOf(n))
			}
		}
		if err == nil {
			err = w.Close()
		}
		errc <- err
	}()
	var frames []frame
	for {
		f := p.next()
		frames = append(frames, f)
		if f.fin {
			break
		}
	}
	require.NoError(t, <-errc)
	return frames
}

func TestWriterFragments(t *testing.T) {
	frames := writerFrames(t, MessageText, 2*writeBufferSize+100)
	assert.Greater(t, len(frames), 1)
	assert.Equal(t, opText, frames[0].op)
	var got []byte
	for i, f := range frames {
		if i > 0 {
			assert.Equal(t, opContinuation, f.op, "frame %d", i)
		}
		assert.Equal(t, i == len(frames)-1, f.fin, "frame %d", i)
		got = append(got, f.payload...)
	}
	assert.Equal(t, payloadOf(2*writeBufferSize+100), got)
}

// TestWriterFrameSizes checks how a Writer cuts a message into frames: what fits its
// buffer goes out as one frame at Close, and once a small write has filled the buffer,
// large writes still go out whole as frames, not in buffer-sized pieces.
func TestWriterFrameSizes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []int
		frames []int
	}{
		{"a buffer's worth", []int{writeBufferSize}, []int{writeBufferSize}},
		{"a buffer's worth in pieces", []int{writeBufferSize - 8, 8}, []int{writeBufferSize}},
		{"more than a buffer's worth", []int{writeBufferSize + 1}, []int{writeBufferSize + 1, 0}},
		{"large writes after a small one", []int{100, 32 << 10, 32 << 10},
			[]int{writeBufferSize, 100 + 32<<10 - writeBufferSize, 32 << 10, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes []int
			for _, f := range writerFrames(t, MessageBinary, tc.writes...) {
				sizes = append(sizes, len(f.payload))
			}
			assert.Equal(t, tc.frames, sizes)
		})
	}
}

func TestZeroLength(t *testing.T) {
	server, client := pipePair(t)
	errc := make(chan error, 1)
	go func() {
		w, err := client.Writer(context.Background(), MessageBinary)
		if err == nil {
			err = w.Close()
		}
		if err == nil {
			err = client.Write(context.Background(), MessageText, nil)
		}
		errc <- err
	}()
	for _, want := range []MessageType{MessageBinary, MessageText} {
		typ, msg, err := server.Read(context.Background())
		require.NoError(t, err)
		assert.Equal(t, want, typ)
		assert.Empty(t, msg)
	}
	require.NoError(t, <-errc)
}

func TestFragmentedMessageWithControlFrames(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		t.Run(fmt.Sprintf("client=%v", connIsClient), func(t *testing.T) {
			p := newRawPeer(t, connIsClient)
			p.readLoop()
			p.send(
				frame{op: opText, payload: []byte("Hel")},
				frame{fin: true, op: opPing, payload: []byte("ping!")},
				frame{fin: true, op: opPong, payload: []byte("unsolicited")},
				frame{op: opContinuation, payload: []byte("lo, ")},
				frame{fin: true, op: opContinuation, payload: []byte("world")},
			)
			pong := p.next()
			assert.Equal(t, opPong, pong.op)
			assert.Equal(t, "ping!", string(pong.payload))
			r := p.nextRead()
			require.NoError(t, r.err)
			assert.Equal(t, MessageText, r.typ)
			assert.Equal(t, "Hello, world", string(r.msg))
		})
	}
}

func TestPongBetweenFragmentsOfAStreamedMessage(t *testing.T) {
	p := newRawPeer(t, false)
	p.readLoop()
	w, err := p.conn.Writer(context.Background(), MessageBinary)
	require.NoError(t, err)
	_, err = w.Write(payloadOf(writeBufferSize + 1)) // fills the buffer: one frame goes out
	require.NoError(t, err)
	first := p.next()
	assert.False(t, first.fin)
	p.send(frame{fin: true, op: opPing, payload: []byte("between")})
	pong := p.next()
	assert.Equal(t, opPong, pong.op)
	assert.Equal(t, "between", string(pong.payload))
	errc := make(chan error, 1)
	go func() { errc <- w.Close() }()
	last := p.next()
	require.NoError(t, <-errc)
	assert.True(t, last.fin)
	assert.Equal(t, opContinuation, last.op)
}

func TestPing(t *testing.T) {
	server, client := pipePair(t)
	// The server must be reading to see the ping, and the client to see the pong.
	done := make(chan error, 2)
	go func() { _, _, err := server.Read(context.Background()); done <- err }()
	go func() { _, _, err := client.Read(context.Background()); done <- err }()
	for range 3 {
		require.NoError(t, client.Ping(context.Background()))
		require.NoError(t, server.Ping(context.Background()))
	}
	require.NoError(t, client.Close(StatusNormalClosure, ""))
	for range 2 {
		err := <-done
		assert.ErrorIs(t, err, net.ErrClosed)
	}
}

func TestPingWaitsForItsOwnPong(t *testing.T) {
	p := newRawPeer(t, true)
	p.readLoop()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Ping(ctx) }()
	ping := p.next()
	require.Equal(t, opPing, ping.op)
	p.send(frame{fin: true, op: opPong, payload: []byte("another payload")})
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled, "a pong with another payload must not end Ping")

	go func() { errc <- p.conn.Ping(context.Background()) }()
	ping = p.next()
	p.send(frame{fin: true, op: opPong, payload: ping.payload})
	assert.NoError(t, <-errc)
}

// violation is a peer sending something RFC 6455 forbids, and the close code that must
// answer it.
type violation struct {
	name   string
	frames []frame
	wire   []byte // raw bytes sent after frames
	code   StatusCode
}

func violations(peerMasks bool) []violation {
	text := func(s string) frame { return frame{fin: true, op: opText, payload: []byte(s)} }
	closeWith := func(code int, reason string) frame {
		return frame{fin: true, op: opClose, payload: append([]byte{byte(code >> 8), byte(code)}, reason...)}
	}
	vs := []violation{
		{name: "RSV1 without extension", frames: []frame{{fin: true, rsv: rsv1, op: opText, payload: []byte("x")}}, code: StatusProtocolError},
		{name: "RSV2", frames: []frame{{fin: true, rsv: rsv2, op: opBinary}}, code: StatusProtocolError},
		{name: "RSV3 on ping", frames: []frame{{fin: true, rsv: rsv3, op: opPing}}, code: StatusProtocolError},
		{name: "opcode 3", frames: []frame{{fin: true, op: 3}}, code: StatusProtocolError},
		{name: "opcode 7", frames: []frame{{fin: true, op: 7}}, code: StatusProtocolError},
		{name: "opcode 11", frames: []frame{{fin: true, op: 11}}, code: StatusProtocolError},
		{name: "opcode 15", frames: []frame{{fin: true, op: 15}}, code: StatusProtocolError},
		{name: "ping of 126 bytes", wire: encodeFrame(frame{fin: true, op: opPing, payload: payloadOf(126)}, peerMasks, 126), code: StatusProtocolError},
		{name: "fragmented ping", frames: []frame{{op: opPing, payload: []byte("x")}}, code: StatusProtocolError},
		{name: "continuation with nothing open", frames: []frame{{fin: true, op: opContinuation, payload: []byte("x")}}, code: StatusProtocolError},
		{name: "text inside fragmented message", frames: []frame{{op: opText, payload: []byte("a")}, text("b")}, code: StatusProtocolError},
		{name: "binary inside fragmented message", frames: []frame{{op: opBinary, payload: []byte("a")}, {fin: true, op: opBinary}}, code: StatusProtocolError},
		{name: "64-bit length with top bit", wire: []byte{0x82, 0x7F | maskBit(peerMasks), 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, code: StatusProtocolError},
		{name: "invalid UTF-8", frames: []frame{text("ab\xffcd")}, code: StatusInvalidFramePayloadData},
		{name: "UTF-8 split across frames, bad continuation", frames: []frame{{op: opText, payload: []byte("\xce")}, {fin: true, op: opContinuation, payload: []byte("A")}}, code: StatusInvalidFramePayloadData},
		{name: "text ending in a truncated code point", frames: []frame{text("ok\xe2\x82")}, code: StatusInvalidFramePayloadData},
		{name: "surrogate", frames: []frame{text("\xed\xa0\x80")}, code: StatusInvalidFramePayloadData},
		{name: "close with 1-byte payload", frames: []frame{{fin: true, op: opClose, payload: []byte{3}}}, code: StatusProtocolError},
		{name: "close reason not UTF-8", frames: []frame{closeWith(1000, "\xff")}, code: StatusInvalidFramePayloadData},
	}
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		vs = append(vs, violation{name: fmt.Sprintf("close code %d", code), frames: []frame{closeWith(code, "")}, code: StatusProtocolError})
	}
	return vs
}

func maskBit(masked bool) byte {
	if masked {
		return 0x80
	}
	return 0
}

func TestProtocolViolations(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		role := map[bool]string{false: "server", true: "client"}[connIsClient]
		for _, v := range violations(!connIsClient) {
			t.Run(role+"/"+v.name, func(t *testing.T) {
				p := newRawPeer(t, connIsClient)
				p.readLoop()
				p.send(v.frames...)
				if v.wire != nil {
					p.write(v.wire)
				}
				r := p.nextRead()
				require.Error(t, r.err)
				assert.Equal(t, v.code, protocolCode(r.err), "error: %v", r.err)
				assert.ErrorIs(t, r.err, net.ErrClosed)
				p.expectClose(v.code)
			})
		}
	}
}

func TestMaskingRules(t *testing.T) {
	t.Run("server gets unmasked frame", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.readLoop()
		p.write(encodeFrame(frame{fin: true, op: opText, payload: []byte("hi")}, false, 2))
		r := p.nextRead()
		assert.Equal(t, StatusProtocolError, protocolCode(r.err))
		p.expectClose(StatusProtocolError)
	})
	t.Run("client gets masked frame", func(t *testing.T) {
		p := newRawPeer(t, true)
		p.readLoop()
		p.write(encodeFrame(frame{fin: true, op: opText, payload: []byte("hi")}, true, 2))
		r := p.nextRead()
		assert.Equal(t, StatusProtocolError, protocolCode(r.err))
		p.expectClose(StatusProtocolError)
	})
}

// TestUTF8FailsFast checks the Conn closes with 1007 as soon as the text cannot be UTF-8,
// without waiting for the rest of the frame, which the peer never sends.
func TestUTF8FailsFast(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		t.Run(fmt.Sprintf("client=%v", connIsClient), func(t *testing.T) {
			p := newRawPeer(t, connIsClient)
			p.readLoop()
			// The header announces 100 bytes; only the first 10 come, bad at byte 5.
			wire := encodeFrame(frame{fin: true, op: opText, payload: []byte("hello\xc0world-----")}, !connIsClient, 100)
			p.write(wire[:len(wire)-5])
			r := p.nextRead()
			assert.Equal(t, StatusInvalidFramePayloadData, protocolCode(r.err))
			p.expectClose(StatusInvalidFramePayloadData)
		})
	}
}

func TestReadLimit(t *testing.T) {
	t.Run("default is 1 MiB", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.readLoop()
		p.send(frame{fin: true, op: opBinary, payload: payloadOf(1 << 20)})
		r := p.nextRead()
		require.NoError(t, r.err)
		assert.Len(t, r.msg, 1<<20)
		p.send(frame{fin: true, op: opBinary, payload: payloadOf(1<<20 + 1)})
		r = p.nextRead()
		assert.ErrorIs(t, r.err, ErrMessageTooBig)
		p.expectClose(StatusMessageTooBig)
	})
	t.Run("checked across fragments", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.conn.SetReadLimit(10)
		p.readLoop()
		p.send(frame{op: opText, payload: []byte("12345")}, frame{fin: true, op: opContinuation, payload: []byte("678901")})
		r := p.nextRead()
		assert.ErrorIs(t, r.err, ErrMessageTooBig)
		assert.Equal(t, StatusMessageTooBig, protocolCode(r.err))
		p.expectClose(StatusMessageTooBig)
	})
	t.Run("checked on the header, before the payload", func(t *testing.T) {
		p := newRawPeer(t, true)
		p.readLoop()
		// Only the header of a 1 TiB frame is sent.
		p.write(encodeFrame(frame{fin: true, op: opBinary}, false, 1<<40))
		r := p.nextRead()
		assert.ErrorIs(t, r.err, ErrMessageTooBig)
		p.expectClose(StatusMessageTooBig)
	})
	t.Run("a huge continuation cannot wrap the count around", func(t *testing.T) {
		wc := &wireConn{r: bytes.NewReader([]byte{0x02, 0x01, 'A', 0x80, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})}
		c := newConn(wc, nil, true, "")
		_, _, err := c.Read(context.Background())
		assert.ErrorIs(t, err, ErrMessageTooBig)
	})
	t.Run("raised", func(t *testing.T) {
		p := newRawPeer(t, false)
		p.conn.SetReadLimit(2 << 20)
		p.readLoop()
		p.send(frame{fin: true, op: opBinary, payload: payloadOf(2 << 20)})
		r := p.nextRead()
		require.NoError(t, r.err)
		assert.Len(t, r.msg, 2<<20)
	})
	t.Run("removed: growth follows the data, not the length field", func(t *testing.T) {
		p := newRawPeer(t, true)
		p.conn.SetReadLimit(0)
		p.readLoop()
		// Announce 1 TiB, send 3 bytes, then vanish: Read must not have allocated 1 TiB.
		p.write(encodeFrame(frame{fin: true, op: opBinary, payload: []byte("abc")}, false, 1<<40)[:13])
		p.nc.Close()
		r := p.nextRead()
		assert.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
	})
}

func TestCloseHandshake(t *testing.T) {
	for _, initiatorIsClient := range []bool{true, false} {
		t.Run(fmt.Sprintf("client initiates=%v", initiatorIsClient), func(t *testing.T) {
			server, client := pipePair(t)
			closer, other := server, client
			if initiatorIsClient {
				closer, other = client, server
			}
			readErr := make(chan error, 1)
			go func() { _, _, err := other.Read(context.Background()); readErr <- err }()
			require.NoError(t, closer.Close(StatusGoingAway, "bye"))
			err := <-readErr
			assert.Equal(t, StatusGoingAway, CloseStatus(err))
			var ce *CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "bye", ce.Reason)
			assert.ErrorIs(t, err, net.ErrClosed)

			// Every call on either side now says the Conn is closed.
			for _, c := range []*Conn{closer, other} {
				_, _, err := c.Read(context.Background())
				assert.ErrorIs(t, err, net.ErrClosed)
				assert.ErrorIs(t, c.Write(context.Background(), MessageText, []byte("x")), net.ErrClosed)
				_, err = c.Writer(context.Background(), MessageText)
				assert.ErrorIs(t, err, net.ErrClosed)
				_, _, err = c.Reader(context.Background())
				assert.ErrorIs(t, err, net.ErrClosed)
				assert.ErrorIs(t, c.Ping(context.Background()), net.ErrClosed)
				assert.ErrorIs(t, c.Close(StatusNormalClosure, ""), net.ErrClosed)
				assert.ErrorIs(t, c.CloseNow(), net.ErrClosed)
			}
		})
	}
}

func TestCloseWhileAnotherGoroutineReads(t *testing.T) {
	server, client := pipePair(t)
	serverRead := make(chan error, 1)
	go func() { _, _, err := server.Read(context.Background()); serverRead <- err }()
	clientRead := make(chan error, 1)
	go func() { _, _, err := client.Read(context.Background()); clientRead <- err }()
	require.NoError(t, client.Close(StatusNormalClosure, ""))
	assert.Equal(t, StatusNormalClosure, CloseStatus(<-serverRead))
	// The client's reader saw the server's answer to its close.
	assert.Equal(t, StatusNormalClosure, CloseStatus(<-clientRead))
}

func TestCloseDiscardsDataUntilPeerCloses(t *testing.T) {
	p := newRawPeer(t, false)
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close(StatusNormalClosure, "done") }()
	f := p.next()
	require.Equal(t, opClose, f.op)
	assert.Equal(t, StatusNormalClosure, f.closeCode())
	assert.Equal(t, "done", string(f.payload[2:]))
	p.send(frame{fin: true, op: opText, payload: []byte("late data")},
		frame{fin: true, op: opPing, payload: []byte("late ping")},
		frame{fin: true, op: opClose, payload: []byte{0x03, 0xE8}})
	require.NoError(t, <-errc)
	p.expectEnd() // no pong after our close frame, and the server closed TCP
}

func TestCloseTimesOut(t *testing.T) {
	p := newRawPeer(t, false)
	p.conn.closeTimeout = 50 * time.Millisecond
	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close(StatusNormalClosure, "") }()
	require.Equal(t, opClose, p.next().op)
	err := <-errc // the peer never answers
	require.Error(t, err)
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Equal(t, StatusCode(-1), CloseStatus(err))
	p.expectEnd()
}

func TestCloseArguments(t *testing.T) {
	server, client := pipePair(t)
	for _, tc := range []struct {
		code   StatusCode
		reason string
	}{
		{StatusNormalClosure, strings.Repeat("x", 124)},
		{StatusNormalClosure, "\xff"},
		{StatusNoStatusReceived, "reason without code"},
		{StatusAbnormalClosure, ""},
		{StatusTLSHandshake, ""},
		{999, ""},
		{5000, ""},
	} {
		err := client.Close(tc.code, tc.reason)
		assert.Error(t, err, "%d %q", tc.code, tc.reason)
		assert.NotErrorIs(t, err, net.ErrClosed)
	}
	// Nothing was sent: the Conn still works.
	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("still open")) }()
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "still open", string(msg))
	require.NoError(t, <-errc)
}

func TestPeerCloses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		code    StatusCode
		reason  string
	}{
		{"normal with reason", append([]byte{0x03, 0xE8}, "bye"...), StatusNormalClosure, "bye"},
		{"empty payload", nil, StatusNoStatusReceived, ""},
		{"private code", []byte{0x0F, 0xA0}, 4000, ""},
		{"registered code", []byte{0x0B, 0xB8}, 3000, ""},
		{"125-byte payload", append([]byte{0x03, 0xE8}, strings.Repeat("r", 123)...), StatusNormalClosure, strings.Repeat("r", 123)},
	} {
		for _, connIsClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/client=%v", tc.name, connIsClient), func(t *testing.T) {
				p := newRawPeer(t, connIsClient)
				p.readLoop()
				p.send(frame{fin: true, op: opClose, payload: tc.payload},
					frame{fin: true, op: opText, payload: []byte("after close")})
				echo := p.next()
				require.Equal(t, opClose, echo.op)
				assert.Equal(t, tc.code, echo.closeCode(), "the code is echoed")
				if tc.code == StatusNoStatusReceived {
					assert.Empty(t, echo.payload)
				}
				if connIsClient {
					// The client waits for the server to close TCP first (§7.1.1).
					select {
					case r := <-p.reads:
						t.Fatalf("client returned before the server closed TCP: %v", r.err)
					default:
					}
					p.nc.Close()
				}
				r := p.nextRead()
				assert.Equal(t, tc.code, CloseStatus(r.err))
				var ce *CloseError
				require.ErrorAs(t, r.err, &ce)
				assert.Equal(t, tc.reason, ce.Reason)
				assert.ErrorIs(t, r.err, net.ErrClosed)
				if !connIsClient {
					p.expectEnd() // the server closes TCP at once, and sends nothing more
				}
			})
		}
	}
}

func TestPeerVanishes(t *testing.T) {
	p := newRawPeer(t, false)
	p.readLoop()
	p.write(encodeFrame(frame{fin: true, op: opBinary, payload: []byte("abc")}, true, 10)[:8])
	p.nc.Close()
	r := p.nextRead()
	assert.ErrorIs(t, r.err, io.ErrUnexpectedEOF)
	assert.ErrorIs(t, r.err, net.ErrClosed)
	assert.Equal(t, StatusCode(-1), CloseStatus(r.err))
}

// TestPeerVanishesMidFrame checks that the end of the stream inside a frame is an error,
// never the end of a shorter message.
func TestPeerVanishesMidFrame(t *testing.T) {
	whole := encodeFrame(frame{fin: true, op: opText, payload: []byte("Hello")}, true, 5)
	for cut := 1; cut < len(whole); cut++ {
		for _, streaming := range []bool{false, true} {
			wc := &wireConn{r: bytes.NewReader(whole[:cut])}
			c := newConn(wc, nil, false, "")
			var err error
			if streaming {
				var r io.Reader
				if _, r, err = c.Reader(context.Background()); err == nil {
					_, err = io.ReadAll(r)
				}
			} else {
				var msg []byte
				_, msg, err = c.Read(context.Background())
				assert.Nil(t, msg, "cut at %d", cut)
			}
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d, streaming=%v", cut, streaming)
			assert.ErrorIs(t, err, net.ErrClosed, "cut at %d, streaming=%v", cut, streaming)
		}
	}
}

// TestNothingReadAfterClose checks that messages already buffered are not handed out once
// the Conn is closed.
func TestNothingReadAfterClose(t *testing.T) {
	wire := wireOf(t, true, []byte("one"), []byte("two"))
	for _, how := range []string{"CloseNow", "protocol error"} {
		t.Run(how, func(t *testing.T) {
			in := wire
			if how == "protocol error" {
				in = append(encodeFrame(frame{fin: true, op: 3}, true, 0), wire...)
			}
			c := newConn(&wireConn{r: bytes.NewReader(in)}, nil, false, "")
			if how == "CloseNow" {
				_, msg, err := c.Read(context.Background()) // buffers the second message too
				require.NoError(t, err)
				assert.Equal(t, "one", string(msg))
				require.NoError(t, c.CloseNow())
			} else {
				_, _, err := c.Read(context.Background())
				require.Equal(t, StatusProtocolError, protocolCode(err))
			}
			_, _, err := c.Read(context.Background())
			assert.ErrorIs(t, err, net.ErrClosed)
			_, _, err = c.Reader(context.Background())
			assert.ErrorIs(t, err, net.ErrClosed)
		})
	}
}

func TestCloseNowUnblocksReadAndWrite(t *testing.T) {
	server, _ := pipePair(t)
	readErr := make(chan error, 1)
	go func() { _, _, err := server.Read(context.Background()); readErr <- err }()
	writeErr := make(chan error, 1)
	// net.Pipe has no buffer: with nobody reading the client, this write blocks.
	go func() { writeErr <- server.Write(context.Background(), MessageText, payloadOf(100)) }()
	require.NoError(t, server.CloseNow())
	assert.ErrorIs(t, <-readErr, net.ErrClosed)
	assert.ErrorIs(t, <-writeErr, net.ErrClosed)
	assert.ErrorIs(t, server.CloseNow(), net.ErrClosed)
}

func TestContextBetweenFramesKeepsConn(t *testing.T) {
	server, client := pipePair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Nothing is coming: the read is cut short before any byte of a frame.
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	// Nobody reads the server: the write is cut short before any byte went out.
	assert.ErrorIs(t, client.Write(ctx, MessageText, []byte("x")), context.Canceled)

	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("still works")) }()
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "still works", string(msg))
	require.NoError(t, <-errc)
}

// TestContextKeptAcrossCalls checks a context used for many calls: its cancellation still
// cuts the next call short, and leaves nothing behind for calls with other contexts.
func TestContextKeptAcrossCalls(t *testing.T) {
	server, client := pipePair(t)
	ctx, cancel := context.WithCancel(context.Background())
	send := func(msg string) <-chan error {
		errc := make(chan error, 1)
		go func() { errc <- client.Write(ctx, MessageText, []byte(msg)) }()
		return errc
	}
	for i := range 3 {
		errc := send(fmt.Sprint(i))
		_, msg, err := server.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), string(msg))
		require.NoError(t, <-errc)
	}
	cancel()
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, client.Write(ctx, MessageText, []byte("x")), context.Canceled)

	// Other contexts are not affected by the one that ended.
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	for _, readCtx := range []context.Context{context.Background(), other} {
		errc := make(chan error, 1)
		go func() { errc <- client.Write(readCtx, MessageText, []byte("after")) }()
		_, msg, err := server.Read(readCtx)
		require.NoError(t, err)
		assert.Equal(t, "after", string(msg))
		require.NoError(t, <-errc)
	}
}

// TestCloseIgnoresEarlierContexts checks that a context used by earlier reads, ending
// while Close waits for the peer, does not cut the closing handshake short.
func TestCloseIgnoresEarlierContexts(t *testing.T) {
	p := newRawPeer(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.send(frame{fin: true, op: opText, payload: []byte("first")})
	_, msg, err := p.conn.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, "first", string(msg))

	errc := make(chan error, 1)
	go func() { errc <- p.conn.Close(StatusNormalClosure, "") }()
	require.Equal(t, opClose, p.next().op)
	cancel()
	p.send(frame{fin: true, op: opClose, payload: []byte{0x03, 0xE8}})
	assert.NoError(t, <-errc)
}

func TestContextDeadline(t *testing.T) {
	server, _ := pipePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestContextMidFrame cuts a read and a write in the middle of a frame. The Conn stays
// usable after the read (a reader's context is its own: the next Reader discards the
// rest of the message, and a cut Read resumes, as TestReadCutMidFrameKeepsMessage
// checks); the write, whose frame is half sent, closes the Conn.
func TestContextMidFrame(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		p := newRawPeer(t, false)
		wire := encodeFrame(frame{fin: true, op: opBinary, payload: payloadOf(10)}, true, 10)
		p.write(wire[:len(wire)-5])
		ctx, cancel := context.WithCancel(context.Background())
		_, r, err := p.conn.Reader(ctx)
		require.NoError(t, err)
		buf := make([]byte, 5)
		_, err = io.ReadFull(r, buf)
		require.NoError(t, err)
		cancel()
		_, err = r.Read(buf) // five bytes of the frame are still to come
		assert.ErrorIs(t, err, context.Canceled)
		assert.False(t, p.conn.isClosed())

		p.write(wire[len(wire)-5:])
		p.send(frame{fin: true, op: opText, payload: []byte("after")})
		_, msg, err := p.conn.Read(waitContext(t))
		require.NoError(t, err)
		assert.Equal(t, "after", string(msg))
	})
	t.Run("write", func(t *testing.T) {
		server, client := pipePair(t)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- client.Write(ctx, MessageBinary, payloadOf(100)) }()
		// Take part of the frame off the pipe, then stop reading.
		buf := make([]byte, 3)
		_, err := io.ReadFull(server.nc, buf)
		require.NoError(t, err)
		cancel()
		err = <-errc
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestSecondReaderWaits(t *testing.T) {
	server, client := pipePair(t)
	require.True(t, server.readLock.tryLock()) // as if another goroutine were reading
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := server.Read(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	_, _, err = server.Reader(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	server.readLock.unlock()

	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("turn")) }()
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "turn", string(msg))
	require.NoError(t, <-errc)
}

// TestWriteWaitsForOpenWriter checks that a Write waits while another goroutine's
// message is open, and that a waiting Write gives up when its context ends or the Conn
// closes.
func TestWriteWaitsForOpenWriter(t *testing.T) {
	server, client := pipePair(t)
	w, err := client.Writer(context.Background(), MessageText)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, client.Write(ctx, MessageText, []byte("never")), context.Canceled)

	errc := make(chan error, 1)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("second")) }()
	waitWaiters(t, &client.msgLock, 1)
	go func() {
		_, err := w.Write([]byte("first"))
		errc <- errors.Join(err, w.Close())
	}()
	for _, want := range []string{"first", "second"} {
		_, msg, err := server.Read(context.Background())
		require.NoError(t, err)
		assert.Equal(t, want, string(msg))
	}
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)

	_, err = client.Writer(context.Background(), MessageText)
	require.NoError(t, err)
	go func() { errc <- client.Write(context.Background(), MessageText, []byte("closed")) }()
	waitWaiters(t, &client.msgLock, 1)
	require.NoError(t, client.CloseNow())
	assert.ErrorIs(t, <-errc, net.ErrClosed)
}

// TestPingGoesOutBetweenFramesOfAStream checks that a control frame waiting for the
// frame lock goes out before the next frame of a message being streamed: the writer that
// releases the lock must not take it back ahead of the waiter.
func TestPingGoesOutBetweenFramesOfAStream(t *testing.T) {
	conn, b := serverOverPipe(t)
	chunk := payloadOf(2 * writeBufferSize) // larger than the buffer: a frame of its own
	streamed := make(chan error, 1)
	go func() {
		w, err := conn.Writer(context.Background(), MessageBinary)
		for range 3 {
			if err == nil {
				_, err = w.Write(chunk)
			}
		}
		if err == nil {
			err = w.Close()
		}
		streamed <- err
	}()
	// The first frame has begun: net.Pipe makes the writer wait until it is read.
	br := bufio.NewReader(b)
	_, err := br.Peek(1)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	pinged := make(chan error, 1)
	go func() { pinged <- conn.Ping(ctx) }()
	waitWaiters(t, &conn.frameLock, 1)

	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opBinary, f.op)
	f, err = readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opPing, f.op, "the next data frame went out ahead of the waiting ping")

	cancel()
	assert.ErrorIs(t, <-pinged, context.Canceled)
	for {
		f, err := readRawFrame(br)
		require.NoError(t, err)
		if f.fin {
			break
		}
	}
	require.NoError(t, <-streamed)
}

// TestReaderDiscardsUnreadRest leaves a message half read and reads the next one, whole
// or streamed: the rest of the first is discarded, and its reader refused from then on,
// while the next message is still being streamed too.
func TestReaderDiscardsUnreadRest(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("next message streamed: %v", streamed), func(t *testing.T) {
			server, client := pipePair(t)
			errc := make(chan error, 1)
			go func() {
				errc <- errors.Join(
					client.Write(context.Background(), MessageText, payloadOf(10000)),
					client.Write(context.Background(), MessageBinary, []byte("second")))
			}()
			_, old, err := server.Reader(context.Background())
			require.NoError(t, err)
			buf := make([]byte, 10)
			_, err = io.ReadFull(old, buf)
			require.NoError(t, err)

			var typ MessageType
			var msg []byte
			if streamed {
				var r io.Reader
				typ, r, err = server.Reader(context.Background())
				require.NoError(t, err)
				n, err := old.Read(buf)
				assert.Zero(t, n)
				assert.ErrorIs(t, err, errReaderDiscarded, "while the next message is open")
				msg, err = io.ReadAll(r)
				require.NoError(t, err)
			} else {
				typ, msg, err = server.Read(context.Background())
				require.NoError(t, err)
			}
			assert.Equal(t, MessageBinary, typ)
			assert.Equal(t, "second", string(msg))
			require.NoError(t, <-errc)
			n, err := old.Read(buf) // the old reader is done, and says its message was cut
			assert.Zero(t, n)
			assert.ErrorIs(t, err, errReaderDiscarded)
		})
	}
}

func TestOldReaderAtItsEnd(t *testing.T) {
	server, client := pipePair(t)
	go func() {
		client.Write(context.Background(), MessageText, []byte("first"))
		client.Write(context.Background(), MessageText, []byte("second"))
	}()
	_, r, err := server.Reader(context.Background())
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "first", string(got))
	_, msg, err := server.Read(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "second", string(msg))
	n, err := r.Read(make([]byte, 8))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF, "a reader that had read its message whole still says EOF")
}

// TestOldReaderWhileNextMessageStarts reads from a message reader in one goroutine while
// another starts the next message: the old reader ends, and -race sees no race.
func TestOldReaderWhileNextMessageStarts(t *testing.T) {
	server, client := pipePair(t)
	go func() {
		client.Write(context.Background(), MessageText, payloadOf(10000))
		client.Write(context.Background(), MessageBinary, []byte("second"))
	}()
	_, r, err := server.Reader(context.Background())
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, r) // ends with the first message, wherever the other got to
	}()
	typ, r2, err := server.Reader(context.Background())
	require.NoError(t, err)
	<-done
	assert.Equal(t, MessageBinary, typ)
	got, err := io.ReadAll(r2)
	require.NoError(t, err)
	assert.Equal(t, "second", string(got))
}

func TestMisuse(t *testing.T) {
	server, client := pipePair(t)
	assert.Error(t, client.Write(context.Background(), MessageType(0), nil))
	assert.Error(t, client.Write(context.Background(), MessageType(9), nil))
	_, err := client.Writer(context.Background(), MessageType(8))
	assert.Error(t, err)

	errc := make(chan error, 1)
	go func() { _, _, err := server.Read(context.Background()); errc <- err }()
	w, err := client.Writer(context.Background(), MessageText)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, <-errc)
	assert.ErrorIs(t, w.Close(), net.ErrClosed)
	_, err = w.Write([]byte("late"))
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestOldWriterWhileNextStreams checks that a closed writer stays refused while the next
// message is written, and that the next message arrives as written.
func TestOldWriterWhileNextStreams(t *testing.T) {
	server, client := pipePair(t)
	reads := make(chan readOut, 2)
	go func() {
		for range 2 {
			typ, msg, err := server.Read(context.Background())
			reads <- readOut{typ, msg, err}
		}
	}()
	ctx := context.Background()
	old, err := client.Writer(ctx, MessageText)
	require.NoError(t, err)
	_, err = old.Write([]byte("first"))
	require.NoError(t, err)
	require.NoError(t, old.Close())

	w, err := client.Writer(ctx, MessageBinary)
	require.NoError(t, err)
	_, err = w.Write([]byte("sec"))
	require.NoError(t, err)
	_, err = old.Write([]byte("stray"))
	assert.ErrorIs(t, err, errWriterClosed)
	assert.ErrorIs(t, old.Close(), errWriterClosed)
	_, err = w.Write([]byte("ond"))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	for _, want := range []readOut{{MessageText, []byte("first"), nil}, {MessageBinary, []byte("second"), nil}} {
		got := <-reads
		require.NoError(t, got.err)
		assert.Equal(t, want.typ, got.typ)
		assert.Equal(t, string(want.msg), string(got.msg))
	}
}

// TestStreamingAllocations echoes messages over TCP through Reader and Writer with a
// buffer of the caller's, and counts the allocations of both ends.
func TestStreamingAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	client, a := acceptThrough(t, nil)
	server := a.conn

	for _, ctx := range []context.Context{context.Background(), waitContext(t)} {
		for _, size := range []int{16, 4096, 64 << 10} {
			payload := payloadOf(size)
			sbuf, cbuf := make([]byte, 8192), make([]byte, size)
			// The server's end echoes from a goroutine of its own, started once.
			next, echoed := make(chan bool), make(chan error)
			go func() {
				src := new(onlyReader)
				for <-next {
					typ, r, err := server.Reader(ctx)
					if err == nil {
						var w io.WriteCloser
						if w, err = server.Writer(ctx, typ); err == nil {
							src.Reader = r
							_, err = io.CopyBuffer(w, src, sbuf)
							err = errors.Join(err, w.Close())
						}
					}
					echoed <- err
				}
			}()
			roundTrip := func() {
				next <- true
				w, err := client.Writer(ctx, MessageBinary)
				require.NoError(t, err)
				_, err = w.Write(payload)
				require.NoError(t, err)
				require.NoError(t, w.Close())
				_, r, err := client.Reader(ctx)
				require.NoError(t, err)
				_, err = io.ReadFull(r, cbuf)
				require.NoError(t, err)
				require.NoError(t, <-echoed)
			}
			roundTrip() // the first message takes the pooled buffers and the watches
			allocs := testing.AllocsPerRun(50, roundTrip)
			next <- false
			assert.Equal(t, payload, cbuf)
			// One reader and one writer for each message at each end (their own, so that
			// one kept past its message cannot touch a later one), nothing else.
			assert.Equal(t, 4.0, allocs, "%d B, context %v", size, ctx)
		}
	}
}

// onlyReader hides the reader's other methods from io.CopyBuffer.
type onlyReader struct{ io.Reader }

// TestReadAllocatesOnlyItsMessage echoes messages over TCP through Read and Write, and
// counts the allocations of both ends: the two slices Read returns, nothing else.
func TestReadAllocatesOnlyItsMessage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	client, a := acceptThrough(t, nil)
	server := a.conn

	ctx := waitContext(t)
	for _, size := range []int{16, 4096, 64 << 10} {
		payload := payloadOf(size)
		next, echoed := make(chan bool), make(chan error)
		go func() {
			for <-next {
				typ, msg, err := server.Read(ctx)
				if err == nil {
					err = server.Write(ctx, typ, msg)
				}
				echoed <- err
			}
		}()
		var got []byte
		roundTrip := func() {
			next <- true
			require.NoError(t, client.Write(ctx, MessageBinary, payload))
			var err error
			_, got, err = client.Read(ctx)
			require.NoError(t, err)
			require.NoError(t, <-echoed)
		}
		roundTrip()
		allocs := testing.AllocsPerRun(50, roundTrip)
		next <- false
		assert.Equal(t, payload, got)
		// The two messages Read returns; a message larger than what one read of the
		// socket brings grows its slice with the bytes that arrive (read.go, room).
		want := 2.0
		if size > readBufferSize {
			want = 4
		}
		assert.Equal(t, want, allocs, "%d B", size)
	}
}

// TestPingWhileWriteBlocks checks that a write blocked because the peer does not read
// stops neither the reader nor the pong: the reader goes on delivering messages, and the
// pong follows the frame being written.
func TestPingWhileWriteBlocks(t *testing.T) {
	conn, b := serverOverPipe(t)
	big := payloadOf(64 << 10)
	wrote := make(chan error, 1)
	go func() { wrote <- conn.Write(context.Background(), MessageBinary, big) }()
	// The peer sees the frame begin, then stops reading: the write blocks, holding the
	// connection's frames.
	br := bufio.NewReader(b)
	_, err := br.Peek(1)
	require.NoError(t, err)

	reads := make(chan readOut, 1)
	ctx := waitContext(t)
	go func() {
		typ, msg, err := conn.Read(ctx)
		reads <- readOut{typ, msg, err}
	}()
	go func() {
		b.Write(encodeFrame(frame{fin: true, op: opPing, payload: []byte("still there?")}, true, 12))
		b.Write(encodeFrame(frame{fin: true, op: opText, payload: []byte("after the ping")}, true, 14))
	}()
	got := <-reads
	require.NoError(t, got.err, "the reader waited for the blocked write")
	assert.Equal(t, "after the ping", string(got.msg))

	// Now the peer reads: the whole message, then the pong.
	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opBinary, f.op)
	assert.Equal(t, big, f.payload)
	f, err = readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opPong, f.op)
	assert.Equal(t, "still there?", string(f.payload))
	require.NoError(t, <-wrote)
}

// writeStarts is a net.Conn that tells when a write begins with a given first byte: that
// of a pong frame, say.
type writeStarts struct {
	net.Conn
	lead    byte
	started chan struct{}
}

func newWriteStarts(nc net.Conn, lead byte) *writeStarts {
	return &writeStarts{Conn: nc, lead: lead, started: make(chan struct{}, 1)}
}

func (c *writeStarts) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == c.lead {
		select {
		case c.started <- struct{}{}:
		default:
		}
	}
	return c.Conn.Write(p)
}

// begun waits for the next such write to begin.
func (c *writeStarts) begun(t *testing.T, wait context.Context) {
	t.Helper()
	select {
	case <-c.started:
	case <-wait.Done():
		t.Fatalf("no write began with %#x", c.lead)
	}
}

// pongPipe returns a server Conn on one end of a net.Pipe that tells when it begins to
// write a pong, and the other end.
func pongPipe(t *testing.T) (*Conn, *writeStarts, net.Conn) {
	a, b := net.Pipe()
	nc := newWriteStarts(a, 0x80|byte(opPong))
	conn := newConn(nc, nil, false, "")
	t.Cleanup(func() {
		conn.CloseNow()
		b.Close()
	})
	return conn, nc, b
}

// expectPongAfterNextWrite writes a message on conn and expects the peer, reading from
// br, to receive it and then the pong left waiting, with payload.
func expectPongAfterNextWrite(t *testing.T, conn *Conn, br *bufio.Reader, payload string) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { sent <- conn.Write(context.Background(), MessageText, []byte("here")) }()
	f, err := readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opText, f.op)
	assert.Equal(t, "here", string(f.payload))
	f, err = readRawFrame(br)
	require.NoError(t, err)
	assert.Equal(t, opPong, f.op)
	assert.Equal(t, payload, string(f.payload))
	require.NoError(t, <-sent)
}

// cutWhileWriting runs call with a context that it cancels once nc sees the write it
// watches for begin, which nobody reads, and returns call's error. The test fails if
// call outlives its context.
func cutWhileWriting(t *testing.T, wait context.Context, nc *writeStarts, call func(context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	nc.begun(t, wait)
	cancel()
	select {
	case err := <-done:
		return err
	case <-wait.Done():
		t.Fatal("the call outlived its context, blocked on a write")
		return nil
	}
}

// TestPongAnswersToReadContext checks that a peer that pings and does not read cannot hold
// a read past its context: the pong the reader writes answers to that context. Cut short
// before any byte left, the pong waits, and goes out after the next frame written.
func TestPongAnswersToReadContext(t *testing.T) {
	conn, nc, b := pongPipe(t)
	go b.Write(encodeFrame(frame{fin: true, op: opPing, payload: []byte("there?")}, true, 6))
	err := cutWhileWriting(t, waitContext(t), nc, func(ctx context.Context) error {
		_, _, err := conn.Read(ctx)
		return err
	})
	require.ErrorIs(t, err, context.Canceled)

	// The Conn is still usable: the ping was consumed, and the pong follows its next frame.
	go b.Write(encodeFrame(frame{fin: true, op: opText, payload: []byte("next")}, true, 4))
	_, msg, err := conn.Read(waitContext(t))
	require.NoError(t, err)
	assert.Equal(t, "next", string(msg))
	expectPongAfterNextWrite(t, conn, bufio.NewReader(b), "there?")
}

// TestWaitingPongAnswersToWriteContext checks that a pong left waiting for a blocked write
// answers to that write's context when the write sends it: the write cannot be held past
// its context by the pong. The pong then goes out after the next frame.
func TestWaitingPongAnswersToWriteContext(t *testing.T) {
	conn, nc, b := pongPipe(t)
	wait := waitContext(t)
	big := payloadOf(64 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	wrote := make(chan error, 1)
	go func() { wrote <- conn.Write(ctx, MessageBinary, big) }()
	br := bufio.NewReader(b)
	_, err := br.Peek(1) // the write has begun; the peer stops reading
	require.NoError(t, err)

	// A ping while the write holds the connection: its pong waits for the write.
	go b.Write(append(encodeFrame(frame{fin: true, op: opPing, payload: []byte("there?")}, true, 6),
		encodeFrame(frame{fin: true, op: opText, payload: []byte("after")}, true, 5)...))
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "after", string(msg))

	// The peer reads the message, not the pong the write then sends.
	f, err := readRawFrame(br)
	require.NoError(t, err)
	require.Equal(t, big, f.payload)
	nc.begun(t, wait)
	cancel()
	select {
	case err := <-wrote:
		require.NoError(t, err, "the message went out whole")
	case <-wait.Done():
		t.Fatal("the write outlived its context, blocked on the pong")
	}

	expectPongAfterNextWrite(t, conn, br, "there?")
}

// heldPipe returns a server Conn with write coalescing on one end of a net.Pipe that
// tells when a write of a text frame begins, and the other end. The peer has sent "one"
// and "two" at once; the Conn has read "one" and answered "answer one", which it holds
// back since "two" is buffered.
func heldPipe(t *testing.T, wait context.Context) (*Conn, *writeStarts, net.Conn) {
	a, b := net.Pipe()
	nc := newWriteStarts(a, 0x80|byte(opText))
	conn := newConn(nc, nil, false, "")
	conn.coalesceWrites()
	t.Cleanup(func() {
		conn.CloseNow()
		b.Close()
	})
	go b.Write(append(encodeFrame(frame{fin: true, op: opText, payload: []byte("one")}, true, 3),
		encodeFrame(frame{fin: true, op: opText, payload: []byte("two")}, true, 3)...))
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "one", string(msg))
	require.NoError(t, conn.Write(wait, MessageText, []byte("answer one")))
	return conn, nc, b
}

// expectAnswers writes "answer two" on conn and expects the peer, reading from b, to
// receive the held "answer one" and then it.
func expectAnswers(t *testing.T, wait context.Context, conn *Conn, b net.Conn) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { sent <- conn.Write(wait, MessageText, []byte("answer two")) }()
	br := bufio.NewReader(b)
	for _, want := range []string{"answer one", "answer two"} {
		f, err := readRawFrame(br)
		require.NoError(t, err)
		require.Equal(t, want, string(f.payload))
	}
	require.NoError(t, <-sent)
}

// TestHeldFramesSurviveACutWrite checks that with write coalescing, a write that its
// context cuts short before any byte left does not take with it the frames held back
// from earlier writes, which returned nil: they go out with the next write.
func TestHeldFramesSurviveACutWrite(t *testing.T) {
	wait := waitContext(t)
	conn, nc, b := heldPipe(t, wait)
	// The next write is too large to be held; it finds the peer not reading, and its
	// context ends.
	err := cutWhileWriting(t, wait, nc, func(ctx context.Context) error {
		return conn.Write(ctx, MessageBinary, payloadOf(maxHeld+1))
	})
	require.ErrorIs(t, err, context.Canceled)
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "two", string(msg))
	expectAnswers(t, wait, conn, b)
}

// TestHeldFramesAnswerToReadContext checks that the held frames a reader sends before it
// waits for the network answer to the read's context: a peer that does not read cannot
// hold the read past it. Cut short, they stay held for the next write.
func TestHeldFramesAnswerToReadContext(t *testing.T) {
	wait := waitContext(t)
	conn, nc, b := heldPipe(t, wait)
	_, msg, err := conn.Read(wait)
	require.NoError(t, err)
	require.Equal(t, "two", string(msg))
	// Nothing is buffered now: the next read sends "answer one" before it waits.
	err = cutWhileWriting(t, wait, nc, func(ctx context.Context) error {
		_, _, err := conn.Read(ctx)
		return err
	})
	require.ErrorIs(t, err, context.Canceled)
	expectAnswers(t, wait, conn, b)
}
