//! Forwarding in the host namespace, without costing the host its own IPv6
//! default route.
//!
//! A network that leaves its bridge needs the host to route (`ip_forward`,
//! `net.ipv6.conf.all.forwarding`). With IPv6 forwarding on, the kernel takes
//! an interface whose `accept_ra` is 1 for a router's: it ignores router
//! adverts there, and the moment forwarding goes on it deletes the default
//! routes adverts gave it. A host that learns its IPv6 default route from
//! adverts would lose IPv6. `accept_ra=2` means "accept adverts even when
//! forwarding", so before nsnet turns IPv6 forwarding on it sets 2 on every
//! interface of the host that has 1, and lists them in `STATE_DIR/accept_ra`.
//! Left alone: loopback, interfaces with 0 or 2 (the admin's choice), and
//! nsnet's own bridges and veths (an endpoint must never give the host a
//! route). Nothing is done when forwarding is on already (the admin's setup,
//! or nsnet's earlier).
//!
//! nsnet never turns forwarding off again (it cannot tell whether something
//! else on the host relies on it), so it never puts 1 back either: with
//! forwarding on, 1 would drop the route again. Interfaces that appear later
//! start with the kernel's default (`net.ipv6.conf.default.accept_ra`).

use super::{Context, Error, Result};
use crate::store::NetworkSpec;
use std::collections::BTreeSet;
use std::path::Path;

const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf";
/// The record of the interfaces nsnet moved from `accept_ra` 1 to 2.
use crate::store::layout::ACCEPT_RA_RECORD;

/// Turns on routing in the host namespace for the families the network uses.
pub(super) fn enable(ctx: &Context, spec: &NetworkSpec) -> Result<()> {
    for pool in &spec.pools {
        let v6 = pool.subnet.addr().is_ipv6();
        let path = if v6 {
            "/proc/sys/net/ipv6/conf/all/forwarding"
        } else {
            "/proc/sys/net/ipv4/ip_forward"
        };
        let on = std::fs::read_to_string(path)
            .map(|v| v.trim() == "1")
            .unwrap_or(false);
        if on {
            continue;
        }
        if v6 {
            keep_accepting_adverts(ctx)?;
        }
        std::fs::write(path, "1").map_err(|e| Error::Io {
            what: format!("enabling forwarding ({path})"),
            source: e,
        })?;
    }
    Ok(())
}

/// Sets `accept_ra=2` on the host's interfaces that have 1 (see the module's
/// doc), and records them; on failure puts back what it changed.
fn keep_accepting_adverts(ctx: &Context) -> Result<()> {
    let ours: BTreeSet<String> = ctx
        .config()?
        .networks()?
        .into_iter()
        .map(|n| n.bridge)
        .collect();
    let names = std::fs::read_dir(IPV6_CONF).map_err(|e| Error::Io {
        what: format!("listing {IPV6_CONF}"),
        source: e,
    })?;
    let accepting: Vec<String> = names
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !matches!(n.as_str(), "all" | "default" | "lo"))
        .filter(|n| !ours.contains(n) && !is_host_veth(n))
        .filter(|n| read_accept_ra(n).as_deref() == Some("1"))
        .collect();
    let mut changed = Vec::new();
    for name in &accepting {
        match super::sysctl(&format!("net/ipv6/conf/{name}/accept_ra"), "2") {
            Ok(()) => changed.push(name.clone()),
            // Gone meanwhile: nothing to keep.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                put_back(&changed);
                return Err(e);
            }
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    record(&ctx.state_dir, &changed).inspect_err(|_| put_back(&changed))
}

use crate::store::layout::is_host_ifname as is_host_veth;

fn read_accept_ra(ifname: &str) -> Option<String> {
    let v = std::fs::read_to_string(format!("{IPV6_CONF}/{ifname}/accept_ra")).ok()?;
    Some(v.trim().to_owned())
}

/// Rollback of [`keep_accepting_adverts`], before forwarding is on.
fn put_back(changed: &[String]) {
    for name in changed {
        if let Err(e) = super::sysctl(&format!("net/ipv6/conf/{name}/accept_ra"), "1") {
            tracing::warn!("putting accept_ra=1 back on {name}: {e}");
        }
    }
}

/// Adds `names` to `STATE_DIR/accept_ra` (one interface a line).
fn record(state_dir: &Path, names: &[String]) -> Result<()> {
    let path = state_dir.join(ACCEPT_RA_RECORD);
    let io = |e| Error::Io {
        what: format!("recording accept_ra changes in {}", path.display()),
        source: e,
    };
    let mut all: BTreeSet<String> = match std::fs::read_to_string(&path) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => return Err(io(e)),
    };
    all.extend(names.iter().cloned());
    let text: String = all.iter().map(|n| format!("{n}\n")).collect();
    crate::safefs::create_private_dir_all(state_dir).map_err(io)?;
    std::fs::write(&path, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nsnets_veth_names_are_taken_for_its_veths() {
        assert!(is_host_veth(&super::super::endpoint::host_ifname("web/42")));
        for other in ["nsvpn0", "nsv0123456789ag", "eth0", "nsv0123456789abc"] {
            assert!(!is_host_veth(other), "{other}");
        }
    }
}
