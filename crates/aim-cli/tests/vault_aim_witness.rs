//! `aim vault --aim-agent NAME --aim-witness`: signed heads are published to the REAL AIM
//! server's witness (loopback port); a file replaced by an older copy is caught by the server's
//! heads even when the witness file beside the vault was deleted too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

mod support;

use support::{ok, refused, start};

fn vault_cmd(home: &Path, server: &str, vault: &Path, key: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aim"));
    c.arg("vault")
        .arg("--vault")
        .arg(vault)
        .arg("--keyfile")
        .arg(key)
        .args(["--aim-agent", "vault-bot", "--aim-witness"])
        .args(args)
        .env("AIM_HOME", home)
        .env("AIM_SERVER", server)
        .env("AIM_PASSPHRASE", "cli test passphrase")
        .env("AIM_KDF", "argon2id$v=19$m=64,t=1,p=1")
        .env_remove("AIM_AGENT")
        .env_remove("AIM_API_KEY")
        .env_remove("AIM_API_KEY_FILE")
        .env_remove("AIM_CONFIG")
        .env_remove("AIM_VAULT")
        .env_remove("AIM_VAULT_WITNESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn the_aim_server_witness_catches_an_older_copy_of_the_file() {
    let s = start();
    s.run(&["agent", "register", "vault-bot"]);
    let home = s.home.path();
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("vault.db");
    let key = dir.path().join("agent.key");
    let run = |args: &[&str]| vault_cmd(home, &s.url, &v, &key, args).output().unwrap();
    ok(&Command::new(env!("CARGO_BIN_EXE_aim"))
        .args(["vault", "--vault"])
        .arg(&v)
        .arg("init")
        .output()
        .unwrap());
    ok(&Command::new(env!("CARGO_BIN_EXE_aim"))
        .args(["vault", "--vault"])
        .arg(&v)
        .args([
            "profile",
            "create",
            "agent",
            "--new-keyfile",
            "--with-keyfile",
        ])
        .arg(&key)
        .output()
        .unwrap());
    let content = dir.path().join("c.txt");
    std::fs::write(&content, "erase me").unwrap();
    let id = ok(&run(&["store", "--file", content.to_str().unwrap()]))
        .trim()
        .to_owned();
    let old = dir.path().join("old.db");
    std::fs::copy(&v, &old).unwrap();
    ok(&run(&["tombstone", &id]));
    let verified = ok(&run(&["verify"]));
    assert!(verified.contains("the AIM server's witness"), "{verified}");

    // The older copy, and the witness file beside the vault deleted as well.
    std::fs::copy(&old, &v).unwrap();
    std::fs::remove_file(vault_store::default_witness_path(&v)).unwrap();
    let o = run(&["recall", &id]);
    refused(&o, "the AIM server's witness");
    assert!(o.stdout.is_empty());
    refused(&run(&["verify"]), "older copy");
}
