//! Endpoints: attaching a namespace (by name, PID or path) to a bridge network,
//! and detaching it again.
//!
//! Connect, in order: validate everything; bring the network up (bridge, gateway,
//! firewall); lease the addresses and record the endpoint (one store transaction);
//! create the veth pair with the peer made directly inside the target and the
//! host end enslaved to the bridge (one netlink request); address the peer, bring
//! it and `lo` up, add the default route; bring the host end up. Every step after
//! the lease registers its undo, so a failure leaves nothing behind.
//!
//! Default route rule ([`super::routes`]): an endpoint gets a default route via the network's gateway
//! for each family the network has, unless the namespace already has a default
//! route of that family (then only the subnet route, which comes with the
//! address), and source routing for its addresses ([`super::source_routes`]).
//! Internal networks never add a default route.

use super::rollback::Rollback;
use super::routes::RoutePolicy;
use super::{network, nl_err, Context, Error, Result};
use crate::firewall::{conntrack, EndpointRules, Firewall};
use crate::ipam::{Bounds, Pool};
use crate::names::{IfName, Mac, NetworkName, Target};
use crate::netlink::{Netlink, VethSpec};
use crate::netns::Netns;
use crate::ports::{PortSpec, Proto, Published};
use crate::privilege::require_admin;
use crate::store::{AddressRequest, Endpoint, NetworkSpec, PortRequest, State};
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;

/// A validated `network connect`.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub network: NetworkName,
    pub target: Target,
    pub ifname: Option<IfName>,
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    /// Ports to publish (`-p`).
    pub ports: Vec<PortSpec>,
    /// The endpoint's id, when the caller has one (a CNI container id and
    /// interface, a pod name); by default it is derived from the network and the
    /// target namespace's inode. The host-side veth name is derived from it.
    pub id: Option<String>,
    /// Bounds for the addresses nsnet picks, per subnet (a CNI range's
    /// `rangeStart`/`rangeEnd`); allocated inside the lease transaction.
    pub bounds: Vec<(IpNet, Bounds)>,
    /// The routes the namespace gets (by default nsnet's rule, see [`super::routes`]).
    pub routes: RoutePolicy,
    /// Hairpin on the endpoint's bridge port even without published ports
    /// (CNI `hairpinMode`).
    pub hairpin: bool,
}

/// Opens what a target names.
pub fn open_target(target: &Target) -> Result<Netns> {
    Ok(match target {
        Target::Named(n) => Netns::by_name(n)?,
        Target::Pid(p) => Netns::by_pid(*p)?,
        Target::Path(p) => Netns::by_path(p)?,
    })
}

/// Refuses `ns` when it is the namespace nsnet runs in, where every network's
/// bridge lives: a veth from the bridge back into its own namespace gives the
/// host an address in the subnet and, when it had none, a default route into
/// its own bridge (a loop). Checked before anything is touched.
pub fn refuse_bridge_namespace(ns: &Netns, target: &str, network: &str) -> Result<()> {
    if ns.same_as(&Netns::host()?)? {
        return Err(Error::HostNamespace {
            target: target.to_owned(),
            network: network.to_owned(),
        });
    }
    Ok(())
}

/// The host-side veth name: derived from the endpoint id only, so it is stable
/// and teardown can find it without any other state.
pub use crate::store::layout::host_ifname;

/// An endpoint, as messages name it: its id, namespace and interface.
pub(crate) fn label(ep: &Endpoint) -> String {
    format!("endpoint {} ({} {})", ep.id, ep.target, ep.ifname)
}

/// Pairs each pool of the network with what is asked of it: the static address
/// given for it, the next free one within its bounds, or the next free one.
fn address_requests(
    spec: &crate::store::NetworkSpec,
    ips: &[IpAddr],
    bounds: &[(IpNet, Bounds)],
) -> Result<Vec<(Pool, AddressRequest)>> {
    let mut out: Vec<(Pool, AddressRequest)> = spec
        .pools
        .iter()
        .map(|p| {
            let within = bounds.iter().find(|(s, _)| *s == p.subnet).map(|(_, b)| *b);
            let request = within.map_or(AddressRequest::Next, AddressRequest::Within);
            (p.clone(), request)
        })
        .collect();
    for ip in ips {
        let slot = out
            .iter_mut()
            .find(|(p, _)| p.subnet.addr().is_ipv4() == ip.is_ipv4())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "network {} has no {} subnet for address {ip}",
                    spec.name,
                    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
                ))
            })?;
        if matches!(slot.1, AddressRequest::Static(_)) {
            return Err(Error::Invalid(format!(
                "more than one {} address given",
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        }
        slot.0.check(*ip)?;
        slot.1 = AddressRequest::Static(*ip);
    }
    Ok(out)
}

/// Attaches `req.target` to the network; returns the endpoint made.
pub fn connect(ctx: &Context, req: &ConnectRequest) -> Result<Endpoint> {
    // The definition is read under the network's lock: a `network rm` either
    // finished before (no network) or waits until this connect is done.
    let lock = network::lock_shared(ctx, req.network.as_str())?;
    match network::get(ctx, &req.network) {
        Ok(spec) => connected(ctx, &spec, req),
        Err(e) => {
            lock.remove_if_unused();
            Err(e)
        }
    }
}

/// [`connect`] to a network whose definition the caller has read before
/// (`spec` must be the definition of `req.network`).
pub fn connect_to(ctx: &Context, spec: &NetworkSpec, req: &ConnectRequest) -> Result<Endpoint> {
    let _lock = network::lock_shared(ctx, &spec.name)?;
    // Removed (or removed and made again) since the caller read it? Its
    // inbound policy may have changed meanwhile (a concurrent CNI ADD sets
    // it): the same network still, connected as it is now.
    match ctx.config()?.network(&spec.name)? {
        Some(now)
            if NetworkSpec {
                inbound: now.inbound,
                ..spec.clone()
            } == now =>
        {
            connected(ctx, &now, req)
        }
        Some(_) => Err(Error::Invalid(format!(
            "network {} was removed and created again meanwhile; try again",
            spec.name
        ))),
        None => Err(Error::UnknownNetwork(spec.name.clone())),
    }
}

/// The connect itself, under the network's lock held shared.
fn connected(ctx: &Context, spec: &NetworkSpec, req: &ConnectRequest) -> Result<Endpoint> {
    let requests = address_requests(spec, &req.ips, &req.bounds)?;
    req.routes.validate(&spec.name, &spec.pools)?;
    if spec.internal && !req.ports.is_empty() {
        return Err(Error::Invalid(format!(
            "network {} is internal: it cannot publish ports",
            spec.name
        )));
    }
    for port in &req.ports {
        port.check_host_address().map_err(Error::Invalid)?;
    }
    require_admin()?;
    let ns = open_target(&req.target)?;
    refuse_bridge_namespace(&ns, &req.target.to_string(), &spec.name)?;
    let inode = ns.inode()?;
    tracing::debug!("connect: target {} open", req.target);
    let mut state = ctx.state()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    // Already on this network (a pod connected at its creation, say): a
    // second interface only when asked for by name.
    let mut here = Vec::new();
    for ep in state.endpoints_in(&spec.name, inode)? {
        let live = host
            .link_by_name(&ep.host_ifname)
            .map_err(nl_err("host", "looking up a veth"))?
            .is_some();
        if live {
            here.push(ep);
        }
    }
    if let (Some(first), None) = (here.first(), &req.ifname) {
        return Err(Error::Invalid(format!(
            "{} is already connected to network {} (as {}); give --ifname for a second interface",
            req.target, spec.name, first.ifname
        )));
    }
    let id = match (&req.id, &req.ifname) {
        (Some(id), _) => format!("{}/{id}", spec.name),
        // A second interface of the namespace on this network.
        (None, Some(name)) if !here.is_empty() => format!("{}/{inode}:{name}", spec.name),
        (None, _) => format!("{}/{inode}", spec.name),
    };
    if let Some(old) = state.endpoint(&id)? {
        if host
            .link_by_name(&old.host_ifname)
            .map_err(nl_err("host", "looking up a veth"))?
            .is_some()
        {
            return Err(Error::Invalid(format!(
                "{} is already connected to network {} (as {})",
                req.target, spec.name, old.ifname
            )));
        }
        // Its namespace died without a disconnect (and the kernel deleted the
        // veth with it); the inode was reused. Drop the stale record.
        state.release(&old.id)?;
    }
    tracing::debug!("connect: state open, id {id}");
    let mut target_nl = ns.netlink()?;
    let taken: HashSet<String> = target_nl
        .links()
        .map_err(nl_err(ns.label(), "listing interfaces"))?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let ifname = match &req.ifname {
        Some(n) if taken.contains(n.as_str()) => {
            return Err(Error::InterfaceExists {
                ns: ns.label().into(),
                name: n.to_string(),
            })
        }
        Some(n) => n.to_string(),
        None => (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !taken.contains(n))
            .unwrap_or_default(),
    };

    let repaired = super::ruleset::reinstall_if_deleted(ctx)?;
    if !repaired.is_empty() {
        tracing::warn!(
            "nsnet's firewall tables were missing (deleted, or declared by an older nsnet) while networks were in use; declared them again whole first"
        );
        for line in &repaired {
            tracing::debug!("{line}");
        }
    }
    // From the bridge to the last kernel step: gc and check wait, and gc finds
    // a journal if this process dies (dropped after `rollback`, so after any undo).
    let _in_flight = super::lock::InFlight::begin(ctx, [id.as_str()])?;
    tracing::debug!("connect: target interfaces listed, journal written");
    let bridge = network::ensure_up(ctx, &mut host, spec)?;
    tracing::debug!("connect: bridge {} up", spec.bridge);
    let host_if = host_ifname(&id);
    let port_request = PortRequest {
        specs: &req.ports,
        host_busy: &port_in_use,
    };
    let mut endpoint = state
        .lease_and_record(
            &spec.name,
            &id,
            &requests,
            &port_request,
            |addresses, ports| Endpoint {
                id: id.clone(),
                network: spec.name.clone(),
                target: req.target.to_string(),
                netns_inode: inode,
                ifname: ifname.clone(),
                host_ifname: host_if.clone(),
                mac: req
                    .mac
                    .unwrap_or_else(|| default_mac(&id, &addresses))
                    .to_string(),
                addresses,
                ports,
                source_routes: None,
            },
        )?
        .map_err(|e| Error::Refused {
            what: format!("network {}", spec.name),
            source: e,
        })?;
    tracing::debug!("connect: leased and recorded");
    let mut rollback = Rollback::new();
    {
        let (dir, id) = (ctx.state_dir.clone(), id.clone());
        rollback.push(format!("leases of {id}"), move || {
            State::open(&dir)
                .and_then(|mut s| s.release(&id))
                .map_err(|e| e.to_string())
        });
    }

    host.add_veth(&VethSpec {
        name: &host_if,
        peer_name: &ifname,
        peer_netns: Some(ns.fd()),
        peer_mac: endpoint.mac.parse::<Mac>().ok().map(|m| m.0),
        mtu: spec.mtu,
        master: Some(bridge),
    })
    .map_err(|e| match e.errno() {
        // A bridge numbers its ports in 10 bits.
        Some(libc::EXFULL) => Error::Invalid(format!(
            "network {} is full: a Linux bridge takes at most 1023 ports",
            spec.name
        )),
        _ => nl_err("host", format!("creating veth {host_if}"))(e),
    })?;
    {
        let name = host_if.clone();
        rollback.push(format!("veth {name}"), move || delete_host_veth(&name));
    }
    // A bridge port needs no address of its own. Left on, IPv6 gives the host
    // end a link-local address whose DAD probe and MLD reports the bridge floods
    // to every other port: work that grows with the network (measured: a connect
    // at 1000 endpoints cost several times one at 10).
    super::disable_ipv6(&host_if)?;
    tracing::debug!("connect: veth {host_if} made");

    let peer = target_nl
        .link_by_name(&ifname)
        .map_err(nl_err(ns.label(), format!("looking up {ifname}")))?
        .ok_or_else(|| Error::InterfaceNotFound {
            ns: ns.label().into(),
            name: ifname.clone(),
        })?;
    for addr in &endpoint.addresses {
        target_nl
            .add_address(peer.index, addr)
            .map_err(nl_err(ns.label(), format!("adding address {addr}")))?;
    }
    // No address from the kernel's own choice: with IPv6 the interface gets
    // exactly one link-local address, the EUI-64 of its MAC, which its bridge
    // port lets through (`bridge nsnet`); without IPv6 none at all, so no
    // link-local address, DAD probe, solicitation or MLD report floods the
    // bridge. Through netlink, not /proc/sys: every namespace's `eth0` shares
    // one dentry name there, so a sysctl look-up costs O(namespaces)
    // (profiled: 10% of a connect at 1000 endpoints).
    target_nl
        .set_no_ipv6_autoconf(peer.index)
        .map_err(nl_err(ns.label(), format!("configuring IPv6 on {ifname}")))?;
    if spec.pools.iter().any(|p| p.subnet.addr().is_ipv6()) {
        let mac = endpoint.mac.parse::<Mac>().map(|m| m.0).unwrap_or_default();
        let ll = IpNet::new(IpAddr::V6(link_local(mac)), 64)
            .map_err(|e| Error::Invalid(format!("link-local address: {e}")))?;
        target_nl
            .add_address(peer.index, &ll)
            .map_err(nl_err(ns.label(), format!("adding address {ll}")))?;
        // No DAD on the endpoint's interface: nsnet hands out unique addresses,
        // and with hairpin mode on its port DAD would see its own probes and fail.
        // No router solicitations, and no router adverts or redirects taken
        // from anyone: nothing on an nsnet bridge may act as a router but the
        // gateway, whose default route nsnet sets below (CVE-2020-13401: a
        // container's advert would make it every neighbour's IPv6 router; the
        // bridge drops them too).
        let conf = format!("net/ipv6/conf/{ifname}");
        ns.within(|| {
            [
                "accept_dad",
                "router_solicitations",
                "accept_ra",
                "accept_redirects",
            ]
            .iter()
            .try_for_each(|key| super::sysctl(&format!("{conf}/{key}"), "0"))
        })??;
    }
    target_nl
        .set_up(peer.index, true)
        .map_err(nl_err(ns.label(), format!("bringing {ifname} up")))?;
    super::netns::lo_up(&mut target_nl, ns.label())?;
    let (pools, internal) = (&spec.pools, spec.internal);
    let had = super::routes::apply(
        &mut target_nl,
        ns.label(),
        peer.index,
        pools,
        internal,
        &req.routes,
    )?;
    if !spec.internal {
        let (nl, oif) = (&mut target_nl, peer.index);
        super::source_routes::connect(&state, &ns, nl, &mut rollback, oif, &mut endpoint, &had)?;
    }

    tracing::debug!("connect: {ifname} configured in {}", ns.label());
    let host_link = host
        .link_by_name(&host_if)
        .map_err(nl_err("host", format!("looking up {host_if}")))?
        .ok_or_else(|| Error::InterfaceNotFound {
            ns: "host".into(),
            name: host_if.clone(),
        })?;
    // Hairpin: with br_netfilter, a published port that leads back to the
    // endpoint that used it is bridged straight back out of its own port.
    // Isolation is not the kernel's port flag but `bridge nsnet`'s
    // `l2_isolated`, which lets published-port traffic between isolated ports
    // through (the flag would drop it whenever br_netfilter bridges it).
    if !endpoint.ports.is_empty() || req.hairpin {
        host.set_bridge_port(host_link.index, false, true)
            .map_err(nl_err(
                "host",
                format!("setting bridge port options of {host_if}"),
            ))?;
    }
    // The firewall elements before the port goes up: an `nsv…` port without
    // them passes nothing, so the endpoint is never on the bridge unguarded.
    // The network is up, so the tables exist, unless someone deleted them
    // since: never declare a bare one here (see `reinstall_if_deleted`).
    let mut fw = Firewall::open_existing()?.ok_or_else(table_deleted)?;
    fw.update_endpoints(&[], &[rules(&spec.bridge, spec.isolate, &endpoint)])?;
    tracing::debug!("connect: firewall elements added");
    {
        let (bridge, ep, isolate) = (spec.bridge.clone(), endpoint.clone(), spec.isolate);
        rollback.push("firewall elements", move || match Firewall::open_existing()
            .map_err(|e| e.to_string())?
        {
            Some(mut fw) => fw
                .update_endpoints(&[rules(&bridge, isolate, &ep)], &[])
                .map_err(|e| e.to_string()),
            None => Ok(()),
        });
    }
    host.set_up(host_link.index, true)
        .map_err(nl_err("host", format!("bringing {host_if} up")))?;
    tracing::debug!("connect: {host_if} up");
    flush_conntrack(&endpoint.ports)?;

    rollback.commit();
    Ok(endpoint)
}

/// The error of a connect that finds `table inet nsnet` gone half way.
pub(crate) fn table_deleted() -> Error {
    Error::Invalid(
        "table inet nsnet was deleted meanwhile (a ruleset flush?); run `nsnet firewall reload`"
            .into(),
    )
}

fn delete_host_veth(name: &str) -> std::result::Result<(), String> {
    let mut host = Netlink::new().map_err(|e| e.to_string())?;
    match host.link_by_name(name).map_err(|e| e.to_string())? {
        Some(l) => host.delete_link(l.index).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// An endpoint's MAC when none is asked for: `02:42` and its IPv4 address, as
/// Docker does (unique within a network, and easy to read in a capture), or
/// a locally administered address from its id on IPv6-only networks.
fn default_mac(id: &str, addresses: &[IpNet]) -> Mac {
    match addresses.iter().find_map(|a| match a {
        IpNet::V4(n) => Some(n.addr().octets()),
        _ => None,
    }) {
        Some([a, b, c, d]) => Mac([0x02, 0x42, a, b, c, d]),
        None => {
            let h = super::fnv1a(id).to_be_bytes();
            Mac([0x02, h[0], h[1], h[2], h[3], h[4]])
        }
    }
}

/// The firewall elements of an endpoint on `bridge` (`isolated`: an
/// `--isolate` network; removing with `true` is always safe).
pub(crate) fn rules<'a>(bridge: &'a str, isolated: bool, ep: &'a Endpoint) -> EndpointRules<'a> {
    let mac = ep.mac.parse::<Mac>().map(|m| m.0).unwrap_or_default();
    let has_v6 = ep.addresses.iter().any(|a| a.addr().is_ipv6());
    EndpointRules {
        bridge,
        port: &ep.host_ifname,
        mac,
        addresses: ep.addresses.iter().map(|a| a.addr()).collect(),
        link_local: has_v6.then(|| link_local(mac)),
        isolated,
        ports: &ep.ports,
    }
}

/// The IPv6 link-local address nsnet gives an endpoint's interface on a
/// network with IPv6: the modified EUI-64 of its MAC (RFC 4291), set by nsnet
/// itself rather than left to the namespace's `addr_gen_mode`, so that its
/// bridge port knows the one link-local source it may use.
pub(crate) fn link_local(mac: [u8; 6]) -> std::net::Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    std::net::Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

/// Whether a process on the host holds `proto/port` where `host` would publish
/// it (a TCP listener, a bound UDP socket): publishing it would silently steal
/// that process's traffic. Asked of the kernel by binding the port for a
/// moment: on the one address for a port published on one address (a process
/// on 127.0.0.1 does not block 203.0.113.1, one on every address does), else
/// on every address, dual stack where IPv6 exists. A few microseconds, where
/// reading /proc/net/{tcp,udp} costs milliseconds on a host with many
/// sockets. SCTP is not checked.
fn port_in_use(host: &crate::ports::HostAddr, proto: Proto, port: u16) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
    let try_bind = |addr: SocketAddr| -> std::io::Result<()> {
        match proto {
            // std sets SO_REUSEADDR, so only a listener (not TIME_WAIT) conflicts.
            Proto::Tcp => TcpListener::bind(addr).map(drop),
            Proto::Udp => UdpSocket::bind(addr).map(drop),
            Proto::Sctp => Ok(()),
        }
    };
    let result = match host {
        // An address the host does not have (EADDRNOTAVAIL): nobody listens there.
        crate::ports::HostAddr::Ip(ip) => try_bind(SocketAddr::new(*ip, port)),
        _ => match try_bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
            Err(e) if e.kind() != std::io::ErrorKind::AddrInUse => {
                // No IPv6 on this host: check IPv4 alone.
                try_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
            }
            other => other,
        },
    };
    matches!(result, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// [`flush_conntrack`] for `nsnet gc`, which releases endpoints in bulk.
pub fn forget_port_flows(ports: &[Published]) -> Result<()> {
    flush_conntrack(ports)
}

/// Deletes the conntrack entries of published UDP and SCTP ports, so that no
/// flow keeps going to an endpoint that is gone or was replaced (TCP flows end
/// with their connection).
fn flush_conntrack(ports: &[Published]) -> Result<()> {
    let targets: Vec<&Published> = ports.iter().filter(|p| p.proto != Proto::Tcp).collect();
    if targets.is_empty() {
        return Ok(());
    }
    let mut ct = conntrack::Conntrack::new().map_err(|e| Error::Conntrack(e.to_string()))?;
    for p in targets {
        let daddr = match p.host {
            crate::ports::HostAddr::Ip(ip) => Some(ip),
            _ => None,
        };
        ct.delete_matching(&conntrack::Filter {
            l4proto: p.proto.number(),
            dport: p.host_port,
            daddr,
        })
        .map_err(|e| Error::Conntrack(e.to_string()))?;
    }
    Ok(())
}

/// Deletes an endpoint's published ports and veth (its peer goes with it) and
/// releases its leases. Goes on past errors; returns every one it met.
pub fn teardown(host: &mut Netlink, state: &mut State, bridge: &str, ep: &Endpoint) -> Vec<String> {
    // Both kernel steps mostly wait for RCU grace periods (deleting a veth, an
    // nf_tables transaction that deletes): run them side by side, not in turn.
    // The nfnetlink socket stays open until the veth is gone: closing it flushes
    // the transaction's deferred destruction (a grace period of its own), and
    // doing that beside the veth deletion made a disconnect 34-37 ms instead of
    // 22 ms (measured; by the time the veth is gone that work is done and the
    // close is free).
    let (mut errors, veth_errors) = std::thread::scope(|scope| {
        let firewall = scope.spawn(|| {
            let mut errors = Vec::new();
            let mut open = None;
            match Firewall::open_existing() {
                Ok(Some(mut fw)) => {
                    if let Err(e) = fw.update_endpoints(&[rules(bridge, true, ep)], &[]) {
                        errors.push(format!("removing firewall elements: {e}"));
                    }
                    tracing::debug!("teardown {}: firewall elements removed", ep.id);
                    open = Some(fw);
                }
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
            if let Err(e) = flush_conntrack(&ep.ports) {
                errors.push(e.to_string());
            }
            (errors, open)
        });
        let veth = delete_veth(host, &ep.host_ifname);
        tracing::debug!("teardown {}: veth {} deleted", ep.id, ep.host_ifname);
        let (fw_errors, open) = firewall
            .join()
            .unwrap_or_else(|_| (vec!["the firewall thread panicked".into()], None));
        drop(open);
        (fw_errors, veth)
    });
    errors.extend(veth_errors);
    errors.extend(super::source_routes::delete_for(ep));
    if let Err(e) = state.release(&ep.id) {
        errors.push(e.to_string());
    }
    tracing::debug!("teardown {}: released", ep.id);
    errors
}

/// Deletes a host-side veth if it exists (its peer goes with it).
fn delete_veth(host: &mut Netlink, name: &str) -> Option<String> {
    match host.link_by_name(name) {
        Ok(Some(link)) => match host.delete_link(link.index) {
            // Gone meanwhile (its namespace died): nothing left to delete.
            Err(e) if e.errno() != Some(libc::ENODEV) => Some(format!("deleting veth {name}: {e}")),
            _ => None,
        },
        Ok(None) => None,
        Err(e) => Some(format!("looking up veth {name}: {e}")),
    }
}

/// Detaches the endpoint that was connected with `ConnectRequest::id` = `id`
/// (idempotent: `Ok(false)` when there is no such endpoint). Works when its
/// namespace is gone: the endpoint is found by id, its veth by name.
pub fn disconnect_id(ctx: &Context, network: &NetworkName, id: &str) -> Result<bool> {
    let spec = network::get(ctx, network)?;
    require_admin()?;
    let mut state = ctx.state()?;
    let full = format!("{}/{id}", spec.name);
    let Some(ep) = state.endpoint(&full)? else {
        return Ok(false);
    };
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let _in_flight = super::lock::InFlight::begin(ctx, [ep.id.as_str()])?;
    let errors = teardown(&mut host, &mut state, &spec.bridge, &ep);
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(Error::Teardown {
            what: format!("disconnecting {id} from {network}"),
            errors,
        })
    }
}

/// Detaches the endpoint `ep` (a pod's, when the pod goes): as
/// [`disconnect_id`], and also when its network's definition is gone.
pub fn disconnect_endpoint(ctx: &Context, ep: &Endpoint) -> Result<()> {
    require_admin()?;
    let bridge = ctx
        .config()?
        .network(&ep.network)?
        .map(|n| n.bridge)
        .unwrap_or_default();
    let mut state = ctx.state()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let _in_flight = super::lock::InFlight::begin(ctx, [ep.id.as_str()])?;
    let errors = teardown(&mut host, &mut state, &bridge, ep);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Teardown {
            what: format!("disconnecting {} from {}", ep.target, ep.network),
            errors,
        })
    }
}

/// Detaches `target` from the network (only its interface `ifname`, if given).
pub fn disconnect(
    ctx: &Context,
    network: &NetworkName,
    target: &Target,
    ifname: Option<&IfName>,
) -> Result<()> {
    let spec = network::get(ctx, network)?;
    require_admin()?;
    let mut state = ctx.state()?;
    // A live target is matched by its namespace (an indexed look-up); a dead one
    // by how it was named.
    let inode = open_target(target).ok().and_then(|ns| ns.inode().ok());
    let label = target.to_string();
    let candidates = match inode {
        Some(i) => state.endpoints_in(&spec.name, i)?,
        None => state
            .endpoints(Some(&spec.name))?
            .into_iter()
            .filter(|e| e.target == label)
            .collect(),
    };
    let found: Vec<Endpoint> = candidates
        .into_iter()
        .filter(|e| ifname.is_none_or(|n| e.ifname == n.as_str()))
        .collect();
    if found.is_empty() {
        if inode.is_none() {
            // Say why: the target itself is missing.
            open_target(target)?;
        }
        return Err(Error::Invalid(format!(
            "{target} is not connected to network {network}"
        )));
    }
    tracing::debug!("disconnect: {} endpoint(s) found", found.len());
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let _in_flight = super::lock::InFlight::begin(ctx, found.iter().map(|e| e.id.as_str()))?;
    let errors: Vec<String> = found
        .iter()
        .flat_map(|ep| teardown(&mut host, &mut state, &spec.bridge, ep))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Teardown {
            what: format!("disconnecting {target} from {network}"),
            errors,
        })
    }
}
