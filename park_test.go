package websocket

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

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

// TestParkMany parks thousands of Conns and wakes them in random order, each with a
// message that it echoes and parks again for, twice.
func TestParkMany(t *testing.T) {
	n := 4000 // both ends live in this process: 2 descriptors a connection
	if testing.Short() {
		n = 500
	}
	parkModes(t, func(t *testing.T, park func(*Conn, func(*Conn))) {
		servers, clients := make([]*Conn, n), make([]*Conn, n)
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
		for i := range n {
			accepted := make(chan net.Conn, 1)
			go func() {
				nc, _ := ln.Accept()
				accepted <- nc
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			clients[i] = newConn(nc, nil, true, "")
			servers[i] = newConn(<-accepted, nil, false, "")
			park(servers[i], echo)
		}
		defer func() {
			for i := range n {
				servers[i].CloseNow()
				clients[i].CloseNow()
			}
		}()
		for round := range 2 {
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for _, i := range rand.Perm(n) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					want := fmt.Sprintf("conn %d round %d", i, round)
					ctx := waitContext(t)
					if err := clients[i].Write(ctx, MessageText, []byte(want)); err != nil {
						errs <- err
						return
					}
					_, got, err := clients[i].Read(ctx)
					if err == nil && string(got) != want {
						err = errors.New("echo " + string(got) + ", want " + want)
					}
					if err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
		}
	})
}
