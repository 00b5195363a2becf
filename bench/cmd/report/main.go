// Command report reads the JSON lines the load generator printed, over any number of
// rounds, and prints a Markdown table per scenario: the median of each figure for each
// server, with ratios to the best peer library and to the plain TCP floor. Counted runs
// under callgrind (callgrind.sh) make one table of instructions per operation instead,
// with each round's figures.
//
//	report [-svg chart.svg [-caption TEXT]] results.jsonl…
//
// With -svg it also draws the side-by-side figures (instructions per round trip and per
// handshake, idle memory per connection) as an SVG chart.
//
// Servers named "floor" are the floor; those named "ours" or "ours-…" are this module;
// every other name is a peer. A table without a floor has no ratios to it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"

	"github.com/hybi/websocket/bench/internal/echo"
	"github.com/hybi/websocket/bench/internal/load"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("report: ")
	svg := flag.String("svg", "", "also draw the instructions per operation and the idle memory per connection into this SVG file")
	caption := flag.String("caption", "", "a line under the chart's title, such as the commit measured")
	flag.Parse()
	var results []load.Result
	if flag.NArg() == 0 {
		results = readResults(os.Stdin)
	}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, readResults(f)...)
		f.Close()
	}
	if len(results) == 0 {
		log.Fatal("no results")
	}
	write(os.Stdout, results)
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			log.Fatal(err)
		}
		if err := drawChart(f, results, *caption); err != nil {
			f.Close()
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}

func readResults(r io.Reader) []load.Result {
	var out []load.Result
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var res load.Result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			log.Fatalf("%q: %v", line, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	return out
}

// column is one figure of a table.
type column struct {
	title      string
	value      func(load.Result) float64
	higherWins bool
	format     string
	short      string // if set, the figure is also shown divided by the best peer's and the floor's
	optional   bool   // a figure only some servers report: shown only if one does, as "–" where 0
}

var (
	opsCol = func(title string) column {
		return column{title: title, value: func(r load.Result) float64 { return r.OpsPerSec }, higherWins: true, format: "%.0f", short: "rate"}
	}
	mbCol  = column{title: "MB/s", value: func(r load.Result) float64 { return r.MBPerSec }, higherWins: true, format: "%.1f"}
	p50Col = column{title: "p50 µs", value: func(r load.Result) float64 { return r.P50us }, format: "%.0f"}
	p99Col = column{title: "p99 µs", value: func(r load.Result) float64 { return r.P99us }, format: "%.0f"}
	cpuCol = func(title string) column {
		return column{title: title, value: func(r load.Result) float64 { return r.ServerCPUus }, format: "%.1f", short: "CPU"}
	}
	cpuPctCol = column{title: "server CPU %", value: func(r load.Result) float64 { return r.ServerCPUPct }, format: "%.0f"}
	echoBCol  = column{title: "echo B on the wire", value: func(r load.Result) float64 { return r.EchoBytesPerOp }, format: "%.0f"}
	rssCol    = column{title: "KiB/conn", value: func(r load.Result) float64 { return r.RSSKiBPerConn }, format: "%.1f", short: "memory"}
	heapCol   = column{title: "Go heap KiB/conn", value: func(r load.Result) float64 { return r.HeapKiBPerConn }, format: "%.2f", optional: true}
	stackCol  = column{title: "stacks KiB/conn", value: func(r load.Result) float64 { return r.StackKiBPerConn }, format: "%.2f", optional: true}
	gorCol    = column{title: "goroutines/conn", value: func(r load.Result) float64 { return r.GoroutinesPerConn }, format: "%.2f", optional: true}
)

func columns(scenario string) []column {
	switch scenario {
	case "idle":
		return []column{rssCol, heapCol, stackCol, gorCol, opsCol("conns/s"), cpuCol("server CPU µs/conn")}
	case "upgrade":
		return []column{opsCol("handshakes/s"), p50Col, p99Col, cpuCol("server CPU µs/handshake"), cpuPctCol}
	case "echo-deflate":
		return []column{opsCol("round trips/s"), mbCol, p50Col, p99Col, cpuCol("server CPU µs/op"), cpuPctCol, echoBCol}
	}
	return []column{opsCol("round trips/s"), mbCol, p50Col, p99Col, cpuCol("server CPU µs/op"), cpuPctCol}
}

// key identifies a scenario with its parameters.
type key struct {
	scenario              string
	style                 string
	conns, size, inflight int
}

func (k key) String() string {
	scenario := k.scenario
	switch k.style {
	case "stream":
		scenario += ", streaming"
	case "message":
		scenario += ", whole-message"
	case "":
	default:
		scenario += ", " + k.style
	}
	switch k.scenario {
	case "idle":
		return fmt.Sprintf("idle: %d connections, one %s echo each", k.conns, bytesLabel(k.size))
	case "upgrade":
		return fmt.Sprintf("upgrade: %d workers", k.conns)
	case "pipeline", "pipeline-batch":
		return fmt.Sprintf("%s: %s × %d conns × %d in flight", scenario, bytesLabel(k.size), k.conns, k.inflight)
	}
	return fmt.Sprintf("%s: %s × %d conns", scenario, bytesLabel(k.size), k.conns)
}

func bytesLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func isPeer(lib string) bool {
	return lib != "floor" && lib != "ours" && !strings.HasPrefix(lib, "ours-")
}
func libRank(lib string) int { // ours first, the floor last, peers between
	switch {
	case lib == "ours":
		return 0
	case strings.HasPrefix(lib, "ours-"):
		return 1
	case lib == "floor":
		return 3
	}
	return 2
}

// sortLibs orders libs as the tables show them: ours first, then the peers, the floor
// last, each group in the order of first appearance.
func sortLibs(libs []string, order map[string]int) {
	slices.SortFunc(libs, func(a, b string) int {
		if d := libRank(a) - libRank(b); d != 0 {
			return d
		}
		return order[a] - order[b]
	})
}

// hasStyle reports whether a scenario's table shows each server's style.
func hasStyle(scenario string) bool { return scenario != "idle" && scenario != "upgrade" }

func write(w io.Writer, results []load.Result) {
	var counted, timed, broadcast []load.Result
	for _, r := range results {
		if r.Scenario == "broadcast" {
			broadcast = append(broadcast, r)
		} else if r.Instructions > 0 {
			counted = append(counted, r)
		} else {
			timed = append(timed, r)
		}
	}
	if len(counted) > 0 {
		writeInstructions(w, counted)
	}
	if len(timed) > 0 {
		writeTimed(w, timed)
	}
	if len(broadcast) > 0 {
		writeBroadcast(w, broadcast)
	}
}

func writeTimed(w io.Writer, results []load.Result) {
	var keys []key
	byKey := map[key]map[string][]load.Result{}
	// Each table lists its servers in the order they first ran in it.
	libOrder := map[key]map[string]int{}
	for _, r := range results {
		k := key{r.Scenario, r.Style, r.Conns, r.Size, r.Inflight}
		if byKey[k] == nil {
			byKey[k] = map[string][]load.Result{}
			libOrder[k] = map[string]int{}
			keys = append(keys, k)
		}
		byKey[k][r.Label] = append(byKey[k][r.Label], r)
		if _, ok := libOrder[k][r.Label]; !ok {
			libOrder[k][r.Label] = len(libOrder[k])
		}
	}
	for _, k := range keys {
		runs := byKey[k]
		var libs []string
		for lib := range runs {
			libs = append(libs, lib)
		}
		sortLibs(libs, libOrder[k])
		var cols []column
		for _, c := range columns(k.scenario) {
			if c.optional && !slices.ContainsFunc(results, func(r load.Result) bool {
				return r.Scenario == k.scenario && r.Conns == k.conns && c.value(r) != 0
			}) {
				continue
			}
			cols = append(cols, c)
		}
		med := map[string][]float64{}
		for _, lib := range libs {
			for _, c := range cols {
				var vs []float64
				for _, r := range runs[lib] {
					vs = append(vs, c.value(r))
				}
				med[lib] = append(med[lib], median(vs))
			}
		}
		rounds := 0
		for _, lib := range libs {
			rounds = max(rounds, len(runs[lib]))
		}

		floor, hasFloor := med["floor"]

		fmt.Fprintf(w, "### %v (median of %d)\n\n", k, rounds)
		head := []string{"lib"}
		if hasStyle(k.scenario) {
			head = append(head, "style")
		}
		for _, c := range cols {
			head = append(head, c.title)
		}
		for _, c := range cols {
			if c.short != "" {
				head = append(head, c.short+" ÷ best peer")
				if hasFloor {
					head = append(head, c.short+" ÷ floor")
				}
			}
		}
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
		for _, lib := range libs {
			row := []string{lib}
			if hasStyle(k.scenario) {
				row = append(row, echo.Style(lib))
			}
			for i, c := range cols {
				if c.optional && med[lib][i] == 0 {
					row = append(row, "–")
					continue
				}
				row = append(row, fmt.Sprintf(c.format, med[lib][i]))
			}
			for i, c := range cols {
				if c.short == "" {
					continue
				}
				best, found := 0.0, false
				for _, p := range libs {
					if !isPeer(p) || med[p][i] <= 0 {
						continue
					}
					if !found || (c.higherWins && med[p][i] > best) || (!c.higherWins && med[p][i] < best) {
						best, found = med[p][i], true
					}
				}
				row = append(row, ratio(med[lib][i], best, found))
				if hasFloor {
					row = append(row, ratio(med[lib][i], floor[i], true))
				}
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Ratios divide this row's median by the best peer's (the highest rate, the least CPU or memory) and by the floor's: above 1 is a higher rate or more cost. Echo B on the wire is the echoed message's frames, headers included, as the server compressed them. Style: stream copies each message from the library's reader into its writer; message reads it whole into one slice and writes it with one call; bytes is the plain TCP floor.")
}

func ratio(v, ref float64, ok bool) string {
	if !ok || ref <= 0 || v < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/ref)
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
