//go:build !unix

package websocket

import (
	"errors"
	"net"
	"syscall"
)

// rawConn reports no socket: on this system every read goes through the net.Conn, with
// the buffer held while it waits.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (b *readBuffer) fillRaw() error { return b.fillConn() }

func (b *readBuffer) fillNoWait() (bool, error) { return false, errors.ErrUnsupported }

func waitReadable(syscall.RawConn) {}
