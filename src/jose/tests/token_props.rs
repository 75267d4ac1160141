//! Seeded random robustness tests of `verify` against mutated tokens. The seeds are fixed
//! (`crate::testing::Rng`), so every run checks the same cases and a failure replays.
//!
//! Base64url: the decoder is strict (no padding, no whitespace, URL-safe alphabet only,
//! unused trailing bits zero: RFC 7515 §2 with RFC 4648 §3.5's option to refuse
//! non-canonical encodings). Decoding is then one-to-one, so one decoded token has one
//! text: the worker's verified-token cache, keyed by the text, cannot be filled with
//! re-encodings of one token, and no text other than the one signed is accepted. The only
//! second text for the same claims is an ECDSA `(r, n - s)` signature, which is a valid
//! signature in its own right (see `ecdsa_high_s_twin_verifies`).

use super::{b64, jwks, Signer};
use crate::jose::{b64_decode, verify, Alg, HmacSecret, JwtError, KeySet, Policy, MAX_JSON_DEPTH, MAX_TOKEN_LEN};
use crate::testing::Rng;

const ISS: &str = "https://idp.example/realms/main";
const NOW: u64 = 1_767_225_600;
const HS_SECRET: &[u8] = b"a-configured-client-secret-of-32b";
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One signed token for every supported algorithm, the keys that verify them and a policy
/// that allows all (HS with its secret).
struct Fixture {
    keys: KeySet,
    policy: Policy,
    tokens: Vec<(Alg, String)>,
}

fn claims() -> String {
    format!(r#"{{"iss":"{ISS}","sub":"client-1","exp":{},"iat":{},"scope":"openid"}}"#, NOW + 300, NOW - 10)
}

/// The `kid` of the fixture key an algorithm uses (`hs` names no JWKS key).
fn kid_for(alg: Alg) -> &'static str {
    match alg {
        Alg::ES256 => "p256",
        Alg::ES384 => "p384",
        Alg::EdDSA => "ed",
        a if a.is_hmac() => "hs",
        _ => "rsa",
    }
}

fn fixture() -> Fixture {
    let signers = [
        ("rsa", Signer::rsa()),
        ("p256", Signer::p256()),
        ("p384", Signer::p384()),
        ("ed", Signer::ed25519()),
        ("hs", Signer::Hmac(HS_SECRET.to_vec())),
    ];
    let doc = jwks(&signers[..4].iter().map(|(kid, s)| s.jwk(kid, None)).collect::<Vec<_>>());
    let keys = KeySet::from_jwks(doc.as_bytes()).unwrap();
    let policy = Policy::new(ISS).enable_hs(HmacSecret::new(HS_SECRET.to_vec()));
    let tokens = Alg::ALL
        .iter()
        .map(|&alg| {
            let signer = &signers.iter().find(|(kid, _)| *kid == kid_for(alg)).unwrap().1;
            let header = format!(r#"{{"alg":"{alg}","kid":"{}","typ":"JWT"}}"#, kid_for(alg));
            (alg, signer.token(alg, &header, &claims()))
        })
        .collect();
    let f = Fixture { keys, policy, tokens };
    for (alg, token) in &f.tokens {
        verify(token, &f.keys, &f.policy, NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
    f
}

impl Fixture {
    fn check(&self, token: &str) -> Result<(), JwtError> {
        verify(token, &self.keys, &self.policy, NOW).map(|_| ())
    }
}

/// Errors of steps 1–4 (framing, header, key, signature). A token whose text differs from
/// the signed one must stop there: its claims are never read.
fn before_claims(e: JwtError) -> bool {
    use JwtError::*;
    matches!(
        e,
        TooLarge
            | Malformed
            | Base64
            | Header
            | AlgMissing
            | AlgNone
            | AlgUnsupported
            | AlgNotAllowed
            | HsDisabled
            | Crit
            | Typ
            | UnknownKid
            | NoKeyForAlg
            | KeyAlgMismatch
            | Signature
    )
}

/// Whether `part` is the one canonical unpadded base64url text of some bytes, judged
/// without the decoder under test: alphabet, length, and zero unused bits in the last
/// character.
fn canonical_b64url(part: &[u8]) -> bool {
    let Some(&last) = part.last() else { return true };
    if !part.iter().all(|b| ALPHABET.contains(b)) {
        return false;
    }
    let last = ALPHABET.iter().position(|&c| c == last).unwrap();
    match part.len() % 4 {
        1 => false,
        2 => last & 0b1111 == 0,
        3 => last & 0b11 == 0,
        _ => true,
    }
}

/// Bytes that are never base64url, for single-byte damage.
const NOT_B64: &[u8] = b"+/= \t\r\n\x00\x7f\"\\%";

/// Characters that are never base64url, written into the token text.
const NOT_B64_CHARS: &[&str] = &["+", "/", "=", " ", "\t", "\r\n", "\0", "\u{e9}", "\u{ff0b}", "\u{1f600}", "%3D"];

/// One random change to `t`, anywhere.
fn mutate(rng: &mut Rng, t: &mut Vec<u8>) {
    let at = rng.below(t.len() + 1);
    let in_range = at.min(t.len().saturating_sub(1));
    match rng.below(10) {
        0 if !t.is_empty() => t[in_range] ^= 1 << rng.below(8),
        1 if !t.is_empty() => t[in_range] = rng.pick(ALPHABET),
        2 if !t.is_empty() => t[in_range] = rng.pick(NOT_B64),
        3 => t.insert(at, if rng.chance(2) { rng.pick(ALPHABET) } else { rng.pick(NOT_B64) }),
        4 if !t.is_empty() => {
            t.remove(in_range);
        }
        5 => t.splice(at..at, rng.pick(NOT_B64_CHARS).bytes()).for_each(drop),
        6 => t.truncate(at),
        7 => t.insert(at, b'.'),
        8 => {
            if let Some(dot) = t.iter().position(|&b| b == b'.') {
                t.remove(dot);
            }
        }
        _ => {
            // Swap, repeat or drop whole parts.
            let mut parts: Vec<Vec<u8>> = t.split(|&b| b == b'.').map(<[u8]>::to_vec).collect();
            let (i, j) = (rng.below(parts.len()), rng.below(parts.len()));
            match rng.below(3) {
                0 => parts.swap(i, j),
                1 => parts.insert(i, parts[j].clone()),
                _ => {
                    parts.remove(i);
                }
            }
            *t = parts.join(&b'.');
        }
    }
}

#[test]
fn randomly_damaged_tokens_are_refused_before_their_claims_are_read() {
    let f = fixture();
    let mut rng = Rng(0x6a09_e667_f3bc_c908);
    let mut signature_checks = 0;
    for _ in 0..4000 {
        let (alg, token) = &f.tokens[rng.below(f.tokens.len())];
        let mut bytes = token.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        let got = f.check(&text);
        if *text == **token {
            assert_eq!(got, Ok(()), "{alg}: unchanged text");
            continue;
        }
        match got {
            Ok(()) => panic!("{alg}: damaged token accepted: {text:?}"),
            Err(e) => assert!(before_claims(e), "{alg}: {e:?} for {text:?}"),
        }
        signature_checks += usize::from(got == Err(JwtError::Signature));
    }
    // The damage must reach the signature step often enough to test it.
    assert!(signature_checks > 300, "{signature_checks}");
}

#[test]
fn one_bad_character_in_any_part_is_a_base64_error() {
    let f = fixture();
    let mut rng = Rng(0xbb67_ae85_84ca_a73b);
    for _ in 0..3000 {
        let (alg, token) = &f.tokens[rng.below(f.tokens.len())];
        let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
        let mut at = rng.below(token.len());
        while dots.contains(&at) {
            at = rng.below(token.len());
        }
        let bad = rng.pick(NOT_B64_CHARS);
        let replaced = format!("{}{bad}{}", &token[..at], &token[at + 1..]);
        let inserted = format!("{}{bad}{}", &token[..at], &token[at..]);
        for t in [replaced, inserted] {
            assert_eq!(f.check(&t), Err(JwtError::Base64), "{alg}: {bad:?} at {at}");
        }
    }
}

#[test]
fn padding_and_noncanonical_trailing_bits_are_refused_in_every_part() {
    let f = fixture();
    for (alg, token) in &f.tokens {
        let parts: Vec<&str> = token.split('.').collect();
        for i in 0..3 {
            let with = |part: &str| {
                let mut p = parts.clone();
                p[i] = part;
                p.join(".")
            };
            for pad in ["=", "==", "==="] {
                assert_eq!(f.check(&with(&format!("{}{pad}", parts[i]))), Err(JwtError::Base64), "{alg} part {i}");
            }
            // Every other character with the same significant bits in the last position.
            let part = parts[i].as_bytes();
            let unused = match part.len() % 4 {
                2 => 0b1111,
                3 => 0b11,
                _ => 0,
            };
            let last = ALPHABET.iter().position(|&c| c == part[part.len() - 1]).unwrap();
            assert_eq!(last & unused, 0, "the signer's encoding is canonical");
            for extra in 1..=unused {
                let mut changed = part.to_vec();
                *changed.last_mut().unwrap() = ALPHABET[last | extra];
                let changed = String::from_utf8(changed).unwrap();
                // Same bytes under a lenient decoder, so only strictness refuses it.
                assert_eq!(f.check(&with(&changed)), Err(JwtError::Base64), "{alg} part {i}: {changed}");
            }
        }
    }
}

#[test]
fn every_truncation_is_refused_by_the_step_it_breaks() {
    let f = fixture();
    for (alg, token) in &f.tokens {
        let d2 = token.rfind('.').unwrap();
        for cut in 0..token.len() {
            let t = &token[..cut];
            let want = if cut <= d2 + 1 {
                JwtError::Malformed
            } else if canonical_b64url(&t.as_bytes()[d2 + 1..]) {
                JwtError::Signature
            } else {
                JwtError::Base64
            };
            assert_eq!(f.check(t), Err(want), "{alg} cut at {cut}");
        }
    }
}

/// A header member: name, raw JSON value, and how deep the value nests (as generated).
type Member = (String, String, usize);

/// The header members in order; repeats allowed.
type Members = Vec<Member>;

fn header_text(members: &Members) -> String {
    let inner: Vec<String> = members.iter().map(|(k, v, _)| format!(r#""{k}":{v}"#)).collect();
    format!("{{{}}}", inner.join(","))
}

/// What `verify` must answer for a re-encoded header over the original payload and
/// signature, worked out from the rules in the module docs (read with serde_json, not
/// the parser under test).
fn expected_for_header(members: &Members, original: &Members) -> Result<(), JwtError> {
    if header_text(members) == header_text(original) {
        return Ok(());
    }
    if members.iter().any(|m| 1 + m.2 > MAX_JSON_DEPTH) {
        return Err(JwtError::Header);
    }
    let text = header_text(members);
    if crate::testing::has_out_of_range_integer(&text) {
        return Err(JwtError::Header);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { return Err(JwtError::Header) };
    let known = ["alg", "kid", "typ", "crit"];
    if known.iter().any(|k| members.iter().filter(|m| m.0 == *k).count() > 1) {
        return Err(JwtError::Header);
    }
    let string_or_null = |name: &str| match value.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Header),
    };
    let (alg, kid, typ) = (string_or_null("alg")?, string_or_null("kid")?, string_or_null("typ")?);
    let alg = alg.ok_or(JwtError::AlgMissing)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgNone);
    }
    let alg = Alg::ALL.into_iter().find(|a| a.name() == alg).ok_or(JwtError::AlgUnsupported)?;
    if value.get("crit").is_some() {
        return Err(JwtError::Crit);
    }
    if let Some(typ) = typ {
        let t = typ.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        if t != "jwt" && t != "at+jwt" {
            return Err(JwtError::Typ);
        }
    }
    if !alg.is_hmac() {
        if let Some(kid) = kid {
            let Some(&key_of) = ["rsa", "p256", "p384", "ed"].iter().find(|k| **k == kid) else {
                return Err(JwtError::UnknownKid);
            };
            if key_of != kid_for(alg) {
                return Err(JwtError::KeyAlgMismatch);
            }
        }
    }
    // The signing input changed.
    Err(JwtError::Signature)
}

fn random_alg(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 | 1 => format!(r#""{}""#, rng.pick(&Alg::ALL)),
        2 => {
            rng.pick(&[r#""none""#, r#""NoNe""#, r#""ES512""#, r#""HS1""#, r#""""#, r#""rs256""#, r#""RS256 ""#]).into()
        }
        _ => rng.pick(&["256", "null", r#"["RS256"]"#, r#"{"RS256":1}"#, "true", r#""R\u0053256""#]).into(),
    }
}

fn random_member(rng: &mut Rng) -> Member {
    let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
    match rng.below(6) {
        0 => ("alg".into(), random_alg(rng), 1),
        1 => {
            let kid = rng.pick(&[
                r#""rsa""#,
                r#""p256""#,
                r#""p384""#,
                r#""ed""#,
                r#""hs""#,
                r#""gone""#,
                r#""""#,
                r#""\u0072sa""#,
                "null",
                "7",
                "[]",
            ]);
            ("kid".into(), kid.into(), 1)
        }
        2 => {
            let typ = rng.pick(&[
                r#""JWT""#,
                r#""at+JWT""#,
                r#""application/jwt""#,
                r#""JOSE""#,
                r#""""#,
                r#""application/""#,
                r#""\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9""#,
                "null",
                "1",
            ]);
            ("typ".into(), typ.into(), 0)
        }
        3 => ("crit".into(), rng.pick(&[r#"["exp"]"#, "[]", "null", r#""b64""#]).into(), 1),
        _ => {
            // serde_json, the reference reader, stops at 128 levels: the boundary itself is
            // tested in `verify.rs`.
            let (value, depth) = match rng.below(6) {
                0 => (rng.pick(crate::testing::EDGE_NUMBERS).to_string(), 0),
                1 => (format!(r#""{}""#, "x".repeat(rng.below(MAX_TOKEN_LEN))), 0),
                2 => {
                    let d = 1 + rng.below(MAX_JSON_DEPTH - 10);
                    (nested(d), d)
                }
                3 => {
                    let d = MAX_JSON_DEPTH + rng.below(40);
                    (nested(d), d)
                }
                _ => (crate::testing::json_text(rng, 3), 4),
            };
            (rng.pick(&["x", "jku", "jwk", "x5c", "b64", "cty"]).into(), value, depth)
        }
    }
}

#[test]
fn reencoded_headers_are_refused_with_the_error_their_rules_give() {
    let f = fixture();
    let mut rng = Rng(0x3c6e_f372_fe94_f82b);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2500 {
        let (alg, token) = &f.tokens[rng.below(f.tokens.len())];
        let original: Members = vec![
            ("alg".into(), format!(r#""{alg}""#), 0),
            ("kid".into(), format!(r#""{}""#, kid_for(*alg)), 0),
            ("typ".into(), r#""JWT""#.into(), 0),
        ];
        assert_eq!(
            header_text(&original),
            String::from_utf8(b64_decode(token.split('.').next().unwrap().as_bytes()).unwrap()).unwrap()
        );
        let mut members = original.clone();
        for _ in 0..1 + rng.below(2) {
            let m = random_member(&mut rng);
            match rng.below(3) {
                // Replace the first member of that name, or add it.
                0 => match members.iter_mut().find(|x| x.0 == m.0) {
                    Some(slot) => *slot = m,
                    None => members.push(m),
                },
                1 => members.insert(rng.below(members.len() + 1), m),
                _ if !members.is_empty() => {
                    members.remove(rng.below(members.len()));
                }
                _ => {}
            }
        }
        let rest = &token[token.find('.').unwrap()..];
        let text = format!("{}{rest}", b64(header_text(&members).as_bytes()));
        let want =
            if text.len() > MAX_TOKEN_LEN { Err(JwtError::TooLarge) } else { expected_for_header(&members, &original) };
        assert_eq!(f.check(&text), want, "{alg}: {}", header_text(&members).chars().take(200).collect::<String>());
        seen.insert(format!("{want:?}"));
    }
    // Every outcome was reached.
    assert_eq!(seen.len(), 11, "{seen:?}");
}

#[test]
fn reencoded_payloads_under_the_old_signature_are_refused() {
    let f = fixture();
    let mut rng = Rng(0xa54f_f53a_5f1d_36f1);
    for i in 0..600 {
        let (alg, token) = &f.tokens[i % f.tokens.len()];
        let parts: Vec<&str> = token.split('.').collect();
        let claims = match rng.below(4) {
            0 => claims().replace("client-1", "client-2"),
            1 => format!(r#"{{"iss":"{ISS}","x":{}}}"#, crate::testing::json_text(&mut rng, 4)),
            2 => format!(r#"{{"x":{}{}}}"#, "[".repeat(MAX_JSON_DEPTH + 1), "]".repeat(MAX_JSON_DEPTH + 1)),
            _ => format!(r#"{{"iss":"{ISS}","x":"{}"}}"#, "y".repeat(rng.below(MAX_TOKEN_LEN))),
        };
        let text = format!("{}.{}.{}", parts[0], b64(claims.as_bytes()), parts[2]);
        let want = if text.len() > MAX_TOKEN_LEN { JwtError::TooLarge } else { JwtError::Signature };
        assert_eq!(f.check(&text), Err(want), "{alg}");
    }
}

/// `n - s` for big-endian numbers of equal width with `s < n`.
fn sub_be(n: &[u8], s: &[u8]) -> Vec<u8> {
    let mut out = vec![0; n.len()];
    let mut borrow = 0i16;
    for i in (0..n.len()).rev() {
        let d = i16::from(n[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = d.rem_euclid(256) as u8;
    }
    assert_eq!(borrow, 0);
    out
}

#[test]
fn ecdsa_high_s_twin_verifies() {
    // ECDSA's (r, n - s) is a second valid signature of the same input; ring accepts it
    // and JWS (RFC 7518 §3.4) does not forbid it. It is not a forgery: the header and
    // claims are the ones the key signed. The worker's cache holds it as a second entry
    // after one more verification. This test records that behaviour.
    const P256_N: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
    const P384_N: &str =
        concat!("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF", "581A0DB248B0A77AECEC196ACCC52973");
    let f = fixture();
    for (alg, order) in [(Alg::ES256, P256_N), (Alg::ES384, P384_N)] {
        let n: Vec<u8> =
            (0..order.len()).step_by(2).map(|i| u8::from_str_radix(&order[i..i + 2], 16).unwrap()).collect();
        let token = &f.tokens.iter().find(|(a, _)| *a == alg).unwrap().1;
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64_decode(sig.as_bytes()).unwrap();
        let (r, s) = sig.split_at(n.len());
        let twin = format!("{input}.{}", b64(&[r, &sub_be(&n, s)].concat()));
        assert_ne!(&twin, token);
        assert_eq!(f.check(&twin), Ok(()), "{alg}");
        // Neither s nor n - s with a bit flipped verifies.
        let mut off = sub_be(&n, s);
        off[5] ^= 1;
        assert_eq!(f.check(&format!("{input}.{}", b64(&[r, &off].concat()))), Err(JwtError::Signature));
    }
}

#[test]
fn claims_are_never_read_from_an_unsigned_or_foreign_token() {
    // Tokens signed by a key outside the set, labelled with every kid and alg: the claims
    // step is never reached whatever they say.
    let f = fixture();
    let mut rng = Rng(0x510e_527f_ade6_82d1);
    let strangers = [Signer::p256(), Signer::p384(), Signer::ed25519(), Signer::Hmac(b"guess".to_vec())];
    for _ in 0..300 {
        let stranger = &strangers[rng.below(strangers.len())];
        let alg = match stranger {
            Signer::Ec(_, "P-256") => Alg::ES256,
            Signer::Ec(..) => Alg::ES384,
            Signer::Ed(_) => Alg::EdDSA,
            _ => rng.pick(&[Alg::HS256, Alg::HS384, Alg::HS512]),
        };
        let kid = rng.pick(&["rsa", "p256", "p384", "ed", "hs"]);
        let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
        let claims = format!(
            r#"{{"iss":{},"exp":{}}}"#,
            rng.pick(crate::testing::EDGE_STRINGS),
            rng.pick(crate::testing::EDGE_NUMBERS)
        );
        let token = stranger.token(alg, &header, &claims);
        let got = f.check(&token).expect_err("a stranger's token");
        assert!(
            matches!(got, JwtError::Signature | JwtError::KeyAlgMismatch | JwtError::UnknownKid),
            "{alg} {kid}: {got:?}"
        );
    }
}
