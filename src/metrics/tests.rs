//! Rendering and counting, without sockets: recorders fed by hand, the text read back.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use super::*;
use crate::config::load_str;
use crate::snapshot::{Resolved, Snapshot};

fn snapshot(yaml: &str) -> Snapshot {
    let cfg = load_str(yaml, "test.yaml", &|_| None).expect("test config loads");
    Snapshot::build(cfg, &mut Resolved::new()).expect("test config compiles")
}

const TWO_ROUTES: &str = "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\n  routes:\n  - name: a\n    paths: [/a]\n  - name: b\n    paths: [/b]\n";

/// The value of the sample written exactly as `series` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn exchange(route_slot: u32, status: u16, total: Duration, upstream: Option<Duration>) -> (Exchange, Instant) {
    let start = Instant::now();
    let mut ex = Exchange::default();
    ex.begin(start, false);
    ex.route_slot = route_slot;
    ex.status = status;
    ex.bytes_received = 100;
    ex.bytes_sent = 1000;
    ex.upstream = upstream;
    (ex, start + total)
}

fn serve(r: &Recorder, route_slot: u32, status: u16, total_ms: u64) {
    let (ex, end) = exchange(route_slot, status, Duration::from_millis(total_ms), None);
    r.finish(&ex, end);
}

#[test]
fn requests_are_summed_across_workers_by_route_and_code() {
    let m = Metrics::new(2, None);
    let snap = snapshot(TWO_ROUTES);
    let (w0, w1) = (m.recorder(0), m.recorder(1));
    w0.on_snapshot(&snap);
    w1.on_snapshot(&snap);
    let (a, b) = (w0.route_slot(0), w0.route_slot(1));
    assert_eq!((w1.route_slot(0), w1.route_slot(1)), (a, b), "every worker gives a route the same slot");
    for _ in 0..3 {
        serve(&w0, a, 200, 1);
    }
    serve(&w1, a, 200, 1);
    serve(&w1, a, 404, 1);
    serve(&w1, ROUTE_NONE, 404, 1);
    let text = m.render();
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="200"}"#), Some(4.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="404"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="_none",service="_none",code="404"}"#), Some(1.0));
    // A route that served nothing has no series yet.
    assert!(!text.contains(r#"route="b""#), "{text}");
    assert_eq!(value(&text, r#"ringgate_worker_requests_total{worker="0"}"#), Some(3.0));
    assert_eq!(value(&text, r#"ringgate_worker_requests_total{worker="1"}"#), Some(3.0));
    assert_eq!(value(&text, r#"ringgate_http_bytes_total{route="a",service="svc",direction="received"}"#), Some(500.0));
    assert_eq!(value(&text, r#"ringgate_http_bytes_total{route="a",service="svc",direction="sent"}"#), Some(5000.0));
    assert_eq!(value(&text, r#"ringgate_http_request_duration_seconds_count{route="a",service="svc"}"#), Some(5.0));
}

#[test]
fn histogram_buckets_are_cumulative_inclusive_and_end_in_the_count() {
    let m = Metrics::new(2, None);
    let snap = snapshot(TWO_ROUTES);
    let (w0, w1) = (m.recorder(0), m.recorder(1));
    w0.on_snapshot(&snap);
    w1.on_snapshot(&snap);
    let a = w0.route_slot(0);
    // Exactly on a bound counts in that bound's bucket (`le` is "less or equal").
    let totals_us = [100, 500, 501, 2_000, 30_000, 700_000, 20_000_000];
    for (i, &us) in totals_us.iter().enumerate() {
        let w = if i % 2 == 0 { &w0 } else { &w1 };
        let (ex, end) = exchange(a, 200, Duration::from_micros(us), Some(Duration::from_micros(us / 4)));
        w.finish(&ex, end);
    }
    let text = m.render();
    let family = "ringgate_http_request_duration_seconds";
    let labels = r#"route="a",service="svc""#;
    let bucket = |le: &str| value(&text, &format!("{family}_bucket{{{labels},le=\"{le}\"}}")).unwrap();
    assert_eq!(bucket("0.0005"), 2.0);
    assert_eq!(bucket("0.001"), 3.0);
    assert_eq!(bucket("0.0025"), 4.0);
    assert_eq!(bucket("0.05"), 5.0);
    assert_eq!(bucket("1"), 6.0);
    assert_eq!(bucket("10"), 6.0);
    assert_eq!(bucket("+Inf"), 7.0);
    let mut last = 0.0;
    for le in BOUNDS_LE.iter().copied().chain(["+Inf"]) {
        assert!(bucket(le) >= last, "bucket le={le} went down");
        last = bucket(le);
    }
    assert_eq!(value(&text, &format!("{family}_count{{{labels}}}")), Some(7.0));
    let sum = value(&text, &format!("{family}_sum{{{labels}}}")).unwrap();
    let expected: u64 = totals_us.iter().sum();
    assert!((sum - expected as f64 / 1e6).abs() < 1e-9, "sum {sum}");
    // Upstream got a quarter of each; the gateway's share is the rest.
    let up_sum = value(&text, &format!("ringgate_http_upstream_duration_seconds_sum{{{labels}}}")).unwrap();
    let gw_sum = value(&text, &format!("ringgate_http_gateway_duration_seconds_sum{{{labels}}}")).unwrap();
    assert!((up_sum + gw_sum - sum).abs() < 1e-9, "{up_sum} + {gw_sum} != {sum}");
}

#[test]
fn label_values_are_escaped() {
    let yaml = "_format_version: \"3.0\"\nservices:\n- name: \"s\\\\vc\"\n  url: http://127.0.0.1:9\n  routes:\n  - name: \"we\\\"ird\\nname\"\n    paths: [/a]\n";
    let m = Metrics::new(1, None);
    let snap = snapshot(yaml);
    assert_eq!(snap.config.routes[0].name.as_deref(), Some("we\"ird\nname"));
    let w = m.recorder(0);
    w.on_snapshot(&snap);
    serve(&w, w.route_slot(0), 200, 1);
    let text = m.render();
    assert_eq!(
        value(&text, r#"ringgate_http_requests_total{route="we\"ird\nname",service="s\\vc",code="200"}"#),
        Some(1.0),
        "{text}"
    );
    let mut out = String::new();
    push_label_value(&mut out, "a\\b\"c\nd");
    assert_eq!(out, r#"a\\b\"c\nd"#);
}

#[test]
fn codes_past_sixteen_on_one_route_count_as_other() {
    let m = Metrics::new(1, None);
    let snap = snapshot(TWO_ROUTES);
    let w = m.recorder(0);
    w.on_snapshot(&snap);
    let a = w.route_slot(0);
    for code in 200..220 {
        serve(&w, a, code, 1);
    }
    serve(&w, a, 200, 1);
    let text = m.render();
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="200"}"#), Some(2.0));
    // A status of 0 (never sent) is not taken for a free slot on another route.
    let b = w.route_slot(1);
    serve(&w, b, 0, 1);
    serve(&w, b, 204, 1);
    let text = m.render();
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="b",service="svc",code="204"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="b",service="svc",code="other"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="215"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="216"}"#), None);
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="other"}"#), Some(4.0));
    assert_eq!(value(&text, r#"ringgate_http_request_duration_seconds_count{route="a",service="svc"}"#), Some(21.0));
}

#[test]
fn counters_survive_a_reload_that_reorders_and_adds_routes() {
    let m = Metrics::new(1, None);
    let w = m.recorder(0);
    let first = snapshot(TWO_ROUTES);
    w.on_snapshot(&first);
    serve(&w, w.route_slot(0), 200, 1);
    serve(&w, w.route_slot(1), 200, 1);
    let reordered = "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\n  routes:\n  - name: c\n    paths: [/c]\n  - name: b\n    paths: [/b]\n  - name: a\n    paths: [/a]\n";
    let second = snapshot(reordered);
    w.on_snapshot(&second);
    serve(&w, w.route_slot(2), 200, 1); // a
    serve(&w, w.route_slot(0), 200, 1); // c
    let text = m.render();
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="200"}"#), Some(2.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="b",service="svc",code="200"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="c",service="svc",code="200"}"#), Some(1.0));
}

#[test]
fn plugin_counters_and_failures_are_per_instance_and_reason() {
    let yaml = "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\n  routes:\n  - name: a\n    paths: [/a]\n    plugins:\n    - name: openid-connect\n      config:\n        issuer: http://127.0.0.1:9/\n        auth_methods: [client_credentials, bearer]\n";
    let m = Metrics::new(2, None);
    let snap = snapshot(yaml);
    let (w0, w1) = (m.recorder(0), m.recorder(1));
    w0.on_snapshot(&snap);
    w1.on_snapshot(&snap);
    let plugin = w0.plugin_slot(0);
    let run = |w: &Recorder, cache: Option<CacheUse>, bearer: Option<bool>, denied: Option<AuthReason>| {
        let (mut ex, end) = exchange(w.route_slot(0), denied.map_or(200, AuthReason::status), Duration::ZERO, None);
        ex.plugin_slot = Some(plugin);
        ex.auth.cache = cache;
        ex.auth.bearer_cached = bearer;
        ex.denied = denied;
        w.finish(&ex, end);
    };
    run(&w0, Some(CacheUse::Miss), None, None);
    run(&w0, Some(CacheUse::Hit), None, None);
    run(&w1, Some(CacheUse::HitRefreshing), None, None);
    run(&w1, Some(CacheUse::Miss), None, Some(AuthReason::CredentialsRejected));
    run(&w1, Some(CacheUse::NegativeHit), None, Some(AuthReason::CredentialsRejected));
    run(&w0, None, None, Some(AuthReason::NoCredentials));
    run(&w0, None, Some(false), None);
    run(&w1, None, Some(true), None);
    let text = m.render();
    let p = r#"plugin="openid-connect:route=a""#;
    let get = |name: &str| value(&text, &format!("{name}{{{p}}}"));
    assert_eq!(get("ringgate_token_cache_hits_total"), Some(2.0));
    assert_eq!(get("ringgate_token_cache_misses_total"), Some(2.0));
    assert_eq!(get("ringgate_token_cache_refreshes_total"), Some(1.0));
    assert_eq!(get("ringgate_token_cache_negative_hits_total"), Some(1.0));
    assert_eq!(get("ringgate_bearer_cache_hits_total"), Some(1.0));
    assert_eq!(get("ringgate_bearer_verifications_total"), Some(1.0));
    let failures = |code: u16, reason: &str| {
        value(&text, &format!(r#"ringgate_auth_failures_total{{{p},code="{code}",reason="{reason}"}}"#))
    };
    assert_eq!(failures(401, "credentials_rejected"), Some(2.0));
    assert_eq!(failures(401, "no_credentials"), Some(1.0));
    assert_eq!(failures(403, "insufficient_scope"), Some(0.0), "known reasons are written from zero");
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="a",service="svc",code="401"}"#), Some(3.0));
    // The overflow plugin label stays out of sight while nothing is in it.
    assert!(!text.contains(r#"plugin="_other""#));
}

#[test]
fn the_text_format_has_help_and_type_once_before_each_familys_contiguous_samples() {
    let control = Arc::new(ControlMetrics::default());
    control.idp_call(IdpEndpoint::Token, IdpOutcome::Ok, Duration::from_millis(12));
    control.idp_call(IdpEndpoint::Token, IdpOutcome::Status4xx, Duration::from_millis(3));
    control.jwks_refresh(JwksRefresh::Cooldown);
    control.token_request(TokenSource::Joined);
    let m = Metrics::new(2, Some(control));
    let snap = snapshot(TWO_ROUTES);
    let w = m.recorder(1);
    w.on_snapshot(&snap);
    let (ex, end) = exchange(w.route_slot(1), 200, Duration::from_millis(3), Some(Duration::from_millis(2)));
    w.finish(&ex, end);
    w.connection_opened(1);
    let text = m.render();
    assert!(text.ends_with('\n'));

    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(helped.insert(name.clone()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP for {name}");
            assert!(typed.insert(name.to_string(), kind.to_string()).is_none(), "TYPE twice for {name}");
            if let Some(prev) = current.replace(name.to_string()) {
                finished.insert(prev);
            }
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
        let (series, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "value of {line:?}");
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        let family = current.as_deref().expect("a sample before any TYPE");
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| typed.get(*b).is_some_and(|k| k == "histogram")))
            .unwrap_or(name);
        assert_eq!(base, family, "sample {line:?} outside its family");
        assert!(!finished.contains(base), "family {base} is not contiguous");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        if typed[family] == "counter" {
            assert!(name.ends_with("_total"), "counter {name} without _total");
        }
    }
    for name in [
        "ringgate_http_requests_total",
        "ringgate_http_request_duration_seconds",
        "ringgate_http_upstream_duration_seconds",
        "ringgate_http_gateway_duration_seconds",
        "ringgate_connections_open",
        "ringgate_worker_connections_open",
        "ringgate_idp_requests_total",
        "ringgate_idp_request_duration_seconds",
        "ringgate_jwks_refreshes_total",
        "ringgate_control_token_requests_total",
    ] {
        assert!(typed.contains_key(name), "{name} missing");
    }
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="ok"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="4xx"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_idp_request_duration_seconds_count{endpoint="token"}"#), Some(2.0));
    assert_eq!(value(&text, r#"ringgate_idp_request_duration_seconds_bucket{endpoint="token",le="0.005"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_jwks_refreshes_total{outcome="cooldown"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_control_token_requests_total{result="joined"}"#), Some(1.0));
    assert_eq!(value(&text, "ringgate_connections_open"), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_worker_connections_open{worker="1"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_worker_connections_open{worker="0"}"#), Some(0.0));
}

#[test]
fn the_access_log_outcome_names_what_authentication_did() {
    let mut ex = Exchange::default();
    assert_eq!(ex.auth_outcome(), AuthOutcome::None);
    ex.auth.cache = Some(CacheUse::HitRefreshing);
    assert_eq!(ex.auth_outcome(), AuthOutcome::CacheHit);
    ex.auth.cache = Some(CacheUse::Miss);
    assert_eq!(ex.auth_outcome(), AuthOutcome::Fetched);
    ex.denied = Some(AuthReason::CredentialsRejected);
    assert_eq!(ex.auth_outcome(), AuthOutcome::Denied(AuthReason::CredentialsRejected));
    ex.anonymous = true;
    assert_eq!(ex.auth_outcome(), AuthOutcome::Anonymous(AuthReason::CredentialsRejected));
    ex.begin(Instant::now(), false);
    assert!(!ex.anonymous, "each request starts unjudged");
    ex.auth.bearer_cached = Some(true);
    assert_eq!(ex.auth_outcome(), AuthOutcome::Bearer);
}

#[test]
fn summing_workers_histograms_wraps_like_their_counters_instead_of_panicking() {
    let (a, b) = (Histogram::default(), Histogram::default());
    a.observe_owned(u64::MAX - 10);
    b.observe_owned(20);
    let mut sum = HistogramValues::default();
    sum.add(&a);
    sum.add(&b);
    assert_eq!(sum.sum_ns, 9, "wrapped past 2^64 ns");
    assert_eq!(sum.count(), 2);
}
