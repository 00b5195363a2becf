package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"net"
	"runtime"
	"sync"
	"testing"

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
	assert.Less(t, idleTakeover, int64(34<<10), "doc.go, Compression: 32 KiB")
	assert.Less(t, noContext, int64(48<<10), "doc.go, Compression: 45 KiB")
	assert.Less(t, takeover, int64(80<<10), "doc.go, Compression: 77 KiB")
}
