//! nsnet beside other firewalls that drop forwarded traffic (issue 14): an
//! iptables FORWARD policy of DROP (nft and legacy backend), a foreign nftables
//! forward chain with policy drop, a real Docker daemon and a real firewalld,
//! each started inside the test's sandbox. nsnet's networks work with them,
//! internal and isolated networks stay closed, a network created with
//! `--no-foreign-rules` is dropped (the control: the same packets without
//! nsnet's rules fail), and once the networks are removed the other
//! firewall's ruleset is what it was before nsnet.
//!
//! Docker and firewalld are installed by `.ci/run`: a missing one fails the
//! test, it is never skipped.

mod common;
use common::{Background, Sandbox};

/// The outside namespace's address and the sandbox host's on that link.
const OUT: &str = "203.0.113.2";
const HOST: &str = "203.0.113.1";

/// `TOOL-save` of one iptables backend, normalised: no comment lines, no
/// counters.
fn saved(sb: &Sandbox, tool: &str) -> String {
    sb.sh_ok(&format!("{tool}-save"))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once(" [") {
            Some((chain, _)) if l.starts_with(':') => chain.to_owned(),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The endpoints and servers every scenario uses; dropped with the test.
struct Nets {
    _servers: Vec<Background>,
}

/// Networks `web` (masqueraded, a publishes 8080), `int` (internal), `iso`
/// (isolated) and `off` (`--no-foreign-rules`), with br_netfilter on, so
/// frames between two ports of one bridge pass the IP hooks.
fn bring_up(sb: &Sandbox) -> Nets {
    sb.sh_ok(
        "sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1",
    );
    sb.netns(&["a", "b", "c", "d", "e", "f", "g"]);
    for (net, subnet, opt) in [
        ("web", "10.88.1.0/24", None),
        ("int", "10.88.2.0/24", Some("--internal")),
        ("iso", "10.88.3.0/24", Some("--isolate")),
        ("off", "10.88.4.0/24", Some("--no-foreign-rules")),
    ] {
        let mut args = vec!["network", "create", net, "--subnet", subnet];
        args.extend(opt);
        sb.ok(&args);
    }
    for (net, ns, ip) in [
        ("web", "a", "10.88.1.10"),
        ("web", "b", "10.88.1.11"),
        ("int", "c", "10.88.2.10"),
        ("int", "d", "10.88.2.11"),
        ("iso", "e", "10.88.3.10"),
        ("iso", "f", "10.88.3.11"),
        ("off", "g", "10.88.4.10"),
    ] {
        let mut args = vec!["network", "connect", net, ns, "--ip", ip];
        if ns == "a" {
            args.extend(["-p", "8080:80"]);
        }
        sb.ok(&args);
    }
    // Internal endpoints get no default route: give c one, so that what
    // stops it is the firewall and not the lack of a route.
    sb.sh_ok("ip -n c route add default via 10.88.2.1");
    // The outside routes the endpoints' subnets to the host, so that only
    // the firewalls decide whether it reaches them.
    sb.sh_ok("ip -n outside route add 10.88.0.0/16 via 203.0.113.1");
    Nets {
        _servers: vec![
            sb.tcp_server("a", 80, "a"),
            sb.tcp_server("d", 80, "d"),
            sb.tcp_server("f", 80, "f"),
            sb.tcp_echo_peer("outside", OUT, 9000),
        ],
    }
}

/// What must work with the other firewall in place.
fn assert_open(sb: &Sandbox, label: &str) {
    let ask = |ns: &str, addr: &str, port: u16| sb.tcp_ask(ns, addr, port);
    assert_eq!(
        ask("a", OUT, 9000).as_deref(),
        Some(HOST),
        "{label}: an endpoint reaches the outside, masqueraded"
    );
    assert_eq!(
        ask("outside", HOST, 8080).as_deref(),
        Some("a"),
        "{label}: a published port answers from outside"
    );
    assert_eq!(
        ask("host", "127.0.0.1", 8080).as_deref(),
        Some("a"),
        "{label}: a published port answers at 127.0.0.1"
    );
    assert_eq!(
        ask("b", "10.88.1.10", 80).as_deref(),
        Some("a"),
        "{label}: two endpoints of one bridge, br_netfilter on"
    );
    assert_eq!(
        ask("c", "10.88.2.11", 80).as_deref(),
        Some("d"),
        "{label}: endpoints of an internal network reach each other"
    );
    assert_eq!(
        ask("e", OUT, 9000).as_deref(),
        Some(HOST),
        "{label}: an isolated network's endpoint reaches the outside"
    );
}

/// What must stay closed with nsnet's accepts in the other firewall.
fn assert_closed(sb: &Sandbox, label: &str) {
    let ask = |ns: &str, addr: &str, port: u16| sb.tcp_ask(ns, addr, port);
    assert_eq!(ask("c", OUT, 9000), None, "{label}: internal → outside");
    assert_eq!(
        ask("outside", "10.88.2.11", 80),
        None,
        "{label}: outside → internal endpoint"
    );
    assert_eq!(
        ask("outside", "10.88.1.10", 80),
        None,
        "{label}: outside → unpublished port of a masqueraded network"
    );
    assert_eq!(
        ask("e", "10.88.3.11", 80),
        None,
        "{label}: isolated endpoints do not reach each other"
    );
    assert!(
        sb.ping_fails("e", "10.88.3.11"),
        "{label}: isolated endpoints do not ping each other"
    );
    assert_eq!(
        ask("a", "10.88.2.11", 80),
        None,
        "{label}: another network → internal network"
    );
}

/// The control: the network that opted out is dropped by the other firewall.
fn assert_opted_out_is_dropped(sb: &Sandbox, label: &str) {
    assert_eq!(
        sb.tcp_ask("g", OUT, 9000),
        None,
        "{label}: without nsnet's rules the other firewall drops the endpoint's traffic"
    );
}

fn remove_all(sb: &Sandbox) {
    for net in ["web", "int", "iso", "off"] {
        sb.ok(&["network", "rm", "--force", net]);
    }
}

/// nsnet's rules as `-S` lists them: those carrying its comment.
fn nsnet_rules(sb: &Sandbox, tool: &str, chain: &str) -> Vec<String> {
    sb.sh_ok(&format!("{tool} -w -S {chain}"))
        .lines()
        .filter(|l| l.contains("nsnet network"))
        .map(str::to_owned)
        .collect()
}

/// Runs `nsnet check`; returns (clean, its lines).
fn check(sb: &Sandbox) -> (bool, String) {
    let out = sb.nsnet(&["check"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// An iptables backend's FORWARD policy DROP: what `iptables -P FORWARD DROP`
/// does on a host that routes for nobody.
fn forward_drop(tool: &str) {
    let sb = Sandbox::with_outside();
    sb.sh_ok(&format!("{tool} -w -P FORWARD DROP"));
    let before = saved(&sb, tool);
    let nets = bring_up(&sb);
    assert_eq!(
        nsnet_rules(&sb, tool, "FORWARD").len(),
        3 + 3 + 1,
        "web and iso: within, leaving, replies; int: within; off: none"
    );
    assert!(
        nsnet_rules(&sb, tool, "FORWARD")
            .iter()
            .any(|r| r.contains("-i nsbr-web -o nsbr-web -m comment --comment \"nsnet network web: within its bridge\" -j ACCEPT")),
        "{:?}",
        nsnet_rules(&sb, tool, "FORWARD")
    );
    assert_open(&sb, tool);
    assert_closed(&sb, tool);
    assert_opted_out_is_dropped(&sb, tool);

    // Someone restores their ruleset (dropping nsnet's rules): check
    // reports, reload puts them back, and the packets pass again.
    sb.sh_ok(&format!("{tool} -w -F FORWARD"));
    assert_eq!(sb.tcp_ask("a", OUT, 9000), None, "{tool}: flushed");
    let (clean, lines) = check(&sb);
    assert!(!clean, "{lines}");
    assert!(
        lines.contains(&format!(
            "network web: {tool} -t filter FORWARD: -i nsbr-web -m comment"
        )) && lines.contains("is missing (nsnet firewall reload puts it back)"),
        "{lines}"
    );
    sb.ok(&["firewall", "reload"]);
    let (clean, lines) = check(&sb);
    assert!(clean, "{lines}");
    assert_open(&sb, &format!("{tool}, after firewall reload"));

    // gc puts them back too.
    sb.sh_ok(&format!("{tool} -w -F FORWARD"));
    let gc = sb.ok(&["gc"]);
    assert!(
        gc.contains("restored iptables") && gc.contains("of network web"),
        "{gc}"
    );
    let (clean, lines) = check(&sb);
    assert!(clean, "{lines}");
    assert_eq!(
        sb.tcp_ask("a", OUT, 9000).as_deref(),
        Some(HOST),
        "after gc"
    );

    // A network that is no longer up (its namespaces and bridge deleted by
    // hand): gc releases its endpoints and deletes its rules.
    drop(nets);
    sb.sh_ok(
        "kill $(ip netns pids e) $(ip netns pids f) 2>/dev/null; \
         ip link del nsbr-iso && ip netns del e && ip netns del f",
    );
    wait_until("the deleted namespaces' veths to go", 10, || {
        sb.sh_ok("ip -o link show type veth | grep -c nsv || true")
            .trim()
            == "5"
    });
    let gc = sb.ok(&["gc"]);
    assert_eq!(gc.matches("removed rule").count(), 3, "{gc}");
    assert!(
        gc.contains("network iso is not up (its bridge nsbr-iso is gone)"),
        "{gc}"
    );
    assert!(!nsnet_rules(&sb, tool, "FORWARD")
        .iter()
        .any(|r| r.contains("nsbr-iso")));
    remove_all(&sb);
    assert_eq!(saved(&sb, tool), before, "{tool}: ruleset as before nsnet");
}

#[test]
fn forward_policy_drop_of_iptables_nft_lets_nsnet_networks_through() {
    forward_drop("iptables-nft");
}

/// Legacy xtables tables are per network namespace: the sandbox's are its own.
#[test]
fn forward_policy_drop_of_iptables_legacy_lets_nsnet_networks_through() {
    forward_drop("iptables-legacy");
}

#[test]
fn foreign_nft_forward_chain_with_policy_drop_lets_nsnet_networks_through() {
    let sb = Sandbox::with_outside();
    sb.sh_ok(
        "nft add table inet filter && \
         nft add chain inet filter forward '{ type filter hook forward priority 0; policy drop; }' && \
         nft add rule inet filter forward iifname veth-outside oifname lo counter accept",
    );
    let listing = || sb.sh_ok("nft list table inet filter");
    let before = listing();
    let nets = bring_up(&sb);
    let ours = sb.sh_ok("nft -a list chain inet filter forward");
    assert_eq!(
        ours.matches("comment \"nsnet network ").count(),
        4 + 4 + 1,
        "{ours}"
    );
    // At the top: before the user's rule.
    let first = ours
        .lines()
        .find(|l| l.contains("accept"))
        .unwrap_or_default();
    assert!(first.contains("nsnet network"), "{ours}");
    assert_open(&sb, "nft");
    assert_closed(&sb, "nft");
    assert_opted_out_is_dropped(&sb, "nft");
    // With the option off, doctor still names what drops.
    let doctor = sb.nsnet(&["doctor", "g", &format!("{OUT}:9000")]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("table inet filter chain forward (hook forward) drops it"),
        "{text}"
    );
    let inspect = sb.ok(&["network", "inspect", "web"]);
    assert!(
        inspect.contains("nft inet filter forward: iifname \\\"nsbr-web\\\" accept"),
        "{inspect}"
    );
    drop(nets);
    remove_all(&sb);
    assert_eq!(listing(), before, "the user's table as before nsnet");
}

/// `GET /` over HTTP from namespace `ns` (`host`: the sandbox); the body's
/// last line, or None.
fn http_get(sb: &Sandbox, ns: &str, addr: &str, port: u16) -> Option<String> {
    let prefix = if ns == "host" {
        String::new()
    } else {
        format!("ip netns exec {ns} ")
    };
    let out = sb.sh(&format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | \
         {prefix}timeout 5 socat -T3 - TCP:{addr}:{port},connect-timeout=3"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    (out.status.success() && text.contains(" 200 OK"))
        .then(|| text.lines().last().unwrap_or_default().trim().to_owned())
}

/// Waits (up to `secs`) until `cond` holds.
fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Mounts the host's cgroup hierarchies inside the sandbox (its fresh /sys
/// has none), as runc needs them: cgroup v2 alone, or v1 with each
/// controller where /proc/self/cgroup names it.
fn mount_cgroups(sb: &Sandbox) {
    let v2 = std::process::Command::new("stat")
        .args(["-fc", "%T", "/sys/fs/cgroup"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "cgroup2fs")
        .unwrap_or(false);
    if v2 {
        sb.sh_ok("mount -t cgroup2 cgroup2 /sys/fs/cgroup");
        return;
    }
    let mut script = String::from("set -e; mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup\n");
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    for line in own.lines() {
        let Some(controllers) = line.split(':').nth(1) else {
            continue;
        };
        if controllers.is_empty() {
            script.push_str(
                "mkdir -p /sys/fs/cgroup/unified; mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified\n",
            );
            continue;
        }
        let dir = controllers.trim_start_matches("name=");
        let opts = if controllers.starts_with("name=") {
            format!("none,{controllers}")
        } else {
            controllers.to_owned()
        };
        script.push_str(&format!(
            "mkdir -p /sys/fs/cgroup/{dir}; mount -t cgroup -o {opts} cgroup /sys/fs/cgroup/{dir}\n"
        ));
    }
    sb.sh_ok(&script);
}

/// Debian's Docker daemon inside the sandbox: its data root on a tmpfs, exec
/// root, pid file and socket under the sandbox's /run, vfs storage, its own
/// containerd, iptables on. Its containers' cgroups (the host's
/// hierarchies: the sandbox cannot have its own) go under a parent named for
/// this test, removed when it drops.
struct Docker<'a> {
    sb: &'a Sandbox,
    parent: String,
    daemon: Option<Background>,
}

const DOCKER: &str = "/usr/bin/docker -H unix:///run/docker.sock";

impl<'a> Docker<'a> {
    fn start(sb: &'a Sandbox) -> Self {
        for bin in [
            "/usr/sbin/dockerd",
            "/usr/bin/docker",
            "/usr/bin/containerd",
            "/bin/busybox",
        ] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: apt-get install docker.io busybox-static (.ci/run does)"
            );
        }
        mount_cgroups(sb);
        // dockerd writes its key to /etc/docker: keep the host's untouched.
        sb.sh_ok(
            "mount -t tmpfs -o mode=0755 etc-docker /etc/docker && \
             mkdir -p /run/docker-data && mount -t tmpfs docker-data /run/docker-data",
        );
        let mut d = Docker {
            sb,
            parent: format!("nsnet-test-{}", std::process::id()),
            daemon: None,
        };
        d.run_daemon();
        d
    }

    fn run_daemon(&mut self) {
        self.daemon = Some(self.sb.spawn(&format!(
            "exec /usr/sbin/dockerd --data-root /run/docker-data --exec-root /run/docker-exec \
             --pidfile /run/docker.pid -H unix:///run/docker.sock --storage-driver vfs \
             --iptables=true --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent /{} \
             >>/run/dockerd.log 2>&1",
            self.parent
        )));
        wait_until("dockerd to answer", 60, || {
            self.sb
                .sh(&format!("{DOCKER} info >/dev/null 2>&1"))
                .status
                .success()
        });
    }

    /// Stops the daemon as systemd would (SIGTERM; it stops its containers).
    fn stop(&mut self) {
        if self.daemon.is_none() {
            return;
        }
        self.sb.sh(
            "pid=$(cat /run/docker.pid) && kill -TERM $pid && \
             for i in $(seq 1 150); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.2; done; exit 1",
        );
        self.daemon = None;
    }

    fn restart(&mut self) {
        self.stop();
        self.run_daemon();
    }

    fn cli(&self, args: &str) -> String {
        self.sb.sh_ok(&format!("{DOCKER} {args}")).trim().to_owned()
    }

    /// An image made offline: busybox-static and its applet links, and a
    /// page for its httpd.
    fn import_busybox(&self) {
        self.sb.sh_ok(&format!(
            "set -e; r=/run/rootfs; mkdir -p $r/bin $r/www $r/etc
             cp /bin/busybox $r/bin/busybox
             for a in $(/bin/busybox --list); do [ -e $r/bin/$a ] || ln -s busybox $r/bin/$a; done
             echo c1 > $r/www/index.html
             tar -C $r -c . | {DOCKER} import - nsnet-test/busybox >/dev/null"
        ));
    }

    fn pid_of(&self, container: &str) -> u32 {
        let mut pid = 0;
        wait_until(&format!("container {container} to run"), 30, || {
            pid = self
                .sb
                .sh(&format!(
                    "{DOCKER} inspect -f '{{{{.State.Pid}}}}' {container}"
                ))
                .stdout
                .iter()
                .map(|b| *b as char)
                .collect::<String>()
                .trim()
                .parse()
                .unwrap_or(0);
            pid != 0
        });
        pid
    }
}

impl Drop for Docker<'_> {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            self.sb.sh(&format!(
                "{DOCKER} rm -f $({DOCKER} ps -aq) >/dev/null 2>&1"
            ));
        }
        self.stop();
        // Empty now; rmdir removes nothing else.
        self.sb.sh(&format!(
            "find /sys/fs/cgroup -depth -type d -path '*/{}*' -exec rmdir {{}} \\; 2>/dev/null",
            self.parent
        ));
    }
}

/// The walk-through's Docker part with nsnet beside a real Docker daemon.
fn assert_docker_walkthrough(sb: &Sandbox, docker: &Docker<'_>, label: &str) {
    let pid = docker.pid_of("c1");
    sb.ok(&["netns", "pin", &pid.to_string(), "ctr"]);
    sb.ok(&[
        "network",
        "connect",
        "side",
        &format!("pid:{pid}"),
        "--ifname",
        "eth1",
        "--ip",
        "10.88.5.10",
    ]);
    assert_eq!(
        http_get(sb, "s1", "10.88.5.10", 80).as_deref(),
        Some("c1"),
        "{label}: the container's second interface, from another namespace over the bridge"
    );
    assert_eq!(
        docker.cli(&format!("exec c1 nc -w 3 {OUT} 9000")),
        HOST,
        "{label}: Docker's container reaches the outside"
    );
    assert_eq!(
        http_get(sb, "outside", HOST, 8081).as_deref(),
        Some("c1"),
        "{label}: Docker's published port answers from outside"
    );
    assert_eq!(
        http_get(sb, "host", "127.0.0.1", 8081).as_deref(),
        Some("c1"),
        "{label}: Docker's published port answers at 127.0.0.1"
    );
    assert_open(sb, label);
    assert_closed(sb, label);
    assert_opted_out_is_dropped(sb, label);
}

#[test]
fn beside_a_real_docker_daemon_nsnet_and_docker_networks_work_and_survive_its_restart() {
    let sb = Sandbox::with_outside();
    let mut docker = Docker::start(&sb);
    docker.import_busybox();
    docker.cli(
        "run -d --name c1 --restart always -p 8081:80 nsnet-test/busybox httpd -f -p 80 -h /www",
    );
    docker.pid_of("c1");
    let before = saved(&sb, "iptables-nft");
    assert!(before.contains(":FORWARD DROP"), "{before}");

    let nets = bring_up(&sb);
    sb.ok(&["network", "create", "side", "--subnet", "10.88.5.0/24"]);
    sb.netns(&["s1"]);
    sb.ok(&["network", "connect", "side", "s1", "--ip", "10.88.5.11"]);
    let ours = nsnet_rules(&sb, "iptables-nft", "DOCKER-USER");
    assert_eq!(ours.len(), 3 + 1 + 3 + 3, "{ours:?}");
    assert!(
        nsnet_rules(&sb, "iptables-nft", "FORWARD").is_empty(),
        "nothing in Docker's own FORWARD"
    );
    assert_docker_walkthrough(&sb, &docker, "docker");

    // Docker restarts (stops its containers, starts them again): DOCKER-USER
    // keeps nsnet's rules, so nothing breaks, not even until the next nsnet
    // command.
    docker.restart();
    assert_eq!(nsnet_rules(&sb, "iptables-nft", "DOCKER-USER"), ours);
    // The stopped container's namespace (pinned) lost its eth0 to Docker:
    // let it go, and attach the restarted container again.
    sb.ok(&["network", "disconnect", "side", "ctr"]);
    sb.ok(&["netns", "del", "ctr"]);
    let (clean, lines) = check(&sb);
    assert!(clean, "{lines}");
    assert_docker_walkthrough(&sb, &docker, "docker, restarted");

    drop(nets);
    sb.ok(&["network", "disconnect", "side", "ctr"]);
    sb.ok(&["netns", "del", "ctr"]);
    remove_all(&sb);
    sb.ok(&["network", "rm", "--force", "side"]);
    assert_eq!(
        saved(&sb, "iptables-nft"),
        before,
        "Docker's ruleset as before nsnet"
    );
}

/// Debian's firewalld with its own D-Bus system bus, both inside the
/// sandbox (its private /run holds the bus socket), default zone.
struct Firewalld {
    _bus: Background,
    _daemon: Background,
}

impl Firewalld {
    fn start(sb: &Sandbox) -> Self {
        for bin in [
            "/usr/sbin/firewalld",
            "/usr/bin/firewall-cmd",
            "/usr/bin/dbus-daemon",
        ] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: apt-get install firewalld (.ci/run does)"
            );
        }
        sb.sh_ok("mkdir -p /run/dbus");
        let bus = sb.spawn("exec dbus-daemon --system --nofork --nopidfile");
        wait_until("the system bus", 20, || {
            sb.sh("test -S /run/dbus/system_bus_socket")
                .status
                .success()
        });
        let daemon = sb.spawn(
            "exec firewalld --nofork --nopid --log-target console >>/run/firewalld.log 2>&1",
        );
        let fw = Firewalld {
            _bus: bus,
            _daemon: daemon,
        };
        fw.wait_running(sb);
        fw
    }

    fn wait_running(&self, sb: &Sandbox) {
        wait_until("firewalld to run", 60, || {
            sb.sh("firewall-cmd --state 2>/dev/null")
                .stdout
                .starts_with(b"running")
        });
    }
}

/// firewalld's view: its table and its zones' interfaces. firewalld makes a
/// zone's chains the first time the zone is used and keeps them once it is
/// unused (unreferenced, no `goto` leads to them): the `trusted` zone's
/// chains are left out, every other line must be as it was.
fn firewalld_state(sb: &Sandbox) -> String {
    let table = sb.sh_ok("nft list table inet firewalld");
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in table.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("chain ") {
            skipping = name.contains("_trusted");
        }
        if !skipping && !t.is_empty() {
            kept.push(line);
        }
        if t == "}" && line.starts_with('\t') {
            skipping = false;
        }
    }
    let zones = sb.sh_ok("firewall-cmd --get-active-zones");
    format!("{}\n{zones}", kept.join("\n"))
}

fn zone_of(sb: &Sandbox, interface: &str) -> String {
    String::from_utf8_lossy(
        &sb.sh(&format!(
            "firewall-cmd --get-zone-of-interface={interface} 2>&1"
        ))
        .stdout,
    )
    .trim()
    .to_owned()
}

#[test]
fn beside_firewalld_nsnet_bridges_join_the_trusted_zone_and_come_back_after_its_reload() {
    let sb = Sandbox::with_outside();
    let fw = Firewalld::start(&sb);
    let before = firewalld_state(&sb);
    let nets = bring_up(&sb);
    for br in ["nsbr-web", "nsbr-int", "nsbr-iso"] {
        assert_eq!(zone_of(&sb, br), "trusted", "{br}");
    }
    assert_eq!(zone_of(&sb, "nsbr-off"), "no zone", "opted out");
    assert_open(&sb, "firewalld");
    assert_closed(&sb, "firewalld");
    assert_opted_out_is_dropped(&sb, "firewalld");

    // firewalld's reload forgets runtime bindings: the networks are dropped
    // until nsnet puts them back; check says so, firewall reload repairs.
    sb.sh_ok("firewall-cmd --reload");
    fw.wait_running(&sb);
    assert_eq!(zone_of(&sb, "nsbr-web"), "no zone");
    assert_eq!(sb.tcp_ask("a", OUT, 9000), None, "after firewalld's reload");
    let (clean, lines) = check(&sb);
    assert!(!clean, "{lines}");
    assert!(
        lines.contains(
            "network web: firewalld: interface nsbr-web in zone trusted is missing \
             (nsnet firewall reload puts it back)"
        ),
        "{lines}"
    );
    let reload = sb.ok(&["firewall", "reload"]);
    assert!(
        reload.contains("network web: added firewalld: interface nsbr-web in zone trusted"),
        "{reload}"
    );
    let (clean, lines) = check(&sb);
    assert!(clean, "{lines}");
    assert_open(&sb, "firewalld, after nsnet firewall reload");

    drop(nets);
    remove_all(&sb);
    assert_eq!(firewalld_state(&sb), before, "firewalld as before nsnet");
}

/// A failure half way (a chain nsnet may not change: a table owned by
/// another process) takes back what the connect added before it, names the
/// network and the rule, and leaves the ruleset as it was.
#[test]
fn a_rule_that_cannot_be_added_rolls_back_the_others_and_names_the_network() {
    let sb = Sandbox::with_outside();
    sb.sh_ok("iptables-nft -w -P FORWARD DROP");
    // `flags owner`: only the socket that made the table may change it; nft -i
    // keeps its socket open while it reads.
    let _owner = sb.spawn(
        "(echo 'add table inet owned { flags owner; }'; \
          echo 'add chain inet owned forward { type filter hook forward priority 0; policy drop; }'; \
          sleep 600) | nft -i >/dev/null",
    );
    wait_until("the owned table", 10, || {
        sb.sh("nft list chain inet owned forward").status.success()
    });
    let before = saved(&sb, "iptables-nft");
    sb.netns(&["a"]);
    sb.ok(&["network", "create", "web", "--subnet", "10.88.1.0/24"]);
    let out = sb.nsnet(&["network", "connect", "web", "a"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "connect succeeded");
    assert!(
        stderr.contains("network web: adding nft inet owned forward: iifname \"nsbr-web\" oifname \"nsbr-web\" accept")
            && stderr.contains("--no-foreign-rules"),
        "{stderr}"
    );
    assert_eq!(
        saved(&sb, "iptables-nft"),
        before,
        "iptables rules taken back"
    );
    assert!(
        !sb.links("host").contains(&"nsbr-web".to_owned()),
        "bridge taken back"
    );
    assert!(
        sb.sh("ls /run/nsnet/foreign/web.json").status.code() != Some(0),
        "no record left"
    );
    sb.ok(&["network", "rm", "web"]);
}
