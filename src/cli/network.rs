use super::output::{print_json, ListArgs, Listing};
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
        /// The network's name (not host, none, default or bridge: `run --network`
        /// reads those as modes).
        #[arg(value_parser = new_network_name)]
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
        /// MTU of the bridge and of every veth on it; default: the kernel's (1500).
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
        /// Add no rules to other firewalls (iptables FORWARD or Docker's
        /// DOCKER-USER, nftables forward chains, firewalld zones) that would
        /// drop this network's forwarded traffic: you manage the forward path.
        #[arg(long)]
        no_foreign_rules: bool,
    },
    /// List networks.
    Ls {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show networks and their endpoints as JSON (an object for one name, an
    /// array for several).
    Inspect {
        /// The networks' names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<NetworkName>,
        /// Accepted like on every listing; inspect always prints JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove networks (each refused while endpoints are attached, unless --force).
    Rm {
        /// The networks' names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<NetworkName>,
        /// Disconnect the endpoints still attached, then remove the network.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove every network that has no endpoint; prints the names removed.
    Prune,
    /// Attach a namespace (NAME, pid:PID or a namespace file path) to a network.
    Connect {
        /// The network's name.
        name: NetworkName,
        /// The namespace: its name, pid:PID, or the path of a namespace file.
        target: Target,
        /// Interface name inside the target; default: the first free ethN.
        #[arg(long)]
        ifname: Option<IfName>,
        /// Static address (one per family); default: the next free one.
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// MAC address of the interface; default: derived from its address.
        #[arg(long)]
        mac: Option<Mac>,
        /// Publish a port: [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|/udp|/sctp]
        #[arg(short = 'p', long = "publish", value_name = "SPEC")]
        publish: Vec<PortSpec>,
    },
    /// Detach a namespace from a network.
    Disconnect {
        /// The network's name.
        name: NetworkName,
        /// The namespace, as it was connected (name, pid:PID or path).
        target: Target,
        /// Which interface, when the namespace has several on the network.
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
            no_foreign_rules,
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
                no_foreign_rules: *no_foreign_rules,
            };
            let spec =
                network::create(ctx, &req).with_context(|| format!("network create {name}"))?;
            println!("{}", subnets(&spec));
        }
        NetworkCommand::Ls { list } => {
            let nets = network::list(ctx).context("network ls")?;
            let mut out = Listing::new(&["NAME", "BRIDGE", "SUBNETS", "ENDPOINTS"]);
            for spec in &nets {
                let eps =
                    nsnet::ops::view::endpoints(ctx, Some(&spec.name)).context("network ls")?;
                out.push(
                    vec![
                        spec.name.clone(),
                        spec.bridge.clone(),
                        subnets(spec),
                        eps.len().to_string(),
                    ],
                    describe(spec, &eps),
                );
            }
            out.print(list)?;
        }
        NetworkCommand::Inspect { names, .. } => {
            let mut docs = Vec::new();
            let mut failed = Vec::new();
            for name in names {
                match inspect(ctx, name) {
                    Ok(doc) => docs.push(doc),
                    Err(e) => failed.push(e),
                }
            }
            match (names.len(), docs.pop()) {
                (1, Some(doc)) => print_json(&doc)?,
                (_, Some(doc)) => {
                    docs.push(doc);
                    print_json(&docs)?
                }
                (_, None) => {}
            }
            return finish(failed);
        }
        NetworkCommand::Rm { names, force } => {
            let failed = names
                .iter()
                .filter_map(|name| {
                    network::remove(ctx, name, *force)
                        .with_context(|| format!("network rm {name}"))
                        .err()
                })
                .collect();
            return finish(failed);
        }
        NetworkCommand::Prune => {
            let mut failed = Vec::new();
            for spec in network::list(ctx).context("network prune")? {
                let eps =
                    nsnet::ops::view::endpoints(ctx, Some(&spec.name)).context("network prune")?;
                if !eps.is_empty() {
                    continue;
                }
                let name: NetworkName = spec.name.parse().map_err(anyhow::Error::msg)?;
                // Not forced: a network that got an endpoint meanwhile stays.
                match network::remove(ctx, &name, false) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        failed.push(anyhow::Error::new(e).context(format!("network prune: {name}")))
                    }
                }
            }
            return finish(failed);
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
                bounds: Vec::new(),
                routes: Default::default(),
                hairpin: false,
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

/// `network create`'s name: a network name that `run --network` can reach.
fn new_network_name(s: &str) -> std::result::Result<NetworkName, String> {
    if let Some(mode) = ["host", "none", "default", "bridge"]
        .iter()
        .find(|m| s.eq_ignore_ascii_case(m))
    {
        return Err(format!(
            "{s:?} is reserved: `run --network {mode}` means a network mode, not a network"
        ));
    }
    s.parse()
        .map_err(|e: nsnet::names::NameError| e.to_string())
}

/// One network's `inspect` document.
fn inspect(ctx: &Context, name: &NetworkName) -> Result<Value> {
    let context = || format!("network inspect {name}");
    let (spec, endpoints) = network::inspect(ctx, name).with_context(context)?;
    let mut out = describe(&spec, &endpoints);
    let leases = nsnet::ops::view::leases(ctx, &spec.name).with_context(context)?;
    out["leases"] = leases
        .iter()
        .map(|(ip, id)| {
            let owner = endpoints
                .iter()
                .find(|e| &e.id == id)
                .map_or_else(|| id.clone(), |e| e.owner());
            json!({"address": ip, "endpoint": id, "owner": owner})
        })
        .collect();
    // What nsnet added to other firewalls for it, as it would be typed.
    out["foreign_rules"] = network::foreign_rules(ctx, name)
        .with_context(context)?
        .iter()
        .map(|r| json!(r.to_string()))
        .collect();
    Ok(out)
}

/// The end of a command over several names: every failure was printed but the
/// last, which is returned (so the exit code says that something failed).
fn finish(mut failed: Vec<anyhow::Error>) -> Result<ExitCode> {
    let last = failed.pop();
    for e in failed {
        eprintln!("nsnet: {}", super::error_line(&e));
    }
    match last {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
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
            "foreign_rules": spec.foreign_rules,
        },
        "endpoints": endpoints.iter().map(|e| json!({
            "id": e.id,
            "owner": e.owner(),
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
        "host_address": host_address(&p.host),
        "host_port": p.host_port,
        "protocol": p.proto,
        "container_port": p.container_port,
        "container_addresses": p.container_v4.map(std::net::IpAddr::from).into_iter()
            .chain(p.container_v6.map(std::net::IpAddr::from)).collect::<Vec<_>>(),
    })
}

/// A host address as JSON: `*` (every address), or the address without
/// brackets (`0.0.0.0`, `::`, `fd00::1`).
pub fn host_address(h: &nsnet::ports::HostAddr) -> String {
    use nsnet::ports::HostAddr;
    match h {
        HostAddr::Any => "*".into(),
        HostAddr::AnyV4 => "0.0.0.0".into(),
        HostAddr::AnyV6 => "::".into(),
        HostAddr::Ip(ip) => ip.to_string(),
    }
}
