//! ADD: attach the container's namespace to the config's network.
//!
//! In order: open the namespace (a missing one is code 3, and nothing is
//! touched); run a delegated IPAM plugin's ADD, if the config names one; make
//! sure the nsnet network exists and matches the config (created on the first
//! ADD); connect the endpoint: one operation (`ops::endpoint::connect_to`) does
//! every kernel step, with what the config asks beyond nsnet's defaults in its
//! request (static addresses, `rangeStart`/`rangeEnd` bounds allocated in the
//! lease transaction, the routes, hairpin). A failure after the connect (reading
//! the result back) disconnects the endpoint again, and a delegated plugin's
//! lease is released on any failure.

use super::config::{ConfigError, NetConf, Range, RouteConf};
use super::env::{Attachment, EnvError, Invocation};
use super::result::{CniResult, Interface, IpConfig, RouteResult};
use super::{delegate, Error};
use crate::ipam::Bounds;
use crate::names::{Mac, Target};
use crate::netlink::{Link, Netlink};
use crate::netns::Netns;
use crate::ops::endpoint::{self, ConnectRequest};
use crate::ops::network::{self, CreateRequest};
use crate::ops::routes::{self, DefaultRoute, RoutePolicy};
use crate::ops::{self, nl_err, Context};
use crate::store::{Endpoint, NetworkSpec};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AddError {
    #[error(
        "network {name} exists with {what} {have}, but the config asks for {want} \
         (remove it with `nsnet network rm {name}`, or give the config another name)"
    )]
    Mismatch {
        name: String,
        what: &'static str,
        have: String,
        want: String,
    },
    #[error("container {attachment} is already attached to network {network}")]
    AlreadyAttached { attachment: String, network: String },
}

impl AddError {
    pub fn code(&self) -> u32 {
        match self {
            AddError::Mismatch { .. } => 7,
            AddError::AlreadyAttached { .. } => super::ALREADY_ATTACHED,
        }
    }
}

/// Serves ADD; returns the result to print.
pub fn add(ctx: &Context, inv: &Invocation, conf: &NetConf) -> Result<CniResult, Error> {
    let (att, netns_path) = match (&inv.attachment, &inv.netns) {
        (Some(a), Some(n)) => (a, n.as_path()),
        _ => {
            return Err(
                EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]).into(),
            )
        }
    };
    let ns = Netns::by_path(netns_path)?;
    endpoint::refuse_bridge_namespace(&ns, &netns_path.display().to_string(), conf.name.as_str())?;
    let delegated = match &conf.ipam.delegate {
        Some(plugin) => Some(delegate::add(plugin, &inv.path, &conf.raw)?),
        None => None,
    };
    let outcome = attach(ctx, conf, att, &ns, netns_path, delegated.as_ref());
    if let (Err(_), Some(plugin)) = (&outcome, &conf.ipam.delegate) {
        if let Err(e) = delegate::run(plugin, super::env::Command::Del, &inv.path, &conf.raw) {
            tracing::warn!("releasing the lease of IPAM plugin {plugin}: {e}");
        }
    }
    outcome
}

fn attach(
    ctx: &Context,
    conf: &NetConf,
    att: &Attachment,
    ns: &Netns,
    netns_path: &Path,
    delegated: Option<&CniResult>,
) -> Result<CniResult, Error> {
    let spec = ensure_network(ctx, conf, delegated)?;
    refuse_duplicate(ctx, &spec, att)?;
    let routes: Option<Vec<RouteConf>> = match delegated {
        Some(r) if !r.routes.is_empty() => Some(
            r.routes
                .iter()
                .map(|r| RouteConf {
                    dst: r.dst.trunc(),
                    gw: r.gw,
                })
                .collect(),
        ),
        Some(_) => None,
        None => conf.ipam.routes.clone(),
    };
    let (ep, routes) = connect(
        ctx,
        conf,
        att,
        ns,
        netns_path,
        &spec,
        delegated,
        routes.as_deref(),
    )?;
    let finished = ns.netlink().map_err(Error::from).and_then(|mut nl| {
        build_result(
            conf,
            &spec,
            &ep,
            &mut nl,
            ns.label(),
            netns_path,
            routes,
            delegated,
        )
    });
    if finished.is_err() {
        if let Err(e) = endpoint::disconnect_id(ctx, &conf.name, &att.endpoint_id()) {
            tracing::warn!("rolling back {att}: {e}");
        }
    }
    finished
}

/// The subnets (with gateways, if given) the config defines: its ranges, else
/// what a delegated plugin leased; empty when nsnet should pick a subnet.
fn desired_subnets(conf: &NetConf, delegated: Option<&CniResult>) -> Vec<(IpNet, Option<IpAddr>)> {
    if !conf.ipam.ranges.is_empty() {
        return conf
            .ipam
            .ranges
            .iter()
            .map(|r| (r.subnet, r.gateway))
            .collect();
    }
    let mut out: Vec<(IpNet, Option<IpAddr>)> = Vec::new();
    for ip in delegated.map(|r| r.ips.as_slice()).unwrap_or_default() {
        let v4 = ip.address.addr().is_ipv4();
        if !out.iter().any(|(s, _)| s.addr().is_ipv4() == v4) {
            out.push((ip.address.trunc(), ip.gateway));
        }
    }
    out
}

/// The network the config names, created from it on first use; an existing one
/// must agree with the config.
fn ensure_network(
    ctx: &Context,
    conf: &NetConf,
    delegated: Option<&CniResult>,
) -> Result<NetworkSpec, Error> {
    let desired = desired_subnets(conf, delegated);
    match network::get(ctx, &conf.name) {
        Ok(spec) => {
            verify(conf, &desired, &spec)?;
            if spec.inbound != conf.inbound {
                // The config of each ADD decides (a network defined before
                // the option existed follows its config too).
                return Ok(network::set_inbound(ctx, &conf.name, conf.inbound)?);
            }
            return Ok(spec);
        }
        Err(ops::Error::UnknownNetwork(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let req = CreateRequest {
        name: Some(conf.name.clone()),
        subnets: desired.iter().map(|(s, _)| *s).collect(),
        gateways: desired.iter().filter_map(|(_, g)| *g).collect(),
        ip_range: None,
        bridge: conf.bridge.clone(),
        internal: !conf.is_gateway,
        no_masquerade: !conf.ip_masq,
        isolate: conf.isolate,
        mtu: conf.mtu,
        allow_link_local: conf.allow_link_local,
        inbound: conf.inbound,
        no_foreign_rules: !conf.foreign_firewall,
    };
    match network::create(ctx, &req) {
        Ok(spec) => {
            tracing::info!("created network {} from the CNI config", spec.name);
            Ok(spec)
        }
        // A concurrent first ADD created it meanwhile.
        Err(e) => match network::get(ctx, &conf.name) {
            Ok(spec) => {
                verify(conf, &desired, &spec)?;
                Ok(spec)
            }
            // A config that can never make a network: name the network.
            Err(_) => Err(match e {
                ops::Error::Invalid(m) => {
                    ops::Error::Invalid(format!("network {}: {m}", conf.name))
                }
                e => e,
            }
            .into()),
        },
    }
}

fn verify(
    conf: &NetConf,
    desired: &[(IpNet, Option<IpAddr>)],
    spec: &NetworkSpec,
) -> Result<(), AddError> {
    let mismatch = |what: &'static str, have: String, want: String| AddError::Mismatch {
        name: spec.name.clone(),
        what,
        have,
        want,
    };
    if !desired.is_empty() {
        let have: BTreeSet<String> = spec.pools.iter().map(|p| p.subnet.to_string()).collect();
        let want: BTreeSet<String> = desired.iter().map(|(s, _)| s.to_string()).collect();
        if have != want {
            let join = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>().join(",");
            return Err(mismatch("subnet", join(have), join(want)));
        }
        for (subnet, gw) in desired {
            let pool = spec.pools.iter().find(|p| p.subnet == *subnet);
            if let (Some(gw), Some(pool)) = (gw, pool) {
                if pool.gateway != *gw {
                    return Err(mismatch(
                        "gateway",
                        pool.gateway.to_string(),
                        gw.to_string(),
                    ));
                }
            }
        }
    }
    if let Some(b) = &conf.bridge {
        if spec.bridge != b.as_str() {
            return Err(mismatch("bridge", spec.bridge.clone(), b.to_string()));
        }
    }
    let flag = |b: bool| b.to_string();
    if spec.internal == conf.is_gateway {
        return Err(mismatch(
            "isGateway",
            flag(!spec.internal),
            flag(conf.is_gateway),
        ));
    }
    if !spec.internal && spec.masquerade != conf.ip_masq {
        return Err(mismatch(
            "ipMasq",
            flag(spec.masquerade),
            flag(conf.ip_masq),
        ));
    }
    if spec.isolate != conf.isolate {
        return Err(mismatch(
            "portIsolation",
            flag(spec.isolate),
            flag(conf.isolate),
        ));
    }
    if spec.foreign_rules != conf.foreign_firewall {
        return Err(mismatch(
            "foreignFirewall",
            flag(spec.foreign_rules),
            flag(conf.foreign_firewall),
        ));
    }
    if let Some(mtu) = conf.mtu {
        if spec.mtu != Some(mtu) {
            let have = spec.mtu.map_or("the default".into(), |m| m.to_string());
            return Err(mismatch("mtu", have, mtu.to_string()));
        }
    }
    Ok(())
}

/// ADD twice without DEL is a runtime bug; say so instead of "already connected".
fn refuse_duplicate(ctx: &Context, spec: &NetworkSpec, att: &Attachment) -> Result<(), Error> {
    let full = format!("{}/{}", spec.name, att.endpoint_id());
    let Some(ep) = ctx.state()?.endpoint(&full)? else {
        return Ok(());
    };
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    if host
        .link_by_name(&ep.host_ifname)
        .map_err(nl_err("host", "looking up a veth"))?
        .is_some()
    {
        return Err(AddError::AlreadyAttached {
            attachment: att.to_string(),
            network: spec.name.clone(),
        }
        .into());
    }
    Ok(())
}

fn describe_range(r: &Range) -> String {
    match (r.start, r.end) {
        (None, None) => r.subnet.to_string(),
        (s, e) => format!(
            "{} ({}-{})",
            r.subnet,
            s.map_or("start".into(), |a| a.to_string()),
            e.map_or("end".into(), |a| a.to_string())
        ),
    }
}

/// Connects the endpoint, with what the config asks beyond nsnet's defaults:
/// static addresses, `rangeStart`/`rangeEnd` bounds (allocated in the lease
/// transaction), the routes, hairpin. Returns it and the routes for the result.
#[allow(clippy::too_many_arguments)]
fn connect(
    ctx: &Context,
    conf: &NetConf,
    att: &Attachment,
    ns: &Netns,
    netns_path: &Path,
    spec: &NetworkSpec,
    delegated: Option<&CniResult>,
    routes: Option<&[RouteConf]>,
) -> Result<(Endpoint, Vec<RouteResult>), Error> {
    let fixed: Vec<IpAddr> = match delegated {
        Some(r) => r.ips.iter().map(|i| i.address.addr()).collect(),
        None => conf.runtime.ips.clone(),
    };
    let mut bounds = Vec::new();
    if delegated.is_none() {
        for r in &conf.ipam.ranges {
            let v4 = r.subnet.addr().is_ipv4();
            let within = Bounds {
                start: r.start,
                end: r.end,
            };
            match fixed.iter().find(|ip| ip.is_ipv4() == v4) {
                Some(ip) if !(r.subnet.contains(ip) && within.contains(*ip)) => {
                    return Err(ConfigError::field(
                        "ips",
                        format!("{ip} is outside the range {}", describe_range(r)),
                    )
                    .into())
                }
                Some(_) => {}
                None if r.start.is_some() || r.end.is_some() => bounds.push((r.subnet, within)),
                None => {}
            }
        }
    }
    // Which families' default route the namespace has before the connect: the
    // connect keeps it (a namespace's first network is its way out).
    let had: Vec<bool> = ns
        .netlink()?
        .routes()
        .map_err(nl_err(ns.label(), "listing routes"))?
        .iter()
        .filter(|r| r.is_default())
        .map(|r| r.dest.addr().is_ipv4())
        .collect();
    let mut policy = RoutePolicy::default();
    let mut reported = Vec::new();
    for pool in &spec.pools {
        let v4 = pool.subnet.addr().is_ipv4();
        let listed = routes.and_then(|rs| {
            rs.iter()
                .find(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == v4)
        });
        let default = if !conf.wants_default_route(routes, v4) {
            DefaultRoute::Off
        } else {
            let gw = listed.and_then(|r| r.gw).unwrap_or(pool.gateway);
            if !had.contains(&v4) {
                reported.push(RouteResult {
                    dst: routes::default_dest(v4),
                    gw: listed.map_or(Some(gw), |r| r.gw),
                });
            }
            DefaultRoute::Via(gw)
        };
        if v4 {
            policy.default_v4 = default;
        } else {
            policy.default_v6 = default;
        }
    }
    for r in routes
        .unwrap_or_default()
        .iter()
        .filter(|r| r.dst.prefix_len() != 0)
    {
        let v4 = r.dst.addr().is_ipv4();
        if !spec.pools.iter().any(|p| p.subnet.addr().is_ipv4() == v4) {
            return Err(ConfigError::field(
                "ipam.routes",
                format!("{}: the network has no subnet of its family", r.dst),
            )
            .into());
        }
        policy.extra.push((r.dst, r.gw));
        reported.push(RouteResult {
            dst: r.dst,
            gw: r.gw,
        });
    }
    let req = ConnectRequest {
        network: conf.name.clone(),
        target: Target::Path(netns_path.to_path_buf()),
        ifname: Some(att.ifname.clone()),
        ips: fixed,
        mac: conf.runtime.mac,
        ports: conf.runtime.ports.clone(),
        id: Some(att.endpoint_id()),
        bounds,
        routes: policy,
        hairpin: conf.hairpin,
    };
    let ep = endpoint::connect_to(ctx, spec, &req)?;
    Ok((ep, reported))
}

fn host_link(host: &mut Netlink, name: &str) -> Result<Link, Error> {
    Ok(host
        .link_by_name(name)
        .map_err(nl_err("host", format!("looking up {name}")))?
        .ok_or_else(|| ops::Error::InterfaceNotFound {
            ns: "host".into(),
            name: name.to_owned(),
        })?)
}

fn interface(link: &Link, sandbox: Option<&Path>) -> Interface {
    Interface {
        name: link.name.clone(),
        mac: link.mac.map(|m| Mac(m).to_string()),
        sandbox: sandbox.map(|p| p.display().to_string()),
        mtu: link.mtu,
    }
}

/// The result: the bridge, the host veth and the container interface (the
/// reference bridge plugin's order), the addresses on the last, routes, DNS.
#[allow(clippy::too_many_arguments)]
fn build_result(
    conf: &NetConf,
    spec: &NetworkSpec,
    ep: &Endpoint,
    nl: &mut Netlink,
    label: &str,
    netns_path: &Path,
    routes: Vec<RouteResult>,
    delegated: Option<&CniResult>,
) -> Result<CniResult, Error> {
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let bridge = host_link(&mut host, &spec.bridge)?;
    let veth = host_link(&mut host, &ep.host_ifname)?;
    let peer = nl
        .link_by_name(&ep.ifname)
        .map_err(nl_err(label, format!("looking up {}", ep.ifname)))?
        .ok_or_else(|| ops::Error::InterfaceNotFound {
            ns: label.into(),
            name: ep.ifname.clone(),
        })?;
    let ips = ep
        .addresses
        .iter()
        .map(|a| IpConfig {
            address: *a,
            gateway: spec
                .pools
                .iter()
                .find(|p| p.subnet.contains(&a.addr()))
                .map(|p| p.gateway),
            interface: Some(2),
        })
        .collect();
    let dns = conf
        .dns
        .clone()
        .or_else(|| delegated.map(|r| r.dns.clone()).filter(|d| !d.is_empty()))
        .unwrap_or_default();
    Ok(CniResult {
        interfaces: vec![
            interface(&bridge, None),
            interface(&veth, None),
            interface(&peer, Some(netns_path)),
        ],
        ips,
        routes,
        dns,
    })
}
