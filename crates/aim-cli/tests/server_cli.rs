//! `aim server` network-edge flags: plaintext on a public address is refused with the reason,
//! and limit flags are checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{aim, refused};

#[test]
fn plaintext_on_a_public_address_is_refused_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let out = aim(
        home.path(),
        &["server", "--data-dir", data, "--addr", "0.0.0.0:0"],
    );
    refused(&out, "without TLS");
    refused(&out, "--behind-proxy");
    // Half a TLS configuration is refused by the argument parser.
    let out = aim(
        home.path(),
        &[
            "server",
            "--data-dir",
            data,
            "--tls-cert",
            "/nonexistent.pem",
        ],
    );
    refused(&out, "--tls-key");
    // Unreadable certificate files are refused at start, naming the file.
    let out = aim(
        home.path(),
        &[
            "server",
            "--data-dir",
            data,
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent-cert.pem",
            "--tls-key",
            "/nonexistent-key.pem",
        ],
    );
    refused(&out, "/nonexistent-cert.pem");
}

#[test]
fn limit_flags_are_checked() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    for bad in ["0/5", "fast", "10/x"] {
        let out = aim(
            home.path(),
            &["server", "--data-dir", data, "--rate-per-agent", bad],
        );
        refused(&out, "rate");
    }
    let out = aim(
        home.path(),
        &["server", "--data-dir", data, "--metrics-token", "short"],
    );
    refused(&out, "at least 16 characters");
}
