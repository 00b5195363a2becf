// Package xconnect runs tests that need net/http's HTTP/2 server to accept RFC 8441's
// extended CONNECT, which it does only when the process starts with
// GODEBUG=http2xconnect=1 in its environment: net/http reads the variable itself in an
// init function, and the go command refuses "//go:debug http2xconnect=1" as an unknown
// setting. It is for this module's tests only.
package xconnect

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const setting = "http2xconnect=1"

// On reports whether this process serves extended CONNECT.
func On() bool {
	for _, s := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if s == setting {
			return true
		}
	}
	return false
}

// InChild runs the calling top-level test again in a child process of the test binary
// with the setting on, unless this process has it, and reports whether it did: the
// caller then returns. The test fails if the child fails or runs nothing, and is skipped
// if the child skipped it.
func InChild(t *testing.T) bool {
	t.Helper()
	if On() {
		return false
	}
	godebug := setting
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + setting
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child with GODEBUG=%s failed: %v\n%s", godebug, err, out)
	}
	switch {
	case strings.Contains(string(out), "--- SKIP: "+t.Name()):
		t.Skipf("skipped in the child with GODEBUG=%s:\n%s", godebug, out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the child with GODEBUG=%s did not run %s:\n%s", godebug, t.Name(), out)
	}
	t.Logf("ran in a child process with GODEBUG=%s", godebug)
	return true
}
