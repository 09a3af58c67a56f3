//! Audit integration: every operation leaves a leaf in its own transaction, `verify` names the
//! first discrepancy, flipping any byte of a stored record is detected, proofs check offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use vault_store::{DenyReason, MemoryInput, RecallRequest, SearchQuery};

#[test]
fn every_operation_is_a_leaf_without_plaintext() {
    let f = Fixture::new();
    let v = f.with_profile_gates(person_gates());
    let _ = v.unlock("agent", vault_store::KeySource::passphrase("bad"));
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(
            MemoryInput::text("plaintext-marker-xyz")
                .tag("tag-marker")
                .intent("intent-marker"),
        )
        .unwrap();
    s.recall(id, RecallRequest::new("justification-marker"))
        .unwrap();
    s.search(&SearchQuery::new("plaintext")).unwrap();
    s.put_record(
        "escrow",
        "e1",
        b"record-marker",
        vault_store::Sealing::Sealed,
    )
    .unwrap();
    v.enter_lockdown("lock").unwrap();
    let _ = s.recall(id, RecallRequest::new(""));
    drop(s);
    v.leave_lockdown("agent", pw()).unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.tombstone(id, "reason-marker").unwrap();
    s.set_gate_config(&vault_store::GateConfig::default())
        .unwrap();
    let kinds = event_kinds(&v);
    for k in [
        "profile.create",
        "profile.unlock.failed",
        "profile.unlock",
        "memory.store",
        "memory.recall",
        "memory.search",
        "record.put",
        "vault.lockdown.enter",
        "memory.recall.denied",
        "vault.lockdown.exit",
        "memory.tombstone",
        "gates.config.change",
    ] {
        assert!(kinds.iter().any(|x| x == k), "missing {k} in {kinds:?}");
    }
    let n = vault_audit::AuditLog::tree_size(v.connection()).unwrap();
    for i in 0..n {
        let raw = vault_audit::AuditLog::leaf_bytes(v.connection(), i).unwrap();
        for m in [
            "plaintext-marker",
            "tag-marker",
            "intent-marker",
            "justification-marker",
            "record-marker",
            "reason-marker",
        ] {
            assert!(
                !raw.windows(m.len()).any(|w| w == m.as_bytes()),
                "{m} in leaf {i}"
            );
        }
    }
    let r = s.verify(true, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    assert!(r.records_checked >= n);
}

#[test]
fn flipping_any_byte_of_a_stored_record_is_detected() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store(
        MemoryInput::text("flip me")
            .metadata(b"meta".to_vec())
            .tag("t"),
    )
    .unwrap();
    assert!(s.verify(true, &[]).unwrap().is_ok());
    let (seq, cols): (i64, Vec<(String, Vec<u8>)>) = {
        let c = v.connection();
        let seq: i64 = c
            .query_row("SELECT seq FROM memories", [], |r| r.get(0))
            .unwrap();
        let mut cols = Vec::new();
        for col in ["memory_id", "content", "meta", "content_mac", "row_mac"] {
            let b: Vec<u8> = c
                .query_row(&format!("SELECT {col} FROM memories"), [], |r| r.get(0))
                .unwrap();
            cols.push((col.to_string(), b));
        }
        (seq, cols)
    };
    for (col, blob) in &cols {
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x40;
            v.connection()
                .execute(
                    &format!("UPDATE memories SET {col} = ?1 WHERE seq = ?2"),
                    rusqlite::params![t, seq],
                )
                .unwrap();
            let r = s.verify(true, &[]).unwrap();
            assert!(!r.is_ok(), "flip of {col}[{i}] undetected");
            v.connection()
                .execute(
                    &format!("UPDATE memories SET {col} = ?1 WHERE seq = ?2"),
                    rusqlite::params![blob, seq],
                )
                .unwrap();
        }
    }
    for col in [
        "created_at_ms",
        "created_by",
        "classification",
        "cooldown_ms",
        "key_epoch",
        "format",
    ] {
        v.connection()
            .execute(&format!("UPDATE memories SET {col} = {col} + 1"), [])
            .unwrap();
        let r = s.verify(false, &[]).unwrap();
        assert!(!r.is_ok(), "{col} change undetected");
        v.connection()
            .execute(&format!("UPDATE memories SET {col} = {col} - 1"), [])
            .unwrap();
    }
    assert!(s.verify(true, &[]).unwrap().is_ok());
}

#[test]
fn verify_names_the_first_discrepancy() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let a = s.store(MemoryInput::text("a")).unwrap();
    s.tombstone(a, "x").unwrap();
    assert!(s.verify(false, &[]).unwrap().is_ok());
    // Rolling back a tombstone (restoring content from an old copy) contradicts the log.
    v.connection().execute_batch("UPDATE memories SET tombstoned_at_ms = NULL, content = x'00', meta = x'00', content_mac = x'00'").unwrap();
    let r = s.verify(false, &[]).unwrap();
    let p = r.first_problem.unwrap();
    assert!(
        p.contains("memory.tombstone") || p.contains("tombstoned"),
        "{p}"
    );
    // A leaf edited in place.
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store(MemoryInput::text("b")).unwrap();
    v.connection()
        .execute_batch("DROP TRIGGER audit_leaves_no_update; UPDATE audit_leaves SET data = data || x'00' WHERE idx = 2")
        .unwrap();
    let p = s.verify(false, &[]).unwrap().first_problem.unwrap();
    assert!(p.contains('2'), "{p}");
}

#[test]
fn existence_proofs_check_offline_and_open_through_the_gates() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(MemoryInput::text("provable").classification(2))
        .unwrap();
    let proof = s.prove(id, None).unwrap();
    let ev = proof.check(&s.head_public_key()).unwrap();
    assert_eq!(ev.kind, "memory.store");
    assert!(proof.opening.is_none());
    // Opening needs the level-2 justification: the gates apply.
    let e = s.prove(id, Some(RecallRequest::new(""))).unwrap_err();
    assert_eq!(e.deny_reason(), Some(&DenyReason::JustificationRequired));
    let proof = s
        .prove(id, Some(RecallRequest::new("auditor asked")))
        .unwrap();
    proof.check(&s.head_public_key()).unwrap();
    assert_eq!(proof.opening.as_ref().unwrap().content, b"provable");
    let mut forged = proof.clone();
    forged.opening.as_mut().unwrap().content = b"other".to_vec();
    assert!(forged.check(&s.head_public_key()).is_err());
    let other = aim_crypto::AgentKeypair::generate().unwrap();
    assert!(proof.check(&other.public_key()).is_err());
}

#[test]
fn a_second_profile_verifies_with_trust_on_first_use() {
    let f = Fixture::new();
    let v = f.with_profile();
    v.create_profile(
        "second",
        vault_store::Enrollment::passphrase_with("pw2", fast()),
    )
    .unwrap();
    let mut a = v.unlock("agent", pw()).unwrap();
    a.store(MemoryInput::text("a")).unwrap();
    let r = a.verify(false, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    assert!(matches!(
        r.audit.trust_anchor,
        vault_audit::TrustAnchor::PinnedKey { .. }
    ));
    drop(a);
    let mut b = v
        .unlock("second", vault_store::KeySource::passphrase("pw2"))
        .unwrap();
    b.store(MemoryInput::text("b")).unwrap();
    let r = b.verify(true, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    assert!(matches!(
        r.audit.trust_anchor,
        vault_audit::TrustAnchor::FirstKeyInLog { .. }
    ));
}
