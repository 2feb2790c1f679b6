use anyhow::{Context as _, Result};
use clap::Args;
use nsnet::names::NetnsName;
use nsnet::ops::run::{self, Mode, RunRequest};
use nsnet::ops::spawn::CommandSpec;
use nsnet::ops::Context;
use nsnet::ports::PortSpec;
use std::ffi::OsString;
use std::process::ExitCode;

/// Run a command in a network mode; what the run made is released when it exits.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A network name (default: `nsnet`), host, none, container:NAME or pod:NAME.
    #[arg(long, value_name = "MODE")]
    network: Option<Mode>,
    /// Publish a port of the run (bridge networks only), as `network connect -p`:
    /// [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|/udp|/sctp]; the
    /// host port picked for a spec without one is printed on stderr.
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    publish: Vec<PortSpec>,
    /// Name this run's namespace, for `--network container:NAME`.
    #[arg(long)]
    name: Option<NetnsName>,
    /// The command and its arguments (options before it are nsnet's; put `--`
    /// first to be safe).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

pub fn run(ctx: &Context, args: &RunArgs) -> Result<ExitCode> {
    let req = RunRequest {
        mode: args.network.clone(),
        ports: args.publish.clone(),
        name: args.name.clone(),
        command: CommandSpec {
            argv: args.command.clone(),
            ..Default::default()
        },
        connected: Some(announce),
    };
    let code = run::run(ctx, &req).context("run")?;
    Ok(ExitCode::from(code))
}

/// The ports a run published, on stderr (stdout is the command's): with
/// `-p 80` this is where the user learns the host port nsnet picked.
fn announce(ep: &nsnet::store::Endpoint) {
    for port in &ep.ports {
        eprintln!("nsnet: run: published {port}");
    }
}
