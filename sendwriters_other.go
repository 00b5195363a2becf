//go:build !linux

package websocket

import "syscall"

// rawWrites reports whether the writers can write a socket without waiting: only on
// Linux; elsewhere every Conn's queue is written by a goroutine of its own.
const rawWrites = false

// rawVec has nothing to write with.
type rawVec struct{}

func (v *rawVec) writev(syscall.RawConn, [][]byte) int { return 0 }
