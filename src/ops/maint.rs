//! Maintenance: `nsnet gc`, `nsnet check` and `nsnet firewall reload`, and the
//! two mechanisms that let them run safely beside every other nsnet process.
//!
//! **The operations lock** (`STATE_DIR/ops.lock`, an `flock`). Every connect
//! holds it *shared* from just before it brings its network up until it has
//! finished with the kernel, every disconnect and `network rm` around their
//! teardown, and `nsnet run` while it makes its run directory
//! ([`InFlight::begin`]), so concurrent connects never wait for each other. gc,
//! check and reload hold it *exclusively* ([`Exclusive`]): while they run, no
//! endpoint or bridge is half made or half torn down by a live process, so
//! whatever they see is either finished or left behind by a process that died.
//! A process killed with SIGKILL loses its lock with its file descriptors: a
//! crash can never block gc. This beats a grace period ("only collect records
//! older than N seconds"): it needs no clock, never collects a slow operation,
//! and never waits to collect a dead one. Lock order is always a network's
//! own lock (`networks/NAME.lock`, which serialises its removal with its
//! connects: [`crate::ops::lock::NetworkLock`]), then `ops.lock`, then the
//! process-wide lock (bridge and base ruleset, taken inside connect), so they
//! never deadlock; gc, check and reload take no network's lock.
//!
//! **The journal** (`STATE_DIR/inflight/NSVxxx`). The shared holder also writes
//! a file per endpoint it works on, named by the endpoint's host veth, and
//! removes it when it is done, in success or failure (after its rollback ran).
//! A journal that gc finds while holding the lock exclusively was left by a
//! killed process, and names an endpoint that may be half made (a connect) or
//! half removed (a disconnect); either way gc tears it down, which is what
//! finishing the disconnect or rolling back the connect means. Without it, a
//! connect killed after its veth existed would look like a finished endpoint
//! whose firewall elements someone flushed. Named by endpoint, not by process,
//! a journal left by a killed connect is taken over (and removed) by a retry of
//! the same connect, so gc never tears down what the retry made whole.
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

mod alive;
mod check;
mod foreign;
mod gc;
mod reload;
mod table;

pub(crate) use alive::find_netns;
pub(crate) use check::bridge_problems;
pub use check::{check, Drift};
pub use gc::{collect_run, gc, GcReport, Removed};
pub use reload::{networks_in_use, reinstall_if_deleted, reload};

use super::{Context, Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

const LOCK_FILE: &str = "ops.lock";
const JOURNAL_DIR: &str = "inflight";

/// Whether this process holds the operations lock exclusively: then the
/// operations gc runs itself (pod removal disconnects) must not wait for it.
static EXCLUSIVE: AtomicBool = AtomicBool::new(false);

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

fn lock(state_dir: &Path, mode: rustix::fs::FlockOperation) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::safefs::private_dir(state_dir)?;
    let path = state_dir.join(LOCK_FILE);
    let open = || -> std::io::Result<File> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)?;
        rustix::fs::flock(&file, mode)?;
        Ok(file)
    };
    open().map_err(io_err(format!("locking {}", path.display())))
}

/// The operations lock, held exclusively (see the module docs).
pub struct Exclusive {
    _file: File,
}

impl Exclusive {
    /// Waits until no connect or disconnect is in flight, and keeps new ones
    /// waiting until dropped.
    pub fn acquire(ctx: &Context) -> Result<Self> {
        let file = lock(&ctx.state_dir, rustix::fs::FlockOperation::LockExclusive)?;
        EXCLUSIVE.store(true, Ordering::SeqCst);
        Ok(Self { _file: file })
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        EXCLUSIVE.store(false, Ordering::SeqCst);
    }
}

/// A connect or disconnect in flight: the operations lock held shared, and a
/// journal file per endpoint it works on; all go when it is dropped.
pub struct InFlight {
    journals: Vec<PathBuf>,
    _lock: Option<File>,
}

impl InFlight {
    /// Declares work on the endpoints `ids` (full ids, `NETWORK/...`). Waits
    /// while gc, check or reload runs.
    ///
    /// A journal is named by the endpoint (its host veth's name), not by the
    /// process: a later operation on the same endpoint takes the journal a
    /// killed one left over and removes it when it is done, so gc never tears
    /// down an endpoint that a retried connect has since made whole.
    pub fn begin<'a>(ctx: &Context, ids: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let lock = if EXCLUSIVE.load(Ordering::SeqCst) {
            None
        } else {
            Some(lock(
                &ctx.state_dir,
                rustix::fs::FlockOperation::LockShared,
            )?)
        };
        let dir = ctx.state_dir.join(JOURNAL_DIR);
        let mut journals = Vec::new();
        for id in ids {
            let name = super::endpoint::host_ifname(id);
            let rel = Path::new(JOURNAL_DIR);
            crate::safefs::write_beneath(&ctx.state_dir, rel, &name, &format!("{id}\n"))?;
            journals.push(dir.join(name));
        }
        Ok(Self {
            journals,
            _lock: lock,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Before the lock goes (fields drop after this body).
        for path in &self.journals {
            let _ = std::fs::remove_file(path);
        }
    }
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
    let dir = ctx.state_dir.join(JOURNAL_DIR);
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
fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// `STATE_DIR/pods/NAME`, as `pod` keeps it.
fn pod_dir(ctx: &Context, name: &str) -> PathBuf {
    ctx.state_dir.join("pods").join(name)
}

/// `STATE_DIR/runs/ID`, as `run` keeps it.
fn runs_dir(ctx: &Context) -> PathBuf {
    ctx.state_dir.join("runs")
}

/// Host veth names nsnet makes: `nsv` and 12 hex digits ([`super::endpoint::host_ifname`]).
fn is_host_veth_name(name: &str) -> bool {
    name.strip_prefix("nsv").is_some_and(|h| {
        h.len() == 12
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `what` of an endpoint, as lines name it: its id, namespace and interface.
fn endpoint_label(ep: &crate::store::Endpoint) -> String {
    format!("endpoint {} ({} {})", ep.id, ep.target, ep.ifname)
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
