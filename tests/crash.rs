//! Crash safety among concurrent operations: `pod create`, `pod rm` and
//! `network rm` killed with SIGKILL at random moments while connects and CNI
//! ADDs run beside them; and gc telling a dead run from a live process that
//! got its PID since. After gc, everything is whole or gone and check is clean.
//! (The one-at-a-time crash tests are in `tests/maint.rs`.)

mod common;
use common::crash::{batch_with_kills, slow, Rng};
use common::{Sandbox, NSNET};
use serde_json::Value;

fn inspect(sb: &Sandbox, net: &str) -> Value {
    serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON")
}

fn endpoints(sb: &Sandbox, net: &str) -> Vec<Value> {
    inspect(sb, net)["endpoints"]
        .as_array()
        .expect("endpoints")
        .clone()
}

/// `nsnet check` is clean and no journal is left.
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

/// Pods as `pod ls` lists them: (name, status).
fn pods(sb: &Sandbox) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(&sb.ok(&["pod", "ls", "--json"])).expect("pod ls JSON");
    let mut out: Vec<(String, String)> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Whether `ns` has an endpoint among `eps` (a CLI target or a CNI path).
fn has_endpoint(eps: &[Value], ns: &str) -> bool {
    eps.iter()
        .any(|e| e["namespace"] == ns || e["namespace"] == format!("/run/netns/{ns}"))
}

/// One round's objects, and what each job of its batch is.
struct Round {
    connects: Vec<String>,
    adds: Vec<String>,
    new_pods: Vec<String>,
    old_pods: Vec<String>,
    /// The network `network rm --force` removes, and its endpoints' namespaces.
    doomed: String,
    doomed_eps: Vec<String>,
    doomed_gateway: String,
}

fn cni_line(cmd: &str, ns: &str) -> String {
    format!(
        "CNI_COMMAND={cmd} CNI_CONTAINERID={ns} CNI_NETNS=/run/netns/{ns} CNI_IFNAME=eth0 \
         CNI_PATH=/run/cni-bin {NSNET} </run/web.json"
    )
}

fn prepare(sb: &Sandbox, r: usize) -> Round {
    let names =
        |p: &str, n: usize| -> Vec<String> { (0..n).map(|i| format!("{p}{r}x{i}")).collect() };
    let round = Round {
        connects: names("c", 4),
        adds: names("k", 4),
        new_pods: names("p", 3),
        old_pods: names("o", 3),
        doomed: format!("t{r}"),
        doomed_eps: names("t", 2),
        doomed_gateway: format!("10.{}.0.1", 100 + r),
    };
    for ns in round
        .connects
        .iter()
        .chain(&round.adds)
        .chain(&round.doomed_eps)
    {
        sb.netns(&[ns]);
    }
    for (i, pod) in round.old_pods.iter().enumerate() {
        let port = format!("{}:80", 30000 + 100 * r + i);
        sb.ok(&["pod", "create", pod, "--network", "web", "-p", &port]);
    }
    let subnet = format!("10.{}.0.0/24", 100 + r);
    sb.ok(&["network", "create", &round.doomed, "--subnet", &subnet]);
    for (i, ns) in round.doomed_eps.iter().enumerate() {
        let port = format!("{}:80", 31000 + 100 * r + i);
        sb.ok(&["network", "connect", &round.doomed, ns, "-p", &port]);
    }
    round
}

impl Round {
    /// The batch, in this order: connects, ADDs, pod creates, pod rms, network rm.
    fn jobs(&self, r: usize) -> Vec<String> {
        let mut jobs: Vec<String> = Vec::new();
        for (i, ns) in self.connects.iter().enumerate() {
            jobs.push(format!(
                "{NSNET} network connect web {ns} -p {}:80",
                20000 + 100 * r + i
            ));
        }
        jobs.extend(self.adds.iter().map(|ns| cni_line("ADD", ns)));
        for (i, pod) in self.new_pods.iter().enumerate() {
            jobs.push(format!(
                "{NSNET} pod create {pod} --network web -p {}:80",
                32000 + 100 * r + i
            ));
        }
        jobs.extend(self.old_pods.iter().map(|p| format!("{NSNET} pod rm {p}")));
        jobs.push(format!("{NSNET} network rm --force {}", self.doomed));
        jobs
    }
}

/// Counts of what the kills hit, for the figures the test prints.
#[derive(Default)]
struct Tally {
    killed: usize,
    finished: usize,
    kept_whole: usize,
}

/// After gc: each job that finished did all it should, each killed one is
/// whole or gone, and the store and the kernel agree on everything.
fn assert_whole_or_gone(sb: &Sandbox, round: &Round, codes: &[String], r: usize, t: &mut Tally) {
    let done = |i: usize| codes[i] == "0";
    for i in 0..codes.len() {
        if done(i) {
            t.finished += 1;
        } else {
            t.killed += 1;
        }
    }
    let when = format!("round {r}");
    assert_clean(sb, &when);

    // The network rm: finished means gone; killed, whatever is left is whole,
    // and a second rm takes it all away.
    let rm = codes.len() - 1;
    let exists = sb
        .nsnet(&["network", "inspect", &round.doomed])
        .status
        .success();
    assert!(
        !(done(rm) && exists),
        "{when}: network rm finished, the network is left"
    );
    if exists {
        for e in endpoints(sb, &round.doomed) {
            let ns = e["namespace"].as_str().unwrap_or_default();
            assert!(sb.pings(ns, &round.doomed_gateway), "{when}: {ns}");
        }
        t.kept_whole += 1;
        sb.ok(&["network", "rm", "--force", &round.doomed]);
    }
    let bridge = format!("nsbr-{}", round.doomed);
    assert!(!sb.links("host").contains(&bridge), "{when}");
    let subnet = format!("10.{}.", 100 + r);
    let left: Vec<_> = sb
        .nft_elements()
        .into_iter()
        .filter(|(_, e)| e.contains(&bridge) || e.contains(&subnet))
        .collect();
    assert!(left.is_empty(), "{when}: {left:?}");
    for ns in &round.doomed_eps {
        assert_eq!(sb.links(ns), ["lo"], "{when}: {ns}");
    }

    // Connects and ADDs: finished means there; either way, whole or `lo` alone.
    let eps = endpoints(sb, "web");
    let n_conn = round.connects.len() + round.adds.len();
    for (i, ns) in round.connects.iter().chain(&round.adds).enumerate() {
        let present = has_endpoint(&eps, ns);
        assert!(
            present || !done(i),
            "{when}: {ns} finished but has no endpoint"
        );
        if present {
            t.kept_whole += usize::from(!done(i));
            assert!(sb.pings(ns, "10.10.0.1"), "{when}: {ns}");
        } else {
            assert_eq!(sb.links(ns), ["lo"], "{when}: {ns}");
        }
    }

    // Pods: a finished create is there, a finished rm is gone; every pod left
    // runs, with its pause process, its name and its endpoint that works.
    let listed = pods(sb);
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    for (i, pod) in round.new_pods.iter().enumerate() {
        let listed = names.contains(&pod.as_str());
        assert!(
            listed || !done(n_conn + i),
            "{when}: pod create {pod} finished, no pod"
        );
        t.kept_whole += usize::from(listed && !done(n_conn + i));
    }
    let first_rm = n_conn + round.new_pods.len();
    for (i, pod) in round.old_pods.iter().enumerate() {
        let listed = names.contains(&pod.as_str());
        assert!(
            !(listed && done(first_rm + i)),
            "{when}: pod rm {pod} finished, pod left"
        );
        t.kept_whole += usize::from(listed && !done(first_rm + i));
    }
    for (pod, status) in &listed {
        assert_eq!(status, "running", "{when}: pod {pod}");
        assert!(
            eps.iter().any(|e| e["id"] == format!("web/pod:{pod}")),
            "{when}: pod {pod} has no endpoint"
        );
        assert!(sb.pings(pod, "10.10.0.1"), "{when}: pod {pod}");
    }
    assert_eq!(
        sb.live("nsnet-pause").len(),
        listed.len(),
        "{when}: pause processes"
    );
    for pod in round.new_pods.iter().chain(&round.old_pods) {
        let named = sb.sh(&format!("test -e /run/netns/{pod}")).status.success();
        assert_eq!(
            named,
            names.contains(&pod.as_str()),
            "{when}: /run/netns/{pod}"
        );
    }
    let pod_eps = eps
        .iter()
        .filter(|e| {
            e["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("web/pod:"))
        })
        .count();
    assert_eq!(pod_eps, listed.len(), "{when}: pod endpoints");

    // The store and the kernel agree: bridge ports, addresses (each once),
    // one membership and one published port per endpoint.
    let mut ports: Vec<String> = sb
        .json("ip -j link show master nsbr-web")
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect();
    ports.sort();
    let mut veths: Vec<String> = eps
        .iter()
        .filter_map(|e| e["host_interface"].as_str().map(str::to_owned))
        .collect();
    veths.sort();
    assert_eq!(ports, veths, "{when}: bridge ports");
    let mut stored: Vec<String> = eps
        .iter()
        .filter_map(|e| e["addresses"][0].as_str().map(str::to_owned))
        .collect();
    stored.sort();
    let mut unique = stored.clone();
    unique.dedup();
    assert_eq!(unique, stored, "{when}: an address handed out twice");
    let leases = inspect(sb, "web")["leases"].as_array().map_or(0, Vec::len);
    assert_eq!(leases, stored.len(), "{when}: leases");
    let elements = sb.nft_elements();
    let members = elements.iter().filter(|(s, _)| s == "members4").count();
    assert_eq!(members, eps.len(), "{when}: members4");
    // CNI ADDs here publish no port; every CLI connect and pod does one.
    let published = elements
        .iter()
        .filter(|(_, e)| e.contains("\"tcp\""))
        .count();
    let with_port = eps
        .iter()
        .filter(|e| e["ports"].as_array().is_some_and(|p| !p.is_empty()))
        .count();
    assert_eq!(published, with_port, "{when}: published ports");
}

/// Takes down what a round left, so the next one starts from the network alone.
fn clear_round(sb: &Sandbox, round: &Round) {
    for ns in &round.connects {
        let _ = sb.nsnet(&["network", "disconnect", "web", ns]);
    }
    for ns in &round.adds {
        sb.sh_ok(&cni_line("DEL", ns));
    }
    for (pod, _) in pods(sb) {
        sb.ok(&["pod", "rm", &pod]);
    }
    let all: Vec<&str> = round
        .connects
        .iter()
        .chain(&round.adds)
        .chain(&round.doomed_eps)
        .map(String::as_str)
        .collect();
    sb.sh_ok(&format!(
        "for n in {}; do ip netns del $n; done",
        all.join(" ")
    ));
    assert!(endpoints(sb, "web").is_empty());
    assert_clean(sb, "after a round was cleared");
}

#[test]
fn pod_create_pod_rm_and_network_rm_killed_among_concurrent_connects_and_adds_leave_each_whole_or_gone(
) {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let conf = serde_json::json!({"cniVersion": "1.0.0", "name": "web", "type": "nsnet",
        "ipam": {"ranges": [[{"subnet": "10.10.0.0/24"}]]}});
    sb.sh_ok(&format!("cat > /run/web.json <<'EOF'\n{conf}\nEOF"));
    let mut rng = Rng::new();
    let rounds = if slow() { 25 } else { 5 };
    let mut tally = Tally::default();
    let mut took = 0.0;
    let started = std::time::Instant::now();
    for r in 0..rounds {
        let round = prepare(&sb, r);
        let jobs = round.jobs(r);
        // Round 0 runs whole and sets the scale. Then each job is killed or
        // not by a bit of one random word, at a moment uniform over 0.9 of
        // that batch's duration.
        let pick = rng.next();
        let t0 = std::time::Instant::now();
        let codes = if r == 0 {
            batch_with_kills(&sb, &jobs, |_| false, 0.0)
        } else {
            batch_with_kills(&sb, &jobs, |i| pick >> i & 1 == 1, 0.9 * took * rng.unit())
        };
        if r == 0 {
            took = t0.elapsed().as_secs_f64();
        }
        sb.ok(&["gc"]);
        assert_whole_or_gone(&sb, &round, &codes, r, &mut tally);
        clear_round(&sb, &round);
    }
    println!(
        "{rounds} rounds of 4 connects, 4 CNI ADDs, 3 pod creates, 3 pod rms and a network rm \
         at once (a whole batch {took:.2} s): {} killed ({} of them kept whole), {} finished, \
         {:.1} s",
        tally.killed,
        tally.kept_whole,
        tally.finished,
        started.elapsed().as_secs_f64()
    );
}

/// Issue 19.6: gc knew a run by its PID alone, so a killed run whose PID the
/// kernel gave to another process kept its namespace, lease and published port
/// for as long as that process lived. The PID is reused here for real
/// (`ns_last_pid` in the sandbox's own PID namespace).
#[test]
fn gc_collects_a_killed_run_whose_pid_another_process_got_since() {
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "web", "--subnet", "10.10.0.0/24"]);
    let _run = sb.spawn(&format!(
        "exec {NSNET} run --name r1 --network web -p 8080:80 -- sleep 600"
    ));
    sb.wait_for("the run's endpoint", || endpoints(&sb, "web").len() == 1);
    assert_eq!(sb.ok(&["gc"]), "", "a live run is not garbage");
    let pid: u32 = sb
        .sh_ok("head -1 /run/nsnet/runs/r1/pid")
        .trim()
        .parse()
        .expect("a PID");
    sb.sh_ok(&format!("kill -9 {pid}"));
    sb.wait_for("the run to die", || {
        !sb.sh(&format!("test -d /proc/{pid}")).status.success()
    });
    // Its command lives on in its namespace and keeps it: kill it too.
    sb.kill_run_namespace("r1");
    // Give its PID to a new process (the sandbox is quiet: the next fork gets it).
    let mut reused = false;
    for _ in 0..20 {
        let got = sb.sh_ok(&format!(
            "echo {} > /proc/sys/kernel/ns_last_pid; setsid sleep 600 >/dev/null 2>&1 & echo $!",
            pid - 1
        ));
        if got.trim() == pid.to_string() {
            reused = true;
            break;
        }
        sb.sh(&format!("kill {}", got.trim()));
    }
    assert!(reused, "PID {pid} could not be reused");
    // The new process is `setsid` until it has exec'd `sleep`.
    sb.wait_for("the new process to exec sleep", || {
        sb.sh_ok(&format!("cat /proc/{pid}/comm")).trim() == "sleep"
    });
    assert_eq!(
        sb.sh_ok(&format!("cat /proc/{pid}/comm")).trim(),
        "sleep",
        "PID {pid} is another process now"
    );
    let out = sb.ok(&["gc"]);
    assert!(
        out.contains(&format!(
            "removed run r1: its nsnet run process {pid} is gone"
        )),
        "{out}"
    );
    assert!(out.contains("removed endpoint web/run:r1: "), "{out}");
    assert_eq!(sb.sh_ok("ls -A /run/nsnet/runs"), "");
    assert_eq!(inspect(&sb, "web")["leases"], serde_json::json!([]));
    assert!(sb.nft_elements().iter().all(|(_, e)| !e.contains("8080")));
    assert_clean(&sb, "after gc");
    // The process that got the PID is left alone.
    assert!(sb.sh(&format!("kill -0 {pid}")).status.success());
}
