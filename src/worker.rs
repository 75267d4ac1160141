//! One worker: a thread with its own monoio runtime and everything it owns.
//!
//! A worker's connections, buffers, upstream pool and snapshot handle are touched by that
//! worker alone (`Rc`, `Cell`, `RefCell`): nothing on the request path is shared with
//! another core except the immutable snapshot, read through `ArcSwap`, and the worker's
//! own metrics block, which only this worker writes (the scraper reads it).

use std::cell::{Cell, RefCell};

use crate::net::Stream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;

use crate::router::Router;
use crate::server::drain::Drain;
use crate::server::{IoDriver, Limits, SHUTDOWN_POLL};
use crate::snapshot::{Peer, SharedSnapshot, Snapshot};
use crate::upstream::balancer::Balancer;
use crate::upstream::health::Outcome;
use crate::upstream::Pool;

/// How long a stopping worker waits for the access log's writer to take its last lines.
const LOG_FINISH: Duration = Duration::from_secs(2);

/// What a worker thread is started with.
pub struct WorkerStart {
    pub id: usize,
    /// This worker's sockets, one per listen address, with the port each listens on.
    pub listeners: Vec<Listener>,
    pub snapshot: SharedSnapshot,
    pub limits: Limits,
    pub driver: IoDriver,
    pub shutdown: Arc<AtomicBool>,
    pub control: Option<crate::control::ControlPlane>,
    /// Told once whether the runtime and listeners came up (or why not).
    pub ready: std::sync::mpsc::Sender<Result<(), String>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub access_log: Option<Arc<crate::access_log::Sink>>,
    /// The CPU to pin this worker's thread to, if any.
    pub cpu: Option<usize>,
}

/// One bound listening socket handed to a worker.
pub struct Listener {
    pub socket: std::net::TcpListener,
    /// The port it is bound to (for `X-Forwarded-Port`).
    pub port: u16,
    /// Connections on it start with a TLS handshake.
    pub tls: bool,
}

/// A worker's hold on one snapshot: the shared snapshot, read through `Deref`, with
/// what this worker keeps of its own for it:
/// - a clone of the router, so that no two workers ever share the regex crate's
///   scratch space (a mutex for every worker but the first to match a regex; see
///   `router/mod.rs`). The clone shares the routing tables: it copies the regexes;
/// - its balancer: round-robin positions, passive health counts, orders over healthy
///   peers ([`Balancer`]).
pub struct LocalSnapshot {
    pub shared: Arc<Snapshot>,
    /// Routes this worker's requests; shadows `Snapshot::router`.
    pub router: Router,
    pub balancer: Balancer,
}

impl LocalSnapshot {
    fn new(shared: Arc<Snapshot>, worker: usize) -> LocalSnapshot {
        let router = shared.router.clone();
        let balancer = Balancer::new(&shared, worker);
        LocalSnapshot { shared, router, balancer }
    }

    /// The next pick of service `si`, for [`LocalSnapshot::peer_at`].
    #[inline]
    pub fn next_pick(&self, si: usize) -> usize {
        self.balancer.next_pick(si)
    }

    /// The peer of pick `n` of service `si`, with its index ([`Balancer::peer_at`]).
    #[inline]
    pub fn peer_at(&self, si: usize, n: usize, key: Option<(u64, usize)>) -> Option<(usize, &Peer)> {
        self.balancer.peer_at(&self.shared, si, n, key)
    }

    /// The peer a sticky-sessions cookie names ([`Balancer::sticky_peer`]).
    #[inline]
    pub fn sticky_peer(&self, si: usize, id: u64) -> Option<(usize, &Peer)> {
        self.balancer.sticky_peer(&self.shared, si, id)
    }

    /// Counts what a request to `peer` showed ([`Balancer::observe`]).
    #[inline]
    pub fn observe(&self, peer: &Peer, outcome: Outcome, worker: usize) {
        self.balancer.observe(&self.shared, peer, outcome, worker);
    }
}

impl std::ops::Deref for LocalSnapshot {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        &self.shared
    }
}

/// Per-worker state shared by the worker's tasks.
pub struct Worker {
    pub id: usize,
    shared: SharedSnapshot,
    // The `Rc` is the point: requests clone it (a plain increment) instead of the
    // `Arc` (an atomic one on a cache line every core shares).
    current: RefCell<Rc<LocalSnapshot>>,
    pub limits: Limits,
    pub pool: Pool,
    pub drain: Drain,
    /// Open downstream connections.
    pub active: Cell<usize>,
    /// The openid-connect plugin's per-worker caches.
    pub auth: crate::oidc::access::WorkerAuth,
    /// This worker's metrics.
    pub stats: crate::metrics::Recorder,
    /// This worker's access log buffer.
    pub log: crate::access_log::WorkerLog,
}

impl Worker {
    /// The current snapshot. Compares one pointer with the shared `ArcSwap` and only
    /// takes a new reference (and a router of its own) when a reload has happened.
    pub fn snapshot(&self) -> Rc<LocalSnapshot> {
        let latest = self.shared.load();
        let mut cur = self.current.borrow_mut();
        if !Arc::ptr_eq(&cur.shared, &latest) {
            *cur = Rc::new(LocalSnapshot::new(arc_swap::Guard::into_inner(latest), self.id));
            self.auth.retain(&cur.instances());
            self.stats.on_snapshot(&cur);
        }
        cur.clone()
    }

    /// Hands the access log buffer to the log's writer; failed writes and dropped lines
    /// are counted (and logged once).
    pub fn flush_log(&self) {
        self.count_log(self.log.flush());
    }

    fn count_log(&self, f: crate::access_log::Flushed) {
        self.stats.access_log_write_failed(f.failed_writes);
        self.stats.access_log_dropped(f.dropped_lines);
    }
}

/// Thread body: builds the runtime for the chosen driver and serves until shutdown.
pub fn run(start: WorkerStart) {
    if let Some(cpu) = start.cpu {
        if let Err(e) = crate::affinity::pin_current_thread(cpu) {
            let _ = start.ready.send(Err(format!("worker {} could not be pinned to CPU {cpu}: {e}", start.id)));
            return;
        }
    }
    let uring_ok = monoio::utils::detect_uring();
    let use_uring = match start.driver {
        IoDriver::Auto => uring_ok,
        IoDriver::IoUring => true,
        IoDriver::Legacy => false,
    };
    if start.id == 0 {
        if start.driver == IoDriver::Auto && !uring_ok {
            tracing::warn!("io_uring is not available here; workers use the epoll-based legacy driver");
        } else {
            tracing::info!(driver = if use_uring { "io_uring" } else { "legacy" }, "workers started");
        }
    }
    let ready = start.ready.clone();
    let result = if use_uring {
        build_uring_runtime(start.id).map(|mut rt| rt.block_on(serve(start)))
    } else {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(|mut rt| rt.block_on(serve(start)))
    };
    if let Err(e) = result {
        let driver = if use_uring { "io_uring" } else { "legacy" };
        let _ = ready.send(Err(format!("the {driver} runtime could not start: {e}")));
    }
}

/// Adds setup flags to an io_uring builder.
type RingSetup = fn(&mut io_uring::Builder);

type UringRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

/// Builds the io_uring runtime with the cheapest completion mode the kernel offers.
///
/// By default a completion that arrives while the worker is running user code is
/// delivered with an inter-processor interrupt and run as task work on the next return
/// to user space; on the proxy's loopback-heavy traffic that was the largest single
/// kernel cost. `DEFER_TASKRUN` (Linux 6.1, with `SINGLE_ISSUER`: only this thread
/// submits, which thread-per-core guarantees) runs completions in a batch when the
/// worker waits for events; `COOP_TASKRUN` (5.19) at least drops the interrupt. Older
/// kernels get the plain ring. Measured in perf/: CPU per request fell about 20 %.
fn build_uring_runtime(worker: usize) -> std::io::Result<UringRuntime> {
    let modes: [(&str, RingSetup); 3] = [
        ("defer_taskrun", |b| {
            b.setup_single_issuer().setup_defer_taskrun();
        }),
        ("coop_taskrun", |b| {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }),
        ("plain", |_| {}),
    ];
    let mut last_err = None;
    for (name, setup) in modes {
        let mut ring = io_uring::IoUring::builder();
        setup(&mut ring);
        match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(ring)
            .with_entries(1024)
            .enable_timer()
            .build()
        {
            Ok(rt) => {
                if worker == 0 {
                    tracing::debug!(mode = name, "io_uring completion mode");
                }
                return Ok(rt);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("io_uring unavailable")))
}

async fn serve(start: WorkerStart) {
    let initial = start.snapshot.load_full();
    let stats = start.metrics.recorder(start.id);
    stats.on_snapshot(&initial);
    let worker = Rc::new(Worker {
        id: start.id,
        current: RefCell::new(Rc::new(LocalSnapshot::new(initial, start.id))),
        shared: start.snapshot,
        limits: start.limits,
        pool: Pool::new(start.limits.upstream_keepalive, start.limits.upstream_idle_timeout),
        drain: Drain::default(),
        active: Cell::new(0),
        auth: crate::oidc::access::WorkerAuth::new(start.control.clone()),
        stats,
        log: crate::access_log::WorkerLog::new(start.access_log.clone()),
    });
    let mut listeners = Vec::new();
    for Listener { socket, port, tls } in start.listeners {
        match TcpListener::from_std(socket) {
            Ok(l) => listeners.push((l, port, tls)),
            Err(e) => {
                let _ = start.ready.send(Err(format!("a listener could not join the runtime: {e}")));
                return;
            }
        }
    }
    let _ = start.ready.send(Ok(()));
    let accepting: Vec<_> =
        listeners.into_iter().map(|(l, port, tls)| monoio::spawn(accept_loop(worker.clone(), l, port, tls))).collect();
    let sweeper = {
        let w = worker.clone();
        monoio::spawn(async move {
            while !w.drain.is_draining() {
                monoio::time::sleep(Duration::from_secs(1)).await;
                w.pool.sweep();
            }
        })
    };
    // The access log goes out every other tick (~100 ms) when it has not filled up first.
    let mut tick = 0u32;
    while !start.shutdown.load(Ordering::Relaxed) {
        monoio::time::sleep(SHUTDOWN_POLL).await;
        tick = tick.wrapping_add(1);
        if tick % 2 == 0 {
            worker.flush_log();
        }
    }
    worker.drain.start();
    for a in accepting {
        a.await;
    }
    sweeper.await;
    while worker.active.get() > 0 {
        monoio::time::sleep(Duration::from_millis(10)).await;
        worker.flush_log();
    }
    // The last lines: written before the worker goes, unless the log is stuck.
    worker.count_log(worker.log.finish(LOG_FINISH));
    worker.pool.clear();
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener, port: u16, tls: bool) {
    let slot = worker.drain.register();
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = worker.drain.wait(slot) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                if worker.active.get() >= worker.limits.max_connections {
                    tracing::debug!(worker = worker.id, "connection limit reached; closing a new connection");
                    worker.stats.connection_refused();
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                worker.active.set(worker.active.get() + 1);
                worker.stats.connection_opened(worker.active.get());
                let w = worker.clone();
                monoio::spawn(async move {
                    let stream =
                        if tls { handshake(&w, stream, peer).await } else { Some((Stream::Plain(stream), None)) };
                    if let Some((stream, client_cert)) = stream {
                        crate::server::conn::serve(&w, stream, peer, port, client_cert).await;
                    }
                    w.active.set(w.active.get() - 1);
                    w.stats.connection_closed(w.active.get());
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(worker = worker.id, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    worker.drain.unregister(slot);
}

/// The server side of a TLS handshake on an accepted connection, with the certificates of
/// the current snapshot, bounded by `tls_handshake_timeout`; with the thumbprint of the
/// client's certificate when the handshake asked for one and got it. `None` (the
/// connection is closed) when it fails, times out, or there is no certificate to serve.
///
/// It runs in the connection's own task, so a slow or stalled client holds up nothing
/// else on the worker; the crypto of one handshake (~1 ms of CPU for RSA-2048) is the
/// only time the worker is busy with it.
async fn handshake(
    w: &Rc<Worker>,
    tcp: monoio::net::TcpStream,
    peer: std::net::SocketAddr,
) -> Option<(Stream, Option<crate::tls::ClientCertThumbprint>)> {
    let snapshot = w.snapshot();
    let Some(tls) = &snapshot.tls_server else {
        tracing::warn!(worker = w.id, "a TLS connection arrived but no certificate is configured; closed");
        return None;
    };
    let (config, client_cert) = tls.for_handshake();
    drop(snapshot);
    let acceptor = monoio_rustls::TlsAcceptor::from(config);
    let accept = acceptor.accept(tcp);
    match monoio::time::timeout(w.limits.tls_handshake_timeout, accept).await {
        Ok(Ok(s)) => Some((Stream::TlsServer(Box::new(s)), client_cert.and_then(|c| c.thumbprint()))),
        Ok(Err(e)) => {
            tracing::debug!(worker = w.id, %peer, error = %crate::tls::handshake_error(e), "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(worker = w.id, %peer, "TLS handshake timed out");
            None
        }
    }
}
