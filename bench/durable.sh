#!/usr/bin/env bash
# The persisted store's benchmarks (issue #13, docs/bench.md §The persisted store):
#   publish  publishes/s and ack latency with --memory, --fsync os, batch, always: an open-loop
#            load ($PUBS publisher connections, window $WINDOW each, $PUBLISHES publishes over
#            $TOPICS topics, $SUBS subscribers) and a closed loop (one publisher, window 1,
#            $CLOSED publishes: one commit per publish)
#   catchup  what a client following $CU_TOPICS topics is sent when it resumes after
#            $CU_PUBLISHES publishes: the default resume ("after"), "replay":"all" with history
#            for every missed hint ("before": the broker's old behaviour), and "replay":"all" with
#            the default history
#   startup  $ST_TOPICS topics published (64 per publish), then the time to the ready line and
#            /stats disk.recovered / recovery_ms after a clean stop (SIGTERM) and after kill -9
# each $REPS times (default 3), modes interleaved. Every broker runs on ephemeral loopback ports
# with a data directory under /tmp, is ended by its PID and its directory removed.
#   bench/durable.sh BUILD_DIR [publish] [catchup] [startup]   (default: all three)
#   bench/durable.sh BUILD_DIR --smoke   (tiny, untimed: for `make bench-smoke`)
set -euo pipefail
dir=${1:?usage: bench/durable.sh BUILD_DIR [--smoke] [publish] [catchup] [startup]}
shift
reps=${REPS:-3}
pubs=${PUBS:-4} window=${WINDOW:-256} publishes=${PUBLISHES:-200000} topics=${TOPICS:-1000}
subs=${SUBS:-100} closed=${CLOSED:-1000}
cu_topics=${CU_TOPICS:-1000} cu_publishes=${CU_PUBLISHES:-100000}
st_topics=${ST_TOPICS:-1000000}
modes=${MODES:-memory os batch always}
smoke=""
if [ "${1:-}" = --smoke ]; then
  smoke=1 reps=1 publishes=2000 topics=50 subs=10 closed=20 cu_topics=100 cu_publishes=1000
  st_topics=6400 modes="memory batch"
  set -- publish catchup startup
fi
[ $# -gt 0 ] || set -- publish catchup startup

tmp=$(mktemp -d /tmp/nudge-durable.XXXXXX)
pid="" pidfile="$tmp/pids"
touch "$pidfile"
cleanup() {
  # only the brokers this script started, by PID
  while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$pidfile"
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start DATA_OR_EMPTY ARGS...: a broker on ephemeral ports; sets pid, pub, ws, admin, ready_ms
# (from the fork to the ready line, polled every 5 ms)
nstart=0
start() {
  # a log file per broker: the redirection happens in the child, after this shell may already
  # have looked, so a reused file could show the previous broker's ready line
  nstart=$((nstart + 1))
  log="$tmp/log.$nstart"
  local data=$1
  shift
  local t0 t1
  t0=$(date +%s%N)
  # shellcheck disable=SC2086 # flags are words
  "$dir/nudged" --pub 127.0.0.1:0 --ws 127.0.0.1:0 --admin 127.0.0.1:0 --http 127.0.0.1:0 --log-level warn \
    ${data:+--data-dir "$data"} "$@" >"$log" 2>&1 &
  pid=$!
  echo "$pid" >>"$pidfile"
  while :; do
    grep -qs '^nudged ready' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    [ $(($(date +%s%N) - t0)) -lt 60000000000 ] || break
    sleep 0.005
  done
  t1=$(date +%s%N)
  local line
  line=$(grep -m1 '^nudged ready' "$log") || {
    echo "durable: broker did not start within $(((t1 - t0) / 1000000)) ms; log:"
    cat "$log"
    if kill -0 "$pid" 2>/dev/null; then
      echo "(still running; threads waiting in: $(cat /proc/"$pid"/task/*/wchan | tr '\0' ' '))"
    else
      wait "$pid" && echo "(exited 0)" || echo "(exited $?)"
    fi
    exit 1
  }
  ready_ms=$(((t1 - t0) / 1000000))
  pub=$(sed -E 's/.*pub=([^ ]+).*/\1/' <<<"$line")
  ws=$(sed -E 's/.*ws=([^ ]+).*/\1/' <<<"$line")
  admin=$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$line")
}
# stop [SIGNAL]: end the broker (TERM by default) and wait for it; sets stop_ms
stop() {
  local t0
  t0=$(date +%s%N)
  kill "-${1:-TERM}" "$pid"
  wait "$pid" 2>/dev/null || true
  stop_ms=$((($(date +%s%N) - t0) / 1000000))
}
bench() {
  local sub=()
  [ "$1" = catchup ] && { sub=(catchup); shift; }
  "$dir/nudge-bench" "${sub[@]}" --pub "$pub" --ws "$ws" "$@" || {
    echo "durable: nudge-bench failed; broker log:"; tail -20 "$log"; exit 1; }
}
stats() { curl -s --max-time 10 "http://$admin/stats"; }
field() { sed -nE "s|.* $1=([^ ]+).*|\\1|p" <<<"$2"; }
# median (min-max) of the numbers on stdin
summary() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$3" | summary; }
load() { cut -d' ' -f1 /proc/loadavg; }
mode_args() {
  case "$1" in
    memory) echo "--memory" ;;
    *) echo "--fsync $1" ;;
  esac
}

publish() {
  local out="$tmp/publish.txt" data line cl
  : >"$out"
  echo "== publish: $pubs publishers x window $window, $publishes publishes over $topics topics," \
    "$subs subscribers; closed loop: 1 publisher, window 1, $closed publishes"
  printf '%-7s %3s %5s %10s %8s %8s %8s | %9s %8s %8s %8s\n' mode rep load pubs/s p50_us p99_us \
    mean_us closed/s p50_us p99_us mean_us
  for rep in $(seq 1 "$reps"); do
    for m in $modes; do
      data="$tmp/data-$m"
      rm -rf "$data"
      [ "$m" = memory ] && data=""
      local l
      l=$(load)
      # shellcheck disable=SC2046 # flags are words
      start "$data" $(mode_args "$m")
      line=$(bench --subs "$subs" --topics "$topics" --publishes "$publishes" --pubs "$pubs" \
        --window "$window" --timeout 300 | grep '^subs=')
      cl=$(bench --subs 0 --topics "$topics" --publishes "$closed" --pubs 1 --window 1 \
        --timeout 300 | grep '^subs=')
      stop
      [ -n "$data" ] && rm -rf "$data"
      printf '%-7s %3s %5s %10s %8s %8s %8s | %9s %8s %8s %8s\n' "$m" "$rep" "$l" \
        "$(field publishes/s "$line")" "$(field ack_p50_us "$line")" "$(field ack_p99_us "$line")" \
        "$(field ack_mean_us "$line")" "$(field publishes/s "$cl")" "$(field ack_p50_us "$cl")" \
        "$(field ack_p99_us "$cl")" "$(field ack_mean_us "$cl")"
      echo "$m $(field publishes/s "$line") $(field ack_p50_us "$line") $(field ack_p99_us "$line")" \
        "$(field publishes/s "$cl") $(field ack_p50_us "$cl") $(field ack_p99_us "$cl")" >>"$out"
    done
  done
  echo "medians (min-max) over $reps runs:"
  echo "| mode | publishes/s | ack p50 µs | ack p99 µs | closed loop publishes/s | closed p50 µs | closed p99 µs |"
  echo "|---|---|---|---|---|---|---|"
  for m in $modes; do
    echo "| $m | $(col "$m" 2 "$out") | $(col "$m" 3 "$out") | $(col "$m" 4 "$out") |" \
      "$(col "$m" 5 "$out") | $(col "$m" 6 "$out") | $(col "$m" 7 "$out") |"
  done
}

catchup() {
  local out="$tmp/catchup.txt" v line
  : >"$out"
  echo "== catchup: a client follows $cu_topics topics, $cu_publishes publishes while it is away," \
    "then it resumes all of them"
  declare -A bargs=(
    [after]=""
    [before]="--hist-per-topic 200 --hist-bytes 1073741824"
    [all-default]=""
  )
  declare -A cargs=([after]="" [before]="--replay-all" [all-default]="--replay-all")
  printf '%-12s %3s %5s %10s %7s %7s %8s %7s %10s\n' variant rep load bytes frames hints \
    covered resets catchup_ms
  for rep in $(seq 1 "$reps"); do
    for v in after before all-default; do
      local l
      l=$(load)
      rm -rf "$tmp/data-cu"
      # shellcheck disable=SC2086 # flags are words
      start "$tmp/data-cu" --replay-rate 0 ${bargs[$v]} # measures catch-up, not its budget
      # shellcheck disable=SC2086
      line=$(bench catchup --topics "$cu_topics" --publishes "$cu_publishes" ${cargs[$v]} \
        --timeout 300 | grep '^catchup ')
      stop
      rm -rf "$tmp/data-cu"
      printf '%-12s %3s %5s %10s %7s %7s %8s %7s %10s\n' "$v" "$rep" "$l" "$(field bytes "$line")" \
        "$(field frames "$line")" "$(field hints "$line")" "$(field covered "$line")" \
        "$(field resets "$line")" "$(field catchup_ms "$line")"
      echo "$v $(field bytes "$line") $(field frames "$line") $(field hints "$line")" \
        "$(field resets "$line") $(field catchup_ms "$line") $(field sent "$line")" \
        "$(($(field hint_bytes "$line") + $(field reset_bytes "$line")))" >>"$out"
    done
  done
  echo "medians (min-max) over $reps runs:"
  echo "| resume | bytes received | of which hints and resets | frames | hints | resets | catch-up ms | bytes sent |"
  echo "|---|---|---|---|---|---|---|---|"
  for v in after before all-default; do
    echo "| $v | $(col "$v" 2 "$out") | $(col "$v" 8 "$out") | $(col "$v" 3 "$out") |" \
      "$(col "$v" 4 "$out") | $(col "$v" 5 "$out") | $(col "$v" 6 "$out") | $(col "$v" 7 "$out") |"
  done
}

startup() {
  local out="$tmp/startup.txt" data="$tmp/data-st" max=$((st_topics + st_topics / 10 + 1000))
  local flags="--max-topics-total $max --max-positions $max" line s fill_s kb
  : >"$out"
  echo "== startup: $st_topics topics published (64 per publish, 2 publishers), then restarted"
  printf '%-6s %3s %5s %8s %8s %8s %10s %9s %11s %8s %8s\n' stop rep load fill_s stop_ms disk_MB \
    ready_ms recovered recovery_ms rss_MB kept
  for rep in $(seq 1 "$reps"); do
    for how in TERM KILL; do
      local l
      l=$(load)
      rm -rf "$data"
      # shellcheck disable=SC2086 # flags are words
      start "$data" $flags
      line=$(bench --subs 0 --topics "$st_topics" --multi 64 --publishes $((st_topics / 64)) \
        --pubs 2 --window 64 --timeout 600 | grep '^subs=')
      fill_s=$(field time "$line")
      stop "$how"
      kb=$(du -sk --apparent-size "$data" | cut -f1)
      # shellcheck disable=SC2086
      start "$data" $flags
      s=$(stats)
      local rss
      rss=$(awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
      printf '%-6s %3s %5s %8s %8s %8s %10s %9s %11s %8s %8s\n' "$how" "$rep" "$l" "${fill_s%s}" \
        "$stop_ms" $((kb / 1024)) "$ready_ms" "$(jq -r .disk.recovered <<<"$s")" \
        "$(jq -r .disk.recovery_ms <<<"$s")" "$rss" "$(jq -r .positions.kept <<<"$s")"
      echo "$how $ready_ms $(jq -r .disk.recovery_ms <<<"$s") $(jq -r .disk.recovered <<<"$s")" \
        "${fill_s%s} $((kb / 1024)) $rss" >>"$out"
      stop
      rm -rf "$data"
    done
  done
  echo "medians (min-max) over $reps runs:"
  echo "| stopped by | ready line ms | disk.recovery_ms | disk.recovered | fill s | data dir MB | RSS MB |"
  echo "|---|---|---|---|---|---|---|"
  for how in TERM KILL; do
    echo "| $how | $(col "$how" 2 "$out") | $(col "$how" 3 "$out") | $(col "$how" 4 "$out") |" \
      "$(col "$how" 5 "$out") | $(col "$how" 6 "$out") | $(col "$how" 7 "$out") |"
  done
}

echo "durable: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for b in "$@"; do
  case "$b" in
    publish | catchup | startup) "$b" ;;
    *) echo "durable: unknown benchmark $b"; exit 2 ;;
  esac
done
[ -z "$smoke" ] || echo "durable-smoke: ok"
