//! The vocabulary of the vault: classification levels, creators, memory ids, access policies.

use std::fmt;
use std::str::FromStr;

use crate::{Result, VaultError};

/// How sensitive a memory is; higher levels pass more gates at recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Classification {
    /// 0: scratch data; may expire and be purged.
    Ephemeral = 0,
    /// 1: ordinary working memory.
    Working = 1,
    /// 2: private: a justification is required.
    Private = 2,
    /// 3: sealed: plus human approval.
    Sealed = 3,
    /// 4: vaulted: plus cooldown and a required boundary check.
    Vaulted = 4,
    /// 5: black: plus physical presence; excluded from backups by default.
    Black = 5,
}

impl Classification {
    /// All levels, lowest first.
    pub const ALL: [Self; 6] = [
        Self::Ephemeral,
        Self::Working,
        Self::Private,
        Self::Sealed,
        Self::Vaulted,
        Self::Black,
    ];

    /// The level number (0–5).
    pub fn level(self) -> u8 {
        self as u8
    }

    /// The level's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ephemeral => "ephemeral",
            Self::Working => "working",
            Self::Private => "private",
            Self::Sealed => "sealed",
            Self::Vaulted => "vaulted",
            Self::Black => "black",
        }
    }
}

impl TryFrom<u8> for Classification {
    type Error = VaultError;
    fn try_from(v: u8) -> Result<Self> {
        Self::ALL
            .get(usize::from(v))
            .copied()
            .ok_or_else(|| VaultError::InvalidInput(format!("classification must be 0–5, got {v}")))
    }
}

impl TryFrom<i64> for Classification {
    type Error = VaultError;
    fn try_from(v: i64) -> Result<Self> {
        u8::try_from(v)
            .map_err(|_| VaultError::InvalidInput(format!("classification must be 0–5, got {v}")))
            .and_then(Self::try_from)
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.level(), self.name())
    }
}

impl FromStr for Classification {
    type Err = VaultError;
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(n) = s.parse::<u8>() {
            return Self::try_from(n);
        }
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                VaultError::InvalidInput(format!(
                    "unknown classification `{s}` (use 0–5 or a level name)"
                ))
            })
    }
}

/// Who created a memory (recorded and authenticated, but asserted by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Creator {
    /// The agent itself.
    Agent = 1,
    /// A person.
    Human = 2,
    /// The system (imports, automation).
    System = 3,
}

impl Creator {
    /// The creator's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Human => "human",
            Self::System => "system",
        }
    }
}

impl TryFrom<i64> for Creator {
    type Error = VaultError;
    fn try_from(v: i64) -> Result<Self> {
        match v {
            1 => Ok(Self::Agent),
            2 => Ok(Self::Human),
            3 => Ok(Self::System),
            other => Err(VaultError::corrupt(
                "creator",
                format!("unknown creator code {other}"),
            )),
        }
    }
}

impl FromStr for Creator {
    type Err = VaultError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "agent" => Ok(Self::Agent),
            "human" => Ok(Self::Human),
            "system" => Ok(Self::System),
            other => Err(VaultError::InvalidInput(format!(
                "unknown creator `{other}` (use agent, human or system)"
            ))),
        }
    }
}

impl fmt::Display for Creator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A memory's id: a UUIDv7 (time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemoryId(pub(crate) uuid::Uuid);

impl MemoryId {
    /// A UUIDv7 from a time and 10 random bytes.
    pub(crate) fn from_time_and_random(now_ms: i64, rand: &[u8]) -> Self {
        let mut r = [0u8; 10];
        r.copy_from_slice(&rand[..10]);
        let ms = u64::try_from(now_ms).unwrap_or(0);
        Self(uuid::Builder::from_unix_timestamp_millis(ms, &r).into_uuid())
    }

    /// The 16 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// From 16 bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(b))
    }

    pub(crate) fn from_slice(b: &[u8]) -> Result<Self> {
        let arr: [u8; 16] = b.try_into().map_err(|_| {
            VaultError::corrupt("memory id", format!("{} bytes, expected 16", b.len()))
        })?;
        Ok(Self::from_bytes(arr))
    }
}

impl fmt::Display for MemoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for MemoryId {
    type Err = VaultError;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| VaultError::InvalidInput(format!("`{s}` is not a memory id (a UUID)")))
    }
}

/// Access policy of one memory. Both fields are authenticated with the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessPolicy {
    /// Minimum time between two allowed recalls, in milliseconds (0 = none; the level's
    /// configured minimum applies on top).
    pub cooldown_ms: u64,
    /// Unix milliseconds after which the memory is never recalled (and level 0 is purged).
    pub expires_at_ms: Option<i64>,
}

/// Checks a profile id: 1–64 characters, `[A-Za-z0-9][A-Za-z0-9_-]*`.
pub fn validate_profile_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidInput(format!(
            "profile id `{id}` must be 1–64 characters of letters, digits, `_` and `-`, starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_parses_numbers_and_names() {
        assert_eq!(
            "3".parse::<Classification>().unwrap(),
            Classification::Sealed
        );
        assert_eq!(
            "Black".parse::<Classification>().unwrap(),
            Classification::Black
        );
        assert!("6".parse::<Classification>().is_err());
        assert!(Classification::try_from(-1i64).is_err());
        assert_eq!(
            Classification::try_from(4u8).unwrap(),
            Classification::Vaulted
        );
    }

    #[test]
    fn memory_ids_are_v7_and_round_trip() {
        let id = MemoryId::from_time_and_random(1_700_000_000_000, &[9; 10]);
        assert_eq!(id.0.get_version_num(), 7);
        assert_eq!(id.to_string().parse::<MemoryId>().unwrap(), id);
        assert!(MemoryId::from_slice(&[0; 15]).is_err());
        let later = MemoryId::from_time_and_random(1_700_000_000_001, &[0; 10]);
        assert!(later > id);
    }

    #[test]
    fn profile_ids_are_checked() {
        validate_profile_id("agent-1_x").unwrap();
        for bad in ["", "-a", "a/b", "a b", &"x".repeat(65), "../etc"] {
            assert!(validate_profile_id(bad).is_err(), "{bad}");
        }
    }
}
