//! The topology as Graphviz input: a cluster per namespace holding a node per
//! interface; veth pairs as solid edges, bridge membership as dashed edges, and
//! published ports as notes in the host's cluster with a dotted edge to the
//! interface they lead to. Networks are a table-like note of their own.

use super::{address_list, Topology};
use std::fmt::Write;

/// A DOT string literal: quoted, with `"` and `\` escaped and newlines as `\n`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn node_id(ns: usize, iface: usize) -> String {
    quote(&format!("n{ns}_{iface}"))
}

/// Renders the topology as an undirected graph named `nsnet`.
pub fn render(topo: &Topology) -> String {
    let mut out = String::new();
    out.push_str("graph nsnet {\n");
    out.push_str("  graph [rankdir=LR, fontname=\"monospace\", fontsize=11, compound=true];\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"monospace\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
    for (a, ns) in topo.namespaces.iter().enumerate() {
        let mut label = ns.title();
        if let Some(d) = ns.detail() {
            let _ = write!(label, "\n{d}");
        }
        let _ = writeln!(out, "  subgraph {} {{", quote(&format!("cluster_{a}")));
        let _ = writeln!(out, "    label={};", quote(&label));
        let style = if a == 0 { "filled" } else { "rounded" };
        let _ = writeln!(
            out,
            "    style={style}; color=\"#4a6fa5\"; fillcolor=\"#eef3fb\";"
        );
        for (i, iface) in ns.interfaces.iter().enumerate() {
            let mut text = iface.name.clone();
            if !iface.kind.is_empty() {
                let _ = write!(text, " ({})", iface.kind);
            }
            if !iface.up {
                text.push_str(" DOWN");
            }
            for addr in address_list(&iface.addresses)
                .split(' ')
                .filter(|s| !s.is_empty())
            {
                let _ = write!(text, "\n{addr}");
            }
            if let Some(net) = &iface.network {
                let _ = write!(text, "\nnetwork {net}");
            }
            let shape = if iface.kind == "bridge" {
                ", shape=box3d"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {} [label={}{shape}];",
                node_id(a, i),
                quote(&text)
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for ((a, i), (b, j)) in topo.wires() {
        let _ = writeln!(
            out,
            "  {} -- {} [label=\"veth\"];",
            node_id(a, i),
            node_id(b, j)
        );
    }
    for (a, ns) in topo.namespaces.iter().enumerate() {
        for (i, iface) in ns.interfaces.iter().enumerate() {
            let Some(master) = &iface.master else {
                continue;
            };
            if let Some(m) = ns.interfaces.iter().position(|x| &x.name == master) {
                let _ = writeln!(
                    out,
                    "  {} -- {} [style=dashed, label=\"port\"];",
                    node_id(a, m),
                    node_id(a, i)
                );
            }
        }
    }
    for (k, port) in topo.ports.iter().enumerate() {
        let id = quote(&format!("port{k}"));
        let _ = writeln!(
            out,
            "  {id} [shape=note, style=\"\", label={}];",
            quote(&format!(
                "published {}\nnetwork {}",
                port.spec, port.network
            ))
        );
        if let Some((b, j)) = topo.port_target(port) {
            let _ = writeln!(
                out,
                "  {id} -- {} [style=dotted, label={}];",
                node_id(b, j),
                quote(&format!(":{}", port.container_port))
            );
        }
    }
    if !topo.networks.is_empty() {
        let mut text = String::from("networks");
        for net in &topo.networks {
            let subnets: Vec<String> = net.subnets.iter().map(|s| s.to_string()).collect();
            let _ = write!(
                text,
                "\n{}: {} on {} ({}, {} endpoint{})",
                net.name,
                subnets.join(" "),
                net.bridge,
                net.mode(),
                net.endpoints.len(),
                if net.endpoints.len() == 1 { "" } else { "s" }
            );
        }
        let _ = writeln!(
            out,
            "  \"networks\" [shape=note, style=\"\", label={}];",
            quote(&text)
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::sample;

    #[test]
    fn quoting_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn one_cluster_per_namespace_and_one_edge_per_veth_pair() {
        let topo = sample::topology();
        let dot = render(&topo);
        assert_eq!(
            dot.matches("subgraph \"cluster_").count(),
            topo.namespaces.len()
        );
        // red-blue, host-outside, host-ns0, host-web: each once.
        assert_eq!(dot.matches("[label=\"veth\"]").count(), 4);
        assert_eq!(dot.matches("label=\"port\"").count(), 2);
        assert!(dot.contains("published *:8080->80/tcp"));
        assert!(dot.contains("server \\\"<x>\\\" & co"), "{dot}");
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    }
}
