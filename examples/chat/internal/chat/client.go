package chat

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hybi/websocket"
)

// client is one connection in a room. Its events are handed to its Conn with Send, which
// queues them and never waits: a slow client never holds up the room.
type client struct {
	name string
	conn *websocket.Conn

	// dropped is closed when the server ends the connection, with code and reason.
	dropped  chan struct{}
	dropOnce sync.Once
	code     websocket.StatusCode
	reason   string

	limit limiter // how fast it may send; only its reader uses it
}

// limiter is a token bucket: it lets burst lines through at once, then rate a second.
type limiter struct {
	rate, burst, tokens float64
	last                time.Time
}

// allow reports whether one more line may go through at now. A rate of 0 lets every
// line through.
func (l *limiter) allow(now time.Time) bool {
	if l.rate == 0 {
		return true
	}
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// parseJoin reads and checks the query of /ws: room (default lobby), name, and, from a
// client that reconnects, epoch and after.
func parseJoin(r *http.Request) (JoinRequest, error) {
	q := r.URL.Query()
	j := JoinRequest{Room: q.Get("room"), Name: q.Get("name"), Epoch: q.Get("epoch")}
	if j.Room == "" {
		j.Room = "lobby"
	}
	if err := checkName("room", j.Room); err != nil {
		return j, err
	}
	if err := checkName("name", j.Name); err != nil {
		return j, err
	}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return j, fmt.Errorf("after is %q, not a message number", s)
		}
		j.After = n
	}
	return j, nil
}

// checkName checks a name or a room's name: 1 to 32 bytes of UTF-8 text, no control
// characters, not only spaces.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is missing", what)
	case len(s) > maxName:
		return fmt.Errorf("%s is longer than %d bytes", what, maxName)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", what)
	}
	blank := true
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s has a control character", what)
		}
		blank = blank && unicode.IsSpace(r)
	}
	if blank {
		return fmt.Errorf("%s is blank", what)
	}
	return nil
}

// serveWS serves one chat connection: GET /ws?room=R&name=N[&epoch=E&after=ID].
func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	j, err := parseJoin(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !h.enter() {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.active.Done()

	// The Group closes the connection with 1001 when the hub shuts down. MaxBuffered is
	// how far behind the client may fall before its Conn closes it with 1008. The Conn
	// pings a client that has been quiet for PingEvery, and closes the connection if
	// nothing comes back within PongWithin: the peer or the network is gone, and without
	// pings the server would learn it only when the kernel gives up on a write.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Group:        &h.group,
		MaxBuffered:  h.cfg.Queue,
		PingInterval: h.cfg.PingEvery,
		PingTimeout:  h.cfg.PongWithin,
	})
	if err != nil {
		return // Accept has answered with an HTTP error
	}
	defer conn.CloseNow()
	conn.SetReadLimit(MaxText)

	c := newClient(j.Name, conn, h.cfg)
	if err := h.broker.Join(r.Context(), j, c); err != nil {
		log.Printf("%s could not join %s: %v", c.name, j.Room, err)
		conn.Close(websocket.StatusTryAgainLater, "the rooms are out of reach")
		return
	}
	err = c.readLoop(h.broker, j.Room)
	h.broker.Leave(j.Room, c)
	// Closes the connection with the code and reason of the drop. If
	// the peer closed, or the connection failed or was closed by the Group or for being
	// too slow, the Conn is closed already and this sends nothing.
	c.drop(websocket.StatusNormalClosure, "")
	c.closeDropped()
	log.Printf("%s left %s: %v", c.name, j.Room, err)
}

func newClient(name string, conn *websocket.Conn, cfg Config) *client {
	return &client{
		name:    name,
		conn:    conn,
		dropped: make(chan struct{}),
		limit:   limiter{rate: cfg.Rate, burst: float64(cfg.Burst), tokens: float64(cfg.Burst), last: time.Now()},
	}
}

// Name is the name c joined with.
func (c *client) Name() string { return c.name }

// Deliver queues ev for c, and reports whether it could. A client that has fallen more
// than the hub's queue behind is too slow: its Conn drops what waits, closes with 1008
// (policy violation), and Send fails. Waiting for it would hold up the whole room.
func (c *client) Deliver(ev *websocket.PreparedMessage) bool {
	return c.conn.Send(ev) == nil
}

// End drops c with code and reason, and closes its connection, which ends its reader.
func (c *client) End(code websocket.StatusCode, reason string) {
	c.drop(code, reason)
	go c.conn.Close(c.code, c.reason)
}

// drop ends the connection from the server's side: closeDropped then sends a close frame
// with code and reason. The first drop decides them.
func (c *client) drop(code websocket.StatusCode, reason string) {
	c.dropOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.dropped)
	})
}

var (
	errBinary  = errors.New("a binary message: the chat takes text only")
	errTooFast = errors.New("more chat lines than the room allows")
)

// readLoop publishes every chat line c sends until the connection ends, and returns
// the error that ended it.
func (c *client) readLoop(b Broker, room string) error {
	ctx := context.Background() // the reader stops when the connection closes
	for {
		typ, p, err := c.conn.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			c.drop(websocket.StatusUnsupportedData, "text messages only")
			return errBinary
		}
		if !c.limit.allow(time.Now()) {
			// One client must not flood the room, nor push the others out of its queues.
			c.drop(websocket.StatusPolicyViolation, "too many messages")
			return errTooFast
		}
		if len(p) > 0 {
			if err := b.Publish(ctx, room, c, string(p)); err != nil {
				// The line is lost, and the client is told: it may send it again.
				c.Deliver(Encode(Event{Type: "notice", Text: "your line was not sent: the room is out of reach"}))
				log.Printf("%s: %v", c.name, err)
			}
		}
	}
}

// closeDropped runs the closing handshake with the code and reason of the drop. It
// returns at once if the connection is closed already.
func (c *client) closeDropped() {
	<-c.dropped
	c.conn.Close(c.code, c.reason)
}
