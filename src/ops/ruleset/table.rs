//! `table inet nsnet` as the kernel holds it (`firewall::listing`), against what
//! the store says it must hold (for check, gc and reload).
//!
//! The kernel's side is read with one `nft -j list table inet nsnet` (a
//! maintenance command may list the table; the hot path never does), its
//! elements turned back into the key bytes nsnet's own batches use, so they
//! compare exactly with [`crate::firewall`]'s. The base ruleset's shape (sets,
//! maps, chains and how many rules each chain has) is read from
//! [`BASE_RULESET`] itself, so it cannot fall out of step with it.
//!
//! Several nsnet stores may share one table (a CNI config may name its own
//! store). An element is therefore only ever called stale when it is nsnet's by
//! this store's networks: its interface field is one of their bridges, or the
//! address a port leads to lies in one of their subnets. Anything else in the
//! table is left alone.

pub(crate) use crate::firewall::listing::{list, split, Base, Field, Listing};
use crate::firewall::nfnl::{self, Batch, Element, Nftables};
use crate::firewall::{self, TABLE};
use crate::netlink::{LinkKind, Netlink};
use crate::ops::Result;
use crate::ops::{network, nl_err};
use crate::store::{Endpoint, NetworkSpec};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// An element the store says the table must hold.
pub(crate) struct Want {
    pub set: &'static str,
    pub elem: Element,
    /// "network web", "endpoint web/123 (e1 eth0)".
    pub owner: String,
    pub network: String,
}

/// A difference between the table's elements and the store.
pub(crate) enum ElementDrift<'a> {
    Missing(&'a Want),
    /// The key is there, leading somewhere else (`present` is the kernel's).
    Different(&'a Want, &'a Element),
    /// nsnet's by its bridge or address, owned by nothing in the store.
    Stale {
        set: &'a str,
        elem: &'a Element,
        network: String,
    },
}

/// What the store accounts for in the table.
pub(crate) struct Expected {
    pub required: Vec<Want>,
    /// Network elements of networks not up yet: allowed, not required.
    allowed: HashSet<(&'static str, Vec<u8>)>,
    /// This store's bridges (key bytes) and subnets, with their network.
    bridges: HashMap<Vec<u8>, String>,
    subnets: Vec<(IpNet, String)>,
}

impl Expected {
    /// `up`: whether a network's kernel objects should exist (its bridge
    /// exists, or it has endpoints); only then are its elements required.
    pub(crate) fn new(
        networks: &[NetworkSpec],
        endpoints: &[Endpoint],
        clusters: &[crate::store::cluster::ClusterSpec],
        up: impl Fn(&NetworkSpec) -> bool,
    ) -> Self {
        let mut required = Vec::new();
        let mut allowed = HashSet::new();
        for spec in networks {
            let mut elems = firewall::network_element_list(&network::rules(spec));
            if let Some(c) = clusters.iter().find(|c| c.network == spec.name) {
                elems.extend(crate::ops::cluster::firewall_elements(c, spec));
            }
            if up(spec) {
                required.extend(elems.into_iter().map(|(set, elem)| Want {
                    set,
                    elem,
                    owner: format!("network {}", spec.name),
                    network: spec.name.clone(),
                }));
            } else {
                allowed.extend(elems.into_iter().map(|(set, e)| (set, e.key)));
            }
        }
        for ep in endpoints {
            // An endpoint of a network this store no longer defines: nothing
            // says which bridge its elements name; check reports it.
            let Some(spec) = networks.iter().find(|n| n.name == ep.network) else {
                continue;
            };
            let rules = crate::ops::endpoint::rules(&spec.bridge, spec.isolate, ep);
            required.extend(rules.element_list().into_iter().map(|(set, elem)| Want {
                set,
                elem,
                owner: crate::ops::endpoint::label(ep),
                network: spec.name.clone(),
            }));
        }
        Expected {
            required,
            allowed,
            bridges: networks
                .iter()
                .map(|n| (nfnl::ifname(&n.bridge), n.name.clone()))
                .collect(),
            subnets: networks
                .iter()
                .flat_map(|n| n.pools.iter().map(|p| (p.subnet, n.name.clone())))
                .collect(),
        }
    }

    /// The network of this store that an element of the table belongs to by
    /// its bridge or by the address a port leads to, if any.
    fn owner(&self, base: &Base, set: &str, e: &Element) -> Option<String> {
        let schema = base.sets.get(set)?;
        let key = split(&schema.key, &e.key)?;
        for (f, b) in &key {
            if *f == Field::Ifname {
                if let Some(n) = self.bridges.get(*b) {
                    return Some(n.clone());
                }
            }
        }
        let data = split(&schema.data, e.data.as_deref()?)?;
        data.iter().find_map(|(f, b)| {
            let ip: IpAddr = match f {
                Field::Ipv4 => <[u8; 4]>::try_from(*b).ok()?.into(),
                Field::Ipv6 => <[u8; 16]>::try_from(*b).ok()?.into(),
                _ => return None,
            };
            self.subnets
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|(_, n)| n.clone())
        })
    }

    /// Every difference; with no table every required element is missing.
    pub(crate) fn compare<'a>(
        &'a self,
        base: &Base,
        listing: Option<&'a Listing>,
    ) -> Vec<ElementDrift<'a>> {
        // Present elements by set and key, for look-ups.
        let mut index: HashMap<(&str, &[u8]), &Element> = HashMap::new();
        if let Some(l) = listing {
            for (set, elems) in &l.sets {
                for e in elems {
                    index.insert((set.as_str(), e.key.as_slice()), e);
                }
            }
        }
        let mut out = Vec::new();
        let mut wanted: HashSet<(&str, &[u8])> = HashSet::new();
        for w in &self.required {
            wanted.insert((w.set, w.elem.key.as_slice()));
            match index.get(&(w.set, w.elem.key.as_slice())) {
                None => out.push(ElementDrift::Missing(w)),
                Some(e) if e.data != w.elem.data => out.push(ElementDrift::Different(w, e)),
                Some(_) => {}
            }
        }
        let mut present: Vec<(&String, &Vec<Element>)> = listing
            .into_iter()
            .flat_map(|l| &l.sets)
            .filter(|(set, _)| base.sets.contains_key(*set))
            .collect();
        present.sort_by_key(|(set, _)| *set);
        for (set, elems) in present {
            for e in elems {
                let key = (set.as_str(), e.key.as_slice());
                if wanted.contains(&key) {
                    continue;
                }
                if self.allowed.iter().any(|(s, k)| *s == set && *k == e.key) {
                    continue;
                }
                if let Some(network) = self.owner(base, set, e) {
                    out.push(ElementDrift::Stale {
                        set: set.as_str(),
                        elem: e,
                        network,
                    });
                }
            }
        }
        out
    }
}

impl ElementDrift<'_> {
    /// The network the difference belongs to.
    pub(crate) fn network(&self) -> &str {
        match self {
            ElementDrift::Missing(w) | ElementDrift::Different(w, _) => &w.network,
            ElementDrift::Stale { network, .. } => network,
        }
    }

    /// `(object, what was done)`, as reload and gc print it.
    pub(crate) fn repaired(&self, base: &Base) -> (String, String) {
        match self {
            ElementDrift::Missing(w) => (
                w.owner.clone(),
                format!(
                    "added {} to {}",
                    base.describe(w.set, &w.elem),
                    kind_of(w.set)
                ),
            ),
            ElementDrift::Different(w, e) => (
                w.owner.clone(),
                format!(
                    "replaced {} with {} in {}",
                    base.describe(w.set, e),
                    base.describe(w.set, &w.elem),
                    kind_of(w.set)
                ),
            ),
            ElementDrift::Stale { set, elem, .. } => (
                format!("table inet {TABLE}"),
                format!(
                    "deleted {} from {}: no endpoint or network owns it",
                    base.describe(set, elem),
                    kind_of(set)
                ),
            ),
        }
    }

    /// `(object, problem)`, as check prints it.
    pub(crate) fn describe(&self, base: &Base) -> (String, String) {
        match self {
            ElementDrift::Missing(w) => (
                w.owner.clone(),
                format!(
                    "nftables {} lacks {}",
                    kind_of(w.set),
                    base.describe(w.set, &w.elem)
                ),
            ),
            ElementDrift::Different(w, e) => (
                w.owner.clone(),
                format!(
                    "nftables {} holds {}, not {}",
                    kind_of(w.set),
                    base.describe(w.set, e),
                    base.describe(w.set, &w.elem)
                ),
            ),
            ElementDrift::Stale { set, elem, .. } => (
                format!("table inet {TABLE}"),
                format!(
                    "{} holds {}, which no endpoint or network owns",
                    kind_of(set),
                    base.describe(set, elem)
                ),
            ),
        }
    }
}

/// "set bridges", "map ports4".
fn kind_of(set: &str) -> String {
    if set.starts_with("ports") {
        format!("map {set}")
    } else {
        format!("set {set}")
    }
}

/// Differences between the table's shape and the base ruleset: missing sets,
/// maps and chains, chains with other rules than the base has.
pub(crate) fn shape_drift(base: &Base, listing: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    for set in base.sets.keys() {
        if !listing.sets.contains_key(set) {
            out.push(format!("{} is missing", kind_of(set)));
        }
    }
    for (chain, rules) in &base.chains {
        match listing.chains.get(chain) {
            None => out.push(format!("chain {chain} is missing")),
            Some(n) if n != rules => out.push(format!(
                "chain {chain} has {n} rule(s), the base ruleset {rules}"
            )),
            Some(_) => {}
        }
    }
    out
}

/// Whether the table lacks one of a network's own elements (or is missing).
pub(crate) fn lacks_network_elements(listing: Option<&Listing>, spec: &NetworkSpec) -> bool {
    let Some(listing) = listing else {
        return true;
    };
    firewall::network_element_list(&network::rules(spec))
        .iter()
        .any(|(set, e)| {
            !listing
                .sets
                .get(*set)
                .is_some_and(|elems| elems.iter().any(|x| x.key == e.key))
        })
}

/// Whether each network's kernel objects should exist: its bridge exists or
/// it has endpoints.
pub(crate) fn up_networks(
    host: &mut Netlink,
    networks: &[NetworkSpec],
    endpoints: &[Endpoint],
) -> Result<HashSet<String>> {
    let bridges: HashSet<String> = host
        .links()
        .map_err(nl_err("host", "listing interfaces"))?
        .into_iter()
        .filter(|l| l.kind == LinkKind::Bridge)
        .map(|l| l.name)
        .collect();
    Ok(networks
        .iter()
        .filter(|n| bridges.contains(&n.bridge) || endpoints.iter().any(|e| e.network == n.name))
        .map(|n| n.name.clone())
        .collect())
}

/// Deletes stale elements, one batch. Returns each as (element, "set NAME").
pub(crate) fn delete_stale(
    base: &Base,
    drift: &[ElementDrift<'_>],
) -> Result<Vec<(String, String)>> {
    let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
    let mut done = Vec::new();
    for d in drift {
        if let ElementDrift::Stale { set, elem, .. } = d {
            firewall::batch_delete(&mut batch, set, std::slice::from_ref(*elem));
            done.push((base.describe(set, elem), kind_of(set)));
        }
    }
    if !batch.is_empty() {
        let mut nft = Nftables::new().map_err(firewall::Error::from)?;
        nft.apply(&batch).map_err(firewall::Error::from)?;
    }
    Ok(done)
}
