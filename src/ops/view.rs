//! Read-only views of the records, for listings (`network ls`, `port ls`,
//! `pod ls`, ...): they open the databases read-only, so they need no write
//! access and create nothing; a database that does not exist reads as empty.

use super::{Context, Result};
use crate::ports::Published;
use crate::store::Endpoint;
use std::net::IpAddr;

/// Endpoints, of one network or of all.
pub fn endpoints(ctx: &Context, network: Option<&str>) -> Result<Vec<Endpoint>> {
    match ctx.state_read()? {
        Some(state) => Ok(state.endpoints(network)?),
        None => Ok(Vec::new()),
    }
}

/// A network's leases: (address, endpoint id).
pub fn leases(ctx: &Context, network: &str) -> Result<Vec<(IpAddr, String)>> {
    match ctx.state_read()? {
        Some(state) => Ok(state.leases(network)?),
        None => Ok(Vec::new()),
    }
}

/// Published ports with their endpoints, of one network or of all.
pub fn ports(ctx: &Context, network: Option<&str>) -> Result<Vec<(Endpoint, Published)>> {
    match ctx.state_read()? {
        Some(state) => Ok(state.ports(network)?),
        None => Ok(Vec::new()),
    }
}
