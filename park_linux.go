package websocket

import (
	"sync"
	"syscall"
)

// The poller is one epoll set for every parked Conn of the process, made when the first
// Conn parks, and served by one goroutine while any Conn is armed in it: it ends within
// a second of the last one leaving. Each socket is armed one-shot: it fires once, and
// Park arms it again.
var poller struct {
	once    sync.Once
	epfd    int
	err     error
	mu      sync.Mutex
	conns   map[int32]*Conn // by socket, while armed
	serving bool            // pollLoop runs
}

func startPoller() {
	poller.epfd, poller.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if poller.err != nil {
		return
	}
	poller.conns = make(map[int32]*Conn)
}

// pollLoop waits for armed sockets and wakes their Conns, each on a goroutine of its own,
// until none is armed.
func pollLoop() {
	var events [128]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(poller.epfd, events[:], 1000)
		if err != nil {
			n = 0 // EINTR
		}
		if n == 0 {
			poller.mu.Lock()
			idle := len(poller.conns) == 0
			if idle {
				poller.serving = false
			}
			poller.mu.Unlock()
			if idle {
				stopWakers()
				return
			}
			continue
		}
		for _, ev := range events[:n] {
			poller.mu.Lock()
			c := poller.conns[ev.Fd]
			delete(poller.conns, ev.Fd)
			poller.mu.Unlock()
			if c != nil {
				startWake(c)
			}
		}
	}
}

// pollerAdd arms c's socket in the poller.
func pollerAdd(c *Conn) error {
	poller.once.Do(startPoller)
	if poller.err != nil {
		return poller.err
	}
	p := c.parking.Load()
	var fd int
	if err := c.rb.raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return err
	}
	poller.mu.Lock()
	defer poller.mu.Unlock()
	if c.isClosed() {
		// teardown has taken it out already, or will find it closed: it must not be
		// armed after that, with nobody left to wake it.
		return c.closedErr()
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	op := syscall.EPOLL_CTL_MOD
	if !p.polled {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(poller.epfd, op, fd, &ev); err != nil {
		return err
	}
	p.fd, p.polled = fd, true
	poller.conns[int32(fd)] = c
	if !poller.serving {
		poller.serving = true
		go pollLoop()
	}
	return nil
}

// pollerRemove takes c's socket out of the poller before it is closed, and reports
// whether it was armed: then nothing else will wake it.
func pollerRemove(c *Conn) bool {
	p := c.parking.Load()
	poller.mu.Lock()
	defer poller.mu.Unlock()
	if !p.polled {
		return false
	}
	syscall.EpollCtl(poller.epfd, syscall.EPOLL_CTL_DEL, p.fd, nil)
	p.polled = false
	armed := poller.conns[int32(p.fd)] == c
	if armed {
		delete(poller.conns, int32(p.fd))
	}
	return armed
}

// pollerServing reports whether pollLoop runs. The caller may hold wakers.mu.
func pollerServing() bool {
	poller.mu.Lock()
	defer poller.mu.Unlock()
	return poller.serving
}
