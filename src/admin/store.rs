//! The Admin API's entity store: the services, routes, plugins, certificates, CA
//! certificates, upstreams, targets and consumers the running configuration is made of,
//! each with its id, timestamps and Kong fields.
//!
//! The store is the source of truth for what runs. Every change (an Admin API call, a
//! SIGHUP re-reading the decK file, `POST /config`, `--resume`) builds a candidate
//! store, renders it as a decK document ([`Store::render`]) and sends that through the
//! same loader and compiler as a decK file; only what they accept replaces the store.
//! What they accept is then read back ([`Store::from_config`]), so every entity holds
//! Kong's defaults, normalised values and references by id, exactly as a decK file
//! with that content would load.
//!
//! Invariants of a store built by [`Store::from_config`]: every entity has a UUID id,
//! unique in its collection; routes and plugins refer to services and routes by
//! `{"id": ...}` (or `null`), and those ids exist; services refer to certificates by
//! `client_certificate: {"id": ...}` and to CA certificates by `ca_certificates: [id,
//! ...]`, lower-cased as the certificates' own ids are; entity order is configuration
//! order (the router breaks ties by it), and plugin `i` of the store is plugin `i` of
//! the snapshot built from it.
//!
//! Consumers always keep the configuration's id: the one the file states, else the one
//! the loader derives from the username (or custom id), which is the same on every node
//! and every reload ([`crate::config::consumer_id_for`]). They are never matched to the
//! running store by name, so a rendered consumer loads back with the id it has.
//!
//! Certificates hold their private key (`key`) in clear, as the decK file and the state
//! file do; only the Admin API's responses hide it (`api::present`).
//!
//! Cost: linear in the number of entities per change; never on the request path.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use crate::config::{
    is_uuid, CaCertificate, Certificate, Config, Consumer, HashOn, HealthChecks, Node, NodeValue, PluginScope, Route,
    RoutePath, Service, Target, Upstream,
};

/// Problems of the store itself (not of the configuration it holds).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The system random source failed, so no id could be generated.
    #[error("cannot generate an id: the system random source failed")]
    Random,
    /// A saved state document is not the shape this store writes.
    #[error("the state document is malformed: {0}")]
    Malformed(String),
}

/// The entity collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service,
    Route,
    Plugin,
    Certificate,
    CaCertificate,
    Upstream,
    Target,
    Consumer,
}

impl Kind {
    /// The decK and Admin API collection name.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Route => "routes",
            Kind::Plugin => "plugins",
            Kind::Certificate => "certificates",
            Kind::CaCertificate => "ca_certificates",
            Kind::Upstream => "upstreams",
            Kind::Target => "targets",
            Kind::Consumer => "consumers",
        }
    }

    /// The name of a reference to this kind (`service`, `route`).
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Route => "route",
            Kind::Plugin => "plugin",
            Kind::Certificate => "certificate",
            Kind::CaCertificate => "ca_certificate",
            Kind::Upstream => "upstream",
            Kind::Target => "target",
            Kind::Consumer => "consumer",
        }
    }

    pub const ALL: [Kind; 8] = [
        Kind::Service,
        Kind::Route,
        Kind::Plugin,
        Kind::Certificate,
        Kind::CaCertificate,
        Kind::Upstream,
        Kind::Target,
        Kind::Consumer,
    ];
}

/// One entity of any [`Kind`].
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// A UUID (`8-4-4-4-12` hex).
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
    /// Every other Kong field; references as `{"id": ...}` or `null`.
    pub fields: Map<String, Value>,
}

impl Entity {
    /// `name`, for services and routes; `instance_name` is not a name here.
    pub fn name(&self) -> Option<&str> {
        self.fields.get("name").and_then(Value::as_str)
    }

    /// The id in the reference field `key` (`service`, `route`), if set.
    pub fn reference(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(|r| r.get("id")).and_then(Value::as_str)
    }

    /// The strings of the list field `key` (a certificate's `snis`, a service's
    /// `ca_certificates`); none when it is unset or not a list.
    pub fn strings<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
    }

    /// The entity as a decK document entry (and as the Admin API shows it, before
    /// redaction and defaults).
    pub fn to_json(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("created_at".into(), json!(self.created_at));
        m.insert("updated_at".into(), json!(self.updated_at));
        Value::Object(m)
    }
}

/// Everything the Admin API manages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    pub services: Vec<Entity>,
    pub routes: Vec<Entity>,
    pub plugins: Vec<Entity>,
    pub certificates: Vec<Entity>,
    pub ca_certificates: Vec<Entity>,
    pub upstreams: Vec<Entity>,
    pub targets: Vec<Entity>,
    pub consumers: Vec<Entity>,
}

/// A random (version 4, RFC 9562 §5.4) UUID from the system CSPRNG.
pub fn new_id() -> Result<String, StoreError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| StoreError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::http::hex_lower(&b);
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Store {
    pub fn list(&self, kind: Kind) -> &[Entity] {
        match kind {
            Kind::Service => &self.services,
            Kind::Route => &self.routes,
            Kind::Plugin => &self.plugins,
            Kind::Certificate => &self.certificates,
            Kind::CaCertificate => &self.ca_certificates,
            Kind::Upstream => &self.upstreams,
            Kind::Target => &self.targets,
            Kind::Consumer => &self.consumers,
        }
    }

    pub fn list_mut(&mut self, kind: Kind) -> &mut Vec<Entity> {
        match kind {
            Kind::Service => &mut self.services,
            Kind::Route => &mut self.routes,
            Kind::Plugin => &mut self.plugins,
            Kind::Certificate => &mut self.certificates,
            Kind::CaCertificate => &mut self.ca_certificates,
            Kind::Upstream => &mut self.upstreams,
            Kind::Target => &mut self.targets,
            Kind::Consumer => &mut self.consumers,
        }
    }

    /// The entity an Admin API path segment names: by id when it is a UUID, else by
    /// `name` (services, routes, upstreams), `instance_name` (plugins), its `target`
    /// (targets; the first with that address, see [`Store::target_of`] for one
    /// upstream's) or one of its `snis` (certificates, case-insensitively), as Kong
    /// looks them up. CA certificates have only ids. A consumer is looked up by id, else
    /// by `username` (a username may look like a UUID).
    pub fn position(&self, kind: Kind, key: &str) -> Option<usize> {
        let list = self.list(kind);
        if is_uuid(key) {
            let found = list.iter().position(|e| e.id.eq_ignore_ascii_case(key));
            if found.is_some() || kind != Kind::Consumer {
                return found;
            }
        }
        let field = match kind {
            Kind::Plugin => "instance_name",
            Kind::Service | Kind::Route | Kind::Upstream => "name",
            Kind::Consumer => "username",
            Kind::Target => "target",
            Kind::Certificate => {
                return list.iter().position(|e| e.strings("snis").any(|s| s.eq_ignore_ascii_case(key)))
            }
            Kind::CaCertificate => return None,
        };
        list.iter().position(|e| e.fields.get(field).and_then(Value::as_str) == Some(key))
    }

    /// The target of upstream `upstream_id` that `key` names: its id, or its `target`
    /// address.
    pub fn target_of(&self, upstream_id: &str, key: &str) -> Option<usize> {
        self.targets.iter().position(|t| {
            t.reference("upstream") == Some(upstream_id)
                && (t.id.eq_ignore_ascii_case(key) || t.fields.get("target").and_then(Value::as_str) == Some(key))
        })
    }

    /// The entity with `id`, in any case (ids are stored lower-cased; a decK file may
    /// write a UUID in upper case).
    pub fn by_id(&self, kind: Kind, id: &str) -> Option<&Entity> {
        self.list(kind).iter().find(|e| e.id.eq_ignore_ascii_case(id))
    }

    /// Another entity of `kind` (not `except`) whose `field` is `value`.
    pub fn taken(&self, kind: Kind, field: &str, value: &str, except: &str) -> Option<&Entity> {
        self.list(kind).iter().find(|e| e.id != except && e.fields.get(field).and_then(Value::as_str) == Some(value))
    }

    /// Another plugin (not `except`) with the same name on the same scope.
    pub fn plugin_on_scope(
        &self,
        name: &str,
        service: Option<&str>,
        route: Option<&str>,
        except: &str,
    ) -> Option<&Entity> {
        self.plugins.iter().find(|p| {
            p.id != except
                && p.fields.get("name").and_then(Value::as_str) == Some(name)
                && p.reference("service") == service
                && p.reference("route") == route
        })
    }

    /// The whole store as a decK document (`_format_version: "3.0"`, flat lists,
    /// references by id).
    pub fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("_format_version".into(), json!("3.0"));
        for kind in Kind::ALL {
            doc.insert(kind.collection().into(), Value::Array(self.list(kind).iter().map(Entity::to_json).collect()));
        }
        Value::Object(doc)
    }

    /// [`Store::document`] as text the decK loader reads: JSON (a YAML 1.2 flow
    /// document), one key per line. Every `$` is written as `\u0024`, so no value can
    /// ever be read as a `${{ env ... }}` template and pull a variable of this process's
    /// environment into the configuration.
    pub fn render(&self) -> String {
        let text = serde_json::to_string_pretty(&self.document()).unwrap_or_default();
        let mut out = text.replace('$', "\\u0024");
        out.push('\n');
        out
    }

    /// Reads the ids, timestamps and fields of a document [`Store::render`] wrote.
    /// Only the shape is checked here; the caller has the decK loader check the rest.
    pub fn from_document(doc: &Value) -> Result<Store, StoreError> {
        let mut store = Store::default();
        for kind in Kind::ALL {
            let Some(items) = doc.get(kind.collection()) else { continue };
            let items = items
                .as_array()
                .ok_or_else(|| StoreError::Malformed(format!("'{}' is not a list", kind.collection())))?;
            for item in items {
                let mut fields = item.as_object().cloned().ok_or_else(|| {
                    StoreError::Malformed(format!("an entry of '{}' is not a map", kind.collection()))
                })?;
                let id = match fields.remove("id") {
                    Some(Value::String(id)) if is_uuid(&id) => id,
                    _ => return Err(StoreError::Malformed(format!("an entry of '{}' has no id", kind.collection()))),
                };
                let stamp = |v: Option<Value>| v.and_then(|v| v.as_u64()).unwrap_or(0);
                let created_at = stamp(fields.remove("created_at"));
                let updated_at = stamp(fields.remove("updated_at"));
                store.list_mut(kind).push(Entity { id, created_at, updated_at, fields });
            }
        }
        Ok(store)
    }

    /// The store a loaded configuration amounts to, with Kong's defaults and
    /// normalised values. Ids: the configuration's own; else, for an entity that has
    /// none (a decK file without ids), the id of the entity of `previous` it matches
    /// (same name; for plugins the same `instance_name`, or name and scope; for
    /// certificates and CA certificates the same `cert`), so ids stay stable across
    /// reloads; else a new one. Consumers always have one (see the module doc).
    /// Timestamps come from the matching entity
    /// of `previous`: `created_at` is kept, `updated_at` too unless the fields changed
    /// (then it is `now`). New entities get `now` for both.
    pub fn from_config(
        cfg: &Config,
        previous: &Store,
        now: u64,
        new_id: &mut dyn FnMut() -> Result<String, StoreError>,
    ) -> Result<Store, StoreError> {
        let mut out = Store::default();
        // The ids the file states, per kind, lower-cased as they are stored: made once,
        // not per entity.
        let ids = |it: &mut dyn Iterator<Item = &Option<String>>| -> HashSet<String> {
            it.filter_map(|id| id.as_deref().map(str::to_ascii_lowercase)).collect()
        };
        let (services, routes, plugins, certificates, ca_certificates) = (
            ids(&mut cfg.services.iter().map(|s| &s.id)),
            ids(&mut cfg.routes.iter().map(|r| &r.id)),
            ids(&mut cfg.plugins.iter().map(|p| &p.id)),
            ids(&mut cfg.certificates.iter().map(|c| &c.id)),
            ids(&mut cfg.ca_certificates.iter().map(|c| &c.id)),
        );
        let (upstreams, targets) =
            (ids(&mut cfg.upstreams.iter().map(|u| &u.id)), ids(&mut cfg.targets.iter().map(|t| &t.id)));
        // Consumers always carry an id: none is matched by key, so none is taken.
        let no_ids = HashSet::new();
        let explicit = |kind: Kind| match kind {
            Kind::Service => &services,
            Kind::Route => &routes,
            Kind::Plugin => &plugins,
            Kind::Certificate => &certificates,
            Kind::CaCertificate => &ca_certificates,
            Kind::Upstream => &upstreams,
            Kind::Target => &targets,
            Kind::Consumer => &no_ids,
        };
        // The running store, indexed once per kind (a file of thousands of entities
        // would otherwise scan the running store once per entity).
        let index = |kind: Kind| MatchIndex::new(previous.list(kind), kind);
        let (prev_services, prev_routes, prev_plugins, prev_certificates, prev_ca_certificates) = (
            index(Kind::Service),
            index(Kind::Route),
            index(Kind::Plugin),
            index(Kind::Certificate),
            index(Kind::CaCertificate),
        );
        let (prev_upstreams, prev_targets, prev_consumers) =
            (index(Kind::Upstream), index(Kind::Target), index(Kind::Consumer));
        // A match by key must not take an id that another entity states explicitly.
        let matched = |kind: Kind, id: &Option<String>, key: Option<MatchKey<'_>>| -> Option<Entity> {
            let prev = match kind {
                Kind::Service => &prev_services,
                Kind::Route => &prev_routes,
                Kind::Plugin => &prev_plugins,
                Kind::Certificate => &prev_certificates,
                Kind::CaCertificate => &prev_ca_certificates,
                Kind::Upstream => &prev_upstreams,
                Kind::Target => &prev_targets,
                Kind::Consumer => &prev_consumers,
            };
            match id {
                Some(id) => prev.by_id.get(id.to_ascii_lowercase().as_str()).map(|e| (*e).clone()),
                None => {
                    let taken = explicit(kind);
                    prev.by_key.get(&key?)?.iter().find(|e| !taken.contains(&e.id)).map(|e| (*e).clone())
                }
            }
        };
        // Certificates first, so services can refer to their final ids.
        for c in &cfg.certificates {
            let prev = matched(Kind::Certificate, &c.id, Some(MatchKey::Cert(c.cert.trim())));
            out.certificates.push(stamped(c.id.clone(), prev, certificate_fields(c), now, new_id)?);
        }
        for c in &cfg.ca_certificates {
            let prev = matched(Kind::CaCertificate, &c.id, Some(MatchKey::Cert(c.cert.trim())));
            out.ca_certificates.push(stamped(c.id.clone(), prev, ca_certificate_fields(c), now, new_id)?);
        }
        for s in &cfg.services {
            let prev = matched(Kind::Service, &s.id, s.name.as_deref().map(MatchKey::Name));
            let fields = service_fields(s, &out);
            out.services.push(stamped(s.id.clone(), prev, fields, now, new_id)?);
        }
        for r in &cfg.routes {
            let mut fields = route_fields(r);
            let service = r.service.and_then(|i| out.services.get(i)).map(|s| json!({ "id": s.id }));
            fields.insert("service".into(), service.unwrap_or(Value::Null));
            let prev = matched(Kind::Route, &r.id, r.name.as_deref().map(MatchKey::Name));
            out.routes.push(stamped(r.id.clone(), prev, fields, now, new_id)?);
        }
        for p in &cfg.plugins {
            let (service, route) = match p.scope {
                PluginScope::Global => (None, None),
                PluginScope::Service(i) => (out.services.get(i).map(|s| s.id.clone()), None),
                PluginScope::Route(i) => (None, out.routes.get(i).map(|r| r.id.clone())),
            };
            let mut fields = Map::new();
            fields.insert("name".into(), json!(p.name));
            fields.insert("instance_name".into(), p.instance_name.as_ref().map_or(Value::Null, |n| json!(n)));
            fields.insert("config".into(), node_json(&p.config));
            fields.insert("enabled".into(), json!(p.enabled));
            fields.insert("protocols".into(), json!(p.protocols));
            fields.insert("tags".into(), list_or_null(&p.tags));
            fields.insert("consumer".into(), Value::Null);
            fields.insert("service".into(), service.as_ref().map_or(Value::Null, |id| json!({ "id": id })));
            fields.insert("route".into(), route.as_ref().map_or(Value::Null, |id| json!({ "id": id })));
            let key = match &p.instance_name {
                Some(n) => MatchKey::Instance(n),
                None => MatchKey::Scope(&p.name, service.as_deref(), route.as_deref()),
            };
            let prev = matched(Kind::Plugin, &p.id, Some(key));
            out.plugins.push(stamped(p.id.clone(), prev, fields, now, new_id)?);
        }
        for u in &cfg.upstreams {
            let prev = matched(Kind::Upstream, &u.id, Some(MatchKey::Name(&u.name)));
            out.upstreams.push(stamped(u.id.clone(), prev, upstream_fields(u, &out), now, new_id)?);
        }
        let addresses: Vec<String> = cfg.targets.iter().map(Target::address).collect();
        for (t, address) in cfg.targets.iter().zip(&addresses) {
            let upstream = out.upstreams.get(t.upstream).map(|u| u.id.clone());
            let mut fields = Map::new();
            fields.insert("target".into(), json!(address));
            fields.insert("weight".into(), json!(t.weight));
            fields.insert("upstream".into(), upstream.as_ref().map_or(Value::Null, |id| json!({ "id": id })));
            fields.insert("tags".into(), list_or_null(&t.tags));
            let key = upstream.as_deref().map(|u| MatchKey::Target(u, address));
            let prev = matched(Kind::Target, &t.id, key);
            out.targets.push(stamped(t.id.clone(), prev, fields, now, new_id)?);
        }
        for c in &cfg.consumers {
            let id = Some(c.id.clone());
            let prev = matched(Kind::Consumer, &id, None);
            out.consumers.push(stamped(id, prev, consumer_fields(c), now, new_id)?);
        }
        Ok(out)
    }
}

/// What an entity without an id is matched on in the running store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MatchKey<'a> {
    /// A service's or route's name.
    Name(&'a str),
    /// A certificate's or CA certificate's PEM text, trimmed.
    Cert(&'a str),
    /// A plugin's `instance_name`.
    Instance(&'a str),
    /// A plugin's name and scope (service id, route id).
    Scope(&'a str, Option<&'a str>, Option<&'a str>),
    /// A target's upstream id and address.
    Target(&'a str, &'a str),
}

/// One kind of the running store, by lower-cased id and by [`MatchKey`]; a key's
/// entities in store order, so the first one not taken wins, as a scan would find it.
struct MatchIndex<'a> {
    by_id: HashMap<String, &'a Entity>,
    by_key: HashMap<MatchKey<'a>, Vec<&'a Entity>>,
}

impl<'a> MatchIndex<'a> {
    fn new(list: &'a [Entity], kind: Kind) -> MatchIndex<'a> {
        let mut by_id = HashMap::with_capacity(list.len());
        let mut by_key: HashMap<MatchKey<'a>, Vec<&'a Entity>> = HashMap::with_capacity(list.len());
        for e in list {
            by_id.entry(e.id.to_ascii_lowercase()).or_insert(e);
            let text = |key: &str| e.fields.get(key).and_then(Value::as_str);
            let keys = match kind {
                Kind::Service | Kind::Route | Kind::Upstream => [e.name().map(MatchKey::Name), None],
                Kind::Target => {
                    [e.reference("upstream").zip(text("target")).map(|(u, t)| MatchKey::Target(u, t)), None]
                }
                Kind::Certificate | Kind::CaCertificate => [text("cert").map(|c| MatchKey::Cert(c.trim())), None],
                Kind::Plugin => [
                    text("instance_name").map(MatchKey::Instance),
                    text("name").map(|n| MatchKey::Scope(n, e.reference("service"), e.reference("route"))),
                ],
                // Matched by id only (see the module doc).
                Kind::Consumer => [None, None],
            };
            for key in keys.into_iter().flatten() {
                by_key.entry(key).or_default().push(e);
            }
        }
        MatchIndex { by_id, by_key }
    }
}

fn stamped(
    id: Option<String>,
    prev: Option<Entity>,
    fields: Map<String, Value>,
    now: u64,
    new_id: &mut dyn FnMut() -> Result<String, StoreError>,
) -> Result<Entity, StoreError> {
    let id = match (id, &prev) {
        (Some(id), _) => id.to_ascii_lowercase(),
        (None, Some(p)) => p.id.clone(),
        (None, None) => new_id()?,
    };
    let (created_at, updated_at) = match prev {
        Some(p) if p.fields == fields => (p.created_at, p.updated_at),
        Some(p) => (p.created_at, now.max(p.created_at)),
        None => (now, now),
    };
    Ok(Entity { id, created_at, updated_at, fields })
}

fn list_or_null(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// A consumer's fields: its identity, `null` where unset.
fn consumer_fields(c: &Consumer) -> Map<String, Value> {
    let text = |s: &Option<String>| s.as_ref().map_or(Value::Null, |s| json!(s));
    let mut m = Map::new();
    m.insert("username".into(), text(&c.username));
    m.insert("custom_id".into(), text(&c.custom_id));
    m.insert("tags".into(), list_or_null(&c.tags));
    m
}

/// A certificate's fields; `cert_alt` and `key_alt` are `null` when the entry has no
/// alternate pair.
fn certificate_fields(c: &Certificate) -> Map<String, Value> {
    let mut m = Map::new();
    let or_null = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    m.insert("cert".into(), json!(c.cert));
    m.insert("key".into(), json!(c.key));
    m.insert("cert_alt".into(), or_null(&c.cert_alt));
    m.insert("key_alt".into(), or_null(&c.key_alt));
    m.insert("snis".into(), Value::Array(c.snis.iter().map(|(name, _)| json!(name)).collect()));
    m.insert("tags".into(), list_or_null(&c.tags));
    m
}

/// An upstream's fields, as the loader keeps them. `store` holds the certificates
/// already read, for the reference.
fn upstream_fields(u: &Upstream, store: &Store) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(u.name));
    m.insert("algorithm".into(), json!(u.algorithm.as_str()));
    m.insert("slots".into(), json!(u.slots));
    m.insert("host_header".into(), u.host_header.as_ref().map_or(Value::Null, |h| json!(h)));
    for (prefix, h) in [("hash_on", &u.hash_on), ("hash_fallback", &u.hash_fallback)] {
        // The kind, and the input field that names what it reads.
        let (kind, input) = match h {
            HashOn::None => ("none", None),
            HashOn::Ip => ("ip", None),
            HashOn::Path => ("path", None),
            HashOn::Header(name) => ("header", Some(("header", name))),
            HashOn::QueryArg(name) => ("query_arg", Some(("query_arg", name))),
            HashOn::UriCapture(name) => ("uri_capture", Some(("uri_capture", name))),
            HashOn::Cookie => ("cookie", None),
            HashOn::Consumer => ("consumer", None),
        };
        m.insert(prefix.into(), json!(kind));
        for field in ["header", "query_arg", "uri_capture"] {
            let value = input.filter(|(f, _)| *f == field).map_or(Value::Null, |(_, n)| json!(n));
            m.insert(format!("{prefix}_{field}"), value);
        }
    }
    m.insert("hash_on_cookie".into(), u.hash_on_cookie.as_ref().map_or(Value::Null, |c| json!(c)));
    m.insert("hash_on_cookie_path".into(), json!(u.hash_on_cookie_path));
    m.insert("sticky_sessions_cookie".into(), u.sticky_sessions_cookie.as_ref().map_or(Value::Null, |c| json!(c)));
    m.insert("sticky_sessions_cookie_path".into(), json!(u.sticky_sessions_cookie_path));
    let client = u.client_certificate.as_ref().map(|(id, _)| json!({ "id": stored_id(&store.certificates, id) }));
    m.insert("client_certificate".into(), client.unwrap_or(Value::Null));
    m.insert("use_srv_name".into(), json!(false));
    m.insert("healthchecks".into(), healthchecks_json(&u.healthchecks));
    m.insert("tags".into(), list_or_null(&u.tags));
    m
}

/// An upstream's `healthchecks` in Kong's shape (seconds as numbers).
fn healthchecks_json(h: &HealthChecks) -> Value {
    // Whole seconds as integers, as Kong shows its defaults.
    let secs = |d: std::time::Duration| {
        if d.subsec_nanos() == 0 {
            json!(d.as_secs())
        } else {
            json!(d.as_secs_f64())
        }
    };
    let a = &h.active;
    let headers = if a.headers.is_empty() {
        Value::Null
    } else {
        Value::Object(a.headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect())
    };
    json!({
        "active": {
            "type": a.kind.as_str(),
            "timeout": secs(a.timeout),
            "concurrency": a.concurrency,
            "http_path": a.http_path,
            "https_verify_certificate": a.https_verify_certificate,
            "https_sni": a.https_sni,
            "headers": headers,
            "healthy": {
                "interval": secs(a.healthy.interval),
                "successes": a.healthy.successes,
                "http_statuses": a.healthy.http_statuses,
            },
            "unhealthy": {
                "interval": secs(a.unhealthy.interval),
                "tcp_failures": a.unhealthy.tcp_failures,
                "timeouts": a.unhealthy.timeouts,
                "http_failures": a.unhealthy.http_failures,
                "http_statuses": a.unhealthy.http_statuses,
            },
        },
        "passive": {
            "type": "http",
            "healthy": { "successes": h.passive.healthy.successes, "http_statuses": h.passive.healthy.http_statuses },
            "unhealthy": {
                "tcp_failures": h.passive.unhealthy.tcp_failures,
                "timeouts": h.passive.unhealthy.timeouts,
                "http_failures": h.passive.unhealthy.http_failures,
                "http_statuses": h.passive.unhealthy.http_statuses,
            },
        },
        "threshold": if h.threshold.fract() == 0.0 { json!(h.threshold as u64) } else { json!(h.threshold) },
    })
}

fn ca_certificate_fields(c: &CaCertificate) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("cert".into(), json!(c.cert));
    m.insert("cert_digest".into(), cert_digest(&c.cert).map_or(Value::Null, Value::String));
    m.insert("tags".into(), list_or_null(&c.tags));
    m
}

/// Kong's `cert_digest`: the SHA-256 of the (first) certificate's DER, lower-case hex.
/// `None` when the text holds no PEM certificate.
pub fn cert_digest(pem: &str) -> Option<String> {
    let certs = crate::tls::certificates(pem.as_bytes()).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, certs.first()?.as_ref());
    Some(crate::http::hex_lower(digest.as_ref()))
}

/// `id` as the entity of `list` with that id (case-insensitively) spells it, else
/// lower-cased: store ids are lower-case.
fn stored_id(list: &[Entity], id: &str) -> String {
    list.iter().find(|e| e.id.eq_ignore_ascii_case(id)).map_or_else(|| id.to_ascii_lowercase(), |e| e.id.clone())
}

/// A service's fields; `store` holds the certificates already read, for references.
fn service_fields(s: &Service, store: &Store) -> Map<String, Value> {
    let ms = |d: std::time::Duration| json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut m = Map::new();
    m.insert("name".into(), s.name.as_ref().map_or(Value::Null, |n| json!(n)));
    m.insert("protocol".into(), json!(s.protocol.as_str()));
    m.insert("host".into(), json!(s.host));
    m.insert("port".into(), json!(s.port));
    m.insert("path".into(), s.path.as_ref().map_or(Value::Null, |p| json!(p)));
    m.insert("connect_timeout".into(), ms(s.connect_timeout));
    m.insert("read_timeout".into(), ms(s.read_timeout));
    m.insert("write_timeout".into(), ms(s.write_timeout));
    m.insert("retries".into(), json!(s.retries));
    m.insert("enabled".into(), json!(s.enabled));
    m.insert("tags".into(), list_or_null(&s.tags));
    // ringgate's default is true (Kong's is off): shown as it applies.
    m.insert("tls_verify".into(), json!(s.tls_verify));
    // Accepted with a warning and ignored (see config::validate).
    m.insert("tls_verify_depth".into(), Value::Null);
    let cas: Vec<String> = s.ca_certificates.iter().map(|(id, _)| stored_id(&store.ca_certificates, id)).collect();
    m.insert("ca_certificates".into(), list_or_null(&cas));
    let client = s.client_certificate.as_ref().map(|(id, _)| json!({ "id": stored_id(&store.certificates, id) }));
    m.insert("client_certificate".into(), client.unwrap_or(Value::Null));
    m
}

fn route_fields(r: &Route) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), r.name.as_ref().map_or(Value::Null, |n| json!(n)));
    m.insert("protocols".into(), json!(r.protocols.iter().map(|p| p.as_str()).collect::<Vec<_>>()));
    m.insert("methods".into(), list_or_null(&r.methods));
    m.insert("hosts".into(), list_or_null(&r.hosts));
    let paths: Vec<String> = r
        .paths
        .iter()
        .map(|p| match p {
            RoutePath::Prefix(p) => p.clone(),
            RoutePath::Regex(re) => format!("~{re}"),
        })
        .collect();
    m.insert("paths".into(), list_or_null(&paths));
    let headers = if r.headers.is_empty() {
        Value::Null
    } else {
        Value::Object(r.headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect())
    };
    m.insert("headers".into(), headers);
    m.insert("strip_path".into(), json!(r.strip_path));
    m.insert("preserve_host".into(), json!(r.preserve_host));
    m.insert("regex_priority".into(), json!(r.regex_priority));
    let handling = match r.path_handling {
        crate::config::PathHandling::V0 => "v0",
        crate::config::PathHandling::V1 => "v1",
    };
    m.insert("path_handling".into(), json!(handling));
    m.insert("https_redirect_status_code".into(), json!(r.https_redirect_status_code));
    m.insert("request_buffering".into(), json!(true));
    m.insert("response_buffering".into(), json!(true));
    for key in ["snis", "sources", "destinations"] {
        m.insert(key.into(), Value::Null);
    }
    m.insert("tags".into(), list_or_null(&r.tags));
    m
}

/// A positioned YAML node as JSON. Non-finite floats (YAML's `.inf`, `.nan`) have no
/// JSON form; the plugin schema refuses them in its number fields, so they can only
/// stand inside record fields ringgate ignores, and become `null`.
pub fn node_json(node: &Node) -> Value {
    match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Int(n) => json!(n),
        NodeValue::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        NodeValue::String(s) => Value::String(s.clone()),
        NodeValue::Seq(items) => Value::Array(items.iter().map(node_json).collect()),
        NodeValue::Map(entries) => Value::Object(entries.iter().map(|(k, _, v)| (k.clone(), node_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        crate::config::load_str(text, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn counter() -> impl FnMut() -> Result<String, StoreError> {
        let mut n = 0u32;
        move || {
            n += 1;
            Ok(format!("00000000-0000-4000-8000-{n:012x}"))
        }
    }

    const DECK: &str = "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9/base\n  routes:\n  - name: r\n    paths: [/a, \"~/b$\"]\n    plugins:\n    - name: openid-connect\n      config: {issuer: \"http://idp/\", auth_methods: [client_credentials], timeout: 5000}\nplugins:\n- name: openid-connect\n  instance_name: global\n  config: {issuer: \"http://idp/\", auth_methods: [bearer]}\n";

    #[test]
    fn new_ids_are_version_4_uuids_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(!is_uuid("6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c-00"));
        assert!(!is_uuid("6b3a1b2c0d4e4f5a8b6c7d8e9f0a1b2c"));
    }

    #[test]
    fn from_config_fills_defaults_and_refers_by_id() {
        let store = Store::from_config(&load(DECK), &Store::default(), 100, &mut counter()).unwrap();
        let svc = &store.services[0];
        assert_eq!(svc.fields["host"], json!("127.0.0.1"));
        assert_eq!(svc.fields["port"], json!(9));
        assert_eq!(svc.fields["path"], json!("/base"));
        assert_eq!(svc.fields["retries"], json!(5));
        assert_eq!(svc.fields["connect_timeout"], json!(60000));
        assert!(svc.fields.get("url").is_none());
        let route = &store.routes[0];
        assert_eq!(route.fields["paths"], json!(["/a", "~/b$"]));
        assert_eq!(route.reference("service"), Some(svc.id.as_str()));
        assert_eq!(route.fields["methods"], Value::Null);
        let scoped = &store.plugins[0];
        assert_eq!(scoped.reference("route"), Some(route.id.as_str()));
        assert_eq!(scoped.fields["config"]["timeout"], json!(5000));
        assert_eq!(store.plugins[1].fields["instance_name"], json!("global"));
        assert_eq!(store.plugins[1].fields["service"], Value::Null);
        assert!(store.services.iter().chain(&store.routes).chain(&store.plugins).all(|e| e.created_at == 100));
    }

    #[test]
    fn an_upper_case_id_in_the_file_keeps_its_entitys_timestamps_across_reloads() {
        let id = "6B3A1B2C-0D4E-4F5A-8B6C-7D8E9F0A1B2C";
        let deck =
            format!("_format_version: \"3.0\"\nservices:\n- id: {id}\n  name: svc\n  url: http://127.0.0.1:9/\n");
        let first = Store::from_config(&load(&deck), &Store::default(), 100, &mut counter()).unwrap();
        assert_eq!(first.services[0].id, id.to_ascii_lowercase());
        let again = Store::from_config(&load(&deck), &first, 200, &mut counter()).unwrap();
        assert_eq!((again.services[0].created_at, again.services[0].updated_at), (100, 100));
    }

    #[test]
    fn rendered_store_loads_back_to_the_same_store() {
        let store = Store::from_config(&load(DECK), &Store::default(), 100, &mut counter()).unwrap();
        let again = Store::from_config(&load(&store.render()), &store, 200, &mut counter()).unwrap();
        assert_eq!(again, store, "same ids, same fields, timestamps kept");
        let parsed: Value = serde_json::from_str(&store.render()).unwrap();
        assert_eq!(Store::from_document(&parsed).unwrap(), store);
    }

    #[test]
    fn entities_without_ids_keep_their_ids_by_name_and_changes_bump_updated_at() {
        let first = Store::from_config(&load(DECK), &Store::default(), 100, &mut counter()).unwrap();
        let edited = DECK.replace("timeout: 5000", "timeout: 6000");
        let mut fresh = || Ok::<_, StoreError>("ffffffff-ffff-4fff-8fff-ffffffffffff".to_string());
        let second = Store::from_config(&load(&edited), &first, 200, &mut fresh).unwrap();
        assert_eq!(second.services[0].id, first.services[0].id);
        assert_eq!(second.routes[0].id, first.routes[0].id);
        assert_eq!(second.plugins[0].id, first.plugins[0].id, "name and scope");
        assert_eq!(second.plugins[1].id, first.plugins[1].id, "instance_name");
        assert_eq!(second.services[0].updated_at, 100);
        assert_eq!(second.plugins[0].updated_at, 200, "its config changed");
        assert_eq!(second.plugins[0].created_at, 100);
    }

    #[test]
    fn a_match_by_name_never_takes_an_id_the_file_gives_another_entity() {
        let first = Store::from_config(&load(DECK), &Store::default(), 100, &mut counter()).unwrap();
        let id = first.services[0].id.clone();
        // `svc` has no id now, and `other` states svc's old one.
        let deck = format!(
            "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9/\n- name: other\n  id: {}\n  url: http://127.0.0.1:8/\n",
            id.to_ascii_uppercase()
        );
        let mut fresh = || Ok::<_, StoreError>("ffffffff-ffff-4fff-8fff-ffffffffffff".to_string());
        let second = Store::from_config(&load(&deck), &first, 200, &mut fresh).unwrap();
        assert_eq!(second.services[1].id, id, "the stated id");
        assert_eq!(second.services[1].created_at, 100, "matched by id: the entity's timestamps");
        assert_eq!(second.services[0].id, "ffffffff-ffff-4fff-8fff-ffffffffffff", "a new id, not the taken one");
        assert_eq!(second.services[0].created_at, 200);
    }

    #[test]
    fn dollar_signs_never_reach_the_template_engine() {
        let mut store = Store::from_config(&load(DECK), &Store::default(), 1, &mut counter()).unwrap();
        store.services[0].fields.insert("name".into(), json!("a${{ env \"DECK_X\" }}"));
        let text = store.render();
        assert!(!text.contains('$'));
        let env = |_: &str| Some("LEAKED".to_string());
        let cfg = crate::config::load_str(&text, "t", &env).unwrap();
        assert_eq!(cfg.services[0].name.as_deref(), Some("a${{ env \"DECK_X\" }}"));
    }

    const CERT_ID: &str = "7B3A1B2C-0D4E-4F5A-8B6C-7D8E9F0A1B2C";
    const CA_ID: &str = "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";

    /// TLS entities as decK writes them, and an https service using them. The loader
    /// does not parse PEM (the compiler does), so placeholders do here.
    fn tls_deck() -> String {
        format!(
            "_format_version: \"3.0\"\ncertificates:\n- id: {CERT_ID}\n  cert: CERT-PEM\n  key: KEY-PEM\n  \
             snis:\n  - name: API.example.com\n  - '*.example.org'\n  tags: [edge]\nca_certificates:\n- id: {CA_ID}\n  \
             cert: CA-PEM\n- cert: OTHER-CA-PEM\nservices:\n- name: secure\n  url: https://up.example:8443\n  \
             tls_verify: false\n  ca_certificates: [{CA_ID}]\n  client_certificate: {{id: {CERT_ID}}}\n"
        )
    }

    #[test]
    fn tls_entities_and_service_tls_settings_load_back_from_the_rendered_store() {
        let cfg = load(&tls_deck());
        let store = Store::from_config(&cfg, &Store::default(), 100, &mut counter()).unwrap();
        let again = load(&store.render());
        assert_eq!(again.certificates.len(), 1, "certificates survive the store");
        let c = &again.certificates[0];
        assert_eq!(c.id.as_deref(), Some(CERT_ID.to_ascii_lowercase().as_str()));
        assert_eq!((c.cert.as_str(), c.key.as_str()), ("CERT-PEM", "KEY-PEM"));
        let snis: Vec<&str> = c.snis.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(snis, ["api.example.com", "*.example.org"]);
        assert_eq!(c.tags, ["edge"]);
        assert_eq!(again.ca_certificates.len(), 2);
        assert_eq!(again.ca_certificates[0].id.as_deref(), Some(CA_ID));
        assert_eq!(again.ca_certificates[1].cert, "OTHER-CA-PEM");
        let s = &again.services[0];
        assert!(!s.tls_verify, "tls_verify: false survives");
        assert_eq!(s.ca_certificates.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), [CA_ID]);
        let client = s.client_certificate.as_ref().map(|(id, _)| id.to_ascii_lowercase());
        assert_eq!(client, Some(CERT_ID.to_ascii_lowercase()));
    }

    #[test]
    fn tls_entities_have_kongs_fields_and_keep_ids_and_timestamps() {
        let store = Store::from_config(&load(&tls_deck()), &Store::default(), 100, &mut counter()).unwrap();
        let cert = &store.certificates[0];
        assert_eq!(cert.id, CERT_ID.to_ascii_lowercase(), "ids are stored lower-case");
        assert_eq!(cert.fields["snis"], json!(["api.example.com", "*.example.org"]));
        assert_eq!((cert.fields["cert_alt"].clone(), cert.fields["key_alt"].clone()), (Value::Null, Value::Null));
        assert_eq!(cert.fields["key"], json!("KEY-PEM"), "the store holds the key; responses hide it");
        assert_eq!(store.ca_certificates[0].fields["cert_digest"], Value::Null, "no PEM, no digest");
        let svc = &store.services[0];
        assert_eq!(svc.fields["tls_verify"], json!(false));
        assert_eq!(svc.fields["ca_certificates"], json!([CA_ID]));
        assert_eq!(svc.reference("client_certificate"), Some(cert.id.as_str()), "the reference follows the id's case");
        let http = Store::from_config(&load(DECK), &Store::default(), 1, &mut counter()).unwrap();
        assert_eq!(http.services[0].fields["tls_verify"], json!(true), "ringgate's default, shown");
        assert_eq!(http.services[0].fields["ca_certificates"], Value::Null);
        assert_eq!(http.services[0].fields["client_certificate"], Value::Null);

        let again = Store::from_config(&load(&store.render()), &store, 200, &mut counter()).unwrap();
        assert_eq!(again, store, "same ids, same fields, timestamps kept");
        let parsed: Value = serde_json::from_str(&store.render()).unwrap();
        assert_eq!(Store::from_document(&parsed).unwrap(), store, "the state file keeps them");

        // Without ids (a decK file re-read on SIGHUP), a CA certificate keeps its id by `cert`.
        let mut fresh = || Ok::<_, StoreError>("ffffffff-ffff-4fff-8fff-ffffffffffff".to_string());
        let reread = Store::from_config(&load(&tls_deck()), &again, 300, &mut fresh).unwrap();
        assert_eq!(reread.ca_certificates[1].id, store.ca_certificates[1].id);
        assert_eq!(reread.ca_certificates[1].updated_at, 100);
    }

    #[test]
    fn ca_certificate_digest_is_the_sha256_of_the_der() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        let expected: String = ring::digest::digest(&ring::digest::SHA256, &[0, 1, 2])
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(cert_digest(pem), Some(expected));
        assert_eq!(cert_digest("not pem"), None);
    }

    #[test]
    fn certificates_are_found_by_id_or_sni_and_ca_certificates_by_id_only() {
        let store = Store::from_config(&load(&tls_deck()), &Store::default(), 1, &mut counter()).unwrap();
        assert_eq!(store.position(Kind::Certificate, CERT_ID), Some(0));
        assert_eq!(store.position(Kind::Certificate, "API.Example.com"), Some(0));
        assert_eq!(store.position(Kind::Certificate, "*.example.org"), Some(0));
        assert_eq!(store.position(Kind::Certificate, "other.example"), None);
        assert_eq!(store.position(Kind::CaCertificate, CA_ID), Some(0));
        assert_eq!(store.position(Kind::CaCertificate, "CA-PEM"), None);
    }

    const CONSUMER_ID: &str = "5B3A1B2C-0D4E-4F5A-8B6C-7D8E9F0A1B2C";

    /// A consumer with a stated id, one without (its id derived from its custom id),
    /// and one whose username looks like a UUID.
    fn consumer_deck() -> String {
        format!(
            "_format_version: \"3.0\"\nconsumers:\n- id: {CONSUMER_ID}\n  username: alice\n  custom_id: A-1\n  \
             tags: [team-a]\n- custom_id: bob-77\n- username: 00000000-0000-4000-8000-0000000000ee\n"
        )
    }

    #[test]
    fn consumers_keep_their_ids_and_fields_through_a_render_and_reload() {
        let store = Store::from_config(&load(&consumer_deck()), &Store::default(), 100, &mut counter()).unwrap();
        assert_eq!(store.consumers.len(), 3);
        let alice = &store.consumers[0];
        assert_eq!(alice.id, CONSUMER_ID.to_ascii_lowercase(), "the stated id, lower-cased");
        assert_eq!(
            Value::Object(alice.fields.clone()),
            json!({ "username": "alice", "custom_id": "A-1", "tags": ["team-a"] })
        );
        let bob = &store.consumers[1];
        assert_eq!(bob.id, crate::config::consumer_id_for(None, Some("bob-77")), "the loader's id, not a new one");
        assert_eq!((&bob.fields["username"], &bob.fields["tags"]), (&Value::Null, &Value::Null));
        assert_eq!((bob.created_at, bob.updated_at), (100, 100));

        let text = store.render();
        let reloaded = load(&text);
        let ids: Vec<(&str, bool)> = reloaded.consumers.iter().map(|c| (c.id.as_str(), c.id_given)).collect();
        let stored: Vec<(&str, bool)> = store.consumers.iter().map(|c| (c.id.as_str(), true)).collect();
        assert_eq!(ids, stored, "every id is written out");
        let again = Store::from_config(&reloaded, &store, 200, &mut counter()).unwrap();
        assert_eq!(again, store, "same ids, same fields, timestamps kept");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(Store::from_document(&parsed).unwrap(), store, "the state file keeps them");

        // The file again, without ids for two of them: the same ids; a changed field
        // bumps updated_at only.
        let edited = consumer_deck().replace("team-a", "team-b");
        let mut fresh = || Ok::<_, StoreError>("ffffffff-ffff-4fff-8fff-ffffffffffff".to_string());
        let reread = Store::from_config(&load(&edited), &again, 300, &mut fresh).unwrap();
        let ids = |s: &Store| s.consumers.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&reread), ids(&store));
        assert_eq!((reread.consumers[0].created_at, reread.consumers[0].updated_at), (100, 300));
        assert_eq!((reread.consumers[1].created_at, reread.consumers[1].updated_at), (100, 100));
    }

    #[test]
    fn consumers_are_found_by_id_else_by_username() {
        let store = Store::from_config(&load(&consumer_deck()), &Store::default(), 1, &mut counter()).unwrap();
        assert_eq!(store.position(Kind::Consumer, CONSUMER_ID), Some(0), "by id, whatever its case");
        assert_eq!(store.position(Kind::Consumer, "alice"), Some(0));
        assert_eq!(store.position(Kind::Consumer, "A-1"), None, "a custom id does not name a consumer");
        let bob = store.consumers[1].id.clone();
        assert_eq!(store.position(Kind::Consumer, &bob), Some(1));
        assert_eq!(store.position(Kind::Consumer, "00000000-0000-4000-8000-0000000000ee"), Some(2), "a UUID username");
        assert_eq!(store.position(Kind::Consumer, "00000000-0000-4000-8000-0000000000ef"), None);
        assert_eq!(store.position(Kind::Service, "00000000-0000-4000-8000-0000000000ee"), None);
        assert_eq!(Kind::Consumer.collection(), "consumers");
        assert!(Kind::ALL.contains(&Kind::Consumer));
    }

    #[test]
    fn lookups_by_id_name_and_instance_name() {
        let store = Store::from_config(&load(DECK), &Store::default(), 1, &mut counter()).unwrap();
        assert_eq!(store.position(Kind::Service, "svc"), Some(0));
        assert_eq!(store.position(Kind::Service, &store.services[0].id.to_ascii_uppercase()), Some(0));
        assert_eq!(store.position(Kind::Route, "r"), Some(0));
        assert_eq!(store.position(Kind::Plugin, "global"), Some(1));
        assert_eq!(store.position(Kind::Service, "nope"), None);
        assert!(store.taken(Kind::Service, "name", "svc", "other").is_some());
        assert!(store.taken(Kind::Service, "name", "svc", &store.services[0].id).is_none());
        assert!(store.plugin_on_scope("openid-connect", None, None, "x").is_some());
    }
}
