//! The `openid-connect` plugin's client-credentials flow, hot-path half.
//!
//! A request that reaches this plugin goes through two steps before anything leaves the
//! worker: [`credentials`] finds the caller's client id and secret (the `Authorization:
//! Basic` header, the query string or the body, in the configured order; SPEC §1 step 2)
//! and [`cache`] digests them into a [`cache::CacheKey`] and looks the key up in the
//! worker's own token cache (SPEC §2). On a hit the upstream head gets the cached,
//! pre-rendered `Bearer …` value; on a miss the control plane is asked for a token.
//!
//! Both modules are pure: no I/O, no clock reads of their own (time is passed in), no
//! locks. On a cache hit the header decode, the digest and the lookup together make no
//! heap allocation (`tests/oidc_alloc.rs` guards this; `benches/credentials.rs` times it).
//!
//! The encoders for the token request's own client authentication
//! ([`credentials::encode_client_secret_basic`], [`credentials::encode_client_secret_post`])
//! live beside the decoders so the wire formats and their tests sit together.

pub mod access;
pub mod cache;
pub mod claim_headers;
pub mod config;
pub mod credentials;
pub mod hide;
pub mod instance;
pub mod verified;
