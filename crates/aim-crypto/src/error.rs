//! The one error type of this crate.

/// Everything that can go wrong in `aim-crypto`. Messages say what was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A value that should be standard base64 (with padding) is not.
    #[error("{what} is not valid standard base64")]
    InvalidBase64 {
        /// Which value.
        what: &'static str,
    },
    /// A decoded value has the wrong length.
    #[error("{what} has {got} bytes; expected {expected}")]
    InvalidLength {
        /// Which value.
        what: &'static str,
        /// The accepted length(s), in words.
        expected: &'static str,
        /// The length found.
        got: usize,
    },
    /// The public key given with a private key is not the one the private key derives.
    #[error("public key does not match private key")]
    PublicKeyMismatch,
    /// The bytes are not an acceptable Ed25519 public key (not a curve point, or a weak key).
    #[error("not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// An Ed25519 signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// An ML-DSA-65 signature did not verify (or is not a well-formed FIPS 204 signature).
    #[error("ML-DSA-65 signature verification failed")]
    BadMlDsaSignature,
    /// ML-DSA-65 signing failed: the operating system's random number generator failed.
    #[error("ML-DSA-65 signing failed (no randomness from the operating system)")]
    MlDsaSigning,
    /// A signed request is missing one of the `X-Agent-ID`, `X-Signature`, `X-Timestamp`,
    /// `X-Public-Key` headers, or one is empty.
    #[error("missing or empty header {0}")]
    MissingHeader(&'static str),
    /// `X-Timestamp` is not decimal Unix seconds.
    #[error("X-Timestamp must be decimal Unix seconds")]
    InvalidTimestamp,
    /// The request timestamp is outside the accepted window around the verifier's clock.
    #[error("request timestamp is {skew_secs} s away from server time (window ±{window_secs} s)")]
    StaleTimestamp {
        /// Signed distance: request time minus verifier time, in seconds.
        skew_secs: i64,
        /// The window in seconds.
        window_secs: u64,
    },
    /// A JSON document could not be parsed.
    #[error("invalid JSON at byte {offset}: {message}")]
    Json {
        /// Byte offset of the problem.
        offset: usize,
        /// What was wrong there.
        message: &'static str,
    },
    /// A value cannot be represented in Python-compatible canonical JSON.
    #[error("cannot canonicalize JSON: {0}")]
    Canonical(&'static str),
    /// A sealed envelope is shorter than the smallest valid envelope.
    #[error("sealed data is truncated ({len} bytes; at least {min} needed)")]
    EnvelopeTruncated {
        /// Length found.
        len: usize,
        /// Minimum length of a valid envelope.
        min: usize,
    },
    /// A sealed envelope carries a format version this build does not know.
    #[error("sealed data has unknown format version {0}")]
    EnvelopeVersion(u8),
    /// AES-GCM authentication failed: wrong key, wrong associated data, or tampered bytes.
    #[error("decryption failed: wrong key, wrong associated data, or tampered ciphertext")]
    DecryptFailed,
    /// Invalid key-derivation parameters (or an unparsable stored parameter string).
    #[error("invalid key-derivation parameters: {0}")]
    KdfParams(String),
    /// Key derivation failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// A field of a v2 request signature is malformed (newline, wrong alphabet, bad length…).
    #[error("{what} is not acceptable in a signed request: {why}")]
    InvalidRequestField {
        /// Which field.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The signature version header names a scheme this build does not know.
    #[error("unsupported request signature version (this server accepts 1 and 2)")]
    UnsupportedSignatureVersion,
    /// A v2 signature was made for another server.
    #[error("the request was signed for origin {signed}, not for this server ({expected})")]
    WrongOrigin {
        /// The origin the client signed.
        signed: String,
        /// This server's origin.
        expected: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
