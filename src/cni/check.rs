//! CHECK: is the attachment still what ADD made?
//!
//! Compares prevResult and nsnet's record with the kernel: the container
//! interface (a veth, up, its MAC), its addresses, the routes prevResult lists
//! (later plugins may add routes; ours must still be there), the host veth on
//! its bridge, the bridge with its gateway addresses, the leases, the published
//! ports against `runtimeConfig.portMappings`, and the firewall elements of the
//! endpoint and its network. Every difference is reported, not only the first.
//! A delegated IPAM plugin is asked to CHECK too.

use super::config::NetConf;
use super::env::{Command, EnvError, Invocation};
use super::{delegate, Error};
use crate::firewall::Firewall;
use crate::netlink::{LinkKind, Netlink};
use crate::netns::Netns;
use crate::ops::{self, nl_err, Context};
use crate::store::{Endpoint, NetworkSpec};
use ipnet::IpNet;
use std::collections::BTreeSet;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("CHECK needs prevResult (the result of the ADD)")]
    NoPrevResult,
    #[error("attachment {attachment} to network {network} has drifted: {}", problems.join("; "))]
    Drift {
        attachment: String,
        network: String,
        problems: Vec<String>,
    },
}

impl CheckError {
    pub fn code(&self) -> u32 {
        match self {
            CheckError::NoPrevResult => 7,
            CheckError::Drift { .. } => super::DRIFT,
        }
    }
}

/// Serves CHECK: nothing on success, every drift found as one error.
pub fn check(ctx: &Context, inv: &Invocation, conf: &NetConf) -> Result<(), Error> {
    let (att, netns_path) = match (&inv.attachment, &inv.netns) {
        (Some(a), Some(n)) => (a, n.as_path()),
        _ => {
            return Err(
                EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]).into(),
            )
        }
    };
    let prev = conf.prev_result.as_ref().ok_or(CheckError::NoPrevResult)?;
    let ns = Netns::by_path(netns_path)?;
    let mut problems = Vec::new();
    let drift = |problems: Vec<String>| CheckError::Drift {
        attachment: att.to_string(),
        network: conf.name.to_string(),
        problems,
    };
    let spec = match ops::network::get(ctx, &conf.name) {
        Ok(spec) => spec,
        Err(ops::Error::UnknownNetwork(n)) => {
            return Err(drift(vec![format!("network {n} does not exist")]).into())
        }
        Err(e) => return Err(e.into()),
    };
    let state = ctx.state()?;
    let full = format!("{}/{}", spec.name, att.endpoint_id());
    let Some(ep) = state
        .endpoints(Some(&spec.name))?
        .into_iter()
        .find(|e| e.id == full)
    else {
        return Err(drift(vec!["nsnet has no record of it".into()]).into());
    };

    let mut nl = ns.netlink()?;
    check_container(
        &mut nl,
        ns.label(),
        prev,
        &ep,
        att.ifname.as_str(),
        &mut problems,
    )?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    check_host(&mut host, &spec, &ep, &mut problems)?;
    let leases = state.leases(&spec.name)?;
    for a in &ep.addresses {
        if !leases
            .iter()
            .any(|(ip, owner)| *ip == a.addr() && *owner == ep.id)
        {
            problems.push(format!("address {} is not leased to it", a.addr()));
        }
    }
    check_ports(conf, &ep, &mut problems);
    check_firewall(&spec, &ep, &mut problems)?;
    if let Some(plugin) = &conf.ipam.delegate {
        delegate::run(plugin, Command::Check, &inv.path, &conf.raw)?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(drift(problems).into())
    }
}

fn same_mac(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The container side: interface, MAC, addresses, routes.
fn check_container(
    nl: &mut Netlink,
    label: &str,
    prev: &super::result::CniResult,
    ep: &Endpoint,
    ifname: &str,
    problems: &mut Vec<String>,
) -> Result<(), Error> {
    let Some(link) = nl
        .link_by_name(ifname)
        .map_err(nl_err(label, format!("looking up {ifname}")))?
    else {
        problems.push(format!("interface {ifname} is missing from the container"));
        return Ok(());
    };
    if link.kind != LinkKind::Veth {
        problems.push(format!("{ifname} is not a veth"));
    }
    if !link.up {
        problems.push(format!("{ifname} is down"));
    }
    let mac = link
        .mac
        .map(|m| crate::names::Mac(m).to_string())
        .unwrap_or_default();
    if !same_mac(&mac, &ep.mac) {
        problems.push(format!("{ifname} has MAC {mac}, nsnet recorded {}", ep.mac));
    }
    let sandbox = prev.sandbox_interface(ifname);
    match sandbox {
        None => problems.push(format!("prevResult lists no sandbox interface {ifname}")),
        Some((_, i)) => {
            if let Some(m) = &i.mac {
                if !same_mac(m, &mac) {
                    problems.push(format!("{ifname} has MAC {mac}, prevResult says {m}"));
                }
            }
        }
    }
    let present: Vec<IpNet> = nl
        .addresses(Some(link.index))
        .map_err(nl_err(label, format!("listing addresses of {ifname}")))?
        .into_iter()
        .map(|a| a.net)
        .collect();
    let expected: BTreeSet<IpNet> = prev
        .ips
        .iter()
        .filter(|ip| ip.interface.is_none() || ip.interface == sandbox.map(|(i, _)| i))
        .map(|ip| ip.address)
        .collect();
    for a in &expected {
        if !present.contains(a) {
            problems.push(format!("address {a} is missing from {ifname}"));
        }
    }
    let recorded: BTreeSet<IpNet> = ep.addresses.iter().copied().collect();
    if recorded != expected {
        problems.push(format!(
            "prevResult lists addresses {expected:?}, nsnet recorded {recorded:?}"
        ));
    }
    let routes = nl.routes().map_err(nl_err(label, "listing routes"))?;
    for r in &prev.routes {
        let found = routes
            .iter()
            .any(|k| k.dest == r.dst && r.gw.is_none_or(|gw| k.gateway == Some(gw)));
        if !found {
            let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            problems.push(format!(
                "route {}{via} is missing from the container",
                r.dst
            ));
        }
    }
    Ok(())
}

/// The host side: the veth on its bridge, the bridge up with its gateways.
fn check_host(
    host: &mut Netlink,
    spec: &NetworkSpec,
    ep: &Endpoint,
    problems: &mut Vec<String>,
) -> Result<(), Error> {
    let bridge = host
        .link_by_name(&spec.bridge)
        .map_err(nl_err("host", format!("looking up {}", spec.bridge)))?;
    let Some(bridge) = bridge.filter(|b| b.kind == LinkKind::Bridge) else {
        problems.push(format!("bridge {} is missing", spec.bridge));
        return Ok(());
    };
    problems.extend(ops::maint::bridge_problems(host, spec, &bridge)?);
    match host
        .link_by_name(&ep.host_ifname)
        .map_err(nl_err("host", format!("looking up {}", ep.host_ifname)))?
    {
        None => problems.push(format!("host veth {} is missing", ep.host_ifname)),
        Some(veth) => {
            if veth.master != Some(bridge.index) {
                problems.push(format!(
                    "host veth {} is not a port of {}",
                    ep.host_ifname, spec.bridge
                ));
            }
            if !veth.up {
                problems.push(format!("host veth {} is down", ep.host_ifname));
            }
        }
    }
    Ok(())
}

/// The published ports against what the runtime asks for now.
fn check_ports(conf: &NetConf, ep: &Endpoint, problems: &mut Vec<String>) {
    let mut wanted = Vec::new();
    for spec in &conf.runtime.ports {
        let start = spec.host_start.unwrap_or_default();
        for i in 0..spec.count {
            wanted.push((
                spec.host,
                spec.proto,
                start.saturating_add(i),
                spec.container_start.saturating_add(i),
            ));
        }
    }
    let have: Vec<_> = ep
        .ports
        .iter()
        .map(|p| (p.host, p.proto, p.host_port, p.container_port))
        .collect();
    for w in &wanted {
        if !have.contains(w) {
            problems.push(format!(
                "port {}:{}->{}/{} is not published",
                w.0, w.2, w.3, w.1
            ));
        }
    }
    for p in &ep.ports {
        if !wanted.contains(&(p.host, p.proto, p.host_port, p.container_port)) {
            problems.push(format!("port {p} is published but not asked for"));
        }
    }
}

fn check_firewall(
    spec: &NetworkSpec,
    ep: &Endpoint,
    problems: &mut Vec<String>,
) -> Result<(), Error> {
    let fw = Firewall::open_existing().map_err(ops::Error::from)?;
    let Some(mut fw) = fw else {
        problems.push("nftables table inet nsnet is missing".into());
        return Ok(());
    };
    let rules = ops::endpoint::rules(&spec.bridge, spec.isolate, ep);
    let mut missing = fw
        .missing_endpoint_elements(&rules)
        .map_err(ops::Error::from)?;
    missing.extend(
        fw.missing_network_elements(&ops::network::rules(spec))
            .map_err(ops::Error::from)?,
    );
    for set in missing {
        problems.push(format!("an element of nftables set {set} is missing"));
    }
    Ok(())
}
