//! `nsnet cluster`: this node's pod network and its peers (see `ops::cluster`).

use anyhow::{Context as _, Result};
use clap::Subcommand;
use ipnet::Ipv4Net;
use nsnet::names::NetworkName;
use nsnet::ops::cluster::{self, InitRequest};
use nsnet::ops::Context;
use nsnet::store::cluster::Backend;
use std::io::Read;
use std::net::Ipv4Addr;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackendArg {
    /// A route per peer via its node address (nodes on one L2 segment).
    HostGw,
    /// A VXLAN overlay (flannel's wire format), nodes anywhere routable.
    Vxlan,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Make NETWORK this node's pod network in a cluster (again: change its settings).
    Init {
        /// The network (CLI- or CNI-defined) whose IPv4 subnet is this node's pod CIDR.
        network: NetworkName,
        /// This node's address on the underlay (an address of this host).
        #[arg(long)]
        node_ip: Ipv4Addr,
        /// The whole cluster's pod address space; NETWORK's subnet lies inside it.
        #[arg(long)]
        cluster_cidr: Ipv4Net,
        /// How peers' pod subnets are reached.
        #[arg(long, value_enum, default_value = "host-gw")]
        backend: BackendArg,
        /// VXLAN network identifier (vxlan; default 1, as flannel).
        #[arg(long)]
        vni: Option<u32>,
        /// VXLAN UDP port (vxlan; default 8472, as flannel).
        #[arg(long)]
        vxlan_port: Option<u16>,
    },
    /// Set the other nodes: FILE (or - for stdin) holds a JSON list of
    /// {"name", "nodeIP", "podCIDR"} or a NodeList (kubectl get nodes -o json).
    Peers {
        /// The clustered network.
        network: NetworkName,
        /// The peers file, or - for standard input.
        file: String,
    },
    /// Show the cluster of NETWORK: settings, peers, routes (JSON).
    Show {
        /// The clustered network.
        network: NetworkName,
        /// JSON (the only format; accepted for symmetry with other listings).
        #[arg(long)]
        json: bool,
    },
    /// Take NETWORK out of its cluster: routes, VXLAN device, entries, elements.
    Leave {
        /// The clustered network.
        network: NetworkName,
    },
}

pub fn run(ctx: &Context, cmd: &ClusterCommand) -> Result<ExitCode> {
    match cmd {
        ClusterCommand::Init {
            network,
            node_ip,
            cluster_cidr,
            backend,
            vni,
            vxlan_port,
        } => {
            let req = InitRequest {
                network: network.clone(),
                node_ip: *node_ip,
                cluster_cidr: cluster_cidr.trunc(),
                backend: match backend {
                    BackendArg::HostGw => Backend::HostGw,
                    BackendArg::Vxlan => Backend::Vxlan,
                },
                vni: *vni,
                port: *vxlan_port,
            };
            let (spec, applied) =
                cluster::init(ctx, &req).with_context(|| format!("cluster init {network}"))?;
            println!(
                "network {network}: {} cluster {} via {}, {} peer(s), {} change(s)",
                spec.backend,
                spec.cluster_cidr,
                spec.node_ip,
                spec.peers.len(),
                applied.added.len() + applied.removed.len()
            );
        }
        ClusterCommand::Peers { network, file } => {
            let mut bytes = Vec::new();
            if file == "-" {
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .context("cluster peers: reading stdin")?;
            } else {
                bytes = std::fs::read(file)
                    .with_context(|| format!("cluster peers {network}: reading {file}"))?;
            }
            let peers =
                cluster::parse_peers(&bytes).with_context(|| format!("cluster peers {network}"))?;
            let applied = cluster::set_peers(ctx, network, peers)
                .with_context(|| format!("cluster peers {network}"))?;
            for a in &applied.added {
                println!("added {a}");
            }
            for r in &applied.removed {
                println!("removed {r}");
            }
            if applied.is_empty() {
                println!("no change");
            }
        }
        ClusterCommand::Show { network, .. } => {
            let v =
                cluster::show(ctx, network).with_context(|| format!("cluster show {network}"))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ClusterCommand::Leave { network } => {
            cluster::leave(ctx, network).with_context(|| format!("cluster leave {network}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
