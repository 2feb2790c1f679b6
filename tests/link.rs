//! `nsnet link`: veth pairs between namespaces.

mod common;
use common::Sandbox;
use serde_json::Value;

fn two_namespaces() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    sb.ok(&["netns", "add", "b"]);
    sb
}

/// `ip -j addr show dev IF` in namespace `ns` (`host` for the sandbox itself).
fn addr_json(sb: &Sandbox, ns: &str, ifname: &str) -> Value {
    let prefix = if ns == "host" {
        String::new()
    } else {
        format!("-n {ns} ")
    };
    let v = sb.json(&format!("ip {prefix}-j addr show dev {ifname}"));
    v[0].clone()
}

fn has_addr(link: &Value, local: &str, prefixlen: u64) -> bool {
    link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"] == local && a["prefixlen"] == prefixlen)
}

fn is_up(link: &Value) -> bool {
    link["flags"].as_array().unwrap().iter().any(|f| f == "UP")
}

#[test]
fn link_add_joins_two_namespaces_that_ping_each_other() {
    let sb = two_namespaces();
    let out = sb.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--addr",
        "10.0.0.100/24",
        "--peer-addr",
        "10.0.0.101/24",
    ]);
    assert_eq!(out, "veth-b (a) <-> veth-a (b)\n");
    let a = addr_json(&sb, "a", "veth-b");
    assert!(has_addr(&a, "10.0.0.100", 24), "{a}");
    assert!(is_up(&a), "{a}");
    let b = addr_json(&sb, "b", "veth-a");
    assert!(has_addr(&b, "10.0.0.101", 24), "{b}");
    assert!(is_up(&b), "{b}");
    // Both ends are one pair: each names the other's index as its link.
    assert_eq!(a["link_index"], b["ifindex"]);
    assert_eq!(b["link_index"], a["ifindex"]);
    for ns in ["a", "b"] {
        assert!(is_up(&addr_json(&sb, ns, "lo")), "lo down in {ns}");
    }
    sb.ok(&[
        "netns",
        "exec",
        "a",
        "--",
        "ping",
        "-c1",
        "-W1",
        "10.0.0.101",
    ]);
    sb.ok(&[
        "netns",
        "exec",
        "b",
        "--",
        "ping",
        "-c1",
        "-W1",
        "10.0.0.100",
    ]);
}

#[test]
fn link_add_with_names_mtu_and_ipv6() {
    let sb = two_namespaces();
    sb.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--name",
        "eth1",
        "--peer-name",
        "eth2",
        "--addr",
        "fd00:1::1/64",
        "--peer-addr",
        "fd00:1::2/64",
        "--mtu",
        "1400",
    ]);
    let a = addr_json(&sb, "a", "eth1");
    let b = addr_json(&sb, "b", "eth2");
    assert_eq!(a["mtu"], 1400);
    assert_eq!(b["mtu"], 1400);
    assert!(has_addr(&a, "fd00:1::1", 64), "{a}");
    assert!(has_addr(&b, "fd00:1::2", 64), "{b}");
    sb.ok(&[
        "netns",
        "exec",
        "a",
        "--",
        "ping",
        "-6",
        "-c1",
        "-W1",
        "fd00:1::2",
    ]);
}

#[test]
fn link_add_to_host_puts_one_end_in_the_sandbox_itself() {
    let sb = two_namespaces();
    sb.ok(&[
        "link",
        "add",
        "host",
        "a",
        "--addr",
        "10.9.0.1/30",
        "--peer-addr",
        "10.9.0.2/30",
    ]);
    assert_eq!(sb.links("host"), ["lo", "veth-a"]);
    assert_eq!(sb.links("a"), ["lo", "veth-host"]);
    sb.sh_ok("ping -c1 -W1 10.9.0.2");
}

#[test]
fn default_names_stay_unique_when_linking_the_same_pair_again() {
    let sb = two_namespaces();
    sb.ok(&["link", "add", "a", "b"]);
    assert_eq!(
        sb.ok(&["link", "add", "a", "b"]),
        "veth-b1 (a) <-> veth-a1 (b)\n"
    );
    assert_eq!(sb.links("a"), ["lo", "veth-b", "veth-b1"]);
    assert_eq!(sb.links("b"), ["lo", "veth-a", "veth-a1"]);
}

#[test]
fn default_names_are_cut_to_fifteen_bytes_for_long_namespace_names() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a-rather-long-namespace"]);
    sb.ok(&["netns", "add", "b"]);
    sb.ok(&["link", "add", "b", "a-rather-long-namespace"]);
    assert_eq!(sb.links("b"), ["lo", "veth-a-rather-l"]);
}

#[test]
fn link_del_deletes_both_ends() {
    let sb = two_namespaces();
    sb.ok(&["link", "add", "a", "b"]);
    sb.ok(&["link", "del", "a", "veth-b"]);
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.links("b"), ["lo"]);
    sb.fails(
        &["link", "del", "a", "veth-b"],
        "interface veth-b does not exist",
    );
}

#[test]
fn link_del_refuses_what_is_not_a_veth() {
    let sb = two_namespaces();
    sb.fails(&["link", "del", "a", "lo"], "interface lo is not a veth");
    sb.sh_ok("ip -n a link add br9 type bridge");
    sb.fails(&["link", "del", "a", "br9"], "not a veth (it is a bridge)");
    assert_eq!(sb.links("a"), ["br9", "lo"]);
}

#[test]
fn an_interface_name_over_fifteen_bytes_is_refused() {
    let sb = two_namespaces();
    sb.fails(
        &["link", "add", "a", "b", "--name", "abcdefghijklmnop"],
        "interface name \"abcdefghijklmnop\" is too long (16 bytes, at most 15)",
    );
    sb.fails(
        &["link", "add", "a", "b", "--peer-name", "a/b"],
        "contains '/'",
    );
    sb.fails(
        &["link", "add", "a", "b", "--name", ""],
        "interface name is empty",
    );
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.links("b"), ["lo"]);
}

#[test]
fn an_existing_interface_name_is_refused_and_nothing_is_made() {
    let sb = two_namespaces();
    sb.ok(&["link", "add", "a", "b", "--name", "x", "--peer-name", "y"]);
    sb.fails(
        &["link", "add", "a", "b", "--name", "x", "--peer-name", "z"],
        "namespace a: interface x already exists",
    );
    sb.fails(
        &["link", "add", "a", "b", "--name", "z", "--peer-name", "y"],
        "namespace b: interface y already exists",
    );
    assert_eq!(sb.links("a"), ["lo", "x"]);
    assert_eq!(sb.links("b"), ["lo", "y"]);
    sb.fails(
        &["link", "add", "a", "a", "--name", "p", "--peer-name", "p"],
        "cannot both be named p",
    );
    assert_eq!(sb.links("a"), ["lo", "x"]);
}

#[test]
fn bad_addresses_and_mtu_are_refused_before_anything_is_made() {
    let sb = two_namespaces();
    for (args, msg) in [
        (vec!["--addr", "10.0.0.0/24"], "network address"),
        (vec!["--addr", "10.0.0.255/24"], "broadcast address"),
        (vec!["--addr", "10.0.0.1/33"], "invalid value"),
        (vec!["--addr", "nonsense"], "invalid value"),
        (
            vec!["--addr", "10.0.0.1/24", "--peer-addr", "10.0.0.1/24"],
            "same address",
        ),
        (vec!["--mtu", "10"], "MTU 10 is out of range"),
        (
            vec!["--mtu", "1000", "--addr", "fd00::1/64"],
            "too small for IPv6",
        ),
    ] {
        let mut full = vec!["link", "add", "a", "b"];
        full.extend(args);
        sb.fails(&full, msg);
    }
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.links("b"), ["lo"]);
}

#[test]
fn a_failure_after_the_veth_exists_rolls_it_back() {
    let sb = two_namespaces();
    // The kernel refuses IPv6 addresses on new interfaces in b, so the second
    // address fails after the veth and the first address were made.
    sb.sh_ok("ip netns exec b sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
    let out = sb.nsnet(&[
        "link",
        "add",
        "a",
        "b",
        "--addr",
        "fd00:2::1/64",
        "--peer-addr",
        "fd00:2::2/64",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("namespace b: adding address fd00:2::2/64"),
        "{stderr}"
    );
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.links("b"), ["lo"]);
}
