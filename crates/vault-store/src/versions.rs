//! Row versions: rollback detection for mutable authenticated rows.
//!
//! A MAC proves a row was written by the key holder, not that it is the *latest* row: an
//! attacker with write access to the file can put back an earlier genuine row (an older gate
//! configuration without a boundary gate, an older TOTP last-used step, an older access record,
//! an old passphrase slot). Every mutable authenticated row (`gate_config`, `records`,
//! `access_state`, `key_slots`) therefore carries a version, bound into its MAC: the index of
//! the audit leaf of the operation that wrote it. That leaf names the row (by the hash of its
//! row key, field [`FIELD`]) and the `row_versions` table maps each row key to the leaf of its
//! latest change (deletes included).
//!
//! On every read the row's version must equal the index entry, so a row put back on its own is
//! refused. Putting back a row *and* its index entry is found by [`crate::verify`], which
//! recomputes the latest change of every row key from the (Merkle-authenticated) audit log.
//! Rows written before schema version 3 carry no version; they are accepted (with their v1
//! MAC) only while the index holds no entry for them, i.e. until their first change.

use aim_crypto::hash::sha256_parts;
use rusqlite::{Connection, OptionalExtension, params};
use vault_audit::{AuditLog, Event};

use crate::codec::Writer;
use crate::model::MemoryId;
use crate::{Result, VaultError};

/// The event field listing the row keys (16-byte hashes) an event versions.
pub(crate) const FIELD: &str = "row_versions";

/// Bytes of a row-key hash in [`FIELD`].
pub(crate) const HASH_LEN: usize = 16;

/// The identity of a mutable row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowKey(Vec<u8>);

impl RowKey {
    fn new(kind: &str, parts: &[&[u8]]) -> Self {
        let mut w = Writer::new();
        w.str(kind);
        for p in parts {
            w.bytes(p);
        }
        Self(w.into_vec())
    }

    /// The gate configuration of `profile`.
    pub(crate) fn gate_config(profile: &str) -> Self {
        Self::new("gate_config", &[profile.as_bytes()])
    }

    /// Record `namespace`/`key` of `profile`.
    pub(crate) fn record(profile: &str, namespace: &str, key: &str) -> Self {
        Self::new(
            "record",
            &[profile.as_bytes(), namespace.as_bytes(), key.as_bytes()],
        )
    }

    /// Key slot `slot_id` of `profile` for key epoch `epoch`.
    pub(crate) fn slot(profile: &str, slot_id: &str, epoch: u32) -> Self {
        Self::new(
            "slot",
            &[profile.as_bytes(), slot_id.as_bytes(), &epoch.to_be_bytes()],
        )
    }

    /// The access (cooldown) record of a memory.
    pub(crate) fn access(id: &MemoryId) -> Self {
        Self::new("access", &[id.as_bytes()])
    }

    /// The hash recorded in audit events.
    pub(crate) fn hash(&self) -> [u8; HASH_LEN] {
        let h = sha256_parts(&[b"aim-vault/row-key/v1\0", &self.0]);
        let mut out = [0; HASH_LEN];
        out.copy_from_slice(&h[..HASH_LEN]);
        out
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The version the next write gets: the index of the audit leaf appended next.
pub(crate) fn next(conn: &Connection) -> Result<i64> {
    let size = AuditLog::tree_size(conn)?;
    i64::try_from(size).map_err(|_| VaultError::corrupt("audit log", "size exceeds i64"))
}

/// Adds [`FIELD`] naming `keys` to `event`.
pub(crate) fn tag(event: Event, keys: &[RowKey]) -> Event {
    let mut v = Vec::with_capacity(keys.len() * HASH_LEN);
    for k in keys {
        v.extend_from_slice(&k.hash());
    }
    event.with(FIELD, v)
}

/// Appends `event` (tagged with `keys`) and records its leaf as the latest version of `keys`.
/// The leaf must be `version` (from [`next`] in the same transaction).
pub(crate) fn append(conn: &Connection, event: Event, keys: &[RowKey], version: i64) -> Result<()> {
    let leaf = crate::audit::append(conn, &tag(event, keys))?;
    if i64::try_from(leaf).ok() != Some(version) {
        return Err(VaultError::Integrity(format!(
            "the audit log grew unexpectedly (leaf {leaf}, expected {version})"
        )));
    }
    let mut stmt =
        conn.prepare_cached("INSERT OR REPLACE INTO row_versions(row_key, leaf) VALUES (?1, ?2)")?;
    for k in keys {
        stmt.execute(params![k.as_bytes(), version])?;
    }
    Ok(())
}

/// Checks that a row with `version` (`None`: written before versions existed) is the latest
/// change of `key`; the error names `what` and both versions.
pub(crate) fn check(
    conn: &Connection,
    key: &RowKey,
    version: Option<i64>,
    what: &str,
) -> std::result::Result<(), String> {
    let latest: Option<i64> = conn
        .prepare_cached("SELECT leaf FROM row_versions WHERE row_key = ?1")
        .and_then(|mut s| s.query_row([key.as_bytes()], |r| r.get(0)).optional())
        .map_err(|e| format!("database: {e}"))?;
    match (version, latest) {
        (Some(v), Some(l)) if v == l => Ok(()),
        (None, None) => Ok(()),
        (Some(v), None) => Err(format!(
            "{what} has version {v} but no change of it is indexed (rolled back index?)"
        )),
        (v, Some(l)) => Err(format!(
            "{what} is version {} but the audit log changed it last at leaf {l} (an earlier row was put back)",
            v.map_or_else(|| "none".to_owned(), |v| v.to_string())
        )),
    }
}

/// Like [`check`], as a [`VaultError::Integrity`].
pub(crate) fn require(
    conn: &Connection,
    key: &RowKey,
    version: Option<i64>,
    what: &str,
) -> Result<()> {
    check(conn, key, version, what).map_err(VaultError::Integrity)
}

/// The row-key hashes an audit event versions (empty when it has no [`FIELD`]).
pub(crate) fn hashes(ev: &Event) -> std::result::Result<Vec<[u8; HASH_LEN]>, String> {
    let Some(v) = ev.get(FIELD) else {
        return Ok(Vec::new());
    };
    let b = v
        .as_bytes()
        .filter(|b| b.len() % HASH_LEN == 0)
        .ok_or_else(|| format!("field `{FIELD}` is malformed"))?;
    Ok(b.chunks_exact(HASH_LEN)
        .map(|c| {
            let mut a = [0; HASH_LEN];
            a.copy_from_slice(c);
            a
        })
        .collect())
}

/// Compares the version index with the latest change of every row key recomputed from the
/// log (`latest`: row-key hash → leaf). Returns the first difference.
pub(crate) fn compare_index(
    conn: &Connection,
    latest: &std::collections::HashMap<[u8; HASH_LEN], u64>,
) -> Result<Option<String>> {
    let mut stmt = conn.prepare("SELECT row_key, leaf FROM row_versions")?;
    let mut rows = stmt.query([])?;
    let mut seen = 0usize;
    while let Some(r) = rows.next()? {
        let key = RowKey(r.get(0)?);
        let leaf: i64 = r.get(1)?;
        match latest.get(&key.hash()) {
            Some(&l) if i64::try_from(l).ok() == Some(leaf) => seen += 1,
            Some(l) => {
                return Ok(Some(format!(
                    "row version index: a row's latest change is leaf {l}, the index says {leaf} (rolled back)"
                )));
            }
            None => {
                return Ok(Some(format!(
                    "row version index: entry for leaf {leaf} names a row no audit event changed"
                )));
            }
        }
    }
    if seen != latest.len() {
        return Ok(Some(format!(
            "row version index: {} rows changed in the audit log have no index entry (deleted?)",
            latest.len() - seen
        )));
    }
    Ok(None)
}

/// The versioned MAC input shared by every row kind: domain, version.
pub(crate) fn mac_suffix(w: &mut Writer, version: i64) {
    w.raw(b"\0version").i64(version);
}
