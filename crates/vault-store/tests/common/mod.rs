//! Shared helpers for the integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::PathBuf;
use std::sync::Arc;

use vault_store::{
    Argon2Params, Enrollment, GateError, GateRequest, Gates, KeySource, ManualClock, Presence,
    Vault,
};

/// A presence check that a person always confirms (the enrolled human factor, in tests).
pub struct PersonPresent;

impl Presence for PersonPresent {
    fn confirm(&self, _: &GateRequest) -> Result<(), GateError> {
        Ok(())
    }
}

/// Gates with a human factor for administrative changes (a presence check that confirms).
pub fn person_gates() -> Gates {
    Gates::new().presence(Arc::new(PersonPresent))
}

pub fn fast() -> Argon2Params {
    Argon2Params::new(64, 1, 1).unwrap()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub clock: ManualClock,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vaults").join("vault.db");
        Self {
            dir,
            path,
            clock: ManualClock::new(1_700_000_000_000),
        }
    }

    pub fn open(&self) -> Vault {
        self.open_with(Gates::new())
    }

    pub fn open_with(&self, gates: Gates) -> Vault {
        Vault::options()
            .clock(Arc::new(self.clock.clone()))
            .gates(gates)
            .open(&self.path)
            .unwrap()
    }

    /// A vault with profile `agent` (passphrase `pw`).
    pub fn with_profile(&self) -> Vault {
        self.with_profile_gates(Gates::new())
    }

    /// A vault opened with `gates`, with profile `agent` (passphrase `pw`).
    pub fn with_profile_gates(&self, gates: Gates) -> Vault {
        let v = self.open_with(gates);
        v.create_profile("agent", Enrollment::passphrase_with("pw", fast()))
            .unwrap()
            .close()
            .unwrap();
        v
    }
}

pub fn pw() -> KeySource {
    KeySource::passphrase("pw")
}

/// The kinds of all audit leaves, in order.
pub fn event_kinds(v: &Vault) -> Vec<String> {
    let n = vault_audit::AuditLog::tree_size(v.connection()).unwrap();
    (0..n)
        .map(|i| vault_audit::AuditLog::leaf(v.connection(), i).unwrap().kind)
        .collect()
}

pub fn last_event(v: &Vault) -> vault_audit::Event {
    let n = vault_audit::AuditLog::tree_size(v.connection()).unwrap();
    vault_audit::AuditLog::leaf(v.connection(), n - 1).unwrap()
}
