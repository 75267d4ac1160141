//! Published example vectors: RFC 7515 Appendix A, RFC 7520 §4 and RFC 8037 Appendix A.
//! Each must verify (or, for ES512, be refused as unsupported) exactly as published.

use super::jwks;
use crate::jose::{b64_decode, verify, verify_signature, Alg, HmacSecret, JwtError, KeySet, Policy, SkipReason};

/// RFC 7515 A.1–A.3 payload, claims: `{"iss":"joe", "exp":1300819380,
/// "http://example.com/is_root":true}` written with CRLF line breaks.
const RFC7515_PAYLOAD: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// `exp` of the RFC 7515 examples (2011-03-22).
const RFC7515_EXP: u64 = 1_300_819_380;

/// RFC 7515 A.1: HS256, header `{"typ":"JWT",\r\n "alg":"HS256"}`.
const A1_TOKEN: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);
/// RFC 7515 A.1.1: the HMAC key `k`.
const A1_KEY: &str = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// RFC 7515 A.2: RS256, header `{"alg":"RS256"}`, and its 2048-bit public key.
const A2_TOKEN: &str = concat!(
    "eyJhbGciOiJSUzI1NiJ9.",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.",
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4",
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv",
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw",
);
const A2_N: &str = concat!(
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOW",
    "vG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9k",
    "G4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
);

/// RFC 7515 A.3: ES256, header `{"alg":"ES256"}`, and its P-256 public key.
const A3_TOKEN: &str = concat!(
    "eyJhbGciOiJFUzI1NiJ9.",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.",
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
);
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

/// RFC 7515 A.4: ES512 (P-521), header `{"alg":"ES512"}`, payload the text `Payload`.
const A4_TOKEN: &str = concat!(
    "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.",
    "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8Kp",
    "EHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn",
);

/// RFC 7520 §4 payload: the text "It’s a dangerous business, Frodo, going out your door.
/// …" (not JSON claims).
const RFC7520_PAYLOAD: &str = concat!(
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBk",
    "b24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4",
);
const RFC7520_TEXT: &str = "It\u{2019}s a dangerous business, Frodo, going out your door. You step onto the road, \
    and if you don't keep your feet, there\u{2019}s no knowing where you might be swept off to.";

/// RFC 7520 §3.3: the RSA public key of kid `bilbo.baggins@hobbiton.example`.
const RFC7520_RSA_N: &str = concat!(
    "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2l",
    "bzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3",
    "-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw",
);

/// RFC 7520 §4.1: RS256, header `{"alg":"RS256","kid":"bilbo.baggins@hobbiton.example"}`.
const RFC7520_4_1_HEADER: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
const RFC7520_4_1_SIG: &str = concat!(
    "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmD",
    "LJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2",
    "aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg",
);

/// RFC 7520 §4.2: PS384 (randomised padding: this is the one published signature),
/// header `{"alg":"PS384","kid":"bilbo.baggins@hobbiton.example"}`.
const RFC7520_4_2_HEADER: &str = "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
const RFC7520_4_2_SIG: &str = concat!(
    "cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvW",
    "Xzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6ui",
    "P1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw",
);

/// RFC 7520 §4.3: ES512, header `{"alg":"ES512","kid":"bilbo.baggins@hobbiton.example"}`.
const RFC7520_4_3_HEADER: &str = "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
const RFC7520_4_3_SIG: &str = concat!(
    "AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890j",
    "l8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2",
);
/// RFC 7520 §3.1/3.2: the P-521 public key of the ES512 example.
const RFC7520_P521_X: &str = "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt";
const RFC7520_P521_Y: &str = "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1";

/// RFC 7520 §4.4: HS256, header `{"alg":"HS256","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037"}`,
/// with the §3.5 symmetric key.
const RFC7520_4_4_HEADER: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9";
const RFC7520_4_4_SIG: &str = "s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";
const RFC7520_HMAC_KEY: &str = "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg";

/// RFC 8037 A.1/A.2: the Ed25519 public key; A.4: the JWS over the text
/// "Example of Ed25519 signing", header `{"alg":"EdDSA"}`.
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_TOKEN: &str = concat!(
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.",
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
);

fn keys(jwk: &str) -> KeySet {
    let set = KeySet::from_jwks(jwks(&[jwk.to_string()]).as_bytes()).expect("jwks");
    assert!(set.skipped().is_empty(), "{:?}", set.skipped());
    set
}

fn joe() -> Policy {
    Policy::new("joe")
}

/// Changes the first character of the signature part (every bit of it is significant,
/// unlike the last one's, so the result is still canonical base64url).
fn flip_sig(token: &str) -> String {
    let at = token.rfind('.').map_or(0, |d| d + 1);
    let mut t = token.to_string();
    let first = if t.as_bytes()[at] == b'A' { "B" } else { "A" };
    t.replace_range(at..at + 1, first);
    t
}

#[test]
fn rfc7515_a1_hs256_verifies_with_its_key() {
    let policy = joe().enable_hs(HmacSecret::new(b64_decode(A1_KEY.as_bytes()).unwrap()));
    let v = verify(A1_TOKEN, &KeySet::default(), &policy, RFC7515_EXP - 1).expect("A.1 verifies");
    assert_eq!((v.alg(), v.iss(), v.exp()), (Alg::HS256, Some("joe"), Some(RFC7515_EXP)));
    assert_eq!(v.claim("http://example.com/is_root").and_then(|c| c.as_bool()), Some(true));
    // The 2011 example has long expired against a real clock.
    assert_eq!(verify(A1_TOKEN, &KeySet::default(), &policy, RFC7515_EXP).unwrap_err(), JwtError::Expired);
    // Same token without HS enabled.
    assert_eq!(verify(A1_TOKEN, &KeySet::default(), &joe(), RFC7515_EXP - 1).unwrap_err(), JwtError::HsDisabled);
}

#[test]
fn rfc7515_a2_rs256_verifies_with_its_jwk() {
    let set = keys(&format!(r#"{{"kty":"RSA","n":"{A2_N}","e":"AQAB"}}"#));
    let v = verify(A2_TOKEN, &set, &joe(), RFC7515_EXP - 1).expect("A.2 verifies");
    assert_eq!((v.alg(), v.kid(), v.exp()), (Alg::RS256, None, Some(RFC7515_EXP)));
    assert_eq!(verify(&flip_sig(A2_TOKEN), &set, &joe(), 0).unwrap_err(), JwtError::Signature);
}

#[test]
fn rfc7515_a3_es256_verifies_with_its_jwk() {
    let set = keys(&format!(r#"{{"kty":"EC","crv":"P-256","x":"{A3_X}","y":"{A3_Y}"}}"#));
    let v = verify(A3_TOKEN, &set, &joe(), RFC7515_EXP - 1).expect("A.3 verifies");
    assert_eq!(v.alg(), Alg::ES256);
    assert_eq!(verify(&flip_sig(A3_TOKEN), &set, &joe(), 0).unwrap_err(), JwtError::Signature);
}

#[test]
fn rfc7515_a4_es512_is_refused_as_unsupported() {
    // Its P-521 key is skipped when a JWKS offers it, and the token is refused on its alg
    // before any key is looked at.
    let set = KeySet::from_jwks(
        jwks(&[format!(r#"{{"kty":"EC","crv":"P-521","x":"{RFC7520_P521_X}","y":"{RFC7520_P521_Y}"}}"#)]).as_bytes(),
    )
    .unwrap();
    assert!(set.is_empty());
    assert_eq!(set.skipped()[0].reason, SkipReason::UnsupportedCurve);
    assert_eq!(verify(A4_TOKEN, &set, &joe(), 0).unwrap_err(), JwtError::AlgUnsupported);
}

fn rfc7520_rsa_keys() -> KeySet {
    keys(&format!(
        r#"{{"kty":"RSA","kid":"bilbo.baggins@hobbiton.example","use":"sig","n":"{RFC7520_RSA_N}","e":"AQAB"}}"#
    ))
}

fn rfc7520_token(header: &str, sig: &str) -> String {
    format!("{header}.{RFC7520_PAYLOAD}.{sig}")
}

#[test]
fn rfc7520_4_1_rs256_signature_verifies_and_text_payload_is_not_claims() {
    let token = rfc7520_token(RFC7520_4_1_HEADER, RFC7520_4_1_SIG);
    let jws = verify_signature(&token, &rfc7520_rsa_keys(), &joe()).expect("4.1 verifies");
    assert_eq!((jws.alg, jws.kid.as_deref()), (Alg::RS256, Some("bilbo.baggins@hobbiton.example")));
    assert_eq!(std::str::from_utf8(&jws.payload).unwrap(), RFC7520_TEXT);
    assert_eq!(verify(&token, &rfc7520_rsa_keys(), &joe(), 0).unwrap_err(), JwtError::Claims);
}

#[test]
fn rfc7520_4_2_ps384_published_signature_verifies() {
    let token = rfc7520_token(RFC7520_4_2_HEADER, RFC7520_4_2_SIG);
    let jws = verify_signature(&token, &rfc7520_rsa_keys(), &joe()).expect("4.2 verifies");
    assert_eq!(jws.alg, Alg::PS384);
    assert_eq!(jws.payload, RFC7520_TEXT.as_bytes());
    let tampered = rfc7520_token(RFC7520_4_2_HEADER, &flip_sig(RFC7520_4_2_SIG));
    assert_eq!(verify_signature(&tampered, &rfc7520_rsa_keys(), &joe()).unwrap_err(), JwtError::Signature);
    // The same key with a PS384-signed token under an RS384 label must fail.
    let relabelled = format!("{}.{RFC7520_PAYLOAD}.{RFC7520_4_2_SIG}", super::b64(br#"{"alg":"RS384"}"#));
    assert_eq!(verify_signature(&relabelled, &rfc7520_rsa_keys(), &joe()).unwrap_err(), JwtError::Signature);
}

#[test]
fn rfc7520_4_3_es512_is_refused_as_unsupported() {
    let token = rfc7520_token(RFC7520_4_3_HEADER, RFC7520_4_3_SIG);
    assert_eq!(verify_signature(&token, &rfc7520_rsa_keys(), &joe()).unwrap_err(), JwtError::AlgUnsupported);
}

#[test]
fn rfc7520_4_4_hs256_verifies_with_the_configured_secret() {
    let token = rfc7520_token(RFC7520_4_4_HEADER, RFC7520_4_4_SIG);
    let policy = joe().enable_hs(HmacSecret::new(b64_decode(RFC7520_HMAC_KEY.as_bytes()).unwrap()));
    let jws = verify_signature(&token, &KeySet::default(), &policy).expect("4.4 verifies");
    assert_eq!((jws.alg, jws.kid.as_deref()), (Alg::HS256, Some("018c0ae5-4d9b-471b-bfd6-eef314bc7037")));
    let wrong = joe().enable_hs(HmacSecret::new(b"not the key".to_vec()));
    assert_eq!(verify_signature(&token, &KeySet::default(), &wrong).unwrap_err(), JwtError::Signature);
}

#[test]
fn rfc8037_ed25519_example_verifies() {
    let set = keys(&format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#));
    let jws = verify_signature(RFC8037_TOKEN, &set, &joe()).expect("RFC 8037 A.4 verifies");
    assert_eq!((jws.alg, jws.payload.as_slice()), (Alg::EdDSA, &b"Example of Ed25519 signing"[..]));
    assert_eq!(verify_signature(&flip_sig(RFC8037_TOKEN), &set, &joe()).unwrap_err(), JwtError::Signature);
    // The payload is text, so the JWT step refuses it.
    assert_eq!(verify(RFC8037_TOKEN, &set, &joe(), 0).unwrap_err(), JwtError::Claims);
}

#[test]
fn rfc7515_payload_constant_is_the_claims_text() {
    let text = b64_decode(RFC7515_PAYLOAD.as_bytes()).unwrap();
    assert_eq!(text, b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}");
    assert!(
        A1_TOKEN.contains(RFC7515_PAYLOAD) && A2_TOKEN.contains(RFC7515_PAYLOAD) && A3_TOKEN.contains(RFC7515_PAYLOAD)
    );
}
