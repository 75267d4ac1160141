//! The data plane's outer shell: listeners, worker threads, limits and shutdown.
//!
//! [`Server::start`] binds every listen address once per worker with `SO_REUSEPORT`, so
//! the kernel spreads new connections across workers and no accept lock is shared, then
//! starts one thread per worker, each running its own monoio runtime (see
//! `crate::worker`). Shutdown is a flag the workers poll every
//! [`SHUTDOWN_POLL`]; once set they stop accepting, close idle connections, let
//! requests in flight finish, and exit.

pub mod conn;
pub mod drain;
pub mod timer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::http::head::HeadLimits;
use crate::metrics::Metrics;
use crate::snapshot::SharedSnapshot;

/// How often workers look at the shutdown flag.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// Every limit the data plane enforces, each settable from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub head: HeadLimits,
    /// Request body bytes; 0 = unlimited.
    pub max_body_bytes: u64,
    /// From the first byte of a head to its end (slow-loris guard).
    pub header_timeout: Duration,
    /// From accepting a TLS connection to the end of its handshake.
    pub tls_handshake_timeout: Duration,
    /// Keep-alive idle time between requests.
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body, or for the downstream to
    /// take the next piece of a response.
    pub body_timeout: Duration,
    /// Open downstream connections per worker; past it new connections are closed.
    pub max_connections: usize,
    /// Idle upstream connections kept per upstream address, per worker.
    pub upstream_keepalive: usize,
    /// How long an idle upstream connection is kept.
    pub upstream_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: HeadLimits::default(),
            max_body_bytes: 100 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_connections: 16384,
            upstream_keepalive: 512,
            upstream_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Which monoio driver workers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring where the kernel allows it, else the epoll-based legacy driver.
    Auto,
    IoUring,
    Legacy,
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: Vec<SocketAddr>,
    /// Addresses that take TLS (the certificates come from the snapshot).
    pub tls_listen: Vec<SocketAddr>,
    pub workers: usize,
    pub driver: IoDriver,
    pub limits: Limits,
    /// The control plane, for the openid-connect plugin; `None` serves routes that need
    /// it with 503.
    pub control: Option<crate::control::ControlPlane>,
    /// The opened access log (`--access-log`); `None`: off.
    pub access_log: Option<Arc<crate::access_log::Sink>>,
    /// The CPU each worker is pinned to, by worker id (`--cpu-affinity`, see
    /// [`crate::affinity::plan`]); `None`, or no entry for a worker: unpinned.
    pub cpus: Option<Vec<usize>>,
}

/// A running data plane.
pub struct Server {
    /// The bound addresses, with ports resolved (for listen addresses given port 0).
    pub local_addrs: Vec<SocketAddr>,
    /// The bound TLS addresses, likewise.
    pub tls_addrs: Vec<SocketAddr>,
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Server {
    /// Binds the listeners and starts the workers.
    pub fn start(opts: ServerOptions, snapshot: SharedSnapshot) -> std::io::Result<Server> {
        let workers = opts.workers.max(1);
        let mut per_worker: Vec<Vec<crate::worker::Listener>> = (0..workers).map(|_| Vec::new()).collect();
        let (mut local_addrs, mut tls_addrs) = (Vec::new(), Vec::new());
        for (addr, tls) in opts.listen.iter().map(|a| (a, false)).chain(opts.tls_listen.iter().map(|a| (a, true))) {
            let mut bound = *addr;
            for w in per_worker.iter_mut() {
                let socket = bind_reuseport(bound)?;
                bound = socket.local_addr()?;
                w.push(crate::worker::Listener { socket, port: bound.port(), tls });
            }
            if tls {
                tls_addrs.push(bound)
            } else {
                local_addrs.push(bound)
            }
        }
        let shutdown = Arc::new(AtomicBool::new(false));
        let metrics = Metrics::new(workers, opts.control.as_ref().map(crate::control::ControlPlane::metrics));
        if let Some(control) = &opts.control {
            control.check_health(snapshot.clone());
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for (id, listeners) in per_worker.into_iter().enumerate() {
            let ctx = crate::worker::WorkerStart {
                id,
                listeners,
                snapshot: snapshot.clone(),
                limits: opts.limits,
                driver: opts.driver,
                shutdown: shutdown.clone(),
                ready: ready_tx.clone(),
                control: opts.control.clone(),
                metrics: metrics.clone(),
                access_log: opts.access_log.clone(),
                cpu: opts.cpus.as_ref().and_then(|cpus| cpus.get(id).copied()),
            };
            threads.push(
                std::thread::Builder::new().name(format!("ringgate-w{id}")).spawn(move || crate::worker::run(ctx))?,
            );
        }
        drop(ready_tx);
        if let Some(control) = &opts.control {
            control.watch(snapshot.load().instances());
        }
        let server = Server { local_addrs, tls_addrs, shutdown, threads, metrics };
        // Every worker reports once; a worker that cannot start fails the whole start.
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    server.stop(Duration::from_secs(5));
                    return Err(std::io::Error::other(why));
                }
                Err(_) => {
                    server.stop(Duration::from_secs(5));
                    return Err(std::io::Error::other("a worker thread exited during start-up"));
                }
            }
        }
        Ok(server)
    }

    /// The workers' and the control plane's metrics ([`Metrics::render`] for `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Stops accepting and starts draining; returns at once.
    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Waits for the workers to finish, up to `deadline`. Returns whether all did.
    pub fn join(self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if self.threads.iter().all(JoinHandle::is_finished) {
                for t in self.threads {
                    let _ = t.join();
                }
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Shuts down and waits, up to `deadline`.
    pub fn stop(self, deadline: Duration) -> bool {
        self.begin_shutdown();
        self.join(deadline)
    }
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
