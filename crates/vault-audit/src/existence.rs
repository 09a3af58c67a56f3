//! Self-contained existence proofs and the content commitment scheme.
//!
//! A memory's `memory.store` event carries `content_commitment` =
//! `SHA-256("aim-vault-commit-v1" ‖ r ‖ content)` with `r` a secret 32-byte value per memory.
//! This is a hash commitment (hiding because `r` is secret and random, binding because SHA-256
//! resists collisions), **not** a zero-knowledge proof: proving the content means revealing it
//! and `r` to the checker.

use aim_crypto::AgentPublicKey;
use aim_crypto::hash::sha256_parts;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::event::{Event, FieldValue};
use crate::hash::{Hash, leaf_hash};
use crate::head::{SignedTreeHead, serde_b64};
use crate::log::AuditLog;
use crate::proof::{ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion};

/// Domain tag of the content commitment.
pub const COMMITMENT_DOMAIN: &[u8] = b"aim-vault-commit-v1";
/// The event field that carries a content commitment (32 bytes).
pub const COMMITMENT_FIELD: &str = "content_commitment";
/// Current existence proof format version.
pub const EXISTENCE_PROOF_VERSION: u32 = 1;

/// `SHA-256("aim-vault-commit-v1" ‖ r ‖ content)`.
pub fn commitment(r: &[u8; 32], content: &[u8]) -> Hash {
    sha256_parts(&[COMMITMENT_DOMAIN, r, content])
}

/// The opening of a content commitment: the secret `r` and the content. Revealing it discloses
/// the content to whoever checks the proof.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    /// The per-memory secret, base64.
    #[serde(with = "serde_b64")]
    pub r: Vec<u8>,
    /// The content, base64.
    #[serde(with = "serde_b64")]
    pub content: Vec<u8>,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opening(..)")
    }
}

impl Opening {
    /// Checks that this opens the commitment in `event`'s `content_commitment` field.
    pub fn check(&self, event: &Event) -> Result<()> {
        let r: [u8; 32] =
            self.r.as_slice().try_into().map_err(|_| {
                AuditError::ExistenceProofInvalid("opening r is not 32 bytes".into())
            })?;
        let stored = event
            .get(COMMITMENT_FIELD)
            .and_then(FieldValue::as_bytes)
            .ok_or_else(|| {
                AuditError::ExistenceProofInvalid(format!(
                    "event has no bytes field {COMMITMENT_FIELD}"
                ))
            })?;
        if aim_crypto::kdf::ct_eq(stored, &commitment(&r, &self.content)) {
            Ok(())
        } else {
            Err(AuditError::ExistenceProofInvalid(
                "opening does not match the commitment".into(),
            ))
        }
    }
}

/// A self-contained proof that an event is in a log whose head a known key signed: the event
/// bytes, its inclusion proof, the signed head (which names its public key) and, optionally,
/// the opening of the event's content commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistenceProof {
    /// Format version ([`EXISTENCE_PROOF_VERSION`]).
    pub version: u32,
    /// The encoded event, base64.
    #[serde(with = "serde_b64")]
    pub event: Vec<u8>,
    /// Inclusion of the event in the head's tree.
    pub inclusion: InclusionProof,
    /// The signed head.
    pub head: SignedTreeHead,
    /// The commitment opening, if the owner chose to reveal the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening: Option<Opening>,
}

impl ExistenceProof {
    /// Checks the proof against `trusted_key` and returns the event: the head is signed by
    /// that key, the event is included at the stated index, and the event decodes. If an
    /// opening is present it must open the event's commitment.
    pub fn check(&self, trusted_key: &AgentPublicKey) -> Result<Event> {
        let bad = |m: &str| AuditError::ExistenceProofInvalid(m.to_owned());
        if self.version != EXISTENCE_PROOF_VERSION {
            return Err(bad("unknown existence proof version"));
        }
        self.head
            .verify_with(trusted_key)
            .map_err(|e| bad(&e.to_string()))?;
        if self.inclusion.tree_size != self.head.tree_size {
            return Err(bad(
                "inclusion proof is for a different tree size than the head",
            ));
        }
        verify_inclusion(&leaf_hash(&self.event), &self.inclusion, &self.head.root)
            .map_err(|e| bad(&e.to_string()))?;
        let event = Event::decode(&self.event).map_err(|e| bad(&e.to_string()))?;
        if let Some(opening) = &self.opening {
            opening.check(&event)?;
        }
        Ok(event)
    }

    /// [`ExistenceProof::check`], then checks that `later` (a head the checker trusts, e.g.
    /// from a witness, signed by `later_key`) extends this proof's head via `consistency`.
    pub fn check_against(
        &self,
        trusted_key: &AgentPublicKey,
        later: &SignedTreeHead,
        later_key: &AgentPublicKey,
        consistency: &ConsistencyProof,
    ) -> Result<Event> {
        let event = self.check(trusted_key)?;
        later.verify_with(later_key)?;
        if consistency.old_size != self.head.tree_size || consistency.new_size != later.tree_size {
            return Err(AuditError::ExistenceProofInvalid(
                "consistency proof is for other sizes".into(),
            ));
        }
        verify_consistency(&self.head.root, &later.root, consistency)?;
        Ok(event)
    }
}

impl AuditLog {
    /// The existence proof of leaf `index` against the latest signed head (sign a head first if
    /// none covers the leaf).
    pub fn existence_proof(
        conn: &Connection,
        index: u64,
        opening: Option<Opening>,
    ) -> Result<ExistenceProof> {
        let head = AuditLog::latest_head(conn)?.ok_or(AuditError::NotYetSigned { index })?;
        if index >= head.tree_size {
            return Err(AuditError::NotYetSigned { index });
        }
        Ok(ExistenceProof {
            version: EXISTENCE_PROOF_VERSION,
            event: AuditLog::leaf_bytes(conn, index)?,
            inclusion: AuditLog::inclusion_proof(conn, index, head.tree_size)?,
            head,
            opening,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_is_the_documented_hash() {
        let r = [9u8; 32];
        let mut input = b"aim-vault-commit-v1".to_vec();
        input.extend_from_slice(&r);
        input.extend_from_slice(b"secret");
        assert_eq!(commitment(&r, b"secret"), aim_crypto::hash::sha256(&input));
        assert_ne!(commitment(&r, b"secret"), commitment(&[8u8; 32], b"secret"));
    }

    #[test]
    fn opening_checks_and_hides_in_debug() {
        let r = [1u8; 32];
        let event = Event::new("memory.store", 0).with(COMMITMENT_FIELD, commitment(&r, b"hi"));
        let good = Opening {
            r: r.to_vec(),
            content: b"hi".to_vec(),
        };
        good.check(&event).unwrap();
        let wrong = Opening {
            content: b"ho".to_vec(),
            ..good.clone()
        };
        assert!(wrong.check(&event).is_err());
        let short = Opening {
            r: vec![1; 31],
            ..good.clone()
        };
        assert!(short.check(&event).is_err());
        assert!(good.check(&Event::new("memory.store", 0)).is_err());
        assert_eq!(format!("{good:?}"), "Opening(..)");
    }
}
