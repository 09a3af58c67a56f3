//! The AIM toolkit: agent identity, verified actions and an encrypted memory vault.
//!
//! This facade re-exports the toolkit's crates behind features and contains no logic of its
//! own. Pick what you need:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | (always) | [`crypto`] | `aim-crypto`: Ed25519 identities, request signing, canonical JSON, AEAD, KDF |
//! | `client` | `client`, `action` | `aim-client`, `aim-macros`: the AIM client and `#[aim::action]` |
//! | `detect` | `detect` | `aim-detect`: capability and MCP-server detection |
//! | `vault` | `vault`, `hw` | `vault-store`, `vault-hw` (TOTP, FIDO2 software model) |
//! | `audit` | `audit` | `vault-audit`: RFC 6962 log, signed heads, proofs, witnesses |
//! | `escrow` | `escrow` | `vault-escrow`: Shamir escrow, dead-man switch |
//! | `tpm`, `fido2` | `hw::tpm`, `hw::fido2` hardware | hardware key sources (system libraries needed) |
//! | `server` | `server` | `aim-server`: the identity server, embeddable |
//! | `full` | all of the above but `tpm` and `fido2` | |
//!
//! ```toml
//! [dependencies]
//! aim = { version = "0.1", features = ["client", "vault"] }
//! ```

pub use aim_crypto as crypto;

/// The AIM client (`aim-client`): registration, signed action verification, the action guard.
#[cfg(feature = "client")]
pub use aim_client as client;

/// `#[aim::action("read_database", resource = "...")]`: run a function only when approved.
#[cfg(feature = "client")]
pub use aim_macros::action;

/// Support code for `#[aim::action]`; not a stable API.
#[cfg(feature = "client")]
#[doc(hidden)]
pub use aim_client::__private;

/// Capability and MCP-server detection (`aim-detect`).
#[cfg(feature = "detect")]
pub use aim_detect as detect;

/// The encrypted, classified memory vault (`vault-store`).
#[cfg(feature = "vault")]
pub use vault_store as vault;

/// Hardware and second-factor gates for the vault (`vault-hw`): TOTP, FIDO2, TPM.
#[cfg(feature = "vault")]
pub use vault_hw as hw;

/// The vault's tamper-evident audit log (`vault-audit`).
#[cfg(feature = "audit")]
pub use vault_audit as audit;

/// Shamir key escrow and the dead-man switch (`vault-escrow`).
#[cfg(feature = "escrow")]
pub use vault_escrow as escrow;

/// The AIM identity server (`aim-server`).
#[cfg(feature = "server")]
pub use aim_server as server;
