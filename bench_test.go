package websocket

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Benchmarks of the codec and of a Conn's message paths, in process. Side-by-side
// comparisons with other libraries over TCP live in the bench module (bench/run.sh).

var benchHeaderSink header

func BenchmarkFrameHeader(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    header
	}{
		{"7bit", header{fin: true, op: opBinary, length: 64}},
		{"16bit-masked", header{fin: true, op: opText, length: 4096, masked: true, key: 0x12345678}},
		{"64bit-masked", header{fin: true, op: opBinary, length: 1 << 20, masked: true, key: 0x12345678}},
	} {
		wire := appendHeader(nil, tc.h)
		b.Run("encode/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, maxHeaderSize)
			for b.Loop() {
				buf = appendHeader(buf[:0], tc.h)
			}
			if !bytes.Equal(buf, wire) {
				b.Fatalf("encoded % x, want % x", buf, wire)
			}
		})
		b.Run("decode/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, _, err := parseHeader(wire)
				if err != nil {
					b.Fatal(err)
				}
				benchHeaderSink = h
			}
			if benchHeaderSink != tc.h {
				b.Fatalf("decoded %+v, want %+v", benchHeaderSink, tc.h)
			}
		})
	}
}

// benchLoopback is an in-memory net.Conn that reads back what was written to it. A Conn
// pair sharing one carries messages in one direction with no goroutine or system call:
// each iteration writes a message whole, then reads it.
type benchLoopback struct{ buf bytes.Buffer }

func (l *benchLoopback) Read(p []byte) (int, error)       { return l.buf.Read(p) }
func (l *benchLoopback) Write(p []byte) (int, error)      { return l.buf.Write(p) }
func (l *benchLoopback) Close() error                     { return nil }
func (l *benchLoopback) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (l *benchLoopback) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (l *benchLoopback) SetDeadline(time.Time) error      { return nil }
func (l *benchLoopback) SetReadDeadline(time.Time) error  { return nil }
func (l *benchLoopback) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkWriteRead sends one binary message and receives it, per iteration:
//
//   - client-to-server masks on one side and unmasks on the other, the way a server
//     receives; server-to-client sends unmasked, the way a server sends;
//   - message is Write then Read (Read allocates the message);
//   - stream is Writer (one Write of the payload, then Close) then Reader, read into a
//     32 KiB buffer the caller owns;
//   - the -ctx variants pass a context that can be canceled, so that every call watches
//     it, as a server does with the request's context.
func BenchmarkWriteRead(b *testing.B) {
	for _, size := range []int{16, 4096, 1 << 20} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for _, dir := range []struct {
				name   string
				client bool // the sender is a client
			}{{"client-to-server", true}, {"server-to-client", false}} {
				for _, mode := range []struct {
					name   string
					stream bool
					cancel bool
				}{{"message", false, false}, {"stream", true, false}, {"message-ctx", false, true}, {"stream-ctx", true, true}} {
					b.Run(dir.name+"/"+mode.name, func(b *testing.B) {
						benchWriteRead(b, size, dir.client, mode.stream, mode.cancel)
					})
				}
			}
		})
	}
}

func benchWriteRead(b *testing.B, size int, client, stream, cancel bool) {
	wire := &benchLoopback{}
	from := newConn(wire, bufio.NewReader(wire), client, "")
	to := newConn(wire, bufio.NewReaderSize(wire, 4096), !client, "")
	to.SetReadLimit(int64(size))
	ctx := context.Background()
	if cancel {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
	}
	payload := bytes.Repeat([]byte{'x'}, size)
	buf := make([]byte, 32<<10)

	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		got := 0
		if stream {
			w, err := from.Writer(ctx, MessageBinary)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Write(payload); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			_, r, err := to.Reader(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for {
				n, err := r.Read(buf)
				got += n
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		} else {
			if err := from.Write(ctx, MessageBinary, payload); err != nil {
				b.Fatal(err)
			}
			_, msg, err := to.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			got = len(msg)
		}
		if got != size {
			b.Fatalf("read %d bytes, sent %d", got, size)
		}
	}
	if wire.buf.Len() != 0 {
		b.Fatalf("%d bytes left unread", wire.buf.Len())
	}
}

// BenchmarkAccept measures the server's handshake alone, from a parsed request to a Conn.
func BenchmarkAccept(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/chat", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set("Origin", "http://example.com")
	b.ReportAllocs()
	for b.Loop() {
		nc := &memConn{r: bytes.NewReader(nil)}
		w := &hijackRecorder{header: make(http.Header), nc: nc, br: bufio.NewReader(nc)}
		if _, err := Accept(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}
