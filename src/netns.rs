//! Network namespaces: named ones under `/run/netns`, opened by name, path or PID,
//! and entered safely.
//!
//! Named namespaces are made exactly as iproute2 makes them, so `ip netns` and
//! nsnet see each other's: `/run/netns` is a shared mount point (bind-mounted on
//! itself first when it is not a mount point yet), each namespace is an empty file
//! `/run/netns/NAME` with the namespace's nsfs inode bind-mounted on it. The bind
//! mount keeps the namespace alive without any process in it.
//!
//! Work that needs many kernel calls opens a netlink socket there once
//! ([`Netns::netlink`]) and uses it from any thread: a socket stays bound to its
//! namespace. Opening it (or any descriptor) is done by [`Netns::within`]: the
//! calling thread `setns`es in and back out at once, restored by a drop guard
//! (the process aborts if it cannot return). Longer work runs on a throwaway
//! thread ([`Netns::run`]) that enters the namespace and dies with the closure,
//! so no thread of nsnet is ever left in the wrong namespace.

use crate::names::NetnsName;
use crate::netlink::{self, Netlink};
use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where named namespaces live, as in iproute2 (`NETNS_RUN_DIR`).
pub const NETNS_RUN_DIR: &str = "/run/netns";
/// `statfs` type of the namespace filesystem.
const NSFS_MAGIC: i64 = 0x6e73_6673;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("namespace {0} does not exist")]
    NotFound(String),
    #[error("namespace {0} already exists")]
    Exists(String),
    #[error("process {0} does not exist")]
    NoSuchProcess(u32),
    #[error("{0} is not a network namespace")]
    NotNetns(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("namespace {ns}: {source}")]
    Netlink {
        ns: String,
        #[source]
        source: netlink::Error,
    },
    #[error("a thread working in namespace {0} panicked")]
    ThreadPanicked(String),
}

impl Error {
    fn io(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            what: what.into(),
            source: source.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// An open network namespace. Holding it keeps the namespace alive.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    label: String,
}

impl Netns {
    /// The namespace nsnet itself runs in.
    pub fn host() -> Result<Self> {
        Self::open_path(Path::new("/proc/self/ns/net"), "host".into())
    }

    /// A named namespace, `/run/netns/NAME`.
    pub fn by_name(name: &NetnsName) -> Result<Self> {
        let path = named_path(name);
        if !is_netns_mount(&path) {
            return Err(Error::NotFound(name.to_string()));
        }
        Self::open_path(&path, name.to_string())
    }

    /// A namespace file: `/proc/PID/ns/net`, a bind mount of one, ...
    pub fn by_path(path: &Path) -> Result<Self> {
        Self::open_path(path, path.display().to_string())
    }

    /// The network namespace of a running process.
    pub fn by_pid(pid: u32) -> Result<Self> {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        match File::open(&path) {
            Ok(_) => Self::open_path(&path, format!("pid:{pid}")),
            Err(e) if e.kind() == io::ErrorKind::NotFound || pid == 0 => {
                Err(Error::NoSuchProcess(pid))
            }
            Err(e) => Err(Error::io(format!("process {pid}"), e)),
        }
    }

    fn open_path(path: &Path, label: String) -> Result<Self> {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(label.clone()),
            _ => Error::io(format!("namespace {label}"), e),
        })?;
        let fs =
            rustix::fs::fstatfs(&file).map_err(|e| Error::io(format!("namespace {label}"), e))?;
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
        if fs.f_type as i64 != NSFS_MAGIC {
            return Err(Error::NotNetns(label));
        }
        Ok(Self {
            fd: file.into(),
            label,
        })
    }

    /// Another handle on the same namespace (for undo steps that outlive a borrow).
    pub fn try_clone(&self) -> Result<Self> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::io(format!("namespace {}", self.label), e))?;
        Ok(Self {
            fd,
            label: self.label.clone(),
        })
    }

    /// How errors and logs name this namespace ("host", its name, "pid:N", a path).
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The namespace's inode number (what `ls -iL /proc/PID/ns/net` shows).
    pub fn inode(&self) -> Result<u64> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| Error::io(self.label.clone(), e))?;
        Ok(st.st_ino)
    }

    /// Whether `other` is this very namespace: the same nsfs inode on the same
    /// device (an inode number alone is unique only within its file system).
    pub fn same_as(&self, other: &Netns) -> Result<bool> {
        let a = rustix::fs::fstat(&self.fd).map_err(|e| Error::io(self.label.clone(), e))?;
        let b = rustix::fs::fstat(&other.fd).map_err(|e| Error::io(other.label.clone(), e))?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }

    /// Runs `f` on a new thread that has entered this namespace; the thread dies
    /// with `f`, so the namespace switch cannot leak into any other work.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let fd = self.fd();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    rustix::thread::move_into_link_name_space(fd, Some(LinkNameSpaceType::Network))
                        .map_err(|e| Error::io(format!("entering namespace {}", self.label), e))?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|_| Err(Error::ThreadPanicked(self.label.clone())))
        })
    }

    /// Runs `f` on the calling thread while it is in this namespace, and brings
    /// the thread back before returning (also when `f` unwinds). For short work
    /// that only opens file descriptors (a socket, a file under /proc/sys/net):
    /// those stay bound to the namespace they were opened in. Cheaper than
    /// [`Netns::run`], and immune to the scheduling delay a new thread meets
    /// on a busy machine (measured up to 25 ms under load).
    pub fn within<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        struct Home(File);
        impl Drop for Home {
            fn drop(&mut self) {
                if let Err(e) = rustix::thread::move_into_link_name_space(
                    self.0.as_fd(),
                    Some(LinkNameSpaceType::Network),
                ) {
                    // This thread would go on in a foreign namespace: stop
                    // rather than act on the wrong network.
                    eprintln!("nsnet: cannot return to the original network namespace: {e}");
                    std::process::abort();
                }
            }
        }
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("opening this thread's network namespace", e))?;
        rustix::thread::move_into_link_name_space(self.fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| Error::io(format!("entering namespace {}", self.label), e))?;
        let _home = Home(home);
        Ok(f())
    }

    /// Opens a netlink socket inside this namespace; reuse it for every call there.
    pub fn netlink(&self) -> Result<Netlink> {
        self.within(Netlink::new)?.map_err(|source| Error::Netlink {
            ns: self.label.clone(),
            source,
        })
    }
}

/// `/run/netns/NAME`.
pub fn named_path(name: &NetnsName) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name.as_str())
}

/// True when `path` has a namespace mounted on it (and is not a leftover file).
fn is_netns_mount(path: &Path) -> bool {
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as i64 == NSFS_MAGIC)
}

/// Whether `/run/netns/NAME` is a leftover: a file with no namespace mounted
/// on it, what a process killed while it pinned or deleted that name leaves.
pub fn is_leftover(name: &NetnsName) -> bool {
    let path = named_path(name);
    std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && !is_netns_mount(&path)
}

/// Makes `/run/netns` a shared mount point, as iproute2 does, so namespaces mounted
/// there later also appear in mount namespaces copied from this one (and vice versa).
fn prepare_run_dir() -> Result<()> {
    let dir = Path::new(NETNS_RUN_DIR);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {NETNS_RUN_DIR}"), e))?;
    let shared = MountPropagationFlags::SHARED | MountPropagationFlags::REC;
    match rustix::mount::mount_change(dir, shared) {
        Ok(()) => Ok(()),
        // EINVAL: not a mount point yet. Make it one, then share it.
        Err(rustix::io::Errno::INVAL) => {
            rustix::mount::mount_bind_recursive(dir, dir)
                .map_err(|e| Error::io(format!("bind-mounting {NETNS_RUN_DIR}"), e))?;
            rustix::mount::mount_change(dir, shared)
                .map_err(|e| Error::io(format!("sharing {NETNS_RUN_DIR}"), e))
        }
        Err(e) => Err(Error::io(format!("sharing {NETNS_RUN_DIR}"), e)),
    }
}

/// Creates the empty mount-point file for `name`; fails if the name is taken.
fn create_mount_point(name: &NetnsName) -> Result<PathBuf> {
    prepare_run_dir()?;
    let path = named_path(name);
    match rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(_) => Ok(path),
        Err(rustix::io::Errno::EXIST) => Err(Error::Exists(name.to_string())),
        Err(e) => Err(Error::io(format!("creating {}", path.display()), e)),
    }
}

/// Creates a new, empty network namespace named `name` (`ip netns add`).
pub fn create(name: &NetnsName) -> Result<()> {
    let path = create_mount_point(name)?;
    let mounted = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                // SAFETY: only CLONE_NEWNET is unshared, which changes this thread's
                // network namespace and nothing that other threads share (no
                // CLONE_FILES); the thread ends right after the bind mount.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }
                    .map_err(|e| Error::io(format!("creating namespace {name}"), e))?;
                rustix::mount::mount_bind("/proc/thread-self/ns/net", &path)
                    .map_err(|e| Error::io(format!("mounting namespace {name}"), e))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::ThreadPanicked(name.to_string())))
    });
    if mounted.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    mounted
}

/// Gives an open namespace a name (`ip netns attach`), keeping it alive after
/// every process in it has exited.
pub fn pin(ns: &Netns, name: &NetnsName) -> Result<()> {
    let path = create_mount_point(name)?;
    // The magic link of our own open descriptor is the namespace itself: binding
    // it (not /proc/PID/ns/net again) means a PID reused meanwhile cannot slip in.
    let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&ns.fd));
    rustix::mount::mount_bind(source.as_str(), &path).map_err(|e| {
        let _ = std::fs::remove_file(&path);
        Error::io(format!("mounting namespace {name}"), e)
    })
}

/// Removes a named namespace (`ip netns del`). The namespace itself lives on while
/// a process or an open descriptor still holds it.
pub fn delete(name: &NetnsName) -> Result<()> {
    let path = named_path(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(Error::NotFound(name.to_string()));
    }
    match rustix::mount::unmount(&path, UnmountFlags::DETACH) {
        // EINVAL: a leftover file with nothing mounted on it; remove it anyway.
        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(Error::io(format!("unmounting namespace {name}"), e)),
    }
    std::fs::remove_file(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))
}

/// One entry of `/run/netns`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NetnsEntry {
    pub name: String,
    /// The namespace's inode; `None` for a leftover file with nothing mounted.
    pub inode: Option<u64>,
}

/// Every named namespace, nsnet's and iproute2's alike, sorted by name.
pub fn list() -> Result<Vec<NetnsEntry>> {
    let dir = match std::fs::read_dir(NETNS_RUN_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {NETNS_RUN_DIR}"), e)),
    };
    let mut out = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error::io(format!("reading {NETNS_RUN_DIR}"), e))?;
        let path = entry.path();
        let inode = if is_netns_mount(&path) {
            std::fs::metadata(&path).ok().map(|m| m.ino())
        } else {
            None
        };
        out.push(NetnsEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            inode,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Moves the calling thread into `ns` for good, the way `ip netns exec` does before
/// it runs a command: a private mount namespace with `/sys` remounted so that it
/// shows the namespace's own interfaces, and `/etc/netns/NAME/*` bound over `/etc`.
/// Only for a process about to `exec`: the thread never comes back.
pub fn enter_for_exec(ns: &Netns, name: Option<&NetnsName>) -> Result<()> {
    let label = ns.label.clone();
    rustix::thread::move_into_link_name_space(ns.fd(), Some(LinkNameSpaceType::Network))
        .map_err(|e| Error::io(format!("entering namespace {label}"), e))?;
    // SAFETY: CLONE_NEWNS gives this thread a private copy of the mount table; no
    // file descriptor table is unshared. The caller execs right after.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
        .map_err(|e| Error::io(format!("namespace {label}: new mount namespace"), e))?;
    // Keep our remounts from propagating back to the host.
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(|e| Error::io(format!("namespace {label}: making / a slave mount"), e))?;
    let _ = rustix::mount::unmount("/sys", UnmountFlags::DETACH);
    rustix::mount::mount("sysfs", "/sys", "sysfs", MountFlags::empty(), None)
        .map_err(|e| Error::io(format!("namespace {label}: mounting /sys"), e))?;
    if let Some(name) = name {
        bind_etc_netns(name)?;
    }
    Ok(())
}

/// `/etc/netns/NAME/FILE` replaces `/etc/FILE` (e.g. a resolv.conf per namespace).
fn bind_etc_netns(name: &NetnsName) -> Result<()> {
    let dir = Path::new("/etc/netns").join(name.as_str());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let target = Path::new("/etc").join(entry.file_name());
        rustix::mount::mount_bind(entry.path().as_path(), target.as_path()).map_err(|e| {
            Error::io(
                format!("binding {} on {}", entry.path().display(), target.display()),
                e,
            )
        })?;
    }
    Ok(())
}
