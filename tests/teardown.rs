//! gc racing the kernel's namespace teardown. `ip netns del` only unmounts a
//! namespace; the kernel destroys it (and with it the veth peers inside, and
//! so their host ends) later, on a work queue. gc and check run in that
//! window must agree: gc collects an endpoint whose namespace is gone even
//! while its host veth still exists, so a check right after it is clean.

mod common;
use common::Sandbox;
use serde_json::{json, Value};

/// xorshift64 seeded from the clock (printed; `NSNET_CRASH_SEED` repeats it).
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
        println!("seed {seed} (NSNET_CRASH_SEED={seed} repeats the kill moments)");
        Rng(seed)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn inspect(sb: &Sandbox, net: &str) -> Value {
    serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON")
}

/// Host veths nsnet made that still exist.
fn nsnet_veths(sb: &Sandbox) -> Vec<String> {
    sb.links("host")
        .into_iter()
        .filter(|l| l.starts_with("nsv"))
        .collect()
}

#[test]
fn gc_then_check_right_after_namespaces_are_deleted_is_clean_while_the_kernel_tears_them_down() {
    let rounds = if std::env::var("NSNET_SLOW_TESTS").is_ok_and(|v| v == "1") {
        60
    } else {
        12
    };
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let conf = json!({
        "cniVersion": "1.0.0", "name": "web", "type": "nsnet",
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.10.0.0/24"}]]},
    });
    sb.sh_ok(&format!("cat > /run/web.json <<'EOF'\n{conf}\nEOF"));
    let n = common::NSNET;
    let mut rng = Rng::new();
    let (mut killed, mut whole, mut raced) = (0, 0, 0);
    for round in 0..rounds {
        // Four namespaces, an endpoint in each: two by connect (one with a
        // published port), two by CNI ADD; the last is killed at a random
        // moment of its run, as a runtime's timeout would.
        sb.sh_ok("for i in 0 1 2 3; do ip netns add x$i; done");
        let op = |i: usize| match i {
            0 => format!("{n} network connect web x0 -p {}:80", 20000 + round),
            2 => format!("{n} network connect web x2"),
            _ => format!(
                "CNI_COMMAND=ADD CNI_CONTAINERID=r{round}c{i} CNI_NETNS=/run/netns/x{i} \
                 CNI_IFNAME=eth0 CNI_PATH=/run/cni-bin {n} </run/web.json"
            ),
        };
        for i in 0..3 {
            sb.sh_ok(&format!("{} >/dev/null", op(i)));
        }
        let delay = rng.unit() * 0.04;
        let rc = sb.sh_ok(&format!(
            "{} >/dev/null 2>&1 & p=$!; sleep {delay:.4}; kill -9 $p 2>/dev/null; wait $p; echo $?",
            op(3)
        ));
        if rc.trim() == "137" {
            killed += 1;
        } else {
            whole += 1;
        }
        // The namespaces go, and gc and check follow at once, while the
        // kernel is still destroying them.
        let out = sb.sh(&format!(
            "for i in 0 1 2 3; do ip netns del x$i; done; {n} gc >/run/gc.out 2>&1; \
             grep -c 'still being destroyed' /run/gc.out; {n} check"
        ));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        raced += lines
            .next()
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0);
        let drift: Vec<&str> = lines.collect();
        assert!(
            out.status.success() && drift.is_empty(),
            "round {round} (op 3 {}): check after gc found drift: {drift:?} {}\ngc said: {}",
            if rc.trim() == "137" {
                "killed"
            } else {
                "finished"
            },
            String::from_utf8_lossy(&out.stderr),
            sb.sh_ok("cat /run/gc.out")
        );
        // Everything the four held is free, and nothing comes back.
        assert_eq!(inspect(&sb, "web")["endpoints"], json!([]), "round {round}");
        assert_eq!(inspect(&sb, "web")["leases"], json!([]), "round {round}");
        assert_eq!(sb.ok(&["port", "ls", "--json"]).trim(), "[]");
        assert_eq!(
            sb.sh_ok("ls -A /run/nsnet/inflight 2>/dev/null || true"),
            ""
        );
        sb.wait_for("the host veths to go", || nsnet_veths(&sb).is_empty());
        assert_eq!(sb.ok(&["gc"]), "", "round {round}: a second gc collected");
        assert_eq!(sb.ok(&["check"]), "", "round {round}");
    }
    println!(
        "{rounds} rounds: op killed {killed}, finished {whole}; gc found {raced} endpoint(s) whose namespace was gone but whose host veth the kernel had not yet destroyed"
    );
}

#[test]
fn an_endpoint_whose_namespace_name_is_deleted_but_a_process_or_a_descriptor_holds_it_is_kept_until_they_let_go(
) {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    sb.netns(&["byproc", "byfd"]);
    sb.ok(&["network", "connect", "web", "byproc"]);
    sb.ok(&["network", "connect", "web", "byfd"]);
    // One namespace stays alive through a process in it, the other through a
    // descriptor a process outside it holds open; then both names go.
    let _proc_holder =
        sb.spawn("exec ip netns exec byproc sh -c 'echo $$ >/run/held-proc; exec sleep 600'");
    let _fd_holder = sb.spawn("exec 3</run/netns/byfd; echo $$ >/run/held-fd; exec sleep 600");
    sb.wait_for("both holders", || {
        sb.sh("test -e /run/held-proc && test -e /run/held-fd")
            .status
            .success()
    });
    sb.sh_ok("ip netns del byproc && ip netns del byfd");
    let veths = nsnet_veths(&sb);
    assert_eq!(veths.len(), 2);

    // Both are alive: gc keeps them, check finds each namespace and is clean,
    // and both still answer.
    assert_eq!(sb.ok(&["gc"]), "", "gc collected a live endpoint");
    assert_eq!(sb.ok(&["check"]), "");
    assert!(sb.pings("host", "10.10.0.2") && sb.pings("host", "10.10.0.3"));
    assert_eq!(
        inspect(&sb, "web")["endpoints"].as_array().unwrap().len(),
        2
    );

    // Once let go, each namespace is gone: gc collects both at once, and a
    // check right after it is clean, whether or not the kernel has destroyed
    // the veths yet.
    let out = sb.sh_ok(&format!(
        "for p in $(cat /run/held-proc /run/held-fd); do kill -9 $p; \
           while readlink /proc/$p/ns/net >/dev/null 2>&1; do sleep 0.01; done; done; \
         {0} gc; {0} check && echo clean",
        common::NSNET
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[..2]
            .iter()
            .all(|l| l.starts_with("removed endpoint web/")),
        "{out}"
    );
    assert_eq!(lines[2], "clean", "{out}");
    assert_eq!(inspect(&sb, "web")["leases"], json!([]));
    sb.wait_for("the host veths to go", || nsnet_veths(&sb).is_empty());
}
