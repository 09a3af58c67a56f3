//! The embedding API: start on a free loopback port, answer, shut down, restart on the same data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aim_server::{ManualClock, Server, ServerConfig};

fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig::new(dir).with_addr("127.0.0.1:0".parse().unwrap())
}

#[tokio::test]
async fn starts_answers_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let mut cfg = config(dir.path()).with_clock(clock.clone());
    cfg.pending_ttl = Duration::from_secs(60);
    let out = aim_server::init(&cfg, "Acme", "admin@acme.test")
        .await
        .unwrap();
    assert!(out.admin_api_key.expose().starts_with("aim_live_"));
    let server = Server::start(cfg.clone()).await.unwrap();
    assert_ne!(server.addr().port(), 0);
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = http
        .get(format!("{}/readyz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let missing = http
        .get(format!("{}/nope", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("no such endpoint"));
    let url = server.url();
    server.shutdown().await.unwrap();
    assert!(http.get(format!("{url}/healthz")).send().await.is_err());
    // The data survives a restart.
    let again = Server::start(cfg).await.unwrap();
    let second = again
        .create_organization("Beta", "b@beta.test")
        .await
        .unwrap();
    assert_ne!(second.organization_id, out.organization_id);
    again.shutdown().await.unwrap();
    assert!(
        aim_server::is_initialized(&config(dir.path()))
            .await
            .unwrap()
    );
}
