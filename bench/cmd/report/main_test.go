package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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
	assert.Contains(t, s, "| ours | 80 | 0.0 | 0 | 0 | 13.0 | 0 | 0.80 | 0.40 | 1.30 | 2.60 |")
	assert.Contains(t, s, "| coder | 50 | 0.0 | 0 | 0 | 20.0 | 0 | 0.50 | 0.25 | 2.00 | 4.00 |")
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
	assert.Contains(t, s, "| lib | round trips/s | MB/s | p50 µs | p99 µs | server CPU µs/op | server CPU % | echo B on the wire | rate ÷ best peer | CPU ÷ best peer |")
	assert.Contains(t, s, "| ours-deflate | 90 | 0.0 | 0 | 0 | 30.0 | 0 | 1166 | 0.90 | 1.20 |")
	assert.Less(t, strings.Index(s, "| ours-deflate |"), strings.Index(s, "| gorilla-deflate |"), "ours comes first")
}
