//! Claims: the registered-claim checks run after the signature, the [`Verified`] result,
//! and Kong's requirement semantics for `scopes_required` / `audience_required`.
//!
//! Time rules (RFC 7519 §4.1.4–4.1.6, with Kong's `leeway`; `now` is Unix seconds from the
//! caller's clock):
//!
//! - `exp`: refused when `now >= exp + leeway`. RFC 7519 says the token must be used
//!   *before* `exp`, so at `now == exp` (leeway 0) it has expired. Kong refuses only when
//!   `now - leeway > exp`, one second later; ringgate follows the RFC.
//! - `nbf`: refused when `now + leeway < nbf` (the RFC's "on or after"; same as Kong).
//! - `iat`: refused when `now + leeway < iat` (issued in the future; same as Kong).
//! - `auth_time`, only with [`Policy::max_age`] (Kong's rule for access tokens): required;
//!   refused when `now + leeway < auth_time` or `now - auth_time - leeway > max_age`.
//!   The token then counts as expiring at `auth_time + max_age + 1` if that comes before
//!   its `exp`: the returned `exp` is the earlier one, so no cache keeps it longer.
//!
//! Each is checked only when present, as Kong does; [`Policy::require_exp`] makes `exp`
//! mandatory. A NumericDate may be a JSON integer or a non-integer number; a fraction is
//! rounded up, which is exact for every rule above with an integer `now`. Any other JSON
//! type (`"exp": "123"`) refuses the token, as does a wrongly typed `iss`, `sub`, `aud` or
//! `jti`.

use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::alg::Alg;
use super::error::JwtError;
use super::policy::Policy;

/// A token whose signature and registered claims passed. Holds the parsed claims for the
/// later checks (`scopes_required`, `audience_required`, upstream headers), which read
/// them through [`Claims`]. `Debug` shows `alg`, `kid`, `exp`, `iss` and the number of
/// claims, not their values (they may carry personal data and must not reach a log line
/// by accident).
#[derive(Clone)]
pub struct Verified {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<Box<str>>,
    pub(crate) claims: Claims,
}

impl Verified {
    /// The algorithm the token was verified with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl std::ops::Deref for Verified {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.claims
    }
}

/// Claims the IdP vouches for: a verified token's payload ([`Verified`]), or the IdP's
/// introspection answer for an opaque token ([`Claims::from_introspection`]).
#[derive(Clone)]
pub struct Claims {
    pub(crate) exp: Option<i64>,
    pub(crate) claims: OwnedValue,
    /// The claims are an introspection answer (what `*_introspection_header` sends).
    pub(crate) introspected: bool,
    /// The compact JWS a signed introspection answer (RFC 9701) came in, verified (what
    /// `*_introspection_jwt_header` sends).
    pub(crate) signed_answer: Option<Box<str>>,
    /// The public JWK of the key that verified the token, when the policy keeps it (what
    /// `*_access_token_jwk_header` sends).
    pub(crate) key_jwk: Option<Box<str>>,
}

impl Claims {
    /// An RFC 7662 introspection answer as claims: a JSON object, whose `exp` (when a
    /// number) bounds how long the token may be cached. `None` for anything else.
    pub fn from_introspection(claims: OwnedValue) -> Option<Claims> {
        claims.as_object()?;
        // As a JWT's `exp`: `as_f64` alone would miss the integers RFC 7662 answers carry.
        let exp = numeric_date(&claims, "exp").ok().flatten();
        Some(Claims { exp, claims, introspected: true, signed_answer: None, key_jwk: None })
    }

    /// These claims as the answer of the signed introspection answer `jws`, which the
    /// caller has verified.
    pub fn with_signed_answer(mut self, jws: &str) -> Claims {
        self.signed_answer = Some(jws.into());
        self
    }

    /// The signed introspection answer these claims came in, if they did.
    pub fn signed_answer(&self) -> Option<&str> {
        self.signed_answer.as_deref()
    }

    /// The public JWK (JSON) of the key that verified the token, if the policy kept it.
    pub fn key_jwk(&self) -> Option<&str> {
        self.key_jwk.as_deref()
    }

    /// `exp` in Unix seconds, if present (a pre-1970 value reads as 0). For the token
    /// cache: the entry must not outlive it.
    pub fn exp(&self) -> Option<u64> {
        self.exp.map(|e| e.max(0) as u64)
    }

    /// An introspection answer's `active` is `true` (RFC 7662 §2.2: anything else,
    /// absent included, is an inactive token).
    pub fn active(&self) -> bool {
        self.claims.get("active").and_then(|a| a.as_bool()) == Some(true)
    }

    /// `iss`, if present.
    pub fn iss(&self) -> Option<&str> {
        self.claims.get("iss").and_then(|v| v.as_str())
    }

    /// Whether these are an introspection answer rather than a token's payload.
    pub fn introspected(&self) -> bool {
        self.introspected
    }

    /// All claims, as parsed.
    pub fn claims(&self) -> &OwnedValue {
        &self.claims
    }

    /// A top-level claim.
    pub fn claim(&self, name: &str) -> Option<&OwnedValue> {
        self.claims.get(name)
    }

    /// A claim by path into nested objects (Kong's `*_claim` arrays:
    /// `["realm_access", "roles"]`).
    pub fn claim_path<S: AsRef<str>>(&self, path: &[S]) -> Option<&OwnedValue> {
        let mut at = &self.claims;
        for step in path {
            at = at.get(step.as_ref())?;
        }
        if path.is_empty() {
            None
        } else {
            Some(at)
        }
    }

    /// Whether `aud` (a string or an array of strings) contains `audience`.
    pub fn audience_contains(&self, audience: &str) -> bool {
        match self.claims.get("aud") {
            Some(v) if v.is_str() => v.as_str() == Some(audience),
            Some(v) => v.as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(audience))),
            None => false,
        }
    }

    /// The granted scopes: `scope` (space-delimited, RFC 8693 §4.2 / RFC 9068) or, when
    /// absent, `scp` (a string or an array, as some IdPs send it).
    pub fn scopes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let v = match self.claims.get("scope").or_else(|| self.claims.get("scp")) {
            Some(v) => v,
            None => return out,
        };
        if let Some(s) = v.as_str() {
            out.extend(s.split_ascii_whitespace());
        } else if let Some(a) = v.as_array() {
            out.extend(a.iter().filter_map(|x| x.as_str()));
        }
        out
    }
}

/// Like [`Verified`]'s: `exp`, `iss` and how many claims, never their values.
impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("exp", &self.exp)
            .field("iss", &self.iss())
            .field("claims", &self.claims.as_object().map_or(0, |o| o.len()))
            .field("signed_answer", &self.signed_answer.as_ref().map(|j| j.len()))
            .finish()
    }
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("exp", &self.claims.exp)
            .field("iss", &self.iss())
            .field("claims", &self.claims.claims.as_object().map_or(0, |o| o.len()))
            .finish()
    }
}

/// Reads a NumericDate claim: absent → `None`, a number → its value rounded up and
/// saturated to `i64`, anything else → a type error naming the claim.
fn numeric_date(claims: &OwnedValue, name: &'static str) -> Result<Option<i64>, JwtError> {
    let Some(v) = claims.get(name) else { return Ok(None) };
    if let Some(i) = v.as_i64() {
        return Ok(Some(i));
    }
    if let Some(u) = v.as_u64() {
        return Ok(Some(i64::try_from(u).unwrap_or(i64::MAX)));
    }
    if let Some(f) = v.as_f64() {
        // `as` saturates; JSON has no NaN or infinity.
        return Ok(Some(f.ceil() as i64));
    }
    Err(JwtError::ClaimType(name))
}

fn string_or_absent(claims: &OwnedValue, name: &'static str) -> Result<(), JwtError> {
    match claims.get(name) {
        Some(v) if !v.is_str() => Err(JwtError::ClaimType(name)),
        _ => Ok(()),
    }
}

/// The registered-claim checks, run once the signature has verified. Returns `exp`.
pub(crate) fn check(claims: &OwnedValue, policy: &Policy, now: u64) -> Result<Option<i64>, JwtError> {
    if claims.as_object().is_none() {
        return Err(JwtError::Claims);
    }
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let leeway = i64::try_from(policy.leeway).unwrap_or(i64::MAX);

    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    let auth_time = if policy.max_age.is_some() { numeric_date(claims, "auth_time")? } else { None };
    string_or_absent(claims, "sub")?;
    string_or_absent(claims, "jti")?;
    if let Some(aud) = claims.get("aud") {
        let ok = aud.is_str() || aud.as_array().is_some_and(|a| a.iter().all(|x| x.is_str()));
        if !ok {
            return Err(JwtError::ClaimType("aud"));
        }
    }
    // Kong checks `iss` only when present; the signature already ties the token to a key
    // of this issuer's JWKS.
    if let Some(v) = claims.get("iss") {
        let iss = v.as_str().ok_or(JwtError::ClaimType("iss"))?;
        if !policy.issuer_ok(iss) {
            return Err(JwtError::Issuer);
        }
    }

    match exp {
        Some(exp) if now >= exp.saturating_add(leeway) => return Err(JwtError::Expired),
        None if policy.require_exp => return Err(JwtError::ExpMissing),
        _ => {}
    }
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    if iat.is_some_and(|iat| now.saturating_add(leeway) < iat) {
        return Err(JwtError::IssuedInFuture);
    }
    let Some(max_age) = policy.max_age else { return Ok(exp) };
    let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
    let auth_time = auth_time.ok_or(JwtError::AuthTimeMissing)?;
    if now.saturating_add(leeway) < auth_time {
        return Err(JwtError::AuthTimeInFuture);
    }
    if now.saturating_sub(auth_time).saturating_sub(leeway) > max_age {
        return Err(JwtError::AuthTooOld);
    }
    // The first second at which the age check above refuses, less the leeway that `exp`
    // is given too.
    let too_old_at = auth_time.saturating_add(max_age).saturating_add(1);
    Ok(Some(exp.map_or(too_old_at, |exp| exp.min(too_old_at))))
}

/// Kong's `scopes_required` / `audience_required` / `groups_required` test: met when
/// **any** element of `required` is met, and an element is met when **all** of its
/// space-separated words are among the claim's values. The claim may be a
/// space-delimited string, an array (each member one value; numbers and booleans compare
/// by their JSON text) or a single number/boolean.
///
/// An empty `required` is met (nothing is required). An element with no words (`""`) is
/// never met: an empty config string must not turn into "anything goes". A missing claim
/// meets nothing.
pub fn requirement_met<S: AsRef<str>>(required: &[S], claim: Option<&OwnedValue>) -> bool {
    if required.is_empty() {
        return true;
    }
    let Some(claim) = claim else { return false };
    required.iter().any(|element| {
        let mut words = element.as_ref().split_ascii_whitespace().peekable();
        words.peek().is_some() && words.all(|word| claim_has(claim, word))
    })
}

/// Whether a claim value holds `word`.
fn claim_has(claim: &OwnedValue, word: &str) -> bool {
    if let Some(s) = claim.as_str() {
        return s.split_ascii_whitespace().any(|v| v == word);
    }
    if let Some(items) = claim.as_array() {
        return items.iter().any(|item| item.as_str().map_or_else(|| scalar_is(item, word), |s| s == word));
    }
    scalar_is(claim, word)
}

/// A number or boolean compared with a word by its JSON text. An integer's text is its
/// decimal digits (`05`, `+5` and `-0` are not 5 or 0); a fraction's text is not unique,
/// so it compares by value.
fn scalar_is(v: &OwnedValue, word: &str) -> bool {
    if let Some(b) = v.as_bool() {
        return word == if b { "true" } else { "false" };
    }
    if let Some(i) = v.as_i64() {
        return word == itoa::Buffer::new().format(i);
    }
    if let Some(u) = v.as_u64() {
        return word == itoa::Buffer::new().format(u);
    }
    if let Some(f) = v.as_f64() {
        return word.parse::<f64>() == Ok(f);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> OwnedValue {
        simd_json::to_owned_value(&mut s.as_bytes().to_vec()).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn requirement_is_or_of_elements_and_of_words() {
        let scope = json(r#""openid email profile""#);
        assert!(requirement_met(&strings(&["openid"]), Some(&scope)));
        assert!(requirement_met(&strings(&["email openid"]), Some(&scope)));
        assert!(requirement_met(&strings(&["admin", "profile email"]), Some(&scope)));
        assert!(!requirement_met(&strings(&["admin", "profile admin"]), Some(&scope)));
        assert!(!requirement_met(&strings(&["open"]), Some(&scope)));
    }

    #[test]
    fn requirement_reads_arrays_and_scalars() {
        let aud = json(r#"["api://a", "api://b", 7, true]"#);
        assert!(requirement_met(&strings(&["api://b"]), Some(&aud)));
        assert!(requirement_met(&strings(&["api://a api://b"]), Some(&aud)));
        assert!(requirement_met(&strings(&["7"]), Some(&aud)));
        assert!(requirement_met(&strings(&["true"]), Some(&aud)));
        assert!(!requirement_met(&strings(&["api://c"]), Some(&aud)));
        // An array member is one value, not split on spaces.
        let groups = json(r#"["team a"]"#);
        assert!(!requirement_met(&strings(&["team"]), Some(&groups)));
        assert!(requirement_met(&strings(&["42"]), Some(&json("42"))));
        assert!(!requirement_met(&strings(&["4"]), Some(&json("42"))));
        // Integers by their text: found by the requirement property test.
        for (word, claim) in [("042", "42"), ("+42", "42"), ("-0", "0"), ("1e1", "10")] {
            assert!(!requirement_met(&strings(&[word]), Some(&json(claim))), "{word} in {claim}");
        }
        assert!(requirement_met(&strings(&["-7", "18446744073709551615"]), Some(&json("[18446744073709551615]"))));
        assert!(requirement_met(&strings(&["1.5"]), Some(&json("[1.50]"))));
        assert!(requirement_met(&strings(&["42"]), Some(&json("[42.0]"))));
        assert!(!requirement_met(&strings(&["x"]), Some(&json("{}"))));
    }

    #[test]
    fn empty_requirements_and_missing_claims() {
        let none: [&str; 0] = [];
        assert!(requirement_met(&none, None));
        assert!(!requirement_met(&strings(&["openid"]), None));
        assert!(!requirement_met(&strings(&["", "  "]), Some(&json(r#""a""#))));
    }

    fn verified(claims: &str) -> Verified {
        Verified {
            alg: Alg::RS256,
            kid: None,
            claims: Claims { exp: None, claims: json(claims), introspected: false, signed_answer: None, key_jwk: None },
        }
    }

    #[test]
    fn audience_contains_string_or_array_member() {
        assert!(verified(r#"{"aud":"api"}"#).audience_contains("api"));
        assert!(verified(r#"{"aud":["x","api"]}"#).audience_contains("api"));
        assert!(!verified(r#"{"aud":["x"]}"#).audience_contains("api"));
        assert!(!verified(r#"{"aud":"api x"}"#).audience_contains("api"));
        assert!(!verified(r#"{}"#).audience_contains("api"));
    }

    #[test]
    fn scopes_from_scope_or_scp() {
        assert_eq!(verified(r#"{"scope":"a  b c"}"#).scopes(), ["a", "b", "c"]);
        assert_eq!(verified(r#"{"scp":["a","b"]}"#).scopes(), ["a", "b"]);
        assert_eq!(verified(r#"{"scope":"a","scp":["b"]}"#).scopes(), ["a"]);
        assert!(verified(r#"{"scope":5}"#).scopes().is_empty());
    }

    #[test]
    fn debug_shows_no_claim_values() {
        let shown = format!("{:?}", verified(r#"{"iss":"i","email":"someone@example.com","sub":"s"}"#));
        assert!(shown.contains(r#"iss: Some("i")"#) && shown.contains("claims: 3"), "{shown}");
        assert!(!shown.contains("someone"), "{shown}");
    }

    #[test]
    fn introspection_exp_of_any_number_shape_bounds_the_cache() {
        // Regression: an integer `exp` (the usual form) read as absent, so an introspected
        // token was cached for `cache_ttl` past its expiry.
        let exp = |answer: &str| Claims::from_introspection(json(answer)).unwrap().exp();
        assert_eq!(exp(r#"{"active":true,"exp":1767225900}"#), Some(1_767_225_900));
        assert_eq!(exp(r#"{"exp":1767225900.2}"#), Some(1_767_225_901));
        assert_eq!(exp(r#"{"exp":-5}"#), Some(0));
        assert_eq!(exp(r#"{"exp":18446744073709551615}"#), Some(i64::MAX as u64));
        assert_eq!(exp(r#"{"exp":1e300}"#), Some(i64::MAX as u64));
        assert_eq!(exp(r#"{"exp":"1767225900"}"#), None);
        assert_eq!(exp(r#"{"active":true}"#), None);
        assert!(Claims::from_introspection(json("[1]")).is_none());
    }

    #[test]
    fn claim_path_walks_nested_objects() {
        let v = verified(r#"{"realm_access":{"roles":["r1"]},"sub":"s"}"#);
        assert!(v.claim_path(&["realm_access", "roles"]).is_some_and(|r| r.is_array()));
        assert_eq!(v.claim_path(&["sub"]).and_then(|s| s.as_str()), Some("s"));
        assert!(v.claim_path(&["sub", "x"]).is_none());
        assert!(v.claim_path::<&str>(&[]).is_none());
    }
}
