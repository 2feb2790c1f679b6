//! What the walk checks for nsnet's own guards and clusters: the source an
//! endpoint sends from (its bridge port passes only its own), and a packet
//! leaving through a cluster's VXLAN device to the peer node.

use super::{ip_cmd, At, Next, Walker};
use crate::graph::Interface;
use std::net::IpAddr;

impl Walker<'_> {
    /// A packet leaving an endpoint's interface must carry an address nsnet
    /// gave it: its bridge port (`table bridge nsnet`) drops any other source.
    /// False (with the verdict) when the chosen source is not one of them.
    pub(super) fn own_source(&mut self, ns: usize, out_if: &Interface) -> bool {
        let Some(src) = self.src else {
            return true;
        };
        let name = self.name(ns).to_owned();
        let Some((network, ep)) = self.f.topology.networks.iter().find_map(|n| {
            n.endpoints
                .iter()
                .find(|e| e.namespace == name && e.interface == out_if.name)
                .map(|e| (n.name.clone(), e.clone()))
        }) else {
            return true;
        };
        let link_local = matches!(src, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        if link_local || ep.addresses.iter().any(|a| a.addr() == src) {
            return true;
        }
        let own = ep
            .addresses
            .iter()
            .find(|a| a.addr().is_ipv4() == src.is_ipv4())
            .map(|a| a.addr().to_string())
            .unwrap_or_else(|| "none of this family".into());
        let prefix = out_if
            .addresses
            .iter()
            .find(|a| a.addr() == src)
            .map_or(32, |a| a.prefix_len());
        self.fail(
            ns,
            format!(
                "{} would leave with source {src}, which nsnet did not give {name} on network {network} (its address there: {own}): \
                 the endpoint's bridge port drops packets from any other address or MAC (table bridge nsnet, against spoofing)",
                out_if.name
            ),
            Some(ip_cmd(
                &name,
                &format!("addr del {src}/{prefix} dev {}", out_if.name),
            )),
        );
        false
    }

    /// The cluster whose VXLAN device is `ifname` (of nsnet's records).
    pub(super) fn cluster_of(&self, ifname: &str) -> Option<crate::store::cluster::ClusterSpec> {
        self.f.topology.networks.iter().find_map(|n| {
            n.cluster
                .as_ref()
                .filter(|c| crate::ops::cluster::vxlan_name(&c.network) == ifname)
                .cloned()
        })
    }

    /// A packet leaving through a cluster's VXLAN device: the peer whose pod
    /// CIDR holds the destination, its neighbour and FDB entries (read from
    /// the kernel in nsnet's own namespace), and on to the peer node, where
    /// the packet comes out of its VXLAN device.
    pub(super) fn vxlan_hop(
        &mut self,
        ns: usize,
        out_if: &Interface,
        prev_addr: Option<IpAddr>,
    ) -> Next {
        use crate::ops::cluster::vtep_mac;
        let Some(c) = self.cluster_of(&out_if.name) else {
            return Next::Done;
        };
        let IpAddr::V4(d) = self.d else {
            return Next::Done;
        };
        let fix_peers = format!("nsnet cluster peers {} FILE", c.network);
        let Some(peer) = c.peers.iter().find(|p| p.pod_cidr.contains(&d)).cloned() else {
            self.fail(
                ns,
                format!(
                    "no peer of cluster {} has a pod CIDR holding {d}: the node that runs it is missing from the peers",
                    c.network
                ),
                Some(fix_peers),
            );
            return Next::Done;
        };
        if self.name(ns) == "host" {
            let vtep = peer.pod_cidr.network();
            let mac = vtep_mac(peer.node_ip);
            let entries = crate::netlink::Netlink::new().and_then(|mut nl| {
                let neigh = nl.neighbours(out_if.index)?;
                let fdb = nl.fdbs(out_if.index)?;
                Ok((
                    neigh.iter().any(|n| n.ip == vtep && n.mac == mac),
                    fdb.iter().any(|f| f.mac == mac && f.dst == peer.node_ip),
                ))
            });
            match entries {
                Ok((true, true)) => {}
                Ok((neigh, _)) => {
                    let missing = if neigh {
                        "FDB entry"
                    } else {
                        "neighbour entry"
                    };
                    self.fail(
                        ns,
                        format!(
                            "{} lacks the {missing} of peer {} (VTEP {vtep}, node {}): the packet cannot be sent",
                            out_if.name, peer.name, peer.node_ip
                        ),
                        Some("nsnet firewall reload".into()),
                    );
                    return Next::Done;
                }
                Err(e) => self.warn(ns, format!("cannot read {}'s entries: {e}", out_if.name)),
            }
        }
        self.ok(
            ns,
            format!(
                "{} encapsulates it (VNI {}, UDP {}) to peer {} at {}",
                out_if.name, c.vni, c.port, peer.name, peer.node_ip
            ),
        );
        // The peer node: the namespace holding the node address, where the
        // packet comes out of its own VXLAN device.
        let node = IpAddr::V4(peer.node_ip);
        let far = self
            .f
            .topology
            .namespaces
            .iter()
            .enumerate()
            .find_map(|(i, n)| {
                let holds = n
                    .interfaces
                    .iter()
                    .any(|x| x.addresses.iter().any(|a| a.addr() == node));
                let vx = n.interfaces.iter().position(|x| x.kind == "vxlan");
                holds.then_some(vx.map(|j| (i, j))).flatten()
            });
        match far {
            Some((i, j)) => Next::Go(At {
                ns: i,
                in_if: Some(j),
                next_hop: Some(self.d),
                prev_addr,
            }),
            None => {
                self.ok(
                    ns,
                    format!("node {} is beyond what doctor can see", peer.node_ip),
                );
                Next::Done
            }
        }
    }
}
