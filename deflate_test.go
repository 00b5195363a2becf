package websocket

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wordsOf returns n bytes of text drawn from a small vocabulary: compressible, with
// repeats at every distance.
func wordsOf(n int, seed uint64) []byte {
	words := strings.Fields("the quick brown fox jumps over lazy dog websocket frame deflate window context message über naïve")
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	text := append([]byte{}, b.Bytes()[:n]...)
	// Cut inside a word, the text may end inside a character: pad it with spaces.
	for i := len(text); i > 0 && i > len(text)-4; i-- {
		if utf8.RuneStart(text[i-1]) {
			if !utf8.FullRune(text[i-1:]) {
				for j := i - 1; j < len(text); j++ {
					text[j] = ' '
				}
			}
			break
		}
	}
	return text
}

// noiseOf returns n pseudo-random bytes: incompressible.
func noiseOf(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// inflateFrames decompresses the payload of a compressed message as RFC 7692 §7.2.2 says.
func inflateFrames(t *testing.T, frames ...frame) []byte {
	t.Helper()
	var data []byte
	for _, f := range frames {
		data = append(data, f.payload...)
	}
	out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(data), strings.NewReader(deflateTail))))
	require.NoError(t, err)
	return out
}

// deflatePair is pipePair with permessage-deflate on both sides.
func deflatePair(t *testing.T, server, client deflateParams) (*Conn, *Conn) {
	s, c := pipePair(t)
	s.useDeflate(server)
	c.useDeflate(client)
	return s, c
}

var deflateSetups = []struct {
	name           string
	server, client deflateParams
}{
	{"context takeover", deflateParams{peerWindowBits: 15, windowBits: 15}, deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}},
	{"no context takeover", deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}, deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}},
	{"windows of 8 bits", deflateParams{peerWindowBits: 8, windowBits: 8}, deflateParams{peerNoContext: true, peerWindowBits: 8, windowBits: 8}},
	{"windows of 9 and 12 bits", deflateParams{peerWindowBits: 12, windowBits: 9}, deflateParams{peerNoContext: true, peerWindowBits: 9, windowBits: 12}},
}

// TestDeflateRoundTrip sends compressible and incompressible messages of every size both
// ways, whole and streamed, under each set of parameters.
func TestDeflateRoundTrip(t *testing.T) {
	for _, setup := range deflateSetups {
		for _, size := range roundTripSizes {
			if size > 65536 && (testing.Short() || setup.name != "context takeover") {
				continue
			}
			for _, kind := range []struct {
				name string
				typ  MessageType
				data func(int, uint64) []byte
			}{{"text", MessageText, wordsOf}, {"noise", MessageBinary, noiseOf}} {
				t.Run(fmt.Sprintf("%s/%s/%d", setup.name, kind.name, size), func(t *testing.T) {
					server, client := deflatePair(t, setup.server, setup.client)
					for i, dir := range []struct {
						name     string
						from, to *Conn
					}{{"client to server", client, server}, {"server to client", server, client}} {
						// Two messages each way, whole then streamed, so that the second
						// can refer to the first under context takeover.
						first, second := kind.data(size, uint64(i)), kind.data(size, uint64(i+10))
						errc := make(chan error, 1)
						go func() {
							if err := dir.from.Write(context.Background(), kind.typ, first); err != nil {
								errc <- err
								return
							}
							w, err := dir.from.Writer(context.Background(), kind.typ)
							if err != nil {
								errc <- err
								return
							}
							for p := second; len(p) > 0; p = p[min(len(p), 1000):] {
								if _, err := w.Write(p[:min(len(p), 1000)]); err != nil {
									errc <- err
									return
								}
							}
							errc <- w.Close()
						}()
						dir.to.SetReadLimit(2 << 20)
						typ, got, err := dir.to.Read(context.Background())
						require.NoError(t, err, dir.name)
						assert.Equal(t, kind.typ, typ, dir.name)
						assert.Equal(t, first, got, dir.name)
						typ, r, err := dir.to.Reader(context.Background())
						require.NoError(t, err, dir.name)
						got, err = io.ReadAll(r)
						require.NoError(t, err, dir.name)
						assert.Equal(t, kind.typ, typ, dir.name)
						assert.Equal(t, second, got, dir.name)
						require.NoError(t, <-errc, dir.name)
					}
				})
			}
		}
	}
}

// TestDeflateWire checks what a Conn with compression sends: RSV1 on the first frame
// only, a payload that inflates to the message once the tail is put back, nothing
// compressed below the threshold, and fewer bytes than the message when it compresses.
func TestDeflateWire(t *testing.T) {
	for _, connIsClient := range []bool{false, true} {
		t.Run(fmt.Sprintf("client=%v", connIsClient), func(t *testing.T) {
			p := newRawPeer(t, connIsClient)
			p.conn.useDeflate(deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15})
			ctx := context.Background()

			small := []byte("short message")
			require.NoError(t, p.conn.Write(ctx, MessageText, small))
			f := p.next()
			assert.Equal(t, frame{fin: true, op: opText, payload: small}, f, "under the threshold: sent as it is")

			text := wordsOf(20000, 1)
			require.NoError(t, p.conn.Write(ctx, MessageText, text))
			frames := []frame{p.next()}
			for !frames[len(frames)-1].fin {
				frames = append(frames, p.next())
			}
			assert.Equal(t, rsv1, frames[0].rsv, "RSV1 on the first frame")
			assert.Equal(t, opText, frames[0].op)
			size := 0
			for _, f := range frames[1:] {
				assert.Zero(t, f.rsv, "RSV1 on a continuation frame")
				assert.Equal(t, opContinuation, f.op)
				size += len(f.payload)
			}
			assert.Less(t, size+len(frames[0].payload), len(text)/2, "text should compress")
			assert.Equal(t, text, inflateFrames(t, frames...))

			// A streamed message is compressed whatever its size; an empty one is the
			// single byte 00 (RFC 7692 §7.2.3.6).
			w, err := p.conn.Writer(ctx, MessageBinary)
			require.NoError(t, err)
			require.NoError(t, w.Close())
			f = p.next()
			assert.Equal(t, frame{fin: true, rsv: rsv1, op: opBinary, payload: []byte{0}}, f)
		})
	}
}

// TestDeflateRFCExamples reads the compressed messages of RFC 7692 §7.2.3, byte for byte.
func TestDeflateRFCExamples(t *testing.T) {
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	cases := []struct {
		name   string
		frames []frame
		want   []string
	}{
		{"a message in one frame (§7.2.3.1)", []frame{{fin: true, rsv: rsv1, op: opText, payload: hello}}, []string{"Hello"}},
		{"a message in two frames (§7.2.3.1)", []frame{
			{rsv: rsv1, op: opText, payload: hello[:3]},
			{fin: true, op: opContinuation, payload: hello[3:]},
		}, []string{"Hello"}},
		{"context takeover (§7.2.3.2)", []frame{
			{fin: true, rsv: rsv1, op: opText, payload: hello},
			{fin: true, rsv: rsv1, op: opText, payload: []byte{0xf2, 0x00, 0x11, 0x00, 0x00}},
		}, []string{"Hello", "Hello"}},
		{"a stored block (§7.2.3.3)", []frame{{fin: true, rsv: rsv1, op: opText, payload: []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}}}, []string{"Hello"}},
		{"a final block (§7.2.3.4)", []frame{{fin: true, rsv: rsv1, op: opText, payload: []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}}}, []string{"Hello"}},
		{"an empty message (§7.2.3.6)", []frame{{fin: true, rsv: rsv1, op: opBinary, payload: []byte{0x00}}}, []string{""}},
		{"a ping inside a compressed message", []frame{
			{rsv: rsv1, op: opText, payload: hello[:2]},
			{fin: true, op: opPing, payload: []byte("p")},
			{fin: true, op: opContinuation, payload: hello[2:]},
		}, []string{"Hello"}},
		{"compressed and plain messages mixed", []frame{
			{fin: true, rsv: rsv1, op: opText, payload: hello},
			{fin: true, op: opText, payload: []byte("plain")},
			{fin: true, rsv: rsv1, op: opText, payload: []byte{0xf2, 0x00, 0x11, 0x00, 0x00}},
		}, []string{"Hello", "plain", "Hello"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPeer(t, false)
			p.conn.useDeflate(deflateParams{peerWindowBits: 15, windowBits: 15})
			p.send(tc.frames...)
			for _, want := range tc.want {
				_, got, err := p.conn.Read(context.Background())
				require.NoError(t, err)
				assert.Equal(t, want, string(got))
			}
		})
	}
}

// TestDeflateBadInput checks the close code for each way a compressed stream can be wrong.
func TestDeflateBadInput(t *testing.T) {
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	var bomb bytes.Buffer
	fw, _ := flate.NewWriter(&bomb, flate.BestCompression)
	fw.Write(make([]byte, 4<<20))
	fw.Flush()
	bombBytes := bomb.Bytes()[:bomb.Len()-4]
	var badText bytes.Buffer
	fw.Reset(&badText)
	fw.Write([]byte("valid until \xff here"))
	fw.Flush()

	cases := []struct {
		name    string
		deflate bool
		frames  []frame
		code    StatusCode
	}{
		{"RSV1 when nothing was negotiated", false, []frame{{fin: true, rsv: rsv1, op: opText, payload: hello}}, StatusProtocolError},
		{"RSV1 on a continuation frame (§6.1)", true, []frame{
			{rsv: rsv1, op: opText, payload: hello[:3]},
			{fin: true, rsv: rsv1, op: opContinuation, payload: hello[3:]},
		}, StatusProtocolError},
		{"RSV1 on a ping (§6.1)", true, []frame{{fin: true, rsv: rsv1, op: opPing}}, StatusProtocolError},
		{"RSV2 with deflate", true, []frame{{fin: true, rsv: rsv2, op: opText, payload: hello}}, StatusProtocolError},
		{"RSV1 and RSV3 with deflate", true, []frame{{fin: true, rsv: rsv1 | rsv3, op: opText, payload: hello}}, StatusProtocolError},
		{"a reserved block type", true, []frame{{fin: true, rsv: rsv1, op: opBinary, payload: []byte{0x07, 0x00}}}, StatusInvalidFramePayloadData},
		{"a stored block whose length check fails", true, []frame{{fin: true, rsv: rsv1, op: opBinary, payload: []byte{0x00, 0x05, 0x00, 0x00, 0x00, 'H'}}}, StatusInvalidFramePayloadData},
		// RFC 7692 §7.2.1 has senders end a message with the header of an empty stored
		// block; these end inside a block, which the final block after the tail put back
		// would otherwise seem to complete.
		{"a final stored block cut short", true, []frame{{fin: true, rsv: rsv1, op: opBinary, payload: []byte{0x31, 0x05, 0x00, 0xfa, 0xff}}}, StatusInvalidFramePayloadData},
		{"a Huffman block cut short", true, []frame{{fin: true, rsv: rsv1, op: opBinary, payload: []byte("{0a")}}, StatusInvalidFramePayloadData},
		{"text that inflates to invalid UTF-8", true, []frame{{fin: true, rsv: rsv1, op: opText, payload: badText.Bytes()[:badText.Len()-4]}}, StatusInvalidFramePayloadData},
		{"4 MiB of zeros past the read limit", true, []frame{{fin: true, rsv: rsv1, op: opBinary, payload: bombBytes}}, StatusMessageTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPeer(t, false)
			if tc.deflate {
				p.conn.useDeflate(deflateParams{peerWindowBits: 15, windowBits: 15})
			}
			p.readLoop()
			p.send(tc.frames...)
			r := p.nextRead()
			require.Error(t, r.err)
			assert.Equal(t, tc.code, protocolCode(r.err), "%v", r.err)
			p.expectClose(tc.code)
		})
	}
}

// TestDeflateDiscard leaves most of a compressed message unread: the next message, which
// refers back to it (RFC 7692 §7.2.3.2), must still inflate, and a stale reader must not
// read on.
func TestDeflateDiscard(t *testing.T) {
	p := newRawPeer(t, false)
	p.conn.useDeflate(deflateParams{peerWindowBits: 15, windowBits: 15})
	p.send(
		frame{fin: true, rsv: rsv1, op: opText, payload: []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}},
		frame{fin: true, rsv: rsv1, op: opText, payload: []byte{0xf2, 0x00, 0x11, 0x00, 0x00}},
	)
	ctx := context.Background()
	_, r, err := p.conn.Reader(ctx)
	require.NoError(t, err)
	var two [2]byte
	_, err = io.ReadFull(r, two[:])
	require.NoError(t, err)
	assert.Equal(t, "He", string(two[:]))

	_, got, err := p.conn.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "Hello", string(got))
	_, err = r.Read(two[:])
	assert.ErrorIs(t, err, errReaderDiscarded)
}
