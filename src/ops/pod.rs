//! Pods: a pause process holding network, IPC, UTS and PID namespaces that the
//! pod's members join (`--net/--ipc/--pid=container:pause`, as Kubernetes does).
//!
//! The pause process owns the namespaces and its namespace files are also
//! bind-mounted under `STATE_DIR/pods/NAME/{net,ipc,uts,pid}`, and the network
//! namespace is named `NAME` for `ip netns`. Members come and go without
//! touching the pod's network; only `pod rm` takes it down. A pause process
//! killed from outside leaves a dead pod that `pod rm` cleans up.

use super::endpoint::{self, ConnectRequest};
use super::rollback::Rollback;
use super::spawn::{self, CommandSpec, Joined};
use super::{network, Context, Error, Result};
use crate::names::{NetnsName, NetworkName, Target};
use crate::netns::{self, Netns};
use crate::ports::PortSpec;
use crate::privilege::require_admin;
use crate::store::{Endpoint, PodRecord};
use rustix::mount::UnmountFlags;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The network a pod or `nsnet run` joins when none is named.
pub const DEFAULT_NETWORK: &str = "nsnet";
/// How long `pod rm` lets members stop after SIGTERM before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);
const KINDS: [&str; 4] = ["net", "ipc", "uts", "pid"];

/// A validated `pod create`.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: NetnsName,
    pub networks: Vec<NetworkName>,
    pub ports: Vec<PortSpec>,
    pub hostname: Option<String>,
    pub pid_share: bool,
}

fn pod_dir(ctx: &Context, name: &str) -> PathBuf {
    ctx.pod_dir(name)
}

/// A hostname the kernel and resolvers accept: 1-64 bytes of letters, digits,
/// `-` and `.`.
fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !h.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "hostname {h:?} is not valid (1-64 letters, digits, '-' and '.')"
        )))
    }
}

/// The default network, created with a default subnet on first use.
pub fn default_network(ctx: &Context) -> Result<NetworkName> {
    let name: NetworkName = DEFAULT_NETWORK
        .parse()
        .map_err(|e: crate::names::NameError| Error::Invalid(e.to_string()))?;
    if ctx.config()?.network(DEFAULT_NETWORK)?.is_none() {
        let req = network::CreateRequest {
            name: Some(name.clone()),
            ..Default::default()
        };
        match network::create(ctx, &req) {
            Ok(_) => {}
            // Made meanwhile by a concurrent nsnet: fine.
            Err(_) if ctx.config()?.network(DEFAULT_NETWORK)?.is_some() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(name)
}

/// Binds `source` on a new file `pods/NAME/KIND` made beneath the state
/// directory without following any symlink (on that very file).
fn pin(ctx: &Context, source: &Path, name: &str, kind: &str) -> Result<()> {
    let rel = Context::pod_rel(name);
    let file = crate::safefs::create_beneath(&ctx.state_dir, &rel, kind, false)?;
    let target = pod_dir(ctx, name).join(kind);
    rustix::mount::mount_bind(source, crate::safefs::fd_path(&file).as_str()).map_err(|e| {
        Error::Io {
            what: format!("pinning {}", target.display()),
            source: e.into(),
        }
    })
}

fn unpin_dir(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    for kind in KINDS {
        let path = dir.join(kind);
        if path.exists() {
            match rustix::mount::unmount(&path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => errors.push(format!("unmounting {}: {e}", path.display())),
            }
            if let Err(e) = std::fs::remove_file(&path) {
                errors.push(format!("removing {}: {e}", path.display()));
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
    errors
}

/// Creates a pod: pause process, pinned namespaces, its networks and ports.
pub fn create(ctx: &Context, req: &CreateRequest) -> Result<PodRecord> {
    let hostname = req.hostname.clone().unwrap_or_else(|| req.name.to_string());
    check_hostname(&hostname)?;
    for n in &req.networks {
        network::get(ctx, n)?;
    }
    require_admin()?;
    let state = ctx.state()?;
    if state.pod(req.name.as_str())?.is_some() {
        return Err(Error::Invalid(format!("pod {} already exists", req.name)));
    }
    if netns::named_path(&req.name).exists() {
        return Err(Error::Invalid(format!(
            "pod {}: a network namespace of that name exists already",
            req.name
        )));
    }
    // Only a request that passed every check makes the default network.
    let networks = if req.networks.is_empty() {
        vec![default_network(ctx)?]
    } else {
        req.networks.clone()
    };
    let mut record = PodRecord {
        name: req.name.to_string(),
        pid: 0,
        hostname: hostname.clone(),
        pid_share: req.pid_share,
        networks: networks.iter().map(|n| n.to_string()).collect(),
        net_inode: 0,
    };
    if !state.insert_pod(&record)? {
        return Err(Error::Invalid(format!("pod {} already exists", req.name)));
    }
    let mut rollback = Rollback::new();
    {
        let (dir, name) = (ctx.state_dir.clone(), record.name.clone());
        rollback.push(format!("pod record {name}"), move || {
            crate::store::State::open(&dir)
                .and_then(|s| s.delete_pod(&name))
                .map_err(|e| e.to_string())
        });
    }
    tracing::debug!("pod create: record inserted");
    let pid = crate::pause::spawn(&hostname).map_err(|e| Error::Invalid(e.to_string()))?;
    tracing::debug!("pod create: pause process {pid} runs in its namespaces");
    rollback.push("pause process", move || {
        stop_pid(pid, Duration::from_secs(1));
        Ok(())
    });
    let dir = pod_dir(ctx, &record.name);
    {
        let dir = dir.clone();
        rollback.push("pinned namespaces", move || {
            let errors = unpin_dir(&dir);
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        });
    }
    for kind in KINDS {
        let source = PathBuf::from(format!("/proc/{pid}/ns/{kind}"));
        pin(ctx, &source, &record.name, kind)?;
    }
    let net = Netns::by_path(&dir.join("net"))?;
    netns::pin(&net, &req.name)?;
    tracing::debug!("pod create: namespaces pinned");
    {
        let name = req.name.clone();
        rollback.push("ip netns name", move || {
            netns::delete(&name).map_err(|e| e.to_string())
        });
    }
    for (i, network) in networks.iter().enumerate() {
        endpoint::connect(
            ctx,
            &ConnectRequest {
                network: network.clone(),
                target: Target::Path(dir.join("net")),
                ifname: None,
                ips: Vec::new(),
                mac: None,
                ports: if i == 0 {
                    req.ports.clone()
                } else {
                    Vec::new()
                },
                id: Some(format!("pod:{}", req.name)),
                bounds: Vec::new(),
                routes: Default::default(),
                hairpin: false,
            },
        )?;
        let (ctx2, network, name) = (ctx.clone(), network.clone(), req.name.to_string());
        rollback.push(format!("endpoint on {network}"), move || {
            endpoint::disconnect_id(&ctx2, &network, &format!("pod:{name}"))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
    record.pid = pid;
    record.net_inode = net.inode()?;
    state.update_pod(&record)?;
    tracing::debug!("pod create: record completed");
    rollback.commit();
    Ok(record)
}

/// Whether the pod's pause process still runs (and is ours, not a reused PID).
pub fn alive(pod: &PodRecord) -> bool {
    pod.pid != 0
        && std::fs::metadata(format!("/proc/{}/ns/net", pod.pid))
            .is_ok_and(|m| m.ino() == pod.net_inode)
}

/// PIDs of the pod's members: every process in its namespaces but the pause.
pub fn members(ctx: &Context, pod: &PodRecord) -> Vec<u32> {
    let dir = pod_dir(ctx, &pod.name);
    let Ok(net) = std::fs::metadata(dir.join("net")) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| *pid != pod.pid)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.ino() == net.ino() && m.dev() == net.dev())
        })
        .collect()
}

fn find(ctx: &Context, name: &str) -> Result<PodRecord> {
    ctx.state_read()?
        .map(|s| s.pod(name))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::Invalid(format!("pod {name} does not exist")))
}

/// Every pod, each with the networks it is on now (see [`endpoints`]).
pub fn list(ctx: &Context) -> Result<Vec<PodRecord>> {
    match ctx.state_read()? {
        Some(state) => {
            let all = state.endpoints(None)?;
            Ok(state
                .pods()?
                .into_iter()
                .map(|p| with_networks(p, &all))
                .collect())
        }
        None => Ok(Vec::new()),
    }
}

/// A pod, with the networks it is on now (see [`endpoints`]).
pub fn get(ctx: &Context, name: &str) -> Result<PodRecord> {
    let pod = find(ctx, name)?;
    let all = match ctx.state_read()? {
        Some(state) => state.endpoints(None)?,
        None => Vec::new(),
    };
    Ok(with_networks(pod, &all))
}

/// Whether `ep` is an endpoint of `pod`: in its network namespace, however
/// it was connected (by `pod create`, or since by `network connect NET
/// POD`), or recorded for it by `pod create` (id `NETWORK/pod:NAME`) before
/// its namespace's inode was.
fn is_pods(pod: &PodRecord, ep: &Endpoint) -> bool {
    (pod.net_inode != 0 && ep.netns_inode == pod.net_inode)
        || ep
            .id
            .strip_prefix(ep.network.as_str())
            .and_then(|rest| rest.strip_prefix("/pod:"))
            == Some(pod.name.as_str())
}

/// A pod's endpoints. They are the one record of the networks a pod is on:
/// `pod ls`, `pod inspect` and `pod rm` go by them, so a network connected
/// after creation shows and is released, and one removed is gone.
pub fn endpoints(state: &crate::store::State, pod: &PodRecord) -> Result<Vec<Endpoint>> {
    Ok(state
        .endpoints(None)?
        .into_iter()
        .filter(|e| is_pods(pod, e))
        .collect())
}

/// `pod` with `networks` as its endpoints say, in their order, once each.
fn with_networks(mut pod: PodRecord, all: &[Endpoint]) -> PodRecord {
    let mut networks: Vec<String> = Vec::new();
    for ep in all.iter().filter(|e| is_pods(&pod, e)) {
        if !networks.contains(&ep.network) {
            networks.push(ep.network.clone());
        }
    }
    pod.networks = networks;
    pod
}

/// What a command joins to run in the pod.
pub fn joined(ctx: &Context, pod: &PodRecord) -> Joined {
    let dir = pod_dir(ctx, &pod.name);
    Joined {
        net: Some(dir.join("net")),
        ipc: Some(dir.join("ipc")),
        uts: Some(dir.join("uts")),
        pid: pod.pid_share.then(|| dir.join("pid")),
    }
}

/// Runs a command in a pod; the child is returned to be waited for (or not).
pub fn exec(ctx: &Context, name: &str, spec: &CommandSpec) -> Result<spawn::Spawned> {
    let pod = find(ctx, name)?;
    require_admin()?;
    if !alive(&pod) {
        return Err(Error::Invalid(format!(
            "pod {name} is dead (its pause process is gone); remove it with nsnet pod rm"
        )));
    }
    spawn::spawn(&joined(ctx, &pod), spec)
}

/// Sends SIGTERM, then SIGKILL after `grace`, and waits (bounded) for the end.
fn stop_pid(pid: u32, grace: Duration) {
    stop_all(&[pid], grace);
}

/// SIGTERM to each, SIGKILL to those still running after `grace`; returns once
/// all have exited (or 2 s after the SIGKILL). Each process is held by a pidfd
/// from before the first signal, so a PID reused meanwhile is never signalled,
/// and its exit wakes the wait at once (no polling interval to pay).
fn stop_all(pids: &[u32], grace: Duration) {
    use rustix::process::{pidfd_open, pidfd_send_signal, PidfdFlags, Signal};
    let mut held: Vec<(u32, Option<OwnedFd>)> = pids
        .iter()
        .filter_map(|&pid| {
            let p = rustix::process::Pid::from_raw(pid as i32)?;
            Some((pid, pidfd_open(p, PidfdFlags::empty()).ok()))
        })
        .collect();
    // Without a pidfd (a process already gone, or an old kernel) fall back to
    // signalling by PID and watching /proc.
    let signal = |pid: u32, fd: &Option<OwnedFd>, sig: Signal| match fd {
        Some(fd) => {
            let _ = pidfd_send_signal(fd, sig);
        }
        None => {
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, sig);
            }
        }
    };
    for (pid, fd) in &held {
        signal(*pid, fd, Signal::TERM);
    }
    wait_exited(&mut held, grace);
    if held.is_empty() {
        return;
    }
    for (pid, fd) in &held {
        signal(*pid, fd, Signal::KILL);
    }
    wait_exited(&mut held, Duration::from_secs(2));
}

/// Waits until every process in `held` has exited or `limit` passed; drops
/// the ones that exited from `held`.
fn wait_exited(held: &mut Vec<(u32, Option<OwnedFd>)>, limit: Duration) {
    use rustix::event::{poll, PollFd, PollFlags};
    let start = Instant::now();
    loop {
        held.retain(|(pid, fd)| match fd {
            Some(fd) => {
                let mut one = [PollFd::new(fd, PollFlags::IN)];
                !matches!(poll(&mut one, Some(&rustix::event::Timespec::default())), Ok(n) if n > 0)
            }
            None => Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid),
        });
        let left = limit.saturating_sub(start.elapsed());
        if held.is_empty() || left.is_zero() {
            return;
        }
        if held.iter().all(|(_, fd)| fd.is_some()) {
            // Sleep until one of them exits (a pidfd turns readable on exit).
            let mut fds: Vec<PollFd<'_>> = held
                .iter()
                .filter_map(|(_, fd)| fd.as_ref().map(|fd| PollFd::new(fd, PollFlags::IN)))
                .collect();
            let timeout = rustix::event::Timespec::try_from(left).unwrap_or_default();
            let _ = poll(&mut fds, Some(&timeout));
        } else {
            std::thread::sleep(Duration::from_millis(5).min(left));
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Removes a pod: its members (only with `force` while any run), the pause
/// process, endpoints, ports, leases and pinned namespaces. Goes on past errors.
pub fn remove(ctx: &Context, name: &str, force: bool) -> Result<()> {
    let pod = find(ctx, name)?;
    require_admin()?;
    let members = members(ctx, &pod);
    if !members.is_empty() && !force {
        return Err(Error::Invalid(format!(
            "pod {name} has {} running member(s) (PIDs {}); stop them or use --force",
            members.len(),
            members
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut errors = Vec::new();
    stop_all(&members, GRACE);
    if alive(&pod) {
        stop_pid(pod.pid, GRACE);
    }
    tracing::debug!("pod rm: members and pause process stopped");
    // Every endpoint in its namespace, also those connected after creation.
    for ep in endpoints(&ctx.state()?, &pod)? {
        if let Err(e) = endpoint::disconnect_endpoint(ctx, &ep) {
            errors.push(e.to_string());
        }
    }
    if let Ok(ns_name) = name.parse::<NetnsName>() {
        // Only the name nsnet gave this pod: the same namespace as the pinned
        // one, or an empty leftover of its name (an earlier `pod rm` or the
        // creation was killed between the file and the mount; `pod create`
        // refuses a name that exists, so the file is this pod's).
        let ours = std::fs::metadata(netns::named_path(&ns_name))
            .is_ok_and(|m| m.ino() == pod.net_inode)
            || netns::is_leftover(&ns_name);
        if ours {
            if let Err(e) = netns::delete(&ns_name) {
                errors.push(e.to_string());
            }
        }
    }
    errors.extend(unpin_dir(&pod_dir(ctx, name)));
    tracing::debug!("pod rm: namespaces unpinned");
    if errors.is_empty() {
        ctx.state()?.delete_pod(name)?;
        Ok(())
    } else {
        Err(Error::Teardown {
            what: format!("pod {name}"),
            errors,
        })
    }
}
