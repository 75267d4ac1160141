//! JWKS decoding: what is kept, what is skipped and why, lookups, redaction.

use super::{b64, jwks, Signer};
use crate::jose::{Alg, JwksError, JwtError, KeySet, SkipReason, MAX_JWKS_KEYS, MAX_JWKS_LEN};

fn set(keys: &[String]) -> KeySet {
    KeySet::from_jwks(jwks(keys).as_bytes()).expect("jwks parses")
}

fn reasons(set: &KeySet) -> Vec<(Option<&str>, SkipReason)> {
    set.skipped().iter().map(|s| (s.kid.as_deref(), s.reason)).collect()
}

/// An RSA modulus of exactly `bits` bits (top bit set, odd), not a real key: enough for
/// the size rules, which run before any verification.
fn fake_modulus(bits: usize) -> String {
    let mut n = vec![0xA5u8; bits.div_ceil(8)];
    let top_bits = bits - (n.len() - 1) * 8;
    n[0] = 1 << (top_bits - 1) | 1;
    *n.last_mut().unwrap() |= 1;
    b64(&n)
}

#[test]
fn unusable_keys_are_skipped_with_a_reason_and_the_rest_kept() {
    let rsa = Signer::rsa();
    let p256 = Signer::p256();
    let ed = Signer::ed25519();
    let n2048 = fake_modulus(2048);
    let keys = vec![
        rsa.jwk("rsa", Some("RS256")),
        p256.jwk("ec", None),
        ed.jwk("ed", Some("EdDSA")),
        r#"{"kid":"weird","kty":"XYZ"}"#.to_string(),
        r#"{"kid":"nokty","n":"AQAB"}"#.to_string(),
        r#"{"kid":"oct","kty":"oct","k":"c2VjcmV0"}"#.to_string(),
        format!(r#"{{"kid":"badb64","kty":"RSA","n":"{n2048}=","e":"AQAB"}}"#),
        format!(r#"{{"kid":"plus","kty":"RSA","n":"+{}","e":"AQAB"}}"#, &n2048[1..]),
        r#"{"kid":"p521","kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#.to_string(),
        r#"{"kid":"x448","kty":"OKP","crv":"Ed448","x":"AA"}"#.to_string(),
        format!(r#"{{"kid":"enc","use":"enc",{}}}"#, rsa.jwk_members()),
        format!(r#"{{"kid":"signonly","key_ops":["sign"],{}}}"#, rsa.jwk_members()),
        format!(r#"{{"kid":"opsstr","key_ops":"verify",{}}}"#, rsa.jwk_members()),
        format!(r#"{{"kid":"es512","alg":"ES512",{}}}"#, p256.jwk_members()),
        format!(r#"{{"kid":"none","alg":"none",{}}}"#, rsa.jwk_members()),
        format!(r#"{{"kid":"mismatch","alg":"ES256",{}}}"#, rsa.jwk_members()),
        format!(r#"{{"kid":"p384label","alg":"ES384",{}}}"#, p256.jwk_members()),
        format!(r#"{{"kid":"rsa1024","kty":"RSA","n":"{}","e":"AQAB"}}"#, fake_modulus(1024)),
        format!(r#"{{"kid":"rsa2047","kty":"RSA","n":"{}","e":"AQAB"}}"#, fake_modulus(2047)),
        format!(r#"{{"kid":"rsa9000","kty":"RSA","n":"{}","e":"AQAB"}}"#, fake_modulus(9000)),
        format!(r#"{{"kid":"e-even","kty":"RSA","n":"{n2048}","e":"AQAA"}}"#),
        format!(r#"{{"kid":"e-one","kty":"RSA","n":"{n2048}","e":"AQ"}}"#),
        r#"{"kid":"shortx","kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#.to_string(),
        r#"{"kid":"noy","kty":"EC","crv":"P-256","x":"AAAA"}"#.to_string(),
        "17".to_string(),
        format!(r#"{{"kid":5,{}}}"#, rsa.jwk_members()),
    ];
    let set = set(&keys);
    let kept: Vec<_> = set.keys().iter().map(|k| (k.kid(), k.kty(), k.alg())).collect();
    assert_eq!(
        kept,
        [(Some("rsa"), "RSA", Some(Alg::RS256)), (Some("ec"), "EC", None), (Some("ed"), "OKP", Some(Alg::EdDSA))]
    );
    assert_eq!(
        reasons(&set),
        [
            (Some("weird"), SkipReason::UnsupportedKty),
            (Some("nokty"), SkipReason::Missing("kty")),
            (Some("oct"), SkipReason::UnsupportedKty),
            (Some("badb64"), SkipReason::BadBase64("n")),
            (Some("plus"), SkipReason::BadBase64("n")),
            (Some("p521"), SkipReason::UnsupportedCurve),
            (Some("x448"), SkipReason::UnsupportedCurve),
            (Some("enc"), SkipReason::UseNotSig),
            (Some("signonly"), SkipReason::OpsNoVerify),
            (Some("opsstr"), SkipReason::WrongType("key_ops")),
            (Some("es512"), SkipReason::UnsupportedAlg),
            (Some("none"), SkipReason::UnsupportedAlg),
            (Some("mismatch"), SkipReason::AlgKtyMismatch),
            (Some("p384label"), SkipReason::AlgKtyMismatch),
            (Some("rsa1024"), SkipReason::RsaTooShort),
            (Some("rsa2047"), SkipReason::RsaTooShort),
            (Some("rsa9000"), SkipReason::RsaTooLong),
            (Some("e-even"), SkipReason::RsaBadExponent),
            (Some("e-one"), SkipReason::RsaBadExponent),
            (Some("shortx"), SkipReason::BadCoordinateLength),
            (Some("noy"), SkipReason::Missing("y")),
            (None, SkipReason::NotAnObject),
            (None, SkipReason::WrongType("kid")),
        ]
    );
    assert_eq!(set.skipped()[3].index, 6);
}

#[test]
fn rsa_2048_bits_is_the_minimum_kept() {
    let set = set(&[format!(r#"{{"kid":"ok","kty":"RSA","n":"{}","e":"AQAB"}}"#, fake_modulus(2048))]);
    assert_eq!(set.len(), 1);
}

#[test]
fn rsa_modulus_with_a_sign_byte_is_accepted() {
    // Some IdPs encode n as a signed integer: a leading zero byte. The key must still work.
    let rsa = Signer::rsa();
    let members = rsa.jwk_members();
    let n_start = members.find(r#""n":""#).unwrap() + 5;
    let n_end = n_start + members[n_start..].find('"').unwrap();
    let mut n = crate::jose::b64_decode(&members.as_bytes()[n_start..n_end]).unwrap();
    n.insert(0, 0);
    let jwk = format!(r#"{{"kid":"k","kty":"RSA","n":"{}","e":"AQAB"}}"#, b64(&n));
    let set = set(&[jwk]);
    let token = rsa.token(Alg::RS256, r#"{"alg":"RS256","kid":"k"}"#, r#"{"sub":"s"}"#);
    crate::jose::verify(&token, &set, &crate::jose::Policy::new("i"), 0).expect("verifies");
}

#[test]
fn whole_document_errors() {
    assert_eq!(KeySet::from_jwks(b"not json").unwrap_err(), JwksError::Json);
    assert_eq!(KeySet::from_jwks(b"").unwrap_err(), JwksError::Json);
    assert_eq!(KeySet::from_jwks(b"[]").unwrap_err(), JwksError::NotAKeySet);
    assert_eq!(KeySet::from_jwks(br#"{"keys":{}}"#).unwrap_err(), JwksError::NotAKeySet);
    assert_eq!(KeySet::from_jwks(br#"{"jwks":[]}"#).unwrap_err(), JwksError::NotAKeySet);
    let big = vec![b' '; MAX_JWKS_LEN + 1];
    assert_eq!(KeySet::from_jwks(&big).unwrap_err(), JwksError::TooLarge);
    assert!(KeySet::from_jwks(br#"{"keys":[]}"#).unwrap().is_empty());
    assert_eq!(JwksError::Json.reason(), "jwks is not valid json");
}

#[test]
fn keys_past_the_cap_are_skipped() {
    let jwk = Signer::p256().jwk("k", None);
    let set = set(&vec![jwk; MAX_JWKS_KEYS + 3]);
    assert_eq!(set.len(), MAX_JWKS_KEYS);
    assert_eq!(set.skipped().len(), 3);
    assert!(set.skipped().iter().all(|s| s.reason == SkipReason::TooMany));
}

#[test]
fn debug_shows_kid_kty_alg_and_no_key_material() {
    let rsa = Signer::rsa();
    let ec = Signer::p256();
    let ed = Signer::ed25519();
    let set = set(&[rsa.jwk("r", Some("RS256")), ec.jwk("e", None), ed.jwk("d", None)]);
    let shown = format!("{set:?}");
    assert!(
        shown.contains(r#"kid: Some("r")"#) && shown.contains(r#"kty: "EC""#) && shown.contains("RS256"),
        "{shown}"
    );
    for (name, members) in [("rsa", rsa.jwk_members()), ("ec", ec.jwk_members()), ("ed", ed.jwk_members())] {
        // No base64 of a key member, and no run of raw byte values either.
        for part in members.split('"').filter(|p| p.len() > 20) {
            assert!(!shown.contains(part), "{name} material in Debug: {shown}");
        }
    }
    assert!(shown.len() < 600, "Debug unexpectedly long: {shown}");
}

#[test]
fn key_set_is_send_and_sync() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<KeySet>();
    shareable::<crate::jose::Policy>();
    shareable::<crate::jose::Verified>();
}

#[test]
fn lookup_order_kid_and_alg_then_kid_then_alg() {
    let rsa = Signer::rsa();
    let p256 = Signer::p256();
    let set = set(&[
        rsa.jwk("shared", Some("PS256")),
        rsa.jwk("shared", Some("RS256")),
        rsa.jwk("loose", None),
        p256.jwk("ec", None),
    ]);
    // kid + pinned alg beats an earlier key with the same kid.
    assert_eq!(set.find(Some("shared"), Alg::RS256).unwrap().alg(), Some(Alg::RS256));
    assert_eq!(set.find(Some("shared"), Alg::PS256).unwrap().alg(), Some(Alg::PS256));
    // kid only: the key has no alg but its type fits.
    assert_eq!(set.find(Some("loose"), Alg::RS512).unwrap().kid(), Some("loose"));
    // kid found but no key under it permits the alg.
    assert_eq!(set.find(Some("shared"), Alg::RS384).unwrap_err(), JwtError::KeyAlgMismatch);
    assert_eq!(set.find(Some("ec"), Alg::RS256).unwrap_err(), JwtError::KeyAlgMismatch);
    assert_eq!(set.find(Some("ec"), Alg::ES384).unwrap_err(), JwtError::KeyAlgMismatch);
    assert_eq!(set.find(Some("gone"), Alg::RS256).unwrap_err(), JwtError::UnknownKid);
    // No kid: a key pinned to the alg first, else the first key whose type fits.
    assert_eq!(set.find(None, Alg::RS256).unwrap().alg(), Some(Alg::RS256));
    assert_eq!(set.find(None, Alg::RS384).unwrap().kid(), Some("loose"));
    assert_eq!(set.find(None, Alg::ES256).unwrap().kid(), Some("ec"));
    assert_eq!(set.find(None, Alg::EdDSA).unwrap_err(), JwtError::NoKeyForAlg);
    assert!(JwtError::UnknownKid.wants_key_refresh() && !JwtError::KeyAlgMismatch.wants_key_refresh());
}

#[test]
fn merged_sets_keep_document_order() {
    let a = Signer::p256();
    let b = Signer::p256();
    let first = set(&[a.jwk("same", None), r#"{"kty":"nope"}"#.to_string()]);
    let second = set(&[b.jwk("same", None), b.jwk("extra", None)]);
    let merged = KeySet::merged([first, second]);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged.skipped().len(), 1);
    let token = a.token(Alg::ES256, r#"{"alg":"ES256","kid":"same"}"#, "{}");
    crate::jose::verify(&token, &merged, &crate::jose::Policy::new("i"), 0).expect("first document's key wins");
    assert!(merged.find(Some("extra"), Alg::ES256).is_ok());
}

#[test]
fn deeply_nested_jwks_is_refused_not_a_stack_overflow() {
    // Regression: 100 000 levels of `[` in any member overflowed the stack while simd-json
    // built the document, aborting the process from the control plane.
    let k = Signer::p256().jwk("k", None);
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for doc in [
        format!(r#"{{"keys":[{{"x":{}}},{k}]}}"#, nested(100_000)),
        format!(r#"{{"keys":[{k}],"x":{}}}"#, nested(100_000)),
        format!(r#"{{"keys":[{k}],"x":{}}}"#, nested(crate::jose::MAX_JSON_DEPTH)),
    ] {
        assert_eq!(KeySet::from_jwks(doc.as_bytes()).unwrap_err(), JwksError::Json);
    }
    // Brackets inside strings are text, not nesting.
    let doc = format!(r#"{{"keys":[{k}],"x":"{}\"{}"}}"#, "[".repeat(1000), "{".repeat(1000));
    assert_eq!(KeySet::from_jwks(doc.as_bytes()).unwrap().len(), 1);
    let doc = format!(r#"{{"keys":[{k}],"x":{}}}"#, nested(crate::jose::MAX_JSON_DEPTH - 1));
    assert_eq!(KeySet::from_jwks(doc.as_bytes()).unwrap().len(), 1);
}
