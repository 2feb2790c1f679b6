//! nsnet's locks and its in-flight journal: every operation takes them, gc, check
//! and reload rely on them (ARCHITECTURE.md, "Locking").
//!
//! - The process-wide [`Lock`] (`STATE_DIR/lock`): for the rare steps that must not
//!   run twice at once (declaring the firewall's base ruleset, creating a network's
//!   bridge). Leases do not need it: the store's immediate transactions serialise them.
//! - The operations lock (`STATE_DIR/ops.lock`): every connect holds it *shared* from
//!   just before it brings its network up until it has finished with the kernel,
//!   every disconnect and `network rm` around their teardown, and `nsnet run` while
//!   it makes its run directory ([`InFlight::begin`]), so concurrent connects never
//!   wait for each other. gc, check and reload hold it *exclusively* ([`Exclusive`]):
//!   while they run, no endpoint or bridge is half made or half torn down by a live
//!   process, so whatever they see is either finished or left behind by a process
//!   that died. A process killed with SIGKILL loses its lock with its file
//!   descriptors: a crash can never block gc. This beats a grace period ("only
//!   collect records older than N seconds"): it needs no clock, never collects a
//!   slow operation, and never waits to collect a dead one.
//! - A network's own lock ([`NetworkLock`], `STATE_DIR/networks/NAME.lock`), which
//!   serialises its removal with its connects.
//! - The journal (`STATE_DIR/inflight/NSVxxx`): the shared holder of the operations
//!   lock also writes a file per endpoint it works on, named by the endpoint's host
//!   veth, and removes it when it is done, in success or failure (after its rollback
//!   ran). A journal that gc finds while holding the lock exclusively was left by a
//!   killed process, and names an endpoint that may be half made (a connect) or half
//!   removed (a disconnect); either way gc tears it down, which is what finishing the
//!   disconnect or rolling back the connect means. Without it, a connect killed after
//!   its veth existed would look like a finished endpoint whose firewall elements
//!   someone flushed. Named by endpoint, not by process, a journal left by a killed
//!   connect is taken over (and removed) by a retry of the same connect, so gc never
//!   tears down what the retry made whole.
//!
//! Lock order is always a network's own lock, then `ops.lock`, then the process-wide
//! lock (taken inside connect), so they never deadlock; gc, check and reload take no
//! network's lock.

use super::{Context, Error, Result};
use crate::store::layout::{JOURNAL_DIR, NETWORK_LOCKS, OPS_LOCK, PROCESS_LOCK};
use rustix::fs::FlockOperation;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Opens (creating, never following a link) `STATE_DIR/name` and `flock`s it.
fn flock_file(state_dir: &Path, name: &str, mode: FlockOperation) -> std::io::Result<File> {
    crate::safefs::private_dir(state_dir).map_err(std::io::Error::other)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(state_dir.join(name))?;
    rustix::fs::flock(&file, mode)?;
    Ok(file)
}

/// The process-wide lock.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until this process holds the lock in `state_dir`.
    pub fn acquire(state_dir: &Path) -> std::io::Result<Self> {
        let file = flock_file(state_dir, PROCESS_LOCK, FlockOperation::LockExclusive)?;
        Ok(Self { _file: file })
    }
}

/// Whether this process holds the operations lock exclusively: then the
/// operations gc runs itself (pod removal disconnects) must not wait for it.
static EXCLUSIVE: AtomicBool = AtomicBool::new(false);

fn ops_lock(state_dir: &Path, mode: FlockOperation) -> Result<File> {
    flock_file(state_dir, OPS_LOCK, mode).map_err(|source| Error::Io {
        what: format!("locking {}", state_dir.join(OPS_LOCK).display()),
        source,
    })
}

/// The operations lock, held exclusively (gc, check, reload).
pub struct Exclusive {
    _file: File,
}

impl Exclusive {
    /// Waits until no connect or disconnect is in flight, and keeps new ones
    /// waiting until dropped.
    pub fn acquire(ctx: &Context) -> Result<Self> {
        let file = ops_lock(&ctx.state_dir, FlockOperation::LockExclusive)?;
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
            Some(ops_lock(&ctx.state_dir, FlockOperation::LockShared)?)
        };
        let dir = ctx.journal_dir();
        let mut journals = Vec::new();
        for id in ids {
            let name = crate::store::layout::host_ifname(id);
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

/// One network's lock (`STATE_DIR/networks/NAME.lock`, an `flock`): every
/// connect holds it *shared* from before it reads the network's definition
/// until it has finished with the kernel, `network rm` holds it
/// *exclusively* from before it lists the network's endpoints until the
/// definition is gone. So a connect either ends before the removal lists
/// (and takes down) its endpoint, or starts after it and finds no network;
/// connects to one network never wait for each other, and a network's lock
/// never touches another's connects. Costs a connect an `open`, an `flock`
/// and two `stat`s (no process, no store access).
///
/// A removal that succeeded unlinks the file while holding it, so a waiter
/// finds the file it locked unlinked and opens the one now at the path (made
/// afresh if needed): a lock on an unlinked file would exclude nobody.
/// Order: a network's lock first, then the operations lock, then the
/// process-wide [`Lock`].
pub struct NetworkLock {
    file: std::os::fd::OwnedFd,
    dir: std::os::fd::OwnedFd,
    name: String,
}

impl NetworkLock {
    /// Holds network `network`'s lock shared (a connect).
    pub fn shared(state_dir: &Path, network: &str) -> crate::safefs::Result<Self> {
        Self::acquire(state_dir, network, rustix::fs::FlockOperation::LockShared)
    }

    /// Holds network `network`'s lock exclusively (its removal).
    pub fn exclusive(state_dir: &Path, network: &str) -> crate::safefs::Result<Self> {
        Self::acquire(
            state_dir,
            network,
            rustix::fs::FlockOperation::LockExclusive,
        )
    }

    fn acquire(
        state_dir: &Path,
        network: &str,
        mode: rustix::fs::FlockOperation,
    ) -> crate::safefs::Result<Self> {
        use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
        let rel = Path::new(NETWORK_LOCKS);
        let name = format!("{network}.lock");
        let path = state_dir.join(rel).join(&name);
        let io = |e: rustix::io::Errno| crate::safefs::Error::Io {
            path: path.clone(),
            source: e.into(),
        };
        let dir = crate::safefs::dirs_beneath(state_dir, rel)?;
        loop {
            let file = rustix::fs::openat2(
                &dir,
                &name,
                OFlags::RDONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
            .map_err(io)?;
            rustix::fs::flock(&file, mode).map_err(io)?;
            let held = rustix::fs::fstat(&file).map_err(io)?;
            match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                    return Ok(Self {
                        file,
                        dir,
                        name: name.clone(),
                    })
                }
                // Unlinked (or replaced) by a removal while we waited.
                Ok(_) | Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Unlinks the lock file, held exclusively, so that nothing is left of a
    /// removed network; waiters open a new one. Always safe while held
    /// exclusively: nobody else holds the file.
    pub fn remove(self) {
        let _ = rustix::fs::unlinkat(&self.dir, &self.name, rustix::fs::AtFlags::empty());
        drop(self.file);
    }

    /// [`NetworkLock::remove`] after a connect to a network that does not
    /// exist, unless someone else holds the lock (then it is theirs to keep).
    pub fn remove_if_unused(self) {
        use rustix::fs::FlockOperation::NonBlockingLockExclusive;
        if rustix::fs::flock(&self.file, NonBlockingLockExclusive).is_ok() {
            self.remove();
        }
    }
}
