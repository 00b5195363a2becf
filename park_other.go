//go:build !linux

package websocket

import "errors"

// pollerAdd has no poller to use on this system: parked Conns wait on goroutines.
func pollerAdd(*Conn) error { return errors.ErrUnsupported }

func pollerRemove(*Conn) bool { return false }

func pollerServing() bool { return false }
