// Command client is a terminal client of the chat example. It joins a room, prints what
// is said there and sends each line typed on its standard input. When the connection
// drops, it reconnects by itself, backing off, and gets the messages it missed, as the
// chat page does.
//
//	go run ./examples/chat/client -name ann [-room lobby] [-url ws://127.0.0.1:8080/ws]
//
// With several URLs, of nodes sharing their rooms through Redis (examples/chat/redis),
// each connection after a failure goes to the next: a session whose node goes away
// resumes on another.
//
// It stops at the end of its input, on SIGINT, or when the server refuses its name or
// room.
package main

import (
	"bufio"
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "URL of the chat endpoint; several, separated by commas, are tried in turn")
	room := flag.String("room", "lobby", "room to join")
	name := flag.String("name", "", "name to chat under (required)")
	flag.Parse()
	if *name == "" {
		log.Fatal("-name is required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	s := &session{url: *url, room: *room, name: *name, out: os.Stdout, backoff: backoff}
	if err := s.run(ctx, lines); err != nil {
		log.Fatal(err)
	}
}
