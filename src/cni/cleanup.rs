//! DEL and GC: releasing attachments.
//!
//! DEL is idempotent and needs no namespace: the endpoint is found by its id
//! (`cni:CONTAINERID:IFNAME`), its host veth by the name derived from that id,
//! so a DEL with `CNI_NETNS=""`, for a namespace already gone, or repeated,
//! releases what is left (lease, published ports, firewall elements, veth) and
//! succeeds. A network nsnet does not know has nothing to release.
//!
//! GC releases every attachment of the config's network that the runtime's
//! `cni.dev/valid-attachments` does not list; endpoints made by nsnet's CLI
//! (not `cni:` ids) are never touched. Both verbs pass on to a delegated IPAM
//! plugin, and go on past errors, returning the first.

use super::config::{ConfigError, NetConf};
use super::env::{Attachment, Command, EnvError, Invocation};
use super::{delegate, Error};
use crate::netlink::Netlink;
use crate::ops::{self, endpoint, network, nl_err, Context};
use crate::privilege::require_admin;

/// Serves DEL.
pub fn del(ctx: &Context, inv: &Invocation, conf: &NetConf) -> Result<(), Error> {
    let att = inv
        .attachment
        .as_ref()
        .ok_or_else(|| EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_IFNAME"]))?;
    let mut errors: Vec<Error> = Vec::new();
    match endpoint::disconnect_id(ctx, &conf.name, &att.endpoint_id()) {
        Ok(found) => tracing::debug!(
            "{att}: {}",
            if found {
                "released"
            } else {
                "nothing to release"
            }
        ),
        Err(ops::Error::UnknownNetwork(n)) => tracing::info!(
            "{att}: network {n} is not defined in {}: nothing to release",
            ctx.config_dir.display()
        ),
        Err(e) => errors.push(e.into()),
    }
    if let Some(plugin) = &conf.ipam.delegate {
        if let Err(e) = delegate::run(plugin, Command::Del, &inv.path, &conf.raw) {
            errors.push(e.into());
        }
    }
    first(errors)
}

fn first(errors: Vec<Error>) -> Result<(), Error> {
    let mut it = errors.into_iter();
    match it.next() {
        None => Ok(()),
        Some(e) => {
            for other in it {
                tracing::warn!("also: {other}");
            }
            Err(e)
        }
    }
}

/// Serves GC.
pub fn gc(ctx: &Context, inv: &Invocation, conf: &NetConf) -> Result<(), Error> {
    let valid = conf
        .valid_attachments
        .as_ref()
        .ok_or(ConfigError::Missing("cni.dev/valid-attachments"))?;
    let mut errors: Vec<Error> = Vec::new();
    match network::get(ctx, &conf.name) {
        Ok(spec) => {
            require_admin().map_err(ops::Error::from)?;
            let mut state = ctx.state()?;
            let mut host = Netlink::new().map_err(nl_err("host", "opening netlink"))?;
            let prefix = format!("{}/", spec.name);
            let mut released = 0;
            for ep in state.endpoints(Some(&spec.name))? {
                let Some(att) = ep
                    .id
                    .strip_prefix(&prefix)
                    .and_then(Attachment::from_endpoint_id)
                else {
                    continue;
                };
                let key = (att.container_id.to_string(), att.ifname.to_string());
                if valid.contains(&key) {
                    continue;
                }
                let failures = endpoint::teardown(&mut host, &mut state, &spec.bridge, &ep);
                if failures.is_empty() {
                    released += 1;
                    tracing::info!("GC released {att} ({})", ep.host_ifname);
                } else {
                    errors.push(
                        ops::Error::Teardown {
                            what: format!("releasing {att} from {}", spec.name),
                            errors: failures,
                        }
                        .into(),
                    );
                }
            }
            tracing::debug!("GC of {}: {released} attachment(s) released", spec.name);
        }
        Err(ops::Error::UnknownNetwork(_)) => {}
        Err(e) => errors.push(e.into()),
    }
    if let Some(plugin) = &conf.ipam.delegate {
        if let Err(e) = delegate::run(plugin, Command::Gc, &inv.path, &conf.raw) {
            errors.push(e.into());
        }
    }
    first(errors)
}
