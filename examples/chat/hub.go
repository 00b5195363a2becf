package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/hybi/websocket"
)

// config holds the limits of a hub. defaults is what the command uses.
type config struct {
	history    int           // messages a room keeps for newcomers and for clients that reconnect
	queue      int           // bytes of events a client may fall behind by before it is dropped, what it is sent on joining included
	pingEvery  time.Duration // how often each client is pinged
	pongWithin time.Duration // how long a client has to answer a ping
	rate       float64       // chat lines a client may send a second, on average; 0 for no limit
	burst      int           // chat lines a client may send at once, when it has sent none for a while
}

var defaults = config{
	history:    100,
	queue:      1 << 20, // the history, even of long lines, and more
	pingEvery:  30 * time.Second,
	pongWithin: 10 * time.Second,
	rate:       5,
	burst:      10,
}

const (
	maxText = 1024 // bytes of a chat line: the read limit of every connection
	maxName = 32   // bytes of a name or a room's name
)

// event is what the server sends, as a JSON text message. A connection's first event
// is a welcome; then come the messages it missed, then live events.
type event struct {
	Type    string   `json:"type"`              // welcome, gap, message, join or leave
	ID      int64    `json:"id,omitempty"`      // message: its number in the room, from 1
	Name    string   `json:"name,omitempty"`    // message, join, leave: who
	Text    string   `json:"text,omitempty"`    // message
	Epoch   string   `json:"epoch,omitempty"`   // welcome: names this life of the room, in which IDs are unique
	Members []string `json:"members,omitempty"` // welcome: who is in the room, the newcomer too
}

// encode encodes ev, and frames it, once for every member it goes to.
func encode(ev event) *websocket.PreparedMessage {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // an event has only strings and numbers
	}
	m, err := websocket.NewPreparedMessage(websocket.MessageText, b)
	if err != nil {
		panic(err) // the type is one of the two
	}
	return m
}

// hub holds the rooms. A room is made for its first member, and removed once the last
// connection in it has ended.
type hub struct {
	cfg    config
	group  websocket.Group // the open connections, closed together by shutdown
	active sync.WaitGroup  // connections being served

	mu      sync.Mutex
	rooms   map[string]*room
	closing bool
}

func newHub(cfg config) *hub {
	return &hub{cfg: cfg, rooms: make(map[string]*room)}
}

// room is a set of members and the last messages sent to it.
type room struct {
	name    string
	epoch   string
	history int // messages kept

	mu      sync.Mutex
	members map[*client]bool
	log     []logged // the last history messages, oldest first
	lastID  int64
}

// logged is a message kept in a room's history, encoded.
type logged struct {
	id int64
	ev *websocket.PreparedMessage
}

// enter counts a connection in, unless the hub is shutting down.
func (h *hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.active.Add(1)
	return true
}

// join puts c in the room it asked for, making the room if it is new, and queues for c
// the welcome and the messages it has not seen. It returns nil if the hub is shutting
// down.
func (h *hub) join(j joinRequest, c *client) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return nil
	}
	r := h.rooms[j.room]
	if r == nil {
		r = &room{name: j.room, epoch: rand.Text(), history: h.cfg.history, members: make(map[*client]bool)}
		h.rooms[j.room] = r
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[c] = true
	var names []string
	for m := range r.members {
		names = append(names, m.name)
	}
	c.deliver(encode(event{Type: "welcome", Epoch: r.epoch, Members: names}))

	// Message IDs count from 1 in each life of a room. A client from another life, or one
	// that has been away longer than the history reaches, has missed messages for good.
	after := j.after
	if j.epoch != r.epoch {
		if after > 0 {
			c.deliver(encode(event{Type: "gap"}))
		}
		after = 0
	} else if oldest := r.lastID - int64(len(r.log)) + 1; after+1 < oldest {
		c.deliver(encode(event{Type: "gap"}))
	}
	for _, m := range r.log {
		if m.id > after {
			c.deliver(m.ev)
		}
	}

	r.broadcast(encode(event{Type: "join", Name: c.name}), c)
	log.Printf("%s joined %s", c.name, r.name)
	return r
}

// leave takes c out of r, if a broadcast has not done so already, and r out of the hub
// once it is empty.
func (h *hub) leave(r *room, c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remove(c)
	if len(r.members) == 0 && h.rooms[r.name] == r {
		delete(h.rooms, r.name)
	}
}

// publish numbers a chat line from c, keeps it in the history and sends it to every
// member, c too: all members see the room's messages in one order. A line that c's
// reader had read before c was dropped goes nowhere.
func (r *room) publish(c *client, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.members[c] {
		return
	}
	r.lastID++
	ev := encode(event{Type: "message", ID: r.lastID, Name: c.name, Text: text})
	if r.history > 0 {
		if len(r.log) == r.history {
			r.log = r.log[1:]
		}
		r.log = append(r.log, logged{r.lastID, ev})
	}
	r.broadcast(ev, nil)
}

// broadcast queues ev for every member but except. A member too slow to take it is
// dropped, and leaves the room at once. r.mu must be held.
func (r *room) broadcast(ev *websocket.PreparedMessage, except *client) {
	var slow []*client
	for c := range r.members {
		if c != except && !c.deliver(ev) {
			slow = append(slow, c)
		}
	}
	for _, c := range slow {
		r.remove(c)
	}
}

// remove takes c out of the members, if it is one, and tells the others. r.mu must be
// held.
func (r *room) remove(c *client) {
	if !r.members[c] {
		return
	}
	delete(r.members, c)
	r.broadcast(encode(event{Type: "leave", Name: c.name}), nil)
}

// shutdown closes every connection with 1001 (going away) and waits until they are
// done, or ctx ends. The hub takes no connection after it.
func (h *hub) shutdown(ctx context.Context) error {
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
