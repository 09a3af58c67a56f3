//! [`Session`]: an unlocked profile. Holds the profile's keys in zeroizing memory and runs
//! every operation that needs them: store, recall (gated), tombstone, key slots, gate
//! configuration, lockdown exit and head signing.

use aim_crypto::{AgentKeypair, Argon2Params, SecretBytes, SecretKey};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use vault_audit::{AuditLog, HeadSigner};

use crate::audit::{self, Event};
use crate::boundary::UnixSocketBoundary;
use crate::codec::Writer;
use crate::db;
use crate::gates::{BoundaryRule, DenyReason, GateConfig, GateRequest, LevelGates};
use crate::keys::{Enrollment, KeySet, Slot};
use crate::model::{AccessPolicy, Classification, Creator, MemoryId};
use crate::record::{self, Part, RECORD_FORMAT, RowHeader, RowState, SealedMeta};
use crate::search::{self, LabelKind};
use crate::vault::{HEAD_EVERY_MS, HEAD_EVERY_OPS, Vault, epoch_u32, insert_slot};
use crate::versions::{self, RowKey};
use crate::{Result, VaultError};

/// A memory to store.
#[derive(Debug, Clone)]
pub struct MemoryInput {
    pub(crate) content: SecretBytes,
    pub(crate) classification: u8,
    pub(crate) creator: Creator,
    pub(crate) meta: SealedMeta,
    pub(crate) policy: AccessPolicy,
}

impl MemoryInput {
    /// A text memory (classification 1, created by the agent).
    pub fn text(text: impl Into<String>) -> Self {
        Self::bytes(text.into().into_bytes())
    }

    /// A binary memory.
    pub fn bytes(content: impl Into<Vec<u8>>) -> Self {
        Self {
            content: SecretBytes::new(content.into()),
            classification: 1,
            creator: Creator::Agent,
            meta: SealedMeta::default(),
            policy: AccessPolicy::default(),
        }
    }

    /// Sets the classification level (0–5; checked at store).
    pub fn classification(mut self, level: impl Into<u8>) -> Self {
        self.classification = level.into();
        self
    }

    /// Sets who created it.
    pub fn creator(mut self, c: Creator) -> Self {
        self.creator = c;
        self
    }

    /// Private metadata (sealed like the content).
    pub fn metadata(mut self, m: impl Into<Vec<u8>>) -> Self {
        self.meta.metadata = m.into();
        self
    }

    /// Adds a tag (sealed; indexed as a keyed token).
    pub fn tag(mut self, t: impl Into<String>) -> Self {
        self.meta.tags.push(t.into());
        self
    }

    /// Links an intent id (sealed; indexed as a keyed token).
    pub fn intent(mut self, i: impl Into<String>) -> Self {
        self.meta.intents.push(i.into());
        self
    }

    /// Minimum time between two allowed recalls.
    pub fn cooldown_ms(mut self, ms: u64) -> Self {
        self.policy.cooldown_ms = ms;
        self
    }

    /// Expiry time (Unix ms); expired memories are never recalled, level 0 ones are purged.
    pub fn expires_at_ms(mut self, at: i64) -> Self {
        self.policy.expires_at_ms = Some(at);
        self
    }
}

impl From<Classification> for u8 {
    fn from(c: Classification) -> u8 {
        c.level()
    }
}

/// Why a recall is made and by whom (both recorded: the requester in clear, the
/// justification as a keyed MAC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecallRequest {
    /// Why.
    pub justification: String,
    /// Who.
    pub requester: String,
}

impl RecallRequest {
    /// A request by the agent with this justification.
    pub fn new(justification: impl Into<String>) -> Self {
        Self {
            justification: justification.into(),
            requester: "agent".into(),
        }
    }

    /// Sets the requester.
    pub fn requester(mut self, r: impl Into<String>) -> Self {
        self.requester = r.into();
        self
    }
}

/// A recalled memory. Content and metadata zeroize on drop.
#[derive(Debug, Clone)]
pub struct Recalled {
    /// Its id.
    pub memory_id: MemoryId,
    /// Its classification.
    pub classification: Classification,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Who created it.
    pub created_by: Creator,
    /// The content.
    pub content: SecretBytes,
    /// The private metadata.
    pub metadata: SecretBytes,
    /// Tags.
    pub tags: Vec<String>,
    /// Intent references.
    pub intents: Vec<String>,
}

impl Recalled {
    /// The content as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(self.content.expose())
            .map_err(|_| VaultError::InvalidInput("the memory's content is not UTF-8 text".into()))
    }
}

/// A row as read from `memories`.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    pub(crate) seq: i64,
    pub(crate) memory_id: Vec<u8>,
    pub(crate) profile: String,
    pub(crate) format: i64,
    pub(crate) created_at_ms: i64,
    pub(crate) created_by: i64,
    pub(crate) classification: i64,
    pub(crate) cooldown_ms: i64,
    pub(crate) expires_at_ms: Option<i64>,
    pub(crate) key_epoch: i64,
    pub(crate) content: Option<Vec<u8>>,
    pub(crate) meta: Option<Vec<u8>>,
    pub(crate) content_mac: Option<Vec<u8>>,
    pub(crate) tombstoned_at_ms: Option<i64>,
    pub(crate) row_mac: Vec<u8>,
}

pub(crate) const ROW_COLUMNS: &str = "seq, memory_id, profile_id, format, created_at_ms, created_by, classification, cooldown_ms, expires_at_ms, key_epoch, content, meta, content_mac, tombstoned_at_ms, row_mac";

impl RawRow {
    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            memory_id: r.get(1)?,
            profile: r.get(2)?,
            format: r.get(3)?,
            created_at_ms: r.get(4)?,
            created_by: r.get(5)?,
            classification: r.get(6)?,
            cooldown_ms: r.get(7)?,
            expires_at_ms: r.get(8)?,
            key_epoch: r.get(9)?,
            content: r.get(10)?,
            meta: r.get(11)?,
            content_mac: r.get(12)?,
            tombstoned_at_ms: r.get(13)?,
            row_mac: r.get(14)?,
        })
    }

    /// The authenticated header, or why the columns cannot even be read as one.
    pub(crate) fn header(&self) -> std::result::Result<RowHeader, String> {
        Ok(RowHeader {
            memory_id: MemoryId::from_slice(&self.memory_id).map_err(|e| e.to_string())?,
            profile: self.profile.clone(),
            format: u8::try_from(self.format).map_err(|_| "bad format".to_owned())?,
            created_at_ms: self.created_at_ms,
            created_by: Creator::try_from(self.created_by).map_err(|e| e.to_string())?,
            classification: Classification::try_from(self.classification)
                .map_err(|e| e.to_string())?,
            policy: AccessPolicy {
                cooldown_ms: u64::try_from(self.cooldown_ms)
                    .map_err(|_| "negative cooldown".to_owned())?,
                expires_at_ms: self.expires_at_ms,
            },
            key_epoch: u32::try_from(self.key_epoch).map_err(|_| "bad key epoch".to_owned())?,
        })
    }

    pub(crate) fn state(&self) -> std::result::Result<RowState<'_>, String> {
        match (
            &self.tombstoned_at_ms,
            &self.content,
            &self.meta,
            &self.content_mac,
        ) {
            (Some(at), None, None, None) => Ok(RowState::Tombstoned { at_ms: *at }),
            (None, Some(c), Some(m), Some(x)) => Ok(RowState::Live {
                content: c,
                meta: m,
                content_mac: x,
            }),
            _ => Err("inconsistent tombstone and content columns".into()),
        }
    }
}

/// A row whose MAC verified.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedRow {
    pub(crate) raw: RawRow,
    pub(crate) header: RowHeader,
}

/// An unlocked profile.
pub struct Session<'v> {
    pub(crate) vault: &'v Vault,
    pub(crate) profile: String,
    /// Keys of the profile's current epoch.
    pub(crate) keys: KeySet,
    /// Keys of the epoch a pending rotation moves to.
    pub(crate) pending: Option<KeySet>,
    pub(crate) signer: AgentKeypair,
    pub(crate) app_signer: Option<Box<dyn HeadSigner + Send>>,
    ops_since_head: u32,
    last_head_ms: i64,
    /// Opened with the profile's recovery key (a human factor, see [`crate::admin`]).
    pub(crate) recovered: bool,
    /// The session that created the profile (a human factor, see [`crate::admin`]).
    pub(crate) created: bool,
    /// A human factor confirmed ahead of the next administrative change.
    pub(crate) admin: Option<crate::admin::HumanFactor>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("profile", &self.profile)
            .field("key_epoch", &self.keys.epoch)
            .field("rotation_pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<'v> Session<'v> {
    pub(crate) fn new(
        vault: &'v Vault,
        profile: String,
        keys: KeySet,
        pending: Option<KeySet>,
        signer: AgentKeypair,
    ) -> Self {
        Self {
            last_head_ms: vault.now(),
            vault,
            profile,
            keys,
            pending,
            signer,
            app_signer: None,
            ops_since_head: 0,
            recovered: false,
            created: false,
            admin: None,
        }
    }

    /// The profile this session unlocked.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The vault.
    pub fn vault(&self) -> &'v Vault {
        self.vault
    }

    /// The profile's current key epoch.
    pub fn key_epoch(&self) -> u32 {
        self.keys.epoch
    }

    pub(crate) fn conn(&self) -> &'v Connection {
        &self.vault.conn
    }

    pub(crate) fn vid(&self) -> &[u8; 16] {
        &self.vault.vault_id
    }

    /// Keys new writes use (the rotation target while a rotation is pending).
    pub(crate) fn write_keys(&self) -> &KeySet {
        self.pending.as_ref().unwrap_or(&self.keys)
    }

    pub(crate) fn keys_for(&self, epoch: u32) -> Option<&KeySet> {
        if self.keys.epoch == epoch {
            Some(&self.keys)
        } else {
            self.pending.as_ref().filter(|k| k.epoch == epoch)
        }
    }

    /// All key sets the session holds (current, and the rotation target if any).
    pub(crate) fn all_keys(&self) -> impl Iterator<Item = &KeySet> {
        std::iter::once(&self.keys).chain(self.pending.as_ref())
    }

    pub(crate) fn text_mac(&self, what: &[u8], text: &str) -> Vec<u8> {
        KeySet::mac(
            &self.keys.content_mac,
            &[b"aim-vault/audit-text/v1\0", what, b"\0", text.as_bytes()],
        )[..16]
            .to_vec()
    }

    // ----------------------------------------------------------------------------------
    // Head signing

    /// Uses an application-supplied head signer (for example the agent's AIM identity key)
    /// instead of the profile's sealed key. If the profile's own key holds the log's current
    /// key epoch, the new key is announced through a hand-over head signed by the old one.
    pub fn use_head_signer(&mut self, signer: Box<dyn HeadSigner + Send>) -> Result<()> {
        let epochs = AuditLog::key_epochs(self.conn())?;
        let new_id = signer.public_key().key_id();
        if epochs.last().map(|e| e.key_id.as_str()) != Some(new_id.as_str()) {
            let tx = db::write_tx(self.conn())?;
            let current = self.current_signer_id()?;
            if current.as_deref() != Some(self.signer.public_key().key_id().as_str()) {
                return Err(VaultError::InvalidInput(
                    "only the profile holding the log's current head-signing key can hand it over"
                        .into(),
                ));
            }
            AuditLog::rotate_key(&tx, &self.signer, &signer.public_key(), self.vault.now())?;
            tx.commit()?;
        }
        self.app_signer = Some(signer);
        Ok(())
    }

    fn current_signer_id(&self) -> Result<Option<String>> {
        Ok(AuditLog::key_epochs(self.conn())?
            .last()
            .map(|e| e.key_id.clone()))
    }

    /// The public key this session signs heads with.
    pub fn head_public_key(&self) -> aim_crypto::AgentPublicKey {
        match &self.app_signer {
            Some(s) => s.public_key(),
            None => self.signer.public_key(),
        }
    }

    /// Signs a head over the whole log now, if this session's key holds the log's current
    /// key epoch. Returns whether a head was signed.
    ///
    /// The log is first checked against every witness's latest head (a truncated or
    /// rolled-back log is refused with [`VaultError::Witness`] and nothing is signed); the
    /// committed head is then published to every witness.
    pub fn sign_head(&mut self) -> Result<bool> {
        let tx = db::write_tx(self.conn())?;
        let head = self.sign_head_in(&tx)?;
        tx.commit()?;
        self.publish(head.as_ref())?;
        Ok(head.is_some())
    }

    /// Publishes a committed head to the vault's witnesses.
    fn publish(&self, head: Option<&vault_audit::SignedTreeHead>) -> Result<()> {
        match head {
            Some(h) => crate::witness::publish_all(self.conn(), &self.vault.witnesses, h),
            None => Ok(()),
        }
    }

    fn sign_head_in(&mut self, conn: &Connection) -> Result<Option<vault_audit::SignedTreeHead>> {
        crate::witness::check_all(conn, &self.vault.witnesses)?;
        let now = self.vault.now();
        let signer: &dyn HeadSigner = match &self.app_signer {
            Some(s) => s.as_ref(),
            None => &self.signer,
        };
        let key_id = signer.public_key().key_id();
        match AuditLog::sign_head(conn, signer, now) {
            Ok(head) => {
                self.ops_since_head = 0;
                self.last_head_ms = now;
                Ok(Some(head))
            }
            // A profile whose key never held a signing epoch (another profile signs the log).
            Err(vault_audit::AuditError::KeyNotCurrent { .. })
                if !AuditLog::key_epochs(conn)?
                    .iter()
                    .any(|e| e.key_id == key_id) =>
            {
                Ok(None)
            }
            // Everything else is reported: a key that was handed over without this session's
            // signer, an inserted or uncertified key epoch, a log without any epoch.
            Err(e) => Err(VaultError::HeadSigning(e.to_string())),
        }
    }

    /// Commits an audited operation, signing a head in the same transaction every
    /// [`HEAD_EVERY_OPS`] operations or [`HEAD_EVERY_MS`] (so a durable store never pays a
    /// second fsync for its head).
    pub(crate) fn commit_op(&mut self, tx: Transaction<'_>, ops: u32) -> Result<()> {
        self.ops_since_head = self.ops_since_head.saturating_add(ops);
        let mut head = None;
        if self.ops_since_head >= HEAD_EVERY_OPS
            || self.vault.now() - self.last_head_ms >= HEAD_EVERY_MS
        {
            head = self.sign_head_in(&tx)?;
        }
        tx.commit()?;
        self.publish(head.as_ref())
    }

    /// Signs a final head (if operations happened since the last one) and ends the session.
    pub fn close(mut self) -> Result<()> {
        let signed = if self.ops_since_head > 0 {
            self.sign_head().map(|_| ())
        } else {
            Ok(())
        };
        // Reported here; Drop must not try (and report) again.
        self.ops_since_head = 0;
        signed
    }

    // ----------------------------------------------------------------------------------
    // Gate configuration

    /// The profile's gate configuration (authenticated, and checked to be the latest version
    /// the audit log records).
    pub fn gate_config(&self) -> Result<GateConfig> {
        self.gate_config_versioned().map(|(c, _)| c)
    }

    /// The gate configuration and its row version.
    pub(crate) fn gate_config_versioned(&self) -> Result<(GateConfig, Option<i64>)> {
        let row: Option<VersionedBlob> = self
            .conn()
            .prepare_cached(
                "SELECT config, key_epoch, version, mac FROM gate_config WHERE profile_id = ?1",
            )?
            .query_row([&self.profile], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let (bytes, epoch, version, mac) = row.ok_or_else(|| {
            VaultError::Integrity(format!(
                "the gate configuration of `{}` is missing",
                self.profile
            ))
        })?;
        let keys = self.keys_for(epoch_u32(epoch)?).ok_or_else(|| {
            VaultError::Integrity("the gate configuration is bound to an unknown key epoch".into())
        })?;
        if !aim_crypto::kdf::ct_eq(
            &mac,
            &gate_config_mac(self.vid(), &self.profile, keys, &bytes, version),
        ) {
            return Err(VaultError::Integrity(format!(
                "the gate configuration of `{}` failed authentication",
                self.profile
            )));
        }
        versions::require(
            self.conn(),
            &RowKey::gate_config(&self.profile),
            version,
            "the gate configuration",
        )?;
        Ok((GateConfig::decode(&bytes)?, version))
    }

    /// Replaces the gate configuration (audited as `gates.config.change`). Needs a human
    /// factor (see [`crate::admin`]); without one it is denied with
    /// [`DenyReason::HumanFactorRequired`].
    pub fn set_gate_config(&mut self, config: &GateConfig) -> Result<()> {
        config.validate()?;
        let factor = self.take_admin("gates.config.change")?;
        let tx = db::write_tx(self.conn())?;
        let version = versions::next(&tx)?;
        store_gate_config(
            &tx,
            self.vid(),
            &self.profile,
            self.write_keys(),
            config,
            Some(version),
        )?;
        versions::append(
            &tx,
            Event::new("gates.config.change", self.vault.now())
                .with("profile", self.profile.as_str())
                .with("config_hash", aim_crypto::hash::sha256(&config.encode()))
                .with("authorized_by", factor.describe()),
            &[RowKey::gate_config(&self.profile)],
            version,
        )?;
        self.commit_op(tx, 1)
    }

    // ----------------------------------------------------------------------------------
    // Store

    /// Stores one memory durably (one transaction, one fsync) and returns its id.
    pub fn store(&mut self, input: MemoryInput) -> Result<MemoryId> {
        let mut ids = self.store_batch(vec![input])?;
        ids.pop()
            .ok_or_else(|| VaultError::InvalidInput("nothing stored".into()))
    }

    /// Stores many memories in one transaction (all or none).
    pub fn store_batch(&mut self, inputs: Vec<MemoryInput>) -> Result<Vec<MemoryId>> {
        let now = self.vault.now();
        let keys = self.write_keys();
        // One random draw for the whole batch: 10 bytes of id and a 32-byte commitment salt
        // per memory (the AEAD nonces come from aim-crypto).
        let mut random = zeroize::Zeroizing::new(vec![0u8; inputs.len() * 42]);
        aim_crypto::random::fill_random(&mut random)?;
        let mut rows = Vec::with_capacity(inputs.len());
        for (input, rnd) in inputs.iter().zip(random.chunks_exact(42)) {
            rows.push(self.seal_new(keys, input, now, rnd)?);
        }
        let tx = db::write_tx(self.conn())?;
        let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let last_change = db::next_changes(&tx, n)?;
        let first_change = last_change - n + 1;
        let mut ids = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let leaf = audit::append(
                &tx,
                &Event::new("memory.store", now)
                    .with("profile", self.profile.as_str())
                    .with("memory_id", &row.header.memory_id.as_bytes()[..])
                    .with(
                        "classification",
                        i64::from(row.header.classification.level()),
                    )
                    .with("creator", row.header.created_by.name())
                    .with("key_epoch", i64::from(row.header.key_epoch))
                    .with(vault_audit::COMMITMENT_FIELD, row.commitment)
                    .with(
                        crate::verify::COMMITMENT_VERSION_FIELD,
                        crate::verify::SALTED_COMMITMENT,
                    ),
            )?;
            insert_row(
                &tx,
                row,
                first_change + i64::try_from(i).unwrap_or(0),
                Some(leaf),
            )?;
            ids.push(row.header.memory_id);
        }
        self.commit_op(tx, u32::try_from(rows.len()).unwrap_or(u32::MAX))?;
        Ok(ids)
    }

    fn seal_new(&self, keys: &KeySet, input: &MemoryInput, now: i64, rnd: &[u8]) -> Result<NewRow> {
        let classification = Classification::try_from(input.classification)?;
        if input.content.len() > record::MAX_CONTENT {
            return Err(VaultError::InvalidInput(format!(
                "content larger than {} bytes",
                record::MAX_CONTENT
            )));
        }
        if i64::try_from(input.policy.cooldown_ms).is_err() {
            return Err(VaultError::InvalidInput("cooldown too large".into()));
        }
        input.meta.validate()?;
        let mut meta = input.meta.clone();
        meta.commitment_salt.copy_from_slice(&rnd[10..42]);
        let header = RowHeader {
            memory_id: MemoryId::from_time_and_random(now, &rnd[..10]),
            profile: self.profile.clone(),
            format: RECORD_FORMAT,
            created_at_ms: now,
            created_by: input.creator,
            classification,
            policy: input.policy,
            key_epoch: keys.epoch,
        };
        // The sealed metadata must carry the salt the commitment uses (issue 11, point 1:
        // sealing `input.meta` left a zero salt, so every leaf was an unsalted fingerprint).
        seal_row(self.vid(), keys, header, input.content.expose(), &meta)
    }

    // ----------------------------------------------------------------------------------
    // Reading rows

    pub(crate) fn load_raw(&self, id: &MemoryId) -> Result<Option<RawRow>> {
        let sql =
            format!("SELECT {ROW_COLUMNS} FROM memories WHERE memory_id = ?1 AND profile_id = ?2");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row(params![&id.as_bytes()[..], self.profile], RawRow::from_row)
            .optional()?)
    }

    /// Checks a row's MAC under the key of its epoch.
    pub(crate) fn verify_row(&self, raw: RawRow) -> std::result::Result<VerifiedRow, String> {
        let header = raw.header()?;
        let keys = self.keys_for(header.key_epoch).ok_or_else(|| {
            format!(
                "the record claims key epoch {}, which this profile does not have",
                header.key_epoch
            )
        })?;
        let state = raw.state()?;
        let want = header.row_mac(&keys.row, self.vid(), &state);
        if !aim_crypto::kdf::ct_eq(&want, &raw.row_mac) {
            return Err(
                "the row MAC does not match (a column was changed, or rows were swapped)".into(),
            );
        }
        Ok(VerifiedRow { raw, header })
    }

    /// Opens a live row's envelopes and checks the content MAC.
    pub(crate) fn open_row(
        &self,
        row: &VerifiedRow,
    ) -> std::result::Result<(SecretBytes, SealedMeta), String> {
        let keys = self
            .keys_for(row.header.key_epoch)
            .ok_or("unknown key epoch")?;
        let (Some(c), Some(m), Some(x)) = (&row.raw.content, &row.raw.meta, &row.raw.content_mac)
        else {
            return Err("the record has no content".into());
        };
        let content = keys
            .content
            .open(&row.header.aad(self.vid(), Part::Content), c)
            .map_err(|_| "the content envelope failed authentication".to_owned())?;
        let meta = keys
            .content
            .open(&row.header.aad(self.vid(), Part::Meta), m)
            .map_err(|_| "the metadata envelope failed authentication".to_owned())?;
        let mac = record::content_mac(keys, &row.header.memory_id, &content);
        if !aim_crypto::kdf::ct_eq(&mac, x) {
            return Err("the content MAC does not match".into());
        }
        let meta = SealedMeta::decode(&meta).map_err(|e| e.to_string())?;
        Ok((SecretBytes::from(content), meta))
    }

    // ----------------------------------------------------------------------------------
    // Recall

    /// Recalls a memory: runs its classification's gates (fail-closed), decrypts, verifies
    /// and audits. Denials are audited with their reason and returned as
    /// [`VaultError::Denied`].
    pub fn recall(&mut self, id: MemoryId, request: RecallRequest) -> Result<Recalled> {
        let now = self.vault.now();
        let lock = self.lockdown_check()?;
        if let Some(why) = &lock.tampered {
            return Err(self.deny(&id, None, DenyReason::Integrity(why.clone()), &request));
        }
        if lock.active {
            return Err(self.deny(&id, None, DenyReason::Lockdown, &request));
        }
        let Some(raw) = self.load_raw(&id)? else {
            self.audit_not_found(&id, &request)?;
            return Err(VaultError::MemoryNotFound(id.to_string()));
        };
        let claimed = Classification::try_from(raw.classification).ok();
        let row = match self.verify_row(raw) {
            Ok(r) => r,
            Err(why) => return Err(self.deny(&id, claimed, DenyReason::Integrity(why), &request)),
        };
        let class = row.header.classification;
        match self.gate(&row, &request, now) {
            Ok(()) => {}
            Err(reason) => return Err(self.deny(&id, Some(class), reason, &request)),
        }
        let approver = match self.human_gates(&row, &request) {
            Ok(a) => a,
            Err(reason) => return Err(self.deny(&id, Some(class), reason, &request)),
        };
        let (content, meta) = match self.open_row(&row) {
            Ok(x) => x,
            Err(why) => {
                return Err(self.deny(&id, Some(class), DenyReason::Integrity(why), &request));
            }
        };
        let cooldown = self.effective_cooldown(&row)?;
        let tx = db::write_tx(self.conn())?;
        let mut ev = Event::new("memory.recall", now)
            .with("profile", self.profile.as_str())
            .with("memory_id", &id.as_bytes()[..])
            .with("classification", i64::from(class.level()))
            .with("requester", truncate(&request.requester))
            .with(
                "justification_mac",
                self.text_mac(b"justification", &request.justification),
            );
        if let Some(a) = approver {
            ev = ev.with("approver", truncate(&a));
        }
        if cooldown > 0 {
            let keys = self
                .keys_for(row.header.key_epoch)
                .ok_or_else(|| VaultError::Integrity("key epoch".into()))?;
            let count = self.access_state(&row)?.map_or(0, |(_, c)| c) + 1;
            let version = versions::next(&tx)?;
            versions::append(&tx, ev, &[RowKey::access(&id)], version)?;
            let mac = access_mac(self.vid(), keys, &id, now, count, Some(version));
            tx.prepare_cached(
                "INSERT OR REPLACE INTO access_state(seq, last_allowed_ms, allowed_count, version, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![row.raw.seq, now, count, version, &mac[..]])?;
        } else {
            audit::append(&tx, &ev)?;
        }
        // The checkpoint counts this recall's own leaf: removing it shrinks the log below it.
        let lock = LockCheck {
            size: AuditLog::tree_size(&tx)?,
            ..lock
        };
        self.save_lock_state(&tx, &lock)?;
        self.commit_op(tx, 1)?;
        Ok(Recalled {
            memory_id: id,
            classification: class,
            created_at_ms: row.header.created_at_ms,
            created_by: row.header.created_by,
            content,
            metadata: SecretBytes::new(meta.metadata),
            tags: meta.tags,
            intents: meta.intents,
        })
    }

    fn effective_cooldown(&self, row: &VerifiedRow) -> Result<u64> {
        let cfg = self.gate_config()?;
        Ok(row
            .header
            .policy
            .cooldown_ms
            .max(cfg.level(row.header.classification).min_cooldown_ms))
    }

    /// The last allowed recall time and count, authenticated and checked to be the latest
    /// version.
    fn access_state(&self, row: &VerifiedRow) -> Result<Option<(i64, i64)>> {
        check_access_state(
            self,
            row.raw.seq,
            &row.header.memory_id,
            row.header.key_epoch,
        )
    }

    /// Machine gates: tombstone, expiry, configuration, justification, cooldown, boundary.
    fn gate(
        &self,
        row: &VerifiedRow,
        request: &RecallRequest,
        now: i64,
    ) -> std::result::Result<(), DenyReason> {
        if row.raw.tombstoned_at_ms.is_some() {
            return Err(DenyReason::Tombstoned);
        }
        if row.header.policy.expires_at_ms.is_some_and(|at| now >= at) {
            return Err(DenyReason::Expired);
        }
        let cfg = self
            .gate_config()
            .map_err(|e| DenyReason::Integrity(e.to_string()))?;
        let level = *cfg.level(row.header.classification);
        if level.justification && request.justification.trim().is_empty() {
            return Err(DenyReason::JustificationRequired);
        }
        let cooldown = row.header.policy.cooldown_ms.max(level.min_cooldown_ms);
        if cooldown > 0 {
            match self.access_state(row) {
                Err(e) => return Err(DenyReason::Integrity(e.to_string())),
                Ok(None) => {}
                Ok(Some((last, _))) => {
                    if now < last {
                        return Err(DenyReason::ClockRegressed);
                    }
                    let elapsed = u64::try_from(now - last).unwrap_or(0);
                    if elapsed < cooldown {
                        return Err(DenyReason::Cooldown {
                            remaining_ms: cooldown - elapsed,
                        });
                    }
                }
            }
        }
        self.check_boundary(
            &cfg,
            level.boundary,
            &self.gate_request(row, request, "recall"),
        )
    }

    /// Asks the boundary daemon (plugged in, or the configured socket) as `rule` says.
    pub(crate) fn check_boundary(
        &self,
        cfg: &GateConfig,
        rule: BoundaryRule,
        req: &GateRequest,
    ) -> std::result::Result<(), DenyReason> {
        let configured = self.vault.gates.boundary.is_some() || cfg.boundary_socket.is_some();
        let ask_boundary = match rule {
            BoundaryRule::Never => false,
            BoundaryRule::IfConfigured => configured,
            BoundaryRule::Required => true,
        };
        if !ask_boundary {
            return Ok(());
        }
        let decision = match (&self.vault.gates.boundary, &cfg.boundary_socket) {
            (Some(b), _) => b.check_recall(req),
            (None, Some(sock)) => {
                crate::gates::Boundary::check_recall(&UnixSocketBoundary::new(sock), req)
            }
            (None, None) => return Err(DenyReason::BoundaryUnavailable),
        };
        match decision {
            Ok(d) if d.permitted => Ok(()),
            Ok(d) => Err(DenyReason::BoundaryDenied(d.reason)),
            Err(e) => Err(DenyReason::BoundaryError(e.to_string())),
        }
    }

    /// Human-facing gates (approval, presence), asked last.
    fn human_gates(
        &self,
        row: &VerifiedRow,
        request: &RecallRequest,
    ) -> std::result::Result<Option<String>, DenyReason> {
        let cfg = self
            .gate_config()
            .map_err(|e| DenyReason::Integrity(e.to_string()))?;
        let level = *cfg.level(row.header.classification);
        self.check_human(&level, &self.gate_request(row, request, "recall"))
    }

    /// Asks for human approval and presence as `level` requires; returns the approver.
    pub(crate) fn check_human(
        &self,
        level: &LevelGates,
        req: &GateRequest,
    ) -> std::result::Result<Option<String>, DenyReason> {
        let mut approver = None;
        if level.approval {
            let a = self
                .vault
                .gates
                .approver
                .as_ref()
                .ok_or(DenyReason::ApproverUnavailable)?;
            approver = Some(
                a.approve(req)
                    .map_err(|e| DenyReason::ApprovalDenied(e.to_string()))?
                    .approver,
            );
        }
        if level.presence {
            let p = self
                .vault
                .gates
                .presence
                .as_ref()
                .ok_or(DenyReason::PresenceUnavailable)?;
            p.confirm(req)
                .map_err(|e| DenyReason::PresenceDenied(e.to_string()))?;
        }
        Ok(approver)
    }

    fn gate_request(
        &self,
        row: &VerifiedRow,
        request: &RecallRequest,
        purpose: &str,
    ) -> GateRequest {
        GateRequest {
            memory_id: row.header.memory_id,
            classification: row.header.classification,
            profile: self.profile.clone(),
            requester: request.requester.clone(),
            justification: request.justification.clone(),
            purpose: purpose.into(),
        }
    }

    /// Audits a denial and returns the error to give the caller (the audit error instead, if
    /// the denial could not be recorded).
    fn deny(
        &mut self,
        id: &MemoryId,
        class: Option<Classification>,
        reason: DenyReason,
        request: &RecallRequest,
    ) -> VaultError {
        let r = (|| -> Result<()> {
            let tx = db::write_tx(self.conn())?;
            let mut ev = Event::new("memory.recall.denied", self.vault.now())
                .with("profile", self.profile.as_str())
                .with("memory_id", &id.as_bytes()[..])
                .with("reason", reason.code())
                .with("requester", truncate(&request.requester));
            let detail = reason.detail();
            if !detail.is_empty() {
                ev = ev.with("detail", detail);
            }
            if let Some(c) = class {
                ev = ev.with("classification", i64::from(c.level()));
            }
            audit::append(&tx, &ev)?;
            let lock = self.lockdown_check()?;
            // The checkpoint counts this denial's own leaf.
            let lock = LockCheck {
                size: AuditLog::tree_size(&tx)?,
                ..lock
            };
            self.save_lock_state(&tx, &lock)?;
            self.commit_op(tx, 1)
        })();
        match r {
            Ok(()) => VaultError::Denied(reason),
            Err(e) => e,
        }
    }

    fn audit_not_found(&mut self, id: &MemoryId, request: &RecallRequest) -> Result<()> {
        let tx = db::write_tx(self.conn())?;
        audit::append(
            &tx,
            &Event::new("memory.recall.denied", self.vault.now())
                .with("profile", self.profile.as_str())
                .with("memory_id", &id.as_bytes()[..])
                .with("reason", "not_found")
                .with("requester", truncate(&request.requester)),
        )?;
        self.commit_op(tx, 1)
    }

    // ----------------------------------------------------------------------------------
    // Lockdown

    /// Whether recalls of this profile are in lockdown: the latest lockdown epoch has no
    /// authentic exit record for this profile, or lockdown records were tampered with.
    pub fn lockdown_active(&self) -> Result<bool> {
        let c = self.lockdown_check()?;
        Ok(c.active || c.tampered.is_some())
    }

    /// Reads the lockdown state and cross-checks it against the audit log: the profile's
    /// authenticated checkpoint (highest lockdown epoch seen, audit size at that time) and
    /// every `vault.lockdown.enter` leaf appended since. A lockdown row that was deleted, or
    /// an audit log that shrank, is reported as tampering.
    pub(crate) fn lockdown_check(&self) -> Result<LockCheck> {
        let conn = self.conn();
        let table_epoch: i64 = conn
            .prepare_cached("SELECT coalesce(max(epoch), 0) FROM lockdown_log")?
            .query_row([], |r| r.get(0))?;
        let size = AuditLog::tree_size(conn)?;
        let mut check = LockCheck {
            epoch: table_epoch,
            size,
            active: false,
            tampered: None,
        };
        let state: Option<(i64, i64, i64, Vec<u8>)> = conn
            .prepare_cached("SELECT lockdown_epoch, audit_size, key_epoch, mac FROM profile_state WHERE profile_id = ?1")?
            .query_row([&self.profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        match state {
            None => check.tampered = Some("the profile's lockdown checkpoint is missing".into()),
            Some((seen, seen_size, key_epoch, mac)) => {
                let valid = u32::try_from(key_epoch)
                    .ok()
                    .and_then(|e| self.keys_for(e))
                    .is_some_and(|k| {
                        aim_crypto::kdf::ct_eq(
                            &mac,
                            &profile_state_mac(self.vid(), k, &self.profile, seen, seen_size),
                        )
                    });
                let seen_size = u64::try_from(seen_size).unwrap_or(u64::MAX);
                if !valid {
                    check.tampered =
                        Some("the profile's lockdown checkpoint failed authentication".into());
                } else if seen_size > size {
                    check.tampered = Some(format!(
                        "the audit log shrank from {seen_size} to {size} leaves"
                    ));
                } else {
                    let mut max_leaf = seen;
                    for i in seen_size..size {
                        let ev = AuditLog::leaf(conn, i)?;
                        if ev.kind == "vault.lockdown.enter" {
                            let e = ev
                                .get("lockdown_epoch")
                                .and_then(vault_audit::FieldValue::as_int)
                                .unwrap_or(i64::MAX);
                            max_leaf = max_leaf.max(e);
                        }
                    }
                    if max_leaf > table_epoch {
                        check.tampered = Some(format!(
                            "lockdown {max_leaf} is in the audit log but its record is missing"
                        ));
                    }
                }
            }
        }
        if check.epoch == 0 {
            return Ok(check);
        }
        let exit: Option<(i64, i64, Vec<u8>)> = conn
            .prepare_cached("SELECT exited_at_ms, key_epoch, mac FROM lockdown_exits WHERE epoch = ?1 AND profile_id = ?2")?
            .query_row(params![check.epoch, self.profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        check.active = match exit {
            None => true,
            Some((at, key_epoch, mac)) => !u32::try_from(key_epoch)
                .ok()
                .and_then(|e| self.keys_for(e))
                .is_some_and(|k| {
                    aim_crypto::kdf::ct_eq(
                        &mac,
                        &lockdown_exit_mac(self.vid(), k, &self.profile, check.epoch, at),
                    )
                }),
        };
        Ok(check)
    }

    /// Advances the profile's lockdown checkpoint to what `check` saw (never on tampering).
    pub(crate) fn save_lock_state(&self, conn: &Connection, check: &LockCheck) -> Result<()> {
        if check.tampered.is_some() {
            return Ok(());
        }
        write_profile_state(
            conn,
            self.vid(),
            &self.profile,
            self.write_keys(),
            check.epoch,
            check.size,
        )
    }

    /// Leaves the current lockdown for this profile. Needs a human factor besides the key
    /// that unlocked the session (see [`crate::admin`]); without one it is denied with
    /// [`DenyReason::HumanFactorRequired`] and the lockdown stays.
    pub fn leave_lockdown(&mut self) -> Result<()> {
        let factor = self.take_admin("vault.lockdown.exit")?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        let epoch: Option<i64> =
            tx.query_row("SELECT max(epoch) FROM lockdown_log", [], |r| r.get(0))?;
        let Some(epoch) = epoch else {
            return Ok(());
        };
        let keys = self.write_keys();
        let mac = lockdown_exit_mac(self.vid(), keys, &self.profile, epoch, now);
        tx.execute(
            "INSERT OR REPLACE INTO lockdown_exits(epoch, profile_id, exited_at_ms, key_epoch, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![epoch, self.profile, now, i64::from(keys.epoch), &mac[..]],
        )?;
        audit::append(
            &tx,
            &Event::new("vault.lockdown.exit", now)
                .with("lockdown_epoch", epoch)
                .with("profile", self.profile.as_str())
                .with("authorized_by", factor.describe()),
        )?;
        let size = AuditLog::tree_size(&tx)?;
        write_profile_state(
            &tx,
            self.vid(),
            &self.profile,
            self.write_keys(),
            epoch,
            size,
        )?;
        self.commit_op(tx, 1)
    }

    // ----------------------------------------------------------------------------------
    // Tombstones and expiry

    /// Tombstones a memory: its sealed content, metadata and search tokens are erased (SQLite
    /// `secure_delete`, the full-text index rewritten without its tokens, WAL checkpointed), the
    /// record and its audit history stay. Returns `false` if it already was tombstoned.
    /// Backups written before keep the memory; an armed dead-man package is re-sealed by
    /// `vault_escrow::tombstone` (use that when a dead-man switch may be set).
    pub fn tombstone(&mut self, id: MemoryId, reason: &str) -> Result<bool> {
        let raw = self
            .load_raw(&id)?
            .ok_or_else(|| VaultError::MemoryNotFound(id.to_string()))?;
        if raw.tombstoned_at_ms.is_some() {
            return Ok(false);
        }
        let row = self.verify_row(raw).map_err(VaultError::Integrity)?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        self.erase(&tx, &row, now)?;
        audit::append(
            &tx,
            &Event::new("memory.tombstone", now)
                .with("profile", self.profile.as_str())
                .with("memory_id", &id.as_bytes()[..])
                .with(
                    "classification",
                    i64::from(row.header.classification.level()),
                )
                .with("reason_mac", self.text_mac(b"tombstone", reason)),
        )?;
        self.commit_op(tx, 1)?;
        self.checkpoint();
        Ok(true)
    }

    fn erase(&self, tx: &Connection, row: &VerifiedRow, now: i64) -> Result<()> {
        let keys = self
            .keys_for(row.header.key_epoch)
            .ok_or_else(|| VaultError::Integrity("unknown key epoch".into()))?;
        let mac = row
            .header
            .row_mac(&keys.row, self.vid(), &RowState::Tombstoned { at_ms: now });
        let change = db::next_changes(tx, 1)?;
        tx.execute(
            "UPDATE memories SET content = NULL, meta = NULL, content_mac = NULL, tombstoned_at_ms = ?1, row_mac = ?2, change_seq = ?3 WHERE seq = ?4",
            params![now, &mac[..], change, row.raw.seq],
        )?;
        delete_index(tx, row.raw.seq)?;
        purge_index_segments(tx)?;
        tx.execute("DELETE FROM access_state WHERE seq = ?1", [row.raw.seq])?;
        Ok(())
    }

    /// Moves WAL frames that still hold erased bytes into the database and truncates the WAL
    /// (best effort: skipped while other connections read).
    fn checkpoint(&self) {
        let _ = self
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// Erases expired level-0 memories (audited as `memory.purge`); returns how many.
    pub fn purge_expired(&mut self) -> Result<usize> {
        let now = self.vault.now();
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM memories WHERE profile_id = ?1 AND classification = 0
             AND expires_at_ms IS NOT NULL AND expires_at_ms <= ?2 AND tombstoned_at_ms IS NULL"
        );
        let raws = self
            .conn()
            .prepare(&sql)?
            .query_map(params![self.profile, now], RawRow::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut n = 0;
        for raw in raws {
            let Ok(row) = self.verify_row(raw) else {
                continue;
            };
            if row.header.classification != Classification::Ephemeral
                || row.header.policy.expires_at_ms.is_none_or(|at| at > now)
            {
                continue;
            }
            let tx = db::write_tx(self.conn())?;
            self.erase(&tx, &row, now)?;
            audit::append(
                &tx,
                &Event::new("memory.purge", now)
                    .with("profile", self.profile.as_str())
                    .with("memory_id", &row.header.memory_id.as_bytes()[..])
                    .with("classification", 0i64),
            )?;
            self.commit_op(tx, 1)?;
            n += 1;
        }
        if n > 0 {
            self.checkpoint();
        }
        Ok(n)
    }

    // ----------------------------------------------------------------------------------
    // Intents

    /// Links an intent id to a memory (re-seals its metadata).
    pub fn link_intent(&mut self, id: MemoryId, intent: &str) -> Result<()> {
        let raw = self
            .load_raw(&id)?
            .ok_or_else(|| VaultError::MemoryNotFound(id.to_string()))?;
        if raw.tombstoned_at_ms.is_some() {
            return Err(VaultError::Denied(DenyReason::Tombstoned));
        }
        let row = self.verify_row(raw).map_err(VaultError::Integrity)?;
        let (content, mut meta) = self.open_row(&row).map_err(VaultError::Integrity)?;
        if meta.intents.iter().any(|i| i == intent) {
            return Ok(());
        }
        meta.intents.push(intent.to_owned());
        meta.validate()?;
        let keys = self
            .keys_for(row.header.key_epoch)
            .ok_or_else(|| VaultError::Integrity("unknown key epoch".into()))?;
        let new = seal_row(
            self.vid(),
            keys,
            row.header.clone(),
            content.expose(),
            &meta,
        )?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        let change = db::next_changes(&tx, 1)?;
        update_row(&tx, row.raw.seq, &new, change)?;
        audit::append(
            &tx,
            &Event::new("memory.intent.link", now)
                .with("profile", self.profile.as_str())
                .with("memory_id", &id.as_bytes()[..]),
        )?;
        self.commit_op(tx, 1)
    }

    // ----------------------------------------------------------------------------------
    // Key slots

    /// Adds (or replaces) a key slot for the current data key.
    pub fn add_key_slot(&mut self, enrollment: &Enrollment) -> Result<String> {
        self.no_rotation("add a key slot")?;
        let slot = Slot::enroll(
            self.vid(),
            &self.profile,
            self.keys.epoch,
            enrollment,
            &self.keys.dk,
        )?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        let version = versions::next(&tx)?;
        insert_slot(
            &tx,
            self.vid(),
            &self.profile,
            &slot,
            &self.keys,
            version,
            now,
        )?;
        versions::append(
            &tx,
            Event::new("profile.slot.add", now)
                .with("profile", self.profile.as_str())
                .with("slot", slot.slot_id.as_str())
                .with("key_epoch", i64::from(slot.key_epoch)),
            &[RowKey::slot(&self.profile, &slot.slot_id, slot.key_epoch)],
            version,
        )?;
        self.commit_op(tx, 1)?;
        Ok(slot.slot_id)
    }

    /// Removes a key slot; refuses to remove the last slot that is not a recovery slot.
    pub fn remove_key_slot(&mut self, slot_id: &str) -> Result<()> {
        self.no_rotation("remove a key slot")?;
        let slots = self.vault.slots(&self.profile, self.keys.epoch)?;
        if !slots.iter().any(|s| s.slot_id == slot_id) {
            return Err(VaultError::NoSuchSlot {
                profile: self.profile.clone(),
                kind: slot_id.to_owned(),
            });
        }
        if !slots
            .iter()
            .any(|s| s.slot_id != slot_id && s.kind != "recovery")
        {
            return Err(VaultError::InvalidInput(format!(
                "`{slot_id}` is the last key slot of `{}` besides recovery slots; add another first",
                self.profile
            )));
        }
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        tx.execute(
            "DELETE FROM key_slots WHERE profile_id = ?1 AND slot_id = ?2 AND key_epoch = ?3",
            params![self.profile, slot_id, i64::from(self.keys.epoch)],
        )?;
        let version = versions::next(&tx)?;
        versions::append(
            &tx,
            Event::new("profile.slot.remove", now)
                .with("profile", self.profile.as_str())
                .with("slot", slot_id)
                .with("key_epoch", i64::from(self.keys.epoch)),
            &[RowKey::slot(&self.profile, slot_id, self.keys.epoch)],
            version,
        )?;
        self.commit_op(tx, 1)?;
        self.checkpoint();
        Ok(())
    }

    /// The Argon2id parameters of the profile's passphrase slot, if it has one.
    pub fn passphrase_params(&self) -> Result<Option<Argon2Params>> {
        Ok(self
            .vault
            .slots(&self.profile, self.keys.epoch)?
            .into_iter()
            .find(|s| s.slot_id == "passphrase")
            .and_then(|s| s.kdf_params)
            .map(|p| Argon2Params::parse(&p))
            .transpose()?)
    }

    /// Sets (or changes) the passphrase: the data key is re-wrapped; memories are untouched
    /// and the old passphrase stops working. `params` default to the slot's current ones
    /// (or `moderate`).
    pub fn change_passphrase(
        &mut self,
        new: impl crate::keys::IntoPassphrase,
        params: Option<Argon2Params>,
    ) -> Result<()> {
        let current = self
            .vault
            .slots(&self.profile, self.keys.epoch)?
            .into_iter()
            .find(|s| s.slot_id == "passphrase")
            .and_then(|s| s.kdf_params)
            .and_then(|p| Argon2Params::parse(&p).ok());
        let params = params.or(current).unwrap_or(Argon2Params::MODERATE);
        self.add_key_slot(&Enrollment::passphrase_with(new, params))
            .map(|_| ())
    }

    /// Same as [`Session::change_passphrase`].
    pub fn set_passphrase(
        &mut self,
        new: impl crate::keys::IntoPassphrase,
        params: Option<Argon2Params>,
    ) -> Result<()> {
        self.change_passphrase(new, params)
    }

    /// Creates a recovery slot for escrow `escrow_id`: the data key is wrapped under a fresh
    /// random recovery key, which is returned (never stored) with its fingerprint. Rotating
    /// the data key invalidates every recovery slot.
    pub fn create_recovery_key(&mut self, escrow_id: &str) -> Result<(SecretKey, String)> {
        self.no_rotation("create a recovery key")?;
        if escrow_id.is_empty() || escrow_id.len() > 128 {
            return Err(VaultError::InvalidInput(
                "escrow id must be 1–128 bytes".into(),
            ));
        }
        let key = SecretKey::generate()?;
        let fp = recovery_fingerprint(&key);
        let slot = Slot::recovery(
            self.vid(),
            &self.profile,
            self.keys.epoch,
            escrow_id,
            &key,
            &self.keys.dk,
        )?;
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        let version = versions::next(&tx)?;
        insert_slot(
            &tx,
            self.vid(),
            &self.profile,
            &slot,
            &self.keys,
            version,
            now,
        )?;
        versions::append(
            &tx,
            Event::new("recovery.create", now)
                .with("profile", self.profile.as_str())
                .with("escrow_id", escrow_id)
                .with("fingerprint", fp.as_str()),
            &[RowKey::slot(&self.profile, &slot.slot_id, slot.key_epoch)],
            version,
        )?;
        self.commit_op(tx, 1)?;
        Ok((key, fp))
    }

    /// Removes escrow `escrow_id`'s recovery slot; returns whether there was one.
    pub fn remove_recovery_slot(&mut self, escrow_id: &str) -> Result<bool> {
        let slot_id = format!("recovery:{escrow_id}");
        let now = self.vault.now();
        let tx = db::write_tx(self.conn())?;
        let epochs: Vec<i64> = tx
            .prepare("SELECT key_epoch FROM key_slots WHERE profile_id = ?1 AND slot_id = ?2")?
            .query_map(params![self.profile, slot_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let n = tx.execute(
            "DELETE FROM key_slots WHERE profile_id = ?1 AND slot_id = ?2",
            params![self.profile, slot_id],
        )?;
        if n > 0 {
            let keys = epochs
                .into_iter()
                .map(|e| epoch_u32(e).map(|e| RowKey::slot(&self.profile, &slot_id, e)))
                .collect::<Result<Vec<_>>>()?;
            let version = versions::next(&tx)?;
            versions::append(
                &tx,
                Event::new("recovery.remove", now)
                    .with("profile", self.profile.as_str())
                    .with("escrow_id", escrow_id),
                &keys,
                version,
            )?;
        }
        self.commit_op(tx, 1)?;
        Ok(n > 0)
    }

    pub(crate) fn no_rotation(&self, what: &str) -> Result<()> {
        if self.pending.is_some() {
            return Err(VaultError::Rotation(format!(
                "cannot {what} while a key rotation is pending; resume or abort it first"
            )));
        }
        Ok(())
    }
}

/// (value, key_epoch, version, mac) of a versioned row.
type VersionedBlob = (Vec<u8>, i64, Option<i64>, Vec<u8>);

/// The lockdown state seen by a session.
#[derive(Debug, Clone)]
pub(crate) struct LockCheck {
    pub(crate) epoch: i64,
    pub(crate) size: u64,
    pub(crate) active: bool,
    pub(crate) tampered: Option<String>,
}

pub(crate) fn profile_state_mac(
    vid: &[u8; 16],
    keys: &KeySet,
    profile: &str,
    epoch: i64,
    size: i64,
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(b"aim-vault/profile-state/v1\0")
        .raw(vid)
        .str(profile)
        .i64(epoch)
        .i64(size)
        .u32(keys.epoch);
    KeySet::mac(&keys.row, &[w.as_slice()])
}

pub(crate) fn write_profile_state(
    conn: &Connection,
    vid: &[u8; 16],
    profile: &str,
    keys: &KeySet,
    epoch: i64,
    size: u64,
) -> Result<()> {
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let mac = profile_state_mac(vid, keys, profile, epoch, size);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO profile_state(profile_id, lockdown_epoch, audit_size, key_epoch, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![profile, epoch, size, i64::from(keys.epoch), &mac[..]])?;
    Ok(())
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.ops_since_head > 0 {
            // Drop cannot return the error: it is reported on stderr (call `close` to get it).
            if let Err(e) = self.sign_head() {
                eprintln!("aim vault: the final tree head was not signed: {e}");
            }
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}

/// The fingerprint of a recovery key (16 hex characters).
pub fn recovery_fingerprint(key: &SecretKey) -> String {
    let h = aim_crypto::hash::sha256_parts(&[b"aim-vault/recovery-fingerprint/v1\0", key.expose()]);
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn gate_config_mac(
    vid: &[u8; 16],
    profile: &str,
    keys: &KeySet,
    bytes: &[u8],
    version: Option<i64>,
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(b"aim-vault/gate-config/v1\0")
        .raw(vid)
        .str(profile)
        .u32(keys.epoch)
        .bytes(bytes);
    if let Some(v) = version {
        versions::mac_suffix(&mut w, v);
    }
    KeySet::mac(&keys.row, &[w.as_slice()])
}

/// Writes the gate configuration with `version` (from [`versions::next`]; the caller appends
/// the audit event that carries it, or keeps the stored version when only re-keying).
pub(crate) fn store_gate_config(
    conn: &Connection,
    vid: &[u8; 16],
    profile: &str,
    keys: &KeySet,
    cfg: &GateConfig,
    version: Option<i64>,
) -> Result<()> {
    let bytes = cfg.encode();
    let mac = gate_config_mac(vid, profile, keys, &bytes, version);
    conn.execute(
        "INSERT OR REPLACE INTO gate_config(profile_id, config, key_epoch, version, mac) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![profile, bytes, i64::from(keys.epoch), version, &mac[..]],
    )?;
    Ok(())
}

pub(crate) fn access_mac(
    vid: &[u8; 16],
    keys: &KeySet,
    id: &MemoryId,
    last: i64,
    count: i64,
    version: Option<i64>,
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(b"aim-vault/access/v1\0")
        .raw(vid)
        .raw(id.as_bytes())
        .i64(last)
        .i64(count);
    if let Some(v) = version {
        versions::mac_suffix(&mut w, v);
    }
    KeySet::mac(&keys.row, &[w.as_slice()])
}

/// Reads memory `seq`'s access record, checks its MAC (under `epoch`'s keys) and that it is
/// the latest version: a missing record is accepted only if no recall ever wrote one.
pub(crate) fn check_access_state(
    s: &Session<'_>,
    seq: i64,
    id: &MemoryId,
    epoch: u32,
) -> Result<Option<(i64, i64)>> {
    let st: Option<(i64, i64, Option<i64>, Vec<u8>)> = s
        .conn()
        .prepare_cached(
            "SELECT last_allowed_ms, allowed_count, version, mac FROM access_state WHERE seq = ?1",
        )?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let key = RowKey::access(id);
    let Some((last, count, version, mac)) = st else {
        versions::require(s.conn(), &key, None, "the access record")?;
        return Ok(None);
    };
    let keys = s
        .keys_for(epoch)
        .ok_or_else(|| VaultError::Integrity("unknown key epoch".into()))?;
    if !aim_crypto::kdf::ct_eq(&mac, &access_mac(s.vid(), keys, id, last, count, version)) {
        return Err(VaultError::Integrity(
            "the access record failed authentication".into(),
        ));
    }
    versions::require(s.conn(), &key, version, "the access record")?;
    Ok(Some((last, count)))
}

pub(crate) fn lockdown_exit_mac(
    vid: &[u8; 16],
    keys: &KeySet,
    profile: &str,
    epoch: i64,
    at: i64,
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(b"aim-vault/lockdown-exit/v1\0")
        .raw(vid)
        .str(profile)
        .i64(epoch)
        .i64(at)
        .u32(keys.epoch);
    KeySet::mac(&keys.row, &[w.as_slice()])
}

/// A sealed row ready to insert.
pub(crate) struct NewRow {
    pub(crate) header: RowHeader,
    pub(crate) content: Vec<u8>,
    pub(crate) meta: Vec<u8>,
    pub(crate) content_mac: [u8; 32],
    pub(crate) row_mac: [u8; 32],
    pub(crate) words: String,
    pub(crate) labels: Vec<(LabelKind, [u8; 16])>,
    pub(crate) commitment: [u8; 32],
}

/// Seals content and metadata for `header` under `keys` and computes every derived column.
pub(crate) fn seal_row(
    vid: &[u8; 16],
    keys: &KeySet,
    header: RowHeader,
    content: &[u8],
    meta: &SealedMeta,
) -> Result<NewRow> {
    let sealed_content = keys
        .content
        .seal(&header.aad(vid, Part::Content), content)?;
    let sealed_meta = keys
        .content
        .seal(&header.aad(vid, Part::Meta), &meta.encode())?;
    let cmac = record::content_mac(keys, &header.memory_id, content);
    let row_mac = header.row_mac(
        &keys.row,
        vid,
        &RowState::Live {
            content: &sealed_content,
            meta: &sealed_meta,
            content_mac: &cmac,
        },
    );
    let (words, labels) = index_entries(keys, content, meta);
    let commitment = vault_audit::commitment(&meta.commitment_salt, content);
    Ok(NewRow {
        header,
        content: sealed_content,
        meta: sealed_meta,
        content_mac: cmac,
        row_mac,
        words,
        labels,
        commitment,
    })
}

/// The search document (keyed word tokens) and label tokens of a memory, as stored in
/// `memory_words`/`memory_fts` and `memory_labels` (recomputed by `verify --deep`).
pub(crate) fn index_entries(
    keys: &KeySet,
    content: &[u8],
    meta: &SealedMeta,
) -> (String, Vec<(LabelKind, [u8; 16])>) {
    let mut texts: Vec<&str> = Vec::new();
    if let Ok(t) = std::str::from_utf8(content) {
        texts.push(t);
    }
    if let Ok(t) = std::str::from_utf8(&meta.metadata) {
        texts.push(t);
    }
    let words = search::document(&keys.search, &texts);
    let mut labels: Vec<(LabelKind, [u8; 16])> = meta
        .tags
        .iter()
        .map(|t| {
            (
                LabelKind::Tag,
                search::label_token(&keys.search, LabelKind::Tag, t),
            )
        })
        .chain(meta.intents.iter().map(|i| {
            (
                LabelKind::Intent,
                search::label_token(&keys.search, LabelKind::Intent, i),
            )
        }))
        .collect();
    labels.sort_by_key(|l| (l.0 as u8, l.1));
    labels.dedup();
    (words, labels)
}

pub(crate) fn insert_row(
    tx: &Connection,
    row: &NewRow,
    change: i64,
    store_leaf: Option<u64>,
) -> Result<i64> {
    let h = &row.header;
    tx.prepare_cached(
            "INSERT INTO memories(memory_id, profile_id, format, created_at_ms, created_by, classification, cooldown_ms,
                                  expires_at_ms, key_epoch, content, meta, content_mac, tombstoned_at_ms, row_mac, change_seq, store_leaf)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, ?13, ?14, ?15)",
        )?
        .execute(
            params![
                &h.memory_id.as_bytes()[..],
                h.profile,
                i64::from(h.format),
                h.created_at_ms,
                h.created_by as i64,
                i64::from(h.classification.level()),
                i64::try_from(h.policy.cooldown_ms).unwrap_or(i64::MAX),
                h.policy.expires_at_ms,
                i64::from(h.key_epoch),
                row.content,
                row.meta,
                &row.content_mac[..],
                &row.row_mac[..],
                change,
                store_leaf.and_then(|l| i64::try_from(l).ok())
            ])?;
    // RETURNING would open a statement journal, which makes FTS5 flush its buffer per row.
    let seq = tx.last_insert_rowid();
    insert_index(tx, seq, row)?;
    Ok(seq)
}

fn insert_index(tx: &Connection, seq: i64, row: &NewRow) -> Result<()> {
    if !row.words.is_empty() {
        tx.prepare_cached("INSERT INTO memory_words(seq, words) VALUES (?1, ?2)")?
            .execute(params![seq, row.words])?;
        tx.prepare_cached("INSERT INTO memory_fts(rowid, words) VALUES (?1, ?2)")?
            .execute(params![-seq, row.words])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO memory_labels(kind, token, seq) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, token) in &row.labels {
        stmt.execute(params![*kind as i64, &token[..], seq])?;
    }
    Ok(())
}

/// Removes a memory's search tokens and labels.
pub(crate) fn delete_index(tx: &Connection, seq: i64) -> Result<()> {
    tx.prepare_cached("DELETE FROM memory_fts WHERE rowid = ?1")?
        .execute([-seq])?;
    tx.prepare_cached("DELETE FROM memory_words WHERE seq = ?1")?
        .execute([seq])?;
    tx.prepare_cached("DELETE FROM memory_labels WHERE seq = ?1")?
        .execute([seq])?;
    Ok(())
}

/// Rewrites the full-text index into one segment, so the keyed word tokens of deleted
/// memories are gone from the file (an FTS5 delete only marks them; `secure_delete` then zeroes
/// the freed pages). Costs a pass over the index: used for tombstones and purges.
pub(crate) fn purge_index_segments(tx: &Connection) -> Result<()> {
    tx.execute("INSERT INTO memory_fts(memory_fts) VALUES ('optimize')", [])?;
    Ok(())
}

/// Rewrites a live row with new sealed columns (same id), replacing its index entries.
pub(crate) fn update_row(tx: &Connection, seq: i64, row: &NewRow, change: i64) -> Result<()> {
    let h = &row.header;
    tx.prepare_cached(
        "UPDATE memories SET key_epoch = ?1, content = ?2, meta = ?3, content_mac = ?4, row_mac = ?5, change_seq = ?6
         WHERE seq = ?7",
    )?
    .execute(params![
        i64::from(h.key_epoch),
        row.content,
        row.meta,
        &row.content_mac[..],
        &row.row_mac[..],
        change,
        seq
    ])?;
    delete_index(tx, seq)?;
    insert_index(tx, seq, row)
}
