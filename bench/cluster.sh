#!/usr/bin/env bash
# The cluster side by side (docs/cluster.md §Benchmarks): nudge-bench load against
#   local:  one node, in-process engine (--memory)
#   redis1: one node on the Redis engine (a redis-server of its own)
#   three:  three nodes on one Redis behind HAProxy (broker/dist/cluster/run.sh): subscribers
#           and the publisher reach the nodes through HAProxy's round robin
# for broadcast (SUBS subscribers on one topic, RATES_B publishes/s) and per-user (SUBS
# subscribers each on its own topic, RATES_U publishes/s), DURATION s per step. Prints the load
# generator's table per run, then one line per step: deliveries/s, p50/p99, and the CPU of
# every process of the set-up (nodes, redis-server, haproxy) per delivery over the steps (from
# when every subscriber is connected). All on this machine: with 2 cores the three nodes,
# Redis, HAProxy and the load generator share them.
# SMOKE=1 (make test's bench-smoke, with tiny SUBS/RATES): fail unless every step delivered all.
#   bench/cluster.sh BUILD_DIR
set -euo pipefail
dir=${1:?usage: bench/cluster.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
subs=${SUBS:-3000}
rates_b=${RATES_B:-100,300,1000}
rates_u=${RATES_U:-2000,8000,20000}
duration=${DURATION:-4}
setups=${SETUPS:-local redis1 three}
base=${BASE:-27500}
# one worker per node; no per-address connection bound (every subscriber is on 127.0.0.1)
node_args="--workers 1 --max-conns-per-ip 0"
tmp=$(mktemp -d /tmp/nudge-bench-cluster.XXXXXX)
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# CPU ticks (user + system) of the given PIDs and their threads, summed.
ticks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$t"
}

wait_ready() { # file
  for _ in $(seq 100); do grep -q '^nudged ready' "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "cluster.sh: a node did not start: $(cat "$1")" >&2; exit 1
}

start() { # setup -> sets sub, pub, procs
  procs=()
  case $1 in
  local)
    "$dir/nudged" --memory $node_args --pub "127.0.0.1:$base" --ws "127.0.0.1:$((base + 1))" \
      --admin "127.0.0.1:$((base + 2))" --http off >"$tmp/n.out" 2>"$tmp/n.log" &
    procs=($!); wait_ready "$tmp/n.out"
    sub=127.0.0.1:$((base + 1)) pub=127.0.0.1:$base ;;
  redis1)
    redis-server --port $((base + 40)) --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$tmp" >"$tmp/r.log" 2>&1 &
    procs=($!)
    until redis-cli -p $((base + 40)) ping >/dev/null 2>&1; do sleep 0.1; done
    "$dir/nudged" --engine "redis://127.0.0.1:$((base + 40))" $node_args \
      --pub "127.0.0.1:$base" --ws "127.0.0.1:$((base + 1))" --admin "127.0.0.1:$((base + 2))" \
      --http off >"$tmp/n.out" 2>"$tmp/n.log" &
    procs+=($!); wait_ready "$tmp/n.out"
    sub=127.0.0.1:$((base + 1)) pub=127.0.0.1:$base ;;
  three)
    BASE=$base NUDGED_ARGS=$node_args setsid "$here/../broker/dist/cluster/run.sh" "$dir" >"$tmp/c.out" 2>&1 &
    local runner=$!
    for _ in $(seq 100); do grep -q '^nudge cluster' "$tmp/c.out" 2>/dev/null && break; sleep 0.1; done
    grep -q '^nudge cluster' "$tmp/c.out" || { cat "$tmp/c.out" >&2; exit 1; }
    sleep 1 # HAProxy's first checks
    procs=($runner $(pgrep -P "$runner"))
    sub=127.0.0.1:$((base + 1)) pub=127.0.0.1:$base ;;
  esac
  pids=("${procs[@]}")
}

stop() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  pids=()
  sleep 0.5
}

summary=$tmp/summary
for s in $setups; do
  for sc in broadcast per-user; do
    start "$s"
    rates=$rates_b topics=1
    [ $sc = per-user ] && rates=$rates_u topics=$subs
    "$dir/nudge-bench" load --scenario "$sc" --sub "$sub" --pub "$pub" --subs "$subs" \
      --topics "$topics" --rates "$rates" --duration "$duration" --p99-bound 500 \
      --json "$tmp/$s.$sc.json" --timeout 120 >"$tmp/out" 2>&1 &
    gen=$!
    # the set-up's CPU from when every subscriber is connected (the steps and their drains)
    until grep -q 'ready in' "$tmp/out" 2>/dev/null || ! kill -0 $gen 2>/dev/null; do
      sleep 0.05
    done
    t0=$(ticks "${procs[@]}")
    rc=0
    wait $gen || rc=$?
    t1=$(ticks "${procs[@]}")
    cat "$tmp/out"
    [ $rc = 0 ] || [ -z "${SMOKE:-}" ] || {
      echo "cluster.sh: $s $sc did not deliver everything" >&2; exit 1; }
    deliv=$(awk -F'"frames":' '{ split($2, a, ","); d += a[1] } END { print d + 0 }' \
      "$tmp/$s.$sc.json")
    cpu=$(awk -v t=$((t1 - t0)) -v d="$deliv" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.2f", d ? t / hz * 1e6 / d : 0 }')
    while read -r line; do
      r=$(sed -E 's/.*"rate_offered":([0-9]+).*/\1/' <<<"$line")
      # hint frames received per second (a first hint's "n" may count a topic's seq from 0,
      # docs/cluster.md: frames, not "delivered", are the deliveries here)
      dps=$(awk -v f="$(sed -E 's/.*"frames":([0-9]+).*/\1/' <<<"$line")" \
        -v s="$(sed -E 's/.*"span_s":([0-9.]+).*/\1/' <<<"$line")" 'BEGIN { printf "%d", s ? f / s : 0 }')
      p50=$(sed -E 's/.*"lat_p50_us":([0-9]+).*/\1/' <<<"$line")
      p99=$(sed -E 's/.*"lat_p99_us":([0-9]+).*/\1/' <<<"$line")
      ok=$(sed -E 's/.*"sustained":(true|false).*/\1/' <<<"$line")
      lost=$(sed -E 's/.*"lost":([0-9]+).*/\1/' <<<"$line")
      printf '%-7s %-9s %6s %8s %10s %8.2f %8.2f %5s %6s %s\n' "$s" "$sc" "$subs" "$r" "$dps" \
        "$(awk -v v="$p50" 'BEGIN { print v / 1000 }')" "$(awk -v v="$p99" 'BEGIN { print v / 1000 }')" \
        "$lost" "$ok" "$cpu" >>"$summary"
    done <"$tmp/$s.$sc.json"
    stop
  done
done
echo
printf '%-7s %-9s %6s %8s %10s %8s %8s %5s %6s %s\n' setup scenario subs pub/s deliv/s p50_ms \
  p99_ms lost ok "cpu_us/deliv (all processes, all steps)"
cat "$summary"
