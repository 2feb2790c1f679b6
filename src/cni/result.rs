//! The CNI result: what ADD prints, what comes back as `prevResult`, and what a
//! delegated IPAM plugin answers. Parsed from any supported version; written in
//! the version the config asked for (0.3.x/0.4.0 with `ips[].version`, 1.x
//! without it, 1.1.0 with interface MTUs).

use super::version::Version;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResultError {
    #[error("{0}")]
    Decode(String),
    #[error("ips[{index}]: interface {interface} is not in interfaces (which has {count})")]
    BadInterface {
        index: usize,
        interface: usize,
        count: usize,
    },
}

/// DNS settings, passed through from the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub sandbox: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix length (`10.1.0.2/24`).
    pub address: IpNet,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default)]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RouteResult {
    pub dst: IpNet,
    #[serde(default)]
    pub gw: Option<IpAddr>,
}

/// A result, version-independent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<RouteResult>,
    #[serde(default)]
    pub dns: Dns,
}

impl CniResult {
    /// Reads a result of any supported version (unknown keys are ignored).
    pub fn parse(v: &Value) -> Result<Self, ResultError> {
        let r = CniResult::deserialize(v).map_err(|e| ResultError::Decode(e.to_string()))?;
        for (index, ip) in r.ips.iter().enumerate() {
            if let Some(interface) = ip.interface {
                if interface >= r.interfaces.len() {
                    return Err(ResultError::BadInterface {
                        index,
                        interface,
                        count: r.interfaces.len(),
                    });
                }
            }
        }
        Ok(r)
    }

    /// The container-side interface (the one with a sandbox) named `ifname`.
    pub fn sandbox_interface(&self, ifname: &str) -> Option<(usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == ifname && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
    }

    /// The result as `version` writes it.
    pub fn encode(&self, version: Version) -> Value {
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut o = Map::new();
                o.insert("name".into(), i.name.clone().into());
                if let Some(mac) = &i.mac {
                    o.insert("mac".into(), mac.clone().into());
                }
                if let (Some(mtu), true) = (i.mtu, version.interfaces_have_mtu()) {
                    o.insert("mtu".into(), mtu.into());
                }
                if let Some(sandbox) = &i.sandbox {
                    o.insert("sandbox".into(), sandbox.clone().into());
                }
                Value::Object(o)
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = Map::new();
                if version.ips_have_version() {
                    let v = if ip.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    };
                    o.insert("version".into(), v.into());
                }
                o.insert("address".into(), ip.address.to_string().into());
                if let Some(gw) = ip.gateway {
                    o.insert("gateway".into(), gw.to_string().into());
                }
                if let Some(i) = ip.interface {
                    o.insert("interface".into(), i.into());
                }
                Value::Object(o)
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| match r.gw {
                Some(gw) => json!({"dst": r.dst.to_string(), "gw": gw.to_string()}),
                None => json!({"dst": r.dst.to_string()}),
            })
            .collect();
        let mut out = Map::new();
        out.insert("cniVersion".into(), version.as_str().into());
        out.insert("interfaces".into(), interfaces.into());
        out.insert("ips".into(), ips.into());
        if !routes.is_empty() {
            out.insert("routes".into(), routes.into());
        }
        out.insert(
            "dns".into(),
            serde_json::to_value(&self.dns).unwrap_or_else(|_| json!({})),
        );
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "nsbr-a".into(),
                    mac: Some("02:00:00:00:00:01".into()),
                    sandbox: None,
                    mtu: Some(1500),
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:42:0a:01:00:02".into()),
                    sandbox: Some("/run/netns/x".into()),
                    mtu: Some(1500),
                },
            ],
            ips: vec![IpConfig {
                address: "10.1.0.2/24".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
                interface: Some(1),
            }],
            routes: vec![RouteResult {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("10.1.0.1".parse().unwrap()),
            }],
            dns: Dns {
                nameservers: vec!["10.1.0.1".into()],
                ..Dns::default()
            },
        }
    }

    #[test]
    fn each_version_has_its_shape_and_reads_back() {
        for v in super::super::version::SUPPORTED {
            let out = sample().encode(v);
            assert_eq!(out["cniVersion"], v.as_str());
            assert_eq!(out["ips"][0]["version"].is_string(), v < Version::V1_0_0);
            assert_eq!(
                out["interfaces"][0]["mtu"].is_number(),
                v >= Version::V1_1_0
            );
            assert_eq!(out["ips"][0]["interface"], 1);
            assert_eq!(out["interfaces"][1]["sandbox"], "/run/netns/x");
            let mut back = CniResult::parse(&out).unwrap();
            if v < Version::V1_1_0 {
                back.interfaces.iter_mut().for_each(|i| i.mtu = Some(1500));
            }
            assert_eq!(back, sample());
        }
    }

    #[test]
    fn bad_results_are_refused() {
        let mut v = sample().encode(Version::V1_0_0);
        v["ips"][0]["interface"] = 7.into();
        assert!(matches!(
            CniResult::parse(&v),
            Err(ResultError::BadInterface { .. })
        ));
        v["ips"][0]["address"] = "nonsense".into();
        assert!(matches!(CniResult::parse(&v), Err(ResultError::Decode(_))));
    }

    #[test]
    fn the_sandbox_interface_is_found_by_name() {
        let r = sample();
        assert_eq!(r.sandbox_interface("eth0").map(|(i, _)| i), Some(1));
        assert!(r.sandbox_interface("nsbr-a").is_none());
    }
}
