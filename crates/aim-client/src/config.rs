//! Client configuration: typed, with defaults, read from code, `AIM_*` environment variables and
//! an optional TOML file (precedence: code > environment > file > defaults).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aim_crypto::{Argon2Params, SecretBytes};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::poll::PollPolicy;
use crate::retry::RetryPolicy;

/// Default server URL.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8080";

/// An API key (admin or registration key). Zeroized on drop; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a key; surrounding whitespace is removed.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key: Zeroizing<String> = Zeroizing::new(key.into());
        let trimmed = key.trim();
        if trimmed.is_empty() {
            return Err(Error::Configuration("API key is empty".into()));
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Configuration(
                "API key contains characters that cannot go in an HTTP header".into(),
            ));
        }
        Ok(Self(Zeroizing::new(trimmed.to_owned())))
    }

    /// Reads a key from the first line of a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::Configuration(format!("cannot read API key file {}: {e}", path.display()))
        })?);
        Self::new(text.lines().next().unwrap_or_default())
    }

    /// The key. Keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// What the action guard may do when the server cannot be reached. Never applies to a denial,
/// an authentication failure, a timeout while pending or a bad answer: only to
/// [`Error::Transport`] after the retries ran out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DegradedMode {
    /// Fail closed: an unreachable server blocks every action (the default).
    #[default]
    Off,
    /// Run actions whose type matches one of these patterns (`*` matches any run of
    /// characters, e.g. `read_*`) without verification when the server is unreachable,
    /// logging a warning each time.
    AllowListed(Vec<String>),
}

impl DegradedMode {
    /// True when `action` may run unverified while the server is unreachable.
    pub fn allows(&self, action: &str) -> bool {
        match self {
            DegradedMode::Off => false,
            DegradedMode::AllowListed(patterns) => patterns.iter().any(|p| glob(p, action)),
        }
    }
}

/// `*`-only glob matching.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// How a stored private key is protected at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyProtection {
    /// A passphrase if one is configured, else the OS keyring if this build has one and it
    /// works, else an error asking for one of them (the default).
    #[default]
    Auto,
    /// AES-256-GCM under an Argon2id key derived from this passphrase.
    Passphrase(SecretBytes),
    /// AES-256-GCM under a random key kept in the OS keyring (feature `keyring`).
    Keyring,
    /// No encryption. Only when the user explicitly accepts it; a warning is logged on every
    /// save and load.
    PlaintextAcceptedRisk,
}

/// Everything the client needs besides the agent identity.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the AIM server, without a path prefix (signatures cover the path).
    pub server_url: String,
    /// API key sent as `X-API-Key` (with agent requests, in addition to the signature) and used
    /// for registration and administration.
    pub api_key: Option<ApiKey>,
    /// Per-request timeout (connect + answer).
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Default deadline of one verification, polling included.
    pub verification_timeout: Duration,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Poll schedule for pending verifications.
    pub poll: PollPolicy,
    /// Degraded mode (off by default).
    pub degraded_mode: DegradedMode,
    /// Credential directory (`$AIM_HOME`, else `~/.aim`).
    pub aim_home: Option<PathBuf>,
    /// How stored private keys are protected.
    pub key_protection: KeyProtection,
    /// Argon2id cost for passphrase protection (stored with each file).
    pub kdf_params: Argon2Params,
    /// Which request-signature scheme agent requests use: v2 (default; covers the agent id,
    /// query string, server origin and a nonce) or the AIM SDK's v1 for servers that predate v2.
    pub request_signatures: aim_crypto::SignatureVersion,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            server_url: DEFAULT_SERVER_URL.into(),
            api_key: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            verification_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            degraded_mode: DegradedMode::Off,
            aim_home: None,
            key_protection: KeyProtection::Auto,
            kdf_params: Argon2Params::INTERACTIVE,
            request_signatures: aim_crypto::SignatureVersion::V2,
        }
    }
}

/// The optional TOML file (`$AIM_CONFIG`, else `<aim home>/config.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    api_key_file: Option<PathBuf>,
    request_timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    verification_timeout_secs: Option<u64>,
    retry_max_attempts: Option<u32>,
    degraded_allow: Option<Vec<String>>,
    key_protection: Option<String>,
    kdf: Option<String>,
}

impl ClientConfig {
    /// Defaults pointed at `server_url`.
    pub fn new(server_url: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            ..Self::default()
        }
    }

    /// Defaults, then the TOML file, then `AIM_*` variables of this process.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`ClientConfig::from_env`] with an injectable variable lookup (for tests and tools).
    ///
    /// Variables: `AIM_SERVER`, `AIM_API_KEY`, `AIM_API_KEY_FILE`, `AIM_HOME`, `AIM_CONFIG`,
    /// `AIM_TIMEOUT` (request seconds), `AIM_VERIFY_TIMEOUT` (seconds), `AIM_RETRIES`
    /// (attempts), `AIM_DEGRADED_ALLOW` (comma-separated patterns), `AIM_KEY_PROTECTION`
    /// (`auto|passphrase|keyring|plaintext`), `AIM_PASSPHRASE`, `AIM_KDF`
    /// (`interactive|moderate|sensitive` or `argon2id$v=19$m=..,t=..,p=..`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut config = Self {
            aim_home: var("AIM_HOME").map(PathBuf::from),
            ..Self::default()
        };
        let file_path = match var("AIM_CONFIG") {
            Some(p) => Some(PathBuf::from(p)),
            None => {
                let p = config.home_dir_with(&lookup)?.join("config.toml");
                p.exists().then_some(p)
            }
        };
        if let Some(path) = file_path {
            config.apply_file(&path)?;
        }
        if let Some(v) = var("AIM_SERVER") {
            config.server_url = v;
        }
        if let Some(v) = var("AIM_API_KEY_FILE") {
            config.api_key = Some(ApiKey::from_file(Path::new(&v))?);
        }
        if let Some(v) = var("AIM_API_KEY") {
            config.api_key = Some(ApiKey::new(v)?);
        }
        if let Some(v) = var("AIM_TIMEOUT") {
            config.request_timeout = Duration::from_secs(parse_num("AIM_TIMEOUT", &v)?);
        }
        if let Some(v) = var("AIM_VERIFY_TIMEOUT") {
            config.verification_timeout = Duration::from_secs(parse_num("AIM_VERIFY_TIMEOUT", &v)?);
        }
        if let Some(v) = var("AIM_RETRIES") {
            config.retry.max_attempts = parse_num("AIM_RETRIES", &v)?.clamp(1, 20) as u32;
        }
        if let Some(v) = var("AIM_DEGRADED_ALLOW") {
            config.degraded_mode = DegradedMode::AllowListed(
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            );
        }
        if let Some(v) = var("AIM_KDF") {
            config.kdf_params = parse_kdf(&v)?;
        }
        let protection = var("AIM_KEY_PROTECTION");
        let passphrase = lookup("AIM_PASSPHRASE").filter(|p| !p.is_empty());
        if let Some(p) = protection {
            config.key_protection = parse_protection(&p, passphrase.clone())?;
        } else if let Some(p) = passphrase {
            config.key_protection = KeyProtection::Passphrase(SecretBytes::from(p));
        }
        Ok(config)
    }

    fn apply_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Configuration(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| {
            Error::Configuration(format!("invalid config file {}: {e}", path.display()))
        })?;
        if let Some(v) = file.server {
            self.server_url = v;
        }
        if let Some(p) = file.api_key_file {
            self.api_key = Some(ApiKey::from_file(&p)?);
        }
        if let Some(v) = file.request_timeout_secs {
            self.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.connect_timeout_secs {
            self.connect_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.verification_timeout_secs {
            self.verification_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.retry_max_attempts {
            self.retry.max_attempts = v.clamp(1, 20);
        }
        if let Some(v) = file.degraded_allow {
            self.degraded_mode = DegradedMode::AllowListed(v);
        }
        if let Some(v) = file.key_protection {
            self.key_protection = parse_protection(&v, None)?;
        }
        if let Some(v) = file.kdf {
            self.kdf_params = parse_kdf(&v)?;
        }
        Ok(())
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Sets the degraded mode.
    pub fn degraded_mode(mut self, mode: DegradedMode) -> Self {
        self.degraded_mode = mode;
        self
    }

    /// Sets the credential directory.
    pub fn with_aim_home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.aim_home = Some(dir.into());
        self
    }

    /// Sets how stored keys are protected.
    pub fn with_key_protection(mut self, protection: KeyProtection) -> Self {
        self.key_protection = protection;
        self
    }

    /// The credential directory: `aim_home`, else `$AIM_HOME`, else `$HOME/.aim`.
    pub fn home_dir(&self) -> Result<PathBuf> {
        self.home_dir_with(&|k: &str| std::env::var(k).ok())
    }

    fn home_dir_with(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
        if let Some(dir) = &self.aim_home {
            return Ok(dir.clone());
        }
        if let Some(dir) = lookup("AIM_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        match lookup("HOME").filter(|d| !d.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".aim")),
            None => Err(Error::Configuration(
                "neither AIM_HOME nor HOME is set: cannot locate the credential directory".into(),
            )),
        }
    }

    /// The base URL without trailing slashes, checked to be `http(s)://host[:port]`.
    pub fn base_url(&self) -> Result<String> {
        normalize_base_url(&self.server_url)
    }
}

/// Checks and normalizes a server base URL.
pub fn normalize_base_url(url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            Error::Configuration(format!(
                "server URL `{url}` must start with http:// or https://"
            ))
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(Error::Configuration(format!(
            "server URL `{url}` must be scheme://host[:port] with no path: request signatures \
             cover the path, so a path prefix would break them"
        )));
    }
    Ok(trimmed.to_owned())
}

fn parse_num(name: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse()
        .map_err(|_| Error::Configuration(format!("{name} must be a whole number, got `{v}`")))
}

fn parse_kdf(v: &str) -> Result<Argon2Params> {
    Argon2Params::named(v)
        .or_else(|_| Argon2Params::parse(v))
        .map_err(|e| Error::Configuration(format!("invalid KDF setting `{v}`: {e}")))
}

fn parse_protection(v: &str, passphrase: Option<String>) -> Result<KeyProtection> {
    match v.trim() {
        "auto" => Ok(match passphrase {
            Some(p) => KeyProtection::Passphrase(SecretBytes::from(p)),
            None => KeyProtection::Auto,
        }),
        "passphrase" => passphrase
            .map(|p| KeyProtection::Passphrase(SecretBytes::from(p)))
            .ok_or_else(|| {
                Error::Configuration(
                    "key protection `passphrase` needs AIM_PASSPHRASE (or a passphrase in code)"
                        .into(),
                )
            }),
        "keyring" => Ok(KeyProtection::Keyring),
        "plaintext" => Ok(KeyProtection::PlaintextAcceptedRisk),
        other => Err(Error::Configuration(format!(
            "unknown key protection `{other}` (use auto, passphrase, keyring or plaintext)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = ClientConfig::default();
        assert_eq!(c.server_url, "http://127.0.0.1:8080");
        assert_eq!(c.degraded_mode, DegradedMode::Off);
        assert_eq!(c.verification_timeout, Duration::from_secs(300));
        assert_eq!(c.retry.max_attempts, 4);
        assert_eq!(c.poll, PollPolicy::default());
    }

    #[test]
    fn env_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, "aim_file_key\n").unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "server = \"http://file:1\"\nrequest_timeout_secs = 7\nverification_timeout_secs = 9\n\
                 api_key_file = \"{}\"\ndegraded_allow = [\"read_*\"]\nkdf = \"moderate\"\n",
                key_file.display()
            ),
        )
        .unwrap();
        let home = dir.path().to_str().unwrap();
        let c = ClientConfig::from_lookup(lookup(&[("AIM_HOME", home)])).unwrap();
        assert_eq!(c.server_url, "http://file:1");
        assert_eq!(c.request_timeout, Duration::from_secs(7));
        assert_eq!(c.verification_timeout, Duration::from_secs(9));
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "aim_file_key");
        assert!(c.degraded_mode.allows("read_file"));
        assert_eq!(c.kdf_params, Argon2Params::MODERATE);

        let c = ClientConfig::from_lookup(lookup(&[
            ("AIM_HOME", home),
            ("AIM_SERVER", "http://env:2"),
            ("AIM_API_KEY", "aim_env_key"),
            ("AIM_TIMEOUT", "3"),
            ("AIM_DEGRADED_ALLOW", "query_*, list"),
            ("AIM_PASSPHRASE", "pw"),
        ]))
        .unwrap();
        assert_eq!(c.server_url, "http://env:2");
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "aim_env_key");
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert_eq!(c.verification_timeout, Duration::from_secs(9));
        assert!(c.degraded_mode.allows("list") && !c.degraded_mode.allows("read_file"));
        assert!(matches!(c.key_protection, KeyProtection::Passphrase(_)));
    }

    #[test]
    fn bad_values_are_configuration_errors() {
        for vars in [
            vec![("AIM_TIMEOUT", "soon")],
            vec![("AIM_KEY_PROTECTION", "passphrase")],
            vec![("AIM_KEY_PROTECTION", "rot13")],
            vec![("AIM_KDF", "argon2id$v=19$m=1,t=1,p=1")],
            vec![("AIM_CONFIG", "/nonexistent/aim.toml")],
        ] {
            let mut vars = vars.clone();
            vars.push(("AIM_HOME", "/nonexistent"));
            assert!(
                matches!(
                    ClientConfig::from_lookup(lookup(&vars)),
                    Err(Error::Configuration(_))
                ),
                "{vars:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "sever = \"typo\"\n").unwrap();
        let err = ClientConfig::from_lookup(lookup(&[("AIM_HOME", dir.path().to_str().unwrap())]))
            .unwrap_err();
        assert!(err.to_string().contains("sever"), "{err}");
    }

    #[test]
    fn home_dir_precedence() {
        let c = ClientConfig::default();
        assert_eq!(
            c.home_dir_with(&lookup(&[("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.aim")
        );
        assert_eq!(
            c.home_dir_with(&lookup(&[("HOME", "/h"), ("AIM_HOME", "/a")]))
                .unwrap(),
            PathBuf::from("/a")
        );
        let c = c.with_aim_home("/code");
        assert_eq!(
            c.home_dir_with(&lookup(&[("AIM_HOME", "/a")])).unwrap(),
            PathBuf::from("/code")
        );
        assert!(ClientConfig::default().home_dir_with(&lookup(&[])).is_err());
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080//").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base_url("https://aim.example").unwrap(),
            "https://aim.example"
        );
        for bad in [
            "ftp://x",
            "127.0.0.1:8080",
            "http://",
            "https://h/aim",
            "http://h?x",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("read_*", "read_database"));
        assert!(glob("read_*", "read_"));
        assert!(!glob("read_*", "write_database"));
        assert!(glob("*_file", "delete_file"));
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(!glob("a*b*c", "a-x-c"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn api_keys_are_redacted_and_checked() {
        let k = ApiKey::new(" aim_live_secret \n").unwrap();
        assert_eq!(k.expose(), "aim_live_secret");
        assert_eq!(format!("{k:?}"), "ApiKey(..)");
        assert!(ApiKey::new("  ").is_err());
        assert!(ApiKey::new("a b").is_err());
    }
}
