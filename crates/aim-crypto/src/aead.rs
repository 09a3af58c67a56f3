//! AES-256-GCM sealing with associated data, in a versioned envelope.
//!
//! Envelope format, version 1 (all lengths in bytes):
//!
//! ```text
//! +---------+-----------+---------------------------+
//! | version | nonce     | ciphertext ‖ tag          |
//! | 1: 0x01 | 12        | len(plaintext) + 16       |
//! +---------+-----------+---------------------------+
//! ```
//!
//! The nonce is 96 random bits, fresh for every seal. The GCM associated data is the version
//! byte followed by the caller's associated data, so neither the version nor the context the
//! caller binds (ids, classification, ...) can be changed without [`CryptoError::DecryptFailed`].
//! The associated data itself is not stored: the caller supplies it again to open.
//!
//! With random nonces, one key should seal fewer than 2³² messages (NIST SP 800-38D §8.3);
//! rotate keys well before that.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::{CryptoError, Result, SecretKey, random};

/// The envelope version this build writes.
pub const ENVELOPE_VERSION: u8 = 1;
/// Nonce length.
pub const NONCE_LEN: usize = 12;
/// Authentication tag length.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to the plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// An AES-256-GCM key with its expanded key schedule, for sealing many messages.
#[derive(Clone)]
pub struct SealingKey {
    cipher: Aes256Gcm,
}

impl SealingKey {
    /// Prepares `key` for sealing and opening.
    pub fn new(key: &SecretKey) -> Self {
        let key = aes_gcm::Key::<Aes256Gcm>::from(*key.expose());
        Self {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// Seals `plaintext`, binding `aad`; returns a version-1 envelope.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce_bytes = random::random_array::<NONCE_LEN>()?;
        let full_aad = full_aad(ENVELOPE_VERSION, aad);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: plaintext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| CryptoError::DecryptFailed)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens an envelope sealed with the same key and `aad`. The plaintext zeroizes on drop.
    pub fn open(&self, aad: &[u8], envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let Some((&version, rest)) = envelope.split_first() else {
            return Err(CryptoError::EnvelopeTruncated {
                len: 0,
                min: OVERHEAD,
            });
        };
        if version != ENVELOPE_VERSION {
            return Err(CryptoError::EnvelopeVersion(version));
        }
        if envelope.len() < OVERHEAD {
            return Err(CryptoError::EnvelopeTruncated {
                len: envelope.len(),
                min: OVERHEAD,
            });
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::DecryptFailed)?;
        let full_aad = full_aad(version, aad);
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: &full_aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::DecryptFailed)
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// Seals `plaintext` under `key`, binding `aad` (see the module docs for the format).
pub fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    SealingKey::new(key).seal(aad, plaintext)
}

/// Opens an envelope made by [`seal`] with the same key and `aad`.
pub fn open(key: &SecretKey, aad: &[u8], envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    SealingKey::new(key).open(aad, envelope)
}

fn full_aad(version: u8, aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + aad.len());
    v.push(version);
    v.extend_from_slice(aad);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trip_and_layout() {
        let sealed = seal(&key(1), b"ctx", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert_eq!(open(&key(1), b"ctx", &sealed).unwrap().as_slice(), b"hello");
        let empty = seal(&key(1), b"", b"").unwrap();
        assert_eq!(open(&key(1), b"", &empty).unwrap().as_slice(), b"");
    }

    #[test]
    fn nonces_are_fresh() {
        let a = seal(&key(1), b"", b"same").unwrap();
        let b = seal(&key(1), b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_key_aad_or_any_flipped_byte_fails() {
        let sealed = seal(&key(1), b"memory-1", b"secret").unwrap();
        assert_eq!(
            open(&key(2), b"memory-1", &sealed).unwrap_err(),
            CryptoError::DecryptFailed
        );
        assert_eq!(
            open(&key(1), b"memory-2", &sealed).unwrap_err(),
            CryptoError::DecryptFailed
        );
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(
                open(&key(1), b"memory-1", &t).unwrap_err(),
                CryptoError::DecryptFailed,
                "byte {i}"
            );
        }
        let mut v = sealed.clone();
        v[0] = 2;
        assert_eq!(
            open(&key(1), b"memory-1", &v).unwrap_err(),
            CryptoError::EnvelopeVersion(2)
        );
    }

    #[test]
    fn truncation_is_a_typed_error() {
        let sealed = seal(&key(1), b"", b"secret").unwrap();
        assert_eq!(
            open(&key(1), b"", &[]).unwrap_err(),
            CryptoError::EnvelopeTruncated {
                len: 0,
                min: OVERHEAD
            }
        );
        for len in 1..OVERHEAD {
            assert_eq!(
                open(&key(1), b"", &sealed[..len]).unwrap_err(),
                CryptoError::EnvelopeTruncated { len, min: OVERHEAD }
            );
        }
        for len in OVERHEAD..sealed.len() {
            assert_eq!(
                open(&key(1), b"", &sealed[..len]).unwrap_err(),
                CryptoError::DecryptFailed
            );
        }
    }
}
