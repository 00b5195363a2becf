package websocket

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// This file holds the seeds of the fuzz targets in fuzz_test.go.

// addFrameSeeds adds frame streams for both roles: every length form at its boundaries,
// the RFC 6455 §5.7 examples, each rule a frame can break, and every close code boundary.
func addFrameSeeds(f *testing.F) {
	for _, client := range []bool{false, true} {
		m := !client // frames a Conn accepts are masked when it is the server
		cat := func(frames ...[]byte) []byte { return slices.Concat(frames...) }
		// seedFrame encodes a whole frame whose first byte is b0.
		seedFrame := func(b0 byte, masked bool, payload []byte) []byte {
			f := frame{fin: b0&0x80 != 0, rsv: b0 & (rsv1 | rsv2 | rsv3), op: opcode(b0 & 0x0f), payload: payload}
			return encodeFrame(f, masked, int64(len(payload)))
		}
		seeds := [][]byte{
			// RFC 6455 §5.7.
			{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f},
			{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			// Messages in the role's masking, then the peer's close.
			cat(seedFrame(0x81, m, []byte("Hello")), seedFrame(0x82, m, []byte{0, 1, 2}), seedFrame(0x88, m, []byte{0x03, 0xe8})),
			cat(seedFrame(0x01, m, []byte("Hel")), seedFrame(0x89, m, []byte("ping")), seedFrame(0x80, m, []byte("lo"))),
			cat(seedFrame(0x01, m, []byte("\xce")), seedFrame(0x00, m, nil), seedFrame(0x80, m, []byte("\xba"))),
			cat(seedFrame(0x89, m, nil), seedFrame(0x8a, m, []byte("unsolicited")), seedFrame(0x82, m, nil)),
			// Length forms: 7-bit, 16-bit and 64-bit, at their edges; and longer forms
			// than needed, which the RFC asks senders not to use.
			// Frames of 64 KiB would make the fuzzer slow, and those that announce them
			// end after a few bytes.
			seedFrame(0x82, m, nil),
			seedFrame(0x82, m, bytes.Repeat([]byte{0xA5}, 125)),
			seedFrame(0x82, m, bytes.Repeat([]byte{0xA5}, 126)),
			seedFrame(0x81, m, []byte(strings.Repeat("κόσμε", 30))),
			seedFrame(0x82, m, bytes.Repeat([]byte{0x5A}, 65535))[:20],
			seedFrame(0x82, m, bytes.Repeat([]byte{0x5A}, 65536))[:20],
			appendMasked([]byte{0x82, maskBit(m) | 126, 0x00, 0x05}, m, []byte("short")),
			appendMasked([]byte{0x82, maskBit(m) | 127, 0, 0, 0, 0, 0, 0, 0, 0x05}, m, []byte("short")),
			appendMasked([]byte{0x82, maskBit(m) | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, m, nil),
			appendMasked([]byte{0x82, maskBit(m) | 127, 0x80, 0, 0, 0, 0, 0, 0, 0x01}, m, nil),
			appendMasked([]byte{0x82, maskBit(m) | 127, 0, 0, 0, 0, 0, 1, 0, 1}, m, nil), // 64 KiB + 1
			// Frames that break a rule.
			seedFrame(0x81, !m, []byte("wrong masking")),
			seedFrame(0xC1, m, []byte("rsv1")),
			seedFrame(0xA2, m, []byte("rsv2")),
			seedFrame(0x92, m, []byte("rsv3")),
			seedFrame(0x83, m, nil),
			seedFrame(0x8B, m, nil),
			seedFrame(0x09, m, []byte("fragmented ping")),
			seedFrame(0x89, m, bytes.Repeat([]byte{'p'}, 126)),
			seedFrame(0x80, m, []byte("continues nothing")),
			cat(seedFrame(0x01, m, []byte("a")), seedFrame(0x81, m, []byte("b"))),
			seedFrame(0x81, m, []byte("\xc0\x80")),
			seedFrame(0x81, m, []byte("\xed\xa0\x80")),
			seedFrame(0x81, m, []byte("\xf4\x90\x80\x80")),
			seedFrame(0x81, m, []byte("κόσμε\xce")),
			// Input that ends inside a header or a payload.
			{0x81},
			{0x82, maskBit(m) | 126, 0x01},
			seedFrame(0x81, m, []byte("Hello"))[:4],
			seedFrame(0x89, m, []byte("Hello"))[:6],
			// Close frames: no body, a 1-byte body, a reason that is not UTF-8, the
			// longest reason.
			seedFrame(0x88, m, nil),
			seedFrame(0x88, m, []byte{0x03}),
			seedFrame(0x88, m, []byte("\x03\xe8\xce")),
			seedFrame(0x88, m, append([]byte{0x03, 0xe8}, bytes.Repeat([]byte{'r'}, 123)...)),
		}
		for _, code := range []uint16{0, 999, 1000, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 1016, 2999, 3000, 4999, 5000, 65535} {
			seeds = append(seeds, seedFrame(0x88, m, binary.BigEndian.AppendUint16(nil, code)))
		}
		for _, s := range seeds {
			f.Add(s, client)
		}
	}
}

// acceptSeeds returns the request of RFC 6455 §1.2, refused for its Origin, and variants of
// it with a same-host Origin, each breaking or stretching one rule.
func acceptSeeds() []string {
	const rfc = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"
	valid := strings.Replace(rfc, "http://example.com", "http://server.example.com", 1)
	seeds := []string{rfc, valid}
	for _, edit := range [][]string{
		{"Origin: http://server.example.com\r\n", ""},
		{"http://server.example.com", "https://server.example.com"},
		{"http://server.example.com", "http://app.example.org"},
		{"http://server.example.com", "http://app.example.org:8080"},
		{"http://server.example.com", "http://example.org"},
		{"http://server.example.com", "http://server.example.com:80"},
		{"http://server.example.com", "http://server.example.com:8080"},
		{"http://server.example.com", "http://server.example.com/path"},
		{"http://server.example.com", "null"},
		{"Host: server.example.com", "Host: server.example.com:80"},
		{"Host: server.example.com", "Host: server.example.com:8080"},
		{"Host: server.example.com", "Host: server.example.com:443", "http://", "https://"},
		{"Host: server.example.com", "Host: server.example.com:80", "http://", "https://"},
		{"GET", "POST"},
		{"HTTP/1.1", "HTTP/1.0"},
		{"Upgrade: websocket\r\n", ""},
		{"Upgrade: websocket", "Upgrade: WebSocket"},
		{"Upgrade: websocket", "Upgrade: h2c"},
		{"Upgrade: websocket", "Upgrade: h2c, websocket"},
		{"Connection: Upgrade\r\n", ""},
		{"Connection: Upgrade", "Connection: keep-alive, Upgrade"},
		{"Connection: Upgrade", "Connection: keep-alive"},
		{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"},
		{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13, 8"},
		{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13"},
		{"Sec-WebSocket-Version: 13\r\n", ""},
		{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""},
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
		{"dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAA"},     // 15 bytes
		{"dGhlIHNhbXBsZSBub25jZQ==", "AAAAAAAAAAAAAAAAAAAAAAA="}, // 17 bytes
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR=="},
		{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ"},
		{"chat, superchat", "superchat"},
		{"chat, superchat", "Chat, SUPERCHAT"},
		{"chat, superchat", "v2.chat"},
		{"\r\n\r\n", "\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"},
	} {
		seeds = append(seeds, strings.NewReplacer(edit...).Replace(valid))
	}
	return seeds
}
