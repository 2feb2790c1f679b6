//! nsnet's process-wide lock, for the rare steps that must not run twice at once
//! (declaring the firewall's base ruleset, creating a network's bridge). Leases
//! do not need it: the store's immediate transactions serialise them.

use std::fs::File;
use std::path::Path;

pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until this process holds the lock in `state_dir`.
    pub fn acquire(state_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(state_dir)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(state_dir.join("lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Self { _file: file })
    }
}
