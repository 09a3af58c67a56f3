//! Action verification: the agent asks, the decision engine answers approved (201), denied (403)
//! or pending (202); people approve or deny pending ones; the agent polls and reports results.

use aim_crypto::canonical::{self, Value};
use aim_crypto::hash::sha256;
use aim_crypto::{ActionPayload, AgentSignature};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use utoipa::{IntoParams, ToSchema};

use super::util::{
    iso, iso_opt, json_column, limit, offset, parse_optional_body, parse_timestamp, parts,
    text_field,
};
use crate::audit::{self, Actor};
use crate::auth::require_independent_approver;
use crate::auth::{SignatureHeaders, has_signature_headers, parse_uuid};
use crate::config::duration_ms;
use crate::db::writer::{ChunkItem, ChunkKind, Completion, Query as SqlQuery};
use crate::decision::{self, AgentFacts, DecisionInput, Outcome};
use crate::decision_cache::{self, Bundle, Counters};
use crate::error::{Error, Result};
use crate::metrics::DecisionKind;
use crate::model::{AgentStatus, Risk, Role, VerificationStatus};
use crate::routes::ErrorBody;
use crate::scores::{self, TrustEvent};
use crate::state::AppState;
use crate::sweep::expire_pending;

/// Largest `context` accepted, in bytes of canonical JSON.
const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// A verification request as parsed: the typed fields plus the canonical context.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationBody {
    /// `agent_id` / `agentId`.
    pub agent_id: String,
    /// `action_type` / `actionType` / `capability`.
    pub action_type: String,
    /// `resource` (null or absent → `None`).
    pub resource: Option<String>,
    /// `context` (absent or null → `{}`), number lexemes preserved.
    pub context: Value,
    /// `timestamp` as sent.
    pub timestamp: String,
    /// Body `signature` (standard base64).
    pub signature: String,
    /// `public_key` / `publicKey`, if sent.
    pub public_key: Option<String>,
    /// `risk_level` / `riskLevel`, if sent (then it is part of the signed payload).
    pub risk_level: Option<String>,
}

fn field<'a>(
    obj: &'a std::collections::BTreeMap<String, Value>,
    names: &[&str],
) -> Result<Option<&'a Value>> {
    let mut found: Option<(&str, &Value)> = None;
    for n in names {
        if let Some(v) = obj.get(*n) {
            if let Some((first, _)) = found {
                return Err(Error::bad_request(format!(
                    "send either `{first}` or `{n}`, not both"
                )));
            }
            found = Some((n, v));
        }
    }
    Ok(found.map(|(_, v)| v))
}

fn string_field(
    obj: &std::collections::BTreeMap<String, Value>,
    names: &[&str],
    required: bool,
) -> Result<Option<String>> {
    match field(obj, names)? {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(Error::bad_request(format!("`{}` is required", names[0]))),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request(format!(
            "`{}` must be a string",
            names[0]
        ))),
    }
}

/// Parses a verification body strictly (valid UTF-8 JSON object, no duplicate keys) and extracts
/// the typed fields, accepting the snake_case of the spec and the camelCase of the PyPI SDKs.
pub fn parse_verification_body(body: &[u8]) -> Result<VerificationBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    let value = canonical::parse(body)
        .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Error::bad_request("the body must be a JSON object"));
    };
    let agent_id = string_field(&obj, &["agent_id", "agentId"], true)?.unwrap_or_default();
    let agent_id = parse_uuid(&agent_id, "agent_id")?;
    let action_type =
        string_field(&obj, &["action_type", "actionType", "capability"], true)?.unwrap_or_default();
    if action_type.is_empty()
        || action_type.chars().count() > 200
        || action_type.chars().any(char::is_control)
    {
        return Err(Error::bad_request(
            "action_type must be 1 to 200 characters without control characters",
        ));
    }
    let resource = string_field(&obj, &["resource"], false)?;
    if resource.as_ref().is_some_and(|r| r.chars().count() > 2000) {
        return Err(Error::bad_request(
            "resource must be at most 2000 characters",
        ));
    }
    let context = match field(&obj, &["context"])? {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(Error::bad_request("`context` must be a JSON object")),
    };
    let timestamp = string_field(&obj, &["timestamp"], true)?.unwrap_or_default();
    let signature = string_field(&obj, &["signature"], false)?.ok_or_else(|| {
        Error::bad_request(
            "`signature` is required: the body must be signed with the agent's key (API-key-only verification is not accepted)",
        )
    })?;
    let public_key = string_field(&obj, &["public_key", "publicKey"], false)?;
    let risk_level = string_field(&obj, &["risk_level", "riskLevel"], false)?;
    Ok(VerificationBody {
        agent_id,
        action_type,
        resource,
        context,
        timestamp,
        signature,
        public_key,
        risk_level,
    })
}

impl VerificationBody {
    /// The signed payload (five fields, plus `risk_level` when present).
    pub fn payload(&self) -> ActionPayload {
        ActionPayload {
            action_type: self.action_type.clone(),
            agent_id: self.agent_id.clone(),
            context: self.context.clone(),
            resource: self.resource.clone(),
            timestamp: self.timestamp.clone(),
            risk_level: self.risk_level.clone(),
        }
    }
}

/// Answer to a verification request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationAnswer {
    /// The persisted verification id (poll it, report its result).
    id: String,
    /// `approved`, `denied` or `pending`.
    status: VerificationStatus,
    /// Who approved (`system` for automatic approvals).
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<String>,
    /// When the approval lapses (approved only).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    /// Why it was denied, and what to change (denied only).
    #[serde(skip_serializing_if = "Option::is_none")]
    denial_reason: Option<String>,
    /// Same as `denial_reason` prefixed with `action denied: ` (denied only), for clients that
    /// only read `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The engine's explanation.
    reason: String,
    /// Risk level of the action.
    risk_level: Risk,
    /// The agent's trust score after this decision.
    trust_score: f64,
    /// When a pending verification expires if nobody decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_expires_at: Option<String>,
}

// The statements that record a chunk of verifications (see `db::writer`), one per table. They
// never fail on input. A verification is inserted only if the agent's and organization's
// configuration versions are those its decision used, and not at all if its body signature or
// request signature already recorded a verification (`UNIQUE` columns: the replay guard of this
// route); every other write is conditional on the verification row existing, and the counter
// update returns the agent's counters tagged with the agent id (no row: nothing was recorded).
// The writer never puts two verifications of one agent in the same chunk, so that row is the
// item's. The trust-history statement runs only when some item of the chunk is due one.

/// Columns of the verification values, in bind order.
const V_COLUMNS: &str = "id, organization_id, agent_id, action_type, resource, context, risk, \
    status, reason, required_trust, trust_score, decided_by, created_at, decided_at, \
    pending_expires_at, approval_expires_at, body_signature_hash, header_signature_hash, \
    agent_version, org_version";
const V_PARAMS: usize = 20;
const AUDIT_PARAMS: usize = 8;
const HISTORY_PARAMS: usize = 9;
const UPDATE_PARAMS: usize = 6;

/// `(?, ?, …), (?, ?, …)`: `rows` rows of `columns` placeholders.
fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

fn record_sql(n: usize, history: bool) -> String {
    let mut sql = String::from("SAVEPOINT chunk;");
    sql.push_str(&format!(
        "WITH v ({V_COLUMNS}) AS (VALUES {}) \
         INSERT INTO verifications (id, organization_id, agent_id, action_type, resource, context, \
           risk, status, reason, required_trust, trust_score, decided_by, created_at, decided_at, \
           pending_expires_at, approval_expires_at, body_signature_hash, header_signature_hash) \
         SELECT v.id, v.organization_id, v.agent_id, v.action_type, v.resource, v.context, v.risk, \
           v.status, v.reason, v.required_trust, v.trust_score, v.decided_by, v.created_at, \
           v.decided_at, v.pending_expires_at, v.approval_expires_at, v.body_signature_hash, \
           v.header_signature_hash \
         FROM v JOIN agents a ON a.id = v.agent_id \
         WHERE a.config_version = v.agent_version \
           AND (SELECT o.config_version FROM organizations o WHERE o.id = a.organization_id) = v.org_version \
         ON CONFLICT DO NOTHING;",
        values(n, V_PARAMS)
    ));
    sql.push_str(&format!(
        "WITH v (id, organization_id, at, actor_type, actor_id, action, target_id, details) \
           AS (VALUES {}) \
         INSERT INTO audit_log (id, organization_id, at, actor_type, actor_id, action, target_type, \
           target_id, details) \
         SELECT v.id, v.organization_id, v.at, v.actor_type, v.actor_id, v.action, 'verification', \
           v.target_id, v.details \
         FROM v WHERE EXISTS (SELECT 1 FROM verifications x WHERE x.id = v.target_id);",
        values(n, AUDIT_PARAMS)
    ));
    if history {
        sql.push_str(&format!(
            "WITH v (id, organization_id, agent_id, at, score, previous_score, reason, factors, \
               verification_id) AS (VALUES {}) \
             INSERT INTO trust_history (id, organization_id, agent_id, at, score, previous_score, \
               reason, factors) \
             SELECT v.id, v.organization_id, v.agent_id, v.at, v.score, v.previous_score, v.reason, \
               v.factors \
             FROM v WHERE v.factors IS NOT NULL \
               AND EXISTS (SELECT 1 FROM verifications x WHERE x.id = v.verification_id);",
            values(n, HISTORY_PARAMS)
        ));
    }
    sql.push_str(&format!(
        "WITH v (agent, inc_approved, inc_denied, at, score, verification_id) AS (VALUES {}) \
         UPDATE agents SET verifications_approved = verifications_approved + v.inc_approved, \
           verifications_denied = verifications_denied + v.inc_denied, last_active_at = v.at, \
           trust_score = v.score \
         FROM v WHERE agents.id = v.agent \
           AND EXISTS (SELECT 1 FROM verifications x WHERE x.id = v.verification_id) \
         RETURNING id, created_at, verifications_approved, verifications_denied, results_success, \
           results_failure, human_approvals, human_denials, alerts_raised, drift_events;",
        values(n, UPDATE_PARAMS)
    ));
    sql.push_str("RELEASE chunk");
    sql
}

/// Statement parts of a recorded verification: verification, audit, history (optional), counters.
static RECORD_KIND: ChunkKind = ChunkKind::new(record_sql, 4, Some(2));

/// The replay key stored for a signature in `verifications.body_signature_hash` and
/// `header_signature_hash`: `t`, the signed timestamp in Unix seconds (11 digits), `.`, and the
/// hex SHA-256 of the signature. A replay carries the same signed timestamp (changing it breaks
/// the signature), so the key is exactly as unique as the signature; leading with the time keeps
/// the unique indexes' inserts at their right edge (a page or two per batch instead of one random
/// page per verification and index). Versions before this format stored the bare digest, which
/// sorts before every `t…` key (see `AppState::legacy_replay_until_ms`).
fn replay_key(signed_secs: i64, signature_hash: &str) -> String {
    format!("t{:011}.{signature_hash}", signed_secs.max(0))
}

/// Ask for a decision on an action.
///
/// The body carries the action and a signature over its Python-canonical form (the AIM SDK's
/// `verify_action`). Authentication: the agent's signature headers, or an API key of its
/// organization (member or higher), or — as the PyPI SDKs send it — the body signature alone.
/// In every case the body signature must verify with the agent's registered key and the body
/// timestamp must be within the signature window; the signature can be used once.
#[utoipa::path(post, path = "/api/v1/sdk-api/verifications", tag = "sdk",
    request_body(content = String, description = "JSON: {agent_id|agentId, action_type|actionType|capability, resource, context, timestamp, signature, public_key|publicKey, risk_level?}", content_type = "application/json"),
    security((), ("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 201, description = "Approved", body = VerificationAnswer),
        (status = 202, description = "Pending: a person must decide; poll GET /api/v1/sdk-api/verifications/{id}", body = VerificationAnswer),
        (status = 403, description = "Denied (`status: denied` with `denial_reason`), or the agent is suspended/revoked", body = VerificationAnswer),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Bad signature, stale timestamp, replay, unknown agent", body = ErrorBody),
        (status = 404, description = "The agent is not in the API key's organization", body = ErrorBody),
    ))]
pub(crate) async fn create_verification(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    // Cheap, stateless checks first: size, shape, timestamps. A bad request is refused before
    // any database read or signature check, and the same way whether or not the agent exists.
    let max = state.config.limits.max_verification_body_bytes;
    if body.len() > max {
        return Err(Error::PayloadTooLarge { limit: max });
    }
    let req = parse_verification_body(&body)?;
    precheck(&state, &req, &headers)?;
    // Who is asking: signature headers, an API key of the agent's organization, or the body
    // signature alone.
    let signed = if has_signature_headers(&headers) {
        let h = SignatureHeaders::parse(&headers)?;
        if h.agent_id != req.agent_id {
            return Err(Error::forbidden(format!(
                "the request is signed by agent {} but the body's agent_id is {}",
                h.agent_id, req.agent_id
            )));
        }
        Some(h)
    } else {
        None
    };
    let person = if signed.is_none()
        && (headers.contains_key("x-api-key") || headers.contains_key("authorization"))
    {
        Some(state.person(&headers, Role::Member).await?)
    } else {
        None
    };
    let ctx = Attempt {
        state: &state,
        req: &req,
        signed: signed.as_ref(),
        person: person.as_ref(),
        parts: parts(&method, &uri, &headers, &body),
    };
    // Decide with the cached inputs when there are any; the recording statement checks they are
    // still current. A stale cache, or a failure that fresh data might change, is retried from
    // a fresh read.
    let (mut bundle, mut fresh) = match state.decisions.get(&req.agent_id, state.now_ms()) {
        Some(b) => (b, false),
        None => (ctx.load().await?, true),
    };
    for _ in 0..4 {
        match ctx.run(&bundle).await {
            Ok(Some(answer)) => return Ok(answer),
            Ok(None) => {}
            Err(e) if fresh => return Err(e),
            Err(_) => {}
        }
        state.decisions.invalidate(&req.agent_id);
        bundle = ctx.load().await?;
        fresh = true;
    }
    Err(Error::Unavailable(
        "the agent's configuration kept changing during the decision; retry".into(),
    ))
}

/// The one answer for "no such agent" and "the signature does not verify", so the
/// unauthenticated route does not tell which agent ids exist.
const NOT_VERIFIED: &str = "the signature does not verify with the registered key of this agent id (or there is no such agent)";

/// Stateless checks done before anything costs: the body timestamp and the request-signature
/// timestamp (and v2 nonce form) must be acceptable, and the context within its limit.
fn precheck(state: &AppState, req: &VerificationBody, headers: &HeaderMap) -> Result<()> {
    let now = state.now_ms();
    let window_ms = duration_ms(state.config.signature_window);
    let ts = parse_timestamp(&req.timestamp).ok_or_else(|| {
        Error::bad_request("timestamp must be RFC 3339 (e.g. 2025-10-24T14:44:21.123456Z)")
    })?;
    if (now - ts).abs() > window_ms {
        return Err(Error::unauthorized(format!(
            "the verification timestamp is {} s away from server time (window ±{} s); check the agent's clock",
            (ts - now) / 1000,
            window_ms / 1000
        )));
    }
    if has_signature_headers(headers) {
        let h = SignatureHeaders::parse(headers)?;
        let verifier =
            aim_crypto::RequestVerifier::with_window(state.config.signature_window.as_secs());
        verifier
            .check_fresh(h.timestamp, u64::try_from(now / 1000).unwrap_or(0))
            .map_err(crate::auth::signature_error)?;
        if let Some(nonce) = h.nonce {
            aim_crypto::request_v2::check_nonce(nonce).map_err(crate::auth::signature_error)?;
        }
    }
    if req.context.to_python_json().len() > MAX_CONTEXT_BYTES {
        return Err(Error::bad_request(format!(
            "context is larger than {MAX_CONTEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// One verification request being decided.
struct Attempt<'a> {
    state: &'a AppState,
    req: &'a VerificationBody,
    signed: Option<&'a SignatureHeaders<'a>>,
    person: Option<&'a crate::auth::Person>,
    parts: crate::auth::RequestParts<'a>,
}

impl Attempt<'_> {
    /// Reads the agent's decision inputs from the database and caches them.
    async fn load(&self) -> Result<Bundle> {
        match decision_cache::load(&self.state.db.read, &self.req.agent_id, self.state.now_ms())
            .await?
        {
            Some(b) => {
                self.state.decisions.put(&self.req.agent_id, b.clone());
                Ok(b)
            }
            None if self.person.is_some() => Err(Error::not_found(format!(
                "no agent {} in this organization",
                self.req.agent_id
            ))),
            None => Err(Error::unauthorized(NOT_VERIFIED)),
        }
    }

    /// Authenticates, decides and records. `Ok(None)`: the inputs changed before the decision
    /// could be recorded (nothing was recorded).
    async fn run(&self, bundle: &Bundle) -> Result<Option<Response>> {
        let state = self.state;
        let req = self.req;
        let keys = &bundle.fixed.keys;
        let (header_mark, actor) = match (self.signed, self.person) {
            (Some(h), _) => {
                // A bad request signature reads exactly like an unknown agent. Status is left to
                // the decision, which denies an inactive agent (recorded).
                let caller =
                    state
                        .verify_signature(keys, h, &self.parts)
                        .map_err(|e| match e.status() {
                            StatusCode::UNAUTHORIZED => Error::unauthorized(NOT_VERIFIED),
                            _ => e,
                        })?;
                (
                    Some(caller.replay),
                    Actor::Agent {
                        agent_id: caller.agent_id,
                    },
                )
            }
            (None, Some(p)) => {
                if p.org_id != keys.org_id {
                    return Err(Error::not_found(format!(
                        "no agent {} in this organization",
                        req.agent_id
                    )));
                }
                (None, p.actor())
            }
            (None, None) => (
                None,
                Actor::Agent {
                    agent_id: keys.id.clone(),
                },
            ),
        };
        // The body signature, with the registered key(s).
        let now = state.now_ms();
        let candidates = keys.keys_at(now);
        if let Some(pk) = &req.public_key
            && !candidates.iter().any(|k| k.text == pk.trim())
        {
            return Err(Error::unauthorized(NOT_VERIFIED));
        }
        let payload = req.payload();
        if !candidates
            .iter()
            .any(|k| payload.verify(&k.key, &req.signature).is_ok())
        {
            return Err(Error::unauthorized(NOT_VERIFIED));
        }
        // Checked in `precheck` already; parsed again for its value.
        let ts = parse_timestamp(&req.timestamp).ok_or_else(|| {
            Error::bad_request("timestamp must be RFC 3339 (e.g. 2025-10-24T14:44:21.123456Z)")
        })?;
        // A suspended or revoked agent is not refused here: the decision denies it and the
        // denial is recorded, which consumes both signatures (a refused request must never be
        // replayable later, say after a reactivation).
        let sig = AgentSignature::from_b64(&req.signature)
            .map_err(|_| Error::unauthorized("signature is not a base64 Ed25519 signature"))?;
        let body_hash = hex::encode(sha256(&sig.to_bytes()));
        let body_key = replay_key(ts.div_euclid(1000), &body_hash);
        // The request signature's key, from the signed X-Timestamp (already checked).
        let header_key = match (&header_mark, self.signed) {
            (Some(mark), Some(h)) => {
                let secs = h
                    .timestamp
                    .parse::<i64>()
                    .map_err(|_| Error::unauthorized("X-Timestamp must be decimal Unix seconds"))?;
                Some(replay_key(secs, &mark.signature_hash))
            }
            _ => None,
        };
        // Signatures recorded by a version that stored bare digests, still inside their window.
        let legacy_until = state.legacy_replay_until_ms;
        let header_secs_ms = self
            .signed
            .and_then(|h| h.timestamp.parse::<i64>().ok())
            .map_or(i64::MIN, |s| s.saturating_mul(1000));
        if legacy_until > 0 && (ts <= legacy_until || header_secs_ms <= legacy_until) {
            let header_hash = header_mark.as_ref().map(|m| m.signature_hash.as_str());
            let (seen,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM verifications WHERE body_signature_hash = ? \
                 OR (? IS NOT NULL AND header_signature_hash = ?)",
            )
            .bind(&body_hash)
            .bind(header_hash)
            .bind(header_hash)
            .fetch_one(&state.db.read)
            .await?;
            if seen > 0 {
                return Err(Error::unauthorized("replayed request"));
            }
        }
        let context_json = req.context.to_python_json();

        // Decide.
        let serde_context = req.context.to_serde();
        let decision = decision::decide(&DecisionInput {
            agent: AgentFacts {
                id: &keys.id,
                name: &keys.name,
                status: keys.status,
                labels: &bundle.fixed.labels,
            },
            grants: &bundle.fixed.grants,
            policies: &bundle.fixed.policies,
            risk_overrides: &bundle.fixed.risks,
            trust_score: bundle.trust,
            action: &req.action_type,
            resource: req.resource.as_deref(),
            context: &serde_context,
        });
        let (status, event, kind) = match decision.outcome {
            Outcome::Approved => (
                VerificationStatus::Approved,
                TrustEvent::Approved,
                DecisionKind::Approved,
            ),
            Outcome::Denied => (
                VerificationStatus::Denied,
                TrustEvent::Denied,
                DecisionKind::Denied,
            ),
            Outcome::Pending => (
                VerificationStatus::Pending,
                TrustEvent::Pending,
                DecisionKind::Pending,
            ),
        };
        // Time-ordered, so the primary key index grows at its right edge.
        let id = crate::db::new_ordered_id();
        let approval_expires = (status == VerificationStatus::Approved)
            .then(|| now + duration_ms(state.config.approval_ttl));
        let pending_expires = (status == VerificationStatus::Pending)
            .then(|| now + duration_ms(state.config.pending_ttl));
        let audit_action = match status {
            VerificationStatus::Approved => "verification.approved",
            VerificationStatus::Denied => "verification.denied",
            _ => "verification.pending",
        };
        let details = serde_json::json!({
            "agent_id": keys.id,
            "action_type": req.action_type,
            "resource": req.resource,
            "risk": decision.risk,
            "reason": decision.reason,
            "policy": decision.policy,
            "capability": decision.capability,
            "trust_score": bundle.trust,
        })
        .to_string();

        // The trust score after this event, from the counters the decision saw.
        let (inc_approved, inc_denied) = match status {
            VerificationStatus::Approved => (1_i64, 0_i64),
            VerificationStatus::Denied => (0, 1),
            _ => (0, 0),
        };
        let mut expected = bundle.counters;
        expected.approved += inc_approved;
        expected.denied += inc_denied;
        let factors = crate::trust::factors(keys.status, &expected.inputs(now));
        let new_trust = factors.score();
        let history = (new_trust * 100.0).round() != (bundle.trust * 100.0).round();

        // Record, durably, then answer.
        let w = Record {
            id: id.clone(),
            org: keys.org_id.clone(),
            agent_id: keys.id.clone(),
            action: req.action_type.clone(),
            resource: req.resource.clone(),
            context_json,
            risk: decision.risk,
            status,
            reason: decision.reason.clone(),
            required: decision.required_trust,
            trust_before: bundle.trust,
            agent_version: bundle.fixed.agent_version,
            org_version: bundle.fixed.org_version,
            now,
            pending_expires,
            approval_expires,
            body_key,
            header_key,
            actor,
            audit_action,
            details,
            event,
            inc_approved,
            inc_denied,
            new_trust,
            history: history
                .then(|| serde_json::to_string(&factors).unwrap_or_else(|_| "{}".into())),
            expected,
            audit_id: crate::db::new_ordered_id(),
            history_id: crate::db::new_ordered_id(),
        };
        let body_key = w.body_key.clone();
        let header_key = w.header_key.clone();
        let (reply, answer) = tokio::sync::oneshot::channel();
        state
            .db
            .writer
            .write_chunked(Box::new(RecordItem { rec: w, reply }))
            .await?;
        let outcome = answer.await.map_err(|_| {
            Error::Unavailable("the write was abandoned (database failure)".into())
        })??;
        let (trust_score, counters) = match outcome {
            RecordOutcome::NotRecorded => {
                // A replay, or inputs that changed under the decision (then: decide again).
                let (seen,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM verifications WHERE body_signature_hash = ? \
                     OR (? IS NOT NULL AND header_signature_hash = ?)",
                )
                .bind(&body_key)
                .bind(header_key.as_deref())
                .bind(header_key.as_deref())
                .fetch_one(&state.db.read)
                .await?;
                if seen > 0 {
                    return Err(Error::unauthorized("replayed request"));
                }
                return Ok(None);
            }
            RecordOutcome::Recorded {
                trust,
                counters,
                resync,
            } => {
                if resync {
                    resync_trust(state, &keys.id);
                }
                (trust, counters)
            }
        };
        state.decisions.put(
            &keys.id,
            Bundle {
                fixed: bundle.fixed.clone(),
                trust: trust_score,
                counters,
                loaded_at: bundle.loaded_at,
            },
        );
        state.metrics.count_decision(kind);

        let answer = VerificationAnswer {
            id,
            status,
            approved_by: (status == VerificationStatus::Approved).then(|| "system".to_owned()),
            expires_at: approval_expires.map(iso),
            denial_reason: (status == VerificationStatus::Denied).then(|| decision.reason.clone()),
            error: (status == VerificationStatus::Denied)
                .then(|| format!("action denied: {}", decision.reason)),
            reason: decision.reason,
            risk_level: decision.risk,
            trust_score,
            pending_expires_at: pending_expires.map(iso),
        };
        let code = match status {
            VerificationStatus::Approved => StatusCode::CREATED,
            VerificationStatus::Denied => StatusCode::FORBIDDEN,
            _ => StatusCode::ACCEPTED,
        };
        Ok(Some((code, Json(answer)).into_response()))
    }
}

/// Everything one verification writes.
struct Record {
    id: String,
    org: String,
    agent_id: String,
    action: String,
    resource: Option<String>,
    context_json: String,
    risk: Risk,
    status: VerificationStatus,
    reason: String,
    required: f64,
    trust_before: f64,
    agent_version: i64,
    org_version: i64,
    now: i64,
    pending_expires: Option<i64>,
    approval_expires: Option<i64>,
    /// Replay keys of the body signature and of the request signature (see [`replay_key`]).
    body_key: String,
    header_key: Option<String>,
    actor: Actor,
    audit_action: &'static str,
    details: String,
    event: TrustEvent,
    inc_approved: i64,
    inc_denied: i64,
    new_trust: f64,
    /// Factors JSON when a trust-history row is due.
    history: Option<String>,
    /// The counters expected after this event.
    expected: Counters,
    /// Ids for the audit and history rows.
    audit_id: String,
    history_id: String,
}

/// What recording a verification did.
enum RecordOutcome {
    /// Recorded; the agent's stored score and counters afterwards. `resync`: other events were
    /// counted concurrently, so the stored score must be recomputed from the counters.
    Recorded {
        trust: f64,
        counters: Counters,
        resync: bool,
    },
    /// Nothing was recorded: the decision's inputs changed, or a signature was replayed.
    NotRecorded,
}

/// A verification queued for the writer.
struct RecordItem {
    rec: Record,
    reply: tokio::sync::oneshot::Sender<Result<RecordOutcome>>,
}

impl Record {
    /// Reads the result row of this verification (`None`: nothing was recorded).
    fn outcome(&self, row: Option<&sqlx::sqlite::SqliteRow>) -> Result<RecordOutcome> {
        let Some(row) = row else {
            return Ok(RecordOutcome::NotRecorded);
        };
        let counters = Counters {
            created_at: row.try_get(1)?,
            approved: row.try_get(2)?,
            denied: row.try_get(3)?,
            results_success: row.try_get(4)?,
            results_failure: row.try_get(5)?,
            human_approvals: row.try_get(6)?,
            human_denials: row.try_get(7)?,
            alerts: row.try_get(8)?,
            drift: row.try_get(9)?,
        };
        Ok(RecordOutcome::Recorded {
            trust: self.new_trust,
            resync: counters != self.expected,
            counters,
        })
    }
}

impl ChunkItem for RecordItem {
    fn kind(&self) -> &'static ChunkKind {
        &RECORD_KIND
    }

    fn key(&self) -> &str {
        &self.rec.agent_id
    }

    fn needs_optional(&self) -> bool {
        self.rec.history.is_some()
    }

    fn bind<'q>(&'q self, part: usize, q: SqlQuery<'q>) -> SqlQuery<'q> {
        let r = &self.rec;
        match part {
            // The verification, with its signatures' replay keys and the configuration
            // versions its decision used.
            0 => {
                let decided = r.status != VerificationStatus::Pending;
                q.bind(&r.id)
                    .bind(&r.org)
                    .bind(&r.agent_id)
                    .bind(&r.action)
                    .bind(&r.resource)
                    .bind(&r.context_json)
                    .bind(r.risk.as_str())
                    .bind(r.status.as_str())
                    .bind(&r.reason)
                    .bind(r.required)
                    .bind(r.trust_before)
                    .bind(decided.then_some("system"))
                    .bind(r.now)
                    .bind(decided.then_some(r.now))
                    .bind(r.pending_expires)
                    .bind(r.approval_expires)
                    .bind(&r.body_key)
                    .bind(r.header_key.as_deref())
                    .bind(r.agent_version)
                    .bind(r.org_version)
            }
            // Its audit record.
            1 => q
                .bind(&r.audit_id)
                .bind(&r.org)
                .bind(r.now)
                .bind(r.actor.kind())
                .bind(r.actor.id())
                .bind(r.audit_action)
                .bind(&r.id)
                .bind(&r.details),
            // The trust history row (factors NULL: none due for this item).
            2 => q
                .bind(&r.history_id)
                .bind(&r.org)
                .bind(&r.agent_id)
                .bind(r.now)
                .bind(r.new_trust)
                .bind(r.trust_before)
                .bind(r.event.reason())
                .bind(r.history.as_deref())
                .bind(&r.id),
            // The counters and score.
            _ => q
                .bind(&r.agent_id)
                .bind(r.inc_approved)
                .bind(r.inc_denied)
                .bind(r.now)
                .bind(r.new_trust)
                .bind(&r.id),
        }
    }

    fn finish(self: Box<Self>, row: Result<Option<sqlx::sqlite::SqliteRow>>) -> Completion {
        let outcome = row.and_then(|r| self.rec.outcome(r.as_ref()));
        let reply = self.reply;
        Box::new(move |commit: Option<&Error>| {
            let answer = match (commit, outcome) {
                (None, outcome) => outcome,
                (Some(_), Err(e)) => Err(e),
                (Some(e), Ok(_)) => Err(Error::Unavailable(format!(
                    "the write could not be committed: {}",
                    e.public_message()
                ))),
            };
            let _ = reply.send(answer);
        })
    }
}

/// Recomputes an agent's stored trust score from its counters (after concurrent events), off
/// the request path.
fn resync_trust(state: &AppState, agent_id: &str) {
    let state = state.clone();
    let agent_id = agent_id.to_owned();
    tokio::spawn(async move {
        let now = state.now_ms();
        let id = agent_id.clone();
        let result = state
            .db
            .writer
            .write(move |conn| {
                Box::pin(
                    async move { scores::apply(conn, &id, now, TrustEvent::Resync, None).await },
                )
            })
            .await;
        match result {
            Ok(_) => state.decisions.invalidate(&agent_id),
            Err(e) => tracing::warn!(error = %e, "trust score resync failed"),
        }
    });
}

/// A persisted verification.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationView {
    id: String,
    agent_id: String,
    agent_name: String,
    action_type: String,
    resource: Option<String>,
    #[schema(value_type = Object)]
    context: serde_json::Value,
    /// `pending`, `approved`, `denied` or `expired`.
    status: VerificationStatus,
    reason: String,
    risk_level: Risk,
    required_trust: f64,
    /// The agent's trust score when it asked.
    trust_score: f64,
    /// `system` or the e-mail of the person who approved (approved only).
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<String>,
    /// `system` or the e-mail of the person who decided.
    decided_by: Option<String>,
    /// When the approval lapses (approved only).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    /// Denied only.
    #[serde(skip_serializing_if = "Option::is_none")]
    denial_reason: Option<String>,
    /// When a pending verification expires.
    pending_expires_at: Option<String>,
    created_at: String,
    decided_at: Option<String>,
    /// Reported result: `success` or `failure`.
    result: Option<String>,
    result_reason: Option<String>,
    result_summary: Option<String>,
    result_error: Option<String>,
    #[schema(value_type = Option<Object>)]
    result_metadata: Option<serde_json::Value>,
    result_at: Option<String>,
    executed: Option<bool>,
}

const VERIFICATION_COLUMNS: &str = "v.id, v.agent_id, a.name, v.action_type, v.resource, v.context, v.status, v.reason, v.risk, \
     v.required_trust, v.trust_score, v.decided_by, v.created_at, v.decided_at, v.pending_expires_at, \
     v.approval_expires_at, v.result, v.result_reason, v.result_summary, v.result_error, v.result_metadata, \
     v.result_at, v.executed, v.organization_id";

fn verification_view(row: &SqliteRow) -> Result<VerificationView> {
    let status = VerificationStatus::parse(row.try_get::<&str, _>(6)?)?;
    let reason: String = row.try_get(7)?;
    let decided_by: Option<String> = row.try_get(11)?;
    let metadata: Option<String> = row.try_get(20)?;
    let executed: Option<i64> = row.try_get(22)?;
    Ok(VerificationView {
        id: row.try_get(0)?,
        agent_id: row.try_get(1)?,
        agent_name: row.try_get(2)?,
        action_type: row.try_get(3)?,
        resource: row.try_get(4)?,
        context: json_column(row.try_get::<&str, _>(5)?),
        approved_by: (status == VerificationStatus::Approved)
            .then(|| decided_by.clone())
            .flatten(),
        denial_reason: (status == VerificationStatus::Denied).then(|| reason.clone()),
        status,
        reason,
        risk_level: Risk::parse(row.try_get::<&str, _>(8)?)?,
        required_trust: row.try_get(9)?,
        trust_score: row.try_get(10)?,
        decided_by,
        created_at: iso(row.try_get(12)?),
        decided_at: iso_opt(row.try_get(13)?),
        pending_expires_at: iso_opt(row.try_get(14)?),
        expires_at: iso_opt(row.try_get(15)?),
        result: row.try_get(16)?,
        result_reason: row.try_get(17)?,
        result_summary: row.try_get(18)?,
        result_error: row.try_get(19)?,
        result_metadata: metadata.as_deref().map(json_column),
        result_at: iso_opt(row.try_get(21)?),
        executed: executed.map(|e| e != 0),
    })
}

/// Loads a verification of `org`, expiring it first if its pending deadline passed.
async fn load_verification(
    state: &AppState,
    org: &str,
    id: &str,
) -> Result<(VerificationView, String)> {
    let fetch = || async {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VERIFICATION_COLUMNS} FROM verifications v JOIN agents a ON a.id = v.agent_id \
             WHERE v.id = ? AND v.organization_id = ?"
        )))
        .bind(id)
        .bind(org)
        .fetch_optional(&state.db.read)
        .await
    };
    let row = fetch()
        .await?
        .ok_or_else(|| Error::not_found(format!("no verification {id} in this organization")))?;
    let pending_deadline: Option<i64> = row.try_get(14)?;
    let status: String = row.try_get(6)?;
    let now = state.now_ms();
    if status == "pending" && pending_deadline.is_some_and(|d| d <= now) {
        let vid = id.to_owned();
        state
            .db
            .writer
            .write(move |conn| Box::pin(async move { expire_pending(conn, now, Some(&vid)).await }))
            .await?;
        let row = fetch().await?.ok_or_else(|| {
            Error::not_found(format!("no verification {id} in this organization"))
        })?;
        return Ok((verification_view(&row)?, row.try_get(23)?));
    }
    Ok((verification_view(&row)?, row.try_get(23)?))
}

/// Poll a verification: the agent that asked (signature) or an API key of its organization.
#[utoipa::path(get, path = "/api/v1/sdk-api/verifications/{id}", tag = "sdk",
    params(("id" = String, Path, description = "Verification id (UUID)")),
    security(("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 200, description = "The persisted state: pending, approved, denied or expired", body = VerificationView),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such verification in the caller's organization", body = ErrorBody),
    ))]
pub(crate) async fn sdk_get_verification(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<VerificationView>> {
    let id = parse_uuid(&id, "verification id")?;
    let caller = state
        .caller(&parts(&method, &uri, &headers, &[]), Role::Viewer)
        .await?;
    let (view, _) = load_verification(&state, caller.org_id(), &id).await?;
    caller.require_agent_access(&view.agent_id, Role::Viewer)?;
    state.consume_replay(&caller).await?;
    Ok(Json(view))
}

/// A reported result.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ResultReport {
    /// `success` or `failure`.
    #[serde(default)]
    result: Option<String>,
    /// Legacy form: `true` for success.
    #[serde(default)]
    success: Option<bool>,
    /// Why.
    #[serde(default)]
    reason: Option<String>,
    /// Summary of what happened.
    #[serde(default, alias = "resultSummary")]
    result_summary: Option<String>,
    /// Error message on failure.
    #[serde(default, alias = "errorMessage")]
    error_message: Option<String>,
    /// Any JSON object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// Client time (informational).
    #[serde(default)]
    #[allow(dead_code)]
    timestamp: Option<String>,
}

/// Answer of a result report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResultRecorded {
    id: String,
    /// The decision, unchanged.
    status: VerificationStatus,
    /// `success` or `failure`.
    result: String,
    result_recorded: bool,
}

/// Report the outcome of an approved action (the SDK's `log_action_result`). The decision is
/// kept; the result is stored beside it and feeds the trust score.
#[utoipa::path(post, path = "/api/v1/sdk-api/verifications/{id}/result", tag = "sdk",
    params(("id" = String, Path, description = "Verification id (UUID)")),
    request_body = ResultReport,
    security(("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 200, description = "Recorded", body = ResultRecorded),
        (status = 400, description = "Bad body or id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such verification", body = ErrorBody),
        (status = 409, description = "Not approved, or a result is already recorded", body = ErrorBody),
    ))]
pub(crate) async fn sdk_record_result(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ResultRecorded>> {
    let id = parse_uuid(&id, "verification id")?;
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    let report: ResultReport = super::util::parse_body(&body)?;
    let result = match (report.result.as_deref(), report.success) {
        (Some("success"), _) | (None, Some(true)) => "success",
        (Some("failure"), _) | (None, Some(false)) => "failure",
        (Some(_), _) => {
            return Err(Error::bad_request(
                "result must be either 'success' or 'failure'",
            ));
        }
        (None, None) => {
            return Err(Error::bad_request(
                "`result` is required ('success' or 'failure')",
            ));
        }
    };
    let clip = |v: Option<String>, what: &str| -> Result<Option<String>> {
        v.map(|s| text_field(&s, what, 4000)).transpose()
    };
    let reason = clip(report.reason, "reason")?;
    let summary = clip(report.result_summary, "result_summary")?;
    let error_message = clip(report.error_message, "error_message")?;
    let metadata = match report.metadata {
        None | Some(serde_json::Value::Null) => None,
        Some(m @ serde_json::Value::Object(_)) => {
            let text = m.to_string();
            if text.len() > MAX_CONTEXT_BYTES {
                return Err(Error::bad_request("metadata is too large"));
            }
            Some(text)
        }
        Some(_) => return Err(Error::bad_request("metadata must be a JSON object")),
    };
    let (view, org) = load_verification(&state, caller.org_id(), &id).await?;
    caller.require_agent_access(&view.agent_id, Role::Member)?;
    let now = state.now_ms();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let agent_id = view.agent_id.clone();
    let vid = id.clone();
    let status = state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                let row: Option<(String, Option<String>)> = sqlx::query_as(
                    "SELECT status, result FROM verifications WHERE id = ? AND organization_id = ?",
                )
                .bind(&vid)
                .bind(&org)
                .fetch_optional(&mut *conn)
                .await?;
                let (status, existing) = row.ok_or_else(|| Error::not_found("no such verification"))?;
                if status != "approved" {
                    return Err(Error::conflict(format!(
                        "results can only be recorded for approved verifications; this one is {status}"
                    )));
                }
                if existing.is_some() {
                    return Err(Error::conflict("a result is already recorded for this verification"));
                }
                sqlx::query(
                    "UPDATE verifications SET result = ?, result_reason = ?, result_summary = ?, result_error = ?, \
                     result_metadata = ?, result_at = ? WHERE id = ?",
                )
                .bind(result)
                .bind(&reason)
                .bind(&summary)
                .bind(&error_message)
                .bind(&metadata)
                .bind(now)
                .bind(&vid)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org,
                        at: now,
                        actor: &actor,
                        action: "verification.result_recorded",
                        target_type: "verification",
                        target_id: Some(&vid),
                        details: serde_json::json!({ "agent_id": agent_id, "result": result }),
                    },
                )
                .await?;
                let event = if result == "success" {
                    TrustEvent::ResultSuccess
                } else {
                    TrustEvent::ResultFailure
                };
                scores::apply(conn, &agent_id, now, event, None).await?;
                VerificationStatus::parse(&status)
            })
        })
        .await?;
    state.decisions.invalidate(&view.agent_id);
    Ok(Json(ResultRecorded {
        id,
        status,
        result: result.to_owned(),
        result_recorded: true,
    }))
}

/// Execution report of the PyPI SDKs' decorators.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ExecutionReport {
    /// Whether the guarded function ran.
    executed: bool,
    /// The SDK's strict mode.
    #[serde(default, alias = "strictMode")]
    #[allow(dead_code)]
    strict_mode: Option<bool>,
    /// Error text, if execution failed.
    #[serde(default, alias = "executionError")]
    execution_error: Option<String>,
}

/// Record whether the guarded function actually ran (sent by the PyPI SDKs' decorators).
#[utoipa::path(post, path = "/api/v1/sdk-api/verifications/{id}/execution-status", tag = "sdk",
    params(("id" = String, Path, description = "Verification id (UUID)")),
    request_body = ExecutionReport,
    security(("api_key" = []), ("agent_signature" = [])),
    responses(
        (status = 200, description = "Recorded", body = VerificationView),
        (status = 400, description = "Bad body or id", body = ErrorBody),
        (status = 404, description = "No such verification", body = ErrorBody),
    ))]
pub(crate) async fn sdk_execution_status(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<VerificationView>> {
    let id = parse_uuid(&id, "verification id")?;
    let caller = state
        .caller(&parts(&method, &uri, &headers, &body), Role::Member)
        .await?;
    let report: ExecutionReport = super::util::parse_body(&body)?;
    let error_text = report
        .execution_error
        .map(|e| text_field(&e, "executionError", 4000))
        .transpose()?;
    let (view, org) = load_verification(&state, caller.org_id(), &id).await?;
    caller.require_agent_access(&view.agent_id, Role::Member)?;
    let now = state.now_ms();
    let actor = caller.actor();
    let replay = caller.replay().cloned();
    let vid = id.clone();
    let org2 = org.clone();
    state
        .db
        .writer
        .write_signed(replay, move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE verifications SET executed = ?, execution_reported_at = ? WHERE id = ? AND organization_id = ?",
                )
                .bind(i64::from(report.executed))
                .bind(now)
                .bind(&vid)
                .bind(&org2)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &org2,
                        at: now,
                        actor: &actor,
                        action: "verification.execution_reported",
                        target_type: "verification",
                        target_id: Some(&vid),
                        details: serde_json::json!({ "executed": report.executed, "error": error_text }),
                    },
                )
                .await
            })
        })
        .await?;
    Ok(Json(load_verification(&state, &org, &id).await?.0))
}

/// Query of the verification list.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ListQuery {
    /// `pending`, `approved`, `denied` or `expired`.
    status: Option<String>,
    /// Only this agent (id or name).
    agent_id: Option<String>,
    /// 1–1000, default 100.
    limit: Option<i64>,
    /// Skip this many.
    offset: Option<i64>,
}

/// A page of verifications.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerificationList {
    verifications: Vec<VerificationView>,
    total: i64,
}

/// List the organization's verifications, newest first (any role). Pending ones past their
/// deadline are expired before listing.
#[utoipa::path(get, path = "/api/v1/verifications", tag = "approvals",
    params(ListQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Verifications", body = VerificationList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub(crate) async fn list_verifications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<VerificationList>> {
    let person = state.person(&headers, Role::Viewer).await?;
    let status = q
        .status
        .as_deref()
        .map(VerificationStatus::parse)
        .transpose()?;
    let limit = limit(q.limit, 100)?;
    let offset = offset(q.offset)?;
    let agent = match q.agent_id.as_deref() {
        Some(a) => Some(
            super::agents::find_agent(&state.db.read, &person.org_id, a)
                .await?
                .id,
        ),
        None => None,
    };
    let now = state.now_ms();
    let (overdue,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM verifications WHERE organization_id = ? AND status = 'pending' AND pending_expires_at <= ?",
    )
    .bind(&person.org_id)
    .bind(now)
    .fetch_one(&state.db.read)
    .await?;
    if overdue > 0 {
        state
            .db
            .writer
            .write(move |conn| Box::pin(async move { expire_pending(conn, now, None).await }))
            .await?;
    }
    let status_text = status.map(VerificationStatus::as_str);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VERIFICATION_COLUMNS} FROM verifications v JOIN agents a ON a.id = v.agent_id \
         WHERE v.organization_id = ? AND (? IS NULL OR v.status = ?) AND (? IS NULL OR v.agent_id = ?) \
         ORDER BY v.created_at DESC, v.id DESC LIMIT ? OFFSET ?"
    )))
    .bind(&person.org_id)
    .bind(status_text)
    .bind(status_text)
    .bind(&agent)
    .bind(&agent)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.db.read)
    .await?;
    let (total,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM verifications WHERE organization_id = ? AND (? IS NULL OR status = ?) \
         AND (? IS NULL OR agent_id = ?)",
    )
    .bind(&person.org_id)
    .bind(status_text)
    .bind(status_text)
    .bind(&agent)
    .bind(&agent)
    .fetch_one(&state.db.read)
    .await?;
    let verifications = rows
        .iter()
        .map(verification_view)
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(VerificationList {
        verifications,
        total,
    }))
}

/// Get one verification (any role).
#[utoipa::path(get, path = "/api/v1/verifications/{id}", tag = "approvals",
    params(("id" = String, Path, description = "Verification id (UUID)")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The verification", body = VerificationView),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 404, description = "No such verification in this organization", body = ErrorBody),
    ))]
pub(crate) async fn get_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<VerificationView>> {
    let id = parse_uuid(&id, "verification id")?;
    let person = state.person(&headers, Role::Viewer).await?;
    Ok(Json(
        load_verification(&state, &person.org_id, &id).await?.0,
    ))
}

/// A person's decision.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct HumanDecision {
    /// Why (recorded, and shown to the agent as the denial reason).
    #[serde(default)]
    reason: Option<String>,
}

/// A verification a person decides, with its agent: status, agent id, pending deadline,
/// action, agent status, the key that registered the agent.
type DecisionRow = (String, String, Option<i64>, String, String, Option<String>);

enum HumanOutcome {
    Done,
    Expired,
}

async fn decide_pending(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    approve: bool,
) -> Result<Json<VerificationView>> {
    let id = parse_uuid(id, "verification id")?;
    let person = state.person(headers, Role::Member).await?;
    let req: HumanDecision = parse_optional_body(body)?;
    let note = req
        .reason
        .map(|r| text_field(&r, "reason", 2000))
        .transpose()?
        .filter(|r| !r.is_empty());
    let now = state.now_ms();
    let approval_ttl = duration_ms(state.config.approval_ttl);
    let vid = id.clone();
    let org = person.org_id.clone();
    let outcome = state
        .db
        .writer
        .write(move |conn| {
            Box::pin(async move {
                let row: Option<DecisionRow> = sqlx::query_as(
                    "SELECT v.status, v.agent_id, v.pending_expires_at, v.action_type, a.status, a.registered_by_key \
                     FROM verifications v JOIN agents a ON a.id = v.agent_id WHERE v.id = ? AND v.organization_id = ?",
                )
                .bind(&vid)
                .bind(&person.org_id)
                .fetch_optional(&mut *conn)
                .await?;
                let (status, agent_id, deadline, action, agent_status, registered_by) = row
                    .ok_or_else(|| Error::not_found(format!("no verification {vid} in this organization")))?;
                if approve {
                    require_independent_approver(&person, registered_by.as_deref(), "verification")?;
                }
                if status == "pending" && deadline.is_some_and(|d| d <= now) {
                    expire_pending(conn, now, Some(&vid)).await?;
                    return Ok(HumanOutcome::Expired);
                }
                if status != "pending" {
                    return Err(Error::conflict(format!(
                        "verification {vid} is {status}, not pending; only pending verifications can be decided"
                    )));
                }
                if approve && agent_status != AgentStatus::Verified.as_str() {
                    return Err(Error::conflict(format!(
                        "agent {agent_id} is {agent_status}; only a verified agent's verifications can be approved"
                    )));
                }
                let verb = if approve { "approved" } else { "denied" };
                let reason = match &note {
                    Some(n) => format!("{verb} by {}: {n}", person.email),
                    None => format!("{verb} by {}", person.email),
                };
                sqlx::query(
                    "UPDATE verifications SET status = ?, reason = ?, decided_by = ?, decided_at = ?, \
                     approval_expires_at = ? WHERE id = ? AND status = 'pending'",
                )
                .bind(verb)
                .bind(&reason)
                .bind(&person.email)
                .bind(now)
                .bind(approve.then_some(now + approval_ttl))
                .bind(&vid)
                .execute(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    audit::Entry {
                        organization_id: &person.org_id,
                        at: now,
                        actor: &person.actor(),
                        action: if approve {
                            "verification.approved_by_person"
                        } else {
                            "verification.denied_by_person"
                        },
                        target_type: "verification",
                        target_id: Some(&vid),
                        details: serde_json::json!({ "agent_id": agent_id, "action_type": action, "reason": note }),
                    },
                )
                .await?;
                let event = if approve {
                    TrustEvent::HumanApproval
                } else {
                    TrustEvent::HumanDenial
                };
                scores::apply(conn, &agent_id, now, event, None).await?;
                Ok(HumanOutcome::Done)
            })
        })
        .await?;
    if matches!(outcome, HumanOutcome::Expired) {
        return Err(Error::conflict(format!(
            "verification {id} expired before it was decided; the agent must ask again"
        )));
    }
    Ok(Json(load_verification(state, &org, &id).await?.0))
}

/// Approve a pending verification: a person with role member or higher, through a key that did
/// not register the agent; the agent must be `verified`. The polling agent then sees `approved`.
#[utoipa::path(post, path = "/api/v1/verifications/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "Verification id (UUID)")),
    request_body(content = HumanDecision, description = "Optional reason"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Approved", body = VerificationView),
        (status = 403, description = "Role below member, or the key registered this agent", body = ErrorBody),
        (status = 404, description = "No such verification", body = ErrorBody),
        (status = 409, description = "Not pending (already decided or expired)", body = ErrorBody),
    ))]
pub(crate) async fn approve_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<VerificationView>> {
    decide_pending(&state, &headers, &id, &body, true).await
}

/// Deny a pending verification (member or higher). The reason reaches the agent as
/// `denial_reason`.
#[utoipa::path(post, path = "/api/v1/verifications/{id}/deny", tag = "approvals",
    params(("id" = String, Path, description = "Verification id (UUID)")),
    request_body(content = HumanDecision, description = "Reason (recommended)"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Denied", body = VerificationView),
        (status = 403, description = "Role below member", body = ErrorBody),
        (status = 404, description = "No such verification", body = ErrorBody),
        (status = 409, description = "Not pending (already decided or expired)", body = ErrorBody),
    ))]
pub(crate) async fn deny_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<VerificationView>> {
    decide_pending(&state, &headers, &id, &body, false).await
}
