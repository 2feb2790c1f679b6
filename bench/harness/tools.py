"""The tools compared, each called exactly as its users' runtimes call it.

Every tool does the same work: attach namespace /run/netns/NS to a bridge
network with one IPv4 address and published TCP ports, and detach it again.

- nsnet CLI: `nsnet network connect NET NS -p HOST:CONTAINER`, `network disconnect`.
- nsnet CNI and the reference plugins: libcni's contract. Each plugin of the
  list is run with CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_ARGS/
  CNI_PATH and its config on stdin: the plugin's keys plus the list's `name`
  and `cniVersion`, `runtimeConfig` with the capabilities it declares, and
  `prevResult` (on ADD the previous plugin's result; on DEL, run in reverse
  order, the cached result of the whole ADD).
- netavark: `netavark --config DIR setup|teardown NETNS` with podman's JSON on
  stdin (the container's static address is chosen by the caller, as podman's
  own IPAM does).
"""

import hashlib
import json
import os

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
REF_CNI_DIR = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"


class Publish:
    """`count` consecutive TCP ports from `host` to `container`."""

    def __init__(self, host, container, count=1):
        self.host, self.container, self.count = host, container, count

    def pairs(self):
        return [(self.host + k, self.container + k) for k in range(self.count)]


def container_id(slot):
    return hashlib.sha256(f"nsnet-bench-{slot}".encode()).hexdigest()


class Op:
    """One ADD or DEL: possibly several calls (a plugin chain)."""

    def __init__(self, calls, ns):
        self.calls, self.ns = calls, ns

    @property
    def ok(self):
        return bool(self.calls) and all(c.ok for c in self.calls)

    @property
    def rss_kb(self):
        return max((c.rss_kb for c in self.calls), default=0)

    @property
    def procs(self):
        return sum(c.procs for c in self.calls)

    @property
    def execs(self):
        return sum(c.execs for c in self.calls)

    def why(self):
        bad = [c for c in self.calls if not c.ok]
        return bad[0].why() if bad else ""


class Tool:
    key = label = ""
    leases_known = True

    def __init__(self, spawner, nsnet):
        self.sp, self.nsnet = spawner, nsnet
        self.env = {"PATH": PATH, "NSNET_STATE_DIR": "/run/nsnet",
                    "NSNET_CONFIG_DIR": "/run/nsnet-config"}

    def prepare(self):
        """Untimed set-up before the first ADD."""

    def version(self):
        return ""


class NsnetCli(Tool):
    key, label = "nsnet-cli", "nsnet CLI"
    bridge = "nsbr-bench"

    def prepare(self):
        c = self.sp.call([self.nsnet, "network", "create", "bench", "--subnet", "10.99.0.0/16"], self.env)
        if not c.ok:
            raise RuntimeError(c.why())

    def add(self, ns, slot, publish, mode=None):
        spec = (f"{publish.host}:{publish.container}" if publish.count == 1 else
                f"{publish.host}-{publish.host + publish.count - 1}:"
                f"{publish.container}-{publish.container + publish.count - 1}")
        argv = [self.nsnet, "network", "connect", "bench", ns, "-p", spec]
        return Op([self.sp.call(argv, self.env, mode=mode)], ns)

    def delete(self, ns, slot, publish, mode=None):
        argv = [self.nsnet, "network", "disconnect", "bench", ns]
        return Op([self.sp.call(argv, self.env, mode=mode)], ns)

    def leases(self):
        c = self.sp.call([self.nsnet, "network", "inspect", "bench"], self.env)
        return len(json.loads(c.out).get("leases", [])) if c.ok else None

    def version(self):
        return self.sp.call([self.nsnet, "--version"], self.env).out.strip()


class CniList(Tool):
    """A CNI network configuration list, run plugin by plugin as libcni does."""

    name = "bench"
    version_ = "1.0.0"

    def __init__(self, spawner, nsnet):
        super().__init__(spawner, nsnet)
        self.cached = {}  # container id -> the ADD's final result, as libcni caches it
        self.cni_path = f"{REF_CNI_DIR}:{os.path.dirname(nsnet)}"

    def plugins(self):
        raise NotImplementedError

    def _conf(self, plugin, publish, prev):
        conf = dict(plugin, name=self.name, cniVersion=self.version_)
        caps = plugin.get("capabilities", {})
        if caps.get("portMappings"):
            conf["runtimeConfig"] = {"portMappings": [
                {"hostPort": h, "containerPort": c, "protocol": "tcp"} for h, c in publish.pairs()]}
        if prev is not None:
            conf["prevResult"] = prev
        return json.dumps(conf).encode()

    def _env(self, command, ns, slot):
        env = dict(self.env)
        env.update(CNI_COMMAND=command, CNI_CONTAINERID=container_id(slot),
                   CNI_NETNS=f"/run/netns/{ns}", CNI_IFNAME="eth0", CNI_ARGS="",
                   CNI_PATH=self.cni_path)
        return env

    def _plugin_path(self, plugin):
        for d in self.cni_path.split(":"):
            p = os.path.join(d, plugin["type"])
            if os.access(p, os.X_OK):
                return p
        raise FileNotFoundError(plugin["type"])

    def add(self, ns, slot, publish, mode=None):
        env, prev, calls = self._env("ADD", ns, slot), None, []
        for plugin in self.plugins():
            c = self.sp.call([self._plugin_path(plugin)], env, self._conf(plugin, publish, prev), mode)
            calls.append(c)
            if c.ok:
                try:
                    prev = json.loads(c.out)
                    continue
                except ValueError:
                    c.status, c.err = 255, f"stdout is not a CNI result: {c.out[:200]!r} {c.err[-300:]}"
            break
        if prev is not None and calls[-1].ok:
            self.cached[container_id(slot)] = prev
        return Op(calls, ns)

    def delete(self, ns, slot, publish, mode=None):
        env, calls = self._env("DEL", ns, slot), []
        prev = self.cached.pop(container_id(slot), None)
        for plugin in reversed(self.plugins()):
            calls.append(self.sp.call([self._plugin_path(plugin)], env, self._conf(plugin, publish, prev), mode))
        return Op(calls, ns)


class NsnetCni(CniList):
    key, label = "nsnet-cni", "nsnet CNI"
    bridge = "nsbr-bench"

    def plugins(self):
        return [{
            "type": "nsnet", "bridge": "nsbr-bench", "isGateway": True, "ipMasq": True, "hairpinMode": True,
            "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.99.0.0/16", "gateway": "10.99.0.1"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]},
            "capabilities": {"portMappings": True},
        }]

    def leases(self):
        c = self.sp.call([self.nsnet, "network", "inspect", self.name], self.env)
        return len(json.loads(c.out).get("leases", [])) if c.ok else None

    def version(self):
        return self.sp.call([self.nsnet, "--version"], self.env).out.strip()


class RefCni(CniList):
    """containernetworking-plugins: bridge with host-local IPAM, chained with portmap."""

    key, label = "ref-cni", "bridge+host-local+portmap"
    bridge = "cni-bench"
    ipam_dir = "/run/cni-ipam"

    def plugins(self):
        return [
            {"type": "bridge", "bridge": "cni-bench", "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.98.0.0/16", "gateway": "10.98.0.1"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": self.ipam_dir}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ]

    def leases(self):
        d = os.path.join(self.ipam_dir, self.name)
        if not os.path.isdir(d):
            return 0
        return sum(1 for f in os.listdir(d) if f[0].isdigit() and not f.startswith("last_reserved"))

    def version(self):
        env = dict(self.env, CNI_COMMAND="VERSION")
        c = self.sp.call([os.path.join(REF_CNI_DIR, "bridge")], env, b'{"cniVersion":"1.0.0"}')
        pkg = _dpkg_version("containernetworking-plugins")
        return f"containernetworking-plugins {pkg}" if pkg else c.out.strip()


class Netavark(Tool):
    key, label = "netavark", "netavark"
    bridge = "nvbr-bench"
    leases_known = False  # podman allocates addresses; netavark keeps no leases
    net_id = hashlib.sha256(b"nsnet-bench-network").hexdigest()

    def __init__(self, spawner, nsnet):
        super().__init__(spawner, nsnet)
        # Without firewalld (no system bus in the sandbox) 1.4 picks iptables anyway.
        self.env = {"PATH": PATH, "NETAVARK_FW": "iptables"}

    @staticmethod
    def address(slot):
        n = slot + 2  # .0.1 is the gateway
        return f"10.97.{n // 256}.{n % 256}"

    def _json(self, ns, slot, publish):
        return json.dumps({
            "container_id": container_id(slot),
            "container_name": ns,
            "port_mappings": [{"host_ip": "", "container_port": publish.container, "host_port": publish.host,
                               "range": publish.count, "protocol": "tcp"}],
            "networks": {"bench": {"static_ips": [self.address(slot)], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": self.net_id, "driver": "bridge", "network_interface": "nvbr-bench",
                "subnets": [{"subnet": "10.97.0.0/16", "gateway": "10.97.0.1"}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": False,
                "ipam_options": {"driver": "host-local"}}},
        }).encode()

    def _call(self, verb, ns, slot, publish, mode):
        argv = [NETAVARK, "--config", "/run/netavark", verb, f"/run/netns/{ns}"]
        return Op([self.sp.call(argv, self.env, self._json(ns, slot, publish), mode)], ns)

    def add(self, ns, slot, publish, mode=None):
        return self._call("setup", ns, slot, publish, mode)

    def delete(self, ns, slot, publish, mode=None):
        return self._call("teardown", ns, slot, publish, mode)

    def leases(self):
        return None

    def version(self):
        c = self.sp.call([NETAVARK, "version"], self.env)
        try:
            return "netavark " + json.loads(c.out)["version"]
        except (ValueError, KeyError):
            return "netavark"


def _dpkg_version(pkg):
    try:
        import subprocess
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    except OSError:
        return ""


TOOLS = {t.key: t for t in (NsnetCli, NsnetCni, RefCni, Netavark)}
NSNET_TOOLS = ("nsnet-cli", "nsnet-cni")
