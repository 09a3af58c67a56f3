//! The storage-backed log: SQLite tables in the vault's own database, O(log n) appends, proofs
//! from stored complete-subtree hashes, key epochs and signed heads.
//!
//! Every function takes a `&Connection` (a `rusqlite::Transaction` derefs to one) and never opens,
//! commits or rolls back a transaction: the caller's transaction makes an operation and its audit
//! leaf atomic.

use aim_crypto::AgentPublicKey;
use rusqlite::{Connection, OptionalExtension, params};

use crate::epoch::{KEY_EPOCH_KIND, KeyEpoch, certify, check_chain, epoch_event, parse_epoch};
use crate::error::{AuditError, Result};
use crate::event::{Event, RESERVED_PREFIX};
use crate::hash::{Hash, leaf_hash, node_hash};
use crate::head::{HeadSigner, SignedTreeHead};
use crate::proof::{self, ConsistencyProof, InclusionProof, NodeSource, node_position};

/// The audit tables. `audit_nodes.pos` is the position of an interior node in completion order
/// (see `docs/audit-log.md`); triggers make every table append-only.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_leaves (
    idx       INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    data      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_nodes (
    pos  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_heads (
    seq        INTEGER PRIMARY KEY,
    tree_size  INTEGER NOT NULL,
    root       BLOB NOT NULL,
    time_ms    INTEGER NOT NULL,
    key_id     TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_epochs (
    epoch      INTEGER PRIMARY KEY,
    leaf_idx   INTEGER NOT NULL UNIQUE,
    key_id     TEXT NOT NULL UNIQUE,
    public_key BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_leaves_no_update BEFORE UPDATE ON audit_leaves
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_leaves_no_delete BEFORE DELETE ON audit_leaves
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_nodes_no_update BEFORE UPDATE ON audit_nodes
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_nodes_no_delete BEFORE DELETE ON audit_nodes
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_heads_no_update BEFORE UPDATE ON audit_heads
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_heads_no_delete BEFORE DELETE ON audit_heads
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_epochs_no_update BEFORE UPDATE ON audit_epochs
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_epochs_no_delete BEFORE DELETE ON audit_epochs
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Creates the audit tables if they do not exist (idempotent; call it inside the vault's
/// migration).
pub fn create_schema(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// The audit log stored in a SQLite database. All methods are associated functions taking the
/// caller's connection or transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLog;

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| AuditError::Corrupt(format!("{what} {v} exceeds i64")))
}

pub(crate) fn from_i64(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| AuditError::Corrupt(format!("{what} {v} is negative")))
}

pub(crate) fn blob_hash(blob: &[u8], what: &str) -> Result<Hash> {
    blob.try_into()
        .map_err(|_| AuditError::Corrupt(format!("{what} is {} bytes, not 32", blob.len())))
}

/// Complete-subtree hashes read from the tables.
pub(crate) struct DbNodes<'c> {
    pub(crate) conn: &'c Connection,
}

impl NodeSource for DbNodes<'_> {
    fn node(&mut self, level: u32, index: u64) -> Result<Hash> {
        let blob: Option<Vec<u8>> = if level == 0 {
            self.conn
                .prepare_cached("SELECT leaf_hash FROM audit_leaves WHERE idx = ?1")?
                .query_row([to_i64(index, "leaf index")?], |r| r.get(0))
                .optional()?
        } else {
            let pos = node_position(level, index).ok_or_else(|| {
                AuditError::Corrupt(format!("node ({level}, {index}) has no position"))
            })?;
            self.conn
                .prepare_cached("SELECT hash FROM audit_nodes WHERE pos = ?1")?
                .query_row([to_i64(pos, "node position")?], |r| r.get(0))
                .optional()?
        };
        match blob {
            Some(b) => blob_hash(&b, &format!("node ({level}, {index})")),
            None => Err(AuditError::Corrupt(format!(
                "node ({level}, {index}) is missing"
            ))),
        }
    }
}

impl AuditLog {
    /// Appends `event` as the next leaf and returns its index. Costs O(log n) reads and
    /// amortised two row inserts; never rebuilds. Kinds starting with `audit.` are refused
    /// (they are written by [`AuditLog::announce_key`]).
    pub fn append(conn: &Connection, event: &Event) -> Result<u64> {
        if event.kind.starts_with(RESERVED_PREFIX) {
            return Err(AuditError::ReservedKind(event.kind.clone()));
        }
        Self::append_bytes(conn, &event.encode()?)
    }

    fn append_bytes(conn: &Connection, data: &[u8]) -> Result<u64> {
        let n = Self::tree_size(conn)?;
        let lh = leaf_hash(data);
        conn.prepare_cached("INSERT INTO audit_leaves (idx, leaf_hash, data) VALUES (?1, ?2, ?3)")?
            .execute(params![to_i64(n, "leaf index")?, &lh[..], data])?;
        let mut nodes = DbNodes { conn };
        let mut cur = lh;
        let mut level = 0u32;
        let mut index = n;
        while index & 1 == 1 {
            let left = nodes.node(level, index - 1)?;
            cur = node_hash(&left, &cur);
            level += 1;
            index >>= 1;
            let pos = node_position(level, index)
                .ok_or_else(|| AuditError::Corrupt("tree too large".into()))?;
            conn.prepare_cached("INSERT INTO audit_nodes (pos, hash) VALUES (?1, ?2)")?
                .execute(params![to_i64(pos, "node position")?, &cur[..]])?;
        }
        Ok(n)
    }

    /// Number of leaves in the log.
    pub fn tree_size(conn: &Connection) -> Result<u64> {
        let last: Option<i64> = conn
            .prepare_cached("SELECT idx FROM audit_leaves ORDER BY idx DESC LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        match last {
            None => Ok(0),
            Some(i) => Ok(from_i64(i, "leaf index")? + 1),
        }
    }

    /// The RFC 6962 root of the first `size` leaves (at most log n reads).
    pub fn root(conn: &Connection, size: u64) -> Result<Hash> {
        Self::check_size(conn, size)?;
        proof::range_hash(&mut DbNodes { conn }, 0, size)
    }

    /// The encoded bytes of leaf `index`.
    pub fn leaf_bytes(conn: &Connection, index: u64) -> Result<Vec<u8>> {
        let data: Option<Vec<u8>> = conn
            .prepare_cached("SELECT data FROM audit_leaves WHERE idx = ?1")?
            .query_row([to_i64(index, "leaf index")?], |r| r.get(0))
            .optional()?;
        match data {
            Some(d) => Ok(d),
            None => Err(AuditError::IndexOutOfRange {
                index,
                tree_size: Self::tree_size(conn)?,
            }),
        }
    }

    /// The decoded event of leaf `index`.
    pub fn leaf(conn: &Connection, index: u64) -> Result<Event> {
        Event::decode(&Self::leaf_bytes(conn, index)?)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (O(log n) reads).
    pub fn inclusion_proof(conn: &Connection, index: u64, size: u64) -> Result<InclusionProof> {
        Self::check_size(conn, size)?;
        proof::inclusion_proof(&mut DbNodes { conn }, index, size)
    }

    /// The consistency proof between the trees of `old` and `new` leaves (O(log n) reads).
    pub fn consistency_proof(conn: &Connection, old: u64, new: u64) -> Result<ConsistencyProof> {
        Self::check_size(conn, new)?;
        proof::consistency_proof(&mut DbNodes { conn }, old, new)
    }

    fn check_size(conn: &Connection, size: u64) -> Result<()> {
        let tree_size = Self::tree_size(conn)?;
        if size > tree_size {
            return Err(AuditError::SizeOutOfRange { size, tree_size });
        }
        Ok(())
    }

    /// The key epochs announced in the log, oldest first. Each `audit_epochs` index row is
    /// checked against its announcement leaf and the chain rules, certificates included; a
    /// broken chain is [`AuditError::KeyChainBroken`].
    pub fn key_epochs(conn: &Connection) -> Result<Vec<KeyEpoch>> {
        let mut stmt = conn.prepare_cached(
            "SELECT epoch, leaf_idx, key_id, public_key FROM audit_epochs ORDER BY epoch",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out: Vec<KeyEpoch> = Vec::new();
        for (epoch, leaf_idx, key_id, pk) in rows {
            let epoch = from_i64(epoch, "epoch")?;
            let leaf_index = from_i64(leaf_idx, "leaf index")?;
            let broken = |reason: &str| AuditError::KeyChainBroken {
                epoch,
                key_id: key_id.clone(),
                leaf_index,
                reason: reason.to_owned(),
            };
            let event = Self::leaf(conn, leaf_index)
                .map_err(|e| broken(&format!("its announcement leaf is unreadable: {e}")))?;
            if event.kind != KEY_EPOCH_KIND {
                return Err(broken("its announcement leaf is not a key epoch event"));
            }
            let parsed = parse_epoch(&event, leaf_index).map_err(broken)?;
            if parsed.epoch != epoch
                || parsed.key_id != key_id
                || parsed.public_key.as_bytes()[..] != pk[..]
            {
                return Err(broken("the epoch index differs from its announcement leaf"));
            }
            let root_before = Self::root(conn, leaf_index)?;
            check_chain(&out, &parsed, &root_before).map_err(broken)?;
            out.push(parsed);
        }
        Ok(out)
    }

    /// Announces `key` as the log's first head-signing key (epoch 0): appends an
    /// `audit.key_epoch` leaf and returns its index. `previous` must be `None`: every later key
    /// is certified by the key before it through [`AuditLog::rotate_key`].
    pub fn announce_key(
        conn: &Connection,
        key: &AgentPublicKey,
        previous: Option<&str>,
        time_ms: i64,
    ) -> Result<u64> {
        if previous.is_some() || !Self::key_epochs(conn)?.is_empty() {
            return Err(AuditError::BadAnnouncement {
                key_id: key.key_id(),
                reason: "only the first key is announced directly; a later key must be \
                         certified by the current one (rotate_key)"
                    .into(),
            });
        }
        Self::append_epoch(conn, &[], key, None, time_ms)
    }

    fn append_epoch(
        conn: &Connection,
        epochs: &[KeyEpoch],
        key: &AgentPublicKey,
        previous: Option<&dyn HeadSigner>,
        time_ms: i64,
    ) -> Result<u64> {
        let index = Self::tree_size(conn)?;
        let epoch = epochs.len() as u64;
        let root_before = Self::root(conn, index)?;
        let cert = previous.map(|p| certify(p, epoch, index, &root_before, key));
        let prev_id = previous.map(|p| p.public_key().key_id());
        let event = epoch_event(epoch, key, prev_id.as_deref().zip(cert.as_ref()), time_ms);
        let bad = |r: &str| AuditError::BadAnnouncement {
            key_id: key.key_id(),
            reason: r.into(),
        };
        let parsed = parse_epoch(&event, index).map_err(bad)?;
        check_chain(epochs, &parsed, &root_before).map_err(bad)?;
        let leaf = Self::append_bytes(conn, &event.encode()?)?;
        conn.prepare_cached(
            "INSERT INTO audit_epochs (epoch, leaf_idx, key_id, public_key) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            to_i64(parsed.epoch, "epoch")?,
            to_i64(leaf, "leaf index")?,
            parsed.key_id,
            &key.as_bytes()[..]
        ])?;
        Ok(leaf)
    }

    /// Rotates the head-signing key: `old` (the current key) certifies `new_key` in a new
    /// `audit.key_epoch` leaf and signs the hand-over head covering it. Returns that head.
    /// Heads signed by `old` before stay verifiable; later heads must be signed by `new_key`.
    /// This is the only way a later key enters the log, and the only time a session signs
    /// with a key other than the current one.
    pub fn rotate_key(
        conn: &Connection,
        old: &dyn HeadSigner,
        new_key: &AgentPublicKey,
        time_ms: i64,
    ) -> Result<SignedTreeHead> {
        let epochs = Self::key_epochs(conn)?;
        let old_id = old.public_key().key_id();
        match epochs.last() {
            None => return Err(AuditError::NoKeyEpoch),
            Some(cur) if cur.key_id != old_id || cur.public_key != old.public_key() => {
                return Err(AuditError::KeyNotCurrent {
                    key_id: old_id,
                    reason: "only the current key can certify its successor",
                });
            }
            Some(_) => {}
        }
        Self::check_current_usable(conn, &epochs)?;
        Self::append_epoch(conn, &epochs, new_key, Some(old), time_ms)?;
        Self::store_head(conn, old, time_ms)
    }

    /// Signs and stores a head for the current tree. The signer must be the current key epoch,
    /// and that epoch must be certified by its predecessor (or, for a log written before
    /// certificates, covered by a hand-over head its predecessor signed). A key inserted into
    /// the file without the previous key is [`AuditError::KeyChainBroken`]; a retired or
    /// unknown key is [`AuditError::KeyNotCurrent`]. `time_ms` is raised to the latest head's
    /// time if the clock went backwards, so head times never decrease.
    pub fn sign_head(
        conn: &Connection,
        signer: &dyn HeadSigner,
        time_ms: i64,
    ) -> Result<SignedTreeHead> {
        let epochs = Self::key_epochs(conn)?;
        let key_id = signer.public_key().key_id();
        let Some(current) = epochs.last() else {
            return Err(AuditError::NoKeyEpoch);
        };
        if current.key_id != key_id {
            let reason = if epochs.iter().any(|e| e.key_id == key_id) {
                "it was retired by a later key epoch"
            } else {
                "it was never announced in this log"
            };
            return Err(AuditError::KeyNotCurrent { key_id, reason });
        }
        if current.public_key != signer.public_key() {
            return Err(AuditError::KeyNotCurrent {
                key_id,
                reason: "the announced key with this id is a different key",
            });
        }
        Self::check_current_usable(conn, &epochs)?;
        Self::store_head(conn, signer, time_ms)
    }

    /// A legacy (uncertified) current epoch is usable only if a head signed by the previous
    /// key covers its announcement.
    fn check_current_usable(conn: &Connection, epochs: &[KeyEpoch]) -> Result<()> {
        let Some(current) = epochs.last().filter(|e| e.uncertified()) else {
            return Ok(());
        };
        let previous = epochs.len().checked_sub(2).map(|i| &epochs[i]);
        let handed_over = Self::heads(conn)?
            .iter()
            .find(|h| h.tree_size > current.leaf_index)
            .is_some_and(|h| {
                previous.is_some_and(|p| p.key_id == h.key_id && p.public_key == h.public_key)
            });
        if handed_over {
            return Ok(());
        }
        Err(AuditError::KeyChainBroken {
            epoch: current.epoch,
            key_id: current.key_id.clone(),
            leaf_index: current.leaf_index,
            reason: "it is not certified by the previous key and no hand-over head of the \
                     previous key covers it"
                .into(),
        })
    }

    fn store_head(
        conn: &Connection,
        signer: &dyn HeadSigner,
        time_ms: i64,
    ) -> Result<SignedTreeHead> {
        let size = Self::tree_size(conn)?;
        let latest = Self::latest_head(conn)?;
        let root = Self::root(conn, size)?;
        let time_ms = latest.as_ref().map_or(time_ms, |h| time_ms.max(h.time_ms));
        let seq = latest.as_ref().map_or(1, |h| h.seq + 1);
        let head = SignedTreeHead::sign(signer, seq, size, root, time_ms);
        conn.prepare_cached(
            "INSERT INTO audit_heads (seq, tree_size, root, time_ms, key_id, public_key, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            to_i64(seq, "head seq")?,
            to_i64(size, "tree size")?,
            &head.root[..],
            head.time_ms,
            head.key_id,
            &head.public_key.as_bytes()[..],
            &head.signature.to_bytes()[..],
        ])?;
        Ok(head)
    }

    /// The head with the highest sequence number.
    pub fn latest_head(conn: &Connection) -> Result<Option<SignedTreeHead>> {
        let row = conn
            .prepare_cached(&format!(
                "SELECT {HEAD_COLUMNS} FROM audit_heads ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row([], raw_head)
            .optional()?;
        row.map(|r| parse_head(r).map_err(|(seq, why)| corrupt_head(seq, why)))
            .transpose()
    }

    /// The head with sequence number `seq`.
    pub fn head(conn: &Connection, seq: u64) -> Result<Option<SignedTreeHead>> {
        let row = conn
            .prepare_cached(&format!(
                "SELECT {HEAD_COLUMNS} FROM audit_heads WHERE seq = ?1"
            ))?
            .query_row([to_i64(seq, "head seq")?], raw_head)
            .optional()?;
        row.map(|r| parse_head(r).map_err(|(seq, why)| corrupt_head(seq, why)))
            .transpose()
    }

    /// Every stored head, by sequence number.
    pub fn heads(conn: &Connection) -> Result<Vec<SignedTreeHead>> {
        Self::raw_heads(conn)?
            .into_iter()
            .map(|r| parse_head(r).map_err(|(seq, why)| corrupt_head(seq, why)))
            .collect()
    }

    pub(crate) fn raw_heads(conn: &Connection) -> Result<Vec<RawHead>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_heads ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], raw_head)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

const HEAD_COLUMNS: &str = "seq, tree_size, root, time_ms, key_id, public_key, signature";

/// A head row as stored, before its columns are checked.
pub(crate) struct RawHead {
    seq: i64,
    tree_size: i64,
    root: Vec<u8>,
    time_ms: i64,
    key_id: String,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

fn raw_head(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawHead> {
    Ok(RawHead {
        seq: r.get(0)?,
        tree_size: r.get(1)?,
        root: r.get(2)?,
        time_ms: r.get(3)?,
        key_id: r.get(4)?,
        public_key: r.get(5)?,
        signature: r.get(6)?,
    })
}

fn corrupt_head(seq: i64, why: &'static str) -> AuditError {
    AuditError::Corrupt(format!("head {seq}: {why}"))
}

/// Checks a head row's columns; on failure returns its seq and what is wrong.
pub(crate) fn parse_head(r: RawHead) -> std::result::Result<SignedTreeHead, (i64, &'static str)> {
    let seq = u64::try_from(r.seq).map_err(|_| (r.seq, "negative seq"))?;
    let tree_size = u64::try_from(r.tree_size).map_err(|_| (r.seq, "negative tree size"))?;
    let root: Hash = r
        .root
        .as_slice()
        .try_into()
        .map_err(|_| (r.seq, "root is not 32 bytes"))?;
    let pk: [u8; 32] = r
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| (r.seq, "public key is not 32 bytes"))?;
    let public_key =
        AgentPublicKey::from_bytes(&pk).map_err(|_| (r.seq, "public key is not a valid key"))?;
    let sig: [u8; 64] = r
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| (r.seq, "signature is not 64 bytes"))?;
    Ok(SignedTreeHead {
        seq,
        tree_size,
        root,
        time_ms: r.time_ms,
        key_id: r.key_id,
        public_key,
        signature: aim_crypto::AgentSignature::from_bytes(sig),
    })
}
