//! What people watch: alerts, the audit log and trust scores with their history.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::agents::{addressed_agent, find_agent};
use super::util::{iso, iso_opt, json_column, limit, parts};
use crate::audit;
use crate::auth::parse_uuid;
use crate::error::{Error, Result};
use crate::model::Role;
use crate::routes::ErrorBody;
use crate::state::AppState;
use crate::trust::{self, TrustFactors, WEIGHTS};

/// An alert.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertView {
    id: String,
    agent_id: Option<String>,
    /// e.g. `configuration_drift`, `tree_head_fork`, `capability_risk`.
    alert_type: String,
    severity: String,
    title: String,
    description: String,
    created_at: String,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<String>,
}

fn alert_view(r: &sqlx::sqlite::SqliteRow) -> Result<AlertView> {
    Ok(AlertView {
        id: r.try_get(0)?,
        agent_id: r.try_get(1)?,
        alert_type: r.try_get(2)?,
        severity: r.try_get(3)?,
        title: r.try_get(4)?,
        description: r.try_get(5)?,
        created_at: iso(r.try_get(6)?),
        acknowledged_by: r.try_get(7)?,
        acknowledged_at: iso_opt(r.try_get(8)?),
    })
}

const ALERT_COLUMNS: &str = "id, agent_id, alert_type, severity, title, description, created_at, acknowledged_by, acknowledged_at";

/// Query of alerts.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct AlertQuery {
    /// Only this agent (id or name).
    agent_id: Option<String>,
    /// Only unacknowledged alerts.
    unacknowledged: Option<bool>,
    /// 1–1000, default 100.
    limit: Option<i64>,
    /// `next_before` of the previous page.
    before: Option<String>,
}

/// Alerts, newest first, one page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertList {
    alerts: Vec<AlertView>,
    /// Pass as `before` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
}

/// Parses a `before` cursor: `<created_at ms>.<alert id>`.
fn alert_cursor(cursor: Option<&str>) -> Result<(Option<i64>, Option<String>)> {
    let Some(c) = cursor else {
        return Ok((None, None));
    };
    let bad = || Error::bad_request("`before` must be a `next_before` value from a previous page");
    let (at, id) = c.split_once('.').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let id = crate::auth::parse_uuid(id, "before").map_err(|_| bad())?;
    Ok((Some(at), Some(id)))
}

/// List alerts, newest first (any role).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "oversight",
    params(AlertQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Alerts", body = AlertList)))]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AlertQuery>,
) -> Result<Json<AlertList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let agent = match &q.agent_id {
        Some(a) => Some(find_agent(&state.db.read, &person.org_id, a).await?.id),
        None => None,
    };
    let only_open = i64::from(q.unacknowledged.unwrap_or(false));
    let limit = limit(q.limit, 100)?;
    let (before_at, before_id) = alert_cursor(q.before.as_deref())?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE organization_id = ? AND (? IS NULL OR agent_id = ?) \
         AND (? = 0 OR acknowledged_at IS NULL) \
         AND (? IS NULL OR created_at < ? OR (created_at = ? AND id < ?)) \
         ORDER BY created_at DESC, id DESC LIMIT ?"
    )))
    .bind(&person.org_id)
    .bind(&agent)
    .bind(&agent)
    .bind(only_open)
    .bind(before_at)
    .bind(before_at)
    .bind(before_at)
    .bind(&before_id)
    .bind(limit + 1)
    .fetch_all(&state.db.read)
    .await?;
    let mut alerts: Vec<AlertView> = rows.iter().map(alert_view).collect::<Result<_>>()?;
    let mut next_before = None;
    if alerts.len() as i64 > limit {
        alerts.truncate(usize::try_from(limit).unwrap_or(0));
        if let Some(last) = rows.get(alerts.len() - 1) {
            let at: i64 = last.try_get(6)?;
            let id: String = last.try_get(0)?;
            next_before = Some(format!("{at}.{id}"));
        }
    }
    Ok(Json(AlertList {
        alerts,
        next_before,
    }))
}

/// Acknowledge an alert (member or higher).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "oversight",
    params(("id" = String, Path, description = "Alert id (UUID)")),
    security(("api_key" = [])),
    responses((status = 200, description = "Acknowledged", body = AlertView),
              (status = 404, description = "No such alert", body = ErrorBody),
              (status = 409, description = "Already acknowledged", body = ErrorBody)))]
pub(crate) async fn acknowledge_alert(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    _body: Bytes,
) -> Result<Json<AlertView>> {
    let id = parse_uuid(&id, "alert id")?;
    let person = state.person(&headers, Role::Member).await?;
    let now = state.now_ms();
    let (aid, p) = (id.clone(), person.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let ack: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT acknowledged_at FROM alerts WHERE id = ? AND organization_id = ?",
                )
                .bind(&aid)
                .bind(&p.org_id)
                .fetch_optional(&mut *conn)
                .await?;
                match ack {
                    None => {
                        return Err(Error::not_found(format!(
                            "no alert {aid} in this organization"
                        )));
                    }
                    Some(Some(_)) => {
                        return Err(Error::conflict("the alert is already acknowledged"));
                    }
                    Some(None) => {}
                }
                sqlx::query(
                    "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?",
                )
                .bind(&p.email)
                .bind(now)
                .bind(&aid)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "alert.acknowledged",
                        target_type: "alert",
                        target_id: Some(&aid),
                        details: serde_json::json!({}),
                    },
                )
                .await
            })
        })
        .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?"
    )))
    .bind(&id)
    .fetch_one(&state.db.read)
    .await?;
    Ok(Json(alert_view(&row)?))
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntry {
    id: String,
    at: String,
    /// `system`, `user` or `agent`.
    actor_type: String,
    actor_id: Option<String>,
    /// e.g. `agent.registered`, `verification.denied`, `capability.granted`, `policy.updated`.
    action: String,
    target_type: String,
    target_id: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

/// Query of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct AuditQuery {
    /// Only records about this agent (target or actor; id or name).
    agent_id: Option<String>,
    /// Only this action, or actions starting with it when it ends in `*` or `.`.
    action: Option<String>,
    /// Only records older than this record id (paging: pass the previous page's `next_before`).
    before: Option<String>,
    /// 1–1000, default 100.
    limit: Option<i64>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<String>,
}

/// The organization's audit log, newest first (any role).
#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "oversight",
    params(AuditQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Audit records", body = AuditPage),
              (status = 400, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let limit = limit(q.limit, 100)?;
    let agent = match &q.agent_id {
        Some(a) => Some(find_agent(&state.db.read, &person.org_id, a).await?.id),
        None => None,
    };
    let before = q
        .before
        .as_deref()
        .map(|b| parse_uuid(b, "before"))
        .transpose()?;
    let (action_exact, action_prefix) = match q.action.as_deref() {
        None => (None, None),
        Some(a) if a.ends_with('*') => (None, Some(a.trim_end_matches('*').to_owned())),
        Some(a) if a.ends_with('.') => (None, Some(a.to_owned())),
        Some(a) => (Some(a.to_owned()), None),
    };
    let prefix_like = action_prefix.map(|p| {
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("{escaped}%")
    });
    let rows = sqlx::query(
        "SELECT id, at, actor_type, actor_id, action, target_type, target_id, details FROM audit_log \
         WHERE organization_id = ? AND (? IS NULL OR target_id = ? OR actor_id = ?) \
         AND (? IS NULL OR action = ?) AND (? IS NULL OR action LIKE ? ESCAPE '\\') \
         AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
    )
    .bind(&person.org_id)
    .bind(&agent)
    .bind(&agent)
    .bind(&agent)
    .bind(&action_exact)
    .bind(&action_exact)
    .bind(&prefix_like)
    .bind(&prefix_like)
    .bind(&before)
    .bind(&before)
    .bind(limit + 1)
    .fetch_all(&state.db.read)
    .await?;
    let mut entries = rows
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at: iso(r.try_get(1)?),
                actor_type: r.try_get(2)?,
                actor_id: r.try_get(3)?,
                action: r.try_get(4)?,
                target_type: r.try_get(5)?,
                target_id: r.try_get(6)?,
                details: json_column(r.try_get::<&str, _>(7)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let next_before = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}

/// An agent's current trust score.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrustView {
    agent_id: String,
    agent_name: String,
    /// 0–1.
    score: f64,
    /// The eight factors (each 0–1), computed now from recorded events.
    factors: TrustFactors,
    /// Weights in factor order: verification_status, verification_outcomes, success_rate,
    /// security_alerts, compliance, age, drift_detection, user_feedback.
    weights: [f64; 8],
    calculated_at: String,
}

/// An agent's trust score with its factors (a person or the agent itself).
#[utoipa::path(get, path = "/api/v1/agents/{id}/trust-score", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Score", body = TrustView),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn trust_score(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<TrustView>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    let row = sqlx::query(
        "SELECT created_at, verifications_approved, verifications_denied, results_success, results_failure, \
         human_approvals, human_denials, alerts_raised, drift_events FROM agents WHERE id = ?",
    )
    .bind(&agent.id)
    .fetch_one(&state.db.read)
    .await?;
    let now = state.now_ms();
    let created: i64 = row.try_get(0)?;
    let inputs = trust::TrustInputs {
        age_days: (now - created).max(0) / 86_400_000,
        approved: row.try_get(1)?,
        denied: row.try_get(2)?,
        results_success: row.try_get(3)?,
        results_failure: row.try_get(4)?,
        human_approvals: row.try_get(5)?,
        human_denials: row.try_get(6)?,
        alerts: row.try_get(7)?,
        drift_events: row.try_get(8)?,
    };
    let factors = trust::factors(agent.status, &inputs);
    Ok(Json(TrustView {
        agent_id: agent.id,
        agent_name: agent.name,
        score: agent.trust_score,
        factors,
        weights: WEIGHTS,
        calculated_at: iso(now),
    }))
}

/// One change of the trust score.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrustHistoryEntry {
    at: String,
    score: f64,
    previous_score: Option<f64>,
    reason: String,
    #[schema(value_type = Object)]
    factors: serde_json::Value,
}

/// Trust history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrustHistory {
    agent_id: String,
    /// Newest first.
    history: Vec<TrustHistoryEntry>,
}

/// Query of the history.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct HistoryQuery {
    /// 1–1000, default 100.
    limit: Option<i64>,
}

/// How an agent's trust score changed, newest first (a person or the agent itself).
#[utoipa::path(get, path = "/api/v1/agents/{id}/trust-score/history", tag = "oversight",
    params(("id" = String, Path, description = "Agent id or name"), HistoryQuery),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "History", body = TrustHistory),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn trust_history(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<TrustHistory>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    let rows = sqlx::query(
        "SELECT at, score, previous_score, reason, factors FROM trust_history WHERE agent_id = ? \
         ORDER BY at DESC, id DESC LIMIT ?",
    )
    .bind(&agent.id)
    .bind(limit(q.limit, 100)?)
    .fetch_all(&state.db.read)
    .await?;
    Ok(Json(TrustHistory {
        agent_id: agent.id,
        history: rows
            .iter()
            .map(|r| {
                Ok(TrustHistoryEntry {
                    at: iso(r.try_get(0)?),
                    score: r.try_get(1)?,
                    previous_score: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    factors: json_column(r.try_get::<&str, _>(4)?),
                })
            })
            .collect::<Result<_>>()?,
    }))
}
