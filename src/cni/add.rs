//! ADD: attach the container's namespace to the config's network.
//!
//! In order: open the namespace (a missing one is code 3, and nothing is
//! touched); run a delegated IPAM plugin's ADD, if the config names one; make
//! sure the nsnet network exists and matches the config (created on the first
//! ADD); connect the endpoint (nsnet's transaction: lease, veth, addresses,
//! routes, firewall elements, published ports); then the CNI-only steps: the
//! routes the config asks for instead of nsnet's default, hairpin. A failure
//! after the connect disconnects the endpoint again, and a delegated plugin's
//! lease is released on any failure.

use super::alloc;
use super::config::{ConfigError, NetConf, Range, RouteConf};
use super::env::{Attachment, EnvError, Invocation};
use super::result::{CniResult, Interface, IpConfig, RouteResult};
use super::{delegate, Error};
use crate::ipam::{self, Pool};
use crate::names::{Mac, Target};
use crate::netlink::{Link, Netlink, Route};
use crate::netns::Netns;
use crate::ops::endpoint::{self, ConnectRequest};
use crate::ops::network::{self, CreateRequest};
use crate::ops::{self, nl_err, Context};
use crate::store::{Endpoint, NetworkSpec, Refused};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::Path;

/// How often an ADD picks another address of a `rangeStart`/`rangeEnd` range
/// after a concurrent ADD claimed the one it picked.
const RANGE_ATTEMPTS: usize = 8;

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
    #[error("no free address left in {0}")]
    RangeExhausted(String),
}

impl AddError {
    pub fn code(&self) -> u32 {
        match self {
            AddError::Mismatch { .. } => 7,
            AddError::AlreadyAttached { .. } => super::ALREADY_ATTACHED,
            AddError::RangeExhausted(_) => super::ADDRESS_UNAVAILABLE,
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
    let ep = connect(ctx, conf, att, netns_path, &spec, delegated)?;
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
    let finished = ns.netlink().map_err(Error::from).and_then(|mut nl| {
        let routes = finish(conf, &spec, &ep, &mut nl, ns.label(), routes.as_deref())?;
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

/// Connects the endpoint; addresses of `rangeStart`/`rangeEnd` ranges are
/// picked here and claimed as static ones, retried when a concurrent ADD won.
fn connect(
    ctx: &Context,
    conf: &NetConf,
    att: &Attachment,
    netns_path: &Path,
    spec: &NetworkSpec,
    delegated: Option<&CniResult>,
) -> Result<Endpoint, Error> {
    let fixed: Vec<IpAddr> = match delegated {
        Some(r) => r.ips.iter().map(|i| i.address.addr()).collect(),
        None => conf.runtime.ips.clone(),
    };
    let mut ranged: Vec<(&Range, &Pool)> = Vec::new();
    if delegated.is_none() {
        for r in &conf.ipam.ranges {
            let v4 = r.subnet.addr().is_ipv4();
            match fixed.iter().find(|ip| ip.is_ipv4() == v4) {
                Some(ip) if !alloc::in_range(r, *ip) => {
                    return Err(ConfigError::field(
                        "ips",
                        format!("{ip} is outside the range {}", describe_range(r)),
                    )
                    .into())
                }
                Some(_) => {}
                None if r.start.is_some() || r.end.is_some() => {
                    if let Some(pool) = spec.pools.iter().find(|p| p.subnet == r.subnet) {
                        ranged.push((r, pool));
                    }
                }
                None => {}
            }
        }
    }
    let mut taken: HashSet<IpAddr> = HashSet::new();
    for _ in 0..RANGE_ATTEMPTS {
        let mut picks = Vec::new();
        if !ranged.is_empty() {
            let mut leased: HashSet<IpAddr> = ctx
                .state()?
                .leases(&spec.name)?
                .into_iter()
                .map(|(ip, _)| ip)
                .collect();
            leased.extend(taken.iter().copied());
            for (range, pool) in &ranged {
                let ip = alloc::candidates(pool, range, &leased)
                    .into_iter()
                    .next()
                    .ok_or_else(|| AddError::RangeExhausted(describe_range(range)))?;
                picks.push(ip);
            }
        }
        let req = ConnectRequest {
            network: conf.name.clone(),
            target: Target::Path(netns_path.to_path_buf()),
            ifname: Some(att.ifname.clone()),
            ips: fixed.iter().chain(&picks).copied().collect(),
            mac: conf.runtime.mac,
            ports: conf.runtime.ports.clone(),
            id: Some(att.endpoint_id()),
        };
        match endpoint::connect_to(ctx, spec, &req) {
            Err(ops::Error::Refused {
                source: Refused::Ipam(ipam::Error::InUse(ip)),
                ..
            }) if picks.contains(&ip) => {
                tracing::debug!("{ip} was claimed meanwhile; picking another");
                taken.insert(ip);
            }
            other => return other.map_err(Error::from),
        }
    }
    let first = ranged
        .first()
        .map_or(spec.name.clone(), |(r, _)| describe_range(r));
    Err(AddError::RangeExhausted(first).into())
}

/// The CNI-only steps after the connect: default routes as the config wants
/// them (nsnet's connect adds one per family unless the namespace has one),
/// the config's other routes, hairpin. Returns the routes for the result.
fn finish(
    conf: &NetConf,
    spec: &NetworkSpec,
    ep: &Endpoint,
    nl: &mut Netlink,
    label: &str,
    routes: Option<&[RouteConf]>,
) -> Result<Vec<RouteResult>, Error> {
    let link = nl
        .link_by_name(&ep.ifname)
        .map_err(nl_err(label, format!("looking up {}", ep.ifname)))?
        .ok_or_else(|| ops::Error::InterfaceNotFound {
            ns: label.into(),
            name: ep.ifname.clone(),
        })?;
    let existing = nl.routes().map_err(nl_err(label, "listing routes"))?;
    let mut done = Vec::new();
    for pool in &spec.pools {
        let v4 = pool.subnet.addr().is_ipv4();
        let dflt: IpNet = if v4 {
            IpNet::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0)
        } else {
            IpNet::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 0)
        }
        .map_err(|e| ops::Error::Invalid(e.to_string()))?;
        let listed = routes.and_then(|rs| rs.iter().find(|r| r.dst == dflt));
        let want = conf.wants_default_route(routes, v4);
        let gw = listed.and_then(|r| r.gw).unwrap_or(pool.gateway);
        let family_default = |r: &&Route| r.is_default() && r.dest.addr().is_ipv4() == v4;
        let ours = existing
            .iter()
            .filter(family_default)
            .find(|r| r.oif == Some(link.index));
        let foreign = existing
            .iter()
            .filter(family_default)
            .any(|r| r.oif != Some(link.index));
        if let Some(r) = ours {
            if !want || r.gateway != Some(gw) {
                nl.delete_route(r).map_err(nl_err(
                    label,
                    format!("deleting the default route via {:?}", r.gateway),
                ))?;
            }
        }
        // A namespace's first network is its way out; another keeps its own.
        if want && !foreign {
            if ours.is_none_or(|r| r.gateway != Some(gw)) {
                let route = Route {
                    dest: dflt,
                    gateway: Some(gw),
                    oif: Some(link.index),
                    prefsrc: None,
                };
                nl.add_route(&route)
                    .map_err(nl_err(label, format!("adding a default route via {gw}")))?;
            }
            done.push(RouteResult {
                dst: dflt,
                gw: listed.map_or(Some(gw), |r| r.gw),
            });
        }
    }
    for r in routes
        .unwrap_or_default()
        .iter()
        .filter(|r| r.dst.prefix_len() != 0)
    {
        let v4 = r.dst.addr().is_ipv4();
        let Some(pool) = spec.pools.iter().find(|p| p.subnet.addr().is_ipv4() == v4) else {
            return Err(ConfigError::field(
                "ipam.routes",
                format!("{}: the network has no subnet of its family", r.dst),
            )
            .into());
        };
        // The subnet's own route comes with the address.
        if !(r.dst == pool.subnet && r.gw.is_none()) {
            let gw = r.gw.unwrap_or(pool.gateway);
            let route = Route {
                dest: r.dst,
                gateway: Some(gw),
                oif: Some(link.index),
                prefsrc: None,
            };
            nl.add_route(&route)
                .map_err(nl_err(label, format!("adding route {} via {gw}", r.dst)))?;
        }
        done.push(RouteResult {
            dst: r.dst,
            gw: r.gw,
        });
    }
    if conf.hairpin && ep.ports.is_empty() {
        let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
        let veth = host_link(&mut host, &ep.host_ifname)?;
        host.set_bridge_port(veth.index, false, true)
            .map_err(nl_err(
                "host",
                format!("setting hairpin on {}", ep.host_ifname),
            ))?;
    }
    Ok(done)
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
