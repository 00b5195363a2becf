package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
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
