use super::output::{print_json, ListArgs, Listing};
use anyhow::{Context as _, Result};
use clap::Subcommand;
use nsnet::names::{NetnsName, NetworkName};
use nsnet::ops::pod::{self, CreateRequest};
use nsnet::ops::spawn::{self, CommandSpec};
use nsnet::ops::Context;
use nsnet::ports::PortSpec;
use nsnet::store::PodRecord;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PodCommand {
    /// Create a pod: a pause process holding net, IPC, UTS and PID namespaces.
    Create {
        /// The pod's name (also the name of its network namespace).
        name: NetnsName,
        /// Networks to join (default: the network `nsnet`, made on first use).
        #[arg(long)]
        network: Vec<NetworkName>,
        /// Publish a port of the pod (on its first network).
        #[arg(short = 'p', long = "publish", value_name = "SPEC")]
        publish: Vec<PortSpec>,
        /// Hostname inside the pod (default: its name).
        #[arg(long)]
        hostname: Option<String>,
        /// Members do not join the pod's PID namespace.
        #[arg(long)]
        no_pid_share: bool,
    },
    /// Run a command inside a pod; its status (and stdio) pass through.
    Exec {
        /// The pod's name.
        name: NetnsName,
        /// Working directory of the command (default: nsnet's own).
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// K=V, repeatable.
        #[arg(long, value_parser = parse_env)]
        env: Vec<(OsString, OsString)>,
        /// Run in the background and print its PID.
        #[arg(long)]
        detach: bool,
        /// The command and its arguments (options before it are nsnet's; put
        /// `--` first to be safe).
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// List pods.
    Ls {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show a pod as JSON.
    Inspect {
        /// The pod's name.
        name: NetnsName,
        /// Accepted like on every listing; inspect always prints JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a pod (refused while members run, unless --force).
    Rm {
        /// The pod's name.
        name: NetnsName,
        /// Kill the members still running, then remove the pod.
        #[arg(short, long)]
        force: bool,
    },
}

fn parse_env(s: &str) -> std::result::Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("{s:?} is not K=V")),
    }
}

pub fn run(ctx: &Context, cmd: &PodCommand) -> Result<ExitCode> {
    match cmd {
        PodCommand::Create {
            name,
            network,
            publish,
            hostname,
            no_pid_share,
        } => {
            let req = CreateRequest {
                name: name.clone(),
                networks: network.clone(),
                ports: publish.clone(),
                hostname: hostname.clone(),
                pid_share: !no_pid_share,
            };
            let pod = pod::create(ctx, &req).with_context(|| format!("pod create {name}"))?;
            let info = describe(ctx, &pod)?;
            println!("{} {}", pod.name, pod.pid);
            for ep in info["endpoints"].as_array().into_iter().flatten() {
                let addrs: Vec<&str> = ep["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{} {}",
                    ep["network"].as_str().unwrap_or_default(),
                    addrs.join(" ")
                );
                for p in ep["ports"].as_array().into_iter().flatten() {
                    println!("published {}", p["spec"].as_str().unwrap_or_default());
                }
            }
        }
        PodCommand::Exec {
            name,
            workdir,
            env,
            detach,
            command,
        } => {
            let spec = CommandSpec {
                argv: command.clone(),
                workdir: workdir.clone(),
                env: env.clone(),
                detach: *detach,
            };
            let context = || format!("pod exec {name}");
            if !detach {
                spawn::block_forwarded_signals();
            }
            match pod::exec(ctx, name.as_str(), &spec).with_context(context)? {
                spawn::Spawned::Detached(pid) => {
                    println!("{pid}");
                    return Ok(ExitCode::SUCCESS);
                }
                spawn::Spawned::Child(child) => {
                    return Ok(ExitCode::from(
                        spawn::wait_foreground(child).with_context(context)?,
                    ));
                }
            }
        }
        PodCommand::Ls { list } => {
            let pods = pod::list(ctx).context("pod ls")?;
            let mut out = Listing::new(&["NAME", "STATUS", "PID", "NETWORKS"]);
            for p in &pods {
                let status = if pod::alive(p) { "running" } else { "dead" };
                out.push(
                    vec![
                        p.name.clone(),
                        status.into(),
                        p.pid.to_string(),
                        p.networks.join(","),
                    ],
                    describe(ctx, p).context("pod ls")?,
                );
            }
            out.print(list)?;
        }
        PodCommand::Inspect { name, .. } => {
            let pod =
                pod::get(ctx, name.as_str()).with_context(|| format!("pod inspect {name}"))?;
            print_json(&describe(ctx, &pod)?)?;
        }
        PodCommand::Rm { name, force } => {
            pod::remove(ctx, name.as_str(), *force).with_context(|| format!("pod rm {name}"))?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A pod as JSON: record, status, members, endpoints.
fn describe(ctx: &Context, pod: &PodRecord) -> Result<Value> {
    let endpoints: Vec<Value> = match ctx.state_read()? {
        Some(state) => pod::endpoints(&state, pod)?,
        None => Vec::new(),
    }
    .into_iter()
    .map(|e| {
        json!({
            "network": e.network,
            "interface": e.ifname,
            "addresses": e.addresses,
            "mac": e.mac,
            "ports": e.ports.iter().map(|p| {
                let mut v = super::network::port_json(p);
                v["spec"] = p.to_string().into();
                v
            }).collect::<Vec<_>>(),
        })
    })
    .collect();
    Ok(json!({
        "name": pod.name,
        "status": if pod::alive(pod) { "running" } else { "dead" },
        "pid": pod.pid,
        "hostname": pod.hostname,
        "pid_share": pod.pid_share,
        "networks": pod.networks,
        "netns_inode": pod.net_inode,
        "members": pod::members(ctx, pod),
        "endpoints": endpoints,
    }))
}
