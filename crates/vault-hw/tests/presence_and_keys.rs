//! TOTP and FIDO2 (software model) plugged into a real vault.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use aim_crypto::Zeroizing;
use vault_hw::HwError;
use vault_hw::fido2::{
    Authenticator, DEFAULT_RP_ID, Fido2KeySource, Fido2Presence, SoftAuthenticator,
    verify_assertion,
};
use vault_hw::totp::{CallbackCodeSource, PendingTotp, Totp, TotpParams, TotpPresence};
use vault_store::{
    Argon2Params, Enrollment, ExternalKeySource, GateConfig, Gates, KeySource, ManualClock,
    MemoryInput, Presence, RecallRequest, Vault,
};

fn fast() -> Argon2Params {
    Argon2Params::new(64, 1, 1).unwrap()
}

#[test]
fn fido2_key_source_round_trip_and_wrong_authenticator() {
    let auth = Arc::new(SoftAuthenticator::new());
    let src = Fido2KeySource::new(auth.clone(), DEFAULT_RP_ID);
    let (key, blob) = src.enroll("agent").unwrap();
    assert_eq!(src.recover(&blob).unwrap(), key);
    // No touch: refused, no key.
    auth.set_user_present(false);
    assert!(src.recover(&blob).is_err());
    auth.set_user_present(true);
    // Another authenticator does not know the credential.
    let other = Fido2KeySource::new(Arc::new(SoftAuthenticator::new()), DEFAULT_RP_ID);
    assert!(other.recover(&blob).is_err());
    // Another relying party is refused before touching the device.
    let other_rp = Fido2KeySource::new(auth.clone(), "evil.example");
    assert!(other_rp.recover(&blob).is_err());
    // A blob whose public key was swapped fails signature verification.
    let mut v: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    v["credential"]["public_key"] = serde_json::json!([7u8; 32].to_vec());
    let forged = serde_json::to_vec(&v).unwrap();
    assert!(src.recover(&forged).is_err());
    assert!(src.recover(b"garbage").is_err());
}

#[test]
fn fido2_presence_verifies_signature_rp_and_counter() {
    let auth = Arc::new(SoftAuthenticator::new());
    let presence = Fido2Presence::register(auth.clone(), DEFAULT_RP_ID, "agent").unwrap();
    presence.check().unwrap();
    presence.check().unwrap();
    auth.set_user_present(false);
    assert!(presence.check().is_err());
    auth.set_user_present(true);
    // Direct verification rejects a signature over another challenge, another rp, a replay.
    let cred = presence.credential().clone();
    let a = auth
        .get_assertion(DEFAULT_RP_ID, &cred.id, b"challenge-1", None)
        .unwrap();
    let c = verify_assertion(DEFAULT_RP_ID, &cred, b"challenge-1", &a, 0).unwrap();
    assert!(matches!(
        verify_assertion(DEFAULT_RP_ID, &cred, b"challenge-2", &a, 0),
        Err(HwError::Verify(_))
    ));
    assert!(verify_assertion("other.example", &cred, b"challenge-1", &a, 0).is_err());
    assert!(verify_assertion(DEFAULT_RP_ID, &cred, b"challenge-1", &a, c).is_err());
    let mut flipped = a.clone();
    flipped.authenticator_data[32] &= !0x01; // clear user-present
    assert!(verify_assertion(DEFAULT_RP_ID, &cred, b"challenge-1", &flipped, 0).is_err());
    // A credential registered elsewhere does not verify this authenticator's signature.
    let stranger = SoftAuthenticator::new()
        .make_credential(DEFAULT_RP_ID, b"x", b"c")
        .unwrap();
    let mut wrong = cred.clone();
    wrong.public_key = stranger.public_key;
    assert!(verify_assertion(DEFAULT_RP_ID, &wrong, b"challenge-1", &a, 0).is_err());
}

#[test]
fn fido2_slot_unlocks_a_vault_and_presence_gates_level_5() {
    let auth = Arc::new(SoftAuthenticator::new());
    let src: Arc<dyn ExternalKeySource> =
        Arc::new(Fido2KeySource::new(auth.clone(), DEFAULT_RP_ID));
    let presence = Arc::new(Fido2Presence::register(auth.clone(), DEFAULT_RP_ID, "agent").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::options()
        .gates(Gates::new().presence(presence))
        .open(dir.path().join("v.db"))
        .unwrap();
    let mut s = vault
        .create_profile("agent", Enrollment::External(src.clone()))
        .unwrap();
    let mut cfg: GateConfig = s.gate_config().unwrap();
    // Level 5 needs presence (and nothing this test cannot answer).
    for level in &mut cfg.levels {
        level.approval = false;
        level.boundary = vault_store::BoundaryRule::Never;
    }
    cfg.levels[5].presence = true;
    cfg.levels[5].justification = false;
    s.set_gate_config(&cfg).unwrap();
    let id = s
        .store(MemoryInput::text("black").classification(5))
        .unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new("t"))
            .unwrap()
            .text()
            .unwrap(),
        "black"
    );
    auth.set_user_present(false);
    assert!(s.recall(id, RecallRequest::new("t")).is_err());
    auth.set_user_present(true);
    s.close().unwrap();
    vault
        .unlock("agent", KeySource::external(src))
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn totp_presence_sealed_secret_and_replay_across_reload() {
    let clock = ManualClock::new(1_700_000_000_000);
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path().join("v.db")).unwrap();
    let mut s = vault
        .create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    let uri = TotpPresence::enroll(&mut s, TotpParams::default(), "Memory Vault").unwrap();
    assert!(uri.starts_with("otpauth://totp/Memory%20Vault:agent?secret="));
    // The secret is sealed: the public record API does not see it.
    assert!(
        vault
            .get_public_record("agent", "hw", "totp")
            .unwrap()
            .is_none()
    );
    let secret_b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let totp = Totp::new(
        aim_crypto::SecretBytes::new(base32_decode(&secret_b32)),
        TotpParams::default(),
    )
    .unwrap();
    let now_secs = 1_700_000_000u64;
    let code = totp.code_at(now_secs).to_string();
    let given = Arc::new(std::sync::Mutex::new(code.clone()));
    let g = given.clone();
    let source = Arc::new(CallbackCodeSource::new(move |_| {
        Ok(Zeroizing::new(g.lock().unwrap().clone()))
    }));
    let p = TotpPresence::load(&s, source.clone(), Arc::new(clock.clone()))
        .unwrap()
        .unwrap();
    let req = vault_store::PresenceRequest {
        memory_id: "00000000-0000-0000-0000-000000000000".parse().unwrap(),
        classification: 5u8.try_into().unwrap(),
        profile: "agent".into(),
        requester: "t".into(),
        justification: "t".into(),
        purpose: "recall".into(),
    };
    p.confirm(&req).unwrap();
    // Same code again: refused (replay).
    assert!(p.confirm(&req).is_err());
    p.persist(&mut s).unwrap();
    // A new process (reload from the vault) also refuses the used code.
    let p2 = TotpPresence::load(&s, source, Arc::new(clock.clone()))
        .unwrap()
        .unwrap();
    assert!(p2.confirm(&req).is_err());
    // The next step's code works.
    clock.advance(30_000);
    *given.lock().unwrap() = totp.code_at(now_secs + 30).to_string();
    p2.confirm(&req).unwrap();
    // A wrong code is refused.
    *given.lock().unwrap() = "000000".into();
    clock.advance(30_000);
    let wrong_is_right = totp.code_at(now_secs + 60).as_str() == "000000";
    assert_eq!(p2.confirm(&req).is_ok(), wrong_is_right);
    let _ = MemoryInput::text("unused");
}

#[test]
fn pending_totp_is_stored_only_after_a_right_first_code_which_is_then_spent() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path().join("v.db")).unwrap();
    let mut s = vault
        .create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    let now = 1_700_000_000u64;
    let pending = PendingTotp::generate(TotpParams::default()).unwrap();
    let b32 = pending.secret_base32();
    assert!(
        pending
            .provisioning_uri("Memory Vault", "agent")
            .contains(b32.as_str())
    );
    assert!(!format!("{pending:?}").contains(b32.as_str()));
    let totp = Totp::new(
        aim_crypto::SecretBytes::new(base32_decode(&b32)),
        TotpParams::default(),
    )
    .unwrap();
    // A wrong first code stores nothing.
    let right = totp.code_at(now).to_string();
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    assert!(matches!(
        pending.confirm(&mut s, wrong, now),
        Err(HwError::BadCode(_))
    ));
    assert!(!TotpPresence::is_enrolled(&s).unwrap());

    let pending = PendingTotp::generate(TotpParams::default()).unwrap();
    let totp = Totp::new(
        aim_crypto::SecretBytes::new(base32_decode(&pending.secret_base32())),
        TotpParams::default(),
    )
    .unwrap();
    let first = totp.code_at(now).to_string();
    let step = pending.confirm(&mut s, &first, now).unwrap();
    assert!(TotpPresence::is_enrolled(&s).unwrap());
    let clock = ManualClock::new(i64::try_from(now).unwrap() * 1000);
    let p = TotpPresence::load(
        &s,
        Arc::new(CallbackCodeSource::new(|_| {
            Ok(Zeroizing::new(String::new()))
        })),
        Arc::new(clock),
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.last_accepted_step(), Some(step));
    // The confirming code is spent; the next step's is not.
    assert!(p.check(&first).is_err());
    p.check(&totp.code_for_step(step + 1)).unwrap();
}

fn base32_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("bad base32"),
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}
