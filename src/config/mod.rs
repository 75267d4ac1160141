//! Configuration: decK files in, a validated [`Config`] out.
//!
//! The pipeline is [`template`] (decK's `${{ env "DECK_X" }}` rendering on the raw
//! text, keeping a map back to source positions) → [`yaml`] (events into positioned
//! [`Node`]s, duplicate keys rejected) → `validate` (into the typed [`model`], Kong's
//! defaults filled in), collecting every problem with its line and column instead of
//! stopping at the first. Each stage reports all of its own problems; a later stage
//! only runs when the earlier one succeeded, since it would otherwise report
//! consequences rather than causes. Runs at start-up and on reload, never per request.

pub mod model;
pub mod node;
pub mod template;
mod validate;
pub(crate) use validate::split_authority;
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

/// Loads a decK document from text. `env` answers `DECK_*` lookups (tests pass their
/// own). `file` is the name errors are reported under. Accepted-but-ignored Kong keys
/// come back in [`Config::warnings`].
pub fn load_str(text: &str, file: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let positioned = |mark: Mark, message: String| ConfigError::at(file, mark, message);
    let rendered = template::render(text, env)
        .map_err(|errors| ConfigErrors(errors.into_iter().map(|e| positioned(e.mark, e.message)).collect()))?;
    let root = yaml::parse(&rendered.text, &rendered.map)
        .map_err(|errors| ConfigErrors(errors.into_iter().map(|e| positioned(e.mark, e.message)).collect()))?;
    validate::validate(&root, file)
}
