//! Loading decK files end to end: templating, YAML, validation. Every rejection the
//! loader makes is asserted here with its message and its `file:line:col`.

use std::path::Path;
use std::time::Duration;

use ringgate::config::{load_file, load_str, Config, PathHandling, PluginScope, Protocol, RoutePath};

fn env(name: &str) -> Option<String> {
    match name {
        "DECK_ISSUER" => Some("https://idp.example.com/realms/demo".into()),
        "DECK_CLIENT_ID" => Some("ringgate".into()),
        "DECK_CLIENT_SECRET" => Some("s3cret".into()),
        "DECK_PORT" => Some("8443".into()),
        "DECK_EMPTY" => Some(String::new()),
        "DECK_LINES" => Some("a: 1\nb: 2".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, Vec<String>> {
    load_str(text, "kong.yaml", &env).map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
}

fn ok(text: &str) -> Config {
    match load(text) {
        Ok(c) => c,
        Err(e) => panic!("expected the file to load, got:\n{}", e.join("\n")),
    }
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected load errors"),
        Err(e) => e,
    }
}

/// Asserts exactly one error, equal to `expected`.
fn one_error(text: &str, expected: &str) {
    assert_eq!(errors(text), vec![expected.to_string()]);
}

const HEAD: &str = "_format_version: \"3.0\"\n";

fn doc(body: &str) -> String {
    format!("{HEAD}{body}")
}

// ----- the files in config/ -----

#[test]
fn seed_file_loads_with_its_deck_variables() {
    let c = load_file_with_env("config/kong-oidc.yaml");
    assert_eq!(c.services.len(), 1);
    assert_eq!(c.services[0].host, "httpbin.konghq.com");
    assert_eq!(c.services[0].path.as_deref(), Some("/anything"));
    assert_eq!(c.routes[0].paths, vec![RoutePath::Prefix("/anything".into())]);
    assert_eq!(c.plugins.len(), 1);
    let p = &c.plugins[0];
    assert_eq!((p.name.as_str(), p.scope), ("openid-connect", PluginScope::Global));
    let issuer = p.config.get("issuer").unwrap();
    assert_eq!(issuer.value, ringgate::config::NodeValue::String("https://idp.example.com/realms/demo".into()));
    assert_eq!(c.plugins_for(Some(0), Some(0)), vec![0]);
    assert!(c.warnings.is_empty());
}

#[test]
fn minimal_file_loads() {
    let c = load_file_with_env("config/minimal.yaml");
    assert_eq!(c.services.len(), 1);
    assert_eq!((c.services[0].host.as_str(), c.services[0].port), ("127.0.0.1", 8080));
    assert_eq!(c.routes[0].service, Some(0));
}

fn load_file_with_env(rel: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    load_str(&text, rel, &env).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let e = load_file(Path::new("no/such/kong.yaml")).unwrap_err();
    assert!(e.to_string().starts_with("no/such/kong.yaml: cannot read file"), "{e}");
}

// ----- defaults and shapes -----

#[test]
fn service_and_route_defaults_follow_kong() {
    let c = ok(&doc("services:\n- name: s\n  host: example.com\n  routes:\n  - paths: [/a]\n"));
    let s = &c.services[0];
    assert_eq!((s.protocol, s.port, s.retries, s.enabled), (Protocol::Http, 80, 5, true));
    assert_eq!(s.connect_timeout, Duration::from_millis(60_000));
    assert_eq!(s.read_timeout, Duration::from_millis(60_000));
    assert_eq!(s.write_timeout, Duration::from_millis(60_000));
    let r = &c.routes[0];
    assert_eq!(r.protocols, vec![Protocol::Http, Protocol::Https]);
    assert!(r.strip_path && !r.preserve_host);
    assert_eq!((r.regex_priority, r.path_handling, r.https_redirect_status_code), (0, PathHandling::V0, 426));
}

#[test]
fn https_url_defaults_to_port_443() {
    let c = ok(&doc("services:\n- url: https://api.example.com/v1\n"));
    assert_eq!((c.services[0].protocol, c.services[0].port), (Protocol::Https, 443));
    assert_eq!(c.services[0].path.as_deref(), Some("/v1"));
}

#[test]
fn route_values_are_normalised() {
    let c =
        ok(&doc("routes:\n- methods: [get, Post]\n  hosts: [API.Example.com, '*.example.org', 'example.*:8080']\n  \
         paths: [/a, '~/b/\\d+$']\n  headers:\n    X-Version: [v1, v2]\n"));
    let r = &c.routes[0];
    assert_eq!(r.methods, vec!["GET", "POST"]);
    assert_eq!(r.hosts, vec!["api.example.com", "*.example.org", "example.*:8080"]);
    assert_eq!(r.paths, vec![RoutePath::Prefix("/a".into()), RoutePath::Regex("/b/\\d+$".into())]);
    assert_eq!(r.headers, vec![("x-version".to_string(), vec!["v1".to_string(), "v2".to_string()])]);
    assert_eq!(r.service, None);
}

#[test]
fn top_level_route_and_plugins_resolve_by_name_and_id() {
    let c = ok(&doc("services:\n- name: s1\n  host: a\n- id: 6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c\n  host: b\n\
         routes:\n- name: r1\n  service: s1\n  paths: [/x]\n\
         - name: r2\n  service:\n    id: 6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c\n  paths: [/y]\n\
         plugins:\n- name: openid-connect\n  service: s1\n- name: openid-connect\n  route: r2\n\
         - name: openid-connect\n  route:\n    name: r1\n"));
    assert_eq!(c.routes[0].service, Some(0));
    assert_eq!(c.routes[1].service, Some(1));
    assert_eq!(c.plugins[0].scope, PluginScope::Service(0));
    assert_eq!(c.plugins[1].scope, PluginScope::Route(1));
    assert_eq!(c.plugins[2].scope, PluginScope::Route(0));
}

#[test]
fn nested_plugins_take_their_parent_scope() {
    let c =
        ok(&doc("services:\n- name: s\n  host: a\n  plugins:\n  - name: openid-connect\n  routes:\n  - name: r\n    \
         paths: [/]\n    plugins:\n    - name: openid-connect\n      enabled: false\n"));
    assert_eq!(c.plugins[0].scope, PluginScope::Service(0));
    assert_eq!(c.plugins[1].scope, PluginScope::Route(0));
    assert!(!c.plugins[1].enabled);
    assert_eq!(c.plugins[0].protocols, vec!["grpc", "grpcs", "http", "https"]);
}

// ----- templating end to end -----

#[test]
fn templated_integer_becomes_a_yaml_integer() {
    let c = ok(&doc("services:\n- host: a\n  port: ${{ env \"DECK_PORT\" | toInt }}\n"));
    assert_eq!(c.services[0].port, 8443);
}

#[test]
fn unset_variable_error_points_at_the_action() {
    one_error(
        &doc("services:\n- host: ${{ env \"DECK_HOST\" }}\n"),
        "kong.yaml:3:13: environment variable 'DECK_HOST' present in state file but not set",
    );
}

#[test]
fn variable_without_prefix_is_rejected() {
    one_error(
        &doc("services:\n- host: ${{ env \"HOST\" }}\n"),
        "kong.yaml:3:13: environment variables in the state file must be prefixed with 'DECK_', found: 'HOST'",
    );
}

#[test]
fn empty_variable_renders_as_empty_string() {
    let c = ok(&doc("services:\n- host: a\n  name: \"${{ env \"DECK_EMPTY\" }}x\"\n"));
    assert_eq!(c.services[0].name.as_deref(), Some("x"));
}

#[test]
fn errors_after_a_multiline_expansion_keep_source_lines() {
    // DECK_LINES adds a line to the rendered text; the bad port is still line 6.
    let text =
        doc("_info:\n  defaults: {}\nx:\n  ${{ env \"DECK_LINES\" | indent 2 }}\nservices:\n- {host: a, port: 0}\n");
    let e = errors(&text);
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:1: unknown top-level key 'x'".to_string(),
            "kong.yaml:7:19: 'port' must be an integer from 1 to 65535, found 0".to_string(),
        ]
    );
}

#[test]
fn errors_inside_a_substituted_value_point_at_the_action() {
    // The duplicate key comes from the variable's second line.
    let e = errors(&doc("services:\n- host: a\n  ${{ env \"DECK_LINES\" | indent 2 }}\n"));
    assert_eq!(e, vec!["kong.yaml:4:3: unknown key 'a' in a service", "kong.yaml:4:3: unknown key 'b' in a service"]);
}

#[test]
fn trim_markers_join_lines() {
    let c = ok(&doc("services:\n- host: a\n  name: a  \n    ${{- env \"DECK_PORT\" -}}  \n  x\n"));
    assert_eq!(c.services[0].name.as_deref(), Some("a8443x"));
}

// ----- top level -----

#[test]
fn missing_format_version_is_an_error() {
    one_error(
        "services: []\n",
        "kong.yaml:1:1: missing _format_version; decK 3.0 files start with _format_version: \"3.0\"",
    );
}

#[test]
fn old_format_version_says_to_convert() {
    one_error(
        "_format_version: \"1.1\"\n",
        "kong.yaml:1:18: _format_version \"1.1\" is a decK file for Kong 2.x; convert it with \
         'deck file convert --from kong-gateway-2.x --to kong-gateway-3.x'",
    );
}

#[test]
fn unquoted_format_version_is_an_error() {
    one_error("_format_version: 3.0\n", "kong.yaml:1:18: _format_version must be the string \"3.0\" (quote it)");
}

#[test]
fn empty_file_is_an_error() {
    one_error("", "kong.yaml:1:1: the file is empty; a decK file starts with _format_version: \"3.0\"");
}

#[test]
fn unknown_top_level_key_is_an_error() {
    one_error(&doc("servics: []\n"), "kong.yaml:2:1: unknown top-level key 'servics'");
}

// ----- upstreams and targets -----

#[test]
fn upstream_example_file_loads_with_its_targets() {
    let c = load_file_with_env("config/kong-upstreams.yaml");
    assert_eq!(c.upstreams.len(), 1);
    assert_eq!((c.upstreams[0].name.as_str(), c.upstreams[0].slots), ("orders.internal", 10_000));
    let t: Vec<_> = c.targets.iter().map(|t| (t.upstream, t.host.as_str(), t.port, t.weight)).collect();
    assert_eq!(t, vec![(0, "127.0.0.1", 8081, 300), (0, "127.0.0.1", 8082, 100)]);
    assert_eq!(c.services[0].upstream, Some(0));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn targets_take_kongs_defaults_and_every_address_form() {
    let lc = ok(&doc("upstreams:\n- name: u\n  algorithm: least-connections\n"));
    assert_eq!(lc.upstreams[0].algorithm, ringgate::config::Algorithm::LeastConnections);
    let c = ok(&doc("upstreams:\n- name: u\n  host_header: api.internal\n  targets:\n  - target: a.internal\n  \
                     - target: '[::1]:9000'\n    weight: 0\n  - target: '::2'\n  - target: 10.0.0.1:80\n\
                     services:\n- host: u\n  routes: [{paths: [/]}]\n- host: other\n  routes: [{paths: [/o]}]\n"));
    let t: Vec<_> = c.targets.iter().map(|t| (t.host.as_str(), t.port, t.weight)).collect();
    assert_eq!(t, vec![("a.internal", 8000, 100), ("::1", 9000, 0), ("::2", 8000, 100), ("10.0.0.1", 80, 100)]);
    assert_eq!(c.targets[1].address(), "[::1]:9000");
    assert_eq!(c.upstreams[0].host_header.as_deref(), Some("api.internal"));
    assert_eq!((c.services[0].upstream, c.services[1].upstream), (Some(0), None));
}

#[test]
fn top_level_targets_name_their_upstream() {
    let c = ok(&doc("upstreams:\n- name: a\n- name: b\n  id: 1c6ef3b2-46b4-4b3c-9e3e-5f2f6c7a8b9d\n\
                     targets:\n- target: x:1\n  upstream: b\n- target: y:2\n  upstream: {id: 1c6ef3b2-46b4-4b3c-9e3e-5f2f6c7a8b9d}\n"));
    assert_eq!(c.targets.iter().map(|t| t.upstream).collect::<Vec<_>>(), vec![1, 1]);
    // Targets are grouped by upstream, in file order within each.
    let c = ok(&doc("upstreams:\n- name: a\n  targets: [{target: 'n:1'}]\n- name: b\n\
                     targets:\n- {target: 'x:1', upstream: b}\n- {target: 'y:1', upstream: a}\n- {target: 'z:1', upstream: b}\n"));
    let hosts = |u: usize| c.targets_of(u).iter().map(|t| t.host.as_str()).collect::<Vec<_>>();
    assert_eq!((hosts(0), hosts(1)), (vec!["n", "y"], vec!["x", "z"]));
    let e = errors(&doc("targets:\n- target: x:1\n  upstream: nope\n- target: y:1\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:13: no upstream named (or with id) 'nope'",
            "kong.yaml:5:3: a top-level target needs 'upstream' (or nest it under its upstream)",
        ]
    );
}

#[test]
fn upstream_and_target_mistakes_are_errors() {
    let e = errors(&doc(
        "upstreams:\n- name: u\n  slots: 5\n  targets:\n  - target: a:0\n  - weight: 70000\n  \
                         - target: b:1\n  - target: b:1\n    upstream: u\n- name: u\n- name: 'bad host'\n- slots: 10\n",
    ));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:10: 'slots' must be an integer from 10 to 65536, found 5",
            "kong.yaml:6:13: invalid target 'a:0': invalid port '0'",
            "kong.yaml:7:5: a target needs 'target'",
            "kong.yaml:7:13: 'weight' must be an integer from 0 to 65535, found 70000",
            "kong.yaml:9:5: target 'b:1' is listed twice for upstream 'u' (first at 8:5)",
            "kong.yaml:10:5: a target nested under an upstream must not name an upstream",
            "kong.yaml:11:3: duplicate upstream name 'u' (first at 3:3)",
            "kong.yaml:12:9: invalid host 'bad host'",
            "kong.yaml:13:3: an upstream needs a 'name'",
        ]
    );
}

#[test]
fn cookie_hashing_takes_a_cookie_name_and_path_and_no_fallback() {
    use ringgate::config::HashOn;
    let c = ok(&doc("upstreams:\n- name: a\n  algorithm: consistent-hashing\n  hash_on: cookie\n  \
                     hash_on_cookie: route_id\n  hash_on_cookie_path: /app\n- name: b\n  algorithm: consistent-hashing\n  \
                     hash_on: ip\n  hash_fallback: cookie\n  hash_on_cookie: sid\n"));
    assert_eq!(c.upstreams[0].hash_on, HashOn::Cookie);
    assert_eq!(c.upstreams[0].hash_on_cookie.as_deref(), Some("route_id"));
    assert_eq!(c.upstreams[0].hash_on_cookie_path, "/app");
    assert_eq!((&c.upstreams[1].hash_on, &c.upstreams[1].hash_fallback), (&HashOn::Ip, &HashOn::Cookie));
    assert_eq!(c.upstreams[1].hash_on_cookie_path, "/", "Kong's default path");
    let e = errors(&doc("upstreams:\n- name: a\n  algorithm: consistent-hashing\n  hash_on: cookie\n  \
                         hash_on_cookie: sid\n  hash_fallback: ip\n- name: b\n  hash_on_cookie: 'a b'\n  \
                         hash_on_cookie_path: 'x;y'\n- name: c\n  hash_on_cookie_path: '/a b'\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:7:18: 'hash_fallback' must be 'none' when 'hash_on' is 'cookie'",
            "kong.yaml:9:19: 'hash_on_cookie' is not a cookie name: 'a b'",
            "kong.yaml:10:24: 'hash_on_cookie_path' must be a path starting with '/', without ';' or spaces: 'x;y'",
            "kong.yaml:12:24: 'hash_on_cookie_path' must be a path starting with '/', without ';' or spaces: '/a b'",
        ]
    );
}

#[test]
fn sticky_sessions_need_their_cookie() {
    use ringgate::config::Algorithm;
    let c = ok(&doc("upstreams:\n- name: a\n  algorithm: sticky-sessions\n  sticky_sessions_cookie: srv\n  \
                     sticky_sessions_cookie_path: /api\n"));
    assert_eq!(c.upstreams[0].algorithm, Algorithm::StickySessions);
    assert_eq!(c.upstreams[0].sticky_sessions_cookie.as_deref(), Some("srv"));
    assert_eq!(c.upstreams[0].sticky_sessions_cookie_path, "/api");
    let e = errors(&doc(
        "upstreams:\n- name: a\n  algorithm: sticky-sessions\n- name: b\n  algorithm: sticky-sessions\n  \
                         sticky_sessions_cookie: 'x=y'\n  sticky_sessions_cookie_path: api\n",
    ));
    assert_eq!(
        e,
        vec![
            "kong.yaml:3:3: 'algorithm: sticky-sessions' needs 'sticky_sessions_cookie'",
            // The refused name leaves the upstream without one.
            "kong.yaml:5:3: 'algorithm: sticky-sessions' needs 'sticky_sessions_cookie'",
            "kong.yaml:7:27: 'sticky_sessions_cookie' is not a cookie name: 'x=y'",
            "kong.yaml:8:32: 'sticky_sessions_cookie_path' must be a path starting with '/', without ';' or spaces: 'api'",
        ]
    );
}

#[test]
fn balancing_ringgate_does_not_do_is_an_error() {
    let c = ok(&doc("upstreams:\n- name: a\n  algorithm: consistent-hashing\n  hash_on: header\n  hash_on_header: X-User\n  \
                     hash_fallback: query_arg\n  hash_fallback_query_arg: user\n- name: b\n  algorithm: consistent-hashing\n  \
                     hash_on: ip\n  hash_fallback: path\n"));
    use ringgate::config::HashOn;
    assert_eq!(c.upstreams[0].hash_on, HashOn::Header("x-user".into()));
    assert_eq!(c.upstreams[0].hash_fallback, HashOn::QueryArg("user".into()));
    assert_eq!((&c.upstreams[1].hash_on, &c.upstreams[1].hash_fallback), (&HashOn::Ip, &HashOn::Path));
    let c = ok(&doc("upstreams:\n- name: a\n  algorithm: consistent-hashing\n  hash_on: uri_capture\n  \
                     hash_on_uri_capture: user\n  hash_fallback: uri_capture\n  hash_fallback_uri_capture: '1'\n"));
    assert_eq!(c.upstreams[0].hash_on, HashOn::UriCapture("user".into()));
    assert_eq!(c.upstreams[0].hash_fallback, HashOn::UriCapture("1".into()));
    let c =
        ok(&doc("upstreams:\n- name: a\n  algorithm: consistent-hashing\n  hash_on: consumer\n  hash_fallback: ip\n"));
    assert_eq!((&c.upstreams[0].hash_on, &c.upstreams[0].hash_fallback), (&HashOn::Consumer, &HashOn::Ip));
    let e = errors(&doc(
        "upstreams:\n- name: a\n  algorithm: consistent-hashing\n  hash_on: header\n  hash_fallback: cookie\n\
                         - name: b\n  hash_on: ip\n- name: c\n  algorithm: consistent-hashing\n  hash_on: uri_capture\n\
                         - name: d\n  hash_on: consumer\n",
    ));
    assert_eq!(
        e,
        vec![
            "kong.yaml:5:12: 'hash_on: header' needs 'hash_on_header'",
            "kong.yaml:6:18: 'hash_fallback: cookie' needs 'hash_on_cookie'",
            "kong.yaml:8:12: 'hash_on: ip' needs 'algorithm: consistent-hashing'",
            "kong.yaml:11:12: 'hash_on: uri_capture' needs 'hash_on_uri_capture'",
            "kong.yaml:13:12: 'hash_on: consumer' needs 'algorithm: consistent-hashing'",
        ]
    );
    let e = errors(&doc("upstreams:\n- name: a\n  algorithm: quickest\n- name: b\n  hash_on: ip\n\
                         - name: c\n  client_certificate: {id: 1c6ef3b2-46b4-4b3c-9e3e-5f2f6c7a8b9d}\n\
                         - name: d\n  algorithm: fastest\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:14: unknown algorithm 'quickest'",
            "kong.yaml:6:12: 'hash_on: ip' needs 'algorithm: consistent-hashing'",
            "kong.yaml:10:14: unknown algorithm 'fastest'",
        ]
    );
}

#[test]
fn health_checks_load_with_kongs_defaults_and_every_field() {
    let c = ok(&doc("upstreams:\n- name: a\n  healthchecks:\n    threshold: 25\n    active:\n      type: tcp\n      \
                     timeout: 0.5\n      concurrency: 2\n      http_path: /healthz\n      headers: {x-probe: [yes]}\n      \
                     healthy: {interval: 2, successes: 3, http_statuses: [200]}\n      \
                     unhealthy: {interval: 0.25, tcp_failures: 1, timeouts: 2, http_failures: 3}\n    \
                     passive:\n      unhealthy: {http_failures: 5, http_statuses: [500, 502]}\n- name: b\n"));
    let (a, b) = (&c.upstreams[0].healthchecks, &c.upstreams[1].healthchecks);
    assert!(
        a.active.kind == ringgate::config::ProbeKind::Tcp && a.active.enabled() && a.passive.enabled() && a.enabled()
    );
    assert_eq!((a.active.timeout, a.active.concurrency), (Duration::from_millis(500), 2));
    assert_eq!(a.active.http_path, "/healthz");
    assert_eq!(a.active.headers, vec![("x-probe".to_string(), vec!["yes".to_string()])]);
    assert_eq!((a.active.healthy.interval, a.active.healthy.successes), (Duration::from_secs(2), 3));
    assert_eq!(a.active.unhealthy.interval, Duration::from_millis(250));
    let u = &a.active.unhealthy;
    assert_eq!((u.tcp_failures, u.timeouts, u.http_failures), (1, 2, 3));
    assert_eq!(a.passive.unhealthy.http_statuses, vec![500, 502]);
    assert_eq!(a.passive.healthy.http_statuses.len(), 19, "Kong's default list");
    assert_eq!(a.threshold, 25.0);
    assert!(!b.enabled(), "Kong's defaults: every check off");
    assert_eq!(b.active.unhealthy.http_statuses, vec![429, 404, 500, 501, 502, 503, 504, 505]);
}

#[test]
fn https_health_checks_take_a_server_name_and_may_skip_verification() {
    let c = ok(&doc("upstreams:\n- name: a\n  healthchecks:\n    active:\n      type: https\n      \
                     https_sni: api.internal\n      https_verify_certificate: false\n- name: b\n  healthchecks:\n    \
                     active: {type: https}\n"));
    let (a, b) = (&c.upstreams[0].healthchecks.active, &c.upstreams[1].healthchecks.active);
    assert_eq!(a.kind, ringgate::config::ProbeKind::Https);
    assert_eq!((a.https_sni.as_deref(), a.https_verify_certificate), (Some("api.internal"), false));
    assert_eq!((b.https_sni.as_deref(), b.https_verify_certificate), (None, true), "Kong's defaults");
}

#[test]
fn health_check_mistakes_are_errors() {
    let e =
        errors(&doc("upstreams:\n- name: a\n  healthchecks:\n    treshold: 0\n    active:\n      type: grpc\n      \
                         http_path: health\n      healthy: {interval: -1, successes: 300}\n    \
                         passive:\n      unhealthy: {interval: 5, http_statuses: [99]}\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:5:5: unknown key 'treshold' in 'healthchecks'",
            "kong.yaml:7:13: active health checks of type 'grpc' are not supported yet (http, https and tcp are)",
            "kong.yaml:8:18: 'http_path' must be a path starting with '/', found 'health'",
            "kong.yaml:9:27: 'interval' must be a number from 0 to 65535, found -1",
            "kong.yaml:9:42: 'successes' must be an integer from 0 to 255, found 300",
            "kong.yaml:11:19: unknown key 'interval' in 'healthchecks.passive.unhealthy'",
            "kong.yaml:11:48: 'http_statuses' must be an integer from 100 to 999, found 99",
        ]
    );
}

#[test]
fn vaults_are_an_error_when_present() {
    let e = errors(&doc("vaults:\n- name: env\n"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("kong.yaml:2:1: 'vaults' is not supported yet"), "{}", e[0]);
}

#[test]
fn certificates_and_ca_certificates_are_read_in_decks_shapes() {
    let c = ok(&doc(
        "certificates:\n- id: 6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c\n  cert: CERT\n  key: KEY\n  snis:\n  - name: API.example.com\n  - '*.example.org'\n  tags: [edge]\nca_certificates:\n- cert: CA\n  cert_digest: abc\n",
    ));
    assert_eq!(c.certificates.len(), 1);
    let cert = &c.certificates[0];
    assert_eq!((cert.cert.as_str(), cert.key.as_str()), ("CERT", "KEY"));
    let names: Vec<&str> = cert.snis.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["api.example.com", "*.example.org"]);
    assert!(!format!("{cert:?}").contains("KEY"), "the key is never printed");
    assert_eq!(c.ca_certificates[0].cert, "CA");
    let e = errors(&doc("certificates:\n- snis: [a]\n  cert_alt: x\n  bogus: 1\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:3:3: a certificate needs 'cert' (PEM)",
            "kong.yaml:3:3: a certificate needs 'key' (PEM)",
            "kong.yaml:3:3: a certificate needs both 'cert_alt' and 'key_alt', or neither",
            "kong.yaml:5:3: unknown key 'bogus' in a certificate",
        ]
    );
}

#[test]
fn sni_wildcards_other_than_a_leading_star_dot_are_refused() {
    let e = errors(&doc("certificates:\n- cert: C\n  key: K\n  snis: ['*.ok.example', 'example.*', '*', 'a.*.b']\n"));
    assert_eq!(e.len(), 3, "{e:?}");
    for (e, name) in e.iter().zip(["example.*", "*", "a.*.b"]) {
        assert!(e.ends_with(&format!("SNI '{name}': only a leading '*.' wildcard is supported")), "{e}");
    }
}

#[test]
fn certificate_ids_are_unique_per_collection() {
    let id = "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";
    let e = errors(&doc(&format!(
        "certificates:\n- {{id: {id}, cert: C, key: K}}\n- {{id: {id}, cert: D, key: L}}\nca_certificates:\n- {{id: {id}, cert: A}}\n- {{id: {id}, cert: B}}\n"
    )));
    assert_eq!(
        e,
        vec![
            format!("kong.yaml:4:3: duplicate certificate id '{id}' (first at 3:3)"),
            format!("kong.yaml:7:3: duplicate CA certificate id '{id}' (first at 6:3)"),
        ]
    );
}

#[test]
fn consumers_load_with_their_identity_and_a_stable_id_when_none_is_written() {
    let id = "0a6f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    let c = ok(&doc(&format!(
        "consumers:\n- username: alice\n  custom_id: A-1\n  tags: [team-a]\n- id: {id}\n  custom_id: bob-77\n\
         - username: carol\n  keyauth_credentials:\n  - key: k\n"
    )));
    assert_eq!(c.consumers.len(), 3);
    let alice = &c.consumers[0];
    assert_eq!((alice.username.as_deref(), alice.custom_id.as_deref()), (Some("alice"), Some("A-1")));
    assert_eq!(alice.tags, ["team-a"]);
    assert!(!alice.id_given);
    let shape: Vec<usize> = alice.id.split('-').map(str::len).collect();
    assert_eq!(shape, [8, 4, 4, 4, 12], "{}", alice.id);
    assert!(alice.id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()), "{}", alice.id);
    assert_eq!(&alice.id[14..15], "5", "a name-based UUID: {}", alice.id);
    assert_eq!((c.consumers[1].id.as_str(), c.consumers[1].id_given), (id, true));
    // The same name gives the same id on every load (and node); another name another.
    let again = ok(&doc("consumers:\n- username: alice\n"));
    assert_eq!(again.consumers[0].id, alice.id);
    assert_ne!(c.consumers[2].id, alice.id);
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        vec!["kong.yaml:9:3: 'keyauth_credentials' is ignored: no ringgate plugin reads consumer credentials"]
    );
}

#[test]
fn consumers_need_a_unique_username_or_custom_id_fit_for_a_header() {
    let id = "0a6f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    let e = errors(&doc(&format!(
        "consumers:\n- tags: [x]\n- username: alice\n- username: alice\n- custom_id: c\n- custom_id: c\n\
         - {{id: {id}, username: u1}}\n- {{id: {}, username: u2}}\n- username: \"a\\r\\nX-Evil: 1\"\n- username: ''\n- 7\n",
        id.to_uppercase()
    )));
    assert_eq!(
        e,
        vec![
            "kong.yaml:3:3: a consumer needs 'username' or 'custom_id'".to_string(),
            "kong.yaml:5:3: duplicate consumer username 'alice' (first at 4:3)".into(),
            "kong.yaml:7:3: duplicate consumer custom_id 'c' (first at 6:3)".into(),
            format!("kong.yaml:9:3: duplicate consumer id '{id}' (first at 8:3)"),
            "kong.yaml:10:3: a consumer needs 'username' or 'custom_id'".into(),
            "kong.yaml:10:13: 'username' must be non-empty text without control characters".into(),
            "kong.yaml:11:3: a consumer needs 'username' or 'custom_id'".into(),
            "kong.yaml:11:13: 'username' must be non-empty text without control characters".into(),
            "kong.yaml:12:3: a consumer must be a map, found an integer".into(),
        ]
    );
}

#[test]
fn a_derived_consumer_id_may_not_be_another_consumers_written_id() {
    let derived = ringgate::config::consumer_id_for(Some("alice"), None);
    let e =
        errors(&doc(&format!("consumers:\n- id: {}\n  username: bob\n- username: alice\n", derived.to_uppercase())));
    assert_eq!(
        e,
        vec![format!(
            "kong.yaml:5:3: this consumer's derived id '{derived}' is written as the id of the consumer at 3:3; give this one an 'id'"
        )]
    );
}

#[test]
fn consumer_groups_alone_are_a_warning() {
    let c = ok(&doc("consumer_groups:\n- name: gold\n"));
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w, vec!["kong.yaml:2:1: 'consumer_groups' are ignored: no ringgate plugin reads consumer groups yet"]);
}

#[test]
fn consumer_plugins_are_an_error() {
    let e = errors(&doc("consumers:\n- username: alice\n  plugins:\n  - name: rate-limiting\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:3: 'plugins' is not supported yet: plugins scoped to consumers or consumer groups would not apply"
        ]
    );
}

#[test]
fn info_select_tags_are_a_warning_and_defaults_an_error() {
    let c = ok(&doc("_info:\n  select_tags: [team-a]\n_workspace: default\n"));
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        vec![
            "kong.yaml:3:3: 'select_tags' is ignored: tags only scope what decK syncs",
            "kong.yaml:4:1: '_workspace' is ignored: ringgate serves one workspace and has no control plane",
        ]
    );
    let e = errors(&doc("_info:\n  defaults:\n    service: {read_timeout: 5}\n"));
    assert!(e[0].starts_with("kong.yaml:3:3: 'defaults' is not supported yet"), "{}", e[0]);
}

// ----- YAML level -----

#[test]
fn duplicate_key_is_an_error() {
    one_error(&doc("services:\n- host: a\n  host: b\n"), "kong.yaml:4:3: duplicate key 'host' (first defined at 3:3)");
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let e = errors(&doc("services:\n- host: [a\n"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("kong.yaml:") && e[0].contains("invalid YAML"), "{}", e[0]);
}

// ----- services -----

#[test]
fn service_unknown_key_is_an_error_at_the_key() {
    one_error(&doc("services:\n- host: a\n  hots: b\n"), "kong.yaml:4:3: unknown key 'hots' in a service");
}

#[test]
fn service_url_conflicts_with_explicit_parts() {
    one_error(
        &doc("services:\n- url: http://a/\n  port: 8080\n"),
        "kong.yaml:4:3: 'port' conflicts with 'url' (given at 3:3); give one or the other",
    );
}

#[test]
fn service_invalid_url_is_an_error() {
    one_error(
        &doc("services:\n- url: http://a/b?c=d\n"),
        "kong.yaml:3:8: invalid 'url' 'http://a/b?c=d': a query or fragment has no place in a service",
    );
}

#[test]
fn service_other_protocols_are_not_supported_yet() {
    one_error(
        &doc("services:\n- host: a\n  protocol: grpc\n"),
        "kong.yaml:4:13: protocol 'grpc' is not supported yet (ringgate proxies http and https)",
    );
    one_error(
        &doc("services:\n- url: wss://a\n"),
        "kong.yaml:3:8: protocol 'wss' is not supported yet (ringgate proxies http and https)",
    );
    one_error(
        &doc("services:\n- host: a\n  protocol: gopher\n"),
        "kong.yaml:4:13: unknown protocol 'gopher' (expected http or https)",
    );
}

#[test]
fn service_port_out_of_range_is_an_error() {
    one_error(
        &doc("services:\n- host: a\n  port: 70000\n"),
        "kong.yaml:4:9: 'port' must be an integer from 1 to 65535, found 70000",
    );
}

#[test]
fn service_path_must_start_with_a_slash() {
    one_error(&doc("services:\n- host: a\n  path: v1\n"), "kong.yaml:4:9: 'path' must start with '/', found 'v1'");
}

#[test]
fn service_timeouts_and_retries_are_range_checked() {
    let e = errors(&doc("services:\n- host: a\n  read_timeout: 0\n  retries: 40000\n  connect_timeout: fast\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:17: 'read_timeout' must be an integer from 1 to 2147483646, found 0",
            "kong.yaml:5:12: 'retries' must be an integer from 0 to 32767, found 40000",
            "kong.yaml:6:20: 'connect_timeout' must be an integer from 1 to 2147483646, found a string",
        ]
    );
}

#[test]
fn service_wrong_types_say_what_was_expected() {
    let e = errors(&doc("services:\n- host: a\n  name: 12\n  enabled: yes\n  tags: [1]\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:9: 'name' must be a string, found an integer",
            "kong.yaml:5:12: 'enabled' must be true or false, found a string",
            "kong.yaml:6:10: 'tags' entries must be strings, found an integer",
        ]
    );
}

#[test]
fn service_without_host_is_an_error() {
    one_error(&doc("services:\n- name: s\n"), "kong.yaml:3:3: a service needs 'host' or 'url'");
}

#[test]
fn service_id_must_be_a_uuid() {
    one_error(&doc("services:\n- host: a\n  id: abc\n"), "kong.yaml:4:7: 'id' must be a UUID, found 'abc'");
}

#[test]
fn service_tls_keys_follow_the_warning_error_rule() {
    let c = ok(&doc("services:\n- host: a\n  tls_verify: true\n  tls_verify_depth: 3\n"));
    assert_eq!(
        c.warnings[0].to_string(),
        "kong.yaml:5:3: 'tls_verify_depth' is ignored: the upstream TLS verifier applies its own limit"
    );
    assert!(c.services[0].tls_verify, "verified unless the file says otherwise");
    let c = ok(&doc(
        "services:\n- host: a\n  tls_verify: false\n  ca_certificates: [6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c]\n  \
         client_certificate: {id: 7b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c}\n",
    ));
    let s = &c.services[0];
    assert!(!s.tls_verify);
    assert_eq!(s.ca_certificates[0].0, "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c");
    assert_eq!(s.client_certificate.as_ref().map(|(id, _)| id.as_str()), Some("7b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"));
}

#[test]
fn duplicate_service_names_are_an_error() {
    one_error(
        &doc("services:\n- name: s\n  host: a\n- name: s\n  host: b\n"),
        "kong.yaml:5:3: duplicate service name 's' (first at 3:3)",
    );
}

// ----- routes -----

#[test]
fn route_without_matching_criteria_is_an_error() {
    one_error(
        &doc("routes:\n- name: r\n"),
        "kong.yaml:3:3: a route must set at least one of 'methods', 'hosts', 'headers' or 'paths'",
    );
}

#[test]
fn route_bad_path_is_an_error() {
    one_error(
        &doc("routes:\n- paths: [api]\n"),
        "kong.yaml:3:11: a path must start with '/' (or '~' for a regex), found 'api'",
    );
}

#[test]
fn route_bad_host_wildcard_is_an_error() {
    one_error(
        &doc("routes:\n- hosts: [a.*.com]\n"),
        "kong.yaml:3:11: invalid host 'a.*.com': a wildcard must be a single leading '*.' or trailing '.*'",
    );
}

#[test]
fn route_host_header_is_an_error() {
    one_error(
        &doc("routes:\n- headers:\n    Host: [a]\n"),
        "kong.yaml:4:5: 'host' is not allowed in 'headers'; use 'hosts'",
    );
}

#[test]
fn route_header_values_must_be_a_list() {
    one_error(
        &doc("routes:\n- paths: [/]\n  headers:\n    x-a: b\n"),
        "kong.yaml:5:10: header 'x-a' must have a list of values, found a string",
    );
}

#[test]
fn route_other_protocols_are_not_supported_yet() {
    one_error(
        &doc("routes:\n- paths: [/]\n  protocols: [http, grpc]\n"),
        "kong.yaml:4:21: protocol 'grpc' is not supported yet (ringgate routes http and https)",
    );
}

#[test]
fn route_redirect_code_and_path_handling_are_checked() {
    let e = errors(&doc("routes:\n- paths: [/]\n  https_redirect_status_code: 303\n  path_handling: v2\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:31: 'https_redirect_status_code' must be one of 426, 301, 302, 307, 308, found 303",
            "kong.yaml:5:18: 'path_handling' must be v0 or v1, found 'v2'",
        ]
    );
}

#[test]
fn route_snis_sources_destinations_are_errors_when_set() {
    let e =
        errors(&doc("routes:\n- paths: [/]\n  snis: [a.com]\n  sources: []\n  destinations:\n  - {ip: 10.0.0.1}\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:4:3: 'snis' is not supported yet: the route would match more traffic than written",
            "kong.yaml:6:3: 'destinations' is not supported yet: the route would match more traffic than written",
        ]
    );
}

#[test]
fn route_buffering_off_is_a_warning() {
    let c = ok(&doc("routes:\n- paths: [/]\n  request_buffering: false\n  response_buffering: true\n"));
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].to_string(), "kong.yaml:4:3: 'request_buffering: false' is ignored");
}

#[test]
fn route_with_dangling_service_is_an_error() {
    one_error(&doc("routes:\n- paths: [/]\n  service: nope\n"), "kong.yaml:4:12: no service named (or with id) 'nope'");
}

#[test]
fn nested_route_naming_a_service_is_an_error() {
    one_error(
        &doc("services:\n- name: s\n  host: a\n  routes:\n  - paths: [/]\n    service: s\n"),
        "kong.yaml:7:5: a route nested under a service must not name a service",
    );
}

#[test]
fn duplicate_route_names_are_an_error() {
    one_error(
        &doc("routes:\n- name: r\n  paths: [/a]\n- name: r\n  paths: [/b]\n"),
        "kong.yaml:5:3: duplicate route name 'r' (first at 3:3)",
    );
}

// ----- plugins -----

#[test]
fn unknown_plugin_lists_the_known_ones() {
    one_error(
        &doc("plugins:\n- name: oidc\n"),
        "kong.yaml:3:9: unknown plugin 'oidc' (ringgate knows: openid-connect)",
    );
}

#[test]
fn plugin_config_must_be_a_map() {
    one_error(
        &doc("plugins:\n- name: openid-connect\n  config: [a]\n"),
        "kong.yaml:4:11: 'config' must be a map, found a list",
    );
}

#[test]
fn plugin_consumer_scope_is_not_supported() {
    one_error(
        &doc("plugins:\n- name: openid-connect\n  consumer: alice\n"),
        "kong.yaml:4:3: plugins scoped to a consumer are not supported yet",
    );
}

#[test]
fn plugin_dangling_route_is_an_error() {
    one_error(
        &doc("plugins:\n- name: openid-connect\n  route: r9\n"),
        "kong.yaml:4:10: no route named (or with id) 'r9'",
    );
}

#[test]
fn same_plugin_twice_on_one_scope_is_an_error() {
    one_error(
        &doc("services:\n- name: s\n  host: a\n  plugins:\n  - name: openid-connect\nplugins:\n- name: openid-connect\n  service: s\n"),
        "kong.yaml:8:3: plugin 'openid-connect' is configured twice on service 's' (first at 6:5)",
    );
    one_error(
        &doc("plugins:\n- name: openid-connect\n- name: openid-connect\n"),
        "kong.yaml:4:3: plugin 'openid-connect' is configured twice globally (first at 3:3)",
    );
}

#[test]
fn plugin_without_name_is_an_error() {
    one_error(&doc("plugins:\n- enabled: true\n"), "kong.yaml:3:3: a plugin needs a 'name'");
}

#[test]
fn plugin_unknown_key_is_an_error() {
    one_error(
        &doc("plugins:\n- name: openid-connect\n  confg: {}\n"),
        "kong.yaml:4:3: unknown key 'confg' in a plugin",
    );
}

// ----- all at once -----

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let e = errors(&doc(
        "services:\n- name: s\n  hots: a\n  port: 0\n  routes:\n  - name: r\nplugins:\n- name: oidc\n  route: missing\n\
         upstreams: [{name: u, algorithm: quickest}]\n",
    ));
    assert_eq!(
        e,
        vec![
            "kong.yaml:3:3: a service needs 'host' or 'url'",
            "kong.yaml:4:3: unknown key 'hots' in a service",
            "kong.yaml:5:9: 'port' must be an integer from 1 to 65535, found 0",
            "kong.yaml:7:5: a route must set at least one of 'methods', 'hosts', 'headers' or 'paths'",
            "kong.yaml:9:9: unknown plugin 'oidc' (ringgate knows: openid-connect)",
            "kong.yaml:10:10: no route named (or with id) 'missing'",
            "kong.yaml:11:34: unknown algorithm 'quickest'",
        ]
    );
}

// ----- smaller rejections -----

#[test]
fn route_invalid_method_and_empty_regex_are_errors() {
    let e = errors(&doc("routes:\n- methods: ['GE T']\n  paths: ['~']\n"));
    assert_eq!(
        e,
        vec!["kong.yaml:3:13: invalid method 'GE T'", "kong.yaml:4:11: a regex path needs a pattern after '~'"]
    );
}

#[test]
fn route_header_without_values_is_an_error() {
    one_error(&doc("routes:\n- headers:\n    x-a: []\n"), "kong.yaml:4:10: header 'x-a' needs at least one value");
}

#[test]
fn route_expression_is_not_supported() {
    one_error(
        &doc("routes:\n- paths: [/]\n  expression: 'http.path == \"/\"'\n"),
        "kong.yaml:4:3: 'expression' is not supported yet: ringgate has the traditional router only",
    );
}

#[test]
fn plugin_scoped_to_service_and_route_is_not_supported() {
    one_error(
        &doc("services:\n- name: s\n  host: a\n  routes:\n  - {name: r, paths: [/]}\nplugins:\n- name: openid-connect\n  service: s\n  route: r\n"),
        "kong.yaml:10:3: a plugin scoped to both a service and a route is not supported yet",
    );
}

#[test]
fn nested_plugin_naming_a_service_is_an_error() {
    one_error(
        &doc("services:\n- name: s\n  host: a\n  plugins:\n  - name: openid-connect\n    service: s\n"),
        "kong.yaml:7:5: a nested plugin must not name a service; its scope is where it is nested",
    );
}

#[test]
fn duplicate_ids_are_an_error() {
    one_error(
        &doc("plugins:\n- name: openid-connect\n  id: 6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c\n  route: r\n\
             - name: openid-connect\n  id: 6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c\nroutes:\n- {name: r, paths: [/]}\n"),
        "kong.yaml:6:3: duplicate plugin id '6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c' (first at 3:3)",
    );
}

#[test]
fn plugin_shared_config_is_not_supported() {
    one_error(
        &doc("plugins:\n- name: openid-connect\n  _config: shared\n"),
        "kong.yaml:4:3: '_config' is not supported yet: write the plugin's configuration in its 'config'",
    );
}

#[test]
fn plugin_unknown_protocol_is_an_error() {
    one_error(&doc("plugins:\n- name: openid-connect\n  protocols: [htp]\n"), "kong.yaml:4:15: unknown protocol 'htp'");
}

#[test]
fn transform_false_is_a_warning() {
    let c = ok(&doc("_transform: false\n"));
    assert!(c.warnings[0].to_string().starts_with("kong.yaml:2:1: '_transform: false' has no effect"));
}

#[test]
fn anchors_are_resolved_and_merge_keys_rejected() {
    let c = ok(&doc("services:\n- name: a\n  host: h\n  tags: &t [x]\n- name: b\n  host: h\n  tags: *t\n"));
    assert_eq!(c.services[1].tags, vec!["x"]);
    one_error(
        &doc("services:\n- &s {name: a, host: h}\n- <<: *s\n  name: b\n"),
        "kong.yaml:4:3: merge keys ('<<') are not supported; write the keys out",
    );
}

#[test]
fn wrong_entity_shapes_say_what_was_expected() {
    let e = errors(&doc("services: {name: a}\nroutes:\n- just-a-string\n"));
    assert_eq!(
        e,
        vec![
            "kong.yaml:2:11: 'services' must be a list, found a map",
            "kong.yaml:4:3: a route must be a map, found a string"
        ]
    );
}
