//! Full verification: rebuild the tree from the leaves, check every stored node, every head's
//! root, key and signature, the key-epoch chain and trust, and report the first discrepancy.
//!
//! Order of reporting: the leaves are streamed in index order and the stream stops at the first
//! leaf, node or record problem, at tree position `p`. Then heads covering at most `p` leaves are
//! checked in sequence order, then the caller's known head; the first failure among them is
//! reported (it lies before `p`), else the stream's problem, else heads beyond the log.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aim_crypto::AgentPublicKey;
use rusqlite::Connection;

use crate::epoch::{KEY_EPOCH_KIND, KeyEpoch, allowed_signers, check_chain, parse_epoch};
use crate::error::Result;
use crate::event::{Event, RESERVED_PREFIX};
use crate::hash::{Hash, empty_root, leaf_hash};
use crate::head::SignedTreeHead;
use crate::log::{AuditLog, parse_head};
use crate::proof::{CompactRange, node_position};

/// What a verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Keys trusted from outside the log (the vault's audit public key, the agent's AIM key).
    /// Any key epoch with one of these keys is trusted.
    pub trusted_keys: Vec<AgentPublicKey>,
    /// Trust the log's first key epoch when `trusted_keys` is empty (trust on first use). This
    /// only shows the log is self-consistent: whoever can rewrite the whole database can forge
    /// it. Off by default.
    pub trust_first_key: bool,
    /// A head obtained elsewhere (a witness, an earlier export) that the log must extend: its
    /// size must be in the log and its root must match. Detects truncation past the latest head.
    pub known_head: Option<SignedTreeHead>,
}

/// Where trust in the head-signing keys came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchor {
    /// A key the caller pinned appears as a key epoch in the log.
    PinnedKey {
        /// Its key id.
        key_id: String,
    },
    /// Trust on first use of the log's first key epoch.
    FirstKeyInLog {
        /// Its key id.
        key_id: String,
    },
    /// Nothing anchors trust: no pinned key is in the log, and trust on first use is off.
    None,
}

/// The first problem verification found. Indices are leaf indices; `head_seq` is a head's
/// sequence number; `(level, index)` names the complete subtree over leaves
/// `[index·2^level, (index+1)·2^level)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discrepancy {
    /// No leaf is stored at this index, though later leaves or a head need it.
    LeafMissing {
        /// The missing index.
        index: u64,
    },
    /// A stored leaf row has an index that cannot be a leaf index (negative).
    LeafIndexInvalid {
        /// The stored value.
        stored: i64,
    },
    /// The stored leaf hash is not `SHA-256(0x00 ‖ stored bytes)`: the leaf was edited.
    LeafHashMismatch {
        /// The leaf.
        index: u64,
    },
    /// The leaf's bytes are not a canonical event.
    EventUndecodable {
        /// The leaf.
        index: u64,
        /// Why decoding failed.
        reason: String,
    },
    /// A key epoch event is malformed or breaks the epoch chain.
    KeyEpochInvalid {
        /// The leaf.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The caller's record check (the vault's hook) rejected the leaf.
    RecordMismatch {
        /// The leaf.
        index: u64,
        /// The event's kind.
        kind: String,
        /// What the hook reported.
        reason: String,
    },
    /// A stored interior node is missing.
    NodeMissing {
        /// Level of the subtree.
        level: u32,
        /// Index of the subtree at that level.
        index: u64,
    },
    /// A stored interior node differs from the one rebuilt from the leaves.
    NodeMismatch {
        /// Level of the subtree.
        level: u32,
        /// Index of the subtree at that level.
        index: u64,
    },
    /// More interior nodes are stored than the leaves produce.
    NodeCountMismatch {
        /// How many the leaves produce.
        expected: u64,
        /// How many are stored.
        found: u64,
    },
    /// The key-epoch index table disagrees with the key epochs in the leaves.
    EpochIndexMismatch {
        /// The epoch number.
        epoch: u64,
    },
    /// A head's sequence number is missing (heads are numbered 1, 2, 3, ...).
    HeadMissing {
        /// The missing sequence number.
        seq: u64,
    },
    /// A stored head row is malformed (bad lengths or an invalid key).
    HeadMalformed {
        /// The head.
        head_seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A head's tree size or time is smaller than its predecessor's.
    HeadOutOfOrder {
        /// The head.
        head_seq: u64,
    },
    /// A head covers more leaves than the log holds: leaves from `log_size` on were removed.
    HeadBeyondLog {
        /// The head.
        head_seq: u64,
        /// Its tree size.
        tree_size: u64,
        /// Leaves in the log.
        log_size: u64,
    },
    /// A head's root is not the root of the first `tree_size` leaves: leaves or the head were
    /// changed.
    HeadRootMismatch {
        /// The head.
        head_seq: u64,
        /// Its tree size.
        tree_size: u64,
    },
    /// A head is signed by a key that is not a key epoch within the tree it covers.
    HeadKeyUnknown {
        /// The head.
        head_seq: u64,
        /// The key id it names.
        key_id: String,
    },
    /// A head is signed by a key that a later epoch had already replaced.
    HeadKeyRetired {
        /// The head.
        head_seq: u64,
        /// The key id it names.
        key_id: String,
    },
    /// A head's signature does not verify.
    HeadSignatureInvalid {
        /// The head.
        head_seq: u64,
    },
    /// A head is validly signed, but by a key nothing trusted vouches for.
    HeadKeyUntrusted {
        /// The head.
        head_seq: u64,
        /// The key id.
        key_id: String,
    },
    /// The known head's size is beyond the log: the log was truncated.
    LogTruncated {
        /// The known head's size.
        known_size: u64,
        /// Leaves in the log.
        log_size: u64,
    },
    /// The log's root at the known head's size differs from the known head's root: a fork.
    KnownHeadMismatch {
        /// The known head's size.
        tree_size: u64,
    },
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Discrepancy::*;
        match self {
            LeafMissing { index } => write!(f, "event {index} is missing"),
            LeafIndexInvalid { stored } => write!(f, "a stored event has invalid index {stored}"),
            LeafHashMismatch { index } => {
                write!(f, "event {index} was altered (stored leaf hash differs)")
            }
            EventUndecodable { index, reason } => {
                write!(f, "event {index} cannot be decoded: {reason}")
            }
            KeyEpochInvalid { index, reason } => {
                write!(f, "key epoch event {index} is invalid: {reason}")
            }
            RecordMismatch {
                index,
                kind,
                reason,
            } => write!(
                f,
                "event {index} ({kind}) does not match its record: {reason}"
            ),
            NodeMissing { level, index } => write!(
                f,
                "tree node ({level}, {index}) over events {}..={} is missing",
                index << level,
                ((index + 1) << level) - 1
            ),
            NodeMismatch { level, index } => write!(
                f,
                "tree node ({level}, {index}) over events {}..={} differs from the events",
                index << level,
                ((index + 1) << level) - 1
            ),
            NodeCountMismatch { expected, found } => write!(
                f,
                "{found} tree nodes are stored where the events produce {expected}"
            ),
            EpochIndexMismatch { epoch } => {
                write!(f, "key epoch index entry {epoch} differs from the log")
            }
            HeadMissing { seq } => write!(f, "signed tree head {seq} is missing"),
            HeadMalformed { head_seq, reason } => {
                write!(f, "signed tree head {head_seq} is malformed: {reason}")
            }
            HeadOutOfOrder { head_seq } => write!(
                f,
                "signed tree head {head_seq} has a smaller size or time than its predecessor"
            ),
            HeadBeyondLog {
                head_seq,
                tree_size,
                log_size,
            } => write!(
                f,
                "signed tree head {head_seq} covers {tree_size} events but the log has \
                 {log_size}: events {log_size}..{tree_size} were removed"
            ),
            HeadRootMismatch {
                head_seq,
                tree_size,
            } => write!(
                f,
                "signed tree head {head_seq}'s root differs from the root of the first \
                 {tree_size} events"
            ),
            HeadKeyUnknown { head_seq, key_id } => write!(
                f,
                "signed tree head {head_seq} is signed by key {key_id}, not announced in the \
                 tree it covers"
            ),
            HeadKeyRetired { head_seq, key_id } => write!(
                f,
                "signed tree head {head_seq} is signed by retired key {key_id}"
            ),
            HeadSignatureInvalid { head_seq } => {
                write!(f, "signed tree head {head_seq} has an invalid signature")
            }
            HeadKeyUntrusted { head_seq, key_id } => write!(
                f,
                "signed tree head {head_seq} is signed by key {key_id}, which nothing trusted \
                 vouches for"
            ),
            LogTruncated {
                known_size,
                log_size,
            } => write!(
                f,
                "the log has {log_size} events but a known head covers {known_size}: truncated"
            ),
            KnownHeadMismatch { tree_size } => write!(
                f,
                "the log's root at size {tree_size} differs from the known head's: forked"
            ),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Leaves found in the log.
    pub tree_size: u64,
    /// Leaves checked before the first discrepancy (all of them if there is none).
    pub leaves_verified: u64,
    /// Heads that passed every check, in sequence order, before the first failing one.
    pub heads_verified: u64,
    /// Sequence number and size of the last head that passed.
    pub latest_verified_head: Option<(u64, u64)>,
    /// Key epochs found.
    pub key_epochs: u64,
    /// Where trust came from.
    pub trust_anchor: TrustAnchor,
    /// The first problem, if any.
    pub discrepancy: Option<Discrepancy>,
}

impl VerifyReport {
    /// True if nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.discrepancy.is_none()
    }

    /// Leaves after the latest verified head: present but not yet covered by a signature, so
    /// their removal is detectable only against a witness or known head.
    pub fn unsigned_tail(&self) -> u64 {
        self.tree_size
            .saturating_sub(self.latest_verified_head.map_or(0, |(_, s)| s))
    }
}

/// The vault's per-leaf check: `Err(reason)` if the event does not match its record.
pub type RecordHook<'a> = &'a mut dyn FnMut(u64, &Event) -> std::result::Result<(), String>;

/// Checks one interior node the rebuild completes against the source's stored copy.
pub(crate) type NodeCheck<'a> = &'a mut dyn FnMut(u32, u64, &Hash) -> Result<Option<Discrepancy>>;

/// A head as read, or why its row is malformed.
pub(crate) type HeadSlot = std::result::Result<SignedTreeHead, (u64, String)>;

/// The streaming verifier shared by the database and export paths.
pub(crate) struct Engine<'o> {
    opts: &'o VerifyOptions,
    heads: Vec<HeadSlot>,
    roots: BTreeMap<u64, Option<Hash>>,
    range: CompactRange,
    pub(crate) epochs: Vec<KeyEpoch>,
}

impl<'o> Engine<'o> {
    pub(crate) fn new(opts: &'o VerifyOptions, heads: Vec<HeadSlot>) -> Self {
        let mut roots = BTreeMap::new();
        for h in heads.iter().flatten() {
            roots.insert(h.tree_size, None);
        }
        if let Some(k) = &opts.known_head {
            roots.insert(k.tree_size, None);
        }
        if let Some(r) = roots.get_mut(&0) {
            *r = Some(empty_root());
        }
        Self {
            opts,
            heads,
            roots,
            range: CompactRange::new(),
            epochs: Vec::new(),
        }
    }

    /// Leaves pushed so far.
    pub(crate) fn size(&self) -> u64 {
        self.range.size()
    }

    /// Checks and pushes leaf `index` (which must be the next one). `stored_hash` is the stored
    /// leaf hash, if the source keeps one; `on_node` checks each interior node it completes.
    pub(crate) fn leaf(
        &mut self,
        index: u64,
        data: &[u8],
        stored_hash: Option<&[u8]>,
        hook: &mut Option<RecordHook<'_>>,
        on_node: NodeCheck<'_>,
    ) -> Result<Option<Discrepancy>> {
        if index != self.range.size() {
            return Ok(Some(Discrepancy::LeafMissing {
                index: self.range.size(),
            }));
        }
        let lh = leaf_hash(data);
        if let Some(stored) = stored_hash
            && stored != lh.as_slice()
        {
            return Ok(Some(Discrepancy::LeafHashMismatch { index }));
        }
        let event = match Event::decode(data) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Some(Discrepancy::EventUndecodable {
                    index,
                    reason: e.to_string(),
                }));
            }
        };
        if event.kind.starts_with(RESERVED_PREFIX) {
            if event.kind != KEY_EPOCH_KIND {
                return Ok(Some(Discrepancy::EventUndecodable {
                    index,
                    reason: format!("unknown reserved kind {:?}", event.kind),
                }));
            }
            let parsed = parse_epoch(&event, index).and_then(|ep| {
                check_chain(&self.epochs, &ep, &self.range.root())?;
                Ok(ep)
            });
            match parsed {
                Ok(ep) => self.epochs.push(ep),
                Err(reason) => {
                    return Ok(Some(Discrepancy::KeyEpochInvalid {
                        index,
                        reason: reason.into(),
                    }));
                }
            }
        }
        if let Some(h) = hook.as_mut()
            && let Err(reason) = h(index, &event)
        {
            return Ok(Some(Discrepancy::RecordMismatch {
                index,
                kind: event.kind,
                reason,
            }));
        }
        let mut found = None;
        self.range.push(lh, |level, idx, hash| {
            if found.is_none() {
                found = on_node(level, idx, hash)?;
            }
            Ok::<_, crate::AuditError>(())
        })?;
        if let Some(slot) = self.roots.get_mut(&self.range.size()) {
            *slot = Some(self.range.root());
        }
        Ok(found)
    }

    /// Checks the heads and the known head against what was streamed and builds the report.
    /// `log_size` is the number of leaves the source holds; `stream` is the stream's first
    /// problem, if it stopped early; `trailing` is a problem found after a complete stream
    /// (stored extras), reported only if nothing else is wrong.
    pub(crate) fn finish(
        self,
        log_size: u64,
        stream: Option<Discrepancy>,
        trailing: Option<Discrepancy>,
    ) -> VerifyReport {
        let p = self.range.size();
        let stream_clean = stream.is_none();
        let (trust_anchor, mut trusted) = self.initial_trust();

        // Phase A: per-head checks that do not depend on trust.
        let mut structural: Vec<(u64, std::result::Result<&SignedTreeHead, Discrepancy>)> =
            Vec::new();
        let mut prev: Option<&SignedTreeHead> = None;
        let mut max_covered = 0usize;
        for (expected_seq, slot) in (1u64..).zip(self.heads.iter()) {
            let head = match slot {
                Ok(h) => h,
                Err((seq, reason)) => {
                    structural.push((
                        *seq,
                        Err(Discrepancy::HeadMalformed {
                            head_seq: *seq,
                            reason: reason.clone(),
                        }),
                    ));
                    break;
                }
            };
            if head.seq != expected_seq {
                structural.push((
                    head.seq,
                    Err(Discrepancy::HeadMissing { seq: expected_seq }),
                ));
                break;
            }
            if head.tree_size > p {
                if stream_clean {
                    structural.push((
                        head.seq,
                        Err(Discrepancy::HeadBeyondLog {
                            head_seq: head.seq,
                            tree_size: head.tree_size,
                            log_size,
                        }),
                    ));
                }
                break;
            }
            let verdict = self.check_head(head, prev, &mut max_covered);
            prev = Some(head);
            structural.push((head.seq, verdict));
        }

        // Phase B: trust closure. A key epoch becomes trusted when it lies inside a tree whose
        // head is structurally valid and signed by a trusted key.
        loop {
            let mut changed = false;
            for (_, verdict) in &structural {
                if let Ok(h) = verdict
                    && trusted.contains(&h.key_id)
                {
                    for ep in self.epochs.iter().filter(|e| e.leaf_index < h.tree_size) {
                        changed |= trusted.insert(ep.key_id.clone());
                    }
                }
            }
            if !changed {
                break;
            }
        }

        // Phase C: the first failing head.
        let mut heads_verified = 0u64;
        let mut latest_verified_head = None;
        let mut discrepancy = None;
        for (_, verdict) in structural {
            match verdict {
                Ok(h) if trusted.contains(&h.key_id) => {
                    heads_verified += 1;
                    latest_verified_head = Some((h.seq, h.tree_size));
                }
                Ok(h) => {
                    discrepancy = Some(Discrepancy::HeadKeyUntrusted {
                        head_seq: h.seq,
                        key_id: h.key_id.clone(),
                    });
                    break;
                }
                Err(d) => {
                    discrepancy = Some(d);
                    break;
                }
            }
        }
        if discrepancy.is_none()
            && let Some(known) = &self.opts.known_head
        {
            if known.tree_size > p {
                if stream_clean {
                    discrepancy = Some(Discrepancy::LogTruncated {
                        known_size: known.tree_size,
                        log_size,
                    });
                }
            } else if self.roots.get(&known.tree_size).copied().flatten() != Some(known.root) {
                discrepancy = Some(Discrepancy::KnownHeadMismatch {
                    tree_size: known.tree_size,
                });
            }
        }
        if discrepancy.is_none()
            && stream_clean
            && let Some(ep) = self.epochs[max_covered..].iter().find(|e| e.uncertified())
        {
            discrepancy = Some(uncertified(ep));
        }
        let discrepancy = discrepancy.or(stream).or(trailing);
        VerifyReport {
            tree_size: log_size,
            leaves_verified: p,
            heads_verified,
            latest_verified_head,
            key_epochs: self.epochs.len() as u64,
            trust_anchor,
            discrepancy,
        }
    }

    fn initial_trust(&self) -> (TrustAnchor, BTreeSet<String>) {
        let mut trusted = BTreeSet::new();
        let mut anchor = TrustAnchor::None;
        for ep in &self.epochs {
            if self.opts.trusted_keys.contains(&ep.public_key) {
                trusted.insert(ep.key_id.clone());
                if anchor == TrustAnchor::None {
                    anchor = TrustAnchor::PinnedKey {
                        key_id: ep.key_id.clone(),
                    };
                }
            }
        }
        if self.opts.trusted_keys.is_empty()
            && self.opts.trust_first_key
            && let Some(first) = self.epochs.first()
        {
            trusted.insert(first.key_id.clone());
            anchor = TrustAnchor::FirstKeyInLog {
                key_id: first.key_id.clone(),
            };
        }
        (anchor, trusted)
    }

    fn check_head<'h>(
        &self,
        head: &'h SignedTreeHead,
        prev: Option<&SignedTreeHead>,
        max_covered: &mut usize,
    ) -> std::result::Result<&'h SignedTreeHead, Discrepancy> {
        let seq = head.seq;
        if let Some(p) = prev
            && (head.tree_size < p.tree_size || head.time_ms < p.time_ms)
        {
            return Err(Discrepancy::HeadOutOfOrder { head_seq: seq });
        }
        if self.roots.get(&head.tree_size).copied().flatten() != Some(head.root) {
            return Err(Discrepancy::HeadRootMismatch {
                head_seq: seq,
                tree_size: head.tree_size,
            });
        }
        let covered = self
            .epochs
            .iter()
            .take_while(|e| e.leaf_index < head.tree_size)
            .count();
        let first_to_cover = covered > *max_covered;
        let newly = &self.epochs[(*max_covered).min(covered)..covered];
        let legacy = newly.iter().rev().find(|e| e.uncertified());
        *max_covered = (*max_covered).max(covered);
        let (current, handover) = allowed_signers(&self.epochs, head.tree_size, first_to_cover);
        if let Some(ep) = legacy {
            // A legacy (uncertified) epoch is valid only through the hand-over head of the key
            // before it, covering no later epoch.
            let by_previous = newly.len() == 1
                && handover
                    .is_some_and(|h| h.key_id == head.key_id && h.public_key == head.public_key);
            if !by_previous {
                return Err(uncertified(ep));
            }
        }
        let signer = [current, handover]
            .into_iter()
            .flatten()
            .find(|e| e.key_id == head.key_id);
        let Some(signer) = signer else {
            let retired = self.epochs[..covered]
                .iter()
                .any(|e| e.key_id == head.key_id);
            return Err(if retired {
                Discrepancy::HeadKeyRetired {
                    head_seq: seq,
                    key_id: head.key_id.clone(),
                }
            } else {
                Discrepancy::HeadKeyUnknown {
                    head_seq: seq,
                    key_id: head.key_id.clone(),
                }
            });
        };
        if signer.public_key != head.public_key {
            return Err(Discrepancy::HeadKeyUnknown {
                head_seq: seq,
                key_id: head.key_id.clone(),
            });
        }
        if signer
            .public_key
            .verify(&head.message(), &head.signature)
            .is_err()
        {
            return Err(Discrepancy::HeadSignatureInvalid { head_seq: seq });
        }
        Ok(head)
    }
}

fn uncertified(ep: &KeyEpoch) -> Discrepancy {
    Discrepancy::KeyEpochInvalid {
        index: ep.leaf_index,
        reason: format!(
            "key epoch {} (key {}) is not certified by the previous key and no hand-over head \
             of the previous key covers it: a signing key was inserted into the file",
            ep.epoch, ep.key_id
        ),
    }
}

impl AuditLog {
    /// Verifies the whole log (see [`AuditLog::verify_with`]) without a record hook.
    pub fn verify(conn: &Connection, opts: &VerifyOptions) -> Result<VerifyReport> {
        verify_db(conn, opts, None)
    }

    /// Verifies the whole log: streams every leaf in order, checks its stored hash, decodes it,
    /// checks key epochs, runs `hook` (the vault's check of the event against its record; it is
    /// called for every event, `audit.*` kinds included), rebuilds the tree and compares every
    /// stored node, then checks every head (root at its size, key epoch, signature, trust) and
    /// `opts.known_head`. Memory use is O(log n + heads + epochs). Returns `Err` only when the
    /// database cannot be read; findings are in the report.
    pub fn verify_with(
        conn: &Connection,
        opts: &VerifyOptions,
        hook: RecordHook<'_>,
    ) -> Result<VerifyReport> {
        verify_db(conn, opts, Some(hook))
    }
}

fn verify_db(
    conn: &Connection,
    opts: &VerifyOptions,
    mut hook: Option<RecordHook<'_>>,
) -> Result<VerifyReport> {
    let heads: Vec<HeadSlot> = AuditLog::raw_heads(conn)?
        .into_iter()
        .map(|r| {
            parse_head(r).map_err(|(seq, why)| (u64::try_from(seq).unwrap_or(0), why.to_owned()))
        })
        .collect();
    let log_size = AuditLog::tree_size(conn)?;
    let mut engine = Engine::new(opts, heads);

    let mut leaf_stmt =
        conn.prepare("SELECT idx, leaf_hash, data FROM audit_leaves ORDER BY idx")?;
    let mut node_stmt = conn.prepare("SELECT pos, hash FROM audit_nodes ORDER BY pos")?;
    let mut leaf_rows = leaf_stmt.query([])?;
    let mut node_rows = node_stmt.query([])?;
    let mut next_pos = 0u64;
    let mut stream = None;
    let mut trailing = None;

    while let Some(row) = leaf_rows.next()? {
        let raw_idx = row.get::<_, i64>(0)?;
        let Ok(idx) = u64::try_from(raw_idx) else {
            stream = Some(Discrepancy::LeafIndexInvalid { stored: raw_idx });
            break;
        };
        let stored = row.get_ref(1)?.as_blob().ok();
        let data = row.get_ref(2)?.as_blob().unwrap_or(&[]);
        let mut on_node = |level: u32, index: u64, hash: &Hash| -> Result<Option<Discrepancy>> {
            let expected = node_position(level, index).unwrap_or(u64::MAX);
            let Some(nrow) = node_rows.next()? else {
                return Ok(Some(Discrepancy::NodeMissing { level, index }));
            };
            let pos = nrow.get::<_, i64>(0)?;
            if u64::try_from(pos).ok() != Some(expected) {
                return Ok(Some(Discrepancy::NodeMissing { level, index }));
            }
            next_pos = expected + 1;
            let ok = nrow.get_ref(1)?.as_blob().ok() == Some(hash.as_slice());
            Ok((!ok).then_some(Discrepancy::NodeMismatch { level, index }))
        };
        let found = engine.leaf(
            idx,
            data,
            Some(stored.unwrap_or(&[])),
            &mut hook,
            &mut on_node,
        )?;
        if found.is_some() {
            stream = found;
            break;
        }
    }
    if stream.is_none() {
        // Extra nodes past the last expected one.
        let mut extra = 0u64;
        while node_rows.next()?.is_some() {
            extra += 1;
        }
        if extra > 0 {
            trailing = Some(Discrepancy::NodeCountMismatch {
                expected: next_pos,
                found: next_pos + extra,
            });
        }
    }
    if stream.is_none() && trailing.is_none() {
        let indexed = AuditLog::key_epochs(conn).ok();
        let matches = indexed.as_ref().map(|v| {
            v.iter()
                .zip(engine.epochs.iter())
                .position(|(a, b)| {
                    a.epoch != b.epoch
                        || a.leaf_index != b.leaf_index
                        || a.key_id != b.key_id
                        || a.public_key != b.public_key
                })
                .map(|i| i as u64)
                .or_else(|| {
                    (v.len() != engine.epochs.len())
                        .then_some(v.len().min(engine.epochs.len()) as u64)
                })
        });
        match matches {
            None => trailing = Some(Discrepancy::EpochIndexMismatch { epoch: 0 }),
            Some(Some(epoch)) => trailing = Some(Discrepancy::EpochIndexMismatch { epoch }),
            Some(None) => {}
        }
    }
    drop(leaf_rows);
    drop(node_rows);
    Ok(engine.finish(log_size, stream, trailing))
}
