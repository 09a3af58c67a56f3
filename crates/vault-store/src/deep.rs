//! The structural and index checks of `verify --deep`: SQLite's own structure, the search
//! index (`memory_words`, the FTS5 index and its shadow tables, `memory_labels`) recomputed
//! from the opened memories, and the small tables no MAC covers. Each problem names its
//! location (table, and row or memory).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use crate::Result;
use crate::model::MemoryId;
use crate::record::SealedMeta;
use crate::session::{Session, index_entries};

/// `PRAGMA integrity_check` and `foreign_key_check`: the first problem SQLite names.
pub(crate) fn sqlite_structure(conn: &Connection) -> Result<Option<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let msgs: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    if msgs.first().map(String::as_str) != Some("ok") {
        return Ok(Some(format!(
            "SQLite structure: {}",
            msgs.into_iter().take(3).collect::<Vec<_>>().join("; ")
        )));
    }
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    if let Some(r) = rows.next()? {
        let table: String = r.get(0)?;
        let rowid: Option<i64> = r.get(1)?;
        let parent: String = r.get(2)?;
        return Ok(Some(format!(
            "SQLite structure: {table} row {} refers to a missing {parent} row",
            rowid.map_or_else(|| "?".to_owned(), |r| r.to_string())
        )));
    }
    Ok(None)
}

/// The schema (`sqlite_master`, without root pages) must be exactly the one this build
/// creates: a changed trigger, table or index definition, or an added object, is tampering.
pub(crate) fn schema(conn: &Connection) -> Result<Option<String>> {
    let fresh = Connection::open_in_memory()?;
    crate::db::migrate(&fresh)?;
    let objects = |c: &Connection| -> Result<BTreeSet<Vec<String>>> {
        let mut stmt = c.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master")?;
        let rows = stmt
            .query_map([], |r| {
                (0..4)
                    .map(|i| r.get::<_, Value>(i).map(|v| format!("{v:?}")))
                    .collect()
            })?
            .collect::<rusqlite::Result<BTreeSet<Vec<String>>>>()?;
        Ok(rows)
    };
    let want = objects(&fresh)?;
    let have = objects(conn)?;
    let name = |o: &Vec<String>| o.get(1).cloned().unwrap_or_default();
    if let Some(o) = have.difference(&want).next() {
        return Ok(Some(format!(
            "sqlite_master: schema object `{}` differs from this build's schema (altered or added)",
            name(o)
        )));
    }
    if let Some(o) = want.difference(&have).next() {
        return Ok(Some(format!(
            "sqlite_master: schema object `{}` is missing",
            name(o)
        )));
    }
    Ok(None)
}

/// `memory_fts_idx` (the FTS5 page index): per segment, page numbers contiguous and keys
/// strictly increasing, each key carrying the main-index marker `0`.
fn fts_idx(conn: &Connection) -> Result<Option<String>> {
    let mut stmt =
        conn.prepare("SELECT segid, term, pgno FROM memory_fts_idx ORDER BY segid, pgno")?;
    let mut rows = stmt.query([])?;
    let mut prev: Option<(i64, Vec<u8>, i64)> = None;
    while let Some(r) = rows.next()? {
        let segid: i64 = r.get(0)?;
        let term = match r.get::<_, Value>(1)? {
            Value::Blob(b) => b,
            Value::Text(t) => t.into_bytes(),
            _ => Vec::new(),
        };
        let pgno: i64 = r.get(2)?;
        let bad = || {
            Ok(Some(format!(
                "memory_fts_idx: entry (segment {segid}, page {pgno}) is not a valid page key"
            )))
        };
        // A segment's first page has the empty key.
        let (marker, key) = term.split_first().map_or((b'0', &[][..]), |(m, k)| (*m, k));
        // Keys of deleted documents' terms stay in the index, so a key need not prefix a
        // live token; it must carry the main-index marker.
        if marker != b'0' || key.len() > 256 {
            return bad();
        }
        if let Some((ps, pt, pp)) = &prev
            && *ps == segid
            && (pgno <= *pp || term <= *pt)
        {
            return bad();
        }
        prev = Some((segid, term, pgno));
    }
    Ok(None)
}

/// Change sequence numbers (which rows an incremental backup takes) are handed out once each
/// from `counters`: distinct across tables and never above the counter.
pub(crate) fn change_seqs(conn: &Connection) -> Result<Option<String>> {
    let counter: Option<i64> = conn
        .query_row(
            "SELECT value FROM counters WHERE name = 'change_seq'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let Some(counter) = counter else {
        return Ok(Some("counters: the change counter is missing".into()));
    };
    let mut seen = BTreeMap::new();
    for (table, key) in [
        ("memories", "hex(memory_id)"),
        ("records", "namespace || '/' || key"),
        ("profiles", "profile_id"),
    ] {
        let mut stmt = conn.prepare(&format!("SELECT change_seq, {key} FROM {table}"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let c: i64 = r.get(0)?;
            let name: String = r.get(1)?;
            if c < 1 || c > counter {
                return Ok(Some(format!(
                    "{table} ({name}): change_seq {c} is outside 1..={counter} (counters)"
                )));
            }
            if let Some(other) = seen.insert(c, format!("{table} ({name})")) {
                return Ok(Some(format!(
                    "{table} ({name}): change_seq {c} is also used by {other}"
                )));
            }
        }
    }
    Ok(None)
}

/// The words document stored for every memory (`seq` → bytes, as stored).
fn stored_words(conn: &Connection) -> Result<BTreeMap<i64, Vec<u8>>> {
    let mut stmt = conn.prepare("SELECT seq, words FROM memory_words")?;
    let mut rows = stmt.query([])?;
    let mut out = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let bytes = match r.get::<_, Value>(1)? {
            Value::Text(t) => t.into_bytes(),
            Value::Blob(b) => b,
            other => format!("{other:?}").into_bytes(),
        };
        out.insert(r.get(0)?, bytes);
    }
    Ok(out)
}

/// The FTS5 index against `memory_words`: FTS5's own integrity check, then every (token,
/// document) pair of the index and the document sizes compared with the stored words.
pub(crate) fn fts(conn: &Connection) -> Result<Option<String>> {
    let words = stored_words(conn)?;
    let check = conn.execute(
        "INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')",
        [],
    );
    if let Err(e) = check {
        return Ok(Some(format!(
            "memory_fts: FTS5 integrity check failed: {e}"
        )));
    }
    let mut expected: BTreeSet<(Vec<u8>, i64)> = BTreeSet::new();
    let mut sizes: BTreeMap<i64, u64> = BTreeMap::new();
    for (seq, doc) in &words {
        let mut n = 0u64;
        for t in doc
            .split(|b| !b.is_ascii_alphanumeric())
            .filter(|t| !t.is_empty())
        {
            expected.insert((t.to_ascii_lowercase(), -seq));
            n += 1;
        }
        sizes.insert(-seq, n);
    }
    conn.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.memory_fts_vocab USING fts5vocab(main, 'memory_fts', 'instance');",
    )?;
    let mut actual: BTreeSet<(Vec<u8>, i64)> = BTreeSet::new();
    {
        let mut stmt = conn.prepare("SELECT term, doc FROM temp.memory_fts_vocab")?;
        let mut rows = stmt.query([])?;
        loop {
            match rows.next() {
                Ok(Some(r)) => {
                    let term = match r.get::<_, Value>(0)? {
                        Value::Text(t) => t.into_bytes(),
                        Value::Blob(b) => b,
                        other => format!("{other:?}").into_bytes(),
                    };
                    actual.insert((term, r.get(1)?));
                }
                Ok(None) => break,
                Err(e) => return Ok(Some(format!("memory_fts: the index cannot be read: {e}"))),
            }
        }
    }
    if let Some(p) = fts_idx(conn)? {
        return Ok(Some(p));
    }
    // Every token looked up through the index (which uses memory_fts_idx) finds exactly
    // its documents.
    let mut by_token: BTreeMap<&[u8], BTreeSet<i64>> = BTreeMap::new();
    for (t, d) in &expected {
        by_token.entry(t.as_slice()).or_default().insert(*d);
    }
    let mut stmt = conn.prepare("SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?1")?;
    for (t, docs) in &by_token {
        let q = format!("\"{}\"", String::from_utf8_lossy(t));
        let found = stmt
            .query_map([q], |r| r.get::<_, i64>(0))
            .and_then(|m| m.collect::<rusqlite::Result<BTreeSet<i64>>>());
        if found.as_ref().ok() != Some(docs) {
            return Ok(Some(format!(
                "memory_fts: looking up token `{}` does not find exactly its memories",
                String::from_utf8_lossy(t)
            )));
        }
    }
    if let Some((t, doc)) = actual.symmetric_difference(&expected).next() {
        let seq = -doc;
        return Ok(Some(format!(
            "memory_fts: token `{}` of memory seq {seq} is {} the index but {} memory_words",
            String::from_utf8_lossy(t),
            if actual.contains(&(t.clone(), *doc)) {
                "in"
            } else {
                "missing from"
            },
            if expected.contains(&(t.clone(), *doc)) {
                "in"
            } else {
                "not in"
            },
        )));
    }
    docsizes(conn, &sizes)
}

/// `memory_fts_docsize`: one row per indexed document, its size the document's token count.
/// (Not checked: the averages record, `memory_fts_data` row 1, which only feeds ranking.)
fn docsizes(conn: &Connection, sizes: &BTreeMap<i64, u64>) -> Result<Option<String>> {
    let mut stmt = conn.prepare("SELECT id, sz, origin FROM memory_fts_docsize")?;
    let mut rows = stmt.query([])?;
    let mut seen = 0usize;
    let mut origins = BTreeSet::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        // contentless_delete: each document's insertion counter, positive and distinct.
        let origin: Option<i64> = match r.get::<_, Value>(2)? {
            Value::Integer(o) => Some(o),
            _ => None,
        };
        if !origin.is_some_and(|o| o > 0 && origins.insert(o)) {
            return Ok(Some(format!(
                "memory_fts_docsize: row {id} has an invalid origin (memory seq {})",
                -id
            )));
        }
        let sz: Option<Vec<u8>> = r.get::<_, Value>(1).map(|v| match v {
            Value::Blob(b) => Some(b),
            _ => None,
        })?;
        let want = sizes.get(&id).map(|n| varint(*n));
        if want.is_none() || sz != want {
            return Ok(Some(format!(
                "memory_fts_docsize: row {id} does not match memory_words (memory seq {})",
                -id
            )));
        }
        seen += 1;
    }
    if seen != sizes.len() {
        return Ok(Some(format!(
            "memory_fts_docsize: {} documents of memory_words have no size row",
            sizes.len() - seen
        )));
    }
    Ok(None)
}

/// SQLite's varint encoding (big-endian 7-bit groups), as FTS5 stores column sizes.
fn varint(mut v: u64) -> Vec<u8> {
    let mut tmp = vec![u8::try_from(v & 0x7f).unwrap_or(0)];
    v >>= 7;
    while v > 0 {
        tmp.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    tmp.reverse();
    tmp
}

impl Session<'_> {
    /// Recomputes the words document and labels of this profile's live memory `seq` from its
    /// opened content and compares them with `memory_words`, `memory_labels` (tombstoned
    /// memories must have none).
    pub(crate) fn check_index_of(
        &self,
        seq: i64,
        id: &MemoryId,
        opened: Option<(&[u8], &SealedMeta)>,
        epoch: u32,
    ) -> Result<Option<String>> {
        let conn = self.conn();
        let (words, labels) = match (opened, self.keys_for(epoch)) {
            (Some((content, meta)), Some(keys)) => index_entries(keys, content, meta),
            _ => (String::new(), Vec::new()),
        };
        let stored: Option<Value> = conn
            .prepare_cached("SELECT words FROM memory_words WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?;
        let want = (!words.is_empty()).then_some(Value::Text(words));
        if stored != want {
            return Ok(Some(format!(
                "memory_words: the search words of memory {id} (seq {seq}) do not match its content"
            )));
        }
        let mut stmt =
            conn.prepare_cached("SELECT kind, token FROM memory_labels WHERE seq = ?1")?;
        let mut got: Vec<(i64, Vec<u8>)> = stmt
            .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        got.sort();
        let mut want: Vec<(i64, Vec<u8>)> = labels
            .into_iter()
            .map(|(k, t)| (k as i64, t.to_vec()))
            .collect();
        want.sort();
        if got != want {
            return Ok(Some(format!(
                "memory_labels: the tags or intents of memory {id} (seq {seq}) do not match its metadata"
            )));
        }
        Ok(None)
    }
}
