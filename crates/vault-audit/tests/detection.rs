//! Tamper detection on a real SQLite log: every flipped byte of a leaf, node, head or signature
//! is found with its exact location; deletion, reordering, truncation and forks are caught; key
//! rotation keeps old heads verifiable.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::collections::BTreeMap;

use aim_crypto::AgentKeypair;
use rusqlite::{Connection, params};
use vault_audit::{
    AuditError, AuditLog, Discrepancy, Event, TrustAnchor, VerifyOptions, create_schema,
};

fn key(n: u8) -> AgentKeypair {
    AgentKeypair::from_seed(&[n; 32])
}

fn pinned(k: &AgentKeypair) -> VerifyOptions {
    VerifyOptions {
        trusted_keys: vec![k.public_key()],
        ..Default::default()
    }
}

fn event(i: i64) -> Event {
    Event::new("memory.recall.allowed", 1_000 + i)
        .with("memory_id", format!("m{i}"))
        .with("requester", "agent")
}

/// A log of 1 key epoch + `n` events, with a head signed after every `every` events.
fn log_with(n: i64, every: i64) -> (Connection, AgentKeypair) {
    let conn = Connection::open_in_memory().unwrap();
    create_schema(&conn).unwrap();
    let k = key(1);
    AuditLog::announce_key(&conn, &k.public_key(), None, 999).unwrap();
    for i in 0..n {
        AuditLog::append(&conn, &event(i)).unwrap();
        if (i + 1) % every == 0 {
            AuditLog::sign_head(&conn, &k, 2_000 + i).unwrap();
        }
    }
    (conn, k)
}

/// What an attacker with write access to the file does first.
fn drop_guards(conn: &Connection) {
    for t in ["leaves", "nodes", "heads", "epochs"] {
        for op in ["update", "delete"] {
            conn.execute_batch(&format!("DROP TRIGGER audit_{t}_no_{op};"))
                .unwrap();
        }
    }
}

fn flip_blob(conn: &Connection, table: &str, col: &str, key_col: &str, key: i64, byte: usize) {
    let mut blob: Vec<u8> = conn
        .query_row(
            &format!("SELECT {col} FROM {table} WHERE {key_col} = ?1"),
            [key],
            |r| r.get(0),
        )
        .unwrap();
    blob[byte] ^= 0x01;
    conn.execute(
        &format!("UPDATE {table} SET {col} = ?1 WHERE {key_col} = ?2"),
        params![blob, key],
    )
    .unwrap();
}

fn blob_len(conn: &Connection, table: &str, col: &str, key_col: &str, key: i64) -> usize {
    conn.query_row(
        &format!("SELECT length({col}) FROM {table} WHERE {key_col} = ?1"),
        [key],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

fn verify(conn: &Connection, k: &AgentKeypair) -> Option<Discrepancy> {
    AuditLog::verify(conn, &pinned(k)).unwrap().discrepancy
}

/// Node positions as documented in docs/audit-log.md.
fn position_map(n: u64) -> BTreeMap<i64, (u32, u64)> {
    let mut out = BTreeMap::new();
    for level in 1..20u32 {
        for index in 0..(n >> level) {
            let m = (index + 1) << level;
            let pos = (m - 1) - u64::from((m - 1).count_ones()) + u64::from(level) - 1;
            out.insert(pos as i64, (level, index));
        }
    }
    out
}

#[test]
fn a_clean_log_verifies_with_a_pinned_key() {
    let (conn, k) = log_with(20, 6);
    let report = AuditLog::verify(&conn, &pinned(&k)).unwrap();
    assert!(report.is_ok(), "{:?}", report.discrepancy);
    assert_eq!(report.tree_size, 21);
    assert_eq!(report.leaves_verified, 21);
    assert_eq!(report.heads_verified, 3);
    assert_eq!(report.latest_verified_head, Some((3, 19)));
    assert_eq!(report.unsigned_tail(), 2);
    assert_eq!(report.key_epochs, 1);
    assert_eq!(
        report.trust_anchor,
        TrustAnchor::PinnedKey {
            key_id: k.public_key().key_id()
        }
    );
}

#[test]
fn trust_needs_an_anchor() {
    let (conn, k) = log_with(5, 5);
    let none = AuditLog::verify(&conn, &VerifyOptions::default()).unwrap();
    assert_eq!(
        none.discrepancy,
        Some(Discrepancy::HeadKeyUntrusted {
            head_seq: 1,
            key_id: k.public_key().key_id()
        })
    );
    assert_eq!(none.trust_anchor, TrustAnchor::None);
    let tofu = AuditLog::verify(
        &conn,
        &VerifyOptions {
            trust_first_key: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(tofu.is_ok());
    assert!(matches!(
        tofu.trust_anchor,
        TrustAnchor::FirstKeyInLog { .. }
    ));
    // Pinning another key is not overridden by trust on first use.
    let other = AuditLog::verify(
        &conn,
        &VerifyOptions {
            trusted_keys: vec![key(9).public_key()],
            trust_first_key: true,
            known_head: None,
        },
    )
    .unwrap();
    assert!(matches!(
        other.discrepancy,
        Some(Discrepancy::HeadKeyUntrusted { head_seq: 1, .. })
    ));
}

#[test]
fn every_flipped_leaf_byte_is_located() {
    let (conn, k) = log_with(11, 4);
    drop_guards(&conn);
    for idx in 0..12i64 {
        let len = blob_len(&conn, "audit_leaves", "data", "idx", idx);
        for byte in 0..len {
            flip_blob(&conn, "audit_leaves", "data", "idx", idx, byte);
            assert_eq!(
                verify(&conn, &k),
                Some(Discrepancy::LeafHashMismatch { index: idx as u64 }),
                "leaf {idx} byte {byte}"
            );
            flip_blob(&conn, "audit_leaves", "data", "idx", idx, byte);
        }
        for byte in 0..32 {
            flip_blob(&conn, "audit_leaves", "leaf_hash", "idx", idx, byte);
            assert_eq!(
                verify(&conn, &k),
                Some(Discrepancy::LeafHashMismatch { index: idx as u64 }),
                "leaf hash {idx} byte {byte}"
            );
            flip_blob(&conn, "audit_leaves", "leaf_hash", "idx", idx, byte);
        }
    }
    assert_eq!(verify(&conn, &k), None);
}

#[test]
fn every_flipped_node_byte_is_located() {
    let (conn, k) = log_with(12, 4);
    drop_guards(&conn);
    let positions = position_map(13);
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM audit_nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as usize, positions.len());
    for (&pos, &(level, index)) in &positions {
        for byte in [0usize, 7, 31] {
            flip_blob(&conn, "audit_nodes", "hash", "pos", pos, byte);
            assert_eq!(
                verify(&conn, &k),
                Some(Discrepancy::NodeMismatch { level, index }),
                "pos {pos}"
            );
            flip_blob(&conn, "audit_nodes", "hash", "pos", pos, byte);
        }
    }
    // A removed node and an extra node.
    conn.execute("DELETE FROM audit_nodes WHERE pos = 4", [])
        .unwrap();
    let (level, index) = positions[&4];
    assert_eq!(
        verify(&conn, &k),
        Some(Discrepancy::NodeMissing { level, index })
    );
    let (conn, k) = log_with(12, 4);
    conn.execute(
        "INSERT INTO audit_nodes (pos, hash) VALUES (999, zeroblob(32))",
        [],
    )
    .unwrap();
    assert!(matches!(
        verify(&conn, &k),
        Some(Discrepancy::NodeCountMismatch { .. })
    ));
}

fn head_seq_of(d: &Discrepancy) -> Option<u64> {
    use Discrepancy::*;
    match d {
        HeadMalformed { head_seq, .. }
        | HeadOutOfOrder { head_seq }
        | HeadBeyondLog { head_seq, .. }
        | HeadRootMismatch { head_seq, .. }
        | HeadKeyUnknown { head_seq, .. }
        | HeadKeyRetired { head_seq, .. }
        | HeadSignatureInvalid { head_seq }
        | HeadKeyUntrusted { head_seq, .. } => Some(*head_seq),
        _ => None,
    }
}

#[test]
fn every_flipped_head_byte_is_located() {
    let (conn, k) = log_with(12, 4);
    drop_guards(&conn);
    for seq in 1..=3i64 {
        for (col, want_sig) in [("root", false), ("signature", true), ("public_key", false)] {
            let len = blob_len(&conn, "audit_heads", col, "seq", seq);
            for byte in 0..len {
                flip_blob(&conn, "audit_heads", col, "seq", seq, byte);
                let d = verify(&conn, &k).expect("tamper must be found");
                assert_eq!(head_seq_of(&d), Some(seq as u64), "{col} byte {byte}: {d}");
                if want_sig {
                    assert_eq!(
                        d,
                        Discrepancy::HeadSignatureInvalid {
                            head_seq: seq as u64
                        }
                    );
                }
                if col == "root" {
                    assert!(matches!(d, Discrepancy::HeadRootMismatch { .. }));
                }
                flip_blob(&conn, "audit_heads", col, "seq", seq, byte);
            }
        }
        // Integer and text columns.
        for (sql, what) in [
            (
                "UPDATE audit_heads SET time_ms = time_ms + 1 WHERE seq = ?1",
                "time",
            ),
            (
                "UPDATE audit_heads SET time_ms = time_ms - 100000 WHERE seq = ?1",
                "time back",
            ),
            (
                "UPDATE audit_heads SET tree_size = tree_size - 1 WHERE seq = ?1",
                "size",
            ),
            (
                "UPDATE audit_heads SET key_id = 'ffffffffffffffff' WHERE seq = ?1",
                "key id",
            ),
        ] {
            let tx = conn.unchecked_transaction().unwrap();
            tx.execute(sql, [seq]).unwrap();
            let d = verify(&tx, &k).expect("tamper must be found");
            assert_eq!(head_seq_of(&d), Some(seq as u64), "{what}: {d}");
            tx.rollback().unwrap();
        }
    }
    assert_eq!(verify(&conn, &k), None);
}

#[test]
fn deletion_reordering_and_truncation_are_detected() {
    let (conn, k) = log_with(12, 4);
    drop_guards(&conn);
    // Delete a middle leaf.
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute("DELETE FROM audit_leaves WHERE idx = 6", [])
        .unwrap();
    assert_eq!(verify(&tx, &k), Some(Discrepancy::LeafMissing { index: 6 }));
    tx.rollback().unwrap();

    // Swap two leaves (bytes and hashes), as a reordering would.
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute_batch(
        "UPDATE audit_leaves SET idx = -1 WHERE idx = 2;
         UPDATE audit_leaves SET idx = 2 WHERE idx = 5;
         UPDATE audit_leaves SET idx = 5 WHERE idx = -1;",
    )
    .unwrap();
    assert_eq!(
        verify(&tx, &k),
        Some(Discrepancy::NodeMismatch { level: 1, index: 1 })
    );
    tx.rollback().unwrap();

    // Delete the tail covered by the last head.
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute("DELETE FROM audit_leaves WHERE idx >= 11", [])
        .unwrap();
    assert_eq!(
        verify(&tx, &k),
        Some(Discrepancy::HeadBeyondLog {
            head_seq: 3,
            tree_size: 13,
            log_size: 11
        })
    );
    tx.rollback().unwrap();

    // Delete the tail AND its heads: only a known head (a witness's) reveals it.
    let known = AuditLog::latest_head(&conn).unwrap().unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute_batch(
        "DELETE FROM audit_leaves WHERE idx >= 9; DELETE FROM audit_heads WHERE seq = 3;
         DELETE FROM audit_nodes WHERE pos >= 7;",
    )
    .unwrap();
    assert_eq!(verify(&tx, &k), None, "undetectable without a witness");
    let with_known = AuditLog::verify(
        &tx,
        &VerifyOptions {
            known_head: Some(known),
            ..pinned(&k)
        },
    )
    .unwrap();
    assert_eq!(
        with_known.discrepancy,
        Some(Discrepancy::LogTruncated {
            known_size: 13,
            log_size: 9
        })
    );
    tx.rollback().unwrap();

    // A leaf moved to a negative index.
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute("UPDATE audit_leaves SET idx = -5 WHERE idx = 3", [])
        .unwrap();
    assert_eq!(
        verify(&tx, &k),
        Some(Discrepancy::LeafIndexInvalid { stored: -5 })
    );
    tx.rollback().unwrap();

    // Delete a middle head.
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute("DELETE FROM audit_heads WHERE seq = 2", [])
        .unwrap();
    assert_eq!(verify(&tx, &k), Some(Discrepancy::HeadMissing { seq: 2 }));
    tx.rollback().unwrap();
    assert_eq!(verify(&conn, &k), None);
}

#[test]
fn a_consistently_rewritten_tree_is_caught_by_the_heads() {
    // The attacker rewrites event 5 and recomputes every hash, but cannot re-sign heads.
    let (conn, k) = log_with(12, 4);
    let (forged, _) = log_with(12, 4);
    drop_guards(&forged);
    drop_guards(&conn);
    // Build the forged tables from a log whose event 4 differs.
    let alt = Connection::open_in_memory().unwrap();
    create_schema(&alt).unwrap();
    AuditLog::announce_key(&alt, &k.public_key(), None, 999).unwrap();
    for i in 0..12 {
        let e = if i == 4 { event(99) } else { event(i) };
        AuditLog::append(&alt, &e).unwrap();
    }
    conn.execute_batch("DELETE FROM audit_leaves; DELETE FROM audit_nodes;")
        .unwrap();
    let leaves: Vec<(i64, Vec<u8>, Vec<u8>)> = alt
        .prepare("SELECT idx, leaf_hash, data FROM audit_leaves")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (i, h, d) in leaves {
        conn.execute(
            "INSERT INTO audit_leaves VALUES (?1, ?2, ?3)",
            params![i, h, d],
        )
        .unwrap();
    }
    let nodes: Vec<(i64, Vec<u8>)> = alt
        .prepare("SELECT pos, hash FROM audit_nodes")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (p, h) in nodes {
        conn.execute("INSERT INTO audit_nodes VALUES (?1, ?2)", params![p, h])
            .unwrap();
    }
    // Event 4 is leaf 5 (leaf 0 is the key epoch); head 1 covers 5 leaves.
    assert_eq!(
        verify(&conn, &k),
        Some(Discrepancy::HeadRootMismatch {
            head_seq: 2,
            tree_size: 9
        })
    );
}

#[test]
fn the_record_hook_is_called_for_every_event_and_reports_mismatches() {
    let (conn, k) = log_with(6, 3);
    let mut seen = Vec::new();
    let mut hook = |i: u64, e: &Event| -> Result<(), String> {
        seen.push((i, e.kind.clone()));
        if e.get("memory_id").and_then(|v| v.as_str()) == Some("m3") {
            return Err("no such memory".into());
        }
        Ok(())
    };
    let report = AuditLog::verify_with(&conn, &pinned(&k), &mut hook).unwrap();
    assert_eq!(
        report.discrepancy,
        Some(Discrepancy::RecordMismatch {
            index: 4,
            kind: "memory.recall.allowed".into(),
            reason: "no such memory".into()
        })
    );
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].1, "audit.key_epoch");
    // Heads before the bad record are still reported as verified.
    assert_eq!(report.heads_verified, 1);
}

#[test]
fn key_rotation_keeps_old_heads_verifiable() {
    let (conn, a) = log_with(5, 5);
    let b = key(2);
    let handover = AuditLog::rotate_key(&conn, &a, &b.public_key(), 5_000).unwrap();
    assert_eq!(handover.key_id, a.public_key().key_id());
    // A may no longer sign; B may.
    AuditLog::append(&conn, &event(50)).unwrap();
    assert!(matches!(
        AuditLog::sign_head(&conn, &a, 6_000),
        Err(AuditError::KeyNotCurrent { .. })
    ));
    AuditLog::sign_head(&conn, &b, 6_001).unwrap();
    for i in 51..55 {
        AuditLog::append(&conn, &event(i)).unwrap();
    }
    AuditLog::sign_head(&conn, &b, 7_000).unwrap();

    // Trust flows forward from A, and backward from B.
    for opts in [pinned(&a), pinned(&b)] {
        let r = AuditLog::verify(&conn, &opts).unwrap();
        assert!(r.is_ok(), "{:?}", r.discrepancy);
        assert_eq!(r.heads_verified, 4);
        assert_eq!(r.key_epochs, 2);
    }
    // A forged head by the retired key is rejected.
    drop_guards(&conn);
    let size = AuditLog::tree_size(&conn).unwrap();
    let root = AuditLog::root(&conn, size).unwrap();
    let forged = vault_audit::SignedTreeHead::sign(&a, 5, size, root, 8_000);
    conn.execute(
        "INSERT INTO audit_heads VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            5,
            size as i64,
            &root[..],
            8_000,
            forged.key_id,
            &a.public_key().as_bytes()[..],
            &forged.signature.to_bytes()[..]
        ],
    )
    .unwrap();
    assert_eq!(
        verify(&conn, &a),
        Some(Discrepancy::HeadKeyRetired {
            head_seq: 5,
            key_id: a.public_key().key_id()
        })
    );
}

#[test]
fn key_announcements_are_guarded() {
    let conn = Connection::open_in_memory().unwrap();
    create_schema(&conn).unwrap();
    let a = key(1);
    assert!(matches!(
        AuditLog::sign_head(&conn, &a, 1),
        Err(AuditError::NoKeyEpoch)
    ));
    assert!(matches!(
        AuditLog::announce_key(&conn, &a.public_key(), Some("0000000000000000"), 1),
        Err(AuditError::BadAnnouncement { .. })
    ));
    AuditLog::announce_key(&conn, &a.public_key(), None, 1).unwrap();
    assert!(matches!(
        AuditLog::announce_key(&conn, &key(2).public_key(), None, 1),
        Err(AuditError::BadAnnouncement { .. })
    ));
    assert!(matches!(
        AuditLog::announce_key(&conn, &a.public_key(), Some(&a.public_key().key_id()), 1),
        Err(AuditError::BadAnnouncement { .. })
    ));
    assert!(matches!(
        AuditLog::sign_head(&conn, &key(3), 1),
        Err(AuditError::KeyNotCurrent { .. })
    ));
    assert!(matches!(
        AuditLog::append(&conn, &Event::new("audit.key_epoch", 1)),
        Err(AuditError::ReservedKind(_))
    ));
    // Head times never go backwards.
    let h1 = AuditLog::sign_head(&conn, &a, 100).unwrap();
    let h2 = AuditLog::sign_head(&conn, &a, 50).unwrap();
    assert_eq!(h1.seq + 1, h2.seq);
    assert_eq!(h2.time_ms, 100);
}

#[test]
fn a_tampered_epoch_index_is_detected() {
    let (conn, k) = log_with(4, 4);
    drop_guards(&conn);
    conn.execute("UPDATE audit_epochs SET leaf_idx = 3 WHERE epoch = 0", [])
        .unwrap();
    assert_eq!(
        verify(&conn, &k),
        Some(Discrepancy::EpochIndexMismatch { epoch: 0 })
    );
}

#[test]
fn appends_are_atomic_with_the_callers_transaction_and_the_log_is_append_only() {
    let (conn, k) = log_with(4, 4);
    let before = AuditLog::tree_size(&conn).unwrap();
    {
        let tx = conn.unchecked_transaction().unwrap();
        AuditLog::append(&tx, &event(100)).unwrap();
        AuditLog::append(&tx, &event(101)).unwrap();
        tx.rollback().unwrap();
    }
    assert_eq!(AuditLog::tree_size(&conn).unwrap(), before);
    assert_eq!(verify(&conn, &k), None);
    for sql in [
        "UPDATE audit_leaves SET data = x'00' WHERE idx = 1",
        "DELETE FROM audit_leaves WHERE idx = 1",
        "DELETE FROM audit_nodes",
        "UPDATE audit_heads SET time_ms = 0",
        "DELETE FROM audit_epochs",
    ] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}
