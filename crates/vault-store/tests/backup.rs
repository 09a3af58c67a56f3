//! Backups: full and incremental chains, both protections, level-5 exclusion, corruption and
//! truncation rejected before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use vault_store::backup::{BackupKey, BackupOptions, BackupProtection};
use vault_store::{
    DenyReason, GateError, GateRequest, Gates, KeySource, MemoryInput, Presence, RecallRequest,
    SecretBytes, Vault, VaultError,
};

fn pass_opts(incremental: bool) -> BackupOptions {
    BackupOptions {
        protection: BackupProtection::Passphrase {
            passphrase: SecretBytes::from("backup pw".to_string()),
            params: fast(),
        },
        incremental,
        include_black: false,
    }
}

fn bkey() -> BackupKey {
    BackupKey::Passphrase(SecretBytes::from("backup pw".to_string()))
}

struct Yes;
impl Presence for Yes {
    fn confirm(&self, _: &GateRequest) -> Result<(), GateError> {
        Ok(())
    }
}

#[test]
fn full_and_incremental_chain_restores_everything() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let a = s.store(MemoryInput::text("alpha memory").tag("x")).unwrap();
    let gone = s.store(MemoryInput::text("to be tombstoned")).unwrap();
    let black = s
        .store(MemoryInput::text("black memory").classification(5))
        .unwrap();
    s.tombstone(gone, "no").unwrap();
    let full = f.dir.path().join("full.bak");
    let r1 = s.backup(&full, &pass_opts(false)).unwrap();
    assert_eq!(r1.excluded_black, 1);
    let b = s.store(MemoryInput::text("bravo after full")).unwrap();
    s.tombstone(a, "later").unwrap();
    let inc = f.dir.path().join("inc.bak");
    let r2 = s.backup(&inc, &pass_opts(true)).unwrap();
    assert_eq!(r2.parent_hash, Some(r1.file_hash));
    assert!(
        r2.memories >= 2 && r2.memories < 4,
        "only changed memories: {}",
        r2.memories
    );
    assert!(
        event_kinds(&v)
            .iter()
            .filter(|k| *k == "vault.backup")
            .count()
            == 2
    );
    drop(s);

    let target = f.dir.path().join("restored").join("vault.db");
    let rep = Vault::restore(&target, &[&full, &inc], &bkey()).unwrap();
    assert_eq!(rep.vault_id, v.id());
    let rv = Vault::open(&target).unwrap();
    let mut rs = rv.unlock("agent", pw()).unwrap();
    assert_eq!(
        rs.recall(b, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "bravo after full"
    );
    assert_eq!(
        rs.recall(a, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Tombstoned)
    );
    assert_eq!(
        rs.recall(gone, RecallRequest::new(""))
            .unwrap_err()
            .deny_reason(),
        Some(&DenyReason::Tombstoned)
    );
    assert!(matches!(
        rs.recall(black, RecallRequest::new("j")),
        Err(VaultError::MemoryNotFound(_))
    ));
    assert_eq!(
        rs.search(&vault_store::SearchQuery::new("bravo"))
            .unwrap()
            .len(),
        1
    );
    let excl: i64 = rv
        .connection()
        .query_row("SELECT count(*) FROM backup_exclusions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(excl, 1, "exclusions restored");
    let report = rs.verify(true, &[]).unwrap();
    assert!(report.is_ok(), "{:?}", report.first_problem);
    let kinds = event_kinds(&rv);
    assert!(
        kinds.contains(&"memory.tombstone".to_string()) && kinds.last().unwrap() == "memory.search"
    );
    assert!(kinds.contains(&"vault.restore".to_string()));

    // The full backup alone restores the earlier state; a chain out of order is refused.
    let t2 = f.dir.path().join("r2.db");
    Vault::restore(&t2, &[&full], &bkey()).unwrap();
    let e = Vault::restore(&f.dir.path().join("r3.db"), &[&inc], &bkey()).unwrap_err();
    assert!(
        e.to_string().contains("must start with a full backup"),
        "{e}"
    );
    assert!(matches!(
        Vault::restore(&target, &[&full], &bkey()),
        Err(VaultError::VaultExists(_))
    ));
    assert!(
        Vault::restore(
            &f.dir.path().join("r4.db"),
            &[&full],
            &BackupKey::Passphrase(SecretBytes::from("no".to_string()))
        )
        .is_err()
    );
}

#[test]
fn profile_key_backups_restore_with_the_profile_passphrase() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("keyed backup")).unwrap();
    let out = f.dir.path().join("p.bak");
    s.backup(
        &out,
        &BackupOptions {
            protection: BackupProtection::ProfileKey,
            incremental: false,
            include_black: false,
        },
    )
    .unwrap();
    let t = f.dir.path().join("p.db");
    assert!(
        Vault::restore(
            &t,
            &[&out],
            &BackupKey::Profile(KeySource::passphrase("wrong"))
        )
        .is_err()
    );
    assert!(Vault::restore(&t, &[&out], &bkey()).is_err());
    assert!(!t.exists());
    Vault::restore(&t, &[&out], &BackupKey::Profile(pw())).unwrap();
    let rv = Vault::open(&t).unwrap();
    assert_eq!(
        rv.unlock("agent", pw())
            .unwrap()
            .recall(id, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "keyed backup"
    );
}

#[test]
fn black_memories_need_presence_to_be_included() {
    let f = Fixture::new();
    drop(f.with_profile());
    let v = f.open();
    let mut s = v.unlock("agent", pw()).unwrap();
    let black = s
        .store(MemoryInput::text("black").classification(5))
        .unwrap();
    let mut o = pass_opts(false);
    o.include_black = true;
    let e = s.backup(&f.dir.path().join("b.bak"), &o).unwrap_err();
    assert_eq!(e.deny_reason(), Some(&DenyReason::PresenceUnavailable));
    assert!(!f.dir.path().join("b.bak").exists());
    assert_eq!(last_event(&v).kind, "vault.backup.denied");
    drop(s);
    drop(v);
    let v = f.open_with(Gates::new().presence(Arc::new(Yes)));
    let mut s = v.unlock("agent", pw()).unwrap();
    let r = s.backup(&f.dir.path().join("b.bak"), &o).unwrap();
    assert_eq!(r.excluded_black, 0);
    let t = f.dir.path().join("b.db");
    Vault::restore(&t, &[f.dir.path().join("b.bak")], &bkey()).unwrap();
    let rv = Vault::open(&t).unwrap();
    let n: i64 = rv
        .connection()
        .query_row(
            "SELECT count(*) FROM memories WHERE memory_id = ?1",
            [&black.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn corrupted_or_truncated_backups_change_nothing() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store_batch(
        (0..50)
            .map(|i| MemoryInput::text(format!("memory {i}")))
            .collect(),
    )
    .unwrap();
    let out = f.dir.path().join("c.bak");
    s.backup(&out, &pass_opts(false)).unwrap();
    drop(s);
    let good = std::fs::read(&out).unwrap();
    let target = f.dir.path().join("t.db");
    let bad = f.dir.path().join("bad.bak");
    let step = (good.len() / 60).max(1);
    for i in (0..good.len()).step_by(step) {
        let mut b = good.clone();
        b[i] ^= 0x01;
        std::fs::write(&bad, &b).unwrap();
        let e = Vault::restore(&target, &[&bad], &bkey()).unwrap_err();
        assert!(
            matches!(
                e,
                VaultError::Backup(_) | VaultError::Crypto(_) | VaultError::Corrupt { .. }
            ),
            "byte {i}: {e}"
        );
        assert!(!target.exists(), "byte {i}");
    }
    for cut in [0, 5, 14, 40, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad, &good[..cut]).unwrap();
        let e = Vault::restore(&target, &[&bad], &bkey()).unwrap_err();
        assert!(
            matches!(e, VaultError::Backup(_) | VaultError::Corrupt { .. }),
            "cut {cut}: {e}"
        );
        assert!(!target.exists());
    }
    let mut b = good.clone();
    b.push(0);
    std::fs::write(&bad, &b).unwrap();
    assert!(
        Vault::restore(&target, &[&bad], &bkey())
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
    // An existing vault at the target is untouched too.
    let before = std::fs::read(&f.path).unwrap();
    std::fs::write(&bad, &good[..good.len() - 3]).unwrap();
    assert!(Vault::restore(&f.path, &[&bad], &bkey()).is_err());
    assert_eq!(std::fs::read(&f.path).unwrap(), before);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("restore"))
        .collect();
    assert!(leftovers.is_empty());
    Vault::restore(&target, &[&out], &bkey()).unwrap();
}

/// Issue 11, point 7: a memory of the largest size (16 MiB, far over one chunk) is split
/// across chunks, restores byte for byte, and every chunk stays within the reader's limit.
#[test]
fn a_16_mib_memory_round_trips_through_a_backup() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    // Incompressible, distinct bytes (a pattern would hide a chunk mix-up).
    let mut big = Vec::with_capacity(vault_store::record::MAX_CONTENT);
    let mut x: u64 = 0x1234_5678;
    while big.len() < vault_store::record::MAX_CONTENT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    big.truncate(vault_store::record::MAX_CONTENT);
    let id = s.store(MemoryInput::bytes(big.clone())).unwrap();
    let small = s.store(MemoryInput::text("small one")).unwrap();
    let out = f.dir.path().join("big.bak");
    let r = s.backup(&out, &pass_opts(false)).unwrap();
    assert_eq!(r.memories, 2);
    drop(s);
    // Every chunk envelope is at most a chunk plus the envelope overhead.
    let bytes = std::fs::read(&out).unwrap();
    let (_, mut at) = vault_store::backup::parse_preamble(&bytes).unwrap();
    let mut chunks = 0;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            len <= vault_store::backup::CHUNK + 64,
            "chunk of {len} bytes"
        );
        at += 4 + len;
        chunks += 1;
    }
    assert!(chunks >= 16, "{chunks} chunks");
    let target = f.dir.path().join("restored").join("vault.db");
    Vault::restore(&target, &[&out], &bkey()).unwrap();
    let restored = Vault::open(&target).unwrap();
    let mut s = restored.unlock("agent", pw()).unwrap();
    let m = s.recall(id, RecallRequest::new("check")).unwrap();
    assert!(m.content.expose() == big.as_slice(), "content differs");
    assert_eq!(
        s.recall(small, RecallRequest::new("check"))
            .unwrap()
            .text()
            .unwrap(),
        "small one"
    );
    assert!(s.verify(true, &[]).unwrap().is_ok());
}
