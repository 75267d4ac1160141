//! JWKS documents decoded once into ring-ready keys.
//!
//! Runs on the control plane when a JWKS is fetched, never per request: each usable key is
//! decoded here into what ring verifies with (RSA `n`/`e` without leading zeros, the EC
//! uncompressed point `04 || x || y`, the raw Ed25519 key), so a verification only looks a
//! key up and calls ring. A [`KeySet`] is immutable and `Send + Sync`; the control plane
//! builds a new one on refresh and swaps it behind an `ArcSwap`.
//!
//! RFC 8725 rules applied here: a key's `use`, `key_ops` and `alg`, when present, must
//! permit signature verification; its `kty`/`crv` decide which algorithms it can ever be
//! used with; RSA moduli under 2048 bits are refused. A key that cannot be used is skipped
//! with a [`SkipReason`] (kept on the set for logging), never failing the whole document.
//! Symmetric (`oct`) keys are skipped too: the HS secret comes from configuration, and an
//! IdP has no business publishing one.

use std::fmt;

use ring::signature::{self, RsaPublicKeyComponents};
use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::alg::{Alg, AlgParseError, KeyKind, Scheme};
use super::error::{JwksError, JwtError, SkipReason};
use super::{b64_decode, json_depth_ok, MAX_JWKS_KEYS, MAX_JWKS_LEN};

/// One verification key from a JWKS, decoded for ring.
pub struct Jwk {
    kid: Option<Box<str>>,
    alg: Option<Alg>,
    key: PublicKey,
}

/// The key material, in the form ring takes it.
enum PublicKey {
    /// `n` and `e`, big-endian without leading zeros.
    Rsa(RsaPublicKeyComponents<Box<[u8]>>),
    /// Uncompressed SEC1 point on P-256.
    P256(Box<[u8]>),
    /// Uncompressed SEC1 point on P-384.
    P384(Box<[u8]>),
    /// The 32-byte Ed25519 public key.
    Ed25519([u8; 32]),
}

impl PublicKey {
    fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa(_) => KeyKind::Rsa,
            PublicKey::P256(_) => KeyKind::EcP256,
            PublicKey::P384(_) => KeyKind::EcP384,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

impl Jwk {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's `alg`, if the JWKS pinned one.
    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    /// The JWK `kty` of the key (`RSA`, `EC`, `OKP`).
    pub fn kty(&self) -> &'static str {
        match self.key {
            PublicKey::Rsa(_) => "RSA",
            PublicKey::P256(_) | PublicKey::P384(_) => "EC",
            PublicKey::Ed25519(_) => "OKP",
        }
    }

    /// The key as a public JWK, built from what was decoded (`kty`, `kid` and `alg` when
    /// present, then `n`/`e` or `crv`/`x`/`y`), so nothing the document carried beside the
    /// public key (a stray private member) can come out of it. For
    /// `*_access_token_jwk_header`.
    pub fn public_json(&self) -> String {
        let mut out = format!(r#"{{"kty":"{}""#, self.kty());
        if let Some(kid) = &self.kid {
            out.push_str(r#","kid":"#);
            out.push_str(&simd_json::to_string(&**kid).unwrap_or_default());
        }
        if let Some(alg) = self.alg {
            out.push_str(&format!(r#","alg":"{}""#, alg.name()));
        }
        let b64 = super::b64_encode;
        match &self.key {
            PublicKey::Rsa(c) => out.push_str(&format!(r#","n":"{}","e":"{}""#, b64(&c.n), b64(&c.e))),
            PublicKey::P256(point) | PublicKey::P384(point) => {
                let crv = if matches!(self.key, PublicKey::P256(_)) { "P-256" } else { "P-384" };
                // `04 || x || y`, the halves of equal size (see `ec_point`).
                let (x, y) = point[1..].split_at((point.len() - 1) / 2);
                out.push_str(&format!(r#","crv":"{crv}","x":"{}","y":"{}""#, b64(x), b64(y)));
            }
            PublicKey::Ed25519(x) => out.push_str(&format!(r#","crv":"Ed25519","x":"{}""#, b64(x))),
        }
        out.push('}');
        out
    }

    /// Whether this key may verify a signature made with `alg`: the key type (and curve)
    /// must be the one `alg` needs, and a pinned `alg` must be that one (RFC 8725 §3.1).
    pub fn permits(&self, alg: Alg) -> bool {
        self.key.kind() == alg.key_kind() && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// Checks `signature` over `message` with this key under `alg`. The caller has checked
    /// [`permits`](Self::permits); a mismatch here only fails the signature.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        let ok = match (&alg.row().scheme, &self.key) {
            (Scheme::Rsa(params), PublicKey::Rsa(components)) => components.verify(params, message, sig).is_ok(),
            (Scheme::Ecdsa(ecdsa), PublicKey::P256(point) | PublicKey::P384(point)) => {
                signature::UnparsedPublicKey::new(*ecdsa, point).verify(message, sig).is_ok()
            }
            (Scheme::Ed25519, PublicKey::Ed25519(raw)) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, raw).verify(message, sig).is_ok()
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(JwtError::Signature)
        }
    }

    /// Decodes one member of `keys`.
    pub(crate) fn from_value(v: &BorrowedValue<'_>) -> Result<Jwk, SkipReason> {
        if v.as_object().is_none() {
            return Err(SkipReason::NotAnObject);
        }
        let kid = opt_str(v, "kid")?.map(Box::from);
        let kty = opt_str(v, "kty")?.ok_or(SkipReason::Missing("kty"))?;
        if let Some(usage) = opt_str(v, "use")? {
            if usage != "sig" {
                return Err(SkipReason::UseNotSig);
            }
        }
        if let Some(ops) = v.get("key_ops") {
            let ops = ops.as_array().ok_or(SkipReason::WrongType("key_ops"))?;
            let mut verify = false;
            for op in ops {
                verify |= op.as_str().ok_or(SkipReason::WrongType("key_ops"))? == "verify";
            }
            if !verify {
                return Err(SkipReason::OpsNoVerify);
            }
        }
        let alg = match opt_str(v, "alg")? {
            None => None,
            Some(name) => match Alg::from_name(name) {
                Ok(alg) => Some(alg),
                Err(AlgParseError::None | AlgParseError::Unsupported) => return Err(SkipReason::UnsupportedAlg),
            },
        };
        let key = match kty {
            "RSA" => rsa_key(v)?,
            "EC" => match opt_str(v, "crv")?.ok_or(SkipReason::Missing("crv"))? {
                "P-256" => PublicKey::P256(ec_point(v, 32)?),
                "P-384" => PublicKey::P384(ec_point(v, 48)?),
                _ => return Err(SkipReason::UnsupportedCurve),
            },
            "OKP" => match opt_str(v, "crv")?.ok_or(SkipReason::Missing("crv"))? {
                "Ed25519" => {
                    let x = b64_member(v, "x")?;
                    PublicKey::Ed25519(x.try_into().map_err(|_| SkipReason::BadCoordinateLength)?)
                }
                _ => return Err(SkipReason::UnsupportedCurve),
            },
            _ => return Err(SkipReason::UnsupportedKty),
        };
        if let Some(alg) = alg {
            if alg.key_kind() != key.kind() {
                return Err(SkipReason::AlgKtyMismatch);
            }
        }
        Ok(Jwk { kid, alg, key })
    }
}

/// `Debug` shows only `kid`, `kty` and `alg`: never key material.
impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk").field("kid", &self.kid).field("kty", &self.kty()).field("alg", &self.alg).finish()
    }
}

/// A member that must be a string when present.
fn opt_str<'v>(v: &'v BorrowedValue<'_>, name: &'static str) -> Result<Option<&'v str>, SkipReason> {
    match v.get(name) {
        None => Ok(None),
        Some(m) => m.as_str().map(Some).ok_or(SkipReason::WrongType(name)),
    }
}

/// A required base64url member, decoded.
fn b64_member(v: &BorrowedValue<'_>, name: &'static str) -> Result<Vec<u8>, SkipReason> {
    let s = opt_str(v, name)?.ok_or(SkipReason::Missing(name))?;
    b64_decode(s.as_bytes()).ok_or(SkipReason::BadBase64(name))
}

fn strip_leading_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

/// RSA `n`/`e`: leading zeros stripped (RFC 7518 §6.3.1.1 forbids them, some IdPs still
/// send a sign byte), size and exponent checked against RFC 8725 and ring's limits now,
/// so a key that could never verify is skipped at load rather than failing every token.
fn rsa_key(v: &BorrowedValue<'_>) -> Result<PublicKey, SkipReason> {
    let n = b64_member(v, "n")?;
    let e = b64_member(v, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = match n.first() {
        None => 0,
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
    };
    if bits < 2048 {
        return Err(SkipReason::RsaTooShort);
    }
    if bits > 8192 {
        return Err(SkipReason::RsaTooLong);
    }
    // ring: 3 <= e < 2^33, odd.
    let e_value = if e.len() > 5 { u64::MAX } else { e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) };
    if !(3..1 << 33).contains(&e_value) || e_value % 2 == 0 {
        return Err(SkipReason::RsaBadExponent);
    }
    Ok(PublicKey::Rsa(RsaPublicKeyComponents { n: n.into(), e: e.into() }))
}

/// `x` and `y`, each exactly the field size (RFC 7518 §6.2.1.2), as `04 || x || y`.
fn ec_point(v: &BorrowedValue<'_>, size: usize) -> Result<Box<[u8]>, SkipReason> {
    let x = b64_member(v, "x")?;
    let y = b64_member(v, "y")?;
    if x.len() != size || y.len() != size {
        return Err(SkipReason::BadCoordinateLength);
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point.into())
}

/// A key left out of a [`KeySet`], for the log line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the document's `keys` array.
    pub index: usize,
    /// The key's `kid` when it had a readable one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// The verification keys of one issuer: `jwks_uri` plus `extra_jwks_uris`, merged.
///
/// Immutable once built, `Send + Sync`, meant to sit behind `arc_swap::ArcSwap`.
/// `Debug` lists keys by `kid`/`kty`/`alg` only.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Decodes a JWKS document (RFC 7517 §5). Keys that cannot be used are skipped, see
    /// [`skipped`](Self::skipped); the result may be empty, which the caller decides about
    /// (one of several merged documents may legitimately hold nothing usable).
    pub fn from_jwks(doc: &[u8]) -> Result<KeySet, JwksError> {
        if doc.len() > MAX_JWKS_LEN {
            return Err(JwksError::TooLarge);
        }
        // simd-json parses in place; the copy is the price of taking `&[u8]`.
        if !json_depth_ok(doc) {
            return Err(JwksError::Json);
        }
        let mut buf = doc.to_vec();
        let value = simd_json::to_borrowed_value(&mut buf).map_err(|_| JwksError::Json)?;
        let keys = value.get("keys").and_then(|k| k.as_array()).ok_or(JwksError::NotAKeySet)?;
        let mut set = KeySet { keys: Vec::with_capacity(keys.len().min(MAX_JWKS_KEYS)), skipped: Vec::new() };
        for (index, entry) in keys.iter().enumerate() {
            let result = if index >= MAX_JWKS_KEYS { Err(SkipReason::TooMany) } else { Jwk::from_value(entry) };
            match result {
                Ok(key) => set.keys.push(key),
                Err(reason) => {
                    let kid = entry.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
                    set.skipped.push(SkippedKey { index, kid, reason });
                }
            }
        }
        Ok(set)
    }

    /// Joins several sets, earlier ones first: discovery's `jwks_uri` first, then each of
    /// `extra_jwks_uris` in configured order. Lookups take the first match, so on a `kid`
    /// present in several documents the earlier document wins.
    pub fn merged(parts: impl IntoIterator<Item = KeySet>) -> KeySet {
        let mut out = KeySet::default();
        for part in parts {
            out.keys.extend(part.keys);
            out.skipped.extend(part.skipped);
        }
        out
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The keys that were left out, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys are usable.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token: by `kid` and pinned `alg`, then by `kid` alone (the key must
    /// still permit `alg`), then — only when the token has no `kid` — the first key that
    /// permits `alg` (Kong's order, SPEC §3). Trying several keys for one token is avoided
    /// on purpose: it would let a caller buy several RSA verifications with one request.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Result<&Jwk, JwtError> {
        match kid {
            Some(kid) => {
                let mut seen_kid = false;
                let mut fallback = None;
                for key in self.keys.iter().filter(|k| k.kid() == Some(kid)) {
                    seen_kid = true;
                    if key.permits(alg) {
                        if key.alg == Some(alg) {
                            return Ok(key);
                        }
                        fallback.get_or_insert(key);
                    }
                }
                match fallback {
                    Some(key) => Ok(key),
                    None if seen_kid => Err(JwtError::KeyAlgMismatch),
                    None => Err(JwtError::UnknownKid),
                }
            }
            None => self
                .keys
                .iter()
                .find(|k| k.alg == Some(alg) && k.permits(alg))
                .or_else(|| self.keys.iter().find(|k| k.permits(alg)))
                .ok_or(JwtError::NoKeyForAlg),
        }
    }
}
