// Package load is a WebSocket load generator that depends on none of the libraries it
// measures: it speaks the client side of RFC 6455 itself on raw TCP, and checks every
// byte that comes back.
//
// It runs one scenario against one server and reports throughput, latency, and the
// server's CPU time and memory, which it reads from /proc when given the server's PID.
package load

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Scenarios are the workloads Run knows.
//
//	echo          each of Conns connections sends a Size-byte message, waits for its
//	              echo, and repeats
//	echo-deflate  echo with permessage-deflate (RFC 7692): the messages are JSON records,
//	              compressed; the server must accept the extension
//	pipeline      like echo, with Inflight messages in flight on each connection, each
//	              message sent with a write call of its own
//	pipeline-batch  pipeline, with every message there is room for sent in one write
//	              call, as a client with messages queued sends them
//	idle          opens Conns connections, echoes one message on each, then measures
//	              the server's resident memory per open connection
//	upgrade       Conns workers each open a connection, complete the handshake and
//	              drop it, over and over
var Scenarios = []string{"echo", "echo-deflate", "pipeline", "pipeline-batch", "idle", "upgrade"}

// Config is one run.
type Config struct {
	Label    string        // names the server in the result, such as the library
	Style    string        // the style of the servers compared ("stream", "message"), copied into the result
	Addr     string        // host:port of the server
	PID      int           // the server's process, for CPU and memory; 0 skips them
	Scenario string        // one of Scenarios
	Conns    int           // connections (echo, pipeline, idle) or workers (upgrade)
	Size     int           // payload bytes per message
	Inflight int           // messages in flight per connection (pipeline, pipeline-batch)
	Duration time.Duration // measured time (echo, pipeline, upgrade)
	// Messages, if > 0, is how many operations each connection or worker does once every
	// one has done its WarmupMessages (echo, upgrade), instead of running for Duration:
	// all of them and nothing else are measured.
	Messages       int
	WarmupMessages int
	Warmup         time.Duration // time run but not measured before Duration
	// Pause is how long an echo connection waits after each echo before it sends the
	// next message: long enough, the server finds no next message when it has answered
	// one, and parks its reader every time.
	Pause time.Duration
	// Settle is the wait before the idle scenario reads the server's memory, and before
	// Counter is zeroed and read in the upgrade scenario, whose connections the server
	// may still be closing.
	Settle time.Duration
	// Counter, if set, counts the server's work over the measured operations; it needs
	// Messages.
	Counter Counter
	// MemStats, if set, is the file the server (echoserver -memstats) writes its live
	// heap to on SIGUSR2: the idle scenario then also reports the heap and goroutines
	// per connection.
	MemStats string
	Raw      bool // plain TCP: no handshake, no framing (for the floor server)
	Text     bool // send text messages instead of binary ones
}

// Result is what a run measured. Ops are round trips (echo, pipeline), connections
// opened (idle) or handshakes (upgrade).
type Result struct {
	Label         string  `json:"lib"`
	Scenario      string  `json:"scenario"`
	Conns         int     `json:"conns"`
	Size          int     `json:"size"`
	Inflight      int     `json:"inflight,omitempty"`
	Ops           int64   `json:"ops"`
	Seconds       float64 `json:"seconds"`
	OpsPerSec     float64 `json:"ops_per_s"`
	MBPerSec      float64 `json:"mb_per_s"` // payload echoed, one way, 10^6 bytes
	P50us         float64 `json:"p50_us"`
	P99us         float64 `json:"p99_us"`
	ServerCPUus   float64 `json:"server_cpu_us_per_op"` // -1 without a PID
	ServerCPUPct  float64 `json:"server_cpu_pct"`       // of one core, over the measured time
	LoadCPUPct    float64 `json:"load_cpu_pct"`         // the load generator's own, of one core
	RSSKiBPerConn float64 `json:"rss_kib_per_conn,omitempty"`
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	// The live Go heap and goroutines the idle connections added, per connection
	// (Config.MemStats); goroutine stacks are in the RSS, not in the heap.
	HeapKiBPerConn    float64 `json:"heap_kib_per_conn,omitempty"`
	StackKiBPerConn   float64 `json:"stack_kib_per_conn,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn,omitempty"`

	// The broadcast scenario (cmd/broadcast): Ops are the messages delivered of
	// Expected, Conns the receivers, Style the variant ("deflate", "1 % slow").
	Expected int64 `json:"expected,omitempty"`
	// PeakRSSKiB is the server's peak resident memory over its life (VmHWM).
	PeakRSSKiB int64 `json:"peak_rss_kib,omitempty"`
	// Slow receivers (the broadcast's slow runs): how many there were, how many the
	// server had closed (a close frame or the end of the stream) once they read what they
	// were sent, how many of those read a close frame with 1008, and when the server gave
	// up on the last of them, in milliseconds after the first broadcast (0 if it never
	// did).
	SlowReceivers int     `json:"slow_receivers,omitempty"`
	SlowClosed    int     `json:"slow_closed,omitempty"`
	Slow1008      int     `json:"slow_1008,omitempty"`
	SlowDropMs    float64 `json:"slow_drop_ms,omitempty"`

	// Bytes on the wire per round trip (echo scenarios): the message sent and its echo,
	// frame headers included.
	SentBytesPerOp float64 `json:"sent_bytes_per_op,omitempty"`
	EchoBytesPerOp float64 `json:"echo_bytes_per_op,omitempty"`
	// The server's Sec-WebSocket-Extensions response, if it had one.
	Extensions string `json:"extensions,omitempty"`

	// What the Counter counted over the measured operations, and per operation: the
	// server's user-space instructions, under callgrind.
	Instructions int64   `json:"instructions,omitempty"`
	InstrPerOp   float64 `json:"instr_per_op,omitempty"`
	// Style is that of the servers the run compares, as the caller named it ("stream"
	// or "message"); the report keeps results of different styles in different tables.
	Style string `json:"style,omitempty"`
	// Messages is a counted run's measured operations per connection or worker.
	Messages int `json:"messages,omitempty"`
	// PauseUs is Config.Pause, in microseconds.
	PauseUs float64 `json:"pause_us,omitempty"`
}

// Counter counts the work of the server between Zero and Count, as callgrind counts its
// instructions. A run calls Zero once every connection has done its warm-up operations
// and waits for its next one, and Count once every connection has done its measured
// operations, before any is closed.
type Counter interface {
	Zero() error
	Count() (int64, error)
}

// String is the human-readable line.
func (r Result) String() string {
	s := fmt.Sprintf("%-8s %-8s conns=%d size=%d", r.Label, r.Scenario, r.Conns, r.Size)
	if r.Inflight > 0 {
		s += fmt.Sprintf(" inflight=%d", r.Inflight)
	}
	s += fmt.Sprintf(": %.0f ops/s", r.OpsPerSec)
	if r.MBPerSec > 0 {
		s += fmt.Sprintf(", %.1f MB/s", r.MBPerSec)
	}
	s += fmt.Sprintf(", p50 %.0f µs, p99 %.0f µs", r.P50us, r.P99us)
	if r.ServerCPUus >= 0 {
		s += fmt.Sprintf(", server %.1f µs CPU/op (%.0f%% of a core)", r.ServerCPUus, r.ServerCPUPct)
	}
	if r.RSSAfterKiB > 0 {
		s += fmt.Sprintf(", RSS %d → %d KiB = %.1f KiB/conn", r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSKiBPerConn)
	}
	if r.GoroutinesPerConn > 0 || r.HeapKiBPerConn > 0 {
		s += fmt.Sprintf(" (heap %.2f KiB, stacks %.2f KiB, %.2f goroutines)", r.HeapKiBPerConn, r.StackKiBPerConn, r.GoroutinesPerConn)
	}
	if r.SentBytesPerOp > 0 {
		s += fmt.Sprintf(", wire %.0f B sent, %.0f B echoed per message", r.SentBytesPerOp, r.EchoBytesPerOp)
	}
	if r.Extensions != "" {
		s += fmt.Sprintf(", extensions %q", r.Extensions)
	}
	if r.Instructions > 0 {
		s += fmt.Sprintf(", server %.0f instructions/op", r.InstrPerOp)
	}
	return s + fmt.Sprintf("; load generator %.0f%% of a core", r.LoadCPUPct)
}

// Run runs the scenario cfg names and returns what it measured. Any failed validation,
// handshake or connection fails the run.
func Run(cfg Config) (Result, error) {
	if cfg.Conns <= 0 {
		return Result{}, errors.New("load: need at least one connection")
	}
	if cfg.Size < 0 {
		return Result{}, errors.New("load: negative size")
	}
	if cfg.Inflight <= 0 {
		cfg.Inflight = 1
	}
	res := Result{Label: cfg.Label, Style: cfg.Style, Scenario: cfg.Scenario, Conns: cfg.Conns, Size: cfg.Size, ServerCPUus: -1}
	var err error
	switch cfg.Scenario {
	case "echo", "echo-deflate":
		if cfg.Raw && cfg.Scenario == "echo-deflate" {
			return res, errors.New("load: echo-deflate needs WebSocket framing, not -raw")
		}
		cfg.Inflight = 1
		err = runTimed(cfg, &res, echoWorker)
	case "pipeline", "pipeline-batch":
		if cfg.WarmupMessages > 0 {
			return res, errors.New("load: warm-up messages apply to echo and upgrade, not pipelines")
		}
		res.Inflight = cfg.Inflight
		err = runTimed(cfg, &res, pipelineWorker)
	case "idle":
		err = runIdle(cfg, &res)
	case "upgrade":
		res.Size = 0 // no message is sent
		err = runTimed(cfg, &res, upgradeWorker)
	default:
		err = fmt.Errorf("load: unknown scenario %q (known: %v)", cfg.Scenario, Scenarios)
	}
	return res, err
}

// phases of a timed run. Workers count what completes while measuring.
const (
	warming int32 = iota
	measuring
	stopping
)

// run is the state a timed run shares with its workers.
type run struct {
	cfg   Config
	phase atomic.Int32
	ops   atomic.Int64
	// Bytes on the wire of the measured round trips (echo scenarios).
	sentBytes, echoBytes atomic.Int64

	// A counted run (cfg.Messages > 0) holds its workers at two gates: after their
	// warm-up until measuring starts, and after their measured operations until the
	// counter has been read. gates[id] says which worker id has passed; warm and
	// measured count those yet to pass; start and counted open the gates.
	gates          []gate
	warm, measured sync.WaitGroup
	start, counted chan struct{}

	mu         sync.Mutex
	latencies  []time.Duration
	extensions string
	err        error
}

// gate is the progress of one worker of a counted run.
type gate struct{ warm, measured sync.Once }

func (r *run) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.phase.Store(stopping)
}

// done reports whether a worker that has done k operations should stop.
func (r *run) done(k int) bool {
	return r.phase.Load() == stopping || (r.cfg.Messages > 0 && k >= r.cfg.WarmupMessages+r.cfg.Messages)
}

// warmed is called by worker id after k operations. In a counted run, once k is its
// warm-up, it waits until every worker is there and measuring starts; it reports
// whether to go on.
func (r *run) warmed(id, k int) bool {
	if r.cfg.Messages <= 0 || k != r.cfg.WarmupMessages {
		return r.phase.Load() != stopping
	}
	r.gates[id].warm.Do(r.warm.Done)
	<-r.start
	return r.phase.Load() != stopping
}

// finished is called by worker id after its last operation. In a counted run it waits
// until every worker is done and the counter has been read, so that no connection is
// closed while the server's work is counted.
func (r *run) finished(id int) {
	if r.cfg.Messages <= 0 {
		return
	}
	r.leave(id) // both gates: a worker stopped early never reached the first
	<-r.counted
}

// leave passes worker id through the gates it has not passed, when it returns early.
func (r *run) leave(id int) {
	if r.cfg.Messages > 0 {
		r.gates[id].warm.Do(r.warm.Done)
		r.gates[id].measured.Do(r.measured.Done)
	}
}

func (r *run) record(lat []time.Duration) {
	r.mu.Lock()
	r.latencies = append(r.latencies, lat...)
	r.mu.Unlock()
}

// worker is the loop of one connection (or handshake worker); id tells them apart. It
// returns once the phase is stopping, or at its first error.
type worker func(r *run, id int) error

// runTimed runs cfg.Conns workers through the warmup and the measured duration or, when
// cfg.Messages is set, through cfg.WarmupMessages operations each and then cfg.Messages
// measured ones, with cfg.Counter zeroed between and read after.
func runTimed(cfg Config, res *Result, w worker) error {
	counted := cfg.Messages > 0
	if cfg.Counter != nil && !counted {
		return errors.New("load: a counter needs a number of messages")
	}
	if cfg.WarmupMessages < 0 {
		return errors.New("load: negative warm-up messages")
	}
	r := &run{cfg: cfg, gates: make([]gate, cfg.Conns), start: make(chan struct{}), counted: make(chan struct{})}
	r.warm.Add(cfg.Conns)
	r.measured.Add(cfg.Conns)
	var wg sync.WaitGroup
	for id := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.leave(id)
			if err := w(r, id); err != nil {
				r.fail(fmt.Errorf("connection %d: %w", id, err))
			}
		}()
	}
	// release opens both gates, once, so that no worker is left waiting.
	var releaseOnce sync.Once
	release := func() {
		releaseOnce.Do(func() {
			select {
			case <-r.start:
			default:
				close(r.start)
			}
			close(r.counted)
		})
	}
	stop := func() {
		r.phase.Store(stopping)
		release()
		wg.Wait()
	}
	settle := func() {
		if cfg.Scenario == "upgrade" {
			time.Sleep(cfg.Settle)
		}
	}

	if counted {
		r.warm.Wait()
		if r.err == nil && cfg.Counter != nil {
			settle()
			if err := cfg.Counter.Zero(); err != nil {
				stop()
				return fmt.Errorf("load: zeroing the counter: %w", err)
			}
		}
	} else {
		time.Sleep(cfg.Warmup)
	}
	cpu0, err := readCPU(cfg.PID)
	if err != nil {
		stop()
		return err
	}
	self0, _ := readCPU(os.Getpid())
	t0 := time.Now()
	if counted {
		r.phase.CompareAndSwap(warming, measuring)
		close(r.start)
		r.measured.Wait()
	} else {
		r.phase.CompareAndSwap(warming, measuring)
		time.Sleep(cfg.Duration)
		r.phase.CompareAndSwap(measuring, stopping)
	}
	elapsed := time.Since(t0)
	cpu1, err := readCPU(cfg.PID)
	self1, _ := readCPU(os.Getpid())
	var count int64
	var countErr error
	if counted && r.err == nil && cfg.Counter != nil {
		settle()
		count, countErr = cfg.Counter.Count()
	}
	stop()
	if r.err != nil {
		return r.err // the first failure: the others may follow from it
	}
	if err != nil {
		return err
	}
	if countErr != nil {
		return fmt.Errorf("load: reading the counter: %w", countErr)
	}

	res.Ops = r.ops.Load()
	res.Seconds = elapsed.Seconds()
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	if cfg.Scenario != "upgrade" {
		res.MBPerSec = res.OpsPerSec * float64(cfg.Size) / 1e6
	}
	res.P50us, res.P99us = percentiles(r.latencies)
	res.LoadCPUPct = 100 * (self1 - self0).Seconds() / res.Seconds
	if res.Ops > 0 && r.sentBytes.Load() > 0 {
		res.SentBytesPerOp = float64(r.sentBytes.Load()) / float64(res.Ops)
		res.EchoBytesPerOp = float64(r.echoBytes.Load()) / float64(res.Ops)
	}
	res.Extensions = r.extensions
	if cfg.PID != 0 {
		res.ServerCPUPct = 100 * (cpu1 - cpu0).Seconds() / res.Seconds
		if res.Ops > 0 {
			res.ServerCPUus = float64((cpu1 - cpu0).Microseconds()) / float64(res.Ops)
		}
	}
	if counted {
		res.Messages = cfg.Messages
	}
	res.PauseUs = float64(cfg.Pause) / float64(time.Microsecond)
	if cfg.Counter != nil && res.Ops > 0 {
		res.Instructions = count
		res.InstrPerOp = float64(count) / float64(res.Ops)
	}
	return nil
}

// percentiles returns the median and the 99th percentile, in microseconds.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)]) / float64(time.Microsecond)
	}
	return at(0.50), at(0.99)
}

// seed gives connection id its own payloads.
func seed(id int) uint64 { return uint64(id)*0x9E3779B97F4A7C15 + 1 }

// options are those of connection id.
func (cfg Config) options(id int) options {
	return options{
		raw:     cfg.Raw,
		text:    cfg.Text,
		deflate: cfg.Scenario == "echo-deflate",
		size:    cfg.Size,
		seed:    seed(id),
	}
}

func echoWorker(r *run, id int) error {
	c, err := dial(r.cfg.Addr, r.cfg.options(id))
	if err != nil {
		return err
	}
	defer c.close()
	r.mu.Lock()
	if r.extensions == "" {
		r.extensions = c.extensions
	}
	r.mu.Unlock()
	var lat []time.Duration
	defer func() { r.record(lat) }()
	for k := 0; !r.done(k); k++ {
		if !r.warmed(id, k) {
			return nil
		}
		t0 := time.Now()
		sent, received := c.sentBytes, c.receivedBytes
		if err := c.roundTrip(k); err != nil {
			return err
		}
		// Count the round trip if it ended inside the measured time.
		if r.phase.Load() == measuring {
			lat = append(lat, time.Since(t0))
			r.ops.Add(1)
			r.sentBytes.Add(c.sentBytes - sent)
			r.echoBytes.Add(c.receivedBytes - received)
		}
		if r.cfg.Pause > 0 {
			time.Sleep(r.cfg.Pause)
		}
	}
	r.finished(id)
	return nil
}

// pipelineWorker keeps cfg.Inflight messages in flight: a writer sends while there is
// room (in pipeline-batch, all it has room for in one write), and the reader takes each
// echo and frees its slot.
func pipelineWorker(r *run, id int) error {
	c, err := dial(r.cfg.Addr, r.cfg.options(id))
	if err != nil {
		return err
	}
	defer c.close()
	if !r.warmed(id, 0) {
		return nil
	}
	// A slot is taken before a message is sent and freed once its echo is in; sent
	// carries the send times, in order, from the writer to the reader.
	slots := make(chan struct{}, r.cfg.Inflight)
	sent := make(chan time.Time, r.cfg.Inflight)
	failed := make(chan struct{})
	werr := make(chan error, 1)
	batch := r.cfg.Scenario == "pipeline-batch"
	go func() {
		defer close(sent)
		for k := 0; !r.done(k); {
			select {
			case slots <- struct{}{}:
			case <-failed:
				werr <- nil
				return
			}
			// In a batch, every slot free by now is filled by the same write.
			n := 1
		more:
			for batch && !r.done(k+n) {
				select {
				case slots <- struct{}{}:
					n++
				default:
					break more
				}
			}
			now := time.Now()
			for range n {
				sent <- now
			}
			if err := c.sendBatch(k, n); err != nil {
				werr <- err
				return
			}
			k += n
		}
		werr <- nil
	}()
	var lat []time.Duration
	defer func() { r.record(lat) }()
	for k := 0; ; k++ {
		t0, ok := <-sent
		if !ok {
			break
		}
		if err := c.receive(k); err != nil {
			close(failed)
			c.nc.Close() // ends a send in progress
			return err
		}
		<-slots
		if r.phase.Load() == measuring {
			lat = append(lat, time.Since(t0))
			r.ops.Add(1)
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	r.finished(id)
	return nil
}

// upgradeWorker opens connections, completes the handshake and drops them.
func upgradeWorker(r *run, id int) error {
	var lat []time.Duration
	defer func() { r.record(lat) }()
	for k := 0; !r.done(k); k++ {
		if !r.warmed(id, k) {
			return nil
		}
		t0 := time.Now()
		o := r.cfg.options(id)
		o.size, o.seed = 0, o.seed+uint64(k)
		c, err := dial(r.cfg.Addr, o)
		if err != nil {
			return err
		}
		c.abort()
		if r.phase.Load() == measuring {
			lat = append(lat, time.Since(t0))
			r.ops.Add(1)
		}
	}
	r.finished(id)
	return nil
}

// runIdle opens cfg.Conns connections, echoes one message on each, and reads the
// server's resident memory before and after: the difference per connection is what an
// idle connection costs. Ops are the connections, their rate how fast they opened.
func runIdle(cfg Config, res *Result) error {
	rss0, err := readRSS(cfg.PID)
	if err != nil {
		return err
	}
	cpu0, err := readCPU(cfg.PID)
	if err != nil {
		return err
	}
	self0, _ := readCPU(os.Getpid())
	var ms0 memStats
	if cfg.MemStats != "" {
		if ms0, err = readMemStats(cfg.PID, cfg.MemStats); err != nil {
			return err
		}
	}
	conns := make([]*client, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.abort()
			}
		}
	}()
	lat := make([]time.Duration, cfg.Conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range min(cfg.Conns, 32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id := int(next.Add(1)) - 1
				if id >= cfg.Conns {
					return
				}
				t0 := time.Now()
				c, err := dial(cfg.Addr, cfg.options(id))
				if err == nil {
					conns[id] = c
					err = c.roundTrip(0)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", id, err)
					}
					mu.Unlock()
					next.Store(int64(cfg.Conns)) // stop the others
					return
				}
				lat[id] = time.Since(t0)
				// The payloads are only needed for this one echo.
				c.pattern, c.masked, c.scratch = nil, nil, nil
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	cpu1, err := readCPU(cfg.PID)
	if err != nil {
		return err
	}
	self1, _ := readCPU(os.Getpid())
	time.Sleep(cfg.Settle)
	rss1, err := readRSS(cfg.PID)
	if err != nil {
		return err
	}
	if cfg.MemStats != "" {
		ms1, err := readMemStats(cfg.PID, cfg.MemStats)
		if err != nil {
			return err
		}
		n := float64(cfg.Conns)
		res.HeapKiBPerConn = (float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)) / 1024 / n
		res.StackKiBPerConn = (float64(ms1.StackInuse) - float64(ms0.StackInuse)) / 1024 / n
		res.GoroutinesPerConn = (float64(ms1.Goroutines) - float64(ms0.Goroutines)) / n
	}

	res.Ops = int64(cfg.Conns)
	res.Seconds = elapsed.Seconds()
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	res.P50us, res.P99us = percentiles(lat)
	res.LoadCPUPct = 100 * (self1 - self0).Seconds() / res.Seconds
	if cfg.PID != 0 {
		res.ServerCPUPct = 100 * (cpu1 - cpu0).Seconds() / res.Seconds
		res.ServerCPUus = float64((cpu1 - cpu0).Microseconds()) / float64(res.Ops)
		res.RSSBeforeKiB, res.RSSAfterKiB = rss0, rss1
		res.RSSKiBPerConn = float64(rss1-rss0) / float64(cfg.Conns)
	}
	return nil
}
