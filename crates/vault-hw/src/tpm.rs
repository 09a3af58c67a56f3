//! TPM 2.0 sealing of key-encryption keys (feature `tpm`, tss-esapi 7.7, needs `libtss2`).
//!
//! `enroll` creates the owner hierarchy's primary storage key from a fixed template (ECC
//! NIST P-256, AES-128-CFB; the same template always yields the same primary on the same
//! TPM, so nothing is persisted in the TPM's NV memory), draws a random 32-byte KEK and seals
//! it under the primary as a keyed-hash data object (`fixedTPM | fixedParent | userWithAuth`,
//! empty auth value, no PCR policy). The blob is the object's marshaled public area and its
//! private area, which is encrypted by the TPM under the primary's seed: only the same TPM
//! (same owner seed) can load it. `recover` recreates the primary, loads and unseals.
//!
//! Blob format (version 1): `0x01 ‖ u16 BE len ‖ TPM2B_PUBLIC body ‖ u16 BE len ‖ TPM2B_PRIVATE
//! body`. PCR policies (binding to a measured boot state) are not built yet; see
//! `docs/hardware.md`.

use std::convert::TryFrom;
use std::str::FromStr;

use aim_crypto::{SecretKey, Zeroizing};
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{
    Digest, EccPoint, KeyedHashScheme, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyedHashParameters, SensitiveData, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, TctiNameConf};
use vault_store::{ExternalKeySource, KeySourceError};

use crate::{HwError, Result};

const BLOB_VERSION: u8 = 1;

/// A TPM 2.0 reached through a TCTI (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`,
/// `tabrmd:`). Opens a fresh connection per operation (tss-esapi contexts are not `Send`).
#[derive(Debug, Clone)]
pub struct TpmKeySource {
    tcti: String,
}

impl TpmKeySource {
    /// A TPM reached through `tcti` (checked when first used).
    pub fn new(tcti: impl Into<String>) -> Self {
        Self { tcti: tcti.into() }
    }

    /// The TPM named by `AIM_TPM_TCTI`, else `TPM2TOOLS_TCTI`, else `device:/dev/tpmrm0`.
    pub fn from_env() -> Self {
        let tcti = std::env::var("AIM_TPM_TCTI")
            .or_else(|_| std::env::var("TPM2TOOLS_TCTI"))
            .unwrap_or_else(|_| "device:/dev/tpmrm0".to_owned());
        Self::new(tcti)
    }

    /// The TCTI string.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    fn context(&self) -> Result<Context> {
        let conf = TctiNameConf::from_str(&self.tcti)
            .map_err(|e| HwError::Invalid(format!("TCTI {:?}: {e}", self.tcti)))?;
        Context::new(conf).map_err(|e| {
            HwError::Unavailable(format!(
                "cannot reach the TPM through {:?}: {e} (is a TPM or swtpm running there?)",
                self.tcti
            ))
        })
    }

    /// Seals a fresh random 32-byte key; returns it with the blob to store.
    pub fn seal_new_key(&self) -> Result<(SecretKey, Vec<u8>)> {
        let key = SecretKey::generate()?;
        let mut ctx = self.context()?;
        let blob = ctx.execute_with_nullauth_session(|ctx| -> Result<Vec<u8>> {
            let primary = create_primary(ctx)?;
            let result = (|| {
                let sensitive = SensitiveData::try_from(key.expose().to_vec()).map_err(dev)?;
                let created = ctx
                    .create(
                        primary,
                        sealed_template()?,
                        None,
                        Some(sensitive),
                        None,
                        None,
                    )
                    .map_err(dev)?;
                encode_blob(&created.out_public, &created.out_private)
            })();
            let _ = ctx.flush_context(ObjectHandle::from(primary));
            result
        })?;
        Ok((key, blob))
    }

    /// Unseals the key of `blob` (made by [`TpmKeySource::seal_new_key`] on this TPM).
    pub fn unseal(&self, blob: &[u8]) -> Result<SecretKey> {
        let (public, private) = decode_blob(blob)?;
        let mut ctx = self.context()?;
        ctx.execute_with_nullauth_session(|ctx| -> Result<SecretKey> {
            let primary = create_primary(ctx)?;
            let result = (|| {
                let loaded = ctx.load(primary, private, public).map_err(|e| {
                    HwError::BadBlob(format!(
                        "this TPM cannot load the sealed key (made by another TPM, or damaged): {e}"
                    ))
                })?;
                let unsealed = ctx.unseal(ObjectHandle::from(loaded));
                let _ = ctx.flush_context(ObjectHandle::from(loaded));
                let data = unsealed
                    .map_err(|e| HwError::Refused(format!("the TPM refused to unseal: {e}")))?;
                let bytes = Zeroizing::new(data.value().to_vec());
                SecretKey::from_slice(&bytes).map_err(|_| {
                    HwError::BadBlob("the sealed object does not hold a 32-byte key".into())
                })
            })();
            let _ = ctx.flush_context(ObjectHandle::from(primary));
            result
        })
    }

    /// A random 16-byte value from the TPM (a liveness check).
    pub fn get_random(&self) -> Result<Vec<u8>> {
        let mut ctx = self.context()?;
        ctx.get_random(16).map(|d| d.value().to_vec()).map_err(dev)
    }
}

fn dev(e: tss_esapi::Error) -> HwError {
    HwError::Device(e.to_string())
}

fn create_primary(ctx: &mut Context) -> Result<KeyHandle> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .map_err(dev)?;
    let params = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()
    .map_err(dev)?;
    let template = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(params)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(dev)?;
    ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        .map(|r| r.key_handle)
        .map_err(|e| HwError::Device(format!("cannot create the owner primary key: {e}")))
}

fn sealed_template() -> Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .build()
        .map_err(dev)?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .map_err(dev)
}

fn encode_blob(public: &Public, private: &Private) -> Result<Vec<u8>> {
    let public = public.marshall().map_err(dev)?;
    let mut out = Vec::with_capacity(5 + public.len() + private.value().len());
    out.push(BLOB_VERSION);
    for part in [&public[..], private.value()] {
        let len = u16::try_from(part.len())
            .map_err(|_| HwError::Device("TPM object too large".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    Ok(out)
}

fn decode_blob(blob: &[u8]) -> Result<(Public, Private)> {
    let bad = |m: &str| HwError::BadBlob(format!("TPM blob: {m}"));
    let (&version, mut rest) = blob.split_first().ok_or_else(|| bad("empty"))?;
    if version != BLOB_VERSION {
        return Err(bad("unknown version"));
    }
    let mut parts = Vec::with_capacity(2);
    for _ in 0..2 {
        if rest.len() < 2 {
            return Err(bad("truncated"));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = rest.get(2..2 + len).ok_or_else(|| bad("truncated"))?;
        parts.push(body);
        rest = &rest[2 + len..];
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let public = Public::unmarshall(parts[0]).map_err(|_| bad("unreadable public area"))?;
    if !matches!(public, Public::KeyedHash { .. }) {
        return Err(bad("not a sealed data object"));
    }
    let private = Private::try_from(parts[1]).map_err(|_| bad("private area too large"))?;
    Ok((public, private))
}

impl ExternalKeySource for TpmKeySource {
    fn kind(&self) -> &str {
        "tpm2"
    }

    fn enroll(&self, _profile: &str) -> std::result::Result<(SecretKey, Vec<u8>), KeySourceError> {
        self.seal_new_key().map_err(Into::into)
    }

    fn recover(&self, blob: &[u8]) -> std::result::Result<SecretKey, KeySourceError> {
        self.unseal(blob).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_parsing_rejects_garbage_without_a_tpm() {
        for blob in [&[][..], &[2], &[1], &[1, 0, 5, 1], &[1, 0, 0, 0, 0, 9]] {
            assert!(
                matches!(decode_blob(blob), Err(HwError::BadBlob(_))),
                "{blob:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_tpm_is_unavailable() {
        // Port 1 on loopback: nothing listens there.
        let err = TpmKeySource::new("swtpm:host=127.0.0.1,port=1")
            .seal_new_key()
            .unwrap_err();
        assert!(matches!(err, HwError::Unavailable(_)), "{err}");
        let err = TpmKeySource::new("nonsense-tcti")
            .seal_new_key()
            .unwrap_err();
        assert!(
            matches!(err, HwError::Invalid(_) | HwError::Unavailable(_)),
            "{err}"
        );
    }
}
