//! Search and listing. Results carry ids, classification, times and scores, never content:
//! content only comes out of a gated [`Session::recall`].
//!
//! A search answers guesses about content ("does any memory contain `zebra 7781`?"), so it is
//! gated like a recall: by default it covers levels 0–[`UNGATED_SEARCH_MAX`] only. A query
//! whose classification range reaches level 3 or higher passes those levels' gates first
//! (justification, boundary daemon, human approval, presence: every requirement of any level
//! in the range, asked once per search with purpose `search`), and is denied and audited
//! (`memory.search.denied`) otherwise. Per-memory cooldowns do not apply to searches.
//! Listing by tag or intent answers guesses about labels in the same way, so those filters
//! only match memories up to level [`UNGATED_SEARCH_MAX`].

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use crate::audit::{self, Event};
use crate::db;
use crate::gates::{BoundaryRule, DenyReason, GateRequest, LevelGates};
use crate::model::{Classification, Creator, MemoryId};
use crate::search::{self, LabelKind};
use crate::session::{ROW_COLUMNS, RawRow, Session};
use crate::{Result, VaultError};

/// Largest number of results a search or listing returns.
pub const MAX_RESULTS: usize = 10_000;

/// How many of the most recent matching memories a search ranks.
pub const CANDIDATES: usize = 1000;

/// The highest level searched (and matched by tag or intent listings) without gates.
pub const UNGATED_SEARCH_MAX: u8 = 2;

/// A full-text search over a profile's memories. Ranking (bm25) considers the
/// [`CANDIDATES`] most recent matches, so latency stays bounded for common words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words to look for (all of them, unless `any_word`).
    pub text: String,
    /// Match memories containing any word instead of all.
    pub any_word: bool,
    /// Only these classification levels (inclusive range; default 0–2). Levels above
    /// [`UNGATED_SEARCH_MAX`] are searched only after their gates allow it.
    pub classifications: (u8, u8),
    /// Why (for the gates of levels 3 and up; recorded as a keyed MAC).
    pub justification: String,
    /// Who asks (for the gates of levels 3 and up).
    pub requester: String,
    /// Only memories carrying every one of these tags.
    pub tags: Vec<String>,
    /// Only memories linked to this intent.
    pub intent: Option<String>,
    /// Only memories created at or after this time (Unix ms).
    pub created_after_ms: Option<i64>,
    /// Only memories created before this time (Unix ms).
    pub created_before_ms: Option<i64>,
    /// Most results (default 20).
    pub limit: usize,
}

impl SearchQuery {
    /// A query for `text` with no filters and at most 20 results.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            any_word: false,
            classifications: (0, UNGATED_SEARCH_MAX),
            justification: String::new(),
            requester: "agent".into(),
            tags: Vec::new(),
            intent: None,
            created_after_ms: None,
            created_before_ms: None,
            limit: 20,
        }
    }

    /// Restricts to classification levels `min..=max` (levels 3 and up are gated).
    pub fn classifications(mut self, min: u8, max: u8) -> Self {
        self.classifications = (min, max);
        self
    }

    /// Sets the justification the gates of levels 3 and up see.
    pub fn justification(mut self, j: impl Into<String>) -> Self {
        self.justification = j.into();
        self
    }

    /// Sets the requester the gates of levels 3 and up see.
    pub fn requester(mut self, r: impl Into<String>) -> Self {
        self.requester = r.into();
        self
    }

    /// Requires a tag.
    pub fn tag(mut self, t: impl Into<String>) -> Self {
        self.tags.push(t.into());
        self
    }

    /// Requires an intent link.
    pub fn intent(mut self, i: impl Into<String>) -> Self {
        self.intent = Some(i.into());
        self
    }

    /// Sets the result limit.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Matches any word instead of all.
    pub fn any_word(mut self) -> Self {
        self.any_word = true;
        self
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The memory.
    pub memory_id: MemoryId,
    /// Its classification.
    pub classification: Classification,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// bm25 score (lower is better, as SQLite reports it).
    pub score: f64,
}

/// Filters for [`Session::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// Classification range (inclusive).
    pub classifications: (u8, u8),
    /// Only memories with this tag.
    pub tag: Option<String>,
    /// Only memories linked to this intent.
    pub intent: Option<String>,
    /// Created at or after (Unix ms).
    pub created_after_ms: Option<i64>,
    /// Created before (Unix ms).
    pub created_before_ms: Option<i64>,
    /// Include tombstoned memories.
    pub include_tombstoned: bool,
    /// Most results.
    pub limit: usize,
}

impl Default for ListFilter {
    fn default() -> Self {
        Self {
            classifications: (0, 5),
            tag: None,
            intent: None,
            created_after_ms: None,
            created_before_ms: None,
            include_tombstoned: false,
            limit: 100,
        }
    }
}

/// What a listing shows about a memory (no content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryInfo {
    /// The memory.
    pub memory_id: MemoryId,
    /// Its classification.
    pub classification: Classification,
    /// Creation time.
    pub created_at_ms: i64,
    /// Creator.
    pub created_by: Creator,
    /// Cooldown from its policy (ms).
    pub cooldown_ms: u64,
    /// Expiry from its policy.
    pub expires_at_ms: Option<i64>,
    /// When it was tombstoned.
    pub tombstoned_at_ms: Option<i64>,
    /// Key epoch it is sealed under.
    pub key_epoch: u32,
}

impl Session<'_> {
    fn label_filter(&self, sql: &mut String, args: &mut Vec<Value>, kind: LabelKind, label: &str) {
        let tokens: Vec<[u8; 16]> = self
            .all_keys()
            .map(|k| search::label_token(&k.search, kind, label))
            .collect();
        sql.push_str(" AND EXISTS (SELECT 1 FROM memory_labels l WHERE l.seq = m.seq AND l.kind = ? AND l.token IN (");
        args.push(Value::Integer(kind as i64));
        for (i, t) in tokens.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(Value::Blob(t.to_vec()));
        }
        sql.push_str("))");
    }

    fn common_filters(
        &self,
        sql: &mut String,
        args: &mut Vec<Value>,
        classes: (u8, u8),
        after: Option<i64>,
        before: Option<i64>,
    ) {
        sql.push_str(" AND m.profile_id = ? AND m.classification BETWEEN ? AND ?");
        args.push(Value::Text(self.profile.clone()));
        args.push(Value::Integer(i64::from(classes.0)));
        args.push(Value::Integer(i64::from(classes.1)));
        if let Some(a) = after {
            sql.push_str(" AND m.created_at_ms >= ?");
            args.push(Value::Integer(a));
        }
        if let Some(b) = before {
            sql.push_str(" AND m.created_at_ms < ?");
            args.push(Value::Integer(b));
        }
    }

    /// Ranked full-text search over keyed tokens. Denied (and audited) in lockdown. Hits
    /// whose record fails authentication are left out.
    pub fn search(&mut self, q: &SearchQuery) -> Result<Vec<SearchHit>> {
        let now = self.vault.now();
        let query_mac = self.text_mac(b"search", &q.text);
        let lock = self.lockdown_check()?;
        if lock.active || lock.tampered.is_some() {
            let reason = match &lock.tampered {
                Some(why) => DenyReason::Integrity(why.clone()),
                None => DenyReason::Lockdown,
            };
            return Err(self.deny_search(reason, q));
        }
        let approver = match self.search_gates(q) {
            Ok(a) => a,
            Err(reason) => return Err(self.deny_search(reason, q)),
        };
        let exprs: Vec<String> = self
            .all_keys()
            .filter_map(|k| search::match_expression(&k.search, &q.text, q.any_word))
            .collect();
        if exprs.is_empty() {
            return Err(VaultError::InvalidInput(
                "the search query has no words".into(),
            ));
        }
        let expr = exprs
            .iter()
            .map(|e| format!("({e})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        // The most recent CANDIDATES matches (FTS5 walks its index in rowid order and stops),
        // then ranked by bm25: bounded latency however common the words are.
        let mut sql = String::from(
            "SELECT seq, score FROM (SELECT m.seq AS seq, bm25(memory_fts) AS score
             FROM memory_fts JOIN memories m ON m.seq = -memory_fts.rowid
             WHERE memory_fts MATCH ? AND m.tombstoned_at_ms IS NULL",
        );
        let mut args = vec![Value::Text(expr)];
        self.common_filters(
            &mut sql,
            &mut args,
            q.classifications,
            q.created_after_ms,
            q.created_before_ms,
        );
        for t in &q.tags {
            self.label_filter(&mut sql, &mut args, LabelKind::Tag, t);
        }
        if let Some(i) = &q.intent {
            self.label_filter(&mut sql, &mut args, LabelKind::Intent, i);
        }
        sql.push_str(" ORDER BY memory_fts.rowid LIMIT ?) ORDER BY score LIMIT ?");
        args.push(Value::Integer(
            i64::try_from(CANDIDATES.max(q.limit)).unwrap_or(1000),
        ));
        args.push(Value::Integer(
            i64::try_from(q.limit.min(MAX_RESULTS)).unwrap_or(20),
        ));
        let ranked: Vec<(i64, f64)> = self
            .conn()
            .prepare_cached(&sql)?
            .query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let row_sql = format!("SELECT {ROW_COLUMNS} FROM memories WHERE seq = ?1");
        let mut hits = Vec::with_capacity(ranked.len());
        let mut rejected = 0i64;
        for (seq, score) in ranked {
            let raw = self
                .conn()
                .prepare_cached(&row_sql)?
                .query_row([seq], RawRow::from_row)?;
            match self.verify_row(raw) {
                Ok(row) => hits.push(SearchHit {
                    memory_id: row.header.memory_id,
                    classification: row.header.classification,
                    created_at_ms: row.header.created_at_ms,
                    score,
                }),
                Err(_) => rejected += 1,
            }
        }
        let tx = db::write_tx(self.conn())?;
        let mut ev = Event::new("memory.search", now)
            .with("profile", self.profile.as_str())
            .with("query_mac", query_mac)
            .with("results", i64::try_from(hits.len()).unwrap_or(i64::MAX));
        if rejected > 0 {
            ev = ev.with("rejected", rejected);
        }
        if q.classifications.1 > UNGATED_SEARCH_MAX {
            ev = ev
                .with("classification_max", i64::from(q.classifications.1))
                .with(
                    "justification_mac",
                    self.text_mac(b"justification", &q.justification),
                );
        }
        if let Some(a) = approver {
            ev = ev.with("approver", a.chars().take(200).collect::<String>());
        }
        audit::append(&tx, &ev)?;
        self.save_lock_state(&tx, &lock)?;
        self.commit_op(tx, 1)?;
        Ok(hits)
    }

    /// Runs the gates of the levels above [`UNGATED_SEARCH_MAX`] that `q` covers (every
    /// requirement of any of them, once). Returns the approver, if one was asked.
    fn search_gates(&self, q: &SearchQuery) -> std::result::Result<Option<String>, DenyReason> {
        let lo = q.classifications.0.max(UNGATED_SEARCH_MAX + 1);
        let hi = q.classifications.1.min(Classification::Black.level());
        if lo > hi {
            return Ok(None);
        }
        let cfg = self
            .gate_config()
            .map_err(|e| DenyReason::Integrity(e.to_string()))?;
        let mut all = LevelGates {
            justification: false,
            boundary: BoundaryRule::Never,
            approval: false,
            presence: false,
            min_cooldown_ms: 0,
        };
        for level in &cfg.levels[usize::from(lo)..=usize::from(hi)] {
            all.justification |= level.justification;
            all.approval |= level.approval;
            all.presence |= level.presence;
            all.boundary = stricter(all.boundary, level.boundary);
        }
        if all.justification && q.justification.trim().is_empty() {
            return Err(DenyReason::JustificationRequired);
        }
        let req = GateRequest {
            memory_id: MemoryId::from_bytes([0; 16]),
            classification: Classification::try_from(hi)
                .map_err(|e| DenyReason::Integrity(e.to_string()))?,
            profile: self.profile.clone(),
            requester: q.requester.clone(),
            justification: q.justification.clone(),
            purpose: "search".into(),
        };
        self.check_boundary(&cfg, all.boundary, &req)?;
        self.check_human(&all, &req)
    }

    /// Audits a denied search and returns the error for the caller.
    fn deny_search(&mut self, reason: DenyReason, q: &SearchQuery) -> VaultError {
        let r = (|| -> Result<()> {
            let tx = db::write_tx(self.conn())?;
            let mut ev = Event::new("memory.search.denied", self.vault.now())
                .with("profile", self.profile.as_str())
                .with("reason", reason.code())
                .with("classification_max", i64::from(q.classifications.1));
            let detail = reason.detail();
            if !detail.is_empty() {
                ev = ev.with("detail", detail);
            }
            audit::append(&tx, &ev)?;
            let lock = self.lockdown_check()?;
            self.save_lock_state(&tx, &lock)?;
            self.commit_op(tx, 1)
        })();
        match r {
            Ok(()) => VaultError::Denied(reason),
            Err(e) => e,
        }
    }

    /// Lists memories (newest first) with their authenticated attributes; rows that fail
    /// authentication are left out. Not audited (reveals no content). Tag and intent filters
    /// only match memories up to level [`UNGATED_SEARCH_MAX`] (a label filter answers guesses
    /// about labels; search with gates for higher levels).
    pub fn list(&self, f: &ListFilter) -> Result<Vec<MemoryInfo>> {
        let mut sql = format!("SELECT {} FROM memories m WHERE 1=1", prefixed_columns());
        let mut args = Vec::new();
        let mut classes = f.classifications;
        if f.tag.is_some() || f.intent.is_some() {
            classes.1 = classes.1.min(UNGATED_SEARCH_MAX);
        }
        self.common_filters(
            &mut sql,
            &mut args,
            classes,
            f.created_after_ms,
            f.created_before_ms,
        );
        if !f.include_tombstoned {
            sql.push_str(" AND m.tombstoned_at_ms IS NULL");
        }
        if let Some(t) = &f.tag {
            self.label_filter(&mut sql, &mut args, LabelKind::Tag, t);
        }
        if let Some(i) = &f.intent {
            self.label_filter(&mut sql, &mut args, LabelKind::Intent, i);
        }
        sql.push_str(" ORDER BY m.created_at_ms DESC, m.seq DESC LIMIT ?");
        args.push(Value::Integer(
            i64::try_from(f.limit.min(MAX_RESULTS)).unwrap_or(100),
        ));
        let raws: Vec<RawRow> = self
            .conn()
            .prepare_cached(&sql)?
            .query_map(params_from_iter(args), RawRow::from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(raws
            .into_iter()
            .filter_map(|raw| self.verify_row(raw).ok())
            .map(info)
            .collect())
    }

    /// One memory's authenticated attributes (no content); `None` when it does not exist.
    /// Not audited (reveals no content).
    pub fn memory_info(&self, id: MemoryId) -> Result<Option<MemoryInfo>> {
        let Some(raw) = self.load_raw(&id)? else {
            return Ok(None);
        };
        let row = self.verify_row(raw).map_err(VaultError::Integrity)?;
        Ok(Some(info(row)))
    }

    /// Memories linked to `intent`, newest first.
    pub fn memories_for_intent(&self, intent: &str) -> Result<Vec<MemoryInfo>> {
        self.list(&ListFilter {
            intent: Some(intent.to_owned()),
            limit: MAX_RESULTS,
            ..ListFilter::default()
        })
    }
}

fn info(row: crate::session::VerifiedRow) -> MemoryInfo {
    MemoryInfo {
        memory_id: row.header.memory_id,
        classification: row.header.classification,
        created_at_ms: row.header.created_at_ms,
        created_by: row.header.created_by,
        cooldown_ms: row.header.policy.cooldown_ms,
        expires_at_ms: row.header.policy.expires_at_ms,
        tombstoned_at_ms: row.raw.tombstoned_at_ms,
        key_epoch: row.header.key_epoch,
    }
}

/// The stricter of two boundary rules.
fn stricter(a: BoundaryRule, b: BoundaryRule) -> BoundaryRule {
    let rank = |r| match r {
        BoundaryRule::Never => 0,
        BoundaryRule::IfConfigured => 1,
        BoundaryRule::Required => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn prefixed_columns() -> String {
    ROW_COLUMNS
        .split(", ")
        .map(|c| format!("m.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
