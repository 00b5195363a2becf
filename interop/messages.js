'use strict';

// Test messages built from small specs, byte for byte the same as messages_test.go
// builds them: the Go tests pass specs on the command line and both sides derive the
// bytes, so each side can check what it receives, not only what comes back.
//
// A spec is {kind, size, seed, fragments}: kind "text" is size bytes of UTF-8 prose
// from a small vocabulary whose lines often repeat earlier ones, up to a dozen kilobytes
// back, so that a compressor finds matches near and far; "binary" is size pseudo-random
// bytes, which do not compress; "json" is a short JSON object, one of many alike.
// fragments, when present, lists the lengths of every fragment but the last, which
// carries the rest of the message.
//
// Run as a program, it prints the SHA-256 of each message of the specs given as JSON
// in argv[2], one per line; messages_test.go compares them with its own.

const crypto = require('crypto');

const WORDS = [
  'the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog',
  'websocket', 'frame', 'deflate', 'window', 'context', 'takeover', 'message', 'server',
  'client', 'échange', 'naïve', 'größe', 'über', '日本', '→', 'λ',
  'ok', '0', '42', 'lorem', 'ipsum', 'dolor', 'sit', 'amet',
];
const USERS = ['alice', 'bob', 'carol', 'dave', 'eve', 'mallory', 'oscar', 'trent'];
const ACTIONS = ['create', 'read', 'update', 'delete', 'list', 'watch'];
const TAGS = ['red', 'green', 'blue', 'urgent', 'later'];

// rng returns a xorshift32 generator. The bit operators work on 32-bit integers;
// >>> 0 brings the state back to an unsigned value after each step.
function rng(seed) {
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function text(size, seed) {
  const next = rng(seed);
  const parts = [];
  const lines = [];
  let n = 0;
  while (n < size) {
    let line;
    if (lines.length > 0 && next() % 4 === 0) {
      // Repeat one of the last 256 new lines: a match from a few bytes to several
      // kilobytes back.
      line = lines[lines.length - 1 - (next() % Math.min(lines.length, 256))];
    } else {
      const words = [];
      const count = 4 + (next() % 9);
      for (let i = 0; i < count; i++) words.push(WORDS[next() % WORDS.length]);
      line = Buffer.from(words.join(' ') + '\n');
      lines.push(line);
    }
    if (n + line.length > size) line = Buffer.alloc(size - n, '.');
    parts.push(line);
    n += line.length;
  }
  return Buffer.concat(parts, size);
}

function binary(size, seed) {
  const next = rng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = next() >>> 24;
  return b;
}

function json(seed) {
  const next = rng(seed);
  const pick = (list) => list[next() % list.length];
  const tags = [];
  const count = 1 + (next() % 3);
  for (let i = 0; i < count; i++) tags.push(pick(TAGS));
  const user = pick(USERS);
  const action = pick(ACTIONS);
  const value = next() % 10000;
  // Written out by hand, not with JSON.stringify, so that Go can write the same bytes.
  return Buffer.from(
    `{"id":${seed},"user":"${user}","action":"${action}","value":${value},` +
      `"tags":["${tags.join('","')}"],"ok":${value % 2 === 0}}`
  );
}

// build returns the bytes of the message a spec describes.
function build(spec) {
  switch (spec.kind) {
    case 'text':
      return text(spec.size || 0, spec.seed);
    case 'binary':
      return binary(spec.size || 0, spec.seed);
    case 'json':
      return json(spec.seed);
  }
  throw new Error(`unknown message kind ${spec.kind}`);
}

// fragments splits a message into the pieces its spec asks for.
function fragments(spec, msg) {
  const pieces = [];
  let at = 0;
  for (const n of spec.fragments || []) {
    pieces.push(msg.subarray(at, at + n));
    at += n;
  }
  pieces.push(msg.subarray(at));
  return pieces;
}

module.exports = { build, fragments };

if (require.main === module) {
  for (const spec of JSON.parse(process.argv[2])) {
    console.log(crypto.createHash('sha256').update(build(spec)).digest('hex'));
  }
}
