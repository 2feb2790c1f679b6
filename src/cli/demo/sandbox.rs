//! The demo's throwaway sandbox, made in-process the way the tests make theirs
//! (DESIGN.md, "the sandbox rule"), in three stages of the same binary, told
//! apart by [`STAGE_ENV`]:
//!
//! 1. the caller forks a child that unshares network, mount and PID namespaces
//!    and re-executes `nsnet demo` as stage `sandbox`;
//! 2. `sandbox` (new network and mount namespaces, old PID namespace) makes `/`
//!    private, mounts a fresh tmpfs on `/run` and sysfs on `/sys`, and starts
//!    stage `init`, the first process of the new PID namespace;
//! 3. `init` (PID 1) mounts its own `/proc`, starts stage `steps` (the
//!    walk-through) and reaps every process re-parented to it until the
//!    walk-through ends; then it exits with its status, and the kernel kills
//!    whatever is left in the PID namespace.
//!
//! When the last process is gone, the namespaces go too, and with them every
//! namespace, link, address, route, nftables rule and mount the demo made.
//! Each stage dies with its parent (`PR_SET_PDEATHSIG`), so an interrupted demo
//! cannot leave a sandbox behind either.

use anyhow::{Context as _, Result};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::UnshareFlags;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

/// Which stage a re-executed `nsnet demo` is.
pub const STAGE_ENV: &str = "NSNET_DEMO_STAGE";
/// nsnet's stores inside the sandbox: on its private `/run`.
const STATE_DIR: &str = "/run/nsnet";
const CONFIG_DIR: &str = "/run/nsnet-config";

/// This binary, re-executed as `nsnet demo` in stage `stage`, dying with us.
fn stage(stage: &str) -> Result<Command> {
    let exe = std::env::current_exe().context("finding nsnet's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("demo").env(STAGE_ENV, stage);
    // SAFETY: the hook only makes one system call, which is allowed between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            Ok(())
        });
    }
    Ok(cmd)
}

/// The exit code of a finished stage (128 + N for a signal, as shells do).
fn code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Stage 1, in the caller's namespaces: a child in new network, mount and PID
/// namespaces runs the rest; its status is the demo's.
pub fn enter() -> Result<ExitCode> {
    nsnet::privilege::require_admin().context("demo")?;
    let mut cmd = stage("sandbox")?;
    // SAFETY: unshare is a single system call, allowed between fork and exec;
    // the forked child is single-threaded, as CLONE_NEWNS requires.
    unsafe {
        cmd.pre_exec(|| {
            rustix::thread::unshare_unsafe(
                UnshareFlags::NEWNET | UnshareFlags::NEWNS | UnshareFlags::NEWPID,
            )?;
            Ok(())
        });
    }
    let status = cmd
        .status()
        .context("demo: starting the sandbox (new network, mount and PID namespaces)")?;
    Ok(code_of(status))
}

fn mount(source: &str, target: &str, fstype: &str, data: Option<&str>) -> Result<()> {
    let flags = MountFlags::NOSUID | MountFlags::NODEV;
    let data = data.map(|d| std::ffi::CString::new(d).unwrap_or_default());
    rustix::mount::mount(source, target, fstype, flags, data.as_deref())
        .with_context(|| format!("demo sandbox: mounting {fstype} on {target}"))
}

/// Stage 2: private mounts, then PID 1.
pub fn setup() -> Result<ExitCode> {
    // Nothing mounted from here on may propagate to the host.
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .context("demo sandbox: making / private")?;
    mount("nsnet-demo", "/run", "tmpfs", Some("mode=0755"))?;
    // sysfs shows the interfaces of the namespace that mounts it.
    mount("sysfs", "/sys", "sysfs", None)?;
    let mut nl = nsnet::netlink::Netlink::new().context("demo sandbox: netlink")?;
    nsnet::ops::netns::lo_up(&mut nl, "host").context("demo sandbox")?;
    let status = stage("init")?
        .env("NSNET_STATE_DIR", STATE_DIR)
        .env("NSNET_CONFIG_DIR", CONFIG_DIR)
        .status()
        .context("demo sandbox: starting its PID 1")?;
    Ok(code_of(status))
}

/// Stage 3: PID 1 of the sandbox. Runs the walk-through and reaps orphans.
pub fn init() -> Result<ExitCode> {
    // procfs shows the PID namespace of the process that mounts it.
    mount("proc", "/proc", "proc", None)?;
    nsnet::safefs::create_private_dir_all(Path::new(STATE_DIR))
        .context("demo sandbox: creating /run/nsnet")?;
    let steps = stage("steps")?
        .spawn()
        .context("demo sandbox: starting the walk-through")?;
    let steps_pid = Pid::from_child(&steps);
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid == steps_pid => {
                let code = status
                    .exit_status()
                    .or_else(|| status.terminating_signal().map(|s| 128 + s))
                    .unwrap_or(1);
                return Ok(ExitCode::from(code.clamp(0, 255) as u8));
            }
            // Some orphan: reaped, nothing more to do.
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("demo sandbox: waiting for the walk-through"),
        }
    }
}
