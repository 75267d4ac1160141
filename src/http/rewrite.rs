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
                    || name.eq_ignore_ascii_case(b"x-grant-type"))
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
    /// The upstream's chunked body is decoded for an HTTP/1.0 downstream, so
    /// `Transfer-Encoding` is not passed on.
    pub dechunk: bool,
}

/// Writes the downstream response head to `out`, with `extra` (whole header lines,
/// CRLF-terminated) after the upstream's own.
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
            || (framing.dechunk && h.known == Known::TransferEncoding);
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
            hide: Some(Hidden { query: b"", content_length: None, drop_credential_headers: true, cookie: None }),
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
        write_response_head(
            raw,
            &head,
            Version::Http11,
            ResponseFramingOut { close: false, dechunk: false },
            b"",
            &mut out,
        );
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: y\r\n\r\n");
        out.clear();
        write_response_head(
            raw,
            &head,
            Version::Http10,
            ResponseFramingOut { close: false, dechunk: false },
            b"",
            &mut out,
        );
        assert!(out.ends_with(b"X-Kept: y\r\nConnection: keep-alive\r\n\r\n"));
        let raw = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = response(raw);
        out.clear();
        write_response_head(
            raw,
            &head,
            Version::Http10,
            ResponseFramingOut { close: true, dechunk: true },
            b"",
            &mut out,
        );
        assert_eq!(out, b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n");
    }
}
