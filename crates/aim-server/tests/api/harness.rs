//! A real server on a loopback port with a manual clock, plus helpers to call it as a person
//! (API key) or as an agent (signatures built with aim-crypto, exactly as the Python SDK does).

use std::sync::Arc;
use std::time::Duration;

use aim_crypto::canonical::Value as Canon;
use aim_crypto::{ActionPayload, AgentKeypair};
use aim_server::{Clock, ManualClock, RunningServer, Server, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) struct Harness {
    /// (agent, method, path, body hash, second) already signed: identical requests in the same
    /// second are replays (Ed25519 is deterministic), so the clock moves on instead.
    used: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Microseconds for SDK-style body timestamps, so bodies differ like real ones.
    micros: std::sync::atomic::AtomicU64,
    pub(crate) server: Option<RunningServer>,
    pub(crate) url: String,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) admin_key: String,
    /// A `registration` key (owned by the admin): what agent processes hold to register.
    pub(crate) registration_key: String,
    pub(crate) http: reqwest::Client,
    pub(crate) config: ServerConfig,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct TestAgent {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) keys: AgentKeypair,
}

pub(crate) type Reply = (StatusCode, Value);

/// The `/metrics` bearer token every harness server is started with.
pub(crate) const METRICS_TOKEN: &str = "metrics-token-for-tests-0123456789";

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let mut config = ServerConfig::new(dir.path())
            .with_addr("127.0.0.1:0".parse().unwrap())
            .with_clock(clock.clone());
        config.pending_ttl = Duration::from_secs(120);
        // Sweeps are triggered explicitly through reads in tests.
        config.sweep_interval = Duration::from_secs(3600);
        config.metrics_token = Some(aim_server::MetricsToken::new(METRICS_TOKEN).unwrap());
        adjust(&mut config);
        let init = aim_server::init(&config, "Acme", "admin@acme.test")
            .await
            .unwrap();
        let server = Server::start(config.clone()).await.unwrap();
        let mut h = Harness {
            used: Default::default(),
            micros: Default::default(),
            url: server.url(),
            server: Some(server),
            clock,
            admin_key: init.admin_api_key.expose().to_owned(),
            registration_key: String::new(),
            http: reqwest::Client::new(),
            config,
            dir,
        };
        let (s, key) = h
            .admin(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({ "name": "agents", "role": "registration" })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{key}");
        h.registration_key = key["api_key"].as_str().unwrap().to_owned();
        h
    }

    pub(crate) fn now_secs(&self) -> u64 {
        (self.clock.now_ms() / 1000) as u64
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    /// A request with an API key (`key`) and an optional JSON body.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Reply {
        self.send(
            method,
            path,
            &[("x-api-key", key.to_owned())],
            body.map(|b| serde_json::to_vec(&b).unwrap()),
        )
        .await
    }

    pub(crate) async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, &self.admin_key, body).await
    }

    /// Registers an agent with its own key (no private key comes back), through the
    /// registration key as an SDK would.
    pub(crate) async fn register(&self, name: &str) -> TestAgent {
        self.register_with(name, &self.registration_key).await
    }

    /// Registers an agent through API key `api_key` (SDK API-key mode).
    pub(crate) async fn register_with(&self, name: &str, api_key: &str) -> TestAgent {
        let keys = AgentKeypair::generate().unwrap();
        let (status, body) = self
            .send(
                Method::POST,
                "/api/v1/public/agents/register",
                &[("x-aim-api-key", api_key.to_owned())],
                Some(
                    serde_json::to_vec(&json!({
                        "name": name,
                        "public_key": keys.public_key().to_b64(),
                    }))
                    .unwrap(),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.get("private_key").is_none());
        TestAgent {
            id: body["agent_id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            keys,
        }
    }

    /// Registers an agent and grants it `caps`.
    pub(crate) async fn agent_with(&self, name: &str, caps: &[&str]) -> TestAgent {
        let agent = self.register(name).await;
        for c in caps {
            let (s, b) = self
                .admin(
                    Method::POST,
                    &format!("/api/v1/agents/{}/capabilities", agent.id),
                    Some(json!({ "capability": c })),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
        agent
    }

    /// Signature headers for `agent` at the clock's current second.
    pub(crate) fn sign(
        &self,
        agent: &TestAgent,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let digest = aim_crypto::hash::sha256(body);
        loop {
            let secs = self.now_secs();
            let key = format!("{}|{method}|{path}|{digest:?}|{secs}", agent.id);
            if self.used.lock().unwrap().insert(key) {
                return self.sign_at(agent, method, path, body, secs);
            }
            self.clock.advance(Duration::from_secs(1));
        }
    }

    pub(crate) fn sign_at(
        &self,
        agent: &TestAgent,
        method: &str,
        path: &str,
        body: &[u8],
        secs: u64,
    ) -> Vec<(&'static str, String)> {
        let h = agent.keys.sign_request(&agent.id, method, path, secs, body);
        vec![
            ("x-agent-id", h.agent_id),
            ("x-signature", h.signature),
            ("x-timestamp", h.timestamp),
            ("x-public-key", h.public_key),
        ]
    }

    /// A signed request from `agent`.
    pub(crate) async fn as_agent(
        &self,
        agent: &TestAgent,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let bytes = body.map(|b| Canon::from_serde(&b).to_python_json().into_bytes());
        // Query strings are not signed (AIM SDK §3.1).
        let signed_path = path.split('?').next().unwrap_or(path);
        let headers = self.sign(
            agent,
            method.as_str(),
            signed_path,
            bytes.as_deref().unwrap_or(b""),
        );
        let headers: Vec<(&str, String)> = headers.into_iter().collect();
        self.send(method, path, &headers, bytes).await
    }

    /// The SDK's naive-UTC timestamp (`datetime.utcnow().isoformat() + 'Z'`).
    pub(crate) fn sdk_timestamp(&self) -> String {
        let n = self
            .micros
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            % 1000;
        let base = chrono::DateTime::from_timestamp_millis(self.clock.now_ms())
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string();
        format!("{base}{n:03}Z")
    }

    /// The JSON body the SDK sends for `verify_action` (snake_case, Python-canonical).
    pub(crate) fn verification_body(
        &self,
        agent: &TestAgent,
        action: &str,
        resource: Option<&str>,
        context: Value,
    ) -> Vec<u8> {
        let payload = ActionPayload {
            action_type: action.to_owned(),
            agent_id: agent.id.clone(),
            context: Canon::from_serde(&context),
            resource: resource.map(str::to_owned),
            timestamp: self.sdk_timestamp(),
            risk_level: None,
        };
        self.body_from_payload(agent, &payload)
    }

    pub(crate) fn body_from_payload(&self, agent: &TestAgent, payload: &ActionPayload) -> Vec<u8> {
        let signature = payload.sign(&agent.keys).to_b64();
        let mut map = std::collections::BTreeMap::new();
        map.insert(
            "action_type".to_owned(),
            Canon::String(payload.action_type.clone()),
        );
        map.insert(
            "agent_id".to_owned(),
            Canon::String(payload.agent_id.clone()),
        );
        map.insert("context".to_owned(), payload.context.clone());
        map.insert(
            "resource".to_owned(),
            payload.resource.clone().map_or(Canon::Null, Canon::String),
        );
        map.insert(
            "timestamp".to_owned(),
            Canon::String(payload.timestamp.clone()),
        );
        map.insert("signature".to_owned(), Canon::String(signature));
        map.insert(
            "public_key".to_owned(),
            Canon::String(agent.keys.public_key().to_b64()),
        );
        if let Some(r) = &payload.risk_level {
            map.insert("risk_level".to_owned(), Canon::String(r.clone()));
        }
        Canon::Object(map).to_python_json().into_bytes()
    }

    /// `verify_action` with signature headers, as the spec's SDK sends it.
    pub(crate) async fn verify(
        &self,
        agent: &TestAgent,
        action: &str,
        resource: Option<&str>,
        context: Value,
    ) -> Reply {
        let body = self.verification_body(agent, action, resource, context);
        self.post_verification(agent, body).await
    }

    pub(crate) async fn post_verification(&self, agent: &TestAgent, body: Vec<u8>) -> Reply {
        let path = "/api/v1/sdk-api/verifications";
        let headers = self.sign(agent, "POST", path, &body);
        self.send(Method::POST, path, &headers, Some(body)).await
    }

    /// A second organization with its own admin key.
    pub(crate) async fn other_org(&self) -> (String, String) {
        let out = self
            .server
            .as_ref()
            .unwrap()
            .create_organization("Other Co", "admin@other.test")
            .await
            .unwrap();
        (out.organization_id, out.admin_api_key.expose().to_owned())
    }

    /// Creates a user with `role` and returns an API key for them.
    pub(crate) async fn key_with_role(&self, email: &str, role: &str) -> String {
        let (s, user) = self
            .admin(
                Method::POST,
                "/api/v1/users",
                Some(json!({ "email": email, "role": role })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{user}");
        let (s, key) = self
            .admin(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({ "name": format!("{role} key"), "user_id": user["id"] })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{key}");
        key["api_key"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}
