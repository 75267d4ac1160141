//! The compiled configuration every worker reads: one immutable value behind `ArcSwap`.
//!
//! A [`Snapshot`] is built whole from a validated [`Config`] on a non-worker thread (it
//! resolves service host names, which may block), then swapped in for all workers at
//! once. A worker keeps an `Rc` of the snapshot it last saw and compares pointers once
//! per request, so requests in flight finish on the snapshot they started with and the
//! request path never touches a shared reference count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, ConfigError, ConfigErrors, DEFAULT_SLOTS};
use crate::oidc::config::{self as oidc_config, OidcConfig};
use crate::oidc::instance::Instance;
use crate::router::Router;
use crate::upstream::health::{self, PeerHealth, Probe, UpstreamHealth};

/// Where one service's requests go.
#[derive(Debug, Clone, Default)]
pub struct ServiceTarget {
    /// Every address the service's requests may go to: the service host's, or each
    /// address of each target of its upstream. Empty while none resolved (503).
    pub peers: Vec<Peer>,
    /// The round-robin order, as indices into `peers`: each peer as often as its weight
    /// and its turns spread out (smooth weighted round-robin). Empty when no peer has
    /// weight.
    pub schedule: Vec<u32>,
    /// Parallel to `peers`: each one's weight.
    pub weights: Vec<u32>,
    /// The longest order (the upstream's `slots`).
    pub slots: u32,
    /// The upstream has health checks: workers pick from their own order over the
    /// healthy peers (`upstream::balancer::Balancer::pick`), not from `schedule`.
    pub checked: bool,
    /// The upstream balances by least connections: `schedule` only breaks ties.
    pub least_connections: bool,
    /// The upstream balances by latency (`upstream::balancer`): `schedule` only breaks
    /// ties.
    pub latency: bool,
    /// Consistent hashing: points on the ring, sorted, each with the peer it belongs
    /// to (`ring`); empty for the other algorithms.
    pub ring: Box<[(u64, u32)]>,
}

impl ServiceTarget {
    /// The peer for the `n`-th pick of this service, with its index in `peers` (`None`
    /// when there is none).
    #[inline]
    pub fn peer(&self, n: usize) -> Option<(usize, &Peer)> {
        if self.schedule.is_empty() {
            return None;
        }
        let i = self.schedule[n % self.schedule.len()] as usize;
        Some((i, self.peers.get(i)?))
    }

    /// Whether peer `i` may take requests: it has weight, and is healthy where its
    /// upstream checks health.
    pub fn eligible(&self, snap: &Snapshot, i: usize) -> bool {
        self.weights.get(i).is_some_and(|&w| w > 0)
            && self.peers[i].health.is_none_or(|h| snap.health.get(h.slot).is_none_or(|s| s.peer.is_healthy()))
    }

    /// The peer a sticky-sessions cookie names ([`Peer::sticky_id`]), when it may take
    /// requests.
    pub fn sticky_peer(&self, snap: &Snapshot, id: u64) -> Option<(usize, &Peer)> {
        let i = self.peers.iter().position(|p| p.sticky_id == id)?;
        self.eligible(snap, i).then(|| (i, &self.peers[i]))
    }
}

/// What a sticky-sessions cookie holds for an address of `upstream`: a digest of the
/// upstream's name and the address, so every node with the same configuration reads
/// it alike, and the cookie does not show the address. (It is not a secret: the
/// address can be searched for.)
pub fn sticky_id(upstream: &str, addr: SocketAddr) -> u64 {
    let mut h = crate::fasthash::KeyHash::new();
    h.write(upstream.as_bytes());
    match addr.ip().to_canonical() {
        std::net::IpAddr::V4(a) => h.write(&a.octets()),
        std::net::IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.write(&addr.port().to_be_bytes());
    h.finish()
}

/// One address a service's requests can go to.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The `Host` value sent when the route does not preserve the downstream's: the
    /// service host, or the upstream's `host_header`, or the target's host; plus
    /// `:port` when it is not the protocol's default (Kong's rule).
    pub host_header: Vec<u8>,
    /// `https` services: how to speak TLS to this peer.
    pub tls: Option<crate::tls::config::UpstreamTarget>,
    /// Upstreams with health checks: where this address's health is kept.
    pub health: Option<HealthRef>,
    /// Peers of an upstream: what a sticky-sessions cookie holds for this address
    /// ([`sticky_id`]); 0 for a service's own host.
    pub sticky_id: u64,
}

/// Where a peer's health is: a slot of [`Snapshot::health`], and its upstream's checks.
#[derive(Debug, Clone, Copy)]
pub struct HealthRef {
    pub slot: usize,
    /// Index into [`Snapshot::upstream_health`] (and `config.upstreams`).
    pub upstream: usize,
}

/// One checked address of a snapshot.
#[derive(Debug, Clone)]
pub struct HealthSlot {
    pub peer: Arc<PeerHealth>,
    pub upstream: usize,
    /// What its probes send as `Host`.
    pub host_header: Vec<u8>,
    /// `https` probes: the TLS server name (`https_sni`, else the target's host).
    pub tls_name: String,
}

/// Routing table, services and plugins, compiled.
pub struct Snapshot {
    pub config: Config,
    /// The compiled routes. Workers route with their own clone of it
    /// (`worker::LocalSnapshot::router`), never with this one across threads.
    pub router: Router,
    /// Parallel to `config.services`.
    pub targets: Vec<ServiceTarget>,
    /// Every host name the peers were resolved from (services' and targets'), with
    /// the addresses used; what the resolver thread looks up again.
    pub names: Resolved,
    /// Every address of every upstream with health checks, once (services on one
    /// upstream share them).
    pub health: Vec<HealthSlot>,
    /// Parallel to `config.upstreams`: the checks, compiled; `None` when off.
    pub upstream_health: Vec<Option<UpstreamHealth>>,
    /// Parallel to `config.upstreams`: the certificate its `https` probes present.
    pub upstream_client_certs: Vec<Option<Arc<rustls::sign::CertifiedKey>>>,
    /// Per route: the plugin instances that apply (indices into `config.plugins`).
    pub route_plugins: Vec<Vec<usize>>,
    /// Parallel to `config.plugins`: each openid-connect instance.
    pub oidc: Vec<Option<Arc<Instance>>>,
    /// `config.consumers`, indexed for consumer mapping.
    pub consumers: crate::consumers::Consumers,
    /// The decK file's served certificates, by SNI.
    pub server_certs: crate::tls::ServerCerts,
    /// What the TLS listeners hand new handshakes; `None` until [`Snapshot::install_tls`]
    /// (or when there are no TLS listeners).
    pub tls_server: Option<crate::tls::ServerTls>,
}

/// What [`compile`] makes of a configuration.
pub struct Compiled {
    pub router: Router,
    /// Parallel to `config.plugins`.
    pub oidc: Vec<Option<Arc<OidcConfig>>>,
    pub tls: crate::tls::config::CompiledTls,
    /// `config.consumers`, indexed.
    pub consumers: crate::consumers::Consumers,
    pub warnings: Vec<ConfigError>,
}

/// [`compile`] as a check of a loaded file: problems without a file of their own are
/// `file`'s. Returns every warning, the loader's (taken out of `config`) and the
/// compile's.
pub fn check(config: &mut Config, file: &str) -> Result<Vec<ConfigError>, ConfigErrors> {
    let name = |mut e: ConfigError| {
        if e.file.is_empty() {
            e.file = file.to_string();
        }
        e
    };
    let compiled = compile(config).map_err(|e| ConfigErrors(e.0.into_iter().map(name).collect()))?;
    Ok(config.warnings.drain(..).chain(compiled.warnings.into_iter().map(name)).collect())
}

/// Compiles everything in `config` that can be refused, without touching the network:
/// the router and every plugin's own configuration. Errors and warnings carry an empty
/// file name for the caller to fill in.
pub fn compile(config: &Config) -> Result<Compiled, ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let router = Router::new(config).map_err(|e| errors.extend(e.0)).ok();
    let consumers = crate::consumers::Consumers::new(&config.consumers);
    let mut oidc = Vec::with_capacity(config.plugins.len());
    for plugin in &config.plugins {
        if plugin.name != oidc_config::PLUGIN_NAME {
            oidc.push(None);
            continue;
        }
        match oidc_config::compile(plugin, plugin.source.as_deref().unwrap_or("")) {
            Ok((c, w)) => {
                warnings.extend(w);
                // The lookup requests make (`Consumers::anonymous`), run once here.
                if let Some(name) = c.anonymous.as_deref().filter(|n| consumers.anonymous(n).is_none()) {
                    warnings.push(ConfigError::at(
                        plugin.source.as_deref().unwrap_or(""),
                        plugin.mark,
                        format!(
                            "the anonymous consumer '{name}' is not among the consumers: requests this plugin \
                             refuses are answered 500 until it exists"
                        ),
                    ));
                }
                oidc.push(Some(Arc::new(c)));
            }
            Err(e) => {
                errors.extend(e);
                oidc.push(None);
            }
        }
    }
    let tls = crate::tls::config::compile(config, &mut warnings).map_err(|e| errors.extend(e)).ok();
    match (router, tls) {
        (Some(router), Some(tls)) if errors.is_empty() => Ok(Compiled { router, oidc, tls, consumers, warnings }),
        _ => {
            errors.sort_by_key(|e| e.mark.map(|m| (m.line, m.column)));
            Err(ConfigErrors(errors))
        }
    }
}

/// Host names resolved to addresses, shared between snapshot builds so a reload does
/// not resolve again what it already knows.
pub type Resolved = HashMap<String, Vec<IpAddr>>;

impl Snapshot {
    /// Compiles `config`. Names missing from `resolved` are looked up now (blocking:
    /// never call this on a worker thread); names that fail to resolve leave their
    /// service without addresses, answered 503 until a later resolve succeeds.
    pub fn build(mut config: Config, resolved: &mut Resolved) -> Result<Snapshot, ConfigErrors> {
        let Compiled { router, oidc, tls, consumers, warnings } = compile(&config)?;
        config.warnings.extend(warnings);
        let mut names = Resolved::new();
        let upstream_health: Vec<Option<UpstreamHealth>> =
            config.upstreams.iter().map(|u| UpstreamHealth::new(&u.healthchecks)).collect();
        let mut health: Vec<HealthSlot> = Vec::new();
        let mut slot_of: HashMap<(usize, SocketAddr), usize> = HashMap::new();
        let mut ips_of = |host: &str| -> Vec<IpAddr> {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return vec![ip];
            }
            let ips = resolved.entry(host.to_string()).or_insert_with(|| resolve(host)).clone();
            names.insert(host.to_string(), ips.clone());
            ips
        };
        // Every address of a checked upstream has its health, whether or not a service
        // uses the upstream (as in Kong, its targets are checked all the same).
        for (u, upstream) in config.upstreams.iter().enumerate() {
            if upstream_health[u].is_none() {
                continue;
            }
            for t in config.targets_of(u).iter().filter(|t| t.weight > 0) {
                for ip in ips_of(&t.host) {
                    let addr = SocketAddr::new(ip, t.port);
                    let active = &upstream.healthchecks.active;
                    let https = active.kind == crate::config::ProbeKind::Https;
                    let protocol = if https { crate::config::Protocol::Https } else { crate::config::Protocol::Http };
                    slot_of.entry((u, addr)).or_insert_with(|| {
                        health.push(HealthSlot {
                            peer: PeerHealth::new(&upstream.name, &t.address(), addr),
                            upstream: u,
                            host_header: host_header(upstream.name_for(t), t.port, protocol),
                            tls_name: active.https_sni.clone().unwrap_or_else(|| t.host.clone()),
                        });
                        health.len() - 1
                    });
                }
            }
        }
        let targets = config
            .services
            .iter()
            .zip(&tls.upstreams)
            .map(|(s, tls)| {
                let tls_for = |name: &str| tls.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
                let mut peers = Vec::new();
                let mut weights = Vec::new();
                let slots = match s.upstream {
                    None => {
                        for ip in ips_of(&s.host) {
                            peers.push(Peer {
                                addr: SocketAddr::new(ip, s.port),
                                host_header: host_header(&s.host, s.port, s.protocol),
                                tls: tls_for(&s.host),
                                health: None,
                                sticky_id: 0,
                            });
                            weights.push(1);
                        }
                        DEFAULT_SLOTS
                    }
                    Some(u) => {
                        let upstream = &config.upstreams[u];
                        for t in config.targets_of(u).iter().filter(|t| t.weight > 0) {
                            let name = upstream.name_for(t);
                            for ip in ips_of(&t.host) {
                                let addr = SocketAddr::new(ip, t.port);
                                let host_header = host_header(name, t.port, s.protocol);
                                let health = slot_of.get(&(u, addr)).map(|&slot| HealthRef { slot, upstream: u });
                                let sticky_id = sticky_id(&upstream.name, addr);
                                peers.push(Peer { addr, host_header, tls: tls_for(name), health, sticky_id });
                                weights.push(t.weight);
                            }
                        }
                        upstream.slots
                    }
                };
                let checked = s.upstream.is_some_and(|u| upstream_health[u].is_some());
                let algorithm = s.upstream.map(|u| config.upstreams[u].algorithm);
                let least_connections = algorithm == Some(crate::config::Algorithm::LeastConnections);
                let latency = algorithm == Some(crate::config::Algorithm::Latency);
                let ring = if algorithm == Some(crate::config::Algorithm::ConsistentHashing) {
                    ring(&peers, &weights).into()
                } else {
                    Box::default()
                };
                ServiceTarget {
                    schedule: schedule(&weights, slots),
                    peers,
                    weights,
                    slots,
                    checked,
                    least_connections,
                    latency,
                    ring,
                }
            })
            .collect();
        let route_plugins = config.plugins_by_route();
        let oidc = oidc.into_iter().map(|c| c.map(|c| Arc::new(Instance::new(c)))).collect();
        Ok(Snapshot {
            consumers,
            config,
            router,
            targets,
            names,
            health,
            upstream_health,
            route_plugins,
            oidc,
            server_certs: tls.server_certs,
            upstream_client_certs: tls.upstream_client_certs,
            tls_server: None,
        })
    }

    /// Builds what the TLS listeners serve from the file's certificates and `default`
    /// (`--tls-cert`/`--tls-key`), resuming sessions with `resumption`; or, when a plugin
    /// binds tokens to client certificates, asking for one, unresumed. Errors when there
    /// is nothing to serve at all.
    pub fn install_tls(
        &mut self,
        default: Option<Arc<rustls::sign::CertifiedKey>>,
        resumption: &crate::tls::Resumption,
    ) -> Result<(), String> {
        let mut certs = self.server_certs.clone();
        if let Some(d) = default {
            certs.set_default(d);
        }
        if certs.is_empty() {
            return Err("TLS listeners need a certificate: --tls-cert/--tls-key, or 'certificates' with 'snis' in the decK file".into());
        }
        // A client certificate is asked for when a token may be bound to one.
        let ask = self.oidc.iter().flatten().any(|i| i.config.mtls != crate::oidc::config::PopMode::Off);
        self.tls_server = Some(crate::tls::ServerTls::new(certs, resumption, ask)?);
        Ok(())
    }

    /// Keeps the running instances of `previous` whose configuration this snapshot does
    /// not change (see [`OidcConfig::unchanged_by`]): a reload then leaves their
    /// discovery, keys and every worker's token cache as they were, instead of starting
    /// each plugin cold. https upstream targets with an unchanged TLS setup are kept the
    /// same way. Call before the snapshot is installed.
    /// Returns how many openid-connect instances were kept.
    pub fn carry_over(&mut self, previous: &Snapshot) -> usize {
        // An https target whose setup is unchanged keeps its id and client config: its
        // pooled connections and TLS sessions stay usable across the reload.
        let targets: HashMap<[u8; 32], &crate::tls::config::UpstreamTarget> = previous
            .targets
            .iter()
            .flat_map(|t| &t.peers)
            .filter_map(|p| p.tls.as_ref())
            .map(|t| (t.fingerprint, t))
            .collect();
        for tls in self.targets.iter_mut().flat_map(|t| &mut t.peers).filter_map(|p| p.tls.as_mut()) {
            if let Some(old) = targets.get(&tls.fingerprint) {
                *tls = (*old).clone();
            }
        }
        // An address of an upstream keeps its health (and its passive counts' epoch)
        // across the reload.
        let health: HashMap<(&str, SocketAddr), &Arc<PeerHealth>> =
            previous.health.iter().map(|h| ((h.peer.upstream.as_str(), h.peer.addr), &h.peer)).collect();
        for slot in &mut self.health {
            if let Some(old) = health.get(&(slot.peer.upstream.as_str(), slot.peer.addr)) {
                slot.peer = Arc::clone(old);
            }
        }
        let mut kept = 0;
        // The running instances by their settings (the first of equal ones, as a scan
        // would find it): a lookup per new instance, not a comparison per pair.
        let mut old: HashMap<OidcConfig, &Arc<Instance>> = HashMap::with_capacity(previous.oidc.len());
        for i in previous.oidc.iter().flatten() {
            old.entry(i.config.settings()).or_insert(i);
        }
        for slot in self.oidc.iter_mut().flatten() {
            if let Some(old) = old.get(&slot.config.settings()) {
                *slot = Arc::clone(old);
                kept += 1;
            }
        }
        kept
    }

    /// The addresses the active checker probes, with how.
    pub fn probes(&self) -> Vec<Probe> {
        use crate::config::ProbeKind;
        let mut out = Vec::new();
        // One client config per `https` upstream.
        let mut configs: HashMap<usize, Option<Arc<rustls::ClientConfig>>> = HashMap::new();
        for slot in &self.health {
            let checks = &self.config.upstreams[slot.upstream].healthchecks.active;
            let Some(compiled) = &self.upstream_health[slot.upstream] else { continue };
            if !checks.enabled() {
                continue;
            }
            let tls = if checks.kind == ProbeKind::Https {
                let config = configs.entry(slot.upstream).or_insert_with(|| {
                    let verify = crate::tls::UpstreamTls {
                        verify: checks.https_verify_certificate,
                        extra_roots: Vec::new(),
                        client_cert: self.upstream_client_certs.get(slot.upstream).cloned().flatten(),
                    };
                    crate::tls::upstream_client_config(&verify)
                        .inspect_err(|e| tracing::error!(error = %e, "no TLS client for https health checks"))
                        .ok()
                });
                // A name that cannot be one was refused at load. Without a config or a
                // name the address is not probed (logged), never probed in plain text.
                let name = crate::tls::server_name(&slot.tls_name).ok();
                match (config.clone(), name) {
                    (Some(config), Some(name)) => Some(health::ProbeTls { config, name }),
                    _ => {
                        tracing::error!(upstream = %slot.peer.upstream, "https health checks cannot run; not probing");
                        continue;
                    }
                }
            } else {
                None
            };
            out.push(Probe {
                health: slot.peer.clone(),
                upstream: slot.upstream,
                tls,
                request: (checks.kind != ProbeKind::Tcp)
                    .then(|| health::probe_request(&checks.http_path, &slot.host_header, &checks.headers)),
                timeout: checks.timeout,
                healthy_interval: checks.healthy.interval,
                unhealthy_interval: checks.unhealthy.interval,
                rules: Arc::new(compiled.active.clone()),
                concurrency: checks.concurrency,
            });
        }
        out
    }

    /// The openid-connect instances of this snapshot.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.oidc.iter().flatten().cloned().collect()
    }

    /// Host names (of services and targets) that did not resolve.
    pub fn unresolved(&self) -> Vec<&str> {
        let mut names: Vec<&str> =
            self.names.iter().filter(|(_, ips)| ips.is_empty()).map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// The `Host` value for `host` reached on `port` over `protocol`: IPv6 literals in
/// brackets, the port added when it is not the protocol's default.
fn host_header(host: &str, port: u16, protocol: crate::config::Protocol) -> Vec<u8> {
    let mut h = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    if port != protocol.default_port() {
        h.push_str(&format!(":{port}"));
    }
    h.into_bytes()
}

/// The round-robin order of peers with `weights`: smooth weighted round-robin (each
/// step picks the peer furthest behind its share, as nginx does), so a peer of weight 3
/// beside one of weight 1 goes `a a b a`, not `a a a b`. The order is as long as the
/// weights' sum over their greatest common divisor; past `slots` entries the weights
/// are scaled down to fit (each kept at 1 or more), as Kong bounds its balancer by
/// `slots`.
pub fn schedule(weights: &[u32], slots: u32) -> Vec<u32> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let mut w: Vec<u64> = weights.iter().map(|&w| u64::from(w)).collect();
    let g = w.iter().fold(0, |g, &x| gcd(g, x));
    if g == 0 {
        return Vec::new();
    }
    w.iter_mut().for_each(|x| *x /= g);
    let slots = u64::from(slots).max(w.len() as u64);
    let total: u64 = w.iter().sum();
    if total > slots {
        w.iter_mut().filter(|x| **x > 0).for_each(|x| *x = (*x * slots / total).max(1));
    }
    let total: u64 = w.iter().sum();
    let mut current = vec![0i64; w.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i] as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total as i64;
        order.push(best as u32);
    }
    order
}

/// A consistent-hashing ring: each peer gets points by its own weight alone (160 for
/// Kong's default weight of 100, at least one), each point at the hash of the peer's
/// address and the point's number, so a target added or removed only moves the keys
/// its points take or leave. Sorted by point.
pub fn ring(peers: &[Peer], weights: &[u32]) -> Vec<(u64, u32)> {
    let mut points = Vec::new();
    for (i, (p, &w)) in peers.iter().zip(weights).enumerate() {
        if w == 0 {
            continue;
        }
        let n = (u64::from(w) * 160 / 100).max(1);
        let addr = p.addr.to_string();
        for k in 0..n {
            points.push((crate::fasthash::key_hash(format!("{addr}#{k}").as_bytes()), i as u32));
        }
    }
    points.sort_unstable();
    points
}

/// Resolves a host name with the system resolver; an empty list when it fails.
pub fn resolve(host: &str) -> Vec<IpAddr> {
    match (host, 0).to_socket_addrs() {
        Ok(addrs) => {
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.dedup();
            ips
        }
        Err(e) => {
            tracing::warn!(host, error = %e, "upstream host name does not resolve");
            Vec::new()
        }
    }
}

/// The handle workers and the control side share.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// Resolves every service host name of the current snapshot again and, when any answer
/// changed, swaps in a snapshot built from the same configuration with the new
/// addresses. Returns whether it swapped. Blocking: runs on the resolver thread.
///
/// A reload that lands while names are being resolved wins: the swap only happens if the
/// snapshot is still the one the names were read from.
pub fn refresh_dns(shared: &SharedSnapshot) -> bool {
    let current = shared.load_full();
    let mut fresh = Resolved::new();
    let mut changed = false;
    for (name, old) in &current.names {
        let ips = resolve(name);
        // A failed lookup keeps the addresses we had: a flapping resolver must not take
        // a working service down.
        if !ips.is_empty() && ips != *old {
            changed = true;
        }
        fresh.insert(name.clone(), if ips.is_empty() { old.clone() } else { ips });
    }
    if !changed {
        return false;
    }
    let Ok(mut next) = Snapshot::build(current.config.clone(), &mut fresh) else { return false };
    // Same configuration: keep the plugin instances, with their discovery and caches,
    // and the health of the addresses that stay.
    next.carry_over(&current);
    let previous = shared.compare_and_swap(&current, Arc::new(next));
    let swapped = Arc::ptr_eq(&previous, &current);
    if swapped {
        tracing::info!("upstream addresses changed; new addresses in use");
    }
    swapped
}

/// Starts the thread that keeps service addresses current: every `interval`, or every
/// five seconds while some name does not resolve.
pub fn spawn_resolver(shared: SharedSnapshot, interval: std::time::Duration) -> std::io::Result<()> {
    std::thread::Builder::new().name("ringgate-dns".into()).spawn(move || loop {
        let pending = !shared.load().unresolved().is_empty();
        std::thread::sleep(if pending { interval.min(std::time::Duration::from_secs(5)) } else { interval });
        refresh_dns(&shared);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(yaml: &str) -> Snapshot {
        let config = crate::config::load_str(yaml, "kong.yaml", &|_| None).expect("valid config");
        Snapshot::build(config, &mut Resolved::new()).expect("compiles")
    }

    #[test]
    fn an_anonymous_consumer_the_file_does_not_have_is_a_warning() {
        let yaml = |anonymous: &str| {
            format!(
                "_format_version: \"3.0\"\nconsumers:\n- username: guest\n  id: 0a6f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b\n\
                 plugins:\n- name: openid-connect\n  config:\n    issuer: http://127.0.0.1:1/\n    \
                 auth_methods: [client_credentials]\n    anonymous: {anonymous}\n"
            )
        };
        let warnings = |anonymous: &str| -> Vec<String> {
            let mut config = crate::config::load_str(&yaml(anonymous), "kong.yaml", &|_| None).expect("loads");
            check(&mut config, "kong.yaml").expect("compiles").iter().map(|w| w.to_string()).collect()
        };
        assert_eq!(
            warnings("nobody"),
            ["kong.yaml:6:3: the anonymous consumer 'nobody' is not among the consumers: requests this plugin \
              refuses are answered 500 until it exists"]
        );
        assert!(warnings("guest").is_empty(), "by username");
        assert!(warnings("0A6F1C2E-3B4D-4E5F-8A9B-0C1D2E3F4A5B").is_empty(), "by id, whatever its case");
    }

    fn picks(t: &ServiceTarget, n: usize) -> Vec<String> {
        (0..n).map(|i| t.peer(i).unwrap().1.addr.to_string()).collect()
    }

    #[test]
    fn weights_spread_turns_smoothly() {
        assert_eq!(schedule(&[3, 1], DEFAULT_SLOTS), vec![0, 0, 1, 0]);
        assert_eq!(schedule(&[200, 100, 100], DEFAULT_SLOTS), vec![0, 1, 2, 0]);
        assert_eq!(schedule(&[1, 1, 1], DEFAULT_SLOTS), vec![0, 1, 2]);
        assert_eq!(schedule(&[], DEFAULT_SLOTS), Vec::<u32>::new());
        assert_eq!(schedule(&[0, 0], DEFAULT_SLOTS), Vec::<u32>::new());
    }

    #[test]
    fn a_schedule_longer_than_slots_is_scaled_down_keeping_every_peer() {
        let s = schedule(&[65_535, 1], 100);
        assert_eq!(s.len(), 100);
        assert_eq!(s.iter().filter(|&&i| i == 1).count(), 1);
    }

    #[test]
    fn a_service_on_an_upstream_goes_to_its_targets_by_weight_with_their_host() {
        let snap = build(
            "_format_version: \"3.0\"\nupstreams:\n- name: orders.internal\n  targets:\n  - target: 10.0.0.1:8080\n    \
             weight: 300\n  - target: 10.0.0.2\n  - target: 10.0.0.3:80\n    weight: 0\n\
             - name: named\n  host_header: api.internal\n  targets: [{target: '[::1]:9000'}]\n\
             - name: empty\nservices:\n- host: orders.internal\n  routes: [{paths: [/a]}]\n\
             - host: named\n  routes: [{paths: [/b]}]\n- host: empty\n  routes: [{paths: [/c]}]\n\
             - host: 10.9.9.9\n  port: 81\n  routes: [{paths: [/d]}]\n",
        );
        let t = &snap.targets[0];
        assert_eq!(picks(t, 4), vec!["10.0.0.1:8080", "10.0.0.1:8080", "10.0.0.2:8000", "10.0.0.1:8080"]);
        let hosts: Vec<&[u8]> = t.peers.iter().map(|p| &p.host_header[..]).collect();
        assert_eq!(hosts, vec![&b"10.0.0.1:8080"[..], b"10.0.0.2:8000"]);
        assert_eq!(snap.targets[1].peers[0].host_header, b"api.internal:9000");
        assert_eq!(snap.targets[1].peers[0].addr.to_string(), "[::1]:9000");
        assert!(snap.targets[2].peer(0).is_none(), "no targets: nothing to pick");
        assert_eq!(picks(&snap.targets[3], 2), vec!["10.9.9.9:81", "10.9.9.9:81"]);
        assert_eq!(snap.targets[3].peers[0].host_header, b"10.9.9.9:81");
        assert!(snap.names.is_empty(), "IP literals are not names to resolve");
    }

    #[test]
    fn checked_upstreams_share_one_health_per_address_and_keep_it_across_a_reload() {
        let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    passive:\n      \
                    unhealthy: {tcp_failures: 1}\n  targets: [{target: '10.0.0.1:80'}, {target: '10.0.0.2:80'}]\n\
                    - name: plain\n  targets: [{target: '10.0.0.3:80'}]\n\
                    services:\n- host: u\n  routes: [{paths: [/a]}]\n- host: u\n  routes: [{paths: [/b]}]\n\
                    - host: plain\n  routes: [{paths: [/c]}]\n";
        let first = build(yaml);
        assert_eq!(first.health.len(), 2, "two addresses, shared by both services");
        assert!(first.targets[0].checked && first.targets[1].checked && !first.targets[2].checked);
        assert_eq!(first.targets[1].peers[1].health.map(|h| h.slot), Some(1));
        assert!(first.targets[2].peers[0].health.is_none());
        first.health[1].peer.set(false, "test");
        let mut second = build(yaml);
        assert!(second.health[1].peer.is_healthy(), "a new build starts healthy");
        second.carry_over(&first);
        assert!(Arc::ptr_eq(&first.health[1].peer, &second.health[1].peer));
        assert!(!second.health[1].peer.is_healthy(), "the reload kept the verdict");
        assert!(first.probes().is_empty(), "passive checks only: nothing to probe");
    }

    #[test]
    fn target_names_are_resolved_and_kept_for_the_resolver() {
        let mut resolved = Resolved::new();
        resolved.insert("a.internal".into(), vec!["10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap()]);
        let config = crate::config::load_str(
            "_format_version: \"3.0\"\nupstreams:\n- name: u\n  targets: [{target: 'a.internal:7000'}]\n\
             services:\n- host: u\n  routes: [{paths: [/]}]\n",
            "kong.yaml",
            &|_| None,
        )
        .unwrap();
        let snap = Snapshot::build(config, &mut resolved).unwrap();
        assert_eq!(picks(&snap.targets[0], 2), vec!["10.1.0.1:7000", "10.1.0.2:7000"]);
        assert_eq!(snap.targets[0].peers[1].host_header, b"a.internal:7000");
        assert_eq!(snap.names.keys().collect::<Vec<_>>(), vec!["a.internal"]);
        assert!(snap.unresolved().is_empty());
    }
}
