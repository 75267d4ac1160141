//! JOSE: compact JWS parsing, JWKS key sets, signature verification with `ring`, and the
//! JWT claim checks of Kong's `openid-connect` plugin.
//!
//! Place in the request path: the control plane calls [`verify_into`] once on each access
//! token it fetches (SPEC §1.5); a worker calls it on a `bearer` token a caller presents
//! (SPEC §1.7), in front of its per-core cache of verified tokens. ([`verify`] is the same
//! with the claims handed back as an owned tree.) [`KeySet`]s are built on the
//! control plane from JWKS documents and shared immutably; [`Policy`] is built once from
//! the plugin config. Nothing here blocks, locks or reads the clock: `now` is passed in.
//!
//! What [`verify`] does, in order (RFC 7515 §5.2, RFC 7519 §7.2, RFC 8725):
//!
//! 1. Framing: at most [`MAX_TOKEN_LEN`] bytes; exactly three `.`-separated parts; header
//!    and signature non-empty; each part strict unpadded base64url.
//! 2. Header (simd-json): a JSON object without repeated members, nested at most
//!    [`MAX_JSON_DEPTH`] deep (as is the payload). `alg` is required; `none`
//!    (any case) and algorithms ring cannot verify are refused; the algorithm must be in
//!    the policy's allow-list, and HS* also needs the policy's HS secret. `crit` in any
//!    form is refused, as ringgate understands no extension. `typ`, when present, must be
//!    `JWT`, `at+jwt` (RFC 9068), or either with the `application/` prefix,
//!    case-insensitively. `jku`, `x5u`, `jwk` and `x5c` are ignored: keys only ever come
//!    from the configured JWKS.
//! 3. Key: [`KeySet::find`] by `kid`+`alg`, then `kid`, then `alg` alone when the token has
//!    no `kid`; the key's type, curve and pinned `alg` must permit the token's `alg`. HS*
//!    uses only the configured secret, never JWKS material.
//! 4. Signature over `header.payload` with ring (fixed-width `r||s` for ECDSA).
//! 5. Claims (see [`claims`]): payload a JSON object; `exp`/`nbf`/`iat` against `now` with
//!    leeway (and `auth_time` under `max_age`); `iss` against the issuer; registered
//!    claims of the wrong JSON type refused.
//!
//! Cost: one RSA-2048 verification dominates (tens of µs); the framing, two small JSON
//! parses and claim checks add a microsecond or two. [`verify_into`], what the token
//! paths call, reads the claims in place as a simd-json tape over the decoded payload,
//! so the allocations (decoded parts, the two tapes, `kid`) do not grow with the number
//! of claims (`benches/jwt.rs` compares it against a bare ring verification). The token
//! size cap keeps the parse work bounded whatever a caller sends: 16 KiB is far above real
//! access tokens (1–3 KiB, a few KiB with many groups) and well inside any header limit.

pub mod alg;
pub mod claims;
pub mod dpop;
pub mod error;
pub mod jwk;
pub mod policy;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde::Deserialize;

pub use alg::{Alg, AlgSet};
pub use claims::{requirement_met, ClaimValue, Claims, Verified};
pub use error::{JwksError, JwtError, SkipReason};
pub use jwk::{Jwk, KeySet, SkippedKey};
pub use policy::{HmacSecret, Policy};

use alg::{AlgParseError, Scheme};

/// Longest token [`verify`] reads, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest JWKS document [`KeySet::from_jwks`] reads, in bytes.
pub const MAX_JWKS_LEN: usize = 1024 * 1024;

/// Most keys taken from one JWKS document; the rest are skipped with
/// [`SkipReason::TooMany`].
pub const MAX_JWKS_KEYS: usize = 256;

/// Longest signature ring can produce here (RSA-8192), so the signature decodes on the
/// stack.
const MAX_SIG_LEN: usize = 1024;

/// Deepest nesting of JSON arrays and objects read from a token, a JWKS or another
/// untrusted document. simd-json builds values (and skips unread members) recursively, so
/// a few KiB of `[` would overflow a thread's stack and abort the whole process; real
/// headers, claims and key sets nest a handful of levels.
pub const MAX_JSON_DEPTH: usize = 128;

thread_local! {
    /// simd-json's scratch buffers (structural index, string buffer, aligned copy of the
    /// input), kept per thread and reused, so a verification does not allocate and free a
    /// set for each of its two parses. They grow to the largest document parsed on the
    /// thread, which [`MAX_TOKEN_LEN`] and the IdP answer limits bound.
    static PARSE_BUFFERS: std::cell::RefCell<simd_json::Buffers> = std::cell::RefCell::new(simd_json::Buffers::default());
}

/// Runs `f` with this thread's simd-json buffers, or with fresh ones should a parse ever
/// run inside another.
fn with_parse_buffers<R>(f: impl FnOnce(&mut simd_json::Buffers) -> R) -> R {
    PARSE_BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => f(&mut buffers),
        Err(_) => f(&mut simd_json::Buffers::default()),
    })
}

/// `simd_json::to_owned_value` on this thread's reused buffers.
pub(crate) fn parse_owned(json: &mut [u8]) -> simd_json::Result<simd_json::OwnedValue> {
    with_parse_buffers(|b| simd_json::owned::to_value_with_buffers(json, b))
}

/// `simd_json::serde::from_slice` on this thread's reused buffers.
pub(crate) fn parse_serde<'a, T: Deserialize<'a>>(json: &'a mut [u8]) -> simd_json::Result<T> {
    with_parse_buffers(|b| simd_json::serde::from_slice_with_buffers(json, b))
}

/// `simd_json::to_tape` on this thread's reused buffers: the claims of a token, read in
/// place (strings borrow `json`) with one allocation for the tape's nodes.
pub(crate) fn parse_tape(json: &mut [u8]) -> simd_json::Result<simd_json::Tape<'_>> {
    with_parse_buffers(|b| simd_json::to_tape_with_buffers(json, b))
}

/// Whether `json` nests arrays and objects at most [`MAX_JSON_DEPTH`] deep. Run before
/// handing untrusted text to simd-json. Brackets inside strings do not count; for text
/// that is not JSON the answer does not matter, as the parser then refuses it anyway.
pub(crate) fn json_depth_ok(json: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            // A string is skipped whole, to its closing quote, stepping over each escaped
            // byte: most of a token's claims are strings, and memchr reads them in wide
            // steps. An unterminated string ends the text, which the parser refuses.
            b'"' => loop {
                i += 1;
                match memchr::memchr2(b'"', b'\\', &json[i.min(json.len())..]) {
                    Some(j) if json[i + j] == b'\\' => i += j + 1,
                    Some(j) => {
                        i += j;
                        break;
                    }
                    None => return true,
                }
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    true
}

/// Whether a parsed tape nests arrays and objects at most [`MAX_JSON_DEPTH`] deep, as
/// [`json_depth_ok`] reads its text. simd-json builds a tape without recursion, but an
/// owned tree made from it, its JSON text and its drop all recurse; a tape has a node
/// per value rather than per byte, so this reads less than the text check would.
pub(crate) fn tape_depth_ok(nodes: &[simd_json::Node<'_>]) -> bool {
    // Where each open container's nodes end, innermost last.
    let mut ends = [0usize; MAX_JSON_DEPTH];
    let mut depth = 0;
    for (i, node) in nodes.iter().enumerate() {
        while depth > 0 && ends[depth - 1] <= i {
            depth -= 1;
        }
        if let simd_json::Node::Array { count, .. } | simd_json::Node::Object { count, .. } = *node {
            if depth == MAX_JSON_DEPTH {
                return false;
            }
            ends[depth] = i.saturating_add(count).saturating_add(1);
            depth += 1;
        }
    }
    true
}

/// The three parts of a compact JWS, `header.payload.signature`, with the header and the
/// signature non-empty and no further `.`; `None` otherwise.
pub(crate) fn compact_parts(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let d1 = memchr::memchr(b'.', bytes)?;
    let d2 = d1 + 1 + memchr::memchr(b'.', &bytes[d1 + 1..])?;
    let (header, payload, sig) = (&bytes[..d1], &bytes[d1 + 1..d2], &bytes[d2 + 1..]);
    if header.is_empty() || sig.is_empty() || memchr::memchr(b'.', sig).is_some() {
        return None;
    }
    Some((header, payload, sig))
}

/// Whether decoded JSON text is an object (its first non-blank byte is `{`: serde's
/// derived visitors would take an array positionally, and a JOSE header must be an
/// object, RFC 7515 §4) nested within [`MAX_JSON_DEPTH`].
pub(crate) fn json_object_ok(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && json_depth_ok(json)
}

/// Strict base64url: the URL-safe alphabet, no padding, no whitespace, canonical trailing
/// bits (RFC 7515 §2, RFC 4648 §5).
pub(crate) fn b64_decode(input: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(input).ok()
}

pub(crate) fn b64_encode(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

/// Marks a header member as present, whatever its value.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Present, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

/// The header members ringgate reads. Serde refuses a repeated member among these (RFC
/// 7515 §4: names must be unique) and a member of the wrong type; others are ignored.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Present,
}

fn typ_accepted(typ: &str, introspection_answer: bool) -> bool {
    // `get` rather than indexing: a multi-byte character at byte 12 must not panic.
    let t = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    if introspection_answer {
        return t.eq_ignore_ascii_case("token-introspection+jwt");
    }
    t.eq_ignore_ascii_case("jwt") || t.eq_ignore_ascii_case("at+jwt")
}

/// A JWS whose header passed and whose signature verified; the payload is not yet
/// interpreted. [`verify`] goes on to the claims; tests use this step alone for RFC
/// examples whose payload is text. `Debug` shows the payload's length only.
pub struct VerifiedJws {
    /// The algorithm the signature was checked with.
    pub alg: Alg,
    /// The header's `kid`.
    pub kid: Option<Box<str>>,
    /// The decoded payload.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for VerifiedJws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedJws")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Steps 1–4 of the module docs: framing, header, key, signature.
pub fn verify_signature(token: &str, keys: &KeySet, policy: &Policy) -> Result<VerifiedJws, JwtError> {
    let mut payload = Vec::new();
    let (alg, kid) = check_signature(token, keys, policy, &mut payload)?;
    Ok(VerifiedJws { alg, kid, payload })
}

/// [`verify_signature`] with the payload decoded into `payload` (cleared first).
fn check_signature(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    payload: &mut Vec<u8>,
) -> Result<(Alg, Option<Box<str>>), JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge);
    }
    let bytes = token.as_bytes();
    let (header_b64, payload_b64, sig_b64) = compact_parts(bytes).ok_or(JwtError::Malformed)?;

    let mut header_json = b64_decode(header_b64).ok_or(JwtError::Base64)?;
    if !json_object_ok(&header_json) {
        return Err(JwtError::Header);
    }
    let header: Header<'_> = parse_serde(&mut header_json).map_err(|_| JwtError::Header)?;
    let alg = match Alg::from_name(header.alg.as_deref().ok_or(JwtError::AlgMissing)?) {
        Ok(alg) => alg,
        Err(AlgParseError::None) => return Err(JwtError::AlgNone),
        Err(AlgParseError::Unsupported) => return Err(JwtError::AlgUnsupported),
    };
    if !policy.allowed_algs.contains(alg) {
        return Err(JwtError::AlgNotAllowed);
    }
    if header.crit.0 {
        return Err(JwtError::Crit);
    }
    match header.typ.as_deref() {
        Some(t) if !typ_accepted(t, policy.introspection_answer) => return Err(JwtError::Typ),
        None if policy.introspection_answer => return Err(JwtError::Typ),
        _ => {}
    }

    let mut sig = [0u8; MAX_SIG_LEN];
    let sig_len = match URL_SAFE_NO_PAD.decode_slice(sig_b64, &mut sig) {
        Ok(n) => n,
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => return Err(JwtError::Signature),
        Err(base64::DecodeSliceError::DecodeError(_)) => return Err(JwtError::Base64),
    };
    let sig = &sig[..sig_len];
    payload.clear();
    URL_SAFE_NO_PAD.decode_vec(payload_b64, payload).map_err(|_| JwtError::Base64)?;
    let signing_input = &bytes[..header_b64.len() + 1 + payload_b64.len()];

    match &alg.row().scheme {
        Scheme::Hmac(hmac_alg) => {
            // An empty secret would make every HS token forgeable: treated as no secret.
            let secret = policy.hmac_secret.as_ref().filter(|s| !s.expose().is_empty()).ok_or(JwtError::HsDisabled)?;
            let key = hmac::Key::new(**hmac_alg, secret.expose());
            hmac::verify(&key, signing_input, sig).map_err(|_| JwtError::Signature)?;
        }
        _ => keys.find(header.kid.as_deref(), alg)?.verify(alg, signing_input, sig)?,
    }

    let kid = header.kid.map(|k| k.into_owned().into_boxed_str());
    Ok((alg, kid))
}

/// Verifies a compact JWS access token and its registered claims; see the module docs for
/// every rule. `now` is Unix seconds from the caller's clock. The claims come as an owned
/// tree, for a caller that keeps them; the token paths use [`verify_into`].
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: u64) -> Result<Verified<'static>, JwtError> {
    verify_into(token, keys, policy, now, &mut Vec::new()).map(Verified::into_owned)
}

/// [`verify`], with the payload decoded into `payload` (cleared first) and the claims
/// read in place: a tape whose strings borrow that text, so reading a token's claims
/// costs one allocation rather than one per member. What the token paths use: they check
/// the claims, take the header lines and facts they need, and drop them.
pub fn verify_into<'p>(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
    payload: &'p mut Vec<u8>,
) -> Result<Verified<'p>, JwtError> {
    let (alg, kid) = check_signature(token, keys, policy, payload)?;
    let tape = parse_tape(payload).map_err(|_| JwtError::Claims)?;
    if !tape_depth_ok(&tape.0) {
        return Err(JwtError::Claims);
    }
    let exp = claims::check(ClaimValue::Tape(tape.as_value()), policy, now)?;
    let mut claims = Claims::of_tape(tape, exp);
    // The key the signature step used (an HS secret is no JWK, and is never sent).
    claims.key_jwk = (policy.keep_key_jwk && !alg.is_hmac())
        .then(|| keys.find(kid.as_deref(), alg).ok().map(|k| k.public_json().into_boxed_str()))
        .flatten();
    Ok(Verified { alg, kid, claims })
}

/// Signs `claims_json` as a compact JWS with HS256 and the header
/// `{"alg":"HS256","typ":"JWT"}`: the `client_secret_jwt` assertion of RFC 7523 §2.2,
/// keyed with the client's secret. The caller builds the claims (`iss`, `sub`, `aud`,
/// `jti`, `exp`).
pub fn sign_hs256(claims_json: &[u8], secret: &[u8]) -> String {
    let mut token = b64_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    token.push('.');
    token.push_str(&b64_encode(claims_json));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), token.as_bytes());
    token.push('.');
    token.push_str(&b64_encode(tag.as_ref()));
    token
}
