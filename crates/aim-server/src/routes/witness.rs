//! The server as an external witness of agents' audit-log tree heads (`docs/audit-log.md` §8):
//! it stores each agent's signed heads and refuses a head that does not extend what it holds.
//! A fork (two heads of one size with different roots) is refused and raises an alert.

use aim_crypto::AgentPublicKey;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};
use utoipa::ToSchema;
use vault_audit::witness::judge;
use vault_audit::{AuditError, PublishedHead, SignedTreeHead};

use super::agents::addressed_agent;
use super::util::{iso, parse_body, parts};
use crate::audit;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::model::Role;
use crate::routes::ErrorBody;
use crate::scores::{self, TrustEvent};
use crate::state::AppState;

/// The log of `/tree-heads` without a log name.
const DEFAULT_LOG: &str = "default";

fn log_id(log: &str) -> Result<String> {
    let log = log.to_owned();
    if log.is_empty()
        || log.len() > 100
        || !log
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::bad_request(
            "log must be 1 to 100 characters of letters, digits, `-`, `_` or `.`",
        ));
    }
    Ok(log)
}

fn to_b64(bytes: &[u8]) -> String {
    aim_crypto::b64::encode(bytes)
}

async fn held_heads(
    conn: &mut SqliteConnection,
    agent_id: &str,
    log: &str,
) -> Result<Vec<SignedTreeHead>> {
    let rows = sqlx::query(
        "SELECT seq, tree_size, root_hash, head_timestamp, key_id, public_key, signature FROM tree_heads \
         WHERE agent_id = ? AND log_id = ? ORDER BY tree_size",
    )
    .bind(agent_id)
    .bind(log)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let value = serde_json::json!({
                "seq": r.try_get::<i64, _>(0)?,
                "tree_size": r.try_get::<i64, _>(1)?,
                "root_hash": r.try_get::<String, _>(2)?,
                "timestamp_ms": r.try_get::<i64, _>(3)?,
                "key_id": r.try_get::<String, _>(4)?,
                "public_key": r.try_get::<String, _>(5)?,
                "signature": r.try_get::<String, _>(6)?,
            });
            serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored tree head unreadable: {e}")))
        })
        .collect()
}

/// The witness's receipt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Receipt {
    /// This server's URL.
    witness: String,
    agent_id: String,
    log: String,
    tree_size: u64,
    /// Hex root now held.
    root: String,
    /// True when this exact head was already held.
    duplicate: bool,
}

enum Outcome {
    Accepted(bool),
    Rejected(Error),
}

/// Publish a signed tree head of the agent's audit log (the agent itself, signed). Body: the
/// published-head JSON of `docs/audit-log.md` §8. The head must be signed by the agent's identity
/// key or a declared head key, and must extend the latest head held for this log (consistency
/// proof from that size). A different root at a size already held is a fork: 409 and an alert.
#[utoipa::path(post, path = "/api/v1/agents/{id}/tree-heads", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body(content = Object, description = "{version: 1, head: {...}, consistency: {old_size, new_size, path} | null}"),
    security(("agent_signature" = [])),
    responses((status = 201, description = "Accepted and stored", body = Receipt),
              (status = 200, description = "Already held (duplicate)", body = Receipt),
              (status = 400, description = "Malformed record or bad head signature", body = ErrorBody),
              (status = 403, description = "Not the agent, or a key the agent never declared", body = ErrorBody),
              (status = 409, description = "Fork, stale head, or no valid consistency proof", body = ErrorBody)))]
pub(crate) async fn publish_head(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Response> {
    publish(state, method, uri, headers, ident, DEFAULT_LOG, body).await
}

/// Same as `POST /api/v1/agents/{id}/tree-heads`, for a named log (one agent may keep several
/// audit logs). The log name is in the path so the request signature covers it.
#[utoipa::path(post, path = "/api/v1/agents/{id}/tree-heads/{log}", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name"),
           ("log" = String, Path, description = "Log name: 1–100 letters, digits, `-`, `_`, `.`")),
    request_body(content = Object, description = "{version: 1, head: {...}, consistency: {old_size, new_size, path} | null}"),
    security(("agent_signature" = [])),
    responses((status = 201, description = "Accepted and stored", body = Receipt),
              (status = 200, description = "Already held (duplicate)", body = Receipt),
              (status = 400, description = "Malformed record, bad log name or bad head signature", body = ErrorBody),
              (status = 403, description = "Not the agent, or a key the agent never declared", body = ErrorBody),
              (status = 409, description = "Fork, stale head, or no valid consistency proof", body = ErrorBody)))]
pub(crate) async fn publish_named_head(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((ident, log)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    publish(state, method, uri, headers, ident, &log, body).await
}

async fn publish(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ident: String,
    log: &str,
    body: Bytes,
) -> Result<Response> {
    let log = log_id(log)?;
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Admin)
        .await?;
    let Caller::Agent(agent_caller) = &caller else {
        return Err(Error::forbidden(
            "tree heads are published by the agent itself, with its request signature",
        ));
    };
    let agent = addressed_agent(&state, &caller, &ident, Role::Admin).await?;
    let record: PublishedHead = parse_body(&body)?;
    record
        .head
        .verify_signature()
        .map_err(|e| Error::bad_request(format!("invalid tree head: {e}")))?;
    if record.version != vault_audit::witness::PUBLISHED_HEAD_VERSION {
        return Err(Error::bad_request(
            "unknown published head version (expected 1)",
        ));
    }
    if i64::try_from(record.head.tree_size).is_err() || i64::try_from(record.head.seq).is_err() {
        return Err(Error::bad_request("tree_size and seq must fit in 63 bits"));
    }
    let head_key = record.head.public_key.to_b64();
    let now = state.now_ms();
    let identity = state.agent_keys(&agent.id).await?;
    let identity_keys: Vec<String> = identity.keys_at(now).into_iter().map(|k| k.text).collect();
    let replay = agent_caller.replay.clone();
    let (aid, aname, org, log2) = (
        agent.id.clone(),
        agent.name.clone(),
        agent.org_id.clone(),
        log.clone(),
    );
    let head = record.head.clone();
    let (size, root) = (record.head.tree_size, record.head.root);
    let outcome = state
        .db
        .writer
        .write_signed(Some(replay), move |conn| {
            Box::pin(async move {
                let declared: Option<String> = sqlx::query_scalar(
                    "SELECT public_key FROM tree_head_keys WHERE agent_id = ? AND public_key = ?",
                )
                .bind(&aid)
                .bind(&head_key)
                .fetch_optional(&mut *conn)
                .await?;
                if !identity_keys.contains(&head_key) && declared.is_none() {
                    return Err(Error::forbidden(format!(
                        "the head is signed by key {} which is neither agent '{aname}'s identity key nor a declared head key; \
                         declare it with POST /api/v1/agents/{{id}}/tree-head-keys",
                        record.head.key_id
                    )));
                }
                let held = held_heads(conn, &aid, &log2).await?;
                let verdict = judge(&held, &record);
                let target = format!("{aid}/{log2}");
                match verdict {
                    Ok(true) => Ok(Outcome::Accepted(true)),
                    Ok(false) => {
                        sqlx::query(
                            "INSERT INTO tree_heads (agent_id, log_id, tree_size, seq, root_hash, head_timestamp, key_id, \
                             public_key, signature, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        )
                        .bind(&aid)
                        .bind(&log2)
                        .bind(head.tree_size as i64)
                        .bind(head.seq as i64)
                        .bind(hex::encode(head.root))
                        .bind(head.time_ms)
                        .bind(&head.key_id)
                        .bind(&head_key)
                        .bind(to_b64(&head.signature.to_bytes()))
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        audit::record(
                            conn,
                            audit::Entry {
                                organization_id: &org,
                                at: now,
                                actor: &crate::audit::Actor::Agent { agent_id: aid.clone() },
                                action: "tree_head.accepted",
                                target_type: "tree_head",
                                target_id: Some(&target),
                                details: serde_json::json!({
                                    "tree_size": head.tree_size, "root": hex::encode(head.root), "key_id": head.key_id,
                                }),
                            },
                        )
                        .await?;
                        Ok(Outcome::Accepted(false))
                    }
                    Err(e) => {
                        let fork = matches!(e, AuditError::Fork { .. });
                        let message = e.to_string();
                        audit::record(
                            conn,
                            audit::Entry {
                                organization_id: &org,
                                at: now,
                                actor: &crate::audit::Actor::Agent { agent_id: aid.clone() },
                                action: "tree_head.rejected",
                                target_type: "tree_head",
                                target_id: Some(&target),
                                details: serde_json::json!({
                                    "tree_size": head.tree_size, "root": hex::encode(head.root),
                                    "fork": fork, "reason": message,
                                    "presented_head": serde_json::to_value(&head).unwrap_or_default(),
                                }),
                            },
                        )
                        .await?;
                        if fork {
                            scores::raise_alert(
                                conn,
                                &org,
                                &aid,
                                now,
                                "tree_head_fork",
                                "critical",
                                &format!("Audit log fork: agent '{aname}' log '{log2}' has two heads of size {}", head.tree_size),
                                &format!(
                                    "{message}. Both heads are signed; the held head and the presented head are in the audit log \
                                     (tree_head.rejected). The agent's audit log was forked or rewritten: investigate and suspend the agent."
                                ),
                                TrustEvent::Alert,
                            )
                            .await?;
                        }
                        let detail = match &e {
                            AuditError::Fork { .. } => format!("{message}; the log was forked (alert raised)"),
                            _ => message,
                        };
                        Ok(Outcome::Rejected(Error::conflict(detail)))
                    }
                }
            })
        })
        .await?;
    let duplicate = match outcome {
        Outcome::Rejected(e) => return Err(e),
        Outcome::Accepted(d) => d,
    };
    let receipt = Receipt {
        witness: state.public_url.clone(),
        agent_id: agent.id,
        log,
        tree_size: size,
        root: hex::encode(root),
        duplicate,
    };
    let code = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(receipt)).into_response())
}

/// Heads held for one log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeadList {
    agent_id: String,
    log: String,
    /// Signed tree heads (JSON of `docs/audit-log.md` §8), ascending size, each with
    /// `received_at`.
    #[schema(value_type = Vec<Object>)]
    heads: Vec<serde_json::Value>,
}

/// The heads held for an agent's log, ascending size (the agent, or a person of its
/// organization).
#[utoipa::path(get, path = "/api/v1/agents/{id}/tree-heads", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Heads", body = HeadList),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn list_heads(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<HeadList>> {
    heads(state, method, uri, headers, ident, DEFAULT_LOG).await
}

/// The heads held for a named log of the agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}/tree-heads/{log}", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name"), ("log" = String, Path, description = "Log name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Heads", body = HeadList),
              (status = 400, description = "Bad log name", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn list_named_heads(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((ident, log)): Path<(String, String)>,
) -> Result<Json<HeadList>> {
    heads(state, method, uri, headers, ident, &log).await
}

async fn heads(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ident: String,
    log: &str,
) -> Result<Json<HeadList>> {
    let log = log_id(log)?;
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    let mut conn = state.db.read.acquire().await?;
    let heads = held_heads(&mut conn, &agent.id, &log).await?;
    let received: Vec<i64> = sqlx::query_scalar(
        "SELECT received_at FROM tree_heads WHERE agent_id = ? AND log_id = ? ORDER BY tree_size",
    )
    .bind(&agent.id)
    .bind(&log)
    .fetch_all(&mut *conn)
    .await?;
    let heads = heads
        .iter()
        .zip(received)
        .map(|(h, at)| {
            let mut v = serde_json::to_value(h).unwrap_or_default();
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("received_at".into(), iso(at).into());
            }
            v
        })
        .collect();
    Ok(Json(HeadList {
        agent_id: agent.id,
        log,
        heads,
    }))
}

/// A head-signing key to declare.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct DeclareKey {
    /// Ed25519 public key, standard base64.
    public_key: String,
}

/// Declared head keys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeadKeys {
    agent_id: String,
    /// The identity key (always accepted) and declared keys.
    identity_key: String,
    declared: Vec<String>,
}

/// Declare an extra key that may sign the agent's tree heads (the agent itself, signed with its
/// identity key, or a member).
#[utoipa::path(post, path = "/api/v1/agents/{id}/tree-head-keys", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = DeclareKey,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Declared", body = HeadKeys),
              (status = 400, description = "Not a public key", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn declare_head_key(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<HeadKeys>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Member).await?;
    caller.require_current_key("declare signing keys")?;
    let req: DeclareKey = parse_body(&body)?;
    let key = AgentPublicKey::from_b64(req.public_key.trim())
        .map_err(|e| Error::bad_request(format!("public_key: {e}")))?
        .to_b64();
    let now = state.now_ms();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let (aid, org) = (agent.id.clone(), agent.org_id.clone());
    state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM tree_head_keys WHERE agent_id = ? AND public_key = ?")
                    .bind(&aid)
                    .bind(&key)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("INSERT INTO tree_head_keys (agent_id, public_key, declared_at) VALUES (?, ?, ?)")
                    .bind(&aid)
                    .bind(&key)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "tree_head_key.declared",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({ "public_key": key }),
                    },
                )
                .await
            })
        })
        .await?;
    let declared: Vec<String> = sqlx::query_scalar(
        "SELECT public_key FROM tree_head_keys WHERE agent_id = ? ORDER BY declared_at, public_key",
    )
    .bind(&agent.id)
    .fetch_all(&state.db.read)
    .await?;
    Ok(Json(HeadKeys {
        agent_id: agent.id,
        identity_key: agent.public_key,
        declared,
    }))
}
