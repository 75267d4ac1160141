//! Request-path normalisation for matching, and escaping for the upstream request line.
//!
//! Kong 3.x matches routes against a *normalised* path (its `kong.tools.uri.normalize`
//! with slash merging, applied by the router before matching) and builds the upstream
//! path from that same normalised form. ringgate does the same, so what was matched is
//! exactly what is forwarded: `/public/../admin` is matched (and forwarded) as `/admin`,
//! never as something under `/public`.
//!
//! Normalisation, in order:
//! 1. percent-decoding of every `%XX` triplet whose byte is *not* a reserved character
//!    (RFC 3986 §2.2 gen-delims and sub-delims, plus `%`); reserved triplets are kept
//!    encoded, with upper-case hex (RFC 3986 §6.2.2.1). So `%2e` becomes `.` but `%2F`
//!    stays `%2F` and never turns into a segment separator; `%25` stays `%25`, so
//!    nothing is decoded twice.
//! 2. removal of dot segments (RFC 3986 §5.2.4), after decoding, so `%2e%2e` counts;
//! 3. merging of repeated slashes.
//!
//! Cost: [`is_normal`] is one scan with no writes; almost every real path is already
//! normal and is used in place. Only the rest is rewritten, into a caller-provided
//! buffer, never longer than the input (decoding and dot removal only shrink it).

/// Size of the stack buffer `find` normalises into. Paths that need rewriting and are
/// longer than this match no route (Kong's own front, nginx, refuses request lines
/// over 8 KiB by default, so such a request never reaches its router either).
pub(crate) const NORMALISE_BUF: usize = 8192;

/// Characters that keep their percent-encoding (RFC 3986 §2.2, plus `%` itself).
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'*'
            | b'\''
            | b'('
            | b')'
            | b';'
            | b':'
            | b'@'
            | b'&'
            | b'='
            | b'+'
            | b'$'
            | b','
            | b'/'
            | b'?'
            | b'%'
            | b'#'
            | b'['
            | b']'
    )
}

/// True when `path` starts with `/` and normalising would not change it: no `%`, no
/// empty segment other than a trailing one, no `.` or `..` segment.
pub(crate) fn is_normal(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/") else {
        return false;
    };
    if rest.contains(&b'%') {
        return false;
    }
    let mut segments = rest.split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || seg == b"." || seg == b".." {
            return false;
        }
    }
    true
}

/// Runs `f` on `raw` as routing sees it: as it is when already normal, else normalised
/// into a buffer (on the stack up to [`NORMALISE_BUF`] bytes, on the heap past that).
pub(crate) fn with_normalised<R>(raw: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if is_normal(raw) {
        return f(raw);
    }
    // Both buffers are as long as `raw`, which the output never exceeds.
    if raw.len() <= NORMALISE_BUF {
        let mut buf = [0u8; NORMALISE_BUF];
        let n = normalise_into(raw, &mut buf).unwrap_or(0);
        f(&buf[..n])
    } else {
        let mut buf = vec![0u8; raw.len()];
        let n = normalise_into(raw, &mut buf).unwrap_or(0);
        f(&buf[..n])
    }
}

/// Writes the normalised form of `raw` into `out` and returns its length, or `None`
/// when `out` is shorter than `raw` (the output never exceeds the input).
pub(crate) fn normalise_into(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    if out.len() < raw.len() {
        return None;
    }
    let n = percent_decode(raw, out);
    Some(remove_dot_segments(&mut out[..n]))
}

/// Step 1: decode unreserved/other triplets, upper-case the hex of reserved ones.
fn percent_decode(raw: &[u8], out: &mut [u8]) -> usize {
    let mut r = 0;
    let mut w = 0;
    while r < raw.len() {
        let b = raw[r];
        if b == b'%' && r + 2 < raw.len() {
            if let (Some(hi), Some(lo)) = (crate::http::hex_value(raw[r + 1]), crate::http::hex_value(raw[r + 2])) {
                let v = hi << 4 | lo;
                if is_reserved(v) {
                    out[w] = b'%';
                    out[w + 1] = raw[r + 1].to_ascii_uppercase();
                    out[w + 2] = raw[r + 2].to_ascii_uppercase();
                    w += 3;
                } else {
                    out[w] = v;
                    w += 1;
                }
                r += 3;
                continue;
            }
        }
        out[w] = b;
        w += 1;
        r += 1;
    }
    w
}

/// Steps 2 and 3, in place: RFC 3986 §5.2.4's loop, plus `//` → `/`. The write cursor
/// never passes the read cursor, so one buffer suffices.
fn remove_dot_segments(buf: &mut [u8]) -> usize {
    let n = buf.len();
    let mut r = 0;
    let mut w = 0;
    // Drops the last output segment (from its leading '/', if any).
    fn pop(buf: &[u8], w: usize) -> usize {
        buf[..w].iter().rposition(|&b| b == b'/').unwrap_or(0)
    }
    while r < n {
        let rem = &buf[r..n];
        if rem == b"/." {
            // The input becomes "/": reuse the last input byte as that slash.
            r = n - 1;
            buf[r] = b'/';
        } else if rem == b"/.." {
            r = n - 1;
            buf[r] = b'/';
            w = pop(buf, w);
        } else if rem == b"." || rem == b".." {
            r = n;
        } else if rem.starts_with(b"../") {
            r += 3;
        } else if rem.starts_with(b"./") || rem.starts_with(b"/./") {
            r += 2;
        } else if rem.starts_with(b"/../") {
            r += 3;
            w = pop(buf, w);
        } else if rem.starts_with(b"//") {
            r += 1;
        } else {
            let end = rem[1..].iter().position(|&b| b == b'/').map_or(n, |i| r + 1 + i);
            buf.copy_within(r..end, w);
            w += end - r;
            r = end;
        }
    }
    w
}

/// Whether `b` may appear as-is in an upstream request-target path. Everything else
/// (bytes that normalisation decoded, such as a space, or that a lenient parser let
/// through) is sent percent-encoded, as Kong's `uri.escape` does.
fn is_path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!#$&'()*+,/:;=?@[]%".contains(&b)
}

/// Appends `bytes` to `out`, percent-encoding what may not appear in a path as-is.
pub(crate) fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !is_path_safe(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        let mut buf = vec![0; raw.len()];
        let n = normalise_into(raw.as_bytes(), &mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn normal_paths_are_recognised_without_rewriting() {
        for p in ["/", "/a", "/a/", "/a/b.c", "/a/.b", "/a/..b/", "/~x"] {
            assert!(is_normal(p.as_bytes()), "{p}");
            assert_eq!(norm(p), p);
        }
        for p in ["", "a", "//", "/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "/%41"] {
            assert!(!is_normal(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn dot_segments_are_removed_per_rfc3986() {
        assert_eq!(norm("/public/../admin"), "/admin");
        assert_eq!(norm("/a/b/../../../c"), "/c");
        assert_eq!(norm("/a/./b/."), "/a/b/");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/a/.b/..c"), "/a/.b/..c");
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(norm("//a///b//"), "/a/b/");
    }

    #[test]
    fn unreserved_escapes_are_decoded_before_dot_removal() {
        assert_eq!(norm("/public/%2e%2E/admin"), "/admin");
        assert_eq!(norm("/%7euser/%41"), "/~user/A");
        assert_eq!(norm("/a%20b"), "/a b");
    }

    #[test]
    fn reserved_escapes_stay_encoded_with_upper_case_hex() {
        assert_eq!(norm("/a%2fb"), "/a%2Fb");
        assert_eq!(norm("/a%252e"), "/a%252e");
        assert_eq!(norm("/%3f%23"), "/%3F%23");
    }

    #[test]
    fn malformed_escapes_are_left_alone() {
        assert_eq!(norm("/a%zz"), "/a%zz");
        assert_eq!(norm("/a%4"), "/a%4");
        assert_eq!(norm("/a%"), "/a%");
    }

    #[test]
    fn too_small_buffer_is_refused() {
        let mut buf = [0u8; 3];
        assert_eq!(normalise_into(b"/a/../b", &mut buf), None);
    }

    #[test]
    fn escaping_encodes_only_unsafe_bytes() {
        let mut out = Vec::new();
        push_escaped(&mut out, b"/a b/%2F/\xc3\xa9/~x\"");
        assert_eq!(out, b"/a%20b/%2F/%C3%A9/~x%22");
    }
}
