//! The walk: a pure function of [`Facts`] and the request.
//!
//! It follows the packet as the kernel would: a route lookup (longest prefix
//! match over the main table) in each namespace, out through an interface, to
//! the veth's far end or, on a bridge, to the port whose namespace holds the
//! next hop's address. Every namespace that forwards is checked for the
//! forwarding sysctl, rp_filter, nsnet's rules (networks isolated from each
//! other, internal networks, masqueraded networks reached from outside) and
//! every foreign base chain on the hooks the packet passes. It stops at the
//! first failure, which carries the fix.

use super::{Destination, Error, Facts, Hop, Place, Report, Result, Status};
use crate::graph::{Interface, Namespace, Network};
use crate::netlink::Route;
use crate::ports::Proto;
use ipnet::IpNet;
use std::net::IpAddr;

mod bridge;
mod checks;
mod cluster;
mod firewall;
mod fixes;

/// More hops than any real path has: a routing loop ends here.
const MAX_STEPS: usize = 16;

/// The namespace nsnet runs in, where its bridges and table live.
const HOST: usize = 0;

pub fn walk(f: &Facts, from: &Place, to: &Destination) -> Result<Report> {
    let s = resolve_from(f, from)?;
    let d = resolve_to(f, s, &to.place)?;
    let mut w = Walker {
        f,
        hops: Vec::new(),
        src: match from {
            Place::Address(a) => Some(*a),
            _ => None,
        },
        d,
        port: to.port,
        dnat: false,
        s,
    };
    w.run();
    let clear = !w.hops.iter().any(|h| h.status == Status::Fail);
    Ok(Report {
        from: from.to_string(),
        to: to.place.to_string(),
        source: w.src,
        destination: d,
        port: to.port.map(|(p, proto)| format!("{p}/{proto}")),
        hops: w.hops,
        clear,
    })
}

fn ns_index(f: &Facts, name: &str) -> Option<usize> {
    f.topology
        .namespaces
        .iter()
        .position(|n| n.name == name || n.aliases.iter().any(|a| a == name))
}

/// The namespace (and interface) holding an address; host first.
fn holder(f: &Facts, ip: IpAddr) -> Option<(usize, usize)> {
    for (n, ns) in f.topology.namespaces.iter().enumerate() {
        for (i, iface) in ns.interfaces.iter().enumerate() {
            if iface.kind != "loopback" && iface.addresses.iter().any(|a| a.addr() == ip) {
                return Some((n, i));
            }
        }
    }
    None
}

fn resolve_from(f: &Facts, from: &Place) -> Result<usize> {
    match from {
        Place::Host => Ok(HOST),
        Place::Namespace(n) => {
            ns_index(f, n).ok_or_else(|| Error::BadInput(format!("no namespace or pod named {n}")))
        }
        Place::Address(a) => holder(f, *a).map(|(n, _)| n).ok_or_else(|| {
            Error::BadInput(format!(
                "no namespace of this host has address {a}: FROM must be local"
            ))
        }),
    }
}

fn global(a: &IpNet) -> bool {
    match a.addr() {
        IpAddr::V4(v4) => !v4.is_loopback(),
        IpAddr::V6(v6) => !v6.is_loopback() && v6.segments()[0] & 0xffc0 != 0xfe80,
    }
}

/// The address to walk to: TO itself, or the address of the namespace TO names
/// that FROM most likely means (its gateway, one on a shared subnet, the first).
fn resolve_to(f: &Facts, s: usize, to: &Place) -> Result<IpAddr> {
    let t = match to {
        Place::Address(a) => return Ok(*a),
        Place::Host => HOST,
        Place::Namespace(n) => ns_index(f, n)
            .ok_or_else(|| Error::BadInput(format!("no namespace or pod named {n}")))?,
    };
    let topo = &f.topology;
    let src_nets: Vec<IpNet> = topo.namespaces[s]
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter().copied())
        .filter(global)
        .collect();
    let candidates: Vec<IpNet> = topo.namespaces[t]
        .interfaces
        .iter()
        .filter(|i| i.kind != "loopback")
        .flat_map(|i| i.addresses.iter().copied())
        .filter(global)
        .collect();
    // The source's gateway, when it is the target's (an endpoint asking for the host).
    let gw = f.namespaces[s]
        .routes
        .iter()
        .filter(|r| r.is_default())
        .find_map(|r| r.gateway)
        .filter(|g| candidates.iter().any(|c| c.addr() == *g));
    let shared = candidates
        .iter()
        .filter(|c| c.addr().is_ipv4())
        .chain(candidates.iter().filter(|c| c.addr().is_ipv6()))
        .find(|c| src_nets.iter().any(|n| n.contains(&c.addr())));
    let first = candidates
        .iter()
        .find(|c| c.addr().is_ipv4())
        .or(candidates.first());
    match gw.or(shared.or(first).map(|c| c.addr())) {
        Some(a) => Ok(a),
        None if s == t => Ok(IpAddr::from([127, 0, 0, 1])),
        None => Err(Error::BadInput(format!(
            "{to} has no address to reach it at"
        ))),
    }
}

/// A route as `ip route` writes it, without its interface.
fn describe(r: &Route) -> String {
    let dest = if r.is_default() {
        "default".to_owned()
    } else {
        r.dest.to_string()
    };
    match r.gateway {
        Some(gw) => format!("{dest} via {gw}"),
        None => dest,
    }
}

fn lpm(routes: &[Route], ip: IpAddr) -> Option<&Route> {
    routes
        .iter()
        .filter(|r| r.dest.contains(&ip))
        .max_by_key(|r| r.dest.prefix_len())
}

fn is_local(ns: &Namespace, ip: IpAddr) -> bool {
    ip.is_loopback()
        || ns
            .interfaces
            .iter()
            .any(|i| i.addresses.iter().any(|a| a.addr() == ip))
}

/// The prefix that runs a command in a namespace.
fn in_ns(ns: &str) -> String {
    if ns == "host" {
        String::new()
    } else if let Some(pid) = ns.strip_prefix("pid:") {
        format!("nsenter -t {pid} -n ")
    } else if let Some(id) = ns.strip_prefix("run:") {
        // Pinned in the state dir (here the default one), not under /run/netns.
        format!("nsenter --net=/run/nsnet/runs/{id}/net ")
    } else {
        format!("ip netns exec {ns} ")
    }
}

fn ip_cmd(ns: &str, args: &str) -> String {
    if ns == "host" {
        format!("ip {args}")
    } else if ns.starts_with("pid:") || ns.starts_with("run:") {
        format!("{}ip {args}", in_ns(ns))
    } else {
        format!("ip -n {ns} {args}")
    }
}

fn sysctl_cmd(ns: &str, key: &str, value: &str) -> String {
    format!("{}sysctl -w {key}={value}", in_ns(ns))
}

struct Walker<'a> {
    f: &'a Facts,
    hops: Vec<Hop>,
    src: Option<IpAddr>,
    d: IpAddr,
    port: Option<(u16, Proto)>,
    dnat: bool,
    /// The namespace the packet starts in.
    s: usize,
}

/// Where the packet is: a namespace, and the interface it came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
struct At {
    ns: usize,
    in_if: Option<usize>,
    /// The address the previous namespace sent the frame to (its gateway or the
    /// destination): decides what a bridge does with it.
    next_hop: Option<IpAddr>,
    /// The address of the previous namespace's interface (for a route back).
    prev_addr: Option<IpAddr>,
}

/// A point of the walk, for finding loops.
#[derive(PartialEq, Eq)]
struct Point {
    ns: usize,
    /// The interface the packet came in on, or the bridge it is a port of.
    via: Option<String>,
    next_hop: Option<IpAddr>,
    dnat: bool,
}

enum Next {
    Go(At),
    Done,
}

impl<'a> Walker<'a> {
    fn name(&self, ns: usize) -> &'a str {
        &self.f.topology.namespaces[ns].name
    }

    fn ok(&mut self, ns: usize, message: String) {
        self.push(ns, Status::Ok, message, None);
    }

    fn warn(&mut self, ns: usize, message: String) {
        self.push(ns, Status::Warn, message, None);
    }

    fn fail(&mut self, ns: usize, message: String, fix: Option<String>) {
        self.push(ns, Status::Fail, message, fix);
    }

    fn push(&mut self, ns: usize, status: Status, message: String, fix: Option<String>) {
        self.hops.push(Hop {
            status,
            namespace: self.name(ns).to_owned(),
            message,
            fix,
        });
    }

    fn failed(&self) -> bool {
        self.hops.iter().any(|h| h.status == Status::Fail)
    }

    fn v6(&self) -> bool {
        self.d.is_ipv6()
    }

    fn proto(&self) -> u8 {
        match self.port {
            Some((_, p)) => p.number(),
            None if self.v6() => 58,
            None => 1,
        }
    }

    fn run(&mut self) {
        let mut at = At {
            ns: self.s,
            in_if: None,
            next_hop: None,
            prev_addr: None,
        };
        // Where the packet has been: the same place twice means every later
        // step repeats too. A frame into a bridge is at the bridge, whichever
        // port it came in on (what it does next is the bridge's to decide).
        let mut been: Vec<(Point, At)> = Vec::new();
        for _ in 0..MAX_STEPS {
            been.push((self.point(at), at));
            match self.step(at) {
                Next::Go(next) if !self.failed() => at = next,
                _ => return,
            }
            let here = self.point(at);
            if let Some(first) = been.iter().position(|(p, _)| *p == here) {
                let round: Vec<At> = been[first..].iter().map(|(_, a)| *a).collect();
                return self.routing_loop(&round, at);
            }
        }
        self.fail(
            at.ns,
            format!("gave up after {MAX_STEPS} hops: a routing loop?"),
            None,
        );
    }

    /// What decides the rest of the walk from `at`.
    fn point(&self, at: At) -> Point {
        let ifaces = &self.f.topology.namespaces[at.ns].interfaces;
        let via = at.in_if.map(|i| match &ifaces[i].master {
            Some(bridge) => bridge.clone(),
            None => ifaces[i].name.clone(),
        });
        Point {
            ns: at.ns,
            via,
            next_hop: at.next_hop,
            dnat: self.dnat,
        }
    }

    /// Reports a loop at its first repetition: `round` are the places from the
    /// one the packet is back at (`at`) to the last one before it came back.
    fn routing_loop(&mut self, round: &[At], at: At) {
        let topo = &self.f.topology;
        let mut path: Vec<&str> = round.iter().map(|a| self.name(a.ns)).collect();
        path.push(self.name(at.ns));
        let how = match at.in_if {
            Some(i) => format!(" on {}", topo.namespaces[at.ns].interfaces[i].name),
            None => String::new(),
        };
        let last = round.last().map_or(at.ns, |a| a.ns);
        let route = lpm(&self.f.namespaces[last].routes, self.d)
            .map(|r| {
                let dev = r
                    .oif
                    .and_then(|o| {
                        topo.namespaces[last]
                            .interfaces
                            .iter()
                            .find(|i| i.index == o)
                    })
                    .map(|i| format!(" dev {}", i.name))
                    .unwrap_or_default();
                format!(": {}'s route {}{dev}", self.name(last), describe(r))
            })
            .unwrap_or_default();
        self.fail(
            at.ns,
            format!(
                "routing loop: the packet to {} comes back to {}{how}, where it was before; \
                 it would go round {} until its TTL runs out; the loop closes in {}{route}",
                self.d,
                self.name(at.ns),
                path.join(" -> "),
                self.name(last),
            ),
            None,
        );
    }

    fn step(&mut self, mut at: At) -> Next {
        let topo = &self.f.topology;
        let ns = &topo.namespaces[at.ns];
        // A frame that arrives on a bridge port is switched first.
        if let Some(ii) = at.in_if {
            if let Some(br) = ns.interfaces[ii].master.clone() {
                match self.switch(at, ii, &br) {
                    Some(Next::Go(next)) => return Next::Go(next),
                    Some(Next::Done) => return Next::Done,
                    None => {
                        at.in_if = ns.interfaces.iter().position(|i| i.name == br);
                    }
                }
            }
        }
        if at.ns == HOST && !self.dnat && self.port.is_some() && is_local(ns, self.d) {
            if let Some(next) = self.publish(at) {
                return next;
            }
        }
        if is_local(ns, self.d) {
            self.arrive(at);
            return Next::Done;
        }
        self.route(at)
    }

    /// Delivery in the namespace holding the destination.
    fn arrive(&mut self, at: At) {
        let f = self.f;
        let ns = &f.topology.namespaces[at.ns];
        let name = ns.name.clone();
        if at.ns != self.s {
            let iif = at.in_if.map(|i| ns.interfaces[i].name.clone());
            if !self.foreign(at.ns, &["prerouting", "input"], iif, None) {
                return;
            }
            if let Some(net) = self.network_of_bridge(at.ns, at.in_if) {
                if net.internal && !net.gateways.contains(&self.d) {
                    self.fail(
                        at.ns,
                        format!(
                            "network {} is internal: its endpoints reach only each other and its gateway, by design",
                            net.name
                        ),
                        Some("use a network created without --internal".into()),
                    );
                    return;
                }
            }
        }
        if let Some((port, proto)) = self.port {
            if !f.namespaces[at.ns]
                .listening
                .contains(&(proto.number(), port))
            {
                self.fail(
                    at.ns,
                    format!(
                        "{} is reached, but nothing listens on port {port}/{proto} there",
                        self.d
                    ),
                    Some(format!(
                        "start the service in {name}, listening on {} or on all addresses",
                        self.d
                    )),
                );
                return;
            }
        }
        if at.ns != self.s {
            if let Some(src) = self.src {
                if lpm(&f.namespaces[at.ns].routes, src).is_none() {
                    let via = at
                        .prev_addr
                        .map(|a| format!(" via {a}"))
                        .unwrap_or_default();
                    self.fail(
                        at.ns,
                        format!(
                            "{} is reached, but {name} has no route back to {src}",
                            self.d
                        ),
                        Some(ip_cmd(&name, &format!("route add {src}{via}"))),
                    );
                    return;
                }
            }
        }
        let listens = match self.port {
            Some((p, proto)) => format!("; port {p}/{proto} listens"),
            None => String::new(),
        };
        self.ok(
            at.ns,
            format!("arrives: {} is an address of {name}{listens}", self.d),
        );
    }

    /// The fix for an interface without carrier: bring its veth peer up.
    fn far_fix(&self, iface: &Interface) -> Option<String> {
        let topo = &self.f.topology;
        let (n, i) = topo.peer_of(iface)?;
        let peer = &topo.namespaces[n].interfaces[i];
        (!peer.up).then(|| {
            ip_cmd(
                &topo.namespaces[n].name,
                &format!("link set {} up", peer.name),
            )
        })
    }

    /// The nsnet network whose bridge is interface `idx` of namespace `ns`.
    fn network_of_bridge(&self, ns: usize, idx: Option<usize>) -> Option<&'a Network> {
        if ns != HOST {
            return None;
        }
        let f = self.f;
        let name = &f.topology.namespaces[ns].interfaces[idx?].name;
        f.topology.networks.iter().find(|n| &n.bridge == name)
    }

    /// The network an endpoint namespace is attached to, and its gateway of the
    /// destination's family.
    fn endpoint_gateway(&self, ns: usize) -> Option<(String, IpAddr)> {
        let name = self.name(ns);
        self.f.topology.networks.iter().find_map(|n| {
            // An internal network's gateway leads nowhere: never the fix.
            if n.internal {
                return None;
            }
            n.endpoints.iter().find(|e| e.namespace == name)?;
            let gw = n.gateways.iter().find(|g| g.is_ipv6() == self.v6())?;
            Some((n.name.clone(), *gw))
        })
    }

    /// Route lookup and forwarding in namespace `at.ns`.
    fn route(&mut self, at: At) -> Next {
        let f = self.f;
        let ns = &f.topology.namespaces[at.ns];
        let nf = &f.namespaces[at.ns];
        let name = ns.name.clone();
        let forwarding = at.ns != self.s;
        if forwarding {
            let key = if self.v6() {
                "net.ipv6.conf.all.forwarding"
            } else {
                "net.ipv4.ip_forward"
            };
            if nf.sysctls.get(key).map(String::as_str) != Some("1") {
                self.fail(
                    at.ns,
                    format!("{name} must forward {} but {key} is off", self.d),
                    Some(sysctl_cmd(&name, key, "1")),
                );
                return Next::Done;
            }
            if at.ns == HOST && !f.topology.networks.is_empty() {
                let present = nf
                    .ruleset
                    .as_ref()
                    .map(|r| r.table("inet", crate::firewall::TABLE).is_some());
                if present == Some(false) {
                    self.fail(
                        at.ns,
                        "table inet nsnet is missing: nsnet's networks have no forwarding or NAT rules".into(),
                        Some("nsnet firewall reload".into()),
                    );
                    return Next::Done;
                }
            }
        }
        if nf.policy_rules > 0 {
            self.warn(
                at.ns,
                format!(
                    "{} policy routing rule(s) (ip rule) here: doctor follows the main table, the kernel may choose another",
                    nf.policy_rules
                ),
            );
        }
        let Some(route) = lpm(&nf.routes, self.d) else {
            let fix = self.no_route_fix(at.ns);
            let down = ns
                .interfaces
                .iter()
                .find(|i| i.kind != "loopback" && !i.up && i.addresses.iter().any(global));
            let internal: Vec<&str> = f
                .topology
                .networks
                .iter()
                .filter(|n| n.internal && n.endpoints.iter().any(|e| e.namespace == name))
                .map(|n| n.name.as_str())
                .collect();
            let (msg, fix) = match down {
                Some(i) => (
                    format!(
                        "no route to {} in {name}: interface {} is down (its routes went with it)",
                        self.d, i.name
                    ),
                    fix,
                ),
                None if !internal.is_empty() && self.endpoint_gateway(at.ns).is_none() => {
                    let other = f.topology.networks.iter().find(|n| !n.internal);
                    (
                        format!(
                            "no route to {} in {name}: it is only on internal network {}, which reaches nothing beyond its bridge, by design",
                            self.d,
                            internal.join(", ")
                        ),
                        other.map(|n| format!("nsnet network connect {} {name}", n.name)),
                    )
                }
                None => (format!("no route to {} in {name}", self.d), fix),
            };
            self.fail(at.ns, msg, fix);
            return Next::Done;
        };
        let Some(out) = route
            .oif
            .and_then(|o| ns.interfaces.iter().position(|i| i.index == o))
        else {
            self.warn(
                at.ns,
                format!(
                    "the route to {} ({}) names no interface doctor can follow",
                    self.d, route.dest
                ),
            );
            return Next::Done;
        };
        let out_if = &ns.interfaces[out];
        if !out_if.up {
            self.fail(
                at.ns,
                format!("{} leaves through {}, which is down", self.d, out_if.name),
                Some(ip_cmd(&name, &format!("link set {} up", out_if.name))),
            );
            return Next::Done;
        }
        if self.src.is_none() && !forwarding {
            // The route's own `src` when it has one, as the kernel picks it.
            self.src = route
                .prefsrc
                .or_else(|| source_address(out_if, route.gateway.unwrap_or(self.d)));
        }
        let via = route
            .gateway
            .map(|g| format!(" via {g}"))
            .unwrap_or_default();
        let in_name = at.in_if.map(|i| ns.interfaces[i].name.clone());
        if !out_if.carrier {
            let peer = out_if
                .peer
                .as_ref()
                .map(|p| format!(": its peer {} is down", p.label()))
                .unwrap_or_default();
            self.fail(
                at.ns,
                format!(
                    "{} leaves through {}, which has no carrier{peer}",
                    self.d, out_if.name
                ),
                self.far_fix(out_if),
            );
            return Next::Done;
        }
        let mut masq_note = String::new();
        if forwarding {
            if !self.rp_filter(at) {
                return Next::Done;
            }
            let in_net = self.network_of_bridge(at.ns, at.in_if);
            let out_net = self.network_of_bridge(at.ns, Some(out));
            if !self.nsnet_rules(at.ns, in_net, out_net) {
                return Next::Done;
            }
            if !self.foreign(
                at.ns,
                &["prerouting", "forward", "postrouting"],
                in_name.clone(),
                Some(out_if.name.clone()),
            ) {
                return Next::Done;
            }
            // A clustered network routes the cluster CIDR with the pods' own
            // addresses (`cluster4`): no masquerade there.
            let to_cluster =
                in_net
                    .and_then(|n| n.cluster.as_ref())
                    .is_some_and(|c| match self.d {
                        IpAddr::V4(d) => c.cluster_cidr.contains(&d),
                        IpAddr::V6(_) => false,
                    });
            if in_net.is_some_and(|n| n.masquerade && !n.internal)
                && out_net.is_none()
                && !to_cluster
            {
                if let Some(a) = source_address(out_if, route.gateway.unwrap_or(self.d)) {
                    self.src = Some(a);
                    masq_note = format!(", masqueraded to {a}");
                }
            }
            self.ok(
                at.ns,
                format!(
                    "forwards {} from {} to {}{via}{masq_note}",
                    self.d,
                    in_name.unwrap_or_default(),
                    out_if.name
                ),
            );
        } else {
            if !self.foreign(
                at.ns,
                &["output", "postrouting"],
                None,
                Some(out_if.name.clone()),
            ) {
                return Next::Done;
            }
            if !self.own_source(at.ns, out_if) {
                return Next::Done;
            }
            let src = self.src.map(|s| format!(", from {s}")).unwrap_or_default();
            self.ok(
                at.ns,
                format!(
                    "route to {} ({}) through {}{via}{src}",
                    self.d, route.dest, out_if.name
                ),
            );
        }
        let prev_addr = source_address(out_if, route.gateway.unwrap_or(self.d));
        let next_hop = route.gateway.unwrap_or(self.d);
        match out_if.kind.as_str() {
            "veth" => {
                let Some((pn, pi)) = f.topology.peer_of(out_if) else {
                    self.warn(
                        at.ns,
                        format!(
                            "{} leads to a namespace doctor cannot see; the walk ends here",
                            out_if.name
                        ),
                    );
                    return Next::Done;
                };
                Next::Go(At {
                    ns: pn,
                    in_if: Some(pi),
                    next_hop: Some(next_hop),
                    prev_addr,
                })
            }
            "bridge" => {
                let Some((port, far)) = self.port_towards(at.ns, &out_if.name, next_hop, None)
                else {
                    self.fail(
                        at.ns,
                        format!("nothing on bridge {} has address {next_hop}", out_if.name),
                        None,
                    );
                    return Next::Done;
                };
                let p = &ns.interfaces[port];
                if !p.up || !p.carrier {
                    let fix = if p.up {
                        self.far_fix(p)
                    } else {
                        Some(ip_cmd(&name, &format!("link set {} up", p.name)))
                    };
                    self.fail(
                        at.ns,
                        format!(
                            "{} (port of {} to {next_hop}) {}",
                            p.name,
                            out_if.name,
                            if p.up { "has no carrier" } else { "is down" }
                        ),
                        fix,
                    );
                    return Next::Done;
                }
                if !self.foreign_bridge(at.ns, &out_if.name, &p.name) {
                    return Next::Done;
                }
                Next::Go(At {
                    ns: far.0,
                    in_if: Some(far.1),
                    next_hop: Some(next_hop),
                    prev_addr,
                })
            }
            "vxlan" if self.cluster_of(&out_if.name).is_some() => {
                self.vxlan_hop(at.ns, out_if, prev_addr)
            }
            _ => {
                self.ok(
                    at.ns,
                    format!(
                        "leaves through {} toward {next_hop}, beyond what doctor can see",
                        out_if.name
                    ),
                );
                Next::Done
            }
        }
    }
}

/// The address of `iface` to send from toward `toward`: one in the same subnet,
/// else any of the family.
fn source_address(iface: &Interface, toward: IpAddr) -> Option<IpAddr> {
    let fam: Vec<&IpNet> = iface
        .addresses
        .iter()
        .filter(|a| a.addr().is_ipv6() == toward.is_ipv6() && global(a))
        .collect();
    fam.iter()
        .find(|a| a.contains(&toward))
        .or(fam.first())
        .map(|a| a.addr())
}
