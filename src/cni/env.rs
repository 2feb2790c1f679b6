//! The environment a runtime sets for a CNI plugin, parsed into validated types.
//!
//! Which variables each verb needs follows the spec (and libcni's plugin
//! skeleton): ADD and CHECK need `CNI_CONTAINERID`, `CNI_NETNS` and
//! `CNI_IFNAME`; DEL needs the container id and interface name, its namespace
//! may be empty or gone (containerd sends `CNI_NETNS=""`); VERSION, STATUS and
//! GC need nothing but the command. `CNI_PATH` is needed only to run a
//! delegated IPAM plugin, so it is checked there.

use crate::names::IfName;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A CNI verb (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("unknown CNI_COMMAND {0:?} (ADD, DEL, CHECK, VERSION, STATUS or GC)")]
    UnknownCommand(String),
    #[error("required environment variables {0:?} missing")]
    Missing(Vec<&'static str>),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("CNI_CONTAINERID {0:?} has invalid characters (letters, digits, _ . - and a letter or digit first)")]
    BadContainerId(String),
    #[error("CNI_IFNAME: {0}")]
    BadIfName(String),
    #[error("CNI_NETNS {0:?} is not an absolute path")]
    RelativeNetns(String),
    #[error("CNI_ARGS: {0:?} is not a KEY=VALUE pair")]
    BadArgs(String),
}

/// A container id: not empty, `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (the spec's rule),
/// so it never contains the `:` nsnet uses to build endpoint ids from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = EnvError;
    fn from_str(s: &str) -> Result<Self, EnvError> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if first_ok && rest_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(EnvError::BadContainerId(s.to_owned()))
        }
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One attachment of a container to a network: the spec's key, together with
/// the network name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attachment {
    pub container_id: ContainerId,
    pub ifname: IfName,
}

impl Attachment {
    /// The id nsnet gives the endpoint (`ConnectRequest::id`).
    pub fn endpoint_id(&self) -> String {
        format!("{ENDPOINT_PREFIX}{}:{}", self.container_id, self.ifname)
    }

    /// Reads an endpoint id back (the part after `NETWORK/`); None for
    /// endpoints that the CNI face did not make.
    pub fn from_endpoint_id(id: &str) -> Option<Self> {
        let rest = id.strip_prefix(ENDPOINT_PREFIX)?;
        let (cid, ifname) = rest.split_once(':')?;
        Some(Self {
            container_id: cid.parse().ok()?,
            ifname: ifname.parse().ok()?,
        })
    }
}

impl fmt::Display for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.container_id, self.ifname)
    }
}

/// Endpoint ids made by the CNI face start with this.
pub const ENDPOINT_PREFIX: &str = "cni:";

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`. Unknown keys are tolerated
/// whatever `IgnoreUnknown` says: runtimes add keys freely (Kubernetes' pod
/// name, namespace, uid, infra container id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub pairs: Vec<(String, String)>,
}

impl CniArgs {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl FromStr for CniArgs {
    type Err = EnvError;
    fn from_str(s: &str) -> Result<Self, EnvError> {
        let mut pairs = Vec::new();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if !k.is_empty() => pairs.push((k.to_owned(), v.to_owned())),
                _ => return Err(EnvError::BadArgs(part.to_owned())),
            }
        }
        Ok(Self { pairs })
    }
}

/// What the runtime asked for, from the environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub command: Command,
    /// ADD, DEL and CHECK.
    pub attachment: Option<Attachment>,
    /// ADD and CHECK always; DEL when the runtime still knows it.
    pub netns: Option<PathBuf>,
    pub args: CniArgs,
    /// `CNI_PATH`, split on `:`; empty when unset.
    pub path: Vec<PathBuf>,
}

/// Reads the command alone, so that even a broken environment is answered
/// in the right way.
pub fn command(lookup: &impl Fn(&str) -> Option<OsString>) -> Result<Command, EnvError> {
    let raw = var(lookup, "CNI_COMMAND")?.unwrap_or_default();
    Ok(match raw.as_str() {
        "ADD" => Command::Add,
        "DEL" => Command::Del,
        "CHECK" => Command::Check,
        "VERSION" => Command::Version,
        "STATUS" => Command::Status,
        "GC" => Command::Gc,
        _ => return Err(EnvError::UnknownCommand(raw)),
    })
}

/// A variable as UTF-8; `None` when unset or empty.
fn var(
    lookup: &impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<String>, EnvError> {
    match lookup(name) {
        None => Ok(None),
        Some(v) => {
            let s = v.into_string().map_err(|_| EnvError::NotUtf8(name))?;
            Ok((!s.is_empty()).then_some(s))
        }
    }
}

impl Invocation {
    /// Parses the environment through `lookup` (`std::env::var_os` in the binary).
    pub fn from_env(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, EnvError> {
        let command = command(&lookup)?;
        let needs_attachment = matches!(command, Command::Add | Command::Del | Command::Check);
        let needs_netns = matches!(command, Command::Add | Command::Check);
        let cid = var(&lookup, "CNI_CONTAINERID")?;
        let ifname = var(&lookup, "CNI_IFNAME")?;
        let netns = var(&lookup, "CNI_NETNS")?;
        let mut missing = Vec::new();
        if needs_attachment && cid.is_none() {
            missing.push("CNI_CONTAINERID");
        }
        if needs_netns && netns.is_none() {
            missing.push("CNI_NETNS");
        }
        if needs_attachment && ifname.is_none() {
            missing.push("CNI_IFNAME");
        }
        if !missing.is_empty() {
            return Err(EnvError::Missing(missing));
        }
        let attachment = match (needs_attachment, cid, ifname) {
            (true, Some(cid), Some(ifname)) => Some(Attachment {
                container_id: cid.parse()?,
                ifname: ifname
                    .parse()
                    .map_err(|e: crate::names::NameError| EnvError::BadIfName(e.to_string()))?,
            }),
            _ => None,
        };
        let netns = match netns {
            Some(p) if !p.starts_with('/') => return Err(EnvError::RelativeNetns(p)),
            other => other.map(PathBuf::from),
        };
        let args = var(&lookup, "CNI_ARGS")?
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or_default();
        let path = var(&lookup, "CNI_PATH")?
            .map(|p| {
                p.split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            command,
            attachment,
            netns,
            args,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<Invocation, EnvError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Invocation::from_env(move |k| map.get(k).map(OsString::from))
    }

    #[test]
    fn add_needs_id_netns_and_ifname() {
        assert_eq!(
            env(&[("CNI_COMMAND", "ADD")]).unwrap_err(),
            EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
        );
        let inv = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin::/usr/lib/cni"),
        ])
        .unwrap();
        assert_eq!(inv.attachment.unwrap().endpoint_id(), "cni:abc:eth0");
        assert_eq!(inv.path.len(), 2);
    }

    #[test]
    fn del_tolerates_an_empty_netns_and_version_needs_nothing() {
        let inv = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", ""),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        assert_eq!(inv.netns, None);
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
        assert!(env(&[("CNI_COMMAND", "GC")]).is_ok());
    }

    #[test]
    fn bad_values_are_refused() {
        let base = |k: &'static str, v: &'static str| {
            let mut vars = vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "abc"),
                ("CNI_NETNS", "/run/netns/x"),
                ("CNI_IFNAME", "eth0"),
            ];
            vars.retain(|(name, _)| *name != k);
            vars.push((k, v));
            env(&vars)
        };
        assert!(matches!(
            base("CNI_IFNAME", "a/b"),
            Err(EnvError::BadIfName(_))
        ));
        assert!(matches!(
            base("CNI_IFNAME", "waytoolonginterface"),
            Err(EnvError::BadIfName(_))
        ));
        assert!(matches!(
            base("CNI_CONTAINERID", "-x"),
            Err(EnvError::BadContainerId(_))
        ));
        assert!(matches!(
            base("CNI_CONTAINERID", "a:b"),
            Err(EnvError::BadContainerId(_))
        ));
        assert!(matches!(
            base("CNI_NETNS", "netns/x"),
            Err(EnvError::RelativeNetns(_))
        ));
        assert!(matches!(
            base("CNI_COMMAND", "PUT"),
            Err(EnvError::UnknownCommand(_))
        ));
        assert!(matches!(
            base("CNI_ARGS", "A=1;junk"),
            Err(EnvError::BadArgs(_))
        ));
    }

    #[test]
    fn cni_args_in_any_order_with_unknown_keys() {
        let a: CniArgs =
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;;K8S_POD_UID=u=1"
                .parse()
                .unwrap();
        assert_eq!(a.get("K8S_POD_NAME"), Some("web-0"));
        assert_eq!(a.get("K8S_POD_UID"), Some("u=1"));
        assert_eq!(a.get("IP"), None);
    }

    #[test]
    fn endpoint_ids_round_trip() {
        let a = Attachment {
            container_id: "c0ffee.1_x-y".parse().unwrap(),
            ifname: "net1".parse().unwrap(),
        };
        assert_eq!(Attachment::from_endpoint_id(&a.endpoint_id()), Some(a));
        assert_eq!(Attachment::from_endpoint_id("12345"), None);
    }
}
