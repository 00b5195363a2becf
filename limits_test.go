package websocket

import (
	"context"
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryFollowsArrivingBytes has peers announce a frame as large as the read limit
// and send 15 bytes of it: the memory each Conn takes for the message must follow the
// bytes that arrived, not the length announced, for plain and compressed messages. (An
// open compressed message also holds a decompressor, which doc.go's Compression counts.)
func TestMemoryFollowsArrivingBytes(t *testing.T) {
	const conns = 100
	for _, compressed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "compressed"}[compressed], func(t *testing.T) {
			var held []*Conn
			var peers []net.Conn
			var cancels []context.CancelFunc
			var ctxs []context.Context
			for range conns {
				a, b := net.Pipe()
				ctx, cancel := context.WithCancel(context.Background())
				server := newConn(&hookConn{Conn: a, afterRead: func(n int) {
					if n > 0 {
						cancel() // the 15 bytes are in: cut the wait for the rest
					}
				}}, nil, false, "")
				if compressed {
					server.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15})
				}
				t.Cleanup(func() {
					server.CloseNow()
					b.Close()
				})
				held, peers, ctxs, cancels = append(held, server), append(peers, b), append(ctxs, ctx), append(cancels, cancel)
			}
			var rsv byte
			if compressed {
				rsv = rsv1
			}
			wire := encodeFrame(frame{fin: true, rsv: rsv, op: opBinary, payload: make([]byte, 15)}, true, defaultReadLimit)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i, server := range held {
				go peers[i].Write(wire)
				_, _, err := server.Read(ctxs[i])
				require.ErrorIs(t, err, context.Canceled)
				assert.LessOrEqual(t, cap(server.rd.kept), 4096)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			// What was allocated, kept or not: a Read cut short may drop its buffer.
			perConn := int64(after.TotalAlloc-before.TotalAlloc) / conns
			t.Logf("allocated per connection: %d bytes, heap growth %d bytes", perConn,
				(int64(after.HeapAlloc)-int64(before.HeapAlloc))/conns)
			if !compressed {
				assert.Less(t, perConn, int64(8192)) // the race detector adds a few KiB
			} // else the open message holds a decompressor: see doc.go, Compression

			runtime.KeepAlive(held)
			for _, cancel := range cancels {
				cancel()
			}
		})
	}
}

// TestReadLimitReason sends frames just past the read limit: the close frame's reason is
// the error's, whole (at most 123 bytes), and names the limit that was set, also for a
// compressed message, whose compressed size is bounded a little above it.
func TestReadLimitReason(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "compressed"}[compressed], func(t *testing.T) {
			p := newRawPeer(t, false)
			length := int64(defaultReadLimit + 1)
			var rsv byte
			if compressed {
				p.conn.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15})
				rsv, length = rsv1, compressedLimit(defaultReadLimit)+1
			}
			p.readLoop()
			p.write(encodeFrame(frame{fin: true, rsv: rsv, op: opBinary}, true, length))
			r := p.nextRead()
			require.ErrorIs(t, r.err, ErrMessageTooBig)
			var pe *ProtocolError
			require.ErrorAs(t, r.err, &pe)
			assert.Contains(t, pe.Reason, "the read limit of 1048576 bytes")
			f := p.expectClose(StatusMessageTooBig)
			assert.LessOrEqual(t, len(f.payload)-2, maxCloseReason)
			assert.Equal(t, pe.Reason, string(f.payload[2:]), "the reason was cut")
		})
	}
}

// TestEmptyFramesBound sends a message with maxEmptyFrames empty frames before its last,
// which is read, and one with one more, which fails the Conn with 1008.
func TestEmptyFramesBound(t *testing.T) {
	for _, extra := range []int{0, 1} {
		t.Run(map[int]string{0: "at the bound", 1: "past it"}[extra], func(t *testing.T) {
			p := newRawPeer(t, false)
			p.readLoop()
			var wire []byte
			wire = append(wire, p.encode(frame{op: opText})...)
			for range maxEmptyFrames - 1 + extra {
				wire = append(wire, p.encode(frame{op: opContinuation})...)
			}
			wire = append(wire, p.encode(frame{fin: true, op: opContinuation, payload: []byte("end")})...)
			p.write(wire)
			r := p.nextRead()
			if extra == 0 {
				require.NoError(t, r.err)
				assert.Equal(t, "end", string(r.msg))
				return
			}
			assert.Equal(t, StatusPolicyViolation, protocolCode(r.err), "%v", r.err)
			p.expectClose(StatusPolicyViolation)
		})
	}
}
