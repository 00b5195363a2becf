//go:build unix

package websocket

import "syscall"

// tryWrite writes q.now to the socket with one system call that never waits for room in
// it, and leaves in q.now what did not fit. It is made once per queue, so that a call
// through syscall.RawConn allocates nothing.
func (q *sendQueue) tryWrite(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), q.now)
		if err == syscall.EINTR {
			continue
		}
		if n > 0 {
			q.now = q.now[n:]
		}
		return true
	}
}
