//! The network configuration a runtime streams on stdin, parsed into validated
//! types before anything is touched.
//!
//! nsnet reads the reference `bridge` plugin's keys and host-local's `ipam`
//! schema, so a bridge + host-local + portmap conflist works by changing both
//! types to `nsnet` and dropping portmap. Where a key is absent nsnet's own
//! defaults apply (a gateway on the bridge, masquerade, a default route);
//! where it is given it is honoured or, if nsnet cannot honour it, refused
//! (code 2) rather than silently ignored:
//!
//! | key | meaning in nsnet |
//! |---|---|
//! | `bridge` | the network's bridge (default `nsbr-NAME`) |
//! | `isGateway: false` | an internal network: no gateway role, no way out |
//! | `isDefaultGateway` | a default route via the gateway (`false`: only `ipam.routes`) |
//! | `ipMasq: false` | no masquerade: endpoints are routed with their own addresses |
//! | `hairpinMode: true` | hairpin on every port (nsnet sets it anyway where ports are published) |
//! | `portIsolation` | endpoints cannot reach each other (bridge port isolation) |
//! | `mtu` | the bridge's and veths' MTU |
//! | `promiscMode`, `enabledad`, `forceAddress` | accepted, not needed by nsnet's design |
//! | `macspoofchk: true`, `vlan`, `vlanTrunk`, `disableContainerInterface: true` | refused |
//!
//! nsnet's own keys: `stateDir` and `configDir` (its stores, otherwise
//! `NSNET_STATE_DIR`/`NSNET_CONFIG_DIR` or `/run/nsnet` and `/var/lib/nsnet`),
//! `logFile` and `logLevel`.
//!
//! A whole conflist given on stdin (as a person might pipe a file) is read as
//! the runtime would: its `nsnet` plugin, with the list's name and version.

use super::env::CniArgs;
use super::result::{CniResult, Dns};
use super::version::{Version, VersionError};
use crate::ipam;
use crate::names::{IfName, Mac, NetworkName};
use crate::ports::PortSpec;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the network configuration is not valid JSON: {0}")]
    Json(String),
    #[error("the network configuration is not a JSON object")]
    NotObject,
    #[error("the network configuration lacks {0:?}")]
    Missing(&'static str),
    #[error("{key}: {why}")]
    Field { key: String, why: String },
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("{key}: nsnet does not support {why}")]
    Unsupported { key: &'static str, why: String },
}

impl ConfigError {
    pub fn field(key: impl Into<String>, why: impl ToString) -> Self {
        ConfigError::Field {
            key: key.into(),
            why: why.to_string(),
        }
    }
}

/// One range of host-local's schema, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: Option<IpAddr>,
    pub end: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
}

/// A route to set up in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConf {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
}

/// The `ipam` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ipam {
    /// Another IPAM plugin to run (`host-local`, `static`, `dhcp`, …); `None`
    /// when nsnet allocates itself (`type` absent or `nsnet`).
    pub delegate: Option<String>,
    /// At most one range per family (nsnet networks have one subnet per family).
    pub ranges: Vec<Range>,
    /// `None` when the config lists no routes at all.
    pub routes: Option<Vec<RouteConf>>,
}

/// What the runtime passes through capabilities (`runtimeConfig`) and args.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeConfig {
    pub ports: Vec<PortSpec>,
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
}

/// Where the plugin logs, besides stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConf {
    pub file: Option<PathBuf>,
    pub level: Option<String>,
}

/// A validated network configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub version: Version,
    pub name: NetworkName,
    pub bridge: Option<IfName>,
    /// `isGateway` (absent: true).
    pub is_gateway: bool,
    pub default_gateway: Option<bool>,
    /// `ipMasq` (absent: true).
    pub ip_masq: bool,
    pub hairpin: bool,
    pub isolate: bool,
    pub mtu: Option<u32>,
    /// `allowLinkLocal` (absent: false): a network made from this config may
    /// take an IPv4 link-local subnet (169.254.0.0/16).
    pub allow_link_local: bool,
    /// `inbound` (absent: routed, as the reference bridge plugin forwards
    /// traffic routed to a container): what reaches the endpoints from outside.
    pub inbound: crate::store::Inbound,
    /// `foreignFirewall` (absent: true): nsnet adds rules to other firewalls
    /// that would drop the network's forwarded traffic.
    pub foreign_firewall: bool,
    pub ipam: Ipam,
    pub dns: Option<Dns>,
    pub runtime: RuntimeConfig,
    pub prev_result: Option<CniResult>,
    /// GC's `cni.dev/valid-attachments` as (container id, ifname) pairs.
    pub valid_attachments: Option<HashSet<(String, String)>>,
    pub log: LogConf,
    /// `stateDir` and `configDir`: nsnet's stores, when not the defaults. Given
    /// in the config because runtimes do not always pass their environment on
    /// (podman's cleanup process, which sends DEL, drops it).
    pub state_dir: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    /// The configuration as received, for a delegated plugin's stdin.
    pub raw: Vec<u8>,
}

/// A key's value, `None` when absent or null; a wrong type names the key.
fn get<T: DeserializeOwned>(obj: &Map<String, Value>, key: &str) -> Result<Option<T>, ConfigError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|e| ConfigError::field(key, e)),
    }
}

/// Parses the JSON text alone (code 6 when it fails).
pub fn parse_json(bytes: &[u8]) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError::NotObject),
        Err(e) => Err(ConfigError::Json(e.to_string())),
    }
}

/// The config's version, for answering even when the rest is broken.
pub fn version_of(obj: &Map<String, Value>) -> Result<Version, ConfigError> {
    if let Some(v) = get::<String>(obj, "cniVersion")? {
        return Ok(v.parse()?);
    }
    if let Some(list) = get::<Vec<String>>(obj, "cniVersions")? {
        return Ok(Version::highest_of(&list)?);
    }
    Err(ConfigError::Missing("cniVersion"))
}

/// A conflist's plugin entry, completed with the list's name and version.
fn from_conflist(mut list: Map<String, Value>) -> Result<Map<String, Value>, ConfigError> {
    let plugins: Vec<Value> = get(&list, "plugins")?.unwrap_or_default();
    let mut plugin = plugins
        .into_iter()
        .filter_map(|p| match p {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .find(|p| p.get("type").and_then(Value::as_str) == Some("nsnet"))
        .ok_or_else(|| ConfigError::field("plugins", "no plugin of type nsnet in the list"))?;
    let version = version_of(&list)?;
    plugin.insert("cniVersion".into(), version.as_str().into());
    for key in ["name", "runtimeConfig", "prevResult"] {
        if let Some(v) = list.remove(key) {
            plugin.entry(key).or_insert(v);
        }
    }
    Ok(plugin)
}

impl NetConf {
    /// Parses and validates a configuration; `args` are `CNI_ARGS`, which may
    /// carry `IP` and `MAC` as the reference plugins accept them.
    pub fn parse(bytes: &[u8], args: &CniArgs) -> Result<Self, ConfigError> {
        let mut obj = parse_json(bytes)?;
        if obj.contains_key("plugins") && !obj.contains_key("type") {
            obj = from_conflist(obj)?;
        }
        let version = version_of(&obj)?;
        let name: String = get(&obj, "name")?.ok_or(ConfigError::Missing("name"))?;
        let name: NetworkName = name.parse().map_err(|e| ConfigError::field("name", e))?;
        let _type: String = get(&obj, "type")?.ok_or(ConfigError::Missing("type"))?;
        let bridge = get::<String>(&obj, "bridge")?
            .map(|b| {
                b.parse::<IfName>()
                    .map_err(|e| ConfigError::field("bridge", e))
            })
            .transpose()?;
        refuse_unsupported(&obj)?;
        let mtu = get::<u32>(&obj, "mtu")?.filter(|m| *m != 0);
        let ipam = match obj.get("ipam") {
            None | Some(Value::Null) => Ipam::default(),
            Some(Value::Object(o)) => parse_ipam(o)?,
            Some(_) => return Err(ConfigError::field("ipam", "expected an object")),
        };
        let runtime = parse_runtime(&obj, args)?;
        let prev_result = match obj.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(v) => Some(CniResult::parse(v).map_err(|e| ConfigError::field("prevResult", e))?),
        };
        Ok(Self {
            version,
            name,
            bridge,
            is_gateway: get(&obj, "isGateway")?.unwrap_or(true),
            default_gateway: get(&obj, "isDefaultGateway")?,
            ip_masq: get(&obj, "ipMasq")?.unwrap_or(true),
            hairpin: get(&obj, "hairpinMode")?.unwrap_or(false),
            isolate: get(&obj, "portIsolation")?.unwrap_or(false),
            mtu,
            allow_link_local: get(&obj, "allowLinkLocal")?.unwrap_or(false),
            inbound: get::<String>(&obj, "inbound")?
                .map(|s| s.parse().map_err(|e| ConfigError::field("inbound", e)))
                .transpose()?
                .unwrap_or(crate::store::Inbound::Routed),
            foreign_firewall: get(&obj, "foreignFirewall")?.unwrap_or(true),
            ipam,
            dns: get::<Dns>(&obj, "dns")?.filter(|d| !d.is_empty()),
            runtime,
            prev_result,
            valid_attachments: parse_attachments(&obj)?,
            log: LogConf {
                file: get::<String>(&obj, "logFile")?.map(PathBuf::from),
                level: get(&obj, "logLevel")?,
            },
            state_dir: get::<String>(&obj, "stateDir")?.map(PathBuf::from),
            config_dir: get::<String>(&obj, "configDir")?.map(PathBuf::from),
            raw: bytes.to_vec(),
        })
    }

    /// Whether a default route of this family is wanted: asked for by
    /// `isDefaultGateway` or a `/0` among `routes` (`ipam.routes`, or those of a
    /// delegated IPAM plugin's result), or (nsnet's rule) when the config says
    /// nothing about routes at all.
    pub fn wants_default_route(&self, routes: Option<&[RouteConf]>, v4: bool) -> bool {
        if !self.is_gateway {
            return false;
        }
        let listed = routes.is_some_and(|rs| {
            rs.iter()
                .any(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == v4)
        });
        match self.default_gateway {
            Some(true) => true,
            Some(false) => listed,
            None => listed || routes.is_none(),
        }
    }
}

/// Keys of the reference bridge plugin that nsnet cannot honour.
fn refuse_unsupported(obj: &Map<String, Value>) -> Result<(), ConfigError> {
    if get::<bool>(obj, "macspoofchk")? == Some(true) {
        return Err(ConfigError::Unsupported {
            key: "macspoofchk",
            why: "MAC spoof checking (nsnet owns no bridge-family table); remove the key".into(),
        });
    }
    if get::<u32>(obj, "vlan")?.is_some_and(|v| v != 0) {
        return Err(ConfigError::Unsupported {
            key: "vlan",
            why: "VLAN tagging on bridge ports".into(),
        });
    }
    if get::<Vec<Value>>(obj, "vlanTrunk")?.is_some_and(|v| !v.is_empty()) {
        return Err(ConfigError::Unsupported {
            key: "vlanTrunk",
            why: "VLAN trunks".into(),
        });
    }
    if get::<bool>(obj, "disableContainerInterface")? == Some(true) {
        return Err(ConfigError::Unsupported {
            key: "disableContainerInterface",
            why: "leaving the container interface down".into(),
        });
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawRange {
    subnet: String,
    #[serde(default, rename = "rangeStart")]
    range_start: Option<IpAddr>,
    #[serde(default, rename = "rangeEnd")]
    range_end: Option<IpAddr>,
    #[serde(default)]
    gateway: Option<IpAddr>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    #[serde(default)]
    gw: Option<IpAddr>,
}

fn parse_range(key: &str, r: RawRange) -> Result<Range, ConfigError> {
    let bad = |why: String| ConfigError::field(key, why);
    let subnet: IpNet = r
        .subnet
        .parse()
        .map_err(|_| bad(format!("subnet {:?} is not a CIDR", r.subnet)))?;
    ipam::check_subnet_is_network(&subnet).map_err(bad)?;
    ipam::check_subnet_size(&subnet).map_err(bad)?;
    if subnet.prefix_len() == 0 {
        return Err(bad(format!("subnet {subnet} covers every address")));
    }
    for (what, ip) in [
        ("rangeStart", r.range_start),
        ("rangeEnd", r.range_end),
        ("gateway", r.gateway),
    ] {
        if let Some(ip) = ip {
            if !subnet.contains(&ip) {
                return Err(bad(format!("{what} {ip} is outside subnet {subnet}")));
            }
        }
    }
    if let (Some(s), Some(e)) = (r.range_start, r.range_end) {
        if s > e {
            return Err(bad(format!("rangeStart {s} is after rangeEnd {e}")));
        }
    }
    Ok(Range {
        subnet,
        start: r.range_start,
        end: r.range_end,
        gateway: r.gateway,
    })
}

fn parse_ipam(o: &Map<String, Value>) -> Result<Ipam, ConfigError> {
    let delegate = match get::<String>(o, "type")? {
        None => None,
        Some(t) if t == "nsnet" || t.is_empty() => None,
        Some(t) if t.contains('/') || t == "." || t == ".." => {
            return Err(ConfigError::field(
                "ipam.type",
                format!("{t:?} is not a plugin name"),
            ))
        }
        Some(t) => Some(t),
    };
    let mut sets: Vec<Vec<RawRange>> = get(o, "ranges")
        .map_err(|e| ConfigError::field("ipam.ranges", e))?
        .unwrap_or_default();
    // host-local's older single-range form.
    if let Some(subnet) = get::<String>(o, "subnet")? {
        sets.insert(
            0,
            vec![RawRange {
                subnet,
                range_start: get(o, "rangeStart")?,
                range_end: get(o, "rangeEnd")?,
                gateway: get(o, "gateway")?,
            }],
        );
    }
    let mut ranges: Vec<Range> = Vec::new();
    for (i, mut set) in sets.into_iter().enumerate() {
        let key = format!("ipam.ranges[{i}]");
        if set.len() != 1 {
            return Err(ConfigError::Unsupported {
                key: "ipam.ranges",
                why: format!(
                    "{} ranges in range set {i}: an nsnet network has one subnet per family",
                    set.len()
                ),
            });
        }
        let range = parse_range(&key, set.remove(0))?;
        if let Some(other) = ranges
            .iter()
            .find(|r| r.subnet.addr().is_ipv4() == range.subnet.addr().is_ipv4())
        {
            return Err(ConfigError::Unsupported {
                key: "ipam.ranges",
                why: format!(
                    "a second subnet of one family ({} after {}): an nsnet network has one subnet per family",
                    range.subnet, other.subnet
                ),
            });
        }
        ranges.push(range);
    }
    let routes = get::<Vec<RawRoute>>(o, "routes")
        .map_err(|e| ConfigError::field("ipam.routes", e))?
        .map(|rs| {
            rs.into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let dst: IpNet = r.dst.parse().map_err(|_| {
                        ConfigError::field(
                            format!("ipam.routes[{i}]"),
                            format!("dst {:?} is not a CIDR", r.dst),
                        )
                    })?;
                    Ok(RouteConf {
                        dst: dst.trunc(),
                        gw: r.gw,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()
        })
        .transpose()?;
    Ok(Ipam {
        delegate,
        ranges,
        routes,
    })
}

/// `portMappings` entries, in the conventional lower-camel names and in the Go
/// field names that containerd sends.
#[derive(Deserialize, PartialEq, Eq, Hash, Clone)]
struct RawPortMapping {
    #[serde(rename = "hostPort", alias = "HostPort")]
    host_port: u32,
    #[serde(rename = "containerPort", alias = "ContainerPort")]
    container_port: u32,
    #[serde(default, alias = "Protocol")]
    protocol: Option<String>,
    #[serde(default, rename = "hostIP", alias = "HostIP", alias = "hostIp")]
    host_ip: Option<String>,
}

/// A mapping as a `-p` spec, parsed by the same code as the CLI's (so `::1`,
/// multicast and out-of-range ports are refused alike).
fn port_spec(i: usize, m: &RawPortMapping) -> Result<PortSpec, ConfigError> {
    let key = format!("runtimeConfig.portMappings[{i}]");
    let port = |what: &str, p: u32| {
        if (1..=65535).contains(&p) {
            Ok(p)
        } else {
            Err(ConfigError::field(
                &key,
                format!("{what} {p} is out of range (1-65535)"),
            ))
        }
    };
    let (host_port, container_port) = (
        port("hostPort", m.host_port)?,
        port("containerPort", m.container_port)?,
    );
    let proto = m
        .protocol
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("tcp");
    let host = match m.host_ip.as_deref().filter(|h| !h.is_empty()) {
        None => String::new(),
        Some(ip) => match ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) => format!("[{a}]:"),
            Ok(IpAddr::V4(a)) => format!("{a}:"),
            Err(_) => {
                return Err(ConfigError::field(
                    &key,
                    format!("hostIP {ip:?} is not an IP address"),
                ))
            }
        },
    };
    format!("{host}{host_port}:{container_port}/{proto}")
        .parse()
        .map_err(|e: crate::ports::SpecError| ConfigError::field(&key, e))
}

/// An address with or without a prefix length (`10.1.0.5` or `10.1.0.5/24`).
fn parse_ip(key: &str, s: &str) -> Result<IpAddr, ConfigError> {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    addr.parse()
        .map_err(|_| ConfigError::field(key, format!("{s:?} is not an IP address")))
}

fn parse_runtime(obj: &Map<String, Value>, args: &CniArgs) -> Result<RuntimeConfig, ConfigError> {
    let rc: Map<String, Value> = get(obj, "runtimeConfig")?.unwrap_or_default();
    let cni_args: Map<String, Value> = get::<Map<String, Value>>(obj, "args")?
        .and_then(|a| a.get("cni").cloned())
        .and_then(|c| match c {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .unwrap_or_default();
    let mappings: Vec<RawPortMapping> = get(&rc, "portMappings")
        .map_err(|e| ConfigError::field("runtimeConfig.portMappings", e))?
        .unwrap_or_default();
    let mut seen = HashSet::new();
    let mut ports = Vec::new();
    for (i, m) in mappings.iter().enumerate() {
        // A runtime may repeat a mapping (one per address family); publish it once.
        if seen.insert(m.clone()) {
            ports.push(port_spec(i, m)?);
        }
    }
    let ip_texts: Vec<String> = match get::<Vec<String>>(&rc, "ips")
        .map_err(|e| ConfigError::field("runtimeConfig.ips", e))?
    {
        Some(ips) => ips,
        None => match get::<Vec<String>>(&cni_args, "ips")? {
            Some(ips) => ips,
            None => args
                .get("IP")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        },
    };
    let ips = ip_texts
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| parse_ip("ips", s))
        .collect::<Result<Vec<_>, _>>()?;
    let mac_text = get::<String>(&rc, "mac")
        .map_err(|e| ConfigError::field("runtimeConfig.mac", e))?
        .or(get::<String>(&cni_args, "mac")?)
        .or(args.get("MAC").map(str::to_owned))
        .filter(|m| !m.is_empty());
    let mac = mac_text
        .map(|m| m.parse::<Mac>().map_err(|e| ConfigError::field("mac", e)))
        .transpose()?;
    Ok(RuntimeConfig { ports, ips, mac })
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "containerID")]
    container_id: String,
    ifname: String,
}

fn parse_attachments(
    obj: &Map<String, Value>,
) -> Result<Option<HashSet<(String, String)>>, ConfigError> {
    // libcni sends the list under both names (the spec's wording once differed).
    let list: Option<Vec<RawAttachment>> = match get(obj, "cni.dev/valid-attachments")? {
        Some(l) => Some(l),
        None => get(obj, "cni.dev/attachments")?,
    };
    Ok(list.map(|l| l.into_iter().map(|a| (a.container_id, a.ifname)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<NetConf, ConfigError> {
        NetConf::parse(json.as_bytes(), &CniArgs::default())
    }

    #[test]
    fn a_converted_bridge_config_parses() {
        let c = parse(
            r#"{"cniVersion":"0.4.0","name":"podman","type":"nsnet","bridge":"cni-podman0",
                "isGateway":true,"ipMasq":true,"hairpinMode":true,
                "ipam":{"type":"nsnet","ranges":[[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}]],
                        "routes":[{"dst":"0.0.0.0/0"}]},
                "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""}]}}"#,
        )
        .unwrap();
        assert_eq!(c.version, Version::V0_4_0);
        assert_eq!(c.bridge.as_ref().unwrap().as_str(), "cni-podman0");
        assert_eq!(c.ipam.delegate, None);
        assert_eq!(c.ipam.ranges[0].subnet.to_string(), "10.88.0.0/16");
        assert_eq!(c.runtime.ports[0].host_start, Some(8080));
        assert!(c.wants_default_route(c.ipam.routes.as_deref(), true));
        assert!(!c.wants_default_route(c.ipam.routes.as_deref(), false));
    }

    #[test]
    fn foreign_firewall_is_on_unless_the_config_turns_it_off() {
        let base = r#""cniVersion":"1.0.0","name":"k","type":"nsnet""#;
        assert!(parse(&format!("{{{base}}}")).unwrap().foreign_firewall);
        let off = parse(&format!(r#"{{{base},"foreignFirewall":false}}"#)).unwrap();
        assert!(!off.foreign_firewall);
        let bad = parse(&format!(r#"{{{base},"foreignFirewall":"no"}}"#));
        assert!(
            matches!(&bad, Err(e) if e.to_string().contains("foreignFirewall")),
            "{bad:?}"
        );
    }

    #[test]
    fn go_field_names_and_duplicates_in_port_mappings() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","name":"k","type":"nsnet","runtimeConfig":{"portMappings":[
                {"HostPort":8080,"ContainerPort":80,"Protocol":"TCP","HostIP":"127.0.0.1"},
                {"HostPort":8080,"ContainerPort":80,"Protocol":"TCP","HostIP":"127.0.0.1"},
                {"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"::"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.runtime.ports.len(), 2);
        assert_eq!(c.runtime.ports[1].host, crate::ports::HostAddr::AnyV6);
        let bad = parse(
            r#"{"cniVersion":"1.0.0","name":"k","type":"nsnet","runtimeConfig":{"portMappings":[
                {"hostPort":8080,"containerPort":80,"hostIP":"::1"}]}}"#,
        );
        assert!(matches!(bad, Err(ConfigError::Field { .. })), "{bad:?}");
    }

    #[test]
    fn missing_and_wrong_fields_are_named() {
        assert!(parse("{")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        assert_eq!(
            parse(r#"{"name":"a","type":"nsnet"}"#).unwrap_err(),
            ConfigError::Missing("cniVersion")
        );
        assert_eq!(
            parse(r#"{"cniVersion":"1.0.0","type":"nsnet"}"#).unwrap_err(),
            ConfigError::Missing("name")
        );
        let e = parse(r#"{"cniVersion":"1.0.0","name":"a","type":"nsnet","mtu":"x"}"#).unwrap_err();
        assert!(e.to_string().starts_with("mtu: "), "{e}");
        assert!(matches!(
            parse(r#"{"cniVersion":"0.2.0","name":"a","type":"nsnet"}"#),
            Err(ConfigError::Version(_))
        ));
    }

    #[test]
    fn what_nsnet_cannot_do_is_refused() {
        for extra in [
            r#""macspoofchk":true"#,
            r#""vlan":5"#,
            r#""ipam":{"ranges":[[{"subnet":"10.1.0.0/24"},{"subnet":"10.2.0.0/24"}]]}"#,
            r#""ipam":{"ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.2.0.0/24"}]]}"#,
        ] {
            let json = format!(r#"{{"cniVersion":"1.0.0","name":"a","type":"nsnet",{extra}}}"#);
            assert!(
                matches!(parse(&json), Err(ConfigError::Unsupported { .. })),
                "{extra}"
            );
        }
        for extra in [
            r#""ipam":{"ranges":[[{"subnet":"10.1.0.5/24"}]]}"#,
            r#""ipam":{"ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.2.0.1"}]]}"#,
            r#""ipam":{"ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.9","rangeEnd":"10.1.0.3"}]]}"#,
            r#""ipam":{"type":"../x"}"#,
            r#""ipam":{"subnet":"::/0"}"#,
        ] {
            let json = format!(r#"{{"cniVersion":"1.0.0","name":"a","type":"nsnet",{extra}}}"#);
            assert!(
                matches!(parse(&json), Err(ConfigError::Field { .. })),
                "{extra}"
            );
        }
    }

    #[test]
    fn a_whole_conflist_reads_as_its_nsnet_plugin() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","cniVersions":["1.0.0","1.1.0"],"name":"list","plugins":[
                {"type":"nsnet","ipam":{"subnet":"10.9.0.0/24"}},{"type":"tuning"}]}"#,
        )
        .unwrap();
        assert_eq!(c.name.as_str(), "list");
        assert_eq!(c.version, Version::V1_0_0);
        assert_eq!(c.ipam.ranges.len(), 1);
        let c = parse(r#"{"cniVersions":["1.0.0","1.1.0"],"name":"l","type":"nsnet"}"#).unwrap();
        assert_eq!(c.version, Version::V1_1_0);
    }

    #[test]
    fn ips_and_mac_come_from_runtime_config_args_or_cni_args() {
        let args: CniArgs = "IgnoreUnknown=1;IP=10.1.0.9;MAC=02:00:00:00:00:09"
            .parse()
            .unwrap();
        let c = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"a","type":"nsnet"}"#,
            &args,
        )
        .unwrap();
        assert_eq!(c.runtime.ips, vec!["10.1.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.runtime.mac.unwrap().to_string(), "02:00:00:00:00:09");
        let c = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"a","type":"nsnet","runtimeConfig":{"ips":["10.1.0.7/24"],"mac":"02:00:00:00:00:07"}}"#,
            &args,
        )
        .unwrap();
        assert_eq!(c.runtime.ips, vec!["10.1.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.runtime.mac.unwrap().to_string(), "02:00:00:00:00:07");
    }

    #[test]
    fn routes_decide_the_default_route() {
        let wants = |extra: &str, v4: bool| {
            let c = parse(&format!(
                r#"{{"cniVersion":"1.0.0","name":"a","type":"nsnet"{extra}}}"#
            ))
            .unwrap();
            c.wants_default_route(c.ipam.routes.as_deref(), v4)
        };
        assert!(wants("", true));
        assert!(!wants(r#","isDefaultGateway":false"#, true));
        assert!(!wants(
            r#","ipam":{"routes":[{"dst":"10.5.0.0/16"}]}"#,
            true
        ));
        assert!(wants(
            r#","isDefaultGateway":true,"ipam":{"routes":[]}"#,
            false
        ));
        assert!(!wants(r#","isGateway":false"#, true));
    }
}
