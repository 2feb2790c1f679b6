//! Point-to-point veth links between two namespaces (`nsnet link add/del`).

use super::rollback::Rollback;
use super::{nl_err, Error, Result};
use crate::names::{IfName, NsSide, IFNAME_MAX};
use crate::netlink::{LinkKind, Netlink, VethSpec};
use crate::netns::Netns;
use crate::privilege::require_admin;
use ipnet::IpNet;
use std::collections::HashSet;

/// Smallest MTU the kernel accepts on an Ethernet device, and the largest a veth takes.
const MTU_MIN: u32 = 68;
const MTU_MAX: u32 = 65535;
/// IPv6 needs at least this MTU; below it the kernel silently disables IPv6.
const MTU_MIN_IPV6: u32 = 1280;

/// A validated request for `link add`.
#[derive(Debug, Clone)]
pub struct LinkAddRequest {
    pub a: NsSide,
    pub b: NsSide,
    pub name: Option<IfName>,
    pub peer_name: Option<IfName>,
    pub addr: Option<IpNet>,
    pub peer_addr: Option<IpNet>,
    pub mtu: Option<u32>,
}

/// What `link add` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkAdded {
    pub ns: String,
    pub name: String,
    pub peer_ns: String,
    pub peer_name: String,
}

fn open_side(side: &NsSide) -> Result<Netns> {
    Ok(match side {
        NsSide::Host => Netns::host()?,
        NsSide::Named(n) => Netns::by_name(n)?,
    })
}

/// Checks what can be checked without the kernel.
fn check_request(req: &LinkAddRequest) -> Result<()> {
    if let Some(mtu) = req.mtu {
        if !(MTU_MIN..=MTU_MAX).contains(&mtu) {
            return Err(Error::Invalid(format!(
                "MTU {mtu} is out of range ({MTU_MIN}..{MTU_MAX})"
            )));
        }
        if mtu < MTU_MIN_IPV6
            && [req.addr, req.peer_addr]
                .iter()
                .flatten()
                .any(|a| a.addr().is_ipv6())
        {
            return Err(Error::Invalid(format!(
                "MTU {mtu} is too small for IPv6 (at least {MTU_MIN_IPV6})"
            )));
        }
    }
    for net in [req.addr, req.peer_addr].iter().flatten() {
        check_host_address(net)?;
    }
    if let (Some(a), Some(b)) = (req.addr, req.peer_addr) {
        if a.addr() == b.addr() {
            return Err(Error::Invalid(format!(
                "both ends cannot have the same address {}",
                a.addr()
            )));
        }
    }
    if req.a == req.b {
        if let (Some(x), Some(y)) = (&req.name, &req.peer_name) {
            if x == y {
                return Err(Error::Invalid(format!(
                    "both ends are in namespace {} and cannot both be named {x}",
                    req.a
                )));
            }
        }
    }
    Ok(())
}

/// An interface address must be a host of its subnet, not the subnet's network or
/// broadcast address (for IPv4 prefixes that have them).
pub fn check_host_address(net: &IpNet) -> Result<()> {
    if let IpNet::V4(v4) = net {
        if v4.prefix_len() < 31 {
            if v4.addr() == v4.network() {
                return Err(Error::Invalid(format!(
                    "{net} is the network address of its subnet, not a host address"
                )));
            }
            if v4.addr() == v4.broadcast() {
                return Err(Error::Invalid(format!(
                    "{net} is the broadcast address of its subnet, not a host address"
                )));
            }
        }
    }
    if net.addr().is_unspecified() || net.addr().is_multicast() || net.addr().is_loopback() {
        return Err(Error::Invalid(format!(
            "{net} cannot be an interface address"
        )));
    }
    Ok(())
}

/// The default name of the end that faces `peer`: `veth-PEER`, shortened to fit
/// IFNAMSIZ, with a number appended when that name is taken.
fn default_name(peer: &NsSide, taken: &HashSet<String>) -> String {
    let base: String = format!("veth-{peer}");
    let fit = |s: &str, room: usize| -> String {
        let mut end = room.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    };
    let candidate = fit(&base, IFNAME_MAX);
    if !taken.contains(&candidate) {
        return candidate;
    }
    (1u32..)
        .map(|n| {
            let suffix = n.to_string();
            format!("{}{suffix}", fit(&base, IFNAME_MAX - suffix.len()))
        })
        .find(|c| !taken.contains(c))
        .unwrap_or(candidate) // ok: the range above never ends
}

fn link_names(nl: &mut Netlink, ns: &Netns) -> Result<HashSet<String>> {
    Ok(nl
        .links()
        .map_err(nl_err(ns.label(), "listing interfaces"))?
        .into_iter()
        .map(|l| l.name)
        .collect())
}

/// Creates a veth pair with one end in `a` and one in `b`, assigns the addresses
/// and brings both ends and `lo` on each side up. On failure nothing is left.
pub fn add(req: &LinkAddRequest) -> Result<LinkAdded> {
    check_request(req)?;
    require_admin()?;
    let ns_a = open_side(&req.a)?;
    let ns_b = open_side(&req.b)?;
    let mut nl_a = ns_a.netlink()?;
    let mut nl_b = ns_b.netlink()?;
    let same_ns = ns_a.inode()? == ns_b.inode()?;

    let mut taken_a = link_names(&mut nl_a, &ns_a)?;
    let mut taken_b = if same_ns {
        taken_a.clone()
    } else {
        link_names(&mut nl_b, &ns_b)?
    };
    if let Some(p) = &req.peer_name {
        if same_ns {
            taken_a.insert(p.to_string());
        }
    }
    let name = match &req.name {
        Some(n) if taken_a.contains(n.as_str()) => {
            return Err(Error::InterfaceExists {
                ns: ns_a.label().into(),
                name: n.to_string(),
            })
        }
        Some(n) => n.to_string(),
        None => default_name(&req.b, &taken_a),
    };
    if same_ns {
        taken_b.insert(name.clone());
    }
    let peer_name = match &req.peer_name {
        Some(n) if taken_b.contains(n.as_str()) => {
            return Err(Error::InterfaceExists {
                ns: ns_b.label().into(),
                name: n.to_string(),
            })
        }
        Some(n) => n.to_string(),
        None => default_name(&req.a, &taken_b),
    };

    refuse_address_held(&mut nl_a, &ns_a, req.addr)?;
    refuse_address_held(&mut nl_b, &ns_b, req.peer_addr)?;

    nl_a.add_veth(&VethSpec {
        name: &name,
        peer_name: &peer_name,
        peer_netns: Some(ns_b.fd()),
        peer_mac: None,
        mtu: req.mtu,
        master: None,
    })
    .map_err(nl_err(ns_a.label(), format!("creating veth {name}")))?;
    let mut rollback = Rollback::new();
    {
        let (ns, name) = (ns_a.try_clone()?, name.clone());
        rollback.push(format!("veth {name}"), move || delete_by_name(&ns, &name));
    }

    let index_a = find_index(&mut nl_a, ns_a.label(), &name)?;
    let index_b = find_index(&mut nl_b, ns_b.label(), &peer_name)?;
    for (nl, ns, index, addr) in [
        (&mut nl_a, &ns_a, index_a, req.addr),
        (&mut nl_b, &ns_b, index_b, req.peer_addr),
    ] {
        if let Some(addr) = addr {
            nl.add_address(index, &addr)
                .map_err(nl_err(ns.label(), format!("adding address {addr}")))?;
        }
        nl.set_up(index, true)
            .map_err(nl_err(ns.label(), "bringing the veth up"))?;
    }
    super::netns::lo_up(&mut nl_a, ns_a.label())?;
    if !same_ns {
        super::netns::lo_up(&mut nl_b, ns_b.label())?;
    }
    rollback.commit();
    Ok(LinkAdded {
        ns: req.a.to_string(),
        name,
        peer_ns: req.b.to_string(),
        peer_name,
    })
}

/// Refuses an address that namespace `ns` has already, on any interface
/// (whatever its prefix length): a second `link add` with the same
/// addresses would give it twice, on a new veth pair, and the routes of
/// both would compete.
fn refuse_address_held(nl: &mut Netlink, ns: &Netns, addr: Option<IpNet>) -> Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let held = nl
        .addresses(None)
        .map_err(nl_err(ns.label(), "listing addresses"))?;
    let Some(found) = held.iter().find(|a| a.net.addr() == addr.addr()) else {
        return Ok(());
    };
    let on = nl
        .link_by_index(found.index)
        .ok()
        .flatten()
        .map_or_else(|| format!("interface {}", found.index), |l| l.name);
    Err(Error::Invalid(format!(
        "namespace {} already has address {} (as {} on {on}); delete it first or choose another",
        ns.label(),
        addr.addr(),
        found.net
    )))
}

fn find_index(nl: &mut Netlink, ns: &str, name: &str) -> Result<u32> {
    nl.link_by_name(name)
        .map_err(nl_err(ns, format!("looking up {name}")))?
        .map(|l| l.index)
        .ok_or_else(|| Error::InterfaceNotFound {
            ns: ns.into(),
            name: name.into(),
        })
}

fn delete_by_name(ns: &Netns, name: &str) -> std::result::Result<(), String> {
    let mut nl = ns.netlink().map_err(|e| e.to_string())?;
    match nl.link_by_name(name).map_err(|e| e.to_string())? {
        Some(link) => nl.delete_link(link.index).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Deletes the veth `name` in `side`, and with it its peer wherever that is.
pub fn delete(side: &NsSide, name: &IfName) -> Result<()> {
    require_admin()?;
    let ns = open_side(side)?;
    let mut nl = ns.netlink()?;
    let link = nl
        .link_by_name(name.as_str())
        .map_err(nl_err(ns.label(), format!("looking up {name}")))?
        .ok_or_else(|| Error::InterfaceNotFound {
            ns: ns.label().into(),
            name: name.to_string(),
        })?;
    match &link.kind {
        LinkKind::Veth => {}
        other => {
            return Err(Error::NotVeth {
                ns: ns.label().into(),
                name: name.to_string(),
                kind: match other {
                    LinkKind::Bridge => Some("bridge".into()),
                    LinkKind::Other(k) => Some(k.clone()),
                    _ => None,
                },
            })
        }
    }
    nl.delete_link(link.index)
        .map_err(nl_err(ns.label(), format!("deleting {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_name_names_the_peer_and_fits_ifnamsiz() {
        let peer: NsSide = "b".parse().unwrap();
        assert_eq!(default_name(&peer, &set(&[])), "veth-b");
        let long: NsSide = "a-very-long-namespace-name".parse().unwrap();
        let n = default_name(&long, &set(&[]));
        assert_eq!(n, "veth-a-very-lon");
        assert!(n.len() <= IFNAME_MAX);
    }

    #[test]
    fn default_name_is_unique_among_taken_names() {
        let peer: NsSide = "b".parse().unwrap();
        assert_eq!(default_name(&peer, &set(&["veth-b"])), "veth-b1");
        assert_eq!(default_name(&peer, &set(&["veth-b", "veth-b1"])), "veth-b2");
        let long: NsSide = "a-very-long-namespace-name".parse().unwrap();
        assert_eq!(
            default_name(&long, &set(&["veth-a-very-lon"])),
            "veth-a-very-lo1"
        );
    }

    #[test]
    fn host_addresses_exclude_network_and_broadcast() {
        assert!(check_host_address(&"10.0.0.1/24".parse().unwrap()).is_ok());
        assert!(check_host_address(&"10.0.0.0/24".parse().unwrap()).is_err());
        assert!(check_host_address(&"10.0.0.255/24".parse().unwrap()).is_err());
        assert!(check_host_address(&"10.0.0.0/31".parse().unwrap()).is_ok());
        assert!(check_host_address(&"fd00::1/64".parse().unwrap()).is_ok());
        assert!(check_host_address(&"127.0.0.2/8".parse().unwrap()).is_err());
    }

    fn req() -> LinkAddRequest {
        LinkAddRequest {
            a: "a".parse().unwrap(),
            b: "b".parse().unwrap(),
            name: None,
            peer_name: None,
            addr: None,
            peer_addr: None,
            mtu: None,
        }
    }

    #[test]
    fn mtu_out_of_range_or_too_small_for_ipv6_is_rejected() {
        let mut r = req();
        r.mtu = Some(67);
        assert!(check_request(&r).is_err());
        r.mtu = Some(1000);
        assert!(check_request(&r).is_ok());
        r.addr = Some("fd00::1/64".parse().unwrap());
        assert!(check_request(&r).unwrap_err().to_string().contains("IPv6"));
    }

    #[test]
    fn same_address_on_both_ends_is_rejected() {
        let mut r = req();
        r.addr = Some("10.0.0.1/24".parse().unwrap());
        r.peer_addr = Some("10.0.0.1/24".parse().unwrap());
        assert!(check_request(&r).is_err());
    }
}
