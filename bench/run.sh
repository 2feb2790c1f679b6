#!/usr/bin/env bash
# nsnet side by side with the tools users would pick instead: the reference CNI
# plugins (bridge + host-local + portmap) and netavark. Prints markdown tables;
# bench/README.md explains how to read them.
#
#   bench/run.sh [--quick] [--sizes 10,100,1000] [--tools T,...] [--pods 10,200]
#                [--no-pods] [--no-ports] [--wait-quiet MINUTES] [--json FILE]
#
#   --quick         N=10, nsnet only (CLI and CNI faces), pods at 10: a smoke test
#                   that fails on errors (failed calls, checks, leftovers), never on times
#   --sizes         endpoints per round (default 10,100,1000); a peer whose N=100
#                   round took over 2 minutes skips larger N
#   --tools         of nsnet-cli, nsnet-cni, ref-cni, netavark (default: all)
#   --wait-quiet M  first wait up to M minutes for a 1-minute load average below 0.5
#   --json FILE     also write every figure, per operation, as JSON
#
# Installs what it needs from Debian's packages when missing. Builds nsnet with
# scripts/build.sh (static release binary, as users should deploy it) unless
# NSNET=/path/to/nsnet is set (NSNET_REV=TEXT then names it in the output). Runs as root, everything inside throwaway
# sandboxes: the whole harness in new network, mount and PID namespaces with a
# private /run, and each round in a fresh nested one, with an "outside world"
# namespace behind a veth pair. The host's network is never touched.
# Exits non-zero when any of nsnet's calls or checks fails; its last line is
# "bench: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

peers=1 prev=
for a in "$@"; do
  [ "$a" = --quick ] && peers=0
  case $prev in --tools) case $a in *ref-cni*|*netavark*) ;; *) peers=0 ;; esac ;; esac
  prev=$a
done

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need+=(iproute2)
have nft || need+=(nftables)
have socat || need+=(socat)
have ping || need+=(iputils-ping)
have strace || need+=(strace)
have python3 || need+=(python3)
have unshare || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
if [ $peers = 1 ]; then
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/portmap ] || need+=(containernetworking-plugins)
  [ -x /usr/lib/podman/netavark ] || need+=(netavark)
  have iptables || need+=(iptables)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

rev=${NSNET_REV:-$(git describe --always --dirty 2>/dev/null || echo unknown)}
if [ -z "${NSNET:-}" ]; then
  NSNET=$(scripts/build.sh)
else
  [ -n "${NSNET_REV:-}" ] || rev="$rev (NSNET=$NSNET)"
fi
NSNET=$(realpath "$NSNET")

exec unshare --net --mount --propagation private --pid --fork --mount-proc --kill-child \
  sh -c 'mount -t tmpfs -o mode=0755 nsnet-bench /run && exec "$@"' sh \
  python3 "$PWD/bench/harness" main --nsnet "$NSNET" --rev "$rev" "$@"
