//! API keys: `aim_live_` followed by base64url (no padding) of 32 random bytes. Only the
//! SHA-256 of the full key is stored; the key itself is shown once, when created.

use std::fmt;

use aim_crypto::Zeroizing;
use aim_crypto::hash::sha256;
use aim_crypto::random::random_array;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "aim_live_";
/// Length of a well-formed key: the prefix plus 43 base64url characters.
pub(crate) const API_KEY_LEN: usize = API_KEY_PREFIX.len() + 43;

/// A freshly created API key. It zeroizes on drop and its `Debug` shows only the prefix.
#[derive(Clone)]
pub struct ApiKeySecret(Zeroizing<String>);

impl ApiKeySecret {
    /// Generates a new key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let bytes = Zeroizing::new(
            random_array::<32>()
                .map_err(|e| Error::Internal(format!("no randomness for an API key: {e}")))?,
        );
        let mut text = String::with_capacity(API_KEY_LEN);
        text.push_str(API_KEY_PREFIX);
        text.push_str(&URL_SAFE_NO_PAD.encode(bytes.as_slice()));
        Ok(Self(Zeroizing::new(text)))
    }

    /// The key text: show it to its owner once, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 stored in the database.
    pub fn hash(&self) -> String {
        hash_key(&self.0)
    }

    /// The non-secret display prefix (`aim_live_` plus 4 characters).
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(API_KEY_PREFIX.len() + 4).collect()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({API_KEY_PREFIX}…)")
    }
}

/// The hex SHA-256 of a presented key.
pub(crate) fn hash_key(key: &str) -> String {
    hex::encode(sha256(key.as_bytes()))
}

/// True when `text` has the shape of an API key (prefix, length, alphabet). Checked before any
/// database lookup so junk never reaches the database.
pub(crate) fn looks_like_api_key(text: &str) -> bool {
    text.len() == API_KEY_LEN
        && text.starts_with(API_KEY_PREFIX)
        && text[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let a = ApiKeySecret::generate().unwrap();
        let b = ApiKeySecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), API_KEY_LEN);
        assert!(a.expose().starts_with("aim_live_"));
        assert!(looks_like_api_key(a.expose()));
        let raw = URL_SAFE_NO_PAD
            .decode(&a.expose()[API_KEY_PREFIX.len()..])
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(a.hash(), hash_key(a.expose()));
        assert_eq!(a.hash().len(), 64);
        assert!(!format!("{a:?}").contains(&a.expose()[10..]));
        assert_eq!(a.display_prefix().len(), 13);
    }

    #[test]
    fn junk_is_not_a_key() {
        assert!(!looks_like_api_key(""));
        assert!(!looks_like_api_key("aim_live_short"));
        assert!(!looks_like_api_key(&format!("aim_test_{}", "a".repeat(43))));
        assert!(!looks_like_api_key(&format!("aim_live_{}", "+".repeat(43))));
        assert!(looks_like_api_key(&format!("aim_live_{}", "a".repeat(43))));
    }
}
