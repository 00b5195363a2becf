//go:build linux

package websocket

import (
	"syscall"
	"unsafe"
)

// rawWrites reports whether the writers can write a socket without waiting: on Linux,
// with writev.
const rawWrites = true

// rawVec is a writer's room for one writev straight to a socket.
type rawVec struct {
	iov   [maxBatch]syscall.Iovec
	n     int                   // iov[:n] is what write writes
	wrote int                   // what it wrote
	fn    func(fd uintptr) bool // v.write, made once, so that a write allocates nothing
}

// writev writes frames, together, to the socket raw with one system call that does not
// wait for room in it, and returns the bytes written: 0 when the socket was full or the
// write failed, for whatever reason (a deadline past, the socket closed); the goroutine
// that takes over finds the reason when it writes.
func (v *rawVec) writev(raw syscall.RawConn, frames [][]byte) int {
	if v.fn == nil {
		v.fn = v.write
	}
	for i, f := range frames {
		v.iov[i].Base = &f[0]
		v.iov[i].SetLen(len(f))
	}
	v.n, v.wrote = len(frames), 0
	if raw.Write(v.fn) != nil {
		v.wrote = 0
	}
	clear(v.iov[:v.n]) // keep no frame
	return v.wrote
}

// write is the writev, given the socket: it never asks to wait.
func (v *rawVec) write(fd uintptr) bool {
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v.iov[0])), uintptr(v.n))
		if errno == syscall.EINTR {
			continue
		}
		if errno == 0 {
			v.wrote = int(n)
		}
		return true
	}
}
