//! The consumers of a snapshot, indexed for the openid-connect plugin's consumer
//! mapping (`consumer_claim`, `consumer_by`, `by_username_ignore_case`) and its
//! `anonymous` fallback.
//!
//! Place: built with each [`crate::snapshot::Snapshot`], read on the request path. A
//! lookup is one hash-map probe per `consumer_by` field; the headers a consumer puts on
//! a request are rendered here, once, so a request only copies them.
//!
//! What Kong does, and so this does:
//! - `consumer_by` fields are tried in the configured order: `id` (a UUID, compared
//!   whatever its case), `username`, `custom_id`. With `by_username_ignore_case`, a
//!   username that does not match exactly is looked up ignoring ASCII case; when several
//!   consumers match that way, the first in configuration order wins.
//! - `anonymous` names a consumer by id or, failing that, by username.
//! - A mapped consumer sets `X-Consumer-ID`, and `X-Consumer-Custom-ID` and
//!   `X-Consumer-Username` when it has them; the anonymous consumer sets the same plus
//!   `X-Anonymous-Consumer: true`.
//!
//! Invariants:
//! - Usernames and custom ids hold no control character (the loader refuses them), so
//!   the rendered lines are well-formed header lines.
//! - On a request an openid-connect instance ran on, the caller's own headers under these
//!   four names never reach the upstream (`http::head::Known::ConsumerIdentity`): only
//!   the plugin says who the consumer is, as in Kong, which clears them too.

use std::collections::HashMap;

use crate::config::Consumer;

/// A `consumer_by` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerBy {
    Id,
    Username,
    CustomId,
}

impl ConsumerBy {
    pub fn parse(s: &str) -> Option<ConsumerBy> {
        match s {
            "id" => Some(ConsumerBy::Id),
            "username" => Some(ConsumerBy::Username),
            "custom_id" => Some(ConsumerBy::CustomId),
            _ => None,
        }
    }
}

/// One consumer, with its upstream header lines rendered.
#[derive(Debug)]
pub struct Entry {
    /// `X-Consumer-*` lines, each ending in CRLF.
    pub lines: Box<[u8]>,
    /// The same followed by `X-Anonymous-Consumer: true`.
    pub anonymous_lines: Box<[u8]>,
    pub id: String,
    /// Its position in `Config::consumers`.
    pub index: usize,
}

/// The snapshot's consumers.
#[derive(Debug, Default)]
pub struct Consumers {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    by_username: HashMap<String, usize>,
    /// Lower-cased username → the first consumer with it.
    by_username_lower: HashMap<String, usize>,
    by_custom_id: HashMap<String, usize>,
}

impl Consumers {
    pub fn new(consumers: &[Consumer]) -> Consumers {
        let mut t = Consumers::default();
        for (i, c) in consumers.iter().enumerate() {
            let mut lines = Vec::new();
            let mut line = |name: &str, value: &str| {
                lines.extend_from_slice(name.as_bytes());
                lines.extend_from_slice(b": ");
                lines.extend_from_slice(value.as_bytes());
                lines.extend_from_slice(b"\r\n");
            };
            line("X-Consumer-ID", &c.id);
            if let Some(custom_id) = &c.custom_id {
                line("X-Consumer-Custom-ID", custom_id);
                t.by_custom_id.insert(custom_id.clone(), i);
            }
            if let Some(username) = &c.username {
                line("X-Consumer-Username", username);
                t.by_username.insert(username.clone(), i);
                t.by_username_lower.entry(username.to_ascii_lowercase()).or_insert(i);
            }
            let mut anonymous_lines = lines.clone();
            anonymous_lines.extend_from_slice(b"X-Anonymous-Consumer: true\r\n");
            t.by_id.insert(c.id.to_ascii_lowercase(), i);
            t.entries.push(Entry {
                lines: lines.into_boxed_slice(),
                anonymous_lines: anonymous_lines.into_boxed_slice(),
                id: c.id.clone(),
                index: i,
            });
        }
        t
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The consumer `subject` (a claim's value) names, trying `by` in order.
    pub fn find(&self, subject: &str, by: &[ConsumerBy], username_ignore_case: bool) -> Option<&Entry> {
        by.iter().find_map(|field| {
            let i = match field {
                ConsumerBy::Id => self.by_id_text(subject),
                ConsumerBy::Username => self.by_username.get(subject).copied().or_else(|| {
                    username_ignore_case.then(|| self.by_username_lower.get(&subject.to_ascii_lowercase()).copied())?
                }),
                ConsumerBy::CustomId => self.by_custom_id.get(subject).copied(),
            }?;
            self.entries.get(i)
        })
    }

    /// The consumer `anonymous` names: by id, else by username.
    pub fn anonymous(&self, name: &str) -> Option<&Entry> {
        let i = self.by_id_text(name).or_else(|| self.by_username.get(name).copied())?;
        self.entries.get(i)
    }

    fn by_id_text(&self, text: &str) -> Option<usize> {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_id.get(&text.to_ascii_lowercase()).copied()
        } else {
            self.by_id.get(text).copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mark;

    fn consumer(id: &str, username: Option<&str>, custom_id: Option<&str>) -> Consumer {
        Consumer {
            id: id.into(),
            id_given: true,
            username: username.map(Into::into),
            custom_id: custom_id.map(Into::into),
            tags: Vec::new(),
            mark: Mark::default(),
        }
    }

    const A: &str = "0a6f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    const B: &str = "1b7f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    const C: &str = "2c8f1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";

    fn table() -> Consumers {
        Consumers::new(&[
            consumer(A, Some("Alice"), Some("cust-a")),
            consumer(B, Some("bob"), None),
            consumer(C, None, Some("alice")),
        ])
    }

    fn id_of(e: Option<&Entry>) -> Option<&str> {
        e.map(|e| e.id.as_str())
    }

    #[test]
    fn fields_are_tried_in_the_configured_order() {
        let t = table();
        use ConsumerBy::*;
        // "alice" is C's custom id and, ignoring case, A's username.
        assert_eq!(id_of(t.find("alice", &[CustomId, Username], true)), Some(C));
        assert_eq!(id_of(t.find("alice", &[Username, CustomId], true)), Some(A));
        assert_eq!(id_of(t.find("alice", &[Username], false)), None, "case matters unless told otherwise");
        assert_eq!(id_of(t.find("Alice", &[Username], false)), Some(A));
        assert_eq!(id_of(t.find("cust-a", &[Username], true)), None, "only the fields asked for");
        assert_eq!(id_of(t.find(&B.to_uppercase(), &[Id], false)), Some(B), "ids compare as UUIDs");
        assert_eq!(id_of(t.find(B, &[Username, CustomId], false)), None);
    }

    #[test]
    fn a_consumer_renders_the_headers_it_has() {
        let t = table();
        let a = t.find(A, &[ConsumerBy::Id], false).unwrap();
        assert_eq!(
            std::str::from_utf8(&a.lines).unwrap(),
            format!("X-Consumer-ID: {A}\r\nX-Consumer-Custom-ID: cust-a\r\nX-Consumer-Username: Alice\r\n")
        );
        let b = t.anonymous("bob").unwrap();
        assert_eq!(
            std::str::from_utf8(&b.anonymous_lines).unwrap(),
            format!("X-Consumer-ID: {B}\r\nX-Consumer-Username: bob\r\nX-Anonymous-Consumer: true\r\n")
        );
    }

    #[test]
    fn anonymous_is_an_id_or_else_a_username() {
        let t = table();
        assert_eq!(id_of(t.anonymous(C)), Some(C));
        assert_eq!(id_of(t.anonymous("Alice")), Some(A));
        assert_eq!(id_of(t.anonymous("cust-a")), None, "not by custom id");
        assert_eq!(id_of(t.anonymous("nobody")), None);
    }
}
