package websocket

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parkModes runs a test with the Conn parked in the poller (Linux), and on a goroutine,
// which other systems and connections without a socket of their own use.
func parkModes(t *testing.T, test func(t *testing.T, park func(*Conn, func(*Conn)))) {
	for _, mode := range []string{"poller", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			test(t, func(c *Conn, fn func(*Conn)) {
				if mode == "goroutine" && c.parking.Load() == nil {
					c.parking.Store(&parking{onGoroutine: true})
				}
				require.NoError(t, c.Park(fn))
			})
		})
	}
}

// tcpConns returns a server and a client Conn over loopback TCP.
func tcpConns(t *testing.T) (server, client *Conn) {
	a, b := tcpPair(t)
	server = newConn(a, nil, false, "")
	client = newConn(b, nil, true, "")
	t.Cleanup(func() {
		server.CloseNow()
		client.CloseNow()
	})
	return server, client
}

// woken is what a parked Conn's fn saw.
type woken struct {
	msg []byte
	err error
}

// readOnWake returns an fn that reads one message and reports it.
func readOnWake(out chan<- woken) func(*Conn) {
	return func(c *Conn) {
		_, msg, err := c.Read(context.Background())
		out <- woken{msg, err}
	}
}

func nextWoken(t *testing.T, ch <-chan woken) woken {
	t.Helper()
	select {
	case w := <-ch:
		return w
	case <-waitContext(t).Done():
		require.FailNow(t, "the parked Conn did not wake")
	}
	return woken{}
}

func TestParkWokenByData(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		server, client := tcpConns(t)
		got := make(chan woken, 1)
		for _, msg := range []string{"first", "second"} {
			park(server, readOnWake(got))
			require.NoError(t, client.Write(waitContext(t), MessageText, []byte(msg)))
			w := nextWoken(t, got)
			require.NoError(t, w.err)
			assert.Equal(t, msg, string(w.msg))
		}
	})
}

// TestParkAnswersPingsWithoutWaking pings a parked Conn: the pong comes back while fn has
// not been called, and fn is called once data arrives.
// TestConnSize holds a Conn to the 640-byte size class of Go's allocator: an idle Conn's
// memory is mostly this struct, and the next class up is 704 bytes, 10 % more for every
// parked connection. A field that pushes it over belongs in a part made when needed.
func TestConnSize(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(Conn{}), uintptr(640))
}

// TestParkHoldsNoBuffer checks that a Conn that has read a message gives its read
// buffer back when it parks: parked Conns are many, and the buffer is 8 KiB.
func TestParkHoldsNoBuffer(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		server, client := tcpConns(t)
		ctx := waitContext(t)
		require.NoError(t, client.Write(ctx, MessageText, []byte("first")))
		_, msg, err := server.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, "first", string(msg))
		got := make(chan woken, 1)
		park(server, readOnWake(got))
		require.True(t, server.readLock.tryLock()) // a wake takes it before the buffer
		assert.Nil(t, server.rb.buf, "a parked Conn keeps its read buffer")
		server.readLock.unlock()
		require.NoError(t, client.Write(ctx, MessageText, []byte("second")))
		w := nextWoken(t, got)
		require.NoError(t, w.err)
		assert.Equal(t, "second", string(w.msg))
	})
}

func TestParkAnswersPingsWithoutWaking(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		server, client := tcpConns(t)
		go func() {
			for {
				if _, _, err := client.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		got, entered := make(chan woken, 1), make(chan struct{}, 1)
		read := readOnWake(got)
		park(server, func(c *Conn) {
			entered <- struct{}{}
			read(c)
		})
		for range 3 {
			require.NoError(t, client.Ping(waitContext(t)))
		}
		select {
		case <-entered:
			require.FailNow(t, "fn was called for a ping")
		default:
		}
		require.NoError(t, client.Write(waitContext(t), MessageText, []byte("data")))
		w := nextWoken(t, got)
		require.NoError(t, w.err)
		assert.Equal(t, "data", string(w.msg))
	})
}

// TestParkPeerCloses closes the connection from the peer while the Conn is parked: the
// closing handshake completes, and fn's read reports the peer's close.
func TestParkPeerCloses(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		server, client := tcpConns(t)
		got := make(chan woken, 1)
		park(server, readOnWake(got))
		require.NoError(t, client.Close(StatusGoingAway, "bye"))
		w := nextWoken(t, got)
		assert.Equal(t, StatusGoingAway, CloseStatus(w.err), "%v", w.err)
	})
}

// TestParkPeerResets resets the connection while the Conn is parked.
func TestParkPeerResets(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		server, client := tcpConns(t)
		got := make(chan woken, 1)
		park(server, readOnWake(got))
		require.NoError(t, client.nc.(*net.TCPConn).SetLinger(0))
		client.nc.Close() // a reset
		w := nextWoken(t, got)
		assert.Error(t, w.err)
		assert.Equal(t, StatusCode(-1), CloseStatus(w.err))
	})
}

// TestParkWriteAndCloseWhileParked writes to a parked Conn and closes it from other
// goroutines: the message arrives, the closing handshake completes, and fn learns of it.
func TestParkWriteAndCloseWhileParked(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		server, client := tcpConns(t)
		got := make(chan woken, 1)
		park(server, readOnWake(got))
		reads := readAll(client)
		require.NoError(t, server.Write(waitContext(t), MessageText, []byte("while parked")))
		r := nextOut(t, reads)
		require.NoError(t, r.err)
		assert.Equal(t, "while parked", string(r.msg))

		require.NoError(t, server.Close(StatusNormalClosure, ""))
		assert.Equal(t, StatusNormalClosure, CloseStatus(nextOut(t, reads).err))
		w := nextWoken(t, got)
		assert.ErrorIs(t, w.err, net.ErrClosed)
	})
}

// TestParkMisuse parks a Conn twice, and one that is closed.
func TestParkMisuse(t *testing.T) {
	server, client := tcpConns(t)
	got := make(chan woken, 1)
	require.NoError(t, server.Park(readOnWake(got)))
	assert.ErrorIs(t, server.Park(readOnWake(got)), errParkBusy)
	require.NoError(t, client.Write(waitContext(t), MessageText, []byte("x")))
	require.NoError(t, nextWoken(t, got).err)
	require.NoError(t, server.CloseNow())
	assert.ErrorIs(t, server.Park(readOnWake(got)), net.ErrClosed)
}

// TestParkMany parks ten thousand Conns and wakes them in random order, each with a
// message that it echoes and parks again for, twice. The clients live in a child
// process (TestParkManyClients), so that this one holds one descriptor a connection:
// the hard limit on a process's descriptors is 20,000 on some machines.
func TestParkMany(t *testing.T) {
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		n := 10000
		if strings.HasSuffix(t.Name(), "/goroutine") && raceEnabled {
			n = 4000 // a goroutine a parked Conn; the race detector allows 8,128 at once
		}
		if testing.Short() {
			n = 500
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		var echo func(*Conn)
		echo = func(c *Conn) {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, msg) == nil {
				park(c, echo)
			}
		}
		servers := make([]*Conn, 0, n)
		accepted := make(chan error, 1)
		go func() {
			for len(servers) < n {
				nc, err := ln.Accept()
				if err != nil {
					accepted <- err
					return
				}
				c := newConn(nc, nil, false, "")
				servers = append(servers, c)
				park(c, echo)
			}
			accepted <- nil
		}()
		acceptDone := sync.OnceValue(func() error { return <-accepted })
		defer func() {
			ln.Close()
			acceptDone()
			for _, c := range servers {
				c.CloseNow()
			}
		}()

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestParkManyClients$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "PARK_ADDR="+ln.Addr().String(), "PARK_CONNS="+strconv.Itoa(n))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "the clients' process:\n%s", out)
		require.Contains(t, string(out), "--- PASS: TestParkManyClients", "the clients' process:\n%s", out)
		require.NoError(t, acceptDone())
		assert.Len(t, servers, n)
	})
}

// TestParkManyClients is TestParkMany's other end, which runs it in a child process:
// it opens the connections, 500 at a time, then twice sends a message on each, in
// random order from a pool of goroutines, and checks the echo.
func TestParkManyClients(t *testing.T) {
	addr := os.Getenv("PARK_ADDR")
	if addr == "" {
		t.Skip("TestParkMany runs it")
	}
	n, err := strconv.Atoi(os.Getenv("PARK_CONNS"))
	require.NoError(t, err)
	clients := make([]*Conn, n)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	for i := range clients {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		clients[i] = newConn(nc, nil, true, "")
		if i%500 == 499 || i == n-1 {
			// An echo on the newest connection shows that the server has accepted every
			// one so far: dialling on, faster than it accepts, would overflow its
			// listen queue, whose connections the kernel then drops after a minute.
			require.NoError(t, clients[i].Write(ctx, MessageText, []byte("opened")))
			_, got, err := clients[i].Read(ctx)
			require.NoError(t, err)
			require.Equal(t, "opened", string(got))
		}
	}
	for round := range 2 {
		order := make(chan int)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range 256 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range order {
					want := fmt.Sprintf("conn %d round %d", i, round)
					if err := clients[i].Write(ctx, MessageText, []byte(want)); err != nil {
						errs <- err
						continue
					}
					_, got, err := clients[i].Read(ctx)
					if err == nil && string(got) != want {
						err = errors.New("echo " + string(got) + ", want " + want)
					}
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		for _, i := range rand.Perm(n) {
			order <- i
		}
		close(order)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
}
