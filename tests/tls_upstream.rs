//! `https` services: TLS to the upstream with SNI and verification (system roots plus
//! the service's `ca_certificates`), `tls_verify: false`, a client certificate, pooling;
//! a certificate the service does not trust is a 502.

mod support;

use std::time::Duration;

use ringgate::server::{IoDriver, Limits};
use support::client::Proxy;
use support::tls::{server_config, Issued, TestCa, TlsFront};
use support::upstream::Upstream;

const CA_ID: &str = "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";
const CLIENT_ID: &str = "7b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";

fn block(pem: &str, indent: usize) -> String {
    pem.lines().map(|l| format!("{}{l}\n", " ".repeat(indent))).collect()
}

/// A decK file with one https service at `front` (by IP, so the certificate names
/// 127.0.0.1), trusting `ca` when given, with `extra` service keys.
fn deck(front: std::net::SocketAddr, ca: Option<&TestCa>, client: Option<&Issued>, extra: &str) -> String {
    let mut doc = String::from("_format_version: \"3.0\"\n");
    if let Some(ca) = ca {
        doc.push_str(&format!("ca_certificates:\n- id: {CA_ID}\n  cert: |\n{}", block(&ca.pem, 4)));
    }
    if let Some(c) = client {
        doc.push_str(&format!(
            "certificates:\n- id: {CLIENT_ID}\n  cert: |\n{}  key: |\n{}",
            block(&c.cert, 4),
            block(&c.key, 4)
        ));
    }
    doc.push_str(&format!("services:\n- name: secure\n  url: https://{front}\n  retries: 0\n"));
    if ca.is_some() {
        doc.push_str(&format!("  ca_certificates: [{CA_ID}]\n"));
    }
    if client.is_some() {
        doc.push_str(&format!("  client_certificate: {CLIENT_ID}\n"));
    }
    doc.push_str(extra);
    doc.push_str("  routes:\n  - name: r\n    paths: [/]\n    strip_path: false\n");
    doc
}

fn get(p: &Proxy, path: &str) -> support::client::Response {
    p.send(format!("GET {path} HTTP/1.1\r\nHost: api.example\r\n\r\n").as_bytes())
}

on_both_drivers!(https_service_is_reached_over_tls_and_its_connections_are_pooled, |d| {
    let ca = TestCa::new("upstream CA");
    let up = Upstream::start();
    let front = TlsFront::start(up.addr(), server_config(&ca.issue(&["127.0.0.1"]), None));
    let p = Proxy::start(&deck(front.addr, Some(&ca), None, ""), d, Limits::default());
    let mut c = p.connect();
    for i in 0..3 {
        c.write(format!("GET /tls/{i} HTTP/1.1\r\nHost: api.example\r\n\r\n").as_bytes());
        let r = c.response().expect("a response");
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.iter().map(|g| g.target.as_str()).collect::<Vec<_>>(), ["/tls/0", "/tls/1", "/tls/2"]);
    assert_eq!(got[0].header_str("host").as_deref(), Some(front.addr.to_string().as_str()));
    assert_eq!(front.handshakes(), 1, "one TLS connection, reused from the pool");
});

#[test]
fn a_certificate_the_service_does_not_trust_is_a_502() {
    let ca = TestCa::new("upstream CA");
    let other = TestCa::new("someone else");
    let up = Upstream::start();
    let cases: [(&str, Issued, Option<&TestCa>); 3] = [
        ("unknown issuer", other.issue(&["127.0.0.1"]), Some(&ca)),
        ("wrong name", ca.issue(&["10.9.9.9"]), Some(&ca)),
        ("expired", ca.issue_expired(&["127.0.0.1"]), Some(&ca)),
    ];
    for (what, issued, trust) in cases {
        let front = TlsFront::start(up.addr(), server_config(&issued, None));
        let p = Proxy::start(&deck(front.addr, trust, None, ""), IoDriver::Legacy, Limits::default());
        let r = get(&p, "/x");
        assert_eq!(r.status, 502, "{what}: {r:?}");
        assert!(r.body_str().contains("An invalid response was received from the upstream server"), "{what}");
        assert_eq!(front.handshakes(), 0, "{what}");
    }
    // No ca_certificates: the system roots do not know the test CA either.
    let front = TlsFront::start(up.addr(), server_config(&ca.issue(&["127.0.0.1"]), None));
    let p = Proxy::start(&deck(front.addr, None, None, ""), IoDriver::Legacy, Limits::default());
    assert_eq!(get(&p, "/x").status, 502);
    assert!(up.received().is_empty(), "nothing reached the upstream");
}

#[test]
fn tls_verify_false_accepts_any_certificate() {
    let other = TestCa::new("someone else");
    let up = Upstream::start();
    let front = TlsFront::start(up.addr(), server_config(&other.issue_expired(&["elsewhere.test"]), None));
    let p = Proxy::start(&deck(front.addr, None, None, "  tls_verify: false\n"), IoDriver::Legacy, Limits::default());
    assert_eq!(get(&p, "/unverified").status, 200);
    assert_eq!(up.wait_for(1, Duration::from_secs(5))[0].target, "/unverified");
}

/// An upstream behind a TLS front that asks for a client certificate: the front's CA,
/// the upstream, the front, and a certificate the front accepts.
fn mtls_front() -> (TestCa, Upstream, TlsFront, Issued) {
    let ca = TestCa::new("upstream CA");
    let clients = TestCa::new("client CA");
    let up = Upstream::start();
    let front = TlsFront::start(up.addr(), server_config(&ca.issue(&["127.0.0.1"]), Some(&clients)));
    let client = clients.issue(&["ringgate.test"]);
    (ca, up, front, client)
}

#[test]
fn client_certificate_is_presented_to_an_upstream_that_requires_one() {
    let (ca, up, front, client) = mtls_front();
    let p = Proxy::start(&deck(front.addr, Some(&ca), Some(&client), ""), IoDriver::Legacy, Limits::default());
    assert_eq!(get(&p, "/mtls").status, 200);
    let p = Proxy::start(&deck(front.addr, Some(&ca), None, ""), IoDriver::Legacy, Limits::default());
    assert_eq!(get(&p, "/no-cert").status, 502, "the upstream refuses a client without a certificate");
    let got = up.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "/mtls");
}

#[test]
fn the_binary_logs_the_host_and_the_reason_of_a_failed_upstream_handshake() {
    let ca = TestCa::new("upstream CA");
    let other = TestCa::new("someone else");
    let up = Upstream::start();
    let front = TlsFront::start(up.addr(), server_config(&other.issue(&["127.0.0.1"]), None));
    let dir = support::temp::TempDir::new("tls-upstream-log");
    let config = dir.write("kong.yaml", &deck(front.addr, Some(&ca), None, ""));
    let mut r = support::binary::Ringgate::start(&["--config", config.to_str().unwrap()], &[]);
    assert_eq!(r.get("/logged"), 502);
    let line = r.find_line("upstream connect failed", Duration::from_secs(5));
    assert!(line.contains("host=127.0.0.1"), "the service's host: {line}");
    assert!(line.contains("TLS handshake failed: invalid peer certificate: UnknownIssuer"), "the reason: {line}");
    assert!(up.received().is_empty());
}

#[test]
fn an_upstreams_client_certificate_is_presented_by_its_services_and_its_https_probes() {
    let (ca, up, front, client) = mtls_front();
    // The service names the upstream and has no certificate of its own; the upstream
    // has one, and probes /health over TLS (no CA for probes: verification off).
    let doc = |with_cert: bool| {
        let mut doc = String::from("_format_version: \"3.0\"\n");
        doc.push_str(&format!("ca_certificates:\n- id: {CA_ID}\n  cert: |\n{}", block(&ca.pem, 4)));
        doc.push_str(&format!(
            "certificates:\n- id: {CLIENT_ID}\n  cert: |\n{}  key: |\n{}",
            block(&client.cert, 4),
            block(&client.key, 4)
        ));
        doc.push_str("upstreams:\n- name: mtls.internal\n");
        if with_cert {
            doc.push_str(&format!("  client_certificate: {{id: {CLIENT_ID}}}\n"));
        }
        doc.push_str(&format!(
            "  healthchecks:\n    active:\n      type: https\n      https_verify_certificate: false\n      \
             http_path: /health\n      healthy: {{interval: 0.05}}\n      unhealthy: {{interval: 0.05, tcp_failures: 1}}\n  \
             targets: [{{target: '{}'}}]\n",
            front.addr
        ));
        doc.push_str(&format!(
            "services:\n- name: secure\n  protocol: https\n  host: mtls.internal\n  retries: 0\n  \
             ca_certificates: [{CA_ID}]\n  routes:\n  - paths: [/]\n    strip_path: false\n"
        ));
        doc
    };
    let p = Proxy::start(&doc(true), IoDriver::Legacy, Limits::default());
    assert_eq!(get(&p, "/mtls").status, 200);
    let probed = || up.received().iter().any(|r| r.target == "/health");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !probed() {
        assert!(std::time::Instant::now() < deadline, "no https probe got through with the certificate");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(p.shared.load().health[0].peer.is_healthy());
    drop(p);

    // Without it, the handshake fails: probes take the target out, and requests get 503.
    let p = Proxy::start(&doc(false), IoDriver::Legacy, Limits::default());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.shared.load().health[0].peer.is_healthy() {
        assert!(std::time::Instant::now() < deadline, "probes without a certificate kept the target healthy");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(&p, "/no-cert").status, 503, "the only target is down");
    assert!(up.received().iter().all(|r| r.target != "/no-cert"));
}
