//! Storage and keys: file modes, schema, profiles, key slots, sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use vault_store::{
    Enrollment, KeySource, MemoryInput, RecallRequest, SecretBytes, Vault, VaultError,
};

#[test]
fn creates_private_file_and_directory_with_wal_and_fk() {
    let f = Fixture::new();
    let v = f.with_profile();
    let dir_mode = std::fs::metadata(f.path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let file_mode = std::fs::metadata(&f.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert_eq!(file_mode, 0o600);
    let wal = f.path.with_extension("db-wal");
    assert!(wal.exists());
    assert_eq!(
        std::fs::metadata(&wal).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let c = v.connection();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    let version: i64 = c
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (mode.as_str(), fk, sync, version),
        ("wal", 1, 2, vault_store::db::SCHEMA_VERSION)
    );
}

#[test]
fn refuses_foreign_sqlite_files_and_newer_schemas() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(&f.path).unwrap();
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(c);
    assert!(matches!(Vault::open(&f.path), Err(VaultError::Schema(_))));
    let f = Fixture::new();
    drop(f.with_profile());
    let c = rusqlite::Connection::open(&f.path).unwrap();
    c.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(c);
    let e = Vault::open(&f.path).unwrap_err();
    assert!(e.to_string().contains("schema version 99"), "{e}");
    assert!(matches!(
        Vault::options().open_existing(f.dir.path().join("nope.db")),
        Err(VaultError::NoVault(_))
    ));
    assert!(matches!(
        Vault::options().create(&f.path),
        Err(VaultError::VaultExists(_))
    ));
}

#[test]
fn reopening_is_idempotent_and_keeps_data() {
    let f = Fixture::new();
    let id = {
        let v = f.with_profile();
        let mut s = v.unlock("agent", pw()).unwrap();
        s.store(MemoryInput::text("persisted")).unwrap()
    };
    let v = f.open();
    let mut s = v.unlock("agent", pw()).unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new("x"))
            .unwrap()
            .text()
            .unwrap(),
        "persisted"
    );
}

#[test]
fn wrong_passphrase_is_typed_and_audited() {
    let f = Fixture::new();
    let v = f.with_profile();
    let e = v
        .unlock("agent", KeySource::passphrase("wrong"))
        .unwrap_err();
    assert!(matches!(e, VaultError::WrongKey { .. }), "{e}");
    let ev = last_event(&v);
    assert_eq!(ev.kind, "profile.unlock.failed");
    assert_eq!(ev.get("reason").unwrap().as_str(), Some("wrong_key"));
    assert!(matches!(
        v.unlock("ghost", pw()),
        Err(VaultError::ProfileNotFound(_))
    ));
    assert!(matches!(
        v.unlock("agent", KeySource::key_file(f.dir.path().join("k"))),
        Err(VaultError::NoSuchSlot { .. })
    ));
    assert!(matches!(
        v.create_profile("agent", Enrollment::passphrase_with("x", fast())),
        Err(VaultError::ProfileExists(_))
    ));
    assert!(
        v.create_profile("../x", Enrollment::passphrase_with("x", fast()))
            .is_err()
    );
}

#[test]
fn key_file_profiles_and_missing_key_file() {
    let f = Fixture::new();
    let v = f.open();
    let kf = f.dir.path().join("agent.key");
    vault_store::create_key_file(&kf).unwrap();
    let mut s = v.create_profile("bot", Enrollment::key_file(&kf)).unwrap();
    let id = s.store(MemoryInput::text("k")).unwrap();
    drop(s);
    let mut s = v.unlock("bot", KeySource::key_file(&kf)).unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "k"
    );
    drop(s);
    let other = f.dir.path().join("other.key");
    vault_store::create_key_file(&other).unwrap();
    assert!(matches!(
        v.unlock("bot", KeySource::key_file(&other)),
        Err(VaultError::WrongKey { .. })
    ));
    std::fs::remove_file(&kf).unwrap();
    let e = v.unlock("bot", KeySource::key_file(&kf)).unwrap_err();
    assert!(matches!(e, VaultError::Io { .. }), "{e}");
    assert_eq!(
        last_event(&v).get("reason").unwrap().as_str(),
        Some("key_unreadable")
    );
}

#[test]
fn changing_the_passphrase_rewraps_without_touching_memories() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("keep me")).unwrap();
    let before: Vec<u8> = v
        .connection()
        .query_row("SELECT content FROM memories", [], |r| r.get(0))
        .unwrap();
    s.change_passphrase(SecretBytes::from("new pw".to_string()), None)
        .unwrap();
    drop(s);
    assert!(matches!(
        v.unlock("agent", pw()),
        Err(VaultError::WrongKey { .. })
    ));
    let mut s = v.unlock("agent", KeySource::passphrase("new pw")).unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "keep me"
    );
    let after: Vec<u8> = v
        .connection()
        .query_row("SELECT content FROM memories", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn slots_cannot_be_moved_between_profiles() {
    let f = Fixture::new();
    let v = f.open();
    v.create_profile("a", Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    v.create_profile("b", Enrollment::passphrase_with("other", fast()))
        .unwrap();
    // Copy a's slot over b's: the wrap is bound to the profile, so "pw" still does not open b.
    v.connection()
        .execute(
            "UPDATE key_slots SET wrapped_dk = (SELECT wrapped_dk FROM key_slots WHERE profile_id='a'),
             salt = (SELECT salt FROM key_slots WHERE profile_id='a') WHERE profile_id='b'",
            [],
        )
        .unwrap();
    assert!(matches!(
        v.unlock("b", pw()),
        Err(VaultError::WrongKey { .. })
    ));
}

#[test]
fn recovery_keys_unlock_until_removed() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("escrowed")).unwrap();
    let (key, fp) = s.create_recovery_key("esc-1").unwrap();
    assert_eq!(fp, vault_store::recovery_fingerprint(&key));
    drop(s);
    let mut r = v.unlock_with_recovery_key("agent", "esc-1", &key).unwrap();
    assert_eq!(
        r.recall(id, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "escrowed"
    );
    assert!(matches!(
        v.unlock_with_recovery_key(
            "agent",
            "esc-1",
            &vault_store::SecretKey::generate().unwrap()
        ),
        Err(VaultError::WrongKey { .. })
    ));
    assert!(r.remove_recovery_slot("esc-1").unwrap());
    drop(r);
    assert!(matches!(
        v.unlock_with_recovery_key("agent", "esc-1", &key),
        Err(VaultError::NoSuchSlot { .. })
    ));
}

#[test]
fn last_real_slot_cannot_be_removed() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    assert!(s.remove_key_slot("passphrase").is_err());
    let kf = f.dir.path().join("k");
    vault_store::create_key_file(&kf).unwrap();
    assert_eq!(
        s.add_key_slot(&Enrollment::key_file(&kf)).unwrap(),
        "keyfile"
    );
    s.remove_key_slot("passphrase").unwrap();
    drop(s);
    assert!(v.unlock("agent", pw()).is_err());
    v.unlock("agent", KeySource::key_file(&kf)).unwrap();
}

#[test]
fn nothing_readable_at_rest() {
    // Needles long enough that random ciphertext bytes never match them by chance (a two-byte
    // passphrase such as the fixture's "pw" does, now and then).
    const PASSPHRASE: &str = "quartz-walrus-passphrase";
    let f = Fixture::new();
    let v = f.open();
    v.create_profile("agent", Enrollment::passphrase_with(PASSPHRASE, fast()))
        .unwrap()
        .close()
        .unwrap();
    let mut s = v
        .unlock("agent", KeySource::passphrase(PASSPHRASE))
        .unwrap();
    s.store(
        MemoryInput::text("zebracorn launch code 4242")
            .metadata(br#"{"topic":"hippogriff"}"#.to_vec())
            .tag("unicornitag")
            .intent("intent-marmoset"),
    )
    .unwrap();
    s.search(&vault_store::SearchQuery::new("zebracorn"))
        .unwrap();
    drop(s);
    drop(v);
    let mut bytes = Vec::new();
    for ext in ["db", "db-wal"] {
        if let Ok(b) = std::fs::read(f.path.with_extension(ext)) {
            bytes.extend(b);
        }
    }
    for needle in [
        "zebracorn",
        "hippogriff",
        "unicornitag",
        "marmoset",
        "code 4242",
        PASSPHRASE,
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} found at rest"
        );
    }
}

#[test]
fn foreign_keys_are_enforced_at_commit() {
    let f = Fixture::new();
    let v = f.with_profile();
    let c = v.connection();
    c.execute_batch(
        "BEGIN IMMEDIATE; INSERT INTO memory_labels(kind, token, seq) VALUES (1, x'00', 424242);",
    )
    .unwrap();
    assert!(
        c.execute_batch("COMMIT").is_err(),
        "a dangling reference must not commit"
    );
    c.execute_batch("ROLLBACK").unwrap();
}

struct SoftToken(vault_store::SecretKey);

impl vault_store::ExternalKeySource for SoftToken {
    fn kind(&self) -> &str {
        "soft"
    }
    fn enroll(
        &self,
        profile: &str,
    ) -> Result<(vault_store::SecretKey, Vec<u8>), vault_store::KeySourceError> {
        let blob = format!("sealed-for-{profile}").into_bytes();
        Ok((self.0.clone(), blob))
    }
    fn recover(&self, blob: &[u8]) -> Result<vault_store::SecretKey, vault_store::KeySourceError> {
        if blob.starts_with(b"sealed-for-") {
            Ok(self.0.clone())
        } else {
            Err(vault_store::KeySourceError::BadBlob("not ours".into()))
        }
    }
}

#[test]
fn external_key_sources_enroll_and_recover() {
    let f = Fixture::new();
    let v = f.open();
    let token: std::sync::Arc<dyn vault_store::ExternalKeySource> =
        std::sync::Arc::new(SoftToken(vault_store::SecretKey::generate().unwrap()));
    let mut s = v
        .create_profile("hw", Enrollment::External(token.clone()))
        .unwrap();
    let id = s.store(MemoryInput::text("bound to the token")).unwrap();
    drop(s);
    let mut s = v.unlock("hw", KeySource::external(token)).unwrap();
    assert_eq!(
        s.recall(id, RecallRequest::new(""))
            .unwrap()
            .text()
            .unwrap(),
        "bound to the token"
    );
    assert_eq!(
        v.profiles().unwrap()[0].slots,
        vec!["external:soft".to_string()]
    );
    drop(s);
    let other: std::sync::Arc<dyn vault_store::ExternalKeySource> =
        std::sync::Arc::new(SoftToken(vault_store::SecretKey::generate().unwrap()));
    assert!(matches!(
        v.unlock("hw", KeySource::external(other)),
        Err(VaultError::WrongKey { .. })
    ));
}

#[test]
fn tombstoned_ciphertext_is_gone_from_the_files() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s
        .store(MemoryInput::text("erase these exact sealed bytes, please").metadata(vec![7; 64]))
        .unwrap();
    let (content, meta): (Vec<u8>, Vec<u8>) = v
        .connection()
        .query_row("SELECT content, meta FROM memories", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    s.tombstone(id, "forget").unwrap();
    drop(s);
    drop(v);
    let mut bytes = std::fs::read(&f.path).unwrap();
    if let Ok(w) = std::fs::read(f.path.with_extension("db-wal")) {
        bytes.extend(w);
    }
    for (what, blob) in [("content", &content), ("metadata", &meta)] {
        let needle = &blob[13..blob.len().min(45)];
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "sealed {what} still on disk"
        );
    }
}
