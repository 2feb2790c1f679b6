use anyhow::{Context as _, Result};
use clap::Subcommand;
use nsnet::names::NetworkName;
use nsnet::ops::Context;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// List published ports with their endpoints.
    Ls {
        /// Only this network's ports.
        network: Option<NetworkName>,
        #[command(flatten)]
        list: super::output::ListArgs,
    },
}

pub fn run(ctx: &Context, cmd: &PortCommand) -> Result<ExitCode> {
    match cmd {
        PortCommand::Ls { network, list } => {
            if let Some(n) = network {
                nsnet::ops::network::get(ctx, n).context("port ls")?;
            }
            let ports = nsnet::ops::view::ports(ctx, network.as_ref().map(|n| n.as_str()))
                .context("port ls")?;
            let mut out =
                super::output::Listing::new(&["PUBLISHED", "NETWORK", "OWNER", "INTERFACE"]);
            for (ep, p) in &ports {
                let mut v = super::network::port_json(p);
                v["spec"] = p.to_string().into();
                v["network"] = ep.network.clone().into();
                v["owner"] = ep.owner().into();
                v["namespace"] = ep.target.clone().into();
                v["interface"] = ep.ifname.clone().into();
                out.push(
                    vec![
                        p.to_string(),
                        ep.network.clone(),
                        ep.owner(),
                        ep.ifname.clone(),
                    ],
                    v,
                );
            }
            out.print(list)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
