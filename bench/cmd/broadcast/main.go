// Command broadcast measures a server that sends every message to all its clients, on
// each library's broadcast path, side by side: N receivers on loopback, M messages of
// one size, the server's CPU time per delivered message (read from /proc), the
// deliveries per second and the latency from the broadcast call to the receiver.
//
//	go run ./cmd/broadcast [-libs ours-send,ours-prepared,gorilla,gws,gobwas,coder]
//	    [-receivers 1000] [-messages 200] [-size 128] [-slow 0] [-interval 0]
//	    [-warmup 2] [-callgrind [-profile PREFIX]]
//
// The servers run one at a time, each in a child process of its own (this command with
// -server), so that the receivers' work is not in its CPU time. The receivers speak
// RFC 6455 themselves and check every message: its number, in order, and every byte.
// The -warmup messages go to every receiver before the measured ones, uncounted.
// With -slow P, P percent of the receivers never read; a library whose broadcast loop
// waits for them stalls, and the run reports what the others received before -timeout.
//
// The paths: ours-send is NewPreparedMessage then Conn.Send to each Conn (a slow peer
// is closed with 1008 once MaxBuffered, 1 MiB, is behind); ours-prepared is
// Conn.WritePrepared in a loop; gorilla is its PreparedMessage; gws its Broadcaster;
// gobwas a frame compiled once with ws.CompileFrame and written to each net.Conn; coder
// Conn.Write in a loop. With -deflate, each compresses as it documents, without context
// takeover, at BestSpeed: gobwas, which has no default level (wsflate.CompressFrame uses
// 9), with a wsflate.Writer kept from message to message.
package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	gorilla "github.com/gorilla/websocket"
	ours "github.com/hybi/websocket"
	"github.com/hybi/websocket/bench/internal/load"
	"github.com/lxzan/gws"
)

func main() {
	server := flag.Bool("server", false, "run as the server (a child process)")
	libs := flag.String("libs", "ours-send,ours-prepared,gorilla,gws,gobwas,coder", "servers to measure")
	receivers := flag.Int("receivers", 1000, "receivers")
	messages := flag.Int("messages", 200, "messages broadcast")
	size := flag.Int("size", 128, "payload bytes, at least 16")
	slow := flag.Float64("slow", 0, "percent of receivers that never read")
	timeout := flag.Duration("timeout", 20*time.Second, "how long the receivers wait for the messages")
	interval := flag.Duration("interval", 0, "time between two broadcasts; 0 sends them back to back")
	lib := flag.String("lib", "", "the server's library (with -server)")
	flag.IntVar(&warmup, "warmup", 2, "messages broadcast before the measured ones, which every receiver reads")
	flag.BoolVar(&deflate, "deflate", false, "negotiate permessage-deflate without context takeover; the receivers inflate")
	flag.BoolVar(&underCallgrind, "callgrind", false, "run each server under valgrind --tool=callgrind and count its instructions per delivery")
	flag.StringVar(&profile, "profile", "", "with -callgrind, write the profile of each server's broadcasts to `PREFIX`.LIB")
	jsonOut := flag.Bool("json", false, "print each server's result as a JSON line for cmd/report (run.sh's broadcast scenarios), instead of a Markdown row")
	flag.Parse()
	if *size < 16 {
		log.Fatal("-size must be at least 16")
	}
	makeRecords(*size)
	if *server {
		serve(*lib, *receivers, *messages, *size, *interval)
		return
	}
	if *jsonOut {
		// no header
	} else if underCallgrind {
		fmt.Printf("| server | receivers | size | slow | delivered | instructions/delivery |\n|---|--:|--:|--:|--:|--:|\n")
	} else {
		fmt.Printf("| server | receivers | size | slow | delivered | deliveries/s | server CPU ns/delivery | p50 | p99 |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	}
	for _, l := range strings.Split(*libs, ",") {
		r, err := measure(l, *receivers, *messages, *size, *slow, *interval, *timeout)
		if err != nil {
			log.Fatalf("%s: %v", l, err)
		}
		if *jsonOut {
			b, err := json.Marshal(r.loadResult(*messages, *interval))
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s\n", b)
			continue
		}
		fmt.Println(r)
	}
}

// payload returns message i: its number, the time it was broadcast, then body(i, size).
func payload(i, size int, now time.Time) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, uint64(i))
	binary.BigEndian.PutUint64(p[8:], uint64(now.UnixNano()))
	copy(p[16:], body(i))
	return p
}

// bodies is how many different bodies the messages cycle through.
const bodies = 16

// records holds the bodies of the messages of -size bytes, one after the other: made
// from the flags, the same in both processes.
var records []byte

// makeRecords makes the bodies of messages of size bytes.
func makeRecords(size int) { records = load.Records(1, bodies*(size-16)) }

// body returns what follows message i's number and time stamp: JSON records, one a line
// (load.Records, what the echo-deflate scenario sends), which compress the way
// application messages do: 4.1 to 1 at BestSpeed at 16 KiB, 2.5 to 1 at 1 KiB, hardly at
// 128 B. Every library is sent the same bytes. (A byte ramp, sent before, compressed 29
// to 1 at 16 KiB, and cost deflate less than real messages do.)
func body(i int) []byte {
	n := len(records) / bodies
	k := i % bodies
	return records[k*n : (k+1)*n]
}

// The server.

// serve accepts receivers until there are n, waits for its start, broadcasts the messages,
// and then waits to be killed.
func serve(lib string, n, messages, size int, interval time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	b := newBroadcaster(lib)
	go http.Serve(ln, b.handler)
	fmt.Printf("addr=%s\n", ln.Addr())
	// Lines on stdin, not signals, which would upset callgrind: the first says every
	// receiver is connected, the second starts the broadcasts.
	stdin := bufio.NewReader(os.Stdin)
	stdin.ReadString('\n')
	// A receiver has its 101 answer before its handler keeps its connection.
	for joined.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	// The warm-up messages, which the receivers read before the measured ones: what a
	// library makes once and keeps for the messages after (a pooled compressor is 1.2 MB
	// at BestSpeed) is made now, as in a server that has been broadcasting for a while.
	for i := range warmup {
		b.broadcast(payload(i, size, time.Now()))
	}
	// The garbage of the handshakes is collected now, not during the broadcasts: a
	// collection that marks the heap of 10,000 connections costs some hundred million
	// instructions, whose share of a delivery would depend on whether it fell inside the
	// counted broadcasts or not.
	runtime.GC()
	fmt.Println("ready")
	stdin.ReadString('\n')
	begin := time.Now()
	began.Store(begin.UnixNano())
	for i := range messages {
		if interval > 0 {
			time.Sleep(time.Until(begin.Add(time.Duration(i) * interval)))
		}
		b.broadcast(payload(warmup+i, size, time.Now()))
	}
	select {}
}

// broadcaster is one library's server: its upgrade handler, which keeps every
// connection, and its broadcast.
type broadcaster struct {
	handler   http.HandlerFunc
	broadcast func(p []byte)
}

// registry keeps the connections of one server; a connection that failed is dropped.
type registry[C comparable] struct {
	mu    sync.Mutex
	conns []C
}

// joined counts the connections the server keeps.
var joined atomic.Int64

// began is when the server started its broadcasts, in Unix nanoseconds.
var began atomic.Int64

func (r *registry[C]) add(c C) {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	joined.Add(1)
}

func (r *registry[C]) each(send func(C) error) {
	r.mu.Lock()
	conns := r.conns
	r.mu.Unlock()
	var failed []C
	for _, c := range conns {
		if send(c) != nil {
			failed = append(failed, c)
		}
	}
	if len(failed) > 0 {
		// The measuring process reads this line: when the server gave up on a receiver.
		fmt.Printf("dropped=%d after=%d\n", len(failed), time.Now().UnixNano()-began.Load())
		r.mu.Lock()
		r.conns = slices.DeleteFunc(r.conns, func(c C) bool { return slices.Contains(failed, c) })
		r.mu.Unlock()
	}
}

type gwsHandler struct{ gws.BuiltinEventHandler }

func newBroadcaster(lib string) *broadcaster {
	ctx := context.Background()
	switch lib {
	case "ours-send", "ours-prepared":
		var reg registry[*ours.Conn]
		b := &broadcaster{handler: func(w http.ResponseWriter, r *http.Request) {
			opts := &ours.AcceptOptions{}
			if deflate {
				opts.Compression = ours.CompressionNoContextTakeover
			}
			c, err := ours.Accept(w, r, opts)
			if err != nil {
				return
			}
			reg.add(c)
			go func() {
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
		}}
		if lib == "ours-send" {
			b.broadcast = func(p []byte) {
				m, _ := ours.NewPreparedMessage(ours.MessageBinary, p)
				reg.each(func(c *ours.Conn) error { return c.Send(m) })
			}
		} else {
			b.broadcast = func(p []byte) {
				m, _ := ours.NewPreparedMessage(ours.MessageBinary, p)
				reg.each(func(c *ours.Conn) error { return c.WritePrepared(ctx, m) })
			}
		}
		return b
	case "gorilla":
		var reg registry[*gorilla.Conn]
		up := gorilla.Upgrader{WriteBufferPool: &sync.Pool{}, CheckOrigin: func(*http.Request) bool { return true }, EnableCompression: deflate}
		return &broadcaster{
			handler: func(w http.ResponseWriter, r *http.Request) {
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				reg.add(c)
				go func() {
					for {
						if _, _, err := c.NextReader(); err != nil {
							return
						}
					}
				}()
			},
			broadcast: func(p []byte) {
				m, _ := gorilla.NewPreparedMessage(gorilla.BinaryMessage, p)
				reg.each(func(c *gorilla.Conn) error { return c.WritePreparedMessage(m) })
			},
		}
	case "gws":
		var reg registry[*gws.Conn]
		up := gws.NewUpgrader(gwsHandler{}, &gws.ServerOption{PermessageDeflate: gws.PermessageDeflate{Enabled: deflate}})
		return &broadcaster{
			handler: func(w http.ResponseWriter, r *http.Request) {
				c, err := up.Upgrade(w, r)
				if err != nil {
					return
				}
				reg.add(c)
				go c.ReadLoop()
			},
			broadcast: func(p []byte) {
				b := gws.NewBroadcaster(gws.OpcodeBinary, p)
				reg.each(func(c *gws.Conn) error { return b.Broadcast(c) })
				b.Close()
			},
		}
	case "gobwas":
		var reg registry[net.Conn]
		var zbuf bytes.Buffer
		zw := wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
			f, _ := flate.NewWriter(w, flate.BestSpeed)
			return f
		})
		return &broadcaster{
			handler: func(w http.ResponseWriter, r *http.Request) {
				ext := wsflate.Extension{Parameters: wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}}
				up := ws.HTTPUpgrader{}
				if deflate {
					up.Negotiate = ext.Negotiate
				}
				c, _, _, err := up.Upgrade(r, w)
				if err != nil {
					return
				}
				reg.add(c)
				go io.Copy(io.Discard, c) // the receivers send nothing but their close
			},
			broadcast: func(p []byte) {
				f := ws.NewBinaryFrame(p)
				if deflate {
					// The frame's payload is compressed at BestSpeed, every other
					// library's level, by a compressor kept from one message to the
					// next: wsflate.CompressFrame makes a new one each time, at level 9.
					zbuf.Reset()
					zw.Reset(&zbuf)
					zw.Write(p)
					if err := zw.Flush(); err != nil {
						log.Fatal(err)
					}
					f = ws.NewBinaryFrame(zbuf.Bytes())
					f.Header, _ = wsflate.SetBit(f.Header)
				}
				frame, _ := ws.CompileFrame(f)
				reg.each(func(c net.Conn) error { _, err := c.Write(frame); return err })
			},
		}
	case "coder":
		var reg registry[*coder.Conn]
		return &broadcaster{
			handler: func(w http.ResponseWriter, r *http.Request) {
				opts := &coder.AcceptOptions{InsecureSkipVerify: true}
				if deflate {
					opts.CompressionMode = coder.CompressionNoContextTakeover
				}
				c, err := coder.Accept(w, r, opts)
				if err != nil {
					return
				}
				reg.add(c)
				c.CloseRead(ctx)
			},
			broadcast: func(p []byte) {
				reg.each(func(c *coder.Conn) error { return c.Write(ctx, coder.MessageBinary, p) })
			},
		}
	}
	log.Fatalf("unknown server %q", lib)
	return nil
}

// The measurement.

type result struct {
	lib                   string
	receivers, size       int
	slow                  float64
	delivered, expected   int
	elapsed               time.Duration
	cpu                   time.Duration
	p50, p99              time.Duration
	instructions          int64
	peakRSS               int64         // KiB, natively
	slowCount, slowClosed int           // slow receivers, and those the server closed
	slow1008              int           // of those, the ones that read a close frame with 1008
	lastDrop              time.Duration // when the server dropped the last connection it dropped
}

// loadResult is r as the load generator's results are, for cmd/report: Ops are the
// deliveries, Conns the receivers, Style the variant.
func (r result) loadResult(messages int, interval time.Duration) load.Result {
	var variant []string
	if deflate {
		variant = append(variant, "deflate")
	}
	if r.slow > 0 {
		variant = append(variant, fmt.Sprintf("%g %% slow", r.slow))
	}
	if interval > 0 {
		variant = append(variant, "one every "+interval.String())
	}
	n := float64(max(r.delivered, 1))
	res := load.Result{
		Label: r.lib, Scenario: "broadcast", Style: strings.Join(variant, ", "),
		Conns: r.receivers, Size: r.size, Messages: messages,
		Ops: int64(r.delivered), Expected: int64(r.expected), Seconds: r.elapsed.Seconds(),
		P50us: float64(r.p50.Microseconds()), P99us: float64(r.p99.Microseconds()),
		ServerCPUus: -1, PeakRSSKiB: r.peakRSS,
		SlowReceivers: r.slowCount, SlowClosed: r.slowClosed, Slow1008: r.slow1008, SlowDropMs: float64(r.lastDrop.Microseconds()) / 1000,
	}
	if r.elapsed > 0 {
		res.OpsPerSec = float64(r.delivered) / r.elapsed.Seconds()
	}
	if underCallgrind {
		res.Instructions = r.instructions
		res.InstrPerOp = float64(r.instructions) / n
	} else {
		res.ServerCPUus = float64(r.cpu.Nanoseconds()) / 1000 / n
		if r.elapsed > 0 {
			res.ServerCPUPct = 100 * r.cpu.Seconds() / r.elapsed.Seconds()
		}
	}
	return res
}

// underCallgrind runs the servers under callgrind (-callgrind): with GOMAXPROCS=1 and
// GODEBUG=asyncpreemptoff=1, as callgrind.sh does, its counters zeroed just before the
// broadcasts and read once the receivers have them all.
var underCallgrind bool

// warmup is how many messages are broadcast, and read, before the measured ones
// (-warmup).
var warmup int

// deflate has the servers compress (-deflate), each as it documents, without context
// takeover, which the receivers ask for.
var deflate bool

// profile, with -callgrind, names the profiles written of each server's broadcasts, for
// callgrind_annotate: PROFILE.LIB.
var profile string

func (r result) String() string {
	if underCallgrind {
		return fmt.Sprintf("| %s | %d | %d | %g %% | %d of %d | %.0f |", r.lib, r.receivers, r.size, r.slow,
			r.delivered, r.expected, float64(r.instructions)/float64(max(r.delivered, 1)))
	}
	per := float64(r.cpu.Nanoseconds()) / float64(max(r.delivered, 1))
	return fmt.Sprintf("| %s | %d | %d | %g %% | %d of %d | %.0f | %.0f | %v | %v |", r.lib, r.receivers, r.size, r.slow,
		r.delivered, r.expected, float64(r.delivered)/r.elapsed.Seconds(), per, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
}

func measure(lib string, n, messages, size int, slowPct float64, interval, timeout time.Duration) (result, error) {
	res := result{lib: lib, receivers: n, size: size, slow: slowPct}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	args := []string{self, "-server", "-lib", lib, "-receivers", strconv.Itoa(n), "-messages", strconv.Itoa(messages), "-size", strconv.Itoa(size), "-interval", interval.String(), "-deflate=" + strconv.FormatBool(deflate), "-warmup", strconv.Itoa(warmup)}
	if underCallgrind {
		out := "/dev/null"
		if profile != "" {
			out = profile + "." + lib
		}
		args = append([]string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	if underCallgrind {
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	outr := bufio.NewReader(out)
	line, err := outr.ReadString('\n')
	if err != nil {
		return res, err
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "addr="))
	var lastDrop atomic.Int64
	startDrops := func() {
		for {
			line, err := outr.ReadString('\n')
			if err != nil {
				return
			}
			if _, after, ok := strings.Cut(strings.TrimSpace(line), " after="); ok {
				if ns, err := strconv.ParseInt(after, 10, 64); err == nil {
					lastDrop.Store(ns)
				}
			}
		}
	}

	slow := int(float64(n) * slowPct / 100)
	// The receivers connect 16 at a time: one at a time, each handshake would wait for
	// a server that callgrind slows fifty times, and 10,000 of them take minutes.
	conns := make([]*receiver, n)
	defer func() {
		for _, r := range conns {
			if r != nil {
				r.nc.Close()
			}
		}
	}()
	var next atomic.Int64
	var dialErr error
	var dialOnce sync.Once
	var dwg sync.WaitGroup
	for range min(n, 16) {
		dwg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r, err := dial(addr)
				if err != nil {
					dialOnce.Do(func() { dialErr = err })
					next.Store(int64(n)) // stop the others
					return
				}
				r.slow = i < slow
				conns[i] = r
			}
		})
	}
	dwg.Wait()
	if dialErr != nil {
		return res, dialErr
	}
	res.expected = (n - slow) * messages
	io.WriteString(in, "joined\n")
	// Every receiver that reads reads the warm-up messages.
	var warmErr error
	var warmOnce sync.Once
	for _, r := range conns {
		if r.slow {
			continue
		}
		dwg.Go(func() {
			r.nc.SetReadDeadline(time.Now().Add(timeout))
			for k := range warmup {
				p, err := r.next()
				if err == nil {
					err = check(p, k, size)
				}
				if err != nil {
					warmOnce.Do(func() { warmErr = fmt.Errorf("warm-up message %d: %w", k, err) })
					return
				}
			}
			r.wire = 0
		})
	}
	dwg.Wait()
	if warmErr != nil {
		return res, warmErr
	}
	if line, err := outr.ReadString('\n'); err != nil || line != "ready\n" {
		return res, fmt.Errorf("server: %q instead of ready: %v", line, err)
	}
	// Later lines tell when the server dropped connections.
	go startDrops()

	var delivered atomic.Int64
	lats := make([][]time.Duration, n)
	var wg sync.WaitGroup
	deadline := time.Now().Add(timeout)
	before, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	cg := load.Callgrind{PID: cmd.Process.Pid}
	if profile != "" {
		cg.Dump = "broadcast"
	}
	if underCallgrind {
		if err := cg.Zero(); err != nil {
			return res, err
		}
	}
	begin := time.Now()
	io.WriteString(in, "go\n")
	var lastMu sync.Mutex
	last := begin
	for i, r := range conns {
		if r.slow {
			continue
		}
		wg.Go(func() {
			r.nc.SetReadDeadline(deadline)
			for k := range messages {
				p, err := r.next()
				if err != nil {
					return
				}
				if err := check(p, warmup+k, size); err != nil {
					log.Printf("%s: receiver %d: %v", lib, i, err)
					return
				}
				now := time.Now()
				lats[i] = append(lats[i], now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(p[8:])))))
				delivered.Add(1)
				if k == messages-1 {
					lastMu.Lock()
					if now.After(last) {
						last = now
					}
					lastMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if underCallgrind {
		if res.instructions, err = cg.Count(); err != nil {
			return res, err
		}
	}
	after, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.delivered = int(delivered.Load())
	var wire int64
	for _, r := range conns {
		wire += r.wire
	}
	// Whether and how well each library compressed: on stderr, leaving the row as it is.
	log.Printf("%s: %.0f bytes on the wire per delivery, headers included, for %d of payload", lib, float64(wire)/float64(max(res.delivered, 1)), size)
	res.elapsed = last.Sub(begin)
	if res.delivered < res.expected {
		res.elapsed = time.Since(begin) // the time out
	}
	res.cpu = after - before
	if !underCallgrind {
		if res.peakRSS, err = load.ReadPeakRSS(cmd.Process.Pid); err != nil {
			return res, err
		}
	}
	// What became of the slow receivers: each reads what it was sent, for up to 3 s,
	// until a close frame, which should carry 1008 where the library closes slow peers.
	res.slowCount = slow
	var closed, closed1008 atomic.Int64
	drainBy := time.Now().Add(3 * time.Second)
	for _, r := range conns[:slow] {
		dwg.Go(func() {
			r.nc.SetReadDeadline(drainBy)
			code, err := r.drain()
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				closed.Add(1)
			}
			if err == nil && code == 1008 {
				closed1008.Add(1)
			}
		})
	}
	dwg.Wait()
	res.slow1008 = int(closed1008.Load())
	res.slowClosed = int(closed.Load())
	res.lastDrop = time.Duration(lastDrop.Load())
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) > 0 {
		res.p50, res.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return res, nil
}

// cpuTime returns the user and system time a process has used, from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name, which ends with the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// check checks message k's bytes.
func check(p []byte, k, size int) error {
	if len(p) != size {
		return fmt.Errorf("message %d: %d bytes, want %d", k, len(p), size)
	}
	if got := int(binary.BigEndian.Uint64(p)); got != k {
		return fmt.Errorf("message %d instead of %d", got, k)
	}
	if !bytes.Equal(p[16:], body(k)) {
		return fmt.Errorf("message %d: its body differs", k)
	}
	return nil
}

// receiver is a client that reads unmasked binary messages of one frame.
type receiver struct {
	nc   net.Conn
	br   *bufio.Reader
	slow bool
	buf  []byte
	zbuf []byte        // a compressed message, whole
	zr   io.ReadCloser // inflates it
	zsrc bytes.Reader
	wire int64 // bytes of the data frames read, headers included
}

func dial(addr string) (*receiver, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	rand.Read(k[:])
	ext := ""
	if deflate {
		ext = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
	}
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
		addr, base64.StdEncoding.EncodeToString(k[:]), ext)
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	if deflate && !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		nc.Close()
		return nil, errors.New("the server did not agree to permessage-deflate")
	}
	return &receiver{nc: nc, br: br}, nil
}

var errFrame = errors.New("not an unmasked binary message")

// drain reads and drops frames up to a close frame, whose status code it returns.
func (r *receiver) drain() (int, error) {
	var h [10]byte
	for {
		if _, err := io.ReadFull(r.br, h[:2]); err != nil {
			return 0, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(r.br, h[2:4]); err != nil {
				return 0, err
			}
			n = uint64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			if _, err := io.ReadFull(r.br, h[2:10]); err != nil {
				return 0, err
			}
			n = binary.BigEndian.Uint64(h[2:10])
		}
		if h[0]&0x0f == 8 { // RFC 6455 §5.5.1: a close frame, its status code first
			p := make([]byte, n)
			if _, err := io.ReadFull(r.br, p); err != nil {
				return 0, err
			}
			if n < 2 {
				return 0, nil
			}
			return int(binary.BigEndian.Uint16(p)), nil
		}
		if _, err := r.br.Discard(int(n)); err != nil {
			return 0, err
		}
	}
}

// next reads the next message, a binary one, inflating it if it is compressed.
func (r *receiver) next() ([]byte, error) {
	first, compressed := true, false
	r.zbuf = r.zbuf[:0]
	for {
		h0, p, err := r.frame(first)
		if err != nil {
			return nil, err
		}
		if first {
			compressed = h0&0x40 != 0
		}
		first = false
		if !compressed && h0&0x80 != 0 {
			return p, nil
		}
		r.zbuf = append(r.zbuf, p...)
		if h0&0x80 != 0 {
			break
		}
	}
	if !compressed {
		return r.zbuf, nil
	}
	// RFC 7692 §7.2.2: put back the end of the flush, then an empty final block.
	r.zbuf = append(r.zbuf, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)
	r.zsrc.Reset(r.zbuf)
	if r.zr == nil {
		r.zr = flate.NewReader(&r.zsrc)
	} else if err := r.zr.(flate.Resetter).Reset(&r.zsrc, nil); err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(r.buf[:0])
	if _, err := out.ReadFrom(r.zr); err != nil {
		return nil, err
	}
	r.buf = out.Bytes()
	return r.buf, nil
}

// frame reads one frame: binary if first, else a continuation, unmasked. It returns the
// first header byte and the payload, valid until the next call.
func (r *receiver) frame(first bool) (byte, []byte, error) {
	var h [10]byte
	if _, err := io.ReadFull(r.br, h[:2]); err != nil {
		return 0, nil, err
	}
	if op := h[0] & 0x0f; (first && op != 2) || (!first && op != 0) || h[1]&0x80 != 0 {
		return 0, nil, errFrame
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r.br, h[2:4]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(r.br, h[2:10]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if uint64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	p := r.buf[:n]
	_, err := io.ReadFull(r.br, p)
	r.wire += int64(len(p)) + 2
	if n >= 126 {
		r.wire += 2
		if n > 0xffff {
			r.wire += 6
		}
	}
	return h[0], p, err
}
