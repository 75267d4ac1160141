//! A raw downstream client and an in-process proxy for integration tests.
//!
//! The client writes exactly the bytes a test gives it (so malformed requests reach the
//! proxy as written) and reads responses with its own small parser. The proxy is the
//! real library: a decK document loaded with `load_str`, compiled into a snapshot and
//! served by `Server` on 127.0.0.1 port 0, on the monoio driver the test names.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ringgate::server::{IoDriver, Limits, Server, ServerOptions};
use ringgate::snapshot::{Resolved, SharedSnapshot, Snapshot};

/// A running in-process proxy; stopped on drop.
pub struct Proxy {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub shared: SharedSnapshot,
}

impl Proxy {
    pub fn start(yaml: &str, driver: IoDriver, limits: Limits) -> Proxy {
        Proxy::start_snapshot(snapshot(yaml), driver, limits)
    }

    pub fn start_snapshot(snap: Snapshot, driver: IoDriver, limits: Limits) -> Proxy {
        Proxy::start_workers(snap, driver, limits, 2)
    }

    /// With `workers` workers (one, for a test that needs every connection on the same
    /// worker's state).
    pub fn start_workers(snap: Snapshot, driver: IoDriver, limits: Limits, workers: usize) -> Proxy {
        Proxy::start_with_control(snap, driver, limits, workers, ringgate::control::ControlOptions::default())
    }

    /// With these control-plane options (the IdP-facing command-line settings).
    pub fn start_with_control(
        snap: Snapshot,
        driver: IoDriver,
        limits: Limits,
        workers: usize,
        options: ringgate::control::ControlOptions,
    ) -> Proxy {
        let shared = Arc::new(ArcSwap::from_pointee(snap));
        let server = Server::start(
            ServerOptions {
                listen: vec!["127.0.0.1:0".parse().unwrap()],
                tls_listen: Vec::new(),
                workers,
                driver,
                limits,
                control: Some(
                    ringgate::control::ControlPlane::start_with(ringgate::oidc::cache::SystemClock::new(), options)
                        .expect("control plane starts"),
                ),
                access_log: None,
                cpus: None,
            },
            shared.clone(),
        )
        .expect("proxy starts");
        let addr = server.local_addrs[0];
        Proxy { server: Some(server), addr, shared }
    }

    /// The proxy's metrics in the Prometheus text format, as `/metrics` serves them.
    pub fn metrics(&self) -> String {
        self.server.as_ref().expect("running").metrics().render()
    }

    /// Swaps in a new configuration, as a reload does.
    pub fn reload(&self, yaml: &str) {
        self.shared.store(Arc::new(snapshot(yaml)));
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends one request on a new connection and returns the response.
    pub fn send(&self, raw: &[u8]) -> Response {
        let mut c = self.connect();
        c.write(raw);
        c.response().expect("a response")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop(Duration::from_secs(5));
        }
    }
}

pub fn snapshot(yaml: &str) -> Snapshot {
    snapshot_with(yaml, &mut Resolved::new())
}

/// A snapshot whose host name lookups are answered from `resolved` first.
pub fn snapshot_with(yaml: &str, resolved: &mut Resolved) -> Snapshot {
    let cfg = ringgate::config::load_str(yaml, "test.yaml", &|k| std::env::var(k).ok()).expect("test config loads");
    Snapshot::build(cfg, resolved).expect("test config compiles")
}

/// A service on `upstream` with one route per `(name, yaml-route-body)`.
pub fn config_for(upstream: SocketAddr, routes: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{upstream}\n  read_timeout: 2000\n  routes:\n{routes}"
    )
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to proxy");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { stream, buf: Vec::new() }
    }

    pub fn write(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write to proxy");
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads one response; `None` if the connection closed first. `head_request`
    /// responses carry no body.
    pub fn response_to(&mut self, head_request: bool) -> Option<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf).expect("well-formed response") {
                httparse::Status::Complete(len) => {
                    let status = resp.code.unwrap();
                    let hs: Vec<(String, String)> = resp
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    self.buf.drain(..len);
                    let get = |n: &str| hs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
                    let body = if head_request || status < 200 || status == 204 || status == 304 {
                        Vec::new()
                    } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
                        self.read_chunked()
                    } else if let Some(cl) = get("content-length") {
                        let n: usize = cl.parse().expect("numeric content-length");
                        while self.buf.len() < n {
                            assert!(self.fill(), "connection closed inside a body");
                        }
                        self.buf.drain(..n).collect()
                    } else {
                        while self.fill() {}
                        std::mem::take(&mut self.buf)
                    };
                    return Some(Response { status, headers: hs, body });
                }
                httparse::Status::Partial => {
                    if !self.fill() {
                        assert!(self.buf.is_empty(), "connection closed inside a response head");
                        return None;
                    }
                }
            }
        }
    }

    pub fn response(&mut self) -> Option<Response> {
        self.response_to(false)
    }

    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.line();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).expect("hex chunk size");
            if size == 0 {
                while !self.line().is_empty() {}
                return body;
            }
            while self.buf.len() < size + 2 {
                assert!(self.fill(), "closed inside a chunk");
            }
            body.extend(self.buf.drain(..size));
            assert_eq!(&self.buf[..2], b"\r\n");
            self.buf.drain(..2);
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return l;
            }
            assert!(self.fill(), "closed inside a chunk line");
        }
    }

    /// Whether the proxy closed the connection (EOF within `within`), with no further
    /// bytes sent.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let until = Instant::now() + within;
        let mut tmp = [0u8; 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return self.buf.is_empty(),
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return self.buf.is_empty(),
                Err(_) => return false,
            }
            if Instant::now() > until {
                return false;
            }
        }
    }
}

/// Runs a test body once on each monoio driver.
#[macro_export]
macro_rules! on_both_drivers {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn io_uring() {
                ($body)(ringgate::server::IoDriver::IoUring)
            }
            #[test]
            fn legacy() {
                ($body)(ringgate::server::IoDriver::Legacy)
            }
        }
    };
}

/// One HTTP/1.1 request on a fresh connection to `authority` (`host:port`), read to the
/// close: the status and the body, de-chunked when the response was chunked. For the
/// test IdP's own API and the Admin API, whose answers the tests read whole.
pub fn request_once(authority: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let Some(split) = out.windows(4).position(|w| w == b"\r\n\r\n") else { return (0, Vec::new()) };
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut rest = &out[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return (status, rest.to_vec());
    }
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        if size == 0 {
            return (status, body);
        }
        body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 4 + size..];
    }
}
