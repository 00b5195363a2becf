// Command redis serves the chat of examples/chat with its rooms in Redis, so that any
// number of these processes share them: a line typed on one node reaches every member
// of the room on every node, in the one order of the room's stream; history, the
// numbering pages resume from, presence and the gap notice are Redis's, so a page whose
// node goes away reconnects to any other and gets exactly what it missed.
//
//	cd examples/chat/redis
//	go run . -addr 127.0.0.1:8081 -redis redis://127.0.0.1:6379/0
//
// The page, the events and the limits are those of examples/chat. One more event tells
// the members when Redis goes out of reach and when it is back:
//
//	{"type":"notice","text":"…"}
//
// Meanwhile the node keeps its connections and tries Redis again with backoff; lines
// sent then are refused with a notice. If Redis comes back without the room (it kept no
// data), the room starts another life and its members are told of a gap when they
// reconnect.
//
// A node reads the rooms from Redis at most once every -pace (100 ms by default),
// following the ticks of the clock, which every node shares: under load, each member's
// lines of that time go out together, in one write, and the lines a node's clients send
// meanwhile are appended at the tick, all together, in time for every node's read. That
// saves most of the CPU of the nodes and Redis for up to a pace of latency, and a lag
// after the tick (10 ms, and a share of the pace drawn for each node, up to a quarter
// of it, so that the nodes do not all write at once); a line after a quiet spell goes
// out at once. The nodes' clocks should agree to within a few milliseconds (NTP does):
// between a node whose clock is further off and the others, lines take up to a pace
// longer. A node that falls further behind than the history reaches tells its members
// of the gap.
//
// Each node says every second that it is alive. When one dies without a word (killed,
// or its machine gone), another finds it within about four seconds and has its members
// leave their rooms, once; their pages reconnect to a node that lives.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hybi/websocket/examples/chat/internal/chat"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	url := flag.String("redis", "redis://127.0.0.1:6379/0", "the Redis every node shares")
	history := flag.Int("history", chat.Defaults.History, "chat lines each room keeps for newcomers and for pages that reconnect (and as many joins and leaves)")
	pace := flag.Duration("pace", defaultPace, "the least time between two reads of the rooms from Redis: lines that come meanwhile go out together, which under load costs them up to this much latency and saves CPU; 0 for none")
	flag.Parse()
	if *history < 0 {
		log.Fatal("-history must not be negative")
	}
	opts, err := redis.ParseURL(*url)
	if err != nil {
		log.Fatal(err)
	}
	cfg := chat.Defaults
	cfg.History = *history

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("open http://%s/ in two browser windows\n", l.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tm := timing{Pace: *pace}
	if *pace == 0 {
		tm.Pace = -1 // none, where the zero timing has the default
	}
	if err := serve(ctx, l, opts, cfg, tm); err != nil {
		log.Fatal(err)
	}
}

// serve serves the chat on l with rooms in the Redis of opts until ctx ends.
func serve(ctx context.Context, l net.Listener, opts *redis.Options, cfg chat.Config, tm timing) error {
	// The broker tries Redis again with a backoff of its own, and tells the clients
	// meanwhile: a command need not wait through the client's dial retries.
	opts.DialerRetries = 1
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	b := newBroker(rdb, cfg.History, tm)
	readCtx, stopReading := context.WithCancel(context.Background())
	b.sayAlive(readCtx) // before the first member joins: should the node die, it is found
	var wg sync.WaitGroup
	wg.Go(func() { b.run(readCtx) })
	wg.Go(func() { b.keepAlive(readCtx) })
	err := chat.Serve(ctx, l, chat.NewHub(cfg, b))
	stopReading()
	b.wake(context.Background()) // out of its XREAD, to find it must stop
	wg.Wait()
	// Every member has left: no node need look for them.
	goneCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.sayGone(goneCtx)
	return err
}
