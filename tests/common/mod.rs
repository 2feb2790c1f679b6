//! The sandbox every integration test runs in (DESIGN.md, "the sandbox rule").
//!
//! A sandbox is a process tree made by `unshare`: new network, mount and PID
//! namespaces, a fresh tmpfs on `/run` (so `/run/netns` and nsnet's state and
//! config dirs are private), its own `/sys` and `/proc`. Commands run inside it
//! with `nsenter`. Its PID 1 is tied to the test thread by parent-death signals,
//! so when the test ends, passes, fails or panics, every process in the sandbox
//! is killed and its namespaces, links and mounts vanish with it. Nothing here
//! ever touches the host's own network.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod crash;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const NSNET: &str = env!("CARGO_BIN_EXE_nsnet");

/// Set up inside the new namespaces before the sandbox reports ready.
const SETUP: &str = "set -e
mount -t tmpfs -o mode=0755 nsnet-sandbox-run /run
mkdir -p /run/nsnet-config
mount -t sysfs sysfs /sys
ip link set lo up
echo ready
exec sleep infinity";

pub struct Sandbox {
    unshare: Child,
    /// Host PID of the sandbox's PID 1, the target of `nsenter`.
    pid1: u32,
}

impl Sandbox {
    /// Makes a sandbox, or panics: a test never silently skips.
    pub fn new() -> Self {
        let mut unshare = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--"])
            .args(["unshare", "--net", "--mount", "--propagation", "private"])
            .args(["--pid", "--fork", "--mount-proc", "--kill-child=KILL"])
            .args(["sh", "-c", SETUP])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the sandbox (needs root and util-linux's unshare/setpriv)");
        let stdout = unshare.stdout.take().expect("sandbox stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the sandbox's ready line");
        assert_eq!(
            line.trim(),
            "ready",
            "the sandbox could not be set up (are we root?)"
        );
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                .expect("reading the sandbox's PID 1");
        let pid1 = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the sandbox has no PID 1");
        Sandbox { unshare, pid1 }
    }

    /// A command that runs inside the sandbox.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid1.to_string(), "-n", "-m", "-p", "--"])
            .arg(program)
            .env("NSNET_STATE_DIR", "/run/nsnet")
            .env("NSNET_CONFIG_DIR", "/run/nsnet-config")
            .stdin(Stdio::null());
        cmd
    }

    /// The sandbox's network namespace (`/proc/PID/ns/net`), for a test thread
    /// that opens sockets inside it (`setns`) to talk to a server there.
    pub fn net_ns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid1)
    }

    /// Runs nsnet inside the sandbox.
    pub fn nsnet(&self, args: &[&str]) -> Output {
        self.command(NSNET)
            .args(args)
            .output()
            .expect("running nsnet")
    }

    /// Runs nsnet and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.nsnet(args);
        assert!(
            out.status.success(),
            "nsnet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs nsnet, asserts it fails with one line on stderr that contains `expected`.
    pub fn fails(&self, args: &[&str], expected: &str) {
        let out = self.nsnet(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "nsnet {args:?} succeeded");
        assert!(
            stderr.contains(expected),
            "nsnet {args:?}: stderr {stderr:?} lacks {expected:?}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "nsnet {args:?}: not one line: {stderr:?}"
        );
        assert!(stderr.starts_with("nsnet: "), "{stderr:?}");
    }

    /// Runs a shell command line inside the sandbox.
    pub fn sh(&self, script: &str) -> Output {
        self.command("sh")
            .args(["-c", script])
            .output()
            .expect("running sh")
    }

    /// Runs a shell command line inside the sandbox and asserts success; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that prints JSON (`ip -j ...`) and parses it.
    pub fn json(&self, script: &str) -> Value {
        let out = self.sh_ok(script);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{script:?}: bad JSON {out:?}: {e}"))
    }

    /// Names of the links in a named namespace (`host` for the sandbox itself).
    pub fn links(&self, ns: &str) -> Vec<String> {
        let cmd = if ns == "host" {
            "ip -j link show".to_owned()
        } else {
            format!("ip -n {ns} -j link show")
        };
        let v = self.json(&cmd);
        let mut names: Vec<String> = v
            .as_array()
            .expect("ip -j link is a list")
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Waits (bounded) until `cond` holds; for state the kernel sets asynchronously.
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Killing unshare kills PID 1 (--kill-child), and with it every process
        // of the sandbox; its namespaces and mounts go with them.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Sandbox {
    /// Starts a long-running command inside the sandbox; it is stopped when the
    /// returned guard drops (and dies with the sandbox in any case).
    /// A process in a network namespace of its own (a "container" of another
    /// runtime), once it has left the sandbox's namespace: its PID and the
    /// handle that kills it on drop.
    pub fn unshared_process(&self) -> (u32, Background) {
        let holder = self.spawn("exec unshare --net sleep 600");
        let mut pid = 0;
        self.wait_for("the unshared process", || {
            pid = self
                .sh_ok("pgrep -x sleep | tail -1")
                .trim()
                .parse()
                .unwrap_or(0);
            pid != 0
                && self
                    .sh(&format!(
                        "test $(stat -L -c %i /proc/{pid}/ns/net) != $(stat -L -c %i /proc/self/ns/net)"
                    ))
                    .status
                    .success()
        });
        (pid, holder)
    }

    pub fn spawn(&self, script: &str) -> Background {
        Background(
            self.command("sh")
                .args(["-c", script])
                .stdout(Stdio::null())
                .spawn()
                .expect("spawning in the sandbox"),
        )
    }

    /// Every element of every set and map in `table inet nsnet`, as (set, element)
    /// pairs of JSON text; empty when the table does not exist.
    pub fn nft_elements(&self) -> Vec<(String, String)> {
        let out = self.sh("nft -j list table inet nsnet");
        if !out.status.success() {
            return Vec::new();
        }
        let v: Value = serde_json::from_slice(&out.stdout).expect("nft -j is JSON");
        let mut elems = Vec::new();
        for item in v["nftables"].as_array().into_iter().flatten() {
            for kind in ["set", "map"] {
                if let Some(set) = item.get(kind) {
                    let name = set["name"].as_str().unwrap_or_default().to_owned();
                    for e in set["elem"].as_array().into_iter().flatten() {
                        elems.push((name.clone(), e.to_string()));
                    }
                }
            }
        }
        elems
    }

    /// Starts a TCP server in namespace `ns` on `addr:port` that answers each
    /// connection with the address it came from, and waits until it listens.
    pub fn tcp_echo_peer(&self, ns: &str, addr: &str, port: u16) -> Background {
        let child = self.spawn(&format!(
            "exec ip netns exec {ns} socat TCP-LISTEN:{port},bind={addr},fork,reuseaddr \
             SYSTEM:'echo $SOCAT_PEERADDR'"
        ));
        self.wait_for(&format!("a listener on {addr}:{port} in {ns}"), || {
            self.sh(&format!(
                "ip netns exec {ns} ss -Htln 'sport = :{port}' | grep -q LISTEN"
            ))
            .status
            .success()
        });
        child
    }

    /// Connects from namespace `ns` (`host` for the sandbox) to `addr:port` and
    /// returns what the server said, or None when the connection failed.
    pub fn tcp_ask(&self, ns: &str, addr: &str, port: u16) -> Option<String> {
        let prefix = in_ns(ns);
        let out = self.sh(&format!(
            "{prefix}timeout 3 socat -T2 - TCP:{addr}:{port},connect-timeout=2 </dev/null"
        ));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Whether a ping from `ns` (`host` for the sandbox) to `addr` is answered
    /// within 3 seconds (pinging every 0.2 s until the first reply).
    pub fn pings(&self, ns: &str, addr: &str) -> bool {
        self.sh(&format!("{}ping -c1 -i0.2 -w3 {addr}", in_ns(ns)))
            .status
            .success()
    }

    /// Whether two pings from `ns` to `addr` both go unanswered.
    pub fn ping_fails(&self, ns: &str, addr: &str) -> bool {
        !self
            .sh(&format!("{}ping -c2 -i0.2 -W1 {addr}", in_ns(ns)))
            .status
            .success()
    }
}

impl Sandbox {
    /// A TCP server on `port` (IPv4 and IPv6) in namespace `ns` that answers every
    /// connection with `reply`; waits until it listens.
    pub fn tcp_server(&self, ns: &str, port: u16, reply: &str) -> Background {
        let child = self.spawn(&format!(
            "exec {}socat TCP6-LISTEN:{port},ipv6only=0,fork,reuseaddr SYSTEM:'echo {reply}'",
            in_ns(ns)
        ));
        self.wait_for(&format!("a TCP listener on {port} in {ns}"), || {
            self.sh(&format!(
                "{}ss -Htln 'sport = :{port}' | grep -q LISTEN",
                in_ns(ns)
            ))
            .status
            .success()
        });
        child
    }

    /// A UDP server on `port` (IPv4 and IPv6) in namespace `ns` that answers every
    /// datagram with `reply`; waits until it is bound.
    pub fn udp_server(&self, ns: &str, port: u16, reply: &str) -> Background {
        let child = self.spawn(&format!(
            "exec {}socat UDP6-RECVFROM:{port},ipv6only=0,fork,reuseaddr SYSTEM:'echo {reply}'",
            in_ns(ns)
        ));
        self.wait_for(&format!("a UDP socket on {port} in {ns}"), || {
            self.sh(&format!(
                "{}ss -Huln 'sport = :{port}' | grep -q .",
                in_ns(ns)
            ))
            .status
            .success()
        });
        child
    }

    /// Sends one UDP datagram from `ns` (from source port `sport`, if given) to
    /// `addr:port` and returns the answer, or None.
    pub fn udp_ask(&self, ns: &str, addr: &str, port: u16, sport: Option<u16>) -> Option<String> {
        let sport = sport
            .map(|p| format!(",sourceport={p},reuseaddr"))
            .unwrap_or_default();
        let out = self.sh(&format!(
            "echo hi | {}timeout 4 socat -T2 - UDP:{addr}:{port}{sport}",
            in_ns(ns)
        ));
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

impl Sandbox {
    /// [`Sandbox::udp_ask`] up to three times: a datagram may be lost, and a
    /// test must not fail on one loss. A flow that goes to the wrong place keeps
    /// going there on every try, so this does not hide misrouting.
    pub fn udp_ask_retry(
        &self,
        ns: &str,
        addr: &str,
        port: u16,
        sport: Option<u16>,
    ) -> Option<String> {
        (0..3).find_map(|_| self.udp_ask(ns, addr, port, sport))
    }
}

impl Sandbox {
    /// PIDs of live (not zombie) processes called `name`, other than the
    /// sandbox's own PID 1 (which does not reap orphans, so zombies stay).
    pub fn live(&self, name: &str) -> Vec<u32> {
        self.sh_ok(&format!("ps -C {name} -o pid=,stat= || true"))
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let pid: u32 = f.next()?.parse().ok()?;
                let stat = f.next()?;
                (pid != 1 && !stat.starts_with('Z')).then_some(pid)
            })
            .collect()
    }
}

impl Sandbox {
    /// A sandbox with an "outside world": namespace `outside` at 203.0.113.2 and
    /// 2001:db8:1::2, reached from the sandbox host (203.0.113.1, 2001:db8:1::1)
    /// through a veth.
    pub fn with_outside() -> Self {
        let sb = Sandbox::new();
        sb.ok(&["netns", "add", "outside"]);
        sb.ok(&[
            "link",
            "add",
            "host",
            "outside",
            "--addr",
            "203.0.113.1/24",
            "--peer-addr",
            "203.0.113.2/24",
        ]);
        sb.sh_ok(
            "ip addr add 2001:db8:1::1/64 dev veth-outside nodad && \
             ip -n outside addr add 2001:db8:1::2/64 dev veth-host nodad",
        );
        sb
    }

    /// Creates named namespaces with `nsnet netns add`.
    pub fn netns(&self, names: &[&str]) {
        for n in names {
            self.ok(&["netns", "add", n]);
        }
    }
}

/// A process running in the sandbox, killed and reaped on drop.
pub struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command prefix that runs something in namespace `ns` (`host`: the sandbox).
fn in_ns(ns: &str) -> String {
    if ns == "host" {
        String::new()
    } else {
        format!("ip netns exec {ns} ")
    }
}

impl Sandbox {
    /// Global addresses in namespace `ns`, as `ADDR/LEN`.
    pub fn global_addresses(&self, ns: &str) -> Vec<String> {
        let mut out = Vec::new();
        for l in self
            .json(&format!("ip -n {ns} -j addr show scope global"))
            .as_array()
            .unwrap()
        {
            // `ip -j` lists an empty object for each address the filter hides.
            for a in l["addr_info"].as_array().unwrap() {
                if let Some(local) = a["local"].as_str() {
                    out.push(format!("{local}/{}", a["prefixlen"]));
                }
            }
        }
        out
    }

    /// Runs nsnet as a CNI plugin, as a runtime does: `env` (`CNI_COMMAND`,
    /// `CNI_CONTAINERID`, ...; a value of `None` removes the variable) and the
    /// network configuration on stdin.
    pub fn cni(&self, env: &[(&str, Option<&str>)], stdin: &str) -> Output {
        use std::io::Write;
        let mut cmd = self.command(NSNET);
        cmd.env("CNI_PATH", "/run/cni-bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.spawn().expect("running the plugin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("writing stdin");
        child.wait_with_output().expect("waiting for the plugin")
    }
}

impl Sandbox {
    /// Kills (SIGKILL) every process left in the namespace of `nsnet run
    /// --name ID` (its command, once the run itself was killed): a run lives
    /// as long as any process is in its namespace.
    pub fn kill_run_namespace(&self, id: &str) {
        self.sh_ok(&format!(
            "ino=$(stat -c %i /run/nsnet/runs/{id}/net 2>/dev/null) || exit 0
             for p in /proc/[0-9]*; do
                 [ \"$(stat -L -c %i $p/ns/net 2>/dev/null)\" = \"$ino\" ] && kill -9 ${{p#/proc/}}
             done; true"
        ));
    }
}

impl Sandbox {
    /// Global addresses of the sandbox's own link `link`, as `ADDR/LEN`.
    pub fn global_addresses_of_link(&self, link: &str) -> Vec<String> {
        self.json(&format!("ip -j addr show dev {link} scope global"))
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| Some(format!("{}/{}", a["local"].as_str()?, a["prefixlen"])))
            .collect()
    }
}
