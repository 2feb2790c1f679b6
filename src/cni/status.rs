//! STATUS: can an ADD be served now? Success when nsnet has its privileges, its
//! stores open, its firewall table exists or `nft --check` accepts it, the
//! config's subnet is free to define (or already defined), and addresses are
//! left in the range; otherwise the spec's code 50 with the reason. A delegated
//! IPAM plugin is asked too, and its answer passed on.

use super::config::NetConf;
use super::env::{Command, Invocation};
use super::{delegate, Error};
use crate::firewall::{Firewall, BASE_RULESET};
use crate::ipam;
use crate::ops::Context;
use crate::privilege::require_admin;
use std::collections::HashSet;
use std::net::IpAddr;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StatusError {
    #[error("nsnet cannot serve ADD: {0}")]
    Unavailable(String),
}

fn unavailable(why: impl ToString) -> Error {
    StatusError::Unavailable(why.to_string()).into()
}

/// Serves STATUS.
pub fn status(ctx: &Context, inv: &Invocation, conf: &NetConf) -> Result<(), Error> {
    require_admin().map_err(unavailable)?;
    let config = ctx.config().map_err(unavailable)?;
    let state = ctx.state().map_err(unavailable)?;
    firewall_ready()?;
    if let Some(plugin) = &conf.ipam.delegate {
        delegate::run(plugin, Command::Status, &inv.path, &conf.raw)?;
    }
    let networks = config.networks().map_err(unavailable)?;
    let Some(spec) = networks.iter().find(|n| n.name == conf.name.as_str()) else {
        // Not defined yet: the config's subnets must be free to define.
        for range in &conf.ipam.ranges {
            if let Some(other) = networks.iter().find(|n| {
                n.pools
                    .iter()
                    .any(|p| ipam::overlaps(&p.subnet, &range.subnet))
            }) {
                return Err(unavailable(format!(
                    "subnet {} overlaps network {}",
                    range.subnet, other.name
                )));
            }
        }
        return Ok(());
    };
    if conf.ipam.delegate.is_some() {
        return Ok(());
    }
    let leased: HashSet<IpAddr> = state
        .leases(&spec.name)
        .map_err(unavailable)?
        .into_iter()
        .map(|(ip, _)| ip)
        .collect();
    for pool in &spec.pools {
        let range = conf.ipam.ranges.iter().find(|r| r.subnet == pool.subnet);
        let bounds = range.map(|r| ipam::Bounds {
            start: r.start,
            end: r.end,
        });
        if pool.free_count(bounds.as_ref(), &leased) == 0 {
            let what = range.map_or(pool.subnet.to_string(), |r| match (r.start, r.end) {
                (None, None) => r.subnet.to_string(),
                (s, e) => format!("{} ({}-{})", r.subnet, fmt_opt(s), fmt_opt(e)),
            });
            return Err(unavailable(format!(
                "no free address left in {what} of network {}",
                spec.name
            )));
        }
    }
    Ok(())
}

fn fmt_opt(ip: Option<IpAddr>) -> String {
    ip.map_or("…".into(), |a| a.to_string())
}

/// nsnet's table exists, or nft would accept it (`nft --check`, which changes
/// nothing).
fn firewall_ready() -> Result<(), Error> {
    match Firewall::open_existing() {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(e) => return Err(unavailable(format!("nftables: {e}"))),
    }
    crate::firewall::nft::check(BASE_RULESET)
        .map_err(|e| unavailable(format!("nft refuses nsnet's table: {e}")))?;
    Ok(())
}
