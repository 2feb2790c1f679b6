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
