// Package leak makes a test binary fail when its tests leave goroutines running. It is
// for this module's tests only.
package leak

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// grace is how long goroutines on their way out get to finish: closing a connection
// wakes its goroutines but does not wait for them.
const grace = 3 * time.Second

// Main runs the tests, then exits with a failure if any goroutine other than the caller's
// is still running, printing their stacks. Use it as the body of TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := goroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines returns the stacks of the goroutines other than the caller's, looking again
// until none is left or the grace period is over.
func goroutines() string {
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// The caller's own stack comes first.
		_, rest, _ := strings.Cut(string(buf), "\n\n")
		var others []string
		for _, g := range strings.Split(rest, "\n\n") {
			// The runtime's signal loop stays once os/signal is used, as go test -fuzz does.
			if g != "" && !strings.Contains(g, "os/signal.loop") {
				others = append(others, g)
			}
		}
		if len(others) == 0 || time.Now().After(deadline) {
			return strings.Join(others, "\n\n")
		}
		<-tick.C
	}
}
