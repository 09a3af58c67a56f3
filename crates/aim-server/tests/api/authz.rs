//! Authorization attacks (issue 10, points 1–5): an agent approving itself, a member taking an
//! agent over by rotating its key, the superseded key taking the identity back, suspension that
//! leaves approvals usable, and refused signed requests replayed later. Each test performs the
//! attack against the real server and fails if the defence is removed.

use std::time::Duration;

use aim_crypto::AgentKeypair;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Harness, Reply, TestAgent};

/// The audit entries with `action` that mention agent `agent_id`.
async fn audit(h: &Harness, action: &str, agent_id: &str) -> Vec<Value> {
    let (s, log) = h
        .admin(
            Method::GET,
            &format!("/api/v1/audit-logs?action={action}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains(agent_id))
        .cloned()
        .collect()
}

/// A pending `delete_database` verification of `agent` (granted, high risk: held for a person).
async fn pending_delete(h: &Harness, agent: &TestAgent) -> String {
    let (s, v) = h
        .verify(agent, "delete_database", Some("prod"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn grant(h: &Harness, agent: &TestAgent, cap: &str) {
    let (s, b) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/capabilities", agent.id),
            Some(json!({ "capability": cap })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn approve(h: &Harness, key: &str, vid: &str) -> Reply {
    h.call(
        Method::POST,
        &format!("/api/v1/verifications/{vid}/approve"),
        key,
        None,
    )
    .await
}

/// A signed request whose exact bytes can be sent again.
struct Signed {
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn signed(h: &Harness, agent: &TestAgent, path: &str, body: Value) -> Signed {
    let body = serde_json::to_vec(&body).unwrap();
    let headers = h.sign(agent, "POST", path, &body);
    Signed {
        path: path.to_owned(),
        headers,
        body,
    }
}

async fn send(h: &Harness, r: &Signed) -> Reply {
    h.send(Method::POST, &r.path, &r.headers, Some(r.body.clone()))
        .await
}

/// Point 1: the SDK's API-key mode puts a member key in the agent's process; with it the
/// agent asked for `delete_database` (202 pending) and approved it itself (200). The key that
/// registered an agent can no longer approve its verifications; a person's own key can.
#[tokio::test]
async fn an_agent_cannot_approve_its_own_verification_with_its_registration_key() {
    let h = Harness::start().await;
    let member = h.key_with_role("dev@acme.test", "member").await;
    let agent = h.register_with("self-approver", &member).await;
    grant(&h, &agent, "delete_database").await;
    let vid = pending_delete(&h, &agent).await;
    let (s, e) = approve(&h, &member, &vid).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("registered the agent"),
        "{e}"
    );
    let (_, v) = h
        .admin(Method::GET, &format!("/api/v1/verifications/{vid}"), None)
        .await;
    assert_eq!(v["status"], "pending", "{v}");
    // A person approving with a key of their own (here the admin's) is the intended path.
    let (s, v) = approve(&h, &h.admin_key, &vid).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    // Another member key (another person) may approve: approvals need a person, not an admin.
    let vid = pending_delete(&h, &agent).await;
    let reviewer = h.key_with_role("reviewer@acme.test", "member").await;
    let (s, v) = approve(&h, &reviewer, &vid).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    h.stop().await;
}

/// Point 1, capability requests: an admin key held by the agent's process cannot approve the
/// agent's own capability request either.
#[tokio::test]
async fn an_agent_cannot_approve_its_own_capability_request() {
    let h = Harness::start().await;
    let agent_admin = h.key_with_role("ops-bot@acme.test", "admin").await;
    let agent = h.register_with("escalator", &agent_admin).await;
    let (s, r) = h
        .as_agent(
            &agent,
            Method::POST,
            &format!("/api/v1/sdk-api/agents/{}/capability-requests", agent.id),
            Some(json!({ "capability_type": "execute_command", "reason": "needs to run the nightly job" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/capability-requests/{rid}/approve");
    let (s, e) = h.call(Method::POST, &path, &agent_admin, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, caps) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/capabilities", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!caps.to_string().contains("\"execute_command\""), "{caps}");
    let (s, r) = h.admin(Method::POST, &path, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    h.stop().await;
}

/// Point 1: a `registration` key registers agents and does nothing else: no reads, no
/// approvals, no grants, no other keys.
#[tokio::test]
async fn a_registration_key_registers_and_does_nothing_else() {
    let h = Harness::start().await;
    let agent = h.register("registered-by-key").await;
    grant(&h, &agent, "delete_database").await;
    let vid = pending_delete(&h, &agent).await;
    let key = h.registration_key.clone();
    let (s, e) = approve(&h, &key, &vid).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    for (method, path, body) in [
        (Method::GET, "/api/v1/agents".to_owned(), None),
        (Method::GET, format!("/api/v1/agents/{}", agent.id), None),
        (Method::GET, "/api/v1/verifications".to_owned(), None),
        (
            Method::POST,
            format!("/api/v1/agents/{}/capabilities", agent.id),
            Some(json!({ "capability": "execute_command" })),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({ "name": "escalate", "role": "member" })),
        ),
        (
            Method::POST,
            "/api/v1/agents".to_owned(),
            Some(json!({ "name": "via-person-route" })),
        ),
    ] {
        let (s, e) = h.call(method.clone(), &path, &key, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {e}");
    }
    // A user cannot be given the role, and a viewer cannot own a registration key.
    let (s, e) = h
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({ "email": "r@acme.test", "role": "registration" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let viewer = h.key_with_role("v@acme.test", "viewer").await;
    let (s, e) = h
        .call(
            Method::POST,
            "/api/v1/api-keys",
            &viewer,
            Some(json!({ "name": "reg", "role": "registration" })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    h.stop().await;
}

/// Point 2: a member rotated an agent's key to one the member holds and then acted as the agent
/// with the capabilities an admin granted it. Only an admin, or the agent with its current
/// key, rotates.
#[tokio::test]
async fn a_member_cannot_take_an_agent_over_by_rotating_its_key() {
    let h = Harness::start().await;
    let victim = h.agent_with("payments-bot", &["transfer_*"]).await;
    let member = h.key_with_role("mallory@acme.test", "member").await;
    let mallory_keys = AgentKeypair::generate().unwrap();
    let path = format!("/api/v1/agents/{}/keys", victim.id);
    let (s, e) = h
        .call(
            Method::POST,
            &path,
            &member,
            Some(json!({ "public_key": mallory_keys.public_key().to_b64(), "grace_seconds": 0 })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // Mallory's key does not speak for the agent; the agent's own key still does.
    let as_mallory = TestAgent {
        id: victim.id.clone(),
        name: victim.name.clone(),
        keys: mallory_keys,
    };
    let (s, _) = h
        .verify(&as_mallory, "transfer_funds", None, json!({}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = h.verify(&victim, "transfer_funds", None, json!({})).await;
    assert_ne!(s, StatusCode::UNAUTHORIZED, "{v}");
    // An admin may rotate.
    let fresh = AgentKeypair::generate().unwrap();
    let (s, r) = h
        .admin(
            Method::POST,
            &path,
            Some(json!({ "public_key": fresh.public_key().to_b64() })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    h.stop().await;
}

/// Point 3: after a rotation prompted by a leak, the thief holding the superseded key may
/// still sign ordinary requests during the grace period, but cannot rotate the key back or
/// register keys of its own.
#[tokio::test]
async fn the_superseded_key_cannot_take_the_identity_back() {
    let h = Harness::start().await;
    let mut agent = h.agent_with("leaky", &["read_*"]).await;
    let leaked = agent.keys.clone();
    let new = AgentKeypair::generate().unwrap();
    let path = format!("/api/v1/agents/{}/keys", agent.id);
    let (s, r) = h
        .as_agent(
            &agent,
            Method::POST,
            &path,
            Some(json!({ "public_key": new.public_key().to_b64(), "grace_seconds": 3600 })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    agent.keys = new;
    let thief = TestAgent {
        id: agent.id.clone(),
        name: agent.name.clone(),
        keys: leaked,
    };
    // Ordinary requests still verify with the old key during the grace period.
    let (s, r) = h
        .as_agent(
            &thief,
            Method::GET,
            &format!("/api/v1/agents/{}", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // Rotating (to a key the thief holds) is refused.
    let thief_next = AgentKeypair::generate().unwrap();
    let (s, e) = h
        .as_agent(
            &thief,
            Method::POST,
            &path,
            Some(json!({ "public_key": thief_next.public_key().to_b64(), "grace_seconds": 0 })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["error"].as_str().unwrap().contains("current key"), "{e}");
    // Registering a key (tree-head signing key) is refused.
    let (s, e) = h
        .as_agent(
            &thief,
            Method::POST,
            &format!("/api/v1/agents/{}/tree-head-keys", agent.id),
            Some(json!({ "public_key": thief_next.public_key().to_b64() })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // The agent, with its current key, still controls its identity.
    let (_, a) = h
        .admin(Method::GET, &format!("/api/v1/agents/{}", agent.id), None)
        .await;
    assert_eq!(a["public_key"], agent.keys.public_key().to_b64());
    let (s, r) = h
        .as_agent(
            &agent,
            Method::POST,
            &path,
            Some(json!({ "public_key": AgentKeypair::generate().unwrap().public_key().to_b64(), "grace_seconds": 0 })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    h.stop().await;
}

/// Point 4: suspending (or revoking) an agent left its pending verifications approvable and
/// its approvals valid. Suspension cancels the first and withdraws the second, audited; an
/// approval of a verification of an agent that is not `verified` is refused.
#[tokio::test]
async fn suspension_cancels_pending_verifications_and_withdraws_approvals() {
    let h = Harness::start().await;
    let agent = h
        .agent_with("suspect", &["read_file", "delete_database"])
        .await;
    let (s, approved) = h.verify(&agent, "read_file", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{approved}");
    let approved = approved["id"].as_str().unwrap().to_owned();
    let pending = pending_delete(&h, &agent).await;
    let (s, r) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/suspend", agent.id),
            Some(json!({ "reason": "odd behaviour" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, v) = h
        .admin(
            Method::GET,
            &format!("/api/v1/verifications/{pending}"),
            None,
        )
        .await;
    assert_eq!(v["status"], "denied", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("cancelled"), "{v}");
    let (_, v) = h
        .admin(
            Method::GET,
            &format!("/api/v1/verifications/{approved}"),
            None,
        )
        .await;
    assert_eq!(v["status"], "expired", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("withdrawn"), "{v}");
    assert_eq!(
        audit(&h, "verification.cancelled", &agent.id).await.len(),
        1
    );
    assert_eq!(
        audit(&h, "verification.approval_withdrawn", &agent.id)
            .await
            .len(),
        1
    );
    let (s, e) = approve(&h, &h.admin_key, &pending).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // A verification still pending for a suspended agent (written by another replica in the
    // same instant, simulated in the database) cannot be approved either.
    set_status(&h, &pending, "pending").await;
    let (s, e) = approve(&h, &h.admin_key, &pending).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("only a verified agent"),
        "{e}"
    );
    // Revocation does the same.
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/reactivate", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let again = pending_delete(&h, &agent).await;
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/revoke", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = approve(&h, &h.admin_key, &again).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    h.stop().await;
}

async fn set_status(h: &Harness, vid: &str, status: &str) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(h.config.database_path())
        .connect()
        .await
        .unwrap();
    sqlx::query("UPDATE verifications SET status = ? WHERE id = ?")
        .bind(status)
        .bind(vid)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Point 5: a signed write refused inside its transaction (capability already granted) took
/// its replay mark down with it; replayed after the state changed (grant revoked) it went
/// through. The signature is consumed when checked, whatever the outcome.
#[tokio::test]
async fn a_refused_signed_write_cannot_be_replayed_later() {
    let h = Harness::start().await;
    let agent = h.agent_with("replayer", &["send_email"]).await;
    let request = signed(
        &h,
        &agent,
        &format!("/api/v1/sdk-api/agents/{}/capability-requests", agent.id),
        json!({ "capability_type": "send_email", "reason": "weekly digest to the team" }),
    );
    let (s, e) = send(&h, &request).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, _) = h
        .admin(
            Method::DELETE,
            &format!("/api/v1/agents/{}/capabilities/send_email", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = send(&h, &request).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"], "replayed request");
    h.stop().await;
}

/// Point 5, refusals before any write: a request refused for the agent's state (suspended, or
/// signed with a superseded key) is consumed too, so it cannot be replayed once the state
/// changes back.
#[tokio::test]
async fn requests_refused_for_the_agents_state_cannot_be_replayed_later() {
    let h = Harness::start().await;
    let agent = h.agent_with("flip-flop", &["read_*"]).await;
    let key_path = format!("/api/v1/agents/{}/tree-head-keys", agent.id);
    let extra = AgentKeypair::generate().unwrap().public_key().to_b64();
    // Suspended: refused; after reactivation the same bytes are a replay.
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/suspend", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let request = signed(&h, &agent, &key_path, json!({ "public_key": extra }));
    let (s, e) = send(&h, &request).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/agents/{}/reactivate", agent.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = send(&h, &request).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"], "replayed request");
    // Superseded key: refused; after an admin rotates the key back, a replay.
    h.clock.advance(Duration::from_secs(1));
    let original = agent.keys.public_key().to_b64();
    let other = AgentKeypair::generate().unwrap().public_key().to_b64();
    let rotate = |key: String| json!({ "public_key": key, "grace_seconds": 3600 });
    let path = format!("/api/v1/agents/{}/keys", agent.id);
    let (s, r) = h.admin(Method::POST, &path, Some(rotate(other))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let request = signed(&h, &agent, &key_path, json!({ "public_key": extra }));
    let (s, e) = send(&h, &request).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, r) = h.admin(Method::POST, &path, Some(rotate(original))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, e) = send(&h, &request).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    assert_eq!(e["error"], "replayed request");
    h.stop().await;
}
