#!/usr/bin/env bash
# Starts nudged (from build dir $1: build or build/asan) on ephemeral loopback ports, runs
# `nudge-bench load` against it (telling it the broker's pid, for its CPU time and memory), stops
# the broker by PID.
#   bench/load.sh BUILD_DIR [--smoke] [--broker-args "ARGS"] [--broker-cpu N] [--gen-cpu N]
#                 [nudge-bench load args]
# --smoke: a tiny run of every scenario (for `make test`): exits non-zero unless each one
#          delivered everything. Seconds in total.
# --broker-args (or $NUDGED_ARGS): extra nudged flags, e.g. "--workers 2",
#          "--coalesce 'bench:*=20'" (hot-topic with a window) or "--memory" (no store: what
#          to compare with pub/sub peers; by default nudged persists to a fresh data directory)
# --broker-cpu N / --gen-cpu N: pin the broker / the generator to CPU N with taskset.
# Other arguments go to nudge-bench load (e.g. --scenario broadcast --subs 10000 --rates 20,40).
set -euo pipefail
dir=${1:?usage: bench/load.sh BUILD_DIR [--smoke] [--broker-args ARGS] [load args]}
shift
smoke=""
bargs=${NUDGED_ARGS:-}
bcpu=""
gcpu=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --broker-args) bargs=${2?--broker-args needs a value}; shift 2 ;;
    --broker-cpu) bcpu=${2?}; shift 2 ;;
    --gen-cpu) gcpu=${2?}; shift 2 ;;
    *) break ;;
  esac
done
log=$(mktemp /tmp/nudge-load.XXXXXX)
data=$(mktemp -d /tmp/nudge-load-data.XXXXXX)
pin_b=(); pin_g=()
[ -n "$bcpu" ] && pin_b=(taskset -c "$bcpu")
[ -n "$gcpu" ] && pin_g=(taskset -c "$gcpu")
pid=""
stop() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; pid=""; }
trap 'stop; rm -rf "$log" "$data"' EXIT
# start [nudged flags]: a fresh broker (fresh store), sets pid, pub, ws
start() {
  stop
  rm -rf "$data" && mkdir -p "$data"
  # shellcheck disable=SC2086 # broker flags are words
  "${pin_b[@]}" "$dir/nudged" --pub 127.0.0.1:0 --ws 127.0.0.1:0 --admin 127.0.0.1:0 --http 127.0.0.1:0 \
    --log-level warn --max-conns 19000 --max-conns-per-ip 0 --data-dir "$data" $bargs "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q '^nudged ready' "$log" && break; sleep 0.1; done
  line=$(grep -m1 '^nudged ready' "$log") || { echo "load: broker did not start"; cat "$log"; exit 1; }
  pub=$(sed -E 's/.*pub=([^ ]+).*/\1/' <<<"$line")
  ws=$(sed -E 's/.*ws=([^ ]+).*/\1/' <<<"$line")
}
start
# Exit status of nudge-bench load: 0 every step sustained, 3 some step not (not an error
# outside --smoke), other: the run failed (the broker's log says more).
run() {
  local rc=0
  "${pin_g[@]}" "$dir/nudge-bench" load --system nudge --pub "$pub" --sub "$ws" --broker-pid "$pid" "$@" || rc=$?
  if [ $rc -ne 0 ] && { [ $rc -ne 3 ] || [ -n "$smoke" ]; }; then
    echo "load: nudge-bench load $* failed ($rc); broker log:"
    grep -v '^nudged ready' "$log" | grep -v 'DEVELOPMENT MODE' | tail -20
  fi
  return $rc
}
if [ -n "$smoke" ]; then
  s=(--subs 50 --timeout 30 --drain-timeout 5 --p99-bound 10000 --max-lag 10000)
  run "${s[@]}" --scenario broadcast --rate 200 --duration 1
  run "${s[@]}" --scenario broadcast --rate 200 --duration 1 --msgpack --pubs 2
  run "${s[@]}" --scenario per-user --rates 100,300 --duration 1
  run "${s[@]}" --scenario hot-topic --burst 300
  run "${s[@]}" --scenario reconnect-storm --topics 5 --rate 200 --duration 1.5
  run "${s[@]}" --scenario catch-up --topics 20 --publishes 400
  run "${s[@]}" --scenario catch-up --topics 20 --publishes 400 --msgpack
  run "${s[@]}" --scenario idle --duration 0.5
  start --coalesce 'bench:*=20' # hot-topic with a window: fewer frames, every publish covered
  run "${s[@]}" --scenario hot-topic --burst 300
  echo "load-smoke: ok"
else
  rc=0; run "$@" || rc=$?
  [ $rc -eq 3 ] && echo "load: not every step was sustained (see the ok column)"
  exit $rc
fi
