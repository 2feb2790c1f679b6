//! Where [`super::svg`] draws things: a small layered layout, left to right.
//!
//! Nodes are namespaces (boxes with their name, kind and the interfaces no edge
//! shows), Linux bridges (pills with their name, network and gateway, one column
//! right of the namespace they live in) and, for a clustered network, a stub
//! naming its VXLAN peers. Edges are veth pairs (from the namespace holding one
//! end, or the bridge it is a port of, to the namespace holding the other end),
//! a bridge's link to its namespace, a clustered network's VXLAN device, and
//! published ports (from the host to the endpoint's namespace).
//!
//! Each network's members share a horizontal band across the columns (nodes on
//! no network above them), so its group's rectangle holds only its own nodes.
//! Layers come from a breadth-first walk over the edges from the host (then from
//! each node not reached yet); within a layer, nodes are ordered by the mean
//! height of their neighbours in the layers placed already (one barycentre
//! pass). Text is monospace, so sizes follow from character counts; the gap
//! between two columns is wide enough for the labels at both ends of the edges
//! crossing it. Where an edge meets a node, its end points are spread along that
//! side, in the order of the nodes they lead to, so labels do not collide.

use super::{address_list, Topology};
use std::collections::VecDeque;

pub const CHAR_W: f64 = 7.2;
pub const ROW_H: f64 = 18.0;
pub const HEAD_H: f64 = 26.0;
pub const PAD: f64 = 10.0;
const GAP_X: f64 = 64.0;
const GAP_Y: f64 = 40.0;
pub const MARGIN: f64 = 24.0;
/// Space around a network's group, and above it for its label.
pub const GROUP_PAD: f64 = 10.0;
pub const GROUP_HEAD: f64 = 16.0;

/// A line of text in a node; `id` is its `data-id` for the live page.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub id: Option<String>,
    pub down: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeKind {
    /// Namespace `n`.
    Ns(usize),
    /// Interface `iface` of namespace `ns`, a bridge; `net` its network.
    Bridge {
        ns: usize,
        iface: usize,
        net: Option<usize>,
    },
    /// The VXLAN peers of network `n`.
    Peers(usize),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub title: String,
    pub lines: Vec<Line>,
    pub layer: usize,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Node {
    pub fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
    /// Whether (x, y) lies on the rectangle's border.
    pub fn on_border(&self, x: f64, y: f64) -> bool {
        let eps = 0.01;
        let in_x = x >= self.x - eps && x <= self.x + self.w + eps;
        let in_y = y >= self.y - eps && y <= self.y + self.h + eps;
        let side_x = (x - self.x).abs() < eps || (x - self.x - self.w).abs() < eps;
        let side_y = (y - self.y).abs() < eps || (y - self.y - self.h).abs() < eps;
        (side_x && in_y) || (side_y && in_x)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EdgeKind {
    /// `topo.wires()[n]`.
    Veth(usize),
    /// A bridge and the namespace it lives in.
    Member,
    /// A clustered network's VXLAN device.
    Vxlan,
    /// `topo.ports[n]`.
    Port(usize),
}

/// A label at one end of an edge.
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    pub node: usize,
    pub label: Option<Line>,
    /// Where the edge meets the node, and whether it leaves to the right.
    pub x: f64,
    pub y: f64,
    pub right: bool,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub kind: EdgeKind,
    pub ends: [End; 2],
}

/// A network's coloured group.
#[derive(Debug, Clone)]
pub struct Group {
    pub net: usize,
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub groups: Vec<Group>,
}

fn titled(topo: &Topology, a: usize) -> String {
    let ns = &topo.namespaces[a];
    match ns.detail() {
        Some(d) => format!("{} ({d})", ns.title()),
        None => ns.title(),
    }
}

fn if_id(topo: &Topology, a: usize, i: usize) -> String {
    format!(
        "if:{}/{}",
        topo.namespaces[a].name, topo.namespaces[a].interfaces[i].name
    )
}

fn iface_label(topo: &Topology, a: usize, i: usize, addrs: bool) -> Line {
    let iface = &topo.namespaces[a].interfaces[i];
    let mut text = iface.name.clone();
    if addrs {
        let list = address_list(&iface.addresses);
        if !list.is_empty() {
            text = format!("{text} {list}");
        }
    }
    if !iface.up {
        text.push_str(" DOWN");
    }
    Line {
        text,
        id: Some(if_id(topo, a, i)),
        down: !iface.up,
    }
}

fn chars(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// Places every node, edge and group.
pub fn layout(topo: &Topology) -> Layout {
    let n_ns = topo.namespaces.len();
    let mut nodes: Vec<Node> = Vec::new();
    let node = |kind, title: String, lines: Vec<Line>| Node {
        kind,
        title,
        lines,
        layer: 0,
        x: 0.0,
        y: 0.0,
        w: 0.0,
        h: 0.0,
    };
    for a in 0..n_ns {
        nodes.push(node(NodeKind::Ns(a), titled(topo, a), Vec::new()));
    }
    // Bridges: (ns, iface) -> node.
    let mut bridge_of = std::collections::BTreeMap::new();
    for (a, ns) in topo.namespaces.iter().enumerate() {
        for (i, iface) in ns.interfaces.iter().enumerate() {
            if iface.kind != "bridge" {
                continue;
            }
            let net = topo.networks.iter().position(|n| {
                iface.network.as_deref() == Some(n.name.as_str())
                    || (a == 0 && n.bridge == iface.name)
            });
            let mut lines = Vec::new();
            if let Some(k) = net {
                lines.push(Line {
                    text: format!("network {}", topo.networks[k].name),
                    id: None,
                    down: false,
                });
            }
            let gw = address_list(&iface.addresses);
            if !gw.is_empty() {
                lines.push(Line {
                    text: gw,
                    id: None,
                    down: false,
                });
            }
            if !iface.up {
                lines.push(Line {
                    text: "DOWN".into(),
                    id: None,
                    down: true,
                });
            }
            bridge_of.insert((a, i), nodes.len());
            nodes.push(node(
                NodeKind::Bridge {
                    ns: a,
                    iface: i,
                    net,
                },
                format!("bridge {}", iface.name),
                lines,
            ));
        }
    }
    // Which node an interface's edge starts at: its bridge, or its namespace.
    let holder = |a: usize, i: usize| -> usize {
        let ns = &topo.namespaces[a];
        ns.interfaces[i]
            .master
            .as_ref()
            .and_then(|m| ns.interfaces.iter().position(|x| &x.name == m))
            .and_then(|b| bridge_of.get(&(a, b)).copied())
            .unwrap_or(a)
    };
    let mut edges: Vec<Edge> = Vec::new();
    let end = |node: usize, label: Option<Line>| End {
        node,
        label,
        x: 0.0,
        y: 0.0,
        right: true,
    };
    let wires = topo.wires();
    let mut on_edge = vec![Vec::new(); n_ns];
    for (w, &((a, i), (b, j))) in wires.iter().enumerate() {
        let (u, v) = (holder(a, i), holder(b, j));
        // The inner end (in a namespace's own box) shows its addresses.
        let lu = iface_label(topo, a, i, u == a);
        let lv = iface_label(topo, b, j, v == b);
        edges.push(Edge {
            kind: EdgeKind::Veth(w),
            ends: [end(u, Some(lu)), end(v, Some(lv))],
        });
        on_edge[a].push(i);
        on_edge[b].push(j);
    }
    for (&(a, _), &bn) in &bridge_of {
        edges.push(Edge {
            kind: EdgeKind::Member,
            ends: [end(a, None), end(bn, None)],
        });
    }
    // Lines of a node: what no edge shows.
    for (a, ns) in topo.namespaces.iter().enumerate() {
        for (i, iface) in ns.interfaces.iter().enumerate() {
            if on_edge[a].contains(&i) || bridge_of.contains_key(&(a, i)) {
                continue;
            }
            let at = holder(a, i);
            let mut line = iface_label(topo, a, i, true);
            if !iface.kind.is_empty() && iface.kind != "loopback" {
                line.text = format!("{} {}", line.text, iface.kind);
            }
            if let Some(p) = &iface.peer {
                line.text = format!("{} ⇄ {}", line.text, p.label());
            }
            nodes[at].lines.push(line);
        }
    }
    // VXLAN peers of clustered networks, beside their bridge.
    for (k, net) in topo.networks.iter().enumerate() {
        let Some(c) = &net.cluster else { continue };
        let Some(bn) = nodes
            .iter()
            .position(|n| matches!(n.kind, NodeKind::Bridge { net: Some(x), .. } if x == k))
        else {
            continue;
        };
        let mut lines = vec![Line {
            text: format!("vni {} udp {} node {}", c.vni, c.port, c.node_ip),
            id: None,
            down: false,
        }];
        for p in &c.peers {
            lines.push(Line {
                text: format!("{} {} {}", p.name, p.node_ip, p.pod_cidr),
                id: None,
                down: false,
            });
        }
        let pn = nodes.len();
        nodes.push(node(NodeKind::Peers(k), "VXLAN peers".into(), lines));
        let label = Line {
            text: "vxlan".into(),
            id: None,
            down: false,
        };
        edges.push(Edge {
            kind: EdgeKind::Vxlan,
            ends: [end(bn, Some(label)), end(pn, None)],
        });
    }
    // Layers.
    let n = nodes.len();
    let mut adj = vec![Vec::new(); n];
    for e in &edges {
        let (u, v) = (e.ends[0].node, e.ends[1].node);
        if u != v {
            adj[u].push(v);
            adj[v].push(u);
        }
    }
    let mut layer = vec![usize::MAX; n];
    for root in 0..n {
        if layer[root] != usize::MAX {
            continue;
        }
        layer[root] = 0;
        let mut queue = VecDeque::from([root]);
        while let Some(a) = queue.pop_front() {
            for &b in &adj[a] {
                if layer[b] == usize::MAX {
                    layer[b] = layer[a] + 1;
                    queue.push_back(b);
                }
            }
        }
    }
    for (a, l) in layer.iter().enumerate() {
        nodes[a].layer = *l;
    }
    for (k, port) in topo.ports.iter().enumerate() {
        if let Some((b, _)) = topo.port_target(port) {
            let label = Line {
                text: port.spec.clone(),
                id: Some(format!("port:{k}")),
                down: false,
            };
            edges.push(Edge {
                kind: EdgeKind::Port(k),
                ends: [end(0, Some(label)), end(b, None)],
            });
        }
    }
    // Sides: towards the other end's layer; same layer, both on the right.
    for e in &mut edges {
        let (lu, lv) = (layer[e.ends[0].node], layer[e.ends[1].node]);
        e.ends[0].right = lu <= lv;
        e.ends[1].right = lv <= lu;
    }
    // Sizes.
    let mut count = vec![[0usize; 2]; n];
    for e in &edges {
        for end in &e.ends {
            count[end.node][end.right as usize] += 1;
        }
    }
    for (k, nd) in nodes.iter_mut().enumerate() {
        let widest = nd
            .lines
            .iter()
            .map(|l| chars(&l.text))
            .fold(chars(&nd.title), f64::max);
        nd.w = widest + 2.0 * PAD;
        let content = HEAD_H + ROW_H * nd.lines.len() as f64 + PAD / 2.0;
        let ends = HEAD_H + ROW_H * count[k][0].max(count[k][1]) as f64;
        nd.h = content.max(ends);
    }
    // Columns, ordered by barycentre.
    let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (a, &l) in layer.iter().enumerate() {
        cols[l].push(a);
    }
    // Gap after each column: room for the labels of edges crossing it.
    let mut gap = vec![GAP_X; depth];
    for e in &edges {
        let [p, q] = &e.ends;
        let (lp, lq) = (layer[p.node], layer[q.node]);
        let len = |x: &End| x.label.as_ref().map_or(0.0, |l| chars(&l.text));
        let c = lp.min(lq);
        if c < depth {
            let need = len(p) + len(q) + 48.0;
            gap[c] = gap[c].max(need);
        }
    }
    // Bands: each network's members share a horizontal band across all columns
    // (nodes on no network first), so a group's rectangle holds its own nodes.
    let band: Vec<usize> = nodes
        .iter()
        .map(|nd| match nd.kind {
            NodeKind::Bridge { net: Some(k), .. } | NodeKind::Peers(k) => k + 1,
            NodeKind::Ns(a) => topo
                .networks
                .iter()
                .position(|net| {
                    net.endpoints
                        .iter()
                        .any(|e| e.namespace == topo.namespaces[a].name)
                })
                .map_or(0, |k| k + 1),
            NodeKind::Bridge { net: None, .. } => 0,
        })
        .collect();
    let bands = band.iter().copied().max().map_or(0, |m| m + 1);
    let stack_h = |members: &mut dyn Iterator<Item = &Node>| {
        let (sum, count) = members.fold((0.0, 0usize), |(s, c), nd| (s + nd.h, c + 1));
        sum + GAP_Y * count.saturating_sub(1) as f64
    };
    let band_h: Vec<f64> = (0..bands)
        .map(|b| {
            cols.iter()
                .map(|col| stack_h(&mut col.iter().filter(|&&a| band[a] == b).map(|&a| &nodes[a])))
                .fold(0.0, f64::max)
        })
        .collect();
    let mut band_y = vec![0.0; bands];
    let mut y = MARGIN + GROUP_PAD + GROUP_HEAD;
    for b in 0..bands {
        if band_h[b] == 0.0 {
            continue;
        }
        band_y[b] = y;
        y += band_h[b] + GAP_Y + 2.0 * GROUP_PAD + GROUP_HEAD;
    }
    let mut placed = vec![false; n];
    let mut x = MARGIN + GROUP_PAD;
    for (c, col) in cols.iter_mut().enumerate() {
        let keys: Vec<f64> = (0..n)
            .map(|a| {
                let ys: Vec<f64> = adj[a]
                    .iter()
                    .filter(|&&b| placed[b])
                    .map(|&b| nodes[b].cy())
                    .collect();
                if ys.is_empty() || c == 0 {
                    f64::MAX
                } else {
                    ys.iter().sum::<f64>() / ys.len() as f64
                }
            })
            .collect();
        // Stable: equals keep the topology's order.
        col.sort_by(|&a, &b| band[a].cmp(&band[b]).then(keys[a].total_cmp(&keys[b])));
        let mut widest: f64 = 0.0;
        for b in 0..bands {
            let members: Vec<usize> = col.iter().copied().filter(|&a| band[a] == b).collect();
            let h = stack_h(&mut members.iter().map(|&a| &nodes[a]));
            let mut y = band_y[b] + (band_h[b] - h) / 2.0;
            for a in members {
                nodes[a].x = x;
                nodes[a].y = y;
                y += nodes[a].h + GAP_Y;
                widest = widest.max(nodes[a].w);
                placed[a] = true;
            }
        }
        x += widest + gap[c];
    }
    // End points, spread along each side in the order of the far ends.
    let mut sides: Vec<[Vec<(f64, usize, usize)>; 2]> = vec![[Vec::new(), Vec::new()]; n];
    for (k, e) in edges.iter().enumerate() {
        for s in 0..2 {
            let (me, far) = (&e.ends[s], &e.ends[1 - s]);
            sides[me.node][me.right as usize].push((nodes[far.node].cy(), k, s));
        }
    }
    for (a, pair) in sides.iter_mut().enumerate() {
        for (right, list) in pair.iter_mut().enumerate() {
            list.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
            let nd = &nodes[a];
            let (y0, y1) = (nd.y + HEAD_H, nd.y + nd.h);
            let step = (y1 - y0) / list.len().max(1) as f64;
            for (r, &(_, k, s)) in list.iter().enumerate() {
                let end = &mut edges[k].ends[s];
                end.x = if right == 1 { nd.x + nd.w } else { nd.x };
                end.y = y0 + step * (r as f64 + 0.5);
            }
        }
    }
    // Groups: a network's bridge, peers and endpoints' namespaces.
    let mut groups = Vec::new();
    for (k, net) in topo.networks.iter().enumerate() {
        let members: Vec<&Node> = nodes
            .iter()
            .filter(|nd| match nd.kind {
                NodeKind::Bridge { net: Some(x), .. } | NodeKind::Peers(x) => x == k,
                NodeKind::Ns(a) => net
                    .endpoints
                    .iter()
                    .any(|e| e.namespace == topo.namespaces[a].name),
                _ => false,
            })
            .collect();
        if members.is_empty() {
            continue;
        }
        let x0 = members.iter().map(|m| m.x).fold(f64::MAX, f64::min) - GROUP_PAD;
        let y0 = members.iter().map(|m| m.y).fold(f64::MAX, f64::min) - GROUP_PAD - GROUP_HEAD;
        let x1 = members.iter().map(|m| m.x + m.w).fold(f64::MIN, f64::max) + GROUP_PAD;
        let y1 = members.iter().map(|m| m.y + m.h).fold(f64::MIN, f64::max) + GROUP_PAD;
        let subnets: Vec<String> = net.subnets.iter().map(|s| s.to_string()).collect();
        groups.push(Group {
            net: k,
            label: format!("{} {}", net.name, subnets.join(" ")),
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        });
    }
    let width = nodes
        .iter()
        .map(|nd| nd.x + nd.w)
        .chain(groups.iter().map(|g| g.x + g.w.max(chars(&g.label))))
        .fold(0.0, f64::max)
        + MARGIN
        + GROUP_PAD;
    let height = nodes
        .iter()
        .map(|nd| nd.y + nd.h)
        .chain(groups.iter().map(|g| g.y + g.h))
        .fold(0.0, f64::max)
        + MARGIN;
    Layout {
        width,
        height,
        nodes,
        edges,
        groups,
    }
}
