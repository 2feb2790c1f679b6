//! `nsnet graph`: the live topology, read back and checked against the kernel
//! (`ip -j`), in each format: the text names every object, the DOT parses and
//! holds a cluster per namespace and an edge per veth pair, the SVG is
//! well-formed XML that shows every object.

mod common;
use common::Sandbox;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// A topology with every kind of object: named namespaces (nsnet's and
/// iproute2's), a veth link, two networks, endpoints (one namespace on both),
/// a pod with a published port, and a namespace held only by a process.
fn build(sb: &Sandbox) -> (u32, common::Background) {
    sb.netns(&["red", "blue", "a", "b"]);
    sb.ok(&[
        "link",
        "add",
        "red",
        "blue",
        "--addr",
        "192.0.2.100/25",
        "--peer-addr",
        "192.0.2.101/25",
    ]);
    sb.ok(&["network", "create", "web", "--subnet", "198.51.100.0/24"]);
    sb.ok(&["network", "create", "db", "--subnet", "192.0.2.128/25"]);
    sb.ok(&["network", "connect", "web", "a"]);
    sb.ok(&["network", "connect", "web", "b"]);
    sb.ok(&["network", "connect", "db", "b"]);
    sb.ok(&["pod", "create", "shop", "--network", "web", "-p", "8080:80"]);
    sb.sh_ok("ip netns add plain && ip -n plain link add pa type veth peer name pb");
    // A "container" of another runtime: a process in a namespace of its own,
    // wired to the host by hand.
    let (pid, holder) = sb.unshared_process();
    sb.sh_ok(&format!(
        "ip link add ctr-host type veth peer name ctr0 netns /proc/{pid}/ns/net && \
         ip link set ctr-host up && nsenter -t {pid} -n ip addr add 203.0.113.9/24 dev ctr0 && \
         nsenter -t {pid} -n ip link set ctr0 up"
    ));
    (pid, holder)
}

/// Interface names of a namespace, read with iproute2.
fn ip_links(sb: &Sandbox, prefix: &str) -> BTreeSet<String> {
    let v = sb.json(&format!("{prefix}ip -j link show"));
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_graph_shows_every_object_as_the_kernel_has_it() {
    let sb = Sandbox::new();
    let (pid, _holder) = build(&sb);
    let topo: Value = serde_json::from_str(&sb.ok(&["graph", "--format", "json"])).unwrap();
    let namespaces = topo["namespaces"].as_array().unwrap();
    let names: Vec<&str> = namespaces
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    let process = format!("pid:{pid}");
    for want in ["host", "red", "blue", "a", "b", "shop", "plain", &process] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(names[0], "host");
    // Each namespace once, though the pod is both a pod and an `ip netns` name.
    assert_eq!(names.len(), names.iter().collect::<HashSet<_>>().len());
    for ns in namespaces {
        let name = ns["name"].as_str().unwrap();
        let prefix = match name {
            "host" => String::new(),
            n if n.starts_with("pid:") => format!("nsenter -t {pid} -n "),
            n => format!("ip netns exec {n} "),
        };
        let ours: BTreeSet<String> = ns["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ours, ip_links(&sb, &prefix), "interfaces of {name}");
    }
    let shop = &namespaces[names.iter().position(|n| *n == "shop").unwrap()];
    assert_eq!(shop["type"], "pod");
    // Veth peers across namespaces: both directions, resolved by netns id.
    let iface = |ns: &str, ifname: &str| -> Value {
        let n = &namespaces[names.iter().position(|x| *x == ns).unwrap()];
        n["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == ifname)
            .cloned()
            .unwrap_or_else(|| panic!("{ifname} not in {ns}"))
    };
    assert_eq!(
        iface("red", "veth-blue")["peer"],
        serde_json::json!({"namespace": "blue", "interface": "veth-red"})
    );
    assert_eq!(
        iface("host", "ctr-host")["peer"],
        serde_json::json!({"namespace": process, "interface": "ctr0"})
    );
    let b_eth1 = iface("b", "eth1");
    let host_end = b_eth1["peer"]["interface"].as_str().unwrap().to_owned();
    assert_eq!(b_eth1["peer"]["namespace"], "host");
    assert_eq!(iface("host", &host_end)["master"], "nsbr-db");
    assert_eq!(iface("host", "nsbr-web")["network"], "web");
    assert_eq!(topo["ports"][0]["spec"], "*:8080->80/tcp");
    assert_eq!(topo["ports"][0]["namespace"], "shop");
    let nets: Vec<&str> = topo["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(nets, ["db", "web"]);

    let text = sb.ok(&["graph"]);
    for want in [
        "host\n",
        "namespace red",
        "namespace plain",
        "pod shop",
        &format!("process {pid}  (sleep)"),
        "veth-blue  veth ⇄ veth-red@blue  192.0.2.100/25",
        &format!("ctr-host  veth ⇄ ctr0@{process}"),
        "ctr0  veth ⇄ ctr-host@host  203.0.113.9/24",
        "pa  veth ⇄ pb@plain  DOWN",
        "nsbr-web  bridge  198.51.100.1/24  [network web]",
        "nsbr-db  bridge  192.0.2.129/25  [network db]",
        "web  bridge nsbr-web  198.51.100.0/24 gateway 198.51.100.1  masquerade",
        "db  bridge nsbr-db  192.0.2.128/25 gateway 192.0.2.129  masquerade",
        "*:8080->80/tcp  → shop eth0",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
    // Bridge ports hang under their bridge: the line after nsbr-db is its port.
    let lines: Vec<&str> = text.lines().collect();
    let db = lines.iter().position(|l| l.contains("nsbr-db")).unwrap();
    assert!(
        lines[db + 1].contains(&format!("{host_end}  veth ⇄ eth1@b")),
        "{text}"
    );
}

#[test]
fn the_dot_parses_with_a_cluster_per_namespace_and_an_edge_per_veth_pair() {
    let sb = Sandbox::new();
    let (pid, _holder) = build(&sb);
    let dot = sb.ok(&["graph", "--format", "dot"]);
    let g = dot_check::parse(&dot).unwrap_or_else(|e| panic!("{e}\n{dot}"));
    let topo: Value = serde_json::from_str(&sb.ok(&["graph", "--format", "json"])).unwrap();
    let count = topo["namespaces"].as_array().unwrap().len();
    assert_eq!(g.clusters.len(), count, "{dot}");
    for e in &g.edges {
        assert!(g.nodes.contains(&e.0) && g.nodes.contains(&e.1), "{e:?}");
    }
    // Every veth end the kernel reports, over all namespaces, halved.
    let veths = sb.sh_ok(&format!(
        "n=$(ip -j -d link | grep -o '\"info_kind\":\"veth\"' | wc -l); \
         for ns in $(ip netns list | cut -d' ' -f1); do \
         n=$((n + $(ip -n $ns -j -d link | grep -o '\"info_kind\":\"veth\"' | wc -l))); done; \
         n=$((n + $(nsenter -t {pid} -n ip -j -d link | grep -o '\"info_kind\":\"veth\"' | wc -l))); \
         echo $n"
    ));
    let veths: usize = veths.trim().parse().unwrap();
    assert_eq!(g.edges_labelled("veth"), veths / 2, "{dot}");
    for want in [
        "pod shop",
        "namespace red",
        "published *:8080->80/tcp",
        "network web",
    ] {
        assert!(
            g.labels.iter().any(|l| l.contains(want)),
            "{want} not in {:?}",
            g.labels
        );
    }
}

#[test]
fn the_svg_is_well_formed_and_shows_every_object() {
    let sb = Sandbox::new();
    let (pid, _holder) = build(&sb);
    // --output writes the file and nothing to stdout.
    assert_eq!(
        sb.ok(&["graph", "--format", "svg", "--output", "/run/topo.svg"]),
        ""
    );
    let svg = sb.sh_ok("cat /run/topo.svg");
    let texts = xml_check::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(texts.root, "svg");
    let all = texts.text.join("\n");
    for want in [
        "host".to_owned(),
        "namespace red".into(),
        "namespace blue".into(),
        "namespace plain".into(),
        "pod shop".into(),
        format!("process {pid}"),
        "nsbr-web".into(),
        "nsbr-db".into(),
        "veth-blue".into(),
        "ctr0".into(),
        "192.0.2.100/25".into(),
        "*:8080->80/tcp".into(),
        // Bridges are nodes of their own; networks are groups named with their subnet.
        "bridge nsbr-web".into(),
        "network web".into(),
        "198.51.100.1/24".into(),
        "web 198.51.100.0/24".into(),
        "db 192.0.2.128/25".into(),
    ] {
        assert!(all.contains(&want), "{want:?} not drawn:\n{all}");
    }
    assert!(svg.contains("class=\"veth\""));
    assert!(svg.contains("class=\"port\""));
    assert!(svg.contains("class=\"net\""));
}

#[test]
fn graph_reads_without_changing_anything() {
    let sb = Sandbox::new();
    let before = sb.sh_ok("ls -AR /run; ip -j link; ip -j addr");
    let text = sb.ok(&["graph"]);
    assert_eq!(text, "host\n└── lo  127.0.0.1/8 ::1/128\n");
    assert_eq!(sb.sh_ok("ls -AR /run; ip -j link; ip -j addr"), before);
    sb.fails(&["graph", "--format", "png"], "invalid value 'png'");
    let out = sb
        .command("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--", common::NSNET, "graph"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
}

#[test]
fn hostile_names_are_escaped_in_every_format() {
    // A process's command name is anything its author chose.
    let sb = Sandbox::new();
    sb.sh_ok(
        "cp /bin/sleep '/run/a<b&\"c' && ip netns add x && \
         ip -n x link add w type veth peer name w0",
    );
    let _holder = sb.spawn("exec unshare --net '/run/a<b&\"c' 600");
    sb.wait_for("the oddly named process", || {
        sb.sh("pgrep -f 'a<b' >/dev/null").status.success()
    });
    let pid = sb.sh_ok("pgrep -f 'a<b' | head -1").trim().to_owned();
    sb.sh_ok(&format!(
        "ip link add odd type veth peer name odd0 netns /proc/{pid}/ns/net"
    ));
    let dot = sb.ok(&["graph", "--format", "dot"]);
    dot_check::parse(&dot).unwrap_or_else(|e| panic!("{e}\n{dot}"));
    let svg = sb.ok(&["graph", "--format", "svg"]);
    let parsed = xml_check::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert!(
        parsed.text.iter().any(|t| t.contains("a<b&\"c")),
        "{:?}",
        parsed.text
    );
}

/// A small parser for the DOT language (the grammar of graphviz.org/doc/info/lang.html,
/// without HTML strings and ports): enough to say the output is valid DOT and
/// what it declares.
mod dot_check {
    use std::collections::HashSet;

    #[derive(Debug, Default)]
    pub struct Graph {
        pub nodes: HashSet<String>,
        pub edges: Vec<(String, String, Option<String>)>,
        pub clusters: Vec<String>,
        pub labels: Vec<String>,
    }

    impl Graph {
        pub fn edges_labelled(&self, label: &str) -> usize {
            self.edges
                .iter()
                .filter(|e| e.2.as_deref() == Some(label))
                .count()
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Id(String),
        Punct(char),
        Edge,
    }

    fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
        let c: Vec<char> = s.chars().collect();
        let mut i = 0;
        let mut out = Vec::new();
        while i < c.len() {
            match c[i] {
                ' ' | '\t' | '\n' | '\r' => i += 1,
                '/' if c.get(i + 1) == Some(&'/') => {
                    while i < c.len() && c[i] != '\n' {
                        i += 1
                    }
                }
                '{' | '}' | '[' | ']' | ';' | ',' | '=' => {
                    out.push(Tok::Punct(c[i]));
                    i += 1
                }
                '-' if c.get(i + 1) == Some(&'-') => {
                    out.push(Tok::Edge);
                    i += 2
                }
                '"' => {
                    let mut v = String::new();
                    i += 1;
                    loop {
                        match c.get(i) {
                            None => return Err("unterminated string".into()),
                            Some('"') => break,
                            Some('\\') if c.get(i + 1) == Some(&'"') => {
                                v.push('"');
                                i += 2
                            }
                            Some(&ch) => {
                                v.push(ch);
                                i += 1
                            }
                        }
                    }
                    i += 1;
                    out.push(Tok::Id(v))
                }
                ch if ch.is_alphanumeric() || ch == '_' || ch == '.' || ch == '-' => {
                    let start = i;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                        i += 1
                    }
                    if i == start {
                        return Err(format!("stray {ch:?}"));
                    }
                    out.push(Tok::Id(c[start..i].iter().collect()))
                }
                ch => return Err(format!("unexpected {ch:?} at {i}")),
            }
        }
        Ok(out)
    }

    struct P {
        t: Vec<Tok>,
        i: usize,
        g: Graph,
    }

    impl P {
        fn peek(&self) -> Option<&Tok> {
            self.t.get(self.i)
        }
        fn eat(&mut self, p: char) -> bool {
            if self.peek() == Some(&Tok::Punct(p)) {
                self.i += 1;
                true
            } else {
                false
            }
        }
        fn id(&mut self) -> Result<String, String> {
            match self.t.get(self.i).cloned() {
                Some(Tok::Id(s)) => {
                    self.i += 1;
                    Ok(s)
                }
                other => Err(format!("expected an ID at token {}, got {other:?}", self.i)),
            }
        }
        fn attrs(&mut self) -> Result<Vec<(String, String)>, String> {
            let mut out = Vec::new();
            while self.eat('[') {
                while !self.eat(']') {
                    let k = self.id()?;
                    if !self.eat('=') {
                        return Err(format!("attribute {k} without '='"));
                    }
                    out.push((k, self.id()?));
                    let _ = self.eat(',') || self.eat(';');
                }
            }
            Ok(out)
        }
        fn stmts(&mut self) -> Result<(), String> {
            if !self.eat('{') {
                return Err("expected '{'".into());
            }
            while !self.eat('}') {
                if self.peek().is_none() {
                    return Err("unclosed '{'".into());
                }
                self.stmt()?;
                let _ = self.eat(';');
            }
            Ok(())
        }
        fn stmt(&mut self) -> Result<(), String> {
            if self.peek() == Some(&Tok::Id("subgraph".into())) {
                self.i += 1;
                let name = self.id()?;
                if name.starts_with("cluster") {
                    self.g.clusters.push(name);
                }
                return self.stmts();
            }
            let first = self.id()?;
            if ["graph", "node", "edge"].contains(&first.as_str()) {
                self.attrs()?;
                return Ok(());
            }
            if self.eat('=') {
                let v = self.id()?;
                if first == "label" {
                    self.g.labels.push(v);
                }
                return Ok(());
            }
            let mut chain = vec![first];
            while self.peek() == Some(&Tok::Edge) {
                self.i += 1;
                chain.push(self.id()?);
            }
            let attrs = self.attrs()?;
            let label = attrs
                .iter()
                .find(|(k, _)| k == "label")
                .map(|(_, v)| v.clone());
            if chain.len() == 1 {
                self.g.nodes.insert(chain[0].clone());
                self.g.labels.extend(label);
            } else {
                for w in chain.windows(2) {
                    self.g
                        .edges
                        .push((w[0].clone(), w[1].clone(), label.clone()));
                }
            }
            Ok(())
        }
    }

    pub fn parse(s: &str) -> Result<Graph, String> {
        let mut p = P {
            t: tokenize(s)?,
            i: 0,
            g: Graph::default(),
        };
        if p.id()? != "graph" {
            return Err("not an undirected graph".into());
        }
        if !matches!(p.peek(), Some(Tok::Punct('{'))) {
            p.id()?;
        }
        p.stmts()?;
        if p.i != p.t.len() {
            return Err(format!(
                "trailing tokens after the graph: {:?}",
                &p.t[p.i..]
            ));
        }
        Ok(p.g)
    }
}

/// A small XML well-formedness check: one root, tags nested and closed,
/// attributes quoted and unique, only the predefined and numeric entities, no
/// bare `<` or `&` in text. Returns the root's name and the text of every element.
mod xml_check {
    pub struct Doc {
        pub root: String,
        pub text: Vec<String>,
    }

    fn unescape(s: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find(';').ok_or("an '&' without ';'")? + i;
            let ent = &rest[i + 1..end];
            out.push(match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(format!("bad entity &{e};"))?,
                e if e.starts_with('#') => e[1..]
                    .parse()
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(format!("bad entity &{e};"))?,
                e => return Err(format!("unknown entity &{e};")),
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn is_name(s: &str) -> bool {
        !s.is_empty()
            && s.chars().all(|c| c.is_alphanumeric() || "-_:.".contains(c))
            && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
    }

    fn attributes(s: &str) -> Result<(), String> {
        let mut rest = s.trim();
        let mut seen = std::collections::HashSet::new();
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .ok_or(format!("attribute without value: {rest:?}"))?;
            let name = rest[..eq].trim();
            if !is_name(name) || !seen.insert(name.to_owned()) {
                return Err(format!("bad or repeated attribute {name:?}"));
            }
            let after = rest[eq + 1..].trim_start();
            let q = after.chars().next().ok_or("missing value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted value of {name}"));
            }
            let close = after[1..].find(q).ok_or("unclosed value")? + 1;
            unescape(&after[1..close])?;
            rest = after[close + 1..].trim_start();
        }
        Ok(())
    }

    pub fn parse(s: &str) -> Result<Doc, String> {
        let mut rest = s;
        if let Some(r) = rest.strip_prefix("<?xml") {
            rest = &r[r.find("?>").ok_or("unclosed prolog")? + 2..];
        }
        let mut stack: Vec<String> = Vec::new();
        let mut root = None;
        let mut text = Vec::new();
        loop {
            let lt = rest.find('<');
            let chunk = &rest[..lt.unwrap_or(rest.len())];
            if stack.is_empty() && !chunk.trim().is_empty() {
                return Err(format!("text outside the root: {chunk:?}"));
            }
            if !chunk.trim().is_empty() {
                text.push(unescape(chunk)?);
            }
            let Some(lt) = lt else { break };
            rest = &rest[lt..];
            if rest.starts_with("<!--") {
                rest = &rest[rest.find("-->").ok_or("unclosed comment")? + 3..];
                continue;
            }
            let gt = rest.find('>').ok_or("unclosed tag")?;
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
                continue;
            }
            let (body, empty) = match tag.strip_suffix('/') {
                Some(b) => (b, true),
                None => (tag, false),
            };
            let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
            let name = &body[..name_end];
            if !is_name(name) {
                return Err(format!("bad tag name {name:?}"));
            }
            attributes(&body[name_end..])?;
            if stack.is_empty() {
                if root.is_some() {
                    return Err("more than one root element".into());
                }
                root = Some(name.to_owned());
            }
            if !empty {
                stack.push(name.to_owned());
            }
        }
        if let Some(open) = stack.pop() {
            return Err(format!("<{open}> never closed"));
        }
        Ok(Doc {
            root: root.ok_or("no root element")?,
            text,
        })
    }

    #[test]
    fn the_checker_catches_broken_documents() {
        assert!(parse("<a><b/>x &amp; y</a>").is_ok());
        for bad in [
            "<a><b></a></b>",
            "<a>x & y</a>",
            "<a x=1/>",
            "<a/><b/>",
            "<a>",
            "<a x='1' x='2'/>",
            "<a>&nope;</a>",
        ] {
            assert!(parse(bad).is_err(), "{bad} passed");
        }
    }
}

#[test]
fn the_dot_checker_catches_broken_graphs() {
    assert!(dot_check::parse("graph g { a -- b [label=\"x\"]; }").is_ok());
    for bad in [
        "graph g { a -- }",
        "graph g { a [label=\"x] }",
        "graph g { subgraph c { a }",
        "digraph g { a -> b }",
        "graph g { a [label] }",
    ] {
        assert!(dot_check::parse(bad).is_err(), "{bad} passed");
    }
}
