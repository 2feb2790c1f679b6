#!/usr/bin/env bash
# The first step of the container-networking walk-through, done by nsnet inside a
# throwaway sandbox (new network, mount and PID namespaces; private /run), so the
# host's own network is never touched: two named namespaces, a veth pair between
# them, an address on each end, a ping across.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --quiet
NSNET="$PWD/target/release/nsnet"

exec unshare --net --mount --propagation private --pid --fork --mount-proc \
  env NSNET="$NSNET" bash -euo pipefail -c '
mount -t tmpfs nsnet-demo /run
mount -t sysfs sysfs /sys
step() { printf "\n\033[1m\$ %s\033[0m\n" "$*"; "$@"; }
step "$NSNET" netns add red
step "$NSNET" netns add blue
step ip netns ls
step "$NSNET" link add red blue --addr 10.0.0.100/24 --peer-addr 10.0.0.101/24
step ip -n red -br addr
step ip -n blue -br addr
step "$NSNET" netns exec red -- ping -c2 -W1 10.0.0.101
step "$NSNET" link del red veth-blue
step "$NSNET" netns del red
step "$NSNET" netns del blue
echo
echo "demo done: the sandbox and everything in it vanish now."
'
