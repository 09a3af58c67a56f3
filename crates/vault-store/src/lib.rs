//! Encrypted, classified, tamper-evident memory vault for AI agents.
//!
//! ```
//! use vault_store::{Enrollment, KeySource, MemoryInput, RecallRequest, Vault};
//! # let dir = tempfile::tempdir()?; let path = dir.path().join("vault.db");
//! # let fast = aim_crypto::Argon2Params::new(64, 1, 1)?;
//! # Vault::open(&path)?.create_profile("agent", Enrollment::passphrase_with("pw", fast))?;
//! let vault = Vault::open(&path)?;
//! let mut s = vault.unlock("agent", KeySource::passphrase("pw"))?;
//! let id = s.store(MemoryInput::text("the user prefers tea").classification(1))?;
//! let memory = s.recall(id, RecallRequest::new("answering a drinks question"))?;
//! assert_eq!(memory.text()?, "the user prefers tea");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`vault`] | opening the file, profiles, unlock, lockdown, public records |
//! | [`session`] | an unlocked profile: store, recall (gated), tombstone, key slots |
//! | [`query`] | keyed full-text search and listing |
//! | [`admin`] | administrative changes (gates, presence, leaving lockdown) need a human factor |
//! | [`gates`] | classification gates and the `Approver`, `Boundary`, `Presence` traits |
//! | [`boundary`] | the boundary-daemon Unix-socket client |
//! | [`keys`] | key sources, key slots, key files, the `ExternalKeySource` trait |
//! | [`record`] | the sealed record: associated data, metadata encoding, row MAC |
//! | [`search`] | keyed search tokens |
//! | [`records`] | a small audited record store for escrow bookkeeping |
//! | [`rotate`] | resumable data-key rotation |
//! | [`backup`] | encrypted, authenticated, chained backups and atomic restore |
//! | [`verify`] | audit-log verification cross-checked against the records, and proofs |
//! | [`witness`] | signed heads published outside the file; the log checked against them |
//! | [`unattended`] | audited events recorded without a session (e.g. a dead-man release) |
//! | `versions` | row versions: rollback detection for mutable authenticated rows |
//! | [`clock`] | injectable time |

pub mod admin;
mod audit;
pub mod backup;
pub mod boundary;
pub mod clock;
mod codec;
pub mod db;
mod deep;
mod error;
pub mod gates;
pub mod keys;
pub mod model;
pub mod query;
pub mod record;
pub mod records;
pub mod rotate;
pub mod search;
pub mod session;
pub mod unattended;
pub mod vault;
pub mod verify;
mod versions;
pub mod witness;

pub use admin::HumanFactor;
pub use aim_crypto::{Argon2Params, SecretBytes, SecretKey};
pub use audit::{Event, FieldValue};
pub use boundary::UnixSocketBoundary;
pub use clock::{Clock, ManualClock, SystemClock};
pub use db::Durability;
pub use error::{Result, VaultError};
pub use gates::{
    Approval, ApprovalRequest, Approver, Boundary, BoundaryDecision, BoundaryRequest, BoundaryRule,
    CallbackApprover, DenyReason, GateConfig, GateError, GateRequest, Gates, LevelGates, Presence,
    PresenceRequest, TerminalApprover,
};
pub use keys::{
    Enrollment, ExternalKeySource, IntoPassphrase, KeySource, KeySourceError, create_key_file,
    read_key_file,
};
pub use model::{AccessPolicy, Classification, Creator, MemoryId};
pub use query::{ListFilter, MemoryInfo, SearchHit, SearchQuery};
pub use records::{Record, Sealing};
pub use rotate::{RotationProgress, RotationReport};
pub use session::{MemoryInput, RecallRequest, Recalled, Session, recovery_fingerprint};
pub use unattended::{UnattendedEntry, UnattendedEvent};
pub use vault::{LockdownStatus, ProfileInfo, Vault, VaultOptions};
pub use witness::{SharedWitness, default_witness_path};
