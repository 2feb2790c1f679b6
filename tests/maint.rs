//! Maintenance: `nsnet check` finds drift, `nsnet firewall reload` repairs the
//! firewall, `nsnet gc` removes what dead namespaces, pods and killed
//! processes left, and never anything alive, even while connects run.

mod common;
use common::Sandbox;
use serde_json::Value;
use std::process::Output;

fn inspect(sb: &Sandbox, net: &str) -> Value {
    serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON")
}

/// Leased addresses of a network.
fn leases(sb: &Sandbox, net: &str) -> Vec<String> {
    let mut out: Vec<String> = inspect(sb, net)["leases"]
        .as_array()
        .expect("leases")
        .iter()
        .map(|l| l["address"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `nsnet check`, asserts its exit code (0 clean, 1 drift); returns its lines.
fn check(sb: &Sandbox, args: &[&str], clean: bool) -> String {
    let mut all = vec!["check"];
    all.extend(args);
    let out = sb.nsnet(&all);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(if clean { 0 } else { 1 }),
        "nsnet {all:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(clean, text.is_empty(), "{text}");
    text
}

fn gc(sb: &Sandbox) -> String {
    sb.ok(&["gc"])
}

fn gc_json(sb: &Sandbox) -> Value {
    serde_json::from_str(&sb.ok(&["gc", "--json"])).expect("gc JSON")
}

/// Elements of `table inet nsnet` that mention `needle` (an address, a port).
fn elements_with(sb: &Sandbox, needle: &str) -> Vec<(String, String)> {
    sb.nft_elements()
        .into_iter()
        .filter(|(_, e)| e.contains(needle))
        .collect()
}

/// Everything nsnet and the kernel hold, for before/after comparisons.
fn snapshot(sb: &Sandbox, namespaces: &[&str]) -> String {
    // Global addresses only: link-local ones finish DAD on their own time.
    let mut s = sb.sh_ok(
        "ip -j link show; ip -j addr show scope global; ip -j route; ip -6 -j route; \
         nft -s list ruleset; ls -R /run/netns /run/nsnet; cat /proc/sys/net/ipv4/ip_forward",
    );
    for ns in namespaces {
        s += &sb.sh_ok(&format!(
            "ip -n {ns} -j link; ip -n {ns} -j addr show scope global; ip -n {ns} -j route"
        ));
    }
    for args in [
        &["network", "ls", "--json"][..],
        &["port", "ls", "--json"],
        &["pod", "ls", "--json"],
    ] {
        s += &sb.ok(args);
    }
    s
}

#[test]
fn after_a_ruleset_flush_check_names_the_drift_and_reload_brings_ports_back() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "connect", "web", "e1", "-p", "8080:80"]);
    sb.ok(&["network", "connect", "web", "e2"]);
    let _srv = sb.tcp_server("e1", 80, "e1");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    check(&sb, &[], true);
    let table_before = sb.sh_ok("nft -s list table inet nsnet");

    sb.sh_ok("nft flush ruleset");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080),
        None,
        "answers without DNAT"
    );
    let drift = check(&sb, &[], false);
    for line in [
        "table inet nsnet: is missing",
        "network web: nftables set bridges lacks nsbr-web",
        "network web: nftables set masq lacks nsbr-web",
        "(e1 eth0): nftables map ports4_any lacks tcp . 8080 : 10.10.0.2 . 80",
        "(e1 eth0): nftables set members4 lacks nsbr-web . 10.10.0.2",
        "(e2 eth0): nftables set members4 lacks nsbr-web . 10.10.0.3",
    ] {
        assert!(drift.contains(line), "{line:?} not in {drift}");
    }
    // The kernel objects did not drift: only firewall lines.
    assert!(
        drift
            .lines()
            .all(|l| l.contains("nftables") || l.starts_with("table inet nsnet")),
        "{drift}"
    );

    let out = sb.ok(&["firewall", "reload"]);
    assert!(
        out.contains("table inet nsnet: declared (it was missing)"),
        "{out}"
    );
    assert!(
        out.contains("added tcp . 8080 : 10.10.0.2 . 80 to map ports4_any"),
        "{out}"
    );
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    assert_eq!(sb.tcp_ask("host", "127.0.0.1", 8080).as_deref(), Some("e1"));
    check(&sb, &[], true);
    assert_eq!(sb.sh_ok("nft -s list table inet nsnet"), table_before);

    // Reloading a table that is whole changes nothing and doubles nothing.
    let out = sb.ok(&["firewall", "reload"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(sb.sh_ok("nft -s list table inet nsnet"), table_before);

    // Rules flushed from one chain and an element deleted by hand: same story.
    sb.sh_ok("nft flush chain inet nsnet publish");
    sb.sh_ok("nft delete element inet nsnet members4 '{ nsbr-web . 10.10.0.3 }'");
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 8080), None);
    let drift = check(&sb, &[], false);
    assert!(
        drift.contains("table inet nsnet: chain publish has 0 rule(s), the base ruleset 5"),
        "{drift}"
    );
    assert!(
        drift.contains("(e2 eth0): nftables set members4 lacks nsbr-web . 10.10.0.3"),
        "{drift}"
    );
    sb.ok(&["firewall", "reload"]);
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    assert_eq!(sb.sh_ok("nft -s list table inet nsnet"), table_before);
    check(&sb, &[], true);

    // A port led elsewhere by hand, and an element nothing owns.
    sb.sh_ok(
        "nft delete element inet nsnet ports4_any '{ tcp . 8080 }' && \
         nft add element inet nsnet ports4_any '{ tcp . 8080 : 10.10.0.3 . 80 }' && \
         nft add element inet nsnet members4 '{ nsbr-web . 10.10.0.77 }'",
    );
    let drift = check(&sb, &[], false);
    assert!(
        drift.contains(
            "(e1 eth0): nftables map ports4_any holds tcp . 8080 : 10.10.0.3 . 80, \
             not tcp . 8080 : 10.10.0.2 . 80"
        ),
        "{drift}"
    );
    assert!(
        drift.contains("table inet nsnet: set members4 holds nsbr-web . 10.10.0.77, which no endpoint or network owns"),
        "{drift}"
    );
    let out = sb.ok(&["firewall", "reload"]);
    assert!(out.contains("replaced tcp . 8080 : 10.10.0.3 . 80 with tcp . 8080 : 10.10.0.2 . 80 in map ports4_any"), "{out}");
    assert!(
        out.contains("deleted nsbr-web . 10.10.0.77 from set members4"),
        "{out}"
    );
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    assert_eq!(sb.sh_ok("nft -s list table inet nsnet"), table_before);
    check(&sb, &[], true);
}

#[test]
fn check_is_clean_after_setup_and_names_an_address_deleted_by_hand() {
    let sb = Sandbox::new();
    sb.netns(&["e1", "e2"]);
    sb.ok(&[
        "network",
        "create",
        "web",
        "--subnet",
        "10.10.0.0/24",
        "--subnet",
        "fd00:10::/64",
    ]);
    sb.ok(&[
        "network",
        "create",
        "db",
        "--subnet",
        "10.11.0.0/24",
        "--internal",
    ]);
    sb.ok(&["network", "create", "unused", "--subnet", "10.12.0.0/24"]);
    sb.ok(&[
        "network",
        "connect",
        "web",
        "e1",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:5353:53/udp",
    ]);
    sb.ok(&["network", "connect", "db", "e1"]);
    sb.ok(&["network", "connect", "web", "e2"]);
    sb.ok(&["pod", "create", "p1", "--network", "web", "-p", "9000:80"]);
    check(&sb, &[], true);

    sb.sh_ok("ip -n e1 addr del 10.10.0.2/24 dev eth0");
    let drift = check(&sb, &[], false);
    assert!(
        drift.contains("(e1 eth0): address 10.10.0.2/24 is missing from eth0 in e1"),
        "{drift}"
    );
    // Only that network drifted.
    check(&sb, &["db"], true);
    check(&sb, &["web"], false);

    // Kernel objects of the network itself.
    sb.sh_ok("ip addr del 10.11.0.1/24 dev nsbr-db; ip link set nsbr-web down");
    sb.sh_ok("echo 0 > /proc/sys/net/ipv4/conf/nsbr-web/route_localnet");
    let drift = check(&sb, &[], false);
    for line in [
        "network db: gateway 10.11.0.1/24 is missing from bridge nsbr-db",
        "network web: bridge nsbr-web is down",
        "network web: net.ipv4.conf.nsbr-web.route_localnet is 0, not 1",
    ] {
        assert!(drift.contains(line), "{line:?} not in {drift}");
    }
    let json: Value = serde_json::from_str(&stdout(&sb.nsnet(&["check", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), drift.lines().count());
    sb.fails(&["check", "nope"], "network nope does not exist");
}

#[test]
fn gc_releases_what_an_endpoint_held_after_its_namespace_was_deleted() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&[
        "network",
        "connect",
        "web",
        "e1",
        "-p",
        "8080:80",
        "-p",
        "5353:53/udp",
    ]);
    sb.ok(&["network", "connect", "web", "e2"]);
    let veth = inspect(&sb, "web")["endpoints"][0]["host_interface"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.sh_ok("ip netns del e1");
    sb.wait_for("the veth to vanish with its namespace", || {
        !sb.links("host").contains(&veth)
    });
    assert_eq!(leases(&sb, "web"), ["10.10.0.2", "10.10.0.3"]);
    let drift = check(&sb, &[], false);
    assert!(
        drift.contains(&format!("host veth {veth} is missing")),
        "{drift}"
    );

    let out = gc(&sb);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("removed endpoint web/"), "{out}");
    assert!(
        out.contains(": its host veth")
            && out.ends_with("(it held e1 eth0 10.10.0.2/24 *:8080->80/tcp *:5353->53/udp)\n"),
        "{out}"
    );
    assert_eq!(leases(&sb, "web"), ["10.10.0.3"]);
    assert_eq!(sb.ok(&["port", "ls", "--json"]).trim(), "[]");
    assert!(
        elements_with(&sb, "10.10.0.2").is_empty(),
        "{:?}",
        sb.nft_elements()
    );
    assert_eq!(
        elements_with(&sb, "10.10.0.3").len(),
        1,
        "e2's membership stays"
    );
    check(&sb, &[], true);
    // What it held is free again: the address, and both ports.
    sb.netns(&["e3"]);
    sb.ok(&[
        "network",
        "connect",
        "web",
        "e3",
        "--ip",
        "10.10.0.2",
        "-p",
        "8080:80",
        "-p",
        "5353:53/udp",
    ]);
    let _srv = sb.tcp_server("e3", 80, "e3");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e3")
    );
    assert_eq!(gc(&sb), "");
}

#[test]
fn gc_deletes_a_stray_nsnet_veth_on_an_nsnet_bridge_and_nothing_else() {
    let sb = Sandbox::new();
    sb.netns(&["e1"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "connect", "web", "e1"]);
    sb.sh_ok(
        "ip link add nsv0123456789ab type veth peer name p1 && ip link set nsv0123456789ab master nsbr-web; \
         ip link add nsv0123456789ac type veth peer name p2; \
         ip link add vethmine type veth peer name p3 && ip link set vethmine master nsbr-web; \
         ip link add br-other type bridge && ip link add nsv0123456789ad type veth peer name p4 && \
         ip link set nsv0123456789ad master br-other",
    );
    let drift = check(&sb, &[], false);
    assert_eq!(
        drift.trim(),
        "network web: veth nsv0123456789ab on nsbr-web has no endpoint (nsnet gc removes it)"
    );
    let out = gc(&sb);
    assert_eq!(
        out.trim(),
        "removed veth nsv0123456789ab (on nsbr-web): no endpoint owns it"
    );
    let links = sb.links("host");
    assert!(!links.contains(&"nsv0123456789ab".to_owned()), "{links:?}");
    for kept in ["nsv0123456789ac", "vethmine", "nsv0123456789ad"] {
        assert!(
            links.contains(&kept.to_owned()),
            "{kept} deleted: {links:?}"
        );
    }
    assert!(
        sb.pings("e1", "10.10.0.1"),
        "the live endpoint was left alone"
    );
    check(&sb, &[], true);
}

#[test]
fn gc_removes_a_half_made_bridge_nobody_uses_and_keeps_a_whole_one() {
    let sb = Sandbox::new();
    sb.netns(&["e1"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "create", "db", "--subnet", "10.11.0.0/24"]);
    sb.ok(&["network", "connect", "db", "e1"]);
    sb.ok(&["network", "disconnect", "db", "e1"]);
    // What a first connect killed inside its network set-up leaves.
    sb.sh_ok("ip link add nsbr-web type bridge");
    let drift = check(&sb, &[], false);
    assert!(
        drift.contains("network web: bridge nsbr-web is down"),
        "{drift}"
    );
    let out = gc(&sb);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with(
            "removed bridge nsbr-web of network web: half made and unused (bridge nsbr-web is down; \
             gateway 10.10.0.1/24 is missing from bridge nsbr-web;"
        ),
        "{out}"
    );
    let links = sb.links("host");
    assert!(!links.contains(&"nsbr-web".to_owned()), "{links:?}");
    assert!(
        links.contains(&"nsbr-db".to_owned()),
        "the whole one went: {links:?}"
    );
    check(&sb, &[], true);
    sb.ok(&["network", "connect", "web", "e1"]);
    assert!(sb.pings("e1", "10.10.0.1"));
    check(&sb, &[], true);
}

#[test]
fn gc_removes_a_pod_whose_pause_process_was_killed() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["pod", "create", "p1", "--network", "web", "-p", "9000:80"]);
    sb.ok(&["pod", "create", "p2", "--network", "web"]);
    let pid = serde_json::from_str::<Value>(&sb.ok(&["pod", "inspect", "p1"])).unwrap()["pid"]
        .as_u64()
        .unwrap();
    sb.sh_ok(&format!("kill -9 {pid}"));
    sb.wait_for("the pod to be dead", || {
        sb.ok(&["pod", "ls"]).contains("dead")
    });
    let drift = check(&sb, &[], false);
    assert!(
        drift.contains(&format!("pod p1: is dead: its pause process {pid} is gone")),
        "{drift}"
    );

    let out = gc(&sb);
    assert_eq!(
        out.trim(),
        format!("removed pod p1: its pause process {pid} is gone")
    );
    let pods: Value = serde_json::from_str(&sb.ok(&["pod", "ls", "--json"])).unwrap();
    assert_eq!(pods.as_array().unwrap().len(), 1, "{pods}");
    assert_eq!(pods[0]["name"], "p2");
    assert_eq!(leases(&sb, "web"), ["10.10.0.3"]);
    assert!(elements_with(&sb, "9000").is_empty());
    assert!(!sb.sh_ok("ls /run/netns").contains("p1"));
    assert!(!sb.sh_ok("ls /run/nsnet/pods").contains("p1"));
    check(&sb, &[], true);
    assert_eq!(gc(&sb), "");
}

#[test]
fn gc_keeps_a_dead_pod_whose_members_still_run() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["pod", "create", "p1", "--network", "web", "--no-pid-share"]);
    let member = sb.ok(&["pod", "exec", "p1", "--detach", "--", "sleep", "600"]);
    let pid = serde_json::from_str::<Value>(&sb.ok(&["pod", "inspect", "p1"])).unwrap()["pid"]
        .as_u64()
        .unwrap();
    sb.sh_ok(&format!("kill -9 {pid}"));
    sb.wait_for("the pod to be dead", || {
        sb.ok(&["pod", "ls"]).contains("dead")
    });
    let out = sb.nsnet(&["gc"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "nsnet: gc: kept pod p1: its pause process {pid} is gone but 1 member(s) run"
        )),
        "{err}"
    );
    assert!(
        sb.sh(&format!("kill -0 {}", member.trim()))
            .status
            .success(),
        "member killed"
    );
    assert!(sb.ok(&["pod", "ls"]).contains("p1"));
    sb.ok(&["pod", "rm", "--force", "p1"]);
    check(&sb, &[], true);
}

#[test]
fn gc_releases_the_namespace_and_endpoint_of_a_killed_nsnet_run() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let _run = sb.spawn(&format!(
        "exec {} run --network web -p 8080:80 -- sleep 600",
        common::NSNET
    ));
    sb.wait_for("the run's endpoint", || {
        inspect(&sb, "web")["endpoints"].as_array().unwrap().len() == 1
    });
    let id = sb.sh_ok("ls /run/nsnet/runs").trim().to_owned();
    let pid = id.strip_prefix("run-").unwrap().to_owned();
    assert_eq!(gc(&sb), "", "a live run is not garbage");
    sb.sh_ok(&format!("kill -9 {pid}"));
    sb.wait_for("the run to die", || {
        !sb.sh(&format!("kill -0 {pid}")).status.success()
    });
    // Its command lives on in its namespace and keeps it: kill it too.
    sb.kill_run_namespace(&id);
    let out = gc(&sb);
    assert!(
        out.contains(&format!("removed endpoint web/run:{id}: ")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "removed run {id}: its nsnet run process {pid} is gone"
        )),
        "{out}"
    );
    assert_eq!(sb.sh_ok("ls -A /run/nsnet/runs"), "");
    assert!(leases(&sb, "web").is_empty());
    assert!(elements_with(&sb, "8080").is_empty());
    check(&sb, &[], true);
}

#[test]
fn gc_on_a_clean_system_reports_nothing_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.netns(&["e1", "e2"]);
    sb.ok(&[
        "network",
        "create",
        "web",
        "--subnet",
        "10.10.0.0/24",
        "--subnet",
        "fd00:10::/64",
    ]);
    sb.ok(&[
        "network",
        "create",
        "in",
        "--subnet",
        "10.11.0.0/24",
        "--internal",
    ]);
    sb.ok(&["network", "create", "idle", "--subnet", "10.12.0.0/24"]);
    sb.ok(&["network", "connect", "web", "e1", "-p", "8080:80"]);
    sb.ok(&["network", "connect", "in", "e1"]);
    sb.ok(&[
        "network",
        "connect",
        "web",
        "e2",
        "-p",
        "127.0.0.1:9000:90/udp",
    ]);
    sb.ok(&["pod", "create", "p1", "--network", "web", "-p", "7000:70"]);
    // Someone else's things in nsnet's way: a veth on no bridge, a rule elsewhere.
    sb.sh_ok("ip link add nsv0123456789ac type veth peer name x; nft add table ip mine");
    let before = snapshot(&sb, &["e1", "e2"]);
    assert_eq!(gc(&sb), "");
    let json = gc_json(&sb);
    assert_eq!(json["removed"], serde_json::json!([]), "{json}");
    assert_eq!(snapshot(&sb, &["e1", "e2"]), before);
    check(&sb, &[], true);
}

#[test]
fn gc_running_beside_connects_and_disconnects_never_collects_a_live_endpoint() {
    let sb = Sandbox::new();
    let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    sb.netns(&refs);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    // The network's bridge and the firewall's table first: concurrent first
    // connects can declare the base ruleset twice (a known race in connect,
    // not gc's business).
    sb.netns(&["first"]);
    sb.ok(&["network", "connect", "web", "first"]);
    sb.ok(&["network", "disconnect", "web", "first"]);
    let done = std::sync::atomic::AtomicBool::new(false);
    let collected = std::thread::scope(|s| {
        let gcs = s.spawn(|| {
            let mut removed = Vec::new();
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || runs < 3 {
                removed.extend(
                    gc_json(&sb)["removed"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                runs += 1;
            }
            (removed, runs)
        });
        let workers: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let sb = &sb;
                s.spawn(move || {
                    let port = format!("{}:80", 8000 + i);
                    for round in 0..3 {
                        sb.ok(&["network", "connect", "web", n, "-p", &port]);
                        if round < 2 {
                            sb.ok(&["network", "disconnect", "web", n]);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a connect failed");
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        gcs.join().expect("gc failed")
    });
    let (removed, runs) = collected;
    assert!(
        removed.is_empty(),
        "gc collected live endpoints: {removed:?}"
    );
    assert!(runs >= 3, "gc ran {runs} times");
    assert_eq!(
        inspect(&sb, "web")["endpoints"].as_array().unwrap().len(),
        8
    );
    assert_eq!(leases(&sb, "web").len(), 8);
    for n in &names {
        assert!(sb.pings(n, "10.10.0.1"), "{n} lost its network");
    }
    assert_eq!(elements_with(&sb, "\"tcp\"").len(), 8);
    check(&sb, &[], true);
}

/// Shell lines that start `op` in the background under a wrapper shell `$w`
/// (which writes its exit status to /run/op.rc) and set `$p` to its PID. The
/// test stops and continues `$p`, and waits for `$w`: a plain `wait` for a
/// child that was stopped on the way may return before it ends.
fn background(op: &str) -> String {
    format!(
        "rm -f /run/op.rc /run/op.err
         sh -c '{op} >/dev/null 2>/run/op.err; echo $? >/run/op.rc' & w=$!
         until p=$(pgrep -P $w) || [ -e /run/op.rc ]; do :; done
"
    )
}

/// Runs `op` (a shell command line) in the background, kills it with SIGKILL
/// after `delay` seconds, and waits for it.
fn kill_after(sb: &Sandbox, op: &str, delay: f64) {
    sb.sh(&format!(
        "{op} >/dev/null 2>&1 & p=$!; sleep {delay:.4}; kill -9 $p; wait $p"
    ));
}

/// After gc: check is clean, no journal is left, every record has its veth
/// and its leases; returns the endpoints.
fn assert_consistent(sb: &Sandbox) -> Vec<Value> {
    check(sb, &[], true);
    assert_eq!(
        sb.sh_ok("ls -A /run/nsnet/inflight 2>/dev/null || true"),
        "",
        "a journal is left"
    );
    let eps = inspect(sb, "web")["endpoints"].as_array().unwrap().clone();
    let addresses: usize = eps
        .iter()
        .map(|e| e["addresses"].as_array().unwrap().len())
        .sum();
    assert_eq!(leases(sb, "web").len(), addresses, "{eps:?}");
    let links = sb.links("host");
    for ep in &eps {
        assert!(links.contains(&ep["host_interface"].as_str().unwrap().to_owned()));
    }
    eps
}

/// Whether the opt-in long versions of the slow tests run (`NSNET_SLOW_TESTS=1`).
fn slow() -> bool {
    std::env::var("NSNET_SLOW_TESTS").is_ok_and(|v| v == "1")
}

/// xorshift64: the crash test's kill moments, repeatable with `NSNET_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("NSNET_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            .max(1);
        println!("crash test seed {seed} (NSNET_CRASH_SEED={seed} repeats the kill moments)");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, from: &'a std::collections::BTreeSet<String>) -> &'a str {
        let i = (self.next() % from.len() as u64) as usize;
        from.iter().nth(i).map(String::as_str).unwrap_or_default()
    }
}

/// Runs `op` (a shell command line), kills it with SIGKILL after `delay`
/// seconds; true when it had finished on its own (exit 0), false when the
/// kill ended it. Any other end is a failure of the operation itself.
fn kill_at(sb: &Sandbox, op: &str, delay: f64) -> bool {
    let rc = sb.sh_ok(&format!(
        "{op} >/dev/null 2>/run/op.err & p=$!; sleep {delay:.4}; kill -9 $p 2>/dev/null; wait $p; echo $?"
    ));
    match rc.trim() {
        "0" => true,
        "137" => false,
        rc => panic!("{op}: exit {rc}: {}", sb.sh_ok("cat /run/op.err")),
    }
}

/// Runs `line` in the sandbox as [`kill_at`] does, without a kill; returns
/// how long it took, in seconds.
fn timed(sb: &Sandbox, line: &str) -> f64 {
    let ns = sb.sh_ok(&format!(
        "s=$(date +%s%N); {line} >/dev/null; echo $(( $(date +%s%N) - s ))"
    ));
    ns.trim().parse::<f64>().expect("a duration") / 1e9
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Connect,
    Disconnect,
    PodCreate,
    PodRm,
}

/// What completed operations made: CLI endpoints by namespace, and pods.
#[derive(Default)]
struct Model {
    connected: std::collections::BTreeSet<String>,
    pods: std::collections::BTreeSet<String>,
}

/// After gc: the store and the kernel hold exactly `model`'s endpoints and
/// pods, each whole, every address once; check is clean, no journal is left.
fn assert_holds_exactly(sb: &Sandbox, model: &Model) {
    let eps = assert_consistent(sb);
    let mut namespaces: Vec<String> = Vec::new();
    let mut pods: Vec<String> = Vec::new();
    for e in &eps {
        let id = e["id"].as_str().unwrap();
        match id.strip_prefix("web/pod:") {
            Some(pod) => pods.push(pod.to_owned()),
            None => namespaces.push(e["namespace"].as_str().unwrap().to_owned()),
        }
    }
    namespaces.sort();
    pods.sort();
    assert_eq!(namespaces, Vec::from_iter(model.connected.iter().cloned()));
    assert_eq!(pods, Vec::from_iter(model.pods.iter().cloned()));
    let listed: Value = serde_json::from_str(&sb.ok(&["pod", "ls", "--json"])).unwrap();
    let mut listed: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["status"], "running", "{p}");
            p["name"].as_str().unwrap().to_owned()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, pods);
    assert_eq!(sb.live("nsnet-pause").len(), pods.len(), "pause processes");
    // The bridge's ports are exactly the endpoints' veths.
    let mut ports: Vec<String> = sb
        .json("ip -j link show master nsbr-web")
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_owned())
        .collect();
    ports.sort();
    let mut veths: Vec<String> = eps
        .iter()
        .map(|e| e["host_interface"].as_str().unwrap().to_owned())
        .collect();
    veths.sort();
    assert_eq!(ports, veths);
    // Every address once, in the store and in the namespaces alike.
    let mut stored: Vec<String> = eps
        .iter()
        .map(|e| e["addresses"][0].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    let mut kernel: Vec<String> = Vec::new();
    for ns in model.connected.iter().chain(&model.pods) {
        kernel.extend(sb.global_addresses(ns));
    }
    kernel.sort();
    assert_eq!(kernel, stored);
    let mut unique = stored.clone();
    unique.dedup();
    assert_eq!(unique, stored, "an address handed out twice");
    // One membership and one published port per endpoint, nothing more.
    let members = sb
        .nft_elements()
        .into_iter()
        .filter(|(set, _)| set == "members4");
    assert_eq!(members.count(), eps.len());
    assert_eq!(elements_with(sb, "\"tcp\"").len(), eps.len());
    let mut named: Vec<String> = sb
        .sh_ok("ls /run/netns")
        .lines()
        .map(str::to_owned)
        .collect();
    named.sort();
    let mut expected: Vec<String> = model.connected.iter().chain(&model.pods).cloned().collect();
    expected.sort();
    assert_eq!(named, expected, "named namespaces");
}

#[test]
fn gc_rolls_back_or_keeps_whole_any_operation_killed_at_any_moment() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let n = common::NSNET;
    let mut rng = Rng::new();
    // How long each operation takes here, timed as `kill_at` runs it, to
    // spread the kills over all of it.
    let time = |line: String| timed(&sb, &format!("{n} {line}"));
    sb.netns(&["t0"]);
    let mut took = std::collections::BTreeMap::new();
    sb.ok(&["network", "connect", "web", "t0"]);
    sb.ok(&["network", "disconnect", "web", "t0"]);
    took.insert(
        Op::Connect,
        time("network connect web t0 -p 9999:80".into()),
    );
    took.insert(Op::Disconnect, time("network disconnect web t0".into()));
    took.insert(
        Op::PodCreate,
        time("pod create t1 --network web -p 9999:80".into()),
    );
    took.insert(Op::PodRm, time("pod rm t1".into()));
    sb.sh_ok("ip netns del t0");
    println!("uninterrupted: {took:?} s");
    let mut model = Model::default();
    let rounds = if slow() { 240 } else { 40 };
    let (mut killed, mut finished) = (std::collections::BTreeMap::new(), 0);
    let started = std::time::Instant::now();
    let mut most = (0, 0);
    for i in 0..rounds {
        // Twice as many creations as removals: the store fills up, so each
        // kill lands among more and more endpoints and pods.
        let mut op = [
            Op::Connect,
            Op::PodCreate,
            Op::Connect,
            Op::Disconnect,
            Op::PodCreate,
            Op::PodRm,
        ][i % 6];
        if op == Op::Disconnect && model.connected.is_empty() {
            op = Op::Connect;
        }
        if op == Op::PodRm && model.pods.is_empty() {
            op = Op::PodCreate;
        }
        let delay = took[&op] * 0.9 * rng.unit();
        let port = 10000 + i;
        let (target, line) = match op {
            Op::Connect => {
                let ns = format!("k{i}");
                sb.netns(&[&ns]);
                let line = format!("{n} network connect web {ns} -p {port}:80");
                (ns, line)
            }
            Op::Disconnect => {
                let ns = rng.pick(&model.connected).to_owned();
                let line = format!("{n} network disconnect web {ns}");
                (ns, line)
            }
            Op::PodCreate => {
                let pod = format!("p{i}");
                let line = format!("{n} pod create {pod} --network web -p {port}:80");
                (pod, line)
            }
            Op::PodRm => {
                let pod = rng.pick(&model.pods).to_owned();
                let line = format!("{n} pod rm {pod}");
                (pod, line)
            }
        };
        let done = kill_at(&sb, &line, delay);
        gc(&sb);
        // A killed operation either finished or left nothing: look which.
        let present = match op {
            Op::Connect | Op::Disconnect => inspect(&sb, "web")["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["namespace"] == target.as_str()),
            Op::PodCreate | Op::PodRm => sb.nsnet(&["pod", "inspect", &target]).status.success(),
        };
        let made = matches!(op, Op::Connect | Op::PodCreate);
        if done {
            finished += 1;
            assert_eq!(present, made, "round {i}: {op:?} {target} finished");
        } else {
            *killed.entry(op).or_insert(0) += 1;
        }
        let (set, is_pod) = match op {
            Op::Connect | Op::Disconnect => (&mut model.connected, false),
            Op::PodCreate | Op::PodRm => (&mut model.pods, true),
        };
        if present {
            set.insert(target.clone());
            assert!(sb.pings(&target, "10.10.0.1"), "round {i}: {op:?} {target}");
        } else {
            set.remove(&target);
            if !is_pod {
                assert_eq!(sb.links(&target), ["lo"], "round {i}: {op:?} {target}");
                sb.sh_ok(&format!("ip netns del {target}"));
            }
        }
        assert_holds_exactly(&sb, &model);
        most.0 = most.0.max(model.connected.len());
        most.1 = most.1.max(model.pods.len());
    }
    println!(
        "{rounds} rounds in {:.1} s: {finished} finished before the kill, killed {killed:?}; \
         {} endpoints and {} pods whole at the end (at most {} and {})",
        started.elapsed().as_secs_f64(),
        model.connected.len(),
        model.pods.len(),
        most.0,
        most.1
    );
}

#[test]
fn gc_run_while_a_connect_is_stopped_half_way_waits_for_it_and_collects_nothing() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let n = common::NSNET;
    let mut caught = 0;
    for i in 0..12u32 {
        let ns = format!("f{i}");
        sb.netns(&[&ns]);
        // Stop the connect (SIGSTOP) at the first moment it is seen inside its
        // critical part (it holds the operations lock, so an exclusive
        // `flock -n` fails), start gc, and let the connect go on a moment later.
        let op = background(&format!("{n} network connect web {ns} -p {}:80", 10000 + i));
        let out = sb.sh_ok(&format!(
            "{op}
             while kill -STOP $p 2>/dev/null; do
                 flock -n -x /run/nsnet/ops.lock true || break
                 kill -CONT $p
             done
             if kill -0 $p 2>/dev/null; then
                 {n} gc > /run/gc.out & g=$!; sleep 0.3
                 kill -0 $g && echo 'gc waited'
                 kill -CONT $p; wait $g
             fi
             wait $w; cat /run/gc.out 2>/dev/null; rm -f /run/gc.out"
        ));
        assert_eq!(
            sb.sh_ok("cat /run/op.rc").trim(),
            "0",
            "{}",
            sb.sh_ok("cat /run/op.err")
        );
        if out.starts_with("gc waited") {
            caught += 1;
        }
        assert!(
            out.is_empty() || out == "gc waited\n",
            "gc collected a live endpoint: {out}"
        );
    }
    println!("caught {caught} of 12 connects half way");
    assert!(caught >= 6, "caught only {caught} of 12 connects half way");
    let eps = assert_consistent(&sb);
    assert_eq!(eps.len(), 12);
    for i in 0..12 {
        assert!(sb.pings(&format!("f{i}"), "10.10.0.1"));
    }
}

#[test]
fn a_connect_retried_after_one_killed_half_way_is_kept_by_gc() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.netns(&["first"]);
    sb.ok(&["network", "connect", "web", "first"]);
    let n = common::NSNET;
    for i in 0..4u32 {
        let ns = format!("r{i}");
        sb.netns(&[&ns]);
        // With the bridge down, connect waits for the network lock inside its
        // critical part: kill it there (its journal is written), then connect
        // the same namespace again before any gc runs.
        sb.sh_ok(&format!(
            "ip link set nsbr-web down
             flock -x /run/nsnet/lock sh -c '
                 {n} network connect web {ns} >/dev/null 2>&1 & p=$!
                 until ls -A /run/nsnet/inflight | grep -q .; do sleep 0.01; done
                 kill -9 $p; wait $p; true'"
        ));
        assert_ne!(sb.sh_ok("ls -A /run/nsnet/inflight"), "", "no journal left");
        sb.ok(&["network", "connect", "web", &ns]);
        // Made whole by the retry: gc must not take it for the killed one.
        assert_eq!(gc(&sb), "");
        assert!(sb.pings(&ns, "10.10.0.1"), "{ns} lost its retried endpoint");
        assert_consistent(&sb);
    }
    // Killed later on (after its veth, say), the retry is refused until gc
    // rolls the half-made endpoint back.
    let mut refused = 0;
    for i in 0..6u32 {
        let ns = format!("s{i}");
        sb.netns(&[&ns]);
        let op = background(&format!("{n} network connect web {ns}"));
        sb.sh_ok(&format!(
            "{op}
             while kill -STOP $p 2>/dev/null; do
                 flock -n -x /run/nsnet/ops.lock true || break
                 kill -CONT $p
             done
             kill -9 $p; wait $w"
        ));
        let again = sb.nsnet(&["network", "connect", "web", &ns]);
        gc(&sb);
        if !again.status.success() {
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(err.contains("already connected"), "{err}");
            // Unless the first one finished before it was caught, gc rolled
            // it back: connect again.
            let eps = inspect(&sb, "web")["endpoints"].clone();
            if !eps
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["namespace"] == ns.as_str())
            {
                refused += 1;
                sb.ok(&["network", "connect", "web", &ns]);
            }
        }
        assert!(sb.pings(&ns, "10.10.0.1"), "{ns}");
        assert_consistent(&sb);
    }
    println!("{refused} of 6 retries were refused before gc");
}

#[test]
fn gc_leaves_a_pod_in_the_making_alone_and_removes_one_whose_creation_was_killed() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let n = common::NSNET;
    for i in 0..8u32 {
        let op = format!("{n} pod create s{i} --network web -p {}:80", 11000 + i);
        let op = background(&op);
        let out = sb.sh_ok(&format!(
            "{op}
             sleep {:.4}; kill -STOP $p
             {n} -v gc > /run/gc.out 2>/run/gc.err & g=$!; sleep 0.2; kill -CONT $p
             wait $w; wait $g; echo \"gc: $(cat /run/gc.out)\"
             echo \"create: $(cat /run/op.rc) $(cat /run/op.err)\"",
            f64::from(i) * 0.002
        ));
        let log = sb.sh_ok(&format!("cat /run/gc.err; {n} pod ls"));
        assert_eq!(out, "gc: \ncreate: 0 \n", "{log}");
        let inspect = sb.nsnet(&["pod", "inspect", &format!("s{i}")]);
        assert!(
            inspect.status.success(),
            "s{i} missing: {}\n{log}\n{}",
            String::from_utf8_lossy(&inspect.stderr),
            sb.sh_ok("cat /run/gc.out /run/op.rc /run/op.err; ls -la /run/nsnet /run/nsnet/pods /run/netns; ps -ef")
        );
        let pod: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(pod["status"], "running", "{pod}");
    }
    for i in 0..8u32 {
        let op = format!("{n} pod create k{i} --network web -p {}:80", 12000 + i);
        kill_after(&sb, &op, f64::from(i) * 0.003);
        gc(&sb);
        assert_consistent(&sb);
        let pods: Value = serde_json::from_str(&sb.ok(&["pod", "ls", "--json"])).unwrap();
        for p in pods.as_array().unwrap() {
            assert_eq!(p["status"], "running", "{p}");
        }
        // No pause process without its pod.
        assert_eq!(
            sb.live("nsnet-pause").len(),
            pods.as_array().unwrap().len(),
            "{pods}"
        );
    }
}

#[test]
fn a_connect_after_the_table_was_deleted_puts_the_whole_table_back_first() {
    let sb = Sandbox::with_outside();
    sb.netns(&["e1", "e2", "e3"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "create", "db", "--subnet", "10.11.0.0/24"]);
    sb.ok(&["network", "connect", "web", "e1", "-p", "8080:80"]);
    let _srv = sb.tcp_server("e1", 80, "e1");
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    // Someone deletes nsnet's table while web's bridge is up; the next
    // connect (web's bridge is up: no network set-up) must not declare a
    // bare table holding its own elements only.
    sb.sh_ok("nft delete table inet nsnet");
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 8080), None);
    sb.ok(&["network", "connect", "web", "e2", "-p", "8081:80"]);
    check(&sb, &[], true);
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    assert_eq!(elements_with(&sb, "\"tcp\"").len(), 2);
    // The same when the connect is the first of another network.
    sb.sh_ok("nft delete table inet nsnet");
    sb.ok(&["network", "connect", "db", "e3"]);
    check(&sb, &[], true);
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("e1")
    );
    assert!(sb.pings("e3", "10.11.0.1") && sb.pings("e2", "10.10.0.1"));
    // One declaration: every chain holds the base ruleset's rules once.
    assert_eq!(
        sb.sh_ok("nft -a list chain inet nsnet publish | grep -c dnat")
            .trim(),
        "4"
    );
}

#[test]
fn a_network_rm_killed_at_any_moment_is_finished_or_undone_by_gc() {
    let sb = Sandbox::new();
    let n = common::NSNET;
    let mut rng = Rng::new();
    let rounds = if slow() { 60 } else { 12 };
    // How long an uninterrupted rm of such a network takes here.
    let mut took = 0.0;
    let mut killed = 0;
    for r in 0..rounds {
        let net = format!("r{r}");
        let nss: Vec<String> = (0..3).map(|i| format!("r{r}e{i}")).collect();
        sb.ok(&[
            "network",
            "create",
            &net,
            "--subnet",
            &format!("10.{}.0.0/24", 100 + r),
        ]);
        for (i, ns) in nss.iter().enumerate() {
            sb.netns(&[ns]);
            let port = format!("{}:80", 10000 + 10 * r + i as u32);
            sb.ok(&["network", "connect", &net, ns, "-p", &port]);
        }
        // The first round runs to its end and sets the scale for the others.
        let line = format!("{n} network rm --force {net}");
        let done = if r == 0 {
            took = timed(&sb, &line);
            true
        } else {
            kill_at(&sb, &line, took * rng.unit())
        };
        killed += usize::from(!done);
        gc(&sb);
        check(&sb, &[], true);
        assert_eq!(
            sb.sh_ok("ls -A /run/nsnet/inflight 2>/dev/null || true"),
            ""
        );
        // Whatever is left is whole, and a second rm takes it all away.
        let exists = sb.nsnet(&["network", "inspect", &net]).status.success();
        assert!(
            !done || !exists,
            "{net}: rm finished but the network is left"
        );
        if exists {
            let eps = inspect(&sb, &net)["endpoints"].as_array().unwrap().clone();
            for e in &eps {
                assert!(sb.pings(
                    e["namespace"].as_str().unwrap(),
                    &format!("10.{}.0.1", 100 + r)
                ));
            }
            sb.ok(&["network", "rm", "--force", &net]);
        }
        let bridge = format!("nsbr-{net}");
        assert!(!sb.links("host").contains(&bridge));
        assert!(
            elements_with(&sb, &bridge).is_empty(),
            "{:?}",
            sb.nft_elements()
        );
        assert!(elements_with(&sb, &format!("10.{}.", 100 + r)).is_empty());
        for ns in &nss {
            assert_eq!(sb.links(ns), ["lo"], "{ns}");
        }
        check(&sb, &[], true);
    }
    println!("network rm: {rounds} rounds ({took:.3} s uninterrupted), {killed} killed half way");
    // Caught while it holds the operations lock (its teardown of endpoints),
    // a killed rm leaves a journal, and gc finishes that teardown.
    for r in 0..3u32 {
        let net = format!("s{r}");
        sb.ok(&[
            "network",
            "create",
            &net,
            "--subnet",
            &format!("10.{}.0.0/24", 200 + r),
        ]);
        for i in 0..3 {
            let ns = format!("s{r}e{i}");
            sb.netns(&[&ns]);
            sb.ok(&["network", "connect", &net, &ns]);
        }
        let op = background(&format!("{n} network rm --force {net}"));
        let journal = sb.sh_ok(&format!(
            "{op}
             while kill -STOP $p 2>/dev/null; do
                 flock -n -x /run/nsnet/ops.lock true ||
                     ! ls -A /run/nsnet/inflight | grep -q . || break
                 kill -CONT $p
             done
             ls -A /run/nsnet/inflight; kill -9 $p; wait $w"
        ));
        assert_ne!(
            journal, "",
            "{net}: rm was never seen holding the lock with a journal"
        );
        gc(&sb);
        check(&sb, &[], true);
        sb.ok(&["network", "rm", "--force", &net]);
        check(&sb, &[], true);
    }
}

#[test]
fn gc_collects_a_killed_named_run_and_one_killed_while_it_started() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let n = common::NSNET;
    let _run = sb.spawn(&format!(
        "exec {n} run --name r1 --network web -p 8080:80 -- sleep 600"
    ));
    sb.wait_for("the run's endpoint", || {
        inspect(&sb, "web")["endpoints"].as_array().unwrap().len() == 1
    });
    assert_eq!(gc(&sb), "", "a live named run is not garbage");
    let pid = sb.sh_ok("head -1 /run/nsnet/runs/r1/pid").trim().to_owned();
    assert_eq!(
        sb.sh_ok(&format!("tr '\\0' ' ' </proc/{pid}/cmdline")),
        format!("{n} run --name r1 --network web -p 8080:80 -- sleep 600 ")
    );
    sb.sh_ok(&format!("kill -9 {pid}"));
    sb.wait_for("the run to die", || {
        !sb.sh(&format!("kill -0 {pid}")).status.success()
    });
    // Its command lives on in its namespace and keeps it: kill it too.
    sb.kill_run_namespace("r1");
    let out = gc(&sb);
    assert!(out.contains("removed endpoint web/run:r1: "), "{out}");
    assert!(
        out.contains(&format!(
            "removed run r1: its nsnet run process {pid} is gone"
        )),
        "{out}"
    );
    assert_eq!(sb.sh_ok("ls -A /run/nsnet/runs"), "");
    assert!(leases(&sb, "web").is_empty());
    assert!(elements_with(&sb, "8080").is_empty());
    check(&sb, &[], true);
    // The name is free again.
    sb.ok(&["run", "--name", "r1", "--network", "web", "--", "true"]);

    // Killed at any moment of its start: gc leaves nothing.
    let took = timed(&sb, &format!("{n} run --name t --network web -- true"));
    let mut rng = Rng::new();
    for i in 0..12u32 {
        let line = format!(
            "{n} run --name k{i} --network web -p {}:80 -- sleep 30",
            9000 + i
        );
        assert!(
            !kill_at(&sb, &line, took * rng.unit()),
            "the run ended by itself"
        );
        sb.kill_run_namespace(&format!("k{i}"));
        gc(&sb);
        assert_eq!(sb.sh_ok("ls -A /run/nsnet/runs"), "", "round {i}");
        assert!(leases(&sb, "web").is_empty(), "round {i}");
        assert!(elements_with(&sb, "\"tcp\"").is_empty(), "round {i}");
        assert_consistent(&sb);
    }
}

#[test]
fn gc_removes_the_empty_netns_file_a_pod_rm_killed_while_unpinning_left() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["pod", "create", "p1", "--network", "web"]);
    let pid = serde_json::from_str::<Value>(&sb.ok(&["pod", "inspect", "p1"])).unwrap()["pid"]
        .as_u64()
        .unwrap();
    // What `pod rm` leaves when killed between unmounting /run/netns/p1 and
    // removing the file: a dead pod and an empty file of its name.
    sb.sh_ok(&format!("kill -9 {pid}; umount /run/netns/p1"));
    sb.wait_for("the pod to be dead", || {
        sb.ok(&["pod", "ls"]).contains("dead")
    });
    assert_eq!(sb.sh_ok("ls /run/netns"), "p1\n");
    let out = gc(&sb);
    assert!(out.contains("removed pod p1"), "{out}");
    assert_eq!(sb.sh_ok("ls -A /run/netns"), "");
    check(&sb, &[], true);
    // The name is free again.
    sb.ok(&["pod", "create", "p1", "--network", "web"]);
    assert!(sb.pings("p1", "10.10.0.1"));
}

/// One concurrent batch for [`kills_among_concurrent_operations_leave_exactly_what_finished`]:
/// every job started at once, SIGKILL to those `kill` picks at one moment within
/// `window` seconds; returns each job's exit status ("0", "137", ...).
fn batch_with_kills(
    sb: &Sandbox,
    jobs: &[String],
    kill: impl Fn(usize) -> bool,
    delay: f64,
) -> Vec<String> {
    let mut script = String::from("rm -rf /run/q && mkdir /run/q\n");
    for (i, job) in jobs.iter().enumerate() {
        script += &format!("{job} >/dev/null 2>/run/q/{i}.err & p{i}=$!\n");
    }
    script += &format!("sleep {delay:.4}\n");
    for i in (0..jobs.len()).filter(|i| kill(*i)) {
        script += &format!("kill -9 $p{i} 2>/dev/null\n");
    }
    for i in 0..jobs.len() {
        script += &format!("wait $p{i}; echo $?\n");
    }
    let codes: Vec<String> = sb.sh_ok(&script).lines().map(str::to_owned).collect();
    for (i, rc) in codes.iter().enumerate() {
        assert!(
            rc == "0" || rc == "137",
            "{}: exit {rc}: {}",
            jobs[i],
            sb.sh_ok(&format!("cat /run/q/{i}.err"))
        );
    }
    codes
}

#[test]
fn kills_among_concurrent_operations_leave_exactly_what_finished() {
    const JOBS: usize = 16;
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let conf = serde_json::json!({"cniVersion": "1.0.0", "name": "web", "type": "nsnet",
        "ipam": {"ranges": [[{"subnet": "10.10.0.0/24"}]]}});
    sb.sh_ok(&format!("cat > /run/web.json <<'EOF'\n{conf}\nEOF"));
    let n = common::NSNET;
    let cni = |cmd: &str, ns: &str| {
        format!(
            "CNI_COMMAND={cmd} CNI_CONTAINERID={ns} CNI_NETNS=/run/netns/{ns} CNI_IFNAME=eth0 \
             CNI_PATH=/run/cni-bin {n} </run/web.json"
        )
    };
    let mut rng = Rng::new();
    let rounds = if slow() { 25 } else { 5 };
    let (mut killed, mut finished) = (0, 0);
    for r in 0..rounds {
        let names: Vec<String> = (0..JOBS).map(|i| format!("q{r}x{i}")).collect();
        sb.sh_ok(&format!(
            "for n in {}; do ip netns add $n; done",
            names.join(" ")
        ));
        // Half through the CLI (with a port), half as CNI ADDs; every other
        // pair is killed at one random moment. Then the same the other way.
        for phase in ["add", "del"] {
            let jobs: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, ns)| match (phase, i % 2) {
                    ("add", 0) => format!(
                        "{n} network connect web {ns} -p {}:80",
                        20000 + r * JOBS + i
                    ),
                    ("add", _) => cni("ADD", ns),
                    (_, 0) => format!("{n} network disconnect web {ns}"),
                    _ => cni("DEL", ns),
                })
                .collect();
            let before: Vec<bool> = {
                let eps = inspect(&sb, "web")["endpoints"].as_array().unwrap().clone();
                names
                    .iter()
                    .map(|ns| {
                        eps.iter().any(|e| {
                            e["namespace"] == ns.as_str()
                                || e["namespace"] == format!("/run/netns/{ns}")
                        })
                    })
                    .collect()
            };
            // A disconnect of what is not connected fails: only those that are.
            let jobs: Vec<String> = jobs
                .into_iter()
                .enumerate()
                .map(|(i, j)| {
                    if phase == "del" && i % 2 == 0 && !before[i] {
                        "true".into()
                    } else {
                        j
                    }
                })
                .collect();
            let noop: Vec<bool> = jobs.iter().map(|j| j == "true").collect();
            let codes = batch_with_kills(&sb, &jobs, |i| (i / 2) % 2 == r % 2, 0.15 * rng.unit());
            gc(&sb);
            let eps = assert_consistent(&sb);
            let present = |ns: &str| {
                eps.iter()
                    .any(|e| e["namespace"] == ns || e["namespace"] == format!("/run/netns/{ns}"))
            };
            let mut alive = Vec::new();
            for (i, ns) in names.iter().enumerate() {
                match (noop[i], codes[i] == "0") {
                    (true, _) => {}
                    (false, true) => {
                        finished += 1;
                        assert_eq!(
                            present(ns),
                            phase == "add",
                            "round {r} {phase}: {ns} finished"
                        );
                    }
                    (false, false) => killed += 1,
                }
                if present(ns) {
                    alive.push(ns.as_str());
                } else {
                    assert_eq!(sb.links(ns), ["lo"], "round {r} {phase}: {ns}");
                }
            }
            // Every live endpoint works, and holds an address of its own.
            let mut addresses: Vec<String> = eps
                .iter()
                .map(|e| e["addresses"][0].as_str().unwrap().to_owned())
                .collect();
            let count = addresses.len();
            addresses.sort();
            addresses.dedup();
            assert_eq!(addresses.len(), count, "an address handed out twice");
            assert_eq!(count, alive.len());
            let unreachable = sb.sh_ok(&format!(
                "for n in {}; do ip netns exec $n ping -c1 -W2 10.10.0.1 >/dev/null || echo $n; done",
                alive.join(" ")
            ));
            assert_eq!(unreachable, "", "round {r} {phase}");
        }
        // What the kills kept goes before the next round.
        for (i, ns) in names.iter().enumerate() {
            if i % 2 == 0 {
                let _ = sb.nsnet(&["network", "disconnect", "web", ns]);
            } else {
                sb.sh_ok(&cni("DEL", ns));
            }
        }
        assert!(inspect(&sb, "web")["endpoints"]
            .as_array()
            .unwrap()
            .is_empty());
        sb.sh_ok(&format!(
            "for n in {}; do ip netns del $n; done",
            names.join(" ")
        ));
    }
    check(&sb, &[], true);
    println!(
        "{rounds} rounds of {JOBS} concurrent connects/ADDs and {JOBS} disconnects/DELs: \
         {killed} killed, {finished} finished"
    );
}
