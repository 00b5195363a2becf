package websocket_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/hybi/websocket"
)

// An echo server that holds no goroutine for a connection between its messages: the
// handler parks the Conn and returns, and each message wakes it.
func ExampleConn_Park() {
	var echo func(c *websocket.Conn)
	echo = func(c *websocket.Conn) {
		ctx := context.Background()
		typ, msg, err := c.Read(ctx)
		if err != nil {
			c.CloseNow() // the peer closed, or broke the protocol
			return
		}
		if c.Write(ctx, typ, msg) != nil || c.Park(echo) != nil {
			c.CloseNow()
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		if c.Park(echo) != nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, msg := range []string{"first", "second"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			fmt.Println(err)
			return
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s\n", got)
	}
	fmt.Println(c.Close(websocket.StatusNormalClosure, "done"))
	// Output:
	// first
	// second
	// <nil>
}
