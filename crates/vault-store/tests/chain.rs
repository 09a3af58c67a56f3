//! Issue 11, points 1, 2 and 4 on a real vault file: store commitments hide their content; a
//! head-signing key inserted into the file takes nothing over; a removed log tail and a file
//! replaced by an older copy are caught by the witness and by heads kept outside the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use rusqlite::{Connection, params};
use vault_audit::hash::{Hash, leaf_hash, node_hash};
use vault_audit::{AuditLog, Event, FieldValue, SignedTreeHead};
use vault_store::{
    DenyReason, Enrollment, MemoryInput, RecallRequest, Vault, VaultError, default_witness_path,
};

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn store_leaves(v: &Vault) -> Vec<(Vec<u8>, Event)> {
    let n = AuditLog::tree_size(v.connection()).unwrap();
    (0..n)
        .map(|i| {
            let bytes = AuditLog::leaf_bytes(v.connection(), i).unwrap();
            (bytes.clone(), Event::decode(&bytes).unwrap())
        })
        .filter(|(_, e)| e.kind == "memory.store")
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// Point 1: commitments hide their content.

#[test]
fn identical_content_stored_twice_gives_different_leaves_and_no_unkeyed_fingerprint() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let content = b"the launch code is 7781";
    for level in 0u8..=5 {
        s.store(MemoryInput::bytes(content.to_vec()).classification(level))
            .unwrap();
    }
    s.store_batch(vec![
        MemoryInput::bytes(content.to_vec()).classification(5),
        MemoryInput::bytes(content.to_vec()).classification(5),
    ])
    .unwrap();
    let leaves = store_leaves(&v);
    assert_eq!(leaves.len(), 8);
    let unkeyed = [
        aim_crypto::hash::sha256(content),
        vault_audit::commitment(&[0; 32], content),
    ];
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for (bytes, ev) in &leaves {
        let c = ev
            .get(vault_audit::COMMITMENT_FIELD)
            .and_then(FieldValue::as_bytes)
            .unwrap()
            .to_vec();
        assert!(!seen.contains(&c), "two stores share a commitment");
        for h in &unkeyed {
            assert_ne!(&c[..], &h[..], "a leaf is an unkeyed hash of the content");
            assert!(
                !contains(bytes, h),
                "a leaf holds an unkeyed hash of the content"
            );
        }
        assert!(!vault_store::verify::is_unsalted_store(ev));
        seen.push(c);
    }
    // Deep verification opens every commitment; none is reported as unsalted.
    let r = s.verify(true, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    assert!(r.unsalted_commitments.is_empty());
    // The opening a prover reveals carries a real salt.
    let id = s
        .store(MemoryInput::bytes(content.to_vec()).classification(1))
        .unwrap();
    let proof = s.prove(id, Some(RecallRequest::new("audit"))).unwrap();
    let opening = proof.opening.clone().unwrap();
    assert_ne!(opening.r, vec![0u8; 32]);
    proof.check(&s.head_public_key()).unwrap();
}

#[test]
fn verify_lists_store_leaves_written_with_unsalted_commitments() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store(MemoryInput::text("new")).unwrap();
    // A leaf as stores wrote it before the fix (zero salt, no version), for a memory the vault
    // no longer holds (left out of a restored backup).
    let gone = [7u8; 16];
    let c = raw(&f.path);
    let tx = c.unchecked_transaction().unwrap();
    let leaf = AuditLog::append(
        &tx,
        &Event::new("memory.store", 1)
            .with("profile", "agent")
            .with("memory_id", &gone[..])
            .with("classification", 1i64)
            .with(
                vault_audit::COMMITMENT_FIELD,
                vault_audit::commitment(&[0; 32], b"old"),
            ),
    )
    .unwrap();
    tx.execute(
        "INSERT INTO backup_exclusions VALUES (?1, ?2)",
        params![&gone[..], &[1u8; 16][..]],
    )
    .unwrap();
    tx.commit().unwrap();
    let r = s.verify(false, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    assert_eq!(r.unsalted_commitments, vec![leaf]);
}

// ---------------------------------------------------------------------------------------
// Point 2: head-signing key takeover through plain INSERTs.

fn node_pos(level: u32, index: u64) -> i64 {
    let before = ((index + 1) << level) - 1;
    (before - u64::from(before.count_ones()) + u64::from(level) - 1) as i64
}

fn stored(conn: &Connection, level: u32, index: u64) -> Hash {
    let blob: Vec<u8> = if level == 0 {
        conn.query_row(
            "SELECT leaf_hash FROM audit_leaves WHERE idx = ?1",
            [index as i64],
            |r| r.get(0),
        )
    } else {
        conn.query_row(
            "SELECT hash FROM audit_nodes WHERE pos = ?1",
            [node_pos(level, index)],
            |r| r.get(0),
        )
    }
    .unwrap();
    blob.try_into().unwrap()
}

/// INSERTs `data` as the next leaf, with the tree nodes it completes.
fn insert_leaf_raw(conn: &Connection, data: &[u8]) -> u64 {
    let n = AuditLog::tree_size(conn).unwrap();
    let mut cur = leaf_hash(data);
    conn.execute(
        "INSERT INTO audit_leaves (idx, leaf_hash, data) VALUES (?1, ?2, ?3)",
        params![n as i64, &cur[..], data],
    )
    .unwrap();
    let (mut level, mut index) = (0u32, n);
    while index & 1 == 1 {
        cur = node_hash(&stored(conn, level, index - 1), &cur);
        level += 1;
        index >>= 1;
        conn.execute(
            "INSERT INTO audit_nodes (pos, hash) VALUES (?1, ?2)",
            params![node_pos(level, index), &cur[..]],
        )
        .unwrap();
    }
    n
}

#[test]
fn a_signing_key_inserted_into_the_file_takes_nothing_over() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("kept")).unwrap();
    s.close().unwrap();
    let heads_before = AuditLog::heads(v.connection()).unwrap().len();
    let current = AuditLog::key_epochs(v.connection()).unwrap()[0].clone();

    // The attack: an epoch-1 leaf and its index row, plain INSERTs on the file.
    let attacker = aim_crypto::AgentKeypair::generate().unwrap();
    let c = raw(&f.path);
    let ev = Event::new("audit.key_epoch", 1)
        .with("epoch", 1i64)
        .with("key_id", attacker.public_key().key_id())
        .with("public_key", *attacker.public_key().as_bytes())
        .with("previous_key_id", current.key_id.as_str());
    let leaf = insert_leaf_raw(&c, &ev.encode().unwrap());
    c.execute(
        "INSERT INTO audit_epochs (epoch, leaf_idx, key_id, public_key) VALUES (1, ?1, ?2, ?3)",
        params![
            leaf as i64,
            attacker.public_key().key_id(),
            &attacker.public_key().as_bytes()[..]
        ],
    )
    .unwrap();

    // The next session signs nothing over it and says so.
    let mut s = v.unlock("agent", pw()).unwrap();
    s.recall(id, RecallRequest::new("still readable")).unwrap();
    assert!(matches!(s.sign_head(), Err(VaultError::HeadSigning(_))));
    assert!(matches!(s.close(), Err(VaultError::HeadSigning(_))));
    assert_eq!(
        AuditLog::heads(v.connection()).unwrap().len(),
        heads_before,
        "a head was signed over the inserted key"
    );

    // The attacker signs a head with its own key; verify names the inserted epoch.
    let size = AuditLog::tree_size(&c).unwrap();
    let root = AuditLog::root(&c, size).unwrap();
    let h = SignedTreeHead::sign(&attacker, heads_before as u64 + 1, size, root, i64::MAX / 2);
    c.execute(
        "INSERT INTO audit_heads VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            h.seq as i64,
            size as i64,
            &root[..],
            h.time_ms,
            h.key_id,
            &h.public_key.as_bytes()[..],
            &h.signature.to_bytes()[..]
        ],
    )
    .unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    let r = s.verify(false, &[]).unwrap();
    let problem = r.first_problem.unwrap();
    assert!(
        problem.contains(&format!("key epoch event {leaf}")) && problem.contains("not certified"),
        "{problem}"
    );
    drop(s);
}

#[test]
fn a_certified_hand_over_to_an_application_key_still_works() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let app = aim_crypto::AgentKeypair::generate().unwrap();
    let app_pub = app.public_key();
    s.use_head_signer(Box::new(app)).unwrap();
    s.store(MemoryInput::text("x")).unwrap();
    assert!(s.sign_head().unwrap());
    let r = s.verify(false, &[app_pub]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    s.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Point 4: truncation and whole-file rollback.

/// Removes leaves from `n` on, with their tree nodes and the heads that cover them (dropping
/// the append-only triggers first), as someone with write access to the file would.
fn truncate_log(path: &Path, n: u64) {
    let c = raw(path);
    for t in ["leaves", "nodes", "heads"] {
        c.execute_batch(&format!("DROP TRIGGER IF EXISTS audit_{t}_no_delete;"))
            .unwrap();
    }
    let nodes = n - u64::from(n.count_ones());
    c.execute("DELETE FROM audit_leaves WHERE idx >= ?1", [n as i64])
        .unwrap();
    c.execute("DELETE FROM audit_nodes WHERE pos >= ?1", [nodes as i64])
        .unwrap();
    c.execute("DELETE FROM audit_heads WHERE tree_size > ?1", [n as i64])
        .unwrap();
}

fn unwitnessed(f: &Fixture) -> Vault {
    Vault::options()
        .clock(Arc::new(f.clock.clone()))
        .no_witness_file()
        .open(&f.path)
        .unwrap()
}

#[test]
fn heads_are_published_to_the_witness_file_beside_the_vault() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store(MemoryInput::text("a")).unwrap();
    s.close().unwrap();
    let w = vault_audit::FileWitness::new(default_witness_path(&f.path));
    let latest = w.latest().unwrap().unwrap();
    assert_eq!(
        latest,
        AuditLog::latest_head(v.connection()).unwrap().unwrap()
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store(MemoryInput::text("b")).unwrap();
    s.close().unwrap();
    let records = w.records().unwrap();
    assert!(records.len() >= 2);
    // Each later record carries its consistency proof from the one before.
    assert!(records.last().unwrap().consistency.is_some());
    assert_eq!(
        records.last().unwrap().head,
        AuditLog::latest_head(v.connection()).unwrap().unwrap()
    );
}

#[test]
fn removing_the_log_tail_with_its_heads_is_caught() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("to forget")).unwrap();
    s.close().unwrap();
    let cut = AuditLog::tree_size(v.connection()).unwrap();
    let kept_head = AuditLog::latest_head(v.connection()).unwrap().unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.tombstone(id, "asked").unwrap();
    s.close().unwrap();
    let published = AuditLog::latest_head(v.connection()).unwrap().unwrap();
    drop(v);
    truncate_log(&f.path, cut);

    // The witness beside the vault: unlock (so every recall, verify and signing) is refused.
    let v = f.open();
    let e = v.unlock("agent", pw()).unwrap_err();
    assert!(matches!(e, VaultError::Witness { .. }), "{e}");
    assert!(e.to_string().contains("events were removed"), "{e}");

    // Without the witness file the truncated log is self-consistent; a head kept outside the
    // file catches it, and verify signs nothing.
    let v = unwitnessed(&f);
    let mut s = v.unlock("agent", pw()).unwrap();
    let before = AuditLog::heads(v.connection()).unwrap().len();
    let r = s
        .verify_against(false, &[], &[("saved head".into(), published)])
        .unwrap();
    // (Unlocking appended a leaf, so the log may be as long as the head again: then its
    // leaves differ from what the head covers.)
    let p = r.first_problem.unwrap();
    assert!(
        p.contains("saved head") && (p.contains("removed") || p.contains("differ")),
        "{p}"
    );
    assert_eq!(AuditLog::heads(v.connection()).unwrap().len(), before);
    // An older kept head that the log still extends passes.
    let r = s
        .verify_against(false, &[], &[("old head".into(), kept_head)])
        .unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
}

fn copy_file(from: &Path, to: &Path) {
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", to.display()));
    }
    std::fs::copy(from, to).unwrap();
}

#[test]
fn replacing_the_file_with_an_older_copy_is_caught() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("erase me")).unwrap();
    s.close().unwrap();
    drop(v);
    let old = f.dir.path().join("old.db");
    copy_file(&f.path, &old);

    // Afterwards: the memory is tombstoned and the vault locked down (heads published).
    let v = f.open();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.tombstone(id, "asked").unwrap();
    v.enter_lockdown("incident").unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Lockdown)
    );
    s.close().unwrap();
    let published = AuditLog::latest_head(v.connection()).unwrap().unwrap();
    drop(v);

    // The older copy brings the memory back and the lockdown is gone...
    copy_file(&old, &f.path);
    let v = unwitnessed(&f);
    let mut s = v.unlock("agent", pw()).unwrap();
    assert!(!s.lockdown_active().unwrap());
    // ...but verify against the published head fails, and signs nothing.
    let r = s
        .verify_against(false, &[], &[("published head".into(), published)])
        .unwrap();
    let p = r.first_problem.unwrap();
    assert!(
        p.contains("published head") && p.contains("older copy"),
        "{p}"
    );
    drop(s);
    drop(v);

    // With the witness file beside the vault, nothing is released at all.
    let v = f.open();
    let e = v.unlock("agent", pw()).unwrap_err();
    assert!(matches!(e, VaultError::Witness { .. }), "{e}");
    assert!(matches!(
        v.leave_lockdown("agent", pw()),
        Err(VaultError::Witness { .. })
    ));
}

#[test]
fn the_lockdown_checkpoint_counts_the_recall_it_is_written_for() {
    let f = Fixture::new();
    let v = unwitnessed(&f);
    v.create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap()
        .close()
        .unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("x")).unwrap();
    s.sign_head().unwrap();
    s.recall(id, RecallRequest::new("")).unwrap();
    // Remove the recall's own leaf: the checkpoint written with it now exceeds the log.
    let n = AuditLog::tree_size(v.connection()).unwrap();
    truncate_log(&f.path, n - 1);
    let e = s.recall(id, RecallRequest::new("")).unwrap_err();
    match e.deny_reason() {
        Some(DenyReason::Integrity(why)) => assert!(why.contains("shrank"), "{why}"),
        other => panic!("{other:?} ({e})"),
    }
}
