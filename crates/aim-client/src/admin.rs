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
