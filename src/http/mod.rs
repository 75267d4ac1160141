//! HTTP/1.1 on the wire: request heads parsed in place, body framing, upstream heads
//! written as slices of what the downstream sent.

pub mod chunked;
pub mod head;
pub mod response;
pub mod rewrite;

/// The lower-case hex digits, by value.
pub(crate) const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex (digests, random ids; never on the request path).
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 15)]));
    }
    out
}

/// The value of one hex digit (chunk sizes, percent-escapes).
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
