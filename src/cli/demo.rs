//! `nsnet demo`: the container-networking walk-through nsnet automates
//! (DESIGN.md), replayed step by step inside a throwaway sandbox ([`sandbox`]),
//! proven with real packets ([`probe`]), and drawn at the end (`nsnet graph`).
//!
//! Every step runs the real `nsnet` binary as a subprocess and prints the
//! command line, so what the demo shows can be copied and typed. Only
//! documentation addresses are used (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24), and only inside the sandbox.

mod probe;
mod sandbox;

use anyhow::{Context as _, Result};
use clap::Args;
use nsnet::names::NetnsName;
use nsnet::netns::Netns;
use nsnet::ops::Context;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;

/// Replay the container-networking walk-through in a throwaway sandbox.
///
/// The hidden options are the small programs the demo runs inside pods and
/// `nsnet run` (so it needs nothing but nsnet itself).
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Helper: answer every TCP connection on PORT with --reply.
    #[arg(long, hide = true, value_name = "PORT")]
    serve: Option<u16>,
    #[arg(long, hide = true, default_value = "0.0.0.0")]
    bind: IpAddr,
    #[arg(long, hide = true, default_value = "hello")]
    reply: String,
    /// Helper: print what the TCP server at ADDR:PORT says.
    #[arg(long, hide = true, value_name = "ADDR:PORT")]
    ask: Option<SocketAddr>,
    /// Helper: print this process's network namespace and interfaces.
    #[arg(long, hide = true)]
    probe: bool,
}

pub fn run(_ctx: &Context, args: &DemoArgs) -> Result<ExitCode> {
    if let Some(port) = args.serve {
        probe::serve(args.bind, port, &args.reply)
            .with_context(|| format!("demo --serve {port}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(addr) = args.ask {
        probe::ask_and_print(addr).map_err(|e| anyhow::anyhow!("demo --ask {addr}: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.probe {
        println!("{}", probe::probe().context("demo --probe")?);
        return Ok(ExitCode::SUCCESS);
    }
    match std::env::var(sandbox::STAGE_ENV).as_deref() {
        Ok("sandbox") => sandbox::setup(),
        Ok("init") => sandbox::init(),
        Ok("steps") => Demo::new().map(|d| d.walk_through()),
        _ => sandbox::enter(),
    }
}

/// The walk-through's state: the binary it runs, what it counted.
struct Demo {
    exe: String,
    color: bool,
    passed: usize,
    failed: usize,
    /// Background commands (they end with the sandbox).
    background: Vec<Child>,
    host: Netns,
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// `want` as the answer, or why not.
fn expect(got: Result<String, String>, want: &str) -> Result<String, String> {
    match got {
        Ok(g) if g.trim() == want => Ok(format!("answer: {want}")),
        Ok(g) => Err(format!("answer {:?}, expected {want:?}", g.trim())),
        Err(e) => Err(e),
    }
}

fn named(name: &str) -> Result<Netns, String> {
    let name: NetnsName = name.parse().map_err(|e| format!("{e}"))?;
    Netns::by_name(&name).map_err(|e| e.to_string())
}

fn inode_of(path: &str) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("{path}: {e}"))
}

/// The child of `parent` (the command an `nsnet run` started), by `/proc`.
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == parent).then_some(pid)
    })
}

impl Demo {
    fn new() -> Result<Self> {
        let exe = std::env::current_exe().context("finding nsnet's own binary")?;
        Ok(Self {
            exe: exe.to_string_lossy().into_owned(),
            color: std::io::stdout().is_terminal(),
            passed: 0,
            failed: 0,
            background: Vec::new(),
            host: Netns::host().context("the sandbox's namespace")?,
        })
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn title(&self, n: u32, text: &str, about: &str) {
        println!("\n{}", self.paint("1", &format!("{n}. {text}")));
        println!("   {}", self.paint("2", about));
    }

    fn note(&self, text: &str) {
        println!("   {}", self.paint("2", &format!("# {text}")));
    }

    /// The command line as the user would type it (`nsnet` for this binary).
    fn shown(&self, args: &[&str]) -> String {
        let words: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == self.exe {
                    "nsnet".into()
                } else {
                    shell_word(a)
                }
            })
            .collect();
        format!("$ nsnet {}", words.join(" "))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .env_remove(sandbox::STAGE_ENV)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs nsnet and prints its command line and output; the output, or why it failed.
    fn cmd(&mut self, args: &[&str]) -> Result<String, String> {
        println!("   {}", self.paint("36", &self.shown(args)));
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("cannot run nsnet: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in stdout.lines() {
            println!("     {line}");
        }
        if out.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr.trim().to_owned())
        }
    }

    /// [`Demo::cmd`] for a step that must succeed: a failure is a failed check.
    fn nsnet(&mut self, args: &[&str]) -> Option<String> {
        match self.cmd(args) {
            Ok(out) => Some(out),
            Err(e) => {
                self.check("the command succeeds", Err(e));
                None
            }
        }
    }

    /// Starts nsnet in the background; its PID.
    fn background(&mut self, args: &[&str]) -> Option<u32> {
        println!(
            "   {}",
            self.paint("36", &format!("{} &", self.shown(args)))
        );
        match self.command(args).stdout(Stdio::null()).spawn() {
            Ok(child) => {
                let pid = child.id();
                self.background.push(child);
                Some(pid)
            }
            Err(e) => {
                self.check("the command starts", Err(e.to_string()));
                None
            }
        }
    }

    fn check(&mut self, what: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => {
                self.passed += 1;
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                };
                println!("   {} {what}{detail}", self.paint("32", "✓"));
            }
            Err(why) => {
                self.failed += 1;
                println!("   {} {what}: {why}", self.paint("31", "✗"));
            }
        }
    }

    fn ping(&mut self, from: &str, to: Ipv4Addr, what: &str) {
        let ns = if from == "host" {
            self.host.try_clone().map_err(|e| e.to_string())
        } else {
            named(from)
        };
        let result = ns
            .and_then(|ns| probe::ping(&ns, to))
            .map(|rtt| format!("{:.2} ms", rtt.as_secs_f64() * 1000.0));
        self.check(what, result);
    }

    fn walk_through(mut self) -> ExitCode {
        let start = Instant::now();
        println!(
            "{}",
            self.paint(
                "1",
                "nsnet demo: the container-networking walk-through, step by step"
            )
        );
        println!(
            "{}",
            self.paint(
                "2",
                "in a throwaway sandbox (its own network, mount and PID namespaces and /run): \
                 your network is not touched"
            )
        );
        self.veth_pair();
        self.bridge();
        self.masquerade();
        self.process_by_pid();
        self.modes();
        self.pod();
        println!("\n{}", self.paint("1", "The topology"));
        match self.cmd(&["graph"]) {
            Ok(_) => {}
            Err(e) => self.check("nsnet graph draws the topology", Err(e)),
        }
        let secs = start.elapsed().as_secs_f64();
        println!();
        if self.failed == 0 {
            let line = format!("all {} checks passed in {secs:.1} s", self.passed);
            println!("{} {line}", self.paint("32", "✓"));
        } else {
            let line = format!(
                "{} of {} checks failed ({secs:.1} s)",
                self.failed,
                self.failed + self.passed
            );
            println!("{} {line}", self.paint("31", "✗"));
        }
        println!("the sandbox ends now, and everything made in it with it");
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    fn veth_pair(&mut self) {
        self.title(
            1,
            "Two namespaces joined by a veth pair",
            "a namespace each, a veth pair between them, an address on each end",
        );
        self.nsnet(&["netns", "add", "red"]);
        self.nsnet(&["netns", "add", "blue"]);
        self.nsnet(&[
            "link",
            "add",
            "red",
            "blue",
            "--addr",
            "192.0.2.100/25",
            "--peer-addr",
            "192.0.2.101/25",
        ]);
        self.ping(
            "red",
            Ipv4Addr::new(192, 0, 2, 101),
            "red pings blue at 192.0.2.101",
        );
        self.ping(
            "blue",
            Ipv4Addr::new(192, 0, 2, 100),
            "blue pings red at 192.0.2.100",
        );
    }

    fn bridge(&mut self) {
        self.title(
            2,
            "Three namespaces on one bridge",
            "a bridge network holding the gateway address; each namespace joined by a veth pair",
        );
        self.nsnet(&["network", "create", "demo", "--subnet", "198.51.100.0/24"]);
        for (ns, ip) in [
            ("ns0", "198.51.100.10"),
            ("ns1", "198.51.100.11"),
            ("ns2", "198.51.100.12"),
        ] {
            self.nsnet(&["netns", "add", ns]);
            self.nsnet(&["network", "connect", "demo", ns, "--ip", ip]);
        }
        let at = |last| Ipv4Addr::new(198, 51, 100, last);
        self.ping("ns0", at(11), "ns0 pings ns1 at 198.51.100.11");
        self.ping("ns1", at(12), "ns1 pings ns2 at 198.51.100.12");
        self.ping("ns2", at(10), "ns2 pings ns0 at 198.51.100.10");
        self.ping(
            "ns0",
            at(1),
            "ns0 pings the gateway 198.51.100.1 (the bridge)",
        );
        self.ping("host", at(12), "the host pings ns2 at 198.51.100.12");
    }

    fn masquerade(&mut self) {
        self.title(
            3,
            "A way out: default route and masquerade",
            "the outside world is one more namespace, behind the host",
        );
        self.nsnet(&["netns", "add", "outside"]);
        self.nsnet(&[
            "link",
            "add",
            "host",
            "outside",
            "--addr",
            "203.0.113.1/24",
            "--peer-addr",
            "203.0.113.2/24",
        ]);
        let server: SocketAddr = (Ipv4Addr::new(203, 0, 113, 2), 80).into();
        self.note("a server at 203.0.113.2:80 in outside answers with the address it sees");
        let started = named("outside").and_then(|ns| probe::peer_echo_server(&ns, server));
        if let Err(e) = started {
            self.check("the outside server starts", Err(e));
        }
        self.ping(
            "ns0",
            Ipv4Addr::new(203, 0, 113, 2),
            "ns0 pings 203.0.113.2 via its default route 198.51.100.1",
        );
        let seen = named("ns0").and_then(|ns| probe::ask(&ns, server));
        self.check(
            "the outside server sees ns0 as 203.0.113.1, the host (masquerade)",
            expect(seen, "203.0.113.1"),
        );
    }

    fn process_by_pid(&mut self) {
        self.title(
            4,
            "A running process, found by its PID, gets a second interface",
            "a server in a namespace of its own; nsnet run plays the container runtime",
        );
        let exe = self.exe.clone();
        let args = [
            "run",
            "--network",
            "demo",
            "--name",
            "app",
            "--",
            &exe,
            "demo",
            "--serve",
            "80",
            "--reply",
            "app",
        ];
        let Some(run_pid) = self.background(&args) else {
            return;
        };
        let started = Instant::now();
        let server = loop {
            let ready = child_of(run_pid).filter(|&pid| {
                Netns::by_pid(pid).is_ok_and(|ns| {
                    probe::ask(&ns, (Ipv4Addr::LOCALHOST, 80).into()).is_ok_and(|a| a == "app")
                })
            });
            if ready.is_some() || started.elapsed() > probe::PATIENCE {
                break ready;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let Some(pid) = server else {
            self.check("the server starts", Err("it did not answer in time".into()));
            return;
        };
        self.note(&format!(
            "its PID is {pid} (what docker inspect -f '{{{{.State.Pid}}}}' prints): all nsnet needs"
        ));
        let pid_s = pid.to_string();
        self.nsnet(&["netns", "pin", &pid_s, "app-ns"]);
        self.nsnet(&["network", "create", "side", "--subnet", "192.0.2.128/25"]);
        let target = format!("pid:{pid}");
        self.nsnet(&["network", "connect", "side", &target, "--ip", "192.0.2.130"]);
        let same = inode_of("/run/netns/app-ns").and_then(|pinned| {
            let live = inode_of(&format!("/proc/{pid}/ns/net"))?;
            (pinned == live)
                .then(|| format!("inode {live}"))
                .ok_or_else(|| format!("app-ns is inode {pinned}, the process's {live}"))
        });
        self.check(
            "app-ns names the process's namespace, as ip netns sees it",
            same,
        );
        let links = Netns::by_pid(pid)
            .map_err(|e| e.to_string())
            .and_then(|ns| probe::links_of(&ns))
            .and_then(|l| {
                (l == ["eth0", "eth1", "lo"])
                    .then(|| l.join(", "))
                    .ok_or_else(|| format!("it has {}", l.join(", ")))
            });
        self.check(
            "the process has eth0 on network demo and now eth1 on side",
            links,
        );
        let answer = probe::ask(&self.host, (Ipv4Addr::new(192, 0, 2, 130), 80).into());
        self.check(
            "the host reaches its server on the new interface, 192.0.2.130:80",
            expect(answer, "app"),
        );
    }

    fn modes(&mut self) {
        self.title(
            5,
            "Network modes",
            "nsnet run starts a command in a mode; the probe prints its namespace and interfaces",
        );
        let host_inode = self.host.inode().unwrap_or(0);
        let app_inode = inode_of("/run/netns/app-ns").unwrap_or(0);
        let exe = self.exe.clone();
        type Expect = fn(u64, &[String], u64, u64) -> bool;
        let modes: [(&str, &str, Expect); 4] = [
            (
                "demo",
                "bridge (network demo): a namespace of its own, eth0 on the bridge",
                |ino, links, host, _| ino != host && links == ["eth0", "lo"],
            ),
            (
                "host",
                "host: the host's own namespace and interfaces",
                |ino, links, host, _| ino == host && links.iter().any(|l| l == "nsbr-demo"),
            ),
            (
                "none",
                "none: a namespace of its own with only lo",
                |ino, links, host, _| ino != host && links == ["lo"],
            ),
            (
                "container:app",
                "container:app: the namespace of app, eth1 included",
                |ino, links, _, app| ino == app && links.iter().any(|l| l == "eth1"),
            ),
        ];
        for (mode, what, ok) in modes {
            let result = self
                .cmd(&["run", "--network", mode, "--", &exe, "demo", "--probe"])
                .and_then(|out| probe::parse_probe(&out).ok_or(format!("probe said {out:?}")))
                .and_then(|(ino, links)| {
                    if ok(ino, &links, host_inode, app_inode) {
                        Ok(String::new())
                    } else {
                        Err(format!("namespace {ino} with {}", links.join(",")))
                    }
                });
            self.check(what, result);
        }
    }

    fn pod(&mut self) {
        self.title(
            6,
            "A pod: members sharing one network, ports published together",
            "a pause process holds the namespaces; nginx and registry join them",
        );
        let exe = self.exe.clone();
        let created = self.nsnet(&["pod", "create", "web", "--network", "demo", "-p", "8080:80"]);
        let pause = created
            .as_deref()
            .and_then(|o| o.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let serve = |port: &'static str, bind: &'static str, reply: &'static str| {
            vec![
                "pod", "exec", "web", "--detach", "--", "EXE", "demo", "--serve", port, "--bind",
                bind, "--reply", reply,
            ]
        };
        for args in [
            serve("80", "0.0.0.0", "nginx"),
            serve("5000", "127.0.0.1", "registry"),
        ] {
            let args: Vec<&str> = args
                .into_iter()
                .map(|a| if a == "EXE" { exe.as_str() } else { a })
                .collect();
            self.nsnet(&args);
        }
        let pid1 = pause
            .ok_or_else(|| "no pause PID".to_owned())
            .and_then(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .map_err(|e| e.to_string())?;
                let nspid = status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>();
                match nspid.as_slice() {
                    [host, .., "1"] => Ok(format!("PID {host} outside, 1 inside")),
                    other => Err(format!("its PIDs are {other:?}")),
                }
            });
        self.check(
            "the pause process is PID 1 of the pod's PID namespace",
            pid1,
        );
        // The members start in the background: wait until they listen.
        let web = named("web");
        for port in [80, 5000] {
            if let Ok(ns) = &web {
                let _ = probe::ask_until(ns, (Ipv4Addr::LOCALHOST, port).into());
            }
        }
        let asked = self.cmd(&[
            "pod",
            "exec",
            "web",
            "--",
            &exe,
            "demo",
            "--ask",
            "127.0.0.1:5000",
        ]);
        self.check(
            "a member reaches the registry at 127.0.0.1:5000 inside the pod",
            expect(asked, "registry"),
        );
        let local = probe::ask_until(&self.host, (Ipv4Addr::LOCALHOST, 8080).into());
        self.check(
            "the host reaches the pod's nginx at 127.0.0.1:8080 (-p 8080:80)",
            expect(local, "nginx"),
        );
        let outside = named("outside")
            .and_then(|ns| probe::ask(&ns, (Ipv4Addr::new(203, 0, 113, 1), 8080).into()));
        self.check(
            "the outside reaches it at the host's 203.0.113.1:8080",
            expect(outside, "nginx"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("192.0.2.1/24"), "192.0.2.1/24");
        assert_eq!(shell_word("pid:42"), "pid:42");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn answers_are_compared_trimmed() {
        assert!(expect(Ok("app\n".into()), "app").is_ok());
        assert!(expect(Ok("other".into()), "app").is_err());
        assert!(expect(Err("refused".into()), "app").is_err());
    }
}
