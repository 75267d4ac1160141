//! The control plane's counters: IdP calls by endpoint and outcome with their latency,
//! JWKS refreshes, and how workers' token requests were answered.
//!
//! The control plane is one thread and off the request path, so these are plain atomic
//! adds; the scraper reads them like the workers' blocks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::{nanos, Histogram};

/// Which IdP endpoint a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpEndpoint {
    Discovery,
    Jwks,
    Token,
    Introspection,
}

impl IdpEndpoint {
    pub const ALL: [IdpEndpoint; 4] =
        [IdpEndpoint::Discovery, IdpEndpoint::Jwks, IdpEndpoint::Token, IdpEndpoint::Introspection];

    pub fn label(self) -> &'static str {
        match self {
            IdpEndpoint::Discovery => "discovery",
            IdpEndpoint::Jwks => "jwks",
            IdpEndpoint::Token => "token",
            IdpEndpoint::Introspection => "introspection",
        }
    }
}

/// How an IdP call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpOutcome {
    /// The answer the protocol asks for (for the token endpoint: a token).
    Ok,
    /// A 4xx answer (on the token endpoint: the IdP refused the credentials).
    Status4xx,
    /// A 5xx answer.
    Status5xx,
    /// Any other unexpected status (a redirect, which is never followed).
    OtherStatus,
    /// No complete answer within the plugin's `timeout`.
    Timeout,
    /// Refused, reset, DNS or TLS failure.
    Unreachable,
    /// A 200 whose body is not what the protocol says.
    Invalid,
    /// The client could not be set up (a bad proxy URL).
    Error,
}

impl IdpOutcome {
    pub const ALL: [IdpOutcome; 8] = [
        IdpOutcome::Ok,
        IdpOutcome::Status4xx,
        IdpOutcome::Status5xx,
        IdpOutcome::OtherStatus,
        IdpOutcome::Timeout,
        IdpOutcome::Unreachable,
        IdpOutcome::Invalid,
        IdpOutcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            IdpOutcome::Ok => "ok",
            IdpOutcome::Status4xx => "4xx",
            IdpOutcome::Status5xx => "5xx",
            IdpOutcome::OtherStatus => "other_status",
            IdpOutcome::Timeout => "timeout",
            IdpOutcome::Unreachable => "unreachable",
            IdpOutcome::Invalid => "invalid",
            IdpOutcome::Error => "error",
        }
    }

    /// The outcome of an answer with HTTP status `status` that was not what was asked.
    pub fn of_status(status: u16) -> IdpOutcome {
        match status {
            400..=499 => IdpOutcome::Status4xx,
            500..=599 => IdpOutcome::Status5xx,
            _ => IdpOutcome::OtherStatus,
        }
    }
}

/// How an unknown-`kid` key refetch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksRefresh {
    /// New keys were fetched and published.
    Ok,
    /// The refetch failed; the last good set stays.
    Failed,
    /// Not attempted: within `rediscovery_lifetime` of the last one.
    Cooldown,
}

impl JwksRefresh {
    pub const ALL: [JwksRefresh; 3] = [JwksRefresh::Ok, JwksRefresh::Failed, JwksRefresh::Cooldown];

    pub fn label(self) -> &'static str {
        match self {
            JwksRefresh::Ok => "ok",
            JwksRefresh::Failed => "failed",
            JwksRefresh::Cooldown => "cooldown",
        }
    }
}

/// How the control plane answered a worker's token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// From the process-wide (L2) cache.
    L2Hit,
    /// Joined a fetch already in flight for the same key (single flight).
    Joined,
    /// Started a token endpoint call.
    Fetched,
    /// Refused at once: the issuer already had `--idp-max-in-flight` calls waiting.
    Shed,
}

impl TokenSource {
    pub const ALL: [TokenSource; 4] =
        [TokenSource::L2Hit, TokenSource::Joined, TokenSource::Fetched, TokenSource::Shed];

    pub fn label(self) -> &'static str {
        match self {
            TokenSource::L2Hit => "l2_hit",
            TokenSource::Joined => "joined",
            TokenSource::Fetched => "fetched",
            TokenSource::Shed => "shed",
        }
    }
}

/// The control plane's block.
#[derive(Default)]
pub struct ControlMetrics {
    pub(super) idp_calls: [[AtomicU64; IdpOutcome::ALL.len()]; IdpEndpoint::ALL.len()],
    pub(super) idp_latency: [Histogram; IdpEndpoint::ALL.len()],
    pub(super) jwks_refreshes: [AtomicU64; JwksRefresh::ALL.len()],
    pub(super) token_requests: [AtomicU64; TokenSource::ALL.len()],
}

impl ControlMetrics {
    /// One IdP call to `endpoint` that ended with `outcome` after `elapsed`.
    pub fn idp_call(&self, endpoint: IdpEndpoint, outcome: IdpOutcome, elapsed: Duration) {
        self.idp_calls[endpoint as usize][outcome as usize].fetch_add(1, Relaxed);
        self.idp_latency[endpoint as usize].observe_shared(nanos(elapsed));
    }

    pub fn jwks_refresh(&self, r: JwksRefresh) {
        self.jwks_refreshes[r as usize].fetch_add(1, Relaxed);
    }

    pub fn token_request(&self, s: TokenSource) {
        self.token_requests[s as usize].fetch_add(1, Relaxed);
    }
}
