//! Ed25519 agent identities in the encodings the AIM SDK and server use.
//!
//! * public key: standard base64 (with padding) of the 32-byte key (44 characters);
//! * private key: standard base64 of the 64-byte `seed ‖ public key` form (what the AIM server
//!   and Go return; what we write) or of the bare 32-byte seed (also accepted on import);
//! * signature: standard base64 of the 64-byte detached signature.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::{CryptoError, Result, b64, hash, random};

/// An agent's Ed25519 key pair. The secret half zeroizes on drop and never prints.
#[derive(Clone)]
pub struct AgentKeypair {
    signing: SigningKey,
}

impl AgentKeypair {
    /// A fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let seed = Zeroizing::new(random::random_array::<32>()?);
        Ok(Self::from_seed(&seed))
    }

    /// The key pair for a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// Imports a private key in either AIM encoding: base64 of 64 bytes (`seed ‖ public`,
    /// whose public half must match the seed) or of the 32-byte seed.
    pub fn from_private_key_b64(private_key: &str) -> Result<Self> {
        let bytes = Zeroizing::new(b64::decode(private_key, "private key")?);
        match bytes.len() {
            32 | 64 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                seed.copy_from_slice(&bytes[..32]);
                let pair = Self::from_seed(&seed);
                if bytes.len() == 64 && pair.public_key().as_bytes()[..] != bytes[32..] {
                    return Err(CryptoError::PublicKeyMismatch);
                }
                Ok(pair)
            }
            got => Err(CryptoError::InvalidLength {
                what: "private key",
                expected: "32 (seed) or 64 (seed ‖ public key)",
                got,
            }),
        }
    }

    /// Imports a private key and checks it against the public key it is stored with, as the
    /// SDK does (the base64 text of the derived public key must equal `public_key_b64`).
    pub fn from_private_key_b64_checked(private_key: &str, public_key_b64: &str) -> Result<Self> {
        let pair = Self::from_private_key_b64(private_key)?;
        if pair.public_key().to_b64() != public_key_b64.trim() {
            return Err(CryptoError::PublicKeyMismatch);
        }
        Ok(pair)
    }

    /// The private key as standard base64 of the 64-byte `seed ‖ public key` form.
    pub fn private_key_b64(&self) -> Zeroizing<String> {
        let mut both = Zeroizing::new([0u8; 64]);
        both[..32].copy_from_slice(&self.signing.to_bytes());
        both[32..].copy_from_slice(self.signing.verifying_key().as_bytes());
        Zeroizing::new(b64::encode(&both[..]))
    }

    /// The 32-byte seed. Keep the borrow short and never log it.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> AgentPublicKey {
        AgentPublicKey(self.signing.verifying_key())
    }

    /// Signs `message` (a detached Ed25519 signature).
    pub fn sign(&self, message: &[u8]) -> AgentSignature {
        AgentSignature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for AgentKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKeypair")
            .field("public_key", &self.public_key().to_b64())
            .finish()
    }
}

/// An agent's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentPublicKey(VerifyingKey);

impl AgentPublicKey {
    /// Parses standard base64 of 32 bytes; rejects bytes that are not a valid, non-weak key.
    pub fn from_b64(text: &str) -> Result<Self> {
        let bytes = b64::decode_array::<32>(text, "public key", "32")?;
        Self::from_bytes(&bytes)
    }

    /// Parses the raw 32 bytes; rejects bytes that are not a valid, non-weak key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(Self(key))
    }

    /// Standard base64 with padding (44 characters).
    pub fn to_b64(&self) -> String {
        b64::encode(self.0.as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// A short stable identifier: the first 8 bytes of SHA-256 of the key, as hex.
    pub fn key_id(&self) -> String {
        let digest = hash::sha256(self.0.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Verifies a detached signature over `message` (strict: rejects malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &AgentSignature) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Debug for AgentPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentPublicKey({})", self.to_b64())
    }
}

impl fmt::Display for AgentPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b64())
    }
}

/// A detached Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AgentSignature([u8; 64]);

impl AgentSignature {
    /// Parses standard base64 of 64 bytes.
    pub fn from_b64(text: &str) -> Result<Self> {
        Ok(Self(b64::decode_array::<64>(text, "signature", "64")?))
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// Standard base64 with padding (88 characters).
    pub fn to_b64(&self) -> String {
        b64::encode(&self.0)
    }

    /// The raw 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }
}

impl fmt::Debug for AgentSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentSignature({})", self.to_b64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::*;

    #[test]
    fn sdk_vector_keys_round_trip() {
        let pair = AgentKeypair::from_seed(&SEED);
        assert_eq!(pair.public_key().to_b64(), PUBLIC_KEY_B64);
        assert_eq!(pair.private_key_b64().as_str(), PRIVATE_KEY_64_B64);
        let from64 = AgentKeypair::from_private_key_b64(PRIVATE_KEY_64_B64).unwrap();
        let from32 = AgentKeypair::from_private_key_b64(PRIVATE_KEY_32_B64).unwrap();
        assert_eq!(from64.public_key(), pair.public_key());
        assert_eq!(from32.public_key(), pair.public_key());
        AgentKeypair::from_private_key_b64_checked(PRIVATE_KEY_32_B64, PUBLIC_KEY_B64).unwrap();
    }

    #[test]
    fn rejects_bad_private_keys() {
        assert_eq!(
            AgentKeypair::from_private_key_b64("invalid-base64").unwrap_err(),
            CryptoError::InvalidBase64 {
                what: "private key"
            }
        );
        let short = b64::encode(&[1u8; 31]);
        assert!(matches!(
            AgentKeypair::from_private_key_b64(&short),
            Err(CryptoError::InvalidLength { got: 31, .. })
        ));
        // 64-byte form whose public half belongs to another key.
        let other = AgentKeypair::from_seed(&[9u8; 32]);
        let mut both = SEED.to_vec();
        both.extend_from_slice(other.public_key().as_bytes());
        assert_eq!(
            AgentKeypair::from_private_key_b64(&b64::encode(&both)).unwrap_err(),
            CryptoError::PublicKeyMismatch
        );
        assert_eq!(
            AgentKeypair::from_private_key_b64_checked(
                PRIVATE_KEY_32_B64,
                &other.public_key().to_b64()
            )
            .unwrap_err(),
            CryptoError::PublicKeyMismatch
        );
    }

    #[test]
    fn sign_and_verify_detect_tampering() {
        let pair = AgentKeypair::generate().unwrap();
        let sig = pair.sign(b"message");
        let public = pair.public_key();
        public.verify(b"message", &sig).unwrap();
        assert_eq!(
            public.verify(b"messagf", &sig),
            Err(CryptoError::BadSignature)
        );
        let mut bytes = sig.to_bytes();
        bytes[10] ^= 0x40;
        assert_eq!(
            public.verify(b"message", &AgentSignature::from_bytes(bytes)),
            Err(CryptoError::BadSignature)
        );
        let round = AgentSignature::from_b64(&sig.to_b64()).unwrap();
        assert_eq!(round, sig);
        let other = AgentKeypair::generate().unwrap().public_key();
        assert_eq!(
            other.verify(b"message", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn public_key_parsing_is_strict() {
        assert!(AgentPublicKey::from_b64(PUBLIC_KEY_B64).is_ok());
        assert!(matches!(
            AgentPublicKey::from_b64(&b64::encode(&[1u8; 31])),
            Err(CryptoError::InvalidLength { .. })
        ));
        // The identity point is a weak (small-order) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            AgentPublicKey::from_bytes(&identity).unwrap_err(),
            CryptoError::InvalidPublicKey
        );
    }

    #[test]
    fn debug_hides_the_secret_half() {
        let pair = AgentKeypair::from_seed(&SEED);
        let text = format!("{pair:?}");
        assert!(text.contains(PUBLIC_KEY_B64));
        assert!(!text.contains(PRIVATE_KEY_32_B64.trim_end_matches('=')));
    }

    #[test]
    fn key_id_is_first_8_bytes_of_sha256_as_hex() {
        let public = AgentKeypair::from_seed(&SEED).public_key();
        assert_eq!(
            public.key_id(),
            hex::encode(&hash::sha256(public.as_bytes())[..8])
        );
        assert_ne!(
            public.key_id(),
            AgentKeypair::from_seed(&[7; 32]).public_key().key_id()
        );
    }
}
