"""The markdown tables the harness prints."""

from measure import median_ms, stats
from tools import NSNET_TOOLS, TOOLS

CHECKS = ("ping", "outside", "localhost", "hairpin")
CHECK_NAMES = {"ping": "ping", "outside": "outside", "localhost": "127.0.0.1", "hairpin": "hairpin"}


def ms(v):
    if v is None:
        return "—"
    if v < 10:
        return f"{v:.2f} ms"
    if v < 100:
        return f"{v:.1f} ms"
    return f"{v:.0f} ms"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}"


def num(v):
    return f"{v:.0f}" if abs(v - round(v)) < 0.05 else f"{v:.1f}"


def mib(kb):
    return f"{kb / 1024:.1f} MiB" if kb >= 1024 else f"{kb} kB"


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def growth(values):
    """Median of the first 10 operations → median of the last 10; from 200
    operations on, also the first 100 → the last 100 (issue 4's flatness test)."""
    cells = []
    for k in (10, 100):
        if k == 100 and len(values) < 200:
            break
        k = min(k, len(values))
        if not k:
            return "—"
        a, b = median_ms(values[:k]), median_ms(values[-k:])
        cells.append(f"{ms(a)} → {ms(b)} (×{b / a:.2f})" + (" [100]" if k == 100 else ""))
    return "; ".join(cells)


def checks_cell(checks, extra_errors=0):
    bad = [CHECK_NAMES[c] for c in CHECKS if c in checks and not checks[c]]
    cell = f"all {len(checks)} pass" if not bad else "FAIL: " + ", ".join(bad)
    if extra_errors:
        cell += f"; {extra_errors} failed calls"
    return cell


def left_cell(left, leases_known=True):
    parts = []
    if left["rules"]:
        parts.append(left["rules"])
    if left["links"]:
        parts.append("links " + ", ".join(left["links"]))
    if leases_known and left["leases"]:
        parts.append(f"{left['leases']} leases")
    if left.get("removed_base"):
        parts.append(f"(removed its shared {left['removed_base']})")
    return "; ".join(parts) if parts else "nothing"


def probe_cell(probe):
    def avg(verb, key):
        xs = [p[key] for p in probe.get(verb, [])]
        return sum(xs) / len(xs) if xs else 0
    return f"{num(avg('add', 'procs'))} / {num(avg('del', 'procs'))}"


def attach_table(results, tools, sizes):
    """One row per tool and N; ratios against nsnet's two faces at the same N."""
    by = {(r["tool"], r["n"]): r for r in results if r.get("kind") == "attach"}
    head = ["tool", "N", "ADD median", "ADD p95", "ADD first 10 → last 10", "kernel: `ip link add` at N",
            "DEL median", "DEL p95",
            "DEL first 10 → last 10", "ADD nsnet÷tool (CLI, CNI)", "DEL nsnet÷tool (CLI, CNI)",
            "peak RSS", "processes per ADD / DEL", "per endpoint: chains / rules / elements",
            "checks after ADD", "left after DEL"]
    lines = [row(head), row(["---"] * len(head))]
    for n in sizes:
        ref = {t: by.get((t, n)) for t in NSNET_TOOLS}
        ref_add = {t: (median_ms(r["add"]) if r and r.get("add") else None) for t, r in ref.items()}
        ref_del = {t: (median_ms(r["del"]) if r and r.get("del") else None) for t, r in ref.items()}
        for t in tools:
            r = by.get((t, n))
            label = TOOLS[t].label
            if r is None:
                continue
            if r.get("skipped") or r.get("crashed"):
                lines.append(row([label, n, r.get("skipped") or r.get("crashed")] + [""] * (len(head) - 3)))
                continue
            am, ap = stats(r["add"])
            dm, dp = stats(r["del"])
            if t in NSNET_TOOLS:
                ra = rd = "—"
            else:
                ra = f"{ratio(ref_add['nsnet-cli'], am)}, {ratio(ref_add['nsnet-cni'], am)}"
                rd = f"{ratio(ref_del['nsnet-cli'], dm)}, {ratio(ref_del['nsnet-cni'], dm)}"
            per = r["per_endpoint"]
            lines.append(row([
                label, n, ms(am), ms(ap), growth(r["add"]), ms(r.get("kernel_add_ms")), ms(dm), ms(dp),
                growth(r["del"]), ra, rd,
                mib(max(r["add_rss_kb"], r["del_rss_kb"])), probe_cell(r["probe"]),
                f"{num(per['chains'])} / {num(per['rules'])} / {num(per['elements'])}",
                checks_cell(r["checks"], r["error_count"]), left_cell(r["left"], TOOLS[t].leases_known)]))
    return "\n".join(lines)


def pods_table(result):
    head = ["pods", "create median", "create p95", "rm median", "rm p95", "nsnet peak RSS",
            "pause peak RSS", "processes per create / rm", "checks (served pod)", "left after rm"]
    lines = [row(head), row(["---"] * len(head))]
    probe = result.get("probe", {})
    procs = f"{probe.get('create', {}).get('procs', '?')} / {probe.get('rm', {}).get('procs', '?')}"
    rss = max(probe.get("create_rss_kb", 0), probe.get("rm_rss_kb", 0))
    for s in result.get("sizes", []):
        cm, cp = stats(s["create"])
        rm, rp = stats(s["rm"])
        left = []
        if s["left_pods"]:
            left.append(f"{s['left_pods']} pods")
        if s["left_links"]:
            left.append("links " + ", ".join(s["left_links"]))
        lines.append(row([s["n"], ms(cm), ms(cp), ms(rm), ms(rp), mib(rss), mib(s["pause_kb"]),
                          procs, checks_cell(s["checks"]), "; ".join(left) or "nothing"]))
    return "\n".join(lines)


def ports_table(results, tools):
    by = {r["tool"]: r for r in results if r.get("kind") == "ports"}
    head = ["tool", "ADD of 1000 ports (median)", "DEL", "runs", "nsnet CLI÷tool (ADD, DEL)", "added: chains / rules / elements",
            "peak RSS", "checks", "left after DEL"]
    lines = [row(head), row(["---"] * len(head))]
    cli = by.get("nsnet-cli")
    for t in tools:
        r = by.get(t)
        if r is None:
            continue
        if r.get("crashed"):
            lines.append(row([TOOLS[t].label, r["crashed"]] + [""] * (len(head) - 2)))
            continue
        a, d = median_ms(r["add"]), median_ms(r["del"])
        rat = "—" if t == "nsnet-cli" or not cli or cli.get("crashed") else \
            f"{ratio(median_ms(cli['add']), a)}, {ratio(median_ms(cli['del']), d)}"
        added = r["added"]
        lines.append(row([TOOLS[t].label, ms(a), ms(d), len(r["add"]), rat,
                          f"{added['chains']} / {added['rules']} / {added['elements']}", mib(r["rss_kb"]),
                          checks_cell(r["checks"], r["error_count"]),
                          left_cell(r["left"], TOOLS[t].leases_known)]))
    return "\n".join(lines)
