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
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file holds the references the fuzz targets in fuzz_test.go check the code against,
// written from the RFCs independently of the code under test.

// ---- Reading what a Conn delivers -----------------------------------------------------

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
