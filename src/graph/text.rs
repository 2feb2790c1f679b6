//! The topology as a tree for the terminal: each namespace with its interfaces
//! (a bridge's ports under the bridge), then the networks, then published ports.

use super::{address_list, Interface, Namespace, Topology};
use std::fmt::Write;

/// Renders the whole topology.
pub fn render(topo: &Topology) -> String {
    let mut out = String::new();
    for ns in &topo.namespaces {
        namespace(&mut out, ns);
    }
    if !topo.networks.is_empty() {
        out.push_str("networks\n");
        let last = topo.networks.len() - 1;
        for (i, net) in topo.networks.iter().enumerate() {
            let subnets = net
                .subnets
                .iter()
                .zip(&net.gateways)
                .map(|(s, g)| format!("{s} gateway {g}"))
                .collect::<Vec<_>>()
                .join(", ");
            let head = format!(
                "{}  bridge {}  {}  {}",
                net.name,
                net.bridge,
                subnets,
                net.mode()
            );
            let mut lines: Vec<String> = net
                .endpoints
                .iter()
                .map(|e| {
                    format!(
                        "{} {}  {}  (host side {})",
                        e.namespace,
                        e.interface,
                        address_list(&e.addresses),
                        e.host_interface
                    )
                })
                .collect();
            if let Some(c) = &net.cluster {
                let via = match c.backend {
                    crate::store::cluster::Backend::Vxlan => format!(
                        "vxlan {} (VNI {}, port {})",
                        crate::ops::cluster::vxlan_name(&c.network),
                        c.vni,
                        c.port
                    ),
                    crate::store::cluster::Backend::HostGw => "host-gw".into(),
                };
                lines.push(format!(
                    "cluster {}  node {}  {via}",
                    c.cluster_cidr, c.node_ip
                ));
                for p in &c.peers {
                    lines.push(format!(
                        "peer {}  pods {}  node {}",
                        p.name, p.pod_cidr, p.node_ip
                    ));
                }
            }
            branch(&mut out, "", i == last, &head, &lines);
        }
    }
    if !topo.ports.is_empty() {
        out.push_str("published ports\n");
        let last = topo.ports.len() - 1;
        for (i, p) in topo.ports.iter().enumerate() {
            let to =
                p.to.iter()
                    .map(|a| match a {
                        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", p.container_port),
                        v4 => format!("{v4}:{}", p.container_port),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
            let line = format!(
                "{}  → {} {} {}  (network {})",
                p.spec, p.namespace, p.interface, to, p.network
            );
            branch(&mut out, "", i == last, &line, &[]);
        }
    }
    out
}

fn namespace(out: &mut String, ns: &Namespace) {
    let _ = match ns.detail() {
        Some(d) => writeln!(out, "{}  ({d})", ns.title()),
        None => writeln!(out, "{}", ns.title()),
    };
    // Bridge ports hang under their bridge; everything else at the top level.
    let top: Vec<&Interface> = ns
        .interfaces
        .iter()
        .filter(|i| i.master.as_ref().is_none_or(|m| !has(ns, m)))
        .collect();
    let last = top.len().saturating_sub(1);
    for (n, iface) in top.iter().enumerate() {
        let ports: Vec<String> = ns
            .interfaces
            .iter()
            .filter(|p| p.master.as_deref() == Some(iface.name.as_str()))
            .map(interface_line)
            .collect();
        branch(out, "", n == last, &interface_line(iface), &ports);
    }
}

fn has(ns: &Namespace, name: &str) -> bool {
    ns.interfaces.iter().any(|i| i.name == name)
}

/// `eth0  veth ⇄ nsv1@host  up  10.0.0.2/24`.
pub fn interface_line(i: &Interface) -> String {
    let mut s = i.name.clone();
    // `lo` says what it is; other kinds are worth a word.
    if !i.kind.is_empty() && i.kind != "loopback" {
        let _ = write!(s, "  {}", i.kind);
    }
    if let Some(peer) = &i.peer {
        let _ = write!(s, " ⇄ {}", peer.label());
    }
    if !i.up {
        s.push_str("  DOWN");
    }
    let addrs = address_list(&i.addresses);
    if !addrs.is_empty() {
        let _ = write!(s, "  {addrs}");
    }
    if let Some(net) = &i.network {
        let _ = write!(s, "  [network {net}]");
    }
    s
}

/// One node of a tree with its children (one level deep).
fn branch(out: &mut String, indent: &str, last: bool, head: &str, children: &[String]) {
    let (mark, cont) = if last {
        ("└── ", "    ")
    } else {
        ("├── ", "│   ")
    };
    let _ = writeln!(out, "{indent}{mark}{head}");
    let n = children.len();
    for (k, c) in children.iter().enumerate() {
        let m = if k + 1 == n {
            "└── "
        } else {
            "├── "
        };
        let _ = writeln!(out, "{indent}{cont}{m}{c}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::sample;

    #[test]
    fn every_object_is_named_and_ports_hang_under_their_bridge() {
        let text = render(&sample::topology());
        for word in [
            "host",
            "namespace red",
            "pod web",
            "process 4242",
            "nsbr-demo",
            "[network demo]",
            "veth-blue  veth ⇄ veth-red@blue",
            "eth0  veth ⇄ nsv1@host",
            "192.0.2.100/25",
            "*:8080->80/tcp  → web eth0 198.51.100.3:80",
            "demo  bridge nsbr-demo  198.51.100.0/24 gateway 198.51.100.1  masquerade",
        ] {
            assert!(text.contains(word), "{word:?} missing from\n{text}");
        }
        // nsv1 is a port of nsbr-demo: the line right under it, one level in.
        let lines: Vec<&str> = text.lines().collect();
        let bridge = lines
            .iter()
            .position(|l| l.contains("nsbr-demo  bridge"))
            .unwrap();
        assert_eq!(lines[bridge + 1], "    ├── nsv1  veth ⇄ eth0@ns0");
        // No link-local IPv6 noise.
        assert!(!text.contains("fe80"), "{text}");
    }

    #[test]
    fn an_unseen_peer_namespace_is_marked() {
        let mut topo = sample::topology();
        topo.namespaces[1].interfaces[1].peer = Some(crate::graph::Peer {
            namespace: None,
            interface: "if9".into(),
        });
        assert!(render(&topo).contains("⇄ if9@?"));
    }
}
