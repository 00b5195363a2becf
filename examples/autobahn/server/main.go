// Command server is the echo server that the Autobahn testsuite's fuzzingclient mode
// tests: it sends every message back with the same type, text as text and binary as
// binary, until the peer closes.
//
//	go run ./examples/autobahn/server [-addr 127.0.0.1:9001]
//
// The read limit is raised to 16 MiB for the suite's large-message cases (9.x), and
// permessage-deflate is accepted for the compression cases (12.x, 13.x), with context
// takeover; all else is the library's default. examples/autobahn/run.sh server runs the
// suite against it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/hybi/websocket"
)

// readLimit is the largest message the server echoes: the suite's largest is 16 MiB.
const readLimit = 16 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := serve(ctx, *addr); err != nil {
		log.Fatal(err)
	}
}

// serve listens on addr and echoes on every connection until ctx is done.
func serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on ws://%s\n", l.Addr())
	srv := &http.Server{
		Handler: newHandler(func(remote string, err error) {
			if code := websocket.CloseStatus(err); code != -1 {
				log.Printf("%s: peer closed with %d", remote, int(code))
				return
			}
			log.Printf("%s: %v", remote, err)
		}),
		// net/http sets no time limit on the request head, and a 1 MiB size limit: a
		// client sending its handshake a byte a second would hold a goroutine forever.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHandler returns the echo endpoint, at any path. ended is called once per request
// with the client's address and the error that ended it: the refused handshake, or what
// ended the echo (carrying the peer's close status when the peer closed).
func newHandler(ended func(remote string, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: websocket.CompressionContextTakeover})
		if err != nil {
			ended(r.RemoteAddr, err) // Accept has answered with an HTTP error
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(readLimit)
		ended(r.RemoteAddr, echo(r.Context(), c))
	})
}

// echo sends every message back until reading or writing fails, and returns that error.
// When the peer closes, or breaks the protocol, the Conn has answered with the right close
// frame and closed the connection by the time it returns.
func echo(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return err
		}
	}
}
