//! nsnet's firewall: two nftables tables of its own, `inet nsnet` (routing,
//! NAT, networks) and `bridge nsnet` (what each endpoint's bridge port may
//! send), and nothing else but the marked accepts of [`foreign`].
//!
//! The tables' chains, sets and maps (the base ruleset, [`BASE_RULESET`]) are
//! declared once, atomically, by feeding `nft -f -`. The rules never change
//! after that; what a network or an endpoint adds is **elements** of the sets,
//! added and deleted by key in one in-process nfnetlink batch per operation
//! ([`nfnl`]). That keeps every change O(1), spawns no process on the hot path,
//! and means cleanup never has to list and match the ruleset.
//!
//! Per network (keyed by its bridge name):
//! - `bridges`: every nsnet bridge; traffic touching one is judged here.
//! - `bridge_pairs` (`bridge . bridge`): traffic within one network is accepted,
//!   including frames bridged through netfilter by `br_netfilter`.
//! - `internal`: networks that reach nothing beyond their bridge; with
//!   `gateways4`/`gateways6` (`bridge . address`) the only host address they reach.
//! - `masq`: networks whose traffic leaving through a non-nsnet interface is
//!   masqueraded; from outside only published ports (and replies) reach them,
//!   unless they are also in
//! - `routed`: networks whose endpoints take traffic routed to their addresses
//!   from outside (`--inbound routed`).
//! - `cluster4` (`bridge . range`, an interval set): a clustered network's
//!   cluster CIDR (`nsnet cluster`): traffic to it is routed unmasqueraded,
//!   traffic from it is let in; `nodes4`: the cluster's node addresses,
//!   whose traffic is let in too.
//!
//! Per endpoint, published ports are elements of four DNAT maps, keyed by what a
//! packet carries: `ports4`/`ports6` (host address . protocol . port) for ports
//! published on one address, `ports4_any`/`ports6_any` (protocol . port) for
//! ports published on every address; the value is the endpoint's address . port.
//! DNAT happens in `prerouting` (traffic from outside and from endpoints) and in
//! `output` (the host itself, including 127.0.0.1: nsnet bridges get
//! `route_localnet`, and such traffic is masqueraded to the gateway address).
//! Each endpoint's addresses are elements of `members4`/`members6` (bridge .
//! address): traffic that comes back into its own network through a published
//! port (hairpin, or a neighbour using a host address) is masqueraded, so the
//! reply returns through the host. The rule keys on the outgoing bridge and the
//! source address, not the incoming interface, because frames that
//! `br_netfilter` bridges straight back reach postrouting without one.
//!
//! Guards against what a container (root in its own namespace, raw sockets)
//! could send (SECURITY.md lists each class and its test):
//! - `bridge nsnet` judges every frame entering a bridge from an endpoint's
//!   port (host veths are named `nsv…`, so a port without elements is closed,
//!   not open). Per endpoint its port carries `l2_macs` (port . MAC) and
//!   `l2_addrs4`/`l2_addrs6` (port . address, the IPv6 link-local one
//!   included; `l2_targets6` holds the IPv6 ones again, keyed as a raw
//!   128-bit field because nft 1.0 cannot name a neighbour advert's target):
//!   a frame with another source MAC or address, an ARP with another sender,
//!   a neighbour advert for another's address, a router advert, redirect or router renumbering, a packet
//!   for 127.0.0.0/8 (which `route_localnet` would otherwise deliver to the
//!   host's loopback services), or anything but ARP/IPv4/IPv6 is dropped before
//!   the bridge or the host sees it. It works without `br_netfilter` and
//!   whatever the host's rp_filter is.
//! - Isolated networks: `l2_isolated` ports never exchange frames, except those
//!   of a published port (hairpin, or a neighbour's port): with `br_netfilter`
//!   such frames are DNAT'd and bridged straight back out, so the inet chain
//!   `mark_hairpin` marks them ([`HAIRPIN_MARK`], cleared again before
//!   delivery) and only marked frames pass. Routed traffic between isolated
//!   endpoints (via the gateway) is dropped in `within_bridge`.
//! - Internal networks reach their own endpoints and gateway address, and
//!   neighbour discovery towards it: nothing else, not even another network's
//!   published ports.
//!
//! Policy of every chain is accept: packets that touch no nsnet bridge are left
//! to the host's own firewall, untouched. Where that firewall drops nsnet's
//! forwarded traffic, [`foreign`] adds marked accepts for each network to it.

pub mod conntrack;
pub mod foreign;
pub mod listing;
pub mod nfnl;
pub mod nft;

use crate::ports::Published;
use nfnl::{Batch, Element, Nftables};
use std::net::{IpAddr, Ipv6Addr};

/// The name of nsnet's tables (`inet nsnet` and `bridge nsnet`).
pub const TABLE: &str = "nsnet";

/// The packet mark bit `mark_hairpin` sets on DNAT'd frames of isolated
/// networks, so that `bridge nsnet` lets them between isolated ports; it is
/// cleared before the frame is delivered.
pub const HAIRPIN_MARK: u32 = 0x0100_0000;

/// The nftables family of a set, chain or map of nsnet's: those of `bridge
/// nsnet` are named `l2_…`.
pub fn family_of(name: &str) -> u8 {
    if name.starts_with("l2_") {
        nfnl::NFPROTO_BRIDGE
    } else {
        nfnl::NFPROTO_INET
    }
}

/// `inet` or `bridge`, as nft names the family of `name`'s table.
pub fn family_name(name: &str) -> &'static str {
    if family_of(name) == nfnl::NFPROTO_BRIDGE {
        "bridge"
    } else {
        "inet"
    }
}

/// Adds elements to a set of either table (by its name).
pub fn batch_add(batch: &mut Batch, set: &str, elems: &[Element]) {
    batch.add_elements_in(family_of(set), set, elems);
}

/// Deletes elements from a set of either table (by its name).
pub fn batch_delete(batch: &mut Batch, set: &str, elems: &[Element]) {
    batch.delete_elements_in(family_of(set), set, elems);
}

/// The base ruleset, declared once (see the module docs).
pub const BASE_RULESET: &str = r#"table inet nsnet {
	comment "managed by nsnet: its sets are changed on every connect and disconnect"
	set bridges { type ifname; }
	set bridge_pairs { type ifname . ifname; }
	set internal { type ifname; }
	set isolated { type ifname; }
	set routed { type ifname; }
	set cluster4 { type ifname . ipv4_addr; flags interval; }
	set nodes4 { type ifname . ipv4_addr; flags interval; }
	set masq { type ifname; }
	set gateways4 { type ifname . ipv4_addr; }
	set gateways6 { type ifname . ipv6_addr; }
	set members4 { type ifname . ipv4_addr; }
	set members6 { type ifname . ipv6_addr; }
	map ports4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
	map ports4_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
	map ports6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }
	map ports6_any { type inet_proto . inet_service : ipv6_addr . inet_service; }

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump publish
	}
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump publish
	}
	chain publish {
		ip6 daddr ::1 return
		dnat ip to ip daddr . meta l4proto . th dport map @ports4
		dnat ip to meta l4proto . th dport map @ports4_any
		dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6
		dnat ip6 to meta l4proto . th dport map @ports6_any
	}
	chain mark_hairpin {
		type filter hook prerouting priority 10; policy accept;
		iifname @isolated ct status dnat meta mark set meta mark | 0x01000000
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname @bridges jump from_bridge
		oifname @bridges jump to_bridge
	}
	chain from_bridge {
		iifname . oifname @bridge_pairs jump within_bridge
		iifname @internal drop
		ct state established,related accept
		ct status dnat accept
		oifname @bridges drop
		accept
	}
	chain within_bridge {
		ct status dnat accept
		iifname @isolated drop
		counter accept
	}
	chain to_bridge {
		oifname @internal drop
		ct state established,related accept
		ct status dnat accept
		oifname @routed accept
		oifname . ip saddr @cluster4 accept
		oifname . ip saddr @nodes4 accept
		oifname @masq drop
		accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname @internal jump internal_input
	}
	chain internal_input {
		ct state established,related accept
		iifname . ip daddr @gateways4 accept
		iifname . ip6 daddr @gateways6 accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		iifname . ip daddr @cluster4 accept
		iifname @masq oifname != @bridges masquerade
		ct status dnat oifname . ip saddr @members4 masquerade
		ct status dnat oifname . ip6 saddr @members6 masquerade
		oifname @bridges ip saddr 127.0.0.0/8 masquerade
	}
}
table bridge nsnet {
	comment "managed by nsnet: what an endpoint's port may send, and isolated ports"
	set l2_macs { type ifname . ether_addr; }
	set l2_addrs4 { type ifname . ipv4_addr; }
	set l2_addrs6 { type ifname . ipv6_addr; }
	set l2_isolated { type ifname; }
	set l2_targets6 { typeof iifname . @th,64,128; }

	chain l2_prerouting {
		type filter hook prerouting priority -300; policy accept;
		iifname "nsv*" jump l2_from_port
	}
	chain l2_from_port {
		iifname . ether saddr != @l2_macs drop
		ether type arp jump l2_from_port_arp
		ether type ip jump l2_from_port_ip
		ether type ip6 jump l2_from_port_ip6
		drop
	}
	chain l2_from_port_arp {
		iifname . arp saddr ether != @l2_macs drop
		arp saddr ip 0.0.0.0 accept
		iifname . arp saddr ip != @l2_addrs4 drop
		accept
	}
	chain l2_from_port_ip {
		iifname . ip saddr != @l2_addrs4 drop
		ip daddr 127.0.0.0/8 drop
		icmp type redirect drop
		accept
	}
	chain l2_from_port_ip6 {
		icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } drop
		ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept
		iifname . ip6 saddr != @l2_addrs6 drop
		icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @l2_targets6 drop
		accept
	}
	chain l2_forward {
		type filter hook forward priority filter; policy accept;
		iifname @l2_isolated oifname @l2_isolated jump l2_isolated_ports
	}
	chain l2_isolated_ports {
		meta mark & 0x01000000 == 0x01000000 meta mark set meta mark & 0xfeffffff accept
		drop
	}
}
"#;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nftables: {0}")]
    Nfnl(#[from] nfnl::Error),
    #[error("installing the base ruleset with nft: {0}")]
    Nft(String),
    #[error(transparent)]
    Foreign(#[from] foreign::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What the firewall needs to know of a network.
#[derive(Debug, Clone)]
pub struct NetworkRules<'a> {
    pub bridge: &'a str,
    pub internal: bool,
    pub isolate: bool,
    /// `--inbound routed`: traffic routed to an endpoint from outside passes.
    pub routed: bool,
    pub masquerade: bool,
    pub gateways: Vec<IpAddr>,
}

/// The firewall of the current network namespace.
pub struct Firewall {
    nft: Nftables,
}

impl Firewall {
    /// Opens the firewall and declares the base ruleset if the table is missing.
    /// The caller holds nsnet's lock, so two processes cannot both declare it.
    pub fn open() -> Result<Self> {
        let mut nft = Nftables::new()?;
        if !nft.table_exists(nfnl::NFPROTO_INET, TABLE)? {
            install_base()?;
        } else if !nft.table_exists(nfnl::NFPROTO_BRIDGE, TABLE)? {
            // Declared by an nsnet without `bridge nsnet`: declare both again,
            // keeping the elements, so no chain keeps its old rules.
            redeclare_base()?;
        }
        Ok(Self { nft })
    }

    /// Whether both tables exist (the base ruleset of this nsnet is in place).
    pub fn tables_exist() -> Result<(bool, bool)> {
        let mut nft = Nftables::new()?;
        Ok((
            nft.table_exists(nfnl::NFPROTO_INET, TABLE)?,
            nft.table_exists(nfnl::NFPROTO_BRIDGE, TABLE)?,
        ))
    }

    /// Opens the firewall only if nsnet's table exists (for teardown, which must
    /// never declare anything).
    pub fn open_existing() -> Result<Option<Self>> {
        let mut nft = Nftables::new()?;
        if nft.table_exists(nfnl::NFPROTO_INET, TABLE)? {
            Ok(Some(Self { nft }))
        } else {
            Ok(None)
        }
    }

    /// Adds (or refreshes) a network's elements, in one transaction.
    pub fn add_network(&mut self, net: &NetworkRules<'_>) -> Result<()> {
        let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
        // Delete first so that re-adding after a partial earlier run cannot fail.
        for (set, elems) in network_elements(net) {
            batch_delete(&mut batch, set, &elems);
        }
        for (set, elems) in network_elements(net) {
            batch_add(&mut batch, set, &elems);
        }
        Ok(self.nft.apply(&batch)?)
    }

    /// Replaces a network's elements with those of its new definition, in one
    /// transaction (no moment without them).
    pub fn replace_network(
        &mut self,
        old: &NetworkRules<'_>,
        new: &NetworkRules<'_>,
    ) -> Result<()> {
        let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
        for (set, elems) in network_elements(old)
            .into_iter()
            .chain(network_elements(new))
        {
            batch_delete(&mut batch, set, &elems);
        }
        for (set, elems) in network_elements(new) {
            batch_add(&mut batch, set, &elems);
        }
        Ok(self.nft.apply(&batch)?)
    }

    /// Removes a network's elements by key (idempotent).
    pub fn remove_network(&mut self, net: &NetworkRules<'_>) -> Result<()> {
        let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
        for (set, elems) in network_elements(net) {
            batch_delete(&mut batch, set, &elems);
        }
        Ok(self.nft.apply(&batch)?)
    }
}

/// What the firewall holds for one endpoint: its membership of its network and
/// its published ports.
#[derive(Debug, Clone)]
pub struct EndpointRules<'a> {
    pub bridge: &'a str,
    /// The host end of its veth: its bridge port.
    pub port: &'a str,
    /// Its interface's MAC: the only source MAC its port passes.
    pub mac: [u8; 6],
    /// Its leased addresses.
    pub addresses: Vec<IpAddr>,
    /// Its IPv6 link-local address, on networks with IPv6.
    pub link_local: Option<Ipv6Addr>,
    /// On an `--isolate` network.
    pub isolated: bool,
    pub ports: &'a [Published],
}

impl EndpointRules<'_> {
    fn elements(&self) -> Vec<(&'static str, Element)> {
        let mut out = Vec::new();
        let port = || nfnl::ifname(self.port);
        out.push(("l2_macs", key(&[port(), nfnl::ether(self.mac)])));
        if self.isolated {
            out.push(("l2_isolated", key(&[port()])));
        }
        for addr in &self.addresses {
            let br = nfnl::ifname(self.bridge);
            match addr {
                IpAddr::V4(a) => {
                    out.push(("members4", key(&[br, nfnl::ipv4(*a)])));
                    out.push(("l2_addrs4", key(&[port(), nfnl::ipv4(*a)])));
                }
                IpAddr::V6(a) => {
                    out.push(("members6", key(&[br, nfnl::ipv6(*a)])));
                    out.push(("l2_addrs6", key(&[port(), nfnl::ipv6(*a)])));
                    out.push(("l2_targets6", key(&[port(), nfnl::ipv6(*a)])));
                }
            }
        }
        if let Some(ll) = self.link_local {
            out.push(("l2_addrs6", key(&[port(), nfnl::ipv6(ll)])));
            out.push(("l2_targets6", key(&[port(), nfnl::ipv6(ll)])));
        }
        for p in self.ports {
            out.extend(port_elements(p));
        }
        out
    }
}

impl Firewall {
    /// Replaces the elements of the endpoints in `remove` with those in `add`,
    /// in one transaction (either may be empty). Elements with the keys to add
    /// are deleted first, so an add cannot fail on leftovers of a crashed run.
    pub fn update_endpoints(
        &mut self,
        remove: &[EndpointRules<'_>],
        add: &[EndpointRules<'_>],
    ) -> Result<()> {
        let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
        for ep in remove.iter().chain(add) {
            for (set, elem) in ep.elements() {
                batch_delete(&mut batch, set, &[elem]);
            }
        }
        for ep in add {
            for (set, elem) in ep.elements() {
                batch_add(&mut batch, set, &[elem]);
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        Ok(self.nft.apply(&batch)?)
    }
}

impl EndpointRules<'_> {
    /// Every element this endpoint owns, by set (for `nsnet check` and
    /// `nsnet firewall reload`, which compare them with the kernel's).
    pub fn element_list(&self) -> Vec<(&'static str, Element)> {
        self.elements()
    }
}

/// Every element a network owns, one entry per element (for `nsnet check` and
/// `nsnet firewall reload`).
pub fn network_element_list(net: &NetworkRules<'_>) -> Vec<(&'static str, Element)> {
    network_elements(net)
        .into_iter()
        .flat_map(|(set, elems)| elems.into_iter().map(move |e| (set, e)))
        .collect()
}

impl Firewall {
    /// The sets and maps that lack an element of this endpoint (its membership,
    /// its published ports), one entry per missing element: what a CNI CHECK
    /// reports as drift. Looked up by key, without listing the ruleset.
    pub fn missing_endpoint_elements(
        &mut self,
        ep: &EndpointRules<'_>,
    ) -> Result<Vec<&'static str>> {
        self.missing(&ep.elements())
    }

    /// The same for a network's own elements.
    pub fn missing_network_elements(
        &mut self,
        net: &NetworkRules<'_>,
    ) -> Result<Vec<&'static str>> {
        let elems: Vec<(&'static str, Element)> = network_elements(net)
            .into_iter()
            .flat_map(|(set, elems)| elems.into_iter().map(move |e| (set, e)))
            .collect();
        self.missing(&elems)
    }

    /// The sets that lack one of `elems` (looked up by key).
    pub fn missing_elements(
        &mut self,
        elems: &[(&'static str, Element)],
    ) -> Result<Vec<&'static str>> {
        self.missing(elems)
    }

    fn missing(&mut self, elems: &[(&'static str, Element)]) -> Result<Vec<&'static str>> {
        let mut out = Vec::new();
        for (set, elem) in elems {
            let found =
                self.nft
                    .elements_exist(family_of(set), TABLE, set, std::slice::from_ref(elem))?;
            if found.first() != Some(&true) {
                out.push(*set);
            }
        }
        Ok(out)
    }
}

/// The elements of a clustered network: its bridge with its cluster CIDR in
/// `cluster4`, with each node address in `nodes4`.
pub fn cluster_elements(
    bridge: &str,
    cluster: ipnet::Ipv4Net,
    nodes: &[std::net::Ipv4Addr],
) -> Vec<(&'static str, Element)> {
    let range = |set, r: ipnet::Ipv4Net| {
        let br = nfnl::ifname(bridge);
        let start = nfnl::concat(&[br.clone(), nfnl::ipv4(r.network())]);
        let end = nfnl::concat(&[br, nfnl::ipv4(r.broadcast())]);
        (set, Element::range(start, end))
    };
    std::iter::once(range("cluster4", cluster))
        .chain(
            nodes
                .iter()
                .map(|n| range("nodes4", ipnet::Ipv4Net::from(*n))),
        )
        .collect()
}

impl Firewall {
    /// Replaces a clustered network's `cluster4` elements (`old` → `new`) in
    /// one transaction.
    pub fn update_cluster(
        &mut self,
        old: &[(&'static str, Element)],
        new: &[(&'static str, Element)],
    ) -> Result<()> {
        let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
        for (set, e) in old.iter().chain(new) {
            batch_delete(&mut batch, set, std::slice::from_ref(e));
        }
        for (set, e) in new {
            batch_add(&mut batch, set, std::slice::from_ref(e));
        }
        if batch.is_empty() {
            return Ok(());
        }
        Ok(self.nft.apply(&batch)?)
    }
}

/// The map elements of one published port (one per family it leads to).
fn port_elements(p: &Published) -> Vec<(&'static str, Element)> {
    use crate::ports::HostAddr;
    let proto = nfnl::l4proto(p.proto.number());
    let port = nfnl::port(p.host_port);
    let mut out = Vec::new();
    if let Some(v4) = p.container_v4 {
        let data = nfnl::concat(&[nfnl::ipv4(v4), nfnl::port(p.container_port)]);
        let (map, key) = match p.host {
            HostAddr::Ip(IpAddr::V4(h)) => (
                "ports4",
                nfnl::concat(&[nfnl::ipv4(h), proto.clone(), port.clone()]),
            ),
            _ => ("ports4_any", nfnl::concat(&[proto.clone(), port.clone()])),
        };
        out.push((map, Element::with_data(key, data)));
    }
    if let Some(v6) = p.container_v6 {
        let data = nfnl::concat(&[nfnl::ipv6(v6), nfnl::port(p.container_port)]);
        let (map, key) = match p.host {
            HostAddr::Ip(IpAddr::V6(h)) => ("ports6", nfnl::concat(&[nfnl::ipv6(h), proto, port])),
            _ => ("ports6_any", nfnl::concat(&[proto, port])),
        };
        out.push((map, Element::with_data(key, data)));
    }
    out
}

fn key(fields: &[Vec<u8>]) -> Element {
    Element::new(nfnl::concat(fields))
}

/// Every element a network owns, by set.
fn network_elements(net: &NetworkRules<'_>) -> Vec<(&'static str, Vec<Element>)> {
    let br = || nfnl::ifname(net.bridge);
    let mut out = vec![
        ("bridges", vec![key(&[br()])]),
        ("bridge_pairs", vec![key(&[br(), br()])]),
    ];
    if net.isolate {
        out.push(("isolated", vec![key(&[br()])]));
    }
    if net.routed && !net.internal {
        out.push(("routed", vec![key(&[br()])]));
    }
    if net.internal {
        out.push(("internal", vec![key(&[br()])]));
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for gw in &net.gateways {
            match gw {
                IpAddr::V4(a) => v4.push(key(&[br(), nfnl::ipv4(*a)])),
                IpAddr::V6(a) => v6.push(key(&[br(), nfnl::ipv6(*a)])),
            }
        }
        if !v4.is_empty() {
            out.push(("gateways4", v4));
        }
        if !v6.is_empty() {
            out.push(("gateways6", v6));
        }
    } else if net.masquerade {
        out.push(("masq", vec![key(&[br()])]));
    }
    out
}

/// Declares the base ruleset in one `nft -f -` transaction, in its
/// idempotent form ([`redeclare_base`]): an `nft` whose parent nsnet was
/// killed can still commit after another nsnet took the lock and found no
/// table (found by the crash test among concurrent operations: every chain's
/// rules doubled), and a plain declaration over an existing table appends
/// its rules again.
fn install_base() -> Result<()> {
    redeclare_base()
}

/// The chains of the base ruleset, by name (both tables; see [`family_of`]).
pub fn base_chains() -> impl Iterator<Item = &'static str> {
    BASE_RULESET.lines().filter_map(|l| {
        l.trim()
            .strip_prefix("chain ")
            .and_then(|r| r.strip_suffix(" {"))
    })
}

/// Declares the base ruleset again in one `nft -f` transaction, keeping every
/// element: the base is declared (creating what is missing, appending its
/// rules), every chain flushed, and the base declared once more, so each
/// chain ends up with exactly the base's rules whatever it held before.
pub fn redeclare_base() -> Result<()> {
    let mut script = String::from(BASE_RULESET);
    for chain in base_chains() {
        script.push_str(&format!(
            "flush chain {} {TABLE} {chain}\n",
            family_name(chain)
        ));
    }
    script.push_str(BASE_RULESET);
    nft_script(&script)
}

/// Runs `script` through `nft -f -`: one transaction, all or nothing.
pub(crate) fn nft_script(script: &str) -> Result<()> {
    nft::script(script).map_err(Error::Nft)
}
