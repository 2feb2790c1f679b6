//! nsnet's process-wide lock, for the rare steps that must not run twice at once
//! (declaring the firewall's base ruleset, creating a network's bridge). Leases
//! do not need it: the store's immediate transactions serialise them.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until this process holds the lock in `state_dir`.
    pub fn acquire(state_dir: &Path) -> std::io::Result<Self> {
        crate::safefs::private_dir(state_dir).map_err(std::io::Error::other)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(state_dir.join("lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Self { _file: file })
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
/// Order: a network's lock first, then the operations lock
/// (`ops.lock`, [`super::maint`]), then the process-wide [`Lock`].
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
        let rel = Path::new("networks");
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
