package websocket

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorPrefixOnce checks that an error leaving the package starts with "websocket: "
// and says it once, also when it wraps the package's own errors: the cause of a closed
// Conn, a close handshake that did not complete, a message cut by our own close frame.
func TestErrorPrefixOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
	}{
		{"close argument", func(t *testing.T) error {
			p := newRawPeer(t, false)
			return p.conn.Close(1004, "")
		}},
		{"close not answered", func(t *testing.T) error {
			p := newRawPeer(t, false)
			errc := make(chan error, 1)
			go func() { errc <- p.conn.Close(StatusNormalClosure, "") }()
			require.Equal(t, opClose, p.next().op)
			err := <-errc // the peer never answers
			return err
		}},
		{"close after CloseNow", func(t *testing.T) error {
			p := newRawPeer(t, false)
			require.NoError(t, p.conn.CloseNow())
			return p.conn.Close(StatusNormalClosure, "")
		}},
		{"protocol error", func(t *testing.T) error {
			p := newRawPeer(t, false)
			p.readLoop()
			p.send(frame{fin: true, op: 3})
			err := p.nextRead().err
			assert.Equal(t, StatusProtocolError, protocolCode(err))
			return err
		}},
		{"peer closed", func(t *testing.T) error {
			p := newRawPeer(t, false)
			p.readLoop()
			p.send(frame{fin: true, op: opClose, payload: []byte{0x03, 0xe8, 'b', 'y', 'e'}})
			err := p.nextRead().err
			assert.Equal(t, StatusNormalClosure, CloseStatus(err))
			return err
		}},
		{"message cut by our close frame", func(t *testing.T) error {
			p := newRawPeer(t, false)
			w, err := p.conn.Writer(context.Background(), MessageBinary)
			require.NoError(t, err)
			big := make([]byte, 2*writeBufferSize)
			wrote := make(chan error, 1)
			go func() { _, err := w.Write(big); wrote <- err }()
			require.Equal(t, opBinary, p.next().op)
			require.NoError(t, <-wrote) // its frame went out before the close frame
			closed := make(chan error, 1)
			go func() { closed <- p.conn.Close(StatusNormalClosure, "") }()
			require.Equal(t, opClose, p.next().op)
			_, err = w.Write(big) // nothing may follow the close frame: the message is cut
			assert.ErrorIs(t, err, errMessageCut)
			assert.ErrorIs(t, <-closed, net.ErrClosed)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), errPrefix), "%q", err)
			assert.Equal(t, 1, strings.Count(err.Error(), errPrefix), "%q", err)
		})
	}
}
