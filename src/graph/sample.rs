//! A small topology for the renderers' unit tests: what the demo builds, in brief.

use super::{Attachment, Interface, Namespace, Network, NsKind, Peer, Port, Topology};

fn iface(index: u32, name: &str, kind: &str, addrs: &[&str]) -> Interface {
    Interface {
        index,
        name: name.into(),
        kind: kind.into(),
        up: true,
        carrier: true,
        isolated: false,
        mtu: Some(1500),
        mac: None,
        master: None,
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        peer: None,
        network: None,
    }
}

fn veth(index: u32, name: &str, peer_ns: &str, peer_if: &str, addrs: &[&str]) -> Interface {
    Interface {
        peer: Some(Peer {
            namespace: Some(peer_ns.into()),
            interface: peer_if.into(),
        }),
        ..iface(index, name, "veth", addrs)
    }
}

fn ns(name: &str, kind: NsKind, inode: u64, interfaces: Vec<Interface>) -> Namespace {
    let mut all = vec![iface(1, "lo", "loopback", &["127.0.0.1/8", "::1/128"])];
    all.extend(interfaces);
    Namespace {
        name: name.into(),
        kind,
        inode,
        aliases: Vec::new(),
        interfaces: all,
    }
}

pub(crate) fn topology() -> Topology {
    let mut bridge = iface(3, "nsbr-demo", "bridge", &["198.51.100.1/24", "fe80::1/64"]);
    bridge.network = Some("demo".into());
    let mut p1 = veth(4, "nsv1", "ns0", "eth0", &[]);
    p1.master = Some("nsbr-demo".into());
    let mut p2 = veth(5, "nsv2", "web", "eth0", &[]);
    p2.master = Some("nsbr-demo".into());
    let host = ns(
        "host",
        NsKind::Host,
        1,
        vec![
            veth(
                2,
                "veth-outside",
                "outside",
                "veth-host",
                &["203.0.113.1/24"],
            ),
            bridge,
            p1,
            p2,
        ],
    );
    let attachment = |ns: &str, addr: &str, host_if: &str| Attachment {
        id: format!("demo/{ns}"),
        namespace: ns.into(),
        interface: "eth0".into(),
        host_interface: host_if.into(),
        addresses: vec![addr.parse().unwrap()],
    };
    let mut lonely = iface(2, "dummy0", "dummy", &[]);
    lonely.up = false;
    Topology {
        namespaces: vec![
            host,
            ns(
                "red",
                NsKind::Named,
                2,
                vec![veth(
                    2,
                    "veth-blue",
                    "blue",
                    "veth-red",
                    &["192.0.2.100/25"],
                )],
            ),
            ns(
                "blue",
                NsKind::Named,
                3,
                vec![veth(2, "veth-red", "red", "veth-blue", &["192.0.2.101/25"])],
            ),
            ns(
                "ns0",
                NsKind::Named,
                4,
                vec![veth(2, "eth0", "host", "nsv1", &["198.51.100.2/24"])],
            ),
            ns(
                "web",
                NsKind::Pod {
                    pid: 77,
                    running: true,
                    members: 2,
                },
                5,
                vec![veth(2, "eth0", "host", "nsv2", &["198.51.100.3/24"])],
            ),
            ns(
                "outside",
                NsKind::Named,
                6,
                vec![veth(
                    2,
                    "veth-host",
                    "host",
                    "veth-outside",
                    &["203.0.113.2/24"],
                )],
            ),
            ns(
                "pid:4242",
                NsKind::Process {
                    pid: 4242,
                    command: "server \"<x>\" & co".into(),
                },
                7,
                vec![lonely],
            ),
        ],
        networks: vec![Network {
            name: "demo".into(),
            bridge: "nsbr-demo".into(),
            subnets: vec!["198.51.100.0/24".parse().unwrap()],
            gateways: vec!["198.51.100.1".parse().unwrap()],
            internal: false,
            masquerade: true,
            isolate: false,
            cluster: None,
            endpoints: vec![
                attachment("ns0", "198.51.100.2/24", "nsv1"),
                attachment("web", "198.51.100.3/24", "nsv2"),
            ],
        }],
        ports: vec![Port {
            spec: "*:8080->80/tcp".into(),
            network: "demo".into(),
            namespace: "web".into(),
            interface: "eth0".into(),
            to: vec!["198.51.100.3".parse().unwrap()],
            container_port: 80,
        }],
    }
}

/// `count` pods spread over `nets` networks, each with its bridge in the host.
pub(crate) fn many(count: usize, nets: usize) -> Topology {
    let mut host_ifs = Vec::new();
    let mut namespaces = Vec::new();
    let mut networks = Vec::new();
    for k in 0..nets {
        let mut bridge = iface(
            2 + k as u32,
            &format!("nsbr-net{k}"),
            "bridge",
            &[&format!("10.{k}.0.1/16")],
        );
        bridge.network = Some(format!("net{k}"));
        host_ifs.push(bridge);
        networks.push(Network {
            name: format!("net{k}"),
            bridge: format!("nsbr-net{k}"),
            subnets: vec![format!("10.{k}.0.0/16").parse().unwrap()],
            gateways: vec![format!("10.{k}.0.1").parse().unwrap()],
            internal: false,
            masquerade: true,
            isolate: false,
            cluster: None,
            endpoints: Vec::new(),
        });
    }
    let mut ports = Vec::new();
    for p in 0..count {
        let k = p % nets.max(1);
        let name = format!("pod-{p}");
        let host_if = format!("nsv{p}");
        let addr = format!("10.{k}.{}.{}/16", p / 200, 2 + p % 200);
        let mut port = veth(100 + p as u32, &host_if, &name, "eth0", &[]);
        port.master = Some(format!("nsbr-net{k}"));
        host_ifs.push(port);
        namespaces.push(ns(
            &name,
            NsKind::Pod {
                pid: 1000 + p as u32,
                running: true,
                members: 1,
            },
            10 + p as u64,
            vec![veth(2, "eth0", "host", &host_if, &[&addr])],
        ));
        if let Some(net) = networks.get_mut(k) {
            net.endpoints.push(Attachment {
                id: format!("net{k}/{name}"),
                namespace: name.clone(),
                interface: "eth0".into(),
                host_interface: host_if,
                addresses: vec![addr.parse().unwrap()],
            });
        }
        if p % 10 == 0 {
            ports.push(Port {
                spec: format!("*:{}->80/tcp", 8000 + p),
                network: format!("net{k}"),
                namespace: name,
                interface: "eth0".into(),
                to: Vec::new(),
                container_port: 80,
            });
        }
    }
    namespaces.insert(0, ns("host", NsKind::Host, 1, host_ifs));
    Topology {
        namespaces,
        networks,
        ports,
    }
}

/// Two pods on one clustered network with a VXLAN device on its bridge.
pub(crate) fn clustered() -> Topology {
    use crate::store::cluster::{Backend, ClusterSpec, Peer as Node};
    let mut t = many(2, 1);
    let mut vx = iface(90, "nsvx-net0", "vxlan", &[]);
    vx.master = Some("nsbr-net0".into());
    t.namespaces[0].interfaces.push(vx);
    t.networks[0].cluster = Some(ClusterSpec {
        network: "net0".into(),
        node_ip: "192.0.2.11".parse().unwrap(),
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        backend: Backend::Vxlan,
        vni: 1,
        port: 8472,
        mtu_before: None,
        peers: vec![Node {
            name: "node-b".into(),
            node_ip: "192.0.2.12".parse().unwrap(),
            pod_cidr: "10.244.2.0/24".parse().unwrap(),
        }],
    });
    t
}
