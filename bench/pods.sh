#!/usr/bin/env bash
# Times `nsnet pod create` (pause process + namespaces + one network attach +
# one published port) and `nsnet pod rm` at N pods, and reads the pause
# process's peak RSS. Runs in a throwaway sandbox (new network, mount and PID
# namespaces; private /run): the host's network is never touched.
#
#   bench/pods.sh [N ...]      default: 10 200
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
export NSNET="$PWD/target/release/nsnet"
sizes=("$@")
[ $# -eq 0 ] && sizes=(10 200)

exec unshare --net --mount --propagation private --pid --fork --mount-proc \
  env SIZES="${sizes[*]}" NSNET="$NSNET" bash -euo pipefail -c '
mount -t tmpfs nsnet-bench /run
export NSNET_CONFIG_DIR=/run/nsnet-config
ip link set lo up
stats() { sort -n | awk "{a[NR]=\$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.95+0.5)]; if(p==\"\")p=a[NR]; printf \"%.2f %.2f\\n\", m/1000, p/1000}"; }
now() { echo "${EPOCHREALTIME/./}"; }
"$NSNET" network create nsnet --subnet 10.97.0.0/16 >/dev/null

printf "| pods | create median | create p95 | rm median | rm p95 | pause peak RSS (max over pods) |\n"
printf "|---|---|---|---|---|---|\n"
for n in $SIZES; do
  : > /run/create.txt; : > /run/rm.txt; rss=0
  for i in $(seq 1 "$n"); do
    t0=$(now); "$NSNET" pod create "p$i" -p "$((20000 + i)):80" >/dev/null; t1=$(now)
    echo $((t1 - t0)) >> /run/create.txt
  done
  for pid in $(pgrep -x nsnet-pause); do
    r=$(awk "/^VmHWM:/ {print \$2}" /proc/$pid/status)
    [ "$r" -gt "$rss" ] && rss=$r
  done
  for i in $(seq 1 "$n"); do
    t0=$(now); "$NSNET" pod rm "p$i"; t1=$(now)
    echo $((t1 - t0)) >> /run/rm.txt
  done
  read -r cm cp < <(stats < /run/create.txt)
  read -r rm rp < <(stats < /run/rm.txt)
  printf "| %s | %s ms | %s ms | %s ms | %s ms | %s kB |\n" "$n" "$cm" "$cp" "$rm" "$rp" "$rss"
done
'
