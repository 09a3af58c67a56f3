//! Escrow and dead-man switch against a real vault (SQLite file, fast Argon2 parameters,
//! manual clock).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use vault_escrow::deadman::{DeadmanConfig, Heir, ReleaseSpec, parse_payload};
use vault_escrow::vault::{
    self as ev, EscrowPurpose, EscrowStatus, HolderSpec, create_escrow, deadman_check_in,
    deadman_release, deadman_set, deadman_status, list_escrows, recover,
};
use vault_escrow::{EscrowError, HolderIdentities, HolderRecipient, Share};
use vault_store::{
    Argon2Params, Clock, Enrollment, KeySource, ManualClock, MemoryInput, SecretBytes, Vault,
    VaultError,
};

const HOUR: i64 = 3_600_000;

fn fast() -> Argon2Params {
    Argon2Params::new(64, 1, 1).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: ManualClock,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let f = Self {
            _dir: dir,
            path,
            clock: ManualClock::new(1_800_000_000_000),
        };
        f.open()
            .create_profile("agent", Enrollment::passphrase_with("old pass", fast()))
            .unwrap()
            .close()
            .unwrap();
        f
    }

    fn open(&self) -> Vault {
        Vault::options()
            .clock(Arc::new(self.clock.clone()))
            .open(&self.path)
            .unwrap()
    }
}

fn event_kinds(v: &Vault) -> Vec<String> {
    let n = vault_audit::AuditLog::tree_size(v.connection()).unwrap();
    (0..n)
        .map(|i| vault_audit::AuditLog::leaf(v.connection(), i).unwrap().kind)
        .collect()
}

struct Person {
    recipient: HolderRecipient,
    key: HolderIdentities,
}

fn person() -> Person {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string().parse().unwrap();
    let mut key = HolderIdentities::new();
    key.add_x25519(id);
    Person { recipient, key }
}

fn holders(people: &[Person]) -> Vec<HolderSpec> {
    people
        .iter()
        .enumerate()
        .map(|(i, p)| HolderSpec {
            label: format!("holder{}", i + 1),
            recipient: Some(p.recipient.clone()),
        })
        .collect()
}

#[test]
fn escrow_recovery_sets_a_new_passphrase_and_supersedes_the_escrow() {
    let f = Fixture::new();
    let vault = f.open();
    let people: Vec<Person> = (0..5).map(|_| person()).collect();
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let memory = s
        .store(MemoryInput::text("keep me").classification(1))
        .unwrap();
    let before = event_kinds(&vault).len();
    let created = create_escrow(&mut s, 3, &holders(&people), &f.clock).unwrap();
    s.close().unwrap();
    // Audited: the recovery slot and the record.
    let kinds = event_kinds(&vault);
    assert!(
        kinds[before..].contains(&"recovery.create".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds[before..].contains(&"record.put".to_owned()),
        "{kinds:?}"
    );
    // The record lists holder fingerprints and never a share.
    let listed = list_escrows(&vault, "agent").unwrap();
    assert_eq!(listed.len(), 1);
    let rec = &listed[0];
    assert_eq!(
        (rec.threshold, rec.total, rec.status.clone()),
        (3, 5, EscrowStatus::Active)
    );
    assert_eq!(rec.purpose, EscrowPurpose::Holders);
    for (h, p) in rec.holders.iter().zip(&people) {
        assert_eq!(h.recipient.as_ref(), Some(&p.recipient.fingerprint()));
    }
    let raw = vault
        .get_public_record("agent", ev::ESCROW_NAMESPACE, &rec.escrow_id)
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(!raw.contains("aim-share-v1"), "{raw}");
    // Each share is encrypted to its holder only.
    assert!(
        created
            .shares
            .iter()
            .all(|s| s.content.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"))
    );
    assert!(
        people[1]
            .key
            .decrypt(created.shares[0].content.as_bytes())
            .is_err()
    );
    // Holders 2, 4 and 5 decrypt their shares and recover.
    let texts: Vec<String> = [1usize, 3, 4]
        .iter()
        .map(|&i| {
            String::from_utf8(
                people[i]
                    .key
                    .decrypt(created.shares[i].content.as_bytes())
                    .unwrap()
                    .to_vec(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        texts
            .iter()
            .map(|t| Share::parse(t).unwrap().index())
            .collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    let (mut session, recovery) = recover(
        &vault,
        &texts,
        SecretBytes::from("new pass".to_owned()),
        Some(fast()),
        &f.clock,
    )
    .unwrap();
    // The recovered session works.
    assert_eq!(
        session
            .recall(memory, vault_store::RecallRequest::new("check"))
            .unwrap()
            .text()
            .unwrap(),
        "keep me"
    );
    session.close().unwrap();
    assert!(matches!(
        recovery.record.status,
        EscrowStatus::Superseded { .. }
    ));
    // Old passphrase stops working, new one works.
    assert!(matches!(
        vault.unlock("agent", KeySource::passphrase("old pass")),
        Err(VaultError::WrongKey { .. })
    ));
    vault
        .unlock("agent", KeySource::passphrase("new pass"))
        .unwrap()
        .close()
        .unwrap();
    // The escrow is superseded and its shares no longer recover.
    assert!(matches!(
        list_escrows(&vault, "agent").unwrap()[0].status,
        EscrowStatus::Superseded { .. }
    ));
    let err = recover(
        &vault,
        &texts,
        SecretBytes::from("x".to_owned()),
        Some(fast()),
        &f.clock,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::EscrowNotActive {
                status: "superseded",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn recovery_rejects_too_few_shares_and_wrong_vault_without_touching_the_profile() {
    let f = Fixture::new();
    let vault = f.open();
    let plain = vec![
        HolderSpec {
            label: "a".into(),
            recipient: None,
        },
        HolderSpec {
            label: "b".into(),
            recipient: None,
        },
        HolderSpec {
            label: "c".into(),
            recipient: None,
        },
    ];
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let created = create_escrow(&mut s, 2, &plain, &f.clock).unwrap();
    s.close().unwrap();
    let texts: Vec<String> = created
        .shares
        .iter()
        .map(|s| s.content.to_string())
        .collect();
    assert!(texts.iter().all(|t| t.starts_with("aim-share-v1:")));
    let err = recover(
        &vault,
        &texts[..1],
        SecretBytes::from("n".to_owned()),
        Some(fast()),
        &f.clock,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::NotEnoughShares {
                got: 1,
                threshold: 2
            }
        ),
        "{err}"
    );
    // Another vault: the shares carry this vault's id.
    let f2 = Fixture::new();
    let other = f2.open();
    let err = recover(
        &other,
        &texts[1..],
        SecretBytes::from("n".to_owned()),
        Some(fast()),
        &f.clock,
    )
    .unwrap_err();
    assert!(matches!(err, EscrowError::WrongVault { .. }), "{err}");
    // Nothing changed: the old passphrase still works.
    vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn rotating_the_data_key_invalidates_escrows() {
    let f = Fixture::new();
    let vault = f.open();
    let people: Vec<Person> = (0..3).map(|_| person()).collect();
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let created = create_escrow(&mut s, 2, &holders(&people), &f.clock).unwrap();
    let report = s
        .rotate(
            &[Enrollment::passphrase_with("old pass", fast())],
            100,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        report.invalidated_escrows,
        vec![created.record.escrow_id.clone()]
    );
    // Even before the record is updated, list reports it invalidated (its slot is gone).
    let listed = list_escrows(&vault, "agent").unwrap();
    assert!(
        matches!(&listed[0].status, EscrowStatus::Invalidated { reason, .. } if reason.contains("rotated"))
    );
    let marked = ev::record_rotation(&mut s, &report, &f.clock).unwrap();
    assert_eq!(marked.len(), 1);
    s.close().unwrap();
    let texts: Vec<String> = (0..2)
        .map(|i| {
            String::from_utf8(
                people[i]
                    .key
                    .decrypt(created.shares[i].content.as_bytes())
                    .unwrap()
                    .to_vec(),
            )
            .unwrap()
        })
        .collect();
    let err = recover(
        &vault,
        &texts,
        SecretBytes::from("n".to_owned()),
        Some(fast()),
        &f.clock,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            EscrowError::EscrowNotActive {
                status: "invalidated",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn escrow_parameters_are_checked_before_any_slot_is_made() {
    let f = Fixture::new();
    let vault = f.open();
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let one = vec![HolderSpec {
        label: "a".into(),
        recipient: None,
    }];
    assert!(matches!(
        create_escrow(&mut s, 2, &one, &f.clock),
        Err(EscrowError::InvalidParameters { .. })
    ));
    let bad_label = vec![
        HolderSpec {
            label: "../x".into(),
            recipient: None,
        },
        HolderSpec {
            label: "b".into(),
            recipient: None,
        },
    ];
    assert!(create_escrow(&mut s, 2, &bad_label, &f.clock).is_err());
    s.close().unwrap();
    let info = vault.profiles().unwrap();
    assert!(
        !info[0].slots.iter().any(|s| s.starts_with("recovery:")),
        "{:?}",
        info[0].slots
    );
    assert!(list_escrows(&vault, "agent").unwrap().is_empty());
}

#[test]
fn deadman_switch_end_to_end() {
    let f = Fixture::new();
    let vault = f.open();
    let (alice, bob, mallory) = (person(), person(), person());
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let m = s
        .store(MemoryInput::text("the vault's last words").classification(1))
        .unwrap();
    let config = DeadmanConfig {
        heirs: vec![
            Heir::new("alice", &alice.recipient.canonical()).unwrap(),
            Heir::new("bob", &bob.recipient.canonical()).unwrap(),
        ],
        interval_ms: 24 * HOUR,
        release: ReleaseSpec {
            memory_ids: vec![m.to_string()],
            share_threshold: Some(2),
        },
    };
    let before = event_kinds(&vault).len();
    let state = deadman_set(&mut s, config, false, &f.clock).unwrap();
    assert!(
        event_kinds(&vault)[before..]
            .iter()
            .any(|k| k == "memory.recall")
    );
    let first_escrow = state.escrow_id.clone().unwrap();
    s.close().unwrap();

    // Before the deadline nothing can be released.
    f.clock.advance(23 * HOUR);
    let before = event_kinds(&vault).len();
    let err = deadman_release(&vault, "agent", &f.clock).unwrap_err();
    assert!(
        matches!(err, EscrowError::NotYetDue { remaining_ms, .. } if remaining_ms == HOUR),
        "{err}"
    );
    // The refused attempt is audited (and is not a release).
    assert_eq!(
        event_kinds(&vault)[before..],
        [ev::DEADMAN_RELEASE_REFUSED_EVENT.to_owned()]
    );
    let st = deadman_status(&vault, "agent", &f.clock).unwrap().unwrap();
    assert!(st.armed && !st.due);
    assert!(st.releases.is_empty() && st.released_at_ms.is_none());

    // Check-in extends the deadline and rotates the dead-man escrow.
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let state = deadman_check_in(&mut s, &f.clock).unwrap();
    s.close().unwrap();
    assert_ne!(state.escrow_id.as_deref(), Some(first_escrow.as_str()));
    let escrows = list_escrows(&vault, "agent").unwrap();
    assert_eq!(escrows.len(), 2);
    assert!(escrows.iter().any(
        |e| e.escrow_id == first_escrow && matches!(e.status, EscrowStatus::Superseded { .. })
    ));
    f.clock.advance(23 * HOUR);
    assert!(matches!(
        deadman_release(&vault, "agent", &f.clock),
        Err(EscrowError::NotYetDue { .. })
    ));

    // After the deadline: one package per heir, each opened only by its heir.
    f.clock.advance(2 * HOUR);
    let before = event_kinds(&vault).len();
    let packages = deadman_release(&vault, "agent", &f.clock).unwrap();
    assert_eq!(packages.len(), 2);
    // Exactly one audit event, recorded without a session, naming no secret.
    assert_eq!(
        event_kinds(&vault)[before..],
        [ev::DEADMAN_RELEASE_EVENT.to_owned()]
    );
    let leaf =
        vault_audit::AuditLog::leaf(vault.connection(), u64::try_from(before).unwrap()).unwrap();
    let released_at = f.clock.now_ms();
    assert_eq!(leaf.time_ms, released_at);
    let int = |n: &str| leaf.get(n).and_then(vault_store::FieldValue::as_int);
    assert_eq!(int("heirs"), Some(2));
    assert_eq!(
        int("generation"),
        Some(i64::try_from(state.generation).unwrap())
    );
    assert_eq!(int("set_at_ms"), Some(state.set_at_ms));
    assert_eq!(int("deadline_ms"), Some(state.deadline_ms));
    assert_eq!(
        leaf.get("escrow_id")
            .and_then(vault_store::FieldValue::as_str),
        state.escrow_id.as_deref()
    );
    assert!(
        leaf.fields.values().all(|v| v.as_bytes().is_none()),
        "no bytes (keys, content) in the release event"
    );
    let st = deadman_status(&vault, "agent", &f.clock).unwrap().unwrap();
    assert!(!st.armed);
    assert_eq!(st.released_at_ms, Some(released_at));
    assert_eq!(st.releases.len(), 1);
    assert_eq!(st.releases[0].heirs, 2);
    assert!(mallory.key.decrypt(packages[0].armored.as_bytes()).is_err());
    assert!(bob.key.decrypt(packages[0].armored.as_bytes()).is_err());
    let pa = parse_payload(&alice.key.decrypt(packages[0].armored.as_bytes()).unwrap()).unwrap();
    let pb = parse_payload(&bob.key.decrypt(packages[1].armored.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        aim_crypto::b64::decode(&pa.memories[0].content_b64, "m").unwrap(),
        b"the vault's last words"
    );
    // The heirs' shares together recover the profile.
    let shares = vec![pa.share.clone().unwrap(), pb.share.clone().unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let paths = ev::write_packages(dir.path(), "agent", &packages).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&paths[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A check-in after the deadline cannot undo the release.
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let err = deadman_check_in(&mut s, &f.clock).unwrap_err();
    assert!(
        matches!(err, EscrowError::AlreadyReleased { released_at_ms } if released_at_ms == released_at),
        "{err}"
    );
    // The log still verifies with the unattended release in it.
    let report = s.verify(true, &[]).unwrap();
    assert!(report.is_ok(), "{:?}", report.first_problem);
    assert!(matches!(
        deadman_set(&mut s, deadman_status_config(&vault), false, &f.clock),
        Err(EscrowError::Overdue { .. })
    ));
    s.close().unwrap();
    let (s2, _) = recover(
        &vault,
        &shares,
        SecretBytes::from("heirs' pass".to_owned()),
        Some(fast()),
        &f.clock,
    )
    .unwrap();
    s2.close().unwrap();
    vault
        .unlock("agent", KeySource::passphrase("heirs' pass"))
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn a_release_survives_a_check_in_from_a_clock_that_is_behind() {
    // The release ran on a machine whose clock was past the deadline; the owner's machine
    // still thinks there is time. The recorded release wins: the check-in is refused and the
    // status keeps saying released.
    let f = Fixture::new();
    let vault = f.open();
    let heir = person();
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let m = s
        .store(MemoryInput::text("note").classification(1))
        .unwrap();
    let config = DeadmanConfig {
        heirs: vec![Heir::new("solo", &heir.recipient.canonical()).unwrap()],
        interval_ms: 24 * HOUR,
        release: ReleaseSpec {
            memory_ids: vec![m.to_string()],
            share_threshold: None,
        },
    };
    deadman_set(&mut s, config, false, &f.clock).unwrap();
    s.close().unwrap();
    f.clock.advance(25 * HOUR);
    let released_at = f.clock.now_ms();
    assert_eq!(deadman_release(&vault, "agent", &f.clock).unwrap().len(), 1);
    f.clock.advance(-2 * HOUR);
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    assert!(matches!(
        deadman_check_in(&mut s, &f.clock),
        Err(EscrowError::AlreadyReleased { released_at_ms }) if released_at_ms == released_at
    ));
    assert!(matches!(
        deadman_set(&mut s, deadman_status_config(&vault), false, &f.clock),
        Err(EscrowError::AlreadyReleased { .. })
    ));
    s.close().unwrap();
    let st = deadman_status(&vault, "agent", &f.clock).unwrap().unwrap();
    assert!(!st.armed && !st.due);
    assert_eq!(st.released_at_ms, Some(released_at));
    assert_eq!(st.releases[0].heirs, 1);
    // A second release re-issues (even before the deadline, since it was released) and is
    // audited again.
    assert_eq!(deadman_release(&vault, "agent", &f.clock).unwrap().len(), 1);
    let st = deadman_status(&vault, "agent", &f.clock).unwrap().unwrap();
    assert_eq!(st.releases.len(), 2);
    assert_eq!(st.released_at_ms, Some(released_at));
}

fn deadman_status_config(vault: &Vault) -> DeadmanConfig {
    let raw = vault
        .get_public_record("agent", ev::DEADMAN_NAMESPACE, ev::DEADMAN_STATE_KEY)
        .unwrap()
        .unwrap();
    vault_escrow::deadman::DeadmanState::from_json(&raw)
        .unwrap()
        .config
}

#[test]
fn deadman_needs_a_switch() {
    let f = Fixture::new();
    let vault = f.open();
    assert!(deadman_status(&vault, "agent", &f.clock).unwrap().is_none());
    assert!(matches!(
        deadman_release(&vault, "agent", &f.clock),
        Err(EscrowError::DeadmanNotSet)
    ));
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    assert!(matches!(
        deadman_check_in(&mut s, &f.clock),
        Err(EscrowError::DeadmanNotSet)
    ));
}

/// Tombstoning a memory an armed switch carries: the packages are re-sealed without it at once
/// (the deadline does not move), so a release holds only what was not erased.
#[test]
fn a_tombstoned_memory_leaves_the_armed_deadman_packages() {
    let f = Fixture::new();
    let vault = f.open();
    let heir = person();
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let erased = s
        .store(MemoryInput::text("erase me: zebra 7781").classification(1))
        .unwrap();
    let kept = s
        .store(MemoryInput::text("keep me").classification(1))
        .unwrap();
    let config = DeadmanConfig {
        heirs: vec![Heir::new("solo", &heir.recipient.canonical()).unwrap()],
        interval_ms: 24 * HOUR,
        release: ReleaseSpec {
            memory_ids: vec![erased.to_string(), kept.to_string()],
            share_threshold: None,
        },
    };
    let armed = deadman_set(&mut s, config, false, &f.clock).unwrap();
    let out = ev::tombstone(&mut s, erased, "user asked", &f.clock).unwrap();
    assert!(out.tombstoned && out.deadman_resealed && !out.deadman_removed);
    let st = deadman_status(&vault, "agent", &f.clock).unwrap().unwrap();
    assert_eq!(
        st.deadline_ms, armed.deadline_ms,
        "the deadline does not move"
    );
    assert_eq!(st.memory_count, 1);
    s.close().unwrap();

    // No check-in: the switch releases what was re-sealed at the tombstone.
    f.clock.advance(25 * HOUR);
    let packages = deadman_release(&vault, "agent", &f.clock).unwrap();
    let p = parse_payload(&heir.key.decrypt(packages[0].armored.as_bytes()).unwrap()).unwrap();
    assert_eq!(p.memories.len(), 1);
    assert_eq!(p.memories[0].id, kept.to_string());
}

/// A memory tombstoned with the plain `Session::tombstone` (no re-seal) no longer makes
/// check-in fail; and a switch left with nothing to release is removed by `tombstone`.
#[test]
fn check_in_survives_a_tombstone_and_an_empty_switch_is_removed() {
    let f = Fixture::new();
    let vault = f.open();
    let heir = person();
    let mut s = vault
        .unlock("agent", KeySource::passphrase("old pass"))
        .unwrap();
    let a = s.store(MemoryInput::text("a")).unwrap();
    let b = s.store(MemoryInput::text("b")).unwrap();
    let config = DeadmanConfig {
        heirs: vec![Heir::new("solo", &heir.recipient.canonical()).unwrap()],
        interval_ms: 24 * HOUR,
        release: ReleaseSpec {
            memory_ids: vec![a.to_string(), b.to_string()],
            share_threshold: None,
        },
    };
    deadman_set(&mut s, config, false, &f.clock).unwrap();
    assert!(s.tombstone(a, "plain").unwrap());
    let state = deadman_check_in(&mut s, &f.clock).unwrap();
    assert_eq!(state.config.release.memory_ids, vec![b.to_string()]);
    let out = ev::tombstone(&mut s, b, "last one", &f.clock).unwrap();
    assert!(out.deadman_removed);
    assert!(deadman_status(&vault, "agent", &f.clock).unwrap().is_none());
}
