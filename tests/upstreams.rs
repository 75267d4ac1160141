//! Kong upstreams end to end: a service whose host names an upstream is balanced over
//! the upstream's targets, each a real recording upstream on 127.0.0.1. Requests of a
//! test go over one keep-alive connection, so one worker serves them and the
//! round-robin order is exact. Every test runs on both monoio drivers.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ringgate::server::Limits;
use support::client::{Client, Proxy};
use support::upstream::Upstream;

const WAIT: Duration = Duration::from_secs(5);

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\n\r\n").into_bytes()
}

/// Sends `n` GETs of `path` on one connection; every answer must be 200.
fn send_all(c: &mut Client, path: &str, n: usize) {
    for i in 0..n {
        c.write(&get(path));
        let r = c.response().unwrap_or_else(|| panic!("request {i}: no response"));
        assert_eq!(r.status, 200, "request {i}: {}", r.body_str());
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

on_both_drivers!(requests_go_round_robin_over_the_targets_by_weight, |d| {
    let (a, b) = (Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: orders.internal\n  targets:\n  - target: {}\n    weight: 300\n  \
         - target: {}\n    weight: 100\nservices:\n- name: orders\n  host: orders.internal\n  routes: [{{paths: [/]}}]\n",
        a.addr(),
        b.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    send_all(&mut p.connect(), "/x", 40);
    let (got_a, got_b) = (a.wait_for(30, WAIT), b.wait_for(10, WAIT));
    assert_eq!((got_a.len(), got_b.len()), (30, 10));
    // Without `host_header`, each target gets its own address as Host (Kong's rule).
    assert!(got_a.iter().all(|r| r.header_str("host") == Some(a.addr().to_string())));
    assert!(got_b.iter().all(|r| r.header_str("host") == Some(b.addr().to_string())));
    assert!(a.errors().is_empty() && b.errors().is_empty());
});

on_both_drivers!(the_upstreams_host_header_goes_with_the_targets_port, |d| {
    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  host_header: api.internal\n  targets: [{{target: '{}'}}]\n\
         services:\n- host: u\n  routes:\n  - paths: [/p]\n  - paths: [/keep]\n    preserve_host: true\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    send_all(&mut c, "/p", 1);
    send_all(&mut c, "/keep", 1);
    let got = up.wait_for(2, WAIT);
    assert_eq!(got[0].header_str("host"), Some(format!("api.internal:{}", up.addr().port())));
    assert_eq!(got[1].header_str("host").as_deref(), Some("api.example.com"));
});

on_both_drivers!(a_target_that_refuses_connections_is_passed_over_with_the_next_ones_host, |d| {
    let up = Upstream::start();
    let down = closed_port();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  targets: [{{target: '{down}'}}, {{target: '{}'}}]\n\
         services:\n- host: u\n  retries: 2\n  routes: [{{paths: [/]}}]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    send_all(&mut p.connect(), "/r", 6);
    let got = up.wait_for(6, WAIT);
    assert_eq!(got.len(), 6);
    // The head was written for the refused target first: its Host was replaced.
    for r in &got {
        assert_eq!(r.header_str("host"), Some(up.addr().to_string()));
        assert_eq!(r.header_all("host").len(), 1);
        assert_eq!(r.target, "/r");
    }
    assert!(up.errors().is_empty(), "{:?}", up.errors());
});

on_both_drivers!(services_taking_turns_each_keep_their_own_rotation, |d| {
    let (a1, a2, b1, b2) = (Upstream::start(), Upstream::start(), Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: a\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\n\
         - name: b\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\n\
         services:\n- host: a\n  routes: [{{paths: [/a]}}]\n- host: b\n  routes: [{{paths: [/b]}}]\n",
        a1.addr(),
        a2.addr(),
        b1.addr(),
        b2.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    for _ in 0..8 {
        send_all(&mut c, "/a", 1);
        send_all(&mut c, "/b", 1);
    }
    let counts: Vec<usize> = [&a1, &a2, &b1, &b2].iter().map(|u| u.wait_for(4, WAIT).len()).collect();
    assert_eq!(counts, vec![4, 4, 4, 4]);
});

on_both_drivers!(an_upstream_with_no_target_to_send_to_answers_503, |d| {
    let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: empty\n- name: idle\n  targets: [{target: '127.0.0.1:1', weight: 0}]\n\
                services:\n- host: empty\n  routes: [{paths: [/e]}]\n- host: idle\n  routes: [{paths: [/i]}]\n";
    let p = Proxy::start(yaml, d, Limits::default());
    for path in ["/e", "/i"] {
        let r = p.send(&get(path));
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.body_str(), r#"{"message":"failure to get a peer from the ring-balancer"}"#, "{path}");
    }
});
