//! The Admin API without sockets: each endpoint, each error shape, redaction, and that
//! a change reaches the running snapshot (or, refused, leaves it alone).

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{json, Value};

use super::*;
use crate::admin::persist::DataDir;
use crate::admin::{Hooks, NodeInfo};
use crate::config::Config;
use crate::snapshot::{Resolved, Snapshot};
use crate::testing::Rng;

const SECRET: &str = "do-not-show-this-secret-7f3a";

fn admin() -> Admin {
    admin_with(None)
}

fn admin_with(data: Option<DataDir>) -> Admin {
    let empty = Snapshot::build(Config::default(), &mut Resolved::new()).unwrap();
    let node = NodeInfo {
        node_id: "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c".into(),
        hostname: "test-host".into(),
        workers: 2,
        configuration: json!({ "database": "off" }),
    };
    Admin::new(Arc::new(ArcSwap::from_pointee(empty)), None, data, node, Arc::new(Hooks::default()))
}

fn call(a: &mut Admin, method: &str, path: &str, body: &str) -> Response {
    let req = Request { method, path, content_type: Some("application/json"), body: body.as_bytes() };
    handle(a, &req)
}

fn form_call(a: &mut Admin, method: &str, path: &str, body: &str) -> Response {
    let req = Request { method, path, content_type: Some("application/x-www-form-urlencoded"), body: body.as_bytes() };
    handle(a, &req)
}

fn ok(r: Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    r.value()
}

fn plugin_body(issuer: &str) -> String {
    json!({
        "name": "openid-connect",
        "config": {
            "issuer": issuer,
            "client_id": ["abc"],
            "client_secret": [SECRET],
            "client_auth": ["client_secret_post"],
            "auth_methods": ["client_credentials"],
            "client_credentials_param_type": ["header"],
        },
        "tags": [],
    })
    .to_string()
}

/// A service `svc` on 127.0.0.1:9 with a route `r` on `/`.
fn with_service(a: &mut Admin) -> (String, String) {
    let s = ok(call(a, "POST", "/services", r#"{"name":"svc","url":"http://127.0.0.1:9/base"}"#), 201);
    let r = ok(call(a, "POST", "/services/svc/routes/", r#"{"name":"r","paths":["/"]}"#), 201);
    (s["id"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string())
}

#[test]
fn service_create_fills_kong_defaults_and_reads_back_by_id_and_name() {
    let mut a = admin();
    let s = ok(call(&mut a, "POST", "/services", r#"{"name":"svc","url":"http://127.0.0.1:9/base"}"#), 201);
    let id = s["id"].as_str().unwrap();
    assert!(is_uuid(id), "{id}");
    assert_eq!(s["protocol"], "http");
    assert_eq!(s["host"], "127.0.0.1");
    assert_eq!(s["port"], 9);
    assert_eq!(s["path"], "/base");
    assert_eq!(s["retries"], 5);
    assert_eq!(s["read_timeout"], 60000);
    assert_eq!(s["enabled"], true);
    assert!(s["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(s["created_at"], s["updated_at"]);
    assert!(s.get("url").is_none());
    assert_eq!(ok(call(&mut a, "GET", &format!("/services/{id}"), ""), 200), s);
    assert_eq!(ok(call(&mut a, "GET", "/services/svc", ""), 200), s);
    assert_eq!(ok(call(&mut a, "GET", "/services", ""), 200), json!({ "data": [s], "next": null }));
    assert_eq!(a.shared.load().config.services.len(), 1, "the change is running");
}

#[test]
fn routes_under_a_service_refer_to_it_and_take_effect() {
    let mut a = admin();
    let (sid, rid) = with_service(&mut a);
    let r = ok(call(&mut a, "GET", &format!("/routes/{rid}"), ""), 200);
    assert_eq!(r["service"], json!({ "id": sid }));
    assert_eq!(r["strip_path"], true);
    assert_eq!(r["protocols"], json!(["http", "https"]));
    assert_eq!(r["methods"], Value::Null);
    let listed = ok(call(&mut a, "GET", "/services/svc/routes", ""), 200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let snap = a.shared.load();
    assert_eq!(snap.config.routes[0].service, Some(0));
    assert_eq!(snap.config.routes[0].id.as_deref(), Some(rid.as_str()));
}

#[test]
fn plugin_from_kong_docs_json_is_created_on_each_scope_with_secrets_redacted() {
    let mut a = admin();
    let (sid, rid) = with_service(&mut a);
    for path in ["/plugins/", "/services/svc/plugins/", &format!("/routes/{rid}/plugins/"), "/routes/r/plugins"] {
        let p = call(&mut a, "POST", path, &plugin_body("http://127.0.0.1:9/"));
        if path == "/routes/r/plugins" {
            // The same plugin on the same route twice.
            assert_eq!(p.status, 409, "{path}");
            continue;
        }
        let p = ok(p, 201);
        assert_eq!(p["config"]["client_secret"], json!([REDACTED]), "{path}");
        assert_eq!(p["config"]["cache_tokens_salt"], Value::Null, "unset secrets stay null");
        assert_eq!(p["config"]["timeout"], 10000, "defaults are filled");
        assert_eq!(p["config"]["ssl_verify"], true, "ringgate's default");
        assert_eq!(p["config"]["auth_methods"], json!(["client_credentials"]));
        assert_eq!(p["enabled"], true);
        assert_eq!(p["protocols"], json!(["grpc", "grpcs", "http", "https"]));
        assert_eq!(p["consumer"], Value::Null);
    }
    let plugins = ok(call(&mut a, "GET", "/plugins", ""), 200);
    let data = plugins["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["service"], Value::Null);
    assert_eq!(data[1]["service"], json!({ "id": sid }));
    assert_eq!(data[2]["route"], json!({ "id": rid }));
    assert_eq!(ok(call(&mut a, "GET", "/services/svc/plugins", ""), 200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(ok(call(&mut a, "GET", "/routes/r/plugins", ""), 200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(a.shared.load().instances().len(), 3);
    assert_eq!(a.store.plugins[0].fields["config"]["client_secret"], json!([SECRET]), "stored whole");
}

#[test]
fn plugin_from_kong_docs_form_fields_is_created() {
    let mut a = admin();
    with_service(&mut a);
    let body = format!(
        "name=openid-connect&config.issuer=http%3A%2F%2F127.0.0.1%3A9%2F&config.auth_methods=client_credentials\
         &config.client_id=abc&config.client_secret={SECRET}&config.client_credentials_param_type=header&config.timeout=5000"
    );
    let p = ok(form_call(&mut a, "POST", "/services/svc/plugins", &body), 201);
    assert_eq!(p["config"]["auth_methods"], json!(["client_credentials"]));
    assert_eq!(p["config"]["client_id"], json!(["abc"]));
    assert_eq!(p["config"]["timeout"], 5000);
    assert!(!String::from_utf8_lossy(&form_call(&mut a, "GET", "/plugins", "").body).contains(SECRET));
}

#[test]
fn missing_issuer_is_a_schema_violation_nested_under_config_and_changes_nothing() {
    let mut a = admin();
    with_service(&mut a);
    let before = a.shared.load_full();
    let store = a.store.clone();
    let r = call(&mut a, "POST", "/plugins", r#"{"name":"openid-connect","config":{"auth_methods":["bearer"]}}"#);
    let v = ok(r, 400);
    assert_eq!(v["code"], 2);
    assert_eq!(v["name"], "schema violation");
    assert!(v["fields"]["config"]["issuer"].as_str().unwrap().contains("'issuer' is required"), "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("schema violation (config.issuer: "), "{v}");
    assert!(Arc::ptr_eq(&before, &a.shared.load_full()), "the running snapshot is untouched");
    assert_eq!(a.store, store);
}

#[test]
fn wrong_types_and_unknown_fields_are_placed_in_fields() {
    let mut a = admin();
    let v = ok(call(&mut a, "POST", "/services", r#"{"name":"s","host":"a","port":"eighty","colour":"blue"}"#), 400);
    assert_eq!(v["code"], 2);
    assert!(v["fields"]["port"].as_str().unwrap().contains("'port' must be an integer"), "{v}");
    assert!(v["fields"]["colour"].as_str().unwrap().contains("unknown key 'colour'"), "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("2 schema violations ("), "{v}");
    let v = ok(call(&mut a, "POST", "/services", r#"{"name":"s"}"#), 400);
    assert!(v["fields"]["host"].is_string(), "{v}");
    let v = ok(call(&mut a, "POST", "/routes", r#"{"name":"r"}"#), 400);
    assert!(v["fields"]["@entity"].as_str().unwrap().contains("at least one of"), "{v}");
    let v = ok(call(&mut a, "POST", "/services", r#"{"id":"nope","host":"a"}"#), 400);
    assert_eq!(v["fields"]["id"], "expected a valid UUID");
    let v = ok(
        call(
            &mut a,
            "POST",
            "/plugins",
            r#"{"name":"openid-connect","config":{"issuer":"http://i/","auth_methods":["bearer"],"client_auth":["private_key_jwt", 5]}}"#,
        ),
        400,
    );
    assert!(v["fields"]["config"]["client_auth"].is_array(), "list errors nest by index: {v}");
    assert!(a.store.services.is_empty() && a.store.plugins.is_empty());
}

#[test]
fn not_found_bad_json_and_methods_answer_like_kong() {
    let mut a = admin();
    let nf = json!({ "message": "Not found" });
    assert_eq!(ok(call(&mut a, "GET", "/services/nope", ""), 404), nf);
    assert_eq!(ok(call(&mut a, "GET", "/plugins/6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c", ""), 404), nf);
    assert_eq!(ok(call(&mut a, "PATCH", "/routes/nope", "{}"), 404), nf);
    assert_eq!(ok(call(&mut a, "GET", "/services/nope/routes", ""), 404), nf);
    assert_eq!(ok(call(&mut a, "POST", "/routes/nope/plugins", "{}"), 404), nf);
    assert_eq!(ok(call(&mut a, "GET", "/snis", ""), 404), nf);
    assert_eq!(ok(call(&mut a, "GET", "/services/a/b/c", ""), 404), nf);
    assert_eq!(
        ok(call(&mut a, "POST", "/services", "{\"name\":"), 400),
        json!({ "message": "Cannot parse JSON body" })
    );
    assert_eq!(ok(call(&mut a, "POST", "/services", "[1]"), 400)["code"], 2);
    assert_eq!(call(&mut a, "DELETE", "/services", "").status, 405);
    assert_eq!(call(&mut a, "DELETE", "/services/nope", "").status, 204, "Kong's DELETE is idempotent");
    let req = Request { method: "POST", path: "/services", content_type: Some("multipart/form-data; b=x"), body: b"x" };
    assert!(handle(&mut a, &req).value()["message"].as_str().unwrap().contains("no boundary"));
    let v = ok(form_call(&mut a, "POST", "/services", "a=1&a.b=2"), 400);
    assert!(v["message"].as_str().unwrap().contains("conflicts"), "{v}");
}

#[test]
fn taken_names_scopes_and_ids_conflict() {
    let mut a = admin();
    let (sid, _) = with_service(&mut a);
    let v = ok(call(&mut a, "POST", "/services", r#"{"name":"svc","host":"b"}"#), 409);
    assert_eq!(v["code"], 5);
    assert_eq!(v["name"], "unique constraint violation");
    assert_eq!(v["fields"], json!({ "name": "svc" }));
    assert_eq!(v["message"], "UNIQUE violation detected on '{name=\"svc\"}'");
    ok(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")), 201);
    let v = ok(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")), 409);
    assert_eq!(v["fields"], json!({ "consumer": null, "name": "openid-connect", "route": null, "service": null }));
    let v = ok(call(&mut a, "POST", "/services", &format!(r#"{{"id":"{sid}","host":"b"}}"#)), 400);
    assert_eq!(v["code"], 3);
    let v = ok(call(&mut a, "PATCH", "/routes/r", r#"{"name":"r"}"#), 200);
    assert_eq!(v["name"], "r", "an entity does not conflict with itself");
}

#[test]
fn references_to_missing_entities_are_foreign_key_violations() {
    let mut a = admin();
    let missing = "00000000-0000-4000-8000-000000000001";
    let v = ok(call(&mut a, "POST", "/routes", &format!(r#"{{"paths":["/"],"service":{{"id":"{missing}"}}}}"#)), 400);
    assert_eq!(v["code"], 4);
    assert_eq!(v["name"], "foreign key violation");
    assert_eq!(v["fields"], json!({ "service": { "id": missing } }));
    with_service(&mut a);
    let v = ok(call(&mut a, "POST", "/routes", r#"{"paths":["/x"],"service":{"name":"svc"}}"#), 201);
    assert_eq!(v["service"]["id"], json!(a.store.services[0].id), "a name reference is stored by id");
}

#[test]
fn patch_merges_plugin_config_and_keeps_redacted_secrets() {
    let mut a = admin();
    with_service(&mut a);
    let p = ok(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")), 201);
    let id = p["id"].as_str().unwrap().to_string();
    let before = a.shared.load().instances();
    let v = ok(call(&mut a, "PATCH", &format!("/plugins/{id}"), r#"{"config":{"timeout":2000}}"#), 200);
    assert_eq!(v["config"]["timeout"], 2000);
    assert_eq!(v["config"]["issuer"], "http://127.0.0.1:9/", "other keys stay");
    assert_eq!(a.store.plugins[0].fields["config"]["client_secret"], json!([SECRET]));
    assert!(!Arc::ptr_eq(&before[0], &a.shared.load().instances()[0]), "a changed config gets a new instance");

    // GET, then PUT the whole thing back: the redacted secret is kept, not overwritten.
    let shown = ok(call(&mut a, "GET", &format!("/plugins/{id}"), ""), 200);
    let v = ok(call(&mut a, "PUT", &format!("/plugins/{id}"), &shown.to_string()), 200);
    assert_eq!(v["created_at"], p["created_at"]);
    assert_eq!(a.store.plugins[0].fields["config"]["client_secret"], json!([SECRET]));

    // Editing another entity keeps this plugin's running instance (and its caches).
    let running = a.shared.load().instances();
    ok(call(&mut a, "PATCH", "/routes/r", r#"{"paths":["/y"]}"#), 200);
    assert!(Arc::ptr_eq(&running[0], &a.shared.load().instances()[0]));

    // A new secret replaces the old.
    ok(call(&mut a, "PATCH", &format!("/plugins/{id}"), r#"{"config":{"client_secret":["new"]}}"#), 200);
    assert_eq!(a.store.plugins[0].fields["config"]["client_secret"], json!(["new"]));

    // A second client beside the shown placeholder: the stored secret stays in its
    // place, the new one is added, and no placeholder is stored.
    let patch = json!({ "config": { "client_id": ["a", "b"], "client_secret": [REDACTED, "second"] } });
    ok(call(&mut a, "PATCH", &format!("/plugins/{id}"), &patch.to_string()), 200);
    assert_eq!(a.store.plugins[0].fields["config"]["client_secret"], json!(["new", "second"]));
}

#[test]
fn secrets_inside_plugin_records_survive_a_get_put_round_trip() {
    let mut a = admin();
    with_service(&mut a);
    let mut body: Value = serde_json::from_str(&plugin_body("http://127.0.0.1:9/")).unwrap();
    body["config"]["redis"] = json!({ "host": "r", "password": SECRET, "sentinel_nodes": [{ "secret": SECRET }] });
    let p = ok(call(&mut a, "POST", "/plugins", &body.to_string()), 201);
    assert_eq!(p["config"]["redis"]["password"], REDACTED);
    assert_eq!(p["config"]["redis"]["sentinel_nodes"][0]["secret"], REDACTED);
    let id = p["id"].as_str().unwrap().to_string();
    let stored = a.store.plugins[0].fields["config"]["redis"].clone();

    let shown = ok(call(&mut a, "GET", &format!("/plugins/{id}"), ""), 200);
    ok(call(&mut a, "PUT", &format!("/plugins/{id}"), &shown.to_string()), 200);
    assert_eq!(a.store.plugins[0].fields["config"]["redis"], stored, "no secret became the placeholder");
    let patch = json!({ "config": { "redis": { "password": REDACTED, "host": "r2" } } });
    ok(call(&mut a, "PATCH", &format!("/plugins/{id}"), &patch.to_string()), 200);
    assert_eq!(a.store.plugins[0].fields["config"]["redis"]["password"], json!(SECRET));
    assert_eq!(a.store.plugins[0].fields["config"]["redis"]["host"], json!("r2"));
}

#[test]
fn patch_url_replaces_the_service_address_and_put_replaces_or_creates() {
    let mut a = admin();
    with_service(&mut a);
    let v = ok(call(&mut a, "PATCH", "/services/svc", r#"{"url":"https://10.0.0.1"}"#), 200);
    assert_eq!(
        (v["protocol"].clone(), v["host"].clone(), v["port"].clone()),
        (json!("https"), json!("10.0.0.1"), json!(443))
    );
    assert_eq!(v["path"], Value::Null);
    let v = ok(call(&mut a, "PUT", "/services/svc", r#"{"host":"10.0.0.2","retries":1}"#), 200);
    assert_eq!(v["name"], "svc");
    assert_eq!(v["protocol"], "http", "PUT resets what it does not give");
    assert_eq!(v["retries"], 1);
    let v = ok(call(&mut a, "PUT", "/services/other", r#"{"host":"10.0.0.3"}"#), 200);
    assert_eq!(v["name"], "other");
    let id = "00000000-0000-4000-8000-0000000000aa";
    let v = ok(call(&mut a, "PUT", &format!("/services/{id}"), r#"{"host":"10.0.0.4"}"#), 200);
    assert_eq!(v["id"], id);
    assert_eq!(a.store.services.len(), 3);
}

#[test]
fn delete_refuses_a_used_service_and_cascades_plugins() {
    let mut a = admin();
    with_service(&mut a);
    ok(call(&mut a, "POST", "/routes/r/plugins", &plugin_body("http://127.0.0.1:9/")), 201);
    let v = ok(call(&mut a, "DELETE", "/services/svc", ""), 400);
    assert_eq!(v["code"], 4);
    assert_eq!(v["fields"], json!({ "@referenced_by": "routes" }));
    assert_eq!(call(&mut a, "DELETE", "/routes/r", "").status, 204);
    assert!(a.store.plugins.is_empty(), "the route's plugin went with it");
    assert_eq!(call(&mut a, "DELETE", "/services/svc", "").status, 204);
    assert!(a.store.services.is_empty());
    assert!(a.shared.load().config.services.is_empty());
}

#[test]
fn post_config_replaces_everything_and_keeps_ids_by_name() {
    let mut a = admin();
    let (sid, _) = with_service(&mut a);
    let yaml = "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\n  routes:\n  - name: z\n    paths: [/z]\n";
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: yaml.as_bytes() };
    let v = ok(handle(&mut a, &req), 201);
    assert_eq!(v["services"][0]["id"], json!(sid), "same name, same id");
    assert_eq!(v["routes"].as_array().unwrap().len(), 1);
    assert_eq!(v["routes"][0]["name"], "z");
    assert_eq!(a.shared.load().config.routes[0].name.as_deref(), Some("z"));

    let wrapped = json!({ "config": yaml.replace("/z", "/w") }).to_string();
    ok(call(&mut a, "POST", "/config", &wrapped), 201);
    assert_eq!(a.store.routes[0].fields["paths"], json!(["/w"]));

    let bad = "_format_version: \"3.0\"\nservices:\n- name: svc\n  host: a\n  port: 0\n";
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: bad.as_bytes() };
    let v = ok(handle(&mut a, &req), 400);
    assert_eq!(v["code"], 14);
    assert!(v["fields"]["services"][0]["port"].is_string(), "{v}");
    assert_eq!(a.store.routes[0].fields["paths"], json!(["/w"]), "unchanged");

    let env = "_format_version: \"3.0\"\nservices:\n- name: ${{ env \"DECK_HOME\" }}\n  host: a\n";
    let req = Request { method: "POST", path: "/config", content_type: None, body: env.as_bytes() };
    assert_eq!(handle(&mut a, &req).status, 400, "no environment for documents sent over the API");
}

#[test]
fn a_document_nested_too_deep_is_refused_not_a_crash() {
    let mut a = admin();
    with_service(&mut a);
    let deep = format!("_format_version: \"3.0\"\nservices:\n{}x\n", "- ".repeat(100_000));
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: deep.as_bytes() };
    let v = ok(handle(&mut a, &req), 400);
    assert_eq!(v["code"], 14);
    assert!(v["message"].as_str().unwrap().contains("nest more than"), "{v}");
    assert_eq!(a.store.services.len(), 1, "unchanged");
}

#[test]
fn no_response_ever_carries_a_secret() {
    let mut a = admin();
    with_service(&mut a);
    let mut seen = Vec::new();
    seen.push(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")));
    let with_salt = plugin_body("http://127.0.0.1:9/").replace("\"tags\"", "\"instance_name\":\"s\",\"tags\"");
    let mut body: Value = serde_json::from_str(&with_salt).unwrap();
    body["config"]["cache_tokens_salt"] = json!(SECRET);
    body["config"]["http_proxy_authorization"] = json!(SECRET);
    seen.push(call(&mut a, "POST", "/services/svc/plugins", &body.to_string()));
    assert_eq!(seen[1].status, 201, "{}", String::from_utf8_lossy(&seen[1].body));
    for path in ["/plugins", "/services/svc/plugins", "/plugins/s", "/", "/status"] {
        seen.push(call(&mut a, "GET", path, ""));
    }
    let yaml = format!("_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config: {{issuer: 'http://i/', auth_methods: [bearer], client_secret: [{SECRET}]}}\n");
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: yaml.as_bytes() };
    seen.push(handle(&mut a, &req));
    for r in &seen {
        assert!(r.status < 300, "{}", String::from_utf8_lossy(&r.body));
        assert!(!String::from_utf8_lossy(&r.body).contains(SECRET), "{}", String::from_utf8_lossy(&r.body));
    }
}

#[test]
fn node_info_and_status_have_kongs_shape() {
    let mut a = admin();
    with_service(&mut a);
    ok(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")), 201);
    let v = ok(call(&mut a, "GET", "/", ""), 200);
    assert_eq!(v["hostname"], "test-host");
    assert_eq!(v["node_id"], "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["plugins"]["enabled_in_cluster"], json!(["openid-connect"]));
    assert!(v["plugins"]["available_on_server"]["openid-connect"].is_object());
    assert_eq!(v["configuration"]["database"], "off");
    let s = ok(call(&mut a, "GET", "/status", ""), 200);
    assert_eq!(s["database"]["reachable"], true);
    assert!(s["server"].as_object().unwrap().contains_key("connections_active"));
    assert_eq!(s["ringgate"]["config_loaded"], true);
    assert_eq!(s["ringgate"]["workers"], 2);
    // The hash is of the store as it now stands, and follows a change.
    let digest = ring::digest::digest(&ring::digest::SHA256, a.store.render().as_bytes());
    assert_eq!(s["configuration_hash"], json!(crate::http::hex_lower(&digest.as_ref()[..16])));
    let id = a.store.plugins[0].id.clone();
    ok(call(&mut a, "PATCH", &format!("/plugins/{id}"), r#"{"config":{"timeout":2000}}"#), 200);
    let changed = ok(call(&mut a, "GET", "/status", ""), 200);
    assert_ne!(changed["configuration_hash"], s["configuration_hash"]);
    let plugins = s["ringgate"]["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1);
    assert_eq!(plugins[0]["id"], json!(a.store.plugins[0].id));
    assert_eq!(plugins[0]["discovery"]["ready"], false, "no control plane runs in this test");
    assert_eq!(ok(call(&mut a, "GET", "/plugins/enabled", ""), 200), json!({ "enabled_plugins": ["openid-connect"] }));
    let m = metrics(&Hooks::default());
    assert_eq!((m.status, m.content_type, m.body.len()), (200, "text/plain; version=0.0.4; charset=utf-8", 0));
    let hooks = Hooks::default();
    let _ = hooks.metrics.set(Box::new(|| "x 1\n".into()));
    assert_eq!(metrics(&hooks).body, b"x 1\n");
}

#[test]
fn every_accepted_change_is_saved_and_loads_back() {
    let dir = std::env::temp_dir().join(format!("ringgate-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = admin_with(Some(DataDir::open(&dir).unwrap()));
    with_service(&mut a);
    ok(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")), 201);
    ok(call(&mut a, "POST", "/consumers", r#"{"username":"alice","tags":["t"]}"#), 201);
    // A refused change does not touch the file.
    let saved = std::fs::read_to_string(dir.join("state.json")).unwrap();
    call(&mut a, "POST", "/services", r#"{"name":"bad","host":"a","port":0}"#);
    assert_eq!(std::fs::read_to_string(dir.join("state.json")).unwrap(), saved);

    let mut b = admin();
    b.load_state(&saved, "state.json").unwrap();
    assert_eq!(b.store, a.store, "ids, timestamps and fields survive");
    assert_eq!(b.store.consumers.len(), 1, "consumers too");
    assert_eq!(b.shared.load().instances().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----- certificates and CA certificates -----

/// A self-signed certificate for `names`: (certificate PEM, key PEM).
fn issued(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names).unwrap();
    (cert.pem(), signing_key.serialize_pem())
}

/// A CA certificate, PEM.
fn ca_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.self_signed(&key).unwrap().pem()
}

fn cert_body(cert: &str, key: &str, snis: &[&str]) -> String {
    json!({ "cert": cert, "key": key, "snis": snis, "tags": ["edge"] }).to_string()
}

/// The base64 body of a PEM key: what must never be in a response.
fn key_material(key: &str) -> String {
    key.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n")
}

#[test]
fn certificates_are_created_shown_redacted_patched_put_and_deleted() {
    let mut a = admin();
    let (cert, key) = issued(&["a.example"]);
    let mut seen = Vec::new();
    let r = call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &["A.example"]));
    seen.push(r.clone());
    let c = ok(r, 201);
    let id = c["id"].as_str().unwrap().to_string();
    assert!(is_uuid(&id));
    assert_eq!(c["cert"], json!(cert), "the certificate is public");
    assert_eq!(c["key"], REDACTED);
    assert_eq!((c["cert_alt"].clone(), c["key_alt"].clone()), (Value::Null, Value::Null));
    assert_eq!(c["snis"], json!(["a.example"]));
    assert_eq!(c["tags"], json!(["edge"]));
    assert!(c["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(a.store.certificates[0].fields["key"], json!(key), "stored whole");
    assert!(a.shared.load().server_certs.pick(Some("a.example")).is_some(), "the change is running");

    for path in [format!("/certificates/{id}"), "/certificates/A.EXAMPLE".to_string(), "/certificates/".to_string()] {
        let r = call(&mut a, "GET", &path, "");
        seen.push(r.clone());
        let v = ok(r, 200);
        let shown = if path.ends_with('/') { v["data"][0].clone() } else { v };
        assert_eq!(shown, c, "{path}");
    }
    assert_eq!(ok(call(&mut a, "GET", "/certificates/none.example", ""), 404), json!({ "message": "SNI not found" }));
    assert_eq!(call(&mut a, "PATCH", "/certificates/none.example", "{}").status, 404);
    assert_eq!(call(&mut a, "DELETE", "/certificates/none.example", "").status, 404, "Kong's SNI lookup");

    // PATCH with the redacted key sent back keeps the stored key.
    let r = call(&mut a, "PATCH", &format!("/certificates/{id}"), r#"{"key":"<redacted>","snis":["b.example"]}"#);
    seen.push(r.clone());
    let v = ok(r, 200);
    assert_eq!(v["snis"], json!(["b.example"]));
    assert_eq!(a.store.certificates[0].fields["key"], json!(key));
    assert!(a.shared.load().server_certs.pick(Some("a.example")).is_none());
    assert!(a.shared.load().server_certs.pick(Some("b.example")).is_some());

    // GET, then PUT it all back: still the same key.
    let shown = ok(call(&mut a, "GET", "/certificates/b.example", ""), 200);
    let r = call(&mut a, "PUT", &format!("/certificates/{id}"), &shown.to_string());
    seen.push(r.clone());
    assert_eq!(ok(r, 200)["created_at"], c["created_at"]);
    assert_eq!(a.store.certificates[0].fields["key"], json!(key));

    // A new pair replaces the old.
    let (cert2, key2) = issued(&["b.example"]);
    let body = json!({ "cert": cert2, "key": key2 }).to_string();
    let r = call(&mut a, "PATCH", "/certificates/b.example", &body);
    seen.push(r.clone());
    assert_eq!(ok(r, 200)["cert"], json!(cert2));
    assert_eq!(a.store.certificates[0].fields["key"], json!(key2));

    for r in &seen {
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains(&key_material(&key)) && !text.contains(&key_material(&key2)), "{text}");
    }
    assert_eq!(call(&mut a, "DELETE", &format!("/certificates/{id}"), "").status, 204);
    assert!(a.store.certificates.is_empty());
    assert!(a.shared.load().server_certs.pick(Some("b.example")).is_none());
}

#[test]
fn bad_pem_and_a_key_of_another_certificate_are_schema_violations_at_their_field() {
    let mut a = admin();
    let (cert, key) = issued(&["a.example"]);
    let (_, other_key) = issued(&["b.example"]);
    let v = ok(call(&mut a, "POST", "/certificates", &cert_body("not a certificate", &key, &[])), 400);
    assert_eq!((v["code"].clone(), v["name"].clone()), (json!(2), json!("schema violation")));
    assert!(v["fields"]["cert"].as_str().unwrap().contains("no PEM certificate found"), "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("schema violation (cert: "), "{v}");
    let v = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, "not a key", &[])), 400);
    assert!(v["fields"]["key"].as_str().unwrap().contains("not a PEM private key"), "{v}");
    let v = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &other_key, &[])), 400);
    assert!(v["fields"]["@entity"].as_str().unwrap().contains("does not belong to the certificate"), "{v}");
    let v = ok(call(&mut a, "POST", "/certificates", &json!({ "cert": cert }).to_string()), 400);
    assert!(v["fields"]["@entity"].as_str().unwrap().contains("needs 'key'"), "{v}");
    let v = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, REDACTED, &[])), 400);
    assert!(v.to_string().contains("needs 'key'"), "a new certificate has no stored key to keep: {v}");
    let v = ok(
        call(
            &mut a,
            "POST",
            "/ca_certificates",
            r#"{"cert":"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n"}"#,
        ),
        400,
    );
    assert!(v["fields"]["cert"].as_str().unwrap().contains("cannot be used as a CA certificate"), "{v}");
    assert!(a.store.certificates.is_empty() && a.store.ca_certificates.is_empty());
    assert_eq!(
        ok(call(&mut a, "PUT", "/ca_certificates/not-a-uuid", "{}"), 400)["fields"]["id"],
        "expected a valid UUID"
    );
    assert_eq!(call(&mut a, "GET", "/ca_certificates/not-a-uuid", "").status, 404);
}

#[test]
fn snis_are_unique_across_certificates_and_put_by_sni_creates_or_replaces() {
    let mut a = admin();
    let (cert, key) = issued(&["a.example"]);
    let first = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &["a.example"])), 201);
    let v = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &["x.example", "A.example"])), 400);
    let expected =
        format!("a.example already associated with existing certificate '{}'", first["id"].as_str().unwrap());
    assert_eq!(v["fields"]["snis"], json!(expected));
    let v = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &["x.example", "x.example"])), 400);
    assert_eq!(v["fields"]["snis"], "duplicate SNI in request: x.example");

    // PUT by a name nothing serves creates a certificate serving it.
    let body = json!({ "cert": cert, "key": key }).to_string();
    let created = ok(call(&mut a, "PUT", "/certificates/new.example", &body), 200);
    assert_eq!(created["snis"], json!(["new.example"]));
    let body = json!({ "cert": cert, "key": key, "snis": ["other.example"] }).to_string();
    let replaced = ok(call(&mut a, "PUT", "/certificates/new.example", &body), 200);
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["snis"], json!(["other.example", "new.example"]), "the path's name is kept");

    // Form fields: a lone `snis` is a list.
    let form = format!("cert={}&key={}&snis=form.example", form_encode(&cert), form_encode(&key));
    let v = ok(form_call(&mut a, "POST", "/certificates", &form), 201);
    assert_eq!(v["snis"], json!(["form.example"]));
    assert_eq!(v["key"], REDACTED);
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn services_use_certificates_which_then_cannot_be_deleted() {
    let mut a = admin();
    let ca = ok(call(&mut a, "POST", "/ca_certificates", &json!({ "cert": ca_pem("test CA") }).to_string()), 201);
    let ca_id = ca["id"].as_str().unwrap().to_string();
    let digest = ca["cert_digest"].as_str().unwrap();
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "{ca}");
    let v = ok(call(&mut a, "POST", "/ca_certificates", &json!({ "cert": ca["cert"] }).to_string()), 409);
    assert_eq!((v["code"].clone(), v["fields"].clone()), (json!(5), json!({ "cert_digest": digest })));
    let (cert, key) = issued(&["client.example"]);
    let client = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &[])), 201);
    let client_id = client["id"].as_str().unwrap().to_string();

    let missing = "00000000-0000-4000-8000-000000000001";
    let body = json!({ "name": "s", "url": "https://127.0.0.1:9", "client_certificate": { "id": missing } });
    let v = ok(call(&mut a, "POST", "/services", &body.to_string()), 400);
    assert_eq!(
        (v["code"].clone(), v["fields"].clone()),
        (json!(4), json!({ "client_certificate": { "id": missing } }))
    );
    let body = json!({ "name": "s", "url": "https://127.0.0.1:9", "ca_certificates": [ca_id, missing, "x"] });
    let v = ok(call(&mut a, "POST", "/services", &body.to_string()), 400);
    assert_eq!(v["fields"]["ca_certificates"][1], format!("no CA certificate with id '{missing}'"));
    assert_eq!(v["fields"]["ca_certificates"][2], "expected a valid UUID");

    let body = json!({
        "name": "s",
        "url": "https://127.0.0.1:9",
        "tls_verify": false,
        "ca_certificates": [ca_id.to_ascii_uppercase()],
        "client_certificate": { "id": client_id },
    });
    let s = ok(call(&mut a, "POST", "/services", &body.to_string()), 201);
    assert_eq!(s["tls_verify"], false);
    assert_eq!(s["ca_certificates"], json!([ca_id]), "stored as the CA certificate's id");
    assert_eq!(s["client_certificate"], json!({ "id": client_id }));
    assert!(a.shared.load().targets[0].peers[0].tls.is_some(), "an https upstream");
    assert!(!a.shared.load().config.services[0].tls_verify);

    let v = ok(call(&mut a, "DELETE", &format!("/certificates/{client_id}"), ""), 400);
    assert_eq!(v["code"], 4);
    assert_eq!(v["message"], "an existing 'services' entity references this 'certificates' entity");
    assert_eq!(v["fields"], json!({ "@referenced_by": "services" }));
    let v = ok(call(&mut a, "DELETE", &format!("/ca_certificates/{ca_id}"), ""), 400);
    let sid = s["id"].as_str().unwrap();
    assert_eq!(v, json!({ "message": format!("ca_certificate {ca_id} is still referenced by services (id = {sid})") }));
    assert_eq!((a.store.certificates.len(), a.store.ca_certificates.len()), (1, 1));

    ok(call(&mut a, "PATCH", "/services/s", r#"{"ca_certificates":null,"client_certificate":null}"#), 200);
    assert_eq!(call(&mut a, "DELETE", &format!("/certificates/{client_id}"), "").status, 204);
    assert_eq!(call(&mut a, "DELETE", &format!("/ca_certificates/{ca_id}"), "").status, 204);
    assert!(a.store.certificates.is_empty() && a.store.ca_certificates.is_empty());
}

#[test]
fn certificates_are_saved_and_load_back_with_the_state() {
    let dir = std::env::temp_dir().join(format!("ringgate-api-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = admin_with(Some(DataDir::open(&dir).unwrap()));
    let ca = ok(call(&mut a, "POST", "/ca_certificates", &json!({ "cert": ca_pem("test CA") }).to_string()), 201);
    let (cert, key) = issued(&["a.example"]);
    let c = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &["a.example"])), 201);
    let body = json!({ "name": "s", "url": "https://127.0.0.1:9", "ca_certificates": [ca["id"]], "client_certificate": c["id"] });
    ok(call(&mut a, "POST", "/services", &body.to_string()), 201);
    let saved = std::fs::read_to_string(dir.join("state.json")).unwrap();
    let mut b = admin();
    b.load_state(&saved, "state.json").unwrap();
    assert_eq!(b.store, a.store, "ids, timestamps, keys and references survive");
    assert!(b.shared.load().server_certs.pick(Some("a.example")).is_some());
    assert!(b.shared.load().targets[0].peers[0].tls.is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn post_config_with_certificates_answers_them_redacted() {
    let mut a = admin();
    let (cert, key) = issued(&["a.example"]);
    let doc = json!({
        "_format_version": "3.0",
        "certificates": [{ "cert": cert, "key": key, "snis": [{ "name": "a.example" }] }],
    });
    let r = call(&mut a, "POST", "/config", &doc.to_string());
    assert!(!String::from_utf8_lossy(&r.body).contains(&key_material(&key)));
    let v = ok(r, 201);
    assert_eq!(v["certificates"][0]["key"], REDACTED);
    assert_eq!(v["certificates"][0]["snis"], json!(["a.example"]));
    assert_eq!(v["ca_certificates"], json!([]));
    assert!(a.shared.load().server_certs.pick(Some("a.example")).is_some());
}

// ----- upstreams and targets -----

/// The addresses service `si` of the running snapshot sends to, in round-robin order.
fn rotation(a: &Admin, si: usize) -> Vec<String> {
    let snap = a.shared.load();
    let t = &snap.targets[si];
    (0..t.schedule.len()).map(|i| t.peer(i).unwrap().1.addr.to_string()).collect()
}

#[test]
fn upstreams_and_targets_are_managed_like_kongs_and_balance_the_service() {
    let mut a = admin();
    let u = ok(form_call(&mut a, "POST", "/upstreams", "name=orders.internal&slots=1000"), 201);
    assert_eq!((u["algorithm"].as_str(), u["slots"].as_u64()), (Some("round-robin"), Some(1000)));
    assert_eq!(u["healthchecks"]["active"]["healthy"]["interval"], 0);
    let t1 = ok(form_call(&mut a, "POST", "/upstreams/orders.internal/targets", "target=127.0.0.1:9001&weight=3"), 201);
    assert_eq!((t1["weight"].as_u64(), &t1["upstream"]), (Some(3), &json!({ "id": u["id"] })));
    ok(call(&mut a, "POST", "/upstreams/orders.internal/targets", r#"{"target":"127.0.0.1:9002"}"#), 201);
    let twice = call(&mut a, "POST", "/upstreams/orders.internal/targets", r#"{"target":"127.0.0.1:9002"}"#);
    assert_eq!(twice.status, 409, "{}", String::from_utf8_lossy(&twice.body));
    ok(call(&mut a, "POST", "/services", r#"{"name":"orders","host":"orders.internal"}"#), 201);
    ok(call(&mut a, "POST", "/services/orders/routes", r#"{"paths":["/orders"]}"#), 201);
    // Weights 3 and 100, divided by their gcd: 3 turns in 103.
    let turns = rotation(&a, 0);
    assert_eq!((turns.len(), turns.iter().filter(|t| *t == "127.0.0.1:9001").count()), (103, 3));

    // A target by address under its upstream: read, re-weighted, replaced, deleted.
    let path = "/upstreams/orders.internal/targets/127.0.0.1:9001";
    assert_eq!(ok(call(&mut a, "GET", path, ""), 200)["id"], t1["id"]);
    ok(call(&mut a, "PATCH", path, r#"{"weight":100}"#), 200);
    assert_eq!(rotation(&a, 0), vec!["127.0.0.1:9001", "127.0.0.1:9002"]);
    let replaced = ok(call(&mut a, "PUT", path, r#"{"weight":0}"#), 200);
    assert_eq!((&replaced["id"], &replaced["target"]), (&t1["id"], &json!("127.0.0.1:9001")));
    assert_eq!(rotation(&a, 0), vec!["127.0.0.1:9002"]);
    assert_eq!(call(&mut a, "DELETE", path, "").status, 204);
    assert_eq!(call(&mut a, "GET", path, "").status, 404);
    let listed = ok(call(&mut a, "GET", "/upstreams/orders.internal/targets", ""), 200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(ok(call(&mut a, "GET", "/upstreams/orders.internal/targets/all", ""), 200), listed);

    // Deleting the upstream takes its targets along; the service's host is then a name.
    assert_eq!(call(&mut a, "DELETE", "/upstreams/orders.internal", "").status, 204);
    assert!(a.store.targets.is_empty());
    assert_eq!(a.shared.load().config.services[0].upstream, None);
}

#[test]
fn an_upstream_from_the_file_survives_changes_made_through_the_admin_api() {
    let mut a = admin();
    let doc = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  host_header: api.internal\n  \
               algorithm: consistent-hashing\n  hash_on: header\n  hash_on_header: X-User\n  targets:\n  \
               - target: 127.0.0.1:9001\n    weight: 200\n  - target: 127.0.0.1:9002\n\
               services:\n- name: s\n  host: u\n  routes: [{name: r, paths: [/]}]\n";
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: doc.as_bytes() };
    let v = ok(handle(&mut a, &req), 201);
    assert_eq!(v["upstreams"][0]["host_header"], "api.internal");
    assert_eq!(v["targets"].as_array().unwrap().len(), 2);
    let before = rotation(&a, 0);
    assert_eq!(before, vec!["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9001"]);
    ok(call(&mut a, "PATCH", "/services/s", r#"{"retries":1}"#), 200);
    assert_eq!(rotation(&a, 0), before, "the change re-rendered the store with its upstream");
    let u = ok(call(&mut a, "GET", "/upstreams/u", ""), 200);
    assert_eq!(
        (&u["algorithm"], &u["hash_on"], &u["hash_on_header"]),
        (&json!("consistent-hashing"), &json!("header"), &json!("x-user"))
    );
    assert_eq!(a.shared.load().config.upstreams[0].hash_on, crate::config::HashOn::Header("x-user".into()));
    assert_eq!(a.shared.load().targets[0].peers[0].host_header, b"api.internal:9001");
}

#[test]
fn upstream_health_is_shown_per_address_and_set_by_hand() {
    let mut a = admin();
    let doc = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    passive:\n      \
               unhealthy: {http_failures: 3}\n  targets:\n  - target: 127.0.0.1:9001\n  - target: 127.0.0.1:9002\n  \
               - target: 127.0.0.1:9003\n    weight: 0\n- name: off\n  targets: [{target: '127.0.0.1:9004'}]\n";
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: doc.as_bytes() };
    ok(handle(&mut a, &req), 201);
    let shown = |a: &mut Admin| ok(call(a, "GET", "/upstreams/u/health", ""), 200);
    let h = shown(&mut a);
    assert_eq!(h["total"], 2, "weight 0 is out of rotation: not listed");
    assert_eq!(h["data"][0]["health"], "HEALTHY");
    assert_eq!(
        h["data"][0]["data"]["addresses"],
        json!([{ "ip": "127.0.0.1", "port": 9001, "weight": 100, "health": "HEALTHY" }])
    );
    assert_eq!(call(&mut a, "POST", "/upstreams/u/targets/127.0.0.1:9001/unhealthy", "").status, 204);
    assert_eq!(shown(&mut a)["data"][0]["health"], "UNHEALTHY");
    assert_eq!(shown(&mut a)["data"][1]["health"], "HEALTHY");
    let id = a.store.targets[0].id.clone();
    assert_eq!(call(&mut a, "PUT", &format!("/upstreams/u/targets/{id}/healthy"), "").status, 204);
    assert_eq!(shown(&mut a)["data"][0]["health"], "HEALTHY");
    assert_eq!(ok(call(&mut a, "GET", "/upstreams/off/health", ""), 200)["data"][0]["health"], "HEALTHCHECKS_OFF");
    let r = call(&mut a, "POST", "/upstreams/off/targets/127.0.0.1:9004/unhealthy", "");
    assert_eq!((r.status, r.value()["message"].clone()), (400, json!("health checks are off for upstream 'off'")));
    assert_eq!(call(&mut a, "POST", "/upstreams/u/targets/127.0.0.1:9999/healthy", "").status, 404);
    assert_eq!(call(&mut a, "GET", "/upstreams/nope/health", "").status, 404);

    // One address of a target (Kong's per-address endpoints): only a known address.
    let by_address = |a: &mut Admin, target: &str, address: &str, state: &str| {
        call(a, "PUT", &format!("/upstreams/u/targets/{target}/{address}/{state}"), "").status
    };
    assert_eq!(by_address(&mut a, "127.0.0.1:9002", "127.0.0.1:9002", "unhealthy"), 204);
    assert_eq!(shown(&mut a)["data"][1]["health"], "UNHEALTHY");
    assert_eq!(shown(&mut a)["data"][0]["health"], "HEALTHY");
    assert_eq!(by_address(&mut a, "127.0.0.1:9002", "127.0.0.1:9001", "healthy"), 404, "another target's address");
    assert_eq!(shown(&mut a)["data"][1]["health"], "UNHEALTHY");
    assert_eq!(by_address(&mut a, "127.0.0.1:9002", "not-an-address", "healthy"), 404);
    assert_eq!(by_address(&mut a, "127.0.0.1:9002", "127.0.0.1:9002", "healthy"), 204);
    assert_eq!(shown(&mut a)["data"][1]["health"], "HEALTHY");
}

const PLANE: &str = "9f1c2a3b-4d5e-4f60-8a7b-0c1d2e3f4a5b";

fn konnect(path: &str) -> String {
    format!("/v2/control-planes/{PLANE}/core-entities{path}")
}

#[test]
fn konnect_core_entity_paths_manage_the_same_entities_as_kongs() {
    let mut a = admin();
    let s = ok(call(&mut a, "POST", &konnect("/services"), r#"{"name":"svc","url":"http://127.0.0.1:9/base"}"#), 201);
    let r = ok(call(&mut a, "POST", &konnect("/services/svc/routes"), r#"{"name":"r","paths":["/"]}"#), 201);
    assert_eq!(r["service"], json!({ "id": s["id"] }));
    let mut body: Value = serde_json::from_str(&plugin_body("http://127.0.0.1:9/")).unwrap();
    body["route"] = json!({ "id": r["id"] });
    let p = ok(call(&mut a, "POST", &konnect("/plugins"), &body.to_string()), 201);
    assert_eq!(p["config"]["client_secret"], json!([REDACTED]));
    assert_eq!(p["route"], json!({ "id": r["id"] }));

    // The same entities on either path, and in the running configuration.
    assert_eq!(ok(call(&mut a, "GET", "/services/svc", ""), 200)["id"], s["id"]);
    let pid = p["id"].as_str().unwrap();
    assert_eq!(ok(call(&mut a, "GET", &format!("/plugins/{pid}"), ""), 200)["route"], json!({ "id": r["id"] }));
    assert_eq!(ok(call(&mut a, "GET", &konnect("/plugins"), ""), 200)["data"].as_array().unwrap().len(), 1);
    assert_eq!(ok(call(&mut a, "GET", &konnect("/routes/r/plugins"), ""), 200)["data"][0]["id"], p["id"]);
    assert_eq!(a.shared.load().instances().len(), 1);

    // Updates and deletes, as the Terraform provider sends them.
    let patched =
        ok(call(&mut a, "PATCH", &konnect(&format!("/plugins/{pid}")), r#"{"config":{"timeout":2500}}"#), 200);
    assert_eq!(patched["config"]["timeout"], 2500);
    assert_eq!(a.store.plugins[0].fields["config"]["client_secret"], json!([SECRET]), "kept through the patch");
    let mut replaced = body.clone();
    replaced["config"]["scopes"] = json!([]);
    let put = ok(call(&mut a, "PUT", &konnect(&format!("/plugins/{pid}")), &replaced.to_string()), 200);
    assert_eq!(put["config"]["scopes"], json!([]));
    assert_eq!(put["config"]["timeout"], 10000, "a PUT replaces the whole entity");
    assert_eq!(call(&mut a, "DELETE", &konnect(&format!("/plugins/{pid}")), "").status, 204);
    assert!(a.shared.load().instances().is_empty());
    assert_eq!(call(&mut a, "GET", &format!("/plugins/{pid}"), "").status, 404);
}

#[test]
fn konnect_paths_other_than_core_entities_are_not_served() {
    let mut a = admin();
    with_service(&mut a);
    for (method, path) in [
        ("GET", konnect("/status")),
        ("POST", konnect("/config")),
        ("GET", konnect("/upstreams/u/health")),
        ("GET", konnect("/nonsense")),
    ] {
        let r = call(&mut a, method, &path, "{}");
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.value()["message"], "Not found", "{method} {path}");
    }
    for path in [konnect(""), format!("/v2/control-planes/{PLANE}"), "/v2/control-planes".to_string()] {
        let r = call(&mut a, "GET", &path, "");
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.value()["message"],
            "Not found: only /v2/control-planes/{id}/core-entities/ paths are served",
            "{path}"
        );
    }
    assert_eq!(a.store.services.len(), 1, "nothing changed");
}

#[test]
fn a_set_control_plane_id_is_the_only_one_answered() {
    let mut a = admin();
    a.control_plane_id = Some(crate::admin::control_plane_id(PLANE).unwrap());
    let other = "/v2/control-planes/00000000-0000-4000-8000-000000000000/core-entities/services";
    let r = call(&mut a, "POST", other, r#"{"name":"svc","url":"http://127.0.0.1:9/"}"#);
    assert_eq!(r.status, 404);
    assert_eq!(r.value()["message"], "Control plane not found");
    assert!(a.store.services.is_empty());
    assert_eq!(call(&mut a, "GET", other, "").status, 404);
    // The id is compared without regard to case, as UUIDs are.
    let upper = format!("/v2/control-planes/{}/core-entities/services", PLANE.to_ascii_uppercase());
    ok(call(&mut a, "POST", &upper, r#"{"name":"svc","url":"http://127.0.0.1:9/"}"#), 201);
    assert_eq!(ok(call(&mut a, "GET", &konnect("/services"), ""), 200)["data"].as_array().unwrap().len(), 1);
    assert!(crate::admin::control_plane_id("not-a-uuid").unwrap_err().contains("not a UUID"));
}

#[test]
fn cookie_hashing_upstreams_show_their_cookie_and_refuse_a_fallback() {
    let mut a = admin();
    let body = r#"{"name":"u","algorithm":"consistent-hashing","hash_on":"cookie","hash_on_cookie":"sid"}"#;
    let u = ok(call(&mut a, "POST", "/upstreams", body), 201);
    assert_eq!((u["hash_on"].clone(), u["hash_on_cookie"].clone()), (json!("cookie"), json!("sid")));
    assert_eq!(u["hash_on_cookie_path"], "/");
    let patched = ok(call(&mut a, "PATCH", "/upstreams/u", r#"{"hash_on_cookie_path":"/app"}"#), 200);
    assert_eq!(patched["hash_on_cookie_path"], "/app");
    let r = call(&mut a, "PATCH", "/upstreams/u", r#"{"hash_fallback":"ip"}"#);
    assert_eq!(r.status, 400);
    assert!(r.value()["message"]
        .as_str()
        .unwrap()
        .contains("'hash_fallback' must be 'none' when 'hash_on' is 'cookie'"));
    assert_eq!(a.shared.load().config.upstreams[0].hash_on_cookie_path, "/app", "the refused change left it");
    let body = r#"{"name":"s","algorithm":"sticky-sessions","sticky_sessions_cookie":"srv"}"#;
    let s = ok(call(&mut a, "POST", "/upstreams", body), 201);
    assert_eq!((s["algorithm"].clone(), s["sticky_sessions_cookie"].clone()), (json!("sticky-sessions"), json!("srv")));
    assert_eq!(s["sticky_sessions_cookie_path"], "/");
    let r = call(&mut a, "POST", "/upstreams", r#"{"name":"t","algorithm":"sticky-sessions"}"#);
    assert_eq!(r.status, 400);
    assert!(r.value()["message"].as_str().unwrap().contains("needs 'sticky_sessions_cookie'"), "{:?}", r.value());
}

#[test]
fn an_upstream_presents_a_certificate_which_then_cannot_be_deleted() {
    let mut a = admin();
    let (cert, key) = issued(&["client.example"]);
    let client = ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &[])), 201);
    let client_id = client["id"].as_str().unwrap().to_string();
    let upstream = |id: &str| json!({ "name": "u", "client_certificate": { "id": id } }).to_string();
    let missing = "00000000-0000-4000-8000-000000000001";
    let v = ok(call(&mut a, "POST", "/upstreams", &upstream(missing)), 400);
    assert_eq!(
        (v["code"].clone(), v["fields"].clone()),
        (json!(4), json!({ "client_certificate": { "id": missing } }))
    );
    let u = ok(call(&mut a, "POST", "/upstreams", &upstream(&client_id)), 201);
    assert_eq!(u["client_certificate"], json!({ "id": client_id }));
    assert!(a.shared.load().upstream_client_certs[0].is_some(), "loaded for its services and probes");
    let v = ok(call(&mut a, "DELETE", &format!("/certificates/{client_id}"), ""), 400);
    assert_eq!((v["code"].clone(), v["fields"].clone()), (json!(4), json!({ "@referenced_by": "upstreams" })));
    ok(call(&mut a, "PATCH", "/upstreams/u", r#"{"client_certificate":null}"#), 200);
    assert_eq!(call(&mut a, "DELETE", &format!("/certificates/{client_id}"), "").status, 204);
}

// ----- consumers -----

const NEEDS_A_NAME: &str = "at least one of these fields must be non-empty: 'custom_id', 'username'";

#[test]
fn consumers_are_created_from_json_and_form_and_found_by_id_or_username() {
    let mut a = admin();
    let alice =
        ok(call(&mut a, "POST", "/consumers", r#"{"username":"alice","custom_id":"A-1","tags":["team-a"]}"#), 201);
    let id = alice["id"].as_str().unwrap().to_string();
    assert!(is_uuid(&id), "{id}");
    assert_eq!(
        (&alice["username"], &alice["custom_id"], &alice["tags"]),
        (&json!("alice"), &json!("A-1"), &json!(["team-a"]))
    );
    assert!(alice["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(alice["created_at"], alice["updated_at"]);
    let bob = ok(form_call(&mut a, "POST", "/consumers/", "custom_id=bob-77&tags=solo&username="), 201);
    assert_eq!(bob["tags"], json!(["solo"]), "a lone form value of tags is a list");
    assert_eq!((&bob["username"], &bob["custom_id"]), (&Value::Null, &json!("bob-77")));

    assert_eq!(ok(call(&mut a, "GET", &format!("/consumers/{id}"), ""), 200), alice);
    assert_eq!(ok(call(&mut a, "GET", &format!("/consumers/{}", id.to_ascii_uppercase()), ""), 200), alice);
    assert_eq!(ok(call(&mut a, "GET", "/consumers/alice", ""), 200), alice);
    assert_eq!(call(&mut a, "GET", "/consumers/bob-77", "").status, 404, "a custom id is not a path key");
    assert_eq!(ok(call(&mut a, "GET", "/consumers", ""), 200), json!({ "data": [alice, bob], "next": null }));
    assert_eq!(ok(call(&mut a, "GET", &konnect("/consumers/alice"), ""), 200)["id"], json!(id));
    let running: Vec<Option<String>> = a.shared.load().config.consumers.iter().map(|c| c.username.clone()).collect();
    assert_eq!(running, [Some("alice".to_string()), None], "the change is running");
}

#[test]
fn a_consumer_is_renamed_by_patch_but_never_onto_a_taken_username_or_custom_id() {
    let mut a = admin();
    let alice = ok(call(&mut a, "POST", "/consumers", r#"{"username":"alice","custom_id":"A-1"}"#), 201);
    ok(call(&mut a, "POST", "/consumers", r#"{"username":"bob"}"#), 201);
    let carol = ok(call(&mut a, "PATCH", "/consumers/alice", r#"{"username":"carol"}"#), 200);
    assert_eq!((&carol["id"], &carol["username"]), (&alice["id"], &json!("carol")));
    assert_eq!(carol["custom_id"], "A-1", "PATCH keeps what it does not give");
    assert_eq!(carol["created_at"], alice["created_at"]);
    assert_eq!(call(&mut a, "GET", "/consumers/alice", "").status, 404);
    assert_eq!(ok(call(&mut a, "GET", "/consumers/carol", ""), 200), carol);
    assert_eq!(a.shared.load().config.consumers[0].username.as_deref(), Some("carol"));

    let (store, running) = (a.store.clone(), a.shared.load_full());
    let v = ok(call(&mut a, "PATCH", "/consumers/carol", r#"{"username":"bob"}"#), 409);
    assert_eq!((&v["code"], &v["name"]), (&json!(5), &json!("unique constraint violation")));
    assert_eq!(v["message"], "UNIQUE violation detected on '{username=\"bob\"}'");
    assert_eq!(v["fields"], json!({ "username": "bob" }));
    let v = ok(call(&mut a, "POST", "/consumers", r#"{"username":"dave","custom_id":"A-1"}"#), 409);
    assert_eq!(v["fields"], json!({ "custom_id": "A-1" }));
    let v = ok(call(&mut a, "PATCH", "/consumers/bob", r#"{"custom_id":"A-1"}"#), 409);
    assert_eq!(v["message"], "UNIQUE violation detected on '{custom_id=\"A-1\"}'");
    assert_eq!(a.store, store, "nothing changed");
    assert!(Arc::ptr_eq(&running, &a.shared.load_full()), "the running snapshot is untouched");

    let v = ok(call(&mut a, "PATCH", "/consumers/carol", r#"{"username":"carol","custom_id":"A-1"}"#), 200);
    assert_eq!(v["username"], "carol", "a consumer does not conflict with itself");
}

#[test]
fn put_by_username_creates_the_consumer_then_replaces_it() {
    let mut a = admin();
    let created = ok(call(&mut a, "PUT", "/consumers/dave", r#"{"custom_id":"D-4","tags":["x"]}"#), 200);
    let id = created["id"].as_str().unwrap().to_string();
    assert!(is_uuid(&id), "{id}");
    assert_eq!((&created["username"], &created["custom_id"]), (&json!("dave"), &json!("D-4")));
    assert_eq!(a.store.consumers.len(), 1);
    assert_eq!(ok(call(&mut a, "GET", "/consumers/dave", ""), 200), created);

    let replaced = ok(call(&mut a, "PUT", "/consumers/dave", r#"{"tags":["y"]}"#), 200);
    assert_eq!((&replaced["id"], &replaced["created_at"]), (&created["id"], &created["created_at"]));
    assert_eq!(replaced["username"], "dave", "the path names it");
    assert_eq!(replaced["custom_id"], Value::Null, "PUT resets what it does not give");
    assert_eq!(replaced["tags"], json!(["y"]));
    let by_id = ok(call(&mut a, "PUT", &format!("/consumers/{id}"), r#"{"username":"dave2"}"#), 200);
    assert_eq!((&by_id["id"], &by_id["username"]), (&json!(id), &json!("dave2")));

    let new_id = "00000000-0000-4000-8000-0000000000c1";
    let v = ok(call(&mut a, "PUT", &format!("/consumers/{new_id}"), r#"{"username":"erin"}"#), 200);
    assert_eq!(v["id"], new_id, "a UUID that names nothing is the new consumer's id");
    assert_eq!(a.store.consumers.len(), 2);
    assert_eq!(ok(call(&mut a, "PUT", "/consumers/erin", "{}"), 200)["id"], new_id, "found by username");
    assert_eq!(a.store.consumers.len(), 2);

    // A username that looks like a UUID names its consumer when no id is that UUID,
    // and a PUT there keeps it as the username.
    let uuid_name = "00000000-0000-4000-8000-0000000000ee";
    let f = ok(call(&mut a, "POST", "/consumers", &json!({ "username": uuid_name }).to_string()), 201);
    let put = ok(call(&mut a, "PUT", &format!("/consumers/{uuid_name}"), r#"{"tags":["z"]}"#), 200);
    assert_eq!((&put["id"], &put["username"], &put["tags"]), (&f["id"], &json!(uuid_name), &json!(["z"])));
    assert_eq!(a.store.consumers.len(), 3);
}

#[test]
fn a_deleted_consumer_is_gone_and_unknown_consumers_are_404() {
    let mut a = admin();
    let nf = json!({ "message": "Not found" });
    let alice = ok(call(&mut a, "POST", "/consumers", r#"{"username":"alice"}"#), 201);
    let bob = ok(call(&mut a, "POST", "/consumers", r#"{"username":"bob"}"#), 201);
    assert_eq!(call(&mut a, "DELETE", "/consumers/alice", "").status, 204);
    assert_eq!(ok(call(&mut a, "GET", "/consumers/alice", ""), 404), nf);
    assert_eq!(ok(call(&mut a, "GET", &format!("/consumers/{}", alice["id"].as_str().unwrap()), ""), 404), nf);
    assert_eq!(call(&mut a, "DELETE", "/consumers/alice", "").status, 204, "Kong's DELETE is idempotent");
    assert_eq!(ok(call(&mut a, "GET", "/consumers", ""), 200)["data"], json!([bob]));
    assert_eq!(call(&mut a, "DELETE", &format!("/consumers/{}", bob["id"].as_str().unwrap()), "").status, 204);
    assert!(a.store.consumers.is_empty());
    assert!(a.shared.load().config.consumers.is_empty(), "the running configuration follows");
    assert_eq!(ok(call(&mut a, "PATCH", "/consumers/nobody", r#"{"tags":["x"]}"#), 404), nf);
    assert_eq!(call(&mut a, "GET", "/consumers/nobody/plugins", "").status, 404, "no consumer-scoped plugins");
    assert!(a.store.consumers.is_empty());
}

#[test]
fn a_consumer_needs_a_username_or_a_custom_id() {
    let mut a = admin();
    let v = ok(call(&mut a, "POST", "/consumers", r#"{"tags":["x"]}"#), 400);
    assert_eq!((&v["code"], &v["name"]), (&json!(2), &json!("schema violation")));
    assert_eq!(v["message"], format!("schema violation ({NEEDS_A_NAME})"));
    assert_eq!(v["fields"], json!({ "@entity": NEEDS_A_NAME }));
    let v = ok(form_call(&mut a, "POST", "/consumers", "username=&custom_id=&tags=x"), 400);
    assert_eq!(v["fields"], json!({ "@entity": NEEDS_A_NAME }));
    assert_eq!(ok(call(&mut a, "PUT", "/consumers/00000000-0000-4000-8000-0000000000c2", "{}"), 400)["code"], 2);
    assert!(a.store.consumers.is_empty());

    // A change that would leave neither is refused too, and changes nothing.
    ok(call(&mut a, "POST", "/consumers", r#"{"username":"alice"}"#), 201);
    let store = a.store.clone();
    let v = ok(call(&mut a, "PATCH", "/consumers/alice", r#"{"username":null,"custom_id":""}"#), 400);
    assert_eq!(v["fields"], json!({ "@entity": NEEDS_A_NAME }));
    // What the loader refuses is refused as well, at its field.
    let v = ok(call(&mut a, "PATCH", "/consumers/alice", "{\"custom_id\":\"a\\nb\"}"), 400);
    assert!(v["fields"]["custom_id"].as_str().unwrap().contains("without control characters"), "{v}");
    let v = ok(call(&mut a, "PATCH", "/consumers/alice", r#"{"colour":"blue"}"#), 400);
    assert!(v["fields"]["colour"].as_str().unwrap().contains("unknown key 'colour'"), "{v}");
    assert_eq!(a.store, store, "nothing changed");
}

#[test]
fn a_deck_consumer_without_an_id_keeps_its_id_through_admin_api_changes() {
    let dir = std::env::temp_dir().join(format!("ringgate-api-consumers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kong.yaml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\nconsumers:\n- username: alice\n  \
         tags: [from-file]\n",
    )
    .unwrap();
    let mut a = admin();
    a.load_deck(std::slice::from_ref(&file)).unwrap();
    let derived = crate::config::consumer_id_for(Some("alice"), None);
    let before = ok(call(&mut a, "GET", "/consumers/alice", ""), 200);
    assert_eq!(before["id"], json!(derived), "the loader's id");

    ok(call(&mut a, "PATCH", "/services/svc", r#"{"retries":1}"#), 200);
    ok(call(&mut a, "POST", "/services", r#"{"name":"other","host":"127.0.0.1"}"#), 201);
    assert_eq!(ok(call(&mut a, "GET", "/consumers/alice", ""), 200), before, "same id, same timestamps");
    assert_eq!(a.shared.load().config.consumers[0].id, derived);

    // Re-reading the file (SIGHUP) and the same document over POST /config: still that id.
    a.load_deck(std::slice::from_ref(&file)).unwrap();
    assert_eq!(ok(call(&mut a, "GET", "/consumers/alice", ""), 200), before);
    let text = std::fs::read_to_string(&file).unwrap();
    let req = Request { method: "POST", path: "/config", content_type: Some("text/yaml"), body: text.as_bytes() };
    let v = ok(handle(&mut a, &req), 201);
    assert_eq!(v["consumers"], json!([before]));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----- random requests -----

/// A secret a caller sends in a request; no answer may show it either.
const SENT_SECRET: &str = "sent-secret-9c41-marker";

/// An Admin with one entity of most kinds, a stored secret in plugin configs, and a
/// certificate; and that certificate's key.
fn seeded() -> (Admin, String) {
    let mut a = admin();
    with_service(&mut a);
    let (cert, key) = issued(&["api.example"]);
    ok(call(&mut a, "POST", "/certificates", &cert_body(&cert, &key, &["api.example"])), 201);
    ok(call(&mut a, "POST", "/plugins", &plugin_body("http://127.0.0.1:9/")), 201);
    let mut body: Value = serde_json::from_str(&plugin_body("http://127.0.0.1:9/")).unwrap();
    body["config"]["session_secret"] = json!(SECRET);
    body["config"]["redis"] = json!({ "password": SECRET, "host": "r" });
    body["instance_name"] = json!("p2");
    ok(call(&mut a, "POST", "/services/svc/plugins", &body.to_string()), 201);
    ok(call(&mut a, "POST", "/upstreams", r#"{"name":"u.internal"}"#), 201);
    ok(call(&mut a, "POST", "/upstreams/u.internal/targets", r#"{"target":"127.0.0.1:9001"}"#), 201);
    ok(call(&mut a, "POST", "/consumers", r#"{"username":"alice"}"#), 201);
    (a, key)
}

/// Strings that are wrong for most fields: malformed URLs, hosts, paths, regexes,
/// methods, ids, enum values. None is a host name a lookup would go out for.
const STRINGS: &[&str] = &[
    "",
    " ",
    "http://",
    "http://[::1",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:99999/",
    "ftp://127.0.0.1/",
    "http://127.0.0.1/?q=1",
    "~(",
    "~[",
    "~(?<n>",
    "~(a+)+$",
    "/a b",
    "no slash",
    "//",
    "/%zz",
    "*.*.x",
    "a..b",
    "-a.",
    "[::1]:80",
    "127.0.0.1:99999",
    "127.0.0.1:9002",
    "G ET",
    "GET",
    "\u{0}",
    "line\nbreak",
    "\u{e9}\u{1f600}",
    "${{ env \"DECK_X\" }}",
    "$",
    "<redacted>",
    "<<",
    "true",
    "client_credentials",
    "bearer",
    "password",
    "private_key_jwt",
    "grpc",
    "https",
    "least-connections",
    "cookie",
    "v1",
    "not-a-uuid",
    "00000000-0000-4000-8000-000000000000",
    "svc",
    "r",
    "u.internal",
    "alice",
    "api.example",
    "openid-connect",
    "rate-limiting",
    "\u{85}",
    "\u{2028}",
    "\u{feff}",
    "\u{7f}",
    "a\tb",
    "[::1]",
    "[::1]:9003",
    "::1",
    "\\",
    "'",
];

/// What `host`, `url` and `target` get: addresses and malformed names, never a name
/// that building the snapshot would look up (the test stays off the network).
const HOSTS: &[&str] = &[
    "127.0.0.1",
    "[::1]",
    "::1",
    "127.0.0.1:9002",
    "[::1]:9003",
    "http://127.0.0.1:9/",
    "https://[::1]:1/x",
    "http://",
    "http://127.0.0.1:0/",
    "a b",
    "a..b",
    "-a.",
    "*.*.x",
    "127.0.0.1:99999",
    "127.0.0.1:0",
    "",
    "\u{0}",
    "http://[::1",
    "ftp://127.0.0.1/",
    "http://127.0.0.1/?q=1",
];

/// A value for the entity field `field`.
fn value_for(rng: &mut Rng, field: &str) -> Value {
    match field {
        "host" | "url" | "target" if rng.chance(4) => json!(rng.pick(&[1, -1, 65536])),
        "host" | "url" | "target" => json!(rng.pick(HOSTS)),
        "config" => random_config(rng),
        "key" => secret_json(rng),
        _ => random_json(rng, 0),
    }
}

const FIELDS: &[&str] = &[
    "name",
    "url",
    "host",
    "port",
    "protocol",
    "path",
    "retries",
    "connect_timeout",
    "read_timeout",
    "paths",
    "hosts",
    "methods",
    "headers",
    "strip_path",
    "regex_priority",
    "service",
    "route",
    "upstream",
    "target",
    "weight",
    "config",
    "enabled",
    "protocols",
    "tags",
    "username",
    "custom_id",
    "cert",
    "key",
    "snis",
    "slots",
    "algorithm",
    "hash_on",
    "healthchecks",
    "id",
    "created_at",
    "instance_name",
    "ca_certificates",
    "client_certificate",
    "tls_verify",
    "colour",
];

/// Fields of the openid-connect `config`, secret ones included.
const CONFIG_FIELDS: &[&str] = &[
    "issuer",
    "auth_methods",
    "client_id",
    "client_secret",
    "client_auth",
    "client_credentials_param_type",
    "scopes",
    "scopes_required",
    "timeout",
    "leeway",
    "ssl_verify",
    "cache_tokens_salt",
    "session_secret",
    "http_proxy_authorization",
    "client_jwk",
    "redis",
    "token_post_args_names",
    "token_post_args_values",
    "upstream_headers_claims",
    "upstream_headers_names",
    "consumer_claim",
    "anonymous",
    "verify_signature",
    "nope",
];

fn secret_named(field: &str) -> bool {
    oidc_config::SECRET_FIELDS.contains(&field) || oidc_config::is_secret_key(field) || field == "key"
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 8 } else { 11 }) {
        0 => json!(rng.pick(&[-1i64, 0, 1, 80, 65535, 65536, 2_147_483_648, i64::MAX, i64::MIN])),
        1 => json!(u64::MAX),
        2 => json!(rng.pick(&[1.5, -0.0, 1e300])),
        3 => json!(rng.chance(2)),
        4 => Value::Null,
        5 => json!("x".repeat(1 + rng.below(3000))),
        6 | 7 => json!(rng.pick(STRINGS)),
        8 => Value::Array((0..rng.below(4)).map(|_| random_json(rng, depth + 1)).collect()),
        9 => json!({ "id": rng.pick(STRINGS) }),
        _ => {
            let fields = (0..rng.below(4)).map(|_| (rng.pick(STRINGS).to_string(), random_json(rng, depth + 1)));
            Value::Object(fields.collect())
        }
    }
}

/// What a caller puts in a secret-named field: the secret in every shape.
fn secret_json(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => json!(SENT_SECRET),
        1 => json!([SENT_SECRET]),
        2 => json!([SENT_SECRET, 5, REDACTED]),
        3 => json!({ "x": SENT_SECRET }),
        4 => json!([REDACTED]),
        _ => json!(REDACTED),
    }
}

fn random_config(rng: &mut Rng) -> Value {
    let mut config = Map::new();
    if rng.chance(2) {
        config.insert("issuer".into(), json!("http://127.0.0.1:9/"));
        config.insert("auth_methods".into(), json!(["client_credentials"]));
    }
    for _ in 0..rng.below(5) {
        let field = rng.pick(CONFIG_FIELDS);
        let value = match field {
            "redis" => json!({ "password": SENT_SECRET, "host": rng.pick(STRINGS) }),
            f if secret_named(f) => secret_json(rng),
            _ => random_json(rng, 1),
        };
        config.insert(field.into(), value);
    }
    Value::Object(config)
}

fn random_object(rng: &mut Rng) -> Value {
    let mut body = Map::new();
    for _ in 0..rng.below(6) {
        let field = rng.pick(FIELDS);
        let value = value_for(rng, field);
        body.insert(field.into(), value);
    }
    Value::Object(body)
}

/// A form body: dotted, bracketed and indexed names; percent junk; secrets under
/// secret-named fields only.
fn random_form(rng: &mut Rng) -> String {
    const NAMES: &[&str] = &[
        "name",
        "url",
        "host",
        "port",
        "paths",
        "paths[]",
        "paths[2]",
        "hosts[0]",
        "methods",
        "service.id",
        "service.name",
        "service[name]",
        "config.issuer",
        "config.auth_methods",
        "config.auth_methods[]",
        "config.timeout",
        "config.ssl_verify",
        "enabled",
        "tags[]",
        "target",
        "weight",
        "username",
        "a.b.c.d.e",
        "a[",
        "a]",
        "a[]b",
        "config",
        "config.redis.host",
        "headers.x-v",
        "strip_path",
        "%zz",
        "n%ffame",
    ];
    const SECRET_NAMES: &[&str] =
        &["config.client_secret", "config.client_secret[]", "config.redis.password", "config.session_secret", "key"];
    let mut pairs = Vec::new();
    for _ in 0..rng.below(8) {
        if rng.chance(3) {
            let value = rng.pick(&[SENT_SECRET, "sent-secret-9c41-marker%ff", "<redacted>", ""]);
            pairs.push(format!("{}={value}", rng.pick(SECRET_NAMES)));
        } else {
            let name = rng.pick(NAMES);
            let value = if matches!(name, "host" | "url" | "target") {
                rng.pick(&["127.0.0.1", "%5B%3A%3A1%5D", "http%3A%2F%2F127.0.0.1%3A9%2F", "a+b", "", "%ff"])
            } else {
                rng.pick(&["", "x", "80", "-1", "true", "%ff", "%zz", "a+b", "%2F", "127.0.0.1", "/a", "GET"])
            };
            pairs.push(format!("{name}={value}"));
        }
    }
    pairs.join("&")
}

/// A body of `kind` that would be accepted, then zero to two fields replaced or removed.
fn near_valid(rng: &mut Rng, kind: Kind) -> Value {
    let n = rng.below(1000);
    let mut body = match kind {
        Kind::Service => json!({ "name": format!("s{n}"), "url": format!("http://127.0.0.1:{}/x", 1 + n) }),
        Kind::Route => json!({ "name": format!("r{n}"), "paths": [format!("/p{n}")], "service": { "name": "svc" } }),
        Kind::Plugin => {
            let mut p: Value = serde_json::from_str(&plugin_body("http://127.0.0.1:9/")).unwrap();
            p["instance_name"] = json!(format!("i{n}"));
            p["route"] = json!({ "name": "r" });
            p["config"]["client_secret"] = json!([SENT_SECRET]);
            p
        }
        Kind::Upstream => json!({ "name": format!("u{n}.internal"), "slots": 100 }),
        Kind::Target => json!({ "target": format!("127.0.0.1:{}", 1 + n), "weight": n % 7 }),
        Kind::Consumer => json!({ "username": format!("c{n}"), "custom_id": format!("id{n}") }),
        Kind::Certificate | Kind::CaCertificate => json!({ "cert": "x", "key": SENT_SECRET }),
    };
    for _ in 0..rng.below(3) {
        let Value::Object(m) = &mut body else { break };
        if rng.chance(3) && !m.is_empty() {
            let k = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
            m.remove(&k);
        } else if let (true, Some(Value::Object(config))) = (rng.chance(2), m.get_mut("config")) {
            let field = rng.pick(CONFIG_FIELDS);
            let value = if secret_named(field) { secret_json(rng) } else { random_json(rng, 1) };
            config.insert(field.into(), value);
        } else {
            let field = rng.pick(FIELDS);
            let value = value_for(rng, field);
            m.insert(field.into(), value);
        }
    }
    body
}

/// A change aimed at an entity that exists, or at its collection, with a body that
/// is valid or nearly so.
fn aimed_request(rng: &mut Rng, a: &Admin) -> (String, String, Option<&'static str>, Vec<u8>) {
    let kind = rng.pick(&[Kind::Service, Kind::Route, Kind::Plugin, Kind::Upstream, Kind::Consumer, Kind::Target]);
    let body = near_valid(rng, kind).to_string().into_bytes();
    let existing = a.store.list(kind);
    let entity = (!existing.is_empty()).then(|| existing[rng.below(existing.len())].clone());
    let (method, path) = match (kind, entity) {
        (Kind::Target, Some(t)) => {
            let upstream = t.reference("upstream").unwrap_or_default().to_string();
            let method = rng.pick(&["PATCH", "PUT", "DELETE"]);
            (method, format!("/upstreams/{upstream}/targets/{}", t.id))
        }
        (Kind::Target, None) => ("POST", "/upstreams/u.internal/targets".to_string()),
        (_, Some(e)) if rng.chance(2) => {
            (rng.pick(&["PATCH", "PATCH", "PUT", "DELETE"]), format!("/{}/{}", kind.collection(), e.id))
        }
        _ => ("POST", format!("/{}", kind.collection())),
    };
    if rng.chance(4) {
        return (method.to_string(), path, Some("application/x-www-form-urlencoded"), random_form(rng).into_bytes());
    }
    (method.to_string(), path, Some("application/json"), body)
}

/// A request: method, path, content type and body, mostly well-formed enough to reach
/// the handlers, sometimes not at all.
fn random_request(rng: &mut Rng, a: &Admin) -> (String, String, Option<&'static str>, Vec<u8>) {
    if rng.chance(2) {
        return aimed_request(rng, a);
    }
    const COLLECTIONS: &[&str] =
        &["services", "routes", "plugins", "certificates", "ca_certificates", "upstreams", "targets", "consumers"];
    let ids: Vec<String> = Kind::ALL.iter().flat_map(|k| a.store.list(*k).iter().map(|e| e.id.clone())).collect();
    let key = |rng: &mut Rng| -> String {
        match rng.below(4) {
            0 if !ids.is_empty() => ids[rng.below(ids.len())].clone(),
            1 => rng.pick(&["svc", "r", "u.internal", "alice", "api.example", "p2", "127.0.0.1:9001"]).into(),
            2 => rng.pick(&["", "%2F", "%zz", "..", "%00", "%C3%A9", "00000000-0000-4000-8000-000000000000"]).into(),
            _ => rng.pick(STRINGS).replace('/', "%2F"),
        }
    };
    let path = match rng.below(10) {
        0 => format!("/{}", rng.pick(COLLECTIONS)),
        1 | 2 => format!("/{}/{}", rng.pick(COLLECTIONS), key(rng)),
        3 => format!("/{}/{}/{}", rng.pick(&["services", "routes", "upstreams"]), key(rng), rng.pick(COLLECTIONS)),
        4 => format!("/upstreams/{}/targets/{}", key(rng), rng.pick(HOSTS).replace('/', "%2F")),
        5 => format!("/upstreams/{}/{}", key(rng), rng.pick(&["health", "targets/all", "targets/x/healthy"])),
        6 => format!("/upstreams/{}/targets/{}/{}/unhealthy", key(rng), key(rng), rng.pick(&["127.0.0.1:9001", "x"])),
        7 => format!("/v2/control-planes/{}/core-entities/{}/{}", key(rng), rng.pick(COLLECTIONS), key(rng)),
        8 => rng.pick(&["/config", "/config/", "/", "/status", "/plugins/enabled", "//", "/nope"]).to_string(),
        _ => format!("/{}/{}/{}/{}/{}", key(rng), key(rng), key(rng), key(rng), key(rng)),
    };
    let method = rng.pick(&["GET", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "OPTIONS", "BREW", ""]);
    let (content_type, body) = match rng.below(9) {
        0..=2 => (Some("application/json"), random_object(rng).to_string().into_bytes()),
        3 | 8 => (Some("application/x-www-form-urlencoded"), random_form(rng).into_bytes()),
        4 => {
            let value = random_object(rng).to_string();
            let body = format!("--B\r\ncontent-disposition: form-data; name=\"config\"\r\n\r\n{value}\r\n--B--\r\n");
            (Some(rng.pick(&["multipart/form-data; boundary=B", "multipart/form-data"])), body.into_bytes())
        }
        5 => {
            // Not an object, not JSON, nested past serde_json's limit, or bytes.
            let body = match rng.below(5) {
                0 => json!([random_object(rng)]).to_string(),
                1 => random_object(rng).to_string()[..1].to_string(),
                2 => format!("{}1{}", "[".repeat(200), "]".repeat(200)),
                3 => "{\"port\": 1e400}".to_string(),
                _ => String::from_utf8_lossy(&(0..rng.below(40)).map(|_| rng.next() as u8).collect::<Vec<_>>())
                    .into_owned(),
            };
            (rng.pick(&[Some("application/json"), None, Some("text/plain")]), body.into_bytes())
        }
        6 => {
            // A declarative document, as POST /config takes it.
            let doc = json!({ "_format_version": "3.0", rng.pick(COLLECTIONS): [random_object(rng)] });
            (rng.pick(&[Some("application/json"), Some("text/yaml")]), doc.to_string().into_bytes())
        }
        _ => (None, vec![0xff, 0xfe, b'{']),
    };
    (method.to_string(), path, content_type, body)
}

/// Random requests (aimed at existing entities or not; JSON, form, multipart, junk;
/// whole documents for POST /config) against a store holding secrets: never a 5xx, an
/// error always says what is wrong, a refused request (or a GET) changes neither the
/// store nor the running snapshot, and no answer shows a stored or a sent secret.
#[test]
fn random_requests_never_answer_5xx_and_a_refused_one_changes_nothing() {
    let mut rng = Rng(0xad_3141_5926_5358);
    let (mut a, key) = seeded();
    let key_lines: Vec<String> = key.lines().filter(|l| !l.starts_with("-----")).map(str::to_string).collect();
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..600 {
        if i % 150 == 149 {
            // Back to a full store now and then, as deletes and POST /config empty it.
            a = seeded().0;
        }
        let (method, path, content_type, body) = random_request(&mut rng, &a);
        let (store, running) = (a.store.clone(), a.shared.load_full());
        let req = Request { method: &method, path: &path, content_type, body: &body };
        let r = handle(&mut a, &req);
        let shown = String::from_utf8_lossy(&r.body);
        let case =
            format!("{method} {path} ({content_type:?}) {:?} -> {} {shown}", String::from_utf8_lossy(&body), r.status);
        assert!((200..500).contains(&r.status), "client input is never a 5xx: {case}");
        if r.status >= 400 {
            refused += 1;
            let message = r.value()["message"].as_str().map(str::to_string);
            assert!(message.is_some_and(|m| !m.is_empty()), "an error says what is wrong: {case}");
        } else {
            accepted += 1;
        }
        if r.status >= 400 || method == "GET" {
            assert!(a.store == store, "the store changed: {case}");
            assert!(Arc::ptr_eq(&running, &a.shared.load_full()), "the running snapshot changed: {case}");
        }
        assert!(!shown.contains(SECRET) && !shown.contains(SENT_SECRET), "a secret in the answer: {case}");
        assert!(!key_lines.iter().any(|l| shown.contains(l.as_str())), "a private key in the answer: {case}");
    }
    assert!(accepted > 80 && refused > 250, "{accepted} accepted, {refused} refused");
}
