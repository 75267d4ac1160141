//! The upstream side: connections to services, kept alive per worker.
//!
//! Place in the request path: after routing, the connection asks its worker's [`Pool`]
//! for an idle connection to the service's address, or opens one ([`connect`]). When
//! the response has been relayed whole and both sides allow it, the connection goes
//! back to the pool.
//!
//! Invariants: a pooled connection has no request in flight and no unread response
//! bytes (a response that left bytes behind, or whose framing was cut short, is closed,
//! never pooled), so leftover bytes can never be read as the next response. The pool is
//! per worker (`RefCell`, no lock) and keyed by socket address and TLS identity
//! ([`PoolKey`]): a TLS connection made for one service's name, trust and client
//! certificate is never handed to another service, nor a plain one to an `https` one.
//!
//! Cost: a hash lookup and a `Vec` pop per request on a warm pool.

pub mod balancer;
pub mod health;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::fasthash::FastMap;
use crate::net::Stream;
use crate::tls::config::UpstreamTarget;

/// Read buffer size for a new upstream connection.
const UPSTREAM_BUF: usize = 16 * 1024;

/// Which pooled connections may serve a request: same address, and the same TLS setup
/// (`tls` is [`UpstreamTarget::id`], 0 for plain TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    pub tls: u64,
}

impl PoolKey {
    pub fn new(addr: SocketAddr, tls: Option<&UpstreamTarget>) -> PoolKey {
        PoolKey { addr, tls: tls.map_or(0, |t| t.id) }
    }
}

/// An open connection to an upstream, with the buffer its responses are read into.
pub struct UpstreamConn {
    pub stream: Stream,
    pub buf: Vec<u8>,
    pub key: PoolKey,
    /// Taken from the pool (it has carried a request before), as opposed to new.
    pub reused: bool,
}

type AddrMap<V> = FastMap<PoolKey, V>;

/// Idle upstream connections of one worker.
///
/// Idle times are measured on a coarse clock that [`Pool::sweep`] advances (the worker
/// calls it every second), so taking and returning a connection reads no clock; a
/// connection may outlive the idle timeout by up to one sweep interval.
pub struct Pool {
    idle: RefCell<AddrMap<VecDeque<(UpstreamConn, Instant)>>>,
    max_idle_per_addr: usize,
    idle_timeout: Duration,
    now: Cell<Instant>,
}

impl Pool {
    pub fn new(max_idle_per_addr: usize, idle_timeout: Duration) -> Pool {
        Pool { idle: RefCell::new(AddrMap::default()), max_idle_per_addr, idle_timeout, now: Cell::new(Instant::now()) }
    }

    /// The most recently used idle connection for `key` that has not been idle too long.
    pub fn take(&self, key: PoolKey) -> Option<UpstreamConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&key)?;
        let now = self.now.get();
        while let Some((mut conn, since)) = list.pop_back() {
            if now.duration_since(since) < self.idle_timeout {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection whose last response was read whole.
    pub fn put(&self, mut conn: UpstreamConn) {
        if self.max_idle_per_addr == 0 {
            return;
        }
        conn.buf.clear();
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(conn.key).or_default();
        if list.len() >= self.max_idle_per_addr {
            // Drop the oldest; the newest is the likeliest to still be open upstream.
            list.pop_front();
        }
        list.push_back((conn, self.now.get()));
    }

    /// Advances the pool's clock and closes connections idle past the timeout; run
    /// every second by the worker.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.now.set(now);
        let mut idle = self.idle.borrow_mut();
        for list in idle.values_mut() {
            list.retain(|(_, since)| now.duration_since(*since) < self.idle_timeout);
        }
        idle.retain(|_, l| !l.is_empty());
    }

    /// Number of idle connections held (for tests and metrics).
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(VecDeque::len).sum()
    }

    /// Closes every idle connection (on shutdown).
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }
}

/// Why a connect attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Io(io::Error),
    /// The TLS handshake failed: the reason (a certificate the service does not trust,
    /// a name mismatch, no common protocol, ...).
    Tls(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("timed out"),
            ConnectError::Io(e) => write!(f, "{e}"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

/// Opens a new connection to `addr` (TLS when `tls` is given, handshake included)
/// within `timeout`.
pub async fn connect(
    addr: SocketAddr,
    tls: Option<&UpstreamTarget>,
    timeout: Duration,
) -> Result<UpstreamConn, ConnectError> {
    let key = PoolKey::new(addr, tls);
    let open = async {
        let tcp = TcpStream::connect_addr(addr).await.map_err(ConnectError::Io)?;
        // Heads and small bodies go out in one write each; Nagle would only delay them.
        tcp.set_nodelay(true).map_err(ConnectError::Io)?;
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(t) => monoio_rustls::TlsConnector::from(t.config.clone())
                .connect(t.name.clone(), tcp)
                .await
                .map(|s| Stream::TlsClient(Box::new(s)))
                .map_err(|e| ConnectError::Tls(crate::tls::handshake_error(e))),
        }
    };
    let stream = monoio::time::timeout(timeout, open).await.map_err(|_| ConnectError::Timeout)??;
    Ok(UpstreamConn { stream, buf: Vec::with_capacity(UPSTREAM_BUF), key, reused: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(c: &UpstreamConn) -> u16 {
        match &c.stream {
            Stream::Plain(s) => s.local_addr().unwrap().port(),
            _ => unreachable!("plain connections only here"),
        }
    }

    async fn conn_to(addr: SocketAddr) -> UpstreamConn {
        connect(addr, None, Duration::from_secs(1)).await.map_err(|e| format!("{e:?}")).expect("connects")
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn pool_hands_back_the_newest_connection_and_caps_idle_ones() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = Pool::new(2, Duration::from_secs(30));
        let key = PoolKey::new(addr, None);
        assert!(pool.take(key).is_none());
        let mut ports = Vec::new();
        for _ in 0..3 {
            let c = conn_to(addr).await;
            ports.push(port(&c));
            assert!(!c.reused);
            pool.put(c);
        }
        // The oldest of three was dropped to respect the cap of two.
        assert_eq!(pool.idle_count(), 2);
        // A connection made for another TLS setup (or none) is never handed out.
        assert!(pool.take(PoolKey { addr, tls: 7 }).is_none());
        let newest = pool.take(key).unwrap();
        assert!(newest.reused);
        assert_eq!(port(&newest), ports[2]);
        assert_eq!(port(&pool.take(key).unwrap()), ports[1]);
        assert!(pool.take(key).is_none());
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn pool_drops_connections_idle_past_the_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = Pool::new(8, Duration::from_millis(50));
        pool.put(conn_to(addr).await);
        monoio::time::sleep(Duration::from_millis(80)).await;
        // The coarse clock only moves on a sweep, which also closes what expired.
        pool.sweep();
        assert_eq!(pool.idle_count(), 0);
        pool.put(conn_to(addr).await);
        assert!(pool.take(PoolKey::new(addr, None)).is_some(), "a fresh connection is handed out");
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn connect_to_a_closed_port_fails_fast() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(matches!(connect(addr, None, Duration::from_secs(2)).await, Err(ConnectError::Io(_))));
    }
}
