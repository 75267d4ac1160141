//! DPoP proof checks: the RFC 7638 thumbprint vector, and proofs signed here with fresh
//! keys, each broken in one way.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use super::*;

const TOKEN: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
const NOW: u64 = 1_800_000_000;

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn ath(token: &[u8]) -> String {
    b64(digest::digest(&digest::SHA256, token).as_ref())
}

/// An ES256 key pair and its public JWK.
struct Es256 {
    pair: EcdsaKeyPair,
    jwk: String,
}

impl Es256 {
    fn new() -> Es256 {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#, b64(&point[1..33]), b64(&point[33..]));
        Es256 { pair, jwk }
    }

    fn jkt(&self) -> String {
        let mut json = self.jwk.clone().into_bytes();
        let value = simd_json::to_borrowed_value(&mut json).unwrap();
        thumbprint(&value).unwrap()
    }

    fn sign(&self, header: &str, payload: &str) -> Vec<u8> {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref())).into_bytes()
    }

    fn header(&self) -> String {
        format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#, self.jwk)
    }
}

fn payload(htm: &str, htu: &str, iat: u64, token: &[u8]) -> String {
    format!(r#"{{"jti":"j-1","htm":"{htm}","htu":"{htu}","iat":{iat},"ath":"{}"}}"#, ath(token))
}

fn request<'a>(jkt: &'a str) -> ProofRequest<'a> {
    ProofRequest {
        method: b"GET",
        scheme: "http",
        host: b"api.example:8000",
        path: b"/orders/1?page=2",
        token: TOKEN,
        jkt,
        now: NOW,
        lifetime: 300,
        nonces: None,
    }
}

const HTU: &str = "http://api.example:8000/orders/1";

#[test]
fn the_rfc_7638_example_key_has_the_rfc_thumbprint() {
    // RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1.
    let mut jwk = br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#.to_vec();
    let value = simd_json::to_borrowed_value(&mut jwk).unwrap();
    assert_eq!(thumbprint(&value).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
}

#[test]
fn thumbprints_take_only_the_required_members_in_order() {
    let key = Es256::new();
    let mut with_extras = format!(r#"{{"kid":"k","use":"sig",{}"#, &key.jwk[1..]).into_bytes();
    let value = simd_json::to_borrowed_value(&mut with_extras).unwrap();
    assert_eq!(thumbprint(&value), Some(key.jkt()));
    let mut oct = br#"{"kty":"oct","k":"AAAA"}"#.to_vec();
    assert_eq!(thumbprint(&simd_json::to_borrowed_value(&mut oct).unwrap()), None);
    let mut no_y = br#"{"kty":"EC","crv":"P-256","x":"AAAA"}"#.to_vec();
    assert_eq!(thumbprint(&simd_json::to_borrowed_value(&mut no_y).unwrap()), None);
}

#[test]
fn a_proof_made_for_the_request_token_and_key_passes() {
    let key = Es256::new();
    let jkt = key.jkt();
    let proof = key.sign(&key.header(), &payload("GET", HTU, NOW, TOKEN));
    assert_eq!(verify_proof(&proof, &request(&jkt)), Ok(None));
}

#[test]
fn an_ed25519_proof_passes() {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b64(pair.public_key().as_ref()));
    let mut json = jwk.clone().into_bytes();
    let jkt = thumbprint(&simd_json::to_borrowed_value(&mut json).unwrap()).unwrap();
    let header = format!(r#"{{"typ":"dpop+jwt","alg":"EdDSA","jwk":{jwk}}}"#);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload("GET", HTU, NOW, TOKEN).as_bytes()));
    let proof = format!("{input}.{}", b64(pair.sign(input.as_bytes()).as_ref()));
    assert_eq!(verify_proof(proof.as_bytes(), &request(&jkt)), Ok(None));
}

#[test]
fn each_broken_proof_is_refused_for_its_own_reason() {
    let key = Es256::new();
    let jkt = key.jkt();
    let good_payload = payload("GET", HTU, NOW, TOKEN);
    let with_header = |h: &str| key.sign(h, &good_payload);
    let cases: Vec<(&str, Vec<u8>, DpopError)> = vec![
        ("two parts", b"abc.def".to_vec(), DpopError::Malformed),
        ("four parts", [&key.sign(&key.header(), &good_payload)[..], b".x"].concat(), DpopError::Malformed),
        ("too long", vec![b'a'; MAX_PROOF_LEN + 1], DpopError::Malformed),
        ("typ at+jwt", with_header(&key.header().replace("dpop+jwt", "at+jwt")), DpopError::Typ),
        ("no typ", with_header(&format!(r#"{{"alg":"ES256","jwk":{}}}"#, key.jwk)), DpopError::Typ),
        ("alg none", with_header(&key.header().replace("ES256", "none")), DpopError::Alg),
        ("alg HS256", with_header(&key.header().replace("ES256", "HS256")), DpopError::Alg),
        ("alg RS256 for an EC key", with_header(&key.header().replace("ES256", "RS256")), DpopError::Key),
        ("no jwk", with_header(r#"{"typ":"dpop+jwt","alg":"ES256"}"#), DpopError::Key),
        (
            "a private member",
            with_header(&key.header().replace(r#""kty":"EC""#, r#""kty":"EC","d":"AAAA""#)),
            DpopError::Key,
        ),
        ("crit", with_header(&key.header().replace(r#""typ""#, r#""crit":["x"],"typ""#)), DpopError::Header),
        ("header not an object", with_header("[1]"), DpopError::Header),
        ("no jti", key.sign(&key.header(), &good_payload.replace(r#""jti":"j-1","#, "")), DpopError::Claims),
        ("empty jti", key.sign(&key.header(), &good_payload.replace("j-1", "")), DpopError::Claims),
        (
            "no ath",
            key.sign(&key.header(), &payload("GET", HTU, NOW, TOKEN).replace(r#","ath""#, r#","x""#)),
            DpopError::Claims,
        ),
        (
            "iat a string",
            key.sign(&key.header(), &good_payload.replace(&format!("{NOW}"), &format!("\"{NOW}\""))),
            DpopError::Claims,
        ),
        ("iat 6 s ahead", key.sign(&key.header(), &payload("GET", HTU, NOW + 6, TOKEN)), DpopError::NotYetValid),
        ("iat 301 s old", key.sign(&key.header(), &payload("GET", HTU, NOW - 301, TOKEN)), DpopError::Expired),
        ("another method", key.sign(&key.header(), &payload("POST", HTU, NOW, TOKEN)), DpopError::Request),
        ("lower-case method", key.sign(&key.header(), &payload("get", HTU, NOW, TOKEN)), DpopError::Request),
        (
            "another path",
            key.sign(&key.header(), &payload("GET", "http://api.example:8000/orders/2", NOW, TOKEN)),
            DpopError::Request,
        ),
        (
            "another scheme",
            key.sign(&key.header(), &payload("GET", "https://api.example:8000/orders/1", NOW, TOKEN)),
            DpopError::Request,
        ),
        (
            "another port",
            key.sign(&key.header(), &payload("GET", "http://api.example/orders/1", NOW, TOKEN)),
            DpopError::Request,
        ),
        ("another token", key.sign(&key.header(), &payload("GET", HTU, NOW, b"other")), DpopError::AccessToken),
    ];
    for (what, proof, want) in cases {
        assert_eq!(verify_proof(&proof, &request(&jkt)), Err(want), "{what}");
    }
}

#[test]
fn the_edges_of_the_proof_lifetime_and_clock_skew_pass() {
    let key = Es256::new();
    let jkt = key.jkt();
    for iat in [NOW + IAT_TOLERANCE, NOW - 300] {
        let proof = key.sign(&key.header(), &payload("GET", HTU, iat, TOKEN));
        assert_eq!(verify_proof(&proof, &request(&jkt)), Ok(None), "iat {iat}");
    }
    let short = ProofRequest { lifetime: 10, ..request(&jkt) };
    let proof = key.sign(&key.header(), &payload("GET", HTU, NOW - 11, TOKEN));
    assert_eq!(verify_proof(&proof, &short), Err(DpopError::Expired));
}

#[test]
fn a_tampered_proof_or_another_key_is_refused() {
    let key = Es256::new();
    let jkt = key.jkt();
    let mut proof = key.sign(&key.header(), &payload("GET", HTU, NOW, TOKEN));
    // Flip one character of the payload: the signature no longer covers it.
    let dot = proof.iter().position(|&b| b == b'.').unwrap();
    proof[dot + 3] = if proof[dot + 3] == b'A' { b'B' } else { b'A' };
    assert_eq!(verify_proof(&proof, &request(&jkt)), Err(DpopError::Signature));

    // A proof by another key, valid in itself, for a token bound to the first key.
    let other = Es256::new();
    let proof = other.sign(&other.header(), &payload("GET", HTU, NOW, TOKEN));
    assert_eq!(verify_proof(&proof, &request(&jkt)), Err(DpopError::KeyMismatch));
    // The first key's header and claims with the other key's signature.
    let signed_by_key = key.sign(&key.header(), &payload("GET", HTU, NOW, TOKEN));
    let cut = |p: &[u8]| p.iter().rposition(|&b| b == b'.').unwrap();
    let forged = [&signed_by_key[..cut(&signed_by_key)], &proof[cut(&proof)..]].concat();
    assert_eq!(verify_proof(&forged, &request(&jkt)), Err(DpopError::Signature));
}

#[test]
fn targets_compare_after_normalisation() {
    let jkt = String::new();
    let req = |scheme: &'static str, host: &'static [u8], path: &'static [u8]| ProofRequest {
        scheme,
        host,
        path,
        ..request(&jkt)
    };
    // (htu, the request, whether they name the same target)
    let cases = [
        ("http://API.Example:8000/orders/1", req("http", b"api.example:8000", b"/orders/1"), true),
        ("HTTP://api.example:8000/orders/1?x=1#f", req("http", b"api.example:8000", b"/orders/1"), true),
        ("http://api.example/orders/1", req("http", b"api.example:80", b"/orders/1"), true),
        ("http://api.example:80/orders/1", req("http", b"api.example", b"/orders/1"), true),
        ("https://api.example/a", req("https", b"api.example:443", b"/a"), true),
        ("http://api.example:8000/a/./b/../c", req("http", b"api.example:8000", b"/a/c"), true),
        ("http://api.example:8000/%7Euser", req("http", b"api.example:8000", b"/~user"), true),
        ("http://api.example", req("http", b"api.example", b"/"), true),
        ("http://[::1]:8000/a", req("http", b"[::1]:8000", b"/a?q"), true),
        ("https://api.example:8000/orders/1", req("http", b"api.example:8000", b"/orders/1"), false),
        ("http://api.example:443/a", req("https", b"api.example", b"/a"), false),
        ("http://other.example:8000/orders/1", req("http", b"api.example:8000", b"/orders/1"), false),
        ("http://api.example:8000/orders/1/", req("http", b"api.example:8000", b"/orders/1"), false),
        ("http://user@api.example:8000/a", req("http", b"api.example:8000", b"/a"), false),
        ("api.example:8000/a", req("http", b"api.example:8000", b"/a"), false),
        ("http://[::1]:8001/a", req("http", b"[::1]:8000", b"/a"), false),
    ];
    for (htu, r, same) in cases {
        assert_eq!(same_target(htu, &r), same, "{htu}");
    }
}

#[test]
fn reasons_carry_no_material() {
    for e in [DpopError::Malformed, DpopError::Signature, DpopError::KeyMismatch, DpopError::Request, DpopError::Nonce]
    {
        assert_eq!(e.reason(), e.to_string());
        assert!(e.reason().starts_with("the DPoP proof"));
    }
}

#[test]
fn the_challenge_lists_every_asymmetric_algorithm_ringgate_verifies() {
    let mut names: Vec<&str> = Alg::ALL.iter().filter(|a| !a.is_hmac()).map(|a| a.name()).collect();
    names.sort_unstable();
    assert_eq!(PROOF_ALGS, names.join(" "));
}

#[test]
fn nonces_carry_their_issue_time_under_the_key_that_made_them() {
    let key = NonceKey::new(b"a configured salt");
    let nonce = key.issue(NOW);
    assert_eq!(nonce.len(), 54, "{nonce}");
    assert_eq!(key.issued_at(&nonce), Some(NOW));
    assert_eq!(NonceKey::new(b"a configured salt").issued_at(&nonce), Some(NOW), "same secret, same key");
    assert_eq!(NonceKey::new(b"another salt").issued_at(&nonce), None);
    // Another time under the same tag, a changed tag, or no nonce at all.
    let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
    raw[7] ^= 1;
    assert_eq!(key.issued_at(&b64(&raw)), None, "the time is signed");
    raw[7] ^= 1;
    raw[39] ^= 1;
    assert_eq!(key.issued_at(&b64(&raw)), None, "the tag is checked");
    for bad in ["", "x", &nonce[..53], &format!("{nonce}A"), &format!("!{}", &nonce[1..])] {
        assert_eq!(key.issued_at(bad), None, "{bad}");
    }
}

#[test]
fn with_server_nonces_a_proof_needs_a_current_one_which_dates_it() {
    let key = Es256::new();
    let jkt = key.jkt();
    let nonces = NonceKey::new(b"salt");
    let req = ProofRequest { nonces: Some(&nonces), ..request(&jkt) };
    let with_nonce = |iat: u64, nonce: &str| {
        let p = format!(
            r#"{{"jti":"j-1","htm":"GET","htu":"{HTU}","iat":{iat},"ath":"{}","nonce":"{nonce}"}}"#,
            ath(TOKEN)
        );
        key.sign(&key.header(), &p)
    };
    let fresh = nonces.issue(NOW - 10);
    assert_eq!(verify_proof(&with_nonce(NOW, &fresh), &req), Ok(Some(NOW - 10)), "dated by its nonce");
    let plain = key.sign(&key.header(), &payload("GET", HTU, NOW, TOKEN));
    assert_eq!(verify_proof(&plain, &request(&jkt)), Ok(None), "no nonces, no date");
    // The nonce dates the proof: an `iat` off by an hour either way is the caller's
    // clock, and does not matter.
    assert_eq!(verify_proof(&with_nonce(NOW - 3600, &fresh), &req), Ok(Some(NOW - 10)));
    assert_eq!(verify_proof(&with_nonce(NOW + 3600, &fresh), &req), Ok(Some(NOW - 10)));
    assert_eq!(
        verify_proof(&with_nonce(NOW, &nonces.issue(NOW - 300)), &req),
        Ok(Some(NOW - 300)),
        "the edge of the lifetime"
    );
    for (what, proof) in [
        ("no nonce", key.sign(&key.header(), &payload("GET", HTU, NOW, TOKEN))),
        ("an expired nonce", with_nonce(NOW, &nonces.issue(NOW - 301))),
        ("a nonce from the future", with_nonce(NOW, &nonces.issue(NOW + IAT_TOLERANCE + 1))),
        ("another server's nonce", with_nonce(NOW, &NonceKey::new(b"other").issue(NOW))),
        ("a made-up nonce", with_nonce(NOW, "not-a-nonce")),
    ] {
        assert_eq!(verify_proof(&proof, &req), Err(DpopError::Nonce), "{what}");
    }
    // The nonce is checked last: a proof wrong in another way says so first.
    let other = Es256::new();
    let by_other = other.sign(&other.header(), &payload("GET", HTU, NOW, TOKEN));
    assert_eq!(verify_proof(&by_other, &req), Err(DpopError::KeyMismatch));
}
