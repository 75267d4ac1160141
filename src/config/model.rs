//! The typed configuration model: what a decK file means once it has been expanded,
//! parsed and validated.
//!
//! Everything here is plain data with Kong's defaults already filled in, so the router,
//! the data plane and (later) the Admin API never look at YAML. Nested decK entities are
//! flattened: routes point at their service and plugins at their scope by index into the
//! owning [`Config`]'s vectors, and those indices are valid by construction (the loader
//! rejects dangling references before a `Config` exists).
//!
//! Positions ([`Mark`]) are kept for the entities so that later checks (regex
//! compilation in the router, plugin schemas in the openid-connect plugin) can still
//! point at the line a problem came from.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// A position in the configuration file, 1-based, as an editor shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mark {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem found while loading a configuration. Loading reports all of them at
/// once, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in, as the user named it.
    pub file: String,
    /// Where in that file; `None` for problems with the file as a whole (unreadable).
    pub mark: Option<Mark>,
    pub message: String,
    /// The key a problem is about when `mark` cannot point at it: a required key that
    /// is missing, reported at its parent map. The Admin API uses it to nest the
    /// message under the key, as Kong's `fields` do; it is not printed.
    pub field: Option<&'static str>,
}

impl ConfigError {
    /// A problem at `mark` in `file`.
    pub fn at(file: &str, mark: Mark, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.to_string(), mark: Some(mark), message: message.into(), field: None }
    }

    /// A required key `field` missing from the map at `mark`.
    pub fn missing(file: &str, mark: Mark, field: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError { field: Some(field), ..ConfigError::at(file, mark, message) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mark {
            Some(m) => write!(f, "{}:{}:{}: {}", self.file, m.line, m.column, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// All the problems of one load, reported together (linkerd style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A whole, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub services: Vec<Service>,
    /// Every route, whether nested under a service or declared at the top level.
    pub routes: Vec<Route>,
    /// Every plugin instance, wherever it was declared.
    pub plugins: Vec<Plugin>,
    /// Certificates the TLS listeners serve, chosen by SNI (decK `certificates`).
    pub certificates: Vec<Certificate>,
    /// CA certificates services may trust for their upstream (decK `ca_certificates`).
    pub ca_certificates: Vec<CaCertificate>,
    /// Load-balanced virtual hosts (decK `upstreams`): a service whose `host` is an
    /// upstream's name goes to that upstream's targets.
    pub upstreams: Vec<Upstream>,
    /// Every target, whether nested under its upstream or declared at the top level.
    pub targets: Vec<Target>,
    /// Identities the openid-connect plugin maps tokens to (`consumer_claim`) or falls
    /// back to (`anonymous`) (decK `consumers`).
    pub consumers: Vec<Consumer>,
    /// Things in the file that were accepted but have no effect in ringgate (Kong keys
    /// that cannot change how a request flows), in file order. The caller logs them.
    pub warnings: Vec<ConfigError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 80,
            Protocol::Https => 443,
        }
    }
}

/// A Kong service: where matched requests go.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `http` (default) or `https`. Kong's other protocols (grpc, tcp, ...) are load
    /// errors until ringgate speaks them.
    pub protocol: Protocol,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Defaults to 80, or 443 for https.
    pub port: u16,
    /// Upstream base path, starting with `/`, if any.
    pub path: Option<String>,
    /// Default 60000 ms each.
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// Default 5.
    pub retries: u32,
    /// Default true. A disabled service's routes do not match.
    pub enabled: bool,
    /// `https` services: verify the upstream's certificate (default true here; Kong
    /// leaves it off unless set).
    pub tls_verify: bool,
    /// `https` services: ids of `ca_certificates` trusted beside the system roots, with
    /// where each was written.
    pub ca_certificates: Vec<(String, Mark)>,
    /// `https` services: the id of the `certificates` entry presented to the upstream.
    pub client_certificate: Option<(String, Mark)>,
    /// Index into [`Config::upstreams`] when `host` names an upstream: requests are
    /// then balanced over its targets and `port` is not used.
    pub upstream: Option<usize>,
    pub tags: Vec<String>,
    pub mark: Mark,
}

impl Service {
    /// A service pointing at `host:port` over http, with Kong's defaults for everything
    /// else: the one place those defaults are written down.
    pub fn new(host: impl Into<String>, port: u16, mark: Mark) -> Service {
        Service {
            id: None,
            name: None,
            protocol: Protocol::Http,
            host: host.into(),
            port,
            path: None,
            connect_timeout: Duration::from_millis(60_000),
            read_timeout: Duration::from_millis(60_000),
            write_timeout: Duration::from_millis(60_000),
            retries: 5,
            enabled: true,
            tls_verify: true,
            ca_certificates: Vec::new(),
            client_certificate: None,
            upstream: None,
            tags: Vec::new(),
            mark,
        }
    }
}

/// A Kong upstream: a virtual host name, balanced over its targets by weighted
/// round-robin (Kong's default) or least connections; Kong's other algorithms are load
/// errors.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub id: Option<String>,
    /// What services write as their `host` to use this upstream.
    pub name: String,
    pub algorithm: Algorithm,
    /// Consistent hashing: what is hashed, and what when that is absent.
    pub hash_on: HashOn,
    pub hash_fallback: HashOn,
    /// The cookie [`HashOn::Cookie`] hashes (`hash_on_cookie`), and the `Path` of the one
    /// set when a request comes without it (`hash_on_cookie_path`, default `/`).
    pub hash_on_cookie: Option<String>,
    pub hash_on_cookie_path: String,
    /// `algorithm: sticky-sessions`: the cookie naming a caller's address, and the
    /// `Path` it is set with (default `/`).
    pub sticky_sessions_cookie: Option<String>,
    pub sticky_sessions_cookie_path: String,
    /// The certificate (by id) presented to targets that ask for one: by `https`
    /// services without a `client_certificate` of their own, and by `https` probes.
    pub client_certificate: Option<(String, Mark)>,
    /// 10–65536, default 10000: the longest round-robin schedule built for it.
    pub slots: u32,
    /// The `Host` sent upstream (with the target's port when not the default) instead
    /// of the target's host name, unless the route preserves the downstream's.
    pub host_header: Option<String>,
    /// Its targets: a range of [`Config::targets`], which the loader keeps grouped by
    /// upstream (in configuration order within each).
    pub targets: std::ops::Range<usize>,
    pub healthchecks: HealthChecks,
    pub tags: Vec<String>,
    pub mark: Mark,
}

/// How an upstream spreads requests over its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Each address in turn, as often as its weight.
    #[default]
    RoundRobin,
    /// The address with the fewest requests in flight for its weight.
    LeastConnections,
    /// The address a hash of part of the request falls on (`hash_on`), so the same
    /// caller keeps going to the same target.
    ConsistentHashing,
    /// The address a cookie names (`sticky_sessions_cookie`), set on the first
    /// response; a caller without one, or whose address is gone or down, gets the
    /// round-robin turn and a new cookie.
    StickySessions,
    /// The address with the lowest recent response time (a peak EWMA) for its load.
    Latency,
}

/// What a consistent-hashing upstream hashes (`hash_on`, `hash_fallback`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HashOn {
    #[default]
    None,
    /// The downstream's address.
    Ip,
    /// Every value of this (lower-case) request header, in order.
    Header(String),
    /// This query argument's value, as sent.
    QueryArg(String),
    /// The request path, as sent.
    Path,
    /// A capture group (by name, or by number) of the regex path the route matched.
    UriCapture(String),
    /// The value of the upstream's `hash_on_cookie`. A request without it gets a new
    /// random value, hashed the same way and set in the response, so that the caller's
    /// next requests go to the same target (Kong's behaviour).
    Cookie,
    /// The consumer the openid-connect plugin identified (mapped, or `anonymous`), else
    /// the token's credential (`credential_claim`, default `sub`), as Kong hashes
    /// "consumer, fallback to credential".
    Consumer,
}

impl Algorithm {
    /// Kong's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round-robin",
            Algorithm::LeastConnections => "least-connections",
            Algorithm::ConsistentHashing => "consistent-hashing",
            Algorithm::StickySessions => "sticky-sessions",
            Algorithm::Latency => "latency",
        }
    }
}

/// An upstream's `healthchecks`, with Kong's defaults: every check off.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthChecks {
    pub active: ActiveChecks,
    pub passive: PassiveChecks,
    /// 0–100: below this share of healthy target weight, the whole upstream counts as
    /// down (503). Default 0.
    pub threshold: f64,
}

/// What an active probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeKind {
    /// A `GET` of `http_path`; its status counts.
    #[default]
    Http,
    /// The same over TLS.
    Https,
    /// A connect, no request.
    Tcp,
}

impl ProbeKind {
    /// Kong's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Https => "https",
            ProbeKind::Tcp => "tcp",
        }
    }
}

/// Probes sent to each target address on a timer.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveChecks {
    /// `type`: what a probe is. Default `http`.
    pub kind: ProbeKind,
    /// Default 1 s.
    pub timeout: Duration,
    /// Probes in flight at once per upstream; default 10.
    pub concurrency: u32,
    /// Default `/`.
    pub http_path: String,
    /// Extra request headers of a probe.
    pub headers: Vec<(String, Vec<String>)>,
    /// `type: https`: the TLS server name (default: the target's host) and whether the
    /// certificate is checked (default true).
    pub https_sni: Option<String>,
    pub https_verify_certificate: bool,
    /// `interval`: how often healthy addresses are probed (0: not probed).
    pub healthy: HealthyRule,
    /// `interval`: how often unhealthy addresses are probed (0: not probed).
    pub unhealthy: UnhealthyRule,
}

/// What proxied traffic tells about a target (Kong's circuit breaker).
#[derive(Debug, Clone, PartialEq)]
pub struct PassiveChecks {
    pub healthy: HealthyRule,
    pub unhealthy: UnhealthyRule,
}

/// When an address counts as healthy again.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthyRule {
    /// Active checks only.
    pub interval: Duration,
    pub http_statuses: Vec<u16>,
    /// Successes in a row that make an unhealthy address healthy; 0: never.
    pub successes: u32,
}

/// When an address counts as unhealthy.
#[derive(Debug, Clone, PartialEq)]
pub struct UnhealthyRule {
    /// Active checks only.
    pub interval: Duration,
    pub http_statuses: Vec<u16>,
    /// Failures of each kind in a row (no success between) that make a healthy
    /// address unhealthy; 0: that kind never does.
    pub tcp_failures: u32,
    pub timeouts: u32,
    pub http_failures: u32,
}

impl Default for HealthChecks {
    fn default() -> HealthChecks {
        let healthy = |interval, http_statuses: &[u16]| HealthyRule {
            interval: Duration::from_secs(interval),
            http_statuses: http_statuses.to_vec(),
            successes: 0,
        };
        let unhealthy = |http_statuses: &[u16]| UnhealthyRule {
            interval: Duration::ZERO,
            http_statuses: http_statuses.to_vec(),
            tcp_failures: 0,
            timeouts: 0,
            http_failures: 0,
        };
        HealthChecks {
            active: ActiveChecks {
                kind: ProbeKind::Http,
                timeout: Duration::from_secs(1),
                concurrency: 10,
                http_path: "/".into(),
                headers: Vec::new(),
                https_sni: None,
                https_verify_certificate: true,
                healthy: healthy(0, &[200, 302]),
                unhealthy: unhealthy(&[429, 404, 500, 501, 502, 503, 504, 505]),
            },
            passive: PassiveChecks {
                healthy: healthy(
                    0,
                    &[200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308],
                ),
                unhealthy: unhealthy(&[429, 500, 503]),
            },
            threshold: 0.0,
        }
    }
}

impl HealthChecks {
    /// Whether any check can change a target's health.
    pub fn enabled(&self) -> bool {
        self.active.enabled() || self.passive.enabled()
    }
}

impl ActiveChecks {
    /// Probes run when either interval is set.
    pub fn enabled(&self) -> bool {
        !self.healthy.interval.is_zero() || !self.unhealthy.interval.is_zero()
    }
}

impl PassiveChecks {
    /// Traffic can mark a target down when any failure count is set.
    pub fn enabled(&self) -> bool {
        let u = &self.unhealthy;
        u.tcp_failures > 0 || u.timeouts > 0 || u.http_failures > 0
    }
}

/// Kong's default `slots`.
pub const DEFAULT_SLOTS: u32 = 10_000;

/// The port of a target written without one, as in Kong.
pub const DEFAULT_TARGET_PORT: u16 = 8000;

/// One instance behind an upstream.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: Option<String>,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Default 8000, as Kong's.
    pub port: u16,
    /// 0–65535, default 100; 0 keeps the target out of rotation.
    pub weight: u32,
    pub tags: Vec<String>,
    pub mark: Mark,
}

impl Upstream {
    /// The name a target of this upstream is reached by: the `Host` header's name and,
    /// for `https` services, the TLS server name (Kong derives both from the host
    /// header it sends).
    pub fn name_for<'a>(&'a self, target: &'a Target) -> &'a str {
        self.host_header.as_deref().unwrap_or(&target.host)
    }
}

impl Target {
    /// `host:port`, as Kong writes a target (IPv6 in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A served certificate: a PEM chain and its key, for the names in `snis`.
#[derive(Clone)]
pub struct Certificate {
    pub id: Option<String>,
    pub cert: String,
    /// PEM private key; never printed.
    pub key: String,
    /// Server names (a leading `*.` is a wildcard), lower-cased.
    pub snis: Vec<(String, Mark)>,
    pub tags: Vec<String>,
    pub mark: Mark,
    /// Where `cert` and `key` were written (the entry's `mark` when absent), so a bad
    /// PEM is reported at its field.
    pub cert_mark: Mark,
    pub key_mark: Mark,
    /// Kong's alternate pair (`cert_alt`, `key_alt`), of another key type, served to
    /// clients that cannot take the first (ECDSA beside RSA, say); empty when absent.
    pub cert_alt: String,
    /// PEM private key; never printed.
    pub key_alt: String,
    pub cert_alt_mark: Mark,
    pub key_alt_mark: Mark,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("id", &self.id)
            .field("snis", &self.snis)
            .field("key", &"<redacted>")
            .field("alt", &!self.cert_alt.is_empty())
            .finish_non_exhaustive()
    }
}

/// A CA certificate services can trust.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    pub id: Option<String>,
    pub cert: String,
    pub tags: Vec<String>,
    pub mark: Mark,
    /// Where `cert` was written (the entry's `mark` when absent).
    pub cert_mark: Mark,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathHandling {
    V0,
    V1,
}

/// One entry of a route's `paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePath {
    /// A plain prefix, e.g. `/orders`.
    Prefix(String),
    /// A regex path as written after the leading `~`, e.g. `^/orders/\d+$` from
    /// `~/orders/\d+$`. Matched anchored at the start of the path, as Kong does.
    Regex(String),
}

/// A Kong route: which requests match, and how they are passed on.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: Option<String>,
    pub name: Option<String>,
    /// Index into [`Config::services`]. Kong allows routes without a service; they
    /// match and answer 503, so this stays optional.
    pub service: Option<usize>,
    /// Default `[http, https]`.
    pub protocols: Vec<Protocol>,
    /// Upper-case method names; empty means any.
    pub methods: Vec<String>,
    /// Lower-cased host names; a leading `*.` or trailing `.*` is a wildcard. Empty
    /// means any. A `:port` suffix, if given, must match the request's port.
    pub hosts: Vec<String>,
    pub paths: Vec<RoutePath>,
    /// Header name (lower-cased) → accepted values (any of them matches,
    /// case-insensitively; a value starting with `~*` is a regex).
    pub headers: Vec<(String, Vec<String>)>,
    /// Default true.
    pub strip_path: bool,
    /// Default false.
    pub preserve_host: bool,
    /// Default 0.
    pub regex_priority: i64,
    /// Default v0.
    pub path_handling: PathHandling,
    /// Default 426.
    pub https_redirect_status_code: u16,
    pub tags: Vec<String>,
    pub mark: Mark,
}

impl Route {
    /// A route of `service` with Kong's defaults and nothing to match on yet.
    pub fn new(service: Option<usize>, mark: Mark) -> Route {
        Route {
            id: None,
            name: None,
            service,
            protocols: vec![Protocol::Http, Protocol::Https],
            methods: Vec::new(),
            hosts: Vec::new(),
            paths: Vec::new(),
            headers: Vec::new(),
            strip_path: true,
            preserve_host: false,
            regex_priority: 0,
            path_handling: PathHandling::V0,
            https_redirect_status_code: 426,
            tags: Vec::new(),
            mark,
        }
    }
}

/// Where a plugin instance applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginScope {
    Global,
    /// Index into [`Config::services`].
    Service(usize),
    /// Index into [`Config::routes`].
    Route(usize),
}

/// A plugin instance. The plugin's own `config` is kept as a positioned tree; the
/// plugin module that owns the name validates it.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub id: Option<String>,
    /// A name from [`KNOWN_PLUGINS`].
    pub name: String,
    /// Kong's optional `instance_name`, unique among plugins; kept for the Admin API.
    pub instance_name: Option<String>,
    pub scope: PluginScope,
    /// Default true. Disabled instances are kept (the Admin API shows them) but never
    /// apply.
    pub enabled: bool,
    /// Default `[grpc, grpcs, http, https]`, as Kong's.
    pub protocols: Vec<String>,
    pub tags: Vec<String>,
    pub config: super::Node,
    pub mark: Mark,
    /// The file the plugin was read from when it is not the decK file (a manifest), so
    /// its config errors name the right file.
    pub source: Option<String>,
}

/// A Kong consumer. Only its identity is kept: the headers it puts on a request
/// (`X-Consumer-ID`, `-Custom-ID`, `-Username`) and what a token's claim is matched on.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// As written, or when absent derived from the username (else the custom id), so
    /// a consumer keeps its `X-Consumer-ID` across restarts and on every node: see
    /// [`consumer_id_for`].
    pub id: String,
    /// Whether `id` was written in the file (the Admin API shows either the same way).
    pub id_given: bool,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    pub tags: Vec<String>,
    pub mark: Mark,
}

/// The id a consumer without one gets: a name-based (version 5) UUID of its username,
/// or of its custom id when it has no username, in a namespace of ringgate's own. Stable
/// for the same name everywhere; not the id Kong would generate, so a fleet moving from
/// Kong keeps its ids by writing them in the file (`deck dump` does).
pub fn consumer_id_for(username: Option<&str>, custom_id: Option<&str>) -> String {
    // A fixed namespace UUID for consumer ids (random, chosen once for ringgate).
    const NAMESPACE: [u8; 16] =
        [0x6b, 0x1f, 0x3c, 0x52, 0x9e, 0x04, 0x4d, 0x7a, 0xb8, 0x21, 0x5d, 0xc3, 0x0e, 0x97, 0x44, 0x1a];
    let name = match (username, custom_id) {
        (Some(u), _) => format!("username:{u}"),
        (None, Some(c)) => format!("custom_id:{c}"),
        (None, None) => String::new(),
    };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&NAMESPACE);
    ctx.update(name.as_bytes());
    let digest = ctx.finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Plugin names ringgate knows. Any other name is a load error, so a typo never
/// silently turns authentication off.
pub const KNOWN_PLUGINS: &[&str] = &["openid-connect"];

impl Config {
    /// The targets of upstream `u`, in configuration order.
    pub fn targets_of(&self, u: usize) -> &[Target] {
        self.upstreams.get(u).and_then(|up| self.targets.get(up.targets.clone())).unwrap_or(&[])
    }

    /// The names service `s`'s peers are reached by (`Host` and TLS server name): its
    /// host, or for a service on an upstream each distinct [`Upstream::name_for`].
    pub fn peer_names(&self, s: usize) -> Vec<&str> {
        let service = &self.services[s];
        let Some(u) = service.upstream else { return vec![service.host.as_str()] };
        let upstream = &self.upstreams[u];
        let mut names: Vec<&str> = Vec::new();
        for t in self.targets_of(u) {
            let name = upstream.name_for(t);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The plugin instances that apply to a request matched to `route` (and so to its
    /// service), one per plugin name, the most specific instance winning: a
    /// route-scoped instance over a service-scoped one over a global one. Disabled
    /// instances are skipped. Returned as indices into [`Config::plugins`], in
    /// [`KNOWN_PLUGINS`] order.
    pub fn plugins_for(&self, route: Option<usize>, service: Option<usize>) -> Vec<usize> {
        chosen(&self.first_instances(), route, service)
    }

    /// [`Config::plugins_for`] of every route, by index, from one pass over the plugins
    /// (a scan of every plugin per route was quadratic in a file with a plugin per route).
    pub fn plugins_by_route(&self) -> Vec<Vec<usize>> {
        let first = self.first_instances();
        self.routes.iter().enumerate().map(|(i, route)| chosen(&first, Some(i), route.service)).collect()
    }

    /// The first enabled instance of each plugin name on each scope: of instances of
    /// equal rank, the first in the file is the one that applies.
    fn first_instances(&self) -> HashMap<(&str, PluginScope), usize> {
        let mut first = HashMap::new();
        for (i, p) in self.plugins.iter().enumerate().filter(|(_, p)| p.enabled) {
            first.entry((p.name.as_str(), p.scope)).or_insert(i);
        }
        first
    }
}

/// Per plugin name, in [`KNOWN_PLUGINS`] order, the most specific of `first`'s instances
/// for a request on `route` of `service`: route, else service, else global.
fn chosen(first: &HashMap<(&str, PluginScope), usize>, route: Option<usize>, service: Option<usize>) -> Vec<usize> {
    KNOWN_PLUGINS
        .iter()
        .filter_map(|name| {
            let on = |scope| first.get(&(*name, scope)).copied();
            route
                .and_then(|r| on(PluginScope::Route(r)))
                .or_else(|| service.and_then(|s| on(PluginScope::Service(s))))
                .or_else(|| on(PluginScope::Global))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn plugin(name: &str, scope: PluginScope, enabled: bool) -> Plugin {
        Plugin {
            id: None,
            name: name.to_string(),
            instance_name: None,
            scope,
            enabled,
            protocols: Vec::new(),
            tags: Vec::new(),
            config: super::super::Node::null(),
            mark: Mark::default(),
            source: None,
        }
    }

    /// The rule as a scan, kept as the model the index is checked against: per name, the
    /// highest-ranked enabled instance (route 3, service 2, global 1), the first of a rank.
    fn plugins_by_scan(config: &Config, route: Option<usize>, service: Option<usize>) -> Vec<usize> {
        let mut chosen = Vec::new();
        for name in KNOWN_PLUGINS {
            let mut best: Option<(u8, usize)> = None;
            for (i, p) in config.plugins.iter().enumerate() {
                if !p.enabled || p.name != *name {
                    continue;
                }
                let rank = match p.scope {
                    PluginScope::Route(r) if Some(r) == route => 3,
                    PluginScope::Service(s) if Some(s) == service => 2,
                    PluginScope::Global => 1,
                    _ => continue,
                };
                if best.is_none_or(|(b, _)| rank > b) {
                    best = Some((rank, i));
                }
            }
            if let Some((_, i)) = best {
                chosen.push(i);
            }
        }
        chosen
    }

    #[test]
    fn plugins_of_every_route_and_of_no_route_are_the_ones_a_scan_picks() {
        let mut rng = Rng(0x0910_61e5_50f5_c09e);
        for _ in 0..300 {
            let (services, routes) = (1 + rng.below(4), 1 + rng.below(6));
            let mut config = Config::default();
            for _ in 0..routes {
                let service = (!rng.chance(4)).then(|| rng.below(services));
                config.routes.push(Route::new(service, Mark::default()));
            }
            for _ in 0..rng.below(8) {
                let scope = match rng.below(3) {
                    0 => PluginScope::Global,
                    1 => PluginScope::Service(rng.below(services)),
                    _ => PluginScope::Route(rng.below(routes)),
                };
                config.plugins.push(plugin(rng.pick(&["openid-connect", "other"]), scope, !rng.chance(4)));
            }
            let one_by_one: Vec<Vec<usize>> =
                config.routes.iter().enumerate().map(|(i, r)| plugins_by_scan(&config, Some(i), r.service)).collect();
            assert_eq!(config.plugins_by_route(), one_by_one, "{:?}", config.plugins);
            let service = (!rng.chance(3)).then(|| rng.below(services));
            assert_eq!(config.plugins_for(None, service), plugins_by_scan(&config, None, service));
        }
    }

    #[test]
    fn each_of_many_routes_gets_its_own_plugin() {
        // Every route used to scan every plugin: quadratic in a file with a plugin per
        // route. Its time is measured in benches/config_scale.rs; this checks the result
        // at a size.
        let mut config = Config::default();
        for i in 0..5_000 {
            config.routes.push(Route::new(Some(i), Mark::default()));
            config.plugins.push(plugin("openid-connect", PluginScope::Route(i), true));
        }
        let chosen = config.plugins_by_route();
        assert!(chosen.iter().enumerate().all(|(i, c)| c == &vec![i]));
    }
}
