//! One worker: a thread with its own monoio runtime and everything it owns.
//!
//! A worker's connections, buffers, upstream pool and snapshot handle are touched by that
//! worker alone (`Rc`, `Cell`, `RefCell`): nothing on the request path is shared with
//! another core except the immutable snapshot, read through `ArcSwap`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;

use crate::server::drain::Drain;
use crate::server::{IoDriver, Limits, SHUTDOWN_POLL};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::upstream::Pool;

/// What a worker thread is started with.
pub struct WorkerStart {
    pub id: usize,
    /// This worker's sockets, one per listen address, with the port each listens on.
    pub listeners: Vec<(std::net::TcpListener, u16)>,
    pub snapshot: SharedSnapshot,
    pub limits: Limits,
    pub driver: IoDriver,
    pub shutdown: Arc<AtomicBool>,
}

/// Per-worker state shared by the worker's tasks.
pub struct Worker {
    pub id: usize,
    shared: SharedSnapshot,
    // The extra `Rc` is the point: requests clone it (a plain increment) instead of the
    // `Arc` (an atomic one on a cache line every core shares).
    #[allow(clippy::redundant_allocation)]
    current: RefCell<Rc<Arc<Snapshot>>>,
    pub limits: Limits,
    pub pool: Pool,
    pub drain: Drain,
    /// Open downstream connections.
    pub active: Cell<usize>,
    /// Round-robin position over a service's addresses.
    pub rr: Cell<usize>,
}

impl Worker {
    /// The current snapshot. Compares one pointer with the shared `ArcSwap` and only
    /// takes a new reference when a reload has happened.
    #[allow(clippy::redundant_allocation)]
    pub fn snapshot(&self) -> Rc<Arc<Snapshot>> {
        let latest = self.shared.load();
        let mut cur = self.current.borrow_mut();
        if !Arc::ptr_eq(&cur, &latest) {
            *cur = Rc::new(arc_swap::Guard::into_inner(latest));
        }
        cur.clone()
    }
}

/// Thread body: builds the runtime for the chosen driver and serves until shutdown.
pub fn run(start: WorkerStart) {
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
    let id = start.id;
    let result = if use_uring {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .enable_timer()
            .build()
            .map(|mut rt| rt.block_on(serve(start)))
    } else {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(|mut rt| rt.block_on(serve(start)))
    };
    if let Err(e) = result {
        tracing::error!(worker = id, error = %e, "worker runtime could not start");
    }
}

async fn serve(start: WorkerStart) {
    let worker = Rc::new(Worker {
        id: start.id,
        current: RefCell::new(Rc::new(start.snapshot.load_full())),
        shared: start.snapshot,
        limits: start.limits,
        pool: Pool::new(start.limits.upstream_keepalive, start.limits.upstream_idle_timeout),
        drain: Drain::default(),
        active: Cell::new(0),
        rr: Cell::new(0),
    });
    let mut accepting = Vec::new();
    for (std_listener, port) in start.listeners {
        match TcpListener::from_std(std_listener) {
            Ok(l) => accepting.push(monoio::spawn(accept_loop(worker.clone(), l, port))),
            Err(e) => tracing::error!(worker = worker.id, error = %e, "listener could not join the runtime"),
        }
    }
    let sweeper = {
        let w = worker.clone();
        monoio::spawn(async move {
            while !w.drain.is_draining() {
                monoio::time::sleep(Duration::from_secs(1)).await;
                w.pool.sweep();
            }
        })
    };
    while !start.shutdown.load(Ordering::Relaxed) {
        monoio::time::sleep(SHUTDOWN_POLL).await;
    }
    worker.drain.start();
    for a in accepting {
        a.await;
    }
    sweeper.await;
    while worker.active.get() > 0 {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.pool.clear();
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener, port: u16) {
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
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                worker.active.set(worker.active.get() + 1);
                let w = worker.clone();
                monoio::spawn(async move {
                    crate::server::conn::serve(&w, stream, peer, port).await;
                    w.active.set(w.active.get() - 1);
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
