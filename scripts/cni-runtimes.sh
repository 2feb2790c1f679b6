#!/usr/bin/env bash
# Real container runtimes drive nsnet's CNI plugin, unmodified: podman 4 with its
# CNI backend (`podman run -p`, `podman pod create -p`) and containerd's
# `ctr run --cni`. Opt-in: it installs podman, containerd, runc, busybox-static
# and containernetworking-plugins (for containerd's loopback) when missing.
#
# Everything runs inside a throwaway sandbox (new network, mount and PID
# namespaces; fresh tmpfs on /run, /tmp, /var/lib, /opt and /etc/cni/net.d; the
# host's cgroup mounts bound back in for the runtimes), so the host's network is
# never touched: the "outside world" is one more namespace at 203.0.113.2. The
# container image is built offline from Debian's busybox-static.
#
# Usage: scripts/cni-runtimes.sh            (builds nsnet --release)
#        NSNET=/path/to/nsnet scripts/cni-runtimes.sh
# Exits non-zero when any check fails; prints "N passed, M failed" last.
set -euo pipefail

if [ "${1:-}" != --inside ]; then
  cd "$(dirname "$0")/.."
  need=()
  command -v podman >/dev/null 2>&1 || need+=(podman)
  command -v containerd >/dev/null 2>&1 || need+=(containerd)
  command -v runc >/dev/null 2>&1 || need+=(runc)
  [ -x /bin/busybox ] && /bin/busybox --list | grep -qx httpd || need+=(busybox-static)
  [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
  command -v nft >/dev/null 2>&1 || need+=(nftables)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v socat >/dev/null 2>&1 || need+=(socat)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ -z "${NSNET:-}" ]; then
    NSNET=$(scripts/build.sh)
  fi
  exec unshare --net --mount --propagation private --pid --fork --mount-proc \
    env NSNET="$(realpath "$NSNET")" bash "$(realpath "$0")" --inside
fi

# ---- inside the sandbox ----
passed=0 failed=0
step() { # step COMMAND...: show it (quoted where needed), then run it
  local shown="" a
  for a in "$@"; do
    case $a in *[[:space:]\;\$\>\'\"]*) shown+=" '${a//\'/\'\\\'\'}'" ;; *) shown+=" $a" ;; esac
  done
  printf '\n\033[1m$%s\033[0m\n' "$shown"
  "$@"
}
note() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
check() { # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if "$@" >/run/check.out 2>&1; then
    passed=$((passed + 1)); echo "ok - $what"
  else
    failed=$((failed + 1)); echo "FAIL - $what"; sed 's/^/    /' /run/check.out | tail -5
  fi
}
says() { # says EXPECTED COMMAND...: the command prints EXPECTED
  local want=$1; shift
  local got; got=$("$@" 2>&1) || true
  [ "$(echo "$got" | tr -d '\r' | tail -1)" = "$want" ] || { echo "expected '$want', got '$got'"; return 1; }
}
retry() { # retry COMMAND...: up to 20 tries, 0.25 s apart
  local i; for i in $(seq 20); do "$@" && return 0; sleep 0.25; done; "$@"
}

mount -t tmpfs nsnet-runtimes /run
mkdir -p /run/cni-bin /run/cg
cp "$NSNET" /run/cni-bin/nsnet
NSNET=/run/cni-bin/nsnet
mount --rbind /sys/fs/cgroup /run/cg
mount -t sysfs sysfs /sys
mount --rbind /run/cg /sys/fs/cgroup
mount -t tmpfs tmp /tmp
mount -t tmpfs var-lib /var/lib
mount -t tmpfs opt /opt
mkdir -p /etc/cni/net.d
mount -t tmpfs cni-conf /etc/cni/net.d
mkdir -p /opt/cni/bin
cp /usr/lib/cni/loopback /opt/cni/bin/
ln -s /run/cni-bin/nsnet /opt/cni/bin/nsnet
ip link set lo up
# nsnet runs with its defaults (/run/nsnet, /var/lib/nsnet, both private here):
# runtimes do not pass their environment to every plugin call.
unset NSNET_STATE_DIR NSNET_CONFIG_DIR
LOG=/run/nsnet-cni.log

# The outside world: a namespace with a web server, reached through the host.
ip netns add outside
ip link add veth-outside type veth peer name veth-host netns outside
ip addr add 203.0.113.1/24 dev veth-outside && ip link set veth-outside up
ip -n outside addr add 203.0.113.2/24 dev veth-host
ip -n outside link set veth-host up && ip -n outside link set lo up
mkdir -p /run/outside-www && echo outside > /run/outside-www/index.html
ip netns exec outside busybox httpd -p 203.0.113.2:7000 -h /run/outside-www

# The image: busybox-static as an OCI archive, loaded into both runtimes.
make_image() {
  local work=/run/image
  mkdir -p $work/rootfs/{bin,etc,proc,sys,dev,tmp,root,www} $work/oci/blobs/sha256
  cp /bin/busybox $work/rootfs/bin/busybox
  for app in $(/bin/busybox --list); do
    [ "$app" = busybox ] || ln -s busybox "$work/rootfs/bin/$app"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >$work/rootfs/etc/passwd
  echo 'root:x:0:' >$work/rootfs/etc/group
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C $work/rootfs -cf $work/layer.tar .
  blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" $work/oci/blobs/sha256/$d; echo "$d $(stat -c %s $work/oci/blobs/sha256/$d)"; }
  read -r layer lsize < <(blob $work/layer.tar)
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" >$work/config.json
  read -r config csize < <(blob $work/config.json)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$config" "$csize" "$layer" "$lsize" >$work/manifest.json
  read -r manifest msize < <(blob $work/manifest.json)
  echo '{"imageLayoutVersion":"1.0.0"}' >$work/oci/oci-layout
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/nsnet-busybox:latest","org.opencontainers.image.ref.name":"latest"}}]}' "$manifest" "$msize" >$work/oci/index.json
  tar -C $work/oci -cf /run/busybox-oci.tar .
}
make_image
IMAGE=docker.io/library/nsnet-busybox:latest
SERVE='echo $0 >/www/index.html; exec httpd -f -p 80 -h /www'

# Nothing of an attachment is left: no host veth, no lease, no port or member element.
leftovers() {
  local veths leases elems=0 s
  veths=$(ip -o link show | grep -c ' nsv' || true)
  leases=$($NSNET network inspect "$1" | grep -c '"address"' || true)
  for s in "set members4" "set members6" "map ports4" "map ports4_any" "map ports6" "map ports6_any"; do
    set -- $s
    if nft list "$1" inet nsnet "$2" | grep -q 'elements ='; then elems=$((elems + 1)); fi
  done
  echo "host veths: $veths, leases: $leases, sets and maps with endpoint elements: $elems"
  [ "$veths" = 0 ] && [ "$leases" = 0 ] && [ "$elems" = 0 ]
}

############################################################ podman
note "podman $(podman --version | cut -d' ' -f3), CNI backend, network nsnet (type nsnet)"
mkdir -p /run/containers /run/cni-conf
cat >/run/containers/containers.conf <<'EOF'
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "/run/containers/events.log"
runtime = "runc"
[network]
network_backend = "cni"
cni_plugin_dirs = ["/run/cni-bin"]
network_config_dir = "/run/cni-conf"
default_network = "nsnet"
EOF
cat >/run/containers/storage.conf <<'EOF'
[storage]
driver = "vfs"
graphroot = "/run/containers/storage"
runroot = "/run/containers/runroot"
EOF
cat >/run/cni-conf/nsnet.conflist <<EOF
{
  "cniVersion": "1.0.0",
  "name": "nsnet",
  "plugins": [{
    "type": "nsnet", "bridge": "nsbr-podman", "isGateway": true, "ipMasq": true, "hairpinMode": true,
    "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.88.0.0/24", "gateway": "10.88.0.1"}]],
             "routes": [{"dst": "0.0.0.0/0"}]},
    "capabilities": {"portMappings": true, "ips": true, "mac": true},
    "logFile": "$LOG"
  }]
}
EOF
# podman writes its own conflists in 0.4.0: a second network in that version.
cat >/run/cni-conf/nsnet04.conflist <<EOF
{"cniVersion": "0.4.0", "name": "nsnet04", "plugins": [{"type": "nsnet", "isGateway": true, "ipMasq": true,
  "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.87.0.0/24"}]]}, "logFile": "$LOG"}]}
EOF
export CONTAINERS_CONF=/run/containers/containers.conf CONTAINERS_STORAGE_CONF=/run/containers/storage.conf
step cat /run/cni-conf/nsnet.conflist
step podman load -q -i /run/busybox-oci.tar
step podman network ls
step podman run -d --name web -p 8080:80 $IMAGE sh -c "$SERVE" web
WEB=$(podman inspect -f '{{.NetworkSettings.Networks.nsnet.IPAddress}}' web)
echo "web is at $WEB"
step podman run --rm $IMAGE sh -c "ip -4 -o addr show eth0; ip route"
check "podman: a container reaches the gateway" podman run --rm $IMAGE ping -c1 -W2 10.88.0.1
check "podman: a container reaches another container" says web podman run --rm $IMAGE wget -qO- "http://$WEB/"
check "podman: a container reaches the outside namespace" says outside podman run --rm $IMAGE wget -qO- http://203.0.113.2:7000/
check "podman: a 0.4.0 network works too" says outside podman run --rm --network nsnet04 $IMAGE wget -qO- http://203.0.113.2:7000/
check "podman run -p 8080:80: answers from outside" retry says web ip netns exec outside busybox wget -qO- http://203.0.113.1:8080/
check "podman run -p 8080:80: answers at 127.0.0.1" says web busybox wget -qO- http://127.0.0.1:8080/
step podman pod create --name pod1 -p 8081:80
step podman run -d --pod pod1 --name podweb $IMAGE sh -c "$SERVE" pod
check "podman pod: containers of a pod talk over 127.0.0.1" retry says pod podman run --rm --pod pod1 $IMAGE wget -qO- http://127.0.0.1/
check "podman pod create -p 8081:80: answers from outside" retry says pod ip netns exec outside busybox wget -qO- http://203.0.113.1:8081/
check "podman pod create -p 8081:80: answers at 127.0.0.1" says pod busybox wget -qO- http://127.0.0.1:8081/
step $NSNET port ls
step podman rm -f -t 0 web
step podman pod rm -f -t 0 pod1
podman_leftovers() { leftovers nsnet && leftovers nsnet04; }
check "podman: removal leaves nothing behind" retry podman_leftovers
check "podman: the port is closed again" sh -c '! busybox wget -T 2 -qO- http://127.0.0.1:8080/'

############################################################ containerd
note "containerd $(containerd --version | cut -d' ' -f3), ctr run --cni, network ctrnet (type nsnet)"
mkdir -p /run/ctrd
cat >/run/ctrd/config.toml <<'EOF'
version = 2
root = "/run/ctrd/root"
state = "/run/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "/run/ctrd/containerd.sock"
EOF
cat >/etc/cni/net.d/10-ctrnet.conflist <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ctrnet",
  "plugins": [{
    "type": "nsnet", "isGateway": true, "ipMasq": true,
    "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.89.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]},
    "logFile": "$LOG"
  }]
}
EOF
containerd --config /run/ctrd/config.toml >/run/ctrd/log 2>&1 &
CONTAINERD=$!
CTR="ctr -a /run/ctrd/containerd.sock"
retry test -S /run/ctrd/containerd.sock
step $CTR images import --snapshotter native /run/busybox-oci.tar
# ctr 1.6 sends DEL (with an empty CNI_NETNS) when a container it runs in the
# foreground exits; detached ones (-d) never get one, so none are used here.
RUN="$CTR run --rm --cni --snapshotter native $IMAGE"
$RUN c1 sh -c "$SERVE" c1 >/run/ctrd/c1.out 2>&1 &
C1_CTR=$!
retry sh -c "$CTR task ls | grep -q '^c1 .*RUNNING'"
C1=$($CTR task exec --exec-id ip c1 ip -4 -o addr show eth0 | sed -E 's#.*inet ([0-9.]+)/.*#\1#')
echo "c1 is at $C1"
step $CTR task exec --exec-id show c1 sh -c "ip -4 -o addr show eth0; ip route"
check "ctr: a container reaches the gateway" $RUN t1 ping -c1 -W2 10.89.0.1
check "ctr: a container reaches another container" says c1 $RUN t2 wget -qO- "http://$C1/"
check "ctr: a container reaches the outside namespace" says outside $RUN t3 wget -qO- http://203.0.113.2:7000/
check "ctr: the host reaches a container" says c1 busybox wget -qO- "http://$C1/"
step $NSNET network ls
step $CTR task kill -s KILL c1
wait $C1_CTR || true
check "ctr: removal leaves nothing behind" retry leftovers ctrnet
kill $CONTAINERD

############################################################ summary
note "calls, as nsnet logged them ($LOG)"
grep -E ' (ADD|DEL|CHECK|GC|STATUS) ' $LOG | sed -E 's/^[^ ]+ +INFO //; s/([0-9a-f]{12})[0-9a-f]{52}/\1…/' | tail -20
for verb in ADD DEL; do
  grep -E " $verb .*done in" $LOG | sed -E 's/.*done in ([0-9.]+) ms/\1/' |
    awk -v v=$verb '{ s += $1; if ($1 > m) m = $1; n++ } END { if (n) printf "%s: %d calls, mean %.1f ms, max %.1f ms\n", v, n, s / n, m }'
done
echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
