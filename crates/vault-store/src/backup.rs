//! Encrypted, authenticated, chained backups and atomic restore.
//!
//! File layout (version 1):
//!
//! ```text
//! magic "AIMVAULTBK" (10) ‖ header_len u32 ‖ header ‖ chunk*
//! chunk  = len u32 ‖ AES-256-GCM envelope (aim-crypto v1) of 1 MiB of the item stream (the
//!          last chunk may be shorter); an item larger than a chunk (a 16 MiB memory) is split
//!          across chunks (format 2; format 1 files, whose items never straddle chunks, are read too)
//! AAD    = "aim-vault/backup-chunk/v1\0" ‖ SHA-256(magic ‖ header_len ‖ header) ‖ index u64 ‖ last u8
//! header = version u8 ‖ kind u8 (1 full, 2 incremental) ‖ backup_id 16 ‖ vault_id 16 ‖
//!          created_at i64 ‖ parent_hash 32 ‖ change_from i64 ‖ change_to i64 ‖
//!          ranges (count, (table, from, to)*) ‖ include_black u8 ‖ protection
//! protection = 1 ‖ argon2 params ‖ salt 16          (passphrase)
//!            | 2 ‖ profile ‖ slots (count, slot*)    (the profile's data key, via its key slots)
//! items  = 1 table(name, columns) | 2 row(values) | 3 excluded memory id | 4 end(row count)
//! ```
//!
//! The body holds the vault's rows exactly as stored (already sealed: a backup never needs
//! plaintext), including key slots, tombstones, the audit log and its heads. An incremental
//! backup holds what changed since its parent and names the parent by the SHA-256 of the
//! parent file. Level-5 memories are left out unless `include_black` is set, which requires a
//! confirmed presence check; their ids are listed so verification of a restored vault knows
//! why their records are missing.
//!
//! Restore reads every file of the chain twice: first it authenticates every chunk, checks the
//! chain, every table and column against this build's schema and the row counts, without
//! writing anything; then it builds the vault in a temporary file in one transaction and links
//! it into place only if the target does not exist. A corrupted or truncated backup is rejected
//! and nothing is written.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aim_crypto::hash::Sha256;
use aim_crypto::{Argon2Params, SealingKey, SecretBytes, SecretKey};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::audit::{self, Event};
use crate::codec::{Reader, Writer};
use crate::db;
use crate::gates::{DenyReason, GateRequest};
use crate::keys::{KeySource, Slot};
use crate::model::{Classification, MemoryId};
use crate::session::Session;
use crate::vault::Vault;
use crate::{Result, VaultError};

/// File magic.
pub const MAGIC: &[u8; 10] = b"AIMVAULTBK";
/// Format version this build writes.
pub const FORMAT_VERSION: u8 = 2;
/// Oldest format version this build reads (version 1 never split an item across chunks).
pub const MIN_FORMAT_VERSION: u8 = 1;
/// Plaintext bytes per chunk (a chunk is sealed when it reaches this size).
pub const CHUNK: usize = 1 << 20;
const MAX_HEADER: usize = 1 << 20;
const MAX_CHUNK_ENVELOPE: usize = 2 * CHUNK + 1024;
const MAX_COLUMNS: usize = 64;

/// Tables whose rows are only ever appended, keyed by an integer primary key.
const APPEND_ONLY: &[(&str, &str)] = &[
    ("audit_leaves", "idx"),
    ("audit_nodes", "pos"),
    ("audit_epochs", "epoch"),
    ("audit_heads", "seq"),
    ("lockdown_log", "epoch"),
    ("unattended_log", "leaf"),
];

/// Backup table order (parents before children); tables not listed follow.
const ORDER: &[&str] = &[
    "vault_meta",
    "counters",
    "profiles",
    "key_slots",
    "rotations",
    "gate_config",
    "profile_state",
    "memories",
    "memory_labels",
    "memory_words",
    "access_state",
    "lockdown_log",
    "lockdown_exits",
    "records",
    "backups",
    "backup_exclusions",
    "audit_leaves",
    "audit_nodes",
    "audit_epochs",
    "audit_heads",
    "unattended_log",
];

fn skipped(table: &str) -> bool {
    table.starts_with("sqlite_") || table.starts_with("memory_fts") || table == "schema_version"
}

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// Everything.
    Full = 1,
    /// What changed since the parent.
    Incremental = 2,
}

/// How a backup body is keyed.
#[derive(Clone)]
pub enum BackupProtection {
    /// A backup passphrase (Argon2id with the given parameters).
    Passphrase {
        /// The passphrase.
        passphrase: SecretBytes,
        /// Argon2id parameters.
        params: Argon2Params,
    },
    /// The session profile's data key; restoring needs a key that opens one of its slots.
    ProfileKey,
}

impl std::fmt::Debug for BackupProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase { params, .. } => write!(f, "Passphrase({params})"),
            Self::ProfileKey => f.write_str("ProfileKey"),
        }
    }
}

/// Options of [`Session::backup`].
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Key protection.
    pub protection: BackupProtection,
    /// Only what changed since the vault's latest backup.
    pub incremental: bool,
    /// Include level-5 memories (requires a confirmed presence check).
    pub include_black: bool,
}

/// The key offered to read a backup.
#[derive(Debug, Clone)]
pub enum BackupKey {
    /// The backup passphrase.
    Passphrase(SecretBytes),
    /// A key that opens a slot of the profile the backup was keyed to.
    Profile(KeySource),
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Its id.
    pub backup_id: [u8; 16],
    /// SHA-256 of the file (an incremental child names it as parent).
    pub file_hash: [u8; 32],
    /// Full or incremental.
    pub kind: BackupKind,
    /// Parent file hash (incremental).
    pub parent_hash: Option<[u8; 32]>,
    /// Rows written.
    pub rows: u64,
    /// Memory rows written.
    pub memories: u64,
    /// Level-5 memories left out.
    pub excluded_black: u64,
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The restored vault's id.
    pub vault_id: [u8; 16],
    /// Files applied.
    pub files: usize,
    /// Rows written.
    pub rows: u64,
    /// Temporary files of earlier, killed restores to this target that were removed.
    pub stale_removed: Vec<PathBuf>,
}

/// How long an untouched `.NAME.restore-*` file must be before a later restore treats it as
/// left behind by a killed restore (a running restore keeps writing its file).
const STALE_RESTORE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files killed restores to `target` left behind (untouched for
/// [`STALE_RESTORE`]) and returns them.
fn remove_stale_restores(target: &Path) -> Vec<PathBuf> {
    let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!(".{name}.restore-");
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let stale = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= STALE_RESTORE);
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// A stored key slot as carried in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRecord {
    /// Slot id.
    pub slot_id: String,
    /// Kind.
    pub kind: String,
    /// Key epoch.
    pub key_epoch: u32,
    /// KDF parameters.
    pub kdf_params: Option<String>,
    /// Salt.
    pub salt: Option<Vec<u8>>,
    /// External source blob.
    pub source_blob: Option<Vec<u8>>,
    /// Wrapped data key.
    pub wrapped_dk: Vec<u8>,
}

/// Header protection fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProtection {
    /// Passphrase: Argon2id parameters and salt.
    Passphrase {
        /// Encoded parameters.
        params: String,
        /// Salt.
        salt: [u8; 16],
    },
    /// Profile key: the profile and its key slots at backup time.
    Profile {
        /// Profile id.
        profile: String,
        /// Its slots.
        slots: Vec<SlotRecord>,
    },
}

/// A backup file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Full or incremental.
    pub kind: BackupKind,
    /// Backup id.
    pub backup_id: [u8; 16],
    /// Vault id.
    pub vault_id: [u8; 16],
    /// Creation time.
    pub created_at_ms: i64,
    /// Parent file hash (zeros for a full backup).
    pub parent_hash: [u8; 32],
    /// Changes after this counter value are included (0 for full).
    pub change_from: i64,
    /// ... up to this value.
    pub change_to: i64,
    /// Append-only tables: rows with key in (from, to].
    pub ranges: Vec<(String, i64, i64)>,
    /// Whether level-5 memories are included.
    pub include_black: bool,
    /// Key protection.
    pub protection: HeaderProtection,
}

impl Header {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(FORMAT_VERSION)
            .u8(self.kind as u8)
            .raw(&self.backup_id)
            .raw(&self.vault_id)
            .i64(self.created_at_ms)
            .raw(&self.parent_hash)
            .i64(self.change_from)
            .i64(self.change_to)
            .u32(u32::try_from(self.ranges.len()).unwrap_or(u32::MAX));
        for (t, a, b) in &self.ranges {
            w.str(t).i64(*a).i64(*b);
        }
        w.u8(u8::from(self.include_black));
        match &self.protection {
            HeaderProtection::Passphrase { params, salt } => {
                w.u8(1).str(params).raw(salt);
            }
            HeaderProtection::Profile { profile, slots } => {
                w.u8(2)
                    .str(profile)
                    .u32(u32::try_from(slots.len()).unwrap_or(u32::MAX));
                for s in slots {
                    w.str(&s.slot_id)
                        .str(&s.kind)
                        .u32(s.key_epoch)
                        .opt_bytes(s.kdf_params.as_deref().map(str::as_bytes))
                        .opt_bytes(s.salt.as_deref())
                        .opt_bytes(s.source_blob.as_deref())
                        .bytes(&s.wrapped_dk);
                }
            }
        }
        w.into_vec()
    }

    /// Parses [`Header::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| VaultError::Backup(format!("invalid header: {m}"));
        let mut r = Reader::new(bytes, "backup header");
        let v = r.u8()?;
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&v) {
            return Err(bad(format!(
                "format version {v}; this build reads {MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
            )));
        }
        let kind = match r.u8()? {
            1 => BackupKind::Full,
            2 => BackupKind::Incremental,
            k => return Err(bad(format!("unknown kind {k}"))),
        };
        let backup_id = r.array()?;
        let vault_id = r.array()?;
        let created_at_ms = r.i64()?;
        let parent_hash = r.array()?;
        let change_from = r.i64()?;
        let change_to = r.i64()?;
        let n = r.count(12)?;
        let mut ranges = Vec::with_capacity(n);
        for _ in 0..n {
            ranges.push((r.str()?.to_owned(), r.i64()?, r.i64()?));
        }
        let include_black = match r.u8()? {
            0 => false,
            1 => true,
            x => return Err(bad(format!("bad flag {x}"))),
        };
        let protection = match r.u8()? {
            1 => HeaderProtection::Passphrase {
                params: r.str()?.to_owned(),
                salt: r.array()?,
            },
            2 => {
                let profile = r.str()?.to_owned();
                let n = r.count(20)?;
                let mut slots = Vec::with_capacity(n);
                for _ in 0..n {
                    let slot_id = r.str()?.to_owned();
                    let kind = r.str()?.to_owned();
                    let key_epoch = r.u32()?;
                    let kdf_params = r
                        .opt_bytes()?
                        .map(|b| {
                            String::from_utf8(b.to_vec())
                                .map_err(|_| bad("parameters are not UTF-8".into()))
                        })
                        .transpose()?;
                    slots.push(SlotRecord {
                        slot_id,
                        kind,
                        key_epoch,
                        kdf_params,
                        salt: r.opt_bytes()?.map(<[u8]>::to_vec),
                        source_blob: r.opt_bytes()?.map(<[u8]>::to_vec),
                        wrapped_dk: r.bytes()?.to_vec(),
                    });
                }
                HeaderProtection::Profile { profile, slots }
            }
            p => return Err(bad(format!("unknown protection {p}"))),
        };
        r.finish()?;
        Ok(Self {
            kind,
            backup_id,
            vault_id,
            created_at_ms,
            parent_hash,
            change_from,
            change_to,
            ranges,
            include_black,
            protection,
        })
    }
}

/// One item of a backup body.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Rows of this table follow.
    Table {
        /// Table name.
        name: String,
        /// Column names, in order.
        columns: Vec<String>,
    },
    /// One row of the current table.
    Row(Vec<Value>),
    /// A level-5 memory left out of this backup.
    Excluded([u8; 16]),
    /// End of the body, with the number of rows.
    End {
        /// Rows in the body.
        rows: u64,
    },
}

impl Item {
    /// Appends the item's encoding to `w`.
    fn encode_into(&self, w: &mut Writer) {
        match self {
            Self::Table { name, columns } => {
                w.u8(1)
                    .str(name)
                    .u32(u32::try_from(columns.len()).unwrap_or(0));
                for c in columns {
                    w.str(c);
                }
            }
            Self::Row(values) => {
                w.u8(2).u32(u32::try_from(values.len()).unwrap_or(0));
                for v in values {
                    match v {
                        Value::Null => {
                            w.u8(0);
                        }
                        Value::Integer(i) => {
                            w.u8(1).i64(*i);
                        }
                        Value::Real(f) => {
                            w.u8(2).u64(f.to_bits());
                        }
                        Value::Text(t) => {
                            w.u8(3).str(t);
                        }
                        Value::Blob(b) => {
                            w.u8(4).bytes(b);
                        }
                    }
                }
            }
            Self::Excluded(id) => {
                w.u8(3).raw(id);
            }
            Self::End { rows } => {
                w.u8(4).u64(*rows);
            }
        }
    }
}

/// Decodes the items of one chunk's plaintext (a whole item stream).
pub fn decode_items(bytes: &[u8]) -> Result<Vec<Item>> {
    let mut r = Reader::new(bytes, "backup chunk");
    let mut out = Vec::new();
    while r.remaining() > 0 {
        out.push(decode_item(&mut r)?);
    }
    Ok(out)
}

/// Decodes the complete items at the start of `bytes`; returns them and the bytes consumed
/// (the rest is the beginning of an item continued in the next chunk).
fn decode_prefix(bytes: &[u8]) -> (Vec<Item>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    while used < bytes.len() {
        let mut r = Reader::new(&bytes[used..], "backup chunk");
        match decode_item(&mut r) {
            Ok(item) => {
                used = bytes.len() - r.remaining();
                out.push(item);
            }
            Err(_) => break,
        }
    }
    (out, used)
}

fn decode_item(r: &mut Reader<'_>) -> Result<Item> {
    Ok(match r.u8()? {
        1 => {
            let name = r.str()?.to_owned();
            let n = r.count(4)?;
            if n == 0 || n > MAX_COLUMNS {
                return Err(VaultError::Backup(format!("table {name} has {n} columns")));
            }
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                columns.push(r.str()?.to_owned());
            }
            Item::Table { name, columns }
        }
        2 => {
            let n = r.count(1)?;
            if n > MAX_COLUMNS {
                return Err(VaultError::Backup(format!("a row has {n} values")));
            }
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                values.push(match r.u8()? {
                    0 => Value::Null,
                    1 => Value::Integer(r.i64()?),
                    2 => Value::Real(f64::from_bits(r.u64()?)),
                    3 => Value::Text(r.str()?.to_owned()),
                    4 => Value::Blob(r.bytes()?.to_vec()),
                    t => return Err(VaultError::Backup(format!("unknown value tag {t}"))),
                });
            }
            Item::Row(values)
        }
        3 => Item::Excluded(r.array()?),
        4 => Item::End { rows: r.u64()? },
        t => return Err(VaultError::Backup(format!("unknown item tag {t}"))),
    })
}

/// Largest item carried across chunks: a row with a 16 MiB memory and 1 MiB of metadata,
/// with room for the other columns.
const MAX_PENDING: usize = crate::record::MAX_CONTENT + 2 * crate::record::MAX_METADATA + (1 << 20);

fn chunk_aad(header_hash: &[u8; 32], index: u64, last: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"aim-vault/backup-chunk/v1\0")
        .raw(header_hash)
        .u64(index)
        .u8(u8::from(last));
    w.into_vec()
}

fn body_key(root: &SecretKey, backup_id: &[u8; 16]) -> SealingKey {
    SealingKey::new(&aim_crypto::kdf::hkdf_sha256(
        root.expose(),
        backup_id,
        b"aim-vault/backup/v1",
    ))
}

/// Streams items into sealed chunks.
struct ChunkWriter<W: Write> {
    out: W,
    key: SealingKey,
    header_hash: [u8; 32],
    buf: Vec<u8>,
    index: u64,
    hasher: Sha256,
}

impl<W: Write> ChunkWriter<W> {
    fn write_raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hasher.update(b);
        self.out.write_all(b)
    }

    /// Appends an item to the stream, sealing every full chunk (a large item spans several).
    fn push(&mut self, item: &Item) -> Result<()> {
        let mut w = Writer::new();
        item.encode_into(&mut w);
        self.buf.extend_from_slice(w.as_slice());
        while self.buf.len() >= CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let full = std::mem::replace(&mut self.buf, rest);
            self.seal(&full, false)?;
        }
        Ok(())
    }

    /// Seals what is buffered as the last chunk.
    fn finish(&mut self) -> Result<()> {
        let plain = std::mem::take(&mut self.buf);
        self.seal(&plain, true)
    }

    fn seal(&mut self, plain: &[u8], last: bool) -> Result<()> {
        let env = self
            .key
            .seal(&chunk_aad(&self.header_hash, self.index, last), plain)?;
        let len =
            u32::try_from(env.len()).map_err(|_| VaultError::Backup("chunk too large".into()))?;
        self.write_raw(&len.to_be_bytes())
            .and_then(|()| self.write_raw(&env))
            .map_err(|e| VaultError::Backup(format!("cannot write the backup: {e}")))?;
        self.index += 1;
        Ok(())
    }
}

/// Reads and authenticates a backup file chunk by chunk.
pub struct BackupReader {
    input: BufReader<File>,
    /// The header.
    pub header: Header,
    key: SealingKey,
    header_hash: [u8; 32],
    index: u64,
    done: bool,
    hasher: Sha256,
    /// The start of an item continued in the next chunk.
    pending: Vec<u8>,
    /// Largest chunk envelope accepted (format 1 wrote a large item in one big chunk).
    max_chunk: usize,
}

impl std::fmt::Debug for BackupReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupReader")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Parses the framing before the chunks: magic, header length and header.
pub fn parse_preamble(bytes: &[u8]) -> Result<(Header, usize)> {
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(VaultError::Backup("not a vault backup (bad magic)".into()));
    }
    let len = u32::from_be_bytes(
        bytes[MAGIC.len()..MAGIC.len() + 4]
            .try_into()
            .unwrap_or([0; 4]),
    ) as usize;
    if len > MAX_HEADER {
        return Err(VaultError::Backup(format!(
            "header length {len} is too large"
        )));
    }
    let start = MAGIC.len() + 4;
    let end = start + len;
    if bytes.len() < end {
        return Err(VaultError::Backup("truncated header".into()));
    }
    Ok((Header::decode(&bytes[start..end])?, end))
}

/// The root key of a backup body: from the backup passphrase, or from a key that opens one
/// of the profile's slots recorded in the header.
fn root_key(header: &Header, key: &BackupKey) -> Result<SecretKey> {
    Ok(match (&header.protection, key) {
        (HeaderProtection::Passphrase { params, salt }, BackupKey::Passphrase(p)) => {
            Argon2Params::parse(params)?.derive(p.expose(), salt)?
        }
        (HeaderProtection::Profile { profile, slots }, BackupKey::Profile(source)) => {
            let mut found = None;
            for s in slots {
                let slot = Slot {
                    slot_id: s.slot_id.clone(),
                    kind: s.kind.clone(),
                    key_epoch: s.key_epoch,
                    kdf_params: s.kdf_params.clone(),
                    salt: s.salt.clone(),
                    source_blob: s.source_blob.clone(),
                    wrapped_dk: s.wrapped_dk.clone(),
                };
                if !slot.matches(source) {
                    continue;
                }
                let kek = slot.kek(source)?;
                if let Some(dk) = slot.unwrap_dk(&header.vault_id, profile, &kek) {
                    found = Some(dk);
                    break;
                }
            }
            found.ok_or_else(|| {
                VaultError::Backup(format!(
                    "the key does not open any key slot of profile `{profile}` in the backup"
                ))
            })?
        }
        (HeaderProtection::Passphrase { .. }, BackupKey::Profile(_)) => {
            return Err(VaultError::Backup(
                "this backup is protected by a backup passphrase".into(),
            ));
        }
        (HeaderProtection::Profile { profile, .. }, BackupKey::Passphrase(_)) => {
            return Err(VaultError::Backup(format!(
                "this backup is protected by the key of profile `{profile}`"
            )));
        }
    })
}

impl BackupReader {
    /// Opens `path`, parses the header and derives the body key from `key`.
    pub fn open(path: &Path, key: &BackupKey) -> Result<Self> {
        Self::open_with(path, |header| root_key(header, key))
    }

    /// Opens `path` with the root key `root` computes from the header.
    fn open_with(path: &Path, root: impl FnOnce(&Header) -> Result<SecretKey>) -> Result<Self> {
        let f = File::open(path).map_err(|e| VaultError::io("cannot open backup", path, e))?;
        let mut input = BufReader::new(f);
        let mut pre = [0u8; 14];
        input.read_exact(&mut pre).map_err(|_| {
            VaultError::Backup("truncated: the file is shorter than a backup header".into())
        })?;
        if &pre[..10] != MAGIC {
            return Err(VaultError::Backup("not a vault backup (bad magic)".into()));
        }
        let len = u32::from_be_bytes([pre[10], pre[11], pre[12], pre[13]]) as usize;
        if len > MAX_HEADER {
            return Err(VaultError::Backup(format!(
                "header length {len} is too large"
            )));
        }
        let mut hb = vec![0u8; len];
        input
            .read_exact(&mut hb)
            .map_err(|_| VaultError::Backup("truncated header".into()))?;
        let header = Header::decode(&hb)?;
        let mut hasher = Sha256::new();
        hasher.update(&pre);
        hasher.update(&hb);
        let header_hash = aim_crypto::hash::sha256_parts(&[&pre, &hb]);
        let root = root(&header)?;
        Ok(Self {
            input,
            key: body_key(&root, &header.backup_id),
            header,
            header_hash,
            index: 0,
            done: false,
            hasher,
            pending: Vec::new(),
            max_chunk: if hb.first() == Some(&1) {
                MAX_PENDING + MAX_CHUNK_ENVELOPE
            } else {
                MAX_CHUNK_ENVELOPE
            },
        })
    }

    /// The next chunk's items, or `None` after the last chunk. Errors on any tampering,
    /// truncation or trailing data.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Item>>> {
        if self.done {
            return Ok(None);
        }
        let mut lb = [0u8; 4];
        self.input.read_exact(&mut lb).map_err(|_| {
            VaultError::Backup(format!(
                "truncated: chunk {} is missing (no end marker)",
                self.index
            ))
        })?;
        let len = u32::from_be_bytes(lb) as usize;
        if len > self.max_chunk {
            return Err(VaultError::Backup(format!(
                "chunk {} claims {len} bytes",
                self.index
            )));
        }
        let mut env = vec![0u8; len];
        self.input.read_exact(&mut env).map_err(|_| {
            VaultError::Backup(format!("truncated: chunk {} is cut short", self.index))
        })?;
        self.hasher.update(&lb);
        self.hasher.update(&env);
        let (plain, last) = match self
            .key
            .open(&chunk_aad(&self.header_hash, self.index, false), &env)
        {
            Ok(p) => (p, false),
            Err(_) => match self
                .key
                .open(&chunk_aad(&self.header_hash, self.index, true), &env)
            {
                Ok(p) => (p, true),
                Err(_) => {
                    return Err(VaultError::Backup(format!(
                        "chunk {} failed authentication (wrong key, corrupted or reordered)",
                        self.index
                    )));
                }
            },
        };
        self.index += 1;
        if last {
            self.done = true;
            let mut extra = [0u8; 1];
            if self
                .input
                .read(&mut extra)
                .map_err(|e| VaultError::Backup(e.to_string()))?
                != 0
            {
                return Err(VaultError::Backup(
                    "trailing data after the last chunk".into(),
                ));
            }
        }
        if self.pending.is_empty() && last {
            return Ok(Some(decode_items(&plain)?));
        }
        self.pending.extend_from_slice(&plain);
        if last {
            let items = decode_items(&std::mem::take(&mut self.pending))?;
            return Ok(Some(items));
        }
        let (items, used) = decode_prefix(&self.pending);
        self.pending.drain(..used);
        if self.pending.len() > MAX_PENDING {
            return Err(VaultError::Backup(format!(
                "chunk {}: an item is larger than {MAX_PENDING} bytes",
                self.index - 1
            )));
        }
        Ok(Some(items))
    }

    /// SHA-256 of the whole file (valid once every chunk was read).
    pub fn file_hash(&self) -> [u8; 32] {
        self.hasher.clone().finalize()
    }
}

impl Session<'_> {
    /// Writes a backup of the whole vault to `out` (created with mode 0600; must not exist)
    /// and records it (`backups` table, `vault.backup` event).
    pub fn backup(&mut self, out: &Path, opts: &BackupOptions) -> Result<BackupReport> {
        if opts.include_black {
            let req = GateRequest {
                memory_id: MemoryId::from_bytes([0; 16]),
                classification: Classification::Black,
                profile: self.profile.clone(),
                requester: "backup".into(),
                justification: "include level-5 memories in a backup".into(),
                purpose: "backup-include-black".into(),
            };
            let reason = match &self.vault.gates.presence {
                None => Some(DenyReason::PresenceUnavailable),
                Some(p) => p
                    .confirm(&req)
                    .err()
                    .map(|e| DenyReason::PresenceDenied(e.to_string())),
            };
            if let Some(reason) = reason {
                let tx = db::write_tx(self.conn())?;
                audit::append(
                    &tx,
                    &Event::new("vault.backup.denied", self.vault.now())
                        .with("profile", self.profile.as_str())
                        .with("reason", reason.code()),
                )?;
                self.commit_op(tx, 1)?;
                return Err(VaultError::Denied(reason));
            }
        }
        self.sign_head()?;
        let backup_id = aim_crypto::random::random_array::<16>()?;
        let now = self.vault.now();
        let parent = if opts.incremental {
            Some(latest_backup(self.conn())?.ok_or_else(|| {
                VaultError::Backup("no earlier backup of this vault to be incremental to; make a full backup first".into())
            })?)
        } else {
            None
        };
        let (root, protection) = match &opts.protection {
            BackupProtection::Passphrase { passphrase, params } => {
                let salt = aim_crypto::random::random_array::<16>()?;
                (
                    params.derive(passphrase.expose(), &salt)?,
                    HeaderProtection::Passphrase {
                        params: params.encode(),
                        salt,
                    },
                )
            }
            BackupProtection::ProfileKey => {
                let slots = self
                    .vault
                    .slots(&self.profile, self.keys.epoch)?
                    .into_iter()
                    .map(|s| SlotRecord {
                        slot_id: s.slot_id,
                        kind: s.kind,
                        key_epoch: s.key_epoch,
                        kdf_params: s.kdf_params,
                        salt: s.salt,
                        source_blob: s.source_blob,
                        wrapped_dk: s.wrapped_dk,
                    })
                    .collect();
                (
                    self.keys.dk.clone(),
                    HeaderProtection::Profile {
                        profile: self.profile.clone(),
                        slots,
                    },
                )
            }
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| VaultError::io("cannot create backup file", out, e))?;
        let result = self.write_backup(
            file,
            backup_id,
            now,
            parent.as_ref(),
            opts,
            &root,
            protection,
        );
        let result = result.and_then(|r| read_back(out, &root, &r.0).map(|()| r));
        let (report, change_to, ranges) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(out);
                return Err(e);
            }
        };
        let tx = db::write_tx(self.conn())?;
        let ranges_text = ranges
            .iter()
            .map(|(t, _, b)| format!("{t}:{b}"))
            .collect::<Vec<_>>()
            .join(",");
        tx.execute(
            "INSERT INTO backups(backup_id, file_hash, kind, parent_hash, change_seq, audit_rows, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                &backup_id[..],
                &report.file_hash[..],
                report.kind as i64,
                report.parent_hash.map(|h| h.to_vec()),
                change_to,
                ranges_text,
                now
            ],
        )?;
        let mut ev = Event::new("vault.backup", now)
            .with("profile", self.profile.as_str())
            .with("backup_id", &backup_id[..])
            .with(
                "kind",
                if report.kind == BackupKind::Full {
                    "full"
                } else {
                    "incremental"
                },
            )
            .with("file_hash", &report.file_hash[..])
            .with(
                "memories",
                i64::try_from(report.memories).unwrap_or(i64::MAX),
            )
            .with("include_black", opts.include_black);
        if let Some(p) = report.parent_hash {
            ev = ev.with("parent_hash", &p[..]);
        }
        audit::append(&tx, &ev)?;
        self.commit_op(tx, 1)?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_backup(
        &self,
        file: File,
        backup_id: [u8; 16],
        now: i64,
        parent: Option<&ParentInfo>,
        opts: &BackupOptions,
        root: &SecretKey,
        protection: HeaderProtection,
    ) -> Result<(BackupReport, i64, Ranges)> {
        let conn = self.conn();
        // One read transaction: a consistent snapshot while other processes keep writing.
        let snap = conn.unchecked_transaction()?;
        let change_to: i64 = snap.query_row(
            "SELECT value FROM counters WHERE name = 'change_seq'",
            [],
            |r| r.get(0),
        )?;
        let change_from = parent.map_or(0, |p| p.change_seq);
        let mut ranges = Vec::new();
        for (t, pk) in APPEND_ONLY {
            let to: i64 = snap.query_row(
                &format!("SELECT coalesce(max({pk}), -1) FROM {t}"),
                [],
                |r| r.get(0),
            )?;
            let from = parent.and_then(|p| p.ranges.get(*t).copied()).unwrap_or(-1);
            ranges.push(((*t).to_owned(), from, to));
        }
        let header = Header {
            kind: if parent.is_some() {
                BackupKind::Incremental
            } else {
                BackupKind::Full
            },
            backup_id,
            vault_id: self.vault.vault_id,
            created_at_ms: now,
            parent_hash: parent.map_or([0; 32], |p| p.file_hash),
            change_from,
            change_to,
            ranges: ranges.clone(),
            include_black: opts.include_black,
            protection,
        };
        let hb = header.encode();
        let mut pre = MAGIC.to_vec();
        pre.extend_from_slice(&u32::try_from(hb.len()).unwrap_or(u32::MAX).to_be_bytes());
        let header_hash = aim_crypto::hash::sha256_parts(&[&pre, &hb]);
        let mut w = ChunkWriter {
            out: BufWriter::new(file),
            key: body_key(root, &backup_id),
            header_hash,
            buf: Vec::new(),
            index: 0,
            hasher: Sha256::new(),
        };
        w.write_raw(&pre)
            .and_then(|()| w.write_raw(&hb))
            .map_err(|e| VaultError::Backup(format!("cannot write the backup: {e}")))?;
        let black = if opts.include_black {
            ""
        } else {
            " AND classification < 5"
        };
        let mem_filter = format!("change_seq > {change_from}{black}");
        let mut rows = 0u64;
        let mut memories = 0u64;
        for table in table_order(&snap)? {
            let columns = table_columns(&snap, &table)?;
            let filter = if let Some((_, pk)) = APPEND_ONLY.iter().find(|(t, _)| *t == table) {
                let (_, from, to) = ranges
                    .iter()
                    .find(|(t, _, _)| *t == table)
                    .cloned()
                    .unwrap_or_default();
                format!("{pk} > {from} AND {pk} <= {to}")
            } else {
                match table.as_str() {
                    "memories" => mem_filter.clone(),
                    "memory_labels" | "memory_words" => {
                        format!("seq IN (SELECT seq FROM memories WHERE {mem_filter})")
                    }
                    "access_state" => format!("seq IN (SELECT seq FROM memories WHERE 1=1{black})"),
                    _ => "1=1".to_owned(),
                }
            };
            w.push(&Item::Table {
                name: table.clone(),
                columns: columns.clone(),
            })?;
            let cols = columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt =
                snap.prepare(&format!("SELECT {cols} FROM \"{table}\" WHERE {filter}"))?;
            let mut q = stmt.query([])?;
            while let Some(r) = q.next()? {
                let values = (0..columns.len())
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                w.push(&Item::Row(values))?;
                rows += 1;
                if table == "memories" {
                    memories += 1;
                }
            }
        }
        let mut excluded = 0u64;
        if !opts.include_black {
            let mut stmt = snap.prepare(&format!(
                "SELECT memory_id FROM memories WHERE change_seq > {change_from} AND classification >= 5"
            ))?;
            let mut q = stmt.query([])?;
            while let Some(r) = q.next()? {
                let id: Vec<u8> = r.get(0)?;
                let id: [u8; 16] = id
                    .as_slice()
                    .try_into()
                    .map_err(|_| VaultError::corrupt("memory id", "not 16 bytes"))?;
                w.push(&Item::Excluded(id))?;
                excluded += 1;
            }
        }
        w.push(&Item::End { rows })?;
        w.finish()?;
        drop(snap);
        let file_hash = w.hasher.clone().finalize();
        let file = w
            .out
            .into_inner()
            .map_err(|e| VaultError::Backup(format!("cannot write the backup: {e}")))?;
        file.sync_all()
            .map_err(|e| VaultError::Backup(format!("cannot sync the backup: {e}")))?;
        Ok((
            BackupReport {
                backup_id,
                file_hash,
                kind: header.kind,
                parent_hash: parent.map(|p| p.file_hash),
                rows,
                memories,
                excluded_black: excluded,
            },
            change_to,
            ranges,
        ))
    }
}

/// Reads a just-written backup back: every chunk authenticates and decodes, the row count
/// matches the end marker and what was written, and the file hash is the recorded one.
fn read_back(path: &Path, root: &SecretKey, written: &BackupReport) -> Result<()> {
    let mut r = BackupReader::open_with(path, |_| Ok(root.clone()))?;
    let (mut rows, mut end) = (0u64, None);
    while let Some(items) = r.next_chunk()? {
        for item in items {
            match item {
                Item::Row(_) => rows += 1,
                Item::End { rows: n } => end = Some(n),
                _ => {}
            }
        }
    }
    if end != Some(rows) || rows != written.rows || r.file_hash() != written.file_hash {
        return Err(VaultError::Backup(format!(
            "the backup written to {} does not read back ({rows} rows read, {} written)",
            path.display(),
            written.rows
        )));
    }
    Ok(())
}

/// Append-only table ranges: (table, exclusive lower key, inclusive upper key).
type Ranges = Vec<(String, i64, i64)>;

struct ParentInfo {
    file_hash: [u8; 32],
    change_seq: i64,
    ranges: HashMap<String, i64>,
}

fn latest_backup(conn: &Connection) -> Result<Option<ParentInfo>> {
    let row: Option<(Vec<u8>, i64, String)> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT file_hash, change_seq, audit_rows FROM backups ORDER BY created_at_ms DESC, rowid DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    ))?;
    let Some((hash, change_seq, ranges)) = row else {
        return Ok(None);
    };
    let file_hash = hash
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::corrupt("backup record", "hash is not 32 bytes"))?;
    let ranges = ranges
        .split(',')
        .filter_map(|p| p.split_once(':'))
        .filter_map(|(t, v)| v.parse().ok().map(|v| (t.to_owned(), v)))
        .collect();
    Ok(Some(ParentInfo {
        file_hash,
        change_seq,
        ranges,
    }))
}

fn table_order(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
    let all: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?
        .into_iter()
        .filter(|t| !skipped(t))
        .collect();
    let mut out: Vec<String> = ORDER
        .iter()
        .filter(|t| all.iter().any(|a| a == *t))
        .map(|t| (*t).to_owned())
        .collect();
    out.extend(all.into_iter().filter(|t| !ORDER.contains(&t.as_str())));
    Ok(out)
}

fn table_columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    ))?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?)
}

/// The tables and columns of this build's schema.
fn schema() -> Result<HashMap<String, Vec<String>>> {
    let conn = Connection::open_in_memory()?;
    db::migrate(&conn)?;
    let mut out = HashMap::new();
    for t in table_order(&conn)? {
        let cols = table_columns(&conn, &t)?;
        out.insert(t, cols);
    }
    Ok(out)
}

/// Checks one file's items against the schema; returns the row count.
fn check_items(
    reader: &mut BackupReader,
    schema: &HashMap<String, Vec<String>>,
    mut apply: impl FnMut(&Item, Option<&str>) -> Result<()>,
) -> Result<u64> {
    let mut table: Option<(String, usize)> = None;
    let mut rows = 0u64;
    let mut ended = false;
    while let Some(items) = reader.next_chunk()? {
        for item in &items {
            if ended {
                return Err(VaultError::Backup("items after the end marker".into()));
            }
            match item {
                Item::Table { name, columns } => {
                    let want = schema.get(name).ok_or_else(|| {
                        VaultError::Backup(format!("table `{name}` is unknown to this build"))
                    })?;
                    if want != columns {
                        return Err(VaultError::Backup(format!(
                            "table `{name}` has different columns than this build's schema"
                        )));
                    }
                    table = Some((name.clone(), columns.len()));
                }
                Item::Row(values) => {
                    let (_, n) = table
                        .as_ref()
                        .ok_or_else(|| VaultError::Backup("a row before any table".into()))?;
                    if values.len() != *n {
                        return Err(VaultError::Backup(
                            "a row has the wrong number of values".into(),
                        ));
                    }
                    rows += 1;
                }
                Item::Excluded(_) => {}
                Item::End { rows: n } => {
                    if *n != rows {
                        return Err(VaultError::Backup(format!(
                            "the end marker counts {n} rows, the body holds {rows}"
                        )));
                    }
                    ended = true;
                }
            }
            apply(item, table.as_ref().map(|(t, _)| t.as_str()))?;
        }
    }
    if !ended {
        return Err(VaultError::Backup("no end marker".into()));
    }
    Ok(rows)
}

impl Vault {
    /// Restores a backup chain (a full backup followed by its incrementals, in order) into a
    /// new vault at `target`, which must not exist. Everything is verified before anything is
    /// written; the vault appears at `target` only when complete.
    pub fn restore<P: AsRef<Path>>(
        target: &Path,
        chain: &[P],
        key: &BackupKey,
    ) -> Result<RestoreReport> {
        let chain: Vec<PathBuf> = chain.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let chain = chain.as_slice();
        if chain.is_empty() {
            return Err(VaultError::InvalidInput("no backup files given".into()));
        }
        let schema = schema()?;
        // Pass 1: authenticate and check everything; write nothing.
        let mut hashes = Vec::new();
        let mut prev: Option<(Header, [u8; 32])> = None;
        for path in chain {
            let mut r = BackupReader::open(path, key)?;
            let h = r.header.clone();
            match &prev {
                None if h.kind != BackupKind::Full => {
                    return Err(VaultError::Backup(format!(
                        "{} is incremental; the chain must start with a full backup",
                        path.display()
                    )));
                }
                Some((ph, phash)) => {
                    if h.kind != BackupKind::Incremental || h.parent_hash != *phash {
                        return Err(VaultError::Backup(format!(
                            "{} is not the incremental child of the previous file",
                            path.display()
                        )));
                    }
                    if h.vault_id != ph.vault_id || h.change_from != ph.change_to {
                        return Err(VaultError::Backup(format!(
                            "{} does not continue the previous backup",
                            path.display()
                        )));
                    }
                }
                None => {}
            }
            check_items(&mut r, &schema, |_, _| Ok(()))?;
            let hash = r.file_hash();
            hashes.push(hash);
            prev = Some((h, hash));
        }
        if target.exists() {
            return Err(VaultError::VaultExists(target.to_owned()));
        }
        // Pass 2: build the vault in a temporary file, in one transaction.
        let tmp = target.with_file_name(format!(
            ".{}.restore-{}",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("vault"),
            hex_id(&aim_crypto::random::random_array::<6>()?)
        ));
        let stale = remove_stale_restores(target);
        let result = Self::restore_into(&tmp, chain, key, &hashes).map(|mut r| {
            r.stale_removed = stale;
            r
        });
        let outcome = result.and_then(|report| {
            std::fs::hard_link(&tmp, target).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    VaultError::VaultExists(target.to_owned())
                } else {
                    VaultError::io("cannot move the restored vault into place", target, e)
                }
            })?;
            Ok(report)
        });
        for ext in ["", "-wal", "-shm"] {
            let mut p = tmp.clone().into_os_string();
            p.push(ext);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        outcome
    }

    fn restore_into(
        tmp: &Path,
        chain: &[PathBuf],
        key: &BackupKey,
        hashes: &[[u8; 32]],
    ) -> Result<RestoreReport> {
        let schema = schema()?;
        let vault = Vault::options().create(tmp)?;
        let conn = &vault.conn;
        let tx = db::write_tx(conn)?;
        tx.pragma_update(None, "defer_foreign_keys", "ON")?;
        let mut total = 0u64;
        let mut vault_id = [0u8; 16];
        for (i, path) in chain.iter().enumerate() {
            let mut r = BackupReader::open(path, key)?;
            let incremental = r.header.kind == BackupKind::Incremental;
            let backup_id = r.header.backup_id;
            vault_id = r.header.vault_id;
            let mut changed: HashSet<i64> = HashSet::new();
            let mut current: Option<(String, Vec<String>)> = None;
            let rows = check_items(&mut r, &schema, |item, _| {
                match item {
                    Item::Table { name, columns } => {
                        let replace_all = !APPEND_ONLY.iter().any(|(t, _)| t == name)
                            && !matches!(
                                name.as_str(),
                                "memories" | "memory_labels" | "memory_words" | "backup_exclusions"
                            );
                        if i == 0 && matches!(name.as_str(), "vault_meta" | "counters")
                            || incremental && replace_all
                        {
                            tx.execute(&format!("DELETE FROM \"{name}\""), [])?;
                        }
                        if incremental && matches!(name.as_str(), "memory_labels" | "memory_words")
                        {
                            let mut del =
                                tx.prepare(&format!("DELETE FROM \"{name}\" WHERE seq = ?1"))?;
                            for s in &changed {
                                del.execute([s])?;
                            }
                        }
                        current = Some((name.clone(), columns.clone()));
                    }
                    Item::Row(values) => {
                        let (name, columns) = current
                            .as_ref()
                            .ok_or_else(|| VaultError::Backup("row before table".into()))?;
                        let cols = columns
                            .iter()
                            .map(|c| format!("\"{c}\""))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let marks = vec!["?"; columns.len()].join(", ");
                        let sql = if name == "memories" && incremental {
                            if let Some(Value::Integer(seq)) = values.first() {
                                changed.insert(*seq);
                            }
                            let set = columns
                                .iter()
                                .skip(1)
                                .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
                                .collect::<Vec<_>>()
                                .join(", ");
                            format!(
                                "INSERT INTO \"{name}\" ({cols}) VALUES ({marks}) ON CONFLICT(seq) DO UPDATE SET {set}"
                            )
                        } else if name == "backup_exclusions" {
                            format!("INSERT OR IGNORE INTO \"{name}\" ({cols}) VALUES ({marks})")
                        } else {
                            format!("INSERT INTO \"{name}\" ({cols}) VALUES ({marks})")
                        };
                        tx.prepare_cached(&sql)?
                            .execute(params_from_iter(values.iter()))?;
                    }
                    Item::Excluded(id) => {
                        tx.prepare_cached("INSERT OR IGNORE INTO backup_exclusions(memory_id, backup_id) VALUES (?1, ?2)")?
                            .execute(params![&id[..], &backup_id[..]])?;
                    }
                    Item::End { .. } => {}
                }
                Ok(())
            })?;
            if r.file_hash() != hashes[i] {
                return Err(VaultError::Backup(format!(
                    "{} changed while it was being restored",
                    path.display()
                )));
            }
            total += rows;
        }
        tx.execute(
            "INSERT INTO memory_fts(rowid, words) SELECT -seq, words FROM memory_words",
            [],
        )?;
        let violations: i64 =
            tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if violations > 0 {
            return Err(VaultError::Backup(format!(
                "the backup is internally inconsistent ({violations} dangling references)"
            )));
        }
        let restored_id = crate::vault::read_vault_id(&tx)?;
        if restored_id != vault_id {
            return Err(VaultError::Backup(
                "the backup body's vault id differs from its header".into(),
            ));
        }
        audit::append(
            &tx,
            &Event::new("vault.restore", vault.now())
                .with("files", i64::try_from(chain.len()).unwrap_or(i64::MAX))
                .with("last_file_hash", &hashes[hashes.len() - 1][..])
                .with("rows", i64::try_from(total).unwrap_or(i64::MAX)),
        )?;
        tx.commit()?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(vault);
        Ok(RestoreReport {
            vault_id,
            files: chain.len(),
            rows: total,
            stale_removed: Vec::new(),
        })
    }
}

fn hex_id(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The read-back check run before `backup` reports success refuses a file that does not
    /// read back as written (here: one flipped byte in the body).
    #[test]
    fn read_back_refuses_a_file_that_differs_from_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let fast = Argon2Params::new(64, 1, 1).unwrap();
        let v = Vault::open(&path).unwrap();
        let mut s = v
            .create_profile("agent", crate::Enrollment::passphrase_with("pw", fast))
            .unwrap();
        s.store(crate::MemoryInput::text("one")).unwrap();
        let out = dir.path().join("b.bak");
        let opts = BackupOptions {
            protection: BackupProtection::Passphrase {
                passphrase: SecretBytes::from("bpw".to_string()),
                params: fast,
            },
            incremental: false,
            include_black: false,
        };
        let report = s.backup(&out, &opts).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let (h, _) = parse_preamble(&bytes).unwrap();
        let root = root_key(
            &h,
            &BackupKey::Passphrase(SecretBytes::from("bpw".to_string())),
        )
        .unwrap();
        read_back(&out, &root, &report).unwrap();
        for at in [bytes.len() - 1, bytes.len() / 2] {
            let mut b = bytes.clone();
            b[at] ^= 0x40;
            std::fs::write(&out, &b).unwrap();
            assert!(read_back(&out, &root, &report).is_err(), "flip at {at}");
        }
        std::fs::write(&out, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read_back(&out, &root, &report).is_err(), "truncated");
    }

    fn header(p: HeaderProtection) -> Header {
        Header {
            kind: BackupKind::Incremental,
            backup_id: [1; 16],
            vault_id: [2; 16],
            created_at_ms: 3,
            parent_hash: [4; 32],
            change_from: 5,
            change_to: 6,
            ranges: vec![("audit_leaves".into(), -1, 9)],
            include_black: true,
            protection: p,
        }
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Integer),
            any::<f64>()
                .prop_filter("not NaN", |f| !f.is_nan())
                .prop_map(Value::Real),
            ".{0,20}".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Blob),
        ]
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            (
                "[a-z_]{1,12}",
                proptest::collection::vec("[a-z_]{1,8}", 1..6)
            )
                .prop_map(|(name, columns)| Item::Table { name, columns }),
            proptest::collection::vec(value(), 0..8).prop_map(Item::Row),
            any::<[u8; 16]>().prop_map(Item::Excluded),
            any::<u64>().prop_map(|rows| Item::End { rows }),
        ]
    }

    proptest! {
        #[test]
        fn items_round_trip(items in proptest::collection::vec(item(), 0..20)) {
            let mut w = Writer::new();
            for i in &items {
                i.encode_into(&mut w);
            }
            prop_assert_eq!(decode_items(w.as_slice()).unwrap(), items);
        }

        #[test]
        fn item_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_items(&bytes);
        }

        #[test]
        fn header_round_trips(params in "[a-z0-9$=,]{0,30}", salt in any::<[u8; 16]>(), profile in "[a-z]{1,10}",
                              blob in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20))) {
            let h = header(HeaderProtection::Passphrase { params, salt });
            prop_assert_eq!(Header::decode(&h.encode()).unwrap(), h);
            let h = header(HeaderProtection::Profile { profile, slots: vec![SlotRecord {
                slot_id: "passphrase".into(), kind: "passphrase".into(), key_epoch: 1,
                kdf_params: Some("x".into()), salt: None, source_blob: blob, wrapped_dk: vec![1, 2, 3],
            }]});
            let enc = h.encode();
            prop_assert_eq!(Header::decode(&enc).unwrap(), h);
            for cut in 0..enc.len() {
                prop_assert!(Header::decode(&enc[..cut]).is_err());
            }
        }

        #[test]
        fn header_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Header::decode(&bytes);
            let _ = parse_preamble(&bytes);
        }
    }
}
