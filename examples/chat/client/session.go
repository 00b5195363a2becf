package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hybi/websocket"
)

// event is what the chat server sends; see the chat command's documentation.
type event struct {
	Type    string
	ID      int64
	Name    string
	Text    string
	Epoch   string
	Members []string
}

// session is one user in one room, over as many connections as it takes.
type session struct {
	url, room, name string                          // url may be several, separated by commas, tried in turn
	out             io.Writer                       // where events are printed, a line each
	backoff         func(attempt int) time.Duration // how long to wait before reconnection attempt+1

	// What the session has seen of the room, sent again on reconnection so that the
	// server replays what came after. Only the reader of the current connection changes
	// them.
	epoch    string
	after    int64
	welcomed bool // the current connection had its welcome

	tries int // connections attempted: which URL the next one goes to
}

// errRefused wraps the error of a handshake that the server refused with 400: the name
// or the room is not one it takes, and trying again will not change that.
var errRefused = errors.New("the server refused to let us in")

// run keeps the session connected, sending every line from lines, until ctx ends, lines
// is closed, or the server refuses the session. It returns nil in the first two cases.
func (s *session) run(ctx context.Context, lines <-chan string) error {
	for attempt := 0; ; attempt++ {
		done, err := s.connect(ctx, lines)
		switch {
		case done || ctx.Err() != nil:
			return nil
		case errors.Is(err, errRefused):
			return err
		case s.welcomed:
			attempt = 0
		}
		d := s.backoff(attempt)
		fmt.Fprintf(s.out, "* disconnected (%v), reconnecting in %.1f s\n", err, d.Seconds())
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil
		}
	}
}

// backoff doubles the wait from half a second up to 10 seconds, with jitter, so that the
// clients of a restarted server do not all come back at once.
func backoff(attempt int) time.Duration {
	d := 10 * time.Second
	if attempt < 5 {
		d = 500 * time.Millisecond << attempt
	}
	return d/2 + rand.N(d/2)
}

// connect makes one connection and serves it until it ends. done reports that the
// session is over: lines was closed or ctx ended, and the connection was closed
// normally.
func (s *session) connect(ctx context.Context, lines <-chan string) (done bool, err error) {
	q := url.Values{"room": {s.room}, "name": {s.name}}
	if s.epoch != "" {
		q.Set("epoch", s.epoch)
		q.Set("after", strconv.FormatInt(s.after, 10))
	}
	s.welcomed = false
	// After a failure, the next server: with several nodes of one chat, the session
	// resumes on another when its own goes away.
	urls := strings.Split(s.url, ",")
	u := urls[s.tries%len(urls)]
	s.tries++
	c, resp, err := websocket.Dial(ctx, u+"?"+q.Encode(), nil)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusBadRequest {
			return false, fmt.Errorf("%w: %v", errRefused, err)
		}
		return false, err
	}
	defer c.CloseNow()

	read := make(chan error, 1)
	go func() { read <- s.read(c) }()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				c.Close(websocket.StatusNormalClosure, "bye")
				<-read
				return true, nil
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			// The line shows when the server sends it back, in the room's order.
			if err := c.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
				fmt.Fprintf(s.out, "* not sent: %s\n", line)
			}
		case err := <-read:
			return false, err
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "bye")
			<-read
			return true, nil
		}
	}
}

// read prints the events of connection c until it ends, and returns the error that
// ended it.
func (s *session) read(c *websocket.Conn) error {
	for {
		_, p, err := c.Read(context.Background()) // the connection's end stops it
		if err != nil {
			return err
		}
		var ev event
		if err := json.Unmarshal(p, &ev); err != nil {
			c.Close(websocket.StatusUnsupportedData, "not a chat event")
			return fmt.Errorf("not a chat event: %q", p)
		}
		s.show(ev)
	}
}

// show prints ev, and keeps what a reconnection needs.
func (s *session) show(ev event) {
	switch ev.Type {
	case "welcome":
		if ev.Epoch != s.epoch {
			// A new life of the room: its IDs start again from 1.
			s.epoch, s.after = ev.Epoch, 0
		}
		s.welcomed = true
		fmt.Fprintf(s.out, "* in %s with %s\n", s.room, strings.Join(ev.Members, ", "))
	case "gap":
		fmt.Fprintln(s.out, "* some messages were missed")
	case "notice":
		fmt.Fprintf(s.out, "* %s\n", ev.Text)
	case "message":
		if ev.ID <= s.after {
			return // seen before the reconnection
		}
		s.after = ev.ID
		fmt.Fprintf(s.out, "%s: %s\n", ev.Name, ev.Text)
	case "join":
		fmt.Fprintf(s.out, "* %s joined\n", ev.Name)
	case "leave":
		fmt.Fprintf(s.out, "* %s left\n", ev.Name)
	}
}
