//! Whether a process still runs (known by PID and start time), and whether an
//! endpoint's network namespace still lives, known by the inode
//! recorded when it was connected.
//!
//! A host veth is no proof of life: `ip netns del` only unmounts a namespace,
//! and the kernel destroys it (its devices, so the veth pairs, so their host
//! ends) later, on a work queue. In between, the namespace is unreachable but
//! its veth still exists. A namespace lives while something can reach it: a
//! mount of it (in any mount namespace), a task in it, or an open descriptor
//! of it. [`Liveness`] (gc) and [`find_netns`] (check) look for the recorded inode
//! among all three.
//!
//! Not seen: a namespace held only by a socket created in it, or by processes
//! outside this PID namespace's `/proc`. Neither is how a container runtime
//! holds a container's namespace (a pause process, a pinned mount).

use crate::names::Target;
use crate::netns::Netns;
use crate::ops::endpoint;
use crate::store::Endpoint;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The inode in a namespace link's text (`net:[4026532371]` for `kind` net).
fn ns_inode(link: &str, kind: &str) -> Option<u64> {
    link.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn net_inode(link: &str) -> Option<u64> {
    ns_inode(link, "net")
}

/// The inode of the `kind` namespace a link (`/proc/PID/ns/net`, a
/// descriptor) refers to, if it refers to one.
fn readlink_inode(path: &Path, kind: &str) -> Option<u64> {
    let link = std::fs::read_link(path).ok()?;
    ns_inode(link.to_str()?, kind)
}

/// The network namespace an open descriptor (`/proc/PID/fd/N`) refers to.
/// Opened as `/proc/X/ns/net` its link reads `net:[N]`; opened through a
/// mount (`/run/netns/NAME`) it reads as that path, even once unmounted, so
/// those are told by the file system they are on (`nsfs_dev`).
fn fd_netns_inode(fd: &Path, nsfs_dev: Option<u64>) -> Option<u64> {
    let link = std::fs::read_link(fd).ok()?;
    let text = link.to_string_lossy();
    if let Some(inode) = net_inode(&text) {
        return Some(inode);
    }
    // Sockets, pipes, anonymous inodes: never a namespace.
    if !text.starts_with('/') {
        return None;
    }
    let meta = std::fs::metadata(fd).ok()?;
    (Some(meta.dev()) == nsfs_dev).then_some(meta.ino())
}

/// The network namespaces mounted in a `mountinfo` text, by inode, with their
/// mount points: an nsfs mount shows the namespace as its root (`net:[N]`).
fn mounted(mountinfo: &str) -> impl Iterator<Item = (u64, String)> + '_ {
    mountinfo
        .lines()
        .filter(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|r| r.starts_with("nsfs "))
        })
        .filter_map(|l| {
            let mut fields = l.split(' ').skip(3);
            let inode = fields.next().and_then(net_inode)?;
            Some((inode, fields.next()?.replace("\\040", " ")))
        })
}

/// Every network namespace something holds, by inode, with a path that opens
/// it: mounts in every mount namespace a process is in, each task's
/// namespace, each open descriptor.
fn scan() -> HashMap<u64, PathBuf> {
    let mut live = HashMap::new();
    let mut mount_namespaces = HashSet::new();
    let nsfs = std::fs::metadata("/proc/self/ns/net").map(|m| m.dev()).ok();
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        for (inode, at) in mounted(&text) {
            live.entry(inode).or_insert_with(|| PathBuf::from(at));
        }
    }
    if let Some(mnt) = readlink_inode(Path::new("/proc/self/ns/mnt"), "mnt") {
        mount_namespaces.insert(mnt);
    }
    let pids = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        });
    for proc in pids {
        let dir = proc.path();
        let tasks = std::fs::read_dir(dir.join("task")).into_iter().flatten();
        let fds = std::fs::read_dir(dir.join("fd")).into_iter().flatten();
        for link in tasks.flatten().map(|t| t.path().join("ns/net")) {
            if let Some(inode) = readlink_inode(&link, "net") {
                live.entry(inode).or_insert(link);
            }
        }
        for fd in fds.flatten().map(|fd| fd.path()) {
            if let Some(inode) = fd_netns_inode(&fd, nsfs) {
                live.entry(inode).or_insert(fd);
            }
        }
        if let Some(mnt) = readlink_inode(&dir.join("ns/mnt"), "mnt") {
            if mount_namespaces.insert(mnt) {
                if let Ok(text) = std::fs::read_to_string(dir.join("mountinfo")) {
                    for (inode, at) in mounted(&text) {
                        let at = dir.join("root").join(at.trim_start_matches('/'));
                        live.entry(inode).or_insert(at);
                    }
                }
            }
        }
    }
    live
}

/// The endpoint's namespace, if the target it was connected by still leads
/// to it (the common case, and no scan).
fn by_target(ep: &Endpoint) -> Option<Netns> {
    let ns = endpoint::open_target(&ep.target.parse::<Target>().ok()?).ok()?;
    ns.inode().is_ok_and(|i| i == ep.netns_inode).then_some(ns)
}

/// The endpoint's namespace: by its target if that still leads to it, else
/// wherever it is held (one scan of the system).
pub(crate) fn find_netns(ep: &Endpoint) -> Option<Netns> {
    if let Some(ns) = by_target(ep) {
        return Some(ns);
    }
    let path = scan().remove(&ep.netns_inode)?;
    Netns::by_path(&path)
        .ok()
        .filter(|ns| ns.inode().is_ok_and(|i| i == ep.netns_inode))
}

/// Answers "is this endpoint's namespace gone?", scanning the system at most
/// twice per gc, and only when an endpoint's own target no longer leads to it.
#[derive(Default)]
pub(super) struct Liveness {
    scans: Option<(HashMap<u64, PathBuf>, HashMap<u64, PathBuf>)>,
}

impl Liveness {
    /// True when no mount, task or descriptor holds the endpoint's namespace.
    /// Two scans, one after the other, must both miss it: a namespace passed
    /// from a process that exits to one that starts is in one of them.
    pub(super) fn namespace_gone(&mut self, ep: &Endpoint) -> bool {
        if ep.netns_inode == 0 {
            return false; // nothing to know it by
        }
        if by_target(ep).is_some() {
            return false;
        }
        let (first, second) = self.scans.get_or_insert_with(|| (scan(), scan()));
        !first.contains_key(&ep.netns_inode) && !second.contains_key(&ep.netns_inode)
    }
}

/// When process `pid` started, in clock ticks after boot (field 22 of
/// `/proc/PID/stat`): with the PID, it names one process for good, where a
/// PID alone may since have been given to another.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from
    // the last `)`, which is field 3's start minus 2.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the process recorded as `pid`, started at `start` (when known),
/// still runs: a PID given to another process since is not it.
pub(crate) fn recorded_process_runs(pid: u32, start: Option<u64>) -> bool {
    process_runs(pid) && start.is_none_or(|s| start_time(pid) == Some(s))
}

/// Processes (not zombies) in the network namespace mounted at `pinned`
/// (a pod's or a run's `net`): none when nothing is mounted there.
pub(crate) fn processes_in(pinned: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(net) = std::fs::metadata(pinned) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.ino() == net.ino() && m.dev() == net.dev())
        })
        .filter(|pid| process_runs(*pid))
        .collect()
}

/// Whether process `pid` runs (exists and is not a zombie).
pub(crate) fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_known_by_its_pid_and_start_time() {
        let me = std::process::id();
        let start = start_time(me);
        assert!(start.is_some());
        assert_eq!(start_time(me), start, "a start time does not change");
        assert!(recorded_process_runs(me, start));
        assert!(recorded_process_runs(me, None));
        let other = start.map(|s| s + 1);
        assert!(
            !recorded_process_runs(me, other),
            "same PID, another process"
        );
    }

    #[test]
    fn nsfs_mounts_are_found_by_their_root_and_other_mounts_are_not() {
        let text = "69 68 0:4 net:[4026532174] /run/netns/a rw - nsfs nsfs rw\n\
                    70 48 0:4 net:[4026532241] /run/x\\040y rw shared:3 - nsfs nsfs rw\n\
                    71 48 0:5 mnt:[4026532999] /run/m rw - nsfs nsfs rw\n\
                    25 1 0:22 / /run rw,nosuid - tmpfs tmpfs rw\n";
        let found: Vec<(u64, String)> = mounted(text).collect();
        assert_eq!(
            found,
            [
                (4026532174, "/run/netns/a".to_owned()),
                (4026532241, "/run/x y".to_owned())
            ]
        );
    }

    #[test]
    fn only_net_links_carry_a_network_namespace_inode() {
        assert_eq!(net_inode("net:[4026531840]"), Some(4026531840));
        assert_eq!(net_inode("mnt:[4026531840]"), None);
        assert_eq!(net_inode("socket:[12345]"), None);
        assert_eq!(net_inode("net:[12"), None);
    }

    #[test]
    fn this_process_namespace_is_alive() {
        let own = readlink_inode(Path::new("/proc/self/ns/net"), "net").expect("own namespace");
        assert!(scan().contains_key(&own));
    }
}
