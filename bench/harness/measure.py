"""Running one program as a runtime does, and reading the kernel's state back.

A call is timed from just before `posix_spawn` to just after `wait4` reaped the
process, so it includes what a runtime pays for any plugin: the fork and exec
(about what `/bin/true` costs, which the report shows as the floor). `wait4`'s
rusage gives the peak RSS of the process, or of the largest process it ran and
waited for. Traced calls run under `strace -f` to count the processes a call
starts; they are never the timed ones.
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

STRACE = "/usr/bin/strace"
TIME = "/usr/bin/time"
# A call that takes longer than this is killed and counted as failed.
CALL_TIMEOUT_S = 300


@dataclass
class Call:
    argv: list
    status: int  # exit code, or minus the signal that ended it
    out: str
    err: str
    ns: int  # wall clock, spawn to reaped
    rss_kb: int
    procs: int = 0  # processes it started (traced calls only)
    execs: int = 0  # programs it executed, itself excluded (traced calls only)

    @property
    def ok(self):
        return self.status == 0

    def why(self):
        text = (self.out.strip() + " " + self.err.strip()).strip()
        return f"{os.path.basename(self.argv[0])} exited {self.status}: {text[-300:]}"


def which(prog, path):
    if "/" in prog:
        return prog
    for d in path.split(":"):
        p = os.path.join(d, prog)
        if os.access(p, os.X_OK):
            return p
    raise FileNotFoundError(prog)


class Spawner:
    """Runs programs with files for stdin/stdout/stderr (no pipes to fill)."""

    def __init__(self, workdir):
        os.makedirs(workdir, exist_ok=True)
        self.stdin = os.path.join(workdir, "stdin")
        self.stdout = os.path.join(workdir, "stdout")
        self.stderr = os.path.join(workdir, "stderr")
        self.trace = os.path.join(workdir, "trace")
        self.rss = os.path.join(workdir, "rss")
        self.child = None
        signal.signal(signal.SIGALRM, self._timeout)

    def _timeout(self, _sig, _frame):
        if self.child:
            os.kill(self.child, signal.SIGKILL)

    def call(self, argv, env, stdin=b"", mode=None):
        """Runs argv; mode "trace" counts what it starts, "rss" reads its peak RSS
        through GNU time (both untimed: they add a process of their own)."""
        path = which(argv[0], env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
        argv = [path] + list(argv[1:])
        with open(self.stdin, "wb") as f:
            f.write(stdin)
        target = argv
        if mode == "trace":
            if os.path.exists(self.trace):
                os.unlink(self.trace)  # _wait_traced must not read the last call's log
            argv = [STRACE, "-f", "-q", "-o", self.trace, "-e",
                    "trace=execve,execveat,fork,vfork,clone,clone3", "--"] + argv
        elif mode == "rss":
            argv = [TIME, "-f", "%M", "-o", self.rss, "--"] + argv
        wr = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, self.stdin, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, self.stdout, wr, 0o600),
            (os.POSIX_SPAWN_OPEN, 2, self.stderr, wr, 0o600),
        ]
        signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        self.child = pid
        if mode == "trace":
            status = self._wait_traced(pid)
        else:
            _, status, _ = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        self.child = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        code = os.waitstatus_to_exitcode(status)
        with open(self.stdout, errors="replace") as f:
            out = f.read()
        with open(self.stderr, errors="replace") as f:
            err = f.read()
        call = Call(target, code, out, err, t1 - t0, 0)
        if call.ns > 10e9:
            print(f"slow call ({call.ns / 1e9:.1f} s, exit {code}): {' '.join(target)[:200]}", file=sys.stderr)
        if mode == "trace":
            call.procs, execs = count_trace(self.trace)
            call.execs = max(execs - 1, 0)
            call.status = self._traced_status(call.status)
        elif mode == "rss":
            with open(self.rss) as f:
                lines = f.read().split()
            # GNU time prints "Command exited with non-zero status N" before %M.
            call.rss_kb = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        return call

    def _wait_traced(self, pid):
        """Waits for strace, or stops it once the traced program itself exited:
        a program that leaves a daemon behind (a pod's pause process) would
        otherwise keep strace, which follows it, running for ever."""
        top = None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            try:
                with open(self.trace, errors="replace") as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            if top is None and text:
                top = text.split(None, 1)[0]
            m = top and re.search(rf"^{top}\s+\+\+\+ exited with (\d+) \+\+\+$", text, re.M)
            if m:
                self.exit_code = int(m.group(1))
                time.sleep(0.2)
                # Not SIGTERM: detaching from a pause process (PID 1 of its own
                # PID namespace, all signals blocked) hangs strace; when strace
                # dies instead, the kernel lets its tracees run on.
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                return status
            time.sleep(0.01)

    def _traced_status(self, strace_status):
        code, self.exit_code = getattr(self, "exit_code", None), None
        return strace_status if code is None else code


_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")


def count_trace(path):
    """(processes created, successful execs) in an `strace -f` log."""
    procs = execs = 0
    pending = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = _LINE.match(line.rstrip("\n"))
            if not m:
                continue
            pid, resumed, name, rest = m.groups()
            if name and rest.endswith("<unfinished ...>"):
                pending[pid] = (name, rest)
                continue
            if resumed:
                name, head = pending.pop(pid, (resumed, ""))
                rest = head + rest
            ret = re.search(r"= (-?\d+)(?: \w+ \(.*\))?$", rest)
            if not ret:
                continue
            value = int(ret.group(1))
            if name in ("execve", "execveat") and value == 0:
                execs += 1
            elif name in ("fork", "vfork") and value > 0:
                procs += 1
            elif name in ("clone", "clone3") and value > 0 and "CLONE_THREAD" not in rest:
                procs += 1
    return procs, execs


def run(argv, check=True, **kw):
    """An untimed helper command; output captured."""
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def _canon(v):
    """JSON without counter values, so a rule that counted packets is still the same rule."""
    if isinstance(v, dict):
        return {k: (None if k == "counter" else _canon(x)) for k, x in v.items() if k != "handle"}
    if isinstance(v, list):
        return [_canon(x) for x in v]
    return v


def ruleset():
    """The whole ruleset (nftables, and iptables-nft's tables) as a multiset of objects."""
    data = json.loads(run(["nft", "-j", "list", "ruleset"]).stdout or '{"nftables": []}')
    items = collections.Counter()
    for obj in data.get("nftables", []):
        (kind, v), = obj.items()
        if kind == "chain":
            items[("chain", v["family"], v["table"], v["name"])] += 1
        elif kind == "rule":
            body = json.dumps(_canon([v.get("expr"), v.get("comment")]), sort_keys=True)
            items[("rule", v["family"], v["table"], v["chain"], body)] += 1
        elif kind in ("set", "map"):
            items[(kind, v["family"], v["table"], v["name"])] += 1
            for e in v.get("elem", []):
                body = json.dumps(_canon(e), sort_keys=True)
                items[("element", v["family"], v["table"], v["name"], body)] += 1
        elif kind == "table":
            items[("table", v["family"], v["name"])] += 1
    return items


def tally(items):
    """Counts of chains, rules and set/map elements in a ruleset multiset."""
    c = collections.Counter()
    for key, n in items.items():
        c[key[0]] += n
    return {"chains": c["chain"], "rules": c["rule"], "elements": c["element"]}


def describe(items):
    """A short description of some ruleset objects, for a leftover report."""
    t = tally(items)
    parts = [f"{n} {k}" for k, n in t.items() if n]
    other = sum(n for k, n in items.items() if k[0] in ("table", "set", "map"))
    if other:
        parts.append(f"{other} tables/sets")
    return ", ".join(parts)


def links():
    """Interface names in the namespace this process is in."""
    return {l["ifname"] for l in json.loads(run(["ip", "-j", "link", "show"]).stdout)}


def stats(values_ns):
    """Median and p95 (nearest rank) in ms."""
    v = sorted(values_ns)
    if not v:
        return None, None
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    p95 = v[max(0, -(-95 * n // 100) - 1)]
    return med / 1e6, p95 / 1e6


def median_ms(values_ns):
    return stats(values_ns)[0]
