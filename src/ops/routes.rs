//! The routes a connect gives the endpoint's namespace ([`RoutePolicy`]).
//!
//! nsnet's default: a default route per family of the network via its gateway,
//! unless the namespace already has a default route of that family (then its
//! first network stays its way out, and only the subnet route, which comes with
//! the address, and source routing lead to this one). Internal networks never get a
//! default route. A CNI config may ask for no default route, another gateway, and
//! more routes (`isDefaultGateway`, `ipam.routes`); they are all set here, inside
//! the connect, on the endpoint's interface, so they go with it on any failure.

use super::{nl_err, Error, Result};
use crate::ipam::Pool;
use crate::netlink::{Netlink, Route};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::IpAddr;

/// Whether a family gets a default route, and through which gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultRoute {
    /// Via the network's gateway (unless the namespace has one already).
    #[default]
    Gateway,
    /// Via this gateway instead (unless the namespace has one already).
    Via(IpAddr),
    /// None.
    Off,
}

/// The routes a connect sets in the endpoint's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    pub default_v4: DefaultRoute,
    pub default_v6: DefaultRoute,
    /// More routes: a destination and its gateway (`None`: the network's gateway
    /// of the destination's family). The subnet's own route without a gateway
    /// comes with the address and is not added again.
    pub extra: Vec<(IpNet, Option<IpAddr>)>,
}

impl RoutePolicy {
    fn default_for(&self, v4: bool) -> DefaultRoute {
        if v4 {
            self.default_v4
        } else {
            self.default_v6
        }
    }

    /// Refuses routes the network cannot carry (before anything changes).
    pub fn validate(&self, network: &str, pools: &[Pool]) -> Result<()> {
        for (dst, gw) in &self.extra {
            let v4 = dst.addr().is_ipv4();
            if !pools.iter().any(|p| p.subnet.addr().is_ipv4() == v4) {
                return Err(Error::Invalid(format!(
                    "route {dst}: network {network} has no subnet of its family"
                )));
            }
            if gw.is_some_and(|g| g.is_ipv4() != v4) {
                return Err(Error::Invalid(format!(
                    "route {dst}: its gateway is of another family"
                )));
            }
        }
        Ok(())
    }
}

/// `0.0.0.0/0` or `::/0`.
pub fn default_dest(v4: bool) -> IpNet {
    if v4 {
        IpNet::V4(Ipv4Net::default())
    } else {
        IpNet::V6(Ipv6Net::default())
    }
}

/// Sets the routes of `policy` on interface `oif` (for non-internal networks the
/// default routes too); returns the pools of the families whose default route
/// the namespace already had (they are not its way out: source routing).
pub(super) fn apply<'a>(
    nl: &mut Netlink,
    label: &str,
    oif: u32,
    pools: &'a [Pool],
    internal: bool,
    policy: &RoutePolicy,
) -> Result<Vec<&'a Pool>> {
    let mut had = Vec::new();
    if !internal {
        let routes = nl.routes().map_err(nl_err(label, "listing routes"))?;
        for pool in pools {
            let v4 = pool.subnet.addr().is_ipv4();
            let gateway = match policy.default_for(v4) {
                DefaultRoute::Off => continue,
                DefaultRoute::Gateway => pool.gateway,
                DefaultRoute::Via(gw) => gw,
            };
            if routes
                .iter()
                .any(|r| r.is_default() && r.dest.addr().is_ipv4() == v4)
            {
                had.push(pool);
                continue;
            }
            let route = Route {
                dest: default_dest(v4),
                gateway: Some(gateway),
                oif: Some(oif),
                prefsrc: None,
            };
            nl.add_route(&route)
                .map_err(nl_err(label, format!("adding default route via {gateway}")))?;
        }
    }
    for (dst, gw) in &policy.extra {
        let v4 = dst.addr().is_ipv4();
        let Some(pool) = pools.iter().find(|p| p.subnet.addr().is_ipv4() == v4) else {
            continue; // refused by validate
        };
        if *dst == pool.subnet && gw.is_none() {
            continue;
        }
        let gateway = gw.unwrap_or(pool.gateway);
        let route = Route {
            dest: *dst,
            gateway: Some(gateway),
            oif: Some(oif),
            prefsrc: None,
        };
        nl.add_route(&route)
            .map_err(nl_err(label, format!("adding route {dst} via {gateway}")))?;
    }
    Ok(had)
}
