//! A USB/NFC FIDO2 key through `ctap-hid-fido2` (feature `fido2`). Credentials are Ed25519
//! (COSE -8); keys without EdDSA support are refused at registration.

use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::Extension as Gext;
use ctap_hid_fido2::fidokey::make_credential::make_credential_params::Extension as Mext;
use ctap_hid_fido2::fidokey::{
    CredentialSupportedKeyType, GetAssertionArgsBuilder, MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::{Cfg, FidoKeyHidFactory};

use aim_crypto::Zeroizing;

use super::{Assertion, Authenticator, Credential};
use crate::{HwError, Result};

/// DER SubjectPublicKeyInfo prefix of an Ed25519 public key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The first FIDO2 key found on USB HID. Operations ask for a touch.
#[derive(Debug, Default, Clone, Copy)]
pub struct HidAuthenticator;

impl HidAuthenticator {
    /// A handle; the device is looked up per operation.
    pub fn new() -> Self {
        Self
    }

    fn device() -> Result<ctap_hid_fido2::FidoKeyHid> {
        FidoKeyHidFactory::create(&Cfg::init())
            .map_err(|e| HwError::Unavailable(format!("no FIDO2 device found: {e}")))
    }
}

impl Authenticator for HidAuthenticator {
    fn make_credential(
        &self,
        rp_id: &str,
        _user_id: &[u8],
        challenge: &[u8],
    ) -> Result<Credential> {
        let dev = Self::device()?;
        let args = MakeCredentialArgsBuilder::new(rp_id, challenge)
            .key_type(CredentialSupportedKeyType::Ed25519)
            .extensions(&[Mext::HmacSecret(Some(true))])
            .without_pin_and_uv()
            .build();
        let att = dev
            .make_credential_with_args(&args)
            .map_err(|e| HwError::Device(format!("make credential: {e}")))?;
        let der = &att.credential_publickey.der;
        let public_key: [u8; 32] = der
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                HwError::Device(
                    "the key did not create an Ed25519 credential (EdDSA unsupported?)".into(),
                )
            })?;
        Ok(Credential {
            id: att.credential_descriptor.id.clone(),
            public_key,
        })
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        credential_id: &[u8],
        challenge: &[u8],
        salt: Option<&[u8; 32]>,
    ) -> Result<Assertion> {
        let dev = Self::device()?;
        let ext = salt.map(|s| [Gext::HmacSecret(Some(*s))]);
        let mut builder = GetAssertionArgsBuilder::new(rp_id, challenge)
            .credential_id(credential_id)
            .without_pin_and_uv();
        if let Some(ext) = &ext {
            builder = builder.extensions(ext);
        }
        let mut assertions = dev
            .get_assertion_with_args(&builder.build())
            .map_err(|e| HwError::Device(format!("get assertion: {e}")))?;
        let a = assertions
            .pop()
            .ok_or_else(|| HwError::Device("the key returned no assertion".into()))?;
        let hmac_secret = a.extensions.iter().find_map(|e| match e {
            Gext::HmacSecret(Some(out)) => Some(Zeroizing::new(*out)),
            _ => None,
        });
        Ok(Assertion {
            authenticator_data: a.auth_data.clone(),
            signature: a.signature.clone(),
            hmac_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_device_the_error_says_so() {
        let err = HidAuthenticator::new()
            .make_credential("aim-vault.local", b"u", b"c")
            .unwrap_err();
        assert!(err.to_string().contains("no FIDO2 device found"), "{err}");
    }
}
