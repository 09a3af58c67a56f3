//! Escrow and the dead-man switch wired to a `vault-store` vault: recovery-key slots, the
//! audited record store, recall through the vault's gates.
//!
//! Records (all in the profile's public record namespace so they can be read without the
//! profile's key, which is the whole point of recovery and release; every put is audited):
//!
//! | namespace | key | value |
//! |---|---|---|
//! | `escrow` | escrow id | [`EscrowRecord`] (JSON): ids, K, N, fingerprints, holder fingerprints, status |
//! | `deadman` | `state` | [`DeadmanState`] (JSON): heirs, interval, deadline, sealed packages, release key |
//!
//! Shares are never stored.

use std::path::{Path, PathBuf};

use aim_crypto::{Argon2Params, SecretBytes, Zeroizing};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vault_store::{
    Clock, FieldValue, RecallRequest, RotationReport, Sealing, Session, UnattendedEvent, Vault,
    VaultError,
};

use crate::deadman::{
    DeadmanConfig, DeadmanState, DeadmanStatus, PackagedMemory, ReleaseRecord, ReleasedPackage,
    heir_payload,
};
use crate::holder::{HolderRecipient, RecipientFingerprint};
use crate::shamir::{SplitSpec, check_parameters, combine_text, split};
use crate::share::KeyFingerprint;
use crate::{EscrowError, Result};

/// Record namespace of escrow metadata.
pub const ESCROW_NAMESPACE: &str = "escrow";
/// Record namespace of the dead-man switch.
pub const DEADMAN_NAMESPACE: &str = "deadman";
/// Record key of the dead-man state.
pub const DEADMAN_STATE_KEY: &str = "state";
/// Format tag of [`EscrowRecord`].
pub const ESCROW_RECORD_FORMAT: &str = "aim-escrow-record-v1";
/// Audit event a dead-man release appends (recorded without a session, see
/// `vault_store::unattended`): profile, heirs, generation, set_at_ms, deadline_ms, memories,
/// shares, escrow_id.
pub const DEADMAN_RELEASE_EVENT: &str = "deadman.release";
/// Audit event of a release refused before the deadline: profile, set_at_ms, remaining_ms.
pub const DEADMAN_RELEASE_REFUSED_EVENT: &str = "deadman.release.refused";

/// The vault's id as 32 hexadecimal digits (what shares carry).
pub fn vault_id_hex(vault: &Vault) -> String {
    hex::encode(vault.id())
}

/// Why an escrow exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscrowPurpose {
    /// Made by `aim vault escrow create` for chosen holders.
    Holders,
    /// Made by the dead-man switch for its heirs.
    Deadman,
}

/// Whether an escrow can still recover its profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EscrowStatus {
    /// Its shares recover the profile.
    Active,
    /// It was used for a recovery, or replaced by a newer dead-man escrow.
    Superseded {
        /// When (Unix ms).
        at_ms: i64,
        /// Why.
        reason: String,
    },
    /// Its recovery slot is gone (the data key was rotated, or the slot was removed).
    Invalidated {
        /// When (Unix ms), if known.
        at_ms: Option<i64>,
        /// Why.
        reason: String,
    },
}

impl EscrowStatus {
    /// `active`, `superseded` or `invalidated`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Superseded { .. } => "superseded",
            Self::Invalidated { .. } => "invalidated",
        }
    }
}

/// Who holds share `index` (by fingerprint only, never the share).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderRecord {
    /// The share's index x.
    pub index: u8,
    /// A label chosen by the owner (a name, a role).
    pub label: String,
    /// Fingerprint of the holder's age recipient; `None` when the share was issued in plain text.
    pub recipient: Option<RecipientFingerprint>,
}

/// Escrow metadata kept in the vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowRecord {
    /// Always [`ESCROW_RECORD_FORMAT`].
    pub format: String,
    /// The escrow id.
    pub escrow_id: String,
    /// The vault (hex id).
    pub vault_id: String,
    /// The profile.
    pub profile_id: String,
    /// Fingerprint of the recovery key the shares reconstruct.
    pub fingerprint: KeyFingerprint,
    /// The vault store's own fingerprint of the recovery key.
    pub store_fingerprint: String,
    /// K.
    pub threshold: u8,
    /// N.
    pub total: u8,
    /// The profile's key epoch when the escrow was made.
    pub key_epoch: u32,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Why it exists.
    pub purpose: EscrowPurpose,
    /// Who holds which share.
    pub holders: Vec<HolderRecord>,
    /// Whether it still works.
    #[serde(flatten)]
    pub status: EscrowStatus,
}

impl EscrowRecord {
    fn from_json(bytes: &[u8]) -> Result<Self> {
        let r: Self = serde_json::from_slice(bytes).map_err(|e| EscrowError::CorruptRecord {
            what: "escrow record",
            reason: e.to_string(),
        })?;
        if r.format != ESCROW_RECORD_FORMAT {
            return Err(EscrowError::CorruptRecord {
                what: "escrow record",
                reason: format!("unknown format {:?}", r.format),
            });
        }
        Ok(r)
    }

    fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| EscrowError::CorruptRecord {
            what: "escrow record",
            reason: e.to_string(),
        })
    }
}

/// One holder of a new escrow.
#[derive(Clone, Debug)]
pub struct HolderSpec {
    /// A label (a name or a role), used in file names: `a-z A-Z 0-9 - _ .`.
    pub label: String,
    /// Encrypt the share to this recipient; `None` issues the share in plain text.
    pub recipient: Option<HolderRecipient>,
}

/// A share as handed out by [`create_escrow`].
pub struct IssuedShare {
    /// The share's index x.
    pub index: u8,
    /// The holder's label.
    pub label: String,
    /// The holder's recipient fingerprint, if encrypted.
    pub recipient: Option<RecipientFingerprint>,
    /// An ASCII-armored age file (encrypted) or the share text `aim-share-v1:...` (plain).
    pub content: Zeroizing<String>,
}

impl IssuedShare {
    /// Whether [`IssuedShare::content`] is encrypted to the holder.
    pub fn is_encrypted(&self) -> bool {
        self.recipient.is_some()
    }
}

impl std::fmt::Debug for IssuedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedShare")
            .field("index", &self.index)
            .field("label", &self.label)
            .field("recipient", &self.recipient)
            .field("content", &"..")
            .finish()
    }
}

/// A new escrow: its record (stored) and the shares (to hand out; never stored).
#[derive(Debug)]
pub struct CreatedEscrow {
    /// The stored record.
    pub record: EscrowRecord,
    /// One share per holder, in holder order.
    pub shares: Vec<IssuedShare>,
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty()
        || label.len() > 64
        || label.starts_with('.')
        || !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(EscrowError::InvalidDeadman(format!(
            "holder label {label:?} must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.' (not starting with '.')"
        )));
    }
    Ok(())
}

/// Creates an escrow of `session`'s profile: a new recovery slot whose key is split into one
/// share per holder (N = `holders.len()`), any `threshold` of which recover the profile.
/// Audited by the vault (`recovery.create`, `record.put`).
pub fn create_escrow(
    session: &mut Session<'_>,
    threshold: u8,
    holders: &[HolderSpec],
    clock: &dyn Clock,
) -> Result<CreatedEscrow> {
    create_inner(
        session,
        threshold,
        holders,
        EscrowPurpose::Holders,
        true,
        clock,
    )
}

fn create_inner(
    session: &mut Session<'_>,
    threshold: u8,
    holders: &[HolderSpec],
    purpose: EscrowPurpose,
    encrypt: bool,
    clock: &dyn Clock,
) -> Result<CreatedEscrow> {
    let (threshold, total) = check_parameters(usize::from(threshold), holders.len())?;
    for (i, h) in holders.iter().enumerate() {
        check_label(&h.label)?;
        if holders[..i].iter().any(|o| o.label == h.label) {
            return Err(EscrowError::InvalidDeadman(format!(
                "holder label {:?} is used twice",
                h.label
            )));
        }
    }
    let vault_id = vault_id_hex(session.vault());
    let profile = session.profile().to_owned();
    let escrow_id = Uuid::new_v4();
    let spec = SplitSpec {
        escrow_id,
        vault_id: vault_id.clone(),
        profile_id: profile.clone(),
        threshold,
        total,
    };
    // Check recipients and ids before the slot exists, so a bad input leaves nothing behind.
    if profile.is_empty() || profile.len() > crate::share::MAX_ID_LEN {
        return Err(EscrowError::InvalidId {
            what: "profile id",
            len: profile.len(),
        });
    }
    let (key, store_fingerprint) = session.create_recovery_key(&escrow_id.to_string())?;
    let result = (|| {
        let shares = split(&spec, &key)?;
        let mut issued = Vec::with_capacity(shares.len());
        for (share, holder) in shares.iter().zip(holders) {
            let text = share.to_text();
            let (content, recipient) = match (&holder.recipient, encrypt) {
                (Some(r), true) => (
                    Zeroizing::new(r.encrypt_armored(text.as_bytes())?),
                    Some(r.fingerprint()),
                ),
                (Some(r), false) => (text, Some(r.fingerprint())),
                (None, _) => (text, None),
            };
            issued.push(IssuedShare {
                index: share.index(),
                label: holder.label.clone(),
                recipient,
                content,
            });
        }
        let record = EscrowRecord {
            format: ESCROW_RECORD_FORMAT.to_owned(),
            escrow_id: escrow_id.to_string(),
            vault_id: vault_id.clone(),
            profile_id: profile.clone(),
            fingerprint: KeyFingerprint::of(&key),
            store_fingerprint: store_fingerprint.clone(),
            threshold,
            total,
            key_epoch: session.key_epoch(),
            created_at_ms: clock.now_ms(),
            purpose,
            holders: issued
                .iter()
                .map(|s| HolderRecord {
                    index: s.index,
                    label: s.label.clone(),
                    recipient: s.recipient.clone(),
                })
                .collect(),
            status: EscrowStatus::Active,
        };
        session.put_record(
            ESCROW_NAMESPACE,
            &record.escrow_id,
            &record.to_json()?,
            Sealing::Public,
        )?;
        Ok(CreatedEscrow {
            record,
            shares: issued,
        })
    })();
    if result.is_err() {
        // Do not leave a recovery slot nobody holds shares for.
        let _ = session.remove_recovery_slot(&escrow_id.to_string());
    }
    result
}

/// The escrows of `profile`, oldest first, with their effective status: an escrow whose
/// recovery slot no longer exists is reported as invalidated even if its record says active.
/// Needs no key.
pub fn list_escrows(vault: &Vault, profile: &str) -> Result<Vec<EscrowRecord>> {
    let info = vault
        .profiles()?
        .into_iter()
        .find(|p| p.profile_id == profile)
        .ok_or_else(|| VaultError::ProfileNotFound(profile.to_owned()))?;
    let mut out = Vec::new();
    for key in vault.list_public_records(profile, ESCROW_NAMESPACE)? {
        let Some(bytes) = vault.get_public_record(profile, ESCROW_NAMESPACE, &key)? else {
            continue;
        };
        let mut record = EscrowRecord::from_json(&bytes)?;
        if record.status == EscrowStatus::Active
            && !info
                .slots
                .iter()
                .any(|s| *s == format!("recovery:{}", record.escrow_id))
        {
            record.status = EscrowStatus::Invalidated {
                at_ms: None,
                reason: if info.key_epoch != record.key_epoch {
                    format!(
                        "the data key was rotated (epoch {} -> {})",
                        record.key_epoch, info.key_epoch
                    )
                } else {
                    "its recovery slot was removed".to_owned()
                },
            };
        }
        out.push(record);
    }
    out.sort_by(|a, b| {
        a.created_at_ms
            .cmp(&b.created_at_ms)
            .then(a.escrow_id.cmp(&b.escrow_id))
    });
    Ok(out)
}

/// One escrow by id, with its effective status.
pub fn get_escrow(vault: &Vault, profile: &str, escrow_id: &str) -> Result<EscrowRecord> {
    list_escrows(vault, profile)?
        .into_iter()
        .find(|r| r.escrow_id == escrow_id)
        .ok_or_else(|| EscrowError::UnknownEscrow {
            profile: profile.to_owned(),
            escrow_id: escrow_id.to_owned(),
        })
}

fn set_status(
    session: &mut Session<'_>,
    record: &mut EscrowRecord,
    status: EscrowStatus,
) -> Result<()> {
    record.status = status;
    session.put_record(
        ESCROW_NAMESPACE,
        &record.escrow_id,
        &record.to_json()?,
        Sealing::Public,
    )?;
    Ok(())
}

/// What [`recover`] did.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The escrow used (now superseded).
    pub record: EscrowRecord,
}

/// Recovers a profile from share texts: combines them (validating everything first), checks
/// they belong to this vault and to an active escrow, unlocks the profile with the recovered
/// key, sets `new_passphrase` (the old one stops working), marks the escrow superseded and
/// removes its recovery slot. Returns the unlocked session.
pub fn recover<'v, S: AsRef<str>>(
    vault: &'v Vault,
    share_texts: &[S],
    new_passphrase: SecretBytes,
    params: Option<Argon2Params>,
    clock: &dyn Clock,
) -> Result<(Session<'v>, Recovery)> {
    if new_passphrase.is_empty() {
        return Err(EscrowError::Vault(
            "the new passphrase must not be empty".into(),
        ));
    }
    let (header, key) = combine_text(share_texts)?;
    let this_vault = vault_id_hex(vault);
    if header.vault_id != this_vault {
        return Err(EscrowError::WrongVault {
            shares_vault: header.vault_id,
            this_vault,
        });
    }
    let escrow_id = header.escrow_id.to_string();
    let mut record = get_escrow(vault, &header.profile_id, &escrow_id)?;
    if record.fingerprint != header.fingerprint {
        return Err(EscrowError::CorruptRecord {
            what: "escrow record",
            reason: "its key fingerprint differs from the shares'".into(),
        });
    }
    match &record.status {
        EscrowStatus::Active => {}
        EscrowStatus::Superseded { reason, .. } => {
            return Err(EscrowError::EscrowNotActive {
                escrow_id,
                status: "superseded",
                hint: format!(" ({reason}); use the shares of a newer escrow"),
            });
        }
        EscrowStatus::Invalidated { reason, .. } => {
            return Err(EscrowError::EscrowNotActive {
                escrow_id,
                status: "invalidated",
                hint: format!(" ({reason}); use the shares of an escrow made after the rotation"),
            });
        }
    }
    let mut session = vault.unlock_with_recovery_key(&header.profile_id, &escrow_id, &key)?;
    drop(key);
    session.change_passphrase(new_passphrase, params)?;
    set_status(
        &mut session,
        &mut record,
        EscrowStatus::Superseded {
            at_ms: clock.now_ms(),
            reason: "used to recover the profile".into(),
        },
    )?;
    session.remove_recovery_slot(&escrow_id)?;
    Ok((session, Recovery { record }))
}

/// After a data-key rotation: marks the escrows the rotation invalidated (their recovery slots
/// are gone) and returns their records, so the caller can say so and offer to re-escrow.
pub fn record_rotation(
    session: &mut Session<'_>,
    report: &RotationReport,
    clock: &dyn Clock,
) -> Result<Vec<EscrowRecord>> {
    let mut out = Vec::new();
    let profile = session.profile().to_owned();
    for id in &report.invalidated_escrows {
        let Some(rec) = session.get_record(ESCROW_NAMESPACE, id)? else {
            continue;
        };
        let mut record = EscrowRecord::from_json(rec.value.expose())?;
        if record.profile_id != profile {
            continue;
        }
        set_status(
            session,
            &mut record,
            EscrowStatus::Invalidated {
                at_ms: Some(clock.now_ms()),
                reason: format!(
                    "the data key was rotated (epoch {} -> {})",
                    report.from_epoch, report.to_epoch
                ),
            },
        )?;
        out.push(record);
    }
    Ok(out)
}

/// Writes each issued share to `dir` as `<profile>-<escrow8>-share<i>-<label>.age` (encrypted)
/// or `.share` (plain), with mode 0600, refusing to overwrite. Returns the paths.
pub fn write_shares(dir: &Path, created: &CreatedEscrow) -> Result<Vec<PathBuf>> {
    let short = &created.record.escrow_id[..8];
    let mut paths = Vec::new();
    for s in &created.shares {
        let ext = if s.is_encrypted() { "age" } else { "share" };
        let name = format!(
            "{}-{short}-share{}-{}.{ext}",
            created.record.profile_id, s.index, s.label
        );
        let path = dir.join(name);
        write_private(&path, s.content.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// Writes `bytes` to a new file readable only by its owner (0600 on Unix).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| EscrowError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dead-man switch.

fn load_state_public(vault: &Vault, profile: &str) -> Result<Option<DeadmanState>> {
    match vault.get_public_record(profile, DEADMAN_NAMESPACE, DEADMAN_STATE_KEY)? {
        Some(bytes) => Ok(Some(DeadmanState::from_json(&bytes)?)),
        None => Ok(None),
    }
}

fn load_state_authenticated(session: &Session<'_>) -> Result<Option<DeadmanState>> {
    match session.get_record(DEADMAN_NAMESPACE, DEADMAN_STATE_KEY)? {
        Some(rec) => Ok(Some(DeadmanState::from_json(rec.value.expose())?)),
        None => Ok(None),
    }
}

fn save_state(session: &mut Session<'_>, state: &DeadmanState) -> Result<()> {
    session.put_record(
        DEADMAN_NAMESPACE,
        DEADMAN_STATE_KEY,
        &state.to_json()?,
        Sealing::Public,
    )?;
    Ok(())
}

/// The releases of the switch `state` (the one armed at `state.set_at_ms`) recorded in the
/// vault's audit log, oldest first.
pub fn deadman_releases(
    vault: &Vault,
    profile: &str,
    state: &DeadmanState,
) -> Result<Vec<ReleaseRecord>> {
    let int = |ev: &vault_store::Event, name: &str| ev.get(name).and_then(FieldValue::as_int);
    let mut out = Vec::new();
    for entry in vault.unattended_events(profile, DEADMAN_RELEASE_EVENT)? {
        let ev = &entry.event;
        if int(ev, "set_at_ms") != Some(state.set_at_ms) {
            continue; // a release of an earlier switch
        }
        out.push(ReleaseRecord {
            leaf: entry.leaf,
            at_ms: ev.time_ms,
            heirs: int(ev, "heirs")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            generation: int(ev, "generation")
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        });
    }
    Ok(out)
}

fn ensure_not_released(vault: &Vault, profile: &str, state: &DeadmanState) -> Result<()> {
    state.ensure_not_released()?;
    match deadman_releases(vault, profile, state)?.first() {
        Some(r) => Err(EscrowError::AlreadyReleased {
            released_at_ms: r.at_ms,
        }),
        None => Ok(()),
    }
}

/// Recalls the chosen memories (through the vault's gates) and, if shares are released, makes
/// a fresh dead-man escrow (superseding the previous one); returns one payload per heir.
fn prepare_payloads(
    session: &mut Session<'_>,
    config: &DeadmanConfig,
    previous_escrow: Option<&str>,
    clock: &dyn Clock,
) -> Result<(Vec<crate::deadman::HeirPayload>, Option<String>)> {
    let vault_id = vault_id_hex(session.vault());
    let profile = session.profile().to_owned();
    let mut memories = Vec::with_capacity(config.release.memory_ids.len());
    for id in &config.release.memory_ids {
        let memory_id = id.parse()?;
        let recalled = session.recall(
            memory_id,
            RecallRequest::new("dead-man switch: preparing heir packages").requester("deadman"),
        )?;
        memories.push(PackagedMemory {
            id: id.clone(),
            content_b64: aim_crypto::b64::encode(recalled.content.expose()),
        });
    }
    let mut shares: Vec<Option<String>> = vec![None; config.heirs.len()];
    let mut escrow_id = None;
    if let Some(k) = config.release.share_threshold {
        let holders: Vec<HolderSpec> = config
            .heirs
            .iter()
            .map(|h| {
                Ok(HolderSpec {
                    label: h.name.clone(),
                    recipient: Some(h.recipient()?),
                })
            })
            .collect::<Result<_>>()?;
        // Plain share text: it travels inside the heir's package, which is age-encrypted to
        // that heir.
        let created = create_inner(session, k, &holders, EscrowPurpose::Deadman, false, clock)?;
        for (slot, s) in shares.iter_mut().zip(&created.shares) {
            *slot = Some(s.content.to_string());
        }
        escrow_id = Some(created.record.escrow_id.clone());
    }
    if let Some(prev) = previous_escrow {
        if let Some(rec) = session.get_record(ESCROW_NAMESPACE, prev)? {
            let mut record = EscrowRecord::from_json(rec.value.expose())?;
            if record.status == EscrowStatus::Active {
                set_status(
                    session,
                    &mut record,
                    EscrowStatus::Superseded {
                        at_ms: clock.now_ms(),
                        reason: "replaced by a newer dead-man switch escrow".into(),
                    },
                )?;
            }
        }
        session.remove_recovery_slot(prev)?;
    }
    let now = clock.now_ms();
    let payloads = config
        .heirs
        .iter()
        .zip(shares)
        .map(|(heir, share)| heir_payload(&vault_id, &profile, heir, memories.clone(), share, now))
        .collect();
    Ok((payloads, escrow_id))
}

/// Sets (or replaces) the dead-man switch of `session`'s profile. Refuses to replace a switch
/// whose deadline has passed unless `replace_overdue` (its packages may have been released).
pub fn deadman_set(
    session: &mut Session<'_>,
    config: DeadmanConfig,
    replace_overdue: bool,
    clock: &dyn Clock,
) -> Result<DeadmanState> {
    config.validate()?;
    let now = clock.now_ms();
    let previous = load_state_authenticated(session)?;
    if let Some(prev) = previous
        .as_ref()
        .filter(|p| p.is_due(now) && !replace_overdue)
    {
        return Err(EscrowError::Overdue {
            overdue_ms: now - prev.deadline_ms,
            hint: "; to set a new switch anyway, pass --replace-overdue",
        });
    }
    if let Some(prev) = previous.as_ref().filter(|_| !replace_overdue) {
        ensure_not_released(session.vault(), session.profile(), prev)?;
    }
    let prev_escrow = previous.as_ref().and_then(|p| p.escrow_id.clone());
    let (payloads, escrow_id) = prepare_payloads(session, &config, prev_escrow.as_deref(), clock)?;
    let state = DeadmanState::arm(
        &vault_id_hex(session.vault()),
        session.profile(),
        config,
        &payloads,
        escrow_id,
        now,
    )?;
    save_state(session, &state)?;
    Ok(state)
}

/// Drops tombstoned memories from an armed switch's release list (a tombstoned memory must
/// never be released, and must not make check-ins fail). Returns the ids dropped.
fn drop_tombstoned(session: &Session<'_>, config: &mut DeadmanConfig) -> Result<Vec<String>> {
    let mut dropped = Vec::new();
    let mut kept = Vec::with_capacity(config.release.memory_ids.len());
    for id in std::mem::take(&mut config.release.memory_ids) {
        let info = session.memory_info(id.parse()?)?;
        if info.is_some_and(|m| m.tombstoned_at_ms.is_some()) {
            dropped.push(id);
        } else {
            kept.push(id);
        }
    }
    config.release.memory_ids = kept;
    Ok(dropped)
}

/// What [`tombstone`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TombstoneOutcome {
    /// Whether the memory was tombstoned now (`false`: it already was).
    pub tombstoned: bool,
    /// Whether an armed dead-man switch carried it and its packages were re-sealed without it.
    pub deadman_resealed: bool,
    /// Whether the switch had nothing left to release and was removed.
    pub deadman_removed: bool,
}

/// Tombstones a memory and removes it from an armed dead-man switch: the heirs' packages are
/// re-sealed without it (the deadline does not move), or, when the switch has nothing left to
/// release, the switch is removed. Use this instead of [`Session::tombstone`] wherever a
/// dead-man switch may be set.
pub fn tombstone(
    session: &mut Session<'_>,
    id: vault_store::MemoryId,
    reason: &str,
    clock: &dyn Clock,
) -> Result<TombstoneOutcome> {
    let tombstoned = session.tombstone(id, reason)?;
    let mut out = TombstoneOutcome {
        tombstoned,
        deadman_resealed: false,
        deadman_removed: false,
    };
    let Some(mut state) = load_state_authenticated(session)? else {
        return Ok(out);
    };
    if state.released_at_ms.is_some()
        || ensure_not_released(session.vault(), session.profile(), &state).is_err()
    {
        return Ok(out); // already released: nothing can take it back
    }
    if drop_tombstoned(session, &mut state.config)?.is_empty() {
        return Ok(out);
    }
    if state.config.validate().is_err() {
        session.delete_record(DEADMAN_NAMESPACE, DEADMAN_STATE_KEY)?;
        out.deadman_removed = true;
        return Ok(out);
    }
    let (payloads, escrow_id) = prepare_payloads(
        session,
        &state.config,
        state.escrow_id.clone().as_deref(),
        clock,
    )?;
    state.reseal(&payloads, escrow_id)?;
    save_state(session, &state)?;
    out.deadman_resealed = true;
    Ok(out)
}

/// The owner checks in: moves the deadline to now + interval and re-prepares the packages with
/// current contents (tombstoned memories are left out). Fails if no switch is set or if the deadline has already passed (from
/// then on the packages may have been released, and nothing can take a release back).
pub fn deadman_check_in(session: &mut Session<'_>, clock: &dyn Clock) -> Result<DeadmanState> {
    let now = clock.now_ms();
    let mut state = load_state_authenticated(session)?.ok_or(EscrowError::DeadmanNotSet)?;
    ensure_not_released(session.vault(), session.profile(), &state)?;
    if state.is_due(now) {
        return Err(EscrowError::Overdue {
            overdue_ms: now - state.deadline_ms,
            hint: "; set a new switch with `aim vault deadman set --replace-overdue`",
        });
    }
    if !drop_tombstoned(session, &mut state.config)?.is_empty() && state.config.validate().is_err()
    {
        return Err(EscrowError::InvalidDeadman(
            "every memory of the switch was tombstoned and it releases no shares: \
             set a new switch (`aim vault deadman set --replace-overdue`)"
                .into(),
        ));
    }
    let (payloads, escrow_id) = prepare_payloads(
        session,
        &state.config,
        state.escrow_id.clone().as_deref(),
        clock,
    )?;
    state.check_in(&payloads, escrow_id, now)?;
    save_state(session, &state)?;
    Ok(state)
}

/// The switch's status, readable without a key, including the releases recorded in the audit
/// log (a released switch shows `released_at_ms` and is no longer armed). `None` when no
/// switch is set.
pub fn deadman_status(
    vault: &Vault,
    profile: &str,
    clock: &dyn Clock,
) -> Result<Option<DeadmanStatus>> {
    let Some(state) = load_state_public(vault, profile)? else {
        return Ok(None);
    };
    let releases = deadman_releases(vault, profile, &state)?;
    Ok(Some(state.status_with(clock.now_ms(), releases)))
}

/// Releases the packages of `profile`'s switch, needing no key: refuses before the deadline
/// (audited as `deadman.release.refused`); after it, appends a `deadman.release` event to the
/// vault's audit log (committed with its index row, see `vault_store::unattended`) and only
/// then returns one armored age file per heir (only that heir can decrypt it). If the event
/// cannot be recorded, nothing is released. Once released, check-ins are refused for good; a
/// later release re-issues the same packages and is audited again.
pub fn deadman_release(
    vault: &Vault,
    profile: &str,
    clock: &dyn Clock,
) -> Result<Vec<ReleasedPackage>> {
    let mut state = load_state_public(vault, profile)?.ok_or(EscrowError::DeadmanNotSet)?;
    if state.released_at_ms.is_none() {
        state.released_at_ms = deadman_releases(vault, profile, &state)?
            .first()
            .map(|r| r.at_ms);
    }
    let now = clock.now_ms();
    let packages = match state.release(now) {
        Ok(p) => p,
        Err(e @ EscrowError::NotYetDue { remaining_ms, .. }) => {
            vault.record_unattended(
                &UnattendedEvent::new(DEADMAN_RELEASE_REFUSED_EVENT, profile)
                    .int("set_at_ms", state.set_at_ms)
                    .int("remaining_ms", remaining_ms),
            )?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let mut event = UnattendedEvent::new(DEADMAN_RELEASE_EVENT, profile)
        .int("heirs", i64::try_from(packages.len()).unwrap_or(i64::MAX))
        .int(
            "generation",
            i64::try_from(state.generation).unwrap_or(i64::MAX),
        )
        .int("set_at_ms", state.set_at_ms)
        .int("deadline_ms", state.deadline_ms)
        .int(
            "memories",
            i64::try_from(state.config.release.memory_ids.len()).unwrap_or(i64::MAX),
        )
        .flag("shares", state.config.release.share_threshold.is_some());
    if let Some(id) = &state.escrow_id {
        event = event.label("escrow_id", id);
    }
    vault.record_unattended(&event)?;
    Ok(packages)
}

/// Writes released packages to `dir` as `<profile>-deadman-<heir>.age` (0600, no overwrite).
pub fn write_packages(
    dir: &Path,
    profile: &str,
    packages: &[ReleasedPackage],
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for p in packages {
        let path = dir.join(format!("{profile}-deadman-{}.age", p.heir));
        write_private(&path, p.armored.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}
