//! State that stays true when operations meet each other or users do things
//! in an unexpected order (issue 24, items 1-7): `network rm --force` racing
//! connects, concurrent first connects, `netns del` of a connected or a pod's
//! namespace, pods' networks, killed runs whose command lives on, a deleted
//! bridge, and `link add` twice with the same addresses.

mod common;
use common::crash::slow;
use common::{Sandbox, NSNET};
use serde_json::Value;

/// `nsnet check` is clean (exit 0) and no journal is left.
fn assert_clean(sb: &Sandbox, when: &str) {
    let out = sb.nsnet(&["check"]);
    assert!(
        out.status.success(),
        "{when}: check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sb.sh_ok("ls -A /run/nsnet/inflight 2>/dev/null || true"),
        "",
        "{when}: a journal is left"
    );
}

/// Starts every job (shell command lines) at once, waits for all; returns
/// each one's (exit status, stderr).
fn batch(sb: &Sandbox, jobs: &[String]) -> Vec<(i32, String)> {
    let mut script = String::from("rm -rf /run/q && mkdir /run/q\n");
    for (i, job) in jobs.iter().enumerate() {
        script += &format!("{job} >/dev/null 2>/run/q/{i}.err & p{i}=$!\n");
    }
    for i in 0..jobs.len() {
        script += &format!("wait $p{i}; echo $?\n");
    }
    let codes: Vec<i32> = sb
        .sh_ok(&script)
        .lines()
        .map(|l| l.trim().parse().expect("an exit status"))
        .collect();
    codes
        .into_iter()
        .enumerate()
        .map(|(i, rc)| (rc, sb.sh_ok(&format!("cat /run/q/{i}.err"))))
        .collect()
}

fn inspect(sb: &Sandbox, net: &str) -> Value {
    serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON")
}

/// Issue 24.1: `network rm --force` beside 8 connects to the same network.
/// Before the fix every command exited 0 and endpoints recorded after the rm
/// listed them stayed behind (veths, leases, addresses given twice), and a
/// network created again under the same name inherited them. Now each
/// connect finishes before the rm takes it down, or fails because the
/// network is gone; nothing is left either way.
#[test]
fn network_rm_force_racing_connects_leaves_nothing_and_a_recreated_network_inherits_nothing() {
    let sb = Sandbox::new();
    let names: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
    for n in &names {
        sb.ok(&["netns", "add", n]);
    }
    let rounds = if slow() { 60 } else { 12 };
    let (mut connected, mut refused) = (0, 0);
    sb.ok(&["network", "create", "racenet"]);
    for round in 0..rounds {
        // The rm starts among the connects, at a place that moves each round.
        let at = round % (names.len() + 1);
        // Connects started after it wait 0-9 ms more, so that the rm
        // sometimes gets the network first.
        let mut jobs: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let wait = if i >= at { round % 4 * 3 } else { 0 };
                format!("sleep 0.00{wait}; {NSNET} network connect racenet {n}")
            })
            .collect();
        jobs.insert(at, format!("{NSNET} network rm racenet --force"));
        let results = batch(&sb, &jobs);
        for (job, (rc, err)) in jobs.iter().zip(&results) {
            if job.contains(" rm racenet") {
                assert_eq!(*rc, 0, "round {round}: {job}: {err}");
            } else if *rc == 0 {
                connected += 1;
            } else {
                assert!(
                    err.trim_end().ends_with(": network racenet does not exist")
                        && err.trim_end().lines().count() == 1,
                    "round {round}: {job}: {err}"
                );
                refused += 1;
            }
        }
        // Nothing of the network is left: no bridge, no veth, no address in
        // any namespace, no element naming its bridge, nothing for gc.
        assert!(
            !sb.links("host").iter().any(|l| l == "nsbr-racenet"),
            "round {round}: the bridge is left"
        );
        assert!(
            !sb.links("host").iter().any(|l| l.starts_with("nsv")),
            "round {round}: host veths left: {:?}",
            sb.links("host")
        );
        for n in &names {
            assert_eq!(sb.links(n), ["lo"], "round {round}: {n} keeps a veth");
        }
        assert!(
            sb.nft_elements()
                .iter()
                .all(|(_, e)| !e.contains("nsbr-racenet") && !e.contains("10.201.")),
            "round {round}: elements left: {:?}",
            sb.nft_elements()
        );
        assert_clean(&sb, &format!("round {round}"));
        assert_eq!(sb.ok(&["gc"]), "", "round {round}: gc found garbage");
        // Created again, the network starts empty.
        sb.ok(&["network", "create", "racenet"]);
        let net = inspect(&sb, "racenet");
        assert_eq!(net["endpoints"], serde_json::json!([]), "round {round}");
        assert_eq!(net["leases"], serde_json::json!([]), "round {round}");
    }
    // Both ends of the race happened (the rm came first in some rounds).
    assert!(connected > 0 && refused > 0, "{connected} {refused}");
    println!(
        "{rounds} rounds of network rm --force among 8 connects: {connected} connects finished \
         first, {refused} found the network gone"
    );
}

/// Issue 24.4: 20 first connects at once on a node where nsnet's table does
/// not exist yet. Before the fix nearly all of them warned "table inet nsnet
/// was deleted while networks were in use" (a bridge another connect was
/// making counted as a network in use) and ran a whole reload. The warning
/// stays for a table that really was deleted.
#[test]
fn concurrent_first_connects_do_not_warn_that_the_table_was_deleted() {
    let sb = Sandbox::new();
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    for n in &names {
        sb.ok(&["netns", "add", n]);
    }
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "create", "db", "--subnet", "10.20.0.0/24"]);
    let jobs: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let net = if i % 2 == 0 { "web" } else { "db" };
            format!("{NSNET} network connect {net} {n}")
        })
        .collect();
    let results = batch(&sb, &jobs);
    for (job, (rc, err)) in jobs.iter().zip(&results) {
        assert_eq!(*rc, 0, "{job}: {err}");
        assert_eq!(err, "", "{job}");
    }
    assert_clean(&sb, "after the first connects");
    // Deleted for real: the next connect says so and puts it back whole.
    sb.ok(&["netns", "add", "late"]);
    sb.sh_ok("nft delete table inet nsnet");
    let out = sb.nsnet(&["network", "connect", "web", "late"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("nsnet's firewall tables were missing (deleted, or declared by an older nsnet) while networks were in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(&sb, "after the table was put back");
}

/// Issue 24.7: a second `link add a b` with the same addresses made a second
/// veth pair holding them again. Now an address a namespace has already
/// (on any interface, with any prefix) is refused and nothing is made.
#[test]
fn link_add_refuses_an_address_the_namespace_already_has_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.netns(&["a", "b"]);
    let args = [
        "link",
        "add",
        "a",
        "b",
        "--addr",
        "10.0.0.1/24",
        "--peer-addr",
        "10.0.0.2/24",
    ];
    sb.ok(&args);
    let before = |ns: &str| sb.global_addresses(ns);
    let (a, b) = (before("a"), before("b"));
    sb.fails(
        &args,
        "namespace a already has address 10.0.0.1 (as 10.0.0.1/24 on veth-b)",
    );
    sb.fails(
        &["link", "add", "a", "b", "--peer-addr", "10.0.0.2/16"],
        "namespace b already has address 10.0.0.2 (as 10.0.0.2/24 on veth-a)",
    );
    sb.fails(
        &["link", "add", "host", "a", "--peer-addr", "10.0.0.1/32"],
        "namespace a already has address 10.0.0.1",
    );
    assert_eq!(before("a"), a, "namespace a changed");
    assert_eq!(before("b"), b, "namespace b changed");
    assert_eq!(sb.links("a"), ["lo", "veth-b"]);
    assert_eq!(sb.links("b"), ["lo", "veth-a"]);
    // Other addresses are fine.
    sb.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--addr",
        "10.0.1.1/24",
        "--peer-addr",
        "10.0.1.2/24",
    ]);
    assert!(sb.pings("a", "10.0.1.2"));
}

/// A pod's networks as `pod ls --json` and `pod inspect` list them.
fn pod_networks(sb: &Sandbox, pod: &str) -> (Vec<String>, Vec<String>) {
    let ls: Value = serde_json::from_str(&sb.ok(&["pod", "ls", "--json"])).expect("pod ls JSON");
    let listed = ls
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p["name"] == pod)
        .map(|p| p["networks"].clone())
        .unwrap_or_default();
    let inspected: Value =
        serde_json::from_str(&sb.ok(&["pod", "inspect", pod])).expect("pod inspect JSON");
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|n| n.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let mut endpoint_networks: Vec<String> = inspected["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| e["network"].as_str().unwrap_or_default().to_owned())
        .collect();
    endpoint_networks.sort();
    assert_eq!(
        names(&inspected["networks"]),
        names(&listed),
        "ls and inspect differ"
    );
    let mut listed = names(&listed);
    listed.sort();
    (listed, endpoint_networks)
}

/// Issue 24.3: a pod's networks are its endpoints. Before, `network connect
/// web p1` on a pod made with `--network web` gave it a second interface on
/// the same network, a network connected after creation never showed in
/// `pod ls`/`pod inspect` and leaked at `pod rm`, and after `network rm web
/// --force` the pod still listed web.
#[test]
fn a_pods_networks_are_its_endpoints_connected_before_or_after_creation() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "create", "db", "--subnet", "10.20.0.0/24"]);
    sb.ok(&["pod", "create", "p1", "--network", "web"]);
    sb.fails(
        &["network", "connect", "web", "p1"],
        "p1 is already connected to network web (as eth0); give --ifname for a second interface",
    );
    assert_eq!(sb.links("p1"), ["eth0", "lo"]);
    assert_eq!(sb.global_addresses("p1").len(), 1);

    sb.ok(&["network", "connect", "db", "p1"]);
    let (listed, endpoints) = pod_networks(&sb, "p1");
    assert_eq!(listed, ["db", "web"]);
    assert_eq!(endpoints, ["db", "web"]);
    // A second interface on one network, asked for by name.
    sb.ok(&["network", "connect", "web", "p1", "--ifname", "eth7"]);
    assert_eq!(sb.links("p1"), ["eth0", "eth1", "eth7", "lo"]);
    assert_eq!(pod_networks(&sb, "p1").1, ["db", "web", "web"]);
    assert!(sb.pings("p1", "10.20.0.1"));

    sb.ok(&["network", "rm", "web", "--force"]);
    assert_eq!(
        pod_networks(&sb, "p1"),
        (vec!["db".to_owned()], vec!["db".to_owned()])
    );
    assert_eq!(sb.links("p1"), ["eth1", "lo"]);

    // pod rm releases the network connected after creation too.
    sb.ok(&["pod", "rm", "p1"]);
    let db = inspect(&sb, "db");
    assert_eq!(db["endpoints"], serde_json::json!([]));
    assert_eq!(db["leases"], serde_json::json!([]));
    assert!(
        !sb.links("host").iter().any(|l| l.starts_with("nsv")),
        "{:?}",
        sb.links("host")
    );
    assert_clean(&sb, "after pod rm");
}

/// Issue 24.2: `netns del` of a connected namespace succeeded silently and
/// its endpoint, lease and published port stayed claimed until a gc
/// (publishing the port elsewhere failed); `netns del` of a pod's namespace
/// quietly unnamed the live pod. Now the endpoints are released, with a note
/// each, and a pod's namespace is refused.
#[test]
fn netns_del_releases_the_namespaces_endpoints_and_refuses_a_pods_namespace() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.netns(&["a", "b"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    let out = sb.nsnet(&["netns", "del", "a"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("nsnet: note: disconnected a eth0 from network web (released 10.10.0.2/24, "),
        "{stderr}"
    );
    assert!(!sb.sh("test -e /run/netns/a").status.success());
    let web = inspect(&sb, "web");
    assert_eq!(web["endpoints"], serde_json::json!([]));
    assert_eq!(web["leases"], serde_json::json!([]));
    assert!(
        sb.nft_elements().iter().all(|(_, e)| !e.contains("8080")),
        "{:?}",
        sb.nft_elements()
    );
    assert!(!sb.links("host").iter().any(|l| l.starts_with("nsv")));
    assert_clean(&sb, "after netns del");
    // The port is free again.
    sb.ok(&["network", "connect", "web", "b", "-p", "8080:80"]);

    sb.ok(&["pod", "create", "p4", "--network", "web"]);
    let pinned = sb.sh_ok("stat -c %i /run/netns/p4");
    sb.fails(
        &["netns", "del", "p4"],
        "namespace p4 is pod p4's; remove the pod with nsnet pod rm p4",
    );
    assert_eq!(sb.sh_ok("stat -c %i /run/netns/p4"), pinned);
    assert_eq!(sb.ok(&["pod", "exec", "p4", "--", "hostname"]), "p4\n");
    assert!(sb.pings("p4", "10.10.0.1"));
    // A namespace nsnet gave nothing goes as before, without a note.
    sb.ok(&["netns", "add", "plain"]);
    let out = sb.nsnet(&["netns", "del", "plain"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_clean(&sb, "at the end");
}

/// Issue 24.5: after `kill -9` of `nsnet run --name srv -- sleep`, the
/// command ran on in the run's namespace, yet gc removed the network from
/// under it ("its nsnet run process is gone"). A run now lives as long as any
/// process is in its namespace, and its name is reused by the next `run
/// --name srv` once nothing is left, without a gc.
#[test]
fn a_killed_runs_command_keeps_its_network_and_the_name_is_reused_once_nothing_is_left() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let _run = sb.spawn(&format!(
        "exec {NSNET} run --name srv --network web -- sleep 600"
    ));
    sb.wait_for("the run's command", || {
        sb.sh("pgrep -P $(head -1 /run/nsnet/runs/srv/pid) sleep")
            .status
            .success()
    });
    let pid = sb
        .sh_ok("head -1 /run/nsnet/runs/srv/pid")
        .trim()
        .to_owned();
    let cmd = sb.sh_ok(&format!("pgrep -P {pid} sleep")).trim().to_owned();
    sb.sh_ok(&format!("kill -9 {pid}"));
    sb.wait_for("the run to die", || {
        !sb.sh(&format!("kill -0 {pid}")).status.success()
    });
    // Its command is in the run's namespace, and keeps it.
    assert_eq!(
        sb.sh_ok(&format!("stat -L -c %i /proc/{cmd}/ns/net")),
        sb.sh_ok("stat -c %i /run/nsnet/runs/srv/net")
    );
    let out = sb.nsnet(&["gc"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "gc removed something"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "kept run srv: its nsnet run process {pid} is gone but 1 process(es) still run \
             in its namespace (PIDs [{cmd}])"
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eps = inspect(&sb, "web")["endpoints"].clone();
    assert_eq!(eps.as_array().map(Vec::len), Some(1), "{eps}");
    let addr = eps[0]["addresses"][0].as_str().unwrap_or_default();
    let ip = addr.split('/').next().unwrap_or_default().to_owned();
    assert!(sb.pings("host", &ip), "the command lost its network");
    sb.fails(
        &["run", "--name", "srv", "--network", "web", "--", "true"],
        &format!("a run named srv is running already (processes in its namespace: {cmd})"),
    );
    // Nothing left: the name is free at once.
    sb.sh_ok(&format!("kill -9 {cmd}"));
    // Orphaned, it stays a zombie: the sandbox's PID 1 does not reap.
    sb.wait_for("the command to die", || {
        !sb.sh_ok(&format!("ps -o stat= -p {cmd} || true"))
            .trim_start()
            .starts_with(['S', 'R', 'D'])
    });
    sb.ok(&["run", "--name", "srv", "--network", "web", "--", "true"]);
    assert_eq!(sb.sh_ok("ls -A /run/nsnet/runs"), "");
    let web = inspect(&sb, "web");
    assert_eq!(web["endpoints"], serde_json::json!([]));
    assert_eq!(web["leases"], serde_json::json!([]));
    assert_clean(&sb, "after the name was reused");
}

/// The host veths of network `net`'s endpoints, each with its bridge (none
/// when detached) and hairpin flag, from the kernel.
fn ports_of(sb: &Sandbox, net: &str) -> Vec<(String, Option<String>, bool)> {
    let eps = inspect(sb, net)["endpoints"].clone();
    let mut out: Vec<(String, Option<String>, bool)> = eps
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            let name = e["host_interface"].as_str().expect("host_interface");
            let link = &sb.json(&format!("ip -d -j link show dev {name}"))[0];
            (
                name.to_owned(),
                link["master"].as_str().map(str::to_owned),
                link["linkinfo"]["info_slave_data"]["hairpin"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

/// Issue 24.6: after `ip link del nsbr-web` (the kernel detaches a deleted
/// bridge's ports, it does not delete them) a connect made the bridge again
/// but the existing endpoints' veths stayed detached, and neither gc nor
/// `firewall reload` repaired it. Now all three attach them again, with
/// their port options, and say so.
#[test]
fn endpoints_of_a_deleted_bridge_are_attached_again_by_gc_reload_and_connect() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.netns(&["a", "b", "c"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    sb.ok(&["network", "connect", "web", "b"]);
    let _server = sb.tcp_server("a", 80, "hello-from-a");
    let attached = ports_of(&sb, "web");
    assert!(
        attached
            .iter()
            .all(|(_, m, _)| m.as_deref() == Some("nsbr-web")),
        "{attached:?}"
    );
    let hairpins: Vec<bool> = attached.iter().map(|p| p.2).collect();
    let ip_of = |ns: &str| {
        sb.global_addresses(ns)[0]
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (ip_of("a"), ip_of("b"));

    type Repair<'a> = (&'a str, &'a [&'a str], &'a str);
    let repairs: [Repair; 3] = [
        ("gc", &["gc"], "repaired veth "),
        ("reload", &["firewall", "reload"], "veth "),
        ("connect", &["network", "connect", "web", "c"], ""),
    ];
    for (what, args, line) in repairs {
        sb.sh_ok("ip link del nsbr-web");
        // The veths are still there, detached: the endpoints are cut off.
        let detached = ports_of(&sb, "web");
        assert!(
            detached.iter().all(|(_, m, _)| m.is_none()),
            "{what}: {detached:?}"
        );
        assert!(sb.ping_fails("a", &b), "{what}: a still reaches b");
        let out = sb.nsnet(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{what}: {stderr}");
        if what == "connect" {
            assert!(
                stderr.contains(
                    "bridge nsbr-web of network web had been deleted: made it again and \
                     attached its 2 endpoint(s) to it again"
                ),
                "{stderr}"
            );
        } else {
            assert_eq!(
                stdout.matches(&format!("{line}nsv")).count(),
                2,
                "{what}: {stdout}"
            );
            assert!(
                stdout.contains("attached to bridge nsbr-web again"),
                "{stdout}"
            );
            assert!(
                stdout.contains("bridge nsbr-web of network web: made again"),
                "{stdout}"
            );
        }
        let now: Vec<(String, Option<String>, bool)> = ports_of(&sb, "web")
            .into_iter()
            .filter(|(n, _, _)| attached.iter().any(|(m, _, _)| m == n))
            .collect();
        assert!(
            now.iter().all(|(_, m, _)| m.as_deref() == Some("nsbr-web")),
            "{what}: {now:?}"
        );
        assert_eq!(
            now.iter().map(|p| p.2).collect::<Vec<_>>(),
            hairpins,
            "{what}"
        );
        assert!(
            sb.global_addresses_of_link("nsbr-web")
                .contains(&"10.10.0.1/24".to_owned()),
            "{what}: no gateway"
        );
        assert!(sb.pings("a", &b), "{what}: a does not reach b");
        assert!(
            sb.pings("b", "10.10.0.1"),
            "{what}: b does not reach its gateway"
        );
        assert_eq!(
            sb.tcp_ask("host", "127.0.0.1", 8080).as_deref(),
            Some("hello-from-a"),
            "{what}: the published port does not answer"
        );
        assert!(sb.pings("b", &a));
        assert_clean(&sb, what);
    }
    assert!(sb.pings("c", &a));
}

/// What the race of issue 24.1 left before its fix (and what a store written
/// by an nsnet of that time may hold): an endpoint whose network's definition
/// is gone, its veth on a bridge no network owns. `check` reported it but gc
/// did nothing, and a network created again under the name inherited it. gc
/// now releases such an endpoint and takes the ownerless bridge down.
#[test]
fn gc_releases_endpoints_whose_network_is_no_longer_defined_and_their_bridge() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.netns(&["a"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    // The definition goes, as the rm that raced the connect deleted it.
    sb.sh_ok("sqlite3 /run/nsnet-config/nsnet.db \"DELETE FROM networks WHERE name = 'web'\"");
    let out = sb.nsnet(&["check"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("its network web is not defined"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = sb.ok(&["gc"]);
    assert!(out.contains("removed endpoint web/"), "{out}");
    assert!(out.contains("removed bridge nsbr-web"), "{out}");
    assert_eq!(sb.links("host"), ["lo"]);
    assert_eq!(sb.links("a"), ["lo"]);
    assert!(
        sb.nft_elements()
            .iter()
            .all(|(_, e)| !e.contains("nsbr-web")
                && !e.contains("8080")
                && !e.contains("10.10.0.")),
        "{:?}",
        sb.nft_elements()
    );
    assert_clean(&sb, "after gc");
    assert_eq!(sb.ok(&["gc"]), "");
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let web = inspect(&sb, "web");
    assert_eq!(web["endpoints"], serde_json::json!([]));
    assert_eq!(web["leases"], serde_json::json!([]));
}
