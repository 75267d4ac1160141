//! Heads written for the next hop, as slices of the heads that arrived.
//!
//! Place in the request path: once a request is routed, [`write_request_head`] writes the
//! head the upstream receives; once the upstream answers, [`write_response_head`] writes
//! the head the downstream receives. Lines that pass through unchanged are copied from
//! the original buffer; only the request line, `Host`, the `X-Forwarded-*` family,
//! `X-Real-IP` and the hop-by-hop fields are rewritten or dropped.
//!
//! Kong's forwarding headers, which these mirror (with Kong's default of trusting no
//! downstream proxy): `X-Forwarded-For` appends the peer address to what the downstream
//! sent; `X-Real-IP`, `X-Forwarded-Proto`, `-Host`, `-Port` and `-Path` are replaced by
//! what this proxy saw; `X-Forwarded-Prefix` carries the path prefix `strip_path`
//! removed.
//!
//! Cost: one pass over the header entries and a memcpy per kept line into a buffer the
//! connection reuses; no allocation once that buffer has grown.

use super::head::{HeaderEntry, Known, RequestHead, Version};
use super::response::ResponseHead;
use crate::oidc::claim_headers::ClaimHeader;

/// What the upstream head needs besides the original request.
pub struct Forwarding<'a> {
    /// The upstream path, without query (from the router).
    pub path: &'a [u8],
    /// The `Host` value sent upstream (`preserve_host` decides which).
    pub host: &'a [u8],
    /// The downstream peer's address, as text.
    pub client_ip: &'a [u8],
    /// `http` or `https`: how the request reached this proxy.
    pub proto: &'a [u8],
    /// The local port the request arrived on, as text.
    pub port: &'a [u8],
    /// The host the downstream asked for, without a port.
    pub forwarded_host: &'a [u8],
    /// The prefix `strip_path` removed; empty for none.
    pub forwarded_prefix: &'a [u8],
    /// A header the proxy sets, replacing any the downstream sent under that name (the
    /// openid-connect plugin's token): (lower-case name, value).
    pub set_header: Option<TokenHeader<'a>>,
    /// The openid-connect plugin's claim headers (`upstream_headers_claims`).
    pub claim_headers: ClaimLines<'a>,
    /// Who the openid-connect plugin says the consumer is, as finished `X-Consumer-*`
    /// lines (empty for none): `Some` whenever an instance ran on the request, so the
    /// downstream's own `X-Consumer-*` and `X-Anonymous-Consumer` headers are dropped
    /// even when no consumer was mapped.
    pub consumer: Option<&'a [u8]>,
    /// `hide_credentials`: the query to send instead (with its `?`, or empty), the body
    /// length to declare instead, and whether to drop `Authorization` and `Grant-Type`.
    pub hide: Option<Hidden<'a>>,
}

/// Headers the proxy sets from the token's claims: the downstream's own headers under
/// any of `names` are dropped (whether or not the token had the claim), and `lines`,
/// finished `Name: value` lines each ending in CRLF, are written instead.
#[derive(Clone, Copy, Default)]
pub struct ClaimLines<'a> {
    pub names: &'a [ClaimHeader],
    pub lines: &'a [u8],
}

impl ClaimLines<'_> {
    fn drops(&self, name: &[u8]) -> bool {
        self.names.iter().any(|h| name.eq_ignore_ascii_case(h.lower.as_bytes()))
    }
}

/// The header that carries the plugin's token upstream. The downstream's own header
/// under `name` never passes, token or not: the upstream takes it as a verified token.
#[derive(Clone, Copy)]
pub struct TokenHeader<'a> {
    /// Lower-case.
    pub name: &'a [u8],
    /// The scheme prefix (`Bearer `, `Basic `, or empty) and the bare token; `None` when
    /// the request goes on without one (the `anonymous` consumer).
    pub value: Option<(&'a [u8], &'a [u8])>,
}

/// Appends `Name: <prefix><token>\r\n`, the name as configured (`Authorization`
/// capitalised).
/// Inlined: it runs on every request the plugin lets through.
#[inline]
pub fn push_token_header(out: &mut Vec<u8>, name: &[u8], prefix: &[u8], token: &[u8]) {
    out.reserve(name.len() + prefix.len() + token.len() + 4);
    out.extend_from_slice(if name == b"authorization" { b"Authorization" } else { name });
    out.extend_from_slice(b": ");
    out.extend_from_slice(prefix);
    out.extend_from_slice(token);
    out.extend_from_slice(b"\r\n");
}

/// What `hide_credentials` changes in the upstream head.
#[derive(Clone, Copy)]
pub struct Hidden<'a> {
    pub query: &'a [u8],
    pub content_length: Option<usize>,
    pub drop_credential_headers: bool,
    /// With `drop_credential_headers`: the other headers the instance reads a caller's
    /// bare token from (lower-case: `access-token`, `x-access-token`, or
    /// `bearer_token_header_name`), dropped too.
    pub token_headers: &'a [String],
    /// The `Cookie` value to send instead of every `Cookie` line (empty: send none);
    /// `None` leaves the cookies as sent.
    pub cookie: Option<&'a [u8]>,
}

/// Writes the upstream request head (request line through the blank line) to `out`.
/// Inlined into its one caller on the request path, where most of `fwd` is known.
#[inline]
pub fn write_request_head(buf: &[u8], head: &RequestHead, fwd: &Forwarding<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(&buf[head.method.clone()]);
    out.push(b' ');
    out.extend_from_slice(fwd.path);
    match &fwd.hide {
        Some(h) => out.extend_from_slice(h.query),
        None => out.extend_from_slice(&buf[head.query.clone()]),
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(fwd.host);
    out.extend_from_slice(b"\r\n");
    for h in &head.headers {
        if let Some(t) = &fwd.set_header {
            if buf[h.name.clone()].eq_ignore_ascii_case(t.name) {
                continue;
            }
        }
        if fwd.claim_headers.drops(&buf[h.name.clone()]) {
            continue;
        }
        if fwd.consumer.is_some() && h.known == Known::ConsumerIdentity {
            continue;
        }
        if let Some(hide) = &fwd.hide {
            let name = &buf[h.name.clone()];
            if hide.content_length.is_some() && h.known == Known::ContentLength {
                continue;
            }
            if hide.cookie.is_some() && name.eq_ignore_ascii_case(b"cookie") {
                continue;
            }
            if hide.drop_credential_headers
                && (h.known == Known::Authorization
                    || name.eq_ignore_ascii_case(b"grant-type")
                    || name.eq_ignore_ascii_case(b"x-grant-type")
                    || hide.token_headers.iter().any(|t| name.eq_ignore_ascii_case(t.as_bytes())))
            {
                continue;
            }
        }
        copy_line(buf, h, out);
    }
    if let Some(cookie) = fwd.hide.as_ref().and_then(|h| h.cookie).filter(|c| !c.is_empty()) {
        out.extend_from_slice(b"Cookie: ");
        out.extend_from_slice(cookie);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = fwd.hide.as_ref().and_then(|h| h.content_length) {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(TokenHeader { name, value: Some((prefix, token)) }) = fwd.set_header {
        push_token_header(out, name, prefix, token);
    }
    out.extend_from_slice(fwd.claim_headers.lines);
    out.extend_from_slice(fwd.consumer.unwrap_or_default());
    write_forwarded(buf, head, fwd, out);
    out.extend_from_slice(b"\r\n");
}

/// Replaces the `Host` value of a head [`write_request_head`] wrote at the start of
/// `out` (the line right after the request line), `old_len` bytes long, with `host`:
/// a retry on another peer of an upstream sends that peer's host. The rest of `out`
/// (the head's other lines, body bytes) moves along unchanged.
pub fn replace_host(out: &mut Vec<u8>, old_len: usize, host: &[u8]) {
    let Some(eol) = memchr::memmem::find(out, b"\r\n") else { return };
    let start = eol + b"\r\nHost: ".len();
    if out.len() >= start + old_len {
        out.splice(start..start + old_len, host.iter().copied());
    }
}

fn copy_line(buf: &[u8], h: &HeaderEntry, out: &mut Vec<u8>) {
    if h.skip || h.known.is_dropped_upstream() {
        return;
    }
    out.extend_from_slice(&buf[h.name.start..h.value.end]);
    out.extend_from_slice(b"\r\n");
}

fn write_forwarded(buf: &[u8], head: &RequestHead, fwd: &Forwarding<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"X-Forwarded-For: ");
    for h in head.headers.iter().filter(|h| h.known == Known::XForwardedFor) {
        let v = &buf[h.value.clone()];
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(fwd.client_ip);
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: ");
    out.extend_from_slice(fwd.proto);
    out.extend_from_slice(b"\r\nX-Forwarded-Host: ");
    out.extend_from_slice(fwd.forwarded_host);
    out.extend_from_slice(b"\r\nX-Forwarded-Port: ");
    out.extend_from_slice(fwd.port);
    out.extend_from_slice(b"\r\nX-Forwarded-Path: ");
    out.extend_from_slice(head.path(buf));
    if !fwd.forwarded_prefix.is_empty() {
        out.extend_from_slice(b"\r\nX-Forwarded-Prefix: ");
        out.extend_from_slice(fwd.forwarded_prefix);
    }
    out.extend_from_slice(b"\r\nX-Real-IP: ");
    out.extend_from_slice(fwd.client_ip);
    out.extend_from_slice(b"\r\n");
}

/// How the response is framed towards the downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFramingOut {
    /// The downstream connection closes after this response.
    pub close: bool,
}

/// Writes the downstream response head to `out`, with `extra` (whole header lines,
/// CRLF-terminated) after the upstream's own. An HTTP/1.0 downstream gets no
/// `Transfer-Encoding` (RFC 9112 §6.1): a chunked body is decoded for it, and a response
/// without a body carries the field as information only.
pub fn write_response_head(
    buf: &[u8],
    head: &ResponseHead,
    downstream: Version,
    framing: ResponseFramingOut,
    extra: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(head.status, out);
    out.push(b' ');
    out.extend_from_slice(&buf[head.reason.clone()]);
    out.extend_from_slice(b"\r\n");
    for h in &head.headers {
        let drop = h.skip
            || matches!(
                h.known,
                Known::Connection | Known::KeepAlive | Known::ProxyConnection | Known::Te | Known::Upgrade
            )
            || (downstream == Version::Http10 && h.known == Known::TransferEncoding);
        if !drop {
            out.extend_from_slice(&buf[h.name.start..h.value.end]);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(extra);
    if framing.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if downstream == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a three-digit status code.
pub fn push_status(status: u16, out: &mut Vec<u8>) {
    let s = status.clamp(100, 999);
    out.extend_from_slice(&[b'0' + (s / 100) as u8, b'0' + (s / 10 % 10) as u8, b'0' + (s % 10) as u8]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse_request, HeadLimits, RequestHead};
    use crate::http::response::{parse_response, ResponseHead};

    fn fwd<'a>() -> Forwarding<'a> {
        Forwarding {
            path: b"/base/x",
            host: b"up.internal:8080",
            client_ip: b"198.51.100.7",
            proto: b"http",
            port: b"8000",
            forwarded_host: b"api.example.com",
            forwarded_prefix: b"/api",
            set_header: None,
            consumer: None,
            claim_headers: ClaimLines::default(),
            hide: None,
        }
    }

    #[test]
    fn request_head_keeps_end_to_end_lines_in_order_and_rewrites_the_rest() {
        let raw = b"POST /api/x?q=1 HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-For: 203.0.113.1\r\nAccept: */*\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 203.0.113.2\r\nX-Real-IP: 6.6.6.6\r\nContent-Length: 3\r\nContent-Length: 3\r\nTE: trailers\r\n\r\n";
        let mut head = RequestHead::default();
        parse_request(raw, &HeadLimits::default(), &mut head).unwrap().unwrap();
        let mut out = Vec::new();
        write_request_head(raw, &head, &fwd(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "POST /base/x?q=1 HTTP/1.1\r\nHost: up.internal:8080\r\nAccept: */*\r\nContent-Length: 3\r\n\
             X-Forwarded-For: 203.0.113.1, 203.0.113.2, 198.51.100.7\r\nX-Forwarded-Proto: http\r\n\
             X-Forwarded-Host: api.example.com\r\nX-Forwarded-Port: 8000\r\nX-Forwarded-Path: /api/x\r\n\
             X-Forwarded-Prefix: /api\r\nX-Real-IP: 198.51.100.7\r\n\r\n"
        );
    }

    #[test]
    fn consumer_headers_are_the_plugins_alone_and_anonymous_drops_the_callers_credentials() {
        let raw = b"GET /api/x HTTP/1.1\r\nHost: a\r\nX-Consumer-Username: admin\r\nx-consumer-id: 1\r\n\
                    X-Consumer-Custom-ID: c\r\nX-Anonymous-Consumer: false\r\nAuthorization: Basic aWQ6c2VjcmV0\r\n\
                    X-Token: forged\r\nAccept: */*\r\n\r\n";
        let mut head = RequestHead::default();
        parse_request(raw, &HeadLimits::default(), &mut head).unwrap().unwrap();
        let lines = b"X-Consumer-ID: 42\r\nX-Consumer-Username: bob\r\n";
        let upstream_part = |fwd: &Forwarding<'_>| {
            let mut out = Vec::new();
            write_request_head(raw, &head, fwd, &mut out);
            let text = String::from_utf8(out).unwrap();
            let start = text.find("\r\n").unwrap() + 2;
            text[start..text.find("X-Forwarded-For").unwrap()].to_string()
        };
        // Mapped: the caller's four identity headers go, the plugin's come.
        let mapped = Forwarding { consumer: Some(lines), ..fwd() };
        assert_eq!(
            upstream_part(&mapped),
            "Host: up.internal:8080\r\nAuthorization: Basic aWQ6c2VjcmV0\r\nX-Token: forged\r\nAccept: */*\r\n\
             X-Consumer-ID: 42\r\nX-Consumer-Username: bob\r\n"
        );
        // No consumer mapped: the caller's still go.
        let none = Forwarding { consumer: Some(b""), ..fwd() };
        assert!(!upstream_part(&none).contains("Consumer"), "{}", upstream_part(&none));
        // Anonymous: the credentials (as `hide_credentials` drops them) and the token
        // header's name go too.
        let anon = Forwarding {
            consumer: Some(lines),
            set_header: Some(TokenHeader { name: b"x-token", value: None }),
            hide: Some(Hidden {
                query: b"",
                content_length: None,
                drop_credential_headers: true,
                token_headers: &[],
                cookie: None,
            }),
            ..fwd()
        };
        assert_eq!(
            upstream_part(&anon),
            "Host: up.internal:8080\r\nAccept: */*\r\nX-Consumer-ID: 42\r\nX-Consumer-Username: bob\r\n"
        );
        // No instance ran: nothing is the plugin's to drop.
        assert!(upstream_part(&fwd()).contains("X-Consumer-Username: admin\r\n"));
    }

    fn response(raw: &[u8]) -> ResponseHead {
        let mut head = ResponseHead::default();
        parse_response(raw, 65536, false, &mut head).unwrap().unwrap();
        head
    }

    #[test]
    fn response_head_drops_hop_by_hop_lines_and_states_the_connection() {
        let raw = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: y\r\n\r\n";
        let head = response(raw);
        let mut out = Vec::new();
        write_response_head(raw, &head, Version::Http11, ResponseFramingOut { close: false }, b"", &mut out);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: y\r\n\r\n");
        out.clear();
        write_response_head(raw, &head, Version::Http10, ResponseFramingOut { close: false }, b"", &mut out);
        assert!(out.ends_with(b"X-Kept: y\r\nConnection: keep-alive\r\n\r\n"));
        let raw = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = response(raw);
        out.clear();
        write_response_head(raw, &head, Version::Http10, ResponseFramingOut { close: true }, b"", &mut out);
        assert_eq!(out, b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n");
    }

    // ---- property tests: mutated heads, rewritten ----

    use crate::http::head::{BodyFraming, HeaderEntry as Entry};
    use crate::http::response::ResponseFraming;
    use crate::oidc::claim_headers::{ClaimHeader, ClaimKind};
    use crate::testing::{self, Rng, REQUEST_FIELDS, RESPONSE_FIELDS};

    fn shown(raw: &[u8]) -> String {
        String::from_utf8_lossy(&raw[..raw.len().min(400)]).into_owned()
    }

    /// The field lines of a head this module wrote, exactly as written: it must be one
    /// complete head by httparse's reading, with every line ended by CRLF and no CR or LF
    /// anywhere else.
    fn field_lines(out: &[u8]) -> Vec<&[u8]> {
        for (i, &c) in out.iter().enumerate() {
            assert!(c != b'\n' || (i > 0 && out[i - 1] == b'\r'), "bare LF at {i} in {:?}", shown(out));
            assert!(c != b'\r' || out.get(i + 1) == Some(&b'\n'), "bare CR at {i} in {:?}", shown(out));
        }
        assert!(out.ends_with(b"\r\n\r\n"));
        let mut lines: Vec<&[u8]> =
            out[..out.len() - 2].split(|&c| c == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
        assert_eq!(lines.pop(), Some(&b""[..]));
        lines.remove(0);
        lines
    }

    /// The values of the fields named `name` among `lines` (`Name: value`, as written).
    fn values<'a>(lines: &[&'a [u8]], name: &str) -> Vec<&'a [u8]> {
        lines
            .iter()
            .filter_map(|l| {
                let colon = l.iter().position(|&c| c == b':')?;
                l[..colon].eq_ignore_ascii_case(name.as_bytes()).then(|| head::trim_ows(&l[colon + 1..]))
            })
            .collect()
    }

    /// The codings of `Transfer-Encoding` fields, in order, lower-cased.
    fn codings(values: &[&[u8]]) -> Vec<Vec<u8>> {
        values
            .iter()
            .flat_map(|v| v.split(|&c| c == b','))
            .map(|c| head::trim_ows(c).to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect()
    }

    /// The lowered names a `Connection` field lists (other than `close`, `keep-alive`).
    fn listed(buf: &[u8], headers: &[Entry]) -> Vec<Vec<u8>> {
        let values: Vec<&[u8]> =
            headers.iter().filter(|h| h.known == Known::Connection).map(|h| &buf[h.value.clone()]).collect();
        codings(&values).into_iter().filter(|t| t != b"close" && t != b"keep-alive").collect()
    }

    use crate::http::head;

    /// What `write_request_head` must write for the accepted head in `raw` and the
    /// forwarding `f`: the request line and Host it is given, then each end-to-end line
    /// of the request as sent, then the lines the proxy adds, and nothing else.
    fn assert_rewritten_request(raw: &[u8], head: &RequestHead, f: &Forwarding<'_>, out: &[u8]) {
        let mut fields = [httparse::EMPTY_HEADER; 512];
        let mut req = httparse::Request::new(&mut fields);
        assert_eq!(req.parse(out), Ok(httparse::Status::Complete(out.len())), "{:?}", shown(out));
        assert_eq!(req.method.unwrap().as_bytes(), head.method(raw));
        let query = f.hide.as_ref().map_or(&raw[head.query.clone()], |h| h.query);
        assert_eq!(req.path.unwrap().as_bytes(), [f.path, query].concat());
        assert_eq!(req.version, Some(1));
        let lines = field_lines(out);

        // One Host, the one given; no hop-by-hop field; nothing the downstream listed in
        // Connection; the forwarding fields once each.
        assert_eq!(values(&lines, "host"), vec![f.host], "{:?}", shown(out));
        for hop in ["connection", "keep-alive", "proxy-connection", "te", "upgrade", "expect"] {
            assert!(values(&lines, hop).is_empty(), "{hop} forwarded in {:?}", shown(out));
        }
        for name in listed(raw, &head.headers) {
            // (A listed name that is not UTF-8 is no field name either.)
            if let (Known::Other, Ok(name)) = (Known::classify_name(&name), String::from_utf8(name)) {
                assert!(values(&lines, &name).is_empty(), "{name} forwarded though listed in {:?}", shown(out));
            }
        }
        for once in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip"] {
            assert_eq!(values(&lines, once).len(), 1, "{once} in {:?}", shown(out));
        }

        // The framing the body is relayed with, stated once.
        let (lengths, te) = (values(&lines, "content-length"), values(&lines, "transfer-encoding"));
        match head.framing {
            BodyFraming::Chunked => {
                assert!(lengths.is_empty(), "{:?}", shown(out));
                assert_eq!(codings(&te).last().map(Vec::as_slice), Some(&b"chunked"[..]), "{:?}", shown(out));
            }
            BodyFraming::Length(n) => {
                assert!(te.is_empty(), "{:?}", shown(out));
                let sent = head.headers.iter().any(|h| h.known == Known::ContentLength);
                let want = match f.hide.as_ref().and_then(|h| h.content_length) {
                    Some(m) => Some(m as u64),
                    None => sent.then_some(n),
                };
                let got: Vec<u64> =
                    lengths.iter().map(|v| std::str::from_utf8(v).unwrap().parse().expect("digits")).collect();
                assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{:?}", shown(out));
            }
        }

        // Line by line: every other line is one the request sent, unchanged and in order.
        let lower = |n: &[u8]| n.to_ascii_lowercase();
        let connection_listed = listed(raw, &head.headers);
        let mut expected: Vec<Vec<u8>> = vec![[&b"Host: "[..], f.host].concat()];
        let mut lengths_seen = 0;
        for h in &head.headers {
            let name = lower(&raw[h.name.clone()]);
            let n = name.as_slice();
            lengths_seen += usize::from(n == b"content-length");
            let hop_by_hop = matches!(
                n,
                b"host"
                    | b"connection"
                    | b"keep-alive"
                    | b"proxy-connection"
                    | b"te"
                    | b"upgrade"
                    | b"expect"
                    | b"x-forwarded-for"
                    | b"x-forwarded-proto"
                    | b"x-forwarded-host"
                    | b"x-forwarded-port"
                    | b"x-forwarded-path"
                    | b"x-forwarded-prefix"
                    | b"x-real-ip"
            ) || (connection_listed.contains(&name) && Known::classify_name(n) == Known::Other);
            let consumer = matches!(
                n,
                b"x-consumer-id" | b"x-consumer-custom-id" | b"x-consumer-username" | b"x-anonymous-consumer"
            );
            let replaced = f.set_header.is_some_and(|t| n == t.name)
                || f.claim_headers.names.iter().any(|c| c.lower.as_bytes() == n)
                || (f.consumer.is_some() && consumer)
                || f.hide.as_ref().is_some_and(|hide| {
                    (n == b"content-length" && hide.content_length.is_some())
                        || (n == b"cookie" && hide.cookie.is_some())
                        || (hide.drop_credential_headers
                            && (matches!(n, b"authorization" | b"grant-type" | b"x-grant-type")
                                || hide.token_headers.iter().any(|t| t.as_bytes() == n)))
                });
            let repeated_length = n == b"content-length" && lengths_seen > 1;
            if !hop_by_hop && !replaced && !repeated_length {
                expected.push(raw[h.name.start..h.value.end].to_vec());
            }
        }
        if let Some(cookie) = f.hide.as_ref().and_then(|h| h.cookie).filter(|c| !c.is_empty()) {
            expected.push([&b"Cookie: "[..], cookie].concat());
        }
        if let Some(n) = f.hide.as_ref().and_then(|h| h.content_length) {
            expected.push(format!("Content-Length: {n}").into_bytes());
        }
        if let Some(TokenHeader { value: Some((prefix, token)), .. }) = f.set_header {
            expected.push([&b"Authorization: "[..], prefix, token].concat());
        }
        let generated = [f.claim_headers.lines, f.consumer.unwrap_or_default()].concat();
        expected.extend(generated.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| l[..l.len() - 1].to_vec()));
        let sent_for: Vec<&[u8]> = head
            .headers
            .iter()
            .filter(|h| h.known == Known::XForwardedFor)
            .map(|h| &raw[h.value.clone()])
            .filter(|v| !v.is_empty())
            .collect();
        let mut xff = sent_for.join(&b", "[..]);
        if !xff.is_empty() {
            xff.extend_from_slice(b", ");
        }
        xff.extend_from_slice(f.client_ip);
        expected.push([&b"X-Forwarded-For: "[..], &xff].concat());
        expected.push([&b"X-Forwarded-Proto: "[..], f.proto].concat());
        expected.push([&b"X-Forwarded-Host: "[..], f.forwarded_host].concat());
        expected.push([&b"X-Forwarded-Port: "[..], f.port].concat());
        expected.push([&b"X-Forwarded-Path: "[..], head.path(raw)].concat());
        if !f.forwarded_prefix.is_empty() {
            expected.push([&b"X-Forwarded-Prefix: "[..], f.forwarded_prefix].concat());
        }
        expected.push([&b"X-Real-IP: "[..], f.client_ip].concat());
        let got: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
        assert!(got == expected, "for {:?}\nwrote {:?}", shown(raw), shown(out));
    }

    #[test]
    fn rewritten_mutated_requests_are_one_head_with_one_host_their_framing_and_no_line_not_meant() {
        let mut rng = Rng(0x5eed_3e37_1e00_0003);
        let claims = [ClaimHeader {
            claim: vec!["sub".into()],
            name: "X-Sub".into(),
            lower: "x-sub".into(),
            kind: ClaimKind::Value,
        }];
        let mut head = RequestHead::default();
        let mut out = Vec::new();
        let mut rewritten = 0;
        let kong_token_headers = ["access-token".to_string(), "x-access-token".to_string()];
        while rewritten < 3000 {
            let lines = testing::request_lines(&mut rng);
            let raw = testing::mutated(&mut rng, lines, REQUEST_FIELDS);
            if !matches!(parse_request(&raw, &HeadLimits::default(), &mut head), Ok(Some(_))) {
                continue;
            }
            rewritten += 1;
            // As `exchange` fills it in: a rewritten body's length only for a body read
            // whole, which only a Content-Length body is.
            let body_len = match head.framing {
                BodyFraming::Length(n) if n > 0 && rng.chance(2) => Some(rng.below(1000)),
                _ => None,
            };
            let token_headers = rng.pick(&[&[][..], &kong_token_headers[..]]);
            let hide = match rng.below(3) {
                0 => None,
                1 => Some(Hidden {
                    query: rng.pick(&[&b""[..], b"?a=1&b"]),
                    content_length: body_len,
                    drop_credential_headers: true,
                    token_headers,
                    cookie: rng.pick(&[None, Some(&b""[..]), Some(b"a=1; b=2")]),
                }),
                _ => Some(Hidden {
                    query: &raw[head.query.clone()],
                    content_length: None,
                    drop_credential_headers: true,
                    token_headers,
                    cookie: None,
                }),
            };
            let set_header = rng.pick(&[
                None,
                Some(TokenHeader { name: b"authorization", value: Some((b"Bearer ", b"t0k.e.n")) }),
                Some(TokenHeader { name: b"authorization", value: None }),
            ]);
            let f = Forwarding {
                path: rng.pick(&[&b"/"[..], b"/base/x", b"/%0D%0A"]),
                host: if rng.chance(3) { head.host(&raw) } else { b"up.internal:8080" },
                forwarded_host: head.host(&raw),
                forwarded_prefix: rng.pick(&[&b""[..], b"/api"]),
                set_header,
                claim_headers: if rng.chance(2) {
                    ClaimLines { names: &claims, lines: b"X-Sub: alice\r\n" }
                } else {
                    ClaimLines::default()
                },
                consumer: rng.pick(&[None, Some(&b""[..]), Some(b"X-Consumer-ID: 42\r\nX-Consumer-Username: bob\r\n")]),
                hide,
                ..fwd()
            };
            out.clear();
            write_request_head(&raw, &head, &f, &mut out);
            assert_rewritten_request(&raw, &head, &f, &out);
        }
    }

    #[test]
    fn rewritten_mutated_responses_are_one_head_without_hop_by_hop_fields_and_with_the_relayed_framing() {
        let mut rng = Rng(0x5eed_3e37_1e00_0004);
        let mut head = ResponseHead::default();
        let mut out = Vec::new();
        let mut rewritten = 0;
        while rewritten < 3000 {
            let lines = testing::response_lines(&mut rng);
            let raw = testing::mutated(&mut rng, lines, RESPONSE_FIELDS);
            let head_request = rng.chance(8);
            if !matches!(parse_response(&raw, 64 * 1024, head_request, &mut head), Ok(Some(_))) {
                continue;
            }
            rewritten += 1;
            // As `exchange` decides it.
            let downstream = if rng.chance(4) { Version::Http10 } else { Version::Http11 };
            let dechunk = head.framing == ResponseFraming::Chunked && downstream == Version::Http10;
            let close = rng.chance(3) || head.framing == ResponseFraming::UntilClose || dechunk;
            let extra: &[u8] = rng.pick(&[&b""[..], b"Set-Cookie: s=1; Path=/\r\n"]);
            out.clear();
            write_response_head(&raw, &head, downstream, ResponseFramingOut { close }, extra, &mut out);

            let mut fields = [httparse::EMPTY_HEADER; 512];
            let mut resp = httparse::Response::new(&mut fields);
            assert_eq!(resp.parse(&out), Ok(httparse::Status::Complete(out.len())), "{:?}", shown(&out));
            assert_eq!(resp.code, Some(head.status));
            assert_eq!(resp.version, Some(1));
            let mut lines = field_lines(&out);
            for hop in ["keep-alive", "proxy-connection", "te", "upgrade"] {
                assert!(values(&lines, hop).is_empty(), "{hop} relayed in {:?}", shown(&out));
            }
            if downstream == Version::Http10 {
                assert!(values(&lines, "transfer-encoding").is_empty(), "to HTTP/1.0: {:?}", shown(&out));
            }
            let connection = values(&lines, "connection");
            let want: &[&[u8]] = match (close, downstream) {
                (true, _) => &[b"close"],
                (false, Version::Http10) => &[b"keep-alive"],
                (false, Version::Http11) => &[],
            };
            assert_eq!(connection, want, "{:?}", shown(&out));
            for name in listed(&raw, &head.headers) {
                if let (Known::Other, Ok(name)) = (Known::classify_name(&name), String::from_utf8(name)) {
                    assert!(values(&lines, &name).is_empty(), "{name} relayed though listed in {:?}", shown(&out));
                }
            }
            // The downstream reads the body the way it is relayed (RFC 9112 §6.3).
            let (lengths, te) = (values(&lines, "content-length"), values(&lines, "transfer-encoding"));
            let chunked_last = codings(&te).last().is_some_and(|c| c == b"chunked");
            match head.framing {
                ResponseFraming::Empty => {}
                ResponseFraming::Length(n) => {
                    let got: Vec<u64> =
                        lengths.iter().map(|v| std::str::from_utf8(v).unwrap().parse().expect("digits")).collect();
                    assert_eq!(got, vec![n], "{:?}", shown(&out));
                    assert!(te.is_empty());
                }
                ResponseFraming::Chunked if dechunk => assert!(lengths.is_empty() && te.is_empty() && close),
                ResponseFraming::Chunked => assert!(lengths.is_empty() && chunked_last, "{:?}", shown(&out)),
                ResponseFraming::UntilClose => assert!(lengths.is_empty() && te.is_empty() && close),
            }
            // Every other line is the upstream's, unchanged and in order.
            let mut expected: Vec<&[u8]> = head
                .headers
                .iter()
                .filter(|h| {
                    let hop = matches!(
                        h.known,
                        Known::Connection | Known::KeepAlive | Known::ProxyConnection | Known::Te | Known::Upgrade
                    );
                    let to_http10 = downstream == Version::Http10 && h.known == Known::TransferEncoding;
                    !(h.skip || hop || to_http10)
                })
                .map(|h| &raw[h.name.start..h.value.end])
                .collect();
            expected.extend(extra.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| &l[..l.len() - 1]));
            if !want.is_empty() {
                assert_eq!(lines.pop(), Some(&[&b"Connection: "[..], want[0]].concat()[..]));
            }
            assert!(lines == expected, "for {:?}\nwrote {:?}", shown(&raw), shown(&out));
        }
    }
}
