//! Who is calling: a person through an API key, or an agent through its Ed25519 request
//! signature.
//!
//! * API keys arrive as `X-API-Key: aim_live_…`, `Authorization: Bearer aim_live_…`, or (agent
//!   registration only) `X-AIM-API-Key`. The key's effective role is the lower of the key's
//!   role and its owner's role; revoked keys and disabled owners are rejected.
//! * Agent signatures use the headers of the AIM SDK (`X-Agent-ID`, `X-Signature`,
//!   `X-Timestamp`, optional `X-Public-Key`) over `METHOD\nPATH\nTIMESTAMP[\nBODY]`, checked with
//!   the key registered for that agent (never a key taken from the request), within ±window.
//!   During a key-rotation grace period the previous key also verifies. `X-Public-Key`, when
//!   sent, must be one of those keys. Suspended and revoked agents are refused after their
//!   signature checked out.
//! * When signature headers are present they decide (fail closed: an API key in the same
//!   request does not rescue a bad signature).
//! * Replay: every accepted signature is recorded in `replay_guard` (agent id, SHA-256 of the
//!   signature) until it leaves the freshness window; a second use violates the primary key and
//!   is refused with 401 `replayed request`. The row lives in the database, so the guard holds
//!   across server replicas sharing it. A signature is consumed when it is checked, whatever the
//!   outcome: writes record the mark in the batch of their write but in a savepoint of its own
//!   ([`crate::db::Writer::write_signed`]), so a refused write does not roll the mark back;
//!   signatures of suspended or revoked agents are recorded before the refusal; read-only
//!   requests record it in a batched write before answering. Refusals that come before any
//!   write depend only on the signed bytes (malformed body, another agent's path), so a replay
//!   meets the same refusal.
//! * The superseded key (grace period) signs ordinary requests only: see
//!   [`Caller::require_current_key`].

use aim_crypto::hash::sha256;
use aim_crypto::{
    AgentPublicKey, AgentSignature, CryptoError, RequestV2, RequestVerifier, SignatureVersion,
    SignedRequest,
};
use axum::http::{HeaderMap, Method};
use sqlx::SqliteConnection;

use crate::apikey::{hash_key, looks_like_api_key};
use crate::audit::Actor;
use crate::error::{Error, Result, is_unique_violation};
use crate::model::{AgentStatus, Role};
use crate::state::AppState;

/// A person (or automation) authenticated by an API key.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) org_id: String,
    pub(crate) user_id: String,
    pub(crate) api_key_id: String,
    pub(crate) role: Role,
    pub(crate) email: String,
}

/// Proof that a signature was accepted, to be recorded so it cannot be used again.
#[derive(Debug, Clone)]
#[must_use = "record the replay mark, or the signature could be replayed"]
pub(crate) struct ReplayMark {
    pub(crate) agent_id: String,
    pub(crate) signature_hash: String,
    pub(crate) expires_at: i64,
}

/// Which of the agent's registered keys verified a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUsed {
    /// The current key.
    Current,
    /// The key superseded by the last rotation, during its grace period.
    Previous,
}

/// An agent authenticated by its request signature.
#[derive(Debug, Clone)]
pub(crate) struct AgentCaller {
    pub(crate) org_id: String,
    pub(crate) agent_id: String,
    pub(crate) replay: ReplayMark,
    /// The key that verified the signature.
    pub(crate) key_used: KeyUsed,
}

/// Either kind of caller.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Person(Person),
    Agent(AgentCaller),
}

impl Caller {
    pub(crate) fn org_id(&self) -> &str {
        match self {
            Caller::Person(p) => &p.org_id,
            Caller::Agent(a) => &a.org_id,
        }
    }

    pub(crate) fn actor(&self) -> Actor {
        match self {
            Caller::Person(p) => p.actor(),
            Caller::Agent(a) => Actor::Agent {
                agent_id: a.agent_id.clone(),
            },
        }
    }

    pub(crate) fn replay(&self) -> Option<&ReplayMark> {
        match self {
            Caller::Agent(a) => Some(&a.replay),
            Caller::Person(_) => None,
        }
    }

    /// Checks that the caller may act on agent `agent_id` of its organization: a person with at
    /// least `min_role`, or that agent itself.
    pub(crate) fn require_agent_access(&self, agent_id: &str, min_role: Role) -> Result<()> {
        match self {
            Caller::Person(p) => p.require(min_role),
            Caller::Agent(a) if a.agent_id == agent_id => Ok(()),
            Caller::Agent(a) => Err(Error::forbidden(format!(
                "the request is signed by agent {} but addresses agent {agent_id}",
                a.agent_id
            ))),
        }
    }

    /// Refuses agents signing with their superseded key (grace period): that key may sign
    /// ordinary requests but never rotate keys, register keys or change status, so a thief of
    /// the old key is locked out of the identity once the agent rotated.
    pub(crate) fn require_current_key(&self, what: &str) -> Result<()> {
        match self {
            Caller::Agent(a) if a.key_used == KeyUsed::Previous => Err(Error::forbidden(format!(
                "only the agent's current key can {what}; this request is signed with the key it replaced (accepted for ordinary requests during the grace period only)"
            ))),
            _ => Ok(()),
        }
    }

    /// Only people may do this.
    pub(crate) fn require_person(&self, min_role: Role, what: &str) -> Result<&Person> {
        match self {
            Caller::Person(p) => {
                p.require(min_role)?;
                Ok(p)
            }
            Caller::Agent(_) => Err(Error::forbidden(format!(
                "only people can {what}; use an API key with role {min_role} or higher"
            ))),
        }
    }
}

impl Person {
    pub(crate) fn require(&self, min_role: Role) -> Result<()> {
        if self.role >= min_role {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this needs role {min_role} or higher; the API key has role {}",
                self.role
            )))
        }
    }

    pub(crate) fn actor(&self) -> Actor {
        Actor::User {
            user_id: self.user_id.clone(),
            api_key_id: self.api_key_id.clone(),
        }
    }
}

/// An API key row joined with its owner: id, organization, user, key role, revoked at, user
/// role, user status, e-mail, last used at.
type KeyRow = (
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    String,
    Option<i64>,
);

/// An agent's key columns: id, organization, name, status, key, previous key, grace end.
type AgentKeyRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
);

/// The parts of a request authentication looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestParts<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    /// The query string as sent (without `?`), which v2 signatures cover.
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            if v.len() > 1024 {
                return Err(Error::unauthorized(format!("header {name} is too long")));
            }
            v.to_str()
                .map(|s| Some(s.trim()))
                .map_err(|_| Error::unauthorized(format!("header {name} is not ASCII")))
        }
    }
}

/// The signature headers of a request, parsed (not yet verified).
#[derive(Debug, Clone)]
pub(crate) struct SignatureHeaders<'a> {
    /// `X-Agent-ID`, as canonical (lowercase hyphenated) UUID text.
    pub(crate) agent_id: String,
    pub(crate) signature: &'a str,
    pub(crate) timestamp: &'a str,
    pub(crate) public_key: Option<&'a str>,
    /// Which scheme signed the request (`X-AIM-Signature-Version`).
    pub(crate) version: SignatureVersion,
    /// `X-AIM-Nonce` (v2).
    pub(crate) nonce: Option<&'a str>,
}

impl<'a> SignatureHeaders<'a> {
    /// Reads the headers; all but `X-Public-Key` are required and `X-Agent-ID` must be a UUID.
    pub(crate) fn parse(headers: &'a HeaderMap) -> Result<Self> {
        let missing = |h: &str| {
            Error::unauthorized(format!(
                "agent signature headers are incomplete: {h} is missing"
            ))
        };
        let agent_id = header(headers, "x-agent-id")?.ok_or_else(|| missing("X-Agent-ID"))?;
        let signature = header(headers, "x-signature")?.ok_or_else(|| missing("X-Signature"))?;
        let timestamp = header(headers, "x-timestamp")?.ok_or_else(|| missing("X-Timestamp"))?;
        let public_key = header(headers, "x-public-key")?;
        let version = SignatureVersion::parse(header(headers, "x-aim-signature-version")?)
            .map_err(signature_error)?;
        let nonce = header(headers, "x-aim-nonce")?;
        if version == SignatureVersion::V2 && nonce.is_none() {
            return Err(missing("X-AIM-Nonce"));
        }
        let agent_id = uuid::Uuid::parse_str(agent_id)
            .map_err(|_| Error::unauthorized("X-Agent-ID must be a UUID"))?
            .to_string();
        Ok(Self {
            agent_id,
            signature,
            timestamp,
            public_key,
            version,
            nonce,
        })
    }
}

/// True when the request carries agent-signature headers.
pub(crate) fn has_signature_headers(headers: &HeaderMap) -> bool {
    ["x-agent-id", "x-signature", "x-timestamp"]
        .iter()
        .any(|h| headers.contains_key(*h))
}

/// The API key presented by the request, if any. `registration` also accepts `X-AIM-API-Key`.
fn presented_key(headers: &HeaderMap, registration: bool) -> Result<Option<&str>> {
    if registration && let Some(k) = header(headers, "x-aim-api-key")? {
        return Ok(Some(k));
    }
    if let Some(k) = header(headers, "x-api-key")? {
        return Ok(Some(k));
    }
    if let Some(auth) = header(headers, "authorization")? {
        let Some((scheme, token)) = auth.split_once(' ') else {
            return Err(Error::unauthorized(
                "unsupported Authorization header; use `Bearer aim_live_…` or X-API-Key",
            ));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::unauthorized(
                "unsupported Authorization scheme; use `Bearer aim_live_…` or X-API-Key",
            ));
        }
        return Ok(Some(token.trim()));
    }
    Ok(None)
}

/// Refuses an approval (of a verification or a capability request) through the API key that
/// registered the agent: that key lives in the agent's process (the SDK's API-key mode), so an
/// approval through it is the agent approving itself. `registered_by` is the agent's
/// `registered_by_key`; roles are checked by the caller (a `registration` key never gets here).
pub(crate) fn require_independent_approver(
    person: &Person,
    registered_by: Option<&str>,
    what: &str,
) -> Result<()> {
    if registered_by == Some(person.api_key_id.as_str()) {
        return Err(Error::forbidden(format!(
            "this API key registered the agent, so it cannot approve the agent's {what}: no agent approves itself. \
             A person must approve with their own key (give agents a registration key: aim key create NAME --role registration)"
        )));
    }
    Ok(())
}

tokio::task_local! {
    /// The replay mark of the signature checked while serving the current request, if any.
    static CHECKED: std::cell::RefCell<Option<ReplayMark>>;
}

/// Remembers `mark` as the current request's checked signature (no-op outside
/// [`consume_refused_signatures`]).
fn note_checked(mark: &ReplayMark) {
    let _outside_the_layer = CHECKED.try_with(|c| *c.borrow_mut() = Some(mark.clone()));
}

/// Middleware: a signature is consumed when it is checked, whatever the outcome. Successful
/// requests record their mark themselves (in their write, or before a read answers); when the
/// answer is an error after a signature verified (a refused write whose transaction rolled
/// back, a suspended agent, a superseded key, a failed check), the mark is recorded here before
/// the answer leaves, so the request cannot be replayed later when it might succeed.
pub(crate) async fn consume_refused_signatures(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (response, mark) = CHECKED
        .scope(std::cell::RefCell::new(None), async move {
            let response = next.run(req).await;
            let mark = CHECKED.with(|c| c.borrow_mut().take());
            (response, mark)
        })
        .await;
    let refused = response.status().is_client_error() || response.status().is_server_error();
    if let Some(mark) = mark.filter(|_| refused) {
        let recorded = state
            .db
            .writer
            .write(move |conn| Box::pin(async move { record_replay(conn, &mark).await }))
            .await;
        match recorded {
            // Already recorded (by the refused request's own write, or it was the replay).
            Ok(()) | Err(Error::Unauthorized(_)) => {}
            Err(e) => tracing::warn!(error = %e, "could not consume a refused request's signature"),
        }
    }
    response
}

/// The role a key acts with: the lower of the key's and its owner's. A `registration` key keeps
/// that role only while its owner may register agents (member or higher).
fn effective_role(key_role: Role, user_role: Role) -> Result<Role> {
    if key_role == Role::Registration && user_role < Role::Member {
        return Err(Error::forbidden(format!(
            "this registration key's owner has role {user_role}; registering agents needs member or higher"
        )));
    }
    Ok(key_role.min(user_role))
}

/// Parses an id that must be a UUID, answering 400 otherwise; returns the canonical form.
pub(crate) fn parse_uuid(text: &str, what: &str) -> Result<String> {
    uuid::Uuid::parse_str(text)
        .map(|u| u.to_string())
        .map_err(|_| Error::bad_request(format!("{what} must be a UUID")))
}

impl AppState {
    /// Authenticates a person by API key; `min_role` is checked too.
    pub(crate) async fn person(&self, headers: &HeaderMap, min_role: Role) -> Result<Person> {
        let person = self.api_key_caller(headers, false).await?;
        person.require(min_role)?;
        Ok(person)
    }

    /// Authenticates a person by API key, also accepting `X-AIM-API-Key` (agent registration):
    /// a `registration` key, or a key with role member or higher.
    pub(crate) async fn registering_person(&self, headers: &HeaderMap) -> Result<Person> {
        let person = self.api_key_caller(headers, true).await?;
        if person.role != Role::Registration {
            person.require(Role::Member)?;
        }
        Ok(person)
    }

    async fn api_key_caller(&self, headers: &HeaderMap, registration: bool) -> Result<Person> {
        let Some(key) = presented_key(headers, registration)? else {
            let hint = if registration {
                "X-AIM-API-Key"
            } else {
                "X-API-Key"
            };
            return Err(Error::unauthorized(format!(
                "authentication required: send an API key in {hint} (or agent signature headers where accepted)"
            )));
        };
        if !looks_like_api_key(key) {
            return Err(Error::unauthorized("invalid API key"));
        }
        let row: Option<KeyRow> =
            sqlx::query_as(
                "SELECT k.id, k.organization_id, k.user_id, k.role, k.revoked_at, u.role, u.status, u.email, k.last_used_at \
                 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
            )
            .bind(hash_key(key))
            .fetch_optional(&self.db.read)
            .await?;
        let Some((id, org, user, key_role, revoked, user_role, user_status, email, last_used)) =
            row
        else {
            return Err(Error::unauthorized("invalid API key"));
        };
        if revoked.is_some() {
            return Err(Error::unauthorized("this API key has been revoked"));
        }
        if user_status != "active" {
            return Err(Error::unauthorized("the owner of this API key is disabled"));
        }
        let role = effective_role(Role::parse(&key_role)?, Role::parse(&user_role)?)?;
        self.touch_api_key(&id, last_used);
        Ok(Person {
            org_id: org,
            user_id: user,
            api_key_id: id,
            role,
            email,
        })
    }

    /// Records `last_used_at` at most once a minute per key, off the request path.
    fn touch_api_key(&self, id: &str, last_used: Option<i64>) {
        let now = self.now_ms();
        if last_used.is_some_and(|t| now - t < 60_000) {
            return;
        }
        let state = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let result = state
                .db
                .writer
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                            .bind(now)
                            .bind(&id)
                            .execute(conn)
                            .await?;
                        Ok(())
                    })
                })
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "could not record API key use");
            }
        });
    }

    /// Authenticates an agent by its request signature. The returned mark must be recorded
    /// (see [`record_replay`] and [`AppState::consume_replay`]).
    /// Every signature that verifies is noted for [`consume_refused_signatures`], so a refusal
    /// (of a suspended agent, say) still consumes it.
    pub(crate) async fn agent_caller(&self, req: &RequestParts<'_>) -> Result<AgentCaller> {
        let headers = SignatureHeaders::parse(req.headers)?;
        let agent = self.agent_keys(&headers.agent_id).await?;
        let caller = self.verify_signature(&agent, &headers, req)?;
        note_checked(&caller.replay);
        agent.require_active()?;
        Ok(caller)
    }

    /// Verifies the signature headers of `req` with `agent`'s registered keys (current, and the
    /// previous one during its grace period); the agent's status is not looked at.
    pub(crate) fn verify_signature(
        &self,
        agent: &AgentKeys,
        headers: &SignatureHeaders<'_>,
        req: &RequestParts<'_>,
    ) -> Result<AgentCaller> {
        let now_ms = self.now_ms();
        let keys = agent.keys_at(now_ms);
        if let Some(claimed) = headers.public_key
            && !keys.iter().any(|k| k.text == claimed)
        {
            return Err(Error::unauthorized(
                "X-Public-Key does not match the agent's registered key",
            ));
        }
        let now_secs = u64::try_from(now_ms / 1000).unwrap_or(0);
        let (ts, key_used) =
            self.verify_any_key(&keys, &agent.public_key, &agent.id, headers, req, now_secs)?;
        // v1: the signature is the replay key. v2: the nonce is, so a nonce is used once
        // whatever was signed with it.
        let replay_key = match (headers.version, headers.nonce) {
            (SignatureVersion::V2, Some(nonce)) => {
                format!("n{}", hex::encode(sha256(nonce.as_bytes())))
            }
            _ => {
                let sig = AgentSignature::from_b64(headers.signature).map_err(signature_error)?;
                hex::encode(sha256(&sig.to_bytes()))
            }
        };
        Ok(AgentCaller {
            org_id: agent.org_id.clone(),
            agent_id: agent.id.clone(),
            replay: ReplayMark {
                agent_id: agent.id.clone(),
                signature_hash: replay_key,
                expires_at: replay_expiry(ts, self.config.signature_window.as_secs()),
            },
            key_used,
        })
    }

    /// Checks the request signature (v1 or v2) with each of `keys`; returns its Unix seconds and
    /// which key verified it (`current_key` is the agent's current key).
    fn verify_any_key(
        &self,
        keys: &[StoredKey],
        current_key: &str,
        agent_id: &str,
        headers: &SignatureHeaders<'_>,
        req: &RequestParts<'_>,
        now_secs: u64,
    ) -> Result<(u64, KeyUsed)> {
        let verifier = RequestVerifier::with_window(self.config.signature_window.as_secs());
        let path_and_query = match req.query {
            Some(q) => format!("{}?{q}", req.path),
            None => req.path.to_owned(),
        };
        let v2 = RequestV2 {
            agent_id,
            method: req.method.as_str(),
            path_and_query: &path_and_query,
            origin: &self.origin,
            timestamp: headers.timestamp,
            nonce: headers.nonce.unwrap_or(""),
            body: req.body,
        };
        let v1 = SignedRequest {
            method: req.method.as_str(),
            path: req.path,
            timestamp: headers.timestamp,
            signature: headers.signature,
            body: req.body,
        };
        let mut last_err = CryptoError::BadSignature;
        for (i, key) in keys.iter().enumerate() {
            let checked = match headers.version {
                SignatureVersion::V1 => verifier.verify(&key.key, &v1, now_secs),
                SignatureVersion::V2 => {
                    verifier.verify_v2(&key.key, &v2, headers.signature, &self.origin, now_secs)
                }
            };
            match checked {
                Ok(ts) => {
                    let used = if i == 0 && key.text == current_key {
                        KeyUsed::Current
                    } else {
                        KeyUsed::Previous
                    };
                    return Ok((ts, used));
                }
                Err(e) => last_err = e,
            }
        }
        if headers.version == SignatureVersion::V2 && last_err == CryptoError::BadSignature {
            return Err(Error::unauthorized(format!(
                "invalid signature (a v2 signature covers X-Agent-ID, the method, the path with \
                 query, the body, X-Timestamp, X-AIM-Nonce and this server's origin {})",
                self.origin
            )));
        }
        Err(signature_error(last_err))
    }

    /// Authenticates either kind of caller: the signature headers when present, else an API key
    /// with at least `min_role`.
    pub(crate) async fn caller(&self, req: &RequestParts<'_>, min_role: Role) -> Result<Caller> {
        if has_signature_headers(req.headers) {
            Ok(Caller::Agent(self.agent_caller(req).await?))
        } else {
            Ok(Caller::Person(self.person(req.headers, min_role).await?))
        }
    }

    /// Records a replay mark in its own (batched) write, for requests that write nothing else.
    pub(crate) async fn consume_replay(&self, caller: &Caller) -> Result<()> {
        let Some(mark) = caller.replay().cloned() else {
            return Ok(());
        };
        self.db
            .writer
            .write(move |conn| Box::pin(async move { record_replay(conn, &mark).await }))
            .await
    }

    /// The agent's keys and status, for signature checks.
    pub(crate) async fn agent_keys(&self, agent_id: &str) -> Result<AgentKeys> {
        let row: Option<AgentKeyRow> =
            sqlx::query_as(
                "SELECT id, organization_id, name, status, public_key, previous_public_key, previous_key_valid_until \
                 FROM agents WHERE id = ?",
            )
            .bind(agent_id)
            .fetch_optional(&self.db.read)
            .await?;
        let Some((id, org_id, name, status, public_key, previous, previous_until)) = row else {
            return Err(Error::unauthorized("unknown agent"));
        };
        Ok(AgentKeys {
            id,
            org_id,
            name,
            status: AgentStatus::parse(&status)?,
            public_key,
            previous_public_key: previous,
            previous_key_valid_until: previous_until,
        })
    }
}

/// A stored key, parsed.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub(crate) text: String,
    pub(crate) key: AgentPublicKey,
}

/// What signature checks need to know about an agent.
#[derive(Debug, Clone)]
pub(crate) struct AgentKeys {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) name: String,
    pub(crate) status: AgentStatus,
    pub(crate) public_key: String,
    pub(crate) previous_public_key: Option<String>,
    pub(crate) previous_key_valid_until: Option<i64>,
}

impl AgentKeys {
    /// The keys that verify at `now_ms`: the current key, and the previous one during its grace
    /// period. Unparsable stored keys (impossible unless the database was edited) are skipped.
    pub(crate) fn keys_at(&self, now_ms: i64) -> Vec<StoredKey> {
        let mut keys = Vec::with_capacity(2);
        if let Some(key) = parse_key_cached(&self.public_key) {
            keys.push(StoredKey {
                text: self.public_key.clone(),
                key,
            });
        }
        if let (Some(prev), Some(until)) =
            (&self.previous_public_key, self.previous_key_valid_until)
            && now_ms <= until
            && let Some(key) = parse_key_cached(prev)
        {
            keys.push(StoredKey {
                text: prev.clone(),
                key,
            });
        }
        keys
    }

    /// Suspended and revoked agents may not act.
    pub(crate) fn require_active(&self) -> Result<()> {
        match self.status {
            AgentStatus::Suspended => Err(Error::forbidden(format!(
                "agent '{}' is suspended; a person can reactivate it with: aim agent reactivate {}",
                self.name, self.name
            ))),
            AgentStatus::Revoked => Err(Error::forbidden(format!(
                "agent '{}' is revoked",
                self.name
            ))),
            AgentStatus::Pending | AgentStatus::Verified => Ok(()),
        }
    }
}

/// Parses a stored public key, remembering recent results: decompressing an Ed25519 point costs
/// about as much as half a signature check, and the same few keys sign most requests. The cache
/// maps key text to its parsed form only (no authorization state), so it cannot go stale.
fn parse_key_cached(text: &str) -> Option<AgentPublicKey> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, AgentPublicKey>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(map) = cache.lock()
        && let Some(k) = map.get(text)
    {
        return Some(*k);
    }
    let key = AgentPublicKey::from_b64(text).ok()?;
    if let Ok(mut map) = cache.lock() {
        if map.len() >= 16_384 {
            map.clear();
        }
        map.insert(text.to_owned(), key);
    }
    Some(key)
}

/// Milliseconds after which a signature made at `ts` (seconds) can no longer be replayed.
pub(crate) fn replay_expiry(ts_secs: u64, window_secs: u64) -> i64 {
    let secs = ts_secs.saturating_add(window_secs).saturating_add(1);
    i64::try_from(secs).unwrap_or(i64::MAX / 1000) * 1000
}

/// The 401 answer for a failed signature check.
pub(crate) fn signature_error(e: CryptoError) -> Error {
    match e {
        CryptoError::StaleTimestamp {
            skew_secs,
            window_secs,
        } => Error::unauthorized(format!(
            "request timestamp is {skew_secs} s away from server time (window ±{window_secs} s); check the agent's clock"
        )),
        CryptoError::InvalidTimestamp => {
            Error::unauthorized("X-Timestamp must be decimal Unix seconds")
        }
        CryptoError::MissingHeader(h) => {
            Error::unauthorized(format!("missing or empty header {h}"))
        }
        CryptoError::InvalidBase64 { .. } | CryptoError::InvalidLength { .. } => {
            Error::unauthorized("X-Signature is not a base64 Ed25519 signature")
        }
        e @ (CryptoError::WrongOrigin { .. }
        | CryptoError::InvalidRequestField { .. }
        | CryptoError::UnsupportedSignatureVersion) => Error::unauthorized(e.to_string()),
        _ => Error::unauthorized("invalid signature"),
    }
}

/// Inserts a replay mark inside the caller's transaction; a repeated signature is refused.
pub(crate) async fn record_replay(conn: &mut SqliteConnection, mark: &ReplayMark) -> Result<()> {
    let result = sqlx::query(
        "INSERT INTO replay_guard (agent_id, signature_hash, expires_at) VALUES (?, ?, ?)",
    )
    .bind(&mark.agent_id)
    .bind(&mark.signature_hash)
    .bind(mark.expires_at)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::unauthorized("replayed request")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_rows_outlive_the_window() {
        assert_eq!(replay_expiry(1_000, 300), 1_301_000);
    }

    #[test]
    fn stale_timestamps_explain_themselves() {
        let e = signature_error(CryptoError::StaleTimestamp {
            skew_secs: -400,
            window_secs: 300,
        });
        assert_eq!(e.status(), axum::http::StatusCode::UNAUTHORIZED);
        assert!(e.to_string().contains("-400 s"));
    }

    #[test]
    fn key_presentation_forms() {
        let mut h = HeaderMap::new();
        assert!(presented_key(&h, false).unwrap().is_none());
        h.insert("authorization", "Bearer aim_live_x".parse().unwrap());
        assert_eq!(presented_key(&h, false).unwrap(), Some("aim_live_x"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert!(presented_key(&h, false).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-aim-api-key", "aim_live_r".parse().unwrap());
        assert_eq!(presented_key(&h, true).unwrap(), Some("aim_live_r"));
        assert!(presented_key(&h, false).unwrap().is_none());
    }
}
