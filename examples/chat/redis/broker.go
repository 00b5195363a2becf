package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"maps"
	mrand "math/rand/v2"
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
//	chat:log:ROOM      a stream: the room's messages, joins and leaves, in the one order
//	                   every node delivers; entry 0-N is event N, the ID clients resume
//	                   from
//	chat:epoch:ROOM    a string naming this life of the room: a Redis that lost its data
//	                   starts a new life, numbered from 1 again
//	chat:here:ROOM     a sorted set: who is in the room, as node/conn/name, scored by
//	                   when the entry expires unless its node renews it
//	chat:lines:ROOM    a list: the IDs of the messages the stream keeps, oldest first, as
//	                   many as the history
//	chat:comings:ROOM  a list: the IDs of the joins and leaves the stream keeps, as many
//	chat:dropped:ROOM  the ID of the newest message dropped from the stream: a client
//	                   that has it has missed nothing
//
// and of a node, with its name after the prefix:
//
//	chat:wake:NODE     a stream each node adds to, to wake its own reader when it starts
//	                   reading another room
//	chat:node:NODE     a string that expires unless the node renews it: the node is alive
//	chat:rooms:NODE    a set: the rooms the node has members in
//
// and chat:nodes, the set of nodes that have said they are alive and not yet been found
// dead.
const (
	logKey     = "chat:log:"
	epochKey   = "chat:epoch:"
	hereKey    = "chat:here:"
	linesKey   = "chat:lines:"
	comingsKey = "chat:comings:"
	droppedKey = "chat:dropped:"
	wakeKey    = "chat:wake:"
	nodeKey    = "chat:node:"
	roomsKey   = "chat:rooms:"
	nodesKey   = "chat:nodes"
)

// Presence entries expire unless renewed: members of a node that dies are taken out by
// the nodes that find it dead (reap), and, should none be running, once presenceTTL has
// passed.
const (
	presenceTTL   = 30 * time.Second
	presenceRenew = 10 * time.Second
)

// The defaults of a node's timing. A node that has not said it is alive for deadBeats
// beats is taken for dead.
const (
	defaultPace = 100 * time.Millisecond
	defaultBeat = time.Second
	deadBeats   = 3
)

// appendLua is the Lua function that adds an event to a room's stream. The ID 0-*
// numbers the entries 0-1, 0-2, ... in one sequence across every node, with no holes but
// those of entries dropped. The stream keeps the last history messages at least and,
// apart, the last history joins and leaves: were they counted together, members coming
// and going would push out the lines that clients resume from. Each kind is trimmed back
// to history once it reaches twice that: a node's reader that falls behind has that
// much more time to catch up before it misses lines, and the trimming costs a command or
// two every history entries rather than each one. It builds the room's keys from its
// name, so that a script may append to any room.
const appendLua = `
local function append(room, history, kind, name, text, conn)
  local log = '` + logKey + `' .. room
  local id
  if kind == 'message' then -- read by every node: no field it does not need
    id = redis.call('XADD', log, '0-*', 't', kind, 'n', name, 'x', text)
  else
    id = redis.call('XADD', log, '0-*', 't', kind, 'n', name, 'c', conn)
  end
  local kept = (kind == 'message' and '` + linesKey + `' or '` + comingsKey + `') .. room
  local n = redis.call('RPUSH', kept, id)
  if n > 2 * tonumber(history) then
    local old = redis.call('LPOP', kept, n - tonumber(history))
    for i = 1, #old, 500 do -- unpack takes a few thousand values at most
      redis.call('XDEL', log, unpack(old, i, math.min(i + 499, #old)))
    end
    if kind == 'message' then
      redis.call('SET', '` + droppedKey + `' .. room, old[#old])
    end
  end
  return id
end
`

// appendEvent adds an event to a room's stream, unless the room has started another
// life (Redis lost its data) since the node read its epoch. Its KEYS are those of
// roomKeys.
var appendEvent = redis.NewScript(appendLua + `
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return redis.error_reply('EPOCH the room has started another life')
end
return append(ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
`)

// appendLines adds chat lines to their rooms' streams, in order: ARGV is the history,
// then room, epoch, name, text and connection of each line. It returns the ID of each
// line, or an empty string for one whose room has started another life since the node
// read its epoch. It builds the rooms' keys from their names, as reapNodes does.
var appendLines = redis.NewScript(appendLua + `
local epochs, ids = {}, {}
for i = 2, #ARGV, 5 do
  local room = ARGV[i]
  if epochs[room] == nil then
    epochs[room] = redis.call('GET', '` + epochKey + `' .. room) or ''
  end
  if epochs[room] == ARGV[i + 1] then
    ids[#ids + 1] = append(room, ARGV[1], 'message', ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  else
    ids[#ids + 1] = ''
  end
end
return ids
`)

// roomKeys returns the keys of a room appendEvent uses, the epoch first.
func roomKeys(room string) []string {
	return []string{epochKey + room, logKey + room, linesKey + room, comingsKey + room, droppedKey + room}
}

// appendTo adds an event to a room's stream in the epoch the node knows.
func (b *broker) appendTo(ctx context.Context, room, epoch, kind, name, text, conn string) error {
	return appendEvent.Run(ctx, b.rdb, roomKeys(room), room, epoch, b.history, kind, name, text, conn).Err()
}

// reapNodes takes the members of every node found dead (its chat:node key expired) out
// of their rooms' presence and adds a leave for each to the room's stream. Being one
// script, it runs whole before or after any other: a dead node is taken out of
// chat:nodes by the first node to run it, so each leave is added once however many
// nodes run it. It returns how many nodes it found dead. It builds the keys of the
// rooms from their names, which is why they are not in KEYS: the chat runs on one
// Redis, not a cluster.
var reapNodes = redis.NewScript(appendLua + `
local dead = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', '` + nodeKey + `' .. node) == 0 then
    dead = dead + 1
    local prefix = node .. '/'
    for _, room in ipairs(redis.call('SMEMBERS', '` + roomsKey + `' .. node)) do
      local here = '` + hereKey + `' .. room
      local live = redis.call('EXISTS', '` + epochKey + `' .. room) == 1
      for _, e in ipairs(redis.call('ZRANGE', here, 0, -1)) do
        if string.sub(e, 1, #prefix) == prefix then
          redis.call('ZREM', here, e)
          local rest = string.sub(e, #prefix + 1)
          local slash = string.find(rest, '/', 1, true)
          if live and slash then
            append(room, ARGV[1], 'leave', string.sub(rest, slash + 1), '', prefix .. string.sub(rest, 1, slash - 1))
          end
        end
      end
    end
    redis.call('DEL', '` + roomsKey + `' .. node)
    redis.call('SREM', KEYS[1], node)
  end
end
return dead
`)

// broker is a chat.Broker whose rooms live in Redis, shared by every node on it. Each
// node reads the streams of the rooms it has members in, in one blocking XREAD loop,
// and hands each event, encoded once, to its members there.
type broker struct {
	rdb     *redis.Client
	node    string // names this process in presence entries and its wake stream
	history int64  // messages a stream keeps at least, twice as many at most; joins and leaves too
	beat    time.Duration
	pace    time.Duration
	lag     time.Duration                        // from each tick of the pace to the read
	after   func(time.Duration) <-chan time.Time // time.After, but in tests
	queued  chan<- struct{}                      // in tests, told of each line that waits for the reader

	mu     sync.Mutex
	rooms  map[string]*room // rooms with members on this node
	nextID int64            // numbers this node's connections
	wakeID string           // the last entry of the wake stream read
	down   bool             // Redis is out of reach, and the members were told
	alive  bool             // the node has said it is alive: it is in chat:nodes unless found dead

	// While the reader paces its reads, chat lines wait in pending for the next tick,
	// when it appends them all (appendPending).
	pacing  bool
	pending []*line
}

// line is a chat line waiting for the reader to append it.
type line struct {
	room, epoch, name, text, conn string
	done                          chan error // receives the outcome, once
}

// timing is how often a node does what it does on its own; the zero value is the
// command's.
type timing struct {
	// Beat is how often the node says it is alive, and looks for nodes that have not: a
	// node that dies without a word has its members leave their rooms within about 4
	// beats. 1 second by default; every beat costs a node three Redis commands.
	Beat time.Duration

	// Pace is the least time between two reads of the rooms' streams, at the ticks of
	// the clock (run): the lines that come meanwhile go out to each member together, and
	// the lines the node's clients say meanwhile wait for the next tick, when it appends
	// them all with one script. Under load, that costs a line up to Pace and a lag of
	// latency, on every node alike, and saves Redis, the node and the network a round
	// trip for each line said and, above all, a write and a wake-up for each line
	// delivered: a member is written to once a tick at most. A line after a quiet spell
	// goes out at once. 0 for the default, 100 ms; negative for no pace.
	Pace time.Duration
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

// newBroker returns a broker on rdb that keeps history messages a room, and as many
// joins and leaves.
func newBroker(rdb *redis.Client, history int, tm timing) *broker {
	if tm.Beat <= 0 {
		tm.Beat = defaultBeat
	}
	if tm.Pace == 0 {
		tm.Pace = defaultPace
	}
	return &broker{
		rdb:     rdb,
		node:    strings.ToLower(rand.Text()[:10]),
		history: int64(max(history, 1)),
		beat:    tm.Beat,
		pace:    max(tm.Pace, 0),
		lag:     lag(max(tm.Pace, 0)),
		after:   time.After,
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
		tip             *redis.XMessageSliceCmd
		dropped         *redis.StringCmd
		members         *redis.StringSliceCmd
	)
	// One transaction, so that the history, the last ID, the last message dropped and the
	// epoch are of one moment.
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, epochKey+j.Room, strings.ToLower(rand.Text()), 0)
		epoch = p.Get(ctx, epochKey+j.Room)
		// The stream holds at most twice history messages, and as many joins and leaves.
		newest = p.XRevRangeN(ctx, logKey+j.Room, "+", "-", 4*b.history)
		if j.After > 0 {
			resumed = p.XRange(ctx, logKey+j.Room, "(0-"+strconv.FormatInt(j.After, 10), "+")
		}
		dropped = p.Get(ctx, droppedKey+j.Room)
		tip = p.XRevRangeN(ctx, logKey+j.Room, "+", "-", 1)
		p.ZAdd(ctx, hereKey+j.Room, redis.Z{Score: float64(now.Add(presenceTTL).UnixMilli()), Member: here})
		p.SAdd(ctx, roomsKey+b.node, j.Room) // where to look for m should this node die
		members = p.ZRangeByScore(ctx, hereKey+j.Room, &redis.ZRangeBy{Min: strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf"})
		return nil
	})
	// The one command that may find nothing is the GET of the last message dropped, in a
	// room that has dropped none.
	if err != nil && !errors.Is(err, redis.Nil) {
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
	if err := b.appendTo(ctx, j.Room, r.epoch, "join", m.Name(), "", me.id); err != nil {
		log.Printf("announcing %s in %s: %v", m.Name(), j.Room, err)
	}
	slices.Sort(names)
	m.Deliver(chat.Encode(chat.Event{Type: "welcome", Epoch: r.epoch, Members: names}))

	// A client from another life of the room, or one that has been away longer than the
	// stream reaches, has missed messages for good. A newcomer gets the newest history
	// messages.
	after := j.After
	var msgs []redis.XMessage
	resuming := j.Epoch == r.epoch && after > 0
	if resuming {
		// Every message after the last dropped is in the stream.
		if after < seq(dropped.Val()) {
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
	var lines []redis.XMessage
	for _, x := range msgs {
		if n := seq(x.ID); n > after && n <= r.last && x.Values["t"] == "message" {
			lines = append(lines, x)
		}
	}
	if !resuming {
		lines = lines[max(len(lines)-int(b.history), 0):]
	}
	for _, x := range lines {
		m.Deliver(encode(seq(x.ID), x))
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
	b.mu.Lock()
	if b.pacing {
		// The reader reads again within a pace, and appends the line on its way: one
		// round trip and one script for every line of the node in that time, and the
		// node's own members have it from that read.
		l := &line{room: name, epoch: epoch, name: m.Name(), text: text, conn: me.id, done: make(chan error, 1)}
		b.pending = append(b.pending, l)
		queued := b.queued
		b.mu.Unlock()
		if queued != nil {
			queued <- struct{}{}
		}
		var err error
		select {
		case err = <-l.done:
		case <-ctx.Done():
			// A line given up on must not go out later: the client is told it was not.
			b.mu.Lock()
			i := slices.Index(b.pending, l)
			if i >= 0 {
				b.pending = slices.Delete(b.pending, i, i+1)
			}
			b.mu.Unlock()
			if i >= 0 {
				err = ctx.Err()
			} else {
				err = <-l.done // on its way to Redis, whose client times out
			}
		}
		if err != nil {
			return fmt.Errorf("publishing to %s: %w", name, err)
		}
		return nil
	}
	b.mu.Unlock()
	// The reader waits for events in Redis: the line wakes it.
	err := b.appendTo(ctx, name, epoch, "message", m.Name(), text, me.id)
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", name, err)
	}
	return nil
}

// errNewLife is why a line was not appended: Redis lost the room.
var errNewLife = errors.New("the room has started another life")

// settle ends the wait of the pending lines with err, and has lines said from now on
// wait for the reader if it paces its reads.
func (b *broker) settle(pacing bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pacing = pacing
	if pacing {
		return
	}
	for _, l := range b.pending {
		l.done <- err
	}
	b.pending = nil
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, hereKey+name, me.id+"/"+m.Name())
		if len(r.members) == 0 {
			delete(b.rooms, name)
			p.SRem(ctx, roomsKey+b.node, name)
		}
		return nil
	}); err != nil {
		log.Printf("%s leaving %s: %v", m.Name(), name, err)
	}
	if err := b.appendTo(ctx, name, r.epoch, "leave", m.Name(), "", me.id); err != nil {
		log.Printf("%s leaving %s: %v", m.Name(), name, err)
	}
}

// run reads the streams of the rooms with members on this node and delivers their
// events, until ctx ends. When Redis is out of reach it tells the members, tries again
// with backoff, and goes on from where each room was.
func (b *broker) run(ctx context.Context) {
	renew := time.NewTicker(presenceRenew)
	defer renew.Stop()
	defer b.settle(false, errors.New("the node is shutting down"))
	backoff := 50 * time.Millisecond
	var began time.Time
	for ctx.Err() == nil {
		select {
		case <-renew.C:
			b.renewPresence(ctx)
		default:
		}
		// At most one read a pace: what comes meanwhile goes out together, each member's
		// lines in one write where its Conn can. The reads follow the ticks of a clock
		// every node shares, whole multiples of the pace, by a lag: at the tick every
		// node appends the lines its clients said since its last read, and by the reads
		// all of them have, so a line reaches the members of every node in the same tick.
		// A read that waited for its events is over a tick after it began, so that a line
		// after a quiet spell goes out at once.
		if b.pace > 0 && !began.IsZero() {
			tick := began.Truncate(b.pace).Add(b.pace) // wall clock: no monotonic reading
			if !b.sleepUntil(ctx, tick) {
				return
			}
			b.appendPending(ctx)
			if !b.sleepUntil(ctx, tick.Add(b.lag)) {
				return
			}
		}
		began = time.Now()
		err := b.readOnce(ctx)
		if err == nil || errors.Is(err, redis.Nil) {
			b.settle(b.pace > 0, nil)
			backoff = 50 * time.Millisecond
			if b.setDown(false) {
				b.recover(ctx)
			}
			continue
		}
		// Lines said meanwhile are refused at once, until the reader is back.
		b.settle(false, err)
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

// lag returns how long after a tick a node reads: time enough for every node to have
// appended the lines of the tick, clocks set by NTP a few milliseconds apart included,
// and a share of the pace drawn for each node, up to a quarter of it, so that the
// nodes' reads, and their writes to their members, do not all come at once.
func lag(pace time.Duration) time.Duration {
	d := min(pace/4, 10*time.Millisecond)
	if pace >= 4 {
		d += mrand.N(pace / 4)
	}
	return d
}

// sleepUntil waits until t, a tick or the read after it, and reports whether it did,
// rather than see ctx end. It waits a pace and the lag at most: t is of the wall clock,
// which may be set back meanwhile.
func (b *broker) sleepUntil(ctx context.Context, t time.Time) bool {
	d := min(time.Until(t), b.pace+b.lag)
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-b.after(d):
		return true
	}
}

// appendPending appends the lines that wait for the reader, with one script, and ends
// their wait with its outcome.
func (b *broker) appendPending(ctx context.Context) {
	b.mu.Lock()
	lines := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(lines) > 0 {
		b.appended(lines, appendLines.Run(ctx, b.rdb, nil, lineArgs(b.history, lines)...))
	}
}

// lineArgs returns the ARGV of appendLines for the lines.
func lineArgs(history int64, lines []*line) []any {
	args := make([]any, 0, 1+5*len(lines))
	args = append(args, history)
	for _, l := range lines {
		args = append(args, l.room, l.epoch, l.name, l.text, l.conn)
	}
	return args
}

// appended ends the wait of the lines with the outcome of appendLines.
func (b *broker) appended(lines []*line, cmd *redis.Cmd) {
	added, err := cmd.StringSlice()
	if err == nil && len(added) != len(lines) {
		err = fmt.Errorf("%d lines appended of %d", len(added), len(lines))
	}
	for i, l := range lines {
		switch {
		case err != nil:
			l.done <- err
		case added[i] == "":
			l.done <- errNewLife
		default:
			l.done <- nil
		}
	}
}

// readOnce reads the events of the rooms and delivers them. With no line waiting for
// the next tick, it waits up to a second for events, and a line said meanwhile is
// appended at once and wakes it.
func (b *broker) readOnce(ctx context.Context) error {
	b.mu.Lock()
	wait := len(b.pending) == 0
	b.pacing = !wait
	streams := []string{wakeKey + b.node}
	ids := []string{b.wakeID}
	for name, r := range b.rooms {
		r.mu.Lock()
		streams = append(streams, logKey+name)
		ids = append(ids, "0-"+strconv.FormatInt(r.last, 10))
		r.mu.Unlock()
	}
	b.mu.Unlock()

	read := &redis.XReadArgs{Streams: append(streams, ids...), Block: time.Second, Count: 1000}
	if !wait {
		read.Block = -1
	}
	res, err := b.rdb.XRead(ctx, read).Result()
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
		if r != nil && len(s.Messages) > 0 {
			r.deliver(s.Messages, b.droppedSince(ctx, r, s.Messages[0]))
		}
	}
	return nil
}

// droppedSince returns the newest message of r dropped from its stream before the
// reader delivered it, given the first entry it read next: a node whose reader fell
// behind the history by more than the stream keeps (it was stalled, or Redis out of
// reach) has members who missed those lines for good. It returns 0 if none was.
func (b *broker) droppedSince(ctx context.Context, r *room, first redis.XMessage) int64 {
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	if seq(first.ID) <= last+1 {
		return 0 // no hole
	}
	// A hole: entries were dropped, joins and leaves or lines.
	d, err := b.rdb.Get(ctx, droppedKey+r.name).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		log.Printf("reading what %s dropped: %v", r.name, err)
	}
	if n := seq(d); n > last {
		return n
	}
	return 0
}

// deliver hands the entries to the members, each encoded once, in order, skipping
// those already delivered. Members that had not had messages up to dropped, which are
// lost, are told of the gap first. Each member is handed all its events in a row, so
// that its Conn finds them queued together and may send them in one write.
func (r *room) deliver(msgs []redis.XMessage, dropped int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gap *websocket.PreparedMessage
	if dropped > r.last {
		gap = chat.Encode(chat.Event{Type: "gap"})
	}
	type event struct {
		n     int64
		from  string // the member it is about, but for messages
		coded *websocket.PreparedMessage
	}
	evs := make([]event, 0, len(msgs))
	for _, x := range msgs {
		n := seq(x.ID)
		if n <= r.last {
			continue
		}
		r.last = n
		ev := event{n: n, coded: encode(n, x)}
		if x.Values["t"] != "message" {
			ev.from, _ = x.Values["c"].(string)
		}
		evs = append(evs, ev)
	}
	for m, me := range r.members {
		if gap != nil && me.after < dropped {
			m.Deliver(gap)
		}
		for _, ev := range evs {
			// A member is not told of its own join, nor of its own leave, which the others
			// see when its node is found dead while it lives. A member that cannot take
			// the event has been dropped, and leaves the room when its connection ends.
			if ev.n > me.after && ev.from != me.id {
				m.Deliver(ev.coded)
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
// reconnect are told of the gap.
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
			// Only those still there: a node found dead puts its members back itself, and
			// says they join (sayAlive).
			key, z := hereKey+name, redis.Z{Score: until, Member: me.id + "/" + m.Name()}
			cmds = append(cmds, func(p redis.Pipeliner) { p.ZAddXX(ctx, key, z) })
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

// keepAlive says every beat that the node is alive, and takes the members of nodes found
// dead out of their rooms, until ctx ends.
func (b *broker) keepAlive(ctx context.Context) {
	t := time.NewTicker(b.beat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.sayAlive(ctx)
		b.reap(ctx)
	}
}

// sayAlive renews the node's chat:node key, and puts it in chat:nodes. A node that finds
// itself out of chat:nodes after it had been in was found dead by another (it could not
// reach Redis for deadBeats beats), and its members were said to have left: they join
// again.
func (b *broker) sayAlive(ctx context.Context) {
	var added *redis.IntCmd
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, nodeKey+b.node, 1, deadBeats*b.beat)
		added = p.SAdd(ctx, nodesKey, b.node)
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			log.Printf("saying the node is alive: %v", err)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	wasAlive := b.alive
	b.alive = true
	if added.Val() == 0 || !wasAlive {
		return
	}
	log.Printf("this node was found dead: its members join their rooms again")
	until := strconv.FormatInt(time.Now().Add(presenceTTL).UnixMilli(), 10)
	for name, r := range b.rooms {
		r.mu.Lock()
		args := []any{r.epoch, b.history, name, until}
		for m, me := range r.members {
			args = append(args, me.id, m.Name())
		}
		r.mu.Unlock()
		keys := []string{epochKey + name, hereKey + name, logKey + name, roomsKey + b.node}
		if err := rejoin.Run(ctx, b.rdb, keys, args...).Err(); err != nil {
			log.Printf("joining %s again: %v", name, err)
		}
	}
}

// rejoin puts the members of a node found dead back in a room, unless the room has
// started another life: each that is not in its presence is put in and joins again,
// and the room is one of the node's again.
var rejoin = redis.NewScript(appendLua + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SADD', KEYS[4], ARGV[3])
local n = 0
for i = 5, #ARGV, 2 do
  if redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[i] .. '/' .. ARGV[i + 1]) == 1 then
    append(ARGV[3], ARGV[2], 'join', ARGV[i + 1], '', ARGV[i])
    n = n + 1
  end
end
return n
`)

// reap takes the members of the nodes found dead out of their rooms, telling the others.
func (b *broker) reap(ctx context.Context) {
	n, err := reapNodes.Run(ctx, b.rdb, []string{nodesKey}, b.history).Int()
	switch {
	case err != nil && ctx.Err() == nil:
		log.Printf("looking for dead nodes: %v", err)
	case n > 0:
		log.Printf("%d nodes found dead: their members have left their rooms", n)
	}
}

// sayGone takes the node out of chat:nodes once its members have left, so that no other
// node looks for them.
func (b *broker) sayGone(ctx context.Context) {
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, nodesKey, b.node)
		p.Del(ctx, nodeKey+b.node, roomsKey+b.node)
		return nil
	})
	if err != nil {
		log.Printf("saying the node is gone: %v", err)
	}
}
