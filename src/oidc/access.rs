//! The plugin's access phase on a worker: from the request's credentials to the value of
//! the upstream `Authorization` header, or to the error the downstream gets.
//!
//! Place in the request path: after routing, before the upstream head is written.
//! `client_credentials`: find the caller's credentials ([`super::credentials::find`]),
//! digest them into a cache key, look the key up in this worker's L1 cache — a hit
//! forwards the cached `Bearer …` at once; a miss (or an expired entry) asks the control
//! plane — once per worker for all of its requests missing on that key together — which
//! coalesces the misses of every worker into one IdP call. A hit past its
//! refresh time is forwarded and, for that one caller, a refresh is started in the
//! background. `bearer`: the caller's JWT is verified here against the instance's key
//! set, in front of a per-worker cache of tokens already verified.
//!
//! Invariants: an expired token is never forwarded (the L1 cache never returns one); the
//! caller's secret is only ever in the request buffer, a stack buffer, and the message to
//! the control plane; nothing here logs a credential or a token.
//!
//! Cost of a cache hit: the Basic decode, one two-block SHA-256 and a hash lookup; no
//! allocation. A connection that sends the same `Authorization` header again (the usual
//! keep-alive client) skips the decode and the SHA-256: its [`CredentialMemo`] maps a
//! keyed digest of the header to the cache key (and, with the access log on, to the
//! `client_id`). What happened (hit, miss, refresh, bearer) is noted in an [`AuthNote`]
//! the connection owns, for metrics and the access log: a few stores, no allocation (the
//! caller's `client_id` is copied only when the access log asks for it).

use crate::oidc::claim_headers::TokenFacts;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use siphasher::sip128::{Hasher128, SipHasher13};

use super::cache::{CacheKey, CachedToken, Clock, L1Cache, Lookup, Secs, SystemClock};
use super::config::{AuthMethod, OidcConfig, PopMode};
use super::credentials::{self, ClientValues, CredentialBuf, Location, Sources};
use super::instance::Instance;
use super::verified::VerifiedCache;
use crate::control::{Ask, ControlPlane, IssuedToken, TokenReply};
use crate::error::AuthReason;
use crate::fasthash::FastMap;
use crate::jose;

/// Entries per plugin instance in a worker's token cache.
pub const L1_CAPACITY: usize = 131_072;
/// Entries per plugin instance in a worker's verified-bearer cache.
const VERIFIED_CAPACITY: usize = 16_384;

/// Why the access phase refused a request: its kind (a fixed label) and a sentence for
/// `display_errors` (never a secret). The status comes from the kind
/// ([`AuthReason::status`]); the variants group the kinds by the status they have.
#[derive(Debug, Clone)]
pub enum AuthError {
    /// 401: no credentials, refused credentials, a token that does not verify.
    Unauthorized(AuthReason, String),
    /// 403: scopes or audience not met.
    Forbidden(AuthReason, String),
    /// 503 with Retry-After: the IdP could not be asked.
    Unavailable(String),
}

impl AuthError {
    pub fn reason(&self) -> AuthReason {
        match self {
            AuthError::Unauthorized(r, _) | AuthError::Forbidden(r, _) => *r,
            AuthError::Unavailable(_) => AuthReason::IdpUnavailable,
        }
    }
}

/// How the token cache answered a `client_credentials` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// A valid token was in this worker's cache.
    Hit,
    /// A valid token past its refresh time: forwarded, and a refresh started.
    HitRefreshing,
    /// A refusal was cached for these credentials: the IdP refused them recently
    /// (`cache_ttl_neg`), or their token was found short of the required scopes or
    /// audience (kept until that token's refresh time).
    NegativeHit,
    /// Nothing usable cached: the control plane was asked.
    Miss,
}

/// What the access phase did, for metrics and the access log. Owned by the connection
/// and reset per request; filling it allocates nothing unless `keep_client_id` is set.
#[derive(Debug, Default)]
pub struct AuthNote {
    /// Set for `client_credentials` once the credentials were found.
    pub cache: Option<CacheUse>,
    /// Set for `bearer`: `Some(true)` when the token was in the verified-token cache.
    pub bearer_cached: Option<bool>,
    /// Copy the caller's `client_id` into [`AuthNote::client_id`] (the access log is on).
    pub keep_client_id: bool,
    /// The caller's `client_id` (never the secret), when `keep_client_id`.
    pub client_id: Vec<u8>,
    /// The request's DPoP proof carried a server nonce past half its lifetime: the
    /// response hands out the next one (`DPoP-Nonce`), before the caller is refused.
    pub dpop_nonce_aging: bool,
}

impl AuthNote {
    /// Forgets the previous request, keeping the buffer.
    pub fn reset(&mut self, keep_client_id: bool) {
        self.cache = None;
        self.bearer_cached = None;
        self.keep_client_id = keep_client_id;
        self.client_id.clear();
        self.dpop_nonce_aging = false;
    }

    /// Whether the access phase was answered from this worker's caches, without waiting
    /// for anything or verifying a signature.
    pub fn answered_at_once(&self) -> bool {
        matches!(self.cache, Some(CacheUse::Hit | CacheUse::HitRefreshing)) || self.bearer_cached == Some(true)
    }
}

/// The cache key of the credentials a connection last sent in `Authorization`, under a
/// keyed 128-bit digest of the header's value (SipHash-1-3 with its 128-bit output,
/// random keys per worker; never the value itself). When a connection sends the same header again, as
/// keep-alive clients do, the Basic decoding and the SHA-256 of the key are skipped.
/// A stale entry cannot match: it holds the [`Instance::id`] it was made for (an id, not
/// a reference: remembering costs the shared instance no reference-count traffic).
/// With the access log on, the memo also keeps the credentials' `client_id` (logged
/// anyway; the secret is never kept), so logging does not turn the memo off.
#[derive(Default)]
pub struct CredentialMemo {
    entry: Option<(u64, u128, CacheKey)>,
    /// The remembered credentials' `client_id`, when `kept_id`.
    client_id: Vec<u8>,
    kept_id: bool,
}

/// A worker's plugin state: its caches, keyed by instance.
pub struct WorkerAuth {
    control: Option<ControlPlane>,
    clock: SystemClock,
    /// Keys of [`CredentialMemo`] digests.
    memo_keys: (u64, u64),
    l1: Rc<RefCell<FastMap<usize, L1Cache>>>,
    /// Bearer tokens already verified, per instance.
    verified: RefCell<FastMap<usize, VerifiedCache>>,
    /// Misses this worker has asked the control plane about and not heard back on: a
    /// second request for the same key waits for the first one's answer instead of
    /// sending its own (per-core coalescing; the control plane coalesces across cores).
    pending: PendingMisses,
}

/// Misses in flight by (instance, key).
type PendingMisses = RefCell<HashMap<(usize, CacheKey), Rc<RefCell<Pending>>>>;

/// One coalesced miss, as its followers see it.
enum Pending {
    Waiting,
    Answered(TokenReply),
    /// The request that asked went away before the answer (its connection closed): a
    /// follower asks again itself.
    Abandoned,
}

/// Held by the request that asks the control plane; whatever happens to that request,
/// its followers are released.
struct Asking<'a> {
    pending: &'a PendingMisses,
    key: (usize, CacheKey),
    slot: Rc<RefCell<Pending>>,
}

impl Asking<'_> {
    fn answer(self, reply: &TokenReply) {
        *self.slot.borrow_mut() = Pending::Answered(reply.clone());
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        let mut slot = self.slot.borrow_mut();
        if matches!(*slot, Pending::Waiting) {
            *slot = Pending::Abandoned;
        }
        self.pending.borrow_mut().remove(&self.key);
    }
}

/// What the access phase decided.
pub enum Granted {
    /// Put this value in the upstream token header.
    Token(Rc<CachedToken>),
    /// Forward once, not cached (no usable lifetime).
    Uncached(Arc<IssuedToken>),
    /// Forward the request's verified bearer token, with what its claims give.
    AsSent(Option<Rc<TokenFacts>>),
    /// Refused, but proxied as the `anonymous` consumer, with no token.
    Anonymous,
}

impl Granted {
    pub fn header_value(&self) -> Option<&[u8]> {
        match self {
            Granted::Token(t) => Some(t.header_value()),
            Granted::Uncached(t) => Some(&t.header_value),
            Granted::AsSent(_) | Granted::Anonymous => None,
        }
    }

    /// What the token's claims give this request.
    pub fn facts(&self) -> Option<&TokenFacts> {
        match self {
            Granted::Token(t) => t.facts(),
            Granted::Uncached(t) => t.facts.as_deref(),
            Granted::AsSent(facts) => facts.as_deref(),
            Granted::Anonymous => None,
        }
    }

    /// The claim header lines for the upstream, each ending in CRLF; empty for none.
    pub fn claim_headers(&self) -> &[u8] {
        self.facts().map(|f| &f.lines[..]).unwrap_or_default()
    }

    /// `consumer_claim`'s value in the token, when it has one.
    pub fn consumer_subject(&self) -> Option<&str> {
        self.facts().and_then(|f| f.consumer.as_deref())
    }

    /// `credential_claim`'s value in the token, when it has one.
    pub fn credential(&self) -> Option<&str> {
        self.facts().and_then(|f| f.credential.as_deref())
    }
}

/// Where a cache lookup ([`WorkerAuth::cached_step`]) got to.
enum Step {
    /// Answered without waiting (a cache hit).
    Done(Granted),
    /// The control plane has to be asked about this key.
    Ask { key: CacheKey, ask: Ask },
}

/// What stands for the client id in the cache key of an introspected token (the token
/// stands for the secret): no client id is empty, so no credentials share the key.
const INTROSPECTED: &[u8] = b"";

/// A question for the control plane about these caller credentials.
fn credentials_ask(id: &[u8], secret: &[u8], values: &ClientValues) -> Ask {
    Ask::Credentials { id: id.into(), secret: secret.into(), values: values.clone() }
}

/// The caller's client credentials, from the first configured location that has them.
fn find_credentials<'b>(
    sources: &Sources<'_>,
    instance: &Instance,
    buf: &'b mut CredentialBuf,
) -> Result<credentials::Credentials<'b>, AuthError> {
    match credentials::find(sources, &instance.cc_order, buf) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(AuthError::Unauthorized(
            AuthReason::NoCredentials,
            "no suitable authorization credentials were provided".into(),
        )),
        Err(_) => Err(AuthError::Unauthorized(AuthReason::CredentialsTooLong, "the credentials are too long".into())),
    }
}

/// Two random 64-bit keys: the std hasher's outputs under its own random keys (a
/// keyed PRF of fixed inputs), so getting them cannot fail.
fn random_keys() -> (u64, u64) {
    let state = RandomState::new();
    (state.hash_one(0u8), state.hash_one(1u8))
}

fn key_of(instance: &Arc<Instance>) -> usize {
    Arc::as_ptr(instance) as usize
}

impl WorkerAuth {
    pub fn new(control: Option<ControlPlane>) -> WorkerAuth {
        let clock = control.as_ref().map_or_else(SystemClock::new, ControlPlane::clock);
        WorkerAuth {
            control,
            clock,
            memo_keys: random_keys(),
            l1: Rc::default(),
            verified: RefCell::new(FastMap::default()),
            pending: RefCell::new(HashMap::new()),
        }
    }

    /// Drops the caches of instances that are no longer configured.
    pub fn retain(&self, live: &[Arc<Instance>]) {
        let keep: Vec<usize> = live.iter().map(key_of).collect();
        self.l1.borrow_mut().retain(|k, _| keep.contains(k));
        self.verified.borrow_mut().retain(|k, _| keep.contains(k));
    }

    /// The [`CredentialMemo`] digest of an `Authorization` value.
    fn memo_tag(&self, value: &[u8]) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.memo_keys.0, self.memo_keys.1);
        h.write(value);
        h.finish128().as_u128()
    }

    /// Runs the access phase for `instance`, noting what it did in `note`. `at` is a
    /// recent clock reading (the request's start), for the cache's clock.
    pub async fn authenticate(
        &self,
        instance: &Arc<Instance>,
        sources: &Sources<'_>,
        bearer: Option<&[u8]>,
        note: &mut AuthNote,
        memo: &mut CredentialMemo,
        at: Instant,
    ) -> Result<Granted, AuthError> {
        let cfg = &instance.config;
        if let Some(token) = bearer {
            // Kong's order: a JWT is verified when `bearer` is on; anything else, or
            // every token when only `introspection` is, is introspected.
            // (The token is only scanned when both are on.)
            let jwt = || token.iter().filter(|&&b| b == b'.').count() == 2;
            if cfg.uses(AuthMethod::Bearer) && (!cfg.uses(AuthMethod::Introspection) || jwt()) {
                let verified = self.verify_bearer(instance, token, note).await.map(Granted::AsSent)?;
                self.proven(instance, sources, token, &verified, note)?;
                if cfg.introspect_jwt_tokens {
                    // `introspect_jwt_tokens`: the signature holds, and the IdP must still
                    // vouch for the token, so a revoked one is refused (as soon as the
                    // cached answer is refreshed, or at once with `cache_introspection: false`).
                    return self.introspected(instance, token, sources.introspection_values, note, at).await;
                }
                return Ok(verified);
            }
            if cfg.uses(AuthMethod::Introspection) {
                let granted = self.introspected(instance, token, sources.introspection_values, note, at).await?;
                self.proven(instance, sources, token, &granted, note)?;
                return Ok(granted);
            }
        }
        if !cfg.uses(AuthMethod::ClientCredentials) {
            return Err(AuthError::Unauthorized(AuthReason::NoCredentials, "no bearer token was provided".into()));
        }
        match self.client_credentials(instance, sources, note, memo, at)? {
            Step::Done(granted) => Ok(granted),
            Step::Ask { key, ask } => {
                let reply = self.ask(instance, key, ask).await;
                apply(&self.l1, self.clock.now(), instance, key, reply)
            }
        }
    }

    /// The `introspection` method: the IdP's word on the caller's `token`, cached per
    /// worker (and on the control plane) under a digest of the token like a token for
    /// credentials, and refreshed ahead of its expiry the same way, so a revoked token
    /// stops within a refresh. Each of the token's refusals is an invalid token (401).
    /// `values` (what the caller adds to the introspection request) are part of the key:
    /// an answer stands only for the request that was asked.
    async fn introspected(
        &self,
        instance: &Arc<Instance>,
        token: &[u8],
        values: Option<&ClientValues>,
        note: &mut AuthNote,
        at: Instant,
    ) -> Result<Granted, AuthError> {
        let now = self.clock.at(at);
        let values = values.filter(|v| !v.is_empty());
        let extra = values.map(ClientValues::key_input);
        let key = instance.prefix.key(INTROSPECTED, token, extra.as_deref());
        let invalid = |reason: String| AuthError::Unauthorized(AuthReason::InvalidToken, reason);
        let step = self.cached_step(
            instance,
            key,
            now,
            note,
            || invalid("the IdP said recently that this token is not active".into()),
            || {
                // A token decoded from the query or a body can hold anything; one that
                // is not printable ASCII is no token (RFC 6749 A.12), and one the IdP
                // vouched for anyway would reach the upstream's header as it is.
                if super::cache::token_is_printable(token) {
                    Ok(Ask::Introspect { token: token.into(), values: values.cloned().unwrap_or_default() })
                } else {
                    Err(invalid("the bearer token holds characters other than printable ASCII".into()))
                }
            },
        )?;
        match step {
            Step::Done(granted) => Ok(granted),
            Step::Ask { key, ask } => {
                let reply = self.ask(instance, key, ask).await;
                apply(&self.l1, self.clock.now(), instance, key, reply).map_err(|e| match e {
                    AuthError::Unauthorized(_, reason) => invalid(reason),
                    other => other,
                })
            }
        }
    }

    /// What this worker's L1 cache holds for `key`, as a step: a hit answers (and one
    /// due for refresh asks `ask()` again in the background); a recent refusal is
    /// `rejected()`, a recent verdict its 403; a miss is `ask()` for the control plane.
    /// The closures run only on those paths, never on a plain hit.
    fn cached_step(
        &self,
        instance: &Arc<Instance>,
        key: CacheKey,
        now: Secs,
        note: &mut AuthNote,
        rejected: impl FnOnce() -> AuthError,
        ask: impl FnOnce() -> Result<Ask, AuthError>,
    ) -> Result<Step, AuthError> {
        let lookup = {
            let mut caches = self.l1.borrow_mut();
            caches.entry(key_of(instance)).or_insert_with(|| L1Cache::new(L1_CAPACITY)).get(&key, now)
        };
        match lookup {
            Lookup::Fresh(token) => {
                note.cache = Some(CacheUse::Hit);
                Ok(Step::Done(Granted::Token(token)))
            }
            Lookup::RefreshDue(token) => {
                note.cache = Some(CacheUse::HitRefreshing);
                self.refresh_in_background(instance, key, ask()?);
                Ok(Step::Done(Granted::Token(token)))
            }
            Lookup::Rejected => {
                note.cache = Some(CacheUse::NegativeHit);
                Err(rejected())
            }
            Lookup::Forbidden(kind) => {
                note.cache = Some(CacheUse::NegativeHit);
                Err(AuthError::Forbidden(kind, kind.forbidden_text().into()))
            }
            Lookup::Expired | Lookup::Miss => {
                note.cache = Some(CacheUse::Miss);
                Ok(Step::Ask { key, ask: ask()? })
            }
        }
    }

    /// The client credentials flow up to where it has to wait for the IdP: all of a
    /// cache hit. Not `async`, so that the decoded credentials' scratch buffer lives on
    /// this frame only: in the caller's future it would be moved with it on every
    /// request, and zeroed even when the memo makes decoding unnecessary.
    fn client_credentials(
        &self,
        instance: &Arc<Instance>,
        sources: &Sources<'_>,
        note: &mut AuthNote,
        memo: &mut CredentialMemo,
        at: Instant,
    ) -> Result<Step, AuthError> {
        let now = self.clock.at(at);
        let no_values = ClientValues::default();
        let client_values = sources.client_values.unwrap_or(&no_values);
        // The header is the first location, the grant-type guard lets it through, and its
        // value is what this connection sent last time for this instance: the key is the
        // one remembered. Only the paths that go to the IdP (a refresh, a miss) need the
        // credentials themselves; they decode them then.
        // With values from the request in the token call, the key depends on more than
        // the Authorization header, so the memo is not used.
        let header_first = instance.cc_order.first() == Some(&Location::Header)
            && !credentials::header_location_disabled(sources.grant_type, sources.x_grant_type)
            && !instance.config.takes_client_token_values();
        let tag = match sources.authorization {
            Some(value) if header_first => Some(self.memo_tag(value)),
            _ => None,
        };
        let remembered = match (tag, &memo.entry) {
            (Some(tag), Some((of, known, key)))
                if *known == tag && *of == instance.id && (memo.kept_id || !note.keep_client_id) =>
            {
                Some(*key)
            }
            _ => None,
        };
        // Each path that decodes the credentials has its own scratch buffer, so that a
        // remembered key costs no zeroing of one.
        let key = match remembered {
            Some(key) => {
                if note.keep_client_id {
                    note.client_id.extend_from_slice(&memo.client_id);
                }
                key
            }
            None => {
                let mut buf = CredentialBuf::new();
                let creds = find_credentials(sources, instance, &mut buf)?;
                if note.keep_client_id {
                    note.client_id.extend_from_slice(creds.id);
                }
                let extra = (!client_values.is_empty()).then(|| client_values.key_input());
                let key = instance.prefix.key(creds.id, creds.secret, extra.as_deref());
                memo.entry = match tag {
                    Some(tag) if creds.location == Location::Header => Some((instance.id, tag, key)),
                    _ => None,
                };
                memo.client_id.clear();
                memo.kept_id = note.keep_client_id && memo.entry.is_some();
                if memo.kept_id {
                    memo.client_id.extend_from_slice(creds.id);
                }
                key
            }
        };
        // Only the paths that go to the IdP (a refresh, a miss) decode the credentials,
        // each into a scratch buffer of its own.
        self.cached_step(
            instance,
            key,
            now,
            note,
            || {
                AuthError::Unauthorized(
                    AuthReason::CredentialsRejected,
                    "the IdP refused these credentials recently".into(),
                )
            },
            || {
                let mut buf = CredentialBuf::new();
                let creds = find_credentials(sources, instance, &mut buf)?;
                Ok(credentials_ask(creds.id, creds.secret, client_values))
            },
        )
    }

    /// The control plane's answer for a missed key, asked once per worker however many
    /// of its requests miss on the key together.
    ///
    /// Boxed, on this rare path only: held inline, the wait for the IdP would make every
    /// request's future, and each copy of it, a few kilobytes larger.
    fn ask<'a>(
        &'a self,
        instance: &'a Arc<Instance>,
        key: CacheKey,
        ask: Ask,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = TokenReply> + 'a>> {
        Box::pin(self.ask_control(instance, key, ask))
    }

    async fn ask_control(&self, instance: &Arc<Instance>, key: CacheKey, ask: Ask) -> TokenReply {
        let Some(control) = &self.control else {
            return TokenReply::Unavailable { reason: "no control plane".into() };
        };
        let pk = (key_of(instance), key);
        loop {
            let waiting = self.pending.borrow().get(&pk).cloned();
            let Some(slot) = waiting else { break };
            // Another request of this worker is asking: wait for its answer. Polled like
            // the control plane's replies (see `control::poll_reply`), on this thread only.
            loop {
                match &*slot.borrow() {
                    Pending::Waiting => {}
                    Pending::Answered(reply) => return reply.clone(),
                    Pending::Abandoned => break,
                }
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        let slot = Rc::new(RefCell::new(Pending::Waiting));
        self.pending.borrow_mut().insert(pk, slot.clone());
        let asking = Asking { pending: &self.pending, key: pk, slot };
        let reply = control.token(instance.clone(), key, ask).await;
        asking.answer(&reply);
        reply
    }

    fn refresh_in_background(&self, instance: &Arc<Instance>, key: CacheKey, ask: Ask) {
        let Some(control) = self.control.clone() else { return };
        let instance = instance.clone();
        let introspected = matches!(ask, Ask::Introspect { .. });
        let (clock, l1) = (self.clock, self.l1.clone());
        monoio::spawn(async move {
            let reply = control.token(instance.clone(), key, ask).await;
            let now = clock.now();
            match reply {
                TokenReply::Issued(_) => {
                    let _ = apply(&l1, now, &instance, key, reply);
                }
                TokenReply::Rejected { .. } | TokenReply::Forbidden { .. } if introspected => {
                    // The IdP no longer vouches for the caller's token: it stops here.
                    if let Some(cache) = l1.borrow_mut().get_mut(&key_of(&instance)) {
                        cache.remove(&key);
                    }
                    let _ = apply(&l1, now, &instance, key, reply);
                }
                _ => {
                    if let Some(cache) = l1.borrow_mut().get_mut(&key_of(&instance)) {
                        // Keep serving the valid token; ask again in a few seconds.
                        cache.refresh_failed(&key, now + 5);
                    }
                }
            }
        });
    }

    /// Proof of possession for a caller's `token`, once the token itself holds
    /// (`granted`, whose facts carry what it is bound to): the TLS client certificate
    /// ([`certificate_bound`]), then the DPoP proof.
    ///
    /// `proof_of_possession_dpop` off: no proof.
    /// `optional`: only a bound token, or one sent with the `DPoP` scheme, needs a proof.
    /// `strict`: every token needs one. A proof is checked on every request (it is made
    /// for one), never cached.
    fn proven(
        &self,
        instance: &Instance,
        sources: &Sources<'_>,
        token: &[u8],
        granted: &Granted,
        note: &mut AuthNote,
    ) -> Result<(), AuthError> {
        let cfg = &instance.config;
        certificate_bound(cfg, sources, granted)?;
        if cfg.dpop == PopMode::Off {
            return Ok(());
        }
        let jkt = granted.facts().and_then(|f| f.jkt.as_deref());
        let refuse = |why: &str| AuthError::Unauthorized(AuthReason::InvalidDpopProof, why.to_string());
        let Some(input) = sources.dpop else {
            return Err(refuse("the request offers nothing to check a DPoP proof against"));
        };
        if cfg.dpop == PopMode::Optional && jkt.is_none() && !input.dpop_scheme {
            return Ok(());
        }
        if !input.dpop_scheme {
            return Err(refuse("the token was not sent with the DPoP scheme"));
        }
        let Some(proof) = input.proof else {
            return Err(refuse("the request must carry exactly one DPoP header"));
        };
        let Some(jkt) = jkt else {
            return Err(refuse("the token is not bound to a key (no cnf.jkt)"));
        };
        let req = jose::dpop::ProofRequest {
            method: input.method,
            scheme: input.scheme,
            host: input.host,
            path: input.path,
            token,
            jkt,
            now: self.clock.unix_now().max(0) as u64,
            lifetime: cfg.dpop_proof_lifetime,
            nonces: instance.dpop_nonces.as_ref(),
        };
        let issued = jose::dpop::verify_proof(proof, &req).map_err(|e| match e {
            jose::dpop::DpopError::Nonce => AuthError::Unauthorized(AuthReason::UseDpopNonce, e.reason().to_string()),
            e => refuse(e.reason()),
        })?;
        note.dpop_nonce_aging = issued.is_some_and(|at| req.now.saturating_sub(at) > cfg.dpop_proof_lifetime / 2);
        Ok(())
    }

    async fn verify_bearer(
        &self,
        instance: &Arc<Instance>,
        token: &[u8],
        note: &mut AuthNote,
    ) -> Result<Option<Rc<TokenFacts>>, AuthError> {
        let unix_now = self.clock.unix_now().max(0) as u64;
        let leeway = instance.config.leeway.as_secs();
        if let Some(facts) = self.verified.borrow().get(&key_of(instance)).and_then(|c| c.get(token, unix_now, leeway))
        {
            note.bearer_cached = Some(true);
            return Ok(facts.cloned());
        }
        note.bearer_cached = Some(false);
        let Ok(text) = std::str::from_utf8(token) else {
            return Err(AuthError::Unauthorized(AuthReason::InvalidToken, "the bearer token is not text".into()));
        };
        let state = instance.state.load_full();
        // The decoded payload the claims are read from in place; a second for the retry
        // after a key refresh, as the first result still borrows the first.
        let (mut payload, mut retry_payload) = (Vec::new(), Vec::new());
        let mut result = jose::verify_into(text, &state.keys, &state.policy, unix_now, &mut payload);
        if let Err(e) = &result {
            if e.wants_key_refresh() {
                if let Some(control) = &self.control {
                    // (Boxed, as `ask`: this wait is rare.)
                    if Box::pin(control.refresh_keys(instance.clone())).await || !state.ready {
                        let state = instance.state.load_full();
                        result = jose::verify_into(text, &state.keys, &state.policy, unix_now, &mut retry_payload);
                    }
                }
            }
        }
        let verified = result
            .map_err(|e| AuthError::Unauthorized(AuthReason::InvalidToken, format!("invalid token: {}", e.reason())))?;
        if let Some(kind) = instance.config.unmet_requirement(Some(&verified)) {
            return Err(AuthError::Forbidden(kind, kind.forbidden_text().into()));
        }
        let facts: Option<Rc<TokenFacts>> =
            crate::oidc::claim_headers::facts_for(&instance.config, &verified).map(Rc::new);
        self.verified
            .borrow_mut()
            .entry(key_of(instance))
            .or_insert_with(|| VerifiedCache::new(VERIFIED_CAPACITY))
            .insert_with(token, verified.exp().unwrap_or(u64::MAX), unix_now, facts.clone());
        Ok(facts)
    }
}

/// Records a control-plane answer in the worker's L1 cache and turns it into a decision.
fn apply(
    l1: &RefCell<FastMap<usize, L1Cache>>,
    now: u64,
    instance: &Arc<Instance>,
    key: CacheKey,
    reply: TokenReply,
) -> Result<Granted, AuthError> {
    match reply {
        TokenReply::Issued(t) => match t.lifetime {
            Some(lifetime) if now < lifetime.expires_at(t.fetched_at) => {
                let token = Rc::new(
                    CachedToken::new(t.header_value.to_vec().into_boxed_slice(), lifetime, t.fetched_at)
                        .with_facts(t.facts.clone()),
                );
                l1.borrow_mut()
                    .entry(key_of(instance))
                    .or_insert_with(|| L1Cache::new(L1_CAPACITY))
                    .insert(key, token.clone());
                Ok(Granted::Token(token))
            }
            Some(_) => Err(AuthError::Unavailable("the issued token expired before use".into())),
            None => Ok(Granted::Uncached(t)),
        },
        TokenReply::Rejected { reason } => {
            if let Some(neg) = instance.config.cache_ttl_neg.filter(|d| !d.is_zero()) {
                l1.borrow_mut()
                    .entry(key_of(instance))
                    .or_insert_with(|| L1Cache::new(L1_CAPACITY))
                    .insert_rejected(key, now + neg.as_secs());
            }
            Err(AuthError::Unauthorized(AuthReason::CredentialsRejected, reason))
        }
        TokenReply::Invalid { reason } => Err(AuthError::Unauthorized(AuthReason::IssuedTokenInvalid, reason)),
        TokenReply::Forbidden { kind, until } => {
            if let Some(until) = until {
                l1.borrow_mut()
                    .entry(key_of(instance))
                    .or_insert_with(|| L1Cache::new(L1_CAPACITY))
                    .insert_forbidden(key, until, kind);
            }
            Err(AuthError::Forbidden(kind, kind.forbidden_text().into()))
        }
        TokenReply::Unavailable { reason } => Err(AuthError::Unavailable(reason)),
    }
}

/// `proof_of_possession_mtls` (RFC 8705 §3): a caller's token bound to a TLS client
/// certificate (`cnf.x5t#S256` in the token, or in its introspection answer) passes only
/// on a connection whose handshake presented that certificate. `optional`: an unbound
/// token passes as before; `strict`: every token must be bound. The handshake proved
/// that the client holds the certificate's key; here only the thumbprints are compared.
fn certificate_bound(cfg: &OidcConfig, sources: &Sources<'_>, granted: &Granted) -> Result<(), AuthError> {
    if cfg.mtls == PopMode::Off {
        return Ok(());
    }
    let refuse = |why: &str| AuthError::Unauthorized(AuthReason::CertificateMismatch, why.to_string());
    let Some(bound) = granted.facts().and_then(|f| f.x5t.as_deref()) else {
        return match cfg.mtls {
            PopMode::Strict => Err(refuse("the token is not bound to a client certificate (no cnf.x5t#S256)")),
            _ => Ok(()),
        };
    };
    let Some(presented) = sources.client_cert else {
        return Err(refuse("the token is bound to a client certificate, and the connection presented none"));
    };
    if bound != &presented[..] {
        return Err(refuse("the token is bound to another client certificate"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Command;
    use crate::oidc::credentials::Sources;

    fn instance() -> Arc<Instance> {
        let yaml = "_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n    issuer: http://127.0.0.1:1/\n    auth_methods: [client_credentials]\n";
        let cfg = crate::config::load_str(yaml, "t.yaml", &|_| None).unwrap();
        let (oidc, _) = crate::oidc::config::compile(&cfg.plugins[0], "t.yaml").unwrap();
        Arc::new(Instance::new(Arc::new(oidc)))
    }

    fn sources(authorization: &[u8]) -> Sources<'_> {
        Sources {
            authorization: Some(authorization),
            grant_type: None,
            x_grant_type: None,
            query: None,
            content_type: None,
            body: None,
            client_values: None,
            introspection_values: None,
            dpop: None,
            client_cert: None,
        }
    }

    /// One request of `id:secret` on a connection of its own.
    async fn once(auth: &WorkerAuth, inst: &Arc<Instance>, note: &mut AuthNote) -> Result<Granted, AuthError> {
        auth.authenticate(
            inst,
            &sources(b"Basic id:secret"),
            None,
            note,
            &mut CredentialMemo::default(),
            Instant::now(),
        )
        .await
    }

    /// Runs `f` on a monoio runtime with timers (the legacy driver works everywhere).
    fn run<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap().block_on(f)
    }

    async fn settle() {
        monoio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    fn token_commands(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Command>) -> Vec<Command> {
        std::iter::from_fn(|| rx.try_recv().ok()).filter(|c| matches!(c, Command::Token { .. })).collect()
    }

    #[test]
    fn concurrent_misses_on_one_worker_send_one_request_and_share_its_answer() {
        let (control, mut rx) = ControlPlane::detached(SystemClock::new());
        let auth = Rc::new(WorkerAuth::new(Some(control)));
        let inst = instance();
        run(async move {
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let (auth, inst) = (auth.clone(), inst.clone());
                    monoio::spawn(async move {
                        match once(&auth, &inst, &mut AuthNote::default()).await {
                            Err(AuthError::Unavailable(reason)) => reason,
                            _ => panic!("expected the control plane's answer"),
                        }
                    })
                })
                .collect();
            settle().await;
            let mut asked = token_commands(&mut rx);
            assert_eq!(asked.len(), 1, "ten misses, one request to the control plane");
            let Command::Token { reply, .. } = asked.remove(0) else { unreachable!() };
            let _ = reply.send(TokenReply::Unavailable { reason: "idp down".into() });
            for h in handles {
                assert_eq!(h.await, "idp down");
            }
            assert!(auth.pending.borrow().is_empty());
        });
    }

    #[test]
    fn a_cached_403_verdict_is_noted_as_a_negative_hit() {
        let (control, mut rx) = ControlPlane::detached(SystemClock::new());
        let auth = Rc::new(WorkerAuth::new(Some(control)));
        let inst = instance();
        run(async move {
            let asking = {
                let (auth, inst) = (auth.clone(), inst.clone());
                monoio::spawn(async move {
                    let mut note = AuthNote::default();
                    let r = once(&auth, &inst, &mut note).await;
                    (matches!(r, Err(AuthError::Forbidden(AuthReason::InsufficientScope, _))), note.cache)
                })
            };
            settle().await;
            let Command::Token { reply, .. } = token_commands(&mut rx).remove(0) else { unreachable!() };
            let _ = reply.send(TokenReply::Forbidden { kind: AuthReason::InsufficientScope, until: Some(u64::MAX) });
            assert_eq!(asking.await, (true, Some(CacheUse::Miss)));
            let mut note = AuthNote::default();
            let r = once(&auth, &inst, &mut note).await;
            assert!(matches!(r, Err(AuthError::Forbidden(AuthReason::InsufficientScope, _))));
            assert_eq!(note.cache, Some(CacheUse::NegativeHit), "counted as a refusal from the cache");
            assert!(token_commands(&mut rx).is_empty(), "the IdP was not asked again");
        });
    }

    #[test]
    fn a_follower_asks_itself_when_the_asking_request_goes_away() {
        let (control, mut rx) = ControlPlane::detached(SystemClock::new());
        let auth = Rc::new(WorkerAuth::new(Some(control)));
        let inst = instance();
        run(async move {
            let leader = {
                let (auth, inst) = (auth.clone(), inst.clone());
                async move { once(&auth, &inst, &mut AuthNote::default()).await.is_ok() }
            };
            let follower = {
                let (auth, inst) = (auth.clone(), inst.clone());
                monoio::spawn(async move {
                    settle().await;
                    matches!(once(&auth, &inst, &mut AuthNote::default()).await, Err(AuthError::Unavailable(_)))
                })
            };
            // The leader asks, then is dropped (its connection closed) before the answer.
            let timed_out = monoio::time::timeout(std::time::Duration::from_millis(60), leader).await.is_err();
            assert!(timed_out);
            settle().await;
            let asked = token_commands(&mut rx);
            assert_eq!(asked.len(), 2, "the follower sent its own request");
            for c in asked {
                let Command::Token { reply, .. } = c else { unreachable!() };
                let _ = reply.send(TokenReply::Unavailable { reason: "x".into() });
            }
            assert!(follower.await, "the follower got an answer instead of hanging");
        });
    }

    /// Puts a fresh `Bearer <name>` under `key` in `auth`'s cache for `inst`.
    fn cache_token(auth: &WorkerAuth, inst: &Arc<Instance>, key: CacheKey, name: &str) {
        let lifetime = crate::oidc::cache::Lifetime { ttl: 3600, refresh_after: 3000 };
        let token = Rc::new(CachedToken::bearer(name.as_bytes(), lifetime, auth.clock.now()));
        auth.l1.borrow_mut().entry(key_of(inst)).or_insert_with(|| L1Cache::new(16)).insert(key, token);
    }

    /// What one request gets: the upstream header value, or `None` for any refusal.
    fn ask(auth: &WorkerAuth, inst: &Arc<Instance>, s: &Sources<'_>, memo: &mut CredentialMemo) -> Option<String> {
        let mut note = AuthNote::default();
        match run(auth.authenticate(inst, s, None, &mut note, memo, Instant::now())) {
            Ok(g) => Some(String::from_utf8_lossy(g.header_value()?).into_owned()),
            Err(_) => None,
        }
    }

    #[test]
    fn a_repeated_authorization_header_is_answered_from_the_connection_memo_and_only_then() {
        let auth = WorkerAuth::new(None);
        let inst = instance();
        let basic = b"Basic aWQ6c2VjcmV0"; // id:secret
        let real = inst.prefix.key(b"id", b"secret", None);
        cache_token(&auth, &inst, real, "real");
        let mut memo = CredentialMemo::default();
        assert_eq!(ask(&auth, &inst, &sources(basic), &mut memo).as_deref(), Some("Bearer real"));
        assert!(memo.entry.is_some(), "header credentials are remembered");

        // Point the memo at another cached key: an answer from that key proves the memo
        // was used, not the header decoded again.
        let planted = inst.prefix.key(b"planted", b"x", None);
        cache_token(&auth, &inst, planted, "planted");
        let plant = |memo: &mut CredentialMemo| memo.entry.as_mut().unwrap().2 = planted;
        plant(&mut memo);
        assert_eq!(ask(&auth, &inst, &sources(basic), &mut memo).as_deref(), Some("Bearer planted"));

        // Another header on the same connection: decoded, and remembered instead.
        plant(&mut memo);
        let other = inst.prefix.key(b"other", b"pw", None);
        cache_token(&auth, &inst, other, "other");
        assert_eq!(ask(&auth, &inst, &sources(b"Basic b3RoZXI6cHc="), &mut memo).as_deref(), Some("Bearer other"));
        assert_eq!(memo.entry.as_ref().unwrap().2, other);

        // The same header for another instance (say, after a reload): not from the memo.
        let _ = ask(&auth, &inst, &sources(basic), &mut memo);
        plant(&mut memo);
        let inst2 = instance();
        cache_token(&auth, &inst2, inst2.prefix.key(b"id", b"secret", None), "second");
        cache_token(&auth, &inst2, planted, "planted");
        assert_eq!(ask(&auth, &inst2, &sources(basic), &mut memo).as_deref(), Some("Bearer second"));

        // A Grant-Type guard that turns the header off is honoured with a memo in place.
        let _ = ask(&auth, &inst, &sources(basic), &mut memo);
        plant(&mut memo);
        let guarded = Sources { grant_type: Some(b"password"), ..sources(basic) };
        assert_eq!(ask(&auth, &inst, &guarded, &mut memo), None, "no credentials: refused");

        // With the access log on (the log wants the client id), a memo made without the
        // id is not used: the credentials are decoded...
        let _ = ask(&auth, &inst, &sources(basic), &mut memo);
        plant(&mut memo);
        let logged = |memo: &mut CredentialMemo| {
            let mut note = AuthNote { keep_client_id: true, ..AuthNote::default() };
            let g = run(auth.authenticate(&inst, &sources(basic), None, &mut note, memo, Instant::now()));
            (g.ok().and_then(|g| g.header_value().map(|v| String::from_utf8_lossy(v).into_owned())), note.client_id)
        };
        assert_eq!(logged(&mut memo), (Some("Bearer real".into()), b"id".to_vec()));
        // ...and remembered with the id: the next request is answered from the memo,
        // with the id for the log.
        plant(&mut memo);
        assert_eq!(logged(&mut memo), (Some("Bearer planted".into()), b"id".to_vec()));
    }

    #[test]
    fn memo_tags_are_keyed_per_worker_and_tell_one_byte_apart() {
        let (a, b) = (WorkerAuth::new(None), WorkerAuth::new(None));
        assert_ne!(a.memo_keys, b.memo_keys);
        assert_ne!(a.memo_keys.0, a.memo_keys.1);
        let value = b"Basic aWQ6c2VjcmV0".to_vec();
        assert_eq!(a.memo_tag(&value), a.memo_tag(&value.clone()));
        assert_ne!(a.memo_tag(&value), b.memo_tag(&value));
        for i in 0..value.len() {
            let mut other = value.clone();
            other[i] ^= 1;
            assert_ne!(a.memo_tag(&value), a.memo_tag(&other));
        }
        assert_ne!(a.memo_tag(&value), a.memo_tag(&value[..value.len() - 1]));
    }

    #[test]
    fn the_memo_never_holds_the_header_or_the_secret() {
        let auth = WorkerAuth::new(None);
        let inst = instance();
        cache_token(&auth, &inst, inst.prefix.key(b"id", b"secret", None), "t");
        let mut memo = CredentialMemo::default();
        let _ = ask(&auth, &inst, &sources(b"Basic aWQ6c2VjcmV0"), &mut memo);
        // With the access log on too, which keeps the client id.
        let mut note = AuthNote { keep_client_id: true, ..AuthNote::default() };
        let basic = sources(b"Basic aWQ6c2VjcmV0");
        let _ = run(auth.authenticate(&inst, &basic, None, &mut note, &mut memo, Instant::now()));
        let (_, tag, key) = memo.entry.as_ref().unwrap();
        assert_eq!(memo.client_id, b"id");
        let mut held = tag.to_be_bytes().to_vec();
        held.extend_from_slice(key.as_bytes());
        held.extend_from_slice(&memo.client_id);
        for needle in [&b"secret"[..], b"aWQ6c2VjcmV0", b"c2VjcmV0"] {
            assert!(!held.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[test]
    fn a_refresh_due_on_a_remembered_key_is_still_started() {
        let (control, mut rx) = ControlPlane::detached(SystemClock::new());
        let auth = WorkerAuth::new(Some(control));
        let inst = instance();
        let basic = b"Basic aWQ6c2VjcmV0";
        let key = inst.prefix.key(b"id", b"secret", None);
        cache_token(&auth, &inst, key, "first");
        let mut memo = CredentialMemo::default();
        assert_eq!(ask(&auth, &inst, &sources(basic), &mut memo).as_deref(), Some("Bearer first"));
        assert!(memo.entry.is_some());
        // The same key, now due for a refresh.
        let due = crate::oidc::cache::Lifetime { ttl: 3600, refresh_after: 0 };
        let token = Rc::new(CachedToken::bearer(b"due", due, auth.clock.now()));
        auth.l1.borrow_mut().get_mut(&key_of(&inst)).unwrap().insert(key, token);
        let mut note = AuthNote::default();
        let g = run(async {
            let g = auth.authenticate(&inst, &sources(basic), None, &mut note, &mut memo, Instant::now()).await;
            settle().await;
            g
        });
        assert_eq!(g.ok().and_then(|g| g.header_value().map(<[u8]>::to_vec)).as_deref(), Some(&b"Bearer due"[..]));
        assert_eq!(note.cache, Some(CacheUse::HitRefreshing));
        assert_eq!(token_commands(&mut rx).len(), 1, "the caller that claimed the refresh asked for it");
    }
}
