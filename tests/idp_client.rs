//! The control plane's IdP client against the real test OpenID Provider: discovery,
//! key sets, token calls, and each way an IdP fails.

mod support;

use std::time::{Duration, Instant};

use ringgate::control::idp::{ClientOptions, IdpClient, IdpError, TokenOutcome};
use support::idp::TestIdp;

fn client(timeout_ms: u64) -> IdpClient {
    IdpClient::new(&ClientOptions {
        timeout: Duration::from_millis(timeout_ms),
        ssl_verify: true,
        ..Default::default()
    })
    .expect("client builds")
}

/// A client_secret_post body for the test IdP's `post-client` (the encoders proper
/// arrive with the plugin; these values need no escaping).
fn post_form(id: &str, secret: &str) -> String {
    format!("grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=openid")
}

#[tokio::test(flavor = "current_thread")]
async fn discovery_and_jwks_are_fetched_and_parsed() {
    let idp = TestIdp::start(0);
    let c = client(5000);
    let d = c.discovery(&idp.discovery_url(), &[]).await.expect("discovery");
    assert_eq!(d.issuer, idp.issuer);
    assert_eq!(d.token_endpoint.as_deref(), Some(format!("{}/token", idp.issuer).as_str()));
    assert!(d.grant_types_supported.iter().any(|g| g == "client_credentials"), "{d:?}");
    let jwks = c.get(d.jwks_uri.as_deref().unwrap(), &[]).await.expect("jwks");
    let text = String::from_utf8(jwks).unwrap();
    assert!(text.contains("\"keys\"") && text.contains("\"kid\""), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn token_is_issued_for_good_credentials_and_refused_for_bad_ones() {
    let idp = TestIdp::start(0);
    let c = client(5000);
    let endpoint = format!("{}/token", idp.issuer);
    let replay = ["cache-control".to_string(), "x-absent".to_string()];
    match c.token(&endpoint, post_form("post-client", "post-client-secret-0123456789abcdef"), &[], &replay).await {
        Ok(TokenOutcome::Issued(t)) => {
            assert_eq!(
                t.replayed,
                [("cache-control".to_string(), b"no-store".to_vec())],
                "only the named headers it sent"
            );
            assert_eq!(t.access_token.split('.').count(), 3, "a JWS access token");
            assert!(t.expires_in.is_some_and(|e| e > 0));
            assert!(!format!("{t:?}").contains(&t.access_token), "Debug redacts the token");
        }
        other => panic!("expected a token, got {other:?}"),
    }
    match c.token(&endpoint, post_form("post-client", "wrong"), &[], &[]).await {
        Ok(TokenOutcome::Rejected { status, error }) => {
            assert_eq!(status, 401);
            assert_eq!(error.as_deref(), Some("invalid_client"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(idp.token_requests("post-client"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn idp_failures_are_outages_with_the_host_and_no_secret() {
    let idp = TestIdp::start(0);
    let endpoint = format!("{}/token", idp.issuer);
    let secret = "post-client-secret-0123456789abcdef";

    idp.fault("token", "500", 0);
    let e = client(3000).token(&endpoint, post_form("post-client", secret), &[], &[]).await.unwrap_err();
    assert!(matches!(e, IdpError::Status { status: 500, .. }), "{e:?}");
    assert!(e.is_outage());

    idp.fault("token", "slow", 2000);
    let started = Instant::now();
    let e = client(300).token(&endpoint, post_form("post-client", secret), &[], &[]).await.unwrap_err();
    assert!(matches!(e, IdpError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "bounded by the timeout");

    idp.fault("token", "drop", 0);
    let e = client(3000).token(&endpoint, post_form("post-client", secret), &[], &[]).await.unwrap_err();
    assert!(matches!(e, IdpError::Unreachable { .. }), "{e:?}");
    assert!(e.is_outage());
    let text = e.to_string();
    assert!(text.contains("127.0.0.1") && !text.contains(secret), "{text}");

    idp.fault("discovery", "500", 0);
    let e = client(3000).discovery(&idp.discovery_url(), &[]).await.unwrap_err();
    assert!(e.is_outage());

    // Nobody listening at all.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = client(3000).discovery(&format!("http://{dead}/.well-known/openid-configuration"), &[]).await.unwrap_err();
    assert!(matches!(e, IdpError::Unreachable { .. }), "{e:?}");
}
