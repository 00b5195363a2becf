package leak

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReportNamesTheTest leaves a goroutine running, started through a helper so that
// only the creating goroutine's stack shows the test, and checks that the report names
// this test for it.
func TestReportNamesTheTest(t *testing.T) {
	stop := make(chan struct{})
	ready := make(chan struct{})
	startWaiter(stop, ready)
	<-ready
	defer close(stop)

	leaked, all := goroutines()
	require.NotEmpty(t, leaked)
	var found bool
	for _, g := range leaked {
		if strings.Contains(g, "leak.waiter(") {
			found = true
			assert.Equal(t, "TestReportNamesTheTest", testOf(g, all))
		}
	}
	assert.True(t, found, "the waiter is among the goroutines left running")
	assert.Contains(t, report(leaked, all), "left running by TestReportNamesTheTest:")
}

// TestReportWithoutATest checks that a goroutine whose creators have all ended is
// reported with the function that created it.
func TestReportWithoutATest(t *testing.T) {
	g := "goroutine 9 [chan receive]:\nexample.com/p.wait()\n\t/p.go:3 +0x1\ncreated by example.com/p.start in goroutine 8\n\t/p.go:9 +0x2"
	assert.Equal(t, "an unknown test (created by example.com/p.start)", testOf(g, map[string]string{"9": g}))
}

func startWaiter(stop, ready chan struct{}) {
	go waiter(stop, ready)
}

func waiter(stop, ready chan struct{}) {
	close(ready)
	<-stop
}
