//! `nsnet check [NETWORK]`: every difference between the store and the kernel.
//!
//! Read only, under the operations lock held exclusively, so a connect in
//! flight is never reported as drift. Per network that is up (its bridge
//! exists or it has endpoints): the bridge, up, with its gateway addresses;
//! forwarding and `route_localnet` for networks that leave their bridge. Per
//! endpoint: its host veth (a veth, up, a port of its bridge), and inside its
//! namespace its interface (a veth, up, its MAC), addresses, default routes
//! and source routing rules. The table `inet nsnet`: present, shaped as the
//! base ruleset, holding every element of those networks and endpoints and
//! none that nothing owns (and the `bridge nsnet` port guards; a clustered
//! network's routes, VXLAN device and entries).
//! nsnet's rules in other firewalls that would drop its traffic: each one in
//! place for the networks that are up, none left for others.
//! And the store: journals of interrupted operations, dead pods and runs,
//! leases without endpoints, stray `nsv…` veths.

use super::table::{self, Base, Expected};
use super::{endpoint_label, Exclusive};
use crate::names::NetworkName;
use crate::netlink::{Link, LinkKind, Netlink};
use crate::netns::Netns;
use crate::ops::{nl_err, pod, Context, Error, Result};
use crate::privilege::require_admin;
use crate::store::{Endpoint, NetworkSpec};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// One difference: what (a network, an endpoint, the table, a pod) and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub object: String,
    pub problem: String,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

struct Check {
    drift: Vec<Drift>,
}

impl Check {
    fn push(&mut self, object: impl Into<String>, problem: impl Into<String>) {
        self.drift.push(Drift {
            object: object.into(),
            problem: problem.into(),
        });
    }
}

/// Lists every drift (of `only` that network, if given); empty when clean.
pub fn check(ctx: &Context, only: Option<&NetworkName>) -> Result<Vec<Drift>> {
    require_admin()?;
    let networks = ctx.config()?.networks()?;
    if let Some(n) = only {
        if !networks.iter().any(|s| s.name == n.as_str()) {
            return Err(Error::UnknownNetwork(n.to_string()));
        }
    }
    let _ops = Exclusive::acquire(ctx)?;
    let state = ctx.state()?;
    let endpoints = state.endpoints(None)?;
    let selected = |network: &str| only.is_none_or(|n| n.as_str() == network);
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let links = host.links().map_err(nl_err("host", "listing interfaces"))?;
    let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
    let up = table::up_networks(&mut host, &networks, &endpoints)?;
    let mut c = Check { drift: Vec::new() };

    for spec in networks.iter().filter(|n| selected(&n.name)) {
        if up.contains(&spec.name) {
            check_network(&mut c, &mut host, spec, &by_name)?;
        }
    }
    for ep in endpoints.iter().filter(|e| selected(&e.network)) {
        match networks.iter().find(|n| n.name == ep.network) {
            Some(spec) => check_endpoint(&mut c, spec, ep, &by_name),
            None => c.push(
                endpoint_label(ep),
                format!("its network {} is not defined", ep.network),
            ),
        }
    }
    stray_veths(&mut c, &networks, &endpoints, &links, &selected);
    let clusters = ctx.config()?.clusters()?;
    for spec in networks.iter().filter(|n| selected(&n.name)) {
        for problem in crate::ops::cluster::problems(ctx, spec)? {
            c.push(format!("network {} (cluster)", spec.name), problem);
        }
    }
    check_table(&mut c, &networks, &endpoints, &clusters, &up, &selected)?;
    for (object, problem) in super::foreign::drift(ctx, &networks, &up, &selected)? {
        c.push(object, problem);
    }
    check_store(ctx, &mut c, &state, &endpoints, &selected, only.is_none())?;
    Ok(c.drift)
}

fn read_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .ok()
        .map(|v| v.trim().to_owned())
}

fn check_network(
    c: &mut Check,
    host: &mut Netlink,
    spec: &NetworkSpec,
    links: &HashMap<&str, &Link>,
) -> Result<()> {
    for problem in network_problems(host, spec, links)? {
        c.push(format!("network {}", spec.name), problem);
    }
    Ok(())
}

/// What is wrong with network `spec`'s existing bridge `bridge`: down, or
/// without a gateway address (for `nsnet check` and the CNI CHECK).
pub(crate) fn bridge_problems(
    host: &mut Netlink,
    spec: &NetworkSpec,
    bridge: &Link,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if !bridge.up {
        out.push(format!("bridge {} is down", spec.bridge));
    }
    let addrs: Vec<IpNet> = host
        .addresses(Some(bridge.index))
        .map_err(nl_err(
            "host",
            format!("listing addresses of {}", spec.bridge),
        ))?
        .into_iter()
        .map(|a| a.net)
        .collect();
    for pool in &spec.pools {
        let gw = IpNet::new(pool.gateway, pool.subnet.prefix_len())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if !addrs.contains(&gw) {
            out.push(format!(
                "gateway {gw} is missing from bridge {}",
                spec.bridge
            ));
        }
    }
    Ok(out)
}

/// What is wrong with a network's own kernel objects (not its firewall
/// elements): its bridge (missing, not a bridge, down, without a gateway
/// address) and the sysctls it needs. Also what gc calls a half-made network.
pub(super) fn network_problems(
    host: &mut Netlink,
    spec: &NetworkSpec,
    links: &HashMap<&str, &Link>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let Some(bridge) = links.get(spec.bridge.as_str()) else {
        out.push(format!("bridge {} is missing", spec.bridge));
        return Ok(out);
    };
    if bridge.kind != LinkKind::Bridge {
        out.push(format!("interface {} is not a bridge", spec.bridge));
        return Ok(out);
    }
    out.extend(bridge_problems(host, spec, bridge)?);
    let mut want = |key: String, value: &str, why: &str| match read_sysctl(&key) {
        Some(v) if v == value => {}
        Some(v) => out.push(format!(
            "{} is {v}, not {value} ({why})",
            key.replace('/', ".")
        )),
        None => out.push(format!("{} cannot be read", key.replace('/', "."))),
    };
    if spec.pools.iter().any(|p| p.subnet.addr().is_ipv6()) {
        let key = format!("net/ipv6/conf/{}/accept_dad", spec.bridge);
        want(
            key,
            "0",
            "IPv6 to endpoints stalls while the gateway does DAD",
        );
    }
    if !spec.internal {
        for pool in &spec.pools {
            let key = if pool.subnet.addr().is_ipv4() {
                "net/ipv4/ip_forward"
            } else {
                "net/ipv6/conf/all/forwarding"
            };
            want(key.into(), "1", "endpoints cannot leave the bridge");
        }
        let key = format!("net/ipv4/conf/{}/route_localnet", spec.bridge);
        want(key, "1", "published ports do not answer at 127.0.0.1");
    }
    Ok(out)
}

fn check_endpoint(c: &mut Check, spec: &NetworkSpec, ep: &Endpoint, links: &HashMap<&str, &Link>) {
    let obj = endpoint_label(ep);
    let Some(veth) = links.get(ep.host_ifname.as_str()) else {
        c.push(
            obj,
            format!(
                "host veth {} is missing (its namespace is gone? nsnet gc releases it)",
                ep.host_ifname
            ),
        );
        return;
    };
    if veth.kind != LinkKind::Veth {
        c.push(
            &obj,
            format!("host interface {} is not a veth", ep.host_ifname),
        );
    }
    let bridge = links.get(spec.bridge.as_str()).map(|b| b.index);
    if bridge.is_none() || veth.master != bridge {
        c.push(
            &obj,
            format!(
                "host veth {} is not a port of {}",
                ep.host_ifname, spec.bridge
            ),
        );
    }
    if !veth.up {
        c.push(&obj, format!("host veth {} is down", ep.host_ifname));
    }
    let Some(ns) = crate::ops::alive::find_netns(ep) else {
        c.push(
            obj,
            format!(
                "its namespace {} (inode {}) cannot be found",
                ep.target, ep.netns_inode
            ),
        );
        return;
    };
    if let Err(e) = check_inside(c, &obj, spec, ep, &ns) {
        c.push(obj, format!("cannot look inside {}: {e}", ep.target));
    }
}

fn check_inside(
    c: &mut Check,
    obj: &str,
    spec: &NetworkSpec,
    ep: &Endpoint,
    ns: &Netns,
) -> Result<()> {
    let label = ep.target.as_str();
    let mut nl = ns.netlink()?;
    let Some(link) = nl
        .link_by_name(&ep.ifname)
        .map_err(nl_err(label, format!("looking up {}", ep.ifname)))?
    else {
        c.push(
            obj,
            format!("interface {} is missing from {label}", ep.ifname),
        );
        return Ok(());
    };
    if link.kind != LinkKind::Veth {
        c.push(obj, format!("{} in {label} is not a veth", ep.ifname));
    }
    if !link.up {
        c.push(obj, format!("{} in {label} is down", ep.ifname));
    }
    let mac = link
        .mac
        .map(|m| crate::names::Mac(m).to_string())
        .unwrap_or_default();
    if !mac.eq_ignore_ascii_case(&ep.mac) {
        c.push(
            obj,
            format!("{} in {label} has MAC {mac}, not {}", ep.ifname, ep.mac),
        );
    }
    let present: Vec<IpNet> = nl
        .addresses(Some(link.index))
        .map_err(nl_err(label, format!("listing addresses of {}", ep.ifname)))?
        .into_iter()
        .map(|a| a.net)
        .collect();
    for a in &ep.addresses {
        if !present.contains(a) {
            c.push(
                obj,
                format!("address {a} is missing from {} in {label}", ep.ifname),
            );
        }
    }
    source_rules(c, obj, label, ep, &mut nl)?;
    // Connect adds a default route per family unless one exists; CNI
    // attachments take theirs from the config (CNI CHECK compares those).
    let cni = ep
        .id
        .split_once('/')
        .is_some_and(|(_, id)| id.starts_with("cni:"));
    if !spec.internal && !cni {
        let routes = nl.routes().map_err(nl_err(label, "listing routes"))?;
        for pool in &spec.pools {
            let v4 = pool.subnet.addr().is_ipv4();
            if !routes
                .iter()
                .any(|r| r.is_default() && r.dest.addr().is_ipv4() == v4)
            {
                c.push(
                    obj,
                    format!(
                        "{label} has no {} default route",
                        if v4 { "IPv4" } else { "IPv6" }
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The endpoint's source routing rules (`ops::source_routes`), if it has any.
fn source_rules(
    c: &mut Check,
    obj: &str,
    label: &str,
    ep: &Endpoint,
    nl: &mut Netlink,
) -> Result<()> {
    let Some(sr) = &ep.source_routes else {
        return Ok(());
    };
    let missing =
        crate::ops::source_routes::missing(nl, sr).map_err(nl_err(label, "listing rules"))?;
    for r in missing {
        let from = r.source.map(|s| s.addr().to_string()).unwrap_or_default();
        c.push(
            obj,
            format!(
                "rule from {from} lookup {} is missing from {label} (replies from {from} leave through the wrong network)",
                r.table
            ),
        );
    }
    Ok(())
}

fn stray_veths(
    c: &mut Check,
    networks: &[NetworkSpec],
    endpoints: &[Endpoint],
    links: &[Link],
    selected: &dyn Fn(&str) -> bool,
) {
    let bridges: HashMap<u32, &NetworkSpec> = links
        .iter()
        .filter(|l| l.kind == LinkKind::Bridge)
        .filter_map(|l| Some((l.index, networks.iter().find(|n| n.bridge == l.name)?)))
        .filter(|(_, n)| selected(&n.name))
        .collect();
    for l in links {
        let Some(spec) = l.master.and_then(|m| bridges.get(&m)) else {
            continue;
        };
        if l.kind == LinkKind::Veth
            && super::is_host_veth_name(&l.name)
            && !endpoints.iter().any(|e| e.host_ifname == l.name)
        {
            c.push(
                format!("network {}", spec.name),
                format!(
                    "veth {} on {} has no endpoint (nsnet gc removes it)",
                    l.name, spec.bridge
                ),
            );
        }
    }
}

fn check_table(
    c: &mut Check,
    networks: &[NetworkSpec],
    endpoints: &[Endpoint],
    clusters: &[crate::store::cluster::ClusterSpec],
    up: &std::collections::HashSet<String>,
    selected: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let table = format!("table inet {}", crate::firewall::TABLE);
    let base = Base::new();
    let listing = table::list()?;
    let any_up = up.iter().any(|n| selected(n));
    match &listing {
        None if any_up => c.push(&table, "is missing (nsnet firewall reload restores it)"),
        None => return Ok(()),
        Some(l) => {
            for d in table::shape_drift(&base, l) {
                c.push(&table, d);
            }
        }
    }
    let expected = Expected::new(networks, endpoints, clusters, |n| up.contains(&n.name));
    for d in expected.compare(&base, listing.as_ref()) {
        if selected(d.network()) {
            let (object, problem) = d.describe(&base);
            c.push(object, problem);
        }
    }
    Ok(())
}

fn check_store(
    ctx: &Context,
    c: &mut Check,
    state: &crate::store::State,
    endpoints: &[Endpoint],
    selected: &dyn Fn(&str) -> bool,
    unfiltered: bool,
) -> Result<()> {
    for j in super::interrupted(ctx)? {
        let network = match &j.id {
            Some(id) => id.split('/').next().unwrap_or_default().to_owned(),
            None => endpoints
                .iter()
                .find(|e| e.host_ifname == j.host_ifname)
                .map(|e| e.network.clone())
                .unwrap_or_default(),
        };
        if selected(&network) || unfiltered {
            c.push(
                j.label(),
                "an operation on it was interrupted (nsnet gc finishes it)",
            );
        }
    }
    for (owner, network, what) in state.orphans()? {
        if selected(&network) {
            c.push(
                format!("network {network}"),
                format!("{what} is held by endpoint {owner}, which has no record (nsnet gc releases it)"),
            );
        }
    }
    let abandoned = super::abandoned_pods(ctx, state)?;
    for p in state.pods()? {
        if pod::alive(&p) || !p.networks.iter().any(|n| selected(n)) {
            continue;
        }
        if p.pid != 0 {
            c.push(
                format!("pod {}", p.name),
                format!(
                    "is dead: its pause process {} is gone (nsnet gc removes it)",
                    p.pid
                ),
            );
        } else if abandoned.contains(&p.name) {
            c.push(
                format!("pod {}", p.name),
                "its creation was interrupted (nsnet gc removes it)",
            );
        }
    }
    if let Ok(runs) = std::fs::read_dir(super::runs_dir(ctx)) {
        for entry in runs.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = id.strip_prefix("run-").and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let suffix = format!("/run:{id}");
            let on_selected = endpoints
                .iter()
                .any(|e| e.id.ends_with(&suffix) && selected(&e.network));
            if !super::process_runs(pid) && (on_selected || unfiltered) {
                c.push(
                    format!("run {id}"),
                    format!("its nsnet run process {pid} is gone (nsnet gc removes it)"),
                );
            }
        }
    }
    Ok(())
}
