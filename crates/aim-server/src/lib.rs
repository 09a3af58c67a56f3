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
mod listen;
mod metrics;
pub mod model;
mod names;
mod ratelimit;
mod routes;
mod scores;
mod server;
mod state;
mod sweep;
mod tls;
pub mod trust;
mod withdraw;

pub use apikey::{API_KEY_PREFIX, ApiKeySecret};
pub use config::{
    Clock, DEFAULT_ADDR, DEFAULT_MAX_BODY_BYTES, Limits, LogFormat, ManualClock, MetricsToken,
    Rate, ServerConfig, SystemClock, TlsFiles,
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
    /// freshness within ±`window_secs` of `now_secs`, then the scheme the headers name: v1,
    /// Ed25519 over method, path without query, timestamp and body; or v2 with
    /// `X-AIM-Signature-Version: 2`, over agent id, method, `path_and_query`, `origin`,
    /// timestamp, `X-AIM-Nonce` and the body digest) against the agent's registered key
    /// (`registered_key_b64`). Header pairs that are not valid HTTP header names or values are
    /// ignored, as the HTTP layer would refuse them. Returns the canonical agent id from
    /// `X-Agent-ID`.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_signed_headers(
        headers: &[(&str, &str)],
        method: &str,
        path_and_query: &str,
        body: &[u8],
        origin: &str,
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
        let verifier = aim_crypto::RequestVerifier::with_window(window_secs);
        let checked = match parsed.version {
            aim_crypto::SignatureVersion::V1 => verifier.verify(
                &key,
                &aim_crypto::SignedRequest {
                    method,
                    path: path_and_query.split('?').next().unwrap_or(path_and_query),
                    timestamp: parsed.timestamp,
                    signature: parsed.signature,
                    body,
                },
                now_secs,
            ),
            aim_crypto::SignatureVersion::V2 => verifier.verify_v2(
                &key,
                &aim_crypto::RequestV2 {
                    agent_id: &parsed.agent_id,
                    method,
                    path_and_query,
                    origin,
                    timestamp: parsed.timestamp,
                    nonce: parsed.nonce.unwrap_or(""),
                    body,
                },
                parsed.signature,
                origin,
                now_secs,
            ),
        };
        checked.map_err(crate::auth::signature_error)?;
        Ok(parsed.agent_id)
    }
}
