package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/hybi/websocket"
)

// An echo server and a client that talks to it.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	typ, msg, err := c.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v: %s\n", typ, msg)
	fmt.Println(c.Close(websocket.StatusNormalClosure, "done"))
	// Output:
	// text: hello
	// <nil>
}

// Streaming a message with Writer and reading it with Reader, without holding it whole.
func ExampleConn_Writer() {
	received := make(chan string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, rd, err := c.Reader(r.Context())
		if err != nil {
			return
		}
		b, _ := io.ReadAll(rd)
		received <- fmt.Sprintf("%d bytes", len(b))
		c.Read(r.Context()) // until the client closes
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 10 {
		w.Write(make([]byte, 1000)) // each full 4 KiB buffer goes out as a frame
	}
	w.Close()
	fmt.Println(<-received)
	c.Close(websocket.StatusNormalClosure, "")
	// Output:
	// 10000 bytes
}

// What a reader sees when the peer closes.
func ExampleCloseStatus() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(websocket.StatusGoingAway, "restarting")
	}))
	defer srv.Close()

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = c.Read(context.Background())
	fmt.Println(websocket.CloseStatus(err))
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Reason)
	}
	fmt.Println(errors.Is(err, net.ErrClosed))
	// Output:
	// going away
	// restarting
	// true
}
