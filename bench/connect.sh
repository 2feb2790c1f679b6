#!/usr/bin/env bash
# Times `nsnet network connect` (one published TCP port per endpoint) and
# `disconnect` at N endpoints on one network, and one connect that publishes
# 1000 ports. Runs in a throwaway sandbox (new network, mount and PID
# namespaces; private /run): the host's network is never touched.
#
#   bench/connect.sh [N ...]      default: 10 100 1000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
export NSNET="$PWD/target/release/nsnet"
sizes=("${@:-10 100 1000}")
[ $# -eq 0 ] && sizes=(10 100 1000)

exec unshare --net --mount --propagation private --pid --fork --mount-proc \
  env SIZES="${sizes[*]}" NSNET="$NSNET" bash -euo pipefail ${BENCH_TRACE:+-x} -c '
mount -t tmpfs nsnet-bench /run
export NSNET_CONFIG_DIR=/run/nsnet-config
ip link set lo up

# Median and 95th percentile of the numbers (microseconds) on stdin, in ms.
stats() { sort -n | awk "{a[NR]=\$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.95+0.5)]; if(p==\"\")p=a[NR]; printf \"%.2f %.2f\\n\", m/1000, p/1000}"; }
now() { local t=${EPOCHREALTIME/./}; echo "$t"; }

printf "| N | connect median | connect p95 | first 100 median | last 100 median | last/first | disconnect median | disconnect p95 |\n"
printf "|---|---|---|---|---|---|---|---|\n"
for n in $SIZES; do
  for i in $(seq 1 "$n"); do ip netns add "b$i"; done
  "$NSNET" network create bench --subnet 10.99.0.0/16 >/dev/null
  : > /run/add.txt; : > /run/del.txt
  for i in $(seq 1 "$n"); do
    t0=$(now); "$NSNET" network connect bench "b$i" -p "$((10000 + i)):80" >/dev/null; t1=$(now)
    echo $((t1 - t0)) >> /run/add.txt
  done
  for i in $(seq 1 "$n"); do
    t0=$(now); "$NSNET" network disconnect bench "b$i"; t1=$(now)
    echo $((t1 - t0)) >> /run/del.txt
  done
  k=$(( n < 100 ? n : 100 ))
  read -r am ap < <(stats < /run/add.txt)
  read -r fm _ < <(head -n "$k" /run/add.txt | stats)
  read -r lm _ < <(tail -n "$k" /run/add.txt | stats)
  read -r dm dp < <(stats < /run/del.txt)
  ratio=$(awk "BEGIN {printf \"%.2f\", $lm / $fm}")
  printf "| %s | %s ms | %s ms | %s ms | %s ms | %s | %s ms | %s ms |\n" "$n" "$am" "$ap" "$fm" "$lm" "$ratio" "$dm" "$dp"
  "$NSNET" network rm bench
  for i in $(seq 1 "$n"); do ip netns del "b$i"; done
done

ip netns add big
"$NSNET" network create big --subnet 10.98.0.0/24 >/dev/null
t0=$(now); "$NSNET" network connect big big -p 20000-20999:20000-20999 >/dev/null; t1=$(now)
elems=$(nft -j list map inet nsnet ports4_any | grep -o "\"concat\"" | wc -l)
t2=$(now); "$NSNET" network disconnect big big; t3=$(now)
printf "\n1000 ports on one endpoint: connect %.2f ms, disconnect %.2f ms (%s map elements while connected)\n" \
  "$(awk "BEGIN{print ($t1-$t0)/1000}")" "$(awk "BEGIN{print ($t3-$t2)/1000}")" "$((elems / 2))"
'
