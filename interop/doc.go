// Package interop tests github.com/hybi/websocket against the ws package of Node.js, in
// both roles and with permessage-deflate. It holds tests only; README.md says how to run
// them.
package interop
