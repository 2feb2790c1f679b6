//! Named network namespaces: add, delete, pin, list.

use super::Result;
use crate::names::NetnsName;
use crate::netns::{self, Netns, NetnsEntry};
use crate::privilege::require_admin;

/// Creates an empty named namespace with `lo` up, like a fresh container's.
pub fn add(name: &NetnsName) -> Result<()> {
    require_admin()?;
    netns::create(name)?;
    let lo_up = Netns::by_name(name)
        .map_err(super::Error::from)
        .and_then(|ns| bring_lo_up(&ns));
    if let Err(e) = lo_up {
        let _ = netns::delete(name);
        return Err(e);
    }
    Ok(())
}

/// Brings `lo` up in a namespace (idempotent).
pub fn bring_lo_up(ns: &Netns) -> Result<()> {
    lo_up(&mut ns.netlink()?, ns.label())
}

/// Brings `lo` up through a socket already open in the namespace `label`.
pub fn lo_up(nl: &mut crate::netlink::Netlink, label: &str) -> Result<()> {
    let lo = nl
        .link_by_name("lo")
        .map_err(super::nl_err(label, "looking up lo"))?
        .ok_or_else(|| super::Error::InterfaceNotFound {
            ns: label.to_owned(),
            name: "lo".into(),
        })?;
    if !lo.up {
        nl.set_up(lo.index, true)
            .map_err(super::nl_err(label, "bringing lo up"))?;
    }
    Ok(())
}

pub fn delete(name: &NetnsName) -> Result<()> {
    require_admin()?;
    Ok(netns::delete(name)?)
}

/// Names the network namespace of process `pid`, keeping it alive after the
/// process exits.
pub fn pin(pid: u32, name: &NetnsName) -> Result<()> {
    require_admin()?;
    let ns = Netns::by_pid(pid)?;
    Ok(netns::pin(&ns, name)?)
}

pub fn list() -> Result<Vec<NetnsEntry>> {
    Ok(netns::list()?)
}
