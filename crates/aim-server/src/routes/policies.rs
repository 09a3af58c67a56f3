//! Organization policies (ordered by priority; match on action, resource and agent; allow, deny
//! or require approval; optional minimum trust) and per-action risk levels. Reads: any role.
//! Changes: admin, audited.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use utoipa::ToSchema;

use super::util::{iso, label_field, name_field, parse_body, text_field};
use crate::audit;
use crate::db::new_id;
use crate::decision::{
    AgentSelector, DEFAULT_RISKS, FALLBACK_RISK, LABEL_SELECTOR, Policy, required_trust,
    validate_pattern,
};
use crate::decision_cache;
use crate::error::{Error, Result, is_unique_violation};
use crate::model::{BelowTrust, PolicyEffect, Risk, Role};
use crate::routes::ErrorBody;
use crate::state::AppState;

const POLICY_COLUMNS: &str = "id, name, description, priority, action_pattern, resource_pattern, agent_pattern, \
     effect, min_trust, below_min_trust, enabled, created_by, created_at, updated_at";

/// A policy as stored and shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PolicyView {
    id: String,
    name: String,
    description: String,
    /// Higher wins.
    priority: i64,
    /// Action pattern: exact, `prefix*` or `*`.
    action_pattern: String,
    /// Resource pattern (a missing resource matches only `*`).
    resource_pattern: String,
    /// Agent selector: `*`, an agent id, or `label:NAME`.
    agent_pattern: String,
    /// True for a name pattern stored before schema version 2: it no longer selects agents for
    /// `allow`, still does for `deny` and `require_approval`. Replace it with an id or label.
    legacy_name_pattern: bool,
    effect: PolicyEffect,
    /// Minimum trust for `allow` (default: the action's risk requirement).
    min_trust: Option<f64>,
    /// What happens below `min_trust`.
    below_min_trust: BelowTrust,
    enabled: bool,
    created_by: String,
    created_at: String,
    updated_at: String,
}

/// A stored selector that is neither `*`, a label nor an agent id: a name pattern.
fn is_legacy_selector(text: &str) -> bool {
    matches!(AgentSelector::parse(text), AgentSelector::Pattern(p) if uuid::Uuid::parse_str(p).is_err())
}

fn policy_view(row: &SqliteRow) -> Result<PolicyView> {
    Ok(PolicyView {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        priority: row.try_get(3)?,
        action_pattern: row.try_get(4)?,
        resource_pattern: row.try_get(5)?,
        legacy_name_pattern: is_legacy_selector(row.try_get(6)?),
        agent_pattern: row.try_get(6)?,
        effect: PolicyEffect::parse(row.try_get::<&str, _>(7)?)?,
        min_trust: row.try_get(8)?,
        below_min_trust: BelowTrust::parse(row.try_get::<&str, _>(9)?)?,
        enabled: row.try_get::<i64, _>(10)? != 0,
        created_by: row.try_get(11)?,
        created_at: iso(row.try_get(12)?),
        updated_at: iso(row.try_get(13)?),
    })
}

impl From<PolicyView> for Policy {
    fn from(v: PolicyView) -> Self {
        Policy {
            id: v.id,
            name: v.name,
            priority: v.priority,
            action_pattern: v.action_pattern,
            resource_pattern: v.resource_pattern,
            agent_pattern: v.agent_pattern,
            effect: v.effect,
            min_trust: v.min_trust,
            below_min_trust: v.below_min_trust,
            enabled: v.enabled,
        }
    }
}

/// A policy to create, or the fields to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct PolicyInput {
    /// Unique name in the organization (required on create).
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Higher wins (default 0).
    #[serde(default)]
    priority: Option<i64>,
    /// Action pattern (default `*`).
    #[serde(default, alias = "action")]
    action_pattern: Option<String>,
    /// Resource pattern (default `*`).
    #[serde(default, alias = "resource")]
    resource_pattern: Option<String>,
    /// Agent selector (default `*`): `*`, an agent id, or `label:NAME`. Name patterns are
    /// refused.
    #[serde(default, alias = "agent")]
    agent_pattern: Option<String>,
    /// `allow`, `deny` or `require_approval` (required on create).
    #[serde(default)]
    effect: Option<PolicyEffect>,
    /// Minimum trust (0–1) for `allow`; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    min_trust: Option<Option<f64>>,
    /// `deny` or `require_approval` (default) below `min_trust`.
    #[serde(default)]
    below_min_trust: Option<BelowTrust>,
    /// Default true.
    #[serde(default)]
    enabled: Option<bool>,
}

fn double_option<'de, D>(d: D) -> std::result::Result<Option<Option<f64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<f64>::deserialize(d).map(Some)
}

struct Checked {
    name: String,
    description: String,
    priority: i64,
    action: String,
    resource: String,
    agent: String,
    effect: PolicyEffect,
    min_trust: Option<f64>,
    below: BelowTrust,
    enabled: bool,
}

fn check_pattern(p: &str, what: &str) -> Result<String> {
    let p = p.trim().to_owned();
    validate_pattern(&p).map_err(|e| Error::bad_request(format!("{what}: {e}")))?;
    Ok(p)
}

/// An agent selector as given on create or update: `*`, an agent id, or `label:NAME`. Name
/// patterns are refused: members choose agent names, so a member could name an agent to fit an
/// admin's policy.
fn check_agent_selector(p: &str) -> Result<String> {
    let p = p.trim();
    if p == "*" {
        return Ok(p.to_owned());
    }
    if let Some(label) = p.strip_prefix(LABEL_SELECTOR) {
        return Ok(format!("{LABEL_SELECTOR}{}", label_field(label)?));
    }
    uuid::Uuid::parse_str(p)
        .map(|u| u.to_string())
        .map_err(|_| {
            Error::bad_request(format!(
                "agent_pattern `{p}`: policies select agents by id or label, not by name (members choose names): \
                 use `*`, an agent id, or `label:NAME` after labelling the agents (PUT /api/v1/agents/{{id}}/labels, admin)"
            ))
        })
}

fn merge(input: PolicyInput, base: Option<&PolicyView>) -> Result<Checked> {
    let name = match (input.name, base) {
        (Some(n), _) => name_field(&n, "name", 100)?,
        (None, Some(b)) => b.name.clone(),
        (None, None) => return Err(Error::bad_request("`name` is required")),
    };
    let effect = match (input.effect, base) {
        (Some(e), _) => e,
        (None, Some(b)) => b.effect,
        (None, None) => {
            return Err(Error::bad_request(
                "`effect` is required: allow, deny or require_approval",
            ));
        }
    };
    let min_trust = match (input.min_trust, base) {
        (Some(v), _) => v,
        (None, Some(b)) => b.min_trust,
        (None, None) => None,
    };
    if let Some(t) = min_trust
        && !(0.0..=1.0).contains(&t)
    {
        return Err(Error::bad_request("min_trust must be between 0 and 1"));
    }
    let priority = input.priority.or(base.map(|b| b.priority)).unwrap_or(0);
    if !(-1_000_000..=1_000_000).contains(&priority) {
        return Err(Error::bad_request(
            "priority must be between -1000000 and 1000000",
        ));
    }
    Ok(Checked {
        name,
        description: text_field(
            &input
                .description
                .or(base.map(|b| b.description.clone()))
                .unwrap_or_default(),
            "description",
            2000,
        )?,
        priority,
        action: check_pattern(
            &input
                .action_pattern
                .or(base.map(|b| b.action_pattern.clone()))
                .unwrap_or_else(|| "*".into()),
            "action_pattern",
        )?,
        resource: check_pattern(
            &input
                .resource_pattern
                .or(base.map(|b| b.resource_pattern.clone()))
                .unwrap_or_else(|| "*".into()),
            "resource_pattern",
        )?,
        agent: match input.agent_pattern {
            Some(p) => check_agent_selector(&p)?,
            // Unchanged, including a legacy name pattern (kept readable and editable).
            None => base.map_or_else(|| "*".to_owned(), |b| b.agent_pattern.clone()),
        },
        effect,
        min_trust,
        below: input
            .below_min_trust
            .or(base.map(|b| b.below_min_trust))
            .unwrap_or(BelowTrust::RequireApproval),
        enabled: input.enabled.or(base.map(|b| b.enabled)).unwrap_or(true),
    })
}

async fn find_policy(state: &AppState, org: &str, ident: &str) -> Result<PolicyView> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE organization_id = ? AND (id = ? OR name = ?)"
    )))
    .bind(org)
    .bind(ident)
    .bind(ident)
    .fetch_optional(&state.db.read)
    .await?
    .ok_or_else(|| Error::not_found(format!("no policy '{ident}' in this organization")))?;
    policy_view(&row)
}

/// The organization's policies.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyList {
    /// Highest priority first.
    policies: Vec<PolicyView>,
}

/// List policies, highest priority first (any role).
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    security(("api_key" = [])),
    responses((status = 200, description = "Policies", body = PolicyList),
              (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub(crate) async fn list_policies(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PolicyList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE organization_id = ? ORDER BY priority DESC, name"
    )))
    .bind(&person.org_id)
    .fetch_all(&state.db.read)
    .await?;
    Ok(Json(PolicyList {
        policies: rows.iter().map(policy_view).collect::<Result<_>>()?,
    }))
}

/// Get a policy by id or name (any role).
#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies",
    params(("id" = String, Path, description = "Policy id or name")),
    security(("api_key" = [])),
    responses((status = 200, description = "The policy", body = PolicyView),
              (status = 404, description = "No such policy", body = ErrorBody)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<PolicyView>> {
    let person = state.person(&headers, Role::Viewer).await?;
    Ok(Json(find_policy(&state, &person.org_id, &ident).await?))
}

async fn save_policy(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    existing: Option<String>,
) -> Result<PolicyView> {
    let person = state.person(headers, Role::Admin).await?;
    let input: PolicyInput = parse_body(body)?;
    let base = match &existing {
        Some(ident) => Some(find_policy(state, &person.org_id, ident).await?),
        None => None,
    };
    let c = merge(input, base.as_ref())?;
    let now = state.now_ms();
    let id = base.as_ref().map_or_else(new_id, |b| b.id.clone());
    let created = base.is_none();
    let org = person.org_id.clone();
    let pid = id.clone();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let result = if created {
                    sqlx::query(
                        "INSERT INTO policies (id, organization_id, name, description, priority, action_pattern, \
                         resource_pattern, agent_pattern, effect, min_trust, below_min_trust, enabled, created_by, \
                         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&pid)
                    .bind(&person.org_id)
                    .bind(&c.name)
                    .bind(&c.description)
                    .bind(c.priority)
                    .bind(&c.action)
                    .bind(&c.resource)
                    .bind(&c.agent)
                    .bind(c.effect.as_str())
                    .bind(c.min_trust)
                    .bind(c.below.as_str())
                    .bind(i64::from(c.enabled))
                    .bind(&person.email)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                } else {
                    sqlx::query(
                        "UPDATE policies SET name = ?, description = ?, priority = ?, action_pattern = ?, \
                         resource_pattern = ?, agent_pattern = ?, effect = ?, min_trust = ?, below_min_trust = ?, \
                         enabled = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    )
                    .bind(&c.name)
                    .bind(&c.description)
                    .bind(c.priority)
                    .bind(&c.action)
                    .bind(&c.resource)
                    .bind(&c.agent)
                    .bind(c.effect.as_str())
                    .bind(c.min_trust)
                    .bind(c.below.as_str())
                    .bind(i64::from(c.enabled))
                    .bind(now)
                    .bind(&pid)
                    .bind(&person.org_id)
                    .execute(&mut *conn)
                    .await
                };
                match result {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::conflict(format!(
                            "a policy named '{}' already exists",
                            c.name
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                decision_cache::bump_org(conn, &person.org_id).await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &person.actor(),
                        action: if created { "policy.created" } else { "policy.updated" },
                        target_type: "policy",
                        target_id: Some(&pid),
                        details: serde_json::json!({
                            "name": c.name, "priority": c.priority, "action_pattern": c.action,
                            "resource_pattern": c.resource, "agent_pattern": c.agent, "effect": c.effect,
                            "min_trust": c.min_trust, "below_min_trust": c.below, "enabled": c.enabled,
                        }),
                    },
                )
                .await
            })
        })
        .await?;
    state.decisions.clear();
    find_policy(state, &org, &id).await
}

/// Create a policy (admin).
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies",
    request_body = PolicyInput,
    security(("api_key" = [])),
    responses((status = 201, description = "Created", body = PolicyView),
              (status = 400, description = "Invalid policy", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn create_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let p = save_policy(&state, &headers, &body, None).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

/// Change a policy (admin); absent fields keep their values.
#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "policies",
    params(("id" = String, Path, description = "Policy id or name")),
    request_body = PolicyInput,
    security(("api_key" = [])),
    responses((status = 200, description = "Updated", body = PolicyView),
              (status = 400, description = "Invalid policy", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 404, description = "No such policy", body = ErrorBody)))]
pub(crate) async fn update_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<PolicyView>> {
    Ok(Json(
        save_policy(&state, &headers, &body, Some(ident)).await?,
    ))
}

/// Answer of a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deleted {
    id: String,
    deleted: bool,
}

/// Delete a policy (admin).
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies",
    params(("id" = String, Path, description = "Policy id or name")),
    security(("api_key" = [])),
    responses((status = 200, description = "Deleted", body = Deleted),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 404, description = "No such policy", body = ErrorBody)))]
pub(crate) async fn delete_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<Deleted>> {
    let person = state.person(&headers, Role::Admin).await?;
    let p = find_policy(&state, &person.org_id, &ident).await?;
    let now = state.now_ms();
    let id = p.id.clone();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM policies WHERE id = ? AND organization_id = ?")
                    .bind(&id)
                    .bind(&person.org_id)
                    .execute(&mut *conn)
                    .await?;
                decision_cache::bump_org(conn, &person.org_id).await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &person.actor(),
                        action: "policy.deleted",
                        target_type: "policy",
                        target_id: Some(&id),
                        details: serde_json::json!({ "name": p.name }),
                    },
                )
                .await
            })
        })
        .await?;
    state.decisions.clear();
    Ok(Json(Deleted {
        id: ident,
        deleted: true,
    }))
}

/// One risk rule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RiskRule {
    action_pattern: String,
    risk: Risk,
    /// Trust the risk requires.
    required_trust: f64,
}

/// Risk levels in effect.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RiskLevels {
    /// The organization's overrides (checked first; most specific pattern wins).
    overrides: Vec<RiskRule>,
    /// The built-in defaults.
    defaults: Vec<RiskRule>,
    /// Risk of actions no rule matches.
    fallback: Risk,
}

fn rule(action_pattern: String, risk: Risk) -> RiskRule {
    RiskRule {
        action_pattern,
        risk,
        required_trust: required_trust(risk),
    }
}

/// Risk levels: overrides and defaults (any role).
#[utoipa::path(get, path = "/api/v1/risk-levels", tag = "policies",
    security(("api_key" = [])),
    responses((status = 200, description = "Risk levels", body = RiskLevels)))]
pub(crate) async fn list_risk_levels(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<RiskLevels>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT action_pattern, risk FROM risk_levels WHERE organization_id = ? ORDER BY action_pattern",
    )
    .bind(&person.org_id)
    .fetch_all(&state.db.read)
    .await?;
    let mut overrides = Vec::with_capacity(rows.len());
    for (p, r) in rows {
        overrides.push(rule(p, Risk::parse(&r)?));
    }
    Ok(Json(RiskLevels {
        overrides,
        defaults: DEFAULT_RISKS
            .iter()
            .map(|(p, r)| rule((*p).to_owned(), *r))
            .collect(),
        fallback: FALLBACK_RISK,
    }))
}

/// A risk override.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SetRisk {
    /// Action pattern: exact or `prefix*`.
    #[serde(alias = "action")]
    action_pattern: String,
    /// `low`, `medium`, `high` or `critical`.
    risk: Risk,
}

/// Set the risk level of an action pattern for the organization (admin).
#[utoipa::path(put, path = "/api/v1/risk-levels", tag = "policies",
    request_body = SetRisk,
    security(("api_key" = [])),
    responses((status = 200, description = "Set", body = RiskLevels),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(crate) async fn set_risk_level(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RiskLevels>> {
    let person = state.person(&headers, Role::Admin).await?;
    let req: SetRisk = parse_body(&body)?;
    let pattern = check_pattern(&req.action_pattern, "action_pattern")?;
    let now = state.now_ms();
    let p2 = person.clone();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM risk_levels WHERE organization_id = ? AND action_pattern = ?")
                    .bind(&p2.org_id)
                    .bind(&pattern)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO risk_levels (organization_id, action_pattern, risk, updated_at) VALUES (?, ?, ?, ?)",
                )
                .bind(&p2.org_id)
                .bind(&pattern)
                .bind(req.risk.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
                decision_cache::bump_org(conn, &p2.org_id).await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p2.org_id,
                        at: now,
                        actor: &p2.actor(),
                        action: "risk_level.set",
                        target_type: "risk_level",
                        target_id: Some(&pattern),
                        details: serde_json::json!({ "risk": req.risk }),
                    },
                )
                .await
            })
        })
        .await?;
    state.decisions.clear();
    list_risk_levels(State(state), headers).await
}

/// Remove an organization risk override (admin); the default applies again.
#[utoipa::path(delete, path = "/api/v1/risk-levels/{pattern}", tag = "policies",
    params(("pattern" = String, Path, description = "The action pattern (URL-encoded)")),
    security(("api_key" = [])),
    responses((status = 200, description = "Removed", body = RiskLevels),
              (status = 404, description = "No such override", body = ErrorBody)))]
pub(crate) async fn delete_risk_level(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pattern): Path<String>,
) -> Result<Json<RiskLevels>> {
    let person = state.person(&headers, Role::Admin).await?;
    let now = state.now_ms();
    let p2 = person.clone();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM risk_levels WHERE organization_id = ? AND action_pattern = ?",
                )
                .bind(&p2.org_id)
                .bind(&pattern)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(Error::not_found(format!(
                        "no risk override for '{pattern}'"
                    )));
                }
                decision_cache::bump_org(conn, &p2.org_id).await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p2.org_id,
                        at: now,
                        actor: &p2.actor(),
                        action: "risk_level.removed",
                        target_type: "risk_level",
                        target_id: Some(&pattern),
                        details: serde_json::json!({}),
                    },
                )
                .await
            })
        })
        .await?;
    state.decisions.clear();
    list_risk_levels(State(state), headers).await
}
