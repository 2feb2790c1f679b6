"""One round, run inside its own throwaway sandbox (see `sandbox_setup`).

A round is one tool at one N (`attach`), nsnet's pods (`pods`) or one tool
publishing 1000 ports on one endpoint (`ports`). It prints its figures as one
JSON object on stdout; progress goes to stderr.
"""

import json
import os
import subprocess
import sys
import time

import measure
from measure import run
from tools import TOOLS, Publish

WORK = "/run/bench"
HOST = "203.0.113.1"  # the sandbox "host" as the outside namespace sees it
OUTSIDE = "203.0.113.2"
PORT_BASE = 40000  # host port of slot s is PORT_BASE + s
BIG_PORTS = Publish(30000, 30000, 1000)
PORTS_REPEAT = 5
WARM, PROBE1, PROBE2, PROBE3, BIG = 0, 2001, 2002, 2003, 3000  # slots that are not b1..bN


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sandbox_setup():
    """Private /run (netns pins, nsnet's and the plugins' state) and /var/lib,
    this namespace's own /sys, loopback up, and the outside world: one more
    namespace behind a veth pair. Nothing here is visible outside the sandbox."""
    run(["mount", "-t", "tmpfs", "-o", "mode=0755", "nsnet-bench-run", "/run"])
    run(["mount", "-t", "tmpfs", "-o", "mode=0755", "nsnet-bench-varlib", "/var/lib"])
    run(["mount", "-t", "sysfs", "sysfs", "/sys"])
    os.makedirs("/run/netns", exist_ok=True)
    os.makedirs("/run/netavark", exist_ok=True)
    run(["ip", "link", "set", "lo", "up"])
    run(["ip", "netns", "add", "outside"])
    run(["ip", "link", "add", "veth-outside", "type", "veth", "peer", "name", "veth-host", "netns", "outside"])
    run(["ip", "addr", "add", f"{HOST}/24", "dev", "veth-outside"])
    run(["ip", "link", "set", "veth-outside", "up"])
    run(["ip", "-n", "outside", "addr", "add", f"{OUTSIDE}/24", "dev", "veth-host"])
    run(["ip", "-n", "outside", "link", "set", "veth-host", "up"])
    run(["ip", "-n", "outside", "link", "set", "lo", "up"])


def make_namespaces(names):
    """`ip netns add` for each, in one process (untimed)."""
    script = "".join(f"netns add {n}\n" for n in names)
    subprocess.run(["ip", "-batch", "-"], input=script, text=True, check=True)


def serve(ns, port, text):
    """A TCP server in `ns` that answers `text` and closes."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "socat", f"TCP-LISTEN:{port},reuseaddr,fork",
                             f"SYSTEM:echo {text}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fetch(ns, host, port):
    """What a TCP connect from `ns` (None: the sandbox host) to host:port reads back."""
    argv = ["timeout", "5", "socat", "-T3", "-u", f"TCP:{host}:{port},connect-timeout=3", "STDOUT"]
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    r = run(argv, check=False)
    return r.stdout.strip()


def address(ns):
    out = json.loads(run(["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", "eth0"], check=False).stdout or "[]")
    for link in out:
        for a in link.get("addr_info", []):
            return a["local"]
    return None


def connectivity(first, last, port_first, port_last):
    """The four checks at the end of ADD, between endpoints `first` and `last`."""
    target = address(last)
    ping = bool(target) and run(["ip", "netns", "exec", first, "ping", "-c1", "-W2", target], check=False).returncode == 0
    return {
        "ping": ping,
        "outside": fetch("outside", HOST, port_last) == last,
        "localhost": fetch(None, "127.0.0.1", port_first) == first,
        "hairpin": fetch(first, HOST, port_first) == first,
    }


def kernel_add_ms(bridge, k=10):
    """Median of `ip link add` of a veth pair whose peer goes into a fresh
    namespace, enslaved to the tool's bridge as it stands after the N ADDs:
    what the kernel alone (plus one small process) costs at this N."""
    sp = measure.Spawner(WORK)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    names = [f"kf{i}" for i in range(k)]
    make_namespaces(names)
    ts = []
    for i, ns in enumerate(names):
        c = sp.call(["ip", "link", "add", f"kfv{i}", "master", bridge, "type", "veth",
                     "peer", "name", "eth0", "netns", ns], env)
        if c.ok:
            ts.append(c.ns)
    for i, ns in enumerate(names):
        run(["ip", "link", "del", f"kfv{i}"], check=False)
        run(["ip", "netns", "del", ns], check=False)
    return measure.median_ms(ts)


def op_record(op, what, t):
    rec = {"ns": op.ns, "ok": op.ok, "t": t}
    if not op.ok:
        rec["error"] = f"{what} {op.ns}: {op.why()}"
    return rec


def timed(fn, *args):
    t0 = time.perf_counter_ns()
    op = fn(*args)
    t = time.perf_counter_ns() - t0
    return op, t


def leftovers(before_rules, after_rules, before_links, after_links, leases):
    """What DEL left behind, compared with the state before the first timed ADD."""
    extra_rules = after_rules - before_rules
    gone_rules = before_rules - after_rules
    extra_links = sorted(after_links - before_links)
    return {
        "rules": measure.describe(extra_rules), "rules_n": sum(extra_rules.values()),
        "removed_base": measure.describe(gone_rules),
        "links": extra_links, "leases": leases,
    }


def attach_round(spec):
    n, sp = spec["n"], measure.Spawner(WORK)
    tool = TOOLS[spec["tool"]](sp, spec["nsnet"])
    names = [f"b{i}" for i in range(1, n + 1)]
    make_namespaces(["w0", "p1", "p2", "p3"] + names)
    tool.prepare()
    port = lambda slot: Publish(PORT_BASE + slot, 80)
    # Warm-up: a first endpoint, attached and detached untimed, so every tool
    # starts the timed run with whatever it keeps between endpoints.
    errors = []
    for step in (tool.add, tool.delete):
        op = step("w0", WARM, port(WARM))
        if not op.ok:
            errors.append(f"warm-up: {op.why()}")
    servers = [serve("b1", 80, "b1"), serve(names[-1], 80, names[-1])]
    rules0, links0 = measure.ruleset(), measure.links()
    adds, rules1 = [], None
    t_start = time.monotonic()
    for i, ns in enumerate(names, 1):
        op, t = timed(tool.add, ns, i, port(i))
        adds.append(op_record(op, "ADD", t))
        if i == 1:
            rules1 = measure.ruleset()
    t_add = time.monotonic() - t_start
    checks = connectivity("b1", names[-1], PORT_BASE + 1, PORT_BASE + n)
    kernel_add = kernel_add_ms(tool.bridge)
    rules_n, leases_n = measure.ruleset(), tool.leases()
    dels = []
    t_start = time.monotonic()
    for i, ns in enumerate(names, 1):
        op, t = timed(tool.delete, ns, i, port(i))
        dels.append(op_record(op, "DEL", t))
    t_del = time.monotonic() - t_start
    rules_d, links_d = measure.ruleset(), measure.links()
    left = leftovers(rules0, rules_d, links0, links_d, tool.leases())
    for s in servers:
        s.kill()
    # Per endpoint: what the last N-1 ADDs added on average (the first may set up shared state).
    per = {k: 0 for k in ("chains", "rules", "elements")}
    if n > 1:
        a, b = measure.tally(rules1), measure.tally(rules_n)
        per = {k: (b[k] - a[k]) / (n - 1) for k in per}
    first = {k: v - per[k] for k, v in measure.tally(rules1 - rules0).items()} if rules1 else {}
    probe, probe_errors = probe_ops(tool)
    errors += probe_errors
    errors += [r["error"] for r in adds + dels if "error" in r]
    return {
        "kind": "attach", "tool": tool.key, "n": n,
        "add": [r["t"] for r in adds], "del": [r["t"] for r in dels],
        "add_rss_kb": probe["add_rss_kb"], "del_rss_kb": probe["del_rss_kb"],
        "add_s": t_add, "del_s": t_del, "kernel_add_ms": kernel_add,
        "per_endpoint": per, "first_endpoint": first,
        "checks": checks, "leases_attached": leases_n, "left": left,
        "probe": probe, "errors": errors[:20], "error_count": len(errors),
    }


def probe_ops(tool):
    """Processes started and peak RSS per ADD and DEL, apart from the timed run,
    with one other endpoint attached (steady state, as in the timed run)."""
    port = lambda slot: Publish(PORT_BASE + slot, 80)
    seq = [("add", "p1", PROBE1, None), ("add", "p2", PROBE2, "trace"), ("del", "p2", PROBE2, "trace"),
           ("add", "p3", PROBE3, "rss"), ("del", "p3", PROBE3, "rss"), ("del", "p1", PROBE1, None)]
    probe, errors = {}, []
    for verb, ns, slot, mode in seq:
        op = (tool.add if verb == "add" else tool.delete)(ns, slot, port(slot), mode=mode)
        if not op.ok:
            errors.append(f"{mode or 'probe'} {verb.upper()} {ns}: {op.why()}")
        if mode == "trace":
            probe[verb] = [{"procs": op.procs, "execs": op.execs, "calls": len(op.calls)}]
        elif mode == "rss":
            probe[f"{verb}_rss_kb"] = op.rss_kb
    return probe, errors


def pause_rss_kb():
    """Peak RSS (VmHWM) of the largest pause process."""
    best = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        if os.path.basename(argv0) == b"nsnet-pause":
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
    return best


def pods_round(spec):
    sp, nsnet = measure.Spawner(WORK), spec["nsnet"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NSNET_STATE_DIR": "/run/nsnet",
           "NSNET_CONFIG_DIR": "/run/nsnet-config"}
    errors, out = [], []
    c = sp.call([nsnet, "network", "create", "nsnet", "--subnet", "10.97.0.0/16"], env)
    if not c.ok:
        raise RuntimeError(c.why())
    # Warm-up: nsnet makes the network's bridge on its first attach and keeps it.
    for argv in (["pod", "create", "warm", "-p", f"{PORT_BASE}:80"], ["pod", "rm", "warm"]):
        c = sp.call([nsnet] + argv, env)
        if not c.ok:
            errors.append(f"warm-up: {c.why()}")
    links0 = measure.links()
    for n in spec["sizes"]:
        creates, rms = [], []
        for i in range(1, n + 1):
            c = sp.call([nsnet, "pod", "create", f"p{i}", "-p", f"{PORT_BASE + i}:80"], env)
            creates.append(c.ns)
            if not c.ok:
                errors.append(f"pod create p{i}: {c.why()}")
        pause = pause_rss_kb()
        # A pod that serves: its published port answers at 127.0.0.1 and from outside.
        served = [["pod", "create", "served", "-p", f"{PORT_BASE + 2000}:80"],
                  ["pod", "exec", "served", "--detach", "--", "socat", "TCP-LISTEN:80,reuseaddr,fork",
                   "SYSTEM:echo served"]]
        for argv in served:
            c = sp.call([nsnet] + argv, env)
            if not c.ok:
                errors.append(f"{' '.join(argv[:2])} served: {c.why()}")
        time.sleep(0.3)
        checks = {"localhost": fetch(None, "127.0.0.1", PORT_BASE + 2000) == "served",
                  "outside": fetch("outside", HOST, PORT_BASE + 2000) == "served"}
        c = sp.call([nsnet, "pod", "rm", "--force", "served"], env)
        if not c.ok:
            errors.append(f"pod rm --force served: {c.why()}")
        for i in range(1, n + 1):
            c = sp.call([nsnet, "pod", "rm", f"p{i}"], env)
            rms.append(c.ns)
            if not c.ok:
                errors.append(f"pod rm p{i}: {c.why()}")
        ls = sp.call([nsnet, "pod", "ls", "--json"], env)
        left_pods = len(json.loads(ls.out or "[]")) if ls.ok else None
        left_links = sorted(measure.links() - links0)
        out.append({"n": n, "create": creates, "rm": rms, "pause_kb": pause,
                    "checks": checks, "left_pods": left_pods, "left_links": left_links})
    probe = {}
    for verb, argv, mode in (("create", ["pod", "create", "traced", "-p", f"{PORT_BASE + 2001}:80"], "trace"),
                             ("rm", ["pod", "rm", "traced"], "trace"),
                             ("create", ["pod", "create", "measured", "-p", f"{PORT_BASE + 2002}:80"], "rss"),
                             ("rm", ["pod", "rm", "measured"], "rss")):
        c = sp.call([nsnet] + argv, env, mode=mode)
        if not c.ok:
            errors.append(f"{mode} pod {verb}: {c.why()}")
        if mode == "trace":
            probe[verb] = {"procs": c.procs, "execs": c.execs}
        else:
            probe[f"{verb}_rss_kb"] = c.rss_kb
    return {"kind": "pods", "sizes": out, "probe": probe, "errors": errors[:20], "error_count": len(errors)}


def ports_round(spec):
    sp = measure.Spawner(WORK)
    tool = TOOLS[spec["tool"]](sp, spec["nsnet"])
    make_namespaces(["w0", "big"])
    tool.prepare()
    errors = []
    for step in (tool.add, tool.delete):
        op = step("w0", WARM, Publish(PORT_BASE, 80))
        if not op.ok:
            errors.append(f"warm-up: {op.why()}")
    first, last = BIG_PORTS.container, BIG_PORTS.container + BIG_PORTS.count - 1
    servers = [serve("big", first, "big"), serve("big", last, "big")]
    rules0, links0 = measure.ruleset(), measure.links()
    adds, dels, checks, rules1 = [], [], None, None
    # Repeated (medians are reported), unless one ADD already took seconds.
    for rep in range(PORTS_REPEAT):
        add, t_add = timed(tool.add, "big", BIG, BIG_PORTS)
        adds.append(t_add)
        if rep == 0:
            rules1 = measure.ruleset()
            last_host = BIG_PORTS.host + BIG_PORTS.count - 1
            checks = {"outside": fetch("outside", HOST, BIG_PORTS.host) == "big"
                      and fetch("outside", HOST, last_host) == "big",
                      "localhost": fetch(None, "127.0.0.1", last_host) == "big"}
        dele, t_del = timed(tool.delete, "big", BIG, BIG_PORTS)
        dels.append(t_del)
        for what, op in (("ADD", add), ("DEL", dele)):
            if not op.ok:
                errors.append(f"{what}: {op.why()}")
        if t_add > 2e9:
            break
    rules_d, links_d = measure.ruleset(), measure.links()
    for s in servers:
        s.kill()
    # Peak RSS: the same ADD and DEL once more, through GNU time.
    add_rss = tool.add("big", BIG, BIG_PORTS, mode="rss")
    del_rss = tool.delete("big", BIG, BIG_PORTS, mode="rss")
    for what, op in (("ADD (RSS)", add_rss), ("DEL (RSS)", del_rss)):
        if not op.ok:
            errors.append(f"{what}: {op.why()}")
    return {"kind": "ports", "tool": tool.key, "add": adds, "del": dels,
            "rss_kb": max(add_rss.rss_kb, del_rss.rss_kb), "added": measure.tally(rules1 - rules0),
            "checks": checks, "left": leftovers(rules0, rules_d, links0, links_d, tool.leases()),
            "errors": errors, "error_count": len(errors)}


def main(spec_json):
    spec = json.loads(spec_json)
    sandbox_setup()
    kind = spec["kind"]
    result = {"attach": attach_round, "pods": pods_round, "ports": ports_round}[kind](spec)
    print(json.dumps(result))
