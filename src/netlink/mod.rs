//! A small synchronous rtnetlink client over `netlink-packet-route` and `netlink-sys`.
//!
//! One [`Netlink`] owns one `NETLINK_ROUTE` socket. A socket stays bound to the
//! network namespace it was created in, so to work inside a namespace open the
//! socket there once ([`crate::netns::Netns::netlink`]) and reuse it: the calls
//! themselves then run on any thread without `setns`.
//!
//! Requests carry `NLM_F_ACK` and wait for the kernel's answer, so every change is
//! confirmed (or its errno and extended-ack message returned) before the next step.
//! Dumps restart when the kernel flags them `NLM_F_DUMP_INTR` (the object list
//! changed under the dump), a few times before giving up.

mod addr;
mod link;
pub mod overlay;
mod route;
mod rule;

pub use addr::Address;
pub use link::{Link, LinkKind, VethSpec};
pub use overlay::{Fdb, Neighbour, PeerRoute, VxlanSpec};
pub use route::Route;
pub use rule::Rule;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;

/// How often a dump is restarted after the kernel reported it interrupted.
const DUMP_RETRIES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{}", kernel_message(*.errno, .message))]
    Kernel { errno: i32, message: Option<String> },
    #[error("cannot decode the kernel's netlink reply: {0}")]
    Decode(String),
    #[error("the kernel interrupted a netlink dump {DUMP_RETRIES} times in a row")]
    DumpInterrupted,
}

/// An errno as text (without std's "(os error N)"), with the kernel's
/// extended-ack message when it sent one.
pub(crate) fn kernel_message(errno: i32, message: &Option<String>) -> String {
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
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Socket(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A rtnetlink socket bound to the namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(Error::Socket)?;
        socket.bind_auto().map_err(Error::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(Error::Socket)?;
        // Errors carry only the request's header back (not its payload), plus the
        // kernel's explanation as an extended ack; both are best effort.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        Ok(Self { socket, seq: 0 })
    }

    fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(Error::Socket)?;
        Ok(self.seq)
    }

    /// Sends a request that changes something and waits for the kernel's ACK.
    pub(crate) fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<()> {
        let seq = self.send(message, flags | NLM_F_ACK)?;
        loop {
            let (buf, _) = self.socket.recv_from_full().map_err(Error::Socket)?;
            for msg in parse_all(&buf)? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => return ack_result(&e),
                    NetlinkPayload::Done(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }

    /// Sends a dump request and collects every answer, restarting the dump when
    /// the kernel says it was interrupted.
    pub(crate) fn dump(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        for _ in 0..DUMP_RETRIES {
            match self.dump_once(message.clone())? {
                Some(out) => return Ok(out),
                None => tracing::debug!("netlink dump interrupted, restarting"),
            }
        }
        Err(Error::DumpInterrupted)
    }

    fn dump_once(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> Result<Option<Vec<RouteNetlinkMessage>>> {
        let seq = self.send(message, NLM_F_DUMP)?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let (buf, _) = self.socket.recv_from_full().map_err(Error::Socket)?;
            for msg in parse_all(&buf)? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok((!interrupted).then_some(out)),
                    NetlinkPayload::Error(e) => {
                        ack_result(&e)?;
                        return Ok((!interrupted).then_some(out));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends a get request for one object; `Ok(None)` when the kernel says it does
    /// not exist (`ENODEV`/`ENOENT`).
    pub(crate) fn get_one(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> Result<Option<RouteNetlinkMessage>> {
        let seq = self.send(message, 0)?;
        loop {
            let (buf, _) = self.socket.recv_from_full().map_err(Error::Socket)?;
            for msg in parse_all(&buf)? {
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => return Ok(Some(m)),
                    NetlinkPayload::Error(e) => {
                        return match ack_result(&e) {
                            Ok(()) => Ok(None),
                            Err(e)
                                if matches!(
                                    e.errno(),
                                    Some(libc_errno::ENODEV | libc_errno::ENOENT)
                                ) =>
                            {
                                Ok(None)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(None),
                    _ => {}
                }
            }
        }
    }
}

/// The few errno values nsnet tells apart.
pub mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EPERM: i32 = 1;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    pub const EADDRNOTAVAIL: i32 = 99;
    pub const EXFULL: i32 = 54;
    pub const EAFNOSUPPORT: i32 = 97;
}

fn parse_all(buf: &[u8]) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
            .map_err(|e| Error::Decode(e.to_string()))?;
        let len = msg.header.length as usize;
        out.push(msg);
        if len == 0 {
            break;
        }
        // Messages are aligned to 4 bytes.
        offset += (len + 3) & !3;
    }
    Ok(out)
}

/// Turns an `NLMSG_ERROR` into `Ok` (an ACK) or the kernel's error, with the
/// extended-ack message when the kernel sent one.
fn ack_result(e: &netlink_packet_core::ErrorMessage) -> Result<()> {
    match e.code {
        None => Ok(()),
        Some(code) => Err(Error::Kernel {
            errno: code.get().abs(),
            message: ext_ack_message(&e.header),
        }),
    }
}

/// With `NETLINK_CAP_ACK` the error payload is the request's 16-byte header
/// followed by TLV attributes; `NLMSGERR_ATTR_MSG` (1) is a C string.
fn ext_ack_message(payload: &[u8]) -> Option<String> {
    const NLMSG_HDR_LEN: usize = 16;
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let mut attrs = payload.get(NLMSG_HDR_LEN..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &attrs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or(text);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        attrs = attrs.get((len + 3) & !3..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_message_is_read_after_the_header() {
        let mut payload = vec![0u8; 16];
        let text = b"Unknown device type\0";
        let len = (4 + text.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(text);
        assert_eq!(
            ext_ack_message(&payload).as_deref(),
            Some("Unknown device type")
        );
    }

    #[test]
    fn ext_ack_message_tolerates_garbage() {
        assert_eq!(ext_ack_message(&[0u8; 10]), None);
        let mut payload = vec![0u8; 16];
        payload.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(ext_ack_message(&payload), None);
    }

    #[test]
    fn kernel_error_text_has_errno_and_message() {
        let e = Error::Kernel {
            errno: libc_errno::EEXIST,
            message: Some("boom".into()),
        };
        assert_eq!(e.to_string(), "File exists: boom");
    }
}
