//! The two boundaries of the JOSE module and their errors.
//!
//! [`JwksError`] is what can go wrong reading a whole JWKS document (the control plane logs
//! it and keeps the last good set); single keys that cannot be used are not errors but
//! [`SkipReason`]s collected on the [`KeySet`](super::KeySet). [`JwtError`] is why a token
//! was refused. Every variant has a short static [`reason`](JwtError::reason) that
//! `display_errors: true` may append to a response: none of them carries token, claim or
//! key material, so they are safe in a body or a log line.

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is larger than [`MAX_JWKS_LEN`](super::MAX_JWKS_LEN).
    #[error("jwks document too large")]
    TooLarge,
    /// The document is not valid JSON, or nests deeper than
    /// [`MAX_JSON_DEPTH`](super::MAX_JSON_DEPTH).
    #[error("jwks is not valid json")]
    Json,
    /// The document is JSON but not an object with a `keys` array (RFC 7517 §5).
    #[error("jwks has no keys array")]
    NotAKeySet,
}

impl JwksError {
    /// A short fixed reason, safe for logs and `display_errors`.
    pub fn reason(&self) -> &'static str {
        match self {
            JwksError::TooLarge => "jwks document too large",
            JwksError::Json => "jwks is not valid json",
            JwksError::NotAKeySet => "jwks has no keys array",
        }
    }
}

/// Why one key of a JWKS was left out of the [`KeySet`](super::KeySet). The set is still
/// built from the other keys (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The entry of `keys` is not a JSON object.
    #[error("key is not a json object")]
    NotAnObject,
    /// A member has the wrong JSON type (named; e.g. `kid` a number, `key_ops` a string).
    #[error("key member has the wrong json type: {0}")]
    WrongType(&'static str),
    /// A member the key type needs is missing (named: `kty`, `n`, `e`, `crv`, `x`, `y`).
    #[error("key member missing: {0}")]
    Missing(&'static str),
    /// A member is not strict unpadded base64url (named).
    #[error("key member is not base64url: {0}")]
    BadBase64(&'static str),
    /// `kty` is not one ringgate verifies with (`oct` included: symmetric keys are never
    /// taken from a JWKS; the HS secret comes from configuration).
    #[error("unsupported key type")]
    UnsupportedKty,
    /// `crv` is not P-256, P-384 (for `EC`) or Ed25519 (for `OKP`).
    #[error("unsupported curve")]
    UnsupportedCurve,
    /// `use` is present and is not `sig` (RFC 7517 §4.2, RFC 8725 §3.1).
    #[error("key use is not sig")]
    UseNotSig,
    /// `key_ops` is present and does not list `verify` (RFC 7517 §4.3).
    #[error("key_ops does not allow verify")]
    OpsNoVerify,
    /// The key's `alg` is not one ringgate verifies (`none`, ES512, RSA-OAEP, …).
    #[error("key alg unsupported")]
    UnsupportedAlg,
    /// The key's `alg` does not fit its `kty`/`crv` (an RSA key labelled ES256).
    #[error("key alg does not match key type")]
    AlgKtyMismatch,
    /// RSA modulus shorter than 2048 bits (RFC 8725 §3.5; NIST SP 800-131A).
    #[error("rsa key shorter than 2048 bits")]
    RsaTooShort,
    /// RSA modulus longer than 8192 bits (ring's limit).
    #[error("rsa key longer than 8192 bits")]
    RsaTooLong,
    /// RSA public exponent even, below 3 or wider than 33 bits (ring's limits).
    #[error("rsa exponent unusable")]
    RsaBadExponent,
    /// EC or OKP coordinate of the wrong length for the curve (RFC 7518 §6.2.1.2).
    #[error("key coordinate has the wrong length")]
    BadCoordinateLength,
    /// More keys than [`MAX_JWKS_KEYS`](super::MAX_JWKS_KEYS) in one document.
    #[error("too many keys in one jwks")]
    TooMany,
}

/// Why a token was refused. Grouped by the step that found it: framing, header, key,
/// signature, claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN).
    #[error("token too large")]
    TooLarge,
    /// Not three dot-separated parts with a non-empty header and signature (RFC 7515 §7.1).
    #[error("token is not a compact jws")]
    Malformed,
    /// A part is not strict unpadded base64url (RFC 7515 §2: no padding, no whitespace, no
    /// non-canonical trailing bits).
    #[error("token part is not base64url")]
    Base64,
    /// The header is not a JSON object, repeats a member, has a member of the wrong type,
    /// or nests too deeply.
    #[error("token header is not valid")]
    Header,
    /// The header has no `alg`.
    #[error("token has no alg")]
    AlgMissing,
    /// `alg` is `none` (any case): unsecured tokens are never accepted.
    #[error("alg none is not accepted")]
    AlgNone,
    /// `alg` is not an algorithm ringgate can verify (ES512, Ed448 keys aside, unknown).
    #[error("token alg unsupported")]
    AlgUnsupported,
    /// `alg` is supported but not in the configured allow-list.
    #[error("token alg not allowed")]
    AlgNotAllowed,
    /// `alg` is HS* and `enable_hs_signatures` is off or no secret is configured.
    #[error("hs signatures are not enabled")]
    HsDisabled,
    /// `crit` is present: ringgate understands no extension (RFC 7515 §4.1.11).
    #[error("token has critical header parameters")]
    Crit,
    /// `typ` is present and not `JWT`, `at+jwt` or `application/at+jwt`.
    #[error("token typ not accepted")]
    Typ,
    /// The token names a `kid` the key set does not hold (the caller may refresh the JWKS
    /// once and retry).
    #[error("no key with the token's kid")]
    UnknownKid,
    /// The token has no `kid` and no key in the set fits its `alg`.
    #[error("no key for the token's alg")]
    NoKeyForAlg,
    /// The key the `kid` names cannot be used with the token's `alg` (RFC 8725 §3.1).
    #[error("key does not permit the token's alg")]
    KeyAlgMismatch,
    /// The signature does not verify.
    #[error("signature invalid")]
    Signature,
    /// The payload is not a JSON object (or nests too deeply).
    #[error("token claims are not a json object")]
    Claims,
    /// A registered claim has the wrong JSON type (named: `exp` as a string, …).
    #[error("claim has the wrong type: {0}")]
    ClaimType(&'static str),
    /// `exp` is required by the policy and absent.
    #[error("token has no exp")]
    ExpMissing,
    /// `exp` has passed (beyond leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iss` is neither the expected issuer nor in `issuers_allowed`.
    #[error("token issuer not allowed")]
    Issuer,
    /// `max_age` is set and the token has no `auth_time`.
    #[error("token has no auth_time")]
    AuthTimeMissing,
    /// `auth_time` is in the future (beyond leeway).
    #[error("token auth_time is in the future")]
    AuthTimeInFuture,
    /// `auth_time` is older than `max_age` (beyond leeway).
    #[error("token authentication is older than max_age")]
    AuthTooOld,
}

impl JwtError {
    /// A short fixed reason, safe for logs and `display_errors` (the same text as
    /// `Display`, as a `&'static str` where the variant has no parameter).
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::TooLarge => "token too large",
            JwtError::Malformed => "token is not a compact jws",
            JwtError::Base64 => "token part is not base64url",
            JwtError::Header => "token header is not valid",
            JwtError::AlgMissing => "token has no alg",
            JwtError::AlgNone => "alg none is not accepted",
            JwtError::AlgUnsupported => "token alg unsupported",
            JwtError::AlgNotAllowed => "token alg not allowed",
            JwtError::HsDisabled => "hs signatures are not enabled",
            JwtError::Crit => "token has critical header parameters",
            JwtError::Typ => "token typ not accepted",
            JwtError::UnknownKid => "no key with the token's kid",
            JwtError::NoKeyForAlg => "no key for the token's alg",
            JwtError::KeyAlgMismatch => "key does not permit the token's alg",
            JwtError::Signature => "signature invalid",
            JwtError::Claims => "token claims are not a json object",
            JwtError::ClaimType(_) => "claim has the wrong type",
            JwtError::ExpMissing => "token has no exp",
            JwtError::Expired => "token expired",
            JwtError::NotYetValid => "token not yet valid",
            JwtError::IssuedInFuture => "token issued in the future",
            JwtError::Issuer => "token issuer not allowed",
            JwtError::AuthTimeMissing => "token has no auth_time",
            JwtError::AuthTimeInFuture => "token auth_time is in the future",
            JwtError::AuthTooOld => "token authentication is older than max_age",
        }
    }

    /// Whether refetching the JWKS could make this token verify (an unknown `kid`, or no
    /// key for its `alg`): the caller's cue for the throttled rediscovery of SPEC §3.
    pub fn wants_key_refresh(&self) -> bool {
        matches!(self, JwtError::UnknownKid | JwtError::NoKeyForAlg)
    }
}
