//! nsnet's own rules (from its records), rp_filter, and published ports.

use super::{lpm, ns_index, sysctl_cmd, At, Next, Walker};
use crate::doctor::ruleset::Table;
use crate::graph::Network;
use crate::ports::Proto;
use serde_json::Value;
use std::net::IpAddr;

impl<'a> Walker<'a> {
    /// Strict rp_filter drops a packet whose source is routed back through
    /// another interface than the one it came in on.
    pub(super) fn rp_filter(&mut self, at: At) -> bool {
        if self.v6() {
            return true;
        }
        let (Some(src), Some(ii)) = (self.src, at.in_if) else {
            return true;
        };
        let f = self.f;
        let ns = &f.topology.namespaces[at.ns];
        let in_if = &ns.interfaces[ii];
        let nf = &f.namespaces[at.ns];
        let get = |k: &str| {
            nf.sysctls
                .get(&format!("net.ipv4.conf.{k}.rp_filter"))
                .and_then(|v| v.parse::<u8>().ok())
                .unwrap_or(0)
        };
        let mode = get("all").max(get(&in_if.name));
        if mode == 0 {
            return true;
        }
        let back = lpm(&nf.routes, src);
        let ok = match (mode, back) {
            (_, None) => false,
            (1, Some(r)) => r.oif == Some(in_if.index),
            _ => true,
        };
        if !ok {
            let why = match back {
                None => format!("there is no route back to {src}"),
                Some(r) => format!(
                    "the route back to {src} leaves through {}",
                    r.oif
                        .and_then(|o| ns.interfaces.iter().find(|i| i.index == o))
                        .map(|i| i.name.as_str())
                        .unwrap_or("?")
                ),
            };
            self.fail(
                at.ns,
                format!("rp_filter={mode} on {} drops it: {why}", in_if.name),
                Some(sysctl_cmd(
                    &ns.name,
                    &format!("net.ipv4.conf.{}.rp_filter", in_if.name),
                    "2",
                )),
            );
        }
        ok
    }

    /// nsnet's own rules, from its records: what `table inet nsnet` does.
    pub(super) fn nsnet_rules(
        &mut self,
        ns: usize,
        in_net: Option<&Network>,
        out_net: Option<&Network>,
    ) -> bool {
        let from_name = self.name(self.s).to_owned();
        if let Some(i) = in_net {
            if i.internal && out_net.is_none_or(|o| o.name != i.name) {
                self.fail(
                    ns,
                    format!(
                        "network {} is internal: its endpoints reach only each other and its gateway, by design",
                        i.name
                    ),
                    Some("use a network created without --internal".into()),
                );
                return false;
            }
        }
        match (in_net, out_net) {
            (Some(i), Some(o)) if i.name == o.name && i.isolate && !self.dnat => {
                self.fail(
                    ns,
                    format!(
                        "network {} isolates its endpoints (--isolate): they cannot reach each other, not even routed through the gateway, by design (only published ports)",
                        i.name
                    ),
                    Some("use a network created without --isolate".into()),
                );
                false
            }
            (Some(i), Some(o)) if i.name != o.name && !self.dnat => {
                self.fail(
                    ns,
                    format!(
                        "networks {} and {} are isolated from each other, by design (nsnet drops traffic between them)",
                        i.name, o.name
                    ),
                    Some(format!("nsnet network connect {} {from_name}", o.name)),
                );
                false
            }
            (None, Some(o)) if o.masquerade && !o.internal && !self.dnat => {
                let target = o
                    .endpoints
                    .iter()
                    .find(|e| e.addresses.iter().any(|a| a.addr() == self.d));
                let published = self.port.and_then(|(p, proto)| {
                    self.f.published.iter().find(|(_, x)| {
                        x.proto == proto
                            && x.container_port == p
                            && (x.container_v4.map(IpAddr::from) == Some(self.d)
                                || x.container_v6.map(IpAddr::from) == Some(self.d))
                    })
                });
                let (advice, fix) = match (published, target, self.port) {
                    (Some((_, x)), _, _) => (
                        format!("it is published as {x}: connect to that host port"),
                        None,
                    ),
                    (None, Some(e), Some((p, proto))) => (
                        "publish the port, then connect to a host address".to_owned(),
                        Some(format!(
                            "nsnet network disconnect {0} {1} && nsnet network connect {0} {1} -p {p}:{p}/{proto}",
                            o.name, e.namespace
                        )),
                    ),
                    _ => (
                        "publish a port (nsnet network connect ... -p HOST_PORT:PORT) and connect to a host address, or use a network created with --no-masquerade".to_owned(),
                        None,
                    ),
                };
                self.fail(
                    ns,
                    format!(
                        "network {} masquerades: from outside, its endpoints are reached only through published ports, by design; {advice}",
                        o.name
                    ),
                    fix,
                );
                false
            }
            _ => true,
        }
    }

    /// Published ports: the DNAT maps of `table inet nsnet` for a host address.
    pub(super) fn publish(&mut self, at: At) -> Option<Next> {
        let (port, proto) = self.port?;
        let f = self.f;
        let nf = &f.namespaces[at.ns];
        let table = nf
            .ruleset
            .as_ref()
            .and_then(|r| r.table("inet", crate::firewall::TABLE));
        if let Some((ip, cport, map)) = table.and_then(|t| dnat_lookup(t, self.d, proto, port)) {
            let ep = f
                .topology
                .networks
                .iter()
                .flat_map(|n| n.endpoints.iter())
                .find(|e| e.addresses.iter().any(|a| a.addr() == ip))
                .map(|e| format!(" (endpoint {} in {})", e.id, e.namespace))
                .unwrap_or_default();
            self.ok(
                at.ns,
                format!(
                    "{}:{port}/{proto} is published: {map} DNATs it to {ip}:{cport}{ep}",
                    self.d
                ),
            );
            self.d = ip;
            self.port = Some((cport, proto));
            self.dnat = true;
            return Some(self.route(at));
        }
        if nf.listening.contains(&(proto.number(), port)) {
            return None; // a service of the host itself
        }
        let recorded = f.published.iter().find(|(_, p)| {
            p.proto == proto
                && p.host_port == port
                && match p.host {
                    crate::ports::HostAddr::Ip(h) => h == self.d,
                    crate::ports::HostAddr::Any => true,
                    crate::ports::HostAddr::AnyV4 => self.d.is_ipv4(),
                    crate::ports::HostAddr::AnyV6 => self.d.is_ipv6(),
                }
        });
        let (msg, fix) = match recorded {
            Some((ep, _)) => (
                format!(
                    "{port}/{proto} is published for endpoint {} in nsnet's records, but its DNAT element is missing from table inet nsnet",
                    ep.id
                ),
                "nsnet firewall reload".to_owned(),
            ),
            None => (
                format!(
                    "port {port}/{proto} is not published on {} (no element in the DNAT maps of table inet nsnet) and nothing on the host listens on it",
                    self.d
                ),
                self.publish_fix(port, proto),
            ),
        };
        self.fail(at.ns, msg, Some(fix));
        Some(Next::Done)
    }

    /// How to publish `port`: reconnect the endpoint that listens on it, if one does.
    fn publish_fix(&self, port: u16, proto: Proto) -> String {
        let f = self.f;
        for n in &f.topology.networks {
            for e in &n.endpoints {
                let Some(i) = ns_index(f, &e.namespace) else {
                    continue;
                };
                if f.namespaces[i].listening.contains(&(proto.number(), port)) {
                    let p = if proto == Proto::Tcp {
                        format!("{port}:{port}")
                    } else {
                        format!("{port}:{port}/{proto}")
                    };
                    return format!(
                        "nsnet network disconnect {0} {1} && nsnet network connect {0} {1} -p {p}",
                        n.name, e.namespace
                    );
                }
            }
        }
        format!("nsnet network connect NETWORK NAMESPACE -p {port}:CONTAINER_PORT/{proto}")
    }
}

/// Looks `daddr . proto . port` up in nsnet's DNAT maps: (address, port, map).
fn dnat_lookup(
    t: &Table,
    daddr: IpAddr,
    proto: Proto,
    port: u16,
) -> Option<(IpAddr, u16, &'static str)> {
    let (one, any) = if daddr.is_ipv6() {
        ("ports6", "ports6_any")
    } else {
        ("ports4", "ports4_any")
    };
    let addr_eq = |v: &Value| v.as_str().and_then(|s| s.parse::<IpAddr>().ok()) == Some(daddr);
    let proto_eq = |v: &Value| match v {
        Value::String(s) => s == proto.name() || s.parse::<u8>().ok() == Some(proto.number()),
        Value::Number(n) => n.as_u64() == Some(proto.number() as u64),
        _ => false,
    };
    let port_eq = |v: &Value| num(v) == Some(port);
    let value = |v: &[Value]| -> Option<(IpAddr, u16)> {
        Some((v.first()?.as_str()?.parse().ok()?, num(v.get(1)?)?))
    };
    for (k, v) in t.maps.get(one).into_iter().flatten() {
        if k.len() == 3 && addr_eq(&k[0]) && proto_eq(&k[1]) && port_eq(&k[2]) {
            return value(v).map(|(a, p)| (a, p, one));
        }
    }
    for (k, v) in t.maps.get(any).into_iter().flatten() {
        if k.len() == 2 && proto_eq(&k[0]) && port_eq(&k[1]) {
            return value(v).map(|(a, p)| (a, p, any));
        }
    }
    None
}

fn num(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
