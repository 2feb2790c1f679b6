//! A small synchronous nf_tables client over nfnetlink, for set and map elements.
//!
//! nsnet declares its base ruleset (table `inet nsnet`, its chains, sets and maps) once
//! with `nft -f -`. Everything that changes per endpoint afterwards (bridge membership,
//! port mappings, verdicts) is an *element* of one of those sets or maps, so the hot
//! path never adds rules, never lists the ruleset and never spawns a process: it sends
//! element changes over one `NETLINK_NETFILTER` socket.
//!
//! A [`Batch`] becomes one nfnetlink transaction (`NFNL_MSG_BATCH_BEGIN`, one or more
//! `NEWSETELEM`/`DESTROYSETELEM`/`DELSETELEM` messages, `NFNL_MSG_BATCH_END`) written
//! in a single `send`: the kernel applies all of it or none of it. Every message inside
//! carries `NLM_F_ACK` and [`Nftables::apply`] waits for one answer per message; the
//! kernel queues them while it processes the batch, so the socket's receive buffer is
//! enlarged up front. A set's elements are split over several messages when one would
//! outgrow a netlink attribute (64 KiB); they stay in the same batch. The whole batch
//! must fit the socket's send buffer (`net.core.wmem_default`, 208 KiB by default:
//! about 5,000 port mappings or 7,500 interface names); a bigger one is refused with
//! [`Error::TooLarge`] and changes nothing.
//!
//! Deleting stays idempotent (teardown must be): deletes use `NFT_MSG_DESTROYSETELEM`
//! (Linux 6.3+), which skips missing elements. Older kernels answer an unknown message
//! type with a bare `EINVAL`; a one-off probe then confirms it and the socket falls
//! back to `NFT_MSG_DELSETELEM` for good. When a delete fails with `ENOENT` (an element
//! is already gone; also early 6.3–6.5 kernels whose destroy still reported it), the
//! elements are looked up one by one (`GETSETELEM`) and the batch is sent again with
//! only those that exist. A missing set or table stays an error.
//!
//! The kernel points at the offending attribute in its extended ack, so errors name the
//! set and the index of the element that failed.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::borrow::Cow;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_CAPPED: u16 = 0x100;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;
// linux/netfilter/nfnetlink.h
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
/// nlmsghdr + nfgenmsg: where a message's attributes start.
const NFNL_HDRLEN: usize = NLMSG_HDRLEN + 4;
// linux/netfilter/nf_tables.h (DESTROYSETELEM is newer than Debian 12's headers)
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_DESTROYSETELEM: u16 = 30;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NFT_DATA_VALUE_MAXLEN: usize = 64;
/// Table, set and chain names are at most 255 bytes plus the NUL.
const NFT_NAME_MAXLEN: usize = 255;
// recv(2) flags and errno values (the same on every Linux architecture).
const MSG_PEEK: i32 = 0x2;
const MSG_TRUNC: i32 = 0x20;
const MSG_DONTWAIT: i32 = 0x40;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;
const EMSGSIZE: i32 = 90;
const EOPNOTSUPP: i32 = 95;
const ENOBUFS: i32 = 105;

/// An attribute's length is a u16: keep each message's element list well below it.
const MAX_ELEMENTS_NEST: usize = 60 * 1024;
/// Receive buffer asked for; the kernel caps it at `net.core.rmem_max` (and doubles it).
const RCVBUF: i32 = 4 << 20;
/// Look-ups written per `send`, so their replies fit the receive buffer.
const QUERY_CHUNK: usize = 32;
/// How often a delete is retried after finding out which elements exist (they may
/// vanish between the look-up and the delete).
const DELETE_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nfnetlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{}", kernel_message(*.errno, .message))]
    Kernel { errno: i32, message: Option<String> },
    /// A change to one set failed; `element` indexes the slice given to the [`Batch`].
    #[error("cannot {action} set {set}{}: {}",
        .element.map(|i| format!(" (element {i})")).unwrap_or_default(),
        kernel_message(*.errno, .message))]
    Set {
        action: &'static str,
        set: String,
        element: Option<usize>,
        errno: i32,
        message: Option<String>,
    },
    #[error("cannot decode the kernel's nfnetlink reply: {0}")]
    Decode(String),
    #[error("invalid nftables request: {0}")]
    Invalid(String),
    #[error("nftables batch of {0} bytes is larger than the socket's send buffer")]
    TooLarge(usize),
    #[error("the kernel's answers overflowed the socket's receive buffer; the outcome is unknown")]
    Overrun,
}

fn kernel_message(errno: i32, message: &Option<String>) -> String {
    let base = io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep the plain text.
    let base = base.split(" (os error").next().unwrap_or(&base).to_owned();
    match message {
        Some(m) if !m.is_empty() => format!("{base}: {m}"),
        _ => base,
    }
}

impl Error {
    /// The errno the kernel answered with, if this error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } | Error::Set { errno, .. } => Some(*errno),
            Error::Socket(e) => e.raw_os_error(),
            Error::TooLarge(_) => Some(EMSGSIZE),
            Error::Overrun => Some(ENOBUFS),
            Error::Decode(_) | Error::Invalid(_) => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A set/map element. `key` is the raw key bytes as the kernel stores them (concatenated
/// fields, each padded to 4 bytes); `data` the raw map value bytes (None for plain sets);
/// `verdict` for verdict maps, mutually exclusive with `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub key: Vec<u8>,
    pub data: Option<Vec<u8>>,
    pub verdict: Option<Verdict>,
}

impl Element {
    /// An element of a plain set.
    pub fn new(key: Vec<u8>) -> Self {
        Element {
            key,
            data: None,
            verdict: None,
        }
    }

    /// An element of a data map.
    pub fn with_data(key: Vec<u8>, data: Vec<u8>) -> Self {
        Element {
            key,
            data: Some(data),
            verdict: None,
        }
    }

    /// An element of a verdict map.
    pub fn with_verdict(key: Vec<u8>, verdict: Verdict) -> Self {
        Element {
            key,
            data: None,
            verdict: Some(verdict),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Jump(String),
    Goto(String),
}

/// An interface name as a key field: 16 bytes (IFNAMSIZ), NUL padded, cut at 15 bytes.
pub fn ifname(name: &str) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    let bytes = name.as_bytes();
    let n = bytes.len().min(15);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

pub fn ipv4(a: Ipv4Addr) -> Vec<u8> {
    a.octets().to_vec()
}

pub fn ipv6(a: Ipv6Addr) -> Vec<u8> {
    a.octets().to_vec()
}

/// A port (`inet_service`): network order, padded to 4 bytes.
pub fn port(p: u16) -> Vec<u8> {
    let [hi, lo] = p.to_be_bytes();
    vec![hi, lo, 0, 0]
}

/// A layer-4 protocol number (`inet_proto`), padded to 4 bytes.
pub fn l4proto(p: u8) -> Vec<u8> {
    vec![p, 0, 0, 0]
}

pub fn concat(fields: &[Vec<u8>]) -> Vec<u8> {
    fields.concat()
}

/// Element changes to the sets and maps of one table, applied as one transaction.
#[derive(Debug, Clone)]
pub struct Batch {
    family: u8,
    table: String,
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
struct Op {
    delete: bool,
    set: String,
    elems: Vec<Element>,
}

impl Batch {
    pub fn new(family: u8, table: &str) -> Self {
        Batch {
            family,
            table: table.to_owned(),
            ops: Vec::new(),
        }
    }

    /// Adds elements; the batch fails with `EEXIST` if one is already there.
    pub fn add_elements(&mut self, set: &str, elems: &[Element]) {
        self.push(false, set, elems);
    }

    /// Deletes elements (by key); elements that do not exist are skipped.
    pub fn delete_elements(&mut self, set: &str, elems: &[Element]) {
        self.push(true, set, elems);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn push(&mut self, delete: bool, set: &str, elems: &[Element]) {
        // Never an empty list: a delete message without elements flushes the set.
        if !elems.is_empty() {
            let (set, elems) = (set.to_owned(), elems.to_vec());
            self.ops.push(Op { delete, set, elems });
        }
    }

    fn describe(&self, set: &str) -> String {
        let family = match self.family {
            NFPROTO_INET => "inet".to_owned(),
            NFPROTO_IPV4 => "ip".to_owned(),
            NFPROTO_IPV6 => "ip6".to_owned(),
            n => format!("family {n}"),
        };
        format!("{family} {} {set}", self.table)
    }
}

/// An nf_tables socket bound to the network namespace it was opened in.
pub struct Nftables {
    socket: Socket,
    seq: u32,
    /// Whether `DESTROYSETELEM` works here; `None` until a kernel answer told.
    destroy: Option<bool>,
}

impl Nftables {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(Error::Socket)?;
        socket.bind_auto().map_err(Error::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(Error::Socket)?;
        // Errors carry only the request's header back (not its up to 60 KiB of
        // elements), plus the offset of the attribute the kernel rejected.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        // Every answer to a batch is queued before we read the first; make room.
        let _ = socket.set_rx_buf_sz(RCVBUF);
        Ok(Self {
            socket,
            seq: 0,
            destroy: None,
        })
    }

    /// Whether the table exists (`NFT_MSG_GETTABLE`).
    pub fn table_exists(&mut self, family: u8, table: &str) -> Result<bool> {
        check_name("table", table)?;
        let found = self.query(family, NFT_MSG_GETTABLE, 1, |w, _| {
            w.str_attr(NFTA_TABLE_NAME, table)
        })?;
        Ok(found.first().copied().unwrap_or(false))
    }

    /// Applies the batch as one transaction: all of it or nothing.
    pub fn apply(&mut self, batch: &Batch) -> Result<()> {
        validate(batch)?;
        let mut current = Cow::Borrowed(batch);
        let mut retries = 0;
        while !current.is_empty() {
            let destroy = self.destroy != Some(false);
            let wire = encode(&current, destroy, &mut self.seq);
            let Some((seq, failure)) = self.send_batch(&wire)? else {
                if destroy && current.ops.iter().any(|o| o.delete) {
                    self.destroy = Some(true);
                }
                return Ok(());
            };
            let on_delete = wire.msg(seq).is_some_and(|m| current.ops[m.op].delete);
            // An unknown message type gets a bare EINVAL, without an attribute offset.
            if on_delete
                && failure.errno == EINVAL
                && failure.offset.is_none()
                && self.destroy.is_none()
                && !self.supports_destroy()?
            {
                tracing::debug!("kernel lacks DESTROYSETELEM; deleting with DELSETELEM");
                continue;
            }
            if on_delete && failure.errno == ENOENT && retries < DELETE_RETRIES {
                retries += 1;
                current = Cow::Owned(self.without_absent(&current)?);
                continue;
            }
            return Err(wire.error(&current, seq, failure));
        }
        Ok(())
    }

    /// Whether the kernel knows `NFT_MSG_DESTROYSETELEM` (Linux 6.3+). Probed once, with
    /// an empty element list for a table named "": a kernel that knows the message
    /// answers `ENOENT` (or nothing to do), one that does not answers `EINVAL`.
    pub fn supports_destroy(&mut self) -> Result<bool> {
        if let Some(known) = self.destroy {
            return Ok(known);
        }
        let mut probe = Batch::new(NFPROTO_INET, "");
        let (delete, set, elems) = (true, String::new(), Vec::new());
        probe.ops.push(Op { delete, set, elems });
        let wire = encode(&probe, true, &mut self.seq);
        let supported = match self.send_batch(&wire)? {
            None => true,
            Some((_, f)) if f.errno == ENOENT => true,
            Some((_, f)) if f.errno == EINVAL || f.errno == EOPNOTSUPP => false,
            Some((_, f)) => return Err(f.into_error()),
        };
        self.destroy = Some(supported);
        Ok(supported)
    }

    /// Makes this socket delete the way kernels before 6.3 must (`DELSETELEM`, then
    /// look-ups on `ENOENT`), so that path can be tested on a newer kernel.
    #[doc(hidden)]
    pub fn force_legacy_delete(&mut self) {
        self.destroy = Some(false);
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends a batch and returns the first failure (lowest sequence number), if any.
    fn send_batch(&mut self, wire: &Wire) -> Result<Option<(u32, Failure)>> {
        self.send(&wire.buf)?;
        let slots = wire.end_seq.wrapping_sub(wire.begin_seq) as usize + 1;
        let mut answers = vec![None; slots];
        // The batch markers get no ACK, only an error when the whole batch is refused.
        self.collect(wire.begin_seq, &mut answers, 1..slots - 1, true)?;
        Ok(answers.into_iter().enumerate().find_map(|(i, a)| match a {
            Some(Answer::Error(f)) => Some((wire.begin_seq.wrapping_add(i as u32), f)),
            _ => None,
        }))
    }

    fn send(&mut self, buf: &[u8]) -> Result<()> {
        match self.socket.send(buf, 0) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(EMSGSIZE) => Err(Error::TooLarge(buf.len())),
            Err(e) => Err(Error::Socket(e)),
        }
    }

    /// Reads answers into `answers` (indexed by sequence number minus `first`) until
    /// each of `required` has one. Once an error arrived and `drain_on_error` is set,
    /// it only takes what is already queued: the kernel processes a request inside the
    /// `send`, so nothing more is coming (after an out-of-memory abort, for instance,
    /// the per-message answers are never sent at all).
    fn collect(
        &mut self,
        first: u32,
        answers: &mut [Option<Answer>],
        required: Range<usize>,
        drain_on_error: bool,
    ) -> Result<()> {
        let mut failed = false;
        while answers[required.clone()].iter().any(Option::is_none) {
            let Some(buf) = self.recv(!(drain_on_error && failed))? else {
                break;
            };
            for (seq, answer) in parse_answers(&buf)? {
                let Some(slot) = answers.get_mut(seq.wrapping_sub(first) as usize) else {
                    continue; // an answer to an earlier request
                };
                if slot.is_none() {
                    failed |= matches!(answer, Answer::Error(_));
                    *slot = Some(answer);
                }
            }
        }
        Ok(())
    }

    /// One datagram, whatever its size; `None` when not waiting and nothing is queued.
    fn recv(&self, wait: bool) -> Result<Option<Vec<u8>>> {
        let flags = if wait { 0 } else { MSG_DONTWAIT };
        loop {
            let mut peek = Vec::new();
            let result = self
                .socket
                .recv(&mut peek, MSG_PEEK | MSG_TRUNC | flags)
                .and_then(|len| {
                    let mut buf = Vec::with_capacity(len);
                    self.socket.recv(&mut buf, flags).map(|_| buf)
                });
            match result {
                Ok(buf) => return Ok(Some(buf)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => return Err(Error::Overrun),
                Err(e) => return Err(Error::Socket(e)),
            }
        }
    }

    /// Sends `count` get requests (in chunks) and tells for each whether the kernel
    /// found the object (a reply) or not (`ENOENT`).
    fn query(
        &mut self,
        family: u8,
        kind: u16,
        count: usize,
        fill: impl Fn(&mut Writer, usize),
    ) -> Result<Vec<bool>> {
        let mut found = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(QUERY_CHUNK) {
            let mut w = Writer::default();
            let first = self.seq.wrapping_add(1);
            for &i in chunk {
                let start = w.begin(msg_type(kind), NLM_F_REQUEST, self.next_seq(), family, 0);
                fill(&mut w, i);
                w.finish(start);
            }
            self.send(&w.buf)?;
            let mut answers = vec![None; chunk.len()];
            self.collect(first, &mut answers, 0..chunk.len(), false)?;
            for answer in answers {
                found.push(match answer {
                    Some(Answer::Ack | Answer::Reply) => true,
                    Some(Answer::Error(f)) if f.errno == ENOENT => false,
                    Some(Answer::Error(f)) => return Err(f.into_error()),
                    None => return Err(Error::Decode("a look-up got no answer".into())),
                });
            }
        }
        Ok(found)
    }

    /// The batch with its deletes cut down to the elements that exist.
    fn without_absent(&mut self, batch: &Batch) -> Result<Batch> {
        let (family, table) = (batch.family, batch.table.as_str());
        let mut out = Batch::new(family, table);
        for op in &batch.ops {
            if !op.delete {
                out.ops.push(op.clone());
                continue;
            }
            let set_found = self.query(family, NFT_MSG_GETSET, 1, |w, _| {
                w.str_attr(NFTA_SET_TABLE, table);
                w.str_attr(NFTA_SET_NAME, &op.set);
            })?;
            if set_found.first() != Some(&true) {
                return Err(Error::Set {
                    action: "delete elements from",
                    set: batch.describe(&op.set),
                    element: None,
                    errno: ENOENT,
                    message: Some("no such set (or table)".into()),
                });
            }
            let present = self.query(family, NFT_MSG_GETSETELEM, op.elems.len(), |w, i| {
                w.str_attr(NFTA_SET_ELEM_LIST_TABLE, table);
                w.str_attr(NFTA_SET_ELEM_LIST_SET, &op.set);
                let nest = w.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
                w.element(&op.elems[i], false);
                w.end_nest(nest);
            })?;
            let elems: Vec<Element> = (op.elems.iter().zip(present))
                .filter(|(_, here)| *here)
                .map(|(e, _)| e.clone())
                .collect();
            out.delete_elements(&op.set, &elems);
        }
        Ok(out)
    }
}

fn msg_type(kind: u16) -> u16 {
    NFNL_SUBSYS_NFTABLES << 8 | kind
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > NFT_NAME_MAXLEN || name.contains('\0') {
        return Err(Error::Invalid(format!("bad {what} name {name:?}")));
    }
    Ok(())
}

fn check_element(e: &Element) -> std::result::Result<(), String> {
    let value = |what: &str, v: &[u8]| {
        if v.is_empty() || v.len() > NFT_DATA_VALUE_MAXLEN {
            return Err(format!("{what} of {} bytes (1 to 64)", v.len()));
        }
        Ok(())
    };
    value("key", &e.key)?;
    if let Some(d) = &e.data {
        value("data", d)?;
    }
    match &e.verdict {
        Some(_) if e.data.is_some() => Err("both data and a verdict".into()),
        Some(Verdict::Jump(c) | Verdict::Goto(c))
            if c.is_empty() || c.len() > NFT_NAME_MAXLEN || c.contains('\0') =>
        {
            Err(format!("bad chain name {c:?}"))
        }
        _ => Ok(()),
    }
}

/// A batch as written to the socket, with what maps an answer back to its request.
#[derive(Debug)]
struct Wire {
    buf: Vec<u8>,
    begin_seq: u32,
    end_seq: u32,
    msgs: Vec<MsgInfo>,
}

#[derive(Debug)]
struct MsgInfo {
    seq: u32,
    /// Index into the batch's ops.
    op: usize,
    /// Index (in the op's elements) of this message's first element.
    first: usize,
    /// Where each element's attribute starts, from the start of the message.
    elem_offsets: Vec<usize>,
}

impl Wire {
    fn msg(&self, seq: u32) -> Option<&MsgInfo> {
        self.msgs.iter().find(|m| m.seq == seq)
    }

    /// Names the set, and the element when the kernel pointed at one.
    fn error(&self, batch: &Batch, seq: u32, f: Failure) -> Error {
        let Some(msg) = self.msg(seq) else {
            return f.into_error();
        };
        let op = &batch.ops[msg.op];
        let set_at = NFNL_HDRLEN + align(4 + batch.table.len() + 1);
        let offset = f.offset.map(|o| o as usize);
        let missing = match offset {
            Some(o) if f.errno == ENOENT && o == NFNL_HDRLEN => Some("no such table"),
            Some(o) if f.errno == ENOENT && o == set_at => Some("no such set"),
            _ => None,
        };
        // The element whose attribute holds the offset, if any.
        let i = offset.map_or(0, |o| msg.elem_offsets.partition_point(|&at| at <= o));
        Error::Set {
            action: if op.delete {
                "delete elements from"
            } else {
                "add elements to"
            },
            set: batch.describe(&op.set),
            element: i.checked_sub(1).map(|i| msg.first + i),
            errno: f.errno,
            message: f.message.or(missing.map(str::to_owned)),
        }
    }
}

/// Refuses what would not fit the wire format (attribute lengths are u16).
fn validate(batch: &Batch) -> Result<()> {
    check_name("table", &batch.table)?;
    for op in &batch.ops {
        check_name("set", &op.set)?;
        for (i, e) in op.elems.iter().enumerate() {
            check_element(e).map_err(|why| {
                Error::Invalid(format!(
                    "set {}: element {i}: {why}",
                    batch.describe(&op.set)
                ))
            })?;
        }
    }
    Ok(())
}

/// Writes the batch; deletes as `DESTROYSETELEM` when `destroy`, else `DELSETELEM`.
fn encode(batch: &Batch, destroy: bool, seq: &mut u32) -> Wire {
    let mut next = || {
        *seq = seq.wrapping_add(1);
        *seq
    };
    let mut w = Writer::default();
    let begin_seq = next();
    w.batch_marker(NFNL_MSG_BATCH_BEGIN, begin_seq);
    let mut msgs = Vec::new();
    for (op_index, op) in batch.ops.iter().enumerate() {
        let (kind, flags) = match (op.delete, destroy) {
            (false, _) => (NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL),
            (true, true) => (NFT_MSG_DESTROYSETELEM, 0),
            (true, false) => (NFT_MSG_DELSETELEM, 0),
        };
        let flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut next_elem = 0;
        loop {
            let seq = next();
            let start = w.begin(msg_type(kind), flags, seq, batch.family, 0);
            w.str_attr(NFTA_SET_ELEM_LIST_TABLE, &batch.table);
            w.str_attr(NFTA_SET_ELEM_LIST_SET, &op.set);
            let nest = w.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            let first = next_elem;
            let mut elem_offsets = Vec::new();
            while let Some(e) = op.elems.get(next_elem) {
                let mark = w.buf.len();
                w.element(e, !op.delete);
                if w.buf.len() - nest > MAX_ELEMENTS_NEST && !elem_offsets.is_empty() {
                    w.buf.truncate(mark); // goes into the next message
                    break;
                }
                elem_offsets.push(mark - start);
                next_elem += 1;
            }
            w.end_nest(nest);
            w.finish(start);
            msgs.push(MsgInfo {
                seq,
                op: op_index,
                first,
                elem_offsets,
            });
            if next_elem >= op.elems.len() {
                break;
            }
        }
    }
    let end_seq = next();
    w.batch_marker(NFNL_MSG_BATCH_END, end_seq);
    Wire {
        buf: w.buf,
        begin_seq,
        end_seq,
        msgs,
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends netlink messages and attributes to a buffer (native byte order, as netlink
/// headers are; nf_tables values are big endian and come in already encoded).
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a message with its nfgenmsg; returns where it starts, for [`Self::finish`].
    fn begin(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        self.buf.extend_from_slice(&[family, 0]); // nfgen_family, version 0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn finish(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFNL_MSG_BATCH_BEGIN`/`END`: family AF_UNSPEC, the subsystem in res_id.
    fn batch_marker(&mut self, kind: u16, seq: u32) {
        let start = self.begin(kind, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.finish(start);
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn str_attr(&mut self, kind: u16, s: &str) {
        let mut payload = Vec::with_capacity(s.len() + 1);
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
        self.attr(kind, &payload);
    }

    fn nest(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        start
    }

    fn end_nest(&mut self, start: usize) {
        let len = self.buf.len() - start;
        debug_assert!(len <= usize::from(u16::MAX), "nest of {len} bytes");
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    }

    /// One `NFTA_LIST_ELEM`: the key, and the data or verdict when `with_data`.
    fn element(&mut self, e: &Element, with_data: bool) {
        let elem = self.nest(NFTA_LIST_ELEM);
        let key = self.nest(NFTA_SET_ELEM_KEY);
        self.attr(NFTA_DATA_VALUE, &e.key);
        self.end_nest(key);
        if with_data {
            if let Some(data) = &e.data {
                let nest = self.nest(NFTA_SET_ELEM_DATA);
                self.attr(NFTA_DATA_VALUE, data);
                self.end_nest(nest);
            }
            if let Some(v) = &e.verdict {
                let nest = self.nest(NFTA_SET_ELEM_DATA);
                let verdict = self.nest(NFTA_DATA_VERDICT);
                let (code, chain) = match v {
                    Verdict::Accept => (NF_ACCEPT, None),
                    Verdict::Drop => (NF_DROP, None),
                    Verdict::Jump(c) => (NFT_JUMP, Some(c)),
                    Verdict::Goto(c) => (NFT_GOTO, Some(c)),
                };
                self.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
                if let Some(chain) = chain {
                    self.str_attr(NFTA_VERDICT_CHAIN, chain);
                }
                self.end_nest(verdict);
                self.end_nest(nest);
            }
        }
        self.end_nest(elem);
    }
}

/// What the kernel said to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ack,
    Reply,
    Error(Failure),
}

/// A kernel error with its extended ack: the message, if any, and the offset (from
/// the start of the failed request) of the attribute it rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    errno: i32,
    message: Option<String>,
    offset: Option<u32>,
}

impl Failure {
    fn into_error(self) -> Error {
        Error::Kernel {
            errno: self.errno,
            message: self.message,
        }
    }
}

/// Splits a datagram into (sequence number, answer) pairs.
fn parse_answers(buf: &[u8]) -> Result<Vec<(u32, Answer)>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32_at(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(Error::Decode(format!(
                "message length {len} of {}",
                rest.len()
            )));
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let seq = u32_at(rest, 8);
        let answer = if kind == NLMSG_ERROR {
            let body = &rest[NLMSG_HDRLEN..len];
            if body.len() < 4 + NLMSG_HDRLEN {
                return Err(Error::Decode(format!("short error message ({len} bytes)")));
            }
            let errno = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]).wrapping_abs();
            if errno == 0 {
                Answer::Ack
            } else {
                // Without NLM_F_CAPPED the whole request is echoed before the TLVs.
                let request_len = if flags & NLM_F_CAPPED != 0 {
                    NLMSG_HDRLEN
                } else {
                    align(u32_at(body, 4) as usize)
                };
                let tlvs = body.get(4 + request_len..).unwrap_or_default();
                let (message, offset) = ext_ack(tlvs);
                Answer::Error(Failure {
                    errno,
                    message,
                    offset,
                })
            }
        } else {
            Answer::Reply
        };
        out.push((seq, answer));
        rest = rest.get(align(len)..).unwrap_or_default();
    }
    Ok(out)
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_ne_bytes(b)
}

/// Reads `NLMSGERR_ATTR_MSG` (a C string) and `NLMSGERR_ATTR_OFFS` (a u32).
fn ext_ack(mut tlvs: &[u8]) -> (Option<String>, Option<u32>) {
    let (mut message, mut offset) = (None, None);
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > tlvs.len() {
            break;
        }
        let value = &tlvs[4..len];
        match kind {
            NLMSGERR_ATTR_MSG => {
                let text = value.split(|b| *b == 0).next().unwrap_or(value);
                message = Some(String::from_utf8_lossy(text).into_owned());
            }
            NLMSGERR_ATTR_OFFS if value.len() == 4 => offset = Some(u32_at(value, 0)),
            _ => {}
        }
        tlvs = tlvs.get(align(len)..).unwrap_or_default();
    }
    (message.filter(|m| !m.is_empty()), offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EEXIST: i32 = 17;

    #[test]
    fn key_helpers_give_the_kernel_layout() {
        assert_eq!(ifname("eth0"), b"eth0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(ifname("a-very-long-interface-name"), b"a-very-long-int\0");
        assert_eq!(ipv4(Ipv4Addr::new(10, 0, 0, 1)), [10, 0, 0, 1]);
        assert_eq!(ipv6(Ipv6Addr::LOCALHOST)[15], 1);
        assert_eq!(port(8080), [0x1f, 0x90, 0, 0]);
        assert_eq!(l4proto(6), [6, 0, 0, 0]);
        let key = concat(&[ipv4(Ipv4Addr::new(1, 2, 3, 4)), l4proto(17), port(53)]);
        assert_eq!(key, [1, 2, 3, 4, 17, 0, 0, 0, 0, 53, 0, 0]);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn a_small_batch_is_serialized_exactly() {
        let mut batch = Batch::new(NFPROTO_INET, "t");
        batch.add_elements("s", &[Element::new(port(80))]);
        let wire = encode(&batch, true, &mut 0);
        #[rustfmt::skip]
        let expected = [
            // NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq 1; AF_UNSPEC, res_id htons(10)
            &[20, 0, 0, 0, 0x10, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10][..],
            // NEWSETELEM (10 << 8 | 12), REQUEST|ACK|EXCL|CREATE, seq 2; NFPROTO_INET
            &[56, 0, 0, 0, 12, 10, 0x05, 0x06, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
            &[6, 0, 1, 0, b't', 0, 0, 0], // LIST_TABLE "t\0", padded
            &[6, 0, 2, 0, b's', 0, 0, 0], // LIST_SET "s\0"
            &[20, 0, 3, 0x80],            // LIST_ELEMENTS | NLA_F_NESTED
            &[16, 0, 1, 0x80],            // LIST_ELEM
            &[12, 0, 1, 0x80],            // SET_ELEM_KEY
            &[8, 0, 1, 0, 0, 80, 0, 0],   // DATA_VALUE
            // NFNL_MSG_BATCH_END, seq 3
            &[20, 0, 0, 0, 0x11, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10],
        ]
        .concat();
        assert_eq!(wire.buf, expected);
        assert_eq!((wire.begin_seq, wire.end_seq, wire.msgs.len()), (1, 3, 1));
        assert_eq!(wire.msgs[0].elem_offsets, [40]);
    }

    /// The attributes in `buf`: (type, payload).
    fn attrs(buf: &[u8]) -> Vec<(u16, &[u8])> {
        let (mut out, mut rest) = (Vec::new(), buf);
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            out.push((u16::from_ne_bytes([rest[2], rest[3]]), &rest[4..len]));
            rest = &rest[align(len).min(rest.len())..];
        }
        out
    }

    /// The messages in `buf`: (type, the element list's payload if there is one).
    fn messages(buf: &[u8]) -> Vec<(u16, Option<&[u8]>)> {
        let (mut out, mut rest) = (Vec::new(), buf);
        while !rest.is_empty() {
            let len = u32_at(rest, 0) as usize;
            let list = attrs(&rest[NFNL_HDRLEN..len]).get(2).map(|a| a.1);
            out.push((u16::from_ne_bytes([rest[4], rest[5]]), list));
            rest = &rest[len..];
        }
        out
    }

    #[test]
    fn verdicts_and_data_are_nested_and_deletes_send_keys_only() {
        let mut batch = Batch::new(NFPROTO_INET, "t");
        let jump = Element::with_verdict(ifname("v0"), Verdict::Jump("c".into()));
        batch.add_elements("vm", &[jump]);
        let data = Element::with_data(port(1), ipv4(Ipv4Addr::LOCALHOST));
        batch.add_elements("m", std::slice::from_ref(&data));
        batch.delete_elements("m", &[data]);
        let wire = encode(&batch, false, &mut 0);
        let msgs = messages(&wire.buf);
        let kinds: Vec<u16> = msgs.iter().map(|m| m.0).collect();
        let (new, del) = (msg_type(NFT_MSG_NEWSETELEM), msg_type(NFT_MSG_DELSETELEM));
        assert_eq!(kinds, [0x10, new, new, del, 0x11]);
        let elem = |i: usize| attrs(attrs(msgs[i].1.unwrap())[0].1);
        let verdict = elem(1)[1];
        assert_eq!(verdict.0, NFTA_SET_ELEM_DATA | NLA_F_NESTED);
        let verdict = attrs(verdict.1)[0];
        assert_eq!(verdict.0, NFTA_DATA_VERDICT | NLA_F_NESTED);
        let code_and_chain = [(1, &[0xff, 0xff, 0xff, 0xfd][..]), (2, &b"c\0"[..])];
        assert_eq!(attrs(verdict.1), code_and_chain);
        assert_eq!(
            attrs(elem(2)[1].1),
            [(NFTA_DATA_VALUE, &[127, 0, 0, 1][..])]
        );
        assert_eq!(elem(3).len(), 1);
    }

    #[test]
    fn big_sets_are_split_over_messages_of_one_batch() {
        let elems: Vec<_> = (0..5000)
            .map(|i| Element::new(ifname(&format!("v{i}"))))
            .collect();
        let mut batch = Batch::new(NFPROTO_INET, "nsnet");
        batch.add_elements("bridges", &elems);
        let wire = encode(&batch, true, &mut 100);
        let msgs = messages(&wire.buf);
        assert!(msgs.len() >= 5, "{} messages", msgs.len());
        assert_eq!(wire.end_seq - wire.begin_seq + 1, msgs.len() as u32);
        let mut total = 0;
        for (i, (m, (_, list))) in wire.msgs.iter().zip(&msgs[1..]).enumerate() {
            assert_eq!((m.seq, m.first), (wire.begin_seq + 1 + i as u32, total));
            assert!(list.is_some_and(|l| l.len() <= MAX_ELEMENTS_NEST));
            assert_eq!(attrs(list.unwrap()).len(), m.elem_offsets.len());
            total += m.elem_offsets.len();
        }
        assert_eq!(total, 5000);
    }

    fn error_datagram(flags: u16, errno: i32, request: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + 4 + request.len() + tlvs.len()) as u32;
        let mut out = len.to_ne_bytes().to_vec();
        out.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]); // seq 7 (little endian), port 0
        out.extend_from_slice(&(-errno).to_ne_bytes());
        out.extend_from_slice(request);
        out.extend_from_slice(tlvs);
        out
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn extended_acks_give_the_message_and_the_offset() {
        let mut w = Writer::default();
        w.str_attr(NLMSGERR_ATTR_MSG, "boom");
        w.attr(NLMSGERR_ATTR_OFFS, &76u32.to_ne_bytes());
        let mut request = 500u32.to_ne_bytes().to_vec();
        request.resize(NLMSG_HDRLEN, 0);
        let capped = error_datagram(NLM_F_CAPPED | 0x200, EEXIST, &request, &w.buf);
        let failure = Failure {
            errno: EEXIST,
            message: Some("boom".into()),
            offset: Some(76),
        };
        assert_eq!(
            parse_answers(&capped).unwrap(),
            [(7, Answer::Error(failure.clone()))]
        );
        // Without NLM_F_CAPPED the whole request comes back before the TLVs.
        request[..4].copy_from_slice(&24u32.to_ne_bytes());
        request.resize(24, 0xee);
        let full = error_datagram(0x200, EEXIST, &request, &w.buf);
        assert_eq!(parse_answers(&full).unwrap(), [(7, Answer::Error(failure))]);
        let ack = error_datagram(0, 0, &request[..NLMSG_HDRLEN], &[]);
        assert_eq!(parse_answers(&ack).unwrap(), [(7, Answer::Ack)]);
        // Garbage is an error or nothing, never a panic.
        assert!(parse_answers(&capped[..30]).is_err());
        assert!(parse_answers(&error_datagram(0, 1, &[], &[])).is_err());
        assert_eq!(ext_ack(&[200, 0, 1, 0, b'x']), (None, None));
        assert_eq!(parse_answers(&[1, 2, 3]).unwrap(), []);
    }

    #[test]
    fn kernel_errors_name_the_set_and_the_element() {
        let mut batch = Batch::new(NFPROTO_INET, "nsnet");
        let elems: Vec<Element> = (1..=3).map(|p| Element::new(port(p))).collect();
        batch.add_elements("ports", &elems);
        let wire = encode(&batch, true, &mut 0);
        let fail = |errno, offset: usize| Failure {
            errno,
            message: None,
            offset: Some(offset as u32),
        };
        let e = wire.error(&batch, 2, fail(EEXIST, wire.msgs[0].elem_offsets[2] + 8));
        let text = "cannot add elements to set inet nsnet ports (element 2): File exists";
        assert_eq!((e.to_string().as_str(), e.errno()), (text, Some(EEXIST)));
        let set_at = NFNL_HDRLEN + align(4 + "nsnet".len() + 1);
        let e = wire.error(&batch, 2, fail(ENOENT, set_at));
        assert!(e
            .to_string()
            .ends_with("ports: No such file or directory: no such set"));
        assert_eq!(
            wire.error(&batch, 1, fail(EEXIST, 0)).to_string(),
            "File exists"
        );
    }

    #[test]
    fn invalid_input_is_refused_before_sending() {
        let refused = |elem: Element| {
            let mut batch = Batch::new(NFPROTO_INET, "nsnet");
            batch.add_elements("s", &[elem]);
            matches!(validate(&batch), Err(Error::Invalid(_)))
        };
        assert!(refused(Element::new(vec![1; 65])));
        let both = Element::with_data(port(1), port(2));
        assert!(refused(Element {
            verdict: Some(Verdict::Accept),
            ..both
        }));
        assert!(refused(Element::with_verdict(
            port(1),
            Verdict::Goto("a\0b".into())
        )));
        assert!(!refused(Element::new(port(1))));
        let unnamed = Batch::new(NFPROTO_INET, "");
        assert!(matches!(validate(&unnamed), Err(Error::Invalid(_))));
        let mut batch = Batch::new(NFPROTO_INET, "nsnet");
        batch.delete_elements("s", &[]);
        assert!(batch.is_empty(), "an empty delete would flush the set");
    }
}
