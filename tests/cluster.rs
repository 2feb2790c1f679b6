//! Clusters (issue 13): three node namespaces on an underlay bridge, each
//! running nsnet with its own state and config dirs, two pods per node (one
//! attached with the CLI, one through a CNI ADD shaped like containerd's), an
//! "outside" namespace on the underlay.

mod common;
use common::{Sandbox, NSNET};
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `nsnet` run on node `i` (its namespace, its own stores).
fn on(i: usize, args: &str) -> String {
    format!(
        "ip netns exec n{i} env NSNET_STATE_DIR=/run/st-n{i} NSNET_CONFIG_DIR=/run/cf-n{i} {NSNET} {args}"
    )
}

fn peers_json(nodes: &[usize]) -> String {
    let list: Vec<String> = nodes
        .iter()
        .map(|i| {
            format!(r#"{{"name":"n{i}","nodeIP":"192.168.50.{i}","podCIDR":"10.244.{i}.0/24"}}"#)
        })
        .collect();
    format!("[{}]", list.join(","))
}

/// Writes the peers file and feeds it to node `i`; returns nsnet's output.
fn feed(sb: &Sandbox, i: usize, json: &str) -> String {
    sb.sh_ok(&format!("cat > /run/peers-{i}.json <<'EOF'\n{json}\nEOF"));
    sb.sh_ok(&on(i, &format!("cluster peers pods /run/peers-{i}.json")))
}

/// The underlay, the nodes with their pod networks and pods, clustered.
fn three_nodes(backend: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.sh_ok(
        "ip link add ul type bridge && ip link set ul up && \
         ip netns add out && ip link add uo type veth peer name eth0 netns out && \
         ip link set uo master ul up && ip -n out addr add 192.168.50.100/24 dev eth0 && \
         ip -n out link set eth0 up && ip -n out link set lo up",
    );
    for i in 1..=3 {
        sb.sh_ok(&format!(
            "ip netns add n{i} && ip link add u{i} type veth peer name eth0 netns n{i} && \
             ip link set u{i} master ul up && ip -n n{i} addr add 192.168.50.{i}/24 dev eth0 && \
             ip -n n{i} link set eth0 up && ip -n n{i} link set lo up && \
             ip netns add p{i}a && ip netns add p{i}b"
        ));
        sb.sh_ok(&on(
            i,
            &format!("network create pods --subnet 10.244.{i}.0/24"),
        ));
        sb.sh_ok(&on(i, &format!("network connect pods p{i}a")));
        // The second pod through CNI, as containerd's CRI plugin calls it.
        let conf = format!(
            r#"{{"cniVersion":"1.0.0","name":"pods","type":"nsnet","stateDir":"/run/st-n{i}","configDir":"/run/cf-n{i}","ipam":{{"type":"nsnet","ranges":[[{{"subnet":"10.244.{i}.0/24"}}]]}}}}"#
        );
        sb.sh_ok(&format!(
            "echo '{conf}' | ip netns exec n{i} env CNI_COMMAND=ADD CNI_CONTAINERID=ctr{i}b \
             CNI_NETNS=/run/netns/p{i}b CNI_IFNAME=eth0 CNI_PATH=/run \
             CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p{i}b;K8S_POD_INFRA_CONTAINER_ID=ctr{i}b' \
             {NSNET} >/dev/null"
        ));
        sb.sh_ok(&on(
            i,
            &format!(
                "cluster init pods --node-ip 192.168.50.{i} --cluster-cidr 10.244.0.0/16 --backend {backend}"
            ),
        ));
    }
    for i in 1..=3 {
        feed(&sb, i, &peers_json(&[1, 2, 3]));
    }
    sb
}

fn pod_addr(pod: &str) -> String {
    // a: the first address of the node's subnet, b: the second.
    let i = &pod[1..2];
    let host = if pod.ends_with('a') { 2 } else { 3 };
    format!("10.244.{i}.{host}")
}

fn assert_full_mesh(sb: &Sandbox) {
    let pods = ["p1a", "p1b", "p2a", "p2b", "p3a", "p3b"];
    for from in pods {
        for to in pods {
            assert!(
                sb.pings(from, &pod_addr(to)),
                "{from} cannot reach {to} ({})",
                pod_addr(to)
            );
        }
    }
}

/// Everything cluster-made on node `i`: routes of proto 110, VXLAN devices,
/// permanent neighbours, `cluster4` elements.
fn cluster_objects(sb: &Sandbox, i: usize) -> String {
    sb.sh_ok(&format!(
        "ip -n n{i} route show proto 110; ip -n n{i} -d link show type vxlan; \
         ip -n n{i} neigh show nud permanent; \
         ip netns exec n{i} nft list set inet nsnet cluster4 2>/dev/null | grep -A3 elements || true"
    ))
}

fn cluster_works(backend: &str) {
    let sb = three_nodes(backend);
    assert_full_mesh(&sb);
    // A server on node 3 sees the client pod's own address (no NAT).
    let _srv = sb.tcp_echo_peer("p3a", "10.244.3.2", 80);
    assert_eq!(
        sb.tcp_ask("p1a", "10.244.3.2", 80).as_deref(),
        Some("10.244.1.2")
    );
    assert_eq!(
        sb.tcp_ask("p2b", "10.244.3.2", 80).as_deref(),
        Some("10.244.2.3")
    );
    // The outside sees pods masqueraded to their node.
    let _out = sb.tcp_echo_peer("out", "192.168.50.100", 81);
    assert_eq!(
        sb.tcp_ask("p1a", "192.168.50.100", 81).as_deref(),
        Some("192.168.50.1")
    );
    assert_eq!(
        sb.tcp_ask("p3b", "192.168.50.100", 81).as_deref(),
        Some("192.168.50.3")
    );
    // Each node reaches remote pods.
    for i in 1..=3 {
        for pod in ["p1a", "p2b", "p3a"] {
            assert!(sb.pings(&format!("n{i}"), &pod_addr(pod)), "n{i} -> {pod}");
        }
    }
    for i in 1..=3 {
        sb.sh_ok(&on(i, "check"));
    }
}

#[test]
fn pods_on_three_nodes_reach_each_other_over_host_gw() {
    cluster_works("host-gw");
}

#[test]
fn pods_on_three_nodes_reach_each_other_over_vxlan() {
    cluster_works("vxlan");
    let sb = three_nodes("vxlan");
    let show: serde_json::Value =
        serde_json::from_str(&sb.sh_ok(&on(1, "cluster show pods"))).unwrap();
    let dev = show["vxlan_device"].as_str().unwrap().to_owned();
    let link = sb.json(&format!("ip -n n1 -d -j link show {dev}"));
    let info = &link[0]["linkinfo"]["info_data"];
    assert_eq!(info["id"], 1, "{link}");
    assert_eq!(info["port"], 8472, "{link}");
    assert_eq!(info["learning"], false, "{link}");
    assert_eq!(info["local"], "192.168.50.1", "{link}");
    assert_eq!(link[0]["mtu"], 1450, "{link}");
    // The network's bridge takes the VXLAN MTU; so do new endpoints.
    let br = sb.json("ip -n n1 -j link show nsbr-pods");
    assert_eq!(br[0]["mtu"], 1450);
    sb.sh_ok("ip netns add p1c");
    sb.sh_ok(&on(1, "network connect pods p1c"));
    assert_eq!(sb.json("ip -n p1c -j link show eth0")[0]["mtu"], 1450);
    let fdb = sb.sh_ok(&format!("ip netns exec n1 bridge fdb show dev {dev}"));
    assert!(
        fdb.contains("02:4e:c0:a8:32:02 dst 192.168.50.2 self permanent"),
        "{fdb}"
    );
    assert!(
        fdb.contains("02:4e:c0:a8:32:03 dst 192.168.50.3 self permanent"),
        "{fdb}"
    );
    assert!(sb.pings("p1c", "10.244.2.2"));
}

#[test]
fn peer_changes_apply_only_the_difference_and_the_same_file_twice_changes_nothing() {
    for backend in ["host-gw", "vxlan"] {
        let sb = three_nodes(backend);
        let before = cluster_objects(&sb, 1);
        // The same file again: no change, and no netlink write at all.
        let _mon = sb.spawn("exec ip -n n1 monitor route neigh link > /run/monitor-n1");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(feed(&sb, 1, &peers_json(&[1, 2, 3])).trim(), "no change");
        std::thread::sleep(Duration::from_millis(300));
        // (The kernel's own IPv6 link-local routes may appear meanwhile, as
        // the new devices finish DAD: not nsnet's writes.)
        assert_eq!(
            sb.sh_ok("grep -v -e 'fe80::' -e 'ff0[0-9a-f]::' /run/monitor-n1 || true"),
            "",
            "{backend}: the same file wrote"
        );
        assert_eq!(cluster_objects(&sb, 1), before);
        // A node joins (4: not a real host; host-gw needs it on the subnet).
        let out = feed(&sb, 1, &peers_json(&[1, 2, 3, 4]));
        assert!(
            out.contains("added route 10.244.4.0/24"),
            "{backend}: {out}"
        );
        assert!(!out.contains("removed"), "{backend}: {out}");
        assert!(
            !out.contains("10.244.2.0") && !out.contains("10.244.3.0"),
            "{out}"
        );
        // The monitor sees nsnet's writes (so its silence above means something).
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            sb.sh_ok("cat /run/monitor-n1").contains("10.244.4.0/24"),
            "{backend}: the monitor missed the join"
        );
        // Node 3 leaves: its route (and VXLAN entries) go, the others stay.
        let out = feed(&sb, 1, &peers_json(&[1, 2, 4]));
        assert!(
            out.contains("removed route 10.244.3.0/24"),
            "{backend}: {out}"
        );
        assert!(!out.contains("added"), "{backend}: {out}");
        let objects = cluster_objects(&sb, 1);
        assert!(!objects.contains("10.244.3.0"), "{backend}: {objects}");
        assert!(
            !objects.contains("02:4e:c0:a8:32:03"),
            "{backend}: {objects}"
        );
        assert!(objects.contains("10.244.2.0/24"), "{backend}: {objects}");
        assert!(sb.pings("p1a", "10.244.2.2"));
        assert!(sb.ping_fails("p1a", "10.244.3.2"));
        // A `kubectl get nodes -o json` NodeList: node 1 itself is skipped, a
        // node without a pod CIDR yet too, a dual-stack node gives its IPv4 one.
        let out = sb.sh_ok(&on(1, &format!("cluster peers pods {FIXTURES}/nodes.json")));
        assert!(
            out.contains("added route 10.244.3.0/24"),
            "{backend}: {out}"
        );
        assert!(
            out.contains("removed route 10.244.4.0/24"),
            "{backend}: {out}"
        );
        assert_full_mesh(&sb);
        sb.sh_ok(&on(1, "check"));
        let show: serde_json::Value =
            serde_json::from_str(&sb.sh_ok(&on(1, "cluster show pods"))).unwrap();
        let names: Vec<&str> = show["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["n2", "n3"]);
    }
}

#[test]
fn bad_cluster_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let sb = three_nodes("host-gw");
    let snapshot = || {
        sb.sh_ok(
            "ip -n n1 route; ip -n n1 link; ip netns exec n1 nft list ruleset; \
             ip netns exec n1 env NSNET_STATE_DIR=/run/st-n1 NSNET_CONFIG_DIR=/run/cf-n1 true",
        ) + &sb.sh_ok(&on(1, "cluster show pods"))
    };
    let before = snapshot();
    let peers = |json: &str, expected: &str| {
        sb.sh_ok(&format!("cat > /run/bad.json <<'EOF'\n{json}\nEOF"));
        let out = sb.sh(&on(1, "cluster peers pods /run/bad.json"));
        assert!(!out.status.success(), "accepted {json}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
    };
    peers("[{\"name\": ", "is not valid JSON");
    peers("{\"kind\": \"Pod\"}", "expected a list");
    peers(
        r#"[{"name":"n2","nodeIP":"192.168.50.2","podCIDR":"10.244.2.0/24"},{"name":"n3","nodeIP":"192.168.50.3","podCIDR":"10.244.2.128/25"}]"#,
        "pod CIDRs 10.244.2.0/24 and 10.244.2.128/25 overlap",
    );
    peers(
        r#"[{"name":"n2","nodeIP":"192.168.50.2","podCIDR":"10.245.2.0/24"}]"#,
        "pod CIDR 10.245.2.0/24 is outside the cluster CIDR 10.244.0.0/16",
    );
    peers(
        r#"[{"name":"n2","nodeIP":"192.168.50.2","podCIDR":"10.244.2.0/24"},{"name":"n3","nodeIP":"192.168.50.2","podCIDR":"10.244.3.0/24"}]"#,
        "both have node IP 192.168.50.2",
    );
    peers(
        r#"[{"name":"far","nodeIP":"10.99.0.5","podCIDR":"10.244.9.0/24"}]"#,
        "not on a directly connected subnet, so host-gw cannot route to it; use --backend vxlan",
    );
    peers(
        r#"[{"name":"n2","nodeIP":"192.168.50.2","podCIDR":"10.244.1.128/25"}]"#,
        "overlaps this node's 10.244.1.0/24",
    );
    peers(
        r#"[{"name":"n2","nodeIP":"fe80::1","podCIDR":"10.244.2.0/24"}]"#,
        "nodeIP is not an IPv4 address",
    );
    let init = |args: &str, expected: &str| {
        let out = sb.sh(&on(1, &format!("cluster init pods {args}")));
        assert!(!out.status.success(), "accepted {args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
    };
    init(
        "--node-ip 192.168.50.1 --cluster-cidr 10.250.0.0/16",
        "its subnet 10.244.1.0/24 is not inside the cluster CIDR 10.250.0.0/16",
    );
    init(
        "--node-ip 192.168.77.1 --cluster-cidr 10.244.0.0/16",
        "--node-ip 192.168.77.1 is not an address of this host",
    );
    init(
        "--node-ip 192.168.50.1 --cluster-cidr 10.244.0.0/16 --backend vxlan --vni 0",
        "a VXLAN network identifier is 1 to 16777215",
    );
    assert_eq!(snapshot(), before);
    assert_full_mesh(&sb);
}

#[test]
fn cluster_leave_and_network_rm_leave_no_device_route_entry_or_element() {
    let sb = three_nodes("vxlan");
    assert!(!cluster_objects(&sb, 1).trim().is_empty());
    sb.sh_ok(&on(1, "cluster leave pods"));
    assert_eq!(cluster_objects(&sb, 1).trim(), "");
    // The MTU comes back, the network stays and works locally.
    assert_eq!(sb.json("ip -n n1 -j link show nsbr-pods")[0]["mtu"], 1500);
    assert!(sb.pings("p1a", "10.244.1.3"));
    assert!(sb.ping_fails("p1a", "10.244.2.2"));
    assert!(!sb.sh(&on(1, "cluster show pods")).status.success());
    sb.sh_ok(&on(1, "check"));
    // Node 2 leaves by removing its network.
    sb.sh_ok(&on(2, "network rm pods --force"));
    assert_eq!(cluster_objects(&sb, 2).trim(), "");
    assert_eq!(
        sb.sh_ok("ip -n n2 -br link | grep -v -e '^lo' -e '^eth0' || true"),
        ""
    );
    sb.sh_ok(&on(2, "network create pods --subnet 10.244.2.0/24"));
    assert!(!sb.sh(&on(2, "cluster show pods")).status.success());
}

#[test]
fn the_kernel_side_is_made_again_after_a_reboot_and_reload_repairs_it() {
    let sb = three_nodes("vxlan");
    // What a reboot loses: the bridge, the VXLAN device, the routes (and the
    // state dir, on /run; the config dir keeps the definitions).
    sb.sh_ok(
        "ip -n n1 link del nsbr-pods; ip -n n1 link del $(ip -n n1 -br link show type vxlan | cut -d' ' -f1); \
         ip -n n1 route flush proto 110; ip netns exec n1 nft delete table inet nsnet; \
         ip netns exec n1 nft delete table bridge nsnet; rm -rf /run/st-n1; ip netns del p1a; ip netns del p1b",
    );
    let check = sb.sh(&on(1, "check"));
    assert!(!check.status.success());
    // The first connect brings the network up, with its cluster.
    sb.sh_ok("ip netns add p1a");
    sb.sh_ok(&on(1, "network connect pods p1a"));
    assert!(sb.pings("p1a", "10.244.2.2"));
    assert!(sb.pings("p3a", "10.244.1.2"));
    sb.sh_ok(&on(1, "check"));
    // doctor follows a pod's packet through the VXLAN device to the peer node
    // and its pod, unmasqueraded, and names a missing neighbour entry.
    let doctor = |expect_ok: bool| {
        let out = sb.sh(&on(1, "doctor p1a 10.244.3.2"));
        assert_eq!(out.status.success(), expect_ok, "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let clear = doctor(true);
    assert!(
        clear.contains("encapsulates it (VNI 1, UDP 8472) to peer n3 at 192.168.50.3"),
        "{clear}"
    );
    assert!(clear.contains("p3a: arrives"), "{clear}");
    assert!(!clear.contains("masqueraded"), "{clear}");
    let dev = sb.sh_ok("ip -n n1 -br link show type vxlan | cut -d' ' -f1");
    sb.sh_ok(&format!("ip -n n1 neigh del 10.244.3.0 dev {}", dev.trim()));
    assert!(sb.ping_fails("p1a", "10.244.3.2"));
    let blocked = doctor(false);
    assert!(
        blocked.contains("lacks the neighbour entry of peer n3"),
        "{blocked}"
    );
    assert!(blocked.contains("fix: nsnet firewall reload"), "{blocked}");
    sb.sh_ok(&on(1, "firewall reload"));
    assert!(sb.pings("p1a", "10.244.3.2"));
    // A route deleted by hand: check names it, reload puts it back.
    sb.sh_ok("ip -n n1 route del 10.244.3.0/24");
    let out = sb.sh(&on(1, "check"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("route 10.244.3.0/24 via 10.244.3.0 is missing"),
        "{out:?}"
    );
    let out = sb.sh_ok(&on(1, "firewall reload"));
    assert!(out.contains("added route 10.244.3.0/24"), "{out}");
    assert!(sb.pings("p1a", "10.244.3.2"));
    sb.sh_ok(&on(1, "check"));
    // gc puts the kernel side back too.
    sb.sh_ok("ip -n n1 route del 10.244.2.0/24");
    let out = sb.sh_ok(&on(1, "gc"));
    assert!(out.contains("route 10.244.2.0/24"), "{out}");
    assert!(sb.pings("p1a", "10.244.2.2"));
    sb.sh_ok(&on(1, "check"));
}

#[test]
fn a_backend_swap_keeps_an_established_tcp_flow() {
    let sb = three_nodes("host-gw");
    // An echo server on node 3, a client on node 1 sending a line every 50 ms
    // for 8 s on one connection, failing on any lost or late echo.
    let _srv = sb.spawn("exec ip netns exec p3a socat TCP-LISTEN:90,reuseaddr EXEC:cat");
    sb.wait_for("the echo server", || {
        sb.sh("ip netns exec p3a ss -Htln 'sport = :90' | grep -q LISTEN")
            .status
            .success()
    });
    let client = sb.spawn(
        "exec ip netns exec p1a python3 -c '
import socket, sys, time
s = socket.create_connection((\"10.244.3.2\", 90), timeout=5)
f = s.makefile(\"rw\")
for i in range(160):
    f.write(f\"{i}\\n\"); f.flush()
    if f.readline().strip() != str(i): sys.exit(3)
    time.sleep(0.05)
open(\"/run/flow-ok\", \"w\").write(\"ok\")
' ",
    );
    std::thread::sleep(Duration::from_secs(2));
    for i in 1..=3 {
        sb.sh_ok(&on(
            i,
            &format!(
                "cluster init pods --node-ip 192.168.50.{i} --cluster-cidr 10.244.0.0/16 --backend vxlan"
            ),
        ));
    }
    assert!(sb.sh_ok("ip -n n1 route show proto 110").contains("onlink"));
    // The flow runs 8 s in all; give it 20.
    let start = std::time::Instant::now();
    while !sb.sh("test -f /run/flow-ok").status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the TCP flow did not survive the swap"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(client);
    assert_full_mesh(&sb);
    // And back.
    for i in 1..=3 {
        sb.sh_ok(&on(
            i,
            &format!(
                "cluster init pods --node-ip 192.168.50.{i} --cluster-cidr 10.244.0.0/16 --backend host-gw"
            ),
        ));
    }
    assert_eq!(sb.sh_ok("ip -n n1 -br link show type vxlan"), "");
    assert_full_mesh(&sb);
}
