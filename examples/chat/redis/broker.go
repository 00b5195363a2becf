package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hybi/websocket"
	"github.com/hybi/websocket/examples/chat/internal/chat"
)

// Keys of a room in Redis, with the room's name after the prefix:
//
//	chat:log:ROOM    a stream: the room's messages, joins and leaves, in the one order
//	                 every node delivers; entry 0-N is event N, the ID clients resume from
//	chat:epoch:ROOM  a string naming this life of the room: a Redis that lost its data
//	                 starts a new life, numbered from 1 again
//	chat:here:ROOM   a sorted set: who is in the room, as node/conn/name, scored by when
//	                 the entry expires unless its node renews it
//
// and chat:wake:NODE, a stream each node adds to, to wake its own reader when it starts
// reading another room.
const (
	logKey   = "chat:log:"
	epochKey = "chat:epoch:"
	hereKey  = "chat:here:"
	wakeKey  = "chat:wake:"
)

// Presence entries expire unless renewed: a node that dies takes its members with it
// once presenceTTL has passed.
const (
	presenceTTL   = 30 * time.Second
	presenceRenew = 10 * time.Second
)

// appendEvent adds an event to a room's stream, unless the room has started another
// life (Redis lost its data) since the node read its epoch. The ID 0-* numbers the
// entries 0-1, 0-2, ... in one sequence across every node.
var appendEvent = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('EPOCH the room has started another life')
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-*', 't', ARGV[3], 'n', ARGV[4], 'x', ARGV[5], 'c', ARGV[6])
`)

// broker is a chat.Broker whose rooms live in Redis, shared by every node on it. Each
// node reads the streams of the rooms it has members in, in one blocking XREAD loop,
// and hands each event, encoded once, to its members there.
type broker struct {
	rdb     *redis.Client
	node    string // names this process in presence entries and its wake stream
	history int64  // entries a stream keeps, about

	mu     sync.Mutex
	rooms  map[string]*room // rooms with members on this node
	nextID int64            // numbers this node's connections
	wakeID string           // the last entry of the wake stream read
	down   bool             // Redis is out of reach, and the members were told
}

// room is a room that has members on this node.
type room struct {
	name string

	mu      sync.Mutex
	epoch   string
	last    int64 // the last event of the stream delivered to the members
	members map[chat.Member]*member
}

type member struct {
	id    string // node/conn
	after int64  // events up to this one the member had before it joined
}

// newBroker returns a broker on rdb that keeps about history events a room.
func newBroker(rdb *redis.Client, history int) *broker {
	return &broker{
		rdb:     rdb,
		node:    strings.ToLower(rand.Text()[:10]),
		history: int64(max(history, 1)),
		rooms:   make(map[string]*room),
		wakeID:  "0-0",
	}
}

// seq returns N of a stream ID 0-N.
func seq(id string) int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(id, "0-"), 10, 64)
	return n
}

func (b *broker) Join(ctx context.Context, j chat.JoinRequest, m chat.Member) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[j.Room]
	fresh := r == nil
	if fresh {
		r = &room{name: j.Room, members: make(map[chat.Member]*member)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	b.nextID++
	me := &member{id: fmt.Sprintf("%s/%d", b.node, b.nextID)}
	here := me.id + "/" + m.Name()
	now := time.Now()
	var (
		epoch           *redis.StringCmd
		newest, resumed *redis.XMessageSliceCmd
		first, tip      *redis.XMessageSliceCmd
		members         *redis.StringSliceCmd
	)
	// One transaction, so that the history, the first and last IDs and the epoch are of
	// one moment.
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, epochKey+j.Room, strings.ToLower(rand.Text()), 0)
		epoch = p.Get(ctx, epochKey+j.Room)
		newest = p.XRevRangeN(ctx, logKey+j.Room, "+", "-", b.history)
		if j.After > 0 {
			resumed = p.XRange(ctx, logKey+j.Room, "(0-"+strconv.FormatInt(j.After, 10), "+")
		}
		first = p.XRangeN(ctx, logKey+j.Room, "-", "+", 1)
		tip = p.XRevRangeN(ctx, logKey+j.Room, "+", "-", 1)
		p.ZAdd(ctx, hereKey+j.Room, redis.Z{Score: float64(now.Add(presenceTTL).UnixMilli()), Member: here})
		members = p.ZRangeByScore(ctx, hereKey+j.Room, &redis.ZRangeBy{Min: strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf"})
		return nil
	})
	if err != nil {
		return fmt.Errorf("joining %s: %w", j.Room, err)
	}
	if fresh {
		r.epoch = epoch.Val()
		if t := tip.Val(); len(t) > 0 {
			r.last = seq(t[0].ID)
		}
	} else if r.epoch != epoch.Val() {
		// Redis lost the room while this node had members in it; the reader will end
		// their connections, and this one may try again.
		return fmt.Errorf("joining %s: the room has started another life", j.Room)
	}

	var names []string
	for _, e := range members.Val() {
		if parts := strings.SplitN(e, "/", 3); len(parts) == 3 {
			names = append(names, parts[2])
		}
	}
	// The others are told before m has its welcome: they see m join before any line m
	// sends.
	if err := appendEvent.Run(ctx, b.rdb, []string{logKey + j.Room, epochKey + j.Room}, r.epoch, b.history, "join", m.Name(), "", me.id).Err(); err != nil {
		log.Printf("announcing %s in %s: %v", m.Name(), j.Room, err)
	}
	slices.Sort(names)
	m.Deliver(chat.Encode(chat.Event{Type: "welcome", Epoch: r.epoch, Members: names}))

	// A client from another life of the room, or one that has been away longer than the
	// stream reaches, has missed messages for good. A newcomer gets the newest events.
	after := j.After
	var msgs []redis.XMessage
	if j.Epoch == r.epoch && after > 0 {
		if f := first.Val(); len(f) > 0 && after+1 < seq(f[0].ID) {
			m.Deliver(chat.Encode(chat.Event{Type: "gap"}))
		}
		msgs = resumed.Val()
	} else {
		if after > 0 {
			m.Deliver(chat.Encode(chat.Event{Type: "gap"}))
		}
		after = 0
		msgs = newest.Val()
		slices.Reverse(msgs)
	}
	// What the reader has not delivered yet, it will deliver to m too.
	for _, x := range msgs {
		if n := seq(x.ID); n > after && n <= r.last && x.Values["t"] == "message" {
			m.Deliver(encode(n, x))
		}
	}
	me.after = max(after, r.last)
	r.members[m] = me

	if fresh {
		b.rooms[j.Room] = r
		b.wake(ctx)
	}
	log.Printf("%s joined %s", m.Name(), j.Room)
	return nil
}

// encode encodes the stream entry x, numbered n, as the event members are sent.
func encode(n int64, x redis.XMessage) *websocket.PreparedMessage {
	s := func(k string) string { v, _ := x.Values[k].(string); return v }
	switch t := s("t"); t {
	case "message":
		return chat.Encode(chat.Event{Type: t, ID: n, Name: s("n"), Text: s("x")})
	default:
		return chat.Encode(chat.Event{Type: t, Name: s("n")})
	}
}

// wake has the reader start again with the rooms as they are now.
func (b *broker) wake(ctx context.Context) {
	err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: wakeKey + b.node, MaxLen: 1, Values: []string{"w", "1"}}).Err()
	if err != nil {
		log.Printf("waking the reader: %v", err)
	}
}

func (b *broker) Publish(ctx context.Context, name string, m chat.Member, text string) error {
	b.mu.Lock()
	r := b.rooms[name]
	b.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	me, epoch := r.members[m], r.epoch
	r.mu.Unlock()
	if me == nil {
		return nil
	}
	// The client's reader waits for this: not for long when Redis is out of reach.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := appendEvent.Run(ctx, b.rdb, []string{logKey + name, epochKey + name}, epoch, b.history, "message", m.Name(), text, me.id).Err()
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", name, err)
	}
	return nil
}

func (b *broker) Leave(name string, m chat.Member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[name]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	me := r.members[m]
	if me == nil {
		return
	}
	delete(r.members, m)
	if len(r.members) == 0 {
		delete(b.rooms, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.rdb.ZRem(ctx, hereKey+name, me.id+"/"+m.Name()).Err(); err != nil {
		log.Printf("%s leaving %s: %v", m.Name(), name, err)
	}
	if err := appendEvent.Run(ctx, b.rdb, []string{logKey + name, epochKey + name}, r.epoch, b.history, "leave", m.Name(), "", me.id).Err(); err != nil {
		log.Printf("%s leaving %s: %v", m.Name(), name, err)
	}
}

// run reads the streams of the rooms with members on this node and delivers their
// events, until ctx ends. When Redis is out of reach it tells the members, tries again
// with backoff, and goes on from where each room was.
func (b *broker) run(ctx context.Context) {
	renew := time.NewTicker(presenceRenew)
	defer renew.Stop()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case <-renew.C:
			b.renewPresence(ctx)
		default:
		}
		err := b.readOnce(ctx)
		if err == nil || errors.Is(err, redis.Nil) {
			backoff = 50 * time.Millisecond
			if b.setDown(false) {
				b.recover(ctx)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		log.Printf("reading the rooms: %v", err)
		b.setDown(true)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// readOnce waits up to a second for events of the rooms and delivers them.
func (b *broker) readOnce(ctx context.Context) error {
	b.mu.Lock()
	streams := []string{wakeKey + b.node}
	ids := []string{b.wakeID}
	for name, r := range b.rooms {
		r.mu.Lock()
		streams = append(streams, logKey+name)
		ids = append(ids, "0-"+strconv.FormatInt(r.last, 10))
		r.mu.Unlock()
	}
	b.mu.Unlock()

	res, err := b.rdb.XRead(ctx, &redis.XReadArgs{Streams: append(streams, ids...), Block: time.Second, Count: 1000}).Result()
	if err != nil {
		return err
	}
	for _, s := range res {
		if s.Stream == wakeKey+b.node {
			if n := len(s.Messages); n > 0 {
				b.mu.Lock()
				b.wakeID = s.Messages[n-1].ID
				b.mu.Unlock()
			}
			continue
		}
		name := strings.TrimPrefix(s.Stream, logKey)
		b.mu.Lock()
		r := b.rooms[name]
		b.mu.Unlock()
		if r != nil {
			r.deliver(s.Messages)
		}
	}
	return nil
}

// deliver hands the entries to the members, each encoded once, in order, skipping
// those already delivered.
func (r *room) deliver(msgs []redis.XMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range msgs {
		n := seq(x.ID)
		if n <= r.last {
			continue
		}
		r.last = n
		ev := encode(n, x)
		from, _ := x.Values["c"].(string)
		for m, me := range r.members {
			// A member that cannot take it has been dropped, and leaves the room when its
			// connection ends.
			if n > me.after && !(x.Values["t"] == "join" && from == me.id) {
				m.Deliver(ev)
			}
		}
	}
}

// setDown records whether Redis is out of reach and tells every member when that
// changes. It reports whether it did.
func (b *broker) setDown(down bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down == down {
		return false
	}
	b.down = down
	text := "the rooms are out of reach: lines cannot be sent until they are back"
	if !down {
		text = "the rooms are back"
	}
	ev := chat.Encode(chat.Event{Type: "notice", Text: text})
	for _, r := range b.rooms {
		r.mu.Lock()
		for m := range r.members {
			m.Deliver(ev)
		}
		r.mu.Unlock()
	}
	return true
}

// recover checks, once Redis is back, that it still has each room this node serves. A
// Redis that lost its data has rooms that start another life, numbered from 1 again:
// their members here are disconnected with 1012 (service restart), and those that
// reconnect are told of the gap. The members of the others are put back in presence,
// in case it was lost.
func (b *broker) recover(ctx context.Context) {
	b.mu.Lock()
	rooms := make(map[string]*room, len(b.rooms))
	maps.Copy(rooms, b.rooms)
	b.mu.Unlock()
	for name, r := range rooms {
		epoch, err := b.rdb.Get(ctx, epochKey+name).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			log.Printf("checking %s: %v", name, err)
			continue
		}
		if epoch == r.epoch {
			continue
		}
		log.Printf("%s has lost its history: its members are sent to start again", name)
		// Out of the node's rooms first, so that they leave none of their own in the
		// room's new life.
		b.mu.Lock()
		if b.rooms[name] == r {
			delete(b.rooms, name)
		}
		b.mu.Unlock()
		r.mu.Lock()
		for m := range r.members {
			m.End(websocket.StatusServiceRestart, "the room has lost its history")
		}
		r.mu.Unlock()
	}
	b.renewPresence(ctx)
}

// renewPresence pushes back the expiry of this node's members in every room.
func (b *broker) renewPresence(ctx context.Context) {
	until := float64(time.Now().Add(presenceTTL).UnixMilli())
	b.mu.Lock()
	var cmds []func(redis.Pipeliner)
	for name, r := range b.rooms {
		r.mu.Lock()
		for m, me := range r.members {
			key, z := hereKey+name, redis.Z{Score: until, Member: me.id + "/" + m.Name()}
			cmds = append(cmds, func(p redis.Pipeliner) { p.ZAdd(ctx, key, z) })
		}
		// The entries of nodes that have died.
		key, expired := hereKey+name, "("+strconv.FormatInt(time.Now().UnixMilli(), 10)
		cmds = append(cmds, func(p redis.Pipeliner) { p.ZRemRangeByScore(ctx, key, "-inf", expired) })
		r.mu.Unlock()
	}
	b.mu.Unlock()
	if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range cmds {
			c(p)
		}
		return nil
	}); err != nil {
		log.Printf("renewing presence: %v", err)
	}
}
