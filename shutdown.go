package websocket

import (
	"context"
	"sync"
)

// Group is a set of connections a server accepted, to be closed together when it shuts
// down: http.Server.Shutdown knows nothing of the connections its handlers took over.
// Accept adds a Conn to the Group named in AcceptOptions.Group, and the Conn leaves it
// when it closes, however it closes. The zero value is an empty Group ready to use; a
// Group must not be copied after first use. It is safe for concurrent use.
//
// Tracking a Conn costs an entry in a map (about 20 bytes), no goroutine and no timer.
type Group struct {
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	shutting bool          // Shutdown was called: Conns accepted from now on go away at once
	empty    chan struct{} // made by Shutdown, closed when the last Conn leaves
}

// goingAwayReason is the reason of the close frames Shutdown sends.
const goingAwayReason = "server shutting down"

// shutdownWorkers bounds the goroutines Shutdown runs at once: enough that a few peers
// slow to take a close frame do not hold up the others, few enough to cost nothing much
// beside thousands of connections.
const shutdownWorkers = 16

// add puts c in g, which may be nil. Once g is shutting down, c is sent its close frame
// at once.
func (g *Group) add(c *Conn) {
	if g == nil {
		return
	}
	c.group = g
	g.mu.Lock()
	if g.conns == nil {
		g.conns = make(map[*Conn]struct{})
	}
	g.conns[c] = struct{}{}
	shutting := g.shutting
	g.mu.Unlock()
	if shutting {
		c.goAway()
	}
}

// remove takes c out of g, which may be nil. The Conn calls it as it closes.
func (g *Group) remove(c *Conn) {
	if g == nil {
		return
	}
	g.mu.Lock()
	delete(g.conns, c)
	if len(g.conns) == 0 && g.empty != nil {
		close(g.empty)
		g.empty = nil
	}
	g.mu.Unlock()
}

// Shutdown closes every Conn in g with status 1001 (going away) and waits until they are
// all closed: it sends each its close frame, then waits for the peer's answer, which the
// goroutine reading the Conn receives (or Shutdown itself, for a Conn no goroutine
// reads), discarding data that still arrives, as Close does. A peer that does not answer
// within the close timeout (5 seconds) is cut off without one. When ctx ends first,
// Shutdown cuts off every Conn still open, with CloseNow, and returns ctx.Err(); it
// returns nil once all have closed. The reader of each Conn then sees an error whose
// CloseStatus is the peer's answer, normally 1001, and its handler can return.
//
// Shutdown runs at most 16 goroutines while it works and none after it returns. A Conn
// accepted after Shutdown began is sent its close frame at once. It may be called more
// than once, and from several goroutines; each call waits for the same Conns.
//
// To start it together with the HTTP server's shutdown, register it, and call it again to
// wait for it:
//
//	srv.RegisterOnShutdown(func() { g.Shutdown(context.Background()) })
//	…
//	srv.Shutdown(ctx) // stops accepting, waits for plain HTTP requests
//	g.Shutdown(ctx)   // waits for the WebSockets
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.shutting = true
	conns := make([]*Conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	if len(conns) > 0 && g.empty == nil {
		g.empty = make(chan struct{})
	}
	empty := g.empty
	g.mu.Unlock()
	if empty == nil {
		return nil
	}

	// One bound for every answer: the close frames all go out first, so the answers
	// arrive together, whatever order they are waited for in.
	wctx, cancel := context.WithTimeout(ctx, defaultCloseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for w := range min(len(conns), shutdownWorkers) {
		wg.Go(func() {
			for i := w; i < len(conns); i += shutdownWorkers {
				conns[i].goAway()
			}
			for i := w; i < len(conns); i += shutdownWorkers {
				conns[i].awaitClose(wctx)
			}
		})
	}
	select {
	case <-empty:
		wg.Wait()
		return nil
	case <-ctx.Done():
	}
	g.cut()
	wg.Wait()
	return ctx.Err()
}

// cut closes every Conn in g at once.
func (g *Group) cut() {
	g.mu.Lock()
	conns := make([]*Conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
}

// goAway sends c a close frame with 1001, unless one went out already.
func (c *Conn) goAway() {
	if err := c.sendClose(StatusGoingAway, goingAwayReason); err != nil && err != errCloseSent {
		c.CloseNow()
	}
}

// awaitClose waits until c is closed, or ctx is done, and then closes it anyway. When a
// goroutine is reading c, the reads here wait their turn while it receives the peer's
// close frame; when none is, they receive it.
func (c *Conn) awaitClose(ctx context.Context) {
	for {
		if _, _, err := c.Reader(ctx); err != nil {
			break
		}
	}
	c.CloseNow()
}
