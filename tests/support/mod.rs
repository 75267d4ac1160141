//! Shared helpers for the integration tests. Each test binary includes this module with
//! `mod support;` and uses only part of it, hence the dead-code allowance.
#![allow(dead_code)]

pub mod alloc;
pub mod binary;
pub mod client;
pub mod idp;
pub mod record;
pub mod temp;
pub mod tls;
pub mod upstream;
