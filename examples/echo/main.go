// Command echo serves a web page that talks to a WebSocket echo endpoint.
//
//	go run ./examples/echo [-addr 127.0.0.1:8080]
//	GODEBUG=http2xconnect=1 go run ./examples/echo -tls
//
// It prints the address of the page to open. The page at / sends what is
// typed in its text area to /ws, which sends every message back with the
// same type: text stays text and binary stays binary. Messages are compressed
// (permessage-deflate) when the browser offers it, as browsers do. The page's
// buttons follow the connection: Send and Close while it is open, Reconnect once
// it has closed.
//
// With -tls, it serves HTTPS and HTTP/2 with a throwaway self-signed certificate
// made at startup (the browser warns about it once). With GODEBUG=http2xconnect=1
// as well, net/http's HTTP/2 server accepts extended CONNECT (RFC 8441), and a
// browser opens the WebSocket as one more stream of the page's HTTP/2 connection
// instead of a new TCP connection; the log says which protocol each WebSocket came
// over. The setting must be in the environment: net/http reads it at startup, and
// the go command does not know it as a //go:debug setting.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hybi/websocket"
)

//go:embed index.html
var static embed.FS

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	useTLS := flag.Bool("tls", false, "serve HTTPS and HTTP/2 with a throwaway self-signed certificate")
	flag.Parse()

	// Listen before printing, so that the printed address is the real one
	// even with port 0.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := newServer(newHandler(nil))
	if !*useTLS {
		fmt.Printf("open http://%s/\n", l.Addr())
		log.Fatal(srv.Serve(l))
	}
	if srv.TLSConfig, err = selfSigned(); err != nil {
		log.Fatal(err)
	}
	if !extendedConnect() {
		log.Print("GODEBUG=http2xconnect=1 is not set: browsers will open their WebSockets over HTTP/1.1")
	}
	fmt.Printf("open https://%s/ (the certificate is self-signed: accept the browser's warning)\n", l.Addr())
	// With certificates in TLSConfig, ServeTLS offers HTTP/2 and HTTP/1.1.
	log.Fatal(srv.ServeTLS(l, "", ""))
}

// extendedConnect reports whether net/http's HTTP/2 server accepts RFC 8441's extended
// CONNECT in this process, which it decides from GODEBUG when the process starts.
func extendedConnect() bool {
	for _, s := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if s == "http2xconnect=1" {
			return true
		}
	}
	return false
}

// selfSigned returns a TLS configuration with a certificate for localhost and the
// loopback addresses, made now and valid for a day, whose key never leaves memory.
func selfSigned() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "websocket echo example"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}

// newServer returns the HTTP server for h, with limits on the request head that
// net/http does not set by itself.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h,
		// Without it, a client sending its handshake a byte a second holds a goroutine
		// and a connection for as long as it likes. A handshake fits in one packet.
		ReadHeaderTimeout: 10 * time.Second,
		// A handshake is a few hundred bytes and the page's cookies; net/http would
		// take 1 MiB.
		MaxHeaderBytes: 16 << 10,
	}
}

// newHandler returns the page at / and the echo endpoint at /ws.
// If ended is not nil, it is called with the request and the error that ended
// each echo connection, which carries the peer's close status when the peer
// closed.
func newHandler(ended func(*http.Request, error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	// Over HTTP/1.1 a WebSocket opens with GET, over HTTP/2 with CONNECT (RFC 8441).
	mux.HandleFunc("CONNECT /ws", echoHandler(ended))
	mux.HandleFunc("GET /ws", echoHandler(ended))
	return mux
}

// echoHandler returns the echo endpoint's handler; see newHandler for ended.
func echoHandler(ended func(*http.Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Browsers offer permessage-deflate; taking it up costs CPU and, since they
		// compress against their earlier messages, 32 KiB per connection.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Compression: websocket.CompressionContextTakeover})
		if err != nil {
			// Accept has already answered the request with an HTTP error.
			log.Printf("%s: %v", r.RemoteAddr, err)
			return
		}
		defer c.CloseNow()

		// Over HTTP/2 the WebSocket is a stream that ends when this handler returns, so
		// the echo runs here, as it may over HTTP/1.1 too.
		log.Printf("%s: connected over %s", r.RemoteAddr, r.Proto)
		err = echo(r.Context(), c)
		// When the peer closed, err names its close status and reason.
		log.Printf("%s: %v", r.RemoteAddr, err)
		if ended != nil {
			ended(r, err)
		}
	}
}

// echo sends every message it reads back to the peer with the same type,
// streaming it rather than holding it whole in memory. It returns the error
// that ended the connection: when the peer closes, that error carries the
// peer's close status.
func echo(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return err
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
}
