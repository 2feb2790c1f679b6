//! `nsnet graph --serve [ADDR:]PORT`: the topology, live in a browser.
//!
//! A small HTTP/1.1 server on `std::net`, one thread per connection and one
//! request per connection (`Connection: close`). It serves one self-contained
//! page (`/`, HTML with inline CSS and JS, nothing fetched from elsewhere), the
//! picture (`/graph.svg`), the data (`/graph.json`), a stream of changes
//! (`/events`, server-sent events) and a read-only doctor (`/doctor`).
//!
//! Read-only and never in nsnet's way: one collector thread reads the topology
//! every [`POLL`] (the same read-only [`graph::collect`] `nsnet graph` uses) and
//! keeps the last snapshot; requests are answered from that snapshot, so no
//! client, slow or not, ever holds anything nsnet's commands wait for.
//!
//! Defences: only GET (405 with `Allow`), a request head of at most
//! [`MAX_LINE`] bytes for the request line (414) and [`MAX_HEAD`] in all (431),
//! [`HEAD_TIMEOUT`] to send it, at most [`MAX_CONNS`] connections (the oldest
//! still sending its request is dropped to make room), at most [`MAX_STREAMS`]
//! event streams, one doctor at a time, and a `Host` header that must name the
//! address the server listens on (421 otherwise: a DNS-rebinding defence).
//! SIGINT and SIGTERM stop it; it leaves nothing behind (it makes no files).

use anyhow::{Context as _, Result};
use nsnet::doctor::{self, Destination, Place};
use nsnet::graph;
use nsnet::ops::Context;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the topology is read again.
const POLL: Duration = Duration::from_millis(500);
/// The longest request line.
pub const MAX_LINE: usize = 8 * 1024;
/// The longest request head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
const MAX_CONNS: usize = 64;
/// Event streams open at once.
const MAX_STREAMS: usize = 32;
/// A comment line on an idle event stream, so dead clients are noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("serve.html");

/// Where to listen: `PORT` (on 127.0.0.1), `ADDR:PORT` or `[ADDR6]:PORT`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s
            .parse()
            .map_err(|_| format!("{s:?}: a port is 0 to 65535"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse()
        .map_err(|_| format!("{s:?}: expected [ADDR:]PORT (8080, 127.0.0.1:8080 or [::1]:8080)"))
}

/// What the collector last saw.
struct Snapshot {
    version: u64,
    /// `graph.json`, compact.
    json: String,
    svg: String,
}

struct Shared {
    ctx: Context,
    /// The address actually bound (its port is known even when 0 was asked).
    local: SocketAddr,
    snapshot: Mutex<Arc<Snapshot>>,
    changed: Condvar,
    conns: Mutex<Conns>,
    /// Signalled when a connection ends.
    freed: Condvar,
    doctor: Mutex<()>,
    stop: AtomicBool,
}

/// Open connections; those still sending their request head can be dropped.
#[derive(Default)]
struct Conns {
    next: u64,
    open: usize,
    streams: usize,
    waiting: BTreeMap<u64, TcpStream>,
}

fn snapshot_of(topo: &graph::Topology, version: u64) -> Result<Snapshot> {
    Ok(Snapshot {
        version,
        json: serde_json::to_string(topo)?,
        svg: graph::svg::render(topo),
    })
}

pub fn run(ctx: &Context, addr: SocketAddr) -> Result<ExitCode> {
    let topo = graph::collect(ctx).context("graph")?;
    let first = snapshot_of(&topo, 1)?;
    // Signals are blocked before any thread starts, so every thread inherits
    // the mask and only the waiting thread below receives them.
    let signals = block_stop_signals();
    let listener =
        TcpListener::bind(addr).with_context(|| format!("graph --serve: listening on {addr}"))?;
    listener
        .set_nonblocking(true)
        .context("graph --serve: listener")?;
    let local = listener.local_addr().context("graph --serve: listener")?;
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        local,
        snapshot: Mutex::new(Arc::new(first)),
        changed: Condvar::new(),
        conns: Mutex::new(Conns::default()),
        freed: Condvar::new(),
        doctor: Mutex::new(()),
        stop: AtomicBool::new(false),
    });
    {
        let shared = shared.clone();
        std::thread::spawn(move || wait_for_signal(signals, &shared));
    }
    {
        let shared = shared.clone();
        std::thread::spawn(move || collector(&shared));
    }
    eprintln!("nsnet: graph: serving http://{local}/ (Ctrl-C stops)");
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => admit(&shared, stream),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_readable(&listener),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Out of descriptors, a connection reset before accept: keep serving.
            Err(e) => {
                tracing::warn!("graph --serve: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits up to 200 ms for a connection, so the stop flag is seen soon.
fn wait_readable(listener: &TcpListener) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut one = [PollFd::new(listener, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    let _ = poll(&mut one, Some(&timeout));
}

fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the
    // calls only read and write that local set and this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: libc::sigset_t, shared: &Shared) {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` was initialised by block_stop_signals; sigwait writes only `sig`.
    while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
    shared.stop.store(true, Ordering::SeqCst);
    shared.changed.notify_all();
}

/// Reads the topology every [`POLL`] and publishes it when it changed.
fn collector(shared: &Shared) {
    let mut failing = false;
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(POLL);
        let topo = match graph::collect(&shared.ctx) {
            Ok(t) => t,
            Err(e) => {
                if !failing {
                    eprintln!("nsnet: graph: {e} (showing the last topology read)");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        let current = lock(&shared.snapshot).clone();
        let json = match serde_json::to_string(&topo) {
            Ok(j) => j,
            Err(_) => continue,
        };
        if json == current.json {
            continue;
        }
        let next = Snapshot {
            version: current.version + 1,
            json,
            svg: graph::svg::render(&topo),
        };
        *lock(&shared.snapshot) = Arc::new(next);
        shared.changed.notify_all();
    }
}

/// A poisoned lock only means another connection's thread panicked: the data
/// (a snapshot, counters) is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a thread for a new connection, dropping the oldest one still
/// sending its request when all places are taken.
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let id = {
        let mut conns = lock(&shared.conns);
        if conns.open >= MAX_CONNS {
            if let Some((_, oldest)) = conns.waiting.pop_first() {
                // Its thread sees end of file and ends, freeing its place.
                let _ = oldest.shutdown(Shutdown::Both);
            }
        }
        // A hard cap: dropped connections free their places a moment later
        // (wait for that, briefly), and event streams are not dropped.
        let until = Instant::now() + Duration::from_secs(1);
        while conns.open >= MAX_CONNS + MAX_STREAMS {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(conns);
                let _ = error(&stream, 503, "busy", &[]);
                return;
            }
            conns = shared
                .freed
                .wait_timeout(conns, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        conns.open += 1;
        conns.next += 1;
        let id = conns.next;
        if let Ok(clone) = stream.try_clone() {
            conns.waiting.insert(id, clone);
        }
        id
    };
    let shared2 = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("nsnet-http".into())
        .spawn(move || {
            connection(&shared2, id, stream);
            let mut conns = lock(&shared2.conns);
            conns.waiting.remove(&id);
            conns.open -= 1;
            shared2.freed.notify_all();
        });
    if spawned.is_err() {
        let mut conns = lock(&shared.conns);
        conns.waiting.remove(&id);
        conns.open -= 1;
    }
}

/// A parsed request: what the server looks at.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub host: String,
}

/// Why a request head was refused: (status, reason).
pub type Refusal = (u16, &'static str);

/// Reads a request head from `r`: up to the empty line, within the limits.
pub fn read_head(r: &mut impl Read, deadline: Instant) -> Result<Vec<u8>, Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let line = find(&buf, b"\r\n").unwrap_or(buf.len());
        if line > MAX_LINE {
            return Err((414, "URI Too Long"));
        }
        let end = find(&buf, b"\r\n\r\n");
        if end.unwrap_or(buf.len()) > MAX_HEAD {
            return Err((431, "Request Header Fields Too Large"));
        }
        if let Some(end) = end {
            buf.truncate(end);
            return Ok(buf);
        }
        if Instant::now() > deadline {
            return Err((408, "Request Timeout"));
        }
        match r.read(&mut chunk) {
            Ok(0) => return Err((0, "closed")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err((408, "Request Timeout"))
            }
            Err(_) => return Err((0, "closed")),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a request head (without the final empty line).
pub fn parse_head(head: &[u8]) -> Result<Request, Refusal> {
    const BAD: Refusal = (400, "Bad Request");
    let text = std::str::from_utf8(head).map_err(|_| BAD)?;
    let mut lines = text.split("\r\n");
    let first = lines.next().ok_or(BAD)?;
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(BAD);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(BAD);
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(BAD);
    }
    let mut host = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(BAD)?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ') {
            return Err(BAD);
        }
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err(BAD);
            }
            host = Some(value.trim().to_owned());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        host: host.ok_or(BAD)?,
    })
}

/// Whether `host` (a `Host` header) names the address the server listens on:
/// that address (any address literal when listening on all of them), or
/// `localhost` for a loopback address, with the port.
pub fn host_allowed(host: &str, local: SocketAddr) -> bool {
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(local.port()) {
        return false;
    }
    let ip = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<IpAddr>().ok(),
        None => name.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    };
    match ip {
        Some(ip) => local.ip().is_unspecified() || ip == local.ip(),
        None => name.eq_ignore_ascii_case("localhost") && local.ip().is_loopback(),
    }
}

fn connection(shared: &Shared, id: u64, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(HEAD_TIMEOUT));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let head = read_head(&mut &stream, deadline);
    lock(&shared.conns).waiting.remove(&id);
    let req = match head.and_then(|h| parse_head(&h)) {
        Ok(r) => r,
        Err((0, _)) => return,
        Err((status, _)) => {
            let _ = error(&stream, status, "", &[]);
            linger(&stream);
            return;
        }
    };
    if !host_allowed(&req.host, shared.local) {
        let _ = error(
            &stream,
            421,
            &format!("this server answers only to {}", shared.local),
            &[],
        );
        linger(&stream);
        return;
    }
    if req.method != "GET" {
        let _ = error(&stream, 405, "only GET", &[("Allow", "GET")]);
        linger(&stream);
        return;
    }
    let _ = route(shared, &stream, &req);
}

/// After an error, reads (briefly) what the client still sends, so closing
/// does not reset the connection before it read the answer.
fn linger(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < 256 * 1024 {
        match (&mut &*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

fn route(shared: &Shared, stream: &TcpStream, req: &Request) -> std::io::Result<()> {
    let snap = lock(&shared.snapshot).clone();
    match req.path.as_str() {
        "/" | "/index.html" => {
            let page = PAGE.replace("<!--SVG-->", strip_xml_decl(&snap.svg));
            respond(
                stream,
                200,
                "text/html; charset=utf-8",
                page.as_bytes(),
                &[],
            )
        }
        "/graph.svg" => respond(stream, 200, "image/svg+xml", snap.svg.as_bytes(), &[]),
        "/graph.json" => respond(stream, 200, "application/json", snap.json.as_bytes(), &[]),
        "/events" => events(shared, stream),
        "/doctor" => doctor_page(shared, stream, &req.query),
        _ => error(stream, 404, &format!("no {}", req.path), &[]),
    }
}

fn strip_xml_decl(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once('\n').map_or(svg, |(_, r)| r),
        None => svg,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn head_of(
    status: u16,
    content_type: &str,
    length: Option<usize>,
    extra: &[(&str, &str)],
) -> String {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\
Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
connect-src 'self'; img-src data:; frame-ancestors 'none'\r\nConnection: close\r\n",
        reason(status)
    );
    if let Some(n) = length {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

fn respond(
    mut stream: &TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let head = head_of(status, content_type, Some(body.len()), extra);
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn error(
    stream: &TcpStream,
    status: u16,
    detail: &str,
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut body = format!("{status} {}", reason(status));
    if !detail.is_empty() {
        body.push_str(": ");
        body.push_str(detail);
    }
    body.push('\n');
    respond(
        stream,
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        extra,
    )
}

/// One `graph` event: the version, the topology and its picture, on one line.
fn event_of(snap: &Snapshot) -> String {
    let svg = serde_json::to_string(strip_xml_decl(&snap.svg)).unwrap_or_default();
    format!(
        "event: graph\nid: {}\ndata: {{\"version\":{},\"graph\":{},\"svg\":{svg}}}\n\n",
        snap.version, snap.version, snap.json
    )
}

fn events(shared: &Shared, stream: &TcpStream) -> std::io::Result<()> {
    {
        let mut conns = lock(&shared.conns);
        if conns.streams >= MAX_STREAMS {
            drop(conns);
            return error(
                stream,
                503,
                "too many event streams",
                &[("Retry-After", "5")],
            );
        }
        conns.streams += 1;
    }
    let result = stream_events(shared, stream);
    lock(&shared.conns).streams -= 1;
    result
}

fn stream_events(shared: &Shared, mut stream: &TcpStream) -> std::io::Result<()> {
    stream.write_all(head_of(200, "text/event-stream", None, &[]).as_bytes())?;
    stream.write_all(b"retry: 1000\n\n")?;
    let mut sent = 0;
    loop {
        let snap = lock(&shared.snapshot).clone();
        if snap.version != sent {
            stream.write_all(event_of(&snap).as_bytes())?;
            stream.flush()?;
            sent = snap.version;
        }
        let guard = lock(&shared.snapshot);
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if guard.version != sent {
            continue;
        }
        let (_guard, waited) = shared
            .changed
            .wait_timeout(guard, KEEPALIVE)
            .unwrap_or_else(|e| e.into_inner());
        if waited.timed_out() {
            stream.write_all(b": keepalive\n\n")?;
        }
    }
}

/// Decodes `%XX` and `+` in a query value; `None` when malformed.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string.
pub fn query_value(query: &str, key: &str) -> Result<Option<String>, String> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return percent_decode(v)
                .map(Some)
                .ok_or_else(|| format!("{key}: bad percent-encoding"));
        }
    }
    Ok(None)
}

fn json_error(stream: &TcpStream, status: u16, msg: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "error": msg }).to_string();
    respond(stream, status, "application/json", body.as_bytes(), &[])
}

/// `/doctor?from=NS&to=DEST[:PORT[/PROTO]]`: nsnet's doctor, as JSON.
fn doctor_page(shared: &Shared, stream: &TcpStream, query: &str) -> std::io::Result<()> {
    let args = (|| -> Result<(Place, Destination), String> {
        let from = query_value(query, "from")?.ok_or("from: missing")?;
        let to = query_value(query, "to")?.ok_or("to: missing")?;
        let from: Place = from.parse().map_err(|e| format!("from: {e}"))?;
        let to: Destination = to.parse().map_err(|e| format!("to: {e}"))?;
        Ok((from, to))
    })();
    let (from, to) = match args {
        Ok(a) => a,
        Err(msg) => return json_error(stream, 400, &msg),
    };
    // One doctor at a time: it reads every namespace, and many at once would
    // slow the machine down for nsnet's own commands.
    let Ok(_one) = shared.doctor.try_lock() else {
        return json_error(stream, 503, "a doctor is running already; try again");
    };
    match doctor::diagnose(&shared.ctx, &from, &to) {
        Ok(report) => {
            let body = serde_json::to_string(&report).unwrap_or_default();
            respond(stream, 200, "application/json", body.as_bytes(), &[])
        }
        Err(doctor::Error::BadInput(msg)) => json_error(stream, 400, &msg),
        Err(e) => json_error(stream, 500, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        for bad in ["", "70000", "host:80", "1.2.3.4", ":80", "80x"] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn heads_parse_and_refuse() {
        let r = parse_head(b"GET /doctor?from=a HTTP/1.1\r\nHost: 127.0.0.1:8\r\nX: y").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/doctor");
        assert_eq!(r.query, "from=a");
        assert_eq!(r.host, "127.0.0.1:8");
        for bad in [
            &b"GET / HTTP/1.1"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b",
            b"GET  / HTTP/1.1\r\nHost: a",
            b"GET http://x/ HTTP/1.1\r\nHost: a",
            b"GET / HTTP/2\r\nHost: a",
            b"get / HTTP/1.1\r\nHost: a",
            b"GET / HTTP/1.1\r\nno colon",
            b"GET /\xff HTTP/1.1\r\nHost: a",
        ] {
            assert_eq!(parse_head(bad), Err((400, "Bad Request")), "{bad:?}");
        }
    }

    #[test]
    fn heads_have_limits() {
        let far = Instant::now() + Duration::from_secs(5);
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(10_000));
        assert_eq!(read_head(&mut long.as_bytes(), far).unwrap_err().0, 414);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(3000));
        assert_eq!(read_head(&mut many.as_bytes(), far).unwrap_err().0, 431);
        let ok = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
        assert_eq!(
            read_head(&mut &ok[..], far).unwrap(),
            b"GET / HTTP/1.1\r\nHost: a"
        );
        assert_eq!(read_head(&mut &b"GET / HT"[..], far).unwrap_err().0, 0);
    }

    #[test]
    fn only_the_listening_address_is_a_host() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(host_allowed("127.0.0.1:8080", lo));
        assert!(host_allowed("localhost:8080", lo));
        for bad in [
            "127.0.0.1",
            "127.0.0.1:8081",
            "evil.example:8080",
            "127.0.0.2:8080",
            "[::1]:8080",
            "",
        ] {
            assert!(!host_allowed(bad, lo), "{bad}");
        }
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert!(host_allowed("192.0.2.1:80", any));
        assert!(!host_allowed("localhost:80", any));
        assert!(!host_allowed("rebind.example:80", any));
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(host_allowed("[::1]:80", v6));
        assert!(host_allowed("localhost:80", v6));
    }

    #[test]
    fn queries_decode() {
        assert_eq!(
            query_value("from=a&to=10.0.0.2%3A80", "to").unwrap(),
            Some("10.0.0.2:80".into())
        );
        assert_eq!(query_value("from=a", "to").unwrap(), None);
        assert!(query_value("to=%zz", "to").is_err());
        assert!(query_value("to=%ff", "to").is_err());
        assert_eq!(percent_decode("a+b%20c").unwrap(), "a b c");
    }
}
