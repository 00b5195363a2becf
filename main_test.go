package websocket

import (
	"testing"

	"github.com/hybi/websocket/internal/leak"
)

// TestMain fails the run if a test left goroutines running.
func TestMain(m *testing.M) { leak.Main(m) }
