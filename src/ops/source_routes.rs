//! Source-based routing for a namespace's further networks.
//!
//! A namespace's first network gives it its default route; a later one brings
//! only its subnet route (the default route rule, [`super::endpoint`]). A reply
//! from an address of that later network (TCP, or UDP from a socket bound to
//! the address) then follows the first network's default route: it leaves
//! through the wrong bridge, where the host's reverse-path filter drops it, or
//! conntrack misses it and masquerade makes it a new flow. So for each address
//! of an endpoint whose family's default route the namespace already had,
//! connect adds, inside the namespace:
//!
//! - a rule `from ADDR lookup TABLE`, priority [`PRIORITY`];
//! - in TABLE, the network's subnet route and a default route via its gateway,
//!   both on the endpoint's interface (neighbours on the subnet are still
//!   reached directly; everything else from ADDR goes back through its bridge).
//!
//! TABLE is [`TABLE_BASE`] plus the interface's index: unique per interface in
//! the namespace for the interface's life (the kernel does not reuse an index
//! soon), no state needed to pick it, far from the small numbers admins use
//! (`/etc/iproute2/rt_tables`), and never one of the kernel's 253-255. One
//! priority serves every interface: the rules' sources are the endpoints' own
//! addresses, so they never overlap. [`PRIORITY`] puts them after an admin's
//! own rules (`ip rule add` without `pref` picks one below the lowest rule)
//! and before the main table (32766), whose default route they override.
//!
//! The table's routes vanish with the interface; rules stay until deleted.
//! The endpoint's record names the table and addresses ([`SourceRoutes`]),
//! written before the rules exist, so every teardown (disconnect, `network
//! rm`, gc, CNI DEL, `pod rm`) deletes them while the namespace lives; a dead
//! namespace takes them along. A server that answers UDP from a socket bound
//! to the wildcard address without `IP_PKTINFO` still answers from the first
//! network's address: the kernel picks that source from the main table before
//! any rule can match it.

use super::rollback::Rollback;
use super::{nl_err, Result};
use crate::ipam::Pool;
use crate::netlink::{Netlink, Route, Rule};
use crate::netns::Netns;
use crate::store::{Endpoint, SourceRoutes, State};
use ipnet::IpNet;

/// The rules' priority (see the module's doc).
pub const PRIORITY: u32 = 32000;
/// A table is this plus the interface's index ("ns" in ASCII): an index is at
/// most `i32::MAX`, so the sum stays below `u32::MAX`.
pub const TABLE_BASE: u32 = 0x6e73_0000;

/// Whether nsnet made this rule (doctor leaves these out of its warning).
pub fn owns(rule: &Rule) -> bool {
    rule.priority == PRIORITY && rule.table > TABLE_BASE
}

/// What connect will add for the endpoint on interface `oif`: the addresses of
/// `pools` (the families whose default route the namespace already had).
fn plan(oif: u32, ep: &Endpoint, pools: &[&Pool]) -> Option<SourceRoutes> {
    let from: Vec<IpNet> = ep
        .addresses
        .iter()
        .filter(|a| pools.iter().any(|p| p.subnet.contains(&a.addr())))
        .copied()
        .collect();
    let table = TABLE_BASE.checked_add(oif)?;
    (!from.is_empty()).then_some(SourceRoutes { table, from })
}

fn rule(table: u32, addr: &IpNet) -> Rule {
    Rule {
        v6: addr.addr().is_ipv6(),
        source: IpNet::new(addr.addr(), addr.max_prefix_len()).ok(),
        table,
        priority: PRIORITY,
    }
}

/// Source routing for `ep` on interface `oif` in `ns`, for the addresses of
/// `pools` (the families whose default route the namespace already had):
/// recorded in the endpoint's record first, undone by `rollback` on failure.
pub(super) fn connect(
    state: &State,
    ns: &Netns,
    nl: &mut Netlink,
    rollback: &mut Rollback,
    oif: u32,
    ep: &mut Endpoint,
    pools: &[&Pool],
) -> Result<()> {
    let Some(sr) = plan(oif, ep, pools) else {
        return Ok(());
    };
    tracing::debug!("connect: source routing in table {}", sr.table);
    ep.source_routes = Some(sr.clone());
    state.update_endpoint(ep)?;
    let (target, undo) = (ns.try_clone()?, sr.clone());
    rollback.push(format!("rules of table {}", sr.table), move || {
        delete(&target, &undo)
    });
    add(nl, ns.label(), oif, &sr, pools)?;
    tracing::debug!("connect: source routing rules and routes added");
    Ok(())
}

/// Adds the table's routes and the rules of `sr` (see the module's doc).
fn add(nl: &mut Netlink, label: &str, oif: u32, sr: &SourceRoutes, pools: &[&Pool]) -> Result<()> {
    for addr in &sr.from {
        let Some(pool) = pools.iter().find(|p| p.subnet.contains(&addr.addr())) else {
            continue;
        };
        let default = IpNet::new(pool.subnet.network(), 0)
            .map_err(|e| super::Error::Invalid(e.to_string()))?
            .trunc();
        for (dest, gateway) in [(pool.subnet, None), (default, Some(pool.gateway))] {
            let route = Route {
                dest,
                gateway,
                oif: Some(oif),
                prefsrc: None,
            };
            nl.add_route_to(&route, sr.table).map_err(nl_err(
                label,
                format!("adding route {dest} to table {}", sr.table),
            ))?;
        }
        nl.add_rule(&rule(sr.table, addr)).map_err(nl_err(
            label,
            format!("adding rule from {} lookup {}", addr.addr(), sr.table),
        ))?;
    }
    Ok(())
}

/// Deletes the rules of `sr` in `ns` (those that exist).
fn delete(ns: &Netns, sr: &SourceRoutes) -> std::result::Result<(), String> {
    let mut nl = ns.netlink().map_err(|e| e.to_string())?;
    for addr in &sr.from {
        nl.delete_rule(&rule(sr.table, addr)).map_err(|e| {
            format!(
                "deleting rule from {} lookup {} in {}: {e}",
                addr.addr(),
                sr.table,
                ns.label()
            )
        })?;
    }
    Ok(())
}

/// [`delete`] for a torn-down endpoint, if its namespace still lives.
pub(crate) fn delete_for(ep: &Endpoint) -> Option<String> {
    let sr = ep.source_routes.as_ref()?;
    let Some(ns) = super::alive::find_netns(ep) else {
        tracing::debug!("teardown {}: its namespace is gone, with its rules", ep.id);
        return None;
    };
    let result = delete(&ns, sr).err();
    tracing::debug!("teardown {}: source routing rules deleted", ep.id);
    result
}

/// The rules of `sr` missing from the namespace `nl` is in (for `nsnet check`).
pub(crate) fn missing(nl: &mut Netlink, sr: &SourceRoutes) -> crate::netlink::Result<Vec<Rule>> {
    let present = nl.rules()?;
    Ok(sr
        .from
        .iter()
        .map(|a| rule(sr.table, a))
        .filter(|r| !present.contains(r))
        .collect())
}
