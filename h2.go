package websocket

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// An RFC 8441 WebSocket is one stream of an HTTP/2 connection: the client sends an
// extended CONNECT (":protocol: websocket"), the server answers 200, and the WebSocket's
// frames travel as the DATA of the request (client to server) and of the response
// (server to client). Accept runs the Conn on a streamConn, which makes that pair a
// net.Conn.

// isExtendedConnect reports whether r is on HTTP/2 or later, where a WebSocket opens with
// an extended CONNECT instead of an Upgrade.
func isExtendedConnect(r *http.Request) bool { return r.ProtoMajor >= 2 }

// checkExtendedConnect checks what RFC 8441 §5 asks of the request beyond what it shares
// with RFC 6455: the method and the :protocol pseudo-header (§4). Upgrade, Connection and
// Sec-WebSocket-Key are not used (§5), and HTTP/2 refuses the first two itself.
func checkExtendedConnect(w http.ResponseWriter, r *http.Request) *HandshakeError {
	if r.Method != http.MethodConnect {
		w.Header().Set("Allow", http.MethodConnect)
		return &HandshakeError{http.StatusMethodNotAllowed, "a WebSocket handshake over HTTP/2 uses the CONNECT method (RFC 8441 §5)"}
	}
	// net/http hands the :protocol pseudo-header to the handler under its own name.
	if p := r.Header.Values(":protocol"); len(p) != 1 || p[0] != "websocket" {
		return &HandshakeError{http.StatusBadRequest, `an HTTP/2 CONNECT for a WebSocket carries ":protocol: websocket" (RFC 8441 §5)`}
	}
	return nil
}

// acceptStream answers an RFC 8441 request with 200 and the negotiated headers, and
// returns a server Conn on its stream.
func acceptStream(w http.ResponseWriter, r *http.Request, protocol, extensions string, extra http.Header) (*Conn, error) {
	h := w.Header()
	for k, vv := range extra {
		if !handshakeHeaders[http.CanonicalHeaderKey(k)] {
			for _, v := range vv {
				h.Add(k, v)
			}
		}
	}
	if protocol != "" {
		h.Set("Sec-WebSocket-Protocol", protocol)
	}
	if extensions != "" {
		h.Set("Sec-WebSocket-Extensions", extensions)
	}
	rc := http.NewResponseController(w)
	// The HTTP server's read and write timeouts must not cut the WebSocket's stream.
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("websocket: writing the handshake response: %w", err)
	}
	c := newConn(newStreamConn(w, rc, r), nil, false, protocol)
	// A write that its deadline cuts short resets the stream (see streamConn.cutWrite):
	// as over TLS, it cannot resume.
	c.tlsWrites = true
	return c, nil
}

// errStreamEnded is what a streamConn's writes return once the request's context is done:
// the stream was reset, the HTTP/2 connection closed, or the handler returned, after
// which the ResponseWriter must not be touched.
var errStreamEnded = fmt.Errorf("HTTP/2 stream ended: %w", net.ErrClosed)

// streamConn is the net.Conn of a WebSocket on an HTTP/2 stream. It reads the request
// body and writes the response, flushing every write: the Conn writes a frame, or a batch
// of coalesced frames, at a time, and a frame of more than 4 KiB as its header and then
// its payload, which it does not copy.
//
// Its deadlines behave as a TCP connection's do, which the Conn's contexts rely on. A
// read does not read the body until bytes are there: a goroutine of its own waits for
// them, so that a deadline can end the read and leave the body intact for the next one
// (net/http's own read deadline closes the body for good). A write's deadline, once it
// passes during the write, can only cut the write by resetting the stream, since a write
// blocked by HTTP/2 flow control has no other way out; a deadline that passed before the
// write fails it without touching the stream.
type streamConn struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	body   io.ReadCloser
	done   <-chan struct{} // the request context's: the stream or the handler ended
	local  net.Addr
	remote net.Addr

	// Reading; waiting and the goroutine's start are owned by the reader (the Conn reads
	// from one goroutine at a time).
	startWaiter sync.Once
	want        chan struct{} // asks the waiter to wait for bytes
	ready       chan error    // its answer: bytes are buffered (nil), or the body ended
	waiting     bool          // a wait was asked for and not answered yet
	ended       bool          // the waiter saw the body end, and has returned
	rd          deadline      // as NetConn's

	// Writing.
	wmu      sync.Mutex // guards the fields below
	wdl      time.Time  // the write deadline
	writing  bool       // a Write is under way
	wtimer   *time.Timer
	reset    bool // the stream was reset to cut a write
	closeErr error

	closeOnce sync.Once
	closed    chan struct{}
}

func newStreamConn(w http.ResponseWriter, rc *http.ResponseController, r *http.Request) *streamConn {
	s := &streamConn{
		w:      w,
		rc:     rc,
		body:   r.Body,
		done:   r.Context().Done(),
		remote: streamAddr(r.RemoteAddr),
		want:   make(chan struct{}, 1),
		ready:  make(chan error, 1),
		closed: make(chan struct{}),
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s.local = a
	} else {
		s.local = streamAddr("")
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		s.remote = net.TCPAddrFromAddrPort(ap)
	}
	return s
}

// waitLoop waits, each time Read asks, until the body has bytes buffered or has ended. A
// read of no bytes from net/http's HTTP/2 body blocks until then and consumes nothing
// (should a later net/http return at once instead, reads still work, but a deadline could
// no longer end one that waits). It returns once the body ends, which Close makes happen.
func (s *streamConn) waitLoop() {
	for {
		select {
		case <-s.want:
		case <-s.closed:
			return
		}
		_, err := s.body.Read(nil)
		s.ready <- err
		if err != nil {
			return
		}
	}
}

func (s *streamConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// The read deadline as a context, whose Done is closed once it passes (netconn.go).
	timeout := s.rd.context().Done()
	select {
	case <-s.closed:
		return 0, net.ErrClosed
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if s.ended {
		return s.body.Read(p) // fails at once, as it did for the waiter
	}
	if !s.waiting {
		s.startWaiter.Do(func() { go s.waitLoop() })
		s.waiting = true
		s.want <- struct{}{}
	}
	select {
	case err := <-s.ready:
		s.waiting = false
		s.ended = err != nil
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	case <-s.closed:
		return 0, net.ErrClosed
	}
	n, err := s.body.Read(p)
	if n == 0 && err != nil {
		select {
		case <-s.closed:
			return 0, net.ErrClosed
		default:
		}
	}
	return n, err
}

func (s *streamConn) Write(b []byte) (int, error) {
	if err := s.beginWrite(); err != nil {
		return 0, err
	}
	n, err := s.w.Write(b)
	if err == nil {
		err = s.rc.Flush()
	}
	return n, s.endWrite(err)
}

// beginWrite checks that a write may start, and arms its deadline.
func (s *streamConn) beginWrite() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closeErr != nil {
		return s.closeErr
	}
	select {
	case <-s.done:
		return errStreamEnded
	default:
	}
	if !s.wdl.IsZero() && !time.Now().Before(s.wdl) {
		return os.ErrDeadlineExceeded
	}
	s.writing = true
	s.armWrite()
	return nil
}

// endWrite disarms the write's deadline and returns the error the write reports.
func (s *streamConn) endWrite(err error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.writing = false
	if s.wtimer != nil {
		s.wtimer.Stop()
	}
	switch {
	case err == nil:
	case s.closeErr != nil:
		err = s.closeErr
	case s.reset:
		err = os.ErrDeadlineExceeded
	}
	return err
}

// armWrite makes the write under way end at the write deadline. The caller holds wmu.
func (s *streamConn) armWrite() {
	if s.wtimer != nil {
		s.wtimer.Stop()
	}
	if !s.writing || s.wdl.IsZero() {
		return
	}
	d := time.Until(s.wdl)
	if d <= 0 {
		s.cutWrite()
		return
	}
	if s.wtimer == nil {
		s.wtimer = time.AfterFunc(d, s.writeTimedOut)
	} else {
		s.wtimer.Reset(d)
	}
}

func (s *streamConn) writeTimedOut() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writing && !s.wdl.IsZero() && !time.Now().Before(s.wdl) {
		s.cutWrite()
	}
}

// cutWrite makes the write under way return by resetting the stream: a write blocked by
// flow control has no other way out. The caller holds wmu.
func (s *streamConn) cutWrite() {
	if s.reset {
		return
	}
	select {
	case <-s.done:
		return // the ResponseWriter may be gone; the write has failed anyway
	default:
	}
	s.reset = true
	s.rc.SetWriteDeadline(aLongTimeAgo)
}

// Close ends the stream for the Conn: reads return, and so does a write under way, by
// resetting the stream; the response itself ends when the handler returns.
func (s *streamConn) Close() error {
	s.closeOnce.Do(func() {
		s.wmu.Lock()
		s.closeErr = net.ErrClosed
		if s.writing {
			s.cutWrite()
		}
		s.wmu.Unlock()
		close(s.closed)
		s.body.Close()
	})
	return nil
}

func (s *streamConn) LocalAddr() net.Addr  { return s.local }
func (s *streamConn) RemoteAddr() net.Addr { return s.remote }

func (s *streamConn) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *streamConn) SetReadDeadline(t time.Time) error {
	s.rd.set(t)
	return nil
}

func (s *streamConn) SetWriteDeadline(t time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wdl = t
	s.armWrite()
	return nil
}

// streamAddr is an address that net/http gave as a string only.
type streamAddr string

func (streamAddr) Network() string  { return "tcp" }
func (a streamAddr) String() string { return string(a) }
