//! Cluster definitions in the config database: one row per clustered
//! network, holding this node's settings and the desired peers. They survive
//! a reboot like the network itself; the kernel side (routes, VXLAN device,
//! neighbour and FDB entries) is made again from them on demand.

use super::{Config, Error, Result};
use ipnet::Ipv4Net;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS clusters (
        network TEXT PRIMARY KEY,
        spec TEXT NOT NULL
     );";

/// How this node reaches its peers' pod subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// A route per peer via its node address (peers on one L2 segment).
    HostGw,
    /// A VXLAN overlay (flannel's wire format), peers anywhere routable.
    Vxlan,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
        })
    }
}

/// Another node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub node_ip: Ipv4Addr,
    pub pod_cidr: Ipv4Net,
}

/// One clustered network of this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub network: String,
    pub node_ip: Ipv4Addr,
    pub cluster_cidr: Ipv4Net,
    pub backend: Backend,
    pub vni: u32,
    pub port: u16,
    /// The network's MTU before `cluster init` lowered it for VXLAN.
    #[serde(default)]
    pub mtu_before: Option<u32>,
    #[serde(default)]
    pub peers: Vec<Peer>,
}

impl Config {
    pub fn cluster(&self, network: &str) -> Result<Option<ClusterSpec>> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT spec FROM clusters WHERE network = ?1",
                [network],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| parse(network, &j)).transpose()
    }

    pub fn clusters(&self) -> Result<Vec<ClusterSpec>> {
        let mut stmt = self
            .conn
            .prepare("SELECT network, spec FROM clusters ORDER BY network")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, json) = row.map_err(|e| self.err(e))?;
            out.push(parse(&name, &json)?);
        }
        Ok(out)
    }

    /// Inserts or replaces a network's cluster definition.
    pub fn put_cluster(&self, spec: &ClusterSpec) -> Result<()> {
        let json = serde_json::to_string(spec).map_err(|e| Error::Corrupt {
            what: format!("cluster of {}", spec.network),
            why: e.to_string(),
        })?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO clusters (network, spec) VALUES (?1, ?2)",
                params![spec.network, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_cluster(&self, network: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM clusters WHERE network = ?1", [network])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn parse(network: &str, json: &str) -> Result<ClusterSpec> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        what: format!("cluster of {network}"),
        why: e.to_string(),
    })
}
