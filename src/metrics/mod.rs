//! Metrics: what the proxy counts, kept per worker without locks and summed on scrape.
//!
//! Place: every request ends in [`Recorder::finish`] on its worker (status, bytes, times,
//! what the openid-connect access phase did); the accept loop moves the connection
//! gauges; the control plane counts its IdP calls in [`ControlMetrics`]. The admin
//! listener calls [`Metrics::render`] for `GET /metrics` (Prometheus text format 0.0.4).
//!
//! Invariants:
//! - Each worker owns a [`WorkerBlock`] and is its only writer. A counter moves with an
//!   `AtomicU64` load and store (both `Relaxed`): plain moves on x86, no lock prefix and no
//!   read-modify-write shared with another core. The atomics are there only so the
//!   scraping thread may read while the worker writes, without a data race.
//! - Route and plugin cells are found by small integers (slots), never by hashing a name
//!   per request. A route's slot is its `(route, service)` label pair, interned in the
//!   registry when a worker first sees a snapshot; slots are never reused, so counters
//!   stay monotonic across reloads and every worker's slot `n` means the same series.
//!   The registry's lock is taken on a reload and on a scrape, never per request.
//! - Cells live in fixed segments of 64, allocated when a snapshot introduces their slot:
//!   no allocation on the request path, and a cell never moves once a worker writes it.
//! - Counts are exact; a scrape sums whatever each worker had stored when it was read, so
//!   two families may be a request apart in one scrape (never going backwards).
//! - Label values come from the configuration (route, service, plugin names) or fixed
//!   sets (status codes, reasons, outcomes): never from a request or the IdP.
//!
//! Cost per request: a slot lookup, a scan of at most 16 status codes (the first is
//! almost always the one), three histogram bucket searches over 14 bounds, and about a
//! dozen load/store pairs on cache lines only this worker writes. The clock reads that
//! feed the histograms are the caller's (`std::time::Instant`, vDSO `clock_gettime`,
//! 23.5 ns each on the dev VM; see `server::conn`).

mod control;
mod render;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

pub use control::{ControlMetrics, IdpEndpoint, IdpOutcome, JwksRefresh, TokenSource};
pub use render::{push_label_value, CONTENT_TYPE};

use crate::config::{Config, PluginScope};
use crate::error::AuthReason;
use crate::oidc::access::{AuthNote, CacheUse};
use crate::snapshot::Snapshot;

/// Adds `n` to a counter this thread alone writes: a load and a store, no atomic
/// read-modify-write (see the module invariants).
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Upper bounds of the latency histogram buckets, in nanoseconds (`le`, inclusive).
const BOUNDS_NS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The same bounds as Prometheus `le` label values, in seconds.
const BOUNDS_LE: [&str; 14] =
    ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"];

/// Buckets per histogram: one per bound and `+Inf`.
const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// A latency histogram: per-bucket (not cumulative) counts and the sum. The count is the
/// sum of the buckets, so the two can never disagree.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

fn bucket_of(ns: u64) -> usize {
    BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(BOUNDS_NS.len())
}

impl Histogram {
    /// Records one observation; the caller is this histogram's only writer.
    #[inline]
    fn observe_owned(&self, ns: u64) {
        bump(&self.buckets[bucket_of(ns)], 1);
        bump(&self.sum_ns, ns);
    }

    /// Records one observation with atomic adds (writers on more than one task).
    fn observe_shared(&self, ns: u64) {
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }
}

/// A histogram read for rendering (possibly summed over workers).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HistogramValues {
    pub buckets: [u64; BUCKETS],
    pub sum_ns: u64,
}

impl HistogramValues {
    /// Adds a worker's histogram. Wrapping, like the workers' own counters: a sum that
    /// passes 2^64 ns reads as a counter reset, never as a panic.
    fn add(&mut self, h: &Histogram) {
        for (v, b) in self.buckets.iter_mut().zip(&h.buckets) {
            *v = v.wrapping_add(b.load(Relaxed));
        }
        self.sum_ns = self.sum_ns.wrapping_add(h.sum_ns.load(Relaxed));
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Distinct status codes counted exactly per route and worker; more go to `code="other"`.
const CODES: usize = 16;

/// One route's counters on one worker.
#[repr(align(64))]
#[derive(Default)]
pub struct RouteCells {
    /// Status codes in order of first appearance; 0 = unused slot.
    codes: [AtomicU16; CODES],
    counts: [AtomicU64; CODES],
    /// Requests whose code found no free slot.
    other_codes: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    /// Whole request: head complete to last response byte written.
    total: Histogram,
    /// First upstream connection attempt to the upstream's response head.
    upstream: Histogram,
    /// ringgate's own share: total minus upstream.
    gateway: Histogram,
}

impl RouteCells {
    #[inline]
    fn count_status(&self, code: u16) {
        if code == 0 {
            // Not a status (0 marks a free slot); never sent, but never miscounted either.
            bump(&self.other_codes, 1);
            return;
        }
        for (c, n) in self.codes.iter().zip(&self.counts) {
            let seen = c.load(Relaxed);
            if seen == code {
                bump(n, 1);
                return;
            }
            if seen == 0 {
                bump(n, 1);
                // Release: a reader that sees the code sees a count that includes this one.
                c.store(code, Release);
                return;
            }
        }
        bump(&self.other_codes, 1);
    }
}

/// One openid-connect instance's counters on one worker.
#[repr(align(64))]
#[derive(Default)]
pub struct PluginCells {
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_refreshes: AtomicU64,
    cache_negative_hits: AtomicU64,
    bearer_cache_hits: AtomicU64,
    bearer_verified: AtomicU64,
    failures: [AtomicU64; AuthReason::ALL.len()],
}

/// Cells per segment, and the most segments: 65 536 slots in all.
const SEGMENT: usize = 64;
const MAX_SEGMENTS: usize = 1024;
/// Slots past this are counted in the overflow slot (label `_other`).
const MAX_SLOTS: usize = SEGMENT * MAX_SEGMENTS;

/// Append-only storage of cells by slot: segments are allocated once and never move, so
/// a reader on another thread can hold a reference while the owner adds segments.
struct Segmented<T> {
    segments: Box<[OnceLock<Box<[T]>>]>,
}

impl<T: Default> Segmented<T> {
    fn new() -> Segmented<T> {
        Segmented { segments: (0..MAX_SEGMENTS).map(|_| OnceLock::new()).collect() }
    }

    /// Allocates the segment holding `slot` (off the request path: on a new snapshot).
    fn ensure(&self, slot: u32) {
        if let Some(seg) = self.segments.get(slot as usize / SEGMENT) {
            seg.get_or_init(|| (0..SEGMENT).map(|_| T::default()).collect());
        }
    }

    #[inline]
    fn get(&self, slot: u32) -> Option<&T> {
        let seg = self.segments.get(slot as usize / SEGMENT)?.get()?;
        seg.get(slot as usize % SEGMENT)
    }
}

/// Worker-wide counters, on their own cache line.
#[repr(align(64))]
#[derive(Default)]
struct WorkerScalars {
    requests: AtomicU64,
    connections_open: AtomicU64,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    access_log_write_errors: AtomicU64,
    access_log_lines_dropped: AtomicU64,
}

/// Everything one worker counts. Written by that worker only.
pub struct WorkerBlock {
    scalars: WorkerScalars,
    routes: Segmented<RouteCells>,
    plugins: Segmented<PluginCells>,
}

impl WorkerBlock {
    fn new() -> WorkerBlock {
        let block =
            WorkerBlock { scalars: WorkerScalars::default(), routes: Segmented::new(), plugins: Segmented::new() };
        block.routes.ensure(ROUTE_NONE);
        block.plugins.ensure(PLUGIN_OTHER);
        block
    }
}

/// The route slot of requests that matched no route (and of requests refused before
/// routing: malformed heads, timeouts).
pub const ROUTE_NONE: u32 = 0;
/// The route slot past [`MAX_SLOTS`] distinct routes.
const ROUTE_OTHER: u32 = 1;
const PLUGIN_OTHER: u32 = 0;

/// Label values by slot, interned when a worker first sees a snapshot.
struct Labels {
    routes: Vec<(String, String)>,
    route_slots: HashMap<(String, String), u32>,
    plugins: Vec<String>,
    plugin_slots: HashMap<String, u32>,
}

impl Labels {
    fn new() -> Labels {
        let mut l = Labels {
            routes: Vec::new(),
            route_slots: HashMap::new(),
            plugins: Vec::new(),
            plugin_slots: HashMap::new(),
        };
        l.route("_none", "_none");
        l.route("_other", "_other");
        l.plugin("_other");
        l
    }

    fn route(&mut self, route: &str, service: &str) -> u32 {
        let key = (route.to_string(), service.to_string());
        if let Some(&slot) = self.route_slots.get(&key) {
            return slot;
        }
        if self.routes.len() >= MAX_SLOTS {
            return ROUTE_OTHER;
        }
        let slot = self.routes.len() as u32;
        self.routes.push(key.clone());
        self.route_slots.insert(key, slot);
        slot
    }

    fn plugin(&mut self, label: &str) -> u32 {
        if let Some(&slot) = self.plugin_slots.get(label) {
            return slot;
        }
        if self.plugins.len() >= MAX_SLOTS {
            return PLUGIN_OTHER;
        }
        let slot = self.plugins.len() as u32;
        self.plugins.push(label.to_string());
        self.plugin_slots.insert(label.to_string(), slot);
        slot
    }
}

/// The process's metrics: one block per worker, the control plane's, and the labels.
pub struct Metrics {
    workers: Box<[Arc<WorkerBlock>]>,
    control: Option<Arc<ControlMetrics>>,
    labels: Mutex<Labels>,
}

impl Metrics {
    /// A registry for `workers` workers and, if there is one, the control plane's block.
    pub fn new(workers: usize, control: Option<Arc<ControlMetrics>>) -> Arc<Metrics> {
        Arc::new(Metrics {
            workers: (0..workers.max(1)).map(|_| Arc::new(WorkerBlock::new())).collect(),
            control,
            labels: Mutex::new(Labels::new()),
        })
    }

    /// Summed over workers: (open connections, accepted connections, requests), for the
    /// Admin API's `/status`.
    pub fn connection_totals(&self) -> (u64, u64, u64) {
        self.workers.iter().fold((0, 0, 0), |(o, a, r), w| {
            let s = &w.scalars;
            (
                o + s.connections_open.load(Relaxed),
                a + s.connections_accepted.load(Relaxed),
                r + s.requests.load(Relaxed),
            )
        })
    }

    /// Worker `id`'s recorder. Call once per worker, on its thread.
    pub fn recorder(self: &Arc<Metrics>, id: usize) -> Recorder {
        let block = self.workers[id].clone();
        Recorder {
            metrics: self.clone(),
            block,
            view: RefCell::new(View { routes: Box::new([]), plugins: Box::new([]) }),
        }
    }

    fn labels(&self) -> std::sync::MutexGuard<'_, Labels> {
        self.labels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `route` or `service` label: a configured name or id, or a fallback written out
/// only when displayed, so the access log writes it into its line without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label<'a> {
    Text(&'a str),
    /// `_route<N>`: a route with neither a name nor an id, the `N`th in the
    /// configuration (from 1, as load errors number it: `route #N`).
    Route(usize),
    /// `host:port`: a service with neither a name nor an id.
    HostPort(&'a str, u16),
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Label::Text(s) => f.write_str(s),
            Label::Route(i) => write!(f, "_route{}", i + 1),
            Label::HostPort(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// The `route` label: the route's name, else its id, else `_route<N>` (`N` from 1).
pub fn route_label(config: &Config, route: usize) -> Label<'_> {
    let Some(r) = config.routes.get(route) else { return Label::Text("_none") };
    match (&r.name, &r.id) {
        (Some(n), _) => Label::Text(n),
        (None, Some(id)) => Label::Text(id),
        (None, None) => Label::Route(route),
    }
}

/// The `service` label: the service's name, else its id, else `host:port`; `_none` for a
/// route without a service.
pub fn service_label(config: &Config, service: Option<usize>) -> Label<'_> {
    let Some(s) = service.and_then(|i| config.services.get(i)) else { return Label::Text("_none") };
    match (&s.name, &s.id) {
        (Some(n), _) => Label::Text(n),
        (None, Some(id)) => Label::Text(id),
        (None, None) => Label::HostPort(&s.host, s.port),
    }
}

/// The `plugin` label of a plugin instance: its id, else `<name>:global`,
/// `<name>:service=<service label>` or `<name>:route=<route label>` by where it applies.
pub fn plugin_label(config: &Config, plugin: usize) -> String {
    let Some(p) = config.plugins.get(plugin) else { return "_other".into() };
    if let Some(id) = &p.id {
        return id.clone();
    }
    match p.scope {
        PluginScope::Global => format!("{}:global", p.name),
        PluginScope::Service(s) => format!("{}:service={}", p.name, service_label(config, Some(s))),
        PluginScope::Route(r) => format!("{}:route={}", p.name, route_label(config, r)),
    }
}

/// One request as it is served, for [`Recorder::finish`] and the access log. A connection
/// owns one and resets it per request, so filling it allocates nothing (the `method`,
/// `path` and client id copies, made only for the access log, reuse their buffers).
#[derive(Debug)]
pub struct Exchange {
    /// When the request head was complete (or, for a refused head, when it was refused).
    pub start: Instant,
    /// Snapshot indices, for the access log.
    pub route: Option<usize>,
    pub service: Option<usize>,
    pub route_slot: u32,
    pub plugin_slot: Option<u32>,
    /// The status sent downstream (0 while none was).
    pub status: u16,
    /// Request head and body bytes read from the downstream.
    pub bytes_received: u64,
    /// Response bytes written to the downstream.
    pub bytes_sent: u64,
    /// When the first upstream connection attempt began (the request's start when no
    /// access phase ran: routing and the head write, a microsecond or two, count as
    /// upstream time then, to save a clock read).
    pub upstream_start: Option<Instant>,
    /// From `upstream_start` to the upstream's response head (or its failure).
    pub upstream: Option<Duration>,
    /// Why the openid-connect plugin refused the request.
    pub denied: Option<AuthReason>,
    /// The refused request was proxied as the plugin's `anonymous` consumer.
    pub anonymous: bool,
    /// The consumer the plugin identified (an index into `Config::consumers`).
    pub consumer: Option<usize>,
    pub auth: AuthNote,
    /// Copied for the access log only.
    pub method: Vec<u8>,
    pub path: Vec<u8>,
}

impl Default for Exchange {
    fn default() -> Exchange {
        Exchange {
            start: Instant::now(),
            route: None,
            service: None,
            route_slot: ROUTE_NONE,
            plugin_slot: None,
            status: 0,
            bytes_received: 0,
            bytes_sent: 0,
            upstream_start: None,
            upstream: None,
            denied: None,
            anonymous: false,
            consumer: None,
            auth: AuthNote::default(),
            method: Vec::new(),
            path: Vec::new(),
        }
    }
}

impl Exchange {
    /// Starts the next request at `start`; `keep_text` copies text for the access log.
    pub fn begin(&mut self, start: Instant, keep_text: bool) {
        self.start = start;
        self.route = None;
        self.service = None;
        self.route_slot = ROUTE_NONE;
        self.plugin_slot = None;
        self.status = 0;
        self.bytes_received = 0;
        self.bytes_sent = 0;
        self.upstream_start = None;
        self.upstream = None;
        self.denied = None;
        self.anonymous = false;
        self.consumer = None;
        self.auth.reset(keep_text);
        self.method.clear();
        self.path.clear();
    }

    /// Ends the upstream interval (response head read, or the upstream failed).
    pub fn upstream_done(&mut self, now: Instant) {
        if let Some(s) = self.upstream_start {
            self.upstream.get_or_insert(now.saturating_duration_since(s));
        }
    }

    /// The access log's `auth` field: `none`, `cache_hit`, `fetched`, `bearer`,
    /// `denied:<reason>` or `anonymous:<reason>`.
    pub fn auth_outcome(&self) -> AuthOutcome {
        match self.denied {
            Some(r) if self.anonymous => return AuthOutcome::Anonymous(r),
            Some(r) => return AuthOutcome::Denied(r),
            None => {}
        }
        match (self.auth.cache, self.auth.bearer_cached) {
            (Some(CacheUse::Hit | CacheUse::HitRefreshing), _) => AuthOutcome::CacheHit,
            (Some(CacheUse::Miss), _) => AuthOutcome::Fetched,
            (_, Some(_)) => AuthOutcome::Bearer,
            _ => AuthOutcome::None,
        }
    }
}

/// What authentication did for one request, as the access log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    None,
    CacheHit,
    Fetched,
    Bearer,
    Denied(AuthReason),
    /// Refused for this reason, and proxied as the `anonymous` consumer.
    Anonymous(AuthReason),
}

/// The slots of the snapshot a worker serves from.
struct View {
    /// By route index.
    routes: Box<[u32]>,
    /// By plugin index.
    plugins: Box<[u32]>,
}

/// A worker's handle: writes its own [`WorkerBlock`]. Not `Send` by intent of use: one
/// per worker thread.
pub struct Recorder {
    metrics: Arc<Metrics>,
    block: Arc<WorkerBlock>,
    view: RefCell<View>,
}

impl Recorder {
    /// Resolves the slots of `snap`'s routes and plugins (interning new labels and
    /// allocating their cells). The worker calls it whenever it moves to another
    /// snapshot, before routing a request on it.
    pub fn on_snapshot(&self, snap: &Snapshot) {
        let config = &snap.config;
        let (routes, plugins): (Box<[u32]>, Box<[u32]>) = {
            let mut labels = self.metrics.labels();
            let routes = (0..config.routes.len())
                .map(|i| {
                    let service = service_label(config, config.routes[i].service);
                    labels.route(&route_label(config, i).to_string(), &service.to_string())
                })
                .collect();
            let plugins = (0..config.plugins.len()).map(|i| labels.plugin(&plugin_label(config, i))).collect();
            (routes, plugins)
        };
        for &s in routes.iter() {
            self.block.routes.ensure(s);
        }
        for &s in plugins.iter() {
            self.block.plugins.ensure(s);
        }
        *self.view.borrow_mut() = View { routes, plugins };
    }

    /// The slot of route `route` of the snapshot last given to [`Recorder::on_snapshot`].
    #[inline]
    pub fn route_slot(&self, route: usize) -> u32 {
        self.view.borrow().routes.get(route).copied().unwrap_or(ROUTE_OTHER)
    }

    /// The slot of plugin `plugin` of that snapshot.
    #[inline]
    pub fn plugin_slot(&self, plugin: usize) -> u32 {
        self.view.borrow().plugins.get(plugin).copied().unwrap_or(PLUGIN_OTHER)
    }

    /// A downstream connection was accepted; `open` is the worker's count now.
    pub fn connection_opened(&self, open: usize) {
        bump(&self.block.scalars.connections_accepted, 1);
        self.block.scalars.connections_open.store(open as u64, Relaxed);
    }

    /// A downstream connection closed; `open` is the worker's count now.
    pub fn connection_closed(&self, open: usize) {
        self.block.scalars.connections_open.store(open as u64, Relaxed);
    }

    /// A new connection was closed at once: the worker is at `--max-connections`.
    pub fn connection_refused(&self) {
        bump(&self.block.scalars.connections_refused, 1);
    }

    /// Access log writes that failed.
    pub fn access_log_write_failed(&self, writes: u64) {
        if writes > 0 {
            bump(&self.block.scalars.access_log_write_errors, writes);
        }
    }

    /// Access log lines dropped because the log's writer was behind.
    pub fn access_log_dropped(&self, lines: u64) {
        if lines > 0 {
            bump(&self.block.scalars.access_log_lines_dropped, lines);
        }
    }

    /// Counts a finished request; `end` is when its last byte was written (or it failed).
    #[inline]
    pub fn finish(&self, ex: &Exchange, end: Instant) {
        let b = &*self.block;
        bump(&b.scalars.requests, 1);
        let total = nanos(end.saturating_duration_since(ex.start));
        if let Some(cells) = b.routes.get(ex.route_slot) {
            cells.count_status(ex.status);
            bump(&cells.bytes_received, ex.bytes_received);
            bump(&cells.bytes_sent, ex.bytes_sent);
            cells.total.observe_owned(total);
            let upstream = ex.upstream.map(nanos);
            if let Some(u) = upstream {
                cells.upstream.observe_owned(u);
            }
            cells.gateway.observe_owned(total.saturating_sub(upstream.unwrap_or(0)));
        }
        let Some(p) = ex.plugin_slot.and_then(|s| b.plugins.get(s)) else { return };
        match ex.auth.cache {
            Some(CacheUse::Hit) => bump(&p.cache_hits, 1),
            Some(CacheUse::HitRefreshing) => {
                bump(&p.cache_hits, 1);
                bump(&p.cache_refreshes, 1);
            }
            Some(CacheUse::NegativeHit) => bump(&p.cache_negative_hits, 1),
            Some(CacheUse::Miss) => bump(&p.cache_misses, 1),
            None => {}
        }
        match ex.auth.bearer_cached {
            Some(true) => bump(&p.bearer_cache_hits, 1),
            Some(false) => bump(&p.bearer_verified, 1),
            None => {}
        }
        if let Some(r) = ex.denied {
            bump(&p.failures[r.index()], 1);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
