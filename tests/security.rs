//! The threat model's file-system and name claims (SECURITY.md): nsnet's
//! directories are its own, a symbolic link planted in its state directory is
//! never followed, and names that would reach the kernel or a printed command
//! as something else are refused.

mod common;
use common::{Sandbox, NSNET};

fn mode(sb: &Sandbox, path: &str) -> String {
    sb.sh_ok(&format!("stat -c %a {path}")).trim().to_owned()
}

#[test]
fn state_and_config_directories_are_0700_and_databases_0600_repaired_if_looser() {
    let sb = Sandbox::new();
    // Made by someone else with a loose mode (as the sandbox made the config
    // dir, and as `mkdir -p` under umask 022 would).
    sb.sh_ok("mkdir -p /run/nsnet && chmod 0777 /run/nsnet && chmod 0755 /run/nsnet-config");
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.ok(&["network", "connect", "web", "a"]);
    assert_eq!(mode(&sb, "/run/nsnet"), "700");
    assert_eq!(mode(&sb, "/run/nsnet-config"), "700");
    for db in ["/run/nsnet/nsnet.db", "/run/nsnet-config/nsnet.db"] {
        assert_eq!(mode(&sb, db), "600", "{db}");
        for side in ["-wal", "-shm"] {
            let f = format!("{db}{side}");
            if sb.sh(&format!("test -e {f}")).status.success() {
                assert_eq!(mode(&sb, &f), "600", "{f}");
            }
        }
    }
    assert_eq!(mode(&sb, "/run/nsnet/inflight"), "700");
    // A database someone loosened is put back by the next command that
    // writes to it; listings read it without writing anything (issue 24.11).
    sb.sh_ok("chmod 0666 /run/nsnet/nsnet.db");
    sb.ok(&["network", "ls"]);
    sb.ok(&["network", "inspect", "web"]);
    assert_eq!(mode(&sb, "/run/nsnet/nsnet.db"), "666");
    sb.ok(&["network", "disconnect", "web", "a"]);
    assert_eq!(mode(&sb, "/run/nsnet/nsnet.db"), "600");
}

#[test]
fn a_state_directory_another_user_owns_is_refused_and_nothing_is_made() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.sh_ok("mkdir -m 0777 /run/theirs && chown 1000:1000 /run/theirs");
    let out = sb
        .command(NSNET)
        .env("NSNET_STATE_DIR", "/run/theirs")
        .args(["network", "connect", "web", "a"])
        .output()
        .expect("nsnet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/run/theirs belongs to uid 1000, not to nsnet's user (uid 0)"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(sb.sh_ok("ls -A /run/theirs"), "");
    assert_eq!(sb.links("a"), ["lo"]);
    assert!(!sb.links("host").contains(&"nsbr-web".to_owned()));
}

/// Each place nsnet creates files under its state directory, with a link
/// planted there to a directory of the attacker's choosing: the command
/// fails with the reason, writes nothing through the link, and leaves
/// nothing half made.
#[test]
fn symlinks_planted_in_the_state_directory_are_never_followed() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.sh_ok("mkdir -p -m 0700 /run/nsnet");
    let why = "is a symbolic link or leads out of nsnet's directory: refusing to follow it";
    for (planted, args) in [
        ("pods", &["pod", "create", "p1", "--network", "web"][..]),
        (
            "runs",
            &["run", "--name", "r1", "--network", "web", "--", "true"],
        ),
        ("inflight", &["network", "connect", "web", "a"]),
    ] {
        sb.sh_ok(&format!(
            "rm -rf /run/nsnet/{planted} && mkdir -p /run/victim-{planted} && \
             ln -s /run/victim-{planted} /run/nsnet/{planted}"
        ));
        sb.fails(args, why);
        assert_eq!(
            sb.sh_ok(&format!("ls -A /run/victim-{planted}")),
            "",
            "{planted}: written through the link"
        );
        sb.sh_ok(&format!("rm /run/nsnet/{planted}"));
        assert_eq!(sb.links("a"), ["lo"], "{planted}");
        assert_eq!(sb.sh_ok("ls /run/netns"), "a\n", "{planted}");
        assert!(sb.live("nsnet-pause").is_empty(), "{planted}");
        let check = sb.nsnet(&["gc"]);
        assert!(check.status.success());
        let v: serde_json::Value =
            serde_json::from_str(&sb.ok(&["network", "inspect", "web"])).expect("JSON");
        assert_eq!(v["endpoints"], serde_json::json!([]), "{planted}");
        assert_eq!(v["leases"], serde_json::json!([]), "{planted}");
    }
    // A pod's own directory replaced by a link: the same.
    sb.sh_ok("mkdir -p /run/nsnet/pods /run/victim-p2 && ln -s /run/victim-p2 /run/nsnet/pods/p2");
    sb.fails(&["pod", "create", "p2", "--network", "web"], why);
    assert_eq!(sb.sh_ok("ls -A /run/victim-p2"), "");
    // The database itself a link: refused, the target never created.
    sb.sh_ok("mkdir -m 0700 /run/fresh && ln -s /run/elsewhere.db /run/fresh/nsnet.db");
    let out = sb
        .command(NSNET)
        .env("NSNET_STATE_DIR", "/run/fresh")
        .args(["network", "connect", "web", "a"])
        .output()
        .expect("nsnet");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(why));
    assert!(!sb.sh("test -e /run/elsewhere.db").status.success());
    // And all is well once the links are gone.
    sb.sh_ok("rm /run/nsnet/pods/p2");
    sb.ok(&["pod", "create", "p2", "--network", "web"]);
    sb.ok(&["network", "connect", "web", "a"]);
}

#[test]
fn names_that_the_kernel_or_ip_would_read_otherwise_are_refused() {
    let sb = Sandbox::new();
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.fails(
        &["network", "connect", "web", "a", "--ifname", "eth%d"],
        "contains '%', which is not allowed",
    );
    sb.fails(
        &["netns", "add", "--", "-all"],
        "must start with a letter or a digit",
    );
    let out = sb.cni(
        &[
            ("CNI_COMMAND", Some("ADD")),
            ("CNI_CONTAINERID", Some("c1")),
            ("CNI_NETNS", Some("/run/netns/a")),
            ("CNI_IFNAME", Some("eth%d")),
        ],
        r#"{"cniVersion":"1.0.0","name":"web","type":"nsnet",
            "ipam":{"ranges":[[{"subnet":"10.10.0.0/24"}]]}}"#,
    );
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a CNI error");
    assert_eq!(err["code"], 4, "{err}");
    assert_eq!(sb.links("a"), ["lo"]);
    assert_eq!(sb.links("host"), ["lo"]);
}
