//! Routing: which route (and so which service) a request belongs to, and the path it
//! is sent upstream with.
//!
//! Place in the request path: once per proxied request, right after the request head
//! is parsed and before any plugin runs. [`Router::new`] compiles a [`Config`] once
//! (regexes, host patterns, the priority order); [`Router::find`] then only reads.
//!
//! # Matching (Kong's `traditional_compatible` router)
//!
//! A route matches when every constraint it sets matches: any of its `methods`
//! (exact, case-sensitive as RFC 9110 §9.1 says), any of its `hosts`, any of its
//! `paths`, and for every header name in `headers` any of the request's values of that
//! header against any listed value. Routes whose service is disabled never match.
//!
//! - Hosts: exact names compare ASCII case-insensitively; `*.example.com` matches any
//!   host ending in `.example.com` with at least one label before it (so one *or more*
//!   labels: Kong's compat router turns it into a suffix match, its traditional router
//!   into `.+`); `example.*` matches any host starting with `example.`. A `:port` on
//!   the route host must equal the Host header's port, or, when the Host header has
//!   none, [`RouteRequest::port`]. `[v6]:port` literals are understood on both sides.
//! - Headers: plain values compare ASCII case-insensitively; a `~*` value is a
//!   case-insensitive regex searched anywhere in the value (unanchored, as Kong's `~`
//!   operator). Unlike Kong, the pattern itself is not lower-cased first, so `\D`
//!   keeps meaning "not a digit".
//! - Paths: a plain path is a byte prefix of the request path (`/route` matches
//!   `/routereq`); a `~` path is a regex anchored at the start of the path. The match
//!   covers [`RouteMatch::matched_len`] bytes, which `strip_path` removes. Kong
//!   prepends `^` to the pattern as written, so in Kong `~/a|/b` would match `/b`
//!   anywhere; ringgate anchors the whole pattern (`^(?:…)`).
//!
//! # Path normalisation
//!
//! Paths are matched in normalised form, as in Kong 3.x: unreserved `%XX` escapes
//! decoded, reserved ones kept (with upper-case hex), dot segments removed, `//`
//! merged (details in `path.rs`). [`Router::upstream_path`] builds the upstream path
//! from the same normalised form, so the matched route always sees what the upstream
//! gets: `/public/../admin` matches a `/admin` route (not `/public`), and is forwarded
//! as `/admin`. Prefix paths in the configuration are normalised the same way when the
//! router is built. Paths not starting with `/` match nothing.
//!
//! # Precedence
//!
//! As in Kong's `traditional_compatible` flavour (docs: "Routing in Kong Gateway" →
//! traditional_compat priorities; code: `get_priority` in `kong/router/transform.lua`
//! and the path split in `kong/router/compat.lua`), a route is first split into one
//! *candidate* per group of paths: one for all its regex paths, one per distinct
//! length of its prefix paths (a route without paths is one candidate). Candidates are
//! tried in this order, most significant rule first; the first that matches wins:
//!
//! 1. more kinds of constraint set first, counting one each for `methods`, `hosts`,
//!    `headers` and `paths` (Kong's code counts `paths`; its prose lists only methods,
//!    hosts, headers and snis: the code is what runs);
//! 2. routes whose hosts are all plain (no wildcard) before the rest;
//! 3. more header names first;
//! 4. regex-path candidates before prefix-path ones (and before path-less ones);
//! 5. among regex candidates, higher `regex_priority` first (it is ignored for
//!    prefix paths, as in Kong: a `regex_priority` on a prefix route changes nothing);
//! 6. longer prefix first;
//! 7. then configuration order (the index in [`Config::routes`]). Kong leaves equal
//!    priorities undefined; its old traditional router used creation order, which in a
//!    decK file is file order, so this is the predictable choice.
//!
//! Inside one candidate, regexes are tried in the order written, and the first that
//! matches gives `matched_len`.
//!
//! # Cost and invariants
//!
//! `find` makes no heap allocation and takes no lock of its own. From 16 candidates on,
//! it does not try every one: an index (`index.rs`) files plain-host candidates under their host names
//! and host-less prefix candidates in a trie of their prefixes, so a request tries one
//! host's candidates, those whose prefix its path starts with, and the few that fit
//! neither (wildcard hosts, regex paths): O(host + path + candidates tried) rather than
//! O(routes). Each candidate is checked cheapest first: method, host, path prefix,
//! then regex and headers. Paths that need normalising are rewritten into an 8 KiB
//! stack buffer; such a path longer than that matches nothing.
//!
//! Regexes come from the `regex` crate, whose per-regex scratch space is kept in a
//! pool: the first thread to use a regex owns its scratch and reaches it without
//! synchronisation; other threads go through a mutex inside the crate. So each worker
//! routes with its own clone of the `Router` (made when it first sees a snapshot): a
//! clone shares the tables and the index and copies only the regexes, each with a
//! fresh pool that the worker then owns. The lazy DFA behind a regex may also grow its
//! cache the first times it sees new input shapes.
//!
//! # Errors
//!
//! [`Router::new`] reports every problem at once, each with the route's [`Mark`]:
//! invalid regexes in `paths` or header values, unparsable hosts, and routes that set
//! none of `methods`, `hosts`, `headers`, `paths` (Kong refuses those too). The router
//! does not know the file name, so each [`ConfigError::file`] is left empty for the
//! caller, who loaded the file, to fill in.
//!
//! [`Mark`]: crate::config::Mark

mod host;
mod index;
mod join;
pub(crate) mod path;

use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

use crate::config::{Config, ConfigError, ConfigErrors, PathHandling, Route, RoutePath};
use host::HostPattern;
use index::Index;
use join::JoinRule;
use path::NORMALISE_BUF;

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
    /// `strip_path` removes). Counted on the *normalised* path (see the module doc),
    /// which equals the path as sent unless it had escapes, dot segments or `//`;
    /// 0 for a route without paths.
    pub matched_len: usize,
}

/// The compiled routing table. See the module documentation for the rules.
///
/// A clone shares the tables and copies only the regexes, so that each clone keeps its
/// own regex scratch space: every worker routes with its own clone and never meets
/// another's lock inside the regex crate.
#[derive(Debug, Clone)]
pub struct Router {
    tables: Arc<Tables>,
    /// Every path and header regex, referred to by index from the candidates.
    regexes: Box<[Regex]>,
}

#[derive(Debug)]
struct Tables {
    /// In precedence order.
    candidates: Vec<Candidate>,
    /// Which candidates a request can match (see `index.rs`); `None` for a table small
    /// enough that trying every candidate is cheaper.
    index: Option<Index>,
    /// Indexed like `Config::routes`: what `upstream_path` needs.
    joins: Vec<RouteJoin>,
}

/// Per route: what is needed once it matched: how its upstream path is built, and its
/// regex paths (for `hash_on: uri_capture`).
#[derive(Debug, Clone)]
struct RouteJoin {
    strip_path: bool,
    handling: PathHandling,
    has_paths: bool,
    /// The service path; empty for `/` or no service.
    base: Box<[u8]>,
    /// The route's regex paths, as indices into `Router::regexes`, in the order written.
    regex_paths: Box<[u32]>,
}

/// Kong's priority, most significant field first (derived `Ord` compares in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Priority {
    weight: u8,
    plain_hosts_only: bool,
    header_count: u8,
    regex: bool,
    regex_priority: i64,
    prefix_len: usize,
}

#[derive(Debug)]
struct Candidate {
    priority: Priority,
    route: usize,
    service: Option<usize>,
    methods: Box<[Box<[u8]>]>,
    hosts: Box<[HostPattern]>,
    paths: PathRule,
    headers: Box<[HeaderRule]>,
}

#[derive(Debug)]
enum PathRule {
    Any,
    Prefixes(Box<[Box<[u8]>]>),
    /// Indices into `Router::regexes`, in the order written.
    Regexes(Box<[u32]>),
}

#[derive(Debug, Clone)]
struct HeaderRule {
    lower_name: Box<str>,
    values: Box<[HeaderValue]>,
}

#[derive(Debug, Clone)]
enum HeaderValue {
    Exact(Box<[u8]>),
    /// An index into `Router::regexes`.
    Regex(u32),
}

/// From this many candidates on, `find` looks them up in an index instead of trying
/// each: below it a scan is cheaper (`cargo bench --bench router`: with one route the
/// index's lookups cost more than the one candidate's checks).
const INDEX_FROM: usize = 16;

/// Kong caps the header count used for sorting at 255.
const MAX_HEADER_COUNT: usize = 255;

fn route_label(route: &Route, index: usize) -> String {
    match (&route.name, &route.id) {
        (Some(name), _) => format!("route `{name}`"),
        (None, Some(id)) => format!("route `{id}`"),
        (None, None) => format!("route #{}", index + 1),
    }
}

fn normalise_owned(p: &str) -> Vec<u8> {
    let mut buf = vec![0; p.len()];
    let n = path::normalise_into(p.as_bytes(), &mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

impl Router {
    /// Compiles `config`. Every problem is reported, each with the route's mark and an
    /// empty `file` for the caller to fill in.
    pub fn new(config: &Config) -> Result<Router, ConfigErrors> {
        Router::build(config, INDEX_FROM)
    }

    /// [`Router::new`], with the index built from `index_from` candidates on.
    fn build(config: &Config, index_from: usize) -> Result<Router, ConfigErrors> {
        let mut errors = Vec::new();
        let mut candidates = Vec::new();
        let mut joins = Vec::with_capacity(config.routes.len());
        let mut all_regexes: Vec<Regex> = Vec::new();
        let mut add_regex = |re: Regex| {
            all_regexes.push(re);
            u32::try_from(all_regexes.len() - 1).expect("fewer than 2^32 regexes")
        };

        for (index, route) in config.routes.iter().enumerate() {
            let service = route.service.and_then(|s| config.services.get(s));
            joins.push(RouteJoin {
                strip_path: route.strip_path,
                handling: route.path_handling,
                has_paths: !route.paths.is_empty(),
                base: service.and_then(|s| s.path.as_deref()).unwrap_or("").as_bytes().into(),
                regex_paths: Box::default(),
            });
            let mut fail = |message: String| {
                errors.push(ConfigError::at("", route.mark, format!("{}: {message}", route_label(route, index))))
            };

            if route.methods.is_empty() && route.hosts.is_empty() && route.headers.is_empty() && route.paths.is_empty()
            {
                fail("must set at least one of `methods`, `hosts`, `headers`, `paths`".into());
                continue;
            }

            let mut hosts = Vec::with_capacity(route.hosts.len());
            for h in &route.hosts {
                match HostPattern::parse(h) {
                    Ok(p) => hosts.push(p),
                    Err(e) => fail(e),
                }
            }

            let mut headers = Vec::with_capacity(route.headers.len());
            for (name, values) in &route.headers {
                let mut compiled = Vec::with_capacity(values.len());
                for v in values {
                    if let Some(pattern) = v.strip_prefix("~*") {
                        match RegexBuilder::new(pattern).case_insensitive(true).build() {
                            Ok(re) => compiled.push(HeaderValue::Regex(add_regex(re))),
                            Err(e) => fail(format!("invalid regex in header `{name}` value `{v}`: {e}")),
                        }
                    } else {
                        compiled.push(HeaderValue::Exact(v.as_bytes().into()));
                    }
                }
                headers.push(HeaderRule { lower_name: name.to_ascii_lowercase().into(), values: compiled.into() });
            }

            let mut regexes = Vec::new();
            // Prefix groups by length, in order of first appearance.
            let mut prefix_groups: Vec<(usize, Vec<Box<[u8]>>)> = Vec::new();
            for p in &route.paths {
                match p {
                    RoutePath::Regex(pattern) => match RegexBuilder::new(&format!("^(?:{pattern})")).build() {
                        Ok(re) => regexes.push(add_regex(re)),
                        Err(e) => fail(format!("invalid regex in path `~{pattern}`: {e}")),
                    },
                    RoutePath::Prefix(prefix) => {
                        let norm = normalise_owned(prefix);
                        match prefix_groups.iter_mut().find(|(len, _)| *len == norm.len()) {
                            Some((_, group)) => group.push(norm.into()),
                            None => prefix_groups.push((norm.len(), vec![norm.into()])),
                        }
                    }
                }
            }

            joins[index].regex_paths = regexes.clone().into();

            // A disabled service's routes are checked (errors still count) but never match.
            if service.is_some_and(|s| !s.enabled) {
                continue;
            }

            let base = Priority {
                weight: [
                    !route.methods.is_empty(),
                    !route.hosts.is_empty(),
                    !route.headers.is_empty(),
                    !route.paths.is_empty(),
                ]
                .iter()
                .map(|&set| u8::from(set))
                .sum(),
                plain_hosts_only: !hosts.is_empty() && hosts.iter().all(|h| !h.is_wildcard()),
                header_count: u8::try_from(route.headers.len().min(MAX_HEADER_COUNT)).unwrap_or(u8::MAX),
                regex: false,
                regex_priority: 0,
                prefix_len: 0,
            };
            let make = |priority: Priority, paths: PathRule| Candidate {
                priority,
                route: index,
                service: route.service,
                methods: route.methods.iter().map(|m| m.as_bytes().into()).collect(),
                hosts: hosts.clone().into(),
                paths,
                headers: headers.clone().into(),
            };
            if route.paths.is_empty() {
                candidates.push(make(base, PathRule::Any));
            }
            if !regexes.is_empty() {
                let priority = Priority { regex: true, regex_priority: route.regex_priority, ..base };
                candidates.push(make(priority, PathRule::Regexes(regexes.into())));
            }
            for (len, group) in prefix_groups {
                candidates.push(make(Priority { prefix_len: len, ..base }, PathRule::Prefixes(group.into())));
            }
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        // Stable sort: equal priorities keep configuration order.
        candidates.sort_by_key(|c| std::cmp::Reverse(c.priority));
        let index = (candidates.len() >= index_from).then(|| Index::new(&candidates));
        Ok(Router { tables: Arc::new(Tables { candidates, index, joins }), regexes: all_regexes.into() })
    }

    /// The highest-precedence route matching `req`, if any. No allocation, no lock.
    pub fn find(&self, req: &RouteRequest<'_>) -> Option<RouteMatch> {
        if path::is_normal(req.path) {
            return self.find_normalised(req, req.path);
        }
        if !req.path.starts_with(b"/") {
            return None;
        }
        self.find_after_normalising(req)
    }

    /// Kept out of line so the common case does not carry the 8 KiB frame.
    #[inline(never)]
    fn find_after_normalising(&self, req: &RouteRequest<'_>) -> Option<RouteMatch> {
        let mut buf = [0u8; NORMALISE_BUF];
        let n = path::normalise_into(req.path, &mut buf)?;
        self.find_normalised(req, &buf[..n])
    }

    fn find_normalised(&self, req: &RouteRequest<'_>, path: &[u8]) -> Option<RouteMatch> {
        let host = host::split(req.host);
        let port = host.port.unwrap_or(req.port);
        let t = &*self.tables;
        let Some(index) = &t.index else { return self.scan(req, host.name, port, path) };
        // The lowest candidate index that matches, with its `matched_len`. Each list is
        // in precedence order and left at its first match, or as soon as it reaches the
        // best found so far (see `index.rs`).
        let mut best: Option<(u32, usize)> = None;
        let mut try_list = |list: &[u32]| {
            for &i in list {
                if best.is_some_and(|(b, _)| i >= b) {
                    return;
                }
                if let Some(len) = self.matches(&t.candidates[i as usize], req, host.name, port, path) {
                    best = Some((i, len));
                    return;
                }
            }
        };
        try_list(index.by_host(host.name));
        index.with_prefixes_of(path, &mut try_list);
        try_list(index.rest());
        best.map(|(i, matched_len)| {
            let c = &t.candidates[i as usize];
            RouteMatch { route: c.route, service: c.service, matched_len }
        })
    }

    /// The first candidate in precedence order that matches: what a table without an
    /// index does, and the definition the index must agree with.
    fn scan(&self, req: &RouteRequest<'_>, host: &[u8], port: u16, path: &[u8]) -> Option<RouteMatch> {
        self.tables.candidates.iter().find_map(|c| {
            let matched_len = self.matches(c, req, host, port, path)?;
            Some(RouteMatch { route: c.route, service: c.service, matched_len })
        })
    }

    /// [`Router::find`] by [`Router::scan`] alone.
    #[cfg(test)]
    fn find_by_scan(&self, req: &RouteRequest<'_>) -> Option<RouteMatch> {
        if !req.path.starts_with(b"/") {
            return None;
        }
        let mut buf = [0u8; NORMALISE_BUF];
        let n = path::normalise_into(req.path, &mut buf)?;
        let host = host::split(req.host);
        self.scan(req, host.name, host.port.unwrap_or(req.port), &buf[..n])
    }

    /// Whether candidate `c` matches, and if so how many path bytes its path covered.
    /// Cheapest checks first: method, host, path prefix, then regex and headers.
    #[inline]
    fn matches(&self, c: &Candidate, req: &RouteRequest<'_>, host: &[u8], port: u16, path: &[u8]) -> Option<usize> {
        if !c.methods.is_empty() && !c.methods.iter().any(|m| **m == *req.method) {
            return None;
        }
        if !c.hosts.is_empty() && !c.hosts.iter().any(|h| h.matches(host, port)) {
            return None;
        }
        let matched_len = match &c.paths {
            PathRule::Any => 0,
            PathRule::Prefixes(prefixes) => prefixes.iter().find(|p| path.starts_with(p))?.len(),
            PathRule::Regexes(regexes) => regexes.iter().find_map(|&re| self.regexes[re as usize].find(path))?.end(),
        };
        let header_matches = |hv: &HeaderValue, v: &[u8]| match hv {
            HeaderValue::Exact(want) => v.eq_ignore_ascii_case(want),
            HeaderValue::Regex(re) => self.regexes[*re as usize].is_match(v),
        };
        let headers_ok = c.headers.iter().all(|rule| {
            req.headers.any_value(&rule.lower_name, &mut |v| rule.values.iter().any(|hv| header_matches(hv, v)))
        });
        headers_ok.then_some(matched_len)
    }

    /// Capture group `name` (a group's name, or its number) of the first of route
    /// `route`'s regex paths that matches `path` (the raw path given to
    /// [`Router::find`], normalised the same way); `None` when no regex path of the
    /// route matches or the group took no part. For `hash_on: uri_capture`.
    pub fn uri_capture(&self, route: usize, path: &[u8], name: &str) -> Option<Vec<u8>> {
        path::with_normalised(path, |path| self.capture_in(route, path, name))
    }

    /// [`Router::uri_capture`] on a normalised path.
    fn capture_in(&self, route: usize, path: &[u8], name: &str) -> Option<Vec<u8>> {
        self.tables.joins.get(route)?.regex_paths.iter().find_map(|&re| {
            let caps = self.regexes[re as usize].captures(path)?;
            let group = match name.parse::<usize>() {
                Ok(n) => caps.get(n),
                Err(_) => caps.name(name),
            };
            Some(group?.as_bytes().to_vec())
        })
    }

    /// Appends to `out` the path the upstream receives (no query string) for a request
    /// with `path` matched as `m`, following the route's `strip_path` and
    /// `path_handling` and the service's `path`.
    ///
    /// `path` must be the same raw path given to [`Router::find`]; it is normalised the
    /// same way, so the upstream gets exactly what was matched. Bytes that
    /// normalisation decoded and that may not appear in a path as-is are sent
    /// percent-encoded. Appends only; `out` may be a reused buffer.
    pub fn upstream_path(&self, m: &RouteMatch, path: &[u8], out: &mut Vec<u8>) {
        // An index `find` did not produce gets the safe default: the normalised path.
        let (strip_path, handling, has_paths, base): (bool, PathHandling, bool, &[u8]) =
            match self.tables.joins.get(m.route) {
                Some(j) => (j.strip_path, j.handling, j.has_paths, &j.base),
                None => (false, PathHandling::V0, false, b""),
            };
        let rule = JoinRule { base, strip_path, handling };
        let matched = has_paths.then_some(m.matched_len);
        path::with_normalised(path, |path| join::join(&rule, path, matched, out));
    }
}

#[cfg(test)]
mod tests;
