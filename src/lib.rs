pub mod config;
pub mod http;
pub mod router;
