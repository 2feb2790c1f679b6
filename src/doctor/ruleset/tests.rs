use super::*;
use serde_json::json;

fn ruleset(items: Value) -> Ruleset {
    Ruleset::parse(&json!({ "nftables": items }).to_string()).unwrap()
}

fn chain(family: &str, table: &str, name: &str, hook: Option<&str>, policy: &str) -> Value {
    let mut c = json!({"family": family, "table": table, "name": name});
    if let Some(h) = hook {
        c["hook"] = json!(h);
        c["type"] = json!("filter");
        c["policy"] = json!(policy);
    }
    json!({ "chain": c })
}

fn rule(family: &str, table: &str, chain: &str, expr: Value) -> Value {
    json!({"rule": {"family": family, "table": table, "chain": chain, "expr": expr}})
}

fn iifname(name: &str) -> Value {
    json!({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": name}})
}

fn pkt(iif: &str, oif: &str) -> Packet {
    Packet {
        iif: Some(iif.into()),
        oif: Some(oif.into()),
        saddr: Some("10.0.0.2".parse().unwrap()),
        daddr: "10.0.0.3".parse().unwrap(),
        proto: 1,
        dport: None,
        dnat: false,
        reply: false,
    }
}

/// What `iptables-nft -P FORWARD DROP; iptables-nft -A FORWARD -i br0 -j ACCEPT`
/// leaves in the ruleset (with iptables' counter on each rule).
fn iptables_forward_drop() -> Ruleset {
    ruleset(json!([
        {"table": {"family": "ip", "name": "filter"}},
        chain("ip", "filter", "FORWARD", Some("forward"), "drop"),
        rule("ip", "filter", "FORWARD", json!([
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
            {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}])),
        rule("ip", "filter", "FORWARD", json!([iifname("br0"), {"counter": null}, {"accept": null}])),
    ]))
}

#[test]
fn a_policy_drop_blocks_what_no_rule_accepts() {
    let rs = iptables_forward_drop();
    let b = blockers(&rs, "forward", &pkt("br1", "eth0"), false);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].chain, "FORWARD");
    assert_eq!(b[0].vote, Vote::Drop("policy drop".into()));
}

#[test]
fn a_matching_accept_rule_lets_it_through() {
    let rs = iptables_forward_drop();
    assert!(blockers(&rs, "forward", &pkt("br0", "eth0"), false).is_empty());
    // Other hooks and families are not this chain's business.
    assert!(blockers(&rs, "input", &pkt("br1", "eth0"), false).is_empty());
    let mut v6 = pkt("br1", "eth0");
    v6.daddr = "2001:db8::3".parse().unwrap();
    assert!(blockers(&rs, "forward", &v6, false).is_empty());
    assert!(blockers(&rs, "forward", &pkt("br1", "eth0"), true).is_empty());
}

#[test]
fn nsnets_own_table_is_left_to_the_walk() {
    let rs = ruleset(json!([
        {"table": {"family": "inet", "name": "nsnet"}},
        chain("inet", "nsnet", "forward", Some("forward"), "drop"),
    ]));
    assert!(blockers(&rs, "forward", &pkt("a", "b"), false).is_empty());
}

#[test]
fn a_rule_doctor_cannot_read_makes_a_maybe_not_a_verdict() {
    let rs = ruleset(json!([
        {"table": {"family": "inet", "name": "fw"}},
        chain("inet", "fw", "fwd", Some("forward"), "accept"),
        rule("inet", "fw", "fwd", json!([
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@blocked"}},
            {"drop": null}])),
    ]));
    let b = blockers(&rs, "forward", &pkt("a", "b"), false);
    assert!(matches!(b[0].vote, Vote::Maybe(_)), "{b:?}");
}

#[test]
fn jumps_are_followed_and_prefixes_matched() {
    let rs = ruleset(json!([
        {"table": {"family": "ip", "name": "fw"}},
        chain("ip", "fw", "fwd", Some("forward"), "accept"),
        chain("ip", "fw", "deny", None, ""),
        rule("ip", "fw", "fwd", json!([iifname("veth*"), {"jump": {"target": "deny"}}])),
        rule("ip", "fw", "deny", json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                       "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}},
            {"reject": null}])),
    ]));
    let b = blockers(&rs, "forward", &pkt("veth1", "eth0"), false);
    assert!(
        matches!(&b[0].vote, Vote::Drop(r) if r.contains("reject")),
        "{b:?}"
    );
    assert!(blockers(&rs, "forward", &pkt("eth1", "eth0"), false).is_empty());
}

#[test]
fn map_elements_are_read_as_fields() {
    let rs = ruleset(json!([
        {"table": {"family": "inet", "name": "nsnet"}},
        {"map": {"family": "inet", "table": "nsnet", "name": "ports4_any",
                 "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["10.0.0.2", 80]}]]}},
    ]));
    let t = rs.table("inet", "nsnet").unwrap();
    assert_eq!(
        t.maps["ports4_any"],
        vec![(
            vec![json!("tcp"), json!(8080)],
            vec![json!("10.0.0.2"), json!(80)]
        )]
    );
}

#[test]
fn replies_are_judged_as_established() {
    let rs = iptables_forward_drop();
    let mut reply = pkt("eth0", "br1");
    reply.reply = true;
    assert!(blockers(&rs, "forward", &reply, false).is_empty());
}
