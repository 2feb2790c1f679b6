use anyhow::{Context, Result};
use clap::Subcommand;
use ipnet::IpNet;
use nsnet::names::{IfName, NsSide};
use nsnet::ops::{self, link::LinkAddRequest};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Join two namespaces (names or `host`) with a veth pair.
    Add {
        a: NsSide,
        b: NsSide,
        /// Name of the end in A (default: veth-B).
        #[arg(long)]
        name: Option<IfName>,
        /// Name of the end in B (default: veth-A).
        #[arg(long)]
        peer_name: Option<IfName>,
        /// Address of the end in A, e.g. 10.0.0.1/24.
        #[arg(long)]
        addr: Option<IpNet>,
        /// Address of the end in B.
        #[arg(long)]
        peer_addr: Option<IpNet>,
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// Delete a veth pair by one of its ends.
    Del { a: NsSide, name: IfName },
}

pub fn run(cmd: &LinkCommand) -> Result<ExitCode> {
    match cmd {
        LinkCommand::Add {
            a,
            b,
            name,
            peer_name,
            addr,
            peer_addr,
            mtu,
        } => {
            let req = LinkAddRequest {
                a: a.clone(),
                b: b.clone(),
                name: name.clone(),
                peer_name: peer_name.clone(),
                addr: *addr,
                peer_addr: *peer_addr,
                mtu: *mtu,
            };
            let added = ops::link::add(&req).with_context(|| format!("link add {a} {b}"))?;
            println!(
                "{} ({}) <-> {} ({})",
                added.name, added.ns, added.peer_name, added.peer_ns
            );
        }
        LinkCommand::Del { a, name } => {
            ops::link::delete(a, name).with_context(|| format!("link del {a} {name}"))?
        }
    }
    Ok(ExitCode::SUCCESS)
}
