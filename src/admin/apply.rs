//! Turning a candidate configuration into the running one: the single path every
//! change takes (start-up, SIGHUP, `--resume`, each Admin API change, `POST /config`).
//!
//! A change is a candidate [`Store`] (or a whole decK document). It is rendered as a
//! decK document and loaded by `config::load_str`, exactly as a decK file would be; the
//! configuration that comes out is read back into a normalised store (defaults, ids,
//! references by id), which is rendered again and compiled into a [`Snapshot`]
//! (`Snapshot::build`, which resolves new upstream host names: blocking, so this never
//! runs on a worker). Only then is the state file written ([`DataDir::save`]), and only
//! when that succeeded is the snapshot swapped in ([`install`]) and the store replaced.
//! Any failure on the way leaves the running configuration, the store and the state
//! file as they were.
//!
//! Plugin instances whose settings did not change keep their running
//! [`crate::oidc::instance::Instance`] (discovery, keys, every worker's token cache):
//! [`install`] carries them over, so editing one plugin does not flush the others.
//!
//! Loader and compiler errors carry a position in the text that was loaded;
//! [`locate`] turns each into the path of the entity field it is about, for Kong's
//! nested `fields`.
//!
//! Cost: two loads, one compile and a write per change; never on the request path.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;

use super::persist::{DataDir, PersistError};
use super::store::{new_id, unix_now, Store, StoreError};
use super::Hooks;
use crate::config::{self, Config, ConfigError, ConfigErrors, Mark, Node, NodeValue};
use crate::control::ControlPlane;
use crate::snapshot::{self, Resolved, SharedSnapshot, Snapshot};

/// Why a change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The loader or the compiler refused the configuration; `text` is the document
    /// the errors' positions refer to.
    #[error("{errors}")]
    Invalid { errors: ConfigErrors, text: String },
    /// The state file could not be written; nothing changed.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// No id could be generated; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The normalised store did not load back. A bug: the change is refused rather
    /// than saving a state `--resume` could not read.
    #[error("internal error: the normalised configuration does not load: {0}")]
    Internal(String),
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A loader or compiler error, placed: the path of what it is about (empty when it
/// is about the document as a whole) and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<Seg>,
    pub message: String,
}

/// What `GET /` tells about this node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node_id: String,
    pub hostname: String,
    pub workers: usize,
    /// Kong's `configuration` subset, as `GET /` shows it.
    pub configuration: Value,
}

/// What every installed configuration needs when there are TLS listeners: the default
/// certificate's files (re-read on each install, so SIGHUP picks up a renewed one) and
/// the process's resumption state.
pub struct TlsInputs {
    pub default_cert: Option<(PathBuf, PathBuf)>,
    pub resumption: crate::tls::Resumption,
}

impl TlsInputs {
    /// Builds `snapshot`'s TLS server config; the message says what is wrong.
    fn apply(&self, snapshot: &mut Snapshot) -> Result<(), ConfigError> {
        let fail = |file: &Path, message: String| ConfigError {
            file: file.display().to_string(),
            mark: None,
            message,
            field: None,
        };
        let default = match &self.default_cert {
            Some((cert, key)) => {
                let cert_pem =
                    std::fs::read(cert).map_err(|e| fail(cert, format!("cannot read the certificate: {e}")))?;
                let key_pem = std::fs::read(key).map_err(|e| fail(key, format!("cannot read the key: {e}")))?;
                Some(crate::tls::certified_key(&cert_pem, &key_pem).map_err(|e| fail(cert, e))?)
            }
            None => None,
        };
        snapshot.install_tls(default, &self.resumption).map_err(|e| fail(Path::new("--tls-listen"), e))
    }
}

/// The first 16 bytes of the SHA-256 of a rendered store, in hex.
fn config_hash(rendered: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, rendered.as_bytes());
    crate::http::hex_lower(&digest.as_ref()[..16])
}

/// What `GET /status` reads, shared with the [`Admin`] and read without its lock: a
/// health probe is answered while a change (a DNS lookup, an fsync) holds the lock.
#[derive(Clone)]
pub struct StatusView {
    pub(super) shared: SharedSnapshot,
    pub(super) hooks: Arc<Hooks>,
    pub(super) workers: usize,
    /// `configuration_hash`: of the store's rendered text, made when the store changes
    /// rather than on every probe.
    pub(super) config_hash: Arc<ArcSwap<String>>,
}

/// The Admin API's state: the store, and what a change needs to take effect.
pub struct Admin {
    pub store: Store,
    /// Replaced with every change of the store; see [`StatusView`].
    config_hash: Arc<ArcSwap<String>>,
    pub(super) shared: SharedSnapshot,
    control: Option<ControlPlane>,
    data: Option<DataDir>,
    pub node: NodeInfo,
    pub hooks: Arc<Hooks>,
    tls: Option<TlsInputs>,
    /// The one control plane whose Konnect paths are answered (`--control-plane-id`);
    /// `None`: any id names this node's configuration.
    pub control_plane_id: Option<String>,
}

/// Installs `snapshot` as the running configuration for every worker, and starts
/// discovery for its openid-connect instances. The one place a configuration is
/// swapped in.
/// openid-connect instances whose settings did not change are carried over from the
/// running snapshot ([`Snapshot::carry_over`]).
pub fn install(shared: &SharedSnapshot, control: Option<&ControlPlane>, mut snapshot: Snapshot, source: &str) {
    let plugins_kept = snapshot.carry_over(&shared.load());
    let instances = snapshot.instances();
    shared.store(Arc::new(snapshot));
    if let Some(control) = control {
        control.watch(instances);
    }
    tracing::info!(source, plugins_kept, "configuration installed");
}

fn load(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    // No environment: `${{ env ... }}` in a document sent to the Admin API or saved by
    // it must not read this process's variables.
    config::load_str(text, file, &|_| None)
}

impl Admin {
    /// An Admin with an empty store; `shared` keeps whatever it holds until the first
    /// [`Admin::load_deck`] / [`Admin::load_state`].
    pub fn new(
        shared: SharedSnapshot,
        control: Option<ControlPlane>,
        data: Option<DataDir>,
        node: NodeInfo,
        hooks: Arc<Hooks>,
    ) -> Admin {
        let config_hash = Arc::new(ArcSwap::from_pointee(config_hash(&Store::default().render())));
        Admin {
            store: Store::default(),
            config_hash,
            shared,
            control,
            data,
            node,
            hooks,
            tls: None,
            control_plane_id: None,
        }
    }

    /// What `GET /status` reads; it follows every later change.
    pub fn status_view(&self) -> StatusView {
        StatusView {
            shared: self.shared.clone(),
            hooks: self.hooks.clone(),
            workers: self.node.workers,
            config_hash: self.config_hash.clone(),
        }
    }

    /// TLS listeners are configured: every configuration installed from now on gets a
    /// TLS server config, and one that leaves nothing to serve is refused.
    pub fn set_tls(&mut self, tls: TlsInputs) {
        self.tls = Some(tls);
    }

    pub fn shared(&self) -> &SharedSnapshot {
        &self.shared
    }

    pub fn data_dir(&self) -> Option<&DataDir> {
        self.data.as_ref()
    }

    /// Applies a candidate store (an Admin API change).
    pub fn commit(&mut self, candidate: &Store) -> Result<(), ApplyError> {
        let text = candidate.render();
        let cfg = load(&text, "admin").map_err(|errors| ApplyError::Invalid { errors, text })?;
        self.install_config(cfg, candidate, "admin API", true)
    }

    /// Replaces everything with a decK file and any manifest files beside it (start-up,
    /// SIGHUP). Errors and warnings carry the file's name and positions; warnings are
    /// logged.
    pub fn load_deck(&mut self, paths: &[PathBuf]) -> Result<(), ApplyError> {
        let cfg = config::load_files(paths).map_err(|errors| ApplyError::Invalid { errors, text: String::new() })?;
        let file = paths.first().map(|p| p.display().to_string()).unwrap_or_default();
        self.check_and_install(cfg, &file, String::new(), None)
    }

    /// Replaces everything with a saved state document (`--resume`).
    pub fn load_state(&mut self, text: &str, file: &str) -> Result<(), ApplyError> {
        let cfg = load(text, file).map_err(|errors| ApplyError::Invalid { errors, text: text.to_string() })?;
        let doc: Value = serde_json::from_str(text).map_err(|e| StoreError::Malformed(e.to_string()))?;
        let previous = Store::from_document(&doc)?;
        self.check_and_install(cfg, file, text.to_string(), Some(previous))
    }

    /// Replaces everything with a declarative document sent to `POST /config` (YAML or
    /// JSON). Entities without ids keep the ids of the entities they match by name.
    pub fn load_document(&mut self, text: &str) -> Result<(), ApplyError> {
        let cfg = load(text, "config").map_err(|errors| ApplyError::Invalid { errors, text: text.to_string() })?;
        self.check_and_install(cfg, "config", text.to_string(), None)
    }

    /// Compiles `cfg` once on its own, so errors point into the text it came from,
    /// logs its warnings, then installs it.
    fn check_and_install(
        &mut self,
        mut cfg: Config,
        file: &str,
        text: String,
        previous: Option<Store>,
    ) -> Result<(), ApplyError> {
        let warnings = snapshot::check(&mut cfg, file).map_err(|errors| ApplyError::Invalid { errors, text })?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let previous = previous.unwrap_or_else(|| self.store.clone());
        self.install_config(cfg, &previous, file, false)
    }

    fn install_config(&mut self, cfg: Config, previous: &Store, source: &str, warn: bool) -> Result<(), ApplyError> {
        let store = Store::from_config(&cfg, previous, unix_now(), &mut new_id)?;
        let text = store.render();
        let cfg = load(&text, "state").map_err(|e| ApplyError::Internal(e.to_string()))?;
        let mut snapshot = Snapshot::build(cfg, &mut self.known_addresses())
            .map_err(|errors| ApplyError::Invalid { errors, text: text.clone() })?;
        if let Some(tls) = &self.tls {
            tls.apply(&mut snapshot)
                .map_err(|e| ApplyError::Invalid { errors: ConfigErrors(vec![e]), text: String::new() })?;
        } else if snapshot.oidc.iter().flatten().any(|i| i.config.mtls != crate::oidc::config::PopMode::Off) {
            tracing::warn!(
                "proof_of_possession_mtls is on, and ringgate has no TLS listener (--tls-listen): no caller can \
                 present a client certificate, so every certificate-bound token is refused"
            );
        }
        if warn {
            for w in &snapshot.config.warnings {
                tracing::warn!("admin API: {}", w.message);
            }
        }
        if let Some(data) = &self.data {
            data.save(&text)?;
        }
        install(&self.shared, self.control.as_ref(), snapshot, source);
        self.store = store;
        self.config_hash.store(Arc::new(config_hash(&text)));
        Ok(())
    }

    /// Addresses the running snapshot already resolved, so a change does not look up
    /// every upstream name again.
    fn known_addresses(&self) -> Resolved {
        // Names that did not resolve are looked up again.
        self.shared
            .load()
            .names
            .iter()
            .filter(|(_, ips)| !ips.is_empty())
            .map(|(n, ips)| (n.clone(), ips.clone()))
            .collect()
    }
}

/// Places each error of `errors` in the document `text`: the path of the key or value
/// at its position, plus its missing `field` when it names one. Errors that cannot be
/// placed (no position, a document that does not parse) get an empty path.
pub fn locate(text: &str, errors: &ConfigErrors) -> Vec<Problem> {
    let root = config::template::render(text, &|_| None).ok().and_then(|r| config::yaml::parse(&r.text, &r.map).ok());
    // One walk of the document for all the errors: a walk per error was quadratic in a
    // document with an error per entity.
    let wanted: HashSet<Mark> = errors.0.iter().filter_map(|e| e.mark).collect();
    let mut paths = HashMap::new();
    if let Some(root) = &root {
        index(root, &wanted, &mut Vec::new(), &mut paths);
    }
    errors
        .0
        .iter()
        .map(|e| {
            let mut path = e.mark.and_then(|m| paths.get(&m)).cloned().unwrap_or_default();
            if let Some(field) = e.field {
                path.push(Seg::Key(field.to_string()));
            }
            Problem { path, message: e.message.clone() }
        })
        .collect()
}

/// Records in `paths`, for each mark of `wanted`, the path of the first node or key
/// at that mark in document order (a node before its keys, a key before its value).
fn index(node: &Node, wanted: &HashSet<Mark>, path: &mut Vec<Seg>, paths: &mut HashMap<Mark, Vec<Seg>>) {
    if wanted.contains(&node.mark) {
        paths.entry(node.mark).or_insert_with(|| path.clone());
    }
    match &node.value {
        NodeValue::Map(entries) => {
            for (key, key_mark, value) in entries {
                path.push(Seg::Key(key.clone()));
                if wanted.contains(key_mark) {
                    paths.entry(*key_mark).or_insert_with(|| path.clone());
                }
                index(value, wanted, path, paths);
                path.pop();
            }
        }
        NodeValue::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                index(item, wanted, path, paths);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.to_string())
    }

    #[test]
    fn errors_are_placed_at_the_key_or_value_they_are_about() {
        let text = "{\n  \"_format_version\": \"3.0\",\n  \"services\": [\n    {\n      \"host\": \"a\",\n      \"port\": 99999,\n      \"colour\": \"blue\"\n    },\n    {\n      \"name\": \"b\"\n    }\n  ]\n}\n";
        let errors = load(text, "t").unwrap_err();
        let mut problems = locate(text, &errors);
        problems.sort_by(|a, b| format!("{:?}", a.path).cmp(&format!("{:?}", b.path)));
        let paths: Vec<_> = problems.iter().map(|p| p.path.clone()).collect();
        assert!(paths.contains(&vec![key("services"), Seg::Index(0), key("port")]), "{problems:?}");
        assert!(paths.contains(&vec![key("services"), Seg::Index(0), key("colour")]), "{problems:?}");
        assert!(paths.contains(&vec![key("services"), Seg::Index(1), key("host")]), "missing field: {problems:?}");
    }

    #[test]
    fn a_missing_plugin_issuer_is_placed_under_config() {
        let text = "{\"_format_version\": \"3.0\", \"plugins\": [{\"name\": \"openid-connect\",\n \"config\": {\"auth_methods\": [\"bearer\"]}}]}";
        let cfg = load(text, "t").unwrap();
        let errors = match snapshot::compile(&cfg) {
            Err(e) => e,
            Ok(_) => panic!("an openid-connect plugin without issuer compiles"),
        };
        let problems = locate(text, &errors);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, vec![key("plugins"), Seg::Index(0), key("config"), key("issuer")]);
    }

    #[test]
    fn each_of_many_errors_is_placed_at_its_own_entity() {
        // Each error used to walk the document from its start: quadratic in a POST
        // /config document with an error per entity. Its time is measured in
        // benches/config_scale.rs; this checks every place at a size.
        let services: Vec<Value> = (0..5_000).map(|i| serde_json::json!({ "host": "127.0.0.1", "port": -i })).collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({ "_format_version": "3.0", "services": services }))
            .unwrap();
        let errors = load(&text, "t").unwrap_err();
        assert_eq!(errors.0.len(), 5_000);
        let problems = locate(&text, &errors);
        assert_eq!(problems.len(), 5_000);
        for (i, p) in problems.iter().enumerate() {
            assert_eq!(p.path, vec![key("services"), Seg::Index(i), key("port")]);
        }
    }

    #[test]
    fn unplaceable_errors_have_an_empty_path() {
        let errors = ConfigErrors(vec![ConfigError {
            file: "x".into(),
            mark: Some(Mark { line: 99, column: 1 }),
            message: "m".into(),
            field: None,
        }]);
        assert_eq!(locate("{}", &errors)[0].path, Vec::<Seg>::new());
        assert_eq!(locate("[unclosed", &errors)[0].path, Vec::<Seg>::new());
    }
}
