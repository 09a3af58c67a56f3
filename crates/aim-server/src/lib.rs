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
mod names;
mod routes;
mod scores;
mod server;
mod state;
mod sweep;
pub mod trust;
mod withdraw;

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

    /// Checks a request's agent-signature headers exactly as the server does (header parsing,
    /// freshness within ±`window_secs` of `now_secs`, Ed25519 over method, path, timestamp and
    /// body) against the agent's registered key (`registered_key_b64`). Header pairs that are
    /// not valid HTTP header names or values are ignored, as the HTTP layer would refuse them.
    /// Returns the canonical agent id from `X-Agent-ID`.
    pub fn verify_signed_headers(
        headers: &[(&str, &str)],
        method: &str,
        path: &str,
        body: &[u8],
        registered_key_b64: &str,
        now_secs: u64,
        window_secs: u64,
    ) -> crate::Result<String> {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(n), Ok(v)) = (
                http::header::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                map.append(n, v);
            }
        }
        let parsed = crate::auth::SignatureHeaders::parse(&map)?;
        let key = aim_crypto::AgentPublicKey::from_b64(registered_key_b64)
            .map_err(|e| crate::Error::bad_request(format!("registered key: {e}")))?;
        let request = aim_crypto::SignedRequest {
            method,
            path,
            timestamp: parsed.timestamp,
            signature: parsed.signature,
            body,
        };
        aim_crypto::RequestVerifier::with_window(window_secs)
            .verify(&key, &request, now_secs)
            .map_err(crate::auth::signature_error)?;
        Ok(parsed.agent_id)
    }
}
