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
//! - `upstream_headers_claims` (top-level claims) and `upstream_headers` (a path into
//!   nested objects): a string as it is; a number or `true` as its JSON text; an array
//!   or object as its JSON, standard base64-encoded. A claim that is missing, `null`,
//!   `false`, `""` or an empty array or object sets no header.
//! - `authenticated_groups_claim` (a path into nested objects) sets
//!   `X-Authenticated-Groups`: the claim's groups — the words of a string, or the string
//!   and number members of an array — without repeats, joined with `, `.
//! - `upstream_introspection_header` / `downstream_introspection_header`: the whole
//!   introspection answer as its JSON, standard base64-encoded, when the token was
//!   introspected (an opaque token the IdP issued, or the `introspection` method); a JWT
//!   verified here sets none.
//!
//! Invariants:
//! - A value that could end or split a header line (a control character other than
//!   HTAB) sets no header; [`render`] says which header so the caller can log it. The
//!   value itself is never logged (claims may carry personal data).
//! - The upstream never sees the caller's own header under one of these names, whether
//!   or not the token has the claim ([`ClaimHeader::lower`] is what the rewrite drops).
//!   Kong lets the caller's header through when the claim is missing; a header the
//!   upstream takes as the token's word must not be the caller's to write.

#[cfg(test)]
use crate::jose::Verified;
use crate::jose::{ClaimValue, Claims};
use base64::Engine;

/// One header the plugin sets from a claim, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimHeader {
    /// The claim read from the access token, as a path into nested objects: one
    /// top-level name for `*_headers_claims`, any depth for `*_headers` and
    /// `authenticated_groups_claim`.
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
    /// `upstream_headers_claims[i]` → `upstream_headers_names[i]`, or an
    /// `upstream_headers` entry's `path` → its `header`.
    Value,
    /// `authenticated_groups_claim` → `X-Authenticated-Groups`.
    Groups,
    /// `*_introspection_header`: the introspection answer itself (`claim` is empty).
    Introspection,
    /// `*_introspection_jwt_header`: the signed introspection answer (RFC 9701) as the
    /// IdP sent it (`claim` is empty).
    IntrospectionJwt,
    /// `*_access_token_jwk_header`: the public JWK of the key that verified the access
    /// token, base64 of its JSON as Kong encodes a table (`claim` is empty).
    AccessTokenJwk,
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
    /// The first usable value ([`consumer_subject`]) at the `consumer_claim` /
    /// `consumer_claims` paths; `None` when the setting is off or none has one.
    pub consumer: Option<Box<str>>,
    /// `credential_claim`'s value (default `sub`): what `hash_on: consumer` hashes when
    /// no consumer was identified, as Kong's virtual credential.
    pub credential: Option<Box<str>>,
    /// `cnf.jkt` (RFC 9449 §6): the thumbprint of the key the token is bound to, kept
    /// when `proof_of_possession_dpop` is on.
    pub jkt: Option<Box<str>>,
    /// `cnf.x5t#S256` (RFC 8705 §3.1), decoded from base64url once, here: the SHA-256
    /// thumbprint of the TLS client certificate the token is bound to, kept when
    /// `proof_of_possession_mtls` is on. A value that does not decode stays a binding,
    /// empty, which no certificate matches.
    pub x5t: Option<Box<[u8]>>,
}

/// The token's facts under `config`, or `None` when there are none (no claim header
/// applies and no consumer is named). Headers whose values could not be sent are logged
/// by name, once per token.
pub fn facts_for(config: &crate::oidc::config::OidcConfig, token: &Claims) -> Option<TokenFacts> {
    let lines = lines_for(&config.upstream_headers, token).unwrap_or_default();
    let downstream_lines = lines_for(&config.downstream_headers, token).unwrap_or_default();
    let consumer = config
        .consumer_claim
        .iter()
        .find_map(|path| token.claim_path(path).and_then(consumer_subject))
        .map(String::into_boxed_str);
    let credential = token.claim_path(&config.credential_claim).and_then(credential_text).map(String::into_boxed_str);
    let jkt = (config.dpop != crate::oidc::config::PopMode::Off)
        .then(|| token.claim_path(&["cnf", "jkt"]).and_then(|v| v.as_str()).map(Box::from))
        .flatten();
    let x5t = (config.mtls != crate::oidc::config::PopMode::Off)
        .then(|| token.claim_path(&["cnf", "x5t#S256"]).and_then(|v| v.as_str()))
        .flatten()
        .map(|v| crate::jose::b64_decode(v.as_bytes()).unwrap_or_default().into_boxed_slice());
    let any = !lines.is_empty()
        || !downstream_lines.is_empty()
        || consumer.is_some()
        || credential.is_some()
        || jkt.is_some()
        || x5t.is_some();
    any.then(|| TokenFacts {
        lines: lines.into_boxed_slice(),
        downstream_lines: downstream_lines.into_boxed_slice(),
        consumer,
        credential,
        jkt,
        x5t,
    })
}

/// A `credential_claim` value as Kong's plugin takes it: a string, a number or `true` as
/// text; a list or object is not a credential.
fn credential_text(value: ClaimValue<'_>) -> Option<String> {
    match value.as_str() {
        Some(s) => (!s.is_empty()).then(|| s.to_string()),
        None if value.is_number() || value.as_bool() == Some(true) => Some(value.to_json()),
        None => None,
    }
}

/// A claim value as the text a consumer is looked up by, as Kong's plugin reads it: a
/// string as it is, a number or `true` as text, an array's members joined by a space.
/// `false`, `null`, an object and an empty result name no consumer.
pub fn consumer_subject(value: ClaimValue<'_>) -> Option<String> {
    let text = if let Some(s) = value.as_str() {
        s.to_string()
    } else if value.as_bool() == Some(true) || value.is_number() {
        value.to_json()
    } else if let Some(items) = value.items() {
        let mut words = Vec::with_capacity(value.members().unwrap_or(0));
        for item in items {
            match item.as_str() {
                Some(s) => words.push(s.to_string()),
                None if item.is_number() => words.push(item.to_json()),
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
            ClaimKind::Value => token.claim_path(&h.claim).and_then(value_text),
            ClaimKind::Groups => token.claim_path(&h.claim).and_then(groups_text),
            ClaimKind::Introspection => token.introspected().then(|| value_text(token.claims())).flatten(),
            ClaimKind::IntrospectionJwt => token.signed_answer().map(str::to_string),
            ClaimKind::AccessTokenJwk => {
                token.key_jwk().map(|jwk| base64::engine::general_purpose::STANDARD.encode(jwk))
            }
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
fn value_text(value: ClaimValue<'_>) -> Option<String> {
    let missing =
        value.is_null() || value.as_bool() == Some(false) || value.as_str() == Some("") || value.members() == Some(0);
    if missing {
        return None;
    }
    if let Some(s) = value.as_str() {
        return Some(s.to_string());
    }
    let json = value.to_json();
    if value.is_array() || value.is_object() {
        return Some(base64::engine::general_purpose::STANDARD.encode(json));
    }
    Some(json)
}

/// The `X-Authenticated-Groups` value; `None` when the claim holds no group.
fn groups_text(value: ClaimValue<'_>) -> Option<String> {
    let mut groups: Vec<String> = Vec::new();
    let mut add = |g: String| {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    };
    if let Some(s) = value.as_str() {
        s.split_ascii_whitespace().for_each(|w| add(w.to_string()));
    } else if let Some(items) = value.items() {
        for item in items {
            if let Some(s) = item.as_str() {
                add(s.to_string());
            } else if item.is_number() {
                add(item.to_json());
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

    fn token(claims: &str) -> Verified<'static> {
        let mut bytes = claims.as_bytes().to_vec();
        let claims = simd_json::to_owned_value(&mut bytes).expect("test claims are JSON");
        Verified { alg: crate::jose::Alg::RS256, kid: None, claims: crate::jose::Claims::of_owned(claims) }
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

    /// A plugin config reading claims into headers and requirements, compiled as a file
    /// would be.
    fn config() -> crate::oidc::config::OidcConfig {
        let yaml = "_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n    \
            issuer: http://127.0.0.1:1/\n    auth_methods: [bearer]\n    \
            upstream_headers_claims: [tenant, groups, sub, x, scope]\n    \
            upstream_headers_names: [X-Tenant, X-Groups, X-Sub, X-X, X-Scope]\n    \
            authenticated_groups_claim: [realm_access, roles]\n    \
            downstream_headers_claims: [sub, aud]\n    downstream_headers_names: [X-Down-Sub, X-Down-Aud]\n    \
            consumer_claim: [sub]\n    consumer_optional: true\n    credential_claim: [x]\n    \
            scopes_required: [openid email, admin]\n    audience_required: [api]\n    \
            groups_required: [ops, \"1\"]\n    roles_required: [r1]\n    claims_forbidden: [banned]\n";
        let cfg = crate::config::load_str(yaml, "t.yaml", &|_| None).unwrap();
        crate::oidc::config::compile(&cfg.plugins[0], "t.yaml").unwrap().0
    }

    /// Random claims: the configured names with values of every JSON shape, including
    /// strings with CR, LF, NUL, DEL and non-ASCII, alone or inside arrays and objects.
    fn random_claims(rng: &mut crate::testing::Rng) -> String {
        let names = ["tenant", "groups", "sub", "x", "scope", "aud", "realm_access", "roles", "banned", "other"];
        let mut members = Vec::new();
        for _ in 0..rng.below(10) {
            let name = rng.pick(&names);
            let value = match rng.below(4) {
                0 => rng.pick(crate::testing::EDGE_STRINGS).to_string(),
                1 if name == "realm_access" => {
                    format!(r#"{{"roles":{}}}"#, crate::testing::json_text(rng, 2))
                }
                1 => format!(
                    "[{},{}]",
                    rng.pick(crate::testing::EDGE_STRINGS),
                    rng.pick(&["\"ops\"", "\"r1\"", "\"api\"", "1", "1.0", "true"])
                ),
                _ => crate::testing::json_text(rng, 3),
            };
            members.push(format!(r#""{name}":{value}"#));
        }
        format!("{{{}}}", members.join(","))
    }

    /// Bytes a field value may hold without ending or splitting the line: RFC 9110 §5.5
    /// without the controls other than HTAB (judged here without `header_safe`).
    fn field_value_ok(v: &[u8]) -> bool {
        !v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    }

    /// Checks `out` is `Name: value\r\n` lines for `headers`, in order, each value safe,
    /// and that no line came from a header in `skipped`. Returns the rendered names.
    fn lines_of<'h>(out: &[u8], headers: &'h [ClaimHeader], skipped: &[&str]) -> Vec<&'h str> {
        assert!(out.is_empty() || out.ends_with(b"\r\n"), "{out:?}");
        let mut names = Vec::new();
        let mut next = headers.iter();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").expect("CRLF");
            let h = next
                .find(|h| line.starts_with(h.name.as_bytes()) && line[h.name.len()..].starts_with(b": "))
                .unwrap_or_else(|| panic!("a line of no configured header, or out of order: {line:?}"));
            let value = &line[h.name.len() + 2..];
            assert!(!value.is_empty() && field_value_ok(value), "{}: {value:?}", h.name);
            assert!(!skipped.contains(&h.name.as_str()));
            names.push(h.name.as_str());
        }
        names
    }

    #[test]
    fn random_claims_render_only_safe_header_lines_and_requirements_never_panic() {
        let config = config();
        let mut rng = crate::testing::Rng(0x4528_21e6_38d0_1377);
        let mut rendered_any = 0;
        let mut skipped_any = 0;
        for _ in 0..3000 {
            let text = random_claims(&mut rng);
            let mut bytes = text.clone().into_bytes();
            let Ok(value) = simd_json::to_owned_value(&mut bytes) else { continue };
            let claims = crate::jose::Claims::from_introspection(value).expect("an object");
            let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
            for headers in [&config.upstream_headers, &config.downstream_headers] {
                let mut out = Vec::new();
                let skipped = render(headers, &claims, &mut out).0;
                let names = lines_of(&out, headers, &skipped);
                rendered_any += names.len();
                skipped_any += skipped.len();
                for h in headers.iter().filter(|h| h.kind == ClaimKind::Value) {
                    // A string claim is sent as it is when it is safe, and never when not.
                    let Some(serde_json::Value::String(s)) = reference.get(&h.claim[0]) else { continue };
                    let sent = names.contains(&h.name.as_str());
                    if s.is_empty() {
                        assert!(!sent && !skipped.contains(&h.name.as_str()));
                    } else if field_value_ok(s.as_bytes()) {
                        let line = [h.name.as_bytes(), b": ", s.as_bytes(), b"\r\n"].concat();
                        assert!(out.windows(line.len()).any(|w| w == line), "{}: {s:?}", h.name);
                    } else {
                        assert!(!sent && skipped.contains(&h.name.as_str()), "{}: {s:?}", h.name);
                    }
                }
                assert_eq!(lines_for(headers, &claims).unwrap_or_default(), out);
            }
            let facts = facts_for(&config, &claims);
            if let Some(f) = &facts {
                lines_of(&f.lines, &config.upstream_headers, &[]);
                lines_of(&f.downstream_lines, &config.downstream_headers, &[]);
            }
            // The requirement order of the docs: forbidden claims, then scopes, audience,
            // groups and roles.
            use crate::error::AuthReason;
            let forbidden = reference.get("banned").is_some_and(|v| *v != serde_json::Value::Bool(false));
            let want = if forbidden {
                Some(AuthReason::ForbiddenClaim)
            } else {
                [
                    (&config.scopes_required, "scope", AuthReason::InsufficientScope),
                    (&config.audience_required, "aud", AuthReason::AudienceMismatch),
                    (&config.groups_required, "groups", AuthReason::GroupsMissing),
                    (&config.roles_required, "roles", AuthReason::RolesMissing),
                ]
                .into_iter()
                .find(|(required, claim, _)| !crate::jose::requirement_met(required, claims.claim(claim)))
                .map(|(_, _, reason)| reason)
            };
            assert_eq!(config.unmet_requirement(Some(&claims)), want, "{text}");
            assert!(config.unmet_requirement(None).is_some());
            // The same claims read in place, as a verified token's are: the same header
            // lines, facts and verdict.
            let mut in_place_text = text.clone().into_bytes();
            let tape = simd_json::to_tape(&mut in_place_text).expect("simd-json read it once");
            let mut in_place = crate::jose::Claims::of_tape(tape, claims.exp);
            in_place.introspected = true;
            for headers in [&config.upstream_headers, &config.downstream_headers] {
                assert_eq!(lines_for(headers, &in_place), lines_for(headers, &claims), "{text}");
            }
            let in_place_facts = facts_for(&config, &in_place);
            let parts = |f: &Option<TokenFacts>| {
                f.as_ref()
                    .map(|f| (f.lines.clone(), f.downstream_lines.clone(), f.consumer.clone(), f.credential.clone()))
            };
            assert_eq!(parts(&in_place_facts), parts(&facts), "{text}");
            assert_eq!(config.unmet_requirement(Some(&in_place)), want, "{text}");
        }
        assert!(rendered_any > 3000 && skipped_any > 300, "{rendered_any} {skipped_any}");
    }

    #[test]
    fn a_group_with_a_control_character_keeps_the_whole_header_out() {
        let (out, skipped) = rendered(&[groups(&["groups"])], r#"{"groups":["ops","a\r\nX-Evil: 1"]}"#);
        assert_eq!(out, "");
        assert_eq!(skipped, [GROUPS_HEADER]);
    }
}
