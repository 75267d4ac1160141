//! One worker's balancing over one snapshot: which peer each request of a service goes
//! to, and what the worker has seen of its upstreams' health.
//!
//! Place in the request path: right after routing (the first pick) and again on a
//! retry; after the upstream answered or failed (passive health counts).
//!
//! Everything here belongs to one worker (`Cell`, `RefCell`): round-robin positions
//! per service, orders over the healthy peers of checked services, rebuilt when the
//! health epoch moves (see `health.rs`), and for least-connections upstreams the
//! requests in flight to each peer. Kong's balancers are per worker as well, so a
//! least-connections count is this worker's. Services without health checks or least
//! connections pick straight from the snapshot's order.
//!
//! Latency upstreams keep, per worker, a peak EWMA of each peer's response time (the
//! time from sending a request to its response head): a slower response replaces the
//! average at once, a faster one pulls it down by how long ago the last one was
//! (decay time [`LATENCY_DECAY`]). A request goes to the peer with the lowest average
//! times its requests in flight plus one, per weight. A peer not yet measured counts as
//! the fastest one measured; one not heard from lately is read with its average decayed
//! towards zero, so a peer that was slow once gets tried again rather than starved.
//! (Kong's `latency` is also a peak EWMA; the constants and the scoring here are
//! ringgate's.)
//!
//! Cost: for a plain service, a counter increment and an index; for a checked one,
//! also a relaxed atomic load (the epoch) and a `RefCell` borrow; least connections
//! scans the service's peers (a few, usually) for the lowest load per weight, latency
//! the same with a clock read.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::health::{self, Outcome};
use crate::snapshot::{self, Peer, ServiceTarget, Snapshot};

/// A worker's balancing state for one snapshot.
pub struct Balancer {
    /// Per service, this worker's position in its round-robin order. One counter per
    /// service, so that services taking turns never pin each other to one peer.
    picks: Box<[Cell<usize>]>,
    /// This worker's round-robin orders over the healthy peers of checked services.
    healthy: RefCell<HealthyOrders>,
    /// Per service, per peer: requests in flight (least-connections and latency
    /// services only; empty for the others).
    in_flight: Box<[Box<[Cell<u32>]>]>,
    /// Per service, per peer: the response time average (latency services only).
    latency: Box<[Box<[Cell<Ewma>]>]>,
}

/// How fast a latency average forgets: a sample this long ago weighs 1/e as much.
pub const LATENCY_DECAY: Duration = Duration::from_secs(10);

/// A peak EWMA of response times, in nanoseconds; `at` is when it was last updated
/// (`None`: never measured).
#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    nanos: f64,
    at: Option<Instant>,
}

impl Ewma {
    /// Adds a response time seen at `now`.
    fn record(&mut self, rtt: Duration, now: Instant) {
        let sample = rtt.as_nanos() as f64;
        self.nanos = match self.at {
            Some(at) if sample < self.nanos => {
                let w = decay(now.saturating_duration_since(at));
                self.nanos * w + sample * (1.0 - w)
            }
            // The first sample, or a slower one: taken as it is (the peak).
            _ => sample,
        };
        self.at = Some(now);
    }

    /// The average as of `now`, decayed for the time since the last sample; `None`
    /// when never measured.
    fn read(&self, now: Instant) -> Option<f64> {
        self.at.map(|at| self.nanos * decay(now.saturating_duration_since(at)))
    }
}

/// The weight of an average `elapsed` old.
fn decay(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / LATENCY_DECAY.as_secs_f64()).exp()
}

/// Orders over healthy peers, made in one health epoch.
struct HealthyOrders {
    epoch: u64,
    /// Per service: `Some` for checked ones (empty when none may be picked).
    orders: Vec<Option<Vec<u32>>>,
}

/// A request in flight to a peer of a least-connections service, counted while this
/// lives (dropping it ends the count; for other services it counts nothing).
pub struct InFlight<'a>(Option<&'a Cell<u32>>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            c.set(c.get().saturating_sub(1));
        }
    }
}

impl Balancer {
    /// Worker `worker`'s balancer for `snap`.
    pub fn new(snap: &Snapshot, worker: usize) -> Balancer {
        // Worker k starts at turn k, so that together the workers do not all send their
        // first requests to the same peer.
        let picks = snap.targets.iter().map(|_| Cell::new(worker)).collect();
        // An epoch no order was made in: the first pick of a checked service builds them.
        let healthy = RefCell::new(HealthyOrders { epoch: u64::MAX, orders: Vec::new() });
        let in_flight = snap
            .targets
            .iter()
            .map(|t| {
                if t.least_connections || t.latency {
                    t.peers.iter().map(|_| Cell::new(0)).collect()
                } else {
                    Box::default()
                }
            })
            .collect();
        let latency = snap
            .targets
            .iter()
            .map(|t| if t.latency { t.peers.iter().map(|_| Cell::default()).collect() } else { Box::default() })
            .collect();
        Balancer { picks, healthy, in_flight, latency }
    }

    /// The next pick of service `si`, for [`Balancer::peer_at`].
    #[inline]
    pub fn next_pick(&self, si: usize) -> usize {
        let Some(c) = self.picks.get(si) else { return 0 };
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    }

    /// The peer of pick `n` of service `si` of `snap`, with its index in the service's
    /// peers: the `n`-th of the round-robin order (over the healthy peers, when its
    /// upstream has health checks: rebuilt when any health changed), or for least
    /// connections the peer with the fewest requests in flight for its weight, ties
    /// going to that turn's peer and the ones after it. `None` when there is none.
    ///
    /// For consistent hashing, `key` is the request's hash and the number of peers
    /// already tried for it: the key's peer is the first eligible one at or after its
    /// point on the ring, a retry takes the next distinct one. Without a key (nothing
    /// to hash), the round-robin turn decides.
    #[inline]
    pub fn peer_at<'s>(
        &self,
        snap: &'s Snapshot,
        si: usize,
        n: usize,
        key: Option<(u64, usize)>,
    ) -> Option<(usize, &'s Peer)> {
        let t = snap.targets.get(si)?;
        if !t.checked && !t.least_connections && !t.latency && (key.is_none() || t.ring.is_empty()) {
            return t.peer(n);
        }
        self.pick_slow(snap, t, si, n, key)
    }

    /// [`Balancer::peer_at`] for checked, least-connections or hashed picks, out of
    /// line.
    #[inline(never)]
    fn pick_slow<'s>(
        &self,
        snap: &'s Snapshot,
        t: &'s ServiceTarget,
        si: usize,
        n: usize,
        key: Option<(u64, usize)>,
    ) -> Option<(usize, &'s Peer)> {
        let turn = if t.checked { self.healthy_turn(snap, si, n)? } else { t.peer(n)?.0 };
        let eligible = |i: usize| t.eligible(snap, i);
        if let (Some((hash, tried)), false) = (key, t.ring.is_empty()) {
            let i = on_ring(&t.ring, hash, tried, eligible)?;
            return Some((i, t.peers.get(i)?));
        }
        if t.latency {
            return self.fastest(t, si, turn, eligible);
        }
        if !t.least_connections {
            return Some((turn, t.peers.get(turn)?));
        }
        let loads = self.in_flight.get(si)?;
        // Lowest (in flight + 1) / weight, compared without division.
        let score = |i: usize| (u64::from(loads.get(i).map_or(0, Cell::get)) + 1, u64::from(t.weights[i]));
        let mut best = turn;
        let (mut best_load, mut best_weight) = score(turn);
        for k in 1..t.peers.len() {
            let i = (turn + k) % t.peers.len();
            if !eligible(i) {
                continue;
            }
            let (load, weight) = score(i);
            if load * best_weight < best_load * weight {
                (best, best_load, best_weight) = (i, load, weight);
            }
        }
        Some((best, t.peers.get(best)?))
    }

    /// Pick `n` of checked service `si`'s order over its healthy peers (rebuilt when the
    /// health epoch moved); `None` when the order is empty (every peer down, or the
    /// healthy weight under the upstream's `threshold`).
    fn healthy_turn(&self, snap: &Snapshot, si: usize, n: usize) -> Option<usize> {
        let mut h = self.healthy.borrow_mut();
        let now = health::epoch();
        if h.epoch != now {
            h.orders = healthy_orders(snap);
            h.epoch = now;
        }
        let order = h.orders.get(si)?.as_ref()?;
        (!order.is_empty()).then(|| order[n % order.len()] as usize)
    }

    /// The peer of service `si` a sticky-sessions cookie names (`id`, see
    /// [`Peer::sticky_id`]), when it may take requests and its upstream is not down as
    /// a whole (under its `threshold`, as [`Balancer::peer_at`] judges).
    pub fn sticky_peer<'s>(&self, snap: &'s Snapshot, si: usize, id: u64) -> Option<(usize, &'s Peer)> {
        let t = snap.targets.get(si)?;
        if t.checked {
            self.healthy_turn(snap, si, 0)?;
        }
        t.sticky_peer(snap, id)
    }

    /// The latency pick: the eligible peer with the lowest average response time times
    /// (requests in flight + 1) per weight, ties going to `turn` and the ones after it.
    fn fastest<'s>(
        &self,
        t: &'s ServiceTarget,
        si: usize,
        turn: usize,
        eligible: impl Fn(usize) -> bool,
    ) -> Option<(usize, &'s Peer)> {
        let (averages, loads) = (self.latency.get(si)?, self.in_flight.get(si)?);
        let now = Instant::now();
        let read = |i: usize| averages.get(i).and_then(|e| e.get().read(now));
        // A peer not measured yet counts as the fastest one that is (or 1 ms).
        let unmeasured = (0..t.peers.len()).filter_map(read).reduce(f64::min).unwrap_or(1e6);
        let score = |i: usize| {
            let load = f64::from(loads.get(i).map_or(0, Cell::get)) + 1.0;
            read(i).unwrap_or(unmeasured) * load / f64::from(t.weights[i].max(1))
        };
        let mut best: Option<(usize, f64)> = None;
        for k in 0..t.peers.len() {
            let i = (turn + k) % t.peers.len();
            if !eligible(i) {
                continue;
            }
            let s = score(i);
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((i, s));
            }
        }
        let (i, _) = best?;
        Some((i, t.peers.get(i)?))
    }

    /// Records that peer `i` of service `si`, asked at `began`, answered at `now`
    /// (latency services; a no-op for the others).
    #[inline]
    pub fn observe_latency(&self, si: usize, i: usize, began: Instant, now: Instant) {
        if let Some(cell) = self.latency.get(si).and_then(|peers| peers.get(i)) {
            let mut e = cell.get();
            e.record(now.saturating_duration_since(began), now);
            cell.set(e);
        }
    }

    /// Counts a request to peer `i` of service `si` as in flight until the returned
    /// guard is dropped (least-connections and latency services; a no-op for the
    /// others).
    #[inline]
    pub fn begin(&self, si: usize, i: usize) -> InFlight<'_> {
        let cell = self.in_flight.get(si).and_then(|peers| peers.get(i));
        if let Some(c) = cell {
            c.set(c.get() + 1);
        }
        InFlight(cell)
    }

    /// Counts what a request to `peer` showed, for its upstream's passive checks; a
    /// count that reaches its threshold takes the address out (or brings it back) for
    /// every worker.
    #[inline]
    pub fn observe(&self, snap: &Snapshot, peer: &Peer, outcome: Outcome, worker: usize) {
        if let Some(h) = peer.health {
            self.count(snap, h, outcome, worker);
        }
    }

    /// [`Balancer::observe`] for a checked address, out of line.
    #[inline(never)]
    fn count(&self, snap: &Snapshot, h: crate::snapshot::HealthRef, outcome: Outcome, worker: usize) {
        let rules = snap.upstream_health.get(h.upstream).and_then(Option::as_ref).and_then(|u| u.passive.as_ref());
        if let (Some(rules), Some(slot)) = (rules, snap.health.get(h.slot)) {
            slot.peer.observe(outcome, rules, &|| format!("passive check on worker {worker}"));
        }
    }
}

/// The peer for `hash` on `ring`: the first `eligible` one at or after the hash's
/// point, or, after `tried` peers failed, the next distinct eligible one (cycling
/// through the first few when more were tried than there are). No allocation: the
/// distinct peers seen are kept in a small array.
fn on_ring(ring: &[(u64, u32)], hash: u64, tried: usize, eligible: impl Fn(usize) -> bool) -> Option<usize> {
    const KEEP: usize = 16;
    let start = ring.partition_point(|&(p, _)| p < hash);
    let mut seen = [0u32; KEEP];
    let mut distinct = 0;
    for k in 0..ring.len() {
        let i = ring[(start + k) % ring.len()].1;
        if seen[..distinct].contains(&i) || !eligible(i as usize) {
            continue;
        }
        if distinct == tried {
            return Some(i as usize);
        }
        seen[distinct] = i;
        distinct += 1;
        if distinct == KEEP {
            break;
        }
    }
    (distinct > 0).then(|| seen[tried % distinct] as usize)
}

/// Every checked service's order over its healthy peers; empty when their share of the
/// weight is below the upstream's `threshold`.
fn healthy_orders(snap: &Snapshot) -> Vec<Option<Vec<u32>>> {
    snap.targets
        .iter()
        .map(|t| {
            if !t.checked {
                return None;
            }
            let weights: Vec<u32> = t
                .peers
                .iter()
                .zip(&t.weights)
                .map(|(p, &w)| match p.health {
                    Some(h) if snap.health.get(h.slot).is_some_and(|s| !s.peer.is_healthy()) => 0,
                    _ => w,
                })
                .collect();
            let threshold = t
                .peers
                .first()
                .and_then(|p| p.health)
                .and_then(|h| snap.upstream_health.get(h.upstream).and_then(Option::as_ref).map(|u| u.threshold));
            let total: u64 = t.weights.iter().map(|&w| u64::from(w)).sum();
            let up: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            if threshold.is_some_and(|th| (up as f64) * 100.0 < th * total as f64) {
                return Some(Vec::new());
            }
            Some(snapshot::schedule(&weights, t.slots))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Resolved;

    fn build(threshold: u32) -> Snapshot {
        let yaml = format!(
            "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    threshold: {threshold}\n    passive:\n      \
             unhealthy: {{http_failures: 1}}\n  targets: [{{target: '10.0.0.1:80'}}, {{target: '10.0.0.2:80'}}]\n\
             services:\n- host: u\n  routes: [{{paths: [/]}}]\n"
        );
        let config = crate::config::load_str(&yaml, "kong.yaml", &|_| None).unwrap();
        Snapshot::build(config, &mut Resolved::new()).unwrap()
    }

    fn picks(b: &Balancer, snap: &Snapshot, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| b.peer_at(snap, 0, b.next_pick(0), None).map_or("none".into(), |(_, p)| p.addr.to_string()))
            .collect()
    }

    #[test]
    fn a_failing_address_leaves_this_and_every_workers_rotation() {
        let snap = build(0);
        let (w0, w1) = (Balancer::new(&snap, 0), Balancer::new(&snap, 1));
        assert_eq!(picks(&w0, &snap, 2), vec!["10.0.0.1:80", "10.0.0.2:80"]);
        let first = &snap.targets[0].peers[0];
        w0.observe(&snap, first, Outcome::Status(200), 0);
        assert!(snap.health[0].peer.is_healthy());
        w0.observe(&snap, first, Outcome::Status(500), 0);
        assert!(!snap.health[0].peer.is_healthy(), "one http failure is the threshold");
        assert_eq!(picks(&w0, &snap, 3), vec!["10.0.0.2:80"; 3]);
        assert_eq!(picks(&w1, &snap, 3), vec!["10.0.0.2:80"; 3], "the other worker sees it too");
        snap.health[0].peer.set(true, "test");
        assert_eq!(picks(&w1, &snap, 2).len(), 2);
        assert!(picks(&w1, &snap, 2).contains(&"10.0.0.1:80".to_string()), "back in rotation");
    }

    #[test]
    fn under_the_threshold_share_of_healthy_weight_nothing_is_picked() {
        for (threshold, expect) in [(60, "none"), (50, "10.0.0.2:80")] {
            let snap = build(threshold);
            let b = Balancer::new(&snap, 0);
            snap.health[0].peer.set(false, "test");
            assert_eq!(picks(&b, &snap, 2), vec![expect; 2], "threshold {threshold}");
        }
    }

    #[test]
    fn failures_seen_by_different_workers_add_up() {
        let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    passive:\n      \
                    unhealthy: {timeouts: 2}\n  targets: [{target: '10.0.0.1:80'}]\nservices:\n- host: u\n  \
                    routes: [{paths: [/]}]\n";
        let snap =
            Snapshot::build(crate::config::load_str(yaml, "k", &|_| None).unwrap(), &mut Resolved::new()).unwrap();
        let (w0, w1) = (Balancer::new(&snap, 0), Balancer::new(&snap, 1));
        let peer = &snap.targets[0].peers[0];
        w0.observe(&snap, peer, Outcome::Timeout, 0);
        assert!(snap.health[0].peer.is_healthy());
        w1.observe(&snap, peer, Outcome::Timeout, 1);
        assert!(!snap.health[0].peer.is_healthy(), "one timeout on each of two workers is two in a row");
    }

    #[test]
    fn least_connections_weighs_requests_in_flight_by_weight() {
        let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: least-connections\n  \
                    targets: [{target: '10.0.0.1:80', weight: 200}, {target: '10.0.0.2:80'}]\n\
                    services:\n- host: u\n  routes: [{paths: [/]}]\n";
        let snap =
            Snapshot::build(crate::config::load_str(yaml, "k", &|_| None).unwrap(), &mut Resolved::new()).unwrap();
        let b = Balancer::new(&snap, 0);
        let pick = |n| b.peer_at(&snap, 0, n, None).unwrap().0;
        // Nothing in flight: a's 1/200 beats b's 1/100, whatever the turn.
        assert_eq!((pick(0), pick(1), pick(2)), (0, 0, 0));
        let first = b.begin(0, 0);
        // a: (1+1)/200 against b: (0+1)/100, a tie: the turn's peer keeps it (the
        // order over weights 2 : 1 is a b a).
        assert_eq!((pick(0), pick(1)), (0, 1));
        let second = b.begin(0, 0);
        // a: 3/200 against b: 1/100: b, whatever the turn.
        assert_eq!((pick(0), pick(2)), (1, 1));
        drop((first, second));
        assert_eq!(pick(0), 0, "the guards gave the counts back");
        let plain = build(0);
        let p = Balancer::new(&plain, 0);
        drop(p.begin(0, 0));
        assert!(p.in_flight[0].is_empty(), "round-robin services count nothing");
    }

    #[test]
    fn a_peak_ewma_takes_a_slower_sample_at_once_and_a_faster_one_by_elapsed_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut e = Ewma::default();
        assert_eq!(e.read(t0), None);
        e.record(ms(10), t0);
        assert_eq!(e.read(t0), Some(10e6));
        e.record(ms(50), t0 + ms(1));
        assert_eq!(e.nanos, 50e6, "a slower sample is the new peak");
        // A faster sample one decay time later weighs 1 - 1/e.
        e.record(ms(10), t0 + ms(1) + LATENCY_DECAY);
        let expected = 50e6 / std::f64::consts::E + 10e6 * (1.0 - 1.0 / std::f64::consts::E);
        assert!((e.nanos - expected).abs() < 1.0, "{} vs {expected}", e.nanos);
        // Read later, the average has decayed towards zero.
        let later = e.read(t0 + ms(1) + LATENCY_DECAY * 2).unwrap();
        assert!((later - expected / std::f64::consts::E).abs() < 1.0);
    }

    #[test]
    fn latency_picks_the_fastest_peer_for_its_load_and_tries_unmeasured_ones() {
        let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: latency\n  \
                    targets: [{target: '10.0.0.1:80'}, {target: '10.0.0.2:80'}, {target: '10.0.0.3:80'}]\n\
                    services:\n- host: u\n  routes: [{paths: [/]}]\n";
        let snap =
            Snapshot::build(crate::config::load_str(yaml, "k", &|_| None).unwrap(), &mut Resolved::new()).unwrap();
        assert!(snap.targets[0].latency);
        let b = Balancer::new(&snap, 0);
        let pick = |n| b.peer_at(&snap, 0, n, None).unwrap().0;
        // Nothing measured: the turn decides.
        assert_eq!((pick(0), pick(1), pick(2)), (0, 1, 2));
        let now = Instant::now();
        let ms = Duration::from_millis;
        b.observe_latency(0, 0, now - ms(30), now);
        b.observe_latency(0, 1, now - ms(10), now);
        // Peer 2 is unmeasured: it counts as the fastest measured (10 ms), a tie with
        // peer 1 that the turn breaks; peer 0 (30 ms) is never taken.
        assert_eq!((pick(0), pick(1), pick(2)), (1, 1, 2));
        b.observe_latency(0, 2, now - ms(20), now);
        assert_eq!((pick(0), pick(1), pick(2)), (1, 1, 1));
        // Two requests in flight on peer 1: 10 ms x 3 > 20 ms x 1.
        let (g1, g2) = (b.begin(0, 1), b.begin(0, 1));
        assert_eq!(pick(0), 2);
        drop((g1, g2));
        assert_eq!(pick(0), 1);
        let plain = build(0);
        let p = Balancer::new(&plain, 0);
        p.observe_latency(0, 0, now - ms(5), now);
        assert!(p.latency[0].is_empty(), "round-robin services keep no averages");
    }

    #[test]
    fn a_sticky_address_is_not_taken_while_it_or_its_upstream_is_down() {
        let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: sticky-sessions\n  \
                    sticky_sessions_cookie: srv\n  healthchecks:\n    threshold: 60\n    passive:\n      \
                    unhealthy: {tcp_failures: 1}\n  \
                    targets: [{target: '10.0.0.1:80'}, {target: '10.0.0.2:80'}, {target: '10.0.0.3:80'}]\n\
                    services:\n- host: u\n  routes: [{paths: [/]}]\n";
        let snap =
            Snapshot::build(crate::config::load_str(yaml, "k", &|_| None).unwrap(), &mut Resolved::new()).unwrap();
        let b = Balancer::new(&snap, 0);
        let addr = |i: u8| std::net::SocketAddr::from(([10, 0, 0, i], 80));
        let id = |i: u8| snapshot::sticky_id("u", addr(i));
        let set = |i: u8, healthy: bool| {
            let h = snap.health.iter().find(|h| h.peer.addr == addr(i)).unwrap();
            assert!(h.peer.set(healthy, "test"));
        };
        let sticky = |i: u8| b.sticky_peer(&snap, 0, id(i)).map(|(_, p)| p.addr);
        assert_eq!(sticky(2), Some(addr(2)));
        assert!(b.sticky_peer(&snap, 0, id(2) ^ 1).is_none(), "an id naming no address");
        // One address down: two thirds of the weight is healthy, over the threshold.
        set(1, false);
        assert_eq!((sticky(1), sticky(2)), (None, Some(addr(2))), "only the down address is not taken");
        // Two down: a third, under the threshold: the upstream is down, sticky or not.
        set(3, false);
        assert!(b.peer_at(&snap, 0, 0, None).is_none());
        assert_eq!(sticky(2), None);
    }

    fn hashed(targets: &str) -> Snapshot {
        let yaml = format!(
            "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: consistent-hashing\n  hash_on: ip\n  \
             healthchecks:\n    passive:\n      unhealthy: {{tcp_failures: 1}}\n  targets: [{targets}]\n\
             services:\n- host: u\n  routes: [{{paths: [/]}}]\n"
        );
        Snapshot::build(crate::config::load_str(&yaml, "k", &|_| None).unwrap(), &mut Resolved::new()).unwrap()
    }

    /// Where each of 2 000 keys goes.
    fn placement(snap: &Snapshot) -> Vec<String> {
        let b = Balancer::new(snap, 0);
        (0..2000u32)
            .map(|k| {
                let key = crate::fasthash::key_hash(&k.to_be_bytes());
                b.peer_at(snap, 0, 0, Some((key, 0))).map_or("none".into(), |(_, p)| p.addr.to_string())
            })
            .collect()
    }

    #[test]
    fn consistent_hashing_keeps_keys_in_place_and_moves_only_a_removed_targets_keys() {
        let three = hashed("{target: '10.0.0.1:80'}, {target: '10.0.0.2:80', weight: 200}, {target: '10.0.0.3:80'}");
        let keys = placement(&three);
        assert_eq!(placement(&three), keys, "the same key, the same target, in any worker");
        let share = |a: &str| keys.iter().filter(|k| *k == a).count();
        // Weights 1 : 2 : 1 over 2 000 keys: about 500, 1 000, 500.
        let (a, b, c) = (share("10.0.0.1:80"), share("10.0.0.2:80"), share("10.0.0.3:80"));
        assert!((400..600).contains(&a) && (850..1150).contains(&b) && (400..600).contains(&c), "{a} {b} {c}");
        let two = hashed("{target: '10.0.0.1:80'}, {target: '10.0.0.2:80', weight: 200}");
        for (before, after) in keys.iter().zip(placement(&two)) {
            if before != "10.0.0.3:80" {
                assert_eq!(*before, after, "a key of a remaining target stayed");
            }
        }
        // An unhealthy target's keys go to the next on the ring; the others stay.
        three.health[2].peer.set(false, "test");
        for (before, after) in keys.iter().zip(placement(&three)) {
            assert_ne!(after, "10.0.0.3:80");
            if before != "10.0.0.3:80" {
                assert_eq!(*before, after);
            }
        }
    }

    #[test]
    fn a_retry_of_a_hashed_request_tries_each_other_target_once_then_cycles() {
        let snap = hashed("{target: '10.0.0.1:80'}, {target: '10.0.0.2:80'}, {target: '10.0.0.3:80'}");
        let b = Balancer::new(&snap, 0);
        let key = crate::fasthash::key_hash(b"caller");
        let tries: Vec<usize> = (0..4).map(|t| b.peer_at(&snap, 0, 0, Some((key, t))).unwrap().0).collect();
        let mut first_three = tries[..3].to_vec();
        first_three.sort_unstable();
        assert_eq!(first_three, vec![0, 1, 2], "three distinct targets: {tries:?}");
        assert_eq!(tries[3], tries[0]);
    }
}
