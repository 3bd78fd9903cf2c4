#!/bin/sh
# broker/dist/cluster/run.sh [BUILD_DIR]: a three-node nudge cluster on this machine
# (docs/cluster.md §Three nodes on one machine): redis-server, three nudged nodes on it, and
# HAProxy in front of them with broker/dist/cluster/haproxy.cfg. In the foreground until Ctrl-C,
# which stops what it started (by PID).
#   WebSocket clients: ws://127.0.0.1:7501/   publishers: 127.0.0.1:7500
#   nodes: admin on 127.0.0.1:7512, 7522, 7532 (/stats, nudge top --admin)
# BASE=7500 moves every port (BASE .. BASE+40); NUDGED_ARGS adds flags to every node.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-build}
base=${BASE:-7500}
dir=$(mktemp -d /tmp/nudge-cluster.XXXXXX)
pids=
stop() {
  trap - INT TERM EXIT
  [ -n "$pids" ] && kill $pids 2>/dev/null
  wait 2>/dev/null
  rm -rf "$dir"
}
trap stop INT TERM EXIT

redis=$((base + 40))
redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  >"$dir/redis.log" 2>&1 &
pids="$pids $!"
i=0
until redis-cli -p "$redis" ping >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 50 ] || { echo "run.sh: redis-server did not start" >&2; exit 1; }
  sleep 0.1
done

for n in 1 2 3; do
  p=$((base + 10 * n))
  "$bin/nudged" --engine "redis://127.0.0.1:$redis" --pub "127.0.0.1:$p" \
    --ws "127.0.0.1:$((p + 1))" --admin "127.0.0.1:$((p + 2))" --http off ${NUDGED_ARGS:-} \
    >"$dir/node$n.out" 2>"$dir/node$n.log" &
  pids="$pids $!"
done
for n in 1 2 3; do
  i=0
  until grep -q '^nudged ready' "$dir/node$n.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "run.sh: node $n did not start:" >&2; cat "$dir/node$n.log" >&2; exit 1; }
    sleep 0.1
  done
done

sed -e "s/@WS@/$((base + 1))/" -e "s/@PUB@/$base/" \
  -e "s/@WS1@/$((base + 11))/" -e "s/@WS2@/$((base + 21))/" -e "s/@WS3@/$((base + 31))/" \
  -e "s/@PUB1@/$((base + 10))/" -e "s/@PUB2@/$((base + 20))/" -e "s/@PUB3@/$((base + 30))/" \
  "$here/haproxy.cfg" >"$dir/haproxy.cfg"
haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
pids="$pids $!"

echo "nudge cluster: ws://127.0.0.1:$((base + 1))/  publishers 127.0.0.1:$base"
echo "  nodes' admin: 127.0.0.1:$((base + 12)) $((base + 22)) $((base + 32)); redis 127.0.0.1:$redis"
echo "  logs in $dir; Ctrl-C stops everything"
wait
