//! FIDO2 authenticators as a key source (hmac-secret) and as a verified presence check.
//!
//! The [`Authenticator`] trait is the CTAP2 subset the vault needs: make a credential with
//! hmac-secret, and get an assertion (with user presence, optionally with hmac-secret) over a
//! challenge. The signed message is `authenticatorData ‖ SHA-256(challenge)` as in CTAP2 with
//! `clientDataHash = SHA-256(challenge)`. Credentials are Ed25519 (COSE -8), verified with
//! `aim-crypto`.
//!
//! * [`SoftAuthenticator`] is an in-process software model (for tests and demos): real Ed25519
//!   signatures, per-credential random `CredRandom`, hmac-secret = HMAC-SHA256(CredRandom,
//!   salt), a signature counter and a switchable user-presence answer. It is not a security
//!   device.
//! * `HidAuthenticator` (feature `fido2`) drives a USB/NFC key through `ctap-hid-fido2`.
//!
//! [`Fido2KeySource`] implements [`vault_store::ExternalKeySource`]: enroll = make a
//! credential + random 32-byte salt, KEK = HKDF(hmac-secret(salt)); the blob holds relying
//! party, credential id, public key and salt. Every recover also checks the assertion's
//! signature against the enrolled public key. [`Fido2Presence`] implements
//! [`vault_store::Presence`]: a real assertion over a fresh random challenge, verified against
//! the registered credential (rpId hash, user-present flag, signature, increasing counter).

#[cfg(feature = "fido2")]
mod hid;
mod soft;

use std::sync::{Arc, Mutex};

use aim_crypto::hash::sha256;
use aim_crypto::identity::{AgentPublicKey, AgentSignature};
use aim_crypto::{SecretKey, Zeroizing};
use serde::{Deserialize, Serialize};
use vault_store::{
    ExternalKeySource, GateError, KeySourceError, Presence, PresenceRequest, Sealing, Session,
};

#[cfg(feature = "fido2")]
pub use hid::HidAuthenticator;
pub use soft::SoftAuthenticator;

use crate::{HwError, Result};

/// The relying party id the vault uses by default.
pub const DEFAULT_RP_ID: &str = "aim-vault.local";

/// Record namespace of the enrolled presence credential (`hw/fido2`, sealed).
pub const RECORD_NAMESPACE: &str = "hw";
/// Record key of the enrolled presence credential.
pub const RECORD_KEY: &str = "fido2";
const RECORD_FORMAT: &str = "aim-hw-fido2-presence-v1";

/// The enrolled presence credential as stored (sealed) in the profile.
#[derive(Serialize, Deserialize)]
struct PresenceRecord {
    format: String,
    rp_id: String,
    credential: Credential,
    counter: u32,
}

/// User-present flag in authenticator data.
const FLAG_UP: u8 = 0x01;

/// A registered credential: id and Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The credential id (opaque, from the authenticator).
    pub id: Vec<u8>,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
}

/// What an authenticator returns for a get-assertion.
#[derive(Clone)]
pub struct Assertion {
    /// Raw authenticator data (rpIdHash ‖ flags ‖ signCount ‖ ...).
    pub authenticator_data: Vec<u8>,
    /// Signature over `authenticator_data ‖ SHA-256(challenge)`.
    pub signature: Vec<u8>,
    /// The hmac-secret output, when a salt was given.
    pub hmac_secret: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertion")
            .field("authenticator_data", &self.authenticator_data.len())
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// The CTAP2 operations the vault needs.
pub trait Authenticator: Send + Sync {
    /// Creates an Ed25519 credential with hmac-secret enabled for `rp_id`.
    fn make_credential(&self, rp_id: &str, user_id: &[u8], challenge: &[u8]) -> Result<Credential>;
    /// Asks for user presence and signs `challenge` with `credential_id`; computes
    /// hmac-secret over `salt` when given.
    fn get_assertion(
        &self,
        rp_id: &str,
        credential_id: &[u8],
        challenge: &[u8],
        salt: Option<&[u8; 32]>,
    ) -> Result<Assertion>;
}

/// Checks an assertion: rpIdHash, user presence, Ed25519 signature over
/// `authData ‖ SHA-256(challenge)`, and a signature counter above `min_counter` (when the
/// authenticator uses one). Returns the counter.
pub fn verify_assertion(
    rp_id: &str,
    credential: &Credential,
    challenge: &[u8],
    assertion: &Assertion,
    min_counter: u32,
) -> Result<u32> {
    let ad = &assertion.authenticator_data;
    if ad.len() < 37 {
        return Err(HwError::Verify("authenticator data is too short".into()));
    }
    if !aim_crypto::kdf::ct_eq(&ad[..32], &sha256(rp_id.as_bytes())) {
        return Err(HwError::Verify(
            "the assertion is for another relying party".into(),
        ));
    }
    if ad[32] & FLAG_UP == 0 {
        return Err(HwError::Refused(
            "the authenticator did not confirm user presence".into(),
        ));
    }
    let counter = u32::from_be_bytes([ad[33], ad[34], ad[35], ad[36]]);
    let sig: [u8; 64] = assertion
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| HwError::Verify("not an Ed25519 signature".into()))?;
    let key = AgentPublicKey::from_bytes(&credential.public_key)
        .map_err(|_| HwError::Verify("the registered public key is not valid".into()))?;
    let mut msg = Vec::with_capacity(ad.len() + 32);
    msg.extend_from_slice(ad);
    msg.extend_from_slice(&sha256(challenge));
    key.verify(&msg, &AgentSignature::from_bytes(sig))
        .map_err(|_| HwError::Verify("the assertion signature does not verify".into()))?;
    if (counter != 0 || min_counter != 0) && counter <= min_counter {
        return Err(HwError::Verify(format!(
            "signature counter {counter} did not increase past {min_counter} (cloned authenticator?)"
        )));
    }
    Ok(counter)
}

fn fresh_challenge() -> Result<[u8; 32]> {
    Ok(aim_crypto::random::random_array::<32>()?)
}

/// The blob a FIDO2 key slot stores (JSON, version 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fido2Blob {
    format: String,
    rp_id: String,
    credential: Credential,
    salt: [u8; 32],
}

const BLOB_FORMAT: &str = "aim-hw-fido2-v1";

/// A FIDO2 authenticator as a source of key-encryption keys (hmac-secret).
pub struct Fido2KeySource {
    authenticator: Arc<dyn Authenticator>,
    rp_id: String,
}

impl std::fmt::Debug for Fido2KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fido2KeySource")
            .field("rp_id", &self.rp_id)
            .finish_non_exhaustive()
    }
}

impl Fido2KeySource {
    /// A key source over `authenticator` for relying party `rp_id`.
    pub fn new(authenticator: Arc<dyn Authenticator>, rp_id: impl Into<String>) -> Self {
        Self {
            authenticator,
            rp_id: rp_id.into(),
        }
    }

    fn kek(&self, credential: &Credential, salt: &[u8; 32]) -> Result<SecretKey> {
        let challenge = fresh_challenge()?;
        let a = self.authenticator.get_assertion(
            &self.rp_id,
            &credential.id,
            &challenge,
            Some(salt),
        )?;
        verify_assertion(&self.rp_id, credential, &challenge, &a, 0)?;
        let secret = a
            .hmac_secret
            .ok_or_else(|| HwError::Device("the authenticator returned no hmac-secret".into()))?;
        Ok(aim_crypto::kdf::hkdf_sha256(
            &secret[..],
            salt,
            b"aim-vault/fido2-kek/v1",
        ))
    }

    /// Registers a credential for `profile` and derives a KEK; returns it with the blob.
    pub fn enroll_key(&self, profile: &str) -> Result<(SecretKey, Vec<u8>)> {
        let challenge = fresh_challenge()?;
        let credential =
            self.authenticator
                .make_credential(&self.rp_id, profile.as_bytes(), &challenge)?;
        let salt = aim_crypto::random::random_array::<32>()?;
        let key = self.kek(&credential, &salt)?;
        let blob = Fido2Blob {
            format: BLOB_FORMAT.to_owned(),
            rp_id: self.rp_id.clone(),
            credential,
            salt,
        };
        let bytes = serde_json::to_vec(&blob).map_err(|e| HwError::Invalid(e.to_string()))?;
        Ok((key, bytes))
    }

    /// Derives the KEK of `blob` again (touch needed).
    pub fn recover_key(&self, blob: &[u8]) -> Result<SecretKey> {
        let b: Fido2Blob = serde_json::from_slice(blob)
            .map_err(|e| HwError::BadBlob(format!("FIDO2 blob: {e}")))?;
        if b.format != BLOB_FORMAT {
            return Err(HwError::BadBlob(format!(
                "unknown FIDO2 blob format {:?}",
                b.format
            )));
        }
        if b.rp_id != self.rp_id {
            return Err(HwError::BadBlob(format!(
                "the slot was enrolled for relying party {:?}, not {:?}",
                b.rp_id, self.rp_id
            )));
        }
        self.kek(&b.credential, &b.salt)
    }
}

impl ExternalKeySource for Fido2KeySource {
    fn kind(&self) -> &str {
        "fido2"
    }

    fn enroll(&self, profile: &str) -> std::result::Result<(SecretKey, Vec<u8>), KeySourceError> {
        self.enroll_key(profile).map_err(Into::into)
    }

    fn recover(&self, blob: &[u8]) -> std::result::Result<SecretKey, KeySourceError> {
        self.recover_key(blob).map_err(Into::into)
    }
}

/// A presence check: a fresh, verified assertion from a registered credential.
pub struct Fido2Presence {
    authenticator: Arc<dyn Authenticator>,
    rp_id: String,
    credential: Credential,
    counter: Mutex<u32>,
}

impl std::fmt::Debug for Fido2Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fido2Presence")
            .field("rp_id", &self.rp_id)
            .finish_non_exhaustive()
    }
}

impl Fido2Presence {
    /// Registers a new credential on `authenticator` (touch needed) for presence checks.
    pub fn register(
        authenticator: Arc<dyn Authenticator>,
        rp_id: &str,
        user: &str,
    ) -> Result<Self> {
        let credential =
            authenticator.make_credential(rp_id, user.as_bytes(), &fresh_challenge()?)?;
        Ok(Self::new(authenticator, rp_id, credential, 0))
    }

    /// A presence check with an already registered credential and its last seen counter.
    pub fn new(
        authenticator: Arc<dyn Authenticator>,
        rp_id: &str,
        credential: Credential,
        counter: u32,
    ) -> Self {
        Self {
            authenticator,
            rp_id: rp_id.to_owned(),
            credential,
            counter: Mutex::new(counter),
        }
    }

    /// The registered credential (store it to build the check again later).
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The last signature counter seen.
    pub fn counter(&self) -> u32 {
        match self.counter.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// Registers a new credential on `authenticator` (touch needed) and stores it sealed in
    /// `session`'s profile (`hw/fido2`) as its presence factor. Replacing an enrolled presence
    /// factor (FIDO2 or TOTP) needs a human factor ([`Session::take_admin`]).
    pub fn enroll(
        session: &mut Session<'_>,
        authenticator: Arc<dyn Authenticator>,
        rp_id: &str,
    ) -> Result<Self> {
        if crate::presence_enrolled(session)? {
            session.take_admin("presence.enroll")?;
        }
        let p = Self::register(authenticator, rp_id, session.profile())?;
        p.persist(session)?;
        Ok(p)
    }

    /// Whether `session`'s profile has a FIDO2 presence credential.
    pub fn is_enrolled(session: &Session<'_>) -> Result<bool> {
        Ok(session.get_record(RECORD_NAMESPACE, RECORD_KEY)?.is_some())
    }

    /// The profile's enrolled credential, checked with `authenticator`.
    pub fn load(
        session: &Session<'_>,
        authenticator: Arc<dyn Authenticator>,
    ) -> Result<Option<Self>> {
        let Some(rec) = session.get_record(RECORD_NAMESPACE, RECORD_KEY)? else {
            return Ok(None);
        };
        let r: PresenceRecord = serde_json::from_slice(rec.value.expose())
            .map_err(|e| HwError::BadBlob(format!("FIDO2 presence record: {e}")))?;
        if r.format != RECORD_FORMAT {
            return Err(HwError::BadBlob(format!(
                "unknown FIDO2 presence record format {:?}",
                r.format
            )));
        }
        Ok(Some(Self::new(
            authenticator,
            &r.rp_id,
            r.credential,
            r.counter,
        )))
    }

    /// Writes the credential and its last counter to `session`'s profile (call after a
    /// session in which it was used, so a replayed or cloned authenticator is noticed).
    pub fn persist(&self, session: &mut Session<'_>) -> Result<()> {
        let rec = PresenceRecord {
            format: RECORD_FORMAT.into(),
            rp_id: self.rp_id.clone(),
            credential: self.credential.clone(),
            counter: self.counter(),
        };
        let json = serde_json::to_vec(&rec).map_err(|e| HwError::Invalid(e.to_string()))?;
        session.put_record(RECORD_NAMESPACE, RECORD_KEY, &json, Sealing::Sealed)?;
        Ok(())
    }

    /// Asks for a touch and verifies the assertion.
    pub fn check(&self) -> Result<()> {
        let challenge = fresh_challenge()?;
        let a =
            self.authenticator
                .get_assertion(&self.rp_id, &self.credential.id, &challenge, None)?;
        let mut last = self
            .counter
            .lock()
            .map_err(|_| HwError::Invalid("presence state lock poisoned".into()))?;
        *last = verify_assertion(&self.rp_id, &self.credential, &challenge, &a, *last)?;
        Ok(())
    }
}

impl Presence for Fido2Presence {
    fn confirm(&self, _request: &PresenceRequest) -> std::result::Result<(), GateError> {
        self.check().map_err(Into::into)
    }
}
