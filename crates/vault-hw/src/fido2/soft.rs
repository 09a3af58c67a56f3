//! A software model of a CTAP2 authenticator, for tests and demos (not a security device).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use aim_crypto::hash::{hmac_sha256, sha256};
use aim_crypto::{AgentKeypair, Zeroizing};

use super::{Assertion, Authenticator, Credential, FLAG_UP};
use crate::{HwError, Result};

struct Stored {
    rp_id: String,
    seed: Zeroizing<[u8; 32]>,
    cred_random: Zeroizing<[u8; 32]>,
}

/// An in-process authenticator: Ed25519 credentials, hmac-secret, a global signature counter
/// and a user-presence answer tests can switch off.
pub struct SoftAuthenticator {
    credentials: Mutex<HashMap<Vec<u8>, Stored>>,
    counter: AtomicU32,
    present: AtomicBool,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self {
            credentials: Mutex::new(HashMap::new()),
            counter: AtomicU32::new(0),
            present: AtomicBool::new(true),
        }
    }
}

impl std::fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftAuthenticator(..)")
    }
}

impl SoftAuthenticator {
    /// A new, empty authenticator that answers "user present".
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the simulated user touches the key.
    pub fn set_user_present(&self, present: bool) {
        self.present.store(present, Ordering::SeqCst);
    }

    fn auth_data(&self, rp_id: &str, up: bool) -> Vec<u8> {
        let mut ad = Vec::with_capacity(37);
        ad.extend_from_slice(&sha256(rp_id.as_bytes()));
        ad.push(if up { FLAG_UP } else { 0 });
        let c = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        ad.extend_from_slice(&c.to_be_bytes());
        ad
    }
}

impl Authenticator for SoftAuthenticator {
    fn make_credential(
        &self,
        rp_id: &str,
        _user_id: &[u8],
        _challenge: &[u8],
    ) -> Result<Credential> {
        if !self.present.load(Ordering::SeqCst) {
            return Err(HwError::Refused("no touch (operation denied)".into()));
        }
        let seed = Zeroizing::new(aim_crypto::random::random_array::<32>()?);
        let cred_random = Zeroizing::new(aim_crypto::random::random_array::<32>()?);
        let id = aim_crypto::random::random_array::<32>()?.to_vec();
        let public_key = *AgentKeypair::from_seed(&seed).public_key().as_bytes();
        self.credentials
            .lock()
            .map_err(|_| HwError::Device("poisoned".into()))?
            .insert(
                id.clone(),
                Stored {
                    rp_id: rp_id.to_owned(),
                    seed,
                    cred_random,
                },
            );
        Ok(Credential { id, public_key })
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        credential_id: &[u8],
        challenge: &[u8],
        salt: Option<&[u8; 32]>,
    ) -> Result<Assertion> {
        let creds = self
            .credentials
            .lock()
            .map_err(|_| HwError::Device("poisoned".into()))?;
        let stored = creds
            .get(credential_id)
            .filter(|s| s.rp_id == rp_id)
            .ok_or_else(|| {
                HwError::Device("no credentials (the key does not know this credential)".into())
            })?;
        let up = self.present.load(Ordering::SeqCst);
        if !up {
            return Err(HwError::Refused("no touch (operation denied)".into()));
        }
        let ad = self.auth_data(rp_id, up);
        let mut msg = ad.clone();
        msg.extend_from_slice(&sha256(challenge));
        let signature = AgentKeypair::from_seed(&stored.seed)
            .sign(&msg)
            .to_bytes()
            .to_vec();
        let hmac_secret = salt.map(|s| Zeroizing::new(hmac_sha256(&stored.cred_random[..], s)));
        Ok(Assertion {
            authenticator_data: ad,
            signature,
            hmac_secret,
        })
    }
}
