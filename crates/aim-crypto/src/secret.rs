//! Secret values that zeroize on drop and never print their contents.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{CryptoError, Result, random};

/// A 256-bit symmetric key (data key, key-encryption key, MAC key, ...).
///
/// Zeroized on drop; `Debug` prints `SecretKey(..)`; equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(Self(random::random_array()?))
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Copies a key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidLength {
            what: "secret key",
            expected: "32",
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretKey {}

/// Variable-length secret bytes (a passphrase, a decrypted payload, a key file).
///
/// Zeroized on drop; `Debug` prints only the length.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when this value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<String> for SecretBytes {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut v: Zeroizing<Vec<u8>>) -> Self {
        Self(std::mem::take(&mut *v))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        crate::kdf::ct_eq(&self.0, &other.0)
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secret_bytes() {
        let key = SecretKey::from_bytes([0xAB; 32]);
        let text = format!("{key:?}");
        assert_eq!(text, "SecretKey(..)");
        let bytes = SecretBytes::new(b"hunter2".to_vec());
        let text = format!("{bytes:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text, "SecretBytes(7 bytes)");
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(SecretKey::from_slice(&[0; 32]).is_ok());
        assert_eq!(
            SecretKey::from_slice(&[0; 31]),
            Err(CryptoError::InvalidLength {
                what: "secret key",
                expected: "32",
                got: 31
            })
        );
    }

    #[test]
    fn generated_keys_differ_and_compare() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.clone(), a);
    }
}
