//! `nsnet gc`: removes what is left of endpoints, pods, runs and operations
//! that are gone, under the operations lock held exclusively (see
//! [`super`]), in this order:
//!
//! 1. endpoints named by journals of killed connects and disconnects;
//! 2. dead pods (pause process gone; or a creation that was killed);
//! 3. `nsnet run` namespaces whose run process is gone and in which no
//!    process is left (a killed run's command keeps its network);
//! 4. endpoints whose network is not defined (and then their bridge, if no
//!    network owns it and no port is left on it); endpoints whose host veth
//!    is gone (their namespace was deleted, or a connect died before it made
//!    the veth): leases, ports, firewall elements; and endpoints whose
//!    namespace is gone (by its inode) while the kernel has not yet destroyed
//!    their veth: the veth as well. Then networks whose bridge was deleted
//!    under live endpoints get it back, and their veths are attached to it
//!    again;
//! 5. `nsv…` veths on this store's bridges that no endpoint owns;
//! 6. bridges left half made by a first connect that was killed (down, no
//!    gateway, sysctls or firewall elements missing) when no endpoint and no
//!    interface uses them: the next connect makes them again, whole;
//! 7. leases and ports whose endpoint has no record;
//! 8. firewall elements of this store's networks that nothing owns;
//! 9. rules in other firewalls (`firewall::foreign`): those of networks that
//!    are gone or down are deleted, those up networks lack are put back.
//!
//! Every step goes on past errors; they are all returned at the end.

use super::table::{self, Base, ElementDrift, Expected};
use super::{endpoint_label, Exclusive, InFlight};
use crate::firewall::{EndpointRules, Firewall};
use crate::netlink::{Link, LinkKind, Netlink};
use crate::ops::alive::Liveness;
use crate::ops::{endpoint, nl_err, pod, Context, Result};
use crate::privilege::require_admin;
use crate::store::{Endpoint, NetworkSpec, State};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One thing gc removed.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// endpoint, veth, pod, run, bridge, lease, port, element.
    pub kind: &'static str,
    pub object: String,
    /// Why it was garbage.
    pub reason: String,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "removed {} {}: {}", self.kind, self.object, self.reason)
    }
}

/// What gc did, and what it left and why.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub removed: Vec<Removed>,
    /// Garbage kept on purpose (a dead pod whose members still run).
    pub kept: Vec<String>,
    /// What was missing and is back: nsnet's rules in other firewalls that a
    /// reload of Docker, firewalld or the user's firewall dropped.
    pub restored: Vec<String>,
    /// What was put right (a deleted bridge made again, its endpoints' veths
    /// attached to it again).
    pub repaired: Vec<String>,
    pub errors: Vec<String>,
}

struct Gc<'a> {
    ctx: &'a Context,
    networks: Vec<NetworkSpec>,
    state: State,
    host: Netlink,
    report: GcReport,
}

/// Runs gc; errors of single objects are in the report, not returned.
pub fn gc(ctx: &Context) -> Result<GcReport> {
    require_admin()?;
    let _ops = Exclusive::acquire(ctx)?;
    let journals = super::interrupted(ctx)?;
    let mut gc = Gc::new(ctx)?;
    let mut progress =
        crate::progress::Progress::new("gc: finishing interrupted operations", journals.len());
    for j in journals {
        gc.journal(j);
        progress.tick();
    }
    drop(progress);
    gc.pods()?;
    gc.runs();
    gc.undefined_networks()?;
    gc.vanished_endpoints()?;
    gc.detached_ports()?;
    gc.stray_veths()?;
    gc.half_made_networks()?;
    gc.orphans()?;
    gc.stale_elements()?;
    gc.foreign_rules()?;
    Ok(gc.report)
}

/// For `nsnet run --name ID` that finds the name taken: collects run `ID`
/// as gc would if nothing of it runs any more (its `nsnet run` process is
/// gone and no process is left in its namespace). Returns whether the name
/// is free now.
pub fn collect_run(ctx: &Context, id: &str) -> Result<bool> {
    let _ops = Exclusive::acquire(ctx)?;
    let path = super::runs_dir(ctx).join(id);
    if path.exists() {
        let mut gc = Gc::new(ctx)?;
        gc.run(&path, id.to_owned());
        for line in gc.report.errors.iter().chain(&gc.report.kept) {
            tracing::debug!("run {id}: {line}");
        }
    }
    Ok(!path.exists())
}

/// An endpoint as gc's lines name it: id, namespace, interface, what it holds.
fn holdings(ep: &Endpoint) -> String {
    let mut parts: Vec<String> = ep.addresses.iter().map(|a| a.to_string()).collect();
    parts.extend(ep.ports.iter().map(|p| p.to_string()));
    format!("{} {} {}", ep.owner(), ep.ifname, parts.join(" "))
}

impl<'a> Gc<'a> {
    fn new(ctx: &'a Context) -> Result<Self> {
        Ok(Gc {
            ctx,
            networks: ctx.config()?.networks()?,
            state: ctx.state()?,
            host: Netlink::new().map_err(nl_err("host", "opening netlink"))?,
            report: GcReport::default(),
        })
    }

    fn bridge_of(&self, ep: &Endpoint) -> String {
        self.networks
            .iter()
            .find(|n| n.name == ep.network)
            .map(|n| n.bridge.clone())
            .unwrap_or_default()
    }

    /// Tears an endpoint down (journaled, so a gc killed meanwhile is finished
    /// by the next one); true when nothing failed.
    fn release(&mut self, ep: &Endpoint, reason: &str) -> bool {
        let bridge = self.bridge_of(ep);
        self.release_on(ep, &bridge, reason)
    }

    /// [`Gc::release`] of an endpoint on bridge `bridge`.
    fn release_on(&mut self, ep: &Endpoint, bridge: &str, reason: &str) -> bool {
        let journal = match InFlight::begin(self.ctx, [ep.id.as_str()]) {
            Ok(j) => j,
            Err(e) => {
                self.report
                    .errors
                    .push(format!("{}: {e}", endpoint_label(ep)));
                return false;
            }
        };
        let errors = endpoint::teardown(&mut self.host, &mut self.state, bridge, ep);
        drop(journal);
        if errors.is_empty() {
            self.report.removed.push(Removed {
                kind: "endpoint",
                // The id alone: `gc --json` keeps prose out of `object`.
                object: ep.id.clone(),
                reason: format!("{reason} (it held {})", holdings(ep)),
            });
            true
        } else {
            self.report
                .errors
                .push(format!("{}: {}", endpoint_label(ep), errors.join("; ")));
            false
        }
    }

    fn endpoints(&mut self) -> Result<Vec<Endpoint>> {
        Ok(self.state.endpoints(None)?)
    }

    fn links(&mut self) -> Result<Vec<Link>> {
        self.host
            .links()
            .map_err(nl_err("host", "listing interfaces"))
    }

    /// Step 1: a journal left by a killed connect or disconnect: the endpoint
    /// may be half made or half removed; either way it goes.
    fn journal(&mut self, j: super::Interrupted) {
        let record = match self.endpoints() {
            Ok(eps) => eps.into_iter().find(|e| e.host_ifname == j.host_ifname),
            Err(e) => {
                self.report.errors.push(e.to_string());
                return;
            }
        };
        let ok = match record {
            Some(ep) => self.release(&ep, "an operation on it was interrupted (its process died)"),
            // No record: the connect died before recording, or the disconnect
            // after releasing. A veth cannot outlive both, but make sure.
            None => match self.host.link_by_name(&j.host_ifname) {
                Ok(Some(l)) if l.kind == LinkKind::Veth => match self.host.delete_link(l.index) {
                    Ok(()) => {
                        self.report.removed.push(Removed {
                            kind: "veth",
                            object: j.host_ifname.clone(),
                            reason: format!("left by an interrupted operation on {}", j.label()),
                        });
                        true
                    }
                    Err(e) => {
                        self.report
                            .errors
                            .push(format!("veth {}: {e}", j.host_ifname));
                        false
                    }
                },
                Ok(_) => true,
                Err(e) => {
                    self.report
                        .errors
                        .push(format!("veth {}: {e}", j.host_ifname));
                    false
                }
            },
        };
        if ok {
            if let Err(e) = std::fs::remove_file(&j.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.report
                        .errors
                        .push(format!("removing {}: {e}", j.path.display()));
                }
            }
        }
    }

    /// Step 2: pods whose pause process is gone, and pods whose creation died.
    fn pods(&mut self) -> Result<()> {
        let abandoned = super::abandoned_pods(self.ctx, &self.state)?;
        let pods = self.state.pods()?;
        let recorded: Vec<u32> = pods.iter().map(|p| p.pid).filter(|&p| p != 0).collect();
        for p in pods {
            if pod::alive(&p) {
                continue;
            }
            let reason = if p.pid == 0 {
                // Pending in both reads, and nobody could finish it in between.
                if !abandoned.contains(&p.name) {
                    continue;
                }
                "its creation was interrupted".to_owned()
            } else {
                let members = pod::members(self.ctx, &p);
                if !members.is_empty() {
                    self.report.kept.push(format!(
                        "pod {}: its pause process {} is gone but {} member(s) run (PIDs {:?}); nsnet pod rm --force {} removes them",
                        p.name, p.pid, members.len(), members, p.name
                    ));
                    continue;
                }
                format!("its pause process {} is gone", p.pid)
            };
            // A pod whose PID was never recorded has no inode either, so
            // `pod rm` cannot tell its `ip netns` name is its own: compare
            // the name with the pinned namespace here.
            let name_ours = p.net_inode == 0 && self.netns_name_is_pods(&p.name);
            // Its only members are the pause process (orphaned by the
            // creator's death) and nothing else: no `pod exec` runs in a pod
            // that never came alive.
            let force = p.pid == 0;
            let mut errors = Vec::new();
            if p.pid == 0 {
                // Killed before its namespaces were pinned, the pause is
                // found by nothing else.
                for pid in super::unrecorded_pauses(&recorded, &p.hostname) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
            if let Err(e) = pod::remove(self.ctx, &p.name, force) {
                // Unless a `pod rm` beside this gc removed it first.
                if self.state.pods()?.iter().any(|q| q.name == p.name) {
                    errors.push(e.to_string());
                }
            }
            if name_ours {
                if let Ok(n) = p.name.parse::<crate::names::NetnsName>() {
                    if crate::netns::named_path(&n).exists() {
                        if let Err(e) = crate::netns::delete(&n) {
                            errors.push(e.to_string());
                        }
                    }
                }
            }
            if errors.is_empty() {
                self.report.removed.push(Removed {
                    kind: "pod",
                    object: p.name.clone(),
                    reason,
                });
            } else {
                self.report
                    .errors
                    .push(format!("pod {}: {}", p.name, errors.join("; ")));
            }
        }
        Ok(())
    }

    /// Whether `/run/netns/NAME` is the namespace pinned for pod NAME.
    fn netns_name_is_pods(&self, name: &str) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(n) = name.parse::<crate::names::NetnsName>() else {
            return false;
        };
        let pinned = std::fs::metadata(super::pod_dir(self.ctx, name).join("net"));
        let named = std::fs::metadata(crate::netns::named_path(&n));
        match (pinned, named) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev() && a.ino() != 0,
            _ => false,
        }
    }

    /// Step 3: `nsnet run` namespaces (`runs/ID`) whose run process is gone:
    /// its PID and start time are in the `pid` file (a PID alone, in the name
    /// `run-PID` or an older file, when that is all there is). A PID given to
    /// another process since does not keep the run.
    /// A directory without either was left by a run killed while it started
    /// (it makes them under the operations lock, so none is in the making).
    fn runs(&mut self) {
        let dir = super::runs_dir(self.ctx);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            self.run(&entry.path(), id);
        }
    }

    /// Step 3 for the run whose directory is `path`. A run lives as long as
    /// any process is in its namespace: its command outlives a killed `nsnet
    /// run` (or has children that do), and needs the network it was given.
    fn run(&mut self, path: &std::path::Path, id: String) {
        {
            // `PID\nSTART\n`; from before start times were kept, `PID\n`.
            let recorded =
                std::fs::read_to_string(path.join(crate::ops::run::PID_FILE)).unwrap_or_default();
            let mut lines = recorded.lines().map(|l| l.trim().parse::<u64>().ok());
            let (pid, start) = match (lines.next().flatten(), lines.next().flatten()) {
                (Some(pid), start) => (u32::try_from(pid).ok(), start),
                (None, _) => (
                    id.strip_prefix("run-").and_then(|p| p.parse::<u32>().ok()),
                    None,
                ),
            };
            if pid.is_some_and(|p| super::recorded_process_runs(p, start)) {
                return;
            }
            let left = crate::ops::alive::processes_in(&path.join("net"));
            if !left.is_empty() {
                self.report.kept.push(format!(
                    "run {id}: its nsnet run process{} is gone but {} process(es) still run in its namespace (PIDs {left:?}); they keep its network until they end",
                    pid.map(|p| format!(" {p}")).unwrap_or_default(),
                    left.len(),
                ));
                return;
            }
            let (gone, endpoint_gone) = match pid {
                Some(pid) => (
                    format!("its nsnet run process {pid} is gone"),
                    format!("its nsnet run (PID {pid}) is gone"),
                ),
                None => {
                    let why = "its nsnet run was killed while it started".to_owned();
                    (why.clone(), why)
                }
            };
            let suffix = format!("/run:{id}");
            let eps = match self.endpoints() {
                Ok(eps) => eps,
                Err(e) => {
                    self.report.errors.push(e.to_string());
                    return;
                }
            };
            let mut ok = true;
            for ep in eps.iter().filter(|e| e.id.ends_with(&suffix)) {
                ok &= self.release(ep, &endpoint_gone);
            }
            let net = path.join("net");
            let _ = rustix::mount::unmount(&net, rustix::mount::UnmountFlags::DETACH);
            for r in [
                std::fs::remove_file(&net),
                std::fs::remove_file(path.join(crate::ops::run::PID_FILE)),
                std::fs::remove_dir(path),
            ] {
                if let Err(e) = r {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        self.report.errors.push(format!("run {id}: {e}"));
                        ok = false;
                    }
                }
            }
            if ok {
                self.report.removed.push(Removed {
                    kind: "run",
                    object: id,
                    reason: gone,
                });
            }
        }
    }

    /// Step 4a: endpoints whose network is not defined, what a `network rm`
    /// that raced their connect left before networks had locks of their own
    /// (a store of that time may still hold them): each is released, on the
    /// bridge its veth is on; then such a bridge, when no defined network owns
    /// it and no port is left on it, goes with its elements.
    fn undefined_networks(&mut self) -> Result<()> {
        let orphans: Vec<Endpoint> = self
            .endpoints()?
            .into_iter()
            .filter(|e| !self.networks.iter().any(|n| n.name == e.network))
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        let links = self.links()?;
        let mut bridges: Vec<(u32, String)> = Vec::new();
        for ep in &orphans {
            let bridge = links
                .iter()
                .find(|l| l.name == ep.host_ifname)
                .and_then(|l| l.master)
                .and_then(|m| links.iter().find(|b| b.index == m))
                .filter(|b| b.kind == LinkKind::Bridge)
                .map(|b| (b.index, b.name.clone()));
            let name = bridge.as_ref().map(|b| b.1.clone()).unwrap_or_default();
            let reason = format!("its network {} is not defined", ep.network);
            self.release_on(ep, &name, &reason);
            if let Some(b) = bridge.filter(|b| !bridges.contains(b)) {
                bridges.push(b);
            }
        }
        let links = self.links()?;
        for (index, name) in bridges {
            if self.networks.iter().any(|n| n.bridge == name)
                || links.iter().any(|l| l.master == Some(index))
            {
                continue;
            }
            self.ownerless_bridge(index, &name);
        }
        Ok(())
    }

    /// Deletes bridge `name` (index `index`), which no network owns, and every
    /// element a network on it could have had (deletes skip missing ones).
    fn ownerless_bridge(&mut self, index: u32, name: &str) {
        let gateways: Vec<std::net::IpAddr> = self
            .host
            .addresses(Some(index))
            .map(|a| a.into_iter().map(|a| a.net.addr()).collect())
            .unwrap_or_default();
        let mut errors = Vec::new();
        if let Err(e) = self.host.delete_link(index) {
            errors.push(format!("deleting bridge {name}: {e}"));
        }
        if let Ok(Some(mut fw)) = Firewall::open_existing() {
            for internal in [true, false] {
                let rules = crate::firewall::NetworkRules {
                    bridge: name,
                    internal,
                    isolate: true,
                    routed: true,
                    masquerade: true,
                    gateways: gateways.clone(),
                };
                if let Err(e) = fw.remove_network(&rules) {
                    errors.push(e.to_string());
                }
            }
        }
        if errors.is_empty() {
            self.report.removed.push(Removed {
                kind: "bridge",
                object: name.to_owned(),
                reason: "no network owns it and no port is left on it".into(),
            });
        } else {
            self.report
                .errors
                .push(format!("bridge {name}: {}", errors.join("; ")));
        }
    }

    /// Step 4: endpoints whose namespace is gone. Most lost their host veth
    /// with it, so what is left is elements, flows and leases: the elements
    /// of all of them go in one transaction (a transaction costs the kernel an
    /// RCU grace period, whatever its size), then each is released. One whose
    /// veth still exists (the kernel is still destroying its namespace) is
    /// known by its namespace's inode, and torn down whole, veth included: a
    /// check right after gc must not find it half gone.
    fn vanished_endpoints(&mut self) -> Result<()> {
        let names: HashSet<String> = self.links()?.into_iter().map(|l| l.name).collect();
        let (gone, present): (Vec<Endpoint>, Vec<Endpoint>) = self
            .endpoints()?
            .into_iter()
            .partition(|e| !names.contains(&e.host_ifname));
        let mut liveness = Liveness::default();
        for ep in present.iter().filter(|e| liveness.namespace_gone(e)) {
            let reason = format!(
                "its namespace {} (inode {}) is gone; its host veth {} was still being destroyed",
                ep.target, ep.netns_inode, ep.host_ifname
            );
            self.release(ep, &reason);
        }
        if gone.is_empty() {
            return Ok(());
        }
        let journal = InFlight::begin(self.ctx, gone.iter().map(|e| e.id.as_str()))?;
        let bridges: Vec<String> = gone.iter().map(|e| self.bridge_of(e)).collect();
        let rules: Vec<EndpointRules<'_>> = gone
            .iter()
            .zip(&bridges)
            .map(|(ep, bridge)| crate::ops::endpoint::rules(bridge, true, ep))
            .collect();
        let batched = match Firewall::open_existing() {
            Ok(Some(mut fw)) => fw.update_endpoints(&rules, &[]).is_ok(),
            Ok(None) => true,
            Err(_) => false,
        };
        let mut progress = crate::progress::Progress::new("gc: releasing endpoints", gone.len());
        for ep in &gone {
            progress.tick();
            let reason = format!(
                "its host veth {} is gone (its namespace was deleted)",
                ep.host_ifname
            );
            if !batched {
                // Each on its own, so the error names the endpoint.
                self.release(ep, &reason);
                continue;
            }
            let mut errors = Vec::new();
            if let Err(e) = endpoint::forget_port_flows(&ep.ports) {
                errors.push(e.to_string());
            }
            errors.extend(crate::ops::source_routes::delete_for(ep));
            if let Err(e) = self.state.release(&ep.id) {
                errors.push(e.to_string());
            }
            if errors.is_empty() {
                self.report.removed.push(Removed {
                    kind: "endpoint",
                    object: ep.id.clone(),
                    reason: format!("{reason} (it held {})", holdings(ep)),
                });
            } else {
                self.report
                    .errors
                    .push(format!("{}: {}", endpoint_label(ep), errors.join("; ")));
            }
        }
        // What failed is still recorded: the next gc tries it again.
        drop(journal);
        Ok(())
    }

    /// Step 4b: networks whose bridge was deleted under their endpoints
    /// (`ip link del nsbr-NAME` detaches the bridge's ports, it does not
    /// delete them): the bridge is made again, whole, and the endpoints'
    /// veths are attached to it again.
    fn detached_ports(&mut self) -> Result<()> {
        let _lock = crate::ops::lock::Lock::acquire(&self.ctx.state_dir).map_err(|e| {
            crate::ops::Error::Io {
                what: format!("locking {}", self.ctx.state_dir.display()),
                source: e,
            }
        })?;
        for spec in self.networks.clone() {
            match crate::ops::network::repair_ports(self.ctx, &mut self.host, &spec) {
                Ok(lines) => self.report.repaired.extend(lines),
                Err(e) => self
                    .report
                    .errors
                    .push(format!("network {}: {e}", spec.name)),
            }
        }
        Ok(())
    }

    /// Step 5: veths named like nsnet's on this store's bridges, with no record.
    fn stray_veths(&mut self) -> Result<()> {
        let links = self.links()?;
        let bridges: HashMap<u32, &str> = links
            .iter()
            .filter(|l| l.kind == LinkKind::Bridge)
            .filter(|l| self.networks.iter().any(|n| n.bridge == l.name))
            .map(|l| (l.index, l.name.as_str()))
            .collect();
        let owned: HashSet<String> = self
            .endpoints()?
            .into_iter()
            .map(|e| e.host_ifname)
            .collect();
        for l in &links {
            let Some(bridge) = l.master.and_then(|m| bridges.get(&m)) else {
                continue;
            };
            if l.kind != LinkKind::Veth
                || !super::is_host_veth_name(&l.name)
                || owned.contains(&l.name)
            {
                continue;
            }
            match self.host.delete_link(l.index) {
                Ok(()) => self.report.removed.push(Removed {
                    kind: "veth",
                    object: format!("{} (on {bridge})", l.name),
                    reason: "no endpoint owns it".into(),
                }),
                Err(e) if e.errno() == Some(libc::ENODEV) => {}
                Err(e) => self.report.errors.push(format!("veth {}: {e}", l.name)),
            }
        }
        Ok(())
    }

    /// Step 6: bridges of networks nobody uses that a killed connect left
    /// half made. (A network in use is never taken down: check reports it.)
    fn half_made_networks(&mut self) -> Result<()> {
        let links = self.links()?;
        let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
        let endpoints = self.endpoints()?;
        let listing = table::list()?;
        for spec in self.networks.clone() {
            let Some(bridge) = by_name.get(spec.bridge.as_str()) else {
                continue;
            };
            if bridge.kind != LinkKind::Bridge
                || endpoints.iter().any(|e| e.network == spec.name)
                || links.iter().any(|l| l.master == Some(bridge.index))
            {
                continue;
            }
            let mut problems = super::check::network_problems(&mut self.host, &spec, &by_name)?;
            if table::lacks_network_elements(listing.as_ref(), &spec) {
                problems.push("firewall elements missing".into());
            }
            if problems.is_empty() {
                continue;
            }
            let mut errors = Vec::new();
            if let Err(e) = self.host.delete_link(bridge.index) {
                errors.push(format!("deleting bridge {}: {e}", spec.bridge));
            }
            match Firewall::open_existing() {
                Ok(Some(mut fw)) => {
                    if let Err(e) = fw.remove_network(&crate::ops::network::rules(&spec)) {
                        errors.push(e.to_string());
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
            if errors.is_empty() {
                self.report.removed.push(Removed {
                    kind: "bridge",
                    object: format!("{} of network {}", spec.bridge, spec.name),
                    reason: format!(
                        "half made and unused ({}); the next connect makes it whole",
                        problems.join("; ")
                    ),
                });
            } else {
                self.report
                    .errors
                    .push(format!("network {}: {}", spec.name, errors.join("; ")));
            }
        }
        Ok(())
    }

    /// Step 7: leases and ports whose endpoint has no record.
    fn orphans(&mut self) -> Result<()> {
        let orphans = self.state.orphans()?;
        let mut owners: Vec<&str> = orphans.iter().map(|(o, _, _)| o.as_str()).collect();
        owners.dedup();
        for owner in owners {
            if let Err(e) = self.state.release(owner) {
                self.report.errors.push(format!("releasing {owner}: {e}"));
                continue;
            }
            for (_, network, what) in orphans.iter().filter(|(o, _, _)| o == owner) {
                let kind = if what.starts_with("port") {
                    "port"
                } else {
                    "lease"
                };
                let what = what.split_once(' ').map_or(what.as_str(), |(_, w)| w);
                self.report.removed.push(Removed {
                    kind,
                    object: format!("{what} of network {network}"),
                    reason: format!("its endpoint {owner} has no record"),
                });
            }
        }
        Ok(())
    }

    /// Step 9: nsnet's rules in other firewalls, and the kernel side of
    /// clustered networks (routes, VXLAN device, entries) put back.
    fn foreign_rules(&mut self) -> Result<()> {
        let endpoints = self.endpoints()?;
        let up = table::up_networks(&mut self.host, &self.networks, &endpoints)?;
        for spec in self.networks.iter().filter(|n| up.contains(&n.name)) {
            match crate::ops::cluster::reapply(self.ctx, spec) {
                Ok(applied) => self.report.restored.extend(
                    applied
                        .added
                        .iter()
                        .map(|a| format!("{a} of network {}'s cluster", spec.name)),
                ),
                Err(e) => self
                    .report
                    .errors
                    .push(format!("network {}'s cluster: {e}", spec.name)),
            }
        }
        let outcome = super::foreign::reconcile(self.ctx, &self.networks, &up)?;
        for (network, rule, why) in outcome.removed {
            self.report.removed.push(Removed {
                kind: "rule",
                object: format!("{rule} of network {network}"),
                reason: why,
            });
        }
        self.report.restored.extend(
            outcome
                .added
                .into_iter()
                .map(|(network, rule)| format!("{rule} of network {network}")),
        );
        self.report.errors.extend(outcome.errors);
        Ok(())
    }

    /// Step 8: elements of this store's networks that nothing owns.
    fn stale_elements(&mut self) -> Result<()> {
        let Some(listing) = table::list()? else {
            return Ok(());
        };
        let endpoints = self.endpoints()?;
        let up = table::up_networks(&mut self.host, &self.networks, &endpoints)?;
        let base = Base::new();
        let clusters = self.ctx.config()?.clusters()?;
        let expected = Expected::new(&self.networks, &endpoints, &clusters, |n| {
            up.contains(&n.name)
        });
        let drift: Vec<ElementDrift<'_>> = expected
            .compare(&base, Some(&listing))
            .into_iter()
            .filter(|d| matches!(d, ElementDrift::Stale { .. }))
            .collect();
        match table::delete_stale(&base, &drift) {
            Ok(done) => self
                .report
                .removed
                .extend(done.into_iter().map(|(elem, set)| Removed {
                    kind: "element",
                    object: format!("{elem} of {set}"),
                    reason: "no endpoint or network owns it".into(),
                })),
            Err(e) => self.report.errors.push(e.to_string()),
        }
        Ok(())
    }
}
