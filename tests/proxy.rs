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

on_both_drivers!(leftover_upstream_bytes_never_reach_the_next_request, |d| {
    // An upstream that sends more than its Content-Length says: the extra bytes must not
    // be read as the next response, so its connection is not reused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsmuggl");
                }
            });
        }
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                let mut n = 0;
                while let Ok(read) = stream.read(&mut buf) {
                    if read == 0 {
                        return;
                    }
                    let status: &[u8] = if n % 2 == 0 { b"HTTP/1.1 200" } else { b"HTTP/1.1 200 \xc3\x89t\xc3\xa9" };
                    let _ = stream.write_all(&[status, b"\r\nContent-Length: 2\r\n\r\nok"].concat());
                    n += 1;
                }
            });
        }
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
