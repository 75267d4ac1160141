//! The control plane: everything that talks to the identity provider.
//!
//! One thread runs a small tokio runtime with reqwest (rustls on ring). It owns every
//! call to the IdP: discovery, key sets, token endpoint calls. Workers never block on
//! the IdP and never open connections to it; on a token cache miss they ask the control
//! plane and wait for its answer, so the misses of every core for one credential meet
//! in one place and cost one IdP call.
//!
//! This module grows with the openid-connect plugin; [`idp`] is its HTTP client.

pub mod idp;
