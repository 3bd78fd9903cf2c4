#!/usr/bin/env bash
# Starts nudged (from build dir $1) on ephemeral loopback ports, runs nudge-bench against it,
# stops the broker by PID. --smoke: tiny run for `make test` (checks it works, times nothing).
# Extra arguments go to nudge-bench (e.g. --subs 10000 --topics 1 --publishes 200000).
set -euo pipefail
dir=${1:?usage: bench/run.sh BUILD_DIR [--smoke] [nudge-bench args]}
shift
smoke=""
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
log=$(mktemp /tmp/nudge-bench.XXXXXX)
"$dir/nudged" --pub 127.0.0.1:0 --ws 127.0.0.1:0 --admin 127.0.0.1:0 --log-level warn \
  --max-conns 19000 >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do grep -q '^nudged ready' "$log" && break; sleep 0.1; done
line=$(grep -m1 '^nudged ready' "$log") || { echo "bench: broker did not start"; cat "$log"; exit 1; }
pub=$(sed -E 's/.*pub=([^ ]+).*/\1/' <<<"$line")
ws=$(sed -E 's/.*ws=([^ ]+).*/\1/' <<<"$line")
if [ -n "$smoke" ]; then
  "$dir/nudge-bench" --pub "$pub" --ws "$ws" --subs 20 --topics 4 --publishes 400 --timeout 30
  "$dir/nudge-bench" --pub "$pub" --ws "$ws" --subs 20 --topics 4 --publishes 400 --timeout 30 --msgpack
  echo "bench-smoke: ok"
else
  "$dir/nudge-bench" --pub "$pub" --ws "$ws" "$@"
fi
