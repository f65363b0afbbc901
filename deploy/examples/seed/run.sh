#!/usr/bin/env bash
# The seed demo: starts the echo backends the EndpointSlices point at, then
# `tidegate local` on this directory, in the foreground. Ctrl-C stops all.
set -euo pipefail
TIDEGATE="${1:-bin/tidegate}"
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pids=()
cleanup() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "demo stopped"
}
trap cleanup INT TERM EXIT

start_echo() { "$TIDEGATE" echo --listen "$1" --name "$2" & pids+=($!); }
start_echo 127.0.0.2:15601 kibana-1
start_echo 127.0.0.3:15601 kibana-2
start_echo 127.0.0.4:19200 elasticsearch-1
start_echo 127.0.0.5:18080 default-backend

cat <<MSG

  tidegate demo — try, in another terminal:
    curl -H 'Host: caas.one'  localhost:8080/kibana      # kibana-1 / kibana-2, round robin
    curl -H 'Host: jingru.io' localhost:8080/es          # elasticsearch-1
    curl -H 'Host: other.io'  localhost:8080/            # the default backend
    curl localhost:10254/healthz ; curl -s localhost:10254/metrics | grep tidegate_
  Edit $DIR/endpointslices.yaml to move traffic live (no nginx reload).
  Ctrl-C stops everything.

MSG
"$TIDEGATE" local --manifests "$DIR" --workdir "${TIDEGATE_WORKDIR:-$(mktemp -d /tmp/tidegate-demo.XXXXXX)}" &
pids+=($!)
wait "${pids[-1]}"
