//! The local credential store: `<aim home>/agents/<name>.json`, one file per agent.
//!
//! * The directory is created `0700`, files `0600` at creation (no chmod-after-write race),
//!   written to a temporary file in the same directory, synced, then renamed over the target.
//! * A file holds the agent id, server URL and public key in clear, and the private key sealed
//!   with AES-256-GCM (associated data binds the name, agent id and public key) under either an
//!   Argon2id key from a passphrase (parameters and salt stored) or a random key kept in the OS
//!   keyring. Clear storage exists only as an explicit opt-in and warns on every use.
//! * Files readable by group or others are refused, like `ssh` does.
//! * The AIM Python SDK's `<aim home>/credentials.json` is never written; an entry of it can be
//!   imported ([`CredentialStore::import_python`]).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aim_crypto::kdf::SALT_LEN;
use aim_crypto::{AgentKeypair, Argon2Params, SecretBytes, SecretKey, aead, b64};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::KeyProtection;
use crate::error::{Error, Result};
use crate::identity::AgentIdentity;
use crate::keyring;

/// Format version written in every file.
pub const FORMAT_VERSION: u32 = 1;
const SCHEME_PASSPHRASE: &str = "argon2id-aes256gcm";
const SCHEME_KEYRING: &str = "keyring-aes256gcm";
const SCHEME_PLAINTEXT: &str = "plaintext";

/// One agent file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    format: u32,
    name: String,
    agent_id: String,
    server_url: String,
    public_key: String,
    created_at: String,
    private_key: ProtectedKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtectedKey {
    scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyring_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyring_user: Option<String>,
    /// The sealed envelope (encrypted schemes) or the clear 64-byte key (plaintext), base64.
    data: String,
}

impl std::fmt::Debug for ProtectedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedKey")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// The credential store rooted at an AIM home directory.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    root: PathBuf,
    kdf: Argon2Params,
}

impl CredentialStore {
    /// A store at `root` (e.g. `~/.aim`), sealing with `kdf` for passphrase protection.
    pub fn new(root: impl Into<PathBuf>, kdf: Argon2Params) -> Self {
        Self {
            root: root.into(),
            kdf,
        }
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of agent `name` (the name is checked: letters, digits, `.`, `_`, `-`).
    pub fn agent_path(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.root.join("agents").join(format!("{name}.json")))
    }

    /// Names of the stored agents, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let dir = self.root.join("agents");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("cannot list", &dir, &e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?;
                validate_name(stem).ok()?;
                Some(stem.to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Loads agent `name`, or `None` when no file exists. Fails on a wrong passphrase, a
    /// missing keyring entry, a tampered file or loose permissions.
    pub fn load(&self, name: &str, protection: &KeyProtection) -> Result<Option<AgentIdentity>> {
        let path = self.agent_path(name)?;
        let text = match read_private_file(&path)? {
            Some(t) => t,
            None => return Ok(None),
        };
        let file: AgentFile = serde_json::from_slice(&text).map_err(|e| {
            Error::Credentials(format!("{} is not a valid agent file: {e}", path.display()))
        })?;
        if file.format != FORMAT_VERSION {
            return Err(Error::Credentials(format!(
                "{} has format {}, this build reads format {FORMAT_VERSION}",
                path.display(),
                file.format
            )));
        }
        if file.name != name {
            return Err(Error::Credentials(format!(
                "{} holds agent `{}`, not `{name}`",
                path.display(),
                file.name
            )));
        }
        let aad = associated_data(&file.name, &file.agent_id, &file.public_key);
        let pk = &file.private_key;
        let private_b64: Zeroizing<String> = match pk.scheme.as_str() {
            SCHEME_PASSPHRASE => {
                let passphrase = match protection {
                    KeyProtection::Passphrase(p) => p,
                    _ => {
                        return Err(Error::Credentials(format!(
                            "{} is protected by a passphrase: set AIM_PASSPHRASE or configure \
                             KeyProtection::Passphrase",
                            path.display()
                        )));
                    }
                };
                let params = Argon2Params::parse(pk.kdf.as_deref().unwrap_or_default())?;
                let salt = b64::decode(pk.salt.as_deref().unwrap_or_default(), "salt")?;
                let key = params.derive(passphrase.expose(), &salt)?;
                open(
                    &key,
                    &aad,
                    &pk.data,
                    &path,
                    "wrong passphrase or tampered file",
                )?
            }
            SCHEME_KEYRING => {
                let (service, user) = match (&pk.keyring_service, &pk.keyring_user) {
                    (Some(s), Some(u)) => (s, u),
                    _ => {
                        return Err(Error::Credentials(format!(
                            "{} lacks its keyring entry name",
                            path.display()
                        )));
                    }
                };
                let key = keyring::load_key(service, user)?;
                open(
                    &key,
                    &aad,
                    &pk.data,
                    &path,
                    "keyring key does not match the file",
                )?
            }
            SCHEME_PLAINTEXT => {
                tracing::warn!(path = %path.display(), "agent private key is stored UNENCRYPTED");
                Zeroizing::new(pk.data.clone())
            }
            other => {
                return Err(Error::Credentials(format!(
                    "{} uses unknown key protection `{other}`",
                    path.display()
                )));
            }
        };
        let keypair = AgentKeypair::from_private_key_b64_checked(&private_b64, &file.public_key)
            .map_err(|e| {
                Error::Credentials(format!("{}: stored key is invalid: {e}", path.display()))
            })?;
        AgentIdentity::new(file.name, file.agent_id, file.server_url, keypair).map(Some)
    }

    /// Saves `identity`, protecting its private key as `protection` says. Returns the path.
    pub fn save(&self, identity: &AgentIdentity, protection: &KeyProtection) -> Result<PathBuf> {
        let path = self.agent_path(identity.name())?;
        let public_key = identity.public_key_b64();
        let aad = associated_data(identity.name(), identity.agent_id(), &public_key);
        let private_b64 = identity.keypair().private_key_b64();
        let private_key = match resolve(protection)? {
            Resolved::Passphrase(passphrase) => {
                let salt = aim_crypto::random::random_array::<SALT_LEN>()?;
                let key = self.kdf.derive(passphrase.expose(), &salt)?;
                ProtectedKey {
                    scheme: SCHEME_PASSPHRASE.into(),
                    kdf: Some(self.kdf.encode()),
                    salt: Some(b64::encode(&salt)),
                    keyring_service: None,
                    keyring_user: None,
                    data: b64::encode(&aead::seal(&key, &aad, private_b64.as_bytes())?),
                }
            }
            Resolved::Keyring => {
                let key = SecretKey::generate()?;
                let service = keyring::SERVICE.to_owned();
                let user = format!("agent:{}:{}", identity.name(), identity.agent_id());
                keyring::store_key(&service, &user, &key)?;
                ProtectedKey {
                    scheme: SCHEME_KEYRING.into(),
                    kdf: None,
                    salt: None,
                    keyring_service: Some(service),
                    keyring_user: Some(user),
                    data: b64::encode(&aead::seal(&key, &aad, private_b64.as_bytes())?),
                }
            }
            Resolved::Plaintext => {
                tracing::warn!(
                    agent = identity.name(),
                    "storing the agent private key UNENCRYPTED (explicitly accepted)"
                );
                ProtectedKey {
                    scheme: SCHEME_PLAINTEXT.into(),
                    kdf: None,
                    salt: None,
                    keyring_service: None,
                    keyring_user: None,
                    data: private_b64.to_string(),
                }
            }
        };
        let file = AgentFile {
            format: FORMAT_VERSION,
            name: identity.name().to_owned(),
            agent_id: identity.agent_id().to_owned(),
            server_url: identity.server_url().to_owned(),
            public_key,
            created_at: chrono::Utc::now().to_rfc3339(),
            private_key,
        };
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(&file)
                .map_err(|e| Error::Credentials(format!("cannot encode agent file: {e}")))?,
        );
        self.ensure_dirs()?;
        write_private_file(&path, &json)?;
        Ok(path)
    }

    /// Removes agent `name`'s file (and its keyring entry). True when something was removed.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let path = self.agent_path(name)?;
        if let Ok(Some(text)) = read_private_file(&path)
            && let Ok(file) = serde_json::from_slice::<AgentFile>(&text)
            && let (Some(s), Some(u)) = (
                &file.private_key.keyring_service,
                &file.private_key.keyring_user,
            )
        {
            let _ = keyring::delete_key(s, u);
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("cannot remove", &path, &e)),
        }
    }

    /// Imports entry `name` of the AIM Python SDK's `<aim home>/credentials.json` (the SDK's
    /// agent map: `{name: {agent_id, public_key, private_key, aim_url, ...}}`) into this store,
    /// protected as `protection` says. `None` when the file or the entry does not exist. The
    /// Python file is left untouched.
    pub fn import_python(
        &self,
        name: &str,
        protection: &KeyProtection,
    ) -> Result<Option<AgentIdentity>> {
        validate_name(name)?;
        let path = self.root.join("credentials.json");
        let text = match fs::read(&path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read", &path, &e)),
        };
        let all: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::Credentials(format!("{} is not JSON: {e}", path.display())))?;
        let Some(entry) = all.get(name) else {
            return Ok(None);
        };
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| {
                    Error::Credentials(format!(
                        "{} entry `{name}` has no `{k}` (is this the SDK's agent store?)",
                        path.display()
                    ))
                })
        };
        let keypair =
            AgentKeypair::from_private_key_b64_checked(field("private_key")?, field("public_key")?)
                .map_err(|e| {
                    Error::Credentials(format!("{} entry `{name}`: {e}", path.display()))
                })?;
        let identity = AgentIdentity::new(name, field("agent_id")?, field("aim_url")?, keypair)?;
        self.save(&identity, protection)?;
        Ok(Some(identity))
    }

    fn ensure_dirs(&self) -> Result<()> {
        for dir in [self.root.clone(), self.root.join("agents")] {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&dir)
                        .map_err(|e| io_error("cannot create", &dir, &e))?;
                }
                Err(e) => return Err(io_error("cannot create", &dir, &e)),
            }
        }
        // The agents directory is ours: tighten it if someone loosened it.
        let agents = self.root.join("agents");
        let meta = fs::metadata(&agents).map_err(|e| io_error("cannot stat", &agents, &e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&agents, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error("cannot restrict", &agents, &e))?;
        }
        Ok(())
    }
}

enum Resolved<'a> {
    Passphrase(&'a SecretBytes),
    Keyring,
    Plaintext,
}

fn resolve(protection: &KeyProtection) -> Result<Resolved<'_>> {
    match protection {
        KeyProtection::Passphrase(p) if p.is_empty() => {
            Err(Error::Configuration("the passphrase is empty".into()))
        }
        KeyProtection::Passphrase(p) => Ok(Resolved::Passphrase(p)),
        KeyProtection::Keyring => Ok(Resolved::Keyring),
        KeyProtection::PlaintextAcceptedRisk => Ok(Resolved::Plaintext),
        KeyProtection::Auto => {
            if keyring::available() {
                Ok(Resolved::Keyring)
            } else {
                Err(Error::Configuration(
                    "cannot protect the agent's private key: give a passphrase (AIM_PASSPHRASE or \
                     KeyProtection::Passphrase), or build with the `keyring` feature on a system \
                     with a working keyring, or explicitly accept clear storage \
                     (AIM_KEY_PROTECTION=plaintext)"
                        .into(),
                ))
            }
        }
    }
}

fn associated_data(name: &str, agent_id: &str, public_key: &str) -> Vec<u8> {
    let mut aad = b"aim-client/agent-key/v1".to_vec();
    for part in [name, agent_id, public_key] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn open(
    key: &SecretKey,
    aad: &[u8],
    data: &str,
    path: &Path,
    what: &str,
) -> Result<Zeroizing<String>> {
    let envelope = b64::decode(data, "sealed private key")?;
    let plain = aead::open(key, aad, &envelope)
        .map_err(|_| Error::Credentials(format!("cannot decrypt {}: {what}", path.display())))?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| Error::Credentials(format!("{}: decrypted key is not text", path.display())))
}

/// Checks an agent name usable as a file name.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Configuration(format!(
            "agent name `{name}` must be 1-64 letters, digits, `.`, `_` or `-`, not starting with `.`"
        )))
    }
}

fn read_private_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot stat", path, &e)),
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::Credentials(format!(
            "{} is accessible by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    fs::read(path)
        .map(|b| Some(Zeroizing::new(b)))
        .map_err(|e| io_error("cannot read", path, &e))
}

fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Credentials(format!("{} has no parent", path.display())))?;
    let suffix: [u8; 8] = aim_crypto::random::random_array()?;
    let tmp = dir.join(format!(
        ".tmp-{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error("cannot write", path, &e)
    })
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::Credentials(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_crypto::test_vectors::*;

    const ID: &str = "550e8400-e29b-41d4-a716-446655440000";

    fn fast() -> Argon2Params {
        Argon2Params::new(64, 1, 1).unwrap()
    }

    fn identity(name: &str) -> AgentIdentity {
        AgentIdentity::new(
            name,
            ID,
            "http://127.0.0.1:1",
            AgentKeypair::from_seed(&SEED),
        )
        .unwrap()
    }

    fn pass(p: &str) -> KeyProtection {
        KeyProtection::Passphrase(SecretBytes::from(p.to_owned()))
    }

    #[test]
    fn passphrase_round_trip_permissions_and_no_plaintext_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("aimhome");
        let store = CredentialStore::new(&root, fast());
        let path = store
            .save(&identity("bot-1"), &pass("correct horse"))
            .unwrap();
        assert_eq!(path, root.join("agents/bot-1.json"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("agents")), 0o700);
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(PRIVATE_KEY_64_B64));
        assert!(!text.contains(&PRIVATE_KEY_32_B64[..40]));
        assert!(text.contains(PUBLIC_KEY_B64));
        assert!(text.contains("argon2id$v=19$m=64,t=1,p=1"));
        // No temporary files left behind.
        assert_eq!(fs::read_dir(root.join("agents")).unwrap().count(), 1);

        let loaded = store
            .load("bot-1", &pass("correct horse"))
            .unwrap()
            .unwrap();
        assert_eq!(loaded.agent_id(), ID);
        assert_eq!(loaded.public_key_b64(), PUBLIC_KEY_B64);
        assert_eq!(store.list().unwrap(), vec!["bot-1".to_string()]);
        assert!(store.load("other", &pass("x")).unwrap().is_none());

        let err = store.load("bot-1", &pass("wrong horse")).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        let err = store.load("bot-1", &KeyProtection::Auto).unwrap_err();
        assert!(err.to_string().contains("AIM_PASSPHRASE"), "{err}");
    }

    #[test]
    fn tampering_and_loose_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path(), fast());
        let path = store.save(&identity("bot"), &pass("pw")).unwrap();
        // Swapping the agent id breaks the associated data.
        let text = fs::read_to_string(&path).unwrap();
        let tampered = text.replace(ID, "650e8400-e29b-41d4-a716-446655440000");
        fs::write(&path, tampered).unwrap();
        assert!(matches!(
            store.load("bot", &pass("pw")),
            Err(Error::Credentials(m)) if m.contains("cannot decrypt")
        ));
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            store.load("bot", &pass("pw")),
            Err(Error::Credentials(m)) if m.contains("chmod 600")
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(store.load("bot", &pass("pw")).unwrap().is_some());
        fs::write(&path, "{").unwrap();
        assert!(store.load("bot", &pass("pw")).is_err());
    }

    #[test]
    fn plaintext_needs_explicit_consent_and_auto_without_keyring_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path(), fast());
        if !keyring::available() {
            let err = store
                .save(&identity("bot"), &KeyProtection::Auto)
                .unwrap_err();
            assert!(err.to_string().contains("passphrase"), "{err}");
            assert!(!store.agent_path("bot").unwrap().exists());
        }
        store
            .save(&identity("clear"), &KeyProtection::PlaintextAcceptedRisk)
            .unwrap();
        let loaded = store
            .load("clear", &KeyProtection::PlaintextAcceptedRisk)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.public_key_b64(), PUBLIC_KEY_B64);
        assert!(
            fs::read_to_string(store.agent_path("clear").unwrap())
                .unwrap()
                .contains(PRIVATE_KEY_64_B64)
        );
        assert!(store.remove("clear").unwrap());
        assert!(!store.remove("clear").unwrap());
    }

    #[cfg(all(feature = "keyring", target_os = "linux"))]
    #[test]
    fn keyring_protection_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path(), fast());
        if !keyring::available() {
            // Sandboxes without a session keyring: keyring protection must fail cleanly and
            // write nothing (never fall back to clear storage).
            let err = store
                .save(&identity("kr"), &KeyProtection::Keyring)
                .unwrap_err();
            assert!(err.to_string().contains("OS keyring"), "{err}");
            assert!(!store.agent_path("kr").unwrap().exists());
            return;
        }
        // A unique name so parallel test runs never share a keyring entry.
        let name = format!("kr-{}", std::process::id());
        store.save(&identity(&name), &KeyProtection::Auto).unwrap();
        let text = fs::read_to_string(store.agent_path(&name).unwrap()).unwrap();
        assert!(text.contains("keyring-aes256gcm"));
        assert!(!text.contains(PRIVATE_KEY_64_B64));
        let loaded = store.load(&name, &KeyProtection::Auto).unwrap().unwrap();
        assert_eq!(loaded.public_key_b64(), PUBLIC_KEY_B64);
        assert!(store.remove(&name).unwrap());
        // The keyring entry went with the file: a restored copy of the file no longer opens.
        fs::write(store.agent_path(&name).unwrap(), &text).unwrap();
        fs::set_permissions(
            store.agent_path(&name).unwrap(),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(store.load(&name, &KeyProtection::Auto).is_err());
    }

    #[test]
    fn names_are_file_safe() {
        for bad in ["", ".hidden", "../x", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        for good in ["bot", "my-agent_2.prod", "A"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn imports_a_python_sdk_entry_without_touching_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let py = serde_json::json!({"my-agent": {
            "agent_id": ID, "public_key": PUBLIC_KEY_B64, "private_key": PRIVATE_KEY_64_B64,
            "aim_url": "http://localhost:8080", "status": "verified", "trust_score": 75.0,
            "registered_at": "2025-10-24T14:44:21+00:00"
        }});
        let py_path = dir.path().join("credentials.json");
        fs::write(&py_path, serde_json::to_vec_pretty(&py).unwrap()).unwrap();
        let before = fs::read(&py_path).unwrap();
        let store = CredentialStore::new(dir.path(), fast());
        assert!(store.import_python("nope", &pass("pw")).unwrap().is_none());
        let id = store
            .import_python("my-agent", &pass("pw"))
            .unwrap()
            .unwrap();
        assert_eq!(id.server_url(), "http://localhost:8080");
        assert_eq!(fs::read(&py_path).unwrap(), before);
        let loaded = store.load("my-agent", &pass("pw")).unwrap().unwrap();
        assert_eq!(loaded.agent_id(), ID);
        // An SDK-credentials file (the §13.C1 collision) is recognised as not an agent map.
        fs::write(&py_path, r#"{"x": {"aim_url": "u", "refresh_token": "t"}}"#).unwrap();
        assert!(matches!(
            store.import_python("x", &pass("pw")),
            Err(Error::Credentials(m)) if m.contains("agent store")
        ));
    }
}
