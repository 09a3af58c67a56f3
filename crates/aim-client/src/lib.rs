//! Async client of the AIM agent API (reqwest with rustls, pooled connections).
//!
//! * [`AimClient::secure`] loads the stored identity of an agent, or generates an Ed25519 key
//!   pair locally, registers only its public half, and stores the identity encrypted in
//!   `~/.aim/agents/<name>.json` ([`CredentialStore`]).
//! * [`AimClient::verify_action`] signs and sends a verification, polls while a person decides
//!   (2 s, ×1.5, capped at 10 s, never past the deadline) and retries transient failures with
//!   jittered backoff, honouring `Retry-After`.
//! * [`AimClient::perform_action`] / [`AimClient::perform_action_blocking`] (and the
//!   `#[aim::action]` attribute built on them) run a function only when the action is approved,
//!   then report its outcome. They fail closed; [`DegradedMode`] is an explicit opt-in.
//! * [`AdminClient`] is the API-key-authenticated administration client used by the `aim` CLI.
//!
//! ```no_run
//! # async fn demo() -> Result<(), aim_client::Error> {
//! use aim_client::AimClient;
//!
//! let client = AimClient::secure("billing-agent").await?;
//! let rows = client
//!     .perform_action("read_database", Some("customers"), serde_json::json!({}), || async {
//!         Ok::<_, aim_client::Error>(42)
//!     })
//!     .await?;
//! # let _ = rows; Ok(()) }
//! ```

pub mod admin;
mod client;
pub mod clock;
pub mod config;
mod error;
mod guard;
mod http;
mod identity;
pub mod keyring;
#[cfg(feature = "rmcp")]
pub mod mcp;
pub mod poll;
pub mod retry;
pub mod store;
pub mod types;
pub mod wire;

pub use admin::AdminClient;
pub use client::{AimClient, PATH_REGISTER, PATH_VERIFICATIONS};
pub use config::{ApiKey, ClientConfig, DEFAULT_SERVER_URL, DegradedMode, KeyProtection};
pub use error::{Error, Result, TransportKind};
pub use guard::{__private, ClientSource, DefaultClient, default_client};
pub use http::{HEADER_API_KEY, HEADER_REGISTRATION_KEY, USER_AGENT};
pub use identity::AgentIdentity;
pub use poll::PollPolicy;
pub use retry::RetryPolicy;
pub use store::CredentialStore;
pub use types::{
    ActionRequest, Approval, CapabilityReport, CapabilityReportSummary, RegistrationDetails,
    VerificationState,
};

pub use aim_crypto::{Argon2Params, SecretBytes};
