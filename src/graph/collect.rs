//! Reading the topology: namespaces, their links and addresses from the kernel,
//! networks, endpoints and ports from the store.

use super::{
    Attachment, Error, Interface, Namespace, Network, NsKind, Peer, Port, Result, Topology,
};
use crate::netlink::Netlink;
use crate::netns::{self, Netns};
use crate::ops::Context;
use crate::store::{Config, Endpoint, PodRecord, State};
use netlink_packet_route::link::{
    InfoBridgePort, InfoKind, InfoPortData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;
use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A namespace found, open, before its links are read.
struct Found {
    name: String,
    aliases: Vec<String>,
    kind: NsKind,
    ns: Netns,
    inode: u64,
}

/// A link as the graph needs it: [`crate::netlink::Link`] plus where its peer is.
struct RawLink {
    iface: Interface,
    master: Option<u32>,
    /// `IFLA_LINK`: the peer's index (in the peer's namespace).
    link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer's namespace, as this namespace numbers it.
    link_netnsid: Option<i32>,
}

/// Reads the live topology. Needs root (it enters namespaces); changes nothing,
/// not even the store (a store that does not exist yet reads as empty).
pub fn collect(ctx: &Context) -> Result<Topology> {
    Ok(collect_open(ctx)?.0)
}

/// [`collect`], with each namespace left open (same order as
/// `Topology::namespaces`), for callers that look further into them.
pub(crate) fn collect_open(ctx: &Context) -> Result<(Topology, Vec<Netns>)> {
    let state = State::open_read(&ctx.state_dir)?;
    let config = Config::open_read(&ctx.config_dir)?;
    let pods = match &state {
        Some(s) => s.pods()?,
        None => Vec::new(),
    };
    let endpoints = match &state {
        Some(s) => s.endpoints(None)?,
        None => Vec::new(),
    };
    let found = find_namespaces(ctx, &pods, &endpoints)?;
    let mut read = Vec::new();
    for f in found {
        let is_host = f.kind == NsKind::Host;
        match read_namespace(&f) {
            Ok((nl, links)) => read.push((f, nl, links)),
            // Namespaces held only by a process may vanish while we look.
            Err(e) if is_host => return Err(e),
            Err(e) => tracing::debug!("skipping namespace {}: {e}", f.name),
        }
    }
    // A namespace that only a process holds is shown when it is connected to
    // something: one with only `lo` is noise.
    read.retain(|(f, _, links)| {
        !matches!(f.kind, NsKind::Process { .. })
            || links.iter().any(|l| l.iface.kind != "loopback")
    });
    let peers = resolve_peers(&mut read);
    let networks = match &config {
        Some(c) => c.networks()?,
        None => Vec::new(),
    };
    let mut namespaces = Vec::new();
    let mut handles = Vec::new();
    for ((f, _, links), peers) in read.into_iter().zip(peers) {
        let by_index: HashMap<u32, String> = links
            .iter()
            .map(|l| (l.iface.index, l.iface.name.clone()))
            .collect();
        let mut interfaces = Vec::new();
        for (l, peer) in links.into_iter().zip(peers) {
            let mut iface = l.iface;
            iface.master = l.master.and_then(|m| by_index.get(&m).cloned());
            iface.peer = peer;
            if f.kind == NsKind::Host && iface.kind == "bridge" {
                iface.network = networks
                    .iter()
                    .find(|n| n.bridge == iface.name)
                    .map(|n| n.name.clone());
            }
            interfaces.push(iface);
        }
        interfaces.sort_by_key(|i| i.index);
        handles.push(f.ns);
        namespaces.push(Namespace {
            name: f.name,
            aliases: f.aliases,
            kind: f.kind,
            inode: f.inode,
            interfaces,
        });
    }
    // Ports of isolated networks are isolated by `bridge nsnet` (its
    // `l2_isolated` set), not by the kernel's port flag: show them as such.
    for spec in networks.iter().filter(|n| n.isolate) {
        for ep in endpoints.iter().filter(|e| e.network == spec.name) {
            for iface in namespaces
                .iter_mut()
                .flat_map(|n| n.interfaces.iter_mut())
                .filter(|i| i.name == ep.host_ifname)
            {
                iface.isolated = true;
            }
        }
    }
    let ns_name = |ep: &Endpoint| {
        namespaces
            .iter()
            .find(|n| n.inode == ep.netns_inode)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| ep.target.clone())
    };
    let mut topo_networks = Vec::new();
    let mut ports = Vec::new();
    for spec in &networks {
        let mut attached = Vec::new();
        for ep in endpoints.iter().filter(|e| e.network == spec.name) {
            let namespace = ns_name(ep);
            for p in &ep.ports {
                ports.push(Port {
                    spec: p.to_string(),
                    network: spec.name.clone(),
                    namespace: namespace.clone(),
                    interface: ep.ifname.clone(),
                    to: p
                        .container_v4
                        .map(std::net::IpAddr::from)
                        .into_iter()
                        .chain(p.container_v6.map(std::net::IpAddr::from))
                        .collect(),
                    container_port: p.container_port,
                });
            }
            attached.push(Attachment {
                id: ep.id.clone(),
                namespace,
                interface: ep.ifname.clone(),
                host_interface: ep.host_ifname.clone(),
                addresses: ep.addresses.clone(),
            });
        }
        topo_networks.push(Network {
            name: spec.name.clone(),
            bridge: spec.bridge.clone(),
            subnets: spec.pools.iter().map(|p| p.subnet).collect(),
            gateways: spec.pools.iter().map(|p| p.gateway).collect(),
            internal: spec.internal,
            masquerade: spec.masquerade,
            isolate: spec.isolate,
            endpoints: attached,
            cluster: match &config {
                Some(c) => c.cluster(&spec.name)?,
                None => None,
            },
        });
    }
    Ok((
        Topology {
            namespaces,
            networks: topo_networks,
            ports,
        },
        handles,
    ))
}

/// Namespaces found so far, each once.
#[derive(Default)]
struct FoundList {
    seen: HashSet<u64>,
    list: Vec<Found>,
}

impl FoundList {
    fn add(&mut self, name: String, kind: NsKind, ns: Netns) {
        let Ok(inode) = ns.inode() else { return };
        if self.seen.insert(inode) {
            self.list.push(Found {
                name,
                aliases: Vec::new(),
                kind,
                ns,
                inode,
            });
        } else if let Some(f) = self.list.iter_mut().find(|f| f.inode == inode) {
            if f.name != name && !f.aliases.contains(&name) {
                f.aliases.push(name);
            }
        }
    }
}

/// Every namespace worth showing, host first, each once (by inode).
fn find_namespaces(
    ctx: &Context,
    pods: &[PodRecord],
    endpoints: &[Endpoint],
) -> Result<Vec<Found>> {
    let mut out = FoundList::default();
    out.add("host".into(), NsKind::Host, Netns::host()?);
    // Named namespaces and pods, in one alphabetical list.
    let mut named: Vec<(String, NsKind, Netns)> = Vec::new();
    let pod_kind = |p: &PodRecord| NsKind::Pod {
        pid: p.pid,
        running: crate::ops::pod::alive(p),
        members: crate::ops::pod::members(ctx, p).len(),
    };
    for pod in pods {
        let path = ctx.pod_dir(&pod.name).join("net");
        if let Ok(ns) = Netns::by_path(&path) {
            named.push((pod.name.clone(), pod_kind(pod), ns));
        }
    }
    for entry in netns::list()? {
        if entry.inode.is_none() {
            continue;
        }
        if let Ok(ns) = Netns::by_path(&Path::new(netns::NETNS_RUN_DIR).join(&entry.name)) {
            named.push((entry.name, NsKind::Named, ns));
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind, ns) in named {
        out.add(name, kind, ns);
    }
    if let Ok(runs) = std::fs::read_dir(ctx.runs_dir()) {
        let mut runs: Vec<_> = runs.flatten().map(|e| e.file_name()).collect();
        runs.sort();
        for id in runs {
            let path = ctx.runs_dir().join(&id).join("net");
            if let Ok(ns) = Netns::by_path(&path) {
                out.add(format!("run:{}", id.to_string_lossy()), NsKind::Run, ns);
            }
        }
    }
    // Endpoint targets given by PID (the number the user knows them by), as a
    // name of their own or as another name of a namespace listed already.
    for e in endpoints {
        let Some(pid) = e.target.strip_prefix("pid:").and_then(|p| p.parse().ok()) else {
            continue;
        };
        if let Ok(ns) = Netns::by_pid(pid) {
            if ns.inode().is_ok_and(|i| i == e.netns_inode) {
                out.add(e.target.clone(), process_kind(pid), ns);
            }
        }
    }
    // Then every other process's namespace, by lowest PID.
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        // Cheap test first: most processes share a namespace already listed.
        if out.seen.contains(&meta.ino()) {
            continue;
        }
        if let Ok(ns) = Netns::by_pid(pid) {
            out.add(format!("pid:{pid}"), process_kind(pid), ns);
        }
    }
    Ok(out.list)
}

fn process_kind(pid: u32) -> NsKind {
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    NsKind::Process { pid, command }
}

fn nl_err<'a>(ns: &'a str, what: &'static str) -> impl FnOnce(crate::netlink::Error) -> Error + 'a {
    move |source| Error::Netlink {
        ns: ns.to_owned(),
        what,
        source,
    }
}

/// Opens a netlink socket in the namespace and reads its links and addresses.
fn read_namespace(f: &Found) -> Result<(Netlink, Vec<RawLink>)> {
    let mut nl = f.ns.netlink()?;
    let answers = nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(nl_err(&f.name, "listing links"))?;
    let mut links: Vec<RawLink> = answers
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(raw_link(l)),
            _ => None,
        })
        .collect();
    for addr in nl
        .addresses(None)
        .map_err(nl_err(&f.name, "listing addresses"))?
    {
        if let Some(l) = links.iter_mut().find(|l| l.iface.index == addr.index) {
            l.iface.addresses.push(addr.net);
        }
    }
    Ok((nl, links))
}

fn raw_link(msg: &LinkMessage) -> RawLink {
    let mut l = RawLink {
        iface: Interface {
            index: msg.header.index,
            name: String::new(),
            kind: String::new(),
            up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            isolated: false,
            mtu: None,
            mac: None,
            master: None,
            addresses: Vec::new(),
            peer: None,
            network: None,
        },
        master: None,
        link: None,
        link_netnsid: None,
    };
    let loopback = msg.header.flags.contains(LinkFlags::Loopback);
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => l.iface.name = n.clone(),
            LinkAttribute::Mtu(m) => l.iface.mtu = Some(*m),
            LinkAttribute::Controller(m) => l.master = Some(*m),
            LinkAttribute::Link(i) => l.link = Some(*i),
            LinkAttribute::LinkNetNsId(id) => l.link_netnsid = Some(*id),
            LinkAttribute::Address(a) if a.len() == 6 && !loopback => {
                l.iface.mac = Some(
                    a.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                )
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => {
                            l.iface.kind = match k {
                                InfoKind::Veth => "veth".into(),
                                InfoKind::Bridge => "bridge".into(),
                                other => other.to_string(),
                            }
                        }
                        LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                            l.iface.isolated = attrs
                                .iter()
                                .any(|a| matches!(a, InfoBridgePort::Isolated(true)));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if loopback && l.iface.kind.is_empty() {
        l.iface.kind = "loopback".into();
    }
    l
}

/// The far end of every veth, per namespace and link (same order as `read`).
fn resolve_peers(read: &mut [(Found, Netlink, Vec<RawLink>)]) -> Vec<Vec<Option<Peer>>> {
    // (namespace index, link index) -> interface name, to name peers.
    let names: HashMap<(usize, u32), String> = read
        .iter()
        .enumerate()
        .flat_map(|(i, (_, _, links))| {
            links
                .iter()
                .map(move |l| ((i, l.iface.index), l.iface.name.clone()))
        })
        .collect();
    let fds: Vec<i32> = read.iter().map(|(f, _, _)| f.ns.fd().as_raw_fd()).collect();
    let mut out = Vec::new();
    for a in 0..read.len() {
        // This namespace's ids for the others, asked only when a veth needs one.
        let mut ids: Option<HashMap<i32, usize>> = None;
        let mut peers = Vec::new();
        for li in 0..read[a].2.len() {
            let (is_veth, link, nsid) = {
                let l = &read[a].2[li];
                (l.iface.kind == "veth", l.link, l.link_netnsid)
            };
            let peer = match (is_veth, link, nsid) {
                (false, _, _) | (true, None, _) => None,
                (true, Some(idx), None) => Some(Peer {
                    namespace: Some(read[a].0.name.clone()),
                    interface: names.get(&(a, idx)).cloned().unwrap_or(format!("if{idx}")),
                }),
                (true, Some(idx), Some(id)) => {
                    let ids = ids.get_or_insert_with(|| nsids(&mut read[a].1, &fds, a));
                    match ids.get(&id) {
                        Some(&b) => Some(Peer {
                            namespace: Some(read[b].0.name.clone()),
                            interface: names.get(&(b, idx)).cloned().unwrap_or(format!("if{idx}")),
                        }),
                        None => Some(Peer {
                            namespace: None,
                            interface: format!("if{idx}"),
                        }),
                    }
                }
            };
            peers.push(peer);
        }
        out.push(peers);
    }
    out
}

/// The ids namespace `own` gives each of the others (`ip netns list-id`), mapped
/// to their positions. Namespaces without an id there are left out.
fn nsids(nl: &mut Netlink, fds: &[i32], own: usize) -> HashMap<i32, usize> {
    let mut out = HashMap::new();
    for (b, fd) in fds.iter().enumerate() {
        if b == own {
            continue;
        }
        let mut msg = NsidMessage::default();
        msg.attributes.push(NsidAttribute::Fd(*fd as u32));
        let Ok(Some(RouteNetlinkMessage::NewNsId(answer))) =
            nl.get_one(RouteNetlinkMessage::GetNsId(msg))
        else {
            continue;
        };
        for attr in answer.attributes {
            if let NsidAttribute::Id(id) = attr {
                if id >= 0 {
                    out.insert(id, b);
                }
            }
        }
    }
    out
}
