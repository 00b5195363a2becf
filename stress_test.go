package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentWritersStress has many goroutines write messages over TCP at once, with
// Write and Writer, compressed and not, under contexts long and short, while another
// pings and the client reads its pongs. The receiving Conn fails on any frame out of
// order (a message begun inside another is a protocol error), and each message says who
// wrote it and which it is, so a lost, repeated, reordered or corrupted message is caught.
// Every message whose write returned nil arrives, unless a cut closed the Conn first.
func TestConcurrentWritersStress(t *testing.T) {
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for round := range rounds {
		compress := round%2 == 1
		t.Run(fmt.Sprintf("round=%d/compress=%v", round, compress), func(t *testing.T) {
			stressRound(t, uint64(round), compress)
		})
	}
}

const (
	stressWriters  = 12
	stressMessages = 40
)

// stressPayload returns message seq of writer id: its identity, then bytes that follow
// from it.
func stressPayload(id, seq, n int) []byte {
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint32(b, uint32(id))
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	for i := range n {
		b[8+i] = byte(id*31 + seq*7 + i)
	}
	return b
}

func stressRound(t *testing.T, seed uint64, compress bool) {
	a, b := tcpPair(t)
	server, client := conns(t, a, b, nil)
	if compress {
		params := deflateParams{peerNoContext: true, peerWindowBits: 15, windowBits: 15}
		server.useDeflate(params)
		client.useDeflate(params)
	}

	// The receiver checks each message as it comes.
	type received struct {
		seqs []int
		err  error
	}
	got := make(chan received, 1)
	go func() {
		seqs := make([][]int, stressWriters)
		for {
			_, msg, err := server.Read(context.Background())
			if err != nil {
				flat := make([]int, 0)
				for id, s := range seqs {
					for _, q := range s {
						flat = append(flat, id*1000+q)
					}
				}
				got <- received{flat, err}
				return
			}
			if len(msg) < 8 {
				got <- received{nil, fmt.Errorf("message of %d bytes", len(msg))}
				server.CloseNow()
				return
			}
			id, seq := int(binary.BigEndian.Uint32(msg)), int(binary.BigEndian.Uint32(msg[4:]))
			if id >= stressWriters || string(msg) != string(stressPayload(id, seq, len(msg)-8)) {
				got <- received{nil, fmt.Errorf("corrupted message: writer %d, seq %d, %d bytes", id, seq, len(msg))}
				server.CloseNow()
				return
			}
			if s := seqs[id]; len(s) > 0 && s[len(s)-1] >= seq {
				got <- received{nil, fmt.Errorf("writer %d: message %d after %d", id, seq, s[len(s)-1])}
				server.CloseNow()
				return
			}
			seqs[id] = append(seqs[id], seq)
		}
	}()

	// The client reads too, so that pongs reach its pings.
	clientRead := make(chan struct{})
	go func() {
		defer close(clientRead)
		for {
			if _, _, err := client.Read(context.Background()); err != nil {
				return
			}
		}
	}()

	var mu sync.Mutex
	var sent []int // messages whose write returned nil
	var writers sync.WaitGroup
	for id := range stressWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			for seq := range stressMessages {
				n := rng.IntN(64)
				if rng.IntN(3) == 0 {
					n = rng.IntN(40000)
				}
				p := stressPayload(id, seq, n)
				ctx, cancel := context.WithCancel(context.Background())
				switch rng.IntN(8) {
				case 0:
					cancel()
				case 1:
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(500))*time.Microsecond)
				}
				var err error
				if rng.IntN(2) == 0 {
					err = client.Write(ctx, MessageBinary, p)
				} else {
					err = writeInPieces(ctx, client, p, rng)
				}
				cancel()
				if err == nil {
					mu.Lock()
					sent = append(sent, id*1000+seq)
					mu.Unlock()
				} else if errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
			err := client.Ping(ctx)
			cancel()
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	writers.Wait()
	close(stop)
	<-pinged

	cut := client.isClosed()
	if !cut {
		require.NoError(t, client.Close(StatusNormalClosure, "done"))
	}
	var r received
	select {
	case r = <-got:
	case <-waitContext(t).Done():
		require.FailNow(t, "the receiver did not end")
	}
	<-clientRead
	mu.Lock()
	defer mu.Unlock()
	t.Logf("written %d, received %d, closed by a cut: %v", len(sent), len(r.seqs), cut)
	assert.Zero(t, protocolCode(r.err), "the receiver saw a protocol violation: %v", r.err)
	if cut {
		// What arrived was written; what was written may have been lost with the
		// connection.
		assert.Subset(t, sent, r.seqs)
		return
	}
	assert.Equal(t, StatusNormalClosure, CloseStatus(r.err), "%v", r.err)
	assert.ElementsMatch(t, sent, r.seqs, "messages written are not those received")
}

// writeInPieces sends p through a Writer, in pieces of random sizes.
func writeInPieces(ctx context.Context, c *Conn, p []byte, rng *rand.Rand) error {
	w, err := c.Writer(ctx, MessageBinary)
	if err != nil {
		return err
	}
	for len(p) > 0 && err == nil {
		n := min(len(p), 1+rng.IntN(6000))
		_, err = w.Write(p[:n])
		p = p[n:]
	}
	return errors.Join(err, w.Close())
}
