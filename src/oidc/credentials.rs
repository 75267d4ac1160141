//! Where a caller's client credentials are found (SPEC §1 step 2, Kong's
//! `client_credentials_param_type`), and how the proxy's own token request carries them
//! (RFC 6749 §2.3.1).
//!
//! Place in the request path: after routing, before the token cache. The plugin tries the
//! configured [`Location`]s in order and takes the first that yields credentials
//! ([`find`]); the result borrows from a caller-provided [`CredentialBuf`], so the common
//! case (`Authorization: Basic …`) decodes on the stack and allocates nothing.
//!
//! Rules, and where they differ from Kong:
//! - Header: scheme `basic` in any case, one or more spaces, then the base64 value
//!   (standard alphabet, padding optional, non-zero trailing bits tolerated — nginx's
//!   decoder is as lenient). Like Kong, a value that is not base64 is used as it stands
//!   (`Basic id:secret` works). The decoded value splits at the first `:`; an empty id or
//!   no `:` means no credentials; the secret may be empty. No percent-decoding. (Kong
//!   searches for the `:` from the second byte, so `:a:b` gives it the id `:a`; we follow
//!   the SPEC and give no credentials.)
//! - A `Grant-Type` (else `X-Grant-Type`) header other than `client_credentials` turns
//!   the header location off ([`header_location_disabled`]).
//! - Query and form body: `application/x-www-form-urlencoded` rules (`+` is a space,
//!   `%XX` a byte, a broken `%` escape stays as written, names are decoded too); the first
//!   occurrence of a name wins, even when it is empty; `grant_type`, when present and
//!   non-empty, must be `client_credentials` or the location yields nothing. Both id and
//!   secret must be non-empty (empty values count as absent).
//! - JSON body: an object whose `client_id`/`client_secret`/`grant_type` are strings;
//!   values of other types count as absent, the first occurrence of a key wins, JSON that
//!   does not parse yields nothing (as in Kong, where it reads as no arguments). It must
//!   parse for simd-json and for `hide`'s scanner alike (RFC 8259, nested at most about
//!   130 levels), so that `hide_credentials` can always take out what was read.
//! - Size: the Basic value (before decoding) and the decoded id plus secret from the
//!   query or body must fit [`CREDENTIAL_BUF_LEN`] bytes; longer is
//!   [`CredentialsError::TooLong`], which the plugin answers like missing credentials.
//!   Kong has no such bound; 1 KiB is far beyond any real client id and secret.
//!
//! Cost: header extraction is a scan and a base64 decode into the stack buffer, no heap
//! allocation. Query and form parsing allocate nothing either. The JSON body path scans
//! the body with `hide`'s scanner and copies it twice (the scanner's output, and simd-json
//! parses in place); bodies carry credentials rarely.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::config::{BearerLocation, CallerArg};
use crate::http::head::trim_ows;

/// Size of the stack buffer credentials are decoded into; see the module docs.
pub const CREDENTIAL_BUF_LEN: usize = 1024;

/// The grant the only supported flow uses, as it appears in `grant_type` values.
const CLIENT_CREDENTIALS: &[u8] = b"client_credentials";

/// Standard alphabet; padding as sent (present, absent); non-canonical trailing bits
/// accepted, like nginx's `ngx_decode_base64` that Kong relies on.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Where credentials were found; also the vocabulary of `client_credentials_param_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `Authorization: Basic …`.
    Header,
    /// `client_id` / `client_secret` query arguments.
    Query,
    /// `client_id` / `client_secret` in a form or JSON body.
    Body,
}

/// A caller's client id and secret, borrowed from a [`CredentialBuf`].
///
/// `Debug` shows the id (not a secret: it appears in IdP logs and token claims) and
/// redacts the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub id: &'a [u8],
    pub secret: &'a [u8],
    pub location: Location,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id.escape_ascii().to_string())
            .field("secret", &format_args!("<redacted>"))
            .field("location", &self.location)
            .finish()
    }
}

/// Why a location's credentials were refused rather than read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The credentials do not fit [`CREDENTIAL_BUF_LEN`] bytes. The plugin answers 401,
    /// as for missing credentials; the length, not the content, is worth a log line.
    #[error("client credentials longer than {CREDENTIAL_BUF_LEN} bytes")]
    TooLong,
}

/// Scratch space credentials are decoded into; lives on the worker's stack for one
/// request. `Debug` never shows its bytes (they are secrets).
pub struct CredentialBuf([u8; CREDENTIAL_BUF_LEN]);

impl CredentialBuf {
    pub const fn new() -> Self {
        CredentialBuf([0; CREDENTIAL_BUF_LEN])
    }
}

impl Default for CredentialBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CredentialBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialBuf(<redacted>)")
    }
}

/// An owned client secret, for the control plane that sends it to the IdP.
/// `Debug` and `Display` print `<redacted>`; [`ClientSecret::expose`] is the one way in.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(Box<[u8]>);

impl ClientSecret {
    pub fn new(secret: &[u8]) -> Self {
        ClientSecret(secret.into())
    }

    /// The secret's bytes, for the token request and the cache key only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the request offers to each location, as raw bytes from the parsed head and body.
/// `Debug` shows which are present, never their bytes (they carry secrets).
#[derive(Clone, Copy, Default)]
pub struct Sources<'r> {
    pub authorization: Option<&'r [u8]>,
    pub grant_type: Option<&'r [u8]>,
    pub x_grant_type: Option<&'r [u8]>,
    /// The query string without the `?`.
    pub query: Option<&'r [u8]>,
    pub content_type: Option<&'r [u8]>,
    /// The whole request body, when the body location is configured and it was read.
    pub body: Option<&'r [u8]>,
    /// The `token_post_args_client` / `token_headers_client` values read from the
    /// request ([`client_values`]), when the instance takes any.
    pub client_values: Option<&'r ClientValues>,
    /// What the request adds to the introspection of its token
    /// ([`introspection_values`]), when the instance takes any and a token came.
    pub introspection_values: Option<&'r ClientValues>,
    /// What the request offers for a DPoP check, when `proof_of_possession_dpop` is on
    /// and a token came.
    pub dpop: Option<DpopInput<'r>>,
    /// The SHA-256 thumbprint of the certificate the caller presented in the TLS
    /// handshake of its connection, when it presented one.
    pub client_cert: Option<&'r [u8; 32]>,
}

/// The parts of a request a DPoP proof is checked against (RFC 9449 §7.1).
#[derive(Clone, Copy)]
pub struct DpopInput<'r> {
    /// The token came as `Authorization: DPoP <token>`.
    pub dpop_scheme: bool,
    /// The `DPoP` header, when the request has exactly one.
    pub proof: Option<&'r [u8]>,
    /// The method, the scheme it arrived over (`http` or `https`), `Host`, and the
    /// request target's path (with its query, which the check ignores).
    pub method: &'r [u8],
    pub scheme: &'static str,
    pub host: &'r [u8],
    pub path: &'r [u8],
}

impl fmt::Debug for DpopInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopInput")
            .field("dpop_scheme", &self.dpop_scheme)
            .field("proof", &self.proof.map(|p| format!("<{} bytes>", p.len())))
            .field("method", &self.method.escape_ascii().to_string())
            .field("scheme", &self.scheme)
            .finish()
    }
}

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: Option<&[u8]>| v.map(|v| format!("<{} bytes>", v.len()));
        f.debug_struct("Sources")
            .field("authorization", &shown(self.authorization))
            .field("grant_type", &self.grant_type.map(<[u8]>::escape_ascii).map(|e| e.to_string()))
            .field("x_grant_type", &self.x_grant_type.map(<[u8]>::escape_ascii).map(|e| e.to_string()))
            .field("query", &shown(self.query))
            .field("content_type", &self.content_type.map(<[u8]>::escape_ascii).map(|e| e.to_string()))
            .field("body", &shown(self.body))
            .field("dpop", &self.dpop)
            .finish()
    }
}

/// Tries `order` (the plugin's `client_credentials_param_type`) and returns the first
/// location's credentials. An over-long credential stops the search: the caller sent
/// credentials we refuse, which is not the same as sending none there.
pub fn find<'b>(
    sources: &Sources<'_>,
    order: &[Location],
    buf: &'b mut CredentialBuf,
) -> Result<Option<Credentials<'b>>, CredentialsError> {
    for &location in order {
        let span = match location {
            Location::Header => match sources.authorization {
                Some(v) if !header_location_disabled(sources.grant_type, sources.x_grant_type) => {
                    authorization_span(v, buf)?
                }
                _ => None,
            },
            Location::Query => match sources.query {
                Some(q) => form_span(q, buf)?,
                None => None,
            },
            Location::Body => match (sources.content_type, sources.body) {
                (Some(ct), Some(body)) => body_span(ct, body, buf)?,
                _ => None,
            },
        };
        if let Some(span) = span {
            return Ok(Some(span.credentials(buf, location)));
        }
    }
    Ok(None)
}

/// Where in a [`CredentialBuf`] an extractor left the id and the secret. Extractors
/// return spans rather than slices so [`find`] can retry with the same buffer.
struct Span {
    id_len: usize,
    secret: std::ops::Range<usize>,
}

impl Span {
    fn credentials(self, buf: &CredentialBuf, location: Location) -> Credentials<'_> {
        Credentials { id: &buf.0[..self.id_len], secret: &buf.0[self.secret], location }
    }
}

/// Reads `Authorization: Basic …` (the header's value, as sent).
pub fn from_authorization<'b>(
    value: &[u8],
    buf: &'b mut CredentialBuf,
) -> Result<Option<Credentials<'b>>, CredentialsError> {
    Ok(authorization_span(value, buf)?.map(|s| s.credentials(buf, Location::Header)))
}

fn authorization_span(value: &[u8], buf: &mut CredentialBuf) -> Result<Option<Span>, CredentialsError> {
    let Some(rest) = strip_basic_scheme(value) else { return Ok(None) };
    let token = trim_ows(rest);
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > CREDENTIAL_BUF_LEN {
        return Err(CredentialsError::TooLong);
    }
    // Decoded base64 is shorter than its text, so a token that fits also fits decoded.
    let len = match LENIENT_STANDARD.decode_slice(token, &mut buf.0) {
        Ok(n) => n,
        Err(_) => {
            // Kong: "if base64 decoding fails the raw string is used".
            buf.0[..token.len()].copy_from_slice(token);
            token.len()
        }
    };
    let decoded = &buf.0[..len];
    match decoded.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => Ok(Some(Span { id_len: colon, secret: colon + 1..len })),
        _ => Ok(None),
    }
}

/// `basic` (any case) followed by at least one space; returns what follows the spaces.
fn strip_basic_scheme(value: &[u8]) -> Option<&[u8]> {
    let value = trim_ows(value);
    if value.len() < 6 || !value[..5].eq_ignore_ascii_case(b"basic") || value[5] != b' ' {
        return None;
    }
    let rest = &value[5..];
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    Some(&rest[start..])
}

/// True when a `Grant-Type` header (or, without one, `X-Grant-Type`) is present,
/// non-empty and not `client_credentials`: the caller means another grant, so the
/// `Authorization` header is not read as client credentials (Kong does the same).
pub fn header_location_disabled(grant_type: Option<&[u8]>, x_grant_type: Option<&[u8]>) -> bool {
    fn non_empty(v: Option<&[u8]>) -> Option<&[u8]> {
        v.map(trim_ows).filter(|v| !v.is_empty())
    }
    match non_empty(grant_type).or_else(|| non_empty(x_grant_type)) {
        Some(v) => v != CLIENT_CREDENTIALS,
        None => false,
    }
}

/// Reads `client_id` / `client_secret` (and checks `grant_type`) in a raw query string,
/// `a=b&c=d` without the leading `?`.
pub fn from_query<'b>(query: &[u8], buf: &'b mut CredentialBuf) -> Result<Option<Credentials<'b>>, CredentialsError> {
    Ok(form_span(query, buf)?.map(|s| s.credentials(buf, Location::Query)))
}

/// Reads `client_id` / `client_secret` from a form or JSON body, chosen by the
/// `Content-Type` value (prefix match, any case; form is tried first, as in Kong).
/// Any other content type yields nothing.
pub fn from_body<'b>(
    content_type: &[u8],
    body: &[u8],
    buf: &'b mut CredentialBuf,
) -> Result<Option<Credentials<'b>>, CredentialsError> {
    Ok(body_span(content_type, body, buf)?.map(|s| s.credentials(buf, Location::Body)))
}

/// Whether a `Content-Type` value names an `application/x-www-form-urlencoded` body.
pub fn is_form(content_type: &[u8]) -> bool {
    starts_with_ignore_case(trim_ows(content_type), b"application/x-www-form-urlencoded")
}

/// Whether a `Content-Type` value names an `application/json` body.
pub fn is_json(content_type: &[u8]) -> bool {
    starts_with_ignore_case(trim_ows(content_type), b"application/json")
}

fn body_span(content_type: &[u8], body: &[u8], buf: &mut CredentialBuf) -> Result<Option<Span>, CredentialsError> {
    let ct = trim_ows(content_type);
    if is_form(ct) {
        form_span(body, buf)
    } else if is_json(ct) {
        json_span(body, buf)
    } else {
        Ok(None)
    }
}

fn starts_with_ignore_case(v: &[u8], prefix: &[u8]) -> bool {
    v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// First raw (still encoded) value of each name we read; `Some(b"")` for `name=` or a
/// bare `name`.
#[derive(Default)]
struct FormFields<'q> {
    client_id: Option<&'q [u8]>,
    client_secret: Option<&'q [u8]>,
    grant_type: Option<&'q [u8]>,
}

fn form_span(form: &[u8], buf: &mut CredentialBuf) -> Result<Option<Span>, CredentialsError> {
    let mut fields = FormFields::default();
    for pair in form.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let slot = if form_decoded_eq(name, b"client_id") {
            &mut fields.client_id
        } else if form_decoded_eq(name, b"client_secret") {
            &mut fields.client_secret
        } else if form_decoded_eq(name, b"grant_type") {
            &mut fields.grant_type
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    // A non-empty raw value decodes to a non-empty value, so emptiness is checked raw.
    if let Some(grant) = fields.grant_type.filter(|g| !g.is_empty()) {
        if !form_decoded_eq(grant, CLIENT_CREDENTIALS) {
            return Ok(None);
        }
    }
    let (Some(id), Some(secret)) = (fields.client_id, fields.client_secret) else { return Ok(None) };
    if id.is_empty() || secret.is_empty() {
        return Ok(None);
    }
    let id_len = form_decode_into(id, &mut buf.0).ok_or(CredentialsError::TooLong)?;
    let secret_len = form_decode_into(secret, &mut buf.0[id_len..]).ok_or(CredentialsError::TooLong)?;
    Ok(Some(Span { id_len, secret: id_len..id_len + secret_len }))
}

/// The bytes an `application/x-www-form-urlencoded` component decodes to (WHATWG URL
/// §5.1): `+` is a space, `%XX` is a byte, a `%` not followed by two hex digits is
/// itself.
pub(crate) struct FormDecode<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Iterator for FormDecode<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.raw.get(self.pos)?;
        self.pos += 1;
        match b {
            b'+' => Some(b' '),
            b'%' => {
                let hi = self.raw.get(self.pos).and_then(|&h| crate::http::hex_value(h));
                let lo = self.raw.get(self.pos + 1).and_then(|&l| crate::http::hex_value(l));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        self.pos += 2;
                        Some(hi << 4 | lo)
                    }
                    _ => Some(b'%'),
                }
            }
            _ => Some(b),
        }
    }
}

/// What the caller sent for `token_post_args_client` and `token_headers_client` (or for
/// the introspection request's `introspection_post_args_client[_headers]` and
/// `introspection_headers_client`): the index of each configured name that had a value,
/// and the value. `Debug` shows counts only (a value may be anything the caller chose
/// to send).
#[derive(Default, Clone, PartialEq, Eq)]
pub struct ClientValues {
    pub post: Vec<(usize, Box<[u8]>)>,
    pub headers: Vec<(usize, Box<[u8]>)>,
}

impl ClientValues {
    pub fn is_empty(&self) -> bool {
        self.post.is_empty() && self.headers.is_empty()
    }

    /// The values framed for the token cache key, so that callers with the same
    /// credentials but different values never share a token: each entry is its kind,
    /// its name's index and its length-prefixed value.
    pub fn key_input(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, entries) in [(b'p', &self.post), (b'h', &self.headers)] {
            for (index, value) in entries {
                out.push(kind);
                out.extend_from_slice(&(*index as u32).to_le_bytes());
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                out.extend_from_slice(value);
            }
        }
        out
    }
}

impl fmt::Debug for ClientValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientValues").field("post", &self.post.len()).field("headers", &self.headers.len()).finish()
    }
}

/// Where a post argument the caller fills in is read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgFrom {
    /// The query, then a form body.
    Arguments,
    /// The request header of that name.
    Header,
    /// The query, then a form body, then the request header of that name.
    ArgumentsThenHeader,
}

/// Reads `token_post_args_client` and `token_headers_client` from the request, as Kong
/// does: a post argument from the query, then a form body, then a request header of that
/// name; a header from the request's headers. The first non-empty value wins. `header`
/// looks a header up by name without regard to ASCII case. Only instances that take
/// such values pay for this: a copy of each value found, per request.
pub fn client_values<'h>(
    post_names: &[String],
    header_names: &[String],
    sources: &Sources<'_>,
    header: impl Fn(&str) -> Option<&'h [u8]>,
) -> ClientValues {
    let post = post_names.iter().map(|n| (n.as_str(), ArgFrom::ArgumentsThenHeader));
    caller_values(post, header_names, sources, header)
}

/// Reads what the caller adds to the introspection of its own token, as Kong does:
/// `introspection_post_args_client` from the query, then a form body;
/// `introspection_post_args_client_headers` and `introspection_headers_client` from the
/// request's headers. Indexes are into `args` and `header_names`; the rest as
/// [`client_values`].
pub fn introspection_values<'h>(
    args: &[CallerArg],
    header_names: &[String],
    sources: &Sources<'_>,
    header: impl Fn(&str) -> Option<&'h [u8]>,
) -> ClientValues {
    let post = args.iter().map(|a| (a.name.as_str(), if a.from_header { ArgFrom::Header } else { ArgFrom::Arguments }));
    caller_values(post, header_names, sources, header)
}

fn caller_values<'a, 'h>(
    post: impl Iterator<Item = (&'a str, ArgFrom)>,
    header_names: &[String],
    sources: &Sources<'_>,
    header: impl Fn(&str) -> Option<&'h [u8]>,
) -> ClientValues {
    let form_body = sources.body.filter(|_| sources.content_type.is_some_and(is_form));
    let from_header = |name: &str| header(name).filter(|v| !v.is_empty()).map(Box::from);
    let post = post.enumerate().filter_map(|(i, (name, from))| {
        let from_arguments = || {
            sources
                .query
                .and_then(|q| form_value(q, name.as_bytes()))
                .or_else(|| form_body.and_then(|b| form_value(b, name.as_bytes())))
                .map(Vec::into_boxed_slice)
        };
        let value = match from {
            ArgFrom::Arguments => from_arguments(),
            ArgFrom::Header => from_header(name),
            ArgFrom::ArgumentsThenHeader => from_arguments().or_else(|| from_header(name)),
        };
        value.map(|v| (i, v))
    });
    let headers = header_names.iter().enumerate().filter_map(|(i, name)| from_header(name).map(|v| (i, v)));
    ClientValues { post: post.collect(), headers: headers.collect() }
}

/// The first non-empty value of the field `name` in a form (or query string without its
/// `?`), decoded. For the `bearer` method's `access_token` argument; allocates, as that
/// path is rare.
pub fn form_value(form: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    form.split(|&c| c == b'&')
        .filter_map(|pair| {
            let (n, v) = match pair.iter().position(|&c| c == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            form_decoded_eq(n, name).then(|| form_decode(v).collect::<Vec<u8>>())
        })
        .find(|v| !v.is_empty())
}

/// The value of the cookie `name` in the request's `Cookie` header lines (RFC 6265
/// §4.2.1: `name=value` pairs separated by `;`), first occurrence, with surrounding
/// double quotes removed; `None` when absent or empty. For the `bearer` method's cookie
/// location.
pub fn cookie_value<'a>(lines: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
    let value = lines.flat_map(|v| v.split(|&c| c == b';')).find_map(|pair| {
        let eq = pair.iter().position(|&c| c == b'=')?;
        (trim_ows(&pair[..eq]) == name).then(|| trim_ows(&pair[eq + 1..]))
    })?;
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    (!value.is_empty()).then_some(value)
}

/// The caller's own token for the `bearer` method, from the first of `order` that has
/// one: the headers of `from_headers` (`Authorization: Bearer <token>`, scheme in any
/// case, then each named header's bare value, which `header` looks up), the
/// `access_token` query argument, a form or JSON body's `access_token`, or the cookie
/// `cookie_name` (from the request's `Cookie` lines, which `cookies` yields when asked).
/// A token in a header or a cookie is borrowed as sent; one from arguments is decoded,
/// so copied.
pub fn find_bearer<'r, I>(
    sources: &Sources<'r>,
    order: &[BearerLocation],
    from_headers: BearerHeaders<'_>,
    header: impl Fn(&str) -> Option<&'r [u8]>,
    cookie_name: &[u8],
    cookies: impl Fn() -> I,
) -> Option<Cow<'r, [u8]>>
where
    I: Iterator<Item = &'r [u8]>,
{
    order.iter().find_map(|location| match location {
        BearerLocation::Header => from_headers
            .authorization
            .then(|| sources.authorization.and_then(|v| authorization_token(v, from_headers.dpop)))
            .flatten()
            .map(Cow::Borrowed)
            .or_else(|| {
                from_headers.names.iter().find_map(|name| {
                    let v = trim_ows(header(name)?);
                    (!v.is_empty()).then_some(Cow::Borrowed(v))
                })
            }),
        BearerLocation::Query => sources.query.and_then(|q| form_value(q, b"access_token")).map(Cow::Owned),
        BearerLocation::Body => match (sources.body, sources.content_type) {
            (Some(b), Some(ct)) if is_form(ct) => form_value(b, b"access_token").map(Cow::Owned),
            (Some(b), Some(ct)) if is_json(ct) => json_access_token(b).map(Cow::Owned),
            _ => None,
        },
        BearerLocation::Cookie => cookie_value(cookies(), cookie_name).map(Cow::Borrowed),
    })
}

/// The headers the `header` location of [`find_bearer`] reads: `Authorization: Bearer`
/// when `authorization` (and `Authorization: DPoP` when `dpop`), then the bare value of
/// each of `names` (lower-case).
#[derive(Debug, Clone, Copy)]
pub struct BearerHeaders<'c> {
    pub authorization: bool,
    pub dpop: bool,
    pub names: &'c [String],
}

/// The token of an `Authorization` value: `Bearer <token>`, or `DPoP <token>` when
/// `dpop` (schemes in any case); `None` for another scheme.
pub fn authorization_token(value: &[u8], dpop: bool) -> Option<&[u8]> {
    scheme_token(value, b"bearer ").or_else(|| dpop.then(|| dpop_token(value)).flatten())
}

/// The token of an `Authorization: DPoP <token>` value; `None` for another scheme.
pub fn dpop_token(value: &[u8]) -> Option<&[u8]> {
    scheme_token(value, b"dpop ")
}

/// What follows `scheme` (lower case, with its space; matched in any case) in `value`,
/// without surrounding white space, when something does.
fn scheme_token<'v>(value: &'v [u8], scheme: &[u8]) -> Option<&'v [u8]> {
    let n = scheme.len();
    (value.len() > n && value[..n].eq_ignore_ascii_case(scheme)).then(|| trim_ows(&value[n..]))
}

/// The `access_token` member of a JSON object body, for the `bearer` method, read by the
/// same rules as the credentials ([`JsonFields`]: first occurrence, escapes decoded);
/// `None` when the body is not an object, or the member is absent, empty or not a
/// string. Copies the body (rare path).
pub fn json_access_token(body: &[u8]) -> Option<Vec<u8>> {
    if !super::hide::json_is_strippable(body) {
        return None;
    }
    let mut owned = body.to_vec();
    let fields: JsonFields<'_> = crate::jose::parse_serde(&mut owned).ok()?;
    fields.access_token.filter(|t| !t.is_empty()).map(|t| t.as_bytes().to_vec())
}

pub(crate) fn form_decode(raw: &[u8]) -> FormDecode<'_> {
    FormDecode { raw, pos: 0 }
}

/// Whether a form-encoded name decodes to `want`.
pub(super) fn form_decoded_eq(raw: &[u8], want: &[u8]) -> bool {
    form_decode(raw).eq(want.iter().copied())
}

/// Decodes `raw` into the front of `out`; `None` when it does not fit.
fn form_decode_into(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for b in form_decode(raw) {
        *out.get_mut(n)? = b;
        n += 1;
    }
    Some(n)
}

fn json_span(body: &[u8], buf: &mut CredentialBuf) -> Result<Option<Span>, CredentialsError> {
    // First the scanner `hide` strips bodies with: it bounds the nesting, which simd-json's
    // serde visitors would recurse through until the stack overflowed.
    if !super::hide::json_is_strippable(body) {
        return Ok(None);
    }
    // simd-json parses in place, so it gets its own copy; this path is rare.
    let mut owned = body.to_vec();
    let Ok(JsonFields { client_id, client_secret, grant_type, .. }) = crate::jose::parse_serde(&mut owned) else {
        return Ok(None);
    };
    if let Some(grant) = grant_type.filter(|g| !g.is_empty()) {
        if grant.as_bytes() != CLIENT_CREDENTIALS {
            return Ok(None);
        }
    }
    let (Some(id), Some(secret)) = (client_id, client_secret) else { return Ok(None) };
    let (id, secret) = (id.as_bytes(), secret.as_bytes());
    if id.is_empty() || secret.is_empty() {
        return Ok(None);
    }
    let total = id.len() + secret.len();
    if total > CREDENTIAL_BUF_LEN {
        return Err(CredentialsError::TooLong);
    }
    buf.0[..id.len()].copy_from_slice(id);
    buf.0[id.len()..total].copy_from_slice(secret);
    Ok(Some(Span { id_len: id.len(), secret: id.len()..total }))
}

/// The members read from a JSON body, first occurrence of each; a member whose value is
/// not a string is kept as `""` (present, counts as absent). A body that is not an
/// object has none of them.
#[derive(Default)]
struct JsonFields<'de> {
    client_id: Option<Cow<'de, str>>,
    client_secret: Option<Cow<'de, str>>,
    grant_type: Option<Cow<'de, str>>,
    /// The `bearer` method's token ([`json_access_token`]).
    access_token: Option<Cow<'de, str>>,
}

/// Any JSON value, reduced to its text when it is a string. simd-json lends strings
/// (escapes decoded in place), so nothing is copied; other deserializers may hand over
/// a copy.
struct JsonScalar<'de>(Option<Cow<'de, str>>);

impl<'de> serde::Deserialize<'de> for JsonScalar<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonScalarVisitor)
    }
}

struct JsonScalarVisitor;

impl<'de> Visitor<'de> for JsonScalarVisitor {
    type Value = JsonScalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JsonScalar(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JsonScalar(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(JsonScalar(Some(Cow::Owned(v))))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonScalar(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonScalar(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonScalar(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonScalar(None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JsonScalar(None))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(JsonScalar(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonScalar(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JsonScalar(None))
    }
}

impl<'de> serde::Deserialize<'de> for JsonFields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only an object yields fields; any other value is consumed and yields none.
        d.deserialize_any(JsonFieldsVisitor)
    }
}

struct JsonFieldsVisitor;

impl<'de> Visitor<'de> for JsonFieldsVisitor {
    type Value = JsonFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = JsonFields::default();
        while let Some(JsonScalar(key)) = map.next_key::<JsonScalar<'de>>()? {
            let slot = match key.as_deref() {
                Some("client_id") => &mut fields.client_id,
                Some("client_secret") => &mut fields.client_secret,
                Some("grant_type") => &mut fields.grant_type,
                Some("access_token") => &mut fields.access_token,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let JsonScalar(value) = map.next_value::<JsonScalar<'de>>()?;
            if slot.is_none() {
                *slot = Some(value.unwrap_or(Cow::Borrowed("")));
            }
        }
        Ok(fields)
    }
    // Anything but an object: consumed, no fields.
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JsonFields::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonFields::default())
    }
}

/// Appends `bytes` encoded per the `application/x-www-form-urlencoded` serializer
/// (WHATWG URL §5.2): ASCII alphanumerics and `*-._` as they are, space as `+`, every
/// other byte as `%XX` (upper-case hex).
pub fn push_form_encoded(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0x0f)] as char);
            }
        }
    }
}

/// Appends `name=value` (both form-encoded), preceded by `&` unless `out` is empty.
pub fn push_form_pair(out: &mut String, name: &[u8], value: &[u8]) {
    if !out.is_empty() {
        out.push('&');
    }
    push_form_encoded(out, name);
    out.push('=');
    push_form_encoded(out, value);
}

/// The `Authorization` header value for `client_secret_basic` (RFC 6749 §2.3.1):
/// `Basic base64(urlencode(id) ":" urlencode(secret))`. The form-encoding step is what
/// keeps a `:` in the id, or `+`, `=`, `&`, `/`, a space in the secret, intact at the IdP.
/// (Kong skips that step; an IdP that follows the RFC decodes what we send correctly.)
pub fn encode_client_secret_basic(id: &[u8], secret: &[u8]) -> String {
    let mut joined = String::with_capacity(3 * (id.len() + secret.len()) + 1);
    push_form_encoded(&mut joined, id);
    joined.push(':');
    push_form_encoded(&mut joined, secret);
    let mut value = String::with_capacity(6 + joined.len().div_ceil(3) * 4);
    value.push_str("Basic ");
    STANDARD.encode_string(joined.as_bytes(), &mut value);
    value
}

/// The form body of a `client_secret_post` token request (RFC 6749 §2.3.1, §4.4.2):
/// `grant_type=client_credentials&client_id=…&client_secret=…[&scope=…]`, every value
/// form-encoded. Extra `token_post_args` are appended with [`push_form_pair`].
pub fn encode_client_secret_post(id: &[u8], secret: &[u8], scope: Option<&[u8]>) -> String {
    let mut body = String::with_capacity(64 + 3 * (id.len() + secret.len() + scope.map_or(0, <[u8]>::len)));
    push_form_pair(&mut body, b"grant_type", CLIENT_CREDENTIALS);
    push_form_pair(&mut body, b"client_id", id);
    push_form_pair(&mut body, b"client_secret", secret);
    if let Some(scope) = scope {
        push_form_pair(&mut body, b"scope", scope);
    }
    body
}

#[cfg(test)]
mod tests;
