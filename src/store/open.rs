//! Opening the databases: the read-write open that applies the schema on
//! first use (serialised by a lock file), the read-only open of listings, and
//! the messages that say what a store error means and what to do.

use super::{Error, Result, BUSY_TIMEOUT};
use rusqlite::{Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a failed permission check means for nsnet: its records are root's.
pub(super) fn needs_root(path: &Path) -> String {
    format!(
        "{}: permission denied: nsnet's records belong to root; run nsnet as root",
        path.display()
    )
}

pub(super) fn io_message(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return needs_root(path);
    }
    if e.raw_os_error() == Some(libc::EROFS) {
        return format!(
            "{}: read-only file system: changing networks needs it writable \
             (listings need no write access)",
            path.display()
        );
    }
    let text = e.to_string();
    let plain = text.split(" (os error").next().unwrap_or(&text);
    format!("{}: {plain}", path.display())
}

pub(super) fn unsafe_message(e: &crate::safefs::Error) -> String {
    use crate::safefs::Error as S;
    match e {
        // Root's directories, met by another user: the answer is to be root.
        S::Foreign { path, owner: 0, .. } => needs_root(path),
        S::Io { path, source } => io_message(path, source),
        other => format!("store: {other}"),
    }
}

pub(super) fn db_message(path: &Path, e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    let code = match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    let root = rustix::process::geteuid().is_root();
    match code {
        Some(C::NotADatabase | C::DatabaseCorrupt) => format!(
            "{p} is damaged (not a readable nsnet database): move it aside \
             (mv {p} {p}.damaged; nsnet starts a new one, and `nsnet check` then lists \
             what the kernel still holds) or restore it from a backup",
            p = path.display()
        ),
        Some(C::PermissionDenied | C::ReadOnly | C::CannotOpen) if !root => needs_root(path),
        Some(C::ReadOnly | C::CannotOpen) if path.parent().is_some_and(read_only_fs) => format!(
            "{}: read-only file system: changing networks needs it writable \
             (listings need no write access)",
            path.display()
        ),
        Some(C::ReadOnly) => format!(
            "{}: cannot write (a read-only file system or file); \
             make it writable to change networks (listings need no write access)",
            path.display()
        ),
        Some(C::DiskFull) => format!("{}: the disk is full; free some space", path.display()),
        Some(C::DatabaseBusy | C::DatabaseLocked) => format!(
            "{}: still locked by another nsnet process after {}s; try again",
            path.display(),
            BUSY_TIMEOUT.as_secs()
        ),
        _ => {
            // rusqlite's text, without the "Error code N: ..." detail it may add.
            let text = match e {
                rusqlite::Error::SqliteFailure(f, Some(m)) => format!("{m} ({f})"),
                other => other.to_string(),
            };
            format!("{}: {text}", path.display())
        }
    }
}

/// Wraps a SQLite error with the database it came from.
pub(super) fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + Copy + '_ {
    move |cause| Error::Db {
        path: path.to_owned(),
        cause,
    }
}

/// Whether `dir` is on a file system mounted read-only.
pub(super) fn read_only_fs(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// A path as the path part of an SQLite URI.
pub(super) fn uri_escape(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Opens `dir/nsnet.db` read-only, for listings and views: nothing is created
/// or written, so they need no write access. `None` when it does not exist (or
/// was never given its schema): nothing was recorded yet.
pub(super) fn open_db_read(dir: &Path) -> Result<Option<(Connection, PathBuf)>> {
    use rusqlite::OpenFlags;
    let path = dir.join("nsnet.db");
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => return Err(Error::Io { path, cause }),
        Ok(m) if !m.is_file() => {
            return Err(Error::Unsafe(crate::safefs::Error::Symlink(path)));
        }
        Ok(_) => {}
    }
    let db = db_err(&path);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let version = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
    };
    // Opened for writing (never creating) with writes switched off, where the
    // file allows it: the last connection to a WAL database removes its -wal
    // and -shm files on close only if it could write. A file that cannot be
    // written is opened read-only.
    let writable = (flags - OpenFlags::SQLITE_OPEN_READ_ONLY) | OpenFlags::SQLITE_OPEN_READ_WRITE;
    // Not while a first use applies the schema (see [`open_db`]): a database
    // switching to WAL reads as damaged ("disk I/O error").
    let init = InitLock::open_existing(dir)?;
    if let Some(init) = &init {
        init.lock(rustix::fs::FlockOperation::LockShared)?;
    }
    let conn = match Connection::open_with_flags(&path, writable)
        .and_then(|c| c.pragma_update(None, "query_only", true).map(|()| c))
    {
        Ok(conn) => conn,
        Err(_) => Connection::open_with_flags(&path, flags).map_err(db)?,
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    let (conn, version) = match version(&conn) {
        Ok(v) => (conn, v),
        // A WAL database needs its shared-memory file, which a read-only
        // file system cannot give: read it as immutable (no nsnet can be
        // writing it there either).
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::CannotOpen && read_only_fs(dir) =>
        {
            let uri = format!("file:{}?immutable=1", uri_escape(&path));
            let conn =
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(db)?;
            let v = version(&conn).map_err(db)?;
            (conn, v)
        }
        Err(e) => return Err(db(e)),
    };
    if version < SCHEMA_VERSION {
        return Ok(None);
    }
    Ok(Some((conn, path)))
}

/// The version of both schemas; a database below it gets the schema applied.
pub(super) const SCHEMA_VERSION: i64 = 3;

/// Opens (creating) `dir/nsnet.db`. The schema (and WAL mode, which persists in
/// the file) is applied only to a database older than [`SCHEMA_VERSION`], so the
/// common open costs one pragma read.
///
/// First use is serialised by an `flock` on `dir/nsnet.db-init`: the version is
/// read under a shared lock and the schema applied under an exclusive one. The
/// switch to WAL needs SQLite's exclusive lock and, unlike every other
/// statement, never waits in the busy handler: a concurrent process merely
/// reading the version made it fail at once with "database is locked" (many
/// CNI ADDs on a node that just booted). With the flock, nobody reads the
/// version while the schema is applied; [`switch_to_wal`] still retries within
/// the busy timeout for readers that are not nsnet (an `sqlite3` shell).
pub(super) fn open_db(dir: &Path, schema: &str) -> Result<(Connection, PathBuf)> {
    crate::safefs::private_dir(dir)?;
    let path = dir.join("nsnet.db");
    crate::safefs::private_file(&path)?;
    let db = db_err(&path);
    let mut conn = Connection::open(&path).map_err(db)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db)?;
    let version = |conn: &Connection| -> Result<i64> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)
    };
    let init = InitLock::open(dir)?;
    init.lock(rustix::fs::FlockOperation::LockShared)?;
    if version(&conn)? < SCHEMA_VERSION {
        init.lock(rustix::fs::FlockOperation::LockExclusive)?;
        // Another process may have applied it while we waited.
        if version(&conn)? < SCHEMA_VERSION {
            switch_to_wal(&conn, &path)?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            tx.execute_batch(schema).map_err(db)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
    }
    Ok((conn, path))
}

/// `PRAGMA journal_mode=WAL`, retried while SQLite reports the database busy
/// (the pragma does not use the busy handler), for up to [`BUSY_TIMEOUT`].
pub(super) fn switch_to_wal(conn: &Connection, path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(db_err(path)(e)),
        }
    }
}

/// The lock file that serialises a database's first use (see [`open_db`]);
/// released when dropped. A symlink planted in its place is not followed.
pub(super) struct InitLock {
    file: std::fs::File,
    path: PathBuf,
}

impl InitLock {
    pub(super) fn open(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("nsnet.db-init");
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|cause| Error::Io {
                path: path.clone(),
                cause,
            })?;
        Ok(Self { file, path })
    }

    /// The lock file, opened read-only when it exists (flock needs no write
    /// access): for readers, who make nothing.
    pub(super) fn open_existing(dir: &Path) -> Result<Option<Self>> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("nsnet.db-init");
        match std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => Ok(Some(Self { file, path })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(cause) => Err(Error::Io { path, cause }),
        }
    }

    /// Takes (or converts to) a shared or an exclusive lock, waiting for it.
    pub(super) fn lock(&self, how: rustix::fs::FlockOperation) -> Result<()> {
        rustix::fs::flock(&self.file, how).map_err(|e| Error::Io {
            path: self.path.clone(),
            cause: e.into(),
        })
    }
}
