//! The pause process: PID 1 of a pod's PID namespace, holder of its network, IPC
//! and UTS namespaces. It is nsnet itself, re-executed as `nsnet __pause` and
//! dispatched before anything else initialises (no argument parsing, no
//! logging, no allocation in the loop): one binary to install, and a resident
//! set that stays small because the pages of the rest of nsnet are never touched.
//!
//! It blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP and waits for them with
//! `sigwait`: SIGCHLD reaps every exited child (members whose parent died are
//! re-parented to it), SIGTERM and SIGINT end it with status 0. Blocked signals
//! reach PID 1 even without handlers (the kernel drops only unblocked,
//! default-handled signals to a namespace's init).

/// The argument that selects pause mode.
pub const ARG: &str = "__pause";

/// Runs the pause loop; never returns.
pub fn run() -> ! {
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        eprintln!(
            "nsnet pause: warning: not PID 1 of a PID namespace; orphans will not be reaped here"
        );
    }
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the
    // calls only read and write that local set and this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            match sig {
                libc::SIGTERM | libc::SIGINT => libc::_exit(0),
                libc::SIGCHLD => {
                    let mut status = 0;
                    while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
                }
                _ => {}
            }
        }
    }
}

/// nsnet-pause, built from `pause/pause.rs` by build.rs (empty where that
/// freestanding build is not supported).
static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nsnet-pause"));

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting the pause process: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("preparing the pause binary: {0}")]
    Memfd(#[source] std::io::Error),
    #[error("a thread starting the pause process panicked")]
    Panicked,
}

/// Starts a pause process as PID 1 of new PID, network, IPC and UTS namespaces
/// (hostname `hostname`), detached from nsnet (its own session, no stdio), and
/// returns its PID as seen from here.
pub fn spawn(hostname: &str) -> Result<u32, Error> {
    use rustix::thread::UnshareFlags;
    use std::os::unix::process::CommandExt;
    // The freestanding binary runs from an anonymous in-memory file: nothing to
    // install or find on disk. Where it is not built, nsnet itself pauses.
    let memfd = if EMBEDDED.is_empty() {
        None
    } else {
        let fd = rustix::fs::memfd_create("nsnet-pause", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| Error::Memfd(e.into()))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, EMBEDDED).map_err(Error::Memfd)?;
        Some(file)
    };
    let program = match &memfd {
        Some(f) => format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(f)),
        None => std::env::current_exe()
            .map_err(Error::Spawn)?
            .to_string_lossy()
            .into_owned(),
    };
    let mut cmd = std::process::Command::new(&program);
    cmd.arg0("nsnet-pause");
    if memfd.is_none() {
        cmd.arg(ARG);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let host = hostname.as_bytes().to_vec();
    // SAFETY: the hook runs in the forked child before exec; it only makes
    // system calls on data prepared before the fork (no allocation).
    unsafe {
        cmd.pre_exec(move || {
            rustix::thread::unshare_unsafe(
                UnshareFlags::NEWNET | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS,
            )?;
            rustix::system::sethostname(&host)?;
            rustix::process::setsid()?;
            Ok(())
        });
    }
    // A PID namespace applies to the children of the thread that unshares it:
    // do that on a throwaway thread, which forks the pause and dies.
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<u32, Error> {
                // SAFETY: CLONE_NEWPID only sets the namespace of this thread's
                // future children; nothing else of the process changes.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWPID) }
                    .map_err(|e| Error::Spawn(e.into()))?;
                let child = cmd.spawn().map_err(Error::Spawn)?;
                Ok(child.id())
            })
            .join()
            .unwrap_or(Err(Error::Panicked))
    })
}
