//! `hide_credentials`: what the upstream receives instead of the caller's credentials.
//!
//! Place in the request path: after the access phase granted the request, before the
//! upstream head is written. The plugin removes every place it reads credentials from,
//! not only the one that carried them this time, so a secret sent twice never reaches
//! the upstream: the `client_id` / `client_secret` / `grant_type` arguments (and
//! `access_token` when the `bearer` method is on) from the query and from a form or JSON
//! body, and the bearer cookie from `Cookie`. The `Authorization` and `Grant-Type`
//! headers are dropped by the head rewrite itself.
//!
//! Invariants: everything that is not a credential is kept as sent, in order — other
//! form pairs byte for byte, other JSON members as their original text, other cookies
//! as `name=value` pairs. A body that is not a JSON object is left alone (it cannot have
//! carried credentials).
//!
//! Cost: one pass over the query, body or cookie header and one allocation for the
//! result; only requests to instances with `hide_credentials: true` pay it.

use super::config::{AuthMethod, BearerLocation, OidcConfig};
use super::credentials::{self, form_decoded_eq, Sources};

/// The request parts `hide_credentials` rewrote; `None` parts go upstream as sent.
pub struct Replaced {
    /// The query to send, with its `?`, or empty.
    pub query: Vec<u8>,
    /// The body to send instead of the (whole, buffered) form or JSON body.
    pub body: Option<Vec<u8>>,
    /// The `Cookie` value to send instead of every `Cookie` line (empty: none).
    pub cookie: Option<Vec<u8>>,
}

/// What `cfg` sends upstream instead of the request's query, body and cookies: without
/// any argument or cookie the instance reads credentials from. A body is only rewritten
/// when it was buffered whole for the access phase (`sources.body`); `cookies` yields
/// the request's `Cookie` lines when asked.
pub fn replace<'r, I>(cfg: &OidcConfig, sources: &Sources<'r>, cookie_name: &[u8], cookies: impl Fn() -> I) -> Replaced
where
    I: Iterator<Item = &'r [u8]>,
{
    let mut names: Vec<&[u8]> = Vec::with_capacity(4);
    if cfg.uses(AuthMethod::ClientCredentials) {
        names.extend_from_slice(&[b"client_id", b"client_secret", b"grant_type"]);
    }
    if cfg.takes_bearer_tokens() {
        names.push(b"access_token");
    }
    let mut query = Vec::new();
    if let Some(q) = sources.query {
        let kept = strip_form(q, &names);
        if !kept.is_empty() {
            query.push(b'?');
            query.extend_from_slice(&kept);
        }
    }
    let body = match (sources.body, sources.content_type) {
        (Some(b), Some(ct)) if credentials::is_form(ct) => Some(strip_form(b, &names)),
        (Some(b), Some(ct)) if credentials::is_json(ct) => strip_json(b, &names),
        _ => None,
    };
    let cookie = cfg.reads_bearer_from(BearerLocation::Cookie).then(|| strip_cookie(cookies(), cookie_name));
    Replaced { query, body, cookie }
}

/// `form` (a query string without its `?`, or a form body) without the fields named
/// `names` (compared after form-decoding the name). Other pairs are kept as sent.
pub fn strip_form(form: &[u8], names: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(form.len());
    for pair in form.split(|&c| c == b'&') {
        let name = pair.split(|&c| c == b'=').next().unwrap_or(pair);
        if pair.is_empty() || names.iter().any(|n| form_decoded_eq(name, n)) {
            continue;
        }
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(pair);
    }
    out
}

/// A JSON object body without its top-level members named `names` (compared after
/// decoding the key's escapes). Other members keep their original text; whitespace
/// between members is not kept. `None` when `body` is not one well-formed JSON object.
pub fn strip_json(body: &[u8], names: &[&[u8]]) -> Option<Vec<u8>> {
    let mut s = Scanner { text: body, pos: 0 };
    s.skip_ws();
    s.expect(b'{')?;
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            s.skip_ws();
            let start = s.pos;
            let key = s.string()?;
            s.skip_ws();
            s.expect(b':')?;
            s.skip_ws();
            s.value(0)?;
            let member = &body[start..s.pos];
            if !names.iter().any(|n| key == *n) {
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(member);
            }
            s.skip_ws();
            match s.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.skip_ws();
    if s.pos != body.len() {
        return None;
    }
    out.push(b'}');
    Some(out)
}

/// Whether `body` is one JSON object [`strip_json`] can strip. The body location reads
/// credentials (and the bearer token) only from such a body: simd-json takes some things
/// this scanner and RFC 8259 do not (a NUL after a literal, a lone surrogate escape,
/// nesting past [`MAX_DEPTH`]), and a secret read from a body that cannot be stripped
/// would reach the upstream as sent.
pub(crate) fn json_is_strippable(body: &[u8]) -> bool {
    strip_json(body, &[]).is_some()
}

/// The `Cookie` header value to send instead of `values` (every `Cookie` line of the
/// request, in order), without the cookie named `name`. Empty when nothing is left.
pub fn strip_cookie<'a>(values: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for pair in values.flat_map(|v| v.split(|&c| c == b';')) {
        let pair = crate::http::head::trim_ows(pair);
        if pair.is_empty() {
            continue;
        }
        let n = pair.split(|&c| c == b'=').next().unwrap_or(pair);
        if crate::http::head::trim_ows(n) == name {
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(pair);
    }
    out
}

/// Nesting deeper than this is refused rather than scanned (no unbounded recursion on
/// caller input): the one limit every reader of untrusted JSON keeps.
const MAX_DEPTH: usize = crate::jose::MAX_JSON_DEPTH;

/// Just enough of a JSON reader to find where each value ends (RFC 8259 grammar).
struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A string at the cursor, returned decoded (escapes resolved, UTF-8 bytes as sent).
    fn string(&mut self) -> Option<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Some(out),
                b'\\' => match self.next()? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let mut unit = self.hex4()?;
                        if (0xd800..0xdc00).contains(&unit) {
                            self.expect(b'\\')?;
                            self.expect(b'u')?;
                            let low = self.hex4()?;
                            if !(0xdc00..0xe000).contains(&low) {
                                return None;
                            }
                            unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                        }
                        let ch = char::from_u32(unit)?;
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => return None,
                },
                c if c < 0x20 => return None,
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + crate::http::hex_value(self.next()?)? as u32;
        }
        Some(v)
    }

    /// Skips one value of any type.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let close = if self.next()? == b'{' { b'}' } else { b']' };
                let object = close == b'}';
                self.skip_ws();
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    if object {
                        self.string()?;
                        self.skip_ws();
                        self.expect(b':')?;
                        self.skip_ws();
                    }
                    self.value(depth + 1)?;
                    self.skip_ws();
                    match self.next()? {
                        b',' => continue,
                        c if c == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.pos += 1;
                }
                // Loose on number shape; strict enough to know where the value ends.
                (self.pos > start).then_some(())
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.text.get(self.pos..end)? == word).then(|| self.pos = end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CC: &[&[u8]] = &[b"client_id", b"client_secret", b"grant_type"];

    #[test]
    fn form_keeps_other_pairs_as_sent_and_drops_encoded_names() {
        let got = strip_form(b"a=1&client%5Fid=x&b=%20&client_secret=s&&grant_type", CC);
        assert_eq!(got, b"a=1&b=%20");
        assert_eq!(strip_form(b"client_id=x", CC), b"");
    }

    #[test]
    fn json_drops_named_members_and_keeps_the_rest_verbatim() {
        let body = br#" { "client_id" : "x", "keep": {"client_secret": "nested"}, "client_secret":"s", "n": [1, 2.5e3, true, null], "grant_type": "client_credentials" } "#;
        let got = strip_json(body, CC).unwrap();
        assert_eq!(got, br#"{"keep": {"client_secret": "nested"},"n": [1, 2.5e3, true, null]}"#);
    }

    #[test]
    fn json_key_escapes_are_decoded_before_comparing() {
        let got = strip_json(br#"{"client\u005fid":"x","a\"b":1}"#, CC).unwrap();
        assert_eq!(got, br#"{"a\"b":1}"#);
        assert_eq!(strip_json(br#"{"client_id":"x"}"#, CC).unwrap(), b"{}");
        assert_eq!(strip_json(b"{}", CC).unwrap(), b"{}");
    }

    #[test]
    fn json_that_is_not_one_object_is_refused() {
        for bad in [
            &b"[1]"[..],
            b"{\"a\":1}x",
            b"{\"a\":}",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":tru}",
            b"{\"\\ud800x\":1}",
            b"",
        ] {
            assert_eq!(strip_json(bad, CC), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn json_nesting_beyond_the_bound_is_refused_without_recursing_further() {
        let mut deep = b"{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 10_000));
        deep.extend(std::iter::repeat_n(b']', 10_000));
        deep.push(b'}');
        assert_eq!(strip_json(&deep, CC), None);
    }

    #[test]
    fn every_json_body_credentials_are_read_from_is_one_strip_json_strips_them_from() {
        use crate::oidc::credentials::{from_body, json_access_token, CredentialBuf};
        // Up to 130 levels the scanner strips; the body location read deeper bodies too,
        // so a secret in one 131 or more levels deep reached the upstream as sent.
        for depth in (0..300).chain([20_000]) {
            let mut body = br#"{"client_id":"a","client_secret":"b","access_token":"t","x":"#.to_vec();
            body.extend(std::iter::repeat_n(b'[', depth));
            body.extend(std::iter::repeat_n(b']', depth));
            body.push(b'}');
            let names: &[&[u8]] = &[b"client_id", b"client_secret", b"grant_type", b"access_token"];
            let read = from_body(b"application/json", &body, &mut CredentialBuf::new()).unwrap().is_some();
            if read || json_access_token(&body).is_some() {
                let stripped = strip_json(&body, names).unwrap_or_else(|| panic!("{depth} levels: not stripped"));
                assert!(stripped.starts_with(br#"{"x":"#), "{depth} levels");
            }
        }
    }

    #[test]
    fn cookie_drops_the_named_cookie_across_lines() {
        let lines: [&[u8]; 2] = [b"a=1; token=abc;b=2", b" token=def ; c=3"];
        assert_eq!(strip_cookie(lines.into_iter(), b"token"), b"a=1; b=2; c=3");
        assert_eq!(strip_cookie([&b"token=x"[..]].into_iter(), b"token"), b"");
        assert_eq!(strip_cookie([&b"tokens=x"[..]].into_iter(), b"token"), b"tokens=x");
    }

    // ---- property tests: mutated forms, JSON bodies and cookies ----

    use crate::oidc::credentials::{from_body, json_access_token, CredentialBuf};
    use crate::testing::{self, Rng};

    const READ: &[&[u8]] = &[b"client_id", b"client_secret", b"grant_type", b"access_token"];

    #[test]
    fn mutated_json_bodies_keep_every_other_member_and_lose_every_one_credentials_come_from() {
        let mut rng = Rng(0x41de_5eed_0000_0001);
        let (mut read, mut stripped) = (0, 0);
        for _ in 0..8000 {
            let id = format!("i{}", testing::random_text(&mut rng, 8));
            let mut body = testing::credential_json(&mut rng, &id, "s").into_bytes();
            if rng.chance(2) {
                body.splice(1..1, *br#""access_token":"t","#);
            }
            for _ in 0..rng.below(3) {
                testing::mutate_json(&mut rng, &mut body);
            }
            let out = strip_json(&body, READ);
            let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            // What the body location reads, `hide` can strip.
            let credentials =
                from_body(b"application/json", &body, &mut CredentialBuf::new()).unwrap_or(None).is_some();
            if credentials || json_access_token(&body).is_some() {
                read += 1;
                assert!(out.is_some(), "read from but not stripped: {shown:?}");
            }
            // A body JSON reads (serde_json, up to its 128 levels) is stripped of exactly
            // the named top-level members, the rest kept in order.
            if let Some(members) = testing::json_members(&body) {
                let out = out.as_deref().unwrap_or_else(|| panic!("valid JSON not stripped: {shown:?}"));
                let kept: Vec<_> = members.into_iter().filter(|(k, _)| !READ.contains(&k.as_bytes())).collect();
                assert_eq!(testing::json_members(out), Some(kept), "{shown:?}");
                stripped += 1;
            }
        }
        assert!(read > 300 && stripped > 300, "only {read} read, {stripped} valid");
    }

    #[test]
    fn mutated_forms_keep_every_other_pair_as_sent_and_lose_every_credential() {
        let mut rng = Rng(0x41de_5eed_0000_0002);
        for _ in 0..10_000 {
            let mut form = Vec::new();
            for _ in 0..rng.below(8) {
                if !form.is_empty() {
                    form.push(b'&');
                }
                let name: &[u8] =
                    rng.pick(&[b"client_id", b"client%5Fsecret", b"grant_type", b"a", b"client_idx", b"b%20c"]);
                form.extend_from_slice(name);
                if !rng.chance(4) {
                    form.push(b'=');
                    let len = rng.below(6);
                    let value = rng.bytes(len, b"a=%2F+&");
                    form.extend(value);
                }
            }
            for _ in 0..rng.below(3) {
                testing::mutate_bytes(&mut rng, &mut form);
            }
            let names = &READ[..3];
            let want: Vec<&[u8]> = form
                .split(|&c| c == b'&')
                .filter(|p| !p.is_empty())
                .filter(|p| {
                    let name = p.split(|&c| c == b'=').next().unwrap();
                    !names.contains(&testing::form_decoded(name).as_slice())
                })
                .collect();
            assert_eq!(strip_form(&form, names), want.join(&b'&'), "{:?}", form.escape_ascii().to_string());
        }
    }

    #[test]
    fn mutated_cookie_lines_keep_every_other_cookie_and_lose_the_named_one() {
        let mut rng = Rng(0x41de_5eed_0000_0003);
        for _ in 0..10_000 {
            let mut lines: Vec<Vec<u8>> = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let mut line = Vec::new();
                for _ in 0..rng.below(5) {
                    let pair: &[u8] =
                        rng.pick(&[b"token=abc", b" token = x", b"a=1", b"tokens=2", b"b", b"", b"c=\"q;\""]);
                    line.extend_from_slice(pair);
                    line.extend_from_slice(rng.pick(&[&b";"[..], b"; ", b" ;"]));
                }
                testing::mutate_bytes(&mut rng, &mut line);
                lines.push(line);
            }
            let got = strip_cookie(lines.iter().map(Vec::as_slice), b"token");
            let want: Vec<&[u8]> = lines
                .iter()
                .flat_map(|l| l.split(|&c| c == b';'))
                .map(crate::http::head::trim_ows)
                .filter(|p| !p.is_empty())
                .filter(|p| crate::http::head::trim_ows(p.split(|&c| c == b'=').next().unwrap()) != b"token")
                .collect();
            assert_eq!(got, want.join(&b"; "[..]), "{lines:?}");
        }
    }
}
