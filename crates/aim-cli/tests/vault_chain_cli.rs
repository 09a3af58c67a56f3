//! Issue 11, points 1, 2 and 4 through `aim vault`, attacking the real vault file: store
//! commitments hide their content; a head-signing key INSERTed into the file takes nothing
//! over; a removed log tail and a file replaced by an older copy fail `aim vault verify` (and
//! release nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod support;

use rusqlite::{Connection, params};
use support::{FAST_KDF, ok, refused, vault as aim};
use vault_audit::hash::{Hash, leaf_hash, node_hash};
use vault_audit::{AuditLog, Event, FieldValue};

const PW: &str = "correct horse battery\n";

fn setup(dir: &Path) -> std::path::PathBuf {
    let v = dir.join("vault.db");
    ok(&aim(&v, &["init"], ""));
    ok(&aim(
        &v,
        &[
            "profile",
            "create",
            "agent",
            "--kdf-params",
            FAST_KDF,
            "--passphrase-fd",
            "0",
        ],
        PW,
    ));
    v
}

fn store(v: &Path, dir: &Path, content: &str, level: &str) -> String {
    let f = dir.join("content.txt");
    std::fs::write(&f, content).unwrap();
    ok(&aim(
        v,
        &[
            "store",
            "--file",
            f.to_str().unwrap(),
            "-c",
            level,
            "--passphrase-fd",
            "0",
        ],
        PW,
    ))
    .trim()
    .to_owned()
}

fn leaves(v: &Path) -> Vec<(Vec<u8>, Event)> {
    let c = Connection::open(v).unwrap();
    let n = AuditLog::tree_size(&c).unwrap();
    (0..n)
        .map(|i| {
            let b = AuditLog::leaf_bytes(&c, i).unwrap();
            (b.clone(), Event::decode(&b).unwrap())
        })
        .collect()
}

#[test]
fn identical_content_stored_twice_through_the_cli_leaves_no_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let v = setup(dir.path());
    let content = "zebra 7781";
    for level in ["1", "5", "5"] {
        store(&v, dir.path(), content, level);
    }
    let stores: Vec<_> = leaves(&v)
        .into_iter()
        .filter(|(_, e)| e.kind == "memory.store")
        .collect();
    assert_eq!(stores.len(), 3);
    let unkeyed = [
        aim_crypto::hash::sha256(content.as_bytes()),
        vault_audit::commitment(&[0; 32], content.as_bytes()),
    ];
    let mut seen = Vec::new();
    for (bytes, ev) in &stores {
        let c = ev
            .get(vault_audit::COMMITMENT_FIELD)
            .and_then(FieldValue::as_bytes)
            .unwrap()
            .to_vec();
        assert!(!seen.contains(&c));
        for h in &unkeyed {
            assert!(!bytes.windows(32).any(|w| w == h), "unkeyed hash in a leaf");
        }
        seen.push(c);
    }
    let o = aim(&v, &["verify", "--deep", "--passphrase-fd", "0"], PW);
    assert!(ok(&o).contains("ok"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("unsalted"));
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
fn a_signing_key_inserted_into_the_file_is_refused_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let v = setup(dir.path());
    store(&v, dir.path(), "first", "1");
    let heads_before = {
        let c = Connection::open(&v).unwrap();
        AuditLog::heads(&c).unwrap().len()
    };
    // The attack: plain INSERTs of an epoch leaf (with its nodes) and an audit_epochs row.
    let c = Connection::open(&v).unwrap();
    let current = AuditLog::key_epochs(&c).unwrap()[0].key_id.clone();
    let attacker = aim_crypto::AgentKeypair::generate().unwrap();
    let ev = Event::new("audit.key_epoch", 1)
        .with("epoch", 1i64)
        .with("key_id", attacker.public_key().key_id())
        .with("public_key", *attacker.public_key().as_bytes())
        .with("previous_key_id", current.as_str());
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
    drop(c);

    // The next command's session does not sign the hand-over; it says why.
    let f = dir.path().join("c2.txt");
    std::fs::write(&f, "second").unwrap();
    refused(
        &aim(
            &v,
            &[
                "store",
                "--file",
                f.to_str().unwrap(),
                "--passphrase-fd",
                "0",
            ],
            PW,
        ),
        "cannot sign an audit tree head",
    );
    let c = Connection::open(&v).unwrap();
    assert_eq!(AuditLog::heads(&c).unwrap().len(), heads_before);
    drop(c);
    refused(
        &aim(&v, &["verify", "--passphrase-fd", "0"], PW),
        &format!("key epoch event {leaf} is invalid"),
    );
}

/// Removes leaves from `n` on, their nodes and the heads covering them.
fn truncate_log(v: &Path, n: u64) {
    let c = Connection::open(v).unwrap();
    for t in ["leaves", "nodes", "heads"] {
        c.execute_batch(&format!("DROP TRIGGER IF EXISTS audit_{t}_no_delete;"))
            .unwrap();
    }
    c.execute("DELETE FROM audit_leaves WHERE idx >= ?1", [n as i64])
        .unwrap();
    c.execute(
        "DELETE FROM audit_nodes WHERE pos >= ?1",
        [(n - u64::from(n.count_ones())) as i64],
    )
    .unwrap();
    c.execute("DELETE FROM audit_heads WHERE tree_size > ?1", [n as i64])
        .unwrap();
}

fn witness_of(v: &Path) -> std::path::PathBuf {
    vault_store::default_witness_path(v)
}

#[test]
fn a_removed_log_tail_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let v = setup(dir.path());
    let id = store(&v, dir.path(), "forget me", "1");
    let cut = leaves(&v).len() as u64;
    ok(&aim(&v, &["tombstone", &id, "--passphrase-fd", "0"], PW));
    let saved = dir.path().join("head.json");
    std::fs::write(&saved, ok(&aim(&v, &["head", "--passphrase-fd", "0"], PW))).unwrap();
    assert!(witness_of(&v).exists());
    truncate_log(&v, cut);

    refused(
        &aim(&v, &["verify", "--passphrase-fd", "0"], PW),
        "events were removed",
    );
    refused(
        &aim(&v, &["recall", &id, "--passphrase-fd", "0"], PW),
        "does not extend the head",
    );
    // Someone who can also delete the witness file: a head kept elsewhere still catches it.
    std::fs::remove_file(witness_of(&v)).unwrap();
    let o = aim(
        &v,
        &[
            "verify",
            "--head",
            saved.to_str().unwrap(),
            "--passphrase-fd",
            "0",
        ],
        PW,
    );
    refused(&o, "head file");
}

#[test]
fn an_older_copy_of_the_file_fails_verify_and_releases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v = setup(dir.path());
    let id = store(&v, dir.path(), "erase me", "1");
    let old = dir.path().join("old.db");
    std::fs::copy(&v, &old).unwrap();
    ok(&aim(&v, &["tombstone", &id, "--passphrase-fd", "0"], PW));
    ok(&aim(&v, &["lockdown", "enter", "--reason", "incident"], ""));
    refused(
        &aim(&v, &["recall", &id, "--passphrase-fd", "0"], PW),
        "lockdown",
    );
    // The older copy: the memory is back, the lockdown gone.
    std::fs::copy(&old, &v).unwrap();
    let o = aim(&v, &["verify", "--passphrase-fd", "0"], PW);
    refused(&o, "older copy");
    let o = aim(&v, &["recall", &id, "--passphrase-fd", "0"], PW);
    refused(&o, "does not extend the head");
    assert!(o.stdout.is_empty());
    // A pinned key that is not this log's signing key is refused by verify.
    let other = aim_crypto::AgentKeypair::generate()
        .unwrap()
        .public_key()
        .to_b64();
    std::fs::remove_file(witness_of(&v)).unwrap();
    refused(
        &aim(
            &v,
            &["verify", "--pubkey", &other, "--passphrase-fd", "0"],
            PW,
        ),
        "not a head-signing key of this log",
    );
}
