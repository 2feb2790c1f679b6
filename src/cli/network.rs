use anyhow::{Context as _, Result};
use clap::Subcommand;
use ipnet::IpNet;
use nsnet::names::{IfName, Mac, NetworkName, Target};
use nsnet::ops::endpoint::{self, ConnectRequest};
use nsnet::ops::network::{self, CreateRequest};
use nsnet::ops::Context;
use nsnet::ports::PortSpec;
use nsnet::store::{Endpoint, NetworkSpec};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Define a bridge network (the bridge is made on first connect).
    Create {
        name: NetworkName,
        /// Up to one IPv4 and one IPv6 subnet; default: a free /24 of 10.201.0.0/16.
        #[arg(long)]
        subnet: Vec<IpNet>,
        /// Gateway of a subnet; default: its first host address.
        #[arg(long)]
        gateway: Vec<IpAddr>,
        /// Hand out addresses only from this part of the subnet.
        #[arg(long)]
        ip_range: Option<IpNet>,
        /// Bridge name; default: nsbr-NAME (cut and hashed when too long).
        #[arg(long)]
        bridge: Option<IfName>,
        /// No way out: endpoints reach only each other and the gateway address.
        #[arg(long)]
        internal: bool,
        /// Route without NAT: traffic leaves with the endpoints' own addresses.
        #[arg(long)]
        no_masquerade: bool,
        /// Endpoints cannot reach each other, only the gateway and beyond.
        #[arg(long)]
        isolate: bool,
        #[arg(long)]
        mtu: Option<u32>,
        /// Accept an IPv4 link-local subnet (169.254.0.0/16), where the host's own
        /// link-local traffic and cloud metadata (169.254.169.254) live.
        #[arg(long)]
        allow_link_local: bool,
        /// What reaches the endpoints from outside the host: only published
        /// ports (published), or also traffic routed to their addresses (routed).
        #[arg(long, default_value = "published", value_parser = ["published", "routed"])]
        inbound: String,
    },
    /// List networks.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Show a network and its endpoints as JSON.
    Inspect {
        name: NetworkName,
        /// Accepted like on every listing; inspect always prints JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a network (refused while endpoints are attached, unless --force).
    Rm {
        name: NetworkName,
        #[arg(long)]
        force: bool,
    },
    /// Attach a namespace (NAME, pid:PID or a namespace file path) to a network.
    Connect {
        name: NetworkName,
        target: Target,
        /// Interface name inside the target; default: the first free ethN.
        #[arg(long)]
        ifname: Option<IfName>,
        /// Static address (one per family); default: the next free one.
        #[arg(long)]
        ip: Vec<IpAddr>,
        #[arg(long)]
        mac: Option<Mac>,
        /// Publish a port: [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|/udp|/sctp]
        #[arg(short = 'p', long = "publish", value_name = "SPEC")]
        publish: Vec<PortSpec>,
    },
    /// Detach a namespace from a network.
    Disconnect {
        name: NetworkName,
        target: Target,
        #[arg(long)]
        ifname: Option<IfName>,
    },
}

pub fn run(ctx: &Context, cmd: &NetworkCommand) -> Result<ExitCode> {
    match cmd {
        NetworkCommand::Create {
            name,
            subnet,
            gateway,
            ip_range,
            bridge,
            internal,
            no_masquerade,
            isolate,
            mtu,
            allow_link_local,
            inbound,
        } => {
            let req = CreateRequest {
                name: Some(name.clone()),
                subnets: subnet.clone(),
                gateways: gateway.clone(),
                ip_range: *ip_range,
                bridge: bridge.clone(),
                internal: *internal,
                no_masquerade: *no_masquerade,
                isolate: *isolate,
                mtu: *mtu,
                allow_link_local: *allow_link_local,
                inbound: inbound.parse().map_err(anyhow::Error::msg)?,
            };
            let spec =
                network::create(ctx, &req).with_context(|| format!("network create {name}"))?;
            println!("{}", subnets(&spec));
        }
        NetworkCommand::Ls { json } => {
            let nets = network::list(ctx).context("network ls")?;
            if *json {
                let mut out = Vec::new();
                for spec in &nets {
                    let eps =
                        nsnet::ops::view::endpoints(ctx, Some(&spec.name)).context("network ls")?;
                    out.push(describe(spec, &eps));
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{:<20} {:<16} SUBNETS", "NAME", "BRIDGE");
                for spec in &nets {
                    println!("{:<20} {:<16} {}", spec.name, spec.bridge, subnets(spec));
                }
            }
        }
        NetworkCommand::Inspect { name, .. } => {
            let (spec, endpoints) =
                network::inspect(ctx, name).with_context(|| format!("network inspect {name}"))?;
            let mut out = describe(&spec, &endpoints);
            let leases = nsnet::ops::view::leases(ctx, &spec.name)
                .with_context(|| format!("network inspect {name}"))?;
            out["leases"] = leases
                .iter()
                .map(|(ip, ep)| json!({"address": ip, "endpoint": ep}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCommand::Rm { name, force } => {
            network::remove(ctx, name, *force).with_context(|| format!("network rm {name}"))?
        }
        NetworkCommand::Connect {
            name,
            target,
            ifname,
            ip,
            mac,
            publish,
        } => {
            let req = ConnectRequest {
                network: name.clone(),
                target: target.clone(),
                ifname: ifname.clone(),
                ips: ip.clone(),
                mac: *mac,
                ports: publish.clone(),
                id: None,
            };
            let ep = endpoint::connect(ctx, &req)
                .with_context(|| format!("network connect {name} {target}"))?;
            let addrs: Vec<String> = ep.addresses.iter().map(|a| a.to_string()).collect();
            println!("{} {} {}", ep.ifname, ep.mac, addrs.join(" "));
            for port in &ep.ports {
                println!("published {port}");
            }
        }
        NetworkCommand::Disconnect {
            name,
            target,
            ifname,
        } => endpoint::disconnect(ctx, name, target, ifname.as_ref())
            .with_context(|| format!("network disconnect {name} {target}"))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn subnets(spec: &NetworkSpec) -> String {
    spec.pools
        .iter()
        .map(|p| p.subnet.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The JSON of `network inspect` (and of each entry of `network ls --json`).
fn describe(spec: &NetworkSpec, endpoints: &[Endpoint]) -> Value {
    json!({
        "name": spec.name,
        "bridge": spec.bridge,
        "subnets": spec.pools.iter().map(|p| json!({
            "subnet": p.subnet,
            "gateway": p.gateway,
            "ip_range": p.range,
        })).collect::<Vec<_>>(),
        "gateways": spec.pools.iter().map(|p| p.gateway).collect::<Vec<_>>(),
        "options": {
            "internal": spec.internal,
            "masquerade": spec.masquerade,
            "isolate": spec.isolate,
            "mtu": spec.mtu,
            "inbound": spec.inbound.to_string(),
        },
        "endpoints": endpoints.iter().map(|e| json!({
            "id": e.id,
            "namespace": e.target,
            "netns_inode": e.netns_inode,
            "interface": e.ifname,
            "host_interface": e.host_ifname,
            "addresses": e.addresses,
            "mac": e.mac,
            "ports": e.ports.iter().map(port_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// One published port as JSON (`inspect`, `port ls --json`).
pub fn port_json(p: &nsnet::ports::Published) -> Value {
    json!({
        "host_address": p.host.to_string(),
        "host_port": p.host_port,
        "protocol": p.proto,
        "container_port": p.container_port,
        "container_addresses": p.container_v4.map(std::net::IpAddr::from).into_iter()
            .chain(p.container_v6.map(std::net::IpAddr::from)).collect::<Vec<_>>(),
    })
}
