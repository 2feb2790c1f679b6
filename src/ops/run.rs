//! `nsnet run`: a command in a network mode, Docker style, cleaned up after it
//! exits (`docker run --rm`).
//!
//! - a network name: a new namespace connected to that bridge network;
//! - `host`: the namespace nsnet runs in; `none`: a new namespace with only `lo`;
//! - `container:NAME`: the namespace of a running `nsnet run --name NAME`;
//! - `pod:NAME`: a pod's namespaces, as `pod exec`.
//!
//! A run's own namespace is pinned at `STATE_DIR/runs/ID/net` while the command
//! runs (so `container:ID` can join it) and released with its endpoint, ports
//! and lease when the command exits. `STATE_DIR/runs/ID/pid` holds the run's
//! PID, so gc collects a run whose process was killed, named or not, once no
//! process is left in its namespace (a killed run's command lives on, and
//! keeps its network); then `run --name ID` reuses the name at once.

use super::endpoint::{self, ConnectRequest};
use super::spawn::{self, CommandSpec, Joined};
use super::{pod, Context, Error, Result};
use crate::names::{NetnsName, NetworkName, Target};
use crate::netns::Netns;
use crate::ports::PortSpec;
use crate::privilege::require_admin;
use rustix::mount::UnmountFlags;
use rustix::thread::UnshareFlags;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// `--network MODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Network(NetworkName),
    Host,
    None,
    Container(NetnsName),
    Pod(NetnsName),
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let name = |n: &str| n.parse::<NetnsName>().map_err(|e| e.to_string());
        Ok(match s {
            "host" => Mode::Host,
            "none" => Mode::None,
            _ => {
                if let Some(n) = s.strip_prefix("container:") {
                    Mode::Container(name(n)?)
                } else if let Some(n) = s.strip_prefix("pod:") {
                    Mode::Pod(name(n)?)
                } else if s.contains(':') {
                    return Err(format!(
                        "unknown network mode {s:?} (a network name, host, none, container:NAME or pod:NAME)"
                    ));
                } else {
                    Mode::Network(
                        s.parse()
                            .map_err(|e: crate::names::NameError| e.to_string())?,
                    )
                }
            }
        })
    }
}

/// A validated `nsnet run`.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// `None`: the default network.
    pub mode: Option<Mode>,
    pub ports: Vec<PortSpec>,
    pub name: Option<NetnsName>,
    pub command: CommandSpec,
    /// Called with the run's endpoint once it is connected, before the command
    /// starts (the CLI prints the host ports it got).
    pub connected: Option<fn(&crate::store::Endpoint)>,
}

fn run_dir(ctx: &Context, id: &str) -> PathBuf {
    ctx.state_dir.join(run_rel(id))
}

/// `runs/ID`, relative to the state directory.
fn run_rel(id: &str) -> PathBuf {
    Context::run_rel(id)
}

/// A new network namespace pinned at `runs/ID/net`, with `lo` up. The file
/// is made beneath the state directory without following any symlink, and
/// the namespace mounted on that very file.
fn new_netns(ctx: &Context, id: &str) -> Result<()> {
    let path = run_dir(ctx, id).join("net");
    let file = crate::safefs::create_beneath(&ctx.state_dir, &run_rel(id), "net", true)?;
    let target = crate::safefs::fd_path(&file);
    std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            // SAFETY: only this throwaway thread's network namespace changes.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| {
                Error::Io {
                    what: "creating a network namespace".into(),
                    source: e.into(),
                }
            })?;
            rustix::mount::mount_bind("/proc/thread-self/ns/net", target.as_str()).map_err(|e| {
                Error::Io {
                    what: format!("pinning {}", path.display()),
                    source: e.into(),
                }
            })
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Invalid("a namespace thread panicked".into())))
    })?;
    let ns = Netns::by_path(&path)?;
    super::netns::bring_lo_up(&ns)
}

fn release_netns(dir: &Path) {
    let path = dir.join("net");
    let _ = rustix::mount::unmount(&path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join(PID_FILE));
    let _ = std::fs::remove_dir(dir);
}

/// The run's own PID and start time (`PID\nSTART\n`), in its directory: how
/// `nsnet gc` tells a run that is alive from one whose process was killed,
/// even when another process got its PID since.
pub const PID_FILE: &str = "pid";

/// Makes the run's directory, its PID file and its namespace while holding
/// the operations lock shared, so gc (which holds it exclusively) never sees
/// a directory in the making: one without a PID file was left by a run killed
/// while it started.
///
/// A name taken by a run of which nothing runs any more (its `nsnet run` was
/// killed, and its command too) is collected first, as gc would, and reused.
fn make_run_dir(ctx: &Context, id: &str, dir: &Path) -> Result<()> {
    let running = || {
        let pids = super::alive::processes_in(&dir.join("net"));
        Error::Invalid(format!(
            "a run named {id} is running already{}",
            if pids.is_empty() {
                String::new()
            } else {
                format!(
                    " (processes in its namespace: {})",
                    pids.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ))
    };
    // Before the lock below: collecting holds the operations lock exclusively.
    if dir.exists() && !super::maint::collect_run(ctx, id)? {
        return Err(running());
    }
    let _starting = super::lock::InFlight::begin(ctx, std::iter::empty())?;
    if dir.exists() {
        return Err(running());
    }
    let made = (|| {
        let me = std::process::id();
        let start = super::alive::start_time(me).ok_or_else(|| {
            Error::Invalid(format!(
                "cannot read this process's start time (/proc/{me}/stat)"
            ))
        })?;
        let record = format!("{me}\n{start}\n");
        crate::safefs::write_beneath(&ctx.state_dir, &run_rel(id), PID_FILE, &record)?;
        new_netns(ctx, id)
    })();
    made.inspect_err(|_| release_netns(dir))
}

/// Runs the command in its mode and returns its exit code; everything the run
/// made is released afterwards, whatever the command did.
pub fn run(ctx: &Context, req: &RunRequest) -> Result<u8> {
    require_admin()?;
    let mode = match &req.mode {
        Some(m) => m.clone(),
        None => Mode::Network(pod::default_network(ctx)?),
    };
    if !req.ports.is_empty() && !matches!(mode, Mode::Network(_)) {
        return Err(Error::Invalid(
            "-p publishes ports of a run on a network; in this mode publish them where the namespace was made".into(),
        ));
    }
    if req.name.is_some() && !matches!(mode, Mode::Network(_) | Mode::None) {
        return Err(Error::Invalid(
            "--name names a run's own namespace: only with a network or none".into(),
        ));
    }
    spawn::block_forwarded_signals();
    match &mode {
        Mode::Host => wait(spawn::spawn(&Joined::default(), &req.command)?.child()?),
        Mode::Container(name) => {
            let net = run_dir(ctx, name.as_str()).join("net");
            Netns::by_path(&net).map_err(|_| {
                let pod = pod::get(ctx, name.as_str()).is_ok();
                let hint = if pod {
                    format!("; {name} is a pod: --network pod:{name}")
                } else {
                    String::new()
                };
                Error::Invalid(format!("no running nsnet run --name {name}{hint}"))
            })?;
            wait(
                spawn::spawn(
                    &Joined {
                        net: Some(net),
                        ..Default::default()
                    },
                    &req.command,
                )?
                .child()?,
            )
        }
        Mode::Pod(name) => wait(pod::exec(ctx, name.as_str(), &req.command)?.child()?),
        Mode::Network(_) | Mode::None => own_namespace(ctx, req, &mode),
    }
}

fn wait(child: std::process::Child) -> Result<u8> {
    spawn::wait_foreground(child)
}

fn own_namespace(ctx: &Context, req: &RunRequest, mode: &Mode) -> Result<u8> {
    let id = match &req.name {
        Some(n) => n.to_string(),
        None => format!("run-{}", std::process::id()),
    };
    let dir = run_dir(ctx, &id);
    make_run_dir(ctx, &id, &dir)?;
    let network = match mode {
        Mode::Network(n) => Some(n.clone()),
        _ => None,
    };
    let endpoint_id = format!("run:{id}");
    let result = (|| -> Result<u8> {
        if let Some(network) = &network {
            let ep = endpoint::connect(
                ctx,
                &ConnectRequest {
                    network: network.clone(),
                    target: Target::Path(dir.join("net")),
                    ifname: None,
                    ips: Vec::new(),
                    mac: None,
                    ports: req.ports.clone(),
                    id: Some(endpoint_id.clone()),
                    bounds: Vec::new(),
                    routes: Default::default(),
                    hairpin: false,
                },
            )?;
            if let Some(announce) = req.connected {
                announce(&ep);
            }
        }
        let joined = Joined {
            net: Some(dir.join("net")),
            ..Default::default()
        };
        wait(spawn::spawn(&joined, &req.command)?.child()?)
    })();
    let mut cleanup = Ok(());
    if let Some(network) = &network {
        cleanup = endpoint::disconnect_id(ctx, network, &endpoint_id).map(|_| ());
    }
    release_netns(&dir);
    let code = result?;
    cleanup?;
    Ok(code)
}
