//! Target health: Kong's health checks and circuit breakers.
//!
//! Every address of every target of an upstream with health checks has one
//! [`PeerHealth`]: a flag that workers read when they pick a peer, flipped by
//! - active checks: probes on a timer, sent by the control thread ([`run_checker`]);
//! - passive checks: what proxied requests show, counted for the whole process as Kong
//!   counts for a node ([`PeerHealth::observe`]). Only failures write: a success reads
//!   the failure counts and clears them only when one is set, so a healthy target's
//!   requests leave its cache line shared between the cores;
//! - the Admin API (`POST /upstreams/{u}/targets/{t}/healthy` or `/unhealthy`).
//!
//!
//! Every flip moves the process-wide [`epoch`]; a worker whose orders were made in
//! an older epoch rebuilds its round-robin orders over the healthy peers (one relaxed
//! load per request to a checked upstream, a rebuild per flip). Health outlives
//! reloads: a new snapshot takes over the `PeerHealth` of the same upstream name and
//! address ([`crate::snapshot::Snapshot::carry_over`]).
//!
//! Counting follows Kong's (lua-resty-healthcheck): a "healthy" status adds a success
//! and clears the failure counts; a connect error, a timeout or an "unhealthy" status
//! adds one to its own count and clears the successes; a count reaching its non-zero
//! threshold flips the address, and a flip clears every count. Other statuses count
//! for nothing. Passive checks can only take an address out: once out it gets no
//! traffic to count, as in Kong; active checks or the Admin API bring it back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{HealthChecks, HealthyRule, UnhealthyRule};
use crate::snapshot::{SharedSnapshot, Snapshot};

/// Moves on every change of any address's health.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The current health epoch (see the module doc).
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// HTTP status codes 0–1023 as a bit set: membership is one shift and mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet([u64; 16]);

impl StatusSet {
    pub fn new(codes: &[u16]) -> StatusSet {
        let mut bits = [0u64; 16];
        for &c in codes.iter().filter(|&&c| c < 1024) {
            bits[usize::from(c / 64)] |= 1 << (c % 64);
        }
        StatusSet(bits)
    }

    pub fn contains(&self, code: u16) -> bool {
        code < 1024 && self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }
}

/// One kind of check (active or passive), compiled for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    healthy: StatusSet,
    unhealthy: StatusSet,
    successes: u32,
    tcp_failures: u32,
    timeouts: u32,
    http_failures: u32,
}

impl Rules {
    pub fn new(healthy: &HealthyRule, unhealthy: &UnhealthyRule) -> Rules {
        Rules {
            healthy: StatusSet::new(&healthy.http_statuses),
            unhealthy: StatusSet::new(&unhealthy.http_statuses),
            successes: healthy.successes,
            tcp_failures: unhealthy.tcp_failures,
            timeouts: unhealthy.timeouts,
            http_failures: unhealthy.http_failures,
        }
    }
}

/// An upstream's checks, compiled.
#[derive(Debug, Clone)]
pub struct UpstreamHealth {
    pub active: Rules,
    /// `None` when no passive count is set: traffic then changes nothing.
    pub passive: Option<Rules>,
    /// 0–100 (see [`HealthChecks::threshold`]).
    pub threshold: f64,
}

impl UpstreamHealth {
    /// `None` when no check can change a target's health.
    pub fn new(h: &HealthChecks) -> Option<UpstreamHealth> {
        h.enabled().then(|| UpstreamHealth {
            active: Rules::new(&h.active.healthy, &h.active.unhealthy),
            passive: h.passive.enabled().then(|| Rules::new(&h.passive.healthy, &h.passive.unhealthy)),
            threshold: h.threshold,
        })
    }
}

/// What one request or probe showed of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response head with this status.
    Status(u16),
    /// A `tcp` probe's connection was accepted.
    Connected,
    /// The connection failed, or broke before a response head.
    TcpFailure,
    /// No connection or response in time.
    Timeout,
}

/// The running counts of one address.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    successes: u32,
    tcp_failures: u32,
    timeouts: u32,
    http_failures: u32,
}

impl Counters {
    /// Counts `outcome` for an address that is `healthy` now. Returns the state it
    /// must flip to when a threshold is reached (the counts then start again).
    pub fn record(&mut self, outcome: Outcome, rules: &Rules, healthy: bool) -> Option<bool> {
        let reached = |count: u32, threshold: u32| threshold > 0 && count >= threshold;
        let flip = match outcome {
            Outcome::Status(s) if rules.healthy.contains(s) => self.success(rules, healthy),
            Outcome::Connected => self.success(rules, healthy),
            Outcome::Status(s) if rules.unhealthy.contains(s) => {
                self.successes = 0;
                self.http_failures += 1;
                healthy && reached(self.http_failures, rules.http_failures)
            }
            Outcome::Status(_) => false,
            Outcome::TcpFailure => {
                self.successes = 0;
                self.tcp_failures += 1;
                healthy && reached(self.tcp_failures, rules.tcp_failures)
            }
            Outcome::Timeout => {
                self.successes = 0;
                self.timeouts += 1;
                healthy && reached(self.timeouts, rules.timeouts)
            }
        };
        if flip {
            *self = Counters::default();
            return Some(!healthy);
        }
        None
    }

    fn success(&mut self, rules: &Rules, healthy: bool) -> bool {
        *self = Counters { successes: self.successes + 1, ..Counters::default() };
        !healthy && rules.successes > 0 && self.successes >= rules.successes
    }
}

/// The health of one address of one upstream's target, shared by the workers, the
/// active checker and the Admin API.
#[derive(Debug)]
pub struct PeerHealth {
    pub upstream: String,
    /// The target as Kong writes it (`host:port`).
    pub target: String,
    pub addr: SocketAddr,
    healthy: AtomicBool,
    /// The active checker's counts.
    counters: Mutex<Counters>,
    /// Passive counts of each failure kind in a row (tcp, timeouts, http).
    passive: [AtomicU32; 3],
}

impl PeerHealth {
    /// A new address starts healthy, as in Kong.
    pub fn new(upstream: &str, target: &str, addr: SocketAddr) -> Arc<PeerHealth> {
        Arc::new(PeerHealth {
            upstream: upstream.to_string(),
            target: target.to_string(),
            addr,
            healthy: AtomicBool::new(true),
            counters: Mutex::new(Counters::default()),
            passive: Default::default(),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Sets the state; when it changes, clears the counts, moves the epoch and logs who
    /// decided. Returns whether it changed.
    pub fn set(&self, healthy: bool, by: &str) -> bool {
        if self.healthy.swap(healthy, Ordering::AcqRel) == healthy {
            return false;
        }
        *self.counters.lock().unwrap_or_else(|e| e.into_inner()) = Counters::default();
        for c in &self.passive {
            c.store(0, Ordering::Relaxed);
        }
        EPOCH.fetch_add(1, Ordering::AcqRel);
        let state = if healthy { "healthy" } else { "unhealthy" };
        tracing::warn!(upstream = %self.upstream, target = %self.target, address = %self.addr, by, "target address is now {state}");
        true
    }

    /// Counts what a proxied request showed, under the passive `rules`; `by` names who
    /// saw it, for the log line of a flip. A failure kind reaching its threshold takes
    /// a healthy address out; successes only clear the failures (an address out of
    /// rotation gets no traffic to count, so passive checks never bring it back).
    pub fn observe(&self, outcome: Outcome, rules: &Rules, by: &dyn Fn() -> String) {
        let (kind, threshold) = match outcome {
            Outcome::Status(s) if rules.unhealthy.contains(s) => (2, rules.http_failures),
            Outcome::Status(s) if rules.healthy.contains(s) => {
                for c in &self.passive {
                    // A read, and a write only when there is something to clear.
                    if c.load(Ordering::Relaxed) != 0 {
                        c.store(0, Ordering::Relaxed);
                    }
                }
                return;
            }
            Outcome::Status(_) | Outcome::Connected => return,
            Outcome::TcpFailure => (0, rules.tcp_failures),
            Outcome::Timeout => (1, rules.timeouts),
        };
        let count = self.passive[kind].fetch_add(1, Ordering::Relaxed) + 1;
        if threshold > 0 && count >= threshold && self.is_healthy() {
            self.set(false, &by());
        }
    }

    /// Counts an active probe's outcome.
    pub fn record_probe(&self, outcome: Outcome, rules: &Rules) {
        let flip = {
            let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            c.record(outcome, rules, self.is_healthy())
        };
        if let Some(state) = flip {
            self.set(state, "active check");
        }
    }
}

/// One address the active checker probes.
#[derive(Debug, Clone)]
pub struct Probe {
    pub health: Arc<PeerHealth>,
    /// The upstream's index, for its concurrency limit.
    pub upstream: usize,
    /// `None` for a `tcp` check: a probe is then a connect.
    pub request: Option<Arc<[u8]>>,
    /// `https` checks: the request goes over TLS.
    pub tls: Option<ProbeTls>,
    pub timeout: Duration,
    pub healthy_interval: Duration,
    pub unhealthy_interval: Duration,
    pub rules: Arc<Rules>,
    pub concurrency: u32,
}

/// TLS for an `https` probe.
#[derive(Clone)]
pub struct ProbeTls {
    /// Verifying the certificate against the system roots, or not
    /// (`https_verify_certificate`).
    pub config: Arc<rustls::ClientConfig>,
    /// SNI and the name the certificate must carry (`https_sni`, else the target's host).
    pub name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for ProbeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTls").field("name", &self.name).finish_non_exhaustive()
    }
}

/// How often an address whose state has no probe interval looks again at its state.
const IDLE_RECHECK: Duration = Duration::from_millis(250);
/// How often the checker looks for a new snapshot.
const SNAPSHOT_POLL: Duration = Duration::from_millis(250);
/// The most of a probe's response that is read: enough for the status line.
const STATUS_LINE_MAX: usize = 1024;

/// Runs the active checks of whatever snapshot `shared` holds, following reloads: on
/// the control thread's runtime, inside a `LocalSet`. A new snapshot stops every probe
/// of the old one and starts its own (health itself carries over with the snapshot).
pub async fn run_checker(shared: SharedSnapshot) {
    let mut current: Option<Arc<Snapshot>> = None;
    // Dropping the sender ends every probe of the snapshot it was made for at once,
    // however long the probe's interval.
    let mut _stop: Option<tokio::sync::watch::Sender<()>> = None;
    loop {
        let snap = shared.load_full();
        if current.as_ref().is_none_or(|c| !Arc::ptr_eq(c, &snap)) {
            let stop = tokio::sync::watch::channel(()).0;
            let probes = snap.probes();
            let mut limits: HashMap<usize, Arc<tokio::sync::Semaphore>> = HashMap::new();
            for p in probes {
                let limit = limits
                    .entry(p.upstream)
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(p.concurrency.max(1) as usize)))
                    .clone();
                tokio::task::spawn_local(probe_loop(p, stop.subscribe(), limit));
            }
            // Replacing the previous sender drops it: its probes end.
            _stop = Some(stop);
            current = Some(snap);
        }
        tokio::time::sleep(SNAPSHOT_POLL).await;
    }
}

async fn probe_loop(p: Probe, mut stop: tokio::sync::watch::Receiver<()>, limit: Arc<tokio::sync::Semaphore>) {
    loop {
        let interval = if p.health.is_healthy() { p.healthy_interval } else { p.unhealthy_interval };
        let wait = if interval.is_zero() { IDLE_RECHECK } else { interval };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // The sender is gone: a new snapshot took over.
            _ = stop.changed() => return,
        }
        if interval.is_zero() {
            continue;
        }
        let Ok(_permit) = limit.acquire().await else { return };
        let outcome = probe(&p).await;
        p.health.record_probe(outcome, &p.rules);
    }
}

/// Sends one probe: a connect for `tcp` checks, else a GET (over TLS for `https`)
/// whose status line is read. A TLS handshake that fails counts as a TCP failure.
async fn probe(p: &Probe) -> Outcome {
    let attempt = async {
        let Ok(stream) = tokio::net::TcpStream::connect(p.health.addr).await else { return Outcome::TcpFailure };
        let Some(request) = &p.request else { return Outcome::Connected };
        let read = match &p.tls {
            None => read_status(stream, request).await,
            Some(tls) => {
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                match connector.connect(tls.name.clone(), stream).await {
                    Ok(stream) => read_status(stream, request).await,
                    Err(_) => None,
                }
            }
        };
        read.unwrap_or(Outcome::TcpFailure)
    };
    tokio::time::timeout(p.timeout, attempt).await.unwrap_or(Outcome::Timeout)
}

/// Writes `request` and reads up to the status line; `None` on any I/O failure, or
/// when the stream ends first.
async fn read_status<S>(mut stream: S, request: &[u8]) -> Option<Outcome>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request).await.ok()?;
    stream.flush().await.ok()?;
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return Some(status_of(&buf[..end]).map_or(Outcome::TcpFailure, Outcome::Status));
        }
        if buf.len() >= STATUS_LINE_MAX {
            return Some(Outcome::TcpFailure);
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The status code of an HTTP/1.x status line.
fn status_of(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The request of an `http` probe of `host_header`'s address: `GET path`, Kong's
/// probe headers, and `Connection: close` (one probe, one connection).
pub fn probe_request(path: &str, host_header: &[u8], headers: &[(String, Vec<String>)]) -> Arc<[u8]> {
    let mut r = Vec::with_capacity(128);
    r.extend_from_slice(b"GET ");
    r.extend_from_slice(path.as_bytes());
    r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    r.extend_from_slice(host_header);
    r.extend_from_slice(b"\r\nUser-Agent: ringgate health check\r\nConnection: close\r\n");
    for (name, values) in headers {
        for v in values {
            r.extend_from_slice(name.as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(v.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
    }
    r.extend_from_slice(b"\r\n");
    r.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(successes: u32, tcp: u32, timeouts: u32, http: u32) -> Rules {
        let h = HealthChecks::default();
        let mut r = Rules::new(&h.passive.healthy, &h.passive.unhealthy);
        (r.successes, r.tcp_failures, r.timeouts, r.http_failures) = (successes, tcp, timeouts, http);
        r
    }

    #[test]
    fn failures_in_a_row_flip_a_healthy_address_and_a_success_between_resets_them() {
        let r = rules(0, 3, 0, 2);
        let mut c = Counters::default();
        assert_eq!(c.record(Outcome::TcpFailure, &r, true), None);
        assert_eq!(c.record(Outcome::TcpFailure, &r, true), None);
        assert_eq!(c.record(Outcome::Status(200), &r, true), None, "a success clears the failures");
        assert_eq!(c.record(Outcome::TcpFailure, &r, true), None);
        assert_eq!(c.record(Outcome::Status(404), &r, true), None, "not in either list: nothing");
        assert_eq!(c.record(Outcome::Status(503), &r, true), None);
        assert_eq!(c.record(Outcome::Status(500), &r, true), Some(false), "two http failures");
        assert_eq!(c, Counters::default(), "a flip clears the counts");
        // Timeouts are not counted against a threshold of 0.
        for _ in 0..10 {
            assert_eq!(c.record(Outcome::Timeout, &r, true), None);
        }
    }

    #[test]
    fn successes_bring_an_unhealthy_address_back_only_with_a_threshold() {
        let mut c = Counters::default();
        let never = rules(0, 1, 1, 1);
        for _ in 0..5 {
            assert_eq!(c.record(Outcome::Status(200), &never, false), None);
        }
        let two = rules(2, 1, 1, 1);
        let mut c = Counters::default();
        assert_eq!(c.record(Outcome::Connected, &two, false), None);
        assert_eq!(c.record(Outcome::Timeout, &two, false), None, "a failure clears the successes");
        assert_eq!(c.record(Outcome::Status(302), &two, false), None);
        assert_eq!(c.record(Outcome::Status(201), &two, false), Some(true));
    }

    #[test]
    fn status_sets_hold_exactly_their_codes() {
        let s = StatusSet::new(&[200, 302, 999, 1023, 5000]);
        assert!(s.contains(200) && s.contains(302) && s.contains(999) && s.contains(1023));
        assert!(!s.contains(201) && !s.contains(0) && !s.contains(5000) && !s.contains(u16::MAX));
    }

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 503"), Some(503));
        assert_eq!(status_of(b"HTTP/1.1 20 OK"), None);
        assert_eq!(status_of(b"HTTP/2 200"), None);
        assert_eq!(status_of(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn a_flip_moves_the_epoch_once() {
        let h = PeerHealth::new("u", "a:1", "127.0.0.1:1".parse().unwrap());
        let e = epoch();
        assert!(!h.set(true, "test"), "already healthy");
        assert!(h.set(false, "test"));
        assert!(!h.is_healthy());
        assert!(epoch() > e);
    }

    #[test]
    fn passive_failures_in_a_row_take_an_address_out_and_successes_clear_them() {
        let h = PeerHealth::new("u", "a:1", "127.0.0.1:1".parse().unwrap());
        let r = rules(1, 2, 0, 3);
        let by = || "test".to_string();
        h.observe(Outcome::TcpFailure, &r, &by);
        h.observe(Outcome::Status(204), &r, &by);
        h.observe(Outcome::TcpFailure, &r, &by);
        assert!(h.is_healthy(), "the success between cleared the first failure");
        h.observe(Outcome::Status(503), &r, &by);
        h.observe(Outcome::Status(404), &r, &by);
        h.observe(Outcome::Status(500), &r, &by);
        assert!(h.is_healthy(), "two http failures of three, a tcp failure of two");
        h.observe(Outcome::Status(429), &r, &by);
        assert!(!h.is_healthy());
        for _ in 0..3 {
            h.observe(Outcome::Status(200), &r, &by);
        }
        assert!(!h.is_healthy(), "passive successes never bring it back");
        // A flip clears the counts: back in, one failure is not enough.
        h.set(true, "test");
        h.observe(Outcome::TcpFailure, &r, &by);
        assert!(h.is_healthy());
    }
}
