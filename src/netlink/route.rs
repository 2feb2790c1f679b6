//! Routes in the main table, including the default route, and in other tables
//! (policy routing, [`super::rule`]).

use super::{Netlink, Result};
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// A unicast route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination; `0.0.0.0/0` or `::/0` for a default route.
    pub dest: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// The preferred source address (`src`), read from the kernel; nsnet's
    /// own routes leave it to the kernel (`None`).
    pub prefsrc: Option<IpAddr>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.dest.prefix_len() == 0
    }
}

const MAIN: u32 = RouteHeader::RT_TABLE_MAIN as u32;

fn family_of(net: &IpNet) -> AddressFamily {
    match net {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

fn route_message(route: &Route, table: u32) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family_of(&route.dest);
    msg.header.destination_prefix_length = route.dest.prefix_len();
    // Tables above 255 only fit the attribute; the header's byte then says "see it".
    msg.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    if table > 255 {
        msg.attributes.push(RouteAttribute::Table(table));
    }
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if route.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if route.dest.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                route.dest.network(),
            )));
    }
    if let Some(gw) = route.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = route.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some((*a).into()),
        RouteAddress::Inet6(a) => Some((*a).into()),
        _ => None,
    }
}

impl Netlink {
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        self.add_route_to(route, MAIN)
    }

    /// Adds a route to routing table `table` (not 0).
    pub fn add_route_to(&mut self, route: &Route, table: u32) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(route_message(route, table)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn delete_route(&mut self, route: &Route) -> Result<()> {
        self.request(RouteNetlinkMessage::DelRoute(route_message(route, MAIN)), 0)
    }

    /// The unicast routes of the main table, IPv4 and IPv6.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            for answer in self.dump(RouteNetlinkMessage::GetRoute(req))? {
                let RouteNetlinkMessage::NewRoute(msg) = answer else {
                    continue;
                };
                if msg.header.table != RouteHeader::RT_TABLE_MAIN
                    || msg.header.kind != RouteType::Unicast
                {
                    continue;
                }
                if let Some(route) = parse_route(&msg) {
                    out.push(route);
                }
            }
        }
        Ok(out)
    }
}

fn parse_route(msg: &RouteMessage) -> Option<Route> {
    let unspecified: IpAddr = match msg.header.address_family {
        AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
        AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
        _ => return None,
    };
    let mut dest = unspecified;
    let mut gateway = None;
    let mut oif = None;
    let mut prefsrc = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => dest = ip_of(a)?,
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::PrefSource(a) => prefsrc = ip_of(a),
            _ => {}
        }
    }
    Some(Route {
        dest: IpNet::new(dest, msg.header.destination_prefix_length).ok()?,
        gateway,
        oif,
        prefsrc,
    })
}
