// Package echo runs the same WebSocket echo server on top of each library under comparison,
// and a plain TCP echo that gives the floor.
//
// Every server echoes each message it receives with the same message type, accepts
// messages up to ReadLimit and allows any Origin. Each library is used the way its
// documentation recommends for throughput: ours, gorilla and coder stream a message from
// their reader into their writer; gobwas upgrades raw TCP connections without net/http
// and uses its wsutil reader and writer; gws runs its event loop on raw TCP connections
// as its own server does.
//
// Servers come in two styles (see Style): streaming, a message copied from the library's
// reader into its writer through a small buffer, and whole-message, the message read
// into one slice and written back with one call, as gorilla's ReadMessage and
// WriteMessage do. The -msg servers are the whole-message namesakes of the streaming
// ones; gws has no streaming API and serves whole messages under its own name.
//
// The servers whose names end in -deflate accept permessage-deflate (RFC 7692), each in
// the way its library documents, and otherwise serve as their uncompressed namesakes do;
// the others negotiate no compression.
package echo

import (
	"bufio"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	ours "github.com/hybi/websocket"
	"github.com/lxzan/gws"
)

// ReadLimit is the largest message every server accepts.
const ReadLimit = 32 << 20

// Libs are the servers Serve knows, in the order benchmarks show them.
//
//	ours      this module: Reader streamed into Writer under the request's context,
//	          as the package documentation shows; every ours server sets
//	          CoalesceWrites, which an echo loop, answering each message before it
//	          reads the next, allows
//	ours-msg  this module: Read then Write, one new slice per message
//	ours-bg   like ours, under context.Background, which needs no deadline watching
//	ours-go   like ours-bg, served from a goroutine of its own once the handler has
//	          returned, which frees what net/http holds for the request
//	ours-park like ours-msg, but parked between messages (Conn.Park): no goroutine
//	          while it waits for the next message
//	ours-keepalive  like ours, with keepalive on: AcceptOptions.PingInterval 30s and
//	          PingTimeout 10s (the idle scenario ends before the first ping)
//	ours-netconn    like ours, but through the NetConn adapter (MessageBinary): each
//	          Read into a 512-byte buffer of the connection's own is written back as one
//	          message, so it echoes only messages that arrive in one read (the idle
//	          scenario's); the buffer is in its memory per connection
//	gorilla   github.com/gorilla/websocket: NextReader copied into NextWriter
//	coder     github.com/coder/websocket: Reader copied into Writer, under the
//	          request's context, as its examples do
//	coder-bg  like coder, under context.Background, which coder does not watch (it
//	          registers a context.AfterFunc on every Reader and Writer otherwise)
//	gobwas    github.com/gobwas/ws: zero-copy upgrade, wsutil.Reader into wsutil.Writer
//	gws       github.com/lxzan/gws: OnMessage writes the message back
//	floor     plain TCP: no HTTP, no framing; writes back whatever it reads
//
// Whole-message servers, each otherwise configured as its streaming namesake (ours-msg,
// above, is this module's; gws is one already):
//
//	gorilla-msg  ReadMessage then WriteMessage
//	coder-msg    Read then Write
//	gobwas-msg   wsutil's reader read to its end into one slice, then
//	             wsutil.WriteServerMessage, which writes the frame's header and its
//	             payload with a call each
//
// With permessage-deflate, at each library's default compression level (BestSpeed) but
// for gobwas, whose examples use 9 and which is given BestSpeed here too:
//
//	ours-deflate     ours with CompressionContextTakeover: the client may compress
//	                 against its earlier messages; its own are compressed each on its own
//	gorilla-deflate  gorilla with EnableCompression, its only mode: no context takeover
//	                 either way
//	coder-deflate    coder with CompressionContextTakeover, which compresses messages of
//	                 128 bytes or more against the earlier ones
//	gobwas-deflate   gobwas with wsflate, which keeps no context either way, wrapped
//	                 around its wsutil reader and writer
//	gws-deflate      gws with PermessageDeflate, context takeover both ways at its default
//	                 windows of 4 KiB; it compresses every message
var Libs = []string{"ours", "ours-msg", "ours-bg", "ours-go", "ours-park", "ours-keepalive", "ours-netconn", "gorilla", "coder", "coder-bg", "gobwas", "gws", "floor",
	"gorilla-msg", "coder-msg", "gobwas-msg",
	"ours-deflate", "gorilla-deflate", "coder-deflate", "gobwas-deflate", "gws-deflate"}

// Known reports whether Serve has a server for lib.
func Known(lib string) bool { return slices.Contains(Libs, lib) }

// Style says how the server lib handles a message: "stream" (copied from the library's
// reader into its writer), "message" (read whole into one slice, then written with one
// call) or, for the floor, which knows no messages, "bytes".
func Style(lib string) string {
	switch {
	case lib == "floor":
		return "bytes"
	case lib == "gws", lib == "ours-park", strings.HasPrefix(lib, "gws-"), strings.HasSuffix(lib, "-msg"):
		return "message"
	}
	return "stream"
}

// Serve accepts connections on ln and echoes on them with the server named lib until ln
// is closed, then returns nil. Connections already accepted are left to end when their
// client closes them.
func Serve(ln net.Listener, lib string) error {
	switch lib {
	case "ours":
		return serveHTTP(ln, oursHandler(echoOursStream, true, oursOptions(ours.CompressionDisabled)))
	case "ours-msg":
		return serveHTTP(ln, oursHandler(echoOursMessage, true, oursOptions(ours.CompressionDisabled)))
	case "ours-bg":
		return serveHTTP(ln, oursHandler(echoOursStream, false, oursOptions(ours.CompressionDisabled)))
	case "ours-go":
		return serveHTTP(ln, oursDetachedHandler(echoOursStream))
	case "ours-park":
		return serveHTTP(ln, oursParkedHandler())
	case "ours-keepalive":
		return serveHTTP(ln, oursKeepaliveHandler())
	case "ours-netconn":
		return serveHTTP(ln, oursNetConnHandler())
	case "gorilla":
		return serveHTTP(ln, gorillaHandler(false, false))
	case "gorilla-msg":
		return serveHTTP(ln, gorillaHandler(false, true))
	case "coder":
		return serveHTTP(ln, coderHandler(coder.CompressionDisabled, false, true))
	case "coder-bg":
		return serveHTTP(ln, coderHandler(coder.CompressionDisabled, false, false))
	case "coder-msg":
		return serveHTTP(ln, coderHandler(coder.CompressionDisabled, true, true))
	case "gobwas":
		return serveTCP(ln, echoGobwas)
	case "gobwas-msg":
		return serveTCP(ln, echoGobwasMessage)
	case "gws":
		return serveTCP(ln, gwsServer(gws.PermessageDeflate{}))
	case "floor":
		return serveTCP(ln, echoFloor)
	case "ours-deflate":
		return serveHTTP(ln, oursHandler(echoOursStream, true, oursOptions(ours.CompressionContextTakeover)))
	case "gorilla-deflate":
		return serveHTTP(ln, gorillaHandler(true, false))
	case "coder-deflate":
		return serveHTTP(ln, coderHandler(coder.CompressionContextTakeover, false, true))
	case "gobwas-deflate":
		return serveTCP(ln, echoGobwasDeflate)
	case "gws-deflate":
		return serveTCP(ln, gwsServer(gws.PermessageDeflate{
			Enabled:               true,
			ServerContextTakeover: true,
			ClientContextTakeover: true,
		}))
	}
	return fmt.Errorf("echo: unknown library %q (known: %v)", lib, Libs)
}

// serveHTTP serves handler with net/http until ln is closed.
func serveHTTP(ln net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	err := srv.Serve(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// serveTCP runs handle on each accepted connection, in its own goroutine, until ln is
// closed. handle owns the connection.
func serveTCP(ln net.Listener, handle func(net.Conn)) error {
	for {
		nc, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: wait for some to be freed.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go handle(nc)
	}
}

// copyBuffers lend the streaming servers a buffer for the length of one message, so an
// idle connection holds none.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyMessage copies one message from r to w through a pooled buffer and closes w.
func copyMessage(w io.WriteCloser, r io.Reader) error {
	bp := copyBuffers.Get().(*[]byte)
	_, err := io.CopyBuffer(w, r, *bp)
	copyBuffers.Put(bp)
	if err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// oursOptions are the options every ours server accepts with, compressing in mode.
func oursOptions(mode ours.CompressionMode) *ours.AcceptOptions {
	return &ours.AcceptOptions{InsecureSkipOriginCheck: true, Compression: mode, CoalesceWrites: true}
}

func oursHandler(echo func(context.Context, *ours.Conn) error, requestContext bool, opts *ours.AcceptOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ours.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(ReadLimit)
		ctx := context.Background()
		if requestContext {
			ctx = r.Context()
		}
		for echo(ctx, c) == nil {
		}
	})
}

// oursDetachedHandler serves each connection from a goroutine of its own and returns
// from the handler at once.
func oursDetachedHandler(echo func(context.Context, *ours.Conn) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ours.Accept(w, r, oursOptions(ours.CompressionDisabled))
		if err != nil {
			return
		}
		c.SetReadLimit(ReadLimit)
		go func() {
			defer c.CloseNow()
			for echo(context.Background(), c) == nil {
			}
		}()
	})
}

// oursKeepaliveHandler is ours with keepalive on.
func oursKeepaliveHandler() http.Handler {
	opts := oursOptions(ours.CompressionDisabled)
	opts.PingInterval, opts.PingTimeout = 30*time.Second, 10*time.Second
	return oursHandler(echoOursStream, true, opts)
}

// oursNetConnHandler echoes through the NetConn adapter: each read is written back as a
// message of its own.
func oursNetConnHandler() http.Handler {
	opts := oursOptions(ours.CompressionDisabled)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ours.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(ReadLimit)
		nc := ours.NetConn(c, ours.MessageBinary)
		buf := make([]byte, 512)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			if _, err := nc.Write(buf[:n]); err != nil {
				return
			}
		}
	})
}

func echoOursStream(ctx context.Context, c *ours.Conn) error {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return err
	}
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return err
	}
	return copyMessage(w, r)
}

// oursParkedHandler parks each Conn once the handshake is done and between messages:
// a message wakes it, it is echoed, and the Conn parks again.
func oursParkedHandler() http.Handler {
	var echo func(*ours.Conn)
	echo = func(c *ours.Conn) {
		if echoOursMessage(context.Background(), c) != nil || c.Park(echo) != nil {
			c.CloseNow()
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ours.Accept(w, r, &ours.AcceptOptions{InsecureSkipOriginCheck: true})
		if err != nil {
			return
		}
		c.SetReadLimit(ReadLimit)
		if c.Park(echo) != nil {
			c.CloseNow()
		}
	})
}

func echoOursMessage(ctx context.Context, c *ours.Conn) error {
	typ, msg, err := c.Read(ctx)
	if err != nil {
		return err
	}
	return c.Write(ctx, typ, msg)
}

// gorillaHandler streams each message or, if whole, reads and writes it in one piece.
func gorillaHandler(compress, whole bool) http.Handler {
	upgrader := gorilla.Upgrader{
		// Zero buffer sizes reuse the HTTP server's read buffer; the pool lends write
		// buffers only while a message is being written.
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: compress,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(ReadLimit)
		for whole {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(typ, msg) != nil {
				return
			}
		}
		for {
			typ, rd, err := c.NextReader()
			if err != nil {
				return
			}
			wr, err := c.NextWriter(typ)
			if err != nil {
				return
			}
			if copyMessage(wr, rd) != nil {
				return
			}
		}
	})
}

// coderHandler streams each message or, if whole, reads and writes it in one piece,
// under the request's context if requestContext, else under context.Background.
func coderHandler(mode coder.CompressionMode, whole, requestContext bool) http.Handler {
	opts := &coder.AcceptOptions{InsecureSkipVerify: true, CompressionMode: mode}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(ReadLimit)
		ctx := context.Background()
		if requestContext {
			ctx = r.Context()
		}
		for whole {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if c.Write(ctx, typ, msg) != nil {
				return
			}
		}
		for {
			typ, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			wr, err := c.Writer(ctx, typ)
			if err != nil {
				return
			}
			if copyMessage(wr, rd) != nil {
				return
			}
		}
	})
}

func echoGobwas(nc net.Conn) {
	defer nc.Close()
	if _, err := ws.Upgrade(nc); err != nil {
		return
	}
	const state = ws.StateServerSide
	control := wsutil.ControlFrameHandler(nc, state)
	rd := &wsutil.Reader{
		Source:         bufio.NewReaderSize(nc, 4096),
		State:          state,
		CheckUTF8:      true,
		MaxFrameSize:   ReadLimit,
		OnIntermediate: control,
	}
	wr := wsutil.NewWriter(nc, state, ws.OpBinary)
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return
		}
		if h.OpCode.IsControl() {
			if control(h, rd) != nil {
				return
			}
			continue
		}
		wr.Reset(nc, state, h.OpCode)
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if wr.Flush() != nil {
			return
		}
	}
}

// echoGobwasMessage is echoGobwas in the whole-message style: the message read to its
// end into one slice, as wsutil.ReadClientData does but with the same buffered reader
// and frame limit as echoGobwas, then written back with wsutil.WriteServerMessage.
func echoGobwasMessage(nc net.Conn) {
	defer nc.Close()
	if _, err := ws.Upgrade(nc); err != nil {
		return
	}
	const state = ws.StateServerSide
	control := wsutil.ControlFrameHandler(nc, state)
	rd := &wsutil.Reader{
		Source:         bufio.NewReaderSize(nc, 4096),
		State:          state,
		CheckUTF8:      true,
		MaxFrameSize:   ReadLimit,
		OnIntermediate: control,
	}
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return
		}
		if h.OpCode.IsControl() {
			if control(h, rd) != nil {
				return
			}
			continue
		}
		msg, err := io.ReadAll(rd)
		if err != nil {
			return
		}
		if wsutil.WriteServerMessage(nc, h.OpCode, msg) != nil {
			return
		}
	}
}

// echoGobwasDeflate is echoGobwas with wsflate, as its documentation shows: the
// message's compression bit is kept in a wsflate.MessageState that the wsutil reader
// sets and the writer reads, and a compressed message is copied from a wsflate reader
// around the wsutil reader into a wsflate writer around the wsutil writer. wsflate keeps
// no context between messages, so the server asks for none either way.
func echoGobwasDeflate(nc net.Conn) {
	defer nc.Close()
	ext := wsflate.Extension{Parameters: wsflate.Parameters{
		ServerNoContextTakeover: true,
		ClientNoContextTakeover: true,
	}}
	u := ws.Upgrader{Negotiate: ext.Negotiate}
	if _, err := u.Upgrade(nc); err != nil {
		return
	}
	// StateExtended lets RSV1 through to the extension.
	state := ws.StateServerSide
	if _, ok := ext.Accepted(); ok {
		state |= ws.StateExtended
	}
	var msg wsflate.MessageState
	control := wsutil.ControlFrameHandler(nc, state)
	rd := &wsutil.Reader{
		Source:         bufio.NewReaderSize(nc, 4096),
		State:          state,
		MaxFrameSize:   ReadLimit,
		OnIntermediate: control,
		Extensions:     []wsutil.RecvExtension{&msg},
		// wsutil would check the compressed bytes: text is checked once inflated, below.
		CheckUTF8: false,
	}
	wr := wsutil.NewWriter(nc, state, ws.OpBinary)
	wr.SetExtensions(&msg)
	fr := wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor { return flate.NewReader(r) })
	fw := wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, flate.BestSpeed)
		return f
	})
	utf8 := &wsutil.UTF8Reader{}
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return
		}
		if h.OpCode.IsControl() {
			if control(h, rd) != nil {
				return
			}
			continue
		}
		// ResetOp, not Reset, which would drop the extension.
		wr.ResetOp(h.OpCode)
		var src io.Reader = rd
		var dst io.Writer = wr
		if msg.IsCompressed() {
			fr.Reset(rd)
			fw.Reset(wr)
			src, dst = fr, fw
		}
		if h.OpCode == ws.OpText {
			utf8.Reset(src)
			src = utf8
		}
		if _, err := io.Copy(dst, src); err != nil {
			return
		}
		if h.OpCode == ws.OpText && !utf8.Valid() {
			ws.WriteFrame(nc, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusInvalidFramePayloadData, "")))
			return
		}
		if msg.IsCompressed() && fw.Close() != nil {
			return
		}
		if wr.Flush() != nil {
			return
		}
	}
}

// gwsEcho is the gws event handler: it writes each message back.
type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnPing(c *gws.Conn, payload []byte) { c.WritePong(payload) }

func (gwsEcho) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.WriteMessage(m.Opcode, m.Bytes())
}

// gwsServer does what gws.Server does with each connection (read the request, upgrade,
// run the read loop). gws.Server's own accept loop never returns once its listener is
// closed, so Serve cannot use it.
func gwsServer(pmd gws.PermessageDeflate) func(net.Conn) {
	upgrader := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{ReadMaxPayloadSize: ReadLimit, PermessageDeflate: pmd})
	return func(nc net.Conn) {
		br := bufio.NewReaderSize(nc, 4096)
		r, err := http.ReadRequest(br)
		if err != nil {
			nc.Close()
			return
		}
		c, err := upgrader.UpgradeFromConn(nc, br, r)
		if err != nil {
			return
		}
		c.ReadLoop()
	}
}

// echoFloor writes back exactly what it reads: the cost of TCP alone.
func echoFloor(nc net.Conn) {
	defer nc.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			if _, werr := nc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
