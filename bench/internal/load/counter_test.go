package load

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ours "github.com/hybi/websocket"
)

// countingServer counts what the server side of a run has seen: the bytes it echoed
// (raw echo) or the handshakes it was asked for (upgrade), and the connections it has
// open.
type countingServer struct {
	addr       string
	bytes      atomic.Int64
	handshakes atomic.Int64
	open       atomic.Int64
}

// rawEchoServer echoes bytes on plain TCP, counting each byte before it echoes it.
func rawEchoServer(t *testing.T) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &countingServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.open.Add(1)
			wg.Go(func() {
				defer s.open.Add(-1)
				defer nc.Close()
				buf := make([]byte, 4096)
				for {
					n, err := nc.Read(buf)
					s.bytes.Add(int64(n))
					if n > 0 {
						if _, err := nc.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return s
}

// handshakeServer counts each opening handshake before it answers it.
func handshakeServer(t *testing.T) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &countingServer{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handshakes.Add(1)
		c, err := ours.Accept(w, r, nil)
		if err == nil {
			c.CloseNow()
		}
	})}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

// fakeCounter counts what the server has seen, as callgrind counts its instructions,
// and records what it saw when zeroed and read.
type fakeCounter struct {
	seen           func() int64
	open           func() int64
	zeroes, counts int
	at0            int64
	zeroSeen       int64
	countSeen      int64
	openAtCount    int64
	zeroErr        error
}

func (f *fakeCounter) Zero() error {
	f.zeroes++
	f.zeroSeen = f.seen()
	f.at0 = f.zeroSeen
	return f.zeroErr
}

func (f *fakeCounter) Count() (int64, error) {
	f.counts++
	f.countSeen = f.seen()
	f.openAtCount = f.open()
	return f.countSeen - f.at0, nil
}

// TestRunCounted checks that a counter is zeroed once every connection has done its
// warm-up, and read once all have done their measured operations and before any has
// closed, so that it counts the measured operations and nothing else.
func TestRunCounted(t *testing.T) {
	const conns, warmup, messages, size = 3, 4, 5, 16
	t.Run("echo", func(t *testing.T) {
		s := rawEchoServer(t)
		f := &fakeCounter{
			seen: func() int64 { return s.bytes.Load() / size },
			open: s.open.Load,
		}
		res, err := Run(Config{Addr: s.addr, Scenario: "echo", Raw: true, Conns: conns, Size: size,
			Messages: messages, WarmupMessages: warmup, Counter: f})
		require.NoError(t, err)
		assert.Equal(t, 1, f.zeroes)
		assert.Equal(t, 1, f.counts)
		assert.EqualValues(t, conns*warmup, f.zeroSeen, "messages echoed when zeroed")
		assert.EqualValues(t, conns*(warmup+messages), f.countSeen, "messages echoed when read")
		assert.EqualValues(t, conns, f.openAtCount, "connections open when read")
		assert.EqualValues(t, conns*messages, res.Ops)
		assert.EqualValues(t, conns*messages, res.Instructions)
		assert.InDelta(t, 1.0, res.InstrPerOp, 1e-9)
		assert.Equal(t, messages, res.Messages)
	})
	t.Run("upgrade", func(t *testing.T) {
		s := handshakeServer(t)
		f := &fakeCounter{seen: s.handshakes.Load, open: func() int64 { return 0 }}
		res, err := Run(Config{Addr: s.addr, Scenario: "upgrade", Conns: conns,
			Messages: messages, WarmupMessages: warmup, Counter: f})
		require.NoError(t, err)
		assert.EqualValues(t, conns*warmup, f.zeroSeen, "handshakes when zeroed")
		assert.EqualValues(t, conns*(warmup+messages), f.countSeen, "handshakes when read")
		assert.EqualValues(t, conns*messages, res.Ops)
		assert.InDelta(t, 1.0, res.InstrPerOp, 1e-9)
	})
}

func TestRunCountedFails(t *testing.T) {
	s := rawEchoServer(t)
	zeroErr := errors.New("no callgrind here")
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"counter without messages", Config{Scenario: "echo", Conns: 2, Size: 8, Counter: &fakeCounter{}}, nil},
		{"negative warm-up", Config{Scenario: "echo", Conns: 2, Size: 8, Messages: 2, WarmupMessages: -1}, nil},
		{"warm-up in a pipeline", Config{Scenario: "pipeline", Conns: 2, Size: 8, Messages: 2, WarmupMessages: 1}, nil},
		{"zero fails", Config{Scenario: "echo", Conns: 2, Size: 8, Messages: 2, WarmupMessages: 1,
			Counter: &fakeCounter{seen: s.bytes.Load, open: s.open.Load, zeroErr: zeroErr}}, zeroErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Addr, tc.cfg.Raw = s.addr, true
			_, err := Run(tc.cfg)
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

// TestRunCountedServerGone checks that a run whose connections fail during the warm-up
// returns the failure instead of waiting at its gates.
func TestRunCountedServerGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		// Answers the first connection's first message, then closes every connection.
		first := true
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if first {
				first = false
				buf := make([]byte, 8)
				if _, err := io.ReadFull(nc, buf); err == nil {
					nc.Write(buf)
				}
			}
			nc.Close()
		}
	}()
	f := &fakeCounter{seen: func() int64 { return 0 }, open: func() int64 { return 0 }}
	_, err = Run(Config{Addr: ln.Addr().String(), Scenario: "echo", Raw: true, Conns: 3, Size: 8,
		Messages: 5, WarmupMessages: 2, Counter: f})
	require.Error(t, err)
	assert.Zero(t, f.zeroes, "a failed warm-up zeroes nothing")
}

func TestParseEventTotals(t *testing.T) {
	out := []byte(`PID 5789: ./echoserver -lib floor

  Totals:        Ir 
   Th 1           0 
   Th 2     190,295 
   Th 6  25,616,739 
   Th10   1,000,001 
   Th11           2 

`)
	n, err := parseEventTotals(out)
	require.NoError(t, err)
	assert.EqualValues(t, 190_295+25_616_739+1_000_001+2, n)

	for _, bad := range []string{"", "PID 1: x\n  Totals: Ir\n", "   Th 1  12x4\n"} {
		_, err := parseEventTotals([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

// TestCallgrind checks the commands the counter gives callgrind_control, with a stand-in
// for it that logs its arguments and prints what callgrind_control prints.
func TestCallgrind(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	control := filepath.Join(dir, "callgrind_control")
	script := `#!/bin/sh
echo "$@" >>` + log + `
case $1 in
-e) printf 'PID 7: ./echoserver\n\n  Totals:  Ir \n   Th 1  1,000 \n   Th12     20 \n' ;;
-z) echo "  OK." ;;
--dump=*) echo "  OK." ;;
*) echo "unexpected $1" >&2; exit 1 ;;
esac
`
	require.NoError(t, os.WriteFile(control, []byte(script), 0o755))

	for _, tc := range []struct {
		dump string
		want string
	}{
		{"", "-z 7\n-e Ir 7\n"},
		{"ours-echo-64", "-z 7\n-e Ir 7\n--dump=ours-echo-64 7\n"},
	} {
		os.Remove(log)
		c := Callgrind{PID: 7, Control: control, Dump: tc.dump}
		require.NoError(t, c.Zero())
		n, err := c.Count()
		require.NoError(t, err)
		assert.EqualValues(t, 1020, n)
		got, err := os.ReadFile(log)
		require.NoError(t, err)
		assert.Equal(t, tc.want, string(got), "dump %q", tc.dump)
	}

	_, err := Callgrind{PID: 7, Control: filepath.Join(dir, "missing")}.Count()
	assert.Error(t, err)
}
