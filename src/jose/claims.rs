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
use simd_json::value::tape;
use simd_json::{OwnedValue, Tape};

use super::alg::Alg;
use super::error::JwtError;
use super::policy::Policy;

/// A token whose signature and registered claims passed. Holds the parsed claims for the
/// later checks (`scopes_required`, `audience_required`, upstream headers), which read
/// them through [`Claims`]. `Debug` shows `alg`, `kid`, `exp`, `iss` and the number of
/// claims, not their values (they may carry personal data and must not reach a log line
/// by accident).
///
/// `'p` is the decoded payload's: [`verify_into`](super::verify_into) leaves the claims
/// as a tape over the text it decoded into the caller's buffer, which is how the token
/// paths read them (checked, turned into header lines and facts, then dropped);
/// [`verify`](super::verify) gives `Verified<'static>` with an owned tree.
pub struct Verified<'p> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<Box<str>>,
    pub(crate) claims: Claims<'p>,
}

impl Verified<'_> {
    /// The algorithm the token was verified with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The same token with its claims in an owned tree, for a caller that keeps them.
    pub fn into_owned(self) -> Verified<'static> {
        Verified { alg: self.alg, kid: self.kid, claims: self.claims.into_owned() }
    }
}

impl<'p> std::ops::Deref for Verified<'p> {
    type Target = Claims<'p>;
    fn deref(&self) -> &Claims<'p> {
        &self.claims
    }
}

/// Where parsed claims live: simd-json's tape over decoded text someone else keeps (one
/// allocation for the nodes, strings borrowed), or an owned tree (one allocation per
/// member, what an introspection answer arrives as).
enum Tree<'p> {
    Tape(Tape<'p>),
    Owned(OwnedValue),
}

/// Claims the IdP vouches for: a verified token's payload ([`Verified`]), or the IdP's
/// introspection answer for an opaque token ([`Claims::from_introspection`]).
pub struct Claims<'p> {
    pub(crate) exp: Option<i64>,
    tree: Tree<'p>,
    /// The claims are an introspection answer (what `*_introspection_header` sends).
    pub(crate) introspected: bool,
    /// The compact JWS a signed introspection answer (RFC 9701) came in, verified (what
    /// `*_introspection_jwt_header` sends).
    pub(crate) signed_answer: Option<Box<str>>,
    /// The public JWK of the key that verified the token, when the policy keeps it (what
    /// `*_access_token_jwk_header` sends).
    pub(crate) key_jwk: Option<Box<str>>,
}

impl<'p> Claims<'p> {
    /// A token's claims on a tape; `exp` as [`check`] read it.
    pub(crate) fn of_tape(tape: Tape<'p>, exp: Option<i64>) -> Claims<'p> {
        Claims { exp, tree: Tree::Tape(tape), introspected: false, signed_answer: None, key_jwk: None }
    }

    /// A token's claims as an owned tree (tests build them from text).
    #[cfg(test)]
    pub(crate) fn of_owned(claims: OwnedValue) -> Claims<'static> {
        Claims { exp: None, tree: Tree::Owned(claims), introspected: false, signed_answer: None, key_jwk: None }
    }

    /// An RFC 7662 introspection answer as claims: a JSON object, whose `exp` (when a
    /// number) bounds how long the token may be cached. `None` for anything else.
    pub fn from_introspection(claims: OwnedValue) -> Option<Claims<'static>> {
        claims.as_object()?;
        // As a JWT's `exp`: `as_f64` alone would miss the integers RFC 7662 answers carry.
        let exp = numeric_date(ClaimValue::Owned(&claims).get("exp"), "exp").ok().flatten();
        Some(Claims { exp, tree: Tree::Owned(claims), introspected: true, signed_answer: None, key_jwk: None })
    }

    /// The same claims in an owned tree.
    pub fn into_owned(self) -> Claims<'static> {
        let tree = match self.tree {
            Tree::Tape(ref t) => Tree::Owned(ClaimValue::Tape(t.as_value()).to_owned_value()),
            Tree::Owned(v) => Tree::Owned(v),
        };
        Claims {
            exp: self.exp,
            tree,
            introspected: self.introspected,
            signed_answer: self.signed_answer,
            key_jwk: self.key_jwk,
        }
    }

    /// These claims as the answer of the signed introspection answer `jws`, which the
    /// caller has verified.
    pub fn with_signed_answer(mut self, jws: &str) -> Claims<'p> {
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
        self.claim("active").and_then(|a| a.as_bool()) == Some(true)
    }

    /// `iss`, if present.
    pub fn iss(&self) -> Option<&str> {
        self.claim("iss").and_then(|v| v.as_str())
    }

    /// Whether these are an introspection answer rather than a token's payload.
    pub fn introspected(&self) -> bool {
        self.introspected
    }

    /// All claims, as parsed.
    pub fn claims(&self) -> ClaimValue<'_> {
        match &self.tree {
            Tree::Tape(t) => ClaimValue::Tape(t.as_value()),
            Tree::Owned(v) => ClaimValue::Owned(v),
        }
    }

    /// A top-level claim.
    pub fn claim(&self, name: &str) -> Option<ClaimValue<'_>> {
        self.claims().get(name)
    }

    /// A claim by path into nested objects (Kong's `*_claim` arrays:
    /// `["realm_access", "roles"]`).
    pub fn claim_path<S: AsRef<str>>(&self, path: &[S]) -> Option<ClaimValue<'_>> {
        let mut at = self.claims();
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
        match self.claim("aud") {
            Some(v) if v.is_str() => v.as_str() == Some(audience),
            Some(v) => v.items().is_some_and(|mut a| a.any(|x| x.as_str() == Some(audience))),
            None => false,
        }
    }

    /// The granted scopes: `scope` (space-delimited, RFC 8693 §4.2 / RFC 9068) or, when
    /// absent, `scp` (a string or an array, as some IdPs send it).
    pub fn scopes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let v = match self.claim("scope").or_else(|| self.claim("scp")) {
            Some(v) => v,
            None => return out,
        };
        if let Some(s) = v.as_str() {
            out.extend(s.split_ascii_whitespace());
        } else if let Some(a) = v.items() {
            out.extend(a.filter_map(|x| x.as_str()));
        }
        out
    }
}

/// Like [`Verified`]'s: `exp`, `iss` and how many claims, never their values.
impl std::fmt::Debug for Claims<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("exp", &self.exp)
            .field("iss", &self.iss())
            .field("claims", &self.claims().members().unwrap_or(0))
            .field("signed_answer", &self.signed_answer.as_ref().map(|j| j.len()))
            .finish()
    }
}

impl std::fmt::Debug for Verified<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("exp", &self.claims.exp)
            .field("iss", &self.iss())
            .field("claims", &self.claims().members().unwrap_or(0))
            .finish()
    }
}

/// One JSON value of a claims document, wherever the document lives (see [`Claims`]).
/// It reads as simd-json's values do; an object with a repeated member name reads as its
/// last, on a tape as in an owned tree (RFC 7519 §4 allows a parser that keeps only the
/// lexically last; an owned tree keeps only the last one inserted).
#[derive(Clone, Copy)]
pub enum ClaimValue<'a> {
    Tape(tape::Value<'a, 'a>),
    Owned(&'a OwnedValue),
}

impl<'a> ClaimValue<'a> {
    /// An object's member `name` (its last, when repeated); `None` for a missing member
    /// or a value that is no object.
    pub fn get(self, name: &str) -> Option<ClaimValue<'a>> {
        match self {
            ClaimValue::Tape(v) => {
                v.as_object()?.iter().filter(|(k, _)| *k == name).last().map(|(_, v)| ClaimValue::Tape(v))
            }
            ClaimValue::Owned(v) => v.get(name).map(ClaimValue::Owned),
        }
    }

    /// An object's members in document order (with repeats, on a tape); `None` for a
    /// value that is no object.
    fn object_members(self) -> Option<impl Iterator<Item = (&'a str, ClaimValue<'a>)>> {
        Some(match self {
            ClaimValue::Tape(v) => Either::Tape(v.as_object()?.iter().map(|(k, v)| (k, ClaimValue::Tape(v)))),
            ClaimValue::Owned(v) => {
                Either::Owned(v.as_object()?.iter().map(|(k, v)| (k.as_str(), ClaimValue::Owned(v))))
            }
        })
    }

    /// An array's items; `None` for a value that is no array.
    pub fn items(self) -> Option<impl Iterator<Item = ClaimValue<'a>>> {
        Some(match self {
            ClaimValue::Tape(v) => Either::Tape(v.as_array()?.iter().map(ClaimValue::Tape)),
            ClaimValue::Owned(v) => Either::Owned(v.as_array()?.iter().map(ClaimValue::Owned)),
        })
    }

    /// How many members an object has (on a tape, a repeated name counts each time), or
    /// items an array; `None` for a scalar.
    pub fn members(self) -> Option<usize> {
        match self {
            ClaimValue::Tape(v) => v.as_object().map(|o| o.len()).or_else(|| v.as_array().map(|a| a.len())),
            ClaimValue::Owned(v) => v.as_object().map(|o| o.len()).or_else(|| v.as_array().map(|a| a.len())),
        }
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self {
            // `as_str` would tie the text to this copy of the tape handle.
            ClaimValue::Tape(v) => v.into_string(),
            ClaimValue::Owned(v) => v.as_str(),
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        match self {
            ClaimValue::Tape(v) => v.as_bool(),
            ClaimValue::Owned(v) => v.as_bool(),
        }
    }

    pub fn as_i64(self) -> Option<i64> {
        match self {
            ClaimValue::Tape(v) => v.as_i64(),
            ClaimValue::Owned(v) => v.as_i64(),
        }
    }

    pub fn as_u64(self) -> Option<u64> {
        match self {
            ClaimValue::Tape(v) => v.as_u64(),
            ClaimValue::Owned(v) => v.as_u64(),
        }
    }

    pub fn as_f64(self) -> Option<f64> {
        match self {
            ClaimValue::Tape(v) => v.as_f64(),
            ClaimValue::Owned(v) => v.as_f64(),
        }
    }

    fn value_type(self) -> simd_json::ValueType {
        match self {
            ClaimValue::Tape(v) => v.value_type(),
            ClaimValue::Owned(v) => v.value_type(),
        }
    }

    pub fn is_null(self) -> bool {
        self.value_type() == simd_json::ValueType::Null
    }

    pub fn is_str(self) -> bool {
        self.value_type() == simd_json::ValueType::String
    }

    pub fn is_number(self) -> bool {
        matches!(
            self.value_type(),
            simd_json::ValueType::I64
                | simd_json::ValueType::U64
                | simd_json::ValueType::F64
                | simd_json::ValueType::I128
                | simd_json::ValueType::U128
        )
    }

    pub fn is_array(self) -> bool {
        self.value_type() == simd_json::ValueType::Array
    }

    pub fn is_object(self) -> bool {
        self.value_type() == simd_json::ValueType::Object
    }

    /// The value as JSON text. An object or array on a tape is written as its owned tree
    /// would be, so a repeated member appears once, with its last value.
    pub fn to_json(self) -> String {
        match self {
            ClaimValue::Tape(v) if v.is_array() || v.is_object() => self.to_owned_value().encode(),
            ClaimValue::Tape(v) => v.encode(),
            ClaimValue::Owned(v) => v.encode(),
        }
    }

    /// The value as an owned tree (a repeated member keeps its last value).
    pub fn to_owned_value(self) -> OwnedValue {
        match self {
            ClaimValue::Tape(v) => OwnedValue::from(simd_json::value::lazy::Value::from_tape(v).into_value()),
            ClaimValue::Owned(v) => v.clone(),
        }
    }
}

/// One of two iterators of the same items: a tape's or an owned tree's.
enum Either<T, O> {
    Tape(T),
    Owned(O),
}

impl<I, T: Iterator<Item = I>, O: Iterator<Item = I>> Iterator for Either<T, O> {
    type Item = I;
    fn next(&mut self) -> Option<I> {
        match self {
            Either::Tape(t) => t.next(),
            Either::Owned(o) => o.next(),
        }
    }
}

/// Reads a NumericDate claim: absent → `None`, a number → its value rounded up and
/// saturated to `i64`, anything else → a type error naming the claim.
fn numeric_date(v: Option<ClaimValue<'_>>, name: &'static str) -> Result<Option<i64>, JwtError> {
    let Some(v) = v else { return Ok(None) };
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

fn string_or_absent(v: Option<ClaimValue<'_>>, name: &'static str) -> Result<(), JwtError> {
    match v {
        Some(v) if !v.is_str() => Err(JwtError::ClaimType(name)),
        _ => Ok(()),
    }
}

/// The registered claims [`check`] reads, taken in one pass over the members (the last
/// of a repeated name, as [`ClaimValue::get`] reads it).
#[derive(Default)]
struct Registered<'a> {
    exp: Option<ClaimValue<'a>>,
    nbf: Option<ClaimValue<'a>>,
    iat: Option<ClaimValue<'a>>,
    auth_time: Option<ClaimValue<'a>>,
    sub: Option<ClaimValue<'a>>,
    jti: Option<ClaimValue<'a>>,
    aud: Option<ClaimValue<'a>>,
    iss: Option<ClaimValue<'a>>,
}

impl<'a> Registered<'a> {
    /// `None` when `claims` is no object.
    fn of(claims: ClaimValue<'a>) -> Option<Registered<'a>> {
        let mut r = Registered::default();
        for (name, v) in claims.object_members()? {
            let slot = match name {
                "exp" => &mut r.exp,
                "nbf" => &mut r.nbf,
                "iat" => &mut r.iat,
                "auth_time" => &mut r.auth_time,
                "sub" => &mut r.sub,
                "jti" => &mut r.jti,
                "aud" => &mut r.aud,
                "iss" => &mut r.iss,
                _ => continue,
            };
            *slot = Some(v);
        }
        Some(r)
    }
}

/// The registered-claim checks, run once the signature has verified. Returns `exp`.
pub(crate) fn check(claims: ClaimValue<'_>, policy: &Policy, now: u64) -> Result<Option<i64>, JwtError> {
    let r = Registered::of(claims).ok_or(JwtError::Claims)?;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let leeway = i64::try_from(policy.leeway).unwrap_or(i64::MAX);

    let exp = numeric_date(r.exp, "exp")?;
    let nbf = numeric_date(r.nbf, "nbf")?;
    let iat = numeric_date(r.iat, "iat")?;
    let auth_time = if policy.max_age.is_some() { numeric_date(r.auth_time, "auth_time")? } else { None };
    string_or_absent(r.sub, "sub")?;
    string_or_absent(r.jti, "jti")?;
    if let Some(aud) = r.aud {
        let ok = aud.is_str() || aud.items().is_some_and(|mut a| a.all(|x| x.is_str()));
        if !ok {
            return Err(JwtError::ClaimType("aud"));
        }
    }
    // Kong checks `iss` only when present; the signature already ties the token to a key
    // of this issuer's JWKS.
    if let Some(v) = r.iss {
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
pub fn requirement_met<S: AsRef<str>>(required: &[S], claim: Option<ClaimValue<'_>>) -> bool {
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
fn claim_has(claim: ClaimValue<'_>, word: &str) -> bool {
    if let Some(s) = claim.as_str() {
        return s.split_ascii_whitespace().any(|v| v == word);
    }
    if let Some(mut items) = claim.items() {
        return items.any(|item| item.as_str().map_or_else(|| scalar_is(item, word), |s| s == word));
    }
    scalar_is(claim, word)
}

/// A number or boolean compared with a word by its JSON text. An integer's text is its
/// decimal digits (`05`, `+5` and `-0` are not 5 or 0); a fraction's text is not unique,
/// so it compares by value.
fn scalar_is(v: ClaimValue<'_>, word: &str) -> bool {
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
        assert!(requirement_met(&strings(&["openid"]), Some(ClaimValue::Owned(&scope))));
        assert!(requirement_met(&strings(&["email openid"]), Some(ClaimValue::Owned(&scope))));
        assert!(requirement_met(&strings(&["admin", "profile email"]), Some(ClaimValue::Owned(&scope))));
        assert!(!requirement_met(&strings(&["admin", "profile admin"]), Some(ClaimValue::Owned(&scope))));
        assert!(!requirement_met(&strings(&["open"]), Some(ClaimValue::Owned(&scope))));
    }

    #[test]
    fn requirement_reads_arrays_and_scalars() {
        let aud = json(r#"["api://a", "api://b", 7, true]"#);
        assert!(requirement_met(&strings(&["api://b"]), Some(ClaimValue::Owned(&aud))));
        assert!(requirement_met(&strings(&["api://a api://b"]), Some(ClaimValue::Owned(&aud))));
        assert!(requirement_met(&strings(&["7"]), Some(ClaimValue::Owned(&aud))));
        assert!(requirement_met(&strings(&["true"]), Some(ClaimValue::Owned(&aud))));
        assert!(!requirement_met(&strings(&["api://c"]), Some(ClaimValue::Owned(&aud))));
        // An array member is one value, not split on spaces.
        let groups = json(r#"["team a"]"#);
        assert!(!requirement_met(&strings(&["team"]), Some(ClaimValue::Owned(&groups))));
        assert!(requirement_met(&strings(&["42"]), Some(ClaimValue::Owned(&json("42")))));
        assert!(!requirement_met(&strings(&["4"]), Some(ClaimValue::Owned(&json("42")))));
        // Integers by their text: found by the requirement property test.
        for (word, claim) in [("042", "42"), ("+42", "42"), ("-0", "0"), ("1e1", "10")] {
            assert!(!requirement_met(&strings(&[word]), Some(ClaimValue::Owned(&json(claim)))), "{word} in {claim}");
        }
        assert!(requirement_met(
            &strings(&["-7", "18446744073709551615"]),
            Some(ClaimValue::Owned(&json("[18446744073709551615]")))
        ));
        assert!(requirement_met(&strings(&["1.5"]), Some(ClaimValue::Owned(&json("[1.50]")))));
        assert!(requirement_met(&strings(&["42"]), Some(ClaimValue::Owned(&json("[42.0]")))));
        assert!(!requirement_met(&strings(&["x"]), Some(ClaimValue::Owned(&json("{}")))));
    }

    #[test]
    fn empty_requirements_and_missing_claims() {
        let none: [&str; 0] = [];
        assert!(requirement_met(&none, None));
        assert!(!requirement_met(&strings(&["openid"]), None));
        assert!(!requirement_met(&strings(&["", "  "]), Some(ClaimValue::Owned(&json(r#""a""#)))));
    }

    fn verified(claims: &str) -> Verified<'static> {
        Verified { alg: Alg::RS256, kid: None, claims: Claims::of_owned(json(claims)) }
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
