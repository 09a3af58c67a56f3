//! All cryptography of the AIM toolkit, in one small crate that does no I/O and is not async.
//!
//! | module | what |
//! |---|---|
//! | [`identity`] | Ed25519 agent key pairs, public keys and signatures in the AIM SDK's base64 encodings |
//! | [`hybrid`] | hybrid post-quantum keys: Ed25519 + ML-DSA-65 (FIPS 204), both signatures required |
//! | [`request`] | the AIM request-signing scheme (four `X-*` headers) and a freshness-checking verifier |
//! | [`canonical`] | Python-compatible canonical JSON (`json.dumps(obj, sort_keys=True)`), parser keeping number lexemes |
//! | [`action`] | the `verify_action` body signature over five canonical fields |
//! | [`statement`] | signed action statements: DSSE v1 PAE of `action-request-v1`, strict parser with reason codes |
//! | [`aead`] | AES-256-GCM seal/open with associated data in a versioned envelope |
//! | [`kdf`] | Argon2id with named, stored parameter sets; HKDF-SHA256; constant-time comparison |
//! | [`hash`] | SHA-256 and HMAC-SHA256 |
//! | [`legacy`] | HMAC-SHA1, only for RFC 6238 one-time passwords |
//! | [`secret`] | zeroizing secret types whose `Debug` never shows their contents |
//! | [`test_vectors`] | the AIM Python SDK's byte-exact test vectors |
//!
//! ```
//! use aim_crypto::{AgentKeypair, RequestVerifier, SignedRequest};
//!
//! let agent = AgentKeypair::generate()?;
//! let body = br#"{"action_type": "read_database"}"#;
//! let headers = agent.sign_request("550e8400-e29b-41d4-a716-446655440000", "POST",
//!     "/api/v1/sdk-api/verifications", 1_761_317_061, body);
//! let received = SignedRequest {
//!     method: "POST",
//!     path: "/api/v1/sdk-api/verifications",
//!     timestamp: &headers.timestamp,
//!     signature: &headers.signature,
//!     body,
//! };
//! RequestVerifier::default().verify(&agent.public_key(), &received, 1_761_317_100)?;
//! # Ok::<(), aim_crypto::CryptoError>(())
//! ```

pub mod action;
pub mod aead;
pub mod b64;
pub mod canonical;
mod error;
pub mod hash;
pub mod hybrid;
pub mod identity;
pub mod kdf;
pub mod legacy;
pub mod random;
pub mod request;
pub mod request_v2;
pub mod secret;
pub mod statement;
pub mod test_vectors;

pub use action::ActionPayload;
pub use aead::SealingKey;
pub use error::{CryptoError, Result};
pub use hybrid::{
    HybridKeypair, HybridPublicKey, HybridSignature, MlDsaKeypair, MlDsaPublicKey, MlDsaSignature,
};
pub use identity::{AgentKeypair, AgentPublicKey, AgentSignature};
pub use kdf::Argon2Params;
pub use request::{RequestVerifier, SignedHeaders, SignedRequest};
pub use request_v2::{RequestV2, SignatureVersion, SignedHeadersV2};
pub use secret::{SecretBytes, SecretKey};
pub use zeroize::Zeroizing;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
