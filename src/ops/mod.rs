//! Operations: the only layer that knows the order of steps. Each operation
//! validates everything it can before touching the kernel, then builds, and on
//! any failure undoes what it created ([`rollback::Rollback`]).

mod alive;
pub mod cluster;
pub mod endpoint;
mod forwarding;
pub mod link;
pub mod lock;
pub mod maint;
pub mod netns;
pub mod network;
pub mod pod;
pub mod rollback;
pub mod routes;
pub mod ruleset;
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

pub use crate::store::Context;

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

pub(crate) use crate::store::layout::fnv1a;

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
