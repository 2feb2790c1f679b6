use anyhow::{Context, Result};
use clap::Subcommand;
use nsnet::names::NetnsName;
use nsnet::ops;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum NetnsCommand {
    /// Create a named network namespace (visible to `ip netns`), with `lo` up.
    Add {
        /// The namespace's name (`/run/netns/NAME`).
        name: NetnsName,
    },
    /// Delete a named namespace; its endpoints on nsnet networks are
    /// disconnected first (addresses and published ports released), a pod's
    /// namespace is refused (use `pod rm`).
    #[command(visible_aliases = ["delete", "rm"])]
    Del {
        /// The namespace's name.
        name: NetnsName,
    },
    /// List named namespaces, including those made by `ip netns add`.
    Ls {
        #[command(flatten)]
        list: super::output::ListArgs,
    },
    /// Run a command inside a named namespace; its exit status is passed through.
    Exec {
        /// The namespace's name.
        name: NetnsName,
        /// The command and its arguments (options before it are nsnet's; put
        /// `--` first to be safe).
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Name the network namespace of a running process, keeping it alive after the
    /// process exits (a bind mount, not a symlink).
    Pin {
        /// The process whose namespace to name.
        #[arg(value_parser = parse_pid)]
        pid: u32,
        /// The name to give it (`/run/netns/NAME`).
        name: NetnsName,
    },
}

pub fn run(ctx: &ops::Context, cmd: &NetnsCommand) -> Result<ExitCode> {
    match cmd {
        NetnsCommand::Add { name } => {
            ops::netns::add(name).with_context(|| format!("netns add {name}"))?
        }
        NetnsCommand::Del { name } => {
            let notes =
                ops::netns::delete(ctx, name).with_context(|| format!("netns del {name}"))?;
            for note in notes {
                eprintln!("nsnet: {note}");
            }
        }
        NetnsCommand::Pin { pid, name } => {
            ops::netns::pin(*pid, name).with_context(|| format!("netns pin {pid} {name}"))?
        }
        NetnsCommand::Ls { list } => {
            let entries = ops::netns::list().context("netns ls")?;
            let mut out = super::output::Listing::new(&["NAME", "INODE"]);
            for e in &entries {
                let inode = e.inode.map_or_else(|| "-".into(), |i| i.to_string());
                out.push(
                    vec![e.name.clone(), inode],
                    serde_json::json!({"name": e.name, "inode": e.inode}),
                );
            }
            out.print(list)?;
        }
        NetnsCommand::Exec { name, command } => return exec(name, command),
    }
    Ok(ExitCode::SUCCESS)
}

/// A process ID: digits, not 0.
fn parse_pid(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("0 is not a PID".into()),
        Ok(pid) => Ok(pid),
        Err(_) => Err(format!("{s} is not a PID")),
    }
}

/// Enters the namespace and replaces this process with the command, so its exit
/// status, signals and terminal are the command's own.
fn exec(name: &NetnsName, command: &[OsString]) -> Result<ExitCode> {
    let context = || format!("netns exec {name}");
    nsnet::privilege::require_admin().with_context(context)?;
    let ns = nsnet::netns::Netns::by_name(name).with_context(context)?;
    nsnet::netns::enter_for_exec(&ns, Some(name)).with_context(context)?;
    let (program, args) = command.split_first().context("no command given")?;
    let err = std::process::Command::new(program).args(args).exec();
    let code = super::cannot_run_code(&err);
    let err = nsnet::ops::Error::CannotRun {
        program: program.to_string_lossy().into_owned(),
        source: err,
    };
    eprintln!("nsnet: {}: {err}", context());
    Ok(ExitCode::from(code))
}
