package websocket

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecondCloseWaitsForTheFirst calls Close while another Close waits for the peer's
// close frame, which never comes: the second returns once the first has given up and
// closed the Conn, not while it is still open.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	p := newRawPeer(t, false)
	first := make(chan error, 1)
	go func() { first <- p.conn.Close(StatusNormalClosure, "") }()
	require.Equal(t, opClose, p.next().op)

	err := p.conn.Close(StatusGoingAway, "")
	assert.True(t, p.conn.isClosed(), "the second Close returned before the Conn was closed")
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Error(t, <-first)
}
