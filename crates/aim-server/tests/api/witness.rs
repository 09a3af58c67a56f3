//! The server as a witness of agents' signed tree heads: extensions accepted with consistency
//! proofs, forks and rewrites refused (forks raise an alert).

use aim_crypto::AgentKeypair;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vault_audit::hash::leaf_hash;
use vault_audit::proof::MemoryTree;
use vault_audit::{PublishedHead, SignedTreeHead};

use crate::harness::Harness;

fn tree(prefix: &str, n: usize) -> MemoryTree {
    MemoryTree::new(
        (0..n)
            .map(|i| leaf_hash(format!("{prefix}{i}").as_bytes()))
            .collect(),
    )
}

fn published(
    signer: &AgentKeypair,
    t: &MemoryTree,
    size: u64,
    from: Option<u64>,
    seq: u64,
) -> Value {
    let head = SignedTreeHead::sign(
        signer,
        seq,
        size,
        t.root(size).unwrap(),
        1_761_317_061_000 + seq as i64,
    );
    let consistency = from.map(|old| t.consistency_proof(old, size).unwrap());
    serde_json::to_value(PublishedHead {
        version: 1,
        head,
        consistency,
    })
    .unwrap()
}

#[tokio::test]
async fn heads_must_extend_what_the_witness_holds() {
    let h = Harness::start().await;
    let a = h.register("vault-owner").await;
    let path = format!("/api/v1/agents/{}/tree-heads", a.id);
    let good = tree("event-", 8);
    // First head: no proof needed.
    let (s, r) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &good, 3, None, 1)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["tree_size"], 3);
    assert_eq!(r["duplicate"], false);
    assert_eq!(r["witness"], h.url);
    // The same head again: duplicate.
    let (s, r) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &good, 3, None, 1)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["duplicate"], true);
    // An extension with its consistency proof.
    let (s, r) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &good, 5, Some(3), 2)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    // Without a proof, with a proof from the wrong size, or a proof that does not verify: 409.
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &good, 8, None, 3)),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("consistency proof"),
        "{e}"
    );
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &good, 8, Some(3), 3)),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let rewritten = tree("rewritten-", 8);
    let mut forged = published(&a.keys, &rewritten, 8, Some(5), 3);
    forged["consistency"] = serde_json::to_value(good.consistency_proof(5, 8).unwrap()).unwrap();
    let (s, e) = h.as_agent(&a, Method::POST, &path, Some(forged)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("rewritten"), "{e}");
    // Stale: smaller than the latest held.
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &good, 4, None, 9)),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["error"].as_str().unwrap().contains("older"), "{e}");
    // None of the refused heads was stored; no alert for them.
    let (_, list) = h.admin(Method::GET, &path, None).await;
    let sizes: Vec<u64> = list["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["tree_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [3, 5]);
    let (_, alerts) = h.admin(Method::GET, "/api/v1/alerts", None).await;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 0);
    // A fork: same size, different root. Refused, reported, alerted.
    let forked = tree("forked-", 8);
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &forked, 5, None, 2)),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(e["error"].as_str().unwrap().contains("fork"), "{e}");
    let (_, alerts) = h.admin(Method::GET, "/api/v1/alerts", None).await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert_type"], "tree_head_fork");
    assert_eq!(alerts[0]["severity"], "critical");
    let (_, log) = h
        .admin(
            Method::GET,
            "/api/v1/audit-logs?action=tree_head.rejected",
            None,
        )
        .await;
    let fork_entry = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["fork"] == true)
        .unwrap()
        .clone();
    assert!(
        fork_entry["details"]["presented_head"]["signature"].is_string(),
        "the fork evidence is kept"
    );
    // Logs are separate.
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("{path}/second"),
            Some(published(&a.keys, &forked, 5, None, 1)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("{path}/bad%2Fname"),
            Some(published(&a.keys, &forked, 5, None, 1)),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test]
async fn head_keys_signatures_and_callers() {
    let h = Harness::start().await;
    let a = h.register("signer").await;
    let b = h.register("other").await;
    let path = format!("/api/v1/agents/{}/tree-heads", a.id);
    let t = tree("e", 4);
    // A key the agent never declared.
    let vault_key = AgentKeypair::generate().unwrap();
    let (s, e) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&vault_key, &t, 2, None, 1)),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, k) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("/api/v1/agents/{}/tree-head-keys", a.id),
            Some(json!({"public_key": vault_key.public_key().to_b64()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&vault_key, &t, 2, None, 1)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A bad head signature or key id: 400.
    let mut bad = published(&a.keys, &t, 4, Some(2), 2);
    bad["head"]["timestamp_ms"] = json!(1);
    let (s, e) = h.as_agent(&a, Method::POST, &path, Some(bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let mut bad = published(&a.keys, &t, 4, Some(2), 2);
    bad["head"]["key_id"] = json!("0000000000000000");
    let (s, _) = h.as_agent(&a, Method::POST, &path, Some(bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let mut bad = published(&a.keys, &t, 4, Some(2), 2);
    bad["extra"] = json!(1);
    let (s, _) = h.as_agent(&a, Method::POST, &path, Some(bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Only the agent itself publishes: not another agent, not a person.
    let (s, _) = h
        .as_agent(
            &b,
            Method::POST,
            &path,
            Some(published(&b.keys, &t, 4, Some(2), 2)),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .admin(
            Method::POST,
            &path,
            Some(published(&a.keys, &t, 4, Some(2), 2)),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, r) = h
        .as_agent(
            &a,
            Method::POST,
            &path,
            Some(published(&a.keys, &t, 4, Some(2), 2)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, list) = h.as_agent(&a, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["heads"].as_array().unwrap().len(), 2);
    assert!(list["heads"][1]["received_at"].is_string());
    h.stop().await;
}
