//! The control plane: everything that talks to the identity provider.
//!
//! One thread runs a small tokio runtime with reqwest (rustls on ring). It owns every
//! call to the IdP: discovery, key sets, token endpoint calls. Workers never block on
//! the IdP and never open connections to it; on a token cache miss they send a
//! [`Command`] and await the reply, so the misses of every core for one credential meet
//! here and cost one IdP call:
//!
//! - **L2 and single flight.** Issued tokens are kept here per (plugin instance, cache
//!   key) until their refresh time; a miss for a key already being fetched joins that
//!   fetch instead of starting another.
//! - **A cap on IdP calls in flight.** At most [`ControlOptions::max_in_flight`] token
//!   and introspection calls wait on one issuer at a time; a miss past that is answered
//!   503 at once (counted as `shed`) instead of queueing another call on an IdP that is
//!   already behind. A flood of made-up credentials costs the IdP a bounded number of
//!   concurrent requests, as an Envoy cluster's circuit breaker bounds its pending ones.
//! - **Discovery and keys.** Each plugin instance's discovery document and JWKS are
//!   loaded when its snapshot is installed, retried with backoff while the IdP is down
//!   (the proxy starts regardless), and published in the instance's `ArcSwap`ped
//!   [`IdpState`]. An unknown `kid` refetches the keys at most once per
//!   `rediscovery_lifetime`; a failed refetch keeps the last good set.
//!
//! State here is owned by the control thread (`Rc`/`RefCell` on a tokio `LocalSet`).
//! Every IdP call is counted with its outcome and latency in [`ControlMetrics`].

pub mod idp;

use crate::oidc::claim_headers::TokenFacts;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::jose::{self, KeySet};
use crate::metrics::{ControlMetrics, IdpEndpoint, IdpOutcome, JwksRefresh, TokenSource};
use crate::oidc::cache::{bearer_value, token_lifetime, CacheKey, Clock, Lifetime, Secs, SplitMix64, SystemClock};
use crate::oidc::config::ClientAuthMethod;
use crate::oidc::credentials::{encode_client_secret_basic, push_form_pair, ClientValues};
use crate::oidc::instance::{policy_for, url_host, IdpState, Instance};
use idp::{ClientOptions, IdpClient, IdpError, Introspected, TokenOutcome};

/// A token the IdP issued, ready for the upstream header.
pub struct IssuedToken {
    /// The upstream header value (`Bearer <token>`).
    pub header_value: Arc<[u8]>,
    /// The claim header lines and consumer this token gives each request, if any.
    pub facts: Option<Arc<TokenFacts>>,
    /// On the shared clock.
    pub fetched_at: Secs,
    /// `None`: forward this once, do not cache it (no usable lifetime).
    pub lifetime: Option<Lifetime>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

/// What a token request came to.
#[derive(Debug, Clone)]
pub enum TokenReply {
    Issued(Arc<IssuedToken>),
    /// The IdP refused the credentials (401 downstream).
    Rejected {
        reason: String,
    },
    /// The token came back but does not verify (401 downstream).
    Invalid {
        reason: String,
    },
    /// Scopes or audience not met (403 downstream). The verdict holds for the token it
    /// was made on: until that token's refresh time (`until`, on the shared clock), when
    /// the IdP may grant other scopes; `None` when the token had no usable lifetime.
    Forbidden {
        kind: crate::error::AuthReason,
        until: Option<Secs>,
    },
    /// The IdP could not be asked: down, slow, 5xx, not discovered yet (503).
    Unavailable {
        reason: String,
    },
}

/// Requests from workers.
pub enum Command {
    /// Start loading discovery and keys for these instances (a snapshot was installed).
    Watch(Vec<Arc<Instance>>),
    /// The token for a cache key: one issued for caller credentials, or a caller's own
    /// token introspected.
    Token { instance: Arc<Instance>, key: CacheKey, ask: Ask, reply: oneshot::Sender<TokenReply> },
    /// Refetch the instance's keys (an unknown `kid`), within the cooldown; the reply
    /// says whether the key set changed.
    RefreshKeys { instance: Arc<Instance>, reply: oneshot::Sender<bool> },
    /// Run the upstreams' active health checks of whatever this holds, from now on.
    CheckHealth(crate::snapshot::SharedSnapshot),
}

/// What the control plane asks the IdP for a cache key.
pub enum Ask {
    /// A token for these caller credentials (the client credentials grant).
    Credentials {
        id: Box<[u8]>,
        secret: Box<[u8]>,
        /// `token_post_args_client` / `token_headers_client` values (part of the key).
        values: ClientValues,
    },
    /// What the IdP says of this caller's token (the `introspection` method): the
    /// answer is that same token, with its claims' facts.
    Introspect { token: Box<[u8]>, values: ClientValues },
}

/// The workers' handle on the control plane.
#[derive(Clone)]
pub struct ControlPlane {
    tx: mpsc::UnboundedSender<Command>,
    clock: SystemClock,
    metrics: Arc<ControlMetrics>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlPlane")
    }
}

/// How the control plane is run (command-line settings).
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// `--idp-ca-file`: CA certificates (PEM) trusted for IdP connections besides the
    /// system roots, for a private IdP's CA.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// `--idp-max-in-flight`: token and introspection calls that may wait on one issuer
    /// at once; a miss past it is refused with 503.
    pub max_in_flight: usize,
}

impl ControlOptions {
    /// The default of `--idp-max-in-flight`: Envoy's default circuit-breaker limit on a
    /// cluster's pending requests, far above what a healthy IdP has in flight for one
    /// proxy (a call per credential per token lifetime), far below what would exhaust
    /// the proxy's or the IdP's connections.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
}

impl Default for ControlOptions {
    fn default() -> Self {
        ControlOptions { extra_ca_pem: None, max_in_flight: ControlOptions::DEFAULT_MAX_IN_FLIGHT }
    }
}

impl ControlPlane {
    /// Starts the control thread with the default options. `clock` is the process's
    /// shared cache clock.
    pub fn start(clock: SystemClock) -> std::io::Result<ControlPlane> {
        ControlPlane::start_with(clock, ControlOptions::default())
    }

    /// [`ControlPlane::start`] with these options.
    pub fn start_with(clock: SystemClock, options: ControlOptions) -> std::io::Result<ControlPlane> {
        idp::install_crypto_provider();
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let metrics = Arc::new(ControlMetrics::default());
        let counting = metrics.clone();
        std::thread::Builder::new().name("ringgate-control".into()).spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, serve(rx, clock, counting, options));
        })?;
        Ok(ControlPlane { tx, clock, metrics })
    }

    pub fn clock(&self) -> SystemClock {
        self.clock
    }

    /// A handle whose commands the caller receives instead of a control thread (tests
    /// that play the control plane's part).
    #[cfg(test)]
    pub(crate) fn detached(clock: SystemClock) -> (ControlPlane, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ControlPlane { tx, clock, metrics: Arc::default() }, rx)
    }

    /// The control plane's counters (IdP calls, key refreshes, token requests).
    pub fn metrics(&self) -> Arc<ControlMetrics> {
        self.metrics.clone()
    }

    /// Starts loading discovery and keys for `instances`.
    pub fn watch(&self, instances: Vec<Arc<Instance>>) {
        if !instances.is_empty() {
            let _ = self.tx.send(Command::Watch(instances));
        }
    }

    /// Starts the active health checks of the snapshots `shared` will hold (once per
    /// server: the checker follows every reload itself).
    pub fn check_health(&self, shared: crate::snapshot::SharedSnapshot) {
        let _ = self.tx.send(Command::CheckHealth(shared));
    }

    /// Asks for a token; resolves when the control plane answers.
    pub async fn token(&self, instance: Arc<Instance>, key: CacheKey, ask: Ask) -> TokenReply {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Token { instance, key, ask, reply };
        if self.tx.send(cmd).is_err() {
            return TokenReply::Unavailable { reason: "the control plane has stopped".into() };
        }
        poll_reply(rx)
            .await
            .unwrap_or(TokenReply::Unavailable { reason: "the control plane dropped the request".into() })
    }

    /// Asks for the instance's keys to be refetched; resolves to whether they changed.
    pub async fn refresh_keys(&self, instance: Arc<Instance>) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::RefreshKeys { instance, reply }).is_err() {
            return false;
        }
        poll_reply(rx).await.unwrap_or(false)
    }
}

/// Waits for a reply from the control thread by polling it every millisecond.
///
/// Why not await the receiver: that would hand this worker's waker to the control
/// thread, and waking a monoio task from another thread needs monoio's cross-thread
/// wake-up machinery (an eventfd and atomics on every park of every worker). Replies are
/// only awaited on a cache miss — once per credential per token lifetime — so a
/// millisecond of polling there is cheaper than a cost on every request.
async fn poll_reply<T>(mut rx: oneshot::Receiver<T>) -> Option<T> {
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(oneshot::error::TryRecvError::Empty) => monoio::time::sleep(Duration::from_millis(1)).await,
            Err(oneshot::error::TryRecvError::Closed) => return None,
        }
    }
}

type FlightKey = (usize, CacheKey);

/// An L2 entry: an answer served to every asker until it lapses.
enum Settled {
    Issued(Arc<IssuedToken>),
    Forbidden { kind: crate::error::AuthReason, until: Secs },
}

impl Settled {
    /// What a worker gets at `now`; `None` once the entry should be fetched again.
    fn reply(&self, now: Secs) -> Option<TokenReply> {
        match self {
            Settled::Issued(t) if t.lifetime.is_some_and(|l| now < l.refresh_at(t.fetched_at)) => {
                Some(TokenReply::Issued(t.clone()))
            }
            Settled::Forbidden { kind, until } if now < *until => {
                Some(TokenReply::Forbidden { kind: *kind, until: Some(*until) })
            }
            _ => None,
        }
    }

    /// Whether the entry is of no use any more at `now`.
    fn lapsed(&self, now: Secs) -> bool {
        match self {
            Settled::Issued(t) => t.lifetime.is_none_or(|l| now >= l.expires_at(t.fetched_at)),
            Settled::Forbidden { until, .. } => now >= *until,
        }
    }
}

#[derive(Default)]
struct State {
    metrics: Arc<ControlMetrics>,
    /// `--idp-ca-file`: CA certificates trusted for IdP connections, PEM.
    extra_ca_pem: Option<Arc<[u8]>>,
    clients: HashMap<ClientOptions, IdpClient>,
    /// Issued tokens by (instance address, key), kept until their refresh time, and 403
    /// verdicts, kept as long as the token they were made on.
    l2: HashMap<FlightKey, Settled>,
    /// Fetches in flight and who waits for them.
    flights: HashMap<FlightKey, Vec<oneshot::Sender<TokenReply>>>,
    /// Of those, how many each issuer has (an issuer leaves the map when its last one ends).
    in_flight: HashMap<String, usize>,
    max_in_flight: usize,
    /// Instances whose discovery is being loaded, by address.
    loading: HashMap<usize, Weak<Instance>>,
    /// Discoveries in progress, by instance address: later askers wait for the first.
    discovering: HashMap<usize, Rc<tokio::sync::Notify>>,
    /// When each instance's discovery last failed (shared clock), so that during an
    /// outage a miss is answered at once instead of waiting for another attempt.
    last_failure: HashMap<usize, Secs>,
}

fn addr(instance: &Arc<Instance>) -> usize {
    Arc::as_ptr(instance) as usize
}

async fn serve(
    mut rx: mpsc::UnboundedReceiver<Command>,
    clock: SystemClock,
    metrics: Arc<ControlMetrics>,
    options: ControlOptions,
) {
    // Shared by every client's options (a clone per IdP call is a reference count).
    let extra_ca_pem = options.extra_ca_pem.map(Arc::from);
    let max_in_flight = options.max_in_flight;
    let state = Rc::new(RefCell::new(State { metrics, extra_ca_pem, max_in_flight, ..State::default() }));
    {
        // Drop what no one can use any more: expired L2 entries, dead instances.
        let state = state.clone();
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let now = clock.now();
                let mut s = state.borrow_mut();
                // Instances replaced by a reload: forget them and their tokens, so a new
                // instance that happens to get the same address starts clean.
                let dead: Vec<usize> =
                    s.loading.iter().filter(|(_, w)| w.strong_count() == 0).map(|(a, _)| *a).collect();
                s.loading.retain(|_, w| w.strong_count() > 0);
                s.l2.retain(|(a, _), t| !dead.contains(a) && !t.lapsed(now));
                for a in &dead {
                    s.last_failure.remove(a);
                }
            }
        });
    }
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Watch(instances) => {
                for inst in instances {
                    let a = addr(&inst);
                    if state.borrow().loading.contains_key(&a) {
                        continue;
                    }
                    state.borrow_mut().loading.insert(a, Arc::downgrade(&inst));
                    tokio::task::spawn_local(load_until_ready(state.clone(), Arc::downgrade(&inst), clock));
                }
            }
            Command::Token { instance, key, ask, reply } => {
                let fk = (addr(&instance), key);
                let now = clock.now();
                let cached = state.borrow().l2.get(&fk).and_then(|e| e.reply(now));
                if let Some(answer) = cached {
                    state.borrow().metrics.token_request(TokenSource::L2Hit);
                    let _ = reply.send(answer);
                    continue;
                }
                let mut s = state.borrow_mut();
                if let Some(waiters) = s.flights.get_mut(&fk) {
                    waiters.push(reply);
                    s.metrics.token_request(TokenSource::Joined);
                    continue;
                }
                let issuer = instance.config.issuer.clone();
                let max = s.max_in_flight;
                let busy = s.in_flight.entry(issuer.clone()).or_default();
                if *busy >= max {
                    s.metrics.token_request(TokenSource::Shed);
                    let reason = format!("{max} calls to the IdP are already in flight");
                    let _ = reply.send(TokenReply::Unavailable { reason });
                    continue;
                }
                *busy += 1;
                s.flights.insert(fk, vec![reply]);
                s.metrics.token_request(TokenSource::Fetched);
                drop(s);
                let state = state.clone();
                tokio::task::spawn_local(async move {
                    let result = match &ask {
                        Ask::Credentials { id, secret, values } => {
                            fetch_token(&state, &instance, id, secret, values, clock).await
                        }
                        Ask::Introspect { token, values } => {
                            introspect_caller_token(&state, &instance, token, values, clock).await
                        }
                    };
                    let mut s = state.borrow_mut();
                    match &result {
                        TokenReply::Issued(tok) if tok.lifetime.is_some() => {
                            s.l2.insert(fk, Settled::Issued(tok.clone()));
                        }
                        TokenReply::Forbidden { kind, until: Some(until) } => {
                            s.l2.insert(fk, Settled::Forbidden { kind: *kind, until: *until });
                        }
                        _ => {}
                    }
                    if let Some(busy) = s.in_flight.get_mut(&issuer) {
                        *busy -= 1;
                        if *busy == 0 {
                            s.in_flight.remove(&issuer);
                        }
                    }
                    for w in s.flights.remove(&fk).unwrap_or_default() {
                        let _ = w.send(result.clone());
                    }
                });
            }
            Command::CheckHealth(shared) => {
                tokio::task::spawn_local(crate::upstream::health::run_checker(shared));
            }
            Command::RefreshKeys { instance, reply } => {
                let state = state.clone();
                tokio::task::spawn_local(async move {
                    let changed = refresh_keys(&state, &instance, clock).await;
                    let _ = reply.send(changed);
                });
            }
        }
    }
}

fn client_for(state: &Rc<RefCell<State>>, inst: &Instance) -> Result<IdpClient, IdpError> {
    let c = &inst.config;
    let opts = ClientOptions {
        timeout: c.timeout,
        ssl_verify: c.ssl_verify,
        http_proxy: c.http_proxy.clone(),
        https_proxy: c.https_proxy.clone(),
        no_proxy: (!c.no_proxy.is_empty()).then(|| c.no_proxy.join(",")),
        extra_ca_pem: state.borrow().extra_ca_pem.clone(),
    };
    if let Some(client) = state.borrow().clients.get(&opts) {
        return Ok(client.clone());
    }
    let client = IdpClient::new(&opts)?;
    state.borrow_mut().clients.insert(opts, client.clone());
    Ok(client)
}

/// Loads discovery and keys, retrying with backoff (1 s doubling to 30 s) until it
/// works or the instance is gone (replaced by a reload).
async fn load_until_ready(state: Rc<RefCell<State>>, weak: Weak<Instance>, clock: SystemClock) {
    let mut delay = Duration::from_secs(1);
    loop {
        let Some(inst) = weak.upgrade() else { return };
        match ensure_discovered(&state, &inst, clock, true).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(issuer = %inst.config.issuer, error = %e, retry_in_s = delay.as_secs(), "IdP discovery failed");
            }
        }
        drop(inst);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Makes sure the instance's discovery and keys are loaded: at most one attempt per
/// instance at a time (others wait for it), and — unless `force` — none within a second
/// of a failed one, so an outage answers misses at once.
async fn ensure_discovered(
    state: &Rc<RefCell<State>>,
    inst: &Arc<Instance>,
    clock: SystemClock,
    force: bool,
) -> Result<(), String> {
    let last_error =
        |inst: &Instance| inst.state.load().last_error.clone().unwrap_or_else(|| "IdP discovery failed".into());
    if inst.state.load().ready {
        return Ok(());
    }
    let a = addr(inst);
    let running = state.borrow().discovering.get(&a).cloned();
    if let Some(notify) = running {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !inst.state.load().ready {
            let _ = tokio::time::timeout(inst.config.timeout.saturating_mul(2), notified).await;
        }
        return if inst.state.load().ready { Ok(()) } else { Err(last_error(inst)) };
    }
    if !force && state.borrow().last_failure.get(&a).is_some_and(|&t| clock.now() < t + 1) {
        return Err(last_error(inst));
    }
    let notify = Rc::new(tokio::sync::Notify::new());
    state.borrow_mut().discovering.insert(a, notify.clone());
    let result = discover(state, inst).await;
    state.borrow_mut().discovering.remove(&a);
    notify.notify_waiters();
    match result {
        Ok(()) => {
            state.borrow_mut().last_failure.remove(&a);
            Ok(())
        }
        Err(e) => {
            state.borrow_mut().last_failure.insert(a, clock.now());
            let mut next = IdpState::clone_from_arc(&inst.state.load());
            next.last_error = Some(e.to_string());
            inst.state.store(Arc::new(next));
            Err(e.to_string())
        }
    }
}

impl IdpState {
    /// A copy to modify and publish (the key set and policy are shared, not copied).
    fn clone_from_arc(s: &IdpState) -> IdpState {
        IdpState {
            ready: s.ready,
            issuer: s.issuer.clone(),
            realm: s.realm.clone(),
            token_endpoint: s.token_endpoint.clone(),
            auth_method: s.auth_method,
            introspection_endpoint: s.introspection_endpoint.clone(),
            introspection_auth: s.introspection_auth,
            keys: s.keys.clone(),
            policy: s.policy.clone(),
            last_error: s.last_error.clone(),
        }
    }
}

/// Fetches discovery (unless `using_pseudo_issuer`) and the key sets, and publishes them.
async fn discover(state: &Rc<RefCell<State>>, inst: &Arc<Instance>) -> Result<(), IdpError> {
    let client = client_for(state, inst)?;
    let metrics = state.borrow().metrics.clone();
    let c = &inst.config;
    let mut issuer = c.issuer.clone();
    let mut token_endpoint = c.token_endpoint.clone();
    let mut jwks_uris: Vec<String> = Vec::new();
    let mut supported: Vec<String> = Vec::new();
    let mut introspection_endpoint = c.introspection_endpoint.clone();
    let mut introspection_supported: Vec<String> = Vec::new();
    if !c.using_pseudo_issuer {
        let d = discovery(&metrics, &client, &c.discovery_url, &c.discovery_headers).await?;
        issuer = d.issuer;
        if token_endpoint.is_none() {
            token_endpoint = d.token_endpoint;
        }
        if introspection_endpoint.is_none() {
            introspection_endpoint = d.introspection_endpoint;
        }
        jwks_uris.extend(c.jwks_endpoint.is_none().then_some(d.jwks_uri).flatten());
        supported = d.token_endpoint_auth_methods_supported;
        introspection_supported = d.introspection_endpoint_auth_methods_supported;
    }
    jwks_uris.extend(c.jwks_endpoint.iter().chain(&c.extra_jwks_uris).cloned());
    let keys = fetch_keys(&metrics, &client, &jwks_uris).await?;
    let auth_method = c.configured_client_auth().unwrap_or_else(|| pick_auth_method(&supported));
    // Discovery often lists no methods for introspection; the token endpoint's then stand.
    let introspection_auth = c.introspection_endpoint_auth_method.or(c.configured_client_auth()).unwrap_or_else(|| {
        pick_auth_method(if introspection_supported.is_empty() { &supported } else { &introspection_supported })
    });
    let next = IdpState {
        ready: true,
        realm: url_host(&issuer),
        policy: Arc::new(policy_for(c, &issuer)),
        issuer,
        token_endpoint,
        auth_method,
        introspection_endpoint,
        introspection_auth,
        keys: Arc::new(keys),
        last_error: None,
    };
    tracing::info!(issuer = %next.issuer, keys = next.keys.len(), "IdP discovered");
    inst.state.store(Arc::new(next));
    Ok(())
}

/// SPEC §1 step 4: the first of basic, post, jwt that discovery lists, else basic.
fn pick_auth_method(supported: &[String]) -> ClientAuthMethod {
    for (name, m) in [
        ("client_secret_basic", ClientAuthMethod::ClientSecretBasic),
        ("client_secret_post", ClientAuthMethod::ClientSecretPost),
        ("client_secret_jwt", ClientAuthMethod::ClientSecretJwt),
    ] {
        if supported.iter().any(|s| s == name) {
            return m;
        }
    }
    ClientAuthMethod::ClientSecretBasic
}

/// How a failed call counts.
fn outcome_of(e: &IdpError) -> IdpOutcome {
    match e {
        IdpError::Unreachable { .. } => IdpOutcome::Unreachable,
        IdpError::Timeout { .. } => IdpOutcome::Timeout,
        IdpError::Status { status, .. } => IdpOutcome::of_status(*status),
        IdpError::Invalid { .. } => IdpOutcome::Invalid,
        IdpError::Config(_) => IdpOutcome::Error,
    }
}

/// Fetches a discovery document, counting the call.
async fn discovery(
    metrics: &ControlMetrics,
    client: &IdpClient,
    url: &str,
    headers: &[(String, String)],
) -> Result<idp::Discovery, IdpError> {
    let started = Instant::now();
    let result = client.discovery(url, headers).await;
    let outcome = result.as_ref().map_or_else(outcome_of, |_| IdpOutcome::Ok);
    metrics.idp_call(IdpEndpoint::Discovery, outcome, started.elapsed());
    result
}

async fn fetch_keys(metrics: &ControlMetrics, client: &IdpClient, uris: &[String]) -> Result<KeySet, IdpError> {
    let mut parts = Vec::with_capacity(uris.len());
    for uri in uris {
        let started = Instant::now();
        let fetched = client.get(uri, &[]).await.and_then(|body| {
            KeySet::from_jwks(&body).map_err(|e| IdpError::Invalid {
                host: url_host(uri),
                what: "JWKS",
                reason: e.reason().into(),
            })
        });
        let outcome = fetched.as_ref().map_or_else(outcome_of, |_| IdpOutcome::Ok);
        metrics.idp_call(IdpEndpoint::Jwks, outcome, started.elapsed());
        let set = fetched?;
        for s in set.skipped() {
            tracing::warn!(jwks = %url_host(uri), kid = ?s.kid, reason = ?s.reason, "JWKS key skipped");
        }
        parts.push(set);
    }
    Ok(KeySet::merged(parts))
}

/// Refetches the key sets if the cooldown allows; publishes them when they changed.
/// A failed refetch keeps the last good set.
async fn refresh_keys(state: &Rc<RefCell<State>>, inst: &Arc<Instance>, clock: SystemClock) -> bool {
    let metrics = state.borrow().metrics.clone();
    let refreshed = refetch_keys(state, inst, &metrics, clock).await;
    metrics.jwks_refresh(refreshed);
    refreshed == JwksRefresh::Ok
}

async fn refetch_keys(
    state: &Rc<RefCell<State>>,
    inst: &Arc<Instance>,
    metrics: &ControlMetrics,
    clock: SystemClock,
) -> JwksRefresh {
    let now_unix = clock.unix_now().max(0) as u64;
    if !inst.claim_key_refresh(now_unix) {
        return JwksRefresh::Cooldown;
    }
    let current = inst.state.load_full();
    if !current.ready {
        return if discover(state, inst).await.is_ok() { JwksRefresh::Ok } else { JwksRefresh::Failed };
    }
    let Ok(client) = client_for(state, inst) else { return JwksRefresh::Failed };
    let mut uris = Vec::new();
    if !inst.config.using_pseudo_issuer {
        match discovery(metrics, &client, &inst.config.discovery_url, &inst.config.discovery_headers).await {
            Ok(d) => uris.extend(inst.config.jwks_endpoint.is_none().then_some(d.jwks_uri).flatten()),
            Err(e) => {
                tracing::warn!(issuer = %inst.config.issuer, error = %e, "rediscovery failed; keeping the current keys");
                return JwksRefresh::Failed;
            }
        }
    }
    uris.extend(inst.config.jwks_endpoint.iter().chain(&inst.config.extra_jwks_uris).cloned());
    match fetch_keys(metrics, &client, &uris).await {
        Ok(keys) => {
            let mut next = IdpState::clone_from_arc(&current);
            next.keys = Arc::new(keys);
            tracing::info!(issuer = %next.issuer, keys = next.keys.len(), "IdP keys refreshed");
            inst.state.store(Arc::new(next));
            JwksRefresh::Ok
        }
        Err(e) => {
            tracing::warn!(issuer = %inst.config.issuer, error = %e, "JWKS refetch failed; keeping the current keys");
            JwksRefresh::Failed
        }
    }
}

/// One token endpoint call for caller credentials, with verification of what comes back.
async fn fetch_token(
    state: &Rc<RefCell<State>>,
    inst: &Arc<Instance>,
    id: &[u8],
    secret: &[u8],
    values: &ClientValues,
    clock: SystemClock,
) -> TokenReply {
    if let Err(reason) = ensure_discovered(state, inst, clock, false).await {
        return TokenReply::Unavailable { reason };
    }
    let mut st = inst.state.load_full();
    let Some(endpoint) = st.token_endpoint.clone() else {
        return TokenReply::Unavailable { reason: "the IdP has no token endpoint".into() };
    };
    let client = match client_for(state, inst) {
        Ok(c) => c,
        Err(e) => return TokenReply::Unavailable { reason: e.to_string() },
    };
    let c = &inst.config;
    // The caller's values replace configured ones of the same name (Kong's rule); a
    // caller's `scope` replaces `scopes`.
    let caller_post: Vec<(&str, &[u8])> =
        values.post.iter().map(|(i, v)| (c.token_post_args_client[*i].as_str(), &v[..])).collect();
    let caller_sets = |name: &str| caller_post.iter().any(|(n, _)| *n == name);
    let scope = (!c.scopes.is_empty() && !caller_sets("scope")).then(|| c.scopes.join(" "));
    let mut form = String::with_capacity(256);
    push_form_pair(&mut form, b"grant_type", b"client_credentials");
    let mut headers = with_caller_headers(&c.token_headers, &c.token_headers_client, values);
    authenticate_client(st.auth_method, id, secret, &endpoint, clock, &mut form, &mut headers);
    if let Some(scope) = &scope {
        push_form_pair(&mut form, b"scope", scope.as_bytes());
    }
    push_with_caller_post(&mut form, &c.token_post_args, &caller_post);
    let started = Instant::now();
    // The token's `expires_in` counts from when the IdP issued it, which is no earlier
    // than this: the cache counts from here, so its entry never outlives the token.
    let asked_at = clock.now();
    let called = client.token(&endpoint, form, &headers, &c.token_headers_replay).await;
    let counted = match &called {
        Ok(TokenOutcome::Issued(_)) => IdpOutcome::Ok,
        Ok(TokenOutcome::Rejected { status, .. }) => IdpOutcome::of_status(*status),
        Err(e) => outcome_of(e),
    };
    state.borrow().metrics.idp_call(IdpEndpoint::Token, counted, started.elapsed());
    let outcome = match called {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(issuer = %st.issuer, error = %e, "token endpoint call failed");
            return TokenReply::Unavailable { reason: e.to_string() };
        }
    };
    let resp = match outcome {
        TokenOutcome::Issued(r) => r,
        TokenOutcome::Rejected { status, error } => {
            let reason = match error {
                Some(e) => format!("the IdP refused the credentials ({status} {e})"),
                None => format!("the IdP refused the credentials ({status})"),
            };
            return TokenReply::Rejected { reason };
        }
    };
    let unix_now = clock.unix_now();
    let mut jwt_exp = None;
    let denied;
    let mut facts = None;
    // The token's decoded payload, which its claims are read from in place (a second for
    // the retry after a key refresh, which the first result still borrows from).
    let (mut payload, mut retry_payload) = (Vec::new(), Vec::new());
    if resp.access_token.split('.').count() == 3 && !c.ignore_signature_client_credentials {
        let now = unix_now.max(0) as u64;
        let mut verified = jose::verify_into(&resp.access_token, &st.keys, &st.policy, now, &mut payload);
        if matches!(&verified, Err(e) if e.wants_key_refresh()) && refresh_keys(state, inst, clock).await {
            st = inst.state.load_full();
            verified = jose::verify_into(&resp.access_token, &st.keys, &st.policy, now, &mut retry_payload);
        }
        match verified {
            Ok(v) => {
                jwt_exp = v.exp().map(|e| e as i64);
                denied = c.unmet_requirement(Some(&v));
                facts = crate::oidc::claim_headers::facts_for(c, &v).map(Arc::new);
            }
            Err(e) => {
                return TokenReply::Invalid { reason: format!("the issued token does not verify: {}", e.reason()) }
            }
        }
    } else if c.needs_claims() {
        // An opaque token, and a setting reads its claims: the IdP is asked for them, as
        // Kong does. With no answer to go by, it meets a requirement only when there is
        // none.
        match introspect(state, inst, &st, &client, &resp.access_token, &ClientValues::default(), clock).await {
            Ok(Some(claims)) => {
                jwt_exp = claims.exp().map(|e| e as i64);
                denied = c.unmet_requirement(Some(&claims));
                facts = crate::oidc::claim_headers::facts_for(c, &claims).map(Arc::new);
            }
            Ok(None) => denied = c.unmet_requirement(None),
            Err(reply) => return reply,
        }
    } else {
        // An opaque token (or one `ignore_signature` leaves unparsed) that nothing reads.
        denied = None;
    }
    let lifetime = if c.cache_tokens {
        token_lifetime(&inst.ttl, resp.expires_in, jwt_exp, unix_now, &mut SplitMix64::from_entropy())
    } else {
        None
    };
    let fetched_at = asked_at;
    if let Some(kind) = denied {
        return TokenReply::Forbidden { kind, until: lifetime.map(|l| l.refresh_at(fetched_at)) };
    }
    let facts = with_replayed(facts, &c.token_headers_prefix, &resp.replayed);
    let header_value = bearer_value(resp.access_token.as_bytes()).into();
    TokenReply::Issued(Arc::new(IssuedToken { header_value, facts, fetched_at, lifetime }))
}

/// `token_headers_replay`: the token endpoint's headers, as `<prefix><name>: value`
/// lines for the caller's response, added to the token's facts (kept with it in the
/// caches, so a cache hit replays them too, as Kong's cached headers are). A value that
/// could split a header line is not replayed.
fn with_replayed(
    facts: Option<Arc<TokenFacts>>,
    prefix: &str,
    replayed: &[(String, Vec<u8>)],
) -> Option<Arc<TokenFacts>> {
    let mut lines = Vec::new();
    for (name, value) in replayed {
        if !crate::oidc::claim_headers::header_safe(value) {
            tracing::warn!(header = %name, "a token endpoint header with a control character was not replayed");
            continue;
        }
        lines.extend_from_slice(prefix.as_bytes());
        lines.extend_from_slice(name.as_bytes());
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(value);
        lines.extend_from_slice(b"\r\n");
    }
    if lines.is_empty() {
        return facts;
    }
    let mut f = facts.map(Arc::unwrap_or_clone).unwrap_or_default();
    let mut downstream = f.downstream_lines.into_vec();
    downstream.extend_from_slice(&lines);
    f.downstream_lines = downstream.into_boxed_slice();
    Some(Arc::new(f))
}

/// The configured request headers with the caller's (`values.headers`, indexes into
/// `names`) in place of configured ones of the same name, Kong's rule.
fn with_caller_headers(
    configured: &[(String, String)],
    names: &[String],
    values: &ClientValues,
) -> Vec<(String, String)> {
    let caller_sets = |n: &str| values.headers.iter().any(|(i, _)| names[*i].eq_ignore_ascii_case(n));
    let mut headers: Vec<(String, String)> = configured.iter().filter(|(n, _)| !caller_sets(n)).cloned().collect();
    for (i, v) in &values.headers {
        headers.push((names[*i].clone(), String::from_utf8_lossy(v).into_owned()));
    }
    headers
}

/// Adds the configured post arguments to `form`, except those the caller sets, then the
/// caller's.
fn push_with_caller_post(form: &mut String, configured: &[(String, String)], caller: &[(&str, &[u8])]) {
    for (k, v) in configured.iter().filter(|(k, _)| !caller.iter().any(|(n, _)| n == k)) {
        push_form_pair(form, k.as_bytes(), v.as_bytes());
    }
    for (k, v) in caller {
        push_form_pair(form, k.as_bytes(), v);
    }
}

/// The `introspection` method: what the IdP says of a caller's `token`, as a reply
/// whose token is that same one. Not active (or expired) is `Rejected` (negatively cached
/// with `cache_ttl_neg`, like refused credentials); a requirement it does not meet,
/// `Forbidden`; the answer is kept until the token's `exp`, within the cache TTLs.
/// `values` are what the caller adds to the introspection request.
async fn introspect_caller_token(
    state: &Rc<RefCell<State>>,
    inst: &Arc<Instance>,
    token: &[u8],
    values: &ClientValues,
    clock: SystemClock,
) -> TokenReply {
    if let Err(reason) = ensure_discovered(state, inst, clock, false).await {
        return TokenReply::Unavailable { reason };
    }
    let st = inst.state.load_full();
    let client = match client_for(state, inst) {
        Ok(c) => c,
        Err(e) => return TokenReply::Unavailable { reason: e.to_string() },
    };
    let Ok(text) = std::str::from_utf8(token) else {
        return TokenReply::Rejected { reason: "the bearer token is not text".into() };
    };
    let asked_at = clock.now();
    let claims = match introspect(state, inst, &st, &client, text, values, clock).await {
        Ok(Some(claims)) => claims,
        Ok(None) => return TokenReply::Unavailable { reason: "the IdP has no introspection endpoint".into() },
        Err(TokenReply::Invalid { reason }) => return TokenReply::Rejected { reason },
        Err(other) => return other,
    };
    let unix_now = clock.unix_now();
    if claims.exp().is_some_and(|exp| exp <= unix_now.max(0) as u64) {
        return TokenReply::Rejected { reason: "the IdP says the token has expired".into() };
    }
    let c = &inst.config;
    let jwt_exp = claims.exp().map(|e| e as i64);
    // `cache_introspection: false`: no lifetime, so neither cache level keeps the answer
    // and the next request asks again.
    let lifetime = if c.cache_introspection {
        token_lifetime(&inst.ttl, None, jwt_exp, unix_now, &mut SplitMix64::from_entropy())
    } else {
        None
    };
    if let Some(kind) = c.unmet_requirement(Some(&claims)) {
        return TokenReply::Forbidden { kind, until: lifetime.map(|l| l.refresh_at(asked_at)) };
    }
    let facts = crate::oidc::claim_headers::facts_for(c, &claims).map(Arc::new);
    let header_value = bearer_value(token).into();
    TokenReply::Issued(Arc::new(IssuedToken { header_value, facts, fetched_at: asked_at, lifetime }))
}

/// RFC 7662: the claims the IdP vouches for of an opaque `token` it issued, asked with
/// the plugin's own client (`client_id[0]`, `client_secret[0]`). `Ok(None)` when it cannot
/// be asked (no endpoint, no own client); `Err` is the reply the caller gets instead: 503
/// when the IdP could not answer, 401 when it refused the client or says the token is
/// not active. The answer is kept with the token, so this runs once per issued token.
/// A caller's `values` (`introspection_post_args_client[_headers]`,
/// `introspection_headers_client`) replace configured ones of the same name.
async fn introspect(
    state: &Rc<RefCell<State>>,
    inst: &Arc<Instance>,
    st: &IdpState,
    client: &IdpClient,
    token: &str,
    values: &ClientValues,
    clock: SystemClock,
) -> Result<Option<jose::Claims<'static>>, TokenReply> {
    let c = &inst.config;
    // A configured `Authorization` authenticates the request in place of the plugin's
    // client (Kong's rule for introspection), e.g. a bearer token the IdP issued for it.
    let authorized = c.introspection_authorized();
    let own = c.own_client().filter(|_| !authorized);
    let Some(endpoint) = st.introspection_endpoint.as_deref().filter(|_| authorized || own.is_some()) else {
        tracing::warn!(
            issuer = %st.issuer,
            "an opaque token cannot be introspected without an introspection endpoint and the plugin's own \
             client_id and client_secret (or a configured Authorization); the settings that need its claims refuse it"
        );
        return Ok(None);
    };
    let mut form = String::with_capacity(128 + token.len());
    push_form_pair(&mut form, c.introspection_token_param_name.as_bytes(), token.as_bytes());
    push_form_pair(&mut form, b"token_type_hint", c.introspection_hint.as_bytes());
    let mut headers = with_caller_headers(&c.introspection_headers, &c.introspection_headers_client, values);
    if let Some((id, secret)) = own {
        let (id, secret) = (id.as_bytes(), secret.expose().as_bytes());
        authenticate_client(st.introspection_auth, id, secret, endpoint, clock, &mut form, &mut headers);
    }
    let caller_post: Vec<(&str, &[u8])> =
        values.post.iter().map(|(i, v)| (c.introspection_client_args[*i].name.as_str(), &v[..])).collect();
    push_with_caller_post(&mut form, &c.introspection_post_args, &caller_post);
    let started = Instant::now();
    let called = client.introspect(endpoint, form, &headers, c.introspection_accept).await;
    let counted = match &called {
        Ok(Introspected::Answered(_) | Introspected::Signed(_)) => IdpOutcome::Ok,
        Ok(Introspected::Refused { status }) => IdpOutcome::of_status(*status),
        Err(e) => outcome_of(e),
    };
    state.borrow().metrics.idp_call(IdpEndpoint::Introspection, counted, started.elapsed());
    let claims = match called {
        Err(e) => {
            tracing::warn!(issuer = %st.issuer, error = %e, "introspection call failed");
            return Err(TokenReply::Unavailable { reason: e.to_string() });
        }
        Ok(Introspected::Refused { status }) => {
            tracing::warn!(issuer = %st.issuer, status, "the introspection endpoint refused the plugin's own client");
            let reason = format!("the IdP refused to introspect the issued token ({status})");
            return Err(TokenReply::Invalid { reason });
        }
        // The answer is addressed to the plugin's client (the configuration requires its
        // `client_id` for signed answers).
        Ok(Introspected::Signed(jws)) => {
            let id = c.client_id.first().map_or("", String::as_str);
            signed_answer(state, inst, &jws, id, clock).await.map_err(|reason| {
                tracing::warn!(issuer = %st.issuer, reason = %reason, "a signed introspection answer was refused");
                TokenReply::Unavailable { reason }
            })?
        }
        Ok(Introspected::Answered(claims)) => claims,
    };
    if c.introspection_check_active && !claims.active() {
        return Err(TokenReply::Invalid { reason: "the IdP says the issued token is not active".into() });
    }
    Ok(Some(claims))
}

/// A signed introspection answer (RFC 9701) as the claims it vouches for: the JWS
/// verified against the IdP's keys (refetched once for an unknown `kid`), `typ:
/// token-introspection+jwt`, `iss`, and an `aud` naming `client_id`, with the answer in
/// `token_introspection`. `Err` says why not, never quoting the answer.
async fn signed_answer(
    state: &Rc<RefCell<State>>,
    inst: &Arc<Instance>,
    jws: &str,
    client_id: &str,
    clock: SystemClock,
) -> Result<jose::Claims<'static>, String> {
    let now = clock.unix_now().max(0) as u64;
    let mut payload = Vec::new();
    let mut verify = |st: &IdpState| {
        jose::verify_into(jws, &st.keys, &(*st.policy).clone().for_introspection_answers(), now, &mut payload)
            .map(|v| (v.audience_contains(client_id), v.claim("token_introspection").map(|a| a.to_owned_value())))
    };
    let mut verified = verify(&inst.state.load_full());
    if matches!(&verified, Err(e) if e.wants_key_refresh()) && refresh_keys(state, inst, clock).await {
        verified = verify(&inst.state.load_full());
    }
    let (addressed, answer) =
        verified.map_err(|e| format!("the signed introspection answer does not verify: {}", e.reason()))?;
    if !addressed {
        return Err("the signed introspection answer is addressed to another client".into());
    }
    let answer = answer.ok_or("the signed introspection answer has no token_introspection")?;
    jose::Claims::from_introspection(answer)
        .map(|claims| claims.with_signed_answer(jws))
        .ok_or_else(|| "the signed introspection answer is not an object".into())
}

/// Adds client `id`'s authentication by `method` to a request for `endpoint`: form
/// fields (post, jwt, none) or an `Authorization` header (basic, and the methods the
/// configuration refuses for a request of this kind), which replaces a configured one,
/// as Kong's does: a request never carries two.
fn authenticate_client(
    method: ClientAuthMethod,
    id: &[u8],
    secret: &[u8],
    endpoint: &str,
    clock: SystemClock,
    form: &mut String,
    headers: &mut Vec<(String, String)>,
) {
    match method {
        ClientAuthMethod::ClientSecretPost => {
            push_form_pair(form, b"client_id", id);
            push_form_pair(form, b"client_secret", secret);
        }
        ClientAuthMethod::ClientSecretJwt => {
            let assertion = client_assertion(id, secret, endpoint, clock.unix_now());
            push_form_pair(form, b"client_assertion_type", b"urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
            push_form_pair(form, b"client_assertion", assertion.as_bytes());
        }
        ClientAuthMethod::None => push_form_pair(form, b"client_id", id),
        _ => {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            headers.push(("authorization".into(), encode_client_secret_basic(id, secret)));
        }
    }
}

/// An RFC 7523 §2.2 client assertion signed with the caller's secret (HS256).
fn client_assertion(id: &[u8], secret: &[u8], audience: &str, now: i64) -> String {
    let id = String::from_utf8_lossy(id);
    let mut jti = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti);
    let jti = crate::http::hex_lower(&jti);
    let claims = format!(
        r#"{{"iss":{id},"sub":{id},"aud":{aud},"jti":"{jti}","iat":{now},"exp":{exp}}}"#,
        id = json_string(&id),
        aud = json_string(audience),
        exp = now + 60,
    );
    jose::sign_hs256(claims.as_bytes(), secret)
}

/// A JSON string literal for `s`, escaped as the access log escapes its strings.
pub fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    crate::access_log::push_json_str(&mut out, s.as_bytes());
    // Escaping a `str` yields UTF-8; the fallback never runs.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
