//! TLS with rustls on the ring provider: the certificates the TLS listeners serve, and
//! the client side for `https` upstreams.
//!
//! Place in the request path: before the first byte of a request on a TLS listener (the
//! handshake, on the worker that accepted the connection), and when an upstream
//! connection to an `https` service is opened (pooled afterwards like a plain one).
//!
//! - **Serving.** [`ServerCerts`] picks the certificate by SNI: an exact name first, then
//!   a `*.` wildcard one label up, then the default (`--tls-cert`/`--tls-key`); no match
//!   and no default fails the handshake. An entry with Kong's `cert_alt`/`key_alt` serves
//!   whichever of its two certificates the client's signature schemes reach first. Names come from the decK file's `certificates`
//!   (`snis`), as Kong models them. The [`rustls::ServerConfig`] lives in the snapshot,
//!   so a reload swaps certificates for the next handshake while open connections keep
//!   theirs. TLS 1.2 and 1.3 with rustls's suites (ECDHE with AES-GCM or ChaCha20-Poly1305
//!   only), ALPN `http/1.1`, resumption by tickets (keys rotated every 6 hours by rustls's
//!   rotator) and by session id; both stores outlive reloads ([`Resumption`]).
//! - **Client certificates.** When an openid-connect instance binds tokens to them
//!   (`proof_of_possession_mtls`), every handshake asks the client for a certificate,
//!   takes any, checks that the client holds its key, and hands its SHA-256 thumbprint to
//!   the connection ([`ServerTls::for_handshake`]); such handshakes are not resumed.
//! - **Upstreams.** [`upstream_client_config`] verifies against the system roots plus the
//!   service's `ca_certificates`, or not at all with `tls_verify: false`, and presents the
//!   service's `client_certificate` when it has one.
//!
//! Invariants: a private key is only ever in a [`CertifiedKey`] (no `Debug` shows it);
//! PEM that does not parse, or a key that does not match its certificate, is refused at
//! load time with a message naming the entry.
//! Cost: configs are built at load time; the per-handshake cost is rustls's own, plus
//! one hash lookup for the SNI.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, WantsVerifier,
};

/// The one crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// Reads a PEM certificate chain and its private key into a served certificate.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    certified_key_checked(cert_pem, key_pem).map_err(|(_, message)| message)
}

/// Which half of a certificate and key pair a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    /// The certificate chain does not parse.
    Cert,
    /// The private key does not parse or cannot sign.
    Key,
    /// Both parse, but the key is not the certificate's.
    Pair,
}

/// [`certified_key`], telling which half a problem is in. No message quotes the key.
pub fn certified_key_checked(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, (KeyPart, String)> {
    let certs = certificates(cert_pem).map_err(|e| (KeyPart::Cert, e))?;
    rustls::server::ParsedCertificate::try_from(&certs[0])
        .map_err(|e| (KeyPart::Cert, format!("the certificate is not a valid X.509 certificate ({e})")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| (KeyPart::Key, format!("the key is not a PEM private key ({})", pem_problem(&e))))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| (KeyPart::Key, format!("the key cannot sign with the ring provider ({e})")))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match().map_err(|e| (KeyPart::Pair, format!("the key does not belong to the certificate ({e})")))?;
    Ok(Arc::new(ck))
}

/// What is wrong with PEM text, without quoting it. pki-types' own messages quote the
/// offending line (`illegal section start`) or the section label up to the end of the
/// text (`missing section end marker`): for a key pasted on one line, that is the key.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "missing section end marker",
        Error::IllegalSectionStart { .. } => "illegal section start line",
        Error::Base64Decode(_) => "base64 decode error",
        Error::NoItemsFound => "no items found",
        _ => "malformed PEM",
    }
}

/// Every certificate of a PEM text, each usable as a trust anchor; at least one.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = certificates(pem)?;
    for der in &certs {
        RootCertStore::empty()
            .add(der.clone())
            .map_err(|e| format!("the certificate cannot be used as a CA certificate ({e})"))?;
    }
    Ok(certs)
}

/// Every certificate of a PEM text, in order; at least one.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate is not valid PEM ({})", pem_problem(&e)))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// What one name serves: a certificate, and maybe Kong's alternate one of another key
/// type (`cert_alt`), for clients that cannot verify the first.
#[derive(Debug, Clone)]
pub struct Served {
    pub main: Arc<CertifiedKey>,
    pub alt: Option<Arc<CertifiedKey>>,
}

impl Served {
    /// The certificate for a client that offers `schemes`, in its order of preference:
    /// the first scheme either key can sign with decides (as OpenSSL chooses between
    /// RSA and ECDSA certificates in TLS 1.3), the main one when neither can.
    fn choose(&self, schemes: &[SignatureScheme]) -> Arc<CertifiedKey> {
        if let Some(alt) = &self.alt {
            for &scheme in schemes {
                if self.main.key.choose_scheme(&[scheme]).is_some() {
                    break;
                }
                if alt.key.choose_scheme(&[scheme]).is_some() {
                    return alt.clone();
                }
            }
        }
        self.main.clone()
    }
}

/// Served certificates by SNI, with a default.
#[derive(Debug, Default, Clone)]
pub struct ServerCerts {
    exact: HashMap<String, Served>,
    /// `*.example.com` is kept as `example.com`.
    wildcard: HashMap<String, Served>,
    default: Option<Served>,
}

impl ServerCerts {
    /// Serves `key` for `name` (lower-cased; a leading `*.` makes it a wildcard). The
    /// first certificate given a name keeps it; returns false for a name taken already.
    pub fn add(&mut self, name: &str, key: Arc<CertifiedKey>) -> bool {
        self.add_pair(name, key, None)
    }

    /// [`ServerCerts::add`] with an alternate certificate of another key type.
    pub fn add_pair(&mut self, name: &str, main: Arc<CertifiedKey>, alt: Option<Arc<CertifiedKey>>) -> bool {
        let name = Self::normalise(name);
        let (map, name) = match name.strip_prefix("*.") {
            Some(rest) => (&mut self.wildcard, rest.to_string()),
            None => (&mut self.exact, name),
        };
        if map.contains_key(&name) {
            return false;
        }
        map.insert(name, Served { main, alt });
        true
    }

    /// A served name as `add` files it: lower case, no trailing dot.
    pub fn normalise(name: &str) -> String {
        name.trim_end_matches('.').to_ascii_lowercase()
    }

    pub fn set_default(&mut self, key: Arc<CertifiedKey>) {
        self.default = Some(Served { main: key, alt: None });
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.default.is_none()
    }

    /// What a client hello's server name is served (`None`: no SNI sent).
    pub fn served(&self, sni: Option<&str>) -> Option<&Served> {
        if let Some(name) = sni {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(k) = self.exact.get(&name) {
                return Some(k);
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(k) = self.wildcard.get(parent) {
                    return Some(k);
                }
            }
        }
        self.default.as_ref()
    }

    /// The main certificate for a server name (`None`: no SNI sent).
    pub fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        self.served(sni).map(|s| s.main.clone())
    }
}

impl ResolvesServerCert for ServerCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.served(hello.server_name())?.choose(hello.signature_schemes()))
    }
}

/// Resumption state shared by every server config the process builds, so sessions
/// resume across reloads.
#[derive(Clone)]
pub struct Resumption {
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl std::fmt::Debug for Resumption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resumption")
    }
}

impl Resumption {
    /// Ticket keys rotated by rustls (every 6 hours), and a session-id cache of 16 384
    /// entries for TLS 1.2 clients without tickets.
    pub fn new() -> Result<Resumption, String> {
        let ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("cannot make ticket keys ({e})"))?;
        Ok(Resumption { ticketer, sessions: rustls::server::ServerSessionMemoryCache::new(16_384) })
    }
}

/// rustls's server builder with ring and TLS 1.3 and 1.2, before the client check.
fn server_builder() -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, String> {
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))
}

/// The config a TLS listener hands every handshake.
pub fn server_config(certs: ServerCerts, resumption: &Resumption) -> Result<Arc<ServerConfig>, String> {
    let mut config = server_builder()?.with_no_client_auth().with_cert_resolver(Arc::new(certs));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = resumption.ticketer.clone();
    config.session_storage = resumption.sessions.clone();
    Ok(Arc::new(config))
}

/// The SHA-256 thumbprint of the certificate a TLS client presented: RFC 8705's
/// `x5t#S256`, before base64url.
pub type ClientCertThumbprint = [u8; 32];

/// What the TLS listeners hand new handshakes: the served certificates and, when an
/// openid-connect instance binds tokens to client certificates
/// (`proof_of_possession_mtls`), a request for the client's certificate.
#[derive(Debug, Clone)]
pub struct ServerTls(ServerMode);

#[derive(Debug, Clone)]
enum ServerMode {
    /// One config for every handshake.
    Shared(Arc<ServerConfig>),
    /// A config per handshake, finished from these: rustls gives the client's certificate
    /// to the verifier only, so each handshake has a verifier, and a config, of its own
    /// (a few allocations, beside the handshake's key exchange and signatures).
    Asking { builder: ConfigBuilder<ServerConfig, WantsVerifier>, certs: Arc<ServerCerts> },
}

impl ServerTls {
    /// With `ask_client_cert`, every handshake asks the client for a certificate and
    /// does not need one. Such handshakes are not resumed: a resumed session would skip
    /// the certificate, and with it the proof that the client holds its key.
    pub fn new(certs: ServerCerts, resumption: &Resumption, ask_client_cert: bool) -> Result<ServerTls, String> {
        Ok(ServerTls(if ask_client_cert {
            ServerMode::Asking { builder: server_builder()?, certs: Arc::new(certs) }
        } else {
            ServerMode::Shared(server_config(certs, resumption)?)
        }))
    }

    /// Whether handshakes ask for a client certificate.
    pub fn asks_client_cert(&self) -> bool {
        matches!(self.0, ServerMode::Asking { .. })
    }

    /// The config for one handshake, and where the client's certificate is noted when
    /// one is asked for.
    pub fn for_handshake(&self) -> (Arc<ServerConfig>, Option<ClientCertSlot>) {
        match &self.0 {
            ServerMode::Shared(config) => (config.clone(), None),
            ServerMode::Asking { builder, certs } => {
                let slot = ClientCertSlot::default();
                let verifier = TakeClientCert { slot: slot.clone(), signatures: AcceptAny(provider()) };
                let mut config =
                    builder.clone().with_client_cert_verifier(Arc::new(verifier)).with_cert_resolver(certs.clone());
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
                config.send_tls13_tickets = 0;
                (Arc::new(config), Some(slot))
            }
        }
    }
}

/// Where one handshake notes the thumbprint of the client's certificate.
#[derive(Debug, Clone, Default)]
pub struct ClientCertSlot(Arc<OnceLock<ClientCertThumbprint>>);

impl ClientCertSlot {
    /// The thumbprint, once a handshake has finished with a client certificate.
    pub fn thumbprint(&self) -> Option<ClientCertThumbprint> {
        self.0.get().copied()
    }
}

/// The client-certificate check of a handshake that asks for one. Any certificate is
/// taken, self-signed too: a bound token names the certificate itself (RFC 8705 §3), so
/// no chain is needed to trust it. What the handshake does prove is that the client
/// holds the certificate's key (its `CertificateVerify` signature, checked here); a
/// client without a certificate still connects, and its requests carry none.
#[derive(Debug)]
struct TakeClientCert {
    slot: ClientCertSlot,
    /// The handshake-signature checks, ring's, as an upstream's unverified server has.
    signatures: AcceptAny,
}

impl ClientCertVerifier for TakeClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        let mut thumbprint = [0u8; 32];
        thumbprint.copy_from_slice(digest.as_ref());
        // A handshake presents one certificate; the slot is this handshake's own.
        let _ = self.slot.0.set(thumbprint);
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

/// The system's trust roots, read once. An empty store (no system roots found) makes
/// every verified upstream fail with a clear error rather than trust anything.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system's CA certificates");
            }
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            if ignored > 0 {
                tracing::warn!(added, ignored, "some system CA certificates could not be used");
            }
            if added == 0 {
                tracing::warn!(
                    "no system CA certificates found: https upstreams verify only against their ca_certificates"
                );
            }
            Arc::new(store)
        })
        .clone()
}

/// How a service's upstream TLS is set up.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    /// `tls_verify`: false accepts any certificate (Kong's `tls_verify: false`).
    pub verify: bool,
    /// The service's `ca_certificates`, trusted beside the system roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The service's `client_certificate`.
    pub client_cert: Option<Arc<CertifiedKey>>,
}

/// The client config for one `https` service.
pub fn upstream_client_config(tls: &UpstreamTls) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = if tls.verify && tls.extra_roots.is_empty() {
        // The shared store as it is: no copy of ~140 anchors per service and reload.
        builder.with_root_certificates(system_roots())
    } else if tls.verify {
        let mut roots = (*system_roots()).clone();
        for ca in &tls.extra_roots {
            roots.add(ca.clone()).map_err(|e| format!("a CA certificate cannot be used ({e})"))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    };
    let mut config = match &tls.client_cert {
        Some(ck) => builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(ck.clone()))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `tls_verify: false`: any certificate is accepted (signatures on the handshake are
/// still checked, so the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What went wrong in a handshake, from the innermost cause: monoio-rustls wraps the
/// rustls error (the part that names the certificate problem) in an I/O error.
pub fn handshake_error(e: monoio_rustls::TlsError) -> String {
    let e = std::io::Error::from(e);
    match e.get_ref() {
        Some(inner) => inner.to_string(),
        None => e.to_string(),
    }
}

/// The server name sent as SNI and verified for an upstream `host` (a DNS name or an
/// IP literal).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|_| format!("'{host}' is not a valid TLS server name"))
}

pub mod config;

#[cfg(test)]
mod tests;
