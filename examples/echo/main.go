// Command echo serves a web page that talks to a WebSocket echo endpoint.
//
//	go run ./examples/echo [-addr 127.0.0.1:8080]
//
// It prints the address of the page to open. The page at / sends what is
// typed in its text area to /ws, which sends every message back with the
// same type: text stays text and binary stays binary. Messages are compressed
// (permessage-deflate) when the browser offers it, as browsers do. The page's
// buttons follow the connection: Send and Close while it is open, Reconnect once
// it has closed.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/hybi/websocket"
)

//go:embed index.html
var static embed.FS

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	// Listen before printing, so that the printed address is the real one
	// even with port 0.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("open http://%s/\n", l.Addr())
	log.Fatal(newServer(newHandler(nil)).Serve(l))
}

// newServer returns the HTTP server for h, with limits on the request head that
// net/http does not set by itself.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h,
		// Without it, a client sending its handshake a byte a second holds a goroutine
		// and a connection for as long as it likes. A handshake fits in one packet.
		ReadHeaderTimeout: 10 * time.Second,
		// A handshake is a few hundred bytes and the page's cookies; net/http would
		// take 1 MiB.
		MaxHeaderBytes: 16 << 10,
	}
}

// newHandler returns the page at / and the echo endpoint at /ws.
// If ended is not nil, it is called with the error that ended each echo
// connection, which carries the peer's close status when the peer closed.
func newHandler(ended func(error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		// Browsers offer permessage-deflate; taking it up costs CPU and, since they
		// compress against their earlier messages, 32 KiB per connection.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: websocket.CompressionContextTakeover})
		if err != nil {
			// Accept has already answered the request with an HTTP error.
			log.Printf("%s: %v", r.RemoteAddr, err)
			return
		}
		defer c.CloseNow()

		log.Printf("%s: connected", r.RemoteAddr)
		err = echo(r.Context(), c)
		// When the peer closed, err names its close status and reason.
		log.Printf("%s: %v", r.RemoteAddr, err)
		if ended != nil {
			ended(err)
		}
	})
	return mux
}

// echo sends every message it reads back to the peer with the same type,
// streaming it rather than holding it whole in memory. It returns the error
// that ended the connection: when the peer closes, that error carries the
// peer's close status.
func echo(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return err
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
}
