//! `nsnet doctor FROM TO[:PORT[/PROTO]]`: why does a packet not get through?
//!
//! Doctor walks the path the kernel would take from FROM to TO, namespace by
//! namespace, and checks at each step what can stop a packet there: a missing
//! route, an interface that is down or has no carrier, a bridge port isolated,
//! forwarding off, rp_filter, br_netfilter passing bridged frames to another
//! tool's filter chain, a foreign base chain that drops (each base chain votes
//! on its own, so nsnet's accept does not help), nsnet's own isolation between
//! networks (by design), and, for a port, the DNAT maps of published ports and
//! whether anything listens at the end.
//!
//! It is split like the rest of nsnet: [`facts::collect`] reads the system (the
//! only part that needs a kernel), [`walk::walk`] is a pure function of those
//! facts and the request, and [`ruleset`] judges nftables chains. The walk stops
//! at the first blocking point and names the command that fixes it.

pub mod facts;
pub mod ruleset;
pub mod walk;

use crate::netlink::Route;
use crate::ports::{Proto, Published};
use crate::store::Endpoint;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Graph(#[from] crate::graph::Error),
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("namespace {ns}: listing routes: {source}")]
    Netlink {
        ns: String,
        #[source]
        source: crate::netlink::Error,
    },
    /// The request names something that does not exist (exit 2).
    #[error("{0}")]
    BadInput(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// One end of the path, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Host,
    /// A named namespace, a pod, or any name `nsnet graph` shows (`pid:N`, `run:ID`).
    Namespace(String),
    Address(IpAddr),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Host => f.write_str("host"),
            Place::Namespace(n) => f.write_str(n),
            Place::Address(a) => write!(f, "{a}"),
        }
    }
}

fn place(s: &str) -> std::result::Result<Place, String> {
    if s.is_empty() {
        return Err("empty name".into());
    }
    if s == "host" {
        return Ok(Place::Host);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Place::Address(ip));
    }
    // Namespaces held only by a process, or by `nsnet run`, as `nsnet graph` names them.
    let bare = s
        .strip_prefix("pid:")
        .or_else(|| s.strip_prefix("run:"))
        .unwrap_or(s);
    if bare.is_empty()
        || bare
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ':')
    {
        return Err(format!("{s:?} is neither a namespace name nor an address"));
    }
    Ok(Place::Namespace(s.to_owned()))
}

impl FromStr for Place {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        place(s)
    }
}

/// TO: a place and maybe a port (`b`, `b:80`, `10.0.0.2:53/udp`, `[2001:db8::2]:80`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub place: Place,
    pub port: Option<(u16, Proto)>,
}

impl FromStr for Destination {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        // A bare IPv6 address holds colons but no port.
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Destination {
                place: Place::Address(ip),
                port: None,
            });
        }
        let (head, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, tail) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: missing ]"))?;
            let port = tail
                .strip_prefix(':')
                .ok_or_else(|| format!("{s:?}: expected :PORT after ]"))?;
            (addr, Some(port))
        } else if let Some((kind, rest)) = s
            .split_once(':')
            .filter(|(k, _)| *k == "pid" || *k == "run")
        {
            match rest.split_once(':') {
                Some((id, p)) => (&s[..kind.len() + 1 + id.len()], Some(p)),
                None => (s, None),
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let place = place(head)?;
        let port = match port {
            None => None,
            Some(p) => Some(port_spec(p).map_err(|e| format!("{s:?}: {e}"))?),
        };
        Ok(Destination { place, port })
    }
}

fn port_spec(s: &str) -> std::result::Result<(u16, Proto), String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let port: u16 = num
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("bad port {num:?} (1-65535)"))?;
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        other => return Err(format!("bad protocol {other:?} (tcp, udp or sctp)")),
    };
    Ok((port, proto))
}

/// What doctor found about one namespace beyond the topology.
#[derive(Debug, Clone, Default)]
pub struct NsFacts {
    pub name: String,
    pub routes: Vec<Route>,
    /// Policy routing rules that send lookups beyond the main table.
    pub policy_rules: usize,
    /// By dotted name: `net.ipv4.ip_forward`, `net.ipv4.conf.eth0.rp_filter`, ...
    pub sysctls: BTreeMap<String, String>,
    /// (IP protocol, port) of listening TCP and bound UDP sockets.
    pub listening: BTreeSet<(u8, u16)>,
    /// None: nft could not be run there.
    pub ruleset: Option<ruleset::Ruleset>,
}

/// Everything the walk looks at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub topology: crate::graph::Topology,
    /// Same order as `topology.namespaces`.
    pub namespaces: Vec<NsFacts>,
    /// Published ports as the store records them.
    pub published: Vec<(Endpoint, Published)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Something doctor cannot fully judge; does not block the verdict.
    Warn,
    Fail,
}

/// One step of the path and what doctor found there.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub status: Status,
    /// The namespace the check is about.
    pub namespace: String,
    pub message: String,
    /// The command that fixes it (for a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The whole diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    pub destination: IpAddr,
    /// `80/tcp`, or none for a ping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    pub hops: Vec<Hop>,
    /// True when nothing blocks the path.
    pub clear: bool,
}

impl Report {
    /// The first failing hop: where the path is blocked.
    pub fn blocked_at(&self) -> Option<&Hop> {
        self.hops.iter().find(|h| h.status == Status::Fail)
    }

    /// The report for a terminal: a line per hop, the fix under a failure.
    pub fn render(&self) -> String {
        let port = self
            .port
            .as_deref()
            .map(|p| format!(" port {p}"))
            .unwrap_or_default();
        let mut out = if self.to == self.destination.to_string() {
            format!("{} -> {}{port}\n", self.from, self.to)
        } else {
            format!(
                "{} -> {} ({}{port})\n",
                self.from, self.to, self.destination
            )
        };
        for h in &self.hops {
            let mark = match h.status {
                Status::Ok => "✓",
                Status::Warn => "!",
                Status::Fail => "✗",
            };
            out.push_str(&format!("  {mark} {}: {}\n", h.namespace, h.message));
            if let Some(fix) = &h.fix {
                out.push_str(&format!("      fix: {fix}\n"));
            }
        }
        match self.blocked_at() {
            Some(h) => out.push_str(&format!("blocked in {}: {}\n", h.namespace, h.message)),
            None => out.push_str("the path is clear\n"),
        }
        out
    }
}

/// Diagnoses the path from `from` to `to`: reads the system, then walks.
pub fn diagnose(ctx: &crate::ops::Context, from: &Place, to: &Destination) -> Result<Report> {
    let facts = facts::collect(ctx)?;
    walk::walk(&facts, from, to)
}

#[cfg(test)]
mod tests;
