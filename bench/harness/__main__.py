"""nsnet's benchmark harness (started by bench/run.sh, which explains the options).

    python3 bench/harness main [options]   orchestrates: each round in a fresh sandbox, then the tables
    python3 bench/harness round SPEC       one round, inside its sandbox (rounds.py)
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import measure  # noqa: E402
import report  # noqa: E402
from tools import NSNET_TOOLS, TOOLS  # noqa: E402

# A peer whose N=100 round (ADD and DEL together) took longer skips larger N.
SKIP_AFTER_S = 120
ALL_TOOLS = ("nsnet-cli", "nsnet-cni", "ref-cni", "netavark")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return tuple(float(x) for x in f.read().split()[:3])


def wait_quiet(minutes, limit=0.5, hold_s=60):
    """Waits until the 1-minute load average stays below `limit` for `hold_s`."""
    deadline = time.monotonic() + minutes * 60
    quiet_since = None
    while time.monotonic() < deadline:
        if loadavg()[0] < limit:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= hold_s:
                return True
        else:
            quiet_since = None
        time.sleep(5)
    return False


def machine():
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
            brnf = f"bridge-nf-call-iptables={f.read().strip()}"
    except OSError:
        brnf = "br_netfilter absent"
    return {"nproc": os.cpu_count(), "memory": mem, "kernel": platform.release(), "cpu": cpu, "br_netfilter": brnf}


def versions(nsnet):
    sp = measure.Spawner("/run/bench-main")
    out = {}
    for key in ALL_TOOLS:
        try:
            out[key] = TOOLS[key](sp, nsnet).version()
        except (OSError, RuntimeError) as e:
            out[key] = f"unavailable ({e})"
    for prog in (["nft", "--version"], ["iptables", "--version"]):
        r = measure.run(prog, check=False)
        out[prog[0]] = r.stdout.strip()
    return out


def exec_floor(n=200):
    """Median wall time of spawning /bin/true the way every call is spawned."""
    sp = measure.Spawner("/run/bench-main")
    env = {"PATH": "/usr/bin:/bin"}
    return measure.median_ms([sp.call(["/bin/true"], env).ns for _ in range(n)])


def veth_floor(n=30):
    """Medians of `ip link add` and `ip link del` of a veth pair, spawned the same
    way as every call: what the kernel (plus one small process) needs for the
    two steps every tool must take, the floor under ADD and DEL."""
    sp = measure.Spawner("/run/bench-main")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    measure.run(["ip", "link", "add", "floor-br", "type", "bridge"])
    measure.run(["ip", "link", "set", "floor-br", "up"])
    adds, dels = [], []
    for i in range(n):
        a = sp.call(["ip", "link", "add", f"floor{i}", "master", "floor-br", "type", "veth",
                     "peer", "name", f"floorp{i}"], env)
        measure.run(["ip", "link", "set", f"floor{i}", "up"])
        d = sp.call(["ip", "link", "del", f"floor{i}"], env)
        if a.ok and d.ok:
            adds.append(a.ns)
            dels.append(d.ns)
    measure.run(["ip", "link", "del", "floor-br"])
    return measure.median_ms(adds), measure.median_ms(dels)


def run_round(spec):
    """Runs one round in a new sandbox: network, mount and PID namespaces."""
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
            "--kill-child", sys.executable, HERE, "round", json.dumps(spec)]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    took = time.monotonic() - t0
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        what = spec.get("tool", spec["kind"])
        log(f"round {spec['kind']} {what} failed (exit {r.returncode})")
        return dict(spec, crashed=f"round failed (exit {r.returncode}, see stderr)")
    result = json.loads(lines[-1])
    log(f"  {spec['kind']} {spec.get('tool', '')} {spec.get('n', spec.get('sizes', ''))}: {took:.1f} s"
        + (f", {result['error_count']} errors: {result['errors'][:3]}" if result.get("error_count") else ""))
    return result


def settle(n):
    """Lets the kernel finish freeing the last round's namespaces (asynchronous work)."""
    time.sleep(1 + n / 250)


def verdicts(results):
    """(passed, failed, failures) over nsnet's own checks: calls, connectivity, leftovers."""
    passed, failures = 0, []

    def check(ok, what):
        nonlocal passed
        if ok:
            passed += 1
        else:
            failures.append(what)

    for r in results:
        tool = r.get("tool", "nsnet")
        if r.get("kind") in ("attach", "ports") and tool not in NSNET_TOOLS:
            continue
        name = f"{r.get('kind')} {tool} {r.get('n', '')}".strip()
        if r.get("crashed"):
            check(False, f"{name}: {r['crashed']}")
            continue
        check(r.get("error_count", 0) == 0, f"{name}: calls failed: {r.get('errors')}")
        if r["kind"] == "pods":
            for s in r["sizes"]:
                for c, ok in s["checks"].items():
                    check(ok, f"pods {s['n']}: {c}")
                check(not s["left_pods"] and not s["left_links"], f"pods {s['n']}: left {s['left_pods']} pods, {s['left_links']}")
            continue
        for c, ok in r["checks"].items():
            check(ok, f"{name}: {c}")
        left = r["left"]
        check(not left["rules_n"] and not left["links"] and not left["leases"], f"{name}: left {left}")
    return passed, len(failures), failures


def main(argv):
    p = argparse.ArgumentParser(prog="bench/run.sh")
    p.add_argument("--nsnet", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sizes", default="10,100,1000")
    p.add_argument("--tools", default=",".join(ALL_TOOLS))
    p.add_argument("--pods", default="10,200")
    p.add_argument("--no-pods", action="store_true")
    p.add_argument("--no-ports", action="store_true")
    p.add_argument("--json")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="MINUTES")
    p.add_argument("--rev", default="")
    a = p.parse_args(argv)
    if a.quick:
        a.sizes, a.tools, a.pods = "10", ",".join(NSNET_TOOLS), "10"
    sizes = [int(x) for x in a.sizes.split(",") if x]
    tools = [t for t in a.tools.split(",") if t]
    for t in tools:
        if t not in TOOLS:
            p.error(f"unknown tool {t} (known: {', '.join(ALL_TOOLS)})")
    nsnet = os.path.abspath(a.nsnet)

    quiet = None
    if a.wait_quiet:
        log(f"waiting up to {a.wait_quiet:g} min for a 1-minute load average below 0.5 ...")
        quiet = wait_quiet(a.wait_quiet)
    info = {"machine": machine(), "load_start": loadavg(), "quiet": quiet, "rev": a.rev,
            "versions": versions(nsnet), "started": time.strftime("%Y-%m-%d %H:%M")}
    info["exec_floor_ms"] = exec_floor()
    info["veth_add_ms"], info["veth_del_ms"] = veth_floor()
    log(f"load {info['load_start']}, exec floor {info['exec_floor_ms']:.2f} ms")

    results, slow = [], set()
    for n in sizes:
        for t in tools:
            if t in slow:
                results.append({"kind": "attach", "tool": t, "n": n,
                                "skipped": f"skipped: N=100 took over {SKIP_AFTER_S} s"})
                continue
            r = run_round({"kind": "attach", "tool": t, "n": n, "nsnet": nsnet})
            results.append(r)
            if n == 100 and not r.get("crashed") and r["add_s"] + r["del_s"] > SKIP_AFTER_S:
                slow.add(t)
            settle(n)
    if not a.no_pods:
        results.append(run_round({"kind": "pods", "sizes": [int(x) for x in a.pods.split(",") if x],
                                  "nsnet": nsnet}))
        settle(200)
    ports_tools = [t for t in tools if t in NSNET_TOOLS or not a.quick]
    if not a.no_ports:
        for t in ports_tools:
            results.append(run_round({"kind": "ports", "tool": t, "nsnet": nsnet}))
            settle(10)
    info["load_end"] = loadavg()

    m, v, ls, le = info["machine"], info["versions"], info["load_start"], info["load_end"]
    shown = [x for i, x in enumerate(argv) if not (x in ("--nsnet", "--rev") or argv[i - 1] in ("--nsnet", "--rev"))]
    print(f"nsnet benchmarks, {info['started']}: `{' '.join(['bench/run.sh'] + shown)}`")
    print(f"- machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Linux {m['kernel']}, {m['br_netfilter']}; "
          f"load average at start {ls[0]:.2f} / {ls[1]:.2f} / {ls[2]:.2f} (1 / 5 / 15 min), at end {le[0]:.2f}"
          + ("" if quiet is None else ("" if quiet else " (it never got below 0.5)")))
    print(f"- tools: nsnet {info['rev'] or v.get('nsnet-cli', '')}; {v.get('ref-cni', '')}; "
          f"{v.get('netavark', '')} (iptables driver); {v.get('nft', '')}; {v.get('iptables', '')}")
    print(f"- spawning /bin/true the same way as every call: {report.ms(info['exec_floor_ms'])} (median), "
          f"the floor under any figure below")
    print(f"- kernel floor, spawning `ip link add … type veth` / `ip link del` the same way: "
          f"{report.ms(info['veth_add_ms'])} / {report.ms(info['veth_del_ms'])} (median of 30): every tool "
          f"creates and deletes one veth pair per endpoint")
    if sizes:
        print()
        print(report.attach_table(results, tools, sizes))
    if not a.no_pods:
        print()
        print(report.pods_table(next(r for r in results if r.get("kind") == "pods")))
    if not a.no_ports:
        print()
        print(report.ports_table(results, ports_tools))
    errors = [(r.get("tool", r["kind"]), r.get("n", ""), e) for r in results for e in r.get("errors", [])]
    if errors:
        print()
        print("Failed calls (first of each round):")
        seen = set()
        for tool, n, e in errors:
            if (tool, n) not in seen:
                seen.add((tool, n))
                print(f"- {tool} {n}: {e}")
    passed, failed, failures = verdicts(results)
    for f in failures:
        print(f"FAIL - {f}")
    print()
    print(f"bench: {passed} passed, {failed} failed")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"info": info, "results": results}, f)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "round":
        import rounds
        rounds.main(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "main":
        sys.exit(main(sys.argv[2:]))
    else:
        sys.exit(__doc__)
