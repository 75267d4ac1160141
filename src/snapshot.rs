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

use crate::config::{Config, ConfigError, ConfigErrors};
use crate::oidc::config::{self as oidc_config, OidcConfig};
use crate::oidc::instance::Instance;
use crate::router::Router;

/// Where one service's requests go.
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    /// Resolved addresses; empty while the name does not resolve.
    pub addrs: Vec<SocketAddr>,
    /// The `Host` value sent upstream when the route does not preserve the
    /// downstream's: `host`, plus `:port` when it is not the protocol's default.
    pub host_header: Vec<u8>,
    /// `https` services: how to speak TLS to the upstream.
    pub tls: Option<crate::tls::config::UpstreamTarget>,
}

/// Routing table, services and plugins, compiled.
pub struct Snapshot {
    pub config: Config,
    /// The compiled routes. Workers route with their own clone of it
    /// (`worker::LocalSnapshot::router`), never with this one across threads.
    pub router: Router,
    /// Parallel to `config.services`.
    pub targets: Vec<ServiceTarget>,
    /// Per route: the plugin instances that apply (indices into `config.plugins`).
    pub route_plugins: Vec<Vec<usize>>,
    /// Parallel to `config.plugins`: each openid-connect instance.
    pub oidc: Vec<Option<Arc<Instance>>>,
    /// The decK file's served certificates, by SNI.
    pub server_certs: crate::tls::ServerCerts,
    /// What the TLS listeners hand new handshakes; `None` until [`Snapshot::install_tls`]
    /// (or when there are no TLS listeners).
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
}

/// What [`compile`] makes of a configuration.
pub struct Compiled {
    pub router: Router,
    /// Parallel to `config.plugins`.
    pub oidc: Vec<Option<Arc<OidcConfig>>>,
    pub tls: crate::tls::config::CompiledTls,
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
    let mut oidc = Vec::with_capacity(config.plugins.len());
    for plugin in &config.plugins {
        if plugin.name != oidc_config::PLUGIN_NAME {
            oidc.push(None);
            continue;
        }
        match oidc_config::compile(plugin, plugin.source.as_deref().unwrap_or("")) {
            Ok((c, w)) => {
                warnings.extend(w);
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
        (Some(router), Some(tls)) if errors.is_empty() => Ok(Compiled { router, oidc, tls, warnings }),
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
        let Compiled { router, oidc, tls, warnings } = compile(&config)?;
        let mut upstream_tls = tls.upstreams.into_iter();
        config.warnings.extend(warnings);
        let targets = config
            .services
            .iter()
            .map(|s| {
                let ips = match s.host.parse::<IpAddr>() {
                    Ok(ip) => vec![ip],
                    Err(_) => resolved.entry(s.host.clone()).or_insert_with(|| resolve(&s.host)).clone(),
                };
                let mut host_header = if s.host.contains(':') { format!("[{}]", s.host) } else { s.host.clone() };
                if s.port != s.protocol.default_port() {
                    host_header.push_str(&format!(":{}", s.port));
                }
                ServiceTarget {
                    addrs: ips.into_iter().map(|ip| SocketAddr::new(ip, s.port)).collect(),
                    host_header: host_header.into_bytes(),
                    tls: upstream_tls.next().flatten(),
                }
            })
            .collect();
        let route_plugins =
            config.routes.iter().enumerate().map(|(i, r)| config.plugins_for(Some(i), r.service)).collect();
        let oidc = oidc.into_iter().map(|c| c.map(|c| Arc::new(Instance::new(c)))).collect();
        Ok(Snapshot { config, router, targets, route_plugins, oidc, server_certs: tls.server_certs, tls_server: None })
    }

    /// Builds what the TLS listeners serve from the file's certificates and `default`
    /// (`--tls-cert`/`--tls-key`), resuming sessions with `resumption`. Errors when
    /// there is nothing to serve at all.
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
        self.tls_server = Some(crate::tls::server_config(certs, resumption)?);
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
        let targets: HashMap<[u8; 32], &crate::tls::config::UpstreamTarget> =
            previous.targets.iter().filter_map(|t| t.tls.as_ref()).map(|t| (t.fingerprint, t)).collect();
        for tls in self.targets.iter_mut().filter_map(|t| t.tls.as_mut()) {
            if let Some(old) = targets.get(&tls.fingerprint) {
                *tls = (*old).clone();
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

    /// The openid-connect instances of this snapshot.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.oidc.iter().flatten().cloned().collect()
    }

    /// Host names of services that did not resolve.
    pub fn unresolved(&self) -> Vec<&str> {
        self.config
            .services
            .iter()
            .zip(&self.targets)
            .filter(|(_, t)| t.addrs.is_empty())
            .map(|(s, _)| s.host.as_str())
            .collect()
    }
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
    for (service, target) in current.config.services.iter().zip(&current.targets) {
        if service.host.parse::<IpAddr>().is_ok() || fresh.contains_key(&service.host) {
            continue;
        }
        let ips = resolve(&service.host);
        let old: Vec<IpAddr> = target.addrs.iter().map(SocketAddr::ip).collect();
        // A failed lookup keeps the addresses we had: a flapping resolver must not take
        // a working service down.
        if !ips.is_empty() && ips != old {
            changed = true;
        }
        fresh.insert(service.host.clone(), if ips.is_empty() { old } else { ips });
    }
    if !changed {
        return false;
    }
    let Ok(mut next) = Snapshot::build(current.config.clone(), &mut fresh) else { return false };
    // Same configuration: keep the plugin instances, with their discovery and caches.
    next.oidc = current.oidc.clone();
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
