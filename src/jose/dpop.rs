//! DPoP proofs (RFC 9449): the check a resource server makes on the `DPoP` header that
//! comes with a sender-constrained access token, and the JWK thumbprint (RFC 7638) that
//! binds the token to the proof's key.
//!
//! Place in the request path: a worker calls [`verify_proof`] on every request that
//! presents a DPoP-bound token (`proof_of_possession_dpop`), after the token itself was
//! verified (or found in the per-core cache of verified tokens): a proof is made for one
//! request, so it is never cached. Nothing here reads the clock; `now` is passed in.
//!
//! What [`verify_proof`] checks, in order (RFC 9449 §4.3 and §7.1, the order Kong's
//! plugin checks in):
//!
//! 1. Framing as for a token: at most [`MAX_PROOF_LEN`] bytes, three base64url parts.
//! 2. Header: a JSON object; `typ` is `dpop+jwt` (any case); `alg` an asymmetric
//!    algorithm ringgate verifies (never `none`, never HS*); `crit` absent; `jwk` a
//!    public key (no private member), usable for `alg`, decoded as a JWKS key is.
//! 3. The signature, with that key.
//! 4. Payload: a JSON object with a string `jti`, `htm`, `htu` and `ath` and a numeric
//!    `iat`.
//! 5. `iat` at most [`IAT_TOLERANCE`] seconds ahead of `now` and at most the proof
//!    lifetime (`dpop_proof_lifetime`) behind it — unless server nonces are on, when the
//!    nonce's issue time stands for the proof's (step 9).
//! 6. `htm` is the request's method; `htu` is the request's URL once both are normalised
//!    ([`same_target`]: scheme and host case, default port, path normalisation; query
//!    and fragment left out).
//! 7. `ath` is the base64url SHA-256 of the access token.
//! 8. The key's thumbprint is the token's `cnf.jkt`.
//! 9. With server nonces (`dpop_use_nonce`, RFC 9449 §9): a `nonce` claim that this
//!    resource server issued ([`NonceKey`]) at most the proof lifetime ago. Checked last,
//!    so that "use this nonce" is only said of a proof that is otherwise good.
//!
//! `jti` is required but not remembered, as in Kong: a proof can be replayed for the same
//! method, URL and token within its lifetime. Cost: one signature verification, two
//! small JSON parses and two SHA-256s; an ES256 proof takes 58 µs here, 1.10 × ring's
//! bare ES256 verification (`cargo bench --bench dpop`).

use ring::digest;
use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::alg::{Alg, AlgParseError};
use super::{b64_decode, b64_encode, compact_parts, json_depth_ok, json_object_ok, Jwk};

/// Longest proof read, in bytes: an RS512 proof with an 8192-bit key is under 4 KiB.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// How far ahead of this clock a proof's `iat` may be, in seconds (clock skew).
pub const IAT_TOLERANCE: u64 = 5;

/// The JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037
/// §2): a proof's key must be public.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The algorithms a proof may be signed with: the asymmetric ones ringgate verifies. Sent
/// as `algs` in a DPoP challenge (RFC 9449 §7.1).
pub const PROOF_ALGS: &str = "ES256 ES384 EdDSA PS256 PS384 PS512 RS256 RS384 RS512";

/// Why a proof was refused. Each has a fixed [`reason`](DpopError::reason), safe for a
/// log line or `display_errors`: none carries proof, token or key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Not three base64url parts, or longer than [`MAX_PROOF_LEN`].
    #[error("the DPoP proof is not a compact JWS")]
    Malformed,
    /// The header is not a JSON object of the expected members, or has `crit`.
    #[error("the DPoP proof header is invalid")]
    Header,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof is not of type dpop+jwt")]
    Typ,
    /// `alg` is missing, `none`, symmetric or one ringgate cannot verify.
    #[error("the DPoP proof's algorithm is not accepted")]
    Alg,
    /// `jwk` is missing, holds private material, or is no key usable for `alg`.
    #[error("the DPoP proof's key is missing or unusable")]
    Key,
    /// The signature does not verify with the proof's own key.
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    /// The payload is not a JSON object with `jti`, `htm`, `htu`, `ath` and `iat`.
    #[error("the DPoP proof lacks a required claim")]
    Claims,
    /// `iat` is too far in the future.
    #[error("the DPoP proof is not yet valid")]
    NotYetValid,
    /// `iat` is older than the proof lifetime.
    #[error("the DPoP proof has expired")]
    Expired,
    /// `htm` or `htu` is not this request's.
    #[error("the DPoP proof does not match the request")]
    Request,
    /// `ath` is not the hash of the presented access token.
    #[error("the DPoP proof does not match the access token")]
    AccessToken,
    /// The proof's key is not the one the token is bound to.
    #[error("the DPoP proof's key is not the one the token is bound to")]
    KeyMismatch,
    /// Server nonces are on, and the proof has no `nonce` this server issued within the
    /// proof lifetime: the caller is to retry with the one the refusal carries.
    #[error("the DPoP proof lacks a current server nonce")]
    Nonce,
}

impl DpopError {
    /// A short fixed reason, safe for logs and `display_errors`.
    pub fn reason(self) -> &'static str {
        match self {
            DpopError::Malformed => "the DPoP proof is not a compact JWS",
            DpopError::Header => "the DPoP proof header is invalid",
            DpopError::Typ => "the DPoP proof is not of type dpop+jwt",
            DpopError::Alg => "the DPoP proof's algorithm is not accepted",
            DpopError::Key => "the DPoP proof's key is missing or unusable",
            DpopError::Signature => "the DPoP proof's signature does not verify",
            DpopError::Claims => "the DPoP proof lacks a required claim",
            DpopError::NotYetValid => "the DPoP proof is not yet valid",
            DpopError::Expired => "the DPoP proof has expired",
            DpopError::Request => "the DPoP proof does not match the request",
            DpopError::AccessToken => "the DPoP proof does not match the access token",
            DpopError::KeyMismatch => "the DPoP proof's key is not the one the token is bound to",
            DpopError::Nonce => "the DPoP proof lacks a current server nonce",
        }
    }
}

/// The request a proof must have been made for, and the token it comes with.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The request method, as sent.
    pub method: &'a [u8],
    /// The URL the request was sent to: `http` or `https`, the `Host` value, the path as
    /// sent (its query is ignored).
    pub scheme: &'a str,
    pub host: &'a [u8],
    pub path: &'a [u8],
    /// The access token as presented.
    pub token: &'a [u8],
    /// The token's `cnf.jkt`: the thumbprint of the key it is bound to.
    pub jkt: &'a str,
    /// Unix seconds.
    pub now: u64,
    /// `dpop_proof_lifetime`, in seconds.
    pub lifetime: u64,
    /// Server nonces (`dpop_use_nonce`): the key that made the ones a proof may carry.
    pub nonces: Option<&'a NonceKey>,
}

/// Checks `proof` against `req`; see the module docs for every rule. A good proof gives
/// when its server nonce was issued (`None` without server nonces), so the caller can
/// hand out the next one before it lapses.
pub fn verify_proof(proof: &[u8], req: &ProofRequest<'_>) -> Result<Option<u64>, DpopError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed);
    }
    let (header_b64, payload_b64, sig_b64) = compact_parts(proof).ok_or(DpopError::Malformed)?;
    if payload_b64.is_empty() {
        return Err(DpopError::Malformed);
    }

    let mut header_json = b64_decode(header_b64).ok_or(DpopError::Malformed)?;
    let (alg, key, key_thumbprint) = proof_key(&mut header_json)?;
    let sig = b64_decode(sig_b64).ok_or(DpopError::Malformed)?;
    let signing_input = &proof[..header_b64.len() + 1 + payload_b64.len()];
    key.verify(alg, signing_input, &sig).map_err(|_| DpopError::Signature)?;

    let mut payload = b64_decode(payload_b64).ok_or(DpopError::Malformed)?;
    if !json_depth_ok(&payload) {
        return Err(DpopError::Claims);
    }
    let claims = simd_json::to_borrowed_value(&mut payload).map_err(|_| DpopError::Claims)?;
    if claims.as_object().is_none() {
        return Err(DpopError::Claims);
    }
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
    let (Some(jti), Some(htm), Some(htu), Some(ath)) = (text("jti"), text("htm"), text("htu"), text("ath")) else {
        return Err(DpopError::Claims);
    };
    let iat = claims.get("iat").and_then(|v| v.cast_f64()).ok_or(DpopError::Claims)?;
    if jti.is_empty() || !iat.is_finite() {
        return Err(DpopError::Claims);
    }
    let now = req.now as f64;
    // With server nonces the nonce dates the proof, whatever the caller's clock says.
    if req.nonces.is_none() {
        if iat > now + IAT_TOLERANCE as f64 {
            return Err(DpopError::NotYetValid);
        }
        if iat + (req.lifetime as f64) < now {
            return Err(DpopError::Expired);
        }
    }
    if htm.as_bytes() != req.method || !same_target(htu, req) {
        return Err(DpopError::Request);
    }
    if ath != b64_encode(digest::digest(&digest::SHA256, req.token).as_ref()) {
        return Err(DpopError::AccessToken);
    }
    if key_thumbprint != req.jkt {
        return Err(DpopError::KeyMismatch);
    }
    let Some(nonces) = req.nonces else { return Ok(None) };
    let issued = text("nonce").and_then(|n| nonces.issued_at(n)).ok_or(DpopError::Nonce)?;
    if issued > req.now + IAT_TOLERANCE || issued + req.lifetime < req.now {
        return Err(DpopError::Nonce);
    }
    Ok(Some(issued))
}

/// Server nonces (RFC 9449 §9) made and checked without any state: a nonce is its issue
/// time (Unix seconds, 8 bytes big-endian) and an HMAC-SHA256 of that time, base64url
/// (54 characters). Every worker of a process checks the nonces any of them issued; so
/// does every node whose key comes from the same secret.
pub struct NonceKey(ring::hmac::Key);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey")
    }
}

impl NonceKey {
    /// A key derived from `secret` (HMAC-SHA256 of a fixed label under it), so the
    /// secret itself signs nothing.
    pub fn new(secret: &[u8]) -> NonceKey {
        let derived = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), b"ringgate dpop nonce");
        NonceKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// A nonce issued at `now` (Unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let time = now.to_be_bytes();
        let mut raw = [0u8; 40];
        raw[..8].copy_from_slice(&time);
        raw[8..].copy_from_slice(ring::hmac::sign(&self.0, &time).as_ref());
        b64_encode(&raw)
    }

    /// When `nonce` was issued, if this key issued it (the tag compared in constant time).
    pub fn issued_at(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 54 {
            return None;
        }
        let raw = b64_decode(nonce.as_bytes())?;
        let (time, tag) = raw.split_at_checked(8)?;
        ring::hmac::verify(&self.0, time, tag).ok()?;
        Some(u64::from_be_bytes(time.try_into().ok()?))
    }
}

/// The header's algorithm, key and the key's thumbprint, once `typ`, `alg`, `crit` and
/// `jwk` pass.
fn proof_key(header_json: &mut [u8]) -> Result<(Alg, Jwk, String), DpopError> {
    if !json_object_ok(header_json) {
        return Err(DpopError::Header);
    }
    let header = simd_json::to_borrowed_value(header_json).map_err(|_| DpopError::Header)?;
    if header.get("crit").is_some() {
        return Err(DpopError::Header);
    }
    match header.get("typ").map(|t| t.as_str()) {
        Some(Some(t)) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(DpopError::Typ),
    }
    let alg = match header.get("alg").and_then(|a| a.as_str()).map(Alg::from_name) {
        Some(Ok(alg)) if !alg.is_hmac() => alg,
        Some(Ok(_) | Err(AlgParseError::None | AlgParseError::Unsupported)) | None => return Err(DpopError::Alg),
    };
    let jwk = header.get("jwk").filter(|j| j.as_object().is_some()).ok_or(DpopError::Key)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.get(*m).is_some()) {
        return Err(DpopError::Key);
    }
    let key = Jwk::from_value(jwk).map_err(|_| DpopError::Key)?;
    if !key.permits(alg) {
        return Err(DpopError::Key);
    }
    let key_thumbprint = thumbprint(jwk).ok_or(DpopError::Key)?;
    Ok((alg, key, key_thumbprint))
}

/// The RFC 7638 thumbprint of a public JWK, base64url of its SHA-256: the hash of the
/// key's required members (RSA `e`, `kty`, `n`; EC `crv`, `kty`, `x`, `y`; OKP `crv`,
/// `kty`, `x`) as a JSON object in that order, with no white space. `None` for another
/// key type, or when a required member is missing or not a string.
pub fn thumbprint(jwk: &BorrowedValue<'_>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let members: &[&str] = match kty {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&simd_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(b64_encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// Whether the proof's `htu` names the request's URL (RFC 9449 §4.3 step 9): scheme and
/// host compared without case, a default port (80 for http, 443 for https) the same as
/// none, the path compared after normalisation (percent-decoding of unreserved
/// characters, dot segments; an empty path is `/`), query and fragment left out.
pub fn same_target(htu: &str, req: &ProofRequest<'_>) -> bool {
    let Some((scheme, rest)) = htu.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(req.scheme) {
        return false;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return false;
    }
    let request_path = req.path.split(|&b| b == b'?').next().unwrap_or_default();
    let request_path: &[u8] = if request_path.is_empty() { b"/" } else { request_path };
    same_authority(authority.as_bytes(), req.host, req.scheme) && same_path(path.as_bytes(), request_path)
}

/// `host[:port]` of both sides, host without case, default port dropped.
fn same_authority(a: &[u8], b: &[u8], scheme: &str) -> bool {
    let default: &[u8] = if scheme.eq_ignore_ascii_case("https") { b"443" } else { b"80" };
    let ((host_a, port_a), (host_b, port_b)) = (host_and_port(a, default), host_and_port(b, default));
    host_a.eq_ignore_ascii_case(host_b) && port_a == port_b
}

/// `host[:port]` split at the port's colon (an IPv6 literal's colons are inside its
/// brackets); an empty port or `default` is no port.
fn host_and_port<'v>(v: &'v [u8], default: &[u8]) -> (&'v [u8], &'v [u8]) {
    let after = v.iter().rposition(|&c| c == b']').map_or(0, |i| i + 1);
    let (host, port) = match v[after..].iter().position(|&c| c == b':') {
        Some(i) => (&v[..after + i], &v[after + i + 1..]),
        None => (v, &b""[..]),
    };
    (host, if port == default { &b""[..] } else { port })
}

fn same_path(a: &[u8], b: &[u8]) -> bool {
    crate::router::path::with_normalised(a, |a| crate::router::path::with_normalised(b, |b| a == b))
}

#[cfg(test)]
mod tests;
