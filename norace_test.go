//go:build !race

package websocket

// raceEnabled reports a -race build, whose instrumentation allocates.
const raceEnabled = false
