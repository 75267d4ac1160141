//! What a token must satisfy, built once from the plugin's config.

use std::fmt;

use super::alg::{Alg, AlgSet};

/// A secret for HS* verification or signing. `Debug` redacts it.
#[derive(Clone)]
pub struct HmacSecret(Box<[u8]>);

impl HmacSecret {
    /// Wraps secret bytes (Kong: the configured `client_secret`).
    pub fn new(secret: impl Into<Box<[u8]>>) -> HmacSecret {
        HmacSecret(secret.into())
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret(<redacted>)")
    }
}

/// The checks [`verify`](super::verify) applies, from the plugin config (`issuer`,
/// `issuers_allowed`, `leeway`, `enable_hs_signatures`, …). Built once per plugin instance
/// and shared; nothing in it changes per request.
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) allowed_algs: AlgSet,
    pub(crate) hmac_secret: Option<HmacSecret>,
    pub(crate) issuer: Box<str>,
    pub(crate) issuers_allowed: Vec<Box<str>>,
    pub(crate) leeway: u64,
    pub(crate) require_exp: bool,
    /// `max_age`: every token must carry `auth_time`, no more than this many seconds
    /// (plus leeway) in the past.
    pub(crate) max_age: Option<u64>,
    /// Keep the verifying key's public JWK with the claims (`*_access_token_jwk_header`).
    pub(crate) keep_key_jwk: bool,
    /// Only `typ: token-introspection+jwt` passes (RFC 9701 §5): the policy of the IdP's
    /// signed introspection answers, so no other token of the IdP's can stand for one.
    pub(crate) introspection_answer: bool,
}

impl Policy {
    /// A policy for tokens of `issuer` (discovery's `issuer`, or the configured issuer URL:
    /// a trailing `/.well-known/openid-configuration` or
    /// `/.well-known/oauth-authorization-server` and one trailing `/` are ignored, as Kong
    /// does). Defaults match Kong's: every supported algorithm allowed but HS* off (no
    /// secret), leeway 0, `exp` checked only when present.
    pub fn new(issuer: &str) -> Policy {
        Policy {
            allowed_algs: AlgSet::ALL,
            hmac_secret: None,
            issuer: normalise_issuer(issuer).into(),
            issuers_allowed: Vec::new(),
            leeway: 0,
            require_exp: false,
            max_age: None,
            keep_key_jwk: false,
            introspection_answer: false,
        }
    }

    /// This policy for the IdP's signed introspection answers (RFC 9701): the header's
    /// `typ` must be `token-introspection+jwt`. An answer states no authentication, so
    /// `max_age` does not apply to it.
    pub fn for_introspection_answers(mut self) -> Policy {
        self.introspection_answer = true;
        self.max_age = None;
        self
    }

    /// Restricts the algorithms a token may use (RFC 8725 §3.1).
    pub fn allowed_algs(mut self, algs: &[Alg]) -> Policy {
        self.allowed_algs = AlgSet::of(algs);
        self
    }

    /// Turns HS256/384/512 on with this secret (`enable_hs_signatures: true`). They must
    /// also be in [`allowed_algs`](Self::allowed_algs). The secret is never taken from a
    /// JWKS, which closes the RSA-public-key-as-HMAC-secret confusion.
    pub fn enable_hs(mut self, secret: HmacSecret) -> Policy {
        self.hmac_secret = Some(secret);
        self
    }

    /// Other accepted `iss` values (`issuers_allowed`), compared after the same
    /// normalisation as the issuer.
    pub fn issuers_allowed<S: AsRef<str>>(mut self, issuers: &[S]) -> Policy {
        self.issuers_allowed = issuers.iter().map(|s| normalise_issuer(s.as_ref()).into()).collect();
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (`leeway`, default 0).
    pub fn leeway(mut self, seconds: u64) -> Policy {
        self.leeway = seconds;
        self
    }

    /// `max_age` (seconds): as Kong checks it on access tokens, `auth_time` becomes
    /// required, may not be in the future (beyond leeway), and may be no older than
    /// `seconds` plus leeway. A verified token's [`exp`](super::Claims::exp) is then the
    /// earlier of its `exp` and the second it grows too old, so caches drop it in time.
    pub fn max_age(mut self, seconds: Option<u64>) -> Policy {
        self.max_age = seconds;
        self
    }

    /// Keep the public JWK of the key that verified each token with its claims
    /// ([`Claims::key_jwk`](super::Claims::key_jwk)): one lookup and a small string per
    /// verification, so only when something sends it.
    pub fn keep_key_jwk(mut self, keep: bool) -> Policy {
        self.keep_key_jwk = keep;
        self
    }

    /// Refuse tokens without `exp` (Kong checks `exp` only when present; this is off by
    /// default for that reason).
    pub fn require_exp(mut self, required: bool) -> Policy {
        self.require_exp = required;
        self
    }

    /// Whether `iss` names an accepted issuer.
    pub(crate) fn issuer_ok(&self, iss: &str) -> bool {
        let iss = iss.strip_suffix('/').unwrap_or(iss);
        *self.issuer == *iss || self.issuers_allowed.iter().any(|i| **i == *iss)
    }
}

/// Drops a discovery suffix and then one trailing `/`.
fn normalise_issuer(issuer: &str) -> &str {
    let s = issuer
        .strip_suffix("/.well-known/openid-configuration")
        .or_else(|| issuer.strip_suffix("/.well-known/oauth-authorization-server"))
        .unwrap_or(issuer);
    s.strip_suffix('/').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_matches_ignoring_one_trailing_slash_and_discovery_suffix() {
        let p = Policy::new("https://idp.example/realms/a/.well-known/openid-configuration");
        assert!(p.issuer_ok("https://idp.example/realms/a"));
        assert!(p.issuer_ok("https://idp.example/realms/a/"));
        assert!(!p.issuer_ok("https://idp.example/realms/a//"));
        assert!(!p.issuer_ok("https://idp.example/realms/b"));
        assert!(!p.issuer_ok("https://IDP.example/realms/a"));
        let p = Policy::new("https://idp.example/").issuers_allowed(&["https://other.example/"]);
        assert!(p.issuer_ok("https://idp.example"));
        assert!(p.issuer_ok("https://other.example"));
        assert!(!p.issuer_ok(""));
    }

    #[test]
    fn hmac_secret_debug_is_redacted() {
        let p = Policy::new("x").enable_hs(HmacSecret::new(b"hunter2".to_vec()));
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("104"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
