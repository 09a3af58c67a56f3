//! The administration client (API-key authenticated), used by the `aim` CLI.

use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;

use crate::clock::SystemClock;
use crate::config::{ApiKey, ClientConfig};
use crate::error::{Error, Result};
use crate::http::{Auth, Transport};
use crate::wire;

/// An administrator's client: agents, approvals, capabilities, policies and the audit log.
#[derive(Clone)]
pub struct AdminClient {
    transport: Transport,
    http: reqwest::Client,
    api_key: ApiKey,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("server", &self.transport.base)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// A client for `config.server_url` authenticating with `config.api_key`.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let api_key = config.api_key.clone().ok_or_else(|| {
            Error::Configuration(
                "no admin API key: use --api-key-file, AIM_API_KEY or `api_key_file` in the \
                 config file (`aim server init` prints one)"
                    .into(),
            )
        })?;
        Ok(Self {
            transport: Transport {
                base: config.base_url()?,
                retry: config.retry.clone(),
                request_timeout: config.request_timeout,
                clock: Arc::new(SystemClock),
                recent: Default::default(),
                scheme: config.request_signatures,
            },
            http: crate::client::http_client(config)?,
            api_key,
        })
    }

    /// The server base URL.
    pub fn server_url(&self) -> &str {
        &self.transport.base
    }

    /// Sends a request with an optional JSON body and returns the JSON answer (`null` for an
    /// empty body). Non-2xx answers become typed errors.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let body = body.map(wire::canonical);
        self.transport
            .send(
                &self.http,
                method,
                path_and_query,
                body.as_deref(),
                Auth::ApiKey(&self.api_key),
                None,
            )
            .await?
            .success_json()
    }

    /// `GET path`.
    pub async fn get(&self, path_and_query: &str) -> Result<Value> {
        self.request(Method::GET, path_and_query, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.request(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.request(Method::DELETE, path, None).await
    }
}

/// The administration routes, in one place (see `docs/api.md` of `aim-server`).
pub mod routes {
    /// Agents collection.
    pub const AGENTS: &str = "/api/v1/agents";
    /// Verifications collection (administrator view).
    pub const VERIFICATIONS: &str = "/api/v1/verifications";
    /// Capability requests (administrator view).
    pub const CAPABILITY_REQUESTS: &str = "/api/v1/capability-requests";
    /// Policies.
    pub const POLICIES: &str = "/api/v1/policies";
    /// Audit log.
    pub const AUDIT: &str = "/api/v1/audit-logs";
}

impl AdminClient {
    /// All agents of the key's organization.
    pub async fn list_agents(&self) -> Result<Value> {
        self.get(routes::AGENTS)
            .await
            .map(|v| unwrap_list(v, "agents"))
    }

    /// One agent by id or name.
    pub async fn get_agent(&self, id_or_name: &str) -> Result<Value> {
        self.get(&format!(
            "{}/{}",
            routes::AGENTS,
            encode_component(id_or_name)
        ))
        .await
        .map(|v| v.get("agent").cloned().unwrap_or(v))
    }

    /// The id of an agent given by id or name.
    pub async fn resolve_agent(&self, id_or_name: &str) -> Result<String> {
        if crate::identity::is_uuid(id_or_name) {
            return Ok(id_or_name.to_owned());
        }
        let agent = self.get_agent(id_or_name).await?;
        agent
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidResponse {
                url: format!("{}{}", self.server_url(), routes::AGENTS),
                message: format!("agent `{id_or_name}` has no `id`"),
            })
    }

    /// Sets an agent's status: `suspend`, `reactivate` or `revoke`.
    pub async fn agent_action(&self, id_or_name: &str, action: &str) -> Result<Value> {
        self.post(
            &format!(
                "{}/{}/{action}",
                routes::AGENTS,
                encode_component(id_or_name)
            ),
            &serde_json::json!({}),
        )
        .await
    }

    /// Verifications waiting for a person.
    pub async fn pending_verifications(&self) -> Result<Value> {
        self.get(&format!("{}?status=pending", routes::VERIFICATIONS))
            .await
            .map(|v| unwrap_list(v, "verifications"))
    }

    /// Approves (`approve`) or denies (`deny`) a pending verification with a reason.
    pub async fn decide_verification(
        &self,
        id: &str,
        decision: &str,
        reason: &str,
    ) -> Result<Value> {
        self.post(
            &format!(
                "{}/{}/{decision}",
                routes::VERIFICATIONS,
                encode_component(id)
            ),
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    /// Grants capability `capability` to an agent.
    pub async fn grant_capability(&self, agent: &str, capability: &str) -> Result<Value> {
        self.post(
            &format!(
                "{}/{}/capabilities",
                routes::AGENTS,
                encode_component(agent)
            ),
            &serde_json::json!({ "capability": capability }),
        )
        .await
    }

    /// Revokes capability `capability` from an agent.
    pub async fn revoke_capability(&self, agent: &str, capability: &str) -> Result<Value> {
        self.delete(&format!(
            "{}/{}/capabilities/{}",
            routes::AGENTS,
            encode_component(agent),
            encode_component(capability)
        ))
        .await
    }

    /// Capability requests, optionally filtered by status (`pending`, ...).
    pub async fn capability_requests(&self, status: Option<&str>) -> Result<Value> {
        let path = match status {
            Some(s) => format!(
                "{}?status={}",
                routes::CAPABILITY_REQUESTS,
                encode_component(s)
            ),
            None => routes::CAPABILITY_REQUESTS.to_owned(),
        };
        self.get(&path).await.map(|v| unwrap_list(v, "requests"))
    }

    /// Approves (`approve`) or rejects (`reject`) a capability request.
    pub async fn decide_capability_request(
        &self,
        id: &str,
        decision: &str,
        reason: Option<&str>,
    ) -> Result<Value> {
        self.post(
            &format!(
                "{}/{}/{decision}",
                routes::CAPABILITY_REQUESTS,
                encode_component(id)
            ),
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    /// The agent's granted and declared capabilities.
    pub async fn capabilities(&self, agent: &str) -> Result<Value> {
        self.get(&format!(
            "{}/{}/capabilities",
            routes::AGENTS,
            encode_component(agent)
        ))
        .await
    }

    /// One verification (administrator view).
    pub async fn verification(&self, id: &str) -> Result<Value> {
        self.get(&format!(
            "{}/{}",
            routes::VERIFICATIONS,
            encode_component(id)
        ))
        .await
    }

    /// All policies.
    pub async fn list_policies(&self) -> Result<Value> {
        self.get(routes::POLICIES)
            .await
            .map(|v| unwrap_list(v, "policies"))
    }

    /// Creates a policy from its JSON description.
    pub async fn create_policy(&self, policy: &Value) -> Result<Value> {
        self.post(routes::POLICIES, policy).await
    }

    /// Updates a policy (absent fields unchanged).
    pub async fn update_policy(&self, id_or_name: &str, changes: &Value) -> Result<Value> {
        self.put(
            &format!("{}/{}", routes::POLICIES, encode_component(id_or_name)),
            changes,
        )
        .await
    }

    /// Deletes a policy.
    pub async fn delete_policy(&self, id: &str) -> Result<Value> {
        self.delete(&format!("{}/{}", routes::POLICIES, encode_component(id)))
            .await
    }

    /// Audit log entries, newest first, optionally for one agent.
    pub async fn audit(&self, agent: Option<&str>, limit: u32) -> Result<Value> {
        let mut path = format!("{}?limit={limit}", routes::AUDIT);
        if let Some(agent) = agent {
            let id = self.resolve_agent(agent).await?;
            path.push_str(&format!("&agent_id={}", encode_component(&id)));
        }
        self.get(&path).await.map(|v| unwrap_list(v, "entries"))
    }
}

/// Takes the array out of `{"<key>": [...]}` wrappers (also `items`, `data`); arrays pass.
fn unwrap_list(value: Value, key: &str) -> Value {
    if value.is_array() {
        return value;
    }
    for k in [key, "items", "data", "logs"] {
        if let Some(list) = value.get(k).filter(|v| v.is_array()) {
            return list.clone();
        }
    }
    value
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_components() {
        assert_eq!(encode_component("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_component("db:query"), "db%3Aquery");
        assert_eq!(encode_component("plain-Name_1.2~"), "plain-Name_1.2~");
    }

    #[test]
    fn needs_an_api_key() {
        let err = AdminClient::new(&ClientConfig::default()).unwrap_err();
        assert!(err.to_string().contains("API key"), "{err}");
    }
}
