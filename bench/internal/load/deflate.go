package load

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// This file is the client side of permessage-deflate (RFC 7692) for the compressed echo
// scenario. The client compresses each of its messages on its own and says so in its
// offer, which every server accepts; it inflates what the server sends against the
// server's earlier messages unless the server answered server_no_context_takeover.

// deflateOffer is the client's Sec-WebSocket-Extensions value. client_max_window_bits
// lets the server ask for a window under 32 KiB, which the client honours (RFC 7692
// §7.1.2.2).
const deflateOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

// deflateTail is the end of the empty stored block that closes every compressed message:
// the sender strips it and the receiver appends it (RFC 7692 §7.2.1, §7.2.2).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// errDeclined is the handshake's error when the server did not accept the offer.
var errDeclined = errors.New("server declined permessage-deflate")

// serverWindow is the most a server's message may refer back to: 32 KiB (RFC 1951 §2).
const serverWindow = 1 << 15

// deflateParams is what the server's response agreed to.
type deflateParams struct {
	serverNoContext bool // server_no_context_takeover: each server message stands alone
	clientBits      int  // client_max_window_bits: the LZ77 window of the client's messages
}

// parseDeflateResponse reads the Sec-WebSocket-Extensions values of the server's
// response to deflateOffer. ok is false when the server accepted no extension; any
// extension or parameter the offer did not allow is an error (RFC 6455 §9.1, RFC 7692 §5).
func parseDeflateResponse(values []string) (p deflateParams, ok bool, err error) {
	p.clientBits = 15
	for _, value := range values {
		for ext := range strings.SplitSeq(value, ",") {
			if strings.TrimSpace(ext) == "" {
				continue
			}
			name, params, hasParams := strings.Cut(ext, ";")
			if name = strings.TrimSpace(name); !strings.EqualFold(name, "permessage-deflate") {
				return p, false, fmt.Errorf("server answered with extension %q, which was not offered", name)
			}
			if ok {
				return p, false, errors.New("server accepted permessage-deflate twice")
			}
			ok = true
			seen := map[string]bool{}
			for param := range strings.SplitSeq(params, ";") {
				if !hasParams {
					break
				}
				key, value, hasValue := strings.Cut(param, "=")
				key = strings.ToLower(strings.TrimSpace(key))
				value = strings.Trim(strings.TrimSpace(value), `"`)
				if seen[key] {
					return p, false, fmt.Errorf("permessage-deflate parameter %q appears twice", key)
				}
				seen[key] = true
				switch key {
				case "server_no_context_takeover", "client_no_context_takeover":
					if hasValue {
						return p, false, fmt.Errorf("permessage-deflate parameter %s has a value", key)
					}
					p.serverNoContext = p.serverNoContext || key == "server_no_context_takeover"
				case "server_max_window_bits", "client_max_window_bits":
					bits, err := strconv.Atoi(value)
					if !hasValue || err != nil || bits < 8 || bits > 15 {
						return p, false, fmt.Errorf("permessage-deflate parameter %s=%q is not a window from 8 to 15", key, value)
					}
					// The client inflates with a 32 KiB window, enough for any server window.
					if key == "client_max_window_bits" {
						p.clientBits = bits
					}
				case "":
					return p, false, fmt.Errorf("permessage-deflate response %q has an empty parameter", strings.TrimSpace(ext))
				default:
					return p, false, fmt.Errorf("permessage-deflate parameter %q was not offered", key)
				}
			}
		}
	}
	return p, ok, nil
}

// deflateMessages is how many different messages of size bytes a connection cycles
// through: 64, fewer for large messages to bound the memory the generator holds, more
// for small ones so that a cycle is longer than a server's window. A server's compressor
// then finds no earlier copy of a message to refer to, only what messages have in common,
// as with real traffic.
func deflateMessages(size int) int {
	if size == 0 {
		return 1
	}
	n := min(offsets, max(2, (1<<20)/size))
	return max(n, serverWindow/size+2)
}

// flateWriters lend a compressor, 1.2 MB each, while a message is compressed.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// deflater is the compression state of one connection.
type deflater struct {
	params deflateParams
	frames [][]byte // message i as sent: compressed, framed, masked; built on first use

	in     []byte // the compressed payload of the message being received
	out    []byte
	window []byte // the last serverWindow bytes the server's compressed messages held
	src    bytes.Reader
	fr     io.ReadCloser
}

func newDeflater(messages int) *deflater {
	return &deflater{params: deflateParams{clientBits: 15}, frames: make([][]byte, messages)}
}

// frame returns message i of the cycle, whose payload is p, as a final data frame with
// the compression bit set, masked with key. Messages are compressed each on its own, so
// the same message always compresses to the same frame, which is built once.
func (d *deflater) frame(i int, op byte, p []byte, key [4]byte) ([]byte, error) {
	if f := d.frames[i]; f != nil {
		return f, nil
	}
	var z bytes.Buffer
	fw := flateWriters.Get().(*flate.Writer)
	// compress/flate looks back up to 32 KiB. For a smaller window, every window's worth
	// of input is compressed by a fresh compressor: the stream goes on, but nothing in
	// it refers to what came before.
	chunk := len(p)
	if d.params.clientBits < 15 {
		chunk = 1 << d.params.clientBits
	}
	for rest := p; ; {
		n := min(chunk, len(rest))
		fw.Reset(&z)
		fw.Write(rest[:n]) // writes into a bytes.Buffer cannot fail
		fw.Flush()
		if rest = rest[n:]; len(rest) == 0 {
			break
		}
	}
	flateWriters.Put(fw)
	payload, ok := bytes.CutSuffix(z.Bytes(), deflateTail)
	if !ok {
		return nil, errors.New("compress/flate did not end a message with a sync flush")
	}
	f := appendFrameHeader(make([]byte, 0, 14+len(payload)), op, len(payload), key)
	f[0] |= 0x40 // RSV1: a compressed message (RFC 7692 §6)
	for j, b := range payload {
		f = append(f, b^key[j%4])
	}
	d.frames[i] = f
	return f, nil
}

// readCompressed appends n bytes of a compressed message from r. limit is the size of
// the message sent: its echo compressed cannot be much longer.
func (d *deflater) readCompressed(r io.Reader, n int64, limit int) error {
	if int64(len(d.in))+n > int64(2*limit+1024) {
		return fmt.Errorf("%w: compressed echo is over %d bytes, for %d sent", errValidation, len(d.in)+int(n), limit)
	}
	m := len(d.in)
	d.in = slices.Grow(d.in, int(n))[:m+int(n)]
	_, err := io.ReadFull(r, d.in[m:])
	return err
}

// inflate decompresses the message readCompressed gathered and checks it is want.
func (d *deflater) inflate(want []byte) error {
	d.in = append(d.in, deflateTail...)
	d.src.Reset(d.in)
	d.in = d.in[:0]
	var dict []byte
	if !d.params.serverNoContext {
		dict = d.window
	}
	if d.fr == nil {
		d.fr = flate.NewReaderDict(&d.src, dict)
	} else if err := d.fr.(flate.Resetter).Reset(&d.src, dict); err != nil {
		return err
	}
	// One byte more than was sent shows an echo that is too long.
	d.out = slices.Grow(d.out[:0], len(want)+1)[:len(want)+1]
	n, err := io.ReadFull(d.fr, d.out)
	switch {
	case err == nil:
		return fmt.Errorf("%w: echo inflates to more than the %d bytes sent", errValidation, len(want))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The input ran out: the stream ended at the sync flush, or at a final block.
	default:
		return fmt.Errorf("%w: echo does not inflate: %v", errValidation, err)
	}
	if n != len(want) {
		return fmt.Errorf("%w: echo inflates to %d bytes, sent %d", errValidation, n, len(want))
	}
	if !bytes.Equal(d.out[:n], want) {
		return fmt.Errorf("%w: inflated bytes differ", errValidation)
	}
	if !d.params.serverNoContext {
		// RFC 7692 §7.1.1.1: without server_no_context_takeover, the server's next
		// message may refer to this one.
		d.window = append(d.window, want...)
		if over := len(d.window) - serverWindow; over > 0 {
			d.window = append(d.window[:0], d.window[over:]...)
		}
	}
	return nil
}
