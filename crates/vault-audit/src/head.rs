//! Signed tree heads: (tree size, root, time, key id) signed with Ed25519.
//!
//! Signed message (87 bytes):
//! `"aim-vault-audit-sth-v1" ‖ 0x00 ‖ tree_size u64 BE ‖ root (32) ‖ time_ms i64 BE ‖ key_id`
//! where `key_id` is the 16 lowercase hex characters of [`AgentPublicKey::key_id`].

use aim_crypto::{AgentKeypair, AgentPublicKey, AgentSignature};
use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::hash::{Hash, serde_hex};

/// Domain-separation tag of the signed tree head message.
pub const STH_DOMAIN: &[u8] = b"aim-vault-audit-sth-v1";

/// Something that signs tree heads: the vault's sealed audit key, or the agent's AIM identity
/// key. The private key never leaves the implementation.
pub trait HeadSigner {
    /// The public half.
    fn public_key(&self) -> AgentPublicKey;
    /// A detached Ed25519 signature over `msg`.
    fn sign(&self, msg: &[u8]) -> AgentSignature;
}

impl HeadSigner for AgentKeypair {
    fn public_key(&self) -> AgentPublicKey {
        AgentKeypair::public_key(self)
    }

    fn sign(&self, msg: &[u8]) -> AgentSignature {
        AgentKeypair::sign(self, msg)
    }
}

/// The exact bytes a tree head signature covers.
pub fn sth_message(tree_size: u64, root: &Hash, time_ms: i64, key_id: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(STH_DOMAIN.len() + 1 + 8 + 32 + 8 + key_id.len());
    msg.extend_from_slice(STH_DOMAIN);
    msg.push(0x00);
    msg.extend_from_slice(&tree_size.to_be_bytes());
    msg.extend_from_slice(root);
    msg.extend_from_slice(&time_ms.to_be_bytes());
    msg.extend_from_slice(key_id.as_bytes());
    msg
}

/// A signed tree head. `seq` is the head's local sequence number (1, 2, ...) in the log that
/// stores it; it is informative and not signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTreeHead {
    /// Local sequence number (not signed).
    pub seq: u64,
    /// Number of leaves the head covers.
    pub tree_size: u64,
    /// RFC 6962 root of those leaves.
    #[serde(rename = "root_hash", with = "serde_hex")]
    pub root: Hash,
    /// When the head was signed, Unix milliseconds.
    #[serde(rename = "timestamp_ms")]
    pub time_ms: i64,
    /// Id of the signing key ([`AgentPublicKey::key_id`]).
    pub key_id: String,
    /// The signing key.
    #[serde(with = "serde_public_key")]
    pub public_key: AgentPublicKey,
    /// Ed25519 signature over [`sth_message`].
    #[serde(with = "serde_signature")]
    pub signature: AgentSignature,
}

impl SignedTreeHead {
    /// Signs a head for `(tree_size, root, time_ms)` with `signer`.
    pub fn sign(
        signer: &dyn HeadSigner,
        seq: u64,
        tree_size: u64,
        root: Hash,
        time_ms: i64,
    ) -> Self {
        let public_key = signer.public_key();
        let key_id = public_key.key_id();
        let signature = signer.sign(&sth_message(tree_size, &root, time_ms, &key_id));
        Self {
            seq,
            tree_size,
            root,
            time_ms,
            key_id,
            public_key,
            signature,
        }
    }

    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        sth_message(self.tree_size, &self.root, self.time_ms, &self.key_id)
    }

    /// Checks that `key_id` belongs to `public_key` and the signature is valid for it. This says
    /// nothing about whether the key is trusted: compare `public_key` with a trusted key, or use
    /// the log verifier's key-epoch rules.
    pub fn verify_signature(&self) -> Result<()> {
        if self.key_id != self.public_key.key_id() {
            return Err(AuditError::HeadInvalid(
                "key id does not match the public key",
            ));
        }
        self.public_key
            .verify(&self.message(), &self.signature)
            .map_err(|_| AuditError::HeadInvalid("signature does not verify"))
    }

    /// [`SignedTreeHead::verify_signature`] plus a check that the signer is `trusted`.
    pub fn verify_with(&self, trusted: &AgentPublicKey) -> Result<()> {
        if &self.public_key != trusted {
            return Err(AuditError::HeadInvalid(
                "head is signed by a different key than the trusted one",
            ));
        }
        self.verify_signature()
    }
}

pub(crate) mod serde_public_key {
    use aim_crypto::AgentPublicKey;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(k: &AgentPublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&k.to_b64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AgentPublicKey, D::Error> {
        let text = String::deserialize(d)?;
        AgentPublicKey::from_b64(&text).map_err(D::Error::custom)
    }
}

pub(crate) mod serde_signature {
    use aim_crypto::AgentSignature;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(k: &AgentSignature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&k.to_b64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AgentSignature, D::Error> {
        let text = String::deserialize(d)?;
        AgentSignature::from_b64(&text).map_err(D::Error::custom)
    }
}

pub(crate) mod serde_b64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&aim_crypto::b64::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        aim_crypto::b64::decode(&text, "base64 value").map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn message_layout_is_as_documented() {
        let root = leaf_hash(b"r");
        let msg = sth_message(0x0102, &root, -2, "0123456789abcdef");
        assert_eq!(msg.len(), 87);
        assert_eq!(&msg[..22], STH_DOMAIN);
        assert_eq!(msg[22], 0);
        assert_eq!(&msg[23..31], &0x0102u64.to_be_bytes());
        assert_eq!(&msg[31..63], &root);
        assert_eq!(&msg[63..71], &(-2i64).to_be_bytes());
        assert_eq!(&msg[71..], b"0123456789abcdef");
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = AgentKeypair::from_seed(&[3; 32]);
        let head = SignedTreeHead::sign(&key, 1, 10, leaf_hash(b"x"), 1000);
        head.verify_signature().unwrap();
        head.verify_with(&key.public_key()).unwrap();
        let other = AgentKeypair::from_seed(&[4; 32]).public_key();
        assert!(head.verify_with(&other).is_err());
        let mut h = head.clone();
        h.tree_size = 11;
        assert!(h.verify_signature().is_err());
        let mut h = head.clone();
        h.time_ms += 1;
        assert!(h.verify_signature().is_err());
        let mut h = head.clone();
        h.root[0] ^= 1;
        assert!(h.verify_signature().is_err());
        let mut h = head.clone();
        h.key_id = other.key_id();
        assert!(h.verify_signature().is_err());
        // seq is not signed.
        let mut h = head.clone();
        h.seq = 9;
        h.verify_signature().unwrap();
    }

    #[test]
    fn json_round_trip_is_strict() {
        let key = AgentKeypair::from_seed(&[3; 32]);
        let head = SignedTreeHead::sign(&key, 1, 10, leaf_hash(b"x"), 1000);
        let text = serde_json::to_string(&head).unwrap();
        assert!(text.contains("\"root_hash\":\""));
        assert!(text.contains("\"timestamp_ms\":1000"));
        let back: SignedTreeHead = serde_json::from_str(&text).unwrap();
        assert_eq!(back, head);
        let extra = text.replacen('{', "{\"extra\":1,", 1);
        assert!(serde_json::from_str::<SignedTreeHead>(&extra).is_err());
    }
}
