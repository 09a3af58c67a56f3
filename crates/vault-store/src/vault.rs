//! [`Vault`]: one SQLite file holding profiles, memories and the audit log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aim_crypto::{AgentKeypair, SecretKey};
use rusqlite::{Connection, OptionalExtension, params};

use crate::audit::{self, Event};
use crate::clock::{Clock, SystemClock};
use crate::codec::Writer;
use crate::db::{self, Durability};
use crate::gates::{GateConfig, Gates};
use crate::keys::{Enrollment, KeySet, KeySource, Slot};
use crate::model::validate_profile_id;
use crate::session::Session;
use crate::witness::{SharedWitness, default_witness_path};
use crate::{Result, VaultError};
use vault_audit::FileWitness;

/// How often a session signs a tree head: after this many audited operations...
pub const HEAD_EVERY_OPS: u32 = 256;
/// ... or when this much time has passed since its last head (checked at each operation).
pub const HEAD_EVERY_MS: i64 = 60_000;

/// Options for opening a vault.
#[derive(Clone)]
pub struct VaultOptions {
    clock: Arc<dyn Clock>,
    gates: Gates,
    durability: Durability,
    witness_file: WitnessFile,
    witnesses: Vec<SharedWitness>,
}

/// Where the vault's own witness file lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WitnessFile {
    /// `<vault file>.witness` (the default).
    Beside,
    /// This path.
    At(PathBuf),
    /// None (only with another witness, or for throwaway vaults).
    Off,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            gates: Gates::default(),
            durability: Durability::Full,
            witness_file: WitnessFile::Beside,
            witnesses: Vec::new(),
        }
    }
}

impl std::fmt::Debug for VaultOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultOptions")
            .field("gates", &self.gates)
            .field("durability", &self.durability)
            .field("witness_file", &self.witness_file)
            .field("witnesses", &self.witnesses.len())
            .finish_non_exhaustive()
    }
}

impl VaultOptions {
    /// Keeps the vault's witness file at `path` instead of beside the vault (for example on
    /// another disk or a write-once mount).
    pub fn witness_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.witness_file = WitnessFile::At(path.into());
        self
    }

    /// Keeps no witness file. Truncation past the latest head and whole-file rollback are
    /// then detected only by other witnesses ([`VaultOptions::witness`]) or heads kept by hand.
    pub fn no_witness_file(mut self) -> Self {
        self.witness_file = WitnessFile::Off;
        self
    }

    /// Also publishes every signed head to `witness` (for example the AIM server) and checks
    /// the log against what it holds.
    pub fn witness(mut self, witness: SharedWitness) -> Self {
        self.witnesses.push(witness);
        self
    }

    /// Uses `clock` for every timestamp, cooldown and expiry.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Plugs in gate implementations.
    pub fn gates(mut self, gates: Gates) -> Self {
        self.gates = gates;
        self
    }

    /// Sets the commit durability (default [`Durability::Full`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Opens the vault at `path`, creating it if there is none.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Vault> {
        let path = path.as_ref();
        match db::create_file(path) {
            Ok(()) => self.open_at(path),
            Err(VaultError::VaultExists(_)) => self.open_existing(path),
            Err(e) => Err(e),
        }
    }

    /// Creates a new vault at `path`; fails if a file is already there.
    pub fn create(self, path: impl AsRef<Path>) -> Result<Vault> {
        db::create_file(path.as_ref())?;
        self.open_at(path.as_ref())
    }

    /// Opens an existing vault; fails if there is none, or if the file is empty (an empty
    /// file someone else created never silently becomes a vault).
    pub fn open_existing(self, path: impl AsRef<Path>) -> Result<Vault> {
        let path = path.as_ref();
        let wal = {
            let mut p = path.as_os_str().to_owned();
            p.push("-wal");
            PathBuf::from(p)
        };
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        if path.exists() && len(path) == 0 && len(&wal) == 0 {
            return Err(VaultError::Schema(format!(
                "{} is an empty file, not a vault (remove it to create a vault there)",
                path.display()
            )));
        }
        self.open_at(path)
    }

    fn open_at(self, path: &Path) -> Result<Vault> {
        let conn = db::open(path, self.durability)?;
        let vault_id = read_vault_id(&conn)?;
        let mut witnesses: Vec<SharedWitness> = match self.witness_file {
            WitnessFile::Beside => vec![Arc::new(FileWitness::new(default_witness_path(path)))],
            WitnessFile::At(p) => vec![Arc::new(FileWitness::new(p))],
            WitnessFile::Off => Vec::new(),
        };
        witnesses.extend(self.witnesses);
        Ok(Vault {
            conn,
            path: path.to_owned(),
            vault_id,
            clock: self.clock,
            gates: self.gates,
            witnesses,
        })
    }
}

pub(crate) fn read_vault_id(conn: &Connection) -> Result<[u8; 16]> {
    let v: Vec<u8> = conn
        .query_row(
            "SELECT value FROM vault_meta WHERE key='vault_id'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| VaultError::corrupt("vault metadata", "no vault id"))?;
    v.as_slice()
        .try_into()
        .map_err(|_| VaultError::corrupt("vault metadata", "vault id is not 16 bytes"))
}

/// A profile as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    /// Its id.
    pub profile_id: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Current key epoch (1 at creation, +1 per rotation).
    pub key_epoch: u32,
    /// Its key slots (`passphrase`, `keyfile`, `external:tpm2`, `recovery:<escrow>`).
    pub slots: Vec<String>,
    /// Whether a key rotation is in progress.
    pub rotation_pending: bool,
}

/// The lockdown state of the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockdownStatus {
    /// The latest lockdown epoch (0 = never locked down).
    pub epoch: u64,
    /// When it was entered (Unix ms).
    pub entered_at_ms: Option<i64>,
    /// The reason given.
    pub reason: Option<String>,
    /// Profiles that have left this lockdown (their recalls work again).
    pub exited_profiles: Vec<String>,
}

/// An encrypted, classified memory vault in one SQLite file.
///
/// Several processes may open the same file: writes take SQLite's write lock up front and
/// wait for each other (WAL, `busy_timeout`).
pub struct Vault {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) vault_id: [u8; 16],
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) gates: Gates,
    pub(crate) witnesses: Vec<SharedWitness>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault at `path` with default options, creating it if there is none.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        VaultOptions::default().open(path)
    }

    /// Options builder (clock, gates, durability).
    pub fn options() -> VaultOptions {
        VaultOptions::default()
    }

    /// The vault's random 128-bit id (bound into every key slot and record).
    pub fn id(&self) -> [u8; 16] {
        self.vault_id
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The witnesses signed heads are published to (the witness file first, by default).
    pub fn witnesses(&self) -> &[SharedWitness] {
        &self.witnesses
    }

    /// Checks that the audit log extends every witness's latest head (see
    /// [`crate::witness`]); [`VaultError::Witness`] names the first that it does not.
    pub fn check_witnesses(&self) -> Result<()> {
        crate::witness::check_all(&self.conn, &self.witnesses)
    }

    /// The gates plugged in.
    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    /// Replaces the plugged-in gates.
    pub fn set_gates(&mut self, gates: Gates) {
        self.gates = gates;
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The underlying connection, for read-only inspection (tests, tools).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// All profiles.
    pub fn profiles(&self) -> Result<Vec<ProfileInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.profile_id, p.created_at_ms, p.key_epoch,
                    (SELECT count(*) FROM rotations r WHERE r.profile_id = p.profile_id)
             FROM profiles p ORDER BY p.profile_id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::new();
        for (profile_id, created_at_ms, epoch, rot) in rows {
            let key_epoch = epoch_u32(epoch)?;
            let slots = self
                .slots(&profile_id, key_epoch)?
                .into_iter()
                .map(|s| s.slot_id)
                .collect();
            out.push(ProfileInfo {
                profile_id,
                created_at_ms,
                key_epoch,
                slots,
                rotation_pending: rot > 0,
            });
        }
        Ok(out)
    }

    pub(crate) fn profile_epoch(&self, profile: &str) -> Result<u32> {
        let e: Option<i64> = self
            .conn
            .prepare_cached("SELECT key_epoch FROM profiles WHERE profile_id = ?1")?
            .query_row([profile], |r| r.get(0))
            .optional()?;
        epoch_u32(e.ok_or_else(|| VaultError::ProfileNotFound(profile.to_owned()))?)
    }

    pub(crate) fn slots(&self, profile: &str, epoch: u32) -> Result<Vec<Slot>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT slot_id, kind, key_epoch, kdf_params, salt, source_blob, wrapped_dk
             FROM key_slots WHERE profile_id = ?1 AND key_epoch = ?2 ORDER BY slot_id",
        )?;
        let rows = stmt.query_map(params![profile, i64::from(epoch)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
                r.get::<_, Vec<u8>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (slot_id, kind, e, kdf_params, salt, source_blob, wrapped_dk) = row?;
            out.push(Slot {
                slot_id,
                kind,
                key_epoch: epoch_u32(e)?,
                kdf_params,
                salt,
                source_blob,
                wrapped_dk,
            });
        }
        Ok(out)
    }

    /// Checks every key slot of `profile` for `keys`' epoch (MAC and version).
    pub(crate) fn check_slots(&self, profile: &str, keys: &KeySet) -> Result<()> {
        for slot in self.slots(profile, keys.epoch)? {
            check_slot(&self.conn, &self.vault_id, profile, &slot, keys)?;
        }
        Ok(())
    }

    /// Creates a profile with a fresh data key wrapped under `enrollment`, and returns an
    /// unlocked session for it.
    pub fn create_profile(&self, profile: &str, enrollment: Enrollment) -> Result<Session<'_>> {
        validate_profile_id(profile)?;
        if self.profile_epoch(profile).is_ok() {
            return Err(VaultError::ProfileExists(profile.to_owned()));
        }
        let epoch = 1;
        let dk = SecretKey::generate()?;
        let slot = Slot::enroll(&self.vault_id, profile, epoch, &enrollment, &dk)?;
        let keys = KeySet::derive(&self.vault_id, epoch, dk);
        let signer = AgentKeypair::generate()?;
        let signer_sealed = keys.content.seal(
            &signer_aad(&self.vault_id, profile, epoch),
            &signer.seed()[..],
        )?;
        let now = self.now();
        let tx = db::write_tx(&self.conn)?;
        let change = db::next_changes(&tx, 1)?;
        tx.execute(
            "INSERT INTO profiles(profile_id, created_at_ms, key_epoch, key_check, signer_sealed, signer_public, change_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                profile,
                now,
                i64::from(epoch),
                &keys.key_check(&self.vault_id, profile)[..],
                signer_sealed,
                &signer.public_key().as_bytes()[..],
                change
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                VaultError::ProfileExists(profile.to_owned())
            }
            e => e.into(),
        })?;
        let version = crate::versions::next(&tx)?;
        insert_slot(&tx, &self.vault_id, profile, &slot, &keys, version, now)?;
        crate::session::store_gate_config(
            &tx,
            &self.vault_id,
            profile,
            &keys,
            &GateConfig::default(),
            Some(version),
        )?;
        crate::versions::append(
            &tx,
            Event::new("profile.create", now)
                .with("profile", profile)
                .with("key_epoch", i64::from(epoch))
                .with("slot", slot.slot_id.as_str()),
            &[
                crate::versions::RowKey::slot(profile, &slot.slot_id, epoch),
                crate::versions::RowKey::gate_config(profile),
            ],
            version,
        )?;
        let lockdown: i64 = tx.query_row(
            "SELECT coalesce(max(epoch), 0) FROM lockdown_log",
            [],
            |r| r.get(0),
        )?;
        let size = vault_audit::AuditLog::tree_size(&tx)?;
        crate::session::write_profile_state(&tx, &self.vault_id, profile, &keys, lockdown, size)?;
        let announced = vault_audit::AuditLog::key_epochs(&tx)?.is_empty();
        if announced {
            vault_audit::AuditLog::announce_key(&tx, &signer.public_key(), None, now)?;
        }
        tx.commit()?;
        let mut session = Session::new(self, profile.to_owned(), keys, None, signer);
        session.created = true;
        Ok(session)
    }

    /// Unlocks `profile` with `source`: derives the key-encryption key once and unwraps the
    /// data key. A wrong key is audited (`profile.unlock.failed`) and returned as
    /// [`VaultError::WrongKey`].
    pub fn unlock(&self, profile: &str, source: KeySource) -> Result<Session<'_>> {
        match self.unlock_inner(profile, &source) {
            Ok(s) => Ok(s),
            Err(e) => {
                let reason = match &e {
                    VaultError::WrongKey { .. } => "wrong_key",
                    VaultError::NoSuchSlot { .. } => "no_such_slot",
                    VaultError::ProfileNotFound(_) => "no_such_profile",
                    VaultError::Io { .. } => "key_unreadable",
                    VaultError::KeySource(_) => "key_source_failed",
                    VaultError::Integrity(_) => "integrity",
                    VaultError::InvalidInput(_) => "invalid_key",
                    _ => "error",
                };
                self.audit_unlock_failure(profile, source.kind_name(), reason)?;
                Err(e)
            }
        }
    }

    /// Unlocks `profile` with the recovery key handed to escrow `escrow_id`.
    pub fn unlock_with_recovery_key(
        &self,
        profile: &str,
        escrow_id: &str,
        key: &SecretKey,
    ) -> Result<Session<'_>> {
        self.unlock(
            profile,
            KeySource::Recovery {
                escrow_id: escrow_id.to_owned(),
                key: key.clone(),
            },
        )
    }

    fn audit_unlock_failure(&self, profile: &str, kind: &str, reason: &str) -> Result<()> {
        let tx = db::write_tx(&self.conn)?;
        audit::append(
            &tx,
            &Event::new("profile.unlock.failed", self.now())
                .with("profile", profile.chars().take(64).collect::<String>())
                .with("kind", kind)
                .with("reason", reason),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn unlock_inner(&self, profile: &str, source: &KeySource) -> Result<Session<'_>> {
        let (keys, slot_id) = self.open_data_key(profile, source)?;
        let now = self.now();
        let signer = self.load_signer(profile, &keys)?;
        let pending = crate::rotate::load_pending(self, profile, &keys)?;
        let tx = db::write_tx(&self.conn)?;
        // A truncated or rolled-back log is refused before anything is released or signed.
        crate::witness::check_all(&tx, &self.witnesses)?;
        audit::append(
            &tx,
            &Event::new("profile.unlock", now)
                .with("profile", profile)
                .with("slot", slot_id.as_str())
                .with("key_epoch", i64::from(keys.epoch)),
        )?;
        tx.commit()?;
        let mut session = Session::new(self, profile.to_owned(), keys, pending, signer);
        session.recovered = matches!(source, KeySource::Recovery { .. });
        session.purge_expired()?;
        Ok(session)
    }

    /// Finds the slot `source` opens and returns the profile's current keys.
    pub(crate) fn open_data_key(
        &self,
        profile: &str,
        source: &KeySource,
    ) -> Result<(KeySet, String)> {
        let epoch = self.profile_epoch(profile)?;
        let slots: Vec<Slot> = self
            .slots(profile, epoch)?
            .into_iter()
            .filter(|s| s.matches(source))
            .collect();
        if slots.is_empty() {
            let kind = match source {
                KeySource::External(s) => format!("external:{}", s.kind()),
                KeySource::Recovery { escrow_id, .. } => format!("recovery:{escrow_id}"),
                other => other.kind_name().to_owned(),
            };
            return Err(VaultError::NoSuchSlot {
                profile: profile.to_owned(),
                kind,
            });
        }
        for slot in &slots {
            let kek = slot.kek(source)?;
            if let Some(dk) = slot.unwrap_dk(&self.vault_id, profile, &kek) {
                let keys = KeySet::derive(&self.vault_id, epoch, dk);
                let stored: Vec<u8> = self.conn.query_row(
                    "SELECT key_check FROM profiles WHERE profile_id = ?1",
                    [profile],
                    |r| r.get(0),
                )?;
                if !aim_crypto::kdf::ct_eq(&stored, &keys.key_check(&self.vault_id, profile)) {
                    return Err(VaultError::Integrity(format!(
                        "the key check of profile `{profile}` does not match its key slot"
                    )));
                }
                check_slot(&self.conn, &self.vault_id, profile, slot, &keys)?;
                return Ok((keys, slot.slot_id.clone()));
            }
        }
        Err(VaultError::WrongKey {
            profile: profile.to_owned(),
            kind: source.kind_name(),
        })
    }

    pub(crate) fn load_signer(&self, profile: &str, keys: &KeySet) -> Result<AgentKeypair> {
        let sealed: Vec<u8> = self.conn.query_row(
            "SELECT signer_sealed FROM profiles WHERE profile_id = ?1",
            [profile],
            |r| r.get(0),
        )?;
        let seed = keys
            .content
            .open(&signer_aad(&self.vault_id, profile, keys.epoch), &sealed)
            .map_err(|_| {
                VaultError::Integrity(format!(
                    "the head-signing key of `{profile}` failed authentication"
                ))
            })?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::corrupt("head-signing key", "not 32 bytes"))?;
        Ok(AgentKeypair::from_seed(&seed))
    }

    /// Enters lockdown: every recall and search is denied until a profile leaves it with its
    /// real key ([`Vault::leave_lockdown`]). Needs no secret. Returns the lockdown epoch.
    pub fn enter_lockdown(&self, reason: &str) -> Result<u64> {
        let reason: String = reason.chars().take(500).collect();
        let now = self.now();
        let tx = db::write_tx(&self.conn)?;
        let epoch: i64 = tx.query_row(
            "SELECT coalesce(max(epoch), 0) + 1 FROM lockdown_log",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO lockdown_log(epoch, entered_at_ms, reason) VALUES (?1, ?2, ?3)",
            params![epoch, now, reason],
        )?;
        audit::append(
            &tx,
            &Event::new("vault.lockdown.enter", now)
                .with("lockdown_epoch", epoch)
                .with("reason", reason.as_str()),
        )?;
        tx.commit()?;
        Ok(u64::try_from(epoch).unwrap_or(0))
    }

    /// Leaves the current lockdown for `profile`, proving its real key with `source` and a
    /// human factor through the vault's gates ([`Session::leave_lockdown`]).
    pub fn leave_lockdown(&self, profile: &str, source: KeySource) -> Result<()> {
        let mut session = self.unlock(profile, source)?;
        session.leave_lockdown()?;
        session.close()
    }

    /// The lockdown state.
    pub fn lockdown_status(&self) -> Result<LockdownStatus> {
        let row: Option<(i64, i64, String)> = self
            .conn
            .query_row(
                "SELECT epoch, entered_at_ms, reason FROM lockdown_log ORDER BY epoch DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((epoch, at, reason)) = row else {
            return Ok(LockdownStatus {
                epoch: 0,
                entered_at_ms: None,
                reason: None,
                exited_profiles: vec![],
            });
        };
        let mut stmt = self.conn.prepare(
            "SELECT profile_id FROM lockdown_exits WHERE epoch = ?1 ORDER BY profile_id",
        )?;
        let exited = stmt
            .query_map([epoch], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(LockdownStatus {
            epoch: u64::try_from(epoch).unwrap_or(0),
            entered_at_ms: Some(at),
            reason: Some(reason),
            exited_profiles: exited,
        })
    }

    /// A public record stored by [`Session::put_record`] with [`crate::Sealing::Public`]
    /// (readable without a key, e.g. by a dead-man release). Not authenticated here: the
    /// holder of the profile's key can check it with [`Session::get_record`].
    pub fn get_public_record(
        &self,
        profile: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM records WHERE profile_id=?1 AND namespace=?2 AND key=?3 AND sealing=0",
                params![profile, namespace, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Keys of the public records in `namespace` of `profile`.
    pub fn list_public_records(&self, profile: &str, namespace: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT key FROM records WHERE profile_id=?1 AND namespace=?2 AND sealing=0 ORDER BY key",
        )?;
        let keys = stmt
            .query_map(params![profile, namespace], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(keys)
    }

    /// The public keys announced for signing audit heads (oldest first), as
    /// `(epoch, key id, public key)`.
    pub fn head_signing_keys(&self) -> Result<Vec<vault_audit::KeyEpoch>> {
        Ok(vault_audit::AuditLog::key_epochs(&self.conn)?)
    }
}

pub(crate) fn epoch_u32(e: i64) -> Result<u32> {
    u32::try_from(e).map_err(|_| VaultError::corrupt("key epoch", format!("{e} is out of range")))
}

pub(crate) fn signer_aad(vault_id: &[u8; 16], profile: &str, epoch: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"aim-vault/head-signer/v1\0")
        .raw(vault_id)
        .str(profile)
        .u32(epoch);
    w.into_vec()
}

/// The MAC of a key slot row (under the keys of the slot's own epoch), bound to its version.
pub(crate) fn slot_mac(
    vid: &[u8; 16],
    keys: &KeySet,
    profile: &str,
    slot: &Slot,
    version: i64,
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(b"aim-vault/slot-row/v1\0")
        .bytes(&slot.aad(vid, profile))
        .bytes(&slot.wrapped_dk);
    crate::versions::mac_suffix(&mut w, version);
    KeySet::mac(&keys.row, &[w.as_slice()])
}

/// Writes a key slot with `version` (the leaf of the audit event the caller appends, tagged
/// with the slot's row key), MAC'd under `keys` (the slot's epoch).
pub(crate) fn insert_slot(
    conn: &Connection,
    vid: &[u8; 16],
    profile: &str,
    slot: &Slot,
    keys: &KeySet,
    version: i64,
    now: i64,
) -> Result<()> {
    let mac = slot_mac(vid, keys, profile, slot, version);
    conn.execute(
        "INSERT OR REPLACE INTO key_slots(profile_id, slot_id, kind, key_epoch, kdf_params, salt, source_blob, wrapped_dk, created_at_ms, version, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            profile,
            slot.slot_id,
            slot.kind,
            i64::from(slot.key_epoch),
            slot.kdf_params,
            slot.salt,
            slot.source_blob,
            slot.wrapped_dk,
            now,
            version,
            &mac[..]
        ],
    )?;
    Ok(())
}

/// Checks that the key slot `slot` that opened the data key is authentic and the latest
/// version (an old passphrase slot put back is refused).
fn check_slot(
    conn: &Connection,
    vid: &[u8; 16],
    profile: &str,
    slot: &Slot,
    keys: &KeySet,
) -> Result<()> {
    let (version, mac): (Option<i64>, Option<Vec<u8>>) = conn.query_row(
        "SELECT version, mac FROM key_slots WHERE profile_id = ?1 AND slot_id = ?2 AND key_epoch = ?3",
        params![profile, slot.slot_id, i64::from(slot.key_epoch)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let what = format!("key slot `{}`", slot.slot_id);
    match (version, mac) {
        (None, None) => {}
        (Some(v), Some(mac))
            if aim_crypto::kdf::ct_eq(&mac, &slot_mac(vid, keys, profile, slot, v)) => {}
        _ => {
            return Err(VaultError::Integrity(format!(
                "{what} failed authentication"
            )));
        }
    }
    crate::versions::require(
        conn,
        &crate::versions::RowKey::slot(profile, &slot.slot_id, slot.key_epoch),
        version,
        &what,
    )
}
