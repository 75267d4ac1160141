//! The Admin API of the real `ringgate` binary, black box: the real test OpenID Provider
//! (`tests/idp/`), the recording upstream, and the Admin API driven over HTTP — the
//! documentation's requests by the real `curl`, the rest by a raw client.
//!
//! "Takes effect" means what the upstream RECEIVED: a request through the proxy with
//! `Authorization: Basic` of an IdP client reaches the upstream with a `Bearer` token
//! once the plugin is created, and with the caller's Basic header before. The first
//! request after a plugin is created may be answered 503 while discovery loads (SPEC
//! §3); requests are retried for a bounded time while the answer is 503, never on any
//! other status.
//!
//! TLS entities: certificates made by the tests (`support::tls`), and `https` services
//! pointing at a [`TlsFront`] in front of the recording upstream, so "takes effect"
//! means a request through the binary reached the upstream over verified TLS.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use support::binary::{bin, Ringgate};
use support::client::Client;
use support::idp::TestIdp;
use support::temp::TempDir;
use support::tls::{server_config, Issued, TestCa, TlsFront};
use support::upstream::Upstream;

/// A client the test IdP registers for client_secret_post (tests/idp/clients.json).
const POST_CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
/// The configured client secret: never the caller's, and never to be shown.
const CONFIGURED_SECRET: &str = "configured-secret-must-never-show-4c1e";
const TOKEN: &str = "admin-token-for-tests-9b2d";

/// Service `svc` on the upstream, route `r` on `/` keeping the path; no plugin.
fn deck(up: SocketAddr) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{up}\n  routes:\n  - name: r\n    paths: [/]\n    strip_path: false\n"
    )
}

/// The plugin body of Kong's documentation, with the test IdP's issuer.
fn docs_body(issuer: &str) -> String {
    format!(
        r#"{{"name":"openid-connect","config":{{"issuer":"{issuer}","client_id":["configured-client"],"client_secret":["{CONFIGURED_SECRET}"],"client_auth":["client_secret_post"],"auth_methods":["client_credentials"],"client_credentials_param_type":["header"]}},"tags":[]}}"#
    )
}

/// `ringgate run` with its Admin API on ([`Ringgate`] underneath, reached through
/// `Deref`), and the Admin-API helpers.
struct Gate {
    ringgate: Ringgate,
    /// Where the Admin API listens.
    admin: SocketAddr,
}

impl std::ops::Deref for Gate {
    type Target = Ringgate;
    fn deref(&self) -> &Ringgate {
        &self.ringgate
    }
}

impl std::ops::DerefMut for Gate {
    fn deref_mut(&mut self) -> &mut Ringgate {
        &mut self.ringgate
    }
}

impl Gate {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Gate {
        let ringgate = Ringgate::start(args, envs);
        let admin = ringgate.admin.expect("the Admin API is on");
        Gate { ringgate, admin }
    }

    /// An Admin API request; the status and the body (JSON, or `Null` when empty).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.call_with(method, path, &[("Content-Type", "application/json")], body)
    }

    fn call_with(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Value) {
        let (status, text) = raw_http(self.admin, method, path, headers, body.unwrap_or(""));
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(json!(text)) };
        (status, value)
    }

    /// A GET through the proxy as `(id, secret)`; retried while it is 503 (discovery
    /// loading), at most 15 s.
    fn through(&self, (id, secret): (&str, &str)) -> u16 {
        let basic = STANDARD.encode(format!("{id}:{secret}"));
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let mut c = Client::connect(self.proxy);
            c.write(format!("GET /x HTTP/1.1\r\nHost: api.test\r\nAuthorization: Basic {basic}\r\n\r\n").as_bytes());
            let status = c.response().expect("a response from the proxy").status;
            if status != 503 || Instant::now() > until {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One Admin API request on a fresh connection, read to the close; the response body is
/// recorded for the run's redaction check.
fn raw_http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let (status, body) = support::client::request_once(&addr.to_string(), method, path, headers, body);
    let body = String::from_utf8_lossy(&body).into_owned();
    support::record::record("admin-response", &body);
    (status, body)
}

/// The documentation's request, sent by curl as written there: trailing slash, JSON body.
fn curl_docs_request(admin: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "-X", "POST", &format!("http://localhost:{}{path}", admin.port())])
        .args(["--header", "accept: application/json", "--header", "Content-Type: application/json"])
        .args(["--data", body])
        .output()
        .expect("curl runs (apt-get install curl)");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    support::record::record("admin-response", &body);
    (status, serde_json::from_str(&body).unwrap_or(json!(body)))
}

/// What the upstream received last: its Authorization header.
fn last_authorization(up: &Upstream) -> String {
    up.received().last().and_then(|r| r.header_str("authorization")).unwrap_or_default()
}

/// A gate on `dir`: `kong.yaml` holding `deck_text`, state in `data/`, and `extra`
/// arguments; the Admin API on 127.0.0.1, port 0 (`Ringgate::start`'s default).
fn start_with(deck_text: &str, dir: &TempDir, extra: &[&str]) -> Gate {
    let file = dir.write("kong.yaml", deck_text);
    let data = dir.path("data");
    let mut args = vec!["--config", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    Gate::start(&args, &[])
}

fn start_gate(up: &Upstream, dir: &TempDir, extra: &[&str]) -> Gate {
    start_with(&deck(up.addr()), dir, extra)
}

#[test]
fn kong_docs_requests_by_curl_answer_201_and_take_effect_on_each_scope() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("docs");
    let gate = start_gate(&up, &dir, &[]);

    // Without a plugin the caller's Basic header goes upstream as it came.
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert!(last_authorization(&up).starts_with("Basic "), "{}", last_authorization(&up));

    let (_, service) = gate.call("GET", "/services/svc", None);
    let (_, route) = gate.call("GET", "/routes/r", None);
    let scopes = [
        "/plugins/".to_string(),
        "/services/svc/plugins/".to_string(),
        format!("/services/{}/plugins/", service["id"].as_str().unwrap()),
        "/routes/r/plugins/".to_string(),
        format!("/routes/{}/plugins/", route["id"].as_str().unwrap()),
    ];
    for path in &scopes {
        let (status, plugin) = curl_docs_request(gate.admin, path, &docs_body(&idp.issuer));
        assert_eq!(status, 201, "{path}: {plugin}");
        assert_eq!(plugin["name"], "openid-connect");
        assert_eq!(plugin["config"]["client_secret"], json!(["<redacted>"]));
        let id = plugin["id"].as_str().expect("an id").to_string();

        let before = up.received().len();
        assert_eq!(gate.through(POST_CLIENT), 200, "{path}:\n{}", gate.log());
        assert_eq!(up.received().len(), before + 1);
        let auth = last_authorization(&up);
        assert!(auth.starts_with("Bearer ") && auth.len() > 30, "{path}: upstream got {auth:?}");

        // Wrong credentials are now refused by the plugin, before the upstream.
        assert_eq!(gate.through((POST_CLIENT.0, "wrong")), 401, "{path}");
        assert_eq!(up.received().len(), before + 1);

        let (status, _) = gate.call("DELETE", &format!("/plugins/{id}"), None);
        assert_eq!(status, 204);
        assert_eq!(gate.through(POST_CLIENT), 200);
        assert!(last_authorization(&up).starts_with("Basic "), "{path}: removed, so no token");
    }
    assert!(!gate.log().contains(CONFIGURED_SECRET), "a secret in the log");
    assert!(!gate.log().contains(POST_CLIENT.1), "a caller secret in the log");
}

/// Claims settings added through the Admin API take effect on the running proxy: a
/// PATCH that changes them replaces the instance, and the next request is judged by them.
#[test]
fn claim_requirements_and_headers_set_by_patch_apply_to_the_next_request() {
    const CLAIMS_CLIENT: (&str, &str) = ("claims-client", "claims-client-secret-0123456789abcdef");
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("claims");
    let gate = start_gate(&up, &dir, &[]);
    let (status, plugin) = gate.call("POST", "/plugins", Some(&docs_body(&idp.issuer)));
    assert_eq!(status, 201, "{plugin}");
    let path = format!("/plugins/{}", plugin["id"].as_str().expect("an id"));
    assert_eq!(gate.through(CLAIMS_CLIENT), 200, "{}", gate.log());

    let (status, patched) = gate.call("PATCH", &path, Some(r#"{"config":{"groups_required":["finance"]}}"#));
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["config"]["groups_required"], json!(["finance"]));
    let before = up.received().len();
    assert_eq!(gate.through(CLAIMS_CLIENT), 403);
    assert_eq!(up.received().len(), before, "refused before the upstream");

    let body = r#"{"config":{"groups_required":["payments"],"upstream_headers_claims":["tenant"],"upstream_headers_names":["X-Tenant"]}}"#;
    let (status, patched) = gate.call("PATCH", &path, Some(body));
    assert_eq!(status, 200, "{patched}");
    assert_eq!(gate.through(CLAIMS_CLIENT), 200);
    let last = up.received().pop().expect("the request went upstream");
    assert_eq!(last.header_str("x-tenant").as_deref(), Some("acme"));

    let bad = r#"{"config":{"upstream_headers_claims":["tenant"],"upstream_headers_names":["Host"]}}"#;
    let (status, refused) = gate.call("PATCH", &path, Some(bad));
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("is written by the proxy itself"), "{refused}");
    assert_eq!(gate.through(CLAIMS_CLIENT), 200, "the refused PATCH changed nothing");
}

/// Consumers created, changed and deleted through the Admin API take effect on the
/// running proxy: the plugin maps the next request's token to the consumer as it now is.
#[test]
fn consumers_managed_by_the_admin_api_are_mapped_on_the_next_request() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("consumers");
    let gate = start_gate(&up, &dir, &[]);
    let mut plugin: serde_json::Value = serde_json::from_str(&docs_body(&idp.issuer)).expect("docs body is JSON");
    plugin["config"]["consumer_claim"] = json!(["client_id"]);
    plugin["config"]["anonymous"] = json!("guest");
    let (status, created) = gate.call("POST", "/plugins", Some(&plugin.to_string()));
    assert_eq!(status, 201, "{created}");
    let identity = |up: &Upstream| {
        let last = up.received().pop().expect("the request went upstream");
        (last.header_str("x-consumer-username"), last.header_str("x-anonymous-consumer"))
    };

    // No consumer yet, nor the anonymous one: a 403 the plugin cannot stand in for (500).
    assert_eq!(gate.through(POST_CLIENT), 500, "{}", gate.log());
    let (status, guest) = gate.call("POST", "/consumers", Some(r#"{"username":"guest"}"#));
    assert_eq!(status, 201, "{guest}");
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert_eq!(identity(&up), (Some("guest".into()), Some("true".into())), "proxied as the guest");

    let (status, consumer) = gate.call("POST", "/consumers", Some(&format!(r#"{{"username":"{}"}}"#, POST_CLIENT.0)));
    assert_eq!(status, 201, "{consumer}");
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert_eq!(identity(&up), (Some(POST_CLIENT.0.into()), None), "now itself");
    let last = up.received().pop().expect("sent");
    assert_eq!(last.header_str("x-consumer-id").as_deref(), consumer["id"].as_str(), "the Admin API's id");

    // A rename moves the mapping; a delete ends it.
    let path = format!("/consumers/{}", POST_CLIENT.0);
    let (status, renamed) = gate.call("PATCH", &path, Some(r#"{"username":"renamed","custom_id":"post-client"}"#));
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert_eq!(identity(&up), (Some("renamed".into()), None), "found by custom_id, consumer_by's first field");
    let (status, _) = gate.call("DELETE", "/consumers/renamed", None);
    assert_eq!(status, 204);
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert_eq!(identity(&up), (Some("guest".into()), Some("true".into())), "back to the guest");
}

/// What Kong's Konnect Terraform provider sends, against ringgate's Admin API: the
/// same entities under `/v2/control-planes/{id}/core-entities/`, with a bearer token.
#[test]
fn konnect_style_paths_with_a_bearer_token_configure_the_plugin_end_to_end() {
    const PLANE: &str = "3c9e7d1a-52b4-4f8e-9a61-0d2c4b6e8f10";
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("konnect");
    let file = dir.write("kong.yaml", "_format_version: \"3.0\"\n");
    let gate = Gate::start(
        &["--config", file.to_str().unwrap(), "--control-plane-id", PLANE],
        &[("RINGGATE_ADMIN_TOKEN", TOKEN)],
    );
    let bearer = format!("Bearer {TOKEN}");
    let call = |method: &str, path: &str, body: &str| {
        let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
        gate.call_with(method, &format!("/v2/control-planes/{PLANE}/core-entities{path}"), &headers, Some(body))
    };

    let (status, service) = call("POST", "/services", &format!(r#"{{"name":"svc","url":"http://{}"}}"#, up.addr()));
    assert_eq!(status, 201, "{service}");
    let sid = service["id"].as_str().unwrap();
    let (status, route) = call("POST", &format!("/services/{sid}/routes"), r#"{"name":"r","paths":["/"]}"#);
    assert_eq!(status, 201, "{route}");
    let mut plugin: Value = serde_json::from_str(&docs_body(&idp.issuer)).unwrap();
    plugin["route"] = json!({ "id": route["id"] });
    let (status, created) = call("POST", "/plugins", &plugin.to_string());
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["config"]["client_secret"], json!(["<redacted>"]));

    // The caller's credentials are exchanged at the IdP on that route.
    assert_eq!(gate.through(POST_CLIENT), 200, "{}", gate.log());
    let auth = last_authorization(&up);
    assert!(auth.starts_with("Bearer ") && auth.len() > 30, "upstream got {auth:?}");
    assert_eq!(gate.through((POST_CLIENT.0, "wrong")), 401);

    // Without the token, or for another control plane, nothing is answered or changed.
    let other = "/v2/control-planes/00000000-0000-4000-8000-000000000000/core-entities/plugins";
    let (status, body) = gate.call_with("GET", other, &[("Authorization", &bearer)], None);
    assert_eq!((status, body["message"].as_str()), (404, Some("Control plane not found")));
    let own = format!("/v2/control-planes/{PLANE}/core-entities/plugins/{}", created["id"].as_str().unwrap());
    assert_eq!(raw_http(gate.admin, "DELETE", &own, &[], "").0, 401);
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert!(last_authorization(&up).starts_with("Bearer "), "the plugin is still there");

    // Terraform's destroy: plugin, route, service.
    assert_eq!(call("DELETE", &format!("/plugins/{}", created["id"].as_str().unwrap()), "").0, 204);
    assert_eq!(call("DELETE", &format!("/routes/{}", route["id"].as_str().unwrap()), "").0, 204);
    assert_eq!(call("DELETE", &format!("/services/{sid}"), "").0, 204);
    let (status, listed) = call("GET", "/services", "");
    assert_eq!((status, listed["data"].as_array().map(Vec::len)), (200, Some(0)));
    assert!(!gate.log().contains(CONFIGURED_SECRET) && !gate.log().contains(TOKEN));
}

#[test]
fn endpoints_answer_in_kongs_shapes_over_http() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("shapes");
    let gate = start_gate(&up, &dir, &[]);

    let (status, root) = gate.call("GET", "/", None);
    assert_eq!(status, 200);
    assert!(root["node_id"].as_str().is_some_and(|id| id.len() == 36), "{root}");
    assert_eq!(root["configuration"]["admin_listen"], json!([gate.admin.to_string()]));
    assert_eq!(root["plugins"]["enabled_in_cluster"], json!([]));

    // A service by form fields, a route under it by name, both listed.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let url = format!("url=http%3A%2F%2F{}&name=second&retries=2&tags[]=a&tags[]=b", up.addr());
    let (status, svc) = gate.call_with("POST", "/services", &form, Some(&url));
    assert_eq!(status, 201, "{svc}");
    assert_eq!((svc["retries"].clone(), svc["tags"].clone()), (json!(2), json!(["a", "b"])));
    let (status, route) =
        gate.call("POST", "/services/second/routes", Some(r#"{"name":"r2","paths":["/two"],"strip_path":true}"#));
    assert_eq!(status, 201, "{route}");
    assert_eq!(route["service"]["id"], svc["id"]);
    let (_, listed) = gate.call("GET", "/routes", None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed["next"], Value::Null);
    let (_, nested) = gate.call("GET", "/services/second/routes", None);
    assert_eq!(nested["data"][0]["name"], "r2");

    // PATCH and PUT.
    let (status, patched) = gate.call("PATCH", "/routes/r2", Some(r#"{"paths":["/deux"]}"#));
    assert_eq!((status, patched["paths"].clone()), (200, json!(["/deux"])));
    let (status, put) = gate.call("PUT", "/services/third", Some(&format!(r#"{{"url":"http://{}"}}"#, up.addr())));
    assert_eq!((status, put["name"].clone()), (200, json!("third")));

    // Errors, each in Kong's shape, none changing what runs.
    let (status, body) = gate.call(
        "POST",
        "/plugins",
        Some(r#"{"name":"openid-connect","config":{"auth_methods":["client_credentials"]}}"#),
    );
    assert_eq!(status, 400);
    assert_eq!((body["code"].clone(), body["name"].clone()), (json!(2), json!("schema violation")));
    assert!(body["fields"]["config"]["issuer"].is_string(), "{body}");
    let (status, body) = gate.call("POST", "/services", Some(r#"{"name":"second","host":"x"}"#));
    assert_eq!((status, body["code"].clone(), body["fields"].clone()), (409, json!(5), json!({"name": "second"})));
    assert_eq!(gate.call("GET", "/services/none", None), (404, json!({"message": "Not found"})));
    assert_eq!(gate.call("GET", "/nothing/here", None), (404, json!({"message": "Not found"})));
    assert_eq!(gate.call("POST", "/routes", Some("{oops")), (400, json!({"message": "Cannot parse JSON body"})));
    let (status, body) = gate.call("DELETE", "/services/second", None);
    assert_eq!((status, body["code"].clone()), (400, json!(4)));
    assert_eq!(gate.through(POST_CLIENT), 200, "refused changes left the proxy as it was");

    // A whole document by POST /config, as YAML.
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: r\n    paths: [/]\n    strip_path: false\n  plugins:\n  - name: openid-connect\n    config:\n      issuer: {}\n      auth_methods: [client_credentials]\n      client_credentials_param_type: [header]\n      client_auth: [client_secret_post]\n",
        up.addr(),
        idp.issuer
    );
    let (status, body) = gate.call_with("POST", "/config", &[("Content-Type", "text/yaml")], Some(&yaml));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["services"].as_array().unwrap().len(), 1, "everything else is gone");
    assert_eq!(gate.call("GET", "/routes/r2", None).0, 404);
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert!(last_authorization(&up).starts_with("Bearer "));

    // Status and metrics.
    let (status, st) = gate.call("GET", "/status", None);
    assert_eq!(status, 200);
    assert_eq!(st["database"]["reachable"], true);
    assert_eq!(st["ringgate"]["workers"], 2);
    assert_eq!(st["ringgate"]["plugins"][0]["discovery"]["ready"], true, "{st}");
    assert!(st["server"]["connections_accepted"].as_u64().is_some_and(|n| n >= 1), "{st}");
    assert!(st["server"]["total_requests"].as_u64().is_some_and(|n| n >= 1), "{st}");
    let (status, metrics) = raw_http(gate.admin, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let served = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringgate_http_requests_total{route=\"r\",service=\"svc\",code=\"200\"} "));
    assert!(served.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n >= 1), "{metrics}");
    assert!(metrics.contains("ringgate_idp_requests_total{endpoint=\"token\",outcome=\"ok\"} 1"), "{metrics}");
}

#[test]
fn post_config_takes_a_deck_file_from_curl_form_upload() {
    let up = Upstream::start();
    let dir = TempDir::new("upload");
    let gate = start_gate(&up, &dir, &[]);
    assert_eq!(gate.through(POST_CLIENT), 200);
    let file = dir.path("next.yaml");
    let next = format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{}\n  routes:\n  - name: only\n    paths: [/only]\n",
        up.addr()
    );
    std::fs::write(&file, next).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("http://127.0.0.1:{}/config", gate.admin.port()))
        .arg("-F")
        .arg(format!("config=@{}", file.display()))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(gate.through(POST_CLIENT), 404, "GET /x no longer has a route");
    assert_eq!(gate.call("GET", "/routes/only", None).0, 200);
}

#[test]
fn a_201_survives_kill_9_and_resume() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("resume");
    let mut gate = start_gate(&up, &dir, &[]);
    let (status, plugin) = curl_docs_request(gate.admin, "/routes/r/plugins/", &docs_body(&idp.issuer));
    assert_eq!(status, 201, "{plugin}");
    gate.child.kill().unwrap(); // SIGKILL: no chance to flush anything
    gate.child.wait().unwrap();

    // The saved state is a decK file the loader itself accepts.
    let state = dir.path("data/state.json");
    let check = Command::new(bin()).args(["check", "--config"]).arg(&state).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains(plugin["id"].as_str().unwrap()));

    // --config names the file without the plugin: --resume must start from the state.
    let resumed = start_gate(&up, &dir, &["--resume"]);
    assert!(resumed.log().contains("resumed from the saved state"), "{}", resumed.log());
    let (status, again) = resumed.call("GET", &format!("/plugins/{}", plugin["id"].as_str().unwrap()), None);
    assert_eq!(status, 200);
    assert_eq!(again["created_at"], plugin["created_at"]);
    assert_eq!(again["route"], plugin["route"]);
    assert_eq!(resumed.through(POST_CLIENT), 200, "{}", resumed.log());
    assert!(last_authorization(&up).starts_with("Bearer "), "the plugin runs after the restart");
}

#[test]
fn resume_without_a_data_dir_or_anything_to_start_from_is_refused() {
    let out = Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--resume"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume needs --data-dir"));
    let dir = TempDir::new("nothing");
    let data = dir.path("data");
    let out = Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--resume", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to start from"));
}

#[test]
fn a_non_loopback_admin_listener_needs_a_token() {
    let up = Upstream::start();
    let dir = TempDir::new("exposed");
    let file = dir.write("kong.yaml", &deck(up.addr()));
    let out = Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--config"])
        .arg(&file)
        .env_remove("RINGGATE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--admin-token"), "{err}");

    let gate = Gate::start(
        &["--config", file.to_str().unwrap(), "--admin-listen", "0.0.0.0:0"],
        &[("RINGGATE_ADMIN_TOKEN", TOKEN)],
    );
    let local: SocketAddr = format!("127.0.0.1:{}", gate.admin.port()).parse().unwrap();
    assert_eq!(raw_http(local, "GET", "/", &[("Kong-Admin-Token", TOKEN)], "").0, 200);
}

#[test]
fn with_a_token_every_request_needs_it() {
    let up = Upstream::start();
    let dir = TempDir::new("token");
    let file = dir.write("kong.yaml", &deck(up.addr()));
    let gate = Gate::start(
        &["--config", file.to_str().unwrap(), "--admin-listen", "127.0.0.1:0"],
        &[("RINGGATE_ADMIN_TOKEN", TOKEN)],
    );
    for path in ["/", "/services", "/status", "/metrics", "/plugins/"] {
        let (status, body) = raw_http(gate.admin, "GET", path, &[], "");
        assert_eq!(status, 401, "{path}");
        assert!(!body.contains(TOKEN));
        assert_eq!(raw_http(gate.admin, "GET", path, &[("Kong-Admin-Token", "nope")], "").0, 401, "{path}");
        assert_eq!(raw_http(gate.admin, "GET", path, &[("Authorization", "Bearer nope")], "").0, 401, "{path}");
        assert_eq!(raw_http(gate.admin, "GET", path, &[("Kong-Admin-Token", TOKEN)], "").0, 200, "{path}");
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(raw_http(gate.admin, "GET", path, &[("Authorization", &bearer)], "").0, 200, "{path}");
    }
    let body = r#"{"name":"x","host":"127.0.0.1"}"#;
    let (status, _) = raw_http(gate.admin, "POST", "/services", &[("Content-Type", "application/json")], body);
    assert_eq!(status, 401);
    assert_eq!(raw_http(gate.admin, "GET", "/services/x", &[("Kong-Admin-Token", TOKEN)], "").0, 404, "not created");
    assert!(!gate.log().contains(TOKEN), "the token in the log:\n{}", gate.log());
    let ps = Command::new("ps").args(["-o", "args=", "-p", &gate.child.id().to_string()]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains(TOKEN), "the token from the environment is not an argument");
}

#[test]
fn get_responses_and_logs_never_show_a_secret() {
    let idp = TestIdp::start(0);
    let up = Upstream::start();
    let dir = TempDir::new("redact");
    let gate = start_gate(&up, &dir, &[]);
    let mut body: Value = serde_json::from_str(&docs_body(&idp.issuer)).unwrap();
    body["config"]["cache_tokens_salt"] = json!(CONFIGURED_SECRET);
    body["instance_name"] = json!("guard");
    let (status, created) = gate.call("POST", "/services/svc/plugins", Some(&body.to_string()));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, _) = gate.call_with(
        "PATCH",
        &format!("/plugins/{id}"),
        &form,
        Some(&format!("config.client_secret={CONFIGURED_SECRET}-2&config.timeout=3000")),
    );
    assert_eq!(status, 200);
    let mut shown = vec![created.to_string()];
    for path in
        ["/plugins", &format!("/plugins/{id}"), "/plugins/guard", "/services/svc/plugins", "/", "/status", "/services"]
    {
        let (status, text) = raw_http(gate.admin, "GET", path, &[], "");
        assert_eq!(status, 200, "{path}");
        shown.push(text);
    }
    for text in &shown {
        assert!(!text.contains(CONFIGURED_SECRET), "a secret in a response: {text}");
    }
    assert!(shown[1].contains("<redacted>"));
    assert_eq!(gate.through(POST_CLIENT), 200);
    assert!(!gate.log().contains(CONFIGURED_SECRET), "a secret in the log");
    // The state file holds it (it must, to resume), readable by its owner only.
    let state = dir.path("data/state.json");
    assert!(std::fs::read_to_string(&state).unwrap().contains(&format!("{CONFIGURED_SECRET}-2")));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o600);
}

// ----- certificates and CA certificates -----

const CA_ID: &str = "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";
const CLIENT_ID: &str = "7b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";
const EDGE_ID: &str = "8b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";

/// `pem` as a YAML block scalar's lines, indented by `indent`.
fn block(pem: &str, indent: usize) -> String {
    pem.lines().map(|l| format!("{}{l}\n", " ".repeat(indent))).collect()
}

/// The base64 body of a PEM key: what must never be in a response or the log.
fn key_material(key: &str) -> String {
    key.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n")
}

/// The fixtures of one TLS test: a CA the upstream's certificate comes from, a client
/// certificate the upstream requires, and a served certificate.
struct TlsKit {
    ca: TestCa,
    client: Issued,
    edge: Issued,
    /// Requires a client certificate from the test's client CA; its own certificate is
    /// for 127.0.0.1 from `ca`.
    strict: TlsFront,
    /// An expired certificate for another name, from a CA nobody trusts.
    sloppy: TlsFront,
}

impl TlsKit {
    fn new(up: &Upstream) -> TlsKit {
        let ca = TestCa::new("upstream CA");
        let clients = TestCa::new("client CA");
        let nobody = TestCa::new("untrusted CA");
        let strict = TlsFront::start(up.addr(), server_config(&ca.issue(&["127.0.0.1"]), Some(&clients)));
        let sloppy = TlsFront::start(up.addr(), server_config(&nobody.issue_expired(&["elsewhere.test"]), None));
        let client = clients.issue(&["ringgate.test"]);
        let edge = ca.issue(&["edge.example"]);
        TlsKit { ca, client, edge, strict, sloppy }
    }

    /// A decK file: the CA certificate, the client and edge certificates, service
    /// `secure` (trusting the CA, presenting the client certificate) on `/secure`, and
    /// service `lax` (`tls_verify: false`) on `/lax`.
    fn deck(&self) -> String {
        format!(
            "_format_version: \"3.0\"\nca_certificates:\n- id: {CA_ID}\n  cert: |\n{ca}certificates:\n\
             - id: {CLIENT_ID}\n  cert: |\n{client_cert}  key: |\n{client_key}\
             - id: {EDGE_ID}\n  cert: |\n{edge_cert}  key: |\n{edge_key}  snis:\n  - name: edge.example\n\
             services:\n- name: secure\n  url: https://{strict}\n  retries: 0\n  ca_certificates: [{CA_ID}]\n  \
             client_certificate: {{id: {CLIENT_ID}}}\n  routes:\n  - name: secure\n    paths: [/secure]\n    \
             strip_path: false\n- name: lax\n  url: https://{sloppy}\n  retries: 0\n  tls_verify: false\n  \
             routes:\n  - name: lax\n    paths: [/lax]\n    strip_path: false\n",
            ca = block(&self.ca.pem, 4),
            client_cert = block(&self.client.cert, 4),
            client_key = block(&self.client.key, 4),
            edge_cert = block(&self.edge.cert, 4),
            edge_key = block(&self.edge.key, 4),
            strict = self.strict.addr,
            sloppy = self.sloppy.addr,
        )
    }

    fn keys(&self) -> [String; 2] {
        [key_material(&self.client.key), key_material(&self.edge.key)]
    }
}

fn start_tls_gate(kit: &TlsKit, dir: &TempDir, extra: &[&str]) -> Gate {
    start_with(&kit.deck(), dir, extra)
}

#[test]
fn a_deck_file_with_tls_entities_runs_through_the_binary_and_shows_in_the_admin_api() {
    let up = Upstream::start();
    let kit = TlsKit::new(&up);
    let dir = TempDir::new("tls-deck");
    let gate = start_tls_gate(&kit, &dir, &[]);

    // The store no longer drops the TLS settings: both upstreams are reached.
    assert_eq!(gate.get("/secure/1"), 200, "verified, with a client certificate:\n{}", gate.log());
    assert_eq!(gate.get("/lax/1"), 200, "tls_verify: false:\n{}", gate.log());
    let targets: Vec<String> = up.received().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/secure/1", "/lax/1"]);
    assert_eq!(kit.strict.handshakes(), 1);

    let (status, secure) = gate.call("GET", "/services/secure", None);
    assert_eq!(status, 200);
    assert_eq!(secure["protocol"], "https");
    assert_eq!(secure["tls_verify"], true);
    assert_eq!(secure["ca_certificates"], json!([CA_ID]));
    assert_eq!(secure["client_certificate"], json!({ "id": CLIENT_ID }));
    let (_, lax) = gate.call("GET", "/services/lax", None);
    assert_eq!(lax["tls_verify"], false);
    assert_eq!(lax["ca_certificates"], Value::Null);

    let (status, certs) = gate.call("GET", "/certificates", None);
    assert_eq!(status, 200);
    let data = certs["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{certs}");
    assert_eq!(data[0]["id"], CLIENT_ID);
    assert_eq!(data[0]["cert"], json!(kit.client.cert));
    assert_eq!(data[0]["snis"], json!([]));
    assert_eq!(data[1]["snis"], json!(["edge.example"]));
    assert!(data.iter().all(|c| c["key"] == "<redacted>"), "{certs}");
    let (status, edge) = gate.call("GET", "/certificates/edge.example", None);
    assert_eq!((status, edge["id"].clone()), (200, json!(EDGE_ID)));
    let (status, cas) = gate.call("GET", "/ca_certificates", None);
    assert_eq!(status, 200);
    assert_eq!(cas["data"][0]["id"], CA_ID);
    assert_eq!(cas["data"][0]["cert_digest"].as_str().map(str::len), Some(64));

    // In use: neither can be deleted.
    let (status, body) = gate.call("DELETE", &format!("/certificates/{CLIENT_ID}"), None);
    assert_eq!((status, body["code"].clone()), (400, json!(4)), "{body}");
    let (status, body) = gate.call("DELETE", &format!("/ca_certificates/{CA_ID}"), None);
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("is still referenced by services"), "{body}");
    assert_eq!(gate.get("/secure/2"), 200, "refused deletes changed nothing");

    let shown = [certs.to_string(), edge.to_string(), raw_http(gate.admin, "GET", "/", &[], "").1];
    for key in kit.keys() {
        assert!(shown.iter().all(|t| !t.contains(&key)), "a private key in a response");
        assert!(!gate.log().contains(&key), "a private key in the log");
    }
}

#[test]
fn certificates_by_the_admin_api_over_http_are_redacted_and_checked() {
    let up = Upstream::start();
    let dir = TempDir::new("tls-api");
    let gate = start_gate(&up, &dir, &[]);
    let ca = TestCa::new("api CA");
    let issued = ca.issue(&["api.example"]);
    let other = ca.issue(&["other.example"]);
    let key = key_material(&issued.key);

    let body = json!({ "cert": issued.cert, "key": issued.key, "snis": ["api.example"] }).to_string();
    let (status, created) = gate.call("POST", "/certificates", Some(&body));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["key"], "<redacted>");
    assert_eq!(created["cert"], json!(issued.cert));
    let id = created["id"].as_str().unwrap().to_string();
    let (status, got) = gate.call("GET", &format!("/certificates/{id}"), None);
    assert_eq!((status, &got), (200, &created));

    // PATCH sending the redacted key back keeps the stored one.
    let (status, patched) =
        gate.call("PATCH", "/certificates/api.example", Some(r#"{"key":"<redacted>","snis":["api2.example"]}"#));
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["snis"], json!(["api2.example"]));
    let state = std::fs::read_to_string(dir.path("data/state.json")).unwrap();
    assert!(state.contains(&key.lines().next().unwrap().to_string()), "the stored key is unchanged");

    // A bad PEM and a key of another certificate: Kong's schema violation, nothing changed.
    let bad =
        json!({ "cert": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "key": issued.key });
    let (status, body) = gate.call("POST", "/certificates", Some(&bad.to_string()));
    assert_eq!(status, 400, "{body}");
    assert_eq!((body["code"].clone(), body["name"].clone()), (json!(2), json!("schema violation")));
    assert!(body["fields"]["cert"].is_string(), "{body}");
    let mismatch = json!({ "cert": issued.cert, "key": other.key });
    let (status, body) = gate.call("PATCH", &format!("/certificates/{id}"), Some(&mismatch.to_string()));
    assert_eq!((status, body["code"].clone()), (400, json!(2)), "{body}");
    assert!(body["fields"]["@entity"].as_str().unwrap().contains("does not belong"), "{body}");
    let (_, listed) = gate.call("GET", "/certificates", None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    let (status, _) = gate.call("DELETE", &format!("/certificates/{id}"), None);
    assert_eq!(status, 204);
    assert_eq!(gate.call("GET", &format!("/certificates/{id}"), None).0, 404);
    assert_eq!(gate.call("GET", "/certificates/api2.example", None), (404, json!({ "message": "SNI not found" })));
    assert!(!gate.log().contains(&key) && !gate.log().contains(&key_material(&other.key)), "a key in the log");
}

#[test]
fn certificates_survive_kill_9_and_resume_and_still_reach_the_https_upstream() {
    let up = Upstream::start();
    let kit = TlsKit::new(&up);
    let dir = TempDir::new("tls-resume");
    // Start from a plain decK file; everything TLS comes over the Admin API.
    let mut gate = start_gate(&up, &dir, &[]);
    let ca_body = json!({ "cert": kit.ca.pem, "tags": ["upstream"] }).to_string();
    let (status, ca) = gate.call("POST", "/ca_certificates", Some(&ca_body));
    assert_eq!(status, 201, "{ca}");
    let client_body = json!({ "cert": kit.client.cert, "key": kit.client.key }).to_string();
    let (status, client) = gate.call("POST", "/certificates", Some(&client_body));
    assert_eq!(status, 201, "{client}");
    let service = json!({
        "name": "secure",
        "url": format!("https://{}", kit.strict.addr),
        "retries": 0,
        "ca_certificates": [ca["id"]],
        "client_certificate": { "id": client["id"] },
    });
    assert_eq!(gate.call("POST", "/services", Some(&service.to_string())).0, 201);
    let route = r#"{"name":"tls","paths":["/tls"],"strip_path":false}"#;
    assert_eq!(gate.call("POST", "/services/secure/routes", Some(route)).0, 201);
    assert_eq!(gate.get("/tls/before"), 200, "{}", gate.log());
    gate.child.kill().unwrap(); // SIGKILL
    gate.child.wait().unwrap();

    let state = dir.path("data/state.json");
    let check = Command::new(bin()).args(["check", "--config"]).arg(&state).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let resumed = start_gate(&up, &dir, &["--resume"]);
    let (status, again) = resumed.call("GET", &format!("/certificates/{}", client["id"].as_str().unwrap()), None);
    assert_eq!((status, &again), (200, &client), "same id, timestamps and fields; key still redacted");
    let (status, ca_again) = resumed.call("GET", &format!("/ca_certificates/{}", ca["id"].as_str().unwrap()), None);
    assert_eq!((status, &ca_again), (200, &ca));
    let (_, svc) = resumed.call("GET", "/services/secure", None);
    assert_eq!(svc["ca_certificates"], json!([ca["id"]]));
    assert_eq!(svc["client_certificate"], json!({ "id": client["id"] }));
    assert_eq!(resumed.get("/tls/after"), 200, "{}", resumed.log());
    let targets: Vec<String> = up.received().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/tls/before", "/tls/after"]);
    assert!(!resumed.log().contains(&key_material(&kit.client.key)), "a key in the log");
}

#[test]
fn admin_connections_are_capped_and_a_waiting_one_is_served_when_a_slot_frees() {
    use std::io::{Read, Write};
    let up = Upstream::start();
    let dir = TempDir::new("admin-cap");
    let g = start_gate(&up, &dir, &[]);
    // ringgate::admin::MAX_CONNECTIONS idle connections that send nothing (each would
    // be closed by the 10 s header timeout).
    let idle: Vec<std::net::TcpStream> = (0..64).map(|_| std::net::TcpStream::connect(g.admin).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = std::net::TcpStream::connect(g.admin).unwrap();
    waiting.write_all(b"GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut buf = [0u8; 64];
    assert!(waiting.read(&mut buf).is_err(), "the 65th connection is not served while 64 are open");
    drop(idle);
    waiting.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = waiting.read(&mut buf).expect("served once a slot is free");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
}
