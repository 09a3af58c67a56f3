//! Audited events recorded without an unlocked session.
//!
//! Some steps happen when nobody holds the profile's key: a dead-man switch releasing its
//! packages after the owner stopped checking in is the example. Such a step still has to be
//! audited, and its outcome must be durable state that later key-holding operations cannot
//! overwrite. [`Vault::record_unattended`] does both in one SQLite transaction: it appends the
//! event to the audit log and indexes it in the append-only `unattended_log` table (the only
//! state a keyless process writes), so the index row and the leaf commit or fail together.
//! [`Vault::unattended_events`] reads them back.
//!
//! What an unattended event may carry is deliberately narrow, so it cannot become a channel
//! for secrets or plaintext: integers, booleans and short identifiers (labels) only, no bytes
//! and no free text. Kinds the vault itself writes (`profile.*`, `memory.*`, `vault.*`,
//! `gates.*`, `record.*`, `recovery.*`, `audit.*`) are refused, so an unattended writer cannot
//! pose as a key holder. Every unattended event carries `unattended = true` and the profile,
//! and its time comes from the vault's clock.
//!
//! Nothing here is signed when it is appended: the leaf is covered by the next tree head a
//! session signs (as every leaf is), and `Session::verify` checks leaf and index row against
//! each other in both directions.

use rusqlite::params;
use vault_audit::{AuditLog, Event, FieldValue};

use crate::audit;
use crate::db;
use crate::vault::Vault;
use crate::{Result, VaultError};

/// Field every unattended event carries (`true`).
pub const UNATTENDED_FIELD: &str = "unattended";
/// Longest label value, in bytes.
pub const MAX_LABEL_LEN: usize = 128;
/// Most fields a caller may add (besides `profile` and `unattended`).
pub const MAX_UNATTENDED_FIELDS: usize = 16;
/// Kind prefixes reserved for events the vault writes itself with a key.
pub const RESERVED_KINDS: &[&str] = &[
    "profile.",
    "memory.",
    "vault.",
    "gates.",
    "record.",
    "recovery.",
    "audit.",
];

/// An event to record without a session: a kind, the profile it concerns and a few
/// non-secret fields (see the module docs for what is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnattendedEvent {
    kind: String,
    profile: String,
    fields: Vec<(String, FieldValue)>,
}

impl UnattendedEvent {
    /// An event of `kind` (e.g. `deadman.release`) about `profile`.
    pub fn new(kind: &str, profile: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            profile: profile.to_owned(),
            fields: Vec::new(),
        }
    }

    /// Adds an integer field.
    pub fn int(mut self, name: &str, value: i64) -> Self {
        self.fields.push((name.to_owned(), FieldValue::Int(value)));
        self
    }

    /// Adds a boolean field.
    pub fn flag(mut self, name: &str, value: bool) -> Self {
        self.fields.push((name.to_owned(), FieldValue::Bool(value)));
        self
    }

    /// Adds a short identifier (1–128 bytes of `A-Z a-z 0-9 . _ : @ + -`).
    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.fields
            .push((name.to_owned(), FieldValue::Str(value.to_owned())));
        self
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Checks the restrictions of the module docs and builds the audit event at `time_ms`.
    fn to_event(&self, time_ms: i64) -> Result<Event> {
        let bad = |m: String| Err(VaultError::InvalidInput(m));
        if let Some(p) = RESERVED_KINDS.iter().find(|p| self.kind.starts_with(**p)) {
            return bad(format!(
                "unattended event kind `{}` uses the reserved prefix `{p}`",
                self.kind
            ));
        }
        if !self.kind.contains('.') {
            return bad(format!(
                "unattended event kind `{}` must be `component.action`",
                self.kind
            ));
        }
        if self.fields.len() > MAX_UNATTENDED_FIELDS {
            return bad(format!(
                "an unattended event has at most {MAX_UNATTENDED_FIELDS} fields"
            ));
        }
        let mut event = Event::new(self.kind.as_str(), time_ms)
            .with("profile", self.profile.as_str())
            .with(UNATTENDED_FIELD, true);
        for (name, value) in &self.fields {
            if name == "profile" || name == UNATTENDED_FIELD || event.get(name).is_some() {
                return bad(format!("unattended event field `{name}` is given twice"));
            }
            if let FieldValue::Str(s) = value
                && !is_label(s)
            {
                return bad(format!(
                    "unattended event field `{name}` must be a short identifier (1–{MAX_LABEL_LEN} bytes of A-Z a-z 0-9 . _ : @ + -)"
                ));
            }
            event = event.with(name.as_str(), value.clone());
        }
        event.validate()?;
        Ok(event)
    }
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'+' | b'-')
        })
}

/// An unattended event as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnattendedEntry {
    /// Its leaf index in the audit log.
    pub leaf: u64,
    /// The event as appended (with `profile`, `unattended` and its time).
    pub event: Event,
}

impl Vault {
    /// The vault clock's current time (Unix ms): the time every audited event of this vault
    /// carries.
    pub fn now_ms(&self) -> i64 {
        self.now()
    }

    /// Appends `event` to the audit log without a session and indexes it in the append-only
    /// `unattended_log`, in one transaction. The profile must exist. Returns the entry.
    pub fn record_unattended(&self, event: &UnattendedEvent) -> Result<UnattendedEntry> {
        let now = self.now();
        let ev = event.to_event(now)?;
        self.profile_epoch(&event.profile)?;
        let tx = db::write_tx(&self.conn)?;
        let leaf = audit::append(&tx, &ev)?;
        tx.execute(
            "INSERT INTO unattended_log(leaf, profile_id, kind, time_ms) VALUES (?1, ?2, ?3, ?4)",
            params![leaf_i64(leaf)?, event.profile, event.kind, now],
        )?;
        tx.commit()?;
        Ok(UnattendedEntry { leaf, event: ev })
    }

    /// The unattended events of `kind` about `profile`, oldest first, read back from the audit
    /// log through the index (a row whose leaf disagrees is an integrity error).
    pub fn unattended_events(&self, profile: &str, kind: &str) -> Result<Vec<UnattendedEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT leaf FROM unattended_log WHERE profile_id = ?1 AND kind = ?2 ORDER BY leaf",
        )?;
        let leaves = stmt
            .query_map(params![profile, kind], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let leaf = u64::try_from(leaf)
                .map_err(|_| VaultError::corrupt("unattended log", "negative leaf index"))?;
            let event = AuditLog::leaf(&self.conn, leaf)?;
            check_entry(&event, profile, kind).map_err(|why| {
                VaultError::Integrity(format!("unattended log row for leaf {leaf}: {why}"))
            })?;
            out.push(UnattendedEntry { leaf, event });
        }
        Ok(out)
    }
}

fn leaf_i64(leaf: u64) -> Result<i64> {
    i64::try_from(leaf).map_err(|_| VaultError::corrupt("audit log", "leaf index out of range"))
}

/// Whether leaf `event` is the unattended event an index row `(profile, kind)` says it is.
pub(crate) fn check_entry(
    event: &Event,
    profile: &str,
    kind: &str,
) -> std::result::Result<(), String> {
    if event.kind != kind {
        return Err(format!(
            "the leaf is a `{}` event, not `{kind}`",
            event.kind
        ));
    }
    if event.get("profile").and_then(FieldValue::as_str) != Some(profile) {
        return Err(format!("the leaf is not about profile `{profile}`"));
    }
    if event.get(UNATTENDED_FIELD).and_then(FieldValue::as_bool) != Some(true) {
        return Err("the leaf is not marked unattended".into());
    }
    Ok(())
}

/// Whether the log leaf at `index` has its `unattended_log` row (for verification).
pub(crate) fn indexed(conn: &rusqlite::Connection, index: u64) -> Result<Option<(String, String)>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT profile_id, kind FROM unattended_log WHERE leaf = ?1")?
        .query_row([leaf_i64(index)?], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_reserved_kinds_bytes_free_text_and_duplicates() {
        for kind in [
            "memory.recall",
            "profile.unlock",
            "audit.key_epoch",
            "record.put",
            "deadman",
        ] {
            assert!(
                UnattendedEvent::new(kind, "p").to_event(1).is_err(),
                "{kind} accepted"
            );
        }
        let ok = UnattendedEvent::new("deadman.release", "p")
            .int("heirs", 2)
            .label("escrow_id", "0190f4c2-aaaa")
            .to_event(5)
            .unwrap();
        assert_eq!(ok.get(UNATTENDED_FIELD), Some(&FieldValue::Bool(true)));
        assert_eq!(ok.get("profile"), Some(&FieldValue::Str("p".into())));
        assert_eq!(ok.time_ms, 5);
        for text in ["", "has space", "line\nbreak", &"x".repeat(129), "café"] {
            assert!(
                UnattendedEvent::new("deadman.release", "p")
                    .label("note", text)
                    .to_event(1)
                    .is_err(),
                "{text:?} accepted"
            );
        }
        assert!(
            UnattendedEvent::new("deadman.release", "p")
                .int("profile", 1)
                .to_event(1)
                .is_err()
        );
        assert!(
            UnattendedEvent::new("deadman.release", "p")
                .int("n", 1)
                .int("n", 2)
                .to_event(1)
                .is_err()
        );
        let mut many = UnattendedEvent::new("deadman.release", "p");
        for i in 0..=MAX_UNATTENDED_FIELDS {
            many = many.int(&format!("f{i}"), 1);
        }
        assert!(many.to_event(1).is_err());
    }
}
