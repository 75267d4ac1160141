//! Metrics end to end: the proxy library on 127.0.0.1 with a recording upstream (and the
//! real test IdP for the plugin's counters), read back through `Metrics::render` as
//! `/metrics` serves it.
//!
//! A request is counted right after its last byte is written, so a client can see the
//! response a moment before the count moves: reads wait (bounded) until a series reaches
//! its expected value, then every assertion is exact.

mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ringgate::server::{IoDriver, Limits};
use support::client::{config_for, Proxy};
use support::idp::TestIdp;
use support::upstream::Upstream;

/// The value of the sample written exactly as `series`, if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits (up to 5 s) until `series` equals `expected`; returns the rendered text then.
fn metrics_once(p: &Proxy, series: &str, expected: f64) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let text = p.metrics();
        if value(&text, series) == Some(expected) {
            return text;
        }
        assert!(Instant::now() < until, "{series} never became {expected}; last render:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\n\r\n").into_bytes()
}

const ORDERS: &str = "  - name: orders\n    paths: [/orders]\n    strip_path: false\n";

on_both_drivers!(requests_to_a_named_route_are_counted_by_status_with_their_latencies, |d| {
    let up = Upstream::start();
    let p = Proxy::start(&config_for(up.addr(), ORDERS), d, Limits::default());
    let request = get("/orders/7");
    // Four on one keep-alive connection, three on connections of their own.
    let mut c = p.connect();
    for _ in 0..4 {
        c.write(&request);
        assert_eq!(c.response().unwrap().status, 200);
    }
    for _ in 0..3 {
        assert_eq!(p.send(&request).status, 200);
    }
    // Unmatched, and refused before routing.
    for _ in 0..2 {
        assert_eq!(p.send(&get("/nope")).status, 404);
    }
    let bad = b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(p.send(bad).status, 400);
    drop(c);

    let orders = r#"route="orders",service="svc""#;
    let none = r#"route="_none",service="_none""#;
    metrics_once(&p, "ringgate_connections_open", 0.0);
    metrics_once(&p, &format!("ringgate_http_requests_total{{{orders},code=\"200\"}}"), 7.0);
    metrics_once(&p, &format!("ringgate_http_requests_total{{{none},code=\"404\"}}"), 2.0);
    metrics_once(&p, &format!("ringgate_http_requests_total{{{none},code=\"400\"}}"), 1.0);
    // Every request is in by now: this render is the final count.
    let text = p.metrics();
    let get_v = |series: String| value(&text, &series);
    // Nothing else was counted for the route, and every request has its latencies.
    let codes: Vec<&str> =
        text.lines().filter(|l| l.starts_with(&format!("ringgate_http_requests_total{{{orders}"))).collect();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(get_v(format!("ringgate_http_request_duration_seconds_count{{{orders}}}")), Some(7.0));
    assert_eq!(get_v(format!("ringgate_http_request_duration_seconds_bucket{{{orders},le=\"+Inf\"}}")), Some(7.0));
    assert_eq!(get_v(format!("ringgate_http_upstream_duration_seconds_count{{{orders}}}")), Some(7.0));
    assert_eq!(get_v(format!("ringgate_http_gateway_duration_seconds_count{{{orders}}}")), Some(7.0));
    assert_eq!(get_v(format!("ringgate_http_request_duration_seconds_count{{{none}}}")), Some(3.0));
    assert_eq!(get_v(format!("ringgate_http_upstream_duration_seconds_count{{{none}}}")), None, "never went upstream");
    let total = get_v(format!("ringgate_http_request_duration_seconds_sum{{{orders}}}")).unwrap();
    let upstream = get_v(format!("ringgate_http_upstream_duration_seconds_sum{{{orders}}}")).unwrap();
    assert!(total > 0.0 && upstream > 0.0 && upstream <= total, "total {total}, upstream {upstream}");
    assert!(total < 7.0 * 2.0, "loopback requests took {total} s in all");
    // Bytes read are exactly the requests' heads (no bodies).
    let received = (7 * request.len()) as f64;
    assert_eq!(get_v(format!("ringgate_http_bytes_total{{{orders},direction=\"received\"}}")), Some(received));
    assert!(get_v(format!("ringgate_http_bytes_total{{{orders},direction=\"sent\"}}")).unwrap() > 7.0 * 30.0);
    // Per worker and summed.
    let per_worker: f64 =
        (0..2).map(|w| get_v(format!("ringgate_worker_requests_total{{worker=\"{w}\"}}")).unwrap()).sum();
    assert_eq!(per_worker, 10.0);
    assert_eq!(value(&text, "ringgate_connections_accepted_total"), Some(7.0));
    let accepted: f64 =
        (0..2).map(|w| get_v(format!("ringgate_worker_connections_accepted_total{{worker=\"{w}\"}}")).unwrap()).sum();
    assert_eq!(accepted, 7.0);
    assert_eq!(value(&text, "ringgate_connections_open"), Some(0.0));
    assert_eq!(up.received().len(), 7);
});

on_both_drivers!(connections_open_counts_a_connection_while_it_is_open, |d| {
    let up = Upstream::start();
    let p = Proxy::start(&config_for(up.addr(), ORDERS), d, Limits::default());
    let mut c = p.connect();
    c.write(&get("/orders"));
    assert_eq!(c.response().unwrap().status, 200);
    metrics_once(&p, "ringgate_connections_open", 1.0);
    drop(c);
    metrics_once(&p, "ringgate_connections_open", 0.0);
});

// ----- the openid-connect plugin, against the real test IdP -----

const POST_CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
const PLUGIN: &str = r#"plugin="openid-connect:global""#;

fn guarded(up: &Upstream, idp: &TestIdp) -> Proxy {
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: guarded\n    paths: [/]\n    strip_path: false\nplugins:\n- name: openid-connect\n  config:\n    issuer: {}\n    auth_methods: [client_credentials]\n    client_credentials_param_type: [header]\n    client_auth: [client_secret_post]\n",
        up.addr(),
        idp.issuer
    );
    Proxy::start(&yaml, IoDriver::Legacy, Limits::default())
}

fn basic_get(id: &str, secret: &str) -> Vec<u8> {
    let basic = STANDARD.encode(format!("{id}:{secret}"));
    format!("GET /x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Basic {basic}\r\n\r\n").into_bytes()
}

#[test]
fn one_credential_twice_is_one_miss_one_hit_and_one_token_call() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = guarded(&up, &idp);
    // One connection: both requests land on the same worker, and so on the same cache.
    let mut c = p.connect();
    for _ in 0..2 {
        c.write(&basic_get(POST_CLIENT.0, POST_CLIENT.1));
        let r = c.response().unwrap();
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    let text = metrics_once(&p, r#"ringgate_http_requests_total{route="guarded",service="svc",code="200"}"#, 2.0);
    let count = |name: &str| value(&text, &format!("{name}{{{PLUGIN}}}"));
    assert_eq!(count("ringgate_token_cache_misses_total"), Some(1.0));
    assert_eq!(count("ringgate_token_cache_hits_total"), Some(1.0));
    assert_eq!(count("ringgate_token_cache_refreshes_total"), Some(0.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="ok"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="4xx"}"#), Some(0.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="discovery",outcome="ok"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="jwks",outcome="ok"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_idp_request_duration_seconds_count{endpoint="token"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_control_token_requests_total{result="fetched"}"#), Some(1.0));
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1, "the IdP agrees: one token call");
    for line in text.lines().filter(|l| l.starts_with("ringgate_auth_failures_total{")) {
        assert!(line.ends_with(" 0"), "no refusal was counted: {line}");
    }
}

#[test]
fn a_wrong_secret_and_missing_credentials_are_counted_as_401_by_reason() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = guarded(&up, &idp);
    let r = p.send(&basic_get(POST_CLIENT.0, "not-the-secret"));
    assert_eq!(r.status, 401);
    let r = p.send(&get("/x"));
    assert_eq!(r.status, 401);
    let text = metrics_once(&p, r#"ringgate_http_requests_total{route="guarded",service="svc",code="401"}"#, 2.0);
    let failures = |reason: &str| {
        value(&text, &format!(r#"ringgate_auth_failures_total{{{PLUGIN},code="401",reason="{reason}"}}"#))
    };
    assert_eq!(failures("credentials_rejected"), Some(1.0));
    assert_eq!(failures("no_credentials"), Some(1.0));
    assert_eq!(failures("invalid_token"), Some(0.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="4xx"}"#), Some(1.0));
    assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="ok"}"#), Some(0.0));
    assert_eq!(value(&text, &format!("ringgate_token_cache_misses_total{{{PLUGIN}}}")), Some(1.0));
    assert_eq!(value(&text, &format!("ringgate_token_cache_hits_total{{{PLUGIN}}}")), Some(0.0));
    assert!(!text.contains("not-the-secret"));
    assert!(up.received().is_empty());
}

#[test]
fn an_unreachable_idp_is_counted_as_unreachable_calls_and_503_refusals() {
    let up = Upstream::start();
    // Port 9 (discard) refuses connections on the test machine: the IdP is down.
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: guarded\n    paths: [/]\n    plugins:\n    - name: openid-connect\n      id: 5d1c7a3e-0b8e-4c7a-9a51-3f2b6c1d0e9f\n      config:\n        issuer: http://127.0.0.1:9/\n        auth_methods: [client_credentials]\n        client_credentials_param_type: [header]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, IoDriver::Legacy, Limits::default());
    let r = p.send(&basic_get("a", "b"));
    assert_eq!(r.status, 503);
    let text = metrics_once(
        &p,
        r#"ringgate_auth_failures_total{plugin="5d1c7a3e-0b8e-4c7a-9a51-3f2b6c1d0e9f",code="503",reason="idp_unavailable"}"#,
        1.0,
    );
    assert_eq!(value(&text, r#"ringgate_http_requests_total{route="guarded",service="svc",code="503"}"#), Some(1.0));
    assert_eq!(
        value(&text, r#"ringgate_token_cache_misses_total{plugin="5d1c7a3e-0b8e-4c7a-9a51-3f2b6c1d0e9f"}"#),
        Some(1.0)
    );
    // The background discovery keeps retrying; at least the first attempt is counted.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let text = p.metrics();
        let n = value(&text, r#"ringgate_idp_requests_total{endpoint="discovery",outcome="unreachable"}"#).unwrap();
        if n >= 1.0 {
            assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="discovery",outcome="ok"}"#), Some(0.0));
            assert_eq!(value(&text, r#"ringgate_idp_requests_total{endpoint="token",outcome="ok"}"#), Some(0.0));
            break;
        }
        assert!(Instant::now() < until, "no unreachable discovery counted:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(up.received().is_empty());
}
