'use strict';

// A ws echo server for the interop tests. Usage:
//
//   node wsserver.js '<perMessageDeflate options as JSON, or false>'
//
// It listens on 127.0.0.1 on a port of the system's choosing and prints {"port": N} on
// stdout, then one JSON line per event of each connection:
//
//   {"event": "open", "id": ..., "offer": request's Sec-WebSocket-Extensions,
//    "response": response's Sec-WebSocket-Extensions, "extensions": ws.extensions}
//   {"event": "error", "id": ..., "message": ...}
//   {"event": "close", "id": ..., "code": ..., "reason": ..., "received": messages,
//    "wireRead": ..., "wireWritten": ...}
//
// It echoes every message with its type. The request's query may hold id (copied into
// the events), closeAfter=N (close with 1000 once N messages are echoed) and
// fragments=K (echo each message in K frames through ws's fin:false stream API; pieces
// of a message shorter than K are empty). It exits when its stdin closes.

const WebSocket = require('ws');

const perMessageDeflate = JSON.parse(process.argv[2] || 'false') || false;
const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate });

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

// The response headers are only seen here, before the connection event.
const responses = new WeakMap();
wss.on('headers', (headers, req) => {
  const prefix = 'sec-websocket-extensions:';
  const line = headers.find((h) => h.toLowerCase().startsWith(prefix));
  responses.set(req, line ? line.slice(prefix.length).trim() : '');
});

wss.on('connection', (ws, req) => {
  const query = new URL(req.url, 'http://127.0.0.1').searchParams;
  const id = query.get('id') || '';
  const closeAfter = Number(query.get('closeAfter') || 0);
  const pieces = Math.max(1, Number(query.get('fragments') || 1));
  const socket = req.socket;
  let received = 0;

  emit({
    event: 'open',
    id,
    offer: req.headers['sec-websocket-extensions'] || '',
    response: responses.get(req) || '',
    extensions: ws.extensions,
  });

  ws.on('message', (data, isBinary) => {
    received++;
    for (let i = 0; i < pieces; i++) {
      const from = Math.floor((data.length * i) / pieces);
      const to = Math.floor((data.length * (i + 1)) / pieces);
      ws.send(data.subarray(from, to), { binary: isBinary, fin: i === pieces - 1 });
    }
    if (received === closeAfter) ws.close(1000, 'done');
  });
  ws.on('error', (err) => emit({ event: 'error', id, message: err.message }));
  ws.on('close', (code, reason) => {
    emit({
      event: 'close',
      id,
      code,
      reason: reason.toString(),
      received,
      wireRead: socket.bytesRead,
      wireWritten: socket.bytesWritten,
    });
  });
});

wss.on('listening', () => emit({ port: wss.address().port }));

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
