//! The data plane end to end: a real downstream socket, the proxy library on 127.0.0.1,
//! and a real upstream that records what it received. Every test runs on both monoio
//! drivers.

mod support;

use std::time::Duration;

use ringgate::server::{IoDriver, Limits};
use support::client::{config_for, Client, Proxy};
use support::upstream::Upstream;

const ROOT_ROUTE: &str = "  - name: root\n    paths: [/]\n    strip_path: false\n";

fn proxy_to(up: &Upstream, routes: &str, driver: IoDriver) -> Proxy {
    Proxy::start(&config_for(up.addr(), routes), driver, Limits::default())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\n\r\n").into_bytes()
}

on_both_drivers!(get_is_forwarded_with_rewritten_host_and_forwarding_headers, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let r = p.send(b"GET /orders/7?x=1 HTTP/1.1\r\nHost: api.example.com:8000\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.9\r\nX-Real-IP: 6.6.6.6\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    let got = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.method, "GET");
    assert_eq!(g.target, "/orders/7?x=1");
    assert_eq!(g.version, 1);
    assert_eq!(g.header_str("host").unwrap(), up.addr().to_string());
    assert_eq!(g.header_str("accept").as_deref(), Some("*/*"));
    assert_eq!(g.header_str("x-forwarded-for").as_deref(), Some("10.0.0.9, 127.0.0.1"));
    assert_eq!(g.header_all("x-forwarded-for").len(), 1);
    assert_eq!(g.header_str("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(g.header_all("x-real-ip").len(), 1);
    assert_eq!(g.header_str("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(g.header_str("x-forwarded-host").as_deref(), Some("api.example.com"));
    assert_eq!(g.header_str("x-forwarded-port").unwrap(), p.addr.port().to_string());
    assert_eq!(g.header_str("x-forwarded-path").as_deref(), Some("/orders/7"));
    assert!(up.errors().is_empty(), "{:?}", up.errors());
});

on_both_drivers!(preserve_host_sends_the_downstream_host, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, "  - name: r\n    paths: [/]\n    preserve_host: true\n", d);
    assert_eq!(p.send(&get("/a")).status, 200);
    let g = &up.wait_for(1, Duration::from_secs(5))[0];
    assert_eq!(g.header_str("host").as_deref(), Some("api.example.com"));
});

on_both_drivers!(strip_path_joins_the_service_path, |d| {
    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}/base\n  routes:\n  - name: r\n    paths: [/api]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    assert_eq!(p.send(&get("/api/users?id=3")).status, 200);
    let g = &up.wait_for(1, Duration::from_secs(5))[0];
    assert_eq!(g.target, "/base/users?id=3");
    assert_eq!(g.header_str("x-forwarded-prefix").as_deref(), Some("/api"));
});

on_both_drivers!(hop_by_hop_headers_are_not_forwarded, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let r = p.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n");
    assert_eq!(r.status, 200);
    let g = &up.wait_for(1, Duration::from_secs(5))[0];
    for h in ["x-secret", "keep-alive", "te", "upgrade", "proxy-connection", "connection"] {
        assert!(g.header(h).is_none(), "{h} reached the upstream");
    }
    assert_eq!(g.header_str("x-kept").as_deref(), Some("yes"));
});

on_both_drivers!(keep_alive_reuses_both_connections, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    for i in 0..20 {
        c.write(&get(&format!("/n/{i}")));
        let r = c.response().expect("response");
        assert_eq!(r.status, 200);
    }
    let got = up.wait_for(20, Duration::from_secs(5));
    assert_eq!(got.len(), 20);
    assert_eq!(up.connections(), 1, "one pooled upstream connection serves a sequential client");
    let targets: Vec<String> = got.iter().map(|g| g.target.clone()).collect();
    assert_eq!(targets, (0..20).map(|i| format!("/n/{i}")).collect::<Vec<_>>());
});

on_both_drivers!(pipelined_requests_are_answered_in_order, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend_from_slice(format!("GET /p HTTP/1.1\r\nHost: a\r\nx-test-body: r{i}\r\n\r\n").as_bytes());
    }
    all.extend_from_slice(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nx-test-echo: 1\r\n\r\nabc");
    all.extend_from_slice(b"GET /p HTTP/1.1\r\nHost: a\r\nx-test-body: last\r\n\r\n");
    c.write(&all);
    for i in 0..5 {
        assert_eq!(c.response().unwrap().body_str(), format!("r{i}"));
    }
    assert_eq!(c.response().unwrap().body_str(), "abc");
    assert_eq!(c.response().unwrap().body_str(), "last");
});

on_both_drivers!(large_content_length_body_streams_through_intact, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut c = p.connect();
    c.write(format!("PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    for part in body.chunks(65536) {
        c.write(part);
    }
    let r = c.response().unwrap();
    assert_eq!(r.status, 200);
    let g = &up.wait_for(1, Duration::from_secs(5))[0];
    assert_eq!(g.body.len(), body.len());
    assert!(g.body == body, "body bytes changed on the way");
});

on_both_drivers!(chunked_request_body_with_trailers_is_forwarded_verbatim, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.write(b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nx-test-echo: 1\r\n\r\n5;ext=1\r\nhello\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.write(b"6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.body_str(), "hello world");
    let g = &up.wait_for(1, Duration::from_secs(5))[0];
    assert!(g.chunked);
    assert_eq!(g.body, b"hello world");
    assert_eq!(g.trailers, vec![("X-Checksum".to_string(), b"42".to_vec())]);
});

on_both_drivers!(expect_continue_gets_100_before_the_body, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.write(b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\nx-test-echo: 1\r\n\r\n");
    let interim = c.response().unwrap();
    assert_eq!(interim.status, 100);
    c.write(b"data");
    let r = c.response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"data");
    let g = &up.wait_for(1, Duration::from_secs(5))[0];
    assert!(g.header("expect").is_none(), "the proxy answers the expectation itself");
});

on_both_drivers!(bodiless_responses_carry_no_body, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.write(b"HEAD /h HTTP/1.1\r\nHost: a\r\nx-test-body-len: 100\r\n\r\n");
    let r = c.response_to(true).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100"));
    for status in [204, 304] {
        c.write(format!("GET /s HTTP/1.1\r\nHost: a\r\nx-test-status: {status}\r\n\r\n").as_bytes());
        assert_eq!(c.response().unwrap().status, status);
    }
    // The connection is still in step: a normal request works after them.
    c.write(&get("/after"));
    assert_eq!(c.response().unwrap().body, b"ok");
});

on_both_drivers!(chunked_response_is_relayed_with_trailers, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.write(b"GET /c HTTP/1.1\r\nHost: a\r\nx-test-body-len: 50000\r\nx-test-chunked: 7\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.len(), 50000);
    c.write(&get("/again"));
    assert_eq!(c.response().unwrap().body, b"ok");
});

on_both_drivers!(close_delimited_response_ends_the_downstream_connection, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.write(b"GET /cd HTTP/1.1\r\nHost: a\r\nx-test-close-delimited: 1\r\nx-test-body: until-close\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.body_str(), "until-close");
    assert_eq!(r.header("connection"), Some("close"));
});

on_both_drivers!(http10_downstream_gets_keep_alive_semantics_and_dechunked_bodies, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.write(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.write(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\nx-test-chunked: 3\r\nx-test-body: three-chunks\r\n\r\n");
    let r = c.response().unwrap();
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body_str(), "three-chunks");
    let mut c = p.connect();
    c.write(b"GET /c HTTP/1.0\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(2)));
});

on_both_drivers!(no_route_is_kongs_404, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, "  - name: r\n    paths: [/only]\n", d);
    let mut c = p.connect();
    c.write(&get("/elsewhere"));
    let r = c.response().unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.body_str(), r#"{"message":"no Route matched with those values"}"#);
    // The connection stays usable.
    c.write(&get("/only"));
    assert_eq!(c.response().unwrap().status, 200);
    assert_eq!(up.received().len(), 1);
});

on_both_drivers!(unreachable_upstream_is_502_and_slow_one_504, |d| {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{dead_addr}\n  retries: 1\n  routes:\n  - name: r\n    paths: [/]\n"
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let r = p.send(&get("/"));
    assert_eq!(r.status, 502);
    assert_eq!(r.body_str(), r#"{"message":"An invalid response was received from the upstream server"}"#);

    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  read_timeout: 200\n  routes:\n  - name: r\n    paths: [/]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let r = p.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-test-delay-ms: 1500\r\n\r\n");
    assert_eq!(r.status, 504);
    assert_eq!(r.body_str(), r#"{"message":"The upstream server is timing out"}"#);
});

on_both_drivers!(upstream_that_closes_or_lies_is_502, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    assert_eq!(p.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nx-test-close: 1\r\n\r\n").status, 502);
    assert_eq!(p.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-test-bad-framing: 1\r\n\r\n").status, 502);
    assert_eq!(p.send(b"GET / HTTP/1.1\r\nHost: a\r\nx-test-head-bytes: 100000\r\n\r\n").status, 502);
    // And a good request afterwards still works.
    assert_eq!(p.send(&get("/")).status, 200);
});

/// A request the proxy must refuse: the status, the connection closed, and nothing
/// reaching the upstream.
fn assert_refused(p: &Proxy, up: &Upstream, raw: &[u8], status: u16) {
    let mut c = p.connect();
    c.write(raw);
    let r = c.response().unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(raw)));
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(raw));
    assert_eq!(r.header("connection"), Some("close"), "{:?}", String::from_utf8_lossy(raw));
    assert!(c.closed_within(Duration::from_secs(2)), "connection left open after {:?}", String::from_utf8_lossy(raw));
    std::thread::sleep(Duration::from_millis(20));
    assert!(up.received().is_empty(), "{:?} reached the upstream", String::from_utf8_lossy(raw));
    assert!(up.errors().is_empty(), "{:?} reached the upstream", String::from_utf8_lossy(raw));
}

on_both_drivers!(malformed_framing_is_refused_and_nothing_reaches_the_upstream, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let cases: &[(&[u8], u16)] = &[
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nabcde", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nabcde", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: bogus, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-\xff: 1\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    ];
    for (raw, status) in cases {
        assert_refused(&p, &up, raw, *status);
    }
});

on_both_drivers!(size_limits_answer_431_and_413, |d| {
    let up = Upstream::start();
    let limits = Limits { max_body_bytes: 1000, ..Limits::default() };
    let p = Proxy::start(&config_for(up.addr(), ROOT_ROUTE), d, limits);
    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    big.resize(40 * 1024, b'b');
    big.extend_from_slice(b"\r\n\r\n");
    assert_refused(&p, &up, &big, 431);
    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_refused(&p, &up, &many, 431);
    assert_refused(&p, &up, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", 413);
    // A chunked body that grows past the limit while streaming.
    let mut c = p.connect();
    c.write(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n");
    c.write(&[b'x'; 1000]);
    c.write(b"\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.status, 413);
    assert!(c.closed_within(Duration::from_secs(2)));
});

on_both_drivers!(slow_head_times_out_with_408, |d| {
    let up = Upstream::start();
    let limits = Limits { header_timeout: Duration::from_millis(300), ..Limits::default() };
    let p = Proxy::start(&config_for(up.addr(), ROOT_ROUTE), d, limits);
    let mut c = p.connect();
    c.write(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let r = c.response().unwrap();
    assert_eq!(r.status, 408);
    assert!(c.closed_within(Duration::from_secs(2)));
    assert!(up.received().is_empty());
});

on_both_drivers!(idle_keep_alive_connection_is_closed_after_the_idle_timeout, |d| {
    let up = Upstream::start();
    let limits = Limits { idle_timeout: Duration::from_millis(300), ..Limits::default() };
    let p = Proxy::start(&config_for(up.addr(), ROOT_ROUTE), d, limits);
    let mut c = p.connect();
    c.write(&get("/"));
    assert_eq!(c.response().unwrap().status, 200);
    assert!(c.closed_within(Duration::from_secs(3)));
});

on_both_drivers!(shutdown_lets_in_flight_requests_finish, |d| {
    let up = Upstream::start();
    let mut p = proxy_to(&up, ROOT_ROUTE, d);
    let addr = p.addr;
    let slow = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.write(b"GET /slow HTTP/1.1\r\nHost: a\r\nx-test-delay-ms: 600\r\n\r\n");
        c.response()
    });
    let mut idle = p.connect();
    idle.write(&get("/"));
    assert_eq!(idle.response().unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(150));
    let server = p.server.take().unwrap();
    server.begin_shutdown();
    // The idle keep-alive connection is closed promptly.
    assert!(idle.closed_within(Duration::from_secs(2)));
    // The request in flight completes, marked as the connection's last.
    let r = slow.join().unwrap().expect("in-flight request answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(server.join(Duration::from_secs(5)), "workers exit after draining");
    assert!(std::net::TcpStream::connect(addr).is_err(), "listener closed");
});

on_both_drivers!(reload_swaps_routes_without_dropping_connections, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, "  - name: r\n    paths: [/old]\n", d);
    let mut c = p.connect();
    c.write(&get("/old"));
    assert_eq!(c.response().unwrap().status, 200);
    p.reload(&config_for(up.addr(), "  - name: r\n    paths: [/new]\n"));
    c.write(&get("/new"));
    assert_eq!(c.response().unwrap().status, 200);
    c.write(&get("/old"));
    assert_eq!(c.response().unwrap().status, 404);
});

on_both_drivers!(head_trickling_in_byte_by_byte_is_served, |d| {
    let up = Upstream::start();
    let p = proxy_to(&up, ROOT_ROUTE, d);
    let mut c = p.connect();
    c.stream.set_nodelay(true).unwrap();
    let raw = b"GET /slow/but/steady HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\n\r\n";
    for b in raw.iter() {
        c.write(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.response().unwrap().status, 200);
    assert_eq!(up.wait_for(1, Duration::from_secs(5))[0].target, "/slow/but/steady");
    // A bare-LF head trickling in is still refused, not left waiting.
    let mut c = p.connect();
    for b in b"GET / HTTP/1.1\nHost: a\n\n".iter() {
        c.write(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.response().unwrap().status, 400);
});

on_both_drivers!(unresolved_service_is_503_until_the_resolver_finds_it, |d| {
    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://localhost:{}\n  routes:\n  - name: r\n    paths: [/]\n",
        up.addr().port()
    );
    // As if the name had failed to resolve at load time.
    let mut resolved = ringgate::snapshot::Resolved::new();
    resolved.insert("localhost".into(), Vec::new());
    let p = Proxy::start_snapshot(support::client::snapshot_with(&yaml, &mut resolved), d, Limits::default());
    let r = p.send(&get("/"));
    assert_eq!(r.status, 503);
    assert_eq!(r.body_str(), r#"{"message":"name resolution failed"}"#);
    assert!(up.received().is_empty());
    assert!(ringgate::snapshot::refresh_dns(&p.shared), "the resolver swaps in the new addresses");
    assert_eq!(p.send(&get("/")).status, 200);
    assert!(!ringgate::snapshot::refresh_dns(&p.shared), "nothing changed the second time");
});

/// An upstream that answers each read of a connection with `answer(what was read, how many
/// reads that connection answered before)`, whatever it is, on up to eight connections;
/// and how many it accepted.
fn scripted_upstream(
    answer: fn(&[u8], usize) -> Vec<u8>,
) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut answered = 0;
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&answer(&buf[..n], answered)).is_err() {
                        return;
                    }
                    answered += 1;
                }
            });
        }
    });
    (addr, accepted)
}

on_both_drivers!(leftover_upstream_bytes_never_reach_the_next_request, |d| {
    // An upstream that sends more than its Content-Length says: the extra bytes must not
    // be read as the next response, so its connection is not reused.
    let (addr, accepted) = scripted_upstream(|_, _| {
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsmuggl".to_vec()
    });
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{addr}\n  routes:\n  - name: r\n    paths: [/]\n"
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    for _ in 0..2 {
        c.write(&get("/"));
        assert_eq!(c.response().unwrap().body, b"ok");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "the dirty connection was not pooled");
});

on_both_drivers!(upstream_status_line_without_a_reason_phrase_is_relayed, |d| {
    // A missing reason phrase, or one with obs-text, made the response parser take the
    // offset of a string outside the buffer: a panic in the worker (debug builds) or an
    // out-of-range slice and an abort of the process (release builds).
    let (addr, _) = scripted_upstream(|_, n| {
        let status: &[u8] = if n % 2 == 0 { b"HTTP/1.1 200" } else { b"HTTP/1.1 200 \xc3\x89t\xc3\xa9" };
        [status, b"\r\nContent-Length: 2\r\n\r\nok"].concat()
    });
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{addr}\n  routes:\n  - name: r\n    paths: [/]\n"
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    for _ in 0..4 {
        c.write(&get("/"));
        let r = c.response().expect("a response");
        assert_eq!((r.status, r.body_str().as_str()), (200, "ok"));
    }
});

on_both_drivers!(upstream_transfer_codings_but_chunked_get_502_and_http10_never_gets_te, |d| {
    // `gzip, chunked` used to be relayed; an HTTP/1.0 caller then got the body with the
    // chunks taken off, still gzipped, and nothing saying so. A HEAD answer has no body,
    // so its `Transfer-Encoding` is information, relayed to HTTP/1.1 callers only.
    let (addr, _) = scripted_upstream(|request, _| {
        if request.starts_with(b"HEAD") {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n"
                .to_vec()
        }
    });
    let yaml = format!(
    "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{addr}\n  routes:\n  - name: r\n    paths: [/]\n"
);
    let p = Proxy::start(&yaml, d, Limits::default());
    for request in [&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..], b"GET / HTTP/1.0\r\n\r\n"] {
        let mut c = p.connect();
        c.write(request);
        let r = c.response().expect("a response");
        assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(request));
        assert!(!r.body.starts_with(b"\x1f\x8b"), "the gzipped body was relayed");
    }
    let mut c = p.connect();
    c.write(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response_to(true).expect("a response");
    assert_eq!((r.status, r.header("transfer-encoding")), (200, Some("chunked")));
    let mut c = p.connect();
    c.write(b"HEAD / HTTP/1.0\r\n\r\n");
    let r = c.response_to(true).expect("a response");
    assert_eq!((r.status, r.header("transfer-encoding")), (200, None));
});

on_both_drivers!(connections_past_the_worker_limit_are_closed, |d| {
    let up = Upstream::start();
    let limits = Limits { max_connections: 1, ..Limits::default() };
    let yaml = config_for(up.addr(), ROOT_ROUTE);
    let shared = std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(support::client::snapshot(&yaml)));
    let server = ringgate::server::Server::start(
        ringgate::server::ServerOptions {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            tls_listen: Vec::new(),
            workers: 1,
            driver: d,
            limits,
            control: None,
            access_log: None,
            cpus: None,
        },
        shared,
    )
    .unwrap();
    let addr = server.local_addrs[0];
    let mut first = Client::connect(addr);
    first.write(&get("/"));
    assert_eq!(first.response().unwrap().status, 200);
    let mut second = Client::connect(addr);
    assert!(second.closed_within(Duration::from_secs(2)), "second connection closed while the first is open");
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    let mut third = Client::connect(addr);
    third.write(&get("/"));
    assert_eq!(third.response().unwrap().status, 200);
    server.stop(Duration::from_secs(5));
});

on_both_drivers!(routes_whose_idp_is_unreachable_answer_503_and_forward_nothing, |d| {
    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: open\n    paths: [/open]\n  - name: guarded\n    paths: [/guarded]\n    plugins:\n    - name: openid-connect\n      config:\n        issuer: http://127.0.0.1:9/\n        auth_methods: [client_credentials]\n        client_credentials_param_type: [header]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let started = std::time::Instant::now();
    let r = p.send(b"GET /guarded/x HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YTpi\r\n\r\n");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(r.body_str(), r#"{"message":"The identity provider is unavailable"}"#);
    assert!(started.elapsed() < Duration::from_secs(5), "answered promptly, not after retries");
    // Without credentials the answer is 401, IdP or not.
    let r = p.send(b"GET /guarded/x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="127.0.0.1", error="invalid_token""#));
    assert!(up.received().is_empty(), "nothing is forwarded without the authentication it asks for");
    assert_eq!(p.send(&get("/open/x")).status, 200);
});

/// xorshift64*, as the unit tests' `testing::Rng` (which integration tests cannot
/// reach): the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// Valid requests the mutations start from: bodies framed by length and chunked, an
/// expectation, HTTP/1.0, an absolute-form target, hop-by-hop fields.
const SEED_REQUESTS: &[&[u8]] = &[
    b"GET /a?x=1 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nx-test-echo: 1\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nx-test-echo: 1\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://a.example/abs HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    b"DELETE /d HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nUpgrade: h2c\r\nTE: trailers\r\n\r\n",
];

/// Lines that change a request's framing, authority or connection when they land in it,
/// valid and not; and a request smuggled into a body.
const INSERTED_LINES: &[&[u8]] = &[
    b"Content-Length: 3\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 50\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked, chunked\r\n",
    b"Transfer-Encoding : chunked\r\n",
    b" Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: \x0bchunked\r\n",
    b"Host: b\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: websocket\r\n",
    b"X-A: 1\nContent-Length: 4\r\n",
    b"X-A: 1\rContent-Length: 4\r\n",
    b" folded\r\n",
    b"\r\n",
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
];

/// Bytes that end, split or smuggle a field when they land in the wrong place.
const NASTY_BYTES: &[u8] = b"\r\n\0\x7f\x80\xff \t:,;0";

/// A seed request with one or two mutations: bytes changed, inserted, deleted or
/// repeated, framing lines inserted at a line start, another request pipelined after it,
/// or the whole cut short.
fn mutated_request(rng: &mut Rng) -> Vec<u8> {
    let mut raw = rng.pick(SEED_REQUESTS).to_vec();
    for _ in 0..1 + rng.below(2) {
        if raw.is_empty() {
            break;
        }
        let at = rng.below(raw.len());
        match rng.below(9) {
            0 => raw[at] = rng.next() as u8,
            1 => raw[at] = rng.pick(NASTY_BYTES),
            2 => raw.insert(at, rng.pick(NASTY_BYTES)),
            3 => {
                raw.remove(at);
            }
            4 => {
                let end = (at + 1 + rng.below(30)).min(raw.len());
                let run = raw[at..end].to_vec();
                let to = rng.below(raw.len() + 1);
                raw.splice(to..to, run);
            }
            5 | 6 => {
                let starts: Vec<usize> = (1..raw.len()).filter(|&i| raw[i - 1] == b'\n').collect();
                let to = starts.get(rng.below(starts.len().max(1))).copied().unwrap_or(raw.len());
                raw.splice(to..to, rng.pick(INSERTED_LINES).iter().copied());
            }
            7 => raw.extend_from_slice(rng.pick(SEED_REQUESTS)),
            _ => raw.truncate(at),
        }
    }
    raw
}

/// What came back on one connection: the responses (1xx included) as status and
/// whether the upstream sent it, and how the connection ended.
struct Answer {
    responses: Vec<(u16, bool)>,
    /// Bytes after the last whole response: a response cut short by a reset.
    partial: usize,
    reset: bool,
}

/// Sends `raw` on a new connection, closes the sending side, and reads to the end: the
/// proxy must close within `within`. `Err` says how the exchange broke.
fn answer_to(addr: std::net::SocketAddr, raw: &[u8], within: Duration) -> Result<Answer, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).ok();
    // The proxy may refuse and close before it has read everything.
    let _ = s.write_all(raw);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let until = std::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut reset = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("still open after {within:?}, {} bytes read", got.len()));
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let (responses, partial) = split_responses(&got)?;
    if partial > 0 && !reset {
        return Err(format!("closed inside a response: {:?}", String::from_utf8_lossy(&got)));
    }
    Ok(Answer { responses, partial, reset })
}

/// The responses in `bytes`, each checked to be well-formed: a head httparse reads with
/// CRLF lines, one body length (chunked, Content-Length, or to the close), and the body
/// it announces. Returns them and the length of an incomplete last one.
fn split_responses(bytes: &[u8]) -> Result<(Vec<(u16, bool)>, usize), String> {
    let shown = || String::from_utf8_lossy(bytes).into_owned();
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut fields);
        let n = match resp.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok((out, rest.len())),
            Err(e) => return Err(format!("malformed response ({e}): {:?}", shown())),
        };
        if (0..n).any(|i| rest[i] == b'\n' && (i == 0 || rest[i - 1] != b'\r')) {
            return Err(format!("bare LF in a response head: {:?}", shown()));
        }
        let status = resp.code.unwrap();
        let field = |name: &str| -> Vec<String> {
            resp.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                .collect()
        };
        let from_upstream = !field("x-upstream-conn").is_empty();
        let (lengths, codings) = (field("content-length"), field("transfer-encoding"));
        if !lengths.is_empty() && !codings.is_empty() || lengths.len() > 1 {
            return Err(format!("response framing in doubt: {:?}", shown()));
        }
        let body = &rest[n..];
        let used = if status < 200 || status == 204 || status == 304 {
            0
        } else if let Some(te) = codings.first() {
            if te != "chunked" {
                return Err(format!("response transfer coding {te:?}: {:?}", shown()));
            }
            match chunked_len(body)? {
                Some(used) => used,
                None => return Ok((out, rest.len())),
            }
        } else if let Some(cl) = lengths.first() {
            let cl: usize = cl.parse().map_err(|_| format!("bad response Content-Length: {:?}", shown()))?;
            if body.len() < cl {
                return Ok((out, rest.len()));
            }
            cl
        } else {
            if !field("connection").iter().any(|c| c == "close") {
                return Err(format!("body to the close without Connection: close: {:?}", shown()));
            }
            body.len()
        };
        out.push((status, from_upstream));
        rest = &body[used..];
    }
    Ok((out, 0))
}

/// The length of the chunked body at the start of `b` (RFC 9112 §7.1, strictly),
/// `None` when it is incomplete.
fn chunked_len(b: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    let line = |at: usize| -> Result<Option<(usize, &[u8])>, String> {
        let Some(lf) = b[at..].iter().position(|&c| c == b'\n') else { return Ok(None) };
        if lf == 0 || b[at + lf - 1] != b'\r' {
            return Err("bare LF in a chunked response".into());
        }
        Ok(Some((at + lf + 1, &b[at..at + lf - 1])))
    };
    loop {
        let Some((next, size_line)) = line(at)? else { return Ok(None) };
        let size = size_line.split(|&c| c == b';').next().unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(size).unwrap_or("x"), 16)
            .map_err(|_| format!("bad chunk size {:?}", String::from_utf8_lossy(size_line)))?;
        at = next;
        if size == 0 {
            loop {
                let Some((next, trailer)) = line(at)? else { return Ok(None) };
                at = next;
                if trailer.is_empty() {
                    return Ok(Some(at));
                }
            }
        }
        if b.len() < at + size + 2 {
            return Ok(None);
        }
        if &b[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        at += size + 2;
    }
}

/// A request as the upstream received it, checked to be one well-formed request and no
/// more: its head parses with CRLF lines, one Host, no hop-by-hop field, at most one of
/// Content-Length and Transfer-Encoding, and the bytes after the head are exactly the
/// body that framing announces.
fn assert_one_well_formed_request(r: &support::upstream::Received) {
    let raw = &r.raw;
    let shown = String::from_utf8_lossy(raw);
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(n)) = req.parse(raw) else { panic!("upstream got a broken head: {shown:?}") };
    assert!((0..n).all(|i| raw[i] != b'\n' || raw[i - 1] == b'\r'), "bare LF upstream: {shown:?}");
    let count = |name: &str| req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count();
    assert_eq!(count("host"), 1, "{shown:?}");
    for hop in ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "expect"] {
        assert_eq!(count(hop), 0, "{hop} upstream: {shown:?}");
    }
    let (lengths, encodings) = (count("content-length"), count("transfer-encoding"));
    assert!(lengths + encodings <= 1, "framing in doubt upstream: {shown:?}");
    let body = &raw[n..];
    if r.chunked {
        assert_eq!(chunked_len(body), Ok(Some(body.len())), "{shown:?}");
    } else {
        assert_eq!(body.len(), r.body.len(), "{shown:?}");
        assert_eq!(body, &r.body[..]);
    }
}

on_both_drivers!(mutated_requests_get_a_well_formed_answer_or_a_close_and_smuggle_nothing_upstream, |d| {
    let up = Upstream::start();
    // Short timeouts, so a request that stops short costs little.
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let p = Proxy::start(&config_for(up.addr(), ROOT_ROUTE), d, limits);
    let mut rng = Rng(0x5eed_e2e0_0000_0001);
    let (mut relayed, mut refused, mut closed) = (0usize, 0usize, 0usize);
    for batch in 0..8 {
        let before = up.received().len();
        let cases: Vec<Vec<u8>> = (0..50).map(|_| mutated_request(&mut rng)).collect();
        // Ten connections at a time, as a proxy meets them.
        let answers: Vec<(Vec<u8>, Result<Answer, String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = cases
                .chunks(5)
                .map(|chunk| {
                    let addr = p.addr;
                    s.spawn(move || {
                        chunk.iter().map(|raw| (raw.clone(), answer_to(addr, raw, Duration::from_secs(5)))).collect()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h: std::thread::ScopedJoinHandle<'_, Vec<_>>| h.join().unwrap()).collect()
        });
        let mut from_upstream = 0;
        for (raw, answer) in &answers {
            let a = answer.as_ref().unwrap_or_else(|e| panic!("{e}\nfor {:?}", String::from_utf8_lossy(raw)));
            from_upstream += a.responses.iter().filter(|(status, up)| *up && *status >= 200).count();
            relayed += usize::from(a.responses.iter().any(|r| r.1));
            refused += usize::from(a.responses.iter().any(|r| !r.1 && r.0 >= 400));
            closed += usize::from(a.responses.is_empty() && a.partial == 0 && !a.reset);
        }
        // Every request the upstream received is one well-formed request, and it
        // received exactly the ones whose answers came back from it: none smuggled in.
        let got = up.wait_for(before + from_upstream + 1, Duration::from_millis(200));
        for r in &got[before..] {
            assert_one_well_formed_request(r);
        }
        assert_eq!(got.len() - before, from_upstream, "batch {batch}: requests upstream against answers relayed");
        let protocol: Vec<String> = up
            .errors()
            .into_iter()
            .filter(|e| !e.contains("EOF inside") && !e.contains("os error") && !e.contains("write:"))
            .collect();
        assert!(protocol.is_empty(), "the upstream saw malformed requests: {protocol:?}");
        // The proxy still serves.
        assert_eq!(p.send(&get("/after-batch")).status, 200, "batch {batch}");
    }
    // The cases must reach every outcome for the checks to mean anything.
    assert!(relayed > 60 && refused > 60 && closed > 5, "relayed {relayed}, refused {refused}, closed {closed}");
});
