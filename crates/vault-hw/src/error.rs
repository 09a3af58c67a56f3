//! The one error type of this crate.

/// Everything that can go wrong with a hardware key source or presence check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HwError {
    /// No device (TPM, FIDO2 authenticator) could be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The device or the user refused (no touch, wrong code, policy mismatch).
    #[error("refused: {0}")]
    Refused(String),
    /// A stored blob or record is damaged, from another device, or of an unknown format.
    #[error("rejected blob: {0}")]
    BadBlob(String),
    /// A TOTP code was wrong, outside the accepted window, or already used.
    #[error("TOTP code rejected: {0}")]
    BadCode(&'static str),
    /// Invalid parameters.
    #[error("invalid parameters: {0}")]
    Invalid(String),
    /// A signature or attestation check failed.
    #[error("verification failed: {0}")]
    Verify(String),
    /// The device reported an error.
    #[error("device error: {0}")]
    Device(String),
    /// A primitive of `aim-crypto` failed.
    #[error(transparent)]
    Crypto(#[from] aim_crypto::CryptoError),
    /// The vault refused or failed an operation.
    #[error(transparent)]
    Vault(#[from] vault_store::VaultError),
}

#[cfg(feature = "tpm")]
impl From<tss_esapi::Error> for HwError {
    fn from(e: tss_esapi::Error) -> Self {
        Self::Device(e.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = HwError> = std::result::Result<T, E>;

impl From<HwError> for vault_store::KeySourceError {
    fn from(e: HwError) -> Self {
        match e {
            HwError::Unavailable(m) => Self::Unavailable(m),
            HwError::Refused(m) => Self::Refused(m),
            HwError::BadBlob(m) => Self::BadBlob(m),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<HwError> for vault_store::GateError {
    fn from(e: HwError) -> Self {
        match e {
            HwError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Refused(other.to_string()),
        }
    }
}
