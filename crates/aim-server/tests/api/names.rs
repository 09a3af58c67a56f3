//! Issue 10, point 8: members choose agent names, so names must not select agents for policies,
//! and a name must not pass for another (normalisation, invisible and bidi characters, mixed
//! scripts, confusable look-alikes).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Harness, Reply};

async fn register_named(h: &Harness, name: &str) -> Reply {
    h.send(
        Method::POST,
        "/api/v1/public/agents/register",
        &[("x-aim-api-key", h.registration_key.clone())],
        Some(serde_json::to_vec(&json!({ "name": name })).unwrap()),
    )
    .await
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

/// A member registered `trusted-x-evil` and matched an admin's `allow deploy_* for trusted-*`.
/// Policies now select by id or admin-set label; a name pattern is refused on create, and one
/// stored before (legacy) never allows.
#[tokio::test]
async fn a_member_cannot_name_an_agent_into_an_admins_allow_policy() {
    let h = Harness::start().await;
    let trusted = h.register("trusted-deployer").await;
    let member = h.key_with_role("dev@acme.test", "member").await;
    let evil = h.register_with("trusted-x-evil", &member).await;
    // A name pattern is refused, with what to use instead.
    let (s, e) = h
        .admin(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"name": "deployers", "action": "deploy_*", "agent": "trusted-*", "effect": "allow"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(error(&e).contains("label:"), "{e}");
    // Labels are admin-only.
    let labels = |id: &str| format!("/api/v1/agents/{id}/labels");
    let (s, e) = h
        .call(
            Method::PUT,
            &labels(&evil.id),
            &member,
            Some(json!({"labels": ["trusted"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, a) = h
        .admin(
            Method::PUT,
            &labels(&trusted.id),
            Some(json!({"labels": ["trusted"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["labels"], json!(["trusted"]));
    let (s, p) = h
        .admin(
            Method::POST,
            "/api/v1/policies",
            Some(json!({"name": "deployers", "action": "deploy_*", "agent": "label:trusted", "effect": "allow", "min_trust": 0.1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, v) = h.verify(&trusted, "deploy_prod", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = h.verify(&evil, "deploy_prod", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A name-pattern allow policy stored by an earlier version (written to the database as the
    // old server did) is shown as legacy and no longer allows; a legacy deny still denies.
    insert_legacy_policy(&h, "old-deployers", "trusted-*", "allow", 50).await;
    let (s, v) = h.verify(&evil, "deploy_prod", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, p) = h
        .admin(Method::GET, "/api/v1/policies/old-deployers", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["legacy_name_pattern"], true, "{p}");
    insert_legacy_policy(&h, "old-blocklist", "trusted-d*", "deny", 60).await;
    let (s, v) = h.verify(&trusted, "deploy_prod", None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    h.stop().await;
}

async fn insert_legacy_policy(h: &Harness, name: &str, agent: &str, effect: &str, prio: i64) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(h.config.database_path())
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO policies (id, organization_id, name, description, priority, action_pattern, \
         resource_pattern, agent_pattern, effect, min_trust, below_min_trust, enabled, created_by, \
         created_at, updated_at) SELECT ?, id, ?, '', ?, 'deploy_*', '*', ?, ?, 0.1, 'deny', 1, \
         'legacy', 0, 0 FROM organizations",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(name)
    .bind(prio)
    .bind(agent)
    .bind(effect)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("UPDATE organizations SET config_version = config_version + 1")
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Look-alike names are refused with a clear error; names stay unique per organization only.
#[tokio::test]
async fn look_alike_and_invisible_names_are_refused() {
    let h = Harness::start().await;
    h.register("trusted-bot").await;
    h.register("monitor").await;
    for (name, status, needle) in [
        ("trusted-b\u{043E}t", StatusCode::BAD_REQUEST, "mix scripts"),
        (
            "Trusted-Bot",
            StatusCode::CONFLICT,
            "looks like the existing agent 'trusted-bot'",
        ),
        ("trusted\u{200B}-bot", StatusCode::BAD_REQUEST, "invisible"),
        (
            "trusted-bot\u{202E}",
            StatusCode::BAD_REQUEST,
            "bidirectional",
        ),
        ("\u{FF54}rusted-bot", StatusCode::BAD_REQUEST, "NFKC"),
        (
            "rnonitor",
            StatusCode::CONFLICT,
            "looks like the existing agent 'monitor'",
        ),
        ("trusted-bot", StatusCode::CONFLICT, "already exists"),
    ] {
        let (s, e) = register_named(&h, name).await;
        assert_eq!(s, status, "{name:?}: {e}");
        assert!(error(&e).contains(needle), "{name:?}: {e}");
    }
    // Distinct names in other scripts are fine, and another organization may reuse a name.
    let (s, e) = register_named(&h, "агент-поддержки").await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let (_, other_admin) = h.other_org().await;
    let (s, e) = h
        .send(
            Method::POST,
            "/api/v1/public/agents/register",
            &[("x-aim-api-key", other_admin)],
            Some(serde_json::to_vec(&json!({ "name": "Trusted-Bot" })).unwrap()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    h.stop().await;
}
