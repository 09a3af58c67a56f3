//! The FIDO2 presence credential persisted in the vault like TOTP's: enrolled through a
//! session, loaded by a later process (a file-backed software authenticator stands in for the
//! key), asked at level-5 recalls; replacing it needs a human factor the agent lacks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use vault_hw::fido2::{Authenticator, DEFAULT_RP_ID, Fido2Presence, SoftAuthenticator};
use vault_store::{
    Argon2Params, DenyReason, Enrollment, GateConfig, Gates, KeySource, MemoryInput, Presence,
    RecallRequest, Vault,
};

fn fast() -> Argon2Params {
    Argon2Params::new(64, 1, 1).unwrap()
}

/// Level 5 needs presence only (nothing else this test cannot answer).
fn presence_only() -> GateConfig {
    let mut cfg = GateConfig::default();
    for level in &mut cfg.levels {
        level.approval = false;
        level.boundary = vault_store::BoundaryRule::Never;
        level.min_cooldown_ms = 0;
    }
    cfg.levels[5].presence = true;
    cfg
}

/// A presence gate that loads the profile's FIDO2 credential after unlock, as `aim vault` does.
#[derive(Default)]
struct Loaded(std::sync::Mutex<Option<Arc<Fido2Presence>>>);

impl Presence for Loaded {
    fn confirm(&self, r: &vault_store::PresenceRequest) -> Result<(), vault_store::GateError> {
        match self.0.lock().unwrap().as_ref() {
            Some(p) => p.confirm(r),
            None => Err(vault_store::GateError::Unavailable("none enrolled".into())),
        }
    }
}

#[test]
fn enrolled_fido2_presence_persists_and_gates_level_5() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("soft-fido2.json");
    let path = dir.path().join("v.db");
    let vault = Vault::open(&path).unwrap();
    let mut s = vault
        .create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    s.set_gate_config(&presence_only()).unwrap();
    let key: Arc<dyn Authenticator> = Arc::new(SoftAuthenticator::open_state_file(&state).unwrap());
    let enrolled = Fido2Presence::enroll(&mut s, key, DEFAULT_RP_ID).unwrap();
    assert!(Fido2Presence::is_enrolled(&s).unwrap());
    assert!(
        vault
            .get_public_record("agent", "hw", "fido2")
            .unwrap()
            .is_none(),
        "sealed"
    );
    let id = s
        .store(MemoryInput::text("black").classification(5))
        .unwrap();
    s.close().unwrap();
    drop(vault);

    // A later process: the same key (state file) is loaded from the vault's record.
    let gate = Arc::new(Loaded::default());
    let vault = Vault::options()
        .gates(Gates::new().presence(gate.clone()))
        .open_existing(&path)
        .unwrap();
    let mut s = vault.unlock("agent", KeySource::passphrase("pw")).unwrap();
    let soft = Arc::new(SoftAuthenticator::open_state_file(&state).unwrap());
    let p = Arc::new(Fido2Presence::load(&s, soft.clone()).unwrap().unwrap());
    assert_eq!(p.credential(), enrolled.credential());
    *gate.0.lock().unwrap() = Some(p.clone());
    assert_eq!(
        s.recall(id, RecallRequest::new("t"))
            .unwrap()
            .text()
            .unwrap(),
        "black"
    );
    // No touch: denied.
    soft.set_user_present(false);
    assert!(matches!(
        s.recall(id, RecallRequest::new("t"))
            .unwrap_err()
            .deny_reason(),
        Some(DenyReason::PresenceDenied(_))
    ));
    soft.set_user_present(true);
    p.persist(&mut s).unwrap();
    let seen = p.counter();
    assert!(seen > 0);

    // Another authenticator (the agent's own software one) cannot answer for the credential.
    let stranger = Arc::new(
        Fido2Presence::load(&s, Arc::new(SoftAuthenticator::new()))
            .unwrap()
            .unwrap(),
    );
    *gate.0.lock().unwrap() = Some(stranger);
    assert!(s.recall(id, RecallRequest::new("t")).is_err());

    // Re-enrolling the agent's own authenticator needs a human factor: the enrolled key
    // does not confirm (not touched), so it is refused and the old credential stays.
    soft.set_user_present(false);
    *gate.0.lock().unwrap() = Some(p.clone());
    let e = Fido2Presence::enroll(&mut s, Arc::new(SoftAuthenticator::new()), DEFAULT_RP_ID)
        .unwrap_err();
    assert!(e.to_string().contains("needs a person"), "{e}");
    let again = Fido2Presence::load(&s, soft.clone()).unwrap().unwrap();
    assert_eq!(again.credential(), enrolled.credential());
    // With a touch of the enrolled key it is allowed.
    soft.set_user_present(true);
    Fido2Presence::enroll(&mut s, Arc::new(SoftAuthenticator::new()), DEFAULT_RP_ID).unwrap();
    let replaced = Fido2Presence::load(&s, soft).unwrap().unwrap();
    assert_ne!(replaced.credential(), enrolled.credential());
}
