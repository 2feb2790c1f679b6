//! Published ports (`-p`): from outside, from the host (127.0.0.1 and its own
//! addresses), from other endpoints, hairpin, ranges, UDP, IPv6.

mod common;
use common::Sandbox;
use serde_json::Value;

/// Every element of the four DNAT maps.
fn port_elements(sb: &Sandbox) -> Vec<(String, String)> {
    sb.nft_elements()
        .into_iter()
        .filter(|(set, _)| set.starts_with("ports"))
        .collect()
}

fn ls(sb: &Sandbox) -> Value {
    serde_json::from_str(&sb.ok(&["port", "ls", "--json"])).unwrap()
}

#[test]
fn a_published_tcp_port_is_reached_from_everywhere() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2", "e3"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "create", "other", "--subnet", "10.12.0.0/24"]);
    let out = sb.ok(&["network", "connect", "web", "e1", "-p", "8080:80"]);
    assert!(out.contains("published *:8080->80/tcp"), "{out}");
    sb.ok(&["network", "connect", "web", "e2"]);
    sb.ok(&["network", "connect", "other", "e3"]);
    let _srv = sb.tcp_server("e1", 80, "e1");
    let ask = |ns: &str, addr: &str| sb.tcp_ask(ns, addr, 8080);
    assert_eq!(
        ask("outside", "203.0.113.1").as_deref(),
        Some("e1"),
        "from outside"
    );
    assert_eq!(
        ask("host", "127.0.0.1").as_deref(),
        Some("e1"),
        "from 127.0.0.1"
    );
    assert_eq!(
        ask("host", "203.0.113.1").as_deref(),
        Some("e1"),
        "from the host's address"
    );
    assert_eq!(
        ask("e2", "203.0.113.1").as_deref(),
        Some("e1"),
        "from the same network"
    );
    assert_eq!(
        ask("e3", "203.0.113.1").as_deref(),
        Some("e1"),
        "from another network"
    );
    assert_eq!(ask("e1", "203.0.113.1").as_deref(), Some("e1"), "hairpin");
    assert_eq!(
        ask("e1", "10.10.0.1").as_deref(),
        Some("e1"),
        "hairpin via the gateway"
    );
    // route_localnet is on for the bridge only, nowhere else.
    assert_eq!(
        sb.sh_ok("cat /proc/sys/net/ipv4/conf/nsbr-web/route_localnet")
            .trim(),
        "1"
    );
    assert_eq!(
        sb.sh_ok("cat /proc/sys/net/ipv4/conf/all/route_localnet")
            .trim(),
        "0"
    );
    assert_eq!(
        sb.sh_ok("cat /proc/sys/net/ipv4/conf/veth-outside/route_localnet")
            .trim(),
        "0"
    );
    let l = ls(&sb);
    assert_eq!(l[0]["host_port"], 8080);
    assert_eq!(l[0]["namespace"], "e1");
    assert_eq!(l[0]["container_addresses"][0], "10.10.0.2");
}

#[test]
fn ipv6_ports_are_published_for_ipv6_subnets() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1"]);
    sb.ok(&[
        "network",
        "create",
        "ds",
        "--subnet",
        "10.20.0.0/24",
        "--subnet",
        "fd00:20::/64",
    ]);
    sb.ok(&["network", "connect", "ds", "e1", "-p", "8080:80"]);
    let _srv = sb.tcp_server("e1", 80, "e1");
    assert_eq!(
        sb.tcp_ask("outside", "[2001:db8:1::1]", 8080).as_deref(),
        Some("e1")
    );
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    sb.fails(
        &["network", "connect", "ds", "outside", "-p", "[::1]:8081:80"],
        "::1",
    );
}

#[test]
fn udp_flows_follow_the_port_to_its_new_endpoint() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "dns", "--subnet", "10.30.0.0/24"]);
    sb.ok(&["network", "connect", "dns", "e1", "-p", "5353:53/udp"]);
    let _s1 = sb.udp_server("e1", 53, "e1");
    let _s2 = sb.udp_server("e2", 53, "e2");
    assert_eq!(
        sb.udp_ask_retry("outside", "203.0.113.1", 5353, Some(40000))
            .as_deref(),
        Some("e1")
    );
    sb.ok(&["network", "disconnect", "dns", "e1"]);
    sb.ok(&["network", "connect", "dns", "e2", "-p", "5353:53/udp"]);
    // Same source port, same 5-tuple: without flushing conntrack the flow would
    // still be steered to e1, which is gone.
    assert_eq!(
        sb.udp_ask_retry("outside", "203.0.113.1", 5353, Some(40000))
            .as_deref(),
        Some("e2")
    );
}

#[test]
fn ranges_loopback_only_and_picked_ports() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "r", "--subnet", "10.40.0.0/24"]);
    sb.ok(&[
        "network",
        "connect",
        "r",
        "e1",
        "-p",
        "9000-9009:9000-9009",
        "-p",
        "127.0.0.1:8081:80",
    ]);
    let _range = sb.spawn(
        "for p in $(seq 9000 9009); do ip netns exec e1 socat TCP-LISTEN:$p,fork,reuseaddr SYSTEM:\"echo $p\" & done; wait",
    );
    let _srv = sb.tcp_server("e1", 80, "e1");
    for p in 9000..=9009u16 {
        sb.wait_for(&format!("port {p}"), || {
            sb.tcp_ask("outside", "203.0.113.1", p).as_deref() == Some(&p.to_string())
        });
    }
    assert_eq!(sb.tcp_ask("host", "127.0.0.1", 8081).as_deref(), Some("e1"));
    assert_eq!(sb.tcp_ask("host", "203.0.113.1", 8081), None);
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 8081), None);

    let out = sb.ok(&["network", "connect", "r", "e2", "-p", "80"]);
    assert!(out.contains("published *:49152->80/tcp"), "{out}");
    let _srv2 = sb.tcp_server("e2", 80, "e2");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 49152).as_deref(),
        Some("e2")
    );
    assert_eq!(ls(&sb).as_array().unwrap().len(), 12);
}

#[test]
fn bad_specs_and_taken_ports_are_refused_without_change() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "b", "--subnet", "10.50.0.0/24"]);
    sb.ok(&[
        "network",
        "create",
        "priv",
        "--subnet",
        "10.51.0.0/24",
        "--internal",
    ]);
    sb.ok(&[
        "network",
        "connect",
        "b",
        "e1",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:7000:70",
    ]);
    let before = (
        port_elements(&sb),
        ls(&sb),
        sb.links("host"),
        sb.links("e2"),
    );
    for (spec, msg) in [
        ("0", "port 0 is out of range"),
        ("70000:80", "port 70000 is out of range"),
        ("9000-9009:9000-9008", "10 ports but container range has 9"),
        ("80/icmp", "unknown protocol"),
        ("1.2.3:80:80", "not an IP address"),
        ("8080:81", "port 8080/tcp on * is already published by e1"),
        (
            "127.0.0.1:8080:81",
            "port 8080/tcp on 127.0.0.1 is already published",
        ),
        ("7000:70", "port 7000/tcp on * is already published"),
    ] {
        sb.fails(&["network", "connect", "b", "e2", "-p", spec], msg);
    }
    // Two specs in one connect that collide with each other.
    sb.fails(
        &[
            "network", "connect", "b", "e2", "-p", "6000:1", "-p", "6000:2",
        ],
        "already published",
    );
    sb.fails(
        &["network", "connect", "priv", "e2", "-p", "80"],
        "internal",
    );
    // A port a host process listens on.
    let _host = sb.spawn("exec socat TCP-LISTEN:7777,fork,reuseaddr SYSTEM:'echo host'");
    sb.wait_for("host listener", || {
        sb.sh("ss -Htln 'sport = :7777' | grep -q LISTEN")
            .status
            .success()
    });
    sb.fails(
        &["network", "connect", "b", "e2", "-p", "7777:80"],
        "in use by a process on the host",
    );
    assert_eq!(
        (
            port_elements(&sb),
            ls(&sb),
            sb.links("host"),
            sb.links("e2")
        ),
        before
    );
    // UDP on the same number is a different port.
    sb.ok(&["network", "connect", "b", "e2", "-p", "8080:80/udp"]);
}

#[test]
fn disconnect_removes_exactly_its_ports() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "d", "--subnet", "10.60.0.0/24"]);
    sb.ok(&["network", "connect", "d", "e1", "-p", "8080:80"]);
    sb.ok(&["network", "connect", "d", "e2", "-p", "8082:80"]);
    let _s1 = sb.tcp_server("e1", 80, "e1");
    let _s2 = sb.tcp_server("e2", 80, "e2");
    assert_eq!(port_elements(&sb).len(), 2);
    sb.ok(&["network", "disconnect", "d", "e1"]);
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 8080), None);
    let left = port_elements(&sb);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].1.contains("8082"), "{left:?}");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8082).as_deref(),
        Some("e2")
    );
    // The freed port can be published again.
    sb.ok(&["network", "connect", "d", "e1", "-p", "8080:80"]);
    sb.ok(&["network", "rm", "d", "--force"]);
    assert_eq!(port_elements(&sb), Vec::<(String, String)>::new());
    assert_eq!(ls(&sb), serde_json::json!([]));
}

#[test]
fn a_host_process_on_one_address_does_not_block_publishing_the_port_on_another() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "b", "--subnet", "10.50.0.0/24"]);
    // Host processes: TCP 7001 and UDP 7002 on 127.0.0.1 only, TCP 7003 on
    // every address.
    let _tcp =
        sb.spawn("exec socat TCP-LISTEN:7001,bind=127.0.0.1,fork,reuseaddr SYSTEM:'echo host-lo'");
    let _udp = sb.spawn("exec socat UDP-RECVFROM:7002,bind=127.0.0.1,fork SYSTEM:'echo host-lo'");
    let _any = sb.spawn("exec socat TCP-LISTEN:7003,fork,reuseaddr SYSTEM:'echo host-any'");
    sb.wait_for("the host's sockets", || {
        sb.sh(
            "ss -Htln 'sport = :7001' | grep -q 127.0.0.1 && ss -Huln 'sport = :7002' | grep -q . \
             && ss -Htln 'sport = :7003' | grep -q LISTEN",
        )
        .status
        .success()
    });
    // Where they listen, and on every address, the ports are refused...
    for spec in [
        "127.0.0.1:7001:80",
        "7001:80",
        "0.0.0.0:7001:80",
        "127.0.0.1:7002:53/udp",
    ] {
        sb.fails(
            &["network", "connect", "b", "e1", "-p", spec],
            "is in use by a process on the host",
        );
    }
    // ...as is a specific address when a process listens on every one.
    sb.fails(
        &["network", "connect", "b", "e1", "-p", "203.0.113.1:7003:80"],
        "port 7003/tcp on 203.0.113.1 is in use by a process on the host",
    );
    // On another address they are free, and answer there, while the host's
    // processes keep answering on 127.0.0.1.
    sb.ok(&[
        "network",
        "connect",
        "b",
        "e1",
        "-p",
        "203.0.113.1:7001:80",
        "-p",
        "203.0.113.1:7002:53/udp",
    ]);
    let _srv = sb.tcp_server("e1", 80, "e1-tcp");
    let _usrv = sb.udp_server("e1", 53, "e1-udp");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 7001).as_deref(),
        Some("e1-tcp")
    );
    assert_eq!(
        sb.udp_ask_retry("outside", "203.0.113.1", 7002, None)
            .as_deref(),
        Some("e1-udp")
    );
    assert_eq!(
        sb.tcp_ask("host", "127.0.0.1", 7001).as_deref(),
        Some("host-lo")
    );
    assert_eq!(
        sb.udp_ask_retry("host", "127.0.0.1", 7002, None).as_deref(),
        Some("host-lo")
    );
}
