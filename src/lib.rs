pub mod config;
pub mod error;
pub mod http;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod upstream;
pub mod worker;
