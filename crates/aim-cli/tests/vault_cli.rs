//! `aim vault` end to end, with secrets given on a file descriptor (stdin here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

mod support;

use support::{FAST_KDF as FAST, ok, refused, vault as aim};

fn denied(o: &Output, reason: &str) {
    refused(o, reason);
    assert!(o.stdout.is_empty());
}

#[test]
fn vault_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("v").join("vault.db");
    let pw = "correct horse\n";
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
        pw,
    ));
    assert!(ok(&aim(&v, &["profile", "list"], "")).contains("agent"));
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "the user prefers green tea").unwrap();
    let f = content.to_str().unwrap();
    let id = ok(&aim(
        &v,
        &[
            "store",
            "--file",
            f,
            "-c",
            "1",
            "--tag",
            "prefs",
            "--passphrase-fd",
            "0",
        ],
        pw,
    ))
    .trim()
    .to_string();
    assert_eq!(
        ok(&aim(&v, &["recall", &id, "--passphrase-fd", "0"], pw)),
        "the user prefers green tea"
    );
    denied(
        &aim(&v, &["recall", &id, "--passphrase-fd", "0"], "wrong\n"),
        "does not unlock",
    );

    let private = ok(&aim(
        &v,
        &[
            "store",
            "--file",
            f,
            "-c",
            "private",
            "--passphrase-fd",
            "0",
        ],
        pw,
    ))
    .trim()
    .to_string();
    denied(
        &aim(&v, &["recall", &private, "--passphrase-fd", "0"], pw),
        "justification",
    );
    ok(&aim(
        &v,
        &["recall", &private, "-j", "task 7", "--passphrase-fd", "0"],
        pw,
    ));
    let sealed = ok(&aim(
        &v,
        &["store", "--file", f, "-c", "3", "--passphrase-fd", "0"],
        pw,
    ))
    .trim()
    .to_string();
    denied(
        &aim(
            &v,
            &["recall", &sealed, "-j", "x", "--passphrase-fd", "0"],
            pw,
        ),
        "approval",
    );

    let hits = ok(&aim(
        &v,
        &["search", "GREEN", "tea", "--passphrase-fd", "0"],
        pw,
    ));
    assert!(hits.contains(&id) && !hits.contains("prefers"), "{hits}");
    assert!(
        ok(&aim(
            &v,
            &["list", "--tag", "prefs", "--passphrase-fd", "0"],
            pw
        ))
        .contains(&id)
    );

    ok(&aim(&v, &["lockdown", "enter", "--reason", "drill"], ""));
    assert!(ok(&aim(&v, &["lockdown", "status"], "")).contains("drill"));
    denied(
        &aim(&v, &["recall", &id, "--passphrase-fd", "0"], pw),
        "lockdown",
    );
    denied(
        &aim(&v, &["unlock", "--passphrase-fd", "0"], "nope\n"),
        "does not unlock",
    );
    // The right passphrase alone is not enough: leaving lockdown needs a person.
    denied(
        &aim(&v, &["unlock", "--passphrase-fd", "0"], pw),
        "needs a person",
    );
    // A person confirms (here through the library, with a presence check that confirms).
    struct Person;
    impl vault_store::Presence for Person {
        fn confirm(&self, _: &vault_store::PresenceRequest) -> Result<(), vault_store::GateError> {
            Ok(())
        }
    }
    vault_store::Vault::options()
        .gates(vault_store::Gates::new().presence(std::sync::Arc::new(Person)))
        .open_existing(&v)
        .unwrap()
        .leave_lockdown("agent", vault_store::KeySource::passphrase("correct horse"))
        .unwrap();
    ok(&aim(&v, &["recall", &id, "--passphrase-fd", "0"], pw));

    let bak = dir.path().join("b.bak");
    ok(&aim(
        &v,
        &[
            "backup",
            bak.to_str().unwrap(),
            "--profile-key",
            "--passphrase-fd",
            "0",
        ],
        pw,
    ));
    let restored = dir.path().join("restored.db");
    ok(&aim(
        &restored,
        &[
            "restore",
            bak.to_str().unwrap(),
            "--profile-key",
            "--passphrase-fd",
            "0",
        ],
        pw,
    ));
    assert_eq!(
        ok(&aim(
            &restored,
            &["recall", &id, "--passphrase-fd", "0"],
            pw
        )),
        "the user prefers green tea"
    );

    assert!(ok(&aim(&v, &["verify", "--deep", "--passphrase-fd", "0"], pw)).contains("ok"));
    let proof: serde_json::Value =
        serde_json::from_str(&ok(&aim(&v, &["prove", &id, "--passphrase-fd", "0"], pw))).unwrap();
    assert!(proof.get("head").is_some());

    assert!(
        ok(&aim(
            &v,
            &["rotate", "--batch", "2", "--passphrase-fd", "0"],
            pw
        ))
        .contains("to 2")
    );
    assert_eq!(
        ok(&aim(&v, &["recall", &id, "--passphrase-fd", "0"], pw)),
        "the user prefers green tea"
    );
    ok(&aim(&v, &["tombstone", &id, "--passphrase-fd", "0"], pw));
    denied(
        &aim(&v, &["recall", &id, "--passphrase-fd", "0"], pw),
        "tombstoned",
    );

    // Secrets never come from argv.
    let o = aim(&v, &["recall", &id, "--passphrase", "x"], "");
    assert!(!o.status.success());
    assert!(ok(&aim(&v, &["store", "--help"], "")).contains("Example"));
}
