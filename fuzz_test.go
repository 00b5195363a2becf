package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file holds the fuzz targets. Each one checks its code against a reference written
// here from the RFCs, independently of the code under test, so that a wrong answer fails
// as surely as a panic. Inputs that once failed are kept under testdata/fuzz/; fuzz/run.sh
// runs every target in turn.

// FuzzReadFrame feeds arbitrary bytes to the frame codec and to a Conn's streaming reader.
// Every header parseHeader accepts must be the one RFC 6455 §5.2 describes, and survive
// a round trip through appendHeader in its shortest form; the Conn must deliver what the
// reference reader delivers and close with the code that fits the violation.
func FuzzReadFrame(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, client bool) {
		for b := data; ; {
			checkHeaderCodec(t, b)
			fr, ok := decodeRefFrame(b)
			if !ok || !fr.complete() {
				break
			}
			b = b[fr.size+len(fr.payload):]
		}

		const limit = 64 << 10
		ref := referenceRead(data, client, limit)
		nc := &memConn{r: iotest.HalfReader(bytes.NewReader(data))}
		c := newConn(nc, bufio.NewReader(nc), client, "")
		c.SetReadLimit(limit)
		var err error
		begun := 0
		for ; ; begun++ {
			// A message takes at least a 2-byte header: more would mean the Conn makes
			// messages out of nothing.
			require.LessOrEqual(t, begun, len(data)/2, "more messages than the input holds")
			var typ MessageType
			var r io.Reader
			if typ, r, err = c.Reader(context.Background()); err != nil {
				break
			}
			want, complete := ref.message(begun)
			require.NotNil(t, want, "Reader returned message %d, which the reference never begins", begun)
			assert.Equal(t, want.typ, typ)
			// Every other message is read whole, a few bytes at a time; of the others only
			// the start, so that the Conn discards (and still checks) the rest.
			most := len(data) + 1
			if begun%2 == 1 {
				most = 3
			}
			got, ended, rerr := readUpTo(r, most, 7)
			require.True(t, bytes.HasPrefix(want.data, got), "message %d: read %q, the reference has %q", begun, got, want.data)
			if ended {
				require.True(t, complete, "message %d ended after %q; the reference reads on: %q", begun, got, want.data)
				assert.Equal(t, string(want.data), string(got), "message %d", begun)
			}
			assert.LessOrEqual(t, len(got), limit)
			if rerr != nil {
				err = rerr
				break
			}
		}
		wantBegun := len(ref.msgs)
		if ref.open != nil {
			wantBegun++
		}
		assert.GreaterOrEqual(t, begun, len(ref.msgs), "messages the reference delivers were never begun")
		assert.LessOrEqual(t, begun, wantBegun)
		checkEnd(t, ref, client, err, nc.out.Bytes())
		_, _, err = c.Reader(context.Background())
		assert.ErrorIs(t, err, net.ErrClosed, "Reader after the end")
	})
}

// FuzzConn feeds arbitrary bytes to a Conn reading whole messages with Read: as they come
// and a byte at a time under a small read limit, and as they come with no limit. It must
// deliver the reference's messages, within the limit and, for text, valid UTF-8, then fail
// as the reference does: on the peer's close frame, with a protocol error, or at the
// unexpected end of the input.
func FuzzConn(f *testing.F) {
	addFrameSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, client bool) {
		// Small enough that the fuzzer reaches it with fragments actually sent.
		const small = 1 << 10
		for _, run := range []struct {
			limit int64
			chop  func(io.Reader) io.Reader
		}{
			{small, nil},
			{small, iotest.OneByteReader},
			{0, nil},
		} {
			ref := referenceRead(data, client, run.limit)
			var in io.Reader = bytes.NewReader(data)
			if run.chop != nil {
				in = run.chop(in)
			}
			nc := &memConn{r: in}
			c := newConn(nc, bufio.NewReader(nc), client, "")
			c.SetReadLimit(run.limit)
			msgs, err := readMessages(t, c, run.limit, len(data))
			checkMessages(t, ref, msgs, err)
			checkEnd(t, ref, client, err, nc.out.Bytes())
		}
	})
}

// readMessages reads messages with Read until it fails, checking each against the read
// limit and, for text, UTF-8. Reading cannot give more messages than inputSize bytes hold.
// It checks that the Conn stays closed after the error it returns.
func readMessages(t *testing.T, c *Conn, limit int64, inputSize int) ([]refMessage, error) {
	t.Helper()
	var msgs []refMessage
	for {
		require.LessOrEqual(t, len(msgs), inputSize/2, "more messages than the input holds")
		typ, b, err := c.Read(context.Background())
		if err != nil {
			_, _, again := c.Read(context.Background())
			assert.ErrorIs(t, again, net.ErrClosed, "Read after %v", err)
			return msgs, err
		}
		if limit > 0 {
			assert.LessOrEqual(t, int64(len(b)), limit, "message over the read limit")
			// Append may round a growing buffer up, but never past twice what it holds;
			// a buffer sized from an unchecked length field would be far larger.
			assert.LessOrEqual(t, int64(cap(b)), 2*limit, "message buffer larger than the read limit allows")
		} else {
			// Without a limit the buffer grows with the data that arrives, from 64 KiB.
			assert.LessOrEqual(t, cap(b), 2*max(inputSize, 64<<10), "message buffer larger than the input")
		}
		if typ == MessageText {
			assert.True(t, utf8.Valid(b), "text message %q is not UTF-8", b)
		}
		msgs = append(msgs, refMessage{typ: typ, data: b})
	}
}

// checkMessages compares the messages a Conn delivered before failing with err with those
// of the reference.
func checkMessages(t *testing.T, ref refStream, msgs []refMessage, err error) {
	t.Helper()
	require.Len(t, msgs, len(ref.msgs), "messages delivered before %v", err)
	for i, m := range msgs {
		assert.Equal(t, ref.msgs[i].typ, m.typ, "message %d", i)
		assert.Equal(t, string(ref.msgs[i].data), string(m.data), "message %d", i)
	}
}

// FuzzUTF8 feeds the incremental validator data in pieces cut where splits says. Its
// verdict must be utf8.Valid's, and a refusal must come at the first byte after which no
// continuation could make the text valid: not before, not after.
func FuzzUTF8(f *testing.F) {
	for _, s := range []string{
		"", "Hello", "κόσμε", "\x00", "\x7f", "\u0080", "\u07ff", "\u0800", "\uffff",
		"\U00010000", "\U0010ffff", "a\u00e9\u20ac\U0001f600z",
		"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", // overlong
		"\xed\xa0\x80", "\xed\xbf\xbf", // surrogates
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "\xbf",
		"\xce", "\xe2\x82", "\xf0\x9f\x98", "κόσμε\xce", "κόσμε\xed\xa0\x80!",
	} {
		f.Add([]byte(s), []byte{})
		f.Add([]byte(s), []byte{1, 1, 1, 1, 1, 1, 1, 1})
		f.Add([]byte(s), []byte{2, 3, 0, 1})
	}
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		orig := slices.Clone(data)
		valid := utf8.Valid(data)

		// A byte at a time: the first refusal marks the first byte that rules out valid text.
		var v utf8Validator
		bad := -1
		for i := range data {
			if !v.write(data[i : i+1]) {
				bad = i
				break
			}
		}
		if bad >= 0 {
			assert.True(t, utf8Completable(data[:bad]), "refused % x at byte %d, yet valid text can follow % x", data, bad, data[:bad])
			assert.False(t, valid)
		} else {
			assert.True(t, utf8Completable(data), "let % x through, yet no text can follow it", data)
			assert.Equal(t, valid, v.complete(), "complete() after % x", data)
		}
		if first := utf8FirstBad(data); bad != first {
			assert.Fail(t, "wrong refusal", "% x refused at byte %d, the first impossible byte is %d", data, bad, first)
		}

		// In pieces: the same verdict, refused with the piece that holds that byte.
		var pv utf8Validator
		start := 0
		refusedIn := -1
		for _, p := range utf8Pieces(data, splits) {
			if !pv.write(p) {
				assert.True(t, bad >= start && bad < start+len(p), "% x cut at %v: refused with bytes %d–%d, the first bad byte is %d",
					data, splits, start, start+len(p)-1, bad)
				refusedIn = start
				break
			}
			start += len(p)
		}
		if refusedIn < 0 {
			assert.Equal(t, -1, bad, "% x cut at %v: bad byte %d let through", data, splits, bad)
			assert.Equal(t, valid, pv.complete())
		}
		assert.Equal(t, orig, data, "the validator changed its input")
	})
}

// FuzzClosePayload parses arbitrary close frame payloads: an accepted one must encode back
// to the same bytes, and a refused one must carry the code RFC 6455 assigns to its fault,
// 1002 for a bad length or status code and 1007 for a reason that is not UTF-8.
func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	for _, code := range []uint16{0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008,
		1009, 1010, 1011, 1012, 1013, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 65535} {
		for _, reason := range []string{"", "bye", "κόσμε", "\xce", "\xed\xa0\x80", strings.Repeat("r", 123), strings.Repeat("é", 62)} {
			f.Add(append(binary.BigEndian.AppendUint16(nil, code), reason...))
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		ce, err := parseClosePayload(p)
		var wantCode StatusCode // the ProtocolError's code; 0 when p is fine
		switch {
		case len(p) == 0:
		case len(p) == 1: // §5.5.1: a body starts with a 2-byte code
			wantCode = StatusProtocolError
		case !refSendable(binary.BigEndian.Uint16(p)): // §7.4
			wantCode = StatusProtocolError
		case !utf8.Valid(p[2:]): // §8.1
			wantCode = StatusInvalidFramePayloadData
		}
		if wantCode != 0 {
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe, "payload % x", p)
			assert.Equal(t, wantCode, pe.Code, "payload % x: %v", p, err)
			assert.Nil(t, ce)
			return
		}
		require.NoError(t, err, "payload % x", p)
		require.NotNil(t, ce)
		if len(p) == 0 {
			assert.Equal(t, &CloseError{Code: StatusNoStatusReceived}, ce)
		} else {
			assert.Equal(t, StatusCode(binary.BigEndian.Uint16(p)), ce.Code)
			assert.Equal(t, string(p[2:]), ce.Reason)
		}
		assert.NotEmpty(t, ce.Error())
		assert.NotEmpty(t, ce.Code.String())
		if len(p) > maxControlPayload {
			return // no close frame can carry it
		}
		enc, err := appendClosePayload([]byte("x"), ce.Code, ce.Reason)
		require.NoError(t, err, "code %d, reason %q", int(ce.Code), ce.Reason)
		assert.Equal(t, append([]byte("x"), p...), enc)
		again, err := parseClosePayload(enc[1:])
		require.NoError(t, err)
		assert.Equal(t, ce, again)
	})
}

// FuzzAccept reads arbitrary request bytes and hands the request to Accept. It must answer
// 101 only to a request that passes every rule of RFC 6455 §4.2.1 and the origin policy,
// with the right Sec-WebSocket-Accept, and refuse any other with a 4xx or 5xx status that
// its *HandshakeError carries too.
func FuzzAccept(f *testing.F) {
	for _, req := range acceptSeeds() {
		f.Add([]byte(req))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := bytes.NewReader(raw)
		br := bufio.NewReader(in)
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		early := raw[len(raw)-br.Buffered()-in.Len():] // what the client sent after its request
		opts := &AcceptOptions{Subprotocols: []string{"chat", "superchat"}, OriginPatterns: []string{"*.example.org"}}
		want := referenceHandshake(r, opts)
		// As with net/http, the connection reads on after what the request's reader holds.
		w := &hijackRecorder{header: http.Header{}, nc: &memConn{r: in}, br: br}
		c, err := Accept(w, r, opts)
		if err != nil {
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			assert.NotEqual(t, mustAccept, want.verdict, "refused a valid request with %d %s", he.Status, he.Reason)
			assert.Contains(t, want.statuses, he.Status, "%s; refusing rules: %v", he.Reason, want.why)
			assert.True(t, he.Status >= 400 && he.Status <= 599, "status %d", he.Status)
			assert.Equal(t, he.Status, w.status, "status written")
			assert.False(t, w.hijacked, "hijacked a refused request")
			if he.Status == http.StatusMethodNotAllowed {
				assert.Equal(t, "GET", w.header.Get("Allow"), "RFC 9110 §15.5.6: a 405 lists the allowed methods")
			}
			return
		}
		defer c.CloseNow()
		assert.NotEqual(t, mustRefuse, want.verdict, "accepted a request that breaks: %v", want.why)
		require.True(t, w.hijacked)
		assert.Zero(t, w.status, "a status went through the ResponseWriter")
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(w.nc.out.Bytes())), r)
		require.NoError(t, err, "response %q", w.nc.out.Bytes())
		assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		assert.True(t, refHasToken(resp.Header["Upgrade"], "websocket"), "Upgrade: %q", resp.Header["Upgrade"])
		assert.True(t, refHasToken(resp.Header["Connection"], "upgrade"), "Connection: %q", resp.Header["Connection"])
		assert.Equal(t, []string{refAcceptKey(r.Header.Get("Sec-WebSocket-Key"))}, resp.Header["Sec-Websocket-Accept"])
		protocol := resp.Header.Get("Sec-WebSocket-Protocol")
		assert.Contains(t, want.protocols, protocol, "offered %q", r.Header["Sec-Websocket-Protocol"])
		assert.LessOrEqual(t, len(resp.Header["Sec-Websocket-Protocol"]), 1)
		assert.Equal(t, protocol, c.Subprotocol())

		// The Conn reads on where the request ended.
		const limit = 1 << 10
		c.SetReadLimit(limit)
		sent := w.nc.out.Len()
		ref := referenceRead(early, false, limit)
		msgs, err := readMessages(t, c, limit, len(early))
		checkMessages(t, ref, msgs, err)
		checkEnd(t, ref, false, err, w.nc.out.Bytes()[sent:])
	})
}

// FuzzMask compares mask with RFC 6455 §5.3 read a byte at a time, for a payload masked in
// two pieces cut at offset and lying anywhere in a larger buffer.
func FuzzMask(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint8(0))
	f.Add([]byte("Hello"), uint32(0x3d21fa37), uint8(0)) // RFC 6455 §5.7
	for _, n := range []int{1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 200} {
		f.Add(bytes.Repeat([]byte{0xA5}, n), uint32(0x12345678), uint8(n/2))
		f.Add(bytes.Repeat([]byte{0x00}, n), uint32(0xffffffff), uint8(0xE0|n%32))
	}
	f.Fuzz(func(t *testing.T, data []byte, key uint32, offset uint8) {
		octets := [4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}
		want := make([]byte, len(data))
		for i, c := range data {
			want[i] = c ^ octets[i%4]
		}

		align := int(offset >> 5) // 0–7 bytes into the buffer
		cut := int(offset) % (len(data) + 1)
		buf := bytes.Repeat([]byte{0xEE}, align+len(data)+8)
		b := buf[align : align+len(data)] // its capacity runs on into bytes mask must not touch
		copy(b, data)
		k := mask(key, b[:cut])
		k = mask(k, b[cut:])
		assert.Equal(t, want, b, "key %#08x, cut at %d", key, cut)
		assert.Equal(t, bytes.Repeat([]byte{0xEE}, align), buf[:align], "bytes before the payload changed")
		assert.Equal(t, bytes.Repeat([]byte{0xEE}, 8), buf[align+len(data):], "bytes after the payload changed")

		// The returned key starts at the octet for the next payload byte.
		n := len(data)
		next := uint32(octets[n%4]) | uint32(octets[(n+1)%4])<<8 | uint32(octets[(n+2)%4])<<16 | uint32(octets[(n+3)%4])<<24
		assert.Equal(t, next, k, "key after %d bytes", n)

		mask(key, b)
		assert.Equal(t, data, b, "masking twice does not give the payload back")
	})
}

// FuzzHeaderTokens splits arbitrary Connection and Upgrade values (a newline starts another
// header line) into tokens. They must be the list elements of RFC 7230 §7, and hasToken
// must match them ASCII case-insensitively, as RFC 6455 §4.2.1 asks.
func FuzzHeaderTokens(f *testing.F) {
	for _, s := range []string{
		"", ",", " , ,", "Upgrade", "upgrade", "UPGRADE", "keep-alive, Upgrade", "Upgrade,keep-alive",
		" \tUpgrade\t ", "Upgrade2", "Up grade", "websocket", "WebSocket", "websocket, h2c", "h2c,websocket",
		"websocket/13", "keep-alive\nUpgrade", "a,,b, ,c\n\nd", "\"upgrade\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		values := strings.Split(value, "\n")
		for _, name := range []string{"Connection", "Upgrade"} {
			h := http.Header{}
			for _, v := range values {
				h.Add(name, v)
			}
			var tokens []string
			listsToken(h, name, func(t string) bool { tokens = append(tokens, t); return false })
			for _, tok := range tokens {
				assert.NotEmpty(t, tok)
				assert.NotContains(t, tok, ",")
				assert.Equal(t, strings.Trim(tok, " \t"), tok, "token %q has white space around it", tok)
			}
			if !onWire(value) {
				continue // no request can carry it: only the shape of the tokens matters
			}
			ref := refTokens(values)
			assert.Equal(t, ref, tokens, "tokens of %q", values)
			for _, tok := range append([]string{"upgrade", "websocket", "keep-alive"}, ref...) {
				assert.Equal(t, refHasToken(values, tok), hasToken(h, name, tok), "hasToken(%s: %q, %q)", name, values, tok)
			}
		}
	})
}

// ---- Seeds --------------------------------------------------------------------------

// rfcMaskKey is the masking key 37 fa 21 3d of the RFC 6455 §5.7 examples.
var rfcMaskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// seedFrame encodes a frame whose first byte is b0, with the shortest length form, masked
// with the RFC's example key when masked is set.
func seedFrame(b0 byte, masked bool, payload []byte) []byte {
	var m byte
	if masked {
		m = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= math.MaxUint16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, m|127), uint64(n))
	}
	return seedPayload(b, masked, payload)
}

// seedPayload appends the masking key, when masked is set, and payload to header bytes.
func seedPayload(b []byte, masked bool, payload []byte) []byte {
	if !masked {
		return append(b, payload...)
	}
	b = append(b, rfcMaskKey[:]...)
	for i, c := range payload {
		b = append(b, c^rfcMaskKey[i%4])
	}
	return b
}

// addFrameSeeds adds frame streams for both roles: every length form at its boundaries,
// the RFC 6455 §5.7 examples, each rule a frame can break, and every close code boundary.
func addFrameSeeds(f *testing.F) {
	for _, client := range []bool{false, true} {
		m := !client // frames a Conn accepts are masked when it is the server
		cat := func(frames ...[]byte) []byte { return slices.Concat(frames...) }
		seeds := [][]byte{
			// RFC 6455 §5.7.
			{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f},
			{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			// Messages in the role's masking, then the peer's close.
			cat(seedFrame(0x81, m, []byte("Hello")), seedFrame(0x82, m, []byte{0, 1, 2}), seedFrame(0x88, m, []byte{0x03, 0xe8})),
			cat(seedFrame(0x01, m, []byte("Hel")), seedFrame(0x89, m, []byte("ping")), seedFrame(0x80, m, []byte("lo"))),
			cat(seedFrame(0x01, m, []byte("\xce")), seedFrame(0x00, m, nil), seedFrame(0x80, m, []byte("\xba"))),
			cat(seedFrame(0x89, m, nil), seedFrame(0x8a, m, []byte("unsolicited")), seedFrame(0x82, m, nil)),
			// Length forms: 7-bit, 16-bit and 64-bit, at their edges; and longer forms
			// than needed, which the RFC asks senders not to use.
			// Frames of 64 KiB would make the fuzzer slow, and those that announce them
			// end after a few bytes.
			seedFrame(0x82, m, nil),
			seedFrame(0x82, m, bytes.Repeat([]byte{0xA5}, 125)),
			seedFrame(0x82, m, bytes.Repeat([]byte{0xA5}, 126)),
			seedFrame(0x81, m, []byte(strings.Repeat("κόσμε", 30))),
			seedFrame(0x82, m, bytes.Repeat([]byte{0x5A}, 65535))[:20],
			seedFrame(0x82, m, bytes.Repeat([]byte{0x5A}, 65536))[:20],
			seedPayload([]byte{0x82, maskBitOf(m) | 126, 0x00, 0x05}, m, []byte("short")),
			seedPayload([]byte{0x82, maskBitOf(m) | 127, 0, 0, 0, 0, 0, 0, 0, 0x05}, m, []byte("short")),
			seedPayload([]byte{0x82, maskBitOf(m) | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, m, nil),
			seedPayload([]byte{0x82, maskBitOf(m) | 127, 0x80, 0, 0, 0, 0, 0, 0, 0x01}, m, nil),
			seedPayload([]byte{0x82, maskBitOf(m) | 127, 0, 0, 0, 0, 0, 1, 0, 1}, m, nil), // 64 KiB + 1
			// Frames that break a rule.
			seedFrame(0x81, !m, []byte("wrong masking")),
			seedFrame(0xC1, m, []byte("rsv1")),
			seedFrame(0xA2, m, []byte("rsv2")),
			seedFrame(0x92, m, []byte("rsv3")),
			seedFrame(0x83, m, nil),
			seedFrame(0x8B, m, nil),
			seedFrame(0x09, m, []byte("fragmented ping")),
			seedFrame(0x89, m, bytes.Repeat([]byte{'p'}, 126)),
			seedFrame(0x80, m, []byte("continues nothing")),
			cat(seedFrame(0x01, m, []byte("a")), seedFrame(0x81, m, []byte("b"))),
			seedFrame(0x81, m, []byte("\xc0\x80")),
			seedFrame(0x81, m, []byte("\xed\xa0\x80")),
			seedFrame(0x81, m, []byte("\xf4\x90\x80\x80")),
			seedFrame(0x81, m, []byte("κόσμε\xce")),
			// Input that ends inside a header or a payload.
			{0x81},
			{0x82, maskBitOf(m) | 126, 0x01},
			seedFrame(0x81, m, []byte("Hello"))[:4],
			seedFrame(0x89, m, []byte("Hello"))[:6],
			// Close frames: no body, a 1-byte body, a reason that is not UTF-8, the
			// longest reason.
			seedFrame(0x88, m, nil),
			seedFrame(0x88, m, []byte{0x03}),
			seedFrame(0x88, m, []byte("\x03\xe8\xce")),
			seedFrame(0x88, m, append([]byte{0x03, 0xe8}, bytes.Repeat([]byte{'r'}, 123)...)),
		}
		for _, code := range []uint16{0, 999, 1000, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535} {
			seeds = append(seeds, seedFrame(0x88, m, binary.BigEndian.AppendUint16(nil, code)))
		}
		for _, s := range seeds {
			f.Add(s, client)
		}
	}
}

func maskBitOf(masked bool) byte {
	if masked {
		return 0x80
	}
	return 0
}

// acceptSeeds returns the request of RFC 6455 §1.2, refused for its Origin, and variants of
// it with a same-host Origin, each breaking or stretching one rule.
func acceptSeeds() []string {
	const rfc = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"
	valid := strings.Replace(rfc, "http://example.com", "http://server.example.com", 1)
	seeds := []string{rfc, valid}
	for _, edit := range [][]string{
		{"Origin: http://server.example.com\r\n", ""},
		{"http://server.example.com", "https://server.example.com"},
		{"http://server.example.com", "http://app.example.org"},
		{"http://server.example.com", "http://app.example.org:8080"},
		{"http://server.example.com", "http://example.org"},
		{"http://server.example.com", "http://server.example.com:80"},
		{"http://server.example.com", "http://server.example.com:8080"},
		{"http://server.example.com", "http://server.example.com/path"},
		{"http://server.example.com", "null"},
		{"Host: server.example.com", "Host: server.example.com:80"},
		{"Host: server.example.com", "Host: server.example.com:8080"},
		{"Host: server.example.com", "Host: server.example.com:443", "http://", "https://"},
		{"Host: server.example.com", "Host: server.example.com:80", "http://", "https://"},
		{"GET", "POST"},
		{"HTTP/1.1", "HTTP/1.0"},
		{"Upgrade: websocket\r\n", ""},
		{"Upgrade: websocket", "Upgrade: WebSocket"},
		{"Upgrade: websocket", "Upgrade: h2c"},
		{"Upgrade: websocket", "Upgrade: h2c, websocket"},
		{"Connection: Upgrade\r\n", ""},
		{"Connection: Upgrade", "Connection: keep-alive, Upgrade"},
		{"Connection: Upgrade", "Connection: keep-alive"},
		{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"},
		{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13, 8"},
		{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13"},
		{"Sec-WebSocket-Version: 13\r\n", ""},
		{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""},
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
		{"dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAA"},     // 15 bytes
		{"dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAA="}, // 17 bytes
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR=="},
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ"},
		{"chat, superchat", "superchat"},
		{"chat, superchat", "Chat, SUPERCHAT"},
		{"chat, superchat", "v2.chat"},
		{"\r\n\r\n", "\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"},
	} {
		seeds = append(seeds, strings.NewReplacer(edit...).Replace(valid))
	}
	return seeds
}

// ---- An in-memory connection --------------------------------------------------------

// memConn is a net.Conn whose reads come from r and whose writes are kept in out. Once
// closed, it fails reads and writes as a real connection does.
type memConn struct {
	r      io.Reader
	out    bytes.Buffer
	closed bool
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *memConn) Close() error                     { c.closed = true; return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// readUpTo reads r in pieces of chunk bytes until io.EOF, an error, or at least most bytes.
// ended reports io.EOF.
func readUpTo(r io.Reader, most, chunk int) (got []byte, ended bool, err error) {
	buf := make([]byte, chunk)
	for len(got) < most {
		n, err := r.Read(buf[:min(chunk, most-len(got))])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, true, nil
		}
		if err != nil {
			return got, false, err
		}
		if n == 0 {
			return got, false, errors.New("reader returned 0, nil")
		}
	}
	return got, false, nil
}

// ---- A reference reader of RFC 6455 ------------------------------------------------

// refFrame is a frame as this file decodes it from RFC 6455 §5.2, without the codec under
// test.
type refFrame struct {
	fin     bool
	rsv     byte // RSV1–RSV3 as a number, 0–7
	op      byte
	masked  bool
	key     [4]byte // zero when not masked
	length  uint64  // as announced
	size    int     // header bytes
	payload []byte  // unmasked; shorter than length when the bytes end inside it
}

func (f refFrame) complete() bool { return uint64(len(f.payload)) == f.length }

// decodeRefFrame decodes the frame at the start of b. It reports false when b ends inside
// the header.
func decodeRefFrame(b []byte) (refFrame, bool) {
	if len(b) < 2 {
		return refFrame{}, false
	}
	f := refFrame{
		fin:    b[0]&0x80 != 0,
		rsv:    (b[0] >> 4) & 7,
		op:     b[0] & 0x0F,
		masked: b[1]&0x80 != 0,
	}
	ext := 0
	switch n := b[1] & 0x7F; n {
	case 126:
		ext = 2
	case 127:
		ext = 8
	default:
		f.length = uint64(n)
	}
	f.size = 2 + ext
	if f.masked {
		f.size += 4
	}
	if len(b) < f.size {
		return refFrame{}, false
	}
	for _, c := range b[2 : 2+ext] {
		f.length = f.length<<8 | uint64(c)
	}
	if f.masked {
		copy(f.key[:], b[2+ext:])
	}
	rest := b[f.size:]
	if uint64(len(rest)) > f.length {
		rest = rest[:f.length]
	}
	f.payload = make([]byte, len(rest))
	for i, c := range rest {
		f.payload[i] = c ^ f.key[i%4]
	}
	return f, true
}

// refEnd is how a frame stream ends for a reader that follows RFC 6455.
type refEnd int

const (
	endEOF    refEnd = iota // the bytes ran out: no close frame is sent
	endFailed               // the peer broke the protocol: a close frame with one of codes is sent
	endClosed               // the peer sent a close frame: it is echoed
)

type refMessage struct {
	typ  MessageType
	data []byte
}

// refStream is what a reader following RFC 6455 makes of a byte stream.
type refStream struct {
	msgs  []refMessage
	open  *refMessage  // a message begun but never completed
	pings [][]byte     // payloads of the pings received, each to be answered by a pong
	end   refEnd       //
	codes []StatusCode // endFailed: the close codes that fit the violation
	close StatusCode   // endClosed: the peer's status, 1005 when it gave none
}

// message returns message i, which complete tells was delivered whole, or nil if the
// reference never begins it.
func (s *refStream) message(i int) (m *refMessage, complete bool) {
	switch {
	case i < len(s.msgs):
		return &s.msgs[i], true
	case i == len(s.msgs):
		return s.open, false
	}
	return nil, false
}

// referenceRead reads data as an endpoint in the given role with the given read limit
// does, by RFC 6455 alone.
func referenceRead(data []byte, client bool, limit int64) refStream {
	var s refStream
	fail := func(codes ...StatusCode) refStream {
		s.end, s.codes = endFailed, codes
		return s
	}
	var size uint64 // payload announced so far by the open message; cannot overflow, as
	// it stays under the limit before adding a length below 2^63
	for {
		f, ok := decodeRefFrame(data)
		if !ok {
			return s
		}
		data = data[f.size:]
		control := f.op >= 0x8
		switch {
		case f.length > math.MaxInt64, // §5.2: the top bit of a 64-bit length is 0
			f.op >= 0x3 && f.op <= 0x7, f.op >= 0xB, // §5.2: reserved opcodes
			f.rsv != 0,                // §5.2: no extension was negotiated
			f.masked == client,        // §5.1: clients mask, servers do not
			control && !f.fin,         // §5.5: control frames are not fragmented
			control && f.length > 125: // §5.5
			return fail(StatusProtocolError)
		}
		if control {
			if !f.complete() {
				return s
			}
			data = data[len(f.payload):]
			switch f.op {
			case 0x9:
				s.pings = append(s.pings, f.payload)
			case 0x8:
				return referenceClose(s, f.payload)
			}
			continue
		}

		announced := f.length
		if s.open != nil {
			announced += size
		}
		over := limit > 0 && announced > uint64(limit)
		if (f.op == 0x0) != (s.open != nil) {
			// §5.4: a continuation frame continues a message, and a new message waits for
			// the last frame of the one before. Checking the limit first is as right.
			if over {
				return fail(StatusProtocolError, StatusMessageTooBig)
			}
			return fail(StatusProtocolError)
		}
		if over {
			return fail(StatusMessageTooBig)
		}
		if s.open == nil {
			s.open = &refMessage{typ: MessageType(f.op), data: []byte{}}
		}
		size = announced
		s.open.data = append(s.open.data, f.payload...)
		data = data[len(f.payload):]
		// §8.1: text fails at the first byte no valid text can follow.
		if s.open.typ == MessageText && !utf8Completable(s.open.data) {
			return fail(StatusInvalidFramePayloadData)
		}
		if !f.complete() {
			return s
		}
		if f.fin {
			if s.open.typ == MessageText && !utf8.Valid(s.open.data) {
				return fail(StatusInvalidFramePayloadData)
			}
			s.msgs = append(s.msgs, *s.open)
			s.open = nil
		}
	}
}

// referenceClose ends s with the peer's close frame carrying payload (RFC 6455 §5.5.1).
func referenceClose(s refStream, p []byte) refStream {
	s.end = endFailed
	switch {
	case len(p) == 0:
		s.end, s.close = endClosed, StatusNoStatusReceived
	case len(p) == 1:
		s.codes = []StatusCode{StatusProtocolError}
	case !refSendable(binary.BigEndian.Uint16(p)):
		s.codes = []StatusCode{StatusProtocolError}
	case !utf8.Valid(p[2:]):
		s.codes = []StatusCode{StatusInvalidFramePayloadData}
	default:
		s.end, s.close = endClosed, StatusCode(binary.BigEndian.Uint16(p))
	}
	return s
}

// refSendable reports whether a close frame may carry code: those RFC 6455 §7.4.1 and the
// IANA registry define, less 1004 (reserved), 1005, 1006 and 1015 (never sent), and the
// ranges §7.4.2 opens to libraries and applications.
func refSendable(code uint16) bool {
	switch code {
	case 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014:
		return true
	}
	return code >= 3000 && code <= 4999
}

// checkEnd checks how a Conn's reading ended against the reference: the error it returned,
// and the frames it sent: a pong for each ping, then the close frame that goes with the
// end, if any.
func checkEnd(t *testing.T, ref refStream, client bool, err error, out []byte) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, net.ErrClosed, "the Conn is not closed after %v", err)
	var pe *ProtocolError
	switch ref.end {
	case endEOF:
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	case endFailed:
		require.ErrorAs(t, err, &pe, "got %v, want a protocol error with code %v", err, ref.codes)
		assert.Contains(t, ref.codes, pe.Code, "%v", err)
		if pe.Code == StatusMessageTooBig {
			assert.ErrorIs(t, err, ErrMessageTooBig)
		}
	case endClosed:
		assert.Equal(t, ref.close, CloseStatus(err), "%v", err)
	}

	var sent []refFrame
	for len(out) > 0 {
		f, ok := decodeRefFrame(out)
		require.True(t, ok && f.complete(), "the Conn sent a partial frame: % x", out)
		out = out[f.size+len(f.payload):]
		assert.True(t, f.fin && f.rsv == 0 && f.masked == client, "frame %+v", f)
		sent = append(sent, f)
	}
	require.GreaterOrEqual(t, len(sent), len(ref.pings), "pongs missing")
	for i, ping := range ref.pings {
		assert.Equal(t, byte(0xA), sent[i].op, "frame %d answers a ping", i)
		assert.Equal(t, ping, sent[i].payload, "pong %d", i)
	}
	sent = sent[len(ref.pings):]
	if ref.end == endEOF {
		assert.Empty(t, sent, "frames sent after the pongs, though the input just ended")
		return
	}
	require.Len(t, sent, 1, "want exactly a close frame after the pongs")
	require.Equal(t, byte(0x8), sent[0].op)
	p := sent[0].payload
	switch {
	case ref.end == endClosed && ref.close == StatusNoStatusReceived:
		assert.Empty(t, p, "echo of a close frame without a status")
	case ref.end == endClosed:
		require.GreaterOrEqual(t, len(p), 2)
		assert.Equal(t, ref.close, StatusCode(binary.BigEndian.Uint16(p)), "echoed status")
	default:
		require.GreaterOrEqual(t, len(p), 2)
		assert.Equal(t, pe.Code, StatusCode(binary.BigEndian.Uint16(p)), "close code sent for %v", err)
		assert.True(t, utf8.Valid(p[2:]), "close reason % x", p[2:])
	}
}

// checkHeaderCodec checks parseHeader on the header at the start of b against
// decodeRefFrame and the rules of RFC 6455 §5.2 and §5.5, and an accepted header's round
// trip through appendHeader.
func checkHeaderCodec(t *testing.T, b []byte) {
	t.Helper()
	h, n, err := parseHeader(b)
	f, ok := decodeRefFrame(b)
	if !ok {
		assert.ErrorIs(t, err, errShortHeader, "header % x", b)
		return
	}
	assert.Equal(t, f.size, headerSize(b[1]))
	control := f.op >= 0x8
	if f.length > math.MaxInt64 || f.op >= 0x3 && f.op <= 0x7 || f.op >= 0xB ||
		control && (!f.fin || f.length > 125) {
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe, "header % x", b[:f.size])
		assert.Equal(t, StatusProtocolError, pe.Code)
		return
	}
	require.NoError(t, err, "header % x", b[:f.size])
	want := header{
		fin:    f.fin,
		rsv:    f.rsv << 4,
		op:     opcode(f.op),
		masked: f.masked,
		key:    binary.LittleEndian.Uint32(f.key[:]),
		length: int64(f.length),
	}
	require.Equal(t, want, h, "header % x", b[:f.size])
	require.Equal(t, f.size, n)
	_, _, err = parseHeader(b[:n-1])
	assert.ErrorIs(t, err, errShortHeader, "header % x cut by a byte", b[:n])

	// §5.2: the minimal number of bytes must be used to encode the length.
	shortest := 2
	switch {
	case f.length > math.MaxUint16:
		shortest += 8
	case f.length > 125:
		shortest += 2
	}
	if f.masked {
		shortest += 4
	}
	enc := appendHeader([]byte("x"), h)
	require.Equal(t, byte('x'), enc[0], "appendHeader overwrote what it appends to")
	enc = enc[1:]
	assert.Len(t, enc, shortest, "encoding of %+v", h)
	assert.Equal(t, shortest, encodedHeaderSize(h.length, h.masked))
	if n == shortest {
		assert.Equal(t, b[:n], enc, "re-encoding of a header in shortest form")
	}
	again, m, err := parseHeader(enc)
	require.NoError(t, err, "encoding % x of %+v", enc, h)
	assert.Equal(t, h, again)
	assert.Equal(t, len(enc), m)
}

// ---- UTF-8 -------------------------------------------------------------------------

// utf8Prefixes is the set of every proper prefix of the encoding of every code point: the
// tails an incomplete but still valid text can end with.
var utf8Prefixes = sync.OnceValue(func() map[string]bool {
	set := make(map[string]bool)
	var buf [utf8.UTFMax]byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		n := utf8.EncodeRune(buf[:], r)
		for i := 1; i < n; i++ {
			if !set[string(buf[:i])] {
				set[string(buf[:i])] = true
			}
		}
	}
	return set
})

// utf8Completable reports whether some bytes appended to p can make it valid UTF-8: when p
// is valid text followed by a proper prefix of a code point's encoding.
func utf8Completable(p []byte) bool {
	for k := 0; k < utf8.UTFMax && k <= len(p); k++ {
		if (k == 0 || utf8Prefixes()[string(p[len(p)-k:])]) && utf8.Valid(p[:len(p)-k]) {
			return true
		}
	}
	return false
}

// utf8FirstBad returns the index of the first byte of p after which no bytes can make
// valid UTF-8, or -1. A prefix that cannot be completed stays so when it grows, so the
// index is found by bisection.
func utf8FirstBad(p []byte) int {
	if utf8Completable(p) {
		return -1
	}
	// The shortest prefix that cannot be completed ends with the byte sought.
	lo, hi := 0, len(p) // p[:lo] can be completed, p[:hi] cannot
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if utf8Completable(p[:mid]) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi - 1
}

// utf8Pieces cuts data into pieces of splits[i] mod 16 bytes, the last piece being what
// is left.
func utf8Pieces(data, splits []byte) [][]byte {
	var pieces [][]byte
	for _, s := range splits {
		n := min(int(s)%16, len(data))
		pieces = append(pieces, data[:n])
		data = data[n:]
	}
	return append(pieces, data)
}

// ---- The opening handshake ----------------------------------------------------------

// hijackRecorder is an http.ResponseWriter that records a refusal, and when hijacked
// hands over an in-memory connection with the reader of the request, which may hold bytes
// read ahead from it, as net/http does.
type hijackRecorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	nc       *memConn
	br       *bufio.Reader
	hijacked bool
}

func (w *hijackRecorder) Header() http.Header { return w.header }

func (w *hijackRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *hijackRecorder) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked || w.status != 0 {
		return nil, nil, errors.New("response already started")
	}
	w.hijacked = true
	return w.nc, bufio.NewReadWriter(w.br, bufio.NewWriter(w.nc)), nil
}

// verdict is what a rule says of a request. mayEither covers requests no client sends
// and a server may take either way, such as an Origin with a path.
type verdict int

const (
	mustAccept verdict = iota
	mayEither
	mustRefuse
)

// refHandshake is what the rules say of a request.
type refHandshake struct {
	verdict   verdict
	statuses  []int    // the statuses a refusal may carry: those of the rules not passed
	why       []string // the rules not passed
	protocols []string // the subprotocols the response may name, "" for none
}

// referenceHandshake applies RFC 6455 §4.2.1 and the origin policy of Accept to r.
func referenceHandshake(r *http.Request, opts *AcceptOptions) refHandshake {
	var h refHandshake
	rule := func(v verdict, why string, statuses ...int) {
		if v != mustAccept {
			h.verdict = max(h.verdict, v)
			h.statuses = append(h.statuses, statuses...)
			h.why = append(h.why, why)
		}
	}
	passes := func(ok bool) verdict {
		if ok {
			return mustAccept
		}
		return mustRefuse
	}
	rule(passes(r.Method == "GET"), "method", http.StatusMethodNotAllowed)
	rule(passes(r.ProtoMajor > 1 || r.ProtoMajor == 1 && r.ProtoMinor >= 1), "HTTP version",
		http.StatusHTTPVersionNotSupported, http.StatusBadRequest)
	rule(tokenVerdict(r.Header["Upgrade"], "websocket"), "Upgrade", http.StatusUpgradeRequired, http.StatusBadRequest)
	rule(tokenVerdict(r.Header["Connection"], "upgrade"), "Connection", http.StatusBadRequest, http.StatusUpgradeRequired)
	v := r.Header["Sec-Websocket-Version"]
	rule(passes(len(v) == 1 && v[0] == "13"), "Sec-WebSocket-Version", http.StatusUpgradeRequired, http.StatusBadRequest)
	rule(keyVerdict(r.Header["Sec-Websocket-Key"]), "Sec-WebSocket-Key", http.StatusBadRequest)
	rule(originVerdict(r, opts.OriginPatterns), "Origin", http.StatusForbidden)

	// The first of ours the client offers, with the elements split as RFC 7230 §7 says
	// or, as tokenVerdict allows, trimmed of any white space.
	for _, trim := range []func(string) string{
		func(s string) string { return strings.Trim(s, " \t") },
		func(s string) string { return strings.TrimFunc(s, unicode.IsSpace) },
	} {
		offered := map[string]bool{}
		for _, v := range r.Header["Sec-Websocket-Protocol"] {
			for _, e := range strings.Split(v, ",") {
				offered[trim(e)] = true
			}
		}
		chosen := ""
		for _, p := range opts.Subprotocols {
			if offered[p] {
				chosen = p
				break
			}
		}
		h.protocols = append(h.protocols, chosen)
	}
	return h
}

// tokenVerdict says whether a header with values lists want, with the list rule of
// RFC 7230 §7 and the ASCII case-insensitive match of RFC 6455 §4.2.1. A value that only
// lists it after trimming other white space than SP and HTAB, or with Unicode case
// folding, may go either way here: FuzzHeaderTokens holds hasToken to the rule.
func tokenVerdict(values []string, want string) verdict {
	if refHasToken(values, want) {
		return mustAccept
	}
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimFunc(e, unicode.IsSpace), want) {
				return mayEither
			}
		}
	}
	return mustRefuse
}

// keyVerdict says whether values hold one Sec-WebSocket-Key that is the base64 encoding
// of 16 bytes (RFC 6455 §4.1): 22 digits and "==". The 22 digits carry 132 bits for 128;
// a key whose 4 bits left over are not 0 is not canonical, and may go either way.
func keyVerdict(values []string) verdict {
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if len(values) != 1 || len(values[0]) != 24 || values[0][22:] != "==" {
		return mustRefuse
	}
	k := values[0]
	for i := range 22 {
		if strings.IndexByte(digits, k[i]) < 0 {
			return mustRefuse
		}
	}
	if strings.IndexByte(digits, k[21])&0xF != 0 {
		return mayEither
	}
	return mustAccept
}

// originVerdict applies the origin policy: a request without Origin passes; one with an
// Origin passes if that names the request's own host and port, or a host the patterns
// list. The only pattern this file uses is "*.example.org".
func originVerdict(r *http.Request, patterns []string) verdict {
	if !slices.Equal(patterns, []string{"*.example.org"}) {
		panic("originVerdict knows only the pattern *.example.org")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return mustAccept
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return mustRefuse
	}
	// The pattern matches the host with its port; path.Match's * takes no '/', which a
	// host has none of.
	pattern := mustRefuse
	if asciiHasSuffixFold(u.Host, ".example.org") {
		pattern = mustAccept
	} else if strings.HasSuffix(strings.ToLower(u.Host), ".example.org") {
		pattern = mayEither
	}
	return min(pattern, sameOrigin(origin, u, r.Host))
}

// sameOrigin says whether the Origin value origin, parsed as u, names the request's host
// (RFC 6454 §4: scheme, host and port; the scheme is not known on the server side).
func sameOrigin(origin string, u *url.URL, requestHost string) verdict {
	defaults := map[string]string{"http": "80", "https": "443"}
	oName, oPort, oColon := splitHostPort(u.Host)
	rName, rPort, _ := splitHostPort(requestHost)
	def := defaults[u.Scheme]
	if oPort == "" {
		oPort = def
	}
	if rPort == "" {
		rPort = def
	}
	if oPort != rPort || !strings.EqualFold(oName, rName) && strings.ToLower(oName) != strings.ToLower(rName) {
		return mustRefuse
	}
	// A browser serialises an origin as scheme://host, with a port only when it is not the
	// scheme's default (RFC 6454 §6.2). Anything else comes from no page, and may go either
	// way.
	browser := def != "" && origin == u.Scheme+"://"+u.Host && !strings.HasSuffix(u.Host, ":"+def) &&
		!(oColon && oPort == def) && isASCII(u.Host) && refEqualFold(oName, rName)
	if browser {
		return mustAccept
	}
	return mayEither
}

// splitHostPort splits host:port, or returns a host alone with "" as its port; colon
// reports a port separator, even with no port after it.
func splitHostPort(hostport string) (host, port string, colon bool) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p, true
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), "", false
}

// refAcceptKey is Sec-WebSocket-Accept as RFC 6455 §4.2.2 defines it.
func refAcceptKey(key string) string {
	h := sha1.New()
	io.WriteString(h, key)
	io.WriteString(h, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// refTokens splits header values into list elements as RFC 7230 §7 defines them: commas
// separate them, optional white space (SP and HTAB) surrounds them, empty ones are dropped.
func refTokens(values []string) []string {
	var tokens []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.Trim(e, " \t"); e != "" {
				tokens = append(tokens, e)
			}
		}
	}
	return tokens
}

// refHasToken reports whether values list want, matched ASCII case-insensitively.
func refHasToken(values []string, want string) bool {
	for _, e := range refTokens(values) {
		if refEqualFold(e, want) {
			return true
		}
	}
	return false
}

func asciiLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func refEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if asciiLower(a[i]) != asciiLower(b[i]) {
			return false
		}
	}
	return true
}

func asciiHasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && refEqualFold(s[len(s)-len(suffix):], suffix)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// onWire reports whether a request can carry value as header lines: RFC 7230 §3.2 allows
// visible characters, SP, HTAB and obs-text in a field value, no other control character.
func onWire(value string) bool {
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c != '\n' && c != '\t' && (c < 0x20 || c == 0x7F) {
			return false
		}
	}
	return true
}

// ---- Compressed messages ------------------------------------------------------------

// FuzzInflate sends data as the compressed payload of one message (RFC 7692 §7.2.2), in
// two frames split at split, and checks what Read makes of it against checkedInflate,
// the DEFLATE decoder written from RFC 1951 in deflatecheck_test.go: the same bytes when
// the data is a valid stream, 1009 past the read limit, 1007 for invalid text; and never
// anything but 1007 or 1009 when it fails.
func FuzzInflate(f *testing.F) {
	for _, seed := range [][]byte{
		{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00},                         // "Hello" (RFC 7692 §7.2.3.1)
		{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, // a stored block (§7.2.3.3)
		{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00},                   // a final block (§7.2.3.4)
		{0x00},       // an empty message
		{0x07, 0x00}, // a reserved block type
		{0xf2, 0x48}, // cut short
		{0x62, 0x18, 0x05, 0xa3, 0x60, 0x14, 0x0c, 0x77, 0x00, 0x00, 0x00, 0x00}, // zeros, long
	} {
		f.Add(seed, uint16(3), false)
		f.Add(seed, uint16(0), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, text bool) {
		const limit = 1 << 12
		op := opBinary
		if text {
			op = opText
		}
		k := min(int(split), len(data))
		var wire []byte
		wire = append(wire, encodeFrame(frame{rsv: rsv1, op: op, payload: data[:k]}, true, int64(k))...)
		wire = append(wire, encodeFrame(frame{fin: true, op: opContinuation, payload: data[k:]}, true, int64(len(data)-k))...)
		nc := &memConn{r: bytes.NewReader(wire)}
		c := newConn(nc, bufio.NewReader(nc), false, "")
		c.useDeflate(deflateParams{peerWindowBits: 15, windowBits: 15})
		c.SetReadLimit(limit)
		typ, got, err := c.Read(context.Background())

		want, _, padding, refErr := checkedInflatePadded(append(slices.Clip(data), 0x00, 0x00, 0xff, 0xff), nil)
		switch {
		case refErr != nil:
			// An invalid stream, cut short or corrupt: the reference names no close code,
			// and ours must be one of the two that bad compressed data can deserve (the
			// compressed size may pass its bound before the error shows).
			require.Error(t, err, "the reference refused it: %v", refErr)
			assert.Contains(t, []StatusCode{StatusInvalidFramePayloadData, StatusMessageTooBig}, protocolCode(err), "%v", err)
		case int64(len(data)) > compressedLimit(limit) || len(want) > limit:
			codes := []StatusCode{StatusMessageTooBig}
			if text && !utf8.Valid(want) {
				// Text is checked as it inflates: bad UTF-8 may show before the size does.
				codes = append(codes, StatusInvalidFramePayloadData)
			}
			assert.Contains(t, codes, protocolCode(err), "%v", err)
		case padding > 0:
			// The last block ends inside the 00 00 ff ff put back, which was read as codes
			// rather than as the length of the empty stored block RFC 7692 §7.2.1 ends a
			// message with. The final block ours puts after it is then read as more codes,
			// and the message refused.
			assert.Equal(t, StatusInvalidFramePayloadData, protocolCode(err), "%v", err)
		case text && !utf8.Valid(want):
			assert.Equal(t, StatusInvalidFramePayloadData, protocolCode(err), "%v", err)
		default:
			require.NoError(t, err)
			assert.Equal(t, MessageType(op), typ)
			assert.Equal(t, want, got, "inflated bytes")
		}
		if err != nil {
			assert.ErrorIs(t, err, net.ErrClosed, "a failed Read closes the Conn")
		}
	})
}
