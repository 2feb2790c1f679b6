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
