//! The Admin API's routes and handlers, in Kong's shapes, and the one place an Admin
//! API error becomes a response ([`ApiError::response`]).
//!
//! Handlers are plain functions of the [`Admin`] state and a [`Request`] (method,
//! path, content type, body), so the API is tested without sockets. An entity change
//! builds a candidate store, checks what Kong checks before its schema (ids, unique
//! names, plugin scope, foreign keys), and hands the candidate to [`Admin::commit`],
//! which runs it through the decK loader and compiler and swaps it in. Errors come back
//! in Kong's shape: `{"code":2,"name":"schema violation","message":...,"fields":{...}}`
//! with `fields` nested like the entity (`{"config":{"issuer":"..."}}`), 404
//! `{"message":"Not found"}`, 409 for a taken name.
//!
//! What GET shows: every entity with `id`, `created_at`, `updated_at` and its Kong
//! fields with defaults; a plugin's `config` with every schema field (ringgate's
//! defaults for the unset ones) and each secret ([`REDACTED`]) hidden; a certificate's
//! `cert` but never its `key` (nor `key_alt`). No response ever carries a secret.
//!
//! Certificates follow Kong 3.x: `/certificates/{id|sni}` (a path segment that is not
//! a UUID names one of the certificate's `snis`; none is 404 `SNI not found`, except
//! for PUT, which creates a certificate serving that name); a certificate a service
//! uses as `client_certificate` cannot be deleted (code 4, as any foreign key), nor a
//! CA certificate listed in a service's `ca_certificates` (400 with Kong's message
//! `ca_certificate <id> is still referenced by services (id = <id>)`).
//!
//! Consumers follow Kong 3.x: `/consumers/{id|username}` looks a consumer up by id,
//! else by username (PUT on a username nothing has creates a consumer with it); one of
//! `username` and `custom_id` must be set (Kong's schema message), and each is unique
//! (409). Nothing refers to a consumer, so deleting one removes only it.
//!
//! Cost: a change copies the store and reloads the whole configuration; lists are
//! linear. Admin traffic only.

use std::borrow::Cow;
use std::net::SocketAddr;

use serde_json::{json, Map, Value};

use super::apply::{locate, Admin, ApplyError, Problem, Seg, StatusView};
use super::form::{self, FormError};
use super::store::{cert_digest, new_id, unix_now, Entity, Kind, Store};
use crate::config::{is_uuid, KNOWN_PLUGINS};
use crate::oidc::config::{self as oidc_config, FieldDefault, FieldKind};

/// What a secret's value is replaced with in every response. Sent back unchanged in
/// a PUT or PATCH (for a whole field, or as every element of a list), it keeps the
/// stored secret, so a GET–edit–PUT round trip does not overwrite it.
pub const REDACTED: &str = "<redacted>";

/// The Kong release whose Admin API this one follows.
pub const KONG_API_VERSION: &str = "3.10";

/// One Admin API request, as the listener read it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path without the query.
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The body's media type, lower-cased, without parameters.
    fn media_type(&self) -> Option<String> {
        self.content_type.and_then(|c| c.split(';').next()).map(|c| c.trim().to_ascii_lowercase())
    }

    /// The body's fields when it is a form ([`form`]: urlencoded or multipart); `None`
    /// for any other media type.
    fn form(&self) -> Option<Result<Map<String, Value>, FormError>> {
        match self.media_type()?.as_str() {
            "application/x-www-form-urlencoded" => Some(form::decode(self.body)),
            "multipart/form-data" => Some(form::decode_multipart(self.body, self.content_type.unwrap_or_default())),
            _ => None,
        }
    }
}

/// A response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const JSON: &str = "application/json; charset=utf-8";

impl Response {
    pub fn json(status: u16, value: &Value) -> Response {
        Response { status, content_type: JSON, body: serde_json::to_vec(value).unwrap_or_default() }
    }

    pub fn message(status: u16, message: &str) -> Response {
        Response::json(status, &json!({ "message": message }))
    }

    fn no_content() -> Response {
        Response { status: 204, content_type: JSON, body: Vec::new() }
    }

    /// The body as JSON (tests and the listener's log).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Why a request failed; [`ApiError::response`] writes each in Kong's shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such route, or no entity with that id or name (404).
    #[error("Not found")]
    NotFound,
    /// The path exists but not for this method (405).
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// A JSON body that does not parse (400, Kong's message).
    #[error("Cannot parse JSON body")]
    BadJson,
    /// A form body that cannot be decoded (400).
    #[error("{0}")]
    BadForm(#[from] FormError),
    /// Kong code 2: the entity does not fit the schema; `problems` are relative to it.
    #[error("schema violation")]
    Schema { problems: Vec<Problem> },
    /// Kong code 3: the id is taken (400).
    #[error("primary key violation on key '{{id=\"{id}\"}}'")]
    PrimaryKey { id: String },
    /// Kong code 4: a reference to an entity that does not exist, or a delete that
    /// would leave references dangling (400).
    #[error("{message}")]
    ForeignKey { message: String, fields: Value },
    /// Kong code 5: a name (or plugin scope) is taken (409).
    #[error("{message}")]
    Unique { message: String, fields: Value },
    /// `/certificates/{sni}` with a name no certificate serves (404, Kong's message).
    #[error("SNI not found")]
    SniNotFound,
    /// A delete Kong refuses with a bare message (a CA certificate still in use; 400).
    #[error("{0}")]
    Refused(String),
    /// Kong code 14: `POST /config` with a document that does not load (400).
    #[error("declarative config is invalid")]
    Declarative { problems: Vec<Problem> },
    /// The change could not be saved or applied; nothing changed (500).
    #[error("{0}")]
    Internal(String),
    /// A Konnect path for another control plane than `--control-plane-id` (404).
    #[error("Control plane not found")]
    OtherControlPlane,
    /// A Konnect path other than a control plane's core entities (404).
    #[error("Not found: only /v2/control-planes/{{id}}/core-entities/ paths are served")]
    NotCoreEntities,
}

fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{}]", i + 1)),
        }
    }
    out
}

/// Puts `message` into Kong's nested `fields` at `path` (lists as JSON arrays). A
/// message that cannot nest there (a value already stands on the way) is joined to
/// that value.
fn put_field(fields: &mut Value, path: &[Seg], message: &str) {
    let Some((first, rest)) = path.split_first() else {
        match fields {
            Value::String(s) => {
                s.push_str("; ");
                s.push_str(message);
            }
            other => *other = Value::String(message.to_string()),
        }
        return;
    };
    let fresh = |rest: &[Seg]| match rest.first() {
        None => Value::Null,
        Some(Seg::Key(_)) => Value::Object(Map::new()),
        Some(Seg::Index(_)) => Value::Array(Vec::new()),
    };
    let child = match (first, &mut *fields) {
        (Seg::Key(k), Value::Object(m)) => m.entry(k.clone()).or_insert_with(|| fresh(rest)),
        (Seg::Index(i), Value::Array(items)) if *i < 4096 => {
            if items.len() <= *i {
                items.resize(*i + 1, Value::Null);
            }
            if items[*i].is_null() {
                items[*i] = fresh(rest);
            }
            &mut items[*i]
        }
        (_, other) => {
            let joined = format!("{}: {message}", path_text(path));
            return put_field(other, &[], &joined);
        }
    };
    if child.is_null() && !rest.is_empty() {
        *child = fresh(rest);
    }
    put_field(child, rest, message);
}

fn kong_error(code: u8, name: &str, message: &str, fields: Value) -> Value {
    json!({ "code": code, "name": name, "message": message, "fields": fields })
}

fn violations(problems: &[Problem], what: &str) -> (String, Value) {
    let mut fields = Value::Object(Map::new());
    let mut parts = Vec::new();
    for p in problems {
        let path = if p.path.is_empty() { vec![Seg::Key("@entity".into())] } else { p.path.clone() };
        put_field(&mut fields, &path, &p.message);
        parts.push(if p.path.is_empty() {
            p.message.clone()
        } else {
            format!("{}: {}", path_text(&p.path), p.message)
        });
    }
    let message = match parts.len() {
        1 => format!("{what} ({})", parts[0]),
        n => format!("{n} {what}s ({})", parts.join("; ")),
    };
    (message, fields)
}

impl ApiError {
    /// The response for this error: the one place errors become status codes.
    pub fn response(&self) -> Response {
        match self {
            ApiError::NotFound => Response::message(404, "Not found"),
            ApiError::MethodNotAllowed => Response::message(405, "Method not allowed"),
            ApiError::BadJson => Response::message(400, "Cannot parse JSON body"),
            ApiError::BadForm(e) => Response::message(400, &e.to_string()),
            ApiError::Schema { problems } => {
                let (message, fields) = violations(problems, "schema violation");
                Response::json(400, &kong_error(2, "schema violation", &message, fields))
            }
            ApiError::PrimaryKey { id } => {
                Response::json(400, &kong_error(3, "primary key violation", &self.to_string(), json!({ "id": id })))
            }
            ApiError::ForeignKey { message, fields } => {
                Response::json(400, &kong_error(4, "foreign key violation", message, fields.clone()))
            }
            ApiError::Unique { message, fields } => {
                Response::json(409, &kong_error(5, "unique constraint violation", message, fields.clone()))
            }
            ApiError::SniNotFound => Response::message(404, "SNI not found"),
            ApiError::Refused(message) => Response::message(400, message),
            ApiError::Declarative { problems } => {
                let (detail, fields) = violations(problems, "error");
                let message = format!("declarative config is invalid: {detail}");
                Response::json(400, &kong_error(14, "invalid declarative configuration", &message, fields))
            }
            ApiError::Internal(message) => Response::message(500, message),
            ApiError::OtherControlPlane | ApiError::NotCoreEntities => Response::message(404, &self.to_string()),
        }
    }
}

/// Answers one request. Never panics on any input.
pub fn handle(admin: &mut Admin, req: &Request) -> Response {
    route(admin, req).unwrap_or_else(|e| e.response())
}

fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = crate::http::hex_value;
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn kind_of(collection: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.collection() == collection)
}

/// The entity a path segment names, or the 404 Kong answers for it.
fn find(store: &Store, kind: Kind, key: &str) -> Result<usize, ApiError> {
    store.position(kind, key).ok_or(if kind == Kind::Certificate && !is_uuid(key) {
        ApiError::SniNotFound
    } else {
        ApiError::NotFound
    })
}

fn route(admin: &mut Admin, req: &Request) -> Result<Response, ApiError> {
    // Kong's router takes a trailing slash (`POST /plugins/`) as the same path.
    let segs: Vec<String> = req.path.split('/').filter(|s| !s.is_empty()).map(decode_segment).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method;
    match segs.as_slice() {
        // Konnect's paths for the same entities (what its Terraform provider and decK
        // with `--konnect-*` call): the entity endpoints only, under one control plane.
        ["v2", "control-planes", plane, "core-entities", rest @ ..] => {
            if admin.control_plane_id.as_deref().is_some_and(|id| !id.eq_ignore_ascii_case(plane)) {
                return Err(ApiError::OtherControlPlane);
            }
            match rest {
                [] => Err(ApiError::NotCoreEntities),
                _ => entities(admin, req, rest),
            }
        }
        ["v2", "control-planes", ..] => Err(ApiError::NotCoreEntities),
        [] => match method {
            "GET" => Ok(node_info(admin)),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["status"] => match method {
            "GET" => Ok(status(&admin.status_view())),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["config"] => match method {
            "POST" => post_config(admin, req),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["plugins", "enabled"] => match method {
            "GET" => Ok(Response::json(200, &json!({ "enabled_plugins": KNOWN_PLUGINS }))),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["upstreams", upstream, "health"] => match method {
            "GET" => upstream_health(admin, upstream),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["upstreams", upstream, "targets", key, state @ ("healthy" | "unhealthy")] => match method {
            "POST" | "PUT" => set_target_health(admin, upstream, key, None, *state == "healthy"),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["upstreams", upstream, "targets", key, address, state @ ("healthy" | "unhealthy")] => match method {
            "POST" | "PUT" => {
                let address = address.parse::<SocketAddr>().map_err(|_| ApiError::NotFound)?;
                set_target_health(admin, upstream, key, Some(address), *state == "healthy")
            }
            _ => Err(ApiError::MethodNotAllowed),
        },
        entity_path => entities(admin, req, entity_path),
    }
}

/// The entity endpoints (collections, entities, nested collections), which Kong's
/// Admin API and Konnect's core-entities paths share.
fn entities(admin: &mut Admin, req: &Request, segs: &[&str]) -> Result<Response, ApiError> {
    let method = req.method;
    match segs {
        [collection] => {
            let kind = kind_of(collection).ok_or(ApiError::NotFound)?;
            match method {
                "GET" => Ok(list(&admin.store, kind, |_| true)),
                "POST" => create(admin, kind, body(req, kind)?, None),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        [collection, key] => {
            let kind = kind_of(collection).ok_or(ApiError::NotFound)?;
            match method {
                "GET" => {
                    let i = find(&admin.store, kind, key)?;
                    Ok(Response::json(200, &present(kind, &admin.store.list(kind)[i])))
                }
                "PATCH" => patch(admin, kind, key, body(req, kind)?),
                "PUT" => put(admin, kind, key, body(req, kind)?),
                "DELETE" => delete(admin, kind, key),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        [parent, key, child] => {
            let (parent, kind) = match (*parent, *child) {
                ("services", "routes") => (Kind::Service, Kind::Route),
                ("services", "plugins") => (Kind::Service, Kind::Plugin),
                ("routes", "plugins") => (Kind::Route, Kind::Plugin),
                ("upstreams", "targets") => (Kind::Upstream, Kind::Target),
                _ => return Err(ApiError::NotFound),
            };
            let i = admin.store.position(parent, key).ok_or(ApiError::NotFound)?;
            let parent_id = admin.store.list(parent)[i].id.clone();
            let field = parent.singular();
            match method {
                "GET" => Ok(list(&admin.store, kind, |e| e.reference(field) == Some(parent_id.as_str()))),
                "POST" => create(admin, kind, body(req, kind)?, Some((parent, parent_id))),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        // Kong's name for every target of an upstream (its targets history is gone
        // since Kong 2; so is ringgate's): the same list.
        ["upstreams", upstream, "targets", "all"] => match method {
            "GET" => {
                let u = admin.store.position(Kind::Upstream, upstream).ok_or(ApiError::NotFound)?;
                let id = admin.store.upstreams[u].id.clone();
                Ok(list(&admin.store, Kind::Target, |t| t.reference("upstream") == Some(id.as_str())))
            }
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["upstreams", upstream, "targets", key] => {
            let u = admin.store.position(Kind::Upstream, upstream).ok_or(ApiError::NotFound)?;
            let upstream_id = admin.store.upstreams[u].id.clone();
            // The target of this upstream, by id or address: the generic handlers then
            // get its id, which no other upstream's target shares.
            let target_id = admin.store.target_of(&upstream_id, key).map(|i| admin.store.targets[i].id.clone());
            match (method, target_id) {
                ("GET", Some(id)) => {
                    let i = find(&admin.store, Kind::Target, &id)?;
                    Ok(Response::json(200, &present(Kind::Target, &admin.store.targets[i])))
                }
                ("PATCH", Some(id)) => patch(admin, Kind::Target, &id, body(req, Kind::Target)?),
                ("PUT", Some(id)) => {
                    // A replacement keeps its place: this upstream, and the address the
                    // path names when the body gives none.
                    let mut fields = body(req, Kind::Target)?;
                    fields.insert("upstream".into(), json!({ "id": upstream_id }));
                    if !is_uuid(key) && !fields.contains_key("target") {
                        fields.insert("target".into(), json!(key));
                    }
                    put(admin, Kind::Target, &id, fields)
                }
                ("DELETE", Some(id)) => delete(admin, Kind::Target, &id),
                ("GET" | "PATCH", None) => Err(ApiError::NotFound),
                ("DELETE", None) => Ok(Response::no_content()),
                ("PUT", None) => {
                    let mut fields = body(req, Kind::Target)?;
                    if is_uuid(key) {
                        fields.insert("id".into(), json!(key));
                    } else {
                        fields.insert("target".into(), json!(key));
                    }
                    let mut created = create(admin, Kind::Target, fields, Some((Kind::Upstream, upstream_id)))?;
                    created.status = 200;
                    Ok(created)
                }
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        _ => Err(ApiError::NotFound),
    }
}

// ----- bodies -----

/// The request body as a JSON object: JSON as sent, form fields decoded and coerced by
/// `kind`'s schema ([`form`]). An empty body is an empty object.
fn body(req: &Request, kind: Kind) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if let Some(fields) = req.form() {
        let mut m = fields?;
        form::coerce(kind, &mut m);
        return Ok(m);
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::Schema {
            problems: vec![Problem { path: Vec::new(), message: "expected a JSON object".into() }],
        }),
        Err(_) => Err(ApiError::BadJson),
    }
}

// ----- responses in Kong's shapes -----

fn default_json(d: FieldDefault) -> Value {
    match d {
        FieldDefault::None => Value::Null,
        FieldDefault::Bool(b) => json!(b),
        FieldDefault::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => json!(n as i64),
        FieldDefault::Num(n) => json!(n),
        FieldDefault::Str(s) => json!(s),
        FieldDefault::Strs(s) => json!(s),
    }
}

fn redact_value(v: &mut Value) {
    match v {
        Value::Null => {}
        Value::Array(items) => items.iter_mut().filter(|i| !i.is_null()).for_each(|i| *i = json!(REDACTED)),
        other => *other = json!(REDACTED),
    }
}

fn redact_records(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if oidc_config::is_secret_key(k) {
                    redact_value(v);
                } else {
                    redact_records(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_records),
        _ => {}
    }
}

/// A plugin `config` as responses show it: every schema field, secrets redacted.
fn present_config(config: &Map<String, Value>) -> Value {
    let mut out = config.clone();
    for f in oidc_config::schema() {
        let slot = out.entry(f.name).or_insert(Value::Null);
        if slot.is_null() {
            *slot = default_json(f.default);
        }
        if oidc_config::SECRET_FIELDS.contains(&f.name) {
            redact_value(slot);
        } else if f.kind == FieldKind::Record || f.kind == FieldKind::Array {
            redact_records(slot);
        }
    }
    Value::Object(out)
}

/// A certificate's private key fields: never shown.
const CERTIFICATE_SECRETS: [&str; 2] = ["key", "key_alt"];

/// An entity as the Admin API returns it.
pub fn present(kind: Kind, e: &Entity) -> Value {
    let mut v = e.to_json();
    match kind {
        Kind::Plugin => {
            if let Some(Value::Object(config)) = v.get("config") {
                let shown = present_config(config);
                v["config"] = shown;
            }
        }
        Kind::Certificate => {
            if let Value::Object(m) = &mut v {
                for name in CERTIFICATE_SECRETS {
                    if let Some(slot) = m.get_mut(name) {
                        redact_value(slot);
                    }
                }
            }
        }
        _ => {}
    }
    v
}

fn list(store: &Store, kind: Kind, keep: impl Fn(&Entity) -> bool) -> Response {
    let data: Vec<Value> = store.list(kind).iter().filter(|e| keep(e)).map(|e| present(kind, e)).collect();
    Response::json(200, &json!({ "data": data, "next": null }))
}

/// `GET /upstreams/{u}/health`: each target of weight above 0 with the health of each
/// address it resolved to, in Kong's shape. A target is `HEALTHY` while any of its
/// addresses is; `HEALTHCHECKS_OFF` when the upstream has no checks; `DNS_ERROR` when it
/// has no address (addresses are listed for checked upstreams only).
fn upstream_health(admin: &Admin, key: &str) -> Result<Response, ApiError> {
    let u = admin.store.position(Kind::Upstream, key).ok_or(ApiError::NotFound)?;
    let upstream = &admin.store.upstreams[u];
    let name = upstream.name().unwrap_or_default();
    let snap = admin.shared.load();
    let checked =
        snap.config.upstreams.iter().position(|x| x.name == name).and_then(|i| snap.upstream_health[i].as_ref());
    let mut data = Vec::new();
    for t in admin.store.targets.iter().filter(|t| t.reference("upstream") == Some(upstream.id.as_str())) {
        let weight = t.fields.get("weight").and_then(Value::as_u64).unwrap_or(0);
        if weight == 0 {
            continue;
        }
        let target = t.fields.get("target").and_then(Value::as_str).unwrap_or_default();
        // Addresses are tracked for checked upstreams only.
        let (ip_port, healthy): (Vec<SocketAddr>, Vec<bool>) = snap
            .health
            .iter()
            .filter(|h| h.peer.upstream == name && h.peer.target == target)
            .map(|h| (h.peer.addr, h.peer.is_healthy()))
            .unzip();
        let word = |h: bool| if h { "HEALTHY" } else { "UNHEALTHY" };
        let health = match (checked, ip_port.is_empty()) {
            (None, _) => "HEALTHCHECKS_OFF",
            (Some(_), true) => "DNS_ERROR",
            (Some(_), false) => word(healthy.iter().any(|&h| h)),
        };
        let addresses: Vec<Value> = ip_port
            .iter()
            .zip(&healthy)
            .map(|(a, &h)| json!({ "ip": a.ip().to_string(), "port": a.port(), "weight": weight, "health": word(h) }))
            .collect();
        let mut entry = present(Kind::Target, t);
        entry["health"] = json!(health);
        entry["data"] = json!({ "addresses": addresses });
        data.push(entry);
    }
    Ok(Response::json(200, &json!({ "data": data, "total": data.len(), "node_id": admin.node.node_id, "next": null })))
}

/// `POST /upstreams/{u}/targets/{t}/healthy` (or `unhealthy`): sets every address of the
/// target, for every worker, until a check decides otherwise (Kong's manual override).
/// Sets the health of a target's addresses by hand, or of the one `address` of it (404
/// when the target has no such address).
fn set_target_health(
    admin: &Admin,
    upstream: &str,
    key: &str,
    address: Option<SocketAddr>,
    healthy: bool,
) -> Result<Response, ApiError> {
    let u = admin.store.position(Kind::Upstream, upstream).ok_or(ApiError::NotFound)?;
    let upstream = &admin.store.upstreams[u];
    let t = admin.store.target_of(&upstream.id, key).ok_or(ApiError::NotFound)?;
    let target = admin.store.targets[t].fields.get("target").and_then(Value::as_str).unwrap_or_default();
    let name = upstream.name().unwrap_or_default();
    let snap = admin.shared.load();
    let on =
        snap.config.upstreams.iter().position(|x| x.name == name).is_some_and(|i| snap.upstream_health[i].is_some());
    if !on {
        return Err(ApiError::Refused(format!("health checks are off for upstream '{name}'")));
    }
    let by = if healthy { "Admin API (healthy)" } else { "Admin API (unhealthy)" };
    let mut set = 0;
    for h in snap.health.iter().filter(|h| h.peer.upstream == name && h.peer.target == target) {
        if address.is_none_or(|a| a == h.peer.addr) {
            h.peer.set(healthy, by);
            set += 1;
        }
    }
    if address.is_some() && set == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(Response::no_content())
}

fn node_info(admin: &Admin) -> Response {
    let mut enabled: Vec<&str> = Vec::new();
    for p in &admin.store.plugins {
        if let Some(name) = p.fields.get("name").and_then(Value::as_str) {
            if !enabled.contains(&name) {
                enabled.push(name);
            }
        }
    }
    let available: Map<String, Value> = KNOWN_PLUGINS
        .iter()
        .map(|n| (n.to_string(), json!({ "version": env!("CARGO_PKG_VERSION"), "priority": 1050 })))
        .collect();
    Response::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "kong_admin_api": KONG_API_VERSION,
            "tagline": "Welcome to ringgate",
            "hostname": admin.node.hostname,
            "node_id": admin.node.node_id,
            "configuration": admin.node.configuration,
            "plugins": { "available_on_server": available, "enabled_in_cluster": enabled },
            "pids": { "master": std::process::id(), "workers": [] },
        }),
    )
}

fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `GET /status`, from a [`StatusView`]: the Admin API's server answers it without the
/// Admin's lock.
pub fn status(view: &StatusView) -> Response {
    let snapshot = view.shared.load();
    let plugins: Vec<Value> = snapshot
        .config
        .plugins
        .iter()
        .zip(&snapshot.oidc)
        .filter_map(|(p, inst)| {
            let inst = inst.as_ref()?;
            let state = inst.state.load();
            Some(json!({
                "id": p.id,
                "name": p.name,
                "issuer": inst.config.issuer,
                "discovery": { "ready": state.ready, "error": state.last_error },
            }))
        })
        .collect();
    let counts = view.hooks.connections.get().map(|f| f());
    let count = |pick: fn(&super::ConnectionCounts) -> u64| counts.as_ref().map_or(Value::Null, |c| json!(pick(c)));
    let hash = view.config_hash.load();
    Response::json(
        200,
        &json!({
            "database": { "reachable": true },
            "server": {
                "connections_active": count(|c| c.active),
                "connections_reading": count(|c| c.reading),
                "connections_writing": count(|c| c.writing),
                "connections_waiting": count(|c| c.waiting),
                "connections_accepted": count(|c| c.accepted),
                "connections_handled": count(|c| c.handled),
                "total_requests": count(|c| c.total_requests),
            },
            "memory": {
                "workers_lua_vms": [],
                "lua_shared_dicts": {},
                "process_rss": resident_mib().map(|m| format!("{m:.2} MiB")),
            },
            "configuration_hash": hash.as_str(),
            "ringgate": {
                "config_loaded": true,
                "workers": view.workers,
                "services": snapshot.config.services.len(),
                "routes": snapshot.config.routes.len(),
                "plugins": plugins,
            },
        }),
    )
}

/// `GET /metrics` with the hook the process was started with; an empty exposition
/// until one is wired.
pub fn metrics(hooks: &super::Hooks) -> Response {
    let text = hooks.metrics.get().map(|f| f()).unwrap_or_default();
    Response { status: 200, content_type: "text/plain; version=0.0.4; charset=utf-8", body: text.into_bytes() }
}

// ----- changes -----

/// Applies `candidate`, mapping loader and compiler errors onto the entity at
/// `target` (its collection and index), as Kong's `fields` are relative to the entity.
fn commit(admin: &mut Admin, candidate: &Store, target: (Kind, usize)) -> Result<(), ApiError> {
    match admin.commit(candidate) {
        Ok(()) => Ok(()),
        Err(ApplyError::Invalid { errors, text }) => {
            let own = [Seg::Key(target.0.collection().into()), Seg::Index(target.1)];
            let problems = locate(&text, &errors)
                .into_iter()
                .map(|p| match p.path.strip_prefix(&own[..]) {
                    Some(rest) => Problem { path: rest.to_vec(), message: p.message },
                    None if p.path.is_empty() => p,
                    None => Problem { path: Vec::new(), message: format!("{}: {}", path_text(&p.path), p.message) },
                })
                .collect();
            Err(ApiError::Schema { problems })
        }
        Err(e) => Err(ApiError::Internal(format!("the change was not applied: {e}"))),
    }
}

fn strip_read_only(body: &mut Map<String, Value>) {
    body.remove("created_at");
    body.remove("updated_at");
}

fn schema_error(field: &str, message: &str) -> ApiError {
    ApiError::Schema { problems: vec![Problem { path: vec![Seg::Key(field.into())], message: message.into() }] }
}

/// The id a body asks for, if any.
fn body_id(body: &mut Map<String, Value>) -> Result<Option<String>, ApiError> {
    match body.remove("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_uuid(&id) => Ok(Some(id.to_ascii_lowercase())),
        Some(_) => Err(schema_error("id", "expected a valid UUID")),
    }
}

fn lua_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "null".into(),
        Some(Value::String(s)) => format!("\"{s}\""),
        Some(Value::Object(m)) => match m.get("id").and_then(Value::as_str) {
            Some(id) => format!("{{id=\"{id}\"}}"),
            None => "null".into(),
        },
        Some(other) => other.to_string(),
    }
}

/// Resolves the reference `field` (to `target`) of `e`: `{"id"}`, `{"name"}` or a
/// bare id or name becomes `{"id": ...}`; one to nothing is Kong's foreign key
/// violation. Other shapes are left for the loader to refuse.
fn resolve_reference(store: &Store, e: &mut Entity, field: &str, target: Kind) -> Result<(), ApiError> {
    let key = match e.fields.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => match (m.get("id"), m.get("name"), m.len()) {
            (Some(Value::String(id)), None, 1) => id.clone(),
            (None, Some(Value::String(name)), 1) => name.clone(),
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let found = store
        .list(target)
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&key) || (!is_uuid(&key) && t.name() == Some(key.as_str())));
    match found {
        Some(t) => {
            e.fields.insert(field.into(), json!({ "id": t.id }));
            Ok(())
        }
        None => {
            let shown = if is_uuid(&key) { format!("{{id=\"{key}\"}}") } else { format!("{{name=\"{key}\"}}") };
            Err(ApiError::ForeignKey {
                message: format!(
                    "the foreign key '{shown}' does not reference an existing '{}' entity.",
                    target.collection()
                ),
                fields: json!({ field: e.fields.get(field) }),
            })
        }
    }
}

/// What Kong checks before the schema: references exist, names and plugin scopes are
/// not taken. `e` is the entity as it will be stored (its id final).
fn check_constraints(store: &Store, kind: Kind, e: &mut Entity) -> Result<(), ApiError> {
    match kind {
        Kind::Service => {
            resolve_reference(store, e, "client_certificate", Kind::Certificate)?;
            check_ca_references(store, e)?;
        }
        Kind::Route => resolve_reference(store, e, "service", Kind::Service)?,
        Kind::Plugin => {
            resolve_reference(store, e, "service", Kind::Service)?;
            resolve_reference(store, e, "route", Kind::Route)?;
        }
        Kind::Certificate => check_snis(store, e)?,
        Kind::Upstream => resolve_reference(store, e, "client_certificate", Kind::Certificate)?,
        Kind::Target => {
            resolve_reference(store, e, "upstream", Kind::Upstream)?;
            let upstream = e.reference("upstream").map(str::to_string);
            let target = e.fields.get("target").and_then(Value::as_str).map(str::to_string);
            if let (Some(upstream), Some(target)) = (upstream, target) {
                if store.target_of(&upstream, &target).is_some_and(|i| store.targets[i].id != e.id) {
                    return Err(ApiError::Unique {
                        message: format!(
                            "UNIQUE violation detected on '{{target=\"{target}\",upstream={{id=\"{upstream}\"}}}}'"
                        ),
                        fields: json!({ "target": target, "upstream": { "id": upstream } }),
                    });
                }
            }
        }
        Kind::Consumer => {
            // Kong's entity check, with its message (empty counts as unset, as in Kong).
            let set = |f: &str| e.fields.get(f).is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
            if !set("username") && !set("custom_id") {
                return Err(ApiError::Schema {
                    problems: vec![Problem {
                        path: Vec::new(),
                        message: "at least one of these fields must be non-empty: 'custom_id', 'username'".into(),
                    }],
                });
            }
        }
        Kind::CaCertificate => {
            let digest = e.fields.get("cert").and_then(Value::as_str).and_then(cert_digest);
            if let Some(digest) = digest {
                if store.taken(kind, "cert_digest", &digest, &e.id).is_some() {
                    return Err(ApiError::Unique {
                        message: format!("UNIQUE violation detected on '{{cert_digest=\"{digest}\"}}'"),
                        fields: json!({ "cert_digest": digest }),
                    });
                }
            }
        }
    }
    let unique_fields: &[&str] = match kind {
        Kind::Plugin => &["instance_name"],
        Kind::Service | Kind::Route | Kind::Upstream => &["name"],
        Kind::Consumer => &["username", "custom_id"],
        Kind::Certificate | Kind::CaCertificate | Kind::Target => &[],
    };
    for &unique_field in unique_fields {
        let Some(name) = e.fields.get(unique_field).and_then(Value::as_str) else { continue };
        if store.taken(kind, unique_field, name, &e.id).is_some() {
            return Err(ApiError::Unique {
                message: format!("UNIQUE violation detected on '{{{unique_field}=\"{name}\"}}'"),
                fields: json!({ unique_field: name }),
            });
        }
    }
    if kind == Kind::Plugin {
        if let Some(name) = e.fields.get("name").and_then(Value::as_str) {
            let (service, route) = (e.reference("service"), e.reference("route"));
            if store.plugin_on_scope(name, service, route, &e.id).is_some() {
                return Err(ApiError::Unique {
                    message: format!(
                        "UNIQUE violation detected on '{{consumer=null,name=\"{name}\",route={},service={}}}'",
                        lua_value(e.fields.get("route")),
                        lua_value(e.fields.get("service")),
                    ),
                    fields: json!({
                        "consumer": null,
                        "name": name,
                        "route": e.fields.get("route").cloned().unwrap_or(Value::Null),
                        "service": e.fields.get("service").cloned().unwrap_or(Value::Null),
                    }),
                });
            }
        }
    }
    Ok(())
}

/// A service's `ca_certificates`: each a UUID of a CA certificate that exists, stored
/// as that certificate's id. Other shapes are left for the loader to refuse.
fn check_ca_references(store: &Store, e: &mut Entity) -> Result<(), ApiError> {
    let Some(Value::Array(items)) = e.fields.get_mut("ca_certificates") else { return Ok(()) };
    let mut problems = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        let Value::String(id) = item else { continue };
        let path = vec![Seg::Key("ca_certificates".into()), Seg::Index(i)];
        if !is_uuid(id) {
            problems.push(Problem { path, message: "expected a valid UUID".into() });
        } else if let Some(ca) = store.ca_certificates.iter().find(|c| c.id.eq_ignore_ascii_case(id)) {
            *id = ca.id.clone();
        } else {
            problems.push(Problem { path, message: format!("no CA certificate with id '{id}'") });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Schema { problems })
    }
}

/// A certificate's `snis`: a lone string is a one-element list, names are lower-cased,
/// and none may be given twice or be served by another certificate (Kong's messages).
fn check_snis(store: &Store, e: &mut Entity) -> Result<(), ApiError> {
    let snis = match e.fields.get_mut("snis") {
        Some(v @ Value::String(_)) => {
            *v = Value::Array(vec![v.take()]);
            v
        }
        Some(v @ Value::Array(_)) => v,
        _ => return Ok(()),
    };
    let Value::Array(items) = snis else { return Ok(()) };
    let mut seen: Vec<String> = Vec::new();
    for item in items.iter_mut() {
        let Value::String(name) = item else { continue };
        *name = name.to_ascii_lowercase();
        if seen.contains(name) {
            return Err(schema_error("snis", &format!("duplicate SNI in request: {name}")));
        }
        let other = store.certificates.iter().find(|c| c.id != e.id && c.strings("snis").any(|s| s == name));
        if let Some(other) = other {
            return Err(schema_error(
                "snis",
                &format!("{name} already associated with existing certificate '{}'", other.id),
            ));
        }
        seen.push(name.clone());
    }
    Ok(())
}

/// Puts the stored value back for each [`REDACTED`] in `value`: the whole value for a
/// string, element by element (same index) for a list, so a list edited beside its
/// placeholders (`["<redacted>", "new"]`) keeps the stored secret and takes the new
/// one. False when a placeholder has no stored value to stand for.
fn restore_redacted(value: &mut Value, before: Option<&Value>) -> bool {
    match value {
        Value::String(s) if s == REDACTED => match before {
            Some(b) => {
                *value = b.clone();
                true
            }
            None => false,
        },
        Value::Array(items) => {
            let stored = before.and_then(Value::as_array);
            for (i, item) in items.iter_mut().enumerate() {
                if item.as_str() == Some(REDACTED) {
                    match stored.and_then(|s| s.get(i)) {
                        Some(b) => *item = b.clone(),
                        None => return false,
                    }
                }
            }
            true
        }
        _ => true,
    }
}

/// Puts the stored value back wherever a request sent [`REDACTED`] for a secret: a
/// plugin's config secrets (and the secret keys of its records), a certificate's `key`
/// and `key_alt` — what [`present`] hides. `stored` is the entity's fields before the
/// change (none for a new entity: the field is dropped).
fn keep_redacted_secrets(kind: Kind, stored: Option<&Map<String, Value>>, incoming: &mut Map<String, Value>) {
    match kind {
        Kind::Plugin => {
            let Some(Value::Object(config)) = incoming.get_mut("config") else { return };
            let stored = stored.and_then(|f| f.get("config")).and_then(Value::as_object);
            keep_redacted(stored, config, &|k| oidc_config::SECRET_FIELDS.contains(&k), true);
        }
        Kind::Certificate => keep_redacted(stored, incoming, &|k| CERTIFICATE_SECRETS.contains(&k), false),
        _ => {}
    }
}

/// [`keep_redacted_secrets`] for the keys of `incoming` that `secret` names; with
/// `records`, also inside its maps and lists of maps, at any depth, for the keys
/// [`oidc_config::is_secret_key`] names (as [`present_config`] redacts them).
fn keep_redacted(
    stored: Option<&Map<String, Value>>,
    incoming: &mut Map<String, Value>,
    secret: &dyn Fn(&str) -> bool,
    records: bool,
) {
    let keys: Vec<String> = incoming.keys().cloned().collect();
    for key in keys {
        let before = stored.and_then(|m| m.get(&key));
        let Some(value) = incoming.get_mut(&key) else { continue };
        if secret(&key) {
            // A placeholder standing for nothing stored: the field is dropped, never
            // saved as the placeholder text.
            if !restore_redacted(value, before) {
                incoming.remove(&key);
            }
        } else if records {
            keep_redacted_records(before, value);
        }
    }
}

fn keep_redacted_records(stored: Option<&Value>, incoming: &mut Value) {
    match incoming {
        Value::Object(m) => keep_redacted(stored.and_then(Value::as_object), m, &oidc_config::is_secret_key, true),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                keep_redacted_records(stored.and_then(|s| s.get(i)), item);
            }
        }
        _ => {}
    }
}

fn create(
    admin: &mut Admin,
    kind: Kind,
    mut body: Map<String, Value>,
    parent: Option<(Kind, String)>,
) -> Result<Response, ApiError> {
    strip_read_only(&mut body);
    let id = match body_id(&mut body)? {
        Some(id) => id,
        None => new_id().map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    if admin.store.by_id(kind, &id).is_some() {
        return Err(ApiError::PrimaryKey { id });
    }
    if let Some((parent, parent_id)) = parent {
        body.insert(parent.singular().into(), json!({ "id": parent_id }));
    }
    keep_redacted_secrets(kind, None, &mut body);
    let now = unix_now();
    let mut entity = Entity { id: id.clone(), created_at: now, updated_at: now, fields: body };
    check_constraints(&admin.store, kind, &mut entity)?;
    let mut candidate = admin.store.clone();
    candidate.list_mut(kind).push(entity);
    let index = candidate.list(kind).len() - 1;
    commit(admin, &candidate, (kind, index))?;
    let e = admin.store.by_id(kind, &id).ok_or_else(|| ApiError::Internal("the new entity is missing".into()))?;
    Ok(Response::json(201, &present(kind, e)))
}

/// Kong's PATCH: the given fields replace the stored ones; a plugin's `config` (and
/// the records inside it) is merged key by key. A service `url` replaces `protocol`,
/// `host`, `port` and `path`.
fn merge(kind: Kind, fields: &mut Map<String, Value>, body: Map<String, Value>) {
    fn merge_record(into: &mut Map<String, Value>, from: Map<String, Value>) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(Value::Object(a)), Value::Object(b)) => merge_record(a, b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    if kind == Kind::Service && body.contains_key("url") {
        for key in ["protocol", "host", "port", "path"] {
            if !body.contains_key(key) {
                fields.remove(key);
            }
        }
    }
    for (k, v) in body {
        match (kind, k.as_str(), fields.get_mut(&k), v) {
            (Kind::Plugin, "config", Some(Value::Object(a)), Value::Object(b)) => merge_record(a, b),
            (_, _, _, v) => {
                fields.insert(k, v);
            }
        }
    }
}

fn patch(admin: &mut Admin, kind: Kind, key: &str, mut body: Map<String, Value>) -> Result<Response, ApiError> {
    let i = find(&admin.store, kind, key)?;
    let mut entity = admin.store.list(kind)[i].clone();
    strip_read_only(&mut body);
    if let Some(id) = body_id(&mut body)? {
        if id != entity.id {
            return Err(schema_error("id", "the id of an entity cannot change"));
        }
    }
    keep_redacted_secrets(kind, Some(&entity.fields), &mut body);
    merge(kind, &mut entity.fields, body);
    entity.updated_at = unix_now().max(entity.created_at);
    check_constraints(&admin.store, kind, &mut entity)?;
    let id = entity.id.clone();
    let mut candidate = admin.store.clone();
    candidate.list_mut(kind)[i] = entity;
    commit(admin, &candidate, (kind, i))?;
    let e = admin.store.by_id(kind, &id).ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &present(kind, e)))
}

/// Kong's PUT: creates or replaces the entity the path names. Replacing keeps the id
/// and `created_at`; every field not given takes its default. A name in the path is
/// the entity's name (`instance_name` for plugins, `username` for consumers); for a
/// certificate it is one of its `snis`, added to those the body gives. CA certificates
/// are named by id only.
fn put(admin: &mut Admin, kind: Kind, key: &str, mut body: Map<String, Value>) -> Result<Response, ApiError> {
    strip_read_only(&mut body);
    if !is_uuid(key) {
        let (field, value) = match kind {
            Kind::Plugin => ("instance_name", json!(key)),
            Kind::Service | Kind::Route | Kind::Upstream => ("name", json!(key)),
            Kind::Consumer => ("username", json!(key)),
            Kind::Target => ("target", json!(key)),
            Kind::Certificate => {
                let mut snis = match body.remove("snis") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items,
                    Some(other) => vec![other],
                };
                let name = key.to_ascii_lowercase();
                if !snis.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&name))) {
                    snis.push(json!(name));
                }
                ("snis", Value::Array(snis))
            }
            Kind::CaCertificate => return Err(schema_error("id", "expected a valid UUID")),
        };
        body.insert(field.into(), value);
    }
    let Some(i) = admin.store.position(kind, key) else {
        if is_uuid(key) {
            match body_id(&mut body)? {
                Some(id) if !id.eq_ignore_ascii_case(key) => {
                    return Err(schema_error("id", "the id in the body differs from the one in the path"))
                }
                _ => {}
            }
            body.insert("id".into(), json!(key.to_ascii_lowercase()));
        }
        let mut created = create(admin, kind, body, None)?;
        created.status = 200;
        return Ok(created);
    };
    let current = admin.store.list(kind)[i].clone();
    if kind == Kind::Consumer && !current.id.eq_ignore_ascii_case(key) {
        // A UUID-like username found the consumer: it stays its username.
        body.insert("username".into(), json!(key));
    }
    if let Some(id) = body_id(&mut body)? {
        if id != current.id {
            return Err(schema_error("id", "the id of an entity cannot change"));
        }
    }
    keep_redacted_secrets(kind, Some(&current.fields), &mut body);
    let mut entity = Entity {
        id: current.id.clone(),
        created_at: current.created_at,
        updated_at: unix_now().max(current.created_at),
        fields: body,
    };
    check_constraints(&admin.store, kind, &mut entity)?;
    let mut candidate = admin.store.clone();
    candidate.list_mut(kind)[i] = entity;
    commit(admin, &candidate, (kind, i))?;
    let e = admin.store.by_id(kind, &current.id).ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &present(kind, e)))
}

/// Kong's DELETE: 204 whether or not the entity existed (a certificate named by an
/// SNI nothing serves is 404, as in Kong). A service that routes still use, or a
/// certificate a service presents as `client_certificate`, is refused (Kong's foreign
/// key violation); so is a CA certificate a service trusts (Kong's message). Plugins
/// scoped to a deleted service or route go with it.
fn delete(admin: &mut Admin, kind: Kind, key: &str) -> Result<Response, ApiError> {
    let i = match find(&admin.store, kind, key) {
        Ok(i) => i,
        Err(ApiError::NotFound) => return Ok(Response::no_content()),
        Err(e) => return Err(e),
    };
    let id = admin.store.list(kind)[i].id.clone();
    match kind {
        Kind::Service if admin.store.routes.iter().any(|r| r.reference("service") == Some(id.as_str())) => {
            return Err(ApiError::ForeignKey {
                message: "an existing 'routes' entity references this 'services' entity".into(),
                fields: json!({ "@referenced_by": "routes" }),
            });
        }
        Kind::Certificate => {
            let presents =
                |list: &[Entity]| list.iter().any(|e| e.reference("client_certificate") == Some(id.as_str()));
            for (referrer, list) in [("services", &admin.store.services), ("upstreams", &admin.store.upstreams)] {
                if presents(list) {
                    return Err(ApiError::ForeignKey {
                        message: format!("an existing '{referrer}' entity references this 'certificates' entity"),
                        fields: json!({ "@referenced_by": referrer }),
                    });
                }
            }
        }
        Kind::CaCertificate => {
            if let Some(s) = admin.store.services.iter().find(|s| s.strings("ca_certificates").any(|c| c == id)) {
                return Err(ApiError::Refused(format!(
                    "ca_certificate {id} is still referenced by services (id = {})",
                    s.id
                )));
            }
        }
        _ => {}
    }
    let mut candidate = admin.store.clone();
    candidate.list_mut(kind).remove(i);
    if matches!(kind, Kind::Service | Kind::Route) {
        candidate.plugins.retain(|p| p.reference(kind.singular()) != Some(id.as_str()));
    }
    // An upstream's targets go with it, as in Kong.
    if kind == Kind::Upstream {
        candidate.targets.retain(|t| t.reference("upstream") != Some(id.as_str()));
    }
    commit(admin, &candidate, (kind, usize::MAX))?;
    Ok(Response::no_content())
}

/// `POST /config`: a whole declarative document replaces the configuration (Kong's
/// DB-less endpoint). The document is the JSON body itself, or a `config` field (JSON
/// or form) holding YAML or JSON text, or a YAML body.
fn post_config(admin: &mut Admin, req: &Request) -> Result<Response, ApiError> {
    let text = if let Some(fields) = req.form() {
        match fields?.remove("config") {
            Some(Value::String(s)) => Cow::Owned(s),
            _ => return Err(schema_error("config", "expected the declarative configuration as a string")),
        }
    } else if req.media_type().as_deref() == Some("application/json") {
        match serde_json::from_slice::<Value>(req.body) {
            Ok(Value::Object(mut m)) if m.len() == 1 && m.get("config").is_some_and(Value::is_string) => {
                match m.remove("config") {
                    Some(Value::String(s)) => Cow::Owned(s),
                    _ => Cow::Borrowed(""),
                }
            }
            Ok(Value::Object(_)) => String::from_utf8_lossy(req.body),
            _ => return Err(ApiError::BadJson),
        }
    } else {
        // The body as it is, not a copy (up to 16 MiB).
        Cow::Borrowed(std::str::from_utf8(req.body).map_err(|_| ApiError::BadJson)?)
    };
    match admin.load_document(&text) {
        Ok(()) => {}
        Err(ApplyError::Invalid { errors, text }) => {
            return Err(ApiError::Declarative { problems: locate(&text, &errors) });
        }
        Err(e) => return Err(ApiError::Internal(format!("the configuration was not applied: {e}"))),
    }
    let mut out = Map::new();
    for kind in Kind::ALL {
        let items: Vec<Value> = admin.store.list(kind).iter().map(|e| present(kind, e)).collect();
        out.insert(kind.collection().into(), Value::Array(items));
    }
    Ok(Response::json(201, &Value::Object(out)))
}

#[cfg(test)]
mod tests;
