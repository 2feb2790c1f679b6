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
//! Encoding and decoding are pure functions, tested byte for byte below.

use crate::netlink::kernel_message;
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How often a dump is restarted after the kernel reported it interrupted.
const DUMP_RETRIES: usize = 10;
/// Deletes in flight at once. Their ACKs (well under 1 KiB of receive buffer
/// each) must fit in the socket's default receive buffer, or the kernel drops them.
const WINDOW: usize = 64;
/// A dump datagram is at most 32 KiB; ACKs are tiny.
const RECV_BUF: usize = 64 * 1024;

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSGERR_ATTR_MSG: u16 = 1;
const MSG_TRUNC: i32 = 0x20;
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
const ENOENT: i32 = 2;
/// Protocols whose conntrack tuples carry ports.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136]; // tcp udp dccp sctp udplite

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("conntrack netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{op}: {}", kernel_message(*.errno, .message))]
    Kernel {
        op: &'static str,
        errno: i32,
        message: Option<String>,
    },
    #[error("cannot decode the kernel's conntrack reply: {0}")]
    Decode(String),
    #[error("the kernel interrupted a conntrack dump {DUMP_RETRIES} times in a row")]
    DumpInterrupted,
    #[error("invalid conntrack filter: {0}")]
    Invalid(String),
}

impl Error {
    /// The errno the kernel answered with, if this error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Socket(e) => e.raw_os_error(),
            _ => None,
        }
    }
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
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Conntrack {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(Error::Socket)?;
        socket.bind_auto().map_err(Error::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(Error::Socket)?;
        // Errors then carry only the request's header back, plus the kernel's
        // explanation; both are best effort (older kernels lack them).
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        Ok(Self {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
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

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, buf: &[u8]) -> Result<()> {
        self.socket.send(buf, 0).map_err(Error::Socket)?;
        Ok(())
    }

    /// Reads one datagram into `self.buf`.
    fn recv(&mut self) -> Result<()> {
        loop {
            self.buf.clear();
            self.buf.reserve(RECV_BUF);
            match self.socket.recv(&mut self.buf, MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(Error::Decode(format!(
                        "a {n}-byte datagram did not fit in {} bytes",
                        self.buf.len()
                    )))
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Socket(e)),
            }
        }
    }

    /// The entries of one family that match `filter`, restarting the dump when the
    /// kernel says it was interrupted.
    fn dump(&mut self, family: u8, filter: &Filter) -> Result<Vec<Entry>> {
        for _ in 0..DUMP_RETRIES {
            match self.dump_once(family, filter)? {
                Some(entries) => return Ok(entries),
                None => tracing::debug!("conntrack dump interrupted, restarting"),
            }
        }
        Err(Error::DumpInterrupted)
    }

    fn dump_once(&mut self, family: u8, filter: &Filter) -> Result<Option<Vec<Entry>>> {
        let seq = self.next_seq();
        self.send(&dump_request(seq, family, filter))?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            self.recv()?;
            for (header, payload) in messages(&self.buf)? {
                if header.seq != seq {
                    continue; // left over from an earlier, abandoned request
                }
                interrupted |= header.flags & NLM_F_DUMP_INTR != 0;
                match reply(&header, payload) {
                    Reply::Entry(body) => {
                        if let Some(entry) = parse_entry(body)? {
                            if filter.matches(family, &entry.orig) {
                                out.push(entry);
                            }
                        }
                    }
                    Reply::Done | Reply::Ack => return Ok((!interrupted).then_some(out)),
                    Reply::Error { errno, message } => {
                        return Err(Error::Kernel {
                            op: "listing conntrack entries",
                            errno,
                            message,
                        })
                    }
                    Reply::Other => {}
                }
            }
        }
    }

    /// Deletes `entries`, [`WINDOW`] requests at a time; returns how many the
    /// kernel deleted. Every ACK of a window is read before an error is returned,
    /// so the socket is left clean.
    fn delete(&mut self, entries: &[Entry]) -> Result<usize> {
        let mut deleted = 0;
        for window in entries.chunks(WINDOW) {
            let first = self.seq.wrapping_add(1);
            let mut batch = Vec::with_capacity(window.len() * 96);
            for entry in window {
                let seq = self.next_seq();
                batch.extend_from_slice(&delete_request(seq, entry));
            }
            self.send(&batch)?;
            let mut answered = vec![false; window.len()];
            let mut pending = window.len();
            let mut failure = None;
            while pending > 0 {
                self.recv()?;
                for (header, payload) in messages(&self.buf)? {
                    let slot = header.seq.wrapping_sub(first) as usize;
                    match answered.get_mut(slot) {
                        Some(done) if !*done => *done = true,
                        _ => continue,
                    }
                    pending -= 1;
                    match reply(&header, payload) {
                        Reply::Ack => deleted += 1,
                        Reply::Error { errno: ENOENT, .. } => {} // it expired meanwhile
                        Reply::Error { errno, message } => {
                            failure.get_or_insert(Error::Kernel {
                                op: "deleting a conntrack entry",
                                errno,
                                message,
                            });
                        }
                        other => {
                            failure.get_or_insert(Error::Decode(format!(
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

/// A request being built: header, nfgenmsg, attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16, seq: u32, family: u8) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8 | kind).to_ne_bytes());
        buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        buf.extend_from_slice(&[family, NFNETLINK_V0, 0, 0]); // res_id 0
        Message { buf }
    }

    fn put(&mut self, kind: u16, value: &[u8]) {
        // Attribute values here are at most 16 bytes.
        let len = (NLA_HDRLEN + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    fn nest(&mut self, kind: u16, body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; NLA_HDRLEN]);
        body(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
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
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
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

/// Splits a datagram into its netlink messages (header, payload after the header).
fn messages(mut buf: &[u8]) -> Result<Vec<(Header, &[u8])>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = ne_u32(&buf[0..4]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(Error::Decode(format!(
                "netlink message of {len} bytes in {} bytes",
                buf.len()
            )));
        }
        let header = Header {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: ne_u32(&buf[8..12]),
        };
        out.push((header, &buf[NLMSG_HDRLEN..len]));
        buf = buf.get(align4(len)..).unwrap_or_default();
    }
    Ok(out)
}

/// The first four bytes of `b`, 0 if it is shorter.
fn ne_u32(b: &[u8]) -> u32 {
    b.get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

/// What one message of the kernel's answer means.
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    /// A conntrack entry (its body: nfgenmsg and attributes).
    Entry(&'a [u8]),
    Ack,
    Error {
        errno: i32,
        message: Option<String>,
    },
    Done,
    Other,
}

fn reply<'a>(header: &Header, payload: &'a [u8]) -> Reply<'a> {
    let code = || ne_u32(payload) as i32;
    match header.kind {
        NLMSG_ERROR if code() == 0 => Reply::Ack,
        NLMSG_ERROR => Reply::Error {
            errno: code().saturating_abs(),
            message: ext_ack_message(header.flags, payload.get(4..).unwrap_or_default()),
        },
        // A dump that failed midway reports its error here.
        NLMSG_DONE if code() < 0 => Reply::Error {
            errno: code().saturating_abs(),
            message: None,
        },
        NLMSG_DONE => Reply::Done,
        kind if kind >> 8 == NFNL_SUBSYS_CTNETLINK
            && matches!(kind & 0xff, IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_GET) =>
        {
            Reply::Entry(payload)
        }
        _ => Reply::Other,
    }
}

/// The extended-ack message of an `NLMSG_ERROR`; `rest` is what follows the
/// errno: the request (only its header when `NLM_F_CAPPED`), then attributes.
fn ext_ack_message(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let request_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        ne_u32(rest.get(..4)?) as usize
    };
    for attr in Attrs(rest.get(align4(request_len)..)?) {
        let (kind, value) = attr.ok()?;
        if kind == NLMSGERR_ATTR_MSG {
            let text = value.split(|b| *b == 0).next().unwrap_or(value);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
    }
    None
}

/// The attributes in a buffer: (type without the nested/byte-order flags, value).
struct Attrs<'a>(&'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.0;
        if buf.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > buf.len() {
            self.0 = &[];
            return Some(Err(Error::Decode(format!(
                "attribute of {len} bytes in {} bytes",
                buf.len()
            ))));
        }
        self.0 = buf.get(align4(len)..).unwrap_or_default();
        Some(Ok((kind, &buf[NLA_HDRLEN..len])))
    }
}

fn addr(value: &[u8]) -> Result<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(value) {
        return Ok(Ipv4Addr::from(a).into());
    }
    <[u8; 16]>::try_from(value)
        .map(|a| Ipv6Addr::from(a).into())
        .map_err(|_| Error::Decode(format!("{}-byte address", value.len())))
}

fn be16(value: &[u8]) -> Result<u16> {
    match value {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(Error::Decode(format!("{}-byte 16-bit value", value.len()))),
    }
}

/// An entry from a dump message's body; `None` for entries that cannot match a
/// port filter (no ports, e.g. ICMP) or that lack their original tuple.
fn parse_entry(body: &[u8]) -> Result<Option<Entry>> {
    let attrs = body
        .get(NFGEN_HDRLEN..)
        .ok_or_else(|| Error::Decode("conntrack message without nfgenmsg".into()))?;
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
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn udp(dport: u16, daddr: Option<&str>) -> Filter {
        let daddr = daddr.map(ip);
        Filter {
            l4proto: 17,
            dport,
            daddr,
        }
    }

    /// A UDP tuple from port 40001.
    fn tuple(src: &str, dst: &str, dport: u16, zone: Option<u16>) -> Tuple {
        let (src, dst) = (ip(src), ip(dst));
        Tuple {
            src,
            dst,
            proto: 17,
            sport: 40001,
            dport,
            zone,
        }
    }

    /// 192.0.2.1:40001 -> 192.0.2.2:5353 over UDP, in zone 5.
    fn entry_v4() -> Entry {
        let orig = tuple("192.0.2.1", "192.0.2.2", 5353, None);
        Entry {
            orig,
            zone: Some(5),
        }
    }

    // nlmsghdr (length, type, flags, seq, port id), nfgenmsg, then attributes
    // (length, type with NLA_F_NESTED 0x8000 on nests, value).
    const DUMP_V4: &str = "
        44000000 0101 0103 07000000 00000000  02000000
        24000180  0c000180 08000200 c0000202
                  14000280 05000100 11000000  06000300 14e90000
        0c001980  08000100 2a000000";
    const DUMP_V6: &str = "
        38000000 0101 0103 08000000 00000000  0a000000
        18000180  14000280 05000100 11000000  06000300 14e90000
        0c001980  08000100 28000000";
    const DELETE_V4: &str = "
        50000000 0201 0500 09000000 00000000  02000000
        34000180  14000180 08000100 c0000201 08000200 c0000202
                  1c000280 05000100 11000000 06000200 9c410000 06000300 14e90000
        06001200 00050000";

    #[test]
    fn dump_request_carries_the_kernel_filter() {
        let filter = udp(5353, Some("192.0.2.2"));
        assert_eq!(dump_request(7, AF_INET, &filter), hex(DUMP_V4));
    }

    #[test]
    fn ipv6_dump_request_leaves_the_address_to_userspace() {
        let filter = udp(5353, Some("2001:db8::2"));
        assert_eq!(dump_request(8, AF_INET6, &filter), hex(DUMP_V6));
        assert_eq!(dump_request(8, AF_INET6, &udp(5353, None)), hex(DUMP_V6));
    }

    #[test]
    fn delete_request_names_the_original_tuple_and_zone() {
        assert_eq!(delete_request(9, &entry_v4()), hex(DELETE_V4));
    }

    #[test]
    fn delete_request_round_trips_through_the_parser() {
        let orig = tuple("2001:db8::1", "2001:db8::2", 5353, Some(6));
        let entry = Entry { orig, zone: None };
        let msg = delete_request(1, &entry);
        let (header, body) = messages(&msg).unwrap()[0];
        assert_eq!(header.kind, 0x0102);
        assert_eq!(body[0], AF_INET6);
        assert_eq!(parse_entry(body).unwrap(), Some(entry));
    }

    /// Captured from Linux 6.18: a dump of two UDP entries to port 8000, the
    /// first with a zone for its original direction only (CTA_TUPLE_ZONE), the
    /// second with a zone for both (CTA_ZONE); then the end of the dump.
    const CAPTURED: &str = "
        ac000000000122000100000026000000020000003c0001801400018008000100c000020108000200
        c00002031c0002800500010011000000060002009c410000060003001f4000000600030000060000
        340002801400018008000100c000020308000200c00002011c000280050001001100000006000200
        1f400000060003009c4100000800030000000008080008000000000008000c003678366a08000b00
        00000001080007000000001dac000000000122000100000026000000020000003400018014000180
        08000100c000020108000200c00002021c0002800500010011000000060002009c41000006000300
        1f400000340002801400018008000100c000020208000200c00002011c0002800500010011000000
        060002001f400000060003009c410000060012000005000008000300000000080800080000000000
        08000c00bee5c0eb08000b0000000001080007000000001d
        1400000003000200010000002600000000000000";

    #[test]
    fn parses_a_captured_dump() {
        let buf = hex(CAPTURED);
        let msgs = messages(&buf).unwrap();
        assert_eq!(msgs.len(), 3);
        assert!(msgs.iter().all(|(h, _)| h.seq == 1));
        let entries: Vec<Entry> = msgs[..2]
            .iter()
            .map(|(h, p)| match reply(h, p) {
                Reply::Entry(body) => parse_entry(body).unwrap().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        let first = tuple("192.0.2.1", "192.0.2.3", 8000, Some(6));
        let second = tuple("192.0.2.1", "192.0.2.2", 8000, None);
        assert_eq!(
            entries[0],
            Entry {
                orig: first,
                zone: None
            }
        );
        assert_eq!(
            entries[1],
            Entry {
                orig: second,
                zone: Some(5)
            }
        );
        assert_eq!(reply(&msgs[2].0, msgs[2].1), Reply::Done);
    }

    #[test]
    fn entries_without_ports_are_skipped() {
        // An ICMP echo: its tuple has an id, a type and a code, but no ports.
        let body = "02000000 24000180 14000180 08000100 c0000201 08000200 c0000202
                                      0c000280 05000100 01000000";
        assert_eq!(parse_entry(&hex(body)).unwrap(), None);
    }

    #[test]
    fn the_filter_matches_family_protocol_port_and_address() {
        let t = entry_v4().orig;
        assert!(udp(5353, None).matches(AF_INET, &t));
        assert!(udp(5353, Some("192.0.2.2")).matches(AF_INET, &t));
        assert!(!udp(5353, Some("192.0.2.3")).matches(AF_INET, &t));
        assert!(!udp(5354, None).matches(AF_INET, &t));
        assert!(!udp(5353, None).matches(AF_INET6, &t));
        let sctp = Filter {
            l4proto: 132,
            ..udp(5353, None)
        };
        assert!(!sctp.matches(AF_INET, &t) && sctp.validate().is_ok());
        let icmp = Filter {
            l4proto: 1,
            ..udp(5353, None)
        };
        assert!(matches!(icmp.validate(), Err(Error::Invalid(_))));
        assert_eq!(udp(1, Some("2001:db8::1")).families(), [AF_INET6]);
        assert_eq!(udp(1, None).families(), [AF_INET, AF_INET6]);
    }

    #[test]
    fn acks_errors_and_extended_acks_are_decoded() {
        let header = |kind, flags| Header {
            kind,
            flags,
            seq: 1,
        };
        assert_eq!(reply(&header(NLMSG_ERROR, 0), &[0; 20]), Reply::Ack);
        // -ENOENT, the request's header (capped), NLMSGERR_ATTR_MSG "gone".
        let mut payload = (-2i32).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0; 16]);
        payload.extend_from_slice(&hex("09000100 676f6e65 00000000"));
        let flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
        let (errno, message) = (ENOENT, Some("gone".to_owned()));
        let expected = Reply::Error { errno, message };
        assert_eq!(reply(&header(NLMSG_ERROR, flags), &payload), expected);
        // A dump that failed midway.
        let (errno, message) = (22, None);
        let expected = Reply::Error { errno, message };
        assert_eq!(
            reply(&header(NLMSG_DONE, 0), &(-22i32).to_ne_bytes()),
            expected
        );
        let (op, errno, message) = ("deleting a conntrack entry", 1, None);
        let e = Error::Kernel { op, errno, message };
        assert_eq!(
            e.to_string(),
            "deleting a conntrack entry: Operation not permitted"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let buf = hex(CAPTURED);
        for cut in 0..buf.len() {
            for (h, p) in messages(&buf[..cut]).unwrap_or_default() {
                if let Reply::Entry(body) = reply(&h, p) {
                    let _ = parse_entry(body);
                }
            }
        }
        assert!(messages(&hex("ff000000 0000 0000 00000000 00000000")).is_err());
        assert!(parse_entry(&hex("02000000 ff000180")).is_err());
        assert!(parse_entry(&[2]).is_err());
    }
}
