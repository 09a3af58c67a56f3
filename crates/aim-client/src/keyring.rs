//! The OS keyring, holding the random key that seals a stored private key.
//!
//! With the `keyring` feature on Linux this is the kernel keyutils store (works headless, no
//! D-Bus). The kernel keeps keys in memory only: they do not survive a reboot (the sealed file
//! then cannot be opened and the agent must be registered again, or use a passphrase instead).
//! Without the feature every call reports that no keyring is available.

use aim_crypto::SecretKey;

use crate::error::{Error, Result};

/// Keyring service name of this client's entries.
pub const SERVICE: &str = "aim-client";

#[cfg(all(feature = "keyring", target_os = "linux"))]
mod imp {
    use std::sync::OnceLock;

    use super::*;

    fn init() -> std::result::Result<(), String> {
        static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
        INIT.get_or_init(|| {
            let store = linux_keyutils_keyring_store::Store::new().map_err(|e| e.to_string())?;
            keyring_core::set_default_store(store);
            // Probe: the kernel may forbid keyrings (seccomp, containers).
            let probe = keyring_core::Entry::new(SERVICE, "probe").map_err(|e| e.to_string())?;
            probe.set_secret(b"probe").map_err(|e| e.to_string())?;
            let _ = probe.delete_credential();
            Ok(())
        })
        .clone()
    }

    fn unavailable(e: impl std::fmt::Display) -> Error {
        Error::Credentials(format!("OS keyring: {e}"))
    }

    pub(super) fn available() -> bool {
        init().is_ok()
    }

    pub(super) fn store_key(service: &str, user: &str, key: &SecretKey) -> Result<()> {
        init().map_err(unavailable)?;
        keyring_core::Entry::new(service, user)
            .and_then(|e| e.set_secret(key.expose()))
            .map_err(unavailable)
    }

    pub(super) fn load_key(service: &str, user: &str) -> Result<SecretKey> {
        init().map_err(unavailable)?;
        let bytes = zeroize::Zeroizing::new(
            keyring_core::Entry::new(service, user)
                .and_then(|e| e.get_secret())
                .map_err(|e| {
                    unavailable(format!(
                        "no key for `{user}` ({e}); kernel keyrings do not survive a reboot: \
                         register the agent again or use a passphrase"
                    ))
                })?,
        );
        SecretKey::from_slice(&bytes).map_err(Error::from)
    }

    pub(super) fn delete_key(service: &str, user: &str) -> Result<()> {
        init().map_err(unavailable)?;
        keyring_core::Entry::new(service, user)
            .and_then(|e| e.delete_credential())
            .map_err(unavailable)
    }
}

#[cfg(not(all(feature = "keyring", target_os = "linux")))]
mod imp {
    use super::*;

    fn none() -> Error {
        Error::Credentials(
            "no OS keyring in this build (enable the `keyring` feature on Linux)".into(),
        )
    }
    pub(super) fn available() -> bool {
        false
    }
    pub(super) fn store_key(_: &str, _: &str, _: &SecretKey) -> Result<()> {
        Err(none())
    }
    pub(super) fn load_key(_: &str, _: &str) -> Result<SecretKey> {
        Err(none())
    }
    pub(super) fn delete_key(_: &str, _: &str) -> Result<()> {
        Err(none())
    }
}

/// True when a working keyring is available.
pub fn available() -> bool {
    imp::available()
}

/// Stores `key` under (`service`, `user`).
pub fn store_key(service: &str, user: &str, key: &SecretKey) -> Result<()> {
    imp::store_key(service, user, key)
}

/// Loads the key under (`service`, `user`).
pub fn load_key(service: &str, user: &str) -> Result<SecretKey> {
    imp::load_key(service, user)
}

/// Deletes the entry (`service`, `user`).
pub fn delete_key(service: &str, user: &str) -> Result<()> {
    imp::delete_key(service, user)
}
