//! The one error type of this crate.

use crate::share::ShareFormatError;

/// Everything that can go wrong in escrow and the dead-man switch. Messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EscrowError {
    /// Threshold and share count outside `2 ≤ K ≤ N ≤ 255`.
    #[error(
        "invalid escrow parameters: need 2 <= threshold ({threshold}) <= shares ({total}) <= 255"
    )]
    InvalidParameters {
        /// K.
        threshold: usize,
        /// N.
        total: usize,
    },
    /// A vault or profile id cannot be carried by a share (empty, longer than 64 bytes).
    #[error("{what} must be 1 to 64 bytes of UTF-8 (got {len} bytes)")]
    InvalidId {
        /// Which id.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// One of the shares given to combine is unreadable (`position` counts from 1 in the order
    /// the shares were given).
    #[error("share #{position}: {source}")]
    BadShare {
        /// Position of the share, from 1.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: ShareFormatError,
    },
    /// A share belongs to a different escrow than the first share.
    #[error(
        "share #{position} belongs to a different escrow than share #1 ({field} differs): \
         use shares of one escrow only (`aim vault escrow list` shows the escrow ids)"
    )]
    MixedEscrows {
        /// Position of the odd share, from 1.
        position: usize,
        /// The first field that differs.
        field: &'static str,
    },
    /// Two shares carry the same index.
    #[error("share #{position} duplicates share #{first} (both are share {index} of the escrow)")]
    DuplicateShare {
        /// Position of the later share, from 1.
        position: usize,
        /// Position of the earlier share, from 1.
        first: usize,
        /// Their common index.
        index: u8,
    },
    /// Fewer distinct shares than the threshold.
    #[error(
        "{got} share(s) given but this escrow needs {threshold}: collect more shares from their holders"
    )]
    NotEnoughShares {
        /// Distinct shares given.
        got: usize,
        /// The escrow's threshold K (0 when no share was given at all).
        threshold: u8,
    },
    /// The shares are well-formed but do not reconstruct the escrowed key; nothing is output.
    #[error(
        "the shares do not reconstruct the escrowed key{culprit}: at least one share is not from this escrow's split"
    )]
    WrongShares {
        /// `" (share #n is inconsistent with the others)"` when a single culprit was found.
        culprit: String,
    },
    /// An age recipient string could not be used.
    #[error("invalid recipient {recipient:?}: {reason}")]
    InvalidRecipient {
        /// The string given (public, safe to show).
        recipient: String,
        /// Why.
        reason: String,
    },
    /// An age identity (private key) could not be read. The key itself is never shown.
    #[error("invalid identity{}: {reason}", .source_name.as_deref().map(|s| format!(" in {s}")).unwrap_or_default())]
    InvalidIdentity {
        /// Where it came from (a file name), if known.
        source_name: Option<String>,
        /// Why.
        reason: String,
    },
    /// age encryption failed.
    #[error("age encryption failed: {0}")]
    Encrypt(String),
    /// None of the identities can open the age file, or it is damaged.
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    /// A primitive of `aim-crypto` failed.
    #[error(transparent)]
    Crypto(#[from] aim_crypto::CryptoError),
    /// A stored record is damaged or of an unknown format.
    #[error("stored {what} is damaged or of an unknown format: {reason}")]
    CorruptRecord {
        /// Which record.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Dead-man switch: the operation needs a switch that has been set.
    #[error("no dead-man switch is set for this profile: run `aim vault deadman set` first")]
    DeadmanNotSet,
    /// Dead-man switch: the packages have been released; the switch can no longer change.
    #[error(
        "the dead-man switch was already released (at {released_at_ms} ms since the Unix epoch); a release cannot be undone"
    )]
    AlreadyReleased {
        /// When (Unix ms).
        released_at_ms: i64,
    },
    /// Dead-man switch: release asked before the deadline.
    #[error("the dead-man switch cannot be released before its deadline: {} remain", crate::deadman::human_duration(*.remaining_ms))]
    NotYetDue {
        /// Milliseconds until the deadline.
        remaining_ms: i64,
        /// The deadline (Unix ms).
        deadline_ms: i64,
    },
    /// Dead-man switch: invalid configuration.
    #[error("invalid dead-man switch configuration: {0}")]
    InvalidDeadman(String),
    /// The vault refused or failed an operation.
    #[error("vault: {0}")]
    Vault(String),
    /// The vault store refused or failed an operation.
    #[error(transparent)]
    Store(#[from] vault_store::VaultError),
    /// No such escrow in this profile.
    #[error(
        "no escrow {escrow_id} for profile `{profile}` in this vault (`aim vault escrow list` shows them)"
    )]
    UnknownEscrow {
        /// The profile.
        profile: String,
        /// The escrow id.
        escrow_id: String,
    },
    /// The escrow can no longer recover the profile.
    #[error("escrow {escrow_id} is {status}: its shares no longer unlock the profile{hint}")]
    EscrowNotActive {
        /// The escrow id.
        escrow_id: String,
        /// `superseded` or `invalidated`.
        status: &'static str,
        /// What to do.
        hint: String,
    },
    /// The shares belong to another vault.
    #[error("the shares are for vault {shares_vault}, but this vault is {this_vault}")]
    WrongVault {
        /// The vault id the shares carry.
        shares_vault: String,
        /// This vault's id.
        this_vault: String,
    },
    /// The dead-man switch passed its deadline: it can be released and no longer reset.
    #[error("the dead-man switch passed its deadline {} ago; it may already have been released and can no longer be checked in{hint}", crate::deadman::human_duration(*.overdue_ms))]
    Overdue {
        /// How long ago the deadline passed, in ms.
        overdue_ms: i64,
        /// What the owner can do.
        hint: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = EscrowError> = std::result::Result<T, E>;
