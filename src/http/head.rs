//! Request heads, parsed in place and checked strictly.
//!
//! Place in the request path: the first thing a downstream connection does with the bytes
//! it reads. [`parse_request`] runs httparse over the buffer and records every field as a
//! byte range into that same buffer ([`RequestHead`]); nothing is copied, and the head is
//! later written upstream as slices of it (see `rewrite`).
//!
//! Invariants: a head that parses is one whose framing is not in doubt (RFC 9112 §6.1,
//! §6.3): at most one body length, stated once (or repeated identically), never both
//! `Content-Length` and `Transfer-Encoding`, `chunked` last when transfer codings are
//! present, every line ending in CRLF, exactly one `Host` in HTTP/1.1. Anything else is a
//! [`HeadError`], which the connection answers with its status and then closes, because
//! the end of a message whose framing is in doubt cannot be found.
//!
//! Cost: one httparse pass, one `memchr` pass for bare LF, and a case-insensitive
//! classification of each header name; no allocation once the connection's
//! [`RequestHead`] has grown to its usual number of headers.

use std::mem::MaybeUninit;
use std::ops::Range;

/// The most header lines a request may carry, whatever the configured limit says; the
/// parser's scratch array lives on the stack.
pub const MAX_HEADERS_CAP: usize = 256;

/// Limits applied while parsing a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Bytes in the request line and header section, CRLFs included.
    pub max_head_bytes: usize,
    /// Header lines; at most [`MAX_HEADERS_CAP`].
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits { max_head_bytes: 32 * 1024, max_headers: 100 }
    }
}

/// Why a request head was refused. Each variant maps to one status in [`HeadError::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head did not end within `max_head_bytes` (431).
    #[error("request head larger than the limit")]
    TooLarge,
    /// More header lines than `max_headers` (431).
    #[error("too many header lines")]
    TooManyHeaders,
    /// httparse rejected the request line or a header line: bad method or target
    /// characters, whitespace before a colon, obs-fold, bare CR, NUL or other control
    /// bytes in a value, invalid header names.
    #[error("malformed request head ({0})")]
    Syntax(&'static str),
    /// A line ended in a bare LF instead of CRLF.
    #[error("line not terminated by CRLF")]
    BareLf,
    /// Not HTTP/1.0 or HTTP/1.1 (505).
    #[error("unsupported HTTP version")]
    Version,
    /// The request target is neither origin-form nor absolute-form with an http(s) URI.
    #[error("unsupported request target form")]
    Target,
    /// CONNECT is not proxied (405).
    #[error("CONNECT is not supported")]
    Connect,
    /// HTTP/1.1 without a Host header.
    #[error("missing Host header")]
    MissingHost,
    /// More than one Host header.
    #[error("duplicate Host header")]
    DuplicateHost,
    /// A Host value that is not a valid authority.
    #[error("invalid Host header")]
    InvalidHost,
    /// Content-Length not 1*DIGIT, or too large for u64.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Several Content-Length values that differ.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// Both Content-Length and Transfer-Encoding.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndEncoding,
    /// Transfer-Encoding whose final coding is not `chunked`, `chunked` twice, empty
    /// lists or parameters.
    #[error("invalid Transfer-Encoding")]
    InvalidTransferEncoding,
    /// Transfer-Encoding naming a coding this proxy does not know (501).
    #[error("unknown transfer coding")]
    UnknownTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    EncodingInHttp10,
    /// An `Expect` other than `100-continue` (417).
    #[error("unsupported expectation")]
    Expectation,
    /// A malformed Connection header.
    #[error("invalid Connection header")]
    InvalidConnection,
}

impl HeadError {
    /// The status the downstream is answered with.
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::Version => 505,
            HeadError::Connect => 405,
            HeadError::UnknownTransferCoding => 501,
            HeadError::Expectation => 417,
            _ => 400,
        }
    }
}

/// HTTP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes (0 when the request has neither header).
    Length(u64),
    /// Chunked transfer coding, possibly after other codings.
    Chunked,
}

/// Header names the proxy acts on, recognised once at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XForwardedPort,
    XForwardedPath,
    XForwardedPrefix,
    XRealIp,
    Authorization,
    ContentType,
    /// `Grant-Type` / `X-Grant-Type`: the openid-connect plugin's header-location guard.
    GrantType,
    XGrantType,
    /// `X-Consumer-ID`, `X-Consumer-Custom-ID`, `X-Consumer-Username`,
    /// `X-Anonymous-Consumer`: who the openid-connect plugin says the consumer is.
    ConsumerIdentity,
    Other,
}

impl Known {
    pub(crate) fn classify_name(name: &[u8]) -> Known {
        // Dispatch on length first so most names are rejected after one compare.
        let candidates: &[(&[u8], Known)] = match name.len() {
            2 => &[(b"te", Known::Te)],
            4 => &[(b"host", Known::Host)],
            6 => &[(b"expect", Known::Expect)],
            7 => &[(b"upgrade", Known::Upgrade)],
            9 => &[(b"x-real-ip", Known::XRealIp)],
            10 => &[
                (b"connection", Known::Connection),
                (b"keep-alive", Known::KeepAlive),
                (b"grant-type", Known::GrantType),
            ],
            12 => &[(b"content-type", Known::ContentType), (b"x-grant-type", Known::XGrantType)],
            13 => &[(b"authorization", Known::Authorization), (b"x-consumer-id", Known::ConsumerIdentity)],
            14 => &[(b"content-length", Known::ContentLength)],
            15 => &[(b"x-forwarded-for", Known::XForwardedFor)],
            16 => &[
                (b"proxy-connection", Known::ProxyConnection),
                (b"x-forwarded-host", Known::XForwardedHost),
                (b"x-forwarded-port", Known::XForwardedPort),
                (b"x-forwarded-path", Known::XForwardedPath),
            ],
            17 => &[(b"transfer-encoding", Known::TransferEncoding), (b"x-forwarded-proto", Known::XForwardedProto)],
            18 => &[(b"x-forwarded-prefix", Known::XForwardedPrefix)],
            19 => &[(b"x-consumer-username", Known::ConsumerIdentity)],
            20 => &[
                (b"x-consumer-custom-id", Known::ConsumerIdentity),
                (b"x-anonymous-consumer", Known::ConsumerIdentity),
            ],
            _ => &[],
        };
        for (n, k) in candidates {
            if eq_lowercase(name, n) {
                return *k;
            }
        }
        Known::Other
    }

    /// Hop-by-hop fields (RFC 9110 §7.6.1) and the ones this proxy always rewrites
    /// itself; they are never copied to the upstream as sent. `Transfer-Encoding` and
    /// `Content-Length` are framing and are copied (the body is relayed as framed).
    pub fn is_dropped_upstream(self) -> bool {
        matches!(
            self,
            Known::Host
                | Known::Connection
                | Known::KeepAlive
                | Known::ProxyConnection
                | Known::Te
                | Known::Upgrade
                | Known::Expect
                | Known::XForwardedFor
                | Known::XForwardedProto
                | Known::XForwardedHost
                | Known::XForwardedPort
                | Known::XForwardedPath
                | Known::XForwardedPrefix
                | Known::XRealIp
        )
    }
}

/// Whether `name` equals `lower`, a lower-case literal of the same length, ignoring
/// ASCII case. Names of 8 bytes or more are compared 8 bytes at a time (the last word
/// overlapping the one before), which is what a header name's classification costs on
/// every request; shorter ones byte by byte, which usually ends at the first.
fn eq_lowercase(name: &[u8], lower: &[u8]) -> bool {
    debug_assert_eq!(name.len(), lower.len());
    let n = name.len();
    if n < 8 {
        return name.eq_ignore_ascii_case(lower);
    }
    let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    while at + 8 < n {
        if fold_word(word(name, at)) != word(lower, at) {
            return false;
        }
        at += 8;
    }
    fold_word(word(name, n - 8)) == word(lower, n - 8)
}

/// Eight bytes with every ASCII upper-case letter made lower-case and every other byte
/// (non-ASCII ones too) left as it is.
fn fold_word(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // Per byte, with no carry into the next one (at most 0x7f + 0x3f): the high bit is
    // set once the byte is at least `A`, and at least one past `Z`.
    let from_a = low7.wrapping_add(0x3f3f_3f3f_3f3f_3f3f) & HIGH;
    let past_z = low7.wrapping_add(0x2525_2525_2525_2525) & HIGH;
    let upper = from_a & !past_z & !w & HIGH;
    w | (upper >> 2)
}

/// A byte range into the buffer the head was parsed from.
pub type Span = Range<usize>;

/// One header line.
#[derive(Debug, Clone)]
pub struct HeaderEntry {
    pub name: Span,
    pub value: Span,
    pub known: Known,
    /// Set for lines that must not be forwarded even though their name is ordinary:
    /// named in `Connection`, or a repeated identical `Content-Length`.
    pub skip: bool,
}

/// A parsed request head: ranges into the buffer it came from.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Length of the head in bytes, through the blank line.
    pub len: usize,
    pub method: Span,
    /// The request target as sent.
    pub target: Span,
    /// The path part of the target (before `?`); `None` for an absolute-form target
    /// with an empty path, which means `/`.
    pub path: Option<Span>,
    /// The query including its `?`, empty range when there is none.
    pub query: Span,
    pub version: Version,
    pub headers: Vec<HeaderEntry>,
    /// The authority: the Host value, or the authority of an absolute-form target
    /// (which takes precedence, RFC 9112 §3.2.2).
    pub host: Option<Span>,
    pub framing: BodyFraming,
    /// `Connection: close` was sent.
    pub conn_close: bool,
    /// `Connection: keep-alive` was sent (matters for HTTP/1.0).
    pub conn_keep_alive: bool,
    pub expect_continue: bool,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            len: 0,
            method: 0..0,
            target: 0..0,
            path: None,
            query: 0..0,
            version: Version::Http11,
            headers: Vec::new(),
            host: None,
            framing: BodyFraming::Length(0),
            conn_close: false,
            conn_keep_alive: false,
            expect_continue: false,
        }
    }
}

impl RequestHead {
    /// Whether the downstream connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.conn_close,
            Version::Http10 => self.conn_keep_alive && !self.conn_close,
        }
    }

    pub fn method<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.method.clone()]
    }

    /// The path, `/` for an absolute-form target without one.
    pub fn path<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        match &self.path {
            Some(p) => &buf[p.clone()],
            None => b"/",
        }
    }

    pub fn host<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        match &self.host {
            Some(h) => &buf[h.clone()],
            None => b"",
        }
    }

    /// The value of the first header of this kind.
    pub fn first<'b>(&self, buf: &'b [u8], known: Known) -> Option<&'b [u8]> {
        self.headers.iter().find(|h| h.known == known).map(|h| &buf[h.value.clone()])
    }

    /// Values of headers named `lower_name` (compared without regard to ASCII case, so
    /// any case works; callers on the request path pass lower case), in order.
    pub fn values<'b, 's>(&'s self, buf: &'b [u8], lower_name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's
    where
        'b: 's,
    {
        self.headers
            .iter()
            .filter(move |h| buf[h.name.clone()].eq_ignore_ascii_case(lower_name.as_bytes()))
            .map(move |h| &buf[h.value.clone()])
    }

    pub fn is_head_method(&self, buf: &[u8]) -> bool {
        self.method(buf) == b"HEAD"
    }
}

fn offset_in(buf: &[u8], part: &[u8]) -> Span {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// Parses the head at the start of `buf` into `head`.
///
/// Returns `Ok(None)` when the head is not complete yet (and is still within the size
/// limit), `Ok(Some(len))` when it is, with `len` bytes of head at the start of `buf`.
pub fn parse_request(buf: &[u8], limits: &HeadLimits, head: &mut RequestHead) -> Result<Option<usize>, HeadError> {
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut scratch = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    let parsed =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut scratch[..max_headers]);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_head_bytes { Err(HeadError::TooLarge) } else { Ok(None) };
        }
        Err(e) => {
            return Err(match e {
                httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
                httparse::Error::Version if names_other_http_version(buf) => HeadError::Version,
                httparse::Error::Version => HeadError::Syntax("request line"),
                httparse::Error::HeaderName => HeadError::Syntax("header name"),
                httparse::Error::HeaderValue => HeadError::Syntax("header value"),
                httparse::Error::NewLine => HeadError::Syntax("line ending"),
                httparse::Error::Status => HeadError::Syntax("status"),
                httparse::Error::Token => HeadError::Syntax("method or target"),
            });
        }
    };
    if len > limits.max_head_bytes {
        return Err(HeadError::TooLarge);
    }
    // httparse accepts a bare LF as a line ending (RFC 9112 §2.2 lets a recipient do
    // so); we do not, so that what we forward is unambiguous to every next hop.
    for i in memchr::memchr_iter(b'\n', &buf[..len]) {
        if i == 0 || buf[i - 1] != b'\r' {
            return Err(HeadError::BareLf);
        }
    }

    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Syntax("request line"));
    };
    head.len = len;
    head.method = offset_in(buf, method.as_bytes());
    head.target = offset_in(buf, target.as_bytes());
    head.version = if version == 1 { Version::Http11 } else { Version::Http10 };
    head.headers.clear();
    head.host = None;
    head.framing = BodyFraming::Length(0);
    head.conn_close = false;
    head.conn_keep_alive = false;
    head.expect_continue = false;

    if method == "CONNECT" {
        return Err(HeadError::Connect);
    }
    let mut target_authority: Option<Span> = None;
    split_target(buf, head, &mut target_authority)?;

    let mut host_count = 0usize;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut te_seen = false;
    // Whether a Connection header names another field (to be dropped).
    let mut lists_fields = false;
    for h in req.headers.iter() {
        let name = offset_in(buf, h.name.as_bytes());
        let value = offset_in(buf, h.value);
        let known = Known::classify_name(h.name.as_bytes());
        let mut skip = false;
        let v = h.value;
        match known {
            Known::Host => {
                host_count += 1;
                if !valid_authority(v) {
                    return Err(HeadError::InvalidHost);
                }
                if head.host.is_none() {
                    head.host = Some(value.clone());
                }
            }
            Known::ContentLength => {
                let n = parse_content_length(v)?;
                match content_length {
                    None => content_length = Some(n),
                    Some(m) if m == n => skip = true,
                    Some(_) => return Err(HeadError::ConflictingContentLength),
                }
            }
            Known::TransferEncoding => {
                te_seen = true;
                chunked = parse_transfer_encoding(v, chunked)?;
            }
            Known::Connection => lists_fields |= parse_connection(v, head)?,
            Known::Expect => {
                if v.eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                } else {
                    return Err(HeadError::Expectation);
                }
            }
            _ => {}
        }
        head.headers.push(HeaderEntry { name, value, known, skip });
    }
    if host_count > 1 {
        return Err(HeadError::DuplicateHost);
    }
    if host_count == 0 && head.version == Version::Http11 {
        return Err(HeadError::MissingHost);
    }
    if let Some(a) = target_authority {
        head.host = Some(a);
    }
    if te_seen {
        if head.version == Version::Http10 {
            return Err(HeadError::EncodingInHttp10);
        }
        if content_length.is_some() {
            return Err(HeadError::LengthAndEncoding);
        }
        if !chunked {
            // A request body whose length the recipient cannot determine (RFC 9112 §6.3).
            return Err(HeadError::InvalidTransferEncoding);
        }
        head.framing = BodyFraming::Chunked;
    } else if let Some(n) = content_length {
        head.framing = BodyFraming::Length(n);
    }
    if head.expect_continue && head.version == Version::Http10 {
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue from HTTP/1.0.
        head.expect_continue = false;
    }
    if lists_fields {
        mark_connection_listed(buf, &mut head.headers);
    }
    Ok(Some(len))
}

/// Whether the request line ends in a well-formed `HTTP/x.y` that is simply not 1.0 or
/// 1.1 (505), as opposed to a broken request line (400).
fn names_other_http_version(buf: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\r', buf).unwrap_or(buf.len());
    let line = &buf[..line_end];
    let v = line.rsplit(|&c| c == b' ').next().unwrap_or(b"");
    line.iter().filter(|&&c| c == b' ').count() == 2
        && v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
}

/// Splits the target into path and query, and pulls the authority out of an
/// absolute-form target.
fn split_target(buf: &[u8], head: &mut RequestHead, authority: &mut Option<Span>) -> Result<(), HeadError> {
    let t = &buf[head.target.clone()];
    let base = head.target.start;
    let (path_start, path_region_end) = if t.first() == Some(&b'/') {
        (0, t.len())
    } else {
        let rest = if t.len() >= 7 && t[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if t.len() >= 8 && t[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else {
            return Err(HeadError::Target);
        };
        let auth_end = t[rest..].iter().position(|&c| c == b'/' || c == b'?').map_or(t.len(), |p| p + rest);
        let auth = &t[rest..auth_end];
        if auth.is_empty() || !valid_authority(auth) {
            return Err(HeadError::Target);
        }
        *authority = Some(base + rest..base + auth_end);
        (auth_end, t.len())
    };
    let q = t[path_start..path_region_end].iter().position(|&c| c == b'?').map(|p| p + path_start);
    let path_end = q.unwrap_or(path_region_end);
    head.path = if path_end > path_start { Some(base + path_start..base + path_end) } else { None };
    head.query = match q {
        Some(q) => base + q..base + t.len(),
        None => base + t.len()..base + t.len(),
    };
    if head.path.as_ref().is_some_and(|p| buf[p.start] != b'/') {
        // "http://host?x" has an empty path; anything else must start with '/'.
        return Err(HeadError::Target);
    }
    Ok(())
}

/// `host [":" port]` with a reg-name, IPv4 or bracketed IPv6 host (RFC 3986 §3.2.2).
/// The empty value is allowed (RFC 9112 §3.2).
/// The bytes of an authority's host other than an IP literal: RFC 3986 `reg-name`
/// (unreserved, sub-delims, and `%` of a percent-encoding), which takes IPv4 too.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric();
        c += 1;
    }
    let others = b"-._~!$&'()*+,;=%";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

fn valid_authority(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let (host, port) = if v[0] == b'[' {
        let Some(close) = v.iter().position(|&c| c == b']') else { return false };
        let inner = &v[1..close];
        if inner.is_empty() || !inner.iter().all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.') {
            return false;
        }
        let rest = &v[close + 1..];
        match rest.split_first() {
            None => (&v[..close + 1], None),
            Some((b':', p)) => (&v[..close + 1], Some(p)),
            _ => return false,
        }
    } else {
        match v.iter().rposition(|&c| c == b':') {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        }
    };
    let host_ok = host.first() == Some(&b'[') || (!host.is_empty() && host.iter().all(|&c| REG_NAME[usize::from(c)]));
    let port_ok = match port {
        None => true,
        Some(p) => p.len() <= 5 && p.iter().all(u8::is_ascii_digit),
    };
    host_ok && port_ok
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), no signs, no lists, no hex, and small
/// enough for a u64.
fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    if v.is_empty() || v.len() > 19 + 1 {
        return Err(HeadError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return Err(HeadError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(HeadError::InvalidContentLength)?;
    }
    Ok(n)
}

/// One Transfer-Encoding field value; `chunked_before` says whether an earlier field
/// already ended in `chunked` (which makes any further coding an error: chunked must be
/// applied last, and only once). Returns whether the list now ends in `chunked`.
fn parse_transfer_encoding(v: &[u8], chunked_before: bool) -> Result<bool, HeadError> {
    let mut chunked = chunked_before;
    let mut any = false;
    for item in v.split(|&c| c == b',') {
        let coding = trim_ows(item);
        if coding.is_empty() {
            continue;
        }
        any = true;
        if chunked {
            // Something after `chunked`.
            return Err(HeadError::InvalidTransferEncoding);
        }
        if !coding.iter().all(|&c| is_tchar(c)) {
            return Err(HeadError::InvalidTransferEncoding);
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked = true;
        } else if !KNOWN_CODINGS.iter().any(|k| coding.eq_ignore_ascii_case(k)) {
            return Err(HeadError::UnknownTransferCoding);
        }
    }
    if !any {
        return Err(HeadError::InvalidTransferEncoding);
    }
    Ok(chunked)
}

/// Registered transfer codings other than chunked (RFC 9112 §7; IANA registry).
const KNOWN_CODINGS: &[&[u8]] = &[b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];

/// Notes `close` and `keep-alive`; whether the value names any other field.
fn parse_connection(v: &[u8], head: &mut RequestHead) -> Result<bool, HeadError> {
    let mut others = false;
    for item in v.split(|&c| c == b',') {
        let token = trim_ows(item);
        if token.is_empty() {
            continue;
        }
        if !token.iter().all(|&c| is_tchar(c)) {
            return Err(HeadError::InvalidConnection);
        }
        if token.eq_ignore_ascii_case(b"close") {
            head.conn_close = true;
        } else if token.eq_ignore_ascii_case(b"keep-alive") {
            head.conn_keep_alive = true;
        } else {
            others = true;
        }
    }
    Ok(others)
}

/// Marks the headers named in `Connection` (RFC 9110 §7.6.1) so they are not forwarded.
/// Framing and the fields the proxy rewrites itself are never dropped on a peer's say-so.
pub(crate) fn mark_connection_listed(buf: &[u8], headers: &mut [HeaderEntry]) {
    for ci in 0..headers.len() {
        if headers[ci].known != Known::Connection {
            continue;
        }
        let value = headers[ci].value.clone();
        for item in buf[value].split(|&c| c == b',') {
            let token = trim_ows(item);
            if token.is_empty() || token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            for h in headers.iter_mut() {
                if h.known == Known::Other && buf[h.name.clone()].eq_ignore_ascii_case(token) {
                    h.skip = true;
                }
            }
        }
    }
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 §5.6.2 tchar.
pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<(usize, RequestHead)>, HeadError> {
        let mut head = RequestHead::default();
        parse_request(raw, &HeadLimits::default(), &mut head).map(|o| o.map(|n| (n, head)))
    }

    fn ok(raw: &[u8]) -> RequestHead {
        parse(raw).expect("parses").expect("complete").1
    }

    fn err(raw: &[u8]) -> HeadError {
        parse(raw).expect_err("must be refused")
    }

    #[test]
    fn word_folding_lowercases_ascii_letters_only_for_every_byte_at_every_position() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = *b"AzZa-@[`";
                bytes[pos] = b;
                let expected = bytes.map(|c| c.to_ascii_lowercase());
                assert_eq!(fold_word(u64::from_le_bytes(bytes)).to_le_bytes(), expected, "byte {b:#04x} at {pos}");
            }
        }
    }

    #[test]
    fn header_names_are_classified_in_any_case_and_near_misses_are_not() {
        let names: &[(&[u8], Known)] = &[
            (b"te", Known::Te),
            (b"host", Known::Host),
            (b"upgrade", Known::Upgrade),
            (b"x-real-ip", Known::XRealIp),
            (b"keep-alive", Known::KeepAlive),
            (b"authorization", Known::Authorization),
            (b"content-length", Known::ContentLength),
            (b"x-forwarded-port", Known::XForwardedPort),
            (b"transfer-encoding", Known::TransferEncoding),
            (b"x-forwarded-prefix", Known::XForwardedPrefix),
        ];
        for &(name, known) in names {
            assert_eq!(Known::classify_name(name), known);
            assert_eq!(Known::classify_name(&name.to_ascii_uppercase()), known);
            // Every other letter upper-case.
            let mixed: Vec<u8> =
                name.iter().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { *c }).collect();
            assert_eq!(Known::classify_name(&mixed), known);
            // One byte changed, at each position: to a byte that folds to another letter, to
            // CR or 0x7f (one bit away from `-` and `_` when folded carelessly), or to a
            // non-ASCII byte.
            for i in 0..name.len() {
                for wrong in [name[i] ^ 0x01, b'\r', 0x7f, name[i] | 0x80, name[i] & !0x20 & 0x1f] {
                    let mut near = name.to_vec();
                    near[i] = wrong;
                    assert_eq!(Known::classify_name(&near), Known::Other, "{:?}", String::from_utf8_lossy(&near));
                }
            }
        }
        assert_eq!(Known::classify_name(b"x-forwarded-hosts"), Known::Other);
        assert_eq!(Known::classify_name(b""), Known::Other);
    }

    #[test]
    fn typical_head_parses_into_spans_of_the_buffer() {
        let raw = b"GET /orders/7?x=1 HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\nrest";
        let h = ok(raw);
        assert_eq!(h.len, raw.len() - 4);
        assert_eq!(h.method(raw), b"GET");
        assert_eq!(h.path(raw), b"/orders/7");
        assert_eq!(&raw[h.query.clone()], b"?x=1");
        assert_eq!(h.host(raw), b"api.example.com");
        assert_eq!(h.framing, BodyFraming::Length(0));
        assert!(h.keep_alive());
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers[1].known, Known::Other);
    }

    #[test]
    fn partial_head_asks_for_more_until_the_limit() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(40 * 1024, b'a');
        assert_eq!(err(&big), HeadError::TooLarge);
        assert_eq!(HeadError::TooLarge.status(), 431);
    }

    #[test]
    fn complete_head_over_the_limit_is_refused() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        raw.resize(33 * 1024, b'a');
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(err(&raw), HeadError::TooLarge);
    }

    #[test]
    fn header_count_over_the_limit_is_431() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..120 {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(err(&raw), HeadError::TooManyHeaders);
        assert_eq!(err(&raw).status(), 431);
    }

    #[test]
    fn content_length_forms() {
        assert_eq!(ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").framing, BodyFraming::Length(5));
        for bad in ["+5", "-1", "0x5", " 5 5", "5,5", "", "99999999999999999999", "184467440737095516160"] {
            let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(err(raw.as_bytes()), HeadError::InvalidContentLength, "{bad:?}");
        }
    }

    #[test]
    fn repeated_identical_content_length_is_kept_once_and_differing_is_refused() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(3));
        assert!(!h.headers[1].skip && h.headers[2].skip);
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            HeadError::ConflictingContentLength
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        let cases: &[(&str, HeadError)] = &[
            ("chunked, gzip", HeadError::InvalidTransferEncoding),
            ("gzip", HeadError::InvalidTransferEncoding),
            ("chunked, chunked", HeadError::InvalidTransferEncoding),
            (",", HeadError::InvalidTransferEncoding),
            ("chunked;q=1", HeadError::InvalidTransferEncoding),
            ("foo, chunked", HeadError::UnknownTransferCoding),
            ("identity", HeadError::UnknownTransferCoding),
        ];
        for (te, want) in cases {
            let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(err(raw.as_bytes()), *want, "{te:?}");
        }
        assert_eq!(HeadError::UnknownTransferCoding.status(), 501);
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
            HeadError::InvalidTransferEncoding
        );
    }

    #[test]
    fn length_and_encoding_together_are_refused() {
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HeadError::LengthAndEncoding
        );
        assert_eq!(err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), HeadError::EncodingInHttp10);
    }

    #[test]
    fn line_syntax_errors_are_refused() {
        let cases: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for raw in cases {
            let e = err(raw);
            assert!(matches!(e, HeadError::Syntax(_)), "{:?} gave {e:?}", String::from_utf8_lossy(raw));
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn bare_lf_line_endings_are_refused() {
        assert_eq!(err(b"GET / HTTP/1.1\nHost: a\r\n\r\n"), HeadError::BareLf);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\n\n"), HeadError::BareLf);
    }

    #[test]
    fn a_host_name_takes_exactly_the_reg_name_bytes() {
        let allowed = |c: u8| c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&c);
        for c in 0..=255u8 {
            assert_eq!(valid_authority(&[b'a', c, b'b']), allowed(c), "byte {c:#04x}");
            assert_eq!(valid_authority(&[b'a', c, b'b', b':', b'8']), allowed(c), "byte {c:#04x} before a port");
        }
    }

    #[test]
    fn host_rules() {
        assert_eq!(err(b"GET / HTTP/1.1\r\nX: y\r\n\r\n"), HeadError::MissingHost);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), HeadError::DuplicateHost);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), HeadError::InvalidHost);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), HeadError::InvalidHost);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n"), HeadError::InvalidHost);
        assert_eq!(
            ok(b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n").host(b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"),
            b"[::1]:8000"
        );
        // HTTP/1.0 needs no Host.
        assert!(ok(b"GET / HTTP/1.0\r\n\r\n").host.is_none());
    }

    #[test]
    fn absolute_form_target_supplies_the_host() {
        let raw = b"GET http://API.example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n";
        let h = ok(raw);
        assert_eq!(h.host(raw), b"API.example.com:8080");
        assert_eq!(h.path(raw), b"/p");
        assert_eq!(&raw[h.query.clone()], b"?q");
        let raw = b"GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n";
        assert_eq!(ok(raw).path(raw), b"/");
        assert_eq!(err(b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), HeadError::Target);
        assert_eq!(err(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), HeadError::Target);
        assert_eq!(err(b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), HeadError::Connect);
    }

    #[test]
    fn version_rules() {
        assert_eq!(err(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), HeadError::Version);
        assert_eq!(HeadError::Version.status(), 505);
        let h = ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.keep_alive());
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive());
    }

    #[test]
    fn expect_rules() {
        assert!(ok(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").expect_continue);
        assert_eq!(err(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: coffee\r\n\r\n"), HeadError::Expectation);
        assert!(!ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue);
    }

    #[test]
    fn headers_named_in_connection_are_marked_but_framing_is_not() {
        let raw =
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret, content-length\r\nX-Secret: 1\r\nX-Other: 2\r\n\r\n";
        let h = ok(raw);
        let skipped: Vec<&[u8]> = h.headers.iter().filter(|e| e.skip).map(|e| &raw[e.name.clone()]).collect();
        assert_eq!(skipped, vec![&b"X-Secret"[..]]);
    }

    #[test]
    fn values_finds_every_header_of_a_name() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
        let h = ok(raw);
        let v: Vec<&[u8]> = h.values(raw, "x-a").collect();
        assert_eq!(v, vec![&b"1"[..], &b"2"[..]]);
    }

    // ---- property tests: mutated heads ----

    use crate::testing::{self, Rng, REQUEST_FIELDS};

    /// A head cut short for an assertion message (some are 40 KiB long).
    fn shown(raw: &[u8]) -> String {
        String::from_utf8_lossy(&raw[..raw.len().min(400)]).into_owned()
    }

    /// The comma-separated elements of `values`, trimmed, empty ones left out.
    fn list_items<'a>(values: &[&'a [u8]]) -> Vec<&'a [u8]> {
        values.iter().flat_map(|v| v.split(|&c| c == b',')).map(trim_ows).filter(|i| !i.is_empty()).collect()
    }

    /// The kind a header name must be classified as, for the names that decide framing,
    /// routing or forwarding (by plain lower-case comparison, not `classify_name`'s words).
    fn expected_known(name: &[u8]) -> Option<Known> {
        let table: &[(&[u8], Known)] = &[
            (b"host", Known::Host),
            (b"content-length", Known::ContentLength),
            (b"transfer-encoding", Known::TransferEncoding),
            (b"connection", Known::Connection),
            (b"keep-alive", Known::KeepAlive),
            (b"proxy-connection", Known::ProxyConnection),
            (b"te", Known::Te),
            (b"upgrade", Known::Upgrade),
            (b"expect", Known::Expect),
            (b"x-forwarded-for", Known::XForwardedFor),
            (b"x-real-ip", Known::XRealIp),
            (b"authorization", Known::Authorization),
        ];
        let lower = name.to_ascii_lowercase();
        table.iter().find(|(n, _)| *n == lower.as_slice()).map(|(_, k)| *k)
    }

    /// What `parse_request` promises of a head it accepted: the head is what httparse
    /// reads too, its lines all end in CRLF, and its framing, authority and connection
    /// options can be read only one way.
    fn assert_accepted_head_is_unambiguous(buf: &[u8], limits: &HeadLimits, len: usize, head: &RequestHead) {
        let raw = shown(buf);
        assert!(len <= buf.len() && len <= limits.max_head_bytes, "{raw:?}");
        assert_eq!(head.len, len);
        assert!(buf[..len].ends_with(b"\r\n\r\n"), "{raw:?}");
        for (i, &c) in buf[..len].iter().enumerate() {
            assert!(c != b'\n' || (i > 0 && buf[i - 1] == b'\r'), "bare LF at {i} in {raw:?}");
            assert!(c != b'\r' || buf.get(i + 1) == Some(&b'\n'), "bare CR at {i} in {raw:?}");
        }

        // httparse, on its own, reads the same request line and fields at the same places.
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
        let mut req = httparse::Request::new(&mut fields);
        assert_eq!(req.parse(buf), Ok(httparse::Status::Complete(len)), "{raw:?}");
        let at = |s: &[u8]| {
            let start = s.as_ptr() as usize - buf.as_ptr() as usize;
            start..start + s.len()
        };
        let (method, target) = (req.method.unwrap().as_bytes(), req.path.unwrap().as_bytes());
        assert_eq!(head.method, at(method));
        assert_eq!(head.target, at(target));
        assert_ne!(method, b"CONNECT");
        assert_eq!(head.version, if req.version == Some(1) { Version::Http11 } else { Version::Http10 });
        assert_eq!(head.headers.len(), req.headers.len(), "{raw:?}");
        assert!(head.headers.len() <= limits.max_headers.min(MAX_HEADERS_CAP));
        for (e, h) in head.headers.iter().zip(req.headers.iter()) {
            assert_eq!(e.name, at(h.name.as_bytes()));
            assert_eq!(e.value, at(h.value));
            assert!(e.value.end < len);
            match expected_known(h.name.as_bytes()) {
                Some(k) => assert_eq!(e.known, k, "{:?}", h.name),
                None => assert!(
                    !matches!(
                        e.known,
                        Known::Host
                            | Known::ContentLength
                            | Known::TransferEncoding
                            | Known::Connection
                            | Known::Expect
                    ),
                    "{:?} classified as {:?}",
                    h.name,
                    e.known
                ),
            }
        }
        let values = |name: &str| -> Vec<&[u8]> {
            req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value).collect()
        };

        // One authority: a single Host (none only in HTTP/1.0), and an absolute-form
        // target's own authority takes precedence.
        let hosts = values("host");
        match head.version {
            Version::Http11 => assert_eq!(hosts.len(), 1, "{raw:?}"),
            Version::Http10 => assert!(hosts.len() <= 1, "{raw:?}"),
        }
        let authority = if target.starts_with(b"/") {
            hosts.first().copied()
        } else {
            let scheme_end = target.windows(3).position(|w| w == b"://").expect("absolute-form") + 3;
            assert!(
                target[..scheme_end].eq_ignore_ascii_case(b"http://")
                    || target[..scheme_end].eq_ignore_ascii_case(b"https://")
            );
            let rest = &target[scheme_end..];
            Some(&rest[..rest.iter().position(|&c| c == b'/' || c == b'?').unwrap_or(rest.len())])
        };
        assert_eq!(head.host.clone().map(|h| &buf[h]), authority, "{raw:?}");
        assert!(
            head.host(buf).iter().all(|&c| c.is_ascii_graphic() && !b"/?#@\\\"".contains(&c)),
            "host {:?}",
            shown(head.host(buf))
        );

        // Path and query are the target's tail, split at the first `?`.
        let (path, query) = (head.path(buf), &buf[head.query.clone()]);
        assert!(path.starts_with(b"/") && !path.contains(&b'?'), "{raw:?}");
        assert!(query.is_empty() || query[0] == b'?');
        assert_eq!(head.query.end, head.target.end);
        if head.path.is_some() {
            assert!(target.ends_with(&[path, query].concat()));
        }

        // One body length: chunked last and once, or one Content-Length value, never both.
        let (lengths, codings) = (values("content-length"), list_items(&values("transfer-encoding")));
        if values("transfer-encoding").is_empty() {
            let parsed: Vec<Option<u64>> = lengths
                .iter()
                .map(|v| {
                    let digits = !v.is_empty() && v.iter().all(u8::is_ascii_digit);
                    std::str::from_utf8(v).ok().filter(|_| digits).and_then(|s| s.parse().ok())
                })
                .collect();
            assert!(parsed.windows(2).all(|w| w[0] == w[1]), "{raw:?}");
            let n = parsed.first().map(|n| n.expect("a number"));
            assert_eq!(head.framing, BodyFraming::Length(n.unwrap_or(0)), "{raw:?}");
            // What goes upstream states the length once.
            let forwarded = head.headers.iter().filter(|e| e.known == Known::ContentLength && !e.skip).count();
            assert_eq!(forwarded, usize::from(n.is_some()), "{raw:?}");
        } else {
            assert!(lengths.is_empty(), "Content-Length and Transfer-Encoding in {raw:?}");
            assert_eq!(head.version, Version::Http11);
            assert_eq!(head.framing, BodyFraming::Chunked, "{raw:?}");
            let chunked: Vec<bool> = codings.iter().map(|c| c.eq_ignore_ascii_case(b"chunked")).collect();
            assert_eq!(chunked.last(), Some(&true), "{raw:?}");
            assert_eq!(chunked.iter().filter(|&&c| c).count(), 1, "{raw:?}");
        }

        // `Expect` can only be 100-continue, and only HTTP/1.1 acts on it.
        let expects = values("expect");
        assert!(expects.iter().all(|v| v.eq_ignore_ascii_case(b"100-continue")), "{raw:?}");
        assert_eq!(head.expect_continue, !expects.is_empty() && head.version == Version::Http11);

        // Connection options as listed; fields the list names are not forwarded.
        let options = list_items(&values("connection"));
        assert!(options.iter().all(|o| o.iter().all(|&c| is_tchar(c))), "{raw:?}");
        assert_eq!(head.conn_close, options.iter().any(|o| o.eq_ignore_ascii_case(b"close")));
        assert_eq!(head.conn_keep_alive, options.iter().any(|o| o.eq_ignore_ascii_case(b"keep-alive")));
        assert_eq!(head.keep_alive(), !head.conn_close && (head.version == Version::Http11 || head.conn_keep_alive));
        let listed = |name: &[u8]| options.iter().any(|o| o.eq_ignore_ascii_case(name));
        let mut lengths_seen = 0;
        for e in &head.headers {
            let name = &buf[e.name.clone()];
            if e.known == Known::ContentLength {
                lengths_seen += 1;
                assert_eq!(e.skip, lengths_seen > 1, "only repeats of Content-Length are skipped");
            } else if e.known == Known::Other {
                assert_eq!(e.skip, listed(name), "{:?} in {raw:?}", shown(name));
            } else {
                assert!(!e.skip, "{:?} skipped in {raw:?}", shown(name));
            }
        }
    }

    #[test]
    fn mutated_heads_never_panic_and_every_accepted_one_frames_unambiguously() {
        let mut rng = Rng(0x5eed_0f4e_ad1e_5500);
        // One head for every case, as a connection reuses its own: nothing of an earlier
        // parse may leak into a later one.
        let mut head = RequestHead::default();
        let mut accepted = 0;
        const CASES: usize = 20_000;
        for _ in 0..CASES {
            let lines = testing::request_lines(&mut rng);
            let mut raw = testing::mutated(&mut rng, lines, REQUEST_FIELDS);
            if rng.chance(3) {
                // A body or the next request: never part of this head.
                let tail_len = rng.below(64);
                raw.extend(rng.bytes(tail_len, b"0123456789abcdef\r\n:GET / HTTP/1.1"));
            }
            let limits = if rng.chance(4) {
                HeadLimits { max_head_bytes: 64 + rng.below(512), max_headers: 1 + rng.below(12) }
            } else {
                HeadLimits::default()
            };
            match parse_request(&raw, &limits, &mut head) {
                Ok(Some(len)) => {
                    accepted += 1;
                    assert_accepted_head_is_unambiguous(&raw, &limits, len, &head);
                    let mut alone = RequestHead::default();
                    assert_eq!(parse_request(&raw[..len], &limits, &mut alone), Ok(Some(len)));
                    assert_eq!(format!("{alone:?}"), format!("{head:?}"), "{:?}", shown(&raw));
                }
                Ok(None) => assert!(raw.len() <= limits.max_head_bytes, "{:?}", shown(&raw)),
                Err(e) => assert!([400, 405, 417, 431, 501, 505].contains(&e.status())),
            }
        }
        // The generator must reach accepted heads for the invariants to mean anything.
        assert!(accepted > CASES / 4, "only {accepted} of {CASES} accepted");
    }

    #[test]
    fn every_truncation_of_a_head_asks_for_more_or_is_refused_never_accepted() {
        let mut rng = Rng(0x7ac0_5eed_0000_0001);
        let limits = HeadLimits::default();
        let mut head = RequestHead::default();
        let mut accepted = 0;
        for _ in 0..1000 {
            let lines = testing::request_lines(&mut rng);
            let raw = testing::mutated(&mut rng, lines, REQUEST_FIELDS);
            if raw.len() > 1500 {
                continue;
            }
            let whole = parse_request(&raw, &limits, &mut head);
            accepted += usize::from(matches!(whole, Ok(Some(_))));
            let len = match whole {
                Ok(Some(len)) => len,
                _ => raw.len(),
            };
            for cut in 0..len {
                match parse_request(&raw[..cut], &limits, &mut head) {
                    Ok(None) => {}
                    Err(_) if !matches!(whole, Ok(Some(_))) => {}
                    other => panic!("{other:?} for the first {cut} bytes of {:?} ({whole:?})", shown(&raw)),
                }
            }
        }
        assert!(accepted > 200, "only {accepted} accepted");
    }
}
