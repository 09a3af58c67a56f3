//! The share text format `aim-share-v1:`, with a checksum, carrying everything needed to match
//! shares of one escrow and to check the reconstructed key.
//!
//! A share is one line: the prefix `aim-share-v1:` followed by the strict lowercase RFC 4648
//! base32 (no padding) of this payload:
//!
//! ```text
//! offset  length  field
//! 0       1       format version, 0x01
//! 1       16      escrow id (UUID bytes)
//! 17      1       L1 = vault id length (1..=64)
//! 18      L1      vault id, UTF-8
//! .       1       L2 = profile id length (1..=64)
//! .       L2      profile id, UTF-8
//! .       16      key fingerprint (see `KeyFingerprint`)
//! .       1       threshold K (2..=N)
//! .       1       total N (K..=255)
//! .       1       index x (1..=N): the point at which the share polynomial was evaluated
//! .       32      share value y (one byte per byte of the 32-byte key, GF(2^8), polynomial 0x11D)
//! .       8       checksum = first 8 bytes of SHA-256("aim-share-v1\0" ‖ all bytes above)
//! ```
//!
//! The checksum detects typing and copying errors (any change is caught except with probability
//! 2⁻⁶⁴); it is not a signature. Shares that are well-formed but wrong (forged, or from another
//! split with the same header) are caught after reconstruction by the key fingerprint.

use std::fmt;
use std::str::FromStr;

use aim_crypto::hash::{hmac_sha256, sha256_parts};
use aim_crypto::{SecretKey, Zeroizing};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::base32;

/// The text prefix of version-1 shares.
pub const SHARE_PREFIX: &str = "aim-share-v1:";
/// The payload version byte of this format.
pub const SHARE_VERSION: u8 = 1;
/// Length of the share value (the escrowed key is 256 bits).
pub const SHARE_VALUE_LEN: usize = 32;
/// Length of the checksum.
pub const CHECKSUM_LEN: usize = 8;
/// Longest vault or profile id a share carries, in bytes.
pub const MAX_ID_LEN: usize = 64;

const CHECKSUM_DOMAIN: &[u8] = b"aim-share-v1\0";
const FINGERPRINT_INFO: &[u8] = b"aim-vault-escrow-fingerprint-v1";

/// A short keyed hash of an escrowed key: the first 16 bytes of
/// HMAC-SHA256(key, "aim-vault-escrow-fingerprint-v1").
///
/// It lets shares be matched to an escrow and the reconstructed key be checked before use,
/// without revealing anything usable about the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint(pub [u8; 16]);

impl KeyFingerprint {
    /// The fingerprint of `key`.
    pub fn of(key: &SecretKey) -> Self {
        let mac = hmac_sha256(key.expose(), FINGERPRINT_INFO);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        Self(out)
    }

    /// Constant-time check that this is the fingerprint of `key`.
    pub fn matches(&self, key: &SecretKey) -> bool {
        aim_crypto::kdf::ct_eq(&Self::of(key).0, &self.0)
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({self})")
    }
}

impl FromStr for KeyFingerprint {
    type Err = ShareFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| ShareFormatError::InvalidField {
            field: "fingerprint",
            reason: "not 32 hexadecimal digits",
        })?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| ShareFormatError::InvalidField {
                field: "fingerprint",
                reason: "not 32 hexadecimal digits",
            })?;
        Ok(Self(arr))
    }
}

impl Serialize for KeyFingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KeyFingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What every share of one escrow has in common.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowHeader {
    /// The escrow's id.
    pub escrow_id: Uuid,
    /// The vault the key belongs to.
    pub vault_id: String,
    /// The profile whose data key the escrowed key unwraps.
    pub profile_id: String,
    /// Fingerprint of the escrowed key.
    pub fingerprint: KeyFingerprint,
    /// Shares needed to recover (K).
    pub threshold: u8,
    /// Shares made (N).
    pub total: u8,
}

impl EscrowHeader {
    /// The first field in which `other` differs from `self`, if any.
    pub(crate) fn first_difference(&self, other: &Self) -> Option<&'static str> {
        if self.escrow_id != other.escrow_id {
            Some("escrow id")
        } else if self.vault_id != other.vault_id {
            Some("vault id")
        } else if self.profile_id != other.profile_id {
            Some("profile id")
        } else if self.fingerprint != other.fingerprint {
            Some("key fingerprint")
        } else if self.threshold != other.threshold {
            Some("threshold")
        } else if self.total != other.total {
            Some("total")
        } else {
            None
        }
    }
}

/// Why a share's text was rejected. Never contains share bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareFormatError {
    /// The text does not start with `aim-share-`.
    #[error("not an AIM vault share (expected text starting with `aim-share-v1:`)")]
    MissingPrefix,
    /// A share of a format version this build does not read.
    #[error("unsupported share format `{0}` (this build reads aim-share-v1)")]
    UnsupportedVersion(String),
    /// A character outside the share alphabet.
    #[error("invalid character at position {offset} of the share data (allowed: a-z and 2-7)")]
    InvalidCharacter {
        /// Offset in the data after the prefix, from 0.
        offset: usize,
    },
    /// The data has a length no share can have, or is cut short.
    #[error("share data is truncated or has extra characters")]
    BadLength,
    /// The checksum does not match: the share was mistyped or damaged.
    #[error("checksum mismatch: the share was mistyped or damaged")]
    ChecksumMismatch,
    /// A field holds a value no valid share has.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// One Shamir share of an escrowed key, with its escrow header.
///
/// `Debug` never shows the share value; the value zeroizes on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    header: EscrowHeader,
    index: u8,
    value: Zeroizing<[u8; SHARE_VALUE_LEN]>,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("header", &self.header)
            .field("index", &self.index)
            .field("value", &"..")
            .finish()
    }
}

impl Share {
    /// Builds a share, checking every field the text format checks.
    pub fn new(
        header: EscrowHeader,
        index: u8,
        value: [u8; SHARE_VALUE_LEN],
    ) -> Result<Self, ShareFormatError> {
        let value = Zeroizing::new(value);
        validate_header(&header)?;
        if index == 0 || index > header.total {
            return Err(ShareFormatError::InvalidField {
                field: "index",
                reason: "must be between 1 and the total number of shares",
            });
        }
        Ok(Self {
            header,
            index,
            value,
        })
    }

    /// The escrow this share belongs to.
    pub fn header(&self) -> &EscrowHeader {
        &self.header
    }

    /// The share's index x (1..=N).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The share value y. Keep the borrow short and never log it.
    pub fn expose_value(&self) -> &[u8; SHARE_VALUE_LEN] {
        &self.value
    }

    /// The share as one line of text (`aim-share-v1:...`), zeroized on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        let payload = self.payload();
        let mut text = Zeroizing::new(String::with_capacity(
            SHARE_PREFIX.len() + payload.len() * 8 / 5 + 1,
        ));
        text.push_str(SHARE_PREFIX);
        text.push_str(&Zeroizing::new(base32::encode(&payload)));
        text
    }

    /// Parses one share. Surrounding whitespace is ignored; nothing else is forgiven.
    pub fn parse(text: &str) -> Result<Self, ShareFormatError> {
        let text = text.trim();
        let Some(data) = text.strip_prefix(SHARE_PREFIX) else {
            if let Some(rest) = text.strip_prefix("aim-share-") {
                let version: String = rest
                    .chars()
                    .take_while(|c| *c != ':')
                    .take(16)
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                return Err(ShareFormatError::UnsupportedVersion(format!(
                    "aim-share-{version}"
                )));
            }
            return Err(ShareFormatError::MissingPrefix);
        };
        let payload = Zeroizing::new(base32::decode(data).map_err(|e| match e {
            base32::Base32Error::InvalidCharacter { offset } => {
                ShareFormatError::InvalidCharacter { offset }
            }
            base32::Base32Error::InvalidLength { .. } => ShareFormatError::BadLength,
            base32::Base32Error::NonCanonical => ShareFormatError::ChecksumMismatch,
        })?);
        Self::from_payload(&payload)
    }

    fn payload(&self) -> Zeroizing<Vec<u8>> {
        let h = &self.header;
        let mut p = Zeroizing::new(Vec::with_capacity(
            1 + 16
                + 2
                + h.vault_id.len()
                + h.profile_id.len()
                + 16
                + 3
                + SHARE_VALUE_LEN
                + CHECKSUM_LEN,
        ));
        p.push(SHARE_VERSION);
        p.extend_from_slice(h.escrow_id.as_bytes());
        // Lengths were validated (1..=64) when the share was built.
        p.push(h.vault_id.len() as u8);
        p.extend_from_slice(h.vault_id.as_bytes());
        p.push(h.profile_id.len() as u8);
        p.extend_from_slice(h.profile_id.as_bytes());
        p.extend_from_slice(&h.fingerprint.0);
        p.push(h.threshold);
        p.push(h.total);
        p.push(self.index);
        p.extend_from_slice(&self.value[..]);
        let sum = checksum(&p);
        p.extend_from_slice(&sum);
        p
    }

    fn from_payload(p: &[u8]) -> Result<Self, ShareFormatError> {
        if p.len() < CHECKSUM_LEN {
            return Err(ShareFormatError::BadLength);
        }
        let (body, sum) = p.split_at(p.len() - CHECKSUM_LEN);
        if !aim_crypto::kdf::ct_eq(&checksum(body), sum) {
            return Err(ShareFormatError::ChecksumMismatch);
        }
        let mut r = Reader(body);
        let version = r.byte("version")?;
        if version != SHARE_VERSION {
            return Err(ShareFormatError::InvalidField {
                field: "version",
                reason: "unknown payload version",
            });
        }
        let escrow_id = Uuid::from_bytes(r.array::<16>("escrow id")?);
        let vault_id = r.id("vault id")?;
        let profile_id = r.id("profile id")?;
        let fingerprint = KeyFingerprint(r.array::<16>("fingerprint")?);
        let threshold = r.byte("threshold")?;
        let total = r.byte("total")?;
        let index = r.byte("index")?;
        let value = Zeroizing::new(r.array::<SHARE_VALUE_LEN>("share value")?);
        if !r.0.is_empty() {
            return Err(ShareFormatError::BadLength);
        }
        Self::new(
            EscrowHeader {
                escrow_id,
                vault_id,
                profile_id,
                fingerprint,
                threshold,
                total,
            },
            index,
            *value,
        )
    }
}

impl FromStr for Share {
    type Err = ShareFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

pub(crate) fn validate_header(h: &EscrowHeader) -> Result<(), ShareFormatError> {
    for (field, id) in [("vault id", &h.vault_id), ("profile id", &h.profile_id)] {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(ShareFormatError::InvalidField {
                field,
                reason: "must be 1 to 64 bytes",
            });
        }
    }
    if h.threshold < 2 {
        return Err(ShareFormatError::InvalidField {
            field: "threshold",
            reason: "must be at least 2",
        });
    }
    if h.total < h.threshold {
        return Err(ShareFormatError::InvalidField {
            field: "total",
            reason: "must be at least the threshold",
        });
    }
    Ok(())
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = sha256_parts(&[CHECKSUM_DOMAIN, body]);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&[u8], ShareFormatError> {
        if self.0.len() < n {
            return Err(ShareFormatError::InvalidField {
                field,
                reason: "cut short",
            });
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, ShareFormatError> {
        Ok(self.take(1, field)?[0])
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ShareFormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn id(&mut self, field: &'static str) -> Result<String, ShareFormatError> {
        let len = usize::from(self.byte(field)?);
        if len == 0 || len > MAX_ID_LEN {
            return Err(ShareFormatError::InvalidField {
                field,
                reason: "must be 1 to 64 bytes",
            });
        }
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ShareFormatError::InvalidField {
            field,
            reason: "not UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> EscrowHeader {
        EscrowHeader {
            escrow_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            vault_id: "vault-1".into(),
            profile_id: "default".into(),
            fingerprint: KeyFingerprint([7; 16]),
            threshold: 3,
            total: 5,
        }
    }

    #[test]
    fn text_round_trip_and_layout() {
        let share = Share::new(header(), 4, [0xAB; 32]).unwrap();
        let text = share.to_text();
        assert!(text.starts_with(SHARE_PREFIX));
        let data = &text[SHARE_PREFIX.len()..];
        assert!(
            data.bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        );
        let back = Share::parse(&text).unwrap();
        assert_eq!(back, share);
        assert_eq!(back.index(), 4);
        assert_eq!(back.header(), &header());
        let payload = base32::decode(data).unwrap();
        assert_eq!(payload.len(), 1 + 16 + 1 + 7 + 1 + 7 + 16 + 3 + 32 + 8);
        assert_eq!(payload[0], SHARE_VERSION);
        // Surrounding whitespace is fine.
        assert_eq!(Share::parse(&format!("  {}\n", &*text)).unwrap(), share);
    }

    #[test]
    fn debug_hides_the_value() {
        let share = Share::new(header(), 1, [0xAB; 32]).unwrap();
        let dbg = format!("{share:?}");
        assert!(!dbg.to_lowercase().contains("abab"), "{dbg}");
        assert!(!dbg.contains("171"), "{dbg}");
    }

    #[test]
    fn fingerprint_is_keyed_and_stable() {
        let k1 = SecretKey::from_bytes([1; 32]);
        let k2 = SecretKey::from_bytes([2; 32]);
        assert_eq!(KeyFingerprint::of(&k1), KeyFingerprint::of(&k1));
        assert_ne!(KeyFingerprint::of(&k1), KeyFingerprint::of(&k2));
        assert!(KeyFingerprint::of(&k1).matches(&k1));
        assert!(!KeyFingerprint::of(&k1).matches(&k2));
        let expected = &hmac_sha256(&[1; 32], b"aim-vault-escrow-fingerprint-v1")[..16];
        assert_eq!(&KeyFingerprint::of(&k1).0[..], expected);
        let hex = KeyFingerprint::of(&k1).to_string();
        assert_eq!(
            hex.parse::<KeyFingerprint>().unwrap(),
            KeyFingerprint::of(&k1)
        );
    }

    #[test]
    fn invalid_fields_are_rejected_when_building() {
        let mut h = header();
        h.threshold = 1;
        assert!(matches!(
            Share::new(h, 1, [0; 32]),
            Err(ShareFormatError::InvalidField {
                field: "threshold",
                ..
            })
        ));
        let mut h = header();
        h.total = 2;
        assert!(matches!(
            Share::new(h, 1, [0; 32]),
            Err(ShareFormatError::InvalidField { field: "total", .. })
        ));
        for index in [0, 6, 255] {
            assert!(matches!(
                Share::new(header(), index, [0; 32]),
                Err(ShareFormatError::InvalidField { field: "index", .. })
            ));
        }
        let mut h = header();
        h.profile_id = "p".repeat(65);
        assert!(Share::new(h, 1, [0; 32]).is_err());
        let mut h = header();
        h.vault_id = String::new();
        assert!(Share::new(h, 1, [0; 32]).is_err());
    }

    /// Re-encodes a payload with a valid checksum, to test the field checks behind it.
    fn with_checksum(mut body: Vec<u8>) -> String {
        let sum = checksum(&body);
        body.extend_from_slice(&sum);
        format!("{SHARE_PREFIX}{}", base32::encode(&body))
    }

    #[test]
    fn field_checks_behind_a_valid_checksum() {
        let share = Share::new(header(), 2, [9; 32]).unwrap();
        let good = share.payload();
        let body = good[..good.len() - CHECKSUM_LEN].to_vec();
        assert_eq!(Share::parse(&with_checksum(body.clone())).unwrap(), share);

        let mut v = body.clone();
        v[0] = 2;
        assert!(matches!(
            Share::parse(&with_checksum(v)),
            Err(ShareFormatError::InvalidField {
                field: "version",
                ..
            })
        ));
        // Index byte is 32 bytes before the end of the body.
        let idx = body.len() - SHARE_VALUE_LEN - 1;
        let mut v = body.clone();
        v[idx] = 0;
        assert!(matches!(
            Share::parse(&with_checksum(v)),
            Err(ShareFormatError::InvalidField { field: "index", .. })
        ));
        let mut v = body.clone();
        v.push(0);
        assert_eq!(
            Share::parse(&with_checksum(v)),
            Err(ShareFormatError::BadLength)
        );
        let mut v = body.clone();
        v.pop();
        assert!(matches!(
            Share::parse(&with_checksum(v)),
            Err(ShareFormatError::InvalidField {
                field: "share value",
                ..
            })
        ));
        let mut v = body.clone();
        v[17] = 0; // vault id length
        assert!(matches!(
            Share::parse(&with_checksum(v)),
            Err(ShareFormatError::InvalidField {
                field: "vault id",
                ..
            })
        ));
        let mut v = body;
        v[18] = 0xFF; // not UTF-8
        assert!(matches!(
            Share::parse(&with_checksum(v)),
            Err(ShareFormatError::InvalidField {
                field: "vault id",
                reason: "not UTF-8"
            })
        ));
    }

    #[test]
    fn prefix_and_version_errors() {
        assert_eq!(Share::parse(""), Err(ShareFormatError::MissingPrefix));
        assert_eq!(Share::parse("hello"), Err(ShareFormatError::MissingPrefix));
        assert_eq!(
            Share::parse("aim-share-v2:aaaa"),
            Err(ShareFormatError::UnsupportedVersion("aim-share-v2".into()))
        );
        assert_eq!(
            Share::parse("aim-share-v1:"),
            Err(ShareFormatError::BadLength)
        );
        assert_eq!(
            Share::parse("aim-share-v1:aaaa!aaa"),
            Err(ShareFormatError::InvalidCharacter { offset: 4 })
        );
    }

    fn arb_share() -> impl Strategy<Value = Share> {
        (
            any::<u128>(),
            "[a-zA-Z0-9_-]{1,64}",
            "\\PC{1,16}",
            any::<[u8; 16]>(),
            2u8..=255,
            any::<u8>(),
            any::<u8>(),
            any::<[u8; 32]>(),
        )
            .prop_filter_map(
                "valid share",
                |(id, vault, profile, fp, k, extra, idx, value)| {
                    let total = k.saturating_add(extra % 8);
                    let index = 1 + idx % total;
                    Share::new(
                        EscrowHeader {
                            escrow_id: Uuid::from_u128(id),
                            vault_id: vault,
                            profile_id: profile,
                            fingerprint: KeyFingerprint(fp),
                            threshold: k,
                            total,
                        },
                        index,
                        value,
                    )
                    .ok()
                },
            )
    }

    proptest! {
        #[test]
        fn encode_decode_identity(share in arb_share()) {
            let text = share.to_text();
            prop_assert_eq!(Share::parse(&text).unwrap(), share);
        }

        #[test]
        fn any_single_character_change_is_rejected(
            share in arb_share(),
            pos in any::<prop::sample::Index>(),
            replacement in any::<char>(),
        ) {
            let text = share.to_text();
            let chars: Vec<char> = text.chars().collect();
            let i = pos.index(chars.len());
            prop_assume!(chars[i] != replacement);
            let mut changed = chars.clone();
            changed[i] = replacement;
            let changed: String = changed.into_iter().collect();
            let result = Share::parse(&changed);
            prop_assert!(result.is_err(), "accepted change at {} to {:?}", i, replacement);
        }

        #[test]
        fn any_alphabet_substitution_is_rejected(
            share in arb_share(),
            pos in any::<prop::sample::Index>(),
            c in prop::sample::select(b"abcdefghijklmnopqrstuvwxyz234567".to_vec()),
        ) {
            let text = share.to_text();
            let data_start = SHARE_PREFIX.len();
            let mut bytes = text.as_bytes().to_vec();
            let i = data_start + pos.index(bytes.len() - data_start);
            prop_assume!(bytes[i] != c);
            bytes[i] = c;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(Share::parse(&changed).is_err());
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,300}") {
            let _ = Share::parse(&text);
        }

        #[test]
        fn parse_prefixed_garbage_never_panics(data in "[a-z2-7]{0,300}") {
            let _ = Share::parse(&format!("{SHARE_PREFIX}{data}"));
        }
    }
}
