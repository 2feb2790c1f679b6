//! Clusters: a node's pod network is an ordinary nsnet network; its peers
//! (the other nodes, each with a node address and a pod subnet) are a desired
//! state that is diffed against the kernel objects nsnet owns — routes marked
//! with [`RTPROT_NSNET`], and for VXLAN the device `nsvx…` with its permanent
//! neighbour and FDB entries — and only the difference is applied. No daemon:
//! a node agent feeds the peers (`kubectl get nodes -o json | nsnet cluster
//! peers NET -`).
//!
//! Backends:
//! - `host-gw`: one route per peer, `podCIDR via nodeIP` (peers must be on a
//!   directly connected subnet).
//! - `vxlan` (flannel's wire format: VNI 1, UDP 8472 by default): a VXLAN
//!   device without learning; this node's VTEP address is the network address
//!   of its pod subnet (a /32 on the device), a peer's likewise; per peer a
//!   route `podCIDR via VTEP onlink`, a neighbour entry VTEP → VTEP MAC and an
//!   FDB entry VTEP MAC → node IP. A VTEP's MAC is derived from its node IP
//!   ([`vtep_mac`]), so it is stable across restarts and needs no exchange.
//!
//! Traffic from the network to the cluster CIDR is not masqueraded, and
//! traffic from the cluster CIDR and the nodes' addresses is let in: elements
//! of `cluster4` and `nodes4` in `table inet nsnet`.

use super::{network, nl_err, Context, Error, Result};
use crate::firewall::{self, Firewall};
use crate::names::NetworkName;
use crate::netlink::overlay::{directly_connected, RTPROT_NSNET};
use crate::netlink::{Fdb, LinkKind, Neighbour, Netlink, PeerRoute, VxlanSpec};
use crate::privilege::require_admin;
use crate::store::cluster::{Backend, ClusterSpec, Peer};
use crate::store::NetworkSpec;
use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// VXLAN's overhead on an IPv4 underlay: outer IPv4, UDP and VXLAN headers and
/// the inner Ethernet header.
const VXLAN_OVERHEAD: u32 = 50;
pub const DEFAULT_VNI: u32 = 1;
pub const DEFAULT_PORT: u16 = 8472;

/// A validated `cluster init`.
#[derive(Debug, Clone)]
pub struct InitRequest {
    pub network: NetworkName,
    pub node_ip: Ipv4Addr,
    pub cluster_cidr: Ipv4Net,
    pub backend: Backend,
    pub vni: Option<u32>,
    pub port: Option<u16>,
}

/// What `cluster peers` (or `init`) changed in the kernel.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Applied {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The VXLAN device of a clustered network (derived from the network's name).
pub fn vxlan_name(network: &str) -> String {
    crate::store::layout::vxlan_ifname(network)
}

/// A VTEP's MAC: locally administered, `02:4e` and its node's IPv4 address.
pub fn vtep_mac(node_ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = node_ip.octets();
    [0x02, 0x4e, a, b, c, d]
}

fn v4_subnet(spec: &NetworkSpec) -> Result<Ipv4Net> {
    spec.pools
        .iter()
        .find_map(|p| match p.subnet {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        })
        .ok_or_else(|| {
            Error::Invalid(format!(
                "network {}: a cluster's pod network needs an IPv4 subnet",
                spec.name
            ))
        })
}

/// The MTU of the interface holding `ip` on this host.
fn underlay_mtu(host: &mut Netlink, ip: Ipv4Addr) -> Result<u32> {
    let addrs = host
        .addresses(None)
        .map_err(nl_err("host", "listing addresses"))?;
    let index = addrs
        .iter()
        .find(|a| a.net.addr() == IpAddr::V4(ip))
        .map(|a| a.index)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--node-ip {ip} is not an address of this host (add it to the node's interface first)"
            ))
        })?;
    let link = host
        .link_by_index(index)
        .map_err(nl_err("host", "looking up the node's interface"))?;
    Ok(link.and_then(|l| l.mtu).unwrap_or(1500))
}

/// `cluster init`: makes NETWORK this node's pod network (or changes its
/// settings: another backend swaps backends, keeping the peers).
pub fn init(ctx: &Context, req: &InitRequest) -> Result<(ClusterSpec, Applied)> {
    let spec = network::get(ctx, &req.network)?;
    let subnet = v4_subnet(&spec)?;
    if !req.cluster_cidr.contains(&subnet) {
        return Err(Error::Invalid(format!(
            "network {}: its subnet {subnet} is not inside the cluster CIDR {}",
            spec.name, req.cluster_cidr
        )));
    }
    let vni = req.vni.unwrap_or(DEFAULT_VNI);
    if !(1..=0x00ff_ffff).contains(&vni) {
        return Err(Error::Invalid(format!(
            "--vni {vni}: a VXLAN network identifier is 1 to 16777215"
        )));
    }
    let port = req.port.unwrap_or(DEFAULT_PORT);
    if port == 0 {
        return Err(Error::Invalid("--vxlan-port 0: pick a UDP port".into()));
    }
    require_admin()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let underlay = underlay_mtu(&mut host, req.node_ip)?;
    let config = ctx.config()?;
    let old = config.cluster(&spec.name)?;
    let peers = old.as_ref().map(|o| o.peers.clone()).unwrap_or_default();
    let mut cluster = ClusterSpec {
        network: spec.name.clone(),
        node_ip: req.node_ip,
        cluster_cidr: req.cluster_cidr,
        backend: req.backend,
        vni,
        port,
        mtu_before: old.as_ref().and_then(|o| o.mtu_before),
        peers,
    };
    validate_peers(&cluster, &subnet, &cluster.peers, &mut host)?;
    // Another backend (or other VXLAN settings): take the old one's kernel
    // objects away first; the peers' routes are made again below.
    if let Some(old) = &old {
        if old.backend != cluster.backend
            || old.vni != cluster.vni
            || old.port != cluster.port
            || old.node_ip != cluster.node_ip
        {
            teardown_kernel(&mut host, old, &spec)?;
        }
    }
    // VXLAN lowers the network's MTU to what fits the underlay; leaving
    // host-gw (or the cluster) puts the old one back.
    let mut spec = spec;
    if cluster.backend == Backend::Vxlan {
        let mtu = underlay.saturating_sub(VXLAN_OVERHEAD);
        if spec.mtu.unwrap_or(1500) > mtu {
            if old.is_none() || cluster.mtu_before.is_none() {
                cluster.mtu_before = Some(spec.mtu.unwrap_or(0));
            }
            spec.mtu = Some(mtu);
            config.update_network(&spec)?;
            set_bridge_mtu(&mut host, &spec)?;
        }
    } else if let Some(before) = cluster.mtu_before.take() {
        spec.mtu = (before != 0).then_some(before);
        config.update_network(&spec)?;
        set_bridge_mtu(&mut host, &spec)?;
    }
    config.put_cluster(&cluster)?;
    let applied = apply(ctx, &mut host, &cluster, &spec, old.as_ref())?;
    Ok((cluster, applied))
}

fn set_bridge_mtu(host: &mut Netlink, spec: &NetworkSpec) -> Result<()> {
    if let Some(link) = host
        .link_by_name(&spec.bridge)
        .map_err(nl_err("host", "looking up the bridge"))?
    {
        host.set_mtu(link.index, spec.mtu.unwrap_or(1500))
            .map_err(nl_err(
                "host",
                format!("setting the MTU of {}", spec.bridge),
            ))?;
    }
    Ok(())
}

/// Parses a peers file: a list of `{"name", "nodeIP", "podCIDR"}` or a
/// Kubernetes NodeList (`kubectl get nodes -o json`).
pub fn parse_peers(bytes: &[u8]) -> Result<Vec<Peer>> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Invalid(format!("the peers file is not valid JSON: {e}")))?;
    let bad = |m: String| Error::Invalid(format!("the peers file: {m}"));
    let mut out = Vec::new();
    if let Some(list) = v.as_array() {
        for (i, p) in list.iter().enumerate() {
            let field = |k: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("entry {i} lacks the string {k:?}")))
            };
            let name = field("name")?.to_owned();
            let node_ip = field("nodeIP")?
                .parse()
                .map_err(|_| bad(format!("entry {i} ({name}): nodeIP is not an IPv4 address")))?;
            let pod_cidr: Ipv4Net = field("podCIDR")?
                .parse()
                .map_err(|_| bad(format!("entry {i} ({name}): podCIDR is not an IPv4 CIDR")))?;
            out.push(Peer {
                name,
                node_ip,
                pod_cidr: pod_cidr.trunc(),
            });
        }
        return Ok(out);
    }
    if v.get("kind").and_then(Value::as_str) != Some("NodeList") {
        return Err(bad(
            "expected a list of {\"name\", \"nodeIP\", \"podCIDR\"} or a NodeList (kubectl get nodes -o json)".into(),
        ));
    }
    for (i, node) in v["items"].as_array().into_iter().flatten().enumerate() {
        let name = node["metadata"]["name"]
            .as_str()
            .ok_or_else(|| bad(format!("node {i} has no metadata.name")))?
            .to_owned();
        let node_ip = node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["type"] == "InternalIP")
            .find_map(|a| a["address"].as_str()?.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| bad(format!("node {name} has no IPv4 InternalIP address")))?;
        let cidrs: Vec<&str> = match node["spec"]["podCIDRs"].as_array() {
            Some(a) => a.iter().filter_map(Value::as_str).collect(),
            None => node["spec"]["podCIDR"].as_str().into_iter().collect(),
        };
        // Dual-stack nodes list an IPv6 pod CIDR too; clusters route IPv4.
        let Some(pod_cidr) = cidrs.iter().find_map(|c| c.parse::<Ipv4Net>().ok()) else {
            tracing::warn!("node {name} has no IPv4 pod CIDR yet; skipped");
            continue;
        };
        out.push(Peer {
            name,
            node_ip,
            pod_cidr: pod_cidr.trunc(),
        });
    }
    Ok(out)
}

/// Refuses peers that cannot work, before anything changes.
fn validate_peers(
    cluster: &ClusterSpec,
    own: &Ipv4Net,
    peers: &[Peer],
    host: &mut Netlink,
) -> Result<()> {
    let routes = if cluster.backend == Backend::HostGw {
        host.routes().map_err(nl_err("host", "listing routes"))?
    } else {
        Vec::new()
    };
    let mut ips = HashMap::new();
    for (i, p) in peers.iter().enumerate() {
        if !cluster.cluster_cidr.contains(&p.pod_cidr) {
            return Err(Error::Invalid(format!(
                "peer {}: pod CIDR {} is outside the cluster CIDR {}",
                p.name, p.pod_cidr, cluster.cluster_cidr
            )));
        }
        let overlaps =
            |a: &Ipv4Net, b: &Ipv4Net| a.contains(&b.network()) || b.contains(&a.network());
        if overlaps(&p.pod_cidr, own) {
            return Err(Error::Invalid(format!(
                "peer {}: pod CIDR {} overlaps this node's {own}",
                p.name, p.pod_cidr
            )));
        }
        if let Some(q) = peers[..i]
            .iter()
            .find(|q| overlaps(&q.pod_cidr, &p.pod_cidr))
        {
            return Err(Error::Invalid(format!(
                "peers {} and {}: pod CIDRs {} and {} overlap",
                q.name, p.name, q.pod_cidr, p.pod_cidr
            )));
        }
        if let Some(q) = ips.insert(p.node_ip, &p.name) {
            return Err(Error::Invalid(format!(
                "peers {q} and {}: both have node IP {}",
                p.name, p.node_ip
            )));
        }
        if cluster.backend == Backend::HostGw && !directly_connected(&routes, p.node_ip) {
            return Err(Error::Invalid(format!(
                "peer {}: node IP {} is not on a directly connected subnet, so host-gw cannot route to it; use --backend vxlan",
                p.name, p.node_ip
            )));
        }
    }
    Ok(())
}

/// `cluster peers`: the desired set of other nodes; applies the difference.
pub fn set_peers(ctx: &Context, network: &NetworkName, peers: Vec<Peer>) -> Result<Applied> {
    let spec = network::get(ctx, network)?;
    let config = ctx.config()?;
    let mut cluster = config.cluster(&spec.name)?.ok_or_else(|| {
        Error::Invalid(format!(
            "network {network} is not clustered: run `nsnet cluster init {network} ...` first"
        ))
    })?;
    let own = v4_subnet(&spec)?;
    // This node's own entry (a NodeList lists every node) is skipped.
    let peers: Vec<Peer> = peers
        .into_iter()
        .filter(|p| p.node_ip != cluster.node_ip && p.pod_cidr != own)
        .collect();
    require_admin()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    validate_peers(&cluster, &own, &peers, &mut host)?;
    let old = cluster.clone();
    cluster.peers = peers;
    if cluster.peers != old.peers {
        config.put_cluster(&cluster)?;
    }
    apply(ctx, &mut host, &cluster, &spec, Some(&old))
}

/// `cluster leave`: removes every kernel object and element of the cluster
/// and its definition; the network stays.
pub fn leave(ctx: &Context, network: &NetworkName) -> Result<()> {
    let spec = network::get(ctx, network)?;
    let config = ctx.config()?;
    let Some(cluster) = config.cluster(&spec.name)? else {
        return Err(Error::Invalid(format!(
            "network {network} is not clustered"
        )));
    };
    require_admin()?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    teardown_kernel(&mut host, &cluster, &spec)?;
    if let Some(mut fw) = Firewall::open_existing()? {
        fw.update_cluster(&elements(&cluster, &spec), &[])?;
    }
    if let Some(before) = cluster.mtu_before {
        let mut spec = spec.clone();
        spec.mtu = (before != 0).then_some(before);
        config.update_network(&spec)?;
        set_bridge_mtu(&mut host, &spec)?;
    }
    config.delete_cluster(&spec.name)?;
    Ok(())
}

/// For `network rm`: leaves the network's cluster if it has one.
pub fn leave_if_clustered(ctx: &Context, spec: &NetworkSpec) -> Result<()> {
    if ctx.config()?.cluster(&spec.name)?.is_some() {
        let name: NetworkName = spec
            .name
            .parse()
            .map_err(|e| Error::Invalid(format!("network {}: {e}", spec.name)))?;
        leave(ctx, &name)?;
    }
    Ok(())
}

/// The firewall elements a cluster adds to its network (for `check`/`reload`).
pub fn firewall_elements(
    cluster: &ClusterSpec,
    spec: &NetworkSpec,
) -> Vec<(&'static str, crate::firewall::nfnl::Element)> {
    elements(cluster, spec)
}

/// The `cluster4` elements of a cluster: its CIDR and every node address.
fn elements(
    cluster: &ClusterSpec,
    spec: &NetworkSpec,
) -> Vec<(&'static str, crate::firewall::nfnl::Element)> {
    let mut nodes: Vec<Ipv4Addr> = std::iter::once(cluster.node_ip)
        .chain(cluster.peers.iter().map(|p| p.node_ip))
        .collect();
    nodes.sort();
    nodes.dedup();
    firewall::cluster_elements(&spec.bridge, cluster.cluster_cidr, &nodes)
}

/// The kernel's side of a cluster as nsnet wants it.
struct Desired {
    routes: HashSet<PeerRoute>,
    neighbours: HashSet<Neighbour>,
    fdbs: HashSet<Fdb>,
}

fn desired(cluster: &ClusterSpec, vxlan_index: Option<u32>) -> Desired {
    let mut d = Desired {
        routes: HashSet::new(),
        neighbours: HashSet::new(),
        fdbs: HashSet::new(),
    };
    for p in &cluster.peers {
        match (cluster.backend, vxlan_index) {
            (Backend::Vxlan, Some(index)) => {
                let vtep = p.pod_cidr.network();
                d.routes.insert(PeerRoute {
                    dest: p.pod_cidr,
                    gateway: vtep,
                    oif: Some(index),
                });
                d.neighbours.insert(Neighbour {
                    ip: vtep,
                    mac: vtep_mac(p.node_ip),
                });
                d.fdbs.insert(Fdb {
                    mac: vtep_mac(p.node_ip),
                    dst: p.node_ip,
                });
            }
            _ => {
                d.routes.insert(PeerRoute {
                    dest: p.pod_cidr,
                    gateway: p.node_ip,
                    oif: None,
                });
            }
        }
    }
    d
}

/// nsnet's cluster routes of this cluster (inside its cluster CIDR).
fn owned_routes(host: &mut Netlink, cluster: &ClusterSpec) -> Result<Vec<PeerRoute>> {
    Ok(host
        .peer_routes()
        .map_err(nl_err("host", "listing routes"))?
        .into_iter()
        .filter(|r| cluster.cluster_cidr.contains(&r.dest))
        .collect())
}

/// Makes the VXLAN device right (created, its settings, its VTEP address,
/// up); returns its index.
fn ensure_vxlan(
    host: &mut Netlink,
    cluster: &ClusterSpec,
    spec: &NetworkSpec,
    own: &Ipv4Net,
) -> Result<u32> {
    let name = vxlan_name(&cluster.network);
    let mtu = spec.mtu.unwrap_or(1500);
    let want = (cluster.vni, Some(cluster.node_ip), cluster.port);
    let existing = host
        .link_by_name(&name)
        .map_err(nl_err("host", format!("looking up {name}")))?;
    let index = match existing {
        Some(l)
            if l.kind == LinkKind::Other("vxlan".into())
                && host
                    .vxlan_info(l.index)
                    .map_err(nl_err("host", format!("reading {name}")))?
                    == Some(want) =>
        {
            l.index
        }
        other => {
            if let Some(l) = other {
                host.delete_link(l.index)
                    .map_err(nl_err("host", format!("deleting {name}")))?;
            }
            host.add_vxlan(&VxlanSpec {
                name: &name,
                vni: cluster.vni,
                local: cluster.node_ip,
                port: cluster.port,
                mtu,
                mac: vtep_mac(cluster.node_ip),
            })
            .map_err(nl_err("host", format!("creating VXLAN device {name}")))?;
            host.link_by_name(&name)
                .map_err(nl_err("host", format!("looking up {name}")))?
                .map(|l| l.index)
                .ok_or_else(|| Error::InterfaceNotFound {
                    ns: "host".into(),
                    name: name.clone(),
                })?
        }
    };
    let vtep = IpNet::V4(Ipv4Net::from(own.network()));
    let present = host
        .addresses(Some(index))
        .map_err(nl_err("host", format!("listing {name}'s addresses")))?;
    if !present.iter().any(|a| a.net == vtep) {
        host.add_address(index, &vtep)
            .map_err(nl_err("host", format!("adding {vtep} to {name}")))?;
    }
    host.set_up(index, true)
        .map_err(nl_err("host", format!("bringing {name} up")))?;
    Ok(index)
}

/// Brings the kernel and the firewall to the cluster's desired state,
/// changing only what differs. `old`: the definition before this change
/// (its firewall elements are replaced).
fn apply(
    _ctx: &Context,
    host: &mut Netlink,
    cluster: &ClusterSpec,
    spec: &NetworkSpec,
    old: Option<&ClusterSpec>,
) -> Result<Applied> {
    let own = v4_subnet(spec)?;
    let mut applied = Applied::default();
    let vxlan = match cluster.backend {
        Backend::Vxlan => Some(ensure_vxlan(host, cluster, spec, &own)?),
        Backend::HostGw => None,
    };
    let want = desired(cluster, vxlan);
    let have: HashSet<PeerRoute> = owned_routes(host, cluster)?.into_iter().collect();
    for r in have.difference(&want.routes) {
        host.delete_peer_route(r)
            .map_err(nl_err("host", format!("deleting route {}", r.dest)))?;
        applied
            .removed
            .push(format!("route {} via {}", r.dest, r.gateway));
    }
    if let Some(index) = vxlan {
        let have: HashSet<Neighbour> = host
            .neighbours(index)
            .map_err(nl_err("host", "listing neighbours"))?
            .into_iter()
            .collect();
        for n in have.difference(&want.neighbours) {
            host.delete_neighbour(index, n)
                .map_err(nl_err("host", format!("deleting neighbour {}", n.ip)))?;
            applied.removed.push(format!("neighbour {}", n.ip));
        }
        for n in want.neighbours.difference(&have) {
            host.set_neighbour(index, n)
                .map_err(nl_err("host", format!("adding neighbour {}", n.ip)))?;
            applied.added.push(format!("neighbour {}", n.ip));
        }
        let have: HashSet<Fdb> = host
            .fdbs(index)
            .map_err(nl_err("host", "listing FDB entries"))?
            .into_iter()
            .collect();
        for f in have.difference(&want.fdbs) {
            host.delete_fdb(index, f)
                .map_err(nl_err("host", format!("deleting FDB entry for {}", f.dst)))?;
            applied.removed.push(format!("fdb {}", f.dst));
        }
        for f in want.fdbs.difference(&have) {
            host.set_fdb(index, f)
                .map_err(nl_err("host", format!("adding FDB entry for {}", f.dst)))?;
            applied.added.push(format!("fdb {}", f.dst));
        }
    }
    for r in want.routes.difference(&have) {
        host.add_peer_route(r).map_err(nl_err(
            "host",
            format!("adding route {} via {}", r.dest, r.gateway),
        ))?;
        applied
            .added
            .push(format!("route {} via {}", r.dest, r.gateway));
    }
    // The firewall: only when the network is up (its elements come with it).
    if let Some(mut fw) = Firewall::open_existing()? {
        let up = host
            .link_by_name(&spec.bridge)
            .map_err(nl_err("host", "looking up the bridge"))?
            .is_some();
        if up {
            let new = elements(cluster, spec);
            let before = old.map(|o| elements(o, spec)).unwrap_or_default();
            if !fw.missing_elements(&before)?.is_empty() {
                // Something deleted them by hand (or the table was declared
                // again): put the whole set back.
                fw.update_cluster(&before, &new)?;
            } else {
                // Only the difference: every change to an interval set makes
                // the kernel rebuild its lookup, so 500 peers changed one by
                // one cost 200 ms where one element costs a fraction of one.
                let gone: Vec<_> = before
                    .iter()
                    .filter(|e| !new.contains(e))
                    .cloned()
                    .collect();
                let added: Vec<_> = new
                    .iter()
                    .filter(|e| !before.contains(e))
                    .cloned()
                    .collect();
                fw.update_cluster(&gone, &added)?;
            }
        }
    }
    Ok(applied)
}

/// Deletes the cluster's routes and VXLAN device (its neighbour and FDB
/// entries go with it).
fn teardown_kernel(host: &mut Netlink, cluster: &ClusterSpec, _spec: &NetworkSpec) -> Result<()> {
    for r in owned_routes(host, cluster)? {
        host.delete_peer_route(&r)
            .map_err(nl_err("host", format!("deleting route {}", r.dest)))?;
    }
    let name = vxlan_name(&cluster.network);
    if let Some(l) = host
        .link_by_name(&name)
        .map_err(nl_err("host", format!("looking up {name}")))?
    {
        host.delete_link(l.index)
            .map_err(nl_err("host", format!("deleting {name}")))?;
    }
    Ok(())
}

/// Makes a network's cluster objects again (after a reboot, or after `ip
/// link del` of the bridge): called when the network comes up, by `firewall
/// reload` and by `gc`. Returns what changed.
pub fn reapply(ctx: &Context, spec: &NetworkSpec) -> Result<Applied> {
    let Some(cluster) = ctx.config()?.cluster(&spec.name)? else {
        return Ok(Applied::default());
    };
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    apply(ctx, &mut host, &cluster, spec, Some(&cluster))
}

/// What differs between a cluster's definition and the kernel (for `check`).
pub fn problems(ctx: &Context, spec: &NetworkSpec) -> Result<Vec<String>> {
    let Some(cluster) = ctx.config()?.cluster(&spec.name)? else {
        return Ok(Vec::new());
    };
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let mut out = Vec::new();
    let vxlan = if cluster.backend == Backend::Vxlan {
        let name = vxlan_name(&cluster.network);
        match host
            .link_by_name(&name)
            .map_err(nl_err("host", format!("looking up {name}")))?
        {
            Some(l) => Some(l.index),
            None => {
                out.push(format!("VXLAN device {name} is missing"));
                None
            }
        }
    } else {
        None
    };
    let want = desired(&cluster, vxlan);
    let have: HashSet<PeerRoute> = owned_routes(&mut host, &cluster)?.into_iter().collect();
    for r in want.routes.difference(&have) {
        if cluster.backend == Backend::HostGw || vxlan.is_some() {
            out.push(format!("route {} via {} is missing", r.dest, r.gateway));
        }
    }
    for r in have.difference(&want.routes) {
        out.push(format!(
            "route {} via {} belongs to no peer",
            r.dest, r.gateway
        ));
    }
    if let Some(index) = vxlan {
        let have: HashSet<Neighbour> = host
            .neighbours(index)
            .map_err(nl_err("host", "listing neighbours"))?
            .into_iter()
            .collect();
        for n in want.neighbours.difference(&have) {
            out.push(format!("neighbour entry {} is missing", n.ip));
        }
        let have: HashSet<Fdb> = host
            .fdbs(index)
            .map_err(nl_err("host", "listing FDB entries"))?
            .into_iter()
            .collect();
        for f in want.fdbs.difference(&have) {
            out.push(format!("FDB entry for node {} is missing", f.dst));
        }
    }
    let bridge_up = host
        .link_by_name(&spec.bridge)
        .map_err(nl_err("host", "looking up the bridge"))?
        .is_some();
    if bridge_up {
        if let Some(mut fw) = Firewall::open_existing()? {
            if !fw.missing_elements(&elements(&cluster, spec))?.is_empty() {
                out.push("nftables sets cluster4/nodes4 lack the cluster's ranges".into());
            }
        }
    }
    Ok(out)
}

/// `cluster show`: the definition and the kernel objects, for JSON.
pub fn show(ctx: &Context, network: &NetworkName) -> Result<Value> {
    let spec = network::get(ctx, network)?;
    let Some(cluster) = ctx.config()?.cluster(&spec.name)? else {
        return Err(Error::Invalid(format!(
            "network {network} is not clustered"
        )));
    };
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let routes: Vec<String> = owned_routes(&mut host, &cluster)?
        .iter()
        .map(|r| format!("{} via {}", r.dest, r.gateway))
        .collect();
    Ok(serde_json::json!({
        "network": cluster.network,
        "node_ip": cluster.node_ip,
        "pod_cidr": v4_subnet(&spec)?,
        "cluster_cidr": cluster.cluster_cidr,
        "backend": cluster.backend.to_string(),
        "vni": (cluster.backend == Backend::Vxlan).then_some(cluster.vni),
        "vxlan_port": (cluster.backend == Backend::Vxlan).then_some(cluster.port),
        "vxlan_device": (cluster.backend == Backend::Vxlan).then(|| vxlan_name(&cluster.network)),
        "mtu": spec.mtu,
        "peers": cluster.peers,
        "routes": routes,
        "route_protocol": RTPROT_NSNET,
    }))
}
