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
        /// A namespace name, or `host`.
        a: NsSide,
        /// The other namespace name, or `host`.
        b: NsSide,
        /// Name of the end in A (default: veth-B).
        #[arg(long)]
        name: Option<IfName>,
        /// Name of the end in B (default: veth-A).
        #[arg(long)]
        peer_name: Option<IfName>,
        /// Address of the end in A, e.g. 10.0.0.1/24; without a length it is a
        /// host address (/32 or /128), as with `ip addr add`.
        #[arg(long, value_parser = parse_addr)]
        addr: Option<IpNet>,
        /// Address of the end in B (the same forms).
        #[arg(long, value_parser = parse_addr)]
        peer_addr: Option<IpNet>,
        /// MTU of both ends; default: the kernel's (1500).
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// Delete a veth pair by one of its ends.
    Del {
        /// The namespace of the end named (a name, or `host`).
        a: NsSide,
        /// The interface name of that end.
        name: IfName,
    },
}

/// `ADDR/LEN`, or `ADDR` alone for a host address, as `ip addr add` reads it.
fn parse_addr(s: &str) -> std::result::Result<IpNet, String> {
    if s.contains('/') {
        return s
            .parse()
            .map_err(|_| format!("{s} is not an address with a prefix length"));
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s} is not an address"))
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
