//! IP address management: a pure allocator over a [`Leases`] view, unit-tested
//! without a kernel or a database.
//!
//! A [`Pool`] is one subnet of a network: the addresses that may be handed out
//! are the hosts of the subnet (inside the optional `--ip-range`), never the
//! network address, the IPv4 broadcast address or the gateway. Allocation
//! starts after the last address handed out and wraps around (as host-local
//! does), so an address just released is not reused at once while stale ARP or
//! conntrack entries may still point at it.

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many candidates an allocation looks at before it calls the pool full;
/// bounds the work in huge IPv6 ranges.
const MAX_PROBES: u128 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("no free address left in {0}")]
    Exhausted(IpNet),
    /// No free address within a pool's [`Bounds`] (a CNI `rangeStart`/`rangeEnd`).
    #[error("no free address left in {subnet} ({})", .bounds.describe())]
    ExhaustedBounds { subnet: IpNet, bounds: Bounds },
    #[error("address {ip} is not in subnet {subnet}")]
    OutsideSubnet { ip: IpAddr, subnet: IpNet },
    #[error("address {ip} is outside the range {range} of subnet {subnet}")]
    OutsideRange {
        ip: IpAddr,
        range: IpNet,
        subnet: IpNet,
    },
    #[error("address {ip} is reserved in {subnet} ({why})")]
    Reserved {
        ip: IpAddr,
        subnet: IpNet,
        why: &'static str,
    },
    #[error("address {0} is already in use")]
    InUse(IpAddr),
    #[error("{0}")]
    Store(String),
}

/// Bounds within a pool: hand out only addresses from `start` to `end` (each
/// defaulting to the pool's own first and last), as a CNI range's
/// `rangeStart`/`rangeEnd` ask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    pub start: Option<IpAddr>,
    pub end: Option<IpAddr>,
}

impl Bounds {
    /// Whether `ip` lies within the bounds (not whether the pool may hand it out).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let n = to_u128(ip);
        self.start.is_none_or(|s| n >= to_u128(s)) && self.end.is_none_or(|e| n <= to_u128(e))
    }

    /// "A-B", with "start"/"end" for an open side.
    pub fn describe(&self) -> String {
        let side = |a: Option<IpAddr>, open: &str| a.map_or(open.to_owned(), |a| a.to_string());
        format!("{}-{}", side(self.start, "start"), side(self.end, "end"))
    }
}

/// Which addresses are leased already.
pub trait Leases {
    fn is_leased(&self, ip: IpAddr) -> Result<bool, Error>;
}

/// One subnet of a network and the addresses it may hand out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    /// `--ip-range`: hand out only addresses inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<IpNet>,
}

impl Pool {
    /// Why `ip` can never be handed out, if it cannot.
    fn reserved(&self, ip: IpAddr) -> Option<&'static str> {
        if ip == self.subnet.network() {
            return Some("the network address");
        }
        if let IpNet::V4(v4) = self.subnet {
            if v4.prefix_len() < 31 && ip == IpAddr::V4(v4.broadcast()) {
                return Some("the broadcast address");
            }
        }
        (ip == self.gateway).then_some("the gateway")
    }

    /// First and last address that may be handed out (within `bounds`, when
    /// given), as integers.
    fn bounds(&self, bounds: Option<&Bounds>) -> (u128, u128) {
        let span = self.range.unwrap_or(self.subnet);
        let lo = bounds
            .and_then(|b| b.start)
            .map_or(to_u128(span.network()), to_u128);
        let hi = bounds
            .and_then(|b| b.end)
            .map_or(to_u128(span.broadcast()), to_u128);
        (lo, hi.max(lo))
    }

    /// Checks a requested address without looking at leases.
    pub fn check(&self, ip: IpAddr) -> Result<(), Error> {
        if !self.subnet.contains(&ip) {
            return Err(Error::OutsideSubnet {
                ip,
                subnet: self.subnet,
            });
        }
        if let Some(why) = self.reserved(ip) {
            return Err(Error::Reserved {
                ip,
                subnet: self.subnet,
                why,
            });
        }
        if let Some(range) = self.range {
            if !range.contains(&ip) {
                return Err(Error::OutsideRange {
                    ip,
                    range,
                    subnet: self.subnet,
                });
            }
        }
        Ok(())
    }

    /// A requested (static) address: valid and free, or the reason it is not.
    pub fn claim(&self, ip: IpAddr, leases: &impl Leases) -> Result<IpAddr, Error> {
        self.check(ip)?;
        if leases.is_leased(ip)? {
            return Err(Error::InUse(ip));
        }
        Ok(ip)
    }

    /// The next free address after `last` (wrapping), within `bounds` when
    /// given, or [`Error::Exhausted`] ([`Error::ExhaustedBounds`]).
    pub fn allocate(
        &self,
        last: Option<IpAddr>,
        bounds: Option<&Bounds>,
        leases: &impl Leases,
    ) -> Result<IpAddr, Error> {
        let (lo, hi) = self.bounds(bounds);
        // Saturates for a /0, which check_subnet_size refuses anyway.
        let size = (hi - lo).saturating_add(1);
        let start = match last.map(to_u128) {
            Some(l) if l >= lo && l < hi => l + 1,
            _ => lo,
        };
        let v4 = self.subnet.addr().is_ipv4();
        for i in 0..size.min(MAX_PROBES) {
            let n = lo + (start - lo + i) % size;
            let ip = from_u128(n, v4);
            if !self.subnet.contains(&ip) || self.reserved(ip).is_some() || leases.is_leased(ip)? {
                continue;
            }
            return Ok(ip);
        }
        Err(match bounds {
            Some(b) if b.start.is_some() || b.end.is_some() => Error::ExhaustedBounds {
                subnet: self.subnet,
                bounds: *b,
            },
            _ => Error::Exhausted(self.subnet),
        })
    }

    /// How many addresses are left to hand out within `bounds` (saturating).
    pub fn free_count(&self, bounds: Option<&Bounds>, leased: &HashSet<IpAddr>) -> u128 {
        let (lo, hi) = self.bounds(bounds);
        let total = (hi - lo).saturating_add(1);
        let inside = |n: u128| (lo..=hi).contains(&n);
        let mut reserved = vec![to_u128(self.subnet.network()), to_u128(self.gateway)];
        if let IpNet::V4(v4) = self.subnet {
            if v4.prefix_len() < 31 {
                reserved.push(to_u128(v4.broadcast().into()));
            }
        }
        let taken: HashSet<u128> = reserved
            .into_iter()
            .chain(leased.iter().map(|ip| to_u128(*ip)))
            .filter(|n| inside(*n))
            .collect();
        total.saturating_sub(taken.len() as u128)
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

/// The first host address of a subnet: the default gateway.
pub fn first_host(subnet: &IpNet) -> IpAddr {
    from_u128(to_u128(subnet.network()) + 1, subnet.addr().is_ipv4())
}

/// The default pool for networks created without `--subnet`: /24s out of
/// 10.201.0.0/16.
pub fn default_pool() -> impl Iterator<Item = IpNet> {
    let pool: Ipv4Net = "10.201.0.0/16".parse().unwrap_or_else(|_| unreachable!());
    pool.subnets(24).into_iter().flatten().map(IpNet::V4)
}

/// True when two subnets share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Subnet sizes nsnet serves: from an IPv4 /8 to a /30 (a gateway and one
/// endpoint), from an IPv6 /32 to a /126. Larger ones are almost always a typo
/// (`::/0`), and would swallow every other network's address space.
pub fn check_subnet_size(subnet: &IpNet) -> Result<(), String> {
    let (min, max) = match subnet {
        IpNet::V4(_) => (8, 30),
        IpNet::V6(_) => (32, 126),
    };
    if subnet.prefix_len() > max {
        return Err(format!(
            "subnet {subnet} is too small (the longest prefix is /{max})"
        ));
    }
    if subnet.prefix_len() < min {
        return Err(format!(
            "subnet {subnet} is too large (the shortest prefix is /{min})"
        ));
    }
    Ok(())
}

/// A subnet given as CIDR must name its network address (10.1.0.0/16, not 10.1.2.3/16).
pub fn check_subnet_is_network(subnet: &IpNet) -> Result<(), String> {
    if subnet.addr() != subnet.network() {
        return Err(format!(
            "subnet {subnet} is not a network address (did you mean {}?)",
            subnet.trunc()
        ));
    }
    Ok(())
}

/// Address blocks no nsnet subnet may overlap: (block, what it is, why a
/// network there cannot work). IPv4 link-local is separate: see
/// [`check_subnet_usable`].
const UNUSABLE: &[(&str, &str, &str)] = &[
    (
        "0.0.0.0/8",
        "\"this network\" (0.0.0.0/8)",
        "its addresses are never assigned to an interface",
    ),
    (
        "127.0.0.0/8",
        "loopback (127.0.0.0/8)",
        "packets to it never leave a namespace",
    ),
    (
        "224.0.0.0/4",
        "multicast (224.0.0.0/4)",
        "a multicast address cannot be an interface's own",
    ),
    (
        "240.0.0.0/4",
        "reserved (240.0.0.0/4)",
        "the kernel neither routes nor forwards it",
    ),
    (
        "::1/128",
        "the IPv6 loopback address (::1)",
        "packets to it never leave a namespace",
    ),
    (
        "::/128",
        "the IPv6 unspecified address (::)",
        "it is never assigned to an interface",
    ),
    (
        "::ffff:0:0/96",
        "IPv4-mapped IPv6 (::ffff:0:0/96)",
        "those addresses stand for IPv4 ones and never go on the wire",
    ),
    (
        "fe80::/10",
        "IPv6 link-local (fe80::/10)",
        "every interface has its own fe80:: address and route there",
    ),
    (
        "ff00::/8",
        "IPv6 multicast (ff00::/8)",
        "a multicast address cannot be an interface's own",
    ),
];

const LINK_LOCAL_V4: &str = "169.254.0.0/16";

/// A subnet a network can hand out addresses from: none of [`UNUSABLE`], and
/// not IPv4 link-local (169.254.0.0/16, where the host's own link-local
/// traffic and cloud metadata at 169.254.169.254 live) unless `allow_link_local`.
pub fn check_subnet_usable(subnet: &IpNet, allow_link_local: bool) -> Result<(), String> {
    let overlap = |block: &str| block.parse::<IpNet>().is_ok_and(|b| overlaps(&b, subnet));
    if let Some((_, what, why)) = UNUSABLE.iter().find(|(block, _, _)| overlap(block)) {
        return Err(format!("subnet {subnet} is in {what}: {why}"));
    }
    if !allow_link_local && overlap(LINK_LOCAL_V4) {
        return Err(format!(
            "subnet {subnet} is in IPv4 link-local ({LINK_LOCAL_V4}), where the host's own \
             link-local traffic and cloud metadata (169.254.169.254) live; \
             allow it with --allow-link-local (CNI: \"allowLinkLocal\": true)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    #[derive(Default)]
    struct Fake(RefCell<HashSet<IpAddr>>);
    impl Leases for Fake {
        fn is_leased(&self, ip: IpAddr) -> Result<bool, Error> {
            Ok(self.0.borrow().contains(&ip))
        }
    }
    impl Fake {
        fn take(&self, ip: IpAddr) -> IpAddr {
            self.0.borrow_mut().insert(ip);
            ip
        }
    }

    fn pool(subnet: &str) -> Pool {
        let subnet: IpNet = subnet.parse().unwrap();
        Pool {
            subnet,
            gateway: first_host(&subnet),
            range: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allocation_skips_network_gateway_and_broadcast() {
        let p = pool("10.0.0.0/29");
        let leases = Fake::default();
        let mut last = None;
        let mut got = Vec::new();
        for _ in 0..5 {
            let a = p.allocate(last, None, &leases).unwrap();
            leases.take(a);
            last = Some(a);
            got.push(a);
        }
        let want: Vec<IpAddr> = (2..=6).map(|i| ip(&format!("10.0.0.{i}"))).collect();
        assert_eq!(got, want);
        assert_eq!(
            p.allocate(last, None, &leases),
            Err(Error::Exhausted("10.0.0.0/29".parse().unwrap()))
        );
    }

    #[test]
    fn a_slash_30_holds_one_endpoint_besides_the_gateway() {
        let p = pool("10.0.0.0/30");
        let leases = Fake::default();
        let a = leases.take(p.allocate(None, None, &leases).unwrap());
        assert_eq!(a, ip("10.0.0.2"));
        assert!(matches!(
            p.allocate(Some(a), None, &leases),
            Err(Error::Exhausted(_))
        ));
    }

    #[test]
    fn allocation_continues_after_the_last_and_wraps() {
        let p = pool("10.0.0.0/29");
        let leases = Fake::default();
        assert_eq!(
            p.allocate(Some(ip("10.0.0.4")), None, &leases).unwrap(),
            ip("10.0.0.5")
        );
        assert_eq!(
            p.allocate(Some(ip("10.0.0.6")), None, &leases).unwrap(),
            ip("10.0.0.2")
        );
        assert_eq!(
            p.allocate(Some(ip("10.0.0.7")), None, &leases).unwrap(),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ip_range_limits_allocation() {
        let mut p = pool("10.0.0.0/24");
        p.range = Some("10.0.0.128/30".parse().unwrap());
        let leases = Fake::default();
        let got: Vec<IpAddr> = (0..4)
            .map(|_| leases.take(p.allocate(None, None, &leases).unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ip("10.0.0.128"),
                ip("10.0.0.129"),
                ip("10.0.0.130"),
                ip("10.0.0.131")
            ]
        );
        assert!(p.allocate(None, None, &leases).is_err());
        assert!(matches!(
            p.check(ip("10.0.0.5")),
            Err(Error::OutsideRange { .. })
        ));
    }

    #[test]
    fn static_claims_are_checked() {
        let p = pool("10.0.0.0/24");
        let leases = Fake::default();
        assert_eq!(p.claim(ip("10.0.0.9"), &leases).unwrap(), ip("10.0.0.9"));
        leases.take(ip("10.0.0.9"));
        assert_eq!(
            p.claim(ip("10.0.0.9"), &leases),
            Err(Error::InUse(ip("10.0.0.9")))
        );
        assert!(matches!(
            p.claim(ip("10.0.0.1"), &leases),
            Err(Error::Reserved {
                why: "the gateway",
                ..
            })
        ));
        assert!(matches!(
            p.claim(ip("10.0.0.0"), &leases),
            Err(Error::Reserved { .. })
        ));
        assert!(matches!(
            p.claim(ip("10.0.0.255"), &leases),
            Err(Error::Reserved { .. })
        ));
        assert!(matches!(
            p.claim(ip("10.0.1.1"), &leases),
            Err(Error::OutsideSubnet { .. })
        ));
    }

    #[test]
    fn a_whole_address_space_does_not_overflow() {
        // Regression: size = hi - lo + 1 overflowed u128 for ::/0.
        let p = pool("::/0");
        assert!(p.allocate(None, None, &Fake::default()).is_ok());
    }

    #[test]
    fn ipv6_allocates_from_a_slash_64() {
        let p = pool("fd00:1::/64");
        let leases = Fake::default();
        assert_eq!(p.gateway, ip("fd00:1::1"));
        let a = leases.take(p.allocate(None, None, &leases).unwrap());
        assert_eq!(a, ip("fd00:1::2"));
        assert_eq!(p.allocate(Some(a), None, &leases).unwrap(), ip("fd00:1::3"));
    }

    #[test]
    fn overlap_and_subnet_checks() {
        let a: IpNet = "10.0.0.0/16".parse().unwrap();
        let b: IpNet = "10.0.5.0/24".parse().unwrap();
        let c: IpNet = "10.1.0.0/24".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
        assert!(check_subnet_is_network(&"10.0.0.5/24".parse().unwrap()).is_err());
        assert!(check_subnet_size(&"10.0.0.0/31".parse().unwrap()).is_err());
        assert!(check_subnet_size(&"::/0".parse().unwrap()).is_err());
        assert!(check_subnet_size(&"0.0.0.0/0".parse().unwrap()).is_err());
        assert!(check_subnet_size(&"fd00::/64".parse().unwrap()).is_ok());
        assert_eq!(default_pool().next().unwrap().to_string(), "10.201.0.0/24");
        assert_eq!(default_pool().count(), 256);
    }

    #[test]
    fn subnets_that_can_never_work_are_refused_with_their_reason() {
        let refused = |s: &str| check_subnet_usable(&s.parse().unwrap(), false).expect_err(s);
        for (subnet, says) in [
            ("127.0.0.0/24", "loopback (127.0.0.0/8)"),
            ("120.0.0.0/5", "loopback (127.0.0.0/8)"),
            ("224.0.0.0/24", "multicast (224.0.0.0/4)"),
            ("239.255.0.0/16", "multicast (224.0.0.0/4)"),
            ("0.0.0.0/8", "\"this network\" (0.0.0.0/8)"),
            ("0.1.0.0/16", "\"this network\" (0.0.0.0/8)"),
            ("240.0.0.0/24", "reserved (240.0.0.0/4)"),
            ("255.255.255.0/24", "reserved (240.0.0.0/4)"),
            ("::/64", "the IPv6 loopback address (::1)"),
            ("::ffff:0:0/96", "IPv4-mapped IPv6 (::ffff:0:0/96)"),
            ("fe80::/64", "IPv6 link-local (fe80::/10)"),
            ("febf:1::/64", "IPv6 link-local (fe80::/10)"),
            ("ff02::/64", "IPv6 multicast (ff00::/8)"),
            ("169.254.0.0/24", "IPv4 link-local (169.254.0.0/16)"),
            ("169.0.0.0/8", "IPv4 link-local (169.254.0.0/16)"),
        ] {
            let err = refused(subnet);
            let shown: IpNet = subnet.parse().unwrap();
            assert!(
                err.starts_with(&format!("subnet {shown} is in {says}")),
                "{subnet}: {err}"
            );
        }
    }

    #[test]
    fn link_local_ipv4_is_usable_when_asked_for_and_ordinary_subnets_always() {
        let ok = |s: &str, allow: bool| check_subnet_usable(&s.parse().unwrap(), allow);
        assert_eq!(ok("169.254.10.0/24", true), Ok(()));
        // Asking for IPv4 link-local does not open IPv6 link-local.
        assert!(ok("fe80::/64", true).is_err());
        assert!(ok("127.0.0.0/24", true).is_err());
        for subnet in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.1.0/24",
            "100.64.0.0/10",
            "1.0.0.0/8",
            "126.255.255.0/24",
            "128.0.0.0/24",
            "223.255.255.0/24",
            "169.253.0.0/16",
            "169.255.0.0/16",
            "fd00::/64",
            "2001:db8::/32",
            "fec0::/64",
            "fe00::/64",
            "0:0:0:1::/64",
        ] {
            assert_eq!(ok(subnet, false), Ok(()), "{subnet}");
        }
    }

    #[test]
    fn bounds_limit_allocation_and_count() {
        let p = Pool {
            subnet: "10.0.0.0/24".parse().unwrap(),
            gateway: ip("10.0.0.1"),
            range: None,
        };
        let b = Bounds {
            start: Some(ip("10.0.0.10")),
            end: Some(ip("10.0.0.12")),
        };
        let leases = Fake::default();
        let mut last = None;
        let mut got = Vec::new();
        for _ in 0..3 {
            let a = leases.take(p.allocate(last, Some(&b), &leases).unwrap());
            got.push(a);
            last = Some(a);
        }
        assert_eq!(got, [ip("10.0.0.10"), ip("10.0.0.11"), ip("10.0.0.12")]);
        let full = p.allocate(last, Some(&b), &leases).unwrap_err();
        assert_eq!(
            full.to_string(),
            "no free address left in 10.0.0.0/24 (10.0.0.10-10.0.0.12)"
        );
        assert!(b.contains(ip("10.0.0.11")) && !b.contains(ip("10.0.0.13")));
        let none = HashSet::new();
        assert_eq!(p.free_count(Some(&b), &none), 3);
        assert_eq!(p.free_count(None, &none), 253);
        let gw_inside = Bounds {
            start: Some(ip("10.0.0.1")),
            end: Some(ip("10.0.0.3")),
        };
        assert_eq!(p.free_count(Some(&gw_inside), &none), 2);
        assert_eq!(
            p.allocate(None, Some(&gw_inside), &Fake::default())
                .unwrap(),
            ip("10.0.0.2")
        );
    }
}
