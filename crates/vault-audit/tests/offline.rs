//! The offline pieces: export and its verifier, existence proofs (also against later heads via
//! consistency proofs), and the file witness with fork and inconsistency detection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use aim_crypto::AgentKeypair;
use rusqlite::Connection;
use vault_audit::{
    AuditError, AuditLog, COMMITMENT_FIELD, Discrepancy, Event, ExistenceProof, FileWitness,
    Opening, PublishedHead, VerifyOptions, Witness, commitment, create_schema, verify_export,
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

fn new_log(k: &AgentKeypair) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    create_schema(&conn).unwrap();
    AuditLog::announce_key(&conn, &k.public_key(), None, 1).unwrap();
    conn
}

fn add(conn: &Connection, from: i64, to: i64) {
    for i in from..to {
        let e = Event::new("memory.search", i).with("query_tokens", i);
        AuditLog::append(conn, &e).unwrap();
    }
}

fn export(conn: &Connection) -> String {
    let mut out = Vec::new();
    AuditLog::export(conn, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn export_verifies_offline_and_tampering_is_found() {
    let k = key(1);
    let conn = new_log(&k);
    add(&conn, 0, 10);
    AuditLog::sign_head(&conn, &k, 100).unwrap();
    add(&conn, 10, 20);
    AuditLog::sign_head(&conn, &k, 200).unwrap();
    add(&conn, 20, 23);
    let text = export(&conn);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 2 + 24 + 1);
    assert!(lines[0].starts_with(r#"{"format":"aim-vault-audit-log","version":1"#));

    let ok = verify_export(text.as_bytes(), &pinned(&k)).unwrap();
    assert!(ok.is_ok(), "{:?}", ok.discrepancy);
    assert_eq!(ok.heads_verified, 2);
    assert_eq!(ok.unsigned_tail(), 3);

    // Wrong key.
    let bad = verify_export(text.as_bytes(), &pinned(&key(2))).unwrap();
    assert!(matches!(
        bad.discrepancy,
        Some(Discrepancy::HeadKeyUntrusted { head_seq: 1, .. })
    ));

    // A leaf replaced by another valid event: the first head covering it names it.
    let other = Event::new("memory.search", 5).with("query_tokens", 999i64);
    let b64 = aim_crypto::b64::encode(&other.encode().unwrap());
    let mut tampered: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    tampered[3 + 6] = format!(r#"{{"leaf":6,"data":"{b64}"}}"#);
    let r = verify_export(tampered.join("\n").as_bytes(), &pinned(&k)).unwrap();
    assert_eq!(
        r.discrepancy,
        Some(Discrepancy::HeadRootMismatch {
            head_seq: 1,
            tree_size: 11
        })
    );

    // Two leaves swapped.
    let mut swapped: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let a = swapped[3 + 2].replace(r#""leaf":2"#, r#""leaf":3"#);
    let b = swapped[3 + 3].replace(r#""leaf":3"#, r#""leaf":2"#);
    swapped[3 + 2] = b;
    swapped[3 + 3] = a;
    let r = verify_export(swapped.join("\n").as_bytes(), &pinned(&k)).unwrap();
    assert_eq!(
        r.discrepancy,
        Some(Discrepancy::HeadRootMismatch {
            head_seq: 1,
            tree_size: 11
        })
    );

    // A missing leaf line (numbering gap) is located.
    let mut gap: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    gap.remove(3 + 4);
    let fixed = gap
        .join("\n")
        .replace(r#""tree_size":24"#, r#""tree_size":23"#);
    let fixed = fixed.replace(r#"{"end":24}"#, r#"{"end":23}"#);
    let r = verify_export(fixed.as_bytes(), &pinned(&k)).unwrap();
    assert_eq!(r.discrepancy, Some(Discrepancy::LeafMissing { index: 4 }));

    // A flipped signature character.
    let sig_at = lines[1].find(r#""signature":""#).unwrap() + 14;
    let mut flipped = lines[1].to_string();
    let c = if &flipped[sig_at..sig_at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    flipped.replace_range(sig_at..sig_at + 1, c);
    let mut t: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    t[1] = flipped;
    let r = verify_export(t.join("\n").as_bytes(), &pinned(&k)).unwrap();
    assert_eq!(
        r.discrepancy,
        Some(Discrepancy::HeadSignatureInvalid { head_seq: 1 })
    );

    // Format errors are errors, not findings.
    let truncated = lines[..lines.len() - 1].join("\n");
    assert!(matches!(
        verify_export(truncated.as_bytes(), &pinned(&k)),
        Err(AuditError::ExportMalformed { .. })
    ));
    let v2 = text.replacen(r#""version":1"#, r#""version":2"#, 1);
    assert!(matches!(
        verify_export(v2.as_bytes(), &pinned(&k)),
        Err(AuditError::ExportMalformed { line: 1, .. })
    ));
    let extra = format!("{text}{{\"end\":24}}\n");
    assert!(verify_export(extra.as_bytes(), &pinned(&k)).is_err());
}

#[test]
fn existence_proofs_check_standalone_and_against_later_heads() {
    let k = key(1);
    let conn = new_log(&k);
    let r = [42u8; 32];
    let content = b"the launch code is in the blue folder";
    let store = Event::new("memory.store", 10)
        .with("memory_id", "m1")
        .with(COMMITMENT_FIELD, commitment(&r, content));
    let idx = AuditLog::append(&conn, &store).unwrap();
    add(&conn, 0, 3);
    assert!(matches!(
        AuditLog::existence_proof(&conn, idx, None),
        Err(AuditError::NotYetSigned { .. })
    ));
    AuditLog::sign_head(&conn, &k, 100).unwrap();
    let opening = Opening {
        r: r.to_vec(),
        content: content.to_vec(),
    };
    let proof = AuditLog::existence_proof(&conn, idx, Some(opening)).unwrap();

    // Self-contained: JSON out and back, then checked with only the public key.
    let json = serde_json::to_string(&proof).unwrap();
    let back: ExistenceProof = serde_json::from_str(&json).unwrap();
    assert_eq!(back.check(&k.public_key()).unwrap(), store);
    assert!(back.check(&key(2).public_key()).is_err());

    // Any change breaks it.
    let mut p = back.clone();
    p.event[5] ^= 1;
    assert!(p.check(&k.public_key()).is_err());
    let mut p = back.clone();
    p.inclusion.path[0][0] ^= 1;
    assert!(p.check(&k.public_key()).is_err());
    let mut p = back.clone();
    p.inclusion.index += 1;
    assert!(p.check(&k.public_key()).is_err());
    let mut p = back.clone();
    p.head.root[0] ^= 1;
    assert!(p.check(&k.public_key()).is_err());
    let mut p = back.clone();
    if let Some(o) = p.opening.as_mut() {
        o.content.push(b'!');
    }
    assert!(p.check(&k.public_key()).is_err());
    let mut p = back.clone();
    p.opening = None;
    p.check(&k.public_key()).unwrap();

    // The log grows; the old proof still verifies against a later head through consistency.
    add(&conn, 3, 40);
    let later = AuditLog::sign_head(&conn, &k, 200).unwrap();
    let cons = AuditLog::consistency_proof(&conn, proof.head.tree_size, later.tree_size).unwrap();
    proof
        .check_against(&k.public_key(), &later, &k.public_key(), &cons)
        .unwrap();
    let mut bad = cons.clone();
    bad.path[0][3] ^= 1;
    assert!(
        proof
            .check_against(&k.public_key(), &later, &k.public_key(), &bad)
            .is_err()
    );
    // Fresh inclusion proofs at the later size also verify against its root.
    let fresh = AuditLog::inclusion_proof(&conn, idx, later.tree_size).unwrap();
    vault_audit::verify_inclusion(
        &vault_audit::hash::leaf_hash(&store.encode().unwrap()),
        &fresh,
        &later.root,
    )
    .unwrap();
}

#[test]
fn the_file_witness_accepts_extensions_and_rejects_forks_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let witness = FileWitness::new(dir.path().join("heads.jsonl"));
    let k = key(1);
    let conn = new_log(&k);
    add(&conn, 0, 5);
    let h1 = AuditLog::sign_head(&conn, &k, 10).unwrap();
    let r1 = witness.publish(&h1, None).unwrap();
    assert!(!r1.duplicate);
    assert!(witness.publish(&h1, None).unwrap().duplicate);

    add(&conn, 5, 12);
    let h2 = AuditLog::sign_head(&conn, &k, 20).unwrap();
    // Extension without a proof is refused; with the proof it is accepted.
    assert!(matches!(
        witness.publish(&h2, None),
        Err(AuditError::WitnessInconsistent { .. })
    ));
    let c12 = AuditLog::consistency_proof(&conn, h1.tree_size, h2.tree_size).unwrap();
    witness.publish(&h2, Some(&c12)).unwrap();
    assert_eq!(witness.latest().unwrap(), Some(h2.clone()));

    // A fork: the same key signs another history that diverges at event 7.
    let forked = new_log(&k);
    add(&forked, 0, 7);
    AuditLog::append(
        &forked,
        &Event::new("memory.tombstone", 7).with("memory_id", "x"),
    )
    .unwrap();
    add(&forked, 8, 12);
    let f2 = AuditLog::sign_head(&forked, &k, 21).unwrap();
    assert_eq!(f2.tree_size, h2.tree_size);
    match witness.publish(&f2, None) {
        Err(AuditError::Fork {
            tree_size,
            held_root,
            presented_root,
        }) => {
            assert_eq!(tree_size, h2.tree_size);
            assert_eq!(held_root, h2.root);
            assert_eq!(presented_root, f2.root);
        }
        other => panic!("fork not detected: {other:?}"),
    }
    // The forked log grows; its honest consistency proof cannot connect it to what the
    // witness holds.
    add(&forked, 12, 20);
    let f3 = AuditLog::sign_head(&forked, &k, 30).unwrap();
    let fc = AuditLog::consistency_proof(&forked, h2.tree_size, f3.tree_size).unwrap();
    assert!(matches!(
        witness.publish(&f3, Some(&fc)),
        Err(AuditError::WitnessInconsistent { .. })
    ));
    // An older head than held is refused; a forged signature too.
    let c = AuditLog::consistency_proof(&conn, 3, h2.tree_size).unwrap();
    let mut old = h1.clone();
    old.tree_size = 3;
    assert!(witness.publish(&old, Some(&c)).is_err());
    let mut forged = h2.clone();
    forged.time_ms += 1;
    assert!(matches!(
        witness.publish(&forged, None),
        Err(AuditError::HeadInvalid(_))
    ));
    assert_eq!(witness.records().unwrap().len(), 2);

    // The file itself is checked on read: an edited line is reported with its number.
    let path = dir.path().join("heads.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(&vault_audit::hash::to_hex(&h2.root), &"0".repeat(64), 1);
    std::fs::write(&path, edited).unwrap();
    assert!(matches!(
        witness.records(),
        Err(AuditError::WitnessCorrupt { line: 2, .. })
    ));
}

#[test]
fn the_published_head_json_is_exactly_the_documented_shape() {
    let k = key(1);
    let conn = new_log(&k);
    add(&conn, 0, 3);
    let h1 = AuditLog::sign_head(&conn, &k, 1_700_000_000_000).unwrap();
    add(&conn, 3, 6);
    let h2 = AuditLog::sign_head(&conn, &k, 1_700_000_000_500).unwrap();
    let record = PublishedHead {
        version: 1,
        head: h2.clone(),
        consistency: Some(AuditLog::consistency_proof(&conn, h1.tree_size, h2.tree_size).unwrap()),
    };
    let v: serde_json::Value = serde_json::to_value(&record).unwrap();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["consistency", "head", "version"]);
    let mut head_keys: Vec<&str> = obj["head"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    head_keys.sort_unstable();
    assert_eq!(
        head_keys,
        [
            "key_id",
            "public_key",
            "root_hash",
            "seq",
            "signature",
            "timestamp_ms",
            "tree_size"
        ]
    );
    assert_eq!(obj["head"]["tree_size"], 7);
    assert_eq!(obj["head"]["timestamp_ms"], 1_700_000_000_500i64);
    assert_eq!(obj["head"]["public_key"], k.public_key().to_b64());
    assert_eq!(obj["consistency"]["old_size"], 4);
    assert_eq!(obj["consistency"]["new_size"], 7);
    assert!(
        obj["consistency"]["path"].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    // Judge accepts it after h1, as the server must.
    vault_audit::witness::judge(std::slice::from_ref(&h1), &record).unwrap();
    let back: PublishedHead = serde_json::from_value(v).unwrap();
    assert_eq!(back, record);
}
