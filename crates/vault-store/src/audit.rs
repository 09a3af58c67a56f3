//! The vault's use of the audit log: event kinds, appending inside the operation's own
//! transaction, and head signing.
//!
//! Event kinds written by the vault (fields never carry content, metadata, tags, intents,
//! justifications or search terms; free text supplied by callers is recorded only as a keyed
//! MAC when at all):
//!
//! | kind | fields |
//! |---|---|
//! | `profile.create` | profile, key_epoch, slot |
//! | `profile.unlock` / `profile.unlock.failed` | profile, slot / kind, reason |
//! | `profile.slot.add` / `profile.slot.remove` | profile, slot, key_epoch |
//! | `profile.rotate.start` / `.finish` / `.abort` | profile, from_epoch, to_epoch, memories, invalidated_escrows |
//! | `memory.store` | profile, memory_id, classification, creator, key_epoch, content_commitment |
//! | `memory.recall` | profile, memory_id, classification, requester_mac, justification_mac, approver |
//! | `memory.recall.denied` | profile, memory_id, classification, reason, detail, requester_mac |
//! | `memory.search` / `memory.search.denied` | profile, query_mac, results / reason |
//! | `memory.tombstone` / `memory.purge` | profile, memory_id, classification, reason_mac |
//! | `memory.intent.link` | profile, memory_id |
//! | `vault.lockdown.enter` / `vault.lockdown.exit` | lockdown_epoch, profile |
//! | `vault.backup` / `vault.restore` | profile, backup_id, kind, file_hash, parent_hash, memories |
//! | `gates.config.change` | profile, config_hash |
//! | `record.put` / `record.delete` | profile, namespace, key, sealing |
//! | `recovery.create` / `recovery.remove` | profile, escrow_id, fingerprint |
//! | other components' kinds (`deadman.release`, ...) | profile, unattended = true, integers, booleans, labels (see [`crate::unattended`]) |

use rusqlite::Connection;
use vault_audit::AuditLog;
pub use vault_audit::{Event, FieldValue};

use crate::Result;

/// Creates the audit tables (inside the vault's migration).
pub(crate) fn create_schema(conn: &Connection) -> Result<()> {
    vault_audit::create_schema(conn)?;
    Ok(())
}

/// Appends `event` in the caller's transaction; returns the leaf index.
pub(crate) fn append(conn: &Connection, event: &Event) -> Result<u64> {
    Ok(AuditLog::append(conn, event)?)
}
