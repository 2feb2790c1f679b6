//! The topology as an SVG picture, laid out by nsnet itself (no Graphviz).
//!
//! Layout is a small layered drawing, left to right: namespaces are boxes
//! listing their interfaces (a bridge's ports indented under it); the host is in
//! the first column and every other namespace one column right of the nearest
//! namespace it is wired to (a breadth-first walk over veth pairs; namespaces not
//! connected to the host start their own walk in the first column). Within a
//! column, boxes are ordered by the mean height of the rows they are wired to on
//! their left (one barycentre pass, the classic crossing-reduction step), so a
//! bridge's ports lead almost straight across to their namespaces; columns are
//! centred vertically. Veth pairs are curves between the rows of their two ends; published
//! ports are dashed curves from a row of the host's box to the interface they
//! lead to. Text is monospace, so box widths follow from character counts.

use super::{text::interface_line, Topology};
use std::collections::VecDeque;
use std::fmt::Write;

const CHAR_W: f64 = 7.2;
const ROW_H: f64 = 18.0;
const HEAD_H: f64 = 26.0;
const PAD: f64 = 10.0;
const GAP_X: f64 = 96.0;
const GAP_Y: f64 = 20.0;
const MARGIN: f64 = 24.0;

/// What a row of a box shows.
#[derive(Debug, Clone, PartialEq)]
pub enum RowKind {
    /// Interface `n` of the namespace.
    Interface(usize),
    /// Published port `n` of the topology (rows of the host's box).
    Port(usize),
    /// A line of the networks box.
    Note,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub text: String,
    pub kind: RowKind,
}

/// A box on the canvas: a namespace, or (with `ns` = `None`) the networks list.
#[derive(Debug, Clone)]
pub struct Placed {
    pub ns: Option<usize>,
    pub title: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub rows: Vec<Row>,
}

impl Placed {
    /// The vertical middle of row `r`.
    pub fn row_y(&self, r: usize) -> f64 {
        self.y + HEAD_H + ROW_H * r as f64 + ROW_H / 2.0
    }
    fn center_x(&self) -> f64 {
        self.x + self.w / 2.0
    }
}

/// Where everything goes.
#[derive(Debug, Clone)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// One per namespace, in the topology's order, then the networks box if any.
    pub boxes: Vec<Placed>,
}

/// The rows of a namespace's box: interfaces, bridge ports right under their
/// bridge, and (for the host) the published ports.
fn rows(topo: &Topology, a: usize) -> Vec<Row> {
    let ns = &topo.namespaces[a];
    let is_port = |m: &Option<String>| {
        m.as_ref()
            .is_some_and(|m| ns.interfaces.iter().any(|i| &i.name == m))
    };
    let mut out = Vec::new();
    for (i, iface) in ns.interfaces.iter().enumerate() {
        if is_port(&iface.master) {
            continue;
        }
        out.push(Row {
            text: interface_line(iface),
            kind: RowKind::Interface(i),
        });
        for (j, port) in ns.interfaces.iter().enumerate() {
            if port.master.as_deref() == Some(iface.name.as_str()) {
                out.push(Row {
                    text: format!("└ {}", interface_line(port)),
                    kind: RowKind::Interface(j),
                });
            }
        }
    }
    if a == 0 {
        for (k, p) in topo.ports.iter().enumerate() {
            out.push(Row {
                text: format!("published {}", p.spec),
                kind: RowKind::Port(k),
            });
        }
    }
    out
}

fn titled(topo: &Topology, a: usize) -> String {
    let ns = &topo.namespaces[a];
    match ns.detail() {
        Some(d) => format!("{} ({d})", ns.title()),
        None => ns.title(),
    }
}

fn sized(ns: Option<usize>, title: String, rows: Vec<Row>) -> Placed {
    let chars = rows
        .iter()
        .map(|r| r.text.chars().count())
        .chain([title.chars().count()])
        .max()
        .unwrap_or(0);
    Placed {
        ns,
        w: chars as f64 * CHAR_W + 2.0 * PAD,
        h: HEAD_H + ROW_H * rows.len() as f64 + PAD / 2.0,
        x: 0.0,
        y: 0.0,
        title,
        rows,
    }
}

/// Each namespace's layer: breadth-first over veth pairs from the host, then
/// from each namespace not reached yet.
pub fn layers(topo: &Topology) -> Vec<usize> {
    let n = topo.namespaces.len();
    let mut adj = vec![Vec::new(); n];
    for ((a, _), (b, _)) in topo.wires() {
        if a != b {
            adj[a].push(b);
            adj[b].push(a);
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
    layer
}

/// Places every box.
pub fn layout(topo: &Topology) -> Layout {
    let n = topo.namespaces.len();
    let mut boxes: Vec<Placed> = (0..n)
        .map(|a| sized(Some(a), titled(topo, a), rows(topo, a)))
        .collect();
    let layer = layers(topo);
    let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (a, &l) in layer.iter().enumerate() {
        cols[l].push(a);
    }
    let col_height = |c: &[usize], b: &[Placed]| {
        c.iter().map(|&a| b[a].h).sum::<f64>() + GAP_Y * c.len().saturating_sub(1) as f64
    };
    let tallest = cols
        .iter()
        .map(|c| col_height(c, &boxes))
        .fold(0.0, f64::max);
    let wires = topo.wires();
    let mut placed = vec![false; n];
    let mut x = MARGIN;
    for (c, col) in cols.iter_mut().enumerate() {
        if c > 0 {
            // Mean height of the rows each box is wired to in the columns placed
            // already; boxes wired to nothing there go last. The sort is stable,
            // so equals keep the topology's order.
            let key = |a: usize| -> f64 {
                let ys: Vec<f64> = wires
                    .iter()
                    .filter_map(|&((p, i), (q, j))| match (p == a, q == a) {
                        (true, false) => Some((q, j)),
                        (false, true) => Some((p, i)),
                        _ => None,
                    })
                    .filter(|&(q, _)| placed[q])
                    .filter_map(|(q, j)| {
                        let r = row_of(&boxes[q], &RowKind::Interface(j))?;
                        Some(boxes[q].row_y(r))
                    })
                    .collect();
                if ys.is_empty() {
                    f64::MAX
                } else {
                    ys.iter().sum::<f64>() / ys.len() as f64
                }
            };
            let keys: Vec<f64> = (0..n).map(key).collect();
            col.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
        }
        let mut y = MARGIN + (tallest - col_height(col, &boxes)) / 2.0;
        let mut widest: f64 = 0.0;
        for &a in col.iter() {
            boxes[a].x = x;
            boxes[a].y = y;
            y += boxes[a].h + GAP_Y;
            widest = widest.max(boxes[a].w);
            placed[a] = true;
        }
        x += widest + GAP_X;
    }
    let mut width = x - GAP_X - MARGIN;
    let mut y = MARGIN + tallest + GAP_Y * 2.0;
    if !topo.networks.is_empty() {
        let mut notes = Vec::new();
        for net in &topo.networks {
            let subnets: Vec<String> = net
                .subnets
                .iter()
                .zip(&net.gateways)
                .map(|(s, g)| format!("{s} gw {g}"))
                .collect();
            notes.push(format!(
                "{}  bridge {}  {}  {}",
                net.name,
                net.bridge,
                subnets.join(", "),
                net.mode()
            ));
            for e in &net.endpoints {
                notes.push(format!(
                    "  {} {}  {}",
                    e.namespace,
                    e.interface,
                    super::address_list(&e.addresses)
                ));
            }
        }
        let notes = notes
            .into_iter()
            .map(|text| Row {
                text,
                kind: RowKind::Note,
            })
            .collect();
        let mut b = sized(None, "networks".into(), notes);
        b.x = MARGIN;
        b.y = y;
        y += b.h + GAP_Y * 2.0;
        width = width.max(b.w);
        boxes.push(b);
    }
    Layout {
        width: width + 2.0 * MARGIN,
        height: y - GAP_Y * 2.0 + MARGIN,
        boxes,
    }
}

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

/// Where a curve leaves box `p` at row `r` towards `to_x`: (x, y, outward sign).
fn anchor(p: &Placed, r: usize, toward_right: bool) -> (f64, f64, f64) {
    if toward_right {
        (p.x + p.w, p.row_y(r), 1.0)
    } else {
        (p.x, p.row_y(r), -1.0)
    }
}

/// A curve between two rows; boxes that overlap horizontally are joined on
/// their right sides, others on the sides facing each other.
fn curve(l: &Layout, (a, ra): (usize, usize), (b, rb): (usize, usize)) -> String {
    let (pa, pb) = (&l.boxes[a], &l.boxes[b]);
    let overlap = (pa.center_x() - pb.center_x()).abs() < (pa.w + pb.w) / 2.0;
    let (ra_right, rb_right) = if overlap || a == b {
        (true, true)
    } else {
        let right = pb.center_x() > pa.center_x();
        (right, !right)
    };
    let (x1, y1, s1) = anchor(pa, ra, ra_right);
    let (x2, y2, s2) = anchor(pb, rb, rb_right);
    let reach =
        ((x2 - x1).abs() / 3.0).max(36.0) + if overlap { (y2 - y1).abs() / 8.0 } else { 0.0 };
    format!(
        "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
        x1 + s1 * reach,
        x2 + s2 * reach
    )
}

fn row_of(p: &Placed, kind: &RowKind) -> Option<usize> {
    p.rows.iter().position(|r| &r.kind == kind)
}

/// Renders the topology as a standalone SVG document.
pub fn render(topo: &Topology) -> String {
    let l = layout(topo);
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
.host{fill:#eef3fb}.pod{fill:#f3f8ee;stroke:#5b8c3a}.notes{fill:#fffbea;stroke:#b59a3b}\
.head{font-weight:bold;fill:#1d2b3a}.row{fill:#24292f}.down{fill:#a33}\
.veth{fill:none;stroke:#4a6fa5;stroke-width:1.6}\
.port{fill:none;stroke:#d9822b;stroke-width:1.4;stroke-dasharray:6 4}\
.end{fill:#4a6fa5}</style>\n",
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    // Curves first, so boxes drawn over them keep their text readable.
    out.push_str("<g class=\"wires\">\n");
    let mut ends = Vec::new();
    for ((a, i), (b, j)) in topo.wires() {
        let (Some(ra), Some(rb)) = (
            row_of(&l.boxes[a], &RowKind::Interface(i)),
            row_of(&l.boxes[b], &RowKind::Interface(j)),
        ) else {
            continue;
        };
        let title = format!(
            "veth {}@{} ⇄ {}@{}",
            topo.namespaces[a].interfaces[i].name,
            topo.namespaces[a].name,
            topo.namespaces[b].interfaces[j].name,
            topo.namespaces[b].name
        );
        let _ = writeln!(
            out,
            r#"<path class="veth" data-id="veth:{}/{}" d="{}"><title>{}</title></path>"#,
            escape(&topo.namespaces[a].name),
            escape(&topo.namespaces[a].interfaces[i].name),
            curve(&l, (a, ra), (b, rb)),
            escape(&title)
        );
        ends.push(((a, ra), (b, rb)));
    }
    for (k, port) in topo.ports.iter().enumerate() {
        let (Some((b, j)), Some(rk)) = (
            topo.port_target(port),
            row_of(&l.boxes[0], &RowKind::Port(k)),
        ) else {
            continue;
        };
        let Some(rb) = row_of(&l.boxes[b], &RowKind::Interface(j)) else {
            continue;
        };
        let title = format!(
            "{} → {} {}:{}",
            port.spec, port.namespace, port.interface, port.container_port
        );
        let _ = writeln!(
            out,
            r#"<path class="port" data-id="port:{k}" d="{}"><title>{}</title></path>"#,
            curve(&l, (0, rk), (b, rb)),
            escape(&title)
        );
    }
    out.push_str("</g>\n");
    for p in &l.boxes {
        draw_box(&mut out, topo, p);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_box(out: &mut String, topo: &Topology, p: &Placed) {
    let class = match p.ns.map(|a| &topo.namespaces[a].kind) {
        None => "box notes",
        Some(super::NsKind::Host) => "box host",
        Some(super::NsKind::Pod { .. }) => "box pod",
        Some(_) => "box",
    };
    let id = match p.ns {
        Some(a) => format!("ns{a}"),
        None => "networks".into(),
    };
    // data-id names the object for the live page (`nsnet graph --serve`):
    // `ns:NAME`, `if:NS/IFACE`, `port:N` (an index into the topology's ports).
    let data_id = match p.ns {
        Some(a) => format!(r#" data-id="ns:{}""#, escape(&topo.namespaces[a].name)),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        r#"<g id="{id}"{data_id}><title>{}</title>"#,
        escape(&p.title)
    );
    let _ = writeln!(
        out,
        r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6"/>"#,
        p.x, p.y, p.w, p.h
    );
    let _ = writeln!(
        out,
        r#"<text class="head" x="{:.1}" y="{:.1}">{}</text>"#,
        p.x + PAD,
        p.y + HEAD_H - 9.0,
        escape(&p.title)
    );
    for (r, row) in p.rows.iter().enumerate() {
        let down = match (p.ns, &row.kind) {
            (Some(a), RowKind::Interface(i)) => !topo.namespaces[a].interfaces[*i].up,
            _ => false,
        };
        let row_id = match (p.ns, &row.kind) {
            (Some(a), RowKind::Interface(i)) => format!(
                r#" data-id="if:{}/{}""#,
                escape(&topo.namespaces[a].name),
                escape(&topo.namespaces[a].interfaces[*i].name)
            ),
            (_, RowKind::Port(k)) => format!(r#" data-id="port:{k}""#),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            r#"<text class="{}"{row_id} x="{:.1}" y="{:.1}" xml:space="preserve">{}</text>"#,
            if down { "row down" } else { "row" },
            p.x + PAD,
            p.row_y(r) + 4.0,
            escape(&row.text)
        );
    }
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::sample;

    fn overlaps(a: &Placed, b: &Placed) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn the_host_comes_first_and_its_neighbours_one_column_right() {
        let topo = sample::topology();
        let layer = layers(&topo);
        let at = |name: &str| layer[topo.namespaces.iter().position(|n| n.name == name).unwrap()];
        assert_eq!(at("host"), 0);
        assert_eq!((at("ns0"), at("web"), at("outside")), (1, 1, 1));
        // red-blue is not wired to the host: red starts its own walk.
        assert_eq!((at("red"), at("blue")), (0, 1));
    }

    #[test]
    fn boxes_do_not_overlap_and_fit_the_canvas() {
        let l = layout(&sample::topology());
        for (i, a) in l.boxes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.y >= 0.0, "{a:?}");
            assert!(a.x + a.w <= l.width && a.y + a.h <= l.height, "{a:?}");
            for b in &l.boxes[i + 1..] {
                assert!(!overlaps(a, b), "{} overlaps {}", a.title, b.title);
            }
        }
    }

    #[test]
    fn every_box_is_wide_enough_for_its_longest_row() {
        let l = layout(&sample::topology());
        for b in &l.boxes {
            for r in &b.rows {
                assert!(r.text.chars().count() as f64 * CHAR_W <= b.w, "{r:?}");
            }
        }
    }

    #[test]
    fn curves_start_and_end_on_box_edges() {
        let topo = sample::topology();
        let l = layout(&topo);
        let svg = render(&topo);
        for ((a, i), (b, j)) in topo.wires() {
            let ra = row_of(&l.boxes[a], &RowKind::Interface(i)).unwrap();
            let rb = row_of(&l.boxes[b], &RowKind::Interface(j)).unwrap();
            let d = curve(&l, (a, ra), (b, rb));
            let start = d[1..].split(' ').next().unwrap();
            let (x, y) = start.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            let pa = &l.boxes[a];
            assert!(
                (x - pa.x).abs() < 0.1 || (x - pa.x - pa.w).abs() < 0.1,
                "{d}"
            );
            assert!((y - pa.row_y(ra)).abs() < 0.1);
            assert!(svg.contains(&d));
        }
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
    fn every_object_is_named_by_a_data_id() {
        let topo = sample::topology();
        let svg = render(&topo);
        for ns in &topo.namespaces {
            assert!(svg.contains(&format!(r#"data-id="ns:{}""#, escape(&ns.name))));
            for i in &ns.interfaces {
                let id = format!(r#"data-id="if:{}/{}""#, escape(&ns.name), escape(&i.name));
                assert!(svg.contains(&id), "{id}");
            }
        }
        for k in 0..topo.ports.len() {
            assert!(svg.contains(&format!(r#"data-id="port:{k}""#)));
        }
        assert_eq!(svg.matches(r#"data-id="veth:"#).count(), topo.wires().len());
    }
}
