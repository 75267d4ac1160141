//! `--config` with Kubernetes KongPlugin / KongClusterPlugin manifests beside a decK
//! file: what each manifest becomes, and every refusal with its file and position.

use std::path::{Path, PathBuf};

use ringgate::config::{load_files_with, Config, NodeValue, PluginScope};

fn env(name: &str) -> Option<String> {
    match name {
        "DECK_ISSUER" => Some("https://idp.example.com/realms/demo".into()),
        "DECK_CLIENT_ID" => Some("ringgate".into()),
        "DECK_CLIENT_SECRET" => Some("s3cret".into()),
        _ => None,
    }
}

/// Files written to a directory of their own, removed when dropped.
struct Files {
    dir: PathBuf,
    paths: Vec<PathBuf>,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn files(test: &str, contents: &[&str]) -> Files {
    let dir = std::env::temp_dir().join(format!("ringgate-manifests-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths = contents
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let p = dir.join(format!("f{i}.yaml"));
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    Files { dir, paths }
}

fn load(test: &str, contents: &[&str]) -> Result<Config, Vec<String>> {
    let f = files(test, contents);
    load_files_with(&f.paths, &env)
        .map_err(|e| e.0.iter().map(|e| e.to_string().replace(&format!("{}/", f.dir.display()), "")).collect())
}

const DECK: &str = "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:9\n  routes:\n  - name: r\n    paths: [/]\n";

fn cluster_plugin(labels: &str, extra: &str) -> String {
    format!(
        "apiVersion: configuration.konghq.com/v1\nkind: KongClusterPlugin\nmetadata:\n  name: oidc\n{labels}plugin: openid-connect\nconfig:\n  issuer: https://idp.example.com/\n  auth_methods: [client_credentials]\n{extra}"
    )
}

#[test]
fn example_files_load_together_as_a_global_plugin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let paths = [root.join("config/kong-services.yaml"), root.join("config/k8s-oidc-plugin.yaml")];
    let c = load_files_with(&paths, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.plugins.len(), 1);
    let p = &c.plugins[0];
    assert_eq!((p.name.as_str(), p.scope, p.enabled), ("openid-connect", PluginScope::Global, true));
    assert_eq!(
        p.config.get("issuer").map(|n| &n.value),
        Some(&NodeValue::String("https://idp.example.com/realms/demo".into()))
    );
    assert_eq!(c.plugins_for(Some(0), Some(0)), vec![0]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The plugin's config is valid for the plugin too.
    ringgate::snapshot::compile(&c).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn global_is_read_from_the_top_level_or_the_labels() {
    for labels in ["  labels:\n    global: \"true\"\n", ""] {
        // Top level: after `config`, at column 1.
        let manifest =
            if labels.is_empty() { cluster_plugin("", "global: true\n") } else { cluster_plugin(labels, "") };
        let c = load("global", &[DECK, &manifest]).unwrap();
        assert!(c.plugins[0].enabled, "{manifest}");
        assert_eq!(c.plugins_for(Some(0), Some(0)), vec![0]);
    }
}

#[test]
fn manifests_that_nothing_attaches_are_checked_but_not_applied_with_a_warning() {
    let kong_plugin = "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: per-route\n  namespace: apps\nplugin: openid-connect\nconfig:\n  issuer: https://idp.example.com/\n  auth_methods: [client_credentials]\n";
    let stream = format!("---\n{kong_plugin}---\n{}", cluster_plugin("", ""));
    let c = load("unattached", &[DECK, &stream]).unwrap();
    assert_eq!(c.plugins.len(), 2);
    assert!(c.plugins.iter().all(|p| !p.enabled));
    assert!(c.plugins_for(Some(0), Some(0)).is_empty(), "neither applies");
    let warnings: Vec<String> = c.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("KongPlugin 'per-route' is checked but not applied"), "{warnings:?}");
    assert!(warnings[1].starts_with("KongClusterPlugin 'oidc' is checked but not applied"), "{warnings:?}");
    // A disabled global one is loaded and does not apply either.
    let c =
        load("disabled", &[DECK, &cluster_plugin("  labels:\n    global: \"true\"\n", "disabled: true\n")]).unwrap();
    assert!(!c.plugins[0].enabled);
}

#[test]
fn every_manifest_problem_is_reported_with_file_and_position() {
    let bad = "apiVersion: configuration.konghq.com/v2\nkind: KongPlugin\nmetadata:\n  name: x\nplugin: rate-limiting\nconfigFrom:\n  secretKeyRef: {name: s, key: k}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongIngress\nmetadata: {name: y}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nplugin: openid-connect\n";
    let e = load("bad", &[DECK, bad]).unwrap_err();
    assert_eq!(
        e,
        vec![
            "f1.yaml:1:1: apiVersion 'configuration.konghq.com/v2' is not Kong's; expected 'configuration.konghq.com/v1'",
            "f1.yaml:5:9: KongPlugin 'x': unknown plugin 'rate-limiting' (ringgate knows: openid-connect)",
            "f1.yaml:7:3: KongPlugin 'x': 'configFrom' reads a Kubernetes Secret, which ringgate cannot; put the values in 'config' (with ${{ env \"DECK_X\" }} for secrets)",
            "f1.yaml:9:1: kind 'KongIngress' is not read here (only KongPlugin and KongClusterPlugin)",
            "f1.yaml:13:1: a KongPlugin needs 'metadata.name'",
        ]
    );
}

#[test]
fn mixing_files_wrongly_is_refused() {
    // A decK document inside a manifest stream.
    let mixed = format!("{}---\n{DECK}", cluster_plugin("", ""));
    let e = load("mixed", &[&mixed]).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("a manifest file holds only KongPlugin / KongClusterPlugin documents"), "{e:?}");
    // Two decK files.
    let e = load("two-deck", &[DECK, DECK]).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("f1.yaml:1:1: a second decK file; ringgate takes one"), "{e:?}");
    // A global plugin in the decK file and a global manifest for the same plugin.
    let deck_with_plugin = format!(
        "{DECK}plugins:\n- name: openid-connect\n  config:\n    issuer: https://a/\n    auth_methods: [client_credentials]\n"
    );
    let e = load("twice", &[&deck_with_plugin, &cluster_plugin("  labels:\n    global: \"true\"\n", "")]).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("plugin 'openid-connect' is configured globally twice"), "{e:?}");
    assert!(e[0].starts_with("f1.yaml:"), "the error points into the manifest: {e:?}");
}

#[test]
fn a_plugin_config_error_in_a_manifest_names_the_manifest_file() {
    let f = files("config-error", &[DECK, &cluster_plugin("  labels:\n    global: \"true\"\n", "  timeout: soon\n")]);
    let c = load_files_with(&f.paths, &env).unwrap();
    let e = ringgate::snapshot::compile(&c).err().expect("the plugin config is refused");
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].file, f.paths[1].display().to_string());
    assert!(e.0[0].message.contains("timeout"), "{e}");
}
