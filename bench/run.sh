#!/usr/bin/env bash
# Runs every echo server against the load generator, interleaved over several rounds with
# a fresh server for each run, the server and the load generator pinned to different
# CPUs, and prints a Markdown table of the medians.
#
# Environment (defaults in brackets):
#   ROUNDS      rounds over every scenario and library [3]
#   DURATION    measured time of each timed run [5s]
#   WARMUP      unmeasured time before it [500ms]
#   IDLE_CONNS  connections of the idle scenario [10000]
#   LIBS        servers, in the order of the first round [ours gorilla coder gobwas gws floor]
#               (ours-msg and ours-bg are two more ways of using this module)
#   DEFLATE_LIBS  servers of the echo-deflate scenario, which needs permessage-deflate
#               [the -deflate server of each of LIBS that has one]
#   MSG_LIBS    servers of the whole-message scenarios (those ending in -msg)
#               [the -msg server of each of LIBS that has one, else the server itself:
#               gws, which has no streaming API, and the floor]
#   SCENARIOS   which of echo-64 echo-4k echo-1m echo-1m-msg echo-deflate pipeline
#               pipeline-batch idle upgrade, and echo-64-msg echo-4k-msg
#               [all but the last two]
#   SERVER_CPU, LOAD_CPU  CPUs to pin to [0, 1]
#   RESULTS     file the JSON lines are appended to [a new temporary file]
#
# A quick pass: ROUNDS=1 DURATION=2s IDLE_CONNS=2000 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-500ms}
IDLE_CONNS=${IDLE_CONNS:-10000}
LIBS=(${LIBS:-ours gorilla coder gobwas gws floor})
SCENARIOS=(${SCENARIOS:-echo-64 echo-4k echo-1m echo-1m-msg echo-deflate pipeline pipeline-batch idle upgrade})
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

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

# The idle scenario holds IDLE_CONNS sockets open in each process.
need=$((IDLE_CONNS + 1024))
if (($(ulimit -n) < need)); then
  ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if (($(ulimit -n) < need)); then
  echo "run.sh: ulimit -n is $(ulimit -n), too low for IDLE_CONNS=$IDLE_CONNS" >&2
  exit 1
fi

go build -o "$work/echoserver" ./cmd/echoserver
go build -o "$work/load" ./cmd/load
go build -o "$work/report" ./cmd/report

# echo-deflate needs servers that accept permessage-deflate: unless told, the -deflate
# variant of each of LIBS that has one.
if [[ -n ${DEFLATE_LIBS:-} ]]; then
  DEFLATE_LIBS=(${DEFLATE_LIBS})
else
  known=" $("$work/echoserver" -list | tr '\n' ' ') "
  DEFLATE_LIBS=()
  for lib in "${LIBS[@]}"; do
    if [[ $known == *" $lib-deflate "* ]]; then
      DEFLATE_LIBS+=("$lib-deflate")
    fi
  done
fi

# The whole-message scenarios run the whole-message namesake of each of LIBS.
if [[ -n ${MSG_LIBS:-} ]]; then
  MSG_LIBS=(${MSG_LIBS})
else
  known=" $("$work/echoserver" -list | tr '\n' ' ') "
  MSG_LIBS=()
  for lib in "${LIBS[@]}"; do
    if [[ $known == *" $lib-msg "* ]]; then
      MSG_LIBS+=("$lib-msg")
    else
      MSG_LIBS+=("$lib")
    fi
  done
fi

# scenario_args prints the load generator's flags for a scenario. -style names the style
# of the servers a scenario compares, which keeps its table apart from the other style's.
scenario_args() {
  case $1 in
    *-msg) echo "$(scenario_args "${1%-msg}" | sed 's/-style stream/-style message/')" ;;
    echo-64) echo "-scenario echo -conns 64 -size 64 -style stream" ;;
    echo-4k) echo "-scenario echo -conns 64 -size 4096 -style stream" ;;
    echo-1m) echo "-scenario echo -conns 8 -size 1048576 -style stream" ;;
    echo-deflate) echo "-scenario echo-deflate -conns 64 -size 4096" ;;
    pipeline) echo "-scenario pipeline -conns 16 -inflight 16 -size 128" ;;
    pipeline-batch) echo "-scenario pipeline-batch -conns 16 -inflight 16 -size 128" ;;
    idle) echo "-scenario idle -conns $IDLE_CONNS -size 64" ;;
    upgrade) echo "-scenario upgrade -conns 16" ;;
    *) echo "run.sh: unknown scenario $1" >&2; return 1 ;;
  esac
}

# run_one starts a fresh server for lib, runs one scenario against it and stops it.
run_one() {
  local lib=$1 scenario=$2 line pid addr raw= out
  # A new file for each server: the last one's line must not be taken for this one's.
  out=$(mktemp -p "$work")
  taskset -c "$SERVER_CPU" "$work/echoserver" -lib "$lib" -addr 127.0.0.1:0 >"$out" &
  server_pid=$!
  for _ in $(seq 200); do
    [[ -s $out ]] && break
    sleep 0.05
  done
  read -r line <"$out" || { echo "run.sh: $lib server did not start" >&2; return 1; }
  pid=${line#pid=}; pid=${pid%% *}
  addr=${line##*addr=}
  [[ $lib == floor ]] && raw=-raw
  # A failed run is reported and left out of the table; the others go on.
  # shellcheck disable=SC2046
  if timeout 600 taskset -c "$LOAD_CPU" "$work/load" -addr "$addr" -pid "$pid" -label "$lib" \
    -duration "$DURATION" -warmup "$WARMUP" $raw $(scenario_args "$scenario") >"$work/load.out"; then
    grep '^{' "$work/load.out" >>"$RESULTS"
    grep '^# ' "$work/load.out" | sed "s/^# /round $round: /"
  else
    echo "round $round: $lib $scenario FAILED" >&2
  fi
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

for ((round = 1; round <= ROUNDS; round++)); do
  for scenario in "${SCENARIOS[@]}"; do
    servers=("${LIBS[@]}")
    if [[ $scenario == *-msg ]]; then
      servers=("${MSG_LIBS[@]}")
    fi
    if [[ $scenario == echo-deflate ]]; then
      servers=("${DEFLATE_LIBS[@]}")
      if ((${#servers[@]} == 0)); then
        echo "round $round: no server of LIBS has a -deflate variant; echo-deflate skipped" >&2
        continue
      fi
    fi
    # Rotate the order each round, so no library always runs first or after the same one.
    r=$(((round - 1) % ${#servers[@]}))
    for lib in "${servers[@]:r}" "${servers[@]:0:r}"; do
      run_one "$lib" "$scenario"
    done
  done
done

echo
echo "Results: $RESULTS"
echo
"$work/report" "$RESULTS"
