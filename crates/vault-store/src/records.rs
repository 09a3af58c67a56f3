//! A small generic record store for other vault components (escrow metadata, holder
//! fingerprints, dead-man state, heir packages). Sealed records are AES-256-GCM under a
//! data-key subkey; public records are stored as given (readable without a key through
//! [`crate::Vault::get_public_record`]). Every record carries a MAC under the profile's key,
//! and every put and delete is audited.

use aim_crypto::SecretBytes;
use rusqlite::{OptionalExtension, params};

use crate::audit::Event;
use crate::codec::Writer;
use crate::db;
use crate::keys::KeySet;
use crate::session::Session;
use crate::vault::epoch_u32;
use crate::versions::{self, RowKey};
use crate::{Result, VaultError};

/// How a record's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Encrypted under the profile's key.
    Sealed,
    /// Stored as given (for values that must be readable without the key).
    Public,
}

/// A record read back.
#[derive(Debug, Clone)]
pub struct Record {
    /// The value (decrypted if it was sealed).
    pub value: SecretBytes,
    /// How it is stored.
    pub sealing: Sealing,
    /// Last update (Unix ms).
    pub updated_at_ms: i64,
}

/// (sealing, value, updated_at_ms, key_epoch, mac, version) as stored.
type RecordRow = (i64, Vec<u8>, i64, i64, Vec<u8>, Option<i64>);

/// Largest record value (1 MiB).
pub const MAX_RECORD: usize = 1 << 20;

fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 128 {
        return Err(VaultError::InvalidInput(format!(
            "record {what} must be 1–128 bytes"
        )));
    }
    Ok(())
}

fn value_aad(vid: &[u8; 16], profile: &str, ns: &str, key: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"aim-vault/record-value/v1\0")
        .raw(vid)
        .str(profile)
        .str(ns)
        .str(key);
    w.into_vec()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn record_mac(
    vid: &[u8; 16],
    keys: &KeySet,
    profile: &str,
    ns: &str,
    key: &str,
    sealing: i64,
    updated: i64,
    value: &[u8],
    version: Option<i64>,
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(b"aim-vault/record/v1\0")
        .raw(vid)
        .str(profile)
        .str(ns)
        .str(key)
        .i64(sealing)
        .i64(updated)
        .u32(keys.epoch)
        .bytes(value);
    if let Some(v) = version {
        crate::versions::mac_suffix(&mut w, v);
    }
    KeySet::mac(&keys.row, &[w.as_slice()])
}

impl Session<'_> {
    /// Stores (or replaces) a record (audited as `record.put`).
    pub fn put_record(
        &mut self,
        namespace: &str,
        key: &str,
        value: &[u8],
        sealing: Sealing,
    ) -> Result<()> {
        check_name("namespace", namespace)?;
        check_name("key", key)?;
        if value.len() > MAX_RECORD {
            return Err(VaultError::InvalidInput(format!(
                "record value larger than {MAX_RECORD} bytes"
            )));
        }
        let now = self.vault.now();
        let keys = self.write_keys();
        let (stored, code) = match sealing {
            Sealing::Sealed => (
                keys.records
                    .seal(&value_aad(self.vid(), &self.profile, namespace, key), value)?,
                1,
            ),
            Sealing::Public => (value.to_vec(), 0),
        };
        let epoch = keys.epoch;
        let tx = db::write_tx(self.conn())?;
        let version = versions::next(&tx)?;
        let mac = record_mac(
            self.vid(),
            self.write_keys(),
            &self.profile,
            namespace,
            key,
            code,
            now,
            &stored,
            Some(version),
        );
        let change = db::next_changes(&tx, 1)?;
        tx.execute(
            "INSERT OR REPLACE INTO records(profile_id, namespace, key, sealing, value, updated_at_ms, key_epoch, mac, change_seq, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![self.profile, namespace, key, code, stored, now, i64::from(epoch), &mac[..], change, version],
        )?;
        versions::append(
            &tx,
            Event::new("record.put", now)
                .with("profile", self.profile.as_str())
                .with("namespace", namespace)
                .with("key", key)
                .with("sealing", if code == 1 { "sealed" } else { "public" }),
            &[RowKey::record(&self.profile, namespace, key)],
            version,
        )?;
        self.commit_op(tx, 1)
    }

    /// Reads and authenticates a record (decrypting a sealed one).
    pub fn get_record(&self, namespace: &str, key: &str) -> Result<Option<Record>> {
        let row: Option<RecordRow> = self
            .conn()
            .query_row(
                "SELECT sealing, value, updated_at_ms, key_epoch, mac, version FROM records WHERE profile_id=?1 AND namespace=?2 AND key=?3",
                params![self.profile, namespace, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()?;
        let row_key = RowKey::record(&self.profile, namespace, key);
        let Some((code, stored, updated, epoch, mac, version)) = row else {
            self.check_record_absent(&row_key, namespace, key)?;
            return Ok(None);
        };
        let keys = self.keys_for(epoch_u32(epoch)?).ok_or_else(|| {
            VaultError::Integrity(format!("record {namespace}/{key} has an unknown key epoch"))
        })?;
        if !aim_crypto::kdf::ct_eq(
            &mac,
            &record_mac(
                self.vid(),
                keys,
                &self.profile,
                namespace,
                key,
                code,
                updated,
                &stored,
                version,
            ),
        ) {
            return Err(VaultError::Integrity(format!(
                "record {namespace}/{key} failed authentication"
            )));
        }
        versions::require(
            self.conn(),
            &row_key,
            version,
            &format!("record {namespace}/{key}"),
        )?;
        let (value, sealing) = match code {
            1 => (
                SecretBytes::from(
                    keys.records
                        .open(
                            &value_aad(self.vid(), &self.profile, namespace, key),
                            &stored,
                        )
                        .map_err(|_| {
                            VaultError::Integrity(format!(
                                "record {namespace}/{key} failed authentication"
                            ))
                        })?,
                ),
                Sealing::Sealed,
            ),
            0 => (SecretBytes::new(stored), Sealing::Public),
            other => {
                return Err(VaultError::corrupt(
                    "record",
                    format!("unknown sealing {other}"),
                ));
            }
        };
        Ok(Some(Record {
            value,
            sealing,
            updated_at_ms: updated,
        }))
    }

    /// A missing record is genuine only if its latest change in the log deleted it (or it
    /// never existed): a deleted row (say, a TOTP last-used step) is a rollback.
    fn check_record_absent(&self, row_key: &RowKey, namespace: &str, key: &str) -> Result<()> {
        let latest: Option<i64> = self
            .conn()
            .prepare_cached("SELECT leaf FROM row_versions WHERE row_key = ?1")?
            .query_row([row_key.as_bytes()], |r| r.get(0))
            .optional()?;
        let Some(leaf) = latest else {
            return Ok(());
        };
        let ev = u64::try_from(leaf)
            .ok()
            .map(|l| vault_audit::AuditLog::leaf(self.conn(), l))
            .transpose()?;
        if ev.is_some_and(|e| e.kind == "record.delete") {
            return Ok(());
        }
        Err(VaultError::Integrity(format!(
            "record {namespace}/{key} is missing but the audit log wrote it last at leaf {leaf} (deleted behind the vault's back)"
        )))
    }

    /// Deletes a record (audited as `record.delete`); returns whether it existed.
    pub fn delete_record(&mut self, namespace: &str, key: &str) -> Result<bool> {
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        let n = tx.execute(
            "DELETE FROM records WHERE profile_id=?1 AND namespace=?2 AND key=?3",
            params![self.profile, namespace, key],
        )?;
        if n > 0 {
            let version = versions::next(&tx)?;
            versions::append(
                &tx,
                Event::new("record.delete", now)
                    .with("profile", self.profile.as_str())
                    .with("namespace", namespace)
                    .with("key", key),
                &[RowKey::record(&self.profile, namespace, key)],
                version,
            )?;
        }
        self.commit_op(tx, 1)?;
        Ok(n > 0)
    }

    /// Keys of all records (sealed and public) in `namespace`.
    pub fn list_records(&self, namespace: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT key FROM records WHERE profile_id=?1 AND namespace=?2 ORDER BY key")?;
        let keys = stmt
            .query_map(params![self.profile, namespace], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(keys)
    }
}
