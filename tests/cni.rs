//! The CNI plugin face, driven exactly as a runtime drives it: the `nsnet`
//! binary with `CNI_*` in its environment and the network configuration on
//! stdin, inside a sandbox; kernel state read back with `ip -j` and `nft -j`,
//! connectivity proven with real packets.

mod common;
use common::Sandbox;
use serde_json::{json, Value};
use std::process::Output;

/// The sandbox host is 203.0.113.1 towards namespace `outside` (203.0.113.2).
fn with_outside() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok(&["netns", "add", "outside"]);
    let (host, peer) = ("203.0.113.1/24", "203.0.113.2/24");
    sb.ok(&[
        "link",
        "add",
        "host",
        "outside",
        "--addr",
        host,
        "--peer-addr",
        peer,
    ]);
    sb
}

/// An environment variable for `invoke`.
type Var<'a> = (&'a str, &'a str);

/// An `invoke` environment value that removes the variable.
const UNSET: &str = "<unset>";

/// Runs the plugin with `env` (later entries win) and `stdin`, as a runtime does.
fn invoke(sb: &Sandbox, env: &[(&str, &str)], stdin: &str) -> Output {
    // Stand-in IPAM plugins live beside this file.
    let path = concat!(
        "/run/cni-bin:",
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cni_runtimes"
    );
    let mut all: Vec<(&str, Option<&str>)> = vec![("CNI_PATH", Some(path))];
    all.extend(
        env.iter()
            .map(|&(k, v)| (k, if v == UNSET { None } else { Some(v) })),
    );
    sb.cni(&all, stdin)
}

/// One CNI call for container `cid` (namespace `/run/netns/NS`, or the path given).
fn cni(sb: &Sandbox, command: &str, cid: &str, netns: &str, conf: &Value) -> Output {
    let path = if netns.is_empty() || netns.starts_with('/') {
        netns.to_owned()
    } else {
        format!("/run/netns/{netns}")
    };
    let env = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", cid),
        ("CNI_NETNS", path.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    invoke(sb, &env, &conf.to_string())
}

/// Stdout as the one JSON value it must be (`Null` when empty).
fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {text:?}"))
}

/// Asserts success; returns the result (`Null` for verbs that print nothing).
fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {} / {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(out)
}

/// Asserts the spec's error object with `code`; returns its message.
fn fails(out: &Output, code: u64) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stdout_json(out);
    assert_eq!(err["code"], code, "{err}");
    assert!(err["cniVersion"].is_string(), "{err}");
    err["msg"].as_str().expect("msg").to_owned()
}

/// A single-plugin config of network `name` on `subnet`.
fn conf(version: &str, name: &str, subnet: &str) -> Value {
    json!({
        "cniVersion": version, "name": name, "type": "nsnet", "ipMasq": true, "isGateway": true,
        "ipam": {"type": "nsnet", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]},
        "dns": {"nameservers": ["192.0.2.53"], "search": ["svc.test"]},
    })
}

/// The plugin config a runtime derives from a conflist (libcni's way): the
/// plugin's keys, the list's name and the version it settled on.
fn from_conflist(list: &Value, version: &str) -> Value {
    let mut p = list["plugins"][0].clone();
    p["name"] = list["name"].clone();
    p["cniVersion"] = version.into();
    p
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn ports(list: Value) -> Value {
    json!({ "portMappings": list })
}

fn leases(sb: &Sandbox, net: &str) -> Vec<String> {
    let v: Value =
        serde_json::from_str(&sb.ok(&["network", "inspect", net])).expect("inspect JSON");
    v["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["address"].as_str().unwrap().to_owned())
        .collect()
}

/// Host-side veths nsnet made (`nsv…`).
fn veths(sb: &Sandbox) -> Vec<String> {
    sb.links("host")
        .into_iter()
        .filter(|l| l.starts_with("nsv"))
        .collect()
}

/// No host veth, lease, port or membership element is left of any attachment.
fn assert_nothing_left(sb: &Sandbox, net: &str) {
    let left = (veths(sb), leases(sb, net), endpoint_elements(sb));
    assert_eq!(
        left,
        (vec![], vec![], vec![]),
        "veths, leases, elements left"
    );
}

/// Elements of nsnet's port maps and membership sets.
fn endpoint_elements(sb: &Sandbox) -> Vec<(String, String)> {
    sb.nft_elements()
        .into_iter()
        .filter(|(s, _)| s.starts_with("ports") || s.starts_with("members"))
        .collect()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], |a| a.as_slice())
}

/// The result's IPv4 (or IPv6) address, without its prefix length.
fn addr(result: &Value, v6: bool) -> String {
    let ips = list(&result["ips"]).iter().map(|i| text(&i["address"]));
    let ip = ips
        .into_iter()
        .find(|a| a.contains(':') == v6)
        .expect("an address");
    ip.split('/').next().unwrap_or_default().to_owned()
}

fn is_mac(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 17
        && s.split(':')
            .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok())
        && s == s.to_lowercase()
}

/// Checks a result against its version's format and against the kernel.
fn assert_result(sb: &Sandbox, r: &Value, version: &str, ns: &str) {
    assert_eq!(r["cniVersion"], version, "{r}");
    let known = ["cniVersion", "interfaces", "ips", "routes", "dns"];
    assert!(
        r.as_object()
            .unwrap()
            .keys()
            .all(|k| known.contains(&k.as_str())),
        "{r}"
    );
    let ifs = list(&r["interfaces"]);
    assert_eq!(ifs.len(), 3, "{r}");
    for (i, iface) in ifs.iter().enumerate() {
        assert!(is_mac(&iface["mac"]), "{iface}");
        assert_eq!(iface["sandbox"].is_string(), i == 2, "{iface}");
        assert_eq!(iface["mtu"].is_number(), version == "1.1.0", "{iface}");
    }
    assert_eq!(ifs[2]["name"], "eth0");
    assert_eq!(ifs[2]["sandbox"], format!("/run/netns/{ns}"));
    for ip in list(&r["ips"]) {
        assert_eq!(ip["interface"], 2, "{ip}");
        assert!(ip["gateway"].is_string(), "{ip}");
        let family = if text(&ip["address"]).contains(':') {
            "6"
        } else {
            "4"
        };
        match version {
            "0.3.0" | "0.3.1" | "0.4.0" => assert_eq!(ip["version"], family, "{ip}"),
            _ => assert!(ip.get("version").is_none(), "{ip}"),
        }
    }
    let dns = json!({"nameservers": ["192.0.2.53"], "search": ["svc.test"]});
    assert_eq!(r["dns"], dns);
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0"}]));
    // The kernel agrees: container MAC and address, host veth on the bridge.
    let link = sb.json(&format!("ip -n {ns} -j addr show eth0"));
    assert_eq!(link[0]["address"], ifs[2]["mac"]);
    let a = list(&link[0]["addr_info"])
        .iter()
        .find(|a| a["family"] == "inet");
    let a = a.expect("an IPv4 address");
    let cidr = format!("{}/{}", text(&a["local"]), a["prefixlen"]);
    assert_eq!(cidr, text(&r["ips"][0]["address"]));
    let veth = sb.json(&format!("ip -j link show {}", text(&ifs[1]["name"])));
    assert_eq!(veth[0]["master"], ifs[0]["name"]);
    assert_eq!(veth[0]["address"], ifs[1]["mac"]);
}

/// ADD (a single config and a conflist), connectivity, a published port,
/// CHECK, DEL, DEL again, in one spec version.
fn round_trip(version: &str) {
    let sb = with_outside();
    let _peer = sb.tcp_echo_peer("outside", "203.0.113.2", 7000);
    sb.sh_ok("ip netns add c1 && ip netns add c2");
    let single = with(
        conf(version, "net", "10.10.0.0/24"),
        "runtimeConfig",
        ports(json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])),
    );
    let list = json!({
        "cniVersion": if version == "1.1.0" { "1.0.0" } else { version },
        "cniVersions": [version], "name": "net",
        "plugins": [conf(version, "ignored", "10.10.0.0/24")],
    });
    let listed = from_conflist(&list, version);
    let r1 = ok(&cni(&sb, "ADD", "c1", "c1", &single));
    let r2 = ok(&cni(&sb, "ADD", "c2", "c2", &listed));
    assert_result(&sb, &r1, version, "c1");
    assert_result(&sb, &r2, version, "c2");
    let (ip1, ip2) = (addr(&r1, false), addr(&r2, false));
    assert_ne!(ip1, ip2);

    assert!(sb.pings("c1", "10.10.0.1"), "c1 -> gateway");
    assert!(sb.pings("c1", &ip2), "c1 -> c2");
    assert!(sb.pings("c2", &ip1), "c2 -> c1");
    let ask = |ns, addr, port| sb.tcp_ask(ns, addr, port).unwrap_or_default();
    assert_eq!(
        ask("c1", "203.0.113.2", 7000),
        "203.0.113.1",
        "c1 -> outside, masqueraded"
    );
    let _srv = sb.tcp_server("c1", 80, "c1");
    assert_eq!(
        ask("outside", "203.0.113.1", 8080),
        "c1",
        "published port from outside"
    );
    assert_eq!(
        ask("host", "127.0.0.1", 8080),
        "c1",
        "published port at 127.0.0.1"
    );

    let check = with(single.clone(), "prevResult", r1.clone());
    if version.starts_with("0.3") {
        fails(&cni(&sb, "CHECK", "c1", "c1", &check), 1);
    } else {
        assert_eq!(ok(&cni(&sb, "CHECK", "c1", "c1", &check)), Value::Null);
    }
    // podman's DEL: with the cached prevResult; then again, as runtimes may.
    assert_eq!(ok(&cni(&sb, "DEL", "c1", "c1", &check)), Value::Null);
    assert_eq!(sb.links("c1"), ["lo"]);
    assert_eq!(leases(&sb, "net"), std::slice::from_ref(&ip2));
    assert_eq!(sb.tcp_ask("outside", "203.0.113.1", 8080), None);
    ok(&cni(&sb, "DEL", "c1", "c1", &check));
    assert!(sb.pings("c2", "10.10.0.1"), "c2 unaffected");
    // containerd's DEL: no namespace, no prevResult.
    ok(&cni(&sb, "DEL", "c2", "", &listed));
    assert_nothing_left(&sb, "net");
}

macro_rules! round_trips {
    ($($name:ident => $version:literal),*) => {
        $(#[test] fn $name() { round_trip($version) })*
    };
}
round_trips!(round_trip_0_3_0 => "0.3.0", round_trip_0_3_1 => "0.3.1", round_trip_0_4_0 => "0.4.0",
             round_trip_1_0_0 => "1.0.0", round_trip_1_1_0 => "1.1.0");

#[test]
fn version_lists_every_supported_version() {
    let sb = Sandbox::new();
    let version = [("CNI_COMMAND", "VERSION")];
    let v = ok(&invoke(&sb, &version, r#"{"cniVersion":"0.4.0"}"#));
    let all = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
    assert_eq!(v, json!({"cniVersion": "0.4.0", "supportedVersions": all}));
    let v = ok(&invoke(&sb, &version, ""));
    assert_eq!(v["cniVersion"], "1.1.0");
}

#[test]
fn del_with_an_empty_netns_releases_lease_ports_and_veth() {
    let sb = with_outside();
    sb.sh_ok("ip netns add c1 && ip netns add c2");
    let c = with(
        conf("1.0.0", "net", "10.20.0.0/24"),
        "runtimeConfig",
        ports(
            json!([{"hostPort": 8081, "containerPort": 80}, {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]),
        ),
    );
    ok(&cni(&sb, "ADD", "c1", "c1", &c));
    assert_eq!(veths(&sb).len(), 1);
    assert_eq!(leases(&sb, "net").len(), 1);
    let port_elements = |sb: &Sandbox| {
        let elems = sb.nft_elements().into_iter();
        elems.filter(|(s, _)| s.starts_with("ports")).count()
    };
    assert_eq!(port_elements(&sb), 2);
    ok(&cni(&sb, "DEL", "c1", "", &c));
    assert_nothing_left(&sb, "net");
    assert_eq!(sb.ok(&["port", "ls", "--json"]).trim(), "[]");
    assert_eq!(sb.links("c1"), ["lo"]);
    // The port is free again; a namespace that died first is released as well.
    ok(&cni(&sb, "ADD", "c2", "c2", &c));
    sb.sh_ok("ip netns del c2");
    for _ in 0..3 {
        ok(&cni(&sb, "DEL", "c2", "", &c));
        ok(&cni(&sb, "DEL", "c2", "/run/netns/c2", &c));
    }
    assert_nothing_left(&sb, "net");
    // A network nsnet never saw has nothing to release.
    let unknown = conf("1.0.0", "unknown", "10.21.0.0/24");
    ok(&cni(&sb, "DEL", "c9", "", &unknown));
}

#[test]
fn containerd_style_calls_with_proc_netns_k8s_args_and_go_port_fields() {
    let sb = with_outside();
    // A pod's process in a namespace of its own, known by its PID only.
    let _pod = sb.spawn("unshare -n sleep 600 & echo $! > /run/pod.pid; wait");
    sb.wait_for("the pod's process", || {
        let own_netns = "test -s /run/pod.pid && \
            [ \"$(readlink /proc/$(cat /run/pod.pid)/ns/net)\" != \"$(readlink /proc/1/ns/net)\" ]";
        sb.sh(own_netns).status.success()
    });
    let pid = sb.sh_ok("cat /run/pod.pid").trim().to_owned();
    let netns = format!("/proc/{pid}/ns/net");
    let c = with(
        conf("1.0.0", "k8s", "10.40.0.0/24"),
        "runtimeConfig",
        ports(json!([
            {"HostPort": 8082, "ContainerPort": 80, "Protocol": "TCP", "HostIP": "127.0.0.1"},
        ])),
    );
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=7f3c";
    let call = |cmd: &str, ns: &str| {
        let env = [
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", "abc123"),
            ("CNI_NETNS", ns),
        ];
        let env = [&env[..], &[("CNI_IFNAME", "eth0"), ("CNI_ARGS", args)]].concat();
        invoke(&sb, &env, &c.to_string())
    };
    let r = ok(&call("ADD", &netns));
    assert_eq!(r["interfaces"][2]["sandbox"], netns);
    let ip = addr(&r, false);
    let _srv = sb.spawn(&format!(
        "exec nsenter -t {pid} -n socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo pod'"
    ));
    sb.wait_for("the pod's server", || sb.tcp_ask("host", &ip, 80).is_some());
    assert_eq!(
        sb.tcp_ask("host", "127.0.0.1", 8082).as_deref(),
        Some("pod")
    );
    let outside = sb.tcp_ask("outside", "203.0.113.1", 8082);
    assert_eq!(outside, None, "published on 127.0.0.1 only");
    // The pod stops: every process in its namespace ends, and the namespace with them.
    sb.sh_ok(&format!(
        "ns=$(readlink /proc/{pid}/ns/net); for p in /proc/[0-9]*; do \
         [ \"$(readlink $p/ns/net 2>/dev/null)\" = \"$ns\" ] && kill ${{p#/proc/}}; done; true"
    ));
    sb.wait_for("the pod's namespace to go", || veths(&sb).is_empty());
    for _ in 0..3 {
        ok(&call("DEL", ""));
    }
    assert_eq!(
        (leases(&sb, "k8s"), endpoint_elements(&sb)),
        (vec![], vec![])
    );
}

#[test]
fn gc_releases_exactly_the_attachments_not_listed() {
    let sb = Sandbox::new();
    let c = conf("1.1.0", "net", "10.50.0.0/24");
    for i in 1..=5 {
        let id = format!("c{i}");
        sb.sh_ok(&format!("ip netns add {id}"));
        let port = ports(json!([{"hostPort": 9000 + i, "containerPort": 80}]));
        ok(&cni(
            &sb,
            "ADD",
            &id,
            &id,
            &with(c.clone(), "runtimeConfig", port),
        ));
    }
    // An endpoint made with the CLI is not the runtime's to collect.
    sb.ok(&["netns", "add", "cli"]);
    sb.ok(&["network", "connect", "net", "cli"]);
    assert_eq!(leases(&sb, "net").len(), 6);
    let valid: Vec<Value> = ["c1", "c3", "c5"]
        .iter()
        .map(|id| json!({"containerID": id, "ifname": "eth0"}))
        .collect();
    let gc = [("CNI_COMMAND", "GC")];
    let listed = with(c.clone(), "cni.dev/valid-attachments", valid.into());
    ok(&invoke(&sb, &gc, &listed.to_string()));
    let kept = ["c1", "c3", "c5", "cli"];
    for ns in ["c1", "c2", "c3", "c4", "c5", "cli"] {
        let links = if kept.contains(&ns) { 2 } else { 1 };
        assert_eq!(sb.links(ns).len(), links, "{ns}");
    }
    assert_eq!((veths(&sb).len(), leases(&sb, "net").len()), (4, 4));
    let elems = sb.nft_elements().into_iter();
    let port_keys: Vec<String> = elems
        .filter(|(s, _)| s.starts_with("ports"))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(port_keys.len(), 3, "{port_keys:?}");
    for (port, kept) in [
        (9001, true),
        (9002, false),
        (9003, true),
        (9004, false),
        (9005, true),
    ] {
        let found = port_keys.iter().any(|e| e.contains(&port.to_string()));
        assert_eq!(found, kept, "{port}");
    }
    assert!(sb.pings("c3", "10.50.0.1"));
    // GC is a 1.1.0 verb, and needs the list.
    let old = conf("1.0.0", "net", "10.50.0.0/24");
    fails(&invoke(&sb, &gc, &old.to_string()), 1);
    fails(&invoke(&sb, &gc, &c.to_string()), 7);
}

#[test]
fn status_is_ok_until_the_range_is_exhausted() {
    let sb = Sandbox::new();
    sb.sh_ok("for n in c1 c2 r1 r2 r3; do ip netns add $n; done");
    let status = |c: &Value| invoke(&sb, &[("CNI_COMMAND", "STATUS")], &c.to_string());
    let tiny = conf("1.1.0", "tiny", "10.60.0.0/30");
    ok(&status(&tiny));
    ok(&cni(&sb, "ADD", "c1", "c1", &tiny));
    let msg = fails(&status(&tiny), 50);
    assert!(
        msg.contains("no free address left in 10.60.0.0/30"),
        "{msg}"
    );
    let before = (veths(&sb), leases(&sb, "tiny"));
    let msg = fails(&cni(&sb, "ADD", "c2", "c2", &tiny), 101);
    assert!(msg.contains("no free address"), "{msg}");
    assert_eq!((veths(&sb), leases(&sb, "tiny")), before);
    assert_eq!(sb.links("c2"), ["lo"]);
    ok(&cni(&sb, "DEL", "c1", "", &tiny));
    ok(&status(&tiny));

    // rangeStart/rangeEnd bound what is handed out.
    let mut ranged = conf("1.1.0", "ranged", "10.61.0.0/24");
    ranged["ipam"]["ranges"][0][0]["rangeStart"] = "10.61.0.10".into();
    ranged["ipam"]["ranges"][0][0]["rangeEnd"] = "10.61.0.11".into();
    let a = ok(&cni(&sb, "ADD", "r1", "r1", &ranged));
    let b = ok(&cni(&sb, "ADD", "r2", "r2", &ranged));
    assert_eq!(
        (addr(&a, false), addr(&b, false)),
        ("10.61.0.10".into(), "10.61.0.11".into())
    );
    fails(&status(&ranged), 50);
    fails(&cni(&sb, "ADD", "r3", "r3", &ranged), 101);
    // A subnet another network holds cannot be served either.
    let clash = conf("1.1.0", "clash", "10.61.0.0/16");
    assert!(fails(&status(&clash), 50).contains("overlaps network ranged"));
    fails(&status(&conf("1.0.0", "tiny", "10.60.0.0/30")), 1);
}

#[test]
fn bad_input_gets_the_right_code_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.sh_ok("ip netns add c1 && ip netns add c2 && touch /run/not-a-netns");
    let good = conf("1.0.0", "net", "10.70.0.0/24");
    ok(&cni(&sb, "ADD", "c1", "c1", &good));
    let snapshot = || {
        let net = sb.ok(&["network", "ls", "--json"]);
        (
            sb.links("host"),
            sb.links("c2"),
            leases(&sb, "net"),
            sb.nft_elements(),
            net,
        )
    };
    let before = snapshot();
    let add = |env: &[(&str, &str)], stdin: &str| {
        let mut all = vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c2")];
        all.extend([("CNI_NETNS", "/run/netns/c2"), ("CNI_IFNAME", "eth0")]);
        all.extend_from_slice(env);
        invoke(&sb, &all, stdin)
    };
    let set = |key: &str, value: Value| with(good.clone(), key, value).to_string();
    let without = |key: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(key);
        v.to_string()
    };
    let ipv6_loopback = ports(json!([{"hostPort": 1, "containerPort": 1, "hostIP": "::1"}]));
    let configs: Vec<(&str, String, u64)> = vec![
        ("malformed JSON", "{\"cniVersion\": ".into(), 6),
        ("not an object", "[1]".into(), 6),
        ("missing name", without("name"), 7),
        ("missing type", without("type"), 7),
        ("missing cniVersion", without("cniVersion"), 7),
        ("old cniVersion", set("cniVersion", "0.2.0".into()), 1),
        ("unknown cniVersion", set("cniVersion", "2.0.0".into()), 1),
        ("wrong type", set("mtu", "big".into()), 7),
        ("unsupported key", set("macspoofchk", true.into()), 2),
        (
            "other subnet",
            conf("1.0.0", "net", "10.71.0.0/24").to_string(),
            7,
        ),
        ("port on ::1", set("runtimeConfig", ipv6_loopback), 7),
    ];
    let envs: Vec<(&str, &[Var], u64)> = vec![
        ("bad ifname", &[("CNI_IFNAME", "eth0/1")], 4),
        ("long ifname", &[("CNI_IFNAME", "a-very-long-ifname")], 4),
        ("bad container id", &[("CNI_CONTAINERID", "-x")], 4),
        ("missing CNI_NETNS", &[("CNI_NETNS", UNSET)], 4),
        ("missing CNI_CONTAINERID", &[("CNI_CONTAINERID", UNSET)], 4),
        ("unknown command", &[("CNI_COMMAND", "PUT")], 4),
        ("nonexistent netns", &[("CNI_NETNS", "/run/netns/nope")], 3),
        ("not a netns", &[("CNI_NETNS", "/run/not-a-netns")], 4),
        (
            "ADD twice",
            &[("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/c1")],
            102,
        ),
    ];
    let outcomes = configs
        .iter()
        .map(|(what, stdin, code)| (*what, add(&[], stdin), *code))
        .chain(
            envs.iter()
                .map(|(what, env, code)| (*what, add(env, &good.to_string()), *code)),
        );
    for (what, out, code) in outcomes {
        assert!(!out.status.success(), "{what}: succeeded");
        let err = stdout_json(&out);
        assert_eq!(err["code"], code, "{what}: {err}");
        assert!(
            err["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {err}"
        );
    }
    assert_eq!(snapshot(), before);
}

#[test]
fn check_reports_every_drift() {
    let sb = Sandbox::new();
    sb.sh_ok("ip netns add c1");
    let c = with(
        conf("1.0.0", "net", "10.80.0.0/24"),
        "runtimeConfig",
        ports(json!([{"hostPort": 8083, "containerPort": 80}])),
    );
    let r = ok(&cni(&sb, "ADD", "c1", "c1", &c));
    let check = with(c.clone(), "prevResult", r.clone());
    ok(&cni(&sb, "CHECK", "c1", "c1", &check));
    fails(&cni(&sb, "CHECK", "c1", "c1", &c), 7);
    fails(&cni(&sb, "CHECK", "c1", "/run/netns/gone", &check), 3);
    // A published port the runtime no longer asks for, then real drift.
    fails(
        &cni(
            &sb,
            "CHECK",
            "c1",
            "c1",
            &with(check.clone(), "runtimeConfig", json!({})),
        ),
        103,
    );
    sb.sh_ok(
        "ip -n c1 addr flush dev eth0 && nft delete element inet nsnet ports4_any '{ tcp . 8083 }'",
    );
    let out = cni(&sb, "CHECK", "c1", "c1", &check);
    fails(&out, 103);
    let details = stdout_json(&out)["details"].as_str().unwrap().to_owned();
    for expected in [
        "address 10.80.0.2/24 is missing",
        "route 0.0.0.0/0",
        "ports4_any",
    ] {
        assert!(
            details.contains(expected),
            "{expected:?} not in {details:?}"
        );
    }
    sb.sh_ok(&format!(
        "ip link set {} nomaster",
        r["interfaces"][1]["name"].as_str().unwrap()
    ));
    let details = stdout_json(&cni(&sb, "CHECK", "c1", "c1", &check))["details"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(details.contains("is not a port of nsbr-net"), "{details}");
}

#[test]
fn routes_dual_stack_mac_and_ips_follow_the_config() {
    let sb = Sandbox::new();
    sb.sh_ok("ip netns add c1 && ip netns add c2");
    let c = json!({
        "cniVersion": "0.4.0", "name": "ds", "type": "nsnet", "isDefaultGateway": false,
        "ipam": {"ranges": [[{"subnet": "10.90.0.0/24"}], [{"subnet": "fd00:90::/64"}]],
                 "routes": [{"dst": "10.99.0.0/16"}, {"dst": "::/0"}]},
        "runtimeConfig": {"mac": "02:11:22:33:44:55", "ips": ["10.90.0.77/24"]},
    });
    let r = ok(&cni(&sb, "ADD", "c1", "c1", &c));
    assert_eq!(r["interfaces"][2]["mac"], "02:11:22:33:44:55");
    assert_eq!(addr(&r, false), "10.90.0.77");
    assert_eq!(r["ips"][1]["version"], "6");
    assert_eq!(
        r["routes"],
        json!([{"dst": "::/0"}, {"dst": "10.99.0.0/16"}])
    );
    let routes = |family: &str| sb.json(&format!("ip -n c1 -j {family} route"));
    let has = |routes: &Value, dst: &str, gw: &str| {
        list(routes)
            .iter()
            .any(|r| r["dst"] == dst && (gw.is_empty() || r["gateway"] == gw))
    };
    let (v4, v6) = (routes("-4"), routes("-6"));
    assert!(!has(&v4, "default", ""), "{v4}");
    assert!(has(&v4, "10.99.0.0/16", "10.90.0.1"), "{v4}");
    assert!(has(&v6, "default", "fd00:90::1"), "{v6}");
    assert!(sb.pings("c1", "fd00:90::1"));
    ok(&cni(
        &sb,
        "CHECK",
        "c1",
        "c1",
        &with(c.clone(), "prevResult", r),
    ));
    // Hairpin on every port when asked; a bridge of the config's name.
    let mut hp = conf("1.0.0", "hp", "10.91.0.0/24");
    hp["hairpinMode"] = true.into();
    hp["bridge"] = "br-hp".into();
    let r = ok(&cni(&sb, "ADD", "c2", "c2", &hp));
    assert_eq!(r["interfaces"][0]["name"], "br-hp");
    let port = sb.json(&format!(
        "ip -j -d link show {}",
        text(&r["interfaces"][1]["name"])
    ));
    assert_eq!(
        port[0]["linkinfo"]["info_slave_data"]["hairpin"], true,
        "{port}"
    );
}

#[test]
fn a_delegated_ipam_plugin_is_run_and_released() {
    let sb = Sandbox::new();
    sb.sh_ok("ip netns add c1 && ip netns add c2");
    let c = json!({"cniVersion": "1.0.0", "name": "dlg", "type": "nsnet", "ipam": {"type": "fakeipam"}});
    let r = ok(&cni(&sb, "ADD", "c1", "c1", &c));
    assert_eq!(addr(&r, false), "10.77.0.50");
    assert_eq!(r["dns"]["nameservers"], json!(["10.77.0.1"]));
    assert!(sb.pings("c1", "10.77.0.1"));
    let stdin: Value = serde_json::from_str(&sb.sh_ok("cat /run/fakeipam.stdin")).unwrap();
    assert_eq!(stdin, c, "the delegate gets the config as is");
    ok(&cni(&sb, "DEL", "c1", "", &c));
    assert_eq!(
        sb.sh_ok("cat /run/fakeipam.log"),
        "ADD c1 eth0\nDEL c1 eth0\n"
    );
    assert_eq!(leases(&sb, "dlg"), Vec::<String>::new());
    let failing = json!({"cniVersion": "1.0.0", "name": "dlg", "type": "nsnet", "ipam": {"type": "failipam"}});
    let out = cni(&sb, "ADD", "c2", "c2", &failing);
    assert!(fails(&out, 11).contains("pool busy"));
    assert_eq!(stdout_json(&out)["details"], "try later");
    assert_eq!(
        (sb.links("c2"), veths(&sb)),
        (vec!["lo".to_owned()], vec![])
    );
    let missing = json!({"cniVersion": "1.0.0", "name": "dlg", "type": "nsnet", "ipam": {"type": "nosuchipam"}});
    fails(&cni(&sb, "ADD", "c2", "c2", &missing), 7);
}

#[test]
fn parallel_adds_and_dels_stay_consistent() {
    let sb = Sandbox::new();
    let n = 12;
    sb.sh_ok(&format!("for i in $(seq 1 {n}); do ip netns add p$i; done"));
    let c = conf("1.0.0", "par", "10.100.0.0/24");
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=n)
            .map(|i| {
                let (sb, c) = (&sb, &c);
                s.spawn(move || ok(&cni(sb, "ADD", &format!("p{i}"), &format!("p{i}"), c)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an ADD thread"))
            .collect()
    });
    let mut ips: Vec<String> = results.iter().map(|r| addr(r, false)).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), n);
    assert_eq!(leases(&sb, "par").len(), n);
    assert!(sb.pings("p1", &addr(&results[n - 1], false)));
    std::thread::scope(|s| {
        for i in 1..=n {
            let (sb, c) = (&sb, &c);
            s.spawn(move || ok(&cni(sb, "DEL", &format!("p{i}"), "", c)));
        }
    });
    assert_eq!((veths(&sb), leases(&sb, "par")), (vec![], vec![]));
}

#[test]
fn the_config_can_name_nsnets_stores() {
    let sb = Sandbox::new();
    sb.sh_ok("ip netns add c1");
    let mut c = conf("1.0.0", "own", "10.110.0.0/24");
    c["stateDir"] = "/run/own-state".into();
    c["configDir"] = "/run/own-config".into();
    // No NSNET_* in the environment, as with podman's cleanup process.
    let run = |command: &str, netns: &str| {
        let env = [("NSNET_STATE_DIR", UNSET), ("NSNET_CONFIG_DIR", UNSET)];
        let call = [("CNI_COMMAND", command), ("CNI_CONTAINERID", "c1")];
        let att = [("CNI_NETNS", netns), ("CNI_IFNAME", "eth0")];
        invoke(&sb, &[&env[..], &call, &att].concat(), &c.to_string())
    };
    ok(&run("ADD", "/run/netns/c1"));
    let inspect = [
        "--state-dir",
        "/run/own-state",
        "--config-dir",
        "/run/own-config",
        "network",
        "inspect",
        "own",
    ];
    assert!(sb.ok(&inspect).contains("10.110.0.2"));
    assert!(!sb.nsnet(&["network", "inspect", "own"]).status.success());
    ok(&run("DEL", ""));
    assert!(!sb.ok(&inspect).contains("10.110.0.2"));
    assert_eq!(veths(&sb), Vec::<String>::new());
}
