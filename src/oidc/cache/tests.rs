use super::*;
use crate::error::AuthReason;

const ENDPOINT: &[u8] = b"https://idp.example.com/oauth2/token";

fn prefix() -> KeyPrefix {
    KeyPrefix::new(ENDPOINT, b"salt-1")
}

fn ck(id: &[u8], secret: &[u8]) -> CacheKey {
    prefix().key(id, secret, None)
}

fn key(n: u32) -> CacheKey {
    ck(format!("client-{n}").as_bytes(), b"secret")
}

/// Always draws the same jitter (clamped to the bound).
struct FixedJitter(u64);

impl Jitter for FixedJitter {
    fn below(&mut self, bound: u64) -> u64 {
        self.0.min(bound - 1)
    }
}

fn token(name: &str, expires_at: Secs, refresh_at: Secs) -> Rc<CachedToken> {
    Rc::new(CachedToken::bearer(name.as_bytes(), Lifetime { ttl: expires_at, refresh_after: refresh_at }, 0))
}

fn header(lookup: &Lookup) -> Option<&[u8]> {
    match lookup {
        Lookup::Fresh(t) | Lookup::RefreshDue(t) => Some(t.header_value()),
        _ => None,
    }
}

// ---- keys ----

#[test]
fn cache_key_same_inputs_same_key() {
    assert_eq!(ck(b"id", b"secret"), ck(b"id", b"secret"));
    assert_eq!(KeyPrefix::new(ENDPOINT, b"s"), KeyPrefix::new(ENDPOINT, b"s"));
}

#[test]
fn cache_key_framing_keeps_field_boundaries() {
    assert_ne!(ck(b"ab", b"c"), ck(b"a", b"bc"));
    assert_ne!(ck(b"", b"abc"), ck(b"abc", b""));
    assert_ne!(KeyPrefix::new(b"https://a/tokensalt", b""), KeyPrefix::new(b"https://a/token", b"salt"));
}

#[test]
fn cache_key_every_field_matters() {
    let base = ck(b"id", b"secret");
    assert_ne!(base, ck(b"id", b"secreT"), "secret");
    assert_ne!(base, ck(b"iD", b"secret"), "id");
    assert_ne!(base, KeyPrefix::new(ENDPOINT, b"salt-2").key(b"id", b"secret", None), "salt");
    assert_ne!(base, KeyPrefix::new(b"https://idp.example.com/oauth2/token2", b"salt-1").key(b"id", b"secret", None));
}

#[test]
fn cache_key_scope_absent_differs_from_empty_scope() {
    let none = ck(b"id", b"secret");
    let empty = prefix().key(b"id", b"secret", Some(b""));
    let openid = prefix().key(b"id", b"secret", Some(b"openid"));
    assert_ne!(none, empty);
    assert_ne!(empty, openid);
    assert_ne!(none, openid);
}

#[test]
fn cache_key_debug_shows_a_prefix_only() {
    let shown = format!("{:?}", ck(b"id", b"secret"));
    assert!(shown.starts_with("CacheKey(") && shown.len() < 30, "{shown}");
    assert_eq!(format!("{:?}", prefix()), "KeyPrefix(..)");
}

#[test]
fn cache_key_matches_sha256_of_the_documented_framing() {
    let framed = |fields: &[&[u8]]| {
        let mut input = Vec::new();
        for field in fields {
            input.extend_from_slice(&(field.len() as u64).to_be_bytes());
            input.extend_from_slice(field);
        }
        input
    };
    let prefix_input = framed(&[PREFIX_DOMAIN, ENDPOINT, b"client_credentials", b"salt-1"]);
    let prefix_digest = digest::digest(&digest::SHA256, &prefix_input);
    let mut input = prefix_digest.as_ref().to_vec();
    input.extend_from_slice(&framed(&[b"id", b"pw"]));
    input.push(1);
    input.extend_from_slice(&framed(&[b"openid"]));
    let want = digest::digest(&digest::SHA256, &input);
    assert_eq!(prefix().key(b"id", b"pw", Some(b"openid")).as_bytes().as_slice(), want.as_ref());
}

// ---- lifetimes ----

#[test]
fn lifetime_from_expires_in() {
    let l = token_lifetime(&CacheTtl::default(), Some(3600), None, 0, &mut FixedJitter(0)).unwrap();
    assert_eq!(l, Lifetime { ttl: 3600, refresh_after: 3540 });
}

#[test]
fn lifetime_takes_the_sooner_of_expires_in_and_jwt_exp() {
    let now = 1_700_000_000;
    let ttl = CacheTtl::default();
    // `exp` counts one second less (see token_lifetime).
    let l = token_lifetime(&ttl, Some(3600), Some(now + 600), now, &mut FixedJitter(0)).unwrap();
    assert_eq!(l.ttl, 599);
    let l = token_lifetime(&ttl, Some(300), Some(now + 600), now, &mut FixedJitter(0)).unwrap();
    assert_eq!(l.ttl, 300);
    let l = token_lifetime(&ttl, None, Some(now + 900), now, &mut FixedJitter(0)).unwrap();
    assert_eq!(l.ttl, 899);
}

#[test]
fn lifetime_without_expiry_uses_cache_ttl() {
    let l = token_lifetime(&CacheTtl::default(), None, None, 0, &mut FixedJitter(0)).unwrap();
    assert_eq!(l.ttl, 3600);
    let ttl = CacheTtl { cache_ttl: 120, ..CacheTtl::default() };
    assert_eq!(token_lifetime(&ttl, None, None, 0, &mut FixedJitter(0)).unwrap().ttl, 120);
}

#[test]
fn lifetime_cache_ttl_is_capped_by_max_then_raised_to_min() {
    let ttl = CacheTtl { cache_ttl: 3600, min: None, max: Some(600) };
    assert_eq!(token_lifetime(&ttl, None, None, 0, &mut FixedJitter(0)).unwrap().ttl, 600);
    let ttl = CacheTtl { cache_ttl: 60, min: Some(300), max: None };
    assert_eq!(token_lifetime(&ttl, None, None, 0, &mut FixedJitter(0)).unwrap().ttl, 300);
    // min above max: Kong caps min by max first.
    let ttl = CacheTtl { cache_ttl: 60, min: Some(900), max: Some(600) };
    assert_eq!(token_lifetime(&ttl, None, None, 0, &mut FixedJitter(0)).unwrap().ttl, 600);
}

#[test]
fn lifetime_max_caps_the_tokens_own_lifetime() {
    let ttl = CacheTtl { cache_ttl: 3600, min: None, max: Some(165) };
    assert_eq!(token_lifetime(&ttl, Some(180), None, 0, &mut FixedJitter(0)).unwrap().ttl, 165);
    assert_eq!(token_lifetime(&ttl, Some(100), None, 0, &mut FixedJitter(0)).unwrap().ttl, 100);
}

#[test]
fn lifetime_min_never_stretches_past_the_tokens_expiry() {
    let ttl = CacheTtl { cache_ttl: 3600, min: Some(600), max: None };
    assert_eq!(token_lifetime(&ttl, Some(120), None, 0, &mut FixedJitter(0)).unwrap().ttl, 120);
}

#[test]
fn lifetime_zero_or_past_expiry_is_not_cached() {
    let ttl = CacheTtl::default();
    assert_eq!(token_lifetime(&ttl, Some(0), None, 0, &mut FixedJitter(0)), None);
    assert_eq!(token_lifetime(&ttl, Some(-5), None, 0, &mut FixedJitter(0)), None);
    assert_eq!(token_lifetime(&ttl, Some(3600), Some(1000), 1000, &mut FixedJitter(0)), None);
    // One second left on `exp` is not enough to cache.
    assert_eq!(token_lifetime(&ttl, Some(3600), Some(1001), 1000, &mut FixedJitter(0)), None);
    let zero = CacheTtl { cache_ttl: 0, ..CacheTtl::default() };
    assert_eq!(token_lifetime(&zero, None, None, 0, &mut FixedJitter(0)), None);
}

#[test]
fn lifetime_refresh_margin_is_ten_percent_within_bounds() {
    let ttl = CacheTtl::default();
    let at = |secs| token_lifetime(&ttl, Some(secs), None, 0, &mut FixedJitter(0)).unwrap().refresh_after;
    assert_eq!(at(86_400), 86_400 - 60, "capped at 60 s");
    assert_eq!(at(300), 270, "10 %");
    assert_eq!(at(30), 25, "at least 5 s");
    assert_eq!(at(6), 3, "at most half");
    assert_eq!(at(1), 1, "no margin left");
}

#[test]
fn lifetime_jitter_moves_refresh_earlier_within_the_margin() {
    let ttl = CacheTtl::default();
    let at = |j| token_lifetime(&ttl, Some(3600), None, 0, &mut FixedJitter(j)).unwrap().refresh_after;
    assert_eq!(at(0), 3540);
    assert_eq!(at(25), 3515);
    assert_eq!(at(60), 3480);
    assert_eq!(at(1000), 3480, "never beyond the margin");
}

#[test]
fn lifetime_jitter_from_splitmix_spreads_refresh_times() {
    let ttl = CacheTtl::default();
    let mut rng = SplitMix64::new(7);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let l = token_lifetime(&ttl, Some(3600), None, 0, &mut rng).unwrap();
        assert!((3480..=3540).contains(&l.refresh_after), "{l:?}");
        seen.insert(l.refresh_after);
    }
    assert!(seen.len() > 40, "only {} distinct refresh times", seen.len());
}

#[test]
fn splitmix_below_stays_below_bound() {
    let mut rng = SplitMix64::from_entropy();
    for bound in [1, 2, 3, 61, 1 << 40] {
        for _ in 0..100 {
            assert!(rng.below(bound) < bound);
        }
    }
}

// ---- tokens ----

#[test]
fn cached_token_renders_bearer_header_once() {
    let t = CachedToken::bearer(b"abc.def.ghi", Lifetime { ttl: 100, refresh_after: 80 }, 1000);
    assert_eq!(t.header_value(), b"Bearer abc.def.ghi");
    assert_eq!((t.expires_at(), t.refresh_at()), (1100, 1080));
}

#[test]
fn cached_token_debug_redacts_the_token() {
    let t = CachedToken::bearer(b"very-secret-token", Lifetime { ttl: 100, refresh_after: 80 }, 0);
    let shown = format!("{t:?}");
    assert!(!shown.contains("very-secret-token"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    let lookup = format!("{:?}", Lookup::Fresh(Rc::new(t)));
    assert!(!lookup.contains("very-secret-token"), "{lookup}");
}

// ---- L1 ----

#[test]
fn l1_empty_lookup_misses() {
    let mut c = L1Cache::new(4);
    assert!(matches!(c.get(&key(1), 0), Lookup::Miss));
    assert!(c.is_empty());
}

#[test]
fn l1_inserted_token_is_fresh_before_refresh_time() {
    let mut c = L1Cache::new(4);
    c.insert(key(1), token("t1", 100, 80));
    let got = c.get(&key(1), 79);
    assert!(matches!(got, Lookup::Fresh(_)));
    assert_eq!(header(&got), Some(&b"Bearer t1"[..]));
    assert!(matches!(c.get(&key(2), 79), Lookup::Miss));
}

#[test]
fn l1_wrong_secret_never_hits() {
    let mut c = L1Cache::new(4);
    c.insert(ck(b"id", b"good"), token("t", 100, 80));
    assert!(matches!(c.get(&ck(b"id", b"bad"), 0), Lookup::Miss));
}

#[test]
fn l1_expiry_boundary_is_exclusive() {
    let mut c = L1Cache::new(4);
    c.insert(key(1), token("t1", 100, 100));
    assert!(matches!(c.get(&key(1), 99), Lookup::Fresh(_)));
    assert!(matches!(c.get(&key(1), 100), Lookup::Expired), "now == expires_at is expired");
    assert!(matches!(c.get(&key(1), 100), Lookup::Miss), "the expired entry is gone");
    assert_eq!(c.len(), 0);
}

#[test]
fn l1_expired_token_is_never_returned_even_when_refresh_was_due() {
    let mut c = L1Cache::new(4);
    c.insert(key(1), token("t1", 100, 50));
    assert!(matches!(c.get(&key(1), 60), Lookup::RefreshDue(_)));
    assert!(matches!(c.get(&key(1), 100), Lookup::Expired));
}

#[test]
fn l1_refresh_due_is_handed_out_once_until_the_new_token_arrives() {
    let mut c = L1Cache::new(4);
    c.insert(key(1), token("old", 100, 80));
    let first = c.get(&key(1), 80);
    assert!(matches!(first, Lookup::RefreshDue(_)));
    assert_eq!(header(&first), Some(&b"Bearer old"[..]));
    for now in [80, 81, 90, 99] {
        let again = c.get(&key(1), now);
        assert!(matches!(again, Lookup::Fresh(_)), "at {now}: {again:?}");
        assert_eq!(header(&again), Some(&b"Bearer old"[..]));
    }
    c.insert(key(1), token("new", 200, 180));
    let after = c.get(&key(1), 99);
    assert!(matches!(after, Lookup::Fresh(_)));
    assert_eq!(header(&after), Some(&b"Bearer new"[..]));
    assert!(matches!(c.get(&key(1), 180), Lookup::RefreshDue(_)), "the new token gets its own refresh");
}

#[test]
fn l1_refresh_claim_times_out_when_nobody_answers() {
    let mut c = L1Cache::new(4).with_refresh_claim(10);
    c.insert(key(1), token("t", 1000, 100));
    assert!(matches!(c.get(&key(1), 100), Lookup::RefreshDue(_)));
    assert!(matches!(c.get(&key(1), 109), Lookup::Fresh(_)));
    assert!(matches!(c.get(&key(1), 110), Lookup::RefreshDue(_)));
    assert!(matches!(c.get(&key(1), 111), Lookup::Fresh(_)));
}

#[test]
fn l1_refresh_failed_defers_the_next_hand_out() {
    let mut c = L1Cache::new(4);
    c.insert(key(1), token("t", 1000, 100));
    assert!(matches!(c.get(&key(1), 100), Lookup::RefreshDue(_)));
    c.refresh_failed(&key(1), 105);
    assert!(matches!(c.get(&key(1), 104), Lookup::Fresh(_)));
    assert!(matches!(c.get(&key(1), 105), Lookup::RefreshDue(_)));
    // Reporting a failure early releases the claim at once.
    c.refresh_failed(&key(1), 0);
    assert!(matches!(c.get(&key(1), 106), Lookup::RefreshDue(_)));
    // Unknown keys are ignored.
    c.refresh_failed(&key(9), 0);
}

#[test]
fn l1_refresh_claims_are_per_key() {
    let mut c = L1Cache::new(4);
    c.insert(key(1), token("a", 100, 50));
    c.insert(key(2), token("b", 100, 50));
    assert!(matches!(c.get(&key(1), 50), Lookup::RefreshDue(_)));
    assert!(matches!(c.get(&key(2), 50), Lookup::RefreshDue(_)));
    assert!(matches!(c.get(&key(1), 51), Lookup::Fresh(_)));
    assert!(matches!(c.get(&key(2), 51), Lookup::Fresh(_)));
}

#[test]
fn l1_negative_entry_rejects_until_it_lapses() {
    let mut c = L1Cache::new(4);
    c.insert_rejected(key(1), 30);
    assert!(matches!(c.get(&key(1), 0), Lookup::Rejected));
    assert!(matches!(c.get(&key(1), 29), Lookup::Rejected));
    assert!(matches!(c.get(&key(1), 30), Lookup::Expired));
    assert!(matches!(c.get(&key(1), 30), Lookup::Miss));
}

#[test]
fn l1_forbidden_entry_refuses_with_its_reason_until_it_lapses() {
    let mut c = L1Cache::new(4);
    c.insert_forbidden(key(1), 30, AuthReason::InsufficientScope);
    assert!(matches!(c.get(&key(1), 29), Lookup::Forbidden(AuthReason::InsufficientScope)));
    assert!(matches!(c.get(&key(1), 30), Lookup::Expired));
    c.insert_forbidden(key(1), 60, AuthReason::AudienceMismatch);
    c.insert(key(1), token("t", 100, 80));
    assert!(matches!(c.get(&key(1), 31), Lookup::Fresh(_)), "a token replaces the verdict");
}

#[test]
fn l1_token_replaces_negative_entry_and_back() {
    let mut c = L1Cache::new(4);
    c.insert_rejected(key(1), 30);
    c.insert(key(1), token("t", 100, 80));
    assert!(matches!(c.get(&key(1), 1), Lookup::Fresh(_)));
    c.insert_rejected(key(1), 60);
    assert!(matches!(c.get(&key(1), 2), Lookup::Rejected));
    assert_eq!(c.len(), 1);
}

#[test]
fn l1_remove_drops_the_entry_and_its_token() {
    let mut c = L1Cache::new(4);
    let t = token("t", 100, 80);
    c.insert(key(1), Rc::clone(&t));
    assert_eq!(Rc::strong_count(&t), 2);
    assert!(c.remove(&key(1)));
    assert_eq!(Rc::strong_count(&t), 1, "the cache let go of the token");
    assert!(!c.remove(&key(1)));
    assert!(matches!(c.get(&key(1), 0), Lookup::Miss));
}

#[test]
fn l1_full_cache_evicts_least_recently_used() {
    let mut c = L1Cache::new(3);
    for n in 1..=3 {
        c.insert(key(n), token("t", 100, 80));
    }
    assert_eq!(c.keys_by_recency().collect::<Vec<_>>(), vec![key(3), key(2), key(1)]);
    // Touch 1: now 2 is the least recently used.
    assert!(matches!(c.get(&key(1), 0), Lookup::Fresh(_)));
    assert_eq!(c.keys_by_recency().collect::<Vec<_>>(), vec![key(1), key(3), key(2)]);
    c.insert(key(4), token("t", 100, 80));
    assert_eq!(c.len(), 3);
    assert!(matches!(c.get(&key(2), 0), Lookup::Miss), "2 was evicted");
    assert_eq!(c.keys_by_recency().collect::<Vec<_>>(), vec![key(4), key(1), key(3)]);
    c.insert(key(5), token("t", 100, 80));
    assert!(matches!(c.get(&key(3), 0), Lookup::Miss), "then 3");
    assert_eq!(c.keys_by_recency().collect::<Vec<_>>(), vec![key(5), key(4), key(1)]);
}

#[test]
fn l1_reinsert_refreshes_recency_without_growing() {
    let mut c = L1Cache::new(2);
    c.insert(key(1), token("a", 100, 80));
    c.insert(key(2), token("b", 100, 80));
    c.insert(key(1), token("a2", 100, 80));
    assert_eq!(c.len(), 2);
    c.insert(key(3), token("c", 100, 80));
    assert!(matches!(c.get(&key(2), 0), Lookup::Miss), "2 was least recent");
    assert_eq!(header(&c.get(&key(1), 0)), Some(&b"Bearer a2"[..]));
}

#[test]
fn l1_freed_slots_are_reused() {
    let mut c = L1Cache::new(2);
    for round in 0..50 {
        c.insert(key(round), token("t", 100, 80));
        if round % 3 == 0 {
            c.remove(&key(round));
        }
        assert!(c.len() <= 2);
        assert!(c.slots.len() <= 2, "slab grew past capacity");
    }
    let order: Vec<_> = c.keys_by_recency().collect();
    assert_eq!(order.len(), c.len());
}

#[test]
fn l1_capacity_one_keeps_only_the_latest() {
    let mut c = L1Cache::new(0);
    assert_eq!(c.capacity(), 1);
    c.insert(key(1), token("a", 100, 80));
    c.insert(key(2), token("b", 100, 80));
    assert!(matches!(c.get(&key(1), 0), Lookup::Miss));
    assert!(matches!(c.get(&key(2), 0), Lookup::Fresh(_)));
}

#[test]
fn l1_driven_by_manual_clock_refreshes_then_expires() {
    let clock = ManualClock::new(1_700_000_000);
    let mut c = L1Cache::new(8);
    let lifetime =
        token_lifetime(&CacheTtl::default(), Some(300), None, clock.unix_now(), &mut FixedJitter(10)).unwrap();
    assert_eq!(lifetime, Lifetime { ttl: 300, refresh_after: 260 });
    clock.advance(5);
    c.insert(key(1), Rc::new(CachedToken::bearer(b"tok", lifetime, clock.now())));
    clock.advance(259);
    assert!(matches!(c.get(&key(1), clock.now()), Lookup::Fresh(_)));
    clock.advance(1);
    assert!(matches!(c.get(&key(1), clock.now()), Lookup::RefreshDue(_)));
    clock.set(294);
    assert!(matches!(c.get(&key(1), clock.now()), Lookup::Fresh(_)));
    clock.set(304);
    assert!(matches!(c.get(&key(1), clock.now()), Lookup::RefreshDue(_)), "the unanswered claim lapsed");
    clock.set(305);
    assert!(matches!(c.get(&key(1), clock.now()), Lookup::Expired));
    assert_eq!(clock.unix_now(), 1_700_000_305);
}

#[test]
fn system_clock_is_monotonic_and_near_the_wall_clock() {
    let clock = SystemClock::new();
    let a = clock.now();
    assert!(clock.now() >= a);
    assert!(clock.unix_now() > 1_600_000_000);
}

/// The cache's clock and the wall clock both tick in whole seconds, each from its own
/// phase. Whatever the two phases, an entry for a token with `exp` stops being served
/// before the wall clock reaches `exp`.
#[test]
fn an_entry_never_outlives_the_jwt_exp_whatever_the_clock_phases() {
    let ttl = CacheTtl::default();
    // Times in milliseconds on one real timeline; the cache's clock started at `origin`.
    for origin in (0..2000).step_by(37) {
        for fetched in (10_000..12_000).step_by(41) {
            let exp: i64 = 20; // seconds, wall clock
            let now_unix = fetched / 1000;
            let Some(l) = token_lifetime(&ttl, None, Some(exp), now_unix, &mut FixedJitter(0)) else { continue };
            let fetched_at = ((fetched - origin) / 1000) as u64;
            // Served while the cache clock (whole seconds since origin) < expires_at:
            // the last served instant is just before origin + expires_at seconds.
            let last_served_ms = origin + (l.expires_at(fetched_at) as i64) * 1000;
            assert!(
                last_served_ms <= exp * 1000,
                "origin {origin} ms, fetched {fetched} ms: served until {last_served_ms} ms, exp {exp} s"
            );
        }
    }
}
