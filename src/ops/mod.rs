//! Operations: the only layer that knows the order of steps. Each operation
//! validates everything it can before touching the kernel, then builds, and on
//! any failure undoes what it created ([`rollback::Rollback`]).

pub mod cluster;
pub mod endpoint;
mod forwarding;
pub mod link;
mod lock;
pub mod maint;
pub mod netns;
pub mod network;
pub mod pod;
pub mod rollback;
pub mod run;
pub mod source_routes;
pub mod spawn;
pub mod view;

use crate::netlink;
use crate::privilege::NotPrivileged;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    NotPrivileged(#[from] NotPrivileged),
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
    #[error("namespace {ns}: {what}: {source}")]
    Netlink {
        ns: String,
        what: String,
        #[source]
        source: netlink::Error,
    },
    #[error("namespace {ns}: interface {name} already exists")]
    InterfaceExists { ns: String, name: String },
    #[error("namespace {ns}: interface {name} does not exist")]
    InterfaceNotFound { ns: String, name: String },
    #[error("namespace {ns}: interface {name} is not a veth{}", kind.as_ref().map(|k| format!(" (it is a {k})")).unwrap_or_default())]
    NotVeth {
        ns: String,
        name: String,
        kind: Option<String>,
    },
    #[error(
        "{target} is the namespace network {network}'s bridge lives in (nsnet's own): \
         connecting it would wire the host into its own bridge"
    )]
    HostNamespace { target: String, network: String },
    #[error("{0}")]
    Invalid(String),
    #[error("network {0} does not exist")]
    UnknownNetwork(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Safefs(#[from] crate::safefs::Error),
    #[error(transparent)]
    Firewall(#[from] crate::firewall::Error),
    #[error(transparent)]
    Ipam(#[from] crate::ipam::Error),
    #[error("{what}: {source}")]
    Refused {
        what: String,
        #[source]
        source: crate::store::Refused,
    },
    #[error("conntrack: {0}")]
    Conntrack(String),
    #[error("cannot run {program}: {}", crate::netlink::errno_text(source.raw_os_error().unwrap_or(0)))]
    CannotRun {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("working directory {}: {}", dir.display(), crate::netlink::errno_text(source.raw_os_error().unwrap_or(0)))]
    BadWorkdir {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {}", errors.join("; "))]
    Teardown { what: String, errors: Vec<String> },
}

/// Where nsnet keeps its records (`--state-dir`, `--config-dir`).
#[derive(Debug, Clone)]
pub struct Context {
    pub state_dir: std::path::PathBuf,
    pub config_dir: std::path::PathBuf,
}

impl Context {
    pub fn config(&self) -> Result<crate::store::Config> {
        Ok(crate::store::Config::open(&self.config_dir)?)
    }
    pub fn state(&self) -> Result<crate::store::State> {
        Ok(crate::store::State::open(&self.state_dir)?)
    }
    /// The definitions, read-only (listings need no write access); `None`
    /// when none were ever recorded.
    pub fn config_read(&self) -> Result<Option<crate::store::Config>> {
        Ok(crate::store::Config::open_read(&self.config_dir)?)
    }
    /// The runtime state, read-only; `None` when nothing was ever recorded.
    pub fn state_read(&self) -> Result<Option<crate::store::State>> {
        Ok(crate::store::State::open_read(&self.state_dir)?)
    }
}

/// Writes a sysctl of the calling thread's network namespace (`key` relative to
/// `/proc/sys`, e.g. `net/ipv4/ip_forward`).
pub(crate) fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|e| Error::Io {
        what: format!("setting {key} to {value}"),
        source: e,
    })
}

/// Turns IPv6 off on one interface of the calling thread's namespace (no
/// link-local address, no DAD probe, no MLD report); nothing to do on a kernel
/// without IPv6.
pub(crate) fn disable_ipv6(ifname: &str) -> Result<()> {
    match sysctl(&format!("net/ipv6/conf/{ifname}/disable_ipv6"), "1") {
        Err(Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                && !std::path::Path::new("/proc/sys/net/ipv6").exists() =>
        {
            Ok(())
        }
        r => r,
    }
}

/// FNV-1a, 64 bits: a stable hash for deriving names (not for security).
pub(crate) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

pub type Result<T> = std::result::Result<T, Error>;

/// Builds the closure that turns a netlink error into [`Error::Netlink`].
pub(crate) fn nl_err<'a>(
    ns: &'a str,
    what: impl Into<String> + 'a,
) -> impl FnOnce(netlink::Error) -> Error + 'a {
    move |source| Error::Netlink {
        ns: ns.to_owned(),
        what: what.into(),
        source,
    }
}
