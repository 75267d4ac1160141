//! One downstream connection, from accept to close: the request path proper.
//!
//! Phases per request, in order (pingora's naming): read the head (idle timeout before
//! its first byte, header timeout for the rest) → parse and check it → route → write the
//! upstream head with the body bytes already read → stream the rest of the body →
//! read the upstream response head → write the downstream head → relay the response
//! body → return the upstream connection to the pool and go round again.
//!
//! Invariants:
//! - Requests on one connection are handled one after the other, so pipelined requests
//!   are answered in order; bytes after a request stay in the buffer for the next one.
//! - A request whose framing is in doubt is answered with its error and the connection
//!   closed; nothing of it reaches an upstream.
//! - An upstream connection goes back to the pool only when its response was read whole
//!   and nothing followed it; any error drops it.
//! - Once response bytes have gone downstream, an error can only close the connection.
//!
//! Every request ends in `Conn::finish`: the worker's metrics count it and, when the
//! access log is on, a line is buffered. Its times come from `std::time::Instant`: head
//! complete, upstream response head, last byte written, plus the first upstream attempt
//! when an access phase ran before it (otherwise the head's time stands in). Measured
//! on the 2-core dev VM (TSC clocksource, vDSO `clock_gettime`): 23.5 ns a read, so three
//! or four reads are 70–95 ns of a request's ~12.5 µs of CPU.
//!
//! Cost per request on a warm connection: one read and one write on each side for small
//! messages, no allocation (buffers, head tables and the path buffer are reused).

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use crate::admin::store::unix_now;
use crate::config::Protocol;
use crate::consumers::{self, Consumers};
use crate::error::{self, AuthFailure, AuthReason, ProxyError};
use crate::http::chunked::{ChunkedDecoder, ChunkedLimits};
use crate::http::head::{self, BodyFraming, Known, RequestHead, Version};
use crate::http::response::{self, ResponseFraming, ResponseHead};
use crate::http::rewrite::{self, ClaimLines, Forwarding, Hidden, ResponseFramingOut, TokenHeader};
use crate::metrics::Exchange;
use crate::net::Stream;
use crate::oidc::access::{AuthError, CredentialMemo, Granted};
use crate::oidc::config::PopMode;
use crate::oidc::credentials::{self, Sources};
use crate::oidc::hide;
use crate::oidc::instance::Instance;
use crate::router::{RequestHeaders, RouteRequest};
use crate::server::timer::IoTimer;
use crate::snapshot::Snapshot;
use crate::upstream::health::Outcome;
use crate::upstream::{self, ConnectError, PoolKey, UpstreamConn};
use crate::worker::{LocalSnapshot, Worker};

/// Initial size of a downstream read buffer.
const DOWNSTREAM_BUF: usize = 8 * 1024;
/// Read chunk size while streaming bodies.
const STREAM_CHUNK: usize = 16 * 1024;
/// A TCP socket's send buffer before autotuning (Linux `tcp_wmem`'s default): a write
/// no larger than this does not wait on a connection with nothing queued.
const INITIAL_SEND_BUFFER: usize = 16 * 1024;

/// An I/O step that did not complete.
enum IoFail {
    Timeout,
    Io(io::Error),
}

/// How the request body stands after the first write upstream.
struct BodyProgress {
    /// Content-Length bytes still to read from the downstream.
    remaining: u64,
    /// Chunked decoder, for chunked bodies.
    chunked: Option<ChunkedDecoder>,
    /// The whole body was already in the first write.
    done: bool,
}

struct Conn {
    stream: Stream,
    peer: SocketAddr,
    local_port: u16,
    port_text: itoa::Buffer,
    client_ip: String,
    /// Bytes read from the downstream: the current head, maybe body, maybe the next
    /// pipelined request.
    buf: Vec<u8>,
    /// Bytes being written: the upstream head, then the downstream head.
    out: Vec<u8>,
    head: RequestHead,
    resp: ResponseHead,
    path: Vec<u8>,
    /// `hide_credentials`: what the upstream gets instead of the caller's credentials.
    hidden: Option<hide::Replaced>,
    /// A verified bearer token, bare: the token of the request's [`Granted::AsSent`]
    /// (the other grants carry theirs; see [`bare_token`]).
    bearer_value: Vec<u8>,
    /// The request being served, for metrics and the access log.
    ex: Exchange,
    /// The timeout of every read and write, downstream and upstream.
    timer: IoTimer,
    /// The openid-connect cache key of this connection's last `Authorization` header.
    cred_memo: CredentialMemo,
    /// Response header lines this proxy adds to the current request's response (the
    /// `Set-Cookie` of cookie hashing); usually empty.
    extra_headers: Vec<u8>,
    /// The thumbprint of the certificate the client presented in the TLS handshake, when
    /// the listener asked for one and got it.
    client_cert: Option<crate::tls::ClientCertThumbprint>,
}

/// Serves one downstream connection until it closes. `client_cert`: the thumbprint of
/// the certificate the client presented in the TLS handshake, if any.
pub async fn serve(
    w: &Rc<Worker>,
    stream: Stream,
    peer: SocketAddr,
    local_port: u16,
    client_cert: Option<crate::tls::ClientCertThumbprint>,
) {
    let slot = w.drain.register();
    let mut c = Conn {
        stream,
        peer,
        local_port,
        port_text: itoa::Buffer::new(),
        client_ip: peer.ip().to_canonical().to_string(),
        buf: Vec::with_capacity(DOWNSTREAM_BUF),
        out: Vec::with_capacity(4096),
        head: RequestHead::default(),
        resp: ResponseHead::default(),
        path: Vec::with_capacity(256),
        hidden: None,
        bearer_value: Vec::new(),
        ex: Exchange::default(),
        timer: IoTimer::new(),
        cred_memo: CredentialMemo::default(),
        extra_headers: Vec::new(),
        client_cert,
    };
    loop {
        match c.read_head(w, slot).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::debug!(worker = w.id, error = %e, "request refused");
                // No head to take a route, method or path from; the bytes read are what
                // the refused request sent.
                c.ex.begin(c.timer.fresh(), false);
                c.ex.bytes_received = c.buf.len() as u64;
                c.send_error(w, &e, true).await;
                c.finish(w, None);
                break;
            }
        }
        if !c.proxy_one(w).await || w.drain.is_draining() {
            break;
        }
    }
    if c.stream.is_tls() {
        // TLS ends with close_notify, so that a client can tell a response framed by
        // the close from a cut connection; a client that does not read is given the
        // usual downstream write time.
        c.timer.fresh();
        let _ = c.timer.run(w.limits.body_timeout, c.stream.shutdown()).await;
    }
    w.drain.unregister(slot);
}

/// Appends a `Set-Cookie` line for a cookie ringgate chooses the target by (cookie
/// hashing, sticky sessions), with the attributes both set. Name and path were checked
/// at load; the value is ringgate's own.
fn set_cookie(out: &mut Vec<u8>, name: &str, value: std::fmt::Arguments<'_>, path: &str) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "Set-Cookie: {name}={value}; Path={path}; SameSite=Lax; HttpOnly\r\n");
}

/// Appends to `buf` whatever one read returns (0 = end of stream), within `timeout` of
/// the timer's latest clock reading.
async fn read_some<S: AsyncReadRent>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    timer: &mut IoTimer,
    timeout: Duration,
) -> Result<usize, IoFail> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(STREAM_CHUNK);
    }
    let owned = std::mem::take(buf);
    let (start, end) = (owned.len(), owned.capacity());
    match timer.run(timeout, stream.read(owned.slice_mut(start..end))).await {
        Some((res, slice)) => {
            *buf = slice.into_inner();
            res.map_err(IoFail::Io)
        }
        None => Err(IoFail::Timeout),
    }
}

/// Writes `buf[range]` whole, within `timeout` of the timer's latest clock reading.
async fn write_range<S: AsyncWriteRent>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    range: std::ops::Range<usize>,
    timer: &mut IoTimer,
    timeout: Duration,
) -> Result<(), IoFail> {
    if range.is_empty() {
        return Ok(());
    }
    let owned = std::mem::take(buf);
    match timer.run(timeout, stream.write_all(owned.slice(range))).await {
        Some((res, slice)) => {
            *buf = slice.into_inner();
            res.map(|_| ()).map_err(IoFail::Io)
        }
        None => Err(IoFail::Timeout),
    }
}

/// Whether the bytes after `scanned` could complete a head: a line feed followed by an
/// empty line (CRLF, or a bare LF, which the parser then refuses).
fn may_end_head(buf: &[u8], scanned: usize) -> bool {
    let from = scanned.saturating_sub(3);
    memchr::memchr_iter(b'\n', &buf[from..]).any(|i| {
        let rest = &buf[from + i + 1..];
        rest.starts_with(b"\r\n") || rest.starts_with(b"\n") || rest.len() < 2
    })
}

/// What an `https`-only route answers a plain HTTP request: Kong's
/// `https_redirect_status_code`, 426 by default, else a redirect to the same target over
/// https on the host the downstream asked for.
fn https_required(status: u16, buf: &[u8], head: &RequestHead) -> ProxyError {
    let host = host_without_port(head.host(buf));
    // No host to redirect to (an HTTP/1.0 request without one): the 426 answer instead
    // of a `https:///path` nobody can follow.
    let status = if host.is_empty() { 426 } else { status };
    let location = (status != 426).then(|| {
        let host = String::from_utf8_lossy(host);
        let path = String::from_utf8_lossy(head.path(buf));
        let query = String::from_utf8_lossy(&buf[head.query.clone()]);
        format!("https://{host}{path}{query}")
    });
    ProxyError::HttpsRequired { status, location }
}

/// The response a refused request gets (SPEC §4): Kong's messages (or the configured
/// ones), ` (<reason>)` with `display_errors`, `WWW-Authenticate` on 401/403 with the
/// issuer's host as realm, and `Retry-After` on 503. The reason never holds a secret.
fn auth_failure(inst: &Instance, e: AuthError) -> AuthFailure {
    let cfg = &inst.config;
    let realm = inst.state.load().realm.clone();
    let with_reason = |message: &str, reason: &str| {
        if cfg.display_errors {
            format!("{message} ({reason})")
        } else {
            message.to_string()
        }
    };
    // The status is the reason's (`AuthReason::status`), the one rule metrics count by
    // too; the variant only carries the detail text.
    let kind = e.reason();
    // The `DPoP` scheme, with the algorithms a proof may use (RFC 9449 §7.1), when every
    // token needs a proof, and for a proof that failed; Kong orders the fields by name.
    let dpop = cfg.dpop == PopMode::Strict || matches!(kind, AuthReason::InvalidDpopProof | AuthReason::UseDpopNonce);
    let challenge = || {
        let mut v = if dpop {
            format!("DPoP algs=\"{}\", realm=\"{realm}\"", crate::jose::dpop::PROOF_ALGS)
        } else {
            format!("Bearer realm=\"{realm}\"")
        };
        // A nonce challenge always names its error: it is how a client tells "retry with
        // this nonce" from a refusal (RFC 9449 §9).
        if cfg.expose_error_code || kind == AuthReason::UseDpopNonce {
            v.push_str(&format!(", error=\"{}\"", kind.error_code()));
        }
        Some(v)
    };
    // With server nonces, a DPoP challenge hands out a fresh one to retry with.
    let dpop_nonce = || {
        let key = inst.dpop_nonces.as_ref().filter(|_| dpop)?;
        Some(key.issue(unix_now()))
    };
    let detail = match e {
        AuthError::Unauthorized(_, d) | AuthError::Forbidden(_, d) | AuthError::Unavailable(d) => d,
    };
    match kind.status() {
        403 => AuthFailure {
            status: 403,
            reason: kind,
            message: with_reason(&cfg.forbidden_error_message, &detail),
            www_authenticate: challenge(),
            retry_after: None,
            location: None,
            dpop_nonce: None,
        },
        500 => AuthFailure {
            status: 500,
            reason: kind,
            message: with_reason("An unexpected error occurred", &detail),
            www_authenticate: None,
            retry_after: None,
            location: None,
            dpop_nonce: None,
        },
        503 => {
            // The control plane logs the IdP failure itself; one line per refused
            // request would flood the log during an outage.
            tracing::debug!(issuer = %cfg.issuer, reason = %detail, "identity provider unavailable");
            AuthFailure {
                status: 503,
                reason: kind,
                message: with_reason("The identity provider is unavailable", &detail),
                www_authenticate: None,
                retry_after: Some(5),
                location: None,
                dpop_nonce: None,
            }
        }
        _ => AuthFailure {
            status: 401,
            reason: kind,
            message: with_reason(&cfg.unauthorized_error_message, &detail),
            www_authenticate: challenge(),
            retry_after: None,
            location: None,
            dpop_nonce: dpop_nonce(),
        },
    }
}

/// A refusal the plugin answers with a redirect instead (Kong's `*_redirect_uri`): a 302
/// to the configured page, with no body and no challenge. Counted and logged under its
/// reason all the same.
fn redirected(cfg: &crate::oidc::config::OidcConfig, failure: AuthFailure) -> AuthFailure {
    match cfg.redirect_for(failure.status) {
        Some(to) => AuthFailure {
            status: 302,
            location: Some(to.to_string()),
            www_authenticate: None,
            retry_after: None,
            dpop_nonce: None,
            message: String::new(),
            ..failure
        },
        None => failure,
    }
}

/// Kong's consumer mapping (`consumer_claim`) for a request the plugin let through: the
/// consumer the token's claim names, none when mapping is off (or the consumer is
/// optional and not found), else a 403.
fn mapped_consumer<'s>(
    inst: &Instance,
    g: &Granted,
    consumers: &'s Consumers,
) -> Result<Option<&'s consumers::Entry>, AuthError> {
    let cfg = &inst.config;
    if cfg.consumer_claim.is_empty() {
        return Ok(None);
    }
    let Some(subject) = g.consumer_subject() else {
        return match cfg.consumer_optional {
            true => Ok(None),
            false => Err(AuthError::Forbidden(
                AuthReason::ConsumerNotFound,
                format!(
                    "kong consumer was not found (claim ({}) was not found for consumer mapping)",
                    cfg.consumer_claim.iter().map(|path| path.join(",")).collect::<Vec<_>>().join(" or ")
                ),
            )),
        };
    };
    match consumers.find(subject, &cfg.consumer_by, cfg.by_username_ignore_case) {
        Some(c) => Ok(Some(c)),
        None if cfg.consumer_optional => Ok(None),
        None => Err(AuthError::Forbidden(AuthReason::ConsumerNotFound, "kong consumer was not found".into())),
    }
}

/// The token `g` forwards, without its scheme: the header writers put the configured
/// one (`upstream_access_token_header`, `downstream_access_token_header`) in front.
/// `bearer` is the connection's copy of a verified bearer token (`Conn::bearer_value`).
fn bare_token<'a>(g: &'a Granted, bearer: &'a [u8]) -> Option<&'a [u8]> {
    match g {
        Granted::AsSent(_) => Some(bearer),
        g => g.header_value().map(|v| v.strip_prefix(b"Bearer ").unwrap_or(v)),
    }
}

struct HeadHeaders<'a> {
    buf: &'a [u8],
    head: &'a RequestHead,
}

impl RequestHeaders for HeadHeaders<'_> {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.head.values(self.buf, lower_name).any(f)
    }
}

fn is_idempotent(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"PUT" | b"DELETE" | b"TRACE")
}

/// The host part of an authority (no port, no IPv6 brackets kept off).
fn host_without_port(authority: &[u8]) -> &[u8] {
    if authority.first() == Some(&b'[') {
        return match authority.iter().position(|&c| c == b']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    match authority.iter().rposition(|&c| c == b':') {
        Some(i) => &authority[..i],
        None => authority,
    }
}

impl Conn {
    /// Waits for a complete, valid request head in `self.buf`. `Ok(false)` means the
    /// connection ended (closed by the peer, idle too long, or draining) between
    /// requests.
    async fn read_head(&mut self, w: &Worker, slot: usize) -> Result<bool, ProxyError> {
        let limits = &w.limits;
        // The header timeout runs from the first byte of a head. Most heads arrive in
        // one read and are parsed before any clock is read; the deadline is set the
        // first time a head turns out to be incomplete.
        let mut deadline: Option<Instant> = None;
        // Bytes already known not to end the head, so a head trickling in byte by byte
        // is re-parsed only when a line could have ended it, not on every read.
        let mut scanned = 0usize;
        loop {
            let between_requests = self.buf.is_empty();
            if !between_requests {
                if deadline.is_none() || may_end_head(&self.buf, scanned) {
                    if head::parse_request(&self.buf, &limits.head, &mut self.head)?.is_some() {
                        return Ok(true);
                    }
                } else if self.buf.len() > limits.head.max_head_bytes {
                    return Err(head::HeadError::TooLarge.into());
                }
                scanned = self.buf.len();
                let timer = &mut self.timer;
                deadline.get_or_insert_with(|| timer.fresh() + limits.header_timeout);
            }
            let read = match deadline {
                None => {
                    // Between requests: idle timeout, and drain closes us at once.
                    // The latest reading is the previous request's end, or the accept.
                    monoio::select! {
                        r = read_some(&mut self.stream, &mut self.buf, &mut self.timer, limits.idle_timeout) => r,
                        _ = w.drain.wait(slot) => return Ok(false),
                    }
                }
                Some(d) => {
                    // Counted from the timer's latest reading, this is deadline `d`
                    // exactly, with no clock read of its own.
                    let left = d.saturating_duration_since(self.timer.latest());
                    if left.is_zero() {
                        return Err(ProxyError::HeadTimeout);
                    }
                    read_some(&mut self.stream, &mut self.buf, &mut self.timer, left).await
                }
            };
            match read {
                Ok(0) | Err(IoFail::Io(_)) => return Ok(false),
                Ok(_) => {}
                // (A timed-out read loses the buffer, so decide from what was there before.)
                Err(IoFail::Timeout) if between_requests => return Ok(false),
                Err(IoFail::Timeout) => return Err(ProxyError::HeadTimeout),
            }
        }
    }

    /// Sends an error response before anything else of this request went downstream.
    /// Returns whether the connection may carry another request.
    async fn send_error(&mut self, w: &Worker, err: &ProxyError, force_close: bool) -> bool {
        let keep = !force_close && !err.closes_connection() && self.head.keep_alive() && self.discard_buffered_body();
        self.write_error(w, err, keep).await
    }

    async fn write_error(&mut self, w: &Worker, err: &ProxyError, keep: bool) -> bool {
        self.out.clear();
        error::write_response(err, !keep, &mut self.out);
        self.ex.status = err.status();
        if let ProxyError::Auth(a) = err {
            self.ex.denied = Some(a.reason);
        }
        let len = self.out.len();
        // An error may follow a wait (the IdP, a body): count from now.
        self.timer.fresh();
        if write_range(&mut self.stream, &mut self.out, 0..len, &mut self.timer, w.limits.body_timeout).await.is_err() {
            return false;
        }
        self.ex.bytes_sent += len as u64;
        keep
    }

    /// Drops the current request (head and body) from the buffer when the whole body is
    /// already there, so the connection can go on. Returns false when it is not.
    fn discard_buffered_body(&mut self) -> bool {
        let start = self.head.len;
        let end = match self.head.framing {
            BodyFraming::Length(n) => {
                let avail = (self.buf.len() - start) as u64;
                if avail < n {
                    return false;
                }
                start + n as usize
            }
            BodyFraming::Chunked => {
                let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
                match dec.feed(&self.buf[start..], &mut |_| {}) {
                    Ok(used) if dec.is_done() => start + used,
                    _ => return false,
                }
            }
        };
        self.ex.bytes_received = end as u64;
        self.buf.drain(..end);
        true
    }

    /// Proxies the request whose head is in `self.head` and counts it. Returns whether
    /// the connection may carry another request.
    async fn proxy_one(&mut self, w: &Rc<Worker>) -> bool {
        let snap = w.snapshot();
        let logging = w.log.is_on();
        self.ex.begin(self.timer.fresh(), logging);
        self.ex.bytes_received = self.head.len as u64;
        if logging {
            // Copied now: the head leaves the buffer once it is forwarded. The path
            // only, never the query (it may carry credentials).
            self.ex.method.extend_from_slice(self.head.method(&self.buf));
            self.ex.path.extend_from_slice(self.head.path(&self.buf));
        }
        let keep = self.exchange(w, &snap).await;
        self.finish(w, Some(&snap));
        keep
    }

    /// Counts the finished request and logs it (when the access log is on).
    fn finish(&mut self, w: &Worker, snap: Option<&Snapshot>) {
        let end = self.timer.fresh();
        w.stats.finish(&self.ex, end);
        if !w.log.is_on() {
            return;
        }
        let full = match snap {
            Some(s) => w.log.record(&self.ex, s, self.peer, w.id, end),
            None => w.log.record(&self.ex, &w.snapshot(), self.peer, w.id, end),
        };
        if full {
            w.flush_log();
        }
    }

    /// The request path proper, on snapshot `snap`.
    async fn exchange(&mut self, w: &Rc<Worker>, snap: &LocalSnapshot) -> bool {
        let limits = w.limits;
        let m = {
            let req = RouteRequest {
                method: self.head.method(&self.buf),
                host: self.head.host(&self.buf),
                port: self.local_port,
                path: self.head.path(&self.buf),
                headers: &HeadHeaders { buf: &self.buf, head: &self.head },
            };
            snap.router.find(&req)
        };
        let Some(m) = m else { return self.send_error(w, &ProxyError::NoRoute, false).await };
        self.ex.route = Some(m.route);
        self.ex.service = m.service;
        self.ex.route_slot = w.stats.route_slot(m.route);
        if !self.stream.is_tls() {
            let route = &snap.config.routes[m.route];
            if !route.protocols.contains(&Protocol::Http) && route.protocols.contains(&Protocol::Https) {
                let err = https_required(route.https_redirect_status_code, &self.buf, &self.head);
                return self.send_error(w, &err, false).await;
            }
        }
        let Some(si) = m.service else { return self.send_error(w, &ProxyError::NoService, false).await };
        // Access phase: the openid-connect instance that applies, if any.
        self.hidden = None;
        let mut granted = None;
        let mut consumer = None;
        for &pi in &snap.route_plugins[m.route] {
            let Some(inst) = snap.oidc.get(pi).and_then(Option::as_ref) else { continue };
            self.ex.plugin_slot = Some(w.stats.plugin_slot(pi));
            match self.authenticate(w, inst, &snap.consumers).await {
                Ok((g, c)) => {
                    granted = Some((inst, g));
                    self.ex.consumer = c.map(|c| c.index);
                    consumer = c;
                }
                Err(e) => return self.send_error(w, &e, false).await,
            }
        }
        let service = &snap.config.services[si];
        let route = &snap.config.routes[m.route];
        // Consistent hashing: what the request hashes to; sticky sessions: the address
        // its cookie names, while that one may take requests (both read before the head
        // leaves the buffer).
        self.extra_headers.clear();
        if let Some((inst, g)) = &granted {
            self.downstream_headers(inst, g);
        }
        let upstream = service.upstream.and_then(|u| snap.config.upstreams.get(u));
        // `hash_on: consumer`: the consumer, else the token's credential (Kong's order).
        let on_consumer = |u: &crate::config::Upstream| {
            u.hash_on == crate::config::HashOn::Consumer || u.hash_fallback == crate::config::HashOn::Consumer
        };
        let identity = upstream.filter(|u| on_consumer(u)).and_then(|_| {
            consumer.map(|c| c.id.as_str()).or_else(|| granted.as_ref().and_then(|(_, g)| g.credential()))
        });
        let hash = upstream.and_then(|u| self.hash_key(u, &snap.router, m.route, identity));
        let sticky = upstream.filter(|u| u.algorithm == crate::config::Algorithm::StickySessions);
        let sticky_sent = sticky.and_then(|u| self.sticky_cookie(u));
        let sticky_peer = sticky_sent.and_then(|id| snap.sticky_peer(si, id));
        // This service's next turn in its round-robin order; a sticky caller takes one
        // only if its address fails.
        let mut pick = sticky_peer.is_none().then(|| snap.next_pick(si));
        let turn = |pick: &mut Option<usize>| *pick.get_or_insert_with(|| snap.next_pick(si));
        let Some((_, first)) = sticky_peer.or_else(|| snap.peer_at(si, turn(&mut pick), hash.map(|h| (h, 0)))) else {
            let err = if service.upstream.is_some() { ProxyError::NoTarget } else { ProxyError::NameResolution };
            return self.send_error(w, &err, false).await;
        };
        if let BodyFraming::Length(n) = self.head.framing {
            if limits.max_body_bytes > 0 && n > limits.max_body_bytes {
                return self.send_error(w, &ProxyError::BodyTooLarge, true).await;
            }
        }

        // The upstream head, then as much of the body as is already here.
        self.path.clear();
        let req_path = self.head.path(&self.buf);
        snap.router.upstream_path(&m, req_path, &mut self.path);
        let original_host = self.head.host(&self.buf);
        let preserve_host = route.preserve_host && !original_host.is_empty();
        let host: &[u8] = if preserve_host { original_host } else { &first.host_header };
        let prefix: &[u8] =
            if route.strip_path && m.matched_len > 1 { &req_path[..m.matched_len.min(req_path.len())] } else { b"" };
        self.out.clear();
        rewrite::write_request_head(
            &self.buf,
            &self.head,
            &Forwarding {
                path: &self.path,
                host,
                client_ip: self.client_ip.as_bytes(),
                proto: if self.stream.is_tls() { b"https" } else { b"http" },
                port: self.port_text.format(self.local_port).as_bytes(),
                forwarded_host: host_without_port(original_host),
                forwarded_prefix: prefix,
                set_header: granted.as_ref().map(|(inst, g)| {
                    let header = &inst.config.upstream_access_token_header;
                    let value = bare_token(g, &self.bearer_value).map(|t| (header.prefix(), t));
                    TokenHeader { name: header.name.as_bytes(), value }
                }),
                claim_headers: granted
                    .as_ref()
                    .map(|(inst, g)| ClaimLines { names: &inst.config.upstream_headers, lines: g.claim_headers() })
                    .unwrap_or_default(),
                consumer: granted.as_ref().map(|(_, g)| {
                    let anonymous = matches!(g, Granted::Anonymous);
                    let lines = consumer.map(|c| if anonymous { &c.anonymous_lines } else { &c.lines });
                    lines.map_or(&b""[..], |l| &l[..])
                }),
                hide: match (&self.hidden, &granted) {
                    (Some(h), g) => Some(Hidden {
                        query: &h.query,
                        content_length: h.body.as_ref().map(Vec::len),
                        drop_credential_headers: true,
                        token_headers: g.as_ref().map_or(&[][..], |(inst, _)| inst.config.token_headers_read()),
                        cookie: h.cookie.as_deref(),
                    }),
                    // Proxied as the anonymous consumer: the caller's credential headers,
                    // refused, go no further (the rest of the request as sent).
                    (None, Some((inst, Granted::Anonymous))) => Some(Hidden {
                        query: &self.buf[self.head.query.clone()],
                        content_length: None,
                        drop_credential_headers: true,
                        token_headers: inst.config.token_headers_read(),
                        cookie: None,
                    }),
                    (None, _) => None,
                },
            },
            &mut self.out,
        );
        let body_start = self.head.len;
        let mut body = BodyProgress { remaining: 0, chunked: None, done: true };
        let consumed_end = match self.head.framing {
            BodyFraming::Length(n) => {
                let take = ((self.buf.len() - body_start) as u64).min(n) as usize;
                body.remaining = n - take as u64;
                body.done = body.remaining == 0;
                body_start + take
            }
            BodyFraming::Chunked => {
                let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
                let used = match dec.feed(&self.buf[body_start..], &mut |_| {}) {
                    Ok(used) => used,
                    Err(_) => return self.send_error(w, &ProxyError::Body("malformed chunked body"), true).await,
                };
                if limits.max_body_bytes > 0 && dec.payload_len() > limits.max_body_bytes {
                    return self.send_error(w, &ProxyError::BodyTooLarge, true).await;
                }
                body.done = dec.is_done();
                body.chunked = Some(dec);
                body_start + used
            }
        };
        match self.hidden.as_ref().and_then(|h| h.body.as_ref()) {
            // hide_credentials rewrote the (whole, buffered) form or JSON body.
            Some(body) => self.out.extend_from_slice(body),
            None => self.out.extend_from_slice(&self.buf[body_start..consumed_end]),
        }
        let head_request = self.head.is_head_method(&self.buf);
        let replayable = body.done && is_idempotent(self.head.method(&self.buf));
        let version = self.head.version;
        let downstream_keep_alive = self.head.keep_alive();
        // Everything of this request that was in the buffer is now in `out`.
        self.ex.bytes_received = consumed_end as u64;
        self.buf.drain(..consumed_end);

        // Connect, send, and read the response head; retried on a fresh connection
        // where that is safe.
        // The `Host` value in `out`, replaced when a retry goes to a peer with another.
        let mut sent_host: &[u8] = &first.host_header;
        // Without an access phase, or with one answered from a worker's cache, routing
        // and writing the head took a microsecond or two since the request's start:
        // that start stands in for a clock read of its own.
        let quick = self.ex.plugin_slot.is_none() || self.ex.auth.answered_at_once();
        self.ex.upstream_start = Some(if quick { self.ex.start } else { self.timer.fresh() });
        let mut connect_failures = 0u32;
        let mut attempt = 0u32;
        // The request counts against the peer it is sent to while this lives (for
        // least-connections upstreams); a retry moves it.
        let mut _in_flight = None;
        // The sticky-session id of the address the response comes from.
        let mut served;
        let mut up: UpstreamConn = loop {
            // The first attempt's steps count from the upstream start; a retry follows
            // a failed one of unknown length.
            if attempt > 0 {
                self.timer.fresh();
            }
            attempt += 1;
            let attempt_began = self.timer.latest();
            // A retry of a hashed request goes to the next peer on the ring; a sticky
            // caller's, after a failed connect, to the round-robin turn.
            let key = hash.map(|h| (h, connect_failures as usize));
            let chosen = match sticky_peer.filter(|_| connect_failures == 0) {
                Some(p) => Some(p),
                None => snap.peer_at(si, turn(&mut pick), key),
            };
            let Some((peer_index, peer)) = chosen else {
                return self.fail_before_response(w, &ProxyError::NoTarget, body.done).await;
            };
            served = peer.sticky_id;
            _in_flight = Some(snap.balancer.begin(si, peer_index));
            // (The first attempt's peer wrote the head: the pointer check spares the
            // comparison.)
            if !preserve_host && peer.host_header.as_ptr() != sent_host.as_ptr() && peer.host_header != sent_host {
                rewrite::replace_host(&mut self.out, sent_host.len(), &peer.host_header);
                sent_host = &peer.host_header;
            }
            let addr = peer.addr;
            let mut conn = match w.pool.take(PoolKey::new(addr, peer.tls.as_ref())) {
                Some(c) => c,
                // Boxed: a new connection is rare on keep-alive traffic, and its
                // future would otherwise enlarge every request's.
                None => match Box::pin(upstream::connect(addr, peer.tls.as_ref(), service.connect_timeout)).await {
                    Ok(c) => {
                        self.timer.fresh();
                        c
                    }
                    Err(e) => {
                        connect_failures += 1;
                        let seen =
                            if matches!(e, ConnectError::Timeout) { Outcome::Timeout } else { Outcome::TcpFailure };
                        snap.observe(peer, seen, w.id);
                        tracing::warn!(worker = w.id, upstream = %addr, host = %service.host, error = %e, attempt = connect_failures, "upstream connect failed");
                        if connect_failures > service.retries {
                            let err = match e {
                                ConnectError::Timeout => ProxyError::UpstreamTimeout,
                                ConnectError::Io(e) => ProxyError::UpstreamConnect(e),
                                ConnectError::Tls(reason) => ProxyError::UpstreamTls(reason),
                            };
                            return self.fail_before_response(w, &err, body.done).await;
                        }
                        pick = pick.map(|p| p.wrapping_add(1));
                        continue;
                    }
                },
            };
            let len = self.out.len();
            match write_range(&mut conn.stream, &mut self.out, 0..len, &mut self.timer, service.write_timeout).await {
                Ok(()) => {}
                // A pooled connection the upstream closed while idle; the request may have
                // been partly written, so only a replayable one is sent again.
                Err(IoFail::Io(_)) if conn.reused && replayable => continue,
                Err(IoFail::Io(e)) => {
                    snap.observe(peer, Outcome::TcpFailure, w.id);
                    return self.fail_before_response(w, &ProxyError::UpstreamConnect(e), body.done).await;
                }
                Err(IoFail::Timeout) => {
                    snap.observe(peer, Outcome::Timeout, w.id);
                    return self.fail_before_response(w, &ProxyError::UpstreamTimeout, false).await;
                }
            }
            let streamed = !body.done;
            if streamed {
                if let Err(e) = self.stream_request_body(w, &mut conn, &mut body, service.write_timeout).await {
                    return self.fail_before_response(w, &e, false).await;
                }
            }
            // The response wait counts from the end of the request. A write that fits a
            // socket's initial send buffer completes at once, so the reading taken
            // before it stands; after a larger head or a streamed body, read again.
            if streamed || len > INITIAL_SEND_BUFFER {
                self.timer.fresh();
            }
            match self.read_response_head(&mut conn, head_request, service.read_timeout).await {
                Ok(()) => {
                    snap.observe(peer, Outcome::Status(self.resp.status), w.id);
                    let answered = self.timer.fresh();
                    self.ex.upstream_done(answered);
                    snap.balancer.observe_latency(si, peer_index, attempt_began, answered);
                    break conn;
                }
                Err(None) if conn.reused && replayable => {
                    // The pooled connection was closed by the upstream before it saw
                    // the request; nothing was processed, so send it again.
                    tracing::debug!(worker = w.id, upstream = %addr, "pooled upstream connection was closed; retrying");
                    continue;
                }
                Err(None) => {
                    snap.observe(peer, Outcome::TcpFailure, w.id);
                    let err = ProxyError::UpstreamBroken("closed before responding");
                    return self.fail_before_response(w, &err, true).await;
                }
                Err(Some(e)) => {
                    let seen =
                        if matches!(e, ProxyError::UpstreamTimeout) { Outcome::Timeout } else { Outcome::TcpFailure };
                    snap.observe(peer, seen, w.id);
                    return self.fail_before_response(w, &e, true).await;
                }
            }
        };

        // A sticky caller without a cookie naming the address that answered gets one.
        if let Some(u) = sticky.filter(|_| sticky_sent != Some(served)) {
            let name = u.sticky_sessions_cookie.as_deref().unwrap_or_default();
            set_cookie(&mut self.extra_headers, name, format_args!("{served:016x}"), &u.sticky_sessions_cookie_path);
        }

        // Relay the response.
        let framing = self.resp.framing;
        let dechunk = framing == ResponseFraming::Chunked && version == Version::Http10;
        let close_down =
            !downstream_keep_alive || framing == ResponseFraming::UntilClose || dechunk || w.drain.is_draining();
        self.out.clear();
        rewrite::write_response_head(
            &up.buf,
            &self.resp,
            version,
            ResponseFramingOut { close: close_down },
            &self.extra_headers,
            &mut self.out,
        );
        let reusable = self.relay_response(w, &mut up, framing, dechunk, service.read_timeout).await;
        match reusable {
            Some(true) if !self.resp.close => w.pool.put(up),
            Some(_) => {}
            None => return false,
        }
        !close_down
    }

    /// What the caller gets back from the plugin in its response: the claim headers
    /// (`downstream_headers_claims`) and the token (`downstream_access_token_header`),
    /// after the upstream's own headers, as Kong appends them; and a fresh DPoP server
    /// nonce when the caller's is past half its lifetime.
    fn downstream_headers(&mut self, inst: &Instance, g: &Granted) {
        if let Some(f) = g.facts() {
            self.extra_headers.extend_from_slice(&f.downstream_lines);
        }
        // The next DPoP server nonce, while the caller's is still good (RFC 9449 §9.1).
        if let Some(key) = inst.dpop_nonces.as_ref().filter(|_| self.ex.auth.dpop_nonce_aging) {
            self.extra_headers.extend_from_slice(b"DPoP-Nonce: ");
            self.extra_headers.extend_from_slice(key.issue(unix_now()).as_bytes());
            self.extra_headers.extend_from_slice(b"\r\n");
        }
        let Some(header) = &inst.config.downstream_access_token_header else { return };
        if let Some(token) = bare_token(g, &self.bearer_value) {
            rewrite::push_token_header(&mut self.extra_headers, header.name.as_bytes(), header.prefix(), token);
        }
    }

    /// The consistent-hashing key of the current request for `upstream`: its
    /// `hash_on` input, else its `hash_fallback` one; `None` when it does not hash or
    /// neither is in the request (the round-robin turn then decides, as Kong does with
    /// no hash value).
    fn hash_key(
        &mut self,
        upstream: &crate::config::Upstream,
        router: &crate::router::Router,
        route: usize,
        identity: Option<&str>,
    ) -> Option<u64> {
        use crate::config::Algorithm;
        if upstream.algorithm != Algorithm::ConsistentHashing {
            return None;
        }
        let input = |c: &mut Self, on| c.hash_input(upstream, on, router, route, identity);
        input(self, &upstream.hash_on).or_else(|| input(self, &upstream.hash_fallback))
    }

    /// The address id ([`crate::snapshot::Peer::sticky_id`]) in the current request's
    /// sticky-sessions cookie, if it has a well-formed one.
    fn sticky_cookie(&self, upstream: &crate::config::Upstream) -> Option<u64> {
        let name = upstream.sticky_sessions_cookie.as_deref()?;
        let value = credentials::cookie_value(self.head.values(&self.buf, "cookie"), name.as_bytes())?;
        if value.len() != 16 {
            return None;
        }
        value.iter().try_fold(0u64, |id, &c| Some(id << 4 | u64::from(crate::http::hex_value(c)?)))
    }

    /// The hash of one `hash_on` input of the current request, if it has one.
    fn hash_input(
        &mut self,
        upstream: &crate::config::Upstream,
        on: &crate::config::HashOn,
        router: &crate::router::Router,
        route: usize,
        identity: Option<&str>,
    ) -> Option<u64> {
        use crate::config::HashOn;
        match on {
            HashOn::None => None,
            HashOn::Consumer => identity.map(|id| crate::fasthash::key_hash(id.as_bytes())),
            HashOn::Ip => Some(match self.peer.ip().to_canonical() {
                std::net::IpAddr::V4(a) => crate::fasthash::key_hash(&a.octets()),
                std::net::IpAddr::V6(a) => crate::fasthash::key_hash(&a.octets()),
            }),
            HashOn::Path => Some(crate::fasthash::key_hash(self.head.path(&self.buf))),
            HashOn::UriCapture(name) => {
                let value = router.uri_capture(route, self.head.path(&self.buf), name)?;
                (!value.is_empty()).then(|| crate::fasthash::key_hash(&value))
            }
            HashOn::Header(name) => {
                // Every value, in order, run together as Kong joins them: one value
                // hashes as the same text would from a query argument.
                let mut h = crate::fasthash::KeyHash::new();
                let mut any = false;
                for v in self.head.values(&self.buf, name) {
                    h.write(v);
                    any = true;
                }
                any.then(|| h.finish())
            }
            HashOn::QueryArg(name) => {
                let query = self.buf[self.head.query.clone()].strip_prefix(b"?")?;
                query.split(|&b| b == b'&').find_map(|pair| {
                    let value = pair.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
                    (!value.is_empty()).then(|| crate::fasthash::key_hash(value))
                })
            }
            HashOn::Cookie => {
                let name = upstream.hash_on_cookie.as_deref()?;
                let cookies = self.head.values(&self.buf, "cookie");
                if let Some(value) = credentials::cookie_value(cookies, name.as_bytes()) {
                    return Some(crate::fasthash::key_hash(value));
                }
                // None sent: a new random value picks the target and goes back to
                // the caller, who sends it from now on.
                let value = crate::admin::store::new_id().ok()?;
                set_cookie(&mut self.extra_headers, name, format_args!("{value}"), &upstream.hash_on_cookie_path);
                Some(crate::fasthash::key_hash(value.as_bytes()))
            }
        }
    }

    /// Runs an openid-connect instance's access phase on the current request: the token
    /// for the upstream and the consumer headers, or the refusal. With `anonymous`, a
    /// 401 or 403 is proxied instead as that consumer.
    async fn authenticate<'s>(
        &mut self,
        w: &Worker,
        inst: &'s Arc<Instance>,
        consumers: &'s Consumers,
    ) -> Result<(Granted, Option<&'s consumers::Entry>), ProxyError> {
        let cfg = &inst.config;
        let body_len = if cfg.reads_body() { self.buffer_small_body(w).await? } else { None };
        let buf = &self.buf;
        let head = &self.head;
        let authorization = head.first(buf, Known::Authorization);
        let query = &buf[head.query.clone()];
        let sources = Sources {
            authorization,
            grant_type: head.first(buf, Known::GrantType),
            x_grant_type: head.first(buf, Known::XGrantType),
            query: query.strip_prefix(b"?"),
            content_type: head.first(buf, Known::ContentType),
            body: body_len.map(|n| &buf[head.len..head.len + n]),
            client_values: None,
            introspection_values: None,
            dpop: None,
            client_cert: self.client_cert.as_ref(),
        };
        // The bearer token, from the first of `bearer_token_param_type` that has one.
        let cookie_name = cfg.bearer_token_cookie_name.as_deref().unwrap_or("").as_bytes();
        let bearer = if cfg.takes_bearer_tokens() {
            let from_headers = credentials::BearerHeaders {
                authorization: cfg.bearer_from_authorization,
                dpop: cfg.dpop != PopMode::Off,
                names: &cfg.bearer_token_headers,
            };
            let header = |name: &str| head.values(buf, name).next();
            credentials::find_bearer(&sources, &cfg.bearer_token_param_type, from_headers, header, cookie_name, || {
                head.values(buf, "cookie")
            })
        } else {
            None
        };
        let bearer = bearer.as_deref();
        let client_values = cfg.takes_client_token_values().then(|| {
            credentials::client_values(&cfg.token_post_args_client, &cfg.token_headers_client, &sources, |name| {
                head.values(buf, name).next()
            })
        });
        let introspection_values = (bearer.is_some() && cfg.takes_introspection_values()).then(|| {
            credentials::introspection_values(
                &cfg.introspection_client_args,
                &cfg.introspection_headers_client,
                &sources,
                |name| head.values(buf, name).next(),
            )
        });
        // A DPoP check needs the request as the caller addressed it, and its proofs.
        let dpop = bearer.filter(|_| cfg.dpop != PopMode::Off).map(|token| {
            let mut lines = head.values(buf, "dpop");
            let (first, second) = (lines.next(), lines.next());
            credentials::DpopInput {
                dpop_scheme: authorization.and_then(credentials::dpop_token) == Some(token),
                proof: first.filter(|_| second.is_none()),
                method: head.method(buf),
                scheme: if self.stream.is_tls() { "https" } else { "http" },
                host: head.host(buf),
                path: head.path(buf),
            }
        });
        let sources = Sources {
            client_values: client_values.as_ref(),
            introspection_values: introspection_values.as_ref(),
            dpop,
            ..sources
        };
        let decided = w
            .auth
            .authenticate(inst, &sources, bearer, &mut self.ex.auth, &mut self.cred_memo, self.ex.start)
            .await
            .and_then(|g| mapped_consumer(inst, &g, consumers).map(|c| (g, c)));
        let (granted, consumer) = match decided {
            Ok(d) => d,
            Err(e) => {
                let failure = auth_failure(inst, e);
                let anonymous = match (&cfg.anonymous, failure.status) {
                    (Some(name), 401 | 403) => consumers.anonymous(name),
                    // Kong: the anonymous consumer first, then the redirect.
                    _ => return Err(ProxyError::Auth(redirected(cfg, failure))),
                };
                let Some(anonymous) = anonymous else {
                    if inst.claim_anonymous_warning(unix_now()) {
                        tracing::error!(
                            anonymous = cfg.anonymous.as_deref().unwrap_or_default(),
                            "the openid-connect plugin's anonymous consumer does not exist; refused requests are \
                             answered 500 (logged once a minute)"
                        );
                    }
                    let e = AuthError::Unauthorized(
                        AuthReason::AnonymousNotFound,
                        "anonymous consumer was not found".into(),
                    );
                    return Err(ProxyError::Auth(redirected(cfg, auth_failure(inst, e))));
                };
                // Counted and logged as the refusal it was; proxied all the same.
                self.ex.denied = Some(failure.reason);
                self.ex.anonymous = true;
                (Granted::Anonymous, Some(anonymous))
            }
        };
        if let (Granted::AsSent(_), Some(token)) = (&granted, bearer) {
            // The upstream gets the token in the configured header, wherever it came from.
            self.bearer_value.clear();
            self.bearer_value.extend_from_slice(token);
        }
        if cfg.hide_credentials {
            self.hidden = Some(hide::replace(cfg, &sources, cookie_name, || head.values(buf, "cookie")));
        }
        Ok((granted, consumer))
    }

    /// Reads a small request body whole into the buffer (for credentials in the body),
    /// returning its length; `None` when the body is chunked or too large to buffer, in
    /// which case the body location has nothing to offer.
    async fn buffer_small_body(&mut self, w: &Worker) -> Result<Option<usize>, ProxyError> {
        const MAX: u64 = 64 * 1024;
        let BodyFraming::Length(n) = self.head.framing else { return Ok(None) };
        if n == 0 || n > MAX {
            return Ok(None);
        }
        let want = self.head.len + n as usize;
        if self.head.expect_continue && self.buf.len() < want {
            self.out.clear();
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let len = self.out.len();
            self.timer.fresh();
            write_range(&mut self.stream, &mut self.out, 0..len, &mut self.timer, w.limits.body_timeout)
                .await
                .map_err(|_| ProxyError::Body("downstream went away"))?;
            self.ex.bytes_sent += len as u64;
            self.head.expect_continue = false;
        }
        while self.buf.len() < want {
            self.timer.fresh();
            match read_some(&mut self.stream, &mut self.buf, &mut self.timer, w.limits.body_timeout).await {
                Ok(0) | Err(IoFail::Io(_)) => return Err(ProxyError::Body("body ended early")),
                Err(IoFail::Timeout) => return Err(ProxyError::BodyTimeout),
                Ok(_) => {}
            }
        }
        Ok(Some(n as usize))
    }

    /// Streams the rest of the request body from the downstream to the upstream.
    async fn stream_request_body(
        &mut self,
        w: &Worker,
        up: &mut UpstreamConn,
        body: &mut BodyProgress,
        write_timeout: Duration,
    ) -> Result<(), ProxyError> {
        let limits = &w.limits;
        if self.head.expect_continue {
            // The request passed routing; tell the downstream to send its body.
            self.out.clear();
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let len = self.out.len();
            self.timer.fresh();
            write_range(&mut self.stream, &mut self.out, 0..len, &mut self.timer, limits.body_timeout)
                .await
                .map_err(|_| ProxyError::Body("downstream went away"))?;
            self.ex.bytes_sent += len as u64;
        }
        while !body.done {
            debug_assert!(self.buf.is_empty());
            self.timer.fresh();
            match read_some(&mut self.stream, &mut self.buf, &mut self.timer, limits.body_timeout).await {
                Ok(0) | Err(IoFail::Io(_)) => return Err(ProxyError::Body("body ended early")),
                Err(IoFail::Timeout) => return Err(ProxyError::BodyTimeout),
                Ok(_) => {}
            }
            let end = match &mut body.chunked {
                None => {
                    let take = (self.buf.len() as u64).min(body.remaining) as usize;
                    body.remaining -= take as u64;
                    body.done = body.remaining == 0;
                    take
                }
                Some(dec) => {
                    let used =
                        dec.feed(&self.buf, &mut |_| {}).map_err(|_| ProxyError::Body("malformed chunked body"))?;
                    if limits.max_body_bytes > 0 && dec.payload_len() > limits.max_body_bytes {
                        return Err(ProxyError::BodyTooLarge);
                    }
                    body.done = dec.is_done();
                    used
                }
            };
            self.timer.fresh();
            write_range(&mut up.stream, &mut self.buf, 0..end, &mut self.timer, write_timeout).await.map_err(|e| {
                match e {
                    IoFail::Timeout => ProxyError::UpstreamTimeout,
                    IoFail::Io(e) => ProxyError::UpstreamConnect(e),
                }
            })?;
            self.ex.bytes_received += end as u64;
            // Whatever followed the body is the next request.
            self.buf.drain(..end);
        }
        Ok(())
    }

    /// Reads the upstream's response head into `up.buf` / `self.resp`, skipping 1xx
    /// interim responses. `Err(None)`: the upstream closed without sending a byte.
    async fn read_response_head(
        &mut self,
        up: &mut UpstreamConn,
        head_request: bool,
        read_timeout: Duration,
    ) -> Result<(), Option<ProxyError>> {
        let max = 64 * 1024;
        loop {
            if !up.buf.is_empty() {
                match response::parse_response(&up.buf, max, head_request, &mut self.resp) {
                    Ok(Some(len)) => {
                        if self.resp.status == 101 {
                            return Err(Some(ProxyError::UpstreamBroken("protocol upgrade is not supported")));
                        }
                        if self.resp.status < 200 {
                            up.buf.drain(..len);
                            continue;
                        }
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(e) => return Err(Some(e.into())),
                }
            }
            // The first read counts from the end of the request (see `exchange`); a
            // partial head's next read from its own start.
            if !up.buf.is_empty() {
                self.timer.fresh();
            }
            match read_some(&mut up.stream, &mut up.buf, &mut self.timer, read_timeout).await {
                Ok(0) | Err(IoFail::Io(_)) if up.buf.is_empty() => return Err(None),
                Ok(0) => return Err(Some(ProxyError::UpstreamBroken("closed in the response head"))),
                Err(IoFail::Io(e)) => return Err(Some(ProxyError::UpstreamConnect(e))),
                Err(IoFail::Timeout) => return Err(Some(ProxyError::UpstreamTimeout)),
                Ok(_) => {}
            }
        }
    }

    /// Answers with an error when the upstream failed before any response went
    /// downstream. `body_read` says the request body was consumed whole.
    async fn fail_before_response(&mut self, w: &Worker, err: &ProxyError, body_read: bool) -> bool {
        self.ex.upstream_done(self.timer.fresh());
        // The request's bytes are already out of the buffer; the connection can go on
        // only if the body was read whole.
        let keep = body_read && !err.closes_connection() && self.head.keep_alive();
        self.write_error(w, err, keep).await
    }

    /// Writes the downstream head in `self.out` and relays the response body.
    /// Returns `Some(reusable)` when the response went through (`reusable`: the
    /// upstream connection may go back to the pool), `None` when the exchange broke and
    /// the downstream connection must close.
    async fn relay_response(
        &mut self,
        w: &Worker,
        up: &mut UpstreamConn,
        framing: ResponseFraming,
        dechunk: bool,
        read_timeout: Duration,
    ) -> Option<bool> {
        let send_timeout = w.limits.body_timeout;
        self.ex.status = self.resp.status;
        let head_len = self.resp.len;
        let avail = up.buf.len() - head_len;
        let mut remaining: u64 = 0;
        let mut decoder = None;
        let mut extra = false;
        // First write: the head plus the body bytes that came with it.
        match framing {
            ResponseFraming::Empty => extra = avail > 0,
            ResponseFraming::Length(n) => {
                let take = (avail as u64).min(n) as usize;
                self.out.extend_from_slice(&up.buf[head_len..head_len + take]);
                remaining = n - take as u64;
                extra = avail > take;
            }
            ResponseFraming::Chunked => {
                let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
                let out = &mut self.out;
                let data = &up.buf[head_len..];
                let used = if dechunk {
                    dec.feed(data, &mut |r| out.extend_from_slice(&data[r]))
                } else {
                    dec.feed(data, &mut |_| {})
                };
                let Ok(used) = used else {
                    tracing::warn!(worker = w.id, upstream = %up.key.addr, "upstream sent a malformed chunked body");
                    return None;
                };
                if !dechunk {
                    self.out.extend_from_slice(&data[..used]);
                }
                extra = dec.is_done() && used < data.len();
                decoder = Some(dec);
            }
            ResponseFraming::UntilClose => self.out.extend_from_slice(&up.buf[head_len..]),
        }
        let len = self.out.len();
        // Counts from the response head's arrival.
        write_range(&mut self.stream, &mut self.out, 0..len, &mut self.timer, send_timeout).await.ok()?;
        self.ex.bytes_sent += len as u64;
        let mut done = match framing {
            ResponseFraming::Empty => true,
            ResponseFraming::Length(_) => remaining == 0,
            ResponseFraming::Chunked => decoder.as_ref().is_some_and(ChunkedDecoder::is_done),
            ResponseFraming::UntilClose => false,
        };
        while !done {
            up.buf.clear();
            self.timer.fresh();
            let n = match read_some(&mut up.stream, &mut up.buf, &mut self.timer, read_timeout).await {
                Ok(n) => n,
                Err(_) => {
                    tracing::warn!(worker = w.id, upstream = %up.key.addr, "upstream failed mid-response");
                    return None;
                }
            };
            if n == 0 {
                if framing == ResponseFraming::UntilClose {
                    return Some(false);
                }
                tracing::warn!(worker = w.id, upstream = %up.key.addr, "upstream closed mid-response");
                return None;
            }
            let end = match framing {
                ResponseFraming::Length(_) => {
                    let take = (n as u64).min(remaining) as usize;
                    remaining -= take as u64;
                    done = remaining == 0;
                    extra = n > take;
                    take
                }
                ResponseFraming::Chunked => {
                    let dec = decoder.as_mut()?;
                    if dechunk {
                        self.out.clear();
                        let out = &mut self.out;
                        let data = &up.buf[..];
                        dec.feed(data, &mut |r| out.extend_from_slice(&data[r])).ok()?;
                        done = dec.is_done();
                        let len = self.out.len();
                        self.timer.fresh();
                        write_range(&mut self.stream, &mut self.out, 0..len, &mut self.timer, send_timeout)
                            .await
                            .ok()?;
                        self.ex.bytes_sent += len as u64;
                        continue;
                    }
                    let used = dec.feed(&up.buf, &mut |_| {}).ok()?;
                    done = dec.is_done();
                    extra = done && used < n;
                    used
                }
                _ => n,
            };
            self.timer.fresh();
            write_range(&mut self.stream, &mut up.buf, 0..end, &mut self.timer, send_timeout).await.ok()?;
            self.ex.bytes_sent += end as u64;
        }
        Some(!extra && framing != ResponseFraming::UntilClose)
    }
}
