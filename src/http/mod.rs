//! HTTP/1.1 on the wire: request heads parsed in place, body framing, upstream heads
//! written as slices of what the downstream sent.

pub mod chunked;
pub mod head;
pub mod response;
pub mod rewrite;
