package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/hybi/websocket/bench/internal/echo"
	"github.com/hybi/websocket/bench/internal/load"
)

// instrKey is one figure of the instruction table: an echo phase or the handshakes.
type instrKey struct {
	scenario    string
	conns, size int
	pauseUs     float64 // between an echo and the next message
}

// String is the figure's column title.
func (k instrKey) String() string {
	if k.scenario == "upgrade" {
		return fmt.Sprintf("handshake (%d workers)", k.conns)
	}
	return fmt.Sprintf("%s %s × %d conns%s", k.scenario, bytesLabel(k.size), k.conns, k.pause())
}

// pause says how long each connection waited between an echo and its next message.
func (k instrKey) pause() string {
	if k.pauseUs <= 0 {
		return ""
	}
	return fmt.Sprintf(", %.0f µs apart", k.pauseUs)
}

// short names the figure where the column title would be too long.
func (k instrKey) short() string {
	if k.scenario == "upgrade" {
		return "handshake"
	}
	return fmt.Sprintf("%s %s", k.scenario, bytesLabel(k.size))
}

// per names what the figure counts per, for the chart.
func (k instrKey) per() string {
	switch k.scenario {
	case "upgrade":
		return "per handshake"
	case "echo":
		return fmt.Sprintf("per %s round trip (%d conns%s)", bytesLabel(k.size), k.conns, k.pause())
	}
	return fmt.Sprintf("per %s %s operation (%d conns)", bytesLabel(k.size), k.scenario, k.conns)
}

func scenarioRank(s string) int {
	switch s {
	case "echo":
		return 0
	case "upgrade":
		return 2
	}
	return 1
}

// instrTable is what counted runs measured: the instructions per operation of each
// round, for each server and figure.
type instrTable struct {
	keys  []instrKey
	libs  []string
	runs  map[string]map[instrKey][]float64
	total map[instrKey]int64 // measured operations, per server and round
}

func collectInstructions(results []load.Result) instrTable {
	t := instrTable{runs: map[string]map[instrKey][]float64{}, total: map[instrKey]int64{}}
	order := map[string]int{}
	for _, r := range results {
		if r.Instructions <= 0 {
			continue
		}
		k := instrKey{r.Scenario, r.Conns, r.Size, r.PauseUs}
		if !slices.Contains(t.keys, k) {
			t.keys = append(t.keys, k)
		}
		if t.runs[r.Label] == nil {
			t.runs[r.Label] = map[instrKey][]float64{}
			order[r.Label] = len(order)
			t.libs = append(t.libs, r.Label)
		}
		t.runs[r.Label][k] = append(t.runs[r.Label][k], r.InstrPerOp)
		t.total[k] = r.Ops
	}
	slices.SortFunc(t.keys, func(a, b instrKey) int {
		return cmp.Or(
			scenarioRank(a.scenario)-scenarioRank(b.scenario),
			strings.Compare(a.scenario, b.scenario),
			a.size-b.size,
			a.conns-b.conns)
	})
	sortLibs(t.libs, order)
	return t
}

// median is the median of lib's figure k, and whether it was measured.
func (t instrTable) median(lib string, k instrKey) (float64, bool) {
	vs := t.runs[lib][k]
	return median(vs), len(vs) > 0
}

// bestPeer is the fewest instructions of a peer for figure k.
func (t instrTable) bestPeer(k instrKey) (float64, bool) {
	best, found := 0.0, false
	for _, lib := range t.libs {
		if v, ok := t.median(lib, k); ok && isPeer(lib) && (!found || v < best) {
			best, found = v, true
		}
	}
	return best, found
}

func writeInstructions(w io.Writer, results []load.Result) {
	t := collectInstructions(results)
	rounds := 0
	for _, lib := range t.libs {
		for _, k := range t.keys {
			rounds = max(rounds, len(t.runs[lib][k]))
		}
	}
	fmt.Fprintf(w, "### Instructions per operation, counted by callgrind (median of %d)\n\n", rounds)
	head := []string{"lib", "style"}
	for _, k := range t.keys {
		head = append(head, k.String())
	}
	for _, k := range t.keys {
		head = append(head, k.short()+" ÷ best peer")
	}
	_, hasFloor := t.runs["floor"]
	if hasFloor {
		for _, k := range t.keys {
			head = append(head, k.short()+" ÷ floor")
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
	for _, lib := range t.libs {
		row := []string{lib, echo.Style(lib)}
		for _, k := range t.keys {
			v, ok := t.median(lib, k)
			row = append(row, cell(v, ok))
		}
		for _, k := range t.keys {
			v, ok := t.median(lib, k)
			best, found := t.bestPeer(k)
			row = append(row, ratio(v, best, ok && found))
		}
		if hasFloor {
			for _, k := range t.keys {
				v, ok := t.median(lib, k)
				f, fok := t.median("floor", k)
				row = append(row, ratio(v, f, ok && fok))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Each round, and the spread between the rounds (highest less lowest, over the median):\n\n")
	head = []string{"lib"}
	for _, k := range t.keys {
		head = append(head, k.short())
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
	for _, lib := range t.libs {
		row := []string{lib}
		for _, k := range t.keys {
			vs := t.runs[lib][k]
			var parts []string
			for _, v := range vs {
				parts = append(parts, thousands(v))
			}
			c := strings.Join(parts, " · ")
			if len(vs) > 1 {
				c += fmt.Sprintf(" (%.1f %%)", 100*(slices.Max(vs)-slices.Min(vs))/median(vs))
			}
			if c == "" {
				c = "–"
			}
			row = append(row, c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)
	var ops []string
	for _, k := range t.keys {
		ops = append(ops, fmt.Sprintf("%s %d", k.short(), t.total[k]))
	}
	fmt.Fprintf(w, "The server's user-space instructions in all its threads, counted by callgrind from the end of a warm-up to the end of the measured operations (per round: %s), divided by them. A round trip is a message and its echo; a handshake is a connection opened, upgraded and dropped, the server's teardown included; the floor's handshake is a TCP connection accepted and closed. Ratios divide the median by the best peer's and by the floor's.\n\n",
		strings.Join(ops, ", "))
}

func cell(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return thousands(v)
}

// thousands formats v rounded to an integer, with commas between thousands.
func thousands(v float64) string {
	s := fmt.Sprintf("%d", int64(math.Round(v)))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
