package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hybi/websocket/bench/internal/load"
)

// The broadcast scenario's results come from cmd/broadcast -json: Ops are the messages
// delivered, Conns the receivers, Style the variant ("deflate", "1 % slow", "one every
// 40ms"), counted runs (under callgrind) have Instructions.

// bcKey is one broadcast configuration.
type bcKey struct {
	conns, size int
	variant     string
}

func (k bcKey) String() string {
	s := fmt.Sprintf("%s × %d", bytesLabel(k.size), k.conns)
	if k.variant != "" {
		s += ", " + k.variant
	}
	return s
}

// withoutSlow is k's variant without its slow receivers: the run to compare it with.
func (k bcKey) withoutSlow() (bcKey, bool) {
	var kept []string
	found := false
	for _, part := range strings.Split(k.variant, ", ") {
		if strings.HasSuffix(part, "% slow") {
			found = true
			continue
		}
		kept = append(kept, part)
	}
	k.variant = strings.Join(kept, ", ")
	return k, found
}

func (k bcKey) slow() bool { _, ok := k.withoutSlow(); return ok }

// bcTable is the broadcast runs of one kind (counted or timed), by configuration and
// server, in the order they first appear.
type bcTable struct {
	keys []bcKey
	libs []string
	runs map[bcKey]map[string][]load.Result
}

func collectBroadcast(results []load.Result) bcTable {
	t := bcTable{runs: map[bcKey]map[string][]load.Result{}}
	order := map[string]int{}
	for _, r := range results {
		k := bcKey{r.Conns, r.Size, r.Style}
		if t.runs[k] == nil {
			t.runs[k] = map[string][]load.Result{}
			t.keys = append(t.keys, k)
		}
		t.runs[k][r.Label] = append(t.runs[k][r.Label], r)
		if _, ok := order[r.Label]; !ok {
			order[r.Label] = len(order)
			t.libs = append(t.libs, r.Label)
		}
	}
	slices.SortStableFunc(t.keys, func(a, b bcKey) int {
		return cmp.Or(cmp.Compare(a.conns, b.conns), cmp.Compare(a.size, b.size), strings.Compare(a.variant, b.variant))
	})
	sortLibs(t.libs, order)
	return t
}

// median is the median of f over lib's runs of k, and whether there were any.
func (t bcTable) median(k bcKey, lib string, f func(load.Result) float64) (float64, bool) {
	var vs []float64
	for _, r := range t.runs[k][lib] {
		vs = append(vs, f(r))
	}
	return median(vs), len(vs) > 0
}

// best is the best peer's median of f for k: the highest if higherWins, else the lowest.
func (t bcTable) best(k bcKey, f func(load.Result) float64, higherWins bool) (float64, bool) {
	best, found := 0.0, false
	for _, lib := range t.libs {
		v, ok := t.median(k, lib, f)
		if !ok || !isPeer(lib) || v <= 0 {
			continue
		}
		if !found || (higherWins && v > best) || (!higherWins && v < best) {
			best, found = v, true
		}
	}
	return best, found
}

func (t bcTable) rounds() int {
	n := 0
	for _, byLib := range t.runs {
		for _, rs := range byLib {
			n = max(n, len(rs))
		}
	}
	return n
}

func writeBroadcast(w io.Writer, results []load.Result) {
	var counted, timed []load.Result
	for _, r := range results {
		if r.Instructions > 0 {
			counted = append(counted, r)
		} else {
			timed = append(timed, r)
		}
	}
	if len(counted) > 0 {
		writeBroadcastInstructions(w, collectBroadcast(counted))
	}
	if len(timed) > 0 {
		writeBroadcastTimed(w, collectBroadcast(timed))
	}
}

func instrPerOp(r load.Result) float64 { return r.InstrPerOp }

func writeBroadcastInstructions(w io.Writer, t bcTable) {
	fmt.Fprintf(w, "### broadcast: server instructions per delivery, counted by callgrind (median of up to %d)\n\n", t.rounds())
	head := []string{"message × receivers"}
	head = append(head, t.libs...)
	var ours []string
	for _, lib := range t.libs {
		if !isPeer(lib) {
			ours = append(ours, lib)
			head = append(head, lib+" ÷ best peer")
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
	for _, k := range t.keys {
		row := []string{k.String()}
		for _, lib := range t.libs {
			v, ok := t.median(k, lib, instrPerOp)
			row = append(row, cell(v, ok))
		}
		best, found := t.best(k, instrPerOp, false)
		for _, lib := range ours {
			v, ok := t.median(k, lib, instrPerOp)
			row = append(row, ratio(v, best, ok && found))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Each round (messages broadcast per round in brackets), and the spread between the rounds (highest less lowest, over the median):\n\n")
	head = append([]string{"message × receivers"}, t.libs...)
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
	for _, k := range t.keys {
		row := []string{k.String()}
		for _, lib := range t.libs {
			rs := t.runs[k][lib]
			var parts []string
			var vs []float64
			for _, r := range rs {
				parts = append(parts, thousands(r.InstrPerOp))
				vs = append(vs, r.InstrPerOp)
			}
			c := strings.Join(parts, " · ")
			if len(rs) > 0 {
				c += fmt.Sprintf(" [%d]", rs[0].Messages)
			}
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
	fmt.Fprintln(w, "The server's user-space instructions in all its threads (GOMAXPROCS=1), counted by callgrind from just before the first broadcast until every receiver has every message, divided by the messages delivered; the kernel's work is not in them. A delivery is one message to one receiver. Ratios divide a median by the best peer's.")
	fmt.Fprintln(w)
}

func rate(r load.Result) float64      { return r.OpsPerSec }
func cpuPer(r load.Result) float64    { return r.ServerCPUus }
func p50(r load.Result) float64       { return r.P50us }
func p99(r load.Result) float64       { return r.P99us }
func peakRSS(r load.Result) float64   { return float64(r.PeakRSSKiB) }
func delivered(r load.Result) float64 { return 100 * float64(r.Ops) / float64(max(r.Expected, 1)) }

func writeBroadcastTimed(w io.Writer, t bcTable) {
	var plain, paced []bcKey
	for _, k := range t.keys {
		if strings.Contains(k.variant, "one every") {
			paced = append(paced, k)
		} else {
			plain = append(plain, k)
		}
	}
	if len(plain) > 0 {
		fmt.Fprintf(w, "### broadcast, back to back: deliveries per second and server CPU (median of up to %d)\n\n", t.rounds())
		head := []string{"message × receivers", "lib", "delivered %", "deliveries/s", "rate ÷ best peer", "server CPU µs/delivery", "CPU ÷ best peer", "p50 ms", "p99 ms", "peak RSS MiB"}
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
		for _, k := range plain {
			bestRate, rok := t.best(k, rate, true)
			bestCPU, cok := t.best(k, cpuPer, false)
			for _, lib := range t.libs {
				if len(t.runs[k][lib]) == 0 {
					continue
				}
				d, _ := t.median(k, lib, delivered)
				r, _ := t.median(k, lib, rate)
				c, _ := t.median(k, lib, cpuPer)
				a, _ := t.median(k, lib, p50)
				b, _ := t.median(k, lib, p99)
				m, _ := t.median(k, lib, peakRSS)
				fmt.Fprintf(w, "| %s | %s | %.1f | %.0f | %s | %.2f | %s | %.1f | %.1f | %.0f |\n", k, lib, d, r, ratio(r, bestRate, rok),
					c, ratio(c, bestCPU, cok), a/1000, b/1000, m/1024)
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Every receiver checks every message's number, order and bytes. Deliveries/s count from the first broadcast to the last message's arrival at the last receiver; the server CPU (user and system, from /proc, in 10 ms ticks) is over the same time, per delivery; the latency runs from the broadcast call to a receiver's read, and in a back-to-back run is mostly the time the message waited behind the earlier ones. Ratios divide a median by the best peer's: above 1 is a higher rate or more CPU.")
		fmt.Fprintln(w)
	}
	if len(paced) > 0 {
		fmt.Fprintf(w, "### broadcast, paced, with and without slow receivers (median of up to %d)\n\n", t.rounds())
		head := []string{"message × receivers", "lib", "delivered %", "deliveries/s", "p50 ms", "p99 ms", "server CPU µs/delivery", "peak RSS MiB", "slow closed", "of them with 1008", "last given up after s", "rate ÷ no slow", "p50 ÷ no slow", "p99 ÷ no slow"}
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)))
		for _, k := range paced {
			for _, lib := range t.libs {
				rs := t.runs[k][lib]
				if len(rs) == 0 {
					continue
				}
				d, _ := t.median(k, lib, delivered)
				r, _ := t.median(k, lib, rate)
				c, _ := t.median(k, lib, cpuPer)
				a, _ := t.median(k, lib, p50)
				b, _ := t.median(k, lib, p99)
				m, _ := t.median(k, lib, peakRSS)
				slowCells := []string{"–", "–", "–", "–", "–", "–"}
				if base, ok := k.withoutSlow(); ok {
					closed, _ := t.median(k, lib, func(r load.Result) float64 { return float64(r.SlowClosed) })
					c1008, _ := t.median(k, lib, func(r load.Result) float64 { return float64(r.Slow1008) })
					drop, _ := t.median(k, lib, func(r load.Result) float64 { return r.SlowDropMs })
					br, brok := t.median(base, lib, rate)
					ba, baok := t.median(base, lib, p50)
					bb, bbok := t.median(base, lib, p99)
					dropCell := "never"
					if drop > 0 {
						dropCell = fmt.Sprintf("%.1f", drop/1000)
					}
					slowCells = []string{fmt.Sprintf("%g of %d", closed, rs[0].SlowReceivers), fmt.Sprintf("%g", c1008), dropCell,
						ratio(r, br, brok), ratio(a, ba, baok), ratio(b, bb, bbok)}
				}
				fmt.Fprintf(w, "| %s | %s | %.1f | %.0f | %.1f | %.1f | %.2f | %.0f | %s |\n", k, lib, d, r, a/1000, b/1000, c, m/1024,
					strings.Join(slowCells, " | "))
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Slow receivers never read. Delivered, the rate and the latency are those of the other receivers; a server that waits for a slow one stalls, and its run ends at its time-out with what the others had. Slow closed: once the run is over, each slow receiver reads what it was sent for up to 3 s, and counts as closed if that ends in a close frame or the end of the stream. Last given up after: when the server's broadcast first failed on the last slow receiver it dropped, after the first broadcast. Peak RSS is the server's VmHWM. The ratios divide by the same server's median without slow receivers: within 0.90 to 1.10 is the issue's target.")
		fmt.Fprintln(w)
	}
}
