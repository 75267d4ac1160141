//! Upstream path construction: the service's `path` joined with what is left of the
//! request path, per the route's `strip_path` and `path_handling`.
//!
//! The rules restate Kong's (`get_upstream_uri_v0` in `kong/router/utils.lua` and the
//! `v1` branch of `kong/router/traditional.lua`); the golden table is Kong's fixture
//! `spec/fixtures/router_path_handling_tests.lua`, re-typed in
//! `tests/router_path_handling.rs`.
//!
//! Terms, all on the *normalised* request path (see `path.rs`):
//! - `base`: the service path, `/` when it has none;
//! - `rest`: the request path without its leading `/`;
//! - `postfix`: with `strip_path` and a path match, what follows the matched part;
//!   otherwise `rest`. A postfix of `.`/`..`, or starting with `./`/`../`, loses that
//!   dot part (Kong's `sanitize_uri_postfix`).
//!
//! v0 treats the pieces as URL segments joined by exactly one `/`; an empty postfix
//! keeps the request's trailing slash, if it had one. v1 treats `base` as a plain
//! string prefix. Request-derived bytes are percent-encoded where needed on the way
//! out; the service path is written as configured.

use super::path::push_escaped;
use crate::config::PathHandling;

/// What the join needs to know about the matched route.
pub(crate) struct JoinRule<'a> {
    pub base: &'a [u8],
    pub strip_path: bool,
    pub handling: PathHandling,
}

fn sanitize_postfix(p: &[u8]) -> &[u8] {
    if p == b"." || p == b".." {
        return b"";
    }
    if let Some(rest) = p.strip_prefix(b"./") {
        return rest;
    }
    if let Some(rest) = p.strip_prefix(b"../") {
        return rest;
    }
    p
}

/// Appends the upstream path to `out`. `matched` is the length of the matched part of
/// `norm` when the route matched by path, `None` for a route without paths.
pub(crate) fn join(rule: &JoinRule<'_>, norm: &[u8], matched: Option<usize>, out: &mut Vec<u8>) {
    let base = if rule.base.is_empty() { &b"/"[..] } else { rule.base };
    let base_slash = base.ends_with(b"/");
    let base_trimmed = if base_slash { &base[..base.len() - 1] } else { base };
    let rest = norm.strip_prefix(b"/").unwrap_or(norm);
    let postfix = match matched {
        Some(len) if rule.strip_path => norm.get(len..).unwrap_or_default(),
        _ => rest,
    };
    let postfix = sanitize_postfix(postfix);

    match (rule.handling, rule.strip_path) {
        (PathHandling::V1, true) => {
            // The matched part is replaced by base; only a doubled slash is fixed up.
            if base_slash && postfix.starts_with(b"/") {
                out.extend_from_slice(base_trimmed);
            } else {
                out.extend_from_slice(base);
            }
            push_escaped(out, postfix);
        }
        (PathHandling::V1, false) => {
            out.extend_from_slice(base);
            push_escaped(out, rest);
        }
        (PathHandling::V0, true) => {
            if postfix.is_empty() {
                if base == b"/" {
                    out.push(b'/');
                } else if base_slash {
                    // Keep the request's trailing slash, if it had one.
                    out.extend_from_slice(if norm.ends_with(b"/") { base } else { base_trimmed });
                } else {
                    out.extend_from_slice(base);
                    if norm.len() > 1 && norm.ends_with(b"/") {
                        out.push(b'/');
                    }
                }
            } else if postfix.starts_with(b"/") {
                out.extend_from_slice(base_trimmed);
                push_escaped(out, postfix);
            } else {
                out.extend_from_slice(base_trimmed);
                out.push(b'/');
                push_escaped(out, postfix);
            }
        }
        (PathHandling::V0, false) => {
            if base_slash {
                out.extend_from_slice(base);
                push_escaped(out, rest);
            } else {
                out.extend_from_slice(base);
                if norm != b"/" {
                    push_escaped(out, norm);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(base: &str, strip: bool, h: PathHandling, norm: &str, matched: Option<usize>) -> String {
        let mut out = Vec::new();
        join(&JoinRule { base: base.as_bytes(), strip_path: strip, handling: h }, norm.as_bytes(), matched, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dot_postfix_is_dropped_when_stripping() {
        assert_eq!(run("/svc", true, PathHandling::V0, "/route..", Some(6)), "/svc");
        assert_eq!(run("/svc", true, PathHandling::V0, "/route../x", Some(6)), "/svc/x");
    }

    #[test]
    fn decoded_bytes_are_re_encoded_but_service_path_is_not() {
        assert_eq!(run("/s p", true, PathHandling::V0, "/r/a b", Some(2)), "/s p/a%20b");
    }

    #[test]
    fn empty_service_path_counts_as_root() {
        assert_eq!(run("", false, PathHandling::V0, "/x", None), "/x");
    }
}
