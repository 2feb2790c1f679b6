//! nsnet's two tables as the kernel holds them, read back with `nft -j list table`
//! (a maintenance command may list; the hot path never does), and the base
//! ruleset's shape read from [`BASE_RULESET`] itself, so the two compare exactly:
//! elements are turned back into the key bytes nsnet's own batches use
//! ([`crate::firewall`]). `ops::maint` compares them with what the store says.

use super::nfnl::{self, Element, Nftables};
use super::{Error, Result, BASE_RULESET, TABLE};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A field of a set's key or a map's value, by its nftables type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
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
pub(crate) fn split<'a>(fields: &[Field], bytes: &'a [u8]) -> Option<Vec<(Field, &'a [u8])>> {
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
pub(crate) struct Schema {
    pub(crate) key: Vec<Field>,
    pub(crate) data: Vec<Field>,
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
pub(crate) struct Base {
    pub(crate) sets: BTreeMap<String, Schema>,
    /// Each chain and how many rules it has.
    pub(crate) chains: Vec<(String, usize)>,
}

impl Base {
    pub(crate) fn new() -> Self {
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
    pub(crate) fn describe(&self, set: &str, e: &Element) -> String {
        describe(self.sets.get(set), e)
    }
}

/// What the kernel holds in `table inet nsnet`.
pub(crate) struct Listing {
    /// Elements by set or map (absent: no such set).
    pub(crate) sets: HashMap<String, Vec<Element>>,
    /// Rules by chain (absent: no such chain).
    pub(crate) chains: HashMap<String, usize>,
}

/// Reads both tables (`inet nsnet` and `bridge nsnet`) into one listing
/// (their sets and chains have distinct names); `None` when `inet nsnet`
/// does not exist. A missing `bridge nsnet` shows as missing sets and chains.
pub(crate) fn list() -> Result<Option<Listing>> {
    let mut nft = Nftables::new().map_err(Error::from)?;
    if !nft
        .table_exists(nfnl::NFPROTO_INET, TABLE)
        .map_err(Error::from)?
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
    let v = match crate::firewall::nft::list_json(&["table", family, TABLE]) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(false),
        Err(e) => return Err(Error::Nft(e)),
    };
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
