//! Issue 11, point 10: a FIFO key file, an empty existing file, an over-long gate socket
//! path and the temporary files of a killed restore.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use vault_store::backup::{BackupKey, BackupOptions, BackupProtection};
use vault_store::{Enrollment, GateConfig, KeySource, MemoryInput, SecretBytes, Vault, VaultError};

#[test]
fn a_fifo_as_key_file_is_refused_without_hanging() {
    let f = Fixture::new();
    let v = f.with_profile();
    let fifo = f.dir.path().join("key.fifo");
    let st = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = fifo.clone();
    std::thread::spawn(move || {
        tx.send(vault_store::read_key_file(&p).map(|_| ())).unwrap();
    });
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reading a FIFO key file must not hang");
    assert!(
        matches!(&r, Err(VaultError::InvalidInput(m)) if m.contains("not a regular file")),
        "{r:?}"
    );
    let mut s = v.unlock("agent", pw()).unwrap();
    assert!(s.add_key_slot(&Enrollment::KeyFile(fifo.clone())).is_err());
    drop(s);
    assert!(v.unlock("agent", KeySource::KeyFile(fifo)).is_err());
}

#[test]
fn an_empty_existing_file_does_not_become_a_vault() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    std::fs::write(&f.path, b"").unwrap();
    for r in [
        Vault::open(&f.path),
        Vault::options().open_existing(&f.path),
    ] {
        assert!(
            matches!(&r, Err(VaultError::Schema(m)) if m.contains("empty file")),
            "{:?}",
            r.err()
        );
    }
    assert_eq!(
        std::fs::metadata(&f.path).unwrap().len(),
        0,
        "left untouched"
    );
    // A vault created at a fresh path still works, and reopens.
    let g = Fixture::new();
    g.with_profile();
    assert!(g.open().unlock("agent", pw()).is_ok());
}

#[test]
fn an_overlong_socket_path_is_refused_and_does_not_lock_the_profile_out() {
    let f = Fixture::new();
    let v = f.with_profile_gates(person_gates());
    let mut s = v.unlock("agent", pw()).unwrap();
    let id = s.store(MemoryInput::text("x").classification(1)).unwrap();
    let mut cfg = GateConfig {
        boundary_socket: Some("/".repeat(4097)),
        ..GateConfig::default()
    };
    assert!(matches!(
        s.set_gate_config(&cfg),
        Err(VaultError::InvalidInput(_))
    ));
    cfg.boundary_socket = Some(String::new());
    assert!(s.set_gate_config(&cfg).is_err());
    // The profile still recalls.
    s.recall(id, vault_store::RecallRequest::new("still works"))
        .unwrap();
    cfg.boundary_socket = Some("/".repeat(4096));
    s.set_gate_config(&cfg).unwrap();
    assert_eq!(s.gate_config().unwrap(), cfg);
}

#[test]
fn a_killed_restores_temporary_files_are_removed_by_the_next_restore() {
    let f = Fixture::new();
    let v = f.with_profile();
    let mut s = v.unlock("agent", pw()).unwrap();
    s.store(MemoryInput::text("one")).unwrap();
    let out = f.dir.path().join("b.bak");
    let opts = BackupOptions {
        protection: BackupProtection::Passphrase {
            passphrase: SecretBytes::from("b".to_string()),
            params: fast(),
        },
        incremental: false,
        include_black: false,
    };
    s.backup(&out, &opts).unwrap();
    let dir = f.dir.path().join("restored");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("vault.db");
    // What a restore killed mid-way leaves: its temporary copy (old), and a running one (new).
    let stale = dir.join(".vault.db.restore-0123456789ab");
    let running = dir.join(".vault.db.restore-ba9876543210");
    for p in [&stale, &running] {
        std::fs::write(p, b"partial").unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let key = BackupKey::Passphrase(SecretBytes::from("b".to_string()));
    let rep = Vault::restore(&target, &[&out], &key).unwrap();
    assert_eq!(rep.stale_removed, vec![stale.clone()]);
    assert!(!stale.exists());
    assert!(running.exists(), "a restore still writing is left alone");
}
