//! `nsnet netns`: named namespaces shared with `ip netns`, exec, pin.

mod common;
use common::Sandbox;

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn netns_add_is_seen_by_ip_netns_and_ip_netns_add_is_seen_by_nsnet() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    sb.ok(&["netns", "add", "b"]);
    let ip_list = sb.sh_ok("ip netns ls");
    let ip_names: Vec<&str> = ip_list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        ip_names.contains(&"a") && ip_names.contains(&"b"),
        "{ip_list}"
    );

    sb.sh_ok("ip netns add c");
    let listed: serde_json::Value =
        serde_json::from_str(&sb.ok(&["netns", "ls", "--json"])).unwrap();
    assert_eq!(names(&listed), ["a", "b", "c"]);
    // Each entry carries the inode of a live namespace, distinct per namespace.
    let inodes: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["inode"].as_u64().expect("inode"))
        .collect();
    assert!(inodes[0] != inodes[1] && inodes[1] != inodes[2]);
    // Names alone with -q; the table has a header and the inodes.
    assert_eq!(sb.ok(&["netns", "ls", "-q"]), "a\nb\nc\n");
    let table = sb.ok(&["netns", "ls"]);
    assert!(table.starts_with("NAME  INODE\na     "), "{table}");
}

#[test]
fn netns_add_makes_a_real_namespace_with_lo_up() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    let lo = sb.json("ip -n a -j link show lo");
    let flags = lo[0]["flags"].as_array().unwrap();
    assert!(flags.iter().any(|f| f == "UP"), "{lo}");
    // A different namespace from the sandbox's own.
    let inner = sb.sh_ok("stat -L -c %i /run/netns/a");
    let outer = sb.sh_ok("stat -L -c %i /proc/self/ns/net");
    assert_ne!(inner, outer);
}

#[test]
fn netns_del_removes_the_namespace_and_fails_when_missing() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    sb.ok(&["netns", "del", "a"]);
    assert!(!sb.sh_ok("ip netns ls").contains('a'));
    assert!(sb.sh("test -e /run/netns/a").status.code() == Some(1));
    sb.fails(&["netns", "del", "a"], "namespace a does not exist");
}

#[test]
fn netns_del_removes_one_made_by_ip_netns() {
    let sb = Sandbox::new();
    sb.sh_ok("ip netns add c");
    sb.ok(&["netns", "del", "c"]);
    assert_eq!(sb.sh_ok("ip netns ls"), "");
}

#[test]
fn netns_exec_passes_the_exit_status_through() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    let out = sb.nsnet(&["netns", "exec", "a", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = sb.nsnet(&["netns", "exec", "a", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn netns_exec_runs_inside_the_namespace_with_its_own_sysfs() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    sb.sh_ok("ip -n a link add x1 type veth peer name x2");
    let inode = sb.sh_ok("stat -L -c %i /run/netns/a");
    let seen = sb.ok(&[
        "netns",
        "exec",
        "a",
        "--",
        "stat",
        "-L",
        "-c",
        "%i",
        "/proc/self/ns/net",
    ]);
    assert_eq!(seen, inode);
    let sys = sb.ok(&["netns", "exec", "a", "--", "ls", "/sys/class/net"]);
    assert_eq!(sys, "lo\nx1\nx2\n");
}

#[test]
fn netns_exec_of_a_missing_command_fails_with_127() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    let out = sb.nsnet(&["netns", "exec", "a", "--", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run /no/such/program"));
}

#[test]
fn netns_pin_keeps_a_process_namespace_alive_after_it_exits() {
    let sb = Sandbox::new();
    // The process prints its PID (as seen in the sandbox) and sleeps.
    let mut child = sb
        .command("sh")
        .args(["-c", "echo $$; exec unshare -n sleep 600"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = line.trim().to_owned();
    // Wait until unshare has exec'd sleep inside its own namespace.
    sb.wait_for("the process to enter its namespace", || {
        sb.sh(&format!(
            "[ \"$(stat -L -c %i /proc/{pid}/ns/net)\" != \"$(stat -L -c %i /proc/self/ns/net)\" ]"
        ))
        .status
        .success()
    });
    let proc_inode = sb.sh_ok(&format!("stat -L -c %i /proc/{pid}/ns/net"));
    sb.ok(&["netns", "pin", &pid, "p"]);
    assert_eq!(sb.sh_ok("stat -c %i /run/netns/p"), proc_inode);
    assert!(sb.sh_ok("ip netns ls").contains('p'));

    sb.sh_ok(&format!("kill {pid}"));
    let _ = child.wait();
    sb.wait_for("the process to exit", || {
        !sb.sh(&format!("test -e /proc/{pid}")).status.success()
    });
    // The namespace outlives its process: same inode, still usable.
    sb.sh_ok("ip netns exec p ip link set lo up");
    let seen = sb.sh_ok("ip netns exec p stat -L -c %i /proc/self/ns/net");
    assert_eq!(seen, proc_inode);

    sb.ok(&["netns", "del", "p"]);
    assert!(!sb.sh("test -e /run/netns/p").status.success());
}

#[test]
fn bad_namespace_names_are_refused_and_leave_nothing() {
    let sb = Sandbox::new();
    sb.fails(&["netns", "add", ""], "namespace name is empty");
    sb.fails(&["netns", "add", "x/y"], "contains '/'");
    sb.fails(&["netns", "add", ".."], "reserved");
    sb.fails(&["netns", "add", "host"], "reserved");
    let long = "n".repeat(256);
    sb.fails(&["netns", "add", &long], "too long");
    assert_eq!(sb.sh_ok("ls -A /run/netns 2>/dev/null || true"), "");
}

#[test]
fn adding_an_existing_namespace_fails_and_keeps_the_original() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    let before = sb.sh_ok("stat -L -c %i /run/netns/a");
    sb.fails(&["netns", "add", "a"], "namespace a already exists");
    assert_eq!(sb.sh_ok("stat -L -c %i /run/netns/a"), before);
    // One made by ip netns is just as taken.
    sb.sh_ok("ip netns add c");
    sb.fails(&["netns", "add", "c"], "namespace c already exists");
}

#[test]
fn pinning_a_missing_process_fails_and_leaves_nothing() {
    let sb = Sandbox::new();
    sb.fails(
        &["netns", "pin", "4000000", "p"],
        "process 4000000 does not exist",
    );
    assert!(!sb.sh("test -e /run/netns/p").status.success());
    sb.fails(&["netns", "pin", "0", "p"], "0 is not a PID");
}

#[test]
fn pinning_to_a_taken_name_fails() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    sb.fails(&["netns", "pin", "1", "a"], "namespace a already exists");
}

#[test]
fn commands_on_missing_namespaces_fail_clearly() {
    let sb = Sandbox::new();
    sb.fails(
        &["netns", "exec", "zz", "--", "true"],
        "namespace zz does not exist",
    );
    sb.fails(
        &["link", "add", "zz", "host"],
        "namespace zz does not exist",
    );
    assert_eq!(sb.links("host"), ["lo"]);
}

#[test]
fn running_without_privileges_fails_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "a"]);
    for args in [
        "netns add np",
        "netns del a",
        "link add a host",
        "netns exec a true",
    ] {
        let out = sb.sh(&format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} {args}",
            common::NSNET
        ));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args}");
        assert!(stderr.contains("permission denied"), "{args}: {stderr}");
        assert!(stderr.contains("run it as root"), "{args}: {stderr}");
    }
    assert_eq!(sb.sh_ok("ls /run/netns"), "a\n");
    assert_eq!(sb.links("host"), ["lo"]);
    assert_eq!(sb.links("a"), ["lo"]);
}
