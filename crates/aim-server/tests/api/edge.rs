//! The network edge under attack: slowloris, floods, rate limits, TLS, proxies, `/metrics`,
//! cheap checks before signatures, and the v2 request signature.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aim_crypto::RequestV2;
use aim_crypto::request_v2::origin_of;
use aim_server::{Rate, Server, ServerConfig, TlsFiles};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Harness, METRICS_TOKEN, TestAgent};

// ---------------------------------------------------------------- slowloris and connection caps

/// 220 half-sent requests from one address neither lock out another client nor keep their
/// connections: the per-address cap keeps room for others, and the header-read timeout closes
/// them, after which their address is served again.
#[tokio::test]
async fn slowloris_half_sent_requests_do_not_lock_anyone_out() {
    let h = Harness::start_with(|c| {
        c.limits.header_read_timeout = Duration::from_secs(1);
        c.limits.idle_timeout = Duration::from_secs(2);
        c.limits.max_connections = 200;
        c.limits.max_connections_per_address = 100;
    })
    .await;
    let addr: SocketAddr = h.url.trim_start_matches("http://").parse().unwrap();
    // One attacker trickles a byte every 200 ms: never idle, but never done with its headers.
    let mut trickler = TcpStream::connect(addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for b in request.iter() {
            if trickler.write_all(&[*b]).await.is_err() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    });
    let mut slow = Vec::new();
    for i in 0..220 {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            continue;
        };
        // Half the attackers send a partial request line and headers, half send nothing.
        if i % 2 == 0 {
            let _ = s
                .write_all(b"POST /api/v1/sdk-api/verifications HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
        }
        slow.push(s);
    }
    // Another client (another loopback address) is served at once.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = other
        .get(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1));
    // The server closes every half-sent connection after the header-read timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    for s in &mut slow {
        let mut buf = [0u8; 512];
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, s.read(&mut buf)).await;
        match read {
            Ok(Ok(_)) | Ok(Err(_)) => {} // EOF, an error answer then EOF, or a reset
            Err(_) => panic!("a half-sent connection was still open after 5 s"),
        }
    }
    // The trickler was cut off by the header-read timeout (1 s), long before its 16 s request.
    let cut = trickle
        .await
        .unwrap()
        .expect("the trickling connection was never closed");
    assert!(cut < Duration::from_secs(5), "{cut:?}");
    // And the flooding address is served again.
    let (s, _) = h.send(Method::GET, "/healthz", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    h.stop().await;
}

/// The defaults hold 220 half-sent requests without refusing a normal one from the same
/// address, and are the documented values.
#[tokio::test]
async fn default_limits_hold_a_slowloris_burst() {
    let defaults = aim_server::Limits::default();
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.max_connections_per_address, 256);
    let h = Harness::start().await;
    let addr: SocketAddr = h.url.trim_start_matches("http://").parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..220 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let (s, _) = h.send(Method::GET, "/healthz", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    drop(slow);
    h.stop().await;
}

// ---------------------------------------------------------------- rate limits

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("429 without Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Per agent: the fourth request in a burst of three gets 429 with `Retry-After`; another
/// agent is unaffected; forged requests carrying the agent's id do not use up its budget.
#[tokio::test]
async fn per_agent_rate_limit_answers_429_with_retry_after() {
    let h = Harness::start_with(|c| c.limits.per_agent = Rate::new(1, 3)).await;
    let a = h.register("busy").await;
    let b = h.register("calm").await;
    let victim = h.register("victim").await;
    let path = |x: &TestAgent| format!("/api/v1/sdk-api/agents/{}", x.id);
    for _ in 0..3 {
        let (s, e) = h.as_agent(&a, Method::GET, &path(&a), None).await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }
    let headers = h.sign(&a, "GET", &path(&a), b"");
    let mut rb = h.http.get(format!("{}{}", h.url, path(&a)));
    for (k, v) in &headers {
        rb = rb.header(*k, v);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&resp) >= 1);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("agent"), "{body}");
    // The same agent id spelled in upper case shares the agent's bucket.
    let mut headers = h.sign(&a, "GET", &path(&a), b"");
    headers[0].1 = a.id.to_uppercase();
    let (s, _) = h.send(Method::GET, &path(&a), &headers, None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, _) = h.as_agent(&b, Method::GET, &path(&b), None).await;
    assert_eq!(s, StatusCode::OK);
    // Ten forged requests in the victim's name (signed with another key): 401, not counted.
    for _ in 0..10 {
        let mut headers = h.sign(&b, "GET", &path(&victim), b"");
        headers[0].1 = victim.id.clone();
        let (s, _) = h.send(Method::GET, &path(&victim), &headers, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, e) = h.as_agent(&victim, Method::GET, &path(&victim), None).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    h.stop().await;
}

/// Per API key: 429 after the burst; wrong keys (401) are not counted against a real one.
#[tokio::test]
async fn per_api_key_rate_limit() {
    let h = Harness::start_with(|c| c.limits.per_api_key = Rate::new(1, 4)).await;
    for _ in 0..10 {
        let (s, _) = h
            .call(
                Method::GET,
                "/api/v1/agents",
                "aim_live_wrongwrongwrong",
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The harness used one of the admin key's 4 creating its registration key.
    for _ in 0..3 {
        let (s, _) = h.admin(Method::GET, "/api/v1/agents", None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let resp = h
        .http
        .get(format!("{}/api/v1/agents", h.url))
        .header("x-api-key", &h.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&resp) >= 1);
    h.stop().await;
}

async fn statuses_with_forwarded(h: &Harness, n: usize, rotate: bool) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for i in 0..n {
        let xff = if rotate {
            format!("203.0.113.{}", i + 1)
        } else {
            "203.0.113.7".to_owned()
        };
        let (s, _) = h
            .send(Method::GET, "/healthz", &[("x-forwarded-for", xff)], None)
            .await;
        out.push(s);
    }
    out
}

/// Per client address; `X-Forwarded-For` is believed only from configured proxies: a direct
/// client cannot dodge its limit by making up addresses, a trusted proxy's clients each have
/// their own.
#[tokio::test]
async fn per_address_limit_and_forwarded_headers_only_from_trusted_proxies() {
    let slow = Rate::new(1, 3);
    // Not behind a proxy: the made-up addresses are ignored.
    let h = Harness::start_with(|c| c.limits.per_address = slow).await;
    // The harness's set-up request (creating its registration key) came from this address too.
    let s = statuses_with_forwarded(&h, 5, true).await;
    assert_eq!(s[..2], [StatusCode::OK; 2]);
    assert_eq!(s[2], StatusCode::TOO_MANY_REQUESTS);
    h.stop().await;
    // Behind a proxy, but the peer (127.0.0.1) is not one of the trusted proxies: ignored too.
    let h = Harness::start_with(|c| {
        c.limits.per_address = slow;
        c.behind_proxy = true;
        c.trusted_proxies = vec!["127.0.0.9".parse().unwrap()];
    })
    .await;
    let s = statuses_with_forwarded(&h, 5, true).await;
    assert_eq!(s[3], StatusCode::TOO_MANY_REQUESTS);
    h.stop().await;
    // The peer is a trusted proxy: each forwarded client has its own budget…
    let h = Harness::start_with(|c| {
        c.limits.per_address = slow;
        c.behind_proxy = true;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let s = statuses_with_forwarded(&h, 8, true).await;
    assert!(s.iter().all(|s| *s == StatusCode::OK), "{s:?}");
    // …and one forwarded client is limited.
    let s = statuses_with_forwarded(&h, 5, false).await;
    assert_eq!(s[3], StatusCode::TOO_MANY_REQUESTS);
    h.stop().await;
}

// ---------------------------------------------------------------- bounded, paged lists

/// One agent files junk capability requests: after its cap the server refuses more, a real
/// request from another agent stays in the admin's first page, and every page is bounded and
/// reachable through `next_before`.
#[tokio::test]
async fn junk_capability_requests_cannot_hide_a_real_one() {
    let h = Harness::start_with(|c| c.limits.max_open_capability_requests_per_agent = 20).await;
    let spammer = h.register("spammer").await;
    let honest = h.register("honest").await;
    let req_path = |a: &TestAgent| format!("/api/v1/sdk-api/agents/{}/capability-requests", a.id);
    let real = h
        .as_agent(
            &honest,
            Method::POST,
            &req_path(&honest),
            Some(json!({"capability_type": "deploy_prod", "reason": "release 1.2 is due"})),
        )
        .await;
    assert_eq!(real.0, StatusCode::CREATED, "{}", real.1);
    let mut refused = 0;
    for i in 0..40 {
        h.clock.advance(Duration::from_millis(5));
        let (s, e) = h
            .as_agent(
                &spammer,
                Method::POST,
                &req_path(&spammer),
                Some(json!({"capability_type": format!("junk_{i}"), "reason": "junk junk junk junk"})),
            )
            .await;
        match s {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => {
                assert!(
                    e["error"]
                        .as_str()
                        .unwrap()
                        .contains("pending capability requests")
                );
                refused += 1;
            }
            other => panic!("{other} {e}"),
        }
    }
    assert_eq!(refused, 20);
    // The admin pages through pending requests, 7 at a time: 21 in all, the real one included.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/capability-requests?status=pending&limit=7".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&before={c}"));
        }
        let (s, page) = h.admin(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["requests"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(
            items
                .iter()
                .map(|r| r["capability_type"].as_str().unwrap().to_owned()),
        );
        match page["next_before"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 21);
    assert!(seen.contains(&"deploy_prod".to_owned()));
    // Filtered by agent, the real one is the only one.
    let (_, page) = h
        .admin(
            Method::GET,
            &format!("/api/v1/capability-requests?agent_id={}", honest.id),
            None,
        )
        .await;
    assert_eq!(page["requests"].as_array().unwrap().len(), 1);
    // Limits are checked.
    let (s, _) = h
        .admin(Method::GET, "/api/v1/capability-requests?limit=5000", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = h
        .admin(Method::GET, "/api/v1/capability-requests?before=junk", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    h.stop().await;
}

/// The registration cap on declared capabilities holds after registration too.
#[tokio::test]
async fn declared_capabilities_stay_capped_after_registration() {
    let h = Harness::start().await;
    let a = h.register("declarer").await;
    let path = format!("/api/v1/sdk-api/agents/{}/capabilities", a.id);
    for i in 0..500 {
        let (s, e) = h
            .admin(
                Method::POST,
                &path,
                Some(json!({"capability_type": format!("cap_{i}")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{i}: {e}");
    }
    let (s, e) = h
        .admin(
            Method::POST,
            &path,
            Some(json!({"capability_type": "one_more"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // Re-declaring one it has is still fine.
    let (s, _) = h
        .admin(
            Method::POST,
            &path,
            Some(json!({"capability_type": "cap_7"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    h.stop().await;
}

// ---------------------------------------------------------------- TLS

struct CertFiles {
    dir: tempfile::TempDir,
}

impl CertFiles {
    fn cert(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }
    fn key(&self) -> std::path::PathBuf {
        self.dir.path().join("key.pem")
    }
    /// Writes a new self-signed certificate for localhost/127.0.0.1; returns its PEM.
    fn renew(&self) -> String {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let pem = ck.cert.pem();
        // Key first, then the certificate, each through a rename (as certbot does).
        let tmp = self.dir.path().join("tmp.pem");
        std::fs::write(&tmp, ck.signing_key.serialize_pem()).unwrap();
        std::fs::rename(&tmp, self.key()).unwrap();
        std::fs::write(&tmp, &pem).unwrap();
        std::fs::rename(&tmp, self.cert()).unwrap();
        pem
    }
}

fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn healthz(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

async fn tls_server(
    reload: Duration,
) -> (
    CertFiles,
    String,
    aim_server::RunningServer,
    tempfile::TempDir,
) {
    let files = CertFiles {
        dir: tempfile::tempdir().unwrap(),
    };
    let first = files.renew();
    let data = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(data.path()).with_addr("127.0.0.1:0".parse().unwrap());
    let mut tls = TlsFiles::new(files.cert(), files.key());
    tls.reload_interval = reload;
    config.tls = Some(tls);
    aim_server::init(&config, "Acme", "a@acme.test")
        .await
        .unwrap();
    let server = Server::start(config).await.unwrap();
    (files, first, server, data)
}

/// TLS round trip with a certificate made in the test; plaintext to the TLS port gets nothing;
/// a new certificate written over the files is served without a restart.
#[tokio::test]
async fn tls_round_trip_and_reload_when_the_files_change() {
    let (files, first, server, _data) = tls_server(Duration::from_millis(100)).await;
    let url = server.url();
    assert!(url.starts_with("https://"));
    assert!(healthz(&client_trusting(&first), &url).await);
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.addr()))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != StatusCode::OK));
    let second = files.renew();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !healthz(&client_trusting(&second), &url).await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!healthz(&client_trusting(&first), &url).await);
    server.shutdown().await.unwrap();
}

/// `SIGHUP` reloads the files at once (the periodic check is an hour away here).
#[cfg(unix)]
#[tokio::test]
async fn tls_reload_on_sighup() {
    let (files, first, server, _data) = tls_server(Duration::from_secs(3600)).await;
    let url = server.url();
    assert!(healthz(&client_trusting(&first), &url).await);
    let second = files.renew();
    // Let the watcher task install its handler, then signal this process.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !healthz(&client_trusting(&second), &url).await {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await.unwrap();
}

/// Plaintext on an address other machines can reach is refused, with the reason; with TLS or
/// `behind_proxy` it starts.
#[tokio::test]
async fn plaintext_on_a_public_address_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let config = ServerConfig::new(data.path()).with_addr("0.0.0.0:0".parse().unwrap());
    aim_server::init(&config, "Acme", "a@acme.test")
        .await
        .unwrap();
    let err = Server::start(config.clone()).await.unwrap_err().to_string();
    assert!(err.contains("without TLS"), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("--behind-proxy"),
        "{err}"
    );
    // The metrics listener too.
    let mut m = ServerConfig::new(data.path()).with_addr("127.0.0.1:0".parse().unwrap());
    m.metrics_addr = Some("0.0.0.0:0".parse().unwrap());
    let err = Server::start(m).await.unwrap_err().to_string();
    assert!(err.contains("metrics listener"), "{err}");
    // Behind a proxy it starts.
    let mut proxied = config;
    proxied.behind_proxy = true;
    let server = Server::start(proxied).await.unwrap();
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- /metrics

/// `/metrics` gives nothing to a caller without the token; a server without a token does not
/// serve it on the API listener at all; the separate listener serves metrics only.
#[tokio::test]
async fn metrics_need_the_token_or_their_own_listener() {
    let h = Harness::start().await;
    let a = h.agent_with("counted", &["read_*"]).await;
    let (s, v) = h.verify(&a, "read_x", None, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for auth in [None, Some("Bearer wrong-token-0123456789"), Some("metrics")] {
        let mut rb = h.http.get(format!("{}/metrics", h.url));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let text = resp.text().await.unwrap();
        assert!(!text.contains("aim_"), "{text}");
    }
    // The admin API key is not the metrics token either.
    let (s, _) = h.admin(Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let text = h
        .http
        .get(format!("{}/metrics", h.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("aim_decisions_total{outcome=\"approved\"} 1"),
        "{text}"
    );
    h.stop().await;

    // No token, a separate listener: the API listener has no metrics, the other one has.
    let h = Harness::start_with(|c| {
        c.metrics_token = None;
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let resp = h
        .http
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!resp.text().await.unwrap().contains("aim_"));
    let maddr = h.server.as_ref().unwrap().metrics_addr().unwrap();
    let resp = h
        .http
        .get(format!("http://{maddr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("aim_http_requests_total")
    );
    // The metrics listener serves nothing else.
    let resp = h
        .http
        .get(format!("http://{maddr}/api/v1/agents"))
        .header("x-api-key", &h.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    h.stop().await;
}

// ---------------------------------------------------------------- cheap checks first

/// A 938 KiB verification request with a bad signature is refused for its size (413), not
/// for its signature: the size is checked first. A stale one with a bad signature is refused
/// for its timestamp, whether or not the agent exists.
#[tokio::test]
async fn oversized_and_stale_verifications_are_refused_before_signature_checks() {
    let h = Harness::start().await;
    let a = h.agent_with("big", &["read_*"]).await;
    let filler = "x".repeat(938 * 1024);
    let body = json!({
        "agent_id": a.id, "action_type": "read_x", "context": {"filler": filler},
        "timestamp": h.sdk_timestamp(), "signature": "A".repeat(86) + "==",
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut headers = h.sign(&a, "POST", "/api/v1/sdk-api/verifications", b"other bytes");
    headers.push(("content-type", "application/json".into()));
    let (s, e) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &headers,
            Some(bytes),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    // Stale body timestamp plus a bad signature: the timestamp answers, for a real agent and
    // for an unknown one alike.
    let stale = |agent_id: &str| {
        serde_json::to_vec(&json!({
            "agent_id": agent_id, "action_type": "read_x", "context": {},
            "timestamp": "2001-01-01T00:00:00Z", "signature": "A".repeat(86) + "==",
        }))
        .unwrap()
    };
    let unknown = uuid_like();
    let (s1, e1) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &[],
            Some(stale(&a.id)),
        )
        .await;
    let (s2, e2) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &[],
            Some(stale(&unknown)),
        )
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert!(e1["error"].as_str().unwrap().contains("timestamp"), "{e1}");
    assert_eq!((s1, e1), (s2, e2));
    h.stop().await;
}

fn uuid_like() -> String {
    let b = aim_crypto::random::random_array::<16>().unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The unauthenticated verification route answers an unknown agent and a real agent of
/// another organization identically (status and body), with signature headers or without.
#[tokio::test]
async fn unknown_and_foreign_agents_are_answered_identically() {
    let h = Harness::start().await;
    let (_, other_key) = h.other_org().await;
    // A real agent in the other organization.
    let (s, foreign) = h
        .send(
            Method::POST,
            "/api/v1/public/agents/register",
            &[("x-aim-api-key", other_key.clone())],
            Some(
                serde_json::to_vec(&json!({
                    "name": "theirs",
                    "public_key": aim_crypto::AgentKeypair::generate().unwrap().public_key().to_b64(),
                }))
                .unwrap(),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{foreign}");
    let foreign_id = foreign["agent_id"].as_str().unwrap().to_owned();
    let unknown_id = uuid_like();
    // The attacker's own agent and key, used to sign in the other ids' names.
    let mine = h.register("mine").await;
    let as_other = |id: &str| TestAgent {
        id: id.to_owned(),
        name: "x".into(),
        keys: mine.keys.clone(),
    };
    // (`mine` is a real agent of this organization; its key signs in the other ids' names.)
    let mut answers = Vec::new();
    for id in [&foreign_id, &unknown_id] {
        let fake = as_other(id);
        // Body signature only (as the PyPI SDKs send it)…
        let body = h.verification_body(&fake, "read_x", None, json!({}));
        let plain = h
            .send(
                Method::POST,
                "/api/v1/sdk-api/verifications",
                &[],
                Some(body),
            )
            .await;
        // …and with signature headers.
        let signed = h.verify(&fake, "read_x", None, json!({})).await;
        answers.push((plain, signed));
    }
    assert_eq!(answers[0].0.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answers[0], answers[1],
        "unknown and foreign agents are told apart"
    );
    // An API key of this organization: 404 alike.
    let mut keyed = Vec::new();
    for id in [&foreign_id, &unknown_id] {
        let body = h.verification_body(&as_other(id), "read_x", None, json!({}));
        keyed.push(
            h.send(
                Method::POST,
                "/api/v1/sdk-api/verifications",
                &[("x-api-key", h.admin_key.clone())],
                Some(body),
            )
            .await,
        );
    }
    assert_eq!(keyed[0].0, StatusCode::NOT_FOUND);
    let strip = |r: &(StatusCode, serde_json::Value), id: &str| {
        (r.0, r.1["error"].as_str().unwrap().replace(id, "<id>"))
    };
    assert_eq!(strip(&keyed[0], &foreign_id), strip(&keyed[1], &unknown_id));
    h.stop().await;
}

// ---------------------------------------------------------------- v2 request signatures

impl Harness {
    /// v2 signature headers for `agent` over this exact request.
    fn sign_v2(
        &self,
        agent: &TestAgent,
        claimed_id: &str,
        (method, path_and_query): (&str, &str),
        origin: &str,
        nonce: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let ts = self.now_secs().to_string();
        let signed = agent
            .keys
            .sign_request_v2(&RequestV2 {
                agent_id: claimed_id,
                method,
                path_and_query,
                origin,
                timestamp: &ts,
                nonce,
                body,
            })
            .unwrap();
        signed
            .pairs()
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect()
    }
}

/// A v2 signature is accepted for exactly its request: moved to another agent id, path or
/// query, signed for another origin, or with a nonce used before, it is refused. v1 (the SDK's
/// scheme) still works, and an unknown version is refused.
#[tokio::test]
async fn v2_signatures_bind_agent_path_origin_and_nonce() {
    let h = Harness::start().await;
    let origin = origin_of(&h.url).unwrap();
    let a = h.register("signer").await;
    // Two agents registered with the same key: in v1 a signature for one is valid for the other.
    let twin = {
        let (s, body) = h
            .send(
                Method::POST,
                "/api/v1/public/agents/register",
                &[("x-aim-api-key", h.admin_key.clone())],
                Some(
                    serde_json::to_vec(&json!({
                        "name": "twin", "public_key": a.keys.public_key().to_b64(),
                    }))
                    .unwrap(),
                ),
            )
            .await;
        (s == StatusCode::CREATED).then(|| body["agent_id"].as_str().unwrap().to_owned())
    };
    let path = format!(
        "/api/v1/sdk-api/agents/{}/capability-requests?limit=5",
        a.id
    );
    let nonce = |n: u8| format!("nonce-{n:02}-0123456789abcdef");
    let hr = &h;
    let get = move |headers: Vec<(&'static str, String)>, p: String| async move {
        hr.send(Method::GET, &p, &headers, None).await
    };
    // Accepted as signed.
    let ok = h.sign_v2(&a, &a.id, ("GET", &path), &origin, &nonce(1), b"");
    let (s, e) = get(ok, path.clone()).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    // Another query string.
    let signed = h.sign_v2(&a, &a.id, ("GET", &path), &origin, &nonce(2), b"");
    let (s, _) = get(signed, path.replace("limit=5", "limit=6")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Another origin (a signature made for another server).
    let signed = h.sign_v2(
        &a,
        &a.id,
        ("GET", &path),
        "https://evil.example",
        &nonce(3),
        b"",
    );
    let (s, e) = get(signed, path.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(e["error"].as_str().unwrap().contains(&origin), "{e}");
    // A nonce used before, even for a different request.
    let other_path = format!("/api/v1/sdk-api/agents/{}", a.id);
    let signed = h.sign_v2(&a, &a.id, ("GET", &other_path), &origin, &nonce(1), b"");
    let (s, e) = get(signed, other_path.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "replayed request");
    // Moved to another agent id.
    if let Some(twin) = twin {
        let twin_path = format!("/api/v1/sdk-api/agents/{twin}");
        let mut moved = h.sign_v2(&a, &a.id, ("GET", &twin_path), &origin, &nonce(4), b"");
        for (k, v) in &mut moved {
            if *k == "X-Agent-ID" {
                *v = twin.clone();
            }
        }
        let (s, _) = get(moved, twin_path.clone()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Signed for the twin, it is accepted (the key is the twin's too).
        let right = h.sign_v2(&a, &twin, ("GET", &twin_path), &origin, &nonce(5), b"");
        let (s, e) = get(right, twin_path).await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }
    // A v2 request without a nonce, and an unknown version.
    let mut no_nonce = h.sign_v2(&a, &a.id, ("GET", &other_path), &origin, &nonce(6), b"");
    no_nonce.retain(|(k, _)| *k != "X-AIM-Nonce");
    let (s, _) = get(no_nonce, other_path.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut v3 = h.sign_v2(&a, &a.id, ("GET", &other_path), &origin, &nonce(7), b"");
    v3[0].1 = "3".into();
    let (s, e) = get(v3, other_path.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(e["error"].as_str().unwrap().contains("version"), "{e}");
    // v1 still works.
    let (s, _) = h.as_agent(&a, Method::GET, &other_path, None).await;
    assert_eq!(s, StatusCode::OK);
    // A v2-signed verification with a body.
    let body = h.verification_body(&a, "read_x", None, json!({}));
    let headers = h.sign_v2(
        &a,
        &a.id,
        ("POST", "/api/v1/sdk-api/verifications"),
        &origin,
        &nonce(8),
        &body,
    );
    let (s, e) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &headers,
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}"); // no grant: denied, but authenticated
    // The same nonce again with a new body: replay.
    let body2 = h.verification_body(&a, "read_y", None, json!({}));
    let headers = h.sign_v2(
        &a,
        &a.id,
        ("POST", "/api/v1/sdk-api/verifications"),
        &origin,
        &nonce(8),
        &body2,
    );
    let (s, e) = h
        .send(
            Method::POST,
            "/api/v1/sdk-api/verifications",
            &headers,
            Some(body2),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    h.stop().await;
}
