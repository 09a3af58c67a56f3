//! The dead-man state machine over explicit time: check-in before the deadline blocks release,
//! release after it yields packages only the right heir can open, and check-ins cannot undo it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vault_escrow::deadman::{
    DeadmanConfig, DeadmanState, Heir, HeirPayload, PackagedMemory, ReleaseSpec, heir_payload,
    parse_payload,
};
use vault_escrow::{EscrowError, HolderIdentities};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_800_000_000_000;

struct Person {
    heir: Heir,
    key: HolderIdentities,
}

fn person(name: &str) -> Person {
    let id = age::x25519::Identity::generate();
    let heir = Heir::new(name, &id.to_public().to_string()).unwrap();
    let mut key = HolderIdentities::new();
    key.add_x25519(id);
    Person { heir, key }
}

fn payloads(heirs: &[&Person], text: &str, now: i64) -> Vec<HeirPayload> {
    heirs
        .iter()
        .map(|p| {
            heir_payload(
                "vault",
                "owner",
                &p.heir,
                vec![PackagedMemory {
                    id: "m1".into(),
                    content_b64: aim_crypto::b64::encode(text.as_bytes()),
                }],
                None,
                now,
            )
        })
        .collect()
}

fn config(heirs: &[&Person]) -> DeadmanConfig {
    DeadmanConfig {
        heirs: heirs.iter().map(|p| p.heir.clone()).collect(),
        interval_ms: 24 * HOUR,
        release: ReleaseSpec {
            memory_ids: vec!["m1".into()],
            share_threshold: None,
        },
    }
}

#[test]
fn release_is_refused_before_the_deadline_and_check_in_extends_it() {
    let (a, b) = (person("alice"), person("bob"));
    let mut st = DeadmanState::arm(
        "vault",
        "owner",
        config(&[&a, &b]),
        &payloads(&[&a, &b], "v1", T0),
        None,
        T0,
    )
    .unwrap();
    assert_eq!(st.deadline_ms, T0 + 24 * HOUR);
    let err = st.release(T0 + 23 * HOUR).unwrap_err();
    assert!(
        matches!(err, EscrowError::NotYetDue { remaining_ms, .. } if remaining_ms == HOUR),
        "{err}"
    );
    assert!(err.to_string().contains("1h"), "{err}");
    assert!(st.released_at_ms.is_none());
    // Check in at T0+23h: the deadline moves to T0+47h, so T0+25h is still too early.
    st.check_in(
        &payloads(&[&a, &b], "v2", T0 + 23 * HOUR),
        None,
        T0 + 23 * HOUR,
    )
    .unwrap();
    assert_eq!(st.deadline_ms, T0 + 47 * HOUR);
    assert!(matches!(
        st.release(T0 + 25 * HOUR),
        Err(EscrowError::NotYetDue { .. })
    ));
    let status = st.status(T0 + 25 * HOUR);
    assert!(status.armed && !status.due);
    assert_eq!(status.remaining_ms, 22 * HOUR);
    // Exactly at the deadline, release works and carries the re-prepared content.
    let released = st.release(T0 + 47 * HOUR).unwrap();
    assert_eq!(released.len(), 2);
    let opened = a.key.decrypt(released[0].armored.as_bytes()).unwrap();
    let payload = parse_payload(&opened).unwrap();
    assert_eq!(payload.heir, "alice");
    assert_eq!(
        aim_crypto::b64::decode(&payload.memories[0].content_b64, "c").unwrap(),
        b"v2"
    );
    assert_eq!(st.released_at_ms, Some(T0 + 47 * HOUR));
}

#[test]
fn each_package_opens_only_with_its_heirs_key() {
    let (a, b, c) = (person("alice"), person("bob"), person("carol"));
    let mut st = DeadmanState::arm(
        "vault",
        "owner",
        config(&[&a, &b]),
        &payloads(&[&a, &b], "secret", T0),
        None,
        T0,
    )
    .unwrap();
    let released = st.release(T0 + 24 * HOUR).unwrap();
    let (pa, pb) = (&released[0], &released[1]);
    assert_eq!((pa.heir.as_str(), pb.heir.as_str()), ("alice", "bob"));
    assert!(a.key.decrypt(pa.armored.as_bytes()).is_ok());
    assert!(b.key.decrypt(pb.armored.as_bytes()).is_ok());
    assert!(a.key.decrypt(pb.armored.as_bytes()).is_err());
    assert!(b.key.decrypt(pa.armored.as_bytes()).is_err());
    assert!(c.key.decrypt(pa.armored.as_bytes()).is_err());
    // Stored state never contains the plaintext.
    let json = String::from_utf8(st.to_json().unwrap()).unwrap();
    assert!(!json.contains("secret") && !json.contains(&aim_crypto::b64::encode(b"secret")));
}

#[test]
fn check_in_after_release_fails_and_release_is_stable() {
    let a = person("alice");
    let mut st = DeadmanState::arm(
        "vault",
        "owner",
        config(&[&a]),
        &payloads(&[&a], "x", T0),
        None,
        T0,
    )
    .unwrap();
    st.release(T0 + 30 * HOUR).unwrap();
    let err = st
        .check_in(&payloads(&[&a], "y", T0 + 31 * HOUR), None, T0 + 31 * HOUR)
        .unwrap_err();
    assert!(
        matches!(err, EscrowError::AlreadyReleased { released_at_ms } if released_at_ms == T0 + 30 * HOUR)
    );
    assert!(err.to_string().contains("cannot be undone"));
    assert!(!st.status(T0 + 31 * HOUR).armed);
    // A second release re-issues the packages and keeps the first release time.
    let again = st.release(T0 + 32 * HOUR).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(st.released_at_ms, Some(T0 + 30 * HOUR));
    // The state survives a storage round trip.
    let back = DeadmanState::from_json(&st.to_json().unwrap()).unwrap();
    assert_eq!(back, st);
}

#[test]
fn tampered_packages_or_state_fail_closed() {
    let a = person("alice");
    let mut st = DeadmanState::arm(
        "vault",
        "owner",
        config(&[&a]),
        &payloads(&[&a], "x", T0),
        None,
        T0,
    )
    .unwrap();
    // Moving a package to another generation (replaying an older one) fails authentication.
    let mut replay = st.clone();
    replay.generation += 1;
    assert!(matches!(
        replay.release(T0 + 24 * HOUR),
        Err(EscrowError::CorruptRecord { .. })
    ));
    // Moving the deadline back in the stored state is the one thing a writer of the vault
    // file can do (see docs/escrow.md); swapping heirs is not.
    let mut swapped = st.clone();
    let b = person("bob");
    swapped.packages[0].fingerprint = b.heir.fingerprint.clone();
    assert!(swapped.release(T0 + 24 * HOUR).is_err());
    assert!(DeadmanState::from_json(b"{}").is_err());
    assert!(DeadmanState::from_json(b"not json").is_err());
    assert!(st.release(T0 + 24 * HOUR).is_ok());
}

#[test]
fn configuration_is_validated() {
    let (a, b) = (person("alice"), person("bob"));
    let mut c = config(&[&a]);
    c.interval_ms = 1000;
    assert!(matches!(c.validate(), Err(EscrowError::InvalidDeadman(_))));
    let mut c = config(&[&a]);
    c.release = ReleaseSpec::default();
    assert!(c.validate().is_err());
    let mut c = config(&[&a]);
    c.release.share_threshold = Some(2);
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("number of heirs (1)"), "{err}");
    let mut c = config(&[&a, &b]);
    c.release.share_threshold = Some(2);
    assert!(c.validate().is_ok());
    let c = DeadmanConfig {
        heirs: vec![a.heir.clone(), a.heir.clone()],
        ..config(&[&a])
    };
    assert!(c.validate().is_err());
    assert!(
        DeadmanConfig {
            heirs: vec![],
            ..config(&[&a])
        }
        .validate()
        .is_err()
    );
    assert!(Heir::new("../evil", &a.heir.recipient).is_err());
    assert!(Heir::new("ok", "age1bogus").is_err());
    // Payload count must match heirs.
    assert!(
        DeadmanState::arm(
            "v",
            "p",
            config(&[&a, &b]),
            &payloads(&[&a], "x", T0),
            None,
            T0
        )
        .is_err()
    );
}
