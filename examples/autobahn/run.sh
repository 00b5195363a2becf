#!/usr/bin/env bash
# Runs the Autobahn testsuite (Docker image crossbario/autobahn-testsuite) against this
# library, in one of two roles:
#
#   examples/autobahn/run.sh server   the suite's fuzzingclient tests our echo server
#   examples/autobahn/run.sh client   our client runs against the suite's fuzzingserver
#
# Both sides use 127.0.0.1:9001: the container shares the host's network (--network host,
# which needs Docker on Linux). Reports go to examples/autobahn/reports/server or
# reports/client; open index.html there.
set -euo pipefail

mode="${1:-}"
if [[ "$mode" != server && "$mode" != client ]]; then
  echo "usage: $0 server|client" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
image=crossbario/autobahn-testsuite
mkdir -p "$here/reports"

# The testee is built first, so that starting it takes no time to compile.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd "$here/../.." && go build -o "$bin/testee" "./examples/autobahn/$mode")

# wait_for_port waits up to 30 seconds for something to listen on 127.0.0.1:9001.
wait_for_port() {
  for _ in $(seq 300); do
    if (exec 3<>/dev/tcp/127.0.0.1/9001) 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:9001" >&2
  return 1
}

# The container runs in / so that the configs' "./reports/..." is the mounted /reports.
docker_run() {
  docker run --rm --network host --workdir / \
    -v "$here/config:/config:ro" \
    -v "$here/reports:/reports" \
    "$@"
}

case "$mode" in
server)
  "$bin/testee" -addr 127.0.0.1:9001 &
  testee=$!
  trap 'kill "$testee" 2>/dev/null || true; rm -rf "$bin"' EXIT
  wait_for_port
  docker_run "$image" wstest -m fuzzingclient -s /config/fuzzingclient.json
  echo "report: $here/reports/server/index.html"
  ;;
client)
  name="autobahn-fuzzingserver-$$"
  docker_run -d --name "$name" "$image" wstest -m fuzzingserver -s /config/fuzzingserver.json >/dev/null
  trap 'docker stop "$name" >/dev/null 2>&1 || true; rm -rf "$bin"' EXIT
  wait_for_port
  "$bin/testee" -url ws://127.0.0.1:9001 -agent hybi-websocket "${@:2}"
  echo "report: $here/reports/client/index.html"
  ;;
esac
