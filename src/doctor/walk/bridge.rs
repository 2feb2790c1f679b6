//! A frame on a bridge: switched to another port, or handed to the bridge itself.

use super::{holder, in_ns, ip_cmd, is_local, At, Next, Walker};
use std::net::IpAddr;

impl Walker<'_> {
    /// A frame entering bridge `br` through port `ii`: to another port (bridged,
    /// `Some`), or to the bridge itself (routed by this namespace, `None`).
    pub(super) fn switch(&mut self, at: At, ii: usize, br: &str) -> Option<Next> {
        let f = self.f;
        let ns = &f.topology.namespaces[at.ns];
        let port = &ns.interfaces[ii];
        let bridge = ns.interfaces.iter().find(|i| i.name == br)?;
        let network = f.topology.networks.iter().find(|n| n.bridge == br);
        let label = match network {
            Some(n) => format!("bridge {br} (network {})", n.name),
            None => format!("bridge {br}"),
        };
        if !port.up {
            self.fail(
                at.ns,
                format!("{} is down (a port of {label})", port.name),
                Some(ip_cmd(&ns.name, &format!("link set {} up", port.name))),
            );
            return Some(Next::Done);
        }
        if !bridge.up {
            self.fail(
                at.ns,
                format!("{label} is down"),
                Some(ip_cmd(&ns.name, &format!("link set {br} up"))),
            );
            return Some(Next::Done);
        }
        let nh = at.next_hop.unwrap_or(self.d);
        if is_local(ns, nh) {
            self.ok(
                at.ns,
                format!(
                    "{} is up, a port of {label}; {nh} is the bridge's own",
                    port.name
                ),
            );
            return None;
        }
        let Some((out, far)) = self.port_towards(at.ns, br, nh, Some(ii)) else {
            self.fail(
                at.ns,
                format!("no port of {label} leads to {nh}: no namespace on it has that address"),
                None,
            );
            return Some(Next::Done);
        };
        let out_if = &ns.interfaces[out];
        if port.isolated && out_if.isolated {
            let (msg, fix) = match network.filter(|n| n.isolate) {
                Some(n) => (
                    format!(
                        "network {} isolates its endpoints (--isolate): {} and {} cannot talk, by design",
                        n.name, port.name, out_if.name
                    ),
                    "use a network created without --isolate".to_owned(),
                ),
                None => (
                    format!("ports {} and {} of {label} are both isolated", port.name, out_if.name),
                    format!(
                        "{}bridge link set dev {} isolated off",
                        in_ns(&ns.name),
                        out_if.name
                    ),
                ),
            };
            self.fail(at.ns, msg, Some(fix));
            return Some(Next::Done);
        }
        if !out_if.up || !out_if.carrier {
            let what = if out_if.up {
                "has no carrier"
            } else {
                "is down"
            };
            let fix = if out_if.up {
                self.far_fix(out_if)
            } else {
                Some(ip_cmd(&ns.name, &format!("link set {} up", out_if.name)))
            };
            self.fail(
                at.ns,
                format!("{} ({label} port to {nh}) {what}", out_if.name),
                fix,
            );
            return Some(Next::Done);
        }
        // br_netfilter hands bridged IP traffic to the IP hooks, with the bridge
        // as both interfaces.
        let key = if self.v6() {
            "net.bridge.bridge-nf-call-ip6tables"
        } else {
            "net.bridge.bridge-nf-call-iptables"
        };
        let nf = f.namespaces[at.ns].sysctls.get(key).map(String::as_str) == Some("1");
        if nf
            && !self.foreign(
                at.ns,
                &["prerouting", "forward", "postrouting"],
                Some(br.to_owned()),
                Some(br.to_owned()),
            )
        {
            return Some(Next::Done);
        }
        if !self.foreign_bridge(at.ns, &port.name, &out_if.name) {
            return Some(Next::Done);
        }
        self.ok(
            at.ns,
            format!(
                "{label} switches it from {} to {}{}",
                port.name,
                out_if.name,
                if nf {
                    format!(" ({key}=1: the IP forward hooks see it; none drops it)")
                } else {
                    String::new()
                }
            ),
        );
        Some(Next::Go(At {
            ns: far.0,
            in_if: Some(far.1),
            next_hop: at.next_hop,
            prev_addr: at.prev_addr,
        }))
    }

    /// The port of bridge `br` whose veth leads to the namespace holding `nh`,
    /// and that far end.
    pub(super) fn port_towards(
        &self,
        ns: usize,
        br: &str,
        nh: IpAddr,
        not: Option<usize>,
    ) -> Option<(usize, (usize, usize))> {
        let topo = &self.f.topology;
        let (hn, hi) = holder(self.f, nh)?;
        for (i, iface) in topo.namespaces[ns].interfaces.iter().enumerate() {
            if iface.master.as_deref() != Some(br) || Some(i) == not {
                continue;
            }
            if let Some(far) = topo.peer_of(iface) {
                if far.0 == hn
                    && (far.1 == hi || topo.namespaces[hn].interfaces[hi].master.is_some())
                {
                    return Some((i, far));
                }
            }
        }
        None
    }
}
