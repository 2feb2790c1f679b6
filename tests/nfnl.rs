//! The nf_tables element client (`nsnet::firewall::nfnl`) against a real kernel.
//!
//! nfnl is a library API, so the calls have to run inside the sandbox: each test
//! builds a sandbox with nsnet's base table, then runs this same test binary again
//! inside it (`--exact NAME`) with `NSNET_NFNL_CHILD` set to the sandbox's network
//! namespace inode. In that child the test takes the library path (and refuses to
//! run anywhere else); back in the parent it reads the kernel's state with `nft -j`.

mod common;

use common::Sandbox;
use nsnet::firewall::nfnl::{self, Batch, Element, Nftables, Verdict, NFPROTO_INET};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Instant;

const CHILD: &str = "NSNET_NFNL_CHILD";
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const EMSGSIZE: i32 = 90;

const RULESET: &str = "table inet nsnet {
    set bridges { type ifname; }
    map ports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
    map vm { type ifname : verdict; }
    chain c {}
}";

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

/// Makes a sandbox with the base ruleset and runs test `name` inside it.
fn run_child(name: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.sh_ok(&format!("nft -f - <<'EOF'\n{RULESET}\nEOF"));
    let netns = sb.sh_ok("stat -L -c %i /proc/self/ns/net");
    let exe = std::env::current_exe().expect("test binary path");
    let out = sb
        .command(exe.to_str().expect("UTF-8 test binary path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, netns.trim())
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
        "child ran no test {name}:\n{stdout}"
    );
    // Timings the child printed (libtest may put them after "test NAME ... ").
    for line in stdout
        .lines()
        .filter_map(|l| l.find("nfnl:").map(|i| &l[i..]))
    {
        eprintln!("{line}");
    }
    sb
}

/// The `elem` list of `nft -j list set|map inet nsnet NAME` output, sorted (the
/// kernel lists hash sets in no particular order); empty when there are none.
fn elems_of(json: &Value, kind: &str) -> Value {
    let items = json["nftables"].as_array();
    let set = items.and_then(|items| items.iter().find_map(|i| i.get(kind)));
    let set = set.unwrap_or_else(|| panic!("no {kind} in {json}"));
    let mut elems = set["elem"].as_array().cloned().unwrap_or_default();
    elems.sort_by_key(|e| e.to_string());
    Value::Array(elems)
}

fn listed(sb: &Sandbox, kind: &str, name: &str) -> Value {
    elems_of(
        &sb.json(&format!("nft -j list {kind} inet nsnet {name}")),
        kind,
    )
}

/// The same, from inside the child.
fn listed_here(kind: &str, name: &str) -> Value {
    let out = Command::new("nft")
        .args(["-j", "list", kind, "inet", "nsnet", name])
        .output()
        .expect("running nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elems_of(
        &serde_json::from_slice(&out.stdout).expect("nft JSON"),
        kind,
    )
}

fn count_here(kind: &str, name: &str) -> usize {
    listed_here(kind, name).as_array().map_or(0, Vec::len)
}

fn bridge(name: &str) -> Element {
    Element::new(nfnl::ifname(name))
}

/// `ip . proto . port : ip . port`, as in a port-mapping map.
fn mapping(n: u32, proto: u8, port: u16, to: Ipv4Addr, to_port: u16) -> Element {
    let key = nfnl::concat(&[
        nfnl::ipv4(Ipv4Addr::from(0x0a00_0000 + n)),
        nfnl::l4proto(proto),
        nfnl::port(port),
    ]);
    Element::with_data(key, nfnl::concat(&[nfnl::ipv4(to), nfnl::port(to_port)]))
}

fn apply(nft: &mut Nftables, f: impl FnOnce(&mut Batch)) -> nfnl::Result<()> {
    let mut batch = Batch::new(NFPROTO_INET, "nsnet");
    f(&mut batch);
    nft.apply(&batch)
}

#[test]
fn set_elements_are_added_and_deleted_idempotently() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        apply(&mut nft, |b| {
            b.add_elements("bridges", &[bridge("eth0"), bridge("br-a")])
        })
        .expect("add");
        assert_eq!(listed_here("set", "bridges"), json!(["br-a", "eth0"]));
        // One present, one that never existed; then both already gone.
        let del = [bridge("eth0"), bridge("missing0")];
        apply(&mut nft, |b| b.delete_elements("bridges", &del)).expect("delete");
        apply(&mut nft, |b| b.delete_elements("bridges", &del)).expect("delete again");
        return;
    }
    let sb = run_child("set_elements_are_added_and_deleted_idempotently");
    assert_eq!(listed(&sb, "set", "bridges"), json!(["br-a"]));
}

#[test]
fn concatenated_map_elements_carry_address_proto_and_port() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        let tcp = mapping(1, 6, 8080, Ipv4Addr::new(172, 17, 0, 2), 80);
        let udp = mapping(1, 17, 53, Ipv4Addr::new(172, 17, 0, 3), 5353);
        apply(&mut nft, |b| b.add_elements("ports", &[tcp, udp])).expect("add");
        return;
    }
    let sb = run_child("concatenated_map_elements_carry_address_proto_and_port");
    let want = json!([
        [{"concat": ["10.0.0.1", "tcp", 8080]}, {"concat": ["172.17.0.2", 80]}],
        [{"concat": ["10.0.0.1", "udp", 53]}, {"concat": ["172.17.0.3", 5353]}],
    ]);
    assert_eq!(listed(&sb, "map", "ports"), want);
}

#[test]
fn verdict_map_elements_accept_drop_jump_and_goto() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        let elems = [
            Element::with_verdict(nfnl::ifname("veth0"), Verdict::Jump("c".into())),
            Element::with_verdict(nfnl::ifname("veth1"), Verdict::Goto("c".into())),
            Element::with_verdict(nfnl::ifname("veth2"), Verdict::Accept),
            Element::with_verdict(nfnl::ifname("veth3"), Verdict::Drop),
        ];
        apply(&mut nft, |b| b.add_elements("vm", &elems)).expect("add");
        apply(&mut nft, |b| b.delete_elements("vm", &elems[2..3])).expect("delete");
        return;
    }
    let sb = run_child("verdict_map_elements_accept_drop_jump_and_goto");
    let want = json!([
        ["veth0", {"jump": {"target": "c"}}],
        ["veth1", {"goto": {"target": "c"}}],
        ["veth3", {"drop": null}],
    ]);
    assert_eq!(listed(&sb, "map", "vm"), want);
}

#[test]
fn adding_an_existing_element_fails_and_rolls_back_the_whole_batch() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        apply(&mut nft, |b| b.add_elements("bridges", &[bridge("eth0")])).expect("add");
        let err = apply(&mut nft, |b| {
            b.add_elements("ports", &[mapping(9, 6, 80, Ipv4Addr::LOCALHOST, 80)]);
            b.add_elements("bridges", &[bridge("new0"), bridge("eth0")]);
        })
        .expect_err("eth0 is already there");
        assert_eq!(err.errno(), Some(EEXIST), "{err}");
        let text = err.to_string();
        assert_eq!(
            text,
            "cannot add elements to set inet nsnet bridges (element 1): File exists"
        );
        return;
    }
    let sb = run_child("adding_an_existing_element_fails_and_rolls_back_the_whole_batch");
    assert_eq!(listed(&sb, "set", "bridges"), json!(["eth0"]));
    assert_eq!(listed(&sb, "map", "ports"), json!([]));
}

#[test]
fn legacy_delete_skips_missing_elements_after_looking_them_up() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        nft.force_legacy_delete(); // DELSETELEM, as on Linux before 6.3
        let add = [bridge("a"), bridge("b"), bridge("c")];
        apply(&mut nft, |b| b.add_elements("bridges", &add)).expect("add");
        apply(&mut nft, |b| {
            b.delete_elements("bridges", &[bridge("a"), bridge("gone"), bridge("c")]);
            b.add_elements("bridges", &[bridge("d")]);
        })
        .expect("delete present and absent");
        apply(&mut nft, |b| {
            b.delete_elements("bridges", &[bridge("gone")])
        })
        .expect("absent");
        let err = apply(&mut nft, |b| b.delete_elements("nosuch", &[bridge("a")]))
            .expect_err("missing set");
        assert_eq!(err.errno(), Some(ENOENT), "{err}");
        assert!(
            err.to_string()
                .contains("nosuch: No such file or directory"),
            "{err}"
        );
        return;
    }
    let sb = run_child("legacy_delete_skips_missing_elements_after_looking_them_up");
    assert_eq!(listed(&sb, "set", "bridges"), json!(["b", "d"]));
}

#[test]
fn two_thousand_elements_go_in_one_batch() {
    const N: u32 = 2000;
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        let to = Ipv4Addr::new(172, 17, 0, 2);
        let ports: Vec<Element> = (0..N).map(|i| mapping(i, 6, 8000, to, 80)).collect();
        let bridges: Vec<Element> = (0..N).map(|i| bridge(&format!("br{i}"))).collect();
        let start = Instant::now();
        apply(&mut nft, |b| {
            b.add_elements("ports", &ports);
            b.add_elements("bridges", &bridges);
        })
        .expect("add");
        println!(
            "nfnl: add {} elements in one batch: {:?}",
            2 * N,
            start.elapsed()
        );
        assert_eq!(
            (count_here("map", "ports"), count_here("set", "bridges")),
            (2000, 2000)
        );
        let start = Instant::now();
        apply(&mut nft, |b| b.delete_elements("ports", &ports)).expect("delete");
        println!(
            "nfnl: destroy {N} elements in one batch: {:?}",
            start.elapsed()
        );
        // The fallback path: DELSETELEM fails, 2000 look-ups, then 1000 deletes.
        let mut legacy = Nftables::new().expect("socket");
        legacy.force_legacy_delete();
        let half = &bridges[..N as usize / 2];
        apply(&mut legacy, |b| b.delete_elements("bridges", half)).expect("delete half");
        let start = Instant::now();
        apply(&mut legacy, |b| b.delete_elements("bridges", &bridges)).expect("delete rest");
        println!(
            "nfnl: legacy delete of {N} (half absent): {:?}",
            start.elapsed()
        );
        // The hot path: one element in, one out.
        let start = Instant::now();
        for _ in 0..100 {
            apply(&mut nft, |b| b.add_elements("bridges", &bridges[..1])).expect("add one");
            apply(&mut nft, |b| b.delete_elements("bridges", &bridges[..1])).expect("del one");
        }
        println!(
            "nfnl: one add + one delete, 100 times: {:?}",
            start.elapsed()
        );
        return;
    }
    let sb = run_child("two_thousand_elements_go_in_one_batch");
    assert_eq!(listed(&sb, "map", "ports"), json!([]));
    assert_eq!(listed(&sb, "set", "bridges"), json!([]));
}

/// Regression: a batch had to fit `net.core.wmem_default` (208 KiB, about 5,000 port
/// mappings) until the socket raised its send buffer.
#[test]
fn twenty_thousand_port_mappings_fit_one_batch_beyond_wmem_default() {
    const N: u32 = 20_000;
    if in_child() {
        let wmem = std::fs::read_to_string("/proc/sys/net/core/wmem_default").expect("wmem");
        let wmem: usize = wmem.trim().parse().expect("wmem_default");
        // Each mapping takes 40 bytes on the wire (see `mapping`).
        assert!(
            N as usize * 40 > wmem,
            "the batch must outgrow wmem_default"
        );
        let mut nft = Nftables::new().expect("socket");
        let to = Ipv4Addr::new(172, 17, 0, 2);
        let ports: Vec<Element> = (0..N).map(|i| mapping(i, 6, 8000, to, 80)).collect();
        let start = Instant::now();
        apply(&mut nft, |b| b.add_elements("ports", &ports)).expect("add");
        println!("nfnl: add {N} mappings in one batch: {:?}", start.elapsed());
        assert_eq!(count_here("map", "ports"), N as usize);
        let start = Instant::now();
        apply(&mut nft, |b| b.delete_elements("ports", &ports)).expect("delete");
        println!(
            "nfnl: delete {N} mappings in one batch: {:?}",
            start.elapsed()
        );
        return;
    }
    let sb = run_child("twenty_thousand_port_mappings_fit_one_batch_beyond_wmem_default");
    assert_eq!(listed(&sb, "map", "ports"), json!([]));
}

#[test]
fn a_batch_larger_than_any_send_buffer_is_refused_whole() {
    // The socket asks for 4 MiB, which the kernel doubles: no send buffer is larger
    // than 8 MiB, forced or not. An interface name takes 28 bytes on the wire.
    const LIMIT: usize = 8 << 20;
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        let many: Vec<Element> = (0..LIMIT / 28 + 10_000)
            .map(|i| bridge(&format!("x{i}")))
            .collect();
        let err = apply(&mut nft, |b| {
            b.add_elements("bridges", &[bridge("first0")]);
            b.add_elements("bridges", &many);
        })
        .expect_err("too big");
        assert_eq!(err.errno(), Some(EMSGSIZE), "{err}");
        assert!(err.to_string().contains("send buffer"), "{err}");
        // The socket is still usable.
        apply(&mut nft, |b| b.add_elements("bridges", &[bridge("after0")])).expect("add");
        return;
    }
    let sb = run_child("a_batch_larger_than_any_send_buffer_is_refused_whole");
    assert_eq!(listed(&sb, "set", "bridges"), json!(["after0"]));
}

#[test]
fn table_exists_tells_present_from_absent() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        assert!(nft.table_exists(NFPROTO_INET, "nsnet").expect("query"));
        assert!(!nft.table_exists(NFPROTO_INET, "other").expect("query"));
        assert!(!nft
            .table_exists(nfnl::NFPROTO_IPV4, "nsnet")
            .expect("query"));
        return;
    }
    run_child("table_exists_tells_present_from_absent");
}

#[test]
fn a_missing_set_or_table_is_a_clear_error() {
    if in_child() {
        let mut nft = Nftables::new().expect("socket");
        let err = apply(&mut nft, |b| b.add_elements("nosuch", &[bridge("eth0")]))
            .expect_err("missing set");
        assert_eq!(err.errno(), Some(ENOENT));
        let text = err.to_string();
        assert_eq!(
            text,
            "cannot add elements to set inet nsnet nosuch: No such file or directory: no such set"
        );
        let mut batch = Batch::new(NFPROTO_INET, "gone");
        batch.delete_elements("bridges", &[bridge("eth0")]);
        let err = nft.apply(&batch).expect_err("missing table");
        assert_eq!(err.errno(), Some(ENOENT), "{err}");
        assert!(err.to_string().contains("inet gone bridges"), "{err}");
        return;
    }
    let sb = run_child("a_missing_set_or_table_is_a_clear_error");
    assert_eq!(listed(&sb, "set", "bridges"), json!([]));
}

#[test]
fn destroy_is_used_on_kernels_that_have_it() {
    if in_child() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).expect("major");
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).expect("minor");
        let mut nft = Nftables::new().expect("socket");
        assert_eq!(
            nft.supports_destroy().expect("probe"),
            (major, minor) >= (6, 3)
        );
        return;
    }
    run_child("destroy_is_used_on_kernels_that_have_it");
}
