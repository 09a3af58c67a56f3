//! The client against the REAL AIM server on a loopback port (see `common`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aim_client::{
    ActionRequest, AimClient, CapabilityReport, CredentialStore, Error, KeyProtection, SecretBytes,
};
use serde_json::json;

#[tokio::test]
async fn secure_registers_once_stores_encrypted_and_reloads() {
    let env = common::start();
    let first = AimClient::secure_with("billing-bot", env.config())
        .await
        .unwrap();
    let id = first.agent_id().to_owned();

    // The server holds our locally generated public key.
    let agent = env.admin.get_agent("billing-bot").await.unwrap();
    assert_eq!(agent["id"], id.as_str());
    assert_eq!(
        agent["public_key"],
        first.identity().public_key_b64().as_str()
    );

    // The credential file: 0600 in a 0700 directory, no private key in clear.
    let path = env.home.path().join("agents/billing-bot.json");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&env.home.path().join("agents")), 0o700);
    let text = std::fs::read_to_string(&path).unwrap();
    let private = first.identity().keypair().private_key_b64();
    assert!(!text.contains(private.as_str()));
    assert!(text.contains("argon2id-aes256gcm"));

    // Second call loads: same id, and the server still has exactly one agent of that name.
    let second = AimClient::secure_with("billing-bot", env.config())
        .await
        .unwrap();
    assert_eq!(second.agent_id(), id);
    let all = env.admin.list_agents().await.unwrap();
    let named: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "billing-bot")
        .collect();
    assert_eq!(named.len(), 1);
    // The reloaded identity signs requests the server accepts.
    env.grant("billing-bot", "read_database").await;
    second
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap();

    // A wrong passphrase fails with a credential error and does not re-register.
    let wrong = env
        .config()
        .with_key_protection(KeyProtection::Passphrase(SecretBytes::from(
            "nope".to_owned(),
        )));
    let err = AimClient::secure_with("billing-bot", wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Credentials(ref m) if m.contains("wrong passphrase")),
        "{err}"
    );
    let store = CredentialStore::new(env.home.path(), env.config().kdf_params);
    assert_eq!(store.list().unwrap(), vec!["billing-bot".to_string()]);
}

#[tokio::test]
async fn approved_runs_and_reports_denied_does_not_run() {
    let env = common::start();
    let client = env.agent("reader").await;
    env.grant("reader", "read_database").await;

    let runs = AtomicUsize::new(0);
    let rows = client
        .perform_action(
            "read_database",
            Some("customers"),
            json!({"limit": 10}),
            || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(42)
            },
        )
        .await
        .unwrap();
    assert_eq!(rows, 42);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // The outcome was recorded against the verification.
    let verifications = env
        .admin
        .get(&format!(
            "/api/v1/verifications?agent_id={}",
            client.agent_id()
        ))
        .await
        .unwrap();
    let v = &verifications["verifications"][0];
    assert_eq!(v["status"], "approved");
    assert_eq!(v["resource"], "customers");
    assert_eq!(v["result"], "success");

    // Denied: no capability. The reason is the server's, and the closure never runs.
    let err = client
        .perform_action("delete_file", Some("/etc/passwd"), json!({}), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(0)
        })
        .await
        .unwrap_err();
    match &err {
        Error::Denied {
            reason,
            verification_id,
        } => {
            assert!(reason.contains("no capability 'delete_file'"), "{reason}");
            assert!(verification_id.is_some());
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Reporting twice: the first result stands; a result for a denied verification conflicts.
    let first_id = verifications["verifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client
        .log_action_result(&first_id, false, None, Some("late"))
        .await
        .unwrap();
    let again = env.admin.verification(&first_id).await.unwrap();
    assert_eq!(again["result"], "success");
    if let Error::Denied {
        verification_id: Some(denied_id),
        ..
    } = &err
    {
        let conflict = client.log_action_result(denied_id, true, None, None).await;
        assert!(
            matches!(conflict, Err(Error::Http { status: 409, .. })),
            "{conflict:?}"
        );
    }

    // A failing action is reported as a failure with its error text.
    let out: Result<(), Error> = client
        .perform_action("read_database", None, json!(null), || async {
            Err(Error::Configuration("disk on fire".into()))
        })
        .await;
    assert!(out.is_err());
    let verifications = env
        .admin
        .get(&format!(
            "/api/v1/verifications?agent_id={}",
            client.agent_id()
        ))
        .await
        .unwrap();
    let latest = verifications["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["result"] == "failure")
        .expect("failure recorded");
    assert!(
        latest["result_error"]
            .as_str()
            .unwrap()
            .contains("disk on fire")
    );
}

#[tokio::test]
async fn pending_is_approved_by_a_person_while_the_client_polls() {
    let env = common::start();
    let client = env.agent("cleaner").await;
    env.grant("cleaner", "delete_file").await; // high risk: a person must approve
    let c = client.clone();
    let task = tokio::spawn(async move {
        c.verify_action(
            &ActionRequest::new("delete_file")
                .resource("/tmp/old")
                .timeout(Duration::from_secs(20)),
        )
        .await
    });
    let id = env.wait_pending("delete_file").await;
    env.admin
        .decide_verification(&id, "approve", "ticket 42")
        .await
        .unwrap();
    let approval = task.await.unwrap().unwrap();
    assert_eq!(approval.verification_id, id);
    assert_eq!(approval.approved_by.as_deref(), Some(common::ADMIN_EMAIL));
}

#[tokio::test]
async fn pending_denied_by_a_person_is_a_denial_with_the_reason() {
    let env = common::start();
    let client = env.agent("cleaner").await;
    env.grant("cleaner", "delete_file").await;
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let (c, r) = (client.clone(), runs.clone());
    let task = tokio::spawn(async move {
        c.perform_action("delete_file", Some("/tmp/old"), json!({}), || async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(())
        })
        .await
    });
    let id = env.wait_pending("delete_file").await;
    env.admin
        .decide_verification(&id, "deny", "not during the freeze")
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Denied { reason, .. } if reason.contains("not during the freeze")),
        "{err:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn pending_past_the_callers_deadline_times_out() {
    let env = common::start();
    let client = env.agent("cleaner").await;
    env.grant("cleaner", "delete_file").await;
    let started = std::time::Instant::now();
    let err = client
        .verify_action(&ActionRequest::new("delete_file").timeout(Duration::from_millis(400)))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    // Never sleeps past the deadline (allow for the final poll's round trip).
    assert!(waited < Duration::from_millis(1400), "{waited:?}");
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
}

#[tokio::test]
async fn a_pending_verification_that_expires_is_reported_as_expired() {
    let env = common::start_with(|c| c.pending_ttl = Duration::from_secs(1));
    let client = env.agent("cleaner").await;
    env.grant("cleaner", "delete_file").await;
    let err = client
        .verify_action(&ActionRequest::new("delete_file").timeout(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Expired { .. }), "{err:?}");
}

#[tokio::test]
async fn capability_requests_declarations_mcp_and_detections() {
    let env = common::start();
    let client = env.agent("explorer").await;

    // request_capability → pending request an admin approves → the action is approved.
    let req = client
        .request_capability("read_reports", "monthly revenue summary for finance")
        .await
        .unwrap();
    assert_eq!(req["status"], "pending");
    let short = client.request_capability("read_reports", "short").await;
    assert!(matches!(short, Err(Error::Configuration(_))));
    let requests = env
        .admin
        .capability_requests(Some("pending"))
        .await
        .unwrap();
    let id = requests[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(requests[0]["capability_type"], "read_reports");
    env.admin
        .decide_capability_request(&id, "approve", Some("ok"))
        .await
        .unwrap();
    client
        .verify_action(&ActionRequest::new("read_reports"))
        .await
        .unwrap();

    // report_capabilities declares; it does not grant.
    let summary = client
        .report_capabilities(&[CapabilityReport::new("delete_database")])
        .await
        .unwrap();
    assert_eq!((summary.recorded, summary.total), (1, 1));
    let caps = env.admin.capabilities("explorer").await.unwrap();
    assert!(
        caps["declared"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["capability"] == "delete_database")
    );
    assert!(
        !caps["granted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["capability"] == "delete_database")
    );
    let err = client
        .verify_action(&ActionRequest::new("delete_database"))
        .await
        .unwrap_err();
    assert!(err.is_denied(), "{err:?}");

    // register_mcp declares an MCP server.
    let mcp = client
        .register_mcp("filesystem", "manual", 100.0, json!({"source": "test"}))
        .await
        .unwrap();
    assert_eq!(mcp["success"], true);
    let servers = env
        .admin
        .get("/api/v1/agents/explorer/mcp-servers")
        .await
        .unwrap();
    assert!(
        servers["mcp_servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "filesystem" && s["declared"] == true)
    );

    // report_detections.
    let report = client
        .report_detections(&[json!({
            "mcpServer": "filesystem", "detectionMethod": "sdk_runtime", "confidence": 100.0,
            "details": {"call_count": 1}, "sdkVersion": aim_client::USER_AGENT,
            "timestamp": "2026-01-01T00:00:00+00:00"
        })])
        .await
        .unwrap();
    assert_eq!(report["detectionsProcessed"], 1);
}

#[tokio::test]
async fn suspended_agents_are_denied_and_admin_calls_round_trip() {
    let env = common::start();
    let client = env.agent("worker").await;
    env.grant("worker", "read_database").await;
    env.admin.agent_action("worker", "suspend").await.unwrap();
    let err = client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap_err();
    // The server refuses a suspended agent's signature with 403.
    assert!(
        matches!(
            err,
            Error::Authentication { status: 403, .. } | Error::Denied { .. }
        ),
        "{err:?}"
    );
    env.admin
        .agent_action("worker", "reactivate")
        .await
        .unwrap();
    client
        .verify_action(&ActionRequest::new("read_database"))
        .await
        .unwrap();
    let policy = env
        .admin
        .create_policy(
            &json!({"name": "no exports", "action_pattern": "export_*", "effect": "deny"}),
        )
        .await
        .unwrap();
    assert_eq!(policy["name"], "no exports");
    assert_eq!(
        env.admin
            .list_policies()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    env.admin.delete_policy("no exports").await.unwrap();
    let audit = env.admin.audit(Some("worker"), 50).await.unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"agent.suspended"), "{actions:?}");
}

#[tokio::test]
async fn tree_heads_are_witnessed_and_forks_refused() {
    use vault_audit::hash::leaf_hash;
    use vault_audit::proof::MemoryTree;
    use vault_audit::{PublishedHead, SignedTreeHead};

    let env = common::start();
    let client = env.agent("vault-owner").await;
    let keys = client.identity().keypair().clone();
    let tree = |prefix: &str| {
        MemoryTree::new(
            (0..8)
                .map(|i| leaf_hash(format!("{prefix}{i}").as_bytes()))
                .collect(),
        )
    };
    let published = |t: &MemoryTree, size: u64, from: Option<u64>, seq: u64| {
        let head = SignedTreeHead::sign(
            &keys,
            seq,
            size,
            t.root(size).unwrap(),
            1_761_317_061_000 + seq as i64,
        );
        serde_json::to_value(PublishedHead {
            version: 1,
            head,
            consistency: from.map(|old| t.consistency_proof(old, size).unwrap()),
        })
        .unwrap()
    };
    let good = tree("event-");
    let receipt = client
        .publish_tree_head(&published(&good, 3, None, 1), None)
        .await
        .unwrap();
    assert_eq!(receipt["tree_size"], 3);
    let receipt = client
        .publish_tree_head(&published(&good, 5, Some(3), 2), None)
        .await
        .unwrap();
    assert_eq!(receipt["tree_size"], 5);
    // A rewritten log (different leaves) at a held size is a fork: refused.
    let forged = tree("forged-");
    let err = client
        .publish_tree_head(&published(&forged, 5, None, 3), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 409, .. }), "{err:?}");
    // Named logs are separate.
    client
        .publish_tree_head(&published(&forged, 2, None, 1), Some("memories"))
        .await
        .unwrap();
    assert!(
        client
            .publish_tree_head(&published(&forged, 2, None, 1), Some("../x"))
            .await
            .is_err()
    );
}
