package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReport(t *testing.T) {
	in := `{"lib":"ours","scenario":"echo","conns":64,"size":64,"ops_per_s":90,"server_cpu_us_per_op":12}
# a human line, ignored
{"lib":"gorilla","scenario":"echo","conns":64,"size":64,"ops_per_s":100,"server_cpu_us_per_op":10}
{"lib":"coder","scenario":"echo","conns":64,"size":64,"ops_per_s":50,"server_cpu_us_per_op":20}
{"lib":"floor","scenario":"echo","conns":64,"size":64,"ops_per_s":200,"server_cpu_us_per_op":5}
{"lib":"ours","scenario":"echo","conns":64,"size":64,"ops_per_s":70,"server_cpu_us_per_op":14}
{"lib":"ours","scenario":"echo","conns":64,"size":64,"ops_per_s":80,"server_cpu_us_per_op":13}
{"lib":"ours","scenario":"idle","conns":100,"size":64,"ops_per_s":1000,"rss_kib_per_conn":20}
{"lib":"gws","scenario":"idle","conns":100,"size":64,"ops_per_s":1000,"rss_kib_per_conn":10}
`
	var out strings.Builder
	write(&out, readResults(strings.NewReader(in)))
	s := out.String()
	assert.Contains(t, s, "### echo: 64 B × 64 conns (median of 3)")
	// ours: median 80 round trips/s and 13 µs; the best peer has 100 and 10, the floor 200 and 5.
	assert.Contains(t, s, "| ours | stream | 80 | 0.0 | 0 | 0 | 13.0 | 0 | 0.80 | 0.40 | 1.30 | 2.60 |")
	assert.Contains(t, s, "| coder | stream | 50 | 0.0 | 0 | 0 | 20.0 | 0 | 0.50 | 0.25 | 2.00 | 4.00 |")
	assert.Less(t, strings.Index(s, "| coder |"), strings.Index(s, "| floor |"), "the floor comes last")
	assert.Contains(t, s, "### idle: 100 connections, one 64 B echo each (median of 1)")
	// No floor in the table: no ratios to it.
	assert.Contains(t, s, "| lib | KiB/conn | conns/s | server CPU µs/conn | memory ÷ best peer | rate ÷ best peer | CPU ÷ best peer |")
	assert.Contains(t, s, "| ours | 20.0 | 1000 | 0.0 | 2.00 | 1.00 | – |")
}

// TestReportDeflate checks the compressed echo's table: its own servers, the bytes on
// the wire, ratios to the best peer.
func TestReportDeflate(t *testing.T) {
	in := `{"lib":"ours-deflate","scenario":"echo-deflate","conns":64,"size":4096,"ops_per_s":90,"server_cpu_us_per_op":30,"echo_bytes_per_op":1166}
{"lib":"gorilla-deflate","scenario":"echo-deflate","conns":64,"size":4096,"ops_per_s":60,"server_cpu_us_per_op":40,"echo_bytes_per_op":1166}
{"lib":"gws-deflate","scenario":"echo-deflate","conns":64,"size":4096,"ops_per_s":100,"server_cpu_us_per_op":25,"echo_bytes_per_op":827}
`
	var out strings.Builder
	write(&out, readResults(strings.NewReader(in)))
	s := out.String()
	assert.Contains(t, s, "### echo-deflate: 4 KiB × 64 conns (median of 1)")
	assert.Contains(t, s, "| lib | style | round trips/s | MB/s | p50 µs | p99 µs | server CPU µs/op | server CPU % | echo B on the wire | rate ÷ best peer | CPU ÷ best peer |")
	assert.Contains(t, s, "| ours-deflate | stream | 90 | 0.0 | 0 | 0 | 30.0 | 0 | 1166 | 0.90 | 1.20 |")
	assert.Less(t, strings.Index(s, "| ours-deflate |"), strings.Index(s, "| gorilla-deflate |"), "ours comes first")
}

// TestReportStyles checks that runs of the same scenario against servers of the two
// styles make two tables, each row naming its server's style.
func TestReportStyles(t *testing.T) {
	in := `{"lib":"ours","style":"stream","scenario":"echo","conns":8,"size":1048576,"ops_per_s":90}
{"lib":"gws","style":"stream","scenario":"echo","conns":8,"size":1048576,"ops_per_s":100}
{"lib":"ours-msg","style":"message","scenario":"echo","conns":8,"size":1048576,"ops_per_s":80}
{"lib":"gorilla-msg","style":"message","scenario":"echo","conns":8,"size":1048576,"ops_per_s":100}
{"lib":"gws","style":"message","scenario":"echo","conns":8,"size":1048576,"ops_per_s":40}
`
	var out strings.Builder
	write(&out, readResults(strings.NewReader(in)))
	s := out.String()
	assert.Contains(t, s, "### echo, streaming: 1 MiB × 8 conns (median of 1)")
	assert.Contains(t, s, "### echo, whole-message: 1 MiB × 8 conns (median of 1)")
	assert.Contains(t, s, "| ours | stream | 90 | 0.0 | 0 | 0 | 0.0 | 0 | 0.90 | – |")
	assert.Contains(t, s, "| gws | message | 100 |", "gws has no streaming API")
	assert.Contains(t, s, "| ours-msg | message | 80 | 0.0 | 0 | 0 | 0.0 | 0 | 0.80 | – |")
	msg := s[strings.Index(s, "whole-message: 1 MiB"):]
	assert.Less(t, strings.Index(msg, "| gorilla-msg |"), strings.Index(msg, "| gws |"),
		"servers in the order they ran in this table, not in the whole file")
}

// countedRuns are two rounds of counted runs, and the idle runs of callgrind.sh.
const countedRuns = `{"lib":"ours","scenario":"echo","conns":16,"size":64,"pause_us":300,"ops":16000,"instructions":73600000,"instr_per_op":4600}
{"lib":"gorilla","scenario":"echo","conns":16,"size":64,"pause_us":300,"ops":16000,"instructions":70000000,"instr_per_op":4375}
{"lib":"floor","scenario":"echo","conns":16,"size":64,"pause_us":300,"ops":16000,"instructions":36000000,"instr_per_op":2250}
{"lib":"ours","scenario":"upgrade","conns":4,"ops":1000,"instructions":92600000,"instr_per_op":92600}
{"lib":"gorilla","scenario":"upgrade","conns":4,"ops":1000,"instructions":86500000,"instr_per_op":86500}
{"lib":"ours","scenario":"echo","conns":16,"size":64,"pause_us":300,"ops":16000,"instructions":74400000,"instr_per_op":4650}
{"lib":"gorilla","scenario":"echo","conns":16,"size":64,"pause_us":300,"ops":16000,"instructions":70000000,"instr_per_op":4375}
{"lib":"floor","scenario":"echo","conns":16,"size":64,"pause_us":300,"ops":16000,"instructions":36000000,"instr_per_op":2250}
{"lib":"ours","scenario":"upgrade","conns":4,"ops":1000,"instructions":92600000,"instr_per_op":92600}
{"lib":"gorilla","scenario":"upgrade","conns":4,"ops":1000,"instructions":86500000,"instr_per_op":86500}
{"lib":"ours","scenario":"idle","conns":2000,"size":64,"ops":2000,"rss_kib_per_conn":12.3}
{"lib":"gorilla","scenario":"idle","conns":2000,"size":64,"ops":2000,"rss_kib_per_conn":25.9}
{"lib":"floor","scenario":"idle","conns":2000,"size":64,"ops":2000,"rss_kib_per_conn":8}
`

// TestReportInstructions checks the table of counted runs: medians side by side with
// ratios, each round's figures and their spread, and no timed table made of them.
func TestReportInstructions(t *testing.T) {
	var out strings.Builder
	write(&out, readResults(strings.NewReader(countedRuns)))
	s := out.String()
	assert.Contains(t, s, "### Instructions per operation, counted by callgrind (median of 2)")
	assert.Contains(t, s, "| lib | style | echo 64 B × 16 conns, 300 µs apart | handshake (4 workers) | echo 64 B ÷ best peer | handshake ÷ best peer | echo 64 B ÷ floor | handshake ÷ floor |")
	assert.Contains(t, s, "| ours | stream | 4,625 | 92,600 | 1.06 | 1.07 | 2.06 | – |")
	assert.Contains(t, s, "| floor | bytes | 2,250 | – | 0.51 | – | 1.00 | – |")
	assert.Contains(t, s, "| ours | 4,600 · 4,650 (1.1 %) | 92,600 · 92,600 (0.0 %) |")
	assert.Contains(t, s, "per round: echo 64 B 16000, handshake 1000")
	assert.NotContains(t, s, "### echo: 64 B", "counted runs make no timed table")
	assert.Contains(t, s, "### idle: 2000 connections")
}

// TestChart checks that the picture is well-formed SVG with a panel for each counted
// figure and one for idle memory, a bar for each server, the longest for the most.
func TestChart(t *testing.T) {
	var out strings.Builder
	require.NoError(t, drawChart(&out, readResults(strings.NewReader(countedRuns)), "commit <abc>"))
	s := out.String()
	d := xml.NewDecoder(strings.NewReader(s))
	var bars int
	widths := map[string]string{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "well-formed XML")
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			for _, a := range el.Attr {
				if a.Name.Local == "width" {
					widths[a.Value] = a.Value
				}
			}
			bars++
		}
	}
	assert.Equal(t, 1+3+2+3, bars, "the background, then 3 bars of echo, 2 of handshakes, 3 of idle memory")
	for _, title := range []string{
		"instructions per 64 B round trip (16 conns, 300 µs apart)",
		"instructions per handshake",
		"idle memory per connection (2000 connections)",
	} {
		assert.Contains(t, s, title)
	}
	assert.Contains(t, s, "; commit &lt;abc&gt;</text>", "the caption, escaped")
	assert.Contains(t, s, ">4,625</text>")
	assert.Contains(t, s, ">25.9 KiB</text>")
	assert.Contains(t, widths, "300.0", "the most is drawn the longest")

	assert.Error(t, drawChart(io.Discard, nil, ""), "nothing to draw")
}

// TestReportIdleHeap checks that the idle table shows the heap and goroutines per
// connection when some server reported them, and "–" for one that did not.
func TestReportIdleHeap(t *testing.T) {
	in := `{"lib":"ours","scenario":"idle","conns":100,"size":64,"ops_per_s":1000,"rss_kib_per_conn":12,"heap_kib_per_conn":5,"stack_kib_per_conn":4,"goroutines_per_conn":1}
{"lib":"ours-base","scenario":"idle","conns":100,"size":64,"ops_per_s":1000,"rss_kib_per_conn":11.5}
`
	var out strings.Builder
	write(&out, readResults(strings.NewReader(in)))
	s := out.String()
	assert.Contains(t, s, "| lib | KiB/conn | Go heap KiB/conn | stacks KiB/conn | goroutines/conn | conns/s | server CPU µs/conn |")
	assert.Contains(t, s, "| ours | 12.0 | 5.00 | 4.00 | 1.00 | 1000 | 0.0 |")
	assert.Contains(t, s, "| ours-base | 11.5 | – | – | – | 1000 | 0.0 |")
}

// TestReportBroadcast checks the broadcast tables: instructions per delivery by
// configuration with ours divided by the best peer, the back-to-back rates, and the slow
// run divided by the same server's run without slow receivers.
func TestReportBroadcast(t *testing.T) {
	in := `{"lib":"ours-send","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"instructions":2000000,"instr_per_op":2000,"messages":1}
{"lib":"ours-send","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"instructions":1000000,"instr_per_op":1000,"messages":1}
{"lib":"ours-send","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"instructions":1200000,"instr_per_op":1200,"messages":1}
{"lib":"gobwas","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"instructions":800000,"instr_per_op":800,"messages":1}
{"lib":"gorilla","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"instructions":1600000,"instr_per_op":1600,"messages":1}
{"lib":"ours-send","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"ops_per_s":50000,"server_cpu_us_per_op":2,"p50_us":3000,"p99_us":9000,"peak_rss_kib":20480}
{"lib":"gobwas","scenario":"broadcast","conns":1000,"size":128,"ops":1000,"expected":1000,"ops_per_s":100000,"server_cpu_us_per_op":4,"p50_us":1000,"p99_us":2000,"peak_rss_kib":10240}
{"lib":"ours-send","scenario":"broadcast","style":"one every 40ms","conns":100,"size":16384,"ops":100,"expected":100,"ops_per_s":1000,"p50_us":1000,"p99_us":2000}
{"lib":"ours-send","scenario":"broadcast","style":"1 % slow, one every 40ms","conns":100,"size":16384,"ops":99,"expected":99,"ops_per_s":990,"p50_us":1100,"p99_us":3000,"slow_receivers":1,"slow_closed":1,"slow_drop_ms":2500}
{"lib":"gobwas","scenario":"broadcast","style":"1 % slow, one every 40ms","conns":100,"size":16384,"ops":50,"expected":99,"ops_per_s":100,"p50_us":1000,"p99_us":2000,"slow_receivers":1}
`
	var out strings.Builder
	write(&out, readResults(strings.NewReader(in)))
	s := out.String()
	assert.Contains(t, s, "| message × receivers | ours-send | gobwas | gorilla | ours-send ÷ best peer |")
	assert.Contains(t, s, "| 128 B × 1000 | 1,200 | 800 | 1,600 | 1.50 |", "the median of three rounds over gobwas's")
	assert.Contains(t, s, "| 128 B × 1000 | 2,000 · 1,000 · 1,200 [1] (83.3 %) | 800 [1] | 1,600 [1] |")
	assert.Contains(t, s, "| 128 B × 1000 | ours-send | 100.0 | 50000 | 0.50 | 2.00 | 0.50 | 3.0 | 9.0 | 20 |")
	assert.Contains(t, s, "| 16 KiB × 100, 1 % slow, one every 40ms | ours-send | 100.0 | 990 | 1.1 | 3.0 | 0.00 | 0 | 1 of 1 | 0 | 2.5 | 0.99 | 1.10 | 1.50 |")
	assert.Contains(t, s, "| 16 KiB × 100, 1 % slow, one every 40ms | gobwas | 50.5 | 100 | 1.0 | 2.0 | 0.00 | 0 | 0 of 1 | 0 | never | – | – | – |")
}
