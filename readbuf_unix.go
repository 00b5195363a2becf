//go:build unix

package websocket

import (
	"net"
	"os"
	"syscall"
)

// rawConn returns the socket of nc, to read it without a buffer held while waiting. Only
// the standard library's own socket types qualify: a type that embeds one may change what
// Read returns (count, decrypt, or hold bytes it read ahead), which reading the socket
// directly would bypass.
func rawConn(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// fillRaw reads the socket directly: a read that would block gives the buffer back and
// lets the runtime's poller wait for the socket, then tries again with a buffer. A busy
// connection pays nothing for this: its reads find bytes at once.
func (b *readBuffer) fillRaw() error {
	if b.readSocket == nil {
		// Made once: a closure made for each read would be allocated for each read.
		b.readSocket = b.readFD
	}
	for {
		err := b.raw.Read(b.readSocket)
		n, rerr := b.rawN, b.rawErr
		b.rawErr = nil
		switch {
		case err != nil:
		case rerr != nil:
			err = os.NewSyscallError("read", rerr)
		case n == noBuffer:
			b.take()
			continue
		case n <= 0:
			err = errPeerGone
		default:
			b.w += n
			return nil
		}
		b.releaseIfEmpty()
		return err
	}
}

// noBuffer is readFD's count when it read nothing for want of a pooled buffer.
const noBuffer = -1

// readFD is fillRaw's read of the socket, called by the runtime's poller until it returns
// true; it leaves its result in rawN and rawErr.
func (b *readBuffer) readFD(fd uintptr) bool {
	if b.buf == nil {
		b.buf, _ = readBuffers.Get().(*[readBufferSize]byte)
		if b.buf == nil {
			// fillRaw makes one and reads again: the bytes, if any, are still there.
			b.rawN, b.rawErr = noBuffer, nil
			return true
		}
	}
	for {
		n, err := syscall.Read(int(fd), b.buf[b.w:])
		// Compared as an Errno: compared as errors, each costs a call.
		switch errno, _ := err.(syscall.Errno); errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			b.releaseIfEmpty()
			return false
		}
		b.rawN, b.rawErr = n, err
		return true
	}
}

// fillNoWait reads what the socket has into the buffer, without waiting for more: got
// reports whether it read anything. An ended connection is an error. The caller holds
// readLock; nc exposes its socket.
func (b *readBuffer) fillNoWait() (got bool, err error) {
	if b.r > 0 {
		b.w = copy(b.buf[:], b.buf[b.r:b.w])
		b.r = 0
	}
	if b.w == readBufferSize {
		return false, nil // full: a control frame is at most 139 bytes, so data waits
	}
	var n int
	var rerr error
	b.take()
	err = b.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b.buf[b.w:])
			if rerr != syscall.EINTR {
				return true // never wait
			}
		}
	})
	switch {
	case err != nil:
	case rerr == syscall.EAGAIN:
		b.releaseIfEmpty()
		return false, nil
	case rerr != nil:
		err = os.NewSyscallError("read", rerr)
	case n <= 0:
		err = errPeerGone
	default:
		b.w += n
		return true, nil
	}
	b.releaseIfEmpty()
	return false, err
}

// waitReadable waits until the socket has bytes to read, or is closed, reading nothing
// and holding no buffer: the runtime's poller does the waiting.
//
// The poller is edge-triggered, and Read clears what it saw before it calls f: bytes that
// arrived before the wait began would wake nothing. So f first peeks at the socket, as a
// read would, and waits only if it is empty.
func waitReadable(raw syscall.RawConn) {
	raw.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK) // the socket does not block: Go made it so
			if err != syscall.EINTR {
				return err != syscall.EAGAIN // bytes, the end, or an error: a read will say
			}
		}
	})
}
