//! The nfnetlink wire format of an nf_tables element batch: building the messages
//! (headers, attributes, nested element lists), and reading the kernel's answers
//! (acks, errors and their extended-ack attributes).
//!
//! [`encode`] writes a [`Batch`] and keeps, per message, its sequence number, the set
//! change it carries and where each element's attribute starts. The kernel names a
//! failed request by sequence number and the attribute it rejected by byte offset;
//! [`Wire::error`] maps those back to the set and the element the caller gave.
//! Everything here is pure (no socket), so it is tested byte for byte.

use super::{Batch, Element, Error, Result, Verdict, ENOENT};
use crate::netlink::base::{
    self, align4 as align, messages, KernelError, Reply, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_REQUEST,
};
use std::ops::{Deref, DerefMut};

// linux/netlink.h
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
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
const NFTA_SET_ELEM_KEY_END: u16 = 10;
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

/// An attribute's length is a u16: keep each message's element list well below it.
const MAX_ELEMENTS_NEST: usize = 60 * 1024;

fn msg_type(kind: u16) -> u16 {
    NFNL_SUBSYS_NFTABLES << 8 | kind
}

pub(super) fn check_name(what: &str, name: &str) -> Result<()> {
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
    if let Some(end) = &e.key_end {
        if end.len() != e.key.len() {
            return Err("a range whose ends differ in length".into());
        }
    }
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
pub(super) struct Wire {
    pub(super) buf: Vec<u8>,
    pub(super) begin_seq: u32,
    pub(super) end_seq: u32,
    msgs: Vec<MsgInfo>,
}

#[derive(Debug)]
pub(super) struct MsgInfo {
    seq: u32,
    /// Index into the batch's ops.
    pub(super) op: usize,
    /// Index (in the op's elements) of this message's first element.
    first: usize,
    /// Where each element's attribute starts, from the start of the message.
    elem_offsets: Vec<usize>,
}

impl Wire {
    pub(super) fn msg(&self, seq: u32) -> Option<&MsgInfo> {
        self.msgs.iter().find(|m| m.seq == seq)
    }

    /// Names the set, and the element when the kernel pointed at one.
    pub(super) fn error(&self, batch: &Batch, seq: u32, f: KernelError) -> Error {
        let Some(msg) = self.msg(seq) else {
            return f.into();
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
            set: batch.describe(op),
            element: i.checked_sub(1).map(|i| msg.first + i),
            kernel: KernelError {
                message: f.message.or(missing.map(str::to_owned)),
                ..f
            },
        }
    }
}

/// Refuses what would not fit the wire format (attribute lengths are u16).
pub(super) fn validate(batch: &Batch) -> Result<()> {
    check_name("table", &batch.table)?;
    for op in &batch.ops {
        check_name("set", &op.set)?;
        for (i, e) in op.elems.iter().enumerate() {
            check_element(e).map_err(|why| {
                Error::Invalid(format!("set {}: element {i}: {why}", batch.describe(op)))
            })?;
        }
    }
    Ok(())
}

/// Writes the batch; deletes as `DESTROYSETELEM` when `destroy`, else `DELSETELEM`.
pub(super) fn encode(batch: &Batch, destroy: bool, seq: &mut u32) -> Wire {
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
            let start = w.begin_nf(msg_type(kind), flags, seq, op.family, 0);
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
        buf: w.0.buf,
        begin_seq,
        end_seq,
        msgs,
    }
}

/// A look-up of one object; the kernel answers with the object, or with `ENOENT`.
pub(super) enum Get<'a> {
    Table(&'a str),
    Set {
        table: &'a str,
        set: &'a str,
    },
    Element {
        table: &'a str,
        set: &'a str,
        elem: &'a Element,
    },
}

/// Writes nf_tables messages: the shared netlink [`base::Writer`] plus nfgenmsg.
#[derive(Default)]
pub(super) struct Writer(base::Writer);

impl Deref for Writer {
    type Target = base::Writer;
    fn deref(&self) -> &base::Writer {
        &self.0
    }
}

impl DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut base::Writer {
        &mut self.0
    }
}

impl Writer {
    /// Starts a message with its nfgenmsg; returns where it starts, for `finish`.
    fn begin_nf(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.0.begin(kind, flags, seq);
        self.raw(&[family, 0]); // nfgen_family, version 0
        self.raw(&res_id.to_be_bytes());
        start
    }

    /// A `GETTABLE`, `GETSET` or `GETSETELEM` request (outside any batch).
    pub(super) fn get(&mut self, get: &Get, seq: u32, family: u8) {
        let kind = match get {
            Get::Table(_) => NFT_MSG_GETTABLE,
            Get::Set { .. } => NFT_MSG_GETSET,
            Get::Element { .. } => NFT_MSG_GETSETELEM,
        };
        let start = self.begin_nf(msg_type(kind), NLM_F_REQUEST, seq, family, 0);
        match *get {
            Get::Table(table) => self.str_attr(NFTA_TABLE_NAME, table),
            Get::Set { table, set } => {
                self.str_attr(NFTA_SET_TABLE, table);
                self.str_attr(NFTA_SET_NAME, set);
            }
            Get::Element { table, set, elem } => {
                self.str_attr(NFTA_SET_ELEM_LIST_TABLE, table);
                self.str_attr(NFTA_SET_ELEM_LIST_SET, set);
                let nest = self.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
                self.element(elem, false);
                self.end_nest(nest);
            }
        }
        self.finish(start);
    }

    /// `NFNL_MSG_BATCH_BEGIN`/`END`: family AF_UNSPEC, the subsystem in res_id.
    fn batch_marker(&mut self, kind: u16, seq: u32) {
        let start = self.begin_nf(kind, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.finish(start);
    }

    /// One `NFTA_LIST_ELEM`: the key, and the data or verdict when `with_data`.
    fn element(&mut self, e: &Element, with_data: bool) {
        let elem = self.nest(NFTA_LIST_ELEM);
        let key = self.nest(NFTA_SET_ELEM_KEY);
        self.attr(NFTA_DATA_VALUE, &e.key);
        self.end_nest(key);
        if let Some(end) = &e.key_end {
            let nest = self.nest(NFTA_SET_ELEM_KEY_END);
            self.attr(NFTA_DATA_VALUE, end);
            self.end_nest(nest);
        }
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
pub(super) enum Answer {
    Ack,
    Reply,
    Error(KernelError),
}

/// Splits a datagram into (sequence number, answer) pairs.
pub(super) fn parse_answers(buf: &[u8]) -> Result<Vec<(u32, Answer)>> {
    let mut out = Vec::new();
    for msg in messages(buf) {
        let msg = msg?;
        let answer = match Reply::of(&msg) {
            Reply::Ack => Answer::Ack,
            Reply::Error(e) => Answer::Error(e),
            Reply::Done | Reply::Data => Answer::Reply,
        };
        out.push((msg.seq, answer));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::nfnl::{ifname, ipv4, port, NFPROTO_INET};
    use crate::netlink::base::NLA_F_NESTED;
    use std::net::Ipv4Addr;

    const EEXIST: i32 = 17;

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
    fn nf_messages(buf: &[u8]) -> Vec<(u16, Option<&[u8]>)> {
        let (mut out, mut rest) = (Vec::new(), buf);
        while !rest.is_empty() {
            let len = base::ne_u32(rest) as usize;
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
        let msgs = nf_messages(&wire.buf);
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
        let msgs = nf_messages(&wire.buf);
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

    #[test]
    fn kernel_errors_name_the_set_and_the_element() {
        let mut batch = Batch::new(NFPROTO_INET, "nsnet");
        let elems: Vec<Element> = (1..=3).map(|p| Element::new(port(p))).collect();
        batch.add_elements("ports", &elems);
        let wire = encode(&batch, true, &mut 0);
        let fail = |errno, offset: usize| KernelError {
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
