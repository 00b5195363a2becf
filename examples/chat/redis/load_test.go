package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/examples/chat/internal/chat"
)

// The load test's scenario. The defaults are CI's few seconds; the README gives the
// command of the full run.
var (
	loadClients = flag.Int("load.clients", 60, "clients of the load test, spread over 3 nodes")
	loadRooms   = flag.Int("load.rooms", 3, "rooms the load test's clients are spread over")
	loadEvery   = flag.Duration("load.every", 200*time.Millisecond, "how often each client of the load test sends a line")
	loadFor     = flag.Duration("load.for", time.Second, "how long the clients of the load test send")
	loadPace    = flag.Duration("load.pace", 0, "the nodes' -pace; 0 for their default, negative for none")
)

// nodeEnv names the Redis a node process serves from: the test binary run with it set
// is a chat node, not tests, so that its CPU time is its own.
const nodeEnv = "CHAT_TEST_NODE_REDIS"

// beatEnv, when set, is the Beat of the node process's timing.
const beatEnv = "CHAT_TEST_NODE_BEAT"

// paceEnv, when set, is the Pace of the node process's timing.
const paceEnv = "CHAT_TEST_NODE_PACE"

// profileEnv, when set, has each node process write a CPU profile to its value, a dot
// and the process's ID.
const profileEnv = "CHAT_TEST_NODE_CPUPROFILE"

// runNode serves the chat on a loopback port with rooms in the Redis at addr until
// SIGTERM, printing the port first.
func runNode(addr string) {
	log.SetOutput(io.Discard)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if path := os.Getenv(profileEnv); path != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	var tm timing
	tm.Beat, _ = time.ParseDuration(os.Getenv(beatEnv))
	tm.Pace, _ = time.ParseDuration(os.Getenv(paceEnv))
	if err := serve(ctx, l, &redis.Options{Addr: addr}, testConfig, tm); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// nodeProcess is a chat node in a process of its own.
type nodeProcess struct {
	url    string
	cmd    *exec.Cmd
	killed bool
}

// startNodeProcess starts a node process on the Redis at redisAddr, with env added to
// its environment, stopped with SIGTERM when the test ends.
func startNodeProcess(t *testing.T, redisAddr string, env ...string) *nodeProcess {
	t.Helper()
	n := &nodeProcess{}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), nodeEnv+"="+redisAddr), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if !n.killed {
			cmd.Process.Signal(syscall.SIGTERM)
			assert.NoError(t, cmd.Wait())
		}
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	n.url, n.cmd = "ws://"+strings.TrimSpace(addr)+"/ws?", cmd
	return n
}

// kill ends the process with SIGKILL, as a crash would: it tells nobody.
func (n *nodeProcess) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, n.cmd.Process.Kill())
	n.cmd.Wait() // says the process was killed
	n.killed = true
}

// cpuUse is the CPU time a process has used, in user space and in the kernel, and the
// system calls it made that read and write (sockets included).
type cpuUse struct {
	user, sys     time.Duration
	reads, writes int64
}

func (u cpuUse) total() time.Duration { return u.user + u.sys }

func (u cpuUse) minus(v cpuUse) cpuUse {
	return cpuUse{u.user - v.user, u.sys - v.sys, u.reads - v.reads, u.writes - v.writes}
}

// cpuTime returns the CPU time process pid has used, and its reads and writes, from
// /proc.
func cpuTime(t *testing.T, pid int) cpuUse {
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	require.NoError(t, err)
	var u cpuUse
	for _, l := range strings.Split(string(io), "\n") {
		if n, ok := strings.CutPrefix(l, "syscr: "); ok {
			u.reads, err = strconv.ParseInt(n, 10, 64)
			require.NoError(t, err)
		}
		if n, ok := strings.CutPrefix(l, "syscw: "); ok {
			u.writes, err = strconv.ParseInt(n, 10, 64)
			require.NoError(t, err)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// utime and stime are the 14th and 15th fields, counted in the kernel's 100 Hz
	// ticks; the command name before them is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	u.user, u.sys = time.Duration(utime)*10*time.Millisecond, time.Duration(stime)*10*time.Millisecond
	return u
}

// loadClient is a client of the load test: it keeps the IDs of the room's lines as they
// come, and how long each took from its sender.
type loadClient struct {
	conn *websocket.Conn
	room int
	node int
	sent atomic.Int64 // lines written

	got     atomic.Int64 // lines received
	arrived chan struct{}
	ids     []int64
	same    []time.Duration // latencies of lines sent through the same node
	cross   []time.Duration // and through another
	done    chan struct{}
	err     error
}

// TestLoad has clients on three node processes, spread over rooms, each send a line at
// a steady pace for a while: every member gets every line of its room once, in the one
// order of the room. It logs what it measured: deliveries a second, latency through the
// same node and through another, and the CPU time of the nodes and Redis per delivery.
func TestLoad(t *testing.T) {
	r := startRedis(t)
	var nodes []*nodeProcess
	for range 3 {
		nodes = append(nodes, startNodeProcess(t, r.addr(), paceEnv+"="+loadPace.String()))
	}
	ctx, cancel := context.WithTimeout(t.Context(), *loadFor+60*time.Second)
	defer cancel()

	clients := make([]*loadClient, *loadClients)
	for i := range clients {
		c := &loadClient{room: i % *loadRooms, node: (i / *loadRooms) % 3, arrived: make(chan struct{}, 1), done: make(chan struct{})}
		conn, _, err := websocket.Dial(ctx, nodes[c.node].url+fmt.Sprintf("room=r%d&name=c%d", c.room, i), nil)
		require.NoError(t, err)
		c.conn = conn
		t.Cleanup(func() {
			conn.CloseNow()
			<-c.done
		})
		go c.read()
		clients[i] = c
	}
	// Every member is in before the first line: each gets every line.
	for _, c := range clients {
		select {
		case <-c.arrived:
		case <-ctx.Done():
			t.Fatal("no welcome")
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer rdb.Close()
	require.NoError(t, rdb.ConfigResetStat(ctx).Err())
	var cpuBefore []cpuUse
	pids := []int{r.cmd.Process.Pid}
	for _, n := range nodes {
		pids = append(pids, n.cmd.Process.Pid)
	}
	for _, pid := range pids {
		cpuBefore = append(cpuBefore, cpuTime(t, pid))
	}
	start := time.Now()
	var senders sync.WaitGroup
	padding := strings.Repeat("x", 64)
	for _, c := range clients {
		senders.Go(func() {
			// A random start spreads the clients over the interval.
			tick := time.NewTimer(rand.N(*loadEvery))
			defer tick.Stop()
			for end := start.Add(*loadFor); ; {
				<-tick.C
				now := time.Now()
				if now.After(end) {
					return
				}
				line := fmt.Sprintf("%d %d %s", now.UnixNano(), c.node, padding)
				if c.conn.Write(ctx, websocket.MessageText, []byte(line)) != nil {
					return
				}
				c.sent.Add(1)
				tick.Reset(*loadEvery)
			}
		})
	}
	senders.Wait()

	want := make([]int64, *loadRooms)
	for _, c := range clients {
		want[c.room] += c.sent.Load()
	}
	for i, c := range clients {
		for c.got.Load() < want[c.room] {
			select {
			case <-c.arrived:
			case <-ctx.Done():
				t.Fatalf("client %d got %d lines of %d", i, c.got.Load(), want[c.room])
			}
		}
	}
	elapsed := time.Since(start)
	var cpu, redisCPU time.Duration
	uses := make([]cpuUse, len(pids))
	for i, pid := range pids {
		uses[i] = cpuTime(t, pid).minus(cpuBefore[i])
		cpu += uses[i].total()
		if i == 0 {
			redisCPU = uses[i].total()
		}
	}

	// Nothing more than was sent, nothing twice, one order per room.
	for _, c := range clients {
		c.conn.CloseNow()
		<-c.done
	}
	first := map[int][]int64{}
	var same, cross []time.Duration
	var delivered int64
	for i, c := range clients {
		require.Len(t, c.ids, int(want[c.room]), "client %d", i)
		if f, ok := first[c.room]; ok {
			require.Equal(t, f, c.ids, "client %d", i)
		} else {
			first[c.room] = c.ids
		}
		same, cross = append(same, c.same...), append(cross, c.cross...)
		delivered += int64(len(c.ids))
	}
	q := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[int(p*float64(len(d)-1))]
	}
	t.Logf("%d clients in %d rooms on 3 nodes (pace %v), a line every %v each, for %v", len(clients), *loadRooms, paceOf(*loadPace), *loadEvery, *loadFor)
	t.Logf("delivered %d lines in %v: %.0f a second", delivered, elapsed.Round(time.Millisecond), float64(delivered)/elapsed.Seconds())
	t.Logf("latency through the same node: p50 %v, p99 %v; through another: p50 %v, p99 %v",
		q(same, 0.5), q(same, 0.99), q(cross, 0.5), q(cross, 0.99))
	t.Logf("CPU of the nodes and Redis: %v (Redis %v), %.2f µs per delivered line (Redis %.2f)", cpu, redisCPU,
		float64(cpu.Microseconds())/float64(delivered), float64(redisCPU.Microseconds())/float64(delivered))
	perLine := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(delivered) }
	for i, u := range uses {
		who := "Redis"
		if i > 0 {
			who = fmt.Sprintf("node %d", i)
		}
		t.Logf("%s: user %v, system %v: %.2f + %.2f µs per delivered line; %.2f reads and %.2f writes", who, u.user, u.sys,
			perLine(u.user), perLine(u.sys), float64(u.reads)/float64(delivered), float64(u.writes)/float64(delivered))
	}
	// What Redis spent its time on while the clients sent, command by command (its own
	// time in each, not the reading and writing of the commands).
	stats, err := rdb.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	for _, l := range strings.Split(stats, "\n") {
		if strings.HasPrefix(l, "cmdstat_") {
			t.Logf("Redis %s", strings.TrimSpace(l))
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average at the end: %s", strings.TrimSpace(string(load)))
}

// paceOf returns the pace a node runs with, given its timing's.
func paceOf(d time.Duration) time.Duration {
	return max(newBroker(nil, 1, timing{Pace: d}).pace, 0)
}

// read records the lines c receives until its connection ends.
func (c *loadClient) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		now := time.Now()
		var ev chat.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			c.err = err
			return
		}
		switch ev.Type {
		case "welcome":
		case "message":
			var sent int64
			var node int
			if _, err := fmt.Sscanf(ev.Text, "%d %d", &sent, &node); err != nil {
				c.err = err
				return
			}
			c.ids = append(c.ids, ev.ID)
			if d := now.Sub(time.Unix(0, sent)); node == c.node {
				c.same = append(c.same, d)
			} else {
				c.cross = append(c.cross, d)
			}
			c.got.Add(1)
		default:
			continue
		}
		select {
		case c.arrived <- struct{}{}:
		default:
		}
	}
}
