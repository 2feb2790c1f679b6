//! The netlink plumbing every family nsnet speaks shares: rtnetlink ([`super::Netlink`]),
//! nf_tables (`firewall::nfnl`) and ctnetlink (`firewall::conntrack`), and whatever
//! family comes next (tc qdiscs arrive as rtnetlink messages).
//!
//! One [`Socket`] type opens a socket of any netlink protocol in the calling thread's
//! namespace (bound, connected to the kernel, `NETLINK_CAP_ACK` and `NETLINK_EXT_ACK`
//! asked for), numbers requests, sends, and receives whole datagrams whatever their
//! size. [`messages`] splits a datagram into its messages, [`Reply::of`] tells an ACK,
//! an error (with the extended ack's message and attribute offset), the end of a dump
//! or data apart, [`Socket::dump`] runs a dump to its end and restarts it when the
//! kernel flags it interrupted, [`Attrs`] reads attributes and [`Writer`] writes
//! requests for the families that are encoded by hand. Errno values come from `libc`
//! and their text from the one function [`errno_text`].

use netlink_sys::SocketAddr;
use rustix::net::sockopt;
use std::fmt;
use std::io;

// linux/netlink.h
pub const NLMSG_HDRLEN: usize = 16;
pub const NLA_HDRLEN: usize = 4;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_CAPPED: u16 = 0x100;
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;

/// How often a dump is restarted after the kernel reported it interrupted.
pub const DUMP_RETRIES: usize = 10;

/// An errno as text, without std's " (os error N)".
pub fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    text.split(" (os error").next().unwrap_or(&text).to_owned()
}

/// What the kernel answered a request with when it refused it: the errno, and from
/// the extended ack its explanation and the offset (from the start of the refused
/// request) of the attribute it rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub errno: i32,
    pub message: Option<String>,
    pub offset: Option<u32>,
}

impl KernelError {
    pub fn new(errno: i32) -> Self {
        KernelError {
            errno,
            message: None,
            offset: None,
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&errno_text(self.errno))?;
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, ": {m}"),
            _ => Ok(()),
        }
    }
}

/// Failures of the netlink plumbing itself, shared by every family.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{0}")]
    Kernel(KernelError),
    #[error("cannot decode the kernel's netlink reply: {0}")]
    Decode(String),
    #[error("the kernel interrupted a netlink dump {DUMP_RETRIES} times in a row")]
    DumpInterrupted,
    #[error("a netlink request of {0} bytes is larger than the socket's send buffer")]
    TooLarge(usize),
    #[error("the kernel's answers overflowed the socket's receive buffer; the outcome is unknown")]
    Overrun,
}

impl Error {
    /// The errno the kernel answered with, or the socket call failed with.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel(k) => Some(k.errno),
            Error::Socket(e) => e.raw_os_error(),
            Error::TooLarge(_) => Some(libc::EMSGSIZE),
            Error::Overrun => Some(libc::ENOBUFS),
            Error::Decode(_) | Error::DumpInterrupted => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A netlink socket of one protocol, bound to the network namespace it was opened in.
pub struct Socket {
    socket: netlink_sys::Socket,
    seq: u32,
}

impl Socket {
    /// Opens a socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`, ...) in the
    /// calling thread's network namespace.
    pub fn open(protocol: isize) -> Result<Self> {
        let mut socket = netlink_sys::Socket::new(protocol).map_err(Error::Socket)?;
        socket.bind_auto().map_err(Error::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(Error::Socket)?;
        // Errors then carry only the request's header back (not its payload), plus
        // the kernel's explanation; both are best effort (older kernels lack them).
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        Ok(Socket { socket, seq: 0 })
    }

    /// Asks for send and receive buffers of `bytes` each (the kernel doubles them),
    /// beyond `net.core.wmem_max`/`rmem_max` when the caller has CAP_NET_ADMIN.
    pub fn set_buffers(&self, bytes: usize) {
        let s = &self.socket;
        let _ = sockopt::set_socket_send_buffer_size_force(s, bytes)
            .or_else(|_| sockopt::set_socket_send_buffer_size(s, bytes));
        let _ = sockopt::set_socket_recv_buffer_size_force(s, bytes)
            .or_else(|_| sockopt::set_socket_recv_buffer_size(s, bytes));
        tracing::debug!(
            sndbuf = sockopt::socket_send_buffer_size(s).ok(),
            rcvbuf = sockopt::socket_recv_buffer_size(s).ok(),
            "netlink socket buffers"
        );
    }

    /// The next request's sequence number.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The sequence number the next [`Socket::next_seq`] returns.
    pub fn peek_seq(&self) -> u32 {
        self.seq.wrapping_add(1)
    }

    /// The sequence counter itself, for encoders that number a batch of messages.
    pub fn seq_counter(&mut self) -> &mut u32 {
        &mut self.seq
    }

    /// Sends one datagram (one or more messages).
    pub fn send(&self, buf: &[u8]) -> Result<()> {
        match self.socket.send(buf, 0) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(Error::TooLarge(buf.len())),
            Err(e) => Err(Error::Socket(e)),
        }
    }

    /// Receives one datagram whole, whatever its size; `None` when `wait` is false
    /// and nothing is queued.
    pub fn recv(&self, wait: bool) -> Result<Option<Vec<u8>>> {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        loop {
            let mut peek = Vec::new();
            let result = self
                .socket
                .recv(&mut peek, libc::MSG_PEEK | libc::MSG_TRUNC | flags)
                .and_then(|len| {
                    let mut buf = Vec::with_capacity(len);
                    self.socket.recv(&mut buf, flags).map(|_| buf)
                });
            match result {
                Ok(buf) => return Ok(Some(buf)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(Error::Overrun),
                Err(e) => return Err(Error::Socket(e)),
            }
        }
    }

    /// Receives one datagram, waiting for it.
    fn recv_wait(&self) -> Result<Vec<u8>> {
        self.recv(true)?
            .ok_or_else(|| Error::Decode("no datagram from a blocking receive".into()))
    }

    /// Sends the request `build` makes for a fresh sequence number and waits for its
    /// answer: `Ok(None)` for an ACK (or the end of a dump), the first data message
    /// otherwise (as its whole bytes), the kernel's error as [`Error::Kernel`].
    pub fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> Result<Option<Vec<u8>>> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        loop {
            let buf = self.recv_wait()?;
            for msg in messages(&buf) {
                let msg = msg?;
                if msg.seq != seq {
                    continue; // left over from an earlier, abandoned request
                }
                match Reply::of(&msg) {
                    Reply::Ack | Reply::Done => return Ok(None),
                    Reply::Error(e) => return Err(Error::Kernel(e)),
                    Reply::Data => return Ok(Some(msg.bytes.to_vec())),
                }
            }
        }
    }

    /// Runs a dump to its end, handing each data message to `each` (which keeps what
    /// it wants), and restarts it from scratch when the kernel flags it interrupted
    /// (`NLM_F_DUMP_INTR`: the objects changed under the dump).
    pub fn dump<T>(
        &mut self,
        build: impl Fn(u32) -> Vec<u8>,
        mut each: impl FnMut(&Message<'_>, &mut Vec<T>) -> Result<()>,
    ) -> Result<Vec<T>> {
        'restart: for _ in 0..DUMP_RETRIES {
            let seq = self.next_seq();
            self.send(&build(seq))?;
            let mut out = Vec::new();
            let mut interrupted = false;
            loop {
                let buf = self.recv_wait()?;
                for msg in messages(&buf) {
                    let msg = msg?;
                    if msg.seq != seq {
                        continue;
                    }
                    interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                    match Reply::of(&msg) {
                        Reply::Data => each(&msg, &mut out)?,
                        Reply::Error(e) => return Err(Error::Kernel(e)),
                        Reply::Ack | Reply::Done if interrupted => {
                            tracing::debug!("netlink dump interrupted, restarting");
                            continue 'restart;
                        }
                        Reply::Ack | Reply::Done => return Ok(out),
                    }
                }
            }
        }
        Err(Error::DumpInterrupted)
    }
}

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// What follows the header.
    pub payload: &'a [u8],
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

/// The messages of a datagram, in order; an error for a length that does not fit.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = ne_u32(rest) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            let e = format!("netlink message of {len} bytes in {} bytes", rest.len());
            rest = &[];
            return Some(Err(Error::Decode(e)));
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        // An error carries its errno and at least the refused request's header.
        if kind == NLMSG_ERROR && len < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN {
            rest = &[];
            return Some(Err(Error::Decode(format!(
                "short error message ({len} bytes)"
            ))));
        }
        let msg = Message {
            kind,
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: ne_u32(&rest[8..]),
            payload: &rest[NLMSG_HDRLEN..len],
            bytes: &rest[..len],
        };
        rest = rest.get(align4(len)..).unwrap_or_default();
        Some(Ok(msg))
    })
}

/// What one message of the kernel's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ack,
    Error(KernelError),
    /// The end of a dump.
    Done,
    /// An object (a dump's or a get's answer).
    Data,
}

impl Reply {
    pub fn of(msg: &Message<'_>) -> Reply {
        let code = ne_u32(msg.payload) as i32;
        match msg.kind {
            NLMSG_ERROR if code == 0 => Reply::Ack,
            NLMSG_ERROR => {
                let (message, offset) =
                    ext_ack(msg.flags, msg.payload.get(4..).unwrap_or_default());
                Reply::Error(KernelError {
                    errno: code.saturating_abs(),
                    message,
                    offset,
                })
            }
            // A dump that failed midway reports its error here.
            NLMSG_DONE if code < 0 => Reply::Error(KernelError::new(code.saturating_abs())),
            NLMSG_DONE => Reply::Done,
            _ => Reply::Data,
        }
    }
}

/// The extended ack of an `NLMSG_ERROR`: its message and the offset of the rejected
/// attribute. `rest` is what follows the errno: the request (only its header when
/// `NLM_F_CAPPED`), then the attributes when `NLM_F_ACK_TLVS`.
fn ext_ack(flags: u16, rest: &[u8]) -> (Option<String>, Option<u32>) {
    if flags & NLM_F_ACK_TLVS == 0 {
        return (None, None);
    }
    let request_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        ne_u32(rest) as usize
    };
    let (mut message, mut offset) = (None, None);
    for attr in Attrs(rest.get(align4(request_len)..).unwrap_or_default()) {
        let Ok((kind, value)) = attr else { break };
        match kind {
            NLMSGERR_ATTR_MSG => {
                let text = value.split(|b| *b == 0).next().unwrap_or(value);
                message = Some(String::from_utf8_lossy(text).into_owned());
            }
            NLMSGERR_ATTR_OFFS if value.len() == 4 => offset = Some(ne_u32(value)),
            _ => {}
        }
    }
    (message.filter(|m| !m.is_empty()), offset)
}

/// The first four bytes of `b` in native order, 0 if it is shorter.
pub fn ne_u32(b: &[u8]) -> u32 {
    b.get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The attributes in a buffer: (type without the nested/byte-order flags, value).
pub struct Attrs<'a>(pub &'a [u8]);

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

/// Appends netlink messages and attributes to a buffer, for the families encoded by
/// hand (headers in native byte order; values come in already encoded).
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    /// Starts a message; returns where it starts, for [`Writer::finish`].
    pub fn begin(&mut self, kind: u16, flags: u16, seq: u32) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        start
    }

    /// Sets the length of the message that starts at `start`.
    pub fn finish(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Raw bytes (a family header such as nfgenmsg).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = (NLA_HDRLEN + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// A NUL-terminated string attribute.
    pub fn str_attr(&mut self, kind: u16, s: &str) {
        let mut payload = Vec::with_capacity(s.len() + 1);
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
        self.attr(kind, &payload);
    }

    /// Opens a nested attribute; returns where it starts, for [`Writer::end_nest`].
    pub fn nest(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        start
    }

    pub fn end_nest(&mut self, start: usize) {
        let len = self.buf.len() - start;
        debug_assert!(len <= usize::from(u16::MAX), "nest of {len} bytes");
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_datagram(flags: u16, errno: i32, request: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        let start = w.begin(NLMSG_ERROR, flags, 7);
        w.raw(&(-errno).to_ne_bytes());
        w.raw(request);
        w.raw(tlvs);
        w.finish(start);
        w.buf
    }

    #[test]
    fn extended_acks_give_the_message_and_the_offset() {
        let mut tlvs = Writer::default();
        tlvs.str_attr(NLMSGERR_ATTR_MSG, "Unknown device type");
        tlvs.attr(NLMSGERR_ATTR_OFFS, &36u32.to_ne_bytes());
        let mut request = Writer::default();
        let s = request.begin(16, NLM_F_REQUEST, 7);
        request.finish(s);
        let buf = error_datagram(NLM_F_CAPPED | NLM_F_ACK_TLVS, 17, &request.buf, &tlvs.buf);
        let msg = messages(&buf).next().unwrap().unwrap();
        assert_eq!(msg.seq, 7);
        let Reply::Error(e) = Reply::of(&msg) else {
            panic!("not an error")
        };
        assert_eq!(e.errno, libc::EEXIST);
        assert_eq!(e.message.as_deref(), Some("Unknown device type"));
        assert_eq!(e.offset, Some(36));
        assert_eq!(e.to_string(), "File exists: Unknown device type");
    }

    #[test]
    fn an_uncapped_error_skips_the_whole_echoed_request() {
        let mut tlvs = Writer::default();
        tlvs.str_attr(NLMSGERR_ATTR_MSG, "boom");
        let mut request = Writer::default();
        let s = request.begin(16, NLM_F_REQUEST, 7);
        request.attr(1, b"0123456789");
        request.finish(s);
        let buf = error_datagram(NLM_F_ACK_TLVS, 22, &request.buf, &tlvs.buf);
        let msg = messages(&buf).next().unwrap().unwrap();
        assert_eq!(
            Reply::of(&msg),
            Reply::Error(KernelError {
                errno: 22,
                message: Some("boom".into()),
                offset: None
            })
        );
    }

    #[test]
    fn acks_ends_and_garbage() {
        let ack = error_datagram(NLM_F_CAPPED, 0, &[0; 16], &[]);
        let msg = messages(&ack).next().unwrap().unwrap();
        assert_eq!(Reply::of(&msg), Reply::Ack);
        let mut w = Writer::default();
        let s = w.begin(NLMSG_DONE, 0, 3);
        w.raw(&0i32.to_ne_bytes());
        w.finish(s);
        let s = w.begin(NLMSG_DONE, 0, 4);
        w.raw(&(-105i32).to_ne_bytes());
        w.finish(s);
        let all: Vec<_> = messages(&w.buf).map(|m| Reply::of(&m.unwrap())).collect();
        assert_eq!(all, [Reply::Done, Reply::Error(KernelError::new(105))]);
        let mut bad = w.buf.clone();
        bad[0] = 200;
        assert!(messages(&bad).next().unwrap().is_err());
        assert_eq!(messages(&[0u8; 10]).count(), 0);
        let mut tlv = vec![0u8; 16];
        tlv.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(ext_ack(NLM_F_CAPPED | NLM_F_ACK_TLVS, &tlv), (None, None));
    }

    #[test]
    fn nested_attributes_read_back() {
        let mut w = Writer::default();
        let n = w.nest(3);
        w.attr(1, &[1, 2]);
        w.str_attr(2, "x");
        w.end_nest(n);
        let mut outer = Attrs(&w.buf);
        let (kind, inner) = outer.next().unwrap().unwrap();
        assert_eq!(kind, 3);
        let inner: Vec<_> = Attrs(inner).map(|a| a.unwrap()).collect();
        assert_eq!(inner, [(1, &[1u8, 2][..]), (2, &b"x\0"[..])]);
        assert!(outer.next().is_none());
    }

    #[test]
    fn errno_text_has_no_os_error_suffix() {
        assert_eq!(errno_text(libc::ENODEV), "No such device");
    }
}
