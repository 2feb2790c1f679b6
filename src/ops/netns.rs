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

/// Deletes the name `name` (the namespace itself goes when nothing else
/// holds it), after releasing what nsnet gave the namespace: each of its
/// endpoints is disconnected (veth, addresses, published ports), one note
/// line each, returned. Without that the leases and ports stayed claimed
/// until a gc. A pod's namespace is refused: `pod rm` removes a pod whole.
pub fn delete(ctx: &super::Context, name: &NetnsName) -> Result<Vec<String>> {
    require_admin()?;
    let path = netns::named_path(name);
    // A name `ip netns` made but never mounted (or a leftover): no namespace
    // to release anything of.
    let inode = Netns::by_name(name).and_then(|ns| ns.inode()).ok();
    // No store yet: nsnet gave nothing to anyone (and makes none here).
    let inode = inode.filter(|_| ctx.state_dir.join("nsnet.db").exists());
    let mut notes = Vec::new();
    if let Some(inode) = inode {
        let state = ctx.state()?;
        if let Some(pod) = state.pods()?.into_iter().find(|p| p.net_inode == inode) {
            return Err(super::Error::Invalid(format!(
                "namespace {name} is pod {}'s; remove the pod with nsnet pod rm {}",
                pod.name, pod.name
            )));
        }
        let endpoints: Vec<_> = state
            .endpoints(None)?
            .into_iter()
            .filter(|e| e.netns_inode == inode)
            .collect();
        drop(state);
        for ep in &endpoints {
            super::endpoint::disconnect_endpoint(ctx, ep)?;
            let mut held: Vec<String> = ep.addresses.iter().map(|a| a.to_string()).collect();
            held.extend(ep.ports.iter().map(|p| p.to_string()));
            notes.push(format!(
                "note: disconnected {name} {} from network {} (released {})",
                ep.ifname,
                ep.network,
                held.join(", ")
            ));
        }
    }
    tracing::debug!("netns del: deleting {}", path.display());
    netns::delete(name)?;
    Ok(notes)
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
