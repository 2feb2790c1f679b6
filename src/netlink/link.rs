//! Links: veth pairs, bridges, up/down, master, MTU, rename, delete.

use super::{Netlink, Result};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridgePort, InfoData, InfoKind, InfoPortData,
    InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use std::os::fd::{AsRawFd, BorrowedFd};

/// What kind of link the kernel says this is (`IFLA_INFO_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Veth,
    Bridge,
    /// Any other kind, by the kernel's name for it ("dummy", "vxlan", ...).
    Other(String),
    /// No kind reported (loopback, physical devices).
    None,
}

/// The facts nsnet reads about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: LinkKind,
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub mac: Option<[u8; 6]>,
    /// Index of the bridge this link is a port of.
    pub master: Option<u32>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: LinkKind::None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            mac: None,
            master: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = Some(*m),
                LinkAttribute::Controller(m) => link.master = Some(*m),
                LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = match k {
                                InfoKind::Veth => LinkKind::Veth,
                                InfoKind::Bridge => LinkKind::Bridge,
                                other => LinkKind::Other(other.to_string()),
                            };
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// A veth pair to create: `name` in the socket's namespace, `peer_name` in
/// `peer_netns` (or the same namespace when `None`).
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub peer_name: &'a str,
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// MAC address of the peer; the kernel picks a random one when `None`.
    pub peer_mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Bridge (by index) to enslave the local end to, in the same request.
    pub master: Option<u32>,
}

fn link_message(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

impl Netlink {
    /// Every link in this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let answers = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if there is one.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.get_link(msg)
    }

    /// The link with this index, if there is one.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        self.get_link(link_message(index))
    }

    fn get_link(&mut self, msg: LinkMessage) -> Result<Option<Link>> {
        Ok(match self.get_one(RouteNetlinkMessage::GetLink(msg))? {
            Some(RouteNetlinkMessage::NewLink(l)) => Some(Link::from_message(&l)),
            _ => None,
        })
    }

    /// Creates a veth pair; the peer is created directly in its target namespace,
    /// so it never appears (and never needs cleaning up) anywhere else.
    pub fn add_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.to_owned()));
        if let Some(fd) = spec.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.to_owned()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = spec.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Creates a Linux bridge, with a fixed MAC when one is given.
    pub fn add_bridge(&mut self, name: &str, mtu: Option<u32>, mac: Option<[u8; 6]>) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    fn set_link(&mut self, msg: LinkMessage) -> Result<()> {
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Brings a link administratively up or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        let mut msg = link_message(index);
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        self.set_link(msg)
    }

    /// Makes the link a port of bridge `master`, or frees it with `None`.
    pub fn set_master(&mut self, index: u32, master: Option<u32>) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes
            .push(LinkAttribute::Controller(master.unwrap_or(0)));
        self.set_link(msg)
    }

    /// Sets bridge port options of a link enslaved to a bridge: `isolated` ports
    /// cannot talk to each other, only to non-isolated ports (the bridge itself);
    /// `hairpin` ports may send a frame back out of the port it came in on,
    /// which a published port needs when an endpoint reaches itself through it.
    pub fn set_bridge_port(&mut self, index: u32, isolated: bool, hairpin: bool) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![
                InfoBridgePort::Isolated(isolated),
                InfoBridgePort::HairpinMode(hairpin),
            ])),
        ]));
        // RTM_SETLINK ignores IFLA_LINKINFO; port data goes through RTM_NEWLINK on
        // the existing link (as `ip link set ... type bridge_slave` does).
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
    }

    /// Stops the kernel from giving the link IPv6 addresses of its own (no
    /// link-local address, so no DAD probe, router solicitation or MLD report
    /// once it is up); addresses added explicitly still work. Must come before
    /// the link goes up. A kernel without IPv6 has nothing to stop: Ok.
    pub fn set_no_ipv6_autoconf(&mut self, index: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        match self.set_link(msg) {
            Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => Ok(()),
            r => r,
        }
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(msg)
    }

    /// Renames a link (the kernel refuses while it is up).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.set_link(msg)
    }

    /// Deletes a link; for a veth this deletes both ends.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        self.request(RouteNetlinkMessage::DelLink(link_message(index)), 0)
    }
}
