//! Sending one request: authentication headers (signed afresh on every attempt), bounded
//! retries with jitter for transient failures, and the caller's deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::clock::Clock;
use crate::config::ApiKey;
use crate::error::{Error, Result, TransportKind};
use crate::identity::AgentIdentity;
use crate::retry::{RetryPolicy, is_retryable_status, parse_retry_after};

/// `User-Agent` of this client.
pub const USER_AGENT: &str = concat!("aim-rs-client/", env!("CARGO_PKG_VERSION"));
/// Header carrying an API key on agent and admin requests.
pub const HEADER_API_KEY: &str = "X-API-Key";
/// Header carrying the API key on public registration (what the AIM server expects there).
pub const HEADER_REGISTRATION_KEY: &str = "X-AIM-API-Key";

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// Agent signature headers, plus `X-API-Key` when a key is configured.
    Agent {
        identity: &'a AgentIdentity,
        api_key: Option<&'a ApiKey>,
    },
    /// `X-API-Key` only (administration).
    ApiKey(&'a ApiKey),
    /// `X-AIM-API-Key` (public agent registration).
    Registration(&'a ApiKey),
}

/// A response with its body read.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) url: String,
}

impl HttpResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn json(&self) -> Result<serde_json::Value> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| Error::InvalidResponse {
            url: self.url.clone(),
            message: format!("body is not JSON: {e}"),
        })
    }

    /// The server's error text: the `error` (or `message`) field, else the start of the body.
    pub(crate) fn error_message(&self) -> String {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            for key in ["error", "message", "denial_reason"] {
                if let Some(s) = v.get(key).and_then(serde_json::Value::as_str) {
                    return s.to_owned();
                }
            }
        }
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(200).collect();
        if text.trim().is_empty() {
            "(empty body)".into()
        } else {
            text
        }
    }

    /// The error for a non-2xx answer.
    pub(crate) fn into_error(self) -> Error {
        let message = self.error_message();
        match self.status {
            401 | 403 => Error::Authentication {
                status: self.status,
                message,
            },
            status => Error::Http {
                status,
                url: self.url,
                message,
            },
        }
    }

    /// The JSON body of a 2xx answer, or the mapped error.
    pub(crate) fn success_json(self) -> Result<serde_json::Value> {
        if self.is_success() {
            self.json()
        } else {
            Err(self.into_error())
        }
    }
}

/// Sends requests to one server.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub(crate) base: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) request_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    /// (second, digest of method/path/body) signed recently; see [`Transport::fresh_second`].
    pub(crate) recent: RecentSignatures,
    /// The request-signature scheme of agent requests.
    pub(crate) scheme: aim_crypto::SignatureVersion,
}

/// Shared record of (Unix second, SHA-256 of method/path/body) signed recently.
pub(crate) type RecentSignatures = Arc<Mutex<Vec<(u64, [u8; 32])>>>;

impl Transport {
    /// Sends `body` (exact bytes; signed as they are) to `path_and_query`. Retries 429, 5xx and
    /// transport failures within the policy and before `deadline`; returns the last response
    /// otherwise (the caller maps statuses).
    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        method: Method,
        path_and_query: &str,
        body: Option<&str>,
        auth: Auth<'_>,
        deadline: Option<Instant>,
    ) -> Result<HttpResponse> {
        let url = format!("{}{}", self.base, path_and_query);
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut timeout = self.request_timeout;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(self.clock.now());
                timeout = timeout.min(left.max(Duration::from_millis(50)));
            }
            let mut request = http
                .request(method.clone(), &url)
                .timeout(timeout)
                .header(reqwest::header::USER_AGENT, USER_AGENT)
                .header(reqwest::header::ACCEPT, "application/json");
            let bytes = body.unwrap_or("").as_bytes();
            if body.is_some() {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.to_vec());
            }
            request = match auth {
                Auth::Agent { identity, api_key } => {
                    request = self
                        .sign_agent(request, identity, method.as_str(), path_and_query, bytes)
                        .await?;
                    match api_key {
                        Some(key) => request.header(HEADER_API_KEY, key.expose()),
                        None => request,
                    }
                }
                Auth::ApiKey(key) => request.header(HEADER_API_KEY, key.expose()),
                Auth::Registration(key) => request.header(HEADER_REGISTRATION_KEY, key.expose()),
            };
            let outcome = request.send().await;
            let retry_index = attempt - 1;
            match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, self.clock.wall()));
                    let body = match response.bytes().await {
                        Ok(b) => b.to_vec(),
                        Err(e) => {
                            let err = transport_error(&url, &e);
                            if attempt < attempts && self.wait(retry_index, None, deadline).await {
                                tracing::debug!(%url, error = %err, "retrying");
                                continue;
                            }
                            return Err(err);
                        }
                    };
                    if is_retryable_status(status)
                        && attempt < attempts
                        && self.wait(retry_index, retry_after, deadline).await
                    {
                        tracing::debug!(%url, status, ?retry_after, "transient answer; retrying");
                        continue;
                    }
                    return Ok(HttpResponse {
                        status,
                        body,
                        url: url.clone(),
                    });
                }
                Err(e) => {
                    let err = transport_error(&url, &e);
                    if attempt < attempts && self.wait(retry_index, None, deadline).await {
                        tracing::debug!(%url, error = %err, "transport failure; retrying");
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// A Unix second in which this client has not yet signed the same method, path and body.
    ///
    /// The server accepts each signature once. With one-second timestamps, two identical
    /// requests (a retry, or fast polls of the same verification) signed in the same second
    /// would carry the same signature and the second would be refused as a replay, so the
    /// client waits for the next second instead.
    /// Adds the agent's signature headers: v2 (a fresh nonce, the server's origin, the path
    /// with its query) or the SDK's v1 (path only, a second not used for the same request).
    async fn sign_agent(
        &self,
        request: reqwest::RequestBuilder,
        identity: &AgentIdentity,
        method: &str,
        path_and_query: &str,
        bytes: &[u8],
    ) -> Result<reqwest::RequestBuilder> {
        let mut request = request;
        match self.scheme {
            aim_crypto::SignatureVersion::V2 => {
                let origin = aim_crypto::request_v2::origin_of(&self.base)?;
                let nonce = aim_crypto::request_v2::new_nonce()?;
                let timestamp = self.unix_now().to_string();
                let signed = identity.keypair().sign_request_v2(&aim_crypto::RequestV2 {
                    agent_id: identity.agent_id(),
                    method,
                    path_and_query,
                    origin: &origin,
                    timestamp: &timestamp,
                    nonce: &nonce,
                    body: bytes,
                })?;
                for (name, value) in signed.pairs() {
                    request = request.header(name, value);
                }
            }
            aim_crypto::SignatureVersion::V1 => {
                let path = path_and_query
                    .split_once('?')
                    .map_or(path_and_query, |(p, _)| p);
                let unix = self.fresh_second(method, path, bytes).await;
                let headers =
                    identity
                        .keypair()
                        .sign_request(identity.agent_id(), method, path, unix, bytes);
                for (name, value) in headers.pairs() {
                    request = request.header(name, value);
                }
            }
        }
        Ok(request)
    }

    async fn fresh_second(&self, method: &str, path: &str, body: &[u8]) -> u64 {
        let mut message = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
        message.extend_from_slice(method.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(path.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(body);
        let digest = aim_crypto::hash::sha256(&message);
        loop {
            let unix = self.unix_now();
            {
                let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                recent.retain(|(ts, _)| *ts >= unix);
                if !recent.iter().any(|(ts, d)| *ts == unix && *d == digest) {
                    if recent.len() >= 1024 {
                        recent.remove(0);
                    }
                    recent.push((unix, digest));
                    return unix;
                }
            }
            let into_second = self
                .clock
                .wall()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            self.clock
                .sleep(Duration::from_nanos(u64::from(1_000_000_000 - into_second)))
                .await;
        }
    }

    fn unix_now(&self) -> u64 {
        self.clock
            .wall()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }

    /// Sleeps before retry `retry`; false (without sleeping) when that would pass `deadline`.
    async fn wait(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        deadline: Option<Instant>,
    ) -> bool {
        let random = aim_crypto::random::random_array::<8>()
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        let delay = self.retry.delay(retry, retry_after, random);
        if let Some(deadline) = deadline
            && self.clock.now() + delay >= deadline
        {
            return false;
        }
        self.clock.sleep(delay).await;
        true
    }
}

fn transport_error(url: &str, e: &reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Io
    };
    // reqwest's Display hides the root cause ("error sending request"); walk the chain.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    Error::Transport {
        kind,
        url: url.to_owned(),
        message,
    }
}
