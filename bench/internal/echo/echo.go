// Package echo runs the same WebSocket echo server on top of each library under comparison,
// and a plain TCP echo that gives the floor.
//
// Every server echoes each message it receives with the same message type, accepts
// messages up to ReadLimit, negotiates no compression and allows any Origin. Each library
// is used the way its documentation recommends for throughput: ours, gorilla and coder
// stream a message from their reader into their writer; gobwas upgrades raw TCP connections
// without net/http and uses its wsutil reader and writer; gws runs its event loop on raw
// TCP connections as its own server does.
package echo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
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
//	          as the package documentation shows
//	ours-msg  this module: Read then Write, one new slice per message
//	ours-bg   like ours, under context.Background, which needs no deadline watching
//	ours-go   like ours-bg, served from a goroutine of its own once the handler has
//	          returned, which frees what net/http holds for the request
//	gorilla   github.com/gorilla/websocket: NextReader copied into NextWriter
//	coder     github.com/coder/websocket: Reader copied into Writer
//	gobwas    github.com/gobwas/ws: zero-copy upgrade, wsutil.Reader into wsutil.Writer
//	gws       github.com/lxzan/gws: OnMessage writes the message back
//	floor     plain TCP: no HTTP, no framing; writes back whatever it reads
var Libs = []string{"ours", "ours-msg", "ours-bg", "ours-go", "gorilla", "coder", "gobwas", "gws", "floor"}

// Known reports whether Serve has a server for lib.
func Known(lib string) bool { return slices.Contains(Libs, lib) }

// Serve accepts connections on ln and echoes on them with the server named lib until ln
// is closed, then returns nil. Connections already accepted are left to end when their
// client closes them.
func Serve(ln net.Listener, lib string) error {
	switch lib {
	case "ours":
		return serveHTTP(ln, oursHandler(echoOursStream, true))
	case "ours-msg":
		return serveHTTP(ln, oursHandler(echoOursMessage, true))
	case "ours-bg":
		return serveHTTP(ln, oursHandler(echoOursStream, false))
	case "ours-go":
		return serveHTTP(ln, oursDetachedHandler(echoOursStream))
	case "gorilla":
		return serveHTTP(ln, gorillaHandler())
	case "coder":
		return serveHTTP(ln, coderHandler())
	case "gobwas":
		return serveTCP(ln, echoGobwas)
	case "gws":
		return serveTCP(ln, gwsServer())
	case "floor":
		return serveTCP(ln, echoFloor)
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

func oursHandler(echo func(context.Context, *ours.Conn) error, requestContext bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ours.Accept(w, r, &ours.AcceptOptions{InsecureSkipOriginCheck: true})
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
		c, err := ours.Accept(w, r, &ours.AcceptOptions{InsecureSkipOriginCheck: true})
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

func echoOursMessage(ctx context.Context, c *ours.Conn) error {
	typ, msg, err := c.Read(ctx)
	if err != nil {
		return err
	}
	return c.Write(ctx, typ, msg)
}

func gorillaHandler() http.Handler {
	upgrader := gorilla.Upgrader{
		// Zero buffer sizes reuse the HTTP server's read buffer; the pool lends write
		// buffers only while a message is being written.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(ReadLimit)
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

func coderHandler() http.Handler {
	opts := &coder.AcceptOptions{InsecureSkipVerify: true, CompressionMode: coder.CompressionDisabled}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(ReadLimit)
		ctx := r.Context()
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
func gwsServer() func(net.Conn) {
	upgrader := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{ReadMaxPayloadSize: ReadLimit})
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
