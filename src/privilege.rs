//! Checks, before anything is touched, that nsnet may change the network.

use std::fs;

/// `CAP_NET_ADMIN`: links, addresses, routes, nftables.
const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`: mounts (named namespaces) and `setns`.
const CAP_SYS_ADMIN: u32 = 21;

#[derive(Debug, thiserror::Error)]
#[error("permission denied: nsnet needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run it as root)")]
pub struct NotPrivileged;

/// Fails unless this process holds both capabilities it needs to change networking.
pub fn require_admin() -> Result<(), NotPrivileged> {
    let status = fs::read_to_string("/proc/self/status").map_err(|_| NotPrivileged)?;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or(NotPrivileged)?;
    let needed = (1u64 << CAP_NET_ADMIN) | (1u64 << CAP_SYS_ADMIN);
    if caps & needed == needed {
        Ok(())
    } else {
        Err(NotPrivileged)
    }
}
