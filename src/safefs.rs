//! nsnet's own directories, kept so that nobody else can steer what nsnet
//! writes, removes or mounts there (SECURITY.md).
//!
//! The state and config directories are nsnet's alone: made 0700, put back to
//! 0700 when they belong to nsnet's user, refused when another user owns them.
//! The databases are 0600 (SQLite gives its WAL and shared-memory files the
//! database's mode). Everything nsnet makes beneath the state directory
//! (journals, run and pod directories, the files namespaces are mounted on) is
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from a
//! descriptor of the directory: a symbolic link planted there (`pods -> /etc`)
//! is an error, never followed, and a namespace is mounted on the very file
//! nsnet created (through its descriptor), not on whatever a path names later.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} belongs to uid {owner}, not to nsnet's user (uid {me}): \
         refusing to keep nsnet's records where another user can change them"
    )]
    Foreign { path: PathBuf, owner: u32, me: u32 },
    #[error("{0} is not a directory")]
    NotDir(PathBuf),
    #[error("{0} is a symbolic link or leads out of nsnet's directory: refusing to follow it")]
    Symlink(PathBuf),
}

pub type Result<T> = std::result::Result<T, Error>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn errno(path: &Path) -> impl Fn(rustix::io::Errno) -> Error + '_ {
    move |e| match e {
        // ELOOP: a symlink met under RESOLVE_NO_SYMLINKS (or O_NOFOLLOW);
        // EXDEV: a path that would leave the directory.
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => Error::Symlink(path.to_owned()),
        e => Error::Io {
            path: path.to_owned(),
            source: e.into(),
        },
    }
}

/// Creates `dir` and its missing parents as nsnet's own (mode 0700), so a
/// later [`private_dir`] has nothing to repair (and nothing to warn about).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes `dir` (and missing parents) 0700; repairs the mode of one that is
/// nsnet's user's; refuses one that another user owns.
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(Error::NotDir(dir.to_owned()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::Foreign {
            path: dir.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            "{} was mode {:o}; made it 0700",
            dir.display(),
            meta.mode() & 0o7777
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// Makes sure the database at `path` is a regular file of nsnet's user, mode
/// 0600 (created so when missing), never a link to somewhere else.
///
/// The file is looked at through an `O_PATH` descriptor, never opened for
/// reading or writing: closing a real descriptor of a file drops every POSIX
/// lock this process holds on it, SQLite's included. A process with the
/// database open already (a second connection, as a connect opens one in
/// `reinstall_if_deleted`) thus lost its shared lock, so another process
/// closing its last connection took the database for its own, checkpointed
/// and removed the WAL under it: commits were lost and readers failed with
/// "disk I/O error ... file truncated?" (SQLite error 522). An `O_PATH`
/// descriptor holds no lock and drops none when closed.
pub fn private_file(path: &Path) -> Result<()> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) => {
            // Not there: this process cannot have it open either.
            let made = rustix::fs::open(
                path,
                OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            );
            drop(made.map_err(errno(path))?);
            rustix::fs::open(path, flags, Mode::empty())
        }
        other => other,
    }
    .map_err(errno(path))?;
    let st = rustix::fs::fstat(&fd).map_err(errno(path))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
        // O_PATH | O_NOFOLLOW opens the link itself rather than failing.
        return Err(Error::Symlink(path.to_owned()));
    }
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(Error::Foreign {
            path: path.to_owned(),
            owner: st.st_uid,
            me,
        });
    }
    if st.st_mode & 0o077 != 0 {
        // fchmod does not take an O_PATH descriptor; its /proc link names
        // the same file, whatever happened to `path` since.
        rustix::fs::chmod(fd_path(&fd).as_str(), Mode::from_raw_mode(0o600))
            .map_err(errno(path))?;
    }
    Ok(())
}

/// How every open beneath a root resolves: no symlink, nothing outside.
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// Opens (making each missing one, 0700) the directories `rel` beneath `root`,
/// a plain relative path such as `pods/web`.
pub fn dirs_beneath(root: &Path, rel: &Path) -> Result<OwnedFd> {
    private_dir(root)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(root, flags, Mode::empty()).map_err(errno(root))?;
    let mut at = root.to_owned();
    for part in rel.components() {
        at.push(part);
        let name = part.as_os_str();
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(errno(&at)(e)),
        }
        dir =
            rustix::fs::openat2(&dir, name, flags, Mode::empty(), beneath()).map_err(errno(&at))?;
    }
    Ok(dir)
}

/// Creates (or, without `exclusive`, truncates) the file `name` in the
/// directory `rel` beneath `root`, mode 0600, never through a symlink.
pub fn create_beneath(root: &Path, rel: &Path, name: &str, exclusive: bool) -> Result<OwnedFd> {
    let dir = dirs_beneath(root, rel)?;
    let path = root.join(rel).join(name);
    let mut flags = OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    flags |= if exclusive {
        OFlags::EXCL
    } else {
        OFlags::TRUNC
    };
    rustix::fs::openat2(&dir, name, flags, Mode::from_raw_mode(0o600), beneath())
        .map_err(errno(&path))
}

/// Writes `contents` to the file `name` in `rel` beneath `root` (see
/// [`create_beneath`]).
pub fn write_beneath(root: &Path, rel: &Path, name: &str, contents: &str) -> Result<()> {
    let fd = create_beneath(root, rel, name, false)?;
    let path = root.join(rel).join(name);
    std::fs::File::from(fd)
        .write_all(contents.as_bytes())
        .map_err(io(&path))
}

/// The path that names the file `fd` is open on, whatever happens to the
/// path it was opened by: for mounting onto exactly that file.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}
