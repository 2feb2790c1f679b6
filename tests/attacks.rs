//! What a container (root in its own namespace, raw sockets) can try against
//! its neighbours, other networks and the host, with real packets
//! (SECURITY.md, "Packets from containers"). Each attack has a positive
//! control: the same tool, aimed where it is allowed, gets through, so a
//! test cannot pass because the attack itself was broken.

mod common;
use common::Sandbox;
use std::time::{Duration, Instant};

const RAWPKT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/rawpkt.py");

/// The MAC of an interface in the sandbox's host namespace.
fn mac(sb: &Sandbox, ifname: &str) -> String {
    sb.sh_ok(&format!("cat /sys/class/net/{ifname}/address"))
        .trim()
        .to_owned()
}

/// The IPv4 (or IPv6) address nsnet gave namespace `ns` on `net`.
fn addr(sb: &Sandbox, net: &str, ns: &str, v6: bool) -> String {
    let v = sb.json(&format!("ip -n {ns} -j addr show scope global"));
    let family = if v6 { "inet6" } else { "inet" };
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["addr_info"].as_array().unwrap().iter())
        .filter(|a| a["family"] == family)
        .filter_map(|a| a["local"].as_str())
        .find(|a| {
            let prefix = match net {
                "web" => "10.31.",
                "db" => "10.32.",
                "closed" => "10.33.",
                "iso" => "10.34.",
                "cninet" => "10.35.",
                _ => "",
            };
            v6 || a.starts_with(prefix)
        })
        .unwrap_or_else(|| panic!("{ns} has no {family} address on {net}: {v}"))
        .to_owned()
}

/// A frame from `ns` (on network `net`, bridge `nsbr-NET`) to the gateway's
/// MAC for 127.0.0.1 reaches no host service bound there.
fn assert_loopback_guarded(sb: &Sandbox, ns: &str, net: &str) {
    let _lo = udp_log(sb, "host", "127.0.0.1", 9999, "lo");
    sb.sh_ok(&format!(
        "ip netns exec {ns} python3 {RAWPKT} udp4 eth0 {} {} 127.0.0.1 9999 attack",
        mac(sb, &format!("nsbr-{net}")),
        addr(sb, net, ns, false)
    ));
    assert_eq!(got(sb, "lo"), "", "{ns} reached the host's 127.0.0.1");
}

/// A UDP listener that appends every datagram to `/run/got-NAME`.
fn udp_log(sb: &Sandbox, ns: &str, bind: &str, port: u16, name: &str) -> common::Background {
    let prefix = if ns == "host" {
        String::new()
    } else {
        format!("ip netns exec {ns} ")
    };
    let family = if bind.contains(':') { "UDP6" } else { "UDP4" };
    let bg = sb.spawn(&format!(
        "exec {prefix}socat -u {family}-RECV:{port},bind={bind} OPEN:/run/got-{name},creat,append"
    ));
    std::thread::sleep(Duration::from_millis(300));
    bg
}

fn got(sb: &Sandbox, name: &str) -> String {
    std::thread::sleep(Duration::from_millis(400));
    sb.sh_ok(&format!("cat /run/got-{name} 2>/dev/null || true"))
}

/// Connections the host holds in SYN-RECV (a SYN that got as far as a socket).
fn syn_recv(sb: &Sandbox, port: u16) -> String {
    sb.sh_ok(&format!("ss -Htn state syn-recv '( sport = :{port} )'"))
}

#[test]
fn endpoints_cannot_reach_the_hosts_loopback_services_or_ports_published_on_127_0_0_1() {
    let sb = Sandbox::new();
    sb.netns(&["a", "i", "s", "srv"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.31.0.0/24"]);
    sb.ok(&[
        "network",
        "create",
        "closed",
        "--subnet",
        "10.33.0.0/24",
        "--internal",
    ]);
    sb.ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.34.0.0/24",
        "--isolate",
    ]);
    sb.ok(&["network", "connect", "web", "a"]);
    sb.ok(&["network", "connect", "closed", "i"]);
    sb.ok(&["network", "connect", "iso", "s"]);
    sb.ok(&[
        "network",
        "connect",
        "web",
        "srv",
        "-p",
        "127.0.0.1:8081:80",
    ]);
    let _srv = sb.tcp_server("srv", 80, "secret");
    let _udp = udp_log(&sb, "host", "127.0.0.1", 9999, "lo");
    let _any = udp_log(&sb, "host", "0.0.0.0", 9997, "any");
    let _tcp = sb.spawn("exec socat TCP-LISTEN:9998,bind=127.0.0.1,fork SYSTEM:'echo x'");
    std::thread::sleep(Duration::from_millis(300));
    // The port published on 127.0.0.1 answers the host itself.
    assert_eq!(
        sb.tcp_ask("host", "127.0.0.1", 8081).as_deref(),
        Some("secret")
    );

    for (net, ns, bridge) in [
        ("web", "a", "nsbr-web"),
        ("closed", "i", "nsbr-closed"),
        ("iso", "s", "nsbr-iso"),
    ] {
        let me = addr(&sb, net, ns, false);
        let gw_mac = mac(&sb, bridge);
        let gw = match net {
            "web" => "10.31.0.1",
            "closed" => "10.33.0.1",
            _ => "10.34.0.1",
        };
        let raw = |args: &str| {
            sb.sh_ok(&format!("ip netns exec {ns} python3 {RAWPKT} {args}",));
        };
        // Positive control: the same frame, for the gateway address, is received.
        if net != "closed" {
            raw(&format!("udp4 eth0 {gw_mac} {me} {gw} 9997 control-{net}"));
            assert!(
                got(&sb, "any").contains(&format!("control-{net}")),
                "the raw-frame tool does not work from {net}"
            );
        }
        raw(&format!(
            "udp4 eth0 {gw_mac} {me} 127.0.0.1 9999 attack-{net}"
        ));
        raw(&format!("syn4 eth0 {gw_mac} {me} 127.0.0.1 9998"));
        raw(&format!("syn4 eth0 {gw_mac} {me} 127.0.0.1 8081"));
        assert_eq!(
            got(&sb, "lo"),
            "",
            "a datagram from {net} reached 127.0.0.1"
        );
        assert_eq!(
            syn_recv(&sb, 9998),
            "",
            "a SYN from {net} reached 127.0.0.1"
        );
        // A route to 127.0.0.1 via the gateway (root in the container owns
        // its routes) reaches neither the service nor the published port.
        sb.sh_ok(&format!(
            "ip -n {ns} route del local 127.0.0.1 table local; \
             ip -n {ns} route add 127.0.0.1/32 via {gw} dev eth0 onlink || true"
        ));
        assert_eq!(sb.tcp_ask(ns, "127.0.0.1", 9998), None, "from {net}");
        assert_eq!(sb.tcp_ask(ns, "127.0.0.1", 8081), None, "from {net}");
    }
    // The published port is still answered at 127.0.0.1 from the host.
    assert_eq!(
        sb.tcp_ask("host", "127.0.0.1", 8081).as_deref(),
        Some("secret")
    );
    // Without nsnet's guard the same attack gets through: this test can fail.
    sb.sh_ok("nft delete table bridge nsnet");
    let me = addr(&sb, "web", "a", false);
    sb.sh_ok(&format!(
        "ip netns exec a python3 {RAWPKT} udp4 eth0 {} {me} 127.0.0.1 9999 unguarded",
        mac(&sb, "nsbr-web")
    ));
    assert!(got(&sb, "lo").contains("unguarded"));
}

#[test]
fn router_adverts_from_an_endpoint_give_no_one_a_route_or_an_address() {
    let sb = Sandbox::new();
    sb.netns(&["victim", "victim4", "attacker", "p1", "p2"]);
    sb.ok(&[
        "network",
        "create",
        "web",
        "--subnet",
        "10.31.0.0/24",
        "--subnet",
        "fd31::/64",
    ]);
    sb.ok(&["network", "create", "db", "--subnet", "10.32.0.0/24"]);
    sb.ok(&["network", "connect", "web", "victim"]);
    sb.ok(&["network", "connect", "web", "attacker"]);
    sb.ok(&["network", "connect", "db", "victim4"]);
    sb.ok(&["network", "connect", "db", "attacker", "--ifname", "eth1"]);
    // nsnet turned adverts off on the endpoint's interface...
    assert_eq!(
        sb.sh_ok("ip netns exec victim cat /proc/sys/net/ipv6/conf/eth0/accept_ra")
            .trim(),
        "0"
    );
    // ...and the bridge drops them even when a container turns them back on.
    sb.sh_ok(
        "ip netns exec victim sysctl -qw net.ipv6.conf.eth0.accept_ra=2 \
         net.ipv6.conf.eth0.autoconf=1 && \
         ip netns exec victim4 sysctl -qw net.ipv6.conf.eth0.accept_ra=2 \
         net.ipv6.conf.eth0.autoconf=1 net.ipv6.conf.eth0.addr_gen_mode=0",
    );
    // Positive control: the same advert over a plain veth pair is taken.
    sb.ok(&["link", "add", "p1", "p2"]);
    sb.sh_ok(
        "ip netns exec p2 sysctl -qw net.ipv6.conf.veth-p1.accept_ra=2 && \
         ip -n p1 addr add fe80::1/64 dev veth-p2 nodad",
    );
    // (Sent again until taken: p2's interface may still be coming up.)
    sb.wait_for("the control advert's route", || {
        sb.sh_ok(&format!(
            "ip netns exec p1 python3 {RAWPKT} ra6 veth-p2 2001:db8:bad::; sleep 0.2"
        ));
        sb.sh_ok("ip -n p2 -6 route show proto ra")
            .contains("default")
    });

    // On the IPv4-only network the attacker gives itself a link-local address.
    sb.sh_ok("ip -n attacker addr add fe80::bad/64 dev eth1 nodad");
    for (iface, victim) in [("eth0", "victim"), ("eth1", "victim4")] {
        for _ in 0..3 {
            sb.sh_ok(&format!(
                "ip netns exec attacker python3 {RAWPKT} ra6 {iface} 2001:db8:bad::; sleep 0.2"
            ));
        }
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(
            sb.sh_ok(&format!("ip -n {victim} -6 route show proto ra")),
            "",
            "{victim} took a route from the advert"
        );
        assert!(
            !sb.sh_ok(&format!("ip -n {victim} -6 addr"))
                .contains("2001:db8:bad"),
            "{victim} took an address from the advert"
        );
    }
    // Nor does the host take one from its bridge.
    assert_eq!(sb.sh_ok("ip -6 route show proto ra"), "");
}

#[test]
fn spoofed_source_addresses_and_macs_are_dropped_at_the_endpoints_port() {
    let sb = Sandbox::with_outside();
    sb.netns(&["a", "x", "y", "i"]);
    sb.ok(&[
        "network",
        "create",
        "web",
        "--subnet",
        "10.31.0.0/24",
        "--subnet",
        "fd31::/64",
    ]);
    sb.ok(&[
        "network",
        "create",
        "db",
        "--subnet",
        "10.32.0.0/24",
        "--subnet",
        "fd32::/64",
    ]);
    sb.ok(&[
        "network",
        "create",
        "closed",
        "--subnet",
        "10.33.0.0/24",
        "--internal",
    ]);
    sb.ok(&["network", "connect", "web", "a"]);
    sb.ok(&["network", "connect", "web", "x"]);
    sb.ok(&["network", "connect", "db", "y"]);
    sb.ok(&["network", "connect", "closed", "i"]);
    let _out4 = udp_log(&sb, "outside", "0.0.0.0", 7000, "out4");
    let _out6 = udp_log(&sb, "outside", "[::]", 7001, "out6");
    let _host = udp_log(&sb, "host", "0.0.0.0", 7002, "host");
    let send = |src: &str, dst: &str, port: u16, text: &str| {
        let (family, dst) = if dst.contains(':') {
            ("UDP6", format!("[{dst}]"))
        } else {
            ("UDP4", dst.to_owned())
        };
        let bind = if src.contains(':') {
            format!("[{src}]")
        } else {
            src.to_owned()
        };
        sb.sh(&format!(
            "echo {text} | ip netns exec x socat -u - {family}:{dst}:{port},bind={bind}"
        ));
    };
    // Positive controls: x's own addresses get through.
    let own4 = addr(&sb, "web", "x", false);
    let own6 = addr(&sb, "web", "x", true);
    send(&own4, "203.0.113.2", 7000, "own4");
    send(&own6, "2001:db8:1::2", 7001, "own6");
    send(&own4, "10.31.0.1", 7002, "own-host");
    assert!(got(&sb, "out4").contains("own4"));
    assert!(got(&sb, "out6").contains("own6"));
    assert!(got(&sb, "host").contains("own-host"));

    // x claims the addresses of another network's endpoint, of an internal
    // network's endpoint, and of its neighbour a (root owns its interfaces).
    let victims = [
        addr(&sb, "db", "y", false),
        addr(&sb, "db", "y", true),
        addr(&sb, "closed", "i", false),
        addr(&sb, "web", "a", false),
        addr(&sb, "web", "a", true),
    ];
    for v in &victims {
        let len = if v.contains(':') { 128 } else { 32 };
        sb.sh_ok(&format!("ip -n x addr add {v}/{len} dev eth0 nodad"));
    }
    for v in &victims {
        if v.contains(':') {
            send(v, "2001:db8:1::2", 7001, "spoofed6");
        } else {
            send(v, "203.0.113.2", 7000, "spoofed4");
            send(v, "10.31.0.1", 7002, "spoofed-host");
        }
    }
    assert!(
        !got(&sb, "out4").contains("spoofed"),
        "IPv4 spoofing got out"
    );
    assert!(
        !got(&sb, "out6").contains("spoofed"),
        "IPv6 spoofing got out"
    );
    assert!(
        !got(&sb, "host").contains("spoofed"),
        "the host got a forged source"
    );

    // x takes a's MAC: nothing it sends passes (the bridge would otherwise
    // move a's MAC to x's port and hand x a's frames).
    let a_mac = sb
        .sh_ok("ip netns exec a cat /sys/class/net/eth0/address")
        .trim()
        .to_owned();
    let x_mac = sb
        .sh_ok("ip netns exec x cat /sys/class/net/eth0/address")
        .trim()
        .to_owned();
    assert!(sb.pings("x", "10.31.0.1"));
    sb.sh_ok(&format!("ip -n x link set eth0 address {a_mac}"));
    sb.sh_ok("ip -n x neigh flush all");
    assert!(sb.ping_fails("x", "10.31.0.1"), "a forged MAC got through");
    assert!(sb.pings("a", "10.31.0.1"), "a lost its traffic to x");
    sb.sh_ok(&format!("ip -n x link set eth0 address {x_mac}"));
    assert!(sb.pings("x", "10.31.0.1"));

    // ARP: x answers for a's address (gratuitous ARP with a's IP and x's MAC).
    let a4 = addr(&sb, "web", "a", false);
    assert!(sb.pings("host", &a4));
    for _ in 0..3 {
        sb.sh_ok(&format!("ip netns exec x python3 {RAWPKT} garp eth0 {a4}"));
    }
    assert!(sb.pings("host", &a4));
    let neigh = sb.sh_ok(&format!("ip neigh show {a4} dev nsbr-web"));
    assert!(
        !neigh.contains(&x_mac),
        "the host learned x's MAC for a: {neigh}"
    );
}

#[test]
fn internal_networks_reach_their_endpoints_and_gateway_and_nothing_else() {
    let sb = Sandbox::with_outside();
    sb.netns(&["i", "j", "srv"]);
    sb.ok(&[
        "network",
        "create",
        "closed",
        "--subnet",
        "10.33.0.0/24",
        "--subnet",
        "fd33::/64",
        "--internal",
    ]);
    sb.ok(&["network", "create", "web", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "closed", "i"]);
    sb.ok(&["network", "connect", "closed", "j"]);
    sb.ok(&["network", "connect", "web", "srv", "-p", "8080:80"]);
    let _srv = sb.tcp_server("srv", 80, "published");
    // What internal means: its neighbours and its gateway, both families.
    assert!(sb.pings("i", &addr(&sb, "closed", "j", false)));
    assert!(sb.pings("i", &addr(&sb, "closed", "j", true)));
    assert!(sb.pings("i", "10.33.0.1"));
    assert!(sb.pings("i", "fd33::1"));
    // The published port answers from outside (the control)...
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("published")
    );
    // ...but not from the internal network, through any host address.
    for host_addr in ["10.33.0.1", "203.0.113.1", "10.31.0.1"] {
        assert_eq!(
            sb.tcp_ask("i", host_addr, 8080),
            None,
            "an internal endpoint reached a published port at {host_addr}"
        );
    }
    // No ICMPv6 to the host's other addresses either.
    assert!(sb.ping_fails("i", "2001:db8:1::1"));
    assert!(sb.ping_fails("i", "2001:db8:1::2"));
}

#[test]
fn isolated_endpoints_cannot_reach_each_other_through_the_gateway() {
    let sb = Sandbox::with_outside();
    sb.netns(&["a", "b"]);
    sb.ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.34.0.0/24",
        "--subnet",
        "fd34::/64",
        "--isolate",
    ]);
    sb.ok(&["network", "connect", "iso", "a"]);
    sb.ok(&["network", "connect", "iso", "b"]);
    let b4 = addr(&sb, "iso", "b", false);
    let b6 = addr(&sb, "iso", "b", true);
    assert!(sb.ping_fails("a", &b4));
    assert!(sb.ping_fails("a", &b6));
    // A route to b via the gateway: routed, not bridged. Even one way (b's
    // answers are bridged and dropped) it would let a send b anything.
    let _log4 = udp_log(&sb, "b", "0.0.0.0", 7000, "b4");
    let _log6 = udp_log(&sb, "b", "[::]", 7001, "b6");
    let send = |dst: &str, port: u16, text: &str| {
        sb.sh_ok(&format!(
            "echo {text} | ip netns exec a socat -u - UDP:{dst}:{port}"
        ));
    };
    // Positive control: b's own gateway-facing side works (from the host).
    sb.sh_ok(&format!("echo control | socat -u - UDP:{b4}:7000"));
    assert!(got(&sb, "b4").contains("control"));
    sb.sh_ok(&format!(
        "ip -n a route add {b4}/32 via 10.34.0.1 && ip -n a -6 route add {b6}/128 via fd34::1"
    ));
    send(&b4, 7000, "routed4");
    send(&format!("[{b6}]"), 7001, "routed6");
    assert!(
        !got(&sb, "b4").contains("routed4"),
        "routed through the gateway to b"
    );
    assert!(
        !got(&sb, "b6").contains("routed6"),
        "routed through the gateway to b (IPv6)"
    );
    assert!(sb.pings("a", "10.34.0.1"), "a lost its gateway");
    // The way out still works.
    assert!(sb.pings("a", "203.0.113.2"));
}

#[test]
fn published_ports_of_an_isolated_network_answer_its_own_endpoints() {
    for br_netfilter in ["0", "1"] {
        let sb = Sandbox::new();
        sb.sh_ok(&format!(
            "sysctl -qw net.bridge.bridge-nf-call-iptables={br_netfilter} \
             net.bridge.bridge-nf-call-ip6tables={br_netfilter} 2>/dev/null || \
             (modprobe br_netfilter && sysctl -qw net.bridge.bridge-nf-call-iptables={br_netfilter} \
             net.bridge.bridge-nf-call-ip6tables={br_netfilter})"
        ));
        sb.netns(&["a", "b"]);
        sb.ok(&[
            "network",
            "create",
            "iso",
            "--subnet",
            "10.34.0.0/24",
            "--subnet",
            "fd34::/64",
            "--isolate",
        ]);
        sb.ok(&["network", "connect", "iso", "a", "-p", "8081:80"]);
        sb.ok(&["network", "connect", "iso", "b", "-p", "8082:80"]);
        let _a = sb.tcp_server("a", 80, "from-a");
        let _b = sb.tcp_server("b", 80, "from-b");
        for gw in ["10.34.0.1", "[fd34::1]"] {
            // A neighbour's published port, and one's own (hairpin).
            assert_eq!(
                sb.tcp_ask("a", gw, 8082).as_deref(),
                Some("from-b"),
                "br_netfilter={br_netfilter}, {gw}"
            );
            assert_eq!(
                sb.tcp_ask("a", gw, 8081).as_deref(),
                Some("from-a"),
                "hairpin, br_netfilter={br_netfilter}, {gw}"
            );
        }
        // Still isolated.
        assert!(sb.ping_fails("a", &addr(&sb, "iso", "b", false)));
    }
}

#[test]
fn ipv6_loopback_to_a_published_port_is_refused_at_once() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&[
        "network",
        "create",
        "web",
        "--subnet",
        "10.31.0.0/24",
        "--subnet",
        "fd31::/64",
    ]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    let _srv = sb.tcp_server("a", 80, "x");
    assert_eq!(sb.tcp_ask("host", "127.0.0.1", 8080).as_deref(), Some("x"));
    let start = Instant::now();
    let out = sb.sh("socat -T5 - 'TCP6:[::1]:8080,connect-timeout=5' </dev/null");
    let took = start.elapsed();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Connection refused"),
        "{out:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// The CNI face: a dual-stack, port-isolated network defined by a config,
/// attachments made the way a runtime makes them.
#[test]
fn the_same_attacks_fail_on_a_cni_defined_network() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b", "x"]);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "cninet", "type": "nsnet", "portIsolation": true,
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.35.0.0/24"}], [{"subnet": "fd35::/64"}]]},
    });
    let add = |ns: &str, runtime: serde_json::Value| {
        let mut c = conf.clone();
        c["runtimeConfig"] = runtime;
        let out = sb.cni(
            &[
                ("CNI_COMMAND", Some("ADD")),
                ("CNI_CONTAINERID", Some(&format!("ctr-{ns}"))),
                ("CNI_NETNS", Some(&format!("/run/netns/{ns}"))),
                ("CNI_IFNAME", Some("eth0")),
            ],
            &c.to_string(),
        );
        assert!(out.status.success(), "{out:?}");
    };
    add("a", serde_json::json!({}));
    add(
        "b",
        serde_json::json!({"portMappings": [{"hostPort": 8082, "containerPort": 80, "protocol": "tcp"}]}),
    );
    add("x", serde_json::json!({}));
    let _b = sb.tcp_server("b", 80, "from-b");
    let _log = udp_log(&sb, "host", "0.0.0.0", 7002, "host");
    let a4 = addr(&sb, "cninet", "a", false);
    let a6 = addr(&sb, "cninet", "a", true);
    // The published port answers the isolated neighbours; isolation holds.
    assert_eq!(
        sb.tcp_ask("a", "10.35.0.1", 8082).as_deref(),
        Some("from-b")
    );
    assert!(sb.ping_fails("a", &addr(&sb, "cninet", "b", false)));
    // x forges a's addresses and sends router adverts.
    let own = addr(&sb, "cninet", "x", false);
    sb.sh(&format!(
        "echo own | ip netns exec x socat -u - UDP4:10.35.0.1:7002,bind={own}"
    ));
    assert!(got(&sb, "host").contains("own"));
    sb.sh_ok(&format!(
        "ip -n x addr add {a4}/32 dev eth0 && ip -n x addr add {a6}/128 dev eth0 nodad"
    ));
    sb.sh(&format!(
        "echo spoofed | ip netns exec x socat -u - UDP4:10.35.0.1:7002,bind={a4}"
    ));
    assert!(!got(&sb, "host").contains("spoofed"));
    sb.sh_ok("ip netns exec a sysctl -qw net.ipv6.conf.eth0.accept_ra=2");
    for _ in 0..3 {
        sb.sh_ok(&format!(
            "ip netns exec x python3 {RAWPKT} ra6 eth0 2001:db8:bad::; sleep 0.2"
        ));
    }
    assert_eq!(sb.sh_ok("ip -n a -6 route show proto ra"), "");
    // 127.0.0.1 through the gateway.
    let _lo = udp_log(&sb, "host", "127.0.0.1", 9999, "lo");
    sb.sh_ok(&format!(
        "ip netns exec x python3 {RAWPKT} udp4 eth0 {} {own} 127.0.0.1 9999 attack",
        mac(&sb, "nsbr-cninet")
    ));
    assert_eq!(got(&sb, "lo"), "");
}

/// A host whose `table inet nsnet` was declared by an nsnet without `bridge
/// nsnet` (or someone deleted it): the next connect declares both again,
/// keeping every endpoint's elements, and the guard is in place.
#[test]
fn a_connect_puts_back_a_missing_bridge_table_with_every_endpoints_elements() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b", "x"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    sb.sh_ok("nft delete table bridge nsnet");
    let check = sb.nsnet(&["check"]);
    assert!(!check.status.success());
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("set l2_macs is missing"),
        "{check:?}"
    );
    sb.ok(&["network", "connect", "web", "b"]);
    sb.ok(&["check"]);
    let macs = sb.sh_ok("nft list set bridge nsnet l2_macs");
    for ns in ["a", "b"] {
        let mac = sb.sh_ok(&format!(
            "ip netns exec {ns} cat /sys/class/net/eth0/address"
        ));
        assert!(macs.contains(mac.trim()), "{ns}: {macs}");
    }
    // And a's port is guarded again.
    assert_loopback_guarded(&sb, "a", "web");
}

/// An older nsnet's table (`inet nsnet` alone, its old rules), with no network
/// of this store up: the first connect declares both tables again, and the
/// guard holds from the first endpoint on.
#[test]
fn a_first_connect_beside_an_older_nsnets_table_declares_both_tables() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.sh_ok(
        "nft -f - <<'EOF'\ntable inet nsnet {\n\tset bridges { type ifname; }\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname @bridges accept\n\t}\n}\nEOF",
    );
    sb.ok(&["network", "create", "web", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a"]);
    sb.ok(&["check"]);
    assert!(sb.sh_ok("nft list tables").contains("table bridge nsnet"));
    // The old chain's extra rule is gone: the base ruleset, exactly.
    let forward = sb.sh_ok("nft list chain inet nsnet forward");
    assert!(!forward.contains("iifname @bridges accept"), "{forward}");
    assert_loopback_guarded(&sb, "a", "web");
}

/// A container that gives itself another address (or is given one by a
/// tool) loses the traffic it sends from it: doctor names the port guard.
#[test]
fn doctor_names_the_port_guard_for_a_source_nsnet_did_not_give() {
    let sb = Sandbox::with_outside();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a"]);
    assert!(sb.pings("a", "203.0.113.2"));
    sb.sh_ok(
        "ip -n a addr add 10.31.0.77/32 dev eth0 && \
         ip -n a route replace default via 10.31.0.1 dev eth0 src 10.31.0.77",
    );
    assert!(sb.ping_fails("a", "203.0.113.2"), "a forged source got out");
    let out = sb.nsnet(&["doctor", "a", "203.0.113.2"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("would leave with source 10.31.0.77, which nsnet did not give a on network web (its address there: 10.31.0.2)"),
        "{text}"
    );
    assert!(text.contains("table bridge nsnet"), "{text}");
    // Back to its own address: clear again.
    sb.sh_ok("ip -n a route replace default via 10.31.0.1 dev eth0 src 10.31.0.2");
    assert!(sb.pings("a", "203.0.113.2"));
    assert!(sb.nsnet(&["doctor", "a", "203.0.113.2"]).status.success());
}
