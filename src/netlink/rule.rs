//! Policy routing rules (`ip rule`): `RTM_NEWRULE`, `RTM_DELRULE`, `RTM_GETRULE`.

use super::{Netlink, Result};
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A rule that sends the route look-ups it matches to a table: `from SOURCE
/// lookup TABLE priority PRIORITY`. Rules with other selectors (`to`, `iif`,
/// `fwmark`, ...) are listed with those left out; rules with another action
/// (`goto`, `unreachable`, ...) with table 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// IPv6 or IPv4 (a rule belongs to one family).
    pub v6: bool,
    /// `from`; `None` matches every source.
    pub source: Option<IpNet>,
    pub table: u32,
    pub priority: u32,
}

fn rule_message(rule: &Rule) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = if rule.v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    msg.header.action = RuleAction::ToTable;
    // Tables above 255 only fit the attribute; the header's byte says "see it".
    msg.header.table = u8::try_from(rule.table).unwrap_or(0);
    msg.attributes.push(RuleAttribute::Table(rule.table));
    msg.attributes.push(RuleAttribute::Priority(rule.priority));
    if let Some(src) = rule.source {
        msg.header.src_len = src.prefix_len();
        msg.attributes.push(RuleAttribute::Source(src.network()));
    }
    msg
}

fn parse_rule(msg: &RuleMessage) -> Rule {
    let v6 = msg.header.family == AddressFamily::Inet6;
    let mut table = u32::from(msg.header.table);
    let mut priority = 0;
    let mut source = None;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Source(a) => source = IpNet::new(*a, msg.header.src_len).ok(),
            _ => {}
        }
    }
    if msg.header.action != RuleAction::ToTable {
        table = 0;
    }
    Rule {
        v6,
        source,
        table,
        priority,
    }
}

impl Netlink {
    pub fn add_rule(&mut self, rule: &Rule) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewRule(rule_message(rule)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Deletes the rule with exactly this source, table and priority; `Ok(false)`
    /// when there is none.
    pub fn delete_rule(&mut self, rule: &Rule) -> Result<bool> {
        match self.request(RouteNetlinkMessage::DelRule(rule_message(rule)), 0) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every rule, IPv4 and IPv6, the kernel's own included.
    pub fn rules(&mut self) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RuleMessage::default();
            req.header.family = family;
            for answer in self.dump(RouteNetlinkMessage::GetRule(req))? {
                if let RouteNetlinkMessage::NewRule(msg) = answer {
                    out.push(parse_rule(&msg));
                }
            }
        }
        Ok(out)
    }

    /// The rules that send look-ups elsewhere than the kernel's own local, main
    /// and default tables: when there are none, the main table alone decides
    /// where a packet goes.
    pub fn policy_rules(&mut self) -> Result<Vec<Rule>> {
        let mut rules = self.rules()?;
        rules.retain(|r| !matches!(r.table, 253..=255));
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_survives_the_message_round_trip() {
        for (v6, src, table) in [
            (false, "10.2.0.3/32", 0x6e73_0005),
            (true, "fd00:2::3/128", 100),
        ] {
            let rule = Rule {
                v6,
                source: Some(src.parse().unwrap()),
                table,
                priority: 32000,
            };
            assert_eq!(parse_rule(&rule_message(&rule)), rule);
        }
    }

    #[test]
    fn a_rule_without_a_lookup_has_table_zero() {
        let mut msg = rule_message(&Rule {
            v6: false,
            source: None,
            table: 254,
            priority: 5,
        });
        msg.header.action = RuleAction::Unreachable;
        assert_eq!(parse_rule(&msg).table, 0);
    }
}
