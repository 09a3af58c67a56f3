//! Verification of the whole vault and existence proofs.
//!
//! [`Session::verify`] runs `vault-audit`'s full log verification (leaf hashes, tree, every
//! head's signature and consistency, key epochs) with a hook that checks each leaf against the
//! record it describes, then checks the records against the log in the other direction. The
//! first discrepancy is named exactly (leaf index and kind, or head). Deep mode also opens
//! every sealed record of the profile and checks content MACs and store commitments.

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, params};
use vault_audit::{
    AuditLog, Event, ExistenceProof, FieldValue, Opening, SignedTreeHead, VerifyOptions,
};

use crate::model::MemoryId;
use crate::session::{ROW_COLUMNS, RawRow, RecallRequest, Session};
use crate::versions;
use crate::{Result, VaultError};

/// The `memory.store` field that says how its `content_commitment` was made. Leaves without
/// it were written before issue 11: their salt was 32 zero bytes, so the commitment is an
/// unsalted fingerprint of the content (see `docs/vault.md`, "Unsalted commitments").
pub const COMMITMENT_VERSION_FIELD: &str = "commitment_version";
/// [`COMMITMENT_VERSION_FIELD`] of a commitment with a random, secret 32-byte salt.
pub const SALTED_COMMITMENT: i64 = 2;

/// True if `ev` is a `memory.store` event whose commitment is an unsalted fingerprint.
pub fn is_unsalted_store(ev: &Event) -> bool {
    ev.kind == "memory.store"
        && ev.get(vault_audit::COMMITMENT_FIELD).is_some()
        && ev
            .get(COMMITMENT_VERSION_FIELD)
            .and_then(FieldValue::as_int)
            != Some(SALTED_COMMITMENT)
}

/// The outcome of [`Session::verify`].
#[derive(Debug, Clone)]
pub struct VaultVerifyReport {
    /// The audit log's own report (leaves, heads, trust anchor, first discrepancy).
    pub audit: vault_audit::VerifyReport,
    /// Leaves checked against their records.
    pub records_checked: u64,
    /// Sealed records authenticated (row MACs; in deep mode also envelopes and commitments).
    pub sealed_checked: u64,
    /// The first problem found, in words (the audit discrepancy, or a record that disagrees
    /// with the log).
    pub first_problem: Option<String>,
    /// Leaf indices of `memory.store` events (any profile) whose content commitment is an
    /// unsalted fingerprint of the content (written before issue 11). Not tampering: a
    /// disclosure that stays in the append-only log; see `docs/vault.md`.
    pub unsalted_commitments: Vec<u64>,
    /// Heads held outside the file that the log was checked against (where from, tree size).
    pub outside_heads: Vec<(String, u64)>,
}

impl VaultVerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.first_problem.is_none()
    }
}

fn bytes_field<'e>(ev: &'e Event, name: &str) -> std::result::Result<&'e [u8], String> {
    ev.get(name)
        .and_then(FieldValue::as_bytes)
        .ok_or_else(|| format!("field `{name}` is missing"))
}

fn int_field(ev: &Event, name: &str) -> std::result::Result<i64, String> {
    ev.get(name)
        .and_then(FieldValue::as_int)
        .ok_or_else(|| format!("field `{name}` is missing"))
}

fn str_field<'e>(ev: &'e Event, name: &str) -> std::result::Result<&'e str, String> {
    ev.get(name)
        .and_then(FieldValue::as_str)
        .ok_or_else(|| format!("field `{name}` is missing"))
}

impl Session<'_> {
    /// Verifies the log and cross-checks it with the records (see the module docs), against
    /// every witness's latest head; see [`Session::verify_against`].
    pub fn verify(
        &mut self,
        deep: bool,
        extra_trusted: &[aim_crypto::AgentPublicKey],
    ) -> Result<VaultVerifyReport> {
        self.verify_against(deep, extra_trusted, &[])
    }

    /// Verifies the log and cross-checks it with the records (see the module docs). Heads
    /// must be signed by a key this session trusts: its own head-signing key (authenticated
    /// by the data key), plus `pinned` (keys given from outside, e.g. `--pubkey`; each must be
    /// a head-signing key of this log). The log must extend every witness's latest head and
    /// every head in `known` (heads kept outside the file, each with where it came from):
    /// that is what detects a removed tail and a file replaced by an older copy. Nothing is
    /// signed before the checks; a head is signed (and published) only if they all pass.
    pub fn verify_against(
        &mut self,
        deep: bool,
        pinned: &[aim_crypto::AgentPublicKey],
        known: &[(String, SignedTreeHead)],
    ) -> Result<VaultVerifyReport> {
        let mut report = self.verify_unsigned(deep, pinned)?;
        if report.first_problem.is_none() {
            report.first_problem = self.check_outside(pinned, known, &mut report)?;
        }
        if report.first_problem.is_none() {
            self.sign_head()?;
        }
        Ok(report)
    }

    /// The heads held outside the file (witnesses, `known`): each must be validly signed by a
    /// head-signing key of this log, and the log must extend it.
    fn check_outside(
        &self,
        pinned: &[aim_crypto::AgentPublicKey],
        known: &[(String, SignedTreeHead)],
        report: &mut VaultVerifyReport,
    ) -> Result<Option<String>> {
        let conn = self.conn();
        let epochs = AuditLog::key_epochs(conn)?;
        for key in pinned {
            if !epochs.iter().any(|e| &e.public_key == key) {
                return Ok(Some(format!(
                    "pinned key {} is not a head-signing key of this log",
                    key.key_id()
                )));
            }
        }
        let mut outside: Vec<(String, SignedTreeHead)> = known.to_vec();
        for w in &self.vault.witnesses {
            match w.latest() {
                Ok(Some(h)) => outside.push((w.describe(), h)),
                Ok(None) => {}
                Err(e) => return Ok(Some(format!("{}: cannot be read: {e}", w.describe()))),
            }
        }
        for (source, head) in &outside {
            if head.verify_signature().is_err()
                || !epochs.iter().any(|e| e.public_key == head.public_key)
            {
                return Ok(Some(format!(
                    "{source}: its head is not validly signed by a head-signing key of this log"
                )));
            }
            if let Err(e) = crate::witness::check_extends(conn, head, source) {
                return Ok(Some(e.to_string()));
            }
            report.outside_heads.push((source.clone(), head.tree_size));
        }
        Ok(None)
    }

    fn verify_unsigned(
        &mut self,
        deep: bool,
        extra_trusted: &[aim_crypto::AgentPublicKey],
    ) -> Result<VaultVerifyReport> {
        let conn = self.conn();
        let mut trusted = vec![self.head_public_key(), self.signer.public_key()];
        trusted.extend_from_slice(extra_trusted);
        // A profile whose key never held the log's signing epoch (a second profile) has no
        // authenticated copy of the signer's key: it falls back to trust on first use, which
        // the report shows as `TrustAnchor::FirstKeyInLog`.
        let epochs = AuditLog::key_epochs(conn)?;
        let pinned = epochs.iter().any(|e| trusted.contains(&e.public_key));
        let opts = VerifyOptions {
            trusted_keys: if pinned { trusted } else { Vec::new() },
            trust_first_key: !pinned,
            known_head: None,
        };
        let mut stored: HashSet<[u8; 16]> = HashSet::new();
        let mut last_recall: HashMap<[u8; 16], i64> = HashMap::new();
        let mut checked = 0u64;
        let mut unsalted = Vec::new();
        let mut latest: HashMap<[u8; versions::HASH_LEN], u64> = HashMap::new();
        let mut hook = |index: u64, ev: &Event| -> std::result::Result<(), String> {
            checked += 1;
            if is_unsalted_store(ev) {
                unsalted.push(index);
            }
            for h in versions::hashes(ev)? {
                latest.insert(h, index);
            }
            self.check_leaf(index, ev, &mut stored, &mut last_recall)
        };
        let audit = AuditLog::verify_with(conn, &opts, &mut hook)?;
        let mut report = VaultVerifyReport {
            first_problem: audit.discrepancy.as_ref().map(|d| d.to_string()),
            audit,
            records_checked: checked,
            sealed_checked: 0,
            unsalted_commitments: unsalted,
            outside_heads: Vec::new(),
        };
        if report.first_problem.is_none() && deep {
            report.first_problem = crate::deep::sqlite_structure(conn)?;
        }
        if report.first_problem.is_none() && deep {
            report.first_problem = crate::deep::schema(conn)?;
        }
        if report.first_problem.is_none() && deep {
            report.first_problem = crate::deep::change_seqs(conn)?;
        }
        if report.first_problem.is_none() && deep {
            report.first_problem = self.check_profile_row()?;
        }
        if report.first_problem.is_none() {
            report.first_problem = versions::compare_index(conn, &latest)?;
        }
        if report.first_problem.is_none() {
            report.first_problem = self.check_mutable_rows()?;
        }
        if report.first_problem.is_none() {
            report.first_problem =
                self.check_records(&stored, &last_recall, deep, &mut report.sealed_checked)?;
        }
        if report.first_problem.is_none()
            && report.audit.trust_anchor == vault_audit::TrustAnchor::None
        {
            report.first_problem = Some("no head in the log is signed by a trusted key".into());
        }
        Ok(report)
    }

    /// This profile's mutable rows (gate configuration, records, key slots of the current
    /// epoch, access records): MACs and versions.
    fn check_mutable_rows(&self) -> Result<Option<String>> {
        let conn = self.conn();
        if let Some(why) = self.lockdown_check()?.tampered {
            return Ok(Some(format!("profile_state ({}): {why}", self.profile)));
        }
        if let Err(e) = self.gate_config_versioned() {
            return Ok(Some(format!("gate_config ({}): {e}", self.profile)));
        }
        let names: Vec<(String, String)> = conn
            .prepare(
                "SELECT namespace, key FROM records WHERE profile_id = ?1 ORDER BY namespace, key",
            )?
            .query_map([&self.profile], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (ns, key) in names {
            if let Err(e) = self.get_record(&ns, &key) {
                return Ok(Some(format!("records ({}/{ns}/{key}): {e}", self.profile)));
            }
        }
        if let Err(e) = self.vault.check_slots(&self.profile, &self.keys) {
            return Ok(Some(format!("key_slots ({}): {e}", self.profile)));
        }
        let mems: Vec<(i64, Vec<u8>, i64)> = conn
            .prepare("SELECT seq, memory_id, key_epoch FROM memories WHERE profile_id = ?1 AND tombstoned_at_ms IS NULL ORDER BY seq")?
            .query_map([&self.profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, id, epoch) in mems {
            let id = MemoryId::from_slice(&id)?;
            let epoch = crate::vault::epoch_u32(epoch)?;
            if let Err(e) = crate::session::check_access_state(self, seq, &id, epoch) {
                return Ok(Some(format!("access_state (memory {id}): {e}")));
            }
        }
        Ok(None)
    }

    /// The profile row's public head-signing key matches the sealed one.
    fn check_profile_row(&self) -> Result<Option<String>> {
        let public: Vec<u8> = self.conn().query_row(
            "SELECT signer_public FROM profiles WHERE profile_id = ?1",
            [&self.profile],
            |r| r.get(0),
        )?;
        if public.as_slice() != self.signer.public_key().as_bytes().as_slice() {
            return Ok(Some(format!(
                "profiles ({}): signer_public does not match the sealed head-signing key",
                self.profile
            )));
        }
        Ok(None)
    }

    fn check_leaf(
        &self,
        index: u64,
        ev: &Event,
        stored: &mut HashSet<[u8; 16]>,
        last_recall: &mut HashMap<[u8; 16], i64>,
    ) -> std::result::Result<(), String> {
        let conn = self.conn();
        let db = |e: rusqlite::Error| format!("database: {e}");
        if ev.get(crate::unattended::UNATTENDED_FIELD).is_some() {
            let Some((profile, kind)) =
                crate::unattended::indexed(conn, index).map_err(|e| e.to_string())?
            else {
                return Err("an unattended event has no row in the unattended log".into());
            };
            return crate::unattended::check_entry(ev, &profile, &kind);
        }
        match ev.kind.as_str() {
            "memory.store" | "memory.tombstone" | "memory.purge" | "memory.recall"
            | "memory.intent.link" => {
                let id: [u8; 16] = bytes_field(ev, "memory_id")?
                    .try_into()
                    .map_err(|_| "memory_id is not 16 bytes".to_owned())?;
                let row: Option<(String, i64, Option<i64>)> = conn
                    .prepare_cached("SELECT profile_id, classification, tombstoned_at_ms FROM memories WHERE memory_id = ?1")
                    .map_err(db)?
                    .query_row([&id[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
                    .map_err(db)?;
                let Some((profile, class, tomb)) = row else {
                    let excluded: i64 = conn
                        .prepare_cached(
                            "SELECT count(*) FROM backup_exclusions WHERE memory_id = ?1",
                        )
                        .map_err(db)?
                        .query_row([&id[..]], |r| r.get(0))
                        .map_err(db)?;
                    if excluded > 0 {
                        return Ok(());
                    }
                    return Err(format!("memory {} has no record", MemoryId::from_bytes(id)));
                };
                if profile != str_field(ev, "profile")? {
                    return Err(format!(
                        "memory {} is recorded under profile `{profile}`",
                        MemoryId::from_bytes(id)
                    ));
                }
                if let Ok(c) = int_field(ev, "classification")
                    && c != class
                {
                    return Err(format!(
                        "memory {} has classification {class}, the log says {c}",
                        MemoryId::from_bytes(id)
                    ));
                }
                match ev.kind.as_str() {
                    "memory.store" => {
                        stored.insert(id);
                    }
                    "memory.tombstone" | "memory.purge" if tomb.is_none() => {
                        return Err(format!(
                            "memory {} was tombstoned but its record holds content again",
                            MemoryId::from_bytes(id)
                        ));
                    }
                    "memory.recall" => {
                        last_recall.insert(id, ev.time_ms);
                    }
                    _ => {}
                }
                Ok(())
            }
            "vault.lockdown.enter" => {
                let epoch = int_field(ev, "lockdown_epoch")?;
                let row: Option<(i64, String)> = conn
                    .prepare_cached(
                        "SELECT entered_at_ms, reason FROM lockdown_log WHERE epoch = ?1",
                    )
                    .map_err(db)?
                    .query_row([epoch], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(db)?;
                match row {
                    None => Err(format!(
                        "lockdown {epoch} has no record (was it lifted without a key?)"
                    )),
                    Some((at, reason))
                        if at != ev.time_ms || Ok(reason.as_str()) != str_field(ev, "reason") =>
                    {
                        Err(format!(
                            "lockdown_log (epoch {epoch}): its time or reason differs from its audit event"
                        ))
                    }
                    Some(_) => Ok(()),
                }
            }
            "profile.create" => {
                let p = str_field(ev, "profile")?;
                let created: Option<i64> = conn
                    .prepare_cached("SELECT created_at_ms FROM profiles WHERE profile_id = ?1")
                    .map_err(db)?
                    .query_row([p], |r| r.get(0))
                    .optional()
                    .map_err(db)?;
                match created {
                    None => Err(format!("profile `{p}` has no record")),
                    Some(t) if t != ev.time_ms => Err(format!(
                        "profiles ({p}): created_at_ms {t} differs from its profile.create event"
                    )),
                    Some(_) => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Records → log: every memory was stored through the log; cooldown access records are at
    /// least as recent as the last logged recall; this profile's rows authenticate (deep:
    /// envelopes, content MACs and commitments too).
    fn check_records(
        &self,
        stored: &HashSet<[u8; 16]>,
        last_recall: &HashMap<[u8; 16], i64>,
        deep: bool,
        sealed: &mut u64,
    ) -> Result<Option<String>> {
        let conn = self.conn();
        // Unattended index → log: every row names a leaf that is that unattended event.
        let size = AuditLog::tree_size(conn)?;
        let mut stmt = conn.prepare("SELECT leaf, profile_id, kind FROM unattended_log")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (leaf, profile, kind): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let Some(leaf) = u64::try_from(leaf).ok().filter(|l| *l < size) else {
                return Ok(Some(format!(
                    "unattended log row for leaf {leaf} points outside the audit log"
                )));
            };
            if let Err(why) =
                crate::unattended::check_entry(&AuditLog::leaf(conn, leaf)?, &profile, &kind)
            {
                return Ok(Some(format!("unattended log row for leaf {leaf}: {why}")));
            }
        }
        let mut stmt = conn.prepare("SELECT memory_id FROM memories")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: Vec<u8> = r.get(0)?;
            let arr: [u8; 16] = id.as_slice().try_into().unwrap_or([0; 16]);
            if !stored.contains(&arr) {
                return Ok(Some(format!(
                    "memory {} has no memory.store event in the log",
                    MemoryId::from_bytes(arr)
                )));
            }
        }
        let cfg = self.gate_config()?;
        let sql = format!("SELECT {ROW_COLUMNS} FROM memories WHERE profile_id = ?1 ORDER BY seq");
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([&self.profile])?;
        while let Some(r) = rows.next()? {
            let raw = RawRow::from_row(r)?;
            let seq = raw.seq;
            let id = MemoryId::from_slice(&raw.memory_id)?;
            let row = match self.verify_row(raw) {
                Ok(row) => row,
                Err(why) => return Ok(Some(format!("memory {id}: {why}"))),
            };
            *sealed += 1;
            let cooldown = row
                .header
                .policy
                .cooldown_ms
                .max(cfg.level(row.header.classification).min_cooldown_ms);
            if cooldown > 0
                && row.raw.tombstoned_at_ms.is_none()
                && let Some(&t) = last_recall.get(id.as_bytes())
            {
                let last: Option<i64> = conn
                    .query_row(
                        "SELECT last_allowed_ms FROM access_state WHERE seq = ?1",
                        [seq],
                        |r| r.get(0),
                    )
                    .optional()?;
                if last.is_none_or(|l| l < t) {
                    return Ok(Some(format!(
                        "memory {id}: its access record is older than its last logged recall (cooldown rolled back)"
                    )));
                }
            }
            if deep
                && row.raw.tombstoned_at_ms.is_some()
                && let Some(p) = self.check_index_of(seq, &id, None, row.header.key_epoch)?
            {
                return Ok(Some(p));
            }
            if deep && row.raw.tombstoned_at_ms.is_none() {
                let (content, meta) = match self.open_row(&row) {
                    Ok(x) => x,
                    Err(why) => return Ok(Some(format!("memory {id}: {why}"))),
                };
                if let Some(p) = self.check_index_of(
                    seq,
                    &id,
                    Some((content.expose(), &meta)),
                    row.header.key_epoch,
                )? {
                    return Ok(Some(p));
                }
                let leaf: Option<i64> = conn.query_row(
                    "SELECT store_leaf FROM memories WHERE seq = ?1",
                    [seq],
                    |r| r.get(0),
                )?;
                let Some(leaf) = leaf.and_then(|l| u64::try_from(l).ok()) else {
                    return Ok(Some(format!("memory {id}: no store leaf index")));
                };
                let ev = AuditLog::leaf(conn, leaf)?;
                let want = vault_audit::commitment(&meta.commitment_salt, content.expose());
                if ev.kind != "memory.store"
                    || ev
                        .get(vault_audit::COMMITMENT_FIELD)
                        .and_then(FieldValue::as_bytes)
                        != Some(&want[..])
                {
                    return Ok(Some(format!(
                        "memory {id}: its content does not open the commitment in leaf {leaf}"
                    )));
                }
            }
        }
        if deep {
            return crate::deep::fts(conn);
        }
        Ok(None)
    }

    /// A self-contained existence proof of memory `id`'s `memory.store` event: the event, its
    /// inclusion proof and a signed head (a head is signed first). With `open`, the memory is
    /// recalled through its gates (audited) and the opening (salt and content) is included,
    /// which discloses the content to whoever checks the proof.
    pub fn prove(&mut self, id: MemoryId, open: Option<RecallRequest>) -> Result<ExistenceProof> {
        let leaf: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT store_leaf FROM memories WHERE memory_id = ?1 AND profile_id = ?2",
                params![&id.as_bytes()[..], self.profile],
                |r| r.get(0),
            )
            .optional()?;
        let leaf = leaf
            .ok_or_else(|| VaultError::MemoryNotFound(id.to_string()))?
            .and_then(|l| u64::try_from(l).ok())
            .ok_or_else(|| VaultError::Integrity(format!("memory {id} has no store leaf index")))?;
        let ev = AuditLog::leaf(self.conn(), leaf)?;
        if ev.kind != "memory.store"
            || bytes_field(&ev, "memory_id").ok() != Some(&id.as_bytes()[..])
        {
            return Err(VaultError::Integrity(format!(
                "leaf {leaf} is not the store event of memory {id}"
            )));
        }
        let opening = match open {
            None => None,
            Some(req) => {
                let recalled = self.recall(id, req)?;
                let raw = self
                    .load_raw(&id)?
                    .ok_or_else(|| VaultError::MemoryNotFound(id.to_string()))?;
                let row = self.verify_row(raw).map_err(VaultError::Integrity)?;
                let (_, meta) = self.open_row(&row).map_err(VaultError::Integrity)?;
                Some(Opening {
                    r: meta.commitment_salt.to_vec(),
                    content: recalled.content.expose().to_vec(),
                })
            }
        };
        self.sign_head()?;
        Ok(AuditLog::existence_proof(self.conn(), leaf, opening)?)
    }
}
