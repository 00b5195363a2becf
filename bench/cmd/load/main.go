// Command load drives an echo server with one scenario and reports what it measured: one
// JSON line, then a human-readable line starting with "# ".
//
//	load -addr 127.0.0.1:PORT -pid PID -scenario echo -conns 64 -size 64 -duration 5s
//
// It speaks the client side of RFC 6455 itself on raw TCP and checks every echoed byte;
// -raw drops the handshake and framing, to measure the plain TCP floor server. With -pid,
// it reads the server's CPU time (and, for the idle scenario, its resident memory) from
// /proc. Scenarios:
//
//	echo          -conns connections each send a -size message and wait for its echo
//	echo-deflate  the same with permessage-deflate: JSON records, compressed, which
//	              the server must accept; it also reports the bytes on the wire
//	pipeline      the same as echo with -inflight messages in flight per connection,
//	              each message sent with a write call of its own
//	pipeline-batch  pipeline, with every message there is room for sent in one write
//	idle          -conns connections opened, one echo each, then the server's RSS
//	              growth per connection
//	upgrade       handshakes per second, -conns workers
//
// With -messages N, each connection (or upgrade worker) does -warmup-messages unmeasured
// operations, waits for the others, and then N measured ones; with -callgrind too, the
// server, run under valgrind --tool=callgrind, has its counters zeroed between the two
// and read after, before any connection closes, and the result gives its user-space
// instructions per operation. callgrind.sh runs every server that way.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/hybi/websocket/bench/internal/load"
)

func main() {
	var cfg load.Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server address, host:port")
	flag.IntVar(&cfg.PID, "pid", 0, "server process ID, for its CPU time and memory (0: not measured)")
	flag.StringVar(&cfg.Scenario, "scenario", "echo", "one of: "+strings.Join(load.Scenarios, ", "))
	flag.IntVar(&cfg.Conns, "conns", 64, "connections (echo, pipeline, idle) or workers (upgrade)")
	flag.IntVar(&cfg.Size, "size", 64, "payload bytes per message")
	flag.IntVar(&cfg.Inflight, "inflight", 16, "messages in flight per connection (pipeline, pipeline-batch)")
	flag.DurationVar(&cfg.Duration, "duration", 5e9, "measured time (echo, pipeline, upgrade)")
	flag.DurationVar(&cfg.Warmup, "warmup", 5e8, "time run before measuring")
	flag.DurationVar(&cfg.Settle, "settle", 1e9, "wait before reading the server's memory (idle)")
	flag.StringVar(&cfg.MemStats, "memstats", "", "idle: the file the server (echoserver -memstats FILE) writes its heap to on SIGUSR2; the result then has the heap per connection")
	flag.BoolVar(&cfg.Raw, "raw", false, "no handshake, no framing: for the plain TCP floor server")
	flag.IntVar(&cfg.Messages, "messages", 0, "if > 0, messages (or handshakes) per connection, all measured, instead of -duration")
	flag.DurationVar(&cfg.Pause, "pause", 0, "echo: wait this long after each echo before sending the next message")
	flag.BoolVar(&cfg.Text, "text", false, "send text messages instead of binary")
	flag.IntVar(&cfg.WarmupMessages, "warmup-messages", 0, "with -messages, unmeasured messages (or handshakes) per connection before them")
	callgrind := flag.Bool("callgrind", false, "count the instructions of the server -pid, run under valgrind --tool=callgrind, over the -messages (needs callgrind_control)")
	dump := flag.Bool("callgrind-dump", false, "with -callgrind, also dump the server's profile of the measured operations, for callgrind_annotate")
	flag.StringVar(&cfg.Label, "label", "", "name of the server, copied into the result")
	flag.StringVar(&cfg.Style, "style", "", `how the server handles a message, "stream" or "message", copied into the result`)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("load: ")

	if *callgrind {
		if cfg.PID == 0 || cfg.Messages <= 0 {
			log.Fatal("-callgrind needs -pid and -messages")
		}
		cg := load.Callgrind{PID: cfg.PID}
		if *dump {
			cg.Dump = fmt.Sprintf("%s-%s-%d", cfg.Label, cfg.Scenario, cfg.Size)
		}
		cfg.Counter = cg
	}
	res, err := load.Run(cfg)
	if err != nil {
		log.Fatalf("%s %s: %v", cfg.Label, cfg.Scenario, err)
	}
	line, err := json.Marshal(res)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n# %v\n", line, res)
	if res.Ops == 0 {
		log.Print("nothing completed in the measured time")
		os.Exit(1)
	}
}
