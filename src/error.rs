//! The one place where a failed request becomes a response.
//!
//! Every error the data plane can meet while serving a request is a [`ProxyError`];
//! [`ProxyError::status`] and [`write_response`] are the only mapping to the wire, so the
//! statuses and Kong-shaped JSON bodies downstreams see are decided here and nowhere
//! else. Bodies never carry secrets, tokens or upstream error text.

use crate::http::head::HeadError;
use crate::http::response::ResponseError;
use crate::http::rewrite::push_status;

/// Why a request was not (fully) proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The downstream's request head was refused (its own status: 400, 405, 417, 431,
    /// 501, 505).
    #[error("bad request head: {0}")]
    Head(#[from] HeadError),
    /// The downstream's body framing broke mid-stream (bad chunk, early end).
    #[error("bad request body: {0}")]
    Body(&'static str),
    /// The head did not arrive within the header timeout (408).
    #[error("request head timed out")]
    HeadTimeout,
    /// The body did not arrive within the body timeout (408).
    #[error("request body timed out")]
    BodyTimeout,
    /// The request body is larger than the limit (413).
    #[error("request body larger than the limit")]
    BodyTooLarge,
    /// No route matched (404).
    #[error("no route matched")]
    NoRoute,
    /// The matched route has no service (503).
    #[error("route has no service")]
    NoService,
    /// The openid-connect plugin refused the request (401, 403 or 503), with the body,
    /// `WWW-Authenticate` and `Retry-After` it decided.
    #[error("authentication failed: {}", .0.status)]
    Auth(AuthFailure),
    /// The service's host name has not resolved (503).
    #[error("upstream name resolution failed")]
    NameResolution,
    /// The service's upstream has no target to send to: none listed, all of weight 0,
    /// or none resolved (503, Kong's balancer message).
    #[error("no upstream target available")]
    NoTarget,
    /// The upstream could not be reached or broke the connection (502).
    #[error("upstream connection failed: {0}")]
    UpstreamConnect(std::io::Error),
    /// The route only takes `https` and the request came over plain HTTP: Kong's
    /// `https_redirect_status_code` (426, or a redirect to the https URL).
    #[error("the route requires https")]
    HttpsRequired { status: u16, location: Option<String> },
    /// The TLS handshake with an `https` upstream failed: its certificate is not
    /// trusted or does not name the service's host, or no protocol is shared (502).
    #[error("upstream TLS handshake failed: {0}")]
    UpstreamTls(String),
    /// The upstream timed out connecting, accepting the request or answering (504).
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream answered with something that is not a valid HTTP/1.1 response (502).
    #[error("invalid upstream response: {0}")]
    UpstreamResponse(#[from] ResponseError),
    /// The upstream closed or failed mid-response (502).
    #[error("upstream response broken: {0}")]
    UpstreamBroken(&'static str),
}

impl ProxyError {
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::Head(e) => e.status(),
            ProxyError::Body(_) => 400,
            ProxyError::HeadTimeout | ProxyError::BodyTimeout => 408,
            ProxyError::BodyTooLarge => 413,
            ProxyError::NoRoute => 404,
            ProxyError::NoService | ProxyError::NameResolution | ProxyError::NoTarget => 503,
            ProxyError::Auth(a) => a.status,
            ProxyError::HttpsRequired { status, .. } => *status,
            ProxyError::UpstreamConnect(_)
            | ProxyError::UpstreamTls(_)
            | ProxyError::UpstreamResponse(_)
            | ProxyError::UpstreamBroken(_) => 502,
            ProxyError::UpstreamTimeout => 504,
        }
    }

    /// The `message` of the JSON body, Kong's wording where Kong has one.
    pub fn message(&self) -> &'static str {
        match self {
            ProxyError::Head(HeadError::TooLarge | HeadError::TooManyHeaders) => "Request header or cookie too large",
            ProxyError::Head(HeadError::Version) => "HTTP Version Not Supported",
            ProxyError::Head(HeadError::Connect) => "Method Not Allowed",
            ProxyError::Head(HeadError::UnknownTransferCoding) => "Not Implemented",
            ProxyError::Head(HeadError::Expectation) => "Expectation Failed",
            ProxyError::Head(_) | ProxyError::Body(_) => "Bad request",
            ProxyError::HeadTimeout | ProxyError::BodyTimeout => "Request timeout",
            ProxyError::BodyTooLarge => "Request size limit exceeded",
            ProxyError::NoRoute => "no Route matched with those values",
            ProxyError::NoService => "no Service found with those values",
            ProxyError::NameResolution => "name resolution failed",
            ProxyError::NoTarget => "failure to get a peer from the ring-balancer",
            ProxyError::Auth(_) => "",
            ProxyError::HttpsRequired { .. } => "Please use HTTPS protocol",
            ProxyError::UpstreamConnect(_)
            | ProxyError::UpstreamTls(_)
            | ProxyError::UpstreamResponse(_)
            | ProxyError::UpstreamBroken(_) => "An invalid response was received from the upstream server",
            ProxyError::UpstreamTimeout => "The upstream server is timing out",
        }
    }

    /// Whether the downstream connection must close after the response: the request's
    /// framing is in doubt, or its body was not read.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProxyError::Head(_)
                | ProxyError::Body(_)
                | ProxyError::HeadTimeout
                | ProxyError::BodyTimeout
                | ProxyError::BodyTooLarge
        )
    }
}

/// Why the openid-connect plugin refused a request, as a fixed set: the `reason` label of
/// `ringgate_auth_failures_total` and the `denied:<reason>` of the access log. The free
/// text of [`AuthFailure::message`] says more; this says which kind, with a bounded set
/// of values (a metric label must never carry text from a caller or the IdP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthReason {
    /// 401: no credentials (or bearer token) in any configured location.
    NoCredentials,
    /// 401: credentials longer than the plugin reads (they count as none).
    CredentialsTooLong,
    /// 401: the IdP refused the credentials (now, or recently: the negative cache).
    CredentialsRejected,
    /// 401: the caller's bearer token does not verify.
    InvalidToken,
    /// 401: the token the IdP issued does not verify.
    IssuedTokenInvalid,
    /// 401: the caller's token needs a DPoP proof (`proof_of_possession_dpop`), and none
    /// came, or it does not hold.
    InvalidDpopProof,
    /// 401: server nonces are on (`dpop_use_nonce`), and the DPoP proof has no current
    /// one; the refusal carries a fresh nonce to retry with (RFC 9449 §9).
    UseDpopNonce,
    /// 401: the caller's token is bound to a TLS client certificate
    /// (`proof_of_possession_mtls`), and the connection presented none, or another one;
    /// or, in `strict` mode, the token is not bound to one.
    CertificateMismatch,
    /// 403: `scopes_required` not met.
    InsufficientScope,
    /// 403: `audience_required` not met.
    AudienceMismatch,
    /// 403: `groups_required` not met.
    GroupsMissing,
    /// 403: `roles_required` not met.
    RolesMissing,
    /// 403: the token has a claim `claims_forbidden` names.
    ForbiddenClaim,
    /// 403: `consumer_claim` names no consumer (and `consumer_optional` is off).
    ConsumerNotFound,
    /// 500: the `anonymous` consumer a refused request was to be proxied as does not
    /// exist.
    AnonymousNotFound,
    /// 503: the IdP could not be asked (down, slow, 5xx, not discovered yet).
    IdpUnavailable,
}

impl AuthReason {
    /// Every reason, in the order metrics are rendered.
    pub const ALL: [AuthReason; 16] = [
        AuthReason::NoCredentials,
        AuthReason::CredentialsTooLong,
        AuthReason::CredentialsRejected,
        AuthReason::InvalidToken,
        AuthReason::IssuedTokenInvalid,
        AuthReason::InvalidDpopProof,
        AuthReason::UseDpopNonce,
        AuthReason::CertificateMismatch,
        AuthReason::InsufficientScope,
        AuthReason::AudienceMismatch,
        AuthReason::GroupsMissing,
        AuthReason::RolesMissing,
        AuthReason::ForbiddenClaim,
        AuthReason::ConsumerNotFound,
        AuthReason::AnonymousNotFound,
        AuthReason::IdpUnavailable,
    ];

    /// The label value: lower-case, fixed.
    pub fn label(self) -> &'static str {
        match self {
            AuthReason::NoCredentials => "no_credentials",
            AuthReason::CredentialsTooLong => "credentials_too_long",
            AuthReason::CredentialsRejected => "credentials_rejected",
            AuthReason::InvalidToken => "invalid_token",
            AuthReason::IssuedTokenInvalid => "issued_token_invalid",
            AuthReason::InvalidDpopProof => "invalid_dpop_proof",
            AuthReason::UseDpopNonce => "use_dpop_nonce",
            AuthReason::CertificateMismatch => "certificate_mismatch",
            AuthReason::InsufficientScope => "insufficient_scope",
            AuthReason::AudienceMismatch => "audience_mismatch",
            AuthReason::GroupsMissing => "groups_missing",
            AuthReason::RolesMissing => "roles_missing",
            AuthReason::ForbiddenClaim => "forbidden_claim",
            AuthReason::ConsumerNotFound => "consumer_not_found",
            AuthReason::AnonymousNotFound => "anonymous_not_found",
            AuthReason::IdpUnavailable => "idp_unavailable",
        }
    }

    /// What a 403 says with `display_errors` (the reasons of a refused, verified token).
    pub fn forbidden_text(self) -> &'static str {
        match self {
            AuthReason::AudienceMismatch => "required audience is missing",
            AuthReason::GroupsMissing => "required groups are missing",
            AuthReason::RolesMissing => "required roles are missing",
            AuthReason::ForbiddenClaim => "a forbidden claim is present",
            AuthReason::ConsumerNotFound => "kong consumer was not found",
            _ => "required scopes are missing",
        }
    }

    /// The status the downstream gets for this reason.
    pub fn status(self) -> u16 {
        match self {
            AuthReason::InsufficientScope
            | AuthReason::AudienceMismatch
            | AuthReason::GroupsMissing
            | AuthReason::RolesMissing
            | AuthReason::ForbiddenClaim
            | AuthReason::ConsumerNotFound => 403,
            AuthReason::AnonymousNotFound => 500,
            AuthReason::IdpUnavailable => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 / RFC 9449 `error` code a challenge for this reason carries: a 403's
    /// is `insufficient_scope`, a failed DPoP proof's `invalid_dpop_proof`, a proof
    /// without a current server nonce's `use_dpop_nonce`, any other refusal's
    /// `invalid_token`.
    pub fn error_code(self) -> &'static str {
        match (self, self.status()) {
            (AuthReason::InvalidDpopProof, _) => "invalid_dpop_proof",
            (AuthReason::UseDpopNonce, _) => "use_dpop_nonce",
            (_, 403) => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// Position in [`AuthReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How the plugin answers a refused request (SPEC §4).
#[derive(Debug, Clone)]
pub struct AuthFailure {
    pub status: u16,
    /// Which kind of refusal (for metrics and the access log).
    pub reason: AuthReason,
    /// The `message` of the JSON body, as text (escaped when written).
    pub message: String,
    pub www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (503).
    pub retry_after: Option<u32>,
    /// A redirect in place of the refusal (Kong's `*_redirect_uri`): the response is a
    /// 302 to it with no body.
    pub location: Option<String>,
    /// A fresh DPoP server nonce for `DPoP-Nonce` (RFC 9449 §9).
    pub dpop_nonce: Option<String>,
}

/// Writes a complete error response (head and JSON body) to `out`.
pub fn write_response(err: &ProxyError, close: bool, out: &mut Vec<u8>) {
    match err {
        ProxyError::Auth(AuthFailure { location: Some(location), status, .. }) => {
            write_body(*status, &format!("Location: {location}\r\n"), "", close, out);
        }
        ProxyError::Auth(a) => {
            let mut extra = String::new();
            if let Some(w) = &a.www_authenticate {
                extra.push_str("WWW-Authenticate: ");
                extra.push_str(w);
                extra.push_str("\r\n");
            }
            if let Some(r) = a.retry_after {
                extra.push_str(&format!("Retry-After: {r}\r\n"));
            }
            if let Some(n) = &a.dpop_nonce {
                extra.push_str("DPoP-Nonce: ");
                extra.push_str(n);
                extra.push_str("\r\n");
            }
            let body = format!("{{\"message\":{}}}", crate::control::json_string(&a.message));
            write_body(a.status, &extra, &body, close, out);
        }
        // Kong: 426 with an Upgrade offer; a redirect status with Location and no body.
        // The upgrade offer is one Connection header; when the connection closes too, it
        // says both (write_body would add a second Connection header).
        ProxyError::HttpsRequired { status: 426, .. } => write_body(
            426,
            if close {
                "Connection: Upgrade, close\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"
            } else {
                "Connection: Upgrade\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"
            },
            &format!("{{\"message\":\"{}\"}}", err.message()),
            false,
            out,
        ),
        ProxyError::HttpsRequired { status, location } => {
            let extra = location.as_ref().map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
            write_body(*status, &extra, "", close, out);
        }
        _ => write_json(err.status(), err.message(), close, out),
    }
}

/// Writes a response with a JSON `body` and extra header lines (each ending in CRLF).
fn write_body(status: u16, extra_headers: &str, body: &str, close: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(status, out);
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: application/json; charset=utf-8\r\nServer: ringgate\r\n");
    out.extend_from_slice(extra_headers.as_bytes());
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// Writes a complete response with a `{"message": ...}` body. `message` is a fixed
/// text from this crate, so it needs no JSON escaping.
pub fn write_json(status: u16, message: &str, close: bool, out: &mut Vec<u8>) {
    write_body(status, "", &format!("{{\"message\":\"{message}\"}}"), close, out);
}

fn reason(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_required_is_426_with_an_upgrade_offer_or_a_bare_redirect() {
        let mut out = Vec::new();
        write_response(&ProxyError::HttpsRequired { status: 426, location: None }, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"), "{text}");
        assert!(text.ends_with("{\"message\":\"Please use HTTPS protocol\"}"), "{text}");
        let mut out = Vec::new();
        write_response(&ProxyError::HttpsRequired { status: 426, location: None }, true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("Connection:").count(), 1, "{text}");
        assert!(text.contains("\r\nConnection: Upgrade, close\r\n"), "{text}");
        let mut out = Vec::new();
        let moved = ProxyError::HttpsRequired { status: 308, location: Some("https://a.test/x?y".into()) };
        write_response(&moved, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"), "{text}");
        assert!(text.contains("\r\nLocation: https://a.test/x?y\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
    }

    #[test]
    fn no_route_is_kongs_404_body() {
        let mut out = Vec::new();
        write_response(&ProxyError::NoRoute, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 48\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{\"message\":\"no Route matched with those values\"}"));
        assert!(!text.contains("Connection: close"));
    }

    #[test]
    fn framing_errors_close_and_route_errors_do_not() {
        assert!(ProxyError::Head(HeadError::LengthAndEncoding).closes_connection());
        assert!(ProxyError::BodyTooLarge.closes_connection());
        assert!(!ProxyError::NoRoute.closes_connection());
        assert_eq!(ProxyError::UpstreamTimeout.status(), 504);
        assert_eq!(ProxyError::Head(HeadError::TooLarge).status(), 431);
    }

    #[test]
    fn auth_reasons_are_listed_in_index_order_with_distinct_labels() {
        for (i, r) in AuthReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(AuthReason::ALL[..i].iter().all(|o| o.label() != r.label()));
        }
        assert_eq!(AuthReason::AudienceMismatch.status(), 403);
        assert_eq!(AuthReason::IdpUnavailable.status(), 503);
        assert_eq!(AuthReason::CredentialsRejected.status(), 401);
    }

    #[test]
    fn each_refusal_names_its_challenge_error_code() {
        for r in AuthReason::ALL {
            let want = match r.status() {
                403 => "insufficient_scope",
                _ if r == AuthReason::InvalidDpopProof => "invalid_dpop_proof",
                _ if r == AuthReason::UseDpopNonce => "use_dpop_nonce",
                _ => "invalid_token",
            };
            assert_eq!(r.error_code(), want, "{r:?}");
        }
    }
}
