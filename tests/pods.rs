//! Pods and network modes: the pause process, shared namespaces, members,
//! published ports, `nsnet run` in every mode, and cleanup.

mod common;
use common::Sandbox;
use serde_json::Value;

fn inspect(sb: &Sandbox, pod: &str) -> Value {
    serde_json::from_str(&sb.ok(&["pod", "inspect", pod])).expect("pod inspect JSON")
}

fn pause_pid(sb: &Sandbox, pod: &str) -> u64 {
    inspect(sb, pod)["pid"].as_u64().expect("pid")
}

/// `/proc/PID/status` field of a process in the sandbox.
fn status_field(sb: &Sandbox, pid: u64, field: &str) -> String {
    sb.sh_ok(&format!("grep '^{field}:' /proc/{pid}/status | cut -f2-"))
        .trim()
        .to_owned()
}

#[test]
fn the_pause_process_is_pid_1_small_and_holds_pinned_namespaces() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "p1", "--hostname", "box"]);
    let pid = pause_pid(&sb, "p1");
    // PID 1 of its own PID namespace, with its own net, IPC and UTS namespaces.
    let nspid = status_field(&sb, pid, "NSpid");
    assert!(nspid.ends_with("\t1") || nspid.ends_with(" 1"), "{nspid}");
    for kind in ["net", "ipc", "uts", "pid"] {
        let theirs = sb.sh_ok(&format!("stat -L -c %i /proc/{pid}/ns/{kind}"));
        let ours = sb.sh_ok(&format!("stat -L -c %i /proc/self/ns/{kind}"));
        assert_ne!(theirs, ours, "{kind} not new");
        let pinned = sb.sh_ok(&format!("stat -c %i /run/nsnet/pods/p1/{kind}"));
        assert_eq!(theirs, pinned, "{kind} not pinned");
    }
    assert_eq!(
        sb.sh_ok(&format!("stat -L -c %i /proc/{pid}/ns/net")),
        sb.sh_ok("stat -c %i /run/netns/p1")
    );
    assert_eq!(sb.ok(&["pod", "exec", "p1", "--", "hostname"]), "box\n");
    let rss: u64 = status_field(&sb, pid, "VmHWM")
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(rss <= 1024, "pause peak RSS {rss} kB");
    assert_eq!(status_field(&sb, pid, "Name"), "nsnet-pause");
}

#[test]
fn members_share_one_network_and_loopback() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "web"]);
    let a = sb.ok(&["pod", "exec", "web", "--", "ip", "-j", "addr"]);
    let b = sb.ok(&["pod", "exec", "web", "--", "ip", "-j", "addr"]);
    assert_eq!(a, b);
    assert!(a.contains("10.201.0.2"), "{a}");
    // Two services in one pod: one serves on 127.0.0.1:5000, the other reaches it.
    let _srv = sb.spawn(
        "exec ${NSNET} pod exec web -- socat TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr SYSTEM:'echo registry'"
            .replace("${NSNET}", common::NSNET)
            .as_str(),
    );
    sb.wait_for("the member's listener", || {
        sb.sh("ip netns exec web ss -Htln 'sport = :5000' | grep -q LISTEN")
            .status
            .success()
    });
    let got = sb.ok(&[
        "pod",
        "exec",
        "web",
        "--",
        "socat",
        "-T2",
        "-",
        "TCP:127.0.0.1:5000",
    ]);
    assert_eq!(got, "registry\n");
}

#[test]
fn exec_passes_status_env_workdir_and_detach() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "p"]);
    assert_eq!(
        sb.nsnet(&["pod", "exec", "p", "--", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    let out = sb.ok(&[
        "pod",
        "exec",
        "p",
        "--workdir",
        "/tmp",
        "--env",
        "A=b c",
        "--",
        "sh",
        "-c",
        "pwd; echo \"$A\"",
    ]);
    assert_eq!(out, "/tmp\nb c\n");
    let pid = sb.ok(&["pod", "exec", "p", "--detach", "--", "sleep", "600"]);
    let pid: u64 = pid.trim().parse().expect("a PID");
    let members = inspect(&sb, "p")["members"].clone();
    assert_eq!(members, serde_json::json!([pid]));
    // Its PID inside the pod is not 1: the pause is.
    let nspid = status_field(&sb, pid, "NSpid");
    assert!(!nspid.ends_with("\t1"), "{nspid}");
}

#[test]
fn orphans_are_reaped_by_the_pause_process() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "z"]);
    // The member's child outlives it and is re-parented to the pause process,
    // which must reap it when it exits: no zombie may remain.
    sb.ok(&["pod", "exec", "z", "--", "sh", "-c", "sleep 0.3 & exit 0"]);
    let pause = pause_pid(&sb, "z");
    sb.wait_for("the orphan to exit and be reaped", || {
        let zombies = sb.sh_ok(&format!(
            "for p in $(cat /proc/{pause}/task/{pause}/children); do grep -c '^State:.Z' /proc/$p/status; done; true"
        ));
        let children = sb.sh_ok(&format!("cat /proc/{pause}/task/{pause}/children"));
        children.trim().is_empty() && !zombies.contains('1')
    });
}

#[test]
fn pod_ports_answer_from_outside_localhost_and_other_pods() {
    let sb = Sandbox::with_outside();
    let out = sb.ok(&["pod", "create", "web", "-p", "8080:80"]);
    assert!(out.contains("published *:8080->80/tcp"), "{out}");
    sb.ok(&["pod", "create", "other"]);
    sb.ok(&[
        "pod",
        "exec",
        "web",
        "--detach",
        "--",
        "socat",
        "TCP-LISTEN:80,fork,reuseaddr",
        "SYSTEM:echo web",
    ]);
    sb.wait_for("the pod's server", || {
        sb.sh("ip netns exec web ss -Htln 'sport = :80' | grep -q LISTEN")
            .status
            .success()
    });
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("web")
    );
    assert_eq!(
        sb.tcp_ask("host", "127.0.0.1", 8080).as_deref(),
        Some("web")
    );
    assert_eq!(
        sb.tcp_ask("other", "203.0.113.1", 8080).as_deref(),
        Some("web")
    );
}

#[test]
fn the_network_outlives_members_and_a_killed_pause_leaves_a_dead_pod() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "p"]);
    let crash = sb.nsnet(&["pod", "exec", "p", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(crash.status.code(), Some(137));
    assert!(
        sb.pings("host", "10.201.0.2"),
        "the pod lost its network when a member died"
    );
    let pause = pause_pid(&sb, "p");
    sb.sh_ok(&format!("kill -9 {pause}"));
    sb.wait_for("the pod to show as dead", || {
        inspect(&sb, "p")["status"] == "dead"
    });
    assert!(sb.ok(&["pod", "ls"]).contains("dead"));
    sb.fails(&["pod", "exec", "p", "--", "true"], "pod p is dead");
    sb.ok(&["pod", "rm", "p"]);
    assert_leaves_nothing(&sb, "p");
}

/// Nothing of a removed pod remains: process, pins, ip netns name, veth, lease, map element.
fn assert_leaves_nothing(sb: &Sandbox, pod: &str) {
    assert_eq!(sb.ok(&["pod", "ls", "--json"]).trim(), "[]");
    assert_eq!(sb.sh_ok("ls -A /run/nsnet/pods"), "");
    assert!(!sb.sh_ok("ls /run/netns").contains(pod));
    assert!(
        sb.links("host").iter().all(|l| !l.starts_with("nsv")),
        "{:?}",
        sb.links("host")
    );
    assert_eq!(
        sb.live("nsnet-pause"),
        Vec::<u32>::new(),
        "{}",
        sb.sh_ok("ps -e -o pid,ppid,stat,comm,args")
    );
    let net: Value = serde_json::from_str(&sb.ok(&["network", "inspect", "nsnet"])).unwrap();
    assert_eq!(net["leases"], serde_json::json!([]));
    assert!(sb
        .nft_elements()
        .iter()
        .all(|(set, _)| !set.starts_with("ports") && !set.starts_with("members")));
}

#[test]
fn pod_rm_stops_members_and_releases_everything() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "p", "-p", "8080:80"]);
    sb.ok(&["pod", "exec", "p", "--detach", "--", "sleep", "600"]);
    // A member that ignores SIGTERM is killed after the grace period.
    sb.ok(&[
        "pod",
        "exec",
        "p",
        "--detach",
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 600",
    ]);
    sb.fails(&["pod", "rm", "p"], "running member(s)");
    sb.ok(&["pod", "rm", "p", "--force"]);
    assert_eq!(sb.live("sleep"), Vec::<u32>::new());
    assert_leaves_nothing(&sb, "p");
}

#[test]
fn no_pid_share_keeps_members_out_of_the_pause_pid_namespace() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "p", "--no-pid-share"]);
    let pid = sb.ok(&["pod", "exec", "p", "--detach", "--", "sleep", "600"]);
    let member = sb.sh_ok(&format!("stat -L -c %i /proc/{}/ns/pid", pid.trim()));
    assert_ne!(member, sb.sh_ok("stat -c %i /run/nsnet/pods/p/pid"));
    assert_eq!(
        sb.sh_ok(&format!("stat -L -c %i /proc/{}/ns/net", pid.trim())),
        sb.sh_ok("stat -c %i /run/nsnet/pods/p/net")
    );
}

#[test]
fn run_modes_none_host_network_container_and_pod() {
    let sb = Sandbox::new();
    let none: Value =
        serde_json::from_str(&sb.ok(&["run", "--network", "none", "--", "ip", "-j", "link"]))
            .unwrap();
    let names: Vec<&str> = none
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    assert_eq!(names, ["lo"]);
    sb.sh_ok("ip link add hostside type veth peer name hostpeer");
    assert!(sb
        .ok(&["run", "--network", "host", "--", "ip", "-br", "link"])
        .contains("hostside"));
    // Default: the network `nsnet`, made on first use; released after the run.
    let out = sb.ok(&["run", "--", "ip", "-br", "addr", "show", "eth0"]);
    assert!(out.contains("10.201.0."), "{out}");
    let net: Value = serde_json::from_str(&sb.ok(&["network", "inspect", "nsnet"])).unwrap();
    assert_eq!(net["endpoints"], serde_json::json!([]));
    assert_eq!(net["leases"], serde_json::json!([]));
    // container:NAME joins a named run's namespace (same inode).
    let _holder = sb.spawn(&format!(
        "exec {} run --name holder -- sleep 600",
        common::NSNET
    ));
    sb.wait_for("the named run", || {
        sb.sh("test -e /run/nsnet/runs/holder/net").status.success()
            && sb
                .ok(&["network", "inspect", "nsnet"])
                .contains("run:holder")
    });
    let inner = sb.ok(&[
        "run",
        "--network",
        "container:holder",
        "--",
        "stat",
        "-L",
        "-c",
        "%i",
        "/proc/self/ns/net",
    ]);
    assert_eq!(inner, sb.sh_ok("stat -c %i /run/nsnet/runs/holder/net"));
    // pod:NAME joins a pod.
    sb.ok(&["pod", "create", "p"]);
    let inner = sb.ok(&[
        "run",
        "--network",
        "pod:p",
        "--",
        "stat",
        "-L",
        "-c",
        "%i",
        "/proc/self/ns/net",
    ]);
    assert_eq!(inner, sb.sh_ok("stat -c %i /run/nsnet/pods/p/net"));
    // Exit status passes through.
    assert_eq!(
        sb.nsnet(&["run", "--network", "none", "--", "sh", "-c", "exit 5"])
            .status
            .code(),
        Some(5)
    );
}

#[test]
fn run_publishes_ports_while_it_runs() {
    let sb = Sandbox::new();
    let _srv = sb.spawn(&format!(
        "exec {} run -p 8080:80 -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo run'",
        common::NSNET
    ));
    sb.wait_for("the run's published port", || {
        sb.tcp_ask("host", "127.0.0.1", 8080).as_deref() == Some("run")
    });
}

#[test]
fn bad_pod_and_run_requests_fail_clearly_and_leave_nothing() {
    let sb = Sandbox::new();
    sb.ok(&["pod", "create", "p"]);
    sb.ok(&["netns", "add", "taken"]);
    let before = (
        sb.ok(&["pod", "ls", "--json"]),
        sb.links("host"),
        sb.sh_ok("ls /run/netns"),
    );
    sb.fails(
        &["pod", "exec", "nope", "--", "true"],
        "pod nope does not exist",
    );
    sb.fails(&["pod", "rm", "nope"], "pod nope does not exist");
    sb.fails(&["pod", "create", "p"], "pod p already exists");
    sb.fails(
        &["pod", "create", "taken"],
        "a network namespace of that name exists",
    );
    sb.fails(
        &["pod", "create", "q", "--network", "nonet"],
        "network nonet does not exist",
    );
    sb.fails(
        &["pod", "create", "q", "--hostname", "bad host"],
        "hostname",
    );
    sb.fails(
        &["run", "--network", "weird:x", "--", "true"],
        "unknown network mode",
    );
    sb.fails(
        &["run", "--network", "container:ghost", "--", "true"],
        "no running nsnet run --name ghost",
    );
    sb.fails(
        &["run", "--network", "pod:ghost", "--", "true"],
        "pod ghost does not exist",
    );
    let out = sb.nsnet(&["pod", "exec", "p", "--", "/no/such/cmd"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run /no/such/cmd"));
    let out = sb.nsnet(&["run", "--network", "none", "--", "/no/such/cmd"]);
    assert!(!out.status.success());
    assert_eq!(
        (
            sb.ok(&["pod", "ls", "--json"]),
            sb.links("host"),
            sb.sh_ok("ls /run/netns")
        ),
        before
    );
    assert_eq!(sb.sh_ok("ls -A /run/nsnet/runs 2>/dev/null || true"), "");
}
