//! A software model of a CTAP2 authenticator, for tests and demos (not a security device).
//!
//! Like many real keys it keeps no per-credential storage: a credential id is a random nonce
//! and a MAC over it and the relying party under the authenticator's master secret, and the
//! credential's Ed25519 seed and hmac-secret `CredRandom` are derived from the master secret
//! and the id. [`SoftAuthenticator::open_state_file`] keeps the master secret and the signature
//! counter in a file (mode 0600), so separate processes act as one authenticator.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aim_crypto::hash::{hmac_sha256, sha256};
use aim_crypto::{AgentKeypair, Zeroizing};
use serde::{Deserialize, Serialize};

use super::{Assertion, Authenticator, Credential, FLAG_UP};
use crate::{HwError, Result};

const STATE_FORMAT: &str = "aim-hw-soft-fido2-v1";

#[derive(Serialize, Deserialize)]
struct State {
    format: String,
    master_b64: String,
    counter: u32,
}

/// An in-process authenticator: Ed25519 credentials, hmac-secret, a global signature counter
/// and a user-presence answer tests can switch off.
pub struct SoftAuthenticator {
    master: Zeroizing<[u8; 32]>,
    counter: Mutex<u32>,
    present: AtomicBool,
    state_file: Option<PathBuf>,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::with_master(Zeroizing::new(
            aim_crypto::random::random_array::<32>().unwrap_or_else(|_| {
                // The OS random generator failed: derive from the time so the model stays
                // usable; it is a test device, never a security one.
                sha256(format!("{:?}", std::time::SystemTime::now()).as_bytes())
            }),
        ))
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

    fn with_master(master: Zeroizing<[u8; 32]>) -> Self {
        Self {
            master,
            counter: Mutex::new(0),
            present: AtomicBool::new(true),
            state_file: None,
        }
    }

    /// The authenticator kept in `path` (created, mode 0600, when missing): its master secret
    /// and signature counter persist across processes.
    pub fn open_state_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (master, counter) = match std::fs::read(path) {
            Ok(bytes) => {
                let s: State = serde_json::from_slice(&bytes)
                    .map_err(|e| HwError::BadBlob(format!("soft authenticator state: {e}")))?;
                if s.format != STATE_FORMAT {
                    return Err(HwError::BadBlob(format!(
                        "unknown soft authenticator state format {:?}",
                        s.format
                    )));
                }
                let m = Zeroizing::new(aim_crypto::b64::decode(&s.master_b64, "master secret")?);
                let master: [u8; 32] = m
                    .as_slice()
                    .try_into()
                    .map_err(|_| HwError::BadBlob("master secret is not 32 bytes".into()))?;
                (Zeroizing::new(master), s.counter)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (Zeroizing::new(aim_crypto::random::random_array::<32>()?), 0)
            }
            Err(e) => {
                return Err(HwError::Device(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let mut a = Self::with_master(master);
        a.counter = Mutex::new(counter);
        a.state_file = Some(path.to_owned());
        a.save(counter)?;
        Ok(a)
    }

    fn save(&self, counter: u32) -> Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let json = Zeroizing::new(
            serde_json::to_vec(&State {
                format: STATE_FORMAT.into(),
                master_b64: aim_crypto::b64::encode(&self.master[..]),
                counter,
            })
            .map_err(|e| HwError::Invalid(e.to_string()))?,
        );
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| HwError::Device(format!("cannot write {}: {e}", path.display())))
    }

    /// Whether the simulated user touches the key.
    pub fn set_user_present(&self, present: bool) {
        self.present.store(present, Ordering::SeqCst);
    }

    fn derive(&self, what: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        let mut msg = what.to_vec();
        for p in parts {
            msg.extend_from_slice(&(p.len() as u64).to_be_bytes());
            msg.extend_from_slice(p);
        }
        Zeroizing::new(hmac_sha256(&self.master[..], &msg))
    }

    /// Whether `id` is a credential of this authenticator for `rp_id`.
    fn owns(&self, rp_id: &str, id: &[u8]) -> bool {
        id.len() == 32
            && aim_crypto::kdf::ct_eq(
                &id[16..],
                &self.derive(b"id", &[rp_id.as_bytes(), &id[..16]])[..16],
            )
    }

    fn auth_data(&self, rp_id: &str) -> Result<Vec<u8>> {
        let mut counter = self
            .counter
            .lock()
            .map_err(|_| HwError::Device("poisoned".into()))?;
        let c = counter.saturating_add(1);
        self.save(c)?;
        *counter = c;
        let mut ad = Vec::with_capacity(37);
        ad.extend_from_slice(&sha256(rp_id.as_bytes()));
        ad.push(FLAG_UP);
        ad.extend_from_slice(&c.to_be_bytes());
        Ok(ad)
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
        let nonce = aim_crypto::random::random_array::<16>()?;
        let mut id = nonce.to_vec();
        id.extend_from_slice(&self.derive(b"id", &[rp_id.as_bytes(), &nonce])[..16]);
        let seed = self.derive(b"seed", &[&id]);
        let public_key = *AgentKeypair::from_seed(&seed).public_key().as_bytes();
        Ok(Credential { id, public_key })
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        credential_id: &[u8],
        challenge: &[u8],
        salt: Option<&[u8; 32]>,
    ) -> Result<Assertion> {
        if !self.owns(rp_id, credential_id) {
            return Err(HwError::Device(
                "no credentials (the key does not know this credential)".into(),
            ));
        }
        if !self.present.load(Ordering::SeqCst) {
            return Err(HwError::Refused("no touch (operation denied)".into()));
        }
        let ad = self.auth_data(rp_id)?;
        let mut msg = ad.clone();
        msg.extend_from_slice(&sha256(challenge));
        let seed = self.derive(b"seed", &[credential_id]);
        let signature = AgentKeypair::from_seed(&seed)
            .sign(&msg)
            .to_bytes()
            .to_vec();
        let cred_random = self.derive(b"cred-random", &[credential_id]);
        let hmac_secret = salt.map(|s| Zeroizing::new(hmac_sha256(&cred_random[..], s)));
        Ok(Assertion {
            authenticator_data: ad,
            signature,
            hmac_secret,
        })
    }
}
