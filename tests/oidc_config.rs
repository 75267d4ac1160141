//! The openid-connect config schema end to end: decK text through the loader, the
//! plugin's `config` through `oidc_config::compile`. Every rejection and warning class
//! is asserted with its message and its `file:line:col`.

use std::time::Duration;

use ringgate::config::load_str;
use ringgate::oidc::config::{
    compile, discovery_url, AuthMethod, BearerLocation, ClaimKind, ClientAuthMethod, CredentialLocation, HttpVersion,
    IntrospectionAccept, OidcConfig, TokenScheme,
};

const ISSUER: &str = "http://127.0.0.1:9999/realms/demo";
const SECRET: &str = "s3cret-value-never-printed";
const SALT: &str = "configured-salt-never-printed";

fn env(name: &str) -> Option<String> {
    match name {
        "DECK_ISSUER" => Some(ISSUER.into()),
        "DECK_CLIENT_ID" => Some("ringgate".into()),
        "DECK_CLIENT_SECRET" => Some(SECRET.into()),
        _ => None,
    }
}

/// Loads a decK document and compiles its first plugin; errors and warnings come back
/// as `file:line:col: message` strings.
fn compile_doc(text: &str) -> Result<(OidcConfig, Vec<String>), Vec<String>> {
    let config = load_str(text, "oidc.yaml", &env).unwrap_or_else(|e| panic!("the decK file must load:\n{e}"));
    let render = |v: Vec<ringgate::config::ConfigError>| v.into_iter().map(|e| e.to_string()).collect::<Vec<_>>();
    compile(&config.plugins[0], "oidc.yaml").map(|(c, w)| (c, render(w))).map_err(render)
}

/// A plugin whose `config` holds `body` (unindented YAML). The body's first line is
/// line 5 of the document, its keys at column 5.
fn doc(body: &str) -> String {
    let mut text = String::from("_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n");
    for line in body.lines() {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The minimal working body: issuer and client_credentials.
const BASE: &str = "issuer: https://idp.example.com/realms/demo\nauth_methods: [client_credentials]\n";

fn ok(body: &str) -> (OidcConfig, Vec<String>) {
    match compile_doc(&doc(body)) {
        Ok(r) => r,
        Err(e) => panic!("expected the config to compile, got:\n{}", e.join("\n")),
    }
}

fn errors(body: &str) -> Vec<String> {
    match compile_doc(&doc(body)) {
        Ok((c, _)) => panic!("expected errors, got {c:?}"),
        Err(e) => e,
    }
}

fn one_error(body: &str, expected: &str) {
    assert_eq!(errors(body), vec![expected.to_string()]);
}

fn one_warning(body: &str, expected: &str) {
    let (_, warnings) = ok(body);
    assert_eq!(warnings, vec![expected.to_string()]);
}

// ----- the seed file -----

#[test]
fn seed_file_compiles_with_kong_defaults() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/kong-oidc.yaml")).unwrap();
    let config = load_str(&text, "kong-oidc.yaml", &env).unwrap();
    assert_eq!(config.plugins.len(), 1);
    let (c, warnings) = compile(&config.plugins[0], "kong-oidc.yaml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    assert_eq!(c.issuer, ISSUER);
    assert_eq!(c.discovery_url, "http://127.0.0.1:9999/realms/demo/.well-known/openid-configuration");
    assert_eq!(c.auth_methods, vec![AuthMethod::ClientCredentials]);
    assert!(c.uses(AuthMethod::ClientCredentials) && !c.uses(AuthMethod::Bearer));
    assert_eq!(c.client_credentials_param_type, vec![CredentialLocation::Header]);
    assert_eq!(c.client_id, vec!["ringgate".to_string()]);
    assert_eq!(c.client_secret.len(), 1);
    assert_eq!(c.client_secret[0].expose(), SECRET);
    assert_eq!(c.client_auth, vec![ClientAuthMethod::ClientSecretPost]);
    assert_eq!(c.token_endpoint_auth_method, None);
    assert_eq!(c.configured_client_auth(), Some(ClientAuthMethod::ClientSecretPost));

    // Defaults.
    assert!(!c.using_pseudo_issuer);
    assert_eq!(c.rediscovery_lifetime, Duration::from_secs(30));
    assert!(c.discovery_headers.is_empty() && c.extra_jwks_uris.is_empty());
    assert_eq!(c.bearer_token_param_type, vec![BearerLocation::Header, BearerLocation::Query, BearerLocation::Body]);
    assert!(!c.hide_credentials);
    assert!(c.run_on_preflight);
    assert_eq!(c.client_arg, "client_id");
    assert_eq!(c.token_endpoint, None);
    assert_eq!(c.scopes, vec!["openid".to_string()]);
    assert!(c.token_post_args.is_empty() && c.token_headers.is_empty());
    assert!(!c.verify_parameters);
    assert_eq!(c.timeout, Duration::from_millis(10_000));
    assert!(c.keepalive);
    assert_eq!(c.http_version, HttpVersion::Http11);
    assert!(c.ssl_verify, "ringgate verifies the IdP's certificate by default");
    assert_eq!((c.http_proxy.as_deref(), c.https_proxy.as_deref()), (None, None));
    assert!(c.no_proxy.is_empty());
    assert!(c.cache_tokens);
    assert!(c.cache_tokens_salt.is_generated());
    assert!(c.cache_tokens_salt.expose().len() >= 32);
    assert!(!c.token_cache_key_include_scope);
    assert_eq!(c.cache_ttl, Duration::from_secs(3600));
    assert_eq!((c.cache_ttl_min, c.cache_ttl_max, c.cache_ttl_neg, c.cache_ttl_resurrect), (None, None, None, None));
    assert!(!c.ignore_signature_client_credentials);
    assert!(!c.enable_hs_signatures);
    assert_eq!(c.leeway, Duration::ZERO);
    assert!(c.issuers_allowed.is_empty() && c.scopes_required.is_empty() && c.audience_required.is_empty());
    assert_eq!(c.scopes_claim, vec!["scope".to_string()]);
    assert_eq!(c.audience_claim, vec!["aud".to_string()]);
    assert_eq!(c.credential_claim, vec!["sub".to_string()]);
    assert_eq!(c.upstream_access_token_header.name, "authorization");
    assert_eq!(c.upstream_access_token_header.scheme, Some(TokenScheme::Bearer));
    assert!(!c.display_errors);
    assert!(c.expose_error_code);
    assert_eq!(c.unauthorized_error_message, "Unauthorized");
    assert_eq!(c.forbidden_error_message, "Forbidden");
}

#[test]
fn debug_output_never_shows_the_secret_or_the_salt() {
    let body = format!(
        "{BASE}client_secret: [{SECRET}]\ncache_tokens_salt: {SALT}\nhttp_proxy: http://proxy:3128\n\
         http_proxy_authorization: Basic {SECRET}\n"
    );
    let (c, _) = ok(&body);
    assert_eq!(c.cache_tokens_salt.expose(), SALT);
    let printed = format!("{c:?} {c:#?}");
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(!printed.contains(SALT), "{printed}");
    assert!(printed.contains("redacted"));

    let (generated, _) = ok(BASE);
    let printed = format!("{generated:?}");
    assert!(!printed.contains(generated.cache_tokens_salt.expose()));
}

#[test]
fn salt_is_generated_per_instance_unless_configured() {
    let (a, _) = ok(BASE);
    let (b, _) = ok(BASE);
    assert!(a.cache_tokens_salt.is_generated() && b.cache_tokens_salt.is_generated());
    assert_ne!(a.cache_tokens_salt.expose(), b.cache_tokens_salt.expose());
    let (c, _) = ok(&format!("{BASE}cache_tokens_salt: {SALT}\n"));
    assert!(!c.cache_tokens_salt.is_generated());
    assert_eq!(c.cache_tokens_salt.expose(), SALT);
}

#[test]
fn a_reload_keeps_an_instance_only_when_no_setting_changed() {
    let (a, _) = ok(BASE);
    // The same settings lower in the file, with another generated salt: unchanged.
    let (moved, _) = compile_doc(&format!(
        "_format_version: \"3.0\"\nservices: []\n{}",
        &doc(BASE)["_format_version: \"3.0\"\n".len()..]
    ))
    .unwrap();
    assert_ne!(moved.mark, a.mark);
    assert!(a.unchanged_by(&moved));
    // Any setting differs: changed.
    for extra in ["scopes: [openid, read]\n", "hide_credentials: true\n", "timeout: 1000\n"] {
        let (b, _) = ok(&format!("{BASE}{extra}"));
        assert!(!a.unchanged_by(&b), "{extra}");
    }
    // Configured salts count as settings.
    let (s1, _) = ok(&format!("{BASE}cache_tokens_salt: {SALT}\n"));
    let (s2, _) = ok(&format!("{BASE}cache_tokens_salt: {SALT}x\n"));
    assert!(s1.unchanged_by(&ok(&format!("{BASE}cache_tokens_salt: {SALT}\n")).0));
    assert!(!s1.unchanged_by(&s2));
    assert!(!a.unchanged_by(&s1));
}

// ----- issuer and discovery -----

#[test]
fn discovery_url_is_appended_unless_already_there() {
    assert_eq!(discovery_url("https://idp/realms/a"), "https://idp/realms/a/.well-known/openid-configuration");
    assert_eq!(discovery_url("https://idp/realms/a/"), "https://idp/realms/a/.well-known/openid-configuration");
    assert_eq!(
        discovery_url("https://idp/realms/a/.well-known/openid-configuration"),
        "https://idp/realms/a/.well-known/openid-configuration"
    );
    assert_eq!(
        discovery_url("https://idp/.well-known/oauth-authorization-server"),
        "https://idp/.well-known/oauth-authorization-server"
    );
    assert_eq!(discovery_url("https://idp"), "https://idp/.well-known/openid-configuration");

    let (c, _) = ok("issuer: https://idp.example.com/.well-known/openid-configuration\nauth_methods: [bearer]\n");
    assert_eq!(c.discovery_url, "https://idp.example.com/.well-known/openid-configuration");
    assert_eq!(c.issuer, "https://idp.example.com/.well-known/openid-configuration");
}

#[test]
fn missing_issuer_is_an_error_at_the_config() {
    one_error(
        "auth_methods: [client_credentials]\n",
        "oidc.yaml:5:5: 'issuer' is required: the IdP's issuer URL or its discovery URL",
    );
}

#[test]
fn issuer_of_the_wrong_type_is_one_error() {
    one_error("issuer: 42\nauth_methods: [bearer]\n", "oidc.yaml:5:13: 'issuer' must be a string, found an integer");
}

#[test]
fn issuer_that_is_not_a_url_is_an_error() {
    one_error(
        "issuer: idp.example.com\nauth_methods: [bearer]\n",
        "oidc.yaml:5:13: 'issuer' is not a usable URL: expected http(s)://host[:port][/path]",
    );
    one_error(
        "issuer: https://idp/realm?x=1\nauth_methods: [bearer]\n",
        "oidc.yaml:5:13: 'issuer' may not have a query: the discovery path is appended to it",
    );
}

#[test]
fn pseudo_issuer_with_client_credentials_needs_a_token_endpoint() {
    one_error(
        &format!("{BASE}using_pseudo_issuer: true\n"),
        "oidc.yaml:7:5: 'using_pseudo_issuer' skips discovery, so client_credentials needs 'token_endpoint'",
    );
    let (c, _) = ok(&format!("{BASE}using_pseudo_issuer: true\ntoken_endpoint: https://idp/token\n"));
    assert!(c.using_pseudo_issuer);
    assert_eq!(c.token_endpoint.as_deref(), Some("https://idp/token"));
}

// ----- auth_methods -----

#[test]
fn absent_auth_methods_is_an_error_not_kongs_nine_methods() {
    let e = errors("issuer: https://idp.example.com\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("oidc.yaml:5:5: 'auth_methods' must be set: Kong's default enables all nine methods"));
    // null means "Kong's default", so it is the same error.
    let e = errors("issuer: https://idp.example.com\nauth_methods: null\n");
    assert!(e[0].contains("'auth_methods' must be set"), "{e:?}");
}

#[test]
fn unsupported_auth_methods_are_errors_at_their_entry() {
    assert_eq!(
        errors("issuer: https://idp\nauth_methods:\n- client_credentials\n- password\n- session\n"),
        vec![
            "oidc.yaml:8:7: auth method 'password' is not supported yet (ringgate supports client_credentials, bearer and introspection)",
            "oidc.yaml:9:7: auth method 'session' is not supported yet (ringgate supports client_credentials, bearer and introspection)",
        ]
    );
    one_error(
        "issuer: https://idp\nauth_methods: [client_credentials, telepathy]\n",
        "oidc.yaml:6:40: 'auth_methods' entries must be one of authorization_code, bearer, client_credentials, \
         introspection, kong_oauth2, password, refresh_token, session, userinfo, found 'telepathy'",
    );
}

#[test]
fn empty_auth_methods_is_an_error() {
    one_error(
        "issuer: https://idp\nauth_methods: []\n",
        "oidc.yaml:6:19: 'auth_methods' is empty: no request could authenticate",
    );
}

#[test]
fn both_supported_methods_keep_their_order_without_duplicates() {
    let (c, _) = ok("issuer: https://idp\nauth_methods: [bearer, client_credentials, bearer]\n");
    assert_eq!(c.auth_methods, vec![AuthMethod::Bearer, AuthMethod::ClientCredentials]);
}

// ----- types -----

#[test]
fn a_single_string_where_kong_wants_an_array_is_an_error() {
    one_error(&format!("{BASE}scopes: openid\n"), "oidc.yaml:7:13: 'scopes' must be a list of strings, found a string");
    one_error(
        &format!("{BASE}client_credentials_param_type: header\n"),
        "oidc.yaml:7:36: 'client_credentials_param_type' must be a list of strings, found a string",
    );
}

#[test]
fn numbers_take_integers_or_floats_and_nothing_else() {
    let (c, _) = ok(&format!("{BASE}timeout: 2500\nleeway: 1.5\ncache_ttl: 60.0\n"));
    assert_eq!(c.timeout, Duration::from_millis(2500));
    assert_eq!(c.leeway, Duration::from_millis(1500));
    assert_eq!(c.cache_ttl, Duration::from_secs(60));
    one_error(&format!("{BASE}timeout: \"2500\"\n"), "oidc.yaml:7:14: 'timeout' must be a number, found a string");
    one_error(&format!("{BASE}leeway: -1\n"), "oidc.yaml:7:13: 'leeway' must not be negative, found -1");
    one_error(&format!("{BASE}timeout: 0\n"), "oidc.yaml:7:14: 'timeout' must be greater than 0 ms");
}

#[test]
fn booleans_are_strict() {
    one_error(
        &format!("{BASE}cache_tokens: \"yes\"\n"),
        "oidc.yaml:7:19: 'cache_tokens' must be true or false, found a string",
    );
    one_error(
        &format!("{BASE}hide_credentials: 1\n"),
        "oidc.yaml:7:23: 'hide_credentials' must be true or false, found an integer",
    );
}

#[test]
fn a_token_header_named_nil_is_sent_under_that_name_with_a_warning() {
    // As Kong's Curity example writes it: a YAML string, not null.
    let (c, w) = ok(&format!("{BASE}upstream_access_token_header: nil\ndownstream_access_token_header: None\n"));
    assert_eq!(c.upstream_access_token_header.name, "nil");
    assert_eq!(c.upstream_access_token_header.scheme, None);
    assert_eq!(c.downstream_access_token_header.as_ref().map(|h| h.name.as_str()), Some("none"));
    assert_eq!(
        w,
        vec![
            "oidc.yaml:7:35: 'upstream_access_token_header: nil' is a header name: the access token is sent in a \
             header called 'nil'",
            "oidc.yaml:8:37: 'downstream_access_token_header: None' is a header name: the access token is sent in \
             a header called 'None'",
        ]
    );
    let (_, w) = ok(&format!("{BASE}upstream_access_token_header: x-nil\n"));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn null_means_kongs_default() {
    let (c, w) = ok(&format!("{BASE}scopes: null\ntimeout: null\nssl_verify: ~\nsession_secret: null\n"));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.scopes, vec!["openid".to_string()]);
    assert_eq!(c.timeout, Duration::from_millis(10_000));
    assert!(c.ssl_verify);
}

#[test]
fn empty_scopes_send_none_and_differ_from_absent() {
    let (empty, _) = ok(&format!("{BASE}scopes: []\n"));
    assert!(empty.scopes.is_empty());
    let (absent, _) = ok(BASE);
    assert_eq!(absent.scopes, vec!["openid".to_string()]);
    let (two, _) = ok(&format!("{BASE}scopes: [api.read, api.write]\n"));
    assert_eq!(two.scopes, vec!["api.read".to_string(), "api.write".to_string()]);
}

#[test]
fn enum_values_are_checked() {
    one_error(
        &format!("{BASE}token_endpoint_auth_method: client_secret_magic\n"),
        "oidc.yaml:7:33: 'token_endpoint_auth_method' must be one of client_secret_basic, client_secret_post, \
         client_secret_jwt, private_key_jwt, tls_client_auth, self_signed_tls_client_auth, none, found 'client_secret_magic'",
    );
    one_error(&format!("{BASE}http_version: 2\n"), "oidc.yaml:7:19: 'http_version' must be 1.0 or 1.1, found 2");
}

// ----- unknown keys -----

#[test]
fn unknown_key_close_to_a_kong_name_gets_a_hint() {
    one_error(
        &format!("{BASE}scope: [openid]\n"),
        "oidc.yaml:7:5: unknown key 'scope' in the openid-connect config (did you mean 'scopes'?)",
    );
    one_error(
        &format!("{BASE}client_secrets: [x]\n"),
        "oidc.yaml:7:5: unknown key 'client_secrets' in the openid-connect config (did you mean 'client_secret'?)",
    );
}

#[test]
fn unknown_key_far_from_any_kong_name_has_no_hint() {
    one_error(
        &format!("{BASE}frobnicate: true\n"),
        "oidc.yaml:7:5: unknown key 'frobnicate' in the openid-connect config",
    );
}

// ----- client authentication to the IdP -----

#[test]
fn client_auth_without_a_caller_key_is_refused_with_client_credentials() {
    one_error(
        &format!("{BASE}token_endpoint_auth_method: private_key_jwt\n"),
        "oidc.yaml:7:33: 'token_endpoint_auth_method' private_key_jwt is not supported with client_credentials: \
         it needs a private key, and ringgate holds none for a caller",
    );
    one_error(
        &format!("{BASE}client_auth: [tls_client_auth]\n"),
        "oidc.yaml:7:18: 'client_auth' tls_client_auth is not supported with client_credentials: \
         it needs a client certificate, and ringgate holds none for a caller",
    );
    one_error(
        &format!("{BASE}client_auth: [self_signed_tls_client_auth]\n"),
        "oidc.yaml:7:18: 'client_auth' self_signed_tls_client_auth is not supported with client_credentials: \
         it needs a client certificate, and ringgate holds none for a caller",
    );
    one_error(
        &format!("{BASE}token_endpoint_auth_method: none\n"),
        "oidc.yaml:7:33: 'token_endpoint_auth_method' none is not supported with client_credentials: \
         the caller's secret would then be checked by nobody",
    );
}

#[test]
fn token_endpoint_auth_method_wins_over_client_auth() {
    let (c, _) = ok(&format!("{BASE}client_auth: [private_key_jwt]\ntoken_endpoint_auth_method: client_secret_jwt\n"));
    assert_eq!(c.configured_client_auth(), Some(ClientAuthMethod::ClientSecretJwt));
    one_error(
        &format!("{BASE}token_endpoint_auth_method: client_secret_jwt\nclient_alg: [RS256]\n"),
        "oidc.yaml:8:17: 'client_alg' RS256 cannot sign a client_secret_jwt assertion (HS256/384/512 only)",
    );
}

#[test]
fn private_key_jwt_is_accepted_when_no_client_credentials_flow_uses_it() {
    let (c, _) = ok("issuer: https://idp\nauth_methods: [bearer]\nclient_auth: [private_key_jwt]\n");
    assert_eq!(c.client_auth, vec![ClientAuthMethod::PrivateKeyJwt]);
}

// ----- the token request -----

#[test]
fn token_post_args_and_headers_pair_up() {
    let (c, _) = ok(&format!(
        "{BASE}token_post_args_names: [audience]\ntoken_post_args_values: [https://api]\n\
         token_headers_names: [X-Tenant]\ntoken_headers_values: [acme]\n"
    ));
    assert_eq!(c.token_post_args, vec![("audience".to_string(), "https://api".to_string())]);
    assert_eq!(c.token_headers, vec![("X-Tenant".to_string(), "acme".to_string())]);
    one_error(
        &format!("{BASE}token_post_args_names: [a, b]\ntoken_post_args_values: [x]\n"),
        "oidc.yaml:7:5: 'token_post_args_names' has 2 entries but 'token_post_args_values' has 1; they pair up by position",
    );
}

#[test]
fn caller_token_values_may_not_name_credentials_the_grant_or_framing() {
    let (c, w) = ok(&format!("{BASE}token_post_args_client: [scope, resource]\ntoken_headers_client: [X-Tenant]\n"));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.token_post_args_client, ["scope", "resource"]);
    assert_eq!(c.token_headers_client, ["X-Tenant"]);
    assert_eq!(
        errors(&format!(
            "{BASE}token_post_args_client: [client_secret, grant_type]\n\
             token_headers_client: [Authorization, Content-Length, \"no good\"]\n"
        )),
        [
            "oidc.yaml:7:30: 'token_post_args_client' may not take 'client_secret' from the caller: it names the \
             credentials or the grant",
            "oidc.yaml:7:45: 'token_post_args_client' may not take 'grant_type' from the caller: it names the \
             credentials or the grant",
            "oidc.yaml:8:28: 'token_headers_client' may not copy 'Authorization': the token request sets it",
            "oidc.yaml:8:43: 'token_headers_client' may not copy 'Content-Length': the token request sets it",
            "oidc.yaml:8:59: 'token_headers_client' entry 'no good' is not a valid header name",
        ]
    );
}

#[test]
fn token_post_args_may_not_replace_the_callers_credentials() {
    one_error(
        &format!("{BASE}token_post_args_names: [client_secret]\ntoken_post_args_values: [x]\n"),
        "oidc.yaml:7:29: 'token_post_args_names' may not set 'client_secret': it would replace the caller's \
         credentials or grant for every caller",
    );
}

#[test]
fn token_headers_must_be_valid_and_not_framing() {
    assert_eq!(
        errors(&format!("{BASE}token_headers_names: [\"bad header\", Content-Length]\ntoken_headers_values: [a, b]\n")),
        vec![
            "oidc.yaml:7:27: 'token_headers_names' entry 'bad header' is not a valid header name",
            "oidc.yaml:7:41: 'token_headers_names' may not set 'Content-Length': the HTTP client sets it",
        ]
    );
}

#[test]
fn endpoints_and_proxies_must_be_urls() {
    one_error(
        &format!("{BASE}token_endpoint: ftp://idp/token\n"),
        "oidc.yaml:7:21: 'token_endpoint' is not a usable URL: scheme 'ftp' is not http or https",
    );
    one_error(
        &format!("{BASE}extra_jwks_uris: [https://idp/keys, \"not a url\"]\n"),
        "oidc.yaml:7:41: 'extra_jwks_uris' entry is not a usable URL: expected http(s)://host[:port][/path]",
    );
    let (c, _) = ok(&format!("{BASE}https_proxy: http://proxy:3128\nno_proxy: \"localhost, .internal ,\"\n"));
    assert_eq!(c.https_proxy.as_deref(), Some("http://proxy:3128"));
    assert_eq!(c.no_proxy, vec!["localhost".to_string(), ".internal".to_string()]);
}

#[test]
fn upstream_access_token_header_parses_name_and_scheme() {
    let (c, _) = ok(&format!("{BASE}upstream_access_token_header: X-Access-Token\n"));
    assert_eq!(c.upstream_access_token_header.name, "x-access-token");
    assert_eq!(c.upstream_access_token_header.scheme, None);
    let (c, _) = ok(&format!("{BASE}upstream_access_token_header: authorization:basic\n"));
    assert_eq!(c.upstream_access_token_header.scheme, Some(TokenScheme::Basic));
    one_error(
        &format!("{BASE}upstream_access_token_header: authorization:digest\n"),
        "oidc.yaml:7:35: 'upstream_access_token_header' scheme 'digest' must be bearer or basic",
    );
}

#[test]
fn groups_and_roles_requirements_read_their_claims() {
    let (c, w) = ok(BASE);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!((c.groups_claim, c.roles_claim), (vec!["groups".to_string()], vec!["roles".to_string()]));
    assert!(c.groups_required.is_empty() && c.roles_required.is_empty());
    let (c, w) = ok(&format!(
        "{BASE}groups_claim: [realm_access, groups]\ngroups_required: [\"ops payments\"]\nroles_required: [admin]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.groups_claim, ["realm_access", "groups"]);
    assert_eq!(c.groups_required, ["ops payments"]);
    assert_eq!(c.roles_required, ["admin"]);
    one_error(&format!("{BASE}roles_claim: []\n"), "oidc.yaml:7:18: 'roles_claim' must name a claim");
}

#[test]
fn upstream_claim_headers_pair_up_by_position() {
    let (c, w) =
        ok(&format!("{BASE}upstream_headers_claims: [sub, tenant]\nupstream_headers_names: [X-Subject, x-tenant]\n"));
    assert!(w.is_empty(), "{w:?}");
    let pairs: Vec<_> =
        c.upstream_headers.iter().map(|h| (h.claim.join("."), h.name.as_str(), h.lower.as_str())).collect();
    assert_eq!(pairs, [("sub".to_string(), "X-Subject", "x-subject"), ("tenant".to_string(), "x-tenant", "x-tenant")]);
    one_error(
        &format!("{BASE}upstream_headers_claims: [sub, tenant]\nupstream_headers_names: [X-Subject]\n"),
        "oidc.yaml:8:5: 'upstream_headers_names' has 1 entries but 'upstream_headers_claims' has 2; they pair up by position",
    );
}

#[test]
fn upstream_claim_headers_may_not_take_a_header_the_proxy_writes() {
    assert_eq!(
        errors(&format!(
            "{BASE}upstream_headers_claims: [a, b, c, d, e, f]\n\
             upstream_headers_names: [\"bad name\", Host, X-Forwarded-For, Authorization, X-Team, x-team]\n"
        )),
        [
            "oidc.yaml:8:5: 'upstream_headers_names' entry 'bad name' is not a valid header name",
            "oidc.yaml:8:5: 'upstream_headers_names' entry 'Host' is written by the proxy itself",
            "oidc.yaml:8:5: 'upstream_headers_names' entry 'X-Forwarded-For' is written by the proxy itself",
            "oidc.yaml:8:5: 'upstream_headers_names' entry 'Authorization' already carries the access token \
             (upstream_access_token_header)",
            "oidc.yaml:8:5: 'upstream_headers_names' entry 'x-team' is named twice",
        ]
    );
    // With the token in another header, Authorization is free for a claim.
    ok(&format!(
        "{BASE}upstream_access_token_header: x-token\nupstream_headers_claims: [sub]\nupstream_headers_names: [Authorization]\n"
    ));
}

#[test]
fn authenticated_groups_claim_sets_its_header_first_and_an_empty_list_is_unset() {
    let (c, w) = ok(&format!(
        "{BASE}authenticated_groups_claim: [realm_access, roles]\n\
         upstream_headers_claims: [sub]\nupstream_headers_names: [X-Sub]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    let headers: Vec<_> = c.upstream_headers.iter().map(|h| (h.name.as_str(), h.claim.clone(), h.kind)).collect();
    assert_eq!(
        headers,
        [
            ("X-Authenticated-Groups", vec!["realm_access".to_string(), "roles".to_string()], ClaimKind::Groups),
            ("X-Sub", vec!["sub".to_string()], ClaimKind::Value),
        ]
    );
    let (c, _) = ok(&format!("{BASE}authenticated_groups_claim: []\n"));
    assert!(c.upstream_headers.is_empty());
    one_error(
        &format!(
            "{BASE}authenticated_groups_claim: [groups]\n\
             upstream_headers_claims: [team]\nupstream_headers_names: [x-authenticated-groups]\n"
        ),
        "oidc.yaml:9:5: 'upstream_headers_names' entry 'x-authenticated-groups' is named twice",
    );
}

#[test]
fn claims_of_unverified_issued_tokens_cannot_be_required_or_sent() {
    assert_eq!(
        errors(&format!(
            "{BASE}ignore_signature: [client_credentials]\nscopes_required: [read]\n\
             upstream_headers_claims: [sub]\nupstream_headers_names: [X-Sub]\n"
        )),
        [
            "oidc.yaml:8:5: 'scopes_required' reads the access token's claims, which 'ignore_signature: \
             [client_credentials]' leaves unread",
            "oidc.yaml:9:5: 'upstream_headers_claims' reads the access token's claims, which 'ignore_signature: \
             [client_credentials]' leaves unread",
        ]
    );
    one_error(
        &format!("{BASE}ignore_signature: [client_credentials]\nconsumer_claim: [client_id]\n"),
        "oidc.yaml:8:5: 'consumer_claim' reads the access token's claims, which 'ignore_signature: \
         [client_credentials]' leaves unread",
    );
    one_error(
        &format!("{BASE}ignore_signature: [client_credentials]\nclaims_forbidden: [act]\n"),
        "oidc.yaml:8:5: 'claims_forbidden' reads the access token's claims, which 'ignore_signature: \
         [client_credentials]' leaves unread",
    );
    // The introspection headers alone: each named for itself, not as a claim list.
    assert_eq!(
        errors(&format!(
            "{BASE}ignore_signature: [client_credentials]\nupstream_introspection_header: X-I\n\
             downstream_introspection_header: X-I\n"
        )),
        [
            "oidc.yaml:8:5: 'upstream_introspection_header' reads the access token's claims, which \
             'ignore_signature: [client_credentials]' leaves unread",
            "oidc.yaml:9:5: 'downstream_introspection_header' reads the access token's claims, which \
             'ignore_signature: [client_credentials]' leaves unread",
        ]
    );
    // The bearer method verifies every token it is sent, whatever ignore_signature says.
    ok("issuer: https://idp.example.com/realms/demo\nauth_methods: [bearer]\n\
        ignore_signature: [client_credentials]\ngroups_required: [ops]\n");
}

// ----- consumers -----

#[test]
fn consumer_mapping_settings_compile_with_kongs_defaults() {
    use ringgate::consumers::ConsumerBy;
    let (c, w) = ok(BASE);
    assert!(w.is_empty());
    assert!(c.consumer_claim.is_empty(), "off unless set");
    assert_eq!(c.consumer_by, [ConsumerBy::CustomId, ConsumerBy::Username]);
    assert!(!c.consumer_optional && !c.by_username_ignore_case);
    assert_eq!(c.anonymous, None);
    let (c, w) = ok(&format!(
        "{BASE}consumer_claim: [ext, app]\nconsumer_by: [id, username, id]\nconsumer_optional: true\n\
         by_username_ignore_case: true\nanonymous: guest\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.consumer_claim, [["ext", "app"]], "a path into the claims");
    assert_eq!(c.consumer_by, [ConsumerBy::Id, ConsumerBy::Username], "in order, once each");
    assert!(c.consumer_optional && c.by_username_ignore_case);
    assert_eq!(c.anonymous.as_deref(), Some("guest"));
    // An empty claim list is unset, as Kong's null.
    assert!(ok(&format!("{BASE}consumer_claim: []\n")).0.consumer_claim.is_empty());
}

#[test]
fn consumer_mapping_that_could_never_find_a_consumer_is_refused() {
    one_error(
        &format!("{BASE}consumer_claim: [client_id]\nconsumer_by: []\n"),
        "oidc.yaml:8:18: 'consumer_by' names no field, so 'consumer_claim' could never find a consumer",
    );
    one_error(
        &format!("{BASE}consumer_by: [email]\n"),
        "oidc.yaml:7:19: 'consumer_by' entries must be one of custom_id, id, username, found 'email'",
    );
    one_error(&format!("{BASE}anonymous: ''\n"), "oidc.yaml:7:16: 'anonymous' must not be empty");
}

// ----- downstream headers -----

#[test]
fn downstream_headers_are_typed_and_may_not_take_a_header_the_proxy_writes() {
    let (c, w) = ok(&format!(
        "{BASE}downstream_access_token_header: authorization:basic\ndownstream_headers_claims: [sub]\n\
         downstream_headers_names: [X-Sub]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    let h = c.downstream_access_token_header.as_ref().expect("set");
    assert_eq!((h.name.as_str(), h.scheme), ("authorization", Some(TokenScheme::Basic)));
    assert_eq!(c.downstream_headers.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["X-Sub"]);
    assert!(c.needs_claims(), "an opaque issued token is introspected for them");
    assert!(ok(BASE).0.downstream_access_token_header.is_none());
    let e = errors(&format!(
        "{BASE}downstream_access_token_header: Set-Cookie\ndownstream_headers_claims: [a, b, c]\n\
         downstream_headers_names: [Content-Length, X-A, x-a]\n"
    ));
    assert_eq!(
        e,
        [
            "oidc.yaml:7:37: 'downstream_access_token_header' 'set-cookie' is written by the proxy itself",
            "oidc.yaml:9:5: 'downstream_headers_names' entry 'Content-Length' is written by the proxy itself",
            "oidc.yaml:9:5: 'downstream_headers_names' entry 'x-a' is named twice",
        ]
    );
}

#[test]
fn cache_introspection_off_is_for_the_callers_tokens_and_says_so_beside_client_credentials() {
    let own = "client_id: [gw]\nclient_secret: [s]\n";
    let only = "issuer: https://idp.example.com/realms/demo\nauth_methods: [introspection]\n";
    let (c, w) = ok(&format!("{only}{own}cache_introspection: false\n"));
    assert!(w.is_empty(), "{w:?}");
    assert!(!c.cache_introspection);
    assert!(ok(&format!("{only}{own}")).0.cache_introspection, "Kong's default");
    let (_, w) = ok(&format!(
        "issuer: https://idp.example.com/realms/demo\nauth_methods: [client_credentials, introspection]\n\
         {own}cache_introspection: false\n"
    ));
    assert_eq!(
        w,
        ["oidc.yaml:9:5: 'cache_introspection: false' applies to the callers' tokens ('introspection'); an opaque \
          token the IdP issues is introspected once, when issued, and its answer kept as long as the token"]
    );
}

#[test]
fn introspection_headers_are_header_names_the_claim_headers_do_not_take() {
    use ringgate::oidc::claim_headers::ClaimKind;
    let (c, w) = ok(&format!(
        "{BASE}upstream_introspection_header: X-Introspection\ndownstream_introspection_header: X-Answer\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    let named = |hs: &[ringgate::oidc::claim_headers::ClaimHeader]| -> Vec<(String, ClaimKind)> {
        hs.iter().map(|h| (h.name.clone(), h.kind)).collect()
    };
    assert_eq!(named(&c.upstream_headers), [("X-Introspection".to_string(), ClaimKind::Introspection)]);
    assert_eq!(named(&c.downstream_headers), [("X-Answer".to_string(), ClaimKind::Introspection)]);
    assert!(c.needs_claims(), "an opaque issued token is introspected for it");
    let e = errors(&format!(
        "{BASE}upstream_headers_claims: [sub]\nupstream_headers_names: [X-Sub]\n\
         upstream_introspection_header: x-sub\ndownstream_introspection_header: authorization:bearer\n"
    ));
    assert_eq!(
        e,
        [
            "oidc.yaml:9:36: 'upstream_introspection_header' 'x-sub' is already set from a claim",
            "oidc.yaml:10:38: 'downstream_introspection_header' 'authorization:bearer' takes a header name only; \
             the ':bearer' and ':basic' forms are for the access token's header",
        ]
    );
    one_error(
        &format!("{BASE}upstream_introspection_header: Authorization\n"),
        "oidc.yaml:7:36: 'upstream_introspection_header' 'Authorization' already carries the access token \
         (upstream_access_token_header)",
    );
    one_error(
        &format!("{BASE}downstream_introspection_header: Content-Length\n"),
        "oidc.yaml:7:38: 'downstream_introspection_header' 'Content-Length' is written by the proxy itself",
    );
}

#[test]
fn introspection_jwt_headers_take_the_signed_answer_and_warn_without_one() {
    use ringgate::oidc::claim_headers::ClaimKind;
    let signed = "introspection_accept: application/token-introspection+jwt\n";
    let (c, w) = ok(&format!(
        "{BASE}{signed}upstream_introspection_jwt_header: X-Answer-Jwt\ndownstream_introspection_jwt_header: X-Jwt\n\
         upstream_introspection_header: X-Answer\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    let kinds = |hs: &[ringgate::oidc::claim_headers::ClaimHeader]| -> Vec<(String, ClaimKind)> {
        hs.iter().map(|h| (h.name.clone(), h.kind)).collect()
    };
    assert_eq!(
        kinds(&c.upstream_headers),
        [("X-Answer".to_string(), ClaimKind::Introspection), ("X-Answer-Jwt".to_string(), ClaimKind::IntrospectionJwt)]
    );
    assert_eq!(kinds(&c.downstream_headers), [("X-Jwt".to_string(), ClaimKind::IntrospectionJwt)]);
    assert!(c.needs_claims(), "an opaque issued token is introspected for it");
    one_warning(
        &format!("{BASE}upstream_introspection_jwt_header: X-Answer-Jwt\n"),
        "oidc.yaml:7:5: 'upstream_introspection_jwt_header' is never set: introspection answers are JSON unless \
         'introspection_accept: application/token-introspection+jwt'",
    );
    one_error(
        &format!("{BASE}{signed}upstream_introspection_header: X-A\nupstream_introspection_jwt_header: x-a\n"),
        "oidc.yaml:9:40: 'upstream_introspection_jwt_header' 'x-a' is already set from a claim",
    );
}

#[test]
fn access_token_jwk_headers_need_no_claims_and_a_verified_token() {
    use ringgate::oidc::claim_headers::ClaimKind;
    let (c, w) =
        ok(&format!("{BASE}upstream_access_token_jwk_header: X-Jwk\ndownstream_access_token_jwk_header: X-Key\n"));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!((c.upstream_headers[0].name.as_str(), c.upstream_headers[0].kind), ("X-Jwk", ClaimKind::AccessTokenJwk));
    assert_eq!(
        (c.downstream_headers[0].name.as_str(), c.downstream_headers[0].kind),
        ("X-Key", ClaimKind::AccessTokenJwk)
    );
    assert!(c.sends_key_jwk());
    assert!(!c.needs_claims(), "an opaque token has no key, so it is not introspected for one");
    one_error(
        &format!("{BASE}ignore_signature: [client_credentials]\nupstream_access_token_jwk_header: X-Jwk\n"),
        "oidc.yaml:8:5: 'upstream_access_token_jwk_header' sends the key that verified the access token, which \
         'ignore_signature: [client_credentials]' leaves unverified",
    );
    one_error(
        &format!("{BASE}upstream_access_token_jwk_header: authorization:bearer\n"),
        "oidc.yaml:7:39: 'upstream_access_token_jwk_header' 'authorization:bearer' takes a header name only; the \
         ':bearer' and ':basic' forms are for the access token's header",
    );
    let (c, _) = ok(BASE);
    assert!(!c.sends_key_jwk());
}

#[test]
fn token_headers_replay_needs_the_grant_and_a_header_the_proxy_does_not_write() {
    let (c, w) = ok(&format!(
        "{BASE}token_headers_replay: [X-RateLimit-Remaining]\ntoken_headers_prefix: x-idp-\n\
         token_headers_grants: [client_credentials]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        (c.token_headers_replay.as_slice(), c.token_headers_prefix.as_str()),
        (&["x-ratelimit-remaining".to_string()][..], "x-idp-")
    );
    // No grants (Kong's default) or not ours: nothing to replay, and a warning says so.
    let (c, w) = ok(&format!("{BASE}token_headers_replay: [x-rate]\n"));
    assert!(c.token_headers_replay.is_empty());
    assert_eq!(
        w,
        ["oidc.yaml:7:5: 'token_headers_replay' is ignored: it replays only for the grants in \
          'token_headers_grants', which does not name client_credentials"]
    );
    one_error(
        &format!("{BASE}token_headers_replay: [content-length]\ntoken_headers_grants: [client_credentials]\n"),
        "oidc.yaml:7:28: 'token_headers_replay' entry 'content-length' would set a header the proxy writes itself",
    );
}

// ----- introspection of opaque issued tokens -----// ----- introspection of opaque issued tokens -----

#[test]
fn introspection_settings_compile_with_kongs_defaults() {
    use ringgate::oidc::config::ClientAuthMethod;
    let (c, w) = ok(BASE);
    assert!(w.is_empty());
    assert_eq!((c.introspection_endpoint.as_deref(), c.introspection_endpoint_auth_method), (None, None));
    assert_eq!((c.introspection_hint.as_str(), c.introspection_token_param_name.as_str()), ("access_token", "token"));
    assert!(c.introspection_check_active);
    assert!(!c.needs_claims(), "nothing reads claims, so nothing would be introspected");
    let (c, w) = ok(&format!(
        "{BASE}introspection_endpoint: https://idp.example.com/introspect\n\
         introspection_endpoint_auth_method: client_secret_post\nintrospection_hint: urn:x\n\
         introspection_token_param_name: t\nintrospection_headers_names: [X-Api]\n\
         introspection_headers_values: [k]\nintrospection_post_args_names: [resource]\n\
         introspection_post_args_values: [api]\nintrospection_check_active: false\n\
         introspection_accept: application/json\nscopes_required: [read]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.introspection_endpoint.as_deref(), Some("https://idp.example.com/introspect"));
    assert_eq!(c.introspection_endpoint_auth_method, Some(ClientAuthMethod::ClientSecretPost));
    assert_eq!((c.introspection_hint.as_str(), c.introspection_token_param_name.as_str()), ("urn:x", "t"));
    assert_eq!(c.introspection_headers, [("X-Api".to_string(), "k".to_string())]);
    assert_eq!(c.introspection_post_args, [("resource".to_string(), "api".to_string())]);
    assert!(!c.introspection_check_active);
    assert!(c.needs_claims());
}

#[test]
fn the_introspection_method_needs_the_plugins_own_client() {
    use ringgate::oidc::config::AuthMethod;
    one_error(
        "issuer: https://idp.example.com\nauth_methods: [introspection]\nclient_id: [gateway]\n",
        "oidc.yaml:6:19: 'auth_methods: [introspection]' needs 'client_id' and 'client_secret' (or an \
         Authorization header in 'introspection_headers_names'): the plugin's own client asks the IdP about each \
         caller's token",
    );
    let (c, w) = ok("issuer: https://idp.example.com\nauth_methods: [bearer, introspection]\nclient_id: [gateway]\n\
                     client_secret: [s3cret]\n");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.auth_methods, [AuthMethod::Bearer, AuthMethod::Introspection]);
    // A configured Authorization authenticates introspection in place of the client.
    let authorized = "issuer: https://idp.example.com\nauth_methods: [introspection]\n\
                      introspection_headers_names: [Authorization]\nintrospection_headers_values: [Bearer k]\n";
    let (c, w) = ok(authorized);
    assert!(w.is_empty() && c.introspection_authorized() && c.own_client().is_none(), "{w:?}");
    // A signed answer is addressed to the plugin's client, so that needs its id.
    one_error(
        &format!("{authorized}introspection_accept: application/token-introspection+jwt\n"),
        "oidc.yaml:9:27: 'introspection_accept: application/token-introspection+jwt' needs 'client_id': a signed \
         answer is addressed to the plugin's client",
    );
    let (_, w) =
        ok(&format!("{authorized}client_id: [gw]\nintrospection_accept: application/token-introspection+jwt\n"));
    assert!(w.is_empty(), "{w:?}");
    assert!(c.takes_bearer_tokens());
}

#[test]
fn introspection_the_plugin_could_not_do_as_kong_is_refused() {
    one_error(
        &format!("{BASE}introspection_accept: application/jwt\n"),
        "oidc.yaml:7:27: 'introspection_accept: application/jwt' (an earlier draft's signed answer) is not supported \
         yet; application/token-introspection+jwt (RFC 9701) is",
    );
    let (c, w) = ok(&format!("{BASE}introspection_accept: application/token-introspection+jwt\n"));
    assert_eq!((c.introspection_accept, w.len()), (IntrospectionAccept::TokenIntrospectionJwt, 0));
    one_error(
        &format!("{BASE}introspection_endpoint_auth_method: private_key_jwt\n"),
        "oidc.yaml:7:41: 'introspection_endpoint_auth_method: private_key_jwt' is not supported yet \
         (client_secret_basic, client_secret_post, client_secret_jwt and none are)",
    );
    one_error(
        &format!("{BASE}introspection_endpoint: not a url\n"),
        "oidc.yaml:7:29: 'introspection_endpoint' is not a usable URL: expected http(s)://host[:port][/path]",
    );
}

/// The `introspection` method with the plugin's own client: four lines, so the next
/// key is on line 9 of the file.
const INTROSPECTING: &str =
    "issuer: https://idp.example.com\nauth_methods: [introspection]\nclient_id: [gateway]\nclient_secret: [s3cret]\n";

#[test]
fn callers_fill_in_introspection_arguments_and_headers_by_name() {
    use ringgate::oidc::config::CallerArg;
    let (c, w) = ok(&format!(
        "{INTROSPECTING}introspection_post_args_client: [resource, tenant]\n\
         introspection_post_args_client_headers: [X-Region]\nintrospection_headers_client: [X-Trace]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    let arg = |name: &str, from_header| CallerArg { name: name.into(), from_header };
    assert_eq!(c.introspection_client_args, [arg("resource", false), arg("tenant", false), arg("X-Region", true)]);
    assert_eq!(c.introspection_headers_client, ["X-Trace"]);
    assert!(c.takes_introspection_values());
    assert!(c.reads_body(), "an argument may come in a form body");
    let (c, _) = ok(&format!(
        "{INTROSPECTING}introspection_post_args_client_headers: [X-Region]\nbearer_token_param_type: [header]\n"
    ));
    assert!(c.takes_introspection_values() && !c.reads_body(), "headers only: the body is not read");
    // `bearer` with `introspect_jwt_tokens` introspects callers' tokens too.
    let (c, w) = ok("issuer: https://idp.example.com\nauth_methods: [bearer]\nclient_id: [gateway]\n\
                     client_secret: [s3cret]\nintrospect_jwt_tokens: true\nintrospection_headers_client: [X-Trace]\n");
    assert!(w.is_empty() && c.takes_introspection_values(), "{w:?}");
    let (c, w) = ok(BASE);
    assert!(w.is_empty() && !c.takes_introspection_values());
}

#[test]
fn caller_values_that_would_replace_what_the_introspection_request_sets_are_refused() {
    for (line, entry) in [
        ("introspection_post_args_client: [token]", "'introspection_post_args_client' entry 'token'"),
        (
            "introspection_post_args_client: [token_type_hint]",
            "'introspection_post_args_client' entry 'token_type_hint'",
        ),
        (
            "introspection_post_args_client_headers: [client_id]",
            "'introspection_post_args_client_headers' entry 'client_id'",
        ),
        (
            "introspection_post_args_client: [client_assertion]",
            "'introspection_post_args_client' entry 'client_assertion'",
        ),
    ] {
        // Four columns of indentation under `config:`, then the entry after `[`.
        let at = 4 + line.find('[').expect("a list") + 2;
        one_error(
            &format!("{INTROSPECTING}{line}\n"),
            &format!(
                "oidc.yaml:9:{at}: {entry} names the token, its hint or the plugin's client, which the introspection \
                 request sets"
            ),
        );
    }
    // The token's parameter is whatever `introspection_token_param_name` names.
    let (c, _) =
        ok(&format!("{INTROSPECTING}introspection_post_args_client: [token]\nintrospection_token_param_name: t\n"));
    assert_eq!(c.introspection_client_args[0].name, "token");
    one_error(
        &format!("{INTROSPECTING}introspection_token_param_name: t\nintrospection_post_args_client: [t]\n"),
        "oidc.yaml:10:38: 'introspection_post_args_client' entry 't' names the token, its hint or the plugin's \
         client, which the introspection request sets",
    );
    one_error(
        &format!(
            "{INTROSPECTING}introspection_post_args_client: [resource]\n\
             introspection_post_args_client_headers: [resource]\n"
        ),
        "oidc.yaml:10:46: 'introspection_post_args_client_headers' entry 'resource' is also in \
         'introspection_post_args_client': the introspection request would carry it twice",
    );
    one_error(
        &format!("{INTROSPECTING}introspection_post_args_client_headers: [\"x region\"]\n"),
        "oidc.yaml:9:46: 'introspection_post_args_client_headers' entry 'x region' is not a valid header name",
    );
    for name in ["Authorization", "accept", "Content-Type", "host", "content-length"] {
        one_error(
            &format!("{INTROSPECTING}introspection_headers_client: [{name}]\n"),
            &format!(
                "oidc.yaml:9:36: 'introspection_headers_client' may not copy '{name}': the introspection request \
                 sets it (client authentication, introspection_accept, the form body)"
            ),
        );
    }
    one_error(
        &format!("{INTROSPECTING}introspection_headers_client: [\"x:y\"]\n"),
        "oidc.yaml:9:36: 'introspection_headers_client' entry 'x:y' is not a valid header name",
    );
}

#[test]
fn caller_introspection_values_warn_where_no_callers_token_is_introspected() {
    one_warning(
        &format!("{BASE}introspection_headers_client: [X-Trace]\n"),
        "oidc.yaml:7:5: 'introspection_headers_client' is ignored: only acts where a caller's token is introspected \
         ('introspection', or 'introspect_jwt_tokens' with 'bearer')",
    );
    one_warning(
        "issuer: https://idp.example.com\nauth_methods: [bearer]\nintrospection_post_args_client: [resource]\n",
        "oidc.yaml:7:5: 'introspection_post_args_client' is ignored: only acts where a caller's token is \
         introspected ('introspection', or 'introspect_jwt_tokens' with 'bearer')",
    );
    one_warning(
        "issuer: https://idp.example.com\nauth_methods: [client_credentials, introspection]\nclient_id: [gateway]\n\
         client_secret: [s3cret]\nintrospection_post_args_client_headers: [X-Region]\n",
        "oidc.yaml:9:5: 'introspection_post_args_client_headers' applies to callers' own tokens: an opaque token the \
         IdP issues for client credentials is introspected once, with the configured values only",
    );
    // As a dump writes them (null), they are at their default: no warning.
    let (_, w) = ok(&format!("{BASE}introspection_headers_client: null\nintrospection_post_args_client: null\n"));
    assert!(w.is_empty(), "{w:?}");
}

// ----- verification switches -----

#[test]
fn turning_verification_off_is_refused() {
    one_error(
        &format!("{BASE}verify_signature: false\n"),
        "oidc.yaml:7:5: 'verify_signature: false' is not supported: ringgate always verifies tokens \
         (Kong documents it as a debugging switch)",
    );
    one_error(
        &format!("{BASE}verify_claims: false\n"),
        "oidc.yaml:7:5: 'verify_claims: false' is not supported: ringgate always verifies tokens \
         (Kong documents it as a debugging switch)",
    );
    let (_, w) = ok(&format!("{BASE}verify_signature: true\nverify_claims: true\n"));
    assert!(w.is_empty());
}

#[test]
fn ignore_signature_for_client_credentials_is_honoured_only_over_verified_tls() {
    let (c, w) = ok(&format!("{BASE}ignore_signature: [client_credentials, password]\n"));
    assert!(c.ignore_signature_client_credentials);
    assert_eq!(
        w,
        vec!["oidc.yaml:7:5: 'ignore_signature' entries password are ignored: they name methods ringgate does not support"]
    );
    let e = errors(&format!("{BASE}ssl_verify: false\nignore_signature: [client_credentials]\n"));
    assert_eq!(
        e,
        vec![
            "oidc.yaml:8:24: 'ignore_signature: [client_credentials]' needs ssl_verify: with neither, nothing vouches for the token"
        ]
    );
}

#[test]
fn ssl_verify_false_is_honoured_with_a_warning() {
    let (c, _) = ok(&format!("{BASE}ssl_verify: false\n"));
    assert!(!c.ssl_verify);
    one_warning(
        &format!("{BASE}ssl_verify: false\n"),
        "oidc.yaml:7:5: 'ssl_verify: false': the IdP's TLS certificate will not be verified (ringgate's default is true)",
    );
}

#[test]
fn hs_signatures_need_a_configured_secret() {
    one_error(
        "issuer: https://idp\nauth_methods: [bearer]\nenable_hs_signatures: true\n",
        "oidc.yaml:7:5: 'enable_hs_signatures' needs 'client_secret': it is the HMAC key",
    );
    let (c, _) = ok("issuer: https://idp\nauth_methods: [bearer]\nenable_hs_signatures: true\nclient_secret: [k]\n");
    assert!(c.enable_hs_signatures);
}

#[test]
fn bearer_cookie_location_needs_a_cookie_name() {
    one_error(
        "issuer: https://idp\nauth_methods: [bearer]\nbearer_token_param_type: [header, cookie]\n",
        "oidc.yaml:7:30: 'bearer_token_param_type' lists 'cookie' but 'bearer_token_cookie_name' is not set",
    );
    let (c, _) = ok(
        "issuer: https://idp\nauth_methods: [bearer]\nbearer_token_param_type: [cookie]\nbearer_token_cookie_name: at\n",
    );
    assert_eq!(c.bearer_token_param_type, vec![BearerLocation::Cookie]);
    assert_eq!(c.bearer_token_cookie_name.as_deref(), Some("at"));
}

#[test]
fn claim_requirements_are_typed() {
    let (c, _) = ok(&format!(
        "{BASE}scopes_required: [\"read write\", admin]\naudience_required: [api]\nscopes_claim: [realm, scope]\n\
         issuers_allowed: [https://other]\ncache_ttl_max: 165\n"
    ));
    assert_eq!(c.scopes_required, vec!["read write".to_string(), "admin".to_string()]);
    assert_eq!(c.audience_required, vec!["api".to_string()]);
    assert_eq!(c.scopes_claim, vec!["realm".to_string(), "scope".to_string()]);
    assert_eq!(c.issuers_allowed, vec!["https://other".to_string()]);
    assert_eq!(c.cache_ttl_max, Some(Duration::from_secs(165)));
    one_error(&format!("{BASE}scopes_claim: []\n"), "oidc.yaml:7:19: 'scopes_claim' must name a claim");
}

#[test]
fn max_age_is_whole_seconds_and_warns_where_client_credentials_tokens_are_checked() {
    let bearer = "issuer: https://idp.example.com\nauth_methods: [bearer]\n";
    let (c, w) = ok(&format!("{bearer}max_age: 300\n"));
    assert_eq!((c.max_age, w.len()), (Some(300), 0), "{w:?}");
    let (c, _) = ok(&format!("{bearer}max_age: 2.9\n"));
    assert_eq!(c.max_age, Some(2), "an age of whole seconds is over 2.9 only once it is 3");
    let (c, w) = ok(&format!("{bearer}max_age: null\n"));
    assert_eq!((c.max_age, w.len()), (None, 0));
    one_error(&format!("{bearer}max_age: -1\n"), "oidc.yaml:7:14: 'max_age' must not be negative, found -1");
    one_warning(
        &format!("{BASE}max_age: 300\n"),
        "oidc.yaml:7:5: 'max_age' makes auth_time required in every access token; tokens the IdP issues for client \
         credentials seldom carry one, and are then refused (401), as in Kong",
    );
}

#[test]
fn redirect_uris_take_the_first_url_and_allow_a_fragment() {
    let (c, w) = ok(&format!(
        "{BASE}unauthorized_redirect_uri: [\"https://app.example/#/login\"]\n\
         forbidden_redirect_uri: [https://app.example/denied]\nunexpected_redirect_uri: null\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.redirect_for(401), Some("https://app.example/#/login"));
    assert_eq!(c.redirect_for(403), Some("https://app.example/denied"));
    assert_eq!((c.redirect_for(503), c.redirect_for(500), c.redirect_for(200)), (None, None, None));
    let (c, w) = ok(&format!("{BASE}unexpected_redirect_uri: [https://a.example/oops, https://b.example/oops]\n"));
    assert_eq!(c.redirect_for(503), Some("https://a.example/oops"));
    assert_eq!(
        w,
        ["oidc.yaml:7:5: 'unexpected_redirect_uri' has 2 entries; only the first is used (the plugin's first \
          client's)"]
    );
    one_error(
        &format!("{BASE}unauthorized_redirect_uri: [/login]\n"),
        "oidc.yaml:7:33: 'unauthorized_redirect_uri' entry '/login' is not a usable URL: expected \
         http(s)://host[:port][/path]",
    );
    one_error(
        &format!("{BASE}forbidden_redirect_uri: [\"https://a.example/x y#z\"]\n"),
        "oidc.yaml:7:30: 'forbidden_redirect_uri' entry 'https://a.example/x y#z' is not a usable URL: contains \
         whitespace or control characters",
    );
}

#[test]
fn dpop_takes_the_callers_token_methods_and_server_nonces() {
    use ringgate::oidc::config::PopMode;
    let bearer = "issuer: https://idp.example.com\nauth_methods: [bearer]\n";
    let (c, w) = ok(&format!("{bearer}proof_of_possession_dpop: strict\n"));
    assert_eq!((c.dpop, c.dpop_proof_lifetime, w.len()), (PopMode::Strict, 300, 0), "{w:?}");
    let (c, w) = ok(&format!("{bearer}proof_of_possession_dpop: optional\ndpop_proof_lifetime: 60.5\n"));
    assert_eq!((c.dpop, c.dpop_proof_lifetime, w.len()), (PopMode::Optional, 60, 0), "{w:?}");
    // What `deck gateway dump` writes when DPoP is off: nothing to say.
    let (c, w) = ok(&format!(
        "{bearer}proof_of_possession_dpop: \"off\"\ndpop_use_nonce: false\ndpop_proof_lifetime: 300\n\
         proof_of_possession_auth_methods_validation: true\n"
    ));
    assert_eq!((c.dpop, w.len()), (PopMode::Off, 0), "{w:?}");
    let (c, w) = ok(&format!("{bearer}proof_of_possession_dpop: strict\ndpop_use_nonce: true\n"));
    assert_eq!((c.dpop, c.dpop_use_nonce, w.len()), (PopMode::Strict, true, 0), "{w:?}");
    assert!(!c.settings().unchanged_by(&ok(&format!("{bearer}proof_of_possession_dpop: strict\n")).0));
    one_error(
        &format!("{bearer}proof_of_possession_dpop: strict\ndpop_proof_lifetime: 0\n"),
        "oidc.yaml:8:5: 'dpop_proof_lifetime' must be at least one second: no proof could be used",
    );
    one_error(
        &format!("{bearer}proof_of_possession_dpop: maybe\n"),
        "oidc.yaml:7:31: 'proof_of_possession_dpop' must be one of off, optional, strict, found 'maybe'",
    );
    // Kong's rule: with PoP on, only the methods it can check, unless validation is off.
    pop_takes_only_the_methods_that_read_a_callers_token("proof_of_possession_dpop: strict", "DPoP proof");
    one_warning(
        &format!("{BASE}proof_of_possession_dpop: strict\nproof_of_possession_auth_methods_validation: false\n"),
        "oidc.yaml:7:5: 'proof_of_possession_dpop' only acts on callers' own tokens, and no configured method \
         ('bearer', 'introspection') reads one",
    );
    // Off, the settings that go with it do nothing, and say so.
    for (line, with) in [
        ("dpop_use_nonce: true", "'proof_of_possession_dpop'"),
        ("dpop_proof_lifetime: 60", "'proof_of_possession_dpop'"),
        ("proof_of_possession_auth_methods_validation: false", "proof of possession"),
    ] {
        let name = line.split(':').next().unwrap();
        one_warning(&format!("{bearer}{line}\n"), &format!("oidc.yaml:7:5: '{name}' only acts with {with} on"));
    }
}

#[test]
fn mtls_binding_takes_the_callers_token_methods_and_refuses_a_certificate_from_a_header() {
    use ringgate::oidc::config::PopMode;
    let bearer =
        "issuer: https://idp.example.com\nclient_id: [gw]\nclient_secret: [s]\nauth_methods: [bearer, introspection]\n";
    let (c, w) = ok(&format!("{bearer}proof_of_possession_mtls: strict\n"));
    assert_eq!((c.mtls, c.dpop, w.len()), (PopMode::Strict, PopMode::Off, 0), "{w:?}");
    let (c, w) = ok(&format!("{bearer}proof_of_possession_mtls: optional\nproof_of_possession_dpop: strict\n"));
    assert_eq!((c.mtls, c.dpop, w.len()), (PopMode::Optional, PopMode::Strict, 0), "{w:?}");
    // What a dump writes with mTLS off, or with the header record empty: nothing to say.
    let (c, w) =
        ok(&format!("{bearer}proof_of_possession_mtls: \"off\"\nproof_of_possession_mtls_from_header: null\n"));
    assert_eq!((c.mtls, w.len()), (PopMode::Off, 0), "{w:?}");
    let (c, w) = ok(&format!(
        "{bearer}proof_of_possession_mtls: strict\n\
         proof_of_possession_mtls_from_header: {{certificate_header_name: null, ca_certificates: null}}\n"
    ));
    assert_eq!((c.mtls, w.len()), (PopMode::Strict, 0), "{w:?}");
    one_error(
        &format!(
            "{bearer}proof_of_possession_mtls: strict\n\
             proof_of_possession_mtls_from_header: {{certificate_header_name: X-Cert}}\n"
        ),
        "oidc.yaml:10:5: 'proof_of_possession_mtls_from_header' is not implemented: ringgate takes the client \
         certificate from the TLS connection it terminates itself, never from a header",
    );
    one_warning(
        &format!("{bearer}proof_of_possession_mtls_from_header: {{certificate_header_name: X-Cert}}\n"),
        "oidc.yaml:9:5: 'proof_of_possession_mtls_from_header' only acts with 'proof_of_possession_mtls' on",
    );
    one_error(
        &format!("{bearer}proof_of_possession_mtls: always\n"),
        "oidc.yaml:9:31: 'proof_of_possession_mtls' must be one of off, optional, strict, found 'always'",
    );
    // Kong's rule, as for DPoP: only the methods that read a caller's token.
    pop_takes_only_the_methods_that_read_a_callers_token("proof_of_possession_mtls: optional", "client certificate");
}

/// Kong's `proof_of_possession_auth_methods_validation` rule for one proof `setting`
/// (`key: mode`): beside `bearer`, `client_credentials` is a load error, and with the
/// validation off a warning that its requests go without the `proof`.
fn pop_takes_only_the_methods_that_read_a_callers_token(setting: &str, proof: &str) {
    let key = setting.split(':').next().unwrap();
    let mixed = format!("issuer: https://idp.example.com\nauth_methods: [bearer, client_credentials]\n{setting}\n");
    one_error(
        &mixed,
        &format!(
            "oidc.yaml:7:5: '{key}' supports the 'bearer' and 'introspection' methods only, and \
             'proof_of_possession_auth_methods_validation' is true: remove 'client_credentials' from 'auth_methods', \
             or set it false to leave their requests unchecked"
        ),
    );
    one_warning(
        &format!("{mixed}proof_of_possession_auth_methods_validation: false\n"),
        &format!("oidc.yaml:7:5: no {proof} is checked on requests that authenticate with 'client_credentials'"),
    );
}

// ----- the classification of what ringgate does not act on -----

#[test]
fn flow_changing_kong_keys_are_errors() {
    let cases = [
        ("consumer_groups_claim: [groups]", "'consumer_groups_claim' is not supported yet"),
        ("token_exchange_endpoint: https://idp/exchange", "'token_exchange_endpoint' is not supported yet"),
        ("token_exchange: {enabled: true}", "'token_exchange' is not supported yet"),
        ("upstream_id_token_header: x-id-token", "'upstream_id_token_header' is not supported yet"),
        ("downstream_refresh_token_header: x-refresh", "'downstream_refresh_token_header' is not supported yet"),
        ("logout_uri_suffix: /logout", "'logout_uri_suffix' is not supported yet"),
    ];
    for (line, expected) in cases {
        let e = errors(&format!("{BASE}{line}\n"));
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert!(e[0].starts_with(&format!("oidc.yaml:7:5: {expected}: ")), "{line}: {e:?}");
    }
}

#[test]
fn keys_of_flows_not_enabled_are_warnings() {
    let cases = [
        ("session_cookie_name: sid", "'session_cookie_name' is ignored: the 'session' method is not supported"),
        ("session_secret: hunter2", "'session_secret' is ignored: the 'session' method is not supported"),
        ("redirect_uri: [https://app/cb]", "'redirect_uri' is ignored: authorization code flow only"),
        (
            "authorization_endpoint: https://idp/auth",
            "'authorization_endpoint' is ignored: authorization code flow only",
        ),
        ("login_redirect_uri: [https://app]", "'login_redirect_uri' is ignored: only acts through login_action"),
        ("logout_revoke: true", "'logout_revoke' is ignored: only acts on a logout request"),
        (
            "cache_introspection: false",
            "'cache_introspection: false' applies to the callers' tokens ('introspection'); an opaque token the \
             IdP issues is introspected once, when issued",
        ),
        ("userinfo_endpoint: https://idp/userinfo", "'userinfo_endpoint' is ignored: the 'userinfo' method"),
        (
            "consumer_groups_optional: true",
            "'consumer_groups_optional' is ignored: only acts with consumer group mapping",
        ),
        ("client_jwk: [{kty: RSA}]", "'client_jwk' is ignored: only signs private_key_jwt"),
        ("cluster_cache_strategy: redis", "'cluster_cache_strategy' is ignored"),
        (
            "audience: [api]",
            "'audience' is ignored: Kong sends it to the authorization endpoint only, never in a token request; an \
             IdP that wants an audience with the client credentials grant (Auth0) gets it from \
             token_post_args_names: [audience]",
        ),
        ("refresh_tokens: false", "'refresh_tokens' is ignored"),
        ("introspect_jwt_tokens: true", "'introspect_jwt_tokens' is ignored: only acts with 'bearer'"),
        ("login_action: response", "'login_action' is ignored: login_methods names no enabled auth method"),
    ];
    for (line, expected) in cases {
        let (_, w) = ok(&format!("{BASE}{line}\n"));
        assert_eq!(w.len(), 1, "{line}: {w:?}");
        assert!(w[0].starts_with(&format!("oidc.yaml:7:5: {expected}")), "{line}: {w:?}");
    }
}

#[test]
fn warning_never_quotes_the_value() {
    let (_, w) = ok(&format!("{BASE}session_secret: {SECRET}\n"));
    assert!(!w[0].contains(SECRET), "{w:?}");
}

#[test]
fn conditional_keys_are_errors_when_their_method_is_enabled() {
    one_error(
        &format!("{BASE}login_action: redirect\nlogin_methods: [client_credentials]\n"),
        "oidc.yaml:7:5: 'login_action' is not supported yet: Kong would answer with tokens instead of proxying",
    );
}

#[test]
fn introspect_jwt_tokens_acts_with_bearer_and_needs_the_plugins_own_client() {
    one_error(
        "issuer: https://idp\nauth_methods: [bearer]\nintrospect_jwt_tokens: true\n",
        "oidc.yaml:7:5: 'introspect_jwt_tokens' needs 'client_id' and 'client_secret' (or an Authorization header \
         in 'introspection_headers_names'): the plugin's own client asks the IdP about each caller's token",
    );
    let (c, w) = ok("issuer: https://idp\nauth_methods: [bearer]\nintrospect_jwt_tokens: true\nclient_id: [gw]\n\
                     client_secret: [s]\n");
    assert!(c.introspect_jwt_tokens && w.is_empty(), "{w:?}");
    let (c, _) = ok(&format!("{BASE}introspect_jwt_tokens: true\n"));
    assert!(!c.introspect_jwt_tokens, "client_credentials alone: nothing to introspect");
}

#[test]
fn kong_defaults_written_out_trigger_nothing() {
    // What `deck gateway dump` writes for fields left at their defaults.
    let (_, w) = ok(&format!(
        "{BASE}session_cookie_name: session\nsession_cookie_same_site: Lax\nlogin_action: upstream\n\
         logout_methods: [POST, DELETE]\nproof_of_possession_mtls: \"off\"\nintrospection_hint: access_token\n\
         anonymous: null\nupstream_id_token_header: null\ngroups_claim: [groups]\nredirect_uri: []\n\
         response_type: [code]\nsession_memcached_port: 11211\nrefresh_tokens: true\nconsumer_by: [username, custom_id]\n\
         max_age: null\nunauthorized_redirect_uri: null\nforbidden_redirect_uri: null\nunexpected_redirect_uri: null\n\
         upstream_introspection_jwt_header: null\ndownstream_introspection_jwt_header: null\n\
         upstream_access_token_jwk_header: null\ndownstream_access_token_jwk_header: null\n\
         introspection_headers_client: null\nintrospection_post_args_client: null\n\
         introspection_post_args_client_headers: null\n"
    ));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn classified_keys_are_still_type_checked() {
    one_error(
        &format!("{BASE}session_storage: disk\n"),
        "oidc.yaml:7:22: 'session_storage' must be one of cookie, memcache, memcached, redis, found 'disk'",
    );
    one_error(
        &format!("{BASE}groups_required: admins\n"),
        "oidc.yaml:7:22: 'groups_required' must be a list of strings, found a string",
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let e = errors("scope: [openid]\nauth_methods: [password]\ntimeout: fast\nconsumer_groups_claim: [g]\n");
    assert_eq!(
        e,
        vec![
            "oidc.yaml:5:5: unknown key 'scope' in the openid-connect config (did you mean 'scopes'?)",
            "oidc.yaml:5:5: 'issuer' is required: the IdP's issuer URL or its discovery URL",
            "oidc.yaml:6:20: auth method 'password' is not supported yet (ringgate supports client_credentials, bearer and introspection)",
            "oidc.yaml:7:14: 'timeout' must be a number, found a string",
            "oidc.yaml:8:5: 'consumer_groups_claim' is not supported yet: consumer group mapping is not implemented",
        ]
    );
}

// ----- fields Kong added after 3.12 -----

#[test]
fn kong_3_14_fields_written_out_at_their_defaults_trigger_nothing() {
    // As `deck gateway dump` writes them for a plugin that leaves them alone.
    let (c, w) = ok(&format!(
        "{BASE}bearer_token_header_name: null\ncluster_cache_items: [introspection]\nconsumer_claims: null\n\
         downstream_headers: null\njwks_endpoint: null\nproof_of_possession_mtls_from_header: null\n\
         session_memcached_ssl: false\nsession_memcached_ssl_verify: false\nupstream_headers: null\n\
         principals: {{directory: default, enabled: false, error_on_miss: true, match_consumer: true, \
         match_consumer_groups: true, principal_by: null, principal_claim: null}}\n\
         redis: {{host: null, port: null, password: null}}\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert!(c.upstream_headers.is_empty() && c.downstream_headers.is_empty());
}

#[test]
fn kong_3_14_fields_that_would_change_the_flow_are_refused_and_the_others_warned() {
    for (line, expected) in [
        (
            "principals: {enabled: true}",
            "oidc.yaml:7:5: 'principals' is not supported yet: Kong Identity principals would not be looked up",
        ),
        (
            "consumer_claim: [sub]\nconsumer_claims: [[sub], [client_id]]",
            "oidc.yaml:8:5: set one of 'consumer_claim' and 'consumer_claims', not both",
        ),
        (
            "ignore_signature: [client_credentials]\nconsumer_claims: [[sub]]",
            "oidc.yaml:8:5: 'consumer_claims' reads the access token's claims, which 'ignore_signature: \
             [client_credentials]' leaves unread",
        ),
        (
            "jwks_endpoint: \"not a url\"",
            "oidc.yaml:7:20: 'jwks_endpoint' is not a usable URL: expected http(s)://host[:port][/path]",
        ),
        (
            "bearer_token_header_name: \"X Token\"",
            "oidc.yaml:7:31: 'bearer_token_header_name' 'X Token' is not a valid header name",
        ),
        (
            "bearer_token_header_name: Host",
            "oidc.yaml:7:31: 'bearer_token_header_name' 'Host' is written by the proxy itself",
        ),
        (
            "consumer_claims: [sub]",
            "oidc.yaml:7:23: 'consumer_claims' entries must be non-empty lists of strings, found a string",
        ),
    ] {
        assert_eq!(errors(&format!("{BASE}{line}\n")), vec![expected.to_string()], "{line}");
    }
    for (line, expected) in [
        (
            "cluster_cache_items: [tokens]",
            "'cluster_cache_items' is ignored: shares introspection or session data only",
        ),
        (
            "proof_of_possession_mtls_from_header: {certificate_header_name: X-Cert, ca_certificates: [a]}",
            "'proof_of_possession_mtls_from_header' only acts with 'proof_of_possession_mtls' on",
        ),
        ("session_memcached_ssl: true", "'session_memcached_ssl' is ignored: the 'session' method is not supported"),
        (
            "bearer_token_header_name: X-Api-Token",
            "'bearer_token_header_name' is ignored: only acts with 'bearer' or 'introspection'",
        ),
    ] {
        let (_, w) = ok(&format!("{BASE}{line}\n"));
        assert_eq!(w.len(), 1, "{line}: {w:?}");
        assert!(w[0].starts_with(&format!("oidc.yaml:7:5: {expected}")), "{line}: {w:?}");
    }
}

#[test]
fn header_paths_map_nested_claims_to_headers_on_both_sides() {
    let (c, w) = ok(&format!(
        "{BASE}upstream_headers:\n- {{header: X-Org-Id, path: [org, id]}}\n- {{header: X-Sub, path: [sub]}}\n\
         downstream_headers: [{{header: X-Region, path: [org, region]}}]\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    let up: Vec<(&str, Vec<&str>)> =
        c.upstream_headers.iter().map(|h| (h.name.as_str(), h.claim.iter().map(String::as_str).collect())).collect();
    assert_eq!(up, [("X-Org-Id", vec!["org", "id"]), ("X-Sub", vec!["sub"])]);
    let down: Vec<(&str, Vec<&str>)> =
        c.downstream_headers.iter().map(|h| (h.name.as_str(), h.claim.iter().map(String::as_str).collect())).collect();
    assert_eq!(down, [("X-Region", vec!["org", "region"])]);
}

#[test]
fn header_paths_and_the_paired_lists_are_one_or_the_other_as_kong_requires() {
    let e = errors(&format!(
        "{BASE}upstream_headers: [{{header: X-Org, path: [org]}}]\nupstream_headers_claims: [tenant]\n\
         upstream_headers_names: [X-Tenant]\ndownstream_headers: [{{header: X-R, path: [r]}}]\n\
         downstream_headers_names: [X-T]\ndownstream_headers_claims: [t]\n"
    ));
    assert_eq!(
        e,
        [
            "oidc.yaml:8:5: 'upstream_headers_claims' may not be set beside 'upstream_headers': Kong's schema refuses \
             the pair (use one form)",
            "oidc.yaml:9:5: 'upstream_headers_names' may not be set beside 'upstream_headers': Kong's schema refuses \
             the pair (use one form)",
            "oidc.yaml:11:5: 'downstream_headers_names' may not be set beside 'downstream_headers': Kong's schema \
             refuses the pair (use one form)",
            "oidc.yaml:12:5: 'downstream_headers_claims' may not be set beside 'downstream_headers': Kong's schema \
             refuses the pair (use one form)",
        ]
    );
    // As a dump writes the unused form (null or empty), it is no pair.
    let (_, w) = ok(&format!(
        "{BASE}upstream_headers: [{{header: X-Org, path: [org]}}]\nupstream_headers_claims: null\n\
         upstream_headers_names: []\n"
    ));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn header_paths_are_checked_like_the_named_claims() {
    let e = errors(&format!(
        "{BASE}upstream_headers:\n- {{header: X-Org}}\n- {{header: X-A, path: []}}\n- {{path: [a]}}\n\
         - {{header: X-B, path: [a], as: json}}\n- {{header: Authorization, path: [a]}}\n\
         - {{header: X-Tenant, path: [tenant]}}\n- {{header: x-tenant, path: [t]}}\n"
    ));
    let need = "a 'upstream_headers' entry needs 'header', a header name, and 'path', a non-empty list of claim names";
    assert_eq!(
        e,
        vec![
            format!("oidc.yaml:8:7: {need}"),
            format!("oidc.yaml:9:7: {need}"),
            format!("oidc.yaml:10:7: {need}"),
            "oidc.yaml:11:32: unknown key 'as' in a 'upstream_headers' entry (it takes header and path)".to_string(),
            "oidc.yaml:12:7: 'upstream_headers' entry 'Authorization' already carries the access token \
             (upstream_access_token_header)"
                .to_string(),
            "oidc.yaml:14:7: 'upstream_headers' entry 'x-tenant' is named twice".to_string(),
        ]
    );
}

#[test]
fn header_paths_read_claims_so_ignore_signature_refuses_them() {
    let e = errors(&format!(
        "{BASE}ignore_signature: [client_credentials]\nupstream_headers: [{{header: X-Org, path: [org, id]}}]\n\
         downstream_headers: [{{header: X-Org, path: [org, id]}}]\n"
    ));
    assert_eq!(
        e,
        vec![
            "oidc.yaml:8:5: 'upstream_headers' reads the access token's claims, which 'ignore_signature: \
             [client_credentials]' leaves unread",
            "oidc.yaml:9:5: 'downstream_headers' reads the access token's claims, which 'ignore_signature: \
             [client_credentials]' leaves unread",
        ]
    );
}

#[test]
fn consumer_claims_are_paths_tried_in_order() {
    let (c, w) = ok(&format!("{BASE}consumer_claims: [[org, id], [client_id]]\n"));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.consumer_claim, vec![vec!["org".to_string(), "id".to_string()], vec!["client_id".to_string()]]);
    let (c, _) = ok(&format!("{BASE}consumer_claim: [client_id]\nconsumer_claims: []\n"));
    assert_eq!(c.consumer_claim, vec![vec!["client_id".to_string()]], "an empty list is unset");
}

#[test]
fn bearer_token_header_name_narrows_the_header_location_to_one_header() {
    let (c, _) = ok(BASE);
    assert_eq!(
        (c.bearer_token_headers.as_slice(), c.bearer_from_authorization),
        (&["access-token".to_string(), "x-access-token".to_string()][..], true),
        "Kong's three by default"
    );
    let (c, _) = ok(&format!("{BASE}bearer_token_header_name: X-Api-Token\n"));
    assert_eq!(
        (c.bearer_token_headers.as_slice(), c.bearer_from_authorization),
        (&["x-api-token".to_string()][..], false)
    );
    let (c, _) = ok(&format!("{BASE}bearer_token_header_name: Authorization\n"));
    assert_eq!((c.bearer_token_headers.is_empty(), c.bearer_from_authorization), (true, true));
}
