//! The access log of the real `ringgate` binary: one well-formed JSON line per request,
//! with the caller's `client_id` and never a secret, a token or a query string.
//!
//! The binary runs against a recording upstream and the real test IdP; the file is read
//! after SIGTERM (the drain flushes every worker's buffer).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use simd_json::prelude::*;
use simd_json::OwnedValue;
use support::binary::Ringgate;
use support::client::{Client, Response};
use support::idp::TestIdp;
use support::temp::TempDir;
use support::upstream::Upstream;

const POST_CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
/// Strings that must appear nowhere in the log: they ride in the query, a body, or a
/// refused Basic value.
const QUERY_SECRET: &str = "S3cr3t-in-the-query";
const QUERY_TOKEN: &str = "tok-in-the-query";
const BODY_SECRET: &str = "body-secret-value";
const WRONG_SECRET: &str = "wrong-secret-value";

/// `ringgate run --config <config>` with `extra` arguments and `env`.
fn run(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Ringgate {
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    Ringgate::start(&args, env)
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn deck(up: SocketAddr, issuer: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{up}\n  routes:\n  - name: open\n    paths: [/open]\n    strip_path: false\n  - name: guarded\n    paths: [/guarded]\n    strip_path: false\n    plugins:\n    - name: openid-connect\n      config:\n        issuer: {issuer}\n        auth_methods: [client_credentials]\n        client_credentials_param_type: [header]\n        client_auth: [client_secret_post]\n"
    )
}

fn send(c: &mut Client, raw: &[u8]) -> Response {
    c.write(raw);
    c.response().expect("a response")
}

/// Parses every line; panics on one that is not a JSON object.
fn parse_lines(text: &str) -> Vec<OwnedValue> {
    text.lines()
        .map(|l| {
            let mut bytes = l.as_bytes().to_vec();
            let v = simd_json::to_owned_value(&mut bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}

fn str_field<'a>(v: &'a OwnedValue, name: &str) -> Option<&'a str> {
    v.get(name).and_then(|f| f.as_str())
}

fn is_rfc3339_ms_utc(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn access_log_has_one_json_line_per_request_with_client_id_and_no_secret() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("file");
    let config = dir.write("kong.yaml", &deck(up.addr(), &idp.issuer));
    let log = dir.path("access.log");
    let mut r = run(&config, &["--access-log", log.to_str().unwrap()], &[]);

    let good = basic(POST_CLIENT.0, POST_CLIENT.1);
    let wrong = basic(POST_CLIENT.0, WRONG_SECRET);
    // One connection, so the second request hits the worker's cache.
    let mut c = Client::connect(r.proxy);
    let first = format!("GET /guarded/a HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {good}\r\n\r\n");
    assert_eq!(send(&mut c, first.as_bytes()).status, 200);
    let secret_query = format!(
        "GET /guarded/b?client_secret={QUERY_SECRET}&access_token={QUERY_TOKEN}&x=1 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {good}\r\n\r\n"
    );
    assert_eq!(send(&mut c, secret_query.as_bytes()).status, 200);
    drop(c);
    let refused = format!("GET /guarded/c HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {wrong}\r\n\r\n");
    assert_eq!(send(&mut Client::connect(r.proxy), refused.as_bytes()).status, 401);
    let open = b"GET /open/%C3%A9?q=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
    assert_eq!(send(&mut Client::connect(r.proxy), open).status, 200);
    let nothing = b"GET /nothing HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
    assert_eq!(send(&mut Client::connect(r.proxy), nothing).status, 404);
    let body = format!("client_id=x&client_secret={BODY_SECRET}");
    let post = format!(
        "POST /open/form HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(send(&mut Client::connect(r.proxy), post.as_bytes()).status, 200);
    let stderr = r.stop();

    let text = std::fs::read_to_string(&log).expect("the access log file exists");
    for secret in [
        POST_CLIENT.1,
        WRONG_SECRET,
        QUERY_SECRET,
        QUERY_TOKEN,
        BODY_SECRET,
        good.trim_start_matches("Basic "),
        wrong.trim_start_matches("Basic "),
        "client_secret",
        "access_token",
        // Every JWS starts with a base64url `{"`: no token was logged.
        "eyJ",
    ] {
        assert!(!text.contains(secret), "{secret:?} is in the access log:\n{text}");
        for l in &stderr {
            assert!(!l.contains(secret), "{secret:?} is in the error log: {l}");
        }
    }
    let lines = parse_lines(&text);
    assert_eq!(lines.len(), 6, "one line per request:\n{text}");
    let by_path: HashMap<&str, &OwnedValue> =
        lines.iter().map(|l| (str_field(l, "path").expect("a path"), l)).collect();
    assert_eq!(by_path.len(), 6, "distinct paths:\n{text}");
    for l in &lines {
        assert!(is_rfc3339_ms_utc(str_field(l, "time").unwrap()), "{l:?}");
        assert!(str_field(l, "client").unwrap().starts_with("127.0.0.1:"), "{l:?}");
        assert!(l["worker"].as_u64().unwrap() < 2);
        assert!(l["latency_ms"].as_f64().unwrap() >= 0.0);
        assert!(l["gateway_latency_ms"].as_f64().unwrap() >= 0.0);
        assert!(l["bytes_received"].as_u64().unwrap() > 0);
        assert!(l["bytes_sent"].as_u64().unwrap() > 0);
    }

    let a = by_path["/guarded/a"];
    assert_eq!(str_field(a, "method"), Some("GET"));
    assert_eq!(str_field(a, "route"), Some("guarded"));
    assert_eq!(str_field(a, "service"), Some("svc"));
    assert_eq!(a["status"].as_u64(), Some(200));
    assert_eq!(str_field(a, "auth"), Some("fetched"));
    assert_eq!(str_field(a, "client_id"), Some(POST_CLIENT.0));
    assert_eq!(a["bytes_received"].as_u64(), Some(first.len() as u64));
    assert!(a["upstream_latency_ms"].as_f64().is_some());
    assert!(a["upstream_latency_ms"].as_f64() <= a["latency_ms"].as_f64());

    let b = by_path["/guarded/b"];
    assert_eq!(str_field(b, "auth"), Some("cache_hit"));
    assert_eq!(str_field(b, "client_id"), Some(POST_CLIENT.0));
    assert_eq!(b["bytes_received"].as_u64(), Some(secret_query.len() as u64));

    let refused_line = by_path["/guarded/c"];
    assert_eq!(refused_line["status"].as_u64(), Some(401));
    assert_eq!(str_field(refused_line, "auth"), Some("denied:credentials_rejected"));
    assert_eq!(str_field(refused_line, "client_id"), Some(POST_CLIENT.0));
    assert!(refused_line["upstream_latency_ms"].is_null());

    let open_line = by_path["/open/%C3%A9"];
    assert_eq!(str_field(open_line, "route"), Some("open"));
    assert_eq!(str_field(open_line, "auth"), Some("none"));
    assert!(open_line["client_id"].is_null());

    let none = by_path["/nothing"];
    assert_eq!(none["status"].as_u64(), Some(404));
    assert!(none["route"].is_null() && none["service"].is_null());

    let form = by_path["/open/form"];
    assert_eq!(str_field(form, "method"), Some("POST"));
    assert_eq!(form["bytes_received"].as_u64(), Some(post.len() as u64), "head and body");
    assert_eq!(up.received().len(), 4);
}

#[test]
fn access_log_to_stdout_by_environment_and_off_by_default() {
    let up = Upstream::start();
    let dir = TempDir::new("stdout");
    let config = dir.path("kong.yaml");
    std::fs::write(
        &config,
        format!("_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: r\n    paths: [/]\n", up.addr()),
    )
    .unwrap();
    let mut r = run(&config, &[], &[("RINGGATE_ACCESS_LOG", "stdout")]);
    for i in 0..3 {
        assert_eq!(r.get(&format!("/via-env/{i}")), 200);
    }
    r.stop(); // stdout is read to its end
    let text = String::from_utf8(r.stdout()).unwrap();
    let lines = parse_lines(&text);
    assert_eq!(lines.len(), 3, "{text}");
    let mut paths: Vec<&str> = lines.iter().map(|l| str_field(l, "path").unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/via-env/0", "/via-env/1", "/via-env/2"]);

    let mut r = run(&config, &[], &[]);
    assert_eq!(r.get("/quiet"), 200);
    r.stop();
    assert!(r.stdout().is_empty(), "nothing is logged by default");
}

#[test]
fn access_log_names_the_consumer_a_token_was_mapped_to_and_the_anonymous_one() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("consumer");
    let yaml = deck(up.addr(), &idp.issuer)
        + "        consumer_claim: [client_id]\n        anonymous: guest\n"
        + &format!(
            "consumers:\n- username: {}\n- custom_id: guest-7\n  id: 5d3c2b1a-0f9e-4d8c-9b7a-6f5e4d3c2b1a\n",
            POST_CLIENT.0
        )
        + "- username: guest\n";
    let config = dir.write("kong.yaml", &yaml);
    let mut r = run(&config, &["--access-log", "stdout"], &[]);
    let send_as = |path: &str, auth: &str| {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {auth}\r\n\r\n");
        send(&mut Client::connect(r.proxy), raw.as_bytes()).status
    };
    assert_eq!(send_as("/guarded/mapped", &basic(POST_CLIENT.0, POST_CLIENT.1)), 200);
    assert_eq!(send_as("/guarded/wrong", &basic(POST_CLIENT.0, WRONG_SECRET)), 200);
    assert_eq!(send_as("/open/x", &basic(POST_CLIENT.0, POST_CLIENT.1)), 200);
    r.stop();
    let text = String::from_utf8(r.stdout()).unwrap();
    let lines = parse_lines(&text);
    let by_path: HashMap<&str, &OwnedValue> =
        lines.iter().map(|l| (str_field(l, "path").expect("a path"), l)).collect();
    assert_eq!(by_path.len(), 3, "{text}");
    assert_eq!(str_field(by_path["/guarded/mapped"], "consumer"), Some(POST_CLIENT.0));
    assert_eq!(str_field(by_path["/guarded/mapped"], "auth"), Some("fetched"));
    let anon = by_path["/guarded/wrong"];
    assert_eq!(str_field(anon, "consumer"), Some("guest"));
    assert_eq!(str_field(anon, "auth"), Some("anonymous:credentials_rejected"));
    assert_eq!(anon["status"].as_u64(), Some(200), "proxied");
    assert!(by_path["/open/x"]["consumer"].is_null(), "no plugin, no consumer");
    assert!(!text.contains(WRONG_SECRET) && !text.contains(POST_CLIENT.1), "{text}");
}
