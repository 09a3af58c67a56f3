//! Capabilities: granted and revoked by people (admin); agents only declare what they use and
//! request capabilities, which a person approves or rejects. An agent can never grant itself.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::agents::{addressed_agent, find_agent};
use super::util::{iso, iso_opt, limit, parse_body, parse_optional_body, parts, text_field};
use crate::audit;
use crate::auth::{Person, parse_uuid, require_independent_approver};
use crate::db::new_id;
use crate::decision::validate_pattern;
use crate::decision_cache;
use crate::error::{Error, Result, is_unique_violation};
use crate::model::{AgentStatus, RequestStatus, Role};
use crate::routes::ErrorBody;
use crate::state::AppState;

fn capability_name(raw: Option<String>) -> Result<String> {
    let c = raw
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::bad_request("`capability` (or `capability_type`) is required"))?;
    validate_pattern(&c).map_err(|e| Error::bad_request(format!("capability: {e}")))?;
    Ok(c)
}

/// A grant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantView {
    id: String,
    capability: String,
    granted_by: String,
    granted_at: String,
}

/// A declared capability.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeclaredView {
    capability: String,
    /// `registration` or `sdk_report`.
    source: String,
    declared_at: String,
}

/// An agent's capabilities.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CapabilitiesView {
    agent_id: String,
    agent_name: String,
    /// Granted by people: what the decision engine checks.
    granted: Vec<GrantView>,
    /// Declared by the agent: informational only.
    declared: Vec<DeclaredView>,
}

async fn capabilities_view(
    state: &AppState,
    agent_id: &str,
    agent_name: &str,
) -> Result<CapabilitiesView> {
    let grants = sqlx::query(
        "SELECT id, capability, granted_by, granted_at FROM capability_grants \
         WHERE agent_id = ? AND revoked_at IS NULL ORDER BY capability",
    )
    .bind(agent_id)
    .fetch_all(&state.db.read)
    .await?;
    let declared = sqlx::query(
        "SELECT capability, source, declared_at FROM agent_declared_capabilities WHERE agent_id = ? ORDER BY capability",
    )
    .bind(agent_id)
    .fetch_all(&state.db.read)
    .await?;
    Ok(CapabilitiesView {
        agent_id: agent_id.to_owned(),
        agent_name: agent_name.to_owned(),
        granted: grants
            .iter()
            .map(|r| {
                Ok(GrantView {
                    id: r.try_get(0)?,
                    capability: r.try_get(1)?,
                    granted_by: r.try_get(2)?,
                    granted_at: iso(r.try_get(3)?),
                })
            })
            .collect::<Result<_>>()?,
        declared: declared
            .iter()
            .map(|r| {
                Ok(DeclaredView {
                    capability: r.try_get(0)?,
                    source: r.try_get(1)?,
                    declared_at: iso(r.try_get(2)?),
                })
            })
            .collect::<Result<_>>()?,
    })
}

/// An agent's granted and declared capabilities: a person (any role) or the agent itself.
#[utoipa::path(get, path = "/api/v1/agents/{id}/capabilities", tag = "capabilities",
    params(("id" = String, Path, description = "Agent id or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Capabilities", body = CapabilitiesView),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn list_capabilities(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<CapabilitiesView>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    Ok(Json(
        capabilities_view(&state, &agent.id, &agent.name).await?,
    ))
}

/// A grant request.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct GrantInput {
    /// Capability: an action type or a `prefix*` wildcard.
    #[serde(default, alias = "capability_type", alias = "capabilityType")]
    capability: Option<String>,
    /// Why (audited).
    #[serde(default)]
    reason: Option<String>,
}

async fn grant(
    state: &AppState,
    person: &Person,
    agent_id: &str,
    agent_name: &str,
    capability: &str,
    reason: Option<String>,
    request_id: Option<String>,
) -> Result<String> {
    let now = state.now_ms();
    let id = new_id();
    let p = person.clone();
    let (aid, aname, cap, gid) = (
        agent_id.to_owned(),
        agent_name.to_owned(),
        capability.to_owned(),
        id.clone(),
    );
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                if let Some(rid) = &request_id {
                    let done = sqlx::query(
                        "UPDATE capability_requests SET status = 'approved', reviewed_by = ?, reviewed_at = ?, \
                         review_reason = ? WHERE id = ? AND organization_id = ? AND status = 'pending'",
                    )
                    .bind(&p.email)
                    .bind(now)
                    .bind(&reason)
                    .bind(rid)
                    .bind(&p.org_id)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(Error::conflict("the capability request is no longer pending"));
                    }
                }
                let inserted = sqlx::query(
                    "INSERT INTO capability_grants (id, organization_id, agent_id, capability, granted_by, granted_at) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&gid)
                .bind(&p.org_id)
                .bind(&aid)
                .bind(&cap)
                .bind(&p.email)
                .bind(now)
                .execute(&mut *conn)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::conflict(format!(
                            "agent '{aname}' already holds capability '{cap}'"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                decision_cache::bump_agent(conn, &aid).await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "capability.granted",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({
                            "capability": cap, "grant_id": gid, "reason": reason, "request_id": request_id,
                        }),
                    },
                )
                .await
            })
        })
        .await?;
    state.decisions.invalidate(agent_id);
    Ok(id)
}

/// Grant a capability to an agent (admin). Agents cannot call this: they request capabilities.
#[utoipa::path(post, path = "/api/v1/agents/{id}/capabilities", tag = "capabilities",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = GrantInput,
    security(("api_key" = [])),
    responses((status = 201, description = "Granted", body = CapabilitiesView),
              (status = 400, description = "Invalid capability", body = ErrorBody),
              (status = 403, description = "Not an admin, or an agent trying to grant itself", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody),
              (status = 409, description = "Already granted", body = ErrorBody)))]
pub(crate) async fn grant_capability(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Admin)
        .await?;
    let person = caller
        .require_person(
            Role::Admin,
            "grant capabilities (an agent may request one: POST /api/v1/sdk-api/agents/{id}/capability-requests)",
        )?
        .clone();
    let input: GrantInput = parse_body(&body)?;
    let capability = capability_name(input.capability)?;
    let reason = input
        .reason
        .map(|r| text_field(&r, "reason", 1000))
        .transpose()?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Admin).await?;
    grant(
        &state,
        &person,
        &agent.id,
        &agent.name,
        &capability,
        reason,
        None,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(capabilities_view(&state, &agent.id, &agent.name).await?),
    )
        .into_response())
}

/// Revoke a granted capability (admin).
#[utoipa::path(delete, path = "/api/v1/agents/{id}/capabilities/{capability}", tag = "capabilities",
    params(("id" = String, Path, description = "Agent id or name"),
           ("capability" = String, Path, description = "The granted capability (URL-encoded)")),
    security(("api_key" = [])),
    responses((status = 200, description = "Revoked", body = CapabilitiesView),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 404, description = "No such agent or grant", body = ErrorBody)))]
pub(crate) async fn revoke_capability(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((ident, capability)): Path<(String, String)>,
) -> Result<Json<CapabilitiesView>> {
    let person = state.person(&headers, Role::Admin).await?;
    let agent = super::agents::find_agent(&state.db.read, &person.org_id, &ident).await?;
    let now = state.now_ms();
    let (aid, aname, cap) = (agent.id.clone(), agent.name.clone(), capability.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE capability_grants SET revoked_at = ?, revoked_by = ? \
                     WHERE agent_id = ? AND capability = ? AND revoked_at IS NULL AND organization_id = ?",
                )
                .bind(now)
                .bind(&person.email)
                .bind(&aid)
                .bind(&cap)
                .bind(&person.org_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::not_found(format!(
                        "agent '{aname}' holds no capability '{cap}'"
                    )));
                }
                decision_cache::bump_agent(conn, &aid).await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &person.actor(),
                        action: "capability.revoked",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({ "capability": cap }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok(Json(
        capabilities_view(&state, &agent.id, &agent.name).await?,
    ))
}

/// A capability the agent reports using (the SDK's `report_capabilities`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct DeclareInput {
    /// The capability.
    #[serde(default, alias = "capabilityType", alias = "capability")]
    capability_type: Option<String>,
    /// Free-form scope (stored as JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    scope: Option<serde_json::Value>,
}

/// Answer to a declaration: recorded, not granted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Declared {
    agent_id: String,
    capability_type: String,
    /// Always `declared`.
    status: &'static str,
    /// Always false: declarations never grant.
    granted: bool,
    message: String,
}

/// Record a capability the agent says it uses. This never grants it: a person must grant it, or
/// the agent may request it.
#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/capabilities", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = DeclareInput,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 201, description = "Recorded as declared", body = Declared),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn declare_capability(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Response> {
    declare(state, method, uri, headers, ident, body).await
}

/// The PyPI SDKs' `register_capability` (called by `@perform_action`): recorded as declared,
/// exactly like `POST /api/v1/sdk-api/agents/{id}/capabilities`; never a grant.
#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/capabilities/register", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = DeclareInput,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 201, description = "Recorded as declared", body = Declared),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn register_capability(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Response> {
    declare(state, method, uri, headers, ident, body).await
}

/// Most capabilities one agent may declare (the registration limit, applied afterwards too).
const MAX_DECLARED_CAPABILITIES: i64 = 500;

async fn declare(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ident: String,
    body: Bytes,
) -> Result<Response> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Member).await?;
    let input: DeclareInput = parse_body(&body)?;
    let capability = capability_name(input.capability_type)?;
    let scope = input.scope.map(|s| s.to_string());
    if scope.as_ref().is_some_and(|s| s.len() > 16 * 1024) {
        return Err(Error::bad_request("scope is too large"));
    }
    let now = state.now_ms();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let (aid, org, cap) = (agent.id.clone(), agent.org_id.clone(), capability.clone());
    state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM agent_declared_capabilities WHERE agent_id = ? AND capability <> ?",
                )
                .bind(&aid)
                .bind(&cap)
                .fetch_one(&mut *conn)
                .await?;
                if others >= MAX_DECLARED_CAPABILITIES {
                    return Err(Error::conflict(format!(
                        "the agent already declares {others} capabilities (the limit, as at registration)"
                    )));
                }
                sqlx::query("DELETE FROM agent_declared_capabilities WHERE agent_id = ? AND capability = ?")
                    .bind(&aid)
                    .bind(&cap)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO agent_declared_capabilities (agent_id, capability, source, scope, declared_at) \
                     VALUES (?, ?, 'sdk_report', ?, ?)",
                )
                .bind(&aid)
                .bind(&cap)
                .bind(&scope)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "capability.declared",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({ "capability": cap }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Declared {
            agent_id: agent.id,
            message: format!(
                "recorded '{capability}' as declared; it is not granted. A person grants it with: aim capabilities grant {} {capability}",
                agent.name
            ),
            capability_type: capability,
            status: "declared",
            granted: false,
        }),
    )
        .into_response())
}

/// A capability request by an agent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RequestInput {
    /// The capability wanted.
    #[serde(default, alias = "capabilityType", alias = "capability")]
    capability_type: Option<String>,
    /// Why (at least 10 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// A capability request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RequestView {
    id: String,
    agent_id: String,
    agent_name: String,
    capability_type: String,
    reason: String,
    status: RequestStatus,
    requested_at: String,
    reviewed_by: Option<String>,
    reviewed_at: Option<String>,
    review_reason: Option<String>,
}

const REQUEST_COLUMNS: &str = "r.id, r.agent_id, a.name, r.capability, r.reason, r.status, r.requested_at, \
     r.reviewed_by, r.reviewed_at, r.review_reason";

fn request_view(r: &sqlx::sqlite::SqliteRow) -> Result<RequestView> {
    Ok(RequestView {
        id: r.try_get(0)?,
        agent_id: r.try_get(1)?,
        agent_name: r.try_get(2)?,
        capability_type: r.try_get(3)?,
        reason: r.try_get(4)?,
        status: RequestStatus::parse(r.try_get::<&str, _>(5)?)?,
        requested_at: iso(r.try_get(6)?),
        reviewed_by: r.try_get(7)?,
        reviewed_at: iso_opt(r.try_get(8)?),
        review_reason: r.try_get(9)?,
    })
}

async fn find_request(state: &AppState, org: &str, id: &str) -> Result<RequestView> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM capability_requests r JOIN agents a ON a.id = r.agent_id \
         WHERE r.id = ? AND r.organization_id = ?"
    )))
    .bind(id)
    .bind(org)
    .fetch_optional(&state.db.read)
    .await?
    .ok_or_else(|| Error::not_found(format!("no capability request {id} in this organization")))?;
    request_view(&row)
}

/// Request a capability (the SDK's `request_capability`); a person approves or rejects it.
#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/capability-requests", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = RequestInput,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 201, description = "Requested", body = RequestView),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody),
              (status = 409, description = "Already granted, a request for it is pending, or the agent has as many pending requests as allowed", body = ErrorBody)))]
pub(crate) async fn request_capability(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Member).await?;
    let input: RequestInput = parse_body(&body)?;
    let capability = capability_name(input.capability_type)?;
    let reason = text_field(input.reason.as_deref().unwrap_or(""), "reason", 2000)?;
    if reason.chars().count() < 10 {
        return Err(Error::bad_request("reason must be at least 10 characters"));
    }
    let now = state.now_ms();
    let id = new_id();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let max_open = i64::try_from(state.config.limits.max_open_capability_requests_per_agent)
        .unwrap_or(i64::MAX);
    let (rid, aid, aname, org, cap) = (
        id.clone(),
        agent.id.clone(),
        agent.name.clone(),
        agent.org_id.clone(),
        capability.clone(),
    );
    state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                let held: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM capability_grants WHERE agent_id = ? AND capability = ? AND revoked_at IS NULL",
                )
                .bind(&aid)
                .bind(&cap)
                .fetch_optional(&mut *conn)
                .await?;
                if held.is_some() {
                    return Err(Error::conflict(format!(
                        "capability '{cap}' is already granted to agent '{aname}'"
                    )));
                }
                let open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM capability_requests WHERE agent_id = ? AND status = 'pending'",
                )
                .bind(&aid)
                .fetch_one(&mut *conn)
                .await?;
                if open >= max_open {
                    return Err(Error::conflict(format!(
                        "agent '{aname}' already has {open} pending capability requests (the limit); \
                         wait until a person approves or rejects them"
                    )));
                }
                let inserted = sqlx::query(
                    "INSERT INTO capability_requests (id, organization_id, agent_id, capability, reason, status, requested_at) \
                     VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                )
                .bind(&rid)
                .bind(&org)
                .bind(&aid)
                .bind(&cap)
                .bind(&reason)
                .bind(now)
                .execute(&mut *conn)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::conflict(format!(
                            "a request for capability '{cap}' is already pending"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "capability.requested",
                        target_type: "capability_request",
                        target_id: Some(&rid),
                        details: serde_json::json!({ "agent_id": aid, "capability": cap, "reason": reason }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(find_request(&state, &agent.org_id, &id).await?),
    )
        .into_response())
}

/// A page of capability requests: `limit` (1–1000, default 100) and the `before` cursor of the
/// previous page's `next_before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub(crate) struct RequestPage {
    /// `pending`, `approved` or `rejected`.
    status: Option<String>,
    /// Only this agent (organization list only; id or name).
    agent_id: Option<String>,
    /// 1–1000, default 100.
    limit: Option<i64>,
    /// `next_before` of the previous page.
    before: Option<String>,
}

/// Capability requests, newest first, one page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RequestList {
    requests: Vec<RequestView>,
    /// Pass as `before` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
}

/// Parses a `before` cursor: `<requested_at ms>.<request id>`.
fn parse_cursor(cursor: Option<&str>) -> Result<Option<(i64, String)>> {
    let Some(c) = cursor else { return Ok(None) };
    let bad = || Error::bad_request("`before` must be a `next_before` value from a previous page");
    let (at, id) = c.split_once('.').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let id = parse_uuid(id, "before").map_err(|_| bad())?;
    Ok(Some((at, id)))
}

/// One page of requests matching `scope_sql` (`r.organization_id = ?` or `r.agent_id = ?`).
async fn request_page(
    state: &AppState,
    scope_sql: &str,
    scope: &str,
    agent: Option<&str>,
    q: &RequestPage,
) -> Result<RequestList> {
    let status = q.status.as_deref().map(RequestStatus::parse).transpose()?;
    let status = status.map(RequestStatus::as_str);
    let limit = limit(q.limit, 100)?;
    let cursor = parse_cursor(q.before.as_deref())?;
    let (before_at, before_id) = cursor.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM capability_requests r JOIN agents a ON a.id = r.agent_id \
         WHERE {scope_sql} AND (? IS NULL OR r.status = ?) AND (? IS NULL OR r.agent_id = ?) \
         AND (? IS NULL OR r.requested_at < ? OR (r.requested_at = ? AND r.id < ?)) \
         ORDER BY r.requested_at DESC, r.id DESC LIMIT ?"
    )))
    .bind(scope)
    .bind(status)
    .bind(status)
    .bind(agent)
    .bind(agent)
    .bind(before_at)
    .bind(before_at)
    .bind(before_at)
    .bind(&before_id)
    .bind(limit + 1)
    .fetch_all(&state.db.read)
    .await?;
    let mut requests: Vec<RequestView> = rows.iter().map(request_view).collect::<Result<_>>()?;
    let mut next_before = None;
    if requests.len() as i64 > limit {
        requests.truncate(usize::try_from(limit).unwrap_or(0));
        if let Some(last) = rows.get(requests.len() - 1) {
            let at: i64 = last.try_get(6)?;
            let id: String = last.try_get(0)?;
            next_before = Some(format!("{at}.{id}"));
        }
    }
    Ok(RequestList {
        requests,
        next_before,
    })
}

/// An agent's own capability requests, newest first, paged (the agent or a person).
#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{id}/capability-requests", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name"), RequestPage),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Requests", body = RequestList),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn agent_requests(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    Query(q): Query<RequestPage>,
) -> Result<Json<RequestList>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    Ok(Json(
        request_page(&state, "r.agent_id = ?", &agent.id, None, &q).await?,
    ))
}

/// List capability requests of the organization, newest first, paged (any role). Filter by
/// `status` and `agent_id`; follow `next_before` for older pages.
#[utoipa::path(get, path = "/api/v1/capability-requests", tag = "capabilities",
    params(RequestPage),
    security(("api_key" = [])),
    responses((status = 200, description = "Requests", body = RequestList)))]
pub(crate) async fn list_requests(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RequestPage>,
) -> Result<Json<RequestList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let agent = match &q.agent_id {
        Some(a) => Some(find_agent(&state.db.read, &person.org_id, a).await?.id),
        None => None,
    };
    Ok(Json(
        request_page(
            &state,
            "r.organization_id = ?",
            &person.org_id,
            agent.as_deref(),
            &q,
        )
        .await?,
    ))
}

/// A review.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ReviewInput {
    /// Why (audited).
    #[serde(default)]
    reason: Option<String>,
}

/// Approve a capability request (admin, through a key that did not register the agent; the
/// agent must be `verified`): the capability is granted.
#[utoipa::path(post, path = "/api/v1/capability-requests/{id}/approve", tag = "capabilities",
    params(("id" = String, Path, description = "Request id (UUID)")),
    request_body(content = ReviewInput, description = "Optional reason"),
    security(("api_key" = [])),
    responses((status = 200, description = "Approved and granted", body = RequestView),
              (status = 403, description = "Not an admin, or the key registered this agent", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Not pending", body = ErrorBody)))]
pub(crate) async fn approve_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RequestView>> {
    let id = parse_uuid(&id, "request id")?;
    let person = state.person(&headers, Role::Admin).await?;
    let input: ReviewInput = parse_optional_body(&body)?;
    let reason = input
        .reason
        .map(|r| text_field(&r, "reason", 1000))
        .transpose()?;
    let req = find_request(&state, &person.org_id, &id).await?;
    if req.status != RequestStatus::Pending {
        return Err(Error::conflict(format!(
            "the request is {}, not pending",
            req.status
        )));
    }
    let (agent_status, registered_by): (String, Option<String>) = sqlx::query_as(
        "SELECT status, registered_by_key FROM agents WHERE id = ? AND organization_id = ?",
    )
    .bind(&req.agent_id)
    .bind(&person.org_id)
    .fetch_one(&state.db.read)
    .await?;
    require_independent_approver(&person, registered_by.as_deref(), "capability requests")?;
    if agent_status != AgentStatus::Verified.as_str() {
        return Err(Error::conflict(format!(
            "agent '{}' is {agent_status}; only a verified agent's requests can be approved",
            req.agent_name
        )));
    }
    grant(
        &state,
        &person,
        &req.agent_id,
        &req.agent_name,
        &req.capability_type,
        reason,
        Some(id.clone()),
    )
    .await?;
    Ok(Json(find_request(&state, &person.org_id, &id).await?))
}

/// Reject a capability request (admin).
#[utoipa::path(post, path = "/api/v1/capability-requests/{id}/reject", tag = "capabilities",
    params(("id" = String, Path, description = "Request id (UUID)")),
    request_body(content = ReviewInput, description = "Optional reason"),
    security(("api_key" = [])),
    responses((status = 200, description = "Rejected", body = RequestView),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Not pending", body = ErrorBody)))]
pub(crate) async fn reject_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RequestView>> {
    let id = parse_uuid(&id, "request id")?;
    let person = state.person(&headers, Role::Admin).await?;
    let input: ReviewInput = parse_optional_body(&body)?;
    let reason = input
        .reason
        .map(|r| text_field(&r, "reason", 1000))
        .transpose()?;
    let now = state.now_ms();
    let (rid, p) = (id.clone(), person.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE capability_requests SET status = 'rejected', reviewed_by = ?, reviewed_at = ?, review_reason = ? \
                     WHERE id = ? AND organization_id = ? AND status = 'pending'",
                )
                .bind(&p.email)
                .bind(now)
                .bind(&reason)
                .bind(&rid)
                .bind(&p.org_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<String> = sqlx::query_scalar(
                        "SELECT status FROM capability_requests WHERE id = ? AND organization_id = ?",
                    )
                    .bind(&rid)
                    .bind(&p.org_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    return Err(match exists {
                        None => Error::not_found(format!("no capability request {rid} in this organization")),
                        Some(s) => Error::conflict(format!("the request is {s}, not pending")),
                    });
                }
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "capability_request.rejected",
                        target_type: "capability_request",
                        target_id: Some(&rid),
                        details: serde_json::json!({ "reason": reason }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok(Json(find_request(&state, &person.org_id, &id).await?))
}
