//! Routing beyond one network: replies of a namespace on two networks (source
//! routing inside it), and the host's own IPv6 default route learned from
//! router adverts when nsnet turns forwarding on.

mod common;
use common::Sandbox;
use serde_json::{json, Value};

/// The host's reverse-path filters: `rp_filter=1` for IPv4, and for IPv6 the
/// nftables rule firewalld installs (neighbour discovery from `::` exempt).
fn strict_reverse_path(sb: &Sandbox) {
    sb.sh_ok(
        "sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 && \
         nft -f - <<'EOF'
table inet rpf {
  chain pre {
    type filter hook prerouting priority -300;
    icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept
    meta nfproto ipv6 fib saddr . iif oif missing drop
  }
}
EOF",
    );
}

/// nsnet's source routing rules in namespace `ns`, as `FAMILY from ADDR lookup TABLE`.
fn source_rules(sb: &Sandbox, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let rules = sb.json(&format!("ip -n {ns} {family} -j rule"));
        for r in rules.as_array().expect("ip -j rule is a list") {
            if r["priority"] == 32000 {
                out.push(format!(
                    "{family} from {} lookup {}",
                    r["src"].as_str().unwrap_or("all"),
                    r["table"]
                ));
            }
        }
    }
    out
}

/// The routes of table `table` in `ns`, as `DST via GW dev DEV`.
fn table_routes(sb: &Sandbox, ns: &str, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let routes = sb.json(&format!("ip -n {ns} {family} -j route show table {table}"));
        for r in routes.as_array().expect("ip -j route is a list") {
            out.push(format!(
                "{} via {} dev {}",
                r["dst"].as_str().unwrap_or_default(),
                r["gateway"].as_str().unwrap_or("-"),
                r["dev"].as_str().unwrap_or_default()
            ));
        }
    }
    out.sort();
    out
}

/// A UDP server in `ns` bound to `addr` (so it answers from the address it was
/// asked at, as servers bound to their addresses, or using IP_PKTINFO, do).
fn udp_server_at(sb: &Sandbox, ns: &str, addr: &str, port: u16, reply: &str) -> common::Background {
    let (kind, bind) = if addr.contains(':') {
        ("UDP6", format!("[{addr}]"))
    } else {
        ("UDP4", addr.to_owned())
    };
    let child = sb.spawn(&format!(
        "exec ip netns exec {ns} socat {kind}-RECVFROM:{port},bind={bind},fork,reuseaddr \
         SYSTEM:'echo {reply}'"
    ));
    sb.wait_for(&format!("a UDP socket on {addr}:{port} in {ns}"), || {
        sb.sh(&format!(
            "ip netns exec {ns} ss -Huln 'sport = :{port}' | grep -q ."
        ))
        .status
        .success()
    });
    child
}

/// Asks the published ports 8080/tcp and 5300/udp of the sandbox host from
/// `outside`, over IPv4 and IPv6; returns what failed.
fn ask_published(sb: &Sandbox) -> Vec<String> {
    let mut failed = Vec::new();
    for host in ["203.0.113.1", "[2001:db8:1::1]"] {
        let tcp = sb.tcp_ask("outside", host, 8080);
        if tcp.as_deref() != Some("c") {
            failed.push(format!("TCP {host}:8080 answered {tcp:?}"));
        }
        let udp = sb.udp_ask_retry("outside", host, 5300, None);
        if udp.as_deref() != Some("c") {
            failed.push(format!("UDP {host}:5300 answered {udp:?}"));
        }
    }
    failed
}

#[test]
fn a_port_published_on_a_namespaces_second_network_answers_through_that_network() {
    let sb = Sandbox::with_outside();
    strict_reverse_path(&sb);
    sb.netns(&["c"]);
    sb.ok(&[
        "network",
        "create",
        "a",
        "--subnet",
        "10.30.0.0/24",
        "--subnet",
        "fd00:30::/64",
    ]);
    sb.ok(&[
        "network",
        "create",
        "b",
        "--subnet",
        "10.31.0.0/24",
        "--subnet",
        "fd00:31::/64",
    ]);
    sb.ok(&["network", "connect", "a", "c"]);
    sb.ok(&[
        "network",
        "connect",
        "b",
        "c",
        "--ip",
        "10.31.0.10",
        "--ip",
        "fd00:31::10",
        "-p",
        "8080:80",
        "-p",
        "5300:53/udp",
    ]);
    let _tcp = sb.tcp_server("c", 80, "c");
    let _udp4 = udp_server_at(&sb, "c", "10.31.0.10", 53, "c");
    let _udp6 = udp_server_at(&sb, "c", "fd00:31::10", 53, "c");
    assert_eq!(ask_published(&sb), Vec::<String>::new());

    // The first network keeps the namespace's way out; the second answers
    // from its own table.
    let rules = source_rules(&sb, "c");
    assert_eq!(rules.len(), 2, "{rules:?}");
    let table = rules[0].rsplit(' ').next().unwrap().to_owned();
    assert_eq!(
        rules,
        [
            format!("-4 from 10.31.0.10 lookup {table}"),
            format!("-6 from fd00:31::10 lookup {table}"),
        ]
    );
    let dev = sb.sh_ok("ip -n c -j addr show to 10.31.0.10");
    let dev: Value = serde_json::from_str(&dev).unwrap();
    let dev = dev[0]["ifname"].as_str().unwrap().to_owned();
    assert_eq!(
        table_routes(&sb, "c", &table),
        [
            format!("10.31.0.0/24 via - dev {dev}"),
            format!("default via 10.31.0.1 dev {dev}"),
            format!("default via fd00:31::1 dev {dev}"),
            format!("fd00:31::/64 via - dev {dev}"),
        ]
    );
    let default = sb.json("ip -n c -4 -j route show default");
    assert_eq!(default[0]["gateway"], "10.30.0.1", "{default}");
    assert_eq!(sb.ok(&["check"]).trim(), "", "nsnet check sees no drift");
    let doctor = sb.ok(&["doctor", "c", "outside"]);
    assert!(!doctor.contains("policy routing"), "{doctor}");

    // Disconnecting leaves no rule behind in the namespace that stays.
    sb.ok(&["network", "disconnect", "b", "c"]);
    assert_eq!(source_rules(&sb, "c"), Vec::<String>::new());
    assert_eq!(sb.ok(&["check"]).trim(), "");
}

#[test]
fn check_reports_a_deleted_source_rule() {
    let sb = Sandbox::new();
    sb.netns(&["c"]);
    sb.ok(&["network", "create", "a", "--subnet", "10.30.0.0/24"]);
    sb.ok(&["network", "create", "b", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "a", "c"]);
    sb.ok(&["network", "connect", "b", "c", "--ip", "10.31.0.10"]);
    sb.sh_ok("ip -n c rule del from 10.31.0.10 priority 32000");
    let out = sb.nsnet(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rule from 10.31.0.10 lookup") && text.contains("is missing from c"),
        "{text}"
    );
}

#[test]
fn the_rules_go_with_every_teardown_while_the_namespace_lives() {
    let sb = Sandbox::new();
    sb.netns(&["c"]);
    sb.ok(&["network", "create", "a", "--subnet", "10.30.0.0/24"]);
    sb.ok(&[
        "network",
        "create",
        "b",
        "--subnet",
        "10.31.0.0/24",
        "--subnet",
        "fd00:31::/64",
    ]);
    sb.ok(&["network", "connect", "a", "c"]);
    // `network rm --force` tears its endpoints down.
    sb.ok(&["network", "connect", "b", "c"]);
    assert_eq!(
        source_rules(&sb, "c").len(),
        1,
        "IPv4 only: c has no IPv6 default route"
    );
    sb.ok(&["network", "rm", "--force", "b"]);
    assert_eq!(source_rules(&sb, "c"), Vec::<String>::new());
    // gc releases an endpoint whose interface someone deleted.
    sb.ok(&["network", "create", "b", "--subnet", "10.31.0.0/24"]);
    sb.ok(&["network", "connect", "b", "c", "--ifname", "eth9"]);
    assert_eq!(source_rules(&sb, "c").len(), 1);
    sb.sh_ok("ip -n c link del eth9");
    sb.ok(&["gc"]);
    assert_eq!(source_rules(&sb, "c"), Vec::<String>::new());
}

/// One CNI call for container `cid` in `/run/netns/c` with interface `ifname`.
fn cni(sb: &Sandbox, command: &str, cid: &str, ifname: &str, conf: &Value) -> Value {
    let out = sb.cni(
        &[
            ("CNI_COMMAND", Some(command)),
            ("CNI_CONTAINERID", Some(cid)),
            ("CNI_NETNS", Some("/run/netns/c")),
            ("CNI_IFNAME", Some(ifname)),
        ],
        &conf.to_string(),
    );
    assert!(
        out.status.success(),
        "CNI {command} {cid}: {} / {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[test]
fn a_cni_attachments_published_port_on_a_second_network_answers_through_it() {
    let sb = Sandbox::with_outside();
    strict_reverse_path(&sb);
    sb.netns(&["c"]);
    let conf = |name: &str, v4: &str, v6: &str, ports: Value| {
        json!({"cniVersion": "1.0.0", "name": name, "type": "nsnet",
            "ipam": {"ranges": [[{"subnet": v4}], [{"subnet": v6}]],
                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]},
            "runtimeConfig": {"portMappings": ports}})
    };
    let a = conf("ca", "10.40.0.0/24", "fd00:40::/64", json!([]));
    let b = conf(
        "cb",
        "10.41.0.0/24",
        "fd00:41::/64",
        json!([{"hostPort": 8080, "containerPort": 80},
               {"hostPort": 5300, "containerPort": 53, "protocol": "udp"}]),
    );
    cni(&sb, "ADD", "ca1", "eth0", &a);
    let result = cni(&sb, "ADD", "cb1", "eth1", &b);
    let ips: Vec<String> = result["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .map(|i| {
            i["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let _tcp = sb.tcp_server("c", 80, "c");
    let _udp: Vec<_> = ips
        .iter()
        .map(|ip| udp_server_at(&sb, "c", ip, 53, "c"))
        .collect();
    assert_eq!(ask_published(&sb), Vec::<String>::new());
    assert_eq!(source_rules(&sb, "c").len(), 2);
    cni(&sb, "DEL", "cb1", "eth1", &b);
    assert_eq!(source_rules(&sb, "c"), Vec::<String>::new());
}

/// The sandbox host's IPv6 default routes learned from router adverts, as
/// `GATEWAY dev DEV`.
fn advert_routes(sb: &Sandbox) -> Vec<String> {
    let routes = sb.json("ip -6 -j route show default proto ra");
    let routes = routes.as_array().expect("ip -j route is a list");
    let show = |r: &Value| {
        format!(
            "{} dev {}",
            r["gateway"].as_str().unwrap_or("-"),
            r["dev"].as_str().unwrap_or("-")
        )
    };
    routes.iter().map(show).collect()
}

/// Sends a router advert (router lifetime 1800 s, no prefix) from namespace
/// `uplink` out of `up1` to all nodes, with a raw ICMPv6 socket, until the
/// sandbox host has learned a default route from it.
fn advertise_until_learned(sb: &Sandbox) {
    const ADVERT: &str = "import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
# type 134, code 0, checksum (the kernel's), hop limit, flags, router lifetime, timers
ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)
s.sendto(ra, ('ff02::1', 0, 0, socket.if_nametoindex('up1')))";
    let mut tries = 0;
    sb.wait_for("a default route learned from the advert", || {
        // Until up1's link-local address exists the send fails: try again.
        if tries % 10 == 0 {
            sb.sh(&format!("ip netns exec uplink python3 -c \"{ADVERT}\""));
        }
        tries += 1;
        !advert_routes(sb).is_empty()
    });
}

fn sysctl(sb: &Sandbox, key: &str) -> String {
    sb.sh_ok(&format!("sysctl -n {key}")).trim().to_owned()
}

#[test]
fn turning_on_ipv6_forwarding_keeps_the_hosts_default_route_from_router_adverts() {
    let sb = Sandbox::new();
    sb.netns(&["uplink", "c", "d"]);
    // The host's uplink, with a router on the other side; two more interfaces
    // whose accept_ra the admin chose.
    sb.sh_ok(
        "ip link add up0 type veth peer name up1 netns uplink && \
         sysctl -qw net.ipv6.conf.up0.accept_dad=0 && \
         ip netns exec uplink sysctl -qw net.ipv6.conf.up1.accept_dad=0 && \
         ip link set up0 up && ip -n uplink link set up1 up && \
         ip link add off0 type veth peer name off1 netns d && sysctl -qw net.ipv6.conf.off0.accept_ra=0 && \
         ip link add always0 type veth peer name always1 netns d && sysctl -qw net.ipv6.conf.always0.accept_ra=2",
    );
    assert_eq!(sysctl(&sb, "net.ipv6.conf.all.forwarding"), "0");
    advertise_until_learned(&sb);
    let learned = advert_routes(&sb);
    assert_eq!(learned.len(), 1, "{learned:?}");

    // An IPv4-only network turns on IPv4 forwarding only: nothing changes.
    sb.ok(&["network", "create", "v4", "--subnet", "10.50.0.0/24"]);
    sb.ok(&["network", "connect", "v4", "d"]);
    assert_eq!(sysctl(&sb, "net.ipv6.conf.up0.accept_ra"), "1");
    assert_eq!(sysctl(&sb, "net.ipv6.conf.all.forwarding"), "0");

    sb.ok(&[
        "network",
        "create",
        "ds",
        "--subnet",
        "10.51.0.0/24",
        "--subnet",
        "fd00:51::/64",
    ]);
    sb.ok(&["network", "connect", "ds", "c"]);
    assert_eq!(sysctl(&sb, "net.ipv6.conf.all.forwarding"), "1");
    assert_eq!(advert_routes(&sb), learned, "the host kept its route");
    let accept_ra = |dev: &str| sysctl(&sb, &format!("net.ipv6.conf.{dev}.accept_ra"));
    assert_eq!(accept_ra("up0"), "2");
    assert_eq!(accept_ra("off0"), "0", "the admin's 0 stays");
    assert_eq!(accept_ra("always0"), "2");
    assert_eq!(accept_ra("lo"), "1");
    assert_eq!(
        accept_ra("nsbr-ds"),
        "1",
        "no advert from an endpoint is taken"
    );
    assert_eq!(accept_ra("nsbr-v4"), "1");
    assert_eq!(sb.sh_ok("cat /run/nsnet/accept_ra"), "up0\n");

    // Later adverts are still taken: the route comes back after it is deleted.
    sb.sh_ok("ip -6 route del default proto ra dev up0");
    advertise_until_learned(&sb);
    assert_eq!(advert_routes(&sb), learned);
}
