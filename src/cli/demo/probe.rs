//! The demo's proofs, made with real packets and no outside tools: pings over a
//! raw ICMP socket and TCP exchanges over std sockets, each socket created inside
//! the namespace it speaks from (a socket stays in the namespace it was made in),
//! plus the tiny helper modes (`--serve`, `--ask`, `--probe`) that the demo runs
//! as members of pods and `nsnet run`.

use nsnet::netns::Netns;
use rustix::net::{ipproto, sockopt, AddressFamily, RecvFlags, SendFlags, SocketType};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// How long a check waits for an answer before it fails.
pub const PATIENCE: Duration = Duration::from_secs(3);
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

/// Distinct echo identifiers for pings sent at the same time from one namespace.
static NEXT_ID: AtomicU16 = AtomicU16::new(1);

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request with a 16-byte payload.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut pkt = vec![ICMP_ECHO_REQUEST, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"nsnet demo ping!");
    let sum = checksum(&pkt);
    pkt[2..4].copy_from_slice(&sum.to_be_bytes());
    pkt
}

/// Whether `packet` (an IPv4 packet as a raw socket reads it) is the echo reply
/// from `from` to our request `id`/`seq`.
pub fn is_reply(packet: &[u8], from: Ipv4Addr, id: u16, seq: u16) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let ihl = usize::from(first & 0x0f) * 4;
    let (Some(src), Some(icmp)) = (packet.get(12..16), packet.get(ihl..ihl + 8)) else {
        return false;
    };
    src == from.octets()
        && icmp[0] == ICMP_ECHO_REPLY
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

/// Pings `dst` from namespace `ns` every 200 ms until a reply comes (its round
/// trip time) or [`PATIENCE`] runs out.
pub fn ping(ns: &Netns, dst: Ipv4Addr) -> Result<Duration, String> {
    ns.run(move || ping_here(dst)).map_err(|e| e.to_string())?
}

fn ping_here(dst: Ipv4Addr) -> Result<Duration, String> {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP))
        .map_err(|e| format!("raw ICMP socket: {e}"))?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u16);
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    for seq in 1u16.. {
        if start.elapsed() > PATIENCE {
            break;
        }
        let sent = Instant::now();
        let target = SocketAddrV4::new(dst, 0);
        rustix::net::sendto(&fd, &echo_request(id, seq), SendFlags::empty(), &target)
            .map_err(|e| e.to_string())?;
        while sent.elapsed() < Duration::from_millis(200) {
            match rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()) {
                Ok((n, _)) if is_reply(&buf[..n], dst, id, seq) => return Ok(sent.elapsed()),
                Ok(_) => {}
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Err(format!("no reply within {} s", PATIENCE.as_secs()))
}

/// Connects from namespace `ns` to `addr` and returns what the server says.
pub fn ask(ns: &Netns, addr: SocketAddr) -> Result<String, String> {
    ns.run(move || ask_here(addr, PATIENCE))
        .map_err(|e| e.to_string())?
}

/// [`ask`], retried until it gets an answer or [`PATIENCE`] runs out: for a
/// server that is still starting.
pub fn ask_until(ns: &Netns, addr: SocketAddr) -> Result<String, String> {
    let start = Instant::now();
    loop {
        let last = ns
            .run(move || ask_here(addr, Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        if last.is_ok() || start.elapsed() > PATIENCE {
            return last;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ask_here(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    if text.is_empty() {
        return Err("the connection closed without an answer".into());
    }
    Ok(text.trim().to_owned())
}

/// A TCP server in namespace `ns` on `addr` that tells each client the address
/// it came from: the "outside world" server of the masquerade step. It runs on
/// a thread of the demo until the demo ends.
pub fn peer_echo_server(ns: &Netns, addr: SocketAddr) -> Result<(), String> {
    let listener = ns
        .run(move || TcpListener::bind(addr))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            if let Ok(peer) = conn.peer_addr() {
                let _ = writeln!(conn, "{}", peer.ip());
            }
        }
    });
    Ok(())
}

/// Helper mode `--serve`: answers every TCP connection with `reply`, forever.
pub fn serve(bind: IpAddr, port: u16, reply: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind((bind, port))?;
    for mut conn in listener.incoming().flatten() {
        let _ = writeln!(conn, "{reply}");
    }
    Ok(())
}

/// Helper mode `--ask`: prints what the server at `addr` says.
pub fn ask_and_print(addr: SocketAddr) -> Result<(), String> {
    println!("{}", ask_here(addr, PATIENCE)?);
    Ok(())
}

/// Helper mode `--probe`: the namespace this process is in and its interfaces,
/// as `netns INODE` and `links lo,eth0`.
pub fn probe() -> anyhow::Result<String> {
    let ns = Netns::host()?;
    let mut names: Vec<String> = nsnet::netlink::Netlink::new()?
        .links()?
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    Ok(format!("netns {}\nlinks {}", ns.inode()?, names.join(",")))
}

/// Parses `--probe` output: (namespace inode, interface names).
pub fn parse_probe(text: &str) -> Option<(u64, Vec<String>)> {
    let mut inode = None;
    let mut links = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("netns ") {
            inode = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("links ") {
            links = Some(v.trim().split(',').map(str::to_owned).collect());
        }
    }
    Some((inode?, links?))
}

/// The interfaces of a namespace, sorted.
pub fn links_of(ns: &Netns) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = ns
        .netlink()
        .map_err(|e| e.to_string())?
        .links()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_packet_with_its_checksum_is_zero() {
        let pkt = echo_request(0x1234, 7);
        assert_eq!(checksum(&pkt), 0);
        // RFC 1071's example.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn a_reply_is_matched_by_source_type_id_and_sequence() {
        let from = Ipv4Addr::new(192, 0, 2, 1);
        let mut ip = vec![0x45u8; 1];
        ip.extend_from_slice(&[0; 11]);
        ip.extend_from_slice(&from.octets());
        ip.extend_from_slice(&[192, 0, 2, 2]);
        let mut reply = echo_request(9, 3);
        reply[0] = ICMP_ECHO_REPLY;
        let pkt = [ip.clone(), reply.clone()].concat();
        assert!(is_reply(&pkt, from, 9, 3));
        assert!(!is_reply(&pkt, from, 9, 4));
        assert!(!is_reply(&pkt, Ipv4Addr::new(192, 0, 2, 9), 9, 3));
        let request = [ip, echo_request(9, 3)].concat();
        assert!(!is_reply(&request, from, 9, 3));
        assert!(!is_reply(&[0x45, 0], from, 9, 3));
    }

    #[test]
    fn probe_output_parses() {
        assert_eq!(
            parse_probe("netns 4026531840\nlinks eth0,lo\n"),
            Some((4026531840, vec!["eth0".into(), "lo".into()]))
        );
        assert_eq!(parse_probe("links lo"), None);
    }
}
