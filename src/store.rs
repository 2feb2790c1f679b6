//! Persistent records: SQLite (bundled), WAL mode, a busy timeout, and every
//! allocation in a `BEGIN IMMEDIATE` transaction, so any number of concurrent
//! nsnet processes (parallel connects, CNI calls) stay consistent.
//!
//! Two databases, by lifetime:
//! - `CONFIG_DIR/nsnet.db`: network definitions, which survive a reboot.
//! - `STATE_DIR/nsnet.db`: endpoints and leases, which die with the kernel
//!   objects they describe. The state dir is on `/run` (a tmpfs), so a reboot
//!   can never leave stale leases behind.

pub mod cluster;
pub mod layout;
mod open;
mod ports;
pub use layout::Context;
use open::*;
pub use ports::{PortError, AUTO_PORTS};

use crate::ipam::{self, Pool};
use crate::ports::{PortSpec, Published};
use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Store errors say what happened and what to do about it; SQLite's own text
/// (its error codes) never reaches the user alone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", db_message(path, cause))]
    Db {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("{}", io_message(path, cause))]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}", unsafe_message(.0))]
    Unsafe(crate::safefs::Error),
    #[error("store: corrupt record for {what}: {why}")]
    Corrupt { what: String, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<crate::safefs::Error> for Error {
    fn from(e: crate::safefs::Error) -> Self {
        Error::Unsafe(e)
    }
}

/// What reaches a network's endpoints from outside the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inbound {
    /// Only published ports (and replies): Docker's way, the CLI's default.
    #[default]
    Published,
    /// Traffic routed to an endpoint's address is forwarded too (the
    /// Kubernetes network model; the CNI reference bridge plugin's way).
    Routed,
}

impl std::fmt::Display for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Inbound::Published => "published",
            Inbound::Routed => "routed",
        })
    }
}

impl std::str::FromStr for Inbound {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "published" => Ok(Inbound::Published),
            "routed" => Ok(Inbound::Routed),
            other => Err(format!(
                "inbound policy {other:?} is unknown (expected published or routed)"
            )),
        }
    }
}

/// A network as the user defined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    pub bridge: String,
    /// At most one IPv4 and one IPv6 pool.
    pub pools: Vec<Pool>,
    pub internal: bool,
    pub masquerade: bool,
    pub isolate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Absent in definitions made before the option existed: published.
    #[serde(default)]
    pub inbound: Inbound,
    /// Whether nsnet adds rules to other firewalls that would drop this
    /// network's forwarded traffic (`crate::firewall::foreign`); networks
    /// defined before the option existed have it on.
    #[serde(default = "yes")]
    pub foreign_rules: bool,
}

fn yes() -> bool {
    true
}

/// An interface of a namespace attached to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub network: String,
    /// How the user named the namespace: a name, `pid:N` or a path.
    pub target: String,
    /// The namespace's inode, which identifies it while it lives.
    pub netns_inode: u64,
    pub ifname: String,
    pub host_ifname: String,
    pub mac: String,
    pub addresses: Vec<IpNet>,
    #[serde(default)]
    pub ports: Vec<Published>,
    /// Source routing inside its namespace, when it is not the namespace's
    /// first network (see `ops::source_routes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_routes: Option<SourceRoutes>,
}

/// An endpoint's policy routing table and the addresses whose rules look it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRoutes {
    pub table: u32,
    pub from: Vec<IpNet>,
}

impl Endpoint {
    /// Who the endpoint belongs to, named as `graph` and `doctor` name it:
    /// `run:srv`, `pod p1`, the namespace as the user named it (`a`,
    /// `pid:123`, a path), or `container ID` for one a CNI runtime made.
    pub fn owner(&self) -> String {
        owner_of(&self.id, &self.target)
    }
}

/// [`Endpoint::owner`] from an endpoint's id and target.
fn owner_of(id: &str, target: &str) -> String {
    let local = id.split_once('/').map_or(id, |(_, l)| l);
    if local.starts_with("run:") {
        local.to_owned()
    } else if let Some(pod) = local.strip_prefix("pod:") {
        format!("pod {pod}")
    } else if let Some(cni) = local.strip_prefix("cni:") {
        let container = cni.rsplit_once(':').map_or(cni, |(c, _)| c);
        format!("container {container}")
    } else {
        target.to_owned()
    }
}

/// A pod: its pause process and what was set up for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub name: String,
    /// The pause process, as seen from the host (0 until it runs).
    pub pid: u32,
    pub hostname: String,
    pub pid_share: bool,
    pub networks: Vec<String>,
    /// Inode of the pod's network namespace: tells a live pause from a reused PID.
    pub net_inode: u64,
}

fn to_json(what: &str, value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt {
        what: what.to_owned(),
        why: e.to_string(),
    })
}

/// Why the store refused an endpoint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error(transparent)]
    Ipam(#[from] ipam::Error),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What a connect asks the store for, besides the addresses.
pub struct PortRequest<'a> {
    pub specs: &'a [PortSpec],
    /// Whether a process on the host listens on a protocol/port already.
    pub host_busy: &'a ports::HostBusy<'a>,
}

/// Network definitions (the config dir).
pub struct Config {
    conn: Connection,
    path: PathBuf,
}

impl Config {
    pub fn open(dir: &Path) -> Result<Self> {
        let (conn, path) = open_db(
            dir,
            &format!(
                "CREATE TABLE IF NOT EXISTS networks (
                    name TEXT PRIMARY KEY,
                    bridge TEXT NOT NULL UNIQUE,
                    spec TEXT NOT NULL
                 ); {}",
                cluster::SCHEMA
            ),
        )?;
        Ok(Self { conn, path })
    }

    /// Opens the definitions read-only (see [`open_db_read`]); `None` when no
    /// network was ever defined.
    pub fn open_read(dir: &Path) -> Result<Option<Self>> {
        Ok(open_db_read(dir)?.map(|(conn, path)| Self { conn, path }))
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        db_err(&self.path)(source)
    }

    /// Inserts the network that `build` makes after seeing every existing one,
    /// all in one immediate transaction, so two creates cannot both pick the same
    /// name, subnet or bridge.
    pub fn create_network<E>(
        &mut self,
        build: impl FnOnce(&[NetworkSpec]) -> std::result::Result<NetworkSpec, E>,
    ) -> Result<std::result::Result<NetworkSpec, E>> {
        let path = self.path.clone();
        let db = db_err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let existing = load_networks(&tx, &path)?;
        let spec = match build(&existing) {
            Ok(spec) => spec,
            Err(e) => return Ok(Err(e)),
        };
        let json = serde_json::to_string(&spec).map_err(|e| Error::Corrupt {
            what: spec.name.clone(),
            why: e.to_string(),
        })?;
        tx.execute(
            "INSERT INTO networks (name, bridge, spec) VALUES (?1, ?2, ?3)",
            params![spec.name, spec.bridge, json],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Ok(spec))
    }

    pub fn networks(&self) -> Result<Vec<NetworkSpec>> {
        load_networks(&self.conn, &self.path)
    }

    pub fn network(&self, name: &str) -> Result<Option<NetworkSpec>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT spec FROM networks WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| parse_spec(name, &j)).transpose()
    }

    /// Replaces a network's definition (same name and bridge).
    pub fn update_network(&self, spec: &NetworkSpec) -> Result<()> {
        let json = serde_json::to_string(spec).map_err(|e| Error::Corrupt {
            what: spec.name.clone(),
            why: e.to_string(),
        })?;
        self.conn
            .execute(
                "UPDATE networks SET spec = ?2 WHERE name = ?1",
                params![spec.name, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_network(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM networks WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn parse_spec(name: &str, json: &str) -> Result<NetworkSpec> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt {
        what: format!("network {name}"),
        why: e.to_string(),
    })
}

fn load_networks(conn: &Connection, path: &Path) -> Result<Vec<NetworkSpec>> {
    let db = db_err(path);
    let mut stmt = conn
        .prepare("SELECT name, spec FROM networks ORDER BY name")
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, json) = row.map_err(db)?;
        out.push(parse_spec(&name, &json)?);
    }
    Ok(out)
}

/// Endpoints and leases (the state dir).
pub struct State {
    conn: Connection,
    path: PathBuf,
}

/// Which addresses of one network are leased, as seen inside a transaction.
struct TxLeases<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    network: &'a str,
}

impl ipam::Leases for TxLeases<'_> {
    fn is_leased(&self, ip: IpAddr) -> std::result::Result<bool, ipam::Error> {
        self.tx
            .query_row(
                "SELECT 1 FROM leases WHERE network = ?1 AND ip = ?2",
                params![self.network, ip.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| ipam::Error::Store(e.to_string()))
    }
}

/// What an address request asks for, per pool: a static address or the next free one.
/// What a connect asks of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRequest {
    /// The next free address.
    Next,
    /// This address (a static one).
    Static(IpAddr),
    /// The next free address within bounds (a CNI range's `rangeStart`/`rangeEnd`).
    Within(ipam::Bounds),
}

impl State {
    pub fn open(dir: &Path) -> Result<Self> {
        let (conn, path) = open_db(
            dir,
            ("CREATE TABLE IF NOT EXISTS endpoints (
                    id TEXT PRIMARY KEY,
                    network TEXT NOT NULL,
                    spec TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS endpoints_network ON endpoints (network);
                 CREATE TABLE IF NOT EXISTS leases (
                    network TEXT NOT NULL,
                    ip TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    PRIMARY KEY (network, ip)
                 );
                 CREATE INDEX IF NOT EXISTS leases_endpoint ON leases (endpoint);
                 CREATE TABLE IF NOT EXISTS ipam_last (
                    network TEXT NOT NULL,
                    family INTEGER NOT NULL,
                    ip TEXT NOT NULL,
                    PRIMARY KEY (network, family)
                 );"
            .to_owned()
                + ports::SCHEMA
                + "CREATE TABLE IF NOT EXISTS pods (name TEXT PRIMARY KEY, spec TEXT NOT NULL);")
                .as_str(),
        )?;
        Ok(Self { conn, path })
    }

    /// Opens the runtime state read-only (see [`open_db_read`]); `None` when
    /// nothing was ever recorded.
    pub fn open_read(dir: &Path) -> Result<Option<Self>> {
        Ok(open_db_read(dir)?.map(|(conn, path)| Self { conn, path }))
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        db_err(&self.path)(source)
    }

    /// Leases one address from each pool (the requested one, or the next free
    /// one) for endpoint `endpoint_id`, publishes its ports, and records the
    /// endpoint, atomically. `build` turns the leased addresses and published
    /// ports into the endpoint record.
    pub fn lease_and_record(
        &mut self,
        network: &str,
        endpoint_id: &str,
        pools: &[(Pool, AddressRequest)],
        ports: &PortRequest<'_>,
        build: impl FnOnce(Vec<IpNet>, Vec<Published>) -> Endpoint,
    ) -> Result<std::result::Result<Endpoint, Refused>> {
        let path = self.path.clone();
        let db = db_err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut addresses = Vec::new();
        for (pool, request) in pools {
            let family: i64 = if pool.subnet.addr().is_ipv4() { 4 } else { 6 };
            let leases = TxLeases { tx: &tx, network };
            let bounds = match request {
                AddressRequest::Within(b) => Some(b),
                _ => None,
            };
            let ip = match request {
                AddressRequest::Static(ip) => pool.claim(*ip, &leases),
                AddressRequest::Next | AddressRequest::Within(_) => {
                    let last: Option<String> = tx
                        .query_row(
                            "SELECT ip FROM ipam_last WHERE network = ?1 AND family = ?2",
                            params![network, family],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    pool.allocate(last.and_then(|l| l.parse().ok()), bounds, &leases)
                }
            };
            let ip = match ip {
                Ok(ip) => ip,
                Err(e) => return Ok(Err(e.into())),
            };
            tx.execute(
                "INSERT INTO leases (network, ip, endpoint) VALUES (?1, ?2, ?3)",
                params![network, ip.to_string(), endpoint_id],
            )
            .map_err(db)?;
            if !matches!(request, AddressRequest::Static(_)) {
                tx.execute(
                    "INSERT OR REPLACE INTO ipam_last (network, family, ip) VALUES (?1, ?2, ?3)",
                    params![network, family, ip.to_string()],
                )
                .map_err(db)?;
            }
            let net = IpNet::new(ip, pool.subnet.prefix_len()).map_err(|e| Error::Corrupt {
                what: format!("network {network}"),
                why: e.to_string(),
            })?;
            addresses.push(net);
        }
        let v4 = addresses.iter().find_map(|a| match a {
            IpNet::V4(n) => Some(n.addr()),
            _ => None,
        });
        let v6 = addresses.iter().find_map(|a| match a {
            IpNet::V6(n) => Some(n.addr()),
            _ => None,
        });
        let published = match ports::publish(
            &tx,
            &path,
            network,
            endpoint_id,
            ports.specs,
            (v4, v6),
            ports.host_busy,
        )? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e.into())),
        };
        let endpoint = build(addresses, published);
        let json = serde_json::to_string(&endpoint).map_err(|e| Error::Corrupt {
            what: endpoint.id.clone(),
            why: e.to_string(),
        })?;
        tx.execute(
            "INSERT INTO endpoints (id, network, spec) VALUES (?1, ?2, ?3)",
            params![endpoint.id, network, json],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Ok(endpoint))
    }

    /// Replaces an endpoint's record (e.g. once its MAC is known).
    pub fn update_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let json = serde_json::to_string(endpoint).map_err(|e| Error::Corrupt {
            what: endpoint.id.clone(),
            why: e.to_string(),
        })?;
        self.conn
            .execute(
                "UPDATE endpoints SET spec = ?2 WHERE id = ?1",
                params![endpoint.id, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets an endpoint and releases its leases (idempotent).
    pub fn release(&mut self, endpoint_id: &str) -> Result<()> {
        let path = self.path.clone();
        let db = db_err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute("DELETE FROM leases WHERE endpoint = ?1", [endpoint_id])
            .map_err(db)?;
        ports::release(&tx, &path, endpoint_id)?;
        tx.execute("DELETE FROM endpoints WHERE id = ?1", [endpoint_id])
            .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// One endpoint by id (an index lookup: connect and DEL stay O(1) however
    /// many endpoints a network has).
    pub fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT spec FROM endpoints WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| Error::Corrupt {
                what: format!("endpoint {id}"),
                why: e.to_string(),
            })
        })
        .transpose()
    }

    /// The endpoints of a network in one namespace (by its inode).
    pub fn endpoints_in(&self, network: &str, netns_inode: u64) -> Result<Vec<Endpoint>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, spec FROM endpoints WHERE network = ?1 \
                 AND json_extract(spec, '$.netns_inode') = ?2 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![network, netns_inode as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&json).map_err(|e| Error::Corrupt {
                what: format!("endpoint {id}"),
                why: e.to_string(),
            })?);
        }
        Ok(out)
    }

    pub fn endpoints(&self, network: Option<&str>) -> Result<Vec<Endpoint>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, spec FROM endpoints WHERE ?1 IS NULL OR network = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([network], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&json).map_err(|e| Error::Corrupt {
                what: format!("endpoint {id}"),
                why: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Every leased address of a network (for tests and `inspect`).
    pub fn leases(&self, network: &str) -> Result<Vec<(IpAddr, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT ip, endpoint FROM leases WHERE network = ?1 ORDER BY ip")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([network], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (ip, endpoint) = row.map_err(|e| self.err(e))?;
            let ip = ip.parse().map_err(|_| Error::Corrupt {
                what: format!("lease in {network}"),
                why: format!("bad address {ip:?}"),
            })?;
            out.push((ip, endpoint));
        }
        Ok(out)
    }

    /// Every published port, with the endpoint it leads to (for `port ls`).
    pub fn ports(&self, network: Option<&str>) -> Result<Vec<(Endpoint, Published)>> {
        Ok(self
            .endpoints(network)?
            .into_iter()
            .flat_map(|e| e.ports.clone().into_iter().map(move |p| (e.clone(), p)))
            .collect())
    }

    /// Records a new pod; `Ok(false)` when the name is taken.
    pub fn insert_pod(&self, pod: &PodRecord) -> Result<bool> {
        let json = to_json(&pod.name, pod)?;
        match self.conn.execute(
            "INSERT INTO pods (name, spec) VALUES (?1, ?2)",
            params![pod.name, json],
        ) {
            Ok(_) => Ok(true),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err(e)),
        }
    }

    pub fn update_pod(&self, pod: &PodRecord) -> Result<()> {
        let json = to_json(&pod.name, pod)?;
        self.conn
            .execute(
                "UPDATE pods SET spec = ?2 WHERE name = ?1",
                params![pod.name, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn pods(&self) -> Result<Vec<PodRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, spec FROM pods ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, json) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&json).map_err(|e| Error::Corrupt {
                what: format!("pod {name}"),
                why: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// One pod by name (the primary key: an indexed look-up).
    pub fn pod(&self, name: &str) -> Result<Option<PodRecord>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT spec FROM pods WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| Error::Corrupt {
                what: format!("pod {name}"),
                why: e.to_string(),
            })
        })
        .transpose()
    }

    pub fn delete_pod(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM pods WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Leases and published ports whose endpoint has no record (what a release
    /// cut short would leave): (owner, network, what it holds), for `nsnet gc`
    /// and `nsnet check`. [`State::release`] of the owner frees them.
    pub fn orphans(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT endpoint, network, 'address ' || ip FROM leases
                   WHERE endpoint NOT IN (SELECT id FROM endpoints)
                 UNION ALL
                 SELECT endpoint, network, 'port ' || host_port || '/' || proto FROM ports
                   WHERE endpoint NOT IN (SELECT id FROM endpoints)
                 ORDER BY 1, 3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Drops the allocation cursor of a removed network.
    pub fn forget_network(&self, network: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM ipam_last WHERE network = ?1", [network])
            .map_err(|e| self.err(e))?;
        self.conn
            .execute("DELETE FROM leases WHERE network = ?1", [network])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// This process's POSIX locks on the file with inode `ino`, from the
    /// kernel's own list (`/proc/locks`).
    fn my_locks_on(ino: u64) -> usize {
        let me = std::process::id().to_string();
        std::fs::read_to_string("/proc/locks")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("POSIX"))
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // `1: POSIX ADVISORY READ PID MAJ:MIN:INODE START END`
                f.get(4) == Some(&me.as_str())
                    && f.get(5).and_then(|d| d.rsplit(':').next()) == Some(&ino.to_string())
            })
            .count()
    }

    /// A second connection opened in the same process must not drop the
    /// locks SQLite holds for the first: before, `private_file` opened and
    /// closed the database file, which drops every POSIX lock of the process
    /// on it, and another process could then take the database for its own
    /// and remove the WAL under the first connection (lost commits, "disk
    /// I/O error ... file truncated?").
    #[test]
    fn opening_the_store_twice_keeps_the_first_connections_locks() {
        let dir = std::env::temp_dir().join(format!("nsnet-store-locks-{}", std::process::id()));
        let first = State::open(&dir).unwrap();
        // A read keeps the WAL's shared lock on the database file.
        let _ = first.pods().unwrap();
        let ino = std::fs::metadata(dir.join("nsnet.db")).unwrap().ino();
        let before = my_locks_on(ino);
        assert!(before > 0, "SQLite holds no lock on the database file");
        let second = State::open(&dir).unwrap();
        assert_eq!(my_locks_on(ino), before, "the second open dropped locks");
        drop((first, second));
        let _ = std::fs::remove_dir_all(dir);
    }
}
