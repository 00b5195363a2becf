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
#               pipeline-batch idle upgrade, and echo-64-msg echo-4k-msg broadcast
#               broadcast-slow [all but the last four]
#   IDLE_LIBS   servers of the idle scenario [LIBS, with ours-go, ours-keepalive and
#               ours-netconn after ours if LIBS has ours]
#   BASELINE    a checkout of this repository (a git worktree of an older commit): its
#               echoserver, built from its own bench module and library, also runs each
#               of BASELINE_LIBS [ours] in the idle scenario, as LIB-base
#
# The broadcast scenarios (cmd/broadcast, one server process, the receivers in another):
#   BC_LIBS       servers [ours-send ours-prepared gorilla gws gobwas coder]
#   BC_RECEIVERS  receiver counts [1000 10000]
#   BC_SIZES      message sizes [128 16384]
#   BC_DEFLATE    compression off, on or both [off on]
#   BC_DELIVERIES deliveries per run, natively, for 128 B and for larger messages
#                 [100000 30000]: the messages are these divided by the receivers
#   BC_CALLGRIND  receivers:rounds, the rounds in which each receiver count is also
#                 counted under callgrind ["1000:3 10000:1"]; "" counts nothing
#   BC_CG_DELIVERIES  deliveries per counted run, for 128 B and larger messages, and for
#                 coder with compression, which compresses for every receiver
#                 [50000 30000 5000]; at least one message each
#   broadcast-slow runs each of BC_LIBS with and without 1 % of receivers that never
#   read, messages paced: BC_SLOW_RECEIVERS [200], BC_SLOW_SIZE [16384],
#   BC_SLOW_MESSAGES [400], BC_SLOW_INTERVAL [20ms, in ms]
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
BC_LIBS=(${BC_LIBS:-ours-send ours-prepared gorilla gws gobwas coder})
BC_RECEIVERS=(${BC_RECEIVERS:-1000 10000})
BC_SIZES=(${BC_SIZES:-128 16384})
BC_DEFLATE=(${BC_DEFLATE:-off on})
BC_DELIVERIES=(${BC_DELIVERIES:-100000 30000})
BC_CALLGRIND=(${BC_CALLGRIND-1000:3 10000:1})
BC_CG_DELIVERIES=(${BC_CG_DELIVERIES:-50000 30000 5000})
BC_SLOW_RECEIVERS=${BC_SLOW_RECEIVERS:-200}
BC_SLOW_SIZE=${BC_SLOW_SIZE:-16384}
BC_SLOW_MESSAGES=${BC_SLOW_MESSAGES:-400}
BC_SLOW_INTERVAL=${BC_SLOW_INTERVAL:-20ms}
BASELINE_LIBS=(${BASELINE_LIBS:-ours})
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

# The idle and broadcast scenarios hold IDLE_CONNS or BC_RECEIVERS sockets open in each
# process.
most=$IDLE_CONNS
for n in "${BC_RECEIVERS[@]}" "$BC_SLOW_RECEIVERS"; do
  ((n > most)) && most=$n
done
need=$((most + 1024))
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
# Built for callgrind as callgrind.sh builds its servers; natively it runs the same.
CGO_ENABLED=0 go build -ldflags=-compressdwarf=false -o "$work/broadcast" ./cmd/broadcast
if [[ -n ${BASELINE:-} ]]; then
  (cd "$BASELINE/bench" && go build -o "$work/echoserver-base" ./cmd/echoserver)
  baseline_commit=$(git -C "$BASELINE" rev-parse --short HEAD)
  echo "baseline: $BASELINE at $baseline_commit, servers ${BASELINE_LIBS[*]/%/-base}"
fi

# The idle scenario's servers: LIBS, with the other ways of keeping an idle Conn of ours.
if [[ -n ${IDLE_LIBS:-} ]]; then
  IDLE_LIBS=(${IDLE_LIBS})
else
  IDLE_LIBS=()
  for lib in "${LIBS[@]}"; do
    IDLE_LIBS+=("$lib")
    [[ $lib == ours ]] && IDLE_LIBS+=(ours-go ours-keepalive ours-netconn)
  done
fi
if [[ -n ${BASELINE:-} ]]; then
  IDLE_LIBS+=("${BASELINE_LIBS[@]/%/-base}")
fi

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
  local lib=$1 scenario=$2 line pid addr raw= out memstats=
  # A new file for each server: the last one's line must not be taken for this one's.
  out=$(mktemp -p "$work")
  if [[ $lib == *-base ]]; then
    # The baseline's echoserver may not know -memstats.
    taskset -c "$SERVER_CPU" "$work/echoserver-base" -lib "${lib%-base}" -addr 127.0.0.1:0 >"$out" &
  else
    memstats="-memstats $work/memstats"
    # shellcheck disable=SC2086
    taskset -c "$SERVER_CPU" "$work/echoserver" -lib "$lib" -addr 127.0.0.1:0 $memstats >"$out" &
  fi
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
    -duration "$DURATION" -warmup "$WARMUP" $raw $memstats $(scenario_args "$scenario") >"$work/load.out"; then
    grep '^{' "$work/load.out" >>"$RESULTS"
    grep '^# ' "$work/load.out" | sed "s/^# /round $round: /"
  else
    echo "round $round: $lib $scenario FAILED" >&2
  fi
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# run_broadcast runs cmd/broadcast for one server, its flags after the server's name;
# with "callgrind" first, under callgrind.
run_broadcast() {
  local cg=() lib
  if [[ $1 == callgrind ]]; then
    cg=(-callgrind -timeout 900s)
    shift
  fi
  lib=$1
  shift
  # The server is the child process; the receivers stay in this one, on the other CPU.
  if timeout 1200 taskset -c "$LOAD_CPU" "$work/broadcast" -json "${cg[@]}" -libs "$lib" "$@" \
    >"$work/bc.out" 2>"$work/bc.err"; then
    grep '^{' "$work/bc.out" >>"$RESULTS"
    echo "round $round: $lib broadcast ${cg[*]:0:1} $*: $(grep -o '"ops":[0-9]*\|"expected":[0-9]*\|"ops_per_s":[0-9]*\|"instr_per_op":[0-9]*\|"server_cpu_us_per_op":[0-9.]*' "$work/bc.out" | tr '\n' ' ')"
  else
    echo "round $round: $lib broadcast ${cg[*]:0:1} $* FAILED" >&2
    tail -5 "$work/bc.err" >&2
  fi
}

# callgrind_rounds prints how many rounds count n receivers under callgrind.
callgrind_rounds() {
  local pair
  for pair in "${BC_CALLGRIND[@]}"; do
    if [[ ${pair%%:*} == "$1" ]]; then
      echo "${pair#*:}"
      return
    fi
  done
  echo 0
}

broadcast_round() {
  local n size deflate lib messages deliveries cgdeliveries d r servers
  r=$(((round - 1) % ${#BC_LIBS[@]}))
  servers=("${BC_LIBS[@]:r}" "${BC_LIBS[@]:0:r}")
  for n in "${BC_RECEIVERS[@]}"; do
    for size in "${BC_SIZES[@]}"; do
      for deflate in "${BC_DEFLATE[@]}"; do
        deliveries=${BC_DELIVERIES[0]}
        cgdeliveries=${BC_CG_DELIVERIES[0]}
        if ((size > 128)); then
          deliveries=${BC_DELIVERIES[1]}
          cgdeliveries=${BC_CG_DELIVERIES[1]}
        fi
        for lib in "${servers[@]}"; do
          messages=$((deliveries / n > 0 ? deliveries / n : 1))
          run_broadcast "$lib" -receivers "$n" -size "$size" -messages "$messages" -deflate="$([[ $deflate == on ]] && echo true || echo false)"
        done
        if ((round <= $(callgrind_rounds "$n"))); then
          for lib in "${servers[@]}"; do
            d=$cgdeliveries
            [[ $lib == coder && $deflate == on ]] && d=${BC_CG_DELIVERIES[2]}
            messages=$((d / n > 0 ? d / n : 1))
            run_broadcast callgrind "$lib" -receivers "$n" -size "$size" -messages "$messages" -deflate="$([[ $deflate == on ]] && echo true || echo false)"
          done
        fi
      done
    done
  done
}

broadcast_slow_round() {
  local lib r servers slow timeout
  r=$(((round - 1) % ${#BC_LIBS[@]}))
  servers=("${BC_LIBS[@]:r}" "${BC_LIBS[@]:0:r}")
  # The runs the servers that wait for a slow receiver never finish end at the time-out,
  # a few seconds after the last broadcast.
  timeout=$(awk -v n="$BC_SLOW_MESSAGES" -v i="${BC_SLOW_INTERVAL%ms}" 'BEGIN { printf "%ds", n * i / 1000 + 4 }')
  for lib in "${servers[@]}"; do
    for slow in 0 1; do
      ((round % 2 == 0)) && slow=$((1 - slow))
      run_broadcast "$lib" -receivers "$BC_SLOW_RECEIVERS" -size "$BC_SLOW_SIZE" -messages "$BC_SLOW_MESSAGES" \
        -interval "$BC_SLOW_INTERVAL" -slow "$slow" -timeout "$timeout"
    done
  done
}

for ((round = 1; round <= ROUNDS; round++)); do
  for scenario in "${SCENARIOS[@]}"; do
    if [[ $scenario == broadcast ]]; then
      broadcast_round
      continue
    fi
    if [[ $scenario == broadcast-slow ]]; then
      broadcast_slow_round
      continue
    fi
    servers=("${LIBS[@]}")
    if [[ $scenario == idle ]]; then
      servers=("${IDLE_LIBS[@]}")
    fi
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
