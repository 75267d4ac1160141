//! Seeded random robustness tests of `KeySet::from_jwks`: documents of real keys with
//! some entries damaged in the ways an IdP or a proxy in front of it can damage them.
//! Each damaged entry must be skipped with the reason `Jwk::from_value`'s rules give
//! (worked out here from the JSON, independently), and every other entry must still load
//! and verify.

use serde_json::{json, Map, Value};

use super::{b64, Signer};
use crate::jose::{verify, Alg, JwksError, KeySet, Policy, SkipReason, MAX_JSON_DEPTH, MAX_JWKS_KEYS};
use crate::testing::Rng;

/// Real keys: their JWK objects, their signers and the algorithm each is exercised with.
struct Fixture {
    signers: Vec<(Signer, Alg)>,
    /// One token per signer, `kid` filled in per document.
    base: Vec<Map<String, Value>>,
}

fn fixture() -> Fixture {
    let signers = vec![
        (Signer::rsa(), Alg::RS256),
        (Signer::p256(), Alg::ES256),
        (Signer::p384(), Alg::ES384),
        (Signer::ed25519(), Alg::EdDSA),
    ];
    let base = signers
        .iter()
        .map(|(s, _)| match serde_json::from_str(&format!("{{{}}}", s.jwk_members())).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        })
        .collect();
    Fixture { signers, base }
}

/// What one entry of `keys` should become.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Kept,
    Skipped(SkipReason),
}

/// The kinds of key an algorithm needs, as the JWK `kty` and `crv` that carry them.
fn kty_crv(alg: Alg) -> (&'static str, Option<&'static str>) {
    match alg {
        Alg::ES256 => ("EC", Some("P-256")),
        Alg::ES384 => ("EC", Some("P-384")),
        Alg::EdDSA => ("OKP", Some("Ed25519")),
        _ => ("RSA", None),
    }
}

/// The damage done to one entry, and the outcome the JWK rules give for it.
fn damage(rng: &mut Rng, entry: &mut Value, alg: Alg) -> Outcome {
    use Outcome::{Kept, Skipped};
    use SkipReason::*;
    let (kty, crv) = kty_crv(alg);
    let wrong_types = [json!(5), json!(["x"]), json!({"a": 1}), Value::Null, json!(true), json!(1.5)];
    let obj = entry.as_object_mut().unwrap();
    match rng.below(16) {
        0 => {
            let others = [json!(17), json!("RSA"), json!([]), Value::Null, json!(false)];
            *entry = others[rng.below(others.len())].clone();
            Skipped(NotAnObject)
        }
        1 => {
            // A member the rules read, given the wrong JSON type.
            let names: &[&'static str] = match kty {
                "RSA" => &["kid", "kty", "use", "alg", "n", "e"],
                "EC" => &["kid", "kty", "use", "alg", "crv", "x", "y"],
                _ => &["kid", "kty", "use", "alg", "crv", "x"],
            };
            let name = rng.pick(names);
            obj.insert(name.into(), wrong_types[rng.below(wrong_types.len())].clone());
            Skipped(WrongType(name))
        }
        2 => {
            let names: &[&'static str] = match kty {
                "RSA" => &["kty", "n", "e"],
                "EC" => &["kty", "crv", "x", "y"],
                _ => &["kty", "crv", "x"],
            };
            let name = rng.pick(names);
            obj.remove(name);
            Skipped(Missing(name))
        }
        3 => {
            // Optional members removed or set to what permits verification.
            obj.remove(rng.pick(&["kid", "use", "alg", "key_ops", "x5c"]));
            if rng.chance(2) {
                obj.insert("key_ops".into(), json!(["sign", "verify"]));
            }
            if rng.chance(2) {
                obj.insert("alg".into(), json!(alg.name()));
            }
            Kept
        }
        4 => {
            obj.insert("use".into(), json!(rng.pick(&["enc", "", "SIG", "sig "])));
            Skipped(UseNotSig)
        }
        5 => match rng.below(3) {
            0 => {
                obj.insert("key_ops".into(), json!(rng.pick(&[&[][..], &["sign"], &["encrypt", "verifyx"]])));
                Skipped(OpsNoVerify)
            }
            1 => {
                obj.insert(
                    "key_ops".into(),
                    [json!("verify"), json!(["verify", 1]), json!({"verify": true})][rng.below(3)].clone(),
                );
                Skipped(WrongType("key_ops"))
            }
            _ => {
                obj.insert("key_ops".into(), json!(["verify", "verify"]));
                Kept
            }
        },
        6 => {
            obj.insert("alg".into(), json!(rng.pick(&["none", "ES512", "RSA-OAEP", "HS256 ", "A128KW"])));
            Skipped(UnsupportedAlg)
        }
        7 => {
            // A supported alg of another key type. (HS* fits no key taken from a JWKS.)
            let other = loop {
                let a = rng.pick(&Alg::ALL);
                if kty_crv(a) != (kty, crv) || a.is_hmac() {
                    break a;
                }
            };
            obj.insert("alg".into(), json!(other.name()));
            Skipped(AlgKtyMismatch)
        }
        8 => {
            let name = if kty == "RSA" { "n" } else { "x" };
            let v = rng.pick(&["AQAB=", "+AQAB", "AQ AB", "A", "AQ\u{e9}", "%41"]);
            obj.insert(name.into(), json!(v));
            Skipped(BadBase64(name))
        }
        9 => match kty {
            "RSA" => {
                let (name, reason) = rng.pick(&[("n", RsaTooShort), ("e", RsaBadExponent)]);
                obj.insert(name.into(), json!(""));
                Skipped(reason)
            }
            _ => {
                obj.insert(rng.pick(&["x", "y"]).into(), json!(if rng.chance(2) { "" } else { "AAAA" }));
                // An OKP key has no `y`: a `y` member is ignored.
                if kty == "OKP" && obj["x"].as_str().is_none_or(|x| x.len() >= 43) {
                    return Kept;
                }
                Skipped(BadCoordinateLength)
            }
        },
        10 => match kty {
            "RSA" => {
                // Huge or tiny moduli, an even or huge exponent.
                let (name, value, reason) = match rng.below(4) {
                    0 => ("n", b64(&vec![0xC5; 1025 + rng.below(60_000)]), RsaTooLong),
                    1 => ("n", b64(&[0, 0, 0xC5]), RsaTooShort),
                    2 => ("e", b64(&[1, 0]), RsaBadExponent),
                    _ => ("e", b64(&[1, 0, 0, 0, 0, 1]), RsaBadExponent),
                };
                obj.insert(name.into(), json!(value));
                Skipped(reason)
            }
            _ => {
                let wrong = if kty == "EC" {
                    rng.pick(&["Ed25519", "P-521", "secp256k1", "p-256", "X25519"])
                } else {
                    rng.pick(&["P-256", "Ed448", "X25519", "ed25519"])
                };
                obj.insert("crv".into(), json!(wrong));
                Skipped(UnsupportedCurve)
            }
        },
        11 => {
            let other = rng.pick(&["oct", "rsa", "ec", "", "RSA-PSS"]);
            obj.insert("kty".into(), json!(other));
            Skipped(UnsupportedKty)
        }
        12 => {
            // Another supported kty without the members it needs.
            let (other, missing) = match kty {
                "RSA" => rng.pick(&[("EC", "crv"), ("OKP", "crv")]),
                _ => ("RSA", "n"),
            };
            obj.insert("kty".into(), json!(other));
            Skipped(Missing(missing))
        }
        13 => {
            // Unknown members of any shape, nested but within the limit.
            let depth = rng.below(MAX_JSON_DEPTH - 10);
            let mut deep = json!("leaf");
            for _ in 0..depth {
                deep = if rng.chance(2) { json!([deep]) } else { json!({ "k": deep }) };
            }
            obj.insert("x5c".into(), deep);
            obj.insert("ext".into(), json!("x".repeat(rng.below(20_000))));
            Kept
        }
        14 => {
            // An EC key padded with a zero byte: 33 or 49 bytes, not the field size.
            if kty == "EC" {
                let x = crate::jose::b64_decode(obj["x"].as_str().unwrap().as_bytes()).unwrap();
                obj.insert("x".into(), json!(b64(&[&[0], &x[..]].concat())));
                return Skipped(BadCoordinateLength);
            }
            Kept
        }
        _ => Kept,
    }
}

/// A document of `entries` JWKs, each a copy of a real key (so kids may repeat), some
/// damaged. Returns the document, the expected outcome and signer of each entry.
fn document(rng: &mut Rng, f: &Fixture) -> (String, Vec<(Outcome, usize, Option<String>)>) {
    let mut entries = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1 + rng.below(8) {
        let which = rng.below(f.signers.len());
        let mut obj = f.base[which].clone();
        let kid = if rng.chance(4) { format!("k{}", rng.below(3)) } else { format!("k-{i}") };
        obj.insert("kid".into(), json!(kid));
        obj.insert("use".into(), json!("sig"));
        let mut entry = Value::Object(obj);
        let outcome = if rng.chance(2) { damage(rng, &mut entry, f.signers[which].1) } else { Outcome::Kept };
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        entries.push(entry);
        expected.push((outcome, which, kid));
    }
    let doc = json!({ "keys": entries, "other": { "n": [1, 2.5, "x"] } });
    (doc.to_string(), expected)
}

#[test]
fn damaged_entries_are_skipped_for_their_reason_and_the_rest_load() {
    let f = fixture();
    let mut rng = Rng(0x9b05_688c_2b3e_6c1f);
    let mut verified = 0;
    let mut reasons = std::collections::HashSet::new();
    for round in 0..500 {
        let (doc, expected) = document(&mut rng, &f);
        let set = KeySet::from_jwks(doc.as_bytes()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let want_kept: Vec<_> = expected.iter().filter(|e| e.0 == Outcome::Kept).collect();
        let kept: Vec<_> = set.keys().iter().map(|k| (k.kid().map(str::to_owned), k.kty())).collect();
        let want: Vec<_> = want_kept.iter().map(|e| (e.2.clone(), kty_crv(f.signers[e.1].1).0)).collect();
        assert_eq!(kept, want, "round {round}: {doc:.300}");
        let skipped: Vec<_> = set.skipped().iter().map(|s| (s.index, s.reason)).collect();
        let want_skipped: Vec<_> = expected
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.0 {
                Outcome::Skipped(r) => Some((i, r)),
                Outcome::Kept => None,
            })
            .collect();
        assert_eq!(skipped, want_skipped, "round {round}: {doc:.300}");
        reasons.extend(want_skipped.iter().map(|s| std::mem::discriminant(&s.1)));
        // A kept key whose kid is not shared with an earlier kept key verifies its
        // signer's tokens (every other round: ECDSA P-384 is slow in a debug build).
        if round % 2 == 0 {
            for (i, e) in want_kept.iter().enumerate() {
                let Some(kid) = &e.2 else { continue };
                if want_kept[..i].iter().any(|o| o.2.as_deref() == Some(kid)) {
                    continue;
                }
                let (signer, alg) = &f.signers[e.1];
                let token = signer.token(*alg, &format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#), r#"{"sub":"s"}"#);
                verify(&token, &set, &Policy::new("i"), 0).unwrap_or_else(|err| panic!("round {round} {kid}: {err}"));
                verified += 1;
            }
        }
    }
    assert!(verified > 300, "{verified}");
    // Every skip reason but TooMany (its own test) came up.
    assert_eq!(reasons.len(), 14, "{reasons:?}");
}

#[test]
fn random_byte_damage_to_a_jwks_never_panics_and_accounts_for_every_entry() {
    let f = fixture();
    let mut rng = Rng(0x1f83_d9ab_fb41_bd6b);
    let noise = b"{}[]\",:0123456789.eE-+ \\nulltruefalseAQAB_";
    for _ in 0..1500 {
        let (doc, _) = document(&mut rng, &f);
        let mut bytes = doc.into_bytes();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = rng.pick(noise),
                1 => bytes.insert(at, rng.pick(noise)),
                2 => {
                    bytes.remove(at);
                }
                _ => bytes[at] ^= 1 << rng.below(8),
            }
        }
        let Ok(set) = KeySet::from_jwks(&bytes) else { continue };
        // Read again with serde_json: every entry of `keys` is kept or skipped, once, in
        // order. (Where the two readers disagree on the bytes, there is nothing to compare.)
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&bytes) else { continue };
        let Some(Value::Array(entries)) = doc.get("keys") else { continue };
        assert_eq!(set.len() + set.skipped().len(), entries.len());
        let skipped: Vec<usize> = set.skipped().iter().map(|s| s.index).collect();
        assert!(skipped.windows(2).all(|w| w[0] < w[1]) && skipped.iter().all(|&i| i < entries.len()));
        let kept_entries = (0..entries.len()).filter(|i| !skipped.contains(i)).map(|i| &entries[i]);
        for (key, entry) in set.keys().iter().zip(kept_entries) {
            assert_eq!(key.kid(), entry.get("kid").and_then(Value::as_str));
            assert_eq!(Some(key.kty()), entry.get("kty").and_then(Value::as_str));
        }
    }
}

#[test]
fn thousands_of_keys_load_the_first_ones_and_skip_the_rest() {
    let f = fixture();
    let mut rng = Rng(0x5be0_cd19_137e_2179);
    for _ in 0..3 {
        let count = MAX_JWKS_KEYS + rng.below(3000);
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let mut obj = f.base[1].clone();
            obj.insert("kid".into(), json!(format!("k{}", i % 7)));
            if i % 5 == 0 {
                obj.insert("use".into(), json!("enc"));
            }
            entries.push(Value::Object(obj));
        }
        let set = KeySet::from_jwks(json!({ "keys": entries }).to_string().as_bytes()).unwrap();
        let enc = (0..MAX_JWKS_KEYS).filter(|i| i % 5 == 0).count();
        assert_eq!(set.len(), MAX_JWKS_KEYS - enc);
        assert_eq!(set.skipped().len(), count - set.len());
        assert!(set.skipped().iter().all(|s| (s.index >= MAX_JWKS_KEYS) == (s.reason == SkipReason::TooMany)));
        // Duplicate kids: the first kept key of that kid is the one used.
        let (signer, alg) = &f.signers[1];
        let token = signer.token(*alg, r#"{"alg":"ES256","kid":"k3"}"#, "{}");
        verify(&token, &set, &Policy::new("i"), 0).expect("first k3");
    }
}

#[test]
fn nesting_past_the_limit_anywhere_refuses_the_document() {
    let f = fixture();
    let mut rng = Rng(0xcbbb_9d5d_c105_9ed8);
    for _ in 0..50 {
        let depth = MAX_JSON_DEPTH + rng.below(1000);
        let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let key = Value::Object(f.base[rng.below(4)].clone()).to_string();
        let doc = match rng.below(3) {
            0 => format!(r#"{{"keys":[{key}],"x":{deep}}}"#),
            1 => format!(r#"{{"keys":[{key},{deep}]}}"#),
            _ => format!(r#"{{"keys":[{},{key}]}}"#, key.replacen('{', &format!(r#"{{"x5c":{deep},"#), 1)),
        };
        assert_eq!(KeySet::from_jwks(doc.as_bytes()).unwrap_err(), JwksError::Json);
    }
}
