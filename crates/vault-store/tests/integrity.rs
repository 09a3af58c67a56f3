//! The threat model: an attacker who can write the vault file but holds no key must not lower
//! a gate undetected. Every tampering below is denied at recall (fail closed) and audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use vault_store::{
    DenyReason, Enrollment, KeySource, MemoryId, MemoryInput, RecallRequest, Session, VaultError,
};

fn integrity_denied(s: &mut Session<'_>, id: MemoryId) {
    let e = s.recall(id, RecallRequest::new("why")).unwrap_err();
    assert!(
        matches!(e, VaultError::Denied(DenyReason::Integrity(_))),
        "{e}"
    );
    let ev = last_event(s.vault());
    assert_eq!(ev.kind, "memory.recall.denied");
    assert_eq!(ev.get("reason").unwrap().as_str(), Some("integrity"));
}

fn exec(s: &Session<'_>, sql: &str) {
    s.vault().connection().execute_batch(sql).unwrap();
}

#[test]
fn tampered_ciphertext_metadata_and_mac_are_detected() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    for col in ["content", "meta", "content_mac", "row_mac"] {
        let id = s
            .store(MemoryInput::text("secret").metadata(b"m".to_vec()))
            .unwrap();
        let hex = id
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        // Flip the last byte of the column.
        let blob: Vec<u8> = v
            .connection()
            .query_row(
                &format!("SELECT {col} FROM memories WHERE memory_id = x'{hex}'"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut t = blob.clone();
        *t.last_mut().unwrap() ^= 1;
        v.connection()
            .execute(
                &format!("UPDATE memories SET {col} = ?1 WHERE memory_id = x'{hex}'"),
                [t],
            )
            .unwrap();
        integrity_denied(&mut s, id);
    }
}

#[test]
fn reclassification_policy_edits_and_untombstoning_are_denied() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let sealed = s
        .store(MemoryInput::text("needs approval").classification(3))
        .unwrap();
    exec(
        &s,
        "UPDATE memories SET classification = 1 WHERE classification = 3",
    );
    integrity_denied(&mut s, sealed);

    let cool = s
        .store(MemoryInput::text("slow").cooldown_ms(60_000))
        .unwrap();
    s.recall(cool, RecallRequest::new("first")).unwrap();
    exec(
        &s,
        "UPDATE memories SET cooldown_ms = 0 WHERE cooldown_ms = 60000",
    );
    integrity_denied(&mut s, cool);

    let exp = s
        .store(MemoryInput::text("expiring").expires_at_ms(f.clock_now() + 10))
        .unwrap();
    exec(
        &s,
        "UPDATE memories SET expires_at_ms = NULL WHERE expires_at_ms IS NOT NULL",
    );
    integrity_denied(&mut s, exp);

    let gone = s.store(MemoryInput::text("to forget")).unwrap();
    assert!(s.tombstone(gone, "done").unwrap());
    exec(
        &s,
        "UPDATE memories SET tombstoned_at_ms = NULL WHERE tombstoned_at_ms IS NOT NULL",
    );
    integrity_denied(&mut s, gone);

    let epoch = s.store(MemoryInput::text("epoch")).unwrap();
    exec(
        &s,
        "UPDATE memories SET key_epoch = 2 WHERE seq = (SELECT max(seq) FROM memories)",
    );
    integrity_denied(&mut s, epoch);
}

#[test]
fn swapped_rows_are_detected() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let a = s
        .store(MemoryInput::text("alpha").classification(1))
        .unwrap();
    let b = s
        .store(MemoryInput::text("bravo").classification(1))
        .unwrap();
    // Swap every sealed column between the two rows.
    exec(
        &s,
        "CREATE TEMP TABLE t AS SELECT seq, content, meta, content_mac, row_mac FROM memories;
         UPDATE memories SET (content, meta, content_mac, row_mac) =
           (SELECT content, meta, content_mac, row_mac FROM t WHERE t.seq = (SELECT max(seq) + min(seq) FROM memories) - memories.seq);",
    );
    integrity_denied(&mut s, a);
    integrity_denied(&mut s, b);
}

#[test]
fn moving_a_row_to_another_profile_is_detected() {
    let f = Fixture::new();
    let v = f.with_profile();
    v.create_profile("other", Enrollment::passphrase_with("pw2", fast()))
        .unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("mine")).unwrap();
    exec(&s, "UPDATE memories SET profile_id = 'other'");
    assert!(matches!(
        s.recall(id, RecallRequest::new("")),
        Err(VaultError::MemoryNotFound(_))
    ));
    drop(s);
    let mut o = v.unlock("other", KeySource::passphrase("pw2")).unwrap();
    integrity_denied(&mut o, id);
}

#[test]
fn lifting_lockdown_without_the_key_is_detected() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("x")).unwrap();
    s.recall(id, RecallRequest::new("")).unwrap();
    v.enter_lockdown("incident").unwrap();
    let e = s.recall(id, RecallRequest::new("")).unwrap_err();
    assert_eq!(e.deny_reason(), Some(&DenyReason::Lockdown));
    // Forge an exit record: wrong MAC, still locked.
    exec(
        &s,
        "INSERT INTO lockdown_exits VALUES (1, 'agent', 0, 1, x'00')",
    );
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Lockdown)
    );
    exec(&s, "DELETE FROM lockdown_exits");
    // Delete the lockdown record itself (dropping the append-only trigger first).
    exec(
        &s,
        "DROP TRIGGER lockdown_log_no_delete; DELETE FROM lockdown_log;",
    );
    integrity_denied(&mut s, id);
}

#[test]
fn lockdown_needs_the_real_key_to_leave() {
    let f = Fixture::new();
    let v = f.with_profile_gates(person_gates());
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("x")).unwrap();
    v.enter_lockdown("drill").unwrap();
    assert!(s.lockdown_active().unwrap());
    assert!(matches!(
        s.search(&vault_store::SearchQuery::new("x")),
        Err(VaultError::Denied(DenyReason::Lockdown))
    ));
    assert!(matches!(
        v.leave_lockdown("agent", KeySource::passphrase("nope")),
        Err(VaultError::WrongKey { .. })
    ));
    assert!(s.lockdown_active().unwrap());
    v.leave_lockdown("agent", pw()).unwrap();
    assert!(!s.lockdown_active().unwrap());
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "x"
    );
    let st = v.lockdown_status().unwrap();
    assert_eq!(
        (st.epoch, st.exited_profiles),
        (1, vec!["agent".to_string()])
    );
    let kinds = event_kinds(&v);
    assert!(kinds.contains(&"vault.lockdown.enter".to_string()));
    assert!(kinds.contains(&"vault.lockdown.exit".to_string()));
}

#[test]
fn access_record_forgery_and_clock_regression_deny() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(MemoryInput::text("cool").cooldown_ms(10_000))
        .unwrap();
    s.recall(id, RecallRequest::new("")).unwrap();
    let e = s.recall(id, RecallRequest::new("")).unwrap_err();
    assert!(
        matches!(
            e.deny_reason(),
            Some(DenyReason::Cooldown {
                remaining_ms: 10_000
            })
        ),
        "{e}"
    );
    f.clock.advance(-5_000);
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::ClockRegressed)
    );
    f.clock.advance(15_000);
    exec(&s, "UPDATE access_state SET last_allowed_ms = 0");
    integrity_denied(&mut s, id);
}

#[test]
fn gate_configuration_tampering_denies() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("x").classification(3)).unwrap();
    // Make level 3 require nothing by copying level 0's bytes over it: MAC fails.
    let cfg: Vec<u8> = v
        .connection()
        .query_row("SELECT config FROM gate_config", [], |r| r.get(0))
        .unwrap();
    let mut c = cfg.clone();
    let l0 = c[1..11].to_vec();
    c[31..41].copy_from_slice(&l0);
    v.connection()
        .execute("UPDATE gate_config SET config = ?1", [c])
        .unwrap();
    integrity_denied(&mut s, id);
    exec(&s, "DELETE FROM gate_config");
    integrity_denied(&mut s, id);
}

trait ClockNow {
    fn clock_now(&self) -> i64;
}

impl ClockNow for Fixture {
    fn clock_now(&self) -> i64 {
        use vault_store::Clock;
        self.clock.now_ms()
    }
}
