//! Maintenance: `nsnet gc`, `nsnet check` and `nsnet firewall reload`. They hold
//! the operations lock exclusively ([`super::lock`]), so whatever they see is either
//! finished or left behind by a process that died; gc finishes what the in-flight
//! journal names.
//!
//! Pods are not journaled: `pod create` records a pod (PID 0) before its pause
//! process runs. Such a pod is left alone while any other process has the
//! state database open (its creator holds it open from before the record to
//! the end), and collected, with its pause process, once none does.
//!
//! Assumed: one state dir per config dir (two stores sharing networks would
//! hand out one address twice anyway). gc only ever deletes `nsv…` veths on
//! this store's bridges, and firewall elements that name this store's bridges
//! or lead into its subnets.

mod check;
mod gc;

pub(crate) use super::alive::{process_runs, recorded_process_runs};
pub use super::ruleset::reload;
use super::ruleset::{foreign, table};
pub(crate) use check::bridge_problems;
pub use check::{check, Drift};
pub use gc::{collect_run, gc, GcReport, Removed};

use super::{Context, Error, Result};
use std::fs::File;
use std::path::PathBuf;

use super::lock::{Exclusive, InFlight};

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// A journal file left by a killed process: the endpoint it was working on.
struct Interrupted {
    path: PathBuf,
    /// The endpoint's host veth name (the file's name), which finds its record.
    host_ifname: String,
    /// Its id, if the file got written.
    id: Option<String>,
}

/// Every journal file. Only meaningful under [`Exclusive`]: then none of them
/// belongs to a live operation.
fn interrupted(ctx: &Context) -> Result<Vec<Interrupted>> {
    let dir = ctx.journal_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("reading {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(format!("reading {}", dir.display())))?;
        let path = entry.path();
        let text = std::fs::read_to_string(&path)
            .map_err(io_err(format!("reading {}", path.display())))?;
        out.push(Interrupted {
            host_ifname: entry.file_name().to_string_lossy().into_owned(),
            id: text
                .lines()
                .next()
                .filter(|l| !l.is_empty())
                .map(String::from),
            path,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

impl Interrupted {
    /// How lines name it: its id, or its veth's name if the file is empty.
    fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("endpoint {id}"),
            None => format!("endpoint with host veth {}", self.host_ifname),
        }
    }
}

/// PIDs of other processes that have the state database open: a pod whose
/// pause process has not been recorded yet may still be in the making while
/// there is one (see the module docs).
fn state_db_holders(ctx: &Context) -> Vec<u32> {
    let Ok(db) = std::fs::canonicalize(ctx.state_dir.join("nsnet.db")) else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == db))
            })
        })
        .collect()
}

/// Pause processes that no pod record names, with hostname `hostname`: what a
/// `pod create` killed before it recorded its pause's PID leaves running (the
/// hostname, given at spawn, is the only mark it bears before its namespaces
/// are pinned). Only meaningful when no creation can be in flight.
fn unrecorded_pauses(recorded: &[u32], hostname: &str) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !recorded.contains(pid) && process_runs(*pid))
        // A pause still a child of its creator is in the making.
        .filter(|pid| parent(*pid).is_none_or(|pp| !is_nsnet_creator(pp)))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|&b| b == 0);
            let first = args.next().unwrap_or_default();
            first == b"nsnet-pause" || args.next() == Some(crate::pause::ARG.as_bytes())
        })
        .filter(|pid| uts_hostname(*pid).is_some_and(|h| h == hostname))
        .collect()
}

/// The parent of process `pid`.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether process `pid` runs the same program as this one (nsnet, which
/// spawns pause processes), as opposed to the init or subreaper that adopts
/// the pause of a creator that died.
fn is_nsnet_creator(pid: u32) -> bool {
    let me = std::fs::metadata("/proc/self/exe");
    let it = std::fs::metadata(format!("/proc/{pid}/exe"));
    match (me, it) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.ino() == b.ino() && a.dev() == b.dev()
        }
        _ => false,
    }
}

/// The hostname of process `pid`'s UTS namespace, read on a throwaway thread
/// that joins it.
fn uts_hostname(pid: u32) -> Option<String> {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    use std::os::fd::AsFd;
    let ns = File::open(format!("/proc/{pid}/ns/uts")).ok()?;
    std::thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(
                ns.as_fd(),
                Some(LinkNameSpaceType::HostNameAndNISDomainName),
            )
            .ok()?;
            Some(
                rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .join()
        .ok()
        .flatten()
    })
}

/// Pods whose creation was interrupted: recorded without a pause process
/// (PID 0) and nobody left to finish them.
///
/// A pod is in the making while anyone else has the store open: its creator
/// does, from before the record to after the PID. Once nobody does, every
/// creator that recorded one of the pending pods has ended, so a second read
/// shows which of them finished; those still pending in both are abandoned.
/// Holders get 200 ms to let go: a pause process forked by a creator that was
/// killed holds the creator's file descriptors until it execs (a live creator
/// keeps holding; it may be waiting for the caller's lock).
fn abandoned_pods(ctx: &Context, state: &crate::store::State) -> Result<Vec<String>> {
    let pending: Vec<String> = state
        .pods()?
        .into_iter()
        .filter(|p| p.pid == 0)
        .map(|p| p.name)
        .collect();
    if pending.is_empty() {
        return Ok(pending);
    }
    let start = std::time::Instant::now();
    loop {
        let holders = state_db_holders(ctx);
        if holders.is_empty() {
            break;
        }
        if start.elapsed() > std::time::Duration::from_millis(200) {
            tracing::debug!("pods {pending:?} may be in the making (store open by {holders:?})");
            return Ok(Vec::new());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(state
        .pods()?
        .into_iter()
        .filter(|p| p.pid == 0 && pending.contains(&p.name))
        .map(|p| p.name)
        .collect())
}

/// `STATE_DIR/pods/NAME`, as `pod` keeps it.
fn pod_dir(ctx: &Context, name: &str) -> PathBuf {
    ctx.pod_dir(name)
}

/// `STATE_DIR/runs/ID`, as `run` keeps it.
fn runs_dir(ctx: &Context) -> PathBuf {
    ctx.runs_dir()
}

use crate::store::layout::is_host_ifname as is_host_veth_name;

pub(crate) use super::endpoint::label as endpoint_label;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_recognised() {
        assert!(is_host_veth_name(&super::super::endpoint::host_ifname(
            "web/4026532"
        )));
        assert!(is_host_veth_name("nsv0123456789ab"));
        assert!(!is_host_veth_name("nsv0123456789aB"));
        assert!(!is_host_veth_name("nsv0123456789a"));
        assert!(!is_host_veth_name("veth0123456789a"));
    }

    #[test]
    fn a_journal_lives_as_long_as_its_operation() {
        let dir = std::env::temp_dir().join(format!("nsnet-maint-{}", std::process::id()));
        let ctx = Context {
            state_dir: dir.clone(),
            config_dir: dir.clone(),
        };
        {
            let _a = InFlight::begin(&ctx, ["n/a", "n/b"]).unwrap();
            let mut found: Vec<_> = interrupted(&ctx)
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect();
            found.sort();
            assert_eq!(found, [Some("n/a".to_owned()), Some("n/b".to_owned())]);
            // A later operation on the same endpoint takes its journal over.
            drop(InFlight::begin(&ctx, ["n/a"]).unwrap());
            let left: Vec<_> = interrupted(&ctx)
                .unwrap()
                .into_iter()
                .map(|j| j.id)
                .collect();
            assert_eq!(left, [Some("n/b".to_owned())]);
        }
        assert!(interrupted(&ctx).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
