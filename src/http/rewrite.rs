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
}

/// Writes the upstream request head (request line through the blank line) to `out`.
pub fn write_request_head(buf: &[u8], head: &RequestHead, fwd: &Forwarding<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(&buf[head.method.clone()]);
    out.push(b' ');
    out.extend_from_slice(fwd.path);
    out.extend_from_slice(&buf[head.query.clone()]);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(fwd.host);
    out.extend_from_slice(b"\r\n");
    for h in &head.headers {
        copy_line(buf, h, out);
    }
    write_forwarded(buf, head, fwd, out);
    out.extend_from_slice(b"\r\n");
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

/// Writes the downstream response head to `out`.
pub fn write_response_head(
    buf: &[u8],
    head: &ResponseHead,
    downstream: Version,
    framing: ResponseFramingOut,
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
