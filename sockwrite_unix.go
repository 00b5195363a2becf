//go:build unix

package websocket

import "syscall"

// writeNoWait writes b to the socket with one system call that does not wait for room in
// it: what does not fit is dropped. It does nothing without a socket. CloseNow sends
// what write coalescing holds with it, since it must not wait.
func writeNoWait(raw syscall.RawConn, b []byte) {
	if raw == nil {
		return
	}
	raw.Write(func(fd uintptr) bool {
		syscall.Write(int(fd), b)
		return true
	})
}
