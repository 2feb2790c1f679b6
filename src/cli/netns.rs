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
    Add { name: NetnsName },
    /// Delete a named namespace.
    Del { name: NetnsName },
    /// List named namespaces, including those made by `ip netns add`.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a named namespace; its exit status is passed through.
    Exec {
        name: NetnsName,
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<OsString>,
    },
    /// Name the network namespace of a running process, keeping it alive after the
    /// process exits (a bind mount, not a symlink).
    Pin { pid: u32, name: NetnsName },
}

pub fn run(cmd: &NetnsCommand) -> Result<ExitCode> {
    match cmd {
        NetnsCommand::Add { name } => {
            ops::netns::add(name).with_context(|| format!("netns add {name}"))?
        }
        NetnsCommand::Del { name } => {
            ops::netns::delete(name).with_context(|| format!("netns del {name}"))?
        }
        NetnsCommand::Pin { pid, name } => {
            ops::netns::pin(*pid, name).with_context(|| format!("netns pin {pid} {name}"))?
        }
        NetnsCommand::Ls { json } => {
            let list = ops::netns::list().context("netns ls")?;
            if *json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for entry in list {
                    println!("{}", entry.name);
                }
            }
        }
        NetnsCommand::Exec { name, command } => return exec(name, command),
    }
    Ok(ExitCode::SUCCESS)
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
