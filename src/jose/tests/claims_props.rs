//! Seeded random tests of the claim checks: random payloads (numbers of every shape,
//! strings with control characters, nesting, repeated members) signed with HS256 (cheap
//! to verify), checked at random clocks and leeways including the extremes. The expected
//! answer comes from the rules in `claims.rs`'s docs applied to a serde_json reading of
//! the payload, with exact (i128) arithmetic.

use serde_json::Value;
use simd_json::prelude::*;

use super::Signer;
use crate::jose::{requirement_met, verify, Alg, ClaimValue, Claims, HmacSecret, JwtError, KeySet, Policy};
use crate::testing::{has_out_of_range_integer, json_text, Rng, EDGE_NUMBERS, EDGE_STRINGS};

const ISS: &str = "https://idp.example/realms/main";
const SECRET: &[u8] = b"claims-props-secret-of-some-size";

fn pick_now(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => rng.pick(&[0, 1, i64::MAX as u64 - 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX]),
        1 => rng.next(),
        _ => 1_767_225_600 + rng.below(1000) as u64 - 500,
    }
}

fn pick_leeway(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.pick(&[i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX, 1 << 62]),
        1 => rng.below(100) as u64,
        _ => 0,
    }
}

/// A NumericDate-ish value: mostly numbers near the clock, sometimes anything.
fn date_text(rng: &mut Rng) -> String {
    match rng.below(8) {
        0..=2 => (1_767_225_600 + rng.below(1000) as i64 - 500).to_string(),
        3 => format!("{}.{}", 1_767_225_600 + rng.below(1000) as i64 - 500, rng.below(1000)),
        4 => rng.pick(EDGE_NUMBERS).to_string(),
        5 => rng.pick(&["\"1767225600\"", "null", "true", "[1]", "{}", "1767225600e0", "-1767225600"]).into(),
        _ => json_text(rng, 2),
    }
}

/// A random claims payload: registered claims of right and wrong types, and random ones.
fn payload(rng: &mut Rng) -> String {
    if rng.chance(25) {
        return json_text(rng, 3);
    }
    let mut members = Vec::new();
    for _ in 0..rng.below(9) {
        let (name, value) = match rng.below(11) {
            0 => ("exp", date_text(rng)),
            6 => ("auth_time", date_text(rng)),
            1 => ("nbf", date_text(rng)),
            2 => ("iat", date_text(rng)),
            3 => {
                let iss = [format!("\"{ISS}\""), format!("\"{ISS}/\""), format!("\"{ISS}//\""), "\"other\"".into()];
                ("iss", if rng.chance(5) { json_text(rng, 1) } else { iss[rng.below(4)].clone() })
            }
            4 => (
                rng.pick(&["sub", "jti"]),
                if rng.chance(3) { json_text(rng, 1) } else { rng.pick(EDGE_STRINGS).into() },
            ),
            5 => {
                let aud = ["\"api\"", "[\"api\",\"x\"]", "[]", "[\"a\",5]", "5", "null"];
                ("aud", if rng.chance(3) { json_text(rng, 2) } else { rng.pick(&aud).into() })
            }
            _ => (rng.pick(&["scope", "scp", "groups", "roles", "x", "realm_access"]), json_text(rng, 3)),
        };
        members.push(format!(r#""{name}":{value}"#));
    }
    format!("{{{}}}", members.join(","))
}

/// The registered-claim rules on a serde_json reading: the answer `verify` must give.
fn expected(
    text: &str,
    now: u64,
    leeway: u64,
    require_exp: bool,
    max_age: Option<u64>,
) -> Result<Option<i64>, JwtError> {
    if has_out_of_range_integer(text) {
        return Err(JwtError::Claims);
    }
    let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(text) else { return Err(JwtError::Claims) };
    // A number rounded up to a whole second, saturated to i64.
    let date = |name: &'static str| -> Result<Option<i128>, JwtError> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let v = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i128::from(i),
                    (None, Some(u), _) => i128::from(u),
                    (None, None, Some(f)) => {
                        let c = f.ceil();
                        if c >= 9.3e18 {
                            i128::MAX
                        } else if c <= -9.3e18 {
                            i128::MIN
                        } else {
                            c as i128
                        }
                    }
                    _ => unreachable!(),
                };
                Ok(Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX))))
            }
            Some(_) => Err(JwtError::ClaimType(name)),
        }
    };
    let (exp, nbf, iat) = (date("exp")?, date("nbf")?, date("iat")?);
    let auth_time = if max_age.is_some() { date("auth_time")? } else { None };
    for name in ["sub", "jti"] {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return Err(JwtError::ClaimType(name));
        }
    }
    match claims.get("aud") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(_) => return Err(JwtError::ClaimType("aud")),
    }
    match claims.get("iss") {
        None => {}
        Some(Value::String(s)) if s == ISS || *s == format!("{ISS}/") => {}
        Some(Value::String(_)) => return Err(JwtError::Issuer),
        Some(_) => return Err(JwtError::ClaimType("iss")),
    }
    // A clock or leeway past i64::MAX counts as i64::MAX; sums saturate there too, so
    // the clock at i64::MAX is past every exp.
    let now = i128::from(now).min(i128::from(i64::MAX));
    let leeway = i128::from(leeway).min(i128::from(i64::MAX));
    let sat = |x: i128| x.min(i128::from(i64::MAX));
    match exp {
        Some(exp) if now >= sat(exp + leeway) => return Err(JwtError::Expired),
        None if require_exp => return Err(JwtError::ExpMissing),
        _ => {}
    }
    if nbf.is_some_and(|nbf| sat(now + leeway) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    if iat.is_some_and(|iat| sat(now + leeway) < iat) {
        return Err(JwtError::IssuedInFuture);
    }
    let Some(max_age) = max_age else { return Ok(exp.map(|e| e as i64)) };
    // `max_age`: `auth_time` required, not in the future, no older than max_age + leeway
    // (differences saturate at the i64 bounds, as the arithmetic they model does).
    let clamp = |x: i128| x.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    let max_age = i128::from(max_age).min(i128::from(i64::MAX));
    let auth_time = auth_time.ok_or(JwtError::AuthTimeMissing)?;
    if sat(now + leeway) < auth_time {
        return Err(JwtError::AuthTimeInFuture);
    }
    if clamp(clamp(now - auth_time) - leeway) > max_age {
        return Err(JwtError::AuthTooOld);
    }
    let too_old_at = clamp(clamp(auth_time + max_age) + 1);
    Ok(Some(exp.map_or(too_old_at, |exp| exp.min(too_old_at)) as i64))
}

#[test]
fn random_claims_get_the_answer_the_rules_give_at_any_clock() {
    let signer = Signer::Hmac(SECRET.to_vec());
    let keys = KeySet::default();
    let mut rng = Rng(0x243f_6a88_85a3_08d3);
    let mut outcomes = std::collections::HashSet::new();
    for _ in 0..2500 {
        let text = payload(&mut rng);
        let token = signer.token(Alg::HS256, r#"{"alg":"HS256"}"#, &text);
        for _ in 0..4 {
            let (now, leeway, require_exp) = (pick_now(&mut rng), pick_leeway(&mut rng), rng.chance(3));
            let max_age = rng.chance(2).then(|| pick_leeway(&mut rng).saturating_add(rng.below(600) as u64));
            let policy = Policy::new(ISS)
                .enable_hs(HmacSecret::new(SECRET.to_vec()))
                .leeway(leeway)
                .require_exp(require_exp)
                .max_age(max_age);
            let got = verify(&token, &keys, &policy, now);
            let want = expected(&text, now, leeway, require_exp, max_age);
            assert_eq!(
                got.as_ref().map(|v| v.exp()).map_err(|e| *e),
                want.map(|e| e.map(|e| e.max(0) as u64)),
                "{text} now {now} leeway {leeway} require_exp {require_exp} max_age {max_age:?}"
            );
            outcomes.insert(format!("{:?}", want.map(|_| ())));
            if let Ok(v) = got {
                // The readers the requirement checks and headers use do not panic.
                let _ = (v.scopes(), v.audience_contains("api"), v.iss(), v.active());
                let _ = v.claim_path(&["realm_access", "roles"]);
            }
        }
    }
    // Every outcome came up: acceptance, eight type errors and nine other refusals.
    assert_eq!(outcomes.len(), 18, "{outcomes:?}");
}

#[test]
fn more_leeway_or_an_earlier_clock_never_turns_expiry_into_acceptance_wrongly() {
    // Metamorphic checks, free of any model: leeway only relaxes the time rules; a token
    // expired at some time stays expired later; not yet valid stays so earlier.
    let signer = Signer::Hmac(SECRET.to_vec());
    let keys = KeySet::default();
    let mut rng = Rng(0x1319_8a2e_0370_7344);
    let time_error = |e: &JwtError| {
        matches!(
            e,
            JwtError::Expired
                | JwtError::NotYetValid
                | JwtError::IssuedInFuture
                | JwtError::AuthTimeInFuture
                | JwtError::AuthTooOld
        )
    };
    for _ in 0..1500 {
        let claims = format!(
            r#"{{"exp":{},"nbf":{},"iat":{},"auth_time":{}}}"#,
            date_text(&mut rng),
            date_text(&mut rng),
            date_text(&mut rng),
            date_text(&mut rng)
        );
        let token = signer.token(Alg::HS256, r#"{"alg":"HS256"}"#, &claims);
        let max_age = rng.chance(2).then(|| rng.below(600) as u64);
        let at = |token: &str, now: u64, leeway: u64| {
            let policy = Policy::new(ISS).enable_hs(HmacSecret::new(SECRET.to_vec())).leeway(leeway).max_age(max_age);
            verify(token, &keys, &policy, now).map(|_| ())
        };
        let (now, leeway) = (pick_now(&mut rng), pick_leeway(&mut rng));
        let got = at(&token, now, leeway);
        let more = leeway.saturating_add(1 + rng.below(1000) as u64);
        if got.is_ok() {
            assert_eq!(at(&token, now, more), Ok(()), "{claims} now {now} leeway {leeway}→{more}");
        }
        if let Err(e) = got {
            if !time_error(&e) {
                // A type error does not depend on time.
                assert_eq!(at(&token, now ^ rng.next(), more), Err(e), "{claims}");
                continue;
            }
        }
        let later = now.saturating_add(rng.next() >> rng.below(64));
        let earlier = now.saturating_sub(rng.next() >> rng.below(64));
        if got == Err(JwtError::Expired) {
            assert_eq!(at(&token, later, leeway), Err(JwtError::Expired), "{claims} now {now}→{later}");
        }
        if got == Err(JwtError::NotYetValid) {
            assert_eq!(at(&token, earlier, leeway), Err(JwtError::NotYetValid), "{claims} now {now}→{earlier}");
        }
        // An authentication too old stays too old later (unless the token has expired
        // meanwhile, which is checked first); one in the future stays so earlier.
        if got == Err(JwtError::AuthTooOld) {
            let later_error = at(&token, later, leeway);
            assert!(
                matches!(later_error, Err(JwtError::AuthTooOld | JwtError::Expired)),
                "{claims} now {now}→{later}: {later_error:?}"
            );
        }
        if got == Err(JwtError::AuthTimeInFuture) {
            let earlier_error = at(&token, earlier, leeway);
            assert!(
                matches!(
                    earlier_error,
                    Err(JwtError::AuthTimeInFuture | JwtError::NotYetValid | JwtError::IssuedInFuture)
                ),
                "{claims} now {now}→{earlier}: {earlier_error:?}"
            );
        }
    }
}

#[test]
fn introspection_answers_of_any_shape_bound_the_cache_by_exp() {
    let mut rng = Rng(0xa409_3822_299f_31d0);
    for _ in 0..3000 {
        let text = if rng.chance(2) {
            format!(
                r#"{{"active":{},"exp":{},"x":{}}}"#,
                json_text(&mut rng, 1),
                date_text(&mut rng),
                json_text(&mut rng, 3)
            )
        } else {
            json_text(&mut rng, 3)
        };
        let mut bytes = text.clone().into_bytes();
        let Ok(value) = simd_json::to_owned_value(&mut bytes) else { continue };
        let reference: Value = serde_json::from_str(&text).expect("serde_json reads what simd-json reads");
        let Some(claims) = Claims::from_introspection(value) else {
            assert!(!reference.is_object(), "{text}");
            continue;
        };
        assert!(reference.is_object(), "{text}");
        // `exp` bounds the cache when it is a number: rounded up, never negative.
        let want = match reference.get("exp") {
            Some(Value::Number(n)) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.max(0) as u64,
                (None, Some(_), _) => i64::MAX as u64,
                (None, None, Some(f)) => {
                    let c = f.ceil();
                    if c >= 1e19 {
                        i64::MAX as u64
                    } else {
                        (c as i128).clamp(0, i128::from(i64::MAX)) as u64
                    }
                }
                _ => unreachable!(),
            }),
            _ => None,
        };
        assert_eq!(claims.exp(), want, "{text}");
        assert_eq!(claims.active(), reference.get("active") == Some(&Value::Bool(true)), "{text}");
        let _ = (claims.scopes(), claims.audience_contains("api"), claims.iss(), claims.claim_path(&["x", "a"]));
    }
}

/// The values a requirement word is compared with: a string's words, an array's members
/// (strings as they are, numbers and booleans as JSON text), a scalar's text.
fn values_of(claim: &Value) -> Vec<String> {
    let scalar = |v: &Value| match v {
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    match claim {
        Value::String(s) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => {
            items.iter().filter_map(|i| i.as_str().map(str::to_owned).or_else(|| scalar(i))).collect()
        }
        other => scalar(other).into_iter().collect(),
    }
}

#[test]
fn requirements_are_any_element_with_all_its_words_among_the_claim_values() {
    let words = ["openid", "email", "api", "admin", "1", "true", "5", "x\u{e9}", "a\r\nb", "", "-0"];
    let mut rng = Rng(0x082e_fa98_ec4e_6c89);
    for _ in 0..3000 {
        let claim_text = match rng.below(4) {
            0 => format!("\"{}\"", (0..rng.below(4)).map(|_| rng.pick(&words)).collect::<Vec<_>>().join(" ")),
            1 => serde_json::to_string(&(0..rng.below(4)).map(|_| rng.pick(&words)).collect::<Vec<_>>()).unwrap(),
            _ => json_text(&mut rng, 2),
        };
        let claim_text = claim_text.replace('\r', "\\r").replace('\n', "\\n");
        let mut bytes = claim_text.clone().into_bytes();
        let Ok(claim) = simd_json::to_owned_value(&mut bytes) else { continue };
        let reference: Value = serde_json::from_str(&claim_text).unwrap();
        let required: Vec<String> = (0..rng.below(4))
            .map(|_| (0..rng.below(3)).map(|_| rng.pick(&words)).collect::<Vec<_>>().join(rng.pick(&[" ", "  ", "\t"])))
            .collect();
        let got = requirement_met(&required, Some(ClaimValue::Owned(&claim)));
        // The same claim read in place, as a verified token's claims are.
        let mut text = claim_text.clone().into_bytes();
        let tape = simd_json::to_tape(&mut text).expect("simd-json read it once");
        assert_eq!(requirement_met(&required, Some(ClaimValue::Tape(tape.as_value()))), got, "{claim_text}");
        // Floats compare by value, not text: only exact texts are checked here.
        if reference.to_string().contains(['.', 'e', 'E']) {
            continue;
        }
        let values = values_of(&reference);
        let want = required.is_empty()
            || required.iter().any(|element| {
                let mut w = element.split_ascii_whitespace().peekable();
                w.peek().is_some() && w.all(|word| values.iter().any(|v| v == word))
            });
        assert_eq!(got, want, "{required:?} in {claim_text}");
        assert_eq!(requirement_met(&required, None), required.is_empty());
        // Adding a value to an array claim never unmeets a requirement.
        if let Some(items) = claim.as_array() {
            let mut more = items.clone();
            more.push(simd_json::OwnedValue::from("extra"));
            assert!(!got || requirement_met(&required, Some(ClaimValue::Owned(&simd_json::OwnedValue::from(more)))));
        }
    }
}
