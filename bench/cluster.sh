#!/usr/bin/env bash
# Clusters (issue 13): `nsnet cluster peers` with 10, 100 and 500 peers (the
# first apply, the same list again, and a one-peer change), for host-gw and
# vxlan; and iperf3 TCP throughput pod to pod on one node, across host-gw,
# across vxlan, beside a plain veth pair, in one run. Everything runs in a
# throwaway sandbox (new network, mount and PID namespaces, a tmpfs on /run):
# the host's network is never touched, and packets only go between namespaces
# this script makes.
#
#   bench/cluster.sh [--peers 10,100,500] [--seconds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
peers=10,100,500
seconds=5
while [ $# -gt 0 ]; do
  case $1 in
    --peers) peers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: bench/cluster.sh [--peers 10,100,500] [--seconds N]" >&2; exit 2 ;;
  esac
done
command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
scripts/deps.sh
nsnet=$(scripts/build.sh)
export NSNET_BIN=$nsnet PEERS=$peers SECONDS_RUN=$seconds
exec unshare --net --mount --propagation private --pid --fork --mount-proc --kill-child bash -c '
set -euo pipefail
mount -t tmpfs nsnet-bench /run
mount -t sysfs sysfs /sys
ip link set lo up
nodeip() { echo "192.168.$(($1 / 200)).$(($1 % 200 + 1))"; }
ms() { echo $(( ($2 - $1) / 1000 )) | awk "{printf \"%.2f\", \$1/1000}"; }
now() { date +%s%N; }
node() { local i=$1; shift; ip netns exec n$i env NSNET_STATE_DIR=/run/st-n$i NSNET_CONFIG_DIR=/run/cf-n$i "$NSNET_BIN" "$@"; }
# Underlay: two real nodes on a bridge (192.168.0.0/16, room for 500 fake peers).
ip link add ul type bridge; ip link set ul up
for i in 1 2; do
  ip netns add n$i; ip link add u$i type veth peer name eth0 netns n$i; ip link set u$i master ul up
  ip -n n$i addr add $(nodeip $i)/16 dev eth0; ip -n n$i link set eth0 up; ip -n n$i link set lo up
  ip netns add p${i}a; ip netns add p${i}b
  node $i network create pods --subnet 10.0.$i.0/24 >/dev/null
  node $i network connect pods p${i}a >/dev/null; node $i network connect pods p${i}b >/dev/null
done
list() { # N -> JSON list of N nodes: the two real ones and N-2 made up
  local n=$1 out="" k
  for k in $(seq 1 "$n"); do
    out="$out{\"name\":\"n$k\",\"nodeIP\":\"$(nodeip $k)\",\"podCIDR\":\"10.$((k / 256)).$((k % 256)).0/24\"},"
  done
  echo "[${out%,}]"
}
echo "nsnet cluster benchmarks, $(date -u +%Y-%m-%d\ %H:%M): bench/cluster.sh (nsnet $(git -C /work/main rev-parse --short HEAD 2>/dev/null || echo ?))"
echo "- machine: $(nproc) cores, $(uname -r), load $(cut -d" " -f1-3 /proc/loadavg)"
echo
echo "| backend | peers | first apply | same list again | one peer added | one peer removed |"
echo "| --- | --- | --- | --- | --- | --- |"
for backend in host-gw vxlan; do
  for n in ${PEERS//,/ }; do
    node 1 cluster leave pods >/dev/null 2>&1 || true
    node 1 cluster init pods --node-ip $(nodeip 1) --cluster-cidr 10.0.0.0/8 --backend $backend >/dev/null
    list $((n + 1)) > /run/a.json; list $((n + 2)) > /run/b.json
    t0=$(now); node 1 cluster peers pods /run/a.json >/dev/null; t1=$(now)
    node 1 cluster peers pods /run/a.json >/dev/null; t2=$(now)
    node 1 cluster peers pods /run/b.json >/dev/null; t3=$(now)
    node 1 cluster peers pods /run/a.json >/dev/null; t4=$(now)
    echo "| $backend | $n | $(ms $t0 $t1) ms | $(ms $t1 $t2) ms | $(ms $t2 $t3) ms | $(ms $t3 $t4) ms |"
  done
done
node 1 cluster leave pods >/dev/null
echo
echo "iperf3 TCP, $SECONDS_RUN s each, one stream (Gbit/s, receiver):"
echo
echo "| path | Gbit/s |"
echo "| --- | --- |"
gbps() { # CLIENT_NS SERVER_NS SERVER_ADDR
  ip netns exec $2 iperf3 -s -1 -D -p 5201 >/dev/null; sleep 0.3
  ip netns exec $1 iperf3 -c $3 -p 5201 -t "$SECONDS_RUN" -J | python3 -c "import json,sys; print(\"%.2f\" % (json.load(sys.stdin)[\"end\"][\"sum_received\"][\"bits_per_second\"]/1e9))"
}
ip netns add va; ip netns add vb
ip link add veth-a netns va type veth peer name veth-b netns vb
ip -n va addr add 10.99.0.1/24 dev veth-a; ip -n vb addr add 10.99.0.2/24 dev veth-b
ip -n va link set veth-a up; ip -n vb link set veth-b up; ip -n va link set lo up; ip -n vb link set lo up
echo "| plain veth pair (floor) | $(gbps va vb 10.99.0.2) |"
echo "| two pods on one node (bridge) | $(gbps p1a p1b 10.0.1.3) |"
for backend in host-gw vxlan; do
  for i in 1 2; do
    node $i cluster init pods --node-ip $(nodeip $i) --cluster-cidr 10.0.0.0/8 --backend $backend >/dev/null
  done
  list 2 > /run/two.json
  node 1 cluster peers pods /run/two.json >/dev/null; node 2 cluster peers pods /run/two.json >/dev/null
  echo "| pod to pod across nodes, $backend | $(gbps p1a p2a 10.0.2.2) |"
done
'
