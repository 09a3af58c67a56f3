//! Starts the REAL AIM server (`aim-server`) on a loopback port with a temporary data directory,
//! on its own runtime thread (so tests that block their own runtime cannot starve it).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aim_client::{
    AdminClient, AimClient, ApiKey, Argon2Params, ClientConfig, KeyProtection, PollPolicy,
    RegistrationDetails, SecretBytes,
};

pub const ADMIN_EMAIL: &str = "admin@acme.test";
pub const PASSPHRASE: &str = "correct horse battery staple";

pub struct Env {
    pub url: String,
    pub admin_key: String,
    /// A `registration` key: what agents register with (it can never approve their actions).
    pub registration_key: String,
    pub admin: AdminClient,
    pub home: tempfile::TempDir,
    _data: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

pub fn start() -> Env {
    start_with(|_| {})
}

pub fn start_with(tune: impl FnOnce(&mut aim_server::ServerConfig) + Send + 'static) -> Env {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let (rt, url, key, registration_key) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config =
            aim_server::ServerConfig::new(&dir).with_addr("127.0.0.1:0".parse().unwrap());
        tune(&mut config);
        let (url, key) = rt.block_on(async {
            let init = aim_server::init(&config, "Acme", ADMIN_EMAIL)
                .await
                .unwrap();
            let server = aim_server::Server::start(config).await.unwrap();
            let url = server.url();
            // Keep the server running for the runtime's lifetime.
            tokio::spawn(async move {
                let _server = server;
                std::future::pending::<()>().await;
            });
            (url, init.admin_api_key.expose().to_owned())
        });
        let admin = AdminClient::new(&admin_config(&url, &key)).unwrap();
        let registration = rt
            .block_on(admin.post(
                "/api/v1/api-keys",
                &serde_json::json!({ "name": "agents", "role": "registration" }),
            ))
            .unwrap();
        let registration_key = registration["api_key"].as_str().unwrap().to_owned();
        (rt, url, key, registration_key)
    })
    .join()
    .unwrap();
    let admin = AdminClient::new(&admin_config(&url, &key)).unwrap();
    Env {
        url,
        admin_key: key,
        registration_key,
        admin,
        home: tempfile::tempdir().unwrap(),
        _data: data,
        rt: Some(rt),
    }
}

fn admin_config(url: &str, key: &str) -> ClientConfig {
    ClientConfig::new(url).with_api_key(ApiKey::new(key).unwrap())
}

impl Env {
    /// A client configuration: temp AIM home, the registration key, passphrase protection with
    /// cheap Argon2 (the schedule itself is unit-tested, so polls are fast here).
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(&self.url)
            .with_api_key(ApiKey::new(&self.registration_key).unwrap())
            .with_aim_home(self.home.path())
            .with_key_protection(KeyProtection::Passphrase(SecretBytes::from(
                PASSPHRASE.to_owned(),
            )));
        c.kdf_params = Argon2Params::new(64, 1, 1).unwrap();
        c.poll = PollPolicy {
            initial: Duration::from_millis(50),
            factor: 1.5,
            max: Duration::from_millis(200),
        };
        c
    }

    /// A freshly registered agent.
    pub async fn agent(&self, name: &str) -> AimClient {
        AimClient::register(name, self.config(), RegistrationDetails::default())
            .await
            .unwrap()
    }

    pub async fn grant(&self, agent: &str, capability: &str) {
        self.admin
            .grant_capability(agent, capability)
            .await
            .unwrap();
    }

    /// Waits until the server lists a pending verification for `action`, and returns its id.
    pub async fn wait_pending(&self, action: &str) -> String {
        for _ in 0..200 {
            let list = self.admin.pending_verifications().await.unwrap();
            if let Some(v) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["action_type"] == action && v["status"] == "pending")
            {
                return v["id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no pending verification for {action}");
    }
}
