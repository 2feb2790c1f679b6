//! The CLI's habits (issue 24, items 8-16): options, exit codes, messages,
//! output, names, as a user who knows docker and ip meets them.

mod common;
use common::Sandbox;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs nsnet and asserts its exit code; returns (stdout, stderr).
fn exits(sb: &Sandbox, args: &[&str], code: i32) -> (String, String) {
    let out = sb.nsnet(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "nsnet {args:?}: stdout {:?} stderr {:?}",
        stdout(&out),
        stderr(&out)
    );
    (stdout(&out), stderr(&out))
}

/// Issue 24.8: `nsnet run --rm -- true` ran `--rm` as the command.
#[test]
fn unknown_options_before_the_command_are_usage_errors() {
    let sb = Sandbox::new();
    for (args, bad) in [
        (&["run", "--rm", "--", "true"][..], "'--rm'"),
        (&["run", "-d", "--", "true"], "'-d'"),
        (&["run", "-it", "--", "true"], "'-i'"),
        (&["pod", "exec", "p", "--rm", "--", "true"], "'--rm'"),
        (&["netns", "exec", "a", "-x", "true"], "'-x'"),
    ] {
        let (_, err) = exits(&sb, args, 2);
        assert!(err.contains(&format!("unexpected argument {bad}")), "{err}");
        assert!(!err.contains("cannot run"), "{err}");
    }
    // clap's suggestion for a near miss.
    let (_, err) = exits(&sb, &["run", "--net", "none", "--", "true"], 2);
    assert!(
        err.contains("a similar argument exists: '--network'"),
        "{err}"
    );
    // Nothing was made: no run directory, no network.
    sb.sh_ok("test ! -e /run/nsnet/runs || test -z \"$(ls /run/nsnet/runs)\"");
    // The command's own options still pass, with or without `--`.
    let (out, _) = exits(&sb, &["run", "--network", "none", "echo", "-n", "x"], 0);
    assert_eq!(out, "x");
    let (out, _) = exits(
        &sb,
        &["run", "--network", "none", "--", "echo", "-e", "y"],
        0,
    );
    assert_eq!(out, "y\n");
}

/// Issue 24.9: `run -p 80` never said which host port it picked.
#[test]
fn run_prints_the_host_port_it_picked() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.89.0.0/24"]);
    // The command reports the port nsnet holds for it while it runs.
    let out = sb.nsnet(&[
        "run",
        "--network",
        "web",
        "-p",
        "80",
        "--",
        "sh",
        "-c",
        &format!("{} port ls", common::NSNET),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("nsnet: run: published "))
        .unwrap_or_else(|| panic!("no published line: {err:?}"));
    let port: u16 = line
        .split("->")
        .next()
        .and_then(|h| h.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no host port in {line:?}"));
    assert!(port >= 49152, "{line}");
    assert!(line.ends_with("->80/tcp"), "{line}");
    // The port is the one nsnet holds for the run (the command itself lists
    // it); stdout stays the command's own.
    let listed = stdout(&out);
    assert!(listed.contains(&format!(":{port}->80/tcp")), "{listed}");
    assert!(!listed.contains("nsnet: run"), "{listed}");
}

/// Issue 24.10: one exit-code scheme: 0 ok, 1 no/drift, 2 usage, 125 nsnet
/// failed, 126/127 the command cannot run / is not found; the error once.
#[test]
fn exit_codes_follow_one_scheme() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.89.1.0/24"]);
    sb.ok(&["pod", "create", "p1", "--network", "web"]);
    sb.ok(&["netns", "add", "a"]);
    sb.sh_ok("printf 'echo x\\n' > /run/plain && chmod 644 /run/plain");
    for prefix in [
        &["pod", "exec", "p1", "--"][..],
        &["run", "--network", "web", "--"],
        &["run", "--network", "none", "--"],
        &["netns", "exec", "a", "--"],
    ] {
        let mut args = prefix.to_vec();
        args.push("/no/such/cmd");
        let (_, err) = exits(&sb, &args, 127);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot run /no/such/cmd"), "{err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "repeated: {err}"
        );
        args.pop();
        args.push("/run/plain");
        let (_, err) = exits(&sb, &args, 126);
        assert!(
            err.contains("cannot run /run/plain: Permission denied"),
            "{err}"
        );
        assert_eq!(err.matches("Permission denied").count(), 1, "{err}");
    }
    // A missing working directory is blamed on itself, not on the command.
    let (_, err) = exits(
        &sb,
        &["pod", "exec", "p1", "--workdir", "/nonexist", "--", "true"],
        126,
    );
    assert!(
        err.contains("working directory /nonexist: No such file or directory"),
        "{err}"
    );
    assert!(!err.contains("cannot run"), "{err}");
    // The command's own status passes through.
    exits(&sb, &["pod", "exec", "p1", "--", "sh", "-c", "exit 3"], 3);
    // check: drift is the answer no (1); an unknown network is a failure (125).
    exits(&sb, &["check"], 0);
    let (_, err) = exits(&sb, &["check", "nope"], 125);
    assert!(err.contains("network nope does not exist"), "{err}");
    sb.sh_ok("ip link del nsbr-web");
    exits(&sb, &["check", "web"], 1);
    // Usage errors: 2.
    exits(&sb, &["network", "create"], 2);
    exits(&sb, &["graph", "--format", "png"], 2);
    // Permission denied is nsnet failing (125), not "blocked" (1).
    let out = sb
        .command("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(common::NSNET)
        .args(["doctor", "p1", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    // Other failures of nsnet's own: 125.
    exits(&sb, &["network", "rm", "nope"], 125);
    exits(&sb, &["pod", "exec", "nope", "--", "true"], 125);
}

/// Runs nsnet as user nobody inside the sandbox.
fn as_nobody(sb: &Sandbox, args: &[&str]) -> Output {
    sb.command("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(common::NSNET)
        .args(args)
        .output()
        .unwrap()
}

/// SQLite's own words, which must never reach a user alone.
fn assert_no_raw_store_error(err: &str) {
    for raw in ["Error code", "SQLITE_", "attempt to write", "os error"] {
        assert!(!err.contains(raw), "raw store error {raw:?}: {err}");
    }
}

/// Issue 24.11: listings opened the databases for writing ("attempt to write
/// a readonly database: Error code 1544"), and a damaged file said
/// "Error code 26" without a word on what to do.
#[test]
fn listings_need_no_write_access_and_store_errors_say_what_to_do() {
    let sb = Sandbox::new();
    // Nothing recorded yet: empty listings, and nothing is created.
    for args in [
        &["network", "ls"][..],
        &["pod", "ls"],
        &["port", "ls"],
        &["network", "ls", "--json"],
    ] {
        sb.ok(args);
    }
    sb.fails(&["network", "inspect", "web"], "network web does not exist");
    sb.sh_ok("test ! -e /run/nsnet/nsnet.db && test ! -e /run/nsnet-config/nsnet.db");
    sb.ok(&["network", "create", "web", "--subnet", "10.89.2.0/24"]);
    sb.ok(&["pod", "create", "p1", "--network", "web", "-p", "8080:80"]);
    // As a user who may not read root's records: one line that says so.
    for args in [
        &["network", "ls"][..],
        &["network", "inspect", "web"],
        &["pod", "ls"],
        &["port", "ls"],
        &["graph"],
        &["run", "--", "true"],
    ] {
        let out = as_nobody(&sb, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
        assert!(
            err.contains("run nsnet as root") || err.contains("(run it as root)"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_no_raw_store_error(&err);
    }
    // On a read-only file system the listings still work.
    sb.sh_ok(
        "mount --bind /run/nsnet-config /run/nsnet-config && \
         mount -o remount,bind,ro /run/nsnet-config && \
         mount --bind /run/nsnet /run/nsnet && mount -o remount,bind,ro /run/nsnet",
    );
    let ls = sb.ok(&["network", "ls"]);
    assert!(ls.contains("web") && ls.contains("10.89.2.0/24"), "{ls}");
    assert!(sb.ok(&["pod", "ls"]).contains("p1"));
    assert!(sb.ok(&["port", "ls"]).contains("8080->80/tcp"));
    let inspect = sb.ok(&["network", "inspect", "web"]);
    assert!(inspect.contains("10.89.2.0/24"), "{inspect}");
    // A change says why it cannot be made.
    let out = sb.nsnet(&["network", "create", "db"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("read-only file system"), "{err}");
    assert_no_raw_store_error(&err);
    sb.sh_ok("umount /run/nsnet && umount /run/nsnet-config");
    // A damaged file is named, with the way out.
    sb.sh_ok(
        "rm -f /run/nsnet-config/nsnet.db-wal /run/nsnet-config/nsnet.db-shm && \
         head -c 4096 /dev/zero | tr '\\0' x > /run/nsnet-config/nsnet.db",
    );
    for args in [&["network", "ls"][..], &["network", "create", "db"]] {
        let out = sb.nsnet(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains("/run/nsnet-config/nsnet.db is damaged") && err.contains("move it aside"),
            "{err}"
        );
        assert_no_raw_store_error(&err);
    }
    // The way out works: moved aside, nsnet starts afresh.
    sb.sh_ok("mv /run/nsnet-config/nsnet.db /run/nsnet-config/nsnet.db.damaged");
    sb.ok(&["network", "ls"]);
}

/// Issue 24.12: networks called like a `--network` mode were accepted, and
/// messages and listings showed internal ids and state paths.
#[test]
fn mode_names_are_refused_and_owners_are_shown_by_name() {
    let sb = Sandbox::new();
    for name in ["host", "none", "default", "bridge"] {
        let (_, err) = exits(&sb, &["network", "create", name], 2);
        assert!(err.contains("is reserved"), "{err}");
    }
    assert_eq!(sb.ok(&["network", "ls", "-q"]), "");
    sb.ok(&["network", "create", "web", "--subnet", "10.89.3.0/24"]);
    sb.netns(&["a", "b"]);
    sb.ok(&["network", "connect", "web", "a", "-p", "8080:80"]);
    sb.ok(&["pod", "create", "p1", "--network", "web", "-p", "9090:90"]);
    let _srv = sb.spawn(&format!(
        "exec {} run --name srv --network web -p 7070:70 -- sleep 60",
        common::NSNET
    ));
    sb.wait_for("the run's port", || sb.ok(&["port", "ls"]).contains("7070"));
    // Conflicts name the holder as graph does.
    for (spec, owner) in [
        ("8080:80", "by a"),
        ("9090:90", "by pod p1"),
        ("7070:70", "by run:srv"),
    ] {
        sb.fails(
            &["network", "connect", "web", "b", "-p", spec],
            &format!("is already published {owner}"),
        );
    }
    let ports = sb.ok(&["port", "ls"]);
    for owner in ["pod p1", "run:srv", " a "] {
        assert!(ports.contains(owner), "{ports}");
    }
    assert!(!ports.contains("/run/nsnet"), "{ports}");
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.ok(&["network", "inspect", "web"])).unwrap();
    let mut owners: Vec<&str> = inspect["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["owner"].as_str().unwrap())
        .collect();
    owners.sort();
    assert_eq!(owners, ["a", "pod p1", "run:srv"]);
    let leases: Vec<&str> = inspect["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["owner"].as_str().unwrap())
        .collect();
    assert_eq!(leases.len(), 3, "{leases:?}");
    let (_, err) = exits(&sb, &["network", "rm", "web"], 125);
    for owner in ["a eth0", "pod p1 eth0", "run:srv eth0"] {
        assert!(err.contains(owner), "{err}");
    }
    assert!(!err.contains("/run/nsnet"), "{err}");
}

/// Issue 24.13: `-p 1.2.3.4:8085:80` was "published" on an address no
/// interface of the host has.
#[test]
fn publishing_on_an_address_the_host_lacks_is_refused() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.89.4.0/24"]);
    sb.netns(&["a"]);
    sb.fails(
        &["network", "connect", "web", "a", "-p", "1.2.3.4:8085:80"],
        "no interface of the host has the address 1.2.3.4 (cannot assign requested address)",
    );
    // Nothing was made.
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.ok(&["port", "ls", "-q"]), "");
    let (_, err) = exits(
        &sb,
        &[
            "run",
            "--network",
            "web",
            "-p",
            "1.2.3.4:8085:80",
            "--",
            "true",
        ],
        125,
    );
    assert!(err.contains("cannot assign requested address"), "{err}");
    // Once an interface has it, it is published.
    sb.sh_ok("ip addr add 1.2.3.4/32 dev lo");
    sb.ok(&["network", "connect", "web", "a", "-p", "1.2.3.4:8085:80"]);
    assert_eq!(sb.ok(&["port", "ls", "-q"]), "1.2.3.4:8085->80/tcp\n");
}

/// Issue 24.14: fixed-width tables broke with long names, `pod create`
/// printed a half-JSON line, JSON styles differed.
#[test]
fn tables_fit_their_content_and_json_has_one_style() {
    let sb = Sandbox::new();
    let long_net = "averyveryverylongnetworkname";
    let long_ns = "averyveryverylongnamespacename";
    sb.ok(&["network", "create", long_net, "--subnet", "10.89.5.0/24"]);
    sb.ok(&["network", "create", "v6", "--subnet", "fd00:89::/64"]);
    sb.netns(&[long_ns, "b"]);
    sb.sh_ok("ip addr add fd00:89:1::1/128 dev lo nodad");
    sb.ok(&["network", "connect", long_net, long_ns, "-p", "8080:80"]);
    sb.ok(&[
        "network",
        "connect",
        "v6",
        "b",
        "-p",
        "[fd00:89:1::1]:8081:80",
    ]);
    // Every column starts where its header starts, on every line.
    for args in [&["network", "ls"][..], &["port", "ls"], &["netns", "ls"]] {
        let text = sb.ok(args);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let starts: Vec<usize> = header
            .match_indices(|c: char| c.is_ascii_uppercase())
            .map(|(i, _)| i)
            .filter(|&i| i == 0 || header.as_bytes()[i - 1] == b' ')
            .collect();
        for line in lines {
            for &s in &starts[1..] {
                assert!(
                    line.as_bytes()[s - 1] == b' ' && line.as_bytes()[s] != b' ',
                    "{args:?}: column at {s} broken:\n{text}"
                );
            }
        }
        assert!(text.contains(long_net) || text.contains(long_ns) || args[0] == "netns");
    }
    // pod create: plain words, no JSON fragments.
    let out = sb.ok(&["pod", "create", "p1", "--network", "v6"]);
    assert!(!out.contains('[') && !out.contains('"'), "{out}");
    assert!(out.lines().any(|l| l.starts_with("v6 fd00:89::")), "{out}");
    // One JSON style: pretty everywhere, addresses without brackets.
    for args in [
        &["netns", "ls", "--json"][..],
        &["network", "ls", "--json"],
        &["port", "ls", "--json"],
        &["pod", "ls", "--json"],
        &["pod", "inspect", "p1"],
        &["network", "inspect", "v6"],
        &["gc", "--json"],
        &["check", "--json"],
        &["network", "ls", "--format", "json"],
    ] {
        let text = sb.ok(args);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Pretty: one value or key per line, indented by two spaces.
        let empty = v.as_array().is_some_and(|a| a.is_empty());
        if !empty {
            let second = text.lines().nth(1).unwrap_or_default();
            assert!(
                second.starts_with("  ") && !second.starts_with("   "),
                "{args:?}: {text}"
            );
        }
        assert_eq!(text.lines().count(), text.matches('\n').count(), "{args:?}");
        assert!(text.ends_with("\n") && !text.ends_with("\n\n"), "{args:?}");
    }
    let ports: serde_json::Value = serde_json::from_str(&sb.ok(&["port", "ls", "--json"])).unwrap();
    let v6 = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["network"] == "v6")
        .unwrap();
    assert_eq!(v6["host_address"], "fd00:89:1::1");
    // gc --json: `object` is an id, not prose.
    sb.sh_ok(&format!("ip netns del {long_ns}"));
    let gc: serde_json::Value = serde_json::from_str(&sb.ok(&["gc", "--json"])).unwrap();
    let removed = gc["removed"].as_array().unwrap();
    let ep = removed.iter().find(|r| r["kind"] == "endpoint").unwrap();
    assert!(
        ep["object"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{long_net}/")),
        "{ep}"
    );
    assert!(!ep["object"].as_str().unwrap().contains(' '), "{ep}");
}

/// Issue 24.15: habits from docker and ip.
#[test]
fn docker_and_ip_habits() {
    let sb = Sandbox::new();
    for (n, subnet) in [
        ("a1", "10.89.6.0/24"),
        ("a2", "10.89.7.0/24"),
        ("a3", "10.89.8.0/24"),
    ] {
        sb.ok(&["network", "create", n, "--subnet", subnet]);
    }
    sb.netns(&["x"]);
    sb.ok(&["network", "connect", "a3", "x"]);
    // ls -q and --format.
    assert_eq!(sb.ok(&["network", "ls", "-q"]), "a1\na2\na3\n");
    assert_eq!(
        sb.ok(&["network", "ls", "--format", "{{.Name}}={{.Subnets}}"]),
        "a1=10.89.6.0/24\na2=10.89.7.0/24\na3=10.89.8.0/24\n"
    );
    let (_, err) = exits(&sb, &["network", "ls", "--format", "{{.Nope}}"], 2);
    assert!(err.contains("{{.Name}}"), "{err}");
    exits(&sb, &["network", "ls", "--format", "{{Name}}"], 2);
    // inspect and rm take several names.
    let docs: serde_json::Value =
        serde_json::from_str(&sb.ok(&["network", "inspect", "a1", "a2"])).unwrap();
    assert_eq!(docs[0]["name"], "a1");
    assert_eq!(docs[1]["name"], "a2");
    // prune removes only networks without endpoints.
    sb.ok(&["network", "create", "a4", "--subnet", "10.89.9.0/24"]);
    sb.ok(&["network", "rm", "a1", "a2"]);
    assert_eq!(sb.ok(&["network", "prune"]), "a4\n");
    assert_eq!(sb.ok(&["network", "ls", "-q"]), "a3\n");
    // A failure among several names: the others are still done, exit 125.
    sb.ok(&["network", "create", "a5", "--subnet", "10.89.10.0/24"]);
    let (_, err) = exits(&sb, &["network", "rm", "nope", "a5"], 125);
    assert!(err.contains("network nope does not exist"), "{err}");
    assert_eq!(sb.ok(&["network", "ls", "-q"]), "a3\n");
    // netns delete / rm are del.
    sb.netns(&["d1", "d2"]);
    sb.ok(&["netns", "delete", "d1"]);
    sb.ok(&["netns", "rm", "d2"]);
    let names = sb.ok(&["netns", "ls", "-q"]);
    assert!(!names.contains("d1") && !names.contains("d2"), "{names}");
    // link add --addr without a length: a host address, as ip reads it.
    sb.netns(&["x2", "y"]);
    sb.ok(&[
        "link",
        "add",
        "x2",
        "y",
        "--addr",
        "10.0.0.3",
        "--peer-addr",
        "fd00::4",
    ]);
    assert_eq!(sb.global_addresses("x2"), ["10.0.0.3/32"]);
    assert!(sb.global_addresses("y").contains(&"fd00::4/128".to_owned()));
    // netns pin abc x: not Rust's "invalid digit".
    let (_, err) = exits(&sb, &["netns", "pin", "abc", "z"], 2);
    assert!(err.contains("abc is not a PID"), "{err}");
    assert!(!err.contains("invalid digit"), "{err}");
    // container:POD hints pod:POD.
    sb.ok(&["pod", "create", "p1", "--network", "a3"]);
    sb.fails(
        &["run", "--network", "container:p1", "--", "true"],
        "p1 is a pod: --network pod:p1",
    );
}
