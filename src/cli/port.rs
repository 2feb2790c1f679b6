use anyhow::{Context as _, Result};
use clap::Subcommand;
use nsnet::names::NetworkName;
use nsnet::ops::Context;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// List published ports with their endpoints.
    Ls {
        network: Option<NetworkName>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, cmd: &PortCommand) -> Result<ExitCode> {
    match cmd {
        PortCommand::Ls { network, json } => {
            if let Some(n) = network {
                nsnet::ops::network::get(ctx, n).context("port ls")?;
            }
            let ports = nsnet::ops::view::ports(ctx, network.as_ref().map(|n| n.as_str()))
                .context("port ls")?;
            if *json {
                let out: Vec<serde_json::Value> = ports
                    .iter()
                    .map(|(ep, p)| {
                        let mut v = super::network::port_json(p);
                        v["network"] = ep.network.clone().into();
                        v["namespace"] = ep.target.clone().into();
                        v["interface"] = ep.ifname.clone().into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{:<16} {:<20} PORT", "NETWORK", "NAMESPACE");
                for (ep, p) in &ports {
                    println!("{:<16} {:<20} {p}", ep.network, ep.target);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
