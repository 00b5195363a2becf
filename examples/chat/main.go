// Command chat serves a chat page: everyone in a room sees every line sent to it, as it
// is sent. It takes the echo example further: one connection's message goes to many,
// rooms keep their conversations apart, and a page that loses its connection reconnects
// by itself and gets the messages it missed.
//
//	go run ./examples/chat [-addr 127.0.0.1:8080] [-history 100]
//
// Open the printed address in two browser windows, with a name and the same room, or
// join from a terminal with the client in examples/chat/client. A connection is
// GET /ws?room=ROOM&name=NAME. The client sends each chat line as a text message of at
// most 1 KiB; the server sends JSON events:
//
//	{"type":"welcome","epoch":"…","members":["ann","bob"]}   first, on every connection
//	{"type":"message","id":7,"name":"ann","text":"hello"}      a chat line, the sender's too
//	{"type":"join","name":"bob"}, {"type":"leave","name":"bob"}
//	{"type":"gap"}                                             messages were missed for good
//
// Every room numbers its messages and keeps the last ones (-history). A client that
// reconnects adds epoch=E&after=ID to its URL, the room's epoch from its welcome and the
// last message ID it showed, and gets the messages after that one before any new ones:
// nothing is shown twice, and nothing is missed unless it is older than the history. A
// newcomer gets the history too.
//
// A client that falls too far behind, because it or its network cannot keep up, is
// dropped with 1008 (policy violation) rather than holding up the room; its page
// reconnects and catches up from the history. A client that sends more than 10 lines at
// once, or more than 5 a second for long, is disconnected with 1008 too: one client must
// not flood the room. A client that does not answer a ping within 10 seconds is
// disconnected. On SIGINT or SIGTERM the server closes every
// connection with 1001 (going away), and the pages reconnect once it is back.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/hybi/websocket/examples/chat/internal/chat"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	history := flag.Int("history", chat.Defaults.History, "messages each room keeps for newcomers and for pages that reconnect")
	flag.Parse()
	if *history < 0 {
		log.Fatal("-history must not be negative")
	}
	cfg := chat.Defaults
	cfg.History = *history

	// Listen before printing, so that the printed address is the real one even with
	// port 0.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("open http://%s/ in two browser windows\n", l.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := chat.Serve(ctx, l, chat.NewHub(cfg, chat.NewMemory(cfg))); err != nil {
		log.Fatal(err)
	}
}
