//! Operations: the only layer that knows the order of steps. Each operation
//! validates everything it can before touching the kernel, then builds, and on
//! any failure undoes what it created ([`rollback::Rollback`]).

pub mod link;
pub mod netns;
pub mod rollback;

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
    #[error("{0}")]
    Invalid(String),
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
