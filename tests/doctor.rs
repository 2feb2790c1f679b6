//! `nsnet doctor`: one test per known breakage. Each breaks the path for real,
//! proves the traffic fails, checks that doctor blames the right place with a
//! fix, applies that fix exactly as printed, and proves the traffic and doctor
//! are both fine again.

mod common;
use common::{Sandbox, NSNET};
use serde_json::Value;

/// `outside` (203.0.113.2) behind the sandbox host, network web (10.88.0.0/24)
/// with namespaces a (10.88.0.2) and b (10.88.0.3).
fn web() -> Sandbox {
    let sb = Sandbox::with_outside();
    sb.netns(&["a", "b"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.88.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a"]);
    sb.ok(&["network", "connect", "web", "b"]);
    sb
}

/// Runs doctor with --json: (exit code, report).
fn doctor(sb: &Sandbox, from: &str, to: &str) -> (i32, Value) {
    let out = sb.nsnet(&["doctor", from, to, "--json"]);
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor {from} {to}: bad JSON {stdout:?} ({e}); stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

/// Asserts the path is clear: exit 0 and every hop ✓.
fn clear(sb: &Sandbox, from: &str, to: &str) {
    let (code, r) = doctor(sb, from, to);
    assert_eq!(code, 0, "doctor {from} {to}: {r:#}");
    assert_eq!(r["clear"], true, "{r:#}");
    for hop in r["hops"].as_array().unwrap() {
        assert_eq!(hop["status"], "ok", "doctor {from} {to}: {r:#}");
    }
}

/// Asserts the path is blocked (exit 1) in namespace `ns` with a message
/// holding `says`; returns the fix.
fn blocked(sb: &Sandbox, from: &str, to: &str, ns: &str, says: &str) -> String {
    let (code, r) = doctor(sb, from, to);
    assert_eq!(code, 1, "doctor {from} {to}: {r:#}");
    assert_eq!(r["clear"], false);
    let hops = r["hops"].as_array().unwrap();
    let fail: Vec<&Value> = hops.iter().filter(|h| h["status"] == "fail").collect();
    assert_eq!(fail.len(), 1, "one blocking point: {r:#}");
    assert_eq!(hops.last(), Some(fail[0]), "the walk stops at it: {r:#}");
    assert_eq!(fail[0]["namespace"], ns, "{r:#}");
    let msg = fail[0]["message"].as_str().unwrap();
    assert!(msg.contains(says), "{msg:?} lacks {says:?}");
    // The text form names the same blocking point.
    let text = sb.nsnet(&["doctor", from, to]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("✗") && text.contains(msg), "{text}");
    fail[0]["fix"]
        .as_str()
        .unwrap_or_else(|| panic!("no fix: {r:#}"))
        .to_owned()
}

/// Runs a fix exactly as doctor printed it (nsnet from the build under test).
fn apply(sb: &Sandbox, fix: &str) {
    let dir = std::path::Path::new(NSNET).parent().unwrap().display();
    sb.sh_ok(&format!("export PATH={dir}:$PATH; {fix}"));
}

#[test]
fn a_healthy_path_is_all_ok() {
    let sb = web();
    assert!(sb.pings("a", "10.88.0.3"));
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "b");
    clear(&sb, "a", "outside");
    clear(&sb, "host", "a");
    clear(&sb, "b", "host");
    clear(&sb, "10.88.0.2", "10.88.0.3");
    let (_, r) = doctor(&sb, "a", "b");
    assert_eq!(r["destination"], "10.88.0.3");
    assert_eq!(r["source"], "10.88.0.2");
    let text = sb.ok(&["doctor", "a", "outside"]);
    assert!(text.contains("✓") && !text.contains("✗"), "{text}");
    assert!(text.contains("masqueraded to 203.0.113.1"), "{text}");
    assert!(text.trim_end().ends_with("the path is clear"), "{text}");
}

#[test]
fn a_missing_default_route_is_found_and_fixed() {
    let sb = web();
    sb.sh_ok("ip -n a route del default");
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(&sb, "a", "outside", "a", "no route to 203.0.113.2");
    assert_eq!(fix, "ip -n a route replace default via 10.88.0.1");
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
}

#[test]
fn ip_forward_off_is_found_and_fixed() {
    let sb = web();
    sb.sh_ok("sysctl -qw net.ipv4.ip_forward=0");
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(&sb, "a", "outside", "host", "net.ipv4.ip_forward is off");
    assert_eq!(fix, "sysctl -w net.ipv4.ip_forward=1");
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
}

#[test]
fn a_foreign_iptables_forward_drop_is_found_and_fixed() {
    let sb = web();
    sb.sh_ok("iptables-nft -P FORWARD DROP");
    // Routed traffic (to the outside) passes the forward hook.
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(
        &sb,
        "a",
        "outside",
        "host",
        "table ip filter chain FORWARD (hook forward) drops it: policy drop",
    );
    assert!(fix.starts_with("iptables-nft -I FORWARD -i nsbr-web -o veth-outside -j ACCEPT"));
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
    // Bridged traffic passes it too when br_netfilter is loaded: the classic
    // silent breakage of traffic between two containers on one bridge.
    let nf = sb.sh("cat /proc/sys/net/bridge/bridge-nf-call-iptables");
    if String::from_utf8_lossy(&nf.stdout).trim() == "1" {
        assert!(sb.ping_fails("a", "10.88.0.3"));
        let fix = blocked(&sb, "a", "b", "host", "chain FORWARD");
        assert_eq!(
            fix,
            "iptables-nft -I FORWARD -i nsbr-web -o nsbr-web -j ACCEPT"
        );
        apply(&sb, &fix);
        assert!(sb.pings("a", "10.88.0.3"));
        clear(&sb, "a", "b");
    } else {
        // Without br_netfilter bridged frames never meet the IP hooks.
        assert!(sb.pings("a", "10.88.0.3"));
        clear(&sb, "a", "b");
    }
}

#[test]
fn a_foreign_nft_chain_with_policy_drop_is_found_and_fixed() {
    let sb = web();
    sb.sh_ok(
        "nft add table ip guard && \
         nft 'add chain ip guard gate { type filter hook forward priority 10; policy drop; }'",
    );
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(&sb, "a", "outside", "host", "table ip guard chain gate");
    assert_eq!(
        fix,
        "nft insert rule ip guard gate iifname \"nsbr-web\" oifname \"veth-outside\" accept && \
         nft insert rule ip guard gate iifname \"veth-outside\" oifname \"nsbr-web\" ct state established,related accept"
    );
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
}

#[test]
fn an_interface_down_is_found_and_fixed() {
    let sb = web();
    // The host end of b's veth: b's eth0 loses its carrier.
    let net: Value = serde_json::from_str(&sb.ok(&["network", "inspect", "web"])).unwrap();
    let host_if = net["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["namespace"] == "b")
        .unwrap()["host_interface"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.sh_ok(&format!("ip link set {host_if} down"));
    assert!(sb.ping_fails("a", "10.88.0.3"));
    let fix = blocked(
        &sb,
        "a",
        "b",
        "host",
        &format!("{host_if} (bridge nsbr-web"),
    );
    assert_eq!(fix, format!("ip link set {host_if} up"));
    apply(&sb, &fix);
    assert!(sb.pings("a", "10.88.0.3"));
    clear(&sb, "a", "b");

    // The endpoint's own interface: its routes go with it.
    sb.sh_ok("ip -n a link set eth0 down");
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(&sb, "a", "outside", "a", "interface eth0 is down");
    assert_eq!(
        fix,
        "ip -n a link set eth0 up && ip -n a route replace default via 10.88.0.1"
    );
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
}

#[test]
fn an_unpublished_port_is_found_and_fixed() {
    let sb = web();
    let _server = sb.tcp_server("b", 8080, "hello");
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 8080), None);
    let fix = blocked(
        &sb,
        "outside",
        "203.0.113.1:8080",
        "host",
        "port 8080/tcp is not published on 203.0.113.1",
    );
    assert_eq!(
        fix,
        "nsnet network disconnect web b && nsnet network connect web b -p 8080:8080"
    );
    apply(&sb, &fix);
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("hello")
    );
    clear(&sb, "outside", "203.0.113.1:8080");
    let (_, r) = doctor(&sb, "outside", "203.0.113.1:8080/tcp");
    let hops = r["hops"].as_array().unwrap();
    assert!(
        hops.iter().any(|h| h["message"]
            .as_str()
            .unwrap()
            .contains("ports4_any DNATs it to")),
        "{r:#}"
    );
    // Published on another port: nothing listens behind it.
    sb.ok(&["network", "disconnect", "web", "a"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "9090:9090"]);
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 9090), None);
    blocked(
        &sb,
        "outside",
        "203.0.113.1:9090",
        "a",
        "nothing listens on port 9090/tcp",
    );
}

#[test]
fn networks_are_isolated_by_design() {
    let sb = web();
    sb.netns(&["c"]);
    sb.ok(&["network", "create", "db", "--subnet", "10.89.0.0/24"]);
    sb.ok(&["network", "connect", "db", "c"]);
    assert!(sb.ping_fails("a", "10.89.0.2"));
    let fix = blocked(
        &sb,
        "a",
        "c",
        "host",
        "networks web and db are isolated from each other, by design",
    );
    assert_eq!(fix, "nsnet network connect db a");
    apply(&sb, &fix);
    assert!(sb.pings("a", "10.89.0.2"));
    clear(&sb, "a", "c");
}

#[test]
fn isolated_endpoints_routed_through_the_gateway_are_blocked_by_design() {
    let sb = Sandbox::with_outside();
    sb.netns(&["a", "b"]);
    sb.ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.34.0.0/24",
        "--isolate",
    ]);
    sb.ok(&["network", "connect", "iso", "a"]);
    sb.ok(&["network", "connect", "iso", "b"]);
    // Bridged: the ports are isolated (by nsnet's bridge table).
    blocked(
        &sb,
        "a",
        "b",
        "host",
        "network iso isolates its endpoints (--isolate)",
    );
    // Routed through the gateway: dropped as well, and doctor says so.
    sb.sh_ok("ip -n a route add 10.34.0.3/32 via 10.34.0.1");
    assert!(sb.ping_fails("a", "10.34.0.3"));
    let fix = blocked(
        &sb,
        "a",
        "b",
        "host",
        "not even routed through the gateway, by design",
    );
    assert_eq!(fix, "use a network created without --isolate");
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    let sb = web();
    for (from, to, says) in [
        ("nosuch", "a", "no namespace or pod named nosuch"),
        ("a", "nosuch", "no namespace or pod named nosuch"),
        (
            "192.0.2.77",
            "a",
            "no namespace of this host has address 192.0.2.77",
        ),
        ("a", "b:0", "bad port"),
        ("a", "b:70000", "bad port"),
        ("a", "b:80/icmp", "bad protocol"),
        ("a", "[2001:db8::1", "missing ]"),
    ] {
        let out = sb.nsnet(&["doctor", from, to]);
        assert_eq!(out.status.code(), Some(2), "doctor {from} {to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr:?} lacks {says:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn policy_routing_rules_are_a_warning_not_a_verdict() {
    let sb = web();
    // A rule to an empty table: lookups fall through to main, traffic flows.
    sb.sh_ok("ip -n a rule add from 10.88.0.2 table 100");
    assert!(sb.pings("a", "10.88.0.3"));
    let (code, r) = doctor(&sb, "a", "b");
    assert_eq!(code, 0, "{r:#}");
    let warn: Vec<&Value> = r["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "warn")
        .collect();
    assert_eq!(warn.len(), 1, "{r:#}");
    assert_eq!(warn[0]["namespace"], "a");
    assert!(warn[0]["message"]
        .as_str()
        .unwrap()
        .contains("1 policy routing rule(s)"));
    let text = sb.ok(&["doctor", "a", "b"]);
    assert!(text.contains("  ! a: 1 policy routing rule(s)"), "{text}");
}

#[test]
fn a_missing_nsnet_table_is_found_and_reloaded() {
    let sb = web();
    assert!(sb.pings("a", "203.0.113.2"));
    sb.sh_ok("nft delete table inet nsnet");
    // No masquerade: outside cannot answer 10.88.0.2.
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(&sb, "a", "outside", "host", "table inet nsnet is missing");
    assert_eq!(fix, "nsnet firewall reload");
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
}

#[test]
fn an_internal_network_reaches_nothing_beyond_by_design() {
    let sb = web();
    sb.netns(&["i"]);
    sb.ok(&[
        "network",
        "create",
        "int",
        "--internal",
        "--subnet",
        "10.87.0.0/24",
    ]);
    sb.ok(&["network", "connect", "int", "i"]);
    assert!(sb.ping_fails("i", "203.0.113.2"));
    let fix = blocked(&sb, "i", "outside", "i", "only on internal network int");
    assert_eq!(fix, "nsnet network connect web i");
    apply(&sb, &fix);
    assert!(sb.pings("i", "203.0.113.2"));
    clear(&sb, "i", "outside");
}

#[test]
fn a_foreign_drop_of_the_replies_is_found_and_fixed() {
    let sb = web();
    // The way out is accepted, the way back is not.
    sb.sh_ok(
        "iptables-nft -P FORWARD DROP && \
         iptables-nft -A FORWARD -i nsbr-web -o veth-outside -j ACCEPT",
    );
    assert!(sb.ping_fails("a", "203.0.113.2"));
    let fix = blocked(
        &sb,
        "a",
        "outside",
        "host",
        "chain FORWARD (hook forward) drops the replies",
    );
    assert_eq!(
        fix,
        "iptables-nft -I FORWARD -i veth-outside -o nsbr-web -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
    );
    apply(&sb, &fix);
    assert!(sb.pings("a", "203.0.113.2"));
    clear(&sb, "a", "outside");
}

#[test]
fn a_missing_route_back_is_found_and_fixed() {
    let sb = Sandbox::with_outside();
    sb.netns(&["r"]);
    sb.ok(&[
        "network",
        "create",
        "routed",
        "--no-masquerade",
        "--subnet",
        "10.86.0.0/24",
    ]);
    sb.ok(&["network", "connect", "routed", "r"]);
    // Without NAT, outside sees 10.86.0.2 and has no route to it.
    assert!(sb.ping_fails("r", "203.0.113.2"));
    let fix = blocked(
        &sb,
        "r",
        "outside",
        "outside",
        "outside has no route back to 10.86.0.2",
    );
    assert_eq!(fix, "ip -n outside route add 10.86.0.2 via 203.0.113.1");
    apply(&sb, &fix);
    assert!(sb.pings("r", "203.0.113.2"));
    clear(&sb, "r", "outside");
}

#[test]
fn a_process_namespace_is_named_by_its_pid() {
    let sb = Sandbox::new();
    // A "container" of another runtime: a process in a namespace of its own,
    // wired to the host by hand.
    let (pid, _holder) = sb.unshared_process();
    sb.sh_ok(&format!(
        "ip link add ctr-host type veth peer name ctr0 netns /proc/{pid}/ns/net && \
         ip addr add 192.0.2.1/24 dev ctr-host && ip link set ctr-host up && \
         nsenter -t {pid} -n ip addr add 192.0.2.9/24 dev ctr0 && \
         nsenter -t {pid} -n ip link set ctr0 up"
    ));
    assert!(sb.pings("host", "192.0.2.9"));
    let target = format!("pid:{pid}");
    clear(&sb, "host", &target);
    clear(&sb, &target, "host");
    // Its link down: the fix runs inside it with nsenter.
    sb.sh_ok(&format!("nsenter -t {pid} -n ip link set ctr0 down"));
    assert!(sb.ping_fails("host", "192.0.2.9"));
    let fix = blocked(&sb, "host", &target, "host", "no carrier");
    assert_eq!(fix, format!("nsenter -t {pid} -n ip link set ctr0 up"));
    apply(&sb, &fix);
    assert!(sb.pings("host", "192.0.2.9"));
    clear(&sb, "host", &target);
}

/// Issue 19.4: with the sandbox host wired into its own bridge (what `network
/// connect web pid:$$` did before nsnet refused it; made here by hand), doctor
/// printed the same two hops 16 times. The loop is named at its first
/// repetition, with the namespace and route that close it.
#[test]
fn a_host_wired_into_its_own_bridge_is_named_as_a_loop_at_its_first_repetition() {
    let sb = web();
    sb.sh_ok(
        "ip link add eth1 type veth peer name loopport && \
         ip link set loopport master nsbr-web up && \
         ip addr add 10.88.0.50/24 dev eth1 && ip link set eth1 up && \
         ip route add default via 10.88.0.1 dev eth1",
    );
    // The packets really go round: forwarded out of eth1 into the bridge they
    // came from (where the kernel drops them, their source now local after
    // masquerade), never to the world.
    let sent = || {
        sb.json("ip -s -j link show eth1")[0]["stats64"]["tx"]["packets"]
            .as_u64()
            .unwrap()
    };
    let before = sent();
    assert!(sb.ping_fails("a", "198.51.100.7"));
    let rounds = sent() - before;
    assert!(rounds >= 2, "{rounds}");

    let (code, r) = doctor(&sb, "a", "198.51.100.7");
    assert_eq!(code, 1, "{r:#}");
    let hops = r["hops"].as_array().unwrap();
    let fail: Vec<&Value> = hops.iter().filter(|h| h["status"] == "fail").collect();
    assert_eq!(fail.len(), 1, "{r:#}");
    assert_eq!(hops.last(), Some(fail[0]), "{r:#}");
    let msg = fail[0]["message"].as_str().unwrap();
    assert!(msg.starts_with("routing loop"), "{msg}");
    assert!(msg.contains("comes back to host on loopport"), "{msg}");
    assert!(
        msg.contains("the loop closes in host: host's route default via 10.88.0.1 dev eth1"),
        "{msg}"
    );
    // At its first repetition: no hop is reported twice.
    let mut lines: Vec<String> = hops
        .iter()
        .map(|h| format!("{} {}", h["namespace"], h["message"]))
        .collect();
    let all = lines.len();
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), all, "a hop repeated: {r:#}");
    assert!(all < 10, "{r:#}");
}
