//! Deleting conntrack entries over ctnetlink, so that a published UDP or SCTP
//! port never keeps steering flows to the endpoint it used to point at.
//!
//! Why: NAT is decided once per flow, on its first packet, and the decision lives
//! in the flow's conntrack entry. A UDP flow has no end the kernel can see: while
//! datagrams keep coming (DNS, syslog, QUIC) the entry is refreshed and keeps
//! sending the 5-tuple to the endpoint the port pointed at when the entry was made,
//! even after the port was unpublished or moved (a long-standing bug of Docker's
//! and podman's port publishing). So whenever nsnet adds or removes a published
//! UDP or SCTP port it deletes the entries whose ORIGINAL direction goes to that
//! host port, and only to one host address when the port has one ([`Filter`]).
//!
//! How, over one `NETLINK_NETFILTER` socket (subsystem `NFNL_SUBSYS_CTNETLINK`):
//! - One dump per address family (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`) carrying a
//!   kernel-side filter (Linux >= 5.8): `CTA_FILTER` with `CTA_FILTER_ORIG_FLAGS`
//!   naming the fields to compare and a partial `CTA_TUPLE_ORIG` holding their
//!   values. Older kernels ignore both and send everything; the kernel compares
//!   ports for TCP and UDP only (SCTP comes back for any port) and IPv6 addresses
//!   inverted (see [`dump_request`]). So every entry is matched again here, and
//!   only what matches here is deleted.
//! - Then one `IPCTNL_MSG_CT_DELETE` per match, naming it by its original tuple
//!   and zone, [`WINDOW`] of them per `send` before their ACKs are read. An entry
//!   that expired in between answers `ENOENT`, which is not an error. (Linux >= 6.12
//!   can also flush by `CTA_FILTER`; that is not used: it reports no count, and
//!   the same comparison flaws would delete other entries than asked.)
//! - A dump flagged `NLM_F_DUMP_INTR` is restarted, a few times.
//!
//! Encoding and decoding are pure functions, tested byte for byte below; the socket,
//! the message framing and the ACK/error reading are the shared `netlink::base`.

use crate::netlink::base::{self, Attrs, KernelError, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use libc::ENOENT;
use netlink_sys::protocols::NETLINK_NETFILTER;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Deletes in flight at once. Their ACKs (well under 1 KiB of receive buffer
/// each) must fit in the socket's default receive buffer, or the kernel drops them.
const WINDOW: usize = 64;

// linux/netfilter/nfnetlink.h
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const NFNETLINK_V0: u8 = 0;
const NFGEN_HDRLEN: usize = 4;
// linux/netfilter/nfnetlink_conntrack.h
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ZONE: u16 = 18;
const CTA_FILTER: u16 = 25;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_TUPLE_ZONE: u16 = 3;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
// CTA_FILTER_FLAG_* bits: defined in the kernel's nf_conntrack_netlink.c and in
// libnetfilter_conntrack's copy of the header, not in the UAPI header.
const FILTER_IP_DST: u32 = 1 << 1;
const FILTER_PROTO_NUM: u32 = 1 << 3;
const FILTER_PROTO_DST_PORT: u32 = 1 << 5;
// linux/socket.h, linux/in.h, asm-generic/errno-base.h
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// Protocols whose conntrack tuples carry ports.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136]; // tcp udp dccp sctp udplite

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket, an unreadable answer, an interrupted dump.
    #[error(transparent)]
    Netlink(#[from] base::Error),
    #[error("{op}: {kernel}")]
    Kernel {
        op: &'static str,
        kernel: KernelError,
    },
    #[error("invalid conntrack filter: {0}")]
    Invalid(String),
}

impl Error {
    /// The errno the kernel answered with, if this error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { kernel, .. } => Some(kernel.errno),
            Error::Netlink(e) => e.errno(),
            Error::Invalid(_) => None,
        }
    }
}

fn decode(what: String) -> Error {
    Error::Netlink(base::Error::Decode(what))
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which entries to delete: those whose original direction goes to `dport` over
/// `l4proto` (6 TCP, 17 UDP, 132 SCTP, ...), and to `daddr` when it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub l4proto: u8,
    pub dport: u16,
    pub daddr: Option<IpAddr>,
}

impl Filter {
    fn validate(&self) -> Result<()> {
        let proto = self.l4proto;
        match PORT_PROTOCOLS.contains(&proto) {
            true => Ok(()),
            false => Err(Error::Invalid(format!("IP protocol {proto} has no ports"))),
        }
    }

    /// The families to dump: both, unless the address fixes one.
    fn families(&self) -> &'static [u8] {
        match self.daddr {
            None => &[AF_INET, AF_INET6],
            Some(IpAddr::V4(_)) => &[AF_INET],
            Some(IpAddr::V6(_)) => &[AF_INET6],
        }
    }

    /// The authoritative match, whatever the kernel's filter let through.
    fn matches(&self, family: u8, t: &Tuple) -> bool {
        family_of(&t.dst) == family
            && t.proto == self.l4proto
            && t.dport == self.dport
            && self.daddr.is_none_or(|a| a == t.dst)
    }
}

fn family_of(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// One direction's tuple of an entry, as much of it as a delete needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    /// `CTA_TUPLE_ZONE`: a zone that applies to this direction only.
    zone: Option<u16>,
}

/// A conntrack entry, named the way a delete names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    orig: Tuple,
    /// `CTA_ZONE`: the entry's zone when it is not the default one.
    zone: Option<u16>,
}

/// A `NETLINK_NETFILTER` socket bound to the network namespace it was opened in.
pub struct Conntrack {
    socket: base::Socket,
}

impl Conntrack {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        Ok(Self {
            socket: base::Socket::open(NETLINK_NETFILTER)?,
        })
    }

    /// Deletes every entry (IPv4 and IPv6, unless `filter.daddr` fixes the family)
    /// whose original tuple matches the filter; returns how many were deleted.
    /// Entries that vanish between listing and deleting (ENOENT) are not errors.
    pub fn delete_matching(&mut self, filter: &Filter) -> Result<usize> {
        filter.validate()?;
        let mut doomed = Vec::new();
        for &family in filter.families() {
            doomed.extend(self.dump(family, filter)?);
        }
        self.delete(&doomed)
    }

    /// The entries of one family that match `filter` (the dump restarts when the
    /// kernel says it was interrupted).
    fn dump(&mut self, family: u8, filter: &Filter) -> Result<Vec<Entry>> {
        let mut failure = None;
        let result = self.socket.dump(
            |seq| dump_request(seq, family, filter),
            |msg, out| {
                if let Reply::Entry(body) = reply(&header(msg), msg.payload) {
                    match parse_entry(body) {
                        Ok(Some(entry)) if filter.matches(family, &entry.orig) => out.push(entry),
                        Ok(_) => {}
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                Ok(())
            },
        );
        if let Some(e) = failure {
            return Err(e);
        }
        result.map_err(|e| match e {
            base::Error::Kernel(kernel) => Error::Kernel {
                op: "listing conntrack entries",
                kernel,
            },
            e => e.into(),
        })
    }

    /// Deletes `entries`, [`WINDOW`] requests at a time; returns how many the
    /// kernel deleted. Every ACK of a window is read before an error is returned,
    /// so the socket is left clean.
    fn delete(&mut self, entries: &[Entry]) -> Result<usize> {
        let mut deleted = 0;
        for window in entries.chunks(WINDOW) {
            let first = self.socket.peek_seq();
            let mut batch = Vec::with_capacity(window.len() * 96);
            for entry in window {
                let seq = self.socket.next_seq();
                batch.extend_from_slice(&delete_request(seq, entry));
            }
            self.socket.send(&batch)?;
            let mut answered = vec![false; window.len()];
            let mut pending = window.len();
            let mut failure = None;
            while pending > 0 {
                let Some(buf) = self.socket.recv(true)? else {
                    continue;
                };
                for (header, payload) in messages(&buf)? {
                    let slot = header.seq.wrapping_sub(first) as usize;
                    match answered.get_mut(slot) {
                        Some(done) if !*done => *done = true,
                        _ => continue,
                    }
                    pending -= 1;
                    match reply(&header, payload) {
                        Reply::Ack => deleted += 1,
                        Reply::Error(e) if e.errno == ENOENT => {} // it expired meanwhile
                        Reply::Error(kernel) => {
                            failure.get_or_insert(Error::Kernel {
                                op: "deleting a conntrack entry",
                                kernel,
                            });
                        }
                        other => {
                            failure.get_or_insert(decode(format!(
                                "unexpected answer to a delete: {other:?}"
                            )));
                        }
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(deleted)
    }
}

/// A request being built on the shared netlink writer: header, nfgenmsg, attributes.
struct Message(base::Writer);

impl Message {
    fn new(kind: u16, flags: u16, seq: u32, family: u8) -> Self {
        let mut w = base::Writer::default();
        w.begin(
            NFNL_SUBSYS_CTNETLINK << 8 | kind,
            NLM_F_REQUEST | flags,
            seq,
        );
        w.raw(&[family, NFNETLINK_V0, 0, 0]); // res_id 0
        Message(w)
    }

    fn put(&mut self, kind: u16, value: &[u8]) {
        self.0.attr(kind, value);
    }

    fn nest(&mut self, kind: u16, body: impl FnOnce(&mut Self)) {
        let start = self.0.nest(kind);
        body(self);
        self.0.end_nest(start);
    }

    fn put_addr(&mut self, src: Option<&IpAddr>, dst: Option<&IpAddr>) {
        self.nest(CTA_TUPLE_IP, |m| {
            for (addr, v4, v6) in [
                (src, CTA_IP_V4_SRC, CTA_IP_V6_SRC),
                (dst, CTA_IP_V4_DST, CTA_IP_V6_DST),
            ] {
                match addr {
                    Some(IpAddr::V4(a)) => m.put(v4, &a.octets()),
                    Some(IpAddr::V6(a)) => m.put(v6, &a.octets()),
                    None => {}
                }
            }
        });
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.finish(0);
        self.0.buf
    }
}

/// A dump of one family's entries, filtered by the kernel where it can.
///
/// The address goes to the kernel for IPv4 only: the kernel's IPv6 comparison
/// (`ctnetlink_filter_match_tuple`) has skipped exactly the entries whose address
/// is equal, so for IPv6 the kernel filters on protocol and port and the address
/// is matched here.
fn dump_request(seq: u32, family: u8, filter: &Filter) -> Vec<u8> {
    let daddr = filter.daddr.filter(|a| a.is_ipv4() && family == AF_INET);
    let mut flags = FILTER_PROTO_NUM | FILTER_PROTO_DST_PORT;
    if daddr.is_some() {
        flags |= FILTER_IP_DST;
    }
    let mut m = Message::new(IPCTNL_MSG_CT_GET, NLM_F_DUMP, seq, family);
    m.nest(CTA_TUPLE_ORIG, |m| {
        if let Some(addr) = &daddr {
            m.put_addr(None, Some(addr));
        }
        m.nest(CTA_TUPLE_PROTO, |m| {
            m.put(CTA_PROTO_NUM, &[filter.l4proto]);
            m.put(CTA_PROTO_DST_PORT, &filter.dport.to_be_bytes());
        });
    });
    // A u32 in host order (NLA_U32), unlike the big-endian ports and zones.
    m.nest(CTA_FILTER, |m| {
        m.put(CTA_FILTER_ORIG_FLAGS, &flags.to_ne_bytes())
    });
    m.finish()
}

/// A delete of exactly one entry, named by its original tuple and its zone.
fn delete_request(seq: u32, entry: &Entry) -> Vec<u8> {
    let t = &entry.orig;
    let mut m = Message::new(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq, family_of(&t.dst));
    m.nest(CTA_TUPLE_ORIG, |m| {
        m.put_addr(Some(&t.src), Some(&t.dst));
        m.nest(CTA_TUPLE_PROTO, |m| {
            m.put(CTA_PROTO_NUM, &[t.proto]);
            m.put(CTA_PROTO_SRC_PORT, &t.sport.to_be_bytes());
            m.put(CTA_PROTO_DST_PORT, &t.dport.to_be_bytes());
        });
        if let Some(zone) = t.zone {
            m.put(CTA_TUPLE_ZONE, &zone.to_be_bytes());
        }
    });
    if let Some(zone) = entry.zone {
        m.put(CTA_ZONE, &zone.to_be_bytes());
    }
    m.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    kind: u16,
    flags: u16,
    seq: u32,
}

fn header(msg: &base::Message<'_>) -> Header {
    Header {
        kind: msg.kind,
        flags: msg.flags,
        seq: msg.seq,
    }
}

/// Splits a datagram into its netlink messages (header, payload after the header).
fn messages(buf: &[u8]) -> Result<Vec<(Header, &[u8])>> {
    base::messages(buf)
        .map(|m| m.map(|m| (header(&m), m.payload)).map_err(Error::from))
        .collect()
}

/// What one message of the kernel's answer means.
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    /// A conntrack entry (its body: nfgenmsg and attributes).
    Entry(&'a [u8]),
    Ack,
    Error(KernelError),
    Done,
    Other,
}

fn reply<'a>(header: &Header, payload: &'a [u8]) -> Reply<'a> {
    let msg = base::Message {
        kind: header.kind,
        flags: header.flags,
        seq: header.seq,
        payload,
        bytes: &[],
    };
    match base::Reply::of(&msg) {
        base::Reply::Ack => Reply::Ack,
        base::Reply::Error(e) => Reply::Error(e),
        base::Reply::Done => Reply::Done,
        base::Reply::Data
            if header.kind >> 8 == NFNL_SUBSYS_CTNETLINK
                && matches!(header.kind & 0xff, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_GET) =>
        {
            Reply::Entry(payload)
        }
        base::Reply::Data => Reply::Other,
    }
}

fn addr(value: &[u8]) -> Result<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(value) {
        return Ok(Ipv4Addr::from(a).into());
    }
    <[u8; 16]>::try_from(value)
        .map(|a| Ipv6Addr::from(a).into())
        .map_err(|_| decode(format!("{}-byte address", value.len())))
}

fn be16(value: &[u8]) -> Result<u16> {
    match value {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(decode(format!("{}-byte 16-bit value", value.len()))),
    }
}

/// An entry from a dump message's body; `None` for entries that cannot match a
/// port filter (no ports, e.g. ICMP) or that lack their original tuple.
fn parse_entry(body: &[u8]) -> Result<Option<Entry>> {
    let attrs = body
        .get(NFGEN_HDRLEN..)
        .ok_or_else(|| decode("conntrack message without nfgenmsg".into()))?;
    let mut orig = None;
    let mut zone = None;
    for attr in Attrs(attrs) {
        match attr? {
            (CTA_TUPLE_ORIG, value) => orig = parse_tuple(value)?,
            (CTA_ZONE, value) => zone = Some(be16(value)?),
            _ => {}
        }
    }
    Ok(orig.map(|orig| Entry { orig, zone }))
}

fn parse_tuple(buf: &[u8]) -> Result<Option<Tuple>> {
    let (mut src, mut dst, mut proto, mut sport, mut dport, mut zone) =
        (None, None, None, None, None, None);
    for attr in Attrs(buf) {
        match attr? {
            (CTA_TUPLE_IP, ip) => {
                for attr in Attrs(ip) {
                    match attr? {
                        (CTA_IP_V4_SRC | CTA_IP_V6_SRC, v) => src = Some(addr(v)?),
                        (CTA_IP_V4_DST | CTA_IP_V6_DST, v) => dst = Some(addr(v)?),
                        _ => {}
                    }
                }
            }
            (CTA_TUPLE_PROTO, p) => {
                for attr in Attrs(p) {
                    match attr? {
                        (CTA_PROTO_NUM, v) => proto = v.first().copied(),
                        (CTA_PROTO_SRC_PORT, v) => sport = Some(be16(v)?),
                        (CTA_PROTO_DST_PORT, v) => dport = Some(be16(v)?),
                        _ => {}
                    }
                }
            }
            (CTA_TUPLE_ZONE, v) => zone = Some(be16(v)?),
            _ => {}
        }
    }
    let (Some(src), Some(dst)) = (src, dst) else {
        return Ok(None);
    };
    let (proto, sport, dport) = match (proto, sport, dport) {
        (Some(p), Some(s), Some(d)) if family_of(&src) == family_of(&dst) => (p, s, d),
        _ => return Ok(None),
    };
    Ok(Some(Tuple {
        src,
        dst,
        proto,
        sport,
        dport,
        zone,
    }))
}

#[cfg(all(test, target_endian = "little"))]
mod tests;
