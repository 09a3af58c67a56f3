//! Opening the SQLite file: permissions, pragmas, schema version and forward migrations.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use crate::{Result, VaultError};

/// The schema version this build writes. Older vaults are migrated forward on open.
pub const SCHEMA_VERSION: i64 = 3;

/// How long a writer waits for another process's write transaction.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Durability of commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a committed operation survives power loss (default).
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash; the last commits may be lost on power
    /// failure. For bulk imports and tests.
    Normal,
}

const V1: &str = r#"
CREATE TABLE vault_meta(
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE counters(
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
CREATE TABLE profiles(
    profile_id TEXT PRIMARY KEY,
    created_at_ms INTEGER NOT NULL,
    key_epoch INTEGER NOT NULL,
    key_check BLOB NOT NULL,
    signer_sealed BLOB NOT NULL,
    signer_public BLOB NOT NULL,
    change_seq INTEGER NOT NULL
) STRICT;
CREATE TABLE key_slots(
    profile_id TEXT NOT NULL REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    slot_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key_epoch INTEGER NOT NULL,
    kdf_params TEXT,
    salt BLOB,
    source_blob BLOB,
    wrapped_dk BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY(profile_id, slot_id, key_epoch)
) STRICT;
CREATE TABLE rotations(
    profile_id TEXT PRIMARY KEY REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    from_epoch INTEGER NOT NULL,
    to_epoch INTEGER NOT NULL,
    pending_dk BLOB NOT NULL,
    started_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE gate_config(
    profile_id TEXT PRIMARY KEY REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    config BLOB NOT NULL,
    key_epoch INTEGER NOT NULL,
    mac BLOB NOT NULL
) STRICT;
CREATE TABLE memories(
    seq INTEGER PRIMARY KEY,
    memory_id BLOB NOT NULL UNIQUE,
    profile_id TEXT NOT NULL REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    format INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    created_by INTEGER NOT NULL,
    classification INTEGER NOT NULL,
    cooldown_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    key_epoch INTEGER NOT NULL,
    content BLOB,
    meta BLOB,
    content_mac BLOB,
    tombstoned_at_ms INTEGER,
    row_mac BLOB NOT NULL,
    change_seq INTEGER NOT NULL,
    store_leaf INTEGER
) STRICT;
CREATE INDEX memories_by_profile ON memories(profile_id, created_at_ms);
CREATE INDEX memories_by_change ON memories(change_seq);
CREATE INDEX memories_by_epoch ON memories(profile_id, key_epoch);
CREATE INDEX memories_expiring ON memories(profile_id, expires_at_ms)
    WHERE expires_at_ms IS NOT NULL AND tombstoned_at_ms IS NULL;
CREATE TABLE memory_labels(
    kind INTEGER NOT NULL,
    token BLOB NOT NULL,
    seq INTEGER NOT NULL REFERENCES memories(seq) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY(kind, token, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX memory_labels_by_seq ON memory_labels(seq);
CREATE TABLE memory_words(
    seq INTEGER PRIMARY KEY REFERENCES memories(seq) DEFERRABLE INITIALLY DEFERRED,
    words TEXT NOT NULL
) STRICT;
-- Contentless, rowid = -seq: FTS5 walks rowids upwards, so the newest memories come first
-- and a LIMIT stops the scan early.
CREATE VIRTUAL TABLE memory_fts USING fts5(
    words, content='', contentless_delete=1, tokenize='ascii', detail='none'
);
CREATE TABLE access_state(
    seq INTEGER PRIMARY KEY REFERENCES memories(seq) DEFERRABLE INITIALLY DEFERRED,
    last_allowed_ms INTEGER NOT NULL,
    allowed_count INTEGER NOT NULL,
    mac BLOB NOT NULL
) STRICT;
CREATE TABLE profile_state(
    profile_id TEXT PRIMARY KEY REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    lockdown_epoch INTEGER NOT NULL,
    audit_size INTEGER NOT NULL,
    key_epoch INTEGER NOT NULL,
    mac BLOB NOT NULL
) STRICT;
CREATE TABLE lockdown_log(
    epoch INTEGER PRIMARY KEY,
    entered_at_ms INTEGER NOT NULL,
    reason TEXT NOT NULL
) STRICT;
CREATE TRIGGER lockdown_log_no_update BEFORE UPDATE ON lockdown_log
    BEGIN SELECT RAISE(ABORT, 'the lockdown log is append-only'); END;
CREATE TRIGGER lockdown_log_no_delete BEFORE DELETE ON lockdown_log
    BEGIN SELECT RAISE(ABORT, 'the lockdown log is append-only'); END;
CREATE TABLE lockdown_exits(
    epoch INTEGER NOT NULL REFERENCES lockdown_log(epoch) DEFERRABLE INITIALLY DEFERRED,
    profile_id TEXT NOT NULL REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    exited_at_ms INTEGER NOT NULL,
    key_epoch INTEGER NOT NULL,
    mac BLOB NOT NULL,
    PRIMARY KEY(epoch, profile_id)
) STRICT;
CREATE TABLE records(
    profile_id TEXT NOT NULL REFERENCES profiles(profile_id) DEFERRABLE INITIALLY DEFERRED,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    sealing INTEGER NOT NULL,
    value BLOB NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    key_epoch INTEGER NOT NULL,
    mac BLOB NOT NULL,
    change_seq INTEGER NOT NULL,
    PRIMARY KEY(profile_id, namespace, key)
) STRICT;
CREATE TABLE backup_exclusions(
    memory_id BLOB PRIMARY KEY,
    backup_id BLOB NOT NULL
) STRICT;
CREATE TABLE backups(
    backup_id BLOB PRIMARY KEY,
    file_hash BLOB NOT NULL,
    kind INTEGER NOT NULL,
    parent_hash BLOB,
    change_seq INTEGER NOT NULL,
    audit_rows TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;
"#;

/// Forward migrations: entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[fn(&Transaction<'_>) -> Result<()>] = &[migrate_v1, migrate_v2, migrate_v3];

/// Version 2: the append-only index of audited events recorded without a session
/// (`crate::unattended`).
const V2: &str = r#"
CREATE TABLE unattended_log(
    leaf INTEGER PRIMARY KEY,
    profile_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    time_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX unattended_log_by_kind ON unattended_log(profile_id, kind, leaf);
CREATE TRIGGER unattended_log_no_update BEFORE UPDATE ON unattended_log
    BEGIN SELECT RAISE(ABORT, 'the unattended log is append-only'); END;
CREATE TRIGGER unattended_log_no_delete BEFORE DELETE ON unattended_log
    BEGIN SELECT RAISE(ABORT, 'the unattended log is append-only'); END;
"#;

/// Version 3: row versions (`crate::versions`): a version column bound into the MAC of every
/// mutable authenticated row, a MAC on key slots, and the index of each row's latest change.
const V3: &str = r#"
ALTER TABLE gate_config ADD COLUMN version INTEGER;
ALTER TABLE records ADD COLUMN version INTEGER;
ALTER TABLE access_state ADD COLUMN version INTEGER;
ALTER TABLE key_slots ADD COLUMN version INTEGER;
ALTER TABLE key_slots ADD COLUMN mac BLOB;
CREATE TABLE row_versions(
    row_key BLOB PRIMARY KEY,
    leaf INTEGER NOT NULL
) STRICT;
"#;

fn migrate_v3(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(V3)?;
    Ok(())
}

fn migrate_v2(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(V2)?;
    Ok(())
}

fn migrate_v1(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(V1)?;
    let vault_id = aim_crypto::random::random_array::<16>()?;
    tx.execute(
        "INSERT INTO vault_meta(key, value) VALUES ('vault_id', ?1)",
        [&vault_id[..]],
    )?;
    tx.execute(
        "INSERT INTO counters(name, value) VALUES ('change_seq', 0)",
        [],
    )?;
    crate::audit::create_schema(tx)?;
    Ok(())
}

/// Creates the vault file (0600) and any missing parent directories (0700).
pub(crate) fn create_file(path: &Path) -> Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| VaultError::io("cannot create directory", parent, e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                VaultError::VaultExists(path.to_owned())
            } else {
                VaultError::io("cannot create vault file", path, e)
            }
        })?;
    Ok(())
}

/// Opens an existing file as a vault connection and migrates it.
pub(crate) fn open(path: &Path, durability: Durability) -> Result<Connection> {
    if !path.exists() {
        return Err(VaultError::NoVault(path.to_owned()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(VaultError::Schema(format!(
            "cannot switch the vault to WAL mode (got `{mode}`)"
        )));
    }
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    // 32 MiB page cache: large batches and imports do not spill pages mid-transaction.
    conn.pragma_update(None, "cache_size", -32_768)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Starts a write transaction that takes the write lock at once (waiting up to the busy
/// timeout for other processes), so concurrent writers serialize instead of failing.
pub(crate) fn write_tx(conn: &Connection) -> Result<Transaction<'_>> {
    Ok(Transaction::new_unchecked(
        conn,
        TransactionBehavior::Immediate,
    )?)
}

pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let tx = write_tx(conn)?;
    let has_version: bool = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    let version = if has_version {
        tx.query_row("SELECT version FROM schema_version", [], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .ok_or_else(|| VaultError::Schema("the schema_version table is empty".into()))?
    } else {
        let other: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if other != 0 {
            return Err(VaultError::Schema(
                "this SQLite file is not a memory vault (it has tables but no schema_version)"
                    .into(),
            ));
        }
        tx.execute_batch("CREATE TABLE schema_version(version INTEGER NOT NULL) STRICT; INSERT INTO schema_version VALUES (0);")?;
        0
    };
    if version > SCHEMA_VERSION {
        return Err(VaultError::Schema(format!(
            "the vault has schema version {version}; this build understands up to {SCHEMA_VERSION} (upgrade aim)"
        )));
    }
    if version < 0 {
        return Err(VaultError::Schema(format!(
            "invalid schema version {version}"
        )));
    }
    for (i, m) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        m(&tx)?;
        tx.execute(
            "UPDATE schema_version SET version = ?1",
            [i64::try_from(i + 1).unwrap_or(i64::MAX)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Advances the vault's change counter by `n` and returns its new value; the caller uses
/// the `n` values ending there (used by incremental backups).
pub(crate) fn next_changes(tx: &Connection, n: i64) -> Result<i64> {
    // No RETURNING: it opens a statement journal, which makes FTS5 flush its buffer.
    tx.prepare_cached("UPDATE counters SET value = value + ?1 WHERE name = 'change_seq'")?
        .execute([n])?;
    Ok(tx
        .prepare_cached("SELECT value FROM counters WHERE name = 'change_seq'")?
        .query_row([], |r| r.get(0))?)
}
