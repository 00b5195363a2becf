package websocket

// This file negotiates the permessage-deflate extension (RFC 7692 §5, §7.1) in the
// Sec-WebSocket-Extensions headers of the opening handshake. It is pure: header values
// in, parameters and header values out.

// deflateParams is the outcome of a permessage-deflate negotiation, seen from one side
// of the connection.
type deflateParams struct {
	peerNoContext  bool // the peer compresses every message on its own: no window to keep
	peerWindowBits int  // 8–15: the LZ77 window the peer compresses with
	windowBits     int  // 8–15: the largest window our own compressor may use
}

// acceptDeflate is the server's side: it picks, from the Sec-WebSocket-Extensions values
// of a request, the first permessage-deflate offer it can accept under mode, and returns
// the parameters in force and the value of the response's Sec-WebSocket-Extensions.
// ok is false when compression is disabled or no offer is acceptable.
func acceptDeflate(values []string, mode CompressionMode) (p deflateParams, response string, ok bool) {
	return deflateParams{}, "", false
}

// deflateOffer is the client's side: the Sec-WebSocket-Extensions value it sends under
// mode, or "" when compression is disabled.
func deflateOffer(mode CompressionMode) string {
	return ""
}

// deflateResponse checks the Sec-WebSocket-Extensions values of the server's response
// against the offer deflateOffer(mode) made. ok is false when the server accepted no
// extension; err says why a response cannot be accepted (RFC 6455 §4.1, RFC 7692 §5).
func deflateResponse(values []string, mode CompressionMode) (p deflateParams, ok bool, err error) {
	return deflateParams{}, false, nil
}
