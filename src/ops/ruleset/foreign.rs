//! nsnet's rules in other firewalls ([`crate::firewall::foreign`]) in
//! maintenance: `check` reports those missing (Docker, firewalld or a user
//! reloaded their firewall), `firewall reload` and `gc` put them back, and
//! delete those recorded for networks that are gone, down or opted out.

use crate::firewall::foreign::{self, Added};
use crate::firewall::Error as FwError;
use crate::ops::{network, Context, Result};
use crate::store::NetworkSpec;
use std::collections::HashSet;

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// (network, rule) put in place.
    pub added: Vec<(String, Added)>,
    /// (network, rule, why) deleted.
    pub removed: Vec<(String, Added, String)>,
    pub errors: Vec<String>,
}

/// Whether a network's rules belong in place now: it is up and did not opt out.
fn wants(spec: &NetworkSpec, up: &HashSet<String>) -> bool {
    spec.foreign_rules && up.contains(&spec.name)
}

/// Why a recorded network's rules must go, or `None` when they belong.
fn unwanted(network: &str, networks: &[NetworkSpec], up: &HashSet<String>) -> Option<String> {
    match networks.iter().find(|n| n.name == network) {
        None => Some(format!("network {network} is gone")),
        Some(n) if !n.foreign_rules => Some(format!(
            "network {network} was created with --no-foreign-rules"
        )),
        Some(n) if !up.contains(&n.name) => Some(format!(
            "network {network} is not up (its bridge {} is gone)",
            n.bridge
        )),
        Some(_) => None,
    }
}

/// Puts back what up networks lack and deletes what others left.
pub(crate) fn reconcile(
    ctx: &Context,
    networks: &[NetworkSpec],
    up: &HashSet<String>,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    for (name, _) in foreign::recorded(&ctx.state_dir).map_err(FwError::from)? {
        let Some(why) = unwanted(&name, networks, up) else {
            continue;
        };
        let (removed, errors) = foreign::remove(&ctx.state_dir, &name);
        out.removed
            .extend(removed.into_iter().map(|r| (name.clone(), r, why.clone())));
        out.errors.extend(errors);
    }
    let wanting: Vec<&NetworkSpec> = networks.iter().filter(|n| wants(n, up)).collect();
    if wanting.is_empty() {
        return Ok(out);
    }
    let droppers = foreign::probe().map_err(FwError::from)?;
    for spec in wanting {
        match foreign::ensure(&ctx.state_dir, &network::foreign_net(spec), &droppers) {
            Ok(added) => out
                .added
                .extend(added.into_iter().map(|r| (spec.name.clone(), r))),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    Ok(out)
}

/// What `nsnet check` reports: (object, problem).
pub(crate) fn drift(
    ctx: &Context,
    networks: &[NetworkSpec],
    up: &HashSet<String>,
    selected: &dyn Fn(&str) -> bool,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, rules) in foreign::recorded(&ctx.state_dir).map_err(FwError::from)? {
        if !selected(&name) {
            continue;
        }
        if let Some(why) = unwanted(&name, networks, up) {
            out.push((
                format!("network {name}"),
                format!(
                    "{} rule(s) in other firewalls are left though {why} (nsnet gc removes them)",
                    rules.len()
                ),
            ));
        }
    }
    let wanting: Vec<&NetworkSpec> = networks
        .iter()
        .filter(|n| wants(n, up) && selected(&n.name))
        .collect();
    if wanting.is_empty() {
        return Ok(out);
    }
    let droppers = foreign::probe().map_err(FwError::from)?;
    for spec in wanting {
        let missing =
            foreign::missing(&network::foreign_net(spec), &droppers).map_err(FwError::from)?;
        for rule in missing {
            out.push((
                format!("network {}", spec.name),
                format!("{rule} is missing (nsnet firewall reload puts it back)"),
            ));
        }
    }
    Ok(out)
}
