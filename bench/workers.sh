#!/usr/bin/env bash
# Broker efficiency with one worker and with more: CPU-seconds of the broker per million
# deliveries (from nudge-bench --broker-pid) for
#   broadcast: 10,000 subscribers on 1 topic, JSON, $BCAST_PUBS publishes (default 1000)
#   1:1:       10,000 subscribers each on its own topic, $ONE_PUBS publishes (default 300000)
#              round-robin over the 10,000 topics, window 4096
# each run $REPS times (default 3) per worker count in $WORKERS (default "1 2"), worker counts
# interleaved so that a change in machine load hits both alike ($SCENARIOS picks a subset). Prints one line per run, then a
# table of medians and the ratio to the first worker count. On a machine whose cores the load
# generator shares, CPU per delivery is the comparable figure, not deliveries/s.
#   bench/workers.sh BUILD_DIR
set -euo pipefail
dir=${1:?usage: bench/workers.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
reps=${REPS:-3}
workers=${WORKERS:-1 2}
subs=${SUBS:-10000}
bcast=${BCAST_PUBS:-1000}
one=${ONE_PUBS:-300000}
scenarios=${SCENARIOS:-broadcast 1:1}
out=$(mktemp /tmp/nudge-workers.XXXXXX)
trap 'rm -f "$out"' EXIT

declare -A args=(
  [broadcast]="--subs $subs --topics 1 --publishes $bcast --timeout 300"
  [1:1]="--subs $subs --topics $subs --publishes $one --window 4096 --timeout 300"
)
field() { sed -nE "s|.* $1=([^ ]+).*|\\1|p" <<<"$2"; }
# median, min and max of the numbers on stdin
stats() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[1], v[NR] }'; }

printf '%-10s %3s %3s %12s %10s %12s %-14s %s\n' scenario w rep deliveries/s broker_cpu \
  cpu_s_per_M threads load1
for rep in $(seq 1 "$reps"); do
  for sc in $scenarios; do
    for w in $workers; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      # shellcheck disable=SC2086 # nudge-bench arguments are words
      line=$("$here/run.sh" "$dir" --broker-args "--workers $w" ${args[$sc]} | grep '^subs=') || {
        echo "workers: run failed ($sc, workers $w)"; exit 1; }
      printf '%-10s %3s %3s %12s %10s %12s %-14s %s\n' "$sc" "$w" "$rep" \
        "$(field deliveries/s "$line")" "$(field broker_cpu "$line")" \
        "$(field cpu_s_per_M "$line")" "$(field threads "$line")" "$load"
      echo "$sc $w $(field cpu_s_per_M "$line") $(field deliveries/s "$line")" >>"$out"
    done
  done
done
echo
echo "medians over $reps runs (CPU-s per million deliveries; ratio to workers ${workers%% *}):"
printf '%-10s %3s %12s %12s %8s %s\n' scenario w cpu_s_per_M deliveries/s ratio spread
for sc in $scenarios; do
  base=""
  for w in $workers; do
    read -r med lo hi < <(awk -v s="$sc" -v w="$w" '$1 == s && $2 == w { print $3 }' "$out" | stats)
    read -r dps _ < <(awk -v s="$sc" -v w="$w" '$1 == s && $2 == w { print $4 }' "$out" | stats)
    [ -z "$base" ] && base=$med
    printf '%-10s %3s %12s %12s %8s %s\n' "$sc" "$w" "$med" "$dps" \
      "$(awk -v a="$med" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" "$lo-$hi"
  done
done
