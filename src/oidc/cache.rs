//! The per-core token cache (SPEC §2, Kong's `cache_tokens*` / `cache_ttl*`).
//!
//! Place in the request path: right after [`credentials`](super::credentials). The
//! caller's id and secret are digested into a [`CacheKey`] together with the token
//! endpoint, the grant and the plugin's salt (pre-digested per plugin as a [`KeyPrefix`])
//! and whatever else of the request goes into the token call (the caller's
//! `token_post_args_client` / `token_headers_client` values); the key is looked up in
//! the worker's [`L1Cache`]. A hit hands back the
//! pre-rendered upstream header value (`Bearer <token>`), so the head splice writes it as
//! it is. Misses go to the control plane, which owns the IdP calls, the process-wide
//! single flight and the L2 cache; its answer comes back through [`L1Cache::insert`].
//!
//! Invariants:
//! - The plain secret is never stored: keys are SHA-256 digests over length-prefixed
//!   fields, so no two different inputs share a framing and a wrong secret cannot land on
//!   a good entry.
//! - An expired token is never returned (`now >= expires_at` is expired).
//! - Past `refresh_at` the still-valid token keeps being served, and exactly one caller
//!   per key is told to refresh ([`Lookup::RefreshDue`]) until a new token is inserted,
//!   the refresh is reported failed, or the claim times out (a lost reply must not stop
//!   refreshes for good).
//! - Refresh times carry random jitter so a fleet does not refresh in lock-step.
//!
//! Cost: computing a key is one SHA-256 over about a hundred bytes (two blocks for
//! typical credentials) with ring's context on the stack. A hit is one hash-map probe (the hasher takes 8 bytes of the digest, which
//! is already uniform), an O(1) move to the front of an intrusive LRU list and an `Rc`
//! clone: no heap allocation. Inserting allocates nothing either until the map has to
//! rehash, which its up-front sizing keeps rare.
//!
//! Time is whole seconds from a [`Clock`]; the cache itself never reads a clock.
//!
//! Not `Sync` (it holds `Rc`s): each worker owns one and touches it alone.

use crate::oidc::claim_headers::TokenFacts;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ring::digest;

/// Seconds on the cache's clock.
pub type Secs = u64;

// ---- time ----

/// Where the token cache gets its time. Production uses [`SystemClock`]; tests drive a
/// [`ManualClock`] so nothing sleeps.
pub trait Clock {
    /// Monotonic seconds: cache instants (`expires_at`, `refresh_at`) are in this scale.
    fn now(&self) -> Secs;
    /// Seconds since the Unix epoch, for comparing with a JWT's `exp`.
    fn unix_now(&self) -> i64;
}

/// Monotonic seconds since the clock was made, and the system's wall clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { origin: Instant::now() }
    }

    /// [`Clock::now`] at `instant`, a reading the caller already made.
    pub fn at(&self, instant: Instant) -> Secs {
        instant.saturating_duration_since(self.origin).as_secs()
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Secs {
        self.origin.elapsed().as_secs()
    }
    fn unix_now(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }
}

/// A clock tests set and advance; its wall clock moves with its monotonic one.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::cell::Cell<Secs>,
    unix_at_zero: i64,
}

impl ManualClock {
    /// Monotonic 0 is `unix_at_zero` on the wall clock.
    pub fn new(unix_at_zero: i64) -> Self {
        ManualClock { now: std::cell::Cell::new(0), unix_at_zero }
    }
    pub fn set(&self, now: Secs) {
        self.now.set(now);
    }
    pub fn advance(&self, secs: Secs) {
        self.now.set(self.now.get() + secs);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Secs {
        self.now.get()
    }
    fn unix_now(&self) -> i64 {
        self.unix_at_zero.saturating_add(i64::try_from(self.now.get()).unwrap_or(i64::MAX))
    }
}

// ---- keys ----

/// The per-plugin part of every cache key: the token endpoint, the grant and the
/// plugin's `cache_tokens_salt` (random per plugin instance unless configured, so two
/// plugin instances never share tokens), digested once when the plugin is configured.
/// Per request only the id and the secret are hashed on top: two SHA-256 blocks for
/// typical credentials instead of five.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyPrefix([u8; 32]);

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPrefix(..)")
    }
}

/// Versioned domain separation: a change of framing must not collide with old keys
/// (an L2 may outlive a restart).
const PREFIX_DOMAIN: &[u8] = b"ringgate/oidc/token-cache/v1/plugin";

/// Appends one field as an 8-byte big-endian length and its bytes: no two different
/// field lists produce the same input, so `("ab", "c")` and `("a", "bc")` differ.
fn framed(ctx: &mut digest::Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_be_bytes());
    ctx.update(bytes);
}

impl KeyPrefix {
    pub fn new(token_endpoint: &[u8], salt: &[u8]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        framed(&mut ctx, PREFIX_DOMAIN);
        framed(&mut ctx, token_endpoint);
        framed(&mut ctx, b"client_credentials");
        framed(&mut ctx, salt);
        let mut out = [0; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        KeyPrefix(out)
    }

    /// The key for one caller: SHA-256 over the prefix, the framed id and secret, and
    /// `extra` behind a presence byte, so none and an empty one differ. `extra` is what
    /// else of the request goes into the token call: the caller's
    /// `token_post_args_client` / `token_headers_client` values, framed by
    /// [`ClientValues::key_input`](super::credentials::ClientValues::key_input) (a
    /// caller's `scope` among them); `None` when the instance takes none. The secret is
    /// an input here and is stored nowhere.
    pub fn key(&self, client_id: &[u8], client_secret: &[u8], extra: Option<&[u8]>) -> CacheKey {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&self.0);
        framed(&mut ctx, client_id);
        framed(&mut ctx, client_secret);
        match extra {
            None => ctx.update(&[0]),
            Some(extra) => {
                ctx.update(&[1]);
                framed(&mut ctx, extra);
            }
        }
        let mut out = [0; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        CacheKey(out)
    }
}

/// A SHA-256 digest naming one cache entry (see [`KeyPrefix::key`]). Shows only its
/// first bytes in `Debug`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheKey(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// The map's hasher: a digest is already uniformly random, so its first 8 bytes are the
/// hash. No SipHash on the hot path.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    // Only `CacheKey` is hashed here, and it calls `write_u64`; this keeps the hasher
    // correct (if slower) for anything else.
    fn write(&mut self, bytes: &[u8]) {
        let mut h = crate::fasthash::FastHasher::default();
        h.write_u64(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }
}

// ---- lifetimes ----

/// Kong's `cache_ttl`, `cache_ttl_min`, `cache_ttl_max` in seconds (`None`: unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtl {
    pub cache_ttl: Secs,
    pub min: Option<Secs>,
    pub max: Option<Secs>,
}

impl Default for CacheTtl {
    fn default() -> Self {
        CacheTtl { cache_ttl: 3600, min: None, max: None }
    }
}

/// How long a fetched token is cached, relative to when it was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Seconds until the entry expires and is never served again.
    pub ttl: Secs,
    /// Seconds until one caller is asked to refresh it (`<= ttl`).
    pub refresh_after: Secs,
}

impl Lifetime {
    pub fn expires_at(&self, fetched_at: Secs) -> Secs {
        fetched_at.saturating_add(self.ttl)
    }
    pub fn refresh_at(&self, fetched_at: Secs) -> Secs {
        fetched_at.saturating_add(self.refresh_after)
    }
}

/// Refresh margin bounds: 10 % of the lifetime, at least this many seconds …
pub const REFRESH_MARGIN_MIN: Secs = 5;
/// … and at most this many; never more than half the lifetime.
pub const REFRESH_MARGIN_MAX: Secs = 60;

/// Random numbers for refresh jitter.
pub trait Jitter {
    /// A number in `0..bound` (`bound >= 1`), roughly uniform.
    fn below(&mut self, bound: u64) -> u64;
}

/// SplitMix64: tiny, fast, and plenty for spreading refresh times (not for secrets).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Seeded from the operating system's random source, so workers and instances
    /// differ; falls back to the time if that source fails.
    pub fn from_entropy() -> Self {
        use ring::rand::SecureRandom as _;
        let mut seed = [0; 8];
        if ring::rand::SystemRandom::new().fill(&mut seed).is_err() {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            seed = (nanos as u64).to_le_bytes();
        }
        SplitMix64(u64::from_le_bytes(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::fasthash::mix64(self.0)
    }
}

impl Jitter for SplitMix64 {
    fn below(&mut self, bound: u64) -> u64 {
        // Multiply-shift: unbiased enough for second-granular jitter, no division.
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

/// How long to cache a token the IdP just issued, or `None` when it must not be cached.
///
/// - The token's own lifetime is `expires_in` (counted from when the token was asked
///   for) or the JWT `exp` minus `now_unix` minus one second (for the two clocks'
///   whole-second rounding), whichever is sooner.
/// - Without either, the lifetime is `cache_ttl`, first capped by `cache_ttl_max` and
///   then raised to `cache_ttl_min` (Kong's normalisation).
/// - With one, it is capped by `cache_ttl_max`. `cache_ttl_min` does not stretch it:
///   that would forward an expired token, which SPEC §2 forbids (Kong does stretch it).
/// - A lifetime of zero or less (`expires_in <= 0`, `exp` passed, `cache_ttl` 0) is not
///   cached. (Kong reads `expires_in: 0` as "never expires"; we do not.)
///
/// `refresh_after` is the lifetime minus a margin — 10 % of the lifetime, clamped to
/// [`REFRESH_MARGIN_MIN`]..=[`REFRESH_MARGIN_MAX`] and to half the lifetime — minus a
/// jitter drawn from `0..=margin`. A one-hour token is thus refreshed 60 to 120 s before
/// it expires, a five-minute token 30 to 60 s before.
pub fn token_lifetime(
    ttl: &CacheTtl,
    expires_in: Option<i64>,
    jwt_exp: Option<i64>,
    now_unix: i64,
    jitter: &mut impl Jitter,
) -> Option<Lifetime> {
    // `now_unix` is whole seconds, up to one behind the wall clock, and the cache's own
    // clock counts whole seconds from another phase: the entry would outlive `exp` by up
    // to a second. One second less keeps it inside.
    let from_jwt = jwt_exp.map(|exp| exp.saturating_sub(now_unix).saturating_sub(1));
    let own = match (expires_in, from_jwt) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let max = ttl.max.filter(|&m| m > 0);
    let min = ttl.min.filter(|&m| m > 0);
    let lifetime = match own {
        Some(secs) if secs <= 0 => return None,
        Some(secs) => {
            let secs = secs.unsigned_abs();
            max.map_or(secs, |m| secs.min(m))
        }
        None => {
            let mut secs = ttl.cache_ttl;
            if let Some(m) = max {
                secs = secs.min(m);
            }
            if let Some(m) = min {
                // Kong caps `cache_ttl_min` by `cache_ttl_max` before raising.
                secs = secs.max(max.map_or(m, |x| m.min(x)));
            }
            secs
        }
    };
    if lifetime == 0 {
        return None;
    }
    let margin = (lifetime / 10).clamp(REFRESH_MARGIN_MIN, REFRESH_MARGIN_MAX).min(lifetime / 2);
    let spread = jitter.below(margin + 1).min(margin);
    Some(Lifetime { ttl: lifetime, refresh_after: lifetime - margin - spread })
}

// ---- entries ----

/// Whether `token` is made of what an access token may hold (RFC 6749 Appendix A.12:
/// `1*VSCHAR`, printable ASCII): nothing that could end or split the header line it is
/// written into. The IdP's tokens and the callers' are checked before either reaches a
/// header.
pub fn token_is_printable(token: &[u8]) -> bool {
    !token.is_empty() && token.iter().all(|&b| (0x20..=0x7e).contains(&b))
}

/// `Bearer <access_token>`: how a token is kept, rendered once per token.
pub fn bearer_value(access_token: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(7 + access_token.len());
    value.extend_from_slice(b"Bearer ");
    value.extend_from_slice(access_token);
    value
}

/// A token as the upstream will see it, with its cache instants.
/// `Debug` never shows the header value.
pub struct CachedToken {
    header_value: Box<[u8]>,
    /// Claim header lines and consumer, shared with the control plane's entry.
    facts: Option<std::sync::Arc<TokenFacts>>,
    expires_at: Secs,
    refresh_at: Secs,
}

impl CachedToken {
    /// `header_value` is the upstream header's whole value, e.g. `Bearer <token>`.
    pub fn new(header_value: Box<[u8]>, lifetime: Lifetime, fetched_at: Secs) -> Self {
        CachedToken {
            header_value,
            facts: None,
            expires_at: lifetime.expires_at(fetched_at),
            refresh_at: lifetime.refresh_at(fetched_at),
        }
    }

    /// Renders `Bearer <access_token>` once, at insert time.
    pub fn bearer(access_token: &[u8], lifetime: Lifetime, fetched_at: Secs) -> Self {
        Self::new(bearer_value(access_token).into_boxed_slice(), lifetime, fetched_at)
    }

    /// The token with what its claims give each request ([`TokenFacts`]).
    pub fn with_facts(mut self, facts: Option<std::sync::Arc<TokenFacts>>) -> Self {
        self.facts = facts;
        self
    }

    pub fn facts(&self) -> Option<&TokenFacts> {
        self.facts.as_deref()
    }

    pub fn header_value(&self) -> &[u8] {
        &self.header_value
    }

    /// The claim header lines, each ending in CRLF; empty for none.
    pub fn claim_headers(&self) -> &[u8] {
        self.facts.as_ref().map(|f| &f.lines[..]).unwrap_or_default()
    }
    pub fn expires_at(&self) -> Secs {
        self.expires_at
    }
    pub fn refresh_at(&self) -> Secs {
        self.refresh_at
    }
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("header_value", &format_args!("<redacted, {} bytes>", self.header_value.len()))
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A valid token; forward it.
    Fresh(Rc<CachedToken>),
    /// A valid token past its refresh time: forward it, and this caller (alone) asks the
    /// control plane for a new one, then [`L1Cache::insert`]s it or reports
    /// [`L1Cache::refresh_failed`].
    RefreshDue(Rc<CachedToken>),
    /// The IdP rejected these credentials recently (`cache_ttl_neg`): answer 401.
    Rejected,
    /// The token these credentials get does not meet the scopes or audience required
    /// (the reason): answer 403 until that token would have been refreshed.
    Forbidden(crate::error::AuthReason),
    /// There was an entry and it lapsed; it is gone now. Fetch as on a miss.
    Expired,
    /// No entry.
    Miss,
}

/// How long a refresh hand-out stays exclusive when nobody reports back.
pub const DEFAULT_REFRESH_CLAIM: Secs = 30;

const NIL: u32 = u32::MAX;

enum Value {
    Token(Rc<CachedToken>),
    Rejected { until: Secs },
    Forbidden { until: Secs, kind: crate::error::AuthReason },
    Vacant,
}

struct Slot {
    key: CacheKey,
    value: Value,
    /// No other `RefreshDue` for this entry before this instant (0: none handed out).
    refresh_claimed_until: Secs,
    prev: u32,
    next: u32,
}

/// A worker's bounded LRU of tokens. See the module docs.
pub struct L1Cache {
    index: HashMap<CacheKey, u32, BuildHasherDefault<KeyHasher>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    capacity: usize,
    refresh_claim: Secs,
}

impl fmt::Debug for L1Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L1Cache").field("len", &self.len()).field("capacity", &self.capacity).finish()
    }
}

impl L1Cache {
    /// A cache of at most `capacity` entries (at least 1), with all its memory reserved
    /// now so hits and most inserts allocate nothing.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        L1Cache {
            index: HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            head: NIL,
            tail: NIL,
            capacity,
            refresh_claim: DEFAULT_REFRESH_CLAIM,
        }
    }

    /// Sets how long a `RefreshDue` hand-out stays exclusive without an answer.
    pub fn with_refresh_claim(mut self, secs: Secs) -> Self {
        self.refresh_claim = secs;
        self
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Looks `key` up at `now`. Lapsed entries are removed; live ones become the most
    /// recently used.
    pub fn get(&mut self, key: &CacheKey, now: Secs) -> Lookup {
        let Some(&idx) = self.index.get(key) else { return Lookup::Miss };
        let slot = &mut self.slots[idx as usize];
        let outcome = match &slot.value {
            Value::Token(token) if now >= token.expires_at => None,
            Value::Token(token) if now >= token.refresh_at && now >= slot.refresh_claimed_until => {
                slot.refresh_claimed_until = now.saturating_add(self.refresh_claim.max(1));
                Some(Lookup::RefreshDue(Rc::clone(token)))
            }
            Value::Token(token) => Some(Lookup::Fresh(Rc::clone(token))),
            Value::Rejected { until } if now >= *until => None,
            Value::Rejected { .. } => Some(Lookup::Rejected),
            Value::Forbidden { until, .. } if now >= *until => None,
            Value::Forbidden { kind, .. } => Some(Lookup::Forbidden(*kind)),
            Value::Vacant => None,
        };
        match outcome {
            Some(lookup) => {
                self.touch(idx);
                lookup
            }
            None => {
                self.remove_at(idx);
                Lookup::Expired
            }
        }
    }

    /// Caches `token` under `key`, replacing any entry (and ending its refresh claim).
    /// A full cache first evicts its least recently used entry.
    pub fn insert(&mut self, key: CacheKey, token: Rc<CachedToken>) {
        self.put(key, Value::Token(token));
    }

    /// Remembers that the IdP rejected these credentials, until `until` (now plus
    /// `cache_ttl_neg`).
    pub fn insert_rejected(&mut self, key: CacheKey, until: Secs) {
        self.put(key, Value::Rejected { until });
    }

    /// Remembers that the token for these credentials does not meet the instance's
    /// requirements, until `until` (that token's refresh time).
    pub fn insert_forbidden(&mut self, key: CacheKey, until: Secs, kind: crate::error::AuthReason) {
        self.put(key, Value::Forbidden { until, kind });
    }

    /// Drops the entry for `key`; true when there was one.
    pub fn remove(&mut self, key: &CacheKey) -> bool {
        match self.index.get(key) {
            Some(&idx) => {
                self.remove_at(idx);
                true
            }
            None => false,
        }
    }

    /// The refresh handed out for `key` failed: the token stays (it is still valid), and
    /// the next `RefreshDue` is handed out at `retry_at`, not before.
    pub fn refresh_failed(&mut self, key: &CacheKey, retry_at: Secs) {
        if let Some(&idx) = self.index.get(key) {
            self.slots[idx as usize].refresh_claimed_until = retry_at;
        }
    }

    fn put(&mut self, key: CacheKey, value: Value) {
        if let Some(&idx) = self.index.get(&key) {
            let slot = &mut self.slots[idx as usize];
            slot.value = value;
            slot.refresh_claimed_until = 0;
            self.touch(idx);
            return;
        }
        if self.index.len() >= self.capacity && self.tail != NIL {
            self.remove_at(self.tail);
        }
        let slot = Slot { key, value, refresh_claimed_until: 0, prev: NIL, next: NIL };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = slot;
                idx
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, idx);
        self.push_front(idx);
    }

    fn remove_at(&mut self, idx: u32) {
        self.unlink(idx);
        let slot = &mut self.slots[idx as usize];
        self.index.remove(&slot.key);
        // Drops this cache's reference to the token now, not when the slot is reused.
        slot.value = Value::Vacant;
        self.free.push(idx);
    }

    fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
        let s = &mut self.slots[idx as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let s = &mut self.slots[idx as usize];
            s.prev = NIL;
            s.next = old_head;
        }
        match old_head {
            NIL => self.tail = idx,
            h => self.slots[h as usize].prev = idx,
        }
        self.head = idx;
    }

    /// Keys from most to least recently used (tests and debugging).
    pub fn keys_by_recency(&self) -> impl Iterator<Item = CacheKey> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let slot = self.slots.get(at as usize)?;
            at = slot.next;
            Some(slot.key)
        })
    }
}

#[cfg(test)]
mod tests;
