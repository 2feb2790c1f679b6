//! Soak: connect/disconnect cycles with published ports, alternating the CLI
//! and the CNI face, and nothing may grow with them: the store's files, the
//! firewall's elements, the kernel's links, routes and conntrack entries, the
//! time an ADD takes. 300 cycles by default; `NSNET_SLOW_TESTS=1` runs 10,000
//! (bounded by `NSNET_SOAK_SECONDS`, 1,800 s by default). The figures are
//! printed (`--nocapture`) and kept in RELIABILITY.md.

mod common;
use common::crash::slow;
use common::{Sandbox, NSNET};
use std::time::{Duration, Instant};

/// Cycles per shell call: a loop inside the sandbox, so that the latencies
/// measured are nsnet's own, not those of entering the sandbox.
const CHUNK: usize = 100;

/// What the soak watches, read back from the kernel and the files.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Objects {
    /// Bytes of `nsnet.db*` in the state and config directories.
    store_bytes: u64,
    elements: usize,
    links: usize,
    routes: usize,
    conntrack: usize,
    endpoints: usize,
}

fn objects(sb: &Sandbox) -> Objects {
    let n = |script: &str| -> u64 { sb.sh_ok(script).trim().parse().unwrap_or(u64::MAX) };
    Objects {
        store_bytes: n("cat /run/nsnet/nsnet.db* /run/nsnet-config/nsnet.db* | wc -c"),
        elements: sb.nft_elements().len(),
        links: n("ip -o link | wc -l") as usize,
        // Not the link-local and multicast routes IPv6 adds on its own time.
        routes: n(
            "{ ip route show table all; ip -6 route show table all; } | \
                   grep -vc -e fe80:: -e ff00:: || true",
        ) as usize,
        conntrack: n("cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0")
            as usize,
        endpoints: n(&format!(
            "{NSNET} network inspect web | grep -c host_interface || true"
        )) as usize,
    }
}

/// Median and 99th percentile, in milliseconds.
fn spread(ns: &[u64]) -> (f64, f64) {
    let mut v = ns.to_vec();
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1e6;
    (at(0.5), at(0.99))
}

#[test]
fn connect_disconnect_cycles_with_published_ports_grow_nothing() {
    let cycles = if slow() { 10_000 } else { 300 };
    let budget = Duration::from_secs(
        std::env::var("NSNET_SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800),
    );
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.netns(&["a", "b"]);
    let conf = serde_json::json!({"cniVersion": "1.0.0", "name": "web", "type": "nsnet",
        "capabilities": {"portMappings": true},
        "ipam": {"ranges": [[{"subnet": "10.10.0.0/24"}]]}});
    let rt = r#"{"portMappings":[{"hostPort":8081,"containerPort":80,"protocol":"tcp"}]}"#;
    let mut with_rt = conf.clone();
    with_rt["runtimeConfig"] = serde_json::from_str(rt).expect("JSON");
    sb.sh_ok(&format!("cat > /run/web.json <<'EOF'\n{with_rt}\nEOF"));
    // `b` stays connected throughout: its port must keep answering.
    sb.ok(&["network", "connect", "web", "b", "-p", "8090:80"]);
    let _server = sb.tcp_server("b", 80, "b");
    // One cycle first, so the baseline holds the bridge and the table.
    let cycle = format!(
        "i=0; while [ $i -lt {CHUNK} ]; do
           s=$(date +%s%N); {NSNET} network connect web a -p 8080:80 >/dev/null || exit 1
           e=$(date +%s%N); echo $((e - s))
           {NSNET} network disconnect web a || exit 1
           s=$(date +%s%N)
           CNI_COMMAND=ADD CNI_CONTAINERID=soak CNI_NETNS=/run/netns/a CNI_IFNAME=eth0 \
             CNI_PATH=/run/cni-bin {NSNET} </run/web.json >/dev/null || exit 1
           e=$(date +%s%N); echo $((e - s))
           CNI_COMMAND=DEL CNI_CONTAINERID=soak CNI_NETNS=/run/netns/a CNI_IFNAME=eth0 \
             CNI_PATH=/run/cni-bin {NSNET} </run/web.json >/dev/null || exit 1
           i=$((i + 2))
         done"
    );
    sb.sh_ok(&cycle.replace(&format!("-lt {CHUNK}"), "-lt 2"));
    let base = objects(&sb);
    let started = Instant::now();
    let mut latencies: Vec<u64> = Vec::new();
    let mut samples = vec![(0, base)];
    while latencies.len() < cycles && started.elapsed() < budget {
        let out = sb.sh_ok(&cycle);
        latencies.extend(out.lines().filter_map(|l| l.trim().parse::<u64>().ok()));
        if latencies.len() % (cycles / 10).max(CHUNK) == 0 || latencies.len() >= cycles {
            samples.push((latencies.len(), objects(&sb)));
        }
    }
    let end = objects(&sb);
    let took = started.elapsed().as_secs_f64();
    println!(
        "{} cycles (connect -p / CNI ADD with portMappings, then disconnect / DEL) in {took:.0} s",
        latencies.len()
    );
    println!("cycles  store bytes  elements  links  routes  conntrack  endpoints");
    for (n, o) in &samples {
        println!(
            "{n:>6}  {:>11}  {:>8}  {:>5}  {:>6}  {:>9}  {:>9}",
            o.store_bytes, o.elements, o.links, o.routes, o.conntrack, o.endpoints
        );
    }
    let window = (latencies.len() / 10).clamp(1, 1000);
    let (first, last) = (
        spread(&latencies[..window]),
        spread(&latencies[latencies.len() - window..]),
    );
    println!(
        "ADD latency, first {window}: median {:.1} ms, p99 {:.1} ms; last {window}: median {:.1} ms, p99 {:.1} ms",
        first.0, first.1, last.0, last.1
    );
    assert!(
        latencies.len() >= cycles.min(1000),
        "too few cycles in the time allowed"
    );
    // Nothing grows: the kernel's objects and the firewall's elements are
    // back to the baseline, the store stays within a page or two of it (WAL
    // checkpoints make its size move, not grow).
    assert_eq!(
        (end.elements, end.links, end.routes, end.endpoints),
        (base.elements, base.links, base.routes, base.endpoints),
        "{base:?} -> {end:?}"
    );
    let most = samples
        .iter()
        .map(|(_, o)| o.store_bytes)
        .max()
        .unwrap_or(0);
    assert!(
        most <= base.store_bytes + 8 * 1024 * 1024
            && end.store_bytes <= 2 * base.store_bytes.max(1 << 20),
        "the store grew: {base:?} -> {end:?}"
    );
    assert!(
        last.0 <= 3.0 * first.0 + 5.0,
        "ADD got slower: median {:.1} ms -> {:.1} ms",
        first.0,
        last.0
    );
    assert_eq!(sb.tcp_ask("host", "127.0.0.1", 8090).as_deref(), Some("b"));
    let check = sb.nsnet(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
