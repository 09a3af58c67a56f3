//! Key derivation: Argon2id for passphrases, HKDF-SHA256 for subkeys, constant-time compare.
//!
//! Argon2id parameter sets follow libsodium's named limits (p = 1, 32-byte output):
//!
//! | name          | memory   | passes |
//! |---------------|----------|--------|
//! | `interactive` | 64 MiB   | 2      |
//! | `moderate`    | 256 MiB  | 3      |
//! | `sensitive`   | 1 GiB    | 4      |
//!
//! The parameters used are stored next to what they protect, encoded as
//! `argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>` ([`Argon2Params::encode`]); [`Argon2Params::parse`]
//! refuses values outside sane bounds so a tampered record cannot make a derivation take
//! terabytes or hours.

use std::fmt;
use std::str::FromStr;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{CryptoError, Result, SecretKey};

/// Largest memory cost [`Argon2Params::parse`] accepts: 4 GiB.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Largest pass count accepted.
pub const MAX_PASSES: u32 = 64;
/// Largest lane count accepted.
pub const MAX_LANES: u32 = 16;
/// Length of a passphrase salt.
pub const SALT_LEN: usize = 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    memory_kib: u32,
    passes: u32,
    lanes: u32,
}

impl Argon2Params {
    /// libsodium `INTERACTIVE`: 64 MiB, 2 passes.
    pub const INTERACTIVE: Self = Self {
        memory_kib: 64 * 1024,
        passes: 2,
        lanes: 1,
    };
    /// libsodium `MODERATE`: 256 MiB, 3 passes.
    pub const MODERATE: Self = Self {
        memory_kib: 256 * 1024,
        passes: 3,
        lanes: 1,
    };
    /// libsodium `SENSITIVE`: 1 GiB, 4 passes (what the Python Memory Vault uses).
    pub const SENSITIVE: Self = Self {
        memory_kib: 1024 * 1024,
        passes: 4,
        lanes: 1,
    };

    /// Custom parameters, checked against Argon2's minimums and this crate's maximums.
    pub fn new(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self> {
        if !(1..=MAX_LANES).contains(&lanes) {
            return Err(CryptoError::KdfParams(format!(
                "lanes must be 1..={MAX_LANES}, got {lanes}"
            )));
        }
        if !(1..=MAX_PASSES).contains(&passes) {
            return Err(CryptoError::KdfParams(format!(
                "passes must be 1..={MAX_PASSES}, got {passes}"
            )));
        }
        let min_memory = 8 * lanes;
        if !(min_memory..=MAX_MEMORY_KIB).contains(&memory_kib) {
            return Err(CryptoError::KdfParams(format!(
                "memory must be {min_memory}..={MAX_MEMORY_KIB} KiB, got {memory_kib}"
            )));
        }
        Ok(Self {
            memory_kib,
            passes,
            lanes,
        })
    }

    /// A named set: `interactive`, `moderate` or `sensitive`.
    pub fn named(name: &str) -> Result<Self> {
        match name {
            "interactive" => Ok(Self::INTERACTIVE),
            "moderate" => Ok(Self::MODERATE),
            "sensitive" => Ok(Self::SENSITIVE),
            other => Err(CryptoError::KdfParams(format!(
                "unknown parameter set `{other}` (use interactive, moderate or sensitive)"
            ))),
        }
    }

    /// The name of this set when it is one of the named ones.
    pub fn name(&self) -> Option<&'static str> {
        match *self {
            Self::INTERACTIVE => Some("interactive"),
            Self::MODERATE => Some("moderate"),
            Self::SENSITIVE => Some("sensitive"),
            _ => None,
        }
    }

    /// Memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Number of lanes.
    pub fn lanes(&self) -> u32 {
        self.lanes
    }

    /// `argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>`.
    pub fn encode(&self) -> String {
        format!(
            "argon2id$v=19$m={},t={},p={}",
            self.memory_kib, self.passes, self.lanes
        )
    }

    /// Parses [`Argon2Params::encode`]'s format, enforcing the bounds of [`Argon2Params::new`].
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            CryptoError::KdfParams(format!(
                "expected argon2id$v=19$m=..,t=..,p=.., got `{text}`"
            ))
        };
        let rest = text.strip_prefix("argon2id$v=19$").ok_or_else(bad)?;
        let mut fields = rest.split(',');
        let mut take = |key: &str| -> Result<u32> {
            let field = fields.next().ok_or_else(bad)?;
            let value = field
                .strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .ok_or_else(bad)?;
            if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            value.parse().map_err(|_| bad())
        };
        let (m, t, p) = (take("m")?, take("t")?, take("p")?);
        if fields.next().is_some() {
            return Err(bad());
        }
        Self::new(m, t, p)
    }

    /// Derives a 256-bit key from `passphrase` and `salt` (at least 8 bytes; use
    /// [`SALT_LEN`] random bytes).
    pub fn derive(&self, passphrase: &[u8], salt: &[u8]) -> Result<SecretKey> {
        let params = Params::new(
            self.memory_kib,
            self.passes,
            self.lanes,
            Some(SecretKey::LEN),
        )
        .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, salt, &mut out[..])
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        Ok(SecretKey::from_bytes(*out))
    }
}

impl fmt::Display for Argon2Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for Argon2Params {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// HKDF-SHA256 (RFC 5869): a 256-bit subkey of `ikm` for the purpose named by `info`.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> SecretKey {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<sha2::Sha256>::new(Some(salt), ikm).expand(info, &mut out[..]);
    SecretKey::from_bytes(*out)
}

/// Constant-time equality of two byte strings (the lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_input_sensitive() {
        // Small parameters keep the test fast; determinism and sensitivity are what matter here.
        let p = Argon2Params::new(64, 1, 1).unwrap();
        let a = p.derive(b"password", b"somesalt").unwrap();
        let b = p.derive(b"password", b"somesalt").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, p.derive(b"passwore", b"somesalt").unwrap());
        assert_ne!(a, p.derive(b"password", b"somesalu").unwrap());
        assert_ne!(
            a,
            Argon2Params::new(64, 2, 1)
                .unwrap()
                .derive(b"password", b"somesalt")
                .unwrap()
        );
    }

    #[test]
    fn matches_reference_argon2id_output() {
        // Reference values from the C reference implementation (argon2-cffi 23,
        // hash_secret_raw(type=ID, hash_len=32)).
        let key = Argon2Params::new(64, 2, 1)
            .unwrap()
            .derive(b"password", b"somesalt")
            .unwrap();
        assert_eq!(
            hex::encode(key.expose()),
            "16a1a498734609dd01456da406de9f3d9da93e6c86c300a12fc1465214ce4922"
        );
        let key = Argon2Params::new(256, 3, 2)
            .unwrap()
            .derive(b"correct horse", b"0123456789abcdef")
            .unwrap();
        assert_eq!(
            hex::encode(key.expose()),
            "afcaf8c915198c197519c862f6f54c8d970855e7aafddc1e5d871608682fe7c0"
        );
    }

    #[test]
    fn encode_parse_round_trip_and_bounds() {
        for p in [
            Argon2Params::INTERACTIVE,
            Argon2Params::MODERATE,
            Argon2Params::SENSITIVE,
        ] {
            assert_eq!(Argon2Params::parse(&p.encode()).unwrap(), p);
            assert_eq!(Argon2Params::named(p.name().unwrap()).unwrap(), p);
        }
        assert_eq!(
            Argon2Params::SENSITIVE.encode(),
            "argon2id$v=19$m=1048576,t=4,p=1"
        );
        assert!(Argon2Params::SENSITIVE.memory_kib() >= 1024 * 1024);
        for bad in [
            "argon2id$v=19$m=1048576,t=4",
            "argon2i$v=19$m=1024,t=4,p=1",
            "argon2id$v=19$m=99999999999,t=4,p=1",
            "argon2id$v=19$m=5000000,t=4,p=1",
            "argon2id$v=19$m=1024,t=0,p=1",
            "argon2id$v=19$m=1024,t=4,p=99",
            "argon2id$v=19$m=1024,t=4,p=1,x=2",
            "argon2id$v=19$m=+1024,t=4,p=1",
            "",
        ] {
            assert!(Argon2Params::parse(bad).is_err(), "{bad}");
        }
        assert!(Argon2Params::named("paranoid").is_err());
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&ikm, &salt, &info);
        assert_eq!(
            hex::encode(okm.expose()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }
}
