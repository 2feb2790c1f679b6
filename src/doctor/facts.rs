//! Collecting what the walk needs from the live system: the topology
//! ([`crate::graph::collect_open`]), and per namespace its routes, forwarding
//! and rp_filter sysctls, br_netfilter settings, listening sockets and nftables
//! ruleset. Reads only; changes nothing.

use super::ruleset::Ruleset;
use super::{Error, Facts, NsFacts, Result};
use crate::netlink::Route;
use crate::netns::Netns;
use crate::ops::Context;
use crate::ports::Published;
use crate::store::{Endpoint, State};
use std::collections::{BTreeMap, BTreeSet};

/// Reads everything the walk may look at.
pub fn collect(ctx: &Context) -> Result<Facts> {
    let (topology, handles) = crate::graph::collect_open(ctx)?;
    let mut namespaces = Vec::new();
    for (ns, handle) in topology.namespaces.iter().zip(&handles) {
        match read_namespace(&ns.name, handle) {
            Ok(facts) => namespaces.push(facts),
            Err(e) if ns.name == "host" => return Err(e),
            // A namespace may vanish while we look: it then has no routes.
            Err(e) => {
                tracing::debug!("doctor: reading namespace {}: {e}", ns.name);
                namespaces.push(NsFacts {
                    name: ns.name.clone(),
                    ..NsFacts::default()
                });
            }
        }
    }
    let published = published(ctx)?;
    Ok(Facts {
        topology,
        namespaces,
        published,
    })
}

fn published(ctx: &Context) -> Result<Vec<(Endpoint, Published)>> {
    match State::open_read(&ctx.state_dir)? {
        Some(state) => Ok(state.ports(None)?),
        None => Ok(Vec::new()),
    }
}

fn read_namespace(name: &str, ns: &Netns) -> Result<NsFacts> {
    let mut nl = ns.netlink()?;
    let routes: Vec<Route> = nl.routes().map_err(|source| Error::Netlink {
        ns: name.to_owned(),
        source,
    })?;
    // Best effort: a kernel without policy routing answers with an error.
    // nsnet's own source rules only take packets from a later network's
    // addresses back out through that network (`ops::source_routes`).
    let policy_rules = nl.policy_rules().map_or(0, |rules| {
        let foreign = rules.iter().filter(|r| !crate::ops::source_routes::owns(r));
        foreign.count()
    });
    let (sysctls, listening, ruleset) = ns.run(|| {
        let sysctls = read_sysctls();
        let listening = read_listening();
        let ruleset = read_ruleset();
        (sysctls, listening, ruleset)
    })?;
    Ok(NsFacts {
        name: name.to_owned(),
        routes,
        policy_rules,
        sysctls,
        listening,
        ruleset,
    })
}

/// The sysctls the walk reads, by their dotted names.
fn read_sysctls() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut read = |key: String| {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        if let Ok(v) = std::fs::read_to_string(path) {
            out.insert(key, v.trim().to_owned());
        }
    };
    read("net.ipv4.ip_forward".into());
    read("net.ipv6.conf.all.forwarding".into());
    read("net.bridge.bridge-nf-call-iptables".into());
    read("net.bridge.bridge-nf-call-ip6tables".into());
    read("net.ipv4.conf.all.rp_filter".into());
    if let Ok(dir) = std::fs::read_dir("/proc/sys/net/ipv4/conf") {
        for e in dir.flatten() {
            let ifname = e.file_name().to_string_lossy().into_owned();
            // Interface names may hold dots, which sysctl writes as slashes.
            if !ifname.contains('.') {
                read(format!("net.ipv4.conf.{ifname}.rp_filter"));
            }
        }
    }
    out
}

/// Listening TCP and bound UDP ports of the calling thread's namespace, as
/// (protocol number, port). `/proc/thread-self/net` is the thread's namespace.
fn read_listening() -> BTreeSet<(u8, u16)> {
    let mut out = BTreeSet::new();
    for (file, proto, state) in [
        ("tcp", 6u8, Some("0A")),
        ("tcp6", 6, Some("0A")),
        ("udp", 17, None),
        ("udp6", 17, None),
    ] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) else {
            continue;
        };
        out.extend(parse_sockets(&text, proto, state));
    }
    out
}

/// The local ports of `/proc/net/{tcp,udp}[6]` lines in `state` (any if None).
pub(super) fn parse_sockets(text: &str, proto: u8, state: Option<&str>) -> Vec<(u8, u16)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let st = f.nth(1)?;
            if state.is_some_and(|s| s != st) {
                return None;
            }
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            Some((proto, port))
        })
        .collect()
}

/// The namespace's ruleset, or None when nft cannot be run or fails.
fn read_ruleset() -> Option<Ruleset> {
    let out = crate::firewall::nft::run(&["-j", "list", "ruleset"], None).ok()?;
    Ruleset::parse(&out).ok()
}
