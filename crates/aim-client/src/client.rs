//! [`AimClient`]: one registered agent talking to one AIM server.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aim_crypto::AgentKeypair;
use reqwest::Method;
use serde_json::{Value, json};

use crate::clock::{Clock, SystemClock};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::http::{Auth, HttpResponse, Transport};
use crate::identity::AgentIdentity;
use crate::poll::poll_until_decided;
use crate::store::CredentialStore;
use crate::types::{
    ActionRequest, Approval, CapabilityReport, CapabilityReportSummary, RegistrationDetails,
    VerificationState,
};
use crate::wire;

/// Path of public agent registration.
pub const PATH_REGISTER: &str = "/api/v1/public/agents/register";
/// Path of action verifications.
pub const PATH_VERIFICATIONS: &str = "/api/v1/sdk-api/verifications";

/// A registered agent's client: signs every request with the agent's key and verifies actions.
///
/// Cheap to clone (shared state behind an `Arc`); connections are pooled and reused.
#[derive(Clone)]
pub struct AimClient {
    pub(crate) inner: Arc<Inner>,
    pub(crate) http: reqwest::Client,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pub(crate) identity: AgentIdentity,
    pub(crate) transport: Transport,
    pub(crate) blocking: OnceLock<std::result::Result<crate::guard::BlockingRuntime, String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(Ok(rt)) = self.blocking.take() {
            rt.shutdown();
        }
    }
}

impl std::fmt::Debug for AimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AimClient")
            .field("server", &self.inner.transport.base)
            .field("agent", &self.inner.identity.name())
            .field("agent_id", &self.inner.identity.agent_id())
            .finish()
    }
}

/// Builds the HTTP client (rustls, connection pooling).
pub(crate) fn http_client(config: &ClientConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Configuration(format!("cannot build the HTTP client: {e}")))
}

impl AimClient {
    /// A client for an already registered identity. The identity's server URL is used unless
    /// `config.server_url` was changed from the default.
    pub fn new(config: ClientConfig, identity: AgentIdentity) -> Result<Self> {
        Self::with_clock(config, identity, Arc::new(SystemClock))
    }

    /// Like [`AimClient::new`] with an injected clock (tests, simulations).
    pub fn with_clock(
        mut config: ClientConfig,
        identity: AgentIdentity,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if config.server_url == crate::config::DEFAULT_SERVER_URL {
            config.server_url = identity.server_url().to_owned();
        }
        let base = config.base_url()?;
        let transport = Transport {
            base,
            retry: config.retry.clone(),
            request_timeout: config.request_timeout,
            clock,
            recent: Default::default(),
            scheme: config.request_signatures,
        };
        let http = http_client(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                identity,
                transport,
                blocking: OnceLock::new(),
            }),
            http,
        })
    }

    /// `secure(name)` with the configuration from the environment
    /// ([`ClientConfig::from_env`]).
    pub async fn secure(name: &str) -> Result<Self> {
        Self::secure_with(name, ClientConfig::from_env()?).await
    }

    /// Loads the stored identity `name`, or generates a key pair locally, registers its public
    /// half with the server (needs `config.api_key`) and stores the identity. A second call
    /// with the same name loads and does not register again.
    pub async fn secure_with(name: &str, config: ClientConfig) -> Result<Self> {
        match Self::load(name, config.clone())? {
            Some(client) => Ok(client),
            None => Self::register(name, config, RegistrationDetails::default()).await,
        }
    }

    /// A client for the stored identity `name`, or `None` when none is stored (never
    /// registers).
    pub fn load(name: &str, config: ClientConfig) -> Result<Option<Self>> {
        let store = CredentialStore::new(config.home_dir()?, config.kdf_params);
        match store.load(name, &config.key_protection)? {
            Some(identity) => {
                tracing::debug!(agent = name, "loaded stored agent identity");
                Self::new(config, identity).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Generates a key pair, registers it as agent `name` and stores the identity, replacing
    /// any stored identity of that name.
    pub async fn register(
        name: &str,
        config: ClientConfig,
        details: RegistrationDetails,
    ) -> Result<Self> {
        crate::store::validate_name(name)?;
        let store = CredentialStore::new(config.home_dir()?, config.kdf_params);
        let api_key = config.api_key.clone().ok_or_else(|| {
            Error::Configuration(
                "registering an agent needs an API key (AIM_API_KEY, AIM_API_KEY_FILE or \
                 ClientConfig::with_api_key)"
                    .into(),
            )
        })?;
        let base = config.base_url()?;
        let keypair = AgentKeypair::generate()?;
        let public_key = keypair.public_key().to_b64();
        let mut body = json!({
            "name": name,
            "display_name": details.display_name.clone().unwrap_or_else(|| name.to_owned()),
            "description": details.description.clone()
                .unwrap_or_else(|| format!("Agent {name} registered via aim-client")),
            "agent_type": details.agent_type.clone().unwrap_or_else(|| "ai_agent".into()),
            "public_key": public_key,
        });
        for (key, value) in [
            ("version", &details.version),
            ("repository_url", &details.repository_url),
            ("documentation_url", &details.documentation_url),
        ] {
            if let Some(v) = value {
                body[key] = Value::String(v.clone());
            }
        }
        let transport = Transport {
            base: base.clone(),
            retry: config.retry.clone(),
            request_timeout: config.request_timeout,
            clock: Arc::new(SystemClock),
            recent: Default::default(),
            scheme: config.request_signatures,
        };
        let http = http_client(&config)?;
        let response = transport
            .send(
                &http,
                Method::POST,
                PATH_REGISTER,
                Some(&wire::canonical(&body)),
                Auth::Registration(&api_key),
                None,
            )
            .await?;
        let url = response.url.clone();
        let reply = response.success_json()?;
        if let Some(returned) = reply.get("public_key").and_then(Value::as_str)
            && returned != public_key
        {
            return Err(Error::InvalidResponse {
                url,
                message: "the server registered a different public key than the one sent; \
                          refusing to use a server-generated key"
                    .into(),
            });
        }
        let agent_id = reply
            .get("agent_id")
            .or_else(|| reply.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidResponse {
                url: url.clone(),
                message: "registration answer has no `agent_id`".into(),
            })?;
        let identity = AgentIdentity::new(name, agent_id, base, keypair)?;
        let path = store.save(&identity, &config.key_protection)?;
        tracing::info!(agent = name, agent_id, path = %path.display(), "agent registered");
        Self::new(config, identity)
    }

    /// The agent's identity.
    pub fn identity(&self) -> &AgentIdentity {
        &self.inner.identity
    }

    /// The agent id.
    pub fn agent_id(&self) -> &str {
        self.inner.identity.agent_id()
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.transport.clock
    }

    pub(crate) async fn agent_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<HttpResponse> {
        self.inner
            .transport
            .send(
                &self.http,
                method,
                path,
                body,
                Auth::Agent {
                    identity: &self.inner.identity,
                    api_key: self.inner.config.api_key.as_ref(),
                },
                deadline,
            )
            .await
    }

    /// Asks the server whether the action may run; waits (polling) while a person decides.
    ///
    /// Returns the approval, or [`Error::Denied`] with the server's reason, [`Error::Expired`],
    /// [`Error::Timeout`] when the deadline passes while pending, or a transport,
    /// authentication or response error.
    pub async fn verify_action(&self, request: &ActionRequest) -> Result<Approval> {
        request.validate()?;
        let started = self.clock().now();
        let deadline = started
            + request
                .timeout
                .unwrap_or(self.inner.config.verification_timeout);
        let timestamp = wire::sdk_utc_timestamp(self.clock().wall());
        let body = wire::verification_body(
            self.inner.identity.keypair(),
            self.agent_id(),
            request,
            &timestamp,
        );
        let response = self
            .agent_request(
                Method::POST,
                PATH_VERIFICATIONS,
                Some(&body),
                Some(deadline),
            )
            .await?;
        let state = verification_state(response)?;
        let verification_id = match state {
            VerificationState::Approved(approval) => return Ok(approval),
            VerificationState::Denied {
                reason,
                verification_id,
            } => {
                return Err(Error::Denied {
                    reason,
                    verification_id,
                });
            }
            VerificationState::Expired { verification_id } => {
                return Err(Error::Expired { verification_id });
            }
            VerificationState::Pending { verification_id } => verification_id,
        };
        let path = format!("{PATH_VERIFICATIONS}/{}", path_segment(&verification_id)?);
        poll_until_decided(
            self.clock().as_ref(),
            &self.inner.config.poll,
            started,
            deadline,
            &verification_id,
            || async {
                let response = self
                    .agent_request(Method::GET, &path, None, Some(deadline))
                    .await?;
                verification_state(response)
            },
        )
        .await
    }

    /// Reports the outcome of an approved action. Errors are returned for the caller to log;
    /// the action guard never turns them into a failed action.
    pub async fn log_action_result(
        &self,
        verification_id: &str,
        success: bool,
        summary: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let body = wire::result_body(
            success,
            summary,
            error,
            &wire::sdk_aware_timestamp(self.clock().wall()),
        );
        let path = format!(
            "{PATH_VERIFICATIONS}/{}/result",
            path_segment(verification_id)?
        );
        let response = self
            .agent_request(Method::POST, &path, Some(&body), None)
            .await?;
        // A retried POST whose first answer was lost finds the result already recorded; any
        // other conflict (e.g. the verification was not approved) is an error.
        if response.status == 409 && response.error_message().contains("already recorded") {
            return Ok(());
        }
        response.success_json().map(|_| ())
    }

    /// Asks an administrator to grant `capability_type`; `reason` needs at least 10 characters.
    /// Returns the server's capability request (`id`, `status: "pending"`, ...).
    pub async fn request_capability(&self, capability_type: &str, reason: &str) -> Result<Value> {
        if capability_type.trim().is_empty() {
            return Err(Error::Configuration(
                "capability_type must be a non-empty string".into(),
            ));
        }
        if reason.chars().count() < 10 {
            return Err(Error::Configuration(
                "reason must be at least 10 characters".into(),
            ));
        }
        let body = wire::canonical(&json!({"capability_type": capability_type, "reason": reason}));
        let path = format!(
            "/api/v1/sdk-api/agents/{}/capability-requests",
            self.agent_id()
        );
        self.agent_request(Method::POST, &path, Some(&body), None)
            .await?
            .success_json()
    }

    /// Declares capabilities the agent has (one POST each). Declared is not granted: an
    /// administrator still has to grant them before actions needing them are approved.
    pub async fn report_capabilities(
        &self,
        capabilities: &[CapabilityReport],
    ) -> Result<CapabilityReportSummary> {
        let path = format!("/api/v1/sdk-api/agents/{}/capabilities", self.agent_id());
        let mut summary = CapabilityReportSummary {
            total: capabilities.len(),
            ..Default::default()
        };
        for cap in capabilities {
            let body = wire::canonical(
                &json!({"capabilityType": cap.capability_type, "scope": cap.scope}),
            );
            let response = self
                .agent_request(Method::POST, &path, Some(&body), None)
                .await?;
            if response.status == 409 {
                summary.already_known += 1;
            } else {
                response.success_json()?;
                summary.recorded += 1;
            }
        }
        Ok(summary)
    }

    /// Records that the agent talks to MCP server `mcp_server_id` (an id or a name).
    /// `detection_method` is one of `manual`, `auto_sdk`, `auto_config`, `cli`.
    pub async fn register_mcp(
        &self,
        mcp_server_id: &str,
        detection_method: &str,
        confidence: f64,
        metadata: Value,
    ) -> Result<Value> {
        let metadata = if metadata.is_null() {
            json!({})
        } else {
            metadata
        };
        let body = wire::canonical(&json!({
            "mcp_server_ids": [mcp_server_id],
            "detected_method": detection_method,
            "confidence": confidence,
            "metadata": metadata,
        }));
        let path = format!("/api/v1/sdk-api/agents/{}/mcp-servers", self.agent_id());
        self.agent_request(Method::POST, &path, Some(&body), None)
            .await?
            .success_json()
    }

    /// Reports MCP detection events (`{mcpServer, detectionMethod, confidence, details,
    /// sdkVersion, timestamp}` each) to `/api/v1/detection/agents/{id}/report`.
    pub async fn report_detections(&self, detections: &[Value]) -> Result<Value> {
        if detections.is_empty() {
            return Err(Error::Configuration("no detections to report".into()));
        }
        let body = wire::canonical(&json!({ "detections": detections }));
        let path = format!("/api/v1/detection/agents/{}/report", self.agent_id());
        self.agent_request(Method::POST, &path, Some(&body), None)
            .await?
            .success_json()
    }
}

impl AimClient {
    /// Publishes a signed tree head of one of the agent's audit logs to the server, which acts
    /// as an external witness (`docs/audit-log.md` §8). `published` is the published-head JSON
    /// (`{version: 1, head: {...}, consistency: {...} | null}`, e.g. `serde_json::to_value` of a
    /// `vault_audit::PublishedHead`); `log` names the log (`None` for the default one).
    ///
    /// Returns the witness receipt. A fork, a stale head or a missing/invalid consistency proof
    /// is refused with [`Error::Http`] status 409 (the server also raises an alert on a fork).
    pub async fn publish_tree_head(&self, published: &Value, log: Option<&str>) -> Result<Value> {
        let mut path = format!("/api/v1/agents/{}/tree-heads", self.agent_id());
        if let Some(log) = log {
            path.push('/');
            path.push_str(path_segment(log)?);
        }
        let body = wire::canonical(published);
        self.agent_request(Method::POST, &path, Some(&body), None)
            .await?
            .success_json()
    }

    /// The tree heads the server holds for one of the agent's logs (`None`: the default log):
    /// `{agent_id, log, heads: [head JSON with received_at, ...]}`, ascending size.
    pub async fn tree_heads(&self, log: Option<&str>) -> Result<Value> {
        let mut path = format!("/api/v1/agents/{}/tree-heads", self.agent_id());
        if let Some(log) = log {
            path.push('/');
            path.push_str(path_segment(log)?);
        }
        self.agent_request(Method::GET, &path, None, None)
            .await?
            .success_json()
    }

    /// Declares an extra public key (standard base64) allowed to sign this agent's tree heads,
    /// besides its identity key.
    pub async fn declare_tree_head_key(&self, public_key_b64: &str) -> Result<Value> {
        let path = format!("/api/v1/agents/{}/tree-head-keys", self.agent_id());
        let body = wire::canonical(&json!({ "public_key": public_key_b64 }));
        self.agent_request(Method::POST, &path, Some(&body), None)
            .await?
            .success_json()
    }
}

/// Reads a verification answer: 2xx and 403 bodies carry a verification object.
fn verification_state(response: HttpResponse) -> Result<VerificationState> {
    let is_denial_body = response.status == 403
        && response
            .json()
            .ok()
            .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned))
            .is_some_and(|s| s == "denied");
    if response.is_success() || is_denial_body {
        let value = response.json()?;
        VerificationState::from_json(&value, &response.url)
    } else {
        Err(response.into_error())
    }
}

/// Checks an id before putting it in a path.
fn path_segment(id: &str) -> Result<&str> {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.')
    {
        Ok(id)
    } else {
        Err(Error::InvalidResponse {
            url: String::new(),
            message: format!("`{id}` is not a plain identifier"),
        })
    }
}
