//! The dead-man switch as a pure state machine over explicit time (Unix milliseconds).
//!
//! The owner names heirs (age recipients), an interval and what is released. While the owner
//! keeps checking in, the deadline moves to `now + interval`. Each heir's package is prepared
//! in advance (so release needs no owner): the payload is age-encrypted to that heir, then
//! sealed with AES-256-GCM under a release key bound to the vault, profile, heir and
//! generation. After the deadline, [`DeadmanState::release`] opens the outer layer and hands
//! out one age file per heir, which only that heir can decrypt; the release is then recorded
//! and no check-in can undo it.
//!
//! See `docs/escrow.md` for the threat model (who can read a package, and when).

use aim_crypto::b64;
use aim_crypto::{SealingKey, SecretKey};
use serde::{Deserialize, Serialize};

use crate::holder::{HolderRecipient, RecipientFingerprint};
use crate::{EscrowError, Result};

/// Format tag of a stored [`DeadmanState`].
pub const STATE_FORMAT: &str = "aim-deadman-state-v1";
/// Format tag of the payload an heir decrypts.
pub const PACKAGE_FORMAT: &str = "aim-deadman-package-v1";
/// Shortest accepted check-in interval (one minute).
pub const MIN_INTERVAL_MS: i64 = 60_000;
/// Longest accepted check-in interval (ten years).
pub const MAX_INTERVAL_MS: i64 = 10 * 366 * 24 * 3_600_000;
/// Most heirs a switch can name.
pub const MAX_HEIRS: usize = 64;

/// One heir: a name for people and the age recipient packages are encrypted to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heir {
    /// A label (shown in status and used in package file names).
    pub name: String,
    /// The heir's age recipient, canonical text (`age1...` or `ssh-ed25519 ...`).
    pub recipient: String,
    /// Fingerprint of the recipient.
    pub fingerprint: RecipientFingerprint,
}

impl Heir {
    /// An heir named `name` with recipient text `recipient` (validated).
    pub fn new(name: &str, recipient: &str) -> Result<Self> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with('.')
        {
            return Err(EscrowError::InvalidDeadman(format!(
                "heir name {name:?} must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.' (not starting with '.')"
            )));
        }
        let r: HolderRecipient = recipient.parse()?;
        Ok(Self {
            name: name.to_owned(),
            recipient: r.canonical(),
            fingerprint: r.fingerprint(),
        })
    }

    /// The parsed recipient.
    pub fn recipient(&self) -> Result<HolderRecipient> {
        self.recipient.parse()
    }
}

/// What the switch releases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSpec {
    /// Memories (ids as text) whose content every heir receives.
    pub memory_ids: Vec<String>,
    /// When set, a fresh escrow of the profile's recovery key is split among the heirs with
    /// this threshold, one share per heir (needs at least 2 heirs).
    pub share_threshold: Option<u8>,
}

/// The owner's choices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadmanConfig {
    /// Who receives packages.
    pub heirs: Vec<Heir>,
    /// Check-in interval in milliseconds.
    pub interval_ms: i64,
    /// What is released.
    pub release: ReleaseSpec,
}

impl DeadmanConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EscrowError::InvalidDeadman(m));
        if self.heirs.is_empty() {
            return bad("name at least one heir".into());
        }
        if self.heirs.len() > MAX_HEIRS {
            return bad(format!("at most {MAX_HEIRS} heirs"));
        }
        for (i, h) in self.heirs.iter().enumerate() {
            if self.heirs[..i].iter().any(|o| o.name == h.name) {
                return bad(format!("heir name {:?} is used twice", h.name));
            }
            if self.heirs[..i]
                .iter()
                .any(|o| o.fingerprint == h.fingerprint)
            {
                return bad(format!(
                    "heir {:?} has the same key as another heir",
                    h.name
                ));
            }
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&self.interval_ms) {
            return bad("the interval must be between one minute and ten years".into());
        }
        if self.release.memory_ids.is_empty() && self.release.share_threshold.is_none() {
            return bad("release something: memories, escrow shares, or both".into());
        }
        if let Some(k) = self.release.share_threshold {
            crate::shamir::check_parameters(usize::from(k), self.heirs.len()).map_err(|_| {
                EscrowError::InvalidDeadman(format!(
                    "releasing escrow shares needs 2 <= threshold ({k}) <= number of heirs ({})",
                    self.heirs.len()
                ))
            })?;
        }
        Ok(())
    }
}

/// A memory carried in a package.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackagedMemory {
    /// The memory's id.
    pub id: String,
    /// Its content, standard base64.
    pub content_b64: String,
}

impl std::fmt::Debug for PackagedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackagedMemory({}, ..)", self.id)
    }
}

/// What one heir reads after decrypting their package with their own key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeirPayload {
    /// Always [`PACKAGE_FORMAT`].
    pub format: String,
    /// The vault (hex id).
    pub vault_id: String,
    /// The profile.
    pub profile_id: String,
    /// The heir's name.
    pub heir: String,
    /// When the package was prepared (Unix ms).
    pub prepared_at_ms: i64,
    /// The memories released.
    pub memories: Vec<PackagedMemory>,
    /// This heir's escrow share (`aim-share-v1:...`), if shares are released.
    pub share: Option<String>,
    /// How to use the package.
    pub instructions: String,
}

impl std::fmt::Debug for HeirPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeirPayload")
            .field("heir", &self.heir)
            .field("memories", &self.memories.len())
            .field("share", &self.share.as_ref().map(|_| ".."))
            .finish()
    }
}

/// One heir's sealed package as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPackage {
    /// The heir's name.
    pub heir: String,
    /// The heir's recipient fingerprint.
    pub fingerprint: RecipientFingerprint,
    /// AES-256-GCM envelope (base64) of the armored age file.
    pub sealed_b64: String,
}

/// Where the release key is kept.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "custody", rename_all = "snake_case")]
pub enum ReleaseKeyCustody {
    /// In the vault next to the packages (so release runs without the owner). See the threat
    /// model in `docs/escrow.md`: this enforces the timer only against software that honours it.
    Local {
        /// The key, base64.
        key_b64: String,
    },
}

impl std::fmt::Debug for ReleaseKeyCustody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { .. } => f.write_str("ReleaseKeyCustody::Local(..)"),
        }
    }
}

/// The stored state of a profile's switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadmanState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// The vault (hex id).
    pub vault_id: String,
    /// The profile.
    pub profile_id: String,
    /// The owner's choices.
    pub config: DeadmanConfig,
    /// When the switch was set (Unix ms).
    pub set_at_ms: i64,
    /// Last check-in (or set), Unix ms.
    pub last_checkin_ms: i64,
    /// Release is possible from this instant on (Unix ms).
    pub deadline_ms: i64,
    /// Incremented each time packages are prepared; bound into the packages.
    pub generation: u64,
    /// The escrow whose shares the packages carry, if any.
    pub escrow_id: Option<String>,
    /// The heirs' sealed packages.
    pub packages: Vec<SealedPackage>,
    /// The release key's custody.
    pub release_key: ReleaseKeyCustody,
    /// When the packages were first released (Unix ms), if they were.
    pub released_at_ms: Option<i64>,
}

/// A package ready to hand to an heir.
#[derive(Clone, Debug)]
pub struct ReleasedPackage {
    /// The heir's name.
    pub heir: String,
    /// The heir's recipient fingerprint.
    pub fingerprint: RecipientFingerprint,
    /// The ASCII-armored age file only this heir can decrypt.
    pub armored: String,
}

/// What `status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadmanStatus {
    /// True while the switch waits for check-ins.
    pub armed: bool,
    /// The deadline (Unix ms).
    pub deadline_ms: i64,
    /// Milliseconds until the deadline (0 when passed).
    pub remaining_ms: i64,
    /// Whether release is possible now.
    pub due: bool,
    /// When released, if so.
    pub released_at_ms: Option<i64>,
    /// Last check-in (Unix ms).
    pub last_checkin_ms: i64,
    /// Heir names.
    pub heirs: Vec<String>,
    /// Interval in ms.
    pub interval_ms: i64,
    /// Memories released.
    pub memory_count: usize,
    /// Share threshold, if shares are released.
    pub share_threshold: Option<u8>,
    /// The releases of this switch recorded in the vault's audit log, oldest first (empty while
    /// it is armed). Filled in by [`crate::vault::deadman_status`].
    pub releases: Vec<ReleaseRecord>,
}

/// One release of a switch, as recorded in the vault's audit log (`deadman.release`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseRecord {
    /// The audit leaf index of the `deadman.release` event.
    pub leaf: u64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// How many heirs received a package.
    pub heirs: usize,
    /// The package generation released.
    pub generation: u64,
}

fn package_aad(
    vault_id: &str,
    profile_id: &str,
    heir: &RecipientFingerprint,
    generation: u64,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + vault_id.len() + profile_id.len());
    aad.extend_from_slice(b"aim-deadman-package-v1\0");
    for part in [vault_id, profile_id, heir.as_str()] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad.extend_from_slice(&generation.to_be_bytes());
    aad
}

impl DeadmanState {
    /// Sets a new switch: validates `config`, prepares packages from `payloads` (one per heir,
    /// in heir order) and sets the deadline to `now_ms + interval`.
    pub fn arm(
        vault_id: &str,
        profile_id: &str,
        config: DeadmanConfig,
        payloads: &[HeirPayload],
        escrow_id: Option<String>,
        now_ms: i64,
    ) -> Result<Self> {
        config.validate()?;
        let key = SecretKey::generate()?;
        let mut state = Self {
            format: STATE_FORMAT.to_owned(),
            vault_id: vault_id.to_owned(),
            profile_id: profile_id.to_owned(),
            deadline_ms: now_ms.saturating_add(config.interval_ms),
            config,
            set_at_ms: now_ms,
            last_checkin_ms: now_ms,
            generation: 0,
            escrow_id,
            packages: Vec::new(),
            release_key: ReleaseKeyCustody::Local {
                key_b64: b64::encode(key.expose()),
            },
            released_at_ms: None,
        };
        state.prepare(payloads)?;
        Ok(state)
    }

    /// Decodes a stored state.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let s: Self = serde_json::from_slice(bytes).map_err(|e| EscrowError::CorruptRecord {
            what: "dead-man switch state",
            reason: e.to_string(),
        })?;
        if s.format != STATE_FORMAT {
            return Err(EscrowError::CorruptRecord {
                what: "dead-man switch state",
                reason: format!("unknown format {:?}", s.format),
            });
        }
        Ok(s)
    }

    /// Encodes for storage.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| EscrowError::CorruptRecord {
            what: "dead-man switch state",
            reason: e.to_string(),
        })
    }

    fn release_key(&self) -> Result<SecretKey> {
        match &self.release_key {
            ReleaseKeyCustody::Local { key_b64 } => {
                let bytes = aim_crypto::Zeroizing::new(b64::decode(key_b64, "release key")?);
                Ok(SecretKey::from_slice(&bytes)?)
            }
        }
    }

    /// Re-prepares every heir's package from `payloads` (one per heir, in heir order) under
    /// the next generation.
    fn prepare(&mut self, payloads: &[HeirPayload]) -> Result<()> {
        if payloads.len() != self.config.heirs.len() {
            return Err(EscrowError::InvalidDeadman(format!(
                "{} payloads for {} heirs",
                payloads.len(),
                self.config.heirs.len()
            )));
        }
        let generation = self.generation + 1;
        let sealer = SealingKey::new(&self.release_key()?);
        let mut packages = Vec::with_capacity(payloads.len());
        for (heir, payload) in self.config.heirs.iter().zip(payloads) {
            if payload.heir != heir.name {
                return Err(EscrowError::InvalidDeadman(format!(
                    "payload for {:?} given in the place of heir {:?}",
                    payload.heir, heir.name
                )));
            }
            let json = aim_crypto::Zeroizing::new(serde_json::to_vec(payload).map_err(|e| {
                EscrowError::InvalidDeadman(format!("cannot encode a package: {e}"))
            })?);
            let armored = heir.recipient()?.encrypt_armored(&json)?;
            let aad = package_aad(
                &self.vault_id,
                &self.profile_id,
                &heir.fingerprint,
                generation,
            );
            packages.push(SealedPackage {
                heir: heir.name.clone(),
                fingerprint: heir.fingerprint.clone(),
                sealed_b64: b64::encode(&sealer.seal(&aad, armored.as_bytes())?),
            });
        }
        self.packages = packages;
        self.generation = generation;
        Ok(())
    }

    /// The owner checks in: the deadline moves to `now_ms + interval` and the packages are
    /// re-prepared from `payloads`. Fails once released.
    pub fn check_in(
        &mut self,
        payloads: &[HeirPayload],
        escrow_id: Option<String>,
        now_ms: i64,
    ) -> Result<()> {
        if let Some(released_at) = self.released_at_ms {
            return Err(EscrowError::AlreadyReleased {
                released_at_ms: released_at,
            });
        }
        self.prepare(payloads)?;
        self.escrow_id = escrow_id;
        self.last_checkin_ms = now_ms;
        self.deadline_ms = now_ms.saturating_add(self.config.interval_ms);
        Ok(())
    }

    /// Re-prepares the packages from `payloads` under the next generation without moving the
    /// deadline (after a memory in them was tombstoned). Fails once released.
    pub fn reseal(&mut self, payloads: &[HeirPayload], escrow_id: Option<String>) -> Result<()> {
        self.ensure_not_released()?;
        self.prepare(payloads)?;
        self.escrow_id = escrow_id;
        Ok(())
    }

    /// Fails with [`EscrowError::AlreadyReleased`] if the switch has been released.
    pub fn ensure_not_released(&self) -> Result<()> {
        match self.released_at_ms {
            Some(released_at) => Err(EscrowError::AlreadyReleased {
                released_at_ms: released_at,
            }),
            None => Ok(()),
        }
    }

    /// Whether release is allowed at `now_ms`.
    pub fn is_due(&self, now_ms: i64) -> bool {
        now_ms >= self.deadline_ms
    }

    /// Releases: refuses before the deadline; after it, returns one armored age file per heir
    /// and records the first release time. Calling it again re-issues the same packages.
    pub fn release(&mut self, now_ms: i64) -> Result<Vec<ReleasedPackage>> {
        if !self.is_due(now_ms) && self.released_at_ms.is_none() {
            return Err(EscrowError::NotYetDue {
                remaining_ms: self.deadline_ms - now_ms,
                deadline_ms: self.deadline_ms,
            });
        }
        let sealer = SealingKey::new(&self.release_key()?);
        let mut out = Vec::with_capacity(self.packages.len());
        for p in &self.packages {
            let aad = package_aad(
                &self.vault_id,
                &self.profile_id,
                &p.fingerprint,
                self.generation,
            );
            let sealed = b64::decode(&p.sealed_b64, "sealed package")?;
            let armored = sealer
                .open(&aad, &sealed)
                .map_err(|_| EscrowError::CorruptRecord {
                    what: "dead-man package",
                    reason: format!("package of heir {:?} failed authentication", p.heir),
                })?;
            let armored =
                String::from_utf8(armored.to_vec()).map_err(|_| EscrowError::CorruptRecord {
                    what: "dead-man package",
                    reason: "not text".into(),
                })?;
            out.push(ReleasedPackage {
                heir: p.heir.clone(),
                fingerprint: p.fingerprint.clone(),
                armored,
            });
        }
        if self.released_at_ms.is_none() {
            self.released_at_ms = Some(now_ms);
        }
        Ok(out)
    }

    /// The status at `now_ms`.
    pub fn status(&self, now_ms: i64) -> DeadmanStatus {
        DeadmanStatus {
            armed: self.released_at_ms.is_none(),
            deadline_ms: self.deadline_ms,
            remaining_ms: (self.deadline_ms - now_ms).max(0),
            due: self.is_due(now_ms),
            released_at_ms: self.released_at_ms,
            last_checkin_ms: self.last_checkin_ms,
            heirs: self.config.heirs.iter().map(|h| h.name.clone()).collect(),
            interval_ms: self.config.interval_ms,
            memory_count: self.config.release.memory_ids.len(),
            share_threshold: self.config.release.share_threshold,
            releases: Vec::new(),
        }
    }

    /// The status at `now_ms`, given the releases recorded for this switch (oldest first): the
    /// first one fixes `released_at_ms` and disarms the switch.
    pub fn status_with(&self, now_ms: i64, releases: Vec<ReleaseRecord>) -> DeadmanStatus {
        let mut st = self.status(now_ms);
        if let Some(first) = releases.first() {
            st.released_at_ms = Some(
                st.released_at_ms
                    .map_or(first.at_ms, |t| t.min(first.at_ms)),
            );
            st.armed = false;
        }
        st.releases = releases;
        st
    }
}

/// Builds the payload for `heir`.
pub fn heir_payload(
    vault_id: &str,
    profile_id: &str,
    heir: &Heir,
    memories: Vec<PackagedMemory>,
    share: Option<String>,
    now_ms: i64,
) -> HeirPayload {
    let mut instructions =
        String::from("This package was released by the AIM memory vault's dead-man switch. ");
    if !memories.is_empty() {
        instructions.push_str("`memories` holds the released memories (content in base64). ");
    }
    if share.is_some() {
        instructions.push_str(
            "`share` is your escrow share of the profile's recovery key: together with the \
             other heirs' shares (the threshold is in the share), run \
             `aim vault escrow recover --vault VAULT --share FILE ...` to recover the profile \
             and set a new passphrase.",
        );
    }
    HeirPayload {
        format: PACKAGE_FORMAT.to_owned(),
        vault_id: vault_id.to_owned(),
        profile_id: profile_id.to_owned(),
        heir: heir.name.clone(),
        prepared_at_ms: now_ms,
        memories,
        share,
        instructions,
    }
}

/// Decodes a payload an heir decrypted.
pub fn parse_payload(bytes: &[u8]) -> Result<HeirPayload> {
    let p: HeirPayload = serde_json::from_slice(bytes).map_err(|e| EscrowError::CorruptRecord {
        what: "dead-man package",
        reason: e.to_string(),
    })?;
    if p.format != PACKAGE_FORMAT {
        return Err(EscrowError::CorruptRecord {
            what: "dead-man package",
            reason: format!("unknown format {:?}", p.format),
        });
    }
    Ok(p)
}

/// A duration in words, e.g. `2d 3h 4m 5s`.
pub fn human_duration(ms: i64) -> String {
    let secs = (ms.max(0) + 999) / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    let mut out = Vec::new();
    if d > 0 {
        out.push(format!("{d}d"));
    }
    if h > 0 {
        out.push(format!("{h}h"));
    }
    if m > 0 {
        out.push(format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push(format!("{s}s"));
    }
    out.join(" ")
}
