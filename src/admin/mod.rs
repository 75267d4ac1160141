//! The Kong-compatible Admin API: its listener thread, who may call it, and the hooks
//! the rest of the process plugs into it.
//!
//! The listener runs on a thread of its own (`ringgate-admin`): a current-thread tokio
//! runtime serving HTTP/1.1 with hyper, never on a worker. Each request is checked
//! against the admin token, read whole (at most [`MAX_BODY`], within a time limit),
//! and answered by [`api::handle`] on tokio's blocking pool, with the [`Admin`] state
//! behind one mutex: changes are applied one at a time, and a change may block (it
//! resolves new upstream names). `GET /metrics` does not take the mutex, so a scrape
//! never waits behind a change.
//!
//! Who may call it: the listener refuses to bind an address that is not loopback
//! unless an admin token is configured, and with a token every request must carry it,
//! as `Kong-Admin-Token: <token>` (Kong Enterprise's header) or `Authorization: Bearer
//! <token>`; anything else is 401. The comparison is of SHA-256 digests, in constant
//! time ([`AdminToken::verify`]): neither the token's bytes nor its length can be
//! learnt from response times. The token is never logged or echoed.
//!
//! Invariants: the running configuration only changes through [`apply`]; no response
//! carries a secret ([`api::REDACTED`]). Cost: admin traffic only, off the request path.

pub mod api;
pub mod apply;
pub mod form;
pub mod persist;
pub mod store;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

pub use apply::{Admin, NodeInfo};

/// The largest request body read (a whole `POST /config` document fits).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long a connection may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections open at once; more wait in the listen backlog. The process's file
/// descriptors are shared with the proxy, which an unbounded admin listener could use
/// up (a caller without the token can still hold sockets open).
pub const MAX_CONNECTIONS: usize = 64;

/// How long a request may take to send its body (a whole [`MAX_BODY`] at well under a
/// megabyte a second); then 408, as nginx's `client_body_timeout` answers.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection counters for `GET /status`, in Kong's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    pub active: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
    pub accepted: u64,
    pub handled: u64,
    pub total_requests: u64,
}

/// Renders the Prometheus exposition for `GET /metrics`.
pub type MetricsFn = Box<dyn Fn() -> String + Send + Sync>;
/// Reads the connection counters for `GET /status`.
pub type ConnectionsFn = Box<dyn Fn() -> ConnectionCounts + Send + Sync>;

/// What other parts of the process provide to the Admin API, set once when they exist
/// (the metrics registry comes with the workers, after the Admin API is up). Unset
/// hooks answer empty: `/metrics` an empty exposition, `/status` `null` counters.
#[derive(Default)]
pub struct Hooks {
    pub metrics: std::sync::OnceLock<MetricsFn>,
    pub connections: std::sync::OnceLock<ConnectionsFn>,
}

/// Why the Admin API did not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A non-loopback address without a token would let anyone on the network
    /// reconfigure the proxy.
    #[error(
        "refusing to serve the Admin API on {0}: it is not a loopback address and no admin token is set \
         (--admin-token or RINGGATE_ADMIN_TOKEN)"
    )]
    Exposed(SocketAddr),
    /// An empty token would accept an empty header.
    #[error("the admin token is empty")]
    EmptyToken,
    #[error("cannot listen on {addr} for the Admin API: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the Admin API thread: {0}")]
    Thread(std::io::Error),
}

/// The admin token, kept as its SHA-256 digest. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Equality of two digests in time independent of where they differ: every byte is
/// compared, and the result is read through `black_box` so the compiler cannot turn
/// the fold into an early exit. (ring's `verify_slices_are_equal` is deprecated.)
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl AdminToken {
    pub fn new(token: &str) -> Result<AdminToken, AdminError> {
        if token.is_empty() {
            return Err(AdminError::EmptyToken);
        }
        Ok(AdminToken(sha256(token.as_bytes())))
    }

    /// Whether `presented` is the token. Digests are compared, so the time taken does
    /// not depend on the token's length or on how much of it matched.
    pub fn verify(&self, presented: &[u8]) -> bool {
        digests_equal(&self.0, &sha256(presented))
    }

    /// Whether a request's headers carry the token.
    fn admits(&self, headers: &hyper::HeaderMap) -> bool {
        let kong = headers.get("kong-admin-token").map(HeaderValue::as_bytes);
        let bearer = headers.get(AUTHORIZATION).and_then(|v| {
            let v = v.as_bytes();
            (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| &v[7..])
        });
        // Both are checked, whichever is present, so timing does not tell which.
        let a = kong.is_some_and(|t| self.verify(t));
        let b = bearer.is_some_and(|t| self.verify(t));
        a | b
    }
}

/// A `--control-plane-id`: a UUID, as Konnect's control plane ids are, lower-cased.
pub fn control_plane_id(s: &str) -> Result<String, String> {
    if crate::config::is_uuid(s) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!("{s:?} is not a UUID (Konnect's control plane ids are)"))
    }
}

/// Loopback, including IPv4-mapped IPv6 loopback.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Locks the state; a panic while it was held (there should be none) must not take
/// the Admin API down for good.
pub fn lock(admin: &Mutex<Admin>) -> MutexGuard<'_, Admin> {
    admin.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared {
    admin: Arc<Mutex<Admin>>,
    /// What the probes read (`/status`, and `/metrics` through its hooks).
    status: apply::StatusView,
    token: Option<AdminToken>,
}

/// Binds `listen` and serves the Admin API on its own thread. Returns the bound
/// address (the port when `listen` had port 0).
pub fn serve(
    listen: SocketAddr,
    token: Option<AdminToken>,
    admin: Arc<Mutex<Admin>>,
) -> Result<SocketAddr, AdminError> {
    if token.is_none() && !is_loopback(listen.ip()) {
        return Err(AdminError::Exposed(listen));
    }
    let bind = |source| AdminError::Bind { addr: listen, source };
    let listener = std::net::TcpListener::bind(listen).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(AdminError::Thread)?;
    let status = lock(&admin).status_view();
    let shared = Arc::new(Shared { admin, status, token });
    std::thread::Builder::new()
        .name("ringgate-admin".into())
        .spawn(move || runtime.block_on(accept_loop(listener, shared)))
        .map_err(AdminError::Thread)?;
    Ok(local)
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the Admin API cannot listen");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

fn http_response(r: api::Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if r.status != 204 {
        out.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    }
    out.headers_mut().insert("server", HeaderValue::from_static(concat!("ringgate/", env!("CARGO_PKG_VERSION"))));
    out
}

/// A request body, whole: at most [`MAX_BODY`] bytes (413), within `timeout` (408).
async fn read_body<B>(body: B, timeout: Duration) -> Result<Bytes, api::Response>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(api::Response::message(413, "Request body too large"))
        }
        Ok(Err(_)) => Err(api::Response::message(400, "Cannot read the request body")),
        Err(_) => Err(api::Response::message(408, "Request timeout")),
    }
}

async fn answer(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if let Some(token) = &shared.token {
        if !token.admits(req.headers()) {
            let mut r = http_response(api::Response::message(401, "Unauthorized"));
            r.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"ringgate admin\""));
            return Ok(r);
        }
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    // The probes: answered from shared state, never behind a change holding the lock.
    if method == "GET" {
        match path.trim_end_matches('/') {
            "/metrics" => return Ok(http_response(api::metrics(&shared.status.hooks))),
            "/status" => return Ok(http_response(api::status(&shared.status))),
            _ => {}
        }
    }
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match read_body(req.into_body(), BODY_TIMEOUT).await {
        Ok(body) => body,
        Err(refused) => return Ok(http_response(refused)),
    };
    let admin = shared.admin.clone();
    let (m, p) = (method.clone(), path.clone());
    let handled = tokio::task::spawn_blocking(move || {
        let req = api::Request { method: &m, path: &p, content_type: content_type.as_deref(), body: &body };
        api::handle(&mut lock(&admin), &req)
    })
    .await;
    let response = handled.unwrap_or_else(|_| api::Response::message(500, "internal error"));
    if method == "GET" {
        tracing::debug!(method, path, status = response.status, "admin request");
    } else {
        tracing::info!(method, path, status = response.status, "admin request");
    }
    Ok(http_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_checked_whole_and_by_digest() {
        let t = AdminToken::new("s3cret-token").unwrap();
        assert!(t.verify(b"s3cret-token"));
        assert!(!t.verify(b"s3cret-toke"));
        assert!(!t.verify(b"s3cret-token "));
        assert!(!t.verify(b""));
        assert!(matches!(AdminToken::new(""), Err(AdminError::EmptyToken)));
        assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
    }

    #[test]
    fn token_is_read_from_kong_header_or_bearer() {
        let t = AdminToken::new("abc").unwrap();
        let with = |name: &'static str, value: &'static str| {
            let mut h = hyper::HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            t.admits(&h)
        };
        assert!(with("kong-admin-token", "abc"));
        assert!(with("authorization", "Bearer abc"));
        assert!(with("authorization", "bearer abc"));
        assert!(!with("authorization", "Basic abc"));
        assert!(!with("authorization", "Bearer abd"));
        assert!(!with("kong-admin-token", "abcd"));
        assert!(!t.admits(&hyper::HeaderMap::new()));
    }

    #[test]
    fn loopback_covers_v4_v6_and_mapped() {
        assert!(is_loopback("127.0.0.2".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("::".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }

    /// A body whose sender stalls after its head.
    struct Stalled;

    impl hyper::body::Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            std::task::Poll::Pending
        }
    }

    #[test]
    fn a_body_is_read_whole_within_its_size_and_time() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let ok = read_body(Full::new(Bytes::from_static(b"{}")), BODY_TIMEOUT).await;
            assert_eq!(ok.ok().as_deref(), Some(&b"{}"[..]));
            let big = Full::new(Bytes::from(vec![b' '; MAX_BODY + 1]));
            assert_eq!(read_body(big, BODY_TIMEOUT).await.map_err(|r| r.status), Err(413));
            let stalled = read_body(Stalled, Duration::from_millis(20)).await;
            assert_eq!(stalled.map_err(|r| r.status), Err(408), "a stalled sender does not hold the connection");
        });
    }

    /// One HTTP/1.1 GET on a fresh connection; the status line and body, or `None`
    /// when nothing came back within `wait`.
    fn get(addr: SocketAddr, path: &str, wait: Duration) -> Option<(String, String)> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(wait)).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        Some((head.lines().next()?.to_string(), body.to_string()))
    }

    #[test]
    fn status_is_answered_while_a_change_holds_the_lock_and_follows_it() {
        use crate::config::Config;
        use crate::snapshot::{Resolved, Snapshot};
        use serde_json::Value;
        let empty = Snapshot::build(Config::default(), &mut Resolved::new()).unwrap();
        let node = NodeInfo { node_id: "n".into(), hostname: "h".into(), workers: 3, configuration: Value::Null };
        let shared = Arc::new(arc_swap::ArcSwap::from_pointee(empty));
        let admin = Arc::new(Mutex::new(Admin::new(shared, None, None, node, Arc::new(Hooks::default()))));
        let addr = serve("127.0.0.1:0".parse().unwrap(), None, admin.clone()).unwrap();
        let hash = |body: &str| serde_json::from_str::<Value>(body).unwrap()["configuration_hash"].clone();

        let held = lock(&admin);
        let (status, body) = get(addr, "/status", Duration::from_secs(5)).expect("GET /status waited for the lock");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let before = hash(&body);
        assert!(before.as_str().is_some_and(|h| h.len() == 32), "{body}");
        // Anything else waits for the change to finish.
        assert_eq!(get(addr, "/services", Duration::from_millis(300)), None);
        drop(held);

        let service = r#"{"name":"svc","url":"http://127.0.0.1:9/"}"#;
        let req = api::Request {
            method: "POST",
            path: "/services",
            content_type: Some("application/json"),
            body: service.as_bytes(),
        };
        assert_eq!(api::handle(&mut lock(&admin), &req).status, 201);
        let (_, body) = get(addr, "/status", Duration::from_secs(5)).unwrap();
        assert_ne!(hash(&body), before, "the hash follows the change");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ringgate"]["workers"], 3);
    }

    #[test]
    fn digests_equal_compares_every_byte() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(digests_equal(&a, &b));
        b[31] ^= 1;
        assert!(!digests_equal(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!digests_equal(&a, &b));
    }
}
