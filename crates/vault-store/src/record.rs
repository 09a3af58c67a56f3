//! The sealed memory record: associated data, the sealed metadata encoding, and the row MAC.
//!
//! A memory row stores, next to its ids and policy columns, two AES-256-GCM envelopes
//! (content and private metadata), a keyed MAC of the plaintext content and a row MAC. The
//! associated data of both envelopes and the row MAC cover every security-relevant column:
//! vault id, memory id, profile, record format, creation time, creator, classification,
//! cooldown, expiry and key epoch (plus the tombstone state for the row MAC). Changing any of
//! them, or moving an envelope to another row, makes authentication fail, and the recall is
//! denied.

use aim_crypto::hash::HmacSha256;

use crate::codec::{Reader, Writer};
use crate::keys::KeySet;
use crate::model::{AccessPolicy, Classification, Creator, MemoryId};
use crate::{Result, VaultError};

/// The record format this build writes.
pub const RECORD_FORMAT: u8 = 1;

/// Largest content accepted (16 MiB).
pub const MAX_CONTENT: usize = 16 << 20;
/// Largest private metadata accepted (1 MiB).
pub const MAX_METADATA: usize = 1 << 20;
/// Most tags or intent references on one memory.
pub const MAX_LABELS: usize = 256;
/// Longest tag or intent reference.
pub const MAX_LABEL_LEN: usize = 256;

/// The authenticated columns of a memory row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowHeader {
    pub(crate) memory_id: MemoryId,
    pub(crate) profile: String,
    pub(crate) format: u8,
    pub(crate) created_at_ms: i64,
    pub(crate) created_by: Creator,
    pub(crate) classification: Classification,
    pub(crate) policy: AccessPolicy,
    pub(crate) key_epoch: u32,
}

/// Which envelope of a row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    Content = 1,
    Meta = 2,
}

impl RowHeader {
    fn encode_into(&self, w: &mut Writer, vault_id: &[u8; 16]) {
        w.raw(vault_id)
            .raw(self.memory_id.as_bytes())
            .str(&self.profile)
            .u8(self.format)
            .i64(self.created_at_ms)
            .u8(self.created_by as u8)
            .u8(self.classification.level())
            .u64(self.policy.cooldown_ms)
            .opt_i64(self.policy.expires_at_ms)
            .u32(self.key_epoch);
    }

    /// Associated data of one envelope of this row.
    pub(crate) fn aad(&self, vault_id: &[u8; 16], part: Part) -> Vec<u8> {
        let mut w = Writer::with_capacity(96);
        w.raw(b"aim-vault/memory/v1\0");
        self.encode_into(&mut w, vault_id);
        w.u8(part as u8);
        w.into_vec()
    }

    /// The row MAC over the header and the row's stored state.
    pub(crate) fn row_mac(
        &self,
        key: &HmacSha256,
        vault_id: &[u8; 16],
        state: &RowState<'_>,
    ) -> [u8; 32] {
        let mut w = Writer::with_capacity(96);
        w.raw(b"aim-vault/row/v1\0");
        self.encode_into(&mut w, vault_id);
        let mut m = key.clone();
        m.update(w.as_slice());
        match state {
            RowState::Live {
                content,
                meta,
                content_mac,
            } => {
                let mut w = Writer::new();
                w.u8(1).u64(content.len() as u64);
                m.update(w.as_slice());
                m.update(content);
                let mut w = Writer::new();
                w.u64(meta.len() as u64);
                m.update(w.as_slice());
                m.update(meta);
                m.update(content_mac);
            }
            RowState::Tombstoned { at_ms } => {
                let mut w = Writer::new();
                w.u8(2).i64(*at_ms);
                m.update(w.as_slice());
            }
        }
        m.finalize()
    }
}

/// The stored state a row MAC covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowState<'a> {
    Live {
        content: &'a [u8],
        meta: &'a [u8],
        content_mac: &'a [u8],
    },
    Tombstoned {
        at_ms: i64,
    },
}

/// The keyed MAC of a memory's plaintext content.
pub(crate) fn content_mac(keys: &KeySet, id: &MemoryId, content: &[u8]) -> [u8; 32] {
    KeySet::mac(
        &keys.content_mac,
        &[b"aim-vault/content-mac/v1\0", id.as_bytes(), content],
    )
}

/// What is sealed in the metadata envelope: private metadata, tags, intent references and
/// the random salt of the memory's existence commitment (sealed so it survives rotations and
/// can be revealed by `prove --open`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SealedMeta {
    /// The commitment salt `r` (random per memory).
    pub commitment_salt: [u8; 32],
    /// Application metadata (opaque bytes, e.g. JSON).
    pub metadata: Vec<u8>,
    /// Tags.
    pub tags: Vec<String>,
    /// Intent references.
    pub intents: Vec<String>,
}

const META_VERSION: u8 = 1;

/// Shows sizes only: the metadata, tags, intents and commitment salt are private.
impl std::fmt::Debug for SealedMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedMeta")
            .field("metadata_len", &self.metadata.len())
            .field("tags", &self.tags.len())
            .field("intents", &self.intents.len())
            .finish_non_exhaustive()
    }
}

impl SealedMeta {
    /// Checks sizes and that labels are non-empty.
    pub fn validate(&self) -> Result<()> {
        if self.metadata.len() > MAX_METADATA {
            return Err(VaultError::InvalidInput(format!(
                "metadata larger than {MAX_METADATA} bytes"
            )));
        }
        for (what, list) in [("tags", &self.tags), ("intent references", &self.intents)] {
            if list.len() > MAX_LABELS {
                return Err(VaultError::InvalidInput(format!(
                    "more than {MAX_LABELS} {what}"
                )));
            }
            if let Some(bad) = list
                .iter()
                .find(|l| l.is_empty() || l.len() > MAX_LABEL_LEN)
            {
                return Err(VaultError::InvalidInput(format!(
                    "{what} must be 1–{MAX_LABEL_LEN} bytes (got {} bytes)",
                    bad.len()
                )));
            }
        }
        Ok(())
    }

    /// The versioned encoding that is sealed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16 + self.metadata.len());
        w.u8(META_VERSION)
            .raw(&self.commitment_salt)
            .bytes(&self.metadata);
        for list in [&self.tags, &self.intents] {
            w.u32(u32::try_from(list.len()).unwrap_or(u32::MAX));
            for l in list {
                w.str(l);
            }
        }
        w.into_vec()
    }

    /// Parses [`SealedMeta::encode`]'s bytes with every bound of [`SealedMeta::validate`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "sealed metadata");
        let v = r.u8()?;
        if v != META_VERSION {
            return Err(VaultError::corrupt(
                "sealed metadata",
                format!("unknown version {v}"),
            ));
        }
        let commitment_salt = r.array::<32>()?;
        let metadata = r.bytes()?.to_vec();
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = r.count(4)?;
            if n > MAX_LABELS {
                return Err(VaultError::corrupt(
                    "sealed metadata",
                    format!("{n} labels"),
                ));
            }
            for _ in 0..n {
                list.push(r.str()?.to_owned());
            }
        }
        r.finish()?;
        let [tags, intents] = lists;
        let m = Self {
            commitment_salt,
            metadata,
            tags,
            intents,
        };
        m.validate()
            .map_err(|e| VaultError::corrupt("sealed metadata", e.to_string()))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_crypto::SecretKey;
    use proptest::prelude::*;

    fn header() -> RowHeader {
        RowHeader {
            memory_id: MemoryId::from_bytes([1; 16]),
            profile: "agent".into(),
            format: RECORD_FORMAT,
            created_at_ms: 5,
            created_by: Creator::Agent,
            classification: Classification::Sealed,
            policy: AccessPolicy {
                cooldown_ms: 10,
                expires_at_ms: Some(99),
            },
            key_epoch: 1,
        }
    }

    #[test]
    fn every_header_field_changes_aad_and_row_mac() {
        let vid = [9u8; 16];
        let keys = KeySet::derive(&vid, 1, SecretKey::from_bytes([3; 32]));
        let base = header();
        let live = RowState::Live {
            content: b"c",
            meta: b"m",
            content_mac: b"x",
        };
        let mut variants = Vec::new();
        let mut h = base.clone();
        h.memory_id = MemoryId::from_bytes([2; 16]);
        variants.push(h);
        let mut h = base.clone();
        h.profile = "agent2".into();
        variants.push(h);
        let mut h = base.clone();
        h.format = 2;
        variants.push(h);
        let mut h = base.clone();
        h.created_at_ms = 6;
        variants.push(h);
        let mut h = base.clone();
        h.created_by = Creator::Human;
        variants.push(h);
        let mut h = base.clone();
        h.classification = Classification::Working;
        variants.push(h);
        let mut h = base.clone();
        h.policy.cooldown_ms = 0;
        variants.push(h);
        let mut h = base.clone();
        h.policy.expires_at_ms = None;
        variants.push(h);
        let mut h = base.clone();
        h.key_epoch = 2;
        variants.push(h);
        for v in &variants {
            assert_ne!(
                v.aad(&vid, Part::Content),
                base.aad(&vid, Part::Content),
                "{v:?}"
            );
            assert_ne!(
                v.row_mac(&keys.row, &vid, &live),
                base.row_mac(&keys.row, &vid, &live),
                "{v:?}"
            );
        }
        assert_ne!(base.aad(&vid, Part::Content), base.aad(&vid, Part::Meta));
        assert_ne!(
            base.aad(&[8; 16], Part::Content),
            base.aad(&vid, Part::Content)
        );
        let tomb = RowState::Tombstoned { at_ms: 1 };
        assert_ne!(
            base.row_mac(&keys.row, &vid, &tomb),
            base.row_mac(&keys.row, &vid, &live)
        );
        for swapped in [
            RowState::Live {
                content: b"m",
                meta: b"c",
                content_mac: b"x",
            },
            RowState::Live {
                content: b"cm",
                meta: b"",
                content_mac: b"x",
            },
            RowState::Live {
                content: b"c",
                meta: b"m",
                content_mac: b"y",
            },
        ] {
            assert_ne!(
                base.row_mac(&keys.row, &vid, &swapped),
                base.row_mac(&keys.row, &vid, &live)
            );
        }
    }

    #[test]
    fn debug_output_hides_private_metadata_tags_and_salt() {
        let m = SealedMeta {
            commitment_salt: [0xab; 32],
            metadata: b"secret-metadata".to_vec(),
            tags: vec!["secret-tag".into()],
            intents: vec!["secret-intent".into()],
        };
        let d = format!("{m:?}");
        assert!(!d.contains("secret") && !d.contains("171"), "{d}");
        assert!(d.contains("metadata_len: 15"), "{d}");
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-zé0-9 _-]{1,20}"
    }

    proptest! {
        #[test]
        fn sealed_meta_round_trips(metadata in proptest::collection::vec(any::<u8>(), 0..300),
                                   tags in proptest::collection::vec(label(), 0..8),
                                   intents in proptest::collection::vec(label(), 0..8)) {
            let m = SealedMeta { commitment_salt: [3; 32], metadata, tags, intents };
            prop_assert_eq!(SealedMeta::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn sealed_meta_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SealedMeta::decode(&bytes);
        }

        #[test]
        fn sealed_meta_truncation_is_an_error(tags in proptest::collection::vec(label(), 1..4), cut in 1usize..10) {
            let m = SealedMeta { commitment_salt: [0; 32], metadata: b"{}".to_vec(), tags, intents: vec![] };
            let e = m.encode();
            let cut = cut.min(e.len());
            prop_assert!(SealedMeta::decode(&e[..e.len() - cut]).is_err());
        }
    }
}
