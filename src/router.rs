//! Routing: which route (and so which service) a request belongs to, and the path it
//! is sent upstream with. (Contract stub: filled in by the router work.)

use crate::config::{Config, ConfigErrors};

/// Header access for routes with `headers` constraints; implemented by the parsed
/// request head. `f` is called for each value of the header named `lower_name`
/// (ASCII lower-case) until it returns true; the result says whether it did.
pub trait RequestHeaders {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

/// What the router needs to know about one request.
pub struct RouteRequest<'a> {
    /// Method as sent, e.g. `b"GET"`.
    pub method: &'a [u8],
    /// The Host header value (or the authority of an absolute-form target) as sent,
    /// possibly with a `:port`; empty if there is none (HTTP/1.0).
    pub host: &'a [u8],
    /// The local port the request arrived on, for hosts with a `:port`.
    pub port: u16,
    /// The request path without the query string, as sent.
    pub path: &'a [u8],
    pub headers: &'a dyn RequestHeaders,
}

/// A matched route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index into `Config::routes`.
    pub route: usize,
    /// Index into `Config::services`, if the route has one.
    pub service: Option<usize>,
    /// How many leading bytes of the path the matching route path covered (the part
    /// `strip_path` removes).
    pub matched_len: usize,
}

pub struct Router {}

impl Router {
    pub fn new(_config: &Config) -> Result<Router, ConfigErrors> {
        Ok(Router {})
    }

    pub fn find(&self, _req: &RouteRequest<'_>) -> Option<RouteMatch> {
        None
    }

    /// Appends to `out` the path the upstream receives (no query string) for a request
    /// with `path` matched as `m`, following the route's `strip_path` and
    /// `path_handling` and the service's `path`.
    pub fn upstream_path(&self, _m: &RouteMatch, path: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(path);
    }
}
