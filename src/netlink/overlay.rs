//! What a cluster's node needs from the kernel to reach its peers' pods: a
//! VXLAN device, permanent neighbour and FDB entries on it, and routes that
//! nsnet owns, told apart from everyone else's by their protocol number
//! ([`RTPROT_NSNET`]), so a diff against the desired peers touches nothing else.

use super::{Netlink, Result};
use ipnet::{IpNet, Ipv4Net};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::Ipv4Addr;

/// The routing protocol number of nsnet's cluster routes (`ip route show
/// proto 110`). Unassigned in iproute2's `rt_protos`.
pub const RTPROT_NSNET: u8 = 110;

/// A VXLAN device as nsnet makes it: no learning, no multicast group, every
/// remote known from an FDB entry.
#[derive(Debug, Clone)]
pub struct VxlanSpec<'a> {
    pub name: &'a str,
    pub vni: u32,
    pub local: Ipv4Addr,
    pub port: u16,
    pub mtu: u32,
    pub mac: [u8; 6],
}

/// A route to a peer's pod subnet: `dest via gateway`, on `oif` (and
/// `onlink`, the gateway being a VXLAN peer's address) when given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerRoute {
    pub dest: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub oif: Option<u32>,
}

/// A permanent IPv4 neighbour entry (`ip neigh add IP lladdr MAC dev IF nud permanent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
}

/// A VXLAN FDB entry: frames for `mac` go to `dst` (`bridge fdb add MAC dev IF dst IP self permanent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fdb {
    pub mac: [u8; 6],
    pub dst: Ipv4Addr,
}

fn route_message(r: &PeerRoute) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.destination_prefix_length = r.dest.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Other(RTPROT_NSNET);
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = RouteScope::Universe;
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(
            r.dest.network(),
        )));
    msg.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(r.gateway)));
    if let Some(oif) = r.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
        msg.header.flags = RouteFlags::Onlink;
    }
    msg
}

fn neighbour_message(ifindex: u32, family: AddressFamily) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg
}

impl Netlink {
    /// Creates the VXLAN device (down; the caller brings it up).
    pub fn add_vxlan(&mut self, spec: &VxlanSpec<'_>) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.to_owned()));
        msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        msg.attributes
            .push(LinkAttribute::Address(spec.mac.to_vec()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(spec.vni),
                InfoVxlan::Local(spec.local),
                InfoVxlan::Port(spec.port),
                InfoVxlan::Learning(false),
            ])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// The VXLAN device's VNI, local address and port, as the kernel holds them.
    pub fn vxlan_info(&mut self, index: u32) -> Result<Option<(u32, Option<Ipv4Addr>, u16)>> {
        let mut found = None;
        for answer in self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))? {
            let RouteNetlinkMessage::NewLink(msg) = answer else {
                continue;
            };
            if msg.header.index != index {
                continue;
            }
            for attr in &msg.attributes {
                let LinkAttribute::LinkInfo(infos) = attr else {
                    continue;
                };
                for info in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(data)) = info {
                        let (mut vni, mut local, mut port) = (0, None, 0);
                        for d in data {
                            match d {
                                InfoVxlan::Id(v) => vni = *v,
                                InfoVxlan::Local(l) => local = Some(*l),
                                InfoVxlan::Port(p) => port = *p,
                                _ => {}
                            }
                        }
                        found = Some((vni, local, port));
                    }
                }
            }
        }
        Ok(found)
    }

    pub fn add_peer_route(&mut self, r: &PeerRoute) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(route_message(r)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn delete_peer_route(&mut self, r: &PeerRoute) -> Result<()> {
        self.request(RouteNetlinkMessage::DelRoute(route_message(r)), 0)
    }

    /// The IPv4 routes of the main table that nsnet's cluster code made.
    pub fn peer_routes(&mut self) -> Result<Vec<PeerRoute>> {
        let mut req = RouteMessage::default();
        req.header.address_family = AddressFamily::Inet;
        let mut out = Vec::new();
        for answer in self.dump(RouteNetlinkMessage::GetRoute(req))? {
            let RouteNetlinkMessage::NewRoute(msg) = answer else {
                continue;
            };
            if msg.header.table != RouteHeader::RT_TABLE_MAIN
                || msg.header.protocol != RouteProtocol::Other(RTPROT_NSNET)
            {
                continue;
            }
            let (mut dest, mut gateway, mut oif) = (None, None, None);
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Destination(RouteAddress::Inet(a)) => dest = Some(*a),
                    RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some(*a),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            let onlink = msg.header.flags.contains(RouteFlags::Onlink);
            if let (Some(d), Some(gateway)) = (dest, gateway) {
                if let Ok(dest) = Ipv4Net::new(d, msg.header.destination_prefix_length) {
                    out.push(PeerRoute {
                        dest,
                        gateway,
                        oif: oif.filter(|_| onlink),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Adds (or replaces) a permanent neighbour entry on `ifindex`.
    pub fn set_neighbour(&mut self, ifindex: u32, n: &Neighbour) -> Result<()> {
        let mut msg = neighbour_message(ifindex, AddressFamily::Inet);
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                n.ip,
            )));
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(n.mac.to_vec()));
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    pub fn delete_neighbour(&mut self, ifindex: u32, n: &Neighbour) -> Result<()> {
        let mut msg = neighbour_message(ifindex, AddressFamily::Inet);
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                n.ip,
            )));
        self.request(RouteNetlinkMessage::DelNeighbour(msg), 0)
    }

    /// The permanent IPv4 neighbour entries on `ifindex`.
    pub fn neighbours(&mut self, ifindex: u32) -> Result<Vec<Neighbour>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Inet;
        let mut out = Vec::new();
        for answer in self.dump(RouteNetlinkMessage::GetNeighbour(req))? {
            let RouteNetlinkMessage::NewNeighbour(msg) = answer else {
                continue;
            };
            if msg.header.ifindex != ifindex || msg.header.state != NeighbourState::Permanent {
                continue;
            }
            let (mut ip, mut mac) = (None, None);
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
                    NeighbourAttribute::LinkLayerAddress(m) => mac = m.as_slice().try_into().ok(),
                    _ => {}
                }
            }
            if let (Some(ip), Some(mac)) = (ip, mac) {
                out.push(Neighbour { ip, mac });
            }
        }
        Ok(out)
    }

    /// Adds (or replaces) a VXLAN FDB entry on `ifindex`.
    pub fn set_fdb(&mut self, ifindex: u32, f: &Fdb) -> Result<()> {
        let mut msg = neighbour_message(ifindex, AddressFamily::Bridge);
        msg.header.flags = NeighbourFlags::Own;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(f.mac.to_vec()));
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                f.dst,
            )));
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    pub fn delete_fdb(&mut self, ifindex: u32, f: &Fdb) -> Result<()> {
        let mut msg = neighbour_message(ifindex, AddressFamily::Bridge);
        msg.header.flags = NeighbourFlags::Own;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(f.mac.to_vec()));
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                f.dst,
            )));
        self.request(RouteNetlinkMessage::DelNeighbour(msg), 0)
    }

    /// The FDB entries with a remote destination on the VXLAN device `ifindex`.
    pub fn fdbs(&mut self, ifindex: u32) -> Result<Vec<Fdb>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        let mut out = Vec::new();
        for answer in self.dump(RouteNetlinkMessage::GetNeighbour(req))? {
            let RouteNetlinkMessage::NewNeighbour(msg) = answer else {
                continue;
            };
            if msg.header.ifindex != ifindex {
                continue;
            }
            let (mut dst, mut mac) = (None, None);
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => dst = Some(*a),
                    // An AF_BRIDGE entry's remote is not typed by its family.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                        dst = <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
                    }
                    NeighbourAttribute::LinkLayerAddress(m) => mac = m.as_slice().try_into().ok(),
                    _ => {}
                }
            }
            if let (Some(dst), Some(mac)) = (dst, mac) {
                out.push(Fdb { mac, dst });
            }
        }
        Ok(out)
    }
}

/// Whether `ip` is on a subnet directly connected to this namespace (a
/// kernel route without a gateway covers it): a host-gw peer must be.
pub fn directly_connected(routes: &[super::Route], ip: Ipv4Addr) -> bool {
    routes.iter().any(|r| {
        r.gateway.is_none()
            && r.dest.prefix_len() > 0
            && matches!(r.dest, IpNet::V4(n) if n.contains(&ip))
    })
}
