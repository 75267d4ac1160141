//! `application/x-www-form-urlencoded` Admin API bodies into JSON, with Kong's rules.
//!
//! Kong accepts every entity as form fields (`name=openid-connect&config.auth_methods=
//! client_credentials&config.client_id=abc`). The rules, as Kong's Admin API applies
//! them:
//!
//! - Names and values are percent-decoded, `+` is a space.
//! - A dotted name nests: `config.client_id=abc` is `{"config":{"client_id":"abc"}}`;
//!   `a[b]` is the same as `a.b`.
//! - `name[]=x` appends to a list; `name[2]=x` sets the second element (1-based, as
//!   Kong's); a name given twice makes a list of both values, in order.
//! - Every value arrives as a string, so [`coerce`] converts it by the field's schema:
//!   `true`/`false` for booleans, numbers for numbers, and a lone value of a list field
//!   becomes a one-element list (`config.auth_methods=client_credentials`). A value that
//!   does not convert stays a string, and the decK loader then refuses it with its
//!   usual message.
//! - An empty value (`path=`) is `null`: the field is unset and takes its default.
//!   `name[]=` with an empty value makes an empty list.
//!
//! `multipart/form-data` bodies (RFC 7578; `curl -F config=@kong.yaml` for `POST
//! /config`) follow the same rules, one part per field, without percent-decoding.
//!
//! Cost: linear in the body; the Admin API limits bodies in size.

use serde_json::{Map, Value};

use super::store::Kind;
use crate::oidc::config::{self as oidc_config, FieldKind};
use crate::oidc::credentials::form_decode;

/// Why a form body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    /// A name or value is not UTF-8 once percent-decoded; it holds the name (as sent
    /// when the name is the problem), never the value, which may be a secret.
    #[error("form field {0:?} is not valid UTF-8")]
    Encoding(String),
    /// The same name is used as a value and as a parent (`a=1&a.b=2`), or a list index
    /// is out of range.
    #[error("form field '{0}' conflicts with another field or has a bad index")]
    Conflict(String),
    /// A field name nested deeper than any Kong field.
    #[error("form field name nests too deeply: {0:.64}")]
    TooDeep(String),
    /// A multipart body that does not follow RFC 7578.
    #[error("malformed multipart/form-data body: {0}")]
    Multipart(&'static str),
}

/// The most list elements `name[N]` indexes may create in one body, the gaps they
/// leave included: `a1[1024]=&a2[1024]=...` would otherwise make a thousand values of
/// every dozen bytes sent.
const MAX_INDEXED: usize = 1024;
/// The most levels a field name may nest (Kong's records are a few levels deep); a
/// bound on the recursion a body can cause.
const MAX_DEPTH: usize = 16;

enum Seg {
    Key(String),
    Append,
    Index(usize),
}

/// `s` form-decoded (`+` is a space, `%XX` a byte), if that is UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(form_decode(s.as_bytes()).collect()).ok()
}

fn segments(name: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in name.split('.') {
        let (head, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        segs.push(Seg::Key(head.to_string()));
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else {
                // An unclosed bracket is part of the name, as written.
                if let Some(Seg::Key(k)) = segs.last_mut() {
                    k.push_str(rest);
                }
                break;
            };
            let idx = &inner[..end];
            segs.push(if idx.is_empty() {
                Seg::Append
            } else {
                match idx.parse::<usize>() {
                    Ok(n) => Seg::Index(n),
                    Err(_) => Seg::Key(idx.to_string()),
                }
            });
            rest = &inner[end + 1..];
        }
    }
    segs
}

/// Decodes an `application/x-www-form-urlencoded` body into a JSON object of strings,
/// lists and objects.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>, FormError> {
    let text = std::str::from_utf8(body).map_err(|_| FormError::Encoding("<body>".into()))?;
    let mut pairs = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name).ok_or_else(|| FormError::Encoding(name.to_string()))?;
        let value = percent_decode(value).ok_or_else(|| FormError::Encoding(name.clone()))?;
        pairs.push((name, value));
    }
    nest(pairs)
}

/// Decodes a `multipart/form-data` body (`content_type` carries the boundary).
pub fn decode_multipart(body: &[u8], content_type: &str) -> Result<Map<String, Value>, FormError> {
    nest(multipart_parts(body, content_type)?)
}

fn nest(pairs: Vec<(String, String)>) -> Result<Map<String, Value>, FormError> {
    let mut root = Value::Object(Map::new());
    let mut indexed = MAX_INDEXED;
    for (name, value) in pairs {
        let segs = segments(&name);
        if segs.len() > MAX_DEPTH {
            return Err(FormError::TooDeep(name));
        }
        insert(&mut root, &segs, value, &mut indexed).ok_or_else(|| FormError::Conflict(name.clone()))?;
    }
    match root {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// A parameter of a header value (`name` of `form-data; name="config"`), unquoted.
fn parameter<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"'))
    })
}

/// The `(name, value)` of each part of a multipart body, in order.
fn multipart_parts(body: &[u8], content_type: &str) -> Result<Vec<(String, String)>, FormError> {
    use memchr::memmem;
    let boundary =
        parameter(content_type, "boundary").filter(|b| !b.is_empty()).ok_or(FormError::Multipart("no boundary"))?;
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let start = memmem::find(body, first.as_bytes()).ok_or(FormError::Multipart("no part"))?;
    let mut rest = &body[start + first.len()..];
    let mut parts = Vec::new();
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n").ok_or(FormError::Multipart("a delimiter is not followed by CRLF"))?;
        let end = memmem::find(rest, delimiter.as_bytes()).ok_or(FormError::Multipart("no closing delimiter"))?;
        let part = &rest[..end];
        rest = &rest[end + delimiter.len()..];
        let split = memmem::find(part, b"\r\n\r\n").ok_or(FormError::Multipart("a part has no header end"))?;
        let headers = std::str::from_utf8(&part[..split]).map_err(|_| FormError::Multipart("headers not UTF-8"))?;
        let name = headers
            .split("\r\n")
            .filter_map(|h| h.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-disposition"))
            .and_then(|(_, v)| parameter(v, "name"))
            .ok_or(FormError::Multipart("a part has no name"))?
            .to_string();
        let value = String::from_utf8(part[split + 4..].to_vec()).map_err(|_| FormError::Encoding(name.clone()))?;
        parts.push((name, value));
    }
    Ok(parts)
}

/// Puts `value` at `segs` under `at`; `None` on a conflict, or when indexes would create
/// more than `indexed` (what is left of [`MAX_INDEXED`]) elements.
fn insert(at: &mut Value, segs: &[Seg], value: String, indexed: &mut usize) -> Option<()> {
    let Some((first, rest)) = segs.split_first() else { return Some(()) };
    // Made only at the last segment, from the value itself (no copy per level).
    let leaf = |value: String| if value.is_empty() { Value::Null } else { Value::String(value) };
    match first {
        Seg::Key(k) => {
            let map = at.as_object_mut()?;
            if rest.is_empty() {
                match map.get_mut(k) {
                    None => {
                        map.insert(k.clone(), leaf(value));
                    }
                    // A repeated name makes a list.
                    Some(Value::Array(items)) => items.push(leaf(value)),
                    Some(existing @ (Value::String(_) | Value::Null)) => {
                        let old = existing.take();
                        *existing = Value::Array(vec![old, leaf(value)]);
                    }
                    Some(_) => return None,
                }
                return Some(());
            }
            let child = map.entry(k.clone()).or_insert_with(|| match rest[0] {
                Seg::Key(_) => Value::Object(Map::new()),
                _ => Value::Array(Vec::new()),
            });
            if child.is_null() {
                *child = match rest[0] {
                    Seg::Key(_) => Value::Object(Map::new()),
                    _ => Value::Array(Vec::new()),
                };
            }
            insert(child, rest, value, indexed)
        }
        Seg::Append => {
            let items = at.as_array_mut()?;
            if rest.is_empty() {
                if !value.is_empty() {
                    items.push(leaf(value));
                }
                return Some(());
            }
            items.push(Value::Object(Map::new()));
            insert(items.last_mut()?, rest, value, indexed)
        }
        Seg::Index(n) => {
            let items = at.as_array_mut()?;
            if *n == 0 {
                return None;
            }
            if items.len() < *n {
                *indexed = indexed.checked_sub(*n - items.len())?;
                items.resize(*n, Value::Null);
            }
            if rest.is_empty() {
                items[*n - 1] = leaf(value);
                return Some(());
            }
            if !items[*n - 1].is_object() {
                items[*n - 1] = Value::Object(Map::new());
            }
            insert(&mut items[*n - 1], rest, value, indexed)
        }
    }
}

/// The type of an entity's top-level field, where it is not a string.
fn entity_field(kind: Kind, key: &str) -> Option<FieldKind> {
    use FieldKind::*;
    Some(match (kind, key) {
        (_, "tags") | (_, "protocols") => Array,
        (_, "enabled") => Boolean,
        (_, "service" | "route" | "consumer" | "upstream") => Record,
        (Kind::Service, "port" | "connect_timeout" | "read_timeout" | "write_timeout" | "retries") => Integer,
        (Kind::Service, "tls_verify_depth") => Integer,
        (Kind::Service, "tls_verify") => Boolean,
        (Kind::Service, "ca_certificates") => Array,
        (Kind::Route, "methods" | "hosts" | "paths" | "snis" | "sources" | "destinations") => Array,
        (Kind::Route, "strip_path" | "preserve_host" | "request_buffering" | "response_buffering") => Boolean,
        (Kind::Route, "regex_priority" | "https_redirect_status_code") => Integer,
        (Kind::Route, "headers") => Record,
        (Kind::Plugin, "config") => Record,
        (Kind::Certificate, "snis") => Array,
        (Kind::Upstream, "slots") => Integer,
        (Kind::Upstream, "use_srv_name") => Boolean,
        (Kind::Upstream, "healthchecks") => Record,
        (Kind::Target, "weight") => Integer,
        _ => return None,
    })
}

fn coerce_value(v: &mut Value, kind: FieldKind) {
    match (kind, &*v) {
        (FieldKind::Boolean, Value::String(s)) => match s.as_str() {
            "true" => *v = Value::Bool(true),
            "false" => *v = Value::Bool(false),
            _ => {}
        },
        (FieldKind::Integer, Value::String(s)) => {
            if let Ok(n) = s.parse::<i64>() {
                *v = Value::from(n);
            }
        }
        (FieldKind::Number, Value::String(s)) => {
            if let Ok(n) = s.parse::<i64>() {
                *v = Value::from(n);
            } else if let Some(n) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                *v = Value::Number(n);
            }
        }
        (FieldKind::Array, Value::String(_)) => *v = Value::Array(vec![v.take()]),
        _ => {}
    }
}

/// Converts the string values of a decoded form body by the schema of `kind` (see the
/// module doc). JSON bodies are never coerced: they carry their own types.
pub fn coerce(kind: Kind, body: &mut Map<String, Value>) {
    for (key, value) in body.iter_mut() {
        let Some(field_kind) = entity_field(kind, key) else { continue };
        coerce_value(value, field_kind);
        match (kind, key.as_str(), value) {
            (Kind::Plugin, "config", Value::Object(config)) => {
                for (name, v) in config.iter_mut() {
                    if let Some(f) = oidc_config::field(name) {
                        coerce_value(v, f.kind);
                    }
                }
            }
            (Kind::Route, "headers", Value::Object(headers)) => {
                for v in headers.values_mut() {
                    coerce_value(v, FieldKind::Array);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(kind: Kind, body: &str) -> Value {
        let mut m = decode(body.as_bytes()).unwrap();
        coerce(kind, &mut m);
        Value::Object(m)
    }

    #[test]
    fn kong_docs_plugin_form_nests_and_coerces() {
        let v = form(
            Kind::Plugin,
            "name=openid-connect&config.issuer=http%3A%2F%2Fidp%2F&config.auth_methods=client_credentials\
             &config.client_id=abc&config.client_secret=s+e%2Bcret&config.timeout=5000&config.leeway=1.5\
             &config.ssl_verify=true&enabled=false",
        );
        assert_eq!(
            v,
            json!({
                "name": "openid-connect",
                "enabled": false,
                "config": {
                    "issuer": "http://idp/",
                    "auth_methods": ["client_credentials"],
                    "client_id": ["abc"],
                    "client_secret": ["s e+cret"],
                    "timeout": 5000,
                    "leeway": 1.5,
                    "ssl_verify": true,
                }
            })
        );
    }

    #[test]
    fn repeated_names_and_brackets_make_lists() {
        let v = form(Kind::Route, "paths=/a&paths=/b&methods[]=GET&methods[]=POST&hosts[2]=b.com&hosts[1]=a.com");
        assert_eq!(v["paths"], json!(["/a", "/b"]));
        assert_eq!(v["methods"], json!(["GET", "POST"]));
        assert_eq!(v["hosts"], json!(["a.com", "b.com"]));
    }

    #[test]
    fn service_numbers_references_and_empty_values() {
        let v = form(Kind::Service, "name=s&port=8080&retries=x&path=&tags[]=");
        assert_eq!(v["port"], json!(8080));
        assert_eq!(v["retries"], json!("x"), "left for the loader to refuse");
        assert_eq!(v["path"], Value::Null);
        assert_eq!(v["tags"], json!([]));
        let v = form(Kind::Route, "service.id=abc&headers.x-v=1&strip_path=false&paths[]=/");
        assert_eq!(v["service"], json!({"id": "abc"}));
        assert_eq!(v["headers"], json!({"x-v": ["1"]}));
        assert_eq!(v["strip_path"], json!(false));
        let v = form(Kind::Route, "service[name]=s");
        assert_eq!(v["service"], json!({"name": "s"}));
    }

    #[test]
    fn multipart_parts_are_fields_like_form_fields() {
        let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"config\"; filename=\"kong.yaml\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n_format_version: \"3.0\"\r\nservices: []\r\n\
                    \r\n--XyZ\r\ncontent-disposition: form-data; name=tags[]\r\n\r\na\r\n--XyZ--\r\n";
        let m = decode_multipart(body.as_bytes(), "multipart/form-data; boundary=\"XyZ\"").unwrap();
        assert_eq!(m["config"], json!("_format_version: \"3.0\"\r\nservices: []\r\n"));
        assert_eq!(m["tags"], json!(["a"]));
        let bad = |b: &str, ct: &str| decode_multipart(b.as_bytes(), ct).unwrap_err();
        assert_eq!(bad("x", "multipart/form-data"), FormError::Multipart("no boundary"));
        assert_eq!(
            bad("--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--", "m; boundary=b"),
            FormError::Multipart("a part has no name")
        );
        assert_eq!(bad("--b\r\nno end", "m; boundary=b"), FormError::Multipart("no closing delimiter"));
        assert_eq!(bad("--bX", "m; boundary=b"), FormError::Multipart("a delimiter is not followed by CRLF"));
    }

    #[test]
    fn conflicts_and_bad_input_are_errors_not_panics() {
        assert!(matches!(decode(b"a=1&a.b=2"), Err(FormError::Conflict(_))));
        assert!(matches!(decode(b"a[0]=1"), Err(FormError::Conflict(_))));
        assert!(matches!(decode(b"a[99999]=1"), Err(FormError::Conflict(_))));
        assert!(decode(b"a[1024]=1").is_ok());
        let spread: Vec<String> = (0..64).map(|i| format!("a{i}[1024]=")).collect();
        assert!(matches!(decode(spread.join("&").as_bytes()), Err(FormError::Conflict(_))), "a bound per body");
        assert!(matches!(decode(b"a=%ff"), Err(FormError::Encoding(_))));
        assert!(matches!(decode(&[0xff]), Err(FormError::Encoding(_))));
        let e = decode(b"config.client_secret=s3%ffcret").unwrap_err();
        assert_eq!(e, FormError::Encoding("config.client_secret".into()), "the name, never the value");
        assert_eq!(decode(b"a=%2&b=%zz&c=%").unwrap()["a"], json!("%2"));
        assert_eq!(decode(b"a[=1").unwrap()["a["], json!("1"));
        assert!(decode(b"&&=&").is_ok());
        let deep = format!("{}=1", "a.".repeat(100_000));
        assert!(matches!(decode(deep.as_bytes()), Err(FormError::TooDeep(_))));
        assert!(matches!(decode("a[][][][][][][][][][][][][][][][][]=1".as_bytes()), Err(FormError::TooDeep(_))));
    }

    /// Deepest nesting of arrays and objects (a string is 0).
    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn elements(v: &Value) -> usize {
        match v {
            Value::Array(items) => items.len() + items.iter().map(elements).sum::<usize>(),
            Value::Object(m) => m.values().map(elements).sum(),
            _ => 0,
        }
    }

    const SECRET: &str = "s3cr3t-in-a-value";

    /// A random name: keys, dots, brackets (empty, indexed, unclosed), escapes.
    fn random_name(rng: &mut crate::testing::Rng) -> String {
        const PARTS: &[&str] = &[
            "config",
            "client_secret",
            "a",
            ".",
            "[",
            "]",
            "[]",
            "[1]",
            "[3]",
            "[0]",
            "[1024]",
            "[99999]",
            "[x]",
            "%5B",
            "%5D",
            "%2E",
            "%ff",
            "%zz",
            "%",
            "+",
            "\u{e9}",
            "name",
            "tags",
        ];
        if rng.chance(8) {
            // Deep and well-formed: around the nesting limit.
            return (0..rng.below(2 * MAX_DEPTH))
                .map(|_| rng.pick(&["k.", "l[]", "m[x]", "n[1]."]))
                .collect::<String>()
                + "v";
        }
        let parts = 1 + if rng.chance(8) { rng.below(40) } else { rng.below(6) };
        (0..parts).map(|_| rng.pick(PARTS)).collect()
    }

    /// A random value, holding the secret (and its escapes) now and then.
    fn random_value(rng: &mut crate::testing::Rng) -> String {
        const PARTS: &[&str] =
            &["", "x", "1", "true", "%20", "+", "%ff", "%fe%ff", "%zz", "%", "%2", "=", "%26", "\u{1f600}", SECRET];
        (0..rng.below(4)).map(|_| rng.pick(PARTS)).collect()
    }

    #[test]
    fn random_bodies_decode_within_bounds_and_errors_never_show_a_value() {
        let mut rng = crate::testing::Rng(0xf0f0_5eed_1234_abcd);
        for _ in 0..4000 {
            let pairs = rng.below(12);
            let mut body: Vec<u8> = (0..pairs)
                .map(|_| format!("{}={}", random_name(&mut rng), random_value(&mut rng)))
                .collect::<Vec<_>>()
                .join(rng.pick(&["&", "&&", "&=&"]))
                .into_bytes();
            if rng.chance(10) {
                let at = rng.below(body.len() + 1);
                body.insert(at, rng.next() as u8);
            }
            match decode(&body) {
                Ok(mut fields) => {
                    let v = Value::Object(fields.clone());
                    assert!(depth(&v) <= MAX_DEPTH, "{}", String::from_utf8_lossy(&body));
                    assert!(elements(&v) <= pairs * MAX_DEPTH + MAX_INDEXED, "{}", String::from_utf8_lossy(&body));
                    for kind in Kind::ALL {
                        let mut once = fields.clone();
                        coerce(kind, &mut once);
                        let mut twice = once.clone();
                        coerce(kind, &mut twice);
                        assert_eq!(once, twice, "coercion is idempotent");
                    }
                    coerce(Kind::Plugin, &mut fields);
                }
                Err(e) => {
                    assert!(!e.to_string().contains(SECRET), "{e} from {}", String::from_utf8_lossy(&body));
                }
            }
        }
    }

    #[test]
    fn random_multipart_bodies_never_panic_and_errors_never_show_a_value() {
        let mut rng = crate::testing::Rng(0x3a11_9a27_0f0f_7777);
        for _ in 0..3000 {
            let mut body = Vec::new();
            if rng.chance(3) {
                body.extend_from_slice(b"preamble\r\n");
            }
            for _ in 0..rng.below(4) {
                body.extend_from_slice(b"--B\r\n");
                let disposition = format!("Content-Disposition: form-data; name=\"{}\"\r\n", random_name(&mut rng));
                if !rng.chance(6) {
                    body.extend_from_slice(disposition.as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(random_value(&mut rng).as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(rng.pick(&[&b"--B--\r\n"[..], b"--B", b"", b"--B\r\n"]));
            for _ in 0..rng.below(3) {
                let at = rng.below(body.len() + 1);
                match rng.below(3) {
                    0 => body.insert(at, rng.pick(b"\r\n-B\xff")),
                    1 if at < body.len() => {
                        body.remove(at);
                    }
                    _ => body.truncate(at),
                }
            }
            let content_type = rng.pick(&[
                "multipart/form-data; boundary=B",
                "multipart/form-data; boundary=\"B\"",
                "multipart/form-data",
                "multipart/form-data; boundary=",
            ]);
            match decode_multipart(&body, content_type) {
                Ok(fields) => assert!(depth(&Value::Object(fields)) <= MAX_DEPTH),
                Err(e) => assert!(!e.to_string().contains(SECRET), "{e}"),
            }
        }
    }
}
