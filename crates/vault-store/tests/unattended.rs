//! Audited events recorded without a session: one leaf plus its index row, read back through
//! the index, checked by `verify` in both directions, kept by backups, append-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use vault_store::backup::{BackupKey, BackupOptions, BackupProtection};
use vault_store::{FieldValue, SecretBytes, UnattendedEvent, Vault, VaultError};

fn release(profile: &str) -> UnattendedEvent {
    UnattendedEvent::new("deadman.release", profile)
        .int("heirs", 2)
        .int("generation", 3)
}

#[test]
fn appends_exactly_one_indexed_leaf_and_verify_passes() {
    let f = Fixture::new();
    let v = f.with_profile();
    let before = event_kinds(&v).len();
    f.clock.advance(1234);
    let entry = v.record_unattended(&release("agent")).unwrap();
    let kinds = event_kinds(&v);
    assert_eq!(kinds.len(), before + 1);
    assert_eq!(kinds[before], "deadman.release");
    assert_eq!(entry.leaf, u64::try_from(before).unwrap());
    let ev = last_event(&v);
    assert_eq!(ev, entry.event);
    assert_eq!(ev.time_ms, v.now_ms());
    assert_eq!(ev.time_ms, 1_700_000_001_234);
    assert_eq!(ev.get("unattended"), Some(&FieldValue::Bool(true)));
    assert_eq!(ev.get("heirs"), Some(&FieldValue::Int(2)));
    assert_eq!(ev.get("profile"), Some(&FieldValue::Str("agent".into())));

    let read = v.unattended_events("agent", "deadman.release").unwrap();
    assert_eq!(read, vec![entry.clone()]);
    assert!(
        v.unattended_events("agent", "other.kind")
            .unwrap()
            .is_empty()
    );
    assert!(
        v.unattended_events("nobody", "deadman.release")
            .unwrap()
            .is_empty()
    );

    let mut s = v.unlock("agent", pw()).unwrap();
    let r = s.verify(true, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
}

#[test]
fn refuses_unknown_profiles_and_reserved_kinds_without_writing() {
    let f = Fixture::new();
    let v = f.with_profile();
    let before = event_kinds(&v).len();
    assert!(matches!(
        v.record_unattended(&release("ghost")),
        Err(VaultError::ProfileNotFound(_))
    ));
    assert!(matches!(
        v.record_unattended(&UnattendedEvent::new("memory.recall", "agent")),
        Err(VaultError::InvalidInput(_))
    ));
    assert!(matches!(
        v.record_unattended(&release("agent").label("note", "free text here")),
        Err(VaultError::InvalidInput(_))
    ));
    assert_eq!(event_kinds(&v).len(), before);
}

#[test]
fn index_is_append_only_and_verify_catches_disagreement() {
    let f = Fixture::new();
    let v = f.with_profile();
    v.record_unattended(&release("agent")).unwrap();
    let conn = v.connection();
    assert!(
        conn.execute("DELETE FROM unattended_log", []).is_err(),
        "the index must be append-only"
    );
    assert!(
        conn.execute("UPDATE unattended_log SET kind = 'x.y'", [])
            .is_err()
    );

    // A leaf marked unattended without its index row (appended behind the vault's back).
    vault_audit::AuditLog::append(
        conn,
        &vault_audit::Event::new("deadman.release", v.now_ms())
            .with("profile", "agent")
            .with("unattended", true),
    )
    .unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    let r = s.verify(false, &[]).unwrap();
    let problem = r.first_problem.unwrap();
    assert!(problem.contains("unattended log"), "{problem}");
}

#[test]
fn verify_catches_an_index_row_that_points_at_another_leaf() {
    let f = Fixture::new();
    let v = f.with_profile();
    // Leaf 0 is `profile.create`, not an unattended event.
    v.connection()
        .execute(
            "INSERT INTO unattended_log(leaf, profile_id, kind, time_ms) VALUES (0, 'agent', 'deadman.release', 1)",
            [],
        )
        .unwrap();
    assert!(matches!(
        v.unattended_events("agent", "deadman.release"),
        Err(VaultError::Integrity(_))
    ));
    let mut s = v.unlock("agent", pw()).unwrap();
    let problem = s.verify(false, &[]).unwrap().first_problem.unwrap();
    assert!(
        problem.contains("unattended log row for leaf 0"),
        "{problem}"
    );
}

#[test]
fn backups_keep_unattended_events() {
    let f = Fixture::new();
    let v = f.with_profile();
    let opts = |incremental| BackupOptions {
        protection: BackupProtection::Passphrase {
            passphrase: SecretBytes::from("backup pw".to_string()),
            params: fast(),
        },
        incremental,
        include_black: false,
    };
    let first = v.record_unattended(&release("agent")).unwrap();
    let full = f.dir.path().join("full.bk");
    let inc = f.dir.path().join("inc.bk");
    let mut s = v.unlock("agent", pw()).unwrap();
    s.backup(&full, &opts(false)).unwrap();
    drop(s);
    let second = v.record_unattended(&release("agent")).unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.backup(&inc, &opts(true)).unwrap();
    drop(s);

    let target = f.dir.path().join("restored.db");
    Vault::restore(
        &target,
        &[&full, &inc],
        &BackupKey::Passphrase(SecretBytes::from("backup pw".to_string())),
    )
    .unwrap();
    let rv = Vault::open(&target).unwrap();
    let leaves: Vec<u64> = rv
        .unattended_events("agent", "deadman.release")
        .unwrap()
        .iter()
        .map(|e| e.leaf)
        .collect();
    assert_eq!(leaves, vec![first.leaf, second.leaf]);
    let mut rs = rv.unlock("agent", pw()).unwrap();
    let r = rs.verify(false, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
}
