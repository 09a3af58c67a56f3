//! Data-key rotation: a new data key for a profile, every memory re-encrypted in batches,
//! resumable after a crash at any point.
//!
//! 1. `begin`: one transaction stores the new DK wrapped under the old DK's rotation subkey
//!    (`rotations`), and new key slots for the new epoch.
//! 2. `resume`: batches of memories move from the old epoch to the new one, one transaction
//!    per batch. Every row says which epoch it is sealed under, and a session unlocked during
//!    a rotation holds both key sets, so the vault is readable at every point in between.
//! 3. `finish` (one transaction, once no row is left on the old epoch): records, gate
//!    configuration and lockdown exits are re-authenticated, old slots (including every
//!    escrow recovery slot) are deleted, a new head-signing key is sealed (and handed over in
//!    the audit log when the profile held the current epoch), and the profile's epoch moves.
//!
//! `abort` runs step 2 in reverse and drops the new epoch.

use aim_crypto::{AgentKeypair, SecretKey};
use rusqlite::{OptionalExtension, params};
use vault_audit::AuditLog;

use crate::audit::{self, Event};
use crate::codec::Writer;
use crate::db;
use crate::keys::{Enrollment, KeySet, Slot};
use crate::record::RowState;
use crate::records::record_mac;
use crate::session::{
    ROW_COLUMNS, RawRow, Session, access_mac, lockdown_exit_mac, seal_row, store_gate_config,
    update_row,
};
use crate::vault::{Vault, epoch_u32, insert_slot, signer_aad};
use crate::{Result, VaultError};

/// Memories re-encrypted per transaction by default.
pub const DEFAULT_BATCH: usize = 500;

/// Progress of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    /// Memories moved so far (in this call).
    pub done: u64,
    /// Memories that were left to move when the call started.
    pub total: u64,
}

/// The outcome of a finished rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The old key epoch.
    pub from_epoch: u32,
    /// The new key epoch.
    pub to_epoch: u32,
    /// Memories re-encrypted.
    pub memories: u64,
    /// Escrows whose recovery slots were removed (their recovery keys no longer work).
    pub invalidated_escrows: Vec<String>,
}

fn pending_aad(vid: &[u8; 16], profile: &str, from: u32, to: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"aim-vault/rotation/v1\0")
        .raw(vid)
        .str(profile)
        .u32(from)
        .u32(to);
    w.into_vec()
}

/// The rotation target's keys, if a rotation of `profile` is pending.
pub(crate) fn load_pending(vault: &Vault, profile: &str, keys: &KeySet) -> Result<Option<KeySet>> {
    let row: Option<(i64, i64, Vec<u8>)> = vault
        .conn
        .query_row(
            "SELECT from_epoch, to_epoch, pending_dk FROM rotations WHERE profile_id = ?1",
            [profile],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((from, to, sealed)) = row else {
        return Ok(None);
    };
    let (from, to) = (epoch_u32(from)?, epoch_u32(to)?);
    if from != keys.epoch || to != from + 1 {
        return Err(VaultError::Integrity(format!(
            "the pending rotation of `{profile}` ({from} → {to}) does not match its key epoch {}",
            keys.epoch
        )));
    }
    let dk = keys
        .rotation
        .open(&pending_aad(&vault.vault_id, profile, from, to), &sealed)
        .map_err(|_| {
            VaultError::Integrity("the pending rotation key failed authentication".into())
        })?;
    Ok(Some(KeySet::derive(
        &vault.vault_id,
        to,
        SecretKey::from_slice(&dk)?,
    )))
}

impl Session<'_> {
    /// Whether a rotation is pending (begun and neither finished nor aborted).
    pub fn rotation_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Rotates the data key in one call: begin (or pick up a pending rotation), re-encrypt
    /// in batches of `batch` with `progress` called after each, finish. `enrollments` are the
    /// key slots of the new data key (ignored when resuming); recovery slots are never
    /// carried over.
    pub fn rotate(
        &mut self,
        enrollments: &[Enrollment],
        batch: usize,
        progress: &mut dyn FnMut(RotationProgress),
    ) -> Result<RotationReport> {
        if self.pending.is_none() {
            self.begin_rotation(enrollments)?;
        }
        let moved = self.resume_rotation(batch, progress)?;
        let mut report = self.finish_rotation()?;
        report.memories = moved;
        Ok(report)
    }

    /// Step 1: makes the new data key and its slots; new writes use it from now on.
    pub fn begin_rotation(&mut self, enrollments: &[Enrollment]) -> Result<()> {
        self.no_rotation("begin a rotation")?;
        if enrollments.is_empty() {
            return Err(VaultError::InvalidInput(
                "a rotation needs at least one key slot for the new data key".into(),
            ));
        }
        let from = self.keys.epoch;
        let to = from
            .checked_add(1)
            .ok_or_else(|| VaultError::Rotation("key epoch exhausted".into()))?;
        let dk = SecretKey::generate()?;
        let mut slots = Vec::new();
        for e in enrollments {
            slots.push(Slot::enroll(self.vid(), &self.profile, to, e, &dk)?);
        }
        let sealed = self.keys.rotation.seal(
            &pending_aad(self.vid(), &self.profile, from, to),
            dk.expose(),
        )?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        tx.execute(
            "INSERT INTO rotations(profile_id, from_epoch, to_epoch, pending_dk, started_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.profile, i64::from(from), i64::from(to), sealed, now],
        )?;
        let pending = KeySet::derive(self.vid(), to, dk);
        let version = crate::versions::next(&tx)?;
        for s in &slots {
            insert_slot(&tx, self.vid(), &self.profile, s, &pending, version, now)?;
        }
        let keys: Vec<_> = slots
            .iter()
            .map(|s| crate::versions::RowKey::slot(&self.profile, &s.slot_id, to))
            .collect();
        crate::versions::append(
            &tx,
            Event::new("profile.rotate.start", now)
                .with("profile", self.profile.as_str())
                .with("from_epoch", i64::from(from))
                .with("to_epoch", i64::from(to)),
            &keys,
            version,
        )?;
        self.commit_op(tx, 1)?;
        self.pending = Some(pending);
        Ok(())
    }

    /// Step 2: moves every memory still on the old epoch, `batch` per transaction. Returns
    /// how many moved.
    pub fn resume_rotation(
        &mut self,
        batch: usize,
        progress: &mut dyn FnMut(RotationProgress),
    ) -> Result<u64> {
        let to = self
            .pending
            .as_ref()
            .map(|k| k.epoch)
            .ok_or_else(|| VaultError::Rotation("no rotation is pending".into()))?;
        self.move_epoch(self.keys.epoch, to, batch, progress)
    }

    fn move_epoch(
        &mut self,
        from: u32,
        to: u32,
        batch: usize,
        progress: &mut dyn FnMut(RotationProgress),
    ) -> Result<u64> {
        let batch = batch.clamp(1, 100_000);
        let total: i64 = self.conn().query_row(
            "SELECT count(*) FROM memories WHERE profile_id = ?1 AND key_epoch = ?2",
            params![self.profile, i64::from(from)],
            |r| r.get(0),
        )?;
        let total = u64::try_from(total).unwrap_or(0);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM memories WHERE profile_id = ?1 AND key_epoch = ?2 ORDER BY seq LIMIT ?3"
        );
        let mut done = 0u64;
        progress(RotationProgress { done, total });
        loop {
            let raws: Vec<RawRow> = self
                .conn()
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        self.profile,
                        i64::from(from),
                        i64::try_from(batch).unwrap_or(500)
                    ],
                    RawRow::from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            if raws.is_empty() {
                break;
            }
            let target = self
                .keys_for(to)
                .ok_or_else(|| VaultError::Rotation("target key epoch not held".into()))?;
            let mut updates = Vec::with_capacity(raws.len());
            for raw in raws {
                let id = raw.memory_id.clone();
                let row = self.verify_row(raw).map_err(|why| {
                    VaultError::Integrity(format!(
                        "memory {} cannot be rotated: {why}",
                        crate::MemoryId::from_slice(&id)
                            .map_or_else(|_| "?".into(), |m| m.to_string())
                    ))
                })?;
                let mut header = row.header.clone();
                header.key_epoch = to;
                let access = match crate::session::check_access_state(
                    self,
                    row.raw.seq,
                    &header.memory_id,
                    from,
                )? {
                    Some((last, count)) => {
                        let version: Option<i64> = self
                            .conn()
                            .prepare_cached("SELECT version FROM access_state WHERE seq = ?1")?
                            .query_row([row.raw.seq], |r| r.get(0))?;
                        Some((
                            last,
                            count,
                            access_mac(self.vid(), target, &header.memory_id, last, count, version),
                        ))
                    }
                    None => None,
                };
                match row.raw.tombstoned_at_ms {
                    Some(at) => {
                        let mac = header.row_mac(
                            &target.row,
                            self.vid(),
                            &RowState::Tombstoned { at_ms: at },
                        );
                        updates.push((row.raw.seq, Update::Tomb(i64::from(to), mac), access));
                    }
                    None => {
                        let (content, meta) = self.open_row(&row).map_err(|why| {
                            VaultError::Integrity(format!(
                                "memory {} cannot be rotated: {why}",
                                header.memory_id
                            ))
                        })?;
                        let new = seal_row(self.vid(), target, header, content.expose(), &meta)?;
                        updates.push((row.raw.seq, Update::Live(Box::new(new)), access));
                    }
                }
            }
            let tx = db::write_tx(self.conn())?;
            let n = i64::try_from(updates.len()).unwrap_or(0);
            let last = db::next_changes(&tx, n)?;
            for (i, (seq, upd, access)) in updates.iter().enumerate() {
                let change = last - n + 1 + i64::try_from(i).unwrap_or(0);
                match upd {
                    Update::Live(new) => update_row(&tx, *seq, new, change)?,
                    Update::Tomb(epoch, mac) => {
                        tx.prepare_cached("UPDATE memories SET key_epoch = ?1, row_mac = ?2, change_seq = ?3 WHERE seq = ?4")?
                            .execute(params![epoch, &mac[..], change, seq])?;
                    }
                }
                if let Some((last, count, mac)) = access {
                    tx.prepare_cached("UPDATE access_state SET mac = ?1 WHERE seq = ?2 AND last_allowed_ms = ?3 AND allowed_count = ?4")?
                        .execute(params![&mac[..], seq, last, count])?;
                }
            }
            tx.commit()?;
            done += updates.len() as u64;
            progress(RotationProgress { done, total });
        }
        Ok(done)
    }

    /// Step 3: completes a rotation whose memories have all moved.
    pub fn finish_rotation(&mut self) -> Result<RotationReport> {
        let (report, signer) = self.finish_inner()?;
        if let Some(new) = self.pending.take() {
            self.keys = new;
        }
        self.signer = signer;
        Ok(report)
    }

    fn finish_inner(&self) -> Result<(RotationReport, AgentKeypair)> {
        let new = self
            .pending
            .as_ref()
            .ok_or_else(|| VaultError::Rotation("no rotation is pending".into()))?;
        let (from, to) = (self.keys.epoch, new.epoch);
        let now = self.vault.now();
        let vid = *self.vid();
        let profile = self.profile.clone();
        let signer = AgentKeypair::generate()?;
        let signer_sealed = new
            .content
            .seal(&signer_aad(&vid, &profile, to), &signer.seed()[..])?;
        let tx = db::write_tx(self.conn())?;
        let left: i64 = tx.query_row(
            "SELECT count(*) FROM memories WHERE profile_id = ?1 AND key_epoch = ?2",
            params![profile, i64::from(from)],
            |r| r.get(0),
        )?;
        if left > 0 {
            return Err(VaultError::Rotation(format!(
                "{left} memories are still on key epoch {from}; resume the rotation first"
            )));
        }
        self.reauthenticate(&tx, new)?;
        let invalidated: Vec<String> = tx
            .prepare("SELECT slot_id FROM key_slots WHERE profile_id = ?1 AND kind = 'recovery' ORDER BY slot_id")?
            .query_map([&profile], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|s| s.strip_prefix("recovery:").map(str::to_owned))
            .collect();
        tx.execute(
            "DELETE FROM key_slots WHERE profile_id = ?1 AND (key_epoch <> ?2 OR kind = 'recovery')",
            params![profile, i64::from(to)],
        )?;
        let change = db::next_changes(&tx, 1)?;
        tx.execute(
            "UPDATE profiles SET key_epoch = ?1, key_check = ?2, signer_sealed = ?3, signer_public = ?4, change_seq = ?5 WHERE profile_id = ?6",
            params![
                i64::from(to),
                &new.key_check(&vid, &profile)[..],
                signer_sealed,
                &signer.public_key().as_bytes()[..],
                change,
                profile
            ],
        )?;
        tx.execute("DELETE FROM rotations WHERE profile_id = ?1", [&profile])?;
        audit::append(
            &tx,
            &Event::new("profile.rotate.finish", now)
                .with("profile", profile.as_str())
                .with("from_epoch", i64::from(from))
                .with("to_epoch", i64::from(to))
                .with("invalidated_escrows", invalidated.join(",")),
        )?;
        let current = AuditLog::key_epochs(&tx)?.last().map(|e| e.key_id.clone());
        if self.app_signer.is_none()
            && current.as_deref() == Some(self.signer.public_key().key_id().as_str())
        {
            AuditLog::rotate_key(&tx, &self.signer, &signer.public_key(), now)?;
        }
        tx.commit()?;
        Ok((
            RotationReport {
                from_epoch: from,
                to_epoch: to,
                memories: 0,
                invalidated_escrows: invalidated,
            },
            signer,
        ))
    }

    /// Re-authenticates (and re-seals) the profile's small tables under `target`: records,
    /// gate configuration, lockdown exits and the lockdown checkpoint.
    fn reauthenticate(&self, tx: &rusqlite::Connection, target: &KeySet) -> Result<()> {
        let vid = *self.vid();
        let profile = self.profile.clone();
        // Records: re-authenticate (and re-seal sealed ones) under the new key.
        let records: Vec<FullRecordRow> = tx
            .prepare("SELECT namespace, key, sealing, value, updated_at_ms, key_epoch, mac, version FROM records WHERE profile_id = ?1")?
            .query_map([&profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (ns, key, code, stored, updated, epoch, mac, version) in records {
            let old = self
                .keys_for(epoch_u32(epoch)?)
                .or_else(|| (epoch_u32(epoch).ok() == Some(target.epoch)).then_some(target))
                .ok_or_else(|| {
                    VaultError::Integrity(format!("record {ns}/{key} has an unknown key epoch"))
                })?;
            if !aim_crypto::kdf::ct_eq(
                &mac,
                &record_mac(
                    &vid, old, &profile, &ns, &key, code, updated, &stored, version,
                ),
            ) {
                return Err(VaultError::Integrity(format!(
                    "record {ns}/{key} failed authentication"
                )));
            }
            crate::versions::require(
                tx,
                &crate::versions::RowKey::record(&profile, &ns, &key),
                version,
                "a record",
            )?;
            let value = if code == 1 && old.epoch != target.epoch {
                let aad = record_value_aad(&vid, &profile, &ns, &key);
                let plain = old.records.open(&aad, &stored).map_err(|_| {
                    VaultError::Integrity(format!("record {ns}/{key} failed authentication"))
                })?;
                target.records.seal(&aad, &plain)?
            } else {
                stored
            };
            let mac = record_mac(
                &vid, target, &profile, &ns, &key, code, updated, &value, version,
            );
            tx.execute(
                "UPDATE records SET value = ?1, key_epoch = ?2, mac = ?3 WHERE profile_id = ?4 AND namespace = ?5 AND key = ?6",
                params![value, i64::from(target.epoch), &mac[..], profile, ns, key],
            )?;
        }
        let (cfg, version) = self.gate_config_versioned()?;
        store_gate_config(tx, &vid, &profile, target, &cfg, version)?;
        let exits: Vec<(i64, i64, i64, Vec<u8>)> = tx
            .prepare("SELECT epoch, exited_at_ms, key_epoch, mac FROM lockdown_exits WHERE profile_id = ?1")?
            .query_map([&profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (epoch, at, key_epoch, mac) in exits {
            let valid = u32::try_from(key_epoch)
                .ok()
                .and_then(|e| self.keys_for(e).or((e == target.epoch).then_some(target)))
                .is_some_and(|k| {
                    aim_crypto::kdf::ct_eq(&mac, &lockdown_exit_mac(&vid, k, &profile, epoch, at))
                });
            if valid {
                let mac = lockdown_exit_mac(&vid, target, &profile, epoch, at);
                tx.execute(
                    "UPDATE lockdown_exits SET key_epoch = ?1, mac = ?2 WHERE epoch = ?3 AND profile_id = ?4",
                    params![i64::from(target.epoch), &mac[..], epoch, profile],
                )?;
            }
        }
        let state: Option<(i64, i64)> = tx
            .query_row(
                "SELECT lockdown_epoch, audit_size FROM profile_state WHERE profile_id = ?1",
                [&profile],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let lock = self.lockdown_check()?;
        if lock.tampered.is_none() {
            crate::session::write_profile_state(tx, &vid, &profile, target, lock.epoch, lock.size)?;
        } else if let Some((e, size)) = state {
            // Keep the (suspicious) checkpoint as it was, re-authenticated, so the tampering
            // stays visible after the rotation.
            crate::session::write_profile_state(
                tx,
                &vid,
                &profile,
                target,
                e,
                u64::try_from(size).unwrap_or(0),
            )?;
        }
        Ok(())
    }

    /// Abandons a pending rotation: memories already moved go back to the old key, the new
    /// key's slots are deleted.
    pub fn abort_rotation(
        &mut self,
        batch: usize,
        progress: &mut dyn FnMut(RotationProgress),
    ) -> Result<u64> {
        let to = self
            .pending
            .as_ref()
            .map(|k| k.epoch)
            .ok_or_else(|| VaultError::Rotation("no rotation is pending".into()))?;
        let from = self.keys.epoch;
        let moved = self.move_epoch(to, from, batch, progress)?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        tx.execute(
            "DELETE FROM key_slots WHERE profile_id = ?1 AND key_epoch = ?2",
            params![self.profile, i64::from(to)],
        )?;
        // Records, configuration and checkpoints written during the rotation go back to the old key.
        self.reauthenticate(&tx, &self.keys)?;
        tx.execute(
            "DELETE FROM rotations WHERE profile_id = ?1",
            [&self.profile],
        )?;
        audit::append(
            &tx,
            &Event::new("profile.rotate.abort", now)
                .with("profile", self.profile.as_str())
                .with("from_epoch", i64::from(from))
                .with("to_epoch", i64::from(to))
                .with("memories", i64::try_from(moved).unwrap_or(i64::MAX)),
        )?;
        tx.commit()?;
        self.pending = None;
        Ok(moved)
    }
}

/// (namespace, key, sealing, value, updated_at_ms, key_epoch, mac) as stored.
type FullRecordRow = (String, String, i64, Vec<u8>, i64, i64, Vec<u8>, Option<i64>);

enum Update {
    Live(Box<crate::session::NewRow>),
    Tomb(i64, [u8; 32]),
}

fn record_value_aad(vid: &[u8; 16], profile: &str, ns: &str, key: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"aim-vault/record-value/v1\0")
        .raw(vid)
        .str(profile)
        .str(ns)
        .str(key);
    w.into_vec()
}
