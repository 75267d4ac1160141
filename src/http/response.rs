//! Upstream response heads, parsed in place.
//!
//! Place in the request path: after the request has been written upstream, the
//! connection reads the upstream's answer and parses its head here, then the head is
//! rewritten for the downstream (`rewrite`) and the body relayed as framed.
//!
//! Invariants: the framing of what we relay is decided here, once, by RFC 9112 §6.3
//! order: no body for HEAD, 1xx, 204 and 304; then Transfer-Encoding; then
//! Content-Length; else the body runs to the end of the connection. An upstream that
//! sends contradictory framing gets a [`ResponseError`] and its connection is closed,
//! never reused. A body may be framed by one transfer coding only, `chunked`, as
//! nginx, HAProxy and Traffic Server require: we send no `TE` upstream, so no other
//! coding is allowed (RFC 9112 §6.1), and one we relayed would reach an HTTP/1.0
//! caller, who cannot be sent one, still encoded after the chunks are taken off.

use std::mem::MaybeUninit;

use super::head::{is_tchar, mark_connection_listed, trim_ows, HeaderEntry, Known, Span, Version, MAX_HEADERS_CAP};

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body (HEAD request, 1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Read until the upstream closes; the downstream connection closes after it.
    UntilClose,
}

/// Why an upstream response head was refused; the downstream gets 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("response head larger than the limit")]
    TooLarge,
    #[error("malformed response head")]
    Syntax,
    #[error("invalid Content-Length in response")]
    InvalidContentLength,
    #[error("both Content-Length and Transfer-Encoding in response")]
    LengthAndEncoding,
    #[error("invalid Transfer-Encoding in response")]
    InvalidTransferEncoding,
    #[error("transfer coding other than chunked in response")]
    UnsupportedTransferCoding,
}

/// A parsed response head: ranges into the buffer it came from.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub len: usize,
    pub status: u16,
    pub version: Version,
    pub reason: Span,
    pub headers: Vec<HeaderEntry>,
    pub framing: ResponseFraming,
    /// The upstream said `Connection: close` (or is HTTP/1.0 without keep-alive).
    pub close: bool,
}

impl Default for ResponseHead {
    fn default() -> Self {
        ResponseHead {
            len: 0,
            status: 0,
            version: Version::Http11,
            reason: 0..0,
            headers: Vec::new(),
            framing: ResponseFraming::Empty,
            close: false,
        }
    }
}

fn offset_in(buf: &[u8], part: &[u8]) -> Span {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// Parses the response head at the start of `buf`. `head_request` says the request was
/// HEAD (so the response has no body whatever its headers say).
pub fn parse_response(
    buf: &[u8],
    max_head_bytes: usize,
    head_request: bool,
    head: &mut ResponseHead,
) -> Result<Option<usize>, ResponseError> {
    let mut scratch = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut scratch) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > max_head_bytes { Err(ResponseError::TooLarge) } else { Ok(None) };
        }
        Err(_) => return Err(ResponseError::Syntax),
    };
    if len > max_head_bytes {
        return Err(ResponseError::TooLarge);
    }
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(ResponseError::Syntax);
    };
    if status < 100 {
        // httparse takes any three digits; status codes start at 100 (RFC 9110 §15).
        // Below it, the head would pass for an interim response and be skipped.
        return Err(ResponseError::Syntax);
    }
    head.len = len;
    head.status = status;
    head.version = if version == 1 { Version::Http11 } else { Version::Http10 };
    // A missing reason, or one with obs-text, comes back as a `""` of httparse's own,
    // not a slice of `buf`: its offset would be garbage, so it stays the empty range.
    head.reason = resp.reason.filter(|r| !r.is_empty()).map_or(0..0, |r| offset_in(buf, r.as_bytes()));
    head.headers.clear();

    // Some(whether the codings end in `chunked`), once Transfer-Encoding is seen; and
    // whether any coding other than `chunked` was named.
    let mut te: Option<bool> = None;
    let mut other_coding = false;
    let mut content_length: Option<u64> = None;
    // `close` wins over `keep-alive`, in whichever order the two come.
    let (mut said_close, mut said_keep_alive) = (false, false);
    // Whether a Connection header names another field (to be dropped).
    let mut lists_fields = false;
    for h in resp.headers.iter() {
        let known = Known::classify_name(h.name.as_bytes());
        let mut skip = false;
        match known {
            Known::ContentLength => {
                let n = parse_len(h.value).ok_or(ResponseError::InvalidContentLength)?;
                match content_length {
                    None => content_length = Some(n),
                    Some(m) if m == n => skip = true,
                    Some(_) => return Err(ResponseError::InvalidContentLength),
                }
            }
            Known::TransferEncoding => {
                let mut ends_chunked = te.unwrap_or(false);
                for item in h.value.split(|&c| c == b',') {
                    let coding = trim_ows(item);
                    if coding.is_empty() {
                        continue;
                    }
                    if ends_chunked || !coding.iter().all(|&c| is_tchar(c)) {
                        return Err(ResponseError::InvalidTransferEncoding);
                    }
                    ends_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    other_coding |= !ends_chunked;
                }
                te = Some(ends_chunked);
            }
            Known::Connection => {
                for item in h.value.split(|&c| c == b',') {
                    let token = trim_ows(item);
                    if token.eq_ignore_ascii_case(b"close") {
                        said_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        said_keep_alive = true;
                    } else {
                        lists_fields |= !token.is_empty();
                    }
                }
            }
            _ => {}
        }
        head.headers.push(HeaderEntry {
            name: offset_in(buf, h.name.as_bytes()),
            value: offset_in(buf, h.value),
            known,
            skip,
        });
    }
    head.close = said_close || (head.version == Version::Http10 && !said_keep_alive);
    head.framing = if head_request || status < 200 || status == 204 || status == 304 {
        ResponseFraming::Empty
    } else if let Some(chunked) = te {
        if content_length.is_some() {
            return Err(ResponseError::LengthAndEncoding);
        }
        if head.version == Version::Http10 {
            return Err(ResponseError::InvalidTransferEncoding);
        }
        if other_coding {
            return Err(ResponseError::UnsupportedTransferCoding);
        }
        if !chunked {
            // Only empty values: no coding at all.
            return Err(ResponseError::InvalidTransferEncoding);
        }
        ResponseFraming::Chunked
    } else if let Some(n) = content_length {
        ResponseFraming::Length(n)
    } else {
        ResponseFraming::UntilClose
    };
    if head.framing == ResponseFraming::UntilClose {
        head.close = true;
    }
    // Headers named in Connection are hop-by-hop.
    if lists_fields {
        mark_connection_listed(buf, &mut head.headers);
    }
    Ok(Some(len))
}

fn parse_len(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    v.iter().try_fold(
        0u64,
        |n, &c| {
            if c.is_ascii_digit() {
                n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            } else {
                None
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head_req: bool) -> Result<ResponseHead, ResponseError> {
        let mut h = ResponseHead::default();
        parse_response(raw, 64 * 1024, head_req, &mut h).map(|o| {
            o.expect("complete");
            h
        })
    }

    #[test]
    fn framing_follows_rfc9112_order() {
        let cases: &[(&[u8], bool, ResponseFraming)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, ResponseFraming::Length(5)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, ResponseFraming::Empty),
            (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, ResponseFraming::Empty),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", false, ResponseFraming::Empty),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, ResponseFraming::Chunked),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true, ResponseFraming::Empty),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, ResponseFraming::UntilClose),
        ];
        for (raw, head_req, want) in cases {
            assert_eq!(parse(raw, *head_req).unwrap().framing, *want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn contradictory_framing_is_refused() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false).unwrap_err(),
            ResponseError::LengthAndEncoding
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false).unwrap_err(),
            ResponseError::InvalidContentLength
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false).unwrap_err(),
            ResponseError::InvalidContentLength
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false).unwrap_err(),
            ResponseError::InvalidTransferEncoding
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", false).unwrap_err(),
            ResponseError::InvalidTransferEncoding
        );
    }

    #[test]
    fn a_body_in_a_transfer_coding_other_than_chunked_is_refused() {
        // Relayed, it would reach an HTTP/1.0 caller still gzipped once the chunks were
        // taken off, with nothing to say so; and we never offer one in `TE`.
        for te in ["gzip", "gzip, chunked", "x-custom, chunked", "gzip\r\nTransfer-Encoding: chunked"] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(parse(raw.as_bytes(), false).unwrap_err(), ResponseError::UnsupportedTransferCoding, "{te}");
            // Without a body the header is only information, as Content-Length is.
            assert_eq!(parse(raw.as_bytes(), true).unwrap().framing, ResponseFraming::Empty, "{te}");
        }
    }

    #[test]
    fn connection_close_and_http10_mark_the_upstream_for_closing() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false).unwrap().close);
        assert!(parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap().close);
        assert!(
            !parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false).unwrap().close
        );
        assert!(!parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).unwrap().close);
    }

    #[test]
    fn status_line_without_a_reason_or_with_obs_text_in_it_has_an_empty_reason() {
        // httparse returns a `""` of its own for both, not a slice of the buffer: taking
        // its offset overflowed (a panic in debug builds, a range far outside the buffer
        // in release ones, which the response rewrite then indexed with).
        for raw in [
            &b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 \xc3\x89t\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
        ] {
            let h = parse(raw, false).unwrap();
            assert_eq!(h.reason, 0..0, "{}", String::from_utf8_lossy(raw));
            assert_eq!(h.framing, ResponseFraming::Length(0));
        }
    }

    #[test]
    fn status_below_100_is_refused_not_taken_for_an_interim_response() {
        for raw in [&b"HTTP/1.1 099 X\r\nContent-Length: 5\r\n\r\nhello"[..], b"HTTP/1.1 000 X\r\n\r\n"] {
            assert_eq!(parse(raw, false).unwrap_err(), ResponseError::Syntax, "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).unwrap().framing, ResponseFraming::Empty);
    }

    #[test]
    fn connection_close_wins_over_keep_alive_in_either_order() {
        for raw in [
            &b"HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(parse(raw, false).unwrap().close, "{}", String::from_utf8_lossy(raw));
        }
    }

    // ---- property tests: mutated heads ----

    use crate::testing::{self, Rng, RESPONSE_FIELDS};

    fn shown(raw: &[u8]) -> String {
        String::from_utf8_lossy(&raw[..raw.len().min(400)]).into_owned()
    }

    /// What `parse_response` promises of a head it accepted: httparse reads it the same
    /// way, the status is a status code, and the body framing follows RFC 9112 §6.3 with
    /// nothing left to interpretation.
    fn assert_accepted_response_is_unambiguous(
        buf: &[u8],
        max: usize,
        head_request: bool,
        len: usize,
        head: &ResponseHead,
    ) {
        let raw = shown(buf);
        assert!(len <= buf.len() && len <= max, "{raw:?}");
        assert_eq!(head.len, len);
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
        let mut resp = httparse::Response::new(&mut fields);
        assert_eq!(resp.parse(buf), Ok(httparse::Status::Complete(len)), "{raw:?}");
        assert_eq!(Some(head.status), resp.code);
        assert!((100..=999).contains(&head.status), "status {} accepted in {raw:?}", head.status);
        assert_eq!(head.version, if resp.version == Some(1) { Version::Http11 } else { Version::Http10 });
        assert_eq!(&buf[head.reason.clone()], resp.reason.unwrap_or("").as_bytes());
        assert_eq!(head.headers.len(), resp.headers.len());
        for (e, h) in head.headers.iter().zip(resp.headers.iter()) {
            assert_eq!(&buf[e.name.clone()], h.name.as_bytes());
            assert_eq!(&buf[e.value.clone()], h.value);
            assert!(e.value.end < len);
        }
        let values = |name: &str| -> Vec<&[u8]> {
            resp.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value).collect()
        };
        let split = |values: &[&[u8]]| -> Vec<Vec<u8>> {
            values
                .iter()
                .flat_map(|v| v.split(|&c| c == b','))
                .map(|i| trim_ows(i).to_ascii_lowercase())
                .filter(|i| !i.is_empty())
                .collect()
        };
        let (lengths, encodings) = (values("content-length"), values("transfer-encoding"));
        let codings = split(&encodings);
        let bodiless = head_request || head.status < 200 || head.status == 204 || head.status == 304;
        let want = if bodiless {
            ResponseFraming::Empty
        } else if !encodings.is_empty() {
            assert!(lengths.is_empty(), "Content-Length and Transfer-Encoding in {raw:?}");
            assert_eq!(head.version, Version::Http11, "{raw:?}");
            // `chunked` alone: no other coding, none twice.
            assert_eq!(codings, [b"chunked".to_vec()], "{raw:?}");
            ResponseFraming::Chunked
        } else if let Some(first) = lengths.first() {
            assert!(
                lengths.iter().all(|v| v == first) || {
                    // Differently written, same number (`2` and `002`).
                    let n = |v: &&[u8]| std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok());
                    lengths.iter().all(|v| n(v).is_some() && n(v) == n(first))
                }
            );
            assert!(first.iter().all(u8::is_ascii_digit), "{raw:?}");
            ResponseFraming::Length(std::str::from_utf8(first).unwrap().parse().expect("fits u64"))
        } else {
            ResponseFraming::UntilClose
        };
        assert_eq!(head.framing, want, "{raw:?}");
        if !bodiless && lengths.len() > 1 {
            // Relayed with the length stated once.
            let kept = head.headers.iter().filter(|e| e.known == Known::ContentLength && !e.skip).count();
            assert_eq!(kept, 1, "{raw:?}");
        }
        let options = split(&values("connection"));
        let says = |o: &[u8]| options.iter().any(|x| x == o);
        let close = head.framing == ResponseFraming::UntilClose
            || says(b"close")
            || (head.version == Version::Http10 && !says(b"keep-alive"));
        assert_eq!(head.close, close, "{raw:?}");
        for e in &head.headers {
            if e.skip && e.known != Known::ContentLength {
                assert_eq!(e.known, Known::Other);
                assert!(says(&buf[e.name.clone()].to_ascii_lowercase()), "{raw:?}");
            }
        }
    }

    #[test]
    fn mutated_response_heads_never_panic_and_every_accepted_one_frames_unambiguously() {
        let mut rng = Rng(0x0bad_5eed_cafe_0002);
        let mut head = ResponseHead::default();
        let mut accepted = 0;
        const CASES: usize = 20_000;
        for _ in 0..CASES {
            let lines = testing::response_lines(&mut rng);
            let mut raw = testing::mutated(&mut rng, lines, RESPONSE_FIELDS);
            if rng.chance(3) {
                let tail_len = rng.below(64);
                raw.extend(rng.bytes(tail_len, b"0123456789abcdef\r\n:HTTP/1.1 200"));
            }
            let max = if rng.chance(4) { 64 + rng.below(512) } else { 64 * 1024 };
            let head_request = rng.chance(8);
            match parse_response(&raw, max, head_request, &mut head) {
                Ok(Some(len)) => {
                    accepted += 1;
                    assert_accepted_response_is_unambiguous(&raw, max, head_request, len, &head);
                    let mut alone = ResponseHead::default();
                    assert_eq!(parse_response(&raw[..len], max, head_request, &mut alone), Ok(Some(len)));
                    assert_eq!(format!("{alone:?}"), format!("{head:?}"), "{:?}", shown(&raw));
                }
                Ok(None) => assert!(raw.len() <= max, "{:?}", shown(&raw)),
                Err(_) => {}
            }
        }
        assert!(accepted > CASES / 4, "only {accepted} of {CASES} accepted");
    }

    #[test]
    fn every_truncation_of_a_response_head_asks_for_more_or_is_refused_never_accepted() {
        let mut rng = Rng(0x7ac0_5eed_0000_0002);
        let mut head = ResponseHead::default();
        let mut accepted = 0;
        for _ in 0..1000 {
            let lines = testing::response_lines(&mut rng);
            let raw = testing::mutated(&mut rng, lines, RESPONSE_FIELDS);
            if raw.len() > 1500 {
                continue;
            }
            let whole = parse_response(&raw, 64 * 1024, false, &mut head);
            accepted += usize::from(matches!(whole, Ok(Some(_))));
            let len = match whole {
                Ok(Some(len)) => len,
                _ => raw.len(),
            };
            for cut in 0..len {
                match parse_response(&raw[..cut], 64 * 1024, false, &mut head) {
                    Ok(None) => {}
                    Err(_) if !matches!(whole, Ok(Some(_))) => {}
                    other => panic!("{other:?} for the first {cut} bytes of {:?} ({whole:?})", shown(&raw)),
                }
            }
        }
        assert!(accepted > 200, "only {accepted} accepted");
    }
}
