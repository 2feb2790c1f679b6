//! Reliability: many processes at once, isolation between what must stay
//! apart, the host's own state left byte for byte as it was, and malformed
//! input refused with its exact error and without a change. Crash safety
//! (SIGKILL at random moments) lives with gc in `maint.rs`.

mod common;
use common::Sandbox;
use serde_json::{json, Value};
use std::process::Output;
use std::time::Instant;

fn inspect(sb: &Sandbox, net: &str) -> Value {
    serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON")
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text:?}"))
}

/// Runs `nsnet check`: its lines (empty when clean, then its exit is 0).
fn check(sb: &Sandbox) -> String {
    let out = sb.nsnet(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.success(), text.is_empty(), "{text}");
    text
}

/// The CNI config of network `web` as the CLI created it.
fn web_conf() -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "web", "type": "nsnet",
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.10.0.0/24"}]]},
    })
}

/// Starts `count` jobs inside the sandbox at the same moment (each waits for
/// one file to appear) and waits for all; job `i` is `job(i)`, a shell line.
/// Returns each job's exit status, stdout and stderr, and the wall time.
fn all_at_once(
    sb: &Sandbox,
    count: usize,
    job: impl Fn(usize) -> String,
) -> (Vec<(i32, String, String)>, f64) {
    sb.sh_ok("rm -rf /run/jobs /run/go && mkdir /run/jobs");
    let mut script = String::new();
    for i in 0..count {
        script += &format!(
            "(while [ ! -e /run/go ]; do sleep 0.005; done; {} >/run/jobs/{i}.out 2>/run/jobs/{i}.err; \
             echo $? >/run/jobs/{i}.rc) &\n",
            job(i)
        );
    }
    script += "sleep 0.3; s=$(date +%s%N); touch /run/go; wait; echo $(( $(date +%s%N) - s ))";
    let ns: f64 = sb.sh_ok(&script).trim().parse().expect("a duration");
    let results = (0..count)
        .map(|i| {
            let read = |ext: &str| sb.sh_ok(&format!("cat /run/jobs/{i}.{ext}"));
            (
                read("rc").trim().parse().expect("an exit status"),
                read("out"),
                read("err"),
            )
        })
        .collect();
    (results, ns / 1e9)
}

#[test]
fn sixty_four_concurrent_connects_and_cni_adds_get_distinct_reachable_addresses_and_dels_leave_nothing(
) {
    const N: usize = 64;
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.sh_ok(&format!(
        "for i in $(seq 0 {}); do ip netns add c$i; done",
        N - 1
    ));
    sb.sh_ok(&format!("cat > /run/web.json <<'EOF'\n{}\nEOF", web_conf()));
    let conf_with_port = |i: usize| {
        let mut c = web_conf();
        c["runtimeConfig"] = json!({"portMappings": [{"hostPort": 20000 + i, "containerPort": 80, "protocol": "tcp"}]});
        c
    };
    for i in (1..N).step_by(4) {
        sb.sh_ok(&format!(
            "cat > /run/web{i}.json <<'EOF'\n{}\nEOF",
            conf_with_port(i)
        ));
    }
    let n = common::NSNET;
    // Even: the CLI (every fourth with a published port); odd: CNI ADD (every
    // fourth with a port mapping). The network's bridge does not exist yet:
    // the first connects race to make it.
    let cni = |i: usize, command: &str, netns: &str| {
        let conf = if i % 4 == 1 {
            format!("/run/web{i}.json")
        } else {
            "/run/web.json".into()
        };
        format!(
            "CNI_COMMAND={command} CNI_CONTAINERID=ctr{i} CNI_NETNS={netns} CNI_IFNAME=eth0 \
             CNI_PATH=/run/cni-bin {n} <{conf}"
        )
    };
    // One round always; NSNET_SLOW_TESTS=1 runs ten.
    let rounds = if std::env::var("NSNET_SLOW_TESTS").is_ok_and(|v| v == "1") {
        10
    } else {
        1
    };
    let (mut adds_total, mut dels_total) = (0.0, 0.0);
    for _ in 0..rounds {
        let (adds, add_time) = all_at_once(&sb, N, |i| {
            if i % 2 == 0 {
                let port = if i % 4 == 0 {
                    format!(" -p {}:80", 20000 + i)
                } else {
                    String::new()
                };
                format!("{n} network connect web c{i}{port}")
            } else {
                cni(i, "ADD", &format!("/run/netns/c{i}"))
            }
        });
        let failures: Vec<_> = adds.iter().enumerate().filter(|(_, r)| r.0 != 0).collect();
        assert!(failures.is_empty(), "failed: {failures:?}");

        // 64 distinct addresses, each where the store and the CNI result say.
        let mut addresses = Vec::new();
        for (i, (_, out, _)) in adds.iter().enumerate() {
            let kernel = sb.global_addresses(&format!("c{i}"));
            assert_eq!(kernel.len(), 1, "c{i}: {kernel:?}");
            if i % 2 == 1 {
                let result: Value = serde_json::from_str(out).expect("a CNI result");
                assert_eq!(result["ips"][0]["address"], kernel[0].as_str(), "c{i}");
            }
            addresses.push(kernel[0].clone());
        }
        let mut unique = addresses.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), N, "{addresses:?}");
        let eps = inspect(&sb, "web")["endpoints"].as_array().unwrap().clone();
        assert_eq!(eps.len(), N);
        assert_eq!(inspect(&sb, "web")["leases"].as_array().unwrap().len(), N);
        assert_eq!(
            sb.json("ip -j link show master nsbr-web")
                .as_array()
                .unwrap()
                .len(),
            N
        );
        // All reachable: every endpoint from the host, and from endpoint c0
        // across the bridge.
        let bare: Vec<&str> = addresses
            .iter()
            .map(|a| a.split('/').next().unwrap())
            .collect();
        let unreachable = sb.sh_ok(&format!(
            "for a in {0}; do ping -c1 -W2 $a >/dev/null || echo host $a; \
             ip netns exec c0 ping -c1 -W2 $a >/dev/null || echo c0 $a; done",
            bare.join(" ")
        ));
        assert_eq!(unreachable, "", "unreachable");
        // A published port of each face answers.
        let _srv0 = sb.tcp_server("c0", 80, "c0");
        let _srv1 = sb.tcp_server("c1", 80, "c1");
        assert_eq!(
            sb.tcp_ask("host", "10.10.0.1", 20000).as_deref(),
            Some("c0")
        );
        assert_eq!(
            sb.tcp_ask("host", "10.10.0.1", 20001).as_deref(),
            Some("c1")
        );
        assert_eq!(check(&sb), "");

        // 64 at once the other way; half of the DELs without a namespace, as
        // containerd sends them.
        let (dels, del_time) = all_at_once(&sb, N, |i| {
            if i % 2 == 0 {
                format!("{n} network disconnect web c{i}")
            } else if i % 4 == 1 {
                cni(i, "DEL", "")
            } else {
                cni(i, "DEL", &format!("/run/netns/c{i}"))
            }
        });
        let failures: Vec<_> = dels.iter().enumerate().filter(|(_, r)| r.0 != 0).collect();
        assert!(failures.is_empty(), "failed: {failures:?}");
        let web = inspect(&sb, "web");
        assert_eq!(web["endpoints"], json!([]));
        assert_eq!(web["leases"], json!([]));
        assert_eq!(sb.ok(&["port", "ls", "--json"]).trim(), "[]");
        assert_eq!(sb.json("ip -j link show master nsbr-web"), json!([]));
        assert_eq!(
            sb.links("host"),
            ["lo", "nsbr-web"],
            "a veth is left on the host"
        );
        for i in 0..N {
            assert_eq!(sb.links(&format!("c{i}")), ["lo"], "c{i}");
        }
        // Only the network's own elements are left in nsnet's table (the CNI
        // ADDs' config, without `inbound`, made the network routed).
        let mut sets: Vec<String> = sb.nft_elements().into_iter().map(|(s, _)| s).collect();
        sets.sort();
        assert_eq!(sets, ["bridge_pairs", "bridges", "masq", "routed"]);
        assert_eq!(sb.sh_ok("ls -A /run/nsnet/inflight"), "");
        assert_eq!(check(&sb), "");
        assert_eq!(sb.ok(&["gc"]), "", "gc found something to collect");
        adds_total += add_time;
        dels_total += del_time;
        println!(
            "{N} concurrent connects/ADDs in {add_time:.2} s, {N} concurrent disconnects/DELs in {del_time:.2} s, 0 failures"
        );
    }
    println!(
        "{rounds} round(s): {} connects/ADDs and as many disconnects/DELs, 0 failures, {adds_total:.2} s + {dels_total:.2} s",
        rounds * N
    );
}

/// Global addresses of the network namespace at `path` (a pod's pinned one).
fn addresses_at(sb: &Sandbox, path: &str) -> Vec<String> {
    let v = sb.json(&format!(
        "nsenter --net={path} ip -j addr show scope global"
    ));
    let mut out = Vec::new();
    for l in v.as_array().unwrap() {
        for a in l["addr_info"].as_array().unwrap() {
            if let Some(local) = a["local"].as_str() {
                out.push(local.to_owned());
            }
        }
    }
    out
}

#[test]
fn sixty_four_concurrent_first_calls_on_fresh_state_and_config_dirs_all_succeed() {
    const N: usize = 64;
    // A node that just booted: every round is a new sandbox (no nsnet table,
    // no bridge) with state and config dirs that do not exist yet. CNI ADDs
    // (a third) create their config dir, network and both databases on first
    // use; `network connect` and `pod create` (the rest) need their network
    // defined, so it is, beforehand, in a config dir of their own, while the
    // state dir, which all 64 share, does not exist until they race to make it.
    let rounds = if std::env::var("NSNET_SLOW_TESTS").is_ok_and(|v| v == "1") {
        30
    } else {
        6
    };
    let n = common::NSNET;
    let conf = json!({
        "cniVersion": "1.0.0", "name": "cnet", "type": "nsnet",
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.70.0.0/24"}]]},
    });
    let mut total = 0.0;
    for round in 0..rounds {
        let sb = Sandbox::new();
        sb.sh_ok(&format!(
            "for i in $(seq 0 {}); do ip netns add c$i; done",
            N - 1
        ));
        sb.sh_ok(&format!("cat > /run/cnet.json <<'EOF'\n{conf}\nEOF"));
        sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
        sb.sh_ok("test ! -e /run/nsnet && test ! -e /run/cni-config");
        let (results, secs) = all_at_once(&sb, N, |i| match i % 3 {
            0 => format!(
                "CNI_COMMAND=ADD CNI_CONTAINERID=ctr{i} CNI_NETNS=/run/netns/c{i} CNI_IFNAME=eth0 \
                 CNI_PATH=/run/cni-bin NSNET_CONFIG_DIR=/run/cni-config {n} </run/cnet.json"
            ),
            1 => format!("{n} network connect web c{i}"),
            _ => format!("{n} pod create p{i} --network web"),
        });
        let failures: Vec<_> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.0 != 0)
            .collect();
        assert!(failures.is_empty(), "round {round}: failed: {failures:?}");

        // Every call did its work: one address in each namespace, all distinct.
        let mut addresses = Vec::new();
        for i in 0..N {
            let found = if i % 3 == 2 {
                addresses_at(&sb, &format!("/run/nsnet/pods/p{i}/net"))
            } else {
                addresses_at(&sb, &format!("/run/netns/c{i}"))
            };
            assert_eq!(found.len(), 1, "round {round}, job {i}: {found:?}");
            addresses.extend(found);
        }
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), N, "round {round}: {addresses:?}");
        let cli_jobs = (0..N).filter(|i| i % 3 != 0).count();
        assert_eq!(
            inspect(&sb, "web")["endpoints"].as_array().unwrap().len(),
            cli_jobs
        );
        let cnet = sb.sh_ok(&format!(
            "NSNET_CONFIG_DIR=/run/cni-config {n} network inspect cnet"
        ));
        let cnet: Value = serde_json::from_str(&cnet).expect("inspect JSON");
        assert_eq!(cnet["endpoints"].as_array().unwrap().len(), N - cli_jobs);
        total += secs;
        println!("round {round}: {N} concurrent first calls in {secs:.2} s, 0 failures");
    }
    println!("{rounds} round(s) of {N} concurrent first calls, 0 failures, {total:.2} s in all");
}

#[test]
fn only_published_ports_answer_and_networks_and_isolated_endpoints_stay_apart() {
    let sb = Sandbox::with_outside();
    sb.netns(&["a", "a2", "b", "i1", "i2"]);
    sb.ok(&["network", "create", "n1", "--subnet", "10.30.0.0/24"]);
    sb.ok(&["network", "create", "n2", "--subnet", "10.31.0.0/24"]);
    sb.ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.50.0.0/24",
        "--isolate",
    ]);
    sb.ok(&["network", "connect", "n1", "a", "-p", "8080:80"]);
    sb.ok(&["network", "connect", "n1", "a2"]);
    sb.ok(&["network", "connect", "n2", "b"]);
    sb.ok(&["network", "connect", "iso", "i1"]);
    sb.ok(&["network", "connect", "iso", "i2"]);
    let (a, b, i1, i2) = ("10.30.0.2", "10.31.0.2", "10.50.0.2", "10.50.0.3");
    let _servers: Vec<_> = [("a", 80), ("a", 81), ("b", 80), ("i1", 80), ("i2", 80)]
        .into_iter()
        .map(|(ns, port)| sb.tcp_server(ns, port, &format!("{ns}-{port}")))
        .collect();
    // The outside may route the subnets through the host: still only the
    // published port passes.
    sb.sh_ok(
        "ip -n outside route add 10.30.0.0/16 via 203.0.113.1 && \
         ip -n outside route add 10.50.0.0/24 via 203.0.113.1",
    );
    let answers = |from: &str, addr: &str, port: u16| sb.tcp_ask(from, addr, port);

    // What was published answers, from outside and from another network.
    assert_eq!(
        answers("outside", "203.0.113.1", 8080).as_deref(),
        Some("a-80")
    );
    assert_eq!(answers("b", "203.0.113.1", 8080).as_deref(), Some("a-80"));
    // Positive controls: the unpublished servers listen, and their own
    // network reaches them.
    assert_eq!(answers("a2", a, 81).as_deref(), Some("a-81"));
    assert_eq!(answers("a2", a, 80).as_deref(), Some("a-80"));
    assert_eq!(answers("i1", "127.0.0.1", 80).as_deref(), Some("i1-80"));

    // From outside: no unpublished port, neither at the host nor routed to
    // the endpoint itself, nor an isolated network's endpoint.
    for (addr, port) in [
        ("203.0.113.1", 81),
        ("203.0.113.1", 80),
        (a, 81),
        (a, 80),
        (b, 80),
        (i1, 80),
    ] {
        assert_eq!(
            answers("outside", addr, port),
            None,
            "outside → {addr}:{port}"
        );
    }
    assert!(sb.ping_fails("outside", a), "outside pinged an endpoint");
    // Between networks: nothing, in either direction.
    assert_eq!(answers("b", a, 80), None, "n2 → n1");
    assert_eq!(answers("b", a, 81), None, "n2 → n1");
    assert_eq!(answers("a", b, 80), None, "n1 → n2");
    assert_eq!(answers("i1", a, 80), None, "iso → n1");
    assert_eq!(answers("a", i1, 80), None, "n1 → iso");
    assert!(sb.ping_fails("a", b) && sb.ping_fails("b", a));
    // Between the endpoints of an isolated network: nothing either.
    assert_eq!(answers("i1", i2, 80), None, "i1 → i2");
    assert_eq!(answers("i2", i1, 80), None, "i2 → i1");
    assert!(sb.ping_fails("i1", i2) && sb.ping_fails("i2", i1));
    // ...though each reaches its gateway and the outside world.
    assert!(sb.pings("i1", "10.50.0.1") && sb.pings("i2", "10.50.0.1"));
    let _echo = sb.tcp_echo_peer("outside", "203.0.113.2", 9090);
    assert_eq!(
        answers("i2", "203.0.113.2", 9090).as_deref(),
        Some("203.0.113.1")
    );
    // The drops are nsnet's: its forward chain counted nothing it let through
    // between the networks (bridge_pairs only holds each bridge with itself).
    let pairs: Vec<String> = sb
        .nft_elements()
        .into_iter()
        .filter(|(s, _)| s == "bridge_pairs")
        .map(|(_, e)| e)
        .collect();
    for p in &pairs {
        let v: Value = serde_json::from_str(p).unwrap();
        assert_eq!(v["concat"][0], v["concat"][1], "{p}");
    }
    assert_eq!(pairs.len(), 3);
}

/// Everything a refused request must leave as it was: links, global
/// addresses and routes of the sandbox and of every named namespace, the
/// whole ruleset (`nft -j`), and nsnet's listings.
fn state_snapshot(sb: &Sandbox) -> String {
    let mut spaces = vec![String::new()];
    for ns in sb.sh_ok("ip netns ls").lines() {
        if let Some(name) = ns.split_whitespace().next() {
            spaces.push(format!("-n {name} "));
        }
    }
    let mut out = String::new();
    for ns in &spaces {
        for l in sb.json(&format!("ip {ns}-j link")).as_array().unwrap() {
            // Carrier flags and operstate follow the peer on their own time.
            let flags: Vec<&Value> = l["flags"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| *f != "LOWER_UP" && *f != "NO-CARRIER")
                .collect();
            out += &format!(
                "{ns}link {} {} {} {} {:?}\n",
                l["ifname"], l["master"], l["mtu"], l["address"], flags
            );
        }
        out += &sb.sh_ok(&format!(
            "ip {ns}-j addr show scope global; ip {ns}-j route"
        ));
        // All IPv6 routes but the local ones of link-local addresses, which
        // appear when DAD ends, on the kernel's own time.
        let routes = sb.json(&format!("ip {ns}-6 -j route show table all"));
        for r in routes.as_array().unwrap() {
            if !(r["type"] == "local" && r["dst"].as_str().unwrap_or_default().starts_with("fe80"))
            {
                out += &format!("{ns}route {r}\n");
            }
        }
    }
    // Counters count what the kernel sends by itself (router solicitations).
    let mut ruleset = sb.json("nft -j list ruleset");
    for item in ruleset["nftables"].as_array_mut().unwrap() {
        for e in item["rule"]["expr"].as_array_mut().into_iter().flatten() {
            if e.get("counter").is_some() {
                *e = json!("counter");
            }
        }
    }
    out += &format!("{ruleset:#}\n");
    out += &sb.sh_ok("ls -A /run/netns");
    for args in [
        &["network", "ls", "--json"][..],
        &["network", "inspect", "base"],
        &["network", "inspect", "tiny"],
        &["network", "inspect", "cnet"],
        &["port", "ls", "--json"],
        &["pod", "ls", "--json"],
    ] {
        out += &sb.ok(args);
    }
    out
}

/// A CNI environment as [`Sandbox::cni`] takes it.
fn env_of<'a>(e: &'a [(&'static str, Option<String>)]) -> Vec<(&'static str, Option<&'a str>)> {
    e.iter().map(|(k, v)| (*k, v.as_deref())).collect()
}

/// One malformed input: CLI arguments, or a CNI call (environment changes
/// and the config on stdin).
enum Input {
    Cli(Vec<String>),
    Cni(Vec<(&'static str, Option<String>)>, String),
}

#[test]
fn malformed_inputs_are_refused_with_their_exact_error_and_change_nothing() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b"]);
    sb.sh_ok("ip netns add c1 && ip netns add c2 && touch /run/not-a-netns");
    sb.ok(&["network", "create", "base", "--subnet", "10.90.0.0/24"]);
    sb.ok(&["network", "create", "tiny", "--subnet", "10.91.0.0/30"]);
    sb.ok(&["network", "connect", "tiny", "a"]);
    sb.ok(&[
        "network",
        "connect",
        "base",
        "a",
        "--ip",
        "10.90.0.50",
        "-p",
        "8080:80",
    ]);
    sb.ok(&["pod", "create", "p1", "--network", "base"]);
    sb.ok(&[
        "network",
        "create",
        "in",
        "--subnet",
        "10.93.0.0/24",
        "--internal",
    ]);
    let good = json!({
        "cniVersion": "1.0.0", "name": "cnet", "type": "nsnet",
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.70.0.0/24"}]]},
    });
    let add_env = |id: &str, netns: &str| -> Vec<(&'static str, Option<String>)> {
        vec![
            ("CNI_COMMAND", Some("ADD".into())),
            ("CNI_CONTAINERID", Some(id.into())),
            ("CNI_NETNS", Some(netns.into())),
            ("CNI_IFNAME", Some("eth0".into())),
        ]
    };
    let first = sb.cni(&env_of(&add_env("c1", "/run/netns/c1")), &good.to_string());
    assert!(first.status.success(), "{first:?}");

    let before = state_snapshot(&sb);
    let cli = |args: &[&str]| Input::Cli(args.iter().map(|s| s.to_string()).collect());
    // A CNI ADD for c2 with `changes` to its environment and `conf` on stdin.
    let cni = |changes: &[(&'static str, Option<&str>)], conf: String| {
        let mut env = add_env("c2", "/run/netns/c2");
        for (k, v) in changes {
            env.retain(|(key, _)| key != k);
            env.push((k, v.map(str::to_owned)));
        }
        Input::Cni(env, conf)
    };
    let with = |key: &str, value: Value| {
        let mut v = good.clone();
        v[key] = value;
        v.to_string()
    };
    let without = |key: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(key);
        v.to_string()
    };
    let ranges = |range: Value| with("ipam", json!({"type": "nsnet", "ranges": [[range]]}));
    // A config for a network `name` that does not exist yet.
    let named = |name: &str, ranges: Value, mtu: Option<u32>| {
        let mut v = good.clone();
        v["name"] = name.into();
        v["ipam"] = json!({"type": "nsnet", "ranges": ranges});
        if let Some(mtu) = mtu {
            v["mtu"] = mtu.into();
        }
        v.to_string()
    };
    let mapping = |m: Value| with("runtimeConfig", json!({ "portMappings": [m] }));
    let long = "n".repeat(65);
    let g = good.to_string();
    let a_id = inspect(&sb, "base")["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["namespace"] == "a")
        .map(|e| e["owner"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(a_id, "a");
    let published = format!(
        "nsnet: network connect base b: network base: port 8080/tcp on * is already published by {a_id}"
    );

    // (input, exact error: the CLI's stderr line or the CNI error's msg, CNI code)
    let cases: Vec<(Input, &str, u64)> = vec![
        (cli(&["network", "create", "x", "--subnet", "10.90.0.128/25"]), "nsnet: network create x: subnet 10.90.0.128/25 overlaps network base (10.90.0.0/24)", 0),
        (cli(&["network", "create", "x", "--subnet", "10.1.2.0/33"]), "nsnet: invalid value '10.1.2.0/33' for '--subnet <SUBNET>': invalid IP address syntax", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.5/24"]), "nsnet: network create x: subnet 10.92.0.5/24 is not a network address (did you mean 10.92.0.0/24?)", 0),
        (cli(&["network", "create", "x", "--subnet", "0.0.0.0/0"]), "nsnet: network create x: subnet 0.0.0.0/0 is too large (the shortest prefix is /8)", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--gateway", "10.93.0.1"]), "nsnet: network create x: gateway 10.93.0.1 is outside subnet 10.92.0.0/24", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--gateway", "10.92.0.0"]), "nsnet: network create x: gateway 10.92.0.0 is the network address of subnet 10.92.0.0/24", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--gateway", "10.92.0.255"]), "nsnet: network create x: gateway 10.92.0.255 is the broadcast address of subnet 10.92.0.0/24", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--subnet", "10.93.0.0/24"]), "nsnet: network create x: at most one IPv4 and one IPv6 subnet per network (10.93.0.0/24 is a second IPv4)", 0),
        (cli(&["network", "create", "x", "--gateway", "10.92.0.1"]), "nsnet: network create x: gateway 10.92.0.1 has no subnet of its family", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--ip-range", "10.93.0.0/28"]), "nsnet: network create x: ip range 10.93.0.0/28 is not inside subnet 10.92.0.0/24", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--mtu", "10"]), "nsnet: network create x: MTU 10 is out of range (68..65535)", 0),
        (cli(&["network", "create", "x", "--subnet", "127.0.0.0/24"]), "nsnet: network create x: subnet 127.0.0.0/24 is in loopback (127.0.0.0/8): packets to it never leave a namespace", 0),
        (cli(&["network", "create", "x", "--subnet", "224.0.0.0/24"]), "nsnet: network create x: subnet 224.0.0.0/24 is in multicast (224.0.0.0/4): a multicast address cannot be an interface's own", 0),
        (cli(&["network", "create", "x", "--subnet", "0.0.0.0/8"]), r#"nsnet: network create x: subnet 0.0.0.0/8 is in "this network" (0.0.0.0/8): its addresses are never assigned to an interface"#, 0),
        (cli(&["network", "create", "x", "--subnet", "240.0.0.0/24"]), "nsnet: network create x: subnet 240.0.0.0/24 is in reserved (240.0.0.0/4): the kernel neither routes nor forwards it", 0),
        (cli(&["network", "create", "x", "--subnet", "169.254.0.0/24"]), r#"nsnet: network create x: subnet 169.254.0.0/24 is in IPv4 link-local (169.254.0.0/16), where the host's own link-local traffic and cloud metadata (169.254.169.254) live; allow it with --allow-link-local (CNI: "allowLinkLocal": true)"#, 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--subnet", "::/96"]), "nsnet: network create x: subnet ::/96 is in the IPv6 loopback address (::1): packets to it never leave a namespace", 0),
        (cli(&["network", "create", "x", "--subnet", "fe80::/64"]), "nsnet: network create x: subnet fe80::/64 is in IPv6 link-local (fe80::/10): every interface has its own fe80:: address and route there", 0),
        (cli(&["network", "create", "x", "--subnet", "ff02::/64", "--allow-link-local"]), "nsnet: network create x: subnet ff02::/64 is in IPv6 multicast (ff00::/8): a multicast address cannot be an interface's own", 0),
        (cli(&["network", "create", "x", "--subnet", "10.92.0.0/24", "--subnet", "fd00:92::/64", "--mtu", "1200"]), "nsnet: network create x: MTU 1200 is below 1280, the least IPv6 works with: subnet fd00:92::/64 cannot be used on it", 0),
        (cli(&["network", "create", "base"]), "nsnet: network create base: network base already exists", 0),
        (cli(&["network", "create", &long]), r#"nsnet: invalid value 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn' for '<NAME>': network name "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" is too long (65 bytes, at most 64)"#, 0),
        (cli(&["network", "create", "bad name"]), r#"nsnet: invalid value 'bad name' for '<NAME>': network name "bad name" contains ' ', which is not allowed"#, 0),
        (cli(&["network", "create", "x", "--bridge", "nsbr-base"]), "nsnet: network create x: bridge nsbr-base belongs to network base", 0),
        (cli(&["network", "create", "x", "--bridge", "lo"]), "nsnet: network create x: interface lo already exists on the host", 0),
        (cli(&["network", "connect", "nope", "b"]), "nsnet: network connect nope b: network nope does not exist", 0),
        (cli(&["network", "connect", "base", "zz"]), "nsnet: network connect base zz: namespace zz does not exist", 0),
        (cli(&["network", "connect", "base", "pid:4000000"]), "nsnet: network connect base pid:4000000: process 4000000 does not exist", 0),
        (cli(&["network", "connect", "base", "pid:abc"]), r#"nsnet: invalid value 'pid:abc' for '<TARGET>': target "pid:abc": expected pid:PID with a number"#, 0),
        (cli(&["network", "connect", "base", "/run/not-a-netns"]), "nsnet: network connect base /run/not-a-netns: /run/not-a-netns is not a network namespace", 0),
        (cli(&["network", "connect", "tiny", "b"]), "nsnet: network connect tiny b: network tiny: no free address left in 10.91.0.0/30", 0),
        (cli(&["network", "connect", "base", "b", "--ip", "10.90.0.50"]), "nsnet: network connect base b: network base: address 10.90.0.50 is already in use", 0),
        (cli(&["network", "connect", "base", "b", "--ip", "10.99.0.5"]), "nsnet: network connect base b: address 10.99.0.5 is not in subnet 10.90.0.0/24", 0),
        (cli(&["network", "connect", "base", "b", "--ip", "10.90.0.1"]), "nsnet: network connect base b: address 10.90.0.1 is reserved in 10.90.0.0/24 (the gateway)", 0),
        (cli(&["network", "connect", "base", "b", "--ip", "fd00::5"]), "nsnet: network connect base b: network base has no IPv6 subnet for address fd00::5", 0),
        (cli(&["network", "connect", "base", "a"]), "nsnet: network connect base a: a is already connected to network base (as eth1); give --ifname for a second interface", 0),
        (cli(&["network", "connect", "base", "b", "--ifname", "lo"]), "nsnet: network connect base b: namespace b: interface lo already exists", 0),
        (cli(&["network", "connect", "base", "b", "--ifname", "a-very-long-ifname"]), r#"nsnet: invalid value 'a-very-long-ifname' for '--ifname <IFNAME>': interface name "a-very-long-ifname" is too long (18 bytes, at most 15)"#, 0),
        (cli(&["network", "connect", "base", "b", "--mac", "01:00:00:00:00:01"]), "nsnet: invalid value '01:00:00:00:00:01' for '--mac <MAC>': MAC address 01:00:00:00:00:01 is a multicast address", 0),
        (cli(&["network", "connect", "base", "b", "--mac", "zz"]), r#"nsnet: invalid value 'zz' for '--mac <MAC>': MAC address "zz" is malformed (expected six hex pairs like 02:42:ac:11:00:02)"#, 0),
        (cli(&["network", "connect", "base", "b", "-p", "8080:80"]), &published, 0),
        (cli(&["network", "connect", "base", "b", "-p", "70000:80"]), r#"nsnet: invalid value '70000:80' for '--publish <SPEC>': port spec "70000:80": port 70000 is out of range (1-65535)"#, 0),
        (cli(&["network", "connect", "base", "b", "-p", "80-90:80-85"]), r#"nsnet: invalid value '80-90:80-85' for '--publish <SPEC>': port spec "80-90:80-85": host range has 11 ports but container range has 6"#, 0),
        (cli(&["network", "connect", "base", "b", "-p", "[::1]:8081:80"]), r#"nsnet: invalid value '[::1]:8081:80' for '--publish <SPEC>': port spec "[::1]:8081:80": the kernel cannot forward traffic sent to ::1 to another namespace (it never routes IPv6 loopback); publish on 127.0.0.1 or another address"#, 0),
        (cli(&["network", "connect", "base", "b", "-p", "80/icmp"]), r#"nsnet: invalid value '80/icmp' for '--publish <SPEC>': port spec "80/icmp": unknown protocol "icmp" (tcp, udp or sctp)"#, 0),
        (cli(&["network", "connect", "in", "b", "-p", "81"]), "nsnet: network connect in b: network in is internal: it cannot publish ports", 0),
        (cli(&["network", "disconnect", "base", "b"]), "nsnet: network disconnect base b: b is not connected to network base", 0),
        (cli(&["network", "rm", "nope"]), "nsnet: network rm nope: network nope does not exist", 0),
        (cli(&["network", "rm", "base"]), "nsnet: network rm base: network base has 2 endpoint(s) attached (a eth1, pod p1 eth0); disconnect them or use --force", 0),
        (cli(&["pod", "create", "p1"]), "nsnet: pod create p1: pod p1 already exists", 0),
        (cli(&["pod", "create", "x", "--hostname", "bad_host"]), r#"nsnet: pod create x: hostname "bad_host" is not valid (1-64 letters, digits, '-' and '.')"#, 0),
        (cli(&["pod", "create", "x", "--network", "nope"]), "nsnet: pod create x: network nope does not exist", 0),
        (cli(&["pod", "rm", "nope"]), "nsnet: pod rm nope: pod nope does not exist", 0),
        (cli(&["pod", "exec", "nope", "--", "true"]), "nsnet: pod exec nope: pod nope does not exist", 0),
        (cli(&["run", "--network", "container:nope", "--", "true"]), "nsnet: run: no running nsnet run --name nope", 0),
        (cli(&["run", "--network", "foo:bar", "--", "true"]), r#"nsnet: invalid value 'foo:bar' for '--network <MODE>': unknown network mode "foo:bar" (a network name, host, none, container:NAME or pod:NAME)"#, 0),
        (cli(&["run", "--network", "host", "-p", "80", "--", "true"]), "nsnet: run: -p publishes ports of a run on a network; in this mode publish them where the namespace was made", 0),
        (cli(&["netns", "add", "a/b"]), r#"nsnet: invalid value 'a/b' for '<NAME>': namespace name "a/b" contains '/', which is not allowed"#, 0),
        (cli(&["link", "add", "a", "zz"]), "nsnet: link add a zz: namespace zz does not exist", 0),
        (cli(&["check", "nope"]), "nsnet: check: network nope does not exist", 0),
        (cni(&[], "{\"cniVersion\": ".into()), "the network configuration is not valid JSON: EOF while parsing a value at line 1 column 15", 6),
        (cni(&[], "[1]".into()), "the network configuration is not a JSON object", 6),
        (cni(&[], without("name")), r#"the network configuration lacks "name""#, 7),
        (cni(&[], without("cniVersion")), r#"the network configuration lacks "cniVersion""#, 7),
        (cni(&[], with("cniVersion", "0.2.0".into())), r#"incompatible CNI versions: config is "0.2.0", nsnet supports ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]"#, 1),
        (cni(&[], with("cniVersion", "2.0.0".into())), r#"incompatible CNI versions: config is "2.0.0", nsnet supports ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]"#, 1),
        (cni(&[], with("mtu", "big".into())), r#"mtu: invalid type: string "big", expected u32"#, 7),
        (cni(&[], with("macspoofchk", true.into())), "macspoofchk: nsnet does not support MAC spoof checking (nsnet owns no bridge-family table); remove the key", 2),
        (cni(&[], with("vlan", 5.into())), "vlan: nsnet does not support VLAN tagging on bridge ports", 2),
        (cni(&[], ranges(json!({"subnet": "10.71.0.0/24"}))), "network cnet exists with subnet 10.70.0.0/24, but the config asks for 10.71.0.0/24 (remove it with `nsnet network rm cnet`, or give the config another name)", 7),
        (cni(&[], named("lo", json!([[{"subnet": "127.0.0.0/24"}]]), None)), "network lo: subnet 127.0.0.0/24 is in loopback (127.0.0.0/8): packets to it never leave a namespace", 7),
        (cni(&[], named("ll", json!([[{"subnet": "169.254.0.0/24"}]]), None)), r#"network ll: subnet 169.254.0.0/24 is in IPv4 link-local (169.254.0.0/16), where the host's own link-local traffic and cloud metadata (169.254.169.254) live; allow it with --allow-link-local (CNI: "allowLinkLocal": true)"#, 7),
        (cni(&[], named("mc", json!([[{"subnet": "ff05::/64"}]]), None)), "network mc: subnet ff05::/64 is in IPv6 multicast (ff00::/8): a multicast address cannot be an interface's own", 7),
        (cni(&[], named("v6", json!([[{"subnet": "fd00:71::/64"}]]), Some(1000))), "network v6: MTU 1000 is below 1280, the least IPv6 works with: subnet fd00:71::/64 cannot be used on it", 7),
        (cni(&[], ranges(json!({"subnet": "10.70.0.0/24", "gateway": "10.72.0.1"}))), "ipam.ranges[0]: gateway 10.72.0.1 is outside subnet 10.70.0.0/24", 7),
        (cni(&[], ranges(json!({"subnet": "10.70.0.0/33"}))), r#"ipam.ranges[0]: subnet "10.70.0.0/33" is not a CIDR"#, 7),
        (cni(&[], mapping(json!({"hostPort": 1, "containerPort": 1, "hostIP": "::1"}))), r#"runtimeConfig.portMappings[0]: port spec "[::1]:1:1/tcp": the kernel cannot forward traffic sent to ::1 to another namespace (it never routes IPv6 loopback); publish on 127.0.0.1 or another address"#, 7),
        (cni(&[], mapping(json!({"hostPort": 70000, "containerPort": 80}))), "runtimeConfig.portMappings[0]: hostPort 70000 is out of range (1-65535)", 7),
        (cni(&[], mapping(json!({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}))), r#"runtimeConfig.portMappings[0]: port spec "80:80/icmp": unknown protocol "icmp" (tcp, udp or sctp)"#, 7),
        (cni(&[("CNI_IFNAME", Some("eth0/1"))], g.clone()), r#"CNI_IFNAME: interface name "eth0/1" contains '/', which is not allowed"#, 4),
        (cni(&[("CNI_IFNAME", Some("a-very-long-ifname"))], g.clone()), r#"CNI_IFNAME: interface name "a-very-long-ifname" is too long (18 bytes, at most 15)"#, 4),
        (cni(&[("CNI_CONTAINERID", Some("-x"))], g.clone()), r#"CNI_CONTAINERID "-x" has invalid characters (letters, digits, _ . - and a letter or digit first)"#, 4),
        (cni(&[("CNI_NETNS", None)], g.clone()), r#"required environment variables ["CNI_NETNS"] missing"#, 4),
        (cni(&[("CNI_CONTAINERID", None)], g.clone()), r#"required environment variables ["CNI_CONTAINERID"] missing"#, 4),
        (cni(&[("CNI_COMMAND", Some("PUT"))], g.clone()), r#"unknown CNI_COMMAND "PUT" (ADD, DEL, CHECK, VERSION, STATUS or GC)"#, 4),
        (cni(&[("CNI_NETNS", Some("/run/netns/nope"))], g.clone()), "namespace /run/netns/nope does not exist", 3),
        (cni(&[("CNI_NETNS", Some("/run/not-a-netns"))], g.clone()), "/run/not-a-netns is not a network namespace", 4),
        (cni(&[("CNI_CONTAINERID", Some("c1")), ("CNI_NETNS", Some("/run/netns/c1"))], g.clone()), "container c1/eth0 is already attached to network cnet", 102),
        (cni(&[("CNI_COMMAND", Some("CHECK")), ("CNI_CONTAINERID", Some("c1"))], g.clone()), "CHECK needs prevResult (the result of the ADD)", 7),
        (cni(&[("CNI_ARGS", Some("IP=10.70.0.300"))], g.clone()), r#"ips: "10.70.0.300" is not an IP address"#, 7),
        (cni(&[("CNI_ARGS", Some("IP=10.99.0.5"))], g.clone()), "ips: 10.99.0.5 is outside the range 10.70.0.0/24", 7),
    ];
    assert!(cases.len() >= 40);
    let mut wrong = Vec::new();
    for (input, expected, code) in &cases {
        let (what, got, got_code) = match input {
            Input::Cli(args) => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = sb.nsnet(&args);
                assert!(!out.status.success(), "{args:?} succeeded");
                let err = String::from_utf8_lossy(&out.stderr).into_owned();
                assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
                (format!("{args:?}"), err.trim_end().to_owned(), 0)
            }
            Input::Cni(env, stdin) => {
                let out = sb.cni(&env_of(env), stdin);
                assert!(!out.status.success(), "{env:?} {stdin} succeeded");
                let err = stdout_json(&out);
                assert!(err["cniVersion"].is_string(), "{err}");
                let msg = err["msg"].as_str().unwrap_or_default().to_owned();
                (
                    format!("{env:?} {stdin}"),
                    msg,
                    err["code"].as_u64().unwrap_or(0),
                )
            }
        };
        if got != *expected || got_code != *code {
            wrong.push(format!(
                "{what}\n   got  {got_code} {got:?}\n   want {code} {expected:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert_same(&before, &state_snapshot(&sb));
}

/// Asserts two snapshots are equal, showing the lines that differ.
fn assert_same(before: &str, after: &str) {
    if before == after {
        return;
    }
    let (b, a): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
    let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
    panic!("the state changed:\n gone: {gone:#?}\n new: {new:#?}");
}

/// The host's state that is not nsnet's: interfaces, addresses, routes and
/// rules, every nftables table but nsnet's own `inet nsnet` and `bridge
/// nsnet` (iptables-nft's included),
/// the iptables view of them, and every `net.*` sysctl.
fn host_state(sb: &Sandbox) -> String {
    let mut out = sb.sh_ok(
        "ip -d -j link; ip -j addr; ip -j route show table all; ip -6 -j route show table all; \
         ip -j rule; ip -6 -j rule; iptables -S; iptables -t nat -S; iptables -t mangle -S; \
         ip6tables -S; ip6tables -t nat -S",
    );
    for table in sb.sh_ok("nft list tables").lines() {
        if table != "table inet nsnet" && table != "table bridge nsnet" {
            out += &sb.sh_ok(&format!("nft -s list {table}"));
        }
    }
    out + &sb.sh_ok("sysctl -a --pattern '^net\\.' 2>/dev/null | grep -v nf_conntrack_count")
}

#[test]
fn rules_routes_and_sysctls_not_nsnets_are_byte_identical_after_every_command() {
    let sb = Sandbox::new();
    // What the host had before nsnet: an uplink with routes and a policy
    // rule, iptables-nft rules in the filter and nat tables, a plain nft
    // table, and sysctls of its own (forwarding on, which nsnet would set; so
    // nsnet leaves accept_ra alone too: tests/routing.rs has the host with
    // forwarding off).
    sb.sh_ok(
        "ip link add uplink type veth peer name uplink-peer && ip link set uplink up && ip link set uplink-peer up && \
         ip addr add 192.0.2.1/24 dev uplink && ip addr add 2001:db8:9::1/64 dev uplink nodad && \
         ip route add 198.51.100.0/24 via 192.0.2.254 && ip route add 2001:db8:99::/48 via 2001:db8:9::ff && \
         ip rule add from 192.0.2.0/24 table 100 prio 1000 && ip route add default via 192.0.2.254 table 100 && \
         iptables -A INPUT -p tcp --dport 22 -j ACCEPT && iptables -A FORWARD -i uplink -o uplink -j DROP && \
         iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -o uplink -j MASQUERADE && \
         ip6tables -A INPUT -p tcp --dport 22 -j ACCEPT && \
         nft add table inet mine && nft add set inet mine blocked '{ type ipv4_addr; }' && \
         nft add element inet mine blocked '{ 192.0.2.77 }' && \
         nft add chain inet mine in '{ type filter hook input priority 10; policy accept; }' && \
         nft add rule inet mine in ip saddr @blocked counter drop && \
         nft add table ip6 other && nft add chain ip6 other post '{ type nat hook postrouting priority 100; }' && \
         sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
           net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.uplink.route_localnet=0 \
           net.ipv4.ip_local_port_range='20000 40000'",
    );
    // The kernel adds link-local routes when DAD ends, on its own time.
    sb.wait_for("DAD on the uplink", || {
        sb.sh_ok("ip -6 addr show tentative").is_empty()
    });
    let before = host_state(&sb);
    let tables_before = sb.sh_ok("nft list tables");
    let n = common::NSNET;
    let conf = json!({"cniVersion": "1.0.0", "name": "cninet", "type": "nsnet",
        "ipam": {"ranges": [[{"subnet": "10.60.0.0/24"}]]},
        "runtimeConfig": {"portMappings": [{"hostPort": 8090, "containerPort": 80}]}});
    sb.sh_ok(&format!("cat > /run/cni.json <<'EOF'\n{conf}\nEOF"));
    let cni = |cmd: &str| {
        format!(
            "CNI_COMMAND={cmd} CNI_CONTAINERID=c1 CNI_NETNS=/run/netns/c CNI_IFNAME=eth0 \
             CNI_PATH=/run/cni-bin {n} </run/cni.json >/dev/null"
        )
    };
    let steps = [
        format!("{n} netns add a && {n} netns add b && {n} netns add c && {n} netns ls >/dev/null"),
        format!("{n} netns exec a -- true"),
        format!("unshare --net sleep 60 & s=$!; sleep 0.2; {n} netns pin $s pinned && kill $s && {n} netns del pinned"),
        format!("{n} link add a b --addr 10.0.0.1/24 --peer-addr 10.0.0.2/24 && {n} link del a veth-b"),
        format!("{n} link add host a --addr 10.0.1.1/24 --peer-addr 10.0.1.2/24 && {n} link del host veth-a"),
        format!("{n} network create web --subnet 10.10.0.0/24 --subnet fd00:10::/64"),
        format!("{n} network create in --subnet 10.11.0.0/24 --internal"),
        format!("{n} network create iso --subnet 10.12.0.0/24 --isolate --no-masquerade --mtu 1400"),
        format!("{n} network connect web a -p 8080:80 -p 127.0.0.1:5353:53/udp -p '[2001:db8:9::1]:8443:443' >/dev/null"),
        format!("{n} network connect in b >/dev/null && {n} network connect iso a >/dev/null && {n} network connect iso b >/dev/null"),
        format!("{n} network ls >/dev/null && {n} network inspect web >/dev/null && {n} port ls >/dev/null"),
        cni("ADD"),
        format!("{n} pod create p1 --network web -p 9000:80 >/dev/null && {n} pod exec p1 -- true"),
        format!("{n} pod ls >/dev/null && {n} pod inspect p1 >/dev/null"),
        format!("{n} run --network web -p 8081:80 -- true && {n} run --network none -- true"),
        format!("{n} run --network host -- true && {n} run --network pod:p1 -- true"),
        format!("{n} run --name r1 --network web -- sleep 1 & r=$!; sleep 0.4; {n} run --network container:r1 -- true; wait $r"),
        format!("{n} gc >/dev/null && {n} check >/dev/null && {n} firewall reload >/dev/null"),
        format!("{n} graph --format json >/dev/null"),
        cni("DEL"),
        format!("{n} pod rm p1 && {n} network disconnect web a && {n} network disconnect in b"),
        format!("{n} network rm --force iso && {n} network rm web && {n} network rm in && {n} network rm cninet"),
        format!("{n} netns del a && {n} netns del b && {n} netns del c"),
        format!("{n} gc >/dev/null && {n} check"),
    ];
    let start = Instant::now();
    for step in &steps {
        sb.sh_ok(step);
    }
    println!(
        "{} steps in {:.1} s",
        steps.len(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(sb.ok(&["network", "ls", "--json"]).trim(), "[]");
    assert_same(&before, &host_state(&sb));
    assert_eq!(
        sb.sh_ok("nft list tables"),
        format!("{tables_before}table inet nsnet\ntable bridge nsnet\n")
    );
}
