package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hybi/websocket"
)

// A server that only writes: keepalive finds a client that went away without a word,
// and CloseRead handles the pings, pongs and close frame that arrive meanwhile.
func ExampleConn_CloseRead() {
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			PingInterval: 30 * time.Second, // under the 60 s idle timeout of common proxies
			PingTimeout:  10 * time.Second,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context()) // ends when the Conn does
		for i := 1; i <= 3; i++ {
			if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "update %d", i)); err != nil {
				break
			}
		}
		<-ctx.Done()
		err = context.Cause(ctx)
		if errors.Is(err, websocket.ErrKeepaliveTimeout) {
			err = errors.New("client gone")
		}
		ended <- err
	}))
	defer srv.Close()

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		_, msg, err := c.Read(context.Background())
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s\n", msg)
	}
	fmt.Println(c.Close(websocket.StatusNormalClosure, "done"))
	fmt.Println("server saw:", websocket.CloseStatus(<-ended))
	// Output:
	// update 1
	// update 2
	// update 3
	// <nil>
	// server saw: normal closure
}
