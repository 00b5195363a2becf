package websocket_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/hybi/websocket"
)

// A server broadcasting to its clients: each message is prepared once and handed to
// every Conn with Send, which never waits for a client. A client too slow to keep up is
// closed with 1008 by its Conn, and its failed Send tells the server to forget it.
func ExampleConn_Send() {
	var (
		mu      sync.Mutex
		clients = map[*websocket.Conn]bool{}
		joined  = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{MaxBuffered: 256 << 10})
		if err != nil {
			return
		}
		defer c.CloseNow()
		mu.Lock()
		clients[c] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(clients, c)
			mu.Unlock()
		}()
		joined <- struct{}{}
		// Read until the client goes: this answers its pings and sees its close.
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	broadcast := func(text string) {
		m, err := websocket.NewPreparedMessage(websocket.MessageText, []byte(text))
		if err != nil {
			fmt.Println(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for c := range clients {
			if err := c.Send(m); err != nil {
				delete(clients, c) // too slow, or gone
			}
		}
	}

	ctx := context.Background()
	var conns []*websocket.Conn
	for range 3 {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		<-joined
		conns = append(conns, c)
	}
	broadcast("hello, everyone")
	broadcast("goodbye")
	for i, c := range conns {
		for range 2 {
			_, msg, err := c.Read(ctx)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("client %d: %s\n", i, msg)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	// Output:
	// client 0: hello, everyone
	// client 0: goodbye
	// client 1: hello, everyone
	// client 1: goodbye
	// client 2: hello, everyone
	// client 2: goodbye
}
