// Package websocket implements the WebSocket protocol of RFC 6455, server and client,
// on the standard library alone.
//
// A server upgrades an HTTP request with Accept; a client connects with Dial. Both give
// a *Conn, which sends and receives whole messages (Read, Write) or streams them
// (Reader, Writer), answers pings, and closes with a status code (Close):
//
//	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
//		c, err := websocket.Accept(w, r, nil)
//		if err != nil {
//			return // Accept has answered the request already
//		}
//		defer c.CloseNow()
//		for {
//			typ, msg, err := c.Read(r.Context())
//			if err != nil {
//				return
//			}
//			if err := c.Write(r.Context(), typ, msg); err != nil {
//				return
//			}
//		}
//	})
//
// # Concurrency
//
// Any number of goroutines may call Write, Writer, Ping, Close and CloseNow at once.
// Messages are sent whole, one after the other: a Writer holds back other messages until
// it is closed, while control frames (pongs, the close frame) can still go out between
// its frames. Reading is for one goroutine at a time; Read and Reader called while
// another goroutine reads wait for their turn, or for their context.
//
// Control frames arrive in the middle of the data, so they are only handled while some
// goroutine reads: pings are answered, pongs wake Ping and the peer's close frame ends
// the connection from within a read. A program that only writes calls CloseRead, which
// reads in a goroutine of its own. Answering a ping never makes the reader wait for a
// frame being written: the pong goes out right after that frame, so a write blocked by
// a peer that does not read holds up neither reading nor the pong. A pong answers to the
// context of the call that writes it, the read's or the write's, so a peer that pings
// without reading cannot hold a call past its context either; a pong cut short that way
// goes out after the next frame written.
//
// Contexts bound a single call, and every call checks its context first: one already
// done fails the call even when it would not block. What a context that ends a call
// costs depends on how far the message got:
//
//   - Before any byte of a message was sent or consumed, the call returns ctx.Err() and
//     the Conn stays usable. (Over TLS, a write cut short while it waits for the peer
//     closes the Conn: crypto/tls fails every write after one that timed out.)
//   - A write cut once part of its message is on the wire closes the Conn: RFC 6455 §5.4
//     lets no other message begin before that one ends, and it cannot end now. This
//     holds for a Writer whose later frame fails, and for a compressed Write that takes
//     several frames.
//   - A Read cut in the middle of a message keeps what arrived in the Conn: the next
//     Read resumes the message, or the next Reader returns it from its start. A message
//     reader cut short returns ctx.Err() and stays at its place, but its context is
//     done: the next Read or Reader discards the rest of its message. A compressed
//     message cut short closes the Conn, since its decompressor cannot resume.
//
// A Writer or message reader used after its message ended returns an error and touches
// nothing: each message gets one of its own. A context never closes the connection on
// its own.
//
// # Closing
//
// Close runs the closing handshake of RFC 6455 §7: it sends a close frame with a status
// code and reason, waits up to 5 seconds for the peer's close frame, and closes the TCP
// connection. When the peer closes first, the read in progress echoes its status code,
// closes the connection (a client waits up to 5 seconds for the server to do it first,
// as §7.1.1 asks) and returns an error whose status CloseStatus reports. CloseNow drops
// the connection without a handshake. Once a Conn is closed, every call returns an error
// satisfying errors.Is(err, net.ErrClosed); errors.As finds the cause in it: the peer's
// *CloseError, the *ProtocolError the peer committed, or the I/O error.
//
// A peer that breaks the protocol is sent the matching close code before the connection
// is dropped: 1002 for a malformed frame, 1007 for text that is not UTF-8, 1009 for a
// message over the read limit. Text is checked as it arrives, so a bad message fails at
// its first bad byte.
//
// # Limits
//
// A Conn accepts messages up to 1 MiB; SetReadLimit changes that. The limit is checked
// against each frame's announced length before its payload is read; memory is taken as
// the payload arrives, never for the length a frame only announces. Control
// frames carry at most 125 bytes. The opening handshake is bounded by the HTTP server's
// limits on the server side and by the context given to Dial on the client side.
//
// Those server limits are net/http's, and its defaults are loose: an http.Server without
// ReadHeaderTimeout (or ReadTimeout) waits for a request head as long as the client keeps
// sending it, so a handshake sent a byte a second holds a goroutine and a connection
// forever, and without MaxHeaderBytes a head may take 1 MiB. A server open to the
// Internet sets both; the examples allow 10 seconds and 16 KiB, enough for a handshake
// and a page's cookies. Accept clears the connection's deadlines, so ReadTimeout and
// WriteTimeout bound the handshake only, never the WebSocket connection after it.
//
// # Origin
//
// Browsers let any page open a WebSocket to any host, sending the page's origin in the
// Origin header (RFC 6455 §10.2). Accept refuses, with 403, a request whose Origin names
// a host other than the request's own, unless AcceptOptions.OriginPatterns lists it.
// Requests without Origin do not come from browsers and are accepted.
//
// # Buffers
//
// A Conn holds no buffer while it is idle. It reads through an 8 KiB buffer taken from a
// pool when bytes arrive; on TCP and Unix sockets it keeps it while the peer's bytes keep
// coming, gives it back as soon as a read finds the socket empty, and waits for the
// peer's next bytes without one (elsewhere, as on TLS connections, the buffer goes back
// once its bytes are consumed, and is held while a read waits). It builds the frames it sends in a 4 KiB buffer taken for the
// message and given back after it. Large payloads bypass both: a server sends them with
// one writev of header and payload, a client masks them through the buffer a piece at a
// time, never touching the caller's slice, and large reads go straight into the caller's
// slice. Read returns a new slice for each message, grown as the message arrives, and
// allocates nothing else. Reader and Writer return a small reader or writer of its own
// for each message, never reused, which come 64 to an allocation; they stream
// uncompressed messages without allocating.
//
// Each message is written with one system call when it is sent. A server whose clients
// pipeline requests can set AcceptOptions.CoalesceWrites: the answers written while more
// requests are already buffered are then held back (at most 4 KiB, in a pooled buffer)
// and leave together, before the Conn waits for more input.
//
// Accept lets go of the HTTP server's read and write buffers, but while a handler runs,
// the server still keeps about 4 KiB for the request and its goroutine. A server holding
// many mostly idle connections can return from the handler once Accept has succeeded
// and serve the Conn from a goroutine of its own, with a context of its own, since the
// request's context ends with the handler: an idle connection then costs about 6 KiB in
// all, its goroutine (which keeps Go's 2 KiB starting stack) included.
//
// # Compression
//
// A Conn compresses messages with the permessage-deflate extension (RFC 7692) when
// AcceptOptions.Compression or DialOptions.Compression asks for it and the peer agrees;
// it is off by default. Compression trades CPU for bandwidth, and mixing secrets with
// data an attacker controls in one compressed message can leak the secrets through the
// message's size (the CRIME and BREACH attacks).
//
// Each message a Conn sends is compressed on its own, with compress/flate at BestSpeed,
// except that Write sends messages under 128 bytes as they are; a Writer compresses
// whatever it is given. A compressor takes about 1.2 MB and is held only while a message
// is being sent, from a pool. When the peer asks for a window smaller than 32 KiB, the
// Conn restarts the compressor at every window's worth of input, which honours the window
// at some cost in compression; for the smallest window, 256 bytes, it codes without
// back-references at all (Huffman coding only).
//
// What the peer sends is decompressed through a decompressor taken from a pool when a
// compressed message begins and given back once it has been read or discarded: an open
// compressed message holds about 45 KiB (the decompressor's 32 KiB history, its Huffman
// tables and a 4 KiB input buffer, as measured on amd64). It cannot be given back between
// the frames of a message, since a frame may refer to the data of earlier ones and even
// finish a block they began, and compress/flate cannot set aside its state; so a peer
// that opens compressed messages and sends no more of them holds that much per
// connection until the read's context ends, which closes the Conn, or the Conn closes.
// With CompressionNoContextTakeover the peer must compress each message on its own as
// well; with CompressionContextTakeover it may refer to its earlier messages, and the
// Conn keeps the last 32 KiB (or the window the peer announced) of them, between
// messages too: 32 KiB per connection, about 77 KiB while a message is open, unless the
// peer offered client_no_context_takeover, which the server then confirms (browsers do
// not offer it; this package's Dial does). The read limit applies
// to the decompressed size of a message (its compressed size may exceed the limit by an
// eighth and 1 KiB). Data that is not valid DEFLATE fails the connection with 1007, and
// so does a message that does not end between two blocks, as RFC 7692 §7.2.1 has
// senders end one.
//
// # Streams
//
// NetConn turns a Conn into a net.Conn, for a protocol that expects a byte stream (SSH,
// a database's wire protocol, gRPC through a custom dialer): each Write is one message,
// and reads return the payloads of the messages received, in order, streamed as they
// arrive, so that a large message is never held whole. Deadlines work as on a TCP
// connection, and one that passes between two frames costs nothing but the call: clear
// it and the stream goes on. The peer's close with 1000, or with no code, reads as
// io.EOF; Close runs the closing handshake with 1000. The adapter costs about 1.4 KiB per
// connection once it has been read and written (a context per direction, which the Conn
// watches), no goroutine, and a timer for each deadline set in the future.
//
// # Shutdown
//
// http.Server.Shutdown neither closes nor waits for the connections its handlers took
// over with Accept. A Group does: name it in AcceptOptions.Group, and Group.Shutdown
// sends every Conn still open a close frame with 1001 (going away), waits for the peers'
// answers, and cuts off those that have not answered by its context's end. Registered
// with http.Server.RegisterOnShutdown, it starts with the server's shutdown. A Group
// costs a map entry per connection, about 20 bytes, and no goroutine or timer; Shutdown
// runs at most 16 goroutines while it works.
//
// # Broadcasting
//
// A server that sends one message to many connections prepares it once, with
// NewPreparedMessage: it is framed once, and compressed once for each window size its
// Conns agreed on, instead of once for every Conn. WritePrepared sends it as Write would;
// on a server that is one write of the prepared frame, with no allocation and no copy.
//
// A loop of writes, prepared or not, waits for each peer in turn, so one peer that stops
// reading stalls the others once its socket's buffers are full. Send hands a message to a
// Conn without waiting: the message is queued, and written in order while the queue is
// not empty: on a server over TCP on Linux, by a few goroutines shared by all Conns (at
// most GOMAXPROCS, running while some queue waits, never waiting for a peer); elsewhere,
// or for a peer that is behind, by a goroutine of the Conn's own. On a server, several
// messages waiting together go out in one system call. Control frames still go out between its messages, and Write, Writer
// and WritePrepared send what was queued before their own message, so that messages keep
// the order they were given in. Buffered reports the bytes waiting, as a browser's
// bufferedAmount does. A peer that lets more than MaxBuffered pile up (an option of
// Accept and Dial, 1 MiB by default) is too slow: its Send fails, what waits for it is
// dropped, and its Conn is closed with 1008 (policy violation), so that the server drops
// it and goes on, as uWebSockets' maxBackpressure does. Close sends what is queued before
// its close frame, as a browser's close() does, within its close timeout, and Send fails
// from then on; CloseNow drops it.
//
// Each name has one use: NewPreparedMessage makes a message once for many Conns,
// WritePrepared sends one and waits, Send queues one without waiting, Buffered tells how
// far behind a peer is, and MaxBuffered bounds that.
//
// A PreparedMessage holds its frame (the payload and a header of up to 10 bytes) and, once
// a Conn that compresses sends it, one compressed copy for each window size. A Conn that
// never calls Send spends 24 bytes on it. The first Send makes the Conn's queue, 192
// bytes kept while the Conn lives (about 130 more once its peer has been behind); while
// messages wait, the queue holds 8 bytes for each (the messages are shared, not copied),
// and a Conn with a goroutine of its own has a few KiB of stack until its queue is empty.
//
// # Keepalive
//
// Proxies and NATs drop connections that stay quiet for a minute or two, and a peer
// whose network vanished without closing TCP is only found by a ping it never answers.
// AcceptOptions.PingInterval and DialOptions.PingInterval turn keepalive on: once nothing
// has arrived from the peer for the interval, the Conn sends a ping, and if nothing
// arrives within PingTimeout after it (by default, the interval again), the Conn is
// closed without a close frame; its calls then return an error matching both
// ErrKeepaliveTimeout and net.ErrClosed, which a peer's close never matches. A peer that
// keeps sending is never pinged: any frame counts as a sign of life, not only the pong.
// Conn.RTT reports the round trip of the last keepalive ping answered. A ping never waits
// behind a frame being written: it is tried again an interval later, and a write stuck on
// a dead peer ends with its own context. A 30-second interval keeps connections open
// through proxies that drop them after 60 idle seconds, a common default; browsers answer
// pings without any code on the page.
//
// The peer's answers are only seen while some goroutine reads the Conn (Read, Reader,
// NetConn's Read), or CloseRead's goroutine for a program that only writes: a Conn that
// no goroutine reads for the interval and the timeout is closed as if its peer were gone.
// A reader that waits for the next message handles the pong as it arrives.
//
// Keepalive costs a Conn about 240 bytes and a timer, and no goroutine: the timer's
// function runs when it is due, on a goroutine that lives while it sends the ping, whose
// write is bounded by the timeout. Each read of the socket that returns bytes reads the
// clock: about 40 ns, some 200 instructions, which a 64-byte echo feels as 3 to 4 % more
// work. Off, it costs a Conn one pointer, and reads one nil check. CloseRead costs a
// goroutine, a few KiB of stack, for as long as the Conn is open.
//
// # HTTP/2
//
// Accept also serves WebSockets over HTTP/2 (RFC 8441). A browser opens its WebSocket as
// one more stream of the page's HTTP/2 connection, instead of a new TCP connection, when
// the server announced SETTINGS_ENABLE_CONNECT_PROTOCOL; the request then arrives as
// CONNECT on HTTP/2 with the pseudo-header ":protocol: websocket" (net/http puts it in
// r.Header under that name). Accept checks Sec-WebSocket-Version and the Origin, chooses
// the subprotocol and compression as over HTTP/1.1, answers 200, and runs the Conn on the
// request body and the response, flushing each write: a frame (a frame of more than 4 KiB
// as its header, then its payload) or a batch of coalesced frames. Everything else works
// as on a hijacked connection: limits, compression, pings, the closing handshake,
// concurrent writers, contexts. A ServeMux pattern that names a method must name CONNECT
// too: "GET /ws" and "CONNECT /ws".
//
// net/http's HTTP/2 server (Go 1.24 and later) announces the setting only when the
// process starts with GODEBUG=http2xconnect=1 in its environment: net/http reads the
// variable itself at startup, so neither os.Setenv in main nor a "//go:debug
// http2xconnect=1" line works (the go command refuses it as an unknown setting). Without
// it nothing changes: browsers open their WebSockets over HTTP/1.1, to the same handler.
// Once net/http has a server setting for it (an EnableConnectProtocol field in
// http.HTTP2Config has been proposed), set that instead; Accept needs nothing more.
//
// The stream ends when the handler returns, unlike a hijacked connection, which outlives
// it: the handler must not return while the Conn is in use. Serve the Conn in the
// handler, as in the example above, or make the handler wait until the Conn is closed
// (Close, CloseNow, or a read that failed). Once the request's context is done, which
// net/http does when the stream is reset or the handler returns, the Conn writes nothing
// more to the ResponseWriter; but a write racing the handler's return can still reach a
// ResponseWriter that net/http has finished with, which it does not allow. For the same
// reason http.Server.Shutdown waits for these handlers, as it does not for hijacked
// connections: a Group (see Shutdown) closes the Conns and so lets them return. The
// server's ReadTimeout and WriteTimeout do not cut the stream: Accept clears them.
//
// What it saves: the TCP and TLS handshakes of each WebSocket, and a connection per
// WebSocket; a browser needs one connection per origin for its pages and WebSockets
// alike. Opening and closing a WebSocket on an established connection cost the server
// 0.2 ms of CPU, against 0.56 ms with a new TLS connection (ECDSA P-256, no session
// resumption) and an HTTP/1.1 upgrade (bench/cmd/h2bench, loopback). What it costs:
// every frame goes through net/http's HTTP/2 server, which hands it between goroutines
// both ways and writes each flush from a goroutine of its own, and reads wait through a
// goroutine that a Conn keeps from its first read until it closes (a few KiB of stack),
// so that a context can end a read and leave the stream usable. A 64-byte echo cost the
// server 56 µs of CPU against 13 µs over TLS and HTTP/1.1, of which Accept's adapter
// between the Conn and the stream takes under a tenth.
//
// All streams share one TCP connection: a lost packet holds up every WebSocket and
// request on it (head-of-line blocking). Each WebSocket holds one of the connection's
// concurrent streams (http.HTTP2Config.MaxConcurrentStreams, 250 by default). net/http
// keeps what a peer sent until the Conn reads it, up to the stream's receive window
// (MaxReceiveBufferPerStream, 1 MiB by default), and counts it against the connection's
// window (MaxReceiveBufferPerConnection, also 1 MiB): one WebSocket whose reader falls
// behind can then stop the peer sending on every stream of the connection. Make the
// connection's window a few times the stream's. A write that its context or deadline
// cuts short resets the stream, ending the Conn, as over TLS; a read cut short can be
// resumed, as over TCP. CloseNow cannot send messages held by CoalesceWrites without
// waiting, and drops them.
//
// Dial speaks HTTP/1.1 only. Go's HTTP/2 client can send an extended CONNECT (with
// ":protocol" in Request.Header, once the server's settings allow it), but
// http.Transport's RoundTrip refuses that header name before its HTTP/2 code sees it, so
// a WebSocket cannot be opened on a connection the Transport shares. (This package's
// tests reach that code through the RoundTripper that Transport.TLSNextProto["h2"] makes
// of a TLS connection dialed by hand.)
//
// # Many idle connections
//
// A Conn served by a goroutine that waits in Read costs that goroutine's stack as well
// as the Conn. A server holding many connections that are idle most of the time can
// park each Conn between messages instead: Park returns at once, and the function given
// to it is called on another goroutine when the next message begins to arrive or the
// connection ends; it reads as usual and parks the Conn again. Pings and the peer's
// close frame are handled while the Conn is parked, without calling the function.
//
// On Linux, parked Conns over TCP wait in one epoll set, served by one goroutine of the
// package while any Conn is parked, and hold no goroutine and no buffer. In bench/'s idle
// scenario at 18,900 connections (the most this machine's limit of 20,000 descriptors a
// process allows), a parked connection took 2.7 KiB of the server's resident memory, of
// which about 1.2 KiB is live heap (the Conn and the socket's runtime state), against
// 6.1 KiB served from a goroutine of its own, 11.4 KiB inside the handler, and 7.7 KiB
// for a plain TCP echo with a goroutine a connection. A wake costs about 3,300
// instructions more than a Read that was waiting (a 64-byte echo woken every time:
// 8,196 against 4,913). On other systems, and on connections that do not expose their
// socket (TLS, whose record layer may hold bytes the socket no longer shows), each
// parked Conn waits on a goroutine of its own, which on TCP still holds no buffer.
package websocket
