package websocket

import "sync/atomic"

// slab hands out values of T that are never reused, a slabSize at a time: one allocation
// serves many messages, and a value kept past its message stays its own forever.
type slab[T any] struct {
	items [slabSize]T
	next  atomic.Int32
}

const slabSize = 64

// take returns a new zero T from the slab in cur, replacing the slab when it is used up.
func take[T any](cur *atomic.Pointer[slab[T]]) *T {
	for {
		s := cur.Load()
		if s != nil {
			if i := s.next.Add(1) - 1; i < slabSize {
				return &s.items[i]
			}
		}
		ns := new(slab[T])
		ns.next.Store(1)
		if cur.CompareAndSwap(s, ns) {
			return &ns.items[0]
		}
	}
}

var (
	readerSlab atomic.Pointer[slab[messageReader]]
	writerSlab atomic.Pointer[slab[messageWriter]]
)
