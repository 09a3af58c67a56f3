//! `aim vault recall --aim-agent NAME`: a level-3 recall waits for a person's decision on the
//! REAL AIM server (loopback port); `aim approvals approve` lets it through, `aim approvals
//! deny` refuses it, and an automatic (non-person) approval, an unknown agent or an
//! unreachable server deny.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod support;

use support::{ok, refused, start};

const PASSPHRASE: &str = "cli test passphrase";
const KDF: &str = "argon2id$v=19$m=64,t=1,p=1";

/// `aim vault --vault V --keyfile K ARGS` as agent-side process (`AIM_HOME`, `AIM_SERVER`).
fn vault_cmd(home: &Path, server: &str, vault: &Path, key: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aim"));
    c.arg("vault")
        .arg("--vault")
        .arg(vault)
        .arg("--keyfile")
        .arg(key)
        .args(args)
        .env("AIM_HOME", home)
        .env("AIM_SERVER", server)
        .env("AIM_PASSPHRASE", PASSPHRASE)
        .env("AIM_KDF", KDF)
        .env_remove("AIM_AGENT")
        .env_remove("AIM_API_KEY")
        .env_remove("AIM_API_KEY_FILE")
        .env_remove("AIM_CONFIG")
        .env_remove("AIM_VAULT")
        .env_remove("AIM_DEGRADED_ALLOW")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn denied(o: &Output, reason: &str) {
    refused(o, reason);
    assert!(o.stdout.is_empty());
}

/// Waits for the pending verification of `vault_recall` on `memory`; returns its id.
fn pending_for(s: &support::Server, memory: &str, child: &mut Child) -> String {
    for _ in 0..300 {
        let list = s.json(&["approvals", "list"]);
        if let Some(v) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["action_type"] == "vault_recall" && v["resource"] == memory)
        {
            return v["id"].as_str().unwrap().to_owned();
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the recall ended ({status}) before a verification was pending: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no pending vault_recall verification for {memory}");
}

#[test]
fn level_3_recall_waits_for_a_person_on_the_aim_server() {
    let s = start();
    // The agent registers with a registration key; the admin's key approves (the key that
    // registered an agent can never approve its requests).
    let registration = s.registration_key_file();
    s.run_with_key(&registration, &["agent", "register", "vault-bot"]);
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
    std::fs::write(&content, "the incident runbook").unwrap();
    let id = ok(&run(&[
        "store",
        "-c",
        "3",
        "--file",
        content.to_str().unwrap(),
    ]))
    .trim()
    .to_owned();
    let recall = [
        "--aim-agent",
        "vault-bot",
        "recall",
        &id,
        "-j",
        "incident 42",
    ];

    // Without a policy the server approves `vault_recall` automatically or denies it (no
    // capability): neither is a person, so the recall is denied.
    denied(&run(&recall), "approval");

    // Recalls need a person.
    s.run(&[
        "policies",
        "add",
        "--json-body",
        r#"{"name": "vault recalls need a person", "action_pattern": "vault_recall", "effect": "require_approval"}"#,
    ]);

    // Held pending until the admin approves; then the content comes out.
    let mut child = vault_cmd(home, &s.url, &v, &key, &recall).spawn().unwrap();
    let vid = pending_for(&s, &id, &mut child);
    assert!(
        s.run(&["approvals", "approve", &vid, "--reason", "on call"])
            .contains("approved")
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(ok(&out), "the incident runbook");
    // The vault's audit log names the person and the verification.
    let verified = ok(&run(&["verify"]));
    assert!(verified.trim_end().ends_with("ok"), "{verified}");
    let vault = vault_store::Vault::open(&v).unwrap();
    let conn = vault.connection();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM audit_leaves", [], |r| r.get(0))
        .unwrap();
    let approvers: Vec<String> = (0..n)
        .filter_map(|i| {
            let data: Vec<u8> = conn
                .query_row("SELECT data FROM audit_leaves WHERE idx = ?1", [i], |r| {
                    r.get(0)
                })
                .unwrap();
            let ev = vault_store::Event::decode(&data).unwrap();
            (ev.kind == "memory.recall")
                .then(|| {
                    ev.get("approver")
                        .and_then(|a| a.as_str())
                        .map(str::to_owned)
                })
                .flatten()
        })
        .collect();
    assert!(
        approvers
            .iter()
            .any(|a| a.contains("admin@acme.test") && a.contains(&vid)),
        "{approvers:?}"
    );
    drop(vault);

    // A denial denies, with the person's reason.
    let mut child = vault_cmd(home, &s.url, &v, &key, &recall).spawn().unwrap();
    let vid = pending_for(&s, &id, &mut child);
    s.run(&[
        "approvals",
        "deny",
        &vid,
        "--reason",
        "not during the freeze",
    ]);
    denied(&child.wait_with_output().unwrap(), "not during the freeze");

    // An unknown agent, and an unreachable server, deny (fail closed).
    let mut unknown = recall;
    unknown[1] = "nobody";
    denied(&run(&unknown), "no stored identity for agent `nobody`");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let out = vault_cmd(home, &dead_url, &v, &key, &recall)
        .env("AIM_RETRIES", "1")
        .output()
        .unwrap();
    denied(&out, "approval");
}
