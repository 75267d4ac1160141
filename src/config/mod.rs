//! Configuration: decK files in, a validated [`Config`] out.
//!
//! The pipeline is [`template`] (decK's `${{ env "DECK_X" }}` rendering on the raw
//! text, keeping a map back to source positions) → [`yaml`] (events into positioned
//! [`Node`]s, duplicate keys rejected) → `validate` (into the typed [`model`], Kong's
//! defaults filled in), collecting every problem with its line and column instead of
//! stopping at the first. Each stage reports all of its own problems; a later stage
//! only runs when the earlier one succeeded, since it would otherwise report
//! consequences rather than causes. Runs at start-up and on reload, never per request.

pub mod manifest;
pub mod model;
pub mod node;
pub mod template;
mod validate;
pub(crate) use validate::{is_uuid, split_authority};
pub mod yaml;

pub use model::*;
pub use node::{Node, NodeValue};

use std::path::Path;

/// Loads, expands and validates a decK file, reading `DECK_*` variables from the
/// process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: name.clone(),
            mark: None,
            message: format!("cannot read file: {e}"),
            field: None,
        }])
    })?;
    load_str(&text, &name, &|k| std::env::var(k).ok())
}

/// Loads what `--config` names: one decK file, plus any number of files of Kubernetes
/// `KongPlugin` / `KongClusterPlugin` manifests (see [`manifest`]). A file may hold
/// either; the manifests' plugins are added to the decK file's. Every problem of every
/// file is reported.
pub fn load_files(paths: &[std::path::PathBuf]) -> Result<Config, ConfigErrors> {
    load_files_with(paths, &|k| std::env::var(k).ok())
}

/// [`load_files`] with `env` answering the `DECK_*` lookups.
pub fn load_files_with(
    paths: &[std::path::PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let mut deck: Option<(Config, String)> = None;
    let mut plugins = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError {
                    file: name,
                    mark: None,
                    message: format!("cannot read file: {e}"),
                    field: None,
                });
                continue;
            }
        };
        let docs = match parse_documents(&text, &name, env, true) {
            Ok(d) => d,
            Err(e) => {
                errors.extend(e.0);
                continue;
            }
        };
        if !docs.iter().any(manifest::is_manifest) {
            // A decK file (one document, as decK writes them).
            if let Some((_, first)) = &deck {
                errors.push(ConfigError::at(
                    &name,
                    Mark { line: 1, column: 1 },
                    format!("a second decK file; ringgate takes one (the first is {first}) plus manifest files"),
                ));
                continue;
            }
            // Parsed above already; only a file of several documents goes through
            // load_str again, for its error.
            let loaded = match docs.as_slice() {
                [doc] => validate::validate(doc, &name),
                _ => load_str(&text, &name, env),
            };
            match loaded {
                Ok(mut c) => {
                    for p in &mut c.plugins {
                        p.source = Some(name.clone());
                    }
                    deck = Some((c, name));
                }
                Err(e) => errors.extend(e.0),
            }
            continue;
        }
        for doc in &docs {
            if !manifest::is_manifest(doc) {
                errors.push(ConfigError::at(
                    &name,
                    doc.mark,
                    "a manifest file holds only KongPlugin / KongClusterPlugin documents; the decK file goes in its own file",
                ));
                continue;
            }
            let got = manifest::plugin(doc, &name);
            errors.extend(got.errors);
            warnings.extend(got.warnings);
            plugins.extend(got.plugin);
        }
    }
    let mut config = deck.map(|(c, _)| c).unwrap_or_default();
    for p in plugins {
        let clash = config.plugins.iter().find(|q| q.enabled && p.enabled && q.name == p.name && q.scope == p.scope);
        if let Some(q) = clash {
            let at = q.mark;
            errors.push(ConfigError::at(
                p.source.as_deref().unwrap_or(""),
                p.mark,
                format!(
                    "plugin '{}' is configured globally twice (the manifest at line {} and one at {at})",
                    p.name, p.mark.line
                ),
            ));
            continue;
        }
        config.plugins.push(p);
    }
    if errors.is_empty() {
        config.warnings.extend(warnings);
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Renders a file's `DECK_*` templates and parses its YAML: one document (decK), or
/// `several` (a manifest stream).
fn parse_documents(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
    several: bool,
) -> Result<Vec<Node>, ConfigErrors> {
    let positioned = |mark: Mark, message: String| ConfigError::at(file, mark, message);
    let rendered = template::render(text, env)
        .map_err(|errors| ConfigErrors(errors.into_iter().map(|e| positioned(e.mark, e.message)).collect()))?;
    let parsed = if several {
        yaml::parse_stream(&rendered.text, &rendered.map)
    } else {
        yaml::parse(&rendered.text, &rendered.map).map(|n| vec![n])
    };
    parsed.map_err(|errors| ConfigErrors(errors.into_iter().map(|e| positioned(e.mark, e.message)).collect()))
}

/// Loads a decK document from text. `env` answers `DECK_*` lookups (tests pass their
/// own). `file` is the name errors are reported under. Accepted-but-ignored Kong keys
/// come back in [`Config::warnings`].
pub fn load_str(text: &str, file: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut docs = parse_documents(text, file, env, false)?;
    validate::validate(&docs.remove(0), file)
}

#[cfg(test)]
mod tests {
    //! The whole load (templates, YAML, validation, then the compile `ringgate check`
    //! and the Admin API run) over random structural mutations of valid decK documents.

    use super::*;
    use crate::testing::{mark_inside, Rng};

    /// What secret-named fields hold in these tests; no message may ever show it.
    const SECRET: &str = "Zq9-secret-marker-4711";

    fn env(name: &str) -> Option<String> {
        match name {
            "DECK_ISSUER" => Some("https://idp.example.com/realms/demo".into()),
            "DECK_CLIENT_ID" => Some("ringgate".into()),
            "DECK_CLIENT_SECRET" => Some(SECRET.into()),
            _ => None,
        }
    }

    /// A decK document using most of what the loader knows, with secrets in every
    /// secret-named field ringgate reads or ignores.
    fn rich_document(cert: &str, key: &str) -> String {
        let indent = |pem: &str| pem.trim_end().replace('\n', "\n    ");
        format!(
            r#"_format_version: "3.0"
_info:
  select_tags: [a]
services:
- name: orders
  url: http://127.0.0.1:8080/api
  connect_timeout: 5000
  read_timeout: 60000
  write_timeout: 60000
  retries: 3
  tags: [t1]
  routes:
  - name: orders-route
    paths: ["/orders", "~/orders/(?<id>\\d+)$"]
    hosts: [api.example.com, "*.example.org"]
    methods: [GET, POST]
    headers: {{x-version: ["1", "2"]}}
    strip_path: true
    preserve_host: false
    regex_priority: 10
    protocols: [http, https]
    plugins:
    - name: openid-connect
      config:
        issuer: ${{{{ env "DECK_ISSUER" }}}}
        client_id: [ringgate]
        client_secret: [{SECRET}]
        auth_methods: [client_credentials, bearer]
        client_credentials_param_type: [header, body]
        scopes_required: ["read write"]
        audience_required: [api]
        cache_tokens_salt: {SECRET}
        session_secret: {SECRET}
        https_proxy_authorization: Basic {SECRET}
        token_post_args_names: [resource]
        token_post_args_values: [x]
        upstream_headers_claims: [sub]
        upstream_headers_names: [x-sub]
        timeout: 10000
        leeway: 5
        redis: {{password: {SECRET}, host: r}}
- name: billing
  host: billing.internal
  port: 8443
  protocol: https
  path: /v1
  tls_verify: true
routes:
- name: top
  service: billing
  paths: [/billing]
plugins:
- name: openid-connect
  service: billing
  config:
    issuer: http://127.0.0.1:9/
    client_id: [ringgate]
    client_secret:
    - ${{{{ env "DECK_CLIENT_SECRET" }}}}
    auth_methods: [bearer]
    consumer_claim: [sub]
    anonymous: guest
consumers:
- username: guest
- username: alice
  custom_id: "42"
  id: 7c2b0d4e-1a2b-4c3d-8e4f-5a6b7c8d9e0f
upstreams:
- name: billing.internal
  algorithm: consistent-hashing
  hash_on: header
  hash_on_header: x-user
  slots: 100
  healthchecks:
    active:
      type: http
      http_path: /health
      healthy: {{interval: 5, successes: 2}}
      unhealthy: {{interval: 5, tcp_failures: 2}}
  targets:
  - target: 127.0.0.1:9001
    weight: 100
  - target: "[::1]:9002"
    weight: 0
certificates:
- cert: |
    {}
  key: |
    {}
  snis: [api.example.com]
"#,
            indent(cert),
            indent(key)
        )
    }

    /// The project's example files, and the rich document with a real certificate; and
    /// that certificate's private key.
    fn documents() -> (Vec<String>, String) {
        let pair = rcgen::generate_simple_self_signed(vec!["api.example.com".to_string()]).unwrap();
        let key = pair.signing_key.serialize_pem();
        let docs = vec![
            include_str!("../../config/minimal.yaml").to_string(),
            include_str!("../../config/kong-oidc.yaml").to_string(),
            include_str!("../../config/kong-upstreams.yaml").to_string(),
            rich_document(&pair.cert.pem(), &key),
        ];
        (docs, key)
    }

    /// The whole load as `ringgate check` runs it: every error or warning as text.
    fn load_and_check(text: &str) -> Result<(String, Vec<String>), Vec<ConfigError>> {
        let mut cfg = load_str(text, "kong.yaml", &env).map_err(|e| e.0)?;
        // What loads is well-formed: a host the proxy connects to is an IP address or
        // a name (a colon in a name would be a port written into the host).
        let hosts = cfg.services.iter().map(|s| &s.host).chain(cfg.targets.iter().map(|t| &t.host));
        for host in hosts {
            assert!(host.parse::<std::net::IpAddr>().is_ok() || !host.contains(':'), "host {host:?} in\n{text}");
        }
        let warnings = crate::snapshot::check(&mut cfg, "kong.yaml").map_err(|e| e.0)?;
        Ok((format!("{cfg:?}"), warnings.iter().map(ToString::to_string).collect()))
    }

    /// Writes `node` as block YAML. Strings are double-quoted (JSON escapes are YAML
    /// escapes), except a `${{ ... }}` action, which stays as written for the template.
    fn emit(node: &Node, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match &node.value {
            NodeValue::Map(entries) if !entries.is_empty() => {
                for (key, _, value) in entries {
                    out.push_str(&format!("{pad}{}:", serde_json::to_string(key).unwrap()));
                    emit_child(value, indent, out);
                }
            }
            NodeValue::Seq(items) if !items.is_empty() => {
                for item in items {
                    out.push_str(&format!("{pad}-"));
                    emit_child(item, indent, out);
                }
            }
            _ => {
                out.push_str(&pad);
                out.push_str(&scalar(node));
                out.push('\n');
            }
        }
    }

    fn emit_child(node: &Node, indent: usize, out: &mut String) {
        match &node.value {
            NodeValue::Map(e) if !e.is_empty() => {
                out.push('\n');
                emit(node, indent + 2, out);
            }
            NodeValue::Seq(i) if !i.is_empty() => {
                out.push('\n');
                emit(node, indent + 2, out);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(node));
                out.push('\n');
            }
        }
    }

    fn scalar(node: &Node) -> String {
        match &node.value {
            NodeValue::Null => "null".into(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(n) => n.to_string(),
            NodeValue::Float(f) if f.is_nan() => ".nan".into(),
            NodeValue::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
            NodeValue::Float(f) => format!("{f:?}"),
            NodeValue::String(s) if s.starts_with("${{") && !s.contains(['\n', '#']) => s.clone(),
            NodeValue::String(s) => serde_json::to_string(s).unwrap(),
            NodeValue::Seq(_) => "[]".into(),
            NodeValue::Map(_) => "{}".into(),
        }
    }

    fn string(s: &str) -> Node {
        Node { mark: Mark::default(), value: NodeValue::String(s.to_string()) }
    }

    fn value(v: NodeValue) -> Node {
        Node { mark: Mark::default(), value: v }
    }

    /// Values of every type, out of range, malformed as URLs, hosts, paths, regexes,
    /// methods, ids and enum values.
    fn hostile(rng: &mut Rng) -> Node {
        const STRINGS: &[&str] = &[
            "",
            " ",
            "x",
            "http://",
            "http://[::1",
            "http://a:0/",
            "http://a:99999/",
            "ftp://a/",
            "https://u:p@a/",
            "http://a/?q=1",
            "http://a/#f",
            "~(",
            "~[",
            "~(?<n>",
            "~/a{99999}",
            "~(a+)+$",
            "~/(?<1x>a)",
            "/a b",
            "no-slash",
            "//",
            "/%zz",
            "/a/../b",
            "*.*.example",
            "a..b",
            "-a.example",
            "example.*",
            "[::1]:80",
            "a:99999",
            "a:-1",
            "GET",
            "get",
            "G ET",
            "\u{0}",
            "line\nbreak",
            "\u{e9}\u{1f600}",
            "x:y",
            "0x10",
            "true",
            "client_credentials",
            "bearer",
            "password",
            "private_key_jwt",
            "none",
            "header",
            "query",
            "grpc",
            "least-connections",
            "cookie",
            "sticky-sessions",
            "latency",
            "v1",
            "not-a-uuid",
            "7c2b0d4e-1a2b-4c3d-8e4f-5a6b7c8d9e0f",
            "orders",
            "billing",
            "guest",
            "billing.internal",
            "${{ env \"DECK_NOPE\" }}",
            "${{ env \"DECK_ISSUER\" | toInt }}",
        ];
        match rng.below(12) {
            0 => {
                value(NodeValue::Int(rng.pick(&[-1, 0, 1, 5, 65535, 65536, 2_147_483_648, i64::MAX, i64::MIN, -60000])))
            }
            1 => value(NodeValue::Float(rng.pick(&[1.5, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300]))),
            2 => value(NodeValue::Bool(rng.chance(2))),
            3 => value(NodeValue::Null),
            4 => value(NodeValue::Seq(Vec::new())),
            5 => value(NodeValue::Map(Vec::new())),
            6 => value(NodeValue::Seq((0..1 + rng.below(3)).map(|_| string(rng.pick(STRINGS))).collect())),
            7 => value(NodeValue::Map(vec![("x".into(), Mark::default(), string(rng.pick(STRINGS)))])),
            8 => string(&"x".repeat(1 + rng.below(5000))),
            _ => string(rng.pick(STRINGS)),
        }
    }

    /// A value aimed at the field `key`: wrong in the way that field can be wrong.
    fn aimed(rng: &mut Rng, key: &str) -> Option<Node> {
        let strings: &[&str] = match key {
            "host" | "target" => &[
                "127.0.0.1:8080",
                "1:2:3",
                "a:99999",
                "::1",
                "[::1]",
                "[::1]:80",
                "::ffff:127.0.0.1",
                "a b",
                "a..b",
                "127.0.0.1",
                "x.example",
                "[1.2.3.4:5]:80",
                "fe80::1%eth0",
                "",
            ],
            "url" => &[
                "http://[127.0.0.1:80]/",
                "http://[::1]:80/",
                "http://[1:2:3]/",
                "http://127.0.0.1:8080:90/",
                "http://a b/",
                "https://127.0.0.1",
                "http://127.0.0.1:0",
                "grpc://127.0.0.1/",
                "http:/x",
            ],
            "paths" | "http_path" | "path" => &["/a", "~/a(", "~/(?<id>\\d+)", "a", "/a b", "/%zz", "", "//", "~"],
            "hosts" => &["*.a.b", "a.*", "*.*", "a:80", "[::1]:80", "A.EXAMPLE", "a..b", ""],
            "methods" => &["GET", "get", "G ET", "", "PATCH"],
            _ => {
                let n: &[i64] = &[-1, 0, 1, 65535, 65536, 2_147_483_647, 2_147_483_648, i64::MAX, i64::MIN];
                let numeric =
                    ["port", "retries", "connect_timeout", "read_timeout", "write_timeout", "slots", "weight"];
                return numeric.contains(&key).then(|| value(NodeValue::Int(rng.pick(n))));
            }
        };
        let s = string(rng.pick(strings));
        Some(if matches!(key, "paths" | "hosts" | "methods") { value(NodeValue::Seq(vec![s])) } else { s })
    }

    /// What a secret-named field may be turned into: still holding the secret where it
    /// can, in every shape (and through the template, converted or not).
    fn secret_variant(rng: &mut Rng) -> Node {
        let s = || string(SECRET);
        match rng.below(8) {
            0 => s(),
            1 => value(NodeValue::Seq(vec![s(), value(NodeValue::Int(5))])),
            2 => value(NodeValue::Seq(vec![value(NodeValue::Seq(vec![s()]))])),
            3 => value(NodeValue::Map(vec![("a".into(), Mark::default(), s())])),
            4 => value(NodeValue::Seq(vec![string(""), s(), s()])),
            5 => string(&format!("{SECRET}\n{SECRET}")),
            6 => string(rng.pick(&[
                "${{ env \"DECK_CLIENT_SECRET\" }}",
                "${{ env \"DECK_CLIENT_SECRET\" | toInt }}",
                "${{ env \"DECK_CLIENT_SECRET\" | toBool }}",
                "${{ env \"DECK_CLIENT_SECRET\" | toFloat }}",
                "${{ env \"DECK_CLIENT_SECRET\" | indent 2 }}",
            ])),
            _ => value(NodeValue::Seq(vec![string(&format!("${{{{ env \"DECK_CLIENT_SECRET\" }}}} {SECRET}"))])),
        }
    }

    /// The path (indices into maps' entries and lists' items) of every node.
    fn paths(node: &Node, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(at.clone());
        let children: Vec<&Node> = match &node.value {
            NodeValue::Seq(items) => items.iter().collect(),
            NodeValue::Map(entries) => entries.iter().map(|(_, _, v)| v).collect(),
            _ => Vec::new(),
        };
        for (i, child) in children.into_iter().enumerate() {
            at.push(i);
            paths(child, at, out);
            at.pop();
        }
    }

    fn at_path<'n>(node: &'n mut Node, path: &[usize]) -> &'n mut Node {
        let Some((&i, rest)) = path.split_first() else { return node };
        match &mut node.value {
            NodeValue::Seq(items) => at_path(&mut items[i], rest),
            NodeValue::Map(entries) => at_path(&mut entries[i].2, rest),
            _ => unreachable!("paths() only lists existing nodes"),
        }
    }

    /// The key a node stands under, if its parent is a map.
    fn key_of(root: &Node, path: &[usize]) -> Option<String> {
        let (&last, parent) = path.split_last()?;
        let mut node = root;
        for &i in parent {
            node = match &node.value {
                NodeValue::Seq(items) => &items[i],
                NodeValue::Map(entries) => &entries[i].2,
                _ => return None,
            };
        }
        match &node.value {
            NodeValue::Map(entries) => Some(entries[last].0.clone()),
            _ => None,
        }
    }

    fn is_secret_field(key: &str) -> bool {
        crate::oidc::config::SECRET_FIELDS.contains(&key)
            || crate::oidc::config::is_secret_key(key)
            || matches!(key, "key" | "key_alt")
    }

    /// One structural change: a value replaced (another type, out of range, malformed),
    /// a key removed or added, a list entry repeated or the list emptied, a subtree
    /// copied elsewhere, or a secret field reshaped.
    fn mutate(rng: &mut Rng, root: &mut Node) {
        let mut all = Vec::new();
        paths(root, &mut Vec::new(), &mut all);
        // Secret fields are few among the nodes: one change in four goes to one of them.
        let secrets: Vec<&[usize]> =
            all.iter().filter(|p| key_of(root, p).is_some_and(|k| is_secret_field(&k))).map(Vec::as_slice).collect();
        if !secrets.is_empty() && rng.chance(4) {
            let path = rng.pick(&secrets).to_vec();
            *at_path(root, &path) = secret_variant(rng);
            return;
        }
        let path = rng.pick(&all.iter().map(Vec::as_slice).collect::<Vec<_>>()).to_vec();
        let key = key_of(root, &path);
        // Anything but a secret's value (or part of it) may be copied: the property is
        // about values under secret-named keys, and a secret copied under `algorithm`
        // is no longer one.
        let copyable: Vec<&[usize]> = all
            .iter()
            .filter(|p| !(1..=p.len()).any(|n| key_of(root, &p[..n]).is_some_and(|k| is_secret_field(&k))))
            .map(Vec::as_slice)
            .collect();
        let copied = at_path(root, rng.pick(&copyable)).clone();
        let node = at_path(root, &path);
        match (rng.below(6), &mut node.value) {
            (0, NodeValue::Map(entries)) if !entries.is_empty() => {
                entries.remove(rng.below(entries.len()));
            }
            (1, NodeValue::Map(entries)) => {
                let name = rng.pick(&["colour", "pathss", "client_secrett", "name", "id", "routes", "plugins", "<<"]);
                entries.push((name.to_string(), Mark::default(), hostile(rng)));
            }
            (2, NodeValue::Seq(items)) if !items.is_empty() => {
                let i = rng.below(items.len());
                items.insert(i, items[i].clone());
            }
            (3, NodeValue::Seq(items)) => items.clear(),
            (4, _) => *node = copied,
            _ => *node = key.as_deref().and_then(|k| aimed(rng, k)).unwrap_or_else(|| hostile(rng)),
        }
    }

    /// What the Admin API and the state file hold of an accepted document (its
    /// normalised store, rendered) loads and compiles again, and normalising it once
    /// more changes nothing: a change the loader accepted can never fail on the way in
    /// (a 500) or drift from reload to reload.
    fn normalised_store_loads_back(text: &str) {
        use crate::admin::store::{new_id, Store};
        let cfg = load_str(text, "kong.yaml", &env).unwrap();
        let store = Store::from_config(&cfg, &Store::default(), 1, &mut new_id).unwrap();
        let rendered = store.render();
        let mut again = load_str(&rendered, "state", &|_| None)
            .unwrap_or_else(|e| panic!("the normalised store does not load: {e}\n{rendered}\nfrom\n{text}"));
        crate::snapshot::check(&mut again, "state")
            .unwrap_or_else(|e| panic!("the normalised store does not compile: {e}\n{rendered}\nfrom\n{text}"));
        let twice = Store::from_config(&again, &store, 1, &mut new_id).unwrap();
        assert_eq!(twice.render(), rendered, "normalising twice differs, from\n{text}");
    }

    /// Every problem of a failed load is placed in the document, and no message shows
    /// a secret.
    #[test]
    fn mutated_documents_load_or_fail_with_positions_deterministically_without_showing_secrets() {
        let mut rng = Rng(0x010a_d0fd_ecc0_ffee);
        let (bases, key) = documents();
        let key_lines: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
        for base in &bases {
            assert!(load_and_check(base).is_ok(), "the unmutated document loads");
        }
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..800 {
            let base = rng.pick(&bases.iter().map(String::as_str).collect::<Vec<_>>()).to_string();
            let mut root = yaml::parse(&base, &template::SourceMap::identity(&base)).unwrap();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut root);
            }
            let mut text = String::new();
            emit(&root, 0, &mut text);
            let first = load_and_check(&text);
            assert_eq!(first, load_and_check(&text), "the same document loads the same way twice:\n{text}");
            let shown: Vec<String> = match &first {
                Ok((_, warnings)) => {
                    ok += 1;
                    normalised_store_loads_back(&text);
                    warnings.clone()
                }
                Err(errors) => {
                    failed += 1;
                    assert!(!errors.is_empty(), "{text}");
                    for e in errors {
                        let mark = e.mark.unwrap_or_else(|| panic!("no position for '{e}' in\n{text}"));
                        assert!(mark_inside(&text, mark), "'{e}' is outside\n{text}");
                        assert_eq!(e.file, "kong.yaml");
                        assert!(!e.message.is_empty());
                    }
                    errors.iter().map(ToString::to_string).collect()
                }
            };
            for message in &shown {
                assert!(!message.contains(SECRET), "a secret in '{message}' from\n{text}");
                for line in &key_lines {
                    assert!(!message.contains(line), "a private key line in '{message}'");
                }
            }
        }
        assert!(ok > 40 && failed > 400, "{ok} loaded, {failed} refused: the mutations should do both");
    }
}
