//! The decK file's TLS entities, compiled: `certificates` into the served set, and each
//! `https` service's upstream client config from `tls_verify`, `ca_certificates` and
//! `client_certificate`.
//!
//! Runs at load and reload, never per request. Every problem is reported with the
//! position of the entry (or reference) that caused it; errors carry an empty file name
//! for the caller to fill in, like the rest of the compile step.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::ClientConfig;

use super::{
    ca_certificates, certified_key_checked, server_name, upstream_client_config, KeyPart, ServerCerts, UpstreamTls,
};
use crate::config::{Config, ConfigError, Protocol};

/// TLS to one `https` service's upstream.
#[derive(Clone)]
pub struct UpstreamTarget {
    /// One per distinct TLS setup (never 0): pooled connections are only reused for
    /// the setup they were made with.
    pub id: u64,
    pub config: Arc<ClientConfig>,
    /// SNI and the name the certificate must carry: the service's `host`.
    pub name: ServerName<'static>,
    /// SHA-256 over everything the target is made of (name, verification, extra roots,
    /// client certificate chain): equal for interchangeable targets, so services that
    /// share a setup, and a reload that keeps it, share one id, config and pool.
    pub fingerprint: [u8; 32],
}

/// [`UpstreamTarget::fingerprint`]: each field length-prefixed.
fn fingerprint(host: &str, tls: &UpstreamTls) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    field(host.as_bytes());
    field(&[u8::from(tls.verify)]);
    field(&(tls.extra_roots.len() as u64).to_be_bytes());
    for der in &tls.extra_roots {
        field(der);
    }
    let chain = tls.client_cert.as_ref().map_or(&[][..], |ck| &ck.cert[..]);
    field(&(chain.len() as u64).to_be_bytes());
    for der in chain {
        field(der);
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl std::fmt::Debug for UpstreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTarget").field("name", &self.name).finish_non_exhaustive()
    }
}

/// What [`compile`] makes of a configuration.
#[derive(Debug, Default)]
pub struct CompiledTls {
    /// The decK file's certificates by SNI (the default comes from the command line).
    pub server_certs: ServerCerts,
    /// Parallel to `config.services`: for an `https` service, the target of each name
    /// its peers are reached by ([`Config::peer_names`]); empty for `http` services.
    pub upstreams: Vec<Vec<(String, UpstreamTarget)>>,
    /// Parallel to `config.upstreams`: each one's `client_certificate`, loaded.
    pub upstream_client_certs: Vec<Option<Arc<CertifiedKey>>>,
}

fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn error(mark: crate::config::Mark, message: String) -> ConfigError {
    ConfigError::at("", mark, message)
}

/// The certificate a `client_certificate` reference names, or an error at the reference.
fn client_certificate(
    by_id: &HashMap<&str, Arc<CertifiedKey>>,
    (id, mark): &(String, crate::config::Mark),
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<CertifiedKey>> {
    let found = by_id.get(id.as_str()).cloned();
    if found.is_none() {
        errors.push(error(*mark, format!("no certificate with id '{id}'")));
    }
    found
}

/// Compiles the TLS parts of `config`; `Err` holds every problem found.
pub fn compile(config: &Config, warnings: &mut Vec<ConfigError>) -> Result<CompiledTls, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut out = CompiledTls::default();
    let mut by_id: HashMap<&str, Arc<CertifiedKey>> = HashMap::new();
    let mut sni_first: HashMap<String, crate::config::Mark> = HashMap::new();
    for (i, c) in config.certificates.iter().enumerate() {
        let what = match &c.id {
            Some(id) => format!("certificate {id}"),
            None => format!("certificate #{}", i + 1),
        };
        // A pair that does not load is reported at the field it is wrong in.
        let load = |cert: &str, key: &str, marks: [crate::config::Mark; 2], which: &str| {
            certified_key_checked(cert.as_bytes(), key.as_bytes()).map_err(|(part, e)| {
                let mark = match part {
                    KeyPart::Cert => marks[0],
                    KeyPart::Key => marks[1],
                    KeyPart::Pair => c.mark,
                };
                error(mark, format!("{what}{which}: {e}"))
            })
        };
        let key = match load(&c.cert, &c.key, [c.cert_mark, c.key_mark], "") {
            Ok(k) => k,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(id) = &c.id {
            by_id.insert(id, key.clone());
        }
        let alt = if c.cert_alt.is_empty() {
            None
        } else {
            match load(&c.cert_alt, &c.key_alt, [c.cert_alt_mark, c.key_alt_mark], " (alternate pair)") {
                // Kong's rule: the alternate pair is of another key type, or it would
                // never be the one a client takes.
                Ok(alt) if alt.key.algorithm() == key.key.algorithm() => {
                    errors.push(error(
                        c.cert_alt_mark,
                        format!(
                            "{what}: the certificate and the alternate one ('cert_alt') must have keys of different \
                             types (e.g. RSA and ECDSA); both are {:?}",
                            key.key.algorithm()
                        ),
                    ));
                    continue;
                }
                Ok(alt) => Some(alt),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        };
        for (name, mark) in &c.snis {
            // `add` decides what counts as the same name (case, a trailing dot); the map
            // only remembers where each name was first given, for the message.
            if out.server_certs.add_pair(name, key.clone(), alt.clone()) {
                sni_first.insert(ServerCerts::normalise(name), *mark);
            } else {
                let first = sni_first
                    .get(&ServerCerts::normalise(name))
                    .map_or_else(String::new, |m| format!(" (first at {m})"));
                errors.push(error(*mark, format!("SNI '{name}' is served by two certificates{first}")));
            }
        }
    }
    let mut cas: HashMap<&str, Vec<CertificateDer<'static>>> = HashMap::new();
    for (i, ca) in config.ca_certificates.iter().enumerate() {
        match ca_certificates(ca.cert.as_bytes()) {
            Ok(certs) => {
                if let Some(id) = &ca.id {
                    cas.insert(id, certs);
                }
            }
            Err(e) => {
                let what = ca.id.clone().unwrap_or_else(|| format!("#{}", i + 1));
                errors.push(error(ca.cert_mark, format!("CA certificate {what}: {e}")));
            }
        }
    }
    for u in &config.upstreams {
        let cert = u.client_certificate.as_ref().and_then(|r| client_certificate(&by_id, r, &mut errors));
        out.upstream_client_certs.push(cert);
    }
    let mut made: HashMap<[u8; 32], UpstreamTarget> = HashMap::new();
    for (si, s) in config.services.iter().enumerate() {
        if s.protocol != Protocol::Https {
            if !s.ca_certificates.is_empty() || s.client_certificate.is_some() {
                warnings.push(error(
                    s.mark,
                    "'ca_certificates' and 'client_certificate' have no effect on an http service".into(),
                ));
            }
            out.upstreams.push(Vec::new());
            continue;
        }
        let mut tls = UpstreamTls { verify: s.tls_verify, extra_roots: Vec::new(), client_cert: None };
        for (id, mark) in &s.ca_certificates {
            match cas.get(id.as_str()) {
                Some(certs) => tls.extra_roots.extend(certs.iter().cloned()),
                None => errors.push(error(*mark, format!("no CA certificate with id '{id}'"))),
            }
        }
        if let Some(reference) = &s.client_certificate {
            tls.client_cert = client_certificate(&by_id, reference, &mut errors);
        } else if let Some(u) = s.upstream {
            // The service's own certificate wins; else its upstream's.
            tls.client_cert = out.upstream_client_certs.get(u).cloned().flatten();
        }
        // One client config per service, shared by the targets of its names.
        let mut config_for_service: Option<Arc<ClientConfig>> = None;
        let mut targets = Vec::new();
        for name in config.peer_names(si) {
            let print = fingerprint(name, &tls);
            let target = match made.get(&print) {
                Some(t) => Ok(t.clone()),
                None => {
                    let client = match &config_for_service {
                        Some(c) => Ok(c.clone()),
                        None => upstream_client_config(&tls).inspect(|c| config_for_service = Some(c.clone())),
                    };
                    client.and_then(|config| {
                        let t = UpstreamTarget { id: next_id(), config, name: server_name(name)?, fingerprint: print };
                        made.insert(print, t.clone());
                        Ok(t)
                    })
                }
            };
            match target {
                Ok(t) => targets.push((name.to_string(), t)),
                Err(e) => {
                    errors.push(error(s.mark, e));
                    break;
                }
            }
        }
        out.upstreams.push(targets);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
