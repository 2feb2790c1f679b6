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
pub mod base;
mod link;
pub mod overlay;
mod route;
mod rule;

pub use addr::Address;
pub use base::{errno_text, Error, KernelError, Result};
pub use link::{Link, LinkKind, VethSpec};
pub use overlay::{Fdb, Neighbour, PeerRoute, VxlanSpec};
pub use route::Route;
pub use rule::Rule;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

/// A rtnetlink socket bound to the namespace it was opened in.
pub struct Netlink {
    socket: base::Socket,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        Ok(Self {
            socket: base::Socket::open(NETLINK_ROUTE)?,
        })
    }

    /// `message` as bytes, with sequence number `seq`.
    fn encode(message: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        buf
    }

    /// Sends a request that changes something and waits for the kernel's ACK.
    pub(crate) fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> Result<()> {
        self.socket
            .request(|seq| Self::encode(message, flags | NLM_F_ACK, seq))
            .map(|_| ())
    }

    /// Sends a dump request and collects every answer, restarting the dump when
    /// the kernel says it was interrupted.
    pub(crate) fn dump(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.socket.dump(
            |seq| Self::encode(message.clone(), NLM_F_DUMP, seq),
            |msg, out| {
                if let NetlinkPayload::InnerMessage(m) = decode(msg.bytes)?.payload {
                    out.push(m);
                }
                Ok(())
            },
        )
    }

    /// Sends a get request for one object; `Ok(None)` when the kernel says it does
    /// not exist (`ENODEV`/`ENOENT`).
    pub(crate) fn get_one(
        &mut self,
        message: RouteNetlinkMessage,
    ) -> Result<Option<RouteNetlinkMessage>> {
        match self.socket.request(|seq| Self::encode(message, 0, seq)) {
            Ok(Some(bytes)) => match decode(&bytes)?.payload {
                NetlinkPayload::InnerMessage(m) => Ok(Some(m)),
                _ => Ok(None),
            },
            Ok(None) => Ok(None),
            Err(e) if matches!(e.errno(), Some(libc::ENODEV | libc::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One rtnetlink message, decoded by netlink-packet-route.
fn decode(bytes: &[u8]) -> Result<NetlinkMessage<RouteNetlinkMessage>> {
    NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
        .map_err(|e| Error::Decode(e.to_string()))
}
