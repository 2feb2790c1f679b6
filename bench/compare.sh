#!/usr/bin/env bash
# Two nsnet binaries side by side: N `network connect -p` then N `network
# disconnect` per round, on an IPv4 and a dual-stack network, the binaries
# alternating round by round, each round in a throwaway sandbox of its own
# (own namespaces, nftables and /run: the host's network is never touched,
# and one binary never meets the other's tables). Prints the median
# of each, timed from the shell (process start included, as a user sees it).
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [N] [ROUNDS]
# e.g. build an older commit with scripts/build.sh in its own checkout (its own
# target dir), copy the binary aside, and compare it with this one's.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bench/compare.sh OLD NEW [N] [ROUNDS]" >&2; exit 2; }
export OLD=$(realpath "$1") NEW=$(realpath "$2") N=${3:-100}
rounds=${4:-3}
echo "| round | binary | network | connect median | disconnect median |"
echo "| --- | --- | --- | --- | --- |"
for r in $(seq "$rounds"); do
  for which in old new; do
    export r which
    unshare --net --mount --propagation private --pid --fork --mount-proc --kill-child bash -c '
    set -euo pipefail
    mount -t tmpfs nsnet-compare /run; mount -t sysfs sysfs /sys; ip link set lo up
    med() { sort -n | awk "{a[NR]=\$1} END {printf \"%.2f\", a[int((NR+1)/2)]/1000}"; }
    if [ $which = old ]; then B=$OLD; else B=$NEW; fi
    export NSNET_STATE_DIR=/run/st-$which-$r NSNET_CONFIG_DIR=/run/cf-$which-$r
    for fam in v4 dual; do
      net=n$which$fam$r
      if [ $fam = v4 ]; then sub="--subnet 10.$((r * 2)).0.0/16"; else sub="--subnet 10.$((r * 2 + 1)).0.0/16 --subnet fd$r$r::/64"; fi
      $B network create $net $sub >/dev/null
      : > /run/add; : > /run/del
      for i in $(seq "$N"); do ip netns add $which$fam$r-$i; done
      for i in $(seq "$N"); do
        t0=$(date +%s%N); $B network connect $net $which$fam$r-$i -p $((20000 + i)):80 >/dev/null; t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000 )) >> /run/add
      done
      for i in $(seq "$N"); do
        t0=$(date +%s%N); $B network disconnect $net $which$fam$r-$i >/dev/null; t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000 )) >> /run/del
      done
      echo "| $r | $which | $fam | $(med < /run/add) ms | $(med < /run/del) ms |"
      $B network rm $net >/dev/null
      for i in $(seq "$N"); do ip netns del $which$fam$r-$i; done
    done
    '
  done
done
