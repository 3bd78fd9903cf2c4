#!/usr/bin/env bash
# Starts nudged (from build dir $1) on ephemeral loopback ports, runs nudge-bench against it
# (telling it the broker's pid, so it reports the broker's CPU time over the measured
# interval), stops the broker by PID.
#   bench/run.sh BUILD_DIR [--smoke] [--broker-args "ARGS"] [nudge-bench args]
# --smoke: tiny run for `make test` (checks it works, times nothing), default broker flags.
# --broker-args (or $NUDGED_ARGS): extra nudged flags, e.g. "--workers 2".
# Other arguments go to nudge-bench (e.g. --subs 10000 --topics 1 --publishes 2000).
set -euo pipefail
dir=${1:?usage: bench/run.sh BUILD_DIR [--smoke] [--broker-args ARGS] [nudge-bench args]}
shift
smoke=""
bargs=${NUDGED_ARGS:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --broker-args) bargs=${2?--broker-args needs a value}; shift 2 ;;
    *) break ;;
  esac
done
log=$(mktemp /tmp/nudge-bench.XXXXXX)
data=$(mktemp -d /tmp/nudge-bench-data.XXXXXX) # a fresh store (--broker-args --memory: none)
# shellcheck disable=SC2086 # broker flags are words
"$dir/nudged" --pub 127.0.0.1:0 --ws 127.0.0.1:0 --admin 127.0.0.1:0 --http 127.0.0.1:0 --log-level warn \
  --max-conns 19000 --max-conns-per-ip 0 --data-dir "$data" $bargs >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$log" "$data"' EXIT
for _ in $(seq 1 100); do grep -q '^nudged ready' "$log" && break; sleep 0.1; done
line=$(grep -m1 '^nudged ready' "$log") || { echo "bench: broker did not start"; cat "$log"; exit 1; }
pub=$(sed -E 's/.*pub=([^ ]+).*/\1/' <<<"$line")
ws=$(sed -E 's/.*ws=([^ ]+).*/\1/' <<<"$line")
run() {
  "$dir/nudge-bench" --pub "$pub" --ws "$ws" --broker-pid "$pid" "$@" || {
    echo "bench: nudge-bench failed; broker log:"; grep -v '^nudged ready' "$log" | tail -20; return 1; }
}
if [ -n "$smoke" ]; then
  run --subs 20 --topics 4 --publishes 400 --timeout 30
  run --subs 20 --topics 4 --publishes 400 --timeout 30 --msgpack
  echo "bench-smoke: ok"
else
  run "$@"
fi
