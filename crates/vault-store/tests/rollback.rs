//! Single-row rollback (issue 11, point 3): an attacker with write access to the closed vault
//! file saves a genuine row, lets the owner change it, then puts the old row back with SQL.
//! Every mutable authenticated row carries a version bound into its MAC and checked against
//! the audit log, so the old row is refused at use and reported by `verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use rusqlite::Connection;
use vault_store::{
    BoundaryRule, DenyReason, Enrollment, GateConfig, KeySource, MemoryInput, RecallRequest,
    Sealing, Vault, VaultError,
};

/// Copies the rows of `table` matching `filter` into an attacker's side table in the file.
fn save(path: &std::path::Path, table: &str, filter: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "DROP TABLE IF EXISTS saved_{table}; CREATE TABLE saved_{table} AS SELECT * FROM {table} WHERE {filter};"
    ))
    .unwrap();
}

/// Puts the saved rows back in place of the current ones (foreign keys off, as an attacker
/// with the sqlite3 shell would), and removes the side table.
fn put_back(path: &std::path::Path, table: &str, filter: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "DELETE FROM {table} WHERE {filter}; INSERT INTO {table} SELECT * FROM saved_{table}; DROP TABLE saved_{table};"
    ))
    .unwrap();
}

fn verify_problem(v: &Vault) -> String {
    let mut s = v.unlock("agent", pw()).unwrap();
    let r = s.verify(true, &[]).unwrap();
    r.first_problem.expect("verify must report the rollback")
}

#[test]
fn gate_config_rollback_does_not_release_a_denied_recall() {
    let f = Fixture::new();
    let id = {
        let v = f.with_profile();
        let mut s = v.unlock("agent", pw()).unwrap();
        let id = s
            .store(MemoryInput::text("level two").classification(2))
            .unwrap();
        // The genuine default configuration (level 2: boundary only if configured): allowed.
        s.recall(id, RecallRequest::new("baseline")).unwrap();
        s.close().unwrap();
        id
    };
    save(&f.path, "gate_config", "profile_id = 'agent'");
    {
        let v = f.open_with(person_gates());
        let mut s = v.unlock("agent", pw()).unwrap();
        let mut cfg = GateConfig::default();
        cfg.levels[2].boundary = BoundaryRule::Required;
        cfg.boundary_socket = Some(f.dir.path().join("no-daemon.sock").display().to_string());
        s.set_gate_config(&cfg).unwrap();
        let e = s.recall(id, RecallRequest::new("now gated")).unwrap_err();
        assert!(
            matches!(e, VaultError::Denied(DenyReason::BoundaryError(_))),
            "{e}"
        );
        s.close().unwrap();
    }
    put_back(&f.path, "gate_config", "profile_id = 'agent'");
    let v = f.open();
    {
        let mut s = v.unlock("agent", pw()).unwrap();
        let e = s
            .recall(id, RecallRequest::new("after rollback"))
            .unwrap_err();
        match e {
            VaultError::Denied(DenyReason::Integrity(why)) => {
                assert!(why.contains("gate configuration"), "{why}");
                assert!(why.contains("put back"), "{why}");
            }
            e => panic!("the rolled-back configuration must be refused, got {e}"),
        }
        assert!(s.gate_config().is_err());
    }
    let p = verify_problem(&v);
    assert!(p.contains("gate_config"), "{p}");
}

#[test]
fn gate_config_and_index_rolled_back_together_are_reported_by_verify() {
    let f = Fixture::new();
    f.with_profile();
    save(&f.path, "gate_config", "profile_id = 'agent'");
    save(&f.path, "row_versions", "1=1");
    {
        let v = f.open_with(person_gates());
        let mut s = v.unlock("agent", pw()).unwrap();
        let mut cfg = GateConfig::default();
        cfg.levels[2].approval = true;
        s.set_gate_config(&cfg).unwrap();
        s.close().unwrap();
    }
    put_back(&f.path, "gate_config", "profile_id = 'agent'");
    put_back(&f.path, "row_versions", "1=1");
    let v = f.open();
    let p = verify_problem(&v);
    assert!(p.contains("row version index"), "{p}");
}

#[test]
fn record_rollback_and_deletion_are_refused() {
    // The TOTP last-used step is such a record: rolling it back would let a used code replay.
    let f = Fixture::new();
    {
        let v = f.with_profile();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.put_record("presence", "totp.last_step", b"100", Sealing::Sealed)
            .unwrap();
        s.close().unwrap();
    }
    let filter = "profile_id = 'agent' AND namespace = 'presence'";
    save(&f.path, "records", filter);
    {
        let v = f.open();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.put_record("presence", "totp.last_step", b"200", Sealing::Sealed)
            .unwrap();
        s.close().unwrap();
    }
    put_back(&f.path, "records", filter);
    let v = f.open();
    {
        let s = v.unlock("agent", pw()).unwrap();
        let e = s.get_record("presence", "totp.last_step").unwrap_err();
        assert!(
            matches!(&e, VaultError::Integrity(w) if w.contains("put back")),
            "{e}"
        );
    }
    let p = verify_problem(&v);
    assert!(p.contains("records"), "{p}");
    drop(v);
    // Deleting the row outright (so the step reads as "never used") is refused too.
    Connection::open(&f.path)
        .unwrap()
        .execute_batch(&format!("DELETE FROM records WHERE {filter}"))
        .unwrap();
    let v = f.open();
    let s = v.unlock("agent", pw()).unwrap();
    let e = s.get_record("presence", "totp.last_step").unwrap_err();
    assert!(
        matches!(&e, VaultError::Integrity(w) if w.contains("missing")),
        "{e}"
    );
    // A genuine delete is fine.
    drop(s);
    let f2 = Fixture::new();
    let v2 = f2.with_profile();
    let mut s2 = v2.unlock("agent", pw()).unwrap();
    s2.put_record("n", "k", b"v", Sealing::Public).unwrap();
    assert!(s2.delete_record("n", "k").unwrap());
    assert!(s2.get_record("n", "k").unwrap().is_none());
    assert!(s2.verify(true, &[]).unwrap().is_ok());
}

#[test]
fn key_slot_rollback_does_not_bring_back_the_old_passphrase() {
    let f = Fixture::new();
    f.with_profile();
    let filter = "profile_id = 'agent' AND slot_id = 'passphrase'";
    save(&f.path, "key_slots", filter);
    {
        let v = f.open();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.change_passphrase("new passphrase", Some(fast())).unwrap();
        s.close().unwrap();
    }
    put_back(&f.path, "key_slots", filter);
    let v = f.open();
    let Err(e) = v.unlock("agent", pw()) else {
        panic!("the old passphrase must be refused")
    };
    assert!(
        matches!(&e, VaultError::Integrity(w) if w.contains("key slot")),
        "{e}"
    );
    assert_eq!(
        last_event(&v).get("reason").unwrap().as_str(),
        Some("integrity")
    );
    // A removed slot put back is refused the same way.
    let f = Fixture::new();
    {
        let v = f.with_profile();
        let key = f.dir.path().join("key");
        vault_store::create_key_file(&key).unwrap();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.add_key_slot(&Enrollment::KeyFile(key.clone())).unwrap();
        s.close().unwrap();
        save(&f.path, "key_slots", "slot_id = 'keyfile'");
        let v = f.open();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.remove_key_slot("keyfile").unwrap();
        s.close().unwrap();
        drop(v);
        put_back(&f.path, "key_slots", "slot_id = 'keyfile'");
        let v = f.open();
        let Err(e) = v.unlock("agent", KeySource::KeyFile(key)) else {
            panic!("the removed key file slot must be refused")
        };
        assert!(matches!(&e, VaultError::Integrity(_)), "{e}");
        assert!(verify_problem(&v).contains("key_slots"));
    }
}

#[test]
fn access_record_rollback_does_not_reset_a_cooldown() {
    let f = Fixture::new();
    let id = {
        let v = f.with_profile();
        let mut s = v.unlock("agent", pw()).unwrap();
        let id = s
            .store(MemoryInput::text("slow").cooldown_ms(60_000))
            .unwrap();
        s.recall(id, RecallRequest::new("first")).unwrap();
        s.close().unwrap();
        id
    };
    save(&f.path, "access_state", "1=1");
    f.clock.advance(61_000);
    {
        let v = f.open();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.recall(id, RecallRequest::new("second")).unwrap();
        s.close().unwrap();
    }
    put_back(&f.path, "access_state", "1=1");
    f.clock.advance(1_000);
    let v = f.open();
    {
        let mut s = v.unlock("agent", pw()).unwrap();
        let e = s.recall(id, RecallRequest::new("third")).unwrap_err();
        assert!(
            matches!(&e, VaultError::Denied(DenyReason::Integrity(w)) if w.contains("access record")),
            "{e}"
        );
    }
    assert!(verify_problem(&v).contains("access"));
}
