//! MCP servers: the organization's registry, what each agent declares it talks to, detection
//! reports (an agent using an MCP server it did not declare is drift: an alert and a lower trust
//! score), and capability reports.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};
use utoipa::ToSchema;

use super::agents::addressed_agent;
use super::util::{
    iso, iso_opt, json_column, name_field, parse_body, parse_timestamp, parts, text_field,
};
use crate::audit;
use crate::auth::Caller;
use crate::db::new_id;
use crate::error::{Error, Result, is_unique_violation};
use crate::model::Role;
use crate::routes::ErrorBody;
use crate::scores::{self, TrustEvent};
use crate::state::AppState;

/// Detection methods accepted in reports.
pub const DETECTION_METHODS: &[&str] = &[
    "manual",
    "claude_config",
    "sdk_import",
    "sdk_runtime",
    "direct_api",
    "sdk_integration",
    "client_config",
    "package_scan",
];

/// A registered MCP server.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct McpServerView {
    id: String,
    organization_id: String,
    name: String,
    url: Option<String>,
    description: String,
    version: Option<String>,
    public_key: Option<String>,
    capabilities: Vec<String>,
    created_by: Option<String>,
    created_at: String,
}

fn mcp_view(r: &sqlx::sqlite::SqliteRow) -> Result<McpServerView> {
    let caps: String = r.try_get(7)?;
    Ok(McpServerView {
        id: r.try_get(0)?,
        organization_id: r.try_get(1)?,
        name: r.try_get(2)?,
        url: r.try_get(3)?,
        description: r.try_get(4)?,
        version: r.try_get(5)?,
        public_key: r.try_get(6)?,
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        created_by: r.try_get(8)?,
        created_at: iso(r.try_get(9)?),
    })
}

const MCP_COLUMNS: &str = "id, organization_id, name, url, description, version, public_key, capabilities, created_by, created_at";

/// An MCP server to register.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct McpServerInput {
    /// Unique name in the organization.
    name: String,
    /// Where it runs (informational; the server never connects to it).
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    version: Option<String>,
    /// Its Ed25519 public key, if it has one.
    #[serde(default, alias = "publicKey")]
    public_key: Option<String>,
    /// Tools/capabilities it offers.
    #[serde(default)]
    capabilities: Option<Vec<String>>,
}

/// Register an MCP server in the organization (member or higher).
#[utoipa::path(post, path = "/api/v1/mcp-servers", tag = "mcp",
    request_body = McpServerInput,
    security(("api_key" = [])),
    responses((status = 201, description = "Registered", body = McpServerView),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn create_mcp_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let person = state.person(&headers, Role::Member).await?;
    let input: McpServerInput = parse_body(&body)?;
    let name = name_field(&input.name, "name", 200)?;
    let opt = |v: Option<String>, what: &str, max: usize| -> Result<Option<String>> {
        Ok(v.map(|s| text_field(&s, what, max))
            .transpose()?
            .filter(|s| !s.is_empty()))
    };
    let url = opt(input.url, "url", 2048)?;
    let description = opt(input.description, "description", 2000)?.unwrap_or_default();
    let version = opt(input.version, "version", 64)?;
    let public_key = match opt(input.public_key, "public_key", 100)? {
        Some(k) => Some(
            aim_crypto::AgentPublicKey::from_b64(&k)
                .map_err(|e| Error::bad_request(format!("public_key: {e}")))?
                .to_b64(),
        ),
        None => None,
    };
    let mut caps = Vec::new();
    for c in input.capabilities.unwrap_or_default() {
        caps.push(name_field(&c, "capability", 200)?);
    }
    if caps.len() > 500 {
        return Err(Error::bad_request("at most 500 capabilities"));
    }
    let now = state.now_ms();
    let id = new_id();
    let (mid, p) = (id.clone(), person.clone());
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO mcp_servers (id, organization_id, name, url, description, version, public_key, \
                     capabilities, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&mid)
                .bind(&p.org_id)
                .bind(&name)
                .bind(&url)
                .bind(&description)
                .bind(&version)
                .bind(&public_key)
                .bind(serde_json::to_string(&caps).unwrap_or_else(|_| "[]".into()))
                .bind(&p.email)
                .bind(now)
                .execute(&mut *conn)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::conflict(format!(
                            "an MCP server named '{name}' is already registered"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &p.org_id,
                        at: now,
                        actor: &p.actor(),
                        action: "mcp_server.registered",
                        target_type: "mcp_server",
                        target_id: Some(&mid),
                        details: serde_json::json!({ "name": name, "url": url }),
                    },
                )
                .await
            })
        })
        .await?;
    let view = find_mcp(&state, &person.org_id, &id).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn find_mcp(state: &AppState, org: &str, ident: &str) -> Result<McpServerView> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MCP_COLUMNS} FROM mcp_servers WHERE organization_id = ? AND (id = ? OR name = ?)"
    )))
    .bind(org)
    .bind(ident)
    .bind(ident)
    .fetch_optional(&state.db.read)
    .await?
    .ok_or_else(|| Error::not_found(format!("no MCP server '{ident}' in this organization")))?;
    mcp_view(&row)
}

/// The registry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct McpServerList {
    mcp_servers: Vec<McpServerView>,
    total: usize,
}

/// List registered MCP servers (any role).
#[utoipa::path(get, path = "/api/v1/mcp-servers", tag = "mcp",
    security(("api_key" = [])),
    responses((status = 200, description = "MCP servers", body = McpServerList)))]
pub(crate) async fn list_mcp_servers(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<McpServerList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MCP_COLUMNS} FROM mcp_servers WHERE organization_id = ? ORDER BY name"
    )))
    .bind(&person.org_id)
    .fetch_all(&state.db.read)
    .await?;
    let mcp_servers: Vec<_> = rows.iter().map(mcp_view).collect::<Result<_>>()?;
    Ok(Json(McpServerList {
        total: mcp_servers.len(),
        mcp_servers,
    }))
}

/// Get a registered MCP server by id or name (any role).
#[utoipa::path(get, path = "/api/v1/mcp-servers/{id}", tag = "mcp",
    params(("id" = String, Path, description = "MCP server id or name")),
    security(("api_key" = [])),
    responses((status = 200, description = "The MCP server", body = McpServerView),
              (status = 404, description = "No such MCP server", body = ErrorBody)))]
pub(crate) async fn get_mcp_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<McpServerView>> {
    let person = state.person(&headers, Role::Viewer).await?;
    Ok(Json(find_mcp(&state, &person.org_id, &ident).await?))
}

/// Remove an MCP server from the registry (admin). Agents' declarations keep the name.
#[utoipa::path(delete, path = "/api/v1/mcp-servers/{id}", tag = "mcp",
    params(("id" = String, Path, description = "MCP server id or name")),
    security(("api_key" = [])),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No such MCP server", body = ErrorBody)))]
pub(crate) async fn delete_mcp_server(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<StatusCode> {
    let person = state.person(&headers, Role::Admin).await?;
    let m = find_mcp(&state, &person.org_id, &ident).await?;
    let now = state.now_ms();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM mcp_servers WHERE id = ? AND organization_id = ?")
                    .bind(&m.id)
                    .bind(&person.org_id)
                    .execute(&mut *conn)
                    .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &person.actor(),
                        action: "mcp_server.deleted",
                        target_type: "mcp_server",
                        target_id: Some(&m.id),
                        details: serde_json::json!({ "name": m.name }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// MCP servers to attach to an agent (the SDK's `register_mcp`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct AttachInput {
    /// Registered MCP server ids, or names.
    #[serde(default, alias = "mcpServerIds")]
    mcp_server_ids: Vec<String>,
    /// How the agent learned of them (informational).
    #[serde(default, alias = "detectedMethod")]
    detected_method: Option<String>,
    /// 0–100 (informational).
    #[serde(default)]
    #[allow(dead_code)]
    confidence: Option<f64>,
    /// Free-form.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
}

/// Answer of an attachment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Attached {
    success: bool,
    message: String,
    /// How many were new.
    added: usize,
    agent_id: String,
    /// The names attached by this call.
    mcp_server_ids: Vec<String>,
    /// Newly declared names.
    added_servers: Vec<String>,
    /// Everything the agent now declares.
    talks_to: Vec<String>,
    total_count: usize,
}

async fn resolve_mcp_names(state: &AppState, org: &str, ids: Vec<String>) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Err(Error::bad_request(
            "mcp_server_ids is required and must not be empty",
        ));
    }
    if ids.len() > 200 {
        return Err(Error::bad_request("at most 200 MCP servers per call"));
    }
    let mut names = Vec::with_capacity(ids.len());
    for raw in ids {
        let raw = name_field(&raw, "mcp_server_ids entry", 200)?;
        let name = if uuid::Uuid::parse_str(&raw).is_ok() {
            sqlx::query_scalar::<_, String>(
                "SELECT name FROM mcp_servers WHERE organization_id = ? AND id = ?",
            )
            .bind(org)
            .bind(&raw)
            .fetch_optional(&state.db.read)
            .await?
            .unwrap_or(raw)
        } else {
            raw
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

async fn attach(
    state: &AppState,
    caller: &Caller,
    ident: &str,
    body: &[u8],
    via: &'static str,
) -> Result<Json<Attached>> {
    let agent = addressed_agent(state, caller, ident, Role::Member).await?;
    let input: AttachInput = parse_body(body)?;
    let method = input
        .detected_method
        .map(|m| text_field(&m, "detected_method", 64))
        .transpose()?;
    let names = resolve_mcp_names(state, &agent.org_id, input.mcp_server_ids).await?;
    let now = state.now_ms();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let (aid, org) = (agent.id.clone(), agent.org_id.clone());
    let names2 = names.clone();
    let (added, talks_to) = state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                let mut added = Vec::new();
                for name in &names2 {
                    let existing: Option<i64> = sqlx::query_scalar(
                        "SELECT declared FROM agent_mcp_servers WHERE agent_id = ? AND mcp_name = ?",
                    )
                    .bind(&aid)
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await?;
                    match existing {
                        Some(1) => {}
                        Some(_) => {
                            sqlx::query(
                                "UPDATE agent_mcp_servers SET declared = 1, declared_via = ?, declared_at = ? \
                                 WHERE agent_id = ? AND mcp_name = ?",
                            )
                            .bind(via)
                            .bind(now)
                            .bind(&aid)
                            .bind(name)
                            .execute(&mut *conn)
                            .await?;
                            added.push(name.clone());
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO agent_mcp_servers (agent_id, mcp_name, declared, declared_via, declared_at, \
                                 detected, detection_methods, drift_alerted) VALUES (?, ?, 1, ?, ?, 0, '[]', 0)",
                            )
                            .bind(&aid)
                            .bind(name)
                            .bind(via)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                            added.push(name.clone());
                        }
                    }
                }
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "agent.mcp_servers_declared",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({ "mcp_servers": names2, "added": added, "method": method }),
                    },
                )
                .await?;
                let talks_to: Vec<String> = sqlx::query_scalar(
                    "SELECT mcp_name FROM agent_mcp_servers WHERE agent_id = ? AND declared = 1 ORDER BY mcp_name",
                )
                .bind(&aid)
                .fetch_all(&mut *conn)
                .await?;
                Ok((added, talks_to))
            })
        })
        .await?;
    Ok(Json(Attached {
        success: true,
        message: format!("Successfully added {} MCP server(s)", added.len()),
        added: added.len(),
        agent_id: agent.id,
        mcp_server_ids: names,
        added_servers: added,
        total_count: talks_to.len(),
        talks_to,
    }))
}

/// Declare MCP servers the agent talks to (the SDK's `register_mcp`): the agent itself or a
/// person (member or higher).
#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/mcp-servers", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = AttachInput,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Attached", body = Attached),
              (status = 400, description = "Invalid", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn sdk_attach_mcp(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<Attached>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    attach(&state, &caller, &ident, &body, "sdk").await
}

/// Declare MCP servers for an agent (a person, member or higher).
#[utoipa::path(put, path = "/api/v1/agents/{id}/mcp-servers", tag = "mcp",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = AttachInput,
    security(("api_key" = [])),
    responses((status = 200, description = "Attached", body = Attached),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn person_attach_mcp(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<Attached>> {
    let caller = Caller::Person(state.person(&headers, Role::Member).await?);
    attach(&state, &caller, &ident, &body, "person").await
}

/// One MCP server in an agent's inventory.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentMcpView {
    name: String,
    /// The agent (or a person) declared it.
    declared: bool,
    /// A detection report mentioned it.
    detected: bool,
    /// Detected without being declared.
    drift: bool,
    detected_by: Vec<String>,
    confidence: Option<f64>,
    first_detected: Option<String>,
    last_seen: Option<String>,
    declared_at: Option<String>,
}

/// An agent's MCP inventory.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentMcpList {
    agent_id: String,
    mcp_servers: Vec<AgentMcpView>,
}

async fn inventory(state: &AppState, agent_id: &str) -> Result<Vec<AgentMcpView>> {
    let rows = sqlx::query(
        "SELECT mcp_name, declared, detected, detection_methods, max_confidence, first_detected_at, \
         last_detected_at, declared_at FROM agent_mcp_servers WHERE agent_id = ? ORDER BY mcp_name",
    )
    .bind(agent_id)
    .fetch_all(&state.db.read)
    .await?;
    rows.iter()
        .map(|r| {
            let declared = r.try_get::<i64, _>(1)? != 0;
            let detected = r.try_get::<i64, _>(2)? != 0;
            let methods: String = r.try_get(3)?;
            Ok(AgentMcpView {
                name: r.try_get(0)?,
                declared,
                detected,
                drift: detected && !declared,
                detected_by: serde_json::from_str(&methods).unwrap_or_default(),
                confidence: r.try_get(4)?,
                first_detected: iso_opt(r.try_get(5)?),
                last_seen: iso_opt(r.try_get(6)?),
                declared_at: iso_opt(r.try_get(7)?),
            })
        })
        .collect()
}

/// An agent's MCP servers, declared and detected (a person or the agent itself).
#[utoipa::path(get, path = "/api/v1/agents/{id}/mcp-servers", tag = "mcp",
    params(("id" = String, Path, description = "Agent id or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Inventory", body = AgentMcpList),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn agent_mcp_servers(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<AgentMcpList>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    Ok(Json(AgentMcpList {
        mcp_servers: inventory(&state, &agent.id).await?,
        agent_id: agent.id,
    }))
}

/// One detection event (the SDK's shape, camelCase).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DetectionEvent {
    /// The MCP server's name.
    #[serde(rename = "mcpServer", alias = "mcp_server")]
    pub mcp_server: String,
    /// One of [`DETECTION_METHODS`].
    #[serde(rename = "detectionMethod", alias = "detection_method")]
    pub detection_method: String,
    /// 0–100.
    pub confidence: f64,
    /// Free-form details.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Reporting SDK version.
    #[serde(default, rename = "sdkVersion", alias = "sdk_version")]
    pub sdk_version: Option<String>,
    /// RFC 3339.
    pub timestamp: String,
}

/// A detection report.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DetectionReport {
    /// 1–1000 events.
    pub detections: Vec<DetectionEvent>,
}

/// A validated detection.
struct Checked {
    server: String,
    method: String,
    confidence: f64,
    details: String,
    sdk_version: Option<String>,
    at: i64,
}

/// Validates a report: methods, confidence range, timestamps, sizes.
pub fn validate_report(report: &DetectionReport) -> Result<()> {
    check_report(report).map(|_| ())
}

fn check_report(report: &DetectionReport) -> Result<Vec<Checked>> {
    if report.detections.is_empty() {
        return Err(Error::bad_request("detections must not be empty"));
    }
    if report.detections.len() > 1000 {
        return Err(Error::bad_request("at most 1000 detections per report"));
    }
    let mut out = Vec::with_capacity(report.detections.len());
    for (i, d) in report.detections.iter().enumerate() {
        let server = name_field(&d.mcp_server, &format!("detections[{i}].mcpServer"), 200)?;
        if !DETECTION_METHODS.contains(&d.detection_method.as_str()) {
            return Err(Error::bad_request(format!(
                "detections[{i}].detectionMethod `{}` is not one of: {}",
                d.detection_method,
                DETECTION_METHODS.join(", ")
            )));
        }
        if !d.confidence.is_finite() || !(0.0..=100.0).contains(&d.confidence) {
            return Err(Error::bad_request(format!(
                "detections[{i}].confidence must be between 0 and 100"
            )));
        }
        let at = parse_timestamp(&d.timestamp)
            .filter(|_| chrono::DateTime::parse_from_rfc3339(&d.timestamp).is_ok())
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "detections[{i}].timestamp must be RFC 3339 with a zone (e.g. 2025-10-24T14:44:21+00:00)"
                ))
            })?;
        let details = d
            .details
            .as_ref()
            .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string);
        if details.len() > 16 * 1024 {
            return Err(Error::bad_request(format!(
                "detections[{i}].details is too large"
            )));
        }
        let sdk_version = d
            .sdk_version
            .as_ref()
            .map(|v| text_field(v, "sdkVersion", 100))
            .transpose()?;
        out.push(Checked {
            server,
            method: d.detection_method.clone(),
            confidence: d.confidence,
            details,
            sdk_version,
            at,
        });
    }
    Ok(out)
}

/// Answer of a detection report (the SDK's shape).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DetectionResult {
    success: bool,
    #[serde(rename = "detectionsProcessed")]
    detections_processed: usize,
    /// MCP servers seen for the first time.
    #[serde(rename = "newMCPs")]
    new_mcps: Vec<String>,
    /// MCP servers seen before.
    #[serde(rename = "existingMCPs")]
    existing_mcps: Vec<String>,
    /// Newly detected MCP servers the agent had not declared (each raised an alert).
    #[serde(rename = "driftDetected")]
    drift_detected: Vec<String>,
    message: String,
}

/// Most distinct MCP servers one agent's inventory holds (detections of more are refused, so a
/// flood of made-up names cannot grow it without bound).
const MAX_MCP_SERVERS_PER_AGENT: i64 = 500;

async fn store_detection(
    conn: &mut SqliteConnection,
    org: &str,
    agent_id: &str,
    agent_name: &str,
    now: i64,
    d: &Checked,
    result: &mut DetectionResult,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO detections (id, organization_id, agent_id, mcp_server, method, confidence, details, \
         sdk_version, detected_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new_id())
    .bind(org)
    .bind(agent_id)
    .bind(&d.server)
    .bind(&d.method)
    .bind(d.confidence)
    .bind(&d.details)
    .bind(&d.sdk_version)
    .bind(d.at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // The SDK reporting itself is not an MCP server.
    if d.method == "sdk_integration" {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT declared, detected, detection_methods, max_confidence, drift_alerted FROM agent_mcp_servers \
         WHERE agent_id = ? AND mcp_name = ?",
    )
    .bind(agent_id)
    .bind(&d.server)
    .fetch_optional(&mut *conn)
    .await?;
    let (declared, was_detected, methods, max_conf, alerted) = match &row {
        Some(r) => (
            r.try_get::<i64, _>(0)? != 0,
            r.try_get::<i64, _>(1)? != 0,
            r.try_get::<String, _>(2)?,
            r.try_get::<Option<f64>, _>(3)?,
            r.try_get::<i64, _>(4)? != 0,
        ),
        None => {
            let known: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM agent_mcp_servers WHERE agent_id = ?")
                    .bind(agent_id)
                    .fetch_one(&mut *conn)
                    .await?;
            if known >= MAX_MCP_SERVERS_PER_AGENT {
                return Err(Error::conflict(format!(
                    "agent '{agent_name}' already has {known} MCP servers in its inventory (the limit); \
                     a person can remove stale ones before more are recorded"
                )));
            }
            (false, false, "[]".to_owned(), None, false)
        }
    };
    let mut set: BTreeSet<String> = serde_json::from_str(&methods).unwrap_or_default();
    set.insert(d.method.clone());
    let methods = serde_json::to_string(&set).unwrap_or_else(|_| "[]".into());
    let conf = max_conf.map_or(d.confidence, |c| c.max(d.confidence));
    let drift = !declared && !alerted;
    if row.is_some() {
        sqlx::query(
            "UPDATE agent_mcp_servers SET detected = 1, first_detected_at = COALESCE(first_detected_at, ?), \
             last_detected_at = ?, detection_methods = ?, max_confidence = ?, drift_alerted = ? \
             WHERE agent_id = ? AND mcp_name = ?",
        )
        .bind(now)
        .bind(now)
        .bind(&methods)
        .bind(conf)
        .bind(i64::from(alerted || drift))
        .bind(agent_id)
        .bind(&d.server)
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO agent_mcp_servers (agent_id, mcp_name, declared, detected, first_detected_at, \
             last_detected_at, detection_methods, max_confidence, drift_alerted) VALUES (?, ?, 0, 1, ?, ?, ?, ?, ?)",
        )
        .bind(agent_id)
        .bind(&d.server)
        .bind(now)
        .bind(now)
        .bind(&methods)
        .bind(conf)
        .bind(i64::from(drift))
        .execute(&mut *conn)
        .await?;
    }
    let list = if was_detected {
        &mut result.existing_mcps
    } else {
        &mut result.new_mcps
    };
    if !list.contains(&d.server) {
        list.push(d.server.clone());
    }
    if drift {
        let title = format!(
            "MCP drift: agent '{agent_name}' uses undeclared MCP server '{}'",
            d.server
        );
        let description = format!(
            "Agent '{agent_name}' was detected using MCP server '{}' (method {}, confidence {}) that it never declared. \
             If this is expected, declare it (aim agent mcp add / POST /api/v1/agents/{{id}}/mcp-servers); otherwise investigate and suspend the agent.",
            d.server, d.method, d.confidence
        );
        scores::raise_alert(
            conn,
            org,
            agent_id,
            now,
            "configuration_drift",
            "high",
            &title,
            &description,
            TrustEvent::Drift,
        )
        .await?;
        result.drift_detected.push(d.server.clone());
    }
    Ok(())
}

async fn report(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    ident: &str,
    body: &[u8],
) -> Result<Json<DetectionResult>> {
    let caller = state
        .caller(&parts(method, uri, headers, body), Role::Member)
        .await?;
    let agent = addressed_agent(state, &caller, ident, Role::Member).await?;
    let report: DetectionReport = parse_body(body)?;
    let checked = check_report(&report)?;
    let now = state.now_ms();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let (aid, aname, org) = (agent.id.clone(), agent.name.clone(), agent.org_id.clone());
    let result = state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                let mut result = DetectionResult {
                    success: true,
                    detections_processed: checked.len(),
                    new_mcps: Vec::new(),
                    existing_mcps: Vec::new(),
                    drift_detected: Vec::new(),
                    message: String::new(),
                };
                for d in &checked {
                    store_detection(conn, &org, &aid, &aname, now, d, &mut result).await?;
                }
                result.message = format!(
                    "Processed {} detections ({} new, {} known MCP servers, {} undeclared)",
                    checked.len(),
                    result.new_mcps.len(),
                    result.existing_mcps.len(),
                    result.drift_detected.len()
                );
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "detection.reported",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({
                            "detections": checked.len(),
                            "new": result.new_mcps,
                            "drift": result.drift_detected,
                        }),
                    },
                )
                .await?;
                Ok(result)
            })
        })
        .await?;
    Ok(Json(result))
}

/// Report MCP servers an agent was detected using (the SDK's `report_detections`). Undeclared
/// ones raise a drift alert and lower the agent's trust score.
#[utoipa::path(post, path = "/api/v1/detection/agents/{id}/report", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = DetectionReport,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Processed", body = DetectionResult),
              (status = 400, description = "Invalid report", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn detection_report(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<DetectionResult>> {
    report(&state, &method, &uri, &headers, &ident, &body).await
}

/// Same as `/api/v1/detection/agents/{id}/report` (the SDK's `report_sdk_integration` path).
#[utoipa::path(post, path = "/api/v1/sdk-api/agents/{id}/detection/report", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = DetectionReport,
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Processed", body = DetectionResult),
              (status = 400, description = "Invalid report", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn sdk_detection_report(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<DetectionResult>> {
    report(&state, &method, &uri, &headers, &ident, &body).await
}

/// Detection status of an agent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DetectionStatus {
    #[serde(rename = "agentId")]
    agent_id: String,
    #[serde(rename = "detectedMCPs")]
    detected_mcps: Vec<AgentMcpView>,
    #[serde(rename = "lastReportedAt")]
    last_reported_at: Option<String>,
}

/// What has been detected for an agent (a person or the agent itself).
#[utoipa::path(get, path = "/api/v1/detection/agents/{id}/status", tag = "mcp",
    params(("id" = String, Path, description = "Agent id or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Status", body = DetectionStatus),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn detection_status(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<DetectionStatus>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(received_at) FROM detections WHERE agent_id = ?")
            .bind(&agent.id)
            .fetch_one(&state.db.read)
            .await?;
    Ok(Json(DetectionStatus {
        detected_mcps: inventory(&state, &agent.id)
            .await?
            .into_iter()
            .filter(|m| m.detected)
            .collect(),
        agent_id: agent.id,
        last_reported_at: iso_opt(last),
    }))
}

/// Answer of a capability report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CapabilityReportResult {
    success: bool,
    #[serde(rename = "agentId")]
    agent_id: String,
    id: String,
    #[serde(rename = "riskLevel")]
    risk_level: Option<String>,
    message: String,
}

/// Store an agent's capability report (environment, AI models, capability blocks, risk
/// assessment) as sent; a `high` or `critical` self-assessed risk raises an alert.
#[utoipa::path(post, path = "/api/v1/detection/agents/{id}/capabilities/report", tag = "sdk",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body(content = Object, description = "AgentCapabilityReport JSON object"),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "Stored", body = CapabilityReportResult),
              (status = 400, description = "Not a JSON object", body = ErrorBody),
              (status = 404, description = "No such agent", body = ErrorBody)))]
pub(crate) async fn capability_report(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<CapabilityReportResult>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Member).await?;
    let report: serde_json::Value = parse_body(&body)?;
    if !report.is_object() {
        return Err(Error::bad_request(
            "the capability report must be a JSON object",
        ));
    }
    let risk = report
        .pointer("/riskAssessment/riskLevel")
        .and_then(serde_json::Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|r| ["low", "medium", "high", "critical"].contains(&r.as_str()));
    let now = state.now_ms();
    let id = new_id();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let (rid, aid, aname, org, r2) = (
        id.clone(),
        agent.id.clone(),
        agent.name.clone(),
        agent.org_id.clone(),
        risk.clone(),
    );
    let text = report.to_string();
    state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO capability_reports (id, organization_id, agent_id, report, risk_level, received_at) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&rid)
                .bind(&org)
                .bind(&aid)
                .bind(&text)
                .bind(&r2)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "capability_report.received",
                        target_type: "agent",
                        target_id: Some(&aid),
                        details: serde_json::json!({ "report_id": rid, "risk_level": r2 }),
                    },
                )
                .await?;
                if matches!(r2.as_deref(), Some("high" | "critical")) {
                    let severity = r2.as_deref().unwrap_or("high");
                    scores::raise_alert(
                        conn,
                        &org,
                        &aid,
                        now,
                        "capability_risk",
                        severity,
                        &format!("Agent '{aname}' reports {severity}-risk capabilities"),
                        "The agent's capability report assesses its own risk as high; review its grants and policies.",
                        TrustEvent::Alert,
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(Json(CapabilityReportResult {
        success: true,
        agent_id: agent.id,
        id,
        risk_level: risk,
        message: "capability report stored".into(),
    }))
}

/// Latest capability report of an agent.
#[utoipa::path(get, path = "/api/v1/detection/agents/{id}/capabilities/latest", tag = "mcp",
    params(("id" = String, Path, description = "Agent id or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses((status = 200, description = "The report as sent", content_type = "application/json"),
              (status = 404, description = "No such agent or no report", body = ErrorBody)))]
pub(crate) async fn latest_capability_report(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let agent = addressed_agent(&state, &caller, &ident, Role::Viewer).await?;
    state.consume_replay(&caller).await?;
    let text: Option<String> = sqlx::query_scalar(
        "SELECT report FROM capability_reports WHERE agent_id = ? ORDER BY received_at DESC, id DESC LIMIT 1",
    )
    .bind(&agent.id)
    .fetch_optional(&state.db.read)
    .await?;
    match text {
        Some(t) => Ok(Json(json_column(&t))),
        None => Err(Error::not_found("no capability reports for this agent")),
    }
}
