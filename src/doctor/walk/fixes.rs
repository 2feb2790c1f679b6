//! The fixes the walk proposes when a namespace has no route.

use super::{global, ip_cmd, Walker};
use std::net::IpAddr;

impl Walker<'_> {
    pub(super) fn no_route_fix(&self, ns: usize) -> Option<String> {
        let name = self.name(ns);
        let topo = &self.f.topology;
        let down = topo.namespaces[ns]
            .interfaces
            .iter()
            .find(|i| i.kind != "loopback" && !i.up && i.addresses.iter().any(global));
        let gw = self.endpoint_gateway(ns);
        let default = gw
            .as_ref()
            .map(|(_, g)| ip_cmd(name, &format!("route replace default via {g}")));
        match (down, default) {
            (Some(i), Some(d)) => Some(format!(
                "{} && {d}",
                ip_cmd(name, &format!("link set {} up", i.name))
            )),
            (Some(i), None) => Some(ip_cmd(name, &format!("link set {} up", i.name))),
            (None, Some(d)) => Some(d),
            (None, None) => {
                let via = self
                    .neighbour_gateway(ns)
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "GATEWAY".into());
                Some(ip_cmd(name, &format!("route add {} via {via}", self.d)))
            }
        }
    }

    /// An address across one of the namespace's veths, in the same subnet as
    /// this end (the host on a link like `outside`'s): a gateway to suggest.
    pub(super) fn neighbour_gateway(&self, ns: usize) -> Option<IpAddr> {
        let topo = &self.f.topology;
        for iface in &topo.namespaces[ns].interfaces {
            let Some((pn, pi)) = topo.peer_of(iface) else {
                continue;
            };
            let peer = &topo.namespaces[pn].interfaces[pi];
            for own in iface
                .addresses
                .iter()
                .filter(|a| a.addr().is_ipv6() == self.v6())
            {
                if let Some(p) = peer
                    .addresses
                    .iter()
                    .find(|p| own.contains(&p.addr()) && global(p))
                {
                    return Some(p.addr());
                }
            }
        }
        None
    }
}
