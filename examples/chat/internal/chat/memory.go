package chat

import (
	"context"
	"crypto/rand"
	"log"
	"sync"

	"github.com/hybi/websocket"
)

// memory is the Broker of a single process: rooms in its memory, lost when it ends. A
// room is made for its first member, and removed once the last one has left.
type memory struct {
	history int

	mu    sync.Mutex
	rooms map[string]*room
}

// NewMemory returns a Broker that keeps rooms in memory, with cfg.History messages each.
func NewMemory(cfg Config) Broker {
	return &memory{history: cfg.History, rooms: make(map[string]*room)}
}

// room is a set of members and the last messages sent to it.
type room struct {
	name    string
	epoch   string
	history int // messages kept

	mu      sync.Mutex
	members map[Member]bool
	log     []logged // the last history messages, oldest first
	lastID  int64
}

// logged is a message kept in a room's history, encoded.
type logged struct {
	id int64
	ev *websocket.PreparedMessage
}

func (b *memory) Join(_ context.Context, j JoinRequest, c Member) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[j.Room]
	if r == nil {
		r = &room{name: j.Room, epoch: rand.Text(), history: b.history, members: make(map[Member]bool)}
		b.rooms[j.Room] = r
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[c] = true
	var names []string
	for m := range r.members {
		names = append(names, m.Name())
	}
	c.Deliver(Encode(Event{Type: "welcome", Epoch: r.epoch, Members: names}))

	// Message IDs count from 1 in each life of a room. A client from another life, or one
	// that has been away longer than the history reaches, has missed messages for good.
	after := j.After
	if j.Epoch != r.epoch {
		if after > 0 {
			c.Deliver(Encode(Event{Type: "gap"}))
		}
		after = 0
	} else if oldest := r.lastID - int64(len(r.log)) + 1; after+1 < oldest {
		c.Deliver(Encode(Event{Type: "gap"}))
	}
	for _, m := range r.log {
		if m.id > after {
			c.Deliver(m.ev)
		}
	}

	r.broadcast(Encode(Event{Type: "join", Name: c.Name()}), c)
	log.Printf("%s joined %s", c.Name(), r.name)
	return nil
}

func (b *memory) Leave(name string, c Member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[name]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remove(c)
	if len(r.members) == 0 {
		delete(b.rooms, r.name)
	}
}

// Publish numbers the line, keeps it in the history and sends it to every member: all
// members see the room's messages in one order.
func (b *memory) Publish(_ context.Context, name string, c Member, text string) error {
	b.mu.Lock()
	r := b.rooms[name]
	b.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.members[c] {
		return nil
	}
	r.lastID++
	ev := Encode(Event{Type: "message", ID: r.lastID, Name: c.Name(), Text: text})
	if r.history > 0 {
		if len(r.log) == r.history {
			r.log = r.log[1:]
		}
		r.log = append(r.log, logged{r.lastID, ev})
	}
	r.broadcast(ev, nil)
	return nil
}

// broadcast queues ev for every member but except. A member too slow to take it is
// dropped, and leaves the room at once. r.mu must be held.
func (r *room) broadcast(ev *websocket.PreparedMessage, except Member) {
	var slow []Member
	for c := range r.members {
		if c != except && !c.Deliver(ev) {
			slow = append(slow, c)
		}
	}
	for _, c := range slow {
		r.remove(c)
	}
}

// remove takes c out of the members, if it is one, and tells the others. r.mu must be
// held.
func (r *room) remove(c Member) {
	if !r.members[c] {
		return
	}
	delete(r.members, c)
	r.broadcast(Encode(Event{Type: "leave", Name: c.Name()}), nil)
}
