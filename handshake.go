package websocket

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"strings"
	"sync/atomic"
	"time"
)

// AcceptOptions configures Accept. The zero value, like a nil pointer, is the default.
type AcceptOptions struct {
	// Subprotocols lists the subprotocols the server speaks, most preferred first. Accept
	// chooses the first one the client also offered; with none in common, the connection
	// is accepted without a subprotocol. Default: none.
	Subprotocols []string

	// OriginPatterns lists the hosts, besides the request's own Host, whose pages may
	// connect: patterns in path.Match syntax matched against the host (and port) of the
	// Origin header, ignoring case, such as "example.com", "*.example.com" or
	// "localhost:*". Default: only the request's own host.
	OriginPatterns []string

	// InsecureSkipOriginCheck accepts requests from any Origin. It is dangerous: any web
	// page a user visits could then open a connection carrying that user's cookies and
	// credentials, and act on their behalf (cross-site WebSocket hijacking). Prefer
	// OriginPatterns. Default: false.
	InsecureSkipOriginCheck bool

	// ResponseHeader holds extra headers for the 101 response, such as Set-Cookie.
	// Headers that the handshake itself sets are ignored here. Default: none.
	ResponseHeader http.Header

	// Compression says whether to accept the permessage-deflate offer of a client, and
	// how; see CompressionMode for what each mode costs. Default: CompressionDisabled.
	Compression CompressionMode
	// CoalesceWrites lets the Conn hold back the small messages written while the peer's
	// next input is already buffered, and send them together with the next write, or
	// when the Conn has read what was buffered and is about to wait for more: a peer
	// that pipelines requests then gets many answers per system call. It suits a loop
	// that answers each message and reads the next; a message written just before the
	// reading stops may wait until the next read, Close or CloseNow. CloseNow never
	// waits: it sends held messages with one write that does not wait for room in the
	// socket, on TCP and Unix sockets only; elsewhere, and if another write holds the
	// connection, they are dropped. A held message is not dropped when a later write's
	// context ends before anything was sent: it leaves with the write after. Default:
	// false, every message is sent as it is written.
	CoalesceWrites bool

	// Group, if set, adds the Conn to the group, whose Shutdown closes every Conn in it
	// with 1001 (going away); the Conn leaves the group when it closes. Default: none.
	Group *Group

	// MaxBuffered bounds the bytes of the messages that Send holds for the Conn while
	// they wait to be written, counting payloads before compression; a peer that falls
	// further behind is closed with 1008 (see Conn.Send). The memory is the messages'
	// own, shared by every Conn a PreparedMessage is queued on. Default (0 or less): 1 MiB.
	MaxBuffered int

	// PingInterval turns keepalive on: once nothing has arrived from the peer for this
	// long, the Conn sends a ping, and if nothing arrives within PingTimeout after it, the
	// Conn is closed and its reads return an error matching ErrKeepaliveTimeout. Answers
	// are only seen while a goroutine reads (Read, Reader, NetConn's Read, CloseRead).
	// Conn.RTT reports the round-trip time of the last ping answered. It costs a timer
	// and about 240 bytes per Conn, and no goroutine; see the package documentation,
	// Keepalive. Default: 0, no keepalive.
	PingInterval time.Duration
	// PingTimeout is how long the peer has, after a keepalive ping, to send anything.
	// Default: PingInterval.
	PingTimeout time.Duration
}

// acceptGUID is the fixed string RFC 6455 §1.3 appends to the key.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key (§4.2.2).
func acceptKey(key string) string {
	var b [28]byte
	return string(appendAcceptKey(b[:0], key))
}

// appendAcceptKey appends the Sec-WebSocket-Accept value for key to b.
func appendAcceptKey(b []byte, key string) []byte {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.AppendEncode(b, h.Sum(sum[:0]))
}

// The names of the request's handshake headers in the canonical form that net/http stores
// them in (textproto.CanonicalMIMEHeaderKey: "Sec-Websocket-Key", not the RFC's
// "Sec-WebSocket-Key"). The accept path indexes r.Header with them directly: Get and
// Values would canonicalise the RFC's spelling again on every call, some 4,300
// instructions per handshake in all.
const (
	hdrKey        = "Sec-Websocket-Key"
	hdrVersion    = "Sec-Websocket-Version"
	hdrProtocol   = "Sec-Websocket-Protocol"
	hdrExtensions = "Sec-Websocket-Extensions"
)

// firstValue returns the first value of the header name, given in canonical form, or "".
func firstValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// handshakeHeaders are set by the handshake itself, not from ResponseHeader.
var handshakeHeaders = map[string]bool{
	"Upgrade":                true,
	"Connection":             true,
	"Sec-Websocket-Accept":   true,
	"Sec-Websocket-Protocol": true,
	// Announcing an extension the Conn does not run would make the client expect it.
	"Sec-Websocket-Extensions": true,
}

// Accept completes the server side of the opening handshake (RFC 6455 §4.2) and returns
// the connection. It checks the request, takes the TCP connection over from the HTTP
// server and answers 101 Switching Protocols on it; bytes the client sent right after its
// request are kept for the Conn.
//
// If the request is not a valid WebSocket handshake, or comes from an Origin that is not
// allowed, Accept answers with the matching HTTP status (400, 403, 405, 426 …) and a
// plain-text reason, and returns a *HandshakeError. The ResponseWriter must not have been
// written to, and must lead to an http.Hijacker, possibly through Unwrap methods. As
// after any Hijack, r.Body must not be read once Accept has returned; behind net/http's
// own Hijacker such a read fails with http.ErrHijacked.
//
// Over HTTP/2, Accept serves an RFC 8441 request (a CONNECT with ":protocol: websocket")
// without taking the connection over: it answers 200, and the Conn runs on the request's
// stream, reading r.Body, which the handler must then leave alone, and writing the
// response through w, which must lead to an http.Flusher. The stream ends when the
// handler returns: the handler must not return while the Conn is in use (see the package
// documentation, HTTP/2).
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	if err := checkRequest(w, r, opts); err != nil {
		return nil, refuse(w, err)
	}
	protocol := selectSubprotocol(r.Header, opts.Subprotocols)
	var deflate deflateParams
	var extensions string
	var compress bool
	if opts.Compression != CompressionDisabled {
		deflate, extensions, compress = acceptDeflate(r.Header[hdrExtensions], opts.Compression)
	}

	var c *Conn
	if isExtendedConnect(r) {
		var err error
		if c, err = acceptStream(w, r, protocol, extensions, opts.ResponseHeader); err != nil {
			return nil, err
		}
	} else {
		// Written out here rather than in a function of its own: net/http's goroutine is
		// deep in the handler already, and one more frame on the way to writeResponse
		// made it grow its stack from 4 to 8 KiB on every handshake (about 30,000
		// instructions).
		netHTTP := netHTTPHijacker(w)
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return nil, refuse(w, &HandshakeError{http.StatusInternalServerError, "cannot take over the connection: " + err.Error()})
		}
		if !netHTTP {
			// The HTTP server's read and write timeouts must not cut the WebSocket
			// connection. net/http's Hijack clears them itself.
			nc.SetDeadline(time.Time{})
		}
		if err := writeResponse(nc, scratchBuffer(brw), firstValue(r.Header, hdrKey), protocol, extensions, opts.ResponseHeader); err != nil {
			nc.Close()
			return nil, fmt.Errorf("websocket: writing the handshake response: %w", err)
		}
		c = newConn(nc, brw.Reader, false, protocol)
		if netHTTP {
			// net/http refers to its connection's buffers while the handler runs, which is
			// as long as the connection when it is served in the handler: 8 KiB a
			// connection. newConn has copied what was read ahead, and net/http uses
			// neither buffer after Hijack, so both can go. Another Hijacker's buffers are
			// its own business.
			releaseBuffers(brw)
		}
	}
	if compress {
		c.useDeflate(deflate)
	}
	if opts.CoalesceWrites {
		c.coalesceWrites()
	}
	c.startKeepalive(opts.PingInterval, opts.PingTimeout, realClock{})
	c.sq.max = opts.MaxBuffered
	opts.Group.add(c)
	return c, nil
}

// netHTTPHijacker reports whether the Hijacker that http.ResponseController finds behind
// w, following Unwrap as it does, is net/http's own server connection, whose buffers Accept
// may empty. The type is checked by its package path, which no other package can claim;
// should net/http rename it, the check fails safe and the buffers are merely kept.
func netHTTPHijacker(w http.ResponseWriter) bool {
	// The usual case, w itself, without the type switch's interface lookups.
	if known, ok := netHTTPResponse.Load().(reflect.Type); ok && reflect.TypeOf(w) == known {
		return true
	}
	for {
		switch v := w.(type) {
		case http.Hijacker:
			t := reflect.TypeOf(v)
			if known, ok := netHTTPResponse.Load().(reflect.Type); ok {
				return t == known
			}
			if t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "net/http" && t.Elem().Name() == "response" {
				netHTTPResponse.Store(t)
				return true
			}
			return false
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return false
		}
	}
}

// netHTTPResponse holds the type of net/http's Hijacker once netHTTPHijacker has found it:
// comparing types is cheap, and reading a type's package path and name through reflect
// cost some 500 instructions per handshake.
var netHTTPResponse atomic.Value // of reflect.Type

// releaseBuffers replaces the buffers of brw with tiny ones, on a reader and writer that
// fail with http.ErrHijacked: a later read of the request body, which goes through the
// reader, gets that error instead of the WebSocket's bytes or a nil dereference. The
// replacements are copies of hijackedReader and hijackedWriter, which share their
// buffers: nothing is ever stored in them (see there), so no Accept allocates new ones.
// It is not inlined, so that its temporaries do not enlarge Accept's frame, which is on
// the handler's stack during the handshake's deepest calls: with them, the goroutine of
// a Conn served in its handler needed an 8 KiB stack instead of 4 KiB.
//
//go:noinline
func releaseBuffers(brw *bufio.ReadWriter) {
	*brw.Reader = *hijackedReader
	*brw.Writer = *hijackedWriter
}

// hijackedReader and hijackedWriter are what releaseBuffers copies into net/http's
// emptied buffers. The reader's reads reach hijackedIO, which stores nothing in its
// buffer; the writer has failed once already, and a bufio.Writer that has failed
// returns its error without touching its buffer again.
var (
	hijackedReader = bufio.NewReaderSize(hijackedIO{}, 16)
	hijackedWriter = func() *bufio.Writer {
		w := bufio.NewWriterSize(hijackedIO{}, 1)
		w.Write(make([]byte, 2)) // longer than the buffer: written through, and fails
		return w
	}()
)

// hijackedIO is what net/http's emptied buffers read from and write to.
type hijackedIO struct{}

func (hijackedIO) Read([]byte) (int, error)  { return 0, http.ErrHijacked }
func (hijackedIO) Write([]byte) (int, error) { return 0, http.ErrHijacked }

// scratchBuffer returns the empty, unused buffer of the Hijacker's writer, in which the
// response can be built: Accept writes to the connection directly, and the writer is not
// used again. net/http gives its 4 KiB one, which it allocated for the connection
// anyway; building the response in a buffer of Accept's own would cost an allocation
// (the connection's Write takes it as an argument of an interface method, so it would
// not stay on the stack).
func scratchBuffer(brw *bufio.ReadWriter) []byte {
	if brw == nil || brw.Writer == nil || brw.Writer.Buffered() > 0 {
		return nil
	}
	return brw.Writer.AvailableBuffer()
}

// writeResponse writes the 101 response to the request whose Sec-WebSocket-Key is key,
// with the subprotocol and extensions chosen, if any, and the caller's extra headers,
// building it in buf, which it may outgrow.
func writeResponse(nc net.Conn, buf []byte, key, protocol, extensions string, extra http.Header) error {
	b := append(buf[:0], "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = appendAcceptKey(b, key)
	b = append(b, "\r\n"...)
	if protocol != "" {
		b = append(b, "Sec-WebSocket-Protocol: "...)
		b = append(b, protocol...)
		b = append(b, "\r\n"...)
	}
	if extensions != "" {
		b = append(b, "Sec-WebSocket-Extensions: "...)
		b = append(b, extensions...)
		b = append(b, "\r\n"...)
	}
	if len(extra) > 0 {
		b = appendExtraHeaders(b, extra)
	}
	b = append(b, "\r\n"...)
	_, err := nc.Write(b)
	return err
}

// appendExtraHeaders appends the headers of extra but those the handshake sets itself.
// It is a function of its own, and not inlined, so that its temporaries do not enlarge
// writeResponse's frame, the deepest on Accept's path, when there is no extra header.
//
//go:noinline
func appendExtraHeaders(b []byte, extra http.Header) []byte {
	// WriteSubset matches keys as spelled; a key written as in the RFC, such as
	// "Sec-WebSocket-Protocol" in a map literal, is not in canonical form.
	var exclude map[string]bool
	for k := range extra {
		if handshakeHeaders[http.CanonicalHeaderKey(k)] {
			if exclude == nil {
				exclude = make(map[string]bool)
			}
			exclude[k] = true
		}
	}
	w := bytes.NewBuffer(b)
	extra.WriteSubset(w, exclude)
	return w.Bytes()
}

// checkRequest checks r against RFC 6455 §4.2.1 and the origin policy. It may set
// response headers that go with its refusal.
func checkRequest(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) *HandshakeError {
	if isExtendedConnect(r) {
		if err := checkExtendedConnect(w, r); err != nil {
			return err
		}
		if err := checkVersion(w, r); err != nil {
			return err
		}
		return checkOrigin(r, opts)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return &HandshakeError{http.StatusMethodNotAllowed, "a WebSocket handshake uses the GET method"}
	}
	if !r.ProtoAtLeast(1, 1) {
		return &HandshakeError{http.StatusHTTPVersionNotSupported, "a WebSocket handshake needs HTTP/1.1 or later"}
	}
	if !hasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		return &HandshakeError{http.StatusUpgradeRequired, `this endpoint speaks WebSocket only: the request lacks "Upgrade: websocket"`}
	}
	if !hasToken(r.Header, "Connection", "upgrade") {
		return &HandshakeError{http.StatusBadRequest, `the request lacks "Connection: Upgrade"`}
	}
	if err := checkVersion(w, r); err != nil {
		return err
	}
	keys := r.Header[hdrKey]
	if len(keys) != 1 {
		return &HandshakeError{http.StatusBadRequest, "the request needs exactly one Sec-WebSocket-Key"}
	}
	// RFC 6455 §4.1: the key is a base64-encoded random 16-byte value.
	if !isKey(keys[0]) {
		return &HandshakeError{http.StatusBadRequest, "Sec-WebSocket-Key is not the base64 encoding of 16 bytes"}
	}
	return checkOrigin(r, opts)
}

// isKey reports whether k is the base64 encoding of 16 bytes, padded, as
// base64.StdEncoding decodes it: 22 characters of its alphabet and "==". It checks them
// without decoding, which would allocate the bytes.
func isKey(k string) bool {
	if len(k) != 24 || k[22] != '=' || k[23] != '=' {
		return false
	}
	for i := range 22 {
		switch c := k[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// checkVersion checks Sec-WebSocket-Version (RFC 6455 §4.2.1; RFC 8441 §5 keeps it).
func checkVersion(w http.ResponseWriter, r *http.Request) *HandshakeError {
	if v := r.Header[hdrVersion]; len(v) != 1 || v[0] != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return &HandshakeError{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version: only 13 is spoken"}
	}
	return nil
}

// checkOrigin applies RFC 6455 §10.2: browsers name the page's origin, and a server
// accepts only the origins it trusts. A request without Origin does not come from a
// browser page and is let through.
func checkOrigin(r *http.Request, opts *AcceptOptions) *HandshakeError {
	origin := firstValue(r.Header, "Origin")
	if origin == "" || opts.InsecureSkipOriginCheck {
		return nil
	}
	scheme, host, ok := originHost(origin)
	if !ok {
		return &HandshakeError{http.StatusForbidden, fmt.Sprintf("origin %q is not allowed", origin)}
	}
	// Browsers leave the default port out of Origin; some clients write it in Host.
	if asciiEqualFold(host, stripDefaultPort(r.Host, scheme)) {
		return nil
	}
	host = strings.ToLower(host)
	for _, p := range opts.OriginPatterns {
		ok, err := path.Match(strings.ToLower(p), host)
		if err != nil {
			return &HandshakeError{http.StatusInternalServerError, fmt.Sprintf("bad origin pattern %q: %v", p, err)}
		}
		if ok {
			return nil
		}
	}
	return &HandshakeError{http.StatusForbidden, fmt.Sprintf("origin %q is not allowed: list its host in AcceptOptions.OriginPatterns", origin)}
}

// originHost returns the scheme, in lower case, and the host (and port) of an Origin
// value, as url.Parse finds them, and whether it has a host. A browser's Origin is
// scheme://host[:port] (RFC 6454 §6.2): that form is taken apart here, which costs a
// tenth of url.Parse and allocates nothing; anything else goes to url.Parse.
func originHost(origin string) (scheme, host string, ok bool) {
	scheme, host, found := strings.Cut(origin, "://")
	if found && isOriginScheme(scheme) && isPlainHost(host) {
		if scheme != "http" && scheme != "https" {
			scheme = strings.ToLower(scheme)
		}
		return scheme, host, true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return "", "", false
	}
	return u.Scheme, u.Host, true
}

// isOriginScheme reports whether s is a URL scheme (RFC 3986 §3.1).
func isOriginScheme(s string) bool {
	if s == "" || !('a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isPlainHost reports whether s is a host name of letters, digits, dots and hyphens, or
// an IPv4 address, with an optional port of digits: no IPv6 brackets, user information,
// path or escapes, which url.Parse handles.
func isPlainHost(s string) bool {
	name, port, hasPort := strings.Cut(s, ":")
	if name == "" || hasPort && port == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// stripDefaultPort removes the port of host when it is the default one of scheme.
func stripDefaultPort(host, scheme string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// refuse writes the refusal as the HTTP response and returns it.
func refuse(w http.ResponseWriter, err *HandshakeError) error {
	http.Error(w, err.Reason, err.Status)
	return err
}

// selectSubprotocol returns the first of ours that the client offered, or "".
func selectSubprotocol(h http.Header, ours []string) string {
	for _, p := range ours {
		if listsToken(h, hdrProtocol, func(offered string) bool { return offered == p }) {
			return p
		}
	}
	return ""
}

// listsToken reports whether match holds for one of the comma-separated elements of the
// values of the header name, which must be in canonical form (see hdrKey): headers that
// net/http has read are stored under it.
func listsToken(h http.Header, name string, match func(string) bool) bool {
	for _, v := range h[name] {
		for t := range strings.SplitSeq(v, ",") {
			// RFC 7230 §3.2.3: the optional white space around elements is SP and HTAB.
			if t = strings.Trim(t, " \t"); t != "" && match(t) {
				return true
			}
		}
	}
	return false
}

// hasToken reports whether the header name lists token, ignoring ASCII case (RFC 7230
// §6.1: Connection: keep-alive, Upgrade; RFC 6455 §4.2.1).
func hasToken(h http.Header, name, token string) bool {
	// The usual request names the token alone ("Upgrade: websocket"): no list to split.
	if v := h[name]; len(v) == 1 && asciiEqualFold(v[0], token) {
		return true
	}
	return listsToken(h, name, func(t string) bool { return asciiEqualFold(t, token) })
}

// asciiEqualFold is strings.EqualFold for ASCII only: protocol tokens do not fold other
// letters (U+212A KELVIN SIGN is no k).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
