//! What the plugin takes from a verified access token for every request it authorizes
//! ([`TokenFacts`]): the claims `upstream_headers_claims` / `upstream_headers_names` and
//! `authenticated_groups_claim` send upstream as request headers, as Kong's plugin sets
//! them, and the value of `consumer_claim` that names the consumer.
//!
//! Place: rendered once per token — when the control plane verifies a token the IdP
//! issued, or when a worker verifies a caller's bearer token — and kept beside the token
//! in the caches, so a cache hit only copies the finished lines.
//!
//! Values, as Kong writes them:
//! - `upstream_headers_claims` (top-level claims): a string as it is; a number or `true`
//!   as its JSON text; an array or object as its JSON, standard base64-encoded. A claim
//!   that is missing, `null`, `false`, `""` or an empty array or object sets no header.
//! - `authenticated_groups_claim` (a path into nested objects) sets
//!   `X-Authenticated-Groups`: the claim's groups — the words of a string, or the string
//!   and number members of an array — without repeats, joined with `, `.
//!
//! Invariants:
//! - A value that could end or split a header line (a control character other than
//!   HTAB) sets no header; [`render`] says which header so the caller can log it. The
//!   value itself is never logged (claims may carry personal data).
//! - The upstream never sees the caller's own header under one of these names, whether
//!   or not the token has the claim ([`ClaimHeader::lower`] is what the rewrite drops).
//!   Kong lets the caller's header through when the claim is missing; a header the
//!   upstream takes as the token's word must not be the caller's to write.

use base64::Engine;
use simd_json::prelude::*;
use simd_json::OwnedValue;

use crate::jose::Claims;
#[cfg(test)]
use crate::jose::Verified;

/// One header the plugin sets from a claim, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimHeader {
    /// The claim read from the access token: one top-level name for a
    /// [`ClaimKind::Value`], a path for [`ClaimKind::Groups`].
    pub claim: Vec<String>,
    /// The header name as written in the file (what the upstream sees).
    pub name: String,
    /// The name lower-cased (what the rewrite compares the caller's headers with).
    pub lower: String,
    pub kind: ClaimKind,
}

/// How a claim becomes a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// `upstream_headers_claims[i]` → `upstream_headers_names[i]`.
    Value,
    /// `authenticated_groups_claim` → `X-Authenticated-Groups`.
    Groups,
}

/// The header `authenticated_groups_claim` sets.
pub const GROUPS_HEADER: &str = "X-Authenticated-Groups";

/// What a verified token gives every request it authorizes, worked out once per token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    /// The claim header lines for the upstream, each ending in CRLF; empty for none.
    pub lines: Box<[u8]>,
    /// The claim header lines for the caller's response (`downstream_headers_claims`).
    pub downstream_lines: Box<[u8]>,
    /// `consumer_claim`'s value as Kong reads it ([`consumer_subject`]); `None` when the
    /// setting is off or the token has no usable value.
    pub consumer: Option<Box<str>>,
    /// `credential_claim`'s value (default `sub`): what `hash_on: consumer` hashes when
    /// no consumer was identified, as Kong's virtual credential.
    pub credential: Option<Box<str>>,
}

/// The token's facts under `config`, or `None` when there are none (no claim header
/// applies and no consumer is named). Headers whose values could not be sent are logged
/// by name, once per token.
pub fn facts_for(config: &crate::oidc::config::OidcConfig, token: &Claims) -> Option<TokenFacts> {
    let lines = lines_for(&config.upstream_headers, token).unwrap_or_default();
    let downstream_lines = lines_for(&config.downstream_headers, token).unwrap_or_default();
    let consumer = (!config.consumer_claim.is_empty())
        .then(|| token.claim_path(&config.consumer_claim).and_then(consumer_subject))
        .flatten()
        .map(String::into_boxed_str);
    let credential = token.claim_path(&config.credential_claim).and_then(credential_text).map(String::into_boxed_str);
    let any = !lines.is_empty() || !downstream_lines.is_empty() || consumer.is_some() || credential.is_some();
    any.then(|| TokenFacts {
        lines: lines.into_boxed_slice(),
        downstream_lines: downstream_lines.into_boxed_slice(),
        consumer,
        credential,
    })
}

/// A `credential_claim` value as Kong's plugin takes it: a string, a number or `true` as
/// text; a list or object is not a credential.
fn credential_text(value: &OwnedValue) -> Option<String> {
    match value.as_str() {
        Some(s) => (!s.is_empty()).then(|| s.to_string()),
        None if value.is_number() || value.as_bool() == Some(true) => simd_json::to_string(value).ok(),
        None => None,
    }
}

/// A claim value as the text a consumer is looked up by, as Kong's plugin reads it: a
/// string as it is, a number or `true` as text, an array's members joined by a space.
/// `false`, `null`, an object and an empty result name no consumer.
pub fn consumer_subject(value: &OwnedValue) -> Option<String> {
    let text = if let Some(s) = value.as_str() {
        s.to_string()
    } else if value.as_bool() == Some(true) || value.is_number() {
        simd_json::to_string(value).ok()?
    } else if let Some(items) = value.as_array() {
        let mut words = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str() {
                Some(s) => words.push(s.to_string()),
                None if item.is_number() => words.push(simd_json::to_string(item).ok()?),
                None => return None,
            }
        }
        words.join(" ")
    } else {
        return None;
    };
    (!text.is_empty()).then_some(text)
}

/// The headers a token's claims could not be sent in (header-unsafe values).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Skipped<'a>(pub Vec<&'a str>);

/// Writes `Name: value\r\n` for each header whose claim `token` has, in configured
/// order. Returns the headers whose values could not be written (see the module doc).
pub fn render<'h>(headers: &'h [ClaimHeader], token: &Claims, out: &mut Vec<u8>) -> Skipped<'h> {
    let mut skipped = Skipped::default();
    for h in headers {
        let text = match h.kind {
            ClaimKind::Value => h.claim.first().and_then(|name| token.claim(name)).and_then(value_text),
            ClaimKind::Groups => token.claim_path(&h.claim).and_then(groups_text),
        };
        let Some(text) = text else { continue };
        if !header_safe(text.as_bytes()) {
            skipped.0.push(&h.name);
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    skipped
}

/// The header lines for `token`, or `None` when none apply. Headers whose values could
/// not be sent are logged by name, once per token.
pub fn lines_for(headers: &[ClaimHeader], token: &Claims) -> Option<Vec<u8>> {
    if headers.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let skipped = render(headers, token, &mut out);
    if !skipped.0.is_empty() {
        tracing::warn!(headers = ?skipped.0, "claim values with control characters were not sent");
    }
    (!out.is_empty()).then_some(out)
}

/// A claim's header text; `None` for the values Kong treats as missing.
fn value_text(value: &OwnedValue) -> Option<String> {
    let missing = value.is_null()
        || value.as_bool() == Some(false)
        || value.as_str() == Some("")
        || value.as_array().is_some_and(|a| a.is_empty())
        || value.as_object().is_some_and(|o| o.is_empty());
    if missing {
        return None;
    }
    if let Some(s) = value.as_str() {
        return Some(s.to_string());
    }
    let json = simd_json::to_string(value).ok()?;
    if value.is_array() || value.is_object() {
        return Some(base64::engine::general_purpose::STANDARD.encode(json));
    }
    Some(json)
}

/// The `X-Authenticated-Groups` value; `None` when the claim holds no group.
fn groups_text(value: &OwnedValue) -> Option<String> {
    let mut groups: Vec<String> = Vec::new();
    let mut add = |g: String| {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    };
    if let Some(s) = value.as_str() {
        s.split_ascii_whitespace().for_each(|w| add(w.to_string()));
    } else if let Some(items) = value.as_array() {
        for item in items {
            if let Some(s) = item.as_str() {
                add(s.to_string());
            } else if item.is_number() {
                add(simd_json::to_string(item).ok()?);
            }
        }
    }
    (!groups.is_empty()).then(|| groups.join(", "))
}

/// RFC 9110 §5.5 field-value bytes: visible ASCII, space, HTAB and obs-text.
pub(crate) fn header_safe(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(claim: &str, name: &str) -> ClaimHeader {
        ClaimHeader {
            claim: vec![claim.into()],
            name: name.into(),
            lower: name.to_ascii_lowercase(),
            kind: ClaimKind::Value,
        }
    }

    fn groups(path: &[&str]) -> ClaimHeader {
        ClaimHeader {
            claim: path.iter().map(|s| s.to_string()).collect(),
            name: GROUPS_HEADER.into(),
            lower: GROUPS_HEADER.to_ascii_lowercase(),
            kind: ClaimKind::Groups,
        }
    }

    fn token(claims: &str) -> Verified {
        let mut bytes = claims.as_bytes().to_vec();
        let claims = simd_json::to_owned_value(&mut bytes).expect("test claims are JSON");
        Verified { alg: crate::jose::Alg::RS256, kid: None, claims: crate::jose::Claims { exp: None, claims } }
    }

    fn rendered(headers: &[ClaimHeader], claims: &str) -> (String, Vec<String>) {
        let t = token(claims);
        let mut out = Vec::new();
        let skipped = render(headers, &t, &mut out).0.into_iter().map(String::from).collect();
        (String::from_utf8(out).expect("UTF-8 in these tests"), skipped)
    }

    #[test]
    fn strings_numbers_and_true_are_written_as_text_in_configured_order() {
        let headers =
            [pair("tenant", "X-Tenant"), pair("tier", "X-Tier"), pair("ratio", "X-Ratio"), pair("beta", "X-Beta")];
        let (out, skipped) = rendered(&headers, r#"{"beta":true,"ratio":1.5,"tier":3,"tenant":"acme"}"#);
        assert_eq!(out, "X-Tenant: acme\r\nX-Tier: 3\r\nX-Ratio: 1.5\r\nX-Beta: true\r\n");
        assert!(skipped.is_empty());
    }

    #[test]
    fn arrays_and_objects_are_base64_of_their_json() {
        let headers = [pair("groups", "X-Groups"), pair("org", "X-Org")];
        let (out, _) = rendered(&headers, r#"{"groups":["a","b"],"org":{"id":"o-1"}}"#);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(out, format!("X-Groups: {}\r\nX-Org: {}\r\n", b64(r#"["a","b"]"#), b64(r#"{"id":"o-1"}"#)));
    }

    #[test]
    fn claims_kong_treats_as_missing_set_nothing_and_are_not_reported() {
        let names = ["gone", "nothing", "no", "blank", "none", "empty", "sub"];
        let headers: Vec<_> = names.iter().map(|n| pair(n, &format!("X-{n}"))).collect();
        let (out, skipped) =
            rendered(&headers, r#"{"nothing":null,"no":false,"blank":"","none":[],"empty":{},"sub":"svc-1"}"#);
        assert_eq!(out, "X-sub: svc-1\r\n");
        assert!(skipped.is_empty());
    }

    #[test]
    fn a_value_that_could_split_the_head_is_skipped_and_reported() {
        let headers = [pair("smuggle", "X-Smuggle"), pair("nul", "X-Nul"), pair("del", "X-Del"), pair("ok", "X-Ok")];
        let (out, skipped) = rendered(
            &headers,
            r#"{"smuggle":"a\r\nX-Injected: 1","nul":"a\u0000b","del":"a\u007fb","ok":"tab\tand é"}"#,
        );
        assert_eq!(out, "X-Ok: tab\tand é\r\n");
        assert_eq!(skipped, ["X-Smuggle", "X-Nul", "X-Del"]);
    }

    #[test]
    fn only_top_level_claims_are_read_for_named_headers() {
        let headers = [pair("org.id", "X-Org-Id")];
        let (out, _) = rendered(&headers, r#"{"org":{"id":"o-1"}}"#);
        assert_eq!(out, "");
    }

    #[test]
    fn groups_are_the_words_or_members_of_the_claim_once_each_joined_with_comma_space() {
        let at = |path: &[&str], claims: &str| rendered(&[groups(path)], claims).0;
        assert_eq!(
            at(&["groups"], r#"{"groups":["ops","pay ments","ops",7,true,""]}"#),
            "X-Authenticated-Groups: ops, pay ments, 7\r\n"
        );
        assert_eq!(at(&["groups"], r#"{"groups":"ops  admin ops"}"#), "X-Authenticated-Groups: ops, admin\r\n");
        assert_eq!(at(&["realm", "roles"], r#"{"realm":{"roles":["a"]}}"#), "X-Authenticated-Groups: a\r\n");
        for none in [r#"{"groups":[]}"#, r#"{"groups":{"a":1}}"#, r#"{"groups":" "}"#, r#"{"other":["a"]}"#] {
            assert_eq!(at(&["groups"], none), "", "{none}");
        }
    }

    #[test]
    fn a_group_with_a_control_character_keeps_the_whole_header_out() {
        let (out, skipped) = rendered(&[groups(&["groups"])], r#"{"groups":["ops","a\r\nX-Evil: 1"]}"#);
        assert_eq!(out, "");
        assert_eq!(skipped, [GROUPS_HEADER]);
    }
}
