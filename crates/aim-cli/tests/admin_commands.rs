//! `aim agent|approvals|capabilities|policies|audit` against the REAL server on a loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aim_client::{ActionRequest, AimClient, ClientConfig, KeyProtection, SecretBytes};

mod support;

use support::{aim, start};

#[test]
fn agent_capability_approval_policy_and_audit_commands() {
    let s = start();

    // The agent registers with a registration key (`aim key create --role registration`);
    // that key cannot read or approve anything.
    let registration = s.registration_key_file();
    let out = s.run_with_key(&registration, &["agent", "register", "cli-bot"]);
    assert!(out.contains("agent cli-bot ready"), "{out}");
    assert!(s.home.path().join("agents/cli-bot.json").exists());
    let refused = support::aim(
        s.home.path(),
        &[
            "agent",
            "list",
            "--server",
            &s.url,
            "--api-key-file",
            registration.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("registration"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Registering again loads the stored identity (same id).
    let first = s.json(&["agent", "register", "cli-bot"]);
    let again = s.json(&["agent", "register", "cli-bot"]);
    assert_eq!(first["agent_id"], again["agent_id"]);

    let agents = s.json(&["agent", "list"]);
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["name"], "cli-bot");
    let table = s.run(&["agent", "list"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("NAME") && header.contains("STATUS"));
    assert!(table.contains("verified"), "{table}");
    assert!(s.run(&["agent", "show", "cli-bot"]).contains("PUBLIC KEY"));
    let labelled = s.json(&["agent", "label", "cli-bot", "payments", "prod"]);
    assert_eq!(labelled["labels"], serde_json::json!(["payments", "prod"]));
    let keys = s.run(&["key", "list"]);
    assert!(
        keys.contains("registration") && keys.contains("ROLE"),
        "{keys}"
    );

    assert!(
        s.run(&["capabilities", "grant", "cli-bot", "delete_file"])
            .contains("granted delete_file to cli-bot")
    );

    // A high-risk action waits for a person; approve it from the CLI.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = ClientConfig::new(&s.url)
        .with_aim_home(s.home.path())
        .with_key_protection(KeyProtection::Passphrase(SecretBytes::from(
            "cli test passphrase".to_owned(),
        )));
    config.kdf_params = aim_client::Argon2Params::new(64, 1, 1).unwrap();
    config.poll.initial = Duration::from_millis(100);
    let agent = rt
        .block_on(AimClient::secure_with("cli-bot", config))
        .unwrap();
    let pending = rt.spawn(async move {
        agent
            .verify_action(&ActionRequest::new("delete_file").timeout(Duration::from_secs(30)))
            .await
    });
    let id = (0..100)
        .find_map(|_| {
            let list = s.json(&["approvals", "list"]);
            let id = list.as_array().unwrap().first().map(|v| v["id"].clone());
            if id.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            id
        })
        .expect("a pending verification");
    let id = id.as_str().unwrap().to_owned();
    assert!(
        s.run(&["approvals", "approve", &id, "--reason", "cleanup ok"])
            .contains("approved")
    );
    let approval = rt.block_on(pending).unwrap().unwrap();
    assert_eq!(approval.approved_by.as_deref(), Some("admin@acme.test"));

    assert!(
        s.run(&["capabilities", "revoke", "cli-bot", "delete_file"])
            .contains("revoked")
    );
    assert!(s.run(&["capabilities", "requests"]).contains("(none)"));

    s.run(&[
        "policies",
        "add",
        "--json-body",
        r#"{"name": "no exports", "action_pattern": "export_*", "effect": "deny"}"#,
    ]);
    assert!(s.run(&["policies", "list"]).contains("no exports"));
    s.run(&[
        "policies",
        "update",
        "no exports",
        "--json-body",
        r#"{"enabled": false}"#,
    ]);
    assert_eq!(s.json(&["policies", "list"])[0]["enabled"], false);
    s.run(&["policies", "remove", "no exports"]);
    assert_eq!(s.json(&["policies", "list"]).as_array().unwrap().len(), 0);

    assert!(
        s.run(&["agent", "suspend", "cli-bot"])
            .contains("suspended")
    );
    let audit = s.json(&["audit", "--agent", "cli-bot", "--limit", "100"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in ["agent.registered", "capability.granted", "agent.suspended"] {
        assert!(
            actions.contains(&expected),
            "{expected} missing: {actions:?}"
        );
    }
    let all = s.json(&["audit", "--limit", "100"]);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "verification.approved_by_person"
                && e["target_id"] == id.as_str()),
        "{all}"
    );
    let table = s.run(&["audit", "--limit", "5"]);
    assert!(table.lines().next().unwrap().starts_with("TIME"), "{table}");
}

#[test]
fn clear_errors_for_an_unreachable_server_and_a_missing_key() {
    let home = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let key = home.path().join("k");
    std::fs::write(&key, "aim_live_x\n").unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let out = aim(
        home.path(),
        &[
            "agent",
            "list",
            "--server",
            &url,
            "--api-key-file",
            key.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("AIM server unreachable at {url}"))
            && err.contains("is `aim server` running?"),
        "{err}"
    );

    let out = aim(home.path(), &["approvals", "list", "--server", &url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no admin API key"), "{err}");
}
