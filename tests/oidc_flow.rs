//! The `openid-connect` plugin end to end, black box: a real downstream socket, the proxy
//! library on 127.0.0.1, the real test OpenID Provider (`tests/idp/`) and a recording
//! upstream. Every test asserts what the upstream RECEIVED and what the IdP COUNTED; the
//! expected behaviour is `SPEC.md` §1–§4, cited where a test relies on one reading of it.
//!
//! Each test that changes IdP state (faults, ttl, keys) starts its own `TestIdp`, so tests
//! run in parallel. Every request loop is bounded in count and in time. A representative
//! subset runs on both monoio drivers (`on_both_drivers!`); the rest on the legacy one.
//!
//! Readings of the SPEC these tests commit to (each also noted where it is used):
//! - The IdP client authentication is `token_endpoint_auth_method`, else `client_auth[0]`,
//!   else discovery's first of basic/post/jwt (SPEC §1.4; Kong ignores `client_auth` here).
//! - "Expired" is RFC 7519 §4.1.4: refused on or after `exp`; `iat` in the future is
//!   refused too (SPEC §1.5 lists `iat` with `leeway`, default 0).
//! - The upstream's receive time is bounded below by the client's send time, so "never
//!   forward an expired token" is checked as `exp > send time`.
//! - The rediscovery cooldown is asserted so it holds whether or not the first JWKS fetch
//!   starts it: at most `1 + elapsed / rediscovery_lifetime` fetches in a flood.
//! - Malformed Basic values (`!!!`, no colon, empty id) are "no credentials": 401 without
//!   a token call (SPEC §1.2, Kong's raw-string fallback for bad base64).
//! - `hide_credentials: false` forwards query and body unchanged (SPEC §1.6).
//! - `Retry-After` is delta-seconds; a caller that waits it (capped at 20 s here) after
//!   the IdP is back succeeds (SPEC §3, §4 give no numbers).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use ringgate::jose::{KeySet, Policy};
use ringgate::server::{IoDriver, Limits};
use ringgate::snapshot::{Resolved, Snapshot};
use simd_json::prelude::*;
use simd_json::OwnedValue;
use support::client::{snapshot, Proxy, Response};
use support::idp::TestIdp;
use support::upstream::{Received, Upstream};

// ----- the IdP's fixed clients (tests/idp/clients.json) -----

const POST_CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
const BASIC_CLIENT: (&str, &str) = ("basic-client", "basic-client-secret-0123456789abcdef");
const JWT_CLIENT: (&str, &str) = ("jwt-client", "jwt-client-secret-0123456789abcdefghijklmnopqrstuv");
/// Registered for client_secret_basic; the secret holds every character RFC 6749 §2.3.1's
/// form-encoding changes.
const SPECIAL_BASIC: (&str, &str) = ("special-basic", "p+a:s/s=w&o rd");
const SPECIAL_POST: (&str, &str) = ("special-post", "p+a:s/s=w&o rd");
/// Registered for client_secret_post; its access tokens carry the extra claims of its
/// `token_claims`: groups (an array), roles (a space-separated string), tenant, tier,
/// beta, retired (`false`), org (an object) and smuggle (a value with CR LF).
const CLAIMS_CLIENT: (&str, &str) = ("claims-client", "claims-client-secret-0123456789abcdef");

/// The audience the test IdP puts in every access token.
const IDP_AUDIENCE: &str = "urn:ringgate:test-api";

fn load_client(i: usize) -> (String, String) {
    (format!("load-{i}"), format!("load-secret-{i}"))
}

// ----- configuration -----

/// The plugin block of the decK file the mission starts from, exactly as written in
/// config/kong-oidc.yaml (from its `- name: openid-connect` line to the end).
fn seed_plugin() -> &'static str {
    const SEED: &str = include_str!("../config/kong-oidc.yaml");
    &SEED[SEED.find("- name: openid-connect").expect("the seed file's plugin")..]
}

/// Where the seed plugin is attached.
#[derive(Clone, Copy, Debug)]
enum Scope {
    Global,
    Service,
    Route,
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A decK file with the seed plugin at `scope`: service `svc` on `up`, route `guarded` on
/// `/` and, for the route scope, a second route `open` on `/open` without the plugin.
fn seed_deck(up: SocketAddr, scope: Scope) -> String {
    let mut y = String::from("_format_version: \"3.0\"\nservices:\n- name: svc\n");
    y.push_str(&format!("  url: http://{up}\n"));
    if let Scope::Service = scope {
        y.push_str("  plugins:\n");
        y.push_str(&indent(seed_plugin(), 2));
    }
    y.push_str("  routes:\n  - name: guarded\n    paths: [/]\n    strip_path: false\n");
    if let Scope::Route = scope {
        y.push_str("    plugins:\n");
        y.push_str(&indent(seed_plugin(), 4));
        y.push_str("  - name: open\n    paths: [/open]\n    strip_path: false\n");
    }
    if let Scope::Global = scope {
        y.push_str("plugins:\n");
        y.push_str(seed_plugin());
    }
    y
}

/// Loads decK text through the real `${{ env ... }}` templating with the `DECK_` values of
/// the seed (the configured client id and secret are deliberately not the caller's: SPEC
/// §1.3 says the caller's are used), without touching the process environment.
fn seed_snapshot(yaml: &str, issuer: &str) -> Snapshot {
    let issuer = issuer.to_string();
    let env = move |name: &str| match name {
        "DECK_ISSUER" => Some(issuer.clone()),
        "DECK_CLIENT_ID" => Some("configured-client-not-the-caller".to_string()),
        "DECK_CLIENT_SECRET" => Some("configured-secret-not-the-callers".to_string()),
        _ => None,
    };
    let cfg = ringgate::config::load_str(yaml, "kong.yaml", &env).unwrap_or_else(|e| panic!("seed loads:\n{e}"));
    Snapshot::build(cfg, &mut Resolved::new()).unwrap_or_else(|e| panic!("seed compiles:\n{e}"))
}

/// A decK file with one global openid-connect plugin for `issuer`; `body` is the rest of
/// its `config` as unindented YAML. Route `r` on `/` keeps the path (`strip_path: false`).
fn deck(up: SocketAddr, issuer: &str, body: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{up}\n  routes:\n  - name: r\n    paths: [/]\n    strip_path: false\nplugins:\n- name: openid-connect\n  config:\n    issuer: {issuer}\n{}",
        indent(body, 4)
    )
}

/// The seed's settings without templating: caller credentials in a Basic header,
/// client_secret_post to the IdP (so `post-client` / `special-post` are the callers).
const CC_HEADER_POST: &str =
    "auth_methods: [client_credentials]\nclient_credentials_param_type: [header]\nclient_auth: [client_secret_post]\n";

/// Caller credentials in a Basic header, client_secret_basic to the IdP (the `load-<i>`
/// clients and `basic-client` are registered for it).
const CC_HEADER_BASIC: &str =
    "auth_methods: [client_credentials]\nclient_credentials_param_type: [header]\ntoken_endpoint_auth_method: client_secret_basic\n";

fn start(up: &Upstream, idp: &TestIdp, body: &str, driver: IoDriver) -> Proxy {
    Proxy::start(&deck(up.addr(), &idp.issuer, body), driver, Limits::default())
}

/// The default driver for tests that do not run on both.
const DRIVER: IoDriver = IoDriver::Legacy;

// ----- requests -----

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: api.example.com\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut raw = r.into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn get(p: &Proxy, target: &str, headers: &[(&str, &str)]) -> Response {
    p.send(&request("GET", target, headers, b""))
}

fn get_as(p: &Proxy, (id, secret): (&str, &str)) -> Response {
    get(p, "/", &[("Authorization", &basic(id, secret))])
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

// ----- tokens -----

fn json(mut bytes: Vec<u8>) -> OwnedValue {
    simd_json::to_owned_value(&mut bytes).unwrap_or_else(|e| panic!("JSON expected: {e}"))
}

fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Part `i` (0 header, 1 payload) of a compact JWS, decoded as JSON.
fn jws_part(token: &str, i: usize) -> OwnedValue {
    let part = token.split('.').nth(i).expect("a JWS part");
    json(URL_SAFE_NO_PAD.decode(part).expect("base64url JWS part"))
}

fn claim_str(token: &str, name: &str) -> Option<String> {
    jws_part(token, 1).get(name).and_then(|v| v.as_str().map(str::to_string))
}

fn claim_u64(token: &str, name: &str) -> u64 {
    jws_part(token, 1).get(name).and_then(|v| v.as_u64()).unwrap_or_else(|| panic!("numeric {name} claim"))
}

/// The token the upstream received: exactly one `Authorization` header, `Bearer <jws>`.
fn forwarded_token(r: &Received) -> String {
    let token = forwarded_bearer(r);
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
    token
}

/// The token of the one `Authorization: Bearer <token>` header the upstream received.
fn forwarded_bearer(r: &Received) -> String {
    let all = r.header_all("authorization");
    assert_eq!(all.len(), 1, "exactly one Authorization header upstream: {:?}", r.headers);
    let v = String::from_utf8(all[0].to_vec()).unwrap();
    v.strip_prefix("Bearer ").unwrap_or_else(|| panic!("Bearer upstream, got {v:?}")).to_string()
}

/// No header the upstream received carries `needle` (e.g. the caller's Basic value).
fn assert_no_header_contains(r: &Received, needle: &str) {
    for (n, v) in &r.headers {
        let v = String::from_utf8_lossy(v);
        assert!(!v.contains(needle), "header {n}: {v} carries the caller's credentials");
    }
}

/// Verifies `token` as an access token of `idp`: its `kid` is in the IdP's JWKS (fetched
/// now), the signature holds, `iss` is the issuer, it is not expired.
fn assert_idp_token(idp: &TestIdp, token: &str, client_id: &str) {
    let jwks = idp_get(idp, "/jwks");
    let kid = jws_part(token, 0).get("kid").and_then(|k| k.as_str().map(str::to_string)).expect("kid");
    let doc = json(jwks.clone());
    let kids: Vec<String> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.get("kid").and_then(|v| v.as_str().map(str::to_string)))
        .collect();
    assert!(kids.contains(&kid), "kid {kid} not in the IdP's JWKS {kids:?}");
    let keys = KeySet::from_jwks(&jwks).expect("the IdP's JWKS");
    let verified = ringgate::jose::verify(token, &keys, &Policy::new(&idp.issuer), unix_now() as u64)
        .unwrap_or_else(|e| panic!("the forwarded token verifies: {e:?}"));
    assert_eq!(verified.iss(), Some(idp.issuer.as_str()));
    assert_eq!(claim_str(token, "client_id").as_deref(), Some(client_id), "token of the caller's client");
    assert_eq!(claim_str(token, "aud").as_deref(), Some(IDP_AUDIENCE));
}

// ----- the IdP, by its own HTTP API -----

/// A request to the IdP on a fresh connection; returns status and body (de-chunked).
fn idp_http(idp: &TestIdp, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<u8>) {
    let authority = idp.issuer.trim_start_matches("http://").split('/').next().unwrap();
    support::client::request_once(authority, method, path, headers, body)
}

fn idp_get(idp: &TestIdp, path: &str) -> Vec<u8> {
    let (status, body) = idp_http(idp, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    body
}

/// An access token for `post-client` straight from the IdP (client_secret_post).
fn issue_token(idp: &TestIdp) -> String {
    issue_token_for(idp, POST_CLIENT)
}

/// An access token for a client registered for client_secret_post, straight from the IdP.
fn issue_token_for(idp: &TestIdp, client: (&str, &str)) -> String {
    issue_token_with(idp, client, "scope=openid")
}

/// [`issue_token_for`] with `params` (form-encoded) in the request.
fn issue_token_with(idp: &TestIdp, (id, secret): (&str, &str), params: &str) -> String {
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}&{params}");
    let (status, body) =
        idp_http(idp, "POST", "/token", &[("Content-Type", "application/x-www-form-urlencoded")], &form);
    assert_eq!(status, 200, "direct token request: {}", String::from_utf8_lossy(&body));
    json(body)["access_token"].as_str().expect("access_token").to_string()
}

fn control_ok(idp: &TestIdp, method: &str, path: &str, body: &str) -> OwnedValue {
    let (status, text) = idp.control(method, path, body);
    assert_eq!(status, 200, "{method} /_control{path}: {text}");
    json(text.into_bytes())
}

fn counters(idp: &TestIdp) -> OwnedValue {
    control_ok(idp, "GET", "/counters", "")
}

fn token_total(idp: &TestIdp) -> u64 {
    counters(idp)["token_total"].as_u64().unwrap()
}

fn jwks_fetches(idp: &TestIdp) -> u64 {
    counters(idp)["jwks"].as_u64().unwrap()
}

/// Token requests the IdP counted for `client` made with `method`.
fn token_by_method(idp: &TestIdp, client: &str, method: &str) -> u64 {
    counters(idp)
        .get("token_by_method")
        .and_then(|m| m.get(client))
        .and_then(|c| c.get(method))
        .and_then(|n| n.as_u64())
        .unwrap_or(0)
}

fn set_ttl(idp: &TestIdp, seconds: u64) {
    control_ok(idp, "POST", "/ttl", &format!(r#"{{"seconds":{seconds}}}"#));
}

/// The host of the issuer: the realm of `WWW-Authenticate` (SPEC §4).
fn realm(idp: &TestIdp) -> String {
    let authority = idp.issuer.trim_start_matches("http://").split('/').next().unwrap();
    authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string()
}

// ----- what the downstream sees (SPEC §4) -----

fn assert_json_message(r: &Response, message: &str) {
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "JSON error body, got content-type {ct:?}");
    assert_eq!(r.body_str(), format!(r#"{{"message":"{message}"}}"#));
}

fn assert_www_authenticate(r: &Response, idp: &TestIdp, error: &str) {
    let www = r.header("www-authenticate").unwrap_or_else(|| panic!("WWW-Authenticate on {}: {r:?}", r.status));
    let prefix = format!(r#"Bearer realm="{}""#, realm(idp));
    assert!(www.starts_with(&prefix), "{www:?} should start with {prefix:?}");
    assert!(www.contains(&format!(r#"error="{error}""#)), "{www:?} should carry error=\"{error}\"");
}

/// 401, `error="invalid_token"`, `{"message":"Unauthorized"}`.
fn assert_unauthorized(r: &Response, idp: &TestIdp) {
    assert_eq!(r.status, 401, "{r:?}");
    assert_www_authenticate(r, idp, "invalid_token");
    assert_json_message(r, "Unauthorized");
}

/// 403, `error="insufficient_scope"`, `{"message":"Forbidden"}`.
fn assert_forbidden(r: &Response, idp: &TestIdp) {
    assert_eq!(r.status, 403, "{r:?}");
    assert_www_authenticate(r, idp, "insufficient_scope");
    assert_json_message(r, "Forbidden");
}

/// 503 with a delta-seconds `Retry-After` and a `{"message": ...}` body; returns the
/// Retry-After seconds.
fn assert_idp_unavailable(r: &Response) -> u64 {
    assert_eq!(r.status, 503, "{r:?}");
    let retry = r.header("retry-after").unwrap_or_else(|| panic!("Retry-After on the 503: {r:?}"));
    let secs: u64 = retry.trim().parse().unwrap_or_else(|_| panic!("Retry-After in delta-seconds, got {retry:?}"));
    let body = json(r.body.clone());
    assert!(body.get("message").and_then(|m| m.as_str()).is_some_and(|m| !m.is_empty()), "{}", r.body_str());
    secs
}

// ----- parallel load -----

/// `threads` keep-alive connections, each sending `per_thread` requests built by
/// `make(thread, i)` in sequence; returns the statuses in `(thread, i)` order. Bounded:
/// stops sending at `deadline` (the caller then sees fewer statuses than requests).
fn hammer(
    p: &Proxy,
    threads: usize,
    per_thread: usize,
    deadline: Duration,
    make: impl Fn(usize, usize) -> Vec<u8> + Sync,
) -> Vec<u16> {
    let until = Instant::now() + deadline;
    let make = &make;
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut c = p.connect();
                    let mut statuses = Vec::with_capacity(per_thread);
                    for i in 0..per_thread {
                        if Instant::now() > until {
                            break;
                        }
                        c.write(&make(t, i));
                        match c.response() {
                            Some(r) => statuses.push(r.status),
                            None => {
                                statuses.push(0);
                                c = p.connect();
                            }
                        }
                    }
                    statuses
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("load thread")).collect()
    })
}

// ----- forged tokens -----

/// A 2048-bit RSA key for tests only (`tests/fixtures/jose/README.md`).
const FIXTURE_RSA_PKCS8: &[u8] = include_bytes!("fixtures/jose/rsa2048-test-only.pk8");
const FIXTURE_KID: &str = "ringgate-flow-test-fixture";

fn fixture_rsa() -> RsaKeyPair {
    RsaKeyPair::from_pkcs8(FIXTURE_RSA_PKCS8).expect("fixture RSA key")
}

/// The fixture key's public JWKS document.
fn fixture_jwks() -> String {
    let c: PublicKeyComponents<Vec<u8>> = fixture_rsa().public().into();
    format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"{FIXTURE_KID}","alg":"RS256","use":"sig","n":"{}","e":"{}"}}]}}"#,
        b64url(&c.n),
        b64url(&c.e)
    )
}

fn sign_rs256(key: &RsaKeyPair, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64url(header.as_bytes()), b64url(payload.as_bytes()));
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", b64url(&sig))
}

fn sign_hs256_with(key: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64url(header.as_bytes()), b64url(payload.as_bytes()));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

/// A fresh random P-256 key: tokens it signs verify under no key the proxy knows.
fn random_es256_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
}

fn sign_es256(key: &EcdsaKeyPair, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64url(header.as_bytes()), b64url(payload.as_bytes()));
    let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(sig.as_ref()))
}

/// Claims the test IdP would put in a token, valid for five minutes from now.
fn claims_for(iss: &str, now: u64) -> String {
    format!(
        r#"{{"iss":"{iss}","sub":"forged","client_id":"forged","aud":"{IDP_AUDIENCE}","scope":"openid","iat":{now},"exp":{},"jti":"{}"}}"#,
        now + 300,
        unique_id()
    )
}

fn unique_id() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

// DER, for the classic RSA-public-key-as-HMAC-secret forgery (RFC 8725 §2.1).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(be: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = be.iter().copied().skip_while(|&b| b == 0).collect();
    let mut content = Vec::new();
    if trimmed.first().is_some_and(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&trimmed);
    der(0x02, &content)
}

/// SubjectPublicKeyInfo DER of an RSA public key (RFC 8017 A.1.1, RFC 5280 4.1).
fn rsa_spki_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_public_key = der(0x30, &[der_uint(n), der_uint(e)].concat());
    let rsa_encryption = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let bit_string = der(0x03, &[&[0u8][..], &rsa_public_key].concat());
    der(0x30, &[der(0x30, &rsa_encryption), bit_string].concat())
}

fn pem_public_key(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

/// Tokens signed by the fixture key (trusted through `extra_jwks_uris`), each differing
/// from a valid one (`claims_for`) in one thing: those the proxy must accept, and those
/// it must refuse (SPEC §1.5, §3; RFC 7519 §4.1.4–4.1.6; RFC 7515 §4.1.11).
type Fixtures = Vec<(&'static str, String)>;

fn claim_fixtures(iss: &str, now: u64) -> (Fixtures, Fixtures) {
    let rsa = fixture_rsa();
    let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{FIXTURE_KID}"}}"#);
    let with = |extra: &str| {
        let base = claims_for(iss, now);
        // Each override replaces the claim of that name in the valid set.
        let mut v = json(base.into_bytes());
        let extra = json(extra.as_bytes().to_vec());
        for (k, val) in extra.as_object().unwrap() {
            v.insert(k.clone(), val.clone()).unwrap();
        }
        simd_json::to_string(&v).unwrap()
    };

    let accepted = vec![
        ("control: valid claims", sign_rs256(&rsa, &header, &with("{}"))),
        ("iss with a trailing slash", sign_rs256(&rsa, &header, &with(&format!(r#"{{"iss":"{iss}/"}}"#)))),
    ];
    let refused = vec![
        ("expired", sign_rs256(&rsa, &header, &with(&format!(r#"{{"exp":{}}}"#, now - 60)))),
        ("exp is now", sign_rs256(&rsa, &header, &with(&format!(r#"{{"exp":{}}}"#, now)))),
        ("not yet valid (nbf)", sign_rs256(&rsa, &header, &with(&format!(r#"{{"nbf":{}}}"#, now + 600)))),
        ("issued in the future (iat)", sign_rs256(&rsa, &header, &with(&format!(r#"{{"iat":{}}}"#, now + 600)))),
        ("wrong issuer", sign_rs256(&rsa, &header, &with(r#"{"iss":"http://127.0.0.1:1"}"#))),
        ("exp of the wrong JSON type", sign_rs256(&rsa, &header, &with(r#"{"exp":"9999999999"}"#))),
        (
            "crit header",
            sign_rs256(&rsa, &format!(r#"{{"alg":"RS256","kid":"{FIXTURE_KID}","crit":["exp"]}}"#), &with("{}")),
        ),
        ("alg not the key's (RS256 key, PS256 token)", {
            let h = format!(r#"{{"alg":"PS256","kid":"{FIXTURE_KID}"}}"#);
            let input = format!("{}.{}", b64url(h.as_bytes()), b64url(with("{}").as_bytes()));
            let mut sig = vec![0u8; rsa.public().modulus_len()];
            rsa.sign(&signature::RSA_PSS_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
            // The JWK pins alg RS256: a PS256 signature by the same key is refused.
            format!("{input}.{}", b64url(&sig))
        }),
    ];
    (accepted, refused)
}

// ----- a static JWKS server (for `extra_jwks_uris`) -----

/// Serves one fixed JSON body to every request on 127.0.0.1; counts requests.
struct StaticJson {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl StaticJson {
    fn start(body: String) -> StaticJson {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (stop2, hits2) = (stop.clone(), hits.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                hits2.fetch_add(1, Ordering::SeqCst);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes());
                let _ = conn.shutdown(Shutdown::Write);
            }
        });
        StaticJson { addr, stop, hits, thread: Some(thread) }
    }
}

impl Drop for StaticJson {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

// =====================================================================================
// 1. The seed decK file, global, service- and route-scoped (SPEC §1, §5)
// =====================================================================================

/// One caller, two requests: both forwarded with the IdP's token in place of the
/// caller's Basic header, one token call in all.
fn seed_file_exchanges_basic_for_bearer(scope: Scope, driver: IoDriver) {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = Proxy::start_snapshot(seed_snapshot(&seed_deck(up.addr(), scope), &idp.issuer), driver, Limits::default());
    let caller_basic = basic(POST_CLIENT.0, POST_CLIENT.1);
    let caller_b64 = caller_basic.strip_prefix("Basic ").unwrap().to_string();

    for i in 0..2 {
        let r = get(&p, &format!("/orders/{i}?x=1"), &[("Authorization", &caller_basic)]);
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert_eq!(r.body, b"ok");
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    let first = forwarded_token(&got[0]);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.target, format!("/orders/{i}?x=1"));
        assert_eq!(forwarded_token(g), first, "the cached token is forwarded again");
        assert_no_header_contains(g, &caller_b64);
        assert_no_header_contains(g, POST_CLIENT.1);
        assert!(!String::from_utf8_lossy(&g.raw).contains(&caller_b64), "caller's Basic value in the raw request");
    }
    assert_idp_token(&idp, &first, POST_CLIENT.0);
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1, "one token call for one caller");
    assert_eq!(token_by_method(&idp, POST_CLIENT.0, "client_secret_post"), 1, "client_auth[0] is used");
    assert_eq!(token_total(&idp), 1, "the configured client_id/secret never reach the IdP (SPEC §1.3)");

    if let Scope::Route = scope {
        // The plugin is scoped to `guarded` only: `/open` passes through untouched.
        let r = get(&p, "/open/x", &[("Authorization", &caller_basic)]);
        assert_eq!(r.status, 200);
        let got = up.wait_for(3, Duration::from_secs(5));
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].header_str("authorization").as_deref(), Some(caller_basic.as_str()));
        assert_eq!(token_total(&idp), 1);
    }
    assert!(up.errors().is_empty(), "{:?}", up.errors());
}

on_both_drivers!(seed_file_global_plugin_forwards_idp_bearer_not_caller_basic, |d| {
    seed_file_exchanges_basic_for_bearer(Scope::Global, d)
});

on_both_drivers!(seed_file_service_plugin_forwards_idp_bearer_not_caller_basic, |d| {
    seed_file_exchanges_basic_for_bearer(Scope::Service, d)
});

on_both_drivers!(seed_file_route_plugin_forwards_idp_bearer_and_leaves_other_routes_alone, |d| {
    seed_file_exchanges_basic_for_bearer(Scope::Route, d)
});

// =====================================================================================
// 2. One IdP call per credential, however many connections miss together (SPEC §2)
// =====================================================================================

on_both_drivers!(one_credential_over_100_connections_makes_one_token_request, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_POST, d);
    let auth = basic(POST_CLIENT.0, POST_CLIENT.1);
    let statuses = hammer(&p, 100, 20, Duration::from_secs(60), |t, i| {
        request("GET", &format!("/t{t}/{i}"), &[("Authorization", &auth)], b"")
    });
    assert_eq!(statuses.len(), 2000, "all 2000 requests were answered in time");
    let bad: Vec<&u16> = statuses.iter().filter(|&&s| s != 200).collect();
    assert!(bad.is_empty(), "{} non-200 answers, e.g. {:?}", bad.len(), &bad[..bad.len().min(5)]);

    let got = up.wait_for(2000, Duration::from_secs(10));
    assert_eq!(got.len(), 2000);
    let tokens: HashSet<String> = got.iter().map(forwarded_token).collect();
    assert_eq!(tokens.len(), 1, "one token serves every request");
    assert_idp_token(&idp, tokens.iter().next().unwrap(), POST_CLIENT.0);
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1, "exactly one token request at the IdP");
    assert_eq!(token_total(&idp), 1);
});

#[test]
fn two_hundred_credentials_make_exactly_two_hundred_token_requests() {
    let idp = TestIdp::start(200);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_BASIC, DRIVER);
    // Thread t, request i uses credential (t + 50 i) % 200: each credential is used six
    // times, by two connections at once.
    let cred = |t: usize, i: usize| (t + 50 * i) % 200;
    let statuses = hammer(&p, 100, 12, Duration::from_secs(60), |t, i| {
        let (id, secret) = load_client(cred(t, i));
        request("GET", "/", &[("Authorization", &basic(&id, &secret)), ("x-cred", &id)], b"")
    });
    assert_eq!(statuses.len(), 1200);
    assert!(statuses.iter().all(|&s| s == 200), "non-200: {:?}", statuses.iter().filter(|&&s| s != 200).count());

    let got = up.wait_for(1200, Duration::from_secs(10));
    assert_eq!(got.len(), 1200);
    let mut token_of: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for g in &got {
        let id = g.header_str("x-cred").unwrap();
        let token = forwarded_token(g);
        assert_eq!(claim_str(&token, "client_id").as_deref(), Some(id.as_str()), "each caller gets its own token");
        token_of.entry(id).or_default().insert(token);
    }
    assert_eq!(token_of.len(), 200);
    assert!(token_of.values().all(|t| t.len() == 1), "one token per credential");

    let c = counters(&idp);
    assert_eq!(c["token_total"].as_u64(), Some(200), "exactly 200 token requests: {c:?}");
    for i in 0..200 {
        let id = load_client(i).0;
        assert_eq!(c["token"].get(id.as_str()).and_then(|n| n.as_u64()), Some(1), "{id}");
    }
}

// =====================================================================================
// 3. Refused credentials (SPEC §1.2, §4)
// =====================================================================================

on_both_drivers!(bad_or_missing_credentials_are_401_and_never_reach_upstream, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_POST, d);

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("wrong secret", vec![("Authorization", basic(POST_CLIENT.0, "not-the-secret"))]),
        ("unknown client", vec![("Authorization", basic("no-such-client", "whatever"))]),
        ("no credentials", vec![]),
        ("malformed base64", vec![("Authorization", "Basic !!!".to_string())]),
        ("no colon", vec![("Authorization", format!("Basic {}", STANDARD.encode("nocolon")))]),
        ("empty id", vec![("Authorization", format!("Basic {}", STANDARD.encode(":secret")))]),
        ("empty Basic", vec![("Authorization", "Basic ".to_string())]),
        ("other scheme", vec![("Authorization", "Digest username=\"post-client\"".to_string())]),
    ];
    for (what, headers) in &cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = get(&p, "/", &hs);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_unauthorized(&r, &idp);
        assert!(!r.body_str().contains("not-the-secret"), "{what}: a secret in the body");
    }
    assert!(up.received().is_empty(), "nothing reaches the upstream: {:?}", up.received());
    // Only the two well-formed credentials were worth asking the IdP about.
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1, "wrong secret: asked once");
    assert_eq!(idp.token_requests("no-such-client"), 1, "unknown client: asked once");
    assert_eq!(token_total(&idp), 2, "no token call without well-formed credentials");
});

#[test]
fn wrong_secret_never_hits_the_cached_token_of_the_right_one() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_POST, DRIVER);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200);
    assert_unauthorized(&get_as(&p, (POST_CLIENT.0, "wrong")), &idp);
    assert_unauthorized(&get_as(&p, (POST_CLIENT.0, &POST_CLIENT.1[..POST_CLIENT.1.len() - 1])), &idp);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200);
    assert_eq!(up.received().len(), 2, "only the right secret is forwarded");
    assert_eq!(idp.token_requests(POST_CLIENT.0), 3, "each wrong secret was judged by the IdP (SPEC §2 key)");
}

// =====================================================================================
// 4. Token lifetime: refetched after expiry, never forwarded expired (SPEC §2)
// =====================================================================================

on_both_drivers!(five_second_tokens_are_refreshed_and_never_forwarded_expired, |d| {
    let idp = TestIdp::start(0);
    set_ttl(&idp, 5);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_POST, d);
    let auth = basic(POST_CLIENT.0, POST_CLIENT.1);

    // Two connections, a request every ~40 ms each, for 8 s (at most 200 each).
    let sent: Mutex<BTreeMap<String, f64>> = Mutex::new(BTreeMap::new());
    let statuses: Mutex<Vec<(String, u16)>> = Mutex::new(Vec::new());
    let began = Instant::now();
    thread::scope(|s| {
        for t in 0..2 {
            let (sent, statuses, auth, p) = (&sent, &statuses, &auth, &p);
            s.spawn(move || {
                let mut c = p.connect();
                for i in 0..200 {
                    if began.elapsed() >= Duration::from_secs(8) {
                        break;
                    }
                    let id = format!("{t}-{i}");
                    sent.lock().unwrap().insert(id.clone(), unix_now());
                    c.write(&request("GET", "/", &[("Authorization", auth), ("x-req", &id)], b""));
                    let status = match c.response() {
                        Some(r) => r.status,
                        None => {
                            c = p.connect();
                            0
                        }
                    };
                    statuses.lock().unwrap().push((id, status));
                    thread::sleep(Duration::from_millis(40));
                }
            });
        }
    });
    let statuses = statuses.into_inner().unwrap();
    let sent = sent.into_inner().unwrap();
    assert!(statuses.len() >= 100, "steady traffic: {} requests", statuses.len());
    let failed: Vec<_> = statuses.iter().filter(|(_, s)| *s != 200).collect();
    assert!(failed.is_empty(), "{} non-200 across expiry, first: {:?}", failed.len(), &failed[..failed.len().min(5)]);

    let got = up.wait_for(statuses.len(), Duration::from_secs(5));
    assert_eq!(got.len(), statuses.len());
    let mut tokens = HashSet::new();
    for g in &got {
        let token = forwarded_token(g);
        let exp = claim_u64(&token, "exp");
        // The upstream received it no earlier than it was sent, so a token whose `exp` is
        // not after the send time was expired on arrival (RFC 7519 §4.1.4: not accepted
        // on or after `exp`). No margin in the proxy's favour.
        let sent_at = sent[&g.header_str("x-req").unwrap()];
        assert!(exp as f64 > sent_at, "expired token forwarded: exp {exp}, sent at {sent_at:.3}");
        tokens.insert(token);
    }
    assert!(tokens.len() >= 2, "a new token after the first expired ({} seen)", tokens.len());
    let fetched = idp.token_requests(POST_CLIENT.0);
    assert!(fetched >= 2, "the IdP was asked again after expiry ({fetched})");
    assert!(fetched >= tokens.len() as u64, "every forwarded token came from a counted request");
});

// =====================================================================================
// 5. Keys: rotation and unknown kids (SPEC §3)
// =====================================================================================

#[test]
fn rotated_signing_key_is_picked_up_without_restart_or_failed_request() {
    let idp = TestIdp::start(4);
    let up = Upstream::start();
    // rediscovery_lifetime 1 s: the cooldown is over before the rotation below, whichever
    // fetch it counts from (SPEC §3).
    let p = start(&up, &idp, &format!("{CC_HEADER_BASIC}rediscovery_lifetime: 1\n"), DRIVER);
    let (id0, secret0) = load_client(0);
    assert_eq!(get_as(&p, (&id0, &secret0)).status, 200);
    let old_kid = jws_part(&forwarded_token(&up.received()[0]), 0)["kid"].as_str().unwrap().to_string();
    thread::sleep(Duration::from_millis(1500));
    let before = jwks_fetches(&idp);

    // Traffic with the cached credential keeps flowing across the rotation.
    let stop = AtomicBool::new(false);
    let background = thread::scope(|s| {
        let h = s.spawn(|| {
            let mut out = Vec::new();
            let auth = basic(&id0, &secret0);
            let mut c = p.connect();
            let began = Instant::now();
            while !stop.load(Ordering::SeqCst) && out.len() < 250 && began.elapsed() < Duration::from_secs(5) {
                c.write(&request("GET", "/bg", &[("Authorization", &auth)], b""));
                out.push(c.response().map_or(0, |r| r.status));
                thread::sleep(Duration::from_millis(20));
            }
            out
        });
        let rotated = control_ok(&idp, "POST", "/rotate", r#"{"drop_old":true}"#);
        let new_kid = rotated["rotated"]["kid"].as_str().unwrap().to_string();
        assert_ne!(new_kid, old_kid);
        for i in 1..4 {
            let (id, secret) = load_client(i);
            let r = get(&p, &format!("/new/{i}"), &[("Authorization", &basic(&id, &secret))]);
            assert_eq!(r.status, 200, "{id} after the rotation: {r:?}");
            let g = up.received().into_iter().find(|g| g.target == format!("/new/{i}")).expect("forwarded");
            let token = forwarded_token(&g);
            assert_eq!(jws_part(&token, 0)["kid"].as_str(), Some(new_kid.as_str()), "signed with the new key");
            assert_idp_token(&idp, &token, &id);
        }
        thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap()
    });
    assert!(!background.is_empty());
    assert!(background.iter().all(|&s| s == 200), "a request failed across the rotation: {background:?}");
    // assert_idp_token fetched the JWKS 3 times itself.
    let proxy_fetches = jwks_fetches(&idp) - before - 3;
    assert!(proxy_fetches >= 1, "the proxy fetched the rotated key set");
    for i in 0..4 {
        assert_eq!(idp.token_requests(&load_client(i).0), 1, "load-{i}");
    }
}

#[test]
fn flood_of_unknown_kids_refetches_jwks_at_most_once_per_cooldown() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    // Default rediscovery_lifetime: 30 s.
    let p = start(&up, &idp, "auth_methods: [bearer]\n", DRIVER);
    let valid = issue_token(&idp);
    let bearer = format!("Bearer {valid}");
    assert_eq!(get(&p, "/", &[("Authorization", &bearer)]).status, 200, "keys loaded");
    let before = jwks_fetches(&idp);
    let began = Instant::now();

    let key = random_es256_key();
    let now = unix_now() as u64;
    let statuses = hammer(&p, 8, 40, Duration::from_secs(30), |t, i| {
        let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"unknown-{t}-{i}-{}"}}"#, unique_id());
        let token = sign_es256(&key, &header, &claims_for(&idp.issuer, now));
        request("GET", "/", &[("Authorization", &format!("Bearer {token}"))], b"")
    });
    let elapsed = began.elapsed();
    assert_eq!(statuses.len(), 320);
    let other: Vec<&u16> = statuses.iter().filter(|&&s| s != 401).collect();
    assert!(
        other.is_empty(),
        "unknown kids are refused 401; {} were not, e.g. {:?}",
        other.len(),
        &other[..other.len().min(5)]
    );
    let fetched = jwks_fetches(&idp) - before;
    let allowed = 1 + (elapsed.as_secs_f64() / 30.0) as u64;
    assert!(fetched <= allowed, "{fetched} JWKS fetches in {elapsed:?} (cooldown 30 s)");

    // The known key still works (previous keys stay usable).
    assert_eq!(get(&p, "/after", &[("Authorization", &bearer)]).status, 200);
    let got = up.received();
    assert_eq!(got.len(), 2, "only the valid token reached the upstream");
    assert!(got.iter().all(|g| forwarded_token(g) == valid));
    assert_eq!(token_total(&idp), 1, "bearer never calls the token endpoint");
}

// =====================================================================================
// 6. The IdP down (SPEC §3, §4)
// =====================================================================================

on_both_drivers!(idp_outage_keeps_cached_callers_and_answers_503_for_others, |d| {
    let idp = TestIdp::start(8);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_BASIC}timeout: 1000\n"), d);
    let (id0, s0) = load_client(0);
    assert_eq!(get_as(&p, (&id0, &s0)).status, 200);

    let mut retry_after = 0;
    for (i, (mode, delay)) in [("drop", 0), ("500", 0), ("slow", 5000)].into_iter().enumerate() {
        idp.fault("token", mode, delay);
        assert_eq!(get_as(&p, (&id0, &s0)).status, 200, "{mode}: a cached caller keeps working");
        let (id, secret) = load_client(i + 1);
        let began = Instant::now();
        let r = get_as(&p, (&id, &secret));
        let took = began.elapsed();
        retry_after = retry_after.max(assert_idp_unavailable(&r));
        assert!(took < Duration::from_secs(2), "{mode}: answered within the 1000 ms timeout, took {took:?}");
        assert!(!r.body_str().contains(&secret), "{mode}: secret in the body");
        assert!(idp.token_requests(&id) >= 1, "{mode}: the IdP was really asked");
    }
    assert_eq!(up.received().len(), 4, "only the cached caller reached the upstream");
    assert_eq!(idp.token_requests(&id0), 1, "the cached caller never needed the IdP");

    // Back up: the callers that got 503 succeed once they honour Retry-After (bounded).
    idp.fault("token", "none", 0);
    let until = Instant::now() + Duration::from_secs(retry_after.min(20) + 5);
    for i in 1..4 {
        let (id, secret) = load_client(i);
        let status = loop {
            let s = get_as(&p, (&id, &secret)).status;
            if s == 200 || Instant::now() > until {
                break s;
            }
            thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(status, 200, "{id} recovers without a restart");
    }
    let (id4, s4) = load_client(4);
    assert_eq!(get_as(&p, (&id4, &s4)).status, 200, "a new caller after recovery");
});

/// `--idp-max-in-flight`: with the IdP slow and the cap at 3, eight new callers at once
/// cost the IdP three calls; the other five are answered 503 at once (before the IdP's
/// delay is over), not queued behind it, and count as `shed`. When the three calls end
/// the cap is free again and every caller gets through.
#[test]
fn calls_past_the_in_flight_cap_are_shed_with_503_and_the_cap_frees_up() {
    let idp = TestIdp::start(9);
    let up = Upstream::start();
    let yaml = deck(up.addr(), &idp.issuer, &format!("{CC_HEADER_BASIC}timeout: 10000\n"));
    let options = ringgate::control::ControlOptions { max_in_flight: 3, ..Default::default() };
    let p = Proxy::start_with_control(snapshot(&yaml), DRIVER, Limits::default(), 2, options);
    // Discovery and keys first, so that only token calls wait on the IdP below.
    let (id0, s0) = load_client(0);
    assert_eq!(get_as(&p, (&id0, &s0)).status, 200);

    let delay = Duration::from_millis(3000);
    idp.fault("token", "slow", delay.as_millis() as u64);
    let began = Instant::now();
    let answers: Vec<(u16, Duration, Response)> = thread::scope(|s| {
        let calls: Vec<_> = (1..=8)
            .map(|i| {
                let p = &p;
                s.spawn(move || {
                    let (id, secret) = load_client(i);
                    let r = get_as(p, (&id, &secret));
                    (r.status, began.elapsed(), r)
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().expect("caller thread")).collect()
    });
    let served: Vec<_> = answers.iter().filter(|(status, ..)| *status == 200).collect();
    let shed: Vec<_> = answers.iter().filter(|(status, ..)| *status == 503).collect();
    assert_eq!((served.len(), shed.len()), (3, 5), "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    for (_, took, r) in &shed {
        assert_idp_unavailable(r);
        assert!(*took < delay, "shed at once, not after the IdP's delay: {took:?}");
    }
    for (_, took, _) in &served {
        assert!(*took >= delay, "served after the slow IdP answered: {took:?}");
    }
    assert_eq!(token_total(&idp), 1 + 3, "the IdP saw three of the eight calls");
    let text = p.metrics();
    assert!(text.contains("ringgate_control_token_requests_total{result=\"shed\"} 5"), "{text}");
    assert_eq!(up.received().len(), 1 + 3);

    // The three calls are over: the cap is free, and the shed callers get through.
    idp.fault("token", "none", 0);
    for i in 1..=8 {
        let (id, secret) = load_client(i);
        assert_eq!(get_as(&p, (&id, &secret)).status, 200, "{id} after the calls in flight ended");
    }
    assert_eq!(token_total(&idp), 1 + 8, "each caller cost one call in all");
}

/// `post-client`'s status once discovery, retried with backoff (SPEC §3), has had the time
/// to succeed: `Retry-After` plus 15 s, asking every 250 ms meanwhile.
fn status_once_rediscovered(p: &Proxy, retry_after: u64) -> u16 {
    let until = Instant::now() + Duration::from_secs(retry_after.min(20) + 15);
    loop {
        let s = get_as(p, POST_CLIENT).status;
        if s == 200 || Instant::now() > until {
            return s;
        }
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn idp_down_at_start_gives_503_until_discovery_succeeds() {
    let idp = TestIdp::start(0);
    idp.fault("all", "500", 0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}timeout: 1000\n"), DRIVER);
    let began = Instant::now();
    let r = get_as(&p, POST_CLIENT);
    assert!(began.elapsed() < Duration::from_secs(2), "answered within the timeout: {:?}", began.elapsed());
    let retry_after = assert_idp_unavailable(&r);
    assert!(up.received().is_empty());

    idp.fault("all", "none", 0);
    assert_eq!(status_once_rediscovered(&p, retry_after), 200, "recovers without a restart");
    let got = up.received();
    assert_eq!(got.len(), 1);
    assert_idp_token(&idp, &forwarded_token(&got[0]), POST_CLIENT.0);
}

#[test]
fn a_discovered_issuer_with_cr_lf_is_refused_and_never_reaches_a_challenge() {
    // The discovered issuer's host is the realm of every WWW-Authenticate and the issuer
    // goes into log lines: with CR LF in an issuer without a port, every 401 would have
    // carried a header of the IdP's choosing (here the test IdP's port cuts the host
    // short, so what this shows is the refusal). Such a document is refused like an
    // unreachable IdP: 503 for credentials, the configured issuer's realm.
    let idp = TestIdp::start(0);
    idp.fault("discovery", "bad_issuer", 0);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_POST, DRIVER);
    let r = get(&p, "/", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("x-injected"), None, "{r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"127.0.0.1\", error=\"invalid_token\""),
        "the configured issuer's host"
    );
    let retry_after = assert_idp_unavailable(&get_as(&p, POST_CLIENT));
    assert!(up.received().is_empty());

    idp.fault("discovery", "none", 0);
    assert_eq!(status_once_rediscovered(&p, retry_after), 200, "recovers once the IdP answers properly");
}

// =====================================================================================
// 7. auth_methods: [bearer] (SPEC §1.7, §3)
// =====================================================================================

on_both_drivers!(bearer_valid_idp_token_is_forwarded_as_sent, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\n", d);
    let token = issue_token(&idp);
    for i in 0..3 {
        let r = get(&p, &format!("/b/{i}"), &[("Authorization", &format!("Bearer {token}"))]);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    for g in &got {
        assert_eq!(forwarded_token(g), token, "forwarded as sent");
    }
    assert_eq!(token_total(&idp), 1, "only the test's own token request");
});

#[test]
fn bearer_forged_or_tampered_tokens_are_401() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\n", DRIVER);
    let token = issue_token(&idp);
    let parts: Vec<&str> = token.split('.').collect();
    let (h, pl, sig) = (parts[0], parts[1], parts[2]);
    let header = jws_part(&token, 0);
    let kid = header["kid"].as_str().unwrap().to_string();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(pl).unwrap()).unwrap();

    // The IdP's RSA key behind `kid`, as an attacker would find it.
    let jwks = json(idp_get(&idp, "/jwks"));
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"].as_str() == Some(kid.as_str())).unwrap();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let spki = rsa_spki_der(&n, &e);
    let jwk_text = simd_json::to_string(jwk).unwrap();

    let flip = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        let mid = b.len() / 2;
        b[mid] = if b[mid] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let other_payload = payload.replacen(POST_CLIENT.0, "admin-client", 2);
    assert_ne!(other_payload, payload);
    let hs_header = format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#);
    let hs_header_nokid = r#"{"alg":"HS256","typ":"JWT"}"#;
    let mut cases: Vec<(String, String)> = vec![
        ("tampered signature".into(), format!("{h}.{pl}.{}", flip(sig))),
        ("tampered payload".into(), format!("{h}.{}.{sig}", b64url(other_payload.as_bytes()))),
        ("signature dropped".into(), format!("{h}.{pl}.")),
        ("alg none".into(), format!("{}.{pl}.", b64url(br#"{"alg":"none","typ":"at+jwt"}"#))),
        (
            "alg None, kid kept".into(),
            format!("{}.{pl}.", b64url(format!(r#"{{"alg":"None","kid":"{kid}"}}"#).as_bytes())),
        ),
        ("alg none, signature kept".into(), format!("{}.{pl}.{sig}", b64url(br#"{"alg":"none"}"#))),
        ("not a JWS".into(), "not-a-token".into()),
        ("two parts".into(), format!("{h}.{pl}")),
    ];
    for (what, key) in [
        ("PEM", pem_public_key(&spki).into_bytes()),
        ("SPKI DER", spki.clone()),
        ("JWK JSON", jwk_text.into_bytes()),
        ("modulus", n.clone()),
    ] {
        cases.push((
            format!("HS256 keyed with the RSA public key ({what})"),
            sign_hs256_with(&key, &hs_header, &payload),
        ));
        cases.push((
            format!("HS256 keyed with the RSA public key ({what}), no kid"),
            sign_hs256_with(&key, hs_header_nokid, &payload),
        ));
    }
    for (what, forged) in &cases {
        let r = get(&p, "/", &[("Authorization", &format!("Bearer {forged}"))]);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_unauthorized(&r, &idp);
    }
    assert!(up.received().is_empty(), "nothing forged reached the upstream");
    // The genuine token still passes: the refusals were about the forgeries.
    assert_eq!(get(&p, "/", &[("Authorization", &format!("Bearer {token}"))]).status, 200);
    assert_eq!(forwarded_token(&up.wait_for(1, Duration::from_secs(5))[0]), token);
    assert_eq!(token_total(&idp), 1);
}

#[test]
fn bearer_idp_token_is_401_once_expired() {
    let idp = TestIdp::start(0);
    set_ttl(&idp, 3);
    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\n", DRIVER);
    let token = issue_token(&idp);
    let exp = claim_u64(&token, "exp");
    let auth = format!("Bearer {token}");
    assert!(unix_now() + 1.0 < exp as f64, "the test needs a token with time left");
    assert_eq!(get(&p, "/", &[("Authorization", &auth)]).status, 200, "valid before exp");
    // leeway 0 (the default): refused from `exp` on (RFC 7519 §4.1.4).
    let wait = exp as f64 + 0.3 - unix_now();
    thread::sleep(Duration::from_secs_f64(wait.clamp(0.0, 5.0)));
    let r = get(&p, "/", &[("Authorization", &auth)]);
    assert_unauthorized(&r, &idp);
    assert_eq!(up.received().len(), 1, "the expired token was not forwarded");
    assert_eq!(token_total(&idp), 1);
}

/// A bearer-only proxy that trusts the fixture key set, served at `/jwks` by a
/// [`StaticJson`], through `setting`: `extra_jwks_uris` or `jwks_endpoint`.
fn trusting_fixture_keys(setting: &str) -> (TestIdp, Upstream, StaticJson, Proxy) {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let keys = StaticJson::start(fixture_jwks());
    let url = format!("\"http://{}/jwks\"", keys.addr);
    let value = if setting == "extra_jwks_uris" { format!("[{url}]") } else { url };
    let p = start(&up, &idp, &format!("auth_methods: [bearer]\n{setting}: {value}\n"), DRIVER);
    (idp, up, keys, p)
}

/// `*_access_token_jwk_header`: the public JWK of the IdP key that verified the issued
/// token, base64 of its JSON (Kong's encoding of a table), upstream and back to the
/// caller, from the token's fetch and from the cache alike. A key the IdP rotates in is
/// the one sent for the tokens it signs.
#[test]
fn the_key_that_verified_the_token_goes_upstream_as_a_jwk() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body =
        format!("{CC_HEADER_POST}upstream_access_token_jwk_header: X-Jwk\ndownstream_access_token_jwk_header: X-Key\n");
    let p = start(&up, &idp, &body, DRIVER);
    let jwk_of = |kid: &str| -> OwnedValue {
        let jwks = json(idp_get(&idp, "/jwks"));
        let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"].as_str() == Some(kid)).cloned();
        key.expect("kid in JWKS")
    };
    let decoded = |value: &str| json(STANDARD.decode(value).expect("standard base64"));
    let check = |what: &str, sent: &OwnedValue, kid: &str| {
        let published = jwk_of(kid);
        for member in ["kty", "kid", "n", "e"] {
            assert_eq!(sent[member].as_str(), published[member].as_str(), "{what}: {member}");
        }
        assert!(sent.get("d").is_none(), "{what}: no private member");
    };
    for i in 0..2 {
        let r = get_as(&p, POST_CLIENT);
        assert_eq!(r.status, 200, "{r:?}");
        let got = up.wait_for(i + 1, Duration::from_secs(5));
        let kid = jws_part(&forwarded_bearer(&got[i]), 0)["kid"].as_str().expect("kid").to_string();
        let upstream = decoded(&got[i].header_str("x-jwk").expect("the JWK upstream"));
        check("upstream", &upstream, &kid);
        check("downstream", &decoded(r.header("x-key").expect("the JWK downstream")), &kid);
    }
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1, "the second came from the cache");
    // After a rotation, a new client's token is signed, verified and described by the new key.
    let rotated = control_ok(&idp, "POST", "/rotate", "{}");
    let new_kid = rotated["rotated"]["kid"].as_str().expect("the new kid").to_string();
    let r = get_as(&p, SPECIAL_POST);
    assert_eq!(r.status, 200, "{r:?}");
    check("after rotation", &decoded(r.header("x-key").expect("the JWK")), &new_kid);
}

/// `max_age`: a caller's token must carry an `auth_time` no older than `max_age` seconds,
/// as Kong checks access tokens. One accepted while recent is refused once it grows too
/// old, though the per-core cache of verified tokens still holds it.
#[test]
fn max_age_refuses_an_old_authentication_even_from_the_verified_cache() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let keys = StaticJson::start(fixture_jwks());
    let body = format!("auth_methods: [bearer]\nextra_jwks_uris: [\"http://{}/jwks\"]\nmax_age: 2\n", keys.addr);
    let p = start(&up, &idp, &body, DRIVER);
    let rsa = fixture_rsa();
    let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{FIXTURE_KID}"}}"#);
    let now = unix_now() as u64;
    let with_auth_time = |auth_time: &str| {
        let claims = claims_for(&idp.issuer, now);
        let claims = if auth_time.is_empty() {
            claims
        } else {
            format!("{},\"auth_time\":{auth_time}}}", claims.strip_suffix('}').expect("an object"))
        };
        format!("Bearer {}", sign_rs256(&rsa, &header, &claims))
    };
    let recent = with_auth_time(&now.to_string());
    // One connection, so one worker and its cache of verified tokens.
    let mut conn = p.connect();
    let mut send_recent = |target: &str| {
        conn.write(&request("GET", target, &[("Authorization", &recent)], b""));
        conn.response_to(false).expect("a response")
    };
    for _ in 0..2 {
        let r = send_recent("/recent");
        assert_eq!(r.status, 200, "{r:?}");
    }
    for (what, auth_time) in
        [("too old", (now - 10).to_string()), ("absent", String::new()), ("in the future", (now + 60).to_string())]
    {
        let r = get(&p, "/refused", &[("Authorization", &with_auth_time(&auth_time))]);
        assert_unauthorized(&r, &idp);
        assert_eq!(r.status, 401, "{what}");
    }
    // Three seconds after the authentication it is older than two: refused, though this
    // worker verified it a moment ago and its exp is minutes away.
    let wait = (now + 3) as f64 - unix_now() + 0.2;
    thread::sleep(Duration::from_secs_f64(wait.max(0.0)));
    assert_unauthorized(&send_recent("/later"), &idp);
    assert_eq!(up.received().len(), 2, "only the recent token's two requests went upstream");
}

/// `max_age` with client credentials: the test IdP, like most, puts no `auth_time` in a
/// client-credentials token, so the issued token is refused (as in Kong), and a warning
/// said so at load.
#[test]
fn max_age_refuses_client_credentials_tokens_without_auth_time() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}max_age: 300\ndisplay_errors: true\n"), DRIVER);
    let r = get_as(&p, POST_CLIENT);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(String::from_utf8_lossy(&r.body).contains("token has no auth_time"), "{r:?}");
    assert!(up.received().is_empty());
    let p = start(&up, &idp, CC_HEADER_POST, DRIVER);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200, "the same token is fine without max_age");
}

#[test]
fn bearer_claims_are_checked_against_a_trusted_key() {
    // A key the proxy trusts through extra_jwks_uris (SPEC §3), so a token can carry any
    // claims and only the claim checks can refuse it.
    let (idp, up, keys, p) = trusting_fixture_keys("extra_jwks_uris");
    let (accepted, refused) = claim_fixtures(&idp.issuer, unix_now() as u64);
    for (what, token) in &accepted {
        let r = get(&p, "/", &[("Authorization", &format!("Bearer {token}"))]);
        assert_eq!(r.status, 200, "{what}: {r:?}");
    }
    for (what, token) in &refused {
        let r = get(&p, "/", &[("Authorization", &format!("Bearer {token}"))]);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_unauthorized(&r, &idp);
    }
    let got = up.received();
    assert_eq!(got.len(), accepted.len(), "only the accepted tokens reached the upstream");
    for (g, (_, token)) in got.iter().zip(&accepted) {
        assert_eq!(&forwarded_token(g), token);
    }
    assert!(keys.hits.load(Ordering::SeqCst) >= 1, "the extra JWKS was fetched");
    assert_eq!(token_total(&idp), 0, "bearer never calls the token endpoint");
}

/// `jwks_endpoint` (Kong 3.14) replaces the `jwks_uri` discovery names: a token signed
/// by a key behind it is accepted, and one the IdP signed with its discovered keys is
/// not (`extra_jwks_uris` would have added to them instead).
#[test]
fn jwks_endpoint_replaces_the_discovered_key_set() {
    let (idp, up, keys, p) = trusting_fixture_keys("jwks_endpoint");
    let (accepted, _) = claim_fixtures(&idp.issuer, unix_now() as u64);
    let (what, token) = &accepted[0];
    let r = get(&p, "/", &[("Authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200, "{what}: {r:?}");
    let idp_signed = issue_token_for(&idp, CLAIMS_CLIENT);
    let r = get(&p, "/", &[("Authorization", &format!("Bearer {idp_signed}"))]);
    assert_unauthorized(&r, &idp);
    assert_eq!(up.received().len(), 1, "only the token signed by the configured key set went through");
    assert!(keys.hits.load(Ordering::SeqCst) >= 1, "the configured JWKS was fetched");
}

// =====================================================================================
// 8. Credential locations and client authentication (SPEC §1.2, §1.4)
// =====================================================================================

const CC_POST: &str = "auth_methods: [client_credentials]\nclient_auth: [client_secret_post]\n";

#[test]
fn query_credentials_are_exchanged_when_query_is_configured() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_POST}client_credentials_param_type: [query]\n"), DRIVER);
    let (id, secret) = POST_CLIENT;
    let r = get(&p, &format!("/q?client_id={id}&client_secret={secret}&keep=1"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = get(&p, &format!("/q?client_id={id}&client_secret={secret}&grant_type=client_credentials"), &[]);
    assert_eq!(r.status, 200, "grant_type=client_credentials is allowed: {r:?}");

    // Refused: a grant_type other than client_credentials, an empty value (absent), and a
    // Basic header (header is not a configured location).
    assert_unauthorized(&get(&p, &format!("/q?client_id={id}&client_secret={secret}&grant_type=password"), &[]), &idp);
    assert_unauthorized(&get(&p, &format!("/q?client_id={id}&client_secret="), &[]), &idp);
    assert_unauthorized(&get(&p, &format!("/q?client_id=&client_secret={secret}"), &[]), &idp);
    assert_unauthorized(&get_as(&p, POST_CLIENT), &idp);

    let got = up.received();
    assert_eq!(got.len(), 2);
    // hide_credentials is off (Kong's default): the query goes upstream as sent.
    assert_eq!(got[0].target, format!("/q?client_id={id}&client_secret={secret}&keep=1"));
    let token = forwarded_token(&got[0]);
    assert_idp_token(&idp, &token, id);
    assert_eq!(forwarded_token(&got[1]), token, "cached");
    assert_eq!(token_total(&idp), 1);
}

#[test]
fn hide_credentials_removes_query_form_and_json_credentials_upstream() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(
        &up,
        &idp,
        &format!("{CC_POST}client_credentials_param_type: [query, body]\nhide_credentials: true\n"),
        DRIVER,
    );
    let (id, secret) = POST_CLIENT;
    let r = get(&p, &format!("/q?a=1&client_id={id}&client_secret={secret}&b=2"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let form = format!("a=1&client_id={id}&client_secret={secret}&b=2");
    let r = p.send(&request("POST", "/f", &[("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");
    let json =
        format!(r#"{{"a":1,"client_id":"{id}","client_secret":"{secret}","grant_type":"client_credentials","b":[2]}}"#);
    let r = p.send(&request("POST", "/j", &[("Content-Type", "application/json; charset=utf-8")], json.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");

    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].body, br#"{"a":1,"b":[2]}"#, "credentials gone from the JSON body, other members kept");
    assert!(got[0].target.starts_with("/q?"), "{}", got[0].target);
    let query: HashSet<&str> = got[0].target[3..].split('&').collect();
    assert_eq!(query, HashSet::from(["a=1", "b=2"]), "credentials gone, other args kept");
    let body = String::from_utf8(got[1].body.clone()).unwrap();
    let fields: HashSet<&str> = body.split('&').filter(|f| !f.is_empty()).collect();
    assert_eq!(fields, HashSet::from(["a=1", "b=2"]), "credentials gone from the form, other fields kept");
    for g in &got {
        assert_no_header_contains(g, secret);
        assert!(!String::from_utf8_lossy(&g.raw).contains(secret), "the secret reached the upstream");
        forwarded_token(g);
    }
    assert!(up.errors().is_empty(), "body re-framed correctly: {:?}", up.errors());
    assert_eq!(token_total(&idp), 1);
}

on_both_drivers!(body_credentials_are_read_from_form_and_json, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_POST}client_credentials_param_type: [body]\n"), d);
    let (id, secret) = POST_CLIENT;
    let (sid, ssecret) = SPECIAL_POST;
    let form = format!("client_id={id}&client_secret={secret}&x=1");
    // Form-encoded in the body as any form is: the special secret arrives decoded.
    let special_form = "client_id=special-post&client_secret=p%2Ba%3As%2Fs%3Dw%26o+rd".to_string();
    let json_body = format!(r#"{{"client_id":"{sid}","client_secret":"{ssecret}","x":1}}"#);
    let ct_form = ("Content-Type", "application/x-www-form-urlencoded");
    let ct_json = ("Content-Type", "application/json");

    let r = p.send(&request("POST", "/form", &[ct_form], form.as_bytes()));
    assert_eq!(r.status, 200, "form: {r:?}");
    let r = p.send(&request("POST", "/form-special", &[ct_form], special_form.as_bytes()));
    assert_eq!(r.status, 200, "form, special secret: {r:?}");
    let r = p.send(&request("POST", "/json", &[ct_json], json_body.as_bytes()));
    assert_eq!(r.status, 200, "json: {r:?}");
    // Refused: credentials in a body type that is neither, and a password grant_type.
    let r = p.send(&request("POST", "/text", &[("Content-Type", "text/plain")], form.as_bytes()));
    assert_unauthorized(&r, &idp);
    let pw = format!("{form}&grant_type=password");
    assert_unauthorized(&p.send(&request("POST", "/pw", &[ct_form], pw.as_bytes())), &idp);

    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].body, form.as_bytes(), "hide_credentials off: the body goes upstream as sent");
    assert_eq!(got[2].body, json_body.as_bytes());
    assert_eq!(claim_str(&forwarded_token(&got[0]), "client_id").as_deref(), Some(id));
    assert_eq!(claim_str(&forwarded_token(&got[1]), "client_id").as_deref(), Some(sid));
    assert_eq!(forwarded_token(&got[2]), forwarded_token(&got[1]), "same credentials, same cached token");
    assert_eq!(idp.token_requests(id), 1);
    assert_eq!(idp.token_requests(sid), 1);
    assert_eq!(token_total(&idp), 2);
    assert!(up.errors().is_empty(), "{:?}", up.errors());
});

#[test]
fn grant_type_header_other_than_client_credentials_skips_the_header_location() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, CC_HEADER_POST, DRIVER);
    let auth = basic(POST_CLIENT.0, POST_CLIENT.1);
    for (name, value) in
        [("Grant-Type", "password"), ("X-Grant-Type", "password"), ("Grant-Type", "authorization_code")]
    {
        let r = get(&p, "/", &[("Authorization", &auth), (name, value)]);
        assert_unauthorized(&r, &idp);
    }
    assert!(up.received().is_empty());
    assert_eq!(token_total(&idp), 0, "no token call when the header location is skipped");
    let r = get(&p, "/", &[("Authorization", &auth), ("Grant-Type", "client_credentials")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(up.received().len(), 1);
    assert_eq!(token_total(&idp), 1);
}

#[test]
fn locations_are_tried_in_configured_order_first_hit_wins() {
    let idp = TestIdp::start(0);
    // Any of two plain clients over client_secret_post: the IdP's method check is not
    // what this test is about.
    control_ok(&idp, "POST", "/strict", r#"{"enabled":false}"#);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_POST}client_credentials_param_type: [query, header]\n"), DRIVER);
    let query = format!("/?client_id={}&client_secret={}", POST_CLIENT.0, POST_CLIENT.1);
    let header = basic(BASIC_CLIENT.0, BASIC_CLIENT.1);
    // Both present: query is first.
    assert_eq!(get(&p, &query, &[("Authorization", &header)]).status, 200);
    // Header location skipped by the grant hint: the query still answers.
    assert_eq!(get(&p, &query, &[("Authorization", &header), ("Grant-Type", "password")]).status, 200);
    // Only the header.
    assert_eq!(get(&p, "/h", &[("Authorization", &header)]).status, 200);
    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    assert_eq!(claim_str(&forwarded_token(&got[0]), "client_id").as_deref(), Some(POST_CLIENT.0));
    assert_eq!(claim_str(&forwarded_token(&got[1]), "client_id").as_deref(), Some(POST_CLIENT.0));
    assert_eq!(claim_str(&forwarded_token(&got[2]), "client_id").as_deref(), Some(BASIC_CLIENT.0));
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1);
    assert_eq!(idp.token_requests(BASIC_CLIENT.0), 1);
}

/// One caller through a proxy configured with `auth_config`; the IdP (strict about the
/// method) must have seen `expected` from that client.
fn client_auth_case(auth_config: &str, (id, secret): (&str, &str), expected: &str, driver: IoDriver) {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("auth_methods: [client_credentials]\nclient_credentials_param_type: [header]\n{auth_config}");
    let p = start(&up, &idp, &body, driver);
    let r = get_as(&p, (id, secret));
    assert_eq!(r.status, 200, "{id} with {expected}: {r:?}");
    let got = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_idp_token(&idp, &forwarded_token(&got[0]), id);
    assert_eq!(token_by_method(&idp, id, expected), 1, "{:?}", counters(&idp));
    assert_eq!(token_total(&idp), 1);
    // The token request itself (SPEC §1 step 3): the grant, the default scope, and the
    // caller's id.
    let log = control_ok(&idp, "GET", &format!("/requests?client_id={id}"), "");
    let entry = &log.as_array().unwrap()[0];
    assert_eq!(entry["grant_type"].as_str(), Some("client_credentials"));
    assert_eq!(entry["scope"].as_str(), Some("openid"));
    assert_eq!(entry["status"].as_u64(), Some(200));
}

#[test]
fn client_secret_post_sends_the_callers_credentials_in_the_form() {
    client_auth_case("token_endpoint_auth_method: client_secret_post\n", POST_CLIENT, "client_secret_post", DRIVER);
}

on_both_drivers!(client_secret_basic_sends_the_callers_credentials_in_basic, |d| {
    client_auth_case("token_endpoint_auth_method: client_secret_basic\n", BASIC_CLIENT, "client_secret_basic", d)
});

#[test]
fn client_secret_basic_form_encodes_a_secret_with_reserved_characters() {
    // RFC 6749 §2.3.1: the IdP form-decodes id and secret; `+ : / = &` and space must
    // be encoded or the secret it sees differs.
    client_auth_case("token_endpoint_auth_method: client_secret_basic\n", SPECIAL_BASIC, "client_secret_basic", DRIVER);
}

#[test]
fn client_secret_post_form_encodes_a_secret_with_reserved_characters() {
    client_auth_case("token_endpoint_auth_method: client_secret_post\n", SPECIAL_POST, "client_secret_post", DRIVER);
}

#[test]
fn client_secret_jwt_signs_an_assertion_with_the_callers_secret() {
    client_auth_case("token_endpoint_auth_method: client_secret_jwt\n", JWT_CLIENT, "client_secret_jwt", DRIVER);
}

#[test]
fn client_auth_first_entry_chooses_the_method_when_no_token_endpoint_auth_method() {
    client_auth_case("client_auth: [client_secret_basic]\n", BASIC_CLIENT, "client_secret_basic", DRIVER);
}

#[test]
fn no_configured_method_uses_the_first_discovery_lists_client_secret_basic() {
    // Discovery lists client_secret_basic, client_secret_post, ... (tests/idp/README.md):
    // SPEC §1 step 4 picks the first of basic, post, jwt that it lists.
    client_auth_case("", BASIC_CLIENT, "client_secret_basic", DRIVER);
}

#[test]
fn client_secret_jwt_uses_a_fresh_jti_for_every_token_request() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    // No cache: every request is a token call; the IdP accepts each jti once.
    let body = "auth_methods: [client_credentials]\nclient_credentials_param_type: [header]\ntoken_endpoint_auth_method: client_secret_jwt\ncache_tokens: false\n";
    let p = start(&up, &idp, body, DRIVER);
    for i in 0..3 {
        assert_eq!(get_as(&p, JWT_CLIENT).status, 200, "request {i}");
    }
    assert_eq!(up.received().len(), 3);
    assert_eq!(token_by_method(&idp, JWT_CLIENT.0, "client_secret_jwt"), 3);
}

#[test]
fn empty_scopes_sends_no_scope_and_listed_scopes_are_space_joined() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}scopes: []\n"), DRIVER);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200);
    let up2 = Upstream::start();
    let p2 = start(&up2, &idp, &format!("{CC_HEADER_POST}scopes: [openid, read, write]\n"), DRIVER);
    assert_eq!(get_as(&p2, POST_CLIENT).status, 200);
    let log = control_ok(&idp, "GET", &format!("/requests?client_id={}", POST_CLIENT.0), "");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].get("scope").is_none_or(|s| s.is_null()), "scopes: [] sends no scope: {:?}", log[0]);
    assert_eq!(log[1]["scope"].as_str(), Some("openid read write"));
    assert_eq!(claim_str(&forwarded_token(&up2.received()[0]), "scope").as_deref(), Some("openid read write"));
}

// ----- token_post_args_client, token_headers_client -----

#[test]
fn the_callers_token_args_reach_the_idp_and_each_value_has_its_own_token() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}token_post_args_client: [resource, scope]\n"), DRIVER);
    let auth = basic(POST_CLIENT.0, POST_CLIENT.1);
    let form = [("Authorization", auth.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    // From the query, then a form body, then a header of the same name (Kong's order).
    // (target, extra headers, form body, the audience the token must have)
    type Ask<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8], &'a str);
    let asks: [Ask; 4] = [
        ("/?resource=https%3A%2F%2Fa.example.test%2F", &[], b"", "https://a.example.test/"),
        ("/", &form, b"resource=https%3A%2F%2Fb.example.test%2F", "https://b.example.test/"),
        ("/", &[("resource", "https://c.example.test/")], b"", "https://c.example.test/"),
        (
            "/?resource=https%3A%2F%2Fa.example.test%2F",
            &[("resource", "https://c.example.test/")],
            b"",
            "https://a.example.test/",
        ),
    ];
    for (target, headers, body, _) in asks {
        let mut h = vec![("Authorization", auth.as_str())];
        h.extend(headers.iter().filter(|(n, _)| *n != "Authorization").copied());
        let mut c = p.connect();
        c.write(&request(if body.is_empty() { "GET" } else { "POST" }, target, &h, body));
        let r = c.response().expect("a response");
        assert_eq!(r.status, 200, "{target}: {r:?}");
    }
    let got = up.wait_for(4, Duration::from_secs(5));
    for (g, (target, _, _, aud)) in got.iter().zip(asks) {
        assert_eq!(claim_str(&forwarded_token(g), "aud").as_deref(), Some(aud), "{target}");
    }
    assert_eq!(idp.token_requests(POST_CLIENT.0), 3, "three values, three tokens; the fourth is the first's");

    // A caller's `scope` replaces the configured `scopes`.
    let r = get(&p, "/?scope=read", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200, "{r:?}");
    let g = up.wait_for(5, Duration::from_secs(5)).pop().expect("the fifth request");
    assert_eq!(claim_str(&forwarded_token(&g), "scope").as_deref(), Some("read"));
}

#[test]
fn the_callers_token_headers_reach_the_idp_under_the_configured_name() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "{CC_HEADER_POST}token_headers_client: [X-Tenant]\ntoken_headers_names: [x-tenant, X-Static]\ntoken_headers_values: [configured, kept]\n"
    );
    let p = start(&up, &idp, &body, DRIVER);
    let auth = basic(POST_CLIENT.0, POST_CLIENT.1);
    assert_eq!(get(&p, "/", &[("Authorization", &auth), ("x-tenant", "acme")]).status, 200);
    assert_eq!(get(&p, "/", &[("Authorization", &auth)]).status, 200);
    let log = control_ok(&idp, "GET", &format!("/requests?client_id={}", POST_CLIENT.0), "");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2, "with and without the header: two tokens");
    assert_eq!(log[0]["headers"]["x-tenant"].as_str(), Some("acme"), "the caller's value wins: {:?}", log[0]);
    assert_eq!(log[1]["headers"]["x-tenant"].as_str(), Some("configured"), "{:?}", log[1]);
    assert_eq!(log[0]["headers"]["x-static"].as_str(), Some("kept"));
}

// ----- scopes_required, audience_required, display_errors (SPEC §1.5, §4) -----

/// The status for a caller with `scopes: [openid, read]` under `requirement`.
fn status_under(idp: &TestIdp, requirement: &str) -> (Response, usize, u64) {
    let up = Upstream::start();
    let before = idp.token_requests(POST_CLIENT.0);
    let p = start(&up, idp, &format!("{CC_HEADER_POST}scopes: [openid, read]\n{requirement}\n"), DRIVER);
    let r = get_as(&p, POST_CLIENT);
    (r, up.received().len(), idp.token_requests(POST_CLIENT.0) - before)
}

#[test]
fn scopes_required_not_met_is_403_insufficient_scope() {
    let idp = TestIdp::start(0);
    for req in [
        r#"scopes_required: ["admin"]"#,
        r#"scopes_required: ["openid admin"]"#,
        r#"scopes_required: ["write", "read admin"]"#,
    ] {
        let (r, forwarded, asked) = status_under(&idp, req);
        assert_forbidden(&r, &idp);
        assert_eq!(forwarded, 0, "{req}: nothing upstream");
        assert_eq!(asked, 1, "{req}: the token was fetched, then judged");
    }
    // OR of elements, AND of the words inside one (SPEC §1.5).
    for req in [
        r#"scopes_required: ["openid"]"#,
        r#"scopes_required: ["openid read"]"#,
        r#"scopes_required: ["admin", "read openid"]"#,
    ] {
        let (r, forwarded, _) = status_under(&idp, req);
        assert_eq!(r.status, 200, "{req}: {r:?}");
        assert_eq!(forwarded, 1, "{req}");
    }
}

#[test]
fn forbidden_verdict_is_cached_so_repeats_do_not_reach_the_idp() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}scopes_required: [\"admin\"]\n"), DRIVER);
    let before = idp.token_requests(POST_CLIENT.0);
    let auth = basic(POST_CLIENT.0, POST_CLIENT.1);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let mut c = p.connect();
                for _ in 0..25 {
                    c.write(&request("GET", "/deny", &[("Authorization", &auth)], b""));
                    let r = c.response().expect("a response");
                    assert_forbidden(&r, &idp);
                }
            });
        }
    });
    assert_eq!(idp.token_requests(POST_CLIENT.0) - before, 1, "200 refusals, one token fetched and judged");
    assert!(up.received().is_empty(), "nothing reached the upstream");
}

#[test]
fn audience_required_not_met_is_403() {
    let idp = TestIdp::start(0);
    let (r, forwarded, _) = status_under(&idp, r#"audience_required: ["urn:someone-else"]"#);
    assert_forbidden(&r, &idp);
    assert_eq!(forwarded, 0);
    let (r, forwarded, _) = status_under(&idp, &format!(r#"audience_required: ["{IDP_AUDIENCE}"]"#));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(forwarded, 1);
}

// ----- groups_required, roles_required, upstream_headers_claims (Kong §1.8, §1.9) -----

#[test]
fn groups_and_roles_required_are_checked_against_the_token_claims() {
    let idp = TestIdp::start(0);
    // `groups` is a JSON array and `roles` a space-separated string; both are lists.
    for (requirement, allowed) in [
        (r#"groups_required: ["payments"]"#, true),
        (r#"groups_required: ["finance", "ops payments"]"#, true),
        (r#"groups_required: ["finance"]"#, false),
        (r#"groups_required: ["payments finance"]"#, false),
        (r#"roles_required: ["auditor reader"]"#, true),
        (r#"roles_required: ["admin"]"#, false),
        ("groups_claim: [tenant]\ngroups_required: [acme]", true),
        ("roles_claim: [org, region]\nroles_required: [eu]", true),
        ("roles_claim: [org, region]\nroles_required: [us]", false),
        ("groups_required: [payments]\nroles_required: [admin]", false),
    ] {
        let up = Upstream::start();
        let p = start(&up, &idp, &format!("{CC_HEADER_POST}{requirement}\n"), DRIVER);
        let r = get_as(&p, CLAIMS_CLIENT);
        if allowed {
            assert_eq!(r.status, 200, "{requirement}: {r:?}");
            assert_eq!(up.received().len(), 1, "{requirement}");
        } else {
            assert_forbidden(&r, &idp);
            assert!(up.received().is_empty(), "{requirement}: nothing upstream");
        }
    }
    // A token without the claim meets no requirement on it.
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}groups_required: [payments]\n"), DRIVER);
    assert_forbidden(&get_as(&p, POST_CLIENT), &idp);
    assert!(up.received().is_empty());
}

/// The plugin settings that make the test IdP issue opaque access tokens.
const OPAQUE: &str = "token_post_args_names: [resource]\ntoken_post_args_values: [\"urn:ringgate:opaque\"]\n";

#[test]
fn opaque_access_tokens_are_forwarded_as_issued_and_cached() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}{OPAQUE}"), DRIVER);
    for _ in 0..3 {
        let r = get_as(&p, POST_CLIENT);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    let tokens: Vec<String> = got.iter().map(forwarded_bearer).collect();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one token, cached: {tokens:?}");
    assert_eq!(tokens[0].split('.').count(), 1, "an opaque token, not a JWT: {}", tokens[0]);
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1);
}

/// Without the plugin's own client (`client_id`, `client_secret`), nothing can introspect.
#[test]
fn an_opaque_token_meets_no_requirement_when_its_claims_cannot_be_read() {
    let idp = TestIdp::start(0);
    for requirement in [
        r#"scopes_required: ["openid"]"#,
        &format!(r#"audience_required: ["{IDP_AUDIENCE}"]"#),
        "groups_required: [payments]",
    ] {
        let up = Upstream::start();
        let p = start(&up, &idp, &format!("{CC_HEADER_POST}{OPAQUE}{requirement}\n"), DRIVER);
        assert_forbidden(&get_as(&p, POST_CLIENT), &idp);
        assert!(up.received().is_empty(), "{requirement}: nothing upstream");
    }
}

/// The plugin's own client, which introspects opaque tokens (client_secret_post, as
/// [`CC_HEADER_POST`] makes the token endpoint's method).
const OWN_CLIENT: &str = "client_id: [post-client]\nclient_secret: [post-client-secret-0123456789abcdef]\n";

fn introspections(idp: &TestIdp) -> u64 {
    counters(idp)["introspection"].as_u64().expect("an introspection counter")
}

on_both_drivers!(opaque_issued_tokens_are_introspected_once_and_their_claims_used, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "{CC_HEADER_POST}{OPAQUE}{OWN_CLIENT}scopes: [openid, read]\nscopes_required: [read]\n\
         audience_required: [\"urn:ringgate:opaque\"]\nupstream_headers_claims: [client_id]\n\
         upstream_headers_names: [X-Client]\nconsumer_claim: [client_id]\n"
    );
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), d);
    for _ in 0..3 {
        let r = get_spoofing(&p, "/o", &basic(CLAIMS_CLIENT.0, CLAIMS_CLIENT.1));
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    for g in &got {
        assert_eq!(forwarded_bearer(g).split('.').count(), 1, "the opaque token goes as issued: {g:?}");
        assert_eq!(g.header_str("x-client").as_deref(), Some(CLAIMS_CLIENT.0), "a claim from the answer");
        assert_eq!(identity(g)[0].as_deref(), Some(CLAIMS_CONSUMER_ID), "a consumer from the answer");
    }
    assert_eq!((idp.token_requests(CLAIMS_CLIENT.0), introspections(&idp)), (1, 1), "one of each per token");
    // The answer judges: a scope the token was not granted is missing.
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}{OPAQUE}{OWN_CLIENT}scopes: [openid, read]\nscopes_required: [admin]\n");
    let p = start(&up, &idp, &body, d);
    assert_forbidden(&get_as(&p, CLAIMS_CLIENT), &idp);
    assert!(up.received().is_empty());
    assert_eq!(introspections(&idp), 2);
    // Nothing reads claims: nothing is introspected.
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}{OPAQUE}{OWN_CLIENT}"), d);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200);
    assert_eq!(introspections(&idp), 2);
});

/// `introspect_jwt_tokens` with `bearer`: a JWT that verifies is introspected too, so a
/// token the IdP revokes is refused. Uncached (`cache_introspection: false`) that is the
/// next request; cached, the answer stands until it is refreshed. A token whose
/// signature fails never reaches the IdP.
#[test]
fn introspect_jwt_tokens_refuses_a_revoked_jwt() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("auth_methods: [bearer]\n{OWN_CLIENT}introspect_jwt_tokens: true\ncache_introspection: false\n");
    let p = start(&up, &idp, &body, DRIVER);
    let token = issue_token_for(&idp, CLAIMS_CLIENT);
    let bearer = format!("Bearer {token}");
    let before = introspections(&idp);
    for _ in 0..2 {
        assert_eq!(get(&p, "/j", &[("Authorization", &bearer)]).status, 200);
    }
    assert_eq!(introspections(&idp) - before, 2, "asked on every request");
    let tampered = format!("Bearer {}x", &token[..token.len() - 1]);
    assert_unauthorized(&get(&p, "/t", &[("Authorization", &tampered)]), &idp);
    assert_eq!(introspections(&idp) - before, 2, "a bad signature is refused before the IdP is asked");

    // A second instance caches the IdP's answer.
    let cached_up = Upstream::start();
    let cached =
        start(&cached_up, &idp, &format!("auth_methods: [bearer]\n{OWN_CLIENT}introspect_jwt_tokens: true\n"), DRIVER);
    for _ in 0..2 {
        assert_eq!(get(&cached, "/c", &[("Authorization", &bearer)]).status, 200);
    }
    assert_eq!(introspections(&idp) - before, 3, "once for the cached instance");

    let (status, answer) = idp.control("POST", "/revoke", &format!(r#"{{"client_id":"{}"}}"#, CLAIMS_CLIENT.0));
    assert_eq!((status, answer.as_str()), (200, r#"{"revoked":1}"#));
    assert_unauthorized(&get(&p, "/r", &[("Authorization", &bearer)]), &idp);
    assert_eq!(up.received().len(), 2, "the revoked token went no further");
    assert_eq!(get(&cached, "/c", &[("Authorization", &bearer)]).status, 200, "the cached answer stands");
    assert_eq!(cached_up.received().len(), 3);
}

/// `introspection_accept: application/token-introspection+jwt` (RFC 9701): the IdP signs
/// its answer, and the claims count only once that JWT verifies. A plain JSON answer to
/// that request (the IdP's `inactive` fault) is an IdP failure, 503, not the 401 the same
/// answer gives when JSON was asked for: an unsigned answer never stands for a signed one.
#[test]
fn signed_introspection_answers_are_verified_before_their_claims_count() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let signed = "introspection_accept: application/token-introspection+jwt\n\
                  introspection_endpoint_auth_method: client_secret_basic\n\
                  upstream_headers_claims: [client_id]\nupstream_headers_names: [X-Client]\n\
                  upstream_introspection_jwt_header: X-Introspection-Jwt\n\
                  downstream_introspection_jwt_header: X-Answer-Jwt\n";
    let own = format!("client_id: [{}]\nclient_secret: [{}]\n", BASIC_CLIENT.0, BASIC_CLIENT.1);
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}{OPAQUE}{own}{signed}"), DRIVER);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = get_as(&p, POST_CLIENT);
        assert_eq!(r.status, 200, "{r:?}");
        answers.push(r.header("x-answer-jwt").expect("the signed answer goes to the caller too").to_string());
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    let keys = KeySet::from_jwks(&idp_get(&idp, "/jwks")).expect("the IdP's JWKS");
    let answers_policy = Policy::new(&idp.issuer).for_introspection_answers();
    for (g, answer) in got.iter().zip(&answers) {
        assert_eq!(g.header_str("x-client").as_deref(), Some(POST_CLIENT.0), "a claim from the signed answer");
        // The answer as the IdP signed it: it verifies as one, and vouches for the token.
        let jws = g.header_str("x-introspection-jwt").expect("the signed answer upstream");
        assert_eq!(&jws, answer, "the same answer both ways");
        let v = ringgate::jose::verify(&jws, &keys, &answers_policy, unix_now() as u64)
            .unwrap_or_else(|e| panic!("the forwarded answer verifies: {e:?}"));
        let inner = v.claim("token_introspection").expect("the answer inside");
        assert_eq!(inner.get("active").and_then(|a| a.as_bool()), Some(true));
        assert_eq!(inner.get("client_id").and_then(|c| c.as_str()), Some(POST_CLIENT.0));
    }
    assert_eq!(introspections(&idp), 1, "once per issued token");

    idp.fault("introspection", "inactive", 0);
    let r = get_as(&p, CLAIMS_CLIENT);
    assert_eq!(r.status, 503, "{r:?}");
    let json = start(
        &up,
        &idp,
        &format!(
            "{CC_HEADER_POST}{OPAQUE}{own}upstream_headers_claims: [client_id]\nupstream_headers_names: [X-Client]\n\
             upstream_introspection_jwt_header: X-Introspection-Jwt\n"
        ),
        DRIVER,
    );
    assert_eq!(get_as(&json, CLAIMS_CLIENT).status, 401, "the same answer to a JSON request");
    assert_eq!(up.received().len(), 2, "neither reached the upstream");
    // A JSON answer has no JWT to send: the header is not set, and the caller's own is dropped.
    idp.fault("introspection", "none", 0);
    let r =
        get(&json, "/j", &[("Authorization", &basic(POST_CLIENT.0, POST_CLIENT.1)), ("X-Introspection-Jwt", "forged")]);
    assert_eq!(r.status, 200, "{r:?}");
    let got = up.wait_for(3, Duration::from_secs(5));
    assert!(got[2].header_all("x-introspection-jwt").is_empty(), "{:?}", got[2]);
}

#[test]
fn the_plugins_own_client_authenticates_for_introspection_by_each_method() {
    let idp = TestIdp::start(0);
    let before = introspections(&idp);
    let clients =
        [("client_secret_basic", BASIC_CLIENT), ("client_secret_post", POST_CLIENT), ("client_secret_jwt", JWT_CLIENT)];
    for (i, (method, (id, secret))) in clients.into_iter().enumerate() {
        let up = Upstream::start();
        let body = format!(
            "{CC_HEADER_POST}{OPAQUE}client_id: [{id}]\nclient_secret: [\"{secret}\"]\n\
             introspection_endpoint_auth_method: {method}\nscopes_required: [openid]\n"
        );
        let p = start(&up, &idp, &body, DRIVER);
        assert_eq!(get_as(&p, SPECIAL_POST).status, 200, "{method}");
        assert_eq!(introspections(&idp), before + i as u64 + 1, "{method}");
    }
    // A wrong secret is refused whichever way it is sent.
    let up = Upstream::start();
    let body = format!(
        "{CC_HEADER_POST}{OPAQUE}client_id: [{}]\nclient_secret: [wrong]\n\
         introspection_endpoint_auth_method: client_secret_jwt\nscopes_required: [openid]\n",
        JWT_CLIENT.0
    );
    let p = start(&up, &idp, &body, DRIVER);
    assert_unauthorized(&get_as(&p, SPECIAL_POST), &idp);
}

#[test]
fn an_inactive_or_unanswered_introspection_refuses_the_token_and_recovers() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}{OPAQUE}{OWN_CLIENT}scopes_required: [openid]\ndisplay_errors: true\n");
    let p = start(&up, &idp, &body, DRIVER);
    idp.fault("introspection", "inactive", 0);
    let r = get_as(&p, POST_CLIENT);
    assert_eq!(r.status, 401, "{r:?}");
    assert_json_message(&r, "Unauthorized (the IdP says the issued token is not active)");
    idp.fault("introspection", "500", 0);
    assert_idp_unavailable(&get_as(&p, POST_CLIENT));
    assert!(up.received().is_empty(), "nothing upstream without an answer");
    idp.fault("introspection", "none", 0);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200, "recovers without a restart");
    // The plugin's own client refused at the introspection endpoint: 401, not a hang.
    let wrong = "client_id: [post-client]\nclient_secret: [not-the-secret]\n";
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}{OPAQUE}{wrong}scopes_required: [openid]\n"), DRIVER);
    assert_unauthorized(&get_as(&p, POST_CLIENT), &idp);
}

/// An opaque access token for `post-client` straight from the IdP, with `scope=read`.
fn issue_opaque_token(idp: &TestIdp) -> String {
    let token = issue_token_with(idp, POST_CLIENT, "scope=read&resource=urn:ringgate:opaque");
    assert_eq!(token.split('.').count(), 1, "opaque: {token}");
    token
}

on_both_drivers!(callers_opaque_tokens_are_introspected_once_per_token_and_cached, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "auth_methods: [introspection]\n{OWN_CLIENT}scopes_required: [read]\nconsumer_claim: [client_id]\n\
         consumer_optional: true\nupstream_headers_claims: [client_id]\nupstream_headers_names: [X-Client]\n"
    );
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), d);
    let token = issue_opaque_token(&idp);
    let bearer = format!("Bearer {token}");
    let before = introspections(&idp);
    for i in 0..3 {
        let r = get_spoofing(&p, &format!("/i/{i}"), &bearer);
        assert_eq!(r.status, 200, "{r:?}");
    }
    // The query location works too, and shares the cached answer.
    assert_eq!(get(&p, &format!("/q?access_token={token}"), &[]).status, 200);
    let got = up.wait_for(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    for g in &got {
        assert_eq!(forwarded_bearer(g), token, "the caller's token goes on: {g:?}");
        assert_eq!(g.header_str("x-client").as_deref(), Some(POST_CLIENT.0), "a claim from the answer");
        assert_eq!(identity(g)[1].as_deref(), Some(POST_CLIENT.0), "mapped to its consumer");
    }
    assert_eq!(introspections(&idp), before + 1, "one introspection for the token, then the cache");
    // A token the IdP does not know is refused, and so is one without the scope.
    let r = get(&p, "/i/unknown", &[("Authorization", "Bearer not-a-token-the-idp-issued")]);
    assert_unauthorized(&r, &idp);
    let up2 = Upstream::start();
    let strict = format!("auth_methods: [introspection]\n{OWN_CLIENT}scopes_required: [admin]\n");
    let p2 = start(&up2, &idp, &strict, d);
    assert_forbidden(&get(&p2, "/i", &[("Authorization", &bearer)]), &idp);
    assert!(up2.received().is_empty());
    assert_eq!(up.received().len(), 4, "nothing refused went upstream");
});

#[test]
fn with_cache_introspection_off_every_request_is_introspected_and_a_revocation_counts_at_once() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("auth_methods: [introspection]\n{OWN_CLIENT}");
    let cached = start(&up, &idp, &body, DRIVER);
    let uncached = start(&up, &idp, &format!("{body}cache_introspection: false\n"), DRIVER);
    let token = issue_opaque_token(&idp);
    let auth = format!("Bearer {token}");
    let bearer = [("Authorization", auth.as_str())];
    let before = introspections(&idp);
    for i in 0..3 {
        assert_eq!(get(&cached, &format!("/c/{i}"), &bearer).status, 200);
    }
    assert_eq!(introspections(&idp), before + 1, "cached: one answer for the token");
    for i in 0..3 {
        assert_eq!(get(&uncached, &format!("/u/{i}"), &bearer).status, 200);
    }
    assert_eq!(introspections(&idp), before + 4, "uncached: one per request");
    // The IdP stops vouching for the token (revoked): the uncached instance refuses it
    // at the next request, the cached one keeps its answer until the refresh.
    idp.fault("introspection", "inactive", 0);
    assert_unauthorized(&get(&uncached, "/u/revoked", &bearer), &idp);
    assert_eq!(get(&cached, "/c/revoked", &bearer).status, 200);
    assert_eq!(up.received().len(), 7, "the refused request did not go upstream");
}

#[test]
fn with_bearer_and_introspection_a_jwt_is_verified_and_anything_else_introspected() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("auth_methods: [bearer, introspection]\n{OWN_CLIENT}");
    let p = start(&up, &idp, &body, DRIVER);
    let before = introspections(&idp);
    let jwt = issue_token(&idp);
    assert_eq!(get(&p, "/j", &[("Authorization", &format!("Bearer {jwt}"))]).status, 200);
    assert_eq!(introspections(&idp), before, "a JWT is verified against the keys, not introspected");
    let opaque = issue_opaque_token(&idp);
    assert_eq!(get(&p, "/o", &[("Authorization", &format!("Bearer {opaque}"))]).status, 200);
    assert_eq!(introspections(&idp), before + 1);
    // Inactive is 401, an IdP that cannot answer 503; neither reaches the upstream.
    idp.fault("introspection", "inactive", 0);
    let fresh = issue_opaque_token(&idp);
    assert_unauthorized(&get(&p, "/x", &[("Authorization", &format!("Bearer {fresh}"))]), &idp);
    idp.fault("introspection", "500", 0);
    let another = issue_opaque_token(&idp);
    assert_idp_unavailable(&get(&p, "/y", &[("Authorization", &format!("Bearer {another}"))]));
    assert_eq!(up.received().len(), 2);
}

on_both_drivers!(a_token_with_cr_lf_from_the_idp_or_a_query_never_reaches_a_header, |d| {
    // An IdP that answers 200 with `"opaque\r\nX-Injected: 1"` as the access token: had it
    // been forwarded, the upstream would have read a header of the IdP's choosing.
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}downstream_access_token_header: X-Token\n"), d);
    idp.fault("token", "bad_token", 0);
    assert_idp_unavailable(&get_as(&p, POST_CLIENT));
    assert!(up.received().is_empty(), "nothing went upstream");
    idp.fault("token", "none", 0);
    let r = get_as(&p, POST_CLIENT);
    assert_eq!(r.status, 200, "recovers: {r:?}");
    assert_eq!(r.header("x-token").map(|t| t.split('.').count()), Some(3), "the IdP's real token");
    let got = up.wait_for(1, Duration::from_secs(5));
    assert!(got[0].header_all("x-injected").is_empty(), "{:?}", got[0]);

    // A caller's token decoded from the query holds CR LF: refused before the IdP is
    // asked, whatever it would say.
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("auth_methods: [introspection]\n{OWN_CLIENT}"), d);
    let before = introspections(&idp);
    let r = get(&p, "/q?access_token=opaque%0D%0AX-Injected:%201", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(introspections(&idp), before, "the IdP was not asked");
    let opaque = issue_opaque_token(&idp);
    assert_eq!(get(&p, &format!("/q?access_token={opaque}"), &[]).status, 200, "a real one still passes");
    assert_eq!(up.received().len(), 1);
});

/// The introspection requests the IdP received since its log was last cleared.
fn introspection_log(idp: &TestIdp) -> Vec<OwnedValue> {
    control_ok(idp, "GET", "/introspections", "").as_array().expect("a list").clone()
}

// `introspection_post_args_client` (from the query, then a form body),
// `introspection_post_args_client_headers` and `introspection_headers_client`: what the
// caller sends reaches the IdP's introspection request, replacing configured values of
// the same name, and keys the answer: the same values share one introspection, other
// values are asked about anew. The caller's request reaches the upstream whole.
on_both_drivers!(a_callers_values_reach_the_introspection_of_its_token_and_key_the_answer, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "auth_methods: [introspection]\n{OWN_CLIENT}introspection_post_args_client: [resource]\n\
         introspection_post_args_client_headers: [x-region]\nintrospection_headers_client: [X-Tenant]\n\
         introspection_post_args_names: [resource, fixed]\nintrospection_post_args_values: [urn:configured, kept]\n\
         introspection_headers_names: [X-Tenant]\nintrospection_headers_values: [configured]\n"
    );
    let p = start(&up, &idp, &body, d);
    let token = issue_opaque_token(&idp);
    let auth = format!("Bearer {token}");
    control_ok(&idp, "POST", "/reset", r#"{"counters_only":true}"#);
    let from_caller = [("Authorization", auth.as_str()), ("X-Region", "eu"), ("X-Tenant", "acme")];
    for _ in 0..2 {
        let r = get(&p, "/a?resource=urn%3Aapi", &from_caller);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let log = introspection_log(&idp);
    assert_eq!(log.len(), 1, "the same values share one answer: {log:?}");
    let (params, headers) = (&log[0]["params"], &log[0]["headers"]);
    assert_eq!(params["token"].as_str(), Some(token.as_str()));
    assert_eq!(params["resource"].as_str(), Some("urn:api"), "the caller's value replaces the configured one");
    assert_eq!(params["fixed"].as_str(), Some("kept"));
    assert_eq!(params["x-region"].as_str(), Some("eu"), "a header sent as a post argument");
    assert_eq!(headers["x-tenant"].as_str(), Some("acme"), "the caller's header replaces the configured one");

    // Another value, from a form body: asked about anew.
    let form = b"resource=urn%3Abody&other=1";
    let posted =
        request("POST", "/b", &[("Authorization", &auth), ("Content-Type", "application/x-www-form-urlencoded")], form);
    assert_eq!(p.send(&posted).status, 200);
    let log = introspection_log(&idp);
    assert_eq!(log.len(), 2, "other values, another introspection");
    assert_eq!(log[1]["params"]["resource"].as_str(), Some("urn:body"));
    assert!(log[1]["params"].get("x-region").is_none(), "no header, no argument: {:?}", log[1]);
    assert_eq!(log[1]["headers"]["x-tenant"].as_str(), Some("configured"));

    // No values at all: the configured ones.
    assert_eq!(get(&p, "/c", &[("Authorization", &auth)]).status, 200);
    let log = introspection_log(&idp);
    assert_eq!(log.len(), 3);
    assert_eq!(log[2]["params"]["resource"].as_str(), Some("urn:configured"));

    let got = up.wait_for(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    let b = got.iter().find(|g| g.target == "/b").expect("the POST went upstream");
    assert_eq!(b.body, form, "the form body reaches the upstream as sent");
    let a = got.iter().find(|g| g.target.starts_with("/a")).expect("a GET went upstream");
    assert_eq!(a.header_str("x-tenant").as_deref(), Some("acme"), "the caller's header goes on upstream too");
});

/// A configured `Authorization` header. In the token request client_secret_basic
/// replaces it (Kong's rule there: a request never carries two). In the introspection
/// request it authenticates in place of the plugin's client (Kong's rule there).
#[test]
fn a_configured_authorization_is_replaced_for_tokens_and_authenticates_introspection() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let stale = "token_headers_names: [Authorization]\ntoken_headers_values: [\"Basic bm90OnRoaXM=\"]\n";
    let p = start(&up, &idp, &format!("{CC_HEADER_BASIC}{stale}"), DRIVER);
    let r = get_as(&p, BASIC_CLIENT);
    assert_eq!(r.status, 200, "the caller's credentials, not the configured header: {r:?}");

    let body = format!(
        "auth_methods: [introspection]\n{OWN_CLIENT}introspection_endpoint_auth_method: client_secret_post\n\
         introspection_headers_names: [Authorization]\nintrospection_headers_values: [\"{}\"]\n",
        basic(BASIC_CLIENT.0, BASIC_CLIENT.1)
    );
    let p = start(&up, &idp, &body, DRIVER);
    let token = issue_opaque_token(&idp);
    control_ok(&idp, "POST", "/reset", r#"{"counters_only":true}"#);
    assert_eq!(get(&p, "/i", &[("Authorization", &format!("Bearer {token}"))]).status, 200);
    let log = introspection_log(&idp);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["auth_method"].as_str(), Some("client_secret_basic"), "{:?}", log[0]);
    assert_eq!(log[0]["client_id"].as_str(), Some(BASIC_CLIENT.0));
    assert!(log[0]["params"].get("client_secret").is_none(), "the plugin's client is not sent too: {:?}", log[0]);

    // With no plugin client at all, the header alone authenticates (Kong needs no client there).
    let body = format!(
        "auth_methods: [introspection]\nintrospection_headers_names: [Authorization]\n\
         introspection_headers_values: [\"{}\"]\n",
        basic(BASIC_CLIENT.0, BASIC_CLIENT.1)
    );
    let p = start(&up, &idp, &body, DRIVER);
    let other = issue_opaque_token(&idp);
    assert_eq!(get(&p, "/n", &[("Authorization", &format!("Bearer {other}"))]).status, 200);
    let log = introspection_log(&idp);
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["client_id"].as_str(), Some(BASIC_CLIENT.0), "{:?}", log[1]);
}

/// The introspection answer in a header: base64 of its JSON, decoded.
fn introspection_answer(value: &str) -> OwnedValue {
    json(STANDARD.decode(value).unwrap_or_else(|e| panic!("base64 expected in {value:?}: {e}")))
}

on_both_drivers!(the_introspection_answer_goes_upstream_and_back_in_the_configured_headers, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "auth_methods: [bearer, introspection]\n{OWN_CLIENT}upstream_introspection_header: X-Introspection\n\
         downstream_introspection_header: X-Introspection-Answer\n"
    );
    let p = start(&up, &idp, &body, d);
    let forged = ("X-Introspection", "eyJhY3RpdmUiOnRydWV9");
    let opaque = issue_opaque_token(&idp);
    let r = get(&p, "/o", &[("Authorization", &format!("Bearer {opaque}")), forged]);
    assert_eq!(r.status, 200, "{r:?}");
    let got = up.wait_for(1, Duration::from_secs(5));
    let sent = got[0].header_all("x-introspection");
    assert_eq!(sent.len(), 1, "one header, the caller's dropped: {:?}", got[0]);
    let answer = introspection_answer(std::str::from_utf8(sent[0]).unwrap());
    assert_eq!(answer.get("active").and_then(|a| a.as_bool()), Some(true), "{answer:?}");
    assert_eq!(answer.get("client_id").and_then(|c| c.as_str()), Some(POST_CLIENT.0), "{answer:?}");
    assert_eq!(answer.get("scope").and_then(|c| c.as_str()), Some("read"), "{answer:?}");
    assert_eq!(r.header("x-introspection-answer").map(str::as_bytes), Some(sent[0]), "the same answer back");
    // A JWT is verified here, not introspected: no answer to send, and the caller's
    // header still does not pass.
    let jwt = issue_token(&idp);
    let r = get(&p, "/j", &[("Authorization", &format!("Bearer {jwt}")), forged]);
    assert_eq!(r.status, 200, "{r:?}");
    let got = up.wait_for(2, Duration::from_secs(5));
    assert!(got[1].header_all("x-introspection").is_empty(), "{:?}", got[1]);
    assert_eq!(r.header("x-introspection-answer"), None);

    // An opaque token the IdP issues for credentials is introspected for the header
    // alone, once, and the answer is kept with the token.
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}{OPAQUE}{OWN_CLIENT}upstream_introspection_header: X-Introspection\n");
    let p = start(&up, &idp, &body, d);
    let before = introspections(&idp);
    for _ in 0..3 {
        assert_eq!(get_as(&p, POST_CLIENT).status, 200);
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    for g in &got {
        let answer = introspection_answer(&g.header_str("x-introspection").expect("the answer upstream"));
        assert_eq!(answer.get("client_id").and_then(|c| c.as_str()), Some(POST_CLIENT.0), "{answer:?}");
    }
    assert_eq!(introspections(&idp), before + 1);
});

#[test]
fn a_token_with_a_forbidden_claim_is_403_and_false_counts_as_absent() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}claims_forbidden: [act, tenant]\n"), DRIVER);
    assert_forbidden(&get_as(&p, CLAIMS_CLIENT), &idp);
    assert!(up.received().is_empty());
    assert_eq!(get_as(&p, POST_CLIENT).status, 200, "a token without them passes");
    // The claims client's token has no `nope` claim, and `retired: false` counts as absent;
    // an opaque token cannot show it has neither.
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}claims_forbidden: [nope, retired]\n"), DRIVER);
    assert_eq!(get_as(&p, CLAIMS_CLIENT).status, 200);
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}{OPAQUE}claims_forbidden: [nope]\n"), DRIVER);
    assert_forbidden(&get_as(&p, POST_CLIENT), &idp);
}

on_both_drivers!(authenticated_groups_reach_the_upstream_joined_and_the_callers_never_do, |d| {
    let idp = TestIdp::start(0);
    for (claim, expected) in [("groups", "payments, ops"), ("roles", "reader, auditor")] {
        let up = Upstream::start();
        let p = start(&up, &idp, &format!("{CC_HEADER_POST}authenticated_groups_claim: [{claim}]\n"), d);
        let auth = basic(CLAIMS_CLIENT.0, CLAIMS_CLIENT.1);
        for _ in 0..2 {
            let r = get(&p, "/g", &[("Authorization", &auth), ("X-Authenticated-Groups", "admins")]);
            assert_eq!(r.status, 200, "{r:?}");
        }
        // A caller whose token has no such claim gets no header, and cannot set one.
        let plain = basic(POST_CLIENT.0, POST_CLIENT.1);
        let r = get(&p, "/g", &[("Authorization", &plain), ("X-Authenticated-Groups", "admins")]);
        assert_eq!(r.status, 200, "{r:?}");
        let got = up.wait_for(3, Duration::from_secs(5));
        let seen: Vec<Vec<&[u8]>> = got.iter().map(|g| g.header_all("x-authenticated-groups")).collect();
        assert_eq!(seen, [vec![expected.as_bytes()], vec![expected.as_bytes()], vec![]], "{claim}");
    }
});

#[test]
fn display_errors_names_the_unmet_groups_or_roles() {
    let idp = TestIdp::start(0);
    for (requirement, reason) in [
        ("groups_required: [finance]", "required groups are missing"),
        ("roles_required: [admin]", "required roles are missing"),
    ] {
        let up = Upstream::start();
        let p = start(&up, &idp, &format!("{CC_HEADER_POST}display_errors: true\n{requirement}\n"), DRIVER);
        let r = get_as(&p, CLAIMS_CLIENT);
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(json(r.body.clone())["message"].as_str(), Some(format!("Forbidden ({reason})").as_str()));
    }
}

/// The plugin settings that send the claims client's claims upstream, plus one claim
/// the token does not have.
const CLAIM_HEADERS: &str = "upstream_headers_claims: [tenant, tier, beta, retired, groups, org, smuggle, absent]\n\
    upstream_headers_names: [X-Tenant, X-Tier, X-Beta, X-Retired, X-Groups, X-Org, X-Smuggle, X-Absent]\n";

/// What the upstream must have received from the claims client's token under
/// [`CLAIM_HEADERS`], whatever the caller sent under those names.
fn assert_claim_headers(g: &Received) {
    let b64 = |v: &[u8]| base64_decode(v);
    assert_eq!(g.header_all("x-tenant"), [&b"acme"[..]], "one X-Tenant, the token's");
    assert_eq!(g.header_str("x-tier").as_deref(), Some("3"));
    assert_eq!(g.header_str("x-beta").as_deref(), Some("true"));
    assert!(g.header("x-retired").is_none(), "false is a missing claim, as in Kong");
    let groups = json(b64(g.header("x-groups").expect("X-Groups")));
    assert_eq!(
        groups.as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>()),
        Some(vec!["payments", "ops"])
    );
    let org = json(b64(g.header("x-org").expect("X-Org")));
    assert_eq!((org["id"].as_str(), org["region"].as_str()), (Some("o-1"), Some("eu")));
    assert!(g.header("x-smuggle").is_none(), "a value with CR LF is not sent");
    assert!(g.header("x-injected").is_none(), "and nothing it carried became a header");
    assert!(g.header("x-absent").is_none(), "the caller's own X-Absent does not pass either");
}

fn base64_decode(v: &[u8]) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v).unwrap_or_else(|e| panic!("standard base64: {e}: {v:?}"))
}

on_both_drivers!(claims_reach_the_upstream_as_configured_headers, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}{CLAIM_HEADERS}"), d);
    let auth = basic(CLAIMS_CLIENT.0, CLAIMS_CLIENT.1);
    let spoofed = [("Authorization", auth.as_str()), ("X-Tenant", "evil"), ("x-absent", "spoofed")];
    // The first request fills the cache; the next two are hits on a worker's L1.
    for i in 0..3 {
        let r = get(&p, &format!("/c/{i}"), &spoofed);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(3, Duration::from_secs(5));
    assert_eq!(got.len(), 3);
    got.iter().for_each(assert_claim_headers);
    assert_eq!(idp.token_requests(CLAIMS_CLIENT.0), 1);
    // A token without these claims sets none of the headers, and the caller's still go.
    let r = get(&p, "/plain", &[("Authorization", &basic(POST_CLIENT.0, POST_CLIENT.1)), ("X-Tenant", "evil")]);
    assert_eq!(r.status, 200, "{r:?}");
    let plain = up.wait_for(4, Duration::from_secs(5)).pop().expect("the fourth request");
    assert!(plain.header("x-tenant").is_none() && plain.header("x-groups").is_none(), "{plain:?}");
});

/// `upstream_headers` / `downstream_headers` (Kong 3.14): a claim inside a nested object
/// reaches the upstream and the caller under its header, on the fetch and on a hit; a
/// path the token lacks sets nothing, and the caller's own header under that name is
/// dropped.
#[test]
fn nested_claims_reach_the_upstream_and_the_caller_by_path() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let config = format!(
        "{CC_HEADER_POST}upstream_headers:\n- {{header: X-Org-Id, path: [org, id]}}\n\
         - {{header: X-Org, path: [org]}}\n- {{header: X-Org-Missing, path: [org, nope]}}\n\
         downstream_headers: [{{header: X-Region, path: [org, region]}}]\n"
    );
    let p = start(&up, &idp, &config, DRIVER);
    let auth = basic(CLAIMS_CLIENT.0, CLAIMS_CLIENT.1);
    for i in 0..2 {
        let r = get(&p, &format!("/n/{i}"), &[("Authorization", &auth), ("X-Org-Missing", "spoofed")]);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-region"), Some("eu"), "request {i}: {r:?}");
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(g.header_all("x-org-id"), [&b"o-1"[..]]);
        let org = json(base64_decode(g.header("x-org").expect("X-Org")));
        assert_eq!((org["id"].as_str(), org["region"].as_str()), (Some("o-1"), Some("eu")));
        assert!(g.header("x-org-missing").is_none(), "no such claim, and not the caller's either: {g:?}");
        assert!(g.header("x-region").is_none(), "the downstream header stays downstream");
    }
    assert_eq!(idp.token_requests(CLAIMS_CLIENT.0), 1);
}

#[test]
fn bearer_tokens_get_their_claim_headers_on_a_miss_and_on_a_hit() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("auth_methods: [bearer]\n{CLAIM_HEADERS}"), DRIVER);
    let token = issue_token_for(&idp, CLAIMS_CLIENT);
    let bearer = format!("Bearer {token}");
    for _ in 0..2 {
        let r = get(&p, "/b", &[("Authorization", &bearer), ("X-Tenant", "evil"), ("X-Absent", "spoofed")]);
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    got.iter().for_each(assert_claim_headers);
}

#[test]
fn display_errors_appends_the_reason_and_never_a_secret() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}display_errors: true\nscopes_required: [\"admin\"]\n"), DRIVER);
    let message = |r: &Response| json(r.body.clone())["message"].as_str().unwrap().to_string();
    let is_with_reason = |m: &str, base: &str| {
        m.strip_prefix(&format!("{base} ("))
            .and_then(|rest| rest.strip_suffix(')'))
            .is_some_and(|reason| !reason.trim().is_empty())
    };

    let r = get(&p, "/", &[]);
    assert_eq!(r.status, 401);
    assert_www_authenticate(&r, &idp, "invalid_token");
    assert!(is_with_reason(&message(&r), "Unauthorized"), "{}", r.body_str());

    let r = get_as(&p, (POST_CLIENT.0, "wrong-secret-value"));
    assert_eq!(r.status, 401);
    assert!(is_with_reason(&message(&r), "Unauthorized"), "{}", r.body_str());
    assert!(!r.body_str().contains("wrong-secret-value"), "{}", r.body_str());

    let r = get_as(&p, POST_CLIENT);
    assert_eq!(r.status, 403);
    assert_www_authenticate(&r, &idp, "insufficient_scope");
    let m = message(&r);
    assert!(is_with_reason(&m, "Forbidden"), "{m}");
    assert!(!m.contains(POST_CLIENT.1) && !m.contains("eyJ"), "no secret or token in {m}");
    assert!(up.received().is_empty());
    assert_eq!(idp.token_requests(POST_CLIENT.0), 2);
}

#[test]
fn route_plugin_overrides_the_global_one() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let plugin = |extra: &str| {
        format!(
            "- name: openid-connect\n  config:\n    issuer: {}\n{}",
            idp.issuer,
            indent(&format!("{CC_HEADER_POST}{extra}"), 4)
        )
    };
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: strict\n    paths: [/strict]\n  - name: relaxed\n    paths: [/relaxed]\n    plugins:\n{}plugins:\n{}",
        up.addr(),
        indent(&plugin(""), 4),
        plugin("scopes_required: [\"admin\"]\n")
    );
    let p = Proxy::start(&yaml, DRIVER, Limits::default());
    assert_forbidden(&get(&p, "/strict", &[("Authorization", &basic(POST_CLIENT.0, POST_CLIENT.1))]), &idp);
    let r = get(&p, "/relaxed", &[("Authorization", &basic(POST_CLIENT.0, POST_CLIENT.1))]);
    assert_eq!(r.status, 200, "{r:?}");
    let got = up.received();
    assert_eq!(got.len(), 1);
    assert_idp_token(&idp, &forwarded_token(&got[0]), POST_CLIENT.0);
}

// =====================================================================================
// The fixtures themselves: the tests above mean something only if these hold
// =====================================================================================

#[test]
fn claim_fixtures_differ_from_a_valid_token_only_in_the_claim_under_test() {
    let issuer = "http://127.0.0.1:9";
    let keys = KeySet::from_jwks(fixture_jwks().as_bytes()).expect("the fixture JWKS");
    let policy = Policy::new(issuer);
    let now = unix_now() as u64;
    let (accepted, refused) = claim_fixtures(issuer, now);
    // What the proxy fetches from the static server is exactly that JWKS.
    let server = StaticJson::start(fixture_jwks());
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");
    assert_eq!(raw.split_once("\r\n\r\n").map(|(_, b)| b), Some(fixture_jwks().as_str()));
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    for (what, token) in &accepted {
        let verified = ringgate::jose::verify(token, &keys, &policy, now);
        assert!(verified.is_ok(), "{what}: {verified:?}");
    }
    for (what, token) in &refused {
        assert!(ringgate::jose::verify(token, &keys, &policy, now).is_err(), "{what} verifies");
    }
}

#[test]
fn idp_helpers_read_tokens_counters_log_and_controls() {
    let idp = TestIdp::start(0);
    assert_eq!(realm(&idp), "127.0.0.1");
    let token = issue_token(&idp);
    assert_idp_token(&idp, &token, POST_CLIENT.0);
    assert_eq!(token_total(&idp), 1);
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1);
    assert_eq!(token_by_method(&idp, POST_CLIENT.0, "client_secret_post"), 1);
    assert_eq!(token_by_method(&idp, POST_CLIENT.0, "client_secret_basic"), 0);
    assert_eq!(jwks_fetches(&idp), 1, "assert_idp_token fetched the JWKS once");
    let log = control_ok(&idp, "GET", &format!("/requests?client_id={}", POST_CLIENT.0), "");
    let entry = &log.as_array().unwrap()[0];
    assert_eq!(entry["grant_type"].as_str(), Some("client_credentials"));
    assert_eq!(entry["scope"].as_str(), Some("openid"));
    assert_eq!(entry["status"].as_u64(), Some(200));

    set_ttl(&idp, 5);
    let short = issue_token(&idp);
    assert_eq!(claim_u64(&short, "exp") - claim_u64(&short, "iat"), 5);
    let rotated = control_ok(&idp, "POST", "/rotate", r#"{"drop_old":true}"#);
    let kid = rotated["rotated"]["kid"].as_str().unwrap().to_string();
    let after = issue_token(&idp);
    assert_eq!(jws_part(&after, 0)["kid"].as_str(), Some(kid.as_str()));
    assert_idp_token(&idp, &after, POST_CLIENT.0);
}

#[test]
fn bearer_token_is_read_from_query_form_json_and_cookie_in_the_configured_order() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(
        &up,
        &idp,
        "auth_methods: [bearer]\nbearer_token_param_type: [query, body, cookie]\nbearer_token_cookie_name: at\n",
        DRIVER,
    );
    let token = issue_token(&idp);
    let r = get(&p, &format!("/q?x=1&access_token={token}"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let form = format!("access_token={token}&y=2");
    let ct = ("Content-Type", "application/x-www-form-urlencoded");
    let r = p.send(&request("POST", "/f", &[ct], form.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");
    let json = format!(r#"{{"y":[1,{{"access_token":"nested"}}],"access_token":"{token}"}}"#);
    let r = p.send(&request("POST", "/j", &[("Content-Type", "application/json")], json.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");
    let cookie = format!("theme=dark; at=\"{token}\"");
    let r = get(&p, "/c", &[("Cookie", "a=1"), ("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{r:?}");
    // The query comes before the cookie: a tampered token there is refused even with a
    // good cookie; a token in the header is not looked at when the header is not a
    // configured location; a cookie of another name is no token.
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(get(&p, &format!("/q?access_token={tampered}"), &[("Cookie", &cookie)]).status, 401);
    let r = get(&p, "/h", &[("Authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 401, "header is not a configured bearer location");
    assert_eq!(get(&p, "/c2", &[("Cookie", &format!("other={token}"))]).status, 401);
    let got = up.wait_for(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4, "only the accepted requests reached the upstream");
    assert!(got[0].target.contains("access_token="), "forwarded as sent: {}", got[0].target);
    assert_eq!(got[2].body, json.as_bytes(), "hide_credentials off: the JSON body goes as sent");
    assert_eq!(got[3].header_all("cookie"), vec![&b"a=1"[..], cookie.as_bytes()]);
    for g in &got {
        assert_eq!(forwarded_token(g), token, "the upstream gets the token as a Bearer header: {}", g.target);
    }
}

/// The `header` location reads, after `Authorization: Bearer`, the bare token in Kong's
/// `access-token` and `x-access-token` headers; `bearer_token_header_name` narrows it to
/// one header. With `hide_credentials` the headers read go no further; without, the
/// caller's header goes as sent, and the upstream gets the token as a Bearer header too.
#[test]
fn bearer_tokens_are_read_from_kongs_token_headers_or_the_named_one() {
    let idp = TestIdp::start(0);
    let token = issue_token(&idp);
    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\n", DRIVER);
    for name in ["access-token", "X-Access-Token"] {
        let r = get(&p, "/k", &[(name, token.as_str())]);
        assert_eq!(r.status, 200, "{name}: {r:?}");
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    for g in &got {
        assert_eq!(forwarded_token(g), token);
    }
    assert_eq!(got[1].header_str("x-access-token").as_deref(), Some(token.as_str()), "hide_credentials off");
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert_unauthorized(&get(&p, "/t", &[("X-Access-Token", tampered.as_str())]), &idp);

    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\nhide_credentials: true\n", DRIVER);
    // `access-token` is read first: a bad one there is refused whatever follows.
    assert_unauthorized(&get(&p, "/b", &[("Access-Token", "other"), ("X-Access-Token", token.as_str())]), &idp);
    assert_eq!(get(&p, "/h", &[("X-Access-Token", token.as_str()), ("Access-Token", token.as_str())]).status, 200);
    let got = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(forwarded_token(&got[0]), token);
    assert!(got[0].header("x-access-token").is_none() && got[0].header("access-token").is_none(), "{:?}", got[0]);

    let up = Upstream::start();
    let p = start(
        &up,
        &idp,
        "auth_methods: [bearer]\nbearer_token_header_name: X-Api-Token\nhide_credentials: true\n",
        DRIVER,
    );
    assert_eq!(get(&p, "/n", &[("X-Api-Token", token.as_str()), ("X-Access-Token", "kept")]).status, 200);
    for (name, value) in [("Authorization", format!("Bearer {token}")), ("X-Access-Token", token.clone())] {
        assert_unauthorized(&get(&p, "/o", &[(name, value.as_str())]), &idp);
    }
    let got = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "only the named header's token went through");
    assert_eq!(forwarded_token(&got[0]), token);
    assert!(got[0].header("x-api-token").is_none(), "the header read is hidden");
    assert_eq!(got[0].header_str("x-access-token").as_deref(), Some("kept"), "one not read is not");
}

#[test]
fn hide_credentials_removes_bearer_tokens_from_query_json_and_cookie() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(
        &up,
        &idp,
        "auth_methods: [bearer]\nbearer_token_param_type: [query, body, cookie]\nbearer_token_cookie_name: at\nhide_credentials: true\n",
        DRIVER,
    );
    let token = issue_token(&idp);
    let r = get(&p, &format!("/q?x=1&access_token={token}&z=3"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let json = format!(r#"{{ "keep": {{"access_token": "n"}}, "access_token": "{token}", "k2": "v" }}"#);
    let r = p.send(&request("POST", "/j", &[("Content-Type", "application/json")], json.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");
    let r = get(&p, "/c", &[("Cookie", &format!("a=1; at={token}; b=2"))]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = get(&p, "/c-only", &[("Cookie", &format!("at={token}"))]);
    assert_eq!(r.status, 200, "{r:?}");
    let got = up.wait_for(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].target, "/q?x=1&z=3");
    assert_eq!(got[1].body, br#"{"keep": {"access_token": "n"},"k2": "v"}"#);
    assert_eq!(got[2].header_all("cookie"), vec![&b"a=1; b=2"[..]]);
    assert!(got[3].header_all("cookie").is_empty(), "no cookie left, no Cookie line");
    for g in &got {
        // The token travels in the Authorization header only.
        assert_eq!(forwarded_token(g), token);
        let raw = String::from_utf8_lossy(&g.raw);
        assert_eq!(raw.matches(token.as_str()).count(), 1, "token only once, in the header: {raw}");
    }
    assert!(up.errors().is_empty(), "bodies re-framed correctly: {:?}", up.errors());
}

// ----- consumers: consumer_claim, consumer_optional, anonymous -----

/// The consumer with an id written in the file.
const CLAIMS_CONSUMER_ID: &str = "3f1d2c4b-5a69-4788-9a0b-1c2d3e4f5a6b";

/// Consumers for the test clients: `post-client` by username (its id derived),
/// `claims-client` by custom id (with a written id), and a `guest` for `anonymous`.
fn consumers_yaml() -> String {
    format!(
        "consumers:\n- username: {}\n- id: {CLAIMS_CONSUMER_ID}\n  username: claims-app\n  custom_id: {}\n\
         - username: guest\n  custom_id: anon-1\n",
        POST_CLIENT.0, CLAIMS_CLIENT.0
    )
}

fn start_with_consumers(up: &Upstream, idp: &TestIdp, body: &str, consumers: &str, driver: IoDriver) -> Proxy {
    let yaml = format!("{}\n{consumers}", deck(up.addr(), &idp.issuer, body));
    Proxy::start(&yaml, driver, Limits::default())
}

/// A caller's attempt to name itself: every identity header the plugin owns.
const SPOOFED_IDENTITY: [(&str, &str); 4] = [
    ("X-Consumer-ID", "00000000-0000-4000-8000-000000000000"),
    ("X-Consumer-Username", "admin"),
    ("x-consumer-custom-id", "root"),
    ("X-Anonymous-Consumer", "false"),
];

fn get_spoofing(p: &Proxy, path: &str, authorization: &str) -> Response {
    let mut headers = vec![("Authorization", authorization)];
    headers.extend(SPOOFED_IDENTITY);
    get(p, path, &headers)
}

/// The identity headers the upstream got, in the order of [`SPOOFED_IDENTITY`], each
/// exactly once or not at all.
fn identity(r: &Received) -> [Option<String>; 4] {
    SPOOFED_IDENTITY.map(|(name, _)| {
        let all = r.header_all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {r:?}", all.len());
        all.first().map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

on_both_drivers!(consumers_are_mapped_from_a_claim_and_callers_never_name_themselves, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}consumer_claim: [client_id]\ndisplay_errors: true\n");
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), d);
    let post_id = ringgate::config::consumer_id_for(Some(POST_CLIENT.0), None);
    // Twice each: the fetch, then a cache hit, map alike.
    for i in 0..2 {
        let r = get_spoofing(&p, &format!("/post/{i}"), &basic(POST_CLIENT.0, POST_CLIENT.1));
        assert_eq!(r.status, 200, "{r:?}");
        let r = get_spoofing(&p, &format!("/claims/{i}"), &basic(CLAIMS_CLIENT.0, CLAIMS_CLIENT.1));
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    for g in &got {
        let expected = if g.target.starts_with("/post/") {
            [Some(post_id.clone()), Some(POST_CLIENT.0.to_string()), None, None]
        } else {
            // Found by custom id (consumer_by's first field), which the username is not.
            [Some(CLAIMS_CONSUMER_ID.into()), Some("claims-app".into()), Some(CLAIMS_CLIENT.0.into()), None]
        };
        assert_eq!(identity(g), expected, "{}", g.target);
        let token = g.header_str("authorization").unwrap_or_default();
        assert!(token.starts_with("Bearer ey"), "the token still goes: {g:?}");
    }
    // A client no consumer stands for: 403, Kong's reason, and nothing upstream.
    let r = get_spoofing(&p, "/nobody", &basic(SPECIAL_POST.0, SPECIAL_POST.1));
    assert_eq!(r.status, 403, "{r:?}");
    assert_json_message(&r, "Forbidden (kong consumer was not found)");
    assert_eq!(up.received().len(), 4);
    assert_eq!((idp.token_requests(POST_CLIENT.0), idp.token_requests(CLAIMS_CLIENT.0)), (1, 1));
});

/// `consumer_claims` (Kong 3.14): the paths are tried in order and the first the token
/// has names the consumer. The claims client's token has `org.id`, the post client's
/// only `client_id`, and neither has the first path.
#[test]
fn consumer_claims_try_each_path_in_order() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "{CC_HEADER_POST}consumer_claims: [[no_such_claim], [org, id], [client_id]]\nconsumer_by: [username]\n"
    );
    let consumers =
        format!("consumers:\n- username: o-1\n- username: {}\n- username: {}\n", POST_CLIENT.0, CLAIMS_CLIENT.0);
    let p = start_with_consumers(&up, &idp, &body, &consumers, DRIVER);
    for (client, path) in [(CLAIMS_CLIENT, "/claims"), (POST_CLIENT, "/post")] {
        let r = get_spoofing(&p, path, &basic(client.0, client.1));
        assert_eq!(r.status, 200, "{r:?}");
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    let usernames: Vec<Option<String>> = got.iter().map(|g| identity(g)[1].clone()).collect();
    assert_eq!(usernames, [Some("o-1".to_string()), Some(POST_CLIENT.0.to_string())], "org.id first, then client_id");
}

#[test]
fn an_optional_consumer_lets_unmapped_tokens_through_without_any_identity() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}consumer_claim: [client_id]\nconsumer_optional: true\n");
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), DRIVER);
    let r = get_spoofing(&p, "/nobody", &basic(SPECIAL_POST.0, SPECIAL_POST.1));
    assert_eq!(r.status, 200, "{r:?}");
    let got = up.wait_for(1, Duration::from_secs(5));
    assert_eq!(identity(&got[0]), [None, None, None, None], "the caller's own headers are dropped too");
    // A claim the token does not have maps nothing either, and refuses nothing.
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}consumer_claim: [no_such_claim]\nconsumer_optional: true\n");
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), DRIVER);
    assert_eq!(get_as(&p, POST_CLIENT).status, 200);
}

#[test]
fn consumer_by_and_username_case_decide_which_consumer_a_claim_names() {
    let idp = TestIdp::start(0);
    let shouting = "consumers:\n- username: POST-CLIENT\n";
    for (settings, status) in [
        ("consumer_by: [username]\n", 403),
        ("consumer_by: [username]\nby_username_ignore_case: true\n", 200),
        ("consumer_by: [custom_id, id]\nby_username_ignore_case: true\n", 403),
    ] {
        let up = Upstream::start();
        let body = format!("{CC_HEADER_POST}consumer_claim: [client_id]\n{settings}");
        let p = start_with_consumers(&up, &idp, &body, shouting, DRIVER);
        let r = get_as(&p, POST_CLIENT);
        assert_eq!(r.status, status, "{settings}: {r:?}");
        if status == 200 {
            let got = up.wait_for(1, Duration::from_secs(5));
            assert_eq!(got[0].header_str("x-consumer-username").as_deref(), Some("POST-CLIENT"));
        }
    }
}

#[test]
fn bearer_tokens_are_mapped_to_consumers_on_a_miss_and_on_a_hit() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = "auth_methods: [bearer]\nconsumer_claim: [client_id]\n";
    let only_claims = format!("consumers:\n- id: {CLAIMS_CONSUMER_ID}\n  custom_id: {}\n", CLAIMS_CLIENT.0);
    let p = start_with_consumers(&up, &idp, body, &only_claims, DRIVER);
    let bearer = format!("Bearer {}", issue_token_for(&idp, CLAIMS_CLIENT));
    for _ in 0..2 {
        assert_eq!(get_spoofing(&p, "/b", &bearer).status, 200);
    }
    let got = up.wait_for(2, Duration::from_secs(5));
    for g in &got {
        assert_eq!(identity(g)[0].as_deref(), Some(CLAIMS_CONSUMER_ID), "{g:?}");
    }
    let other = format!("Bearer {}", issue_token_for(&idp, POST_CLIENT));
    assert_eq!(get(&p, "/b", &[("Authorization", &other)]).status, 403);
}

on_both_drivers!(refused_requests_are_proxied_as_the_anonymous_consumer_without_credentials, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "{CC_HEADER_POST}consumer_claim: [client_id]\nanonymous: guest\nupstream_access_token_header: x-access-token\n"
    );
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), d);
    let guest_id = ringgate::config::consumer_id_for(Some("guest"), Some("anon-1"));
    let anonymous = [Some(guest_id), Some("guest".to_string()), Some("anon-1".to_string()), Some("true".to_string())];
    let wrong = basic(POST_CLIENT.0, "wrong-secret");
    // A wrong secret (401), no credentials (401), a client no consumer stands for (403).
    let r =
        get(&p, "/wrong", &[("Authorization", &wrong), ("X-Access-Token", "forged"), ("X-Consumer-Username", "admin")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get(&p, "/none", &[]).status, 200);
    assert_eq!(get_spoofing(&p, "/unmapped", &basic(SPECIAL_POST.0, SPECIAL_POST.1)).status, 200);
    // A caller the plugin accepts is itself, not the guest.
    assert_eq!(get_spoofing(&p, "/mapped", &basic(POST_CLIENT.0, POST_CLIENT.1)).status, 200);
    let got = up.wait_for(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    for g in &got[..3] {
        assert_eq!(identity(g), anonymous, "{}", g.target);
        assert!(g.header("authorization").is_none(), "the caller's credentials stay here: {g:?}");
        assert!(g.header("x-access-token").is_none(), "no token, and not the caller's either: {g:?}");
    }
    assert_eq!(identity(&got[3])[1].as_deref(), Some(POST_CLIENT.0));
    assert_eq!(identity(&got[3])[3], None);
    assert!(got[3].header_str("x-access-token").is_some_and(|t| t.split('.').count() == 3), "{:?}", got[3]);
});

#[test]
fn an_anonymous_consumer_that_does_not_exist_is_a_500_and_an_unavailable_idp_stays_a_503() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("{CC_HEADER_POST}anonymous: nobody\n");
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), DRIVER);
    let r = get(&p, "/", &[]);
    assert_eq!(r.status, 500, "{r:?}");
    assert_json_message(&r, "An unexpected error occurred");
    assert!(up.received().is_empty());
    // The IdP being down is not the caller's fault: no anonymous stand-in for it.
    let p = start_with_consumers(&up, &idp, &format!("{CC_HEADER_POST}anonymous: guest\n"), &consumers_yaml(), DRIVER);
    idp.fault("token", "500", 0);
    let r = get_as(&p, POST_CLIENT);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(up.received().is_empty());
}

/// `unauthorized_redirect_uri`, `forbidden_redirect_uri`, `unexpected_redirect_uri`: a
/// 401, a 403 and the plugin's 5xx become a 302 to the page, with no body and no
/// challenge, and nothing reaches the upstream. An anonymous consumer comes first, as in
/// Kong; a page left unset keeps its status.
#[test]
fn refusals_redirect_to_the_configured_pages_after_the_anonymous_consumer() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let pages = "unauthorized_redirect_uri: [\"https://app.example/#/login\"]\n\
                 forbidden_redirect_uri: [https://app.example/denied]\n\
                 unexpected_redirect_uri: [https://status.example/]\n";
    let p = start(&up, &idp, &format!("{CC_HEADER_POST}scopes_required: [admin]\n{pages}"), DRIVER);
    let redirect = |r: &Response, to: &str| {
        assert_eq!(r.status, 302, "{r:?}");
        assert_eq!(r.header("location"), Some(to), "{r:?}");
        assert_eq!(r.header("www-authenticate"), None, "{r:?}");
        assert!(r.body.is_empty(), "{r:?}");
    };
    redirect(&get_as(&p, (POST_CLIENT.0, "wrong")), "https://app.example/#/login");
    redirect(&get(&p, "/", &[]), "https://app.example/#/login");
    redirect(&get_as(&p, POST_CLIENT), "https://app.example/denied");
    idp.fault("token", "500", 0);
    redirect(&get_as(&p, SPECIAL_POST), "https://status.example/");
    idp.fault("token", "none", 0);
    assert!(up.received().is_empty(), "nothing reached the upstream");

    // Only a 401 page: a 403 stays a 403.
    let p = start(
        &up,
        &idp,
        &format!("{CC_HEADER_POST}scopes_required: [admin]\nunauthorized_redirect_uri: [https://app.example/login]\n"),
        DRIVER,
    );
    assert_forbidden(&get_as(&p, POST_CLIENT), &idp);
    // The anonymous consumer is served before any redirect.
    let body = format!("{CC_HEADER_POST}anonymous: guest\n{pages}");
    let p = start_with_consumers(&up, &idp, &body, &consumers_yaml(), DRIVER);
    assert_eq!(get_as(&p, (POST_CLIENT.0, "wrong")).status, 200);
    assert_eq!(up.received().len(), 1, "the anonymous request went upstream");
}

/// `hash_on: consumer` keeps each caller on one target: by its mapped consumer's id, or,
/// with no consumer mapping, by its token's credential (`sub`), as Kong hashes
/// "consumer, fallback to credential".
#[test]
fn hashing_on_the_consumer_keeps_each_caller_on_one_target() {
    // The ring's points depend on the targets' addresses, whose ports are random, so
    // whether all callers share one target is a matter of chance: 2 × 2^-CALLERS. With
    // ten callers it came up once in CI; with 32 it is about 5e-10 per run.
    const CALLERS: usize = 32;
    let idp = TestIdp::start(CALLERS);
    let (a, b) = (Upstream::start(), Upstream::start());
    let clients: Vec<(String, String)> = (0..CALLERS).map(load_client).collect();
    let consumers: String = clients.iter().map(|(id, _)| format!("- username: {id}\n")).collect();
    for mapping in ["consumer_claim: [client_id]\n", ""] {
        let yaml = format!(
            "_format_version: \"3.0\"\nupstreams:\n- name: pool\n  algorithm: consistent-hashing\n  \
             hash_on: consumer\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\nservices:\n- name: svc\n  \
             host: pool\n  routes: [{{name: r, paths: [/]}}]\nplugins:\n- name: openid-connect\n  config:\n    \
             issuer: {}\n{}consumers:\n{consumers}",
            a.addr(),
            b.addr(),
            idp.issuer,
            indent(&format!("{CC_HEADER_BASIC}{mapping}"), 4),
        );
        let p = Proxy::start(&yaml, DRIVER, Limits::default());
        let (before_a, before_b) = (a.received().len(), b.received().len());
        for round in 0..3 {
            for (i, (id, secret)) in clients.iter().enumerate() {
                let r = get(&p, &format!("/c{i}/{round}"), &[("Authorization", &basic(id, secret))]);
                assert_eq!(r.status, 200, "{mapping:?} caller {i}: {r:?}");
            }
        }
        let new = |u: &Upstream, before: usize| u.received().split_off(before);
        let (on_a, on_b) = (new(&a, before_a), new(&b, before_b));
        assert_eq!(on_a.len() + on_b.len(), 3 * CALLERS, "{mapping:?}");
        for i in 0..CALLERS {
            let prefix = format!("/c{i}/");
            let count = |got: &[Received]| got.iter().filter(|r| r.target.starts_with(&prefix)).count();
            let (x, y) = (count(&on_a), count(&on_b));
            assert!((x, y) == (3, 0) || (x, y) == (0, 3), "{mapping:?} caller {i}: {x} on a, {y} on b");
        }
        assert!(!on_a.is_empty() && !on_b.is_empty(), "{mapping:?}: {CALLERS} callers use both targets");
        let mapped = on_a.iter().chain(&on_b).all(|r| r.header("x-consumer-id").is_some());
        assert_eq!(mapped, !mapping.is_empty(), "{mapping:?}");
    }
}

/// Kong's `upstream_access_token_header` forms: `authorization:bearer` (the default),
/// `authorization:basic` (the token behind `Basic `) and a plain header name (the bare
/// token), for issued tokens (fetched and cached) and for a caller's bearer token.
#[test]
fn the_upstream_token_header_takes_each_of_kongs_forms() {
    let idp = TestIdp::start(0);
    let jwt = issue_token(&idp);
    for (setting, header, prefix) in [
        ("authorization:bearer", "authorization", "Bearer "),
        ("authorization:basic", "authorization", "Basic "),
        ("X-Access-Token", "x-access-token", ""),
    ] {
        let up = Upstream::start();
        let body = format!(
            "auth_methods: [client_credentials, bearer]\nclient_credentials_param_type: [header]\n\
                            client_auth: [client_secret_post]\nupstream_access_token_header: \"{setting}\"\n"
        );
        let p = start(&up, &idp, &body, DRIVER);
        for _ in 0..2 {
            assert_eq!(get_as(&p, POST_CLIENT).status, 200, "{setting}");
        }
        assert_eq!(get(&p, "/b", &[("Authorization", &format!("Bearer {jwt}"))]).status, 200, "{setting}");
        let got = up.wait_for(3, Duration::from_secs(5));
        assert_eq!(got.len(), 3);
        for (i, g) in got.iter().enumerate() {
            let all = g.header_all(header);
            assert_eq!(all.len(), 1, "{setting}: one {header}: {g:?}");
            let value = String::from_utf8(all[0].to_vec()).unwrap();
            let token = value.strip_prefix(prefix).unwrap_or_else(|| panic!("{setting}: {value:?}"));
            assert_eq!(token.split('.').count(), 3, "{setting}: a bare JWS after the prefix: {value:?}");
            assert!(!token.starts_with("Bearer"), "{setting}: {value:?}");
            if i == 2 {
                assert_eq!(token, jwt, "{setting}: the caller's own token");
            }
        }
    }
}

/// `downstream_access_token_header` and `downstream_headers_claims` / `_names`: the caller
/// gets its token and the named claims back as response headers, on a fetch and on a
/// cache hit, and for a bearer token it sent.
#[test]
fn the_caller_gets_its_token_and_claims_back_in_response_headers() {
    let idp = TestIdp::start(0);
    for (setting, header, prefix) in
        [("X-Access-Token", "x-access-token", ""), ("authorization:bearer", "authorization", "Bearer ")]
    {
        let up = Upstream::start();
        let body = format!(
            "auth_methods: [client_credentials, bearer]\nclient_credentials_param_type: [header]\n\
             client_auth: [client_secret_post]\ndownstream_access_token_header: \"{setting}\"\n\
             downstream_headers_claims: [client_id, tenant]\ndownstream_headers_names: [X-Client, X-Tenant]\n"
        );
        let p = start(&up, &idp, &body, DRIVER);
        let responses: Vec<Response> = (0..2).map(|_| get_as(&p, CLAIMS_CLIENT)).collect();
        let got = up.wait_for(2, Duration::from_secs(5));
        for (r, g) in responses.iter().zip(&got) {
            assert_eq!(r.status, 200, "{setting}: {r:?}");
            let value = r.header(header).unwrap_or_else(|| panic!("{setting}: no {header}: {r:?}"));
            assert_eq!(value, format!("{prefix}{}", forwarded_token(g)), "{setting}: the token the upstream got");
            assert_eq!(r.header("x-client"), Some(CLAIMS_CLIENT.0), "{setting}");
            assert_eq!(r.header("x-tenant"), Some("acme"), "{setting}");
        }
        // A caller's own bearer token comes back as sent, with its claims.
        let jwt = issue_token_for(&idp, CLAIMS_CLIENT);
        let r = get(&p, "/b", &[("Authorization", &format!("Bearer {jwt}"))]);
        assert_eq!(r.header(header), Some(format!("{prefix}{jwt}").as_str()), "{setting}");
        assert_eq!(r.header("x-tenant"), Some("acme"));
        // A refused request gets none of them.
        let r = get(&p, "/x", &[("Authorization", &basic(CLAIMS_CLIENT.0, "wrong"))]);
        assert_eq!(r.status, 401);
        assert!(r.header("x-client").is_none() && r.header("x-access-token").is_none(), "{r:?}");
    }
}

/// `token_headers_replay` with `token_headers_grants: [client_credentials]`: the caller
/// gets the token endpoint's named headers back under `token_headers_prefix`, on the
/// fetch and on cache hits (the headers are kept with the token, as Kong keeps them).
#[test]
fn token_endpoint_headers_are_replayed_to_the_caller() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!(
        "{CC_HEADER_POST}token_headers_replay: [cache-control, x-not-sent]\ntoken_headers_prefix: X-IdP-\n\
         token_headers_grants: [client_credentials]\n"
    );
    let p = start(&up, &idp, &body, DRIVER);
    for i in 0..3 {
        let r = get_as(&p, POST_CLIENT);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-idp-cache-control"), Some("no-store"), "request {i}: {r:?}");
        assert!(r.header("x-idp-x-not-sent").is_none(), "a header the IdP did not send");
    }
    assert_eq!(idp.token_requests(POST_CLIENT.0), 1, "replayed from the cache");
    // Without client_credentials among the grants, nothing is replayed (Kong's rule).
    let body = format!("{CC_HEADER_POST}token_headers_replay: [cache-control]\ntoken_headers_grants: [password]\n");
    let p = start(&up, &idp, &body, DRIVER);
    let r = get_as(&p, POST_CLIENT);
    assert_eq!(r.status, 200);
    assert!(r.header("cache-control").is_none(), "{r:?}");
}

// ----- DPoP, RFC 9449 (`proof_of_possession_dpop`) -----

/// A caller's DPoP key (ES256) and its public JWK, as a mobile app holds one.
struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: String,
}

impl DpopKey {
    fn new() -> DpopKey {
        let pair = random_es256_key();
        let point = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
        let jwk =
            format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#, b64url(&point[1..33]), b64url(&point[33..]));
        DpopKey { pair, jwk }
    }

    /// RFC 7638, written out here rather than taken from the proxy: the SHA-256 of the
    /// required members in lexicographic order.
    fn thumbprint(&self) -> String {
        let v = json(self.jwk.clone().into_bytes());
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            v["crv"].as_str().unwrap(),
            v["x"].as_str().unwrap(),
            v["y"].as_str().unwrap()
        );
        b64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// A proof for `htm` `htu`, made `age` seconds ago, for `token` (`ath`) when given.
    fn proof_at(&self, htm: &str, htu: &str, token: Option<&str>, age: i64) -> String {
        self.proof_with(htm, htu, token, age, None)
    }

    /// As [`DpopKey::proof_at`], with the server's `nonce` when given.
    fn proof_with(&self, htm: &str, htu: &str, token: Option<&str>, age: i64, nonce: Option<&str>) -> String {
        let header = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#, self.jwk);
        let iat = unix_now() as i64 - age;
        let ath = token.map_or(String::new(), |t| {
            format!(r#","ath":"{}""#, b64url(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()).as_ref()))
        });
        let nonce = nonce.map_or(String::new(), |n| format!(r#","nonce":"{n}""#));
        let payload = format!(r#"{{"jti":"{}","htm":"{htm}","htu":"{htu}","iat":{iat}{ath}{nonce}}}"#, unique_id());
        sign_es256(&self.pair, &header, &payload)
    }

    fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        self.proof_at(htm, htu, token, 0)
    }
}

/// A token for `post-client` from the IdP, bound to `key` with a DPoP proof on the token
/// request; returns the token and the `token_type` the IdP answered.
fn issue_dpop_token(idp: &TestIdp, key: &DpopKey, params: &str) -> (String, String) {
    let (id, secret) = POST_CLIENT;
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=openid{params}");
    let proof = key.proof("POST", &format!("{}/token", idp.issuer), None);
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("DPoP", proof.as_str())];
    let (status, body) = idp_http(idp, "POST", "/token", &headers, &form);
    assert_eq!(status, 200, "DPoP token request: {}", String::from_utf8_lossy(&body));
    let answer = json(body);
    (answer["access_token"].as_str().unwrap().to_string(), answer["token_type"].as_str().unwrap().to_string())
}

/// The request the tests send: `GET /orders/7?page=2` on `Host: api.example.com`, so
/// the URL a proof names is this one, without its query.
const DPOP_TARGET: &str = "/orders/7?page=2";
const DPOP_HTU: &str = "http://api.example.com/orders/7";

fn get_with_proofs(p: &Proxy, authorization: &str, proofs: &[&str]) -> Response {
    let mut headers = vec![("Authorization", authorization)];
    headers.extend(proofs.iter().map(|proof| ("DPoP", *proof)));
    get(p, DPOP_TARGET, &headers)
}

/// 401 with the DPoP challenge: `DPoP algs="…", realm="…", error="invalid_dpop_proof"`.
fn assert_dpop_refused(r: &Response, idp: &TestIdp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {r:?}");
    let www = r.header("www-authenticate").unwrap_or_else(|| panic!("{what}: a challenge"));
    assert!(www.starts_with(r#"DPoP algs=""#), "{what}: {www}");
    assert!(www.contains("ES256") && www.contains("RS256"), "{what}: {www}");
    assert!(www.contains(&format!(r#"realm="{}""#, realm(idp))), "{what}: {www}");
    assert!(www.ends_with(r#"error="invalid_dpop_proof""#), "{what}: {www}");
}

on_both_drivers!(dpop_bound_tokens_pass_only_with_a_proof_made_for_the_request, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\nproof_of_possession_dpop: strict\ndisplay_errors: true\n", d);
    let key = DpopKey::new();
    let (token, token_type) = issue_dpop_token(&idp, &key, "");
    assert_eq!(token_type, "DPoP", "the IdP bound the token");
    let cnf = jws_part(&token, 1)["cnf"]["jkt"].as_str().map(str::to_string);
    assert_eq!(cnf.as_deref(), Some(key.thumbprint().as_str()), "bound to the caller's key");
    let scheme = format!("DPoP {token}");

    // Twice with fresh proofs: the second token check comes from the per-core cache of
    // verified tokens, the proof is checked again.
    for i in 0..2 {
        let proof = key.proof("GET", DPOP_HTU, Some(&token));
        let r = get_with_proofs(&p, &scheme, &[&proof]);
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        let got = up.wait_for(i + 1, Duration::from_secs(5));
        assert_eq!(forwarded_bearer(&got[i]), token, "upstream gets the token as a Bearer token");
        assert_eq!(got[i].header_str("dpop").as_deref(), Some(proof.as_str()), "the proof passes through");
    }

    let other = DpopKey::new();
    let unbound = issue_token(&idp);
    let refused: Vec<(&str, String, Vec<String>, &str)> = vec![
        ("no proof", scheme.clone(), vec![], "exactly one DPoP header"),
        (
            "two proofs",
            scheme.clone(),
            vec![key.proof("GET", DPOP_HTU, Some(&token)), key.proof("GET", DPOP_HTU, Some(&token))],
            "exactly one DPoP header",
        ),
        (
            "a proof for another path",
            scheme.clone(),
            vec![key.proof("GET", "http://api.example.com/orders/8", Some(&token))],
            "does not match the request",
        ),
        (
            "a proof for another method",
            scheme.clone(),
            vec![key.proof("POST", DPOP_HTU, Some(&token))],
            "does not match the request",
        ),
        (
            "a proof for another host",
            scheme.clone(),
            vec![key.proof("GET", "http://evil.example.com/orders/7", Some(&token))],
            "does not match the request",
        ),
        (
            "a proof for another token",
            scheme.clone(),
            vec![key.proof("GET", DPOP_HTU, Some(&unbound))],
            "does not match the access token",
        ),
        (
            "a proof by another key",
            scheme.clone(),
            vec![other.proof("GET", DPOP_HTU, Some(&token))],
            "not the one the token is bound to",
        ),
        ("a proof 301 s old", scheme.clone(), vec![key.proof_at("GET", DPOP_HTU, Some(&token), 301)], "expired"),
        ("a proof 60 s ahead", scheme.clone(), vec![key.proof_at("GET", DPOP_HTU, Some(&token), -60)], "not yet valid"),
        (
            "the bound token as a Bearer token",
            format!("Bearer {token}"),
            vec![key.proof("GET", DPOP_HTU, Some(&token))],
            "not sent with the DPoP scheme",
        ),
        (
            "an unbound token with a proof",
            format!("DPoP {unbound}"),
            vec![key.proof("GET", DPOP_HTU, Some(&unbound))],
            "not bound to a key",
        ),
    ];
    for (what, authorization, proofs, reason) in &refused {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = get_with_proofs(&p, authorization, &proofs);
        assert_dpop_refused(&r, &idp, what);
        assert!(r.body_str().contains(reason), "{what}: {}", r.body_str());
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(up.received().len(), 2, "no refused request reached the upstream");
    let refusals = format!(r#"reason="invalid_dpop_proof"}} {}"#, refused.len());
    assert!(p.metrics().contains(&refusals), "counted: {}", p.metrics());

    // A token that does not verify is refused as one, whatever its proof.
    let tampered = format!("{}x", token);
    let r = get_with_proofs(&p, &format!("DPoP {tampered}"), &[&key.proof("GET", DPOP_HTU, Some(&tampered))]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains(r#"error="invalid_token""#), "{r:?}");
    assert!(r.header("www-authenticate").unwrap().starts_with("DPoP "), "strict: every challenge is DPoP");
});

on_both_drivers!(dpop_server_nonces_are_handed_out_and_date_the_proofs, |d| {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    // A 4 s lifetime: a nonce (issued at a whole second) is good for 4 s, and past 2 s
    // a success hands out the next one.
    let body = "auth_methods: [bearer]\nproof_of_possession_dpop: strict\ndpop_use_nonce: true\n\
                dpop_proof_lifetime: 4\ndisplay_errors: true\n";
    let p = start(&up, &idp, body, d);
    let key = DpopKey::new();
    let (token, _) = issue_dpop_token(&idp, &key, "");
    let scheme = format!("DPoP {token}");
    let with_nonce = |nonce: Option<&str>| key.proof_with("GET", DPOP_HTU, Some(&token), 0, nonce);
    let nonce_of = |r: &Response, what: &str| -> String {
        let nonce = r.header("dpop-nonce").unwrap_or_else(|| panic!("{what}: a nonce: {r:?}")).to_string();
        assert_eq!(nonce.len(), 54, "{what}: {nonce}");
        nonce
    };
    // 401 asking for a nonce, and handing one out.
    let asked = |r: &Response, what: &str| -> String {
        assert_eq!(r.status, 401, "{what}: {r:?}");
        let www = r.header("www-authenticate").unwrap_or_else(|| panic!("{what}: a challenge"));
        assert!(www.starts_with(r#"DPoP algs=""#) && www.ends_with(r#"error="use_dpop_nonce""#), "{what}: {www}");
        assert!(r.body_str().contains("lacks a current server nonce"), "{what}: {}", r.body_str());
        nonce_of(r, what)
    };

    // The first proof has no nonce: the answer gives one, and a proof with it passes, on
    // new connections to either worker (they share the instance's key).
    let nonce = asked(&get_with_proofs(&p, &scheme, &[&with_nonce(None)]), "no nonce");
    for i in 0..4 {
        let r = get_with_proofs(&p, &scheme, &[&with_nonce(Some(&nonce))]);
        assert_eq!(r.status, 200, "request {i} with the nonce: {r:?}");
        assert!(r.header("dpop-nonce").is_none(), "a young nonce needs no successor: {r:?}");
    }
    // One the server did not issue is asked again.
    // (A character of the tag changed: the time still decodes, the tag does not hold.)
    let swap = if nonce.as_bytes()[20] == b'A' { "B" } else { "A" };
    let forged = format!("{}{swap}{}", &nonce[..20], &nonce[21..]);
    asked(&get_with_proofs(&p, &scheme, &[&with_nonce(Some(&forged))]), "a forged nonce");

    // The nonce says when it was issued (8 bytes of Unix seconds before its tag): the
    // waits below are counted from there, whatever the requests before them took.
    let issued = {
        let raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        u64::from_be_bytes(raw[..8].try_into().unwrap())
    };
    let until = |secs: f64| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        thread::sleep(Duration::from_secs_f64((issued as f64 + secs - now).max(0.0)));
    };

    // Past half its lifetime the nonce still passes, and the answer hands out the next.
    until(3.2);
    let r = get_with_proofs(&p, &scheme, &[&with_nonce(Some(&nonce))]);
    assert_eq!(r.status, 200, "an aging nonce: {r:?}");
    let next = nonce_of(&r, "an aging nonce");
    assert_ne!(next, nonce);
    let r = get_with_proofs(&p, &scheme, &[&with_nonce(Some(&next))]);
    assert_eq!((r.status, r.header("dpop-nonce")), (200, None), "the next nonce: {r:?}");

    // Out of its lifetime, the first nonce is asked again, with a fresh one.
    until(5.2);
    let fresh = asked(&get_with_proofs(&p, &scheme, &[&with_nonce(Some(&nonce))]), "an expired nonce");
    let r = get_with_proofs(&p, &scheme, &[&with_nonce(Some(&fresh))]);
    assert_eq!(r.status, 200, "with the fresh nonce: {r:?}");
    // A proof wrong in another way is refused for that, with a nonce for the retry.
    let r = get_with_proofs(&p, &scheme, &[&DpopKey::new().proof_with("GET", DPOP_HTU, Some(&token), 0, Some(&fresh))]);
    assert_dpop_refused(&r, &idp, "a proof by another key, with a good nonce");
    nonce_of(&r, "a proof by another key");

    thread::sleep(Duration::from_millis(200));
    assert_eq!(up.received().len(), 7, "only the proofs with a current nonce went through");
    assert!(p.metrics().contains(r#"reason="use_dpop_nonce"} 3"#), "counted: {}", p.metrics());
});

#[test]
fn optional_dpop_checks_bound_tokens_and_lets_unbound_bearer_tokens_pass() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let p = start(&up, &idp, "auth_methods: [bearer]\nproof_of_possession_dpop: optional\n", DRIVER);
    let key = DpopKey::new();
    let (bound, _) = issue_dpop_token(&idp, &key, "");
    let unbound = issue_token(&idp);

    let r = get(&p, DPOP_TARGET, &[("Authorization", &format!("Bearer {unbound}"))]);
    assert_eq!(r.status, 200, "an unbound Bearer token needs no proof: {r:?}");
    let r = get(&p, DPOP_TARGET, &[("Authorization", &format!("Bearer {bound}"))]);
    assert_dpop_refused(&r, &idp, "a bound token sent as Bearer without a proof");
    let r = get_with_proofs(&p, &format!("DPoP {bound}"), &[&key.proof("GET", DPOP_HTU, Some(&bound))]);
    assert_eq!(r.status, 200, "a bound token with its proof: {r:?}");
    let r = get_with_proofs(&p, &format!("DPoP {bound}"), &[]);
    assert_dpop_refused(&r, &idp, "a bound token without a proof");
    // A refusal that is not about a proof keeps the Bearer challenge in this mode.
    let r = get(&p, DPOP_TARGET, &[("Authorization", "Bearer not.a.token")]);
    assert_unauthorized(&r, &idp);
    let got = up.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.iter().map(forwarded_bearer).collect::<Vec<_>>(), vec![unbound, bound]);
}

/// An opaque token is bound by what the IdP's introspection answer says (`cnf.jkt`).
#[test]
fn an_introspected_opaque_token_is_bound_by_its_introspection_answer() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let body = format!("auth_methods: [introspection]\n{OWN_CLIENT}proof_of_possession_dpop: optional\n");
    let p = start(&up, &idp, &body, DRIVER);
    let key = DpopKey::new();
    let (opaque, token_type) = issue_dpop_token(&idp, &key, "&resource=urn%3Aringgate%3Aopaque");
    assert_eq!((opaque.split('.').count(), token_type.as_str()), (1, "DPoP"), "an opaque bound token");

    let r = get(&p, DPOP_TARGET, &[("Authorization", &format!("Bearer {opaque}"))]);
    assert_dpop_refused(&r, &idp, "the introspection answer binds it, so it needs a proof");
    let r = get_with_proofs(&p, &format!("DPoP {opaque}"), &[&key.proof("GET", DPOP_HTU, Some(&opaque))]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = get_with_proofs(&p, &format!("DPoP {opaque}"), &[&DpopKey::new().proof("GET", DPOP_HTU, Some(&opaque))]);
    assert_dpop_refused(&r, &idp, "a proof by another key");
    assert_eq!(introspections(&idp), 1, "the answer is cached; proofs are checked on every request");
    assert_eq!(up.wait_for(1, Duration::from_secs(5)).len(), 1);
}
