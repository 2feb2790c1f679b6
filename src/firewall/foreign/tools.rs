//! The programs that change other firewalls: the iptables tools (whose rules
//! only they can write: `xt` matches), `nft` for foreign nftables chains, and
//! `dbus-send` for firewalld's D-Bus API (a C program: `firewall-cmd` starts
//! Python and takes over half a second per call).

use super::{err, Result};
use crate::firewall::nfnl::{self, Nftables};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::process::{Command, Output, Stdio};

/// An iptables backend and family, by the tool that writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Xtables {
    #[serde(rename = "iptables-nft")]
    Nft4,
    #[serde(rename = "ip6tables-nft")]
    Nft6,
    #[serde(rename = "iptables-legacy")]
    Legacy4,
    #[serde(rename = "ip6tables-legacy")]
    Legacy6,
}

impl fmt::Display for Xtables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tool())
    }
}

/// A chain as `nft -j list chains` shows it.
#[derive(Debug, Clone)]
pub(super) struct NftChain {
    pub family: String,
    pub table: String,
    pub chain: String,
    /// A filter base chain on the forward hook.
    pub base_forward: bool,
    pub policy_drop: bool,
}

impl Xtables {
    pub const ALL: [Xtables; 4] = [
        Xtables::Nft4,
        Xtables::Nft6,
        Xtables::Legacy4,
        Xtables::Legacy6,
    ];

    pub fn tool(self) -> &'static str {
        match self {
            Xtables::Nft4 => "iptables-nft",
            Xtables::Nft6 => "ip6tables-nft",
            Xtables::Legacy4 => "iptables-legacy",
            Xtables::Legacy6 => "ip6tables-legacy",
        }
    }

    fn v6(self) -> bool {
        matches!(self, Xtables::Nft6 | Xtables::Legacy6)
    }

    /// Whether `table` exists, found without the tool: a legacy tool makes
    /// the table it is asked about, which would change the host's ruleset.
    fn table_exists(self, table: &str) -> Result<bool> {
        match self {
            Xtables::Legacy4 | Xtables::Legacy6 => {
                let path = if self.v6() {
                    "/proc/net/ip6_tables_names"
                } else {
                    "/proc/net/ip_tables_names"
                };
                // Absent without the legacy modules: then no table exists.
                let names = std::fs::read_to_string(path).unwrap_or_default();
                Ok(names.lines().any(|l| l.trim() == table))
            }
            Xtables::Nft4 | Xtables::Nft6 => {
                let family = if self.v6() {
                    nfnl::NFPROTO_IPV6
                } else {
                    nfnl::NFPROTO_IPV4
                };
                Nftables::new()
                    .and_then(|mut n| n.table_exists(family, table))
                    .map_err(|e| err(format!("looking for {self}'s table {table}"), e))
            }
        }
    }

    /// Whether the `filter` table exists; `chains` is nft's listing (the nft
    /// backend's tables are nft tables).
    pub(super) fn filter_exists(self, chains: &[NftChain]) -> Result<bool> {
        match self {
            Xtables::Nft4 | Xtables::Nft6 => {
                let family = if self.v6() { "ip6" } else { "ip" };
                Ok(chains
                    .iter()
                    .any(|c| c.family == family && c.table == "filter"))
            }
            _ => self.table_exists("filter"),
        }
    }

    /// The chain nsnet's rules go into, when `FORWARD` drops what it does not
    /// accept (policy DROP, or a last rule that drops or rejects everything)
    /// or Docker manages the table: `DOCKER-USER` when `FORWARD` jumps to it,
    /// else `FORWARD`. `None` when nothing in this table drops.
    pub(super) fn forward_chain(self) -> Result<Option<String>> {
        let out = self
            .run(&["-t", "filter", "-S"])
            .map_err(|e| err(format!("listing {self}'s filter table"), e))?;
        Ok(forward_chain_of(&out))
    }

    pub(super) fn has_rule(self, table: &str, chain: &str, rule: &[String]) -> Result<bool> {
        if !self.table_exists(table)? {
            return Ok(false);
        }
        let mut args = vec!["-t", table, "-C", chain];
        args.extend(rule.iter().map(String::as_str));
        // 0: there; 1: no such rule (or chain); anything else is a failure.
        let out = self.output(&args).map_err(|e| err(self.tool(), e))?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(err(
                format!("{self} -t {table} -C {chain}"),
                String::from_utf8_lossy(&out.stderr).trim(),
            )),
        }
    }

    pub(super) fn insert(
        self,
        table: &str,
        chain: &str,
        rule: &[String],
    ) -> std::result::Result<(), String> {
        let mut args = vec!["-t", table, "-I", chain];
        args.extend(rule.iter().map(String::as_str));
        self.run(&args).map(|_| ())
    }

    /// Deletes the rule if it is there (one copy: it is inserted once).
    pub(super) fn delete(
        self,
        table: &str,
        chain: &str,
        rule: &[String],
    ) -> std::result::Result<(), String> {
        if !self
            .has_rule(table, chain, rule)
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        let mut args = vec!["-t", table, "-D", chain];
        args.extend(rule.iter().map(String::as_str));
        self.run(&args).map(|_| ())
    }

    fn output(self, args: &[&str]) -> std::result::Result<Output, String> {
        // -w: wait for the xtables lock instead of failing beside Docker.
        Command::new(self.tool())
            .arg("-w")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {} ({e}); install iptables", self.tool()))
    }

    fn run(self, args: &[&str]) -> std::result::Result<String, String> {
        let out = self.output(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            // The first line says what; a usage hint may follow.
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr.trim().lines().next().unwrap_or_default().to_owned())
        }
    }
}

/// See [`Xtables::forward_chain`]; `listing` is `iptables -S` of the table.
pub(super) fn forward_chain_of(listing: &str) -> Option<String> {
    let lines: Vec<&str> = listing.lines().map(str::trim).collect();
    if lines.contains(&"-N DOCKER-USER") && lines.contains(&"-A FORWARD -j DOCKER-USER") {
        return Some("DOCKER-USER".into());
    }
    let policy_drop = lines.contains(&"-P FORWARD DROP");
    let last_drops = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("-A FORWARD "))
        .is_some_and(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // Nothing but the verdict (and its options): it takes everything.
            matches!(words.get(2..4), Some(["-j", "DROP" | "REJECT"]))
        });
    (policy_drop || last_drops).then(|| "FORWARD".into())
}

/// Every chain nftables holds (`nft -j list chains`).
pub(super) fn nft_forward_chains() -> Result<Vec<NftChain>> {
    let out =
        nft(&["-j", "list", "chains"], None).map_err(|e| err("listing nftables chains", e))?;
    Ok(parse_chains(&out))
}

fn parse_chains(json: &str) -> Vec<NftChain> {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("chain"))
        .map(|c| NftChain {
            family: s(c, "family"),
            table: s(c, "table"),
            chain: s(c, "name"),
            base_forward: c["hook"] == "forward" && c["type"] == "filter",
            policy_drop: c["policy"] == "drop",
        })
        .collect()
}

/// Handles of the rules in a chain that carry one of `comments`; none when
/// the chain or its table is gone.
pub(super) fn nft_handles(
    family: &str,
    table: &str,
    chain: &str,
    comments: &[&str],
) -> Result<Vec<u64>> {
    let out = match nft(&["-a", "-j", "list", "chain", family, table, chain], None) {
        Ok(out) => out,
        Err(e) if e.contains("No such file or directory") => return Ok(Vec::new()),
        Err(e) => return Err(err(format!("listing chain {family} {table} {chain}"), e)),
    };
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    Ok(v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("rule"))
        .filter(|r| r["comment"].as_str().is_some_and(|c| comments.contains(&c)))
        .filter_map(|r| r["handle"].as_u64())
        .collect())
}

/// Inserts a rule at the top of a chain; returns its handle.
pub(super) fn nft_insert(
    family: &str,
    table: &str,
    chain: &str,
    rule: &str,
) -> std::result::Result<u64, String> {
    let out = nft(
        &[
            "--echo", "--handle", "insert", "rule", family, table, chain, rule,
        ],
        None,
    )?;
    out.lines()
        .find_map(|l| {
            l.rsplit_once("# handle ")
                .and_then(|(_, h)| h.trim().parse().ok())
        })
        .ok_or_else(|| format!("nft did not say the new rule's handle: {out:?}"))
}

/// Deletes rules by handle, in one transaction.
pub(super) fn nft_delete(
    family: &str,
    table: &str,
    chain: &str,
    handles: &[u64],
) -> std::result::Result<(), String> {
    if handles.is_empty() {
        return Ok(());
    }
    let script: String = handles
        .iter()
        .map(|h| format!("delete rule {family} {table} {chain} handle {h}\n"))
        .collect();
    nft(&["-f", "-"], Some(&script)).map(|_| ())
}

/// `nft`, its error cut to the first line (the next ones repeat the command
/// with carets under the culprit).
fn nft(args: &[&str], stdin: Option<&str>) -> std::result::Result<String, String> {
    crate::firewall::nft::run(args, stdin)
        .map_err(|e| e.lines().next().unwrap_or_default().to_owned())
}

const FIREWALLD: &str = "org.fedoraproject.FirewallD1";

/// Whether firewalld runs in this network namespace: it owns its name on the
/// system bus, and its process shares our namespace (a bus reached through a
/// shared `/run` may belong to another namespace's firewalld).
pub(super) fn firewalld_here() -> Result<bool> {
    let bus = std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some()
        || std::path::Path::new("/run/dbus/system_bus_socket").exists();
    if !bus {
        return Ok(false);
    }
    let pid = match dbus(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.GetConnectionUnixProcessID",
        &[&format!("string:{FIREWALLD}")],
    ) {
        Ok(out) => out
            .split_whitespace()
            .skip_while(|w| *w != "uint32")
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok()),
        // No owner: firewalld does not run.
        Err(DbusError::Failed(_)) => None,
        Err(DbusError::NoTool(e)) => {
            tracing::warn!("cannot ask the system bus whether firewalld runs: {e}");
            None
        }
    };
    let Some(pid) = pid else {
        return Ok(false);
    };
    let ino = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    match (
        ino(&format!("/proc/{pid}/ns/net")),
        ino("/proc/self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => Ok(a == b),
        _ => Ok(false),
    }
}

/// The firewalld zone an interface is bound to (`None`: none, so the default
/// zone applies to it).
pub(super) fn firewalld_zone_of(interface: &str) -> Result<Option<String>> {
    let out = dbus(
        FIREWALLD,
        "/org/fedoraproject/FirewallD1",
        &format!("{FIREWALLD}.zone.getZoneOfInterface"),
        &[&format!("string:{interface}")],
    )
    .map_err(|e| err(format!("asking firewalld for the zone of {interface}"), e))?;
    let zone = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("string \""))
        .filter_map(|l| l.strip_suffix('"'))
        .next_back()
        .unwrap_or_default();
    Ok((!zone.is_empty()).then(|| zone.to_owned()))
}

pub(super) fn firewalld_add(zone: &str, interface: &str) -> std::result::Result<(), String> {
    dbus(
        FIREWALLD,
        "/org/fedoraproject/FirewallD1",
        &format!("{FIREWALLD}.zone.addInterface"),
        &[&format!("string:{zone}"), &format!("string:{interface}")],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Takes the interface out of the zone if it is still there; nothing to do
/// when firewalld no longer runs (its runtime configuration went with it).
pub(super) fn firewalld_remove(zone: &str, interface: &str) -> std::result::Result<(), String> {
    if !firewalld_here().map_err(|e| e.to_string())? {
        return Ok(());
    }
    if firewalld_zone_of(interface)
        .map_err(|e| e.to_string())?
        .as_deref()
        != Some(zone)
    {
        return Ok(());
    }
    dbus(
        FIREWALLD,
        "/org/fedoraproject/FirewallD1",
        &format!("{FIREWALLD}.zone.removeInterface"),
        &[&format!("string:{zone}"), &format!("string:{interface}")],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[derive(Debug)]
enum DbusError {
    NoTool(String),
    Failed(String),
}

impl fmt::Display for DbusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbusError::NoTool(e) | DbusError::Failed(e) => f.write_str(e),
        }
    }
}

fn dbus(
    dest: &str,
    path: &str,
    method: &str,
    args: &[&str],
) -> std::result::Result<String, DbusError> {
    let out = Command::new("dbus-send")
        .args(["--system", "--print-reply", "--reply-timeout=10000"])
        .arg(format!("--dest={dest}"))
        .arg(path)
        .arg(method)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DbusError::NoTool(format!("cannot run dbus-send ({e}); install dbus-bin")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(DbusError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// Arguments as a shell would need them typed.
pub(super) fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.,:/=@".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_user_is_used_when_forward_jumps_to_it() {
        let docker = "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N DOCKER\n\
                      -N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n-A FORWARD -o docker0 -j DOCKER\n\
                      -A DOCKER-USER -j RETURN\n";
        assert_eq!(forward_chain_of(docker).as_deref(), Some("DOCKER-USER"));
    }

    #[test]
    fn forward_is_used_when_its_policy_or_last_rule_drops() {
        assert_eq!(
            forward_chain_of("-P FORWARD DROP\n").as_deref(),
            Some("FORWARD")
        );
        let last = "-P FORWARD ACCEPT\n-A FORWARD -i eth0 -j ACCEPT\n\
                    -A FORWARD -j REJECT --reject-with icmp-host-prohibited\n";
        assert_eq!(forward_chain_of(last).as_deref(), Some("FORWARD"));
    }

    #[test]
    fn nothing_is_added_where_nothing_drops() {
        assert_eq!(forward_chain_of("-P FORWARD ACCEPT\n"), None);
        // A conditional drop at the end does not drop nsnet's traffic.
        let cond = "-P FORWARD ACCEPT\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\n";
        assert_eq!(forward_chain_of(cond), None);
        // DOCKER-USER that FORWARD never reaches is no place for rules.
        assert_eq!(
            forward_chain_of("-P FORWARD ACCEPT\n-N DOCKER-USER\n"),
            None
        );
    }

    #[test]
    fn base_chains_on_the_forward_hook_are_told_apart() {
        let json = r#"{"nftables": [{"metainfo": {}}, {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, {"chain": {"family": "inet", "table": "filter", "name": "mine", "handle": 2}}]}"#;
        let chains = parse_chains(json);
        assert_eq!(chains.len(), 2);
        assert!(chains[0].base_forward && chains[0].policy_drop);
        assert!(!chains[1].base_forward);
    }
}
