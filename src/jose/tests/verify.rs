//! `verify` against tokens signed here. Every token is written out as header and claims
//! text next to the test that uses it.

use super::{b64, jwks, Signer};
use crate::jose::{
    sign_hs256, verify, verify_into, verify_signature, Alg, HmacSecret, JwtError, KeySet, Policy, MAX_TOKEN_LEN,
};

const ISS: &str = "https://idp.example/realms/main";
/// A fixed "now" for every test: 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600;

/// Keys of every supported type, with their JWKS (`kid`s `rsa`, `p256`, `p384`, `ed`).
struct Fixture {
    rsa: Signer,
    p256: Signer,
    p384: Signer,
    ed: Signer,
    keys: KeySet,
}

fn fixture() -> Fixture {
    let (rsa, p256, p384, ed) = (Signer::rsa(), Signer::p256(), Signer::p384(), Signer::ed25519());
    let doc = jwks(&[rsa.jwk("rsa", None), p256.jwk("p256", None), p384.jwk("p384", None), ed.jwk("ed", None)]);
    let keys = KeySet::from_jwks(doc.as_bytes()).unwrap();
    assert_eq!(keys.len(), 4);
    Fixture { rsa, p256, p384, ed, keys }
}

fn policy() -> Policy {
    Policy::new(ISS)
}

/// Claims `{"iss":ISS,"sub":"client-1","exp":NOW+300,"iat":NOW-10,"scope":"openid orders:read"}`.
fn good_claims() -> String {
    format!(r#"{{"iss":"{ISS}","sub":"client-1","exp":{},"iat":{},"scope":"openid orders:read"}}"#, NOW + 300, NOW - 10)
}

/// An RS256 token from the fixture RSA key with `kid` `rsa` and these claims.
fn rs256(f: &Fixture, claims: &str) -> String {
    f.rsa.token(Alg::RS256, r#"{"alg":"RS256","kid":"rsa","typ":"at+jwt"}"#, claims)
}

fn err(token: &str, f: &Fixture, policy: &Policy) -> JwtError {
    verify(token, &f.keys, policy, NOW).expect_err("token must be refused")
}

#[test]
fn rs256_token_verifies_and_exposes_claims() {
    let f = fixture();
    // Claims: iss ISS, aud ["orders","billing"], exp NOW+300, iat NOW-10, scope "openid orders:read".
    let claims = format!(
        r#"{{"iss":"{ISS}/","aud":["orders","billing"],"exp":{},"iat":{},"scope":"openid orders:read","n":{{"r":[1]}}}}"#,
        NOW + 300,
        NOW - 10
    );
    let v = verify(&rs256(&f, &claims), &f.keys, &policy(), NOW).expect("verifies");
    assert_eq!(
        (v.alg(), v.kid(), v.exp(), v.iss()),
        (Alg::RS256, Some("rsa"), Some(NOW + 300), Some("https://idp.example/realms/main/"))
    );
    assert!(v.audience_contains("billing") && !v.audience_contains("bill"));
    assert_eq!(v.scopes(), ["openid", "orders:read"]);
    assert!(crate::jose::requirement_met(&["orders:read openid"], v.claim("scope")));
    assert!(v.claim_path(&["n", "r"]).is_some());
}

#[test]
fn every_supported_algorithm_round_trips() {
    let f = fixture();
    let secret = b"a-configured-client-secret-of-32b".to_vec();
    let hs = Signer::Hmac(secret.clone());
    let policy = policy().enable_hs(HmacSecret::new(secret));
    let cases: [(Alg, &Signer, &str); 12] = [
        (Alg::RS256, &f.rsa, "rsa"),
        (Alg::RS384, &f.rsa, "rsa"),
        (Alg::RS512, &f.rsa, "rsa"),
        (Alg::PS256, &f.rsa, "rsa"),
        (Alg::PS384, &f.rsa, "rsa"),
        (Alg::PS512, &f.rsa, "rsa"),
        (Alg::ES256, &f.p256, "p256"),
        (Alg::ES384, &f.p384, "p384"),
        (Alg::EdDSA, &f.ed, "ed"),
        (Alg::HS256, &hs, "hs"),
        (Alg::HS384, &hs, "hs"),
        (Alg::HS512, &hs, "hs"),
    ];
    for (alg, signer, kid) in cases {
        // Header {"alg":<alg>,"kid":<kid>}, claims good_claims().
        let token = signer.token(alg, &format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#), &good_claims());
        let v = verify(&token, &f.keys, &policy, NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(v.alg(), alg);
        // Without a kid the key is found by alg.
        let token = signer.token(alg, &format!(r#"{{"alg":"{alg}"}}"#), &good_claims());
        verify(&token, &f.keys, &policy, NOW).unwrap_or_else(|e| panic!("{alg} without kid: {e}"));
    }
}

#[test]
fn alg_none_is_refused_in_any_case() {
    let f = fixture();
    for alg in ["none", "None", "NONE"] {
        let unsigned =
            format!("{}.{}.", b64(format!(r#"{{"alg":"{alg}"}}"#).as_bytes()), b64(good_claims().as_bytes()));
        assert_eq!(err(&unsigned, &f, &policy()), JwtError::Malformed, "empty signature part");
        let with_sig = format!("{unsigned}c2ln");
        assert_eq!(err(&with_sig, &f, &policy()), JwtError::AlgNone);
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The classic confusion: an attacker takes the IdP's public RSA key (as published, or
    // its DER/JWK bytes) as an HMAC secret and labels the token HS256.
    let f = fixture();
    let public_der = match &f.rsa {
        Signer::Rsa(kp) => ring::signature::KeyPair::public_key(kp).as_ref().to_vec(),
        _ => unreachable!(),
    };
    let members = f.rsa.jwk_members();
    for secret in [public_der, members.into_bytes()] {
        let forged = Signer::Hmac(secret).token(Alg::HS256, r#"{"alg":"HS256","kid":"rsa"}"#, &good_claims());
        assert_eq!(err(&forged, &f, &policy()), JwtError::HsDisabled);
        assert_eq!(err(&forged, &f, &policy().allowed_algs(&[Alg::RS256])), JwtError::AlgNotAllowed);
        // Even with HS on, the HMAC key is the configured secret, never JWKS material.
        let hs_on = policy().enable_hs(HmacSecret::new(b"configured".to_vec()));
        assert_eq!(err(&forged, &f, &hs_on), JwtError::Signature);
    }
}

#[test]
fn algorithm_outside_the_allow_list_is_refused() {
    let f = fixture();
    let token = f.p256.token(Alg::ES256, r#"{"alg":"ES256","kid":"p256"}"#, &good_claims());
    assert_eq!(err(&token, &f, &policy().allowed_algs(&[Alg::RS256, Alg::PS256])), JwtError::AlgNotAllowed);
    verify(&token, &f.keys, &policy().allowed_algs(&[Alg::ES256]), NOW).expect("allowed");
}

#[test]
fn unknown_kid_and_key_type_mismatches_are_refused() {
    let f = fixture();
    // Header {"alg":"RS256","kid":"rotated-away"}.
    let token = f.rsa.token(Alg::RS256, r#"{"alg":"RS256","kid":"rotated-away"}"#, &good_claims());
    let e = err(&token, &f, &policy());
    assert_eq!(e, JwtError::UnknownKid);
    assert!(e.wants_key_refresh());
    // ES256 token pointing at the RSA key's kid.
    let token = f.p256.token(Alg::ES256, r#"{"alg":"ES256","kid":"rsa"}"#, &good_claims());
    assert_eq!(err(&token, &f, &policy()), JwtError::KeyAlgMismatch);
    // ES384 claimed for the P-256 key.
    let token = f.p384.token(Alg::ES384, r#"{"alg":"ES384","kid":"p256"}"#, &good_claims());
    assert_eq!(err(&token, &f, &policy()), JwtError::KeyAlgMismatch);
    // A key pinned to RS256 is not used for PS256.
    let pinned = KeySet::from_jwks(jwks(&[f.rsa.jwk("rsa", Some("RS256"))]).as_bytes()).unwrap();
    let token = f.rsa.token(Alg::PS256, r#"{"alg":"PS256","kid":"rsa"}"#, &good_claims());
    assert_eq!(verify(&token, &pinned, &policy(), NOW).unwrap_err(), JwtError::KeyAlgMismatch);
    // No kid and no key for the alg.
    let only_rsa = KeySet::from_jwks(jwks(&[f.rsa.jwk("rsa", None)]).as_bytes()).unwrap();
    let token = f.ed.token(Alg::EdDSA, r#"{"alg":"EdDSA"}"#, &good_claims());
    assert_eq!(verify(&token, &only_rsa, &policy(), NOW).unwrap_err(), JwtError::NoKeyForAlg);
}

#[test]
fn signature_under_the_other_rsa_padding_is_refused() {
    let f = fixture();
    // Signed PKCS#1 v1.5 but labelled PS256, and the reverse.
    let input = format!("{}.{}", b64(br#"{"alg":"PS256","kid":"rsa"}"#), b64(good_claims().as_bytes()));
    let sig = f.rsa.sign(Alg::RS256, input.as_bytes());
    assert_eq!(err(&format!("{input}.{}", b64(&sig)), &f, &policy()), JwtError::Signature);
    let input = format!("{}.{}", b64(br#"{"alg":"RS256","kid":"rsa"}"#), b64(good_claims().as_bytes()));
    let sig = f.rsa.sign(Alg::PS256, input.as_bytes());
    assert_eq!(err(&format!("{input}.{}", b64(&sig)), &f, &policy()), JwtError::Signature);
}

#[test]
fn ecdsa_der_signature_is_refused() {
    // JWS ECDSA signatures are fixed-width r||s (RFC 7518 §3.4); ASN.1 DER must not pass.
    let der_signer = Signer::p256_der();
    let keys = KeySet::from_jwks(jwks(&[der_signer.jwk("k", None)]).as_bytes()).unwrap();
    let token = der_signer.token(Alg::ES256, r#"{"alg":"ES256","kid":"k"}"#, &good_claims());
    assert_eq!(verify(&token, &keys, &policy(), NOW).unwrap_err(), JwtError::Signature);
}

#[test]
fn crit_header_is_refused_in_any_form() {
    let f = fixture();
    for crit in [r#"["exp"]"#, "[]", r#"["b64"]"#, "null", r#""x""#] {
        // Header {"alg":"RS256","kid":"rsa","crit":<crit>, "exp":1}.
        let header = format!(r#"{{"alg":"RS256","kid":"rsa","crit":{crit},"exp":1,"b64":true}}"#);
        let token = f.rsa.token(Alg::RS256, &header, &good_claims());
        assert_eq!(err(&token, &f, &policy()), JwtError::Crit, "crit {crit}");
    }
}

#[test]
fn typ_must_be_jwt_or_at_jwt() {
    let f = fixture();
    for typ in ["JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/JWT"] {
        let token = f.rsa.token(Alg::RS256, &format!(r#"{{"alg":"RS256","kid":"rsa","typ":"{typ}"}}"#), &good_claims());
        verify(&token, &f.keys, &policy(), NOW).unwrap_or_else(|e| panic!("typ {typ}: {e}"));
    }
    for typ in [
        "JOSE",
        "JWS",
        "secevent+jwt",
        "application/",
        "",
        "applicatio\u{e9}/jwt",
        "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
    ] {
        let token = f.rsa.token(Alg::RS256, &format!(r#"{{"alg":"RS256","kid":"rsa","typ":"{typ}"}}"#), &good_claims());
        assert_eq!(err(&token, &f, &policy()), JwtError::Typ, "typ {typ:?}");
    }
}

/// RFC 9701 §5: a signed introspection answer is typed `token-introspection+jwt`, and
/// under the answers' policy nothing else (no `typ` either) stands for one; an access
/// token's policy refuses that type.
#[test]
fn introspection_answers_need_their_own_typ_and_only_it() {
    let f = fixture();
    let answers = policy().for_introspection_answers();
    let typed =
        |typ: &str| f.rsa.token(Alg::RS256, &format!(r#"{{"alg":"RS256","kid":"rsa","typ":"{typ}"}}"#), &good_claims());
    for typ in ["token-introspection+jwt", "application/token-introspection+jwt", "Token-Introspection+JWT"] {
        verify(&typed(typ), &f.keys, &answers, NOW).unwrap_or_else(|e| panic!("typ {typ}: {e}"));
        assert_eq!(err(&typed(typ), &f, &policy()), JwtError::Typ, "an access token's policy: {typ}");
    }
    for typ in ["JWT", "at+jwt", "token-introspection"] {
        assert_eq!(err(&typed(typ), &f, &answers), JwtError::Typ, "typ {typ}");
    }
    let untyped = f.rsa.token(Alg::RS256, r#"{"alg":"RS256","kid":"rsa"}"#, &good_claims());
    assert_eq!(err(&untyped, &f, &answers), JwtError::Typ, "no typ");
}

#[test]
fn key_bearing_headers_are_never_followed() {
    // An attacker signs with their own key and embeds it (`jwk`), points at it (`jku`,
    // `x5u`), and leaves out `kid`: the set's P-256 key is used and the signature fails.
    let f = fixture();
    let attacker = Signer::p256();
    let header = format!(
        r#"{{"alg":"ES256","jku":"https://evil.example/jwks","x5u":"https://evil.example/c","jwk":{{{}}}}}"#,
        attacker.jwk_members()
    );
    let token = attacker.token(Alg::ES256, &header, &good_claims());
    assert_eq!(err(&token, &f, &policy()), JwtError::Signature);
}

#[test]
fn tampered_payload_or_signature_is_refused() {
    let f = fixture();
    let token = rs256(&f, &good_claims());
    let parts: Vec<&str> = token.split('.').collect();
    // Same header and signature, claims with a different sub.
    let other = good_claims().replace("client-1", "client-2");
    let swapped = format!("{}.{}.{}", parts[0], b64(other.as_bytes()), parts[2]);
    assert_eq!(err(&swapped, &f, &policy()), JwtError::Signature);
    // One bit of the signature flipped.
    let mut sig = crate::jose::b64_decode(parts[2].as_bytes()).unwrap();
    sig[10] ^= 1;
    assert_eq!(err(&format!("{}.{}.{}", parts[0], parts[1], b64(&sig)), &f, &policy()), JwtError::Signature);
    // Truncated and extended signatures.
    let short = b64(&sig[..sig.len() - 1]);
    assert_eq!(err(&format!("{}.{}.{short}", parts[0], parts[1]), &f, &policy()), JwtError::Signature);
    let long = b64(&[sig.as_slice(), &[0]].concat());
    assert_eq!(err(&format!("{}.{}.{long}", parts[0], parts[1]), &f, &policy()), JwtError::Signature);
    // A signature longer than any key could make.
    let huge = b64(&[0u8; 2000]);
    assert_eq!(err(&format!("{}.{}.{huge}", parts[0], parts[1]), &f, &policy()), JwtError::Signature);
    // Header changed (kid) under the same signature.
    let header = b64(br#"{"kid":"rsa","alg":"RS256"}"#);
    assert_eq!(err(&format!("{header}.{}.{}", parts[1], parts[2]), &f, &policy()), JwtError::Signature);
}

#[test]
fn parts_must_be_strict_unpadded_base64url() {
    let f = fixture();
    let token = rs256(&f, &good_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    for bad in [
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p} .{s}"),
        format!("{h}.{p}.+{}", &s[1..]),
        format!("{h}.{p}./{}", &s[1..]),
        format!("{h}.{p}.{s}AAA"), // an impossible length
        format!("{h}.{p}\n.{s}"),
    ] {
        assert_eq!(err(&bad, &f, &policy()), JwtError::Base64, "{bad:.40}…");
    }
    // Non-canonical trailing bits: the 1-byte header "{" encodes as "ew"; "ex" differs
    // only in bits that must be zero.
    let noncanonical = format!("ex.{p}.{s}");
    assert_eq!(err(&noncanonical, &f, &policy()), JwtError::Base64);
}

#[test]
fn wrong_number_of_parts_is_malformed() {
    let f = fixture();
    let token = rs256(&f, &good_claims());
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        String::new(),
        ".".to_string(),
        "..".to_string(),
        parts[0].to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}."),
        format!("{token}.{}", parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}.{}.{}", parts[0], "a", "b", parts[1], parts[2]),
    ] {
        assert_eq!(err(&bad, &f, &policy()), JwtError::Malformed, "{bad:.40}");
    }
}

#[test]
fn oversized_token_is_refused_before_any_work() {
    let f = fixture();
    // A genuinely signed token whose claims carry 16 KiB of padding.
    let claims = format!(r#"{{"iss":"{ISS}","pad":"{}"}}"#, "x".repeat(MAX_TOKEN_LEN));
    let token = rs256(&f, &claims);
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(err(&token, &f, &policy()), JwtError::TooLarge);
    // Just under the cap still verifies.
    let pad = MAX_TOKEN_LEN - rs256(&f, &format!(r#"{{"iss":"{ISS}","pad":""}}"#)).len();
    let pad = pad / 4 * 3 - 3;
    let token = rs256(&f, &format!(r#"{{"iss":"{ISS}","pad":"{}"}}"#, "x".repeat(pad)));
    assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
    verify(&token, &f.keys, &policy(), NOW).expect("at the cap");
}

#[test]
fn header_must_be_a_json_object_with_a_string_alg() {
    let f = fixture();
    for (header, want) in [
        (r#"{"kid":"rsa"}"#, JwtError::AlgMissing),
        (r#"{"alg":null,"kid":"rsa"}"#, JwtError::AlgMissing),
        (r#"{"alg":256,"kid":"rsa"}"#, JwtError::Header),
        (r#"{"alg":"RS256","kid":7}"#, JwtError::Header),
        (r#"{"alg":"RS256","alg":"RS256","kid":"rsa"}"#, JwtError::Header),
        (r#"{"alg":"RS256","kid":"rsa","kid":"rsa"}"#, JwtError::Header),
        (r#"["RS256"]"#, JwtError::Header),
        (r#""RS256""#, JwtError::Header),
        (r#"{"alg":"RS256","kid":"rsa""#, JwtError::Header),
        (r#"{"alg":"RS256","kid":"rsa"} x"#, JwtError::Header),
        (r#"{"alg":"ES512"}"#, JwtError::AlgUnsupported),
        (r#"{"alg":"rs256"}"#, JwtError::AlgUnsupported),
    ] {
        let token = f.rsa.token(Alg::RS256, header, &good_claims());
        assert_eq!(err(&token, &f, &policy()), want, "{header}");
    }
    // Invalid UTF-8 in the header.
    let token = format!("{}.{}.c2ln", b64(b"{\"alg\":\"RS\xff\"}"), b64(good_claims().as_bytes()));
    assert_eq!(err(&token, &f, &policy()), JwtError::Header);
    // An escaped alg is still the alg: {"alg":"RS\u0032\u0035\u0036"}.
    let token = f.rsa.token(Alg::RS256, r#"{"alg":"RS\u0032\u0035\u0036","kid":"rsa"}"#, &good_claims());
    verify(&token, &f.keys, &policy(), NOW).expect("escaped alg");
}

#[test]
fn header_nested_deep_is_refused_without_overflowing_the_stack() {
    let f = fixture();
    // 4 000 levels fit the token cap; serde's visitors recursed once per level and
    // overflowed the stack (an abort of the process) on an unverified caller token.
    // (The limit is MAX_JSON_DEPTH, 128 levels: 200 is past it.)
    for depth in [4_000, 200] {
        let header = format!(r#"{{"alg":"RS256","kid":"rsa","x":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let token = f.rsa.token(Alg::RS256, &header, &good_claims());
        assert_eq!(err(&token, &f, &policy()), JwtError::Header, "{depth}");
    }
    // Brackets in strings are not nesting; a jwk member is two levels.
    let header = format!(r#"{{"alg":"RS256","kid":"rsa","x":"{}","jwk":{{"kty":"RSA"}}}}"#, "[".repeat(100));
    verify(&f.rsa.token(Alg::RS256, &header, &good_claims()), &f.keys, &policy(), NOW).expect("shallow header");
}

#[test]
fn claims_of_the_wrong_type_are_refused() {
    let f = fixture();
    for (claims, name) in [
        (r#"{"exp":"1767225900"}"#, "exp"),
        (r#"{"exp":null}"#, "exp"),
        (r#"{"nbf":true}"#, "nbf"),
        (r#"{"iat":[1]}"#, "iat"),
        (r#"{"iss":5}"#, "iss"),
        (r#"{"sub":{}}"#, "sub"),
        (r#"{"aud":5}"#, "aud"),
        (r#"{"aud":["a",5]}"#, "aud"),
        (r#"{"jti":1}"#, "jti"),
    ] {
        assert_eq!(err(&rs256(&f, claims), &f, &policy()), JwtError::ClaimType(name), "{claims}");
    }
    for claims in ["[]", "\"text\"", "", "{", "{} {}", "null"] {
        assert_eq!(err(&rs256(&f, claims), &f, &policy()), JwtError::Claims, "{claims:?}");
    }
}

#[test]
fn exp_boundaries_with_and_without_leeway() {
    let f = fixture();
    let exp = NOW + 100;
    // Claims {"exp":NOW+100}.
    let token = rs256(&f, &format!(r#"{{"exp":{exp}}}"#));
    let at = |now: u64, leeway: u64| verify(&token, &f.keys, &policy().leeway(leeway), now).map(|v| v.exp());
    assert_eq!(at(exp - 1, 0), Ok(Some(exp)));
    assert_eq!(at(exp, 0), Err(JwtError::Expired));
    assert_eq!(at(exp + 9, 10), Ok(Some(exp)));
    assert_eq!(at(exp + 10, 10), Err(JwtError::Expired));
    // Extreme clocks and leeways saturate instead of overflowing.
    assert_eq!(at(u64::MAX, 0), Err(JwtError::Expired));
    assert_eq!(at(0, u64::MAX), Ok(Some(exp)));
    // Fractional exp rounds up: valid through the whole second before it.
    let token = rs256(&f, &format!(r#"{{"exp":{exp}.5}}"#));
    assert!(verify(&token, &f.keys, &policy(), exp).is_ok());
    assert_eq!(verify(&token, &f.keys, &policy(), exp + 1).unwrap_err(), JwtError::Expired);
    // Negative and huge values are just numbers.
    assert_eq!(err(&rs256(&f, r#"{"exp":-5}"#), &f, &policy()), JwtError::Expired);
    assert!(verify(&rs256(&f, r#"{"exp":1e300}"#), &f.keys, &policy(), NOW).is_ok());
    assert!(verify(&rs256(&f, r#"{"exp":18446744073709551615}"#), &f.keys, &policy(), NOW).is_ok());
}

#[test]
fn exp_is_optional_unless_required() {
    let f = fixture();
    // Claims {"iss":ISS} — no exp, as Kong accepts.
    let token = rs256(&f, &format!(r#"{{"iss":"{ISS}"}}"#));
    assert_eq!(verify(&token, &f.keys, &policy(), NOW).unwrap().exp(), None);
    assert_eq!(err(&token, &f, &policy().require_exp(true)), JwtError::ExpMissing);
}

#[test]
fn nbf_and_iat_in_the_future_are_refused_beyond_leeway() {
    let f = fixture();
    for (claim, want) in [("nbf", JwtError::NotYetValid), ("iat", JwtError::IssuedInFuture)] {
        let at = NOW + 30;
        // Claims {<claim>:NOW+30}.
        let token = rs256(&f, &format!(r#"{{"{claim}":{at}}}"#));
        let check = |now: u64, leeway: u64| verify(&token, &f.keys, &policy().leeway(leeway), now).err();
        assert_eq!(check(at, 0), None, "{claim}: valid from that second on");
        assert_eq!(check(at - 1, 0), Some(want), "{claim}");
        assert_eq!(check(at - 5, 5), None, "{claim}");
        assert_eq!(check(at - 6, 5), Some(want), "{claim}");
    }
}

#[test]
fn the_verifying_keys_public_jwk_is_kept_only_when_asked_and_never_for_hs() {
    let f = fixture();
    let keep = policy().keep_key_jwk(true);
    let key_jwk = |token: &str, policy: &Policy| {
        verify(token, &f.keys, policy, NOW).expect("verifies").key_jwk().map(str::to_string)
    };
    // Each key type, rebuilt from what was decoded: the same members the JWKS had.
    let cases = [
        (rs256(&f, &good_claims()), &f.rsa, "rsa"),
        (f.p256.token(Alg::ES256, r#"{"alg":"ES256","kid":"p256"}"#, &good_claims()), &f.p256, "p256"),
        (f.p384.token(Alg::ES384, r#"{"alg":"ES384","kid":"p384"}"#, &good_claims()), &f.p384, "p384"),
        (f.ed.token(Alg::EdDSA, r#"{"alg":"EdDSA","kid":"ed"}"#, &good_claims()), &f.ed, "ed"),
    ];
    for (token, signer, kid) in &cases {
        let members = signer.jwk_members();
        let (kty, rest) = members.split_once(',').expect("kty first");
        assert_eq!(key_jwk(token, &keep), Some(format!(r#"{{{kty},"kid":"{kid}",{rest}}}"#)), "{kid}");
        assert_eq!(key_jwk(token, &policy()), None, "{kid}: not kept unless asked");
    }
    // A pinned alg is part of the key; a stray private member of the document is not.
    let doc = jwks(&[format!(r#"{{"kid":"pinned","alg":"RS256","d":"c2VjcmV0",{}}}"#, f.rsa.jwk_members())]);
    let pinned = KeySet::from_jwks(doc.as_bytes()).unwrap();
    let token = f.rsa.token(Alg::RS256, r#"{"alg":"RS256","kid":"pinned"}"#, &good_claims());
    let jwk = verify(&token, &pinned, &keep, NOW).unwrap().key_jwk().map(str::to_string).unwrap();
    assert!(jwk.starts_with(r#"{"kty":"RSA","kid":"pinned","alg":"RS256","n":""#), "{jwk}");
    assert!(!jwk.contains("\"d\""), "{jwk}");
    // An HS secret is no JWK.
    let hs_policy = keep.clone().enable_hs(HmacSecret::new(b"an-hs-secret-of-32-bytes-or-more".to_vec()));
    let hs = Signer::Hmac(b"an-hs-secret-of-32-bytes-or-more".to_vec()).token(
        Alg::HS256,
        r#"{"alg":"HS256"}"#,
        &good_claims(),
    );
    assert_eq!(key_jwk(&hs, &hs_policy), None);
}

#[test]
fn max_age_requires_a_recent_auth_time_and_brings_the_expiry_forward() {
    let f = fixture();
    let with = |claims: &str| rs256(&f, claims);
    let check = |token: &str, now: u64, leeway: u64| {
        verify(token, &f.keys, &policy().leeway(leeway).max_age(Some(300)), now).map(|v| v.exp())
    };
    let exp = NOW + 3600;
    // Authenticated 300 s ago: accepted, and counted as expiring when it grows too old.
    let token = with(&format!(r#"{{"exp":{exp},"auth_time":{}}}"#, NOW - 300));
    assert_eq!(check(&token, NOW, 0), Ok(Some(NOW + 1)));
    assert_eq!(check(&token, NOW + 1, 0), Err(JwtError::AuthTooOld));
    assert_eq!(check(&token, NOW + 5, 5), Ok(Some(NOW + 1)), "leeway stretches the age as it does exp");
    assert_eq!(check(&token, NOW + 6, 5), Err(JwtError::AuthTooOld));
    // A recent authentication keeps the token's own exp.
    let fresh = with(&format!(r#"{{"exp":{},"auth_time":{NOW}}}"#, NOW + 60));
    assert_eq!(check(&fresh, NOW, 0), Ok(Some(NOW + 60)));
    // No exp: the age alone bounds it.
    assert_eq!(check(&with(&format!(r#"{{"auth_time":{NOW}}}"#)), NOW, 0), Ok(Some(NOW + 301)));
    // Required, a number, and not in the future.
    assert_eq!(check(&with(&format!(r#"{{"exp":{exp}}}"#)), NOW, 0), Err(JwtError::AuthTimeMissing));
    assert_eq!(check(&with(r#"{"auth_time":"1"}"#), NOW, 0), Err(JwtError::ClaimType("auth_time")));
    let future = with(&format!(r#"{{"exp":{exp},"auth_time":{}}}"#, NOW + 10));
    assert_eq!(check(&future, NOW, 0), Err(JwtError::AuthTimeInFuture));
    assert_eq!(check(&future, NOW, 10), Ok(Some(NOW + 311)));
    // Without max_age, auth_time is not read at all (as in Kong).
    assert_eq!(verify(&with(r#"{"auth_time":"x"}"#), &f.keys, &policy(), NOW).map(|v| v.exp()), Ok(None));
    // An introspection answer states no authentication: max_age does not apply to it.
    let answers = policy().max_age(Some(300)).for_introspection_answers();
    let answer =
        f.rsa.token(Alg::RS256, r#"{"alg":"RS256","kid":"rsa","typ":"token-introspection+jwt"}"#, &good_claims());
    verify(&answer, &f.keys, &answers, NOW).expect("an answer without auth_time");
}

#[test]
fn issuer_must_match_or_be_allowed() {
    let f = fixture();
    let token = |iss: &str| rs256(&f, &format!(r#"{{"iss":"{iss}","exp":{}}}"#, NOW + 60));
    assert!(verify(&token(ISS), &f.keys, &policy(), NOW).is_ok());
    assert!(verify(&token(&format!("{ISS}/")), &f.keys, &policy(), NOW).is_ok());
    assert_eq!(err(&token("https://idp.example/realms/other"), &f, &policy()), JwtError::Issuer);
    assert_eq!(err(&token(&format!("{ISS}//")), &f, &policy()), JwtError::Issuer);
    let allowed = policy().issuers_allowed(&["https://idp.example/realms/other/"]);
    assert!(verify(&token("https://idp.example/realms/other"), &f.keys, &allowed, NOW).is_ok());
    // Configured as a discovery URL.
    let by_discovery = Policy::new(&format!("{ISS}/.well-known/openid-configuration"));
    assert!(verify(&token(ISS), &f.keys, &by_discovery, NOW).is_ok());
}

#[test]
fn repeated_claims_take_the_last_value() {
    // RFC 7519 §4 allows a parser that keeps the lexically last member. The checks and
    // every later reader see the same value: on the tape `verify_into` leaves (which
    // keeps every member), and in the owned tree `verify` gives (simd-json is built with
    // `value-no-dup-keys`, so an insert replaces).
    let f = fixture();
    let token = rs256(&f, &format!(r#"{{"exp":{},"exp":{}}}"#, NOW + 60, NOW - 60));
    assert_eq!(err(&token, &f, &policy()), JwtError::Expired);
    let token = rs256(&f, &format!(r#"{{"exp":{},"exp":{}}}"#, NOW - 60, NOW + 60));
    assert_eq!(verify(&token, &f.keys, &policy(), NOW).unwrap().exp(), Some(NOW + 60));
    let token = rs256(&f, &format!(r#"{{"iss":"{ISS}","iss":"https://evil.example","exp":{}}}"#, NOW + 60));
    assert_eq!(err(&token, &f, &policy()), JwtError::Issuer);
    let claims = format!(
        r#"{{"iss":"https://evil.example","iss":"{ISS}","exp":{},"x":1,"n":{{"r":"a","r":"b"}},"x":[2]}}"#,
        NOW + 60
    );
    let token = rs256(&f, &claims);
    let mut payload = Vec::new();
    let in_place = verify_into(&token, &f.keys, &policy(), NOW, &mut payload).expect("verifies");
    let owned = verify(&token, &f.keys, &policy(), NOW).expect("verifies");
    for v in [&in_place, &owned] {
        assert_eq!(v.iss(), Some(ISS));
        assert_eq!(v.claim("x").map(|x| x.to_json()).as_deref(), Some("[2]"));
        assert_eq!(v.claim_path(&["n", "r"]).and_then(|r| r.as_str()), Some("b"));
        assert_eq!(v.claim("n").map(|n| n.to_json()).as_deref(), Some(r#"{"r":"b"}"#));
    }
}

#[test]
fn sign_hs256_makes_a_token_verify_accepts() {
    // Claims of a client_secret_jwt assertion (RFC 7523 §3).
    let claims = format!(
        r#"{{"iss":"client-1","sub":"client-1","aud":"https://idp.example/token","jti":"j-1","exp":{}}}"#,
        NOW + 60
    );
    let token = sign_hs256(claims.as_bytes(), b"client secret");
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    let policy = Policy::new("client-1").enable_hs(HmacSecret::new(b"client secret".to_vec()));
    let v = verify(&token, &KeySet::default(), &policy, NOW).expect("verifies");
    assert!(v.audience_contains("https://idp.example/token"));
    let wrong = Policy::new("client-1").enable_hs(HmacSecret::new(b"other".to_vec()));
    assert_eq!(verify(&token, &KeySet::default(), &wrong, NOW).unwrap_err(), JwtError::Signature);
    // A token HMAC'd with an empty key is refused even when the configured secret is empty.
    let empty_key = sign_hs256(claims.as_bytes(), b"");
    let empty = Policy::new("client-1").enable_hs(HmacSecret::new(Vec::new()));
    assert_eq!(verify(&empty_key, &KeySet::default(), &empty, NOW).unwrap_err(), JwtError::HsDisabled);
}

#[test]
fn error_reasons_carry_no_token_material() {
    let f = fixture();
    let token = rs256(&f, r#"{"exp":"secret-ish"}"#);
    let e = err(&token, &f, &policy());
    for text in [e.to_string(), e.reason().to_string(), format!("{e:?}")] {
        assert!(!text.contains("secret-ish") && !text.contains(&token[..20]), "{text}");
    }
    assert_eq!(JwtError::Expired.reason(), JwtError::Expired.to_string());
}

#[test]
fn verify_signature_alone_skips_claims() {
    let f = fixture();
    // Claims {"exp":1} — long expired, but the signature step does not look.
    let token = rs256(&f, r#"{"exp":1}"#);
    let jws = verify_signature(&token, &f.keys, &policy()).expect("signature ok");
    assert_eq!(jws.payload, br#"{"exp":1}"#);
}

#[test]
fn deeply_nested_header_or_claims_are_refused_not_a_stack_overflow() {
    // Regression: a header of a few KiB of `[` overflowed the stack in simd-json's
    // recursive skip of unread members and aborted the process, before any signature.
    let f = fixture();
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let header = format!(r#"{{"alg":"RS256","kid":"rsa","x":{}}}"#, nested(5000));
    let token = format!("{}.{}.c2ln", b64(header.as_bytes()), b64(good_claims().as_bytes()));
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(err(&token, &f, &policy()), JwtError::Header);
    // The same in signed claims (only an issuer's key can get this far).
    let claims = format!(r#"{{"iss":"{ISS}","x":{}}}"#, nested(5000));
    assert_eq!(err(&rs256(&f, &claims), &f, &policy()), JwtError::Claims);
    // At the limit: the header is read (the signature then decides) and claims verify.
    let depth = crate::jose::MAX_JSON_DEPTH;
    let header = format!(r#"{{"alg":"RS256","kid":"rsa","x":{}}}"#, nested(depth - 1));
    let token = format!("{}.{}.c2ln", b64(header.as_bytes()), b64(good_claims().as_bytes()));
    assert_eq!(err(&token, &f, &policy()), JwtError::Signature);
    let header = format!(r#"{{"alg":"RS256","kid":"rsa","x":{}}}"#, nested(depth));
    let token = format!("{}.{}.c2ln", b64(header.as_bytes()), b64(good_claims().as_bytes()));
    assert_eq!(err(&token, &f, &policy()), JwtError::Header);
    let claims = format!(r#"{{"iss":"{ISS}","x":{}}}"#, nested(depth - 1));
    verify(&rs256(&f, &claims), &f.keys, &policy(), NOW).expect("nested up to the limit");
}

#[test]
fn json_depth_counts_brackets_outside_strings_only() {
    use crate::jose::{json_depth_ok, MAX_JSON_DEPTH};
    let deep = "[".repeat(MAX_JSON_DEPTH + 1);
    assert!(json_depth_ok("[".repeat(MAX_JSON_DEPTH).as_bytes()));
    assert!(!json_depth_ok(deep.as_bytes()));
    assert!(!json_depth_ok("{\"a\":".repeat(MAX_JSON_DEPTH + 1).as_bytes()));
    // Inside a string, after an escaped quote, and after an escaped backslash.
    assert!(json_depth_ok(format!(r#"["{deep}"]"#).as_bytes()));
    assert!(json_depth_ok(format!(r#"["\"{deep}"]"#).as_bytes()));
    assert!(!json_depth_ok(format!(r#"["\\",{deep}"#).as_bytes()));
    // Closing brackets give the depth back.
    assert!(json_depth_ok("[]".repeat(10 * MAX_JSON_DEPTH).as_bytes()));
}

/// The depth check skips strings with memchr; this byte-at-a-time reading of the same rule
/// is the reference it must agree with on every input.
fn json_depth_ok_bytewise(json: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > crate::jose::MAX_JSON_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[test]
fn json_depth_check_agrees_with_a_byte_at_a_time_reading() {
    use crate::jose::json_depth_ok;
    // Texts of brackets, quotes, backslashes and filler, mostly opening brackets so that
    // many cross the depth limit, from a fixed xorshift sequence.
    const ALPHABET: &[u8] = b"[[[[[[[[[[{{{{]]}a,,::1 \"\\";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut refused, mut passed) = (0, 0);
    for _ in 0..20_000 {
        let len = (next() % 1000) as usize;
        let text: Vec<u8> = (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize]).collect();
        let expected = json_depth_ok_bytewise(&text);
        assert_eq!(json_depth_ok(&text), expected, "{}", String::from_utf8_lossy(&text));
        if expected {
            passed += 1;
        } else {
            refused += 1;
        }
    }
    // Both answers occur often, so the comparison covers both.
    assert!(refused > 1_000 && passed > 1_000, "refused {refused}, passed {passed}");
    // Escapes at the very end, and a quote escaped inside a string.
    for text in [&b"\"\\"[..], b"\"", b"\"\\\"[", b"[\"\\\\\"]", b"\"\\\"\"[[", b""] {
        assert_eq!(json_depth_ok(text), json_depth_ok_bytewise(text));
    }
}

#[test]
fn tape_depth_check_agrees_with_the_text_check() {
    use crate::jose::{json_depth_ok, tape_depth_ok, MAX_JSON_DEPTH};
    // Valid JSON of nested arrays and objects with siblings at every level (brackets
    // inside strings too, empty containers as leaves), from a fixed xorshift sequence,
    // nesting around the limit.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    // One member of each container goes on deeper (the spine), up to `max`; the others
    // are scalars or shallow containers, so a text stays a few KiB.
    fn value(next: &mut dyn FnMut(u64) -> u64, depth: usize, max: usize, out: &mut String) {
        if depth >= max {
            out.push_str(["1", "\"[{\"", "[]", "{}", "null", "\"x\\\"]\""][next(6) as usize]);
            return;
        }
        let object = next(2) == 0;
        out.push(if object { '{' } else { '[' });
        let members = 1 + next(3);
        let spine = next(members);
        for m in 0..members {
            if m > 0 {
                out.push(',');
            }
            if object {
                out.push_str(&format!("\"k{m}\":"));
            }
            let until = if m == spine { max } else { depth + 1 + next(2) as usize };
            value(next, depth + 1, until, out);
        }
        out.push(if object { '}' } else { ']' });
    }
    let (mut refused, mut passed) = (0, 0);
    for _ in 0..3_000 {
        // Depth `max` plus up to one for a shallow sibling: around the limit either way.
        let max = MAX_JSON_DEPTH - 8 + next(16) as usize;
        let mut text = String::new();
        value(&mut next, 0, max, &mut text);
        let expected = json_depth_ok(text.as_bytes());
        let mut bytes = text.clone().into_bytes();
        let tape = simd_json::to_tape(&mut bytes).expect("generated JSON");
        assert_eq!(tape_depth_ok(&tape.0), expected, "{text}");
        if expected {
            passed += 1;
        } else {
            refused += 1;
        }
    }
    assert!(refused > 300 && passed > 300, "refused {refused}, passed {passed}");
}
