//! Hybrid post-quantum agent keys: Ed25519 beside ML-DSA-65 (FIPS 204), both required.
//!
//! Encodings (as aim-sdk 2.0.3's `crypto/pqc.py` and upstream's server use them):
//!
//! * ML-DSA-65 public key: the raw FIPS 204 `pkEncode` bytes (1,952), standard base64 with
//!   padding;
//! * ML-DSA-65 signature: the raw FIPS 204 `sigEncode` bytes (3,309), standard base64;
//! * ML-DSA-65 private key: only its 32-byte seed ξ (FIPS 204 `KeyGen_internal`), from which
//!   the whole key is re-derived; it zeroizes on drop and never prints.
//!
//! Signatures are *pure* ML-DSA with an empty context string, over the same message bytes the
//! Ed25519 half signs: that is what liboqs (the SDK) and upstream's `VerifyHybrid` produce and
//! check. Signing is hedged (FIPS 204 Algorithm 2 with fresh randomness), not deterministic.
//!
//! A [`HybridSignature`] verifies only when **both** halves verify under **both** halves of the
//! [`HybridPublicKey`]. The two halves are separable by construction (each is an ordinary
//! signature over the message), so what stops a stripped signature is policy: a verifier that
//! knows an agent is in hybrid mode must call [`HybridPublicKey::verify`] and never accept the
//! Ed25519 half alone.

use std::fmt;

use ml_dsa::{ExpandedSigningKey, MlDsa65, Signature as MlDsaSig, VerifyingKey};
use zeroize::Zeroizing;

use crate::identity::{AgentKeypair, AgentPublicKey, AgentSignature};
use crate::{CryptoError, Result, b64, hash, random};

/// The algorithm name of the post-quantum half, as the SDK and `/crypto/algorithms` spell it.
pub const ML_DSA_65: &str = "ML-DSA-65";
/// The algorithm name of a hybrid key or signature.
pub const HYBRID_ED25519_ML_DSA_65: &str = "Ed25519+ML-DSA-65";
/// Length of an encoded ML-DSA-65 public key (FIPS 204 Table 2).
pub const ML_DSA_65_PUBLIC_KEY_LEN: usize = 1952;
/// Length of an encoded ML-DSA-65 signature (FIPS 204 Table 2).
pub const ML_DSA_65_SIGNATURE_LEN: usize = 3309;
/// Length of the ML-DSA key-generation seed ξ.
pub const ML_DSA_SEED_LEN: usize = 32;

/// An ML-DSA-65 key pair, kept as its seed and expanded key. Both zeroize on drop (the
/// `ml-dsa` crate's `zeroize` feature); neither prints.
#[derive(Clone)]
pub struct MlDsaKeypair {
    seed: Zeroizing<[u8; ML_DSA_SEED_LEN]>,
    signing: Box<ExpandedSigningKey<MlDsa65>>,
}

impl MlDsaKeypair {
    /// A fresh key pair from a seed drawn from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let seed = Zeroizing::new(random::random_array::<ML_DSA_SEED_LEN>()?);
        Ok(Self::from_seed(&seed))
    }

    /// The key pair for a 32-byte seed ξ (FIPS 204 `ML-DSA.KeyGen_internal`).
    pub fn from_seed(seed: &[u8; ML_DSA_SEED_LEN]) -> Self {
        let xi = Zeroizing::new(ml_dsa::Seed::from(*seed));
        Self {
            seed: Zeroizing::new(*seed),
            signing: Box::new(ExpandedSigningKey::<MlDsa65>::from_seed(&xi)),
        }
    }

    /// Imports a seed stored as standard base64 of its 32 bytes.
    pub fn from_seed_b64(text: &str) -> Result<Self> {
        let seed = Zeroizing::new(b64::decode_array::<ML_DSA_SEED_LEN>(
            text,
            "ML-DSA seed",
            "32",
        )?);
        Ok(Self::from_seed(&seed))
    }

    /// The 32-byte seed. Keep the borrow short and never log it.
    pub fn seed(&self) -> Zeroizing<[u8; ML_DSA_SEED_LEN]> {
        self.seed.clone()
    }

    /// The seed as standard base64, for storage beside the Ed25519 private key.
    pub fn seed_b64(&self) -> Zeroizing<String> {
        Zeroizing::new(b64::encode(&self.seed()[..]))
    }

    /// The public half.
    pub fn public_key(&self) -> MlDsaPublicKey {
        let encoded = self.signing.verifying_key().encode();
        MlDsaPublicKey::from_encoded(encoded.as_slice())
    }

    /// Signs `message`: hedged pure ML-DSA-65 with an empty context string.
    pub fn sign(&self, message: &[u8]) -> Result<MlDsaSignature> {
        let mut rng = getrandom::SysRng;
        let sig = self
            .signing
            .sign_randomized(message, &[], &mut rng)
            .map_err(|_| CryptoError::MlDsaSigning)?;
        Ok(MlDsaSignature(sig.encode().as_slice().into()))
    }
}

impl fmt::Debug for MlDsaKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlDsaKeypair")
            .field("public_key_id", &self.public_key().key_id())
            .finish()
    }
}

/// An ML-DSA-65 public key: its encoding and the expanded verifying key.
#[derive(Clone)]
pub struct MlDsaPublicKey {
    encoded: Box<[u8]>,
    key: Box<VerifyingKey<MlDsa65>>,
}

impl MlDsaPublicKey {
    /// Parses the raw 1,952-byte FIPS 204 encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != ML_DSA_65_PUBLIC_KEY_LEN {
            return Err(CryptoError::InvalidLength {
                what: "ML-DSA-65 public key",
                expected: "1952",
                got: bytes.len(),
            });
        }
        Ok(Self::from_encoded(bytes))
    }

    /// Parses standard base64 (with padding) of the raw encoding.
    pub fn from_b64(text: &str) -> Result<Self> {
        Self::from_bytes(&b64::decode(text, "ML-DSA-65 public key")?)
    }

    /// `bytes` must be exactly [`ML_DSA_65_PUBLIC_KEY_LEN`] long (checked by every caller).
    fn from_encoded(bytes: &[u8]) -> Self {
        let mut enc = ml_dsa::EncodedVerifyingKey::<MlDsa65>::default();
        enc.as_mut_slice().copy_from_slice(bytes);
        Self {
            encoded: bytes.into(),
            key: Box::new(VerifyingKey::<MlDsa65>::decode(&enc)),
        }
    }

    /// The raw 1,952-byte encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// Standard base64 with padding of the raw encoding (2,604 characters).
    pub fn to_b64(&self) -> String {
        b64::encode(&self.encoded)
    }

    /// A short stable identifier: the first 8 bytes of SHA-256 of the encoding, as hex.
    pub fn key_id(&self) -> String {
        hex8(&hash::sha256(&self.encoded))
    }

    /// Verifies a pure ML-DSA-65 signature (empty context) over `message`.
    pub fn verify(&self, message: &[u8], signature: &MlDsaSignature) -> Result<()> {
        let sig = MlDsaSig::<MlDsa65>::try_from(&signature.0[..])
            .map_err(|_| CryptoError::BadMlDsaSignature)?;
        if self.key.verify_with_context(message, &[], &sig) {
            Ok(())
        } else {
            Err(CryptoError::BadMlDsaSignature)
        }
    }
}

impl PartialEq for MlDsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for MlDsaPublicKey {}

impl fmt::Debug for MlDsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MlDsaPublicKey({})", self.key_id())
    }
}

/// A detached ML-DSA-65 signature (3,309 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct MlDsaSignature(Box<[u8]>);

impl MlDsaSignature {
    /// Wraps the raw 3,309-byte encoding (its inner structure is checked when verifying).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != ML_DSA_65_SIGNATURE_LEN {
            return Err(CryptoError::InvalidLength {
                what: "ML-DSA-65 signature",
                expected: "3309",
                got: bytes.len(),
            });
        }
        Ok(Self(bytes.into()))
    }

    /// Parses standard base64 (with padding) of the raw encoding.
    pub fn from_b64(text: &str) -> Result<Self> {
        Self::from_bytes(&b64::decode(text, "ML-DSA-65 signature")?)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Standard base64 with padding (4,412 characters).
    pub fn to_b64(&self) -> String {
        b64::encode(&self.0)
    }
}

impl fmt::Debug for MlDsaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MlDsaSignature({} bytes)", self.0.len())
    }
}

/// An agent's hybrid key pair: its Ed25519 identity key and an ML-DSA-65 key.
#[derive(Clone, Debug)]
pub struct HybridKeypair {
    ed25519: AgentKeypair,
    ml_dsa: MlDsaKeypair,
}

impl HybridKeypair {
    /// Two fresh keys.
    pub fn generate() -> Result<Self> {
        Ok(Self::from_parts(
            AgentKeypair::generate()?,
            MlDsaKeypair::generate()?,
        ))
    }

    /// Joins an existing Ed25519 identity with an ML-DSA-65 key (an agent turning hybrid
    /// keeps its Ed25519 key).
    pub fn from_parts(ed25519: AgentKeypair, ml_dsa: MlDsaKeypair) -> Self {
        Self { ed25519, ml_dsa }
    }

    /// The Ed25519 half.
    pub fn ed25519(&self) -> &AgentKeypair {
        &self.ed25519
    }

    /// The ML-DSA-65 half.
    pub fn ml_dsa(&self) -> &MlDsaKeypair {
        &self.ml_dsa
    }

    /// Both public halves.
    pub fn public_key(&self) -> HybridPublicKey {
        HybridPublicKey::new(self.ed25519.public_key(), self.ml_dsa.public_key())
    }

    /// Signs `message` with both keys.
    pub fn sign(&self, message: &[u8]) -> Result<HybridSignature> {
        Ok(HybridSignature {
            ed25519: self.ed25519.sign(message),
            ml_dsa: self.ml_dsa.sign(message)?,
        })
    }
}

/// The public halves of a hybrid key, as the server stores them for a hybrid-mode agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HybridPublicKey {
    ed25519: AgentPublicKey,
    ml_dsa: MlDsaPublicKey,
}

impl HybridPublicKey {
    /// Joins the two registered public keys.
    pub fn new(ed25519: AgentPublicKey, ml_dsa: MlDsaPublicKey) -> Self {
        Self { ed25519, ml_dsa }
    }

    /// The Ed25519 half.
    pub fn ed25519(&self) -> &AgentPublicKey {
        &self.ed25519
    }

    /// The ML-DSA-65 half.
    pub fn ml_dsa(&self) -> &MlDsaPublicKey {
        &self.ml_dsa
    }

    /// Verifies both halves over `message`; both must verify. The Ed25519 half is checked
    /// first (it is cheaper): its failure is [`CryptoError::BadSignature`], the ML-DSA half's
    /// is [`CryptoError::BadMlDsaSignature`].
    pub fn verify(&self, message: &[u8], signature: &HybridSignature) -> Result<()> {
        self.ed25519.verify(message, &signature.ed25519)?;
        self.ml_dsa.verify(message, &signature.ml_dsa)
    }
}

/// A hybrid signature: an Ed25519 signature and an ML-DSA-65 signature over the same message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HybridSignature {
    ed25519: AgentSignature,
    ml_dsa: MlDsaSignature,
}

impl HybridSignature {
    /// Joins the two halves.
    pub fn new(ed25519: AgentSignature, ml_dsa: MlDsaSignature) -> Self {
        Self { ed25519, ml_dsa }
    }

    /// Parses both halves from standard base64 (64 and 3,309 bytes); neither may be missing.
    pub fn from_b64(ed25519: &str, ml_dsa: &str) -> Result<Self> {
        Ok(Self::new(
            AgentSignature::from_b64(ed25519)?,
            MlDsaSignature::from_b64(ml_dsa)?,
        ))
    }

    /// The Ed25519 half.
    pub fn ed25519(&self) -> &AgentSignature {
        &self.ed25519
    }

    /// The ML-DSA-65 half.
    pub fn ml_dsa(&self) -> &MlDsaSignature {
        &self.ml_dsa
    }
}

fn hex8(digest: &[u8]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(seed: u8) -> HybridKeypair {
        HybridKeypair::from_parts(
            AgentKeypair::from_seed(&[seed; 32]),
            MlDsaKeypair::from_seed(&[seed.wrapping_add(100); 32]),
        )
    }

    #[test]
    fn hybrid_round_trip_and_encodings() {
        let keys = pair(1);
        let public = keys.public_key();
        let sig = keys.sign(b"GET\n/api/v1/agents\n1761317061").unwrap();
        public
            .verify(b"GET\n/api/v1/agents\n1761317061", &sig)
            .unwrap();
        assert_eq!(public.ml_dsa().as_bytes().len(), ML_DSA_65_PUBLIC_KEY_LEN);
        assert_eq!(sig.ml_dsa().as_bytes().len(), ML_DSA_65_SIGNATURE_LEN);
        let pk = MlDsaPublicKey::from_b64(&public.ml_dsa().to_b64()).unwrap();
        assert_eq!(&pk, public.ml_dsa());
        let parsed =
            HybridSignature::from_b64(&sig.ed25519().to_b64(), &sig.ml_dsa().to_b64()).unwrap();
        assert_eq!(parsed, sig);
        // Hedged signing: two signatures of one message differ, and both verify.
        let again = keys.sign(b"m").unwrap();
        let other = keys.sign(b"m").unwrap();
        assert_ne!(again.ml_dsa(), other.ml_dsa());
        public.verify(b"m", &again).unwrap();
        public.verify(b"m", &other).unwrap();
    }

    #[test]
    fn seed_round_trip_and_debug_hides_it() {
        let keys = MlDsaKeypair::generate().unwrap();
        let again = MlDsaKeypair::from_seed_b64(&keys.seed_b64()).unwrap();
        assert_eq!(again.public_key(), keys.public_key());
        let shown = format!("{keys:?}{:?}", pair(3));
        assert!(!shown.contains(keys.seed_b64().trim_end_matches('=')));
        assert!(!shown.contains(&b64::encode(&[103u8; 32])[..20]));
        assert!(matches!(
            MlDsaKeypair::from_seed_b64(&b64::encode(&[1u8; 31])),
            Err(CryptoError::InvalidLength { got: 31, .. })
        ));
    }

    #[test]
    fn either_half_alone_is_refused() {
        let keys = pair(2);
        let public = keys.public_key();
        let msg = b"POST\n/api/v1/sdk-api/verifications\n1761317061";
        let good = keys.sign(msg).unwrap();
        // Only the Ed25519 half is genuine; the ML-DSA half is another key's.
        let ml_only_forged =
            HybridSignature::new(*good.ed25519(), pair(9).ml_dsa().sign(msg).unwrap());
        assert_eq!(
            public.verify(msg, &ml_only_forged),
            Err(CryptoError::BadMlDsaSignature)
        );
        // Only the ML-DSA half is genuine.
        let ed_forged = HybridSignature::new(pair(9).ed25519().sign(msg), good.ml_dsa().clone());
        assert_eq!(
            public.verify(msg, &ed_forged),
            Err(CryptoError::BadSignature)
        );
        // A hybrid signature cannot be built with a half missing.
        assert!(HybridSignature::from_b64(&good.ed25519().to_b64(), "").is_err());
        assert!(HybridSignature::from_b64("", &good.ml_dsa().to_b64()).is_err());
        // An all-zero ML-DSA half of the right length is refused, not a panic.
        let zeros = MlDsaSignature::from_bytes(&[0u8; ML_DSA_65_SIGNATURE_LEN]).unwrap();
        assert_eq!(
            public.verify(msg, &HybridSignature::new(*good.ed25519(), zeros)),
            Err(CryptoError::BadMlDsaSignature)
        );
    }

    #[test]
    fn swapped_halves_messages_and_keys_are_refused() {
        let keys = pair(4);
        let public = keys.public_key();
        let a = keys.sign(b"message a").unwrap();
        let b = keys.sign(b"message b").unwrap();
        // Halves taken from signatures of two different messages.
        let mixed = HybridSignature::new(*a.ed25519(), b.ml_dsa().clone());
        assert!(public.verify(b"message a", &mixed).is_err());
        assert!(public.verify(b"message b", &mixed).is_err());
        // Another agent's ML-DSA key paired with this agent's Ed25519 key.
        let other = pair(5).public_key();
        let crossed = HybridPublicKey::new(*public.ed25519(), other.ml_dsa().clone());
        assert_eq!(
            crossed.verify(b"message a", &a),
            Err(CryptoError::BadMlDsaSignature)
        );
        let crossed = HybridPublicKey::new(*other.ed25519(), public.ml_dsa().clone());
        assert_eq!(
            crossed.verify(b"message a", &a),
            Err(CryptoError::BadSignature)
        );
        // The encodings cannot be swapped: each half has its own length.
        assert!(MlDsaSignature::from_b64(&a.ed25519().to_b64()).is_err());
        assert!(AgentSignature::from_b64(&a.ml_dsa().to_b64()).is_err());
        assert!(MlDsaPublicKey::from_b64(&public.ed25519().to_b64()).is_err());
    }

    /// Known answer for FIPS 204 (final) key generation: the IETF LAMPS example ML-DSA-65 key
    /// (seed 00..1f). The NIST ACVP keyGen files reachable while writing this were pre-final
    /// drafts (no k, l domain separation) and do not match any FIPS 204 implementation, so they
    /// are not used; see the fixture's `source`.
    #[test]
    fn fips204_keygen_matches_the_lamps_example_key() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/vectors/ml_dsa_65_lamps_example.json"
        ))
        .unwrap();
        let hex_of = |x: &serde_json::Value| hex::decode(x.as_str().unwrap()).unwrap();
        let seed: [u8; 32] = hex_of(&v["seed"]).try_into().unwrap();
        let pk = MlDsaKeypair::from_seed(&seed).public_key();
        assert_eq!(pk.as_bytes(), &hex_of(&v["pk"])[..]);
        assert_eq!(
            hex::encode(hash::sha256(pk.as_bytes())),
            v["pkSha256"].as_str().unwrap()
        );
        // The official key parses, round-trips through base64, and verifies what its seed signs.
        let parsed = MlDsaPublicKey::from_b64(&b64::encode(&hex_of(&v["pk"]))).unwrap();
        let sig = MlDsaKeypair::from_seed(&seed).sign(b"lamps").unwrap();
        parsed.verify(b"lamps", &sig).unwrap();
    }

    #[test]
    fn any_flipped_ml_dsa_signature_bit_is_refused() {
        let keys = pair(6);
        let public = keys.public_key();
        let sig = keys.sign(b"flip").unwrap();
        for i in [0usize, 47, 48, 1000, 3000, ML_DSA_65_SIGNATURE_LEN - 1] {
            let mut bytes = sig.ml_dsa().as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let tampered =
                HybridSignature::new(*sig.ed25519(), MlDsaSignature::from_bytes(&bytes).unwrap());
            assert_eq!(
                public.verify(b"flip", &tampered),
                Err(CryptoError::BadMlDsaSignature),
                "byte {i}"
            );
        }
    }
}
