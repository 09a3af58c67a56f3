//! Key sources, key slots and the per-profile key set.
//!
//! Each profile has a random 256-bit data key (DK) per key epoch. The DK is stored only
//! wrapped (AES-256-GCM) under a key-encryption key (KEK) in one or more key slots:
//!
//! | slot kind    | KEK                                                     | stored with the slot |
//! |--------------|---------------------------------------------------------|----------------------|
//! | `passphrase` | Argon2id(passphrase, salt)                              | parameters, salt     |
//! | `keyfile`    | the 32 bytes of a 0600 key file                         | —                    |
//! | `external:K` | [`ExternalKeySource::recover`] of the stored blob       | the source's blob    |
//! | `recovery`   | a random 256-bit recovery key held by an escrow         | —                    |
//!
//! The wrap's associated data binds the vault id, profile, slot id, kind, key epoch and the
//! slot's parameters, so a slot cannot be moved to another profile or vault undetected.
//! All other keys of a profile are HKDF-SHA256 subkeys of its DK (`KeySet`).

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aim_crypto::hash::HmacSha256;
use aim_crypto::{Argon2Params, SealingKey, SecretBytes, SecretKey};

use crate::codec::Writer;
use crate::{Result, VaultError};

/// An error from an external key source (TPM, FIDO2, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// The device or service is not present or not reachable.
    #[error("key source unavailable: {0}")]
    Unavailable(String),
    /// The user or device refused (no touch, wrong PIN, policy mismatch, ...).
    #[error("key source refused: {0}")]
    Refused(String),
    /// The stored blob is not usable by this source.
    #[error("key source blob rejected: {0}")]
    BadBlob(String),
    /// Any other failure.
    #[error("key source failed: {0}")]
    Failed(String),
}

/// A hardware or remote source of key-encryption keys (implemented for TPM 2.0 and FIDO2 in
/// `vault-hw`). `enroll` makes a fresh KEK and an opaque blob the vault stores with the slot;
/// `recover` gives the same KEK back from that blob.
pub trait ExternalKeySource: Send + Sync {
    /// A short lowercase name such as `tpm2` or `fido2` (part of the slot id).
    fn kind(&self) -> &str;
    /// Creates a key-encryption key for `profile`; returns it with the blob to store.
    fn enroll(&self, profile: &str) -> std::result::Result<(SecretKey, Vec<u8>), KeySourceError>;
    /// Recovers the key-encryption key from a blob made by [`ExternalKeySource::enroll`].
    fn recover(&self, blob: &[u8]) -> std::result::Result<SecretKey, KeySourceError>;
}

/// Anything that can be taken as a passphrase (`&str`, `String`, bytes, [`SecretBytes`]).
pub trait IntoPassphrase {
    /// The passphrase bytes in zeroizing memory.
    fn into_passphrase(self) -> SecretBytes;
}

impl IntoPassphrase for SecretBytes {
    fn into_passphrase(self) -> SecretBytes {
        self
    }
}

impl IntoPassphrase for &str {
    fn into_passphrase(self) -> SecretBytes {
        SecretBytes::new(self.as_bytes().to_vec())
    }
}

impl IntoPassphrase for String {
    fn into_passphrase(self) -> SecretBytes {
        SecretBytes::from(self)
    }
}

impl IntoPassphrase for Vec<u8> {
    fn into_passphrase(self) -> SecretBytes {
        SecretBytes::new(self)
    }
}

impl IntoPassphrase for &[u8] {
    fn into_passphrase(self) -> SecretBytes {
        SecretBytes::new(self.to_vec())
    }
}

/// A key offered to unlock a profile.
#[derive(Clone)]
pub enum KeySource {
    /// A passphrase (Argon2id with the slot's stored parameters).
    Passphrase(SecretBytes),
    /// A file holding exactly 32 key bytes.
    KeyFile(PathBuf),
    /// A hardware or remote source.
    External(Arc<dyn ExternalKeySource>),
    /// A recovery key handed to an escrow.
    Recovery {
        /// The escrow the key belongs to.
        escrow_id: String,
        /// The recovery key.
        key: SecretKey,
    },
}

impl KeySource {
    /// A passphrase.
    pub fn passphrase(p: impl IntoPassphrase) -> Self {
        Self::Passphrase(p.into_passphrase())
    }

    /// A key file path.
    pub fn key_file(path: impl Into<PathBuf>) -> Self {
        Self::KeyFile(path.into())
    }

    /// An external key source.
    pub fn external(source: Arc<dyn ExternalKeySource>) -> Self {
        Self::External(source)
    }

    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Self::Passphrase(_) => "passphrase",
            Self::KeyFile(_) => "key file",
            Self::External(_) => "external key source",
            Self::Recovery { .. } => "recovery key",
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("KeySource::Passphrase(..)"),
            Self::KeyFile(p) => write!(f, "KeySource::KeyFile({})", p.display()),
            Self::External(s) => write!(f, "KeySource::External({})", s.kind()),
            Self::Recovery { escrow_id, .. } => write!(f, "KeySource::Recovery({escrow_id})"),
        }
    }
}

/// A key to enroll as a new slot (at profile creation, rotation or when adding a slot).
#[derive(Clone)]
pub enum Enrollment {
    /// A passphrase, stretched with the given Argon2id parameters.
    Passphrase {
        /// The passphrase.
        passphrase: SecretBytes,
        /// Argon2id parameters (default `moderate`; `sensitive` for high-value profiles).
        params: Argon2Params,
    },
    /// An existing key file of exactly 32 bytes (see [`create_key_file`]).
    KeyFile(PathBuf),
    /// A hardware or remote key source.
    External(Arc<dyn ExternalKeySource>),
}

impl Enrollment {
    /// A passphrase with the default `moderate` parameters.
    pub fn passphrase(p: impl IntoPassphrase) -> Self {
        Self::Passphrase {
            passphrase: p.into_passphrase(),
            params: Argon2Params::MODERATE,
        }
    }

    /// A passphrase with explicit Argon2id parameters.
    pub fn passphrase_with(p: impl IntoPassphrase, params: Argon2Params) -> Self {
        Self::Passphrase {
            passphrase: p.into_passphrase(),
            params,
        }
    }

    /// An existing key file.
    pub fn key_file(path: impl Into<PathBuf>) -> Self {
        Self::KeyFile(path.into())
    }

    /// The key source that unlocks what this enrollment creates.
    pub fn key_source(&self) -> KeySource {
        match self {
            Self::Passphrase { passphrase, .. } => KeySource::Passphrase(passphrase.clone()),
            Self::KeyFile(p) => KeySource::KeyFile(p.clone()),
            Self::External(s) => KeySource::External(s.clone()),
        }
    }
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase { params, .. } => write!(f, "Enrollment::Passphrase({params})"),
            Self::KeyFile(p) => write!(f, "Enrollment::KeyFile({})", p.display()),
            Self::External(s) => write!(f, "Enrollment::External({})", s.kind()),
        }
    }
}

/// Creates a new key file of 32 random bytes with mode 0600; refuses to overwrite.
pub fn create_key_file(path: &Path) -> Result<()> {
    let key = SecretKey::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| VaultError::io("cannot create key file", path, e))?;
    f.write_all(key.expose())
        .and_then(|()| f.sync_all())
        .map_err(|e| VaultError::io("cannot write key file", path, e))?;
    Ok(())
}

/// Reads a key file: exactly 32 bytes, nothing stripped, not readable by group or others.
pub fn read_key_file(path: &Path) -> Result<SecretKey> {
    // Non-blocking open: a FIFO (or device) given as key file must not hang the caller; the
    // file type is checked on the opened descriptor before any read.
    const O_NONBLOCK: i32 = 0o4000;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| VaultError::io("cannot open key file", path, e))?;
    let meta = f
        .metadata()
        .map_err(|e| VaultError::io("cannot stat key file", path, e))?;
    if !meta.file_type().is_file() {
        return Err(VaultError::InvalidInput(format!(
            "key file {} is not a regular file (a FIFO, device or directory cannot hold a key)",
            path.display()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(VaultError::InvalidInput(format!(
            "key file {} is accessible by group or others (mode {:o}); run `chmod 600` on it",
            path.display(),
            mode & 0o777
        )));
    }
    if meta.len() != 32 {
        return Err(VaultError::InvalidInput(format!(
            "key file {} has {} bytes; a key file holds exactly 32",
            path.display(),
            meta.len()
        )));
    }
    let mut buf = zeroize::Zeroizing::new([0u8; 32]);
    f.read_exact(&mut buf[..])
        .map_err(|e| VaultError::io("cannot read key file", path, e))?;
    let mut extra = [0u8; 1];
    if f.read(&mut extra)
        .map_err(|e| VaultError::io("cannot read key file", path, e))?
        != 0
    {
        return Err(VaultError::InvalidInput(format!(
            "key file {} grew while being read; a key file holds exactly 32 bytes",
            path.display()
        )));
    }
    Ok(SecretKey::from_bytes(*buf))
}

/// A stored key slot (the columns of `key_slots`).
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) slot_id: String,
    pub(crate) kind: String,
    pub(crate) key_epoch: u32,
    pub(crate) kdf_params: Option<String>,
    pub(crate) salt: Option<Vec<u8>>,
    pub(crate) source_blob: Option<Vec<u8>>,
    pub(crate) wrapped_dk: Vec<u8>,
}

impl Slot {
    pub(crate) fn aad(&self, vault_id: &[u8; 16], profile: &str) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        w.raw(b"aim-vault/slot/v1\0")
            .raw(vault_id)
            .str(profile)
            .str(&self.slot_id)
            .str(&self.kind)
            .u32(self.key_epoch)
            .opt_bytes(self.kdf_params.as_deref().map(str::as_bytes))
            .opt_bytes(self.salt.as_deref())
            .opt_bytes(self.source_blob.as_deref());
        w.into_vec()
    }

    /// Opens the slot with `kek`; `None` when the KEK is wrong or the slot was tampered with.
    pub(crate) fn unwrap_dk(
        &self,
        vault_id: &[u8; 16],
        profile: &str,
        kek: &SecretKey,
    ) -> Option<SecretKey> {
        let dk =
            aim_crypto::aead::open(kek, &self.aad(vault_id, profile), &self.wrapped_dk).ok()?;
        SecretKey::from_slice(&dk).ok()
    }

    /// Builds a slot wrapping `dk` under the KEK obtained from `enrollment`.
    pub(crate) fn enroll(
        vault_id: &[u8; 16],
        profile: &str,
        key_epoch: u32,
        enrollment: &Enrollment,
        dk: &SecretKey,
    ) -> Result<Self> {
        let (slot_id, kind, kdf_params, salt, source_blob, kek) = match enrollment {
            Enrollment::Passphrase { passphrase, params } => {
                if passphrase.is_empty() {
                    return Err(VaultError::InvalidInput("the passphrase is empty".into()));
                }
                let salt = aim_crypto::random::random_array::<{ aim_crypto::kdf::SALT_LEN }>()?;
                let kek = params.derive(passphrase.expose(), &salt)?;
                (
                    "passphrase".to_owned(),
                    "passphrase".to_owned(),
                    Some(params.encode()),
                    Some(salt.to_vec()),
                    None,
                    kek,
                )
            }
            Enrollment::KeyFile(path) => (
                "keyfile".to_owned(),
                "keyfile".to_owned(),
                None,
                None,
                None,
                read_key_file(path)?,
            ),
            Enrollment::External(src) => {
                let kind = src.kind().to_owned();
                if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(VaultError::InvalidInput(format!(
                        "external key source kind `{kind}` is not a short name"
                    )));
                }
                let (kek, blob) = src.enroll(profile)?;
                (
                    format!("external:{kind}"),
                    format!("external:{kind}"),
                    None,
                    None,
                    Some(blob),
                    kek,
                )
            }
        };
        Self::wrap(
            vault_id,
            profile,
            slot_id,
            kind,
            key_epoch,
            kdf_params,
            salt,
            source_blob,
            &kek,
            dk,
        )
    }

    /// A recovery slot for `escrow_id` under the recovery key `kek`.
    pub(crate) fn recovery(
        vault_id: &[u8; 16],
        profile: &str,
        key_epoch: u32,
        escrow_id: &str,
        kek: &SecretKey,
        dk: &SecretKey,
    ) -> Result<Self> {
        Self::wrap(
            vault_id,
            profile,
            format!("recovery:{escrow_id}"),
            "recovery".to_owned(),
            key_epoch,
            None,
            None,
            None,
            kek,
            dk,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn wrap(
        vault_id: &[u8; 16],
        profile: &str,
        slot_id: String,
        kind: String,
        key_epoch: u32,
        kdf_params: Option<String>,
        salt: Option<Vec<u8>>,
        source_blob: Option<Vec<u8>>,
        kek: &SecretKey,
        dk: &SecretKey,
    ) -> Result<Self> {
        let mut slot = Self {
            slot_id,
            kind,
            key_epoch,
            kdf_params,
            salt,
            source_blob,
            wrapped_dk: Vec::new(),
        };
        slot.wrapped_dk = aim_crypto::aead::seal(kek, &slot.aad(vault_id, profile), dk.expose())?;
        Ok(slot)
    }

    /// Whether `source` is meant for this slot.
    pub(crate) fn matches(&self, source: &KeySource) -> bool {
        match source {
            KeySource::Passphrase(_) => self.kind == "passphrase",
            KeySource::KeyFile(_) => self.kind == "keyfile",
            KeySource::External(s) => self.kind == format!("external:{}", s.kind()),
            KeySource::Recovery { escrow_id, .. } => {
                self.kind == "recovery" && self.slot_id == format!("recovery:{escrow_id}")
            }
        }
    }

    /// The KEK `source` gives for this slot.
    pub(crate) fn kek(&self, source: &KeySource) -> Result<SecretKey> {
        match source {
            KeySource::Passphrase(p) => {
                let params = self.kdf_params.as_deref().ok_or_else(|| {
                    VaultError::corrupt("key slot", "passphrase slot without parameters")
                })?;
                let params = Argon2Params::parse(params)?;
                let salt = self.salt.as_deref().ok_or_else(|| {
                    VaultError::corrupt("key slot", "passphrase slot without salt")
                })?;
                Ok(params.derive(p.expose(), salt)?)
            }
            KeySource::KeyFile(path) => read_key_file(path),
            KeySource::External(s) => {
                let blob = self
                    .source_blob
                    .as_deref()
                    .ok_or_else(|| VaultError::corrupt("key slot", "external slot without blob"))?;
                Ok(s.recover(blob)?)
            }
            KeySource::Recovery { key, .. } => Ok(key.clone()),
        }
    }
}

/// Purposes of the subkeys derived from a data key.
const PURPOSES: [&[u8]; 7] = [
    b"aim-vault/v1/content",
    b"aim-vault/v1/content-mac",
    b"aim-vault/v1/search",
    b"aim-vault/v1/reserved",
    b"aim-vault/v1/row-mac",
    b"aim-vault/v1/records",
    b"aim-vault/v1/rotation",
];

/// The keys of one profile at one key epoch, all derived from its data key.
pub(crate) struct KeySet {
    pub(crate) epoch: u32,
    pub(crate) dk: SecretKey,
    /// Seals content, private metadata and the head-signing key.
    pub(crate) content: SealingKey,
    /// Keyed MAC of plaintext content (replaces a plain content hash).
    pub(crate) content_mac: HmacSha256,
    /// Keyed search tokens.
    pub(crate) search: HmacSha256,
    /// Authenticates every security-relevant column of a row.
    pub(crate) row: HmacSha256,
    /// Seals generic records.
    pub(crate) records: SealingKey,
    /// Wraps the next data key during a rotation.
    pub(crate) rotation: SealingKey,
}

impl KeySet {
    pub(crate) fn derive(vault_id: &[u8; 16], epoch: u32, dk: SecretKey) -> Self {
        let k = |i: usize| aim_crypto::kdf::hkdf_sha256(dk.expose(), vault_id, PURPOSES[i]);
        Self {
            epoch,
            content: SealingKey::new(&k(0)),
            content_mac: HmacSha256::new(k(1).expose()),
            search: HmacSha256::new(k(2).expose()),
            row: HmacSha256::new(k(4).expose()),
            records: SealingKey::new(&k(5)),
            rotation: SealingKey::new(&k(6)),
            dk,
        }
    }

    /// HMAC under a prepared key over the given parts.
    pub(crate) fn mac(key: &HmacSha256, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = key.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize()
    }

    /// The key-check value stored with the profile: proves a DK belongs to (profile, epoch).
    pub(crate) fn key_check(&self, vault_id: &[u8; 16], profile: &str) -> [u8; 32] {
        let mut w = Writer::new();
        w.raw(b"aim-vault/key-check/v1\0")
            .raw(vault_id)
            .str(profile)
            .u32(self.epoch);
        Self::mac(&self.row, &[w.as_slice()])
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySet(epoch {})", self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Argon2Params {
        Argon2Params::new(64, 1, 1).unwrap()
    }

    #[test]
    fn slots_open_only_with_their_key_and_context() {
        let vid = [7u8; 16];
        let dk = SecretKey::generate().unwrap();
        let slot = Slot::enroll(
            &vid,
            "agent",
            1,
            &Enrollment::passphrase_with("pw", fast()),
            &dk,
        )
        .unwrap();
        let kek = slot.kek(&KeySource::passphrase("pw")).unwrap();
        assert_eq!(slot.unwrap_dk(&vid, "agent", &kek).unwrap(), dk);
        let wrong = slot.kek(&KeySource::passphrase("pW")).unwrap();
        assert!(slot.unwrap_dk(&vid, "agent", &wrong).is_none());
        assert!(slot.unwrap_dk(&vid, "other", &kek).is_none());
        assert!(slot.unwrap_dk(&[8u8; 16], "agent", &kek).is_none());
        let mut moved = slot.clone();
        moved.key_epoch = 2;
        assert!(moved.unwrap_dk(&vid, "agent", &kek).is_none());
        let mut weakened = slot.clone();
        weakened.kdf_params = Some(Argon2Params::new(8, 1, 1).unwrap().encode());
        assert!(weakened.unwrap_dk(&vid, "agent", &kek).is_none());
    }

    #[test]
    fn key_files_are_exact_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        create_key_file(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let k = read_key_file(&p).unwrap();
        assert!(create_key_file(&p).is_err(), "never overwrites");
        // A key made only of whitespace bytes is still a valid key (never stripped).
        let ws = dir.path().join("ws");
        std::fs::write(&ws, [b' '; 32]).unwrap();
        std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(&ws).unwrap().expose(), &[b' '; 32]);
        assert_ne!(read_key_file(&ws).unwrap(), k);
        let short = dir.path().join("short");
        std::fs::write(&short, [1u8; 31]).unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_key_file(&short).is_err());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            read_key_file(&p)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        assert!(matches!(
            read_key_file(&dir.path().join("missing")),
            Err(VaultError::Io { .. })
        ));
    }

    #[test]
    fn subkeys_differ_by_purpose_and_key() {
        let a = KeySet::derive(&[1; 16], 1, SecretKey::from_bytes([1; 32]));
        let b = KeySet::derive(&[1; 16], 1, SecretKey::from_bytes([2; 32]));
        let m = |k: &HmacSha256| KeySet::mac(k, &[b"x"]);
        assert_ne!(m(&a.search), m(&a.row));
        assert_ne!(m(&a.search), m(&b.search));
        assert_ne!(a.key_check(&[1; 16], "p"), a.key_check(&[1; 16], "q"));
    }
}
