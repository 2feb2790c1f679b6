//! `nsnet network`: bridge networks, IPAM, gateway, masquerade, isolation, and
//! attaching namespaces and running processes.

mod common;
use common::Sandbox;
use serde_json::Value;

fn inspect(sb: &Sandbox, net: &str) -> Value {
    serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON")
}

/// The IPv4 (or IPv6 with `v6`) address of `ns`'s endpoint on `net`.
fn endpoint_addr(sb: &Sandbox, net: &str, ns: &str, v6: bool) -> String {
    let v = inspect(sb, net);
    let ep = v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["namespace"] == ns)
        .unwrap_or_else(|| panic!("no endpoint for {ns} in {v}"));
    ep["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .find(|a| a.contains(':') == v6)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no address in {ep}"))
        .to_owned()
}

#[test]
fn three_namespaces_on_one_network_reach_each_other_the_host_and_the_outside() {
    let sb = Sandbox::with_outside();
    let _server = sb.tcp_echo_peer("outside", "203.0.113.2", 8080);
    sb.netns(&["a", "b", "c"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    for ns in ["a", "b", "c"] {
        sb.ok(&["network", "connect", "web", ns]);
    }
    let addrs: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| endpoint_addr(&sb, "web", n, false))
        .collect();
    assert_eq!(addrs, ["10.10.0.2", "10.10.0.3", "10.10.0.4"]);
    // The bridge holds the gateway and is up; each endpoint's eth0 is up with its address.
    let br = sb.json("ip -j addr show dev nsbr-web");
    assert!(br[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"] == "10.10.0.1"));
    let eth0 = sb.json("ip -n a -j addr show dev eth0");
    assert!(eth0[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "UP"));
    let routes = sb.json("ip -n a -j route show default");
    assert_eq!(routes[0]["gateway"], "10.10.0.1", "{routes}");

    for (i, ns) in ["a", "b", "c"].iter().enumerate() {
        for (j, addr) in addrs.iter().enumerate() {
            if i != j {
                assert!(sb.pings(ns, addr), "{ns} cannot ping {addr}");
            }
        }
        assert!(sb.pings(ns, "10.10.0.1"), "{ns} cannot ping the gateway");
        assert!(sb.pings("host", &addrs[i]), "the host cannot ping {ns}");
        // The outside server sees the host's outward address: masquerade.
        assert_eq!(
            sb.tcp_ask(ns, "203.0.113.2", 8080).as_deref(),
            Some("203.0.113.1"),
            "{ns}"
        );
    }
    assert_eq!(sb.sh_ok("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
}

#[test]
fn bridged_traffic_passes_with_br_netfilter_calling_iptables() {
    let sb = Sandbox::new();
    // This kernel's default, set explicitly so the test cannot pass without it.
    sb.sh_ok("sysctl -qw net.bridge.bridge-nf-call-iptables=1");
    sb.netns(&["a", "b"]);
    sb.ok(&["network", "create", "n1", "--subnet", "10.11.0.0/24"]);
    sb.ok(&["network", "connect", "n1", "a"]);
    sb.ok(&["network", "connect", "n1", "b"]);
    let b = endpoint_addr(&sb, "n1", "b", false);
    assert!(sb.pings("a", &b));
    // The bridged frames went through netfilter's forward hook and nsnet's own
    // rule for traffic within one network accepted them.
    let chain = sb.json("nft -j list chain inet nsnet within_bridge");
    let counted = chain["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .flat_map(|r| r["expr"].as_array().unwrap().iter())
        .filter_map(|e| e.get("counter"))
        .map(|c| c["packets"].as_u64().unwrap())
        .sum::<u64>();
    assert!(
        counted > 0,
        "no packet crossed nsnet's forward chain: {chain}"
    );
}

#[test]
fn a_running_process_is_connected_by_pid_with_a_second_interface() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "front", "--subnet", "10.20.0.0/24"]);
    sb.ok(&["network", "create", "back", "--subnet", "10.21.0.0/24"]);
    sb.ok(&["network", "connect", "front", "a"]);
    let _proc = sb.spawn("exec unshare -n sleep 600");
    let mut pid = String::new();
    sb.wait_for("the unshared process", || {
        pid = sb.sh_ok("pgrep -n -x sleep || true").trim().to_owned();
        !pid.is_empty()
            && sb
                .sh(&format!("[ \"$(stat -L -c %i /proc/{pid}/ns/net)\" != \"$(stat -L -c %i /proc/self/ns/net)\" ]"))
                .status
                .success()
    });
    sb.ok(&["network", "connect", "front", &format!("pid:{pid}")]);
    sb.ok(&[
        "network",
        "connect",
        "back",
        &format!("pid:{pid}"),
        "--ifname",
        "eth1",
    ]);
    let links = sb.json(&format!("nsenter -t {pid} -n ip -j link"));
    let names: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo", "eth0", "eth1"]);
    let addr = endpoint_addr(&sb, "back", &format!("pid:{pid}"), false);
    assert_eq!(addr, "10.21.0.2");
    assert!(sb.pings("host", &addr));
    // Its default route stays on the first network; the second brings only its subnet.
    let routes = sb.json(&format!("nsenter -t {pid} -n ip -j route show default"));
    assert_eq!(routes.as_array().unwrap().len(), 1, "{routes}");
    assert_eq!(routes[0]["dev"], "eth0");
    // A path target works too.
    sb.netns(&["p"]);
    sb.ok(&["network", "connect", "back", "/run/netns/p"]);
    assert!(sb.pings("p", "10.21.0.1"));
}

#[test]
fn networks_are_isolated_from_each_other_but_both_reach_the_outside() {
    let sb = Sandbox::with_outside();
    let _server = sb.tcp_echo_peer("outside", "203.0.113.2", 8080);
    sb.netns(&["a", "b"]);
    sb.ok(&["network", "create", "n1", "--subnet", "10.30.0.0/24"]);
    sb.ok(&["network", "create", "n2", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "n1", "a"]);
    sb.ok(&["network", "connect", "n2", "b"]);
    let a = endpoint_addr(&sb, "n1", "a", false);
    let b = endpoint_addr(&sb, "n2", "b", false);
    assert!(sb.ping_fails("a", &b), "n1 reached n2");
    assert!(sb.ping_fails("b", &a), "n2 reached n1");
    assert_eq!(
        sb.tcp_ask("a", "203.0.113.2", 8080).as_deref(),
        Some("203.0.113.1")
    );
    assert_eq!(
        sb.tcp_ask("b", "203.0.113.2", 8080).as_deref(),
        Some("203.0.113.1")
    );
}

#[test]
fn an_internal_network_reaches_nothing_beyond_its_bridge() {
    let sb = Sandbox::with_outside();
    let _server = sb.tcp_echo_peer("outside", "203.0.113.2", 8080);
    sb.netns(&["a", "b"]);
    sb.ok(&[
        "network",
        "create",
        "priv",
        "--subnet",
        "10.40.0.0/24",
        "--internal",
    ]);
    sb.ok(&["network", "connect", "priv", "a"]);
    sb.ok(&["network", "connect", "priv", "b"]);
    let b = endpoint_addr(&sb, "priv", "b", false);
    assert!(sb.pings("a", &b));
    assert!(sb.pings("a", "10.40.0.1"));
    assert_eq!(
        sb.json("ip -n a -j route show default"),
        serde_json::json!([])
    );
    // Even with a route out, nothing passes: not the outside, not the host's other address.
    sb.sh_ok("ip -n a route add default via 10.40.0.1");
    assert_eq!(sb.tcp_ask("a", "203.0.113.2", 8080), None);
    assert!(sb.ping_fails("a", "203.0.113.1"));
}

#[test]
fn an_isolated_network_keeps_endpoints_apart_but_lets_them_reach_the_gateway() {
    let sb = Sandbox::with_outside();
    let _server = sb.tcp_echo_peer("outside", "203.0.113.2", 8080);
    sb.netns(&["a", "b"]);
    sb.ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.50.0.0/24",
        "--isolate",
    ]);
    sb.ok(&["network", "connect", "iso", "a"]);
    sb.ok(&["network", "connect", "iso", "b"]);
    let b = endpoint_addr(&sb, "iso", "b", false);
    assert!(
        sb.ping_fails("a", &b),
        "isolated endpoints reached each other"
    );
    assert!(sb.pings("a", "10.50.0.1"));
    assert_eq!(
        sb.tcp_ask("a", "203.0.113.2", 8080).as_deref(),
        Some("203.0.113.1")
    );
    // Isolation is `bridge nsnet`'s (it lets published ports through, see
    // tests/attacks.rs): each port is an element of `l2_isolated`.
    let ports = sb.json("ip -j link show master nsbr-iso");
    let isolated = sb.sh_ok("nft list set bridge nsnet l2_isolated");
    for p in ports.as_array().unwrap() {
        let name = p["ifname"].as_str().unwrap();
        assert!(
            isolated.contains(&format!("\"{name}\"")),
            "{name}: {isolated}"
        );
    }
}

#[test]
fn a_dual_stack_network_works_in_both_families() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b"]);
    sb.ok(&[
        "network",
        "create",
        "ds",
        "--subnet",
        "10.60.0.0/24",
        "--subnet",
        "fd00:60::/64",
    ]);
    sb.ok(&["network", "connect", "ds", "a"]);
    sb.ok(&["network", "connect", "ds", "b"]);
    let b4 = endpoint_addr(&sb, "ds", "b", false);
    let b6 = endpoint_addr(&sb, "ds", "b", true);
    assert_eq!((b4.as_str(), b6.as_str()), ("10.60.0.3", "fd00:60::3"));
    assert!(sb.pings("a", &b4));
    assert!(sb.pings("a", &b6));
    assert!(sb.pings("a", "10.60.0.1"));
    assert!(sb.pings("a", "fd00:60::1"));
    let r6 = sb.json("ip -n a -6 -j route show default");
    assert_eq!(r6[0]["gateway"], "fd00:60::1", "{r6}");
}

/// IPv6 sysctl `key` of interface `dev` in namespace `ns` (None: the host).
fn ipv6_conf(sb: &Sandbox, ns: Option<&str>, dev: &str, key: &str) -> String {
    let exec = ns.map_or(String::new(), |n| format!("ip netns exec {n} "));
    sb.sh_ok(&format!("{exec}cat /proc/sys/net/ipv6/conf/{dev}/{key}"))
        .trim()
        .to_string()
}

/// Whether `ip -j addr show dev X` lists no address (it prints `[{}]` then).
fn no_addresses(v: &Value) -> bool {
    v.as_array()
        .unwrap()
        .iter()
        .all(|l| l["addr_info"].as_array().is_none_or(|a| a.is_empty()))
}

#[test]
fn no_ipv6_chatter_floods_the_bridge() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b", "c"]);
    sb.ok(&["network", "create", "v4", "--subnet", "10.61.0.0/24"]);
    sb.ok(&[
        "network",
        "create",
        "ds",
        "--subnet",
        "10.62.0.0/24",
        "--subnet",
        "fd00:62::/64",
    ]);
    sb.ok(&["network", "connect", "v4", "a"]);
    sb.ok(&["network", "connect", "v4", "b"]);
    sb.ok(&["network", "connect", "ds", "c"]);
    // Bridge ports (the host ends) have no IPv6 of their own.
    let ports = sb.json("ip -j link show type veth");
    let ports: Vec<&str> = ports
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(ports.len(), 3, "{ports:?}");
    for p in &ports {
        assert_eq!(ipv6_conf(&sb, None, p, "disable_ipv6"), "1", "{p}");
        let v6 = sb.json(&format!("ip -j -6 addr show dev {p}"));
        assert!(no_addresses(&v6), "{p}: {v6}");
    }
    // An IPv4-only network's endpoint: no IPv6 address on its interface either
    // (address generation mode none), and IPv4 works.
    assert_eq!(ipv6_conf(&sb, Some("a"), "eth0", "addr_gen_mode"), "1");
    let v6 = sb.json("ip -n a -j -6 addr show dev eth0");
    assert!(no_addresses(&v6), "{v6}");
    assert!(sb.pings("a", &endpoint_addr(&sb, "v4", "b", false)));
    // A dual-stack endpoint keeps IPv6 but sends no DAD probes or router
    // solicitations (nothing on the bridge answers them), and IPv6 works.
    assert_eq!(ipv6_conf(&sb, Some("c"), "eth0", "disable_ipv6"), "0");
    assert_eq!(ipv6_conf(&sb, Some("c"), "eth0", "accept_dad"), "0");
    assert_eq!(
        ipv6_conf(&sb, Some("c"), "eth0", "router_solicitations"),
        "0"
    );
    assert!(sb.pings("c", "fd00:62::1"));
    // The namespaces' other settings are theirs: lo keeps IPv6.
    assert_eq!(ipv6_conf(&sb, Some("a"), "lo", "disable_ipv6"), "0");
}

#[test]
fn disconnect_and_rm_leave_nothing_behind() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b"]);
    sb.ok(&[
        "network",
        "create",
        "tmp",
        "--subnet",
        "10.70.0.0/24",
        "--subnet",
        "fd00:70::/64",
    ]);
    sb.ok(&["network", "connect", "tmp", "a"]);
    sb.ok(&["network", "connect", "tmp", "b"]);
    assert!(!sb.nft_elements().is_empty());
    sb.ok(&["network", "disconnect", "tmp", "a"]);
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.sh_ok("ip -n a addr show scope global"), "");
    assert_eq!(
        sb.sh_ok("ip -n a route; ip -n a -6 route | grep -v '^fe80' || true"),
        ""
    );
    let v = inspect(&sb, "tmp");
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(v["leases"].as_array().unwrap().len(), 2, "{v}");
    sb.fails(
        &["network", "disconnect", "tmp", "a"],
        "a is not connected to network tmp",
    );

    sb.fails(&["network", "rm", "tmp"], "has 1 endpoint(s) attached");
    sb.ok(&["network", "rm", "tmp", "--force"]);
    assert_eq!(sb.links("b"), ["lo"]);
    assert_eq!(sb.links("host"), ["lo"]);
    assert_eq!(sb.nft_elements(), Vec::<(String, String)>::new());
    sb.fails(&["network", "inspect", "tmp"], "network tmp does not exist");
    // The addresses are free again: a new network on the same subnet hands out .2 first.
    sb.ok(&["network", "create", "tmp2", "--subnet", "10.70.0.0/24"]);
    sb.ok(&["network", "connect", "tmp2", "a"]);
    assert_eq!(endpoint_addr(&sb, "tmp2", "a", false), "10.70.0.2");
}

#[test]
fn sixteen_concurrent_connects_get_sixteen_distinct_reachable_addresses() {
    let sb = Sandbox::new();
    let names: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    for n in &names {
        sb.ok(&["netns", "add", n]);
    }
    sb.ok(&["network", "create", "busy", "--subnet", "10.80.0.0/24"]);
    let script: String = names
        .iter()
        .map(|n| {
            format!(
                "{} network connect busy {n} >/dev/null & pids=\"$pids $!\"; ",
                common::NSNET
            )
        })
        .collect::<String>()
        + "fail=0; for p in $pids; do wait $p || fail=1; done; exit $fail";
    sb.sh_ok(&script);
    let mut addrs: Vec<String> = names
        .iter()
        .map(|n| endpoint_addr(&sb, "busy", n, false))
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 16);
    for a in &addrs {
        assert!(sb.pings("host", a), "{a} unreachable");
    }
    assert_eq!(inspect(&sb, "busy")["leases"].as_array().unwrap().len(), 16);
}

#[test]
fn default_subnet_and_bridge_names() {
    let sb = Sandbox::new();
    assert_eq!(sb.ok(&["network", "create", "one"]), "10.201.0.0/24\n");
    assert_eq!(sb.ok(&["network", "create", "two"]), "10.201.1.0/24\n");
    sb.ok(&["network", "create", "a-network-with-a-long-name"]);
    let v = inspect(&sb, "a-network-with-a-long-name");
    let bridge = v["bridge"].as_str().unwrap();
    assert!(
        bridge.len() <= 15 && bridge.starts_with("nsbr-a-net"),
        "{bridge}"
    );
    assert_eq!(inspect(&sb, "one")["bridge"], "nsbr-one");
    assert_eq!(inspect(&sb, "one")["gateways"][0], "10.201.0.1");
    let ls: Value = serde_json::from_str(&sb.ok(&["network", "ls", "--json"])).unwrap();
    assert_eq!(ls.as_array().unwrap().len(), 3);
}

/// Kernel and store state that a failed command must leave as it was: links,
/// global addresses and routes of every namespace, the ruleset without its
/// counters, and nsnet's records. Fields the kernel updates by itself (operstate,
/// DAD) are left out.
fn snapshot(sb: &Sandbox) -> String {
    let mut out = String::new();
    let mut spaces = vec![String::new()];
    for ns in sb.sh_ok("ip netns ls").lines() {
        if let Some(name) = ns.split_whitespace().next() {
            spaces.push(format!("-n {name} "));
        }
    }
    for ns in &spaces {
        for l in sb.json(&format!("ip {ns}-j link")).as_array().unwrap() {
            out += &format!(
                "{ns}link {} {} {} {} {}\n",
                l["ifname"],
                l["master"],
                l["mtu"],
                l["address"],
                l["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| *f != "LOWER_UP" && *f != "NO-CARRIER")
                    .count()
            );
        }
        for l in sb
            .json(&format!("ip {ns}-j addr show scope global"))
            .as_array()
            .unwrap()
        {
            for a in l["addr_info"].as_array().unwrap() {
                out += &format!(
                    "{ns}addr {} {}/{}\n",
                    l["ifname"], a["local"], a["prefixlen"]
                );
            }
        }
        out += &sb.sh_ok(&format!(
            "ip {ns}route; ip {ns}-6 route show | grep -v fe80 || true"
        ));
    }
    out + &sb.sh_ok("nft -s list ruleset") + &sb.ok(&["network", "ls", "--json"])
}

#[test]
fn bad_requests_fail_clearly_and_change_nothing() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b"]);
    sb.ok(&["network", "create", "base", "--subnet", "10.90.0.0/24"]);
    sb.ok(&["network", "create", "tiny", "--subnet", "10.91.0.0/30"]);
    sb.ok(&["network", "connect", "tiny", "a"]);
    sb.ok(&["network", "connect", "base", "a", "--ip", "10.90.0.50"]);
    let before = snapshot(&sb);
    let inspect_before = (inspect(&sb, "base"), inspect(&sb, "tiny"));
    let long = "n".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["network", "create", "x", "--subnet", "10.90.0.128/25"],
            "subnet 10.90.0.128/25 overlaps network base (10.90.0.0/24)",
        ),
        (
            vec!["network", "create", "x", "--subnet", "10.1.2.0/33"],
            "invalid value '10.1.2.0/33'",
        ),
        (
            vec!["network", "create", "x", "--subnet", "10.92.0.5/24"],
            "is not a network address",
        ),
        (
            vec![
                "network",
                "create",
                "x",
                "--subnet",
                "10.92.0.0/24",
                "--gateway",
                "10.93.0.1",
            ],
            "gateway 10.93.0.1 is outside subnet 10.92.0.0/24",
        ),
        (
            vec!["network", "create", "base"],
            "network base already exists",
        ),
        (vec!["network", "create", &long], "too long"),
        (
            vec!["network", "connect", "nope", "a"],
            "network nope does not exist",
        ),
        (
            vec!["network", "connect", "base", "zz"],
            "namespace zz does not exist",
        ),
        (
            vec!["network", "connect", "base", "pid:4000000"],
            "process 4000000 does not exist",
        ),
        (
            vec!["network", "connect", "tiny", "b"],
            "no free address left in 10.91.0.0/30",
        ),
        (
            vec!["network", "connect", "base", "b", "--ip", "10.90.0.50"],
            "address 10.90.0.50 is already in use",
        ),
        (
            vec!["network", "connect", "base", "b", "--ip", "10.99.0.5"],
            "address 10.99.0.5 is not in subnet 10.90.0.0/24",
        ),
        (
            vec!["network", "connect", "base", "b", "--ip", "10.90.0.1"],
            "reserved",
        ),
        (
            vec!["network", "connect", "base", "a"],
            "a is already connected to network base",
        ),
        (
            vec!["network", "connect", "base", "b", "--ifname", "lo"],
            "interface lo already exists",
        ),
        (
            vec![
                "network",
                "connect",
                "base",
                "b",
                "--mac",
                "01:00:00:00:00:01",
            ],
            "multicast",
        ),
        (vec!["network", "rm", "nope"], "network nope does not exist"),
    ];
    for (args, msg) in &cases {
        sb.fails(args, msg);
    }
    assert_eq!(snapshot(&sb), before);
    assert_eq!((inspect(&sb, "base"), inspect(&sb, "tiny")), inspect_before);
}

#[test]
fn rules_in_other_tables_are_left_byte_identical() {
    let sb = Sandbox::new();
    sb.sh_ok(
        "nft add table ip other && nft add chain ip other c '{ type filter hook input priority 0; }' \
         && nft add rule ip other c tcp dport 9 counter accept",
    );
    let before = sb.sh_ok("nft list table ip other");
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "n", "--subnet", "10.95.0.0/24"]);
    sb.ok(&["network", "connect", "n", "a"]);
    sb.ok(&["network", "disconnect", "n", "a"]);
    sb.ok(&["network", "rm", "n"]);
    assert_eq!(sb.sh_ok("nft list table ip other"), before);
    let tables = sb.sh_ok("nft list tables");
    assert_eq!(
        tables,
        "table ip other\ntable inet nsnet\ntable bridge nsnet\n"
    );
}

#[test]
fn a_network_survives_a_reboot_and_its_bridge_is_made_again_on_demand() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "keep", "--subnet", "10.96.0.0/24"]);
    sb.ok(&["network", "connect", "keep", "a", "-p", "8080:80"]);
    // A reboot: the kernel objects and the runtime state (on /run) are gone;
    // the definitions (config dir) stay.
    sb.sh_ok(
        "ip netns del a; ip link del nsbr-keep; nft delete table inet nsnet; rm -rf /run/nsnet",
    );
    sb.netns(&["a"]);
    let v = inspect(&sb, "keep");
    assert_eq!(v["endpoints"], serde_json::json!([]));
    assert_eq!(v["leases"], serde_json::json!([]));
    sb.ok(&["network", "connect", "keep", "a", "-p", "8080:80"]);
    assert_eq!(endpoint_addr(&sb, "keep", "a", false), "10.96.0.2");
    assert!(sb.pings("a", "10.96.0.1"));
    assert!(sb.links("host").contains(&"nsbr-keep".to_owned()));
}

#[test]
fn a_first_connect_that_fails_half_way_leaves_no_bridge() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "n", "--subnet", "10.94.0.0/24"]);
    // Without the nft binary the firewall's base ruleset cannot be declared:
    // the bridge has been made by then and must go again.
    let out = sb.sh(&format!(
        "PATH=/nonexistent {} network connect n a",
        common::NSNET
    ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run nft"), "{stderr}");
    assert_eq!(sb.links("host"), ["lo"]);
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(inspect(&sb, "n")["leases"], serde_json::json!([]));
    // And the next connect works.
    sb.ok(&["network", "connect", "n", "a"]);
}

#[test]
fn a_link_local_ipv4_subnet_is_refused_unless_asked_for_and_then_works() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b"]);
    sb.fails(
        &["network", "create", "ll", "--subnet", "169.254.20.0/24"],
        "is in IPv4 link-local (169.254.0.0/16)",
    );
    assert_eq!(sb.ok(&["network", "ls", "--json"]).trim(), "[]");
    // Asked for, from the CLI and from a CNI config: endpoints get addresses
    // there and reach their gateway and each other.
    sb.ok(&[
        "network",
        "create",
        "ll",
        "--subnet",
        "169.254.20.0/24",
        "--allow-link-local",
    ]);
    sb.ok(&["network", "connect", "ll", "a"]);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "llcni", "type": "nsnet", "allowLinkLocal": true,
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "169.254.30.0/24"}]]},
    });
    let out = sb.cni(
        &[
            ("CNI_COMMAND", Some("ADD")),
            ("CNI_CONTAINERID", Some("c1")),
            ("CNI_NETNS", Some("/run/netns/b")),
            ("CNI_IFNAME", Some("eth0")),
        ],
        &conf.to_string(),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sb.global_addresses("a"), ["169.254.20.2/24"]);
    assert_eq!(sb.global_addresses("b"), ["169.254.30.2/24"]);
    assert!(sb.pings("a", "169.254.20.1"));
    assert!(sb.pings("b", "169.254.30.1"));
}

/// Issue 19.4: `network connect br0 pid:$$` from a host shell gave the host an
/// eth1 in its own bridge's subnet and a default route into that bridge. Every
/// way of naming the namespace the bridge lives in is refused, with the reason,
/// before anything is touched (no interface, address, route, element, lease or
/// network made).
#[test]
fn connecting_the_namespace_a_bridge_lives_in_is_refused_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.93.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    // A name for the sandbox's own namespace, as `ip netns attach me 1` makes one.
    sb.sh_ok("touch /run/netns/me && mount --bind /proc/1/ns/net /run/netns/me");
    let before = snapshot(&sb);
    let why = "is the namespace network web's bridge lives in";
    for target in ["pid:1", "/proc/1/ns/net", "/proc/self/ns/net", "me"] {
        sb.fails(&["network", "connect", "web", target], why);
        sb.fails(&["network", "connect", "web", target, "-p", "9090:90"], why);
    }
    // From a shell, as the issue did it: the shell's own PID.
    let out = sb.sh(&format!(
        "exec {} network connect web pid:$$ --ifname eth9",
        common::NSNET
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(why));
    assert_eq!(snapshot(&sb), before);
    assert_eq!(
        sb.links("host")
            .iter()
            .filter(|l| l.starts_with("eth"))
            .count(),
        0
    );
    let leases = inspect(&sb, "web")["leases"].as_array().unwrap().len();
    assert_eq!(leases, 1, "only a's lease");

    // The CNI face: CNI_NETNS naming the host's namespace is an invalid
    // environment (code 4), and the config's network is not created either.
    let conf = r#"{"cniVersion":"1.0.0","name":"cninet","type":"nsnet",
        "ipam":{"type":"host-local","ranges":[[{"subnet":"10.91.0.0/24"}]]}}"#;
    for netns in ["/proc/1/ns/net", "/run/netns/me"] {
        let out = sb.cni(
            &[
                ("CNI_COMMAND", Some("ADD")),
                ("CNI_CONTAINERID", Some("c1")),
                ("CNI_NETNS", Some(netns)),
                ("CNI_IFNAME", Some("eth0")),
            ],
            conf,
        );
        assert!(!out.status.success());
        let err: Value = serde_json::from_slice(&out.stdout).expect("a CNI error object");
        assert_eq!(err["code"], 4, "{err}");
        assert!(
            err["msg"]
                .as_str()
                .unwrap_or_default()
                .contains("cninet's bridge lives in"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&sb), before);
}
