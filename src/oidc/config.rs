//! The `openid-connect` plugin's configuration schema: a plugin instance's positioned
//! `config:` tree in, a typed [`OidcConfig`] with Kong's defaults out.
//!
//! Runs once per plugin instance when a snapshot is built (start-up, reload), never per
//! request. Like the decK loader it walks every key and reports every problem at once,
//! each at its line and column: unknown keys (with a "did you mean" hint when a Kong
//! name is within two edits), wrong types, bad values, and Kong features ringgate does
//! not honour. Types follow Kong's schema validator: a `number` takes an integer or a
//! float, an `array` must be a list (a lone string is refused, as Kong refuses it),
//! booleans are `true`/`false` only, and `null` means "Kong's default". Nothing after
//! this module sees YAML; secrets live in [`Secret`], whose `Debug` redacts.
//!
//! # Decisions
//!
//! - **`auth_methods` absent (or null) is a load error.** Kong's default enables all
//!   nine methods, and with them a `Basic` header is taken as a *password* grant before
//!   client credentials (Kong's fixed precedence), a session cookie is honoured, and so
//!   on. Narrowing the default to the two methods ringgate supports would silently
//!   change how the same request is authenticated, so the file must say which methods
//!   it means. An empty list is refused for the same reason (it would authenticate
//!   nothing).
//! - **`verify_signature: false` and `verify_claims: false` are load errors.** Kong
//!   documents them as debugging switches; with `bearer` they would let anyone mint a
//!   token, and without claim checks an expired token would be forwarded (SPEC §2 says
//!   never). The narrow, documented escape hatch `ignore_signature: [client_credentials]`
//!   (for IdPs that publish no keys) is honoured, because such a token comes straight
//!   from the token endpoint, but only while `ssl_verify` is on: over an unverified
//!   connection nothing would vouch for it.
//! - **`ssl_verify` defaults to `true`** (Kong's default is `false`, relying on
//!   `lua_ssl_trusted_certificate`). An explicit `ssl_verify: false` is honoured, as a
//!   Kong user wrote it, with a warning.
//! - **`cache_tokens_salt`**, when absent, is 32 bytes from the system CSPRNG
//!   (`ring::rand::SystemRandom`), hex-encoded, and marked as generated
//!   ([`CacheSalt::is_generated`]): like Kong's `auto = true`, each plugin instance (and
//!   each load) gets its own, so instances never share cached tokens.
//! - Client authentication to the IdP (SPEC §1 step 4): the configured method is
//!   `token_endpoint_auth_method`, else `client_auth[0]`. With `client_credentials`,
//!   `private_key_jwt`, `tls_client_auth` and `self_signed_tls_client_auth` are refused
//!   (the proxy holds no key or certificate for a caller), and so is `none` (the
//!   caller's secret would then be checked by nobody).
//! - `client_id` / `client_secret` are kept (the secret redacted) but the client
//!   credentials token call uses the caller's id and secret (SPEC §1.3).
//! - `token_post_args_names` may not name `grant_type`, `client_id`, `client_secret`,
//!   `client_assertion` or `client_assertion_type`: a static value there would replace
//!   the caller's credentials for every caller. `scope` is allowed (Kong lets it
//!   override `scopes`).
//! - `scopes: []` (send no `scope`) and an absent `scopes` (send `openid`) stay distinct.
//! - `token_post_args_client` may not name the caller's credentials or the grant, and
//!   `token_headers_client` may not name `Authorization` or a framing header. The values
//!   a caller sends become part of the token cache key (Kong keys only on `scope`, and
//!   only with `token_cache_key_include_scope`), so a token is never served to a request
//!   whose values would have asked the IdP for a different one.
//! - `introspection_post_args_client` (read from the query, then a form body) and
//!   `introspection_post_args_client_headers` (read from the request header of that
//!   name) may not name the token's parameter, `token_type_hint` or the plugin's client,
//!   nor one name in both lists; `introspection_headers_client` may not name
//!   `Authorization`, `Accept`, `Content-Type` or a framing header. The values go into
//!   the introspection of the caller's own token and into its cache key (Kong keys the
//!   answer on the token alone, so the first caller's values answer for all).
//! - With `ignore_signature: [client_credentials]` and the `client_credentials` method,
//!   the `*_required` settings, `claims_forbidden`, `upstream_headers_claims`,
//!   `upstream_headers` and `authenticated_groups_claim` are load errors: the issued
//!   tokens are not parsed, so nothing could read their claims.
//! - `groups_required` / `roles_required` are read from `groups_claim` (default
//!   `["groups"]`) / `roles_claim` (default `["roles"]`) with the same semantics as
//!   `scopes_required`, after it and `audience_required`; unmet, they are a 403.
//! - `upstream_headers_claims` pair with `upstream_headers_names` by position (lists of
//!   different lengths are refused); `upstream_headers` (Kong 3.14) takes
//!   `{header, path}` entries instead, the claim at `path` into nested objects, valued
//!   like a top-level one (`downstream_headers` likewise for the caller); both forms on
//!   one side are refused, as Kong's schema refuses them. A name may not be
//!   one the proxy writes itself (`Host`, framing, hop-by-hop, `X-Forwarded-*`,
//!   `X-Real-IP`), the
//!   `upstream_access_token_header`, or appear twice. See [`crate::oidc::claim_headers`]
//!   for the values, and for the caller's own headers under these names, which never
//!   reach the upstream (Kong lets them through when the token lacks the claim).
//! - `claims_forbidden` names top-level claims; a token that has one (with any value but
//!   `false`) is a 403, checked before the `*_required` settings.
//! - `authenticated_groups_claim` (a claim path; an empty list is unset) sets
//!   `X-Authenticated-Groups`, which `upstream_headers_names` may then not name.
//! - `consumer_claim` (a claim path; an empty list is unset) maps the access token to a
//!   consumer by the claim's value, looked up by each of `consumer_by` in order (see
//!   [`crate::consumers`]); not found is a 403 unless `consumer_optional`. Checked after
//!   the `*_required` settings, as Kong does. `consumer_by: []` is refused with a claim.
//!   `consumer_claims` (Kong 3.14) lists several paths, tried in order, the first with a
//!   usable value naming the consumer; with `consumer_claim` too it is refused.
//! - `anonymous` (a consumer id or username): a request the plugin would answer 401 or
//!   403 is proxied instead as that consumer, with `X-Anonymous-Consumer: true` and
//!   without the caller's credential headers (those `hide_credentials` drops; Kong
//!   forwards them unless `hide_credentials`). A consumer that does not exist is a
//!   500 at request time, as in Kong, so that an Admin API client may create the plugin
//!   before the consumer; a decK file that names none of its consumers gets a warning.
//!   A 503 (the IdP unavailable) is never turned anonymous.
//! - An opaque access token the IdP issues is introspected (RFC 7662) when a setting
//!   reads claims ([`OidcConfig::needs_claims`]), as Kong does: at the discovered
//!   `introspection_endpoint` (or the configured one), as the plugin's own client
//!   (`client_id[0]`, `client_secret[0]`, by `introspection_endpoint_auth_method`, else
//!   the token endpoint's method), with `introspection_hint`, `_token_param_name`,
//!   `_headers_*` and `_post_args_*`. The answer's claims meet the settings as a JWT's
//!   would; an answer that is not `active: true` (with `introspection_check_active`) is a
//!   401, an IdP that cannot answer a 503. A configured `Authorization` in
//!   `introspection_headers_names` authenticates in place of the client (Kong's rule).
//!   Without either, the claims stay unread and such settings refuse the token (403). With `introspection_accept:
//!   application/token-introspection+jwt` (RFC 9701) the answer is a JWT the IdP signs,
//!   verified against its keys (`typ`, `iss`, an `aud` naming the plugin's client) before
//!   its claims count; one that does not verify, or a JSON answer, is an IdP failure
//!   (503). `application/jwt`, an earlier draft's form, is a load error.
//! - `upstream_introspection_header` / `downstream_introspection_header` (a header name;
//!   the `:bearer` / `:basic` forms are for the access token's header) carry the
//!   introspection answer, base64 of its JSON, for a token that was introspected. A
//!   name follows the rules of the claim headers on its side, and is one of them for
//!   the caller's own header, which never reaches the upstream. Either is a setting that
//!   reads claims, so an opaque issued token is introspected for it.
//! - `cache_introspection: false`: a caller's token under `introspection` is introspected
//!   on every request (the answers to requests in flight together are shared), so a
//!   token the IdP revokes is refused from the next request, as in Kong. An opaque token
//!   the IdP issues is still introspected once, when issued (a warning says so when
//!   `client_credentials` is on).
//! - `proof_of_possession_dpop` ([`PopMode`]) asks a caller's token for a DPoP proof
//!   (RFC 9449, checked in `jose::dpop`) made with the key its `cnf.jkt` names;
//!   `dpop_proof_lifetime` bounds the proof's age. Only callers' own tokens are checked.
//!   `dpop_use_nonce` has proofs carry a nonce ringgate issued (RFC 9449 §9), which
//!   dates them in place of their `iat`.
//! - `proof_of_possession_mtls` ([`PopMode`]) lets a caller's token bound to a TLS client
//!   certificate (`cnf.x5t#S256`, RFC 8705) through only on a connection that presented
//!   that certificate; the TLS listeners then ask clients for one.
//!
//! # Kong keys ringgate does not act on yet
//!
//! The rule is the decK loader's: a key that cannot change how a request flows with the
//! configured `auth_methods` is accepted with a warning; a key whose Kong meaning
//! ringgate would silently not honour (so a request would be let through, refused,
//! answered or forwarded differently) is a load error. A value equal to Kong's default
//! (as `deck gateway dump` writes every field), `null`, an empty list, an empty string
//! and a record of nothing else trigger neither. Every other Kong field is implemented,
//! typed, in
//! [`OidcConfig`].
//!
//! | Key | Outcome | Why |
//! |---|---|---|
//! | `consumer_groups_claim` | error | consumer group mapping (and its 403) is not implemented |
//! | `consumer_groups_optional` | warning | only acts with consumer group mapping |
//! | `principals` with `enabled: true` (Kong Identity, Konnect) | error | the principal lookup and its 401 would be skipped |
//! | `max_age` with `client_credentials` | warning | it makes `auth_time` required, and tokens issued for client credentials seldom carry one: they are then refused (401), as in Kong |
//! | `domains` | warning | checks the `hd` claim of ID tokens, which ringgate does not use |
//! | `token_headers_replay` without `client_credentials` in `token_headers_grants` | warning | replays only for the grants listed, and ringgate runs only this one |
//! | `token_exchange_endpoint`, `token_exchange` | error | the upstream token would differ |
//! | `cache_token_exchange`, `cache_user_info` | warning | caches of flows ringgate does not run |
//! | `upstream_*_header` other than `upstream_access_token_header`, `upstream_access_token_jwk_header`, `upstream_introspection_header` and `upstream_introspection_jwt_header` | error | upstream would miss headers it expects |
//! | `downstream_*` other than `downstream_access_token_header`, `downstream_access_token_jwk_header`, `downstream_introspection_header`, `downstream_introspection_jwt_header`, `downstream_headers` and `downstream_headers_claims` / `_names` | error | the client would miss headers it expects |
//! | `*_introspection_jwt_header` without `introspection_accept: application/token-introspection+jwt` | warning | only a signed answer has a JWT to send |
//! | `unauthorized_redirect_uri`, `forbidden_redirect_uri`, `unexpected_redirect_uri` with more than one entry | warning | Kong picks the entry by client; ringgate's plugin client is the first, so the first entry is used |
//! | `unauthorized_destroy_session`, `forbidden_destroy_session` | warning | ringgate keeps no sessions |
//! | `logout_uri_suffix`, `logout_query_arg`, `logout_post_arg` | error | Kong answers matching requests as logouts; ringgate would proxy them |
//! | `logout_methods`, `logout_redirect_uri`, `logout_revoke`, `logout_revoke_access_token`, `logout_revoke_refresh_token` | warning | only act on a logout request |
//! | `login_action` (`response`/`redirect`) | error when `login_methods` names an enabled method, else warning | Kong would answer with tokens instead of proxying |
//! | `login_methods`, `login_tokens`, `login_redirect_mode`, `login_redirect_uri` | warning | only act through `login_action` |
//! | `proof_of_possession_mtls_from_header` (set) with `proof_of_possession_mtls` on | error | the certificate would come from a header, which ringgate does not read |
//! | `proof_of_possession_mtls_from_header` with `proof_of_possession_mtls` off | warning | only acts with mTLS on |
//! | `proof_of_possession_dpop` or `_mtls` with a method other than `bearer` / `introspection` | error (warning with `proof_of_possession_auth_methods_validation: false`) | Kong's rule: proof of possession only with the methods that can check it |
//! | `dpop_use_nonce`, `dpop_proof_lifetime` with `proof_of_possession_dpop` off | warning | only act with DPoP on |
//! | `proof_of_possession_auth_methods_validation` with both proofs off | warning | only acts with proof of possession on |
//! | `introspect_jwt_tokens` (`true`) without `bearer` | warning | only acts on bearer JWTs |
//! | `bearer_token_header_name` without `bearer` or `introspection` | warning | only acts on callers' tokens |
//! | `introspection_headers_client`, `introspection_post_args_client`, `introspection_post_args_client_headers` without `introspection` (or `bearer` with `introspect_jwt_tokens`) | warning | only act where a caller's token is introspected; with `client_credentials` also on, a warning says an issued opaque token is introspected with configured values only |
//! | `introspection_accept: application/jwt` | error | an earlier draft's signed answer; RFC 9701's is implemented |
//! | `introspection_endpoint_auth_method` other than basic, post, jwt, none | error | the plugin's client could not authenticate |
//! | `userinfo_*`, `search_user_info` | warning | the `userinfo` method and claim sources are not used |
//! | `resolve_distributed_claims` | warning | claims ringgate does not resolve are absent, which fails closed |
//! | `session_*`, `disable_session`, `jwt_session_claim`, `jwt_session_cookie`, `reverify` | warning | the `session` method is refused, so no session exists |
//! | `audience` | warning | Kong sends it to the authorization endpoint only, not in a token request (Kong's support note on Auth0); the warning names `token_post_args_names` / `_values`, which do send it |
//! | `authorization_*`, `redirect_uri`, `response_mode`, `response_type`, `preserve_query_args`, `verify_nonce`, `require_proof_key_for_code_exchange`, `require_pushed_authorization_requests`, `require_signed_request_object`, `pushed_authorization_request_endpoint`, `pushed_authorization_request_endpoint_auth_method` | warning | authorization code flow only (ringgate's token call carries no `redirect_uri`, SPEC §1 step 3) |
//! | `id_token_param_name`, `id_token_param_type`, `refresh_token_param_name`, `refresh_token_param_type`, `password_param_type`, `refresh_tokens` | warning | inputs of methods ringgate refuses |
//! | `end_session_endpoint`, `revocation_endpoint`, `revocation_endpoint_auth_method`, `revocation_token_param_name` | warning | logout only |
//! | `mtls_token_endpoint`, `mtls_introspection_endpoint`, `mtls_revocation_endpoint`, `tls_client_auth_cert_id`, `tls_client_auth_ssl_verify` | warning | only used with mTLS client authentication, which is refused |
//! | `client_jwk` | warning | only signs `private_key_jwt`, which is refused |
//! | `cluster_cache_strategy`, `cluster_cache_items`, `cluster_cache_redis`, `redis` | warning | share introspection or session data only |
//! | `ignore_signature` entries other than `client_credentials` | warning | name methods ringgate refuses |
//!
//! Implemented (typed, Kong's default unless noted): `issuer`, `using_pseudo_issuer`,
//! `rediscovery_lifetime`, `discovery_headers_names`, `discovery_headers_values`,
//! `extra_jwks_uris`, `jwks_endpoint`, `auth_methods`, `client_credentials_param_type`,
//! `bearer_token_param_type`, `bearer_token_cookie_name`, `bearer_token_header_name`, `client_id`,
//! `client_secret`, `client_arg`, `client_auth`, `client_alg`, `token_endpoint`,
//! `token_endpoint_auth_method`, `scopes`, `token_post_args_names`,
//! `token_post_args_values`, `token_headers_names`, `token_headers_values`,
//! `verify_parameters`, `timeout`, `keepalive`, `http_version`, `ssl_verify` (default
//! true), `http_proxy`, `http_proxy_authorization`, `https_proxy`,
//! `https_proxy_authorization`, `no_proxy`, `cache_tokens`, `cache_tokens_salt`,
//! `token_cache_key_include_scope`, `cache_ttl`, `cache_ttl_min`, `cache_ttl_max`,
//! `cache_ttl_neg`, `cache_ttl_resurrect`, `verify_signature` and `verify_claims`
//! (`true` only), `ignore_signature` (`client_credentials` only), `enable_hs_signatures`,
//! `leeway`, `max_age`, `proof_of_possession_dpop`, `dpop_proof_lifetime`,
//! `issuers_allowed`, `scopes_required`, `scopes_claim`, `audience_required`,
//! `audience_claim`, `credential_claim`, `consumer_claim`, `consumer_by`,
//! `consumer_optional`, `by_username_ignore_case`, `anonymous`, `introspection_endpoint`,
//! `introspection_endpoint_auth_method`, `introspection_hint`,
//! `introspection_token_param_name`, `introspection_headers_names`,
//! `introspection_headers_values`, `introspection_post_args_names`,
//! `introspection_post_args_values`, `introspection_post_args_client`,
//! `introspection_post_args_client_headers`, `introspection_headers_client`,
//! `introspection_check_active`, `introspection_accept` (not `application/jwt`),
//! `cache_introspection`, `introspect_jwt_tokens`,
//! `upstream_access_token_header`, `downstream_access_token_header`,
//! `upstream_introspection_header`, `downstream_introspection_header`,
//! `upstream_introspection_jwt_header`, `downstream_introspection_jwt_header`,
//! `upstream_access_token_jwk_header`, `downstream_access_token_jwk_header`,
//! `token_headers_replay`, `token_headers_prefix`, `token_headers_grants`,
//! `downstream_headers_claims`, `downstream_headers_names`,
//! `hide_credentials`, `run_on_preflight`, `display_errors`, `expose_error_code`,
//! `unauthorized_error_message`, `forbidden_error_message`.
//!
//! Field list and defaults: Kong Gateway 3.12/3.13 `openid-connect` schema (plus
//! `token_exchange` from 3.14); see `shared/reference/kong-oidc.md` §1.12.
//!
//! Cost: linear in the number of keys; load time only.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use crate::config::{ConfigError, Mark, Node, NodeValue, Plugin};
pub use crate::consumers::ConsumerBy;
pub use crate::oidc::claim_headers::{ClaimHeader, ClaimKind};

/// The plugin name this module compiles.
pub const PLUGIN_NAME: &str = "openid-connect";

// ----- secrets -----

/// A secret from the configuration (a client secret, a proxy credential). `Debug`
/// prints no part of it and there is no `Display`, so it cannot end up in a log line
/// or an error message by accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The per-instance salt of the token cache key (SPEC §2). Either configured as
/// `cache_tokens_salt` or generated at load time; redacted like a [`Secret`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheSalt {
    value: Secret,
    generated: bool,
}

impl CacheSalt {
    pub fn configured(value: impl Into<String>) -> CacheSalt {
        CacheSalt { value: Secret::new(value), generated: false }
    }

    /// 32 random bytes from the system CSPRNG, hex-encoded (64 characters).
    pub fn generate() -> Result<CacheSalt, String> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "the system random number generator failed".to_string())?;
        Ok(CacheSalt { value: Secret(crate::http::hex_lower(&bytes)), generated: true })
    }

    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// True when the file gave no salt and this one was generated at load time.
    pub fn is_generated(&self) -> bool {
        self.generated
    }
}

impl fmt::Debug for CacheSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheSalt").field("generated", &self.generated).finish_non_exhaustive()
    }
}

// ----- typed values -----

/// The `auth_methods` ringgate supports. Kong's others are load errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// The caller's id and secret are exchanged at the token endpoint (SPEC §1).
    ClientCredentials,
    /// The caller sends a JWT, verified per request against the JWKS (SPEC §1 step 7).
    Bearer,
    /// The caller sends a token the IdP is asked about (RFC 7662), once per token and
    /// cache lifetime.
    Introspection,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientCredentials => "client_credentials",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Introspection => "introspection",
        }
    }
}

/// Where a caller's client credentials are looked for (`client_credentials_param_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialLocation {
    Header,
    Query,
    Body,
}

/// Where a bearer token is looked for (`bearer_token_param_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BearerLocation {
    Header,
    Query,
    Body,
    /// The cookie named by `bearer_token_cookie_name`.
    Cookie,
}

/// Kong's client authentication methods (`client_auth`, `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
    PrivateKeyJwt,
    TlsClientAuth,
    SelfSignedTlsClientAuth,
    None,
}

const CLIENT_AUTH_METHODS: &[(&str, ClientAuthMethod)] = &[
    ("client_secret_basic", ClientAuthMethod::ClientSecretBasic),
    ("client_secret_post", ClientAuthMethod::ClientSecretPost),
    ("client_secret_jwt", ClientAuthMethod::ClientSecretJwt),
    ("private_key_jwt", ClientAuthMethod::PrivateKeyJwt),
    ("tls_client_auth", ClientAuthMethod::TlsClientAuth),
    ("self_signed_tls_client_auth", ClientAuthMethod::SelfSignedTlsClientAuth),
    ("none", ClientAuthMethod::None),
];

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        CLIENT_AUTH_METHODS.iter().find(|(_, m)| *m == self).map_or("", |(s, _)| s)
    }

    fn parse(s: &str) -> Option<ClientAuthMethod> {
        CLIENT_AUTH_METHODS.iter().find(|(n, _)| *n == s).map(|(_, m)| *m)
    }
}

/// `client_alg`: the JWS algorithm of a client assertion. Only the HS* ones can sign a
/// `client_secret_jwt` assertion (the others need a private key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAlg {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

const CLIENT_ALGS: &[(&str, ClientAlg)] = &[
    ("HS256", ClientAlg::Hs256),
    ("HS384", ClientAlg::Hs384),
    ("HS512", ClientAlg::Hs512),
    ("RS256", ClientAlg::Rs256),
    ("RS384", ClientAlg::Rs384),
    ("RS512", ClientAlg::Rs512),
    ("PS256", ClientAlg::Ps256),
    ("PS384", ClientAlg::Ps384),
    ("PS512", ClientAlg::Ps512),
    ("ES256", ClientAlg::Es256),
    ("ES384", ClientAlg::Es384),
    ("ES512", ClientAlg::Es512),
    ("EdDSA", ClientAlg::EdDsa),
];

impl ClientAlg {
    pub fn as_str(self) -> &'static str {
        CLIENT_ALGS.iter().find(|(_, a)| *a == self).map_or("", |(s, _)| s)
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, ClientAlg::Hs256 | ClientAlg::Hs384 | ClientAlg::Hs512)
    }
}

/// `http_version` of the calls to the IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    Http10,
    Http11,
}

/// `proof_of_possession_dpop` and `proof_of_possession_mtls`: whether a caller's token
/// must prove that the caller holds the key the token is bound to — with a DPoP proof
/// (RFC 9449, `cnf.jkt`), or with the TLS client certificate of the connection (RFC 8705,
/// `cnf.x5t#S256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PopMode {
    /// Nothing is asked for or checked (the default).
    Off,
    /// A bound token (or, for DPoP, one sent with the `DPoP` scheme) needs its proof; an
    /// unbound token passes as before.
    Optional,
    /// Every caller's token must be bound and come with its proof (for DPoP: sent with
    /// the `DPoP` scheme, and challenges use that scheme).
    Strict,
}

/// The proof-of-possession settings, as [`Compiler::proof_of_possession`] reads them.
struct ProofOfPossession {
    dpop: PopMode,
    mtls: PopMode,
    dpop_proof_lifetime: u64,
    dpop_use_nonce: bool,
}

/// What the introspection request asks for (`introspection_accept`): two of Kong's three
/// values (`application/jwt`, an earlier draft's, is a load error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntrospectionAccept {
    /// `application/json`: the RFC 7662 answer as JSON (the default).
    Json,
    /// `application/token-introspection+jwt` (RFC 9701): a JWT the IdP signs, typed
    /// `token-introspection+jwt`, addressed to the plugin's client, holding the answer
    /// in `token_introspection`.
    TokenIntrospectionJwt,
}

impl IntrospectionAccept {
    /// The `Accept` value sent.
    pub fn media_type(self) -> &'static str {
        match self {
            IntrospectionAccept::Json => "application/json",
            IntrospectionAccept::TokenIntrospectionJwt => "application/token-introspection+jwt",
        }
    }

    /// Whether the answer is a signed JWT.
    pub fn signed(self) -> bool {
        self != IntrospectionAccept::Json
    }
}

/// How the access token is written upstream (`upstream_access_token_header`, default
/// A post argument of the introspection request that the caller fills in
/// (`introspection_post_args_client` or `_client_headers`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerArg {
    pub name: String,
    /// Read from the caller's request header of that name (`_client_headers`); else from
    /// its query, then its form body.
    pub from_header: bool,
}

/// `authorization:bearer`): `name:bearer` → `name: Bearer <token>`, `name:basic` →
/// `name: Basic <token>`, a bare `name` → `name: <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamTokenHeader {
    /// Lower-cased header name.
    pub name: String,
    pub scheme: Option<TokenScheme>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScheme {
    Bearer,
    Basic,
}

impl UpstreamTokenHeader {
    /// What precedes the bare token in the header's value: `Bearer `, `Basic `, or
    /// nothing for a plain header.
    pub fn prefix(&self) -> &'static [u8] {
        match self.scheme {
            Some(TokenScheme::Bearer) => b"Bearer ",
            Some(TokenScheme::Basic) => b"Basic ",
            None => b"",
        }
    }
}

/// One `openid-connect` plugin instance, validated, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OidcConfig {
    // --- discovery and keys (SPEC §3) ---
    /// `issuer` as written: the issuer identifier or the full discovery URL.
    pub issuer: String,
    /// Where discovery is fetched: `issuer` with `/.well-known/openid-configuration`
    /// appended unless it already ends with it or `/.well-known/oauth-authorization-server`.
    pub discovery_url: String,
    /// Default false. True: no discovery; `token_endpoint` and `extra_jwks_uris` stand in.
    pub using_pseudo_issuer: bool,
    /// Default 30 s: the least time between two rediscoveries (unknown `kid`).
    pub rediscovery_lifetime: Duration,
    /// `discovery_headers_names` paired with `_values`.
    pub discovery_headers: Vec<(String, String)>,
    pub extra_jwks_uris: Vec<String>,
    /// `jwks_endpoint`: fetched in place of the `jwks_uri` discovery names (and with a
    /// pseudo issuer, beside `extra_jwks_uris`).
    pub jwks_endpoint: Option<String>,

    // --- which credentials, where (SPEC §1 steps 2, 7) ---
    /// Supported methods only, in the order written, without duplicates; never empty.
    pub auth_methods: Vec<AuthMethod>,
    /// Default header, query, body.
    pub client_credentials_param_type: Vec<CredentialLocation>,
    /// Default header, query, body.
    pub bearer_token_param_type: Vec<BearerLocation>,
    pub bearer_token_cookie_name: Option<String>,
    /// The headers the `header` location reads a caller's bare token from, lower-case,
    /// in order, after `Authorization: Bearer`: Kong's `access-token` and
    /// `x-access-token`, or `bearer_token_header_name` alone (then `Authorization` is
    /// not read unless that is the name).
    pub bearer_token_headers: Vec<String>,
    /// Whether the `header` location reads `Authorization: Bearer …` (false only when
    /// `bearer_token_header_name` names another header).
    pub bearer_from_authorization: bool,
    /// Default false.
    pub hide_credentials: bool,
    /// Default true.
    pub run_on_preflight: bool,

    // --- configured clients (not used for the client credentials token call, SPEC §1.3) ---
    pub client_id: Vec<String>,
    pub client_secret: Vec<Secret>,
    /// Default `client_id`.
    pub client_arg: String,
    pub client_auth: Vec<ClientAuthMethod>,
    pub client_alg: Vec<ClientAlg>,

    // --- the token request (SPEC §1 steps 3, 4) ---
    /// Overrides discovery's `token_endpoint`.
    pub token_endpoint: Option<String>,
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,
    /// Default `["openid"]`; empty means "send no `scope`".
    pub scopes: Vec<String>,
    /// `token_post_args_names` paired with `_values`.
    pub token_post_args: Vec<(String, String)>,
    /// `token_headers_names` paired with `_values`.
    pub token_headers: Vec<(String, String)>,
    /// Arguments the caller may set in the token request, each read from the query, then
    /// a form body, then a request header (Kong's order).
    pub token_post_args_client: Vec<String>,
    /// Request headers copied into the token request, under the names as written.
    pub token_headers_client: Vec<String>,
    /// Default false: check the grant and scopes against discovery.
    pub verify_parameters: bool,

    // --- the HTTP client to the IdP ---
    /// Default 10000 ms, for connect, send and read each.
    pub timeout: Duration,
    /// Default true.
    pub keepalive: bool,
    /// Default 1.1.
    pub http_version: HttpVersion,
    /// Default **true** in ringgate (Kong: false).
    pub ssl_verify: bool,
    pub http_proxy: Option<String>,
    pub http_proxy_authorization: Option<Secret>,
    pub https_proxy: Option<String>,
    pub https_proxy_authorization: Option<Secret>,
    /// `no_proxy` split at commas, trimmed.
    pub no_proxy: Vec<String>,

    // --- the token cache (SPEC §2) ---
    /// Default true.
    pub cache_tokens: bool,
    pub cache_tokens_salt: CacheSalt,
    /// Default false. The key always holds what a caller adds to the token call
    /// (`token_post_args_client`, `scope` included), so this changes nothing: the
    /// configured `scopes` are the instance's own, and each instance has its own caches.
    pub token_cache_key_include_scope: bool,
    /// Default 3600 s: the lifetime when the IdP gives none.
    pub cache_ttl: Duration,
    /// Unset by default. As written; Kong treats 0 as unset for min and max.
    pub cache_ttl_min: Option<Duration>,
    pub cache_ttl_max: Option<Duration>,
    pub cache_ttl_neg: Option<Duration>,
    pub cache_ttl_resurrect: Option<Duration>,

    // --- verification (SPEC §1 step 5, §3) ---
    /// `ignore_signature` lists `client_credentials`: tokens from the token endpoint are
    /// accepted unsigned (only with `ssl_verify`). `verify_signature` and
    /// `verify_claims` are always on (false is refused).
    pub ignore_signature_client_credentials: bool,
    /// Default false: HS* signatures refused.
    pub enable_hs_signatures: bool,
    /// Default 0.
    pub leeway: Duration,
    /// `max_age` (whole seconds): every verified token must carry an `auth_time` no
    /// older than this (plus `leeway`), as Kong checks access tokens.
    pub max_age: Option<u64>,
    /// `proof_of_possession_dpop`.
    pub dpop: PopMode,
    /// `proof_of_possession_mtls`: the TLS client certificate a bound token asks for.
    pub mtls: PopMode,
    /// `dpop_use_nonce` (with DPoP on): proofs must carry a nonce this resource server
    /// issued (RFC 9449 §9), which then dates them in place of their `iat`.
    pub dpop_use_nonce: bool,
    /// `dpop_proof_lifetime` (whole seconds, default 300): how old a proof's `iat` may be.
    pub dpop_proof_lifetime: u64,
    pub issuers_allowed: Vec<String>,
    pub scopes_required: Vec<String>,
    /// Default `["scope"]`: a path into the claims.
    pub scopes_claim: Vec<String>,
    pub audience_required: Vec<String>,
    /// Default `["aud"]`.
    pub audience_claim: Vec<String>,
    pub groups_required: Vec<String>,
    /// Default `["groups"]`.
    pub groups_claim: Vec<String>,
    pub roles_required: Vec<String>,
    /// Default `["roles"]`.
    pub roles_claim: Vec<String>,
    /// Top-level claims the access token must not have (a `false` value counts as
    /// absent, as in Kong).
    pub claims_forbidden: Vec<String>,
    /// Default `["sub"]`: the claim a virtual credential is derived from.
    pub credential_claim: Vec<String>,

    // --- consumers (Kong's consumer mapping) ---
    /// The claim paths whose value names the consumer, tried in order, the first with a
    /// usable value winning: `consumer_claim`'s one path, or `consumer_claims`' list
    /// (Kong 3.14); empty: no mapping.
    pub consumer_claim: Vec<Vec<String>>,
    /// Default `[custom_id, username]`.
    pub consumer_by: Vec<ConsumerBy>,
    /// Default false: a token with no consumer is a 403.
    pub consumer_optional: bool,
    /// Default false.
    pub by_username_ignore_case: bool,
    /// The consumer (id or username) a refused request is proxied as.
    pub anonymous: Option<String>,

    // --- introspection of opaque issued tokens (RFC 7662), to read their claims ---
    /// Overrides discovery's `introspection_endpoint`.
    pub introspection_endpoint: Option<String>,
    /// How the plugin's own client authenticates there: basic, post, jwt or none; unset:
    /// the token endpoint's method, else the first of basic, post, jwt that discovery
    /// lists for introspection.
    pub introspection_endpoint_auth_method: Option<ClientAuthMethod>,
    /// Default `access_token`: the `token_type_hint`.
    pub introspection_hint: String,
    /// Default `token`: the form parameter that carries the token.
    pub introspection_token_param_name: String,
    /// `introspection_headers_names` paired with `_values`.
    pub introspection_headers: Vec<(String, String)>,
    /// `introspection_post_args_names` paired with `_values`.
    pub introspection_post_args: Vec<(String, String)>,
    /// `introspection_post_args_client`, then `introspection_post_args_client_headers`:
    /// post arguments of the introspection request that each caller fills in for its
    /// own token. A caller's value replaces a configured one of the same name.
    pub introspection_client_args: Vec<CallerArg>,
    /// `introspection_headers_client`: the caller's request headers copied, by name, into
    /// the introspection of its token (replacing configured ones of the same name).
    pub introspection_headers_client: Vec<String>,
    /// Default true: an answer without `active: true` refuses the token.
    pub introspection_check_active: bool,
    /// `introspection_accept`: the answer the introspection request asks for, and so
    /// how it is read.
    pub introspection_accept: IntrospectionAccept,
    /// Default true. False: a caller's token (`introspection`) is introspected on every
    /// request, its answer never cached, so a revocation counts at once, as in Kong.
    pub cache_introspection: bool,
    /// `introspect_jwt_tokens` with `bearer`: a caller's JWT that verifies is also
    /// introspected (cached like an introspected token), so one the IdP revoked is
    /// refused; the claims of the answer then stand for the token's.
    pub introspect_jwt_tokens: bool,

    // --- what upstream and downstream see (SPEC §1 step 6, §4) ---
    pub upstream_access_token_header: UpstreamTokenHeader,
    /// `authenticated_groups_claim` (first, when set), then `upstream_headers_claims`
    /// paired with `upstream_headers_names` by position, then `upstream_headers`.
    pub upstream_headers: Vec<ClaimHeader>,
    /// `downstream_access_token_header`: the response header that hands the caller the
    /// access token (same forms as the upstream one).
    pub downstream_access_token_header: Option<UpstreamTokenHeader>,
    /// `downstream_headers_claims` paired with `downstream_headers_names`, then
    /// `downstream_headers`: claims sent back to the caller as response headers.
    pub downstream_headers: Vec<ClaimHeader>,
    /// `token_headers_replay` when `token_headers_grants` names `client_credentials`
    /// (else empty): headers of the token endpoint's answer the caller gets back, under
    /// `token_headers_prefix` + the name.
    pub token_headers_replay: Vec<String>,
    /// `token_headers_prefix`; empty for none.
    pub token_headers_prefix: String,
    /// Default false.
    pub display_errors: bool,
    /// `unauthorized_redirect_uri[0]`: a 401 becomes a 302 to it.
    pub unauthorized_redirect_uri: Option<String>,
    /// `forbidden_redirect_uri[0]`: a 403 becomes a 302 to it.
    pub forbidden_redirect_uri: Option<String>,
    /// `unexpected_redirect_uri[0]`: the plugin's 500 and 503 become a 302 to it.
    pub unexpected_redirect_uri: Option<String>,
    /// Default true.
    pub expose_error_code: bool,
    /// Default `Unauthorized`.
    pub unauthorized_error_message: String,
    /// Default `Forbidden`.
    pub forbidden_error_message: String,

    /// Where the plugin's `config` block starts.
    pub mark: Mark,
}

impl OidcConfig {
    pub fn uses(&self, method: AuthMethod) -> bool {
        self.auth_methods.contains(&method)
    }

    /// Whether a method in use reads the request body (credentials, a bearer token, or
    /// `token_post_args_client` values).
    pub fn reads_body(&self) -> bool {
        (self.uses(AuthMethod::ClientCredentials)
            && (self.client_credentials_param_type.contains(&CredentialLocation::Body)
                || !self.token_post_args_client.is_empty()))
            || self.reads_bearer_from(BearerLocation::Body)
            || (self.takes_introspection_values() && self.introspection_client_args.iter().any(|a| !a.from_header))
    }

    /// Whether the caller's request supplies values to the token request.
    pub fn takes_client_token_values(&self) -> bool {
        self.uses(AuthMethod::ClientCredentials)
            && (!self.token_post_args_client.is_empty() || !self.token_headers_client.is_empty())
    }

    /// Whether a caller's token is introspected (the `introspection` method, or
    /// `introspect_jwt_tokens` with `bearer`) with values from its request.
    pub fn takes_introspection_values(&self) -> bool {
        (self.uses(AuthMethod::Introspection) || self.introspect_jwt_tokens)
            && (!self.introspection_client_args.is_empty() || !self.introspection_headers_client.is_empty())
    }

    /// Whether a method that takes the caller's own token (`bearer`, `introspection`)
    /// is on.
    pub fn takes_bearer_tokens(&self) -> bool {
        self.uses(AuthMethod::Bearer) || self.uses(AuthMethod::Introspection)
    }

    /// The headers besides `Authorization` this instance reads a caller's token from
    /// ([`Self::bearer_token_headers`] when the `header` location is read, else none):
    /// what `hide_credentials` drops with `Authorization`.
    pub fn token_headers_read(&self) -> &[String] {
        if self.reads_bearer_from(BearerLocation::Header) {
            &self.bearer_token_headers
        } else {
            &[]
        }
    }

    /// Whether a method that takes the caller's own token is on and reads it from
    /// `location`.
    pub fn reads_bearer_from(&self, location: BearerLocation) -> bool {
        self.takes_bearer_tokens() && self.bearer_token_param_type.contains(&location)
    }

    /// Whether a reload that turned `self` into `new` leaves the instance as it was, so
    /// the running instance — its discovery, keys and token caches — carries on. Every
    /// setting counts; where the plugin sits in the file does not, and two salts
    /// generated at load time are interchangeable (neither was written in the file).
    pub fn unchanged_by(&self, new: &OidcConfig) -> bool {
        self.settings() == new.settings()
    }

    /// The configuration as [`OidcConfig::unchanged_by`] compares it: no position, and
    /// a generated salt blanked (a configured one stays, and differs from any
    /// generated one). A reload keys the running instances by it, and
    /// looks each new one up.
    pub fn settings(&self) -> OidcConfig {
        let mut c = self.clone();
        c.mark = Mark::default();
        if c.cache_tokens_salt.is_generated() {
            c.cache_tokens_salt = CacheSalt { value: Secret::new(String::new()), generated: true };
        }
        c
    }

    /// Why a token does not meet `claims_forbidden`, `scopes_required`,
    /// `audience_required`, `groups_required` or `roles_required` (the 403 reason, checked
    /// in that order, as Kong does), or `None` when it meets them all. `None` for the
    /// token: an opaque token, whose claims cannot be read, meets none of them (a rule
    /// that cannot be checked must not let it through).
    pub fn unmet_requirement(&self, token: Option<&crate::jose::Claims>) -> Option<crate::error::AuthReason> {
        use crate::error::AuthReason;
        if !self.claims_forbidden.is_empty() {
            let has_forbidden = |t: &crate::jose::Claims| {
                self.claims_forbidden.iter().any(|c| t.claim(c).is_some_and(|v| v.as_bool() != Some(false)))
            };
            if token.is_none_or(has_forbidden) {
                return Some(AuthReason::ForbiddenClaim);
            }
        }
        [
            (&self.scopes_required, &self.scopes_claim, AuthReason::InsufficientScope),
            (&self.audience_required, &self.audience_claim, AuthReason::AudienceMismatch),
            (&self.groups_required, &self.groups_claim, AuthReason::GroupsMissing),
            (&self.roles_required, &self.roles_claim, AuthReason::RolesMissing),
        ]
        .into_iter()
        .find(|(required, claim, _)| !crate::jose::requirement_met(required, token.and_then(|t| t.claim_path(claim))))
        .map(|(_, _, reason)| reason)
    }

    /// The client authentication the file asks for, before discovery is consulted
    /// (SPEC §1 step 4): `token_endpoint_auth_method`, else `client_auth[0]`.
    pub fn configured_client_auth(&self) -> Option<ClientAuthMethod> {
        self.token_endpoint_auth_method.or_else(|| self.client_auth.first().copied())
    }

    /// Whether a setting reads the access token's claims, so that an opaque token the
    /// IdP issues is introspected to read them.
    pub fn needs_claims(&self) -> bool {
        !self.claims_forbidden.is_empty()
            || !self.scopes_required.is_empty()
            || !self.audience_required.is_empty()
            || !self.groups_required.is_empty()
            || !self.roles_required.is_empty()
            // The key's JWK needs no claims: an opaque token is not introspected for it.
            || self.upstream_headers.iter().any(|h| h.kind != ClaimKind::AccessTokenJwk)
            || self.downstream_headers.iter().any(|h| h.kind != ClaimKind::AccessTokenJwk)
            || !self.consumer_claim.is_empty()
    }

    /// Whether `*_access_token_jwk_header` sends the verifying key's JWK.
    pub fn sends_key_jwk(&self) -> bool {
        self.upstream_headers.iter().chain(&self.downstream_headers).any(|h| h.kind == ClaimKind::AccessTokenJwk)
    }

    /// Where a refusal of this status sends the caller instead (302, Kong's
    /// `*_redirect_uri`): 401 `unauthorized_redirect_uri`, 403 `forbidden_redirect_uri`,
    /// a 5xx of the plugin's `unexpected_redirect_uri`.
    pub fn redirect_for(&self, status: u16) -> Option<&str> {
        match status {
            401 => self.unauthorized_redirect_uri.as_deref(),
            403 => self.forbidden_redirect_uri.as_deref(),
            500..=599 => self.unexpected_redirect_uri.as_deref(),
            _ => None,
        }
    }

    /// Whether `introspection_headers_names` sets `Authorization`, which then authenticates
    /// introspection requests in place of the plugin's client (Kong's rule).
    pub fn introspection_authorized(&self) -> bool {
        self.introspection_headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    }

    /// The plugin's own client (`client_id[0]` and `client_secret[0]`), which
    /// authenticates at the introspection endpoint; `None` when not configured.
    pub fn own_client(&self) -> Option<(&str, &Secret)> {
        Some((self.client_id.first()?.as_str(), self.client_secret.first()?))
    }
}

/// The discovery URL for `issuer` (SPEC §3).
pub fn discovery_url(issuer: &str) -> String {
    const OIDC: &str = "/.well-known/openid-configuration";
    const OAUTH: &str = "/.well-known/oauth-authorization-server";
    let trimmed = issuer.trim_end_matches('/');
    if trimmed.ends_with(OIDC) || trimmed.ends_with(OAUTH) {
        trimmed.to_string()
    } else {
        format!("{trimmed}{OIDC}")
    }
}

// ----- Kong's field list -----

/// A Kong schema type, as its validator checks it.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    /// Integer or float.
    Num,
    Int,
    Strs,
    Enum(&'static [&'static str]),
    Enums(&'static [&'static str]),
    Record,
    Records,
    /// A list of claim paths, each a list of strings (`consumer_claims`).
    Paths,
}

/// Kong's default for a field, to tell "written as Kong's default" from "set".
#[derive(Clone, Copy)]
enum Dflt {
    None,
    Bool(bool),
    Num(f64),
    Str(&'static str),
    Strs(&'static [&'static str]),
}

struct Field {
    name: &'static str,
    ty: Ty,
    default: Dflt,
}

const fn f(name: &'static str, ty: Ty, default: Dflt) -> Field {
    Field { name, ty, default }
}

const GRANTS: &[&str] = &[
    "authorization_code",
    "bearer",
    "client_credentials",
    "introspection",
    "kong_oauth2",
    "password",
    "refresh_token",
    "session",
    "userinfo",
];
const PARAM_TYPES: &[&str] = &["header", "query", "body"];
const BEARER_PARAM_TYPES: &[&str] = &["header", "query", "body", "cookie"];
const CLIENT_AUTHS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
    "none",
];
const ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];
const SAME_SITE: &[&str] = &["Default", "Lax", "None", "Strict"];
const IGNORE_SIGNATURE: &[&str] =
    &["authorization_code", "client_credentials", "introspection", "password", "refresh_token", "session", "userinfo"];
const POP: &[&str] = &["off", "optional", "strict"];
const SESSION_HEADERS: &[&str] =
    &["absolute-timeout", "audience", "id", "idling-timeout", "rolling-timeout", "subject", "timeout"];

#[rustfmt::skip]
const FIELDS: &[Field] = &[
    f("anonymous", Ty::Str, Dflt::None),
    f("audience", Ty::Strs, Dflt::None),
    f("audience_claim", Ty::Strs, Dflt::Strs(&["aud"])),
    f("audience_required", Ty::Strs, Dflt::None),
    f("auth_methods", Ty::Enums(GRANTS), Dflt::Strs(GRANTS)),
    f("authenticated_groups_claim", Ty::Strs, Dflt::None),
    f("authorization_cookie_domain", Ty::Str, Dflt::None),
    f("authorization_cookie_http_only", Ty::Bool, Dflt::Bool(true)),
    f("authorization_cookie_name", Ty::Str, Dflt::Str("authorization")),
    f("authorization_cookie_path", Ty::Str, Dflt::Str("/")),
    f("authorization_cookie_same_site", Ty::Enum(SAME_SITE), Dflt::Str("Default")),
    f("authorization_cookie_secure", Ty::Bool, Dflt::None),
    f("authorization_endpoint", Ty::Str, Dflt::None),
    f("authorization_query_args_client", Ty::Strs, Dflt::None),
    f("authorization_query_args_names", Ty::Strs, Dflt::None),
    f("authorization_query_args_values", Ty::Strs, Dflt::None),
    f("authorization_rolling_timeout", Ty::Num, Dflt::Num(600.0)),
    f("bearer_token_cookie_name", Ty::Str, Dflt::None),
    f("bearer_token_header_name", Ty::Str, Dflt::None),
    f("bearer_token_param_type", Ty::Enums(BEARER_PARAM_TYPES), Dflt::Strs(PARAM_TYPES)),
    f("by_username_ignore_case", Ty::Bool, Dflt::Bool(false)),
    f("cache_introspection", Ty::Bool, Dflt::Bool(true)),
    f("cache_token_exchange", Ty::Bool, Dflt::Bool(true)),
    f("cache_tokens", Ty::Bool, Dflt::Bool(true)),
    f("cache_tokens_salt", Ty::Str, Dflt::None),
    f("cache_ttl", Ty::Num, Dflt::Num(3600.0)),
    f("cache_ttl_max", Ty::Num, Dflt::None),
    f("cache_ttl_min", Ty::Num, Dflt::None),
    f("cache_ttl_neg", Ty::Num, Dflt::None),
    f("cache_ttl_resurrect", Ty::Num, Dflt::None),
    f("cache_user_info", Ty::Bool, Dflt::Bool(true)),
    f("claims_forbidden", Ty::Strs, Dflt::None),
    f("client_alg", Ty::Enums(ALGS), Dflt::None),
    f("client_arg", Ty::Str, Dflt::Str("client_id")),
    f("client_auth", Ty::Enums(CLIENT_AUTHS), Dflt::None),
    f("client_credentials_param_type", Ty::Enums(PARAM_TYPES), Dflt::Strs(PARAM_TYPES)),
    f("client_id", Ty::Strs, Dflt::None),
    f("client_jwk", Ty::Records, Dflt::None),
    f("client_secret", Ty::Strs, Dflt::None),
    f("cluster_cache_items", Ty::Enums(&["introspection", "tokens"]), Dflt::Strs(&["introspection"])),
    f("cluster_cache_redis", Ty::Record, Dflt::None),
    f("cluster_cache_strategy", Ty::Enum(&["off", "redis"]), Dflt::Str("off")),
    f("consumer_by", Ty::Enums(&["custom_id", "id", "username"]), Dflt::Strs(&["custom_id", "username"])),
    f("consumer_claim", Ty::Strs, Dflt::None),
    f("consumer_claims", Ty::Paths, Dflt::None),
    f("consumer_groups_claim", Ty::Strs, Dflt::None),
    f("consumer_groups_optional", Ty::Bool, Dflt::Bool(false)),
    f("consumer_optional", Ty::Bool, Dflt::Bool(false)),
    f("credential_claim", Ty::Strs, Dflt::Strs(&["sub"])),
    f("disable_session", Ty::Enums(GRANTS), Dflt::None),
    f("discovery_headers_names", Ty::Strs, Dflt::None),
    f("discovery_headers_values", Ty::Strs, Dflt::None),
    f("display_errors", Ty::Bool, Dflt::Bool(false)),
    f("domains", Ty::Strs, Dflt::None),
    f("downstream_access_token_header", Ty::Str, Dflt::None),
    f("downstream_access_token_jwk_header", Ty::Str, Dflt::None),
    f("downstream_headers", Ty::Records, Dflt::None),
    f("downstream_headers_claims", Ty::Strs, Dflt::None),
    f("downstream_headers_names", Ty::Strs, Dflt::None),
    f("downstream_id_token_header", Ty::Str, Dflt::None),
    f("downstream_id_token_jwk_header", Ty::Str, Dflt::None),
    f("downstream_introspection_header", Ty::Str, Dflt::None),
    f("downstream_introspection_jwt_header", Ty::Str, Dflt::None),
    f("downstream_refresh_token_header", Ty::Str, Dflt::None),
    f("downstream_session_id_header", Ty::Str, Dflt::None),
    f("downstream_user_info_header", Ty::Str, Dflt::None),
    f("downstream_user_info_jwt_header", Ty::Str, Dflt::None),
    f("dpop_proof_lifetime", Ty::Num, Dflt::Num(300.0)),
    f("dpop_use_nonce", Ty::Bool, Dflt::Bool(false)),
    f("enable_hs_signatures", Ty::Bool, Dflt::Bool(false)),
    f("end_session_endpoint", Ty::Str, Dflt::None),
    f("expose_error_code", Ty::Bool, Dflt::Bool(true)),
    f("extra_jwks_uris", Ty::Strs, Dflt::None),
    f("forbidden_destroy_session", Ty::Bool, Dflt::Bool(true)),
    f("forbidden_error_message", Ty::Str, Dflt::Str("Forbidden")),
    f("forbidden_redirect_uri", Ty::Strs, Dflt::None),
    f("groups_claim", Ty::Strs, Dflt::Strs(&["groups"])),
    f("groups_required", Ty::Strs, Dflt::None),
    f("hide_credentials", Ty::Bool, Dflt::Bool(false)),
    f("http_proxy", Ty::Str, Dflt::None),
    f("http_proxy_authorization", Ty::Str, Dflt::None),
    f("http_version", Ty::Num, Dflt::Num(1.1)),
    f("https_proxy", Ty::Str, Dflt::None),
    f("https_proxy_authorization", Ty::Str, Dflt::None),
    f("id_token_param_name", Ty::Str, Dflt::None),
    f("id_token_param_type", Ty::Enums(PARAM_TYPES), Dflt::Strs(PARAM_TYPES)),
    f("ignore_signature", Ty::Enums(IGNORE_SIGNATURE), Dflt::Strs(&[])),
    f("introspect_jwt_tokens", Ty::Bool, Dflt::Bool(false)),
    f("introspection_accept", Ty::Enum(&["application/json", "application/jwt", "application/token-introspection+jwt"]), Dflt::Str("application/json")),
    f("introspection_check_active", Ty::Bool, Dflt::Bool(true)),
    f("introspection_endpoint", Ty::Str, Dflt::None),
    f("introspection_endpoint_auth_method", Ty::Enum(CLIENT_AUTHS), Dflt::None),
    f("introspection_headers_client", Ty::Strs, Dflt::None),
    f("introspection_headers_names", Ty::Strs, Dflt::None),
    f("introspection_headers_values", Ty::Strs, Dflt::None),
    f("introspection_hint", Ty::Str, Dflt::Str("access_token")),
    f("introspection_post_args_client", Ty::Strs, Dflt::None),
    f("introspection_post_args_client_headers", Ty::Strs, Dflt::None),
    f("introspection_post_args_names", Ty::Strs, Dflt::None),
    f("introspection_post_args_values", Ty::Strs, Dflt::None),
    f("introspection_token_param_name", Ty::Str, Dflt::Str("token")),
    f("issuer", Ty::Str, Dflt::None),
    f("issuers_allowed", Ty::Strs, Dflt::None),
    f("jwks_endpoint", Ty::Str, Dflt::None),
    f("jwt_session_claim", Ty::Str, Dflt::Str("sid")),
    f("jwt_session_cookie", Ty::Str, Dflt::None),
    f("keepalive", Ty::Bool, Dflt::Bool(true)),
    f("leeway", Ty::Num, Dflt::Num(0.0)),
    f("login_action", Ty::Enum(&["redirect", "response", "upstream"]), Dflt::Str("upstream")),
    f("login_methods", Ty::Enums(GRANTS), Dflt::Strs(&["authorization_code"])),
    f("login_redirect_mode", Ty::Enum(&["fragment", "query"]), Dflt::Str("fragment")),
    f("login_redirect_uri", Ty::Strs, Dflt::None),
    f("login_tokens", Ty::Enums(&["access_token", "id_token", "introspection", "refresh_token", "tokens"]), Dflt::Strs(&["id_token"])),
    f("logout_methods", Ty::Enums(&["DELETE", "GET", "POST"]), Dflt::Strs(&["DELETE", "POST"])),
    f("logout_post_arg", Ty::Str, Dflt::None),
    f("logout_query_arg", Ty::Str, Dflt::None),
    f("logout_redirect_uri", Ty::Strs, Dflt::None),
    f("logout_revoke", Ty::Bool, Dflt::Bool(false)),
    f("logout_revoke_access_token", Ty::Bool, Dflt::Bool(true)),
    f("logout_revoke_refresh_token", Ty::Bool, Dflt::Bool(true)),
    f("logout_uri_suffix", Ty::Str, Dflt::None),
    f("max_age", Ty::Num, Dflt::None),
    f("mtls_introspection_endpoint", Ty::Str, Dflt::None),
    f("mtls_revocation_endpoint", Ty::Str, Dflt::None),
    f("mtls_token_endpoint", Ty::Str, Dflt::None),
    f("no_proxy", Ty::Str, Dflt::None),
    f("password_param_type", Ty::Enums(PARAM_TYPES), Dflt::Strs(PARAM_TYPES)),
    f("preserve_query_args", Ty::Bool, Dflt::Bool(false)),
    f("principals", Ty::Record, Dflt::None),
    f("proof_of_possession_auth_methods_validation", Ty::Bool, Dflt::Bool(true)),
    f("proof_of_possession_dpop", Ty::Enum(POP), Dflt::Str("off")),
    f("proof_of_possession_mtls", Ty::Enum(POP), Dflt::Str("off")),
    f("proof_of_possession_mtls_from_header", Ty::Record, Dflt::None),
    f("pushed_authorization_request_endpoint", Ty::Str, Dflt::None),
    f("pushed_authorization_request_endpoint_auth_method", Ty::Enum(CLIENT_AUTHS), Dflt::None),
    f("redirect_uri", Ty::Strs, Dflt::None),
    f("redis", Ty::Record, Dflt::None),
    f("rediscovery_lifetime", Ty::Num, Dflt::Num(30.0)),
    f("refresh_token_param_name", Ty::Str, Dflt::None),
    f("refresh_token_param_type", Ty::Enums(PARAM_TYPES), Dflt::Strs(PARAM_TYPES)),
    f("refresh_tokens", Ty::Bool, Dflt::Bool(true)),
    f("require_proof_key_for_code_exchange", Ty::Bool, Dflt::None),
    f("require_pushed_authorization_requests", Ty::Bool, Dflt::None),
    f("require_signed_request_object", Ty::Bool, Dflt::None),
    f("resolve_distributed_claims", Ty::Bool, Dflt::Bool(false)),
    f("response_mode", Ty::Enum(&["form_post", "form_post.jwt", "fragment", "fragment.jwt", "jwt", "query", "query.jwt"]), Dflt::Str("query")),
    f("response_type", Ty::Strs, Dflt::Strs(&["code"])),
    f("reverify", Ty::Bool, Dflt::Bool(false)),
    f("revocation_endpoint", Ty::Str, Dflt::None),
    f("revocation_endpoint_auth_method", Ty::Enum(CLIENT_AUTHS), Dflt::None),
    f("revocation_token_param_name", Ty::Str, Dflt::Str("token")),
    f("roles_claim", Ty::Strs, Dflt::Strs(&["roles"])),
    f("roles_required", Ty::Strs, Dflt::None),
    f("run_on_preflight", Ty::Bool, Dflt::Bool(true)),
    f("scopes", Ty::Strs, Dflt::Strs(&["openid"])),
    f("scopes_claim", Ty::Strs, Dflt::Strs(&["scope"])),
    f("scopes_required", Ty::Strs, Dflt::None),
    f("search_user_info", Ty::Bool, Dflt::Bool(false)),
    f("session_absolute_timeout", Ty::Num, Dflt::Num(86400.0)),
    f("session_audience", Ty::Str, Dflt::Str("default")),
    f("session_bind", Ty::Enums(&["ip", "scheme", "user-agent"]), Dflt::None),
    f("session_cookie_domain", Ty::Str, Dflt::None),
    f("session_cookie_http_only", Ty::Bool, Dflt::Bool(true)),
    f("session_cookie_name", Ty::Str, Dflt::Str("session")),
    f("session_cookie_path", Ty::Str, Dflt::Str("/")),
    f("session_cookie_same_site", Ty::Enum(SAME_SITE), Dflt::Str("Lax")),
    f("session_cookie_secure", Ty::Bool, Dflt::None),
    f("session_enforce_same_subject", Ty::Bool, Dflt::Bool(false)),
    f("session_hash_storage_key", Ty::Bool, Dflt::Bool(false)),
    f("session_hash_subject", Ty::Bool, Dflt::Bool(false)),
    f("session_idling_timeout", Ty::Num, Dflt::Num(900.0)),
    f("session_memcached_host", Ty::Str, Dflt::Str("127.0.0.1")),
    f("session_memcached_port", Ty::Int, Dflt::Num(11211.0)),
    f("session_memcached_prefix", Ty::Str, Dflt::None),
    f("session_memcached_socket", Ty::Str, Dflt::None),
    f("session_memcached_ssl", Ty::Bool, Dflt::Bool(false)),
    f("session_memcached_ssl_verify", Ty::Bool, Dflt::Bool(false)),
    f("session_remember", Ty::Bool, Dflt::Bool(false)),
    f("session_remember_absolute_timeout", Ty::Num, Dflt::Num(2592000.0)),
    f("session_remember_cookie_name", Ty::Str, Dflt::Str("remember")),
    f("session_remember_rolling_timeout", Ty::Num, Dflt::Num(604800.0)),
    f("session_request_headers", Ty::Enums(SESSION_HEADERS), Dflt::None),
    f("session_response_headers", Ty::Enums(SESSION_HEADERS), Dflt::None),
    f("session_rolling_timeout", Ty::Num, Dflt::Num(3600.0)),
    f("session_secret", Ty::Str, Dflt::None),
    f("session_storage", Ty::Enum(&["cookie", "memcache", "memcached", "redis"]), Dflt::Str("cookie")),
    f("session_store_metadata", Ty::Bool, Dflt::Bool(false)),
    f("ssl_verify", Ty::Bool, Dflt::Bool(false)),
    f("timeout", Ty::Num, Dflt::Num(10000.0)),
    f("tls_client_auth_cert_id", Ty::Str, Dflt::None),
    f("tls_client_auth_ssl_verify", Ty::Bool, Dflt::Bool(true)),
    f("token_cache_key_include_scope", Ty::Bool, Dflt::Bool(false)),
    f("token_endpoint", Ty::Str, Dflt::None),
    f("token_endpoint_auth_method", Ty::Enum(CLIENT_AUTHS), Dflt::None),
    f("token_exchange", Ty::Record, Dflt::None),
    f("token_exchange_endpoint", Ty::Str, Dflt::None),
    f("token_headers_client", Ty::Strs, Dflt::None),
    f("token_headers_grants", Ty::Enums(&["authorization_code", "client_credentials", "password", "refresh_token"]), Dflt::None),
    f("token_headers_names", Ty::Strs, Dflt::None),
    f("token_headers_prefix", Ty::Str, Dflt::None),
    f("token_headers_replay", Ty::Strs, Dflt::None),
    f("token_headers_values", Ty::Strs, Dflt::None),
    f("token_post_args_client", Ty::Strs, Dflt::None),
    f("token_post_args_names", Ty::Strs, Dflt::None),
    f("token_post_args_values", Ty::Strs, Dflt::None),
    f("unauthorized_destroy_session", Ty::Bool, Dflt::Bool(true)),
    f("unauthorized_error_message", Ty::Str, Dflt::Str("Unauthorized")),
    f("unauthorized_redirect_uri", Ty::Strs, Dflt::None),
    f("unexpected_redirect_uri", Ty::Strs, Dflt::None),
    f("upstream_access_token_header", Ty::Str, Dflt::Str("authorization:bearer")),
    f("upstream_access_token_jwk_header", Ty::Str, Dflt::None),
    f("upstream_headers", Ty::Records, Dflt::None),
    f("upstream_headers_claims", Ty::Strs, Dflt::None),
    f("upstream_headers_names", Ty::Strs, Dflt::None),
    f("upstream_id_token_header", Ty::Str, Dflt::None),
    f("upstream_id_token_jwk_header", Ty::Str, Dflt::None),
    f("upstream_introspection_header", Ty::Str, Dflt::None),
    f("upstream_introspection_jwt_header", Ty::Str, Dflt::None),
    f("upstream_refresh_token_header", Ty::Str, Dflt::None),
    f("upstream_session_id_header", Ty::Str, Dflt::None),
    f("upstream_user_info_header", Ty::Str, Dflt::None),
    f("upstream_user_info_jwt_header", Ty::Str, Dflt::None),
    f("userinfo_accept", Ty::Enum(&["application/json", "application/jwt"]), Dflt::Str("application/json")),
    f("userinfo_endpoint", Ty::Str, Dflt::None),
    f("userinfo_headers_client", Ty::Strs, Dflt::None),
    f("userinfo_headers_names", Ty::Strs, Dflt::None),
    f("userinfo_headers_values", Ty::Strs, Dflt::None),
    f("userinfo_query_args_client", Ty::Strs, Dflt::None),
    f("userinfo_query_args_names", Ty::Strs, Dflt::None),
    f("userinfo_query_args_values", Ty::Strs, Dflt::None),
    f("using_pseudo_issuer", Ty::Bool, Dflt::Bool(false)),
    f("verify_claims", Ty::Bool, Dflt::Bool(true)),
    f("verify_nonce", Ty::Bool, Dflt::Bool(true)),
    f("verify_parameters", Ty::Bool, Dflt::Bool(false)),
    f("verify_signature", Ty::Bool, Dflt::Bool(true)),
];

/// What ringgate does with a Kong field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Read into [`OidcConfig`] (or checked there, for the conditional ones).
    Typed,
    /// Accepted with a warning when set to anything but Kong's default.
    Warn(&'static str),
    /// A load error when set to anything but Kong's default.
    Error(&'static str),
}

const TYPED: &[&str] = &[
    "issuer",
    "using_pseudo_issuer",
    "rediscovery_lifetime",
    "discovery_headers_names",
    "discovery_headers_values",
    "extra_jwks_uris",
    "jwks_endpoint",
    "auth_methods",
    "client_credentials_param_type",
    "bearer_token_param_type",
    "bearer_token_cookie_name",
    "bearer_token_header_name",
    "client_id",
    "client_secret",
    "client_arg",
    "client_auth",
    "client_alg",
    "token_endpoint",
    "token_endpoint_auth_method",
    "scopes",
    "token_post_args_names",
    "token_post_args_values",
    "token_headers_names",
    "token_headers_values",
    "verify_parameters",
    "timeout",
    "keepalive",
    "http_version",
    "ssl_verify",
    "http_proxy",
    "http_proxy_authorization",
    "https_proxy",
    "https_proxy_authorization",
    "no_proxy",
    "cache_tokens",
    "cache_tokens_salt",
    "token_cache_key_include_scope",
    "cache_ttl",
    "cache_ttl_min",
    "cache_ttl_max",
    "cache_ttl_neg",
    "cache_ttl_resurrect",
    "verify_signature",
    "verify_claims",
    "ignore_signature",
    "enable_hs_signatures",
    "leeway",
    "max_age",
    "proof_of_possession_dpop",
    "proof_of_possession_mtls",
    "dpop_proof_lifetime",
    "issuers_allowed",
    "scopes_required",
    "scopes_claim",
    "audience_required",
    "audience_claim",
    "groups_required",
    "groups_claim",
    "roles_required",
    "roles_claim",
    "claims_forbidden",
    "credential_claim",
    "consumer_claim",
    "consumer_claims",
    "consumer_by",
    "consumer_optional",
    "by_username_ignore_case",
    "anonymous",
    "introspection_endpoint",
    "introspection_endpoint_auth_method",
    "introspection_hint",
    "introspection_token_param_name",
    "introspection_headers_names",
    "introspection_headers_values",
    "introspection_post_args_names",
    "introspection_post_args_values",
    "introspection_post_args_client",
    "introspection_post_args_client_headers",
    "introspection_headers_client",
    "introspection_check_active",
    "cache_introspection",
    "introspection_accept",
    "upstream_access_token_header",
    "downstream_access_token_header",
    "upstream_introspection_header",
    "downstream_introspection_header",
    "upstream_introspection_jwt_header",
    "downstream_introspection_jwt_header",
    "upstream_access_token_jwk_header",
    "downstream_access_token_jwk_header",
    "token_headers_replay",
    "token_headers_prefix",
    "token_headers_grants",
    "downstream_headers_claims",
    "downstream_headers_names",
    "upstream_headers_claims",
    "upstream_headers_names",
    "authenticated_groups_claim",
    "token_post_args_client",
    "token_headers_client",
    "hide_credentials",
    "run_on_preflight",
    "display_errors",
    "unauthorized_redirect_uri",
    "forbidden_redirect_uri",
    "unexpected_redirect_uri",
    "expose_error_code",
    "unauthorized_error_message",
    "forbidden_error_message",
    "upstream_headers",
    "downstream_headers",
    // Conditional: classified in code, next to the fields they depend on.
    "login_action",
    "introspect_jwt_tokens",
    "principals",
    "dpop_use_nonce",
    "proof_of_possession_auth_methods_validation",
    "proof_of_possession_mtls_from_header",
];

const AUTH_CODE_ONLY: &str = "authorization code flow only, which ringgate does not run";
const NO_SESSIONS: &str = "the 'session' method is not supported, so no session exists";

/// The classification table of the module doc, as code.
fn class_of(name: &str) -> Class {
    if TYPED.contains(&name) {
        return Class::Typed;
    }
    match name {
        "consumer_groups_claim" => Class::Error("consumer group mapping is not implemented"),
        "consumer_groups_optional" => Class::Warn("only acts with consumer group mapping, which is not implemented"),
        "domains" => Class::Warn("checks ID tokens, which ringgate does not use"),
        "token_exchange_endpoint" | "token_exchange" => {
            Class::Error("token exchange is not implemented; the upstream token would differ")
        }
        "cache_token_exchange" | "cache_user_info" => Class::Warn("caches a flow ringgate does not run"),
        _ if name.starts_with("upstream_") && name.ends_with("_header") => Class::Error(
            "upstream would miss this header; only the access token and introspection headers are implemented",
        ),
        _ if name.starts_with("downstream_") => Class::Error("the client would miss this response header"),
        "unauthorized_destroy_session" | "forbidden_destroy_session" => Class::Warn("ringgate keeps no sessions"),
        "logout_uri_suffix" | "logout_query_arg" | "logout_post_arg" => {
            Class::Error("Kong answers matching requests as logouts; ringgate would proxy them")
        }
        "logout_methods"
        | "logout_redirect_uri"
        | "logout_revoke"
        | "logout_revoke_access_token"
        | "logout_revoke_refresh_token" => Class::Warn("only acts on a logout request, which ringgate does not handle"),
        "login_methods" | "login_tokens" | "login_redirect_mode" | "login_redirect_uri" => {
            Class::Warn("only acts through login_action")
        }
        _ if name.starts_with("userinfo_") => Class::Warn("the 'userinfo' method is not supported"),
        "search_user_info" => Class::Warn("the user info endpoint is never called"),
        "resolve_distributed_claims" => Class::Warn("distributed claims are not resolved (absent claims fail closed)"),
        _ if name.starts_with("session_") => Class::Warn(NO_SESSIONS),
        "disable_session" | "jwt_session_claim" | "jwt_session_cookie" | "reverify" => Class::Warn(NO_SESSIONS),
        _ if name.starts_with("authorization_") => Class::Warn(AUTH_CODE_ONLY),
        "audience" => Class::Warn(
            "Kong sends it to the authorization endpoint only, never in a token request; an IdP that wants an \
             audience with the client credentials grant (Auth0) gets it from token_post_args_names: [audience] \
             and token_post_args_values",
        ),
        "redirect_uri"
        | "response_mode"
        | "response_type"
        | "preserve_query_args"
        | "verify_nonce"
        | "require_proof_key_for_code_exchange"
        | "require_pushed_authorization_requests"
        | "require_signed_request_object"
        | "pushed_authorization_request_endpoint"
        | "pushed_authorization_request_endpoint_auth_method" => Class::Warn(AUTH_CODE_ONLY),
        "id_token_param_name"
        | "id_token_param_type"
        | "refresh_token_param_name"
        | "refresh_token_param_type"
        | "password_param_type"
        | "refresh_tokens" => Class::Warn("an input of a method ringgate does not support"),
        "end_session_endpoint"
        | "revocation_endpoint"
        | "revocation_endpoint_auth_method"
        | "revocation_token_param_name" => Class::Warn("logout only"),
        "mtls_token_endpoint"
        | "mtls_introspection_endpoint"
        | "mtls_revocation_endpoint"
        | "tls_client_auth_cert_id"
        | "tls_client_auth_ssl_verify" => {
            Class::Warn("only used with mTLS client authentication, which is not supported")
        }
        "client_jwk" => Class::Warn("only signs private_key_jwt assertions, which are not supported"),
        "cluster_cache_strategy" | "cluster_cache_items" | "cluster_cache_redis" | "redis" => {
            Class::Warn("shares introspection or session data only")
        }
        // Every name in FIELDS is covered above; a unit test keeps it so.
        _ => Class::Error("not classified"),
    }
}

// ----- the schema, for the Admin API -----

/// The JSON type of a Kong field, as the Admin API needs it to read form fields (all
/// strings on the wire) and to show defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Boolean,
    /// Integer or float.
    Number,
    Integer,
    /// A list (of strings, enum values or records).
    Array,
    Record,
}

/// A field's default as a response shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldDefault {
    /// No default: shown as `null`.
    None,
    Bool(bool),
    Num(f64),
    Str(&'static str),
    Strs(&'static [&'static str]),
}

/// One field of Kong's `openid-connect` config schema.
#[derive(Debug, Clone, Copy)]
pub struct FieldSchema {
    pub name: &'static str,
    pub kind: FieldKind,
    /// ringgate's default, which is Kong's except `ssl_verify` (true, see the module
    /// doc).
    pub default: FieldDefault,
}

/// Fields whose values are secrets: Kong encrypts them (`client_secret`,
/// `session_secret`), they authenticate to something (`*_proxy_authorization`), hold
/// private keys (`client_jwk`) or key the token cache (`cache_tokens_salt`). Inside
/// record fields (`redis`, `cluster_cache_redis`, `token_exchange`), keys naming a
/// password or secret are secrets too ([`is_secret_key`]).
pub const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "cache_tokens_salt",
    "session_secret",
    "http_proxy_authorization",
    "https_proxy_authorization",
    "client_jwk",
];

/// Whether a key inside a record field holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    key.contains("password") || key.contains("secret")
}

fn field_schema(f: &Field) -> FieldSchema {
    let kind = match f.ty {
        Ty::Str | Ty::Enum(_) => FieldKind::String,
        Ty::Bool => FieldKind::Boolean,
        Ty::Num => FieldKind::Number,
        Ty::Int => FieldKind::Integer,
        Ty::Strs | Ty::Enums(_) | Ty::Records | Ty::Paths => FieldKind::Array,
        Ty::Record => FieldKind::Record,
    };
    let default = match (f.name, f.default) {
        ("ssl_verify", _) => FieldDefault::Bool(true),
        (_, Dflt::None) => FieldDefault::None,
        (_, Dflt::Bool(b)) => FieldDefault::Bool(b),
        (_, Dflt::Num(n)) => FieldDefault::Num(n),
        (_, Dflt::Str(s)) => FieldDefault::Str(s),
        (_, Dflt::Strs(s)) => FieldDefault::Strs(s),
    };
    FieldSchema { name: f.name, kind, default }
}

/// Every field of the schema, in name order.
pub fn schema() -> impl Iterator<Item = FieldSchema> {
    FIELDS.iter().map(field_schema)
}

/// The schema of the field `name`, if Kong has one.
pub fn field(name: &str) -> Option<FieldSchema> {
    FIELDS.iter().find(|f| f.name == name).map(field_schema)
}

// ----- the compiler -----

/// Compiles one `openid-connect` plugin instance's `config`. On success returns the
/// config and the warnings (accepted keys with no effect), in file order; on failure
/// every error, in file order. `file` is the name errors are reported under.
pub fn compile(plugin: &Plugin, file: &str) -> Result<(OidcConfig, Vec<ConfigError>), Vec<ConfigError>> {
    let mut c = Compiler { file, errors: Vec::new(), warnings: Vec::new(), present: Vec::new() };
    let config = if plugin.name == PLUGIN_NAME {
        c.read(&plugin.config);
        c.build(&plugin.config)
    } else {
        c.error(plugin.mark, format!("plugin '{}' is not '{PLUGIN_NAME}'", plugin.name));
        None
    };
    let by_position = |e: &ConfigError| e.mark.map(|m| (m.line, m.column));
    match config {
        Some(config) if c.errors.is_empty() => {
            c.warnings.sort_by_key(by_position);
            Ok((config, c.warnings))
        }
        _ => {
            c.errors.sort_by_key(by_position);
            Err(c.errors)
        }
    }
}

/// A key that was given a non-null value of the right type.
struct Present<'a> {
    field: &'static Field,
    key_mark: Mark,
    node: &'a Node,
}

struct Compiler<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    present: Vec<Present<'a>>,
}

fn number(node: &Node) -> Option<f64> {
    match node.value {
        NodeValue::Int(n) => Some(n as f64),
        NodeValue::Float(x) if x.is_finite() => Some(x),
        _ => None,
    }
}

fn strings(node: &Node) -> impl Iterator<Item = (&str, Mark)> {
    let items: &[Node] = match &node.value {
        NodeValue::Seq(items) => items,
        _ => &[],
    };
    items.iter().filter_map(|n| match &n.value {
        NodeValue::String(s) => Some((s.as_str(), n.mark)),
        _ => None,
    })
}

/// True when `node` says what Kong's default says (lists compared as sets: Kong's
/// published defaults are sorted, its own order may differ).
fn is_default(node: &Node, default: Dflt) -> bool {
    match (default, &node.value) {
        (Dflt::Bool(d), NodeValue::Bool(b)) => d == *b,
        (Dflt::Num(d), _) => number(node) == Some(d),
        (Dflt::Str(d), NodeValue::String(s)) => d == s,
        (Dflt::Strs(d), NodeValue::Seq(items)) => {
            let mut given: Vec<&str> = strings(node).map(|(s, _)| s).collect();
            let mut want = d.to_vec();
            given.sort_unstable();
            want.sort_unstable();
            items.len() == given.len() && given == want
        }
        _ => unset_deep(node),
    }
}

/// Unset, or a record whose every field is unset: what a dump writes for a record
/// nobody set (`{certificate_header_name: null, ca_certificates: null}`).
fn unset_deep(node: &Node) -> bool {
    match &node.value {
        NodeValue::Map(entries) => entries.iter().all(|(_, _, v)| unset_deep(v)),
        _ => node.is_unset(),
    }
}

/// Levenshtein distance, for the "did you mean" hint.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn closest_field(key: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (edit_distance(key, f.name), f.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value that cannot split or end a header line.
fn is_header_value(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// An absolute `http(s)://host[:port][/path][?query]` URL without credentials or a
/// fragment: the shape of Kong's `typedefs.url` that ringgate can call.
fn check_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url.split_once("://").ok_or("expected http(s)://host[:port][/path]")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("scheme '{scheme}' is not http or https"));
    }
    if url.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err("contains whitespace or control characters".into());
    }
    if rest.contains('#') {
        return Err("a fragment has no meaning here".into());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    crate::config::split_authority(authority).map(|_| ())
}

/// Names in the token request body that carry the caller's identity or the grant.
const RESERVED_POST_ARGS: &[&str] =
    &["grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type"];
/// Names in the introspection request body besides the token's own parameter: its
/// hint and the plugin's client.
const INTROSPECTION_POST_ARGS: &[&str] =
    &["token_type_hint", "client_id", "client_secret", "client_assertion", "client_assertion_type"];
/// Headers of the token request that describe its framing, set by the HTTP client.
const RESERVED_HEADERS: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];
/// Headers of the upstream request the proxy writes itself (hop by hop, or forwarding).
const PROXY_HEADERS: &[&str] = &[
    "te",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "trailer",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-real-ip",
];

/// Why `name` (lower-cased `lower`) cannot be a header the plugin sets on `side` (a
/// response when `response`), or `None` when it can: not a header name, written by the
/// proxy itself, or the access token's own header.
fn set_header_refusal(
    name: &str,
    lower: &str,
    side: &str,
    token_header: Option<&UpstreamTokenHeader>,
    response: bool,
) -> Option<std::borrow::Cow<'static, str>> {
    if !is_token(name) {
        Some("is not a valid header name".into())
    } else if written_by_proxy(lower, response) {
        Some("is written by the proxy itself".into())
    } else if token_header.is_some_and(|t| t.name == lower) {
        Some(format!("already carries the access token ({side}_access_token_header)").into())
    } else {
        None
    }
}

/// Whether the proxy writes header `lower` itself (framing, hop by hop, forwarding), so
/// a setting may not name it; in a response (`response`) `Set-Cookie` too, which ringgate
/// writes for cookie hashing and sticky sessions.
fn written_by_proxy(lower: &str, response: bool) -> bool {
    RESERVED_HEADERS.contains(&lower) || PROXY_HEADERS.contains(&lower) || (response && lower == "set-cookie")
}

impl<'a> Compiler<'a> {
    fn error(&mut self, mark: Mark, message: impl Into<String>) {
        self.errors.push(ConfigError::at(self.file, mark, message));
    }

    fn warn(&mut self, mark: Mark, message: impl Into<String>) {
        self.warnings.push(ConfigError::at(self.file, mark, message));
    }

    // ----- pass 1: every key known, every value of its Kong type -----

    fn read(&mut self, config: &'a Node) {
        let entries = match &config.value {
            NodeValue::Map(entries) => entries,
            // The loader only keeps maps; anything else means no config at all.
            _ => return,
        };
        for (key, key_mark, node) in entries {
            let Some(field) = FIELDS.iter().find(|f| f.name == key) else {
                let hint = closest_field(key).map(|n| format!(" (did you mean '{n}'?)")).unwrap_or_default();
                self.error(*key_mark, format!("unknown key '{key}' in the openid-connect config{hint}"));
                continue;
            };
            if matches!(node.value, NodeValue::Null) {
                continue;
            }
            if self.type_check(field, node) {
                self.present.push(Present { field, key_mark: *key_mark, node });
            }
        }
    }

    fn type_check(&mut self, field: &Field, node: &Node) -> bool {
        let key = field.name;
        let (ok, expected) = match field.ty {
            Ty::Str => (matches!(node.value, NodeValue::String(_)), "a string".to_string()),
            Ty::Bool => (matches!(node.value, NodeValue::Bool(_)), "true or false".to_string()),
            Ty::Num => (number(node).is_some(), "a number".to_string()),
            Ty::Int => (matches!(node.value, NodeValue::Int(_)), "an integer".to_string()),
            Ty::Record => (matches!(node.value, NodeValue::Map(_)), "a map".to_string()),
            Ty::Enum(allowed) => {
                if let NodeValue::String(s) = &node.value {
                    if !allowed.contains(&s.as_str()) {
                        self.error(node.mark, format!("'{key}' must be one of {}, found '{s}'", allowed.join(", ")));
                        return false;
                    }
                    (true, String::new())
                } else {
                    (false, format!("one of {}", allowed.join(", ")))
                }
            }
            Ty::Strs | Ty::Enums(_) | Ty::Records | Ty::Paths => {
                let NodeValue::Seq(items) = &node.value else {
                    let what = match field.ty {
                        Ty::Records => "a list of maps",
                        Ty::Paths => "a list of claim paths",
                        _ => "a list of strings",
                    };
                    self.error(node.mark, format!("'{key}' must be {what}, found {}", node.kind()));
                    return false;
                };
                let mut all_ok = true;
                for item in items {
                    let item_ok = match (field.ty, &item.value) {
                        (Ty::Records, NodeValue::Map(_)) | (Ty::Strs, NodeValue::String(_)) => true,
                        (Ty::Paths, NodeValue::Seq(path)) => {
                            !path.is_empty() && path.iter().all(|n| matches!(n.value, NodeValue::String(_)))
                        }
                        (Ty::Enums(allowed), NodeValue::String(s)) => {
                            if !allowed.contains(&s.as_str()) {
                                self.error(
                                    item.mark,
                                    format!("'{key}' entries must be one of {}, found '{s}'", allowed.join(", ")),
                                );
                                all_ok = false;
                            }
                            true
                        }
                        _ => false,
                    };
                    if !item_ok {
                        let what = match field.ty {
                            Ty::Records => "maps",
                            Ty::Paths => "non-empty lists of strings",
                            _ => "strings",
                        };
                        self.error(item.mark, format!("'{key}' entries must be {what}, found {}", item.kind()));
                        all_ok = false;
                    }
                }
                (all_ok, String::new())
            }
        };
        if !ok && !expected.is_empty() {
            self.error(node.mark, format!("'{key}' must be {expected}, found {}", node.kind()));
        }
        ok
    }

    // ----- lookups into what pass 1 kept -----

    fn get(&self, name: &str) -> Option<&Present<'a>> {
        debug_assert!(FIELDS.iter().any(|f| f.name == name), "{name} is not a Kong field");
        self.present.iter().find(|p| p.field.name == name)
    }

    fn node(&self, name: &str) -> Option<&'a Node> {
        self.get(name).map(|p| p.node)
    }

    /// Where the key `name` is written, for a message about the setting as a whole
    /// (nowhere when absent).
    fn key_mark(&self, name: &str) -> Mark {
        self.get(name).map(|p| p.key_mark).unwrap_or_default()
    }

    fn boolean(&self, name: &str, default: bool) -> bool {
        match self.node(name).map(|n| &n.value) {
            Some(NodeValue::Bool(b)) => *b,
            _ => default,
        }
    }

    /// A typed string field; Kong's strings are never empty.
    fn string(&mut self, name: &str) -> Option<(String, Mark)> {
        let node = self.node(name)?;
        let NodeValue::String(s) = &node.value else { return None };
        if s.is_empty() {
            self.error(node.mark, format!("'{name}' must not be empty"));
            return None;
        }
        Some((s.clone(), node.mark))
    }

    /// A typed list of strings: `None` when absent (use the default), else the items;
    /// empty items are refused.
    fn list(&mut self, name: &str) -> Option<Vec<(String, Mark)>> {
        let node = self.node(name)?;
        let mut out = Vec::new();
        for (s, mark) in strings(node) {
            if s.is_empty() {
                self.error(mark, format!("'{name}' entries must not be empty"));
            } else {
                out.push((s.to_string(), mark));
            }
        }
        Some(out)
    }

    fn list_or(&mut self, name: &str, default: &[&str]) -> Vec<String> {
        match self.list(name) {
            Some(items) => items.into_iter().map(|(s, _)| s).collect(),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A number of seconds (or, with `scale`, of another unit) as a duration.
    fn duration(&mut self, name: &str, scale: f64) -> Option<Duration> {
        let node = self.node(name)?;
        let value = number(node)?;
        if value < 0.0 {
            self.error(node.mark, format!("'{name}' must not be negative, found {value}"));
            return None;
        }
        match Duration::try_from_secs_f64(value * scale) {
            Ok(d) => Some(d),
            Err(_) => {
                self.error(node.mark, format!("'{name}' is too large: {value}"));
                None
            }
        }
    }

    /// Two parallel lists (`*_names` / `*_values`) zipped, checked as HTTP headers when
    /// `headers` is set.
    fn pairs(&mut self, names: &str, values: &str, headers: bool) -> Vec<(String, String)> {
        let n = self.list(names).unwrap_or_default();
        let v = self.list(values).unwrap_or_default();
        if n.len() != v.len() {
            let mark = self.get(names).or_else(|| self.get(values)).map(|p| p.key_mark).unwrap_or_default();
            self.error(
                mark,
                format!("'{names}' has {} entries but '{values}' has {}; they pair up by position", n.len(), v.len()),
            );
            return Vec::new();
        }
        if headers {
            for (name, mark) in &n {
                if !is_token(name) {
                    self.error(*mark, format!("'{names}' entry '{name}' is not a valid header name"));
                } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    self.error(*mark, format!("'{names}' may not set '{name}': the HTTP client sets it"));
                }
            }
            for (value, mark) in &v {
                if !is_header_value(value) {
                    self.error(*mark, format!("'{values}' entries may not contain CR, LF or NUL"));
                }
            }
        }
        n.into_iter().zip(v).map(|((a, _), (b, _))| (a, b)).collect()
    }

    /// A `*_redirect_uri` list: its first entry, an http(s) URL. Kong picks the entry by
    /// the client in use; ringgate's plugin client is the first, so more entries are a
    /// warning.
    fn redirect_uri(&mut self, name: &str) -> Option<String> {
        let list = self.list(name)?;
        let (first, mark) = list.first()?.clone();
        if list.len() > 1 {
            let key_mark = self.key_mark(name);
            self.warn(
                key_mark,
                format!("'{name}' has {} entries; only the first is used (the plugin's first client's)", list.len()),
            );
        }
        // A page's fragment (`https://app/#/login`) is the browser's business: allowed.
        let checked = match first.split_once('#') {
            Some(_) if first.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) => {
                Err("contains whitespace or control characters".to_string())
            }
            Some((base, _)) => check_url(base),
            None => check_url(&first),
        };
        match checked {
            Ok(()) => Some(first),
            Err(why) => {
                self.error(mark, format!("'{name}' entry '{first}' is not a usable URL: {why}"));
                None
            }
        }
    }

    fn url(&mut self, name: &str) -> Option<String> {
        let (url, mark) = self.string(name)?;
        match check_url(&url) {
            Ok(()) => Some(url),
            Err(why) => {
                self.error(mark, format!("'{name}' is not a usable URL: {why}"));
                None
            }
        }
    }

    // ----- pass 2: typed values, classification, cross-field rules -----

    fn build(&mut self, config: &Node) -> Option<OidcConfig> {
        let auth_methods = self.auth_methods(config);
        let raw_methods: Vec<&str> = match self.node("auth_methods") {
            Some(node) => strings(node).map(|(s, _)| s).collect(),
            None => GRANTS.to_vec(),
        };
        self.classify(&raw_methods);

        let issuer = match self.string("issuer") {
            Some((issuer, mark)) => match check_url(&issuer) {
                Ok(()) if issuer.contains('?') => {
                    self.error(mark, "'issuer' may not have a query: the discovery path is appended to it");
                    None
                }
                Ok(()) => Some(issuer),
                Err(why) => {
                    self.error(mark, format!("'issuer' is not a usable URL: {why}"));
                    None
                }
            },
            None => {
                // Absent or null; a value of the wrong type was reported by pass 1.
                if config.get("issuer").is_none_or(|n| matches!(n.value, NodeValue::Null)) {
                    self.errors.push(ConfigError::missing(
                        self.file,
                        config.mark,
                        "issuer",
                        "'issuer' is required: the IdP's issuer URL or its discovery URL",
                    ));
                }
                None
            }
        };

        let client_credentials_param_type = self.locations(
            "client_credentials_param_type",
            &[
                ("header", CredentialLocation::Header),
                ("query", CredentialLocation::Query),
                ("body", CredentialLocation::Body),
            ],
        );
        let bearer_token_param_type = self.locations(
            "bearer_token_param_type",
            &[
                ("header", BearerLocation::Header),
                ("query", BearerLocation::Query),
                ("body", BearerLocation::Body),
                ("cookie", BearerLocation::Cookie),
            ],
        );
        let bearer_token_cookie_name = self.string("bearer_token_cookie_name").map(|(s, _)| s);
        let (bearer_token_headers, bearer_from_authorization) = match self.string("bearer_token_header_name") {
            None => (vec!["access-token".to_string(), "x-access-token".to_string()], true),
            Some((name, _)) if name.eq_ignore_ascii_case("authorization") => (Vec::new(), true),
            Some((name, mark)) => {
                let lower = name.to_ascii_lowercase();
                if !is_token(&name) {
                    self.error(mark, format!("'bearer_token_header_name' '{name}' is not a valid header name"));
                } else if RESERVED_HEADERS.contains(&lower.as_str()) {
                    self.error(mark, format!("'bearer_token_header_name' '{name}' is written by the proxy itself"));
                }
                (vec![lower], false)
            }
        };
        let uses_cc = auth_methods.contains(&AuthMethod::ClientCredentials);
        let uses_bearer =
            auth_methods.contains(&AuthMethod::Bearer) || auth_methods.contains(&AuthMethod::Introspection);
        if uses_cc && client_credentials_param_type.is_empty() {
            if let Some(p) = self.get("client_credentials_param_type") {
                let mark = p.node.mark;
                self.error(mark, "'client_credentials_param_type' is empty: client credentials would never be found");
            }
        }
        if uses_bearer {
            if bearer_token_param_type.is_empty() {
                if let Some(p) = self.get("bearer_token_param_type") {
                    let mark = p.node.mark;
                    self.error(mark, "'bearer_token_param_type' is empty: bearer tokens would never be found");
                }
            }
            if bearer_token_param_type.contains(&BearerLocation::Cookie) && bearer_token_cookie_name.is_none() {
                let mark = self.get("bearer_token_param_type").map(|p| p.node.mark).unwrap_or_default();
                self.error(mark, "'bearer_token_param_type' lists 'cookie' but 'bearer_token_cookie_name' is not set");
            }
        }

        let client_id: Vec<String> = self.list("client_id").unwrap_or_default().into_iter().map(|(s, _)| s).collect();
        let client_secret: Vec<Secret> =
            self.list("client_secret").unwrap_or_default().into_iter().map(|(s, _)| Secret(s)).collect();
        let client_arg = self.string("client_arg").map_or_else(|| "client_id".to_string(), |(s, _)| s);
        let client_auth: Vec<ClientAuthMethod> = self
            .node("client_auth")
            .map(|n| strings(n).filter_map(|(s, _)| ClientAuthMethod::parse(s)).collect())
            .unwrap_or_default();
        let client_alg: Vec<ClientAlg> = self
            .node("client_alg")
            .map(|n| {
                strings(n).filter_map(|(s, _)| CLIENT_ALGS.iter().find(|(a, _)| *a == s).map(|(_, a)| *a)).collect()
            })
            .unwrap_or_default();
        let token_endpoint_auth_method =
            self.string("token_endpoint_auth_method").and_then(|(s, _)| ClientAuthMethod::parse(&s));
        if uses_cc {
            self.check_client_auth(token_endpoint_auth_method, &client_auth, &client_alg);
        }
        let introspect_jwt_tokens =
            auth_methods.contains(&AuthMethod::Bearer) && self.boolean("introspect_jwt_tokens", false);
        // A configured `Authorization` authenticates introspection without the client.
        let introspection_authorized = self
            .list("introspection_headers_names")
            .unwrap_or_default()
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        if (client_id.is_empty() || client_secret.is_empty()) && !introspection_authorized {
            // What asks the IdP about each caller's token does so as the plugin's own client.
            let wanting = [
                (
                    introspect_jwt_tokens,
                    "'introspect_jwt_tokens'",
                    self.get("introspect_jwt_tokens").map(|p| p.key_mark),
                ),
                (
                    auth_methods.contains(&AuthMethod::Introspection),
                    "'auth_methods: [introspection]'",
                    self.get("auth_methods").map(|p| p.node.mark),
                ),
            ];
            for (_, what, mark) in wanting.into_iter().filter(|(wants, _, _)| *wants) {
                let message = format!(
                    "{what} needs 'client_id' and 'client_secret' (or an Authorization header in \
                     'introspection_headers_names'): the plugin's own client asks the IdP about each caller's token"
                );
                self.error(mark.unwrap_or_default(), message);
            }
        }

        let token_endpoint = self.url("token_endpoint");
        let using_pseudo_issuer = self.boolean("using_pseudo_issuer", false);
        if using_pseudo_issuer && uses_cc && token_endpoint.is_none() && self.node("token_endpoint").is_none() {
            let mark = self.key_mark("using_pseudo_issuer");
            self.error(mark, "'using_pseudo_issuer' skips discovery, so client_credentials needs 'token_endpoint'");
        }
        let scopes = self.list_or("scopes", &["openid"]);
        let token_post_args = self.pairs("token_post_args_names", "token_post_args_values", false);
        if let Some(names) = self.node("token_post_args_names") {
            for (name, mark) in strings(names) {
                if RESERVED_POST_ARGS.contains(&name) {
                    self.error(
                        mark,
                        format!(
                            "'token_post_args_names' may not set '{name}': it would replace the caller's credentials or grant for every caller"
                        ),
                    );
                }
            }
        }
        let token_headers = self.pairs("token_headers_names", "token_headers_values", true);
        let token_post_args_client = self.client_token_names("token_post_args_client");
        let token_headers_client = self.client_token_names("token_headers_client");
        let discovery_headers = self.pairs("discovery_headers_names", "discovery_headers_values", true);

        let mut extra_jwks_uris = Vec::new();
        for (uri, mark) in self.list("extra_jwks_uris").unwrap_or_default() {
            match check_url(&uri) {
                Ok(()) => extra_jwks_uris.push(uri),
                Err(why) => self.error(mark, format!("'extra_jwks_uris' entry is not a usable URL: {why}")),
            }
        }
        let jwks_endpoint = self.string("jwks_endpoint").and_then(|(uri, mark)| match check_url(&uri) {
            Ok(()) => Some(uri),
            Err(why) => {
                self.error(mark, format!("'jwks_endpoint' is not a usable URL: {why}"));
                None
            }
        });

        let timeout = self.duration("timeout", 0.001).unwrap_or(Duration::from_millis(10_000));
        if timeout.is_zero() {
            let mark = self.get("timeout").map(|p| p.node.mark).unwrap_or_default();
            self.error(mark, "'timeout' must be greater than 0 ms");
        }
        let http_version = match self.node("http_version").and_then(number) {
            None => HttpVersion::Http11,
            Some(1.1) => HttpVersion::Http11,
            Some(1.0) => HttpVersion::Http10,
            Some(v) => {
                let mark = self.get("http_version").map(|p| p.node.mark).unwrap_or_default();
                self.error(mark, format!("'http_version' must be 1.0 or 1.1, found {v}"));
                HttpVersion::Http11
            }
        };
        let ssl_verify = self.boolean("ssl_verify", true);
        if !ssl_verify {
            let mark = self.key_mark("ssl_verify");
            self.warn(
                mark,
                "'ssl_verify: false': the IdP's TLS certificate will not be verified (ringgate's default is true)",
            );
        }
        let http_proxy = self.url("http_proxy");
        let https_proxy = self.url("https_proxy");
        let http_proxy_authorization = self.string("http_proxy_authorization").map(|(s, _)| Secret(s));
        let https_proxy_authorization = self.string("https_proxy_authorization").map(|(s, _)| Secret(s));
        let no_proxy = self
            .string("no_proxy")
            .map(|(s, _)| s.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect())
            .unwrap_or_default();

        let cache_tokens_salt = match self.string("cache_tokens_salt") {
            Some((salt, _)) => Some(CacheSalt::configured(salt)),
            None => match CacheSalt::generate() {
                Ok(salt) => Some(salt),
                Err(why) => {
                    self.error(config.mark, format!("cannot generate 'cache_tokens_salt': {why}"));
                    None
                }
            },
        };

        let ignore_signature_client_credentials = self.ignore_signature(ssl_verify);
        for name in ["verify_signature", "verify_claims"] {
            if !self.boolean(name, true) {
                let mark = self.key_mark(name);
                self.error(
                    mark,
                    format!(
                        "'{name}: false' is not supported: ringgate always verifies tokens (Kong documents it as a debugging switch)"
                    ),
                );
            }
        }
        let enable_hs_signatures = self.boolean("enable_hs_signatures", false);
        if enable_hs_signatures && client_secret.is_empty() {
            let mark = self.key_mark("enable_hs_signatures");
            self.error(mark, "'enable_hs_signatures' needs 'client_secret': it is the HMAC key");
        }

        let scopes_claim = self.claim_path("scopes_claim", "scope");
        let audience_claim = self.claim_path("audience_claim", "aud");
        let credential_claim = self.claim_path("credential_claim", "sub");
        let upstream_access_token_header = self.upstream_header();
        let unauthorized_error_message = self.message("unauthorized_error_message", "Unauthorized");
        let forbidden_error_message = self.message("forbidden_error_message", "Forbidden");

        let rediscovery_lifetime = self.duration("rediscovery_lifetime", 1.0).unwrap_or(Duration::from_secs(30));
        let cache_ttl = self.duration("cache_ttl", 1.0).unwrap_or(Duration::from_secs(3600));
        let cache_ttl_min = self.duration("cache_ttl_min", 1.0);
        let cache_ttl_max = self.duration("cache_ttl_max", 1.0);
        let cache_ttl_neg = self.duration("cache_ttl_neg", 1.0);
        let cache_ttl_resurrect = self.duration("cache_ttl_resurrect", 1.0);
        let leeway = self.duration("leeway", 1.0).unwrap_or(Duration::ZERO);
        // Kong compares whole-second ages with `>`, so a fraction of a second adds nothing.
        let max_age = self.duration("max_age", 1.0).map(|d| d.as_secs());
        if max_age.is_some() && auth_methods.contains(&AuthMethod::ClientCredentials) {
            let mark = self.key_mark("max_age");
            self.warn(
                mark,
                "'max_age' makes auth_time required in every access token; tokens the IdP issues for client \
                 credentials seldom carry one, and are then refused (401), as in Kong",
            );
        }
        let ProofOfPossession { dpop, mtls, dpop_proof_lifetime, dpop_use_nonce } =
            self.proof_of_possession(&auth_methods);
        let issuers_allowed = self.list_or("issuers_allowed", &[]);
        let scopes_required = self.list_or("scopes_required", &[]);
        let audience_required = self.list_or("audience_required", &[]);
        let groups_claim = self.claim_path("groups_claim", "groups");
        let roles_claim = self.claim_path("roles_claim", "roles");
        let groups_required = self.list_or("groups_required", &[]);
        let roles_required = self.list_or("roles_required", &[]);
        let claims_forbidden = self.list_or("claims_forbidden", &[]);
        let upstream_headers = self.claim_headers(&upstream_access_token_header);
        let downstream_access_token_header = self.token_header("downstream_access_token_header");
        if let Some(h) = &downstream_access_token_header {
            let lower = h.name.as_str();
            if written_by_proxy(lower, true) {
                let mark = self.get("downstream_access_token_header").map(|p| p.node.mark).unwrap_or_default();
                self.error(
                    mark,
                    format!("'downstream_access_token_header' '{}' is written by the proxy itself", h.name),
                );
            }
        }
        let downstream_headers = self.downstream_claim_headers(downstream_access_token_header.as_ref());
        let (token_headers_replay, token_headers_prefix) = self.token_headers_replay();
        let consumer_claim = self.consumer_claims();
        let consumer_by = self.consumer_by(!consumer_claim.is_empty());
        let anonymous = self.string("anonymous").map(|(s, _)| s);
        let introspection_endpoint = self.url("introspection_endpoint");
        let cache_introspection = self.boolean("cache_introspection", true);
        if !cache_introspection && auth_methods.contains(&AuthMethod::ClientCredentials) {
            let mark = self.key_mark("cache_introspection");
            self.warn(
                mark,
                "'cache_introspection: false' applies to the callers' tokens ('introspection'); an opaque token the \
                 IdP issues is introspected once, when issued, and its answer kept as long as the token",
            );
        }
        let introspection_endpoint_auth_method = self.introspection_auth();
        let introspection_headers = self.pairs("introspection_headers_names", "introspection_headers_values", true);
        let introspection_post_args =
            self.pairs("introspection_post_args_names", "introspection_post_args_values", false);
        let (introspection_client_args, introspection_headers_client) = self.introspection_caller_values();
        let introspection_accept = match self.string("introspection_accept") {
            Some((s, _)) if s == "application/token-introspection+jwt" => IntrospectionAccept::TokenIntrospectionJwt,
            Some((s, mark)) if s == "application/jwt" => {
                self.error(
                    mark,
                    "'introspection_accept: application/jwt' (an earlier draft's signed answer) is not supported yet; \
                     application/token-introspection+jwt (RFC 9701) is",
                );
                IntrospectionAccept::Json
            }
            _ => IntrospectionAccept::Json,
        };
        if introspection_accept == IntrospectionAccept::TokenIntrospectionJwt
            && client_id.is_empty()
            && introspection_authorized
        {
            let mark = self.get("introspection_accept").map(|p| p.node.mark).unwrap_or_default();
            self.error(
                mark,
                "'introspection_accept: application/token-introspection+jwt' needs 'client_id': a signed answer is \
                 addressed to the plugin's client",
            );
        }
        if ignore_signature_client_credentials && auth_methods.contains(&AuthMethod::ClientCredentials) {
            // Those tokens are not parsed, so nothing that reads their claims could act.
            let values = |side: &[ClaimHeader]| side.iter().any(|h| h.kind == ClaimKind::Value);
            let given = |name: &str| self.get(name).is_some();
            let reads_claims = [
                ("scopes_required", !scopes_required.is_empty()),
                ("audience_required", !audience_required.is_empty()),
                ("groups_required", !groups_required.is_empty()),
                ("roles_required", !roles_required.is_empty()),
                ("claims_forbidden", !claims_forbidden.is_empty()),
                ("upstream_headers_claims", given("upstream_headers_claims") && values(&upstream_headers)),
                ("upstream_headers", given("upstream_headers") && values(&upstream_headers)),
                ("authenticated_groups_claim", upstream_headers.iter().any(|h| h.kind == ClaimKind::Groups)),
                ("consumer_claim", given("consumer_claim") && !consumer_claim.is_empty()),
                ("consumer_claims", given("consumer_claims") && !consumer_claim.is_empty()),
                ("downstream_headers_claims", given("downstream_headers_claims") && values(&downstream_headers)),
                ("downstream_headers", given("downstream_headers") && values(&downstream_headers)),
                ("upstream_introspection_header", upstream_headers.iter().any(|h| h.kind == ClaimKind::Introspection)),
                (
                    "downstream_introspection_header",
                    downstream_headers.iter().any(|h| h.kind == ClaimKind::Introspection),
                ),
                (
                    "upstream_introspection_jwt_header",
                    upstream_headers.iter().any(|h| h.kind == ClaimKind::IntrospectionJwt),
                ),
                (
                    "downstream_introspection_jwt_header",
                    downstream_headers.iter().any(|h| h.kind == ClaimKind::IntrospectionJwt),
                ),
            ];
            for (name, _) in reads_claims.into_iter().filter(|(_, set)| *set) {
                let mark = self.key_mark(name);
                self.error(
                    mark,
                    format!("'{name}' reads the access token's claims, which 'ignore_signature: [client_credentials]' leaves unread"),
                );
            }
            for (side, headers) in [("upstream", &upstream_headers), ("downstream", &downstream_headers)] {
                if headers.iter().any(|h| h.kind == ClaimKind::AccessTokenJwk) {
                    let name = format!("{side}_access_token_jwk_header");
                    let mark = self.key_mark(&name);
                    self.error(
                        mark,
                        format!(
                            "'{name}' sends the key that verified the access token, which \
                             'ignore_signature: [client_credentials]' leaves unverified"
                        ),
                    );
                }
            }
        }

        // Every check has run; only now may a missing piece end the build.
        let (Some(issuer), Some(cache_tokens_salt)) = (issuer, cache_tokens_salt) else { return None };
        let config = OidcConfig {
            discovery_url: discovery_url(&issuer),
            issuer,
            using_pseudo_issuer,
            rediscovery_lifetime,
            discovery_headers,
            extra_jwks_uris,
            jwks_endpoint,
            auth_methods,
            client_credentials_param_type,
            bearer_token_param_type,
            bearer_token_cookie_name,
            bearer_token_headers,
            bearer_from_authorization,
            hide_credentials: self.boolean("hide_credentials", false),
            run_on_preflight: self.boolean("run_on_preflight", true),
            client_id,
            client_secret,
            client_arg,
            client_auth,
            client_alg,
            token_endpoint,
            token_endpoint_auth_method,
            scopes,
            token_post_args,
            token_headers,
            token_post_args_client,
            token_headers_client,
            verify_parameters: self.boolean("verify_parameters", false),
            timeout,
            keepalive: self.boolean("keepalive", true),
            http_version,
            ssl_verify,
            http_proxy,
            http_proxy_authorization,
            https_proxy,
            https_proxy_authorization,
            no_proxy,
            cache_tokens: self.boolean("cache_tokens", true),
            cache_tokens_salt,
            token_cache_key_include_scope: self.boolean("token_cache_key_include_scope", false),
            cache_ttl,
            cache_ttl_min,
            cache_ttl_max,
            cache_ttl_neg,
            cache_ttl_resurrect,
            ignore_signature_client_credentials,
            enable_hs_signatures,
            leeway,
            max_age,
            dpop,
            mtls,
            dpop_proof_lifetime,
            dpop_use_nonce,
            issuers_allowed,
            scopes_required,
            scopes_claim,
            audience_required,
            audience_claim,
            groups_required,
            groups_claim,
            roles_required,
            roles_claim,
            claims_forbidden,
            credential_claim,
            consumer_claim,
            consumer_by,
            consumer_optional: self.boolean("consumer_optional", false),
            by_username_ignore_case: self.boolean("by_username_ignore_case", false),
            anonymous,
            introspection_endpoint,
            introspection_endpoint_auth_method,
            introspection_hint: self.string("introspection_hint").map_or_else(|| "access_token".into(), |(s, _)| s),
            introspection_token_param_name: self
                .string("introspection_token_param_name")
                .map_or_else(|| "token".into(), |(s, _)| s),
            introspection_headers,
            introspection_post_args,
            introspection_client_args,
            introspection_headers_client,
            introspection_check_active: self.boolean("introspection_check_active", true),
            introspection_accept,
            cache_introspection,
            introspect_jwt_tokens,
            upstream_access_token_header,
            upstream_headers,
            downstream_access_token_header,
            downstream_headers,
            token_headers_replay,
            token_headers_prefix,
            display_errors: self.boolean("display_errors", false),
            unauthorized_redirect_uri: self.redirect_uri("unauthorized_redirect_uri"),
            forbidden_redirect_uri: self.redirect_uri("forbidden_redirect_uri"),
            unexpected_redirect_uri: self.redirect_uri("unexpected_redirect_uri"),
            expose_error_code: self.boolean("expose_error_code", true),
            unauthorized_error_message,
            forbidden_error_message,
            mark: config.mark,
        };
        Some(config)
    }

    /// `auth_methods`: required, non-empty, supported methods only.
    fn auth_methods(&mut self, config: &Node) -> Vec<AuthMethod> {
        let Some(node) = self.node("auth_methods") else {
            // Absent or null; a value of the wrong type was reported by pass 1.
            if config.get("auth_methods").is_none_or(|n| matches!(n.value, NodeValue::Null)) {
                self.errors.push(ConfigError::missing(
                    self.file,
                    config.mark,
                    "auth_methods",
                    "'auth_methods' must be set: Kong's default enables all nine methods (a Basic header would be \
                     taken as a password grant); ringgate supports client_credentials, bearer and introspection, e.g. \
                     auth_methods: [client_credentials]",
                ));
            }
            return Vec::new();
        };
        let mut methods = Vec::new();
        for (name, mark) in strings(node) {
            let method = match name {
                "client_credentials" => AuthMethod::ClientCredentials,
                "bearer" => AuthMethod::Bearer,
                "introspection" => AuthMethod::Introspection,
                _ => {
                    self.error(
                        mark,
                        format!(
                            "auth method '{name}' is not supported yet (ringgate supports client_credentials, bearer \
                             and introspection)"
                        ),
                    );
                    continue;
                }
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        if node.is_unset() {
            self.error(node.mark, "'auth_methods' is empty: no request could authenticate");
        }
        methods
    }

    /// Warnings and errors for the Kong fields ringgate does not implement.
    fn classify(&mut self, raw_methods: &[&str]) {
        let mut found = Vec::new();
        for p in &self.present {
            if is_default(p.node, p.field.default) {
                continue;
            }
            match class_of(p.field.name) {
                Class::Typed => {}
                Class::Warn(why) => found.push((false, p.key_mark, format!("'{}' is ignored: {why}", p.field.name))),
                Class::Error(why) => {
                    found.push((true, p.key_mark, format!("'{}' is not supported yet: {why}", p.field.name)))
                }
            }
        }
        // login_action: Kong answers the login itself for the grants in login_methods.
        if let Some(p) = self.get("login_action") {
            if !is_default(p.node, p.field.default) {
                let login_methods: Vec<&str> = match self.node("login_methods") {
                    Some(n) => strings(n).map(|(s, _)| s).collect(),
                    None => vec!["authorization_code"],
                };
                let enabled = login_methods.iter().any(|m| raw_methods.contains(m));
                found.push(if enabled {
                    (
                        true,
                        p.key_mark,
                        "'login_action' is not supported yet: Kong would answer with tokens instead of proxying"
                            .to_string(),
                    )
                } else {
                    (
                        false,
                        p.key_mark,
                        "'login_action' is ignored: login_methods names no enabled auth method".to_string(),
                    )
                });
            }
        }
        // introspect_jwt_tokens: read with `bearer` (a JWT is introspected too, for
        // revocation); without it, nothing to act on.
        if let Some(p) = self.get("introspect_jwt_tokens") {
            if !is_default(p.node, p.field.default) && !raw_methods.contains(&"bearer") {
                found.push((
                    false,
                    p.key_mark,
                    "'introspect_jwt_tokens' is ignored: only acts with 'bearer'".to_string(),
                ));
            }
        }
        // Caller values in the introspection request: only where a caller's token is
        // introspected.
        let introspects_callers = raw_methods.contains(&"introspection")
            || (raw_methods.contains(&"bearer")
                && self.get("introspect_jwt_tokens").is_some_and(|p| matches!(p.node.value, NodeValue::Bool(true))));
        for field in
            ["introspection_post_args_client", "introspection_post_args_client_headers", "introspection_headers_client"]
        {
            let Some(p) = self.get(field).filter(|p| !is_default(p.node, p.field.default)) else { continue };
            let why = if !introspects_callers {
                format!(
                    "'{field}' is ignored: only acts where a caller's token is introspected ('introspection', or \
                     'introspect_jwt_tokens' with 'bearer')"
                )
            } else if raw_methods.contains(&"client_credentials") {
                format!(
                    "'{field}' applies to callers' own tokens: an opaque token the IdP issues for client credentials \
                     is introspected once, with the configured values only"
                )
            } else {
                continue;
            };
            found.push((false, p.key_mark, why));
        }
        // bearer_token_header_name: only where callers' tokens are read.
        if let Some(p) = self.get("bearer_token_header_name") {
            if !is_default(p.node, p.field.default)
                && !raw_methods.iter().any(|m| matches!(*m, "bearer" | "introspection"))
            {
                let why = "'bearer_token_header_name' is ignored: only acts with 'bearer' or 'introspection'";
                found.push((false, p.key_mark, why.to_string()));
            }
        }
        // principals: Kong Identity (Konnect) looks a principal up after verification and
        // answers 401 when none matches. A dump writes the record with `enabled: false`.
        if let Some(p) = self.get("principals") {
            if p.node.get("enabled").is_some_and(|n| matches!(n.value, NodeValue::Bool(true))) {
                found.push((
                    true,
                    p.key_mark,
                    "'principals' is not supported yet: Kong Identity principals would not be looked up".to_string(),
                ));
            }
        }
        for (is_error, mark, message) in found {
            if is_error {
                self.error(mark, message);
            } else {
                self.warn(mark, message);
            }
        }
    }

    /// A list of locations in the order written, without duplicates; the default is
    /// header, query, body.
    fn locations<T: Copy + PartialEq>(&mut self, name: &str, table: &[(&str, T)]) -> Vec<T> {
        let Some(node) = self.node(name) else {
            return table.iter().take(3).map(|(_, l)| *l).collect();
        };
        let mut out = Vec::new();
        for (s, _) in strings(node) {
            if let Some((_, l)) = table.iter().find(|(n, _)| *n == s) {
                if !out.contains(l) {
                    out.push(*l);
                }
            }
        }
        out
    }

    /// SPEC §1 step 4: refuse client authentication the proxy cannot perform with a
    /// caller's credentials.
    fn check_client_auth(
        &mut self,
        explicit: Option<ClientAuthMethod>,
        client_auth: &[ClientAuthMethod],
        algs: &[ClientAlg],
    ) {
        let (method, key) = match explicit {
            Some(m) => (m, "token_endpoint_auth_method"),
            None => match client_auth.first() {
                Some(m) => (*m, "client_auth"),
                None => return,
            },
        };
        let mark = self.get(key).map(|p| p.node.mark).unwrap_or_default();
        let why = match method {
            ClientAuthMethod::PrivateKeyJwt => "it needs a private key, and ringgate holds none for a caller",
            ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth => {
                "it needs a client certificate, and ringgate holds none for a caller"
            }
            ClientAuthMethod::None => "the caller's secret would then be checked by nobody",
            ClientAuthMethod::ClientSecretJwt => {
                if let Some(alg) = algs.first().filter(|a| !a.is_hmac()) {
                    let alg_mark = self.get("client_alg").map(|p| p.node.mark).unwrap_or_default();
                    self.error(
                        alg_mark,
                        format!(
                            "'client_alg' {} cannot sign a client_secret_jwt assertion (HS256/384/512 only)",
                            alg.as_str()
                        ),
                    );
                }
                return;
            }
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => return,
        };
        self.error(mark, format!("'{key}' {} is not supported with client_credentials: {why}", method.as_str()));
    }

    /// `ignore_signature`: `client_credentials` honoured (only with `ssl_verify`); the
    /// others name methods ringgate refuses.
    fn ignore_signature(&mut self, ssl_verify: bool) -> bool {
        let Some(node) = self.node("ignore_signature") else { return false };
        let key_mark = self.key_mark("ignore_signature");
        let mut client_credentials = false;
        let mut others = Vec::new();
        for (s, mark) in strings(node) {
            if s == "client_credentials" {
                client_credentials = true;
                if !ssl_verify {
                    self.error(
                        mark,
                        "'ignore_signature: [client_credentials]' needs ssl_verify: with neither, nothing vouches for the token",
                    );
                }
            } else {
                others.push(s);
            }
        }
        if !others.is_empty() {
            self.warn(
                key_mark,
                format!(
                    "'ignore_signature' entries {} are ignored: they name methods ringgate does not support",
                    others.join(", ")
                ),
            );
        }
        client_credentials
    }

    /// `introspection_endpoint_auth_method`: what the plugin's own client can do there.
    fn introspection_auth(&mut self) -> Option<ClientAuthMethod> {
        let (name, mark) = self.string("introspection_endpoint_auth_method")?;
        let method = ClientAuthMethod::parse(&name)?;
        match method {
            ClientAuthMethod::ClientSecretBasic
            | ClientAuthMethod::ClientSecretPost
            | ClientAuthMethod::ClientSecretJwt
            | ClientAuthMethod::None => Some(method),
            _ => {
                self.error(
                    mark,
                    format!(
                        "'introspection_endpoint_auth_method: {name}' is not supported yet (client_secret_basic, \
                         client_secret_post, client_secret_jwt and none are)"
                    ),
                );
                None
            }
        }
    }

    /// A claim path that may be unset (`null` or `[]`: empty).
    fn optional_claim_path(&mut self, name: &str) -> Vec<String> {
        self.list(name).unwrap_or_default().into_iter().map(|(s, _)| s).collect()
    }

    /// `consumer_claim` (one path) or `consumer_claims` (several, Kong 3.14): the paths
    /// consumer mapping tries, in order. Both at once is refused: which would Kong try
    /// first is not documented. An empty list is unset, as a dump writes it.
    fn consumer_claims(&mut self) -> Vec<Vec<String>> {
        let one = self.optional_claim_path("consumer_claim");
        let several: Vec<Vec<String>> = match self.node("consumer_claims").map(|n| &n.value) {
            Some(NodeValue::Seq(paths)) => {
                paths.iter().map(|p| strings(p).map(|(s, _)| s.to_string()).collect()).collect()
            }
            _ => Vec::new(),
        };
        match (one.is_empty(), several.is_empty()) {
            (true, _) => several,
            (false, true) => vec![one],
            (false, false) => {
                let mark = self.key_mark("consumer_claims");
                self.error(mark, "set one of 'consumer_claim' and 'consumer_claims', not both");
                vec![one]
            }
        }
    }

    /// `consumer_by`, in order, without repeats; refused empty when a claim is mapped.
    fn consumer_by(&mut self, mapping: bool) -> Vec<ConsumerBy> {
        let Some(node) = self.node("consumer_by") else { return vec![ConsumerBy::CustomId, ConsumerBy::Username] };
        let mut out = Vec::new();
        for (s, _) in strings(node) {
            if let Some(by) = ConsumerBy::parse(s).filter(|b| !out.contains(b)) {
                out.push(by);
            }
        }
        if out.is_empty() && mapping {
            self.error(node.mark, "'consumer_by' names no field, so 'consumer_claim' could never find a consumer");
        }
        out
    }

    /// `proof_of_possession_dpop`, `proof_of_possession_mtls` and the settings that go
    /// with them. Proofs are checked on callers' own tokens (`bearer`, `introspection`);
    /// with `proof_of_possession_auth_methods_validation` (Kong's default true) another
    /// method beside them is refused, as Kong refuses it, and with it false that method's
    /// requests go unchecked (a warning says so). Not implemented, so refused while mTLS
    /// is on: `proof_of_possession_mtls_from_header` (a certificate a TLS terminator in
    /// front passes on).
    fn proof_of_possession(&mut self, auth_methods: &[AuthMethod]) -> ProofOfPossession {
        let mode = |c: &mut Self, name: &str| match c.string(name) {
            Some((s, _)) if s == "strict" => PopMode::Strict,
            Some((s, _)) if s == "optional" => PopMode::Optional,
            _ => PopMode::Off,
        };
        let dpop = mode(self, "proof_of_possession_dpop");
        let mtls = mode(self, "proof_of_possession_mtls");
        let lifetime = self.duration("dpop_proof_lifetime", 1.0).map_or(300, |d| d.as_secs());
        let nonce = self.boolean("dpop_use_nonce", false);
        let validate = self.boolean("proof_of_possession_auth_methods_validation", true);
        let only_with = |c: &mut Self, name: &str, set: bool, what: &str| {
            if set {
                let mark = c.key_mark(name);
                c.warn(mark, format!("'{name}' only acts with {what} on"));
            }
        };
        if dpop == PopMode::Off {
            only_with(self, "dpop_use_nonce", nonce, "'proof_of_possession_dpop'");
            only_with(self, "dpop_proof_lifetime", lifetime != 300, "'proof_of_possession_dpop'");
        } else if lifetime == 0 {
            let mark = self.key_mark("dpop_proof_lifetime");
            self.error(mark, "'dpop_proof_lifetime' must be at least one second: no proof could be used");
        }
        let from_header =
            self.get("proof_of_possession_mtls_from_header").is_some_and(|p| !is_default(p.node, p.field.default));
        if mtls == PopMode::Off {
            only_with(self, "proof_of_possession_mtls_from_header", from_header, "'proof_of_possession_mtls'");
        } else if from_header {
            let mark = self.key_mark("proof_of_possession_mtls_from_header");
            self.error(
                mark,
                "'proof_of_possession_mtls_from_header' is not implemented: ringgate takes the client certificate \
                 from the TLS connection it terminates itself, never from a header",
            );
        }
        if dpop == PopMode::Off && mtls == PopMode::Off {
            only_with(self, "proof_of_possession_auth_methods_validation", !validate, "proof of possession");
            return ProofOfPossession { dpop, mtls, dpop_proof_lifetime: lifetime, dpop_use_nonce: false };
        }
        let checked = |m: &AuthMethod| matches!(m, AuthMethod::Bearer | AuthMethod::Introspection);
        let unchecked: Vec<String> =
            auth_methods.iter().filter(|m| !checked(m)).map(|m| format!("'{}'", m.as_str())).collect();
        let unchecked = unchecked.join(", ");
        for (name, on, proof) in
            [("proof_of_possession_dpop", dpop, "DPoP proof"), ("proof_of_possession_mtls", mtls, "client certificate")]
        {
            if on == PopMode::Off {
                continue;
            }
            let mark = self.key_mark(name);
            if !unchecked.is_empty() && validate {
                self.error(
                    mark,
                    format!(
                        "'{name}' supports the 'bearer' and 'introspection' methods only, and \
                         'proof_of_possession_auth_methods_validation' is true: remove {unchecked} from \
                         'auth_methods', or set it false to leave their requests unchecked"
                    ),
                );
            } else if !auth_methods.iter().any(checked) {
                self.warn(
                    mark,
                    format!(
                        "'{name}' only acts on callers' own tokens, and no configured method ('bearer', \
                         'introspection') reads one"
                    ),
                );
            } else if !unchecked.is_empty() {
                self.warn(mark, format!("no {proof} is checked on requests that authenticate with {unchecked}"));
            }
        }
        ProofOfPossession { dpop, mtls, dpop_proof_lifetime: lifetime, dpop_use_nonce: nonce && dpop != PopMode::Off }
    }

    /// A claim path (`*_claim`): a non-empty list of non-empty names.
    fn claim_path(&mut self, name: &str, default: &str) -> Vec<String> {
        match self.list(name) {
            Some(path) if path.is_empty() => {
                let mark = self.get(name).map(|p| p.node.mark).unwrap_or_default();
                self.error(mark, format!("'{name}' must name a claim"));
                vec![default.to_string()]
            }
            Some(path) => path.into_iter().map(|(s, _)| s).collect(),
            None => vec![default.to_string()],
        }
    }

    /// `upstream_access_token_header`: `name[:bearer|:basic]`.
    fn upstream_header(&mut self) -> UpstreamTokenHeader {
        let default = UpstreamTokenHeader { name: "authorization".into(), scheme: Some(TokenScheme::Bearer) };
        self.token_header("upstream_access_token_header").unwrap_or(default)
    }

    /// A `*_access_token_header`: `name[:bearer|:basic]`; `None` when unset or refused.
    fn token_header(&mut self, field: &str) -> Option<UpstreamTokenHeader> {
        let (value, mark) = self.string(field)?;
        let (name, scheme) = match value.split_once(':') {
            Some((name, scheme)) => match scheme.to_ascii_lowercase().as_str() {
                "bearer" => (name, Some(TokenScheme::Bearer)),
                "basic" => (name, Some(TokenScheme::Basic)),
                _ => {
                    self.error(mark, format!("'{field}' scheme '{scheme}' must be bearer or basic"));
                    return None;
                }
            },
            None => (value.as_str(), None),
        };
        if !is_token(name) {
            self.error(mark, format!("'{field}' '{name}' is not a valid header name"));
            return None;
        }
        // Kong's Curity example writes `upstream_access_token_header: nil`, a string in
        // YAML: the token then travels in a header of that name, in Kong as here.
        if ["nil", "null", "none", "false", "off"].iter().any(|w| name.eq_ignore_ascii_case(w)) {
            self.warn(
                mark,
                format!("'{field}: {name}' is a header name: the access token is sent in a header called '{name}'"),
            );
        }
        Some(UpstreamTokenHeader { name: name.to_ascii_lowercase(), scheme })
    }

    /// `token_post_args_client` / `token_headers_client`: names the caller may fill in.
    /// Not the caller's identity or the grant (a post argument), nor a header the HTTP
    /// client or the client authentication sets.
    fn client_token_names(&mut self, name: &str) -> Vec<String> {
        let headers = name == "token_headers_client";
        let mut out = Vec::new();
        for (entry, mark) in self.list(name).unwrap_or_default() {
            let lower = entry.to_ascii_lowercase();
            if headers && !is_token(&entry) {
                self.error(mark, format!("'{name}' entry '{entry}' is not a valid header name"));
            } else if headers && (RESERVED_HEADERS.contains(&lower.as_str()) || lower == "authorization") {
                self.error(mark, format!("'{name}' may not copy '{entry}': the token request sets it"));
            } else if !headers && RESERVED_POST_ARGS.contains(&entry.as_str()) {
                self.error(
                    mark,
                    format!("'{name}' may not take '{entry}' from the caller: it names the credentials or the grant"),
                );
            } else {
                out.push(entry);
            }
        }
        out
    }

    /// `introspection_post_args_client`, `_client_headers` and `introspection_headers_client`:
    /// what a caller adds to the introspection of its own token. No post argument may
    /// name the token, its hint or the plugin's client, nor be in both lists (it would
    /// be sent twice); no header may be one the HTTP client, the client authentication
    /// or `introspection_accept` sets.
    fn introspection_caller_values(&mut self) -> (Vec<CallerArg>, Vec<String>) {
        let token_param = self.string("introspection_token_param_name").map_or_else(|| "token".into(), |(s, _)| s);
        let mut args: Vec<CallerArg> = Vec::new();
        for (field, from_header) in
            [("introspection_post_args_client", false), ("introspection_post_args_client_headers", true)]
        {
            for (name, mark) in self.list(field).unwrap_or_default() {
                let why = if from_header && !is_token(&name) {
                    Some("is not a valid header name".to_string())
                } else if name == token_param || INTROSPECTION_POST_ARGS.contains(&name.as_str()) {
                    Some(
                        "names the token, its hint or the plugin's client, which the introspection request sets".into(),
                    )
                } else if let Some(other) = args.iter().find(|a| a.name == name) {
                    let first = if other.from_header {
                        "introspection_post_args_client_headers"
                    } else {
                        "introspection_post_args_client"
                    };
                    Some(format!("is also in '{first}': the introspection request would carry it twice"))
                } else {
                    None
                };
                match why {
                    Some(why) => self.error(mark, format!("'{field}' entry '{name}' {why}")),
                    None => args.push(CallerArg { name, from_header }),
                }
            }
        }
        let mut headers = Vec::new();
        for (name, mark) in self.list("introspection_headers_client").unwrap_or_default() {
            let lower = name.to_ascii_lowercase();
            if !is_token(&name) {
                self.error(mark, format!("'introspection_headers_client' entry '{name}' is not a valid header name"));
            } else if RESERVED_HEADERS.contains(&lower.as_str())
                || ["authorization", "accept", "content-type"].contains(&lower.as_str())
            {
                self.error(
                    mark,
                    format!(
                        "'introspection_headers_client' may not copy '{name}': the introspection request sets it \
                         (client authentication, introspection_accept, the form body)"
                    ),
                );
            } else {
                headers.push(name);
            }
        }
        (args, headers)
    }

    /// `authenticated_groups_claim`, then `upstream_headers_names` paired with
    /// `upstream_headers_claims`: each name a header the proxy does not write itself, and
    /// none twice.
    /// `downstream_headers_claims` / `_names`: claims the caller gets back as response
    /// headers, under names the proxy does not write itself (framing, hop by hop,
    /// `Set-Cookie`) and not the downstream token header's.
    fn downstream_claim_headers(&mut self, token_header: Option<&UpstreamTokenHeader>) -> Vec<ClaimHeader> {
        let mut out = Vec::new();
        self.named_claims("downstream", token_header, true, &mut out);
        for kind in [ClaimKind::Introspection, ClaimKind::IntrospectionJwt, ClaimKind::AccessTokenJwk] {
            self.token_value_header("downstream", kind, token_header, true, &mut out);
        }
        out
    }

    /// `<side>_introspection_header` (`kind` Introspection),
    /// `<side>_introspection_jwt_header` (IntrospectionJwt) or
    /// `<side>_access_token_jwk_header` (AccessTokenJwk), added to `out` under the rules
    /// of [`Self::named_claims`]: a header name (no `:bearer` / `:basic`), not one the
    /// proxy writes, not the token's header, not a claim header's. Only a signed answer
    /// has a JWT, so without `introspection_accept: application/token-introspection+jwt`
    /// the JWT header is never set, and a warning says so.
    fn token_value_header(
        &mut self,
        side: &str,
        kind: ClaimKind,
        token_header: Option<&UpstreamTokenHeader>,
        response: bool,
        out: &mut Vec<ClaimHeader>,
    ) {
        let field = match kind {
            ClaimKind::IntrospectionJwt => format!("{side}_introspection_jwt_header"),
            ClaimKind::AccessTokenJwk => format!("{side}_access_token_jwk_header"),
            _ => format!("{side}_introspection_header"),
        };
        let Some((name, mark)) = self.string(&field) else { return };
        let signed =
            self.string("introspection_accept").is_some_and(|(s, _)| s == "application/token-introspection+jwt");
        if kind == ClaimKind::IntrospectionJwt && !signed {
            let key_mark = self.key_mark(&field);
            self.warn(
                key_mark,
                format!(
                    "'{field}' is never set: introspection answers are JSON unless \
                     'introspection_accept: application/token-introspection+jwt'"
                ),
            );
        }
        let lower = name.to_ascii_lowercase();
        let why = if name.contains(':') {
            "takes a header name only; the ':bearer' and ':basic' forms are for the access token's header".into()
        } else if let Some(why) = set_header_refusal(&name, &lower, side, token_header, response) {
            why
        } else if out.iter().any(|h| h.lower == lower) {
            "is already set from a claim".into()
        } else {
            out.push(ClaimHeader { claim: Vec::new(), name, lower, kind });
            return;
        };
        self.error(mark, format!("'{field}' '{name}' {why}"));
    }

    /// `token_headers_replay`, `_prefix` and `_grants`: the names to replay (checked as
    /// response header names once prefixed) and the prefix. Nothing is replayed unless the
    /// grants name `client_credentials`, the one this proxy runs (Kong's rule: no grants,
    /// no replay).
    fn token_headers_replay(&mut self) -> (Vec<String>, String) {
        let names = self.list("token_headers_replay").unwrap_or_default();
        let prefix = self.string("token_headers_prefix").map(|(p, _)| p).unwrap_or_default();
        if names.is_empty() {
            return (Vec::new(), prefix);
        }
        let grants: Vec<String> =
            self.list("token_headers_grants").unwrap_or_default().into_iter().map(|(g, _)| g).collect();
        if !grants.iter().any(|g| g == "client_credentials") {
            let mark = self.key_mark("token_headers_replay");
            self.warn(
                mark,
                "'token_headers_replay' is ignored: it replays only for the grants in 'token_headers_grants', \
                 which does not name client_credentials",
            );
            return (Vec::new(), prefix);
        }
        let mut out = Vec::new();
        for (name, mark) in names {
            let full = format!("{prefix}{name}").to_ascii_lowercase();
            if !is_token(&full) {
                self.error(mark, format!("'token_headers_replay' entry '{name}' does not make a valid header name"));
            } else if written_by_proxy(&full, true) {
                self.error(
                    mark,
                    format!("'token_headers_replay' entry '{name}' would set a header the proxy writes itself"),
                );
            } else {
                out.push(name.to_ascii_lowercase());
            }
        }
        (out, prefix)
    }

    /// `<side>_headers_claims` paired with `<side>_headers_names` by position, added to
    /// `out`: each name a header name, not one the proxy writes on that side
    /// ([`written_by_proxy`]) nor the token's header, and not in `out` already.
    fn named_claims(
        &mut self,
        side: &str,
        token_header: Option<&UpstreamTokenHeader>,
        response: bool,
        out: &mut Vec<ClaimHeader>,
    ) {
        let names = format!("{side}_headers_names");
        let mark = self.key_mark(&names);
        // Kong's schema refuses `<side>_headers` beside either of the paired lists.
        let paths = format!("{side}_headers");
        let set = |p: &Present<'_>| {
            !is_default(p.node, p.field.default) && !matches!(&p.node.value, NodeValue::Seq(items) if items.is_empty())
        };
        if self.get(&paths).is_some_and(set) {
            for paired in [format!("{side}_headers_claims"), names.clone()] {
                if let Some(p) = self.get(&paired).filter(|p| set(p)) {
                    let at = p.key_mark;
                    self.error(
                        at,
                        format!(
                            "'{paired}' may not be set beside '{paths}': Kong's schema refuses the pair (use one form)"
                        ),
                    );
                }
            }
        }
        // The names taken so far, for a lookup per name (a scan of `out` was quadratic).
        let mut taken: HashSet<String> = out.iter().map(|h| h.lower.clone()).collect();
        // (header name, claim path, where it was written, the field that named it)
        let mut wanted: Vec<(String, Vec<String>, Mark, &str)> = self
            .pairs(&names, &format!("{side}_headers_claims"), false)
            .into_iter()
            .map(|(name, claim)| (name, vec![claim], mark, names.as_str()))
            .collect();
        wanted
            .extend(self.header_paths(&paths).into_iter().map(|(name, path, mark)| (name, path, mark, paths.as_str())));
        for (name, claim, mark, field) in wanted {
            let lower = name.to_ascii_lowercase();
            let why = if let Some(why) = set_header_refusal(&name, &lower, side, token_header, response) {
                why
            } else if taken.contains(&lower) {
                "is named twice".into()
            } else {
                taken.insert(lower.clone());
                out.push(ClaimHeader { claim, name, lower, kind: ClaimKind::Value });
                continue;
            };
            self.error(mark, format!("'{field}' entry '{name}' {why}"));
        }
    }

    /// `field` (`upstream_headers` / `downstream_headers`, Kong 3.14): `{header, path}`
    /// records, a claim at any depth under a header name, as (name, path, mark).
    fn header_paths(&mut self, field: &str) -> Vec<(String, Vec<String>, Mark)> {
        let Some(NodeValue::Seq(items)) = self.node(field).map(|n| &n.value) else { return Vec::new() };
        let text = |n: &Node| match &n.value {
            NodeValue::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let mut out = Vec::new();
        for item in items {
            let NodeValue::Map(entries) = &item.value else { continue };
            if let Some((key, key_mark, _)) = entries.iter().find(|(k, _, _)| k != "header" && k != "path") {
                self.error(*key_mark, format!("unknown key '{key}' in a '{field}' entry (it takes header and path)"));
                continue;
            }
            let header = item.get("header").and_then(text);
            let path = match item.get("path").map(|n| &n.value) {
                Some(NodeValue::Seq(steps)) if !steps.is_empty() => steps.iter().map(text).collect::<Option<Vec<_>>>(),
                _ => None,
            };
            match (header, path) {
                (Some(header), Some(path)) => out.push((header, path, item.mark)),
                _ => self.error(
                    item.mark,
                    format!(
                        "a '{field}' entry needs 'header', a header name, and 'path', a non-empty list of claim names"
                    ),
                ),
            }
        }
        out
    }

    fn claim_headers(&mut self, token_header: &UpstreamTokenHeader) -> Vec<ClaimHeader> {
        let mut out: Vec<ClaimHeader> = Vec::new();
        // An empty list is Kong's "unset", as `deck gateway dump` may write it.
        let groups_path = self.list("authenticated_groups_claim").unwrap_or_default();
        if !groups_path.is_empty() {
            let path = groups_path.into_iter().map(|(s, _)| s).collect();
            let name = crate::oidc::claim_headers::GROUPS_HEADER;
            out.push(ClaimHeader {
                claim: path,
                name: name.into(),
                lower: name.to_ascii_lowercase(),
                kind: ClaimKind::Groups,
            });
        }
        self.named_claims("upstream", Some(token_header), false, &mut out);
        for kind in [ClaimKind::Introspection, ClaimKind::IntrospectionJwt, ClaimKind::AccessTokenJwk] {
            self.token_value_header("upstream", kind, Some(token_header), false, &mut out);
        }
        out
    }

    fn message(&mut self, name: &str, default: &str) -> String {
        match self.string(name) {
            Some((s, mark)) => {
                if s.chars().any(char::is_control) {
                    self.error(mark, format!("'{name}' may not contain control characters"));
                }
                s
            }
            None => default.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_schema_fields_and_ssl_verify_defaults_to_true() {
        for name in SECRET_FIELDS {
            assert!(field(name).is_some(), "{name} is not a Kong field");
        }
        assert_eq!(field("ssl_verify").map(|f| f.default), Some(FieldDefault::Bool(true)));
        assert_eq!(field("client_secret").map(|f| f.kind), Some(FieldKind::Array));
        assert_eq!(field("timeout").map(|f| f.default), Some(FieldDefault::Num(10000.0)));
        assert_eq!(schema().count(), FIELDS.len());
    }

    #[test]
    fn every_kong_field_is_classified_and_documented() {
        let doc = include_str!("config.rs");
        let doc: String = doc.lines().filter(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
        for field in FIELDS {
            assert_ne!(class_of(field.name), Class::Error("not classified"), "{} has no class", field.name);
            let literal = format!("`{}`", field.name);
            let by_prefix =
                ["upstream_*_header", "downstream_*", "introspection_*", "userinfo_*", "session_*", "authorization_*"]
                    .iter()
                    .any(|p| {
                        let (head, tail) = p.split_once('*').unwrap();
                        field.name.starts_with(head) && field.name.ends_with(tail) && doc.contains(&format!("`{p}`"))
                    });
            assert!(doc.contains(&literal) || by_prefix, "{} is missing from the module doc", field.name);
        }
        for name in TYPED {
            assert!(FIELDS.iter().any(|f| f.name == *name), "{name} is typed but not a Kong field");
        }
    }

    #[test]
    fn field_list_is_sorted_and_unique() {
        for pair in FIELDS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} then {}", pair[0].name, pair[1].name);
        }
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("scope", "scopes"), 1);
        assert_eq!(edit_distance("isuer", "issuer"), 1);
        assert_eq!(edit_distance("timout", "timeout"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(closest_field("client_secrets"), Some("client_secret"));
        assert_eq!(closest_field("completely_unrelated"), None);
    }

    #[test]
    fn urls_are_checked_for_what_ringgate_can_call() {
        assert!(check_url("https://idp.example.com/realms/demo").is_ok());
        assert!(check_url("http://127.0.0.1:9999").is_ok());
        assert!(check_url("http://[::1]:8080/x?y=z").is_ok());
        assert!(check_url("ftp://idp").is_err());
        assert!(check_url("https://user:pw@idp/").is_err());
        assert!(check_url("https://idp/#frag").is_err());
        assert!(check_url("https://:80/").is_err());
        assert!(check_url("https://idp:0/").is_err());
        assert!(check_url("idp.example.com").is_err());
    }

    #[test]
    fn generated_salts_are_long_hex_and_differ() {
        let a = CacheSalt::generate().unwrap();
        let b = CacheSalt::generate().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a.is_generated());
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn the_one_repeat_among_many_claim_headers_is_named() {
        // Each name used to be compared with every earlier one: quadratic. Its time is
        // measured in benches/config_scale.rs; this checks the result at a size.
        let n = 5_000;
        let list = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
        let yaml = format!(
            "_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n    issuer: http://127.0.0.1:9/\n    \
             auth_methods: [bearer]\n    upstream_headers_claims: [{}]\n    upstream_headers_names: [{}, x-c7]\n",
            list(&|k| format!("c{k}")) + ", c7",
            list(&|k| format!("x-c{k}")),
        );
        let cfg = crate::config::load_str(&yaml, "k", &|_| None).unwrap();
        let errors = compile(&cfg.plugins[0], "k").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "'upstream_headers_names' entry 'x-c7' is named twice");
    }
}
