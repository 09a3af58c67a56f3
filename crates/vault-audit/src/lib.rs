//! RFC 6962 Merkle audit log for the memory vault, with signed tree heads and inclusion and
//! consistency proofs.
//!
//! | module | what |
//! |---|---|
//! | [`event`] | vault events and their canonical, versioned binary encoding |
//! | [`hash`] | RFC 6962 leaf and node hashes |
//! | [`proof`] | inclusion and consistency proofs and their verification |
//! | [`log`] | the SQLite-backed log: O(log n) appends, proofs, key epochs, signed heads |
//! | [`head`] | signed tree heads and the [`HeadSigner`] trait |
//! | [`epoch`] | key epochs (`audit.key_epoch` events) |
//! | [`verify`] | full verification with an exact first discrepancy |
//! | [`export`] | the offline export format and its verifier |
//! | [`existence`] | self-contained existence proofs and content commitments |
//! | [`witness`] | the [`Witness`] trait and the append-only [`FileWitness`] |
//!
//! ```
//! use aim_crypto::AgentKeypair;
//! use rusqlite::Connection;
//! use vault_audit::{AuditLog, Event, VerifyOptions, create_schema, hash::leaf_hash, verify_inclusion};
//!
//! let conn = Connection::open_in_memory()?;
//! create_schema(&conn)?;
//! let key = AgentKeypair::generate()?;
//! let tx = conn.unchecked_transaction()?;
//! AuditLog::announce_key(&tx, &key.public_key(), None, 1_000)?;
//! let index = AuditLog::append(&tx, &Event::new("memory.store", 1_001).with("memory_id", "m1"))?;
//! tx.commit()?;
//!
//! let head = AuditLog::sign_head(&conn, &key, 1_002)?;
//! let proof = AuditLog::inclusion_proof(&conn, index, head.tree_size)?;
//! let leaf = leaf_hash(&AuditLog::leaf_bytes(&conn, index)?);
//! verify_inclusion(&leaf, &proof, &head.root)?;
//!
//! let opts = VerifyOptions { trusted_keys: vec![key.public_key()], ..Default::default() };
//! assert!(AuditLog::verify(&conn, &opts)?.is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod epoch;
mod error;
pub mod event;
pub mod existence;
pub mod export;
pub mod hash;
pub mod head;
pub mod log;
pub mod proof;
pub mod verify;
pub mod witness;

pub use epoch::{KEY_EPOCH_KIND, KeyEpoch};
pub use error::{AuditError, Result};
pub use event::{Event, FieldValue};
pub use existence::{COMMITMENT_FIELD, ExistenceProof, Opening, commitment};
pub use export::verify_export;
pub use hash::Hash;
pub use head::{HeadSigner, SignedTreeHead, sth_message};
pub use log::{AuditLog, create_schema};
pub use proof::{
    ConsistencyProof, InclusionProof, MemoryTree, verify_consistency, verify_inclusion,
};
pub use verify::{Discrepancy, RecordHook, TrustAnchor, VerifyOptions, VerifyReport};
pub use witness::{FileWitness, PublishedHead, Witness, WitnessReceipt};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
