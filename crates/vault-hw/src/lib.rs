//! Hardware key sources and presence checks for the memory vault: TPM 2.0, FIDO2 and TOTP.
//!
//! | module | feature | what |
//! |---|---|---|
//! | [`totp`] | always | RFC 6238 codes as a [`vault_store::Presence`] check, replay-protected, secret sealed in the vault |
//! | [`fido2`] | `fido2` for hardware | FIDO2: `Authenticator` trait, software model, hmac-secret key source, verified presence |
//! | `tpm` | `tpm` | TPM 2.0 sealing of key-encryption keys: `tpm::TpmKeySource` ([`vault_store::ExternalKeySource`]) |

mod error;
pub mod fido2;
#[cfg(feature = "tpm")]
pub mod swtpm;
pub mod totp;
#[cfg(feature = "tpm")]
pub mod tpm;

pub use error::{HwError, Result};

/// Whether `session`'s profile has a presence factor enrolled (TOTP or FIDO2). Replacing one
/// needs a human factor ([`vault_store::Session::take_admin`]).
pub fn presence_enrolled(session: &vault_store::Session<'_>) -> Result<bool> {
    Ok(totp::TotpPresence::is_enrolled(session)? || fido2::Fido2Presence::is_enrolled(session)?)
}
