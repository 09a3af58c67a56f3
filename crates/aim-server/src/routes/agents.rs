//! Agents: registration (the SDK's API-key mode and the authenticated form), listing, lookup by
//! id or name, suspension, reactivation, revocation and key rotation.

use aim_crypto::{AgentKeypair, AgentPublicKey};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use utoipa::{IntoParams, ToSchema};

use super::util::{
    iso, iso_opt, label_field, limit, name_field, offset, parse_body, parse_optional_body, parts,
    text_field,
};
use crate::audit;
use crate::auth::{Caller, Person};
use crate::config::duration_ms;
use crate::db::new_id;
use crate::decision::validate_pattern;
use crate::decision_cache::parse_labels;
use crate::error::{Error, Result, is_unique_violation};
use crate::model::{AgentStatus, Role};
use crate::names;
use crate::routes::ErrorBody;
use crate::scores::{self, TrustEvent};
use crate::state::AppState;
use crate::trust::{self, TrustInputs};
use crate::withdraw::{Withdrawal, withdraw_verifications};

/// Registration request. Field names are accepted in snake_case and in the camelCase the
/// PyPI SDKs send.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RegisterAgent {
    /// Unique name in the organization (1–128 characters, no `/`).
    pub(crate) name: String,
    /// Human-readable name (defaults to `name`).
    #[serde(default, alias = "displayName")]
    pub(crate) display_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Kind of agent, e.g. `ai_agent`, `mcp_server`, `langchain` (default `ai_agent`).
    #[serde(default, alias = "agentType")]
    pub(crate) agent_type: Option<String>,
    /// Version.
    #[serde(default)]
    pub(crate) version: Option<String>,
    /// Source repository.
    #[serde(default, alias = "repositoryUrl")]
    pub(crate) repository_url: Option<String>,
    /// Documentation.
    #[serde(default, alias = "documentationUrl")]
    pub(crate) documentation_url: Option<String>,
    /// The agent's own Ed25519 public key (standard base64). When absent the server generates a
    /// key pair and returns the private key once.
    #[serde(default, alias = "publicKey")]
    pub(crate) public_key: Option<String>,
    /// MCP servers the agent declares it talks to.
    #[serde(default, alias = "talksTo")]
    pub(crate) talks_to: Option<Vec<String>>,
    /// Capabilities the agent declares it uses (recorded as declared, never granted).
    #[serde(default)]
    pub(crate) capabilities: Option<Vec<String>>,
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentView {
    pub(crate) id: String,
    pub(crate) agent_id: String,
    pub(crate) organization_id: String,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) description: String,
    pub(crate) agent_type: String,
    pub(crate) version: Option<String>,
    pub(crate) repository_url: Option<String>,
    pub(crate) documentation_url: Option<String>,
    /// `pending`, `verified`, `suspended` or `revoked`.
    pub(crate) status: AgentStatus,
    /// Current Ed25519 public key (standard base64).
    pub(crate) public_key: String,
    /// Always `Ed25519`.
    pub(crate) key_algorithm: &'static str,
    pub(crate) key_created_at: String,
    pub(crate) rotation_count: i64,
    /// Previous key, still accepted until `previous_key_valid_until`.
    pub(crate) previous_public_key: Option<String>,
    pub(crate) previous_key_valid_until: Option<String>,
    /// Trust score, 0–1.
    pub(crate) trust_score: f64,
    /// Declared MCP servers.
    pub(crate) talks_to: Vec<String>,
    /// Declared capabilities (what the agent says it uses; not grants).
    pub(crate) capabilities: Vec<String>,
    /// Capabilities granted by people.
    pub(crate) granted_capabilities: Vec<String>,
    /// Labels an admin gave the agent; policies select agents by id or by `label:NAME`.
    pub(crate) labels: Vec<String>,
    pub(crate) created_by: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) last_active_at: Option<String>,
}

/// The stored agent row.
#[derive(Debug, Clone)]
pub(crate) struct AgentRecord {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) description: String,
    pub(crate) agent_type: String,
    pub(crate) version: Option<String>,
    pub(crate) repository_url: Option<String>,
    pub(crate) documentation_url: Option<String>,
    pub(crate) status: AgentStatus,
    pub(crate) public_key: String,
    pub(crate) key_created_at: i64,
    pub(crate) previous_public_key: Option<String>,
    pub(crate) previous_key_valid_until: Option<i64>,
    pub(crate) rotation_count: i64,
    pub(crate) trust_score: f64,
    pub(crate) created_by: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) last_active_at: Option<i64>,
    /// Labels an admin gave the agent (policies select agents by them).
    pub(crate) labels: Vec<String>,
}

pub(crate) const AGENT_COLUMNS: &str = "id, organization_id, name, display_name, description, agent_type, version, \
     repository_url, documentation_url, status, public_key, key_created_at, previous_public_key, \
     previous_key_valid_until, rotation_count, trust_score, created_by, created_at, updated_at, last_active_at, labels";

impl AgentRecord {
    pub(crate) fn from_row(row: &SqliteRow) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            org_id: row.try_get(1)?,
            name: row.try_get(2)?,
            display_name: row.try_get(3)?,
            description: row.try_get(4)?,
            agent_type: row.try_get(5)?,
            version: row.try_get(6)?,
            repository_url: row.try_get(7)?,
            documentation_url: row.try_get(8)?,
            status: AgentStatus::parse(row.try_get::<&str, _>(9)?)?,
            public_key: row.try_get(10)?,
            key_created_at: row.try_get(11)?,
            previous_public_key: row.try_get(12)?,
            previous_key_valid_until: row.try_get(13)?,
            rotation_count: row.try_get(14)?,
            trust_score: row.try_get(15)?,
            created_by: row.try_get(16)?,
            created_at: row.try_get(17)?,
            updated_at: row.try_get(18)?,
            last_active_at: row.try_get(19)?,
            labels: parse_labels(row.try_get(20)?),
        })
    }
}

/// Finds an agent of `org_id` by id (UUID) or by name; 404 otherwise.
pub(crate) async fn find_agent<'e, E>(exec: E, org_id: &str, ident: &str) -> Result<AgentRecord>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let by_id = uuid::Uuid::parse_str(ident).ok().map(|u| u.to_string());
    let row = match &by_id {
        Some(id) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {AGENT_COLUMNS} FROM agents WHERE id = ? AND organization_id = ?"
            )))
            .bind(id)
            .bind(org_id)
            .fetch_optional(exec)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {AGENT_COLUMNS} FROM agents WHERE name = ? AND organization_id = ?"
            )))
            .bind(ident)
            .bind(org_id)
            .fetch_optional(exec)
            .await?
        }
    };
    match row {
        Some(row) => AgentRecord::from_row(&row),
        None => Err(Error::not_found(format!(
            "no agent '{ident}' in this organization"
        ))),
    }
}

impl AppState {
    /// The full view of an agent (declared capabilities, MCP servers, grants).
    pub(crate) async fn agent_view(&self, rec: AgentRecord) -> Result<AgentView> {
        let talks_to: Vec<String> = sqlx::query_scalar(
            "SELECT mcp_name FROM agent_mcp_servers WHERE agent_id = ? AND declared = 1 ORDER BY mcp_name",
        )
        .bind(&rec.id)
        .fetch_all(&self.db.read)
        .await?;
        let declared: Vec<String> = sqlx::query_scalar(
            "SELECT capability FROM agent_declared_capabilities WHERE agent_id = ? ORDER BY capability",
        )
        .bind(&rec.id)
        .fetch_all(&self.db.read)
        .await?;
        let granted: Vec<String> = sqlx::query_scalar(
            "SELECT capability FROM capability_grants WHERE agent_id = ? AND revoked_at IS NULL ORDER BY capability",
        )
        .bind(&rec.id)
        .fetch_all(&self.db.read)
        .await?;
        Ok(view(rec, talks_to, declared, granted))
    }
}

fn view(
    rec: AgentRecord,
    talks_to: Vec<String>,
    declared: Vec<String>,
    granted: Vec<String>,
) -> AgentView {
    AgentView {
        agent_id: rec.id.clone(),
        id: rec.id,
        organization_id: rec.org_id,
        name: rec.name,
        display_name: rec.display_name,
        description: rec.description,
        agent_type: rec.agent_type,
        version: rec.version,
        repository_url: rec.repository_url,
        documentation_url: rec.documentation_url,
        status: rec.status,
        public_key: rec.public_key,
        key_algorithm: "Ed25519",
        key_created_at: iso(rec.key_created_at),
        rotation_count: rec.rotation_count,
        previous_public_key: rec.previous_public_key,
        previous_key_valid_until: iso_opt(rec.previous_key_valid_until),
        trust_score: rec.trust_score,
        talks_to,
        capabilities: declared,
        granted_capabilities: granted,
        labels: rec.labels,
        created_by: rec.created_by,
        created_at: iso(rec.created_at),
        updated_at: iso(rec.updated_at),
        last_active_at: iso_opt(rec.last_active_at),
    }
}

/// Answer of public registration (the shape the AIM SDK expects).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Registered {
    pub(crate) agent_id: String,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) public_key: String,
    /// Only when the server generated the key pair (the client sent no `public_key`): the
    /// 64-byte `seed‖public` key, standard base64, returned this once and never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) private_key: Option<String>,
    pub(crate) aim_url: String,
    pub(crate) status: AgentStatus,
    pub(crate) trust_score: f64,
    pub(crate) message: String,
}

struct NewAgent {
    name: String,
    display_name: String,
    description: String,
    agent_type: String,
    version: Option<String>,
    repository_url: Option<String>,
    documentation_url: Option<String>,
    public_key: String,
    generated: Option<AgentKeypair>,
    /// The name's confusable skeleton ([`names::name_key`]).
    name_key: String,
    talks_to: Vec<String>,
    capabilities: Vec<String>,
}

fn optional_text(v: Option<String>, what: &str, max: usize) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) => {
            let t = text_field(&s, what, max)?;
            Ok(if t.is_empty() { None } else { Some(t) })
        }
    }
}

fn validate_registration(req: RegisterAgent) -> Result<NewAgent> {
    let name = name_field(&req.name, "name", 128)?;
    let name_key = names::name_key(&name)?;
    let display_name = match req.display_name {
        Some(d) if !d.trim().is_empty() => name_field(&d, "display_name", 200)?,
        _ => name.clone(),
    };
    let description = match req.description {
        Some(d) => text_field(&d, "description", 2000)?,
        None => format!("Agent {name}"),
    };
    let agent_type = match req.agent_type {
        None => "ai_agent".to_owned(),
        Some(t) => {
            let t = t.trim().to_owned();
            if t.is_empty()
                || t.len() > 64
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(Error::bad_request(
                    "agent_type must be 1 to 64 characters of letters, digits, `_`, `-` or `.`",
                ));
            }
            t
        }
    };
    let mut talks_to = Vec::new();
    for m in req.talks_to.unwrap_or_default() {
        let m = name_field(&m, "talks_to entry", 200)?;
        if !talks_to.contains(&m) {
            talks_to.push(m);
        }
    }
    if talks_to.len() > 200 {
        return Err(Error::bad_request(
            "talks_to may list at most 200 MCP servers",
        ));
    }
    let mut capabilities = Vec::new();
    for c in req.capabilities.unwrap_or_default() {
        let c = c.trim().to_owned();
        validate_pattern(&c).map_err(|e| Error::bad_request(format!("capability: {e}")))?;
        if !capabilities.contains(&c) {
            capabilities.push(c);
        }
    }
    if capabilities.len() > 500 {
        return Err(Error::bad_request(
            "at most 500 capabilities may be declared",
        ));
    }
    let (public_key, generated) = match req.public_key {
        Some(pk) if !pk.trim().is_empty() => {
            let key = AgentPublicKey::from_b64(pk.trim()).map_err(|e| {
                Error::bad_request(format!(
                    "public_key must be a standard-base64 Ed25519 public key: {e}"
                ))
            })?;
            (key.to_b64(), None)
        }
        _ => {
            let pair = AgentKeypair::generate()
                .map_err(|e| Error::Internal(format!("key generation failed: {e}")))?;
            (pair.public_key().to_b64(), Some(pair))
        }
    };
    Ok(NewAgent {
        name,
        name_key,
        display_name,
        description,
        agent_type,
        version: optional_text(req.version, "version", 64)?,
        repository_url: optional_text(req.repository_url, "repository_url", 2048)?,
        documentation_url: optional_text(req.documentation_url, "documentation_url", 2048)?,
        public_key,
        generated,
        talks_to,
        capabilities,
    })
}

async fn insert_agent(
    conn: &mut SqliteConnection,
    person: &Person,
    now: i64,
    id: &str,
    a: &NewAgent,
) -> Result<f64> {
    let score = trust::score(AgentStatus::Verified, &TrustInputs::default());
    // The writer runs one job at a time, so this check and the insert cannot interleave with
    // another registration.
    let look_alike: Option<String> = sqlx::query_scalar(
        "SELECT name FROM agents WHERE organization_id = ? AND name_key = ? LIMIT 1",
    )
    .bind(&person.org_id)
    .bind(&a.name_key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(existing) = look_alike {
        return Err(Error::conflict(if existing == a.name {
            format!(
                "an agent named '{}' already exists in this organization",
                a.name
            )
        } else {
            format!(
                "the name '{}' looks like the existing agent '{existing}' (same letters after case folding and Unicode confusable mapping); choose a distinct name",
                a.name
            )
        }));
    }
    let inserted = sqlx::query(
        "INSERT INTO agents (id, organization_id, name, display_name, description, agent_type, version, \
         repository_url, documentation_url, status, public_key, key_created_at, key_generated_by_server, \
         trust_score, created_by, created_at, updated_at, registered_by_key, name_key) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'verified', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(&person.org_id)
    .bind(&a.name)
    .bind(&a.display_name)
    .bind(&a.description)
    .bind(&a.agent_type)
    .bind(&a.version)
    .bind(&a.repository_url)
    .bind(&a.documentation_url)
    .bind(&a.public_key)
    .bind(now)
    .bind(i64::from(a.generated.is_some()))
    .bind(score)
    .bind(&person.user_id)
    .bind(now)
    .bind(now)
    .bind(&person.api_key_id)
    .bind(&a.name_key)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::conflict(format!(
                "an agent named '{}' already exists in this organization",
                a.name
            )));
        }
        Err(e) => return Err(e.into()),
    }
    for cap in &a.capabilities {
        sqlx::query(
            "INSERT INTO agent_declared_capabilities (agent_id, capability, source, scope, declared_at) \
             VALUES (?, ?, 'registration', NULL, ?)",
        )
        .bind(id)
        .bind(cap)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for mcp in &a.talks_to {
        sqlx::query(
            "INSERT INTO agent_mcp_servers (agent_id, mcp_name, declared, declared_via, declared_at, detected, \
             detection_methods, drift_alerted) VALUES (?, ?, 1, 'registration', ?, 0, '[]', 0)",
        )
        .bind(id)
        .bind(mcp)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    audit::record(
        conn,
        audit::Entry {
            organization_id: &person.org_id,
            at: now,
            actor: &person.actor(),
            action: "agent.registered",
            target_type: "agent",
            target_id: Some(id),
            details: serde_json::json!({
                "name": a.name,
                "agent_type": a.agent_type,
                "key_source": if a.generated.is_some() { "server_generated_returned_once" } else { "client" },
                "public_key": a.public_key,
                "declared_capabilities": a.capabilities,
                "talks_to": a.talks_to,
            }),
        },
    )
    .await?;
    scores::apply(conn, id, now, TrustEvent::Recompute, Some("registered")).await
}

async fn register(
    state: &AppState,
    person: Person,
    body: &[u8],
) -> Result<(String, NewAgent, f64)> {
    let req: RegisterAgent = parse_body(body)?;
    let agent = validate_registration(req)?;
    let now = state.now_ms();
    let id = new_id();
    let (id, agent, score) = state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let score = insert_agent(conn, &person, now, &id, &agent).await?;
                Ok((id, agent, score))
            })
        })
        .await?;
    Ok((id, agent, score))
}

/// Register an agent with an organization API key (the AIM SDK's API-key mode).
///
/// Sends `X-AIM-API-Key` (also accepted: `X-API-Key`, `Authorization: Bearer`), role member or
/// higher. Without `public_key` the server generates the key pair, returns the private key
/// once and stores only the public key.
#[utoipa::path(post, path = "/api/v1/public/agents/register", tag = "agents",
    request_body = RegisterAgent,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "The key's role is below member", body = ErrorBody),
        (status = 409, description = "Name taken in this organization", body = ErrorBody),
    ))]
pub(crate) async fn public_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let person = state.registering_person(&headers).await?;
    let (id, agent, score) = register(&state, person, &body).await?;
    let private_key = agent
        .generated
        .as_ref()
        .map(|pair| pair.private_key_b64().to_string());
    let message = if private_key.is_some() {
        "Agent registered and verified. The private key is returned only this once: store it now."
    } else {
        "Agent registered and verified with its own public key."
    };
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            agent_id: id.clone(),
            id,
            name: agent.name,
            display_name: agent.display_name,
            public_key: agent.public_key,
            private_key,
            aim_url: state.public_url.clone(),
            status: AgentStatus::Verified,
            trust_score: score,
            message: message.to_owned(),
        }),
    )
        .into_response())
}

/// Answer of authenticated agent creation: the agent plus, when the server generated the key
/// pair, the private key (once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created {
    #[serde(flatten)]
    pub(crate) agent: AgentView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) private_key: Option<String>,
    pub(crate) aim_url: String,
}

/// Create an agent (API key with role member or higher). Same body as public registration.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents",
    request_body = RegisterAgent,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Created),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Role below member", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
    ))]
pub(crate) async fn create_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let person = state.person(&headers, Role::Member).await?;
    let org = person.org_id.clone();
    let (id, agent, _) = register(&state, person, &body).await?;
    let private_key = agent
        .generated
        .as_ref()
        .map(|pair| pair.private_key_b64().to_string());
    let rec = find_agent(&state.db.read, &org, &id).await?;
    let view = state.agent_view(rec).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            agent: view,
            private_key,
            aim_url: state.public_url.clone(),
        }),
    )
        .into_response())
}

/// Query of the agent list.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ListAgentsQuery {
    /// Only agents with this status.
    status: Option<String>,
    /// At most this many (1–1000, default 100).
    limit: Option<i64>,
    /// Skip this many.
    offset: Option<i64>,
}

/// A page of agents.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentList {
    agents: Vec<AgentView>,
    total: i64,
}

/// List the organization's agents (any role).
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    params(ListAgentsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Agents, by name", body = AgentList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListAgentsQuery>,
) -> Result<Json<AgentList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let limit = limit(q.limit, 100)?;
    let offset = offset(q.offset)?;
    let status = q.status.as_deref().map(AgentStatus::parse).transpose()?;
    let status_text = status.map(AgentStatus::as_str);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE organization_id = ? AND (? IS NULL OR status = ?) \
         ORDER BY name LIMIT ? OFFSET ?"
    )))
    .bind(&person.org_id)
    .bind(status_text)
    .bind(status_text)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.db.read)
    .await?;
    let (total,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM agents WHERE organization_id = ? AND (? IS NULL OR status = ?)",
    )
    .bind(&person.org_id)
    .bind(status_text)
    .bind(status_text)
    .fetch_one(&state.db.read)
    .await?;
    let mut agents = Vec::with_capacity(rows.len());
    for row in &rows {
        agents.push(state.agent_view(AgentRecord::from_row(row)?).await?);
    }
    Ok(Json(AgentList { agents, total }))
}

/// Get an agent by id or by name: a person (any role) or the agent itself (signed).
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id (UUID) or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such agent in the caller's organization", body = ErrorBody),
    ))]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<AgentView>> {
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let rec = find_agent(&state.db.read, caller.org_id(), &ident).await?;
    caller.require_agent_access(&rec.id, Role::Viewer)?;
    state.consume_replay(&caller).await?;
    Ok(Json(state.agent_view(rec).await?))
}

/// The SDK's lookup answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SdkAgent {
    success: bool,
    agent: AgentView,
}

/// Get an agent by id or name, SDK form (`{success, agent}`): API key or the agent's signature.
#[utoipa::path(get, path = "/api/v1/sdk-api/agents/{identifier}", tag = "sdk",
    params(("identifier" = String, Path, description = "Agent id (UUID) or name")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 200, description = "The agent", body = SdkAgent),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such agent in the caller's organization", body = ErrorBody),
    ))]
pub(crate) async fn sdk_get_agent(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
) -> Result<Json<SdkAgent>> {
    let Json(agent) = get_agent(State(state), method, uri, headers, Path(ident)).await?;
    Ok(Json(SdkAgent {
        success: true,
        agent,
    }))
}

/// Optional reason for a status change.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct StatusChange {
    /// Why (recorded in the audit log).
    #[serde(default)]
    reason: Option<String>,
}

async fn change_status(
    state: &AppState,
    headers: &HeaderMap,
    ident: &str,
    body: &[u8],
    min_role: Role,
    target: AgentStatus,
) -> Result<Json<AgentView>> {
    let person = state.person(headers, min_role).await?;
    let req: StatusChange = parse_optional_body(body)?;
    let reason = req
        .reason
        .map(|r| text_field(&r, "reason", 1000))
        .transpose()?;
    let rec = find_agent(&state.db.read, &person.org_id, ident).await?;
    let now = state.now_ms();
    let agent_id = rec.id.clone();
    let org = person.org_id.clone();
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let current: Option<String> =
                    sqlx::query_scalar("SELECT status FROM agents WHERE id = ? AND organization_id = ?")
                        .bind(&agent_id)
                        .bind(&person.org_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let current = AgentStatus::parse(
                    &current.ok_or_else(|| Error::not_found("the agent no longer exists"))?,
                )?;
                let allowed = match target {
                    AgentStatus::Suspended => matches!(current, AgentStatus::Verified | AgentStatus::Pending),
                    AgentStatus::Verified => matches!(current, AgentStatus::Suspended | AgentStatus::Pending),
                    AgentStatus::Revoked => current != AgentStatus::Revoked,
                    AgentStatus::Pending => false,
                };
                if !allowed {
                    return Err(Error::conflict(format!(
                        "agent is {current}; it cannot become {target}"
                    )));
                }
                sqlx::query(
                    "UPDATE agents SET status = ?, updated_at = ?, config_version = config_version + 1 WHERE id = ?",
                )
                    .bind(target.as_str())
                    .bind(now)
                    .bind(&agent_id)
                    .execute(&mut *conn)
                    .await?;
                let actor = person.actor();
                let withdrawn = if matches!(target, AgentStatus::Suspended | AgentStatus::Revoked) {
                    withdraw_verifications(
                        conn,
                        Withdrawal {
                            org_id: &person.org_id,
                            agent_id: &agent_id,
                            new_status: target.as_str(),
                            actor: &actor,
                            now,
                        },
                    )
                    .await?
                } else {
                    0
                };
                let action = match target {
                    AgentStatus::Suspended => "agent.suspended",
                    AgentStatus::Verified => "agent.reactivated",
                    AgentStatus::Revoked => "agent.revoked",
                    AgentStatus::Pending => "agent.pending",
                };
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &actor,
                        action,
                        target_type: "agent",
                        target_id: Some(&agent_id),
                        details: serde_json::json!({
                            "from": current, "to": target, "reason": reason,
                            "verifications_withdrawn": withdrawn,
                        }),
                    },
                )
                .await?;
                scores::apply(conn, &agent_id, now, TrustEvent::Recompute, Some(action)).await?;
                Ok(())
            })
        })
        .await?;
    state.decisions.invalidate(&rec.id);
    let rec = find_agent(&state.db.read, &org, &rec.id).await?;
    Ok(Json(state.agent_view(rec).await?))
}

/// Suspend an agent (member or higher): its signatures are refused until reactivated, its
/// pending verifications are cancelled and its unexpired approvals withdrawn (audited).
#[utoipa::path(post, path = "/api/v1/agents/{id}/suspend", tag = "agents",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body(content = StatusChange, description = "Optional reason"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Suspended", body = AgentView),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Not active", body = ErrorBody),
    ))]
pub(crate) async fn suspend_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<AgentView>> {
    change_status(
        &state,
        &headers,
        &ident,
        &body,
        Role::Member,
        AgentStatus::Suspended,
    )
    .await
}

/// Reactivate a suspended agent (admin).
#[utoipa::path(post, path = "/api/v1/agents/{id}/reactivate", tag = "agents",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body(content = StatusChange, description = "Optional reason"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Active again", body = AgentView),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Revoked or already active", body = ErrorBody),
    ))]
pub(crate) async fn reactivate_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<AgentView>> {
    change_status(
        &state,
        &headers,
        &ident,
        &body,
        Role::Admin,
        AgentStatus::Verified,
    )
    .await
}

/// Revoke an agent for good (admin); like suspension, cancels its pending verifications and
/// withdraws its unexpired approvals.
#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "agents",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body(content = StatusChange, description = "Optional reason"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Revoked", body = AgentView),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody),
    ))]
pub(crate) async fn revoke_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<AgentView>> {
    change_status(
        &state,
        &headers,
        &ident,
        &body,
        Role::Admin,
        AgentStatus::Revoked,
    )
    .await
}

/// Key rotation request.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RotateKey {
    /// The new Ed25519 public key (standard base64), generated by the agent.
    #[serde(alias = "publicKey")]
    public_key: String,
    /// Seconds the previous key keeps verifying (default: the server's grace, 24 h; 0 ends it
    /// immediately; at most 30 days).
    #[serde(default)]
    grace_seconds: Option<u64>,
}

/// Answer of a key rotation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Rotated {
    agent_id: String,
    public_key: String,
    previous_public_key: String,
    previous_key_valid_until: String,
    rotation_count: i64,
    key_created_at: String,
}

/// Rotate an agent's key: an admin, or the agent itself signing with its current key (never
/// with the key a rotation superseded). The previous key keeps verifying ordinary requests
/// during the grace period.
#[utoipa::path(post, path = "/api/v1/agents/{id}/keys", tag = "agents",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = RotateKey,
    security(("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 200, description = "Rotated", body = Rotated),
        (status = 400, description = "Invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin, another agent, or signed with the superseded key", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "Same key, or agent revoked", body = ErrorBody),
    ))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<Rotated>> {
    // An admin, or the agent itself with its current key: a member rotating an agent's key to
    // one the member holds would take the agent over, with every grant an admin gave it.
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Admin)
        .await?;
    let rec = find_agent(&state.db.read, caller.org_id(), &ident).await?;
    caller.require_agent_access(&rec.id, Role::Admin)?;
    caller.require_current_key("rotate the agent's key")?;
    let req: RotateKey = parse_body(&body)?;
    let new_key = AgentPublicKey::from_b64(req.public_key.trim())
        .map_err(|e| Error::bad_request(format!("public_key: {e}")))?
        .to_b64();
    let grace_ms = match req.grace_seconds {
        None => duration_ms(state.config.key_rotation_grace),
        Some(s) if s <= 30 * 86_400 => i64::try_from(s).unwrap_or(0) * 1000,
        Some(_) => return Err(Error::bad_request("grace_seconds must be at most 30 days")),
    };
    let now = state.now_ms();
    let agent_id = rec.id.clone();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let org = caller.org_id().to_owned();
    let out = state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT public_key, status, rotation_count FROM agents WHERE id = ? AND organization_id = ?",
                )
                .bind(&agent_id)
                .bind(&org)
                .fetch_optional(&mut *conn)
                .await?;
                let (old, status, count) =
                    row.ok_or_else(|| Error::not_found("the agent no longer exists"))?;
                if status == AgentStatus::Revoked.as_str() {
                    return Err(Error::conflict("the agent is revoked; its key cannot change"));
                }
                if old == new_key {
                    return Err(Error::conflict("the new key is the current key"));
                }
                let until = now + grace_ms;
                sqlx::query(
                    "UPDATE agents SET public_key = ?, previous_public_key = ?, previous_key_valid_until = ?, \
                     key_created_at = ?, rotation_count = rotation_count + 1, key_generated_by_server = 0, \
                     config_version = config_version + 1, \
                     updated_at = ? WHERE id = ?",
                )
                .bind(&new_key)
                .bind(&old)
                .bind(until)
                .bind(now)
                .bind(now)
                .bind(&agent_id)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "agent.key_rotated",
                        target_type: "agent",
                        target_id: Some(&agent_id),
                        details: serde_json::json!({
                            "public_key": new_key,
                            "previous_public_key": old,
                            "previous_key_valid_until": iso(until),
                        }),
                    },
                )
                .await?;
                Ok(Rotated {
                    agent_id,
                    public_key: new_key,
                    previous_public_key: old,
                    previous_key_valid_until: iso(until),
                    rotation_count: count + 1,
                    key_created_at: iso(now),
                })
            })
        })
        .await?;
    state.decisions.invalidate(&out.agent_id);
    Ok(Json(out))
}

/// The labels to set on an agent (replacing its current ones).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SetLabels {
    /// At most 32 labels, each 1 to 64 ASCII letters, digits, `-`, `_`, `.`, `:` or `=`.
    labels: Vec<String>,
}

/// Set an agent's labels (admin only). Policies select agents by id or by `label:NAME`, never
/// by name: members choose names, only admins choose labels.
#[utoipa::path(put, path = "/api/v1/agents/{id}/labels", tag = "agents",
    params(("id" = String, Path, description = "Agent id or name")),
    request_body = SetLabels,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Labels set", body = AgentView),
        (status = 400, description = "Invalid label", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
    ))]
pub(crate) async fn set_labels(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ident): Path<String>,
    body: Bytes,
) -> Result<Json<AgentView>> {
    let person = state.person(&headers, Role::Admin).await?;
    let req: SetLabels = parse_body(&body)?;
    let mut labels = Vec::new();
    for l in &req.labels {
        let l = label_field(l)?;
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    if labels.len() > 32 {
        return Err(Error::bad_request("an agent has at most 32 labels"));
    }
    labels.sort();
    let rec = find_agent(&state.db.read, &person.org_id, &ident).await?;
    let (agent_id, org, now) = (rec.id.clone(), person.org_id.clone(), state.now_ms());
    let text = serde_json::to_string(&labels)
        .map_err(|e| Error::Internal(format!("labels do not serialize: {e}")))?;
    state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE agents SET labels = ?, updated_at = ?, config_version = config_version + 1 \
                     WHERE id = ? AND organization_id = ?",
                )
                .bind(&text)
                .bind(now)
                .bind(&agent_id)
                .bind(&person.org_id)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &person.actor(),
                        action: "agent.labels_set",
                        target_type: "agent",
                        target_id: Some(&agent_id),
                        details: serde_json::json!({ "labels": labels }),
                    },
                )
                .await
            })
        })
        .await?;
    state.decisions.invalidate(&rec.id);
    let rec = find_agent(&state.db.read, &org, &rec.id).await?;
    Ok(Json(state.agent_view(rec).await?))
}

/// Helper for other modules: resolves the agent a caller addresses and checks access.
pub(crate) async fn addressed_agent(
    state: &AppState,
    caller: &Caller,
    ident: &str,
    min_role: Role,
) -> Result<AgentRecord> {
    let rec = find_agent(&state.db.read, caller.org_id(), ident).await?;
    caller.require_agent_access(&rec.id, min_role)?;
    Ok(rec)
}
