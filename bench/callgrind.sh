#!/usr/bin/env bash
# Counts the user-space instructions each echo server executes per round trip and per
# handshake, under valgrind --tool=callgrind, over a fixed number of operations with the
# counters zeroed after a warm-up; measures the idle memory per connection of each server
# natively; and prints the tables and draws the chart of both.
#
# A counted phase: the load generator opens its connections, does WARMUP_MESSAGES round
# trips on each (or WARMUP_HANDSHAKES handshakes per worker) and waits for all; it then
# zeroes the server's counters (callgrind_control -z), does the measured operations,
# waits for all, reads the counters (callgrind_control -e) before any connection closes,
# and divides by the operations. callgrind_control reaches a server blocked in a system
# call through vgdb, which valgrind enables by default.
#
# Each echo connection waits PAUSE after each echo before it sends its next message, so
# that the server finds no next message when it has answered one and parks the reader
# every time: the regime of a server whose clients do not all send back to back, and one
# that repeats within a fraction of a per cent. With no pause the server, some fifty
# times slower under valgrind than natively, races the load generator back to its read,
# and the counts flip between two regimes from one run to the next (the plain TCP echo
# between about 1,500 and 2,300 instructions per round trip).
#
# The server runs with GOMAXPROCS=1 (as run.sh's servers, pinned to one CPU, do) and
# GODEBUG=asyncpreemptoff=1: valgrind runs one thread at a time, and a second P only
# adds idle Ms spinning for work, whose instructions depend on timing; under valgrind's
# slowdown, a goroutine would also be preempted by signal far more often than natively.
# It is built with CGO_ENABLED=0, so that no C library runs in it, and with uncompressed
# DWARF, which valgrind 3.19 cannot read: its profiles would put every instruction in
# one function.
#
# Environment (defaults in brackets):
#   ROUNDS          rounds over every library, a fresh server for each [2]
#   LIBS            servers [ours ours-go gorilla coder gobwas gws floor]
#   CONNS           connections of the echo phases [16]
#   SIZES           message sizes of the echo phases; empty skips them [64 4096]
#   MESSAGES        measured round trips per connection [1000]
#   WARMUP_MESSAGES round trips per connection before them [200]
#   PAUSE           wait of each connection between an echo and its next message;
#                   0 sends back to back [300us]
#   WORKERS         handshake workers [4]
#   HANDSHAKES      measured handshakes per worker; 0 skips the phase [250]
#   WARMUP_HANDSHAKES  handshakes per worker before them [50]
#   IDLE_CONNS      connections of the idle phase, run natively; 0 skips it [5000]
#   SERVER_CPU, LOAD_CPU  CPUs to pin to [0, 1]
#   RESULTS         file the JSON lines are appended to [a new temporary file]
#   SVG             chart written by the report [callgrind.svg in the current directory]
#   CAPTION         line under the chart's title [the commit, Go's and valgrind's versions]
#   PROFILE_DIR     if set, where each measured phase's profile is kept, for
#                   callgrind_annotate: callgrind.out.LIB.rROUND.N, N counting the phases
#                   from 1 [none]
#
# About 90 seconds per round for the seven servers on an idle machine.
set -euo pipefail
out_dir=$PWD
cd "$(dirname "$0")"

ROUNDS=${ROUNDS:-2}
LIBS=(${LIBS:-ours ours-go gorilla coder gobwas gws floor})
CONNS=${CONNS:-16}
SIZES=(${SIZES-64 4096})
MESSAGES=${MESSAGES:-1000}
WARMUP_MESSAGES=${WARMUP_MESSAGES:-200}
PAUSE=${PAUSE:-300us}
WORKERS=${WORKERS:-4}
HANDSHAKES=${HANDSHAKES:-250}
WARMUP_HANDSHAKES=${WARMUP_HANDSHAKES:-50}
IDLE_CONNS=${IDLE_CONNS:-5000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SVG=${SVG:-$out_dir/callgrind.svg}
[[ $SVG == /* ]] || SVG=$out_dir/$SVG

for tool in valgrind callgrind_control; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool not found (apt-get install valgrind)" >&2; exit 1; }
done

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
RESULTS=${RESULTS:-$(mktemp --suffix=.jsonl)}

need=$((IDLE_CONNS + 1024))
if (($(ulimit -n) < need)); then
  ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

if [[ -z ${CAPTION:-} ]]; then
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown commit")
  if [[ -n $(git status --porcelain --untracked-files=no -- .. 2>/dev/null) ]]; then
    commit+=" with changes"
  fi
  CAPTION="$commit, $(go env GOVERSION), $(valgrind --version)"
fi

CGO_ENABLED=0 go build -ldflags=-compressdwarf=false -o "$work/echoserver" ./cmd/echoserver
go build -o "$work/load" ./cmd/load
go build -o "$work/report" ./cmd/report

# start_server lib [valgrind…] starts the echo server lib, under the command given if
# any, and sets server_pid, pid (the process to measure) and addr.
start_server() {
  local lib=$1 line out
  shift
  out=$(mktemp -p "$work")
  taskset -c "$SERVER_CPU" env GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 \
    "$@" "$work/echoserver" -lib "$lib" -addr 127.0.0.1:0 >"$out" 2>"$out.err" &
  server_pid=$!
  for _ in $(seq 600); do
    [[ -s $out ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  read -r line <"$out" || { echo "callgrind.sh: $lib server did not start:" >&2; cat "$out.err" >&2; return 1; }
  pid=${line#pid=}; pid=${pid%% *}
  addr=${line##*addr=}
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# load runs the load generator against the server started last, with the given flags.
load() {
  local raw=
  [[ $lib == floor ]] && raw=-raw
  if timeout 900 taskset -c "$LOAD_CPU" "$work/load" -addr "$addr" -pid "$pid" -label "$lib" $raw "$@" \
    >"$work/load.out"; then
    grep '^{' "$work/load.out" >>"$RESULTS"
    grep '^# ' "$work/load.out" | sed "s/^# /round $round: /"
  else
    echo "round $round: $lib $* FAILED" >&2
  fi
}

for ((round = 1; round <= ROUNDS; round++)); do
  # Rotate the order each round, so no library always runs first or after the same one.
  r=$(((round - 1) % ${#LIBS[@]}))
  for lib in "${LIBS[@]:r}" "${LIBS[@]:0:r}"; do
    profile=(--callgrind-out-file=/dev/null)
    dump=
    if [[ -n ${PROFILE_DIR:-} ]]; then
      mkdir -p "$PROFILE_DIR"
      profile=(--callgrind-out-file="$(realpath "$PROFILE_DIR")/callgrind.out.$lib.r$round" --dump-instr=yes)
      dump=-callgrind-dump
    fi
    start_server "$lib" valgrind --tool=callgrind "${profile[@]}"
    for size in "${SIZES[@]}"; do
      load -callgrind $dump -scenario echo -conns "$CONNS" -size "$size" -pause "$PAUSE" \
        -messages "$MESSAGES" -warmup-messages "$WARMUP_MESSAGES"
    done
    if ((HANDSHAKES > 0)); then
      load -callgrind $dump -scenario upgrade -conns "$WORKERS" -settle 200ms \
        -messages "$HANDSHAKES" -warmup-messages "$WARMUP_HANDSHAKES"
    fi
    stop_server
    if ((IDLE_CONNS > 0)); then
      start_server "$lib"
      load -scenario idle -conns "$IDLE_CONNS" -size 64
      stop_server
    fi
  done
done

echo
echo "Results: $RESULTS"
echo
"$work/report" -svg "$SVG" -caption "$CAPTION" "$RESULTS"
echo
echo "Chart: $SVG"
