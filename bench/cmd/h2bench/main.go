// Command h2bench measures what a WebSocket over HTTP/2 (RFC 8441) costs the server,
// against one on a new TLS connection upgraded over HTTP/1.1:
//
//	go run ./cmd/h2bench [-n 1000] [-echoes 20000]
//
// It starts the server as a child process of its own, with GODEBUG=http2xconnect=1 and a
// throwaway ECDSA P-256 certificate: this module's Accept behind net/http's server, which
// echoes every message with Read and Write. It then opens -n WebSockets one after the
// other, each closed with a closing handshake, first as new streams of one HTTP/2
// connection, then each on a new TLS connection (a full handshake, no session
// resumption) with an HTTP/1.1 upgrade; then it echoes -echoes messages of 64 bytes on
// one WebSocket of each kind. It prints, for each, the rate and the server's CPU time
// (user and system, from /proc/PID/stat) per operation. The HTTP/2 client is net/http's,
// reached through Transport.TLSNextProto, since Transport.RoundTrip refuses the
// ":protocol" header; gobwas/ws frames the messages on it. The HTTP/1.1 client is Dial.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/hybi/websocket"
)

const serverEnv = "H2BENCH_SERVER"

func main() {
	if os.Getenv(serverEnv) == "1" {
		serve()
		return
	}
	n := flag.Int("n", 1000, "WebSockets to open of each kind")
	echoes := flag.Int("echoes", 20000, "64-byte round trips on one WebSocket of each kind")
	flag.Parse()

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serverEnv+"=1", "GODEBUG=http2xconnect=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "addr="))
	pid := cmd.Process.Pid

	h2 := dialH2(addr)
	ctx := context.Background()
	tlsConfig := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	url := "wss://" + addr + "/"

	fmt.Printf("%-32s %12s %16s\n", "", "per second", "server CPU/op")
	measure("open+close, HTTP/2 stream", pid, *n, func() {
		rw := h2.open()
		closeH2(rw)
	})
	measure("open+close, TLS+HTTP/1.1", pid, *n, func() {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{TLSConfig: tlsConfig})
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			log.Fatal(err)
		}
	})
	msg := make([]byte, 64)
	rw := h2.open()
	measure("echo 64 B, HTTP/2 stream", pid, *echoes, func() {
		if err := wsutil.WriteClientMessage(rw, ws.OpBinary, msg); err != nil {
			log.Fatal(err)
		}
		if _, _, err := wsutil.ReadServerData(rw); err != nil {
			log.Fatal(err)
		}
	})
	closeH2(rw)
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{TLSConfig: tlsConfig})
	if err != nil {
		log.Fatal(err)
	}
	measure("echo 64 B, TLS+HTTP/1.1", pid, *echoes, func() {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			log.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			log.Fatal(err)
		}
	})
	c.Close(websocket.StatusNormalClosure, "")
}

// measure runs op n times and prints the rate and the server's CPU time per op.
func measure(name string, pid, n int, op func()) {
	cpu0 := serverCPU(pid)
	start := time.Now()
	for range n {
		op()
	}
	wall := time.Since(start)
	cpu := serverCPU(pid) - cpu0
	fmt.Printf("%-32s %12.0f %13.1f µs\n", name, float64(n)/wall.Seconds(), float64(cpu.Microseconds())/float64(n))
}

// serverCPU returns the user and system CPU time of process pid (proc(5): fields 14
// and 15 of /proc/PID/stat, in ticks of 10 ms).
func serverCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		log.Fatal(err)
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			log.Fatal(err)
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// h2Client opens WebSockets as streams of one HTTP/2 connection.
type h2Client struct {
	rt  http.RoundTripper
	url string
}

func dialH2(addr string) *h2Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	tr.CloseIdleConnections() // sets up its HTTP/2, TLSNextProto included
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		log.Fatal(err)
	}
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		log.Fatal("the server did not choose h2")
	}
	return &h2Client{rt: tr.TLSNextProto["h2"](addr, tc), url: "https://" + addr + "/"}
}

// stream is one WebSocket's stream: the response body to read, the request body to write.
type stream struct {
	io.Reader
	io.Writer
	body io.Closer
	pw   *io.PipeWriter
}

func (h *h2Client) open() *stream {
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodConnect, h.url, pr)
	if err != nil {
		log.Fatal(err)
	}
	req.Header[":protocol"] = []string{"websocket"}
	req.Header.Set("Sec-WebSocket-Version", "13")
	resp, err := h.rt.RoundTrip(req)
	if err != nil {
		log.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		log.Fatalf("extended CONNECT answered %s", resp.Status)
	}
	return &stream{Reader: resp.Body, Writer: pw, body: resp.Body, pw: pw}
}

// closeH2 runs the closing handshake and waits for the stream to end.
func closeH2(s *stream) {
	if err := ws.WriteFrame(s, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))); err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, s) // the server's close frame, then the end of the stream
	s.pw.Close()
	s.body.Close()
}

// serve runs the echo server, printing its address.
func serve() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, p, err := c.Read(context.Background())
				if err != nil {
					return
				}
				if err := c.Write(context.Background(), typ, p); err != nil {
					return
				}
			}
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	fmt.Printf("addr=%s\n", l.Addr())
	log.Fatal(srv.ServeTLS(l, "", ""))
}
