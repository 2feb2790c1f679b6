//! The live topology, read back from the kernel and nsnet's store, and drawn as
//! a terminal tree ([`text`]), Graphviz input ([`dot`]) or a picture that nsnet
//! lays out and renders itself ([`svg`]).
//!
//! [`collect`] finds every network namespace it can name: the one nsnet runs in
//! ("host"), those under `/run/netns` (nsnet's and iproute2's), pods, `nsnet run`
//! namespaces, endpoint targets given by PID, and any other namespace a running
//! process holds that has an interface besides `lo` (a container another runtime
//! made). Namespaces are told apart by inode, so one namespace reached by several
//! names is shown once.
//!
//! A veth's far end is resolved the way `ip -d link` does it: the kernel reports
//! the peer's index (`IFLA_LINK`) and, when the peer lives in another namespace,
//! that namespace's id as seen from this one (`IFLA_LINK_NETNSID`). Namespace ids
//! are local to each namespace, so each is mapped back to one of the namespaces
//! found by asking the kernel (`RTM_GETNSID` with the candidate's descriptor).
//!
//! The model is plain data ([`Topology`]): the renderers are pure functions of it
//! and are tested without a kernel.

mod collect;
pub mod dot;
pub mod layout;
pub mod svg;
pub mod text;

pub use collect::collect;
pub(crate) use collect::collect_open;

use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("namespace {ns}: {what}: {source}")]
    Netlink {
        ns: String,
        what: &'static str,
        #[source]
        source: crate::netlink::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Everything [`collect`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Topology {
    /// The namespace nsnet runs in comes first.
    pub namespaces: Vec<Namespace>,
    pub networks: Vec<Network>,
    pub ports: Vec<Port>,
}

/// What a namespace is to nsnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum NsKind {
    /// The namespace nsnet runs in.
    Host,
    /// A name under `/run/netns`.
    Named,
    /// A pod's namespace, held by its pause process.
    Pod {
        pid: u32,
        running: bool,
        members: usize,
    },
    /// The namespace of a running `nsnet run`.
    Run,
    /// Held only by a process (a container of another runtime, an endpoint
    /// target given as `pid:N`).
    Process { pid: u32, command: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    /// Unique in the topology: "host", a name, `run:ID` or `pid:N`.
    pub name: String,
    #[serde(flatten)]
    pub kind: NsKind,
    pub inode: u64,
    /// Other names of the same namespace (`run:ID`, `pid:N` of an endpoint target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Sorted by interface index.
    pub interfaces: Vec<Interface>,
}

impl Namespace {
    /// How a heading names it: "host", "namespace red", "pod web", ...
    pub fn title(&self) -> String {
        match &self.kind {
            NsKind::Host => "host".into(),
            NsKind::Named => format!("namespace {}", self.name),
            NsKind::Pod { .. } => format!("pod {}", self.name),
            NsKind::Run => format!("nsnet {}", self.name),
            NsKind::Process { pid, .. } => format!("process {pid}"),
        }
    }

    /// Facts shown after the title ("pause pid 7, running, 2 members").
    pub fn detail(&self) -> Option<String> {
        let facts = self.facts();
        if self.aliases.is_empty() {
            return facts;
        }
        let also = format!("also {}", self.aliases.join(", "));
        Some(match facts {
            Some(f) => format!("{f}; {also}"),
            None => also,
        })
    }

    fn facts(&self) -> Option<String> {
        match &self.kind {
            NsKind::Pod {
                pid,
                running,
                members,
            } => Some(format!(
                "pause pid {pid}, {}, {members} member{}",
                if *running { "running" } else { "dead" },
                if *members == 1 { "" } else { "s" }
            )),
            NsKind::Process { command, .. } if !command.is_empty() => Some(command.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub index: u32,
    pub name: String,
    /// "veth", "bridge", "loopback", or the kernel's kind ("dummy", "vxlan", ...);
    /// empty for a device without one.
    pub kind: String,
    pub up: bool,
    /// The kernel sees a carrier (`IFF_LOWER_UP`): for a veth, its peer is up too.
    pub carrier: bool,
    /// A bridge port with port isolation on (`--isolate`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub isolated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The bridge (in the same namespace) this interface is a port of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    pub addresses: Vec<IpNet>,
    /// The far end of a veth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Peer>,
    /// The nsnet network whose bridge this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// The far end of a veth pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The peer's namespace, or `None` when it is none of those found (then
    /// `interface` is `ifN`, its index there).
    pub namespace: Option<String>,
    pub interface: String,
}

impl Peer {
    /// `eth0@red`, or `if7@?` for a namespace nsnet cannot see.
    pub fn label(&self) -> String {
        format!(
            "{}@{}",
            self.interface,
            self.namespace.as_deref().unwrap_or("?")
        )
    }
}

/// An nsnet network and what is attached to it.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    pub internal: bool,
    pub masquerade: bool,
    pub isolate: bool,
    pub endpoints: Vec<Attachment>,
    /// The network's cluster (`nsnet cluster`), when it is one node's pod network.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cluster: Option<crate::store::cluster::ClusterSpec>,
}

impl Network {
    /// "masquerade", "internal", "no-masquerade", plus ", isolated".
    pub fn mode(&self) -> String {
        let base = if self.internal {
            "internal"
        } else if self.masquerade {
            "masquerade"
        } else {
            "no-masquerade"
        };
        if self.isolate {
            format!("{base}, isolated")
        } else {
            base.to_owned()
        }
    }
}

/// One endpoint of a network.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub id: String,
    /// The namespace's name in this topology, or the target as the user gave it
    /// when the namespace is gone.
    pub namespace: String,
    pub interface: String,
    pub host_interface: String,
    pub addresses: Vec<IpNet>,
}

/// A published port and where it leads.
#[derive(Debug, Clone, Serialize)]
pub struct Port {
    /// As `port ls` prints it: `*:8080->80/tcp`.
    pub spec: String,
    pub network: String,
    pub namespace: String,
    pub interface: String,
    /// The endpoint addresses the port leads to.
    pub to: Vec<IpAddr>,
    pub container_port: u16,
}

impl Topology {
    /// The namespace named `name`.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// Every veth pair once, as ((namespace, interface), (namespace, interface))
    /// index pairs; pairs whose peer is in an unseen namespace are left out.
    pub fn wires(&self) -> Vec<((usize, usize), (usize, usize))> {
        let mut out = Vec::new();
        for (a, ns) in self.namespaces.iter().enumerate() {
            for (i, iface) in ns.interfaces.iter().enumerate() {
                let Some(far) = self.peer_of(iface) else {
                    continue;
                };
                // Each pair is seen from both ends: keep it from the smaller one.
                if (a, i) < far {
                    out.push(((a, i), far));
                }
            }
        }
        out
    }

    /// (namespace, interface) indices of a veth's far end, when it was found.
    pub fn peer_of(&self, iface: &Interface) -> Option<(usize, usize)> {
        let peer = iface.peer.as_ref()?;
        let ns = peer.namespace.as_deref()?;
        let b = self.namespaces.iter().position(|n| n.name == ns)?;
        let j = self.namespaces[b]
            .interfaces
            .iter()
            .position(|x| x.name == peer.interface)?;
        Some((b, j))
    }

    /// (namespace, interface) indices of the interface a port leads to.
    pub fn port_target(&self, port: &Port) -> Option<(usize, usize)> {
        let b = self
            .namespaces
            .iter()
            .position(|n| n.name == port.namespace)?;
        let j = self.namespaces[b]
            .interfaces
            .iter()
            .position(|x| x.name == port.interface)?;
        Some((b, j))
    }
}

/// Addresses as `a/24 b/64`, link-local IPv6 left out (every interface has one).
pub fn address_list(addrs: &[IpNet]) -> String {
    addrs
        .iter()
        .filter(|a| !is_link_local(a))
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_link_local(a: &IpNet) -> bool {
    match a.addr() {
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
pub(crate) mod sample;
