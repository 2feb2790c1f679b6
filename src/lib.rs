//! nsnet: container networking for Linux, built from kernel objects (network
//! namespaces, veth pairs, bridges, addresses, routes and nftables rules).
//!
//! The crate is laid out by the layers of `DESIGN.md`; data flows down, never up:
//!
//! ```text
//!  cli (clap)
//!      |
//!  ops          the only layer that knows the order of steps; rolls back on failure
//!   |      \
//!  netlink  netns
//! ```
//!
//! - [`names`]: validated names (namespace names, interface names). Parse, don't validate:
//!   everything below the CLI takes these types, never raw strings.
//! - [`netlink`]: a small synchronous rtnetlink client (links, addresses, routes).
//! - [`netns`]: named namespaces under `/run/netns`, opened by name, path or PID, and
//!   entered on throwaway threads.
//! - [`safefs`]: nsnet's directories 0700, its databases 0600, and files beneath
//!   the state directory opened without following symlinks.
//! - [`doctor`]: why a packet does not get from one place to another.
//! - [`ops`]: the operations the CLI (and later the CNI plugin) perform.

pub mod cni;
pub mod doctor;
pub mod firewall;
pub mod graph;
pub mod ipam;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod ops;
pub mod pause;
pub mod ports;
pub mod privilege;
pub mod progress;
pub mod safefs;
pub mod store;
