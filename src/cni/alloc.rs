//! Address arithmetic for host-local style ranges (`rangeStart`/`rangeEnd`)
//! and for STATUS's "addresses left" count. Pure, unit-tested.
//!
//! nsnet's own allocator hands out a whole subnet (or a CIDR part of it); a
//! range bounded by arbitrary first and last addresses is served here instead:
//! the CNI face picks the next free address after the highest one leased in the
//! range (wrapping, as host-local does) and claims it as a static address in the
//! store's transaction, trying the next one if a concurrent ADD took it first.

use super::config::Range;
use crate::ipam::Pool;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many candidates are looked at before a range is called full (bounds the
/// work in huge IPv6 ranges).
const MAX_PROBES: u128 = 1 << 16;

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 {
        // ok: callers stay within an IPv4 subnet's bounds.
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

/// First and last address of the span addresses are handed out from: the
/// range's bounds if it has them, else the pool's `--ip-range`, else the subnet.
fn bounds(pool: &Pool, range: Option<&Range>) -> (u128, u128) {
    let span = pool.range.unwrap_or(pool.subnet);
    let lo = range
        .and_then(|r| r.start)
        .map_or(to_u128(span.network()), to_u128);
    let hi = range
        .and_then(|r| r.end)
        .map_or(to_u128(span.broadcast()), to_u128);
    (lo, hi.max(lo))
}

/// Free addresses of `pool` (within `range`), in the order to try them: after
/// the highest address leased there, wrapping, skipping reserved and leased ones.
pub fn candidates(pool: &Pool, range: &Range, leased: &HashSet<IpAddr>) -> Vec<IpAddr> {
    let (lo, hi) = bounds(pool, Some(range));
    let v4 = pool.subnet.addr().is_ipv4();
    let size = (hi - lo).saturating_add(1);
    let start = leased
        .iter()
        .map(|ip| to_u128(*ip))
        .filter(|n| (lo..=hi).contains(n))
        .max()
        .map_or(lo, |last| if last == hi { lo } else { last + 1 });
    let first = start - lo;
    // (first + i) mod size, without overflowing in huge IPv6 spans.
    let offset = move |i: u128| {
        if i >= size - first {
            i - (size - first)
        } else {
            first + i
        }
    };
    (0..size.min(MAX_PROBES))
        .map(|i| from_u128(lo + offset(i), v4))
        .filter(|ip| pool.check(*ip).is_ok() && !leased.contains(ip))
        .take(64)
        .collect()
}

/// Whether `ip` lies within the range's bounds.
pub fn in_range(range: &Range, ip: IpAddr) -> bool {
    let n = to_u128(ip);
    range.subnet.contains(&ip)
        && range.start.is_none_or(|s| n >= to_u128(s))
        && range.end.is_none_or(|e| n <= to_u128(e))
}

/// How many addresses are left to hand out (saturating at `u128::MAX`).
pub fn free_count(pool: &Pool, range: Option<&Range>, leased: &HashSet<IpAddr>) -> u128 {
    let (lo, hi) = bounds(pool, range);
    let v4 = pool.subnet.addr().is_ipv4();
    let total = (hi - lo).saturating_add(1);
    let inside = |n: u128| (lo..=hi).contains(&n);
    let mut taken: HashSet<u128> = HashSet::new();
    let mut reserved = vec![to_u128(pool.subnet.network()), to_u128(pool.gateway)];
    if v4 && pool.subnet.prefix_len() < 31 {
        reserved.push(to_u128(pool.subnet.broadcast()));
    }
    taken.extend(reserved.into_iter().filter(|n| inside(*n)));
    taken.extend(leased.iter().map(|ip| to_u128(*ip)).filter(|n| inside(*n)));
    total.saturating_sub(taken.len() as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(subnet: &str) -> Pool {
        let subnet: ipnet::IpNet = subnet.parse().unwrap();
        Pool {
            subnet,
            gateway: crate::ipam::first_host(&subnet),
            range: None,
        }
    }

    fn range(p: &Pool, start: Option<&str>, end: Option<&str>) -> Range {
        Range {
            subnet: p.subnet,
            start: start.map(|s| s.parse().unwrap()),
            end: end.map(|s| s.parse().unwrap()),
            gateway: None,
        }
    }

    fn ips(list: &[&str]) -> HashSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn candidates_follow_the_highest_lease_and_wrap() {
        let p = pool("10.0.0.0/24");
        let r = range(&p, Some("10.0.0.10"), Some("10.0.0.13"));
        let c = candidates(&p, &r, &ips(&[]));
        assert_eq!(
            c,
            vec!["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"]
                .into_iter()
                .map(|s| s.parse::<IpAddr>().unwrap())
                .collect::<Vec<_>>()
        );
        let c = candidates(&p, &r, &ips(&["10.0.0.11"]));
        assert_eq!(c[0].to_string(), "10.0.0.12");
        assert_eq!(c.last().unwrap().to_string(), "10.0.0.10");
        let c = candidates(&p, &r, &ips(&["10.0.0.13"]));
        assert_eq!(c[0].to_string(), "10.0.0.10");
        assert!(candidates(
            &p,
            &r,
            &ips(&["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"])
        )
        .is_empty());
    }

    #[test]
    fn reserved_addresses_are_never_candidates() {
        let p = pool("10.0.0.0/29");
        let r = range(&p, None, None);
        let c: Vec<String> = candidates(&p, &r, &ips(&[]))
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            c,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
    }

    #[test]
    fn huge_spans_neither_overflow_nor_panic() {
        let p = pool("8000::/1");
        let r = range(&p, None, None);
        let c = candidates(&p, &r, &ips(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"]));
        assert_eq!(c[0].to_string(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(c[1].to_string(), "8000::2");
        let all = pool("::/0");
        assert!(!candidates(&all, &range(&all, None, None), &ips(&["ffff::1"])).is_empty());
        assert!(free_count(&all, None, &ips(&[])) > 1 << 100);
    }

    #[test]
    fn free_counts() {
        let p = pool("10.0.0.0/30");
        assert_eq!(free_count(&p, None, &ips(&[])), 1);
        assert_eq!(free_count(&p, None, &ips(&["10.0.0.2"])), 0);
        let p = pool("10.0.0.0/24");
        let r = range(&p, Some("10.0.0.100"), Some("10.0.0.109"));
        assert_eq!(
            free_count(&p, Some(&r), &ips(&["10.0.0.100", "10.0.0.5"])),
            9
        );
        let p6 = pool("fd00::/64");
        assert!(free_count(&p6, None, &ips(&[])) > 1 << 60);
        assert!(in_range(&r, "10.0.0.105".parse().unwrap()));
        assert!(!in_range(&r, "10.0.0.99".parse().unwrap()));
    }
}
