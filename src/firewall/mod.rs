//! nsnet's firewall: one nftables table, `inet nsnet`, and nothing else.
//!
//! The table's chains, sets and maps (the base ruleset, [`BASE_RULESET`]) are
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
//!   masqueraded.
//!
//! Policy of every chain is accept: packets that touch no nsnet bridge are left
//! to the host's own firewall, untouched.

pub mod nfnl;

use nfnl::{Batch, Element, Nftables};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The table nsnet owns.
pub const TABLE: &str = "nsnet";

/// The base ruleset, declared once (see the module docs).
pub const BASE_RULESET: &str = r#"table inet nsnet {
	comment "managed by nsnet: its sets are changed on every connect and disconnect"
	set bridges { type ifname; }
	set bridge_pairs { type ifname . ifname; }
	set internal { type ifname; }
	set masq { type ifname; }
	set gateways4 { type ifname . ipv4_addr; }
	set gateways6 { type ifname . ipv6_addr; }

	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname @bridges jump from_bridge
		oifname @bridges jump to_bridge
	}
	chain from_bridge {
		ct state established,related accept
		iifname . oifname @bridge_pairs counter accept
		oifname @bridges drop
		iifname @internal drop
		accept
	}
	chain to_bridge {
		ct state established,related accept
		ct status dnat accept
		oifname @internal drop
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
		meta l4proto ipv6-icmp accept
		drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		iifname @masq oifname != @bridges masquerade
	}
}
"#;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nftables: {0}")]
    Nfnl(#[from] nfnl::Error),
    #[error("installing the base ruleset with nft: {0}")]
    Nft(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What the firewall needs to know of a network.
#[derive(Debug, Clone)]
pub struct NetworkRules<'a> {
    pub bridge: &'a str,
    pub internal: bool,
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
        }
        Ok(Self { nft })
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
            batch.delete_elements(set, &elems);
        }
        for (set, elems) in network_elements(net) {
            batch.add_elements(set, &elems);
        }
        Ok(self.nft.apply(&batch)?)
    }

    /// Removes a network's elements by key (idempotent).
    pub fn remove_network(&mut self, net: &NetworkRules<'_>) -> Result<()> {
        let mut batch = Batch::new(nfnl::NFPROTO_INET, TABLE);
        for (set, elems) in network_elements(net) {
            batch.delete_elements(set, &elems);
        }
        Ok(self.nft.apply(&batch)?)
    }
}

fn key(fields: &[Vec<u8>]) -> Element {
    Element {
        key: nfnl::concat(fields),
        data: None,
        verdict: None,
    }
}

/// Every element a network owns, by set.
fn network_elements(net: &NetworkRules<'_>) -> Vec<(&'static str, Vec<Element>)> {
    let br = || nfnl::ifname(net.bridge);
    let mut out = vec![
        ("bridges", vec![key(&[br()])]),
        ("bridge_pairs", vec![key(&[br(), br()])]),
    ];
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

/// Declares the base ruleset in one `nft -f -` transaction.
fn install_base() -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "cannot run nft ({e}); install the nftables package"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(BASE_RULESET.as_bytes())
            .map_err(|e| Error::Nft(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(e.to_string()))?;
    if !out.status.success() {
        return Err(Error::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}
