//! The one error type of this crate.

use crate::hash::Hash;

/// Everything that can go wrong in `vault-audit`, other than a verification finding (those are
/// [`crate::Discrepancy`] values inside a [`crate::VerifyReport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// SQLite failed.
    #[error("audit log storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Reading or writing an export or witness file failed.
    #[error("audit log I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A cryptographic operation failed (bad key or signature encoding).
    #[error("audit log crypto: {0}")]
    Crypto(#[from] aim_crypto::CryptoError),
    /// An event cannot be encoded: its kind, a field name or a value breaks the format's rules.
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// Bytes are not a canonical encoded event.
    #[error("malformed audit event at byte {offset}: {reason}")]
    MalformedEvent {
        /// Byte offset of the problem.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// Event kinds starting with `audit.` are written only by this crate.
    #[error("event kind {0:?} is reserved for the audit log itself")]
    ReservedKind(String),
    /// A leaf index is not in the tree.
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was checked against.
        tree_size: u64,
    },
    /// A tree size is larger than the log, or a pair of sizes is in the wrong order.
    #[error("tree size {size} is invalid here (log has {tree_size} leaves)")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The log's current size.
        tree_size: u64,
    },
    /// A stored node or leaf hash is missing or malformed: the database was damaged or edited.
    /// Run verification to locate the problem.
    #[error("audit log storage is corrupt: {0}")]
    Corrupt(String),
    /// An inclusion or consistency proof does not verify.
    #[error("proof does not verify: {0}")]
    ProofInvalid(&'static str),
    /// A signed tree head's signature or key id does not check out.
    #[error("signed tree head is invalid: {0}")]
    HeadInvalid(&'static str),
    /// A head cannot be signed because no signing key has been announced in the log yet.
    #[error("no signing key has been announced in the audit log; call announce_key first")]
    NoKeyEpoch,
    /// The signer's key is not the log's current key epoch (nor the previous key handing over).
    #[error("key {key_id} may not sign heads now: {reason}")]
    KeyNotCurrent {
        /// The signer's key id.
        key_id: String,
        /// Why.
        reason: &'static str,
    },
    /// The log's key-epoch chain is broken: an epoch is not certified by the previous key (and
    /// has no legacy hand-over head), or its announcement leaf disagrees with the epoch index.
    /// Someone with write access to the file inserted a signing key; nothing is signed.
    #[error(
        "head-signing key epoch {epoch} (key {key_id}, leaf {leaf_index}) is not valid: {reason}; \
         someone with write access to the vault file may have inserted a signing key"
    )]
    KeyChainBroken {
        /// The epoch number.
        epoch: u64,
        /// Its key id.
        key_id: String,
        /// Its announcement leaf.
        leaf_index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A key announcement does not extend the log's key chain.
    #[error("cannot announce key {key_id}: {reason}")]
    BadAnnouncement {
        /// The announced key's id.
        key_id: String,
        /// Why.
        reason: String,
    },
    /// An existence proof was asked for a leaf that no signed head covers yet.
    #[error("leaf {index} is not covered by a signed tree head yet; sign a head first")]
    NotYetSigned {
        /// The leaf index.
        index: u64,
    },
    /// A self-contained existence proof failed its check.
    #[error("existence proof rejected: {0}")]
    ExistenceProofInvalid(String),
    /// An export file is not in the documented format.
    #[error("audit export line {line}: {reason}")]
    ExportMalformed {
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        reason: String,
    },
    /// A witness holds a head of the same size with a different root: the log was forked.
    #[error(
        "fork: witness holds tree size {tree_size} with root {} but was given root {}",
        hex::encode(held_root),
        hex::encode(presented_root)
    )]
    Fork {
        /// The tree size both heads claim.
        tree_size: u64,
        /// The root the witness already holds.
        held_root: Hash,
        /// The root it was given.
        presented_root: Hash,
    },
    /// A witness refused a head that is not provably an extension of the head it holds.
    #[error("witness holds tree size {held_size}; head of size {new_size} rejected: {reason}")]
    WitnessInconsistent {
        /// The latest size the witness holds.
        held_size: u64,
        /// The size presented.
        new_size: u64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A witness file is damaged or was edited.
    #[error("witness file line {line}: {reason}")]
    WitnessCorrupt {
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;
