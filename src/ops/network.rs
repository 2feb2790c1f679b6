//! Bridge networks: create, list, inspect, remove, and bringing a network's
//! kernel objects up on first use.

use super::lock::{Lock, NetworkLock};
use super::{nl_err, Context, Error, Result};
use crate::firewall::foreign::{self, ForeignNet};
use crate::firewall::{self, Firewall, NetworkRules};
use crate::ipam::{self, Pool};
use crate::names::{IfName, NetworkName, IFNAME_MAX};
use crate::netlink::{LinkKind, Netlink};
use crate::privilege::require_admin;
use crate::store::{Endpoint, NetworkSpec};
use ipnet::IpNet;
use std::net::IpAddr;

const MTU_MIN: u32 = 68;
const MTU_MAX: u32 = 65535;
/// The kernel turns IPv6 off on a link with a smaller MTU (RFC 8200).
const IPV6_MTU_MIN: u32 = 1280;

/// A validated `network create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<NetworkName>,
    pub subnets: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    pub ip_range: Option<IpNet>,
    pub bridge: Option<IfName>,
    pub internal: bool,
    pub no_masquerade: bool,
    pub isolate: bool,
    pub mtu: Option<u32>,
    /// Accept an IPv4 link-local subnet (169.254.0.0/16).
    pub allow_link_local: bool,
    /// What reaches the endpoints from outside.
    pub inbound: crate::store::Inbound,
    /// Add no rules to other firewalls (see [`crate::firewall::foreign`]).
    pub no_foreign_rules: bool,
}

/// Turns subnets, gateways and range into pools, or says what is wrong.
fn build_pools(req: &CreateRequest) -> Result<Vec<Pool>> {
    let invalid = |m: String| Error::Invalid(m);
    let mut pools: Vec<Pool> = Vec::new();
    for subnet in &req.subnets {
        ipam::check_subnet_is_network(subnet).map_err(invalid)?;
        ipam::check_subnet_size(subnet).map_err(invalid)?;
        ipam::check_subnet_usable(subnet, req.allow_link_local).map_err(invalid)?;
        if pools
            .iter()
            .any(|p| p.subnet.addr().is_ipv4() == subnet.addr().is_ipv4())
        {
            return Err(invalid(format!(
                "at most one IPv4 and one IPv6 subnet per network ({subnet} is a second {})",
                if subnet.addr().is_ipv4() {
                    "IPv4"
                } else {
                    "IPv6"
                }
            )));
        }
        pools.push(Pool {
            subnet: *subnet,
            gateway: ipam::first_host(subnet),
            range: None,
        });
    }
    let mut seen_gw = Vec::new();
    for gw in &req.gateways {
        let pool = pools
            .iter_mut()
            .find(|p| p.subnet.addr().is_ipv4() == gw.is_ipv4())
            .ok_or_else(|| invalid(format!("gateway {gw} has no subnet of its family")))?;
        if seen_gw.contains(&gw.is_ipv4()) {
            return Err(invalid(format!(
                "more than one gateway for subnet {}",
                pool.subnet
            )));
        }
        seen_gw.push(gw.is_ipv4());
        if !pool.subnet.contains(gw) {
            return Err(invalid(format!(
                "gateway {gw} is outside subnet {}",
                pool.subnet
            )));
        }
        pool.gateway = *gw;
        // The gateway itself must be a host address of the subnet.
        if let Some(why) = reserved_for_gateway(&pool.subnet, *gw) {
            return Err(invalid(format!(
                "gateway {gw} is {why} of subnet {}",
                pool.subnet
            )));
        }
    }
    if let Some(range) = req.ip_range {
        let pool = pools
            .iter_mut()
            .find(|p| p.subnet.addr().is_ipv4() == range.addr().is_ipv4())
            .ok_or_else(|| invalid(format!("ip range {range} has no subnet of its family")))?;
        ipam::check_subnet_is_network(&range).map_err(invalid)?;
        if !(pool.subnet.contains(&range.network()) && pool.subnet.contains(&range.broadcast())) {
            return Err(invalid(format!(
                "ip range {range} is not inside subnet {}",
                pool.subnet
            )));
        }
        pool.range = Some(range);
    }
    Ok(pools)
}

fn reserved_for_gateway(subnet: &IpNet, gw: IpAddr) -> Option<&'static str> {
    if gw == subnet.network() {
        return Some("the network address");
    }
    match subnet {
        IpNet::V4(v4) if v4.prefix_len() < 31 && gw == IpAddr::V4(v4.broadcast()) => {
            Some("the broadcast address")
        }
        _ => None,
    }
}

/// The default bridge name: `nsbr-NAME`, or for long names a cut of it plus a
/// hash of the whole name, so two long names that share a start still differ.
pub fn default_bridge_name(name: &NetworkName, attempt: u32) -> String {
    let plain = format!("nsbr-{name}");
    if attempt == 0 && plain.len() <= IFNAME_MAX {
        return plain;
    }
    let hash = format!(
        "{:04x}",
        super::fnv1a(&format!("{name}/{attempt}")) & 0xffff
    );
    let room = IFNAME_MAX - "nsbr-".len() - hash.len();
    let cut: String = name.as_str().chars().take(room).collect();
    format!("nsbr-{cut}{hash}")
}

/// Creates a network definition. Nothing in the kernel changes: the bridge and
/// its firewall elements are made on first use (see [`ensure_up`]).
pub fn create(ctx: &Context, req: &CreateRequest) -> Result<NetworkSpec> {
    let name = req
        .name
        .clone()
        .ok_or_else(|| Error::Invalid("a network needs a name".into()))?;
    if let Some(mtu) = req.mtu {
        if !(MTU_MIN..=MTU_MAX).contains(&mtu) {
            return Err(Error::Invalid(format!(
                "MTU {mtu} is out of range ({MTU_MIN}..{MTU_MAX})"
            )));
        }
    }
    if req.internal && req.no_masquerade {
        tracing::debug!("--no-masquerade is implied by --internal");
    }
    let mut pools = build_pools(req)?;
    if let (Some(mtu), Some(v6)) = (req.mtu, pools.iter().find(|p| p.subnet.addr().is_ipv6())) {
        if mtu < IPV6_MTU_MIN {
            return Err(Error::Invalid(format!(
                "MTU {mtu} is below {IPV6_MTU_MIN}, the least IPv6 works with: \
                 subnet {} cannot be used on it",
                v6.subnet
            )));
        }
    }
    if req.ip_range.is_some() && req.subnets.is_empty() {
        return Err(Error::Invalid("--ip-range needs --subnet".into()));
    }
    require_admin()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let links: Vec<String> = host
        .links()
        .map_err(nl_err("host", "listing interfaces"))?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let routes: Vec<IpNet> = host
        .routes()
        .map_err(nl_err("host", "listing routes"))?
        .into_iter()
        .filter(|r| !r.is_default())
        .map(|r| r.dest)
        .collect();
    let auto_subnet = pools.is_empty();

    let mut config = ctx.config()?;
    let outcome = config.create_network(|existing: &[NetworkSpec]| -> Result<NetworkSpec> {
        if existing.iter().any(|n| n.name == name.as_str()) {
            return Err(Error::Invalid(format!("network {name} already exists")));
        }
        if auto_subnet {
            let taken = |cand: &IpNet| {
                existing
                    .iter()
                    .flat_map(|n| &n.pools)
                    .any(|p| ipam::overlaps(&p.subnet, cand))
                    || routes.iter().any(|r| ipam::overlaps(r, cand))
            };
            let subnet = ipam::default_pool().find(|c| !taken(c)).ok_or_else(|| {
                Error::Invalid(
                    "no free subnet left in the default pool 10.201.0.0/16; give --subnet".into(),
                )
            })?;
            pools.push(Pool {
                subnet,
                gateway: ipam::first_host(&subnet),
                range: None,
            });
        }
        for pool in &pools {
            for other in existing {
                if let Some(p) = other
                    .pools
                    .iter()
                    .find(|p| ipam::overlaps(&p.subnet, &pool.subnet))
                {
                    return Err(Error::Invalid(format!(
                        "subnet {} overlaps network {} ({})",
                        pool.subnet, other.name, p.subnet
                    )));
                }
            }
        }
        let bridge = match &req.bridge {
            Some(b) => {
                if let Some(other) = existing.iter().find(|n| n.bridge == b.as_str()) {
                    return Err(Error::Invalid(format!(
                        "bridge {b} belongs to network {}",
                        other.name
                    )));
                }
                if links.iter().any(|l| l == b.as_str()) {
                    return Err(Error::Invalid(format!(
                        "interface {b} already exists on the host"
                    )));
                }
                b.to_string()
            }
            None => (0..)
                .map(|attempt| default_bridge_name(&name, attempt))
                .find(|c| !existing.iter().any(|n| &n.bridge == c) && !links.iter().any(|l| l == c))
                .unwrap_or_default(), // ok: the range never ends
        };
        Ok(NetworkSpec {
            name: name.to_string(),
            bridge,
            pools: std::mem::take(&mut pools),
            internal: req.internal,
            masquerade: !req.internal && !req.no_masquerade,
            isolate: req.isolate,
            mtu: req.mtu,
            inbound: req.inbound,
            foreign_rules: !req.no_foreign_rules,
        })
    });
    outcome?
}

/// Changes a network's inbound policy: its definition, and its firewall
/// element when the network is up. Returns the new definition.
pub fn set_inbound(
    ctx: &Context,
    name: &NetworkName,
    inbound: crate::store::Inbound,
) -> Result<NetworkSpec> {
    require_admin()?;
    let _lock = Lock::acquire(&ctx.state_dir).map_err(|e| Error::Io {
        what: format!("locking {}", ctx.state_dir.display()),
        source: e,
    })?;
    let config = ctx.config()?;
    let mut spec = config
        .network(name.as_str())?
        .ok_or_else(|| Error::UnknownNetwork(name.to_string()))?;
    if spec.inbound == inbound {
        return Ok(spec);
    }
    let old = spec.clone();
    spec.inbound = inbound;
    config.update_network(&spec)?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let up = host
        .link_by_name(&spec.bridge)
        .map_err(nl_err("host", format!("looking up bridge {}", spec.bridge)))?
        .is_some();
    if let (true, Some(mut fw)) = (up, Firewall::open_existing()?) {
        fw.replace_network(&rules(&old), &rules(&spec))?;
    }
    tracing::info!("network {}: inbound {inbound}", spec.name);
    Ok(spec)
}

/// Every network definition.
pub fn list(ctx: &Context) -> Result<Vec<NetworkSpec>> {
    match ctx.config_read()? {
        Some(config) => Ok(config.networks()?),
        None => Ok(Vec::new()),
    }
}

/// A network's definition and endpoints.
pub fn inspect(ctx: &Context, name: &NetworkName) -> Result<(NetworkSpec, Vec<Endpoint>)> {
    let spec = get(ctx, name)?;
    let endpoints = super::view::endpoints(ctx, Some(name.as_str()))?;
    Ok((spec, endpoints))
}

pub fn get(ctx: &Context, name: &NetworkName) -> Result<NetworkSpec> {
    ctx.config_read()?
        .map(|c| c.network(name.as_str()))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::UnknownNetwork(name.to_string()))
}

/// What [`foreign`] needs to know of a network.
pub(crate) fn foreign_net(spec: &NetworkSpec) -> ForeignNet<'_> {
    ForeignNet {
        name: &spec.name,
        bridge: &spec.bridge,
        internal: spec.internal,
        masquerade: spec.masquerade,
    }
}

/// What nsnet added to other firewalls for a network (`network inspect`).
pub fn foreign_rules(ctx: &Context, name: &NetworkName) -> Result<Vec<foreign::Added>> {
    Ok(foreign::recorded_for(&ctx.state_dir, name.as_str()).map_err(firewall::Error::from)?)
}

pub(crate) fn rules(spec: &NetworkSpec) -> NetworkRules<'_> {
    NetworkRules {
        bridge: &spec.bridge,
        internal: spec.internal,
        isolate: spec.isolate,
        routed: spec.inbound == crate::store::Inbound::Routed,
        masquerade: spec.masquerade,
        gateways: spec.pools.iter().map(|p| p.gateway).collect(),
    }
}

/// Makes sure the network's bridge exists, holds its gateway addresses, is up,
/// and that the firewall knows the network. Returns the bridge's index.
/// Idempotent; serialised by nsnet's lock so concurrent first connects agree.
pub fn ensure_up(ctx: &Context, host: &mut Netlink, spec: &NetworkSpec) -> Result<u32> {
    if let Some(link) = host
        .link_by_name(&spec.bridge)
        .map_err(nl_err("host", format!("looking up bridge {}", spec.bridge)))?
    {
        if link.kind == LinkKind::Bridge && link.up {
            return Ok(link.index);
        }
    }
    let _lock = Lock::acquire(&ctx.state_dir).map_err(|e| Error::Io {
        what: format!("locking {}", ctx.state_dir.display()),
        source: e,
    })?;
    let (index, repaired, cluster) = ensure_up_locked(ctx, host, spec)?;
    for line in &cluster {
        tracing::info!("{line}");
    }
    if !repaired.is_empty() {
        tracing::warn!(
            "bridge {} of network {} had been deleted: made it again and attached its {} endpoint(s) to it again",
            spec.bridge,
            spec.name,
            repaired.len()
        );
    }
    Ok(index)
}

/// [`ensure_up`] for a caller that holds nsnet's lock. A bridge made here
/// while endpoints of its network exist was deleted under them (`ip link del
/// nsbr-NAME`): the kernel detaches a deleted bridge's ports, it does not
/// delete them, so their host veths are still there, cut off; they are
/// attached to the new bridge. Returns a line per endpoint attached again.
pub(crate) fn ensure_up_locked(
    ctx: &Context,
    host: &mut Netlink,
    spec: &NetworkSpec,
) -> Result<(u32, Vec<String>, Vec<String>)> {
    let ns = "host";
    let mut created = false;
    let index = match host
        .link_by_name(&spec.bridge)
        .map_err(nl_err(ns, "looking up the bridge"))?
    {
        Some(link) if link.kind == LinkKind::Bridge => link.index,
        Some(_) => {
            return Err(Error::Invalid(format!(
                "network {}: interface {} exists and is not a bridge",
                spec.name, spec.bridge
            )))
        }
        None => {
            host.add_bridge(&spec.bridge, spec.mtu, Some(bridge_mac(&spec.bridge)))
                .map_err(nl_err(ns, format!("creating bridge {}", spec.bridge)))?;
            created = true;
            host.link_by_name(&spec.bridge)
                .map_err(nl_err(ns, "looking up the bridge"))?
                .map(|l| l.index)
                .ok_or_else(|| Error::InterfaceNotFound {
                    ns: ns.into(),
                    name: spec.bridge.clone(),
                })?
        }
    };
    let configured = configure_bridge(ctx, host, spec, index);
    let mut cluster_lines = Vec::new();
    if configured.is_ok() {
        // A clustered network's routes, VXLAN device and elements, made again
        // with the network (after a reboot, or a deleted bridge).
        match super::cluster::reapply(ctx, spec) {
            Ok(a) => cluster_lines.extend(
                a.added
                    .iter()
                    .map(|x| format!("network {} (cluster): added {x}", spec.name)),
            ),
            Err(e) => tracing::warn!("network {}: its cluster: {e}", spec.name),
        }
    }
    if configured.is_err() && created {
        // This call made the bridge: take it away again rather than leave a
        // half-configured one (the next connect makes it afresh), and the
        // rules it added to other firewalls.
        if let Err(e) = host.delete_link(index) {
            tracing::warn!("removing bridge {} after a failure: {e}", spec.bridge);
        }
        for e in foreign::remove(&ctx.state_dir, &spec.name).1 {
            tracing::warn!("after a failure: {e}");
        }
    }
    configured?;
    let repaired = if created {
        attach_ports(ctx, host, spec, index)?
    } else {
        Vec::new()
    };
    Ok((index, repaired, cluster_lines))
}

/// Attaches to bridge `bridge` (its index) every host veth of the network's
/// endpoints that exists and is not on it, with its port options (hairpin
/// for published ports); returns a line for each.
fn attach_ports(
    ctx: &Context,
    host: &mut Netlink,
    spec: &NetworkSpec,
    bridge: u32,
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    let endpoints = ctx.state()?.endpoints(Some(&spec.name))?;
    if endpoints.is_empty() {
        return Ok(lines);
    }
    let links: std::collections::HashMap<String, crate::netlink::Link> = host
        .links()
        .map_err(nl_err("host", "listing interfaces"))?
        .into_iter()
        .map(|l| (l.name.clone(), l))
        .collect();
    for ep in endpoints {
        let Some(link) = links.get(&ep.host_ifname) else {
            continue;
        };
        if link.kind != LinkKind::Veth || link.master == Some(bridge) {
            continue;
        }
        host.set_master(link.index, Some(bridge)).map_err(nl_err(
            "host",
            format!("attaching {} to {}", ep.host_ifname, spec.bridge),
        ))?;
        if !ep.ports.is_empty() {
            host.set_bridge_port(link.index, false, true)
                .map_err(nl_err(
                    "host",
                    format!("setting bridge port options of {}", ep.host_ifname),
                ))?;
        }
        lines.push(format!(
            "veth {} of endpoint {} ({} {}): attached to bridge {} again",
            ep.host_ifname, ep.id, ep.target, ep.ifname, spec.bridge
        ));
    }
    Ok(lines)
}

/// For gc and `firewall reload` (which hold the operations lock exclusively
/// and nsnet's lock): a network with endpoints whose bridge was deleted gets
/// it back whole, and every endpoint's veth that is not on its bridge is
/// attached again. Returns a line per repair.
pub(crate) fn repair_ports(
    ctx: &Context,
    host: &mut Netlink,
    spec: &NetworkSpec,
) -> Result<Vec<String>> {
    let endpoints = ctx.state()?.endpoints(Some(&spec.name))?;
    if endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let links = host.links().map_err(nl_err("host", "listing interfaces"))?;
    let has = |name: &str| links.iter().find(|l| l.name == name);
    if !endpoints.iter().any(|e| has(&e.host_ifname).is_some()) {
        return Ok(Vec::new());
    }
    // A bridge that is there and up keeps its configuration: only detached
    // ports are attached again (reload and gc repair the rest themselves, and
    // say what they repaired).
    if let Some(bridge) = has(&spec.bridge).filter(|l| l.kind == LinkKind::Bridge && l.up) {
        let index = bridge.index;
        return attach_ports(ctx, host, spec, index);
    }
    let (index, mut lines, cluster) = ensure_up_locked(ctx, host, spec)?;
    lines.extend(cluster);
    lines.insert(
        0,
        format!(
            "bridge {} of network {}: made again (it was missing or down)",
            spec.bridge, spec.name
        ),
    );
    lines.extend(attach_ports(ctx, host, spec, index)?);
    Ok(lines)
}

/// Gateway addresses, sysctls, up, and the network's firewall elements.
fn configure_bridge(
    ctx: &Context,
    host: &mut Netlink,
    spec: &NetworkSpec,
    index: u32,
) -> Result<()> {
    let ns = "host";
    let present = host
        .addresses(Some(index))
        .map_err(nl_err(ns, "listing the bridge's addresses"))?;
    for pool in &spec.pools {
        let gw = IpNet::new(pool.gateway, pool.subnet.prefix_len())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if !present.iter().any(|a| a.net == gw) {
            host.add_address(index, &gw).map_err(nl_err(
                ns,
                format!("adding gateway {gw} to {}", spec.bridge),
            ))?;
        }
    }
    if spec.pools.iter().any(|p| p.subnet.addr().is_ipv6()) {
        // Without DAD the bridge's link-local address is usable at once; until
        // it is, the kernel sends no neighbour solicitation for forwarded
        // packets, and IPv6 to endpoints stalls for seconds.
        super::sysctl(&format!("net/ipv6/conf/{}/accept_dad", spec.bridge), "0")?;
    }
    if !spec.internal {
        super::forwarding::enable(ctx, spec)?;
        // Published ports answer at 127.0.0.1: the kernel routes a loopback
        // source out of this bridge only with route_localnet on it.
        super::sysctl(
            &format!("net/ipv4/conf/{}/route_localnet", spec.bridge),
            "1",
        )?;
    }
    // The base ruleset is declared here, under nsnet's lock, by the first
    // network to come up; a missing table while others are up was deleted
    // (connect put it back whole just before, unless it went again since).
    // Both tables there: use them. One missing (deleted, or an older nsnet
    // declared only `inet nsnet`): with other networks up, connect has just
    // put both back whole with every element (see `reinstall_if_deleted`),
    // so a table still missing went again since; with none up, declare them
    // (again) here.
    let mut fw = match Firewall::tables_exist()? {
        (true, true) => Firewall::open_existing()?.ok_or_else(super::endpoint::table_deleted)?,
        _ if super::ruleset::networks_in_use(ctx, host, Some(&spec.name))? => {
            return Err(super::endpoint::table_deleted())
        }
        _ => Firewall::open()?,
    };
    fw.add_network(&rules(spec))?;
    if spec.foreign_rules {
        // Only here, when the network comes up: a connect to a network that
        // is up spawns nothing.
        let droppers = foreign::probe().map_err(firewall::Error::from)?;
        let added =
            foreign::ensure(&ctx.state_dir, &foreign_net(spec), &droppers).map_err(|mut e| {
                e.why.push_str(
                    " (a network created with --no-foreign-rules, CNI \"foreignFirewall\": false, \
                     leaves other firewalls alone)",
                );
                firewall::Error::from(e)
            })?;
        for rule in added {
            tracing::info!("network {}: added {rule}", spec.name);
        }
    }
    // Up last: an up bridge is what lets other connects skip this function (and
    // nsnet's lock), so it must mean the firewall is declared too. Otherwise two
    // concurrent first connects could both declare the base ruleset.
    host.set_up(index, true)
        .map_err(nl_err(ns, format!("bringing {} up", spec.bridge)))?;
    Ok(())
}

/// A fixed, locally administered MAC for a bridge, derived from its name. Without
/// one the bridge takes the lowest MAC of its ports, so the gateway's MAC would
/// change (and neighbours' ARP caches go stale) whenever ports come and go.
fn bridge_mac(bridge: &str) -> [u8; 6] {
    let h = super::fnv1a(bridge).to_be_bytes();
    [0x02, h[0], h[1], h[2], h[3], h[4]]
}

/// Removes a network: its endpoints (only with `force`), its bridge, its firewall
/// elements, its leases and its definition. Goes on past errors and reports them all.
pub fn remove(ctx: &Context, name: &NetworkName, force: bool) -> Result<()> {
    require_admin()?;
    // Connects to it finish first; those that come after find no network.
    let lock = NetworkLock::exclusive(&ctx.state_dir, name.as_str())?;
    let removed = remove_locked(ctx, name, force);
    // Safe whatever happened: nobody else holds it (a later connect makes it again).
    lock.remove();
    removed
}

/// Network `network`'s lock, held shared (by a connect; see [`NetworkLock`]).
pub(crate) fn lock_shared(ctx: &Context, network: &str) -> Result<NetworkLock> {
    Ok(NetworkLock::shared(&ctx.state_dir, network)?)
}

fn remove_locked(ctx: &Context, name: &NetworkName, force: bool) -> Result<()> {
    let spec = get(ctx, name)?;
    let mut state = ctx.state()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let mut errors = Vec::new();
    // Teardowns run like a disconnect's: the operations lock held shared and a
    // journal per endpoint, so gc waits, and finishes the teardown of any
    // endpoint this process was killed in the middle of. (What comes after
    // the endpoints, the bridge, its elements and the definition, a second
    // `network rm` finishes; a network without its bridge is one not up yet.)
    let journaled =
        |eps: &[Endpoint]| super::lock::InFlight::begin(ctx, eps.iter().map(|e| e.id.as_str()));
    // Endpoints whose veth is gone (their namespace died without a disconnect)
    // hold nothing but leases: release them whatever `force` says.
    let (mut endpoints, mut dead) = (Vec::new(), Vec::new());
    for ep in state.endpoints(Some(name.as_str()))? {
        let alive = host
            .link_by_name(&ep.host_ifname)
            .map_err(nl_err("host", "looking up a veth"))?
            .is_some();
        if alive {
            endpoints.push(ep);
        } else {
            dead.push(ep);
        }
    }
    if !dead.is_empty() {
        let _in_flight = journaled(&dead)?;
        for ep in &dead {
            errors.extend(super::endpoint::teardown(
                &mut host,
                &mut state,
                &spec.bridge,
                ep,
            ));
        }
    }
    if !endpoints.is_empty() && !force {
        return Err(Error::Invalid(format!(
            "network {name} has {} endpoint(s) attached ({}); disconnect them or use --force",
            endpoints.len(),
            endpoints
                .iter()
                .map(|e| format!("{} {}", e.owner(), e.ifname))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let _in_flight = journaled(&endpoints)?;
    let mut progress = crate::progress::Progress::new("removing endpoints", endpoints.len());
    for ep in &endpoints {
        errors.extend(super::endpoint::teardown(
            &mut host,
            &mut state,
            &spec.bridge,
            ep,
        ));
        progress.tick();
    }
    drop(progress);
    if let Err(e) = super::cluster::leave_if_clustered(ctx, &spec) {
        errors.push(format!("leaving its cluster: {e}"));
    }
    match host.link_by_name(&spec.bridge) {
        Ok(Some(link)) if link.kind == LinkKind::Bridge => {
            if let Err(e) = host.delete_link(link.index) {
                errors.push(format!("deleting bridge {}: {e}", spec.bridge));
            }
        }
        Ok(_) => {}
        Err(e) => errors.push(format!("looking up bridge {}: {e}", spec.bridge)),
    }
    match firewall_if_present() {
        Ok(Some(mut fw)) => {
            if let Err(e) = fw.remove_network(&rules(&spec)) {
                errors.push(e.to_string());
            }
        }
        Ok(None) => {}
        Err(e) => errors.push(e.to_string()),
    }
    errors.extend(foreign::remove(&ctx.state_dir, name.as_str()).1);
    if let Err(e) = state.forget_network(name.as_str()) {
        errors.push(e.to_string());
    }
    if errors.is_empty() {
        ctx.config()?.delete_network(name.as_str())?;
        Ok(())
    } else {
        Err(Error::Teardown {
            what: format!("network {name}"),
            errors,
        })
    }
}

/// The firewall, if nsnet's table exists; teardown never declares it.
fn firewall_if_present() -> firewall::Result<Option<Firewall>> {
    Firewall::open_existing()
}
