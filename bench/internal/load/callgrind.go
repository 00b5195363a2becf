package load

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Callgrind is a Counter of the user-space instructions a server run under
// `valgrind --tool=callgrind` executes, in all its threads. It drives the server's
// callgrind with callgrind_control, which reaches a process blocked in a system call
// through vgdb and ptrace, so the server need not be busy to answer.
type Callgrind struct {
	PID int
	// Control is the callgrind_control program; empty means "callgrind_control" on PATH.
	Control string
	// Dump, if set, has Count also write the counts of each function since Zero to a
	// profile, the next of those named by the server's --callgrind-out-file, for
	// callgrind_annotate; Dump is the profile's description.
	Dump string
}

// controlTimeout bounds each callgrind_control command.
const controlTimeout = time.Minute

func (c Callgrind) run(args ...string) ([]byte, error) {
	prog := c.Control
	if prog == "" {
		prog = "callgrind_control"
	}
	args = append(args, strconv.Itoa(c.PID))
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if ctx.Err() != nil {
		// vgdb reaches a process blocked in a system call with ptrace: without it, a
		// command waits until the server runs again.
		return nil, fmt.Errorf("%s %s: no answer in %v (does vgdb have ptrace?): %w",
			prog, strings.Join(args, " "), controlTimeout, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Zero sets the server's counters to zero.
func (c Callgrind) Zero() error {
	_, err := c.run("-z")
	return err
}

// Count returns the instructions the server has executed since Zero.
func (c Callgrind) Count() (int64, error) {
	out, err := c.run("-e", "Ir")
	if err != nil {
		return 0, err
	}
	n, err := parseEventTotals(out)
	if err != nil {
		return 0, err
	}
	if c.Dump != "" {
		if _, err := c.run("--dump=" + c.Dump); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// parseEventTotals sums the per-thread counts that `callgrind_control -e Ir` prints,
// where a thread's number of two digits leaves no space after "Th":
//
//	PID 5789: ./echoserver -lib floor
//
//	  Totals:        Ir
//	   Th 1           0
//	   Th 2     190,295
//	   Th10  25,616,739
func parseEventTotals(out []byte) (int64, error) {
	var sum int64
	threads := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "Th") {
			continue
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(f[len(f)-1], ",", ""), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("load: callgrind_control printed %q: %w", sc.Text(), err)
		}
		sum += n
		threads++
	}
	if threads == 0 {
		return 0, fmt.Errorf("load: no thread totals in callgrind_control's output %q", out)
	}
	return sum, nil
}
