//! Addresses (IPv4 and IPv6).

use super::{Netlink, Result};
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub net: IpNet,
}

fn address_message(index: u32, net: &IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = net.prefix_len();
    msg.header.scope = AddressScope::Universe;
    match net.addr() {
        IpAddr::V4(a) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(a.into()));
            msg.attributes.push(AddressAttribute::Address(a.into()));
        }
        IpAddr::V6(a) => {
            msg.header.family = AddressFamily::Inet6;
            msg.attributes.push(AddressAttribute::Address(a.into()));
        }
    }
    msg
}

impl Netlink {
    /// Adds `net` (address and prefix length) to link `index`. IPv6 addresses are
    /// added without duplicate address detection, so they are usable at once:
    /// nsnet hands out unique addresses itself.
    pub fn add_address(&mut self, index: u32, net: &IpNet) -> Result<()> {
        let mut msg = address_message(index, net);
        if net.addr().is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn delete_address(&mut self, index: u32, net: &IpNet) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelAddress(address_message(index, net)),
            0,
        )
    }

    /// Every address in this namespace, or only those of link `index`.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>> {
        let answers = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        let mut out = Vec::new();
        for answer in answers {
            let RouteNetlinkMessage::NewAddress(msg) = answer else {
                continue;
            };
            if index.is_some_and(|i| i != msg.header.index) {
                continue;
            }
            let addr = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = addr.or_else(|| {
                msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = addr {
                if let Ok(net) = IpNet::new(ip, msg.header.prefix_len) {
                    out.push(Address {
                        index: msg.header.index,
                        net,
                    });
                }
            }
        }
        Ok(out)
    }
}
