//! Conntrack flushing (`nsnet::firewall::conntrack`) against a real kernel.
//!
//! The API is a library call, so it has to run inside the sandbox: each test builds
//! a sandbox with a peer namespace behind a veth pair and an nftables rule that
//! makes the sandbox track its connections, sends real packets so that entries
//! exist, and then runs this same test binary again inside the sandbox (`--exact
//! NAME`) with `NSNET_CT_CHILD` set to the sandbox's network namespace inode. The
//! child makes the library calls and prints their results; the parent reads the
//! kernel's table back independently, from `/proc/net/nf_conntrack`.

mod common;

use common::Sandbox;
use nsnet::firewall::conntrack::{Conntrack, Filter};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

const CHILD: &str = "NSNET_CT_CHILD";
const STEPS: &str = "NSNET_CT_STEPS";
const UDP: u8 = 17;
const TCP: u8 = 6;

/// The sandbox ("host", 192.0.2.1 and 2001:db8::1) and namespace `peer`
/// (192.0.2.2-3, 2001:db8::2-3) on one veth pair; an output-hook rule with a
/// conntrack expression so the sandbox's flows get entries.
const SETUP: &str = "set -e
ip netns add peer
ip link add veth0 type veth peer name veth1 netns peer
ip addr add 192.0.2.1/24 dev veth0
ip addr add 2001:db8::1/64 dev veth0 nodad
ip link set veth0 up
ip -n peer link set lo up
ip -n peer addr add 192.0.2.2/24 dev veth1
ip -n peer addr add 192.0.2.3/24 dev veth1
ip -n peer addr add 2001:db8::2/64 dev veth1 nodad
ip -n peer addr add 2001:db8::3/64 dev veth1 nodad
ip -n peer link set veth1 up
nft add table inet t
nft add chain inet t out '{ type filter hook output priority 0; }'
nft add rule inet t out ct state new counter";

/// One line of `/proc/net/nf_conntrack`, original direction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    zone: u16,
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.sh_ok(SETUP);
    sb
}

/// The sandbox's conntrack table, read without ctnetlink.
fn table(sb: &Sandbox) -> Vec<Line> {
    let text = sb.sh_ok("cat /proc/net/nf_conntrack");
    text.lines().filter_map(parse_line).collect()
}

/// `ipv4 2 udp 17 29 src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. ... zone=0 use=2`:
/// the first src/dst/sport/dport are the original direction's.
fn parse_line(line: &str) -> Option<Line> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let proto = fields.get(3)?.parse().ok()?;
    let first = |key: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    Some(Line {
        proto,
        src: first("src")?.parse().ok()?,
        dst: first("dst")?.parse().ok()?,
        sport: first("sport")?.parse().ok()?,
        dport: first("dport")?.parse().ok()?,
        zone: first("zone")
            .or_else(|| first("zone-orig"))
            .and_then(|z| z.parse().ok())
            .unwrap_or(0),
    })
}

/// Sends one UDP datagram from the sandbox, from `sport` to `dst`:`dport`.
fn udp(sb: &Sandbox, dst: &str, dport: u16, sport: u16) {
    let (kind, host) = if dst.contains(':') {
        ("UDP6", format!("[{dst}]"))
    } else {
        ("UDP4", dst.to_owned())
    };
    sb.sh_ok(&format!(
        "echo x | socat -u - {kind}-SENDTO:{host}:{dport},sourceport={sport}"
    ));
}

fn count(table: &[Line], pred: impl Fn(&Line) -> bool) -> usize {
    table.iter().filter(|l| pred(l)).count()
}

/// True in the child, after making sure it runs in the sandbox the parent made.
fn in_child() -> bool {
    let Ok(sandbox) = std::env::var(CHILD) else {
        return false;
    };
    let here = std::fs::metadata("/proc/self/ns/net")
        .expect("own netns")
        .ino();
    assert_eq!(sandbox, here.to_string(), "not inside the test sandbox");
    true
}

/// Runs test `name` inside the sandbox with `steps` (see [`child_main`]); returns
/// the lines the child printed after `NSNET_CT `.
fn run_child(sb: &Sandbox, name: &str, steps: &str) -> Vec<String> {
    let netns = sb.sh_ok("stat -L -c %i /proc/self/ns/net");
    let exe = std::env::current_exe().expect("test binary path");
    let out = sb
        .command(exe.to_str().expect("UTF-8 test binary path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, netns.trim())
        .env(STEPS, steps)
        .output()
        .expect("running the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "child {name} ran no test:\n{stdout}"
    );
    // libtest prints "test NAME ... " before the test's own output.
    stdout
        .lines()
        .filter_map(|l| l.split_once("NSNET_CT ").map(|(_, rest)| rest.to_owned()))
        .collect()
}

/// The child: runs the `;`-separated steps of `NSNET_CT_STEPS` in the sandbox:
/// `send DST DPORT FIRST_SPORT N` sends one UDP datagram from each of N source
/// ports; `delete PROTO PORT DADDR|*` calls `delete_matching` and prints
/// `deleted N in US us`.
fn child_main() {
    let steps = std::env::var(STEPS).expect("NSNET_CT_STEPS");
    let mut ct: Option<Conntrack> = None;
    for step in steps.split(';') {
        match step.split_whitespace().collect::<Vec<_>>()[..] {
            ["send", dst, dport, first, n] => {
                let dst: IpAddr = dst.parse().expect("send: address");
                let dport: u16 = dport.parse().expect("send: port");
                let first: u16 = first.parse().expect("send: first port");
                let any: IpAddr = if dst.is_ipv4() {
                    Ipv4Addr::UNSPECIFIED.into()
                } else {
                    Ipv6Addr::UNSPECIFIED.into()
                };
                for sport in first..first + n.parse::<u16>().expect("send: count") {
                    let sock = UdpSocket::bind((any, sport)).expect("binding a UDP socket");
                    sock.send_to(b"x", (dst, dport))
                        .expect("sending a datagram");
                }
            }
            ["delete", proto, port, daddr] => {
                let filter = Filter {
                    l4proto: proto.parse().expect("delete: protocol"),
                    dport: port.parse().expect("delete: port"),
                    daddr: (daddr != "*").then(|| daddr.parse().expect("delete: address")),
                };
                let ct = ct.get_or_insert_with(|| Conntrack::new().expect("ctnetlink socket"));
                let start = Instant::now();
                let n = ct.delete_matching(&filter).expect("delete_matching");
                let us = start.elapsed().as_micros();
                println!("NSNET_CT deleted {n} in {us} us");
            }
            _ => panic!("bad step {step:?}"),
        }
    }
}

/// Runs `delete` steps in the sandbox (one socket for all); returns the counts.
fn delete(sb: &Sandbox, test: &str, filters: &[(u8, u16, &str)]) -> Vec<usize> {
    let steps: Vec<String> = filters
        .iter()
        .map(|(proto, port, daddr)| format!("delete {proto} {port} {daddr}"))
        .collect();
    run_child(sb, test, &steps.join(";"))
        .iter()
        .map(|l| {
            l.strip_prefix("deleted ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bad child line {l:?}"))
        })
        .collect()
}

/// Matches UDP entries to `dst`:`port`.
fn udp_to(dst: &str, port: u16) -> impl Fn(&Line) -> bool {
    let dst: IpAddr = dst.parse().expect("an address");
    move |l| l.proto == UDP && l.dport == port && l.dst == dst
}

#[test]
fn deleting_a_udp_port_removes_its_entries_and_keeps_the_rest() {
    if in_child() {
        return child_main();
    }
    let sb = sandbox();
    for (dst, dport, sport) in [
        ("192.0.2.2", 5353, 40001),
        ("192.0.2.2", 5353, 40002),
        ("192.0.2.3", 5353, 40001),
        ("2001:db8::2", 5353, 40001),
        ("2001:db8::3", 5353, 40002),
        ("192.0.2.2", 5354, 40001),
        ("2001:db8::2", 5354, 40001),
    ] {
        udp(&sb, dst, dport, sport);
    }
    let _server = sb.tcp_echo_peer("peer", "192.0.2.2", 5353);
    assert!(sb.tcp_ask("host", "192.0.2.2", 5353).is_some());
    let before = table(&sb);
    let to_port = |l: &Line| l.proto == UDP && l.dport == 5353;
    assert_eq!(count(&before, to_port), 5, "{before:#?}");
    assert_eq!(count(&before, |l| l.proto == TCP && l.dport == 5353), 1);

    let deleted = delete(
        &sb,
        "deleting_a_udp_port_removes_its_entries_and_keeps_the_rest",
        &[(UDP, 5353, "*")],
    );

    assert_eq!(deleted, [5]);
    let after = table(&sb);
    assert_eq!(count(&after, to_port), 0, "{after:#?}");
    assert_eq!(
        count(&after, |l| l.proto == UDP && l.dport == 5354),
        2,
        "{after:#?}"
    );
    assert_eq!(
        count(&after, |l| l.proto == TCP && l.dport == 5353),
        1,
        "{after:#?}"
    );
}

#[test]
fn a_host_address_restricts_the_delete_to_entries_to_it() {
    if in_child() {
        return child_main();
    }
    let sb = sandbox();
    for dst in ["192.0.2.2", "192.0.2.3", "2001:db8::2", "2001:db8::3"] {
        udp(&sb, dst, 6000, 40001);
    }
    assert_eq!(count(&table(&sb), |l| l.dport == 6000), 4);

    // The kernel's own IPv6 address filter matches inverted (Linux 6.18): the
    // second delete is the regression test for not relying on it.
    let deleted = delete(
        &sb,
        "a_host_address_restricts_the_delete_to_entries_to_it",
        &[(UDP, 6000, "192.0.2.2"), (UDP, 6000, "2001:db8::3")],
    );

    assert_eq!(deleted, [1, 1]);
    let after = table(&sb);
    assert_eq!(count(&after, udp_to("192.0.2.2", 6000)), 0, "{after:#?}");
    assert_eq!(count(&after, udp_to("2001:db8::3", 6000)), 0, "{after:#?}");
    assert_eq!(count(&after, udp_to("192.0.2.3", 6000)), 1, "{after:#?}");
    assert_eq!(count(&after, udp_to("2001:db8::2", 6000)), 1, "{after:#?}");
}

#[test]
fn nothing_matching_deletes_nothing() {
    if in_child() {
        return child_main();
    }
    let sb = sandbox();
    let name = "nothing_matching_deletes_nothing";
    // An empty table: both dumps return nothing at all.
    assert_eq!(count(&table(&sb), |l| l.proto == UDP), 0);
    assert_eq!(delete(&sb, name, &[(UDP, 7000, "*")]), [0]);

    udp(&sb, "192.0.2.2", 7001, 40001);
    udp(&sb, "2001:db8::2", 7001, 40001);
    let _server = sb.tcp_echo_peer("peer", "192.0.2.2", 7000);
    assert!(sb.tcp_ask("host", "192.0.2.2", 7000).is_some());
    let before = table(&sb);
    assert_eq!(count(&before, |l| l.dport == 7000 || l.dport == 7001), 3);

    let deleted = delete(
        &sb,
        name,
        &[(UDP, 7000, "*"), (UDP, 7001, "192.0.2.3"), (132, 7001, "*")],
    );

    assert_eq!(deleted, [0, 0, 0]);
    let after = table(&sb);
    assert_eq!(count(&after, |l| l.dport == 7000 || l.dport == 7001), 3);
}

#[test]
fn entries_in_a_conntrack_zone_are_deleted() {
    if in_child() {
        return child_main();
    }
    let sb = sandbox();
    // Zone 5 for both directions (CTA_ZONE), zone 6 for the original direction
    // only (CTA_TUPLE_ZONE): a delete that does not name the zone misses them.
    sb.sh_ok(
        "nft add chain inet t raw '{ type filter hook output priority raw; }'
         nft add rule inet t raw ip daddr 192.0.2.2 udp dport 8000 ct zone set 5
         nft add rule inet t raw ip daddr 192.0.2.3 udp dport 8000 ct original zone set 6",
    );
    udp(&sb, "192.0.2.2", 8000, 40001);
    udp(&sb, "192.0.2.3", 8000, 40001);
    udp(&sb, "2001:db8::2", 8000, 40001);
    let before = table(&sb);
    assert_eq!(count(&before, udp_to("192.0.2.2", 8000)), 1, "{before:#?}");
    let zones: Vec<u16> = before
        .iter()
        .filter(|l| l.dport == 8000)
        .map(|l| l.zone)
        .collect();
    assert!(zones.contains(&5) && zones.contains(&6), "{before:#?}");

    let deleted = delete(
        &sb,
        "entries_in_a_conntrack_zone_are_deleted",
        &[(UDP, 8000, "*")],
    );

    assert_eq!(deleted, [3]);
    assert_eq!(count(&table(&sb), |l| l.dport == 8000), 0);
}

/// 5000 entries, 1000 of them to the port: a dump of many datagrams and many
/// windows of pipelined deletes. Prints the time `delete_matching` took.
#[test]
fn deletes_1000_of_5000_entries() {
    if in_child() {
        return child_main();
    }
    let sb = sandbox();
    let name = "deletes_1000_of_5000_entries";
    run_child(
        &sb,
        name,
        "send 192.0.2.2 9000 20000 500;send 2001:db8::2 9000 20000 500;\
         send 192.0.2.2 9001 20000 2000;send 2001:db8::2 9001 20000 2000",
    );
    let before = table(&sb);
    assert_eq!(count(&before, |l| l.dport == 9000), 1000);
    assert_eq!(count(&before, |l| l.dport == 9001), 4000);

    let out = run_child(&sb, name, "delete 17 9000 *");

    eprintln!("deleting 1000 of 5000 entries: {out:?}");
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("deleted 1000 in "), "{out:?}");
    let after = table(&sb);
    assert_eq!(count(&after, |l| l.dport == 9000), 0);
    assert_eq!(count(&after, |l| l.dport == 9001), 4000);
}
