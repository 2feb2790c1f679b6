//! `table inet nsnet` as the kernel holds it, against what the store says it
//! must hold (for check, gc and reload).
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

use super::Result;
use crate::firewall::nfnl::{self, Batch, Element, Nftables};
use crate::firewall::{self, BASE_RULESET, TABLE};
use crate::netlink::{LinkKind, Netlink};
use crate::ops::{network, nl_err, Error};
use crate::store::{Endpoint, NetworkSpec};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// A field of a set's key or a map's value, by its nftables type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Ifname,
    Ether,
    /// A raw 128-bit field (`@th,64,128`: an IPv6 address nft cannot name).
    Raw128,
    Ipv4,
    Ipv6,
    Proto,
    Port,
}

impl Field {
    fn from_type(t: &str) -> Option<Self> {
        Some(match t.trim() {
            "ifname" => Field::Ifname,
            "ether_addr" => Field::Ether,
            "integer" | "@th,64,128" => Field::Raw128,
            "ipv4_addr" => Field::Ipv4,
            "ipv6_addr" => Field::Ipv6,
            "inet_proto" => Field::Proto,
            "inet_service" => Field::Port,
            _ => return None,
        })
    }

    /// Bytes in a key: every field is padded to 4 bytes.
    fn width(self) -> usize {
        match self {
            Field::Ifname | Field::Ipv6 | Field::Raw128 => 16,
            Field::Ether => 8,
            _ => 4,
        }
    }

    /// The key bytes of a value as `nft -j` prints it.
    fn encode(self, v: &Value) -> Option<Vec<u8>> {
        Some(match self {
            Field::Ifname => nfnl::ifname(v.as_str()?),
            Field::Ether => nfnl::ether(v.as_str()?.parse::<crate::names::Mac>().ok()?.0),
            Field::Raw128 => {
                let hex = v.as_str()?.strip_prefix("0x")?;
                u128::from_str_radix(hex, 16).ok()?.to_be_bytes().to_vec()
            }
            Field::Ipv4 => nfnl::ipv4(v.as_str()?.parse().ok()?),
            Field::Ipv6 => nfnl::ipv6(v.as_str()?.parse().ok()?),
            Field::Proto => nfnl::l4proto(match v {
                Value::Number(n) => u8::try_from(n.as_u64()?).ok()?,
                Value::String(s) => match s.as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    "sctp" => 132,
                    other => other.parse().ok()?,
                },
                _ => return None,
            }),
            Field::Port => nfnl::port(match v {
                Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
                Value::String(s) => s.parse().ok()?,
                _ => return None,
            }),
        })
    }

    fn decode(self, b: &[u8]) -> String {
        match self {
            Field::Ifname => {
                let name = b.split(|&c| c == 0).next().unwrap_or_default();
                String::from_utf8_lossy(name).into_owned()
            }
            Field::Ether => b
                .iter()
                .take(6)
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            Field::Ipv4 => <[u8; 4]>::try_from(b)
                .map(|o| std::net::Ipv4Addr::from(o).to_string())
                .unwrap_or_default(),
            Field::Ipv6 | Field::Raw128 => <[u8; 16]>::try_from(b)
                .map(|o| std::net::Ipv6Addr::from(o).to_string())
                .unwrap_or_default(),
            Field::Proto => match b.first() {
                Some(6) => "tcp".into(),
                Some(17) => "udp".into(),
                Some(132) => "sctp".into(),
                Some(n) => n.to_string(),
                None => String::new(),
            },
            Field::Port => match b {
                [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]).to_string(),
                _ => String::new(),
            },
        }
    }
}

/// `a . b . c` into fields; `None` if one of them is a type nsnet never uses.
/// Also the expressions of a `typeof` declaration (`iifname . @th,64,128`).
fn fields(types: &str) -> Option<Vec<Field>> {
    if types.trim().is_empty() {
        return Some(Vec::new());
    }
    types
        .split(" . ")
        .map(|t| match t.trim() {
            "iifname" | "oifname" => Some(Field::Ifname),
            t => Field::from_type(t),
        })
        .collect()
}

/// Splits key (or data) bytes into their fields.
fn split<'a>(fields: &[Field], bytes: &'a [u8]) -> Option<Vec<(Field, &'a [u8])>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for f in fields {
        if rest.len() < f.width() {
            return None;
        }
        let (head, tail) = rest.split_at(f.width());
        out.push((*f, head));
        rest = tail;
    }
    rest.is_empty().then_some(out)
}

fn show(fields: &[Field], bytes: &[u8]) -> String {
    match split(fields, bytes) {
        Some(parts) => parts
            .iter()
            .map(|(f, b)| f.decode(b))
            .collect::<Vec<_>>()
            .join(" . "),
        None => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The type of a set or map of the table.
#[derive(Debug, Clone)]
struct Schema {
    key: Vec<Field>,
    data: Vec<Field>,
}

/// An element as `nft list` would print it: `key` or `key : value`.
fn describe(schema: Option<&Schema>, e: &Element) -> String {
    let none = Schema {
        key: Vec::new(),
        data: Vec::new(),
    };
    let s = schema.unwrap_or(&none);
    match &e.data {
        Some(d) => format!("{} : {}", show(&s.key, &e.key), show(&s.data, d)),
        None => show(&s.key, &e.key),
    }
}

/// The base ruleset's shape, read from [`BASE_RULESET`].
pub(super) struct Base {
    sets: BTreeMap<String, Schema>,
    /// Each chain and how many rules it has.
    chains: Vec<(String, usize)>,
}

impl Base {
    pub(super) fn new() -> Self {
        let mut sets = BTreeMap::new();
        let mut chains = Vec::new();
        let mut chain: Option<(String, usize)> = None;
        for line in BASE_RULESET.lines().map(str::trim) {
            let decl = line
                .strip_prefix("set ")
                .or_else(|| line.strip_prefix("map "));
            let typed = decl.and_then(|d| {
                d.split_once(" { type ")
                    .or_else(|| d.split_once(" { typeof "))
            });
            if let Some((name, ty)) = typed {
                // The type, without the declaration's flags (`; flags interval;`).
                let ty = ty.split(';').next().unwrap_or_default().trim();
                let (key, data) = ty.split_once(" : ").unwrap_or((ty, ""));
                if let (Some(key), Some(data)) = (fields(key), fields(data)) {
                    sets.insert(name.to_owned(), Schema { key, data });
                }
            } else if let Some(name) = line
                .strip_prefix("chain ")
                .and_then(|r| r.strip_suffix(" {"))
            {
                chain = Some((name.to_owned(), 0));
            } else if line == "}" {
                chains.extend(chain.take());
            } else if let Some((_, rules)) = &mut chain {
                if !line.is_empty() && !line.starts_with("type ") {
                    *rules += 1;
                }
            }
        }
        Base { sets, chains }
    }

    /// The table's elements in `set`, described.
    fn describe(&self, set: &str, e: &Element) -> String {
        describe(self.sets.get(set), e)
    }
}

/// What the kernel holds in `table inet nsnet`.
pub(super) struct Listing {
    /// Elements by set or map (absent: no such set).
    sets: HashMap<String, Vec<Element>>,
    /// Rules by chain (absent: no such chain).
    chains: HashMap<String, usize>,
}

/// Reads both tables (`inet nsnet` and `bridge nsnet`) into one listing
/// (their sets and chains have distinct names); `None` when `inet nsnet`
/// does not exist. A missing `bridge nsnet` shows as missing sets and chains.
pub(super) fn list() -> Result<Option<Listing>> {
    let mut nft = Nftables::new().map_err(firewall::Error::from)?;
    if !nft
        .table_exists(nfnl::NFPROTO_INET, TABLE)
        .map_err(firewall::Error::from)?
    {
        return Ok(None);
    }
    let mut listing = Listing {
        sets: HashMap::new(),
        chains: HashMap::new(),
    };
    if !list_into("inet", &mut listing)? {
        return Ok(None); // deleted meanwhile
    }
    list_into("bridge", &mut listing)?;
    Ok(Some(listing))
}

/// Adds `FAMILY nsnet`'s sets and chains to `listing`; false when the table
/// does not exist.
fn list_into(family: &str, listing: &mut Listing) -> Result<bool> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", family, TABLE])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::CannotRun {
            program: "nft".into(),
            source: e,
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(false);
        }
        return Err(Error::Invalid(format!(
            "nft list table {family} {TABLE}: {}",
            err.trim()
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Invalid(format!("nft -j list table {family} {TABLE}: {e}")))?;
    for item in v["nftables"].as_array().into_iter().flatten() {
        if let Some(set) = item.get("set").or_else(|| item.get("map")) {
            let name = set["name"].as_str().unwrap_or_default().to_owned();
            let elems = parse_elements(set);
            listing.sets.insert(name, elems);
        } else if let Some(chain) = item.get("chain") {
            let name = chain["name"].as_str().unwrap_or_default().to_owned();
            listing.chains.entry(name).or_insert(0);
        } else if let Some(rule) = item.get("rule") {
            let name = rule["chain"].as_str().unwrap_or_default().to_owned();
            *listing.chains.entry(name).or_insert(0) += 1;
        }
    }
    Ok(true)
}

/// A JSON type: `"ifname"` or `["ifname", "ipv4_addr"]`.
fn json_fields(v: &Value) -> Option<Vec<Field>> {
    match v {
        Value::String(s) => fields(s),
        Value::Array(a) => a.iter().map(|t| Field::from_type(t.as_str()?)).collect(),
        _ => None,
    }
}

/// One key or value: a scalar, `{"concat": [...]}`, or wrapped in `{"elem": {"val": ...}}`.
fn encode(fields: &[Field], v: &Value) -> Option<Vec<u8>> {
    encode_range(fields, v).map(|(key, _)| key)
}

/// A key of an interval set: its first and last key. `nft -j` writes a
/// range part as `{"prefix": {"addr": A, "len": N}}` or `{"range": [A, B]}`.
fn encode_range(fields: &[Field], v: &Value) -> Option<(Vec<u8>, Vec<u8>)> {
    let v = v.get("elem").and_then(|e| e.get("val")).unwrap_or(v);
    let parts: Vec<&Value> = match v.get("concat") {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => vec![v],
    };
    if parts.len() != fields.len() {
        return None;
    }
    let (mut start, mut end) = (Vec::new(), Vec::new());
    for (f, p) in fields.iter().zip(parts) {
        let (a, b) = if let Some(prefix) = p.get("prefix") {
            let addr: IpAddr = prefix["addr"].as_str()?.parse().ok()?;
            let net = IpNet::new(addr, u8::try_from(prefix["len"].as_u64()?).ok()?).ok()?;
            let (lo, hi) = (
                Value::from(net.network().to_string()),
                Value::from(net.broadcast().to_string()),
            );
            (f.encode(&lo)?, f.encode(&hi)?)
        } else if let Some(Value::Array(r)) = p.get("range") {
            (f.encode(r.first()?)?, f.encode(r.get(1)?)?)
        } else {
            let b = f.encode(p)?;
            (b.clone(), b)
        };
        start.extend(a);
        end.extend(b);
    }
    Some((start, end))
}

/// The elements of a set or map object of `nft -j`; those of a type nsnet
/// never uses are skipped (never nsnet's, so never touched).
fn parse_elements(set: &Value) -> Vec<Element> {
    let Some(key) = json_fields(&set["type"]) else {
        return Vec::new();
    };
    let data = match set.get("map") {
        Some(m) => match json_fields(m) {
            Some(d) => Some(d),
            None => return Vec::new(),
        },
        None => None,
    };
    let interval = set["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "interval"));
    let mut out = Vec::new();
    for e in set["elem"].as_array().into_iter().flatten() {
        let elem = match &data {
            None if interval => encode_range(&key, e).map(|(k, end)| Element::range(k, end)),
            None => encode(&key, e).map(Element::new),
            Some(data) => match e.as_array().map(Vec::as_slice) {
                Some([k, d]) => encode(&key, k)
                    .zip(encode(data, d))
                    .map(|(k, d)| Element::with_data(k, d)),
                _ => None,
            },
        };
        out.extend(elem);
    }
    out
}

/// An element the store says the table must hold.
pub(super) struct Want {
    pub set: &'static str,
    pub elem: Element,
    /// "network web", "endpoint web/123 (e1 eth0)".
    pub owner: String,
    pub network: String,
}

/// A difference between the table's elements and the store.
pub(super) enum ElementDrift<'a> {
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
pub(super) struct Expected {
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
    pub(super) fn new(
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
                owner: super::endpoint_label(ep),
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
    pub(super) fn compare<'a>(
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
    pub(super) fn network(&self) -> &str {
        match self {
            ElementDrift::Missing(w) | ElementDrift::Different(w, _) => &w.network,
            ElementDrift::Stale { network, .. } => network,
        }
    }

    /// `(object, what was done)`, as reload and gc print it.
    pub(super) fn repaired(&self, base: &Base) -> (String, String) {
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
    pub(super) fn describe(&self, base: &Base) -> (String, String) {
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
pub(super) fn shape_drift(base: &Base, listing: &Listing) -> Vec<String> {
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
pub(super) fn lacks_network_elements(listing: Option<&Listing>, spec: &NetworkSpec) -> bool {
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
pub(super) fn up_networks(
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
pub(super) fn delete_stale(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_ruleset_shape_is_read_from_its_text() {
        let base = Base::new();
        assert_eq!(base.sets.len(), 21);
        assert_eq!(base.sets["l2_macs"].key, [Field::Ifname, Field::Ether]);
        assert_eq!(base.sets["l2_targets6"].key, [Field::Ifname, Field::Raw128]);
        assert_eq!(
            base.sets["ports4"].key,
            [Field::Ipv4, Field::Proto, Field::Port]
        );
        assert_eq!(base.sets["ports6_any"].data, [Field::Ipv6, Field::Port]);
        assert_eq!(
            base.sets["bridge_pairs"].key,
            [Field::Ifname, Field::Ifname]
        );
        let chains: HashMap<_, _> = base.chains.iter().cloned().collect();
        assert_eq!(chains.len(), 18);
        assert_eq!(chains["publish"], 5);
        assert_eq!(chains["l2_from_port_ip6"], 5);
        assert_eq!(chains["prerouting"], 1);
        assert_eq!(chains["from_bridge"], 6);
    }

    #[test]
    fn nft_json_elements_become_the_keys_nsnet_writes() {
        let set: Value = serde_json::json!({
            "name": "ports4", "type": ["ipv4_addr", "inet_proto", "inet_service"],
            "map": "ipv4_addr . inet_service",
            "elem": [[{"concat": ["127.0.0.1", "udp", 8081]}, {"concat": ["10.10.0.2", 81]}]]
        });
        let elems = parse_elements(&set);
        let key = nfnl::concat(&[
            nfnl::ipv4("127.0.0.1".parse().unwrap()),
            nfnl::l4proto(17),
            nfnl::port(8081),
        ]);
        let data = nfnl::concat(&[nfnl::ipv4("10.10.0.2".parse().unwrap()), nfnl::port(81)]);
        assert_eq!(elems, [Element::with_data(key, data)]);
        let base = Base::new();
        assert_eq!(
            base.describe("ports4", &elems[0]),
            "127.0.0.1 . udp . 8081 : 10.10.0.2 . 81"
        );
        let members: Value = serde_json::json!({
            "name": "members4", "type": ["ifname", "ipv4_addr"],
            "elem": [{"concat": ["nsbr-web", "10.10.0.2"]}, {"elem": {"val": {"concat": ["nsbr-x", "10.1.0.2"]}, "comment": "c"}}]
        });
        let elems = parse_elements(&members);
        assert_eq!(elems.len(), 2);
        assert_eq!(base.describe("members4", &elems[1]), "nsbr-x . 10.1.0.2");
    }
}
