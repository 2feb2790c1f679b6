//! `nsnet graph --serve`: a real server in each sandbox's network namespace on
//! 127.0.0.1, asked by real HTTP requests from sockets this test opens inside
//! that namespace; what it serves is checked against the kernel (`ip -j`).

mod common;
use common::{Sandbox, NSNET};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `nsnet graph --serve 0` in a sandbox; killed on drop.
struct Server {
    child: Child,
    port: u16,
    ns: String,
}

impl Server {
    fn start(sb: &Sandbox) -> Server {
        let mut child = sb
            .command(NSNET)
            .args(["graph", "--serve", "0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting nsnet graph --serve");
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // nsnet: graph: serving http://127.0.0.1:PORT/ (Ctrl-C stops)
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child,
            port,
            ns: sb.net_ns_path(),
        }
    }

    /// The nsnet process (nsenter forks it as its child).
    fn pid(&self) -> u32 {
        let id = self.child.id();
        let kids = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap();
        kids.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// A TCP connection to the server, opened inside the sandbox's namespace
    /// (by a thread that enters it and ends; the socket stays there).
    fn connect(&self) -> TcpStream {
        let (ns, port) = (self.ns.clone(), self.port);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&ns).unwrap();
            // SAFETY: setns on a valid descriptor changes only this thread's
            // network namespace; the thread ends right after connecting.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            TcpStream::connect(("127.0.0.1", port)).expect("connecting to the server")
        })
        .join()
        .unwrap()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `raw`, reads the whole answer: (status, head, body).
    fn raw(&self, raw: &[u8]) -> (u16, String, String) {
        let mut s = self.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no answer: {text:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line: {head:?}"));
        (status, head.to_owned(), body.to_owned())
    }

    fn request(&self, method: &str, path: &str) -> (u16, String, String) {
        self.raw(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                self.host()
            )
            .as_bytes(),
        )
    }

    fn get(&self, path: &str) -> String {
        let (status, head, body) = self.request("GET", path);
        assert_eq!(status, 200, "GET {path}: {head}\n{body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build(sb: &Sandbox) {
    sb.netns(&["red", "blue", "a", "b"]);
    sb.ok(&[
        "link",
        "add",
        "red",
        "blue",
        "--addr",
        "192.0.2.100/25",
        "--peer-addr",
        "192.0.2.101/25",
    ]);
    sb.ok(&["network", "create", "web", "--subnet", "198.51.100.0/24"]);
    sb.ok(&["network", "connect", "web", "a"]);
    sb.ok(&["network", "connect", "web", "b"]);
    sb.ok(&["pod", "create", "shop", "--network", "web", "-p", "8080:80"]);
}

/// Every (namespace, interface) the kernel has, by `ip -j link`.
fn kernel_objects(sb: &Sandbox) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ns in ["host", "red", "blue", "a", "b", "shop"] {
        for link in sb.links(ns) {
            out.push((ns.to_owned(), link));
        }
    }
    out
}

#[test]
fn the_page_the_picture_and_the_data_show_every_object() {
    let sb = Sandbox::new();
    build(&sb);
    let server = Server::start(&sb);
    let page = server.get("/");
    let svg = server.get("/graph.svg");
    let json: Value = serde_json::from_str(&server.get("/graph.json")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("new EventSource(\"/events\")"));
    // Self-contained: nothing fetched from another origin.
    for outside in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!page.contains(outside), "the page fetches {outside}");
    }
    let objects = kernel_objects(&sb);
    assert!(objects.iter().any(|(_, l)| l == "nsbr-web"));
    for (ns, link) in &objects {
        let ns_id = format!("data-id=\"ns:{ns}\"");
        let if_id = format!("data-id=\"if:{ns}/{link}\"");
        for (what, text) in [("page", &page), ("svg", &svg)] {
            assert!(text.contains(&ns_id), "{what} lacks {ns_id}");
            assert!(text.contains(&if_id), "{what} lacks {if_id}");
        }
        let in_json = json["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == ns.as_str())
            .unwrap_or_else(|| panic!("graph.json lacks {ns}"))["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == link.as_str());
        assert!(in_json, "graph.json lacks {link} in {ns}");
    }
    // The published port, drawn and in the data.
    assert!(svg.contains("data-id=\"port:0\""));
    assert!(svg.contains("*:8080-&gt;80/tcp"));
    assert_eq!(json["ports"][0]["spec"], "*:8080->80/tcp");
}

/// Reads server-sent events until one satisfies `want`, or `limit` passes.
fn next_event(reader: &mut BufReader<TcpStream>, limit: Duration) -> Option<Value> {
    let start = Instant::now();
    let mut line = String::new();
    while start.elapsed() < limit {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(_) => continue,
        }
        if let Some(data) = line.strip_prefix("data: ") {
            return Some(serde_json::from_str(data.trim_end()).expect("event data is JSON"));
        }
    }
    None
}

#[test]
fn events_bring_a_new_endpoint_within_two_seconds() {
    let sb = Sandbox::new();
    build(&sb);
    sb.netns(&["c"]);
    let server = Server::start(&sb);
    let mut s = server.connect();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", server.host()).unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    while status.is_empty() {
        let _ = reader.read_line(&mut status);
    }
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let first = next_event(&mut reader, Duration::from_secs(5)).expect("a first event");
    let has_c = |v: &Value| {
        v["graph"]["networks"][0]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["namespace"] == "c")
    };
    assert!(!has_c(&first));
    sb.ok(&["network", "connect", "web", "c"]);
    let connected = Instant::now();
    let link = sb.links("c").into_iter().find(|l| l != "lo").unwrap();
    loop {
        let left = Duration::from_secs(2).saturating_sub(connected.elapsed());
        let ev = next_event(&mut reader, left)
            .unwrap_or_else(|| panic!("no event with c within 2 s of the connect"));
        assert!(ev["version"].as_u64() > first["version"].as_u64());
        if has_c(&ev) {
            assert!(ev["svg"]
                .as_str()
                .unwrap()
                .contains(&format!("data-id=\"if:c/{link}\"")));
            break;
        }
    }
}

#[test]
fn bad_requests_get_errors() {
    let sb = Sandbox::new();
    let server = Server::start(&sb);
    for method in ["POST", "PUT", "DELETE"] {
        let (status, head, _) = server.request(method, "/");
        assert_eq!(status, 405, "{method}: {head}");
        assert!(head.contains("\r\nAllow: GET"), "{head}");
    }
    assert_eq!(server.request("GET", "/nope").0, 404);
    let long = format!("/{}", "a".repeat(10 * 1024));
    assert_eq!(server.request("GET", &long).0, 414);
    let big_headers = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\n{}\r\n",
        server.host(),
        "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(500)
    );
    assert_eq!(server.raw(big_headers.as_bytes()).0, 431);
    let port = server.port;
    for host in [
        format!("rebind.example:{port}"),
        format!("127.0.0.2:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let (status, head, _) =
            server.raw(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert!(matches!(status, 421 | 403), "Host {host}: {head}");
    }
    assert_eq!(server.raw(b"GET / HTTP/1.1\r\n\r\n").0, 400);
    assert_eq!(server.raw(b"HELLO\r\n\r\n").0, 400);
    assert_eq!(
        server
            .raw(format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n").as_bytes())
            .0,
        200
    );
    // Still serving after all that.
    server.get("/graph.json");
}

#[test]
fn idle_connections_stop_nothing() {
    let sb = Sandbox::new();
    build(&sb);
    sb.netns(&["c", "d"]);
    let time = |ns: &str| {
        let start = Instant::now();
        sb.ok(&["network", "connect", "web", ns]);
        start.elapsed()
    };
    let server = Server::start(&sb);
    let alone = time("c");
    let idle: Vec<TcpStream> = (0..200).map(|_| server.connect()).collect();
    // Half of them sent part of a request and stopped.
    for s in idle.iter().step_by(2) {
        let _ = (&*s).write_all(b"GET / HT");
    }
    // A thread per connection, but not one per idle connection: a cap.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let threads: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(
        threads <= 64 + 32 + 4,
        "{threads} threads for 200 idle connections"
    );
    let start = Instant::now();
    let json = server.get("/graph.json");
    assert!(json.starts_with('{'));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a request waited {:?} behind idle connections",
        start.elapsed()
    );
    let busy = time("d");
    assert!(
        busy < alone * 3 + Duration::from_millis(500),
        "network connect took {busy:?} with 200 idle connections, {alone:?} without"
    );
    drop(idle);
    // Event streams have a cap of their own; past it, 503, and GET still works.
    let open = |server: &Server| {
        let mut s = server.connect();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", server.host()).unwrap();
        let mut line = String::new();
        let mut r = BufReader::new(s);
        r.read_line(&mut line).unwrap();
        (line, r)
    };
    let mut streams = Vec::new();
    for _ in 0..32 {
        let (status, r) = open(&server);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        streams.push(r);
    }
    let (status, _) = open(&server);
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    server.get("/graph.svg");
}

#[test]
fn sigterm_and_sigint_stop_the_server() {
    let sb = Sandbox::new();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        stops_on(&sb, signal);
    }
}

fn stops_on(sb: &Sandbox, signal: libc::c_int) {
    let mut server = Server::start(sb);
    server.get("/graph.svg");
    // An open event stream does not keep it running.
    let mut stream = server.connect();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.host()
    )
    .unwrap();
    let pid = server.pid();
    // SAFETY: kill sends a signal to the nsnet process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still running 3 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    // Nothing left listening.
    let listening = sb.sh_ok("ss -Htln");
    assert!(
        !listening.contains(&format!(":{} ", server.port)),
        "{listening}"
    );
}

#[test]
fn doctor_from_the_page_answers_with_its_json() {
    let sb = Sandbox::new();
    build(&sb);
    let server = Server::start(&sb);
    let clear: Value = serde_json::from_str(&server.get("/doctor?from=a&to=b")).unwrap();
    assert_eq!(clear["clear"], true, "{clear}");
    assert!(!clear["hops"].as_array().unwrap().is_empty());
    // The same verdict as the CLI gives.
    let cli: Value = serde_json::from_str(&sb.ok(&["doctor", "a", "b", "--json"])).unwrap();
    assert_eq!(clear["hops"], cli["hops"]);
    // red and blue share no network with a: blocked.
    let blocked: Value =
        serde_json::from_str(&server.get("/doctor?from=a&to=192.0.2.101%3A80")).unwrap();
    assert_eq!(blocked["clear"], false, "{blocked}");
    assert!(blocked["hops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["status"] == "fail"));
    let (status, _, body) = server.request("GET", "/doctor?from=nowhere&to=b");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("error"), "{body}");
    assert_eq!(server.request("GET", "/doctor?from=a").0, 400);
}

/// Chromium, headless, driven through its DevTools protocol over a pipe
/// (`--remote-debugging-pipe`: JSON messages ended by NUL on fds 3 and 4),
/// running inside the sandbox; killed on drop with its profile directory.
struct Browser {
    child: Child,
    to: std::fs::File,
    from: std::sync::mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    fn open(sb: &Sandbox, url: &str) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "nsnet-serve-chromium-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let (to_read, to_write) = pipe();
        let (from_read, from_write) = pipe();
        let (r3, w4) = (to_read.as_raw_fd(), from_write.as_raw_fd());
        let mut cmd = sb.command("chromium");
        cmd.args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--disable-background-networking", "--no-first-run"])
            .args(["--disable-component-update", "--remote-debugging-pipe"])
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only fcntl and dup2 run, which are
        // async-signal-safe; they put the pipe ends on the fds chromium expects
        // (dup2 leaves the new descriptors open across exec).
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                // Out of the way first: the pipes may sit on 3 or 4 already.
                let r = libc::fcntl(r3, libc::F_DUPFD_CLOEXEC, 10);
                let w = libc::fcntl(w4, libc::F_DUPFD_CLOEXEC, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting chromium");
        drop(to_read);
        drop(from_write);
        let (tx, from) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from_read);
            let mut msg = Vec::new();
            while r.read_until(0, &mut msg).unwrap_or(0) > 0 {
                if msg.last() == Some(&0) {
                    msg.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&msg) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                msg.clear();
            }
        });
        let mut b = Browser {
            child,
            to: to_write,
            from,
            next_id: 0,
            session: String::new(),
            profile,
        };
        let target = b.call("Target.createTarget", serde_json::json!({ "url": url }));
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target["targetId"], "flatten": true }),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expr, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }

    /// With `NSNET_SCREENSHOTS=DIR`, saves a picture of the page as DIR/NAME.png
    /// (the README's pictures are made this way).
    fn screenshot(&mut self, name: &str) {
        let Some(dir) = std::env::var_os("NSNET_SCREENSHOTS") else {
            return;
        };
        self.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"));
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
    }

    /// Waits until `expr` is true in the page; how long it took.
    fn wait(&mut self, expr: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.eval(expr) != Value::Bool(true) {
            assert!(start.elapsed() < limit, "not true within {limit:?}: {expr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closed by asking, so it is gone before its profile is removed.
        let _ = self
            .to
            .write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, each owned by
    // exactly one File below.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// Every `data-id` drawn in the page's picture.
const DRAWN: &str = "JSON.stringify([...document.querySelectorAll('#view [data-id]')]\
.map(e => e.getAttribute('data-id')))";

#[test]
fn a_headless_browser_sees_the_topology_live_and_runs_doctor() {
    let sb = Sandbox::new();
    build(&sb);
    sb.netns(&["c"]);
    let server = Server::start(&sb);
    let mut browser = Browser::open(&sb, &format!("http://{}/", server.host()));
    browser.wait(
        "document.getElementById('status').textContent.startsWith('live')",
        Duration::from_secs(10),
    );
    let drawn: Vec<String> = serde_json::from_str(browser.eval(DRAWN).as_str().unwrap()).unwrap();
    for (ns, link) in kernel_objects(&sb) {
        for id in [format!("ns:{ns}"), format!("if:{ns}/{link}")] {
            assert!(drawn.contains(&id), "the page lacks {id}: {drawn:?}");
        }
    }
    assert!(drawn.iter().any(|d| d.starts_with("veth:")), "{drawn:?}");
    assert!(drawn.contains(&"port:0".to_owned()), "{drawn:?}");

    browser.screenshot("serve-before");

    // Live: a connect shows up without a reload (the marker survives).
    browser.eval("window.notReloaded = true");
    sb.ok(&["network", "connect", "web", "c"]);
    let link = sb.links("c").into_iter().find(|l| l != "lo").unwrap();
    let took = browser.wait(
        &format!("!!document.querySelector('#view [data-id=\"if:c/{link}\"]')"),
        Duration::from_secs(2),
    );
    assert_eq!(
        browser.eval("window.notReloaded === true"),
        Value::Bool(true)
    );
    eprintln!("the new endpoint appeared in the page after {took:?}");
    browser.screenshot("serve-after");

    // Details: clicking c's interface shows its MAC and addresses as the kernel has them.
    let ip: Value = sb.json(&format!("ip -n c -j addr show dev {link}"));
    let mac = ip[0]["address"].as_str().unwrap().to_owned();
    let addr = ip[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["family"] == "inet")
        .map(|a| a["local"].as_str().unwrap().to_owned())
        .unwrap();
    browser.eval(&format!(
        "document.querySelector('#view [data-id=\"if:c/{link}\"]')\
.dispatchEvent(new MouseEvent('click', {{bubbles: true}}))"
    ));
    let details = browser.eval("document.getElementById('details').textContent");
    let details = details.as_str().unwrap();
    for want in [mac.as_str(), addr.as_str(), "web"] {
        assert!(details.contains(want), "details lack {want}: {details}");
    }

    // Doctor from the page: FROM picked on the picture, TO typed; a blocked
    // path, its verdict and hops shown.
    browser.eval(
        "document.querySelector('#view [data-id=\"ns:a\"] text')\
.dispatchEvent(new MouseEvent('click', {bubbles: true}));\
document.querySelector('#details button[data-pick=from]').click()",
    );
    assert_eq!(
        browser.eval("document.getElementById('from').value"),
        Value::from("a")
    );
    browser.eval(
        "document.getElementById('to').value = '192.0.2.101:80';\
document.querySelector('#doctor button').click()",
    );
    browser.wait(
        "document.getElementById('verdict').textContent.startsWith('blocked in')",
        Duration::from_secs(20),
    );
    browser.screenshot("serve-doctor");
    let hops = browser.eval("document.querySelectorAll('#hops li.fail').length");
    assert!(hops.as_u64().unwrap() >= 1, "{hops}");
    // The namespace where the path is blocked is marked on the picture.
    let report: Value =
        serde_json::from_str(&server.get("/doctor?from=a&to=192.0.2.101%3A80")).unwrap();
    let blocked = report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["status"] == "fail")
        .unwrap()["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        browser.eval("document.querySelector('#view .hop-fail').getAttribute('data-id')"),
        Value::from(format!("ns:{blocked}"))
    );
}
