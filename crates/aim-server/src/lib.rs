//! The AIM identity server: agent registration, signed action verification, decisions, approvals,
//! trust scores and audit.
//!
//! It speaks the AIM agent API (see `docs/api.md`) closely enough that the official AIM Python
//! SDK works against it unchanged, and fixes the upstream server's defects: agents keep their
//! private keys, every route checks the tenant, signatures are replay-protected, verification ids
//! are persisted, and pending verifications really wait for a person.
//!
//! Embedding (tests, the `aim` CLI):
//!
//! ```no_run
//! # async fn demo() -> aim_server::Result<()> {
//! use aim_server::{Server, ServerConfig};
//!
//! let dir = std::env::temp_dir().join("aim-demo");
//! let config = ServerConfig::new(&dir).with_addr("127.0.0.1:0".parse().unwrap());
//! let first = aim_server::init(&config, "Acme", "admin@acme.test").await?;
//! println!("admin key: {}", first.admin_api_key.expose());
//! let server = Server::start(config).await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

mod apikey;
mod audit;
mod auth;
mod config;
mod db;
pub mod decision;
mod decision_cache;
mod error;
mod http;
mod init;
mod metrics;
pub mod model;
mod routes;
mod scores;
mod server;
mod state;
mod sweep;
pub mod trust;

pub use apikey::{API_KEY_PREFIX, ApiKeySecret};
pub use config::{
    Clock, DEFAULT_ADDR, DEFAULT_MAX_BODY_BYTES, LogFormat, ManualClock, ServerConfig, SystemClock,
};
pub use error::{Error, Result};
pub use init::{InitOutput, init, is_initialized};
pub use routes::openapi;
pub use server::{RunningServer, Server};

/// Parsers of untrusted request bodies, exposed for fuzzing and for clients that want to check
/// what the server will accept.
pub mod wire {
    pub use crate::routes::mcp::{
        DETECTION_METHODS, DetectionEvent, DetectionReport, validate_report,
    };
    pub use crate::routes::verifications::{VerificationBody, parse_verification_body};
}
