//! `perform_action` round trip (verification POST + result POST, signed, canonical JSON)
//! against the real AIM server started in-process on a loopback port.
//!
//! Prints `RESULT client.perform_action_roundtrip p50=..ms p99=..ms n=..`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aim_client::{
    AimClient, ApiKey, Argon2Params, ClientConfig, Error, KeyProtection, RegistrationDetails,
    SecretBytes,
};

const N: usize = 300;
const WARMUP: usize = 20;

fn main() {
    let data = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("temp dir");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let config =
        aim_server::ServerConfig::new(data.path()).with_addr("127.0.0.1:0".parse().expect("addr"));
    let (url, key, server) = server_rt.block_on(async {
        let init = aim_server::init(&config, "Bench", "bench@example.test")
            .await
            .expect("init");
        let server = aim_server::Server::start(config).await.expect("start");
        (server.url(), init.admin_api_key.expose().to_owned(), server)
    });

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let samples = client_rt.block_on(async {
        let mut config = ClientConfig::new(&url)
            .with_api_key(ApiKey::new(&key).expect("key"))
            .with_aim_home(home.path())
            .with_key_protection(KeyProtection::Passphrase(SecretBytes::from(
                "bench passphrase".to_owned(),
            )));
        config.kdf_params = Argon2Params::new(64, 1, 1).expect("params");
        let admin = aim_client::AdminClient::new(&config).expect("admin");
        let agent = AimClient::register("bench-agent", config, RegistrationDetails::default())
            .await
            .expect("register");
        admin
            .grant_capability("bench-agent", "read_database")
            .await
            .expect("grant");
        let mut samples = Vec::with_capacity(N);
        for i in 0..WARMUP + N {
            let started = Instant::now();
            let out = agent
                .perform_action(
                    "read_database",
                    Some("customers"),
                    serde_json::json!({"i": i}),
                    || async { Ok::<_, Error>(i) },
                )
                .await
                .expect("approved");
            assert_eq!(out, i);
            if i >= WARMUP {
                samples.push(started.elapsed());
            }
        }
        samples
    });
    server_rt.block_on(async { server.shutdown().await.expect("shutdown") });

    let mut sorted = samples;
    sorted.sort();
    let pct = |p: f64| -> Duration {
        let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[idx]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "RESULT client.perform_action_roundtrip p50={:.2}ms p99={:.2}ms n={}",
        ms(pct(0.50)),
        ms(pct(0.99)),
        sorted.len()
    );
}
