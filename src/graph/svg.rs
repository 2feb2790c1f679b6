//! The topology as an SVG picture, laid out by nsnet itself (no Graphviz).
//!
//! Drawn as the container-networking walk-through draws it: namespaces and
//! bridges are nodes, veth pairs are edges labelled with the interface at each
//! end (and the inner end's addresses), each network is a coloured group around
//! its bridge and its endpoints' namespaces, the host is at the left edge and
//! published ports are dashed arrows from the host to the endpoint's namespace.
//! Where things go is [`super::layout`]'s business; this module only draws.
//!
//! Every object carries a `data-id` for the live page (`nsnet graph --serve`):
//! `ns:NAME` on a namespace's group, `if:NS/IFACE` on the text naming an
//! interface (a bridge's on its node), `veth:NS/IFACE` on a veth pair's path and
//! `port:N` (an index into the topology's ports) on a published port's arrow.

use super::layout::{layout, Edge, EdgeKind, Layout, Line, Node, NodeKind, HEAD_H, PAD, ROW_H};
use super::Topology;
use std::fmt::Write;

/// Fills of the networks' groups, in turn.
const COLOURS: [&str; 6] = [
    "#4a90d9", "#5bab4a", "#d9822b", "#9b59b6", "#c0392b", "#16a085",
];

/// Text for XML character data and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn path(e: &Edge) -> String {
    let [p, q] = &e.ends;
    let out = |right: bool| if right { 1.0 } else { -1.0 };
    let reach = ((q.x - p.x).abs() / 2.5).max(30.0);
    format!(
        "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
        p.x,
        p.y,
        p.x + out(p.right) * reach,
        p.y,
        q.x + out(q.right) * reach,
        q.y,
        q.x,
        q.y
    )
}

fn text_line(out: &mut String, class: &str, l: &Line, x: f64, y: f64, anchor: &str) {
    let id =
        l.id.as_ref()
            .map(|i| format!(r#" data-id="{}""#, escape(i)))
            .unwrap_or_default();
    let class = if l.down {
        format!("{class} down")
    } else {
        class.to_owned()
    };
    let _ = writeln!(
        out,
        r#"<text class="{class}"{id} x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" xml:space="preserve">{}</text>"#,
        escape(&l.text)
    );
}

/// Renders the topology as a standalone SVG document.
pub fn render(topo: &Topology) -> String {
    let l = layout(topo);
    render_layout(topo, &l)
}

fn render_layout(topo: &Topology, l: &Layout) -> String {
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">"#,
        w = l.width,
        h = l.height
    );
    out.push_str("<title>nsnet topology</title>\n");
    out.push_str(
        "<style>\
.box{fill:#f7f9fc;stroke:#4a6fa5;stroke-width:1.2}\
.host{fill:#e3ebf7;stroke:#1d2b3a;stroke-width:1.6}.pod{fill:#f3f8ee;stroke:#5b8c3a}\
.bridge{fill:#fff6e0;stroke:#b5782b;stroke-width:1.4}.peers{fill:#f4eefa;stroke:#7d5ba6}\
.net{fill-opacity:0.10;stroke-opacity:0.7;stroke-width:1.4}.netlabel{font-weight:bold}\
.head{font-weight:bold;fill:#1d2b3a}.row{fill:#24292f}.end{fill:#24292f;font-size:11px}.down{fill:#a33}\
.veth{fill:none;stroke:#4a6fa5;stroke-width:1.6}.member{fill:none;stroke:#b5782b;stroke-width:3}\
.vxlan{fill:none;stroke:#7d5ba6;stroke-width:1.6;stroke-dasharray:2 3}\
.port{fill:none;stroke:#d9822b;stroke-width:1.4;stroke-dasharray:6 4}\
.portlabel{fill:#a65d13;font-size:11px}</style>\n",
    );
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">\
<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d9822b\"/></marker></defs>\n",
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    out.push_str("<g class=\"networks\">\n");
    for g in &l.groups {
        let c = COLOURS[g.net % COLOURS.len()];
        let _ = writeln!(
            out,
            r#"<g data-net="{}"><rect class="net" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="14" fill="{c}" stroke="{c}"/><text class="netlabel" x="{:.1}" y="{:.1}" fill="{c}">{}</text></g>"#,
            escape(&topo.networks[g.net].name),
            g.x,
            g.y,
            g.w,
            g.h,
            g.x + PAD,
            g.y + 14.0,
            escape(&g.label)
        );
    }
    out.push_str("</g>\n<g class=\"wires\">\n");
    let wires = topo.wires();
    for e in &l.edges {
        let d = path(e);
        match e.kind {
            EdgeKind::Veth(w) => {
                let Some(&((a, i), (b, j))) = wires.get(w) else {
                    continue;
                };
                let (na, nb) = (&topo.namespaces[a], &topo.namespaces[b]);
                let title = format!(
                    "veth {}@{} ⇄ {}@{}",
                    na.interfaces[i].name, na.name, nb.interfaces[j].name, nb.name
                );
                let _ = writeln!(
                    out,
                    r#"<path class="veth" data-id="veth:{}/{}" d="{d}"><title>{}</title></path>"#,
                    escape(&na.name),
                    escape(&na.interfaces[i].name),
                    escape(&title)
                );
            }
            EdgeKind::Member => {
                let _ = writeln!(out, r#"<path class="member" d="{d}"/>"#);
            }
            EdgeKind::Vxlan => {
                let _ = writeln!(out, r#"<path class="vxlan" d="{d}"/>"#);
            }
            EdgeKind::Port(k) => {
                let Some(port) = topo.ports.get(k) else {
                    continue;
                };
                let title = format!(
                    "{} → {} {}:{}",
                    port.spec, port.namespace, port.interface, port.container_port
                );
                let _ = writeln!(
                    out,
                    r#"<path class="port" data-id="port:{k}" d="{d}" marker-end="url(#arrow)"><title>{}</title></path>"#,
                    escape(&title)
                );
            }
        }
    }
    // End labels: just outside the node, above the edge.
    for e in &l.edges {
        let class = if matches!(e.kind, EdgeKind::Port(_)) {
            "portlabel"
        } else {
            "end"
        };
        for end in &e.ends {
            let Some(label) = &end.label else { continue };
            let (x, anchor) = if end.right {
                (end.x + 4.0, "start")
            } else {
                (end.x - 4.0, "end")
            };
            text_line(&mut out, class, label, x, end.y - 3.0, anchor);
        }
    }
    out.push_str("</g>\n");
    for nd in &l.nodes {
        draw_node(&mut out, topo, nd);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_node(out: &mut String, topo: &Topology, nd: &Node) {
    let (class, rx, data_id) = match nd.kind {
        NodeKind::Ns(a) => {
            let ns = &topo.namespaces[a];
            let class = match ns.kind {
                super::NsKind::Host => "box host",
                super::NsKind::Pod { .. } => "box pod",
                _ => "box",
            };
            (class, 6.0, format!("ns:{}", ns.name))
        }
        NodeKind::Bridge { ns, iface, .. } => (
            "bridge",
            14.0,
            format!(
                "if:{}/{}",
                topo.namespaces[ns].name, topo.namespaces[ns].interfaces[iface].name
            ),
        ),
        NodeKind::Peers(k) => ("peers", 10.0, format!("net:{}", topo.networks[k].name)),
    };
    let _ = writeln!(
        out,
        r#"<g data-id="{}"><title>{}</title>"#,
        escape(&data_id),
        escape(&nd.title)
    );
    let _ = writeln!(
        out,
        r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{rx}"/>"#,
        nd.x, nd.y, nd.w, nd.h
    );
    let _ = writeln!(
        out,
        r#"<text class="head" x="{:.1}" y="{:.1}">{}</text>"#,
        nd.x + PAD,
        nd.y + HEAD_H - 9.0,
        escape(&nd.title)
    );
    for (r, line) in nd.lines.iter().enumerate() {
        let y = nd.y + HEAD_H + ROW_H * r as f64 + ROW_H / 2.0 + 4.0;
        text_line(out, "row", line, nd.x + PAD, y, "start");
    }
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::sample;

    fn samples() -> Vec<Topology> {
        vec![
            sample::topology(),
            sample::many(50, 3),
            sample::many(7, 2),
            sample::clustered(),
            Topology::default(),
        ]
    }

    fn overlaps(a: &Node, b: &Node) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    /// Checks tags balance and attributes are quoted; returns the root's name.
    fn well_formed(xml: &str) -> Result<String, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut root = None;
        let mut rest = xml.trim_start();
        rest = rest
            .strip_prefix("<?xml")
            .and_then(|r| r.split_once("?>"))
            .map_or(rest, |(_, r)| r);
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            if text.contains('>') || (text.contains('&') && !text.contains(';')) {
                return Err(format!("bad text {text:?}"));
            }
            let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if tag.contains('<') || tag.matches('"').count() % 2 == 1 {
                return Err(format!("bad tag {tag:?}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return Err(format!("unbalanced </{name}>"));
                }
            } else {
                let name: String = tag
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '/')
                    .collect();
                if root.is_none() {
                    root = Some(name.clone());
                } else if stack.is_empty() {
                    return Err(format!("second root {name}"));
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
        }
        if !stack.is_empty() || !rest.trim().is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        root.ok_or_else(|| "no root".into())
    }

    #[test]
    fn the_host_is_at_the_left_edge_and_bridges_next_to_it() {
        let topo = sample::topology();
        let l = layout(&topo);
        let host = &l.nodes[0];
        assert_eq!(host.layer, 0);
        assert!(l.nodes.iter().all(|n| n.x >= host.x));
        let bridge = l
            .nodes
            .iter()
            .find(|n| matches!(n.kind, NodeKind::Bridge { .. }))
            .unwrap();
        assert_eq!(bridge.layer, 1);
        assert_eq!(bridge.title, "bridge nsbr-demo");
        assert!(bridge.lines.iter().any(|x| x.text == "network demo"));
        assert!(bridge
            .lines
            .iter()
            .any(|x| x.text.contains("198.51.100.1/24")));
        let at = |name: &str| {
            let a = topo.namespaces.iter().position(|n| n.name == name).unwrap();
            l.nodes[a].layer
        };
        assert_eq!((at("ns0"), at("web"), at("outside")), (2, 2, 1));
    }

    #[test]
    fn nodes_do_not_overlap_and_edges_end_on_their_nodes() {
        for topo in samples() {
            let l = layout(&topo);
            for (i, a) in l.nodes.iter().enumerate() {
                assert!(a.x >= 0.0 && a.y >= 0.0, "{a:?}");
                assert!(a.x + a.w <= l.width && a.y + a.h <= l.height, "{a:?}");
                for b in &l.nodes[i + 1..] {
                    assert!(!overlaps(a, b), "{} overlaps {}", a.title, b.title);
                }
            }
            for g in &l.groups {
                assert!(g.x >= 0.0 && g.y >= 0.0 && g.x + g.w <= l.width && g.y + g.h <= l.height);
            }
            let svg = render_layout(&topo, &l);
            for e in &l.edges {
                for end in &e.ends {
                    assert!(l.nodes[end.node].on_border(end.x, end.y), "{e:?}");
                }
                assert!(svg.contains(&path(e)));
            }
        }
    }

    #[test]
    fn fifty_namespaces_on_three_networks_are_grouped() {
        let topo = sample::many(50, 3);
        let l = layout(&topo);
        assert_eq!(l.groups.len(), 3);
        assert_eq!(
            l.edges
                .iter()
                .filter(|e| matches!(e.kind, EdgeKind::Veth(_)))
                .count(),
            50
        );
        // Every endpoint lies inside its network's group.
        for g in &l.groups {
            let net = &topo.networks[g.net];
            for e in &net.endpoints {
                let a = topo
                    .namespaces
                    .iter()
                    .position(|n| n.name == e.namespace)
                    .unwrap();
                let n = &l.nodes[a];
                assert!(
                    n.x >= g.x && n.y >= g.y && n.x + n.w <= g.x + g.w && n.y + n.h <= g.y + g.h
                );
            }
        }
    }

    #[test]
    fn a_group_holds_only_its_own_network() {
        for topo in [sample::topology(), sample::many(50, 3)] {
            let l = layout(&topo);
            for g in &l.groups {
                let net = &topo.networks[g.net];
                for nd in &l.nodes {
                    let member = match nd.kind {
                        NodeKind::Bridge { net, .. } => net == Some(g.net),
                        NodeKind::Peers(k) => k == g.net,
                        NodeKind::Ns(a) => net
                            .endpoints
                            .iter()
                            .any(|e| e.namespace == topo.namespaces[a].name),
                    };
                    let inside = nd.x < g.x + g.w
                        && g.x < nd.x + nd.w
                        && nd.y < g.y + g.h
                        && g.y < nd.y + nd.h;
                    assert_eq!(inside, member, "{} and group {}", nd.title, g.label);
                }
            }
        }
    }

    #[test]
    fn the_svg_is_well_formed() {
        for topo in samples() {
            let svg = render(&topo);
            assert_eq!(well_formed(&svg), Ok("svg".to_owned()), "{svg}");
        }
        assert!(well_formed("<a><b></a></b>").is_err());
        assert!(well_formed("<a x=\"1></a>").is_err());
    }

    #[test]
    fn clustered_networks_show_their_vxlan_peers() {
        let svg = render(&sample::clustered());
        assert!(svg.contains("VXLAN peers"));
        assert!(svg.contains("node-b 192.0.2.12 10.244.2.0/24"));
        assert!(svg.contains(r#"class="vxlan""#));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
        let svg = render(&sample::topology());
        assert!(svg.contains("server &quot;&lt;x&gt;&quot; &amp; co"));
        assert!(!svg.contains("\"<x>\""));
    }

    #[test]
    fn every_object_is_named_by_a_data_id_once() {
        for topo in samples() {
            let svg = render(&topo);
            for ns in &topo.namespaces {
                let id = format!(r#"data-id="ns:{}""#, escape(&ns.name));
                assert_eq!(svg.matches(&id).count(), 1, "{id}");
                for i in &ns.interfaces {
                    let id = format!(r#"data-id="if:{}/{}""#, escape(&ns.name), escape(&i.name));
                    assert_eq!(svg.matches(&id).count(), 1, "{id}");
                }
            }
            for k in 0..topo.ports.len() {
                assert!(svg.contains(&format!(r#"data-id="port:{k}""#)));
            }
            assert_eq!(svg.matches(r#"data-id="veth:"#).count(), topo.wires().len());
        }
    }
}
