//! Published ports in the state database: one row per host address, protocol
//! and host port, checked for overlaps and picked free inside the endpoint's
//! lease transaction, so two concurrent connects can never publish one port twice.

use super::{db_err, Result};
use crate::ports::{HostAddr, PortSpec, Proto, Published};
use rusqlite::{params, Transaction};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Host ports picked when a spec gives none (the IANA dynamic range).
pub const AUTO_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ports (
        proto TEXT NOT NULL,
        host_port INTEGER NOT NULL,
        host TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        network TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS ports_key ON ports (proto, host_port);
     CREATE INDEX IF NOT EXISTS ports_endpoint ON ports (endpoint);";

/// Why a port cannot be published.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("port {port}/{proto} on {host} is already published by {owner}")]
    Taken {
        host: HostAddr,
        port: u16,
        proto: Proto,
        owner: String,
    },
    #[error("port {port}/{proto} on {host} is in use by a process on the host")]
    InUseOnHost {
        host: HostAddr,
        port: u16,
        proto: Proto,
    },
    #[error("no {count} free consecutive {proto} port(s) left in {}-{}", AUTO_PORTS.start(), AUTO_PORTS.end())]
    NoneFree { count: u16, proto: Proto },
    #[error("port {port} does not fit: {start} + {count} ports passes 65535")]
    TooHigh { port: u16, start: u16, count: u16 },
    #[error("the endpoint has no {family} address for {host}")]
    NoFamily {
        family: &'static str,
        host: HostAddr,
    },
}

/// What the rest of the host already uses: whether a socket listens on a
/// protocol and port where an address (or every address) would publish it.
pub type HostBusy<'a> = dyn Fn(&HostAddr, Proto, u16) -> bool + 'a;

fn encode_host(h: &HostAddr) -> String {
    serde_json::to_string(h).unwrap_or_default()
}

/// Who holds `proto/port` on an address overlapping `host`, if anyone.
fn holder(
    tx: &Transaction<'_>,
    path: &Path,
    host: &HostAddr,
    proto: Proto,
    port: u16,
) -> Result<Option<String>> {
    let db = db_err(path);
    let mut stmt = tx
        .prepare_cached("SELECT host, endpoint FROM ports WHERE proto = ?1 AND host_port = ?2")
        .map_err(db)?;
    let rows = stmt
        .query_map(params![proto.name(), port], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db)?;
    for row in rows {
        let (h, endpoint) = row.map_err(db)?;
        if serde_json::from_str::<HostAddr>(&h).is_ok_and(|h| h.overlaps(host)) {
            return Ok(Some(owner(tx, &endpoint)));
        }
    }
    Ok(None)
}

/// The name of an endpoint's owner ([`super::Endpoint::owner`]), or its id
/// when its record cannot be read.
fn owner(tx: &Transaction<'_>, id: &str) -> String {
    tx.query_row("SELECT spec FROM endpoints WHERE id = ?1", [id], |r| {
        r.get::<_, String>(0)
    })
    .ok()
    .and_then(|j| serde_json::from_str::<super::Endpoint>(&j).ok())
    .map_or_else(|| id.to_owned(), |e| e.owner())
}

/// Resolves and records the ports of one endpoint; `Ok(Err(..))` says why not.
pub(super) fn publish(
    tx: &Transaction<'_>,
    path: &Path,
    network: &str,
    endpoint: &str,
    specs: &[PortSpec],
    (v4, v6): (Option<Ipv4Addr>, Option<Ipv6Addr>),
    busy: &HostBusy<'_>,
) -> Result<std::result::Result<Vec<Published>, PortError>> {
    let mut out = Vec::new();
    for spec in specs {
        // The endpoint must have an address of each family the spec names alone.
        let family_missing = match spec.host {
            HostAddr::AnyV4 => v4.is_none().then_some("IPv4"),
            HostAddr::AnyV6 => v6.is_none().then_some("IPv6"),
            HostAddr::Ip(ip) if ip.is_ipv4() => v4.is_none().then_some("IPv4"),
            HostAddr::Ip(_) => v6.is_none().then_some("IPv6"),
            HostAddr::Any => None,
        };
        if let Some(family) = family_missing {
            return Ok(Err(PortError::NoFamily {
                family,
                host: spec.host,
            }));
        }
        let start = match spec.host_start {
            Some(start) => {
                if u32::from(start) + u32::from(spec.count) - 1 > 65535 {
                    return Ok(Err(PortError::TooHigh {
                        port: start,
                        start,
                        count: spec.count,
                    }));
                }
                for port in start..start + (spec.count - 1) + 1 {
                    if let Some(owner) = holder(tx, path, &spec.host, spec.proto, port)? {
                        return Ok(Err(PortError::Taken {
                            host: spec.host,
                            port,
                            proto: spec.proto,
                            owner,
                        }));
                    }
                    if busy(&spec.host, spec.proto, port) {
                        return Ok(Err(PortError::InUseOnHost {
                            host: spec.host,
                            port,
                            proto: spec.proto,
                        }));
                    }
                }
                start
            }
            None => match free_block(tx, path, spec, busy)? {
                Some(start) => start,
                None => {
                    return Ok(Err(PortError::NoneFree {
                        count: spec.count,
                        proto: spec.proto,
                    }))
                }
            },
        };
        for i in 0..spec.count {
            let host_port = start + i;
            tx.execute(
                "INSERT INTO ports (proto, host_port, host, endpoint, network) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![spec.proto.name(), host_port, encode_host(&spec.host), endpoint, network],
            )
            .map_err(db_err(path))?;
            out.push(Published {
                host: spec.host,
                proto: spec.proto,
                host_port,
                container_port: spec.container_start + i,
                container_v4: v4.filter(|_| spec.host.covers_v4()),
                container_v6: v6.filter(|_| spec.host.covers_v6()),
            });
        }
    }
    Ok(Ok(out))
}

/// The first run of `spec.count` free host ports in [`AUTO_PORTS`].
fn free_block(
    tx: &Transaction<'_>,
    path: &Path,
    spec: &PortSpec,
    busy: &HostBusy<'_>,
) -> Result<Option<u16>> {
    let mut start = *AUTO_PORTS.start();
    'outer: while u32::from(start) + u32::from(spec.count) - 1 <= u32::from(*AUTO_PORTS.end()) {
        for i in 0..spec.count {
            let port = start + i;
            if busy(&spec.host, spec.proto, port)
                || holder(tx, path, &spec.host, spec.proto, port)?.is_some()
            {
                start = port.saturating_add(1);
                if port == u16::MAX {
                    break 'outer;
                }
                continue 'outer;
            }
        }
        return Ok(Some(start));
    }
    Ok(None)
}

/// Forgets an endpoint's ports.
pub(super) fn release(tx: &Transaction<'_>, path: &Path, endpoint: &str) -> Result<()> {
    tx.execute("DELETE FROM ports WHERE endpoint = ?1", [endpoint])
        .map_err(db_err(path))?;
    Ok(())
}
