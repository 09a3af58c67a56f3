//! `aim vault escrow ...` and `aim vault deadman ...` end to end (secrets on stdin as fd 0).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

mod support;

use support::{FAST_KDF as FAST, ok, refused as fails, vault as aim};

/// An age identity file and its recipient.
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let id = vault_escrow::age::x25519::Identity::generate();
    let path = dir.join(format!("{name}.key"));
    let secret =
        vault_escrow::age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_owned();
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    (path, id.to_public().to_string())
}

#[test]
fn escrow_create_list_recover() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    ok(&aim(&v, &["init"], ""));
    ok(&aim(
        &v,
        &[
            "profile",
            "create",
            "agent",
            "--kdf-params",
            FAST,
            "--passphrase-fd",
            "0",
        ],
        "old\n",
    ));
    let people: Vec<(PathBuf, String)> = (1..=4)
        .map(|i| keypair(dir.path(), &format!("h{i}")))
        .collect();
    let out = dir.path().join("shares");
    std::fs::create_dir(&out).unwrap();
    let holders: Vec<String> = people
        .iter()
        .enumerate()
        .map(|(i, (_, r))| format!("holder{}={r}", i + 1))
        .collect();
    let mut args = vec![
        "escrow",
        "create",
        "-k",
        "3",
        "--out-dir",
        out.to_str().unwrap(),
        "--passphrase-fd",
        "0",
    ];
    for h in &holders {
        args.push("--holder");
        args.push(h);
    }
    let created = ok(&aim(&v, &args, "old\n"));
    assert!(created.contains("3 of 4 shares"), "{created}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 4);
    let listed = ok(&aim(&v, &["escrow", "list"], ""));
    assert!(
        listed.contains("3 of 4") && listed.contains("active"),
        "{listed}"
    );

    // Two shares are not enough; nothing changes.
    let f = |i: usize| files[i].to_str().unwrap().to_owned();
    let k = |i: usize| people[i].0.to_str().unwrap().to_owned();
    let (f0, f1, f2, f3) = (f(0), f(1), f(2), f(3));
    let (k1, k2, k3) = (k(1), k(2), k(3));
    fails(
        &aim(
            &v,
            &[
                "escrow",
                "recover",
                "--share",
                &f1,
                "--share",
                &f3,
                "-i",
                &k1,
                "-i",
                &k3,
                "--kdf-params",
                FAST,
                "--passphrase-fd",
                "0",
            ],
            "new\n",
        ),
        "needs 3",
    );
    // A share without its holder's key cannot be read.
    fails(
        &aim(
            &v,
            &[
                "escrow",
                "recover",
                "--share",
                &f0,
                "--share",
                &f1,
                "--share",
                &f3,
                "-i",
                &k1,
                "-i",
                &k3,
                "--passphrase-fd",
                "0",
            ],
            "new\n",
        ),
        "cannot decrypt",
    );
    // Shares 2, 3, 4 recover and set a new passphrase.
    let rec = ok(&aim(
        &v,
        &[
            "escrow",
            "recover",
            "--share",
            &f1,
            "--share",
            &f2,
            "--share",
            &f3,
            "-i",
            &k1,
            "-i",
            &k2,
            "-i",
            &k3,
            "--kdf-params",
            FAST,
            "--passphrase-fd",
            "0",
        ],
        "new\n",
    ));
    assert!(rec.contains("old one no longer works"), "{rec}");
    fails(
        &aim(&v, &["list", "--passphrase-fd", "0"], "old\n"),
        "does not unlock",
    );
    ok(&aim(&v, &["list", "--passphrase-fd", "0"], "new\n"));
    assert!(ok(&aim(&v, &["escrow", "list"], "")).contains("superseded"));
}

#[test]
fn deadman_set_status_release() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    ok(&aim(&v, &["init"], ""));
    ok(&aim(
        &v,
        &[
            "profile",
            "create",
            "agent",
            "--kdf-params",
            FAST,
            "--passphrase-fd",
            "0",
        ],
        "pw\n",
    ));
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "for my heirs").unwrap();
    let id = ok(&aim(
        &v,
        &[
            "store",
            "--file",
            content.to_str().unwrap(),
            "-c",
            "1",
            "--passphrase-fd",
            "0",
        ],
        "pw\n",
    ));
    let id = id.trim().to_owned();
    let (_, alice) = keypair(dir.path(), "alice");
    let heir = format!("alice={alice}");
    ok(&aim(
        &v,
        &[
            "deadman",
            "set",
            "--heir",
            &heir,
            "--interval",
            "30d",
            "--memory",
            &id,
            "--passphrase-fd",
            "0",
        ],
        "pw\n",
    ));
    let st = ok(&aim(&v, &["deadman", "status"], ""));
    assert!(st.contains("armed") && st.contains("alice"), "{st}");
    // Before the deadline, release refuses and writes nothing.
    let out = dir.path().join("pkgs");
    std::fs::create_dir(&out).unwrap();
    fails(
        &aim(
            &v,
            &["deadman", "release", "--out-dir", out.to_str().unwrap()],
            "",
        ),
        "before its deadline",
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    ok(&aim(
        &v,
        &["deadman", "check-in", "--passphrase-fd", "0"],
        "pw\n",
    ));
}

#[test]
fn deadman_release_is_audited_and_shown_by_status() {
    use std::sync::Arc;
    use vault_store::Clock;

    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    ok(&aim(&v, &["init"], ""));
    ok(&aim(
        &v,
        &[
            "profile",
            "create",
            "agent",
            "--kdf-params",
            FAST,
            "--passphrase-fd",
            "0",
        ],
        "pw\n",
    ));
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "for my heirs").unwrap();
    let id = ok(&aim(
        &v,
        &[
            "store",
            "--file",
            content.to_str().unwrap(),
            "-c",
            "1",
            "--passphrase-fd",
            "0",
        ],
        "pw\n",
    ));
    let (_, alice) = keypair(dir.path(), "alice");
    let (_, bob) = keypair(dir.path(), "bob");
    // The switch was set ten minutes ago with a one-minute interval (through the library with
    // a clock in the past: the binary only knows the real time).
    {
        let past = vault_store::ManualClock::new(vault_store::SystemClock.now_ms() - 600_000);
        let vault = vault_store::Vault::options()
            .clock(Arc::new(past.clone()))
            .open(&v)
            .unwrap();
        let mut s = vault
            .unlock("agent", vault_store::KeySource::passphrase("pw"))
            .unwrap();
        let config = vault_escrow::deadman::DeadmanConfig {
            heirs: vec![
                vault_escrow::deadman::Heir::new("alice", &alice).unwrap(),
                vault_escrow::deadman::Heir::new("bob", &bob).unwrap(),
            ],
            interval_ms: 60_000,
            release: vault_escrow::deadman::ReleaseSpec {
                memory_ids: vec![id.trim().to_owned()],
                share_threshold: None,
            },
        };
        vault_escrow::vault::deadman_set(&mut s, config, false, &past).unwrap();
        s.close().unwrap();
    }
    let st = ok(&aim(&v, &["deadman", "status"], ""));
    assert!(st.contains("DUE"), "{st}");
    let kinds_before = audit_kinds(&v);

    let out = dir.path().join("pkgs");
    std::fs::create_dir(&out).unwrap();
    ok(&aim(
        &v,
        &["deadman", "release", "--out-dir", out.to_str().unwrap()],
        "",
    ));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    let kinds = audit_kinds(&v);
    assert_eq!(kinds[kinds_before.len()..], ["deadman.release".to_owned()]);

    let st = ok(&aim(&v, &["deadman", "status"], ""));
    assert!(
        st.contains("released") && st.contains("to 2 heir(s)"),
        "{st}"
    );
    fails(
        &aim(&v, &["deadman", "check-in", "--passphrase-fd", "0"], "pw\n"),
        "already released",
    );
    let verified = ok(&aim(&v, &["verify", "--passphrase-fd", "0"], "pw\n"));
    assert!(verified.trim_end().ends_with("ok"), "{verified}");
    let st = ok(&aim(&v, &["deadman", "status"], ""));
    assert!(st.contains("released"), "{st}");
}

/// The kinds of all audit leaves of the vault at `path`, in order.
fn audit_kinds(path: &Path) -> Vec<String> {
    let vault = vault_store::Vault::open(path).unwrap();
    let conn = vault.connection();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM audit_leaves", [], |r| r.get(0))
        .unwrap();
    (0..u64::try_from(n).unwrap())
        .map(|i| {
            vault_store::Event::decode(
                &conn
                    .query_row(
                        "SELECT data FROM audit_leaves WHERE idx = ?1",
                        [i64::try_from(i).unwrap()],
                        |r| r.get::<_, Vec<u8>>(0),
                    )
                    .unwrap(),
            )
            .unwrap()
            .kind
        })
        .collect()
}
