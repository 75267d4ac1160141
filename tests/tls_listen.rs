//! TLS termination on `--tls-listen`, driven with real clients (curl, `openssl
//! s_client`) against the real binary: SNI picks the certificate, ALPN http/1.1, TLS 1.2
//! and 1.3, resumed sessions, `https`-only routes over plain HTTP, certificate reload
//! while connections stay open, handshake timeouts, and the client-credentials flow
//! end to end with the IdP on TLS too.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use support::binary::Ringgate;
use support::idp::TestIdp;
use support::temp::TempDir;
use support::tls::{Issued, TestCa};
use support::upstream::Upstream;

fn block(pem: &str, indent: usize) -> String {
    pem.lines().map(|l| format!("{}{l}\n", " ".repeat(indent))).collect()
}

/// A decK file: one service at `up` with an open route `/`, an `https`-only route
/// `/secure` (426), one redirecting with 301 (`/moved`), and `other` served for
/// `other.test` by SNI.
fn deck(up: std::net::SocketAddr, other: &Issued) -> String {
    format!(
        "_format_version: \"3.0\"\ncertificates:\n- cert: |\n{}  key: |\n{}  snis: [other.test]\nservices:\n- name: svc\n  url: http://{up}\n  routes:\n  - name: open\n    paths: [/]\n    strip_path: false\n  - name: secure\n    paths: [/secure]\n    protocols: [https]\n    strip_path: false\n  - name: moved\n    paths: [/moved]\n    protocols: [https]\n    https_redirect_status_code: 301\n    strip_path: false\n",
        block(&other.cert, 4),
        block(&other.key, 4)
    )
}

/// A CA, a default certificate naming `a.test` and `b.test`, and one for `other.test`;
/// the files a test needs, and a ringgate serving them.
struct Setup {
    dir: TempDir,
    ca: TestCa,
    up: Upstream,
    gate: Ringgate,
}

fn setup(name: &str, extra: &[&str]) -> Setup {
    let dir = TempDir::new(name);
    let ca = TestCa::new("tls listener CA");
    dir.write("ca.pem", &ca.pem);
    let default = ca.issue(&["a.test", "b.test"]);
    let cert = dir.write("default.pem", &default.cert);
    let key = dir.write("default.key", &default.key);
    let up = Upstream::start();
    let config = dir.write("kong.yaml", &deck(up.addr(), &ca.issue(&["other.test"])));
    let mut args = vec!["--config", config.to_str().unwrap(), "--tls-listen", "127.0.0.1:0"];
    args.extend(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let gate = Ringgate::start(&args, &[]);
    Setup { dir, ca, up, gate }
}

impl Setup {
    fn tls_port(&self) -> u16 {
        self.gate.tls.unwrap().port()
    }

    /// curl to `https://<name>:<port><path>` trusting the test CA, with `extra` flags.
    fn curl(&self, name: &str, path: &str, extra: &[&str]) -> Output {
        let port = self.tls_port();
        Command::new("curl")
            .args(["-sS", "-v", "--max-time", "10", "--cacert"])
            .arg(self.dir.path("ca.pem"))
            .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
            .args(extra)
            .arg(format!("https://{name}:{port}{path}"))
            .output()
            .expect("curl runs")
    }

    /// `openssl s_client` against the TLS port with `args`; stdout and stderr together.
    fn s_client(&self, args: &[&str]) -> String {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", self.tls_port()), "-CAfile"])
            .arg(self.dir.path("ca.pem"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        // Closing stdin ends the session once the handshake is done.
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The `CN = ...` of the certificate s_client was served.
fn served_cn(s_client: &str) -> String {
    let line =
        s_client.lines().find(|l| l.starts_with("subject=")).unwrap_or_else(|| panic!("no subject:\n{s_client}"));
    line.rsplit("CN = ").next().unwrap().trim().to_string()
}

#[test]
fn sni_picks_the_certificate_with_alpn_http11_on_tls12_and_tls13() {
    let s = setup("sni", &[]);
    for (flags, version) in [(&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"), (&["--tlsv1.3"][..], "TLSv1.3")] {
        let out = s.curl("b.test", "/hello?x=1", flags);
        let (_, log) = text(&out);
        assert!(out.status.success(), "curl failed: {log}");
        assert!(log.contains(&format!("SSL connection using {version}")), "{log}");
        assert!(log.contains("ALPN: server accepted http/1.1"), "{log}");
    }
    let got = s.up.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(g.target, "/hello?x=1");
        assert_eq!(g.header_str("x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(g.header_str("x-forwarded-port").as_deref(), Some(s.tls_port().to_string().as_str()));
    }
    // The decK file's certificate for its SNI; the default without SNI or for an
    // unknown name.
    assert_eq!(served_cn(&s.s_client(&["-servername", "other.test"])), "other.test");
    assert_eq!(served_cn(&s.s_client(&["-noservername"])), "a.test");
    assert_eq!(served_cn(&s.s_client(&["-servername", "unknown.test"])), "a.test");
    let alpn = s.s_client(&["-servername", "a.test", "-alpn", "h2,http/1.1"]);
    assert!(alpn.contains("ALPN protocol: http/1.1"), "{alpn}");
}

#[test]
fn sessions_resume_on_tls12_and_tls13() {
    let s = setup("resume", &[]);
    // TLS 1.2: openssl reconnects five times with the first session.
    let out = s.s_client(&["-servername", "a.test", "-tls1_2", "-reconnect"]);
    let reused = out.lines().filter(|l| l.starts_with("Reused,")).count();
    assert!(reused >= 4, "TLS 1.2: {reused} of 5 reconnects resumed:\n{out}");
    // TLS 1.3: a client that keeps the server's tickets resumes on its next connection.
    let config = rustls_client_config(&s.ca, &[&rustls::version::TLS13]);
    let mut first = rustls_client_with(config.clone(), s.tls_port(), "a.test");
    assert_eq!(request_on(&mut first, "/first"), 200);
    assert_eq!(first.conn.handshake_kind(), Some(rustls::HandshakeKind::Full));
    drop(first);
    let mut second = rustls_client_with(config, s.tls_port(), "a.test");
    assert_eq!(request_on(&mut second, "/second"), 200);
    assert_eq!(second.conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(second.conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
}

#[test]
fn https_only_routes_answer_plain_http_with_426_or_the_configured_redirect() {
    let s = setup("redirect", &[]);
    let plain = |path: &str| {
        let mut c = support::client::Client::connect(s.gate.proxy);
        c.write(format!("GET {path} HTTP/1.1\r\nHost: api.test:8000\r\n\r\n").as_bytes());
        c.response().expect("a response")
    };
    let r = plain("/secure/x");
    assert_eq!(r.status, 426, "{r:?}");
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));
    assert!(r.body_str().contains("Please use HTTPS protocol"));
    let r = plain("/moved/y?q=1");
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(r.header("location"), Some("https://api.test/moved/y?q=1"));
    assert_eq!(plain("/open").status, 200, "a route that takes http is served");
    // HTTP/1.0 without a Host: nowhere to redirect to, so the 426 offer, and the close
    // said in the same Connection header.
    let mut c = support::client::Client::connect(s.gate.proxy);
    c.write(b"GET /moved/y HTTP/1.0\r\n\r\n");
    let r = c.response().expect("a response");
    assert_eq!(r.status, 426, "{r:?}");
    assert_eq!(r.header("connection"), Some("Upgrade, close"), "{r:?}");
    // Over TLS the https-only route is served.
    assert!(s.curl("a.test", "/secure/x", &["-f"]).status.success());
    let targets: Vec<String> = s.up.wait_for(2, Duration::from_secs(5)).into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/open", "/secure/x"]);
}

type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A rustls client config trusting `ca`, for `versions`; it keeps session tickets.
fn rustls_client_config(
    ca: &TestCa,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// A TLS connection to the listener on `port`, for SNI `name`.
fn rustls_client_with(config: std::sync::Arc<rustls::ClientConfig>, port: u16, name: &str) -> TlsClient {
    let conn = rustls::ClientConnection::new(config, name.to_string().try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// A TLS connection trusting `ca` (any version).
fn rustls_client(ca: &TestCa, port: u16, name: &str) -> TlsClient {
    rustls_client_with(rustls_client_config(ca, rustls::DEFAULT_VERSIONS), port, name)
}

/// One keep-alive request on a TLS stream; the status.
fn request_on(stream: &mut TlsClient, path: &str) -> u16 {
    exchange_on(stream, "a.test", path, &[]).0
}

#[test]
fn a_reload_swaps_the_certificate_for_new_handshakes_while_open_connections_continue() {
    let mut s = setup("reload", &[]);
    let mut open = rustls_client(&s.ca, s.tls_port(), "a.test");
    assert_eq!(request_on(&mut open, "/before"), 200);
    assert_eq!(served_cn(&s.s_client(&["-servername", "a.test"])), "a.test");

    let renewed = s.ca.issue(&["renewed.test", "a.test"]);
    s.dir.write("default.pem", &renewed.cert);
    s.dir.write("default.key", &renewed.key);
    s.gate.signal("HUP");
    s.gate.wait_line("configuration reloaded", Duration::from_secs(10));
    assert_eq!(served_cn(&s.s_client(&["-servername", "a.test"])), "renewed.test", "the next handshake");
    assert_eq!(request_on(&mut open, "/after"), 200, "the open connection carries on");

    // A broken pair is refused and the running certificate stays.
    s.dir.write("default.key", &s.ca.issue(&["x.test"]).key);
    s.gate.signal("HUP");
    let refused = s.gate.wait_line("reload refused", Duration::from_secs(10));
    let log = s.gate.log();
    assert!(log.contains("the key does not belong to the certificate"), "{refused}\n{log}");
    assert_eq!(served_cn(&s.s_client(&["-servername", "a.test"])), "renewed.test");
}

#[test]
fn a_stalled_handshake_is_closed_at_the_timeout_without_holding_up_others() {
    let s = setup("stall", &["--tls-handshake-timeout", "0.5"]);
    let mut stalled = TcpStream::connect(("127.0.0.1", s.tls_port())).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    // Meanwhile another client is served at once.
    assert!(s.curl("a.test", "/busy", &["-f"]).status.success());
    let mut buf = [0u8; 16];
    let n = stalled.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "the stalled connection is closed, not answered");
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(4), "closed after {waited:?}");
}

#[test]
fn tls_listeners_without_any_certificate_refuse_to_start() {
    let dir = TempDir::new("nocert");
    let config = dir.write("kong.yaml", "_format_version: \"3.0\"\n");
    let out = Command::new(support::binary::bin())
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--tls-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS listeners need a certificate"), "{err}");
}

#[test]
fn client_credentials_flow_end_to_end_over_tls_with_the_idp_on_tls() {
    const CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
    let dir = TempDir::new("e2e");
    let ca = TestCa::new("e2e CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let idp_cert = ca.issue(&["127.0.0.1"]);
    let idp = TestIdp::start_tls(&dir.write("idp.pem", &idp_cert.cert), &dir.write("idp.key", &idp_cert.key));
    assert!(idp.issuer.starts_with("https://"), "{}", idp.issuer);
    let up = Upstream::start();
    let served = ca.issue(&["api.test"]);
    let config = dir.write(
        "kong.yaml",
        &format!(
            "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: r\n    paths: [/]\n    protocols: [https]\nplugins:\n- name: openid-connect\n  config:\n    issuer: {}\n    auth_methods: [client_credentials]\n    client_auth: [client_secret_post]\n",
            up.addr(),
            idp.issuer
        ),
    );
    let (cert, key) = (dir.write("api.pem", &served.cert), dir.write("api.key", &served.key));
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--idp-ca-file",
        ca_file.to_str().unwrap(),
    ];
    let gate = Ringgate::start(&args, &[]);
    let port = gate.tls.unwrap().port();
    let auth = format!("Authorization: Basic {}", STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1)));
    let curl = |path: &str| {
        Command::new("curl")
            .args(["-sS", "-f", "--max-time", "15", "--retry", "5", "--retry-all-errors", "--retry-delay", "1"])
            .args(["--cacert", ca_file.to_str().unwrap(), "--resolve", &format!("api.test:{port}:127.0.0.1")])
            .args(["-H", &auth])
            .arg(format!("https://api.test:{port}{path}"))
            .output()
            .unwrap()
    };
    let out = curl("/through");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = up.wait_for(1, Duration::from_secs(5));
    let forwarded = got[0].header_str("authorization").expect("a token upstream");
    assert!(forwarded.starts_with("Bearer ey"), "{forwarded}");
    assert!(!forwarded.contains(CLIENT.1));
    assert_eq!(got[0].header_str("x-forwarded-proto").as_deref(), Some("https"));
    drop(gate);

    // Without the IdP's CA the IdP is not trusted: a clear log line and 503.
    let args = &args[..8];
    let mut gate = Ringgate::start(args, &[]);
    let port = gate.tls.unwrap().port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "15", "--cacert", ca_file.to_str().unwrap()])
        .args([
            "--resolve",
            &format!("api.test:{port}:127.0.0.1"),
            "-H",
            &auth,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("https://api.test:{port}/refused"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "503");
    let line = gate.find_line("IdP discovery failed", Duration::from_secs(10));
    assert!(line.contains("127.0.0.1") && line.contains("invalid peer certificate"), "host and reason: {line}");
}

#[test]
fn a_certificate_posted_to_the_admin_api_is_served_by_the_next_handshake() {
    let s = setup("admin-cert", &[]);
    let mut open = rustls_client(&s.ca, s.tls_port(), "a.test");
    assert_eq!(request_on(&mut open, "/before"), 200);
    assert_eq!(served_cn(&s.s_client(&["-servername", "new.test"])), "a.test", "the default before");

    let issued = s.ca.issue(&["new.test"]);
    let body = format!(
        r#"{{"cert":{},"key":{},"snis":["new.test"]}}"#,
        ringgate::control::json_string(&issued.cert),
        ringgate::control::json_string(&issued.key)
    );
    let admin = s.gate.admin.expect("the Admin API");
    let (status, answer) = support::client::request_once(
        &admin.to_string(),
        "POST",
        "/certificates",
        &[("Content-Type", "application/json")],
        &body,
    );
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 201, "{answer}");
    assert!(!answer.contains("PRIVATE KEY"), "the key is not shown back");
    support::record::record("admin-response", &answer);

    assert_eq!(served_cn(&s.s_client(&["-servername", "new.test"])), "new.test", "the next handshake");
    assert_eq!(served_cn(&s.s_client(&["-servername", "a.test"])), "a.test", "other names unchanged");
    assert_eq!(request_on(&mut open, "/after"), 200, "the open connection carries on");
}

#[test]
fn a_closing_tls_connection_ends_with_close_notify() {
    let s = setup("tls-close-notify", &[]);
    let mut c = rustls_client(&s.ca, s.tls_port(), "a.test");
    c.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = Vec::new();
    // rustls reports a close without close_notify as UnexpectedEof: a truncation.
    c.read_to_end(&mut got).expect("a clean TLS close after the response");
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
}

/// A rustls client trusting `ca` that presents `cert` (PEM, with its key).
fn rustls_client_presenting(ca: &TestCa, cert: &Issued) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let chain =
        rustls::pki_types::CertificateDer::pem_slice_iter(cert.cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
    std::sync::Arc::new(config)
}

/// One keep-alive request for `host` with `headers` on a TLS stream: the status, and
/// the head and body as text.
fn exchange_on(stream: &mut TlsClient, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("a response");
        assert!(n > 0, "closed before a response");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return (text[9..12].parse().unwrap(), text);
            }
        }
    }
}

/// Every byte but ASCII letters and digits as %XX: a PEM in a header, as nginx's
/// `$ssl_client_escaped_cert` passes it on.
fn percent_encoded(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The payload of a compact JWS, parsed.
fn jwt_payload(token: &str) -> serde_json::Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn certificate_bound_tokens_pass_only_on_a_connection_presenting_their_certificate() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rustls::pki_types::pem::PemObject;
    let dir = TempDir::new("mtls-pop");
    let ca = TestCa::new("mtls pop CA");
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let served = ca.issue(&["api.test"]);
    let plugin = |mode: &str| {
        format!(
            "    plugins:\n    - name: openid-connect\n      config:\n        issuer: {}\n        auth_methods: [bearer]\n        proof_of_possession_mtls: {mode}\n        display_errors: true\n",
            idp.issuer
        )
    };
    let config = dir.write(
        "kong.yaml",
        &format!(
            "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: strict\n    paths: [/strict]\n    strip_path: false\n{}  - name: optional\n    paths: [/optional]\n    strip_path: false\n{}  - name: introspected\n    paths: [/introspected]\n    strip_path: false\n{}",
            up.addr(),
            plugin("strict"),
            plugin("optional"),
            // Opaque tokens, bound in their introspection answer.
            plugin("strict").replace(
                "auth_methods: [bearer]",
                "auth_methods: [introspection]\n        client_id: [basic-client]\n        \
                 client_secret: [basic-client-secret-0123456789abcdef]"
            )
        ),
    );
    let (cert, key) = (dir.write("api.pem", &served.cert), dir.write("api.key", &served.key));
    let mut args = vec!["--config", config.to_str().unwrap(), "--tls-listen", "127.0.0.1:0"];
    args.extend(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let gate = Ringgate::start(&args, &[]);
    let port = gate.tls.unwrap().port();

    // The caller's certificate, one issued by the CA and one self-signed by someone else.
    let mine = ca.issue(&["caller.test"]);
    let theirs = TestCa::new("someone else").issue(&["caller.test"]);
    let token_for = |client: (&str, &str), cert: Option<&Issued>, extra: &str| {
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        let sent = cert.map(|c| percent_encoded(&c.cert));
        if let Some(pem) = &sent {
            headers.push(("x-client-certificate", pem));
        }
        let form = format!("grant_type=client_credentials&client_id={}&client_secret={}{extra}", client.0, client.1);
        let authority = idp.issuer.trim_start_matches("http://");
        let (status, body) = support::client::request_once(authority, "POST", "/token", &headers, &form);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    const BOUND_CLIENT: (&str, &str) = ("mtls-bound-client", "mtls-bound-client-secret-0123456789");
    let bound = token_for(BOUND_CLIENT, Some(&mine), "");
    let plain = token_for(("post-client", "post-client-secret-0123456789abcdef"), None, "");
    let opaque = token_for(BOUND_CLIENT, Some(&mine), "&resource=urn%3Aringgate%3Aopaque");
    assert_eq!(opaque.split('.').count(), 1, "an opaque token: {opaque}");
    // The IdP bound the token to this certificate's SHA-256 thumbprint (RFC 8705 §3.1).
    let der = rustls::pki_types::CertificateDer::from_pem_slice(mine.cert.as_bytes()).unwrap();
    let thumbprint = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &der).as_ref());
    assert_eq!(jwt_payload(&bound)["cnf"]["x5t#S256"], thumbprint.as_str());
    assert!(jwt_payload(&plain).get("cnf").is_none());

    let bearer = |t: &str| format!("Bearer {t}");
    let (bound_auth, plain_auth) = (bearer(&bound), bearer(&plain));
    // The connections: with this certificate, with another, and without one.
    const MINE: usize = 0;
    const THEIRS: usize = 1;
    const NONE: usize = 2;
    let mut conns = [
        rustls_client_with(rustls_client_presenting(&ca, &mine), port, "api.test"),
        rustls_client_with(rustls_client_presenting(&ca, &theirs), port, "api.test"),
        rustls_client(&ca, port, "api.test"),
    ];

    // Its own certificate: through, twice (the second time the token check comes from
    // the worker's cache of verified tokens, and the certificate is compared again).
    for path in ["/strict/1", "/strict/2", "/optional/3"] {
        let (status, text) = exchange_on(&mut conns[MINE], "api.test", path, &[("Authorization", &bound_auth)]);
        assert_eq!(status, 200, "{path}: {text}");
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.header_str("authorization").as_deref() == Some(bound_auth.as_str())));

    // Refused, each with the challenge and its own reason; none reaches the upstream.
    let refusals = [
        (NONE, "/strict/a", &bound_auth, "the connection presented none"),
        (THEIRS, "/strict/b", &bound_auth, "bound to another client certificate"),
        (MINE, "/strict/c", &plain_auth, "not bound to a client certificate"),
        (NONE, "/optional/d", &bound_auth, "the connection presented none"),
        (THEIRS, "/optional/e", &bound_auth, "bound to another client certificate"),
    ];
    for (conn, path, auth, reason) in refusals {
        let (status, text) = exchange_on(&mut conns[conn], "api.test", path, &[("Authorization", auth)]);
        assert_eq!(status, 401, "{path}: {text}");
        assert!(text.contains("WWW-Authenticate: Bearer realm=\"127.0.0.1\""), "{path}: {text}");
        assert!(text.contains(reason), "{path}: {text}");
    }
    // An opaque token is bound by its introspection answer's cnf.
    let opaque_auth = bearer(&opaque);
    let (status, text) =
        exchange_on(&mut conns[MINE], "api.test", "/introspected/mine", &[("Authorization", &opaque_auth)]);
    assert_eq!(status, 200, "{text}");
    let (status, text) =
        exchange_on(&mut conns[THEIRS], "api.test", "/introspected/theirs", &[("Authorization", &opaque_auth)]);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("bound to another client certificate"), "{text}");
    // `optional`: an unbound token passes, with or without a certificate.
    for conn in [NONE, MINE] {
        let (status, text) =
            exchange_on(&mut conns[conn], "api.test", "/optional/plain", &[("Authorization", &plain_auth)]);
        assert_eq!(status, 200, "{text}");
    }
    let got = up.wait_for(6, Duration::from_secs(5));
    assert_eq!(got.len(), 6, "the refused requests reached no upstream");
    assert_eq!(got[3].target, "/introspected/mine");
    assert!(got[4..].iter().all(|r| r.target == "/optional/plain"));

    let admin = gate.admin.expect("the Admin API").to_string();
    let (_, metrics) = support::client::request_once(&admin, "GET", "/metrics", &[], "");
    let metrics = String::from_utf8_lossy(&metrics);
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("ringgate_auth_failures_total{") && l.contains("reason=\"certificate_mismatch\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, 6, "{metrics}");
    drop(gate);

    // Without a TLS listener no caller can present a certificate: said at start.
    let mut plain = Ringgate::start(&["--config", config.to_str().unwrap()], &[]);
    let line = plain.find_line("proof_of_possession_mtls is on", Duration::from_secs(10));
    assert!(line.contains("no TLS listener") && line.contains("refused"), "{line}");
}
