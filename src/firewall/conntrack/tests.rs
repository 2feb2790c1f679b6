//! Unit tests of the ctnetlink encoding and parsing (the captured bytes are
//! little-endian).

use super::*;
use crate::netlink::base::{NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED};

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
    let mut gone = KernelError::new(ENOENT);
    gone.message = Some("gone".to_owned());
    let expected = Reply::Error(gone);
    assert_eq!(reply(&header(NLMSG_ERROR, flags), &payload), expected);
    // A dump that failed midway.
    let expected = Reply::Error(KernelError::new(22));
    assert_eq!(
        reply(&header(NLMSG_DONE, 0), &(-22i32).to_ne_bytes()),
        expected
    );
    let (op, kernel) = ("deleting a conntrack entry", KernelError::new(1));
    let e = Error::Kernel { op, kernel };
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
