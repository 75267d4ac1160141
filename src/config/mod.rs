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
