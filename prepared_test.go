package websocket

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// preparedSizes are the payload lengths prepared messages are tried at: each header
// length, a buffer's worth and one past it.
var preparedSizes = []int{0, 1, 125, 126, 127, writeBufferSize, writeBufferSize + 1, 65535, 65536}

func mustPrepare(t testing.TB, typ MessageType, p []byte) *PreparedMessage {
	t.Helper()
	m, err := NewPreparedMessage(typ, p)
	require.NoError(t, err)
	return m
}

// TestPreparedWire checks the frames a prepared message makes, in both roles: one final
// frame of the message's type with the payload, which a server sends as prepared.
func TestPreparedWire(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		for _, size := range preparedSizes {
			t.Run(fmt.Sprintf("client=%v/%d", connIsClient, size), func(t *testing.T) {
				p := newRawPeer(t, connIsClient)
				payload := payloadOf(size)
				m := mustPrepare(t, MessageBinary, payload)
				for range 2 {
					require.NoError(t, p.conn.WritePrepared(context.Background(), m))
					assert.Equal(t, frame{fin: true, op: opBinary, payload: payload}, p.next())
				}
				want := append(appendHeader(nil, header{fin: true, op: opBinary, length: int64(size)}), payload...)
				assert.Equal(t, want, m.frame, "the prepared frame changed")
			})
		}
	}
}

// recordConn is a net.Conn that keeps what is written to it, and reads nothing.
type recordConn struct {
	memConn
	mu    sync.Mutex
	wrote bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wrote.Write(p)
}

// TestPreparedClientMasks sends one prepared message three times from a client: each
// frame is masked with a key of its own, and the prepared bytes stay as they were.
func TestPreparedClientMasks(t *testing.T) {
	for _, size := range []int{16, writeBufferSize + 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			rc := &recordConn{}
			c := newConn(rc, nil, true, "")
			defer c.CloseNow()
			payload := payloadOf(size)
			m := mustPrepare(t, MessageText, payload)
			before := bytes.Clone(m.frame)
			const sends = 3
			for range sends {
				require.NoError(t, c.WritePrepared(context.Background(), m))
			}
			assert.Equal(t, before, m.frame, "sending modified the prepared message")

			br := bufio.NewReader(bytes.NewReader(rc.wrote.Bytes()))
			keys := map[uint32]bool{}
			for range sends {
				var hb [maxHeaderSize]byte
				_, err := io.ReadFull(br, hb[:2])
				require.NoError(t, err)
				n := headerSize(hb[1])
				_, err = io.ReadFull(br, hb[2:n])
				require.NoError(t, err)
				h, _, err := parseHeader(hb[:n])
				require.NoError(t, err)
				require.True(t, h.masked, "RFC 6455 §5.3: a client masks every frame")
				keys[h.key] = true
				got := make([]byte, h.length)
				_, err = io.ReadFull(br, got)
				require.NoError(t, err)
				assert.NotEqual(t, payload[:8], got[:8], "payload went out unmasked")
				mask(h.key, got)
				assert.Equal(t, payload, got)
			}
			_, err := br.ReadByte()
			assert.ErrorIs(t, err, io.EOF, "more than the frames sent")
			assert.Len(t, keys, sends, "a masking key was used twice")
		})
	}
}

// TestPreparedCopiesPayload checks that the caller may reuse its slice at once.
func TestPreparedCopiesPayload(t *testing.T) {
	p := newRawPeer(t, false)
	payload := []byte("hello, everyone")
	m := mustPrepare(t, MessageText, payload)
	copy(payload, "HELLO")
	require.NoError(t, p.conn.WritePrepared(context.Background(), m))
	assert.Equal(t, []byte("hello, everyone"), p.next().payload)
}

// TestPreparedMisuse checks that misuse returns errors, and panics nowhere.
func TestPreparedMisuse(t *testing.T) {
	_, err := NewPreparedMessage(MessageType(9), []byte("x"))
	assert.ErrorIs(t, err, errBadMessageType)
	_, err = NewPreparedMessage(0, nil)
	assert.ErrorIs(t, err, errBadMessageType)

	server, _ := pipePair(t)
	assert.ErrorIs(t, server.WritePrepared(context.Background(), nil), errNilPrepared)
	assert.ErrorIs(t, server.Send(nil), errNilPrepared)
	assert.Zero(t, server.Buffered())

	m := mustPrepare(t, MessageText, []byte("x"))
	require.NoError(t, server.CloseNow())
	assert.ErrorIs(t, server.WritePrepared(context.Background(), m), net.ErrClosed)
	assert.ErrorIs(t, server.Send(m), net.ErrClosed)
}

// TestWritePreparedContext checks that WritePrepared follows Write's rules on contexts:
// one done on entry, or ending the call before any byte left, costs ctx.Err() only.
func TestWritePreparedContext(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		if tr.name == "tls" {
			t.Skip("over TLS a write cut short closes the Conn")
		}
		server, client := tr.pair(t, nil)
		m := mustPrepare(t, MessageText, []byte("hello"))

		done, cancel := context.WithCancel(context.Background())
		cancel()
		assert.ErrorIs(t, server.WritePrepared(done, m), context.Canceled)
		errc := make(chan error, 1)
		go func() { errc <- server.WritePrepared(context.Background(), m) }()
		_, got, err := client.Read(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "hello", string(got))
		require.NoError(t, <-errc)
	})
}

// TestPreparedConcurrent has several goroutines send prepared messages to many Conns at
// once, each with its own sequence, through WritePrepared and Send in turn: every
// receiver gets every message, exactly, and each goroutine's in the order it sent them.
// With compression, the pairs have windows of their own, so that several compressed
// forms of one message are made at once.
func TestPreparedConcurrent(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		for _, deflate := range []bool{false, true} {
			t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) { testPreparedConcurrent(t, tr, deflate) })
		}
	})
}

func testPreparedConcurrent(t *testing.T, tr transport, deflate bool) {
	const pairs, senders, each = 3, 4, 20
	var conns []*Conn // servers and clients: every Conn sends and receives
	for i := range pairs {
		s, c := tr.pair(t, nil)
		if deflate {
			bits := []int{15, 9, 8}[i]
			s.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: bits})
			c.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: bits, windowBits: 15})
		}
		conns = append(conns, s, c)
	}
	msgs := make([][]*PreparedMessage, senders)
	for g := range senders {
		for i := range each {
			size := preparedSizes[(g+i)%len(preparedSizes)]
			p := bytes.Repeat([]byte{byte(g), byte(i)}, size/2+2)[:max(size, 2)]
			msgs[g] = append(msgs[g], mustPrepare(t, MessageBinary, p))
		}
	}

	var wg sync.WaitGroup
	for _, c := range conns {
		c.SetReadLimit(0)
		wg.Go(func() {
			next := make([]int, senders)
			for range senders * each {
				_, got, err := c.Read(context.Background())
				if !assert.NoError(t, err) {
					return
				}
				// Read on whatever arrives, so that no sender is left waiting.
				g, i := int(got[0]), int(got[1])
				if assert.Less(t, g, senders) && assert.Less(t, i, each) {
					assert.Equal(t, next[g], i, "sender %d's messages out of order", g)
					assert.True(t, bytes.Equal(msgs[g][i].payload(), got), "message %d of sender %d", i, g)
					next[g] = i + 1
				}
			}
		})
	}
	for g := range senders {
		wg.Go(func() {
			for i, m := range msgs[g] {
				for _, c := range conns {
					if i%2 == 0 {
						assert.NoError(t, c.Send(m))
					} else {
						assert.NoError(t, c.WritePrepared(context.Background(), m))
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestPreparedDeflate sends compressed prepared messages between peers that agreed on
// different windows and context takeover settings: each decodes them. Each window size
// gets one compressed form, made once, which is exactly what Write sends.
func TestPreparedDeflate(t *testing.T) {
	kinds := []struct {
		name string
		typ  MessageType
		p    []byte
	}{
		{"short", MessageText, []byte("under the threshold, sent as it is")},
		{"text", MessageText, wordsOf(20000, 1)},
		{"noise", MessageBinary, noiseOf(5000, 2)},
	}
	for _, kind := range kinds {
		m := mustPrepare(t, kind.typ, kind.p) // one message for every setup
		for _, setup := range deflateSetups {
			t.Run(kind.name+"/"+setup.name, func(t *testing.T) {
				server, client := deflatePair(t, setup.server, setup.client)
				client.SetReadLimit(0)
				server.SetReadLimit(0)
				for _, dir := range []struct {
					name     string
					from, to *Conn
				}{{"server to client", server, client}, {"client to server", client, server}} {
					errc := make(chan error, 1)
					go func() { errc <- dir.from.WritePrepared(context.Background(), m) }()
					typ, got, err := dir.to.Read(context.Background())
					require.NoError(t, err, dir.name)
					assert.Equal(t, kind.typ, typ, dir.name)
					assert.Equal(t, kind.p, got, dir.name)
					require.NoError(t, <-errc, dir.name)
				}
			})
		}
		made := 0
		for i := range m.deflated {
			if m.deflated[i].frame != nil {
				made++
			}
		}
		if len(kind.p) < compressThreshold {
			assert.Zero(t, made, "a message under the threshold was compressed")
		} else {
			assert.Equal(t, 4, made, "one form for each window: 15 bits, shared by two setups, 12, 9 and 8")
		}
	}

	// The compressed form is byte for byte what Write sends on a Conn with that window.
	for _, bits := range []int{8, 9, 12, 15} {
		t.Run(fmt.Sprintf("as Write/%d bits", bits), func(t *testing.T) {
			p := newRawPeer(t, false)
			p.conn.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: bits})
			text := wordsOf(20000, 3)
			require.NoError(t, p.conn.Write(context.Background(), MessageText, text))
			var written []byte
			for f := p.next(); ; f = p.next() {
				written = append(written, f.payload...)
				if f.fin {
					break
				}
			}
			m := mustPrepare(t, MessageText, text)
			require.NoError(t, p.conn.WritePrepared(context.Background(), m))
			f := p.next()
			assert.Equal(t, rsv1, f.rsv)
			assert.Equal(t, written, f.payload)
			assert.Equal(t, text, inflateFrames(t, f))
		})
	}
}

// discardConn is a net.Conn that takes every write and reads nothing.
type discardConn struct{ memConn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// TestPreparedAllocations checks that sending a prepared message allocates nothing, on a
// server and on a client, compressed or not, once the compressed form is made.
func TestPreparedAllocations(t *testing.T) {
	for _, client := range []bool{false, true} {
		for _, deflate := range []bool{false, true} {
			for _, size := range []int{128, 16 << 10} {
				t.Run(fmt.Sprintf("client=%v/deflate=%v/%d", client, deflate, size), func(t *testing.T) {
					c := newConn(&discardConn{}, nil, client, "")
					defer c.CloseNow()
					if deflate {
						c.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15})
					}
					m := mustPrepare(t, MessageText, wordsOf(size, 1))
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					require.NoError(t, c.WritePrepared(ctx, m))
					allocs := testing.AllocsPerRun(100, func() {
						if err := c.WritePrepared(ctx, m); err != nil {
							t.Fatal(err)
						}
					})
					assert.Zero(t, allocs)
				})
			}
		}
	}
}

// TestPreparedFrameLength reads back the length of the prepared frame's header, which
// must match what the header announces.
func TestPreparedFrameLength(t *testing.T) {
	for _, size := range preparedSizes {
		m := mustPrepare(t, MessageBinary, payloadOf(size))
		h, n, err := parseHeader(m.frame)
		require.NoError(t, err)
		assert.Equal(t, m.hdr, n)
		assert.Equal(t, int64(size), h.length)
		assert.Equal(t, size, len(m.payload()))
	}
}

// BenchmarkBroadcast sends one message to 100 server Conns whose connections take every
// write at once, per iteration, and reports the time per delivery: Write in a loop,
// WritePrepared in a loop with the message prepared for each iteration, and Send. The
// compressed variants negotiate permessage-deflate with a 32 KiB window.
func BenchmarkBroadcast(b *testing.B) {
	const receivers = 100
	for _, deflate := range []bool{false, true} {
		for _, size := range []int{128, 16 << 10} {
			msg := wordsOf(size, 1)
			conns := make([]*Conn, receivers)
			for i := range conns {
				conns[i] = newConn(&discardConn{}, nil, false, "")
				conns[i].sq.max = 1 << 30 // the loop may run ahead of the writing goroutines
				if deflate {
					conns[i].useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15})
				}
			}
			name := fmt.Sprintf("deflate=%v/%d", deflate, size)
			ctx := context.Background()
			report := func(b *testing.B) {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*receivers), "ns/delivery")
			}
			b.Run(name+"/Write", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for _, c := range conns {
						if err := c.Write(ctx, MessageText, msg); err != nil {
							b.Fatal(err)
						}
					}
				}
				report(b)
			})
			b.Run(name+"/WritePrepared", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m, _ := NewPreparedMessage(MessageText, msg)
					for _, c := range conns {
						if err := c.WritePrepared(ctx, m); err != nil {
							b.Fatal(err)
						}
					}
				}
				report(b)
			})
			b.Run(name+"/Send", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m, _ := NewPreparedMessage(MessageText, msg)
					for _, c := range conns {
						if err := c.Send(m); err != nil {
							b.Fatal(err)
						}
					}
				}
				// Wait for the queues to drain: a Write sends what waits first.
				for _, c := range conns {
					c.Write(ctx, MessageText, nil)
				}
				report(b)
			})
			for _, c := range conns {
				c.CloseNow()
			}
		}
	}
}

// TestPreparedDeflateFresh compresses a message right after one it repeats, with the
// pooled compressor the first one left, at each kind of window: the second must stand
// alone (RFC 7692 §7.2.3.1, our side takes no context over), without a back-reference
// into the message before it.
func TestPreparedDeflateFresh(t *testing.T) {
	for _, bits := range []int{8, 9, 12, 15} {
		t.Run(fmt.Sprintf("%d bits", bits), func(t *testing.T) {
			text := wordsOf(3000, 5)
			first := mustPrepare(t, MessageText, text)
			first.deflate(bits)
			second := mustPrepare(t, MessageText, text)
			wire, hdr := second.deflate(bits)
			h, n, err := parseHeader(wire)
			require.NoError(t, err)
			require.Equal(t, hdr, n)
			assert.Equal(t, rsv1, h.rsv)
			assert.Equal(t, text, inflateFrames(t, frame{payload: wire[hdr:]}))
		})
	}
}

// TestPreparedDeflaterKeeps checks what a pooled compressor keeps of its output buffer:
// its room, emptied, up to maxKeptDeflated, and nothing past it.
func TestPreparedDeflaterKeeps(t *testing.T) {
	for _, tc := range []struct {
		cap  int
		kept bool
	}{{100, true}, {4096, true}, {maxKeptDeflated, true}, {maxKeptDeflated + 1, false}} {
		var pool sync.Pool
		d := &preparedDeflater{out: make([]byte, 100, tc.cap)}
		d.put(&pool)
		assert.Empty(t, d.out, "cap %d", tc.cap)
		assert.Equal(t, tc.kept, d.out != nil, "cap %d", tc.cap)
		if tc.kept {
			assert.Equal(t, tc.cap, cap(d.out))
		}
	}
}

// TestPreparedDeflateAllocations checks that compressing a prepared message, once the
// pool holds a compressor, allocates only the compressed frame: the compressor's output
// buffer keeps its size from one message to the next.
func TestPreparedDeflateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race, sync.Pool drops compressors at random")
	}
	m := mustPrepare(t, MessageText, wordsOf(16<<10, 3))
	m.deflate(maxWindowBits)
	allocs := testing.AllocsPerRun(20, func() { m.deflate(maxWindowBits) })
	assert.Equal(t, 1.0, allocs)
}
