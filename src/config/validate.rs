//! Positioned YAML tree → typed [`Config`], with every problem reported at once.
//!
//! The walk visits every key of every entity, so one run lists all unknown keys, wrong
//! types, bad values, duplicate names and dangling references, each at its line and
//! column, sorted in file order. Kong's defaults are filled in here so nothing after
//! the loader ever sees an absent field. Nested decK entities are flattened (routes
//! into [`Config::routes`], plugins into [`Config::plugins`]) and references by name or
//! id are resolved to indices once every entity is known.
//!
//! # Kong keys ringgate does not act on yet
//!
//! The rule: a key that cannot change how a request flows is accepted with a warning
//! (in [`Config::warnings`]); a key whose Kong meaning ringgate would silently not honour
//! — so traffic would go elsewhere, be trusted differently or be let through — is a load
//! error. Empty lists and `null` never trigger either.
//!
//! | Key | Outcome | Why |
//! |---|---|---|
//! | `_transform: false` | warning | only changes how decK hashes credentials |
//! | `_info.select_tags`, `_info.default_lookup_tags` | warning | decK sync scoping, not traffic |
//! | `_info.defaults` | error | would change entity defaults (timeouts, paths) |
//! | `_workspace`, `_konnect` | warning | ringgate has one workspace, no control plane |
//! | service `protocol`/route `protocols` grpc, grpcs, tcp, tls, tls_passthrough, udp, ws, wss | error | not spoken yet |
//! | service `tls_verify` | honoured; **default true** (Kong's is off) | an unverified upstream is opt-in |
//! | service `tls_verify_depth` | warning | the verifier's own depth limit applies |
//! | route `snis`, `sources`, `destinations` | error | matching would be wider than written |
//! | route `expression`, `priority` | error | the expressions router is not implemented |
//! | route `request_buffering`/`response_buffering: false` | warning | affects latency, not where or whether a request goes |
//! | plugin `ordering` | warning | one plugin instance per request, order is moot |
//! | plugin `consumer`, `consumer_group`, `_config`, `partials` | error | scoping or shared config not supported |
//! | top-level `vaults`, `filter_chains` | error | secret references or filters would differ |
//! | upstream active `healthchecks` of type `grpc`, `grpcs` | error | the probes would not be sent |
//! | upstream `use_srv_name: true` | warning | targets are resolved by A/AAAA records |
//! | consumer credentials (`keyauth_credentials`, `acls`, …) and `groups` | warning | no ringgate plugin reads them |
//! | top-level `consumer_groups` (without plugins), `key_sets`, `keys`, `partials`, `licenses`, `rbac_roles`, `custom_entities`, `_plugin_configs`, `service_packages` | warning | nothing refers to them in what ringgate runs |
//! | `plugins` nested under consumers or consumer groups | error | consumer-scoped plugins are not supported |
//!
//! Cost: linear in the document; load time only.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use super::model::*;
use super::node::{Node, NodeValue};

/// Validates a parsed decK document. On success the warnings are in the returned
/// [`Config`]; on failure only the errors are returned.
pub fn validate(root: &Node, file: &str) -> Result<Config, ConfigErrors> {
    let mut v =
        Validator { file, errors: Vec::new(), warnings: Vec::new(), config: Config::default(), pending: Vec::new() };
    v.document(root);
    v.resolve_references();
    v.check_duplicates();
    v.group_targets();
    let mut errors = v.errors;
    if errors.is_empty() {
        let mut config = v.config;
        let mut warnings = v.warnings;
        warnings.sort_by_key(|e| e.mark.map(|m| (m.line, m.column)));
        config.warnings = warnings;
        Ok(config)
    } else {
        errors.sort_by_key(|e| e.mark.map(|m| (m.line, m.column)));
        Err(ConfigErrors(errors))
    }
}

/// A reference by name or id, resolved once every entity has been read.
struct PendingRef {
    target: RefKind,
    text: String,
    mark: Mark,
    owner: Owner,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Service,
    Route,
    Upstream,
}

#[derive(Clone, Copy)]
enum Owner {
    Route(usize),
    Plugin(usize),
    Target(usize),
}

struct Validator<'f> {
    file: &'f str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    config: Config,
    pending: Vec<PendingRef>,
}

/// Where an entity was declared, which decides the keys it may have and its scope.
#[derive(Clone, Copy)]
enum Parent {
    TopLevel,
    Service(usize),
    Route(usize),
}

const SERVICE_PROTOCOLS_LATER: &[&str] = &["grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp", "ws", "wss"];
const PLUGIN_PROTOCOLS: &[&str] =
    &["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp", "ws", "wss"];

/// Each name or id to the first entity (in file order) that has it as either, as a
/// scan for the first match would find it.
fn first_index<'a>(entities: impl Iterator<Item = [Option<&'a str>; 2]>) -> HashMap<&'a str, usize> {
    let mut index = HashMap::new();
    for (i, keys) in entities.enumerate() {
        for key in keys.into_iter().flatten() {
            index.entry(key).or_insert(i);
        }
    }
    index
}

/// `8-4-4-4-12` hexadecimal, as Kong's `typedefs.uuid`.
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A cookie's `Path` attribute as ringgate writes it: a path from `/`, printable ASCII
/// without `;` (RFC 6265 §4.1.1 `path-value`) and without spaces.
fn cookie_path_ok(s: &str) -> bool {
    s.starts_with('/') && s.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

impl Validator<'_> {
    fn error(&mut self, mark: Mark, message: impl Into<String>) {
        self.errors.push(ConfigError::at(self.file, mark, message));
    }

    fn warn(&mut self, mark: Mark, message: impl Into<String>) {
        self.warnings.push(ConfigError::at(self.file, mark, message));
    }

    fn entries<'n>(&mut self, node: &'n Node, what: &str) -> &'n [(String, Mark, Node)] {
        match &node.value {
            NodeValue::Map(entries) => entries,
            _ => {
                self.error(node.mark, format!("{what} must be a map, found {}", node.kind()));
                &[]
            }
        }
    }

    fn items<'n>(&mut self, node: &'n Node, key: &str) -> &'n [Node] {
        match &node.value {
            NodeValue::Seq(items) => items,
            NodeValue::Null => &[],
            _ => {
                self.error(node.mark, format!("'{key}' must be a list, found {}", node.kind()));
                &[]
            }
        }
    }

    fn string(&mut self, node: &Node, key: &str) -> Option<String> {
        match &node.value {
            NodeValue::String(s) => Some(s.clone()),
            NodeValue::Null => None,
            _ => {
                self.error(node.mark, format!("'{key}' must be a string, found {}", node.kind()));
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            NodeValue::Null => None,
            _ => {
                self.error(node.mark, format!("'{key}' must be true or false, found {}", node.kind()));
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, key: &str, min: i64, max: i64) -> Option<i64> {
        match node.value {
            NodeValue::Int(n) if (min..=max).contains(&n) => Some(n),
            NodeValue::Int(n) => {
                self.error(node.mark, format!("'{key}' must be an integer from {min} to {max}, found {n}"));
                None
            }
            NodeValue::Null => None,
            _ => {
                self.error(node.mark, format!("'{key}' must be an integer from {min} to {max}, found {}", node.kind()));
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, key: &str) -> Vec<(String, Mark)> {
        let mut out = Vec::new();
        for item in self.items(node, key) {
            match &item.value {
                NodeValue::String(s) => out.push((s.clone(), item.mark)),
                _ => self.error(item.mark, format!("'{key}' entries must be strings, found {}", item.kind())),
            }
        }
        out
    }

    fn tags(&mut self, node: &Node) -> Vec<String> {
        self.strings(node, "tags").into_iter().map(|(s, _)| s).collect()
    }

    fn id(&mut self, node: &Node) -> Option<String> {
        let id = self.string(node, "id")?;
        if !is_uuid(&id) {
            self.error(node.mark, format!("'id' must be a UUID, found '{id}'"));
        }
        Some(id)
    }

    fn unknown_key(&mut self, mark: Mark, key: &str, entity: &str) {
        self.error(mark, format!("unknown key '{key}' in {entity}"));
    }

    fn not_supported_unless_empty(&mut self, mark: Mark, node: &Node, key: &str, why: &str) {
        if !node.is_unset() {
            self.error(mark, format!("'{key}' is not supported yet: {why}"));
        }
    }

    fn warn_unless_empty(&mut self, mark: Mark, node: &Node, key: &str, why: &str) {
        if !node.is_unset() {
            self.warn(mark, format!("'{key}' is ignored: {why}"));
        }
    }

    // ----- the document -----

    fn document(&mut self, root: &Node) {
        if matches!(root.value, NodeValue::Null) {
            self.error(root.mark, "the file is empty; a decK file starts with _format_version: \"3.0\"");
            return;
        }
        let entries = self.entries(root, "the document");
        if entries.is_empty() {
            return;
        }
        if root.get("_format_version").is_none() {
            self.error(root.mark, "missing _format_version; decK 3.0 files start with _format_version: \"3.0\"");
        }
        for (key, mark, value) in entries {
            let mark = *mark;
            match key.as_str() {
                "_format_version" => self.format_version(value),
                "_transform" => {
                    if self.boolean(value, key) == Some(false) {
                        self.warn(mark, "'_transform: false' has no effect in ringgate (it only changes how decK hashes credentials)");
                    }
                }
                "_info" => self.info(value),
                "_workspace" | "_konnect" => {
                    if !value.is_unset() {
                        self.warn(
                            mark,
                            format!("'{key}' is ignored: ringgate serves one workspace and has no control plane"),
                        );
                    }
                }
                "services" => {
                    for item in self.items(value, key) {
                        self.service(item);
                    }
                }
                "routes" => {
                    for item in self.items(value, key) {
                        self.route(item, Parent::TopLevel);
                    }
                }
                "plugins" => {
                    for item in self.items(value, key) {
                        self.plugin(item, Parent::TopLevel);
                    }
                }
                "upstreams" => {
                    for item in self.items(value, key) {
                        self.upstream(item);
                    }
                }
                "targets" => {
                    for item in self.items(value, key) {
                        self.target(item, None);
                    }
                }
                "certificates" => {
                    for item in self.items(value, key) {
                        self.certificate(item);
                    }
                }
                "ca_certificates" => {
                    for item in self.items(value, key) {
                        self.ca_certificate(item);
                    }
                }
                "vaults" => self.not_supported_unless_empty(
                    mark,
                    value,
                    key,
                    "'{vault://...}' references would not be resolved; use ${{ env \"DECK_...\" }} instead",
                ),
                "filter_chains" => {
                    self.not_supported_unless_empty(mark, value, key, "filters would not run on the traffic")
                }
                "consumers" => {
                    for item in self.items(value, key) {
                        self.consumer(item);
                    }
                }
                "consumer_groups" => self.consumer_groups(key, mark, value),
                "key_sets" | "keys" | "partials" | "licenses" | "rbac_roles" | "custom_entities"
                | "_plugin_configs" | "service_packages" => {
                    self.warn_unless_empty(mark, value, key, "no ringgate feature refers to it")
                }
                _ => self.error(mark, format!("unknown top-level key '{key}'")),
            }
        }
    }

    fn format_version(&mut self, value: &Node) {
        match &value.value {
            NodeValue::String(v) if v == "3.0" => {}
            NodeValue::String(v) if v == "1.1" || v == "2.1" => self.error(
                value.mark,
                format!(
                    "_format_version \"{v}\" is a decK file for Kong 2.x; convert it with \
                     'deck file convert --from kong-gateway-2.x --to kong-gateway-3.x'"
                ),
            ),
            NodeValue::String(v) => self.error(value.mark, format!("_format_version must be \"3.0\", found \"{v}\"")),
            NodeValue::Float(_) | NodeValue::Int(_) => {
                self.error(value.mark, "_format_version must be the string \"3.0\" (quote it)")
            }
            _ => self.error(value.mark, format!("_format_version must be \"3.0\", found {}", value.kind())),
        }
    }

    fn info(&mut self, value: &Node) {
        for (key, mark, v) in self.entries(value, "_info") {
            match key.as_str() {
                "select_tags" | "default_lookup_tags" => {
                    self.strings(v, key);
                    self.warn_unless_empty(*mark, v, key, "tags only scope what decK syncs");
                }
                "defaults" => self.not_supported_unless_empty(
                    *mark,
                    v,
                    key,
                    "entity defaults would change services and routes; write the values on the entities",
                ),
                _ => self.unknown_key(*mark, key, "_info"),
            }
        }
    }

    /// `consumer_groups`: accepted and ignored (nothing in ringgate reads a group), but
    /// plugins scoped to a group would not apply, so those are an error.
    fn consumer_groups(&mut self, key: &str, mark: Mark, value: &Node) {
        let items = self.items(value, key);
        for item in items {
            if let NodeValue::Map(entries) = &item.value {
                for (k, m, v) in entries {
                    if k == "plugins" {
                        self.not_supported_unless_empty(
                            *m,
                            v,
                            "plugins",
                            "plugins scoped to consumers or consumer groups would not apply",
                        );
                    }
                }
            }
        }
        if !items.is_empty() {
            self.warn(mark, format!("'{key}' are ignored: no ringgate plugin reads consumer groups yet"));
        }
    }

    fn consumer(&mut self, node: &Node) {
        let (mut id, mut username, mut custom_id, mut tags) = (None, None, None, Vec::new());
        for (key, mark, value) in self.entries(node, "a consumer") {
            let mark = *mark;
            match key.as_str() {
                "id" => id = self.id(value),
                "username" | "custom_id" => {
                    let Some(text) = self.string(value, key) else { continue };
                    if text.is_empty() || text.bytes().any(|b| b.is_ascii_control()) {
                        // It is sent upstream as a header value.
                        self.error(value.mark, format!("'{key}' must be non-empty text without control characters"));
                    } else if key == "username" {
                        username = Some(text);
                    } else {
                        custom_id = Some(text);
                    }
                }
                "tags" => tags = self.tags(value),
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                "type" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                "plugins" => self.not_supported_unless_empty(
                    mark,
                    value,
                    key,
                    "plugins scoped to consumers or consumer groups would not apply",
                ),
                "keyauth_credentials"
                | "basicauth_credentials"
                | "hmacauth_credentials"
                | "jwt_secrets"
                | "oauth2_credentials"
                | "mtls_auth_credentials"
                | "acls" => self.warn_unless_empty(mark, value, key, "no ringgate plugin reads consumer credentials"),
                "groups" => self.warn_unless_empty(mark, value, key, "no ringgate plugin reads consumer groups"),
                _ => self.unknown_key(mark, key, "a consumer"),
            }
        }
        if !matches!(node.value, NodeValue::Map(_)) {
            return;
        }
        if username.is_none() && custom_id.is_none() {
            self.error(node.mark, "a consumer needs 'username' or 'custom_id'");
            return;
        }
        let id_given = id.is_some();
        let id = id.unwrap_or_else(|| consumer_id_for(username.as_deref(), custom_id.as_deref()));
        self.config.consumers.push(Consumer { id, id_given, username, custom_id, tags, mark: node.mark });
    }

    // ----- services -----

    fn service(&mut self, node: &Node) {
        let index = self.config.services.len();
        let mut svc = Service::new(String::new(), 80, node.mark);
        let entries = self.entries(node, "a service");
        let mut url: Option<(Mark, &Node)> = None;
        let mut explicit: Vec<(&str, Mark)> = Vec::new();
        let mut port: Option<u16> = None;
        let mut host_given = false;
        // Nested routes and plugins, in document order, read once the service is pushed.
        let mut nested: Vec<(&str, &Node)> = Vec::new();
        for (key, mark, value) in entries {
            let mark = *mark;
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "name" => svc.name = self.string(value, key),
                "id" => svc.id = self.id(value),
                "url" => url = Some((mark, value)),
                "protocol" => {
                    explicit.push(("protocol", mark));
                    if let Some(p) = self.string(value, key) {
                        if let Some(p) = self.service_protocol(&p, value.mark) {
                            svc.protocol = p;
                        }
                    }
                }
                "host" => {
                    explicit.push(("host", mark));
                    host_given = true;
                    if let Some(h) = self.string(value, key) {
                        if self.check_upstream_host(&h, value.mark) {
                            svc.host = h;
                        }
                    }
                }
                "port" => {
                    explicit.push(("port", mark));
                    port = self.integer(value, key, 1, 65535).map(|p| p as u16);
                }
                "path" => {
                    explicit.push(("path", mark));
                    if let Some(p) = self.string(value, key) {
                        if p.starts_with('/') {
                            svc.path = Some(p);
                        } else {
                            self.error(value.mark, format!("'path' must start with '/', found '{p}'"));
                        }
                    }
                }
                "connect_timeout" | "read_timeout" | "write_timeout" => {
                    if let Some(ms) = self.integer(value, key, 1, 2_147_483_646) {
                        let d = Duration::from_millis(ms as u64);
                        match key.as_str() {
                            "connect_timeout" => svc.connect_timeout = d,
                            "read_timeout" => svc.read_timeout = d,
                            _ => svc.write_timeout = d,
                        }
                    }
                }
                "retries" => {
                    if let Some(n) = self.integer(value, key, 0, 32767) {
                        svc.retries = n as u32;
                    }
                }
                "enabled" => svc.enabled = self.boolean(value, key).unwrap_or(true),
                "tags" => svc.tags = self.tags(value),
                "routes" | "plugins" => {
                    for item in self.items(value, key) {
                        nested.push((key, item));
                    }
                }
                "tls_verify" => svc.tls_verify = self.boolean(value, key).unwrap_or(true),
                "tls_verify_depth" => {
                    self.integer(value, key, 0, 64);
                    self.warn(mark, "'tls_verify_depth' is ignored: the upstream TLS verifier applies its own limit");
                }
                "ca_certificates" => svc.ca_certificates = self.strings(value, key),
                "client_certificate" => {
                    svc.client_certificate = self.reference(value, key).map(|id| (id, value.mark));
                }
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(mark, key, "a service"),
            }
        }
        if let Some((url_mark, url_node)) = url {
            for (key, mark) in &explicit {
                self.error(*mark, format!("'{key}' conflicts with 'url' (given at {url_mark}); give one or the other"));
            }
            if let Some(text) = self.string(url_node, "url") {
                match parse_url(&text) {
                    Ok(parts) => {
                        if let Some(p) = self.service_protocol(&parts.scheme, url_node.mark) {
                            svc.protocol = p;
                        }
                        if self.check_upstream_host(&parts.host, url_node.mark) {
                            svc.host = parts.host;
                        }
                        port = parts.port;
                        svc.path = parts.path;
                    }
                    Err(message) => self.error(url_node.mark, format!("invalid 'url' '{text}': {message}")),
                }
                host_given = true;
            }
        }
        if !host_given && matches!(node.value, NodeValue::Map(_)) {
            self.errors.push(ConfigError::missing(self.file, node.mark, "host", "a service needs 'host' or 'url'"));
        }
        svc.port = port.unwrap_or(svc.protocol.default_port());
        self.config.services.push(svc);
        for (key, item) in nested {
            if key == "routes" {
                self.route(item, Parent::Service(index));
            } else {
                self.plugin(item, Parent::Service(index));
            }
        }
    }

    fn service_protocol(&mut self, p: &str, mark: Mark) -> Option<Protocol> {
        match p {
            "http" => Some(Protocol::Http),
            "https" => Some(Protocol::Https),
            _ if SERVICE_PROTOCOLS_LATER.contains(&p) => {
                self.error(mark, format!("protocol '{p}' is not supported yet (ringgate proxies http and https)"));
                None
            }
            _ => {
                self.error(mark, format!("unknown protocol '{p}' (expected http or https)"));
                None
            }
        }
    }

    fn check_upstream_host(&mut self, host: &str, mark: Mark) -> bool {
        // A colon only belongs in an IPv6 literal: `127.0.0.1:8080` as a host (the port
        // written into it) would be looked up as a name and never resolve.
        let ok = if host.contains(':') {
            host.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if !ok {
            self.error(mark, format!("invalid host '{host}'"));
        }
        ok
    }

    // ----- routes -----

    fn route(&mut self, node: &Node, parent: Parent) {
        let index = self.config.routes.len();
        let mut route = Route::new(
            match parent {
                Parent::Service(s) => Some(s),
                _ => None,
            },
            node.mark,
        );
        let entries = self.entries(node, "a route");
        let mut nested_plugins = Vec::new();
        for (key, mark, value) in entries {
            let mark = *mark;
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "name" => route.name = self.string(value, key),
                "id" => route.id = self.id(value),
                "service" => match parent {
                    Parent::TopLevel => {
                        if let Some(text) = self.reference(value, key) {
                            self.pending.push(PendingRef {
                                target: RefKind::Service,
                                text,
                                mark: value.mark,
                                owner: Owner::Route(index),
                            });
                        }
                    }
                    _ => self.error(mark, "a route nested under a service must not name a service"),
                },
                "protocols" => {
                    let mut protocols = Vec::new();
                    for (p, m) in self.strings(value, key) {
                        match p.as_str() {
                            "http" => protocols.push(Protocol::Http),
                            "https" => protocols.push(Protocol::Https),
                            _ if SERVICE_PROTOCOLS_LATER.contains(&p.as_str()) => self.error(
                                m,
                                format!("protocol '{p}' is not supported yet (ringgate routes http and https)"),
                            ),
                            _ => self.error(m, format!("unknown protocol '{p}' (expected http or https)")),
                        }
                    }
                    if !protocols.is_empty() {
                        route.protocols = protocols;
                    }
                }
                "methods" => {
                    for (m, at) in self.strings(value, key) {
                        if is_token(&m) {
                            route.methods.push(m.to_ascii_uppercase());
                        } else {
                            self.error(at, format!("invalid method '{m}'"));
                        }
                    }
                }
                "hosts" => {
                    for (h, at) in self.strings(value, key) {
                        match check_route_host(&h) {
                            Ok(h) => route.hosts.push(h),
                            Err(why) => self.error(at, format!("invalid host '{h}': {why}")),
                        }
                    }
                }
                "paths" => {
                    for (p, at) in self.strings(value, key) {
                        if let Some(re) = p.strip_prefix('~') {
                            if re.is_empty() {
                                self.error(at, "a regex path needs a pattern after '~'");
                            } else {
                                route.paths.push(RoutePath::Regex(re.to_string()));
                            }
                        } else if p.starts_with('/') {
                            route.paths.push(RoutePath::Prefix(p));
                        } else {
                            self.error(at, format!("a path must start with '/' (or '~' for a regex), found '{p}'"));
                        }
                    }
                }
                "headers" => route.headers = self.headers(value),
                "strip_path" => route.strip_path = self.boolean(value, key).unwrap_or(true),
                "preserve_host" => route.preserve_host = self.boolean(value, key).unwrap_or(false),
                "regex_priority" => route.regex_priority = self.integer(value, key, i64::MIN, i64::MAX).unwrap_or(0),
                "path_handling" => match self.string(value, key).as_deref() {
                    Some("v0") => route.path_handling = PathHandling::V0,
                    Some("v1") => route.path_handling = PathHandling::V1,
                    Some(other) => self.error(value.mark, format!("'path_handling' must be v0 or v1, found '{other}'")),
                    None => {}
                },
                "https_redirect_status_code" => {
                    if let Some(code) = self.integer(value, key, 0, 999) {
                        if [426, 301, 302, 307, 308].contains(&code) {
                            route.https_redirect_status_code = code as u16;
                        } else {
                            self.error(
                                value.mark,
                                format!(
                                    "'https_redirect_status_code' must be one of 426, 301, 302, 307, 308, found {code}"
                                ),
                            );
                        }
                    }
                }
                "tags" => route.tags = self.tags(value),
                "snis" | "sources" | "destinations" => {
                    self.not_supported_unless_empty(mark, value, key, "the route would match more traffic than written")
                }
                "expression" | "priority" => {
                    self.error(mark, format!("'{key}' is not supported yet: ringgate has the traditional router only"))
                }
                "request_buffering" | "response_buffering" => {
                    if self.boolean(value, key) == Some(false) {
                        self.warn(mark, format!("'{key}: false' is ignored"));
                    }
                }
                "plugins" => nested_plugins = self.items(value, key).iter().collect(),
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(mark, key, "a route"),
            }
        }
        if matches!(node.value, NodeValue::Map(_))
            && route.methods.is_empty()
            && route.hosts.is_empty()
            && route.headers.is_empty()
            && route.paths.is_empty()
            && !entries
                .iter()
                .any(|(k, _, v)| matches!(k.as_str(), "methods" | "hosts" | "paths" | "headers") && !v.is_unset())
        {
            self.error(node.mark, "a route must set at least one of 'methods', 'hosts', 'headers' or 'paths'");
        }
        self.config.routes.push(route);
        for plugin in nested_plugins {
            self.plugin(plugin, Parent::Route(index));
        }
    }

    fn headers(&mut self, node: &Node) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for (name, mark, values) in self.entries(node, "'headers'") {
            let lower = name.to_ascii_lowercase();
            if lower == "host" {
                self.error(*mark, "'host' is not allowed in 'headers'; use 'hosts'");
                continue;
            }
            if !is_token(&lower) {
                self.error(*mark, format!("invalid header name '{name}'"));
                continue;
            }
            let list: Vec<String> = match &values.value {
                NodeValue::Seq(_) => self.strings(values, name).into_iter().map(|(s, _)| s).collect(),
                _ => {
                    self.error(
                        values.mark,
                        format!("header '{name}' must have a list of values, found {}", values.kind()),
                    );
                    continue;
                }
            };
            if list.is_empty() {
                self.error(values.mark, format!("header '{name}' needs at least one value"));
                continue;
            }
            out.push((lower, list));
        }
        out
    }

    /// A reference to another entity: a name or id string, or decK's `{id: ...}` /
    /// `{name: ...}` form.
    fn reference(&mut self, node: &Node, key: &str) -> Option<String> {
        match &node.value {
            NodeValue::String(s) => Some(s.clone()),
            NodeValue::Map(entries) => {
                let mut found = None;
                for (k, m, v) in entries {
                    match k.as_str() {
                        "id" | "name" if found.is_none() => found = self.string(v, k),
                        "id" | "name" => self.error(*m, format!("'{key}' must give either 'id' or 'name'")),
                        _ => self.unknown_key(*m, k, &format!("a '{key}' reference")),
                    }
                }
                if found.is_none() && entries.is_empty() {
                    self.error(node.mark, format!("'{key}' reference needs 'id' or 'name'"));
                }
                found
            }
            _ => {
                self.error(node.mark, format!("'{key}' must be a name, an id, or a map with 'name' or 'id'"));
                None
            }
        }
    }

    // ----- certificates -----

    fn certificate(&mut self, node: &Node) {
        let mut cert = Certificate {
            id: None,
            cert: String::new(),
            key: String::new(),
            snis: Vec::new(),
            tags: Vec::new(),
            mark: node.mark,
            cert_mark: node.mark,
            key_mark: node.mark,
            cert_alt: String::new(),
            key_alt: String::new(),
            cert_alt_mark: node.mark,
            key_alt_mark: node.mark,
        };
        for (key, mark, value) in self.entries(node, "a certificate") {
            match key.as_str() {
                "id" => cert.id = self.id(value),
                "cert" => {
                    cert.cert = self.string(value, key).unwrap_or_default();
                    cert.cert_mark = value.mark;
                }
                "key" => {
                    cert.key = self.string(value, key).unwrap_or_default();
                    cert.key_mark = value.mark;
                }
                "snis" => {
                    for item in self.items(value, key) {
                        // decK writes `- name: example.com`; a plain string is accepted too.
                        let name = match &item.value {
                            NodeValue::Map(_) => item.get("name").and_then(|n| self.string(n, "name")),
                            _ => self.string(item, "snis"),
                        };
                        if let Some(name) = name {
                            // Kong also takes `example.*`; ringgate matches only a leading
                            // `*.`, and says so rather than never matching the name.
                            if name.strip_prefix("*.").unwrap_or(&name).contains('*') {
                                self.error(
                                    item.mark,
                                    format!("SNI '{name}': only a leading '*.' wildcard is supported"),
                                );
                                continue;
                            }
                            cert.snis.push((name.to_ascii_lowercase(), item.mark));
                        }
                    }
                }
                "tags" => cert.tags = self.tags(value),
                "cert_alt" => {
                    cert.cert_alt = self.string(value, key).unwrap_or_default();
                    cert.cert_alt_mark = value.mark;
                }
                "key_alt" => {
                    cert.key_alt = self.string(value, key).unwrap_or_default();
                    cert.key_alt_mark = value.mark;
                }
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(*mark, key, "a certificate"),
            }
        }
        for (field, value) in [("cert", &cert.cert), ("key", &cert.key)] {
            if value.is_empty() {
                self.error(node.mark, format!("a certificate needs '{field}' (PEM)"));
            }
        }
        if cert.cert_alt.is_empty() != cert.key_alt.is_empty() {
            self.error(node.mark, "a certificate needs both 'cert_alt' and 'key_alt', or neither");
        }
        self.config.certificates.push(cert);
    }

    fn ca_certificate(&mut self, node: &Node) {
        let mut ca =
            CaCertificate { id: None, cert: String::new(), tags: Vec::new(), mark: node.mark, cert_mark: node.mark };
        for (key, mark, value) in self.entries(node, "a CA certificate") {
            match key.as_str() {
                "id" => ca.id = self.id(value),
                "cert" => {
                    ca.cert = self.string(value, key).unwrap_or_default();
                    ca.cert_mark = value.mark;
                }
                "cert_digest" => {
                    self.string(value, key);
                }
                "tags" => ca.tags = self.tags(value),
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(*mark, key, "a CA certificate"),
            }
        }
        if ca.cert.is_empty() {
            self.error(node.mark, "a CA certificate needs 'cert' (PEM)");
        }
        self.config.ca_certificates.push(ca);
    }

    // ----- upstreams and targets -----

    fn upstream(&mut self, node: &Node) {
        let index = self.config.upstreams.len();
        let mut up = Upstream {
            id: None,
            name: String::new(),
            algorithm: Algorithm::RoundRobin,
            hash_on: HashOn::None,
            hash_fallback: HashOn::None,
            hash_on_cookie: None,
            hash_on_cookie_path: "/".into(),
            sticky_sessions_cookie: None,
            sticky_sessions_cookie_path: "/".into(),
            client_certificate: None,
            slots: DEFAULT_SLOTS,
            host_header: None,
            targets: 0..0,
            healthchecks: HealthChecks::default(),
            tags: Vec::new(),
            mark: node.mark,
        };
        let mut targets: &[Node] = &[];
        let mut name_seen = false;
        let mut hashing: Vec<(String, String, Mark)> = Vec::new();
        let mut hash_inputs: HashMap<&str, String> = HashMap::new();
        for (key, mark, value) in self.entries(node, "an upstream") {
            let mark = *mark;
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "id" => up.id = self.id(value),
                "name" => {
                    name_seen = true;
                    if let Some(name) = self.string(value, key) {
                        // Services name it as their host, so it must be one (no port).
                        if self.check_upstream_host(&name, value.mark) {
                            up.name = name;
                        }
                    }
                }
                "algorithm" => match self.string(value, key).as_deref() {
                    Some("round-robin") | None => up.algorithm = Algorithm::RoundRobin,
                    Some("least-connections") => up.algorithm = Algorithm::LeastConnections,
                    Some("consistent-hashing") => up.algorithm = Algorithm::ConsistentHashing,
                    Some("sticky-sessions") => up.algorithm = Algorithm::StickySessions,
                    Some("latency") => up.algorithm = Algorithm::Latency,
                    Some(a) => self.error(value.mark, format!("unknown algorithm '{a}'")),
                },
                "hash_on" | "hash_fallback" => {
                    if let Some(h) = self.string(value, key) {
                        hashing.push((key.clone(), h, value.mark));
                    }
                }
                "hash_on_header" | "hash_fallback_header" | "hash_on_query_arg" | "hash_fallback_query_arg" => {
                    if let Some(name) = self.string(value, key) {
                        hash_inputs.insert(key.as_str(), name);
                    }
                }
                "hash_on_cookie" => {
                    if let Some(name) = self.cookie_name(value, key) {
                        up.hash_on_cookie = Some(name);
                    }
                }
                "sticky_sessions_cookie" => {
                    if let Some(name) = self.cookie_name(value, key) {
                        up.sticky_sessions_cookie = Some(name);
                    }
                }
                "hash_on_cookie_path" => {
                    if let Some(path) = self.cookie_path(value, key) {
                        up.hash_on_cookie_path = path;
                    }
                }
                "sticky_sessions_cookie_path" => {
                    if let Some(path) = self.cookie_path(value, key) {
                        up.sticky_sessions_cookie_path = path;
                    }
                }
                "hash_on_uri_capture" | "hash_fallback_uri_capture" => {
                    if let Some(name) = self.string(value, key) {
                        hash_inputs.insert(key.as_str(), name);
                    }
                }
                "slots" => {
                    if let Some(n) = self.integer(value, key, 10, 65_536) {
                        up.slots = n as u32;
                    }
                }
                "healthchecks" => up.healthchecks = self.healthchecks(value),
                "host_header" => {
                    if let Some(h) = self.string(value, key) {
                        if self.check_upstream_host(&h, value.mark) {
                            up.host_header = Some(h);
                        }
                    }
                }
                "client_certificate" => {
                    up.client_certificate = self.reference(value, key).map(|id| (id, value.mark));
                }
                "use_srv_name" => {
                    if self.boolean(value, key) == Some(true) {
                        self.warn(mark, "'use_srv_name' is ignored: ringgate resolves targets by A/AAAA records");
                    }
                }
                "tags" => up.tags = self.tags(value),
                "targets" => targets = self.items(value, key),
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(mark, key, "an upstream"),
            }
        }
        if !name_seen && matches!(node.value, NodeValue::Map(_)) {
            self.errors.push(ConfigError::missing(self.file, node.mark, "name", "an upstream needs a 'name'"));
        }
        let fallback_mark = hashing.iter().find(|(k, _, _)| k == "hash_fallback").map(|(_, _, m)| *m);
        for (key, value, mark) in hashing {
            let prefix = if key == "hash_on" { "hash_on" } else { "hash_fallback" };
            let input = |what: &str| hash_inputs.get(format!("{prefix}_{what}").as_str()).cloned();
            let h = match value.as_str() {
                "none" => HashOn::None,
                "ip" => HashOn::Ip,
                "path" => HashOn::Path,
                "header" => match input("header") {
                    Some(name) if is_token(&name) => HashOn::Header(name.to_ascii_lowercase()),
                    Some(name) => {
                        self.error(mark, format!("'{prefix}_header' is not a header name: '{name}'"));
                        continue;
                    }
                    None => {
                        self.error(mark, format!("'{key}: header' needs '{prefix}_header'"));
                        continue;
                    }
                },
                "query_arg" => match input("query_arg") {
                    Some(name) if !name.is_empty() => HashOn::QueryArg(name),
                    _ => {
                        self.error(mark, format!("'{key}: query_arg' needs '{prefix}_query_arg'"));
                        continue;
                    }
                },
                "uri_capture" => match input("uri_capture") {
                    Some(name) if !name.is_empty() => HashOn::UriCapture(name),
                    _ => {
                        self.error(mark, format!("'{key}: uri_capture' needs '{prefix}_uri_capture'"));
                        continue;
                    }
                },
                "cookie" => {
                    if up.hash_on_cookie.is_none() {
                        self.error(mark, format!("'{key}: cookie' needs 'hash_on_cookie'"));
                        continue;
                    }
                    HashOn::Cookie
                }
                "consumer" => HashOn::Consumer,
                h => {
                    self.error(mark, format!("unknown '{key}' value '{h}'"));
                    continue;
                }
            };
            if h != HashOn::None && up.algorithm != Algorithm::ConsistentHashing {
                self.error(mark, format!("'{key}: {value}' needs 'algorithm: consistent-hashing'"));
                continue;
            }
            if key == "hash_on" {
                up.hash_on = h;
            } else {
                up.hash_fallback = h;
            }
        }
        if up.algorithm == Algorithm::StickySessions && up.sticky_sessions_cookie.is_none() {
            self.error(node.mark, "'algorithm: sticky-sessions' needs 'sticky_sessions_cookie'");
        }
        // A missing cookie is made, so nothing is ever left to fall back to (Kong's rule).
        if up.hash_on == HashOn::Cookie && up.hash_fallback != HashOn::None {
            self.error(fallback_mark.unwrap_or(node.mark), "'hash_fallback' must be 'none' when 'hash_on' is 'cookie'");
        }
        self.config.upstreams.push(up);
        for t in targets {
            self.target(t, Some(index));
        }
    }

    /// A cookie name to set and read (`hash_on_cookie`, `sticky_sessions_cookie`).
    fn cookie_name(&mut self, value: &Node, key: &str) -> Option<String> {
        let name = self.string(value, key)?;
        if is_token(&name) {
            return Some(name);
        }
        self.error(value.mark, format!("'{key}' is not a cookie name: '{name}'"));
        None
    }

    /// The `Path` of a cookie ringgate sets.
    fn cookie_path(&mut self, value: &Node, key: &str) -> Option<String> {
        let path = self.string(value, key)?;
        if cookie_path_ok(&path) {
            return Some(path);
        }
        self.error(value.mark, format!("'{key}' must be a path starting with '/', without ';' or spaces: '{path}'"));
        None
    }

    /// An upstream's `healthchecks`, every field checked, Kong's default where absent.
    /// `deck gateway dump` writes the whole block out, checks off included.
    fn healthchecks(&mut self, node: &Node) -> HealthChecks {
        let mut hc = HealthChecks::default();
        for (key, mark, value) in self.entries(node, "'healthchecks'") {
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "active" => self.active_checks(value, &mut hc.active),
                "passive" => {
                    for (key, mark, value) in self.entries(value, "'healthchecks.passive'") {
                        match key.as_str() {
                            "type" => {
                                // Which protocol passive checks watch: the service's own here.
                                if let Some(t) = self.string(value, key) {
                                    if !["http", "https", "tcp", "grpc", "grpcs"].contains(&t.as_str()) {
                                        self.error(value.mark, format!("unknown health check type '{t}'"));
                                    }
                                }
                            }
                            "healthy" => self.healthy_rule(value, "passive", &mut hc.passive.healthy),
                            "unhealthy" => self.unhealthy_rule(value, "passive", &mut hc.passive.unhealthy),
                            _ => self.unknown_key(*mark, key, "'healthchecks.passive'"),
                        }
                    }
                }
                "threshold" => {
                    if let Some(t) = self.number(value, key, 0.0, 100.0) {
                        hc.threshold = t;
                    }
                }
                _ => self.unknown_key(*mark, key, "'healthchecks'"),
            }
        }
        hc
    }

    fn active_checks(&mut self, node: &Node, a: &mut ActiveChecks) {
        for (key, mark, value) in self.entries(node, "'healthchecks.active'") {
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "type" => match self.string(value, key).as_deref() {
                    Some("http") | None => a.kind = ProbeKind::Http,
                    Some("https") => a.kind = ProbeKind::Https,
                    Some("tcp") => a.kind = ProbeKind::Tcp,
                    Some(t @ ("grpc" | "grpcs")) => self.error(
                        value.mark,
                        format!("active health checks of type '{t}' are not supported yet (http, https and tcp are)"),
                    ),
                    Some(t) => self.error(value.mark, format!("unknown health check type '{t}'")),
                },
                "timeout" => {
                    if let Some(t) = self.number(value, key, 0.0, 65_535.0) {
                        a.timeout = Duration::from_secs_f64(t);
                    }
                }
                "concurrency" => {
                    if let Some(n) = self.integer(value, key, 1, 2_147_483_648) {
                        a.concurrency = n as u32;
                    }
                }
                "http_path" => {
                    if let Some(p) = self.string(value, key) {
                        if p.starts_with('/') && !p.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                            a.http_path = p;
                        } else {
                            self.error(
                                value.mark,
                                format!("'http_path' must be a path starting with '/', found '{p}'"),
                            );
                        }
                    }
                }
                "https_sni" => {
                    if let Some(h) = self.string(value, key) {
                        if self.check_upstream_host(&h, value.mark) {
                            a.https_sni = Some(h);
                        }
                    }
                }
                "https_verify_certificate" => {
                    a.https_verify_certificate = self.boolean(value, key).unwrap_or(true);
                }
                "headers" => {
                    for (name, m, values) in self.entries(value, "'healthchecks.active.headers'") {
                        if !is_token(name) {
                            self.error(*m, format!("invalid header name '{name}'"));
                            continue;
                        }
                        let list = self.strings(values, name);
                        if list.iter().any(|(v, _)| v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)) {
                            self.error(values.mark, format!("header '{name}' has a value with CR, LF or NUL"));
                            continue;
                        }
                        a.headers.push((name.clone(), list.into_iter().map(|(v, _)| v).collect()));
                    }
                }
                "healthy" => self.healthy_rule(value, "active", &mut a.healthy),
                "unhealthy" => self.unhealthy_rule(value, "active", &mut a.unhealthy),
                _ => self.unknown_key(*mark, key, "'healthchecks.active'"),
            }
        }
    }

    /// `healthy` of `active` or `passive`.
    fn healthy_rule(&mut self, node: &Node, kind: &str, r: &mut HealthyRule) {
        let counts = &mut [("successes", &mut r.successes)];
        self.health_rule(node, kind, "healthy", &mut r.interval, &mut r.http_statuses, counts);
    }

    /// `unhealthy` of `active` or `passive`.
    fn unhealthy_rule(&mut self, node: &Node, kind: &str, r: &mut UnhealthyRule) {
        let counts = &mut [
            ("tcp_failures", &mut r.tcp_failures),
            ("timeouts", &mut r.timeouts),
            ("http_failures", &mut r.http_failures),
        ];
        self.health_rule(node, kind, "unhealthy", &mut r.interval, &mut r.http_statuses, counts);
    }

    /// One `healthchecks.<kind>.<state>` map: its `http_statuses`, its counts (0–255, by
    /// key), and for active checks its `interval`.
    fn health_rule(
        &mut self,
        node: &Node,
        kind: &str,
        state: &str,
        interval: &mut Duration,
        statuses: &mut Vec<u16>,
        counts: &mut [(&str, &mut u32)],
    ) {
        let what = format!("'healthchecks.{kind}.{state}'");
        for (key, mark, value) in self.entries(node, &what) {
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            if key == "interval" && kind == "active" {
                if let Some(t) = self.number(value, key, 0.0, 65_535.0) {
                    *interval = Duration::from_secs_f64(t);
                }
            } else if key == "http_statuses" {
                *statuses = self.statuses(value, key);
            } else if let Some((_, count)) = counts.iter_mut().find(|(name, _)| name == key) {
                **count = self.integer(value, key, 0, 255).unwrap_or(0) as u32;
            } else {
                self.unknown_key(*mark, key, &what);
            }
        }
    }

    /// A list of HTTP status codes (100–999).
    fn statuses(&mut self, node: &Node, key: &str) -> Vec<u16> {
        self.items(node, key).iter().filter_map(|item| self.integer(item, key, 100, 999).map(|n| n as u16)).collect()
    }

    /// A number (integer or float) from `min` to `max`.
    fn number(&mut self, node: &Node, key: &str, min: f64, max: f64) -> Option<f64> {
        let n = match node.value {
            NodeValue::Int(n) => n as f64,
            NodeValue::Float(f) => f,
            NodeValue::Null => return None,
            _ => {
                self.error(node.mark, format!("'{key}' must be a number from {min} to {max}, found {}", node.kind()));
                return None;
            }
        };
        if (min..=max).contains(&n) {
            Some(n)
        } else {
            self.error(node.mark, format!("'{key}' must be a number from {min} to {max}, found {n}"));
            None
        }
    }

    fn target(&mut self, node: &Node, upstream: Option<usize>) {
        let index = self.config.targets.len();
        let mut t = Target {
            id: None,
            upstream: upstream.unwrap_or(0),
            host: String::new(),
            port: DEFAULT_TARGET_PORT,
            weight: 100,
            tags: Vec::new(),
            mark: node.mark,
        };
        let mut target_seen = false;
        let mut upstream_named = false;
        for (key, mark, value) in self.entries(node, "a target") {
            let mark = *mark;
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "id" => t.id = self.id(value),
                "target" => {
                    target_seen = true;
                    if let Some(text) = self.string(value, key) {
                        match split_target(&text) {
                            Ok((host, port)) => {
                                if self.check_upstream_host(host, value.mark) {
                                    t.host = host.to_string();
                                    t.port = port.unwrap_or(DEFAULT_TARGET_PORT);
                                }
                            }
                            Err(why) => self.error(value.mark, format!("invalid target '{text}': {why}")),
                        }
                    }
                }
                "weight" => {
                    if let Some(w) = self.integer(value, key, 0, 65_535) {
                        t.weight = w as u32;
                    }
                }
                "upstream" => {
                    if upstream.is_some() {
                        self.error(mark, "a target nested under an upstream must not name an upstream");
                    } else if let Some(text) = self.reference(value, key) {
                        upstream_named = true;
                        self.pending.push(PendingRef {
                            target: RefKind::Upstream,
                            text,
                            mark: value.mark,
                            owner: Owner::Target(index),
                        });
                    }
                }
                "tags" => t.tags = self.tags(value),
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(mark, key, "a target"),
            }
        }
        if matches!(node.value, NodeValue::Map(_)) {
            if !target_seen {
                self.errors.push(ConfigError::missing(self.file, node.mark, "target", "a target needs 'target'"));
            }
            if upstream.is_none() && !upstream_named {
                self.errors.push(ConfigError::missing(
                    self.file,
                    node.mark,
                    "upstream",
                    "a top-level target needs 'upstream' (or nest it under its upstream)",
                ));
            }
        }
        self.config.targets.push(t);
    }

    // ----- plugins -----

    fn plugin(&mut self, node: &Node, parent: Parent) {
        let index = self.config.plugins.len();
        let mut plugin = Plugin {
            id: None,
            name: String::new(),
            instance_name: None,
            scope: match parent {
                Parent::TopLevel => PluginScope::Global,
                Parent::Service(s) => PluginScope::Service(s),
                Parent::Route(r) => PluginScope::Route(r),
            },
            enabled: true,
            protocols: ["grpc", "grpcs", "http", "https"].map(String::from).to_vec(),
            tags: Vec::new(),
            config: Node { mark: node.mark, value: NodeValue::Map(Vec::new()) },
            mark: node.mark,
            source: None,
        };
        let entries = self.entries(node, "a plugin");
        let mut name_seen = false;
        let mut service_ref: Option<Mark> = None;
        let mut route_ref: Option<Mark> = None;
        for (key, mark, value) in entries {
            let mark = *mark;
            if matches!(value.value, NodeValue::Null) {
                continue;
            }
            match key.as_str() {
                "name" => {
                    name_seen = true;
                    if let Some(name) = self.string(value, key) {
                        if !KNOWN_PLUGINS.contains(&name.as_str()) {
                            self.error(
                                value.mark,
                                format!("unknown plugin '{name}' (ringgate knows: {})", KNOWN_PLUGINS.join(", ")),
                            );
                        }
                        plugin.name = name;
                    }
                }
                "id" => plugin.id = self.id(value),
                "instance_name" => plugin.instance_name = self.string(value, key),
                "config" => match value.value {
                    NodeValue::Map(_) => plugin.config = value.clone(),
                    _ => self.error(value.mark, format!("'config' must be a map, found {}", value.kind())),
                },
                "enabled" => plugin.enabled = self.boolean(value, key).unwrap_or(true),
                "protocols" => {
                    let list = self.strings(value, key);
                    for (p, m) in &list {
                        if !PLUGIN_PROTOCOLS.contains(&p.as_str()) {
                            self.error(*m, format!("unknown protocol '{p}'"));
                        }
                    }
                    if !list.is_empty() {
                        plugin.protocols = list.into_iter().map(|(p, _)| p).collect();
                    }
                }
                "tags" => plugin.tags = self.tags(value),
                "service" | "route" => {
                    if !matches!(parent, Parent::TopLevel) {
                        self.error(
                            mark,
                            format!("a nested plugin must not name a {key}; its scope is where it is nested"),
                        );
                        continue;
                    }
                    if let Some(text) = self.reference(value, key) {
                        let target = if key == "service" { RefKind::Service } else { RefKind::Route };
                        if key == "service" {
                            service_ref = Some(mark);
                        } else {
                            route_ref = Some(mark);
                        }
                        self.pending.push(PendingRef { target, text, mark: value.mark, owner: Owner::Plugin(index) });
                    }
                }
                "consumer" | "consumer_group" => {
                    self.error(mark, format!("plugins scoped to a {key} are not supported yet"));
                }
                "_config" | "partials" => self.not_supported_unless_empty(
                    mark,
                    value,
                    key,
                    "write the plugin's configuration in its 'config'",
                ),
                "ordering" => {
                    if !value.is_unset() {
                        self.warn(mark, "'ordering' is ignored: only one plugin runs per request");
                    }
                }
                "created_at" | "updated_at" => {
                    self.integer(value, key, 0, i64::MAX);
                }
                _ => self.unknown_key(mark, key, "a plugin"),
            }
        }
        if let (Some(_), Some(route_mark)) = (service_ref, route_ref) {
            self.error(route_mark, "a plugin scoped to both a service and a route is not supported yet");
        }
        if !name_seen && matches!(node.value, NodeValue::Map(_)) {
            self.errors.push(ConfigError::missing(self.file, node.mark, "name", "a plugin needs a 'name'"));
        }
        self.config.plugins.push(plugin);
    }

    // ----- cross-entity checks -----

    fn resolve_references(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        // One index per kind: a scan per reference was quadratic in a document whose
        // routes, plugins and targets all name their parent (as the Admin API's do).
        let found: Vec<Option<usize>> = {
            let c = &self.config;
            let services = first_index(c.services.iter().map(|s| [s.name.as_deref(), s.id.as_deref()]));
            let routes = first_index(c.routes.iter().map(|r| [r.name.as_deref(), r.id.as_deref()]));
            let upstreams = first_index(c.upstreams.iter().map(|u| [Some(u.name.as_str()), u.id.as_deref()]));
            let index = |kind| match kind {
                RefKind::Service => &services,
                RefKind::Route => &routes,
                RefKind::Upstream => &upstreams,
            };
            pending.iter().map(|r| index(r.target).get(r.text.as_str()).copied()).collect()
        };
        for (r, found) in pending.into_iter().zip(found) {
            let Some(target) = found else {
                let kind = match r.target {
                    RefKind::Service => "service",
                    RefKind::Route => "route",
                    RefKind::Upstream => "upstream",
                };
                self.error(r.mark, format!("no {kind} named (or with id) '{}'", r.text));
                continue;
            };
            match (r.owner, r.target) {
                (Owner::Route(i), _) => self.config.routes[i].service = Some(target),
                (Owner::Plugin(i), RefKind::Service) => {
                    if matches!(self.config.plugins[i].scope, PluginScope::Global) {
                        self.config.plugins[i].scope = PluginScope::Service(target);
                    }
                }
                (Owner::Plugin(i), RefKind::Route) => self.config.plugins[i].scope = PluginScope::Route(target),
                (Owner::Plugin(_), RefKind::Upstream) => {}
                (Owner::Target(i), _) => self.config.targets[i].upstream = target,
            }
        }
        // A service whose host is an upstream's name is balanced over its targets.
        let by_name: HashMap<&str, usize> =
            self.config.upstreams.iter().enumerate().map(|(i, u)| (u.name.as_str(), i)).collect();
        for s in &mut self.config.services {
            s.upstream = by_name.get(s.host.as_str()).copied();
        }
    }

    fn check_duplicates(&mut self) {
        let services: Vec<_> = self.config.services.iter().map(|s| (s.name.clone(), s.id.clone(), s.mark)).collect();
        self.duplicates("service", &services);
        let routes: Vec<_> = self.config.routes.iter().map(|r| (r.name.clone(), r.id.clone(), r.mark)).collect();
        self.duplicates("route", &routes);
        let plugins: Vec<_> = self.config.plugins.iter().map(|p| (None, p.id.clone(), p.mark)).collect();
        self.duplicates("plugin", &plugins);
        let certs: Vec<_> = self.config.certificates.iter().map(|c| (None, c.id.clone(), c.mark)).collect();
        self.duplicates("certificate", &certs);
        let cas: Vec<_> = self.config.ca_certificates.iter().map(|c| (None, c.id.clone(), c.mark)).collect();
        self.duplicates("CA certificate", &cas);
        let upstreams: Vec<_> = self
            .config
            .upstreams
            .iter()
            .map(|u| ((!u.name.is_empty()).then(|| u.name.clone()), u.id.clone(), u.mark))
            .collect();
        self.duplicates("upstream", &upstreams);
        let targets: Vec<_> = self.config.targets.iter().map(|t| (None, t.id.clone(), t.mark)).collect();
        self.duplicates("target", &targets);
        // A consumer is found by any of the three, so each is unique (a written id
        // compared as a UUID, whatever its case; a derived one follows its name).
        let consumers = &self.config.consumers;
        let by_username: Vec<_> = consumers
            .iter()
            .map(|c| (c.username.clone(), c.id_given.then(|| c.id.to_ascii_lowercase()), c.mark))
            .collect();
        let by_custom_id: Vec<_> = consumers.iter().map(|c| (c.custom_id.clone(), None, c.mark)).collect();
        self.duplicates_named("consumer", "username", &by_username);
        self.duplicates_named("consumer", "custom_id", &by_custom_id);
        // A derived id can only meet a written one (two derived ids are equal only for
        // equal names, reported above).
        let consumers = &self.config.consumers;
        let written: HashMap<String, Mark> =
            consumers.iter().filter(|c| c.id_given).map(|c| (c.id.to_ascii_lowercase(), c.mark)).collect();
        let taken: Vec<(Mark, String)> = consumers
            .iter()
            .filter(|c| !c.id_given)
            .filter_map(|c| {
                let first = written.get(&c.id)?;
                Some((
                    c.mark,
                    format!(
                        "this consumer's derived id '{}' is written as the id of the consumer at {first}; give this \
                         one an 'id'",
                        c.id
                    ),
                ))
            })
            .collect();
        for (mark, message) in taken {
            self.error(mark, message);
        }
        // Kong keeps one target per address and upstream.
        let mut addresses: HashMap<(usize, String), Mark> = HashMap::new();
        let mut twice = Vec::new();
        for t in self.config.targets.iter().filter(|t| !t.host.is_empty()) {
            match addresses.entry((t.upstream, t.address())) {
                Entry::Vacant(v) => {
                    v.insert(t.mark);
                }
                Entry::Occupied(first) => twice.push((
                    t.mark,
                    format!(
                        "target '{}' is listed twice for upstream '{}' (first at {})",
                        t.address(),
                        self.config.upstreams[t.upstream].name,
                        first.get()
                    ),
                )),
            }
        }
        for (mark, message) in twice {
            self.error(mark, message);
        }

        let mut seen: HashMap<(&str, PluginScope), Mark> = HashMap::new();
        let mut found = Vec::new();
        for p in &self.config.plugins {
            if p.name.is_empty() {
                continue;
            }
            if let Some(first) = seen.get(&(p.name.as_str(), p.scope)) {
                let scope = match p.scope {
                    PluginScope::Global => "globally".to_string(),
                    PluginScope::Service(s) => {
                        format!("on service {}", describe(&self.config.services[s].name, s))
                    }
                    PluginScope::Route(r) => {
                        format!("on route {}", describe(&self.config.routes[r].name, r))
                    }
                };
                found.push((p.mark, format!("plugin '{}' is configured twice {scope} (first at {first})", p.name)));
            } else {
                seen.insert((&p.name, p.scope), p.mark);
            }
        }
        for (mark, message) in found {
            self.error(mark, message);
        }
    }

    /// Orders the targets by upstream (stable: file order within one) and gives each
    /// upstream its range, so a service finds its targets without a scan of them all.
    fn group_targets(&mut self) {
        let c = &mut self.config;
        c.targets.sort_by_key(|t| t.upstream);
        let mut start = 0;
        for (u, up) in c.upstreams.iter_mut().enumerate() {
            let n = c.targets[start..].iter().take_while(|t| t.upstream == u).count();
            up.targets = start..start + n;
            start += n;
        }
    }

    fn duplicates(&mut self, kind: &str, entities: &[(Option<String>, Option<String>, Mark)]) {
        self.duplicates_named(kind, "name", entities);
    }

    /// Reports the second and later entities with the same `name_key` value (the first
    /// element) or the same id (the second).
    fn duplicates_named(&mut self, kind: &str, name_key: &str, entities: &[(Option<String>, Option<String>, Mark)]) {
        // The first entity with each name and each id (a map, not a scan per entity: a
        // file may hold thousands).
        let mut seen: [HashMap<&str, Mark>; 2] = [HashMap::new(), HashMap::new()];
        for (name, id, mark) in entities {
            for (slot, (what, value)) in [(name_key, name), ("id", id)].into_iter().enumerate() {
                let Some(value) = value else { continue };
                match seen[slot].entry(value.as_str()) {
                    Entry::Vacant(v) => {
                        v.insert(*mark);
                    }
                    Entry::Occupied(first) => {
                        let first = *first.get();
                        self.error(*mark, format!("duplicate {kind} {what} '{value}' (first at {first})"));
                    }
                }
            }
        }
    }
}

fn describe(name: &Option<String>, index: usize) -> String {
    match name {
        Some(n) => format!("'{n}'"),
        None => format!("#{}", index + 1),
    }
}

/// The parts of a service `url` shorthand.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: Option<String>,
}

/// Splits `scheme://host[:port][/path]` as Kong's url shorthand does. IPv6 hosts come
/// back without brackets. Userinfo, queries and fragments are refused: Kong has no
/// service field to keep them in.
pub(crate) fn parse_url(url: &str) -> Result<UrlParts, String> {
    let (scheme, rest) = url.split_once("://").ok_or("expected scheme://host[:port][/path]")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') {
        return Err("invalid scheme".into());
    }
    if rest.contains(['?', '#']) {
        return Err("a query or fragment has no place in a service".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let (host, port) = split_authority(authority)?;
    Ok(UrlParts { scheme: scheme.to_ascii_lowercase(), host: host.to_string(), port, path })
}

/// Splits a target's `host[:port]`: as a URL's authority, and a bare IPv6 literal
/// (several colons, no brackets) is a host without a port, as Kong reads it.
fn split_target(target: &str) -> Result<(&str, Option<u16>), String> {
    if !target.starts_with('[') && target.matches(':').count() > 1 {
        return Ok((target, None));
    }
    split_authority(target)
}

/// Splits a URL's `host[:port]` (IPv6 in brackets, returned without them) and checks it:
/// no userinfo, a host, a port in 1..=65535 when there is one.
pub(crate) fn split_authority(authority: &str) -> Result<(&str, Option<u16>), String> {
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in host")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("invalid port '{p}'")),
        },
        None => None,
    };
    Ok((host, port))
}

/// Kong's rules for a route host: lower-cased, at most one wildcard, either a leading
/// `*.` or a trailing `.*`, and an optional `:port`.
fn check_route_host(host: &str) -> Result<String, String> {
    let lower = host.to_ascii_lowercase();
    let (name, port) = if let Some(v6) = lower.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unclosed '['")?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err("invalid IPv6 address".into());
        }
        (None, after.strip_prefix(':').map(str::to_string).or_else(|| (!after.is_empty()).then(|| after.to_string())))
    } else {
        match lower.rsplit_once(':') {
            Some((n, p)) => (Some(n.to_string()), Some(p.to_string())),
            None => (Some(lower.clone()), None),
        }
    };
    if let Some(p) = &port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return Err(format!("invalid port '{p}'")),
        }
    }
    if let Some(name) = name {
        if name.is_empty() {
            return Err("empty host name".into());
        }
        let stars = name.matches('*').count();
        let bare = if stars == 0 {
            name.as_str()
        } else if stars == 1 && name.starts_with("*.") && name.len() > 2 {
            &name[2..]
        } else if stars == 1 && name.ends_with(".*") && name.len() > 2 {
            &name[..name.len() - 2]
        } else {
            return Err("a wildcard must be a single leading '*.' or trailing '.*'".into());
        };
        if !bare.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
            return Err("only letters, digits, '.', '-' and '_' are allowed".into());
        }
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_port_and_path_splits_into_parts() {
        let parts = parse_url("https://api.example.com:8443/v1").unwrap();
        assert_eq!(
            parts,
            UrlParts {
                scheme: "https".into(),
                host: "api.example.com".into(),
                port: Some(8443),
                path: Some("/v1".into())
            }
        );
    }

    #[test]
    fn url_with_ipv6_host_drops_the_brackets() {
        let parts = parse_url("http://[::1]:8080").unwrap();
        assert_eq!(parts.host, "::1");
        assert_eq!(parts.port, Some(8080));
        assert_eq!(parts.path, None);
    }

    #[test]
    fn url_with_query_is_refused() {
        assert!(parse_url("http://a/b?c=d").is_err());
        assert!(parse_url("http://user@a/").is_err());
        assert!(parse_url("a/b").is_err());
        assert!(parse_url("http://a:0/").is_err());
    }

    #[test]
    fn route_host_wildcards_follow_kong_rules() {
        assert_eq!(check_route_host("*.Example.com").unwrap(), "*.example.com");
        assert_eq!(check_route_host("example.*").unwrap(), "example.*");
        assert_eq!(check_route_host("example.com:8080").unwrap(), "example.com:8080");
        assert!(check_route_host("a.*.com").is_err());
        assert!(check_route_host("*.a.*").is_err());
        assert!(check_route_host("*").is_err());
        assert!(check_route_host("a.com:99999").is_err());
        assert!(check_route_host("[::1]:80").is_ok());
    }

    #[test]
    fn a_host_with_a_port_or_a_malformed_ipv6_literal_is_refused() {
        // Regression: anything of hex digits, dots and colons passed as an IPv6 literal,
        // so `host: 127.0.0.1:8080` loaded and its service answered 503 for good.
        let load = |body: &str| crate::config::load_str(&format!("_format_version: \"3.0\"\n{body}"), "k", &|_| None);
        for bad in ["host: 127.0.0.1:8080", "host: \"1:2:3\"", "url: http://[127.0.0.1:80]/"] {
            let e = load(&format!("services:\n- {bad}\n")).unwrap_err();
            assert!(e.0[0].message.starts_with("invalid host"), "{bad}: {e}");
        }
        let e = load("upstreams:\n- name: u\n  targets:\n  - target: \"1:2:3\"\n").unwrap_err();
        assert_eq!(e.0[0].message, "invalid host '1:2:3'");
        for good in ["host: \"::1\"", "host: \"::ffff:127.0.0.1\"", "url: http://[fe80::1]:80/", "host: a-b.example"] {
            assert!(load(&format!("services:\n- {good}\n")).is_ok(), "{good}");
        }
        assert!(load("upstreams:\n- name: u\n  targets:\n  - target: \"2001:db8::1\"\n").is_ok());
    }

    #[test]
    fn many_references_by_name_each_reach_their_own_service() {
        // Each reference used to scan every service (route, upstream): quadratic in the
        // Admin API's documents, whose routes, plugins and targets all name their
        // parent. Its time is measured in benches/config_scale.rs; this checks the
        // result at a size.
        let node = |value| Node { mark: Mark::default(), value };
        let text = |s: String| node(NodeValue::String(s));
        let map = |entries: Vec<(&str, Node)>| {
            node(NodeValue::Map(entries.into_iter().map(|(k, v)| (k.to_string(), Mark::default(), v)).collect()))
        };
        let n = 5_000;
        let services = (0..n).map(|i| map(vec![("name", text(format!("s{i}"))), ("host", text("127.0.0.1".into()))]));
        let routes = (0..n).map(|i| {
            map(vec![("service", text(format!("s{i}"))), ("paths", node(NodeValue::Seq(vec![text(format!("/p{i}"))])))])
        });
        let root = map(vec![
            ("_format_version", text("3.0".into())),
            ("services", node(NodeValue::Seq(services.collect()))),
            ("routes", node(NodeValue::Seq(routes.collect()))),
        ]);
        let config = validate(&root, "k").unwrap();
        assert!(config.routes.iter().enumerate().all(|(i, r)| r.service == Some(i)));
    }

    #[test]
    fn uuid_shape_is_checked() {
        assert!(is_uuid("6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"));
        assert!(!is_uuid("6b3a1b2c-0d4e-4f5a-8b6c"));
        assert!(!is_uuid("zb3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"));
    }
}
