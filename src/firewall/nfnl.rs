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
//! must fit the socket's send buffer, so [`Nftables::new`] asks for 4 MiB, which the
//! kernel doubles: 8 MiB, about 200,000 port mappings or 300,000 interface names. That
//! takes `SO_SNDBUFFORCE` (CAP_NET_ADMIN); otherwise the kernel caps the request at
//! `net.core.wmem_max` (twice 208 KiB by default, about 10,000 port mappings). A bigger
//! batch is refused with [`base::Error::TooLarge`] and changes nothing.
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
//! set and the index of the element that failed. The byte layout of requests and
//! answers lives in `wire`; this module owns the socket and the retry logic.

mod wire;

use crate::netlink::base::{self, KernelError};
use netlink_sys::protocols::NETLINK_NETFILTER;
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use wire::{check_name, encode, parse_answers, validate, Answer, Get, Wire, Writer};

pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;
pub const NFPROTO_BRIDGE: u8 = 7;

use libc::{EINVAL, ENOENT, EOPNOTSUPP};

/// Send and receive buffers asked for; the kernel doubles them, so no batch can
/// exceed twice this, and the answers a batch queues fit.
const BUFFERS: usize = 4 << 20;
/// Look-ups written per `send`, so their replies fit the receive buffer.
const QUERY_CHUNK: usize = 32;
/// How often a delete is retried after finding out which elements exist (they may
/// vanish between the look-up and the delete).
const DELETE_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket, the kernel's refusal of a whole request, an unreadable answer.
    #[error(transparent)]
    Netlink(#[from] base::Error),
    /// A change to one set failed; `element` indexes the slice given to the [`Batch`].
    #[error("cannot {action} set {set}{}: {kernel}",
        .element.map(|i| format!(" (element {i})")).unwrap_or_default())]
    Set {
        action: &'static str,
        set: String,
        element: Option<usize>,
        kernel: KernelError,
    },
    #[error("invalid nftables request: {0}")]
    Invalid(String),
}

impl Error {
    /// The errno the kernel answered with, if this error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink(e) => e.errno(),
            Error::Set { kernel, .. } => Some(kernel.errno),
            Error::Invalid(_) => None,
        }
    }
}

impl From<KernelError> for Error {
    fn from(e: KernelError) -> Self {
        Error::Netlink(base::Error::Kernel(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A set/map element. `key` is the raw key bytes as the kernel stores them (concatenated
/// fields, each padded to 4 bytes); `data` the raw map value bytes (None for plain sets);
/// `verdict` for verdict maps, mutually exclusive with `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub key: Vec<u8>,
    /// The last key of a range, in a set with `flags interval` and a
    /// concatenated key (`NFTA_SET_ELEM_KEY_END`); `None` elsewhere.
    pub key_end: Option<Vec<u8>>,
    pub data: Option<Vec<u8>>,
    pub verdict: Option<Verdict>,
}

impl Element {
    /// An element of a plain set.
    pub fn new(key: Vec<u8>) -> Self {
        Element {
            key,
            key_end: None,
            data: None,
            verdict: None,
        }
    }

    /// A range `key`..=`key_end` of an interval set with a concatenated key.
    pub fn range(key: Vec<u8>, key_end: Vec<u8>) -> Self {
        Element {
            key,
            key_end: Some(key_end),
            data: None,
            verdict: None,
        }
    }

    /// An element of a data map.
    pub fn with_data(key: Vec<u8>, data: Vec<u8>) -> Self {
        Element {
            key,
            key_end: None,
            data: Some(data),
            verdict: None,
        }
    }

    /// An element of a verdict map.
    pub fn with_verdict(key: Vec<u8>, verdict: Verdict) -> Self {
        Element {
            key,
            key_end: None,
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

/// A MAC address (`ether_addr`), padded to 8 bytes.
pub fn ether(mac: [u8; 6]) -> Vec<u8> {
    let mut out = mac.to_vec();
    out.extend([0, 0]);
    out
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

/// Element changes to the sets and maps of the tables of one name (one per
/// family, e.g. `inet nsnet` and `bridge nsnet`), applied as one transaction.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The family of operations that do not name their own.
    family: u8,
    table: String,
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
struct Op {
    family: u8,
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
        self.push(self.family, false, set, elems);
    }

    /// Deletes elements (by key); elements that do not exist are skipped.
    pub fn delete_elements(&mut self, set: &str, elems: &[Element]) {
        self.push(self.family, true, set, elems);
    }

    /// [`Batch::add_elements`] to the set of the same-named table of `family`.
    pub fn add_elements_in(&mut self, family: u8, set: &str, elems: &[Element]) {
        self.push(family, false, set, elems);
    }

    /// [`Batch::delete_elements`] from the set of the same-named table of `family`.
    pub fn delete_elements_in(&mut self, family: u8, set: &str, elems: &[Element]) {
        self.push(family, true, set, elems);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn push(&mut self, family: u8, delete: bool, set: &str, elems: &[Element]) {
        // Never an empty list: a delete message without elements flushes the set.
        if !elems.is_empty() {
            let (set, elems) = (set.to_owned(), elems.to_vec());
            self.ops.push(Op {
                family,
                delete,
                set,
                elems,
            });
        }
    }

    fn describe(&self, op: &Op) -> String {
        let family = match op.family {
            NFPROTO_INET => "inet".to_owned(),
            NFPROTO_IPV4 => "ip".to_owned(),
            NFPROTO_IPV6 => "ip6".to_owned(),
            NFPROTO_BRIDGE => "bridge".to_owned(),
            n => format!("family {n}"),
        };
        format!("{family} {} {}", self.table, op.set)
    }
}

/// An nf_tables socket bound to the network namespace it was opened in.
pub struct Nftables {
    socket: base::Socket,
    /// Whether `DESTROYSETELEM` works here; `None` until a kernel answer told.
    destroy: Option<bool>,
}

impl Nftables {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let socket = base::Socket::open(NETLINK_NETFILTER)?;
        // A batch is one datagram, refused if larger than the send buffer; and every
        // answer to it is queued before we read the first.
        socket.set_buffers(BUFFERS);
        Ok(Self {
            socket,
            destroy: None,
        })
    }

    /// Whether the table exists (`NFT_MSG_GETTABLE`).
    pub fn table_exists(&mut self, family: u8, table: &str) -> Result<bool> {
        check_name("table", table)?;
        let found = self.query(family, 1, |_| Get::Table(table))?;
        Ok(found.first().copied().unwrap_or(false))
    }

    /// Whether each element's key is in `set` of `table` (`NFT_MSG_GETSETELEM`);
    /// false for every element when the set or table is missing.
    pub fn elements_exist(
        &mut self,
        family: u8,
        table: &str,
        set: &str,
        elems: &[Element],
    ) -> Result<Vec<bool>> {
        check_name("table", table)?;
        check_name("set", set)?;
        let set_found = self.query(family, 1, |_| Get::Set { table, set })?;
        if set_found.first() != Some(&true) {
            return Ok(vec![false; elems.len()]);
        }
        self.query(family, elems.len(), |i| Get::Element {
            table,
            set,
            elem: &elems[i],
        })
    }

    /// Applies the batch as one transaction: all of it or nothing.
    pub fn apply(&mut self, batch: &Batch) -> Result<()> {
        validate(batch)?;
        let mut current = Cow::Borrowed(batch);
        let mut retries = 0;
        while !current.is_empty() {
            let destroy = self.destroy != Some(false);
            let wire = encode(&current, destroy, self.socket.seq_counter());
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
        let family = NFPROTO_INET;
        probe.ops.push(Op {
            family,
            delete,
            set,
            elems,
        });
        let wire = encode(&probe, true, self.socket.seq_counter());
        let supported = match self.send_batch(&wire)? {
            None => true,
            Some((_, f)) if f.errno == ENOENT => true,
            Some((_, f)) if f.errno == EINVAL || f.errno == EOPNOTSUPP => false,
            Some((_, f)) => return Err(f.into()),
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

    /// Sends a batch and returns the first failure (lowest sequence number), if any.
    fn send_batch(&mut self, wire: &Wire) -> Result<Option<(u32, KernelError)>> {
        self.socket.send(&wire.buf)?;
        let slots = wire.end_seq.wrapping_sub(wire.begin_seq) as usize + 1;
        let mut answers = vec![None; slots];
        // The batch markers get no ACK, only an error when the whole batch is refused.
        self.collect(wire.begin_seq, &mut answers, 1..slots - 1, true)?;
        Ok(answers.into_iter().enumerate().find_map(|(i, a)| match a {
            Some(Answer::Error(f)) => Some((wire.begin_seq.wrapping_add(i as u32), f)),
            _ => None,
        }))
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
            let Some(buf) = self.socket.recv(!(drain_on_error && failed))? else {
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

    /// Sends `count` get requests (in chunks) and tells for each whether the kernel
    /// found the object (a reply) or not (`ENOENT`).
    fn query<'a>(
        &mut self,
        family: u8,
        count: usize,
        get: impl Fn(usize) -> Get<'a>,
    ) -> Result<Vec<bool>> {
        let mut found = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(QUERY_CHUNK) {
            let mut w = Writer::default();
            let first = self.socket.peek_seq();
            for &i in chunk {
                let seq = self.socket.next_seq();
                w.get(&get(i), seq, family);
            }
            self.socket.send(&w.buf)?;
            let mut answers = vec![None; chunk.len()];
            self.collect(first, &mut answers, 0..chunk.len(), false)?;
            for answer in answers {
                found.push(match answer {
                    Some(Answer::Ack | Answer::Reply) => true,
                    Some(Answer::Error(f)) if f.errno == ENOENT => false,
                    Some(Answer::Error(f)) => return Err(f.into()),
                    None => {
                        return Err(base::Error::Decode("a look-up got no answer".into()).into())
                    }
                });
            }
        }
        Ok(found)
    }

    /// The batch with its deletes cut down to the elements that exist.
    fn without_absent(&mut self, batch: &Batch) -> Result<Batch> {
        let table = batch.table.as_str();
        let mut out = Batch::new(batch.family, table);
        for op in &batch.ops {
            if !op.delete {
                out.ops.push(op.clone());
                continue;
            }
            let (family, set) = (op.family, op.set.as_str());
            let set_found = self.query(family, 1, |_| Get::Set { table, set })?;
            if set_found.first() != Some(&true) {
                return Err(Error::Set {
                    action: "delete elements from",
                    set: batch.describe(op),
                    element: None,
                    kernel: KernelError {
                        errno: ENOENT,
                        message: Some("no such set (or table)".into()),
                        offset: None,
                    },
                });
            }
            let present = self.query(family, op.elems.len(), |i| Get::Element {
                table,
                set,
                elem: &op.elems[i],
            })?;
            let elems: Vec<Element> = (op.elems.iter().zip(present))
                .filter(|(_, here)| *here)
                .map(|(e, _)| e.clone())
                .collect();
            out.delete_elements_in(family, &op.set, &elems);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
