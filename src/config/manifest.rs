//! Kubernetes `KongPlugin` / `KongClusterPlugin` manifests, read beside a decK file.
//!
//! Teams running Kong's ingress controller keep the plugin's settings in manifests
//! (`apiVersion: configuration.konghq.com/v1`, `plugin: openid-connect`, `config: …`).
//! `--config` takes such files as they are, next to the decK file, so the same manifest
//! configures ringgate. What each one becomes:
//!
//! - `KongClusterPlugin` with `global: "true"` (top level, or as a `metadata.labels`
//!   entry as older controllers read it): a global plugin.
//! - Any other manifest: in Kubernetes a `konghq.com/plugins` annotation on a Service or
//!   an Ingress attaches it; ringgate has no such objects to read, so the plugin is
//!   validated in full and kept disabled, and a warning says how to apply it. (An
//!   unreferenced KongPlugin does nothing in a cluster either.)
//! - `configFrom` / `configPatches` read a Kubernetes Secret ringgate cannot reach: a
//!   load error, since dropping them would change the flow.
//!
//! Invariants: every problem is reported with its line and column, like the decK loader;
//! the plugin's `config` is handed on as a positioned tree for the plugin to validate.
//! Cost: load time only.

use super::model::{ConfigError, Mark, Plugin, PluginScope, KNOWN_PLUGINS};
use super::node::{Node, NodeValue};

/// The API group and version Kong's controller serves these kinds under.
pub const API_VERSION: &str = "configuration.konghq.com/v1";

/// Whether a parsed YAML document is a Kubernetes manifest (has `apiVersion` and
/// `kind`) rather than a decK document.
pub fn is_manifest(doc: &Node) -> bool {
    doc.get("apiVersion").is_some() && doc.get("kind").is_some()
}

/// The text of a string node.
fn text(node: Option<&Node>) -> Option<&str> {
    match node.map(|n| &n.value) {
        Some(NodeValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// What one manifest contributed.
pub struct FromManifest {
    pub plugin: Option<Plugin>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

/// Reads one manifest document into a plugin instance.
pub fn plugin(doc: &Node, file: &str) -> FromManifest {
    let mut out = FromManifest { plugin: None, errors: Vec::new(), warnings: Vec::new() };
    let err =
        |out: &mut FromManifest, mark: Mark, message: String| out.errors.push(ConfigError::at(file, mark, message));

    match text(doc.get("apiVersion")) {
        Some(API_VERSION) => {}
        Some(other) => {
            err(&mut out, doc.mark, format!("apiVersion '{other}' is not Kong's; expected '{API_VERSION}'"));
        }
        None => err(&mut out, doc.mark, "'apiVersion' must be a string".into()),
    }
    let kind = match text(doc.get("kind")) {
        Some(k @ ("KongPlugin" | "KongClusterPlugin")) => k,
        Some(other) => {
            err(&mut out, doc.mark, format!("kind '{other}' is not read here (only KongPlugin and KongClusterPlugin)"));
            return out;
        }
        None => {
            err(&mut out, doc.mark, "'kind' must be a string".into());
            return out;
        }
    };
    let metadata = doc.get("metadata");
    let Some(name) = text(metadata.and_then(|m| m.get("name"))) else {
        err(&mut out, metadata.map_or(doc.mark, |m| m.mark), format!("a {kind} needs 'metadata.name'"));
        return out;
    };
    let what = format!("{kind} '{name}'");

    let plugin_name = match doc.get("plugin") {
        Some(Node { value: NodeValue::String(p), mark }) => {
            if !KNOWN_PLUGINS.contains(&p.as_str()) {
                err(
                    &mut out,
                    *mark,
                    format!("{what}: unknown plugin '{p}' (ringgate knows: {})", KNOWN_PLUGINS.join(", ")),
                );
            }
            p.clone()
        }
        _ => {
            err(&mut out, doc.mark, format!("{what} needs 'plugin' (the plugin's name)"));
            String::new()
        }
    };
    for key in ["configFrom", "configPatches"] {
        if let Some(n) = doc.get(key).filter(|n| !n.is_unset()) {
            err(
                &mut out,
                n.mark,
                format!(
                    "{what}: '{key}' reads a Kubernetes Secret, which ringgate cannot; put the values in 'config' (with ${{{{ env \"DECK_X\" }}}} for secrets)"
                ),
            );
        }
    }
    let config = match doc.get("config") {
        None | Some(Node { value: NodeValue::Null, .. }) => Node { mark: doc.mark, value: NodeValue::Map(Vec::new()) },
        Some(n @ Node { value: NodeValue::Map(_), .. }) => n.clone(),
        Some(n) => {
            err(&mut out, n.mark, format!("{what}: 'config' must be a map, found {}", n.kind()));
            return out;
        }
    };
    let disabled = match doc.get("disabled").map(|n| (&n.value, n.mark)) {
        None | Some((NodeValue::Null, _)) => false,
        Some((NodeValue::Bool(b), _)) => *b,
        Some((_, mark)) => {
            err(&mut out, mark, format!("{what}: 'disabled' must be true or false"));
            false
        }
    };
    let mut protocols: Vec<String> = ["grpc", "grpcs", "http", "https"].map(String::from).to_vec();
    if let Some(Node { value: NodeValue::Seq(items), .. }) = doc.get("protocols") {
        protocols = items.iter().filter_map(|i| text(Some(i)).map(String::from)).collect();
    }
    let global = [doc.get("global"), metadata.and_then(|m| m.get("labels")).and_then(|l| l.get("global"))]
        .into_iter()
        .flatten()
        .any(|n| matches!(&n.value, NodeValue::Bool(true)) || matches!(&n.value, NodeValue::String(s) if s == "true"));

    let attached = kind == "KongClusterPlugin" && global;
    if global && kind == "KongPlugin" {
        out.warnings.push(ConfigError::at(
            file,
            doc.mark,
            format!(
                "{what}: only a KongClusterPlugin can be global; this one is not applied (make it a KongClusterPlugin)"
            ),
        ));
    } else if !attached {
        out.warnings.push(ConfigError::at(
            file,
            doc.mark,
            format!(
                "{what} is checked but not applied: a konghq.com/plugins annotation attaches it in Kubernetes, and ringgate has none to read; use a KongClusterPlugin with global: \"true\", or the decK file's plugins"
            ),
        ));
    }
    out.plugin = Some(Plugin {
        id: None,
        instance_name: None,
        name: plugin_name,
        scope: PluginScope::Global,
        enabled: attached && !disabled,
        protocols,
        tags: vec![format!("k8s-kind:{kind}"), format!("k8s-name:{name}")],
        config,
        mark: doc.mark,
        source: Some(file.to_string()),
    });
    out
}
