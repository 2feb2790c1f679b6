//! nsnet's firewall ruleset as a whole, against the store: `nsnet firewall reload`
//! puts both tables back as the store says they must be (after someone flushed the
//! ruleset, deleted a table, or changed rules or elements by hand), and every
//! connect first calls [`reinstall_if_deleted`]. [`table`] compares the kernel's
//! listing with the store's expectations (check and gc use it too), [`foreign`] the
//! rules nsnet keeps in other firewalls.

pub(crate) mod foreign;
pub(crate) mod table;

use super::lock::Exclusive;
use super::Result;
use crate::firewall::nfnl::{self, Batch, Element, Nftables};
use crate::firewall::{self, TABLE};
use crate::netlink::Netlink;
use crate::ops::{nl_err, Context, Error};
use std::collections::BTreeMap;
use table::{list, shape_drift, up_networks, Base, ElementDrift, Expected};

/// `nsnet firewall reload`: declares `table inet nsnet` again (atomically,
/// keeping its elements) and puts back every element the store accounts for,
/// deleting the stale ones, in one transaction (delete by key, then add, so
/// nothing is ever doubled). Returns one line per change.
pub fn reload(ctx: &Context) -> Result<Vec<String>> {
    crate::privilege::require_admin()?;
    // No connect or disconnect changes elements meanwhile; and the lock that
    // guards declaring the base ruleset (taken by connect) after it.
    let _ops = Exclusive::acquire(ctx)?;
    let _base_lock = crate::ops::lock::Lock::acquire(&ctx.state_dir).map_err(|e| Error::Io {
        what: format!("locking {}", ctx.state_dir.display()),
        source: e,
    })?;
    let networks = ctx.config()?.networks()?;
    let endpoints = ctx.state()?.endpoints(None)?;
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    let base = Base::new();
    let before = list()?;
    let mut lines = Vec::new();
    match &before {
        None => lines.push(format!("table inet {TABLE}: declared (it was missing)")),
        Some(l) => lines.extend(
            shape_drift(&base, l)
                .into_iter()
                .map(|d| format!("table inet {TABLE}: declared again: {d}")),
        ),
    }
    firewall::redeclare_base()?;
    // A bridge deleted under its endpoints: back, whole, with their veths
    // (which the kernel only detached) on it again.
    for spec in &networks {
        lines.extend(crate::ops::network::repair_ports(ctx, &mut host, spec)?);
    }
    let up = up_networks(&mut host, &networks, &endpoints)?;

    let clusters = ctx.config()?.clusters()?;
    let expected = Expected::new(&networks, &endpoints, &clusters, |n| up.contains(&n.name));
    let drift = expected.compare(&base, before.as_ref());
    let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
    for d in &drift {
        if let ElementDrift::Stale { set, elem, .. } = d {
            firewall::batch_delete(&mut batch, set, std::slice::from_ref(*elem));
        }
    }
    let mut by_set: BTreeMap<&str, Vec<Element>> = BTreeMap::new();
    for w in &expected.required {
        by_set.entry(w.set).or_default().push(w.elem.clone());
    }
    for (set, elems) in &by_set {
        firewall::batch_delete(&mut batch, set, elems);
    }
    for (set, elems) in &by_set {
        firewall::batch_add(&mut batch, set, elems);
    }
    if !batch.is_empty() {
        let mut nft = Nftables::new().map_err(firewall::Error::from)?;
        nft.apply(&batch).map_err(firewall::Error::from)?;
    }
    for d in &drift {
        let (object, done) = d.repaired(&base);
        lines.push(format!("{object}: {done}"));
    }
    for spec in networks.iter().filter(|n| up.contains(&n.name)) {
        let applied = crate::ops::cluster::reapply(ctx, spec)?;
        for a in &applied.added {
            lines.push(format!("network {} (cluster): added {a}", spec.name));
        }
        for r in &applied.removed {
            lines.push(format!("network {} (cluster): removed {r}", spec.name));
        }
    }
    // The other firewalls' share: after the table, so an error there leaves
    // nsnet's own rules whole.
    let foreign = foreign::reconcile(ctx, &networks, &up)?;
    for (network, rule) in &foreign.added {
        lines.push(format!("network {network}: added {rule}"));
    }
    for (network, rule, why) in &foreign.removed {
        lines.push(format!("network {network}: deleted {rule} ({why})"));
    }
    if !foreign.errors.is_empty() {
        return Err(Error::Teardown {
            what: "firewall reload: rules in other firewalls".into(),
            errors: foreign.errors,
        });
    }
    lines.push(format!(
        "table inet {TABLE}: {} element(s) of {} network(s) and {} endpoint(s) in place",
        expected.required.len(),
        up.len(),
        endpoints
            .iter()
            .filter(|e| networks.iter().any(|n| n.name == e.network))
            .count()
    ));
    Ok(lines)
}

/// Whether nsnet has networks in use in this namespace: endpoints recorded,
/// or a bridge of one of its networks (other than `except`) is up. Both
/// come only after the base ruleset was declared (a first connect declares
/// it under nsnet's lock, then brings the bridge up, then records its
/// endpoint), so a missing `table inet nsnet` seen *after* this says true
/// means someone deleted it (or flushed the ruleset). A bridge that exists
/// but is down may be one a first connect is making right now.
pub fn networks_in_use(ctx: &Context, host: &mut Netlink, except: Option<&str>) -> Result<bool> {
    if !ctx.state()?.endpoints(None)?.is_empty() {
        return Ok(true);
    }
    let links: Vec<String> = host
        .links()
        .map_err(nl_err("host", "listing interfaces"))?
        .into_iter()
        .filter(|l| l.up)
        .map(|l| l.name)
        .collect();
    Ok(ctx
        .config()?
        .networks()?
        .iter()
        .any(|n| Some(n.name.as_str()) != except && links.contains(&n.bridge)))
}

/// Before a connect: if `table inet nsnet` was deleted while nsnet has
/// networks in use, puts it back whole, as `nsnet firewall reload` does, and
/// returns reload's lines (none when nothing was missing). Otherwise the
/// connect would declare a bare table holding its own elements only, and
/// every other endpoint's published ports and masquerade would stay broken.
/// Runs before the connect holds the operations lock (reload takes it
/// exclusively).
///
/// The tables are looked at again after the networks in use: a first connect
/// beside this one may have declared them in between (they did not exist
/// yet, nobody deleted them), and only evidence seen before the look counts.
pub fn reinstall_if_deleted(ctx: &Context) -> Result<Vec<String>> {
    // Both tables there: nothing to do. `bridge nsnet` alone missing: an
    // older nsnet declared the base ruleset (or someone deleted it), and the
    // endpoints' ports pass nothing until it is back.
    if firewall::Firewall::tables_exist()? == (true, true) {
        return Ok(Vec::new());
    }
    let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
    if !networks_in_use(ctx, &mut host, None)?
        || firewall::Firewall::tables_exist()? == (true, true)
    {
        return Ok(Vec::new());
    }
    reload(ctx)
}
