//! The IdP client: discovery, key sets and token endpoint calls.
//!
//! Place: the control plane thread only (tokio + reqwest); workers never talk to the IdP.
//! One [`IdpClient`] per distinct set of client options (timeout, TLS verification,
//! proxies), shared by the plugin instances that use the same options.
//!
//! Invariants:
//! - Every call is bounded by the configured timeout (Kong's `timeout`, 10 s by default,
//!   applied to connect and to the whole exchange).
//! - Proxies come from the plugin's `http_proxy` / `https_proxy` / `no_proxy` only; the
//!   process environment's proxy variables are ignored, as Kong's plugin ignores them.
//! - Redirects are not followed: a token endpoint that redirects is misconfigured, and
//!   following it would carry the caller's credentials to another place.
//! - TLS is rustls with the ring provider; verification is on unless the plugin says
//!   `ssl_verify: false`. Errors carry the host and a reason, never a URL query, a
//!   secret or a token.
//! - An answer that is not what the protocol says (non-JSON, wrong types, missing
//!   `access_token`, a `token_type` other than bearer) is an [`IdpError::Invalid`], not
//!   a panic. So is a body past [`MAX_BODY`]: what an IdP can make the control plane
//!   buffer is bounded in size as well as in time.

use std::time::Duration;

use serde::Deserialize;

use crate::oidc::config::IntrospectionAccept;

/// The most of an answer's body that is read: far above any discovery document, key set
/// or token response.
pub const MAX_BODY: usize = 1024 * 1024;

/// How the IdP is reached, from the plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClientOptions {
    /// Connect timeout and the bound on a whole exchange.
    pub timeout: Duration,
    /// Verify the IdP's certificate (ringgate's default; Kong's default is false).
    pub ssl_verify: bool,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    /// Kong's comma-separated `no_proxy` list.
    pub no_proxy: Option<String>,
    /// Extra trust anchors (PEM) for a private IdP.
    pub extra_ca_pem: Option<std::sync::Arc<[u8]>>,
}

/// Why an IdP call failed. [`IdpError::is_outage`] separates "the IdP could not answer"
/// (503 with Retry-After downstream) from "the IdP answered no".
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// Connection refused, reset, DNS failure, TLS failure.
    #[error("cannot reach the IdP at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// No complete answer within the timeout.
    #[error("the IdP at {host} did not answer in time")]
    Timeout { host: String },
    /// The IdP answered with an unexpected status (5xx here is an outage; 4xx on the
    /// token endpoint is a verdict on the credentials, see [`TokenOutcome`]).
    #[error("the IdP at {host} answered {status}")]
    Status { host: String, status: u16 },
    /// The IdP answered, but not with what the protocol requires.
    #[error("the IdP at {host} sent an invalid {what}: {reason}")]
    Invalid { host: String, what: &'static str, reason: String },
    /// The options cannot make a client (a bad proxy URL, an unreadable CA file).
    #[error("IdP client configuration: {0}")]
    Config(String),
}

impl IdpError {
    /// Whether this failure means the IdP is down or misbehaving rather than having
    /// judged the request.
    pub fn is_outage(&self) -> bool {
        match self {
            IdpError::Unreachable { .. } | IdpError::Timeout { .. } | IdpError::Invalid { .. } => true,
            IdpError::Status { status, .. } => *status >= 500 || *status == 429,
            IdpError::Config(_) => false,
        }
    }
}

/// Whether `s` is an `http` or `https` URL in visible ASCII other than `"` and `\`:
/// nothing that could end a header or log line, or the quoted realm it becomes. (Not
/// RFC 3986's characters alone: Microsoft's multi-tenant discovery answers with a
/// literal `{tenantid}` in its issuer.)
fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    (lower.starts_with("http://") || lower == "https://")
        && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// The parts of an OpenID Provider configuration document (OpenID Connect Discovery 1.0
/// §3, RFC 8414 §2) the plugin uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// What an introspection call came to. `Debug` shows a signed answer's length only: its
/// claims may carry personal data, as [`crate::jose::Claims`]' `Debug` keeps them out.
pub enum Introspected {
    /// The IdP's answer (RFC 7662 §2.2), active or not.
    Answered(crate::jose::Claims<'static>),
    /// A signed answer (a signed `accept` asked for one): the compact JWS as sent, not yet
    /// verified.
    Signed(String),
    /// The IdP refused the plugin's client (400, 401 or 403).
    Refused { status: u16 },
}

impl std::fmt::Debug for Introspected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Introspected::Answered(claims) => f.debug_tuple("Answered").field(claims).finish(),
            Introspected::Signed(jws) => write!(f, "Signed(<{} bytes>)", jws.len()),
            Introspected::Refused { status } => f.debug_struct("Refused").field("status", status).finish(),
        }
    }
}

/// A successful token endpoint answer (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    /// The answer's headers named in the call's `replay` list (lower-case name, value).
    pub replayed: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// What a token endpoint call came to.
#[derive(Debug)]
pub enum TokenOutcome {
    Issued(TokenResponse),
    /// The IdP refused the credentials or the request (RFC 6749 §5.2: 400 or 401 with
    /// an `error` code). Downstream this is a 401.
    Rejected {
        status: u16,
        error: Option<String>,
    },
}

#[derive(Deserialize)]
struct RawToken {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json_number::Number>,
    scope: Option<String>,
}

/// `expires_in` arrives as a JSON number; some IdPs send it as a string. Both are read,
/// anything else is an invalid answer.
mod serde_json_number {
    use serde::{Deserialize, Deserializer};

    pub enum Number {
        Int(i64),
        Text(String),
    }

    impl<'de> Deserialize<'de> for Number {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Raw {
                Int(i64),
                Float(f64),
                Text(String),
            }
            Ok(match Raw::deserialize(d)? {
                Raw::Int(i) => Number::Int(i),
                Raw::Float(f) => Number::Int(f as i64),
                Raw::Text(s) => Number::Text(s),
            })
        }
    }
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
}

/// Refuses an answer nested past [`crate::jose::MAX_JSON_DEPTH`] before simd-json reads
/// it: its recursive value building and member skipping would overflow the stack.
fn depth_ok(body: &[u8]) -> Result<(), simd_json::Error> {
    if crate::jose::json_depth_ok(body) {
        Ok(())
    } else {
        Err(simd_json::Error::generic(simd_json::ErrorType::Serde("json nested too deeply".into())))
    }
}

/// An IdP answer read as `T`, after the nesting check every answer goes through.
fn from_answer<'a, T: serde::Deserialize<'a>>(body: &'a mut [u8]) -> Result<T, simd_json::Error> {
    depth_ok(body)?;
    crate::jose::parse_serde(body)
}

/// The host of a URL, for error messages (no path, no query).
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "<invalid url>".into())
}

/// Installs ring as the process's rustls crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for one set of [`ClientOptions`].
#[derive(Clone)]
pub struct IdpClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl IdpClient {
    pub fn new(opts: &ClientOptions) -> Result<IdpClient, IdpError> {
        install_crypto_provider();
        let timeout = if opts.timeout.is_zero() { Duration::from_secs(10) } else { opts.timeout };
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .http1_only()
            .user_agent(concat!("ringgate/", env!("CARGO_PKG_VERSION")))
            .tls_danger_accept_invalid_certs(!opts.ssl_verify);
        let no_proxy = opts.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
        if let Some(p) = &opts.http_proxy {
            let proxy = reqwest::Proxy::http(p).map_err(|e| IdpError::Config(format!("http_proxy: {e}")))?;
            b = b.proxy(proxy.no_proxy(no_proxy.clone()));
        }
        if let Some(p) = &opts.https_proxy {
            let proxy = reqwest::Proxy::https(p).map_err(|e| IdpError::Config(format!("https_proxy: {e}")))?;
            b = b.proxy(proxy.no_proxy(no_proxy));
        }
        if let Some(pem) = &opts.extra_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| IdpError::Config(format!("CA certificates: {e}")))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        let http = b.build().map_err(|e| IdpError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(IdpClient { http, timeout })
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> IdpError {
        let host = host_of(url);
        if e.is_timeout() {
            return IdpError::Timeout { host };
        }
        // The innermost cause names what went wrong (refused, TLS, DNS) without the URL.
        let e = e.without_url();
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        IdpError::Unreachable { host, reason }
    }

    /// GETs `url` and returns the body of a 200 answer.
    pub async fn get(&self, url: &str, extra_headers: &[(String, String)]) -> Result<Vec<u8>, IdpError> {
        let mut req = self.http.get(url).header("accept", "application/json");
        for (k, v) in extra_headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(url, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(IdpError::Status { host: host_of(url), status });
        }
        self.body(url, resp).await
    }

    /// Reads an answer's body, refusing one longer than [`MAX_BODY`].
    async fn body(&self, url: &str, mut resp: reqwest::Response) -> Result<Vec<u8>, IdpError> {
        let too_large = || IdpError::Invalid {
            host: host_of(url),
            what: "answer",
            reason: format!("the body is larger than {} KiB", MAX_BODY / 1024),
        };
        let announced = resp.content_length().unwrap_or(0);
        if announced > MAX_BODY as u64 {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(announced as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(url, e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Fetches and parses the discovery document at `url`.
    pub async fn discovery(&self, url: &str, extra_headers: &[(String, String)]) -> Result<Discovery, IdpError> {
        let mut body = self.get(url, extra_headers).await?;
        let invalid = |reason: String| IdpError::Invalid { host: host_of(url), what: "discovery document", reason };
        let d = from_answer::<Discovery>(&mut body).map_err(|e| invalid(e.to_string()))?;
        if !is_http_url(&d.issuer) {
            // The issuer's host is the realm of every `WWW-Authenticate` the plugin
            // writes, and the issuer goes into log lines: CR LF there would add headers
            // and lines of the IdP's choosing.
            return Err(invalid("issuer is not an http(s) URL in visible ASCII without quotes".into()));
        }
        Ok(d)
    }

    /// POSTs a form to `endpoint` asking for `accept` unless `headers` name another
    /// `Accept` (one `Accept` either way): the status, the answer's headers named in
    /// `keep` (lower-case names), and the whole body.
    async fn post_form(
        &self,
        endpoint: &str,
        form: String,
        headers: &[(String, String)],
        keep: &[String],
        accept: &str,
    ) -> Result<(u16, Vec<(String, Vec<u8>)>, Vec<u8>), IdpError> {
        let mut req = self
            .http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(form);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept")) {
            req = req.header("accept", accept);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(endpoint, e))?;
        let status = resp.status().as_u16();
        let kept = keep
            .iter()
            .flat_map(|name| {
                resp.headers().get_all(name.as_str()).iter().map(move |v| (name.clone(), v.as_bytes().to_vec()))
            })
            .collect();
        Ok((status, kept, self.body(endpoint, resp).await?))
    }

    /// POSTs a form-encoded token request. `form` is the encoded body (it carries the
    /// caller's credentials for client_secret_post: never log it).
    pub async fn token(
        &self,
        endpoint: &str,
        form: String,
        headers: &[(String, String)],
        replay: &[String],
    ) -> Result<TokenOutcome, IdpError> {
        let (status, replayed, mut body) = self.post_form(endpoint, form, headers, replay, "application/json").await?;
        let host = || host_of(endpoint);
        match status {
            200 => {}
            400 | 401 | 403 => {
                let error = from_answer::<RawError>(&mut body).ok().and_then(|e| e.error);
                return Ok(TokenOutcome::Rejected { status, error });
            }
            _ => return Err(IdpError::Status { host: host(), status }),
        }
        let invalid = |reason: String| IdpError::Invalid { host: host(), what: "token response", reason };
        let raw: RawToken = from_answer(&mut body).map_err(|e| invalid(e.to_string()))?;
        let access_token =
            raw.access_token.filter(|t| !t.is_empty()).ok_or_else(|| invalid("no access_token".into()))?;
        if !crate::oidc::cache::token_is_printable(access_token.as_bytes()) {
            // Written into a header, CR LF would start a line of the IdP's choosing.
            return Err(invalid("access_token holds characters other than printable ASCII (RFC 6749 A.12)".into()));
        }
        if let Some(tt) = &raw.token_type {
            // RFC 6749 §7.1: the type is case-insensitive; only bearer is forwardable.
            if !tt.eq_ignore_ascii_case("bearer") {
                return Err(invalid(format!("token_type {tt:?} is not bearer")));
            }
        }
        let expires_in = match raw.expires_in {
            None => None,
            Some(serde_json_number::Number::Int(i)) => Some(i),
            Some(serde_json_number::Number::Text(s)) => {
                Some(s.trim().parse::<i64>().map_err(|_| invalid("expires_in is not a number".into()))?)
            }
        };
        Ok(TokenOutcome::Issued(TokenResponse { access_token, expires_in, scope: raw.scope, replayed }))
    }

    /// POSTs a form-encoded RFC 7662 introspection request. `form` carries the token
    /// (and, for client_secret_post, the plugin's secret): never log it.
    pub async fn introspect(
        &self,
        endpoint: &str,
        form: String,
        headers: &[(String, String)],
        accept: IntrospectionAccept,
    ) -> Result<Introspected, IdpError> {
        let (status, _, mut body) = self.post_form(endpoint, form, headers, &[], accept.media_type()).await?;
        match status {
            200 => {}
            400 | 401 | 403 => return Ok(Introspected::Refused { status }),
            _ => return Err(IdpError::Status { host: host_of(endpoint), status }),
        }
        let invalid =
            |reason: String| IdpError::Invalid { host: host_of(endpoint), what: "introspection answer", reason };
        if accept.signed() {
            // A compact JWS is printable ASCII; anything else (a JSON answer among it) is
            // not the signed answer asked for.
            let text = std::str::from_utf8(&body).map(str::trim).unwrap_or("");
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) || text.starts_with('{') {
                return Err(invalid("a signed answer was asked for; this is not a compact JWS".into()));
            }
            return Ok(Introspected::Signed(text.to_string()));
        }
        let answer =
            depth_ok(&body).and_then(|()| crate::jose::parse_owned(&mut body)).map_err(|e| invalid(e.to_string()))?;
        crate::jose::Claims::from_introspection(answer)
            .map(Introspected::Answered)
            .ok_or_else(|| invalid("not a JSON object".into()))
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Serves `count` connections on a fresh port: reads each request head, then lets
    /// `answer` write (or stop writing once the client goes away). The URL to ask.
    fn serve(count: usize, answer: impl Fn(&mut std::net::TcpStream) + Send + 'static) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for _ in 0..count {
                let Ok((mut s, _)) = listener.accept() else { return };
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                answer(&mut s);
            }
        });
        format!("http://{addr}/idp")
    }

    /// One connection answered with `head` and then `body_len` bytes of `x`.
    fn serve_once(head: &'static str, body_len: usize) -> String {
        serve(1, move |s| {
            let _ = s.write_all(head.as_bytes());
            let chunk = [b'x'; 64 * 1024];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
        })
    }

    /// `count` connections, each answered 200 with the JSON `body`.
    fn serve_json(body: String, count: usize) -> String {
        serve(count, move |s| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes()));
        })
    }

    #[test]
    fn an_issuer_must_be_an_http_url_in_visible_ascii_without_quotes() {
        for good in [
            "https://idp.example.com/realms/demo",
            "http://127.0.0.1:8080",
            "HTTPS://[::1]:8443/a%20b?x=1",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
        ] {
            assert!(is_http_url(good), "{good}");
        }
        for bad in [
            "https://idp.example.com\r\nX-Injected: 1",
            "https://idp.example.com/a b",
            "https://idp\"x",
            "https://idp\\x",
            "https://idp\tx",
            "https://idp.example.com/\u{e9}",
            "ftp://idp.example.com",
            "idp.example.com",
            "http://",
            "",
        ] {
            assert!(!is_http_url(bad), "{bad:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn deeply_nested_answers_are_invalid_not_a_stack_overflow() {
        // Regression: an answer of a few KiB of `[` overflowed the stack while simd-json
        // built or skipped it, aborting the process from the control plane.
        let client = IdpClient::new(&ClientOptions { timeout: Duration::from_secs(5), ..Default::default() }).unwrap();
        let deep = format!(r#"{{"x":{}{},"access_token":"t","active":true}}"#, "[".repeat(50_000), "]".repeat(50_000));
        let url = serve_json(deep, 3);
        let e = client.discovery(&url, &[]).await.unwrap_err();
        assert!(matches!(e, IdpError::Invalid { what: "discovery document", .. }), "{e:?}");
        let e = client.token(&url, String::new(), &[], &[]).await.unwrap_err();
        assert!(matches!(e, IdpError::Invalid { what: "token response", .. }), "{e:?}");
        let e = client.introspect(&url, String::new(), &[], IntrospectionAccept::Json).await.unwrap_err();
        assert!(matches!(e, IdpError::Invalid { what: "introspection answer", .. }), "{e:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_past_the_limit_is_refused_whether_announced_or_not() {
        let client = IdpClient::new(&ClientOptions { timeout: Duration::from_secs(5), ..Default::default() }).unwrap();
        let announced = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n", 1024);
        let e = client.get(&announced, &[]).await.unwrap_err();
        assert!(matches!(e, IdpError::Invalid { what: "answer", .. }), "{e:?}");
        let streamed = serve_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 2 * MAX_BODY);
        let e = client.get(&streamed, &[]).await.unwrap_err();
        assert!(matches!(e, IdpError::Invalid { what: "answer", .. }), "{e:?}");
        let fits = serve_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", MAX_BODY);
        assert_eq!(client.get(&fits, &[]).await.unwrap().len(), MAX_BODY);
    }
}
