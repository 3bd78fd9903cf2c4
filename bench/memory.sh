#!/bin/bash
# Broker memory per idle subscribed WebSocket connection (docs/bench.md §Memory per connection).
#
#   bench/memory.sh [BUILD_DIR] [--quick]     (make bench-memory)
#
# For each case: start BUILD_DIR/nudged on loopback ports (--memory, --max-conns 20000,
# --max-conns-per-ip 0), warm it up with 64 connections of the case's kind (closed again: the
# first token checks fault in ~2 MB of libcrypto pages, file-backed, once per process), read its
# VmRSS, open S idle subscribed connections with BUILD_DIR/nudge-idle (9,000 per client process),
# wait 7 s (the liveness sweep, every --ws-ping/6 = 5 s, frees the handshake's queues), read VmRSS
# again: (after - before) / S is the figure. Cases: S = 10,000 and 18,000 (the descriptor limit
# here is 20,000 per process), --workers 1 and 2, all on one topic or each on its own, in
# development mode or each with an HS256 token (--token-secret-file) and a resume position in
# its sub. Prints a table and JSON lines (build/bench-memory.jsonl). Only PIDs it started are
# signalled; every wait is bounded.
set -u
B=${1:-build}
QUICK=0
[ "${2:-}" = "--quick" ] && QUICK=1
NUDGED=$B/nudged
IDLE=$B/nudge-idle
[ -x "$NUDGED" ] && [ -x "$IDLE" ] || { echo "memory.sh: build $NUDGED and $IDLE first (make bench-memory)"; exit 2; }
TMP=$(mktemp -d /tmp/nudge-memory-bench-XXXXXX)
OUT=${OUT:-build/bench-memory.jsonl}
: >"$OUT"
head -c 48 /dev/urandom | base64 -w0 >"$TMP/secret"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# run_case WORKERS S one|own dev|tok
run_case() {
  local w=$1 s=$2 mode=$3 auth=$4
  local p=$((27400 + RANDOM % 400 * 4))
  local args=(--memory --workers "$w" --pub 127.0.0.1:$p --ws 127.0.0.1:$((p + 1))
              --admin 127.0.0.1:$((p + 2)) --http off --max-conns 20000 --max-conns-per-ip 0
              --log-level warn)
  [ "$auth" = tok ] && args+=(--token-secret-file "$TMP/secret" --public news)
  "$NUDGED" "${args[@]}" >"$TMP/out" 2>"$TMP/err" &
  local bp=$!
  PIDS=("$bp")
  for _ in $(seq 100); do grep -q "nudged ready" "$TMP/out" && break; sleep 0.1; done
  grep -q "nudged ready" "$TMP/out" || { echo "memory.sh: nudged did not start"; cat "$TMP/err"; return 1; }
  local tokarg=- epoch="" seq=()
  if [ "$auth" = tok ]; then
    tokarg=$TMP/secret
    epoch=$(curl -s "http://127.0.0.1:$((p + 2))/stats" | jq -r .epoch)
    seq=("$epoch" 0)
  fi
  timeout 10 "$IDLE" $((p + 1)) 64 900000 "$mode" "$tokarg" "${seq[@]}" >/dev/null 2>&1
  sleep 1
  local r0 first=0 n=0
  r0=$(rss "$bp")
  rm -f "$TMP"/cl.*
  while [ $first -lt "$s" ]; do
    local c=$((s - first))
    [ $c -gt 9000 ] && c=9000
    "$IDLE" $((p + 1)) $c $first "$mode" "$tokarg" "${seq[@]}" >"$TMP/cl.$n" 2>&1 &
    PIDS+=($!)
    first=$((first + c))
    n=$((n + 1))
  done
  for _ in $(seq 1500); do
    [ "$(cat "$TMP"/cl.* 2>/dev/null | grep -c ready)" -ge $n ] && break
    sleep 0.1
  done
  sleep 7
  local r1 ready
  r1=$(rss "$bp")
  ready=$(cat "$TMP"/cl.* | awk '/^ready/ {s += $2} END {print s + 0}')
  local load per
  load=$(cut -d' ' -f1 /proc/loadavg)
  per=$(((r1 - r0) * 1024 / s))
  printf "%-8s %7s %-4s %-16s %6s %8s %8s %8s %6s\n" "$w" "$s" "$mode" \
    "$([ "$auth" = tok ] && echo token+resume || echo dev)" "$ready" "$r0" "$r1" "$per" "$load"
  printf '{"workers":%d,"conns":%d,"topics":"%s","auth":"%s","ready":%d,"rss_before_kib":%d,"rss_after_kib":%d,"bytes_per_conn":%d,"load1":%s}\n' \
    "$w" "$s" "$mode" "$auth" "$ready" "$r0" "$r1" "$per" "$load" >>"$OUT"
  for q in "${PIDS[@]:1}"; do kill "$q" 2>/dev/null; done
  wait "${PIDS[@]:1}" 2>/dev/null
  kill "$bp"
  wait "$bp" 2>/dev/null
  PIDS=()
}

printf "%-8s %7s %-4s %-16s %6s %8s %8s %8s %6s\n" workers conns tops auth ready rss0_KiB rss1_KiB B/conn load1
if [ $QUICK = 1 ]; then
  run_case 2 10000 one tok
  exit 0
fi
for s in 10000 18000; do
  for w in 1 2; do
    run_case $w $s one tok
    run_case $w $s own tok
    run_case $w $s one dev
  done
done
