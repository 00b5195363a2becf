'use strict';

// A ws client for the interop tests. Usage:
//
//   node wsclient.js '{"url": "ws://127.0.0.1:PORT/", "perMessageDeflate": {...} | false,
//                      "messages": [spec, ...], "closeBy": "client" | "server"}'
//
// It connects with the given permessage-deflate options, sends every message of the
// list at once (messages.js builds them; a spec with fragments goes out as that many
// frames, each through ws's fin:false stream API), and checks that the echoes come back
// in order, byte for byte and with the same type. Then it closes with 1000, or, with
// closeBy "server", waits for the server to close. When the connection is closed it
// prints one JSON object on stdout:
//
//   {"header": the response's Sec-WebSocket-Extensions, "extensions": ws.extensions,
//    "echoed": echoes checked, "mismatches": [...], "errors": [...],
//    "closeCode": ..., "closeReason": ..., "wireRead": ..., "wireWritten": ...}
//
// and exits with 0 if every echo matched and nothing failed, 1 otherwise.

const WebSocket = require('ws');
const { build, fragments } = require('./messages');

const config = JSON.parse(process.argv[2]);
const specs = config.messages || [];
const sent = specs.map(build);

const report = {
  header: '',
  extensions: '',
  echoed: 0,
  mismatches: [],
  errors: [],
  closeCode: 0,
  closeReason: '',
  wireRead: 0,
  wireWritten: 0,
};

const ws = new WebSocket(config.url, { perMessageDeflate: config.perMessageDeflate || false });
let socket = null;

ws.on('upgrade', (res) => {
  report.header = res.headers['sec-websocket-extensions'] || '';
  socket = res.socket;
});

ws.on('open', () => {
  report.extensions = ws.extensions;
  specs.forEach((spec, i) => {
    const binary = spec.kind === 'binary';
    const pieces = fragments(spec, sent[i]);
    pieces.forEach((piece, j) => {
      ws.send(piece, { binary, fin: j === pieces.length - 1 });
    });
  });
  finishIfDone();
});

ws.on('message', (data, isBinary) => {
  const i = report.echoed++;
  if (i >= specs.length) {
    report.mismatches.push(`message ${i}: not sent, ${data.length} bytes`);
  } else if (isBinary !== (specs[i].kind === 'binary')) {
    report.mismatches.push(`message ${i}: sent ${specs[i].kind}, echoed binary=${isBinary}`);
  } else if (!data.equals(sent[i])) {
    report.mismatches.push(`message ${i}: ${describe(sent[i], data)}`);
  }
  finishIfDone();
});

ws.on('error', (err) => {
  report.errors.push(err.message);
});

ws.on('close', (code, reason) => {
  report.closeCode = code;
  report.closeReason = reason.toString();
  if (socket) {
    report.wireRead = socket.bytesRead;
    report.wireWritten = socket.bytesWritten;
  }
  process.stdout.write(JSON.stringify(report) + '\n');
  const ok = report.errors.length === 0 && report.mismatches.length === 0;
  process.exitCode = ok && report.echoed === specs.length ? 0 : 1;
});

// finishIfDone closes once every echo has come back, if the client is the one to close.
function finishIfDone() {
  if (report.echoed === specs.length && config.closeBy !== 'server') {
    ws.close(1000, 'done');
  }
}

// describe says where an echo first differs from the message sent.
function describe(want, got) {
  let i = 0;
  while (i < want.length && i < got.length && want[i] === got[i]) i++;
  return `sent ${want.length} bytes, echoed ${got.length}, first difference at byte ${i}`;
}
