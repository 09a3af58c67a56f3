//! TPM sealing against a real software TPM (`swtpm`), started by the test on free loopback
//! ports with a fresh state directory. Without `swtpm` these tests FAIL (CI installs it with
//! `cargo xtask system-deps`).
#![cfg(feature = "tpm")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vault_hw::HwError;
use vault_hw::swtpm::SoftwareTpm;
use vault_hw::tpm::TpmKeySource;
use vault_store::ExternalKeySource;

fn start_swtpm() -> SoftwareTpm {
    SoftwareTpm::start().unwrap()
}

fn source(tpm: &SoftwareTpm) -> TpmKeySource {
    tpm.key_source()
}

#[test]
fn seal_and_unseal_round_trip_and_tampering() {
    let tpm = start_swtpm();
    let src = source(&tpm);
    assert_eq!(src.get_random().unwrap().len(), 16);
    let (key, blob) = src.enroll("agent").unwrap();
    assert_eq!(src.recover(&blob).unwrap(), key);
    // A second enrollment gives another key.
    let (key2, blob2) = src.enroll("agent").unwrap();
    assert_ne!(key, key2);
    assert_eq!(src.recover(&blob2).unwrap(), key2);
    // The key is not in the blob.
    assert!(!blob.windows(32).any(|w| w == key.expose()));
    // Any flipped byte in the private area fails (integrity-protected by the TPM).
    let mut tampered = blob.clone();
    let last = tampered.len() - 5;
    tampered[last] ^= 0x01;
    assert!(src.unseal(&tampered).is_err());
    // Damaged framing is a typed error.
    assert!(matches!(
        src.unseal(&blob[..blob.len() - 1]),
        Err(HwError::BadBlob(_))
    ));
    let mut v = blob.clone();
    v[0] = 9;
    assert!(matches!(src.unseal(&v), Err(HwError::BadBlob(_))));
}

#[test]
fn a_blob_from_another_tpm_fails() {
    let a = start_swtpm();
    let b = start_swtpm();
    let (_, blob) = source(&a).enroll("agent").unwrap();
    let err = source(&b).unseal(&blob).unwrap_err();
    assert!(
        matches!(err, HwError::BadBlob(_) | HwError::Refused(_)),
        "{err}"
    );
}

#[test]
fn a_tpm_slot_unlocks_a_vault_profile() {
    let tpm = start_swtpm();
    let src: std::sync::Arc<dyn ExternalKeySource> = std::sync::Arc::new(source(&tpm));
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_store::Vault::open(dir.path().join("v.db")).unwrap();
    let mut s = vault
        .create_profile("agent", vault_store::Enrollment::External(src.clone()))
        .unwrap();
    let id = s
        .store(vault_store::MemoryInput::text("sealed by the TPM"))
        .unwrap();
    s.close().unwrap();
    let mut s = vault
        .unlock("agent", vault_store::KeySource::external(src))
        .unwrap();
    let m = s
        .recall(id, vault_store::RecallRequest::new("test"))
        .unwrap();
    assert_eq!(m.text().unwrap(), "sealed by the TPM");
}
