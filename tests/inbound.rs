//! `--inbound published|routed`: what reaches a network's endpoints from
//! outside the host (issue 13: the Kubernetes network model needs routed).

mod common;
use common::Sandbox;
use serde_json::json;

/// `outside` routes 10.40.0.0/16 through the sandbox host, as a router of a
/// cluster's nodes would.
fn routed_outside() -> Sandbox {
    let sb = Sandbox::with_outside();
    sb.sh_ok("ip -n outside route add 10.40.0.0/16 via 203.0.113.1");
    sb
}

fn add_cni(sb: &Sandbox, ns: &str, conf: &serde_json::Value) {
    let out = sb.cni(
        &[
            ("CNI_COMMAND", Some("ADD")),
            ("CNI_CONTAINERID", Some(&format!("ctr-{ns}"))),
            ("CNI_NETNS", Some(&format!("/run/netns/{ns}"))),
            ("CNI_IFNAME", Some("eth0")),
        ],
        &conf.to_string(),
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn routed_networks_take_traffic_routed_to_their_endpoints_and_published_ones_do_not() {
    let sb = routed_outside();
    sb.netns(&["r", "p", "i"]);
    sb.ok(&[
        "network",
        "create",
        "rt",
        "--subnet",
        "10.40.1.0/24",
        "--inbound",
        "routed",
    ]);
    sb.ok(&["network", "create", "pub", "--subnet", "10.40.2.0/24"]);
    sb.ok(&[
        "network",
        "create",
        "iso",
        "--subnet",
        "10.40.3.0/24",
        "--inbound",
        "routed",
        "--isolate",
    ]);
    sb.ok(&["network", "connect", "rt", "r"]);
    sb.ok(&["network", "connect", "pub", "p", "-p", "8080:80"]);
    sb.ok(&["network", "connect", "iso", "i"]);
    let _r = sb.tcp_server("r", 80, "routed");
    let _p = sb.tcp_server("p", 80, "published");
    let _i = sb.tcp_server("i", 80, "isolated");
    assert_eq!(
        sb.tcp_ask("outside", "10.40.1.2", 80).as_deref(),
        Some("routed")
    );
    assert!(sb.pings("outside", "10.40.1.2"));
    assert_eq!(
        sb.tcp_ask("outside", "10.40.3.2", 80).as_deref(),
        Some("isolated")
    );
    // A published network: only its published port.
    assert_eq!(sb.tcp_ask("outside", "10.40.2.2", 80), None);
    assert!(sb.ping_fails("outside", "10.40.2.2"));
    assert_eq!(
        sb.tcp_ask("outside", "203.0.113.1", 8080).as_deref(),
        Some("published")
    );
    // Egress of the routed network is still masqueraded: the outside sees the host.
    let _o = sb.tcp_echo_peer("outside", "203.0.113.2", 9000);
    assert_eq!(
        sb.tcp_ask("r", "203.0.113.2", 9000).as_deref(),
        Some("203.0.113.1")
    );
    // Networks stay apart from each other.
    assert_eq!(sb.tcp_ask("p", "10.40.1.2", 80), None);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.ok(&["network", "inspect", "rt"])).unwrap();
    assert_eq!(inspect["options"]["inbound"], "routed", "{inspect}");
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.ok(&["network", "inspect", "pub"])).unwrap();
    assert_eq!(inspect["options"]["inbound"], "published", "{inspect}");
    sb.ok(&["check"]);
}

#[test]
fn cni_networks_are_routed_unless_their_config_says_published_and_each_add_decides() {
    let sb = routed_outside();
    sb.netns(&["c1", "c2"]);
    let mut conf = json!({
        "cniVersion": "1.0.0", "name": "kube", "type": "nsnet",
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.40.5.0/24"}]]},
    });
    add_cni(&sb, "c1", &conf);
    let _c1 = sb.tcp_server("c1", 80, "pod");
    assert_eq!(
        sb.tcp_ask("outside", "10.40.5.2", 80).as_deref(),
        Some("pod")
    );
    // The next ADD's config says published: the network follows it.
    conf["inbound"] = "published".into();
    add_cni(&sb, "c2", &conf);
    assert_eq!(sb.tcp_ask("outside", "10.40.5.2", 80), None);
    let bad = json!({
        "cniVersion": "1.0.0", "name": "kube", "type": "nsnet", "inbound": "sometimes",
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": "10.40.5.0/24"}]]},
    });
    let out = sb.cni(
        &[
            ("CNI_COMMAND", Some("ADD")),
            ("CNI_CONTAINERID", Some("ctr-bad")),
            ("CNI_NETNS", Some("/run/netns/c2")),
            ("CNI_IFNAME", Some("eth1")),
        ],
        &bad.to_string(),
    );
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["code"], 7, "{err}");
    assert!(err["msg"].as_str().unwrap().contains("inbound"), "{err}");
    sb.ok(&["check"]);
}
