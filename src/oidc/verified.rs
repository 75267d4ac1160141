//! A worker's cache of bearer tokens it has already verified.
//!
//! Place: the `bearer` method of the access phase, in front of `jose::verify_into` (an
//! RS256 verification costs tens of microseconds; a hit here must cost well under one).
//!
//! Invariants: a hit needs the presented token to equal, byte for byte, a token that
//! passed verification, and its `exp` (plus leeway) to be in the future. The hash only
//! picks the bucket: it covers the token's last 64 bytes (the signature, which differs
//! between any two tokens) and its length, with a per-worker random SipHash key so a
//! caller cannot aim collisions at one bucket; the full comparison decides.
//!
//! Cost of a hit: SipHash over 64 bytes and one memcmp of the token; no allocation.
//! An entry also keeps the token's rendered claim headers (`upstream_headers_claims`),
//! so a hit does not parse the token again.

use crate::oidc::claim_headers::TokenFacts;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::rc::Rc;

/// The bucket hash is already keyed and uniform; use it as is.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Tokens whose bucket hashes collide, each with its `exp` and claim header lines.
type Bucket = Vec<(Box<[u8]>, u64, Option<Rc<TokenFacts>>)>;

/// Verified tokens and their `exp` (unix seconds; `u64::MAX` when the token has none).
pub struct VerifiedCache {
    keys: RandomState,
    buckets: HashMap<u64, Bucket, BuildHasherDefault<PassThrough>>,
    len: usize,
    capacity: usize,
}

impl VerifiedCache {
    pub fn new(capacity: usize) -> VerifiedCache {
        VerifiedCache { keys: RandomState::new(), buckets: HashMap::default(), len: 0, capacity: capacity.max(1) }
    }

    fn bucket_of(&self, token: &[u8]) -> u64 {
        let tail = &token[token.len().saturating_sub(64)..];
        self.keys.hash_one((token.len(), tail))
    }

    /// Whether `token` was verified and is still within its `exp` plus `leeway`.
    pub fn contains(&self, token: &[u8], now: u64, leeway: u64) -> bool {
        self.get(token, now, leeway).is_some()
    }

    /// For a verified `token` still within its `exp` plus `leeway`: its claim header
    /// lines, if it had any.
    pub fn get(&self, token: &[u8], now: u64, leeway: u64) -> Option<Option<&Rc<TokenFacts>>> {
        self.buckets
            .get(&self.bucket_of(token))
            .and_then(|b| b.iter().find(|(t, _, _)| **t == *token))
            .filter(|&&(_, exp, _)| now < exp.saturating_add(leeway))
            .map(|(_, _, lines)| lines.as_ref())
    }

    /// Remembers a token that passed verification. When full, expired entries go first,
    /// and if that is not enough, everything (a burst of distinct tokens only costs
    /// re-verifications, never a wrong answer).
    pub fn insert(&mut self, token: &[u8], exp: u64, now: u64) {
        self.insert_with(token, exp, now, None);
    }

    /// [`VerifiedCache::insert`], keeping the token's claim header lines with it.
    pub fn insert_with(&mut self, token: &[u8], exp: u64, now: u64, facts: Option<Rc<TokenFacts>>) {
        if self.len >= self.capacity {
            self.buckets.retain(|_, b| {
                b.retain(|&(_, e, _)| now < e);
                !b.is_empty()
            });
            self.len = self.buckets.values().map(Vec::len).sum();
            if self.len >= self.capacity {
                self.buckets.clear();
                self.len = 0;
            }
        }
        let bucket = self.bucket_of(token);
        let entries = self.buckets.entry(bucket).or_default();
        if let Some(e) = entries.iter_mut().find(|(t, _, _)| **t == *token) {
            e.1 = exp;
            e.2 = facts;
        } else {
            entries.push((token.into(), exp, facts));
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_within_its_exp_hits() {
        let mut c = VerifiedCache::new(10);
        let token = b"header.payload.signature-AAAA".to_vec();
        c.insert(&token, 100, 0);
        assert!(c.contains(&token, 99, 0));
        assert!(!c.contains(&token, 100, 0), "exp is exclusive");
        assert!(c.contains(&token, 100, 5), "leeway extends it");
        let mut other = token.clone();
        other[0] = b'H';
        assert!(!c.contains(&other, 50, 0), "same signature, other header: a miss");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let mut c = VerifiedCache::new(2);
        c.insert(b"a.b.old", 10, 0);
        c.insert(b"a.b.live", 1000, 0);
        c.insert(b"a.b.new", 1000, 20);
        assert_eq!(c.len(), 2);
        assert!(c.contains(b"a.b.live", 20, 0) && c.contains(b"a.b.new", 20, 0));
        assert!(!c.contains(b"a.b.old", 5, 0), "the expired one went");
    }

    #[test]
    fn random_use_never_hits_a_token_not_inserted_or_past_its_exp() {
        // Tokens that share their last 64 bytes and length (one bucket hash) or differ in
        // one byte; extreme exp, clock and leeway values.
        let mut rng = crate::testing::Rng(0x7137_4491_b5c0_fbcf);
        let mut c = VerifiedCache::new(16);
        let mut inserted: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
        let tail = [b'S'; 64];
        let mut hits = 0;
        for _ in 0..20_000 {
            let mut token = vec![b'h'; 1 + rng.below(3)];
            token.push(b'.');
            token.push(rng.pick(b"abc"));
            token.extend_from_slice(&tail);
            if rng.chance(4) {
                let at = rng.below(token.len());
                token[at] ^= 1;
            }
            let now = rng.pick(&[0, 1_000, 1_000_000, u64::MAX - 1, u64::MAX]);
            let leeway = rng.pick(&[0, 5, u64::MAX]);
            if rng.chance(3) {
                let exp = rng.pick(&[0, 999, 1_000, 1_001, 2_000_000, u64::MAX]);
                c.insert(&token, exp, now);
                inserted.insert(token.clone(), exp);
            }
            if c.contains(&token, now, leeway) {
                let exp = inserted[&token];
                assert!(u128::from(now) < u128::from(exp) + u128::from(leeway), "{now} {exp} {leeway}");
                hits += 1;
            }
            assert!(c.len() <= 16);
        }
        assert!(hits > 1000, "{hits}");
    }

    #[test]
    fn a_hit_returns_the_claim_headers_stored_with_the_token() {
        let mut c = VerifiedCache::new(10);
        let lines = Rc::new(TokenFacts {
            lines: b"X-Tenant: acme\r\n"[..].into(),
            downstream_lines: Box::default(),
            consumer: Some("acme".into()),
            credential: None,
            jkt: None,
            x5t: None,
        });
        c.insert_with(b"a.b.with", 100, 0, Some(lines.clone()));
        c.insert(b"a.b.without", 100, 0);
        assert_eq!(c.get(b"a.b.with", 50, 0), Some(Some(&lines)));
        assert_eq!(c.get(b"a.b.without", 50, 0), Some(None));
        assert_eq!(c.get(b"a.b.with", 100, 0), None, "expired: no lines either");
    }
}
