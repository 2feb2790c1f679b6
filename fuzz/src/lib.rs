//! What the fuzz targets check, one function per target: each takes the raw
//! input, runs it through nsnet's parser exactly as the CLI or the CNI plugin
//! would, and panics when a property fails, not only when the parser does.
//!
//! The main crate's `tests/fuzz_corpus.rs` includes this file as a module and
//! runs every committed corpus file through it, so the corpus is a regression
//! suite under plain `cargo test`. Keep it free of anything but `nsnet`,
//! `serde_json` and `std`.

use nsnet::cni::config::{self, ConfigError, NetConf};
use nsnet::cni::env::{Attachment, CniArgs, ContainerId};
use nsnet::cni::result::CniResult;
use nsnet::cni::version::SUPPORTED;
use nsnet::names::{IfName, Mac, NetnsName, NetworkName, NsSide, Target};
use nsnet::ports::{HostAddr, PortSpec, Proto};
use std::ffi::OsString;
use std::fmt::Debug;
use std::str::FromStr;

/// `(CNI_ARGS, config)`: the bytes before the first NUL are `CNI_ARGS` (a NUL
/// cannot occur in JSON text, so a plain config is read whole).
fn split_args(data: &[u8]) -> (CniArgs, &[u8]) {
    match data.iter().position(|b| *b == 0) {
        None => (CniArgs::default(), data),
        Some(i) => {
            let args = std::str::from_utf8(&data[..i])
                .ok()
                .and_then(|s| s.parse::<CniArgs>().ok())
                .unwrap_or_default();
            (args, &data[i + 1..])
        }
    }
}

/// The CNI network configuration (with its `prevResult`) as the plugin reads
/// it from stdin: never panics, maps every error to one of the spec's codes,
/// and what it accepts is valid (ports, ranges, routes) and re-encodes.
pub fn cni_config(data: &[u8]) {
    let (args, json) = split_args(data);

    // VERSION answers from the config alone, before anything else is read.
    let lookup = |k: &str| (k == "CNI_COMMAND").then(|| OsString::from("VERSION"));
    let mut version = SUPPORTED[SUPPORTED.len() - 1];
    let answer = nsnet::cni::run(&lookup, &mut &json[..], &mut version);
    assert!(
        matches!(answer, Ok(Some(_))),
        "VERSION must always answer: {answer:?}"
    );

    // A delegated IPAM plugin's answer and a prevResult are read by one parser.
    if let Ok(obj) = config::parse_json(json) {
        let value = serde_json::Value::Object(obj);
        if let Ok(r) = CniResult::parse(&value) {
            result_round_trips(&r);
        }
        if let Some(Ok(r)) = value.get("prevResult").map(CniResult::parse) {
            result_round_trips(&r);
        }
    }

    match NetConf::parse(json, &args) {
        Ok(conf) => netconf_is_valid(&conf, json),
        Err(e) => {
            let code = nsnet::cni::Error::Config(e.clone()).code();
            assert!(
                matches!(code, 1 | 2 | 6 | 7),
                "config error {e:?} has code {code}"
            );
            assert!(!e.to_string().is_empty());
            if let ConfigError::Json(_) = e {
                assert!(serde_json::from_slice::<serde_json::Value>(json).is_err());
            }
        }
    }
}

fn netconf_is_valid(conf: &NetConf, json: &[u8]) {
    assert_eq!(conf.raw, json, "raw must be the config as received");
    assert_ne!(conf.mtu, Some(0));
    let _: NetworkName = reparse(&conf.name);
    if let Some(b) = &conf.bridge {
        let _: IfName = reparse(b);
    }
    let ranges = &conf.ipam.ranges;
    assert!(ranges.len() <= 2, "one subnet per family: {ranges:?}");
    if let [a, b] = ranges.as_slice() {
        assert_ne!(a.subnet.addr().is_ipv4(), b.subnet.addr().is_ipv4());
    }
    for r in ranges {
        assert_eq!(r.subnet, r.subnet.trunc(), "subnet is a network address");
        assert!(r.subnet.prefix_len() > 0);
        for ip in [r.start, r.end, r.gateway].into_iter().flatten() {
            assert!(r.subnet.contains(&ip), "{ip} outside {}", r.subnet);
        }
        if let (Some(s), Some(e)) = (r.start, r.end) {
            assert!(s <= e);
        }
    }
    if let Some(d) = &conf.ipam.delegate {
        assert!(!d.is_empty() && !d.contains('/') && d != "." && d != ".." && d != "nsnet");
    }
    for route in conf.ipam.routes.iter().flatten() {
        assert_eq!(route.dst, route.dst.trunc());
    }
    for spec in &conf.runtime.ports {
        port_spec_is_valid(spec);
        assert!(
            spec.host_start.is_some(),
            "a port mapping names its host port"
        );
        assert_eq!(spec.count, 1);
    }
    if let Some(m) = &conf.runtime.mac {
        let _: Mac = reparse(m);
    }
    if let Some(r) = &conf.prev_result {
        result_round_trips(r);
    }
    for v4 in [true, false] {
        let _ = conf.wants_default_route(conf.ipam.routes.as_deref(), v4);
    }
}

/// A result written in any version reads back as itself (interface MTUs
/// exist from 1.1.0 on only).
fn result_round_trips(r: &CniResult) {
    for v in SUPPORTED {
        let encoded = r.encode(v);
        let mut back = CniResult::parse(&encoded)
            .unwrap_or_else(|e| panic!("{v:?} encoding of {r:?} does not parse: {e}"));
        let mut want = r.clone();
        if !v.interfaces_have_mtu() {
            want.interfaces.iter_mut().for_each(|i| i.mtu = None);
            back.interfaces.iter_mut().for_each(|i| i.mtu = None);
        }
        assert_eq!(back, want, "{v:?} round trip");
        let text = encoded.to_string();
        let again: serde_json::Value = serde_json::from_str(&text).expect("encoded JSON re-reads");
        assert_eq!(again, encoded);
    }
}

/// A `-p` spec: what parses is valid, and writes back (`Display`) in a form
/// that parses to the same value.
pub fn port_spec(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match s.parse::<PortSpec>() {
        Ok(spec) => {
            // Docker's grammar: digits, addresses, brackets, separators, a protocol.
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":.[]-/".contains(c)),
                "{s:?} is outside the -p grammar but parsed as {spec:?}"
            );
            port_spec_is_valid(&spec);
            let written = spec.to_string();
            let back: PortSpec = written
                .parse()
                .unwrap_or_else(|e| panic!("{s:?} -> {spec:?} -> {written:?}: {e}"));
            assert_eq!(back, spec, "{s:?} -> {written:?}");
            assert_eq!(back.to_string(), written);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn port_spec_is_valid(spec: &PortSpec) {
    assert!(spec.count >= 1);
    assert!(spec.container_start >= 1);
    let last = |start: u16| u32::from(start) + u32::from(spec.count) - 1;
    assert!(last(spec.container_start) <= 65535, "{spec:?}");
    if let Some(h) = spec.host_start {
        assert!(h >= 1 && last(h) <= 65535, "{spec:?}");
    }
    match spec.host {
        HostAddr::Ip(ip) => {
            assert!(!ip.is_unspecified() && !ip.is_multicast(), "{spec:?}");
            assert!(!(ip.is_ipv6() && ip.is_loopback()), "{spec:?}");
        }
        HostAddr::Any | HostAddr::AnyV4 | HostAddr::AnyV6 => {}
    }
    assert!(spec.host.overlaps(&spec.host));
    assert!(spec.host.covers_v4() || spec.host.covers_v6());
    assert!(matches!(spec.proto, Proto::Tcp | Proto::Udp | Proto::Sctp));
}

/// Parses what `value` displays as and checks it is `value` again.
fn reparse<T>(value: &T) -> T
where
    T: FromStr + std::fmt::Display + PartialEq + Debug + Clone,
    T::Err: Debug,
{
    let text = value.to_string();
    let back: T = text
        .parse()
        .unwrap_or_else(|e| panic!("{value:?} displays as {text:?}, which fails: {e:?}"));
    assert_eq!(&back, value, "{text:?}");
    back
}

/// The CLI's target (`NAME | pid:N | PATH`) and every other name type: what
/// parses displays back to something that parses equal; plain names display
/// exactly as given, and break none of their own rules.
pub fn names(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let plain = |name: &str, max: usize| {
        assert!(!name.is_empty() && name.len() <= max, "{name:?}");
        assert!(name != "." && name != "..");
        assert!(!name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()));
    };
    if let Ok(t) = s.parse::<Target>() {
        reparse(&t);
        match &t {
            Target::Named(n) => assert_eq!(n.as_str(), s),
            Target::Pid(p) => {
                assert!(*p > 0);
                let digits = &s["pid:".len()..];
                assert!(
                    digits.bytes().all(|b| b.is_ascii_digit()),
                    "a PID is written in decimal digits: {s:?}"
                );
            }
            Target::Path(p) => {
                assert!(s.contains('/') && !s.starts_with("pid:"));
                assert_eq!(p.to_str(), Some(s));
            }
        }
    }
    if let Ok(n) = s.parse::<NetnsName>() {
        assert_eq!(reparse(&n).as_str(), s);
        plain(s, nsnet::names::NETNS_NAME_MAX);
        assert_ne!(s, "host");
        assert_eq!(s.parse::<Target>(), Ok(Target::Named(n)));
    }
    if let Ok(n) = s.parse::<IfName>() {
        assert_eq!(reparse(&n).as_str(), s);
        plain(s, nsnet::names::IFNAME_MAX);
    }
    if let Ok(side) = s.parse::<NsSide>() {
        reparse(&side);
        assert_eq!(side.to_string(), s);
    }
    if let Ok(n) = s.parse::<NetworkName>() {
        assert_eq!(reparse(&n).as_str(), s);
        plain(s, nsnet::names::NETWORK_NAME_MAX);
        assert!(s.starts_with(|c: char| c.is_ascii_alphanumeric()));
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }
    if let Ok(m) = s.parse::<Mac>() {
        reparse(&m);
        assert_eq!(m.to_string(), s.to_ascii_lowercase(), "six hex pairs");
        assert_eq!(m.0[0] & 1, 0);
        assert_ne!(m.0, [0; 6]);
    }
    if let Ok(c) = s.parse::<ContainerId>() {
        assert_eq!(c.to_string(), s);
        assert!(!s.contains(':'));
    }
    if let Some(a) = Attachment::from_endpoint_id(s) {
        assert_eq!(a.endpoint_id(), s);
    }
    if let Ok(args) = s.parse::<CniArgs>() {
        let written: Vec<String> = args.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(written.join(";").parse::<CniArgs>(), Ok(args));
    }
}
