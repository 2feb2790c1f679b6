//! Where nsnet keeps things, in one place: the two directories ([`Context`]),
//! the files and directories beneath the state directory, and the names nsnet
//! gives the kernel objects it owns (found again by name, without any state).
//!
//! ```text
//! CONFIG_DIR/nsnet.db          networks, clusters (survives reboots)
//! STATE_DIR/nsnet.db           endpoints, leases, ports, pods (on /run)
//! STATE_DIR/lock               process-wide lock (base ruleset, a network's bridge)
//! STATE_DIR/ops.lock           operations lock: connects shared, gc/check/reload exclusive
//! STATE_DIR/networks/N.lock    network N's lock: connects shared, `network rm` exclusive
//! STATE_DIR/inflight/nsv...    journal: an endpoint a connect or disconnect is working on
//! STATE_DIR/pods/NAME/         a pod's pinned namespaces
//! STATE_DIR/runs/ID/           a run's pinned namespaces
//! STATE_DIR/foreign/N.json     rules network N added to other firewalls
//! STATE_DIR/accept_ra          host interfaces switched to accept_ra=2
//! ```
//! Directories are 0700 and files 0600; everything beneath is opened without
//! following links (`safefs`).

use std::path::{Path, PathBuf};

/// The process-wide lock file.
pub const PROCESS_LOCK: &str = "lock";
/// The operations lock file.
pub const OPS_LOCK: &str = "ops.lock";
/// The directory of per-network lock files.
pub const NETWORK_LOCKS: &str = "networks";
/// The in-flight journal's directory.
pub const JOURNAL_DIR: &str = "inflight";
/// The pods' directory.
pub const PODS_DIR: &str = "pods";
/// The runs' directory.
pub const RUNS_DIR: &str = "runs";
/// The directory of rules added to other firewalls.
pub const FOREIGN_DIR: &str = "foreign";
/// The record of host interfaces switched to accept_ra=2.
pub const ACCEPT_RA_RECORD: &str = "accept_ra";

/// Where nsnet keeps its records (`--state-dir`, `--config-dir`).
#[derive(Debug, Clone)]
pub struct Context {
    pub state_dir: PathBuf,
    pub config_dir: PathBuf,
}

impl Context {
    /// The definitions (networks, clusters), opened for writing.
    pub fn config(&self) -> super::Result<super::Config> {
        super::Config::open(&self.config_dir)
    }
    /// The runtime state (endpoints, leases, ports, pods), opened for writing.
    pub fn state(&self) -> super::Result<super::State> {
        super::State::open(&self.state_dir)
    }
    /// The definitions, read-only (listings need no write access); `None`
    /// when none were ever recorded.
    pub fn config_read(&self) -> super::Result<Option<super::Config>> {
        super::Config::open_read(&self.config_dir)
    }
    /// The runtime state, read-only; `None` when nothing was ever recorded.
    pub fn state_read(&self) -> super::Result<Option<super::State>> {
        super::State::open_read(&self.state_dir)
    }

    /// A pod's directory, relative to the state directory.
    pub fn pod_rel(name: &str) -> PathBuf {
        Path::new(PODS_DIR).join(name)
    }
    /// A pod's directory.
    pub fn pod_dir(&self, name: &str) -> PathBuf {
        self.state_dir.join(Self::pod_rel(name))
    }
    /// A run's directory, relative to the state directory.
    pub fn run_rel(id: &str) -> PathBuf {
        Path::new(RUNS_DIR).join(id)
    }
    /// The runs' directory.
    pub fn runs_dir(&self) -> PathBuf {
        self.state_dir.join(RUNS_DIR)
    }
    /// The in-flight journal's directory.
    pub fn journal_dir(&self) -> PathBuf {
        self.state_dir.join(JOURNAL_DIR)
    }
}

/// FNV-1a, the hash behind nsnet's interface names (stable across versions:
/// the names are how nsnet finds its objects again).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The host end of an endpoint's veth: `nsv` and 12 hex digits of its id's hash.
pub fn host_ifname(endpoint_id: &str) -> String {
    format!("nsv{:012x}", fnv1a(endpoint_id) & 0xffff_ffff_ffff)
}

/// Whether `name` is shaped like [`host_ifname`]'s names.
pub fn is_host_ifname(name: &str) -> bool {
    name.len() == 15
        && name.starts_with("nsv")
        && name[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A clustered network's VXLAN device: `nsvx` and 8 hex digits of its name's hash.
pub fn vxlan_ifname(network: &str) -> String {
    format!("nsvx{:08x}", fnv1a(network) & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_names_are_stable_and_recognised() {
        let name = host_ifname("net/ns:red");
        assert_eq!(name.len(), 15);
        assert!(is_host_ifname(&name));
        assert!(is_host_ifname("nsv0123456789ab"));
        for other in [
            "nsv0123456789aB",
            "nsv0123456789a",
            "nsvpn0",
            "eth0",
            "nsv0123456789ag",
        ] {
            assert!(!is_host_ifname(other), "{other}");
        }
        assert_eq!(vxlan_ifname("a").len(), 12);
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
    }
}
