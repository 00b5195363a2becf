package websocket_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/hybi/websocket"
)

// A byte stream through a WebSocket: the server echoes with io.Copy, as it would over
// TCP.
func ExampleNetConn() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		stream := websocket.NetConn(c, websocket.MessageBinary)
		defer stream.Close()
		io.Copy(stream, stream) // until the client closes, which reads as io.EOF
	}))
	defer srv.Close()

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := websocket.NetConn(c, websocket.MessageBinary)
	fmt.Fprint(stream, "hello, ")
	fmt.Fprint(stream, "stream")
	buf := make([]byte, len("hello, stream"))
	if _, err := io.ReadFull(stream, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", buf)
	fmt.Println(stream.Close())
	// Output:
	// hello, stream
	// <nil>
}

// Closing every connection a server accepted, with 1001, when it shuts down.
func ExampleGroup_Shutdown() {
	var conns websocket.Group
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Group: &conns})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Write(r.Context(), websocket.MessageText, []byte("welcome"))
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return // Shutdown closed the Conn
			}
		}
	}))
	defer srv.Close()
	// A server started with ListenAndServe starts it with its own shutdown:
	//	srv.RegisterOnShutdown(func() { conns.Shutdown(context.Background()) })

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, msg, _ := c.Read(context.Background()) // the Conn is in the group by now
	fmt.Printf("%s\n", msg)

	shut := make(chan error)
	go func() { shut <- conns.Shutdown(context.Background()) }()
	_, _, err = c.Read(context.Background())
	fmt.Println(websocket.CloseStatus(err))
	fmt.Println(<-shut)
	// Output:
	// welcome
	// going away
	// <nil>
}
