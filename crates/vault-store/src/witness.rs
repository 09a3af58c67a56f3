//! Publishing signed heads outside the vault file, and checking the log against them.
//!
//! By default every vault has a `FileWitness` beside it (`<vault file>.witness`, see
//! [`default_witness_path`]); more witnesses (the AIM server's) are added with
//! [`crate::VaultOptions::witness`]. Before a session signs a head (and when it unlocks) the
//! log must extend every witness's latest head: a truncated log, or a file replaced by an older
//! copy, is refused with [`VaultError::Witness`]. After the head is committed it is published
//! to every witness with the consistency proof from the head the witness held.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use vault_audit::{AuditLog, SignedTreeHead, Witness};

use crate::{Result, VaultError};

/// A witness as the vault holds it.
pub type SharedWitness = Arc<dyn Witness + Send + Sync>;

/// The default witness file of the vault at `vault`: the same path with `.witness` appended.
/// It catches truncation and rollback by anyone who cannot also rewrite this file; keep a copy
/// elsewhere (or use the AIM server's witness) against someone who can.
pub fn default_witness_path(vault: &Path) -> PathBuf {
    let mut s = vault.as_os_str().to_owned();
    s.push(".witness");
    PathBuf::from(s)
}

fn refused(w: &dyn Witness, reason: String) -> VaultError {
    VaultError::Witness {
        witness: w.describe(),
        reason,
    }
}

/// Checks that the log extends `head` (a head held outside the file): its size is in the log
/// and the log's root at that size is the head's root. `source` names where it came from.
pub fn check_extends(conn: &Connection, head: &SignedTreeHead, source: &str) -> Result<()> {
    let size = AuditLog::tree_size(conn)?;
    if head.tree_size > size {
        return Err(VaultError::Witness {
            witness: source.to_owned(),
            reason: format!(
                "the log has {size} events but a head published at {} covers {}: events were \
                 removed or the file was replaced by an older copy",
                head.time_ms, head.tree_size
            ),
        });
    }
    if AuditLog::root(conn, head.tree_size)? != head.root {
        return Err(VaultError::Witness {
            witness: source.to_owned(),
            reason: format!(
                "the log's first {} events differ from the head published for them: the log \
                 was rewritten or the file replaced by another copy",
                head.tree_size
            ),
        });
    }
    Ok(())
}

/// Every witness's latest head, each checked against the log.
pub(crate) fn check_all(conn: &Connection, witnesses: &[SharedWitness]) -> Result<()> {
    for w in witnesses {
        let latest = w
            .latest()
            .map_err(|e| refused(w.as_ref(), format!("cannot read it: {e}")))?;
        if let Some(head) = latest {
            check_extends(conn, &head, &w.describe())?;
        }
    }
    Ok(())
}

/// Publishes `head` (already committed in the log) to every witness.
pub(crate) fn publish_all(
    conn: &Connection,
    witnesses: &[SharedWitness],
    head: &SignedTreeHead,
) -> Result<()> {
    for w in witnesses {
        let held = w
            .latest()
            .map_err(|e| refused(w.as_ref(), format!("cannot read it: {e}")))?;
        let proof = match held {
            Some(h) if h.tree_size < head.tree_size => Some(
                AuditLog::consistency_proof(conn, h.tree_size, head.tree_size)
                    .map_err(|e| refused(w.as_ref(), e.to_string()))?,
            ),
            _ => None,
        };
        w.publish(head, proof.as_ref())
            .map_err(|e| refused(w.as_ref(), e.to_string()))?;
    }
    Ok(())
}
