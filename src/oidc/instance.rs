//! One configured openid-connect plugin instance, as every thread sees it.
//!
//! An [`Instance`] is built with the snapshot from the plugin's compiled configuration and
//! shared (`Arc`) between the workers and the control plane. What the control plane
//! learns from the IdP — discovery, the token endpoint, the key set — lives in an
//! [`IdpState`] behind `ArcSwap`, replaced whole and never mutated, so a worker reads the
//! keys and the realm with one atomic load and no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::cache::{CacheTtl, KeyPrefix};
use super::config::{ClientAuthMethod, OidcConfig};
use crate::jose::{HmacSecret, KeySet, Policy};

/// What is known about the IdP right now.
#[derive(Debug)]
pub struct IdpState {
    /// Discovery (or the configured endpoints) has been loaded.
    pub ready: bool,
    /// The issuer tokens must carry (discovery's `issuer`, else the configured one).
    pub issuer: String,
    /// `realm` of `WWW-Authenticate`: the issuer's host.
    pub realm: String,
    pub token_endpoint: Option<String>,
    /// Client authentication towards the token endpoint (SPEC §1 step 4).
    pub auth_method: ClientAuthMethod,
    /// Where opaque issued tokens are introspected (configured, else discovered).
    pub introspection_endpoint: Option<String>,
    /// How the plugin's own client authenticates there.
    pub introspection_auth: ClientAuthMethod,
    pub keys: Arc<KeySet>,
    pub policy: Arc<Policy>,
    /// Why the IdP is not ready, for logs and `display_errors`; never a secret.
    pub last_error: Option<String>,
}

/// One plugin instance.
pub struct Instance {
    pub config: Arc<OidcConfig>,
    pub state: ArcSwap<IdpState>,
    /// Cache lifetimes in seconds, from the configuration.
    pub ttl: CacheTtl,
    /// `client_credentials_param_type`, in the credentials module's terms.
    pub cc_order: Vec<super::credentials::Location>,
    /// Cache-key prefix: the token endpoint (the configured one, else the discovery URL
    /// that names it — fixed for the instance, so a key never changes when discovery
    /// completes) and the salt (SPEC §2).
    pub prefix: KeyPrefix,
    /// Unix seconds of the last JWKS refetch, for the `rediscovery_lifetime` cooldown.
    pub last_key_refresh: AtomicU64,
    /// Unix seconds of the last "anonymous consumer missing" log line, so that a
    /// misconfiguration is logged once a minute, not once per refused request.
    last_anonymous_warning: AtomicU64,
    /// Unique for the process's lifetime (an address can be reused after a reload).
    pub id: u64,
    /// The DPoP server nonces' key (`dpop_use_nonce`), derived from `cache_tokens_salt`:
    /// nodes with the same configured salt accept each other's nonces; a generated salt
    /// gives each process its own.
    pub dpop_nonces: Option<crate::jose::dpop::NonceKey>,
}

/// The next [`Instance::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("issuer", &self.config.issuer).finish_non_exhaustive()
    }
}

/// The host of a URL, for `realm`; the whole string when it does not parse.
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    host_port.split(':').next().unwrap_or(host_port).to_string()
}

impl Instance {
    pub fn new(config: Arc<OidcConfig>) -> Instance {
        let ttl = CacheTtl {
            cache_ttl: config.cache_ttl.as_secs(),
            min: config.cache_ttl_min.map(|d| d.as_secs()),
            max: config.cache_ttl_max.map(|d| d.as_secs()),
        };
        let issuer = config.issuer.clone();
        let state = IdpState {
            ready: false,
            realm: url_host(&issuer),
            token_endpoint: config.token_endpoint.clone(),
            auth_method: config.configured_client_auth().unwrap_or(ClientAuthMethod::ClientSecretBasic),
            introspection_endpoint: config.introspection_endpoint.clone(),
            introspection_auth: config
                .introspection_endpoint_auth_method
                .or(config.configured_client_auth())
                .unwrap_or(ClientAuthMethod::ClientSecretBasic),
            keys: Arc::new(KeySet::default()),
            policy: Arc::new(policy_for(&config, &issuer)),
            issuer,
            last_error: Some("discovery has not completed yet".into()),
        };
        let dpop_nonces = config
            .dpop_use_nonce
            .then(|| crate::jose::dpop::NonceKey::new(config.cache_tokens_salt.expose().as_bytes()));
        let endpoint = config.token_endpoint.as_deref().unwrap_or(&config.discovery_url);
        let prefix = KeyPrefix::new(endpoint.as_bytes(), config.cache_tokens_salt.expose().as_bytes());
        let cc_order = config
            .client_credentials_param_type
            .iter()
            .map(|l| match l {
                super::config::CredentialLocation::Header => super::credentials::Location::Header,
                super::config::CredentialLocation::Query => super::credentials::Location::Query,
                super::config::CredentialLocation::Body => super::credentials::Location::Body,
            })
            .collect();
        Instance {
            config,
            state: ArcSwap::from_pointee(state),
            ttl,
            cc_order,
            prefix,
            last_key_refresh: AtomicU64::new(0),
            last_anonymous_warning: AtomicU64::new(0),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dpop_nonces,
        }
    }

    /// Whether the missing-anonymous-consumer error is to be logged now (at most once a
    /// minute per instance, across workers), and if so, claims it.
    pub fn claim_anonymous_warning(&self, now_unix: u64) -> bool {
        claim_after(&self.last_anonymous_warning, now_unix, 60)
    }

    /// Whether a JWKS refetch is allowed now (`rediscovery_lifetime` since the last), and
    /// if so, claims it.
    pub fn claim_key_refresh(&self, now_unix: u64) -> bool {
        claim_after(&self.last_key_refresh, now_unix, self.config.rediscovery_lifetime.as_secs())
    }
}

/// Claims a once-per-`cooldown` action across threads: true, recording `now_unix`, when
/// none was claimed in the last `cooldown` seconds (0 in `last` means never); false when
/// one was, or another thread claimed it first.
fn claim_after(last: &AtomicU64, now_unix: u64, cooldown: u64) -> bool {
    let seen = last.load(Ordering::Acquire);
    if seen != 0 && now_unix < seen.saturating_add(cooldown) {
        return false;
    }
    last.compare_exchange(seen, now_unix.max(1), Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// The verification policy for tokens of `issuer` under `config`: every asymmetric
/// algorithm ring verifies, HS* only with `enable_hs_signatures` (keyed by the configured
/// client secret, never by JWKS material).
pub fn policy_for(config: &OidcConfig, issuer: &str) -> Policy {
    let policy = Policy::new(issuer)
        .issuers_allowed(&config.issuers_allowed)
        .leeway(config.leeway.as_secs())
        .max_age(config.max_age)
        .keep_key_jwk(config.sends_key_jwk());
    match (config.enable_hs_signatures, config.client_secret.first()) {
        (true, Some(secret)) => policy.enable_hs(HmacSecret::new(secret.expose().as_bytes().to_vec())),
        _ => policy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_is_the_issuer_host() {
        assert_eq!(url_host("https://idp.example.com/realms/x"), "idp.example.com");
        assert_eq!(url_host("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(url_host("https://[::1]:443/x"), "::1");
        assert_eq!(url_host("https://u:p@h.example:1/"), "h.example");
    }

    #[test]
    fn a_missing_anonymous_consumer_is_logged_once_a_minute() {
        let yaml = "_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n    issuer: http://127.0.0.1:1/\n    auth_methods: [client_credentials]\n    anonymous: guest\n";
        let cfg = crate::config::load_str(yaml, "t.yaml", &|_| None).unwrap();
        let (oidc, _) = crate::oidc::config::compile(&cfg.plugins[0], "t.yaml").unwrap();
        let inst = Instance::new(Arc::new(oidc));
        assert!(inst.claim_anonymous_warning(1_000));
        assert!(!inst.claim_anonymous_warning(1_000));
        assert!(!inst.claim_anonymous_warning(1_059));
        assert!(inst.claim_anonymous_warning(1_060));
    }
}
