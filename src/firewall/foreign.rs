//! Other firewalls on the forward path: the few rules nsnet adds to them so
//! that its networks work, and takes away again.
//!
//! Every base chain on a hook votes on its own, and a drop is final: nsnet's
//! accept in `table inet nsnet` cannot override a `FORWARD` policy of DROP set
//! by Docker or a user, another nftables table's forward chain with policy
//! drop, or firewalld's zones. So when a network comes up (and on `nsnet
//! firewall reload` and `gc`), [`probe`] looks for such droppers and
//! [`ensure`] adds, per network bridge BR, the narrowest accepts:
//!
//! - within the bridge (`-i BR -o BR`: frames `br_netfilter` passes through
//!   the IP hooks);
//! - unless internal: leaving the bridge (`-i BR`), and into it only replies
//!   and published ports' DNAT'd traffic (`-o BR` with conntrack state
//!   RELATED, ESTABLISHED or DNAT);
//! - for networks without masquerade: into the bridge (`-o BR`), since their
//!   endpoints' own addresses are reached from outside.
//!
//! The same for IPv6 whatever the network's subnets: with `br_netfilter`,
//! frames between endpoints (neighbour discovery, link-local traffic) pass
//! `ip6tables` too.
//!
//! Where: iptables (nft and legacy backend, IPv4 and IPv6, each on its own)
//! into `DOCKER-USER` when it exists (Docker keeps that chain, and what is in
//! it, across its restarts, and jumps to it first), else at the top of
//! `FORWARD`; a foreign nftables base chain on the forward hook with policy
//! drop gets the same meaning as nft rules at its top; firewalld gets the
//! bridge in its `trusted` zone (runtime only, through its D-Bus API), as
//! podman does. Each rule carries a comment naming nsnet, the network and the
//! rule's purpose, so people can tell whose it is.
//!
//! These accepts cannot open more than nsnet allows: `table inet nsnet` still
//! votes, and drops what its policy forbids (other networks, internal and
//! isolated networks), whatever the other tables accept.
//!
//! What was added is recorded per network in `STATE_DIR/foreign/NETWORK.json`
//! before it is added (written to a temporary file and renamed, so a crash
//! leaves the old or the new record, never half of one); removal deletes
//! exactly the recorded rules (by their full text with iptables, by handle and
//! comment with nft), and never touches, reorders or flushes anyone else's.
//! The record lives on `/run` like the rules themselves: a reboot loses both.

mod tools;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub use tools::Xtables;

/// The zone nsnet's bridges join on hosts where firewalld runs.
pub const FIREWALLD_ZONE: &str = "trusted";

#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct Error {
    pub what: String,
    pub why: String,
}

pub type Result<T> = std::result::Result<T, Error>;

fn err(what: impl Into<String>, why: impl fmt::Display) -> Error {
    Error {
        what: what.into(),
        why: why.to_string(),
    }
}

/// What this module needs to know of a network.
#[derive(Debug, Clone, Copy)]
pub struct ForeignNet<'a> {
    pub name: &'a str,
    pub bridge: &'a str,
    pub internal: bool,
    pub masquerade: bool,
}

/// One thing nsnet added to another firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Added {
    /// A rule inserted with an iptables tool (`iptables-nft`,
    /// `ip6tables-legacy`, ...); `rule` is what follows the chain's name.
    Iptables {
        tool: Xtables,
        table: String,
        chain: String,
        rule: Vec<String>,
    },
    /// A rule inserted at the top of a foreign nftables base chain; its
    /// `comment` is unique to this network and purpose.
    Nft {
        family: String,
        table: String,
        chain: String,
        rule: String,
        comment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<u64>,
    },
    /// The bridge put in a firewalld zone, in its runtime configuration.
    Firewalld { zone: String, interface: String },
}

impl Added {
    /// Equal but for the nft handle (which a rule gets when it is added).
    fn same(&self, other: &Added) -> bool {
        match (self, other) {
            (
                Added::Nft {
                    family,
                    table,
                    chain,
                    comment,
                    ..
                },
                Added::Nft {
                    family: f,
                    table: t,
                    chain: c,
                    comment: m,
                    ..
                },
            ) => family == f && table == t && chain == c && comment == m,
            _ => self == other,
        }
    }
}

impl fmt::Display for Added {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Added::Iptables {
                tool,
                table,
                chain,
                rule,
            } => write!(f, "{tool} -t {table} {chain}: {}", tools::shell_words(rule)),
            Added::Nft {
                family,
                table,
                chain,
                rule,
                handle,
                ..
            } => {
                write!(f, "nft {family} {table} {chain}: {rule}")?;
                match handle {
                    Some(h) => write!(f, " (handle {h})"),
                    None => Ok(()),
                }
            }
            Added::Firewalld { zone, interface } => {
                write!(f, "firewalld: interface {interface} in zone {zone}")
            }
        }
    }
}

/// The forward path's droppers other than nsnet, as [`probe`] found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Droppers {
    /// Per iptables backend and family whose `FORWARD` drops (or that Docker
    /// manages): the chain nsnet's rules go into.
    pub xtables: Vec<(Xtables, String)>,
    /// Foreign nftables base chains on the forward hook with policy drop, as
    /// (family, table, chain).
    pub nft: Vec<(String, String, String)>,
    /// firewalld runs in this network namespace.
    pub firewalld: bool,
}

impl Droppers {
    pub fn is_empty(&self) -> bool {
        self.xtables.is_empty() && self.nft.is_empty() && !self.firewalld
    }
}

/// Looks for droppers on the forward path of this network namespace. Spawns
/// `nft` once, an iptables tool per table that exists, and `dbus-send` only
/// when a system bus exists.
pub fn probe() -> Result<Droppers> {
    let chains = tools::nft_forward_chains()?;
    let mut out = Droppers::default();
    for x in Xtables::ALL {
        if !x.filter_exists(&chains)? {
            continue;
        }
        match x.forward_chain() {
            Ok(Some(chain)) => out.xtables.push((x, chain)),
            Ok(None) => {}
            // A table the tool cannot read (nft rules iptables cannot show):
            // `nsnet doctor` explains what it drops.
            Err(e) => tracing::warn!("{e}; nsnet adds no rules to it"),
        }
    }
    for c in chains {
        let iptables = matches!(c.family.as_str(), "ip" | "ip6") && c.table == "filter";
        let ours_or_theirs = c.table == crate::firewall::TABLE || c.table == "firewalld";
        if c.base_forward && c.policy_drop && !iptables && !ours_or_theirs {
            out.nft.push((c.family, c.table, c.chain));
        }
    }
    out.firewalld = tools::firewalld_here()?;
    Ok(out)
}

/// The comment on each of nsnet's rules: names nsnet, the network and why.
fn comment(net: &ForeignNet<'_>, purpose: &str) -> String {
    format!("nsnet network {}: {purpose}", net.name)
}

/// The rules network `net` needs given `droppers` (nft ones without handles).
pub fn wanted(net: &ForeignNet<'_>, droppers: &Droppers) -> Vec<Added> {
    let br = net.bridge;
    // (purpose, iptables matches, nft matches)
    let mut rules: Vec<(&str, Vec<&str>, &str)> = vec![(
        "within its bridge",
        vec!["-i", br, "-o", br],
        "iifname . oifname",
    )];
    if !net.internal {
        rules.push(("leaving its bridge", vec!["-i", br], "iifname"));
        rules.push((
            "replies and published ports",
            vec![
                "-o",
                br,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED,DNAT",
            ],
            "oifname ct",
        ));
        if !net.masquerade {
            rules.push(("routed to it (no masquerade)", vec!["-o", br], "oifname"));
        }
    }
    let mut out = Vec::new();
    for (x, chain) in &droppers.xtables {
        for (purpose, matches, _) in &rules {
            let mut rule: Vec<String> = matches.iter().map(|s| s.to_string()).collect();
            rule.extend(["-m", "comment", "--comment"].map(String::from));
            rule.push(comment(net, purpose));
            rule.extend(["-j", "ACCEPT"].map(String::from));
            out.push(Added::Iptables {
                tool: *x,
                table: "filter".into(),
                chain: chain.clone(),
                rule,
            });
        }
    }
    for (family, table, chain) in &droppers.nft {
        for (purpose, _, nft) in &rules {
            let q = format!("\"{br}\"");
            let texts: Vec<(String, &str)> = match *nft {
                "iifname . oifname" => vec![(format!("iifname {q} oifname {q}"), *purpose)],
                "iifname" => vec![(format!("iifname {q}"), *purpose)],
                "oifname" => vec![(format!("oifname {q}"), *purpose)],
                // nft cannot OR a state with a status in one rule: two rules.
                _ => vec![
                    (
                        format!("oifname {q} ct state established,related"),
                        "replies",
                    ),
                    (format!("oifname {q} ct status dnat"), "published ports"),
                ],
            };
            for (matches, purpose) in texts {
                let comment = comment(net, purpose);
                out.push(Added::Nft {
                    family: family.clone(),
                    table: table.clone(),
                    chain: chain.clone(),
                    rule: format!("{matches} accept comment \"{comment}\""),
                    comment,
                    handle: None,
                });
            }
        }
    }
    if droppers.firewalld {
        out.push(Added::Firewalld {
            zone: FIREWALLD_ZONE.into(),
            interface: br.into(),
        });
    }
    out
}

/// Whether a rule is in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Here,
    Absent,
    /// The bridge is in another firewalld zone: someone chose it, nsnet
    /// leaves it there.
    Elsewhere,
}

fn presence(rule: &Added) -> Result<Presence> {
    let here = |b: bool| if b { Presence::Here } else { Presence::Absent };
    match rule {
        Added::Iptables {
            tool,
            table,
            chain,
            rule,
        } => tool.has_rule(table, chain, rule).map(here),
        Added::Nft {
            family,
            table,
            chain,
            comment,
            ..
        } => Ok(here(
            !tools::nft_handles(family, table, chain, &[comment.as_str()])?.is_empty(),
        )),
        Added::Firewalld { zone, interface } => Ok(match tools::firewalld_zone_of(interface)? {
            Some(z) if z == *zone => Presence::Here,
            Some(_) => Presence::Elsewhere,
            None => Presence::Absent,
        }),
    }
}

/// The rules of `wanted` that are not in place: what `nsnet check` reports.
pub fn missing(net: &ForeignNet<'_>, droppers: &Droppers) -> Result<Vec<Added>> {
    let mut out = Vec::new();
    for rule in wanted(net, droppers) {
        if presence(&rule)? == Presence::Absent {
            out.push(rule);
        }
    }
    Ok(out)
}

/// Adds what network `net` lacks of [`wanted`], recording each rule before it
/// is added; returns what it added. On a failure, takes away again what this
/// call added and says what failed.
pub fn ensure(records: &Path, net: &ForeignNet<'_>, droppers: &Droppers) -> Result<Vec<Added>> {
    let path = record_path(records, net.name);
    let mut record = load(&path)?;
    let mut added: Vec<Added> = Vec::new();
    let outcome = (|| -> Result<()> {
        for rule in wanted(net, droppers) {
            match presence(&rule)? {
                Presence::Elsewhere => continue,
                // Ours (by its comment) even if a crash lost the record.
                Presence::Here => {
                    if !record.iter().any(|r| r.same(&rule)) {
                        record.push(rule);
                        save(&path, &record)?;
                    }
                    continue;
                }
                Presence::Absent => {}
            }
            record.retain(|r| !r.same(&rule));
            record.push(rule.clone());
            save(&path, &record)?;
            let done = add(&rule)
                .map_err(|why| err(format!("network {}: adding {rule}", net.name), why))?;
            if let Some(i) = record.iter().position(|r| r.same(&done)) {
                record[i] = done.clone();
            }
            save(&path, &record)?;
            added.push(done);
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => Ok(added),
        Err(e) => {
            for rule in added.iter().rev() {
                if let Err(undo) = delete(rule) {
                    tracing::warn!("network {}: taking back {rule}: {undo}", net.name);
                } else {
                    record.retain(|r| !r.same(rule));
                }
            }
            let _ = save(&path, &record);
            Err(e)
        }
    }
}

/// Deletes everything recorded for `network` (what is gone already counts as
/// deleted); returns what it deleted and every error it met. What failed
/// stays recorded, for the next `gc` to try again.
pub fn remove(records: &Path, network: &str) -> (Vec<Added>, Vec<String>) {
    let path = record_path(records, network);
    let mut record = match load(&path) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), vec![e.to_string()]),
    };
    let (mut removed, mut errors) = (Vec::new(), Vec::new());
    for rule in record.clone().iter().rev() {
        match delete(rule) {
            Ok(()) => {
                record.retain(|r| !r.same(rule));
                removed.push(rule.clone());
            }
            Err(e) => errors.push(format!("network {network}: deleting {rule}: {e}")),
        }
    }
    if let Err(e) = save(&path, &record) {
        errors.push(e.to_string());
    }
    (removed, errors)
}

/// Every network with a record, and what it holds.
pub fn recorded(records: &Path) -> Result<Vec<(String, Vec<Added>)>> {
    let dir = records.join(RECORD_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(format!("reading {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(network) = name.strip_suffix(".json") {
            out.push((network.to_owned(), load(&entry.path())?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// What is recorded for one network.
pub fn recorded_for(records: &Path, network: &str) -> Result<Vec<Added>> {
    load(&record_path(records, network))
}

fn add(rule: &Added) -> std::result::Result<Added, String> {
    match rule {
        Added::Iptables {
            tool,
            table,
            chain,
            rule: r,
        } => tool.insert(table, chain, r).map(|()| rule.clone()),
        Added::Nft {
            family,
            table,
            chain,
            rule: text,
            comment,
            ..
        } => {
            let handle = tools::nft_insert(family, table, chain, text)?;
            Ok(Added::Nft {
                family: family.clone(),
                table: table.clone(),
                chain: chain.clone(),
                rule: text.clone(),
                comment: comment.clone(),
                handle: Some(handle),
            })
        }
        Added::Firewalld { zone, interface } => {
            tools::firewalld_add(zone, interface).map(|()| rule.clone())
        }
    }
}

fn delete(rule: &Added) -> std::result::Result<(), String> {
    match rule {
        Added::Iptables {
            tool,
            table,
            chain,
            rule,
        } => tool.delete(table, chain, rule),
        Added::Nft {
            family,
            table,
            chain,
            comment,
            handle,
            ..
        } => {
            // By handle, and only if the rule there still carries our comment
            // (a table deleted and made again reuses handles); a rule added
            // before a crash recorded its handle is found by its comment.
            let found = tools::nft_handles(family, table, chain, &[comment.as_str()])
                .map_err(|e| e.to_string())?;
            let doomed: Vec<u64> = match handle {
                Some(h) if found.contains(h) => vec![*h],
                _ => found,
            };
            tools::nft_delete(family, table, chain, &doomed)
        }
        Added::Firewalld { zone, interface } => tools::firewalld_remove(zone, interface),
    }
}

const RECORD_DIR: &str = "foreign";

fn record_path(records: &Path, network: &str) -> PathBuf {
    records.join(RECORD_DIR).join(format!("{network}.json"))
}

fn load(path: &Path) -> Result<Vec<Added>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("reading {}", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(format!("reading {}", path.display()), e)),
    }
}

/// Writes the record whole or not at all (temporary file, fsync, rename); an
/// empty record is no file.
fn save(path: &Path, record: &[Added]) -> Result<()> {
    use std::io::Write;
    let what = || format!("writing {}", path.display());
    if record.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(what(), e)),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        crate::safefs::create_private_dir_all(dir).map_err(|e| err(what(), e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(record).map_err(|e| err(what(), e))?;
    let mut file = std::fs::File::create(&tmp).map_err(|e| err(what(), e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| err(what(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(what(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool, masquerade: bool) -> ForeignNet<'static> {
        ForeignNet {
            name: "web",
            bridge: "nsbr-web",
            internal,
            masquerade,
        }
    }

    fn docker() -> Droppers {
        Droppers {
            xtables: vec![(Xtables::Nft4, "DOCKER-USER".into())],
            ..Droppers::default()
        }
    }

    #[test]
    fn internal_networks_get_only_the_rule_within_their_bridge() {
        let rules = wanted(&net(true, false), &docker());
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].to_string(),
            "iptables-nft -t filter DOCKER-USER: -i nsbr-web -o nsbr-web -m comment \
             --comment 'nsnet network web: within its bridge' -j ACCEPT"
        );
    }

    #[test]
    fn routed_networks_are_reached_from_outside_and_masqueraded_ones_only_by_replies() {
        assert_eq!(wanted(&net(false, true), &docker()).len(), 3);
        let routed = wanted(&net(false, false), &docker());
        assert_eq!(routed.len(), 4);
        assert!(routed[3].to_string().contains("-o nsbr-web -m comment"));
    }

    #[test]
    fn nft_rules_carry_one_comment_each() {
        let d = Droppers {
            nft: vec![("inet".into(), "filter".into(), "forward".into())],
            firewalld: true,
            ..Droppers::default()
        };
        let rules = wanted(&net(false, true), &d);
        let comments: Vec<&str> = rules
            .iter()
            .filter_map(|r| match r {
                Added::Nft { comment, .. } => Some(comment.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(comments.len(), 4);
        let mut unique = comments.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert!(matches!(rules.last(), Some(Added::Firewalld { zone, .. }) if zone == "trusted"));
    }

    #[test]
    fn a_record_survives_a_round_trip_and_an_empty_one_is_no_file() {
        let dir = std::env::temp_dir().join(format!("nsnet-foreign-{}", std::process::id()));
        let path = record_path(&dir, "web");
        let rules = wanted(&net(false, false), &docker());
        save(&path, &rules).unwrap();
        assert_eq!(load(&path).unwrap(), rules);
        save(&path, &[]).unwrap();
        assert!(!path.exists());
        assert!(load(&path).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
