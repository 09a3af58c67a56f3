//! `aim vault` with a profile sealed to a TPM: a real software TPM (`swtpm`) per test, reached
//! through `AIM_TPM_TCTI`. Another TPM (fresh state) cannot unlock the profile, and neither can
//! a passphrase.
#![cfg(feature = "tpm")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Output;

use vault_hw::swtpm::SoftwareTpm;

mod support;

use support::{ok, refused, vault_command};

/// `aim vault --vault V ARGS` against the TPM at `tcti`, with empty stdin.
fn aim(vault: &Path, tcti: &str, args: &[&str]) -> Output {
    vault_command(vault, args)
        .env("AIM_TPM_TCTI", tcti)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_profile_sealed_to_the_tpm_opens_only_with_that_tpm() {
    let tpm = SoftwareTpm::start().unwrap();
    let other = SoftwareTpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    let tcti = tpm.tcti();

    ok(&aim(&v, &tcti, &["init"]));
    let created = ok(&aim(
        &v,
        &tcti,
        &["profile", "create", "agent", "--with-tpm"],
    ));
    assert!(created.contains("sealed to the TPM"), "{created}");

    let content = dir.path().join("c.txt");
    std::fs::write(&content, "kept under the TPM").unwrap();
    let f = content.to_str().unwrap();
    let id = ok(&aim(&v, &tcti, &["store", "--file", f, "-c", "1", "--tpm"]))
        .trim()
        .to_string();
    assert_eq!(
        ok(&aim(&v, &tcti, &["recall", &id, "--tpm"])),
        "kept under the TPM"
    );

    // Another TPM cannot unseal the profile's key; a passphrase is not a key of this profile.
    let out = aim(&v, &other.tcti(), &["recall", &id, "--tpm"]);
    refused(&out, "this TPM cannot load the sealed key");
    assert!(out.stdout.is_empty());
    let out = aim(&v, &tcti, &["recall", &id, "--passphrase-fd", "0"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());

    // Rotation re-seals a new data key to the same TPM; the memory stays readable.
    ok(&aim(&v, &tcti, &["rotate", "--tpm"]));
    assert_eq!(
        ok(&aim(&v, &tcti, &["recall", &id, "--tpm"])),
        "kept under the TPM"
    );
}
