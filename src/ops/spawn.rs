//! Running a command inside namespaces: `nsnet run`, `nsnet pod exec`.
//!
//! A throwaway thread enters the target network, IPC, UTS and PID namespaces
//! (`setns` on a PID namespace only places the thread's future children in it)
//! and forks the command from there. Before `exec` the child gets a private
//! mount namespace with `/sys` (and, in a joined PID namespace, `/proc`) mounted
//! afresh, so `ip link`, `ls /sys/class/net` and `ps` show the namespaces it is
//! in, as with `ip netns exec`.
//!
//! In the foreground nsnet blocks SIGINT, SIGTERM, SIGHUP and SIGQUIT and
//! forwards them to the command (whose mask is cleared before `exec`), so that
//! Ctrl-C stops the command while nsnet lives on to clean up after it.

use super::{Error, Result};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The namespace files to join (bind mounts or `/proc/PID/ns/*`); `None` keeps
/// the caller's.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    pub pid: Option<PathBuf>,
}

/// How to run the command.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub argv: Vec<OsString>,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
    /// In the background, detached from the terminal, output discarded.
    pub detach: bool,
}

fn open_ns(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::Io {
        what: format!("opening namespace {}", path.display()),
        source: e,
    })
}

/// The signals nsnet forwards to a foreground command.
fn forwarded() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Starts the command in the joined namespaces.
pub fn spawn(joined: &Joined, spec: &CommandSpec) -> Result<Spawned> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| Error::Invalid("no command given".into()))?;
    let files: Vec<(File, LinkNameSpaceType)> = [
        (&joined.net, LinkNameSpaceType::Network),
        (&joined.ipc, LinkNameSpaceType::InterProcessCommunication),
        (&joined.uts, LinkNameSpaceType::HostNameAndNISDomainName),
        (&joined.pid, LinkNameSpaceType::ProcessID),
    ]
    .into_iter()
    .filter_map(|(p, t)| p.as_ref().map(|p| (p, t)))
    .map(|(p, t)| open_ns(p).map(|f| (f, t)))
    .collect::<Result<_>>()?;
    let new_sysfs = joined.net.is_some();
    let new_proc = joined.pid.is_some();
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.workdir {
        // Checked here, where the error can name it: the child's failing
        // chdir would be reported as the command failing to start.
        let is_dir = std::fs::metadata(dir).and_then(|m| {
            m.is_dir()
                .then_some(())
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOTDIR))
        });
        if let Err(source) = is_dir {
            return Err(Error::BadWorkdir {
                dir: dir.clone(),
                source,
            });
        }
        cmd.current_dir(dir);
    }
    if spec.detach {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    let detach = spec.detach;
    // A detached command is forked once more inside the joined PID namespace
    // and its parent exits there: so it is re-parented to that namespace's init
    // (a pod's pause process), which reaps it, and never to nsnet's own parent,
    // whose unreaped zombies would keep the namespace from ever being torn down.
    // The middle process sends the command's PID (as seen in the namespace)
    // through this pipe.
    let mut pid_pipe = [-1i32; 2];
    if detach {
        // SAFETY: pipe2 fills the two-element array it is given.
        if unsafe { libc::pipe2(pid_pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Error::Io {
                what: "creating a pipe".into(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    let pid_write = pid_pipe[1];
    // SAFETY: the hook runs in the forked child before exec and only makes
    // system calls with literal C strings and stack data (no allocation, no
    // locks), which is what is allowed between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let empty: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if detach {
                match libc::fork() {
                    -1 => return Err(std::io::Error::last_os_error()),
                    0 => {}
                    pid => {
                        let bytes = pid.to_ne_bytes();
                        libc::write(pid_write, bytes.as_ptr().cast(), bytes.len());
                        libc::_exit(0);
                    }
                }
                let _ = rustix::process::setsid();
            }
            if new_sysfs || new_proc {
                rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)?;
                rustix::mount::mount_change(
                    c"/",
                    MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
                )?;
                if new_sysfs {
                    let _ = rustix::mount::unmount(c"/sys", UnmountFlags::DETACH);
                    rustix::mount::mount(c"sysfs", c"/sys", c"sysfs", MountFlags::empty(), None)?;
                }
                if new_proc {
                    rustix::mount::mount(c"proc", c"/proc", c"proc", MountFlags::empty(), None)?;
                }
            }
            Ok(())
        });
    }
    let program_name = program.to_string_lossy().into_owned();
    let child = std::thread::scope(|scope| {
        scope
            .spawn(move || -> Result<Child> {
                for (file, kind) in &files {
                    rustix::thread::move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(file),
                        Some(*kind),
                    )
                    .map_err(|e| Error::Io {
                        what: "entering the namespaces".into(),
                        source: e.into(),
                    })?;
                }
                cmd.spawn().map_err(|e| Error::CannotRun {
                    program: program_name,
                    source: e,
                })
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("the spawning thread panicked".into())))
    });
    if !detach {
        return child.map(Spawned::Child);
    }
    // SAFETY: closes our copy of the write end, so the read below ends once
    // the middle process has written (or died).
    unsafe { libc::close(pid_pipe[1]) };
    let mut reader = {
        // SAFETY: the read end is ours alone from here on.
        unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(pid_pipe[0]) }
    };
    let mut middle = child?;
    let _ = middle.wait();
    let mut bytes = [0u8; 4];
    std::io::Read::read_exact(&mut reader, &mut bytes).map_err(|e| Error::Io {
        what: "reading the detached command's PID".into(),
        source: e,
    })?;
    let inner = i32::from_ne_bytes(bytes) as u32;
    Ok(Spawned::Detached(host_pid(joined, inner).unwrap_or(inner)))
}

/// A started command: a child to wait for, or the PID of a detached one.
#[derive(Debug)]
pub enum Spawned {
    Child(Child),
    Detached(u32),
}

impl Spawned {
    /// The foreground child (an error for a detached command).
    pub fn child(self) -> Result<Child> {
        match self {
            Spawned::Child(c) => Ok(c),
            Spawned::Detached(_) => Err(Error::Invalid("the command runs detached".into())),
        }
    }
}

/// The PID, as seen here, of the process that is `inner` in the joined PID
/// namespace (itself when no PID namespace was joined).
fn host_pid(joined: &Joined, inner: u32) -> Option<u32> {
    let Some(pidns) = &joined.pid else {
        return Some(inner);
    };
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata(pidns).ok()?.ino();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        if std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?.ino() != ns {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
        (nspid.split_whitespace().last()?.parse::<u32>().ok()? == inner).then_some(pid)
    })
}

/// Blocks the forwarded signals in this thread (call before any thread that
/// should inherit the block is started, i.e. before [`spawn`]).
pub fn block_forwarded_signals() {
    let set = forwarded();
    // SAFETY: changes only this thread's signal mask, with an initialised set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for a foreground command, forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT to
/// it; returns its exit code (128 + signal when a signal ended it, as shells do).
pub fn wait_foreground(mut child: Child) -> Result<u8> {
    let pid = child.id() as libc::pid_t;
    std::thread::spawn(move || {
        let set = forwarded();
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: waits on an initialised set; kill() only sends a signal
            // to our own child's PID.
            unsafe {
                if libc::sigwait(&set, &mut sig) == 0 {
                    libc::kill(pid, sig);
                }
            }
        }
    });
    let status = child.wait().map_err(|e| Error::Io {
        what: "waiting for the command".into(),
        source: e,
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => 1,
    })
}
