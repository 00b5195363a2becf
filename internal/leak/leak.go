// Package leak makes a test binary fail when its tests leave goroutines running. It is
// for this module's tests only.
package leak

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// grace is how long goroutines on their way out get to finish: closing a connection
// wakes its goroutines but does not wait for them.
const grace = 3 * time.Second

// Main runs the tests, then exits with a failure if any goroutine other than the caller's
// is still running, printing for each the test that started it, when its stack or the
// stacks of the goroutines that created it still show one, and its stack. Use it as the
// body of TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked, all := goroutines(); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n\n%s\n", report(leaked, all))
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines returns the stacks of the goroutines other than the caller's, looking again
// until none is left or the grace period is over, and the stacks of every goroutine by id.
func goroutines() (leaked []string, all map[string]string) {
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// The caller's own stack comes first.
		first, rest, _ := strings.Cut(string(buf), "\n\n")
		all = map[string]string{goroutineID(first): first}
		leaked = nil
		for _, g := range strings.Split(rest, "\n\n") {
			if g == "" {
				continue
			}
			all[goroutineID(g)] = g
			// The runtime's signal loop stays once os/signal is used, as go test -fuzz does.
			if !strings.Contains(g, "os/signal.loop") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked, all
		}
		<-tick.C
	}
}

// report lists the leaked goroutines, each headed by the test that started it.
func report(leaked []string, all map[string]string) string {
	var b strings.Builder
	for _, g := range leaked {
		fmt.Fprintf(&b, "left running by %s:\n%s\n\n", testOf(g, all), g)
	}
	return b.String()
}

var (
	// testFunc matches a frame or "created by" line in a test, fuzz target, benchmark or
	// example function, or in a function literal inside one, outside package testing.
	testFunc = regexp.MustCompile(`(?m)^(?:created by )?([\w./-]*[\w-]\.((?:Test|Fuzz|Benchmark|Example)\w*))`)
	// createdBy matches the line naming the goroutine that started this one.
	createdBy = regexp.MustCompile(`(?m)^created by (\S+) in goroutine (\d+)$`)
)

// testOf returns the name of the test that started the goroutine whose stack is g: the
// first test function in its stack, or else in the stacks of the goroutines that created
// it, as far as they are still running. When none shows one, it names the function that
// created g, which a maintainer can look up.
func testOf(g string, all map[string]string) string {
	seen := map[string]bool{}
	creator := ""
	for g != "" && !seen[g] {
		seen[g] = true
		for _, m := range testFunc.FindAllStringSubmatch(g, -1) {
			if !strings.HasPrefix(m[1], "testing.") {
				return m[2]
			}
		}
		c := createdBy.FindStringSubmatch(g)
		if c == nil {
			break
		}
		if creator == "" {
			creator = c[1]
		}
		g = all[c[2]]
	}
	if creator == "" {
		return "an unknown test"
	}
	return "an unknown test (created by " + creator + ")"
}

// goroutineID returns the id in the first line of a goroutine's stack, "goroutine 7 [...]:".
func goroutineID(g string) string {
	f := strings.Fields(g)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}
