//! `nsnet demo`: the whole walk-through passes, quickly, and leaves nothing
//! behind. The demo makes its own sandbox; it still runs inside a test sandbox
//! here, so that even a broken demo cannot touch the host.

mod common;
use common::Sandbox;
use std::time::{Duration, Instant};

/// What a run of the demo could leave in its caller's world: links, addresses,
/// routes, named namespaces, files under /run, mounts, nftables, sysctls, processes.
fn world(sb: &Sandbox) -> String {
    sb.sh_ok(
        "ip -j link; ip -j addr; ip -j route; ls -AR /run; nft list ruleset; \
         cat /proc/sys/net/ipv4/ip_forward; wc -l < /proc/self/mountinfo; \
         ps -e -o pid=,comm= | grep -v -e ' ps$' -e ' sh$' -e ' grep$'",
    )
}

#[test]
fn the_demo_passes_every_step_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let before = world(&sb);
    let start = Instant::now();
    let out = sb.nsnet(&["demo"]);
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stderr, "", "{stdout}");
    // Every step, in order, with commands and checks, all ticked.
    let mut at = 0;
    for n in 1..=6 {
        let head = format!("\n{n}. ");
        let found = stdout[at..]
            .find(&head)
            .unwrap_or_else(|| panic!("step {n} missing:\n{stdout}"));
        at += found + head.len();
        let end = stdout[at..].find("\n\n").map_or(stdout.len(), |e| at + e);
        let step = &stdout[at..end];
        assert!(
            step.contains("   $ nsnet "),
            "step {n} runs no command:\n{step}"
        );
        assert!(step.contains("   ✓ "), "step {n} checks nothing:\n{step}");
    }
    let checks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(['✓', '✗']))
        .collect();
    assert!(checks.len() >= 20, "{stdout}");
    for line in &checks {
        assert!(line.trim_start().starts_with('✓'), "{line}\n{stdout}");
    }
    // It ends with the topology picture and the tally.
    let graph = stdout.find("$ nsnet graph").expect("the topology");
    for object in ["pod web", "namespace red", "nsbr-demo", "*:8080->80/tcp"] {
        assert!(stdout[graph..].contains(object), "{object}:\n{stdout}");
    }
    assert!(stdout.contains(&format!("all {} checks passed", checks.len() - 1)));
    // Commands are shown as one would type them, not with the binary's path.
    assert!(!stdout.contains(common::NSNET), "{stdout}");
    assert!(took < Duration::from_secs(20), "the demo took {took:?}");
    assert_eq!(world(&sb), before, "the demo left something behind");
}

#[test]
fn a_failed_step_is_marked_and_fails_the_demo() {
    // Without the nft binary, networks cannot be made: those steps must say so
    // and the demo must fail, while the veth step still passes.
    let sb = Sandbox::new();
    let out = sb.sh(&format!("PATH=/nonexistent {} demo", common::NSNET));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✓ red pings blue"), "{stdout}");
    assert!(
        stdout.contains("✗ the command succeeds: nsnet: network connect demo ns0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ ns0 pings ns1 at 198.51.100.11: "),
        "{stdout}"
    );
    let tally = stdout.lines().rev().nth(1).unwrap_or_default();
    assert!(
        tally.starts_with("✗ ") && tally.contains("checks failed"),
        "{stdout}"
    );
    assert_eq!(sb.links("host"), ["lo"]);
}

#[test]
fn the_demo_needs_privileges_and_says_so() {
    let sb = Sandbox::new();
    let out = sb
        .command("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--", common::NSNET, "demo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_helpers_serve_and_ask() {
    // The small programs the demo runs as pod members, used on their own.
    let sb = Sandbox::new();
    let _srv = sb.spawn(&format!(
        "exec {} demo --serve 7000 --bind 127.0.0.1 --reply hi",
        common::NSNET
    ));
    sb.wait_for("the helper server", || {
        sb.nsnet(&["demo", "--ask", "127.0.0.1:7000"])
            .status
            .success()
    });
    assert_eq!(sb.ok(&["demo", "--ask", "127.0.0.1:7000"]), "hi\n");
    sb.fails(
        &["demo", "--ask", "127.0.0.1:7001"],
        "demo --ask 127.0.0.1:7001",
    );
    let probe = sb.ok(&["demo", "--probe"]);
    assert!(
        probe.starts_with("netns ") && probe.ends_with("links lo\n"),
        "{probe}"
    );
}
