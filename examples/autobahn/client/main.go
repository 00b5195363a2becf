// Command client is the client that the Autobahn testsuite's fuzzingserver mode tests. It
// asks the suite how many cases it has, connects once per case and sends every message
// back with the same type until the suite closes the connection, then asks the suite to
// write its reports.
//
//	go run ./examples/autobahn/client [-url ws://127.0.0.1:9001] [-agent hybi-websocket] [-cases 1-517]
//
// The read limit is raised to 16 MiB for the suite's large-message cases (9.x), and
// permessage-deflate is offered for the compression cases (12.x, 13.x), with context
// takeover; all else is the library's default. examples/autobahn/run.sh client runs the
// suite and this client against it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/hybi/websocket"
)

// readLimit is the largest message the client echoes: the suite's largest is 16 MiB.
const readLimit = 16 << 20

func main() {
	base := flag.String("url", "ws://127.0.0.1:9001", "URL of the fuzzingserver")
	agent := flag.String("agent", "hybi-websocket", "name the reports give this client")
	cases := flag.String("cases", "", "cases to run, by number: 7 or 1-517 (default all)")
	flag.Parse()
	first, last, err := parseRange(*cases)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *base, *agent, first, last, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// parseRange parses the -cases flag: "" for all cases (0, 0), "N" or "FIRST-LAST".
func parseRange(s string) (first, last int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(lo)
	last, err2 := first, error(nil)
	if isRange {
		last, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || first < 1 || last < first {
		return 0, 0, fmt.Errorf("bad case range %q: want N or FIRST-LAST, counting from 1", s)
	}
	return first, last, nil
}

// run runs cases first to last of the fuzzingserver at base (all of them when last is 0),
// reporting progress on out, then has the server update its reports for agent. It stops
// at the first case it cannot connect for.
func run(ctx context.Context, base, agent string, first, last int, out io.Writer) error {
	base = strings.TrimSuffix(base, "/")
	count, err := caseCount(ctx, base)
	if err != nil {
		return err
	}
	if last == 0 {
		first, last = 1, count
	}
	if last > count {
		return fmt.Errorf("the server has %d cases, not %d", count, last)
	}
	fmt.Fprintf(out, "running cases %d to %d of %d as %q\n", first, last, count, agent)
	for n := first; n <= last; n++ {
		u := fmt.Sprintf("%s/runCase?case=%d&agent=%s", base, n, url.QueryEscape(agent))
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Compression: websocket.CompressionContextTakeover})
		if err != nil {
			return fmt.Errorf("case %d: %w", n, err)
		}
		c.SetReadLimit(readLimit)
		end := echo(ctx, c)
		c.CloseNow()
		if code := websocket.CloseStatus(end); code != -1 {
			fmt.Fprintf(out, "case %d: server closed with %d\n", n, int(code))
		} else {
			fmt.Fprintf(out, "case %d: %v\n", n, end)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := updateReports(ctx, base+"/updateReports?agent="+url.QueryEscape(agent)); err != nil {
		return err
	}
	fmt.Fprintln(out, "reports updated")
	return nil
}

// caseCount asks the server how many cases it runs: it sends the number as a text
// message, then closes.
func caseCount(ctx context.Context, base string) (int, error) {
	c, _, err := websocket.Dial(ctx, base+"/getCaseCount", nil)
	if err != nil {
		return 0, err
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the case count: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(msg)))
	if err != nil {
		return 0, fmt.Errorf("reading the case count: %w", err)
	}
	if err := waitForClose(ctx, c); err != nil {
		return 0, fmt.Errorf("after the case count: %w", err)
	}
	return n, nil
}

// echo sends every message back until reading or writing fails, and returns that error.
// When the server closes, or breaks the protocol, the Conn has answered with the right
// close frame by the time it returns; the error carries the server's close status when
// the server closed.
func echo(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return err
		}
	}
}

// updateReports asks the server to write its reports, which it does before closing.
func updateReports(ctx context.Context, u string) error {
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if err := waitForClose(ctx, c); err != nil {
		return fmt.Errorf("updating the reports: %w", err)
	}
	return nil
}

// waitForClose reads until the server closes, discarding messages. It returns nil if the
// server closed with a close frame.
func waitForClose(ctx context.Context, c *websocket.Conn) error {
	for {
		_, _, err := c.Read(ctx)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
