//! The walk on the renderers' sample topology: host with bridge nsbr-demo
//! (198.51.100.1, network demo, masquerade), endpoints ns0 (.2) and pod web
//! (.3), and `outside` (203.0.113.2) behind veth-outside (203.0.113.1).

use super::ruleset::Ruleset;
use super::*;
use crate::graph::sample;
use serde_json::json;

fn route(dest: &str, gw: Option<&str>, oif: u32) -> Route {
    Route {
        dest: dest.parse().unwrap(),
        gateway: gw.map(|g| g.parse().unwrap()),
        oif: Some(oif),
        prefsrc: None,
    }
}

fn nsnet_table(extra: serde_json::Value) -> Option<Ruleset> {
    let mut items = vec![json!({"table": {"family": "inet", "name": "nsnet"}})];
    items.extend(extra.as_array().cloned().unwrap_or_default());
    Some(Ruleset::parse(&json!({ "nftables": items }).to_string()).unwrap())
}

fn facts() -> Facts {
    let topology = sample::topology();
    let namespaces = topology
        .namespaces
        .iter()
        .map(|n| {
            let mut f = NsFacts {
                name: n.name.clone(),
                ..NsFacts::default()
            };
            match n.name.as_str() {
                "host" => {
                    f.routes = vec![
                        route("198.51.100.0/24", None, 3),
                        route("203.0.113.0/24", None, 2),
                    ];
                    f.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
                    f.ruleset = nsnet_table(json!([]));
                }
                "ns0" | "web" => {
                    f.routes = vec![
                        route("198.51.100.0/24", None, 2),
                        route("0.0.0.0/0", Some("198.51.100.1"), 2),
                    ];
                }
                "outside" => f.routes = vec![route("203.0.113.0/24", None, 2)],
                _ => {}
            }
            if n.name == "web" {
                f.listening.insert((6, 80));
            }
            f
        })
        .collect();
    Facts {
        topology,
        namespaces,
        published: Vec::new(),
    }
}

fn ns<'a>(f: &'a mut Facts, name: &str) -> &'a mut NsFacts {
    f.namespaces.iter_mut().find(|n| n.name == name).unwrap()
}

fn dest(s: &str) -> Destination {
    s.parse().unwrap()
}

fn place(s: &str) -> Place {
    s.parse().unwrap()
}

fn failure(r: &Report) -> &Hop {
    r.blocked_at()
        .unwrap_or_else(|| panic!("not blocked: {}", r.render()))
}

#[test]
fn destinations_parse_with_and_without_ports() {
    assert_eq!(
        dest("b"),
        Destination {
            place: Place::Namespace("b".into()),
            port: None
        }
    );
    assert_eq!(dest("host:80").port, Some((80, Proto::Tcp)));
    assert_eq!(dest("10.0.0.2:53/udp").port, Some((53, Proto::Udp)));
    assert_eq!(
        dest("[2001:db8::2]:80").place,
        Place::Address("2001:db8::2".parse().unwrap())
    );
    assert_eq!(dest("2001:db8::2").port, None);
    assert_eq!(dest("pid:42").place, Place::Namespace("pid:42".into()));
    assert_eq!(dest("pid:42").port, None);
    assert_eq!(dest("pid:42:80/udp").port, Some((80, Proto::Udp)));
    assert_eq!(place("run:ab12"), Place::Namespace("run:ab12".into()));
    assert!("pid:".parse::<Place>().is_err());
    for bad in ["b:0", "b:x", "b:80/icmp", "[::1", "[::1]80", "", "a/b"] {
        assert!(bad.parse::<Destination>().is_err(), "{bad}");
    }
}

#[test]
fn endpoints_on_one_bridge_are_switched() {
    let r = walk::walk(&facts(), &place("ns0"), &dest("web")).unwrap();
    assert!(r.clear, "{}", r.render());
    assert_eq!(r.destination.to_string(), "198.51.100.3");
    assert_eq!(r.hops.len(), 3, "{}", r.render());
}

#[test]
fn the_way_out_is_masqueraded() {
    let r = walk::walk(&facts(), &place("ns0"), &dest("outside")).unwrap();
    assert!(r.clear, "{}", r.render());
    assert_eq!(r.source.unwrap().to_string(), "203.0.113.1");
}

#[test]
fn forwarding_off_blocks_at_the_host() {
    let mut f = facts();
    ns(&mut f, "host")
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "0".into());
    let r = walk::walk(&f, &place("ns0"), &dest("outside")).unwrap();
    let h = failure(&r);
    assert_eq!(h.namespace, "host");
    assert_eq!(h.fix.as_deref(), Some("sysctl -w net.ipv4.ip_forward=1"));
}

#[test]
fn a_missing_nsnet_table_is_reloaded() {
    let mut f = facts();
    ns(&mut f, "host").ruleset = Some(Ruleset::default());
    let r = walk::walk(&f, &place("ns0"), &dest("outside")).unwrap();
    assert_eq!(failure(&r).fix.as_deref(), Some("nsnet firewall reload"));
}

#[test]
fn a_foreign_forward_drop_gets_an_iptables_fix() {
    let mut f = facts();
    ns(&mut f, "host").ruleset = nsnet_table(json!([
        {"table": {"family": "ip", "name": "filter"}},
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward",
                   "type": "filter", "policy": "drop"}},
    ]));
    let r = walk::walk(&f, &place("ns0"), &dest("outside")).unwrap();
    let h = failure(&r);
    assert!(h.message.contains("chain FORWARD"), "{}", r.render());
    assert!(h
        .fix
        .as_deref()
        .unwrap()
        .starts_with("iptables-nft -I FORWARD -i nsbr-demo -o veth-outside -j ACCEPT"));
}

#[test]
fn a_missing_default_route_names_the_gateway() {
    let mut f = facts();
    ns(&mut f, "ns0").routes.retain(|r| !r.is_default());
    let r = walk::walk(&f, &place("ns0"), &dest("outside")).unwrap();
    assert_eq!(
        failure(&r).fix.as_deref(),
        Some("ip -n ns0 route replace default via 198.51.100.1")
    );
}

#[test]
fn a_masqueraded_network_is_closed_from_outside_but_its_ports_are_open() {
    let mut f = facts();
    ns(&mut f, "outside")
        .routes
        .push(route("0.0.0.0/0", Some("203.0.113.1"), 2));
    let r = walk::walk(&f, &place("outside"), &dest("web:80")).unwrap();
    assert!(failure(&r)
        .message
        .contains("reached only through published ports"));
    // Published: 203.0.113.1:8080 leads to web:80.
    ns(&mut f, "host").ruleset = nsnet_table(json!([
        {"map": {"family": "inet", "table": "nsnet", "name": "ports4_any",
                 "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["198.51.100.3", 80]}]]}},
    ]));
    let r = walk::walk(&f, &place("outside"), &dest("203.0.113.1:8080")).unwrap();
    assert!(r.clear, "{}", r.render());
    let r = walk::walk(&f, &place("outside"), &dest("203.0.113.1:8081")).unwrap();
    assert!(failure(&r).message.contains("not published"));
}

#[test]
fn unknown_places_are_bad_input() {
    let e = walk::walk(&facts(), &place("nosuch"), &dest("web")).unwrap_err();
    assert!(matches!(e, Error::BadInput(_)));
    let e = walk::walk(&facts(), &place("192.0.2.9"), &dest("web")).unwrap_err();
    assert!(matches!(e, Error::BadInput(_)));
}

#[test]
fn proc_net_sockets_are_parsed() {
    let text = "  sl  local_address rem_address   st tx_queue rx_queue\n\
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n\
   1: 0100007F:0035 00000000:0000 01 00000000:00000000 00:00000000 00000000\n";
    assert_eq!(facts::parse_sockets(text, 6, Some("0A")), vec![(6, 8080)]);
    assert_eq!(facts::parse_sockets(text, 17, None).len(), 2);
}

#[test]
fn isolated_ports_of_an_isolating_network_are_blocked_by_design() {
    let mut f = facts();
    f.topology.networks[0].isolate = true;
    for iface in &mut f.topology.namespaces[0].interfaces {
        if iface.master.is_some() {
            iface.isolated = true;
        }
    }
    let r = walk::walk(&f, &place("ns0"), &dest("web")).unwrap();
    let h = failure(&r);
    assert!(
        h.message.contains("isolates its endpoints (--isolate)"),
        "{}",
        r.render()
    );
    // The gateway and beyond stay reachable.
    assert!(
        walk::walk(&f, &place("ns0"), &dest("outside"))
            .unwrap()
            .clear
    );
}

#[test]
fn strict_rp_filter_drops_what_would_return_elsewhere() {
    let mut f = facts();
    f.topology.networks[0].masquerade = false;
    ns(&mut f, "outside")
        .routes
        .push(route("198.51.100.0/24", Some("203.0.113.1"), 2));
    assert!(
        walk::walk(&f, &place("outside"), &dest("ns0"))
            .unwrap()
            .clear
    );
    let host = ns(&mut f, "host");
    host.sysctls
        .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
    host.routes.push(route("203.0.113.2/32", None, 3));
    let r = walk::walk(&f, &place("outside"), &dest("ns0")).unwrap();
    let h = failure(&r);
    assert!(
        h.message.starts_with("rp_filter=1 on veth-outside"),
        "{}",
        r.render()
    );
    assert_eq!(
        h.fix.as_deref(),
        Some("sysctl -w net.ipv4.conf.veth-outside.rp_filter=2")
    );
}
