//! Foreign nftables chains on the packet's hooks, and the rules that fix a drop.

use super::{in_ns, Walker};
use crate::doctor::ruleset::{self, Blocker, Packet, Vote};

impl Walker<'_> {
    /// Every foreign base chain on `hooks` in namespace `ns`; false (and a
    /// failure) when one drops the packet.
    pub(super) fn foreign(
        &mut self,
        ns: usize,
        hooks: &[&str],
        iif: Option<String>,
        oif: Option<String>,
    ) -> bool {
        let f = self.f;
        let Some(rs) = &f.namespaces[ns].ruleset else {
            if f.namespaces[ns].name == "host" {
                self.warn(
                    ns,
                    "cannot read the nftables ruleset (is nft installed?)".into(),
                );
            }
            return true;
        };
        let pkt = Packet {
            iif: iif.clone(),
            oif: oif.clone(),
            saddr: self.src,
            daddr: self.d,
            proto: self.proto(),
            dport: self.port.map(|(p, _)| p),
            dnat: self.dnat,
            reply: false,
        };
        for hook in hooks {
            let pkt = Packet {
                iif: if *hook == "output" {
                    None
                } else {
                    pkt.iif.clone()
                },
                oif: if *hook == "prerouting" || *hook == "input" {
                    None
                } else {
                    pkt.oif.clone()
                },
                ..pkt.clone()
            };
            for b in ruleset::blockers(rs, hook, &pkt, false) {
                if !self.blocker(ns, &b, &pkt) {
                    return false;
                }
            }
        }
        // The replies cross the forward hook too, the other way round.
        if let (true, Some(i), Some(o), Some(src)) =
            (hooks.contains(&"forward"), iif, oif, self.src)
        {
            let reply = Packet {
                iif: Some(o),
                oif: Some(i),
                saddr: Some(self.d),
                daddr: src,
                dport: None,
                reply: true,
                ..pkt
            };
            for b in ruleset::blockers(rs, "forward", &reply, false) {
                if !self.blocker(ns, &b, &reply) {
                    return false;
                }
            }
        }
        true
    }

    /// The bridge family's forward chains, for a frame switched between ports.
    pub(super) fn foreign_bridge(&mut self, ns: usize, iif: &str, oif: &str) -> bool {
        let Some(rs) = &self.f.namespaces[ns].ruleset else {
            return true;
        };
        let pkt = Packet {
            iif: Some(iif.to_owned()),
            oif: Some(oif.to_owned()),
            saddr: self.src,
            daddr: self.d,
            proto: self.proto(),
            dport: self.port.map(|(p, _)| p),
            dnat: self.dnat,
            reply: false,
        };
        for b in ruleset::blockers(rs, "forward", &pkt, true) {
            if !self.blocker(ns, &b, &pkt) {
                return false;
            }
        }
        true
    }

    pub(super) fn blocker(&mut self, ns: usize, b: &Blocker, pkt: &Packet) -> bool {
        let chain = format!(
            "table {} {} chain {} (hook {})",
            b.family, b.table, b.chain, b.hook
        );
        match &b.vote {
            Vote::Accept => true,
            Vote::Maybe(why) => {
                self.warn(ns, format!("{chain} may drop it: {why}"));
                true
            }
            Vote::Drop(why) => {
                let note = if b.hook == "forward" && b.chain.to_lowercase() == "forward" {
                    " (each base chain votes on its own: nsnet's accept does not override it)"
                } else {
                    ""
                };
                let it = if pkt.reply { "the replies" } else { "it" };
                self.fail(
                    ns,
                    format!("{chain} drops {it}: {why}{note}"),
                    Some(accept_fix(&self.f.namespaces[ns].name, b, pkt)),
                );
                false
            }
        }
    }
}

/// iptables' own chains, kept by `iptables-nft` in tables of these names.
fn is_iptables(b: &Blocker) -> bool {
    matches!(b.family.as_str(), "ip" | "ip6")
        && matches!(
            b.table.as_str(),
            "filter" | "mangle" | "raw" | "security" | "nat"
        )
        && matches!(
            b.chain.as_str(),
            "INPUT" | "FORWARD" | "OUTPUT" | "PREROUTING" | "POSTROUTING"
        )
}

/// The rules that let this packet (and its replies) through a chain that drops it.
fn accept_fix(ns: &str, b: &Blocker, pkt: &Packet) -> String {
    let prefix = in_ns(ns);
    let (iif, oif) = (pkt.iif.as_deref(), pkt.oif.as_deref());
    if is_iptables(b) {
        let tool = if b.family == "ip6" {
            "ip6tables-nft"
        } else {
            "iptables-nft"
        };
        let mut m = String::new();
        if let Some(i) = iif {
            m.push_str(&format!(" -i {i}"));
        }
        if let Some(o) = oif {
            m.push_str(&format!(" -o {o}"));
        }
        let table = if b.table == "filter" {
            String::new()
        } else {
            format!(" -t {}", b.table)
        };
        if pkt.reply {
            return format!(
                "{prefix}{tool}{table} -I {}{m} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                b.chain
            );
        }
        let mut fix = format!("{prefix}{tool}{table} -I {}{m} -j ACCEPT", b.chain);
        if let (Some(i), Some(o)) = (iif, oif) {
            if i != o {
                fix.push_str(&format!(
                    " && {prefix}{tool}{table} -I {} -i {o} -o {i} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                    b.chain
                ));
            }
        }
        return fix;
    }
    let mut m = String::new();
    if let Some(i) = iif {
        m.push_str(&format!(" iifname \"{i}\""));
    }
    if let Some(o) = oif {
        m.push_str(&format!(" oifname \"{o}\""));
    }
    let rule = |m: &str| {
        format!(
            "{prefix}nft insert rule {} {} {}{m} accept",
            b.family, b.table, b.chain
        )
    };
    if pkt.reply {
        return rule(&format!("{m} ct state established,related"));
    }
    let mut fix = rule(&m);
    if let (Some(i), Some(o)) = (iif, oif) {
        if i != o {
            fix.push_str(" && ");
            fix.push_str(&rule(&format!(
                " iifname \"{o}\" oifname \"{i}\" ct state established,related"
            )));
        }
    }
    fix
}
