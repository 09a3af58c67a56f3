//! Head-signing key takeover (issue 11, point 2): someone with write access to the file inserts
//! an `audit.key_epoch` leaf and an `audit_epochs` row with plain INSERTs. No signer signs over
//! it, the inserted key cannot sign, and verification names the inserted epoch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use aim_crypto::AgentKeypair;
use rusqlite::{Connection, params};
use vault_audit::hash::{Hash, leaf_hash, node_hash};
use vault_audit::{
    AuditError, AuditLog, Discrepancy, Event, SignedTreeHead, VerifyOptions, create_schema,
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

fn log_with(n: i64) -> (Connection, AgentKeypair) {
    let conn = Connection::open_in_memory().unwrap();
    create_schema(&conn).unwrap();
    let k = key(1);
    AuditLog::announce_key(&conn, &k.public_key(), None, 999).unwrap();
    for i in 0..n {
        AuditLog::append(&conn, &Event::new("memory.store", 1_000 + i).with("n", i)).unwrap();
    }
    AuditLog::sign_head(&conn, &k, 2_000).unwrap();
    (conn, k)
}

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

/// Appends `data` as the next leaf with plain INSERTs (the leaf and the tree nodes it
/// completes), as an attacker without the library's guards would.
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

/// The attack: an epoch-1 announcement of `attacker` naming `current` as previous key, with an
/// optional forged certificate, inserted with plain INSERTs.
fn insert_epoch(
    conn: &Connection,
    attacker: &AgentKeypair,
    current: &AgentKeypair,
    cert: Option<[u8; 64]>,
) -> u64 {
    let mut ev = Event::new("audit.key_epoch", 9_000)
        .with("epoch", 1i64)
        .with("key_id", attacker.public_key().key_id())
        .with("public_key", *attacker.public_key().as_bytes())
        .with("previous_key_id", current.public_key().key_id());
    if let Some(c) = cert {
        ev = ev.with("certificate", c.to_vec());
    }
    let leaf = insert_leaf_raw(conn, &ev.encode().unwrap());
    conn.execute(
        "INSERT INTO audit_epochs (epoch, leaf_idx, key_id, public_key) VALUES (1, ?1, ?2, ?3)",
        params![
            leaf as i64,
            attacker.public_key().key_id(),
            &attacker.public_key().as_bytes()[..]
        ],
    )
    .unwrap();
    leaf
}

fn insert_head(conn: &Connection, signer: &AgentKeypair, seq: u64, time_ms: i64) {
    let size = AuditLog::tree_size(conn).unwrap();
    let root = AuditLog::root(conn, size).unwrap();
    let h = SignedTreeHead::sign(signer, seq, size, root, time_ms);
    conn.execute(
        "INSERT INTO audit_heads VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            seq as i64,
            size as i64,
            &root[..],
            time_ms,
            h.key_id,
            &h.public_key.as_bytes()[..],
            &h.signature.to_bytes()[..]
        ],
    )
    .unwrap();
}

#[test]
fn an_inserted_signing_key_is_never_signed_over_nor_trusted() {
    for forged_cert in [None, Some(key(66).sign(b"anything").to_bytes())] {
        let (conn, a) = log_with(4);
        let x = key(66);
        let leaf = insert_epoch(&conn, &x, &a, forged_cert);

        // The rightful key does not sign a hand-over it did not create...
        assert!(matches!(
            AuditLog::sign_head(&conn, &a, 3_000),
            Err(AuditError::KeyNotCurrent { .. }) | Err(AuditError::KeyChainBroken { .. })
        ));
        // ...nor does the inserted key get to sign, nor can it be certified by rotation.
        assert!(matches!(
            AuditLog::sign_head(&conn, &x, 3_000),
            Err(AuditError::KeyChainBroken { .. })
        ));
        assert!(AuditLog::rotate_key(&conn, &a, &key(3).public_key(), 3_000).is_err());
        assert_eq!(AuditLog::heads(&conn).unwrap().len(), 1);

        // The attacker signs heads with its own key: verification pinned to the rightful key
        // names the inserted epoch.
        AuditLog::append(&conn, &Event::new("memory.store", 9_001)).unwrap();
        insert_head(&conn, &x, 2, 9_002);
        let r = AuditLog::verify(&conn, &pinned(&a)).unwrap();
        assert!(
            matches!(r.discrepancy, Some(Discrepancy::KeyEpochInvalid { index, .. }) if index == leaf),
            "{:?}",
            r.discrepancy
        );
    }
}

#[test]
fn an_inserted_key_without_any_head_is_reported() {
    let (conn, a) = log_with(3);
    let leaf = insert_epoch(&conn, &key(66), &a, None);
    let r = AuditLog::verify(&conn, &pinned(&a)).unwrap();
    assert!(
        matches!(r.discrepancy, Some(Discrepancy::KeyEpochInvalid { index, .. }) if index == leaf),
        "{:?}",
        r.discrepancy
    );
}

#[test]
fn a_certified_rotation_verifies_and_the_new_key_signs_at_once() {
    let (conn, a) = log_with(3);
    let b = key(2);
    let handover = AuditLog::rotate_key(&conn, &a, &b.public_key(), 3_000).unwrap();
    assert_eq!(handover.key_id, a.public_key().key_id());
    let epochs = AuditLog::key_epochs(&conn).unwrap();
    assert!(epochs[1].certificate.is_some());
    AuditLog::sign_head(&conn, &b, 3_001).unwrap();
    for opts in [pinned(&a), pinned(&b)] {
        let r = AuditLog::verify(&conn, &opts).unwrap();
        assert!(r.is_ok(), "{:?}", r.discrepancy);
    }
}

#[test]
fn a_legacy_uncertified_handover_with_its_old_key_head_still_verifies() {
    // Logs written before certificates: the old key signed the hand-over head itself.
    let (conn, a) = log_with(3);
    let b = key(2);
    insert_epoch(&conn, &b, &a, None);
    insert_head(&conn, &a, 2, 3_000);
    let r = AuditLog::verify(&conn, &pinned(&a)).unwrap();
    assert!(r.is_ok(), "{:?}", r.discrepancy);
    AuditLog::append(&conn, &Event::new("memory.store", 3_001)).unwrap();
    AuditLog::sign_head(&conn, &b, 3_002).unwrap();
    let r = AuditLog::verify(&conn, &pinned(&a)).unwrap();
    assert!(r.is_ok(), "{:?}", r.discrepancy);
    assert_eq!(r.heads_verified, 3);
}

#[test]
fn a_witness_line_torn_by_a_crash_is_ignored_and_replaced() {
    use vault_audit::{FileWitness, Witness};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.jsonl");
    let witness = FileWitness::new(&path);
    let (conn, a) = log_with(3);
    let h1 = AuditLog::latest_head(&conn).unwrap().unwrap();
    witness.publish(&h1, None).unwrap();
    // A crash in the middle of the next append leaves half a line.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"version\":1,\"head\":{\"seq\"");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(witness.latest().unwrap(), Some(h1.clone()));
    AuditLog::append(&conn, &Event::new("memory.store", 5)).unwrap();
    let h2 = AuditLog::sign_head(&conn, &a, 6_000).unwrap();
    let c = AuditLog::consistency_proof(&conn, h1.tree_size, h2.tree_size).unwrap();
    witness.publish(&h2, Some(&c)).unwrap();
    assert_eq!(witness.records().unwrap().len(), 2);
    assert_eq!(witness.latest().unwrap(), Some(h2));
    // An edited complete line is still corruption.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"version\":1", "\"version\":2", 1)).unwrap();
    assert!(witness.records().is_err());
}
