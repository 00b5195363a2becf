// Package chat is the chat server of examples/chat: the page, the connections, and a
// Broker that orders each room's events and fans them out. The command serves it with
// the in-memory broker; the module in examples/chat/redis serves it with rooms in Redis,
// shared by any number of processes.
package chat

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hybi/websocket"
)

// Config holds the limits of a hub. Defaults is what the commands use.
type Config struct {
	History    int           // messages a room keeps for newcomers and for clients that reconnect
	Queue      int           // bytes of events a client may fall behind by before it is dropped, what it is sent on joining included
	PingEvery  time.Duration // how often each client is pinged
	PongWithin time.Duration // how long a client has to answer a ping
	Rate       float64       // chat lines a client may send a second, on average; 0 for no limit
	Burst      int           // chat lines a client may send at once, when it has sent none for a while
}

// Defaults is the configuration of the commands.
var Defaults = Config{
	History:    100,
	Queue:      1 << 20, // the history, even of long lines, and more
	PingEvery:  30 * time.Second,
	PongWithin: 10 * time.Second,
	Rate:       5,
	Burst:      10,
}

const (
	MaxText = 1024 // bytes of a chat line: the read limit of every connection
	maxName = 32   // bytes of a name or a room's name
)

// Member is a connection in a room, as a Broker sees it.
type Member interface {
	Name() string
	// Deliver queues ev for the member without waiting, and reports whether it could:
	// a member that cannot take it has been dropped, and should leave the room.
	Deliver(ev *websocket.PreparedMessage) bool
	// End closes the member's connection with code and reason, without waiting; the
	// member then leaves the room.
	End(code websocket.StatusCode, reason string)
}

// JoinRequest is what a client asks for in the query of /ws.
type JoinRequest struct {
	Room, Name string
	Epoch      string // the epoch of the room when the client was last in it, if it was
	After      int64  // the last message the client has, in that epoch
}

// Broker orders the events of each room, keeps its history and hands each event to the
// room's members. Its methods are safe for concurrent use.
type Broker interface {
	// Join puts m in the room j names and delivers to m its welcome, then the messages
	// it has not seen (after a gap event if some are lost for good), then the room's
	// events until Leave, in the one order every member sees.
	Join(ctx context.Context, j JoinRequest, m Member) error
	// Publish sends a chat line from m to every member of room, m too. A line from a
	// member no longer in the room goes nowhere.
	Publish(ctx context.Context, room string, m Member, text string) error
	// Leave takes m out of room, if it is in it, and tells the others.
	Leave(room string, m Member)
}

// Hub serves the chat's connections, with a Broker for its rooms.
type Hub struct {
	cfg    Config
	broker Broker
	group  websocket.Group // the open connections, closed together by shutdown
	active sync.WaitGroup  // connections being served

	mu      sync.Mutex
	closing bool
}

// NewHub returns a hub whose rooms are b's.
func NewHub(cfg Config, b Broker) *Hub {
	return &Hub{cfg: cfg, broker: b}
}

// enter counts a connection in, unless the hub is shutting down.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.active.Add(1)
	return true
}

// Shutdown closes every connection with 1001 (going away) and waits until they are
// done, or ctx ends. The hub takes no connection after it.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	if err := h.group.Shutdown(ctx); err != nil {
		return fmt.Errorf("connections still open: %w", err)
	}

	done := make(chan struct{})
	go func() {
		h.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("connections still open: %w", ctx.Err())
	}
}

//go:embed index.html
var static embed.FS

// Handler returns the page at / and the chat endpoint at /ws.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /ws", h.serveWS)
	return mux
}

// Serve serves h on l until ctx ends, then closes every connection with 1001 and waits
// up to 10 seconds for them. It returns the error that stopped it early, if one did.
func Serve(ctx context.Context, l net.Listener, h *Hub) error {
	srv := &http.Server{
		Handler: h.Handler(),
		// net/http sets no time limit on the request head, and a 1 MiB size limit: a
		// client sending its handshake a byte a second would hold a goroutine forever.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	log.Print("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown stops listening and waits for plain HTTP requests; the WebSocket
	// connections, which it no longer tracks, are the hub's to close.
	if err := srv.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	if err := h.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
