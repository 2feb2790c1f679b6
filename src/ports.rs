//! Published ports: Docker's `-p` syntax, parsed into validated types.
//!
//! `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|/udp|/sctp]`, where an
//! IPv6 HOST_IP is written in brackets (`[2001:db8::1]:8080:80`). Without
//! HOST_PORT a free host port is picked at connect time. HOST_IP `0.0.0.0` means
//! every IPv4 address of the host, `::` every IPv6 address, and no HOST_IP every
//! address of both families.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A transport protocol that can be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which host addresses a port is published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostAddr {
    /// Every address of the host, IPv4 and IPv6.
    Any,
    /// Every IPv4 address (`0.0.0.0`).
    AnyV4,
    /// Every IPv6 address (`::`).
    AnyV6,
    /// One address.
    Ip(IpAddr),
}

impl HostAddr {
    /// Whether some address is covered by both.
    pub fn overlaps(&self, other: &HostAddr) -> bool {
        use HostAddr::*;
        match (self, other) {
            (Any, _) | (_, Any) => true,
            (AnyV4, AnyV4) | (AnyV6, AnyV6) => true,
            (AnyV4, AnyV6) | (AnyV6, AnyV4) => false,
            (AnyV4, Ip(ip)) | (Ip(ip), AnyV4) => ip.is_ipv4(),
            (AnyV6, Ip(ip)) | (Ip(ip), AnyV6) => ip.is_ipv6(),
            (Ip(a), Ip(b)) => a == b,
        }
    }

    /// Whether this covers IPv4 / IPv6 destinations.
    pub fn covers_v4(&self) -> bool {
        matches!(self, HostAddr::Any | HostAddr::AnyV4)
            || matches!(self, HostAddr::Ip(ip) if ip.is_ipv4())
    }
    pub fn covers_v6(&self) -> bool {
        matches!(self, HostAddr::Any | HostAddr::AnyV6)
            || matches!(self, HostAddr::Ip(ip) if ip.is_ipv6())
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Any => f.write_str("*"),
            HostAddr::AnyV4 => f.write_str("0.0.0.0"),
            HostAddr::AnyV6 => f.write_str("[::]"),
            HostAddr::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            HostAddr::Ip(a) => a.fmt(f),
        }
    }
}

/// A parsed `-p` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host: HostAddr,
    /// First host port and count; `None`: pick free ones.
    pub host_start: Option<u16>,
    pub container_start: u16,
    /// How many consecutive ports (1 for a single port).
    pub count: u16,
    pub proto: Proto,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("port spec {spec:?}: {why}")]
    Bad { spec: String, why: String },
}

fn bad(spec: &str, why: impl Into<String>) -> SpecError {
    SpecError::Bad {
        spec: spec.to_owned(),
        why: why.into(),
    }
}

/// `N` or `N-M`: first port and count.
fn parse_range(spec: &str, s: &str) -> Result<(u16, u16), SpecError> {
    let port = |p: &str| -> Result<u16, SpecError> {
        // Digits only: Rust's integer parser also takes a leading `+`, Docker's does not.
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(spec, format!("{p:?} is not a port number")));
        }
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(n) => Err(bad(spec, format!("port {n} is out of range (1-65535)"))),
            Err(_) => Err(bad(spec, format!("{p:?} is not a port number"))),
        }
    };
    match s.split_once('-') {
        None => Ok((port(s)?, 1)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(bad(spec, format!("range {a}-{b} ends before it starts")));
            }
            Ok((a, b - a + 1))
        }
    }
}

impl FromStr for PortSpec {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((rest, p)) => {
                let proto = match p.to_ascii_lowercase().as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    "sctp" => Proto::Sctp,
                    _ => {
                        return Err(bad(
                            spec,
                            format!("unknown protocol {p:?} (tcp, udp or sctp)"),
                        ))
                    }
                };
                (rest, proto)
            }
            None => (spec, Proto::Tcp),
        };
        // Split off a bracketed IPv6 host address first: its colons are not separators.
        let (ip_text, ports): (Option<&str>, Vec<&str>) =
            if let Some(inner) = rest.strip_prefix('[') {
                let (ip, after) = inner
                    .split_once(']')
                    .ok_or_else(|| bad(spec, "missing ] after the IPv6 address"))?;
                let after = after
                    .strip_prefix(':')
                    .ok_or_else(|| bad(spec, "expected : after the IPv6 address"))?;
                (Some(ip), after.split(':').collect())
            } else {
                let parts: Vec<&str> = rest.split(':').collect();
                match parts.len() {
                    1 | 2 => (None, parts),
                    3 => (Some(parts[0]), parts[1..].to_vec()),
                    _ => {
                        return Err(bad(
                            spec,
                            "too many ':' (write an IPv6 address in brackets)",
                        ))
                    }
                }
            };
        let (host_text, container_text) = match ports.as_slice() {
            [c] => (None, *c),
            [h, c] => (Some(*h), *c),
            _ => {
                return Err(bad(
                    spec,
                    "expected HOST_PORT:CONTAINER_PORT after the address",
                ))
            }
        };
        if container_text.is_empty() {
            return Err(bad(spec, "the container port is missing"));
        }
        let host = match ip_text {
            None => HostAddr::Any,
            Some(t) => {
                let ip: IpAddr = t
                    .parse()
                    .map_err(|_| bad(spec, format!("{t:?} is not an IP address")))?;
                if ip.is_loopback() && ip.is_ipv6() {
                    return Err(bad(
                        spec,
                        "the kernel cannot forward traffic sent to ::1 to another namespace \
                         (it never routes IPv6 loopback); publish on 127.0.0.1 or another address",
                    ));
                }
                if ip.is_multicast() {
                    return Err(bad(spec, format!("{ip} is a multicast address")));
                }
                if let Some(v4) = match ip {
                    IpAddr::V6(a) => a.to_ipv4_mapped(),
                    IpAddr::V4(_) => None,
                } {
                    // Such traffic reaches the host as IPv4: an IPv6 element
                    // keyed on it would never match.
                    return Err(bad(
                        spec,
                        format!("{ip} is an IPv4-mapped address; publish on {v4} instead"),
                    ));
                }
                match ip {
                    IpAddr::V4(a) if a.is_unspecified() => HostAddr::AnyV4,
                    IpAddr::V6(a) if a.is_unspecified() => HostAddr::AnyV6,
                    _ => HostAddr::Ip(ip),
                }
            }
        };
        let (container_start, count) = parse_range(spec, container_text)?;
        let host_start = match host_text {
            None | Some("") => None,
            Some(h) => {
                let (start, n) = parse_range(spec, h)?;
                if n != count {
                    return Err(bad(
                        spec,
                        format!("host range has {n} ports but container range has {count}"),
                    ));
                }
                Some(start)
            }
        };
        Ok(PortSpec {
            host,
            host_start,
            container_start,
            count,
            proto,
        })
    }
}

/// `N` or `N-M` for a first port and a count (a count of 0 or past 65535, which
/// the parser never makes, is written as if clamped).
fn write_range(f: &mut fmt::Formatter<'_>, start: u16, count: u16) -> fmt::Result {
    if count <= 1 {
        return write!(f, "{start}");
    }
    let end = (u32::from(start) + u32::from(count) - 1).min(65535);
    write!(f, "{start}-{end}")
}

/// Writes the spec back in `-p` syntax, in a form that parses to the same value:
/// the protocol always, the host address only when one was given.
impl PortSpec {
    /// Fails when the spec names a host address that no interface of the
    /// calling namespace (the host) has: nothing could ever reach the port
    /// there, and Docker refuses it too ("cannot assign requested address").
    /// Probed by binding a UDP socket to it, as a listener would.
    pub fn check_host_address(&self) -> Result<(), String> {
        let HostAddr::Ip(ip) = self.host else {
            return Ok(());
        };
        match std::net::UdpSocket::bind((ip, 0)) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Err(format!(
                "-p {self}: no interface of the host has the address {ip} (cannot assign \
                 requested address); add it first, or publish on every address"
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host != HostAddr::Any {
            // `HostAddr` writes IPv6 in brackets; an empty host port keeps the
            // address from being read as the host port.
            write!(f, "{}:", self.host)?;
            if let Some(h) = self.host_start {
                write_range(f, h, self.count)?;
            }
            f.write_str(":")?;
        } else if let Some(h) = self.host_start {
            write_range(f, h, self.count)?;
            f.write_str(":")?;
        }
        write_range(f, self.container_start, self.count)?;
        write!(f, "/{}", self.proto)
    }
}

/// One published port, as recorded and as turned into map elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub host: HostAddr,
    pub proto: Proto,
    pub host_port: u16,
    pub container_port: u16,
    /// The endpoint's addresses the port leads to (one per family it has).
    pub container_v4: Option<std::net::Ipv4Addr>,
    pub container_v6: Option<std::net::Ipv6Addr>,
}

impl fmt::Display for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host, self.host_port, self.container_port, self.proto
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_forms_parse() {
        assert_eq!(
            p("8080:80"),
            PortSpec {
                host: HostAddr::Any,
                host_start: Some(8080),
                container_start: 80,
                count: 1,
                proto: Proto::Tcp
            }
        );
        assert_eq!(p("80").host_start, None);
        assert_eq!(p("80/udp").proto, Proto::Udp);
        assert_eq!(p("80/SCTP").proto, Proto::Sctp);
        let r = p("9000-9009:9000-9009");
        assert_eq!(
            (r.host_start, r.container_start, r.count),
            (Some(9000), 9000, 10)
        );
        let l = p("127.0.0.1:8081:80");
        assert_eq!(l.host, HostAddr::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(p("127.0.0.1::80").host_start, None);
        assert_eq!(p("0.0.0.0:1:2").host, HostAddr::AnyV4);
        assert_eq!(p("[::]:1:2").host, HostAddr::AnyV6);
        assert_eq!(
            p("[2001:db8::1]:8080:80/udp").host,
            HostAddr::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(p("9000-9001").count, 2);
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, why) in [
            ("0", "out of range"),
            ("70000", "out of range"),
            ("8080:0", "out of range"),
            ("9000-9009:9000-9008", "10 ports but container range has 9"),
            ("80/icmp", "unknown protocol"),
            ("1.2.3:80:80", "not an IP address"),
            ("[::1]:8080:80", "::1"),
            ("[::ffff:127.0.0.1]:8080:80", "publish on 127.0.0.1 instead"),
            ("[::ffff:192.0.2.7]:8080:80", "IPv4-mapped"),
            ("[2001:db8::1:8080:80", "missing ]"),
            ("2001:db8::1:8080:80", "brackets"),
            ("x:80", "not a port number"),
            ("9009-9000:1-10", "ends before it starts"),
            ("8080:", "container port is missing"),
            ("", "container port is missing"),
        ] {
            let err = spec.parse::<PortSpec>().unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn specs_write_back_in_docker_syntax() {
        for (spec, written) in [
            ("80", "80/tcp"),
            ("8080:80", "8080:80/tcp"),
            ("9000-9009:9000-9009/udp", "9000-9009:9000-9009/udp"),
            ("127.0.0.1::80", "127.0.0.1::80/tcp"),
            ("0.0.0.0:1:2/SCTP", "0.0.0.0:1:2/sctp"),
            ("[::]::53-54/udp", "[::]::53-54/udp"),
            ("[2001:db8::1]:8080:80", "[2001:db8::1]:8080:80/tcp"),
        ] {
            assert_eq!(p(spec).to_string(), written, "{spec}");
            assert_eq!(p(written), p(spec), "{spec}");
        }
    }

    /// Found by the port_spec fuzz target: `+80` parsed as port 80.
    #[test]
    fn a_plus_sign_is_not_a_port_number() {
        for spec in [
            "+80",
            "+8",
            "8080:+80",
            "+8080:80",
            "80-+81",
            "127.0.0.1:+1:2",
        ] {
            let err = spec.parse::<PortSpec>().unwrap_err().to_string();
            assert!(err.contains("is not a port number"), "{spec}: {err}");
        }
    }

    #[test]
    fn host_addresses_overlap_by_family() {
        let v4: HostAddr = HostAddr::Ip("10.0.0.1".parse().unwrap());
        let v6: HostAddr = HostAddr::Ip("fd00::1".parse().unwrap());
        assert!(HostAddr::Any.overlaps(&v4));
        assert!(HostAddr::AnyV4.overlaps(&v4));
        assert!(!HostAddr::AnyV6.overlaps(&v4));
        assert!(!HostAddr::AnyV4.overlaps(&HostAddr::AnyV6));
        assert!(HostAddr::AnyV6.overlaps(&v6));
        assert!(!v4.overlaps(&HostAddr::Ip("10.0.0.2".parse().unwrap())));
    }
}
