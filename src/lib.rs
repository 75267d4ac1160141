//! ringgate: a thread-per-core edge proxy that exchanges OAuth2 client credentials for
//! tokens at the edge, compatible with Kong's decK files, Admin API and `openid-connect`
//! plugin.
//!
//! # The request path, module by module
//!
//! 1. [`worker`] runs one monoio runtime per core (io_uring, epoll as the fallback); each
//!    accepts on its own `SO_REUSEPORT` listeners and, for a TLS listener, runs the
//!    handshake ([`tls`]) in the connection's task. [`net::Stream`] is the connection's
//!    byte stream either way.
//! 2. [`server::conn`] reads the request head into the connection's buffer and parses it
//!    in place ([`http::head`]): strict framing, no per-header allocation.
//! 3. [`router`] matches host, path, method and headers with Kong's precedence, against
//!    the [`snapshot::Snapshot`] the worker holds (one pointer compare per request).
//! 4. The route's plugins run their access phase: [`oidc::access`] finds the caller's
//!    credentials ([`oidc::credentials`]), digests them into a key and looks it up in the
//!    worker's token cache ([`oidc::cache`]); a miss goes to the [`control`] plane
//!    thread, which asks the IdP once for the whole process and verifies the token
//!    ([`jose`]). A caller's own bearer token is verified against the same keys.
//! 5. [`http::rewrite`] writes the upstream head as slices of the original bytes with the
//!    token header set; [`upstream`] hands out a pooled connection (TLS for `https`
//!    services); the body and the response are relayed.
//! 6. Every refusal is turned into a response in one place, [`error`]; each request is
//!    counted in the worker's own [`metrics`] block and, when on, written to the
//!    [`access_log`].
//!
//! Off the request path: [`config`] loads and validates decK files and Kubernetes
//! manifests (every problem with its line and column); [`admin`] serves the Admin API
//! and is the one path every configuration change takes, compiled into a new
//! [`snapshot::Snapshot`] and swapped in for all workers at once.

pub mod access_log;
pub mod admin;
pub mod affinity;
pub mod config;
pub mod consumers;
pub mod control;
pub mod error;
pub mod fasthash;
pub mod http;
pub mod jose;
pub mod metrics;
pub mod net;
pub mod oidc;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod upstream;
pub mod worker;

#[cfg(test)]
mod testing;
