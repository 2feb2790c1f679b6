#!/usr/bin/env bash
# Installs the Debian packages nsnet's tests and demo use, when any is missing.
# nsnet itself needs only the kernel (and, for firewalling, the nft binary).
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v ps >/dev/null 2>&1 || need+=(procps)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
# tests/tools/rawpkt.py: the hand-made frames of tests/attacks.rs.
command -v python3 >/dev/null 2>&1 || need+=(python3)
# tests/serve.rs drives the page of `nsnet graph --serve` in a headless browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# tests/coexist.rs starts a Docker daemon and firewalld inside its sandboxes,
# and builds a container image from the static busybox.
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
[ -x /usr/sbin/firewalld ] || need+=(firewalld)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]} (install them as root: apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # docker.io and firewalld start their daemons when installed: on this
  # machine's own network. The tests run them only inside sandboxes, so keep
  # them from starting (policy-rc.d, which invoke-rc.d and deb-systemd-invoke
  # obey), unless a policy is in place already.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  status=0
  apt-get install -y -qq "${need[@]}" >/dev/null || status=$?
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
  exit $status
fi
