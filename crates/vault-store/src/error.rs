//! The one error type of this crate.

use std::path::PathBuf;

use crate::gates::DenyReason;
use crate::keys::KeySourceError;

/// Everything that can go wrong in the vault. Messages say what happened and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// SQLite reported an error.
    #[error("vault database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read key file", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A cryptographic primitive failed (random generator, key derivation, ...).
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] aim_crypto::CryptoError),
    /// The file is not a vault, or its schema is newer than this build understands.
    #[error("{0}")]
    Schema(String),
    /// There is no vault at the path.
    #[error("no vault at {0}; create one with `aim vault init` or `Vault::create`")]
    NoVault(PathBuf),
    /// A vault already exists at the path.
    #[error("a vault already exists at {0}")]
    VaultExists(PathBuf),
    /// A caller-supplied value is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The profile does not exist.
    #[error("no profile named `{0}` in this vault")]
    ProfileNotFound(String),
    /// The profile already exists.
    #[error("profile `{0}` already exists")]
    ProfileExists(String),
    /// The passphrase, key file or key source does not open any key slot of the profile.
    #[error("the {kind} does not unlock profile `{profile}` (wrong passphrase or key)")]
    WrongKey {
        /// The profile.
        profile: String,
        /// Which kind of key was tried.
        kind: &'static str,
    },
    /// The profile has no key slot of the kind that was offered.
    #[error("profile `{profile}` has no {kind} key slot")]
    NoSuchSlot {
        /// The profile.
        profile: String,
        /// The kind of slot that was looked for.
        kind: String,
    },
    /// An external key source (TPM, FIDO2, ...) failed.
    #[error("key source failed: {0}")]
    KeySource(#[from] KeySourceError),
    /// The memory does not exist in this profile.
    #[error("no memory {0} in this profile")]
    MemoryNotFound(String),
    /// A gate refused the operation; the refusal has been audited.
    #[error("denied: {0}")]
    Denied(DenyReason),
    /// Stored bytes failed authentication: the vault file was modified without the key.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// A tree head could not be signed (an operation that would have signed one is refused).
    #[error("cannot sign an audit tree head: {0}")]
    HeadSigning(String),
    /// The audit log disagrees with a head published outside the file (a witness, a head the
    /// user kept): it was truncated, rolled back to an older copy, or forked.
    #[error("the audit log does not extend the head held by {witness}: {reason}")]
    Witness {
        /// Which witness or head.
        witness: String,
        /// What is wrong.
        reason: String,
    },
    /// Stored bytes could not be decoded.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A backup file is unreadable, corrupted, truncated or does not fit the vault.
    #[error("backup rejected: {0}")]
    Backup(String),
    /// A key rotation is in a state that does not allow the operation.
    #[error("key rotation: {0}")]
    Rotation(String),
    /// The audit log rejected or failed an append, a proof or a check.
    #[error(transparent)]
    Audit(#[from] vault_audit::AuditError),
    /// `verify` found a discrepancy.
    #[error("verification failed: {0}")]
    Verify(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;

impl VaultError {
    pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The denial reason when this error is a gate denial.
    pub fn deny_reason(&self) -> Option<&DenyReason> {
        match self {
            Self::Denied(r) => Some(r),
            _ => None,
        }
    }
}
