#!/usr/bin/env bash
# Runs each fuzz target of the package in turn for DURATION (default 5m) and prints, per
# target, the executions, executions per second and new interesting inputs, from the
# progress lines of go test. Failing inputs are written to testdata/fuzz/FuzzX/ by go test;
# the script names them and exits non-zero if any target failed.
#
#   fuzz/run.sh [DURATION]          e.g. fuzz/run.sh 30s, or a count: fuzz/run.sh 50000x
#
# A duration can end a run that found nothing with a bare "context deadline exceeded": a
# race in the fuzzing coordinator of Go 1.26 and earlier (go.dev/issue/75804), fixed in Go
# 1.27. A target that fails that way without writing an input runs once more. A count
# (NNNx), which CI uses, has no deadline to race.
#
# FUZZ_MINIMIZE_TIME (default 10s) bounds the time spent minimizing each input that finds
# new coverage or fails: without a bound, both workers of a small machine can spend a short
# run minimizing. FUZZ_PARALLEL sets the number of fuzzing workers (default: one per CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-5m}"
minimize="${FUZZ_MINIMIZE_TIME:-10s}"
parallel=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then
  parallel=(-parallel "$FUZZ_PARALLEL")
fi
targets=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' fuzz_test.go)
if [ -z "$targets" ]; then
  echo "no fuzz targets in fuzz_test.go" >&2
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# seconds converts a Go duration such as 1m30s or 20s to whole seconds.
seconds() {
  awk -v d="$1" 'BEGIN {
    s = 0
    while (match(d, /^[0-9.]+(h|ms|m|s)/)) {
      part = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      n = part + 0; unit = part; sub(/^[0-9.]+/, "", unit)
      if (unit == "h") s += n * 3600; else if (unit == "m") s += n * 60
      else if (unit == "s") s += n; else s += n / 1000
    }
    printf "%d", s
  }'
}

failed=()
printf '%-20s %12s %10s %16s  %s\n' target execs execs/s "new interesting" result
for t in $targets; do
  result=ok
  for attempt in 1 2; do
    if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$duration" -fuzzminimizetime "$minimize" ${parallel[@]+"${parallel[@]}"} . >"$log" 2>&1; then
      result=ok
      break
    fi
    result=FAIL
    # The coordinator's race (see above): the deadline reported as the failure, no input.
    if [ "$attempt" = 1 ] && grep -q '^    context deadline exceeded$' "$log" &&
      ! grep -q -e 'Failing input written to' -e 'Error:' -e 'panic:' "$log"; then
      echo "$t: \"context deadline exceeded\" with no failing input (go.dev/issue/75804); running it again" >&2
      continue
    fi
    break
  done
  if [ "$result" = FAIL ]; then
    failed+=("$t")
  fi
  # The last progress line holds the totals:
  # fuzz: elapsed: 20s, execs: 95747 (2325/sec), new interesting: 32 (total: 206)
  last=$(grep '^fuzz: elapsed: .*execs:' "$log" | tail -n 1 || true)
  elapsed=$(sed -n 's/^fuzz: elapsed: \([^,]*\),.*/\1/p' <<<"$last")
  execs=$(sed -n 's/.* execs: \([0-9]*\) .*/\1/p' <<<"$last")
  interesting=$(sed -n 's/.*new interesting: \([0-9]*\) (total: \([0-9]*\)).*/\1 (total \2)/p' <<<"$last")
  secs=$(seconds "${elapsed:-0s}")
  rate=-
  if [ -n "$execs" ] && [ "$secs" -gt 0 ]; then
    rate=$((execs / secs))
  fi
  printf '%-20s %12s %10s %16s  %s\n' "$t" "${execs:--}" "$rate" "${interesting:--}" "$result"
  if [ "$result" = FAIL ]; then
    # What failed, and the input go test kept. (A failure in testdata/fuzz/ stops the
    # target before any fuzzing.)
    if ! grep -E -e 'seed corpus entry|Error:|Messages:|[0-9]: panic:|^panic:|Failing input written to|fuzzing process hung' "$log" |
      head -n 20 | sed 's/^[[:space:]]*/    /' | grep .; then
      # None of those: show how the run ended.
      grep -v '^fuzz: elapsed' "$log" | tail -n 15 | sed 's/^/    /' || true
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
