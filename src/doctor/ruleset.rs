//! The nftables ruleset as `nft -j list ruleset` prints it, and how its base
//! chains would vote on one packet.
//!
//! Every base chain on a hook votes on its own: an accept in one table does not
//! spare a packet from a drop in another (nsnet's own accept in `table inet
//! nsnet` is not enough when an `iptables-nft` `filter FORWARD` chain drops).
//! So each foreign base chain is judged separately, by a small evaluator that
//! understands the matches that decide container traffic (interface names,
//! addresses and prefixes, protocol, destination port, conntrack state). A match
//! it does not understand (a named set, an `xt` match of iptables-nft, ...)
//! makes the rule "maybe": a drop that may match becomes a warning, never a
//! verdict, so doctor does not blame a rule it cannot read.
//!
//! nsnet's own table is left out here: its behaviour is known from the records
//! (networks are isolated from each other, internal ones reach nothing, ...) and
//! judged by the walk itself.

use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// One base or regular chain.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    pub name: String,
    /// `type filter hook forward ...`: the hook, for base chains.
    pub hook: Option<String>,
    /// "filter", "nat", "route".
    pub kind: Option<String>,
    pub policy: Option<String>,
    /// Each rule's expressions, as `nft -j` gives them.
    pub rules: Vec<Vec<Value>>,
}

/// A map's elements as (key fields, value fields).
pub type MapElements = Vec<(Vec<Value>, Vec<Value>)>;

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub family: String,
    pub name: String,
    pub chains: Vec<Chain>,
    /// Map elements as (key fields, value fields), by map name.
    pub maps: HashMap<String, MapElements>,
}

/// A whole ruleset.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub tables: Vec<Table>,
}

impl Ruleset {
    /// Parses `nft -j list ruleset`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut tables: Vec<Table> = Vec::new();
        let items = v["nftables"].as_array().cloned().unwrap_or_default();
        let table_of = |tables: &mut Vec<Table>, o: &Value| -> usize {
            let family = o["family"].as_str().unwrap_or_default().to_owned();
            let name = o["table"].as_str().unwrap_or_default().to_owned();
            match tables
                .iter()
                .position(|t| t.family == family && t.name == name)
            {
                Some(i) => i,
                None => {
                    tables.push(Table {
                        family,
                        name,
                        ..Table::default()
                    });
                    tables.len() - 1
                }
            }
        };
        for item in &items {
            if let Some(t) = item.get("table") {
                let family = t["family"].as_str().unwrap_or_default().to_owned();
                let name = t["name"].as_str().unwrap_or_default().to_owned();
                if !tables.iter().any(|x| x.family == family && x.name == name) {
                    tables.push(Table {
                        family,
                        name,
                        ..Table::default()
                    });
                }
            } else if let Some(c) = item.get("chain") {
                let i = table_of(&mut tables, c);
                tables[i].chains.push(Chain {
                    name: c["name"].as_str().unwrap_or_default().to_owned(),
                    hook: c["hook"].as_str().map(str::to_owned),
                    kind: c["type"].as_str().map(str::to_owned),
                    policy: c["policy"].as_str().map(str::to_owned),
                    rules: Vec::new(),
                });
            } else if let Some(r) = item.get("rule") {
                let i = table_of(&mut tables, r);
                let chain = r["chain"].as_str().unwrap_or_default();
                let expr = r["expr"].as_array().cloned().unwrap_or_default();
                if let Some(c) = tables[i].chains.iter_mut().find(|c| c.name == chain) {
                    c.rules.push(expr);
                }
            } else if let Some(m) = item.get("map") {
                let i = table_of(&mut tables, m);
                let name = m["name"].as_str().unwrap_or_default().to_owned();
                let mut elems = Vec::new();
                for e in m["elem"].as_array().into_iter().flatten() {
                    if let Some([k, v]) = e.as_array().map(Vec::as_slice) {
                        elems.push((fields(k), fields(v)));
                    }
                }
                tables[i].maps.insert(name, elems);
            }
        }
        Ok(Ruleset { tables })
    }

    pub fn table(&self, family: &str, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.family == family && t.name == name)
    }
}

/// The fields of a concatenated key or value (one field when not a concat).
fn fields(v: &Value) -> Vec<Value> {
    let v = v.get("elem").and_then(|e| e.get("val")).unwrap_or(v);
    match v.get("concat").and_then(Value::as_array) {
        Some(parts) => parts.clone(),
        None => vec![v.clone()],
    }
}

/// What the evaluator knows of a packet.
#[derive(Debug, Clone)]
pub struct Packet {
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub saddr: Option<IpAddr>,
    pub daddr: IpAddr,
    /// IP protocol number; None for "any" (ping is ICMP: 1 or 58).
    pub proto: u8,
    pub dport: Option<u16>,
    /// The connection was DNATed (a published port).
    pub dnat: bool,
    /// A reply of the connection (conntrack state established), not its first
    /// packet (state new).
    pub reply: bool,
}

/// How one base chain votes on a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    Accept,
    /// Drops it: the reason ("policy drop", or the rule as text).
    Drop(String),
    /// May drop it: a rule doctor cannot fully read.
    Maybe(String),
}

/// A chain of a foreign table that does not simply accept the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub hook: String,
    pub vote: Vote,
}

/// Which table families see a packet of this IP family at an IP hook.
fn sees(family: &str, v6: bool) -> bool {
    match family {
        "inet" => true,
        "ip" => !v6,
        "ip6" => v6,
        _ => false,
    }
}

/// The votes of every foreign filter base chain on `hook` that would not accept
/// the packet. `bridge_family` judges the bridge family's chains instead (a
/// bridged frame, with the bridge ports as interfaces).
pub fn blockers(rs: &Ruleset, hook: &str, pkt: &Packet, bridge_family: bool) -> Vec<Blocker> {
    let v6 = pkt.daddr.is_ipv6();
    let mut out = Vec::new();
    for t in &rs.tables {
        if t.family == "inet" && t.name == crate::firewall::TABLE {
            continue;
        }
        let applies = if bridge_family {
            t.family == "bridge"
        } else {
            sees(&t.family, v6)
        };
        if !applies {
            continue;
        }
        for c in &t.chains {
            if c.hook.as_deref() != Some(hook) || c.kind.as_deref().is_some_and(|k| k != "filter") {
                continue;
            }
            let vote = judge(t, c, pkt, 0);
            if vote != Vote::Accept {
                out.push(Blocker {
                    family: t.family.clone(),
                    table: t.name.clone(),
                    chain: c.name.clone(),
                    hook: hook.to_owned(),
                    vote,
                });
            }
        }
    }
    out
}

/// The verdict of a rule list, or None when it falls through.
enum Flow {
    Verdict(Vote),
    /// Ran off the end (or `return`), with the doubts met on the way.
    Fall(Option<String>),
}

fn judge(t: &Table, c: &Chain, pkt: &Packet, depth: usize) -> Vote {
    match run_chain(t, c, pkt, depth) {
        Flow::Verdict(v) => v,
        Flow::Fall(doubt) => match (c.policy.as_deref(), doubt) {
            (Some("drop"), None) => Vote::Drop("policy drop".into()),
            (Some("drop"), Some(d)) => Vote::Maybe(format!("policy drop, unless {d} accepts")),
            (_, Some(d)) if d.starts_with("drop:") => Vote::Maybe(d),
            _ => Vote::Accept,
        },
    }
}

fn run_chain(t: &Table, c: &Chain, pkt: &Packet, depth: usize) -> Flow {
    let mut doubt: Option<String> = None;
    for rule in &c.rules {
        let mut matched = Some(true);
        for e in rule {
            if let Some(m) = e.get("match") {
                match eval_match(m, pkt) {
                    Some(true) => {}
                    Some(false) => {
                        break;
                    }
                    None => matched = None,
                }
                continue;
            }
            let verdict = terminal(e);
            let Some(verdict) = verdict else { continue };
            match (matched, verdict) {
                (Some(false), _) => {}
                (Some(true), Terminal::Accept) => return Flow::Verdict(Vote::Accept),
                (Some(true), Terminal::Drop) => {
                    return Flow::Verdict(Vote::Drop(format!("rule {}", rule_text(rule))))
                }
                (Some(true), Terminal::Return) => return Flow::Fall(doubt),
                (Some(true), Terminal::Jump(target, goto)) => {
                    if depth < 8 {
                        if let Some(sub) = t.chains.iter().find(|x| x.name == target) {
                            match run_chain(t, sub, pkt, depth + 1) {
                                Flow::Verdict(v) => return Flow::Verdict(v),
                                Flow::Fall(d) => {
                                    doubt = doubt.or(d);
                                    if goto {
                                        return Flow::Fall(doubt);
                                    }
                                }
                            }
                        }
                    }
                }
                (None, Terminal::Drop) => {
                    doubt = doubt.or(Some(format!("drop: rule {} may match", rule_text(rule))))
                }
                (None, Terminal::Accept | Terminal::Jump(..)) => {
                    doubt = doubt.or(Some(format!("rule {}", rule_text(rule))))
                }
                (None, Terminal::Return) => {}
            }
            break;
        }
    }
    Flow::Fall(doubt)
}

enum Terminal {
    Accept,
    Drop,
    Return,
    Jump(String, bool),
}

fn terminal(e: &Value) -> Option<Terminal> {
    let obj = e.as_object()?;
    let (k, v) = obj.iter().next()?;
    Some(match k.as_str() {
        "accept" => Terminal::Accept,
        "drop" | "reject" => Terminal::Drop,
        "return" => Terminal::Return,
        "jump" | "goto" => Terminal::Jump(v["target"].as_str()?.to_owned(), k == "goto"),
        // NAT statements end the rule as an accept would in a filter chain's eyes.
        "masquerade" | "snat" | "dnat" | "redirect" => Terminal::Accept,
        // An `xt` target of iptables-nft ("ACCEPT" is translated; others are not).
        "xt" if v["type"] == "target" => match v["name"].as_str() {
            Some("REJECT") | Some("DROP") => Terminal::Drop,
            _ => return None,
        },
        _ => return None,
    })
}

/// A rule as short text (its matches and verdict), for messages.
fn rule_text(rule: &[Value]) -> String {
    let parts: Vec<String> = rule
        .iter()
        .filter(|e| e.get("counter").is_none() && e.get("comment").is_none())
        .map(|e| e.to_string())
        .collect();
    parts.join(" ")
}

/// Evaluates one `match`: Some(result), or None when doctor cannot tell.
fn eval_match(m: &Value, pkt: &Packet) -> Option<bool> {
    let op = m["op"].as_str().unwrap_or("==");
    let left = &m["left"];
    let right = &m["right"];
    let hit = if let Some(meta) = left.get("meta") {
        match meta["key"].as_str()? {
            "iifname" => ifname_match(pkt.iif.as_deref()?, right)?,
            "oifname" => ifname_match(pkt.oif.as_deref()?, right)?,
            "l4proto" => value_match(right, &|v| proto_eq(v, pkt.proto))?,
            "nfproto" => value_match(right, &|v| {
                let want = if pkt.daddr.is_ipv6() { "ipv6" } else { "ipv4" };
                Some(v.as_str()? == want)
            })?,
            _ => return None,
        }
    } else if let Some(p) = left.get("payload") {
        let field = p["field"].as_str()?;
        let proto = p["protocol"].as_str()?;
        match (proto, field) {
            ("ip" | "ip6", "saddr" | "daddr") => {
                let is_v6 = proto == "ip6";
                if is_v6 != pkt.daddr.is_ipv6() {
                    return Some(op == "!=");
                }
                let addr = if field == "saddr" {
                    pkt.saddr?
                } else {
                    pkt.daddr
                };
                value_match(right, &|v| addr_match(addr, v))?
            }
            ("ip" | "ip6", "protocol" | "nexthdr") => {
                value_match(right, &|v| proto_eq(v, pkt.proto))?
            }
            ("tcp" | "udp" | "sctp" | "th", "dport") => {
                let own = match proto {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "sctp" => Some(132),
                    _ => None,
                };
                if own.is_some_and(|p| p != pkt.proto) {
                    return Some(false); // the protocol match implied by the field
                }
                if pkt.reply {
                    // A reply goes to the client's ephemeral port: a rule for
                    // a service port is not about it.
                    return Some(op == "!=");
                }
                let port = pkt.dport?;
                value_match(right, &|v| port_match(port, v))?
            }
            _ => return None,
        }
    } else if let Some(ct) = left.get("ct") {
        // doctor judges the first packet of a connection: state new.
        match ct["key"].as_str()? {
            "state" => {
                let state = if pkt.reply { "established" } else { "new" };
                value_match(right, &|v| Some(v.as_str()? == state))?
            }
            "status" => value_match(right, &|v| Some(v.as_str()? == "dnat" && pkt.dnat))?,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(match op {
        "!=" => !hit,
        "==" | "in" => hit,
        _ => return None,
    })
}

/// A right-hand side that may be one value or a set of them (`{"set": [...]}`,
/// or a plain list, as `ct state` prints flags). A named set (`@x`) is unknown.
fn value_match(right: &Value, one: &dyn Fn(&Value) -> Option<bool>) -> Option<bool> {
    let list = match right {
        Value::Array(a) => a.clone(),
        Value::Object(o) if o.contains_key("set") => o["set"].as_array()?.clone(),
        Value::String(s) if s.starts_with('@') => return None,
        other => vec![other.clone()],
    };
    let mut unknown = false;
    for v in &list {
        match one(v) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

fn ifname_match(name: &str, right: &Value) -> Option<bool> {
    value_match(right, &|v| {
        let pat = v.as_str()?;
        Some(match pat.strip_suffix('*') {
            Some(prefix) if !pat.ends_with("\\*") => name.starts_with(prefix),
            _ => name == pat,
        })
    })
}

fn proto_eq(v: &Value, proto: u8) -> Option<bool> {
    Some(match v {
        Value::Number(n) => n.as_u64()? == proto as u64,
        Value::String(s) => {
            let n = match s.as_str() {
                "icmp" => 1,
                "tcp" => 6,
                "udp" => 17,
                "ipv6-icmp" | "icmpv6" => 58,
                "sctp" => 132,
                _ => return None,
            };
            n == proto
        }
        _ => return None,
    })
}

fn port_match(port: u16, v: &Value) -> Option<bool> {
    Some(match v {
        Value::Number(n) => n.as_u64()? == port as u64,
        Value::Object(o) if o.contains_key("range") => {
            let r = o["range"].as_array()?;
            let lo = r.first()?.as_u64()?;
            let hi = r.get(1)?.as_u64()?;
            (lo..=hi).contains(&(port as u64))
        }
        _ => return None,
    })
}

fn addr_match(addr: IpAddr, v: &Value) -> Option<bool> {
    Some(match v {
        Value::String(s) => s.parse::<IpAddr>().ok()? == addr,
        Value::Object(o) if o.contains_key("prefix") => {
            let p = &o["prefix"];
            let net: ipnet::IpNet = format!("{}/{}", p["addr"].as_str()?, p["len"].as_u64()?)
                .parse()
                .ok()?;
            net.contains(&addr)
        }
        Value::Object(o) if o.contains_key("range") => {
            let r = o["range"].as_array()?;
            let lo: IpAddr = r.first()?.as_str()?.parse().ok()?;
            let hi: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
            lo <= addr && addr <= hi
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
