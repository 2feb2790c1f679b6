//! Progress lines: shown on a terminal only, so scripts see no change.

mod common;
use common::{Sandbox, NSNET};

/// A network with `n` endpoints.
fn network_of(sb: &Sandbox, n: usize) {
    sb.ok(&["network", "create", "web", "--subnet", "10.66.0.0/24"]);
    for i in 0..n {
        let ns = format!("e{i}");
        sb.netns(&[&ns]);
        sb.ok(&["network", "connect", "web", &ns]);
    }
}

#[test]
fn network_rm_force_shows_progress_on_a_terminal_only() {
    let sb = Sandbox::new();
    network_of(&sb, 10);
    // `script` gives nsnet a pseudo-terminal as stdin, stdout and stderr.
    let out = sb
        .command("script")
        .args([
            "-qec",
            &format!("{NSNET} network rm web --force"),
            "/dev/null",
        ])
        .output()
        .expect("running script");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("removing endpoints 10/10"), "{seen:?}");
    // The line is erased at the end.
    assert!(seen.ends_with("\r\x1b[K"), "{seen:?}");
    assert!(sb.links("host").iter().all(|l| !l.starts_with("nsv")));

    // Not a terminal: nothing on stderr.
    network_of_again(&sb);
    let out = sb.nsnet(&["network", "rm", "web", "--force"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

fn network_of_again(sb: &Sandbox) {
    sb.ok(&["network", "create", "web", "--subnet", "10.66.0.0/24"]);
    for i in 0..10 {
        sb.ok(&["network", "connect", "web", &format!("e{i}")]);
    }
}

#[test]
fn gc_shows_progress_on_a_terminal_only() {
    let sb = Sandbox::new();
    network_of(&sb, 10);
    // Namespaces deleted behind nsnet's back leave endpoints for gc.
    sb.sh_ok("for i in $(seq 0 9); do ip netns del e$i; done");
    // The kernel destroys a namespace (and its veths) asynchronously.
    sb.wait_for("the endpoints' veths to vanish", || {
        sb.links("host").iter().all(|l| !l.starts_with("nsv"))
    });
    let out = sb
        .command("script")
        .args(["-qec", &format!("{NSNET} gc"), "/dev/null"])
        .output()
        .expect("running script");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("gc: releasing endpoints 10/10"), "{seen:?}");
    assert_eq!(seen.matches("removed endpoint").count(), 10, "{seen:?}");
}
